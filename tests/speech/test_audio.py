"""keras_kd.speech.audio: WAV reading and resampling to 16 kHz."""

import warnings
import wave

import numpy as np
import pytest

from keras_kd.speech import batch_waveforms, load_wav, resample
from keras_kd.utils.testing import tiny_whisper_audio_to_text


def _tone(rate, seconds=1.0, hz=440.0):
    t = np.arange(int(rate * seconds)) / rate
    return np.sin(2 * np.pi * hz * t)


@pytest.mark.parametrize("rate", [48000, 24000, 8000, 44100])
def test_resampled_tone_equals_the_tone_sampled_at_16_khz(rate):
    down = resample(_tone(rate), rate)
    expected = _tone(16000)
    assert down.shape == expected.shape
    # Away from the edges, where the filter sees zeros beyond the signal.
    np.testing.assert_allclose(down[800:-800], expected[800:-800], atol=2e-3)


def test_frequencies_above_the_new_nyquist_are_removed():
    down = resample(_tone(48000, hz=11000), 48000)  # above 8 kHz
    assert np.abs(down[800:-800]).max() < 0.01


def test_bad_rate_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"rate=0"):
        resample(np.zeros(10), 0)
    _write_wav(tmp_path / "a.wav", np.zeros(160), 16000, 1)
    # Named `target_rate`, resample's argument, once the file was read.
    with pytest.raises(ValueError, match=r"`sampling_rate` must be an int >= 1, e.g. 16000. Received: sampling_rate=None"):
        load_wav(tmp_path / "a.wav", sampling_rate=None)


def _write_wav(path, samples, rate, channels):
    with wave.open(str(path), "wb") as f:
        f.setnchannels(channels)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(samples.astype("<i2").tobytes())


def test_stereo_48_khz_file_reads_as_mono_16_khz(tmp_path):
    left = np.round(_tone(48000) * 16384)
    right = np.round(_tone(48000) * 8192)
    _write_wav(tmp_path / "a.wav", np.stack([left, right], axis=1).reshape(-1), 48000, 2)
    audio = load_wav(tmp_path / "a.wav")
    expected = 0.375 * _tone(16000)  # (0.5 + 0.25) / 2
    np.testing.assert_allclose(audio[800:-800], expected[800:-800], atol=2e-3)


