"""`keras_kd.pipeline`: the whole run on a tiny teacher, killed after its
teacher and resumed, and the checks that refuse bad settings before any
work. (The report's means and spreads over several seeds, from known
accuracies: test_report.py.) The same run on two workers under
`MultiWorkerMirroredStrategy` (the script: distributed_pipeline_run.py)
is in this file so that one test process runs the two in turn: side by
side on 2 cores they slowed each other (about 300 s each, against about
230 s)."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_kd import pipeline, transfer
from keras_kd.export import TFLiteTextClassifier
from keras_kd.pipeline import budget, runner, steps
from keras_kd.utils.testing import free_ports


def _interrupted_after_the_teacher(config, tmp_path, monkeypatch):
    """Runs `config` until its teacher is saved, then kills it; checks the
    partial run and that nothing runs over it by mistake. Returns the
    teacher file's bytes and the recorded teacher accuracy."""

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed while distilling")

    monkeypatch.setattr(runner, "distill_students", killed)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run(config)
    monkeypatch.undo()
    partial = tmp_path / ".run.partial"
    assert sorted(os.listdir(tmp_path)) == [".run.partial"]
    teacher_file = partial / "teacher.keras"
    teacher_bytes, teacher_mtime = teacher_file.read_bytes(), teacher_file.stat().st_mtime_ns
    recorded = json.loads((partial / "progress.json").read_text())
    assert list(recorded["steps"]) == ["teacher", "generated", "extra_texts"]
    # Neither a new run nor a resumed one with other settings touches it.
    with pytest.raises(FileExistsError, match=r"resume=True \(--resume\).*overwrite=True"):
        pipeline.run(config)
    with pytest.raises(ValueError, match=r"epochs=2 \(started with 1\)"):
        pipeline.run(dataclasses.replace(config, epochs=2, resume=True))
    assert teacher_file.stat().st_mtime_ns == teacher_mtime
    return teacher_bytes, recorded["steps"]["teacher"]["accuracy"]


