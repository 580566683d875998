"""Training audio made offline: eSpeak NG (or flite) speaks sentences with
varied voices, speeds and pitches, then noise and a round trip through
another sampling rate vary the recording."""

import ctypes
import dataclasses
import functools
import os
import shutil
import subprocess
import tempfile
import threading

import numpy as np

from keras_kd.speech.audio import SAMPLING_RATE, load_wav, resample
from keras_kd.utils.validation import check_int, check_texts

_PIP = "pip install espeakng-loader"
# espeak_AUDIO_OUTPUT: AUDIO_OUTPUT_SYNCHRONOUS (samples come to a callback).
_SYNCHRONOUS = 2
# espeak_PARAMETER ids.
_RATE, _PITCH = 1, 3
# espeak_Synth flags: espeakCHARS_UTF8.
_UTF8 = 1
_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)

# English voices and variants (`voice+variant`) of eSpeak NG's data: accents
# and timbres that differ audibly.
ENGLISH_VOICES = (
    "en-us", "en-us+f3", "en-us+m3", "en-us+f4", "en-us+m7",
    "en", "en+f2", "en+m2", "en+klatt", "en-gb-scotland",
    "en-gb-x-rp+f5", "en-029", "en-gb-x-gbclan+m5", "en-us+klatt2",
)


# flite's built-in voices at 16 kHz: CMU's statistical US female (slt), US
# male (rms) and Scottish male (awb) voices, and a US male diphone voice
# (kal16). They are built from recordings of people, where eSpeak NG's are
# formant synthesis.
FLITE_VOICES = ("flite:slt", "flite:rms", "flite:awb", "flite:kal16")
_FLITE = "flite:"


class _Espeak:
    """The eSpeak NG library, initialized once per process (its state is
    global); calls are serialized."""

    _instance = None
    _lock = threading.Lock()

    def __init__(self):
        try:
            import espeakng_loader
        except ImportError as error:
            raise ImportError(
                "Speech synthesis needs eSpeak NG: the PyPI package "
                f"`espeakng-loader` bundles it (`{_PIP}`)."
            ) from error
        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.rate = self.lib.espeak_Initialize(
            _SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0
        )
        if self.rate <= 0:
            raise RuntimeError(f"eSpeak NG did not initialize (it returned {self.rate}).")
        self._chunks = []
        # Kept on the instance: ctypes must not free the callback.
        self._callback = _CALLBACK(self._receive)
        self.lib.espeak_SetSynthCallback(self._callback)

    def _receive(self, samples, count, events):
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(samples, shape=(count,)).copy())
        return 0

    @classmethod
    def get(cls):
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def speak(self, text, voice, words_per_minute, pitch):
        with self._lock:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ValueError(
                    f"eSpeak NG has no voice {voice!r}. Use a language code "
                    "with an optional variant, such as 'en-us' or 'en-us+f3' "
                    f"(keras_kd.speech.ENGLISH_VOICES lists {len(ENGLISH_VOICES)})."
                )
            self.lib.espeak_SetParameter(_RATE, int(words_per_minute), 0)
            self.lib.espeak_SetParameter(_PITCH, int(pitch), 0)
            self._chunks = []
            data = text.encode("utf-8") + b"\0"
            self.lib.espeak_Synth(data, len(data), 0, 0, 0, _UTF8, None, None)
            self.lib.espeak_Synchronize()
            chunks, self._chunks = self._chunks, []
        audio = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
        return audio.astype(np.float32) / 32768.0, self.rate


@functools.lru_cache(maxsize=None)
def _flite_voices(program):
    """The voices the flite program has built in (`flite -lv`)."""
    listing = subprocess.run([program, "-lv"], capture_output=True, text=True, check=True).stdout
    return tuple(listing.split(":", 1)[-1].split())


def _flite_speak(text, voice, words_per_minute):
    """`speak` with one of flite's voices (`"flite:<name>"`)."""
    program = shutil.which("flite")
    if program is None:
        raise ImportError(
            f"voice={voice!r} needs the flite program, which is not on the "
            "PATH. Install it (Debian: `apt-get install flite`) or use an "
            "eSpeak NG voice (keras_kd.speech.ENGLISH_VOICES)."
        )
    name = voice[len(_FLITE):]
    if name not in _flite_voices(program):
        raise ValueError(
            f"flite has no voice {name!r} (voice={voice!r}). Its voices: "
            f"{', '.join(_FLITE + v for v in _flite_voices(program))}; "
            f"keras_kd.speech.FLITE_VOICES lists those at 16 kHz."
        )
    with tempfile.TemporaryDirectory() as folder:
        # The text goes in a file: on the command line, a text starting
        # with "-" would read as an option.
        text_file, wav_file = os.path.join(folder, "text.txt"), os.path.join(folder, "speech.wav")
        with open(text_file, "w", encoding="utf-8") as f:
            f.write(text)
        subprocess.run(
            [program, "-voice", name, "--setf", f"duration_stretch={175 / words_per_minute:.4f}",
             "-f", text_file, "-o", wav_file],
            capture_output=True, check=True,
        )
        return load_wav(wav_file)


