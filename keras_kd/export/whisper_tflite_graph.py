"""`WhisperCachedGraph`: a Whisper model as two TFLite signatures, `encode`
and `decode`, with one key-value cache per decoder layer.

- `encode`: `features` (float32 `[1, frames, mels]`, the log-mel
  spectrogram of a 30 s window) -> each decoder layer's cross-attention
  keys and values of the encoder's output, `cross_k_<i>` and `cross_v_<i>`
  (float32 `[1, heads, frames / 2, head_dim]`): computed once per utterance.
- `decode`: one token (`token`, int32 `[1, 1]`) at `position` (int32 `[1]`)
  with the self-attention caches `self_k_<i>`/`self_v_<i>` (float32 `[1,
  heads, max_length, head_dim]`) and the cross caches -> `logits` (float32
  `[1, vocabulary]`) and the updated self-attention caches under the same
  names.

The graph runs the backbone's own sublayers (norms, projections,
feed-forward) in keras-hub's order, pre-norm as Whisper, with 4-D caches
(keras-hub's stacked caches are 6-D, beyond TFLite's 5-D limit). The token
is written into the cache with `slice_update` (builtin
`DYNAMIC_UPDATE_SLICE`) and attends to cache positions `<= position`.
"""

import keras
import tensorflow as tf
from keras import ops

from keras_kd.speech.whisper_audio_to_text import encoder_output

ENCODE, DECODE = "encode", "decode"
FEATURES, TOKEN, POSITION, LOGITS = "features", "token", "position", "logits"
_MASKED = -1e9


def self_cache_names(num_layers):
    """`self_k_0 ... self_k_{n-1}, self_v_0 ... self_v_{n-1}`."""
    return [f"self_{kv}_{i}" for kv in "kv" for i in range(num_layers)]


def cross_cache_names(num_layers):
    """`cross_k_0 ... cross_k_{n-1}, cross_v_0 ... cross_v_{n-1}`."""
    return [f"cross_{kv}_{i}" for kv in "kv" for i in range(num_layers)]


class WhisperCachedGraph(keras.layers.Layer):
    """A `keras_kd.speech.WhisperAudioToText`'s encoder and cached decoder
    step, on flat lists of caches, for `keras.export.ExportArchive`.

    Args:
        model: a `WhisperAudioToText`.
        max_length: positions of each self-attention cache (the longest
            transcript, prompt included).
    """

    def __init__(self, model, max_length, **kwargs):
        super().__init__(**kwargs)
        # The backbone only: the task would bring its tokenizer's lookup
        # tables into the SavedModel, which TFLite does not convert.
        self.backbone = backbone = model.backbone
        self.layers_ = backbone.decoder_transformer_layers
        self.num_layers = len(self.layers_)
        self.num_heads = backbone.num_heads
        self.head_dim = backbone.hidden_dim // backbone.num_heads
        self.max_length = int(max_length)
        self.frames = backbone.max_encoder_sequence_length
        self.num_mels = backbone.num_mels
        self.built = True

    @property
    def self_cache_shape(self):
        return (1, self.num_heads, self.max_length, self.head_dim)

    @property
    def cross_cache_shape(self):
        return (1, self.num_heads, self.frames // 2, self.head_dim)

    def encode_signature(self):
        return [tf.TensorSpec((1, self.frames, self.num_mels), tf.float32, name=FEATURES)]

    def decode_signature(self):
        return (
            [
                tf.TensorSpec((1, 1), tf.int32, name=TOKEN),
                tf.TensorSpec((1,), tf.int32, name=POSITION),
            ]
            + [
                tf.TensorSpec(self.self_cache_shape, tf.float32, name=name)
                for name in self_cache_names(self.num_layers)
            ]
            + [
                tf.TensorSpec(self.cross_cache_shape, tf.float32, name=name)
                for name in cross_cache_names(self.num_layers)
            ]
        )

    def empty_self_caches(self):
        return [ops.zeros(self.self_cache_shape, "float32") for _ in range(2 * self.num_layers)]

    @staticmethod
    def _heads_first(x):
        """`[1, T, heads, head_dim]` -> `[1, heads, T, head_dim]`."""
        return ops.transpose(x, (0, 2, 1, 3))

    def encode(self, features):
        """The `encode` signature: the cross-attention caches, by name."""
        hidden = encoder_output(self.backbone, features)
        keys, values = [], []
        for layer in self.layers_:
            attention = layer._cross_attention_layer
            keys.append(self._heads_first(attention._key_dense(hidden)))
            values.append(self._heads_first(attention._value_dense(hidden)))
        return dict(zip(cross_cache_names(self.num_layers), keys + values))

    def _attend(self, attention, query, keys, values, visible=None):
        """Scaled dot-product attention of one query over `[1, heads, L, d]`
        keys and values, then the output projection."""
        query = self._heads_first(attention._query_dense(query))
        query = query * (1.0 / self.head_dim**0.5)
        scores = ops.matmul(query, ops.transpose(keys, (0, 1, 3, 2)))
        if visible is not None:
            scores = ops.where(visible, scores, _MASKED)
        weights = ops.softmax(scores, axis=-1)
        output = ops.transpose(ops.matmul(weights, values), (0, 2, 1, 3))
        return attention._output_dense(output)

    def _layer(self, layer, x, position, self_k, self_v, cross_k, cross_v):
        residual = x
        h = layer._self_attention_layer_norm(x)
        attention = layer._self_attention_layer
        start = [0, 0, position[0], 0]
        self_k = ops.slice_update(self_k, start, self._heads_first(attention._key_dense(h)))
        self_v = ops.slice_update(self_v, start, self._heads_first(attention._value_dense(h)))
        visible = ops.less_equal(ops.arange(self.max_length, dtype="int32"), position[0])
        x = residual + self._attend(attention, h, self_k, self_v, visible[None, None, None, :])
        residual = x
        h = layer._cross_attention_layer_norm(x)
        x = residual + self._attend(layer._cross_attention_layer, h, cross_k, cross_v)
        residual = x
        h = layer._feedforward_layer_norm(x)
        h = layer._feedforward_output_dense(layer._feedforward_intermediate_dense(h))
        return residual + h, self_k, self_v

    def decode(self, token, position, *caches):
        """The `decode` signature: `logits` and the updated self-attention
        caches, by name."""
        n = self.num_layers
        self_k, self_v = list(caches[:n]), list(caches[n : 2 * n])
        cross_k, cross_v = caches[2 * n : 3 * n], caches[3 * n :]
        backbone = self.backbone
        token = ops.cast(token, "int32")
        position = ops.cast(position, "int32")
        embeddings = backbone.decoder_embeddings
        x = ops.take(embeddings.token_embedding.embeddings, token, axis=0)
        x = x + ops.take(embeddings.position_embedding.position_embeddings, position, axis=0)[None]
        for i, layer in enumerate(self.layers_):
            x, self_k[i], self_v[i] = self._layer(
                layer, x, position, self_k[i], self_v[i], cross_k[i], cross_v[i]
            )
        x = backbone.decoder_layer_norm(x)
        # FULLY_CONNECTED reads the tied table as [out, in]: one stored copy.
        logits = tf.linalg.matmul(
            ops.reshape(x, (1, -1)), embeddings.token_embedding.embeddings, transpose_b=True
        )
        outputs = dict(zip(self_cache_names(n), self_k + self_v))
        outputs[LOGITS] = logits
        return outputs