@pytest.mark.large
def test_pipeline_killed_after_its_teacher_resumes_to_the_end(
    tmp_path, tiny_preset, tiny_llama_preset, movie_reviews, monkeypatch
):
    config = pipeline.PipelineConfig.quick(
        teacher=tiny_preset,
        student_layers=1,
        # From the data, as by default: the teacher's length and epochs.
        sequence_length=None,
        teacher_epochs=None,
        max_train=96,
        max_test=32,
        latency_runs=1,
        # One seed: each step runs once (a second seed repeats the same
        # code; test_report.py checks the figures over several seeds).
        seeds=(0,),
        few_labels=32,
        # 4 texts written by a tiny causal LM for the distilled student.
        generated_texts=4,
        generator=tiny_llama_preset,
        # And texts of the user's: a copy of a training text (dropped), two new.
        unlabelled_data=[
            movie_reviews.train.sample(96, seed=0).texts[0],
            "a film of two halves, neither finished",
            "the score outlasts the story",
        ],
        # A tiny model compiles longer under XLA than it trains.
        jit_compile=False,
        output_dir=str(tmp_path),
        run_name="run",
        verbose=0,
    )
    teacher_bytes, teacher_accuracy = _interrupted_after_the_teacher(config, tmp_path, monkeypatch)

    def finetuned_again(*args, **kwargs):
        raise AssertionError("the resumed run fine-tuned the teacher again")

    def generated_again(*args, **kwargs):
        raise AssertionError("the resumed run generated its texts again")

    monkeypatch.setattr(runner, "finetune_teacher", finetuned_again)
    def labelled_again(*args, **kwargs):
        raise AssertionError("the resumed run labelled its extra texts again")

    monkeypatch.setattr(steps, "generated_texts", generated_again)
    monkeypatch.setattr(steps, "teacher_labelled", labelled_again)
    report = pipeline.run(dataclasses.replace(config, resume=True))
    monkeypatch.undo()
    run_dir = tmp_path / "run"
    assert sorted(os.listdir(tmp_path)) == ["run"]
    assert (run_dir / "teacher.keras").read_bytes() == teacher_bytes
    assert not (run_dir / "progress.json").exists() and not (run_dir / ".resume").exists()
    assert report["models"]["teacher (Keras)"]["test_accuracy"] == teacher_accuracy
    assert "resume" not in report["settings"]
    for name in ("report.json", "report.md", "report.png", "student.keras", "teacher.keras"):
        assert (run_dir / name).is_file()
    assert not (run_dir / "teacher_cache").exists()
    assert not (run_dir / "teacher_cache_labelled").exists()
    assert report["unlabelled_texts"] == {"texts": 2, "dropped_known": 1, "dropped_repeats": 0}
    # The floor an accuracy is read against: the run's test split, as it
    # samples it, answered with its most common class.
    test = pipeline.load_data(config).test.sample(config.max_test, config.seeds[0])
    counts = np.bincount(test.labels)
    assert report["summary"]["accuracy of always answering the most common test class"] == (
        counts.max() / counts.sum()
    )
    # What trimming the shipped student's vocabulary cost on the test split.
    shipped = transfer.load_finetune_model(str(run_dir / "student.keras"))
    trimmed_accuracy = steps.evaluate_accuracy(shipped, test, jit_compile=False)
    assert report["summary"]["vocabulary trimming: shipped Keras student vs the same untrimmed (points)"] == (
        pytest.approx(100 * (trimmed_accuracy - report["seeds"]["distilled"][0]), abs=1e-3)
    )
    generated = report["generated_texts"]
    assert 1 <= generated["texts"] <= 4
    assert generated["dropped_known"] == generated["dropped_repeats"] == 0
    assert len(generated["examples"]) == min(5, generated["texts"])
    assert {e["teacher_label"] for e in generated["examples"]} <= set(movie_reviews.class_names)
    assert json.loads((run_dir / "report.json").read_text())["models"] == report["models"]

    models = report["models"]
    assert (
        models["student with KD (Keras)"]["parameters"]
        < models["teacher (Keras)"]["parameters"]
    )
    student_file = models["student (TFLite dynamic_int8)"]
    assert student_file["size_mb"] < models["teacher (TFLite float32)"]["size_mb"]
    # MB are 10^6 bytes, as bench/export.py and file managers count them.
    for name, file_name in (("student (TFLite dynamic_int8)", "student_dynamic_int8.tflite"),
                            ("teacher (TFLite float32)", "teacher_none.tflite")):
        assert models[name]["size_mb"] == (run_dir / file_name).stat().st_size / 1e6
    assert "File sizes in MB (10^6 bytes)." in (run_dir / "report.md").read_text()
    # Students: one accuracy per seed; with one seed, no spread.
    seeds = report["seeds"]
    assert seeds["seeds"] == [0]
    for name, key in (("student with KD (Keras)", "distilled"),
                      ("student without KD (Keras)", "baseline")):
        assert len(seeds[key]) == 1
        assert models[name]["test_accuracy"] == seeds[key][0]
        assert models[name]["test_accuracy_std"] is None
    few = report["few_labels"]
    assert (few["labelled_texts"], few["unlabelled_texts"]) == (32, 64)
    # Both few-label students take the steps of one epoch over all 96 texts.
    assert few["student_steps"] == 3
    assert len(few["distilled"]) == len(few["labels_only"]) == 1
    gain = 100 * (few["distilled"][0] - few["labels_only"][0])
    assert report["summary"]["few labels: KD gain (points, 1 seed)"] == pytest.approx(gain)
    assert not any("std over" in key for key in report["summary"])

    # The sequence length came from the 96 training texts, the teacher's
    # epochs from their count: 3 steps an epoch, auto 10 at the most.
    train = movie_reviews.train.sample(96, seed=0)
    length = budget.percentile_length(budget.token_lengths(tiny_preset, train.texts), 128)
    chosen = report["budget"]
    assert chosen["sequence_length"]["value"] == report["settings"]["sequence_length"] == length
    assert chosen["sequence_length"]["rule"].startswith("auto: the 95th percentile of the 96")
    assert (chosen["teacher_epochs"]["value"], chosen["teacher_epochs"]["steps"]) == (10, 30)
    assert chosen["epochs"] == {"value": 1, "rule": "given", "steps": 3}
    teacher_run = chosen["trained"]["teacher"]
    assert teacher_run["epochs"] == 10
    assert 1 <= teacher_run["best_epoch"] <= teacher_run["trained_epochs"] <= 10
    assert len(report["curves"]["teacher"]["val_accuracy"]) == teacher_run["trained_epochs"]
    assert f"Sequence length {length} (auto" in (run_dir / "report.md").read_text()

    # The reported TFLite accuracy is that of the shipped file on the test
    # texts: the same seeded sample of the test split as the run's.
    test = movie_reviews.test.sample(32, seed=0)
    texts, labels = test.texts, test.labels
    classifier = TFLiteTextClassifier(
        str(run_dir / "student_dynamic_int8.tflite")
    )
    accuracy = float(np.mean(classifier.predict(texts).argmax(-1) == labels))
    assert student_file["test_accuracy"] == pytest.approx(accuracy)
    assert set(report["curves"]) == {"teacher", "student with KD", "student without KD"}
    # One point per step, validation at the epoch's last: the baseline's 96
    # texts in batches of 32; the distilled student's with the generated.
    curve = report["curves"]["student without KD"]
    assert curve["steps"] == [1, 2, 3] and curve["val_steps"] == [3]
    curve = report["curves"]["student with KD"]
    distilled_steps = -(-(96 + generated["texts"]) // 32)
    assert curve["steps"] == list(range(1, distilled_steps + 1))
    assert curve["val_steps"] == [distilled_steps]
    assert all(0.0 <= a <= 1.0 for a in curve["accuracy"] + curve["val_accuracy"])
    summary = report["summary"]
    assert summary["TFLite size compression (teacher / student)"] == pytest.approx(
        models["teacher (TFLite float32)"]["size_mb"] / student_file["size_mb"]
    )


def test_subsets_are_seeded_random_samples(movie_reviews):
    train = movie_reviews.train
    sample = train.sample(512, seed=0)
    again = train.sample(512, seed=0)
    assert len(sample) == 512 and sample.texts == again.texts
    # The file lists positive sentences first: a prefix would be one class.
    assert 0.4 < sample.labels.mean() < 0.6
    assert train.sample(512, seed=1).texts != sample.texts
    # Split order is kept, and each text keeps its label.
    positions = [train.texts.index(t) for t in sample.texts[:50]]
    assert positions == sorted(positions)
    assert all(train.labels[p] == y for p, y in zip(positions, sample.labels))
    assert train.sample(None) is train and train.sample(10**6) is train


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="seeds"):
        pipeline.PipelineConfig(seeds=())
    with pytest.raises(ValueError, match=r"`seeds\[1\]` must be an int >= 0.*seeds\[1\]=True"):
        pipeline.PipelineConfig(seeds=(0, True))
    with pytest.raises(ValueError, match="few_labels=0"):
        pipeline.PipelineConfig(few_labels=0)
    with pytest.raises(ValueError, match=r"`warmup` must be .* < 1.*warmup=1"):
        pipeline.PipelineConfig(warmup=1)
    with pytest.raises(ValueError, match=r"`student_layers` must be an int >= 1.*student_layers=0"):
        pipeline.PipelineConfig(student_layers=0)
    with pytest.raises(ValueError, match=r"`learning_rate` must be .* > 0.*learning_rate=0"):
        pipeline.PipelineConfig(learning_rate=0)
    assert pipeline.PipelineConfig(seeds=[2, 3]).seeds == (2, 3)


