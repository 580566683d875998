"""Speech recognition: Whisper as a keras-hub speech-to-text task.

`whisper_audio_to_text.py` holds the task (`WhisperAudioToText`, with
KV-cached generation), `whisper_audio_to_text_preprocessor.py` its
preprocessor (waveforms to log-mel features, transcripts to tokens),
`distil_whisper_backbone.py` a Whisper backbone with a shallower decoder,
and `whisper_student.py` makes Distil-Whisper students of it from a
teacher. `audio.py` reads WAV files and resamples them to 16 kHz,
`recordings.py` finds the real recordings that the checks use, and
`error_rate.py` scores transcripts (WER, CER), and
`speech_synthesis.py` makes training audio offline with eSpeak NG.
"""

from keras_kd import _backend  # noqa: F401  (refuses other Keras backends)
from keras_kd.speech.audio import SAMPLING_RATE, load_wav, resample
from keras_kd.speech.distil_whisper_backbone import DistilWhisperBackbone
from keras_kd.speech.error_rate import (
    character_error_rate,
    normalize_transcript,
    word_error_rate,
)
from keras_kd.speech.recordings import TRANSCRIPTS, recording
from keras_kd.speech.speech_synthesis import (
    ENGLISH_VOICES,
    Utterance,
    speak,
    synthesize,
)
from keras_kd.speech.whisper_audio_to_text import WhisperAudioToText
from keras_kd.speech.whisper_audio_to_text_preprocessor import (
    WhisperAudioToTextPreprocessor,
)
from keras_kd.speech.whisper_student import whisper_student

__all__ = [
    "ENGLISH_VOICES",
    "Utterance",
    "speak",
    "synthesize",
    "DistilWhisperBackbone",
    "character_error_rate",
    "normalize_transcript",
    "word_error_rate",
    "whisper_student",
    "SAMPLING_RATE",
    "load_wav",
    "resample",
    "recording",
    "TRANSCRIPTS",
    "WhisperAudioToText",
    "WhisperAudioToTextPreprocessor",
]
