"""Speech recognition: Whisper as a keras-hub speech-to-text task.

`whisper_audio_to_text.py` holds the task (`WhisperAudioToText`, with
KV-cached generation), `whisper_audio_to_text_preprocessor.py` its
preprocessor (waveforms to log-mel features, transcripts to tokens),
`audio.py` reads WAV files and resamples them to 16 kHz, `recordings.py`
finds the real recordings that the checks use.
"""

from keras_kd import _backend  # noqa: F401  (refuses other Keras backends)
from keras_kd.speech.audio import SAMPLING_RATE, load_wav, resample
from keras_kd.speech.recordings import TRANSCRIPTS, recording
from keras_kd.speech.whisper_audio_to_text import WhisperAudioToText
from keras_kd.speech.whisper_audio_to_text_preprocessor import (
    WhisperAudioToTextPreprocessor,
)

__all__ = [
    "SAMPLING_RATE",
    "load_wav",
    "resample",
    "recording",
    "TRANSCRIPTS",
    "WhisperAudioToText",
    "WhisperAudioToTextPreprocessor",
]
