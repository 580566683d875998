"""`CachedDecoder`: a keras-hub causal LM's forward pass (Llama, Qwen 2,
Mistral: `check_supported`) with a
key-value cache in LiteRT-LM's layout, one signature per prefill length plus
`decode`, ready for `keras.export.ExportArchive` and the TFLite converter.

LiteRT-LM runs a `.tflite` with a `decode` signature and `prefill_<T>`
signatures. Each takes `tokens` (int32 `[1, T]`) and `input_pos` (int32
`[T]`, the tokens' positions) and, per decoder layer `i`, `kv_cache_k_{i}`
and `kv_cache_v_{i}` (float32 `[1, kv_heads, cache_length, head_dim]`, the
runtime reads the context length from axis 2), and returns the whole
updated caches under the same names; `decode` also returns `logits`
(float32 `[1, 1, vocabulary]`). The runtime binds one buffer to a cache's
input and output, so the update is in place on device.

keras-hub's own cached call stacks all layers' caches in one 6-D tensor,
which TFLite's StridedSlice does not support, and keeps keys as
`[batch, length, heads, head_dim]`. `CachedDecoder` instead runs the
backbone's own sublayers (norms, query/key/value/output projections, rotary
embedding, feed-forward) layer by layer with one 4-D cache per layer, so the
weights are the model's variables (frozen into constants by the converter)
and the arithmetic is keras-hub's.

Conventions of the graph:

- Cache writes are one contiguous block at `input_pos[0]`
  (`keras.ops.slice_update`, TFLite's builtin DYNAMIC_UPDATE_SLICE). The
  runtime pads a prefill block with token 0 at position 0; those rows write
  past the real tokens, where later steps overwrite them before anything
  reads them. Prefill pads the cache by `T` positions before the write so a
  block that runs past the end of the cache is not shifted back by the
  op's index clamping.
- Token `i` attends to cache positions `<= input_pos[i]`: the causal mask is
  computed inside the graph, so the signatures take no `mask` input.
- Grouped-query attention folds the query heads sharing a key-value head
  into the row axis instead of repeating the cache.
- The output projection of tied embeddings multiplies by the embedding
  table with `transpose_b=True` (TFLite's FULLY_CONNECTED takes weights as
  `[out, in]`, which the table already is), and the final norm applies its
  scale before normalising (else the converter folds that constant multiply
  into the projection's weights, a second, scaled table), so the converted
  file holds the table once, shared by the lookup and the output layer.
"""

import keras
import tensorflow as tf
from keras import ops

# The runtime's tensor names.
TOKENS = "tokens"
INPUT_POS = "input_pos"
LOGITS = "logits"
DECODE = "decode"
PREFILL = "prefill_{}"
# keras-hub's masked softmax adds this to masked scores.
_MASKED = -1e9


def cache_names(num_layers):
    """The runtime's names of the per-layer caches, keys then values."""
    return [f"kv_cache_k_{i}" for i in range(num_layers)] + [
        f"kv_cache_v_{i}" for i in range(num_layers)
    ]


def _families():
    """The keras-hub backbones whose decoder layers `CachedDecoder` runs:
    pre-norm RMS, rotary attention with grouped key-value heads (Qwen 2's
    with query, key and value biases, which its dense layers carry), a
    gated feed-forward."""
    import keras_hub

    return (
        keras_hub.models.LlamaBackbone,
        keras_hub.models.QwenBackbone,
        keras_hub.models.MistralBackbone,
    )


def _sliding_window(backbone):
    """The attention window of a Mistral, or of a Qwen that uses one, in
    tokens; None for full attention."""
    if getattr(backbone, "use_sliding_window_attention", False):
        return int(backbone.sliding_window_size)
    window = getattr(backbone, "sliding_window", None)
    return None if window is None else int(window)


