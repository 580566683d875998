"""`WhisperAudioToTextPreprocessor`: waveforms to log-mel features and
transcripts to decoder tokens, for Whisper's training and generation."""

import keras
import keras_hub
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="keras_kd")
class WhisperAudioToTextPreprocessor(keras_hub.models.Seq2SeqLMPreprocessor):
    """Turns 16 kHz waveforms and transcripts into Whisper's inputs.

    The audio converter makes 80-bin log-mel features of 30-second windows
    (shorter audio is padded with silence, as Whisper was trained). The
    decoder's prompt is `<|startoftranscript|><|notimestamps|>` (the
    English-only models' prompt: no language or task token); a transcript
    follows it and `<|endoftext|>` ends it. For training, `y` is the
    decoder's input shifted by one and `sample_weight` is 0 on padding and
    on the prompt's own token, which the model is given, not asked for.
    Given `"encoder_hidden_states"` (the encoder's output) instead of
    `"audio"`, it passes them on, for `whisper_decoder_model` and for
    generation with an encoder computed once.

    Args:
        audio_converter: a `keras_hub.layers.WhisperAudioConverter`.
        tokenizer: a `keras_hub.models.WhisperTokenizer`.
        decoder_sequence_length: int, the decoder's length for training and
            the default generation length, prompt included (Whisper has
            448 positions; 10 seconds of speech are about 30 tokens).

    Example:

    >>> import numpy as np
    >>> from keras_kd.utils.testing import tiny_whisper_preprocessor
    >>> preprocessor = tiny_whisper_preprocessor(decoder_sequence_length=6)
    >>> x, y, weight = preprocessor(
    ...     {"audio": np.zeros((1, 1600), "float32"), "text": ["ab"]})
    >>> x["encoder_features"].shape  # 30 s at 100 frames a second
    TensorShape([1, 3000, 80])
    >>> np.asarray(weight).tolist()  # the prompt's token and padding: 0
    [[0, 1, 1, 1, 0, 0]]
    """

    def __init__(self, audio_converter, tokenizer, decoder_sequence_length=128, **kwargs):
        super().__init__(tokenizer=tokenizer, **kwargs)
        self.audio_converter = audio_converter
        self.decoder_sequence_length = decoder_sequence_length
        self.decoder_packer = None

    @property
    def prompt_ids(self):
        """`[<|startoftranscript|>, <|notimestamps|>]`."""
        return [self.tokenizer.bos_token_id, self.tokenizer.no_timestamps_token_id]

    def build(self, input_shape):
        self.decoder_packer = keras_hub.layers.StartEndPacker(
            start_value=self.prompt_ids,
            end_value=self.tokenizer.eos_token_id,
            pad_value=self.tokenizer.pad_token_id,
            sequence_length=self.decoder_sequence_length,
            return_padding_mask=True,
        )
        self.built = True

    def _features(self, audio):
        audio = tf.convert_to_tensor(audio, dtype="float32")
        if audio.shape.rank == 3:  # keras-hub's (batch, samples, 1)
            audio = tf.squeeze(audio, -1)
        return self.audio_converter(audio)

    def _encoder_inputs(self, x):
        """The encoder side of the model's inputs: log-mel features of
        `x`'s audio, or `x["encoder_hidden_states"]` passed on (the
        encoder's output, computed once when the encoder is frozen)."""
        if isinstance(x, dict) and "encoder_hidden_states" in x:
            states = tf.convert_to_tensor(x["encoder_hidden_states"], "float32")
            return {"encoder_hidden_states": states}
        return {"encoder_features": self._features(x["audio"] if isinstance(x, dict) else x)}

    def call(self, x, y=None, sample_weight=None, sequence_length=None):
        if not self.built:
            self.build(None)
        length = sequence_length or self.decoder_sequence_length
        token_ids, padding_mask = self.decoder_packer(
            self.tokenizer(x["text"]), sequence_length=length + 1, add_end_value=True
        )
        inputs = {
            **self._encoder_inputs(x),
            "decoder_token_ids": token_ids[..., :-1],
            "decoder_padding_mask": padding_mask[..., :-1],
        }
        weight = ops.cast(padding_mask[..., 1:], "int32")
        # Position 0 predicts <|notimestamps|>, a prompt token.
        weight = ops.concatenate([ops.zeros_like(weight[..., :1]), weight[..., 1:]], axis=-1)
        return keras.utils.pack_x_y_sample_weight(inputs, token_ids[..., 1:], weight)

    def generate_preprocess(self, x, sequence_length=None):
        """Features and the prompt, padded to `sequence_length` (default
        `decoder_sequence_length`); `x` is a waveform, a batch of them, a
        dict with `"audio"`, or a dict with the encoder's output,
        `"encoder_hidden_states"`, which is passed on."""
        if not self.built:
            self.build(None)
        inputs = self._encoder_inputs(x)
        batch_size = int(next(iter(inputs.values())).shape[0])
        prompt = tf.ragged.constant([[]] * batch_size, dtype="int32")
        token_ids, padding_mask = self.decoder_packer(
            prompt,
            sequence_length=sequence_length or self.decoder_sequence_length,
            add_end_value=False,
        )
        return {
            **inputs,
            # Not the pad token <|endoftext|>: keras-hub's sampler would read
            # a stop token in the free positions and stop at once.
            "decoder_token_ids": tf.where(padding_mask, token_ids, 0),
            "decoder_padding_mask": padding_mask,
        }

    def generate_postprocess(self, x):
        """The text of each row: the prompt, special tokens and the padding
        after `<|endoftext|>` dropped."""
        if not self.built:
            self.build(None)
        token_ids = ops.convert_to_numpy(x["decoder_token_ids"])
        padding_mask = ops.convert_to_numpy(x["decoder_padding_mask"]).astype(bool)
        # Ids at and above <|endoftext|> are special or timestamp tokens.
        texts = [
            self.tokenizer.detokenize(
                [int(i) for i in row[mask] if i < self.tokenizer.eos_token_id]
            )
            for row, mask in zip(token_ids, padding_mask)
        ]
        return [
            (t.numpy().decode("utf-8") if hasattr(t, "numpy") else str(t)).strip()
            for t in texts
        ]

    def get_config(self):
        config = super().get_config()
        config.update({"decoder_sequence_length": self.decoder_sequence_length})
        return config
