"""The `keras-kd` command: bad input gives one line on stderr, and each
subcommand works alone on a user's own CSV file.

The commands run in this process through `keras_kd.cli.main`; one
subprocess checks the installed entry point (`python -m keras_kd`)."""

import csv
import dataclasses
import functools
import json
import os
import subprocess
import sys

import pytest

from keras_kd import datasets, pipeline, transfer
from keras_kd.cli import main
from keras_kd.cli.parser import build_parser
from keras_kd.pipeline import PipelineConfig, student_search


def assert_one_line_error(status, capsys, *fragments):
    stderr = capsys.readouterr().err
    assert status == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_python_m_keras_kd_answers_usage_errors_without_tensorflow():
    # The one subprocess: the real entry point, in a fresh interpreter, so
    # that what it imported can be checked.
    code = (
        "import runpy, sys\n"
        "try:\n"
        "    runpy.run_module('keras_kd', run_name='__main__')\n"
        "finally:\n"
        "    print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "demo", "--nope"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "keras-kd: unrecognized arguments: --nope (see keras-kd --help)"
    ]
    assert result.stdout.strip() == "[]"


def test_unknown_subcommand_and_option(capsys):
    assert_one_line_error(main(["bogus"]), capsys, "invalid choice: 'bogus'")
    assert_one_line_error(
        main(["demo", "--nope"]), capsys, "unrecognized arguments: --nope"
    )