def check_supported(causal_lm, max_sequence_length=None):
    """Raises `ValueError` unless `causal_lm` is a keras-hub causal LM that
    `CachedDecoder` runs (Llama, Llama 3, SmolLM2, Qwen 2 and 2.5,
    Mistral), and, given `max_sequence_length`, a context no longer than
    the model's sliding attention window: the graph attends to the whole
    context, as the model does only within its window.

    Example:

    >>> import keras_hub
    >>> from keras_kd.utils.testing import tiny_qwen_causal_lm
    >>> check_supported(tiny_qwen_causal_lm(num_layers=1), 256)
    >>> mistral = keras_hub.models.MistralCausalLM(keras_hub.models.MistralBackbone(
    ...     vocabulary_size=10, num_layers=1, hidden_dim=8, intermediate_dim=16,
    ...     num_query_heads=2, num_key_value_heads=1), None)
    >>> check_supported(mistral, 1024)
    Traceback (most recent call last):
    ...
    ValueError: max_sequence_length=1024 exceeds the 512-token sliding attention window of this MistralBackbone: past it the model attends to its window only, the exported graph to the whole context. Pass max_sequence_length <= 512.
    """
    import keras_hub

    backbone = getattr(causal_lm, "backbone", None)
    if not isinstance(causal_lm, keras_hub.models.CausalLM) or not isinstance(
        backbone, _families()
    ):
        raise ValueError(
            "export_litert_lm exports keras-hub causal LMs of the Llama, "
            "Qwen 2 and Mistral families (LlamaCausalLM, Llama3CausalLM, "
            "QwenCausalLM, MistralCausalLM; e.g. SmolLM2 presets). "
            f"Received: {type(causal_lm).__name__} with backbone "
            f"{type(backbone).__name__}. Load the model with "
            "keras_hub.models.CausalLM.from_preset(...) from a preset of "
            "one of these families."
        )
    window = _sliding_window(backbone)
    if window is not None and max_sequence_length is not None and max_sequence_length > window:
        raise ValueError(
            f"max_sequence_length={max_sequence_length} exceeds the "
            f"{window}-token sliding attention window of this "
            f"{type(backbone).__name__}: past it the model attends to its "
            "window only, the exported graph to the whole context. Pass "
            f"max_sequence_length <= {window}."
        )
    embedding = backbone.token_embedding
    if getattr(embedding, "logit_soft_cap", None):
        raise ValueError(
            "Output soft-capping is not supported by export_litert_lm. "
            f"Received: logit_soft_cap={embedding.logit_soft_cap}."
        )
    if backbone.hidden_dim % backbone.num_query_heads:
        raise ValueError(
            f"hidden_dim={backbone.hidden_dim} is not a multiple of "
            f"num_query_heads={backbone.num_query_heads}."
        )


