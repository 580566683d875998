"""`pipeline.run(..., resume=True)`: a run interrupted after its teacher
continues from it, and a partial run is never run over by mistake."""

import dataclasses
import json
import os

import numpy as np
import pytest

from keras_kd import pipeline, transfer
from keras_kd.pipeline import runner


def test_an_interrupted_run_resumes_with_its_teacher(
    tmp_path, tiny_preset, movie_reviews, monkeypatch
):
    config = pipeline.PipelineConfig.quick(
        teacher=tiny_preset,
        student_layers=1,
        sequence_length=8,
        max_train=64,
        max_test=16,
        latency_runs=1,
        # A tiny model compiles longer under XLA than it trains.
        jit_compile=False,
        output_dir=str(tmp_path),
        run_name="run",
        verbose=0,
    )

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed while distilling")

    monkeypatch.setattr(runner, "distill_students", killed)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run(config)
    partial = tmp_path / ".run.partial"
    assert sorted(os.listdir(tmp_path)) == [".run.partial"]
    teacher_file = partial / "teacher.keras"
    teacher_bytes, teacher_mtime = teacher_file.read_bytes(), teacher_file.stat().st_mtime_ns
    recorded = json.loads((partial / "progress.json").read_text())
    assert list(recorded["steps"]) == ["teacher"]

    # Neither a new run nor a resumed one with other settings touches it.
    with pytest.raises(FileExistsError, match=r"resume=True \(--resume\).*overwrite=True"):
        pipeline.run(config)
    with pytest.raises(ValueError, match=r"epochs=2 \(started with 1\)"):
        pipeline.run(dataclasses.replace(config, epochs=2, resume=True))
    assert teacher_file.stat().st_mtime_ns == teacher_mtime

    monkeypatch.undo()

    def finetuned_again(*args, **kwargs):
        raise AssertionError("the resumed run fine-tuned the teacher again")

    monkeypatch.setattr(runner, "finetune_teacher", finetuned_again)
    report = pipeline.run(dataclasses.replace(config, resume=True))
    monkeypatch.undo()

    run_dir = tmp_path / "run"
    assert sorted(os.listdir(tmp_path)) == ["run"]
    assert (run_dir / "teacher.keras").read_bytes() == teacher_bytes
    assert not (run_dir / "progress.json").exists() and not (run_dir / ".resume").exists()
    assert json.loads((run_dir / "report.json").read_text())["models"] == report["models"]

    # The report holds the teacher's accuracy measured before the
    # interruption, and students distilled from the saved teacher, equal to
    # students distilled from it now.
    assert report["models"]["teacher (Keras)"]["test_accuracy"] == (
        recorded["steps"]["teacher"]["accuracy"]
    )
    seed = config.seeds[0]
    train = movie_reviews.train.sample(config.max_train, seed)
    validation = movie_reviews.validation.sample(config.max_test, seed)
    test = movie_reviews.test.sample(config.max_test, seed)
    teacher = transfer.load_finetune_model(str(run_dir / "teacher.keras"))

    def accuracy(model):
        return pipeline.evaluate_accuracy(model, test, config.batch_size, jit_compile=False)

    assert accuracy(teacher) == report["models"]["teacher (Keras)"]["test_accuracy"]
    students, _, _ = pipeline.distill_students(
        config, teacher, train, validation, str(tmp_path / "cache"), seed=seed
    )
    for name in ("distilled", "baseline"):
        assert report["seeds"][name] == [accuracy(students[name])]
    # The shipped file is that student (its vocabulary trimmed to the
    # training texts, on which it predicts the same).
    shipped = transfer.load_finetune_model(str(run_dir / "student.keras"))
    np.testing.assert_allclose(
        shipped.predict(train.texts[:16], verbose=0),
        students["distilled"].predict(train.texts[:16], verbose=0),
        atol=1e-5,
    )
    assert "resume" not in report["settings"]
