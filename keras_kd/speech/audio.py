"""Audio in: WAV files read as float waveforms, resampled to Whisper's
16 kHz with a polyphase windowed-sinc filter (NumPy only)."""

import math
import os
import warnings
import wave

import numpy as np

from keras_kd.utils.validation import check_int

SAMPLING_RATE = 16000

_SAMPLE_TYPES = {1: np.uint8, 2: np.int16, 4: np.int32}
# Outputs computed at once: bounds the (outputs, taps) index arrays.
_CHUNK = 4096
# Resampling and added noise overshoot 1 a little; integer PCM read as
# floats peaks in the hundreds or thousands.
_MAX_PEAK = 2.0
# Columns of a 2-D array read as channels: WAV layouts go up to 7.1.
_MAX_CHANNELS = 8
# Rows this correlated (at their best lag) are one recording's channels:
# two utterances, or two voices, correlate near 0.
_CHANNEL_CORRELATION = 0.8
# Lags searched: 2 ms at 16 kHz, microphones up to about 70 cm apart.
_CHANNEL_LAG = 32
# Samples compared: 10 s, enough to tell and cheap for 8 rows.
_CHANNEL_SAMPLES = 160000


def resample(audio, rate, target_rate=SAMPLING_RATE):
    """Resamples a waveform from `rate` to `target_rate` Hz.

    Upsamples by `L`, low-pass filters below the lower Nyquist frequency
    (a Kaiser-windowed sinc of 20 zero crossings a side) and keeps every
    `M`-th sample, where `L / M = target_rate / rate` in lowest terms, as
    `scipy.signal.resample_poly` does.

    Args:
        audio: float array `(samples,)`.
        rate: its sampling rate in Hz, a positive integer.
        target_rate: the wanted rate in Hz.

    Returns:
        A float32 array of `ceil(samples * target_rate / rate)` samples.

    Example:

    >>> t = np.arange(48000) / 48000
    >>> tone = np.sin(2 * np.pi * 440 * t)  # 1 s of A4 at 48 kHz
    >>> down = resample(tone, 48000)
    >>> down.shape, float(np.round(np.abs(down[1000:-1000]).max(), 2))
    ((16000,), 1.0)
    """
    for name, value in (("rate", rate), ("target_rate", target_rate)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise ValueError(
                f"`{name}` must be a positive whole number of Hz, such as "
                f"16000. Received: {name}={value!r}"
            )
    audio = np.asarray(audio, dtype=np.float32)
    if rate == target_rate:
        return audio
    divisor = math.gcd(rate, target_rate)
    up, down = target_rate // divisor, rate // divisor
    factor = max(up, down)
    half_width = 20 * factor
    n = np.arange(-half_width, half_width + 1)
    # Cut off at the lower of the two Nyquist frequencies; gain `up`
    # restores the amplitude the inserted zeros take away.
    taps = np.sinc(n / factor) * np.kaiser(len(n), 5.0) * up / factor
    # Polyphase: output m sums input j with tap m * down - j * up + half,
    # so only the about len(taps) / up inputs in reach of each output are
    # read (44.1 kHz to 16 kHz would otherwise filter 160 zeros per sample).
    num_outputs = -(-len(audio) * up // down)
    reach = -(-len(taps) // up) + 1
    padded = np.concatenate([np.zeros(reach), audio, np.zeros(reach)])
    out = np.empty(num_outputs, dtype=np.float32)
    for start in range(0, num_outputs, _CHUNK):
        m = np.arange(start, min(start + _CHUNK, num_outputs))[:, None]
        first = -((len(taps) - 1 - half_width - m * down) // up)  # ceil division
        j = first + np.arange(reach)[None, :]
        k = m * down - j * up + half_width
        weights = np.where((k >= 0) & (k < len(taps)), taps[np.clip(k, 0, len(taps) - 1)], 0.0)
        out[start : start + len(m)] = (padded[j + reach] * weights).sum(axis=1)
    return out


def load_wav(path, sampling_rate=SAMPLING_RATE):
    """Reads a PCM WAV file as a mono float waveform in [-1, 1].

    Channels are averaged; another rate is resampled to `sampling_rate`.

    Args:
        path: the `.wav` file (8-, 16-, 24- or 32-bit integer PCM).
        sampling_rate: the rate to return, in Hz (Whisper's 16000 by
            default).

    Returns:
        A float32 array `(samples,)`.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: `sampling_rate` is not a positive int, or the file is
            empty, cut short in its header, or not a PCM WAV file this
            reader knows.

    Example:

    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "half_second.wav")
    >>> with wave.open(path, "wb") as f:  # 0.5 s of 48 kHz stereo silence
    ...     f.setnchannels(2); f.setsampwidth(2); f.setframerate(48000)
    ...     f.writeframes(bytes(4 * 24000))
    >>> load_wav(path).shape
    (8000,)
    """
    # Else refused by `resample` as its `target_rate`, after the file was read.
    check_int("sampling_rate", sampling_rate, example=SAMPLING_RATE)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"No audio file at {path!r}. Pass the path of a .wav file."
        )
    try:
        with wave.open(os.fspath(path), "rb") as f:
            rate, channels, width = f.getframerate(), f.getnchannels(), f.getsampwidth()
            frames = f.readframes(f.getnframes())
    except EOFError as error:
        # It has no message: the file ends before its header does.
        size = os.path.getsize(path)
        state = (
            "is empty (0 bytes)" if size == 0
            else f"is cut short: its {size} bytes end inside the WAV header"
        )
        raise ValueError(
            f"{path!r} {state}. Record or copy the audio again."
        ) from error
    except wave.Error as error:
        raise ValueError(
            f"{path!r} is not a PCM WAV file ({error}). Convert it first, "
            "for example `ffmpeg -i input -ar 16000 -ac 1 output.wav`."
        ) from error
    if width not in _SAMPLE_TYPES and width != 3:
        raise ValueError(
            f"{path!r} has {8 * width}-bit samples; this reader takes 8-, 16-, "
            "24- or 32-bit PCM. Convert it, for example `ffmpeg -i input "
            "-sample_fmt s16 output.wav`."
        )
    # A copy cut short mid-frame failed in np.frombuffer; its whole frames
    # are read.
    frames = frames[: len(frames) - len(frames) % (width * channels)]
    if width == 3:
        # Little-endian 3-byte integers, widened to int32 and sign-extended.
        raw = np.frombuffer(frames, np.uint8).reshape(-1, 3).astype(np.int32)
        samples = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        samples = np.where(samples >= 1 << 23, samples - (1 << 24), samples).astype(np.float32)
    else:
        samples = np.frombuffer(frames, _SAMPLE_TYPES[width]).astype(np.float32)
    if width == 1:  # 8-bit WAV is unsigned
        samples = samples - 128.0
    samples /= float(_pcm_scale(width))
    audio = samples.reshape(-1, channels).mean(axis=1)
    return resample(audio, rate, sampling_rate)


def _pcm_scale(width):
    """The full scale of `width`-byte integer PCM: what its samples are
    divided by to lie in [-1, 1]."""
    return 2 ** (8 * width - 1)


def _check_waveform(row, where):
    """Refuses a waveform that Whisper would hear as noise or silence,
    before any feature is computed: integer PCM samples, samples far
    outside [-1, 1], an empty or non-finite waveform."""
    if row.dtype.kind in "iu":
        width = row.dtype.itemsize
        convert = (
            f"`audio.astype('float32') / {_pcm_scale(width)}`" if width in _SAMPLE_TYPES
            # Python ints (int64): the PCM's own width is unknown.
            else "`np.asarray(audio, 'float32') / 32768` for 16-bit PCM (the "
            "full scale of its sample width otherwise)"
        )
        raise ValueError(
            f"{where} holds {row.dtype} samples; Whisper takes float samples "
            f"in [-1, 1]. Convert integer PCM first: {convert} (or read the "
            "file with `keras_kd.speech.load_wav`)."
        )
    if row.dtype.kind not in "f":
        raise ValueError(
            f"{where} holds {row.dtype} values; pass float samples in [-1, 1]."
        )
    if row.size == 0:
        raise ValueError(f"{where} has no samples. Pass at least one sample of 16 kHz audio.")
    finite = np.isfinite(row)
    if not finite.all():
        at = np.unravel_index(int(np.flatnonzero(~finite)[0]), row.shape)
        place = f"sample {at[-1]}" if row.ndim == 1 else f"waveform {at[0]}, sample {at[1]}"
        raise ValueError(
            f"{where} holds a non-finite sample ({row[at]} at {place}). Pass "
            "waveforms of finite samples in [-1, 1]."
        )
    peak = float(np.abs(row).max())
    if peak > _MAX_PEAK:
        raise ValueError(
            f"{where} peaks at {peak:g}; Whisper takes samples in [-1, 1]. "
            "Integer PCM read as floats needs dividing by its full scale "
            "(32768 for 16-bit): `audio / 32768`; other audio, "
            "`audio / np.abs(audio).max()`."
        )


def _best_lag_correlation(a, b):
    """The largest correlation of `a` and `b` over lags of up to
    `_CHANNEL_LAG` samples either way (spaced microphones hear a voice
    at different times)."""
    a, b = a - a.mean(), b - b.mean()
    scale = np.linalg.norm(a) * np.linalg.norm(b)
    n = len(a)
    return max(
        float(np.dot(a[lag:], b[: n - lag]) if lag >= 0 else np.dot(a[: n + lag], b[-lag:])) / scale
        for lag in range(-min(_CHANNEL_LAG, n - 1), min(_CHANNEL_LAG, n - 1) + 1)
    )


def _warn_of_channel_rows(batch):
    """Warns when the 2 to 8 rows of a batch all correlate like the channels
    of one recording, `(channels, samples)` as `torchaudio.load` gives it:
    Whisper would transcribe each channel as a recording of its own."""
    rows = batch[:, :_CHANNEL_SAMPLES]
    if not 2 <= len(rows) <= _MAX_CHANNELS or np.ptp(rows, axis=1).min() == 0:
        return
    correlation = min(
        _best_lag_correlation(rows[i], rows[j])
        for i in range(len(rows))
        for j in range(i + 1, len(rows))
    )
    if correlation > _CHANNEL_CORRELATION:
        warnings.warn(
            f"The {len(batch)} rows of this {batch.shape} batch of audio "
            f"correlate like the channels of one recording (at least "
            f"{correlation:.2f}), as `torchaudio.load` gives them "
            "(channels, samples); each row is transcribed as a recording of "
            "its own. For one recording, average its channels: "
            "`audio.mean(axis=0)`.",
            stacklevel=3,
        )


def batch_waveforms(audio, max_seconds=30.0):
    """16 kHz waveforms as one `(batch, samples)` float32 array: a list of
    waveforms of different lengths is zero-padded to the longest, which
    changes nothing Whisper hears (it pads every window to 30 s with
    zeros).

    Each waveform is checked first: float samples within about [-1, 1]
    (integer PCM, or PCM read as floats, is refused with the division that
    fixes it), finite, at least one sample; a 2-D array with 8 or fewer
    columns is taken for `(samples, channels)` and refused, since averaging
    the channels is what it needs; a batch of 2 to 8 rows that all
    correlate above 0.8 (at their best lag within 2 ms), the channels of
    one recording as `(channels, samples)`, is taken row by row with a
    warning that says so.

    Args:
        audio: a waveform `(samples,)`, a batch `(batch, samples)`, or a
            list of waveforms.
        max_seconds: the longest waveform accepted (Whisper's window).

    Returns:
        `(batch, single)`: the array, and whether `audio` was one waveform.

    Example:

    >>> batch, single = batch_waveforms([np.ones(3), np.ones(5)])
    >>> batch.shape, single, batch[0].tolist()
    ((2, 5), False, [1.0, 1.0, 1.0, 0.0, 0.0])
    >>> batch, single = batch_waveforms([0.5, -0.5, 0.25])  # numbers: one waveform
    >>> batch.tolist(), single
    ([[0.5, -0.5, 0.25]], True)
    >>> batch_waveforms(np.zeros((48000, 2), "float32"))
    Traceback (most recent call last):
    ...
    ValueError: Audio of shape (48000, 2) looks like one recording of 2 channels (samples, channels); Whisper takes one channel. Average them: `audio.mean(axis=1)`. A batch of waveforms is (batch, samples).
    """
    items = audio if isinstance(audio, (list, tuple)) else [audio]
    paths = [item for item in items if isinstance(item, (str, bytes, os.PathLike))]
    if paths:
        # A path read as an array is a 0-d string: "Received shape ()".
        raise TypeError(
            f"Audio must be samples, not file paths. Received: {paths[0]!r}. "
            "Read a WAV file first: `keras_kd.speech.load_wav(path)` (a list "
            "of files: `[load_wav(p) for p in paths]`)."
        )
    if isinstance(audio, (list, tuple)) and audio and all(np.ndim(v) == 0 for v in audio):
        # A list of numbers is one waveform's samples.
        audio = np.asarray(audio)
    if isinstance(audio, (list, tuple)):
        rows = [np.asarray(row) for row in audio]
        if not rows or any(row.ndim != 1 for row in rows):
            shapes = [row.shape for row in rows]
            raise ValueError(
                "A list of waveforms must hold at least one 1-D array of "
                f"samples. Received shapes: {shapes[:5]}"
                f"{f' ... ({len(shapes)} items)' if len(shapes) > 5 else ''}"
            )
        for i, row in enumerate(rows):
            _check_waveform(row, f"Waveform {i} of the list")
        batch = np.zeros((len(rows), max(len(row) for row in rows)), np.float32)
        for i, row in enumerate(rows):
            batch[i, : len(row)] = row
        single = False
    else:
        batch = np.asarray(audio)
        single = batch.ndim == 1
        if single:
            batch = batch[None]
        if batch.ndim != 2:
            raise ValueError(
                "Audio must be a waveform (samples,), a batch (batch, "
                f"samples) or a list of waveforms. Received shape {batch.shape}."
            )
        if not single and batch.shape[1] <= _MAX_CHANNELS and batch.shape[0] > batch.shape[1]:
            raise ValueError(
                f"Audio of shape {batch.shape} looks like one recording of "
                f"{batch.shape[1]} channels (samples, channels); Whisper takes "
                "one channel. Average them: `audio.mean(axis=1)`. A batch of "
                "waveforms is (batch, samples)."
            )
        _check_waveform(batch[0] if single else batch, "The audio" if single else "The batch of audio")
        batch = batch.astype(np.float32)
        if not single:
            _warn_of_channel_rows(batch)
    if batch.shape[1] > max_seconds * SAMPLING_RATE:
        raise ValueError(
            f"Audio of {batch.shape[1] / SAMPLING_RATE:.1f} s is longer than "
            f"Whisper's {max_seconds:g} s window. Cut it into pieces of at "
            f"most {max_seconds:g} s."
        )
    return batch, single