def test_existing_run_folder_is_refused_before_any_work(tmp_path):
    (tmp_path / "run").mkdir()
    config = pipeline.PipelineConfig(output_dir=str(tmp_path), run_name="run")
    with pytest.raises(FileExistsError, match="overwrite"):
        pipeline.run(config)
    assert sorted(os.listdir(tmp_path)) == ["run"]


@pytest.mark.large
def test_pipeline_runs_on_two_workers(tmp_path, tiny_preset, tiny_llama_preset):
    """`run(config, strategy=MultiWorkerMirroredStrategy())` in two worker
    processes on 127.0.0.1, with 4 generated texts: each training (the
    teacher and both students) runs on the 2 replicas, both workers end
    with the same teacher, the same generated texts and the same report,
    and the files exported from the saved models match them (the run's
    TFLite checks)."""
    script = os.path.join(os.path.dirname(__file__), "distributed_pipeline_run.py")
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_CONFIG=json.dumps(tf_config))
        processes.append(subprocess.Popen(
            [sys.executable, script, str(tmp_path / f"worker{index}.json"), tiny_preset,
             str(tmp_path / f"worker{index}"), tiny_llama_preset],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        ))
    try:
        for process in processes:
            process.wait(timeout=600)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    for process in processes:
        assert process.returncode == 0, process.stdout.read()[-3000:]
    results = [json.loads((tmp_path / f"worker{i}.json").read_text()) for i in range(2)]
    for result in results:
        assert result["fit_replicas"] == [2] * 3
        report = result["report"]
        assert report["replicas"] == 2
        checks = report["checks"]
        assert checks["teacher"]["argmax_agreement"] == 1.0
        assert checks["teacher"]["max_abs_diff"] < 1e-4
        assert checks["student"]["argmax_agreement"] >= 0.9
    first, second = (result["report"] for result in results)
    assert 1 <= first["generated_texts"]["texts"] <= 4
    assert second["generated_texts"] == first["generated_texts"]
    for name, model in first["models"].items():
        assert second["models"][name]["test_accuracy"] == model["test_accuracy"], name
    teachers = [
        transfer.load_finetune_model(str(tmp_path / f"worker{i}" / "run" / "teacher.keras"))
        for i in range(2)
    ]
    for a, b in zip(*(t.get_weights() for t in teachers)):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
