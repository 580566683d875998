"""Freeze specs: the layers each form freezes and the parameters that train."""

import pytest

from keras_kd import transfer


def test_resolve_freeze_forms_on_a_tiny_backbone(tiny_backbone):
    backbone = tiny_backbone(num_layers=2)
    embeddings, blocks, others = transfer.backbone_layer_groups(backbone)
    assert [layer.name for layer in embeddings] == [
        "token_embedding", "position_embedding", "segment_embedding",
        "embeddings_add", "embeddings_layer_norm", "embeddings_dropout",
    ]
    assert [b.name for b in blocks] == ["transformer_layer_0", "transformer_layer_1"]
    assert [layer.name for layer in others] == ["pooled_dense"]
    names = [layer.name for layer in embeddings + blocks + others]
    assert transfer.resolve_freeze("none", backbone) == []
    assert transfer.resolve_freeze("all", backbone) == names
    assert transfer.resolve_freeze("embeddings", backbone) == names[:6]
    assert transfer.resolve_freeze(2, backbone) == names[:8]
    assert transfer.resolve_freeze(["pooled_dense", "token_embedding"], backbone) == ["token_embedding", "pooled_dense"]
    assert transfer.resolve_freeze("logits|.*_1", backbone, extra_names=["logits"]) == ["transformer_layer_1", "logits"]
    with pytest.raises(TypeError, match=r"freeze=2.5 of type float"):
        transfer.resolve_freeze(2.5, backbone)


@pytest.mark.parametrize(
    "freeze, expected",
    [
        ("none", lambda p: p.NONE),
        ("all", lambda p: p.HEAD),
        ("embeddings", lambda p: 6 * p.BLOCK + p.HEAD),
        (0, lambda p: 6 * p.BLOCK + p.HEAD),
        (2, lambda p: 4 * p.BLOCK + p.HEAD),
        (["token_embedding", "transformer_layer_5"], lambda p: p.NONE - p.TOKEN_EMB - p.BLOCK),
        (r"transformer_layer_[0-2]", lambda p: p.NONE - 3 * p.BLOCK),
        (["logits"], lambda p: p.NONE - p.HEAD),
    ],
    ids=["none", "all", "embeddings", "0", "2", "names", "regex", "head"],
)
def test_trainable_counts_match_every_freeze_form(minilm, minilm_params, n_trainable, freeze, expected):
    p = minilm_params
    expected = expected(p)
    model = transfer.build_finetune_model(minilm.backbone, num_classes=2, freeze=freeze)
    summary = transfer.trainable_summary(model, print_fn=None)
    assert n_trainable(model) == expected
    assert summary["trainable_params"] == expected
    assert summary["trainable_params"] + summary["frozen_params"] == p.EMBEDDINGS + 6 * p.BLOCK + p.POOLER + p.HEAD
    # The pooler is unused with mean pooling, so it is frozen too.
    assert "pooled_dense" in summary["frozen"]


def test_cls_pooling_trains_the_pooler(minilm, minilm_params, n_trainable):
    model = transfer.build_finetune_model(minilm.backbone, num_classes=2, pooling="cls")
    assert n_trainable(model) == minilm_params.NONE + minilm_params.POOLER


def test_lora_trains_only_adapters_and_head(minilm_params, n_trainable):
    model = transfer.build_finetune_model("minilm_l6", num_classes=2, lora_rank=4)
    summary = transfer.trainable_summary(model, print_fn=None)
    assert n_trainable(model) == minilm_params.LORA_4 + minilm_params.HEAD
    assert summary["partial"] == [f"transformer_layer_{i}" for i in range(6)]
