"""Which backbone layers train: layer groups, freeze specs, model layers.

`backbone_layer_groups` splits an encoder backbone into embeddings,
transformer layers and the layers above; `check_freeze` checks a freeze spec
as far as it can without the backbone; `resolve_freeze` turns a freeze
spec (`"none"`, `"all"`, `"embeddings"`, an int, a list of names, a
regular expression) into layer names; `model_layers` lists the layers of
a model that a freeze spec or `trainable_summary` refers to.
"""

import re

import keras

FREEZE_KEYWORDS = ("none", "all", "embeddings")


def backbone_layer_groups(backbone):
    """Splits a backbone's layers into embeddings, transformer layers, rest.

    Args:
        backbone: a keras-hub encoder backbone with a `transformer_layers`
            attribute (the BERT family: BERT, RoBERTa, DistilBERT, ...).

    Returns:
        A tuple `(embeddings, transformer_layers, others)` of lists of
        layers: the layers before the first transformer layer, the
        transformer layers from bottom to top, and the layers after them
        (BERT's `pooled_dense`). Input layers are left out.

    Example:

    >>> import keras_hub
    >>> from keras_kd.transfer import backbone_layer_groups
    >>> backbone = keras_hub.models.BertBackbone(
    ...     vocabulary_size=10, num_layers=2, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=8)
    >>> embeddings, blocks, others = backbone_layer_groups(backbone)
    >>> [len(embeddings), len(blocks), [layer.name for layer in others]]
    [6, 2, ['pooled_dense']]
    """
    blocks = list(getattr(backbone, "transformer_layers", None) or [])
    if not blocks:
        raise ValueError(
            "keras-kd fine-tunes keras-hub encoder backbones that list their "
            "blocks in `transformer_layers` (BERT, RoBERTa, DistilBERT, ...). "
            f"Received a {type(backbone).__name__} without them."
        )
    layers = [
        layer
        for layer in backbone.layers
        if not isinstance(layer, keras.layers.InputLayer)
    ]
    block_ids = {id(block) for block in blocks}
    positions = [i for i, layer in enumerate(layers) if id(layer) in block_ids]
    embeddings = layers[: positions[0]]
    others = [
        layer
        for layer in layers[positions[0] :]
        if id(layer) not in block_ids
    ]
    return embeddings, blocks, others


def check_freeze(freeze, num_layers=None):
    """Checks what a freeze spec can be checked against without a backbone.

    Args:
        freeze: a freeze spec, see `resolve_freeze`.
        num_layers: the backbone's transformer layers, if known; an integer
            spec must lie in `[0, num_layers]`.

    Returns:
        Whether only the backbone's layer names can finish the check (a list
        of names or a regular expression).

    Example:

    >>> check_freeze("embeddings", num_layers=6)
    False
    >>> check_freeze("transformer_layer_.*")
    True
    >>> check_freeze(9, num_layers=6)
    Traceback (most recent call last):
    ...
    ValueError: freeze=9 asks to freeze the embeddings and the first 9 transformer layers, but the backbone has 6. Pass an integer in [0, 6], or freeze="all".
    >>> check_freeze(-1)
    Traceback (most recent call last):
    ...
    ValueError: freeze=-1 is negative. Pass an integer N >= 0 (the embeddings and the first N transformer layers stay frozen), one of ('none', 'all', 'embeddings'), a list of layer names or a regular expression of them.
    """
    if isinstance(freeze, str) and freeze in FREEZE_KEYWORDS:
        return False
    if isinstance(freeze, int) and not isinstance(freeze, bool):
        # Refused with or without the backbone: "the first -1 transformer
        # layers" names no accepted value.
        if freeze < 0:
            bounds = ">= 0" if num_layers is None else f"in [0, {num_layers}]"
            raise ValueError(
                f"freeze={freeze} is negative. Pass an integer N {bounds} (the "
                "embeddings and the first N transformer layers stay frozen), "
                f"one of {FREEZE_KEYWORDS}, a list of layer names or a regular "
                "expression of them."
            )
        if num_layers is not None and freeze > num_layers:
            raise ValueError(
                f"freeze={freeze} asks to freeze the embeddings and the first "
                f"{freeze} transformer layers, but the backbone has "
                f"{num_layers}. Pass an integer in [0, {num_layers}], or "
                'freeze="all".'
            )
        return num_layers is None
    if isinstance(freeze, (list, tuple)):
        return True
    if isinstance(freeze, (str, re.Pattern)):
        try:
            re.compile(freeze)
        except re.error as error:
            raise ValueError(
                f"freeze={freeze!r} is not one of {FREEZE_KEYWORDS}, an "
                f"integer, a list of names, or a valid regular expression "
                f"({error})."
            ) from error
        return True
    raise TypeError(
        f"freeze must be one of {FREEZE_KEYWORDS}, an integer, a list of "
        "layer names, or a regular expression. Received: "
        f"freeze={freeze!r} of type {type(freeze).__name__}"
    )


