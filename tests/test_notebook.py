"""The quickstart notebook runs offline on a tiny setting (the session's
tiny BERT preset, 64 training and 32 test sentences, sequence length 16)."""

import os

import nbclient
import nbformat
import numpy as np
import pytest

from keras_kd.export import TFLiteTextClassifier

pytestmark = pytest.mark.large

EXAMPLES = os.path.join(os.path.dirname(__file__), os.pardir, "examples")


def test_quickstart_notebook_executes(tmp_path, tiny_preset):
    notebook = nbformat.read(os.path.join(EXAMPLES, "quickstart.ipynb"), as_version=4)
    parameters = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    parameters.source = (
        f"PRESET = {tiny_preset!r}\nTRAIN_EXAMPLES = 64\nTEST_EXAMPLES = 32\n"
        "SEQUENCE_LENGTH = 16\nEPOCHS = 1\nSTUDENT_LAYERS = 1"
    )
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    assert (tmp_path / "saved_models" / "quickstart" / "student.tflite").is_file()
    printed = "".join(
        output.get("text", "")
        for output in notebook.cells[-1].outputs
        if output.get("name") == "stdout"
    )
    size_line = next(line for line in printed.splitlines() if " MB" in line)
    size_mb = float(size_line.split(" MB")[0])
    assert 0 < size_mb < 10
    classifier = TFLiteTextClassifier(
        str(tmp_path / "saved_models" / "quickstart" / "student.tflite")
    )
    probabilities = classifier.predict(["A gorgeous, witty film.", "Dull and lifeless."])
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-3)