def speak(text, voice="en-us", words_per_minute=175, pitch=50):
    """One sentence spoken by eSpeak NG or flite, as a 16 kHz float
    waveform.

    Args:
        text: what to say.
        voice: an eSpeak NG voice, optionally with a variant (`"en-us+f3"`),
            or one of flite's as `"flite:<name>"` (`FLITE_VOICES`; flite
            is a program, Debian's package `flite`).
        words_per_minute: speaking rate (eSpeak's default is 175; flite's
            voices speak at their own rate times words_per_minute / 175).
        pitch: base pitch, 0 to 100 (default 50); eSpeak NG's voices only,
            flite's keep their own.

    Returns:
        A float32 array at 16 kHz.

    Example:

    >>> audio = speak("Fail better.")
    >>> 0.5 < len(audio) / 16000 < 2.0
    True
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"`text` must be a non-empty string. Received: text={text!r}")
    if not isinstance(voice, str):
        raise ValueError(f"`voice` must be a string, such as 'en-us' or 'flite:slt'. Received: voice={voice!r}")
    if voice.startswith(_FLITE):
        return _flite_speak(text, voice, words_per_minute)
    audio, rate = _Espeak.get().speak(text, voice, words_per_minute, pitch)
    return resample(audio, rate)


def add_noise(audio, snr_db, rng):
    """`audio` plus white Gaussian noise `snr_db` decibels below its power.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> tone = np.sin(np.arange(16000) / 10).astype("float32")
    >>> noise = add_noise(tone, 20.0, rng) - tone
    >>> round(float(10 * np.log10(np.mean(tone**2) / np.mean(noise**2))), 1)
    20.0
    """
    power = float(np.mean(np.square(audio))) if len(audio) else 0.0
    noise = rng.normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), len(audio))
    return (audio + noise).astype(np.float32)


def join_sentences(texts, max_words=60, seed=0):
    """Joins consecutive sentences into longer passages, one speaker's
    worth of a Whisper window each.

    Whisper hears 30 s windows, and real recordings fill them with several
    sentences; a decoder distilled on single sentences only falls into
    loops on longer speech. Each passage takes sentences in order until the
    next would pass a word budget drawn uniformly from 1 to `max_words`
    (a passage has at least one sentence), so single sentences and long
    passages mix. 60 words is about 28 s at eSpeak NG's slowest rate of
    `synthesize` (130 words a minute).

    Args:
        texts: the sentences, a list of strings.
        max_words: the largest word budget of a passage; 1 keeps every
            sentence alone.
        seed: seed of the budget draws.

    Returns:
        A list of strings, the sentences joined by spaces, every sentence
        used once and in order.

    Example:

    >>> join_sentences(["Ever tried.", "Ever failed.", "No matter.", "Try again."], max_words=4, seed=0)
    ['Ever tried. Ever failed.', 'No matter.', 'Try again.']
    """
    check_texts("texts", texts)
    check_int("max_words", max_words, example=60)
    counts = [len(text.split()) for text in texts]
    rng = np.random.default_rng(seed)
    passages, index = [], 0
    while index < len(texts):
        budget = int(rng.integers(1, max_words + 1))
        start, words = index, counts[index]
        index += 1
        while index < len(texts) and words + counts[index] <= budget:
            words += counts[index]
            index += 1
        passages.append(" ".join(text.strip() for text in texts[start:index]))
    return passages


@dataclasses.dataclass(frozen=True)
class Utterance:
    """A synthesized utterance: its waveform (16 kHz) and what was said, with
    how it was made."""

    audio: np.ndarray
    text: str
    voice: str
    words_per_minute: int
    pitch: int
    snr_db: float


def synthesize(texts, voices=ENGLISH_VOICES, seed=0, noise_snr_db=(10.0, 40.0), max_seconds=30.0):
    """Speaks each text once with a random voice, speed and pitch, then adds
    white noise at a random signal-to-noise ratio and, for half of them,
    passes the audio through 8 kHz (a telephone's band).

    Args:
        texts: the sentences.
        voices: the voices drawn from (hold some out to test on voices not
            heard in training): eSpeak NG's, or flite's as `"flite:<name>"`
            (`FLITE_VOICES`), which keep their own pitch whatever the
            `Utterance`'s `pitch` draw says.
        seed: the seed of the draws (voice, speed, pitch, noise level); the
            same arguments draw the same. eSpeak NG's own output may differ
            by a few samples from call to call.
        noise_snr_db: `(low, high)` bounds of the uniform SNR draw in dB, or
            None for no noise.
        max_seconds: longer utterances are dropped (Whisper hears 30 s).

    Returns:
        A list of `Utterance`s, in the order of `texts` (dropped ones
        missing).

    Example:

    >>> [u.text for u in synthesize(["Try again.", "Fail again."], seed=1)]
    ['Try again.', 'Fail again.']
    """
    voices = list(voices)
    if not voices:
        raise ValueError("`voices` is empty; pass at least one, such as ['en-us'].")
    rng = np.random.default_rng(seed)
    utterances = []
    for index, text in enumerate(texts):
        # Drawn before synthesis: eSpeak NG's output length varies by a few
        # samples between calls, and must not shift later draws.
        voice = voices[rng.integers(len(voices))]
        words_per_minute = int(rng.integers(130, 221))
        pitch = int(rng.integers(25, 76))
        snr = float("inf") if noise_snr_db is None else float(rng.uniform(*noise_snr_db))
        telephone = rng.random() < 0.5
        audio = speak(text, voice, words_per_minute, pitch)
        if len(audio) > max_seconds * SAMPLING_RATE:
            continue
        if noise_snr_db is not None:
            audio = add_noise(audio, snr, np.random.default_rng([seed, index]))
        if telephone:
            audio = resample(resample(audio, SAMPLING_RATE, 8000), 8000, SAMPLING_RATE)
        utterances.append(Utterance(audio, text, voice, words_per_minute, pitch, snr))
    return utterances
