"""Whisper's temperature fallback (`keras_kd.speech.temperature_fallback`),
in `WhisperAudioToText.transcribe` and in the `.tflite` transcriber: the
rule, the log-probabilities it judges by (against a NumPy reference), and
sampling at a temperature."""

import zlib

import numpy as np
import pytest

from keras_kd.export import whisper_tflite
from keras_kd.speech.temperature_fallback import (
    Attempt,
    TemperatureFallback,
    compression_ratio,
    decode_with_fallback,
)
from keras_kd.utils.testing import tiny_whisper_audio_to_text

MAX_LENGTH = 10
GREEDY = TemperatureFallback(temperatures=0.0)


@pytest.fixture(scope="module")
def model():
    model = tiny_whisper_audio_to_text(num_layers=2, decoder_sequence_length=MAX_LENGTH)
    model.suppress_token_ids = [2, 7]
    model.begin_suppress_token_ids = [39, 0]
    return model


@pytest.fixture(scope="module")
def audio():
    rng = np.random.default_rng(0)
    return [rng.uniform(-0.5, 0.5, n).astype("float32") for n in (8000, 12000, 16000)]


@pytest.fixture(scope="module")
def transcriber(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("whisper") / "model.tflite"
    whisper_tflite.export_whisper_tflite(model, path, max_length=MAX_LENGTH)
    return whisper_tflite.WhisperTFLiteTranscriber(path, model)


def _log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def _reference_mean_logprob(model, waveform):
    """The mean log-probability of the greedy tokens and the end token,
    from the task's own forward pass over the whole transcript."""
    ids = whisper_tflite.keras_token_ids(model, waveform, MAX_LENGTH)
    preprocessor = model.preprocessor
    eos = preprocessor.tokenizer.eos_token_id
    prompt = list(preprocessor.prompt_ids)
    sequence = prompt + ids + ([eos] if len(prompt) + len(ids) < MAX_LENGTH else [])
    features = np.asarray(preprocessor.generate_preprocess(waveform[None], 1)["encoder_features"])
    logits = np.asarray(model({
        "encoder_features": features,
        "decoder_token_ids": np.array([sequence], "int32"),
        "decoder_padding_mask": np.ones((1, len(sequence)), bool),
    }))[0].astype("float64")
    total = 0.0
    for position in range(len(prompt), len(sequence)):
        banned = model.suppressed(first_step=position == len(prompt))
        row = _log_softmax(np.where(banned, -np.inf, logits[position - 1]))
        total += row[sequence[position]]
    return total / (len(sequence) - len(prompt))


def test_compression_ratio_is_zlib_s():
    text = "It was the spring of hope, it was the spring of hope."
    assert compression_ratio(text) == len(text.encode()) / len(zlib.compress(text.encode()))
    assert compression_ratio("") == 0.0


def test_only_failing_transcripts_are_decoded_again():
    calls = []
    accepted_at = {0: 0.0, 1: 0.4, 2: 99.0}  # row 2 never passes

    def decode(indices, temperature):
        calls.append((temperature, list(indices)))
        return [
            Attempt(f"{i}@{temperature}", temperature, 0.0 if temperature >= accepted_at[i] else -5.0)
            for i in indices
        ]

    results = decode_with_fallback(decode, 3, TemperatureFallback())
    assert calls == [(0.0, [0, 1, 2]), (0.2, [1, 2]), (0.4, [1, 2]), (0.6, [2]), (0.8, [2]), (1.0, [2])]
    assert [r.temperature for r in results] == [0.0, 0.4, 1.0]
    assert [len(r.attempts) for r in results] == [1, 3, 6]
    assert results[2].text == "2@1.0"  # the last attempt stands


LOOP = "It was the spring of hope. " * 5


@pytest.mark.parametrize(
    "attempt, rule, accepted",
    [
        (Attempt(LOOP, 0.0, -0.5), TemperatureFallback(), False),  # loops
        (Attempt("x", 0.0, -1.5), TemperatureFallback(), False),  # unsure
        # At the thresholds.
        (Attempt(LOOP, 0.0, -0.5), TemperatureFallback(compression_ratio_threshold=compression_ratio(LOOP)), True),
        (Attempt("x", 0.0, -1.0), TemperatureFallback(), True),
        (Attempt(LOOP, 0.0, -9.0), TemperatureFallback(compression_ratio_threshold=None, logprob_threshold=None), True),
    ],
)
def test_rule(attempt, rule, accepted):
    assert rule.accepts(attempt) is accepted


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"temperatures": []}, "temperatures=[]"),
        ({"temperatures": "0.2"}, "temperatures='0.2'"),
        ({"temperatures": (0.0, float("nan"))}, "temperatures[1]=nan"),
        ({"compression_ratio_threshold": "2.4"}, "compression_ratio_threshold='2.4'"),
        ({"logprob_threshold": True}, "logprob_threshold=True"),
    ],
)
def test_bad_settings_refused_before_decoding(model, transcriber, audio, kwargs, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        model.transcribe(audio[0], **kwargs)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        transcriber.transcribe(audio[0], **kwargs)


def test_a_rule_that_is_not_a_temperature_fallback_is_refused(model, transcriber, audio):
    with pytest.raises(TypeError, match=r"Received: \(0.0, 0.2\)"):
        model.decode_with_fallback(audio[0], fallback=(0.0, 0.2))
    with pytest.raises(TypeError, match=r"Received: 0.0"):
        transcriber.decode_with_fallback(audio[0], fallback=0.0)


@pytest.mark.parametrize("seed, message", [(-1, "seed=-1"), ("0", "seed='0'"), (1.5, "seed=1.5")])
def test_a_bad_seed_is_refused_before_decoding(model, transcriber, audio, seed, message):
    with pytest.raises(ValueError, match=message):
        model.transcribe(audio[0], seed=seed)
    with pytest.raises(ValueError, match=message):
        transcriber.transcribe(audio[0], seed=seed)


def test_keras_mean_logprob_equals_numpy_reference(model, audio):
    results = model.decode_with_fallback(audio, max_length=MAX_LENGTH, fallback=GREEDY)
    for waveform, result in zip(audio, results):
        assert [a.temperature for a in result.attempts] == [0.0]
        assert result.text == model.generate(waveform, max_length=MAX_LENGTH)
        assert result.attempts[0].avg_logprob == pytest.approx(_reference_mean_logprob(model, waveform), abs=1e-5)


def test_tflite_mean_logprob_equals_keras(model, transcriber, audio):
    keras_results = model.decode_with_fallback(audio, max_length=MAX_LENGTH, fallback=GREEDY)
    for waveform, expected in zip(audio, keras_results):
        got = transcriber.decode_with_fallback(waveform, fallback=GREEDY)
        assert got.text == expected.text
        assert got.attempts[0].avg_logprob == pytest.approx(expected.attempts[0].avg_logprob, abs=1e-4)


def test_sampling_follows_the_temperature(model, transcriber, audio):
    greedy = model.transcribe(audio, max_length=MAX_LENGTH, temperatures=0.0)
    cold = model.transcribe(audio, max_length=MAX_LENGTH, temperatures=1e-6, logprob_threshold=None, seed=0)
    hot = model.transcribe(audio, max_length=MAX_LENGTH, temperatures=50.0, logprob_threshold=None, seed=0)
    assert cold == greedy
    assert hot != greedy
    # Seeded draws repeat.
    assert model.transcribe(audio, max_length=MAX_LENGTH, temperatures=50.0, logprob_threshold=None, seed=0) == hot
    tflite_cold = [transcriber.transcribe(w, temperatures=1e-6, logprob_threshold=None, seed=0) for w in audio]
    tflite_hot = [transcriber.transcribe(w, temperatures=50.0, logprob_threshold=None, seed=0) for w in audio]
    assert tflite_cold == greedy
    assert tflite_hot != greedy


def test_unsure_transcripts_go_through_every_temperature(model, transcriber, audio):
    # The tiny random model's mean log-probability is far below 0.
    strict = TemperatureFallback(logprob_threshold=-0.01)
    result = model.decode_with_fallback(audio[0], max_length=MAX_LENGTH, fallback=strict, seed=0)
    assert [a.temperature for a in result.attempts] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert all(a.avg_logprob < -0.01 for a in result.attempts)
    result = transcriber.decode_with_fallback(audio[0], fallback=strict, seed=0)
    assert [a.temperature for a in result.attempts] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    # Tests off: one greedy attempt.
    result = model.decode_with_fallback(
        audio[0], max_length=MAX_LENGTH,
        fallback=TemperatureFallback(compression_ratio_threshold=None, logprob_threshold=None),
    )
    assert [a.temperature for a in result.attempts] == [0.0]


def test_sampler_adds_no_weights_to_the_model(model, audio):
    before = [w.path for w in model.weights]
    model.transcribe(audio[0], max_length=MAX_LENGTH, seed=0)
    assert [w.path for w in model.weights] == before