def test_24_bit_file_reads_as_its_samples(tmp_path):
    # 24-bit PCM, as audio recorders write it: 3-byte little-endian ints.
    ints = np.round(_tone(16000) * 0.5 * 2**23).astype(np.int64)
    ints[:3] = [-(2**23), 2**23 - 1, -1]
    with wave.open(str(tmp_path / "a.wav"), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(3)
        f.setframerate(16000)
        f.writeframes(b"".join(int(v).to_bytes(3, "little", signed=True) for v in ints))
    np.testing.assert_array_equal(load_wav(tmp_path / "a.wav"), (ints / 2**23).astype("float32"))


def test_files_that_are_not_wav_are_refused_with_their_name(tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    with pytest.raises(ValueError, match="notes.wav.*is not a PCM WAV file"):
        load_wav(bad)
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        load_wav(tmp_path / "missing.wav")
    # wave's EOFError carries no message: "is not a PCM WAV file ()".
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty.wav'\) is empty \(0 bytes\). Record or copy the audio again."):
        load_wav(tmp_path / "empty.wav")
    _write_wav(tmp_path / "a.wav", np.zeros(160), 16000, 1)
    (tmp_path / "cut.wav").write_bytes((tmp_path / "a.wav").read_bytes()[:20])
    with pytest.raises(ValueError, match=r"cut.wav'\) is cut short: its 20 bytes end inside the WAV header"):
        load_wav(tmp_path / "cut.wav")


def test_a_file_cut_short_mid_frame_reads_its_whole_frames(tmp_path):
    # "buffer size must be a multiple of element size" from np.frombuffer.
    stereo = np.arange(1, 9).reshape(4, 2) * 1024
    _write_wav(tmp_path / "a.wav", stereo.reshape(-1), 16000, 2)
    whole = (tmp_path / "a.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(whole[:-3])
    np.testing.assert_array_equal(load_wav(tmp_path / "cut.wav"), stereo[:3].mean(axis=1) / 32768)


@pytest.mark.parametrize(
    "audio, match",
    [
        # soundfile and scipy read stereo as (samples, channels)
        (np.zeros((48000, 2), "float32"), r"shape \(48000, 2\) looks like one recording of 2 channels.*mean\(axis=1\)"),
        # scipy.io.wavfile reads 16-bit PCM as int16
        (np.full(1600, 1000, "int16"), r"The audio holds int16 samples.*astype\('float32'\) / 32768"),
        # Python ints: the fix named "its full scale" as if it were code.
        ([1000] * 1600, r"holds int64 samples.*np.asarray\(audio, 'float32'\) / 32768` for 16-bit PCM"),
        (np.full(1600, 1000.0), r"The audio peaks at 1000; .*audio / 32768"),
        ([np.zeros(1600), np.zeros(0)], r"Waveform 1 of the list has no samples"),
        (np.stack([np.zeros(1600), np.r_[np.zeros(7), np.nan, np.zeros(1592)]]), r"non-finite sample \(nan at waveform 1, sample 7\)"),
        (np.zeros(1600, bool), r"holds bool values"),
    ],
)
def test_audio_whisper_would_mishear_is_refused_with_the_fix(audio, match):
    with pytest.raises(ValueError, match=match):
        batch_waveforms(audio)


def test_the_channels_of_one_recording_as_rows_are_warned_of():
    from keras_kd.speech.recordings import recording

    speech = load_wav(recording("beckett.wav"))[:48000]
    other = load_wav(recording("two_cities.wav"))[:48000]
    # torchaudio.load's (channels, samples): two microphones, one 1.5 ms
    # later and quieter, with noise of their own.
    rng = np.random.default_rng(0)
    later = 0.7 * np.r_[np.zeros(24), speech[:-24]] + 0.005 * rng.normal(size=speech.size)
    with pytest.warns(UserWarning, match=(
            r"The 2 rows of this \(2, 48000\) batch of audio correlate like the "
            r"channels of one recording \(at least 0\.9\d\), as `torchaudio.load` "
            r"gives them .* `audio.mean\(axis=0\)`")):
        batch, single = batch_waveforms(np.stack([speech, later]).astype("float32"))
    assert batch.shape == (2, 48000) and not single
    # Two recordings, or one beside silence, correlate near 0: no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for rows in ([speech, other], [speech, np.zeros_like(speech)]):
            batch_waveforms(np.stack(rows).astype("float32"))
    assert abs(np.corrcoef(speech, other)[0, 1]) < 0.1


def test_generate_refuses_pcm_before_computing_features(monkeypatch):
    model = tiny_whisper_audio_to_text(num_layers=1)
    # Without the check, int16 samples come out as text: Whisper's features of
    # audio 32,768 times too loud.
    monkeypatch.setattr(model.preprocessor, "generate_preprocess", lambda *a, **k: pytest.fail("features computed"))
    with pytest.raises(ValueError, match="int16 samples"):
        model.generate(np.full(1600, 1000, "int16"))


def test_audio_slightly_above_full_scale_is_accepted():
    # Resampled full-scale audio overshoots 1 by a few percent.
    batch, single = batch_waveforms(np.full(1600, 1.1))
    assert single and batch.dtype == np.float32 and float(batch.max()) == pytest.approx(1.1)


def test_a_list_of_numbers_is_one_waveform():
    samples = [0.1 * np.sin(i / 5.0) for i in range(3200)]
    model = tiny_whisper_audio_to_text(num_layers=1)
    assert model.generate(samples, max_length=6) == model.generate(np.asarray(samples, "float32"), max_length=6)
    # A list mixing arrays and numbers is refused, its shapes cut short.
    with pytest.raises(ValueError, match=r"Received shapes: \[\(3,\), \(\), \(\), \(\), \(\)\] ... \(7 items\)"):
        batch_waveforms([np.zeros(3)] + [0.0] * 6)


@pytest.mark.parametrize("max_length", [0, 2, 33, 6.0])
def test_a_decoding_length_outside_the_decoder_is_refused(max_length):
    # 0 used to mean the default length, and 33 the decoder's positions.
    model = tiny_whisper_audio_to_text(num_layers=1)
    message = rf"`max_length` must be None or an int in \[3, 32\].*max_length={max_length}"
    with pytest.raises(ValueError, match=message):
        model.generate(np.zeros(1600, "float32"), max_length=max_length)
    with pytest.raises(ValueError, match=message):
        model.transcribe(np.zeros(1600, "float32"), max_length=max_length)


def test_a_file_path_is_refused_with_load_wav(tmp_path):
    model = tiny_whisper_audio_to_text(num_layers=1)
    # Read as a 0-d string array: "Received shape ()".
    with pytest.raises(TypeError, match=r"not file paths. Received: 'talk.wav'.*keras_kd.speech.load_wav\(path\)"):
        model.transcribe("talk.wav", max_length=4, temperatures=0.0)
    with pytest.raises(TypeError, match=r"Received: PosixPath\('.*b.wav'\).*\[load_wav\(p\) for p in paths\]"):
        batch_waveforms([np.zeros(160), tmp_path / "b.wav"])
    # A list of paths alone was read as one waveform of strings.
    with pytest.raises(TypeError, match=r"Received: 'a.wav'"):
        batch_waveforms(["a.wav", "b.wav"])