def resolve_freeze(freeze, backbone, extra_names=()):
    """Returns the names of the layers that a freeze spec freezes.

    Args:
        freeze: `"none"`; `"all"` (the whole backbone: feature extraction);
            `"embeddings"`; an integer `n` (the embeddings plus the first `n`
            transformer layers); a list of layer names; or a regular
            expression (string or compiled) that must match whole layer
            names.
        backbone: the backbone whose layers the spec refers to.
        extra_names: further layer names (the heads) a list or regular
            expression may name.

    Returns:
        A list of layer names, in the backbone's order (then `extra_names`).

    Example:

    >>> import keras_hub
    >>> from keras_kd.transfer import resolve_freeze
    >>> backbone = keras_hub.models.BertBackbone(
    ...     vocabulary_size=10, num_layers=2, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=8)
    >>> resolve_freeze(1, backbone)[-2:]
    ['embeddings_dropout', 'transformer_layer_0']
    >>> resolve_freeze("transformer_layer_[0-9]|logits", backbone,
    ...                extra_names=["logits"])
    ['transformer_layer_0', 'transformer_layer_1', 'logits']
    >>> resolve_freeze(3, backbone)
    Traceback (most recent call last):
    ...
    ValueError: freeze=3 asks to freeze the embeddings and the first 3 transformer layers, but the backbone has 2. Pass an integer in [0, 2], or freeze="all".
    """
    embeddings, blocks, others = backbone_layer_groups(backbone)
    check_freeze(freeze, len(blocks))
    backbone_names = [layer.name for layer in embeddings + blocks + others]
    all_names = backbone_names + [n for n in extra_names if n not in backbone_names]
    if isinstance(freeze, str) and freeze in FREEZE_KEYWORDS:
        if freeze == "none":
            return []
        if freeze == "all":
            return backbone_names
        return [layer.name for layer in embeddings]
    if isinstance(freeze, int):
        return [layer.name for layer in embeddings + blocks[:freeze]]
    if isinstance(freeze, (list, tuple)):
        if not freeze:
            raise ValueError(
                "freeze=[] names no layer. Pass freeze=\"none\" to train "
                f"every layer, or some of these layer names: {all_names}"
            )
        unknown = [name for name in freeze if name not in all_names]
        if unknown:
            raise ValueError(
                f"freeze names layers that do not exist: {unknown}. Valid "
                f"layer names: {all_names}"
            )
        return [name for name in all_names if name in set(freeze)]
    pattern = re.compile(freeze)
    matched = [name for name in all_names if pattern.fullmatch(name)]
    if not matched:
        raise ValueError(
            f"The regular expression freeze={pattern.pattern!r} matches "
            f"no layer name (it must match whole names). Valid layer "
            f"names: {all_names}"
        )
    return matched


def model_layers(model):
    """Returns `(name, layer)` rows: backbone layers, then the rest.

    The rest are the model's own layers that hold weights (the heads),
    leaving out the backbone, the preprocessor and input layers. Any Keras
    model works; one without a `backbone` attribute gives its own layers.
    """
    backbone = getattr(model, "backbone", None)
    rows = []
    if backbone is not None:
        rows += [
            (layer.name, layer)
            for layer in backbone.layers
            if not isinstance(layer, keras.layers.InputLayer)
        ]
    rows += [
        (layer.name, layer)
        for layer in model.layers
        if layer is not backbone
        and layer is not getattr(model, "preprocessor", None)
        and not isinstance(layer, keras.layers.InputLayer)
        and layer.weights
    ]
    return rows
