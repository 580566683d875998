"""Each example and the quickstart notebook run offline on a tiny setting."""

import importlib.util
import os

import nbclient
import nbformat
import numpy as np

from keras_kd.export import TFLiteTextClassifier

EXAMPLES = os.path.join(os.path.dirname(__file__), os.pardir, "examples")


def load_example(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_finetune_then_export_examples(tmp_path, tiny_preset):
    out = ["--output-dir", str(tmp_path), "--quick"]
    finetune = load_example("finetune_backbone")
    result = finetune.main([*out, "--preset", tiny_preset, "--freeze", "1", "--verbose", "0"])
    model_path = tmp_path / "finetune_backbone" / "model.keras"
    assert model_path.is_file()
    # Embeddings plus the first transformer layer are frozen.
    assert "transformer_layer_0" in result["frozen"]
    assert "transformer_layer_1" in result["trainable"]

    export = load_example("export_tflite")
    card = export.main([*out, "--model", str(model_path), "--quantization", "none"])
    assert card["tflite"]["model.tflite"]["max_abs_diff"] < 1e-4


def test_distill_classifier_example(tmp_path, tiny_preset):
    distill = load_example("distill_classifier")
    results = distill.main(
        ["--output-dir", str(tmp_path), "--quick", "--teacher", tiny_preset,
         "--student-layers", "1", "--verbose", "0"]
    )
    assert (tmp_path / "distill_classifier" / "student.keras").is_file()
    assert results["student"]["parameters"] < results["teacher"]["parameters"]
    assert 0.0 <= results["student"]["test_accuracy"] <= 1.0


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
