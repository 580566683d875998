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

The decoder step is `keras_kd.speech.whisper_decoding`'s, the one Keras
generation runs: the backbone's own sublayers in keras-hub's order,
pre-norm as Whisper, with 4-D caches (keras-hub's stacked caches are 6-D,
beyond TFLite's 5-D limit). The token is written into the cache with
`slice_update` (builtin `DYNAMIC_UPDATE_SLICE`) and attends to cache
positions `<= position`.
"""

import keras
import tensorflow as tf
from keras import ops

from keras_kd.speech import whisper_decoding
from keras_kd.speech.whisper_audio_to_text import encoder_output

ENCODE, DECODE = "encode", "decode"
FEATURES, TOKEN, POSITION, LOGITS = "features", "token", "position", "logits"


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
        self.num_layers = len(backbone.decoder_transformer_layers)
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

    def encode(self, features):
        """The `encode` signature: the cross-attention caches, by name."""
        caches = whisper_decoding.cross_attention_caches(
            self.backbone, encoder_output(self.backbone, features)
        )
        keys, values = zip(*caches)
        return dict(zip(cross_cache_names(self.num_layers), keys + values))

    def decode(self, token, position, *caches):
        """The `decode` signature: `logits` and the updated self-attention
        caches, by name."""
        n = self.num_layers
        self_caches = list(zip(caches[:n], caches[n : 2 * n]))
        cross_caches = list(zip(caches[2 * n : 3 * n], caches[3 * n :]))
        backbone = self.backbone
        x, self_caches = whisper_decoding.decoder_hidden_states(
            backbone, ops.cast(token, "int32"), ops.cast(position, "int32")[0],
            self_caches, cross_caches,
        )
        # FULLY_CONNECTED reads the tied table as [out, in]: one stored copy.
        logits = tf.linalg.matmul(
            ops.reshape(x, (1, -1)),
            backbone.decoder_embeddings.token_embedding.embeddings,
            transpose_b=True,
        )
        keys, values = zip(*self_caches)
        outputs = dict(zip(self_cache_names(n), keys + values))
        outputs[LOGITS] = logits
        return outputs
