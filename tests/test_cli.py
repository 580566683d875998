"""The `keras-kd` command: bad input gives one line on stderr, and each
subcommand works alone on a user's own CSV file."""

import csv
import json
import os
import subprocess
import sys

import pytest

from keras_kd import datasets


def keras_kd_command(*args, cwd=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [sys.executable, "-m", "keras_kd", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env=env,
    )


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_unknown_subcommand_and_option():
    assert_one_line_error(keras_kd_command("bogus"), "invalid choice: 'bogus'")
    assert_one_line_error(
        keras_kd_command("demo", "--nope"), "unrecognized arguments: --nope"
    )


@pytest.mark.parametrize("command", ["demo", "finetune", "distill", "export", "evaluate"])
def test_help_shows_a_working_example(command):
    result = keras_kd_command(command, "--help")
    assert result.returncode == 0
    assert "examples:" in result.stdout
    assert f"keras-kd {command}" in result.stdout.split("examples:")[1]


def test_existing_output_folder_is_refused(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    result = keras_kd_command(
        "demo", "--quick", "--output-dir", str(tmp_path), "--run-name", "taken"
    )
    assert_one_line_error(result, "exists", "--overwrite")
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"


def test_bad_few_labels_is_refused(tmp_path):
    result = keras_kd_command(
        "demo", "--quick", "--few-labels", "0", "--output-dir", str(tmp_path)
    )
    assert_one_line_error(result, "few_labels=0", "positive int")
    # --quick trains on 512 texts: 512 labels leave none unlabelled.
    result = keras_kd_command(
        "demo", "--quick", "--few-labels", "512", "--output-dir", str(tmp_path)
    )
    assert_one_line_error(result, "few_labels=512", "512 texts")
    assert os.listdir(tmp_path) == []


def test_unreadable_data_and_missing_model(tmp_path):
    result = keras_kd_command("evaluate", "--model", "x.keras", "--data", str(tmp_path / "none.csv"))
    assert_one_line_error(result, "cannot read --data", "none.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("review,stars\ngood,1\n")
    result = keras_kd_command("finetune", "--data", str(bad), "--output-dir", str(tmp_path))
    assert_one_line_error(result, "cannot read --data", "text")
    result = keras_kd_command(
        "distill", "--teacher", str(tmp_path / "missing.keras"), "--output-dir", str(tmp_path)
    )
    assert_one_line_error(result, "--teacher", "missing.keras")


def test_finetune_distill_export_evaluate_on_a_csv(tmp_path, tiny_preset):
    reviews = datasets.load("movie_reviews")
    path = tmp_path / "reviews.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["review", "sentiment"])
        for text, label in zip(reviews.train.texts[:120], reviews.train.labels[:120]):
            writer.writerow([text, ["neg", "pos"][label]])
    data = ["--data", str(path), "--text-column", "review", "--label-column", "sentiment"]
    out = ["--output-dir", str(tmp_path)]

    result = keras_kd_command(
        "finetune", *data, *out, "--preset", tiny_preset, "--epochs", "1",
        "--sequence-length", "16", "--run-name", "teacher",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "teacher" / "metrics.json").read_text())
    assert metrics["class_names"] == ["neg", "pos"]

    result = keras_kd_command(
        "distill", *data, *out, "--teacher", str(tmp_path / "teacher" / "model.keras"),
        "--student-layers", "1", "--epochs", "1", "--run-name", "student",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    student_metrics = json.loads((tmp_path / "student" / "metrics.json").read_text())

    result = keras_kd_command(
        "export", *data, *out, "--model", str(tmp_path / "student" / "model.keras"),
        "--quantization", "none", "--run-name", "bundle",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    card = json.loads((tmp_path / "bundle" / "model_card.json").read_text())
    assert card["labels"] == ["neg", "pos"]
    assert card["tflite"]["model.tflite"]["max_abs_diff"] < 1e-4

    keras_eval = keras_kd_command(
        "evaluate", *data, "--model", str(tmp_path / "student" / "model.keras")
    )
    tflite_eval = keras_kd_command(
        "evaluate", *data, "--model", str(tmp_path / "bundle" / "model.tflite")
    )
    assert keras_eval.returncode == 0 and tflite_eval.returncode == 0, tflite_eval.stderr[-3000:]
    keras_accuracy = json.loads(keras_eval.stdout)["accuracy"]
    tflite_accuracy = json.loads(tflite_eval.stdout)["accuracy"]
    assert keras_accuracy == pytest.approx(student_metrics["test_accuracy"])
    assert tflite_accuracy == pytest.approx(keras_accuracy)
