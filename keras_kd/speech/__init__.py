"""Speech recognition: Whisper as a keras-hub speech-to-text task.

`whisper_audio_to_text.py` holds the task (`WhisperAudioToText`, with
KV-cached generation), `whisper_audio_to_text_preprocessor.py` its
preprocessor (waveforms to log-mel features, transcripts to tokens),
`distil_whisper_backbone.py` a Whisper backbone with a shallower decoder,
`whisper_student.py` makes Distil-Whisper students of it from a teacher,
`whisper_decoder_model.py` gives a task's decoder alone (for training on
encoder outputs computed once), and `distil_whisper.py` holds the recipe
(encode, pseudo-label, filter, distill). `audio.py` reads WAV files,
resamples them to 16 kHz and batches waveforms, `recordings.py` finds the
real recordings that the checks use, `error_rate.py` scores transcripts
(WER, CER), `temperature_fallback.py` holds Whisper's rule for decoding a
looping or unsure transcript again (`WhisperAudioToText.transcribe`), and
`speech_synthesis.py` makes training audio offline with eSpeak NG.
"""

from keras_kd import _backend  # noqa: F401  (refuses other Keras backends)
from keras_kd.speech.audio import SAMPLING_RATE, batch_waveforms, load_wav, resample
from keras_kd.speech.distil_whisper_backbone import DistilWhisperBackbone
from keras_kd.speech.distil_whisper import (
    PseudoLabels,
    distil_whisper,
    encode,
    pseudo_label,
    transcribe_encoded,
    trimmed_batches,
)
from keras_kd.speech.error_rate import (
    character_error_rate,
    normalize_transcript,
    word_error_rate,
)
from keras_kd.speech.recordings import (
    SPEECH_RECORDINGS,
    TRANSCRIPTS,
    recording,
    speech_windows,
)
from keras_kd.speech.speech_synthesis import (
    ENGLISH_VOICES,
    FLITE_VOICES,
    Utterance,
    join_sentences,
    speak,
    synthesize,
)
from keras_kd.speech.temperature_fallback import (
    Attempt,
    TemperatureFallback,
    Transcription,
    compression_ratio,
)
from keras_kd.speech.whisper_audio_to_text import WhisperAudioToText
from keras_kd.speech.whisper_audio_to_text_preprocessor import (
    WhisperAudioToTextPreprocessor,
)
from keras_kd.speech.whisper_decoder_model import whisper_decoder_model
from keras_kd.speech.whisper_student import whisper_student

__all__ = [
    "PseudoLabels",
    "SPEECH_RECORDINGS",
    "batch_waveforms",
    "distil_whisper",
    "encode",
    "pseudo_label",
    "speech_windows",
    "transcribe_encoded",
    "trimmed_batches",
    "whisper_decoder_model",
    "ENGLISH_VOICES",
    "FLITE_VOICES",
    "Utterance",
    "join_sentences",
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
    "Attempt",
    "TemperatureFallback",
    "Transcription",
    "compression_ratio",
]