@pytest.mark.parametrize("command", ["demo", "finetune", "distill", "export", "evaluate"])
def test_help_shows_a_working_example(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    stdout = capsys.readouterr().out
    assert "examples:" in stdout
    assert f"keras-kd {command}" in stdout.split("examples:")[1]


def test_defaults_are_the_pipeline_config_fields(capsys):
    parser = build_parser()
    distill = parser.parse_args(["distill", "--teacher", "t.keras"])
    # None: auto, decided from the data; the layers: PipelineConfig's,
    # unless a size or latency budget chooses them.
    assert (
        distill.student_layers, distill.epochs, distill.patience, distill.learning_rate,
        distill.alpha, distill.temperature, distill.batch_size, distill.trim_vocabulary,
    ) == (None, None, 2, 6e-4, 0.5, 2.0, 32, PipelineConfig.trim_vocabulary)
    assert not parser.parse_args(
        ["distill", "--teacher", "t.keras", "--no-trim-vocabulary"]
    ).trim_vocabulary
    finetune = parser.parse_args(["finetune"])
    assert (
        finetune.preset, finetune.freeze, finetune.epochs, finetune.patience,
        finetune.sequence_length, finetune.learning_rate, finetune.batch_size,
    ) == ("minilm_l6", "none", None, 2, None, 1e-4, 32)
    given = parser.parse_args(["finetune", "--epochs", "auto", "--sequence-length", "64"])
    assert (given.epochs, given.sequence_length) == (None, 64)
    config = PipelineConfig()
    for args, fields in (
        (distill, dict(epochs="epochs",
                       patience="patience", learning_rate="learning_rate",
                       alpha="alpha", temperature="temperature", batch_size="batch_size")),
        (finetune, dict(preset="teacher", freeze="freeze", epochs="teacher_epochs",
                        patience="patience", sequence_length="sequence_length",
                        learning_rate="teacher_learning_rate")),
    ):
        for flag, field in fields.items():
            assert getattr(args, flag) == getattr(config, field), (flag, field)
    with pytest.raises(SystemExit):
        main(["distill", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "default: 0.0006 (PipelineConfig.learning_rate)" in help_text
    assert f"(PipelineConfig.student_layers); default: {config.student_layers}" in help_text
    assert "default: auto, enough epochs for 250 optimizer steps, 1 to 10" in help_text
    with pytest.raises(SystemExit):
        main(["finetune", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "default: auto, the 95th percentile of the training texts' token lengths" in help_text
    assert "--task generation" not in help_text
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "for --task generation or speech, the texts of any of these but tfds" in help_text
    assert {f.name for f in dataclasses.fields(PipelineConfig)} >= {
        "student_layers", "epochs", "learning_rate", "teacher_epochs"
    }


def test_existing_output_folder_is_refused(tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    status = main(
        ["demo", "--quick", "--output-dir", str(tmp_path), "--run-name", "taken"]
    )
    assert_one_line_error(status, capsys, "exists", "--overwrite")
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"


def test_bad_settings_are_refused(tmp_path, capsys):
    status = main(["demo", "--quick", "--few-labels", "0", "--output-dir", str(tmp_path)])
    assert_one_line_error(status, capsys, "few_labels=0", "None or an int >= 1")
    # --quick trains on 512 texts: 512 labels leave none unlabelled.
    status = main(["demo", "--quick", "--few-labels", "512", "--output-dir", str(tmp_path)])
    assert_one_line_error(status, capsys, "few_labels=512", "512 texts")
    status = main(
        ["distill", "--teacher", "t.keras", "--epochs", "0", "--output-dir", str(tmp_path)]
    )
    assert_one_line_error(status, capsys, "keras-kd distill: --epochs:", "epochs=0", "int >= 1")
    # finetune's --epochs sets the teacher's epochs: the message names both.
    status = main(["finetune", "--epochs", "0", "--output-dir", str(tmp_path)])
    assert_one_line_error(
        status, capsys, "keras-kd finetune: --epochs: `teacher_epochs`", "teacher_epochs=0"
    )
    status = main(["finetune", "--epochs", "many", "--output-dir", str(tmp_path)])
    assert_one_line_error(
        status, capsys, "argument --epochs: expected 'auto' or an integer, got 'many'"
    )
    status = main(["distill", "--teacher", "t.keras", "--patience", "0",
                   "--output-dir", str(tmp_path)])
    assert_one_line_error(
        status, capsys, "keras-kd distill: --patience:", "int >= 1", "patience=0"
    )
    assert os.listdir(tmp_path) == []


def test_demo_strategy_reaches_the_run(tmp_path, capsys, monkeypatch):
    import tensorflow as tf

    received = []

    def run(config, strategy=None):
        received.append(strategy)
        raise SystemExit(0)

    monkeypatch.setattr(pipeline, "run", run)
    for name in ("default", "mirrored"):
        with pytest.raises(SystemExit):
            main(["demo", "--quick", "--strategy", name, "--output-dir", str(tmp_path)])
    assert received[0] is None
    assert isinstance(received[1], tf.distribute.MirroredStrategy)
    assert received[1].num_replicas_in_sync == len(tf.config.list_logical_devices("CPU"))
    status = main(["demo", "--task", "speech", "--strategy", "mirrored",
                   "--output-dir", str(tmp_path)])
    assert_one_line_error(
        status, capsys, "--strategy mirrored applies to --task classification only"
    )
    assert os.listdir(tmp_path) == []


def test_unreadable_data_and_missing_model(tmp_path, capsys):
    status = main(["evaluate", "--model", "x.keras", "--data", str(tmp_path / "none.csv")])
    assert_one_line_error(status, capsys, "cannot read --data", "none.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("review,stars\ngood,1\n")
    status = main(["finetune", "--data", str(bad), "--output-dir", str(tmp_path)])
    assert_one_line_error(status, capsys, "cannot read --data", "text")
    status = main(
        ["distill", "--teacher", str(tmp_path / "missing.keras"), "--output-dir", str(tmp_path)]
    )
    assert_one_line_error(status, capsys, "--teacher", "missing.keras")


def test_a_warning_is_one_line(tmp_path, capsys):
    # Three texts hold out no validation or test text: the library warns,
    # then refuses their single class.
    small = tmp_path / "small.csv"
    small.write_text("text,label\ngood,1\nfine,1\ngreat,1\n")
    status = main(["finetune", "--data", str(small), "--output-dir", str(tmp_path / "runs")])
    warning, error = capsys.readouterr().err.strip().splitlines()
    assert warning.startswith(
        f"keras-kd finetune: warning: {small} holds 3 texts: too few to hold out"
    ), warning
    assert "Give at least" in warning
    assert status == 2 and error.startswith("keras-kd finetune: cannot read --data")


def test_a_tflite_file_of_other_classes_than_the_data_is_refused(tmp_path, capsys):
    # The offline rated sets keep their own two classes: scored by a
    # 3-class file, their labels would be compared with other classes' ids.
    from keras_kd.export import export_tflite
    from keras_kd.utils.testing import tiny_bert_text_classifier

    model = tiny_bert_text_classifier(num_classes=3)
    path = tmp_path / "three.tflite"
    export_tflite(
        model.token_id_model, path, sequence_length=8, labels=["a", "b", "c"],
        vocabulary=model.preprocessor.tokenizer.get_vocabulary(), verify=False,
    )
    status = main(["evaluate", "--model", str(path), "--data", "movie_reviews"])
    assert_one_line_error(
        status, capsys, "--data 'movie_reviews' has 2 classes ['negative', 'positive']",
        "three.tflite' predicts 3",
    )


@pytest.fixture
def without_xla(monkeypatch):
    """The commands train and evaluate without XLA: on the tiny BERT, XLA
    compiles for longer than the model trains. (The compiled paths:
    tests/distillation and tests/transfer.)"""
    monkeypatch.setattr(
        pipeline, "PipelineConfig",
        functools.partial(pipeline.PipelineConfig, jit_compile=False),
    )
    monkeypatch.setattr(
        pipeline, "evaluate_accuracy",
        functools.partial(pipeline.evaluate_accuracy, jit_compile=False),
    )


@pytest.mark.large
def test_finetune_distill_export_evaluate_on_a_csv(
    tmp_path, tiny_preset, tiny_llama_preset, capsys, movie_reviews, without_xla, monkeypatch,
):
    reviews = movie_reviews

    def write_csv(path, rows, names=("neg", "pos")):
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["review", "sentiment"])
            for text, label in rows:
                writer.writerow([text, names[label]])

    path = tmp_path / "reviews.csv"
    write_csv(path, zip(reviews.train.texts[:80], reviews.train.labels[:80]))
    # The user's own test split, 16 texts the training file does not hold.
    test_path = tmp_path / "test.csv"
    write_csv(test_path, zip(reviews.test.texts[:16], reviews.test.labels[:16]))
    columns = ["--text-column", "review", "--label-column", "sentiment"]
    data = ["--data", str(path), *columns]
    # A missing --output-dir is created.
    out = ["--output-dir", str(tmp_path / "runs")]

    # What each command printed on stderr: its warnings, one line each.
    stderrs = []

    def keras_kd_command(*args):
        status = main(list(args))
        captured = capsys.readouterr()
        assert status == 0, captured.err[-3000:]
        stderrs.append(captured.err)
        return captured.out

    stdout = keras_kd_command(
        "finetune", *data, "--test-data", str(test_path), *out, "--preset",
        tiny_preset, "--epochs", "1", "--sequence-length", "8", "--run-name", "teacher",
    )
    tmp_path = tmp_path / "runs"
    metrics = json.loads((tmp_path / "teacher" / "metrics.json").read_text())
    assert metrics["class_names"] == ["neg", "pos"]
    # The progress bars, then the metrics it wrote.
    assert json.loads(stdout[stdout.index('{\n  "class_names"'):]) == metrics
    assert sorted(os.listdir(tmp_path / "teacher")) == ["metrics.json", "model.keras"]
    assert metrics["budget"]["sequence_length"] == {"value": 8, "rule": "given"}
    assert metrics["trained"] == {"epochs": 1, "trained_epochs": 1, "best_epoch": 1}
    # Written with the user's umask, not tempfile's private 0600.
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(tmp_path / "teacher" / "metrics.json").st_mode & 0o777 == 0o666 & ~umask

    # The student's shape chosen to fit a size budget, here among one shape
    # (1 layer at half the teacher's width: 1 head of 8, from scratch); the
    # search itself is tested in tests/pipeline/test_student_search.py.
    monkeypatch.setattr(student_search, "NUM_LAYERS", (1,))
    monkeypatch.setattr(student_search, "WIDTH_FRACTIONS", (0.5,))
    # A budget no shape meets is refused before the run folder, the
    # teacher's cache or the generated texts.
    assert_one_line_error(
        main(["distill", *data, *out, "--teacher", str(tmp_path / "teacher" / "model.keras"),
              "--max-size-mb", "0.0001", "--run-name", "student",
              "--generated-texts", "6", "--generator", tiny_llama_preset]),
        capsys, "No student shape fits max_size_mb=0.0001", "at hidden 8", "Raise the budget.",
    )
    assert not (tmp_path / "student").exists()
    # With 6 texts written by a tiny causal LM, labelled by the teacher:
    # the distilled student's cache holds them after the training texts,
    # then the unlabelled texts.
    caches = []
    distill_students = pipeline.distill_students

    def recorded(*args, **kwargs):
        students, histories, cache = distill_students(*args, **kwargs)
        caches.append(len(cache))
        return students, histories, cache

    monkeypatch.setattr(pipeline, "distill_students", recorded)
    # And unlabelled texts of the user's: 4 new ones, a copy of a training
    # text and a repeat (both dropped).
    unlabelled = tmp_path.parent / "unlabelled.txt"
    new = reviews.train.texts[200:204]
    unlabelled.write_text("\n".join([*new, reviews.train.texts[0], new[0]]), encoding="utf-8")
    keras_kd_command(
        "distill", *data, *out, "--teacher", str(tmp_path / "teacher" / "model.keras"),
        "--max-size-mb", "1000", "--epochs", "1", "--run-name", "student",
        "--generated-texts", "6", "--generator", tiny_llama_preset,
        "--unlabelled-data", str(unlabelled),
    )
    student_metrics = json.loads((tmp_path / "student" / "metrics.json").read_text())
    # The search's cache (training texts) and the student's (with the
    # extra texts) are two: neither was built over the other.
    assert "teacher cache" not in stderrs[-1]
    # Seeded: the same 6 prompts give the same texts again (repeats dropped).
    config = PipelineConfig(generated_texts=6, generator=tiny_llama_preset)
    data_split = datasets.load(str(path), text_column="review", label_column="sentiment")
    generated = pipeline.generated_texts(config, data_split.train)
    # The tiny LM's texts copy no text of the data; in_domain_texts
    # already dropped its repeats.
    assert 1 <= len(generated) <= 6
    assert student_metrics["generated_texts"] == {
        "texts": len(generated), "dropped_known": 0, "dropped_repeats": 0,
    }
    assert student_metrics["unlabelled_texts"] == {
        "texts": 4, "dropped_known": 1, "dropped_repeats": 1,
    }
    assert caches == [len(data_split.train) + len(generated) + 4]
    assert sorted(os.listdir(tmp_path / "student")) == ["metrics.json", "model.keras"]
    assert student_metrics["teacher"] == str(tmp_path / "teacher" / "model.keras")
    [row] = student_metrics["search"]
    assert (row["num_layers"], row["hidden_dim"], row["fits"]) == (1, 8, True)
    assert 0 <= row["validation_accuracy"] <= 1 and row["size_mb"] > 0
    assert student_metrics["student"] == {"num_layers": 1, "hidden_dim": 8}
    student = transfer.load_finetune_model(str(tmp_path / "student" / "model.keras"))
    assert (student.backbone.num_layers, student.backbone.hidden_dim) == (1, 8)
    # Saved as measured: its vocabulary trimmed to the data (MiniLM's has
    # 30,522 tokens).
    assert student.preprocessor.tokenizer.vocabulary_size() < 30522
    # The sequence length is the teacher's: only the epochs are decided.
    assert sorted(student_metrics["budget"]) == ["epochs", "teacher_epochs"]
    # Without a budget, the student is saved trimmed as well, unless told.
    for name, flags in (("plain", ()), ("whole", ("--no-trim-vocabulary",))):
        keras_kd_command(
            "distill", *data, *out, "--teacher", str(tmp_path / "teacher" / "model.keras"),
            "--epochs", "1", "--student-layers", "1", "--run-name", name, *flags,
        )
    vocabulary_sizes = [
        transfer.load_finetune_model(str(tmp_path / name / "model.keras"))
        .preprocessor.tokenizer.vocabulary_size()
        for name in ("plain", "whole")
    ]
    assert vocabulary_sizes[0] < vocabulary_sizes[1] == 30522

    keras_kd_command(
        "export", *data, "--output-dir", str(tmp_path / "exports"),
        "--model", str(tmp_path / "student" / "model.keras"),
        "--quantization", "none", "--run-name", "bundle",
    )
    # A missing --output-dir is created for export as well.
    bundle = tmp_path / "exports" / "bundle"
    card = json.loads((bundle / "model_card.json").read_text())
    assert card["labels"] == ["neg", "pos"]
    assert card["tflite"]["model.tflite"]["max_abs_diff"] < 1e-4

    keras_eval = keras_kd_command(
        "evaluate", *data, "--model", str(tmp_path / "student" / "model.keras")
    )
    tflite_eval = keras_kd_command(
        "evaluate", *data, "--model", str(bundle / "model.tflite")
    )
    keras_accuracy = json.loads(keras_eval)["accuracy"]
    tflite_accuracy = json.loads(tflite_eval)["accuracy"]
    assert keras_accuracy == pytest.approx(student_metrics["test_accuracy"])
    assert tflite_accuracy == pytest.approx(keras_accuracy)
    assert sorted(os.listdir(tmp_path)) == ["exports", "plain", "student", "teacher", "whole"]

    # The whole of the user's test file, scored by both files alike.
    whole = [
        json.loads(keras_kd_command(
            "evaluate", "--data", str(test_path), *columns, "--split", "all",
            "--model", str(tmp_path / name),
        ))
        for name in ("student/model.keras", "exports/bundle/model.tflite")
    ]
    assert [result["examples"] for result in whole] == [16, 16]
    assert whole[1]["accuracy"] == pytest.approx(whole[0]["accuracy"])

    # Labels the .tflite file does not know are refused, not miscounted.
    renamed = test_path.parent / "renamed.csv"
    write_csv(renamed, zip(reviews.test.texts[:16], reviews.test.labels[:16]), ("bad", "good"))
    status = main([
        "evaluate", "--data", str(renamed), *columns, "--split", "all",
        "--model", str(bundle / "model.tflite"),
    ])
    assert_one_line_error(status, capsys, "renamed.csv", "['bad', 'good']", "['neg', 'pos']")
