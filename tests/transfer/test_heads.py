"""Task heads: output shapes per kind, multi-task models, argument checks."""

import keras
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
