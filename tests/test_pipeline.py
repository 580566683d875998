import json
import os

import numpy as np
import pytest

from keras_kd import datasets, pipeline
from keras_kd.export import TFLiteTextClassifier


def test_pipeline_end_to_end_on_a_tiny_teacher(tmp_path, tiny_preset):
    config = pipeline.PipelineConfig.quick(
        teacher=tiny_preset,
        student_layers=1,
        sequence_length=16,
        max_train=160,
        max_test=64,
        latency_runs=3,
        output_dir=str(tmp_path),
        run_name="run",
        verbose=0,
    )
    report = pipeline.run(config)
    run_dir = tmp_path / "run"
    assert sorted(os.listdir(tmp_path)) == ["run"]
    for name in ("report.json", "report.md", "report.png", "student.keras"):
        assert (run_dir / name).is_file()
    assert json.loads((run_dir / "report.json").read_text())["models"] == report["models"]

    models = report["models"]
    assert (
        models["student with KD (Keras)"]["parameters"]
        < models["teacher (Keras)"]["parameters"]
    )
    student_file = models["student (TFLite dynamic_int8)"]
    assert student_file["size_mb"] < models["teacher (TFLite float32)"]["size_mb"]
    # The reported TFLite accuracy is that of the shipped file on the test texts.
    test = datasets.load("movie_reviews").test
    texts, labels = test.texts[:64], test.labels[:64]
    classifier = TFLiteTextClassifier(
        str(run_dir / "student_dynamic_int8.tflite")
    )
    accuracy = float(np.mean(classifier.predict(texts).argmax(-1) == labels))
    assert student_file["test_accuracy"] == pytest.approx(accuracy)
    assert set(report["curves"]) == {"teacher", "student with KD", "student without KD"}
    summary = report["summary"]
    assert summary["TFLite size compression (teacher / student)"] == pytest.approx(
        models["teacher (TFLite float32)"]["size_mb"] / student_file["size_mb"]
    )


def test_existing_run_folder_is_refused_before_any_work(tmp_path):
    (tmp_path / "run").mkdir()
    config = pipeline.PipelineConfig(output_dir=str(tmp_path), run_name="run")
    with pytest.raises(FileExistsError, match="overwrite"):
        pipeline.run(config)
