"""keras_kd.speech.speech_synthesis: eSpeak NG audio, reproducible and
varied, and the real teacher hears it."""

import shutil

import numpy as np
import pytest

from keras_kd.speech import ENGLISH_VOICES, FLITE_VOICES, speak, synthesize

needs_flite = pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed (apt-get install flite)")


def test_every_listed_voice_speaks():
    lengths = [len(speak("Try again.", voice)) for voice in ENGLISH_VOICES]
    assert all(8000 < n < 48000 for n in lengths)  # 0.5 to 3 seconds
    assert len(set(lengths)) > 1  # voices differ


def test_slower_speech_is_longer_and_a_bad_voice_is_named():
    assert len(speak("Fail better.", words_per_minute=100)) > 1.5 * len(
        speak("Fail better.", words_per_minute=200)
    )
    with pytest.raises(ValueError, match="no voice 'zz-bogus'"):
        speak("hello", voice="zz-bogus")


@needs_flite
def test_flite_voices_speak_at_16_khz_and_follow_the_rate():
    lengths = [len(speak("Try again.", voice)) for voice in FLITE_VOICES]
    assert all(8000 < n < 48000 for n in lengths)  # 0.5 to 3 seconds
    assert len(set(lengths)) == len(FLITE_VOICES)  # voices differ
    slow, fast = (speak("Fail better.", "flite:slt", rate) for rate in (100, 200))
    assert 1.6 < len(slow) / len(fast) < 2.4  # duration stretched by 175 / rate
    audio = speak("-t is not an option", "flite:rms")  # the text is read, not parsed
    assert audio.dtype == np.float32 and len(audio) > 16000
    with pytest.raises(ValueError, match=r"flite has no voice 'bogus' \(voice='flite:bogus'\).*flite:slt"):
        speak("hello", voice="flite:bogus")


def test_flite_voices_name_the_missing_program(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ImportError, match=r"voice='flite:slt' needs the flite program.*apt-get install flite"):
        speak("hello", voice="flite:slt")
    with pytest.raises(ValueError, match=r"`voice` must be a string.*Received: voice=3"):
        speak("hello", voice=3)


def test_synthesis_draws_are_reproducible_and_varied():
    texts = ["No matter.", "Fail again.", "Ever tried.", "Try again."] * 3
    first = synthesize(texts, seed=3)
    again = synthesize(texts, seed=3)
    assert [u.text for u in first] == texts
    draws = lambda us: [(u.voice, u.words_per_minute, u.pitch, u.snr_db) for u in us]  # noqa: E731
    assert draws(first) == draws(again)
    assert len({u.voice for u in first}) > 3 and len({u.pitch for u in first}) > 3
    assert all(10.0 <= u.snr_db <= 40.0 for u in first)
    for a, b in zip(first, again):  # eSpeak NG: the same to a few samples
        assert abs(len(a.audio) - len(b.audio)) <= 0.01 * len(a.audio)
    clean = synthesize(texts[:2], voices=["en-us"], noise_snr_db=None)
    assert all(u.snr_db == float("inf") for u in clean)


def test_real_teacher_transcribes_clean_synthetic_speech():
    from keras_kd.presets import resolve_preset
    from keras_kd.speech import WhisperAudioToText, word_error_rate

    model = WhisperAudioToText.from_preset(resolve_preset("whisper_tiny_en"))
    text = "Ever tried. Ever failed. No matter. Try again."
    hypothesis = model.generate(speak(text, "en-us", 150), max_length=32)
    assert word_error_rate([text], [hypothesis]) <= 0.25


def test_join_sentences_keeps_every_sentence_in_order_within_the_budget():
    from keras_kd.speech import join_sentences

    texts = [f"sentence {i} " + "word " * (i % 7) for i in range(200)]
    passages = join_sentences(texts, max_words=30, seed=4)
    assert " ".join(passages).split() == " ".join(texts).split()
    sizes = [len(p.split()) for p in passages]
    # A passage passes the budget only when its first sentence alone does.
    assert max(sizes) <= 30
    assert 1 < len(texts) / len(passages) < 5  # some joined, some alone
    assert sum(p.count("sentence") == 1 for p in passages) > 10
    assert passages == join_sentences(texts, max_words=30, seed=4)
    assert join_sentences(texts, max_words=1) == [t.strip() for t in texts]
    with pytest.raises(ValueError, match="max_words"):
        join_sentences(texts, max_words=0)
    with pytest.raises(ValueError, match="texts"):
        join_sentences("one sentence")
