"""Task heads: output shapes per kind, multi-task models, argument checks."""

import keras
import keras_hub
import numpy as np
import pytest

from keras_kd import transfer
from keras_kd.transfer import heads as kd_heads


def test_head_output_shapes(minilm):
    x = minilm.preprocessor(["a fine film", "a dull one"])
    cases = {
        "classification": (3, (2, 3)),
        "multilabel": (4, (2, 4)),
        "regression": (None, (2, 1)),
        "token_classification": (5, (2, 32, 5)),
    }
    for kind, (classes, shape) in cases.items():
        model = transfer.build_finetune_model(minilm.backbone, head=kind, num_classes=classes)
        out = keras.ops.convert_to_numpy(model.token_id_model(x))
        assert out.shape == shape, kind
        if kind == "multilabel":
            assert ((out > 0) & (out < 1)).all()
    custom = transfer.build_finetune_model(minilm.backbone, head=keras.layers.Dense(7, name="mine"))
    assert custom.token_id_model(x).shape == (2, 7)


def test_multi_task_model_has_one_output_per_head(minilm):
    model = transfer.build_finetune_model(
        minilm.backbone,
        head={"sentiment": "classification", "rating": "regression", "tags": "multilabel"},
        num_classes={"sentiment": 2, "tags": 3},
        preprocessor=minilm.preprocessor,
    )
    out = model.predict(["a fine film", "a dull one"], verbose=0)
    assert {k: v.shape for k, v in out.items()} == {
        "sentiment": (2, 2),
        "rating": (2, 1),
        "tags": (2, 3),
    }
    assert isinstance(model.loss["rating"], keras.losses.MeanSquaredError)


def test_head_kinds_losses_and_bad_arguments():
    head = transfer.get_head("token_classification", num_classes=4, name="tags")
    assert (head.name, head.per_token, kd_heads.head_is_per_token(head)) == ("tags", True, True)
    assert head.default_loss().ignore_class == kd_heads.TOKEN_IGNORE_INDEX == -100
    assert tuple(head(np.zeros((2, 5, 8), "float32")).shape) == (2, 5, 4)
    dense = keras.layers.Dense(2)
    assert transfer.get_head(dense) is dense
    with pytest.raises(ValueError, match=r"Unknown head kind='ranking'"):
        transfer.Head("ranking", 2)
    with pytest.raises(ValueError, match=r"`dropout` must be a finite number >= 0 and < 1.*dropout=-0.1"):
        transfer.Head("classification", 2, dropout=-0.1)
    with pytest.raises(TypeError, match=r"A head must be one of.*Received: 3 of type int"):
        transfer.get_head(3)
    with pytest.raises(TypeError, match=r"Head 'b' must be one of"):
        kd_heads.make_heads({"a": "regression", "b": 3}, None, 0.1)


def _token_classifier():
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=30, num_layers=1, num_heads=2, hidden_dim=8,
        intermediate_dim=16, max_sequence_length=6,
    )
    return transfer.build_finetune_model(
        backbone, head="token_classification", num_classes=3, dropout=0.0
    )


def test_token_accuracy_counts_only_labelled_tokens(tmp_path):
    model = _token_classifier()
    rng = np.random.default_rng(0)
    x = {
        "token_ids": rng.integers(0, 30, size=(4, 6)).astype("int32"),
        "padding_mask": np.ones((4, 6), "int32"),
        "segment_ids": np.zeros((4, 6), "int32"),
    }
    predicted = np.asarray(model.predict(x, verbose=0)).argmax(-1)
    # Labels right at the first 3 tokens, wrong at the 4th, -100 after it.
    labels = np.full((4, 6), kd_heads.TOKEN_IGNORE_INDEX)
    labels[:, :3] = predicted[:, :3]
    labels[:, 3] = (predicted[:, 3] + 1) % 3
    logs = model.evaluate(x, labels, batch_size=2, verbose=0, return_dict=True)
    assert logs["accuracy"] == pytest.approx(12 / 16)
    # Weights weigh the labelled tokens only; per example or per token.
    logs = model.evaluate(x, labels, sample_weight=np.repeat([[1.0], [0], [0], [0]], 6, axis=1),
                          batch_size=4, verbose=0, return_dict=True)
    assert logs["accuracy"] == pytest.approx(3 / 4)
    metric = kd_heads.MaskedSparseCategoricalAccuracy()
    metric.update_state(labels, model.predict(x, verbose=0), sample_weight=[3.0, 1.0, 0.0, 0.0])
    assert float(metric.result()) == pytest.approx((3 * 3 + 3) / (3 * 4 + 4))
    metric = keras.metrics.deserialize(keras.metrics.serialize(kd_heads.MaskedSparseCategoricalAccuracy(-1)))
    assert (type(metric), metric.ignore_class, metric.name) == (
        kd_heads.MaskedSparseCategoricalAccuracy, -1, "accuracy")
    model.save(tmp_path / "tagger.keras")
    loaded = keras.saving.load_model(tmp_path / "tagger.keras")
    logs = loaded.evaluate(x, labels, batch_size=2, verbose=0, return_dict=True)
    assert logs["accuracy"] == pytest.approx(12 / 16)
