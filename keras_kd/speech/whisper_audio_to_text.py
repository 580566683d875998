"""`WhisperAudioToText`: keras-hub's Whisper backbone as a speech-to-text
task, with KV-cached generation (keras-hub 0.32 has none for Whisper)."""

import keras
import keras_hub
import numpy as np
import tensorflow as tf
from keras import ops

from keras_kd.speech import whisper_decoding
from keras_kd.speech.audio import batch_waveforms
from keras_kd.speech.temperature_fallback import (
    TEMPERATURES,
    Attempt,
    TemperatureFallback,
    check_fallback,
    Transcription,
    decode_with_fallback,
)
from keras_kd.speech.whisper_audio_to_text_preprocessor import (
    WhisperAudioToTextPreprocessor,
)
from keras_kd.utils.compile_config import compile_saved, with_optimizer_state
from keras_kd.utils.validation import check_int


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


def check_decoder_length(model, max_length, allow_none=True):
    """Checks the `max_length` of a decoding by `model` (a
    `WhisperAudioToText`): the prompt's tokens and one more at least, up to
    the decoder's positions; returns it.

    Example:

    >>> from keras_kd.utils.testing import tiny_whisper_audio_to_text
    >>> check_decoder_length(tiny_whisper_audio_to_text(), 0)
    Traceback (most recent call last):
    ...
    ValueError: `max_length` must be None or an int in [3, 32] (the prompt's 2 tokens, up to the decoder's positions), e.g. 32. Received: max_length=0
    """
    prompt = len(model.preprocessor.prompt_ids)
    return check_int(
        "max_length", max_length, prompt + 1, allow_none=allow_none,
        maximum=model.backbone.max_decoder_sequence_length,
        why=f"the prompt's {prompt} tokens, up to the decoder's positions",
    )


