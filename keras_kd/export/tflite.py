"""`export_tflite`: a Keras text classifier to an on-device `.tflite`."""

import dataclasses
import os
import shutil
import tempfile
import warnings

import tensorflow as tf

from keras_kd.export import metadata as md
from keras_kd.export import serving
from keras_kd.export.verify import verify_tflite
from keras_kd.utils.io import atomic_write_bytes
from keras_kd.utils.validation import check_choice, check_not_a_distiller, check_sequence_length

QUANTIZATIONS = ("none", "float16", "dynamic_int8", "int8")

# Used for the parity check when neither verification nor representative
# data is given: cased text, punctuation, accents, emoji and a sentence longer
# than short sequence lengths, so truncation is checked too.
DEFAULT_VERIFICATION_TEXTS = (
    "A gorgeous, witty, seductive movie.",
    "THE PLOT IS DULL AND THE ACTING IS WORSE.",
    "It's not bad... but it's not good either.",
    "Un film très réussi, café crème 🎬",
    "An ambitious, sprawling, occasionally brilliant and frequently "
    "exhausting epic that runs long, loses its way in the second act, "
    "piles subplot upon subplot, and yet somehow, against every odd, lands "
    "an ending so moving that the audience stayed seated through the "
    "credits, talking quietly about what they had just seen on the screen, "
    "and wondering whether the director would ever make anything like it.",
    "meh",
)


@dataclasses.dataclass
class TFLiteExport:
    """What `export_tflite` wrote.

    Attributes:
        path: the `.tflite` file.
        quantization: the quantization applied.
        size_bytes: file size, metadata included.
        verification: the `VerificationReport`, or None with `verify=False`.
    """

    path: str
    quantization: str
    size_bytes: int
    verification: object = None


def _check_sequence_length(sequence_length, model):
    check_sequence_length(sequence_length)
    limit = serving.max_sequence_length(model)
    if limit is not None and sequence_length > limit:
        raise ValueError(
            f"sequence_length={sequence_length} exceeds the model's position "
            f"embedding ({limit} positions). Pass sequence_length <= {limit}."
        )


def _convert(saved_model_dir, quantization, representative_inputs):
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    # Builtin ops only: Flex (Select TF ops) would need the large TF runtime
    # on device, which MediaPipe and plain LiteRT do not ship.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization == "int8":

        def representative_dataset():
            for example in representative_inputs:
                yield example

        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8
        ]
    return converter.convert()


# Below this share of identical top classes, a quantized file is written
# with a warning (dynamic int8 and float16 give 99% or more on fine-tuned
# MiniLM students; full int8, 73 to 83%: README, bench/export.py).
QUANTIZED_MIN_AGREEMENT = 0.95


