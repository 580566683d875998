"""Feature extractors: a model's outputs and chosen intermediate tensors of
its keras-hub backbone, from one forward pass.

A feature key names a tensor of the backbone's transformer layers:
`"input_{i}"` is the input of transformer layer `i` (`"input_0"`: the
embeddings), `"output_{i}"` its output (the hidden states after it). The
extractor is a functional model on the same layers (so on the same
weights): the gradients of its outputs reach the model's weights.
"""

import re

import keras

_KEY = re.compile(r"^(input|output)_(\d+)$")


def find_backbone(model):
    """The keras-hub backbone with `transformer_layers` that `model` is, or
    holds as one of its layers (a `FinetuneModel`'s, a `CausalLM`'s).

    Raises:
        ValueError: `model` is not a functional model holding one such
            backbone.

    Example:

    >>> from keras_kd.utils.testing import tiny_bert_classifier
    >>> model = tiny_bert_classifier(num_layers=2)
    >>> find_backbone(model) is model.backbone
    True
    """
    candidates = [model] + list(getattr(model, "layers", []))
    found = [m for m in candidates if getattr(m, "transformer_layers", None)]
    if len(found) != 1 or getattr(model, "outputs", None) is None:
        raise ValueError(
            "Feature losses read intermediate layers of a keras-hub backbone "
            "(one with `transformer_layers`, such as BertBackbone), held by a "
            "functional model (a `keras_kd.transfer.FinetuneModel`, a "
            f"keras-hub task). Received: {model.name!r} of type "
            f"{type(model).__name__}, with {len(found)} such backbones. Build "
            "the model with `keras_kd.transfer.build_finetune_model` or "
            "`student_like`, or compile without `feature_losses`."
        )
    return found[0]


def feature_tensor(blocks, key):
    """The symbolic tensor of feature key `key` in the backbone graph of the
    transformer layers `blocks`."""
    kind, index = _KEY.match(key).groups()
    block = blocks[int(index)]
    # The first call of a block is the backbone's own graph.
    if kind == "output":
        return block.output
    return keras.tree.flatten(block.input)[0]


def feature_extractor(model, keys):
    """A functional model on `model`'s inputs that returns
    `{"logits": model's output, "features": {key: tensor}}` in one forward
    pass, sharing `model`'s layers and weights.

    Args:
        model: a functional model on a keras-hub backbone (see
            `find_backbone`).
        keys: feature keys, `"input_{i}"` or `"output_{i}"`.

    Returns:
        A `keras.Model`.

    Example:

    >>> import numpy as np
    >>> from keras_kd.utils.testing import tiny_bert_classifier, tiny_bert_inputs
    >>> model = tiny_bert_classifier(num_layers=2, hidden_dim=8)
    >>> extractor = feature_extractor(model, ["input_0", "output_1"])
    >>> x = tiny_bert_inputs(batch_size=3, length=5)
    >>> out = extractor(x)
    >>> tuple(out["logits"].shape), tuple(out["features"]["output_1"].shape)
    ((3, 2), (3, 5, 8))
    >>> bool(np.allclose(out["logits"], model(x), atol=1e-6))
    True
    """
    backbone = find_backbone(model)
    blocks = list(backbone.transformer_layers)
    bad = [
        k for k in keys
        if not _KEY.match(k) or int(_KEY.match(k).group(2)) >= len(blocks)
    ]
    if bad:
        raise ValueError(
            f"Unknown feature keys {bad}: the backbone of {model.name!r} has "
            f"{len(blocks)} transformer layers; pass 'input_{{i}}' or "
            f"'output_{{i}}' with 0 <= i < {len(blocks)}."
        )
    features = {key: feature_tensor(blocks, key) for key in keys}
    if backbone is model:
        return keras.Model(
            model.input, {"logits": model.output, "features": features}
        )
    extended = keras.Model(
        backbone.input, {"outputs": backbone.output, "features": features}
    )
    found = []

    def call_function(layer, *args, **kwargs):
        if layer is not backbone:
            return layer(*args, **kwargs)
        result = extended(*args, **kwargs)
        found.append(result["features"])
        return result["outputs"]

    # The model's graph rebuilt on the same layers (`clone_function`
    # returns each layer itself), with the backbone's node replaced by the
    # extended backbone, so the backbone still runs once. A plain
    # functional copy first: cloning a compiled task would compile the clone.
    plain = keras.Model(model.input, model.output)
    graph = keras.models.clone_model(
        plain, clone_function=lambda layer: layer, call_function=call_function
    )
    if len(found) != 1:
        raise ValueError(
            f"The backbone of {model.name!r} is called {len(found)} times in "
            "its graph; feature losses need a model that calls it once."
        )
    return keras.Model(graph.input, {"logits": graph.output, "features": found[0]})
