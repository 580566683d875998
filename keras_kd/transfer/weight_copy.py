"""Copying weights between keras-hub backbones of one family.

The helpers that `build_student` (a shallower backbone from its teacher)
and `trim_vocabulary` (a backbone with a smaller embedding table) share.
"""


def encoder_blocks(backbone):
    """Returns the backbone's transformer layers, checking it is supported.

    Supported: keras-hub backbones with `transformer_layers` and a
    `num_layers` config entry (the BERT family, Llama, Gemma, Qwen, GPT-2,
    Mistral, ...).
    """
    blocks = list(getattr(backbone, "transformer_layers", None) or [])
    if not blocks or "num_layers" not in backbone.get_config():
        raise ValueError(
            "build_student and trim_vocabulary work on keras-hub backbones "
            "with `transformer_layers` and a `num_layers` config (the BERT "
            "family, Llama, Gemma, Qwen, GPT-2, ...). Received: "
            f"{type(backbone).__name__}"
        )
    return blocks


def merged_weights(layer):
    """`layer.get_weights()` with its LoRA adapters merged: each sublayer
    with LoRA enabled gives its adapted kernel (`kernel + A @ B` scaled, as
    its forward pass uses it) in place of the base kernel, and its
    `lora_kernel_a`/`lora_kernel_b` are left out, so the weights fit the
    same layer built without LoRA.

    Example:

    >>> import keras, numpy as np
    >>> layer = keras.layers.Dense(2)
    >>> layer.build((None, 3))
    >>> layer.enable_lora(1)
    >>> _ = layer.lora_kernel_b.assign(np.ones((1, 2)))
    >>> kernel, bias = merged_weights(layer)
    >>> len(layer.weights), np.allclose(kernel, layer.kernel.numpy()), bool((kernel != layer._kernel.numpy()).any())
    (4, True, True)
    """
    import keras

    adapters, merged = set(), {}
    for sublayer in layer._flatten_layers(include_self=True):
        if getattr(sublayer, "lora_enabled", False):
            adapters.update((id(sublayer.lora_kernel_a), id(sublayer.lora_kernel_b)))
            merged[id(sublayer._kernel)] = keras.ops.convert_to_numpy(sublayer.kernel)
    return [
        merged[id(weight)] if id(weight) in merged else keras.ops.convert_to_numpy(weight)
        for weight in layer.weights
        if id(weight) not in adapters
    ]


def copy_weights(source, target):
    """Copies the weights of layer `source` into layer `target`, whose
    weights must have the same shapes; LoRA adapters of `source` are
    merged into its kernels (`merged_weights`)."""
    source_weights = merged_weights(source)
    target_shapes = [w.shape for w in target.get_weights()]
    if [w.shape for w in source_weights] != target_shapes:
        raise ValueError(
            f"Cannot copy layer {source.name!r} into {target.name!r}: weight "
            f"shapes differ ({[w.shape for w in source_weights]} vs "
            f"{target_shapes})."
        )
    target.set_weights(source_weights)


def copy_except_blocks(source, target, skip=()):
    """Copies every layer with weights but the transformer layers (and the
    layers named in `skip`) from backbone `source` into the layer of the
    same name of backbone `target`."""
    source_blocks = {id(b) for b in source.transformer_layers}
    for layer in source.layers:
        if id(layer) in source_blocks or layer.name in skip or not layer.weights:
            continue
        copy_weights(layer, target.get_layer(layer.name))
