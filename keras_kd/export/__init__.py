"""On-device export of Keras text classifiers (TFLite, MediaPipe, Serving),
of keras-hub causal language models (LiteRT-LM bundles) and of Whisper
speech recognizers (TFLite).

- `export_tflite`: a `.tflite` in the on-device text-classifier convention,
  float32 or quantized, with MediaPipe metadata (vocabulary, labels,
  tokenizer settings) so that it classifies raw strings on device.
- `verify_tflite`: LiteRT (and MediaPipe) against Keras on real texts.
- `compare_latency`: single-example latency of several files, side by side.
- `TFLiteTextClassifier`: raw strings in, probabilities out, in Python.
- `export_bundle`: the `.keras` model, a SavedModel for TF Serving, `.tflite`
  files and a `model_card.json` in one folder.
- `export_litert_lm`: a keras-hub causal LM (Llama 3, SmolLM2, Qwen 2, Mistral)
  to a `.litertlm` bundle (prefill/decode `.tflite` with a key-value cache,
  `tokenizer.json`, metadata) that Google's LiteRT-LM runtime runs from raw
  text on phones, verified token for token against Keras' `generate`.
- `verify_litert_lm`: that check, with the runtime's tokens per second.
- `LiteRTLMGenerator`: greedy generation from a bundle in the LiteRT-LM
  runtime; `LiteRTInterpreterGenerator`: the same on the plain LiteRT
  interpreter, for machines without the runtime.
- `export_whisper_tflite`: a `keras_kd.speech.WhisperAudioToText` (teacher or
  student) to one `.tflite` with `encode` and cached `decode` signatures,
  verified token for token against Keras; `WhisperTFLiteTranscriber` runs
  it.
- `check_tflite_text_classifier`: refuses, before any work, a classifier
  that a `.tflite` file cannot carry (not BERT's inputs and WordPiece).
- `share_int8_embedding`: a dynamic-int8 `.tflite` rewritten so that a tied
  embedding table is stored once (both exporters above apply it).

Modules: `tflite` (`export_tflite`), `bundle` (`export_bundle`), `verify`
(`verify_tflite`), `latency` (`compare_latency` and its timing loop),
`text_classifier` (`TFLiteTextClassifier`), `litert_lm` (`export_litert_lm`),
`litert_lm_graph` (the cached prefill/decode graph), `litert_lm_verify`
(`verify_litert_lm`), `litert_lm_runtime` (the two generators), `serving`
(the on-device input convention and the checks every exporter shares),
`metadata` (the TFLite metadata, written and read back) and
`mediapipe_compat` (MediaPipe's metadata writers with a stand-in for a helper
recent wheels lack, and its `TextClassifier` for the checks),
`whisper_tflite` (`export_whisper_tflite`, `WhisperTFLiteTranscriber`) and
`whisper_tflite_graph` (Whisper's encode/decode graph) and
`shared_embedding` (`share_int8_embedding`).

The examples run on a tiny BERT classifier `model`, its `vocabulary` and its
`.tflite` at `tflite_path`, or a tiny Llama `causal_lm` and its bundle at
`litertlm_path`; see `conftest.py` here.
"""

from keras_kd import _backend  # noqa: F401 (fails early on another backend)
from keras_kd.export.bundle import export_bundle
from keras_kd.export.latency import compare_latency
from keras_kd.export.litert_lm import LiteRTLMExport, export_litert_lm
from keras_kd.export.litert_lm_runtime import (
    Generation,
    LiteRTInterpreterGenerator,
    LiteRTLMGenerator,
)
from keras_kd.export.litert_lm_verify import (
    LiteRTLMVerification,
    verify_litert_lm,
)
from keras_kd.export.serving import check_tflite_text_classifier
from keras_kd.export.shared_embedding import share_int8_embedding
from keras_kd.export.text_classifier import TFLiteTextClassifier
from keras_kd.export.tflite import QUANTIZATIONS, TFLiteExport, export_tflite
from keras_kd.export.verify import VerificationReport, verify_tflite
from keras_kd.export.whisper_tflite import (
    WhisperTFLiteExport,
    WhisperTFLiteTranscriber,
    export_whisper_tflite,
)

__all__ = [
    "QUANTIZATIONS",
    "Generation",
    "LiteRTInterpreterGenerator",
    "LiteRTLMExport",
    "LiteRTLMGenerator",
    "LiteRTLMVerification",
    "TFLiteExport",
    "TFLiteTextClassifier",
    "VerificationReport",
    "WhisperTFLiteExport",
    "WhisperTFLiteTranscriber",
    "compare_latency",
    "export_bundle",
    "export_litert_lm",
    "export_tflite",
    "export_whisper_tflite",
    "share_int8_embedding",
    "verify_litert_lm",
    "verify_tflite",
]