def compiled_encoder(model):
    """`model.call_encoder`, traced once per model and `jit_compile`
    setting (XLA when the model's `jit_compile` says so).

    Example:

    >>> from keras_kd.utils.testing import tiny_whisper_audio_to_text
    >>> model = tiny_whisper_audio_to_text()
    >>> features = np.zeros((1, 3000, 80), "float32")
    >>> compiled_encoder(model) is compiled_encoder(model), tuple(compiled_encoder(model)(features).shape)
    (True, (1, 1500, 16))
    """
    jit_compile = bool(model.jit_compile)
    cached = getattr(model, "_kd_encoder_function", None)
    if cached is None or cached[0] != jit_compile:
        cached = (jit_compile, tf.function(model.call_encoder, jit_compile=jit_compile))
        model._kd_encoder_function = cached
    return cached[1]


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

    def get_compile_config(self):
        return with_optimizer_state(self, super().get_compile_config())

    def compile_from_config(self, config):
        """Compiles a loaded model as saved (Keras skips a custom `compile`,
        with a warning), with its saved sampler (`keras_hub_fixes`; a file
        saved without one gets `compile`'s default, greedy)."""
        # Older files are mostly students distilled through their decoder
        # (`distil_whisper`): their own optimizer never stepped.
        compile_saved(self, config, built_if_unknown=False)

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
            `(logits, hidden_states, self_attention_caches)`, the logits in
            float32 under a mixed precision policy too (the suppression
            masks and the log-probabilities of `transcribe` are float32).
        """
        hidden_states, updated = whisper_decoding.decoder_hidden_states(
            self.backbone, decoder_token_ids, start, self_attention_caches, cross_attention_caches
        )
        logits = ops.cast(self.backbone.token_embedding(hidden_states, reverse=True), "float32")
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
        (or of encoder outputs, `"encoder_hidden_states"`) with the
        compiled sampler; compiled by `generate` (keras-hub's `CausalLM`
        machinery)."""
        return self._generate_with(self.sampler, inputs, stop_token_ids)

    def _generate_with(self, sampler, inputs, stop_token_ids):
        """`generate_step` with the given sampler."""
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

        token_ids = sampler(
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

    def _encoder_inputs(self, method, inputs):
        """`inputs` of `generate` or `transcribe` as the preprocessor's
        `(x, single)`, after checking that there is a preprocessor."""
        if self.preprocessor is None:
            raise ValueError(
                f"`{method}` needs a preprocessor to turn audio into features "
                "and tokens into text. Build the model with "
                "`WhisperAudioToText.from_preset(...)` or pass "
                "`preprocessor=WhisperAudioToTextPreprocessor(...)`."
            )
        if isinstance(inputs, dict) and "encoder_hidden_states" in inputs:
            return {"encoder_hidden_states": inputs["encoder_hidden_states"]}, False
        if isinstance(inputs, dict) and "audio" not in inputs:
            raise ValueError(
                f"`{method}` takes waveforms, or a dict with \"audio\" (or "
                "\"encoder_hidden_states\"). Received a dict with keys "
                f"{sorted(map(str, inputs))}: pass {{\"audio\": waveforms}}."
            )
        return batch_waveforms(inputs["audio"] if isinstance(inputs, dict) else inputs)

    def transcribe(
        self,
        inputs,
        max_length=None,
        temperatures=TEMPERATURES,
        compression_ratio_threshold=2.4,
        logprob_threshold=-1.0,
        seed=None,
    ):
        """Transcribes audio as Whisper's `transcribe` does: greedily, then,
        for a transcript that compresses too well (a loop) or has a low
        mean log-probability, by sampling at the next temperature
        (`keras_kd.speech.temperature_fallback`).

        Args:
            inputs: as `generate`'s.
            max_length: as `generate`'s.
            temperatures: the temperatures tried in order; `0.0` alone
                gives `generate`'s greedy transcripts.
            compression_ratio_threshold: decode again above this
                compression ratio (None: never).
            logprob_threshold: decode again below this mean token
                log-probability (None: never).
            seed: seed of the sampling (None: a different draw each call).

        Returns:
            A string for one waveform, else a list of strings.

        Example:

        >>> from keras_kd.utils.testing import tiny_whisper_audio_to_text
        >>> model = tiny_whisper_audio_to_text()
        >>> audio = np.zeros(16000, "float32")
        >>> model.transcribe(audio, max_length=6, temperatures=0.0) == model.generate(audio, max_length=6)
        True
        """
        fallback = TemperatureFallback(temperatures, compression_ratio_threshold, logprob_threshold)
        results = self.decode_with_fallback(inputs, max_length, fallback, seed)
        return results.text if isinstance(results, Transcription) else [r.text for r in results]

    def decode_with_fallback(self, inputs, max_length=None, fallback=None, seed=None):
        """`transcribe`, with each waveform's attempts.

        Args:
            inputs, max_length, seed: as `transcribe`'s.
            fallback: a `keras_kd.speech.TemperatureFallback` (default:
                Whisper's temperatures and thresholds).

        Returns:
            A `keras_kd.speech.Transcription` for one waveform (`.text`,
            `.attempts`), else a list of them.

        Example:

        >>> from keras_kd.utils.testing import tiny_whisper_audio_to_text
        >>> model = tiny_whisper_audio_to_text()
        >>> result = model.decode_with_fallback(np.zeros(16000, "float32"), max_length=6, seed=0)
        >>> [a.temperature for a in result.attempts]  # the tiny random model is unsure
        [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
        """
        fallback = check_fallback(fallback)
        check_int("seed", seed, minimum=0, maximum=2**32 - 1, allow_none=True, example=0)
        x, single = self._encoder_inputs("decode_with_fallback", inputs)
        check_decoder_length(self, max_length)
        if "encoder_hidden_states" in x:
            states = np.asarray(x["encoder_hidden_states"], np.float32)
        else:
            features = self.preprocessor.generate_preprocess(x, 1)["encoder_features"]
            states = np.asarray(compiled_encoder(self)(features), np.float32)
        if seed is not None:
            self._random_sampler()[1].seed_generator.state.assign(np.array([seed, 0], "uint32"))

        def decode(indices, temperature):
            # The rows left are padded to a power of two (repeating the
            # last), so that the compiled decoding sees a few batch sizes,
            # not one per count of transcripts that fell back.
            rows = list(indices) + [indices[-1]] * ((1 << (len(indices) - 1).bit_length()) - len(indices))
            x = self.preprocessor.generate_preprocess(
                {"encoder_hidden_states": states[rows]}, sequence_length=max_length
            )
            x = self._decoding_function(temperature)(
                x, stop_token_ids=[self.preprocessor.tokenizer.eos_token_id]
            )
            texts = self.preprocessor.generate_postprocess(x)
            logprobs = self._mean_logprobs(states[rows], x)
            return [
                Attempt(text, temperature, float(logprob))
                for text, logprob in zip(texts[: len(indices)], logprobs)
            ]

        results = decode_with_fallback(decode, len(states), fallback)
        return results[0] if single else results

    def _decoding_function(self, temperature):
        """The compiled generation with a greedy sampler (temperature 0)
        or a random one at `temperature`: one of each per model, the
        temperature a variable, so no temperature compiles again."""
        jit_compile = bool(self.jit_compile)
        cached = getattr(self, "_kd_decoding", None)
        if cached is None or cached[0] != jit_compile:
            functions = {}
            for name, sampler in (
                ("greedy", keras_hub.samplers.GreedySampler()),
                ("random", self._random_sampler()[1]),
            ):
                functions[name] = tf.function(
                    lambda x, stop_token_ids, sampler=sampler: self._generate_with(sampler, x, stop_token_ids),
                    jit_compile=jit_compile,
                )
            cached = (jit_compile, functions)
            object.__setattr__(self, "_kd_decoding", cached)
        if temperature == 0:
            return cached[1]["greedy"]
        self._random_sampler()[0].assign(temperature)
        return cached[1]["random"]

    def _random_sampler(self):
        """`(temperature, sampler)`: the model's one random sampler and the
        variable it divides the logits by, made on first use."""
        if getattr(self, "_kd_sampling", None) is None:
            temperature = keras.Variable(1.0, trainable=False, name="sampling_temperature")
            # Set past Keras's attribute tracking: the sampler's variables
            # are no weights of the model (nor saved with it).
            object.__setattr__(self, "_kd_sampling", (
                temperature,
                keras_hub.samplers.RandomSampler(temperature=temperature),
            ))
        return self._kd_sampling

    def _mean_logprobs(self, states, generated, rows=8):
        """Each row's mean log-probability of its generated tokens (the end
        token included) under the model at temperature 1, with the
        suppression of generation; scored `rows` at a time, up to the
        longest transcript."""
        token_ids = np.asarray(generated["decoder_token_ids"])
        kept = np.asarray(generated["decoder_padding_mask"]).astype(bool)
        prompt_length = len(self.preprocessor.prompt_ids)
        length = int(kept.sum(axis=1).max())
        token_ids, kept = token_ids[:, :length], kept[:, :length]
        scored = kept.copy()
        scored[:, :prompt_length] = False
        # Position p's logits predict token p + 1: the first generated
        # token under the first step's suppression, the others under the
        # rest.
        masks = np.where(
            (np.arange(length - 1) == prompt_length - 1)[:, None],
            self.suppressed(first_step=True)[None],
            self.suppressed(first_step=False)[None],
        )
        masks = np.where(masks, -np.inf, 0.0).astype("float32")
        means = []
        for start in range(0, len(token_ids), rows):
            chunk = token_ids[start : start + rows]
            cross = self.cross_attention_caches(ops.convert_to_tensor(states[start : start + rows]))
            empty = whisper_decoding.empty_self_caches(self.backbone, len(chunk), length)
            logits, _, _ = self.call_decoder_with_cache(ops.convert_to_tensor(chunk), 0, empty, cross)
            logprobs = ops.log_softmax(ops.cast(logits[:, :-1], "float32") + masks[None], axis=-1)
            picked = ops.take_along_axis(logprobs, ops.convert_to_tensor(chunk[:, 1:, None]), axis=-1)[..., 0]
            weight = scored[start : start + rows, 1:]
            means.append(
                ops.convert_to_numpy(ops.sum(ops.where(weight, picked, 0.0), axis=1))
                / np.maximum(weight.sum(axis=1), 1)
            )
        return np.concatenate(means)

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
        x, single = self._encoder_inputs("generate", inputs)
        check_decoder_length(self, max_length)
        if stop_token_ids == "auto":
            stop_token_ids = [self.preprocessor.tokenizer.eos_token_id]
        elif stop_token_ids is not None and (
            isinstance(stop_token_ids, (str, bytes)) or not hasattr(stop_token_ids, "__iter__")
        ):
            raise ValueError(
                "`stop_token_ids` is a list of token ids (or \"auto\", or None "
                f"to run to max_length), e.g. [{stop_token_ids!r:.20}]. Received: "
                f"stop_token_ids={stop_token_ids!r:.40}"
            )
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
