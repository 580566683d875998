"""`verify_tflite`: checks an exported `.tflite` against its Keras model, in
LiteRT and (when installed) MediaPipe, and times it."""

import dataclasses
import os

import numpy as np

from keras_kd.export import serving
from keras_kd.export.latency import median_ms
from keras_kd.export.mediapipe_compat import (
    MediaPipeTextClassifier,
    mediapipe_available,
)
from keras_kd.export.text_classifier import TFLiteTextClassifier


@dataclasses.dataclass
class VerificationReport:
    """How a `.tflite` classifier compares with its Keras model.

    Differences are of class probabilities on the same raw texts: LiteRT
    and MediaPipe tokenize them as the file says, Keras with the model's
    own tokenizer (`keras_tokenizer`), so a file that tokenizes otherwise
    disagrees. Without the model's tokenizer Keras gets the file's token
    ids and only the graphs are compared. Accuracies are None without
    labels; MediaPipe figures are None when `mediapipe` is not installed.

    Attributes:
        path: the `.tflite` file.
        size_bytes: its size, metadata included.
        num_examples: examples compared.
        max_abs_diff: max |p_litert - p_keras| over examples and classes.
        keras_tokenizer: the class of the tokenizer that tokenized Keras's
            texts (the model's), or None when Keras got the file's ids.
        argmax_agreement: fraction of examples with the same top class.
        keras_accuracy, litert_accuracy: accuracy against the labels.
        mediapipe_max_abs_diff, mediapipe_argmax_agreement,
        mediapipe_accuracy: the same for MediaPipe's `TextClassifier`.
        litert_latency_ms: median single-example `invoke` time (tokenized
            input) with `num_threads` threads, over `latency_runs` runs.
        mediapipe_latency_ms: median single-example `classify` time (raw
            text, tokenization included) with MediaPipe's default threads.
    """

    path: str
    size_bytes: int
    num_examples: int
    max_abs_diff: float
    argmax_agreement: float
    keras_accuracy: float = None
    litert_accuracy: float = None
    mediapipe_max_abs_diff: float = None
    mediapipe_argmax_agreement: float = None
    mediapipe_accuracy: float = None
    litert_latency_ms: float = None
    mediapipe_latency_ms: float = None
    num_threads: int = None
    latency_runs: int = None
    keras_tokenizer: str = None

    def to_dict(self):
        return dataclasses.asdict(self)


def _accuracy(probabilities, labels):
    if labels is None:
        return None
    return float(np.mean(probabilities.argmax(axis=1) == labels))


def keras_probabilities(keras_model, encoded, from_logits, batch_size=32):
    """Probabilities of `keras_model` on a list of encoded single examples.

    Examples of equal length are batched together; rows keep `encoded`'s
    order.
    """
    model = serving.serving_model(keras_model, None, from_logits)
    first = serving.INPUT_NAMES[0]
    lengths = np.array([x[first].shape[1] for x in encoded])
    probabilities = np.zeros((len(encoded), model.outputs[0].shape[-1]))
    for length in np.unique(lengths):
        (rows,) = np.nonzero(lengths == length)
        batch = [
            np.concatenate([encoded[i][name] for i in rows])
            for name in serving.INPUT_NAMES
        ]
        probabilities[rows] = model.predict(
            batch, batch_size=batch_size, verbose=0
        )
    return probabilities.astype("float32")


def verify_tflite(
    path,
    keras_model,
    data,
    *,
    from_logits=True,
    num_threads=2,
    latency_runs=50,
    use_mediapipe=None,
    tokenizer=None,
):
    """Runs a `.tflite` classifier on real texts and compares it with Keras.

    For LiteRT the texts are tokenized with the vocabulary and settings
    embedded in the file; for Keras, with the model's own tokenizer, so a
    file that tokenizes otherwise (another `lowercase`, say) disagrees.
    The `.tflite` runs in the LiteRT interpreter (`ai_edge_litert`) and,
    when `mediapipe` is installed, in MediaPipe Tasks' `TextClassifier` on
    the raw strings.

    Args:
        path: a `.tflite` written by `export_tflite`.
        keras_model: the Keras classifier it was exported from.
        data: texts to classify: a list of str, a pair `(texts, labels)` or a
            `keras_kd.datasets` split (accuracies need labels).
        from_logits: whether `keras_model` outputs logits.
        num_threads: LiteRT interpreter threads.
        latency_runs: runs of the single-example latency (median reported);
            0 skips timing.
        use_mediapipe: None to use MediaPipe when installed, or a bool.
        tokenizer: the keras-hub `BertTokenizer` the model reads text with;
            default: `keras_model.preprocessor.tokenizer`. Without one (a
            model on token ids alone), Keras gets the file's token ids.

    Returns:
        A `VerificationReport`.

    Example, with `tflite_path` the `export_tflite` file of `model`:

    >>> report = verify_tflite(
    ...     tflite_path, model, (["a fine film", "a dull one"], [1, 0]),
    ...     latency_runs=5,
    ... )
    >>> report.num_examples, report.argmax_agreement, report.max_abs_diff < 1e-4
    (2, 1.0, True)
    >>> report.litert_latency_ms > 0
    True
    """
    if use_mediapipe and not mediapipe_available():
        raise ImportError(
            "use_mediapipe=True needs the optional `mediapipe` package: "
            '`pip install "keras-kd[mediapipe]"`.'
        )
    if use_mediapipe is None:
        use_mediapipe = mediapipe_available()
    classifier = TFLiteTextClassifier(path, num_threads=num_threads)
    texts, labels = serving.text_inputs(data, "data", classifier.labels)
    encoded = classifier.encode(texts)
    litert = np.stack([classifier.run(x) for x in encoded])
    if tokenizer is None:
        tokenizer = serving.model_tokenizer(None, keras_model)
    preprocessor = serving.model_preprocessor(tokenizer, classifier.sequence_length)
    keras_inputs = encoded
    if preprocessor is not None:
        keras_inputs = serving.encode(preprocessor, texts, classifier.dynamic_sequence)
    keras_probs = keras_probabilities(keras_model, keras_inputs, from_logits)
    report = VerificationReport(
        path=str(path),
        size_bytes=os.path.getsize(path),
        num_examples=len(texts),
        max_abs_diff=float(np.abs(litert - keras_probs).max()),
        argmax_agreement=float(
            np.mean(litert.argmax(axis=1) == keras_probs.argmax(axis=1))
        ),
        keras_accuracy=_accuracy(keras_probs, labels),
        litert_accuracy=_accuracy(litert, labels),
        num_threads=num_threads,
        latency_runs=latency_runs,
        keras_tokenizer=None if preprocessor is None else type(tokenizer).__name__,
    )
    if latency_runs:
        report.litert_latency_ms = median_ms(
            lambda: classifier.run(encoded[0]), latency_runs
        )
    if use_mediapipe:
        mediapipe = MediaPipeTextClassifier(path)
        try:
            mp_probs = mediapipe.predict(texts)
            if latency_runs:
                report.mediapipe_latency_ms = median_ms(
                    lambda: mediapipe.predict(texts[:1]), latency_runs
                )
        finally:
            mediapipe.close()
        report.mediapipe_max_abs_diff = float(
            np.abs(mp_probs - keras_probs).max()
        )
        report.mediapipe_argmax_agreement = float(
            np.mean(mp_probs.argmax(axis=1) == keras_probs.argmax(axis=1))
        )
        report.mediapipe_accuracy = _accuracy(mp_probs, labels)
    return report

