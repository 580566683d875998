"""keras_kd.speech.WhisperAudioToText and its preprocessor: cached greedy
generation against a full recomputation, training targets, serialization,
and the real Whisper tiny.en on a real recording."""

import re
import warnings

import keras
import numpy as np
import pytest

from keras_kd.speech import WhisperAudioToText
from keras_kd.utils.testing import tiny_whisper_audio_to_text, tiny_whisper_preprocessor


def _greedy_by_recomputation(model, audio, steps, suppress, begin_suppress):
    """Greedy decoding that reruns the whole model on the whole prefix at
    every step: the reference for the KV-cached `generate`."""
    features = np.asarray(model.preprocessor.generate_preprocess(audio[None], 4)["encoder_features"])
    ids = list(model.preprocessor.prompt_ids)
    eos = model.preprocessor.tokenizer.eos_token_id
    for step in range(steps):
        logits = np.asarray(
            model(
                {
                    "encoder_features": features,
                    "decoder_token_ids": np.array([ids]),
                    "decoder_padding_mask": np.ones((1, len(ids)), "int32"),
                }
            )
        )[0, -1]
        banned = np.arange(logits.shape[0]) > eos
        banned[list(suppress)] = True
        if step == 0:
            banned[list(begin_suppress)] = True
        ids.append(int(np.argmax(np.where(banned, -np.inf, logits))))
        if ids[-1] == eos:
            break
    return ids


def test_cached_generation_equals_recomputing_the_prefix():
    model = tiny_whisper_audio_to_text(num_layers=2)
    model.suppress_token_ids = [3]
    model.begin_suppress_token_ids = [model.preprocessor.tokenizer.eos_token_id, 5]
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, 8000).astype("float32")
    expected = _greedy_by_recomputation(model, audio, 6, [3], [39, 5])
    x = model.preprocessor.generate_preprocess(audio[None], sequence_length=8)
    out = model.make_generate_function()(x, stop_token_ids=None)
    generated = np.asarray(out["decoder_token_ids"])[0, : len(expected)].tolist()
    assert generated == expected
    assert 3 not in generated and generated[2] not in (39, 5)


# mixed_float16 alone: it fails where mixed_bfloat16 fails (float32
# embeddings meeting half-precision layers) and also where float16
# overflows (the attention mask in a half-precision softmax).
@pytest.mark.parametrize("policy, dtype", [("mixed_float16", "float16")])
def test_generation_under_a_mixed_precision_policy_is_the_float32_one(policy, dtype):
    # The decoder's float32 embedding tables met the layers' bfloat16
    # outputs: generate and transcribe failed in an AddV2 of two dtypes.
    from keras_kd.speech import whisper_decoding

    audio = np.random.default_rng(0).uniform(-0.5, 0.5, 8000).astype("float32")
    reference = tiny_whisper_audio_to_text(num_layers=2)
    x = reference.preprocessor.generate_preprocess(audio[None], sequence_length=8)
    expected = np.asarray(reference.make_generate_function()(x, stop_token_ids=None)["decoder_token_ids"])

    def first_logits(model):
        cross = model.cross_attention_caches(model.call_encoder(x["encoder_features"]))
        empty = whisper_decoding.empty_self_caches(model.backbone, 1, 8)
        return model.call_decoder_with_cache(expected, 0, empty, cross)[0]

    keras.config.set_dtype_policy(policy)  # the conftest restores float32
    model = tiny_whisper_audio_to_text(num_layers=2)
    assert model.backbone.decoder_embeddings.compute_dtype == dtype
    generated = np.asarray(model.make_generate_function()(x, stop_token_ids=None)["decoder_token_ids"])
    np.testing.assert_array_equal(generated, expected)
    assert generated[0].tolist() == _greedy_by_recomputation(model, audio, 6, [], [])
    logits = first_logits(model)
    assert logits.dtype == "float32"
    np.testing.assert_allclose(np.asarray(logits), np.asarray(first_logits(reference)), atol=1e-2)
    assert model.generate(audio, max_length=8) == reference.generate(audio, max_length=8)
    assert len(model.transcribe(audio[None], max_length=8, seed=0)) == 1


def test_generate_stops_at_end_of_text_and_returns_text():
    model = tiny_whisper_audio_to_text(num_layers=1)
    eos = model.preprocessor.tokenizer.eos_token_id
    audio = np.zeros((2, 4000), "float32")
    texts = model.generate(audio, max_length=8)
    x = model.preprocessor.generate_preprocess(audio, sequence_length=8)
    ids = np.asarray(model.make_generate_function()(x, stop_token_ids=[eos])["decoder_token_ids"])
    tokenizer = model.preprocessor.tokenizer
    for row, text in zip(ids, texts):
        body = [int(i) for i in row[2:]]
        body = body[: body.index(eos)] if eos in body else body
        expected = tokenizer.detokenize(body)
        expected = expected if isinstance(expected, str) else expected.numpy().decode()
        assert text == expected.strip()