def export_tflite(
    model,
    path,
    quantization="none",
    representative_data=None,
    *,
    sequence_length=128,
    dynamic_sequence=False,
    labels=None,
    vocabulary=None,
    lowercase=None,
    from_logits=True,
    metadata=True,
    verify=True,
    verification_data=None,
    verify_options=None,
    parity_tolerance=1e-4,
    calibration_size=100,
    overwrite=False,
):
    """Exports a Keras text classifier to a `.tflite` for on-device use.

    The model is exported with `model.export(..., format="tf_saved_model")`
    and converted by `tf.lite.TFLiteConverter.from_saved_model` with builtin
    ops only. The file follows the on-device text-classifier convention: three
    int32 inputs `input_word_ids`, `input_mask`, `input_type_ids` of shape
    `[1, sequence_length]` (`[1, -1]` with `dynamic_sequence`) and the class
    probabilities as output (softmax inside the graph). The tokenizer stays
    outside the graph; with `metadata=True` (needs `mediapipe`) the WordPiece
    vocabulary, labels and tokenizer settings are embedded as TFLite metadata,
    so MediaPipe Tasks' `TextClassifier` (Android, iOS, web, Python) and
    `TFLiteTextClassifier` classify raw strings with the file alone.

    The file is checked in a temporary folder next to `path` and written to
    `path` (atomically, with `keras_kd.utils.io.atomic_write`) only after the
    parity check passes, so a failed export leaves nothing at `path`, and
    with `overwrite=False` an existing file is never replaced.

    Args:
        model: a Keras classifier on token ids: a dict of `token_ids`,
            `padding_mask`, `segment_ids` (keras-hub BERT, e.g. a
            `BertTextClassifier` or a head on a `BertBackbone`) to logits.
        path: destination `.tflite` path; its folder must exist.
        quantization: `"none"` (float32), `"float16"` (float16 weights),
            `"dynamic_int8"` (int8 weights, float activations) or `"int8"`
            (full integer: int8 weights and activations, calibrated on
            `representative_data`).
        representative_data: texts for the int8 calibration (a list of str,
            `(texts, labels)` or a `keras_kd.datasets` split); the first
            `calibration_size` are used. Required for `"int8"`.
        sequence_length: tokens per example (longer texts are truncated);
            the maximum length with `dynamic_sequence`.
        dynamic_sequence: export a `[1, -1]` sequence dimension. MediaPipe
            then sends unpadded, untruncated token ids; the graph truncates
            them to `sequence_length`.
        labels: class names, one per output; default: the model's
            `class_names` (a keras-kd `FinetuneModel`'s), else `"0"`,
            `"1"`, ... The model's names in another order are refused.
        vocabulary: the WordPiece vocabulary: a `vocab.txt` path, a list of
            tokens or a keras-hub tokenizer; default: `model.preprocessor`'s.
        lowercase: whether the tokenizer lowercases; default: the setting
            of the model's tokenizer (`model.preprocessor.tokenizer`, or a
            tokenizer passed as `vocabulary`), and a value that contradicts
            it is refused; without a tokenizer, True unless the vocabulary
            holds capitalized tokens (a cased model). MediaPipe always
            lowercases ASCII. Whether it strips accents follows the model's
            tokenizer too (`strip_accents`; False without a tokenizer);
            MediaPipe never does.
        from_logits: whether the model outputs logits; softmax is added.
            A model that ends in a softmax is refused with True: pass
            False.
        metadata: embed the MediaPipe metadata (needs `mediapipe`).
        verify: run `verify_tflite` and refuse float32 parity worse than
            `parity_tolerance`. Keras classifies the texts tokenized by the
            model's tokenizer (when it is a keras-hub `BertTokenizer`), so
            a file that tokenizes otherwise fails the check.
        verification_data: texts for the check; default: the representative
            data, else a few built-in sentences.
        verify_options: dict of extra `verify_tflite` arguments, e.g.
            `{"use_mediapipe": False, "latency_runs": 0}`.
        parity_tolerance: max |p_tflite - p_keras| accepted for
            `quantization="none"`.
        calibration_size: examples used for int8 calibration.
        overwrite: replace an existing file at `path`.

    Returns:
        A `TFLiteExport` (path, size, verification report).

    Example, with `model` a small BERT classifier on token ids and
    `vocabulary` its WordPiece tokens (a list; a `vocab.txt` path works too):

    >>> import os, tempfile
    >>> folder = tempfile.TemporaryDirectory()
    >>> result = export_tflite(
    ...     model, os.path.join(folder.name, "classifier.tflite"),
    ...     labels=["negative", "positive"], vocabulary=vocabulary,
    ...     sequence_length=16,
    ... )
    >>> result.quantization, result.verification.max_abs_diff < 1e-4
    ('none', True)
    >>> folder.cleanup()
    """
    check_not_a_distiller(model, "model", "export_tflite")
    check_choice("quantization", quantization, QUANTIZATIONS)
    if quantization == "int8" and representative_data is None:
        raise ValueError(
            'quantization="int8" (full integer) calibrates activation ranges '
            "on real inputs and needs `representative_data`: a list of a few "
            "hundred texts from your training data. Received: "
            'representative_data=None. Use quantization="dynamic_int8" to '
            "quantize weights only."
        )
    path = serving.check_destination(path, overwrite)
    serving.model_input_names(model)
    serving.check_from_logits(model, from_logits)
    _check_sequence_length(sequence_length, model)
    labels = serving.resolve_labels(
        labels, serving.num_classes(model), getattr(model, "class_names", None)
    )
    tokens = serving.resolve_vocabulary(vocabulary, model)
    tokenizer = serving.model_tokenizer(vocabulary, model)
    lowercase = serving.resolve_lowercase(lowercase, tokenizer, tokens)
    strip_accents = serving.resolve_strip_accents(tokenizer)
    representative_texts = None
    if representative_data is not None:
        representative_texts, _ = serving.text_inputs(
            representative_data, "representative_data"
        )
    if verification_data is None:
        verification_data = representative_texts or list(
            DEFAULT_VERIFICATION_TEXTS
        )
    serving.text_inputs(verification_data, "verification_data", labels)
    if verify and not metadata:
        raise ValueError(
            "verify=True reads the tokenizer from the file's metadata; pass "
            "metadata=True (needs `mediapipe`) or verify=False."
        )

    if metadata and not lowercase:
        warnings.warn(
            "lowercase=False: MediaPipe's BERT preprocessor always lowercases "
            "ASCII text, so MediaPipe will not reproduce a cased model's "
            "tokens; TFLiteTextClassifier follows the file's setting.",
            stacklevel=2,
        )
    if metadata and strip_accents:
        warnings.warn(
            "strip_accents=True: MediaPipe's BERT preprocessor keeps accents, "
            "so MediaPipe will not reproduce the model's tokens of accented "
            "text ('café' read as 'cafe'); TFLiteTextClassifier follows the "
            "file's setting.",
            stacklevel=2,
        )
    preprocessor = serving.make_preprocessor(tokens, sequence_length, lowercase, strip_accents)
    representative_inputs = None
    if quantization == "int8":
        representative_inputs = serving.encode(
            preprocessor,
            representative_texts[:calibration_size],
            dynamic_sequence,
        )
    settings = {
        "format": md.SETTINGS_FORMAT,
        "tokenizer": "wordpiece",
        "lowercase": bool(lowercase),
        "strip_accents": strip_accents,
        "sequence_length": sequence_length,
        "dynamic_sequence": bool(dynamic_sequence),
        "truncation": "[CLS] tokens[: sequence_length - 2] [SEP]",
        **md.SPECIAL_TOKENS,
        "inputs": list(md.INPUT_NAMES),
        "output": "probabilities",
        "vocabulary_file": md.VOCABULARY_FILE,
        "labels_file": md.LABELS_FILE,
        "quantization": quantization,
    }

    folder = os.path.dirname(os.path.abspath(path))
    workdir = tempfile.mkdtemp(prefix=".keras_kd_export_", dir=folder)
    try:
        length = None if dynamic_sequence else sequence_length
        wrapped = serving.serving_model(
            model,
            length,
            from_logits,
            truncate_to=sequence_length if dynamic_sequence else None,
        )
        signature = [
            [
                tf.TensorSpec((1, length), tf.int32, name=name)
                for name in md.INPUT_NAMES
            ]
        ]
        saved_model_dir = os.path.join(workdir, "saved_model")
        wrapped.export(
            saved_model_dir,
            format="tf_saved_model",
            input_signature=signature,
            verbose=False,
        )
        buffer = _convert(saved_model_dir, quantization, representative_inputs)
        if metadata:
            buffer = md.write_metadata(buffer, tokens, labels, settings, workdir)
        # Verified in the scratch folder; written to `path` only once it passes.
        candidate = os.path.join(workdir, "model.tflite")
        atomic_write_bytes(candidate, buffer)
        report = None
        if verify:
            report = verify_tflite(
                candidate,
                model,
                verification_data,
                from_logits=from_logits,
                **{"tokenizer": tokenizer, **(verify_options or {})},
            )
            report.path = path
            if quantization == "none" and not (
                report.max_abs_diff <= parity_tolerance
            ):
                raise ValueError(
                    "The converted float32 model disagrees with Keras: max "
                    f"|p_tflite - p_keras| = {report.max_abs_diff:.3g} > "
                    f"parity_tolerance={parity_tolerance:g} on "
                    f"{report.num_examples} texts. Nothing was written to "
                    f"{path!r}. "
                    + (
                        "Keras read the texts tokenized by the model's "
                        f"{report.keras_tokenizer}: the file's WordPiece "
                        "tokenizer splits them otherwise (a setting such "
                        "as split_on_cjk that the file does not carry), "
                        "or an op converts incorrectly; please report it "
                        "with the model."
                        if report.keras_tokenizer
                        else "This points at an op that converts "
                        "incorrectly; please report it with the model."
                    )
                )
            if (
                quantization == "none"
                and report.mediapipe_max_abs_diff is not None
                and report.mediapipe_max_abs_diff > parity_tolerance
            ):
                warnings.warn(
                    "MediaPipe's TextClassifier disagrees with Keras on the "
                    "verification texts (max |p_mediapipe - p_keras| = "
                    f"{report.mediapipe_max_abs_diff:.3g}) while LiteRT "
                    "agrees: MediaPipe tokenizes these texts differently. "
                    "Its BERT preprocessor lowercases ASCII letters only "
                    "(not e.g. 'É') and splits CJK text unlike keras-hub.",
                    stacklevel=2,
                )
            if quantization != "none" and report.argmax_agreement < QUANTIZED_MIN_AGREEMENT:
                # Written all the same: the user asked for this quantization,
                # but should not ship it unaware.
                accuracies = (
                    "" if report.keras_accuracy is None else
                    f" (accuracy {report.litert_accuracy:.3f} against Keras's "
                    f"{report.keras_accuracy:.3f})"
                )
                warnings.warn(
                    f"The {quantization} file agrees with Keras on the top "
                    f"class for {report.argmax_agreement:.1%} of "
                    f"{report.num_examples} texts{accuracies}. Quantization "
                    "costs this model accuracy; 'dynamic_int8' or 'float16' "
                    "usually keep it.",
                    stacklevel=2,
                )
        atomic_write_bytes(path, buffer, overwrite=overwrite)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return TFLiteExport(
        path=path,
        quantization=quantization,
        size_bytes=os.path.getsize(path),
        verification=report,
    )
