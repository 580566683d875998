"""`keras_kd.pipeline.report.build_report`: the report's figures from known
per-seed accuracies (the end-to-end run in test_pipeline.py uses one seed;
this is where several seeds' means and spreads are checked)."""

import types

import numpy as np
import pytest

from keras_kd.export.verify import VerificationReport
from keras_kd.pipeline import PipelineConfig
from keras_kd.pipeline.report import build_report


def _model(parameters):
    return types.SimpleNamespace(
        token_id_model=types.SimpleNamespace(count_params=lambda: parameters)
    )


def _check(size_bytes, litert_accuracy, keras_accuracy):
    return VerificationReport(
        path="x.tflite", size_bytes=size_bytes, num_examples=100,
        max_abs_diff=0.0, argmax_agreement=1.0, keras_accuracy=keras_accuracy,
        litert_accuracy=litert_accuracy, num_threads=2,
    )


def test_three_seeds_give_means_spreads_and_gains():
    config = PipelineConfig(teacher="t", seeds=(0, 1, 2), few_labels=40)
    distilled, baseline = [0.80, 0.82, 0.84], [0.78, 0.79, 0.83]
    few = {
        "labelled_texts": 40, "unlabelled_texts": 60, "teacher_epochs": 4,
        "student_steps": 4, "teacher": 0.7,
        "distilled": [0.70, 0.74, 0.72], "labels_only": [0.60, 0.66, 0.69],
    }
    curve = {"steps": [1], "accuracy": [0.5], "val_steps": [], "val_accuracy": []}
    chosen = {
        "sequence_length": {"value": 48, "rule": "auto: the 95th percentile"},
        "teacher_epochs": {"value": 3, "rule": "auto: 2 steps an epoch", "steps": 6},
        "epochs": {"value": 1, "rule": "given", "steps": 2},
    }
    trained = {
        "teacher": {"epochs": 3, "trained_epochs": 3, "best_epoch": 1},
        "distilled": {"epochs": 1, "trained_epochs": 1, "best_epoch": 1},
        "baseline": {"epochs": 1, "trained_epochs": 1, "best_epoch": None},
    }
    report = build_report(
        config,
        ["neg", "pos"],
        {"teacher": _model(1000), "distilled": _model(300), "shipped": _model(250)},
        {"teacher": 0.85, "distilled": distilled, "baseline": baseline, "few_labels": few},
        {"student": _check(2_000_000, 0.81, 0.80), "teacher": _check(8_000_000, 0.85, 0.85)},
        {"student": 2.0, "teacher": 6.0},
        {name: types.SimpleNamespace(curve=curve, budget=trained[name]) for name in trained},
        chosen,
    )
    models, summary = report["models"], report["summary"]
    kd, base = models["student with KD (Keras)"], models["student without KD (Keras)"]
    assert kd["test_accuracy"] == pytest.approx(0.82)
    assert kd["test_accuracy_std"] == pytest.approx(np.std(distilled))
    assert base["test_accuracy"] == pytest.approx(0.80)
    assert kd["parameters"] == base["parameters"] == 300
    assert models["student (TFLite dynamic_int8)"]["parameters"] == 250
    assert models["student (TFLite dynamic_int8)"]["size_mb"] == 2.0
    gains = [2.0, 3.0, 1.0]
    assert summary["KD gain over the same student without KD (points, mean of 3 seeds)"] == pytest.approx(2.0)
    assert summary["KD gain std over 3 seeds (points)"] == pytest.approx(np.std(gains))
    assert summary["accuracy retention (Keras student with KD / teacher, mean of 3 seeds)"] == pytest.approx(0.82 / 0.85)
    assert summary["TFLite size compression (teacher / student)"] == 4.0
    assert summary["TFLite latency speed-up (teacher / student)"] == 3.0
    assert summary["TFLite student vs its Keras model (points)"] == pytest.approx(1.0)
    # The shipped (trimmed) Keras student, 0.80, against seed 0's 0.80.
    assert summary["vocabulary trimming: shipped Keras student vs the same untrimmed (points)"] == pytest.approx(0.0)
    few_gains = [10.0, 8.0, 3.0]
    assert summary["few labels: KD gain (points, mean of 3 seeds)"] == pytest.approx(7.0)
    assert summary["few labels: KD gain std over 3 seeds (points)"] == pytest.approx(np.std(few_gains))
    row = models["few labels: student distilled on all 100 texts (Keras)"]
    assert row["test_accuracy"] == pytest.approx(0.72)
    assert row["test_accuracy_std"] == pytest.approx(np.std(few["distilled"]))
    assert models["few labels: teacher on 40 labels (Keras)"]["parameters"] == 1000
    assert report["seeds"] == {"seeds": [0, 1, 2], "distilled": distilled, "baseline": baseline}
    assert "mean ± std over seeds [0, 1, 2]" in report["notes"][1]
    # How the budget was chosen, and the epoch each training kept.
    assert report["budget"] == {
        **chosen,
        "trained": {
            "teacher": trained["teacher"],
            "student with KD": trained["distilled"],
            "student without KD": trained["baseline"],
        },
    }
    assert report["notes"][-2:] == [
        "Sequence length 48 (auto: the 95th percentile).",
        "Epochs: teacher at most 3 (auto: 2 steps an epoch), students at most 1 "
        "(given). Kept: teacher epoch 1 of 3 trained (best validation accuracy), "
        "student with KD epoch 1 of 1 trained (best validation accuracy), student "
        "without KD epoch 1 of 1 trained (no validation split: the last).",
    ]
