"""Whisper to TFLite: `export_whisper_tflite` writes a `.tflite` with an
`encode` and a `decode` signature (`whisper_tflite_graph.py`), builtin ops
only, checked against Keras's greedy transcription before it is moved into
place; `WhisperTFLiteTranscriber` transcribes audio with it."""

import dataclasses
import os
import shutil
import tempfile
import time

import numpy as np

from keras_kd.export import whisper_tflite_graph as graph
from keras_kd.export.litert_lm import check_model_ops
from keras_kd.export.serving import check_destination
from keras_kd.export.shared_embedding import share_int8_embedding
from keras_kd.speech.audio import batch_waveforms
from keras_kd.speech.whisper_audio_to_text import check_decoder_length
from keras_kd.speech.temperature_fallback import (
    TEMPERATURES,
    Attempt,
    TemperatureFallback,
    check_fallback,
    decode_with_fallback,
)
from keras_kd.utils.io import atomic_write
from keras_kd.utils.validation import check_choice, check_int, check_not_a_distiller

QUANTIZATIONS = ("none", "dynamic_int8")


class WhisperTFLiteTranscriber:
    """Transcription with an exported Whisper `.tflite`.

    Features and text come from the model's preprocessor (the app computes
    the same log-mel features on a phone); the loop is Whisper's: the
    encoder once, the prompt's tokens one by one, then one token a step
    with the suppression of the Keras model, until `<|endoftext|>`.
    `token_ids` decodes greedily; `transcribe` decodes again by sampling
    when a transcript loops or is unsure, as Whisper's `transcribe` and
    `WhisperAudioToText.transcribe` do
    (`keras_kd.speech.temperature_fallback`).

    Args:
        path_or_buffer: the `.tflite` file, or its bytes.
        model: the `keras_kd.speech.WhisperAudioToText` it was exported
            from (for its preprocessor and token suppression).
        num_threads: interpreter threads (default: LiteRT's).

    Example:

    >>> import tempfile, os, numpy as np
    >>> from keras_kd.utils.testing import tiny_whisper_audio_to_text
    >>> model = tiny_whisper_audio_to_text(num_layers=1)
    >>> path = os.path.join(tempfile.mkdtemp(), "whisper.tflite")
    >>> _ = export_whisper_tflite(model, path, max_length=8)
    >>> audio = np.random.default_rng(0).uniform(-0.5, 0.5, 8000).astype("float32")
    >>> transcriber = WhisperTFLiteTranscriber(path, model)
    >>> transcriber.transcribe(audio, temperatures=0.0) == model.generate(audio, max_length=8)
    True
    >>> ids, seconds = transcriber.token_ids(audio)
    >>> transcriber.text(ids) == model.generate(audio, max_length=8)
    True
    >>> result = transcriber.decode_with_fallback(audio, seed=0)
    >>> [a.temperature for a in result.attempts]  # the tiny random model is unsure
    [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    """

    def __init__(self, path_or_buffer, model, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter

        content = path_or_buffer if isinstance(path_or_buffer, bytes) else None
        self.interpreter = Interpreter(
            model_path=None if content else os.fspath(path_or_buffer),
            model_content=content,
            num_threads=num_threads,
        )
        self._encode = self.interpreter.get_signature_runner(graph.ENCODE)
        self._decode = self.interpreter.get_signature_runner(graph.DECODE)
        details = self._decode.get_input_details()
        self._self_shapes = {n: details[n]["shape"] for n in details if n.startswith("self_")}
        self.max_length = int(next(iter(self._self_shapes.values()))[2])
        self.preprocessor = model.preprocessor
        self.eos = self.preprocessor.tokenizer.eos_token_id
        self._always = model.suppressed(first_step=False)
        self._first = model.suppressed(first_step=True)

    def token_ids(self, audio):
        """The greedy token ids for one 16 kHz waveform (prompt and
        `<|endoftext|>` excluded), and the decoding seconds."""
        ids, _, _, seconds = self._decode_tokens(self._cross_caches(audio), 0.0, None, score=False)
        return ids, seconds

    def transcribe(
        self,
        audio,
        temperatures=TEMPERATURES,
        compression_ratio_threshold=2.4,
        logprob_threshold=-1.0,
        seed=None,
    ):
        """The text of one 16 kHz waveform, decoded as
        `WhisperAudioToText.transcribe` does (Whisper's temperature
        fallback; `temperatures=0.0`: greedy, as Keras's greedy)."""
        fallback = TemperatureFallback(temperatures, compression_ratio_threshold, logprob_threshold)
        return self.decode_with_fallback(audio, fallback, seed).text

    def decode_with_fallback(self, audio, fallback=None, seed=None):
        """`transcribe`, with its attempts: a
        `keras_kd.speech.Transcription`. `fallback` is a
        `keras_kd.speech.TemperatureFallback` (default: Whisper's). Sampled
        attempts draw from NumPy (`seed`), so they differ from the Keras
        model's draws."""
        fallback = check_fallback(fallback)
        check_int("seed", seed, minimum=0, allow_none=True, example=0)
        cross = self._cross_caches(audio)
        rng = np.random.default_rng(seed)

        def decode(indices, temperature):
            ids, total, count, _ = self._decode_tokens(cross, temperature, rng)
            text = self.text(ids)
            return [Attempt(text, temperature, total / max(count, 1))]

        return decode_with_fallback(decode, 1, fallback)[0]

    def text(self, ids):
        """The text of generated token ids."""
        return self.preprocessor.generate_postprocess(
            {
                "decoder_token_ids": np.array(ids, np.int32)[None],
                "decoder_padding_mask": np.ones((1, len(ids)), bool),
            }
        )[0]

    def _cross_caches(self, audio):
        """The encoder's cross-attention caches for one waveform."""
        batch, single = batch_waveforms(audio)
        if not single:
            raise ValueError(
                f"`token_ids` and `transcribe` take one waveform (samples,); "
                f"received a batch of shape {batch.shape}. Call them once per "
                "waveform (for the channels of one recording, as "
                "`torchaudio.load` gives them, once on `audio.mean(axis=0)`)."
            )
        x = self.preprocessor.generate_preprocess(batch, 1)
        return self._encode(**{graph.FEATURES: np.asarray(x["encoder_features"])})

    def _decode_tokens(self, cross, temperature, rng, score=True):
        """Decodes from the cross-attention caches: greedily at temperature
        0, else sampling from the suppressed logits divided by it.

        Returns:
            `(ids, sum_logprob, count, seconds)`: the generated ids (the
            end token excluded), the sum of the log-probabilities of the
            generated tokens and the end token (at temperature 1; 0 without
            `score`, which `token_ids` leaves out of its timing), their
            count, and the decoding seconds.
        """
        caches = {n: np.zeros(s, np.float32) for n, s in self._self_shapes.items()}
        tokens = list(self.preprocessor.prompt_ids)
        prompt_length = len(tokens)
        total, count = 0.0, 0
        start = time.perf_counter()
        # Decoding the token at `position` predicts the one after it, which
        # must fit in the cache: as keras-hub's sampler, at most
        # `max_length` tokens in all.
        for position in range(self.max_length - 1):
            outputs = self._decode(
                **{
                    graph.TOKEN: np.array([[tokens[position]]], np.int32),
                    graph.POSITION: np.array([position], np.int32),
                },
                **caches,
                **cross,
            )
            caches = {n: outputs[n] for n in self._self_shapes}
            if position + 1 < prompt_length:
                continue
            banned = self._first if position + 1 == prompt_length else self._always
            logits = np.where(banned, -np.inf, outputs[graph.LOGITS][0])
            if temperature == 0:
                token = int(np.argmax(logits))
            else:  # Gumbel-max: a draw from softmax(logits / temperature)
                token = int(np.argmax(logits / temperature + rng.gumbel(size=logits.shape)))
            if score:
                logits = logits.astype(np.float64)
                top = logits.max()
                total += logits[token] - top - np.log(np.exp(logits - top).sum())
            count += 1
            if token == self.eos:
                break
            tokens.append(token)
        return tokens[prompt_length:], total, count, time.perf_counter() - start


@dataclasses.dataclass
class WhisperTFLiteExport:
    """What `export_whisper_tflite` wrote and how it compares with Keras.

    Attributes:
        path: the `.tflite` file.
        size_bytes: its size.
        token_agreement: share of the verification transcripts' tokens
            equal to Keras's greedy tokens (position by position, over the
            longer of the two), or None without verification audio.
        texts: `(keras_text, tflite_text)` per verification waveform.
    """

    path: str
    size_bytes: int
    token_agreement: float | None
    texts: list


def keras_token_ids(model, audio, max_length):
    """Keras's greedy token ids for one waveform (prompt and end excluded)."""
    x = model.preprocessor.generate_preprocess(batch_waveforms(audio)[0], max_length)
    eos = model.preprocessor.tokenizer.eos_token_id
    out = model.make_generate_function()(x, stop_token_ids=[eos])
    ids = np.asarray(out["decoder_token_ids"])[0, len(model.preprocessor.prompt_ids) :].tolist()
    return ids[: ids.index(eos)] if eos in ids else ids


def _agreement(a, b):
    longest = max(len(a), len(b))
    return 1.0 if longest == 0 else sum(x == y for x, y in zip(a, b)) / longest


def _convert(model, max_length, quantization):
    import keras
    import tensorflow as tf

    cached = graph.WhisperCachedGraph(model, max_length)
    archive = keras.export.ExportArchive()
    archive.track(cached)
    archive.add_endpoint(graph.ENCODE, cached.encode, input_signature=cached.encode_signature())
    archive.add_endpoint(graph.DECODE, cached.decode, input_signature=cached.decode_signature())
    workdir = tempfile.mkdtemp(prefix="keras_kd_whisper_")
    try:
        archive.write_out(os.path.join(workdir, "saved_model"), verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(
            os.path.join(workdir, "saved_model"), signature_keys=[graph.ENCODE, graph.DECODE]
        )
        # Builtin ops only: phone runtimes do not link Flex (Select TF ops).
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantization == "dynamic_int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        buffer = converter.convert()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if quantization == "dynamic_int8":
        backbone = model.backbone
        buffer = share_int8_embedding(buffer, backbone.vocabulary_size, backbone.hidden_dim)
    return buffer


def export_whisper_tflite(
    model, path, max_length=224, quantization="none", verification_audio=(), overwrite=False
):
    """Exports a Whisper speech-to-text model to one `.tflite` file.

    Args:
        model: a `keras_kd.speech.WhisperAudioToText` (a teacher or a
            `whisper_student`).
        path: the `.tflite` file to write.
        max_length: the decoder's cache length: the longest transcript in
            tokens, prompt included (at most the model's decoder positions);
            224, Whisper's limit for a 30 s window, by default.
        quantization: `"none"` (float32) or `"dynamic_int8"` (int8 weights;
            the tied token table stored once,
            `shared_embedding.share_int8_embedding`).
        verification_audio: 16 kHz waveforms to transcribe with both the
            file and Keras before the file is written; in float32 every
            transcript must have Keras's tokens (else `ValueError`, nothing
            written); quantized files report their agreement.
        overwrite: replace an existing file.

    Returns:
        A `WhisperTFLiteExport`.

    Example:

    >>> import tempfile, os, numpy as np
    >>> from keras_kd.utils.testing import tiny_whisper_audio_to_text
    >>> model = tiny_whisper_audio_to_text(num_layers=1)
    >>> path = os.path.join(tempfile.mkdtemp(), "whisper.tflite")
    >>> result = export_whisper_tflite(
    ...     model, path, max_length=8, verification_audio=[np.zeros(8000, "float32")])
    >>> result.token_agreement
    1.0
    """
    check_not_a_distiller(model, "model", "export_whisper_tflite")
    path = check_destination(path, overwrite)
    check_choice("quantization", quantization, QUANTIZATIONS)
    check_decoder_length(model, max_length, allow_none=False)
    buffer = _convert(model, max_length, quantization)
    check_model_ops(buffer)
    texts, agreements = [], []
    if len(verification_audio):
        transcriber = WhisperTFLiteTranscriber(buffer, model)
        for audio in verification_audio:
            expected = keras_token_ids(model, audio, max_length)
            got, _ = transcriber.token_ids(audio)
            agreements.append(_agreement(expected, got))
            texts.append((model.generate(audio, max_length=max_length), transcriber.text(got)))
        if quantization == "none" and min(agreements) < 1.0:
            raise ValueError(
                "The float32 TFLite model transcribes differently from Keras "
                f"(token agreement {min(agreements):.1%}): {texts}. Nothing "
                "was written; please report this with the model."
            )
    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(buffer)

    atomic_write(path, write, overwrite=overwrite)
    return WhisperTFLiteExport(
        path=path,
        size_bytes=os.path.getsize(path),
        token_agreement=float(np.mean(agreements)) if agreements else None,
        texts=texts,
    )