def test_training_targets_shift_by_one_and_skip_the_prompt():
    preprocessor = tiny_whisper_preprocessor(decoder_sequence_length=7)
    x, y, weight = preprocessor({"audio": np.zeros((2, 800), "float32"), "text": ["ab", "the"]})
    tokenizer = preprocessor.tokenizer
    ids = np.asarray(x["decoder_token_ids"])
    for row, text in zip(range(2), ["ab", "the"]):
        tokens = np.asarray(tokenizer(text)).tolist()
        expected = [40, 43] + tokens + [39]
        expected += [39] * (8 - len(expected))
        assert ids[row].tolist() == expected[:7]
        assert np.asarray(y)[row].tolist() == expected[1:8]
        mask = [0] + [1] * (len(tokens) + 1) + [0] * (6 - len(tokens) - 1)
        assert np.asarray(weight)[row].tolist() == mask
    assert x["encoder_features"].shape == (2, 3000, 80)


def test_saved_model_and_preset_give_the_same_logits(tmp_path):
    model = tiny_whisper_audio_to_text(num_layers=1)
    model.suppress_token_ids = [7]
    inputs = {
        "encoder_features": np.random.default_rng(1).normal(size=(1, 3000, 80)).astype("float32"),
        "decoder_token_ids": np.array([[40, 43, 1, 2]]),
        "decoder_padding_mask": np.ones((1, 4), "int32"),
    }
    expected = np.asarray(model(inputs))
    model.save(tmp_path / "whisper.keras")
    loaded = keras.saving.load_model(tmp_path / "whisper.keras")
    np.testing.assert_allclose(np.asarray(loaded(inputs)), expected, atol=1e-6)
    model.save_to_preset(str(tmp_path / "preset"))
    reloaded = WhisperAudioToText.from_preset(str(tmp_path / "preset"))
    np.testing.assert_allclose(np.asarray(reloaded(inputs)), expected, atol=1e-6)
    assert reloaded.suppress_token_ids == [7]
    assert reloaded.preprocessor.decoder_sequence_length == 8


def test_loaded_model_is_compiled_as_saved_without_warning(tmp_path):
    model = tiny_whisper_audio_to_text(num_layers=1)
    model.save(tmp_path / "untrained.keras")
    x, y, weight = model.preprocessor({"audio": np.zeros((2, 8000), "float32"), "text": ["re", "an"]})
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    keras.Model.fit(model, x, y, sample_weight=weight, epochs=2, verbose=0)
    model.save(tmp_path / "trained.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Keras warns when it skips compile or optimizer state
        untrained = keras.saving.load_model(tmp_path / "untrained.keras")
        trained = keras.saving.load_model(tmp_path / "trained.keras")
    assert type(untrained.sampler).__name__ == "GreedySampler"
    assert int(trained.optimizer.iterations) == 2
    assert trained.optimizer.learning_rate.numpy() == pytest.approx(1e-3)


def test_files_saved_before_the_optimizer_flag_load_without_warning(tmp_path, monkeypatch):
    model = tiny_whisper_audio_to_text(num_layers=1)
    # As saved by keras-kd before the flag: Keras's own compile settings.
    monkeypatch.setattr(WhisperAudioToText, "get_compile_config", keras.Model.get_compile_config)
    model.save(tmp_path / "older.keras")
    monkeypatch.undo()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = keras.saving.load_model(tmp_path / "older.keras")
    assert not loaded.optimizer.built


def test_generate_without_preprocessor_says_how_to_get_one():
    model = tiny_whisper_audio_to_text(num_layers=1)
    bare = WhisperAudioToText(model.backbone)
    with pytest.raises(ValueError, match="WhisperAudioToText.from_preset"):
        bare.generate(np.zeros(1600, "float32"))


def test_generate_names_a_dict_without_audio_and_a_bare_stop_id():
    model = tiny_whisper_audio_to_text(num_layers=1)
    audio = np.zeros(1600, "float32")
    # A KeyError 'audio' and an autograph TypeError before.
    with pytest.raises(ValueError, match=r"Received a dict with keys \['waveform'\]: pass \{\"audio\": waveforms\}"):
        model.generate({"waveform": audio})
    with pytest.raises(ValueError, match=r"`stop_token_ids` is a list of token ids .* e.g. \[39\]"):
        model.generate(audio, stop_token_ids=39)


def _words(text):
    return re.sub(r"[^a-z' ]", "", text.lower()).split()


@pytest.mark.large
def test_whisper_tiny_en_transcribes_a_real_recording():
    from keras_kd.presets import resolve_preset
    from keras_kd.speech import load_wav
    from keras_kd.speech import TRANSCRIPTS, recording

    model = WhisperAudioToText.from_preset(resolve_preset("whisper_tiny_en"))
    text = model.generate(load_wav(recording("beckett.wav")))
    assert _words(text) == _words(TRANSCRIPTS["beckett.wav"])
