"""Each example runs offline on a tiny setting: the session's tiny BERT
preset, a CSV of 96 movie-review sentences (`--data`), sequence length 16,
one epoch, without XLA. (The quickstart notebook: tests/test_notebook.py, a
file of its own so that the two test processes of `make test` share the
work.)"""

import csv
import importlib.util
import os

import keras
import pytest

pytestmark = pytest.mark.large

EXAMPLES = os.path.join(os.path.dirname(__file__), os.pardir, "examples")


def load_example(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def without_xla(monkeypatch):
    """Every Keras `compile` gets `jit_compile=False`: the examples ask for
    XLA, which on the tiny BERT compiles for longer than it trains (about
    half of these tests' time). tests/distillation and tests/transfer cover
    the XLA paths."""
    compile_with_xla = keras.Model.compile

    def compile(self, *args, **kwargs):
        return compile_with_xla(self, *args, **{**kwargs, "jit_compile": False})

    monkeypatch.setattr(keras.Model, "compile", compile)


@pytest.fixture(scope="module")
def reviews_csv(tmp_path_factory, movie_reviews):
    """96 random training sentences in the `text`, `label` columns the
    examples read by default (split 80/10/10 by `keras_kd.datasets.load`)."""
    path = tmp_path_factory.mktemp("examples_data") / "reviews.csv"
    sample = movie_reviews.train.sample(96, seed=0)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for text, label in zip(sample.texts, sample.labels):
            writer.writerow([text, ["neg", "pos"][label]])
    return str(path)


def test_finetune_then_export_examples(tmp_path, tiny_preset, reviews_csv):
    out = ["--output-dir", str(tmp_path), "--data", reviews_csv]
    finetune = load_example("finetune_backbone")
    result = finetune.main(
        [*out, "--preset", tiny_preset, "--freeze", "1", "--epochs", "1",
         "--sequence-length", "16", "--verbose", "0"]
    )
    model_path = tmp_path / "finetune_backbone" / "model.keras"
    assert model_path.is_file()
    # Embeddings plus the first transformer layer are frozen.
    assert "transformer_layer_0" in result["frozen"]
    assert "transformer_layer_1" in result["trainable"]

    export = load_example("export_tflite")
    card = export.main([*out, "--model", str(model_path), "--quantization", "none"])
    assert card["tflite"]["model.tflite"]["max_abs_diff"] < 1e-4


def test_distill_classifier_example(tmp_path, tiny_preset, reviews_csv):
    distill = load_example("distill_classifier")
    results = distill.main(
        ["--output-dir", str(tmp_path), "--data", reviews_csv, "--teacher", tiny_preset,
         "--sequence-length", "16", "--epochs", "1", "--student-layers", "1",
         "--verbose", "0"]
    )
    assert (tmp_path / "distill_classifier" / "student.keras").is_file()
    assert results["student"]["parameters"] < results["teacher"]["parameters"]
    assert 0.0 <= results["student"]["test_accuracy"] <= 1.0


def test_distill_distributed_example(tmp_path, tiny_preset, reviews_csv):
    """Under `MirroredStrategy` on this process's one CPU device (the test
    process has set up its devices, so no `--cpu-devices`);
    tests/distillation/test_distribute.py compares 2 replicas with 1."""
    distill = load_example("distill_distributed")
    results = distill.main(
        ["--output-dir", str(tmp_path), "--data", reviews_csv, "--teacher", tiny_preset,
         "--sequence-length", "16", "--epochs", "2", "--student-layers", "1",
         "--batch-size", "16", "--verbose", "0"]
    )
    assert (results["strategy"], results["replicas"], results["global_batch"]) == (
        "MirroredStrategy", 1, 16
    )
    assert (tmp_path / "distill_distributed" / "student.keras").is_file()
    losses = results["history"]["loss"]
    assert len(losses) == 2 and all(0.0 < loss < 10.0 for loss in losses)
    assert 0.0 <= results["student_test_accuracy"] <= 1.0


def test_distill_whisper_example(tmp_path):
    from keras_kd.utils.testing import tiny_whisper_audio_to_text

    preset = tmp_path / "tiny_whisper"
    tiny_whisper_audio_to_text(num_layers=3, decoder_sequence_length=16).save_to_preset(str(preset))
    distill = load_example("distill_whisper")
    results = distill.main(
        ["--output-dir", str(tmp_path), "--teacher", str(preset), "--sentences", "6",
         "--test-utterances", "2", "--max-wer", "100", "--epochs", "1", "--label-length", "16", "--max-length", "12",
         "--jit-compile", "0", "--verbose", "0"]
    )
    folder = tmp_path / "distill_whisper"
    assert (folder / "student.keras").is_file()
    assert results["student"]["tflite_mb"] == (folder / "student.tflite").stat().st_size / 1e6
    assert results["student"]["parameters"] < results["teacher"]["parameters"]
    assert results["teacher"]["wer"] > 0.5  # a random teacher
