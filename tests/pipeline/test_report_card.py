"""The report card: report.json, report.md and report.png of a run."""

import json
import os

import matplotlib.image
import pytest

from keras_kd.pipeline import write_report

REPORT = {
    "title": "test run",
    "models": {
        "teacher (Keras)": {"test_accuracy": 0.854, "parameters": 22713216},
        "teacher (TFLite float32)": {
            "test_accuracy": 0.853,
            "size_mb": 86.2,
            "latency_ms": 13.4,
        },
        "student (TFLite dynamic_int8)": {
            "test_accuracy": 0.842,
            "size_mb": 9.1,
            "latency_ms": 6.2,
        },
    },
    "curves": {"teacher": {"val_accuracy": [0.8, 0.85]}},
    "summary": {"TFLite size compression (teacher / student)": 86.2 / 9.1},
}


def test_write_report_writes_json_markdown_and_png(tmp_path):
    paths = write_report(REPORT, str(tmp_path))
    with open(paths["json"]) as f:
        written = json.load(f)
    assert written["models"] == REPORT["models"]
    assert written["image"] == "report.png"
    markdown = open(paths["markdown"]).read()
    assert "| student (TFLite dynamic_int8) | 0.8420 | – | 9.1 | 6.20 |" in markdown
    assert "| teacher (Keras) | 0.8540 | 22,713,216 | – | – |" in markdown
    assert "- TFLite size compression (teacher / student): 9.473" in markdown
    image = matplotlib.image.imread(paths["png"])
    assert image.shape[0] > 400 and image.shape[1] > 1000
    assert sorted(os.listdir(tmp_path)) == ["report.json", "report.md", "report.png"]
    # Written with the user's umask, not tempfile's private 0600.
    umask = os.umask(0)
    os.umask(umask)
    for path in paths.values():
        assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask, path


def test_an_existing_report_is_replaced_only_with_overwrite(tmp_path):
    markdown = tmp_path / "report.md"
    write_report(REPORT, str(tmp_path))
    markdown.write_text(markdown.read_text() + "mine\n")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_report({**REPORT, "title": "again"}, str(tmp_path))
    assert markdown.read_text().endswith("mine\n")
    write_report({**REPORT, "title": "again"}, str(tmp_path), overwrite=True)
    assert markdown.read_text().startswith("# again\n")


def test_missing_folder_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_report(REPORT, str(tmp_path / "nope"))


def test_curves_by_training_step(tmp_path):
    by_step = {
        **REPORT,
        "curves": {
            "teacher": {"steps": [10, 20], "accuracy": [0.6, 0.7],
                        "val_steps": [20], "val_accuracy": [0.72]},
            "student": {"steps": [10, 20], "accuracy": [0.5, 0.6],
                        "val_steps": [20], "val_accuracy": [0.65]},
        },
    }
    paths = write_report(by_step, str(tmp_path))
    with open(paths["json"]) as f:
        assert json.load(f)["curves"] == by_step["curves"]
    image = matplotlib.image.imread(paths["png"])
    assert image.shape[0] > 400 and image.shape[1] > 1000
