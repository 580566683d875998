"""Whisper's cached decoder, step by step, on keras-hub's layers and
weights: what `WhisperAudioToText.generate` and the exported `.tflite`
(`keras_kd.export.whisper_tflite_graph`) both run.

Keys and values are kept heads first, `[batch, heads, length, head_dim]`:
keras-hub's attention reads its caches as `[batch, length, heads,
head_dim]`, which XLA on CPU transposes at every step (for Whisper
tiny.en's 1,500-frame cross-attention caches, 12x slower per layer at
batch 32), and TFLite's runtime reads the context length from axis 2.

Under a mixed precision policy (`mixed_bfloat16`, `mixed_float16`) the
steps run in the layers' compute dtype, as keras-hub's own decoder, with
the attention softmax in float32; the float32 export is unchanged.
"""

from keras import ops

# Scores of masked positions: finite, as TFLite's softmax needs.
MASKED = -1e9


def heads_first(x):
    """`[batch, length, heads, head_dim]` -> `[batch, heads, length, head_dim]`."""
    return ops.transpose(x, (0, 2, 1, 3))


def cross_attention_caches(backbone, encoder_hidden_states):
    """Each decoder layer's cross-attention keys and values of the encoder's
    output, heads first: a list of `(keys, values)`."""
    caches = []
    for layer in backbone.decoder_transformer_layers:
        attention = layer._cross_attention_layer
        caches.append((
            heads_first(attention._key_dense(encoder_hidden_states)),
            heads_first(attention._value_dense(encoder_hidden_states)),
        ))
    return caches


def empty_self_caches(backbone, batch_size, length, dtype="float32"):
    """Zeroed self-attention caches, a `(keys, values)` pair per decoder
    layer, each `[batch_size, heads, length, head_dim]`."""
    shape = (batch_size, backbone.num_heads, length, backbone.hidden_dim // backbone.num_heads)
    return [(ops.zeros(shape, dtype), ops.zeros(shape, dtype)) for _ in backbone.decoder_transformer_layers]


def _attend(attention, query, keys, values, visible=None):
    """Scaled dot-product attention of `query` `[batch, T, hidden]` over
    heads-first keys and values, then the output projection."""
    query = heads_first(attention._query_dense(query))
    query = query * (1.0 / ops.shape(keys)[-1] ** 0.5)
    # float32: MASKED overflows float16, and bfloat16's 8-bit mantissa
    # would round the attention weights.
    scores = ops.cast(ops.matmul(query, ops.transpose(keys, (0, 1, 3, 2))), "float32")
    if visible is not None:
        scores = ops.where(visible, scores, MASKED)
    weights = ops.cast(ops.softmax(scores, axis=-1), values.dtype)
    output = ops.transpose(ops.matmul(weights, values), (0, 2, 1, 3))
    return attention._output_dense(output)


def decoder_layer_step(layer, x, start, self_cache, cross_cache):
    """One Whisper decoder layer (keras-hub's `WhisperDecoder`,
    pre-normalized) on the tokens at positions `start, start + 1, ...`,
    writing their self-attention keys and values into `self_cache`.

    Args:
        layer: the decoder layer.
        x: `[batch, T, hidden]` inputs.
        start: scalar int, the position of the first of the T tokens.
        self_cache: `(keys, values)`, `[batch, heads, length, head_dim]`.
        cross_cache: `(keys, values)` of the encoder's output.

    Returns:
        `(outputs, self_cache)`.
    """
    keys, values = self_cache
    residual = x
    h = layer._self_attention_layer_norm(x)
    attention = layer._self_attention_layer
    at = [0, 0, start, 0]
    keys = ops.slice_update(keys, at, heads_first(attention._key_dense(h)))
    values = ops.slice_update(values, at, heads_first(attention._value_dense(h)))
    # Token t sees the cache up to its own position, start + t.
    positions = start + ops.arange(ops.shape(x)[1], dtype="int32")
    visible = ops.less_equal(
        ops.arange(ops.shape(keys)[2], dtype="int32")[None, :], positions[:, None]
    )
    x = residual + _attend(attention, h, keys, values, visible[None, None])
    residual = x
    h = layer._cross_attention_layer_norm(x)
    x = residual + _attend(layer._cross_attention_layer, h, *cross_cache)
    residual = x
    h = layer._feedforward_layer_norm(x)
    h = layer._feedforward_output_dense(layer._feedforward_intermediate_dense(h))
    return residual + h, (keys, values)


def decoder_hidden_states(backbone, token_ids, start, self_caches, cross_caches):
    """The decoder's final hidden states for `token_ids` `[batch, T]` at
    positions `start, ...`, and the updated self-attention caches (one
    `(keys, values)` per layer).

    Example: the whole transcript at once gives the task's own logits.

    >>> import numpy as np
    >>> from keras_kd.utils.testing import tiny_whisper_audio_to_text
    >>> model = tiny_whisper_audio_to_text()
    >>> x, _, _ = model.preprocessor({"audio": np.zeros((1, 8000), "float32"), "text": ["re an"]})
    >>> cross = cross_attention_caches(model.backbone, model.call_encoder(x["encoder_features"]))
    >>> empty = empty_self_caches(model.backbone, 1, 8)
    >>> hidden, _ = decoder_hidden_states(model.backbone, x["decoder_token_ids"], 0, empty, cross)
    >>> logits = model.backbone.token_embedding(hidden, reverse=True)
    >>> kept = np.asarray(x["decoder_padding_mask"][0], bool)  # not the padding
    >>> bool(np.allclose(np.asarray(logits)[0, kept], np.asarray(model(x))[0, kept], atol=1e-5))
    True
    """
    embeddings = backbone.decoder_embeddings
    # The tables are float32 variables under a mixed policy too; the layers
    # compute (and write their caches) in their compute dtype.
    dtype = embeddings.compute_dtype
    x = ops.take(embeddings.token_embedding.embeddings, token_ids, axis=0)
    positions = start + ops.arange(ops.shape(token_ids)[1], dtype="int32")
    x = x + ops.take(embeddings.position_embedding.position_embeddings, positions, axis=0)[None]
    x = ops.cast(x, dtype)
    updated = []
    for layer, self_cache, cross_cache in zip(
        backbone.decoder_transformer_layers, self_caches, cross_caches
    ):
        self_cache = tuple(ops.cast(c, dtype) for c in self_cache)
        cross_cache = tuple(ops.cast(c, dtype) for c in cross_cache)
        x, self_cache = decoder_layer_step(layer, x, start, self_cache, cross_cache)
        updated.append(self_cache)
    return backbone.decoder_layer_norm(x), updated