class CachedDecoder(keras.layers.Layer):
    """A Llama, Qwen 2 or Mistral backbone's cached forward pass for
    LiteRT-LM.

    Holds the backbone (so `ExportArchive.track` finds its variables) and
    exposes `prefill` and `decode` on flat lists of caches.

    Args:
        backbone: a built keras-hub `LlamaBackbone` (or subclass),
            `QwenBackbone` or `MistralBackbone`.
        cache_length: positions in each layer's cache (the context length).
    """

    def __init__(self, backbone, cache_length, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.cache_length = int(cache_length)
        self.num_layers = backbone.num_layers
        self.num_heads = backbone.num_query_heads
        self.kv_heads = backbone.num_key_value_heads
        self.head_dim = backbone.hidden_dim // backbone.num_query_heads
        self.groups = self.num_heads // self.kv_heads
        self.vocabulary_size = backbone.vocabulary_size
        self.built = True

    @property
    def cache_shape(self):
        return (1, self.kv_heads, self.cache_length, self.head_dim)

    def input_signature(self, length):
        """`tf.TensorSpec`s of one signature's inputs: tokens, positions,
        then the caches."""
        return [
            tf.TensorSpec((1, length), tf.int32, name=TOKENS),
            tf.TensorSpec((length,), tf.int32, name=INPUT_POS),
        ] + [
            tf.TensorSpec(self.cache_shape, tf.float32, name=name)
            for name in cache_names(self.num_layers)
        ]

    def empty_caches(self):
        """Zero caches, as the runtime starts with."""
        return [
            ops.zeros(self.cache_shape, "float32")
            for _ in range(2 * self.num_layers)
        ]

    def _attention(self, layer, x, positions, key_cache, value_cache, pad):
        attention = layer._self_attention_layer
        length = ops.shape(x)[1]
        query = attention.rotary_embedding_layer(
            attention._query_dense(x), positions=positions
        )
        key = attention.rotary_embedding_layer(
            attention._key_dense(x), positions=positions
        )
        value = attention._value_dense(x)
        # [1, T, kv_heads, head_dim] -> the runtime's [1, kv_heads, T, head_dim].
        key = ops.transpose(key, (0, 2, 1, 3))
        value = ops.transpose(value, (0, 2, 1, 3))
        start = [0, 0, positions[0], 0]
        if pad:
            # Room past the end, so a block near the end is not shifted back.
            zeros = ops.zeros_like(key)
            key_cache = ops.concatenate([key_cache, zeros], axis=2)
            value_cache = ops.concatenate([value_cache, zeros], axis=2)
        key_cache = ops.slice_update(key_cache, start, key)
        value_cache = ops.slice_update(value_cache, start, value)
        if pad:
            key_cache = key_cache[:, :, : self.cache_length, :]
            value_cache = value_cache[:, :, : self.cache_length, :]

        # Queries of the heads sharing a key-value head become rows:
        # [1, T, kv, groups, d] -> [1, kv, groups * T, d].
        query = ops.reshape(
            query, (1, length, self.kv_heads, self.groups, self.head_dim)
        )
        query = ops.transpose(query, (0, 2, 3, 1, 4))
        query = ops.reshape(
            query, (1, self.kv_heads, self.groups * length, self.head_dim)
        )
        scores = ops.matmul(query, ops.transpose(key_cache, (0, 1, 3, 2)))
        scores = scores * ops.cast(attention._inv_norm_factor, scores.dtype)
        visible = ops.less_equal(
            ops.arange(self.cache_length, dtype="int32")[None, :],
            positions[:, None],
        )
        visible = ops.tile(visible, (self.groups, 1))
        scores = ops.where(visible[None, None], scores, _MASKED)
        weights = ops.softmax(scores, axis=-1)
        output = ops.matmul(weights, value_cache)
        output = ops.reshape(
            output, (1, self.kv_heads, self.groups, length, self.head_dim)
        )
        output = ops.transpose(output, (0, 3, 1, 2, 4))
        output = ops.reshape(
            output, (1, length, self.num_heads, self.head_dim)
        )
        return attention._output_dense(output), key_cache, value_cache

    def _layer(self, layer, x, positions, key_cache, value_cache, pad):
        residual = x
        h = layer._self_attention_layernorm(x)
        h, key_cache, value_cache = self._attention(
            layer, h, positions, key_cache, value_cache, pad
        )
        x = h + residual
        residual = x
        h = layer._feedforward_layernorm(x)
        gate = layer.activation(layer._feedforward_gate_dense(h))
        h = layer._feedforward_intermediate_dense(h)
        x = layer._feedforward_output_dense(h * gate) + residual
        return x, key_cache, value_cache

    def _logits(self, x):
        """`[1, T, hidden]` -> `[1, T, vocabulary]` with the output layer."""
        embedding = self.backbone.token_embedding
        length = ops.shape(x)[1]
        rows = ops.reshape(x, (length, -1))
        if embedding.tie_weights:
            # One copy of the table: FULLY_CONNECTED reads it as [out, in].
            logits = tf.linalg.matmul(
                rows, embedding.embeddings, transpose_b=True
            )
        else:
            logits = ops.matmul(rows, embedding.reverse_embeddings)
        return ops.reshape(logits, (1, length, self.vocabulary_size))

    def forward(self, tokens, input_pos, caches, logits=True, pad=False):
        """Runs the model on `tokens` at `input_pos`, updating `caches`.

        Args:
            tokens: int32 `[1, T]`.
            input_pos: int32 `[T]`, consecutive from `input_pos[0]`.
            caches: `2 * num_layers` tensors `[1, kv_heads, L, head_dim]`,
                all keys then all values (`cache_names` order).
            logits: compute the output layer (decode) or not (prefill).
            pad: make room past the cache's end for the block write.

        Returns:
            `(logits or None, updated caches)`.
        """
        tokens = ops.cast(tokens, "int32")
        input_pos = ops.cast(input_pos, "int32")
        x = ops.take(self.backbone.token_embedding.embeddings, tokens, axis=0)
        keys = list(caches[: self.num_layers])
        values = list(caches[self.num_layers :])
        for i, layer in enumerate(self.backbone.transformer_layers):
            x, keys[i], values[i] = self._layer(
                layer, x, input_pos, keys[i], values[i], pad
            )
        out = None
        if logits:
            out = self._logits(self._final_norm(x))
        return out, keys + values

    def _final_norm(self, x):
        """The backbone's final RMS norm, scale applied before the
        normalisation: keras-hub's order (scale last) ends in a constant
        multiply that the converter folds into the output projection, as a
        scaled second copy of a tied embedding table."""
        norm = self.backbone.layer_norm
        x = ops.cast(x, "float32")
        variance = ops.mean(ops.square(x), axis=-1, keepdims=True)
        return (x * norm.scale) * ops.rsqrt(variance + norm.epsilon)

    def _outputs(self, caches, logits=None):
        names = cache_names(self.num_layers)
        outputs = dict(zip(names, caches))
        if logits is not None:
            outputs[LOGITS] = logits
        return outputs

    def prefill(self, tokens, input_pos, *caches):
        """A `prefill_<T>` signature: the updated caches, by name."""
        _, caches = self.forward(
            tokens, input_pos, caches, logits=False, pad=True
        )
        return self._outputs(caches)

    def decode(self, tokens, input_pos, *caches):
        """The `decode` signature: `logits` of the last token and the
        updated caches, by name."""
        logits, caches = self.forward(tokens, input_pos, caches)
        return self._outputs(caches, logits[:, -1:, :])
