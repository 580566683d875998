"""On-device export of Keras text classifiers (TFLite, MediaPipe, Serving).

- `export_tflite`: a `.tflite` in the on-device text-classifier convention,
  float32 or quantized, with MediaPipe metadata (vocabulary, labels,
  tokenizer settings) so that it classifies raw strings on device.
- `verify_tflite`: LiteRT (and MediaPipe) against Keras on real texts.
- `compare_latency`: single-example latency of several files, side by side.
- `TFLiteTextClassifier`: raw strings in, probabilities out, in Python.
- `export_bundle`: the `.keras` model, a SavedModel for TF Serving, `.tflite`
  files and a `model_card.json` in one folder.

Modules: `tflite` (`export_tflite`), `bundle` (`export_bundle`), `verify`
(`verify_tflite`), `latency` (`compare_latency` and its timing loop),
`text_classifier` (`TFLiteTextClassifier`), `serving` (the on-device input
convention and the checks every exporter shares), `metadata` (the TFLite
metadata, written and read back) and `mediapipe_compat` (MediaPipe's metadata
writers with a stand-in for a helper recent wheels lack, and its
`TextClassifier` for the checks).

The examples run on a tiny BERT classifier `model`, its `vocabulary` and its
`.tflite` at `tflite_path`; see `conftest.py` here.
"""

from keras_kd import _backend  # noqa: F401 (fails early on another backend)
from keras_kd.export.bundle import export_bundle
from keras_kd.export.latency import compare_latency
from keras_kd.export.text_classifier import TFLiteTextClassifier
from keras_kd.export.tflite import QUANTIZATIONS, TFLiteExport, export_tflite
from keras_kd.export.verify import VerificationReport, verify_tflite

__all__ = [
    "QUANTIZATIONS",
    "TFLiteExport",
    "TFLiteTextClassifier",
    "VerificationReport",
    "compare_latency",
    "export_bundle",
    "export_tflite",
    "verify_tflite",
]
