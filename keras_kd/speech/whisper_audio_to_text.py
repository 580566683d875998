"""`WhisperAudioToText`: keras-hub's Whisper backbone as a speech-to-text
task, with KV-cached generation (keras-hub 0.32 has none for Whisper)."""

import keras
import keras_hub
import numpy as np
from keras import ops

from keras_kd.speech import whisper_decoding
from keras_kd.speech.audio import batch_waveforms
from keras_kd.speech.whisper_audio_to_text_preprocessor import (
    WhisperAudioToTextPreprocessor,
)


def encoder_output(backbone, encoder_features):
    """A Whisper backbone's encoder alone: `(batch, frames, mels)` features
    to its `(batch, frames / 2, hidden_dim)` output sequence."""
    b = backbone
    x = keras.activations.gelu(b.encoder_conv_layer_1(encoder_features), approximate=False)
    x = b.encoder_padder(x)
    x = keras.activations.gelu(b.encoder_conv_layer_2(x), approximate=False)
    x = b.encoder_embeddings_add((x, b.encoder_position_embedding(x)))
    for layer in b.encoder_transformer_layers:
        x = layer(x, training=False)
    return b.encoder_layer_norm(x)


@keras.saving.register_keras_serializable(package="keras_kd")
class WhisperAudioToText(keras_hub.models.Seq2SeqLM):
    """Whisper speech recognition: 16 kHz waveforms in, text out.

    Called on the backbone's inputs (`encoder_features`,
    `decoder_token_ids`, `decoder_padding_mask`) it returns next-token
    logits at every decoder position, so `fit` (and the `Distiller`) train
    it on the preprocessor's `(x, y, sample_weight)`. `generate(audio)`
    encodes the audio once, fills each decoder layer's cross-attention
    cache once, then decodes one token a step with a self-attention cache,
    as Whisper's reference decoder does. The sampler comes from `compile`
    (greedy by default, unlike keras-hub's other generative tasks). Tokens
    that Whisper's own decoding suppresses (`suppress_token_ids`;
    `begin_suppress_token_ids` on the first step only, such as the blank)
    get `-inf` logits, and so do all ids above `<|endoftext|>`: the special
    tokens, and the timestamps, which the prompt's `<|notimestamps|>` turns
    off (`suppressed`).

    Args:
        backbone: a `keras_hub.models.WhisperBackbone`.
        preprocessor: a `WhisperAudioToTextPreprocessor` or None.
        suppress_token_ids: token ids never generated.
        begin_suppress_token_ids: token ids not generated first.

    Example:

    >>> import numpy as np
    >>> from keras_kd.utils.testing import tiny_whisper_audio_to_text
    >>> model = tiny_whisper_audio_to_text()
    >>> texts = model.generate(np.zeros((2, 16000), "float32"), max_length=6)
    >>> len(texts), all(isinstance(t, str) for t in texts)
    (2, True)
    """

    backbone_cls = keras_hub.models.WhisperBackbone
    preprocessor_cls = WhisperAudioToTextPreprocessor

    def __init__(
        self,
        backbone,
        preprocessor=None,
        suppress_token_ids=(),
        begin_suppress_token_ids=(),
        **kwargs,
    ):
        self.backbone = backbone
        self.preprocessor = preprocessor
        inputs = backbone.input
        hidden_states = backbone(inputs)["decoder_sequence_output"]
        outputs = backbone.token_embedding(hidden_states, reverse=True)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.suppress_token_ids = [int(i) for i in suppress_token_ids]
        self.begin_suppress_token_ids = [int(i) for i in begin_suppress_token_ids]

    def compile(self, optimizer="auto", loss="auto", *, weighted_metrics="auto", sampler="greedy", **kwargs):
        """As `keras_hub.models.CausalLM.compile`, but greedy by default:
        Whisper's reference transcription decodes greedily (keras-hub's
        default, top-k sampling, transcribes differently on every call)."""
        super().compile(
            optimizer=optimizer,
            loss=loss,
            weighted_metrics=weighted_metrics,
            sampler=sampler,
            **kwargs,
        )

    def call_encoder(self, encoder_features):
        """The encoder's output sequence, `(batch, frames / 2, hidden_dim)`."""
        return encoder_output(self.backbone, encoder_features)

    def call_decoder_with_cache(self, decoder_token_ids, start, self_attention_caches, cross_attention_caches):
        """One decoder pass over `decoder_token_ids` `(batch, T)` at
        positions `start, start + 1, ...`, writing their keys and values
        into the self-attention caches and reading the cross-attention
        caches (`keras_kd.speech.whisper_decoding`: one `(keys, values)`
        pair per layer, heads first, the layout the `.tflite` export
        shares).

        Returns:
            `(logits, hidden_states, self_attention_caches)`.
        """
        hidden_states, updated = whisper_decoding.decoder_hidden_states(
            self.backbone, decoder_token_ids, start, self_attention_caches, cross_attention_caches
        )
        logits = self.backbone.token_embedding(hidden_states, reverse=True)
        return logits, hidden_states, updated

    def cross_attention_caches(self, encoder_hidden_states):
        """Each decoder layer's cross-attention `(keys, values)` of the
        encoder's output, `(batch, heads, frames / 2, head_dim)` each."""
        return whisper_decoding.cross_attention_caches(self.backbone, encoder_hidden_states)

    def suppressed(self, first_step):
        """The token ids generation never gives (or, with `first_step`, does
        not give first), as a boolean mask over the vocabulary: the ids
        above `<|endoftext|>` (without a preprocessor, none) and the
        suppression lists. The TFLite transcriber applies the same mask.

        Example:

        >>> from keras_kd.utils.testing import tiny_whisper_audio_to_text
        >>> model = tiny_whisper_audio_to_text(num_layers=1)
        >>> model.begin_suppress_token_ids = [0]
        >>> np.flatnonzero(model.suppressed(first_step=True)).tolist()
        [0, 40, 41, 42, 43, 44, 45]
        """
        banned = np.zeros(self.backbone.vocabulary_size, bool)
        if self.preprocessor is not None:
            banned[self.preprocessor.tokenizer.eos_token_id + 1 :] = True
        banned[self.suppress_token_ids] = True
        if first_step:
            banned[self.begin_suppress_token_ids] = True
        return banned

    def _suppression(self, first_step):
        """`suppressed` as an additive logits mask: `-inf` on banned ids."""
        return ops.where(ops.convert_to_tensor(self.suppressed(first_step)), float("-inf"), 0.0)

    def generate_step(self, inputs, stop_token_ids=None):
        """Generates the rest of `inputs["decoder_token_ids"]` (a prompt
        padded to the generation length) for a batch of audio features
        (or of encoder outputs, `"encoder_hidden_states"`);
        compiled by `generate` (keras-hub's `CausalLM` machinery)."""
        token_ids = inputs["decoder_token_ids"]
        padding_mask = inputs["decoder_padding_mask"]
        if "encoder_hidden_states" in inputs:
            encoder_hidden_states = inputs["encoder_hidden_states"]
        else:
            encoder_hidden_states = self.call_encoder(inputs["encoder_features"])
        cross_caches = self.cross_attention_caches(encoder_hidden_states)
        batch_size, length = ops.shape(token_ids)[0], ops.shape(token_ids)[1]
        empty = whisper_decoding.empty_self_caches(self.backbone, batch_size, length, self.compute_dtype)
        # The prompt, minus its last token, fills the self-attention caches;
        # the sampler's first step feeds that last token. (The padding's
        # keys are written too, then overwritten before any token sees
        # them.)
        prompt_length = ops.min(ops.sum(ops.cast(padding_mask, "int32"), axis=-1))
        _, hidden_states, self_caches = self.call_decoder_with_cache(token_ids, 0, empty, cross_caches)
        always = self._suppression(first_step=False)
        first = self._suppression(first_step=True)

        # The loop carries only the self-attention caches: the
        # cross-attention caches are read, never written, so they are
        # captured rather than copied from step to step.
        def next(prompt, self_caches, index):
            cache_index = index - 1
            token = ops.slice(prompt, [0, cache_index], [ops.shape(prompt)[0], 1])
            logits, hidden, self_caches = self.call_decoder_with_cache(
                token, cache_index, self_caches, cross_caches
            )
            mask = ops.where(index == prompt_length, first, always)
            return logits[:, 0, :] + mask, hidden[:, 0, :], self_caches

        token_ids = self.sampler(
            next=next,
            prompt=token_ids,
            cache=self_caches,
            index=prompt_length,
            mask=ops.cast(padding_mask, "bool"),
            stop_token_ids=stop_token_ids,
            hidden_states=hidden_states,
            model=self,
        )
        if stop_token_ids is not None:
            ended = ops.cast(token_ids == stop_token_ids[0], "int32")
            for stop in stop_token_ids[1:]:
                ended = ops.maximum(ended, ops.cast(token_ids == stop, "int32"))
            # Keep tokens up to the first stop token, not those after it.
            after = ops.cumsum(ended, axis=-1) - ended
            padding_mask = ops.logical_not(ops.cast(after, "bool"))
        else:
            padding_mask = ops.ones_like(token_ids, dtype="bool")
        return {"decoder_token_ids": token_ids, "decoder_padding_mask": padding_mask}

    def generate(self, inputs, max_length=None, stop_token_ids="auto", strip_prompt=False):
        """Transcribes audio.

        Args:
            inputs: a 16 kHz float waveform `(samples,)`, a batch
                `(batch, samples)`, a list of waveforms of any lengths, or
                a dict with `"audio"`; at most 30 seconds each (Whisper's
                window). Or a dict with `"encoder_hidden_states"`, the
                encoder's output (`call_encoder`) of a batch, computed
                once for several decoders sharing the encoder.
            max_length: decoder length, prompt included (default: the
                preprocessor's `decoder_sequence_length`).
            stop_token_ids: as in `keras_hub.models.CausalLM.generate`;
                `"auto"` stops at `<|endoftext|>`.
            strip_prompt: unused; the text never holds the prompt.

        Returns:
            A string for one waveform, else a list of strings.
        """
        if self.preprocessor is None:
            raise ValueError(
                "`generate` needs a preprocessor to turn audio into features "
                "and tokens into text. Build the model with "
                "`WhisperAudioToText.from_preset(...)` or pass "
                "`preprocessor=WhisperAudioToTextPreprocessor(...)`."
            )
        if isinstance(inputs, dict) and "encoder_hidden_states" in inputs:
            x, single = {"encoder_hidden_states": inputs["encoder_hidden_states"]}, False
        else:
            x, single = batch_waveforms(inputs["audio"] if isinstance(inputs, dict) else inputs)
        if stop_token_ids == "auto":
            stop_token_ids = [self.preprocessor.tokenizer.eos_token_id]
        x = self.preprocessor.generate_preprocess(x, sequence_length=max_length)
        x = self.make_generate_function()(x, stop_token_ids=stop_token_ids)
        texts = self.preprocessor.generate_postprocess(x)
        return texts[0] if single else texts

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "suppress_token_ids": self.suppress_token_ids,
                "begin_suppress_token_ids": self.begin_suppress_token_ids,
            }
        )
        return config
