"""`verify_tflite`: checks an exported `.tflite` against its Keras model;
`compare_latency`: times several `.tflite` classifiers side by side."""

import dataclasses
import importlib.util
import itertools
import os
import time

import numpy as np

from keras_kd.export import serving
from keras_kd.export.text_classifier import TFLiteTextClassifier


@dataclasses.dataclass
class VerificationReport:
    """How a `.tflite` classifier compares with its Keras model.

    Differences are of class probabilities, on the same token ids (LiteRT) or
    on the raw texts (MediaPipe). Accuracies are None without labels;
    MediaPipe figures are None when `mediapipe` is not installed.

    Attributes:
        path: the `.tflite` file.
        size_bytes: its size, metadata included.
        num_examples: examples compared.
        max_abs_diff: max |p_litert - p_keras| over examples and classes.
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

    def to_dict(self):
        return dataclasses.asdict(self)


def mediapipe_available():
    return importlib.util.find_spec("mediapipe") is not None


class MediaPipeTextClassifier:
    """MediaPipe Tasks' `TextClassifier` on a `.tflite`, scores by class."""

    def __init__(self, path):
        from mediapipe.tasks.python import text
        from mediapipe.tasks.python.core import base_options

        options = text.TextClassifierOptions(
            base_options=base_options.BaseOptions(
                model_asset_path=os.fspath(path)
            ),
            max_results=-1,
        )
        self._classifier = text.TextClassifier.create_from_options(options)

    def predict(self, texts):
        rows = []
        for t in texts:
            (head,) = self._classifier.classify(t).classifications
            categories = sorted(head.categories, key=lambda c: c.index)
            rows.append([c.score for c in categories])
        return np.asarray(rows, dtype="float32")

    def close(self):
        self._classifier.close()


def _timed_runs(fn, runs):
    """Seconds of each of `runs` calls of `fn`, after one untimed call."""
    fn()  # The first call allocates and warms caches; leave it out.
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def _median_ms(fn, runs):
    return float(np.median(_timed_runs(fn, runs)) * 1000.0)


def compare_latency(files, texts, runs=200, block=50, num_threads=2):
    """Median single-example latency of `.tflite` classifiers, side by side.

    Timing one file, then another minutes later, lets the machine's drift
    (other work, frequency scaling) into the ratio: on a shared 2-core CPU
    the same file measured 4.2 and 6.3 ms in two runs. Here the files take
    turns in blocks of `block` runs, so drift hits them alike, while each
    stays warm in the caches within its block, as it would running alone
    on a phone. Each run is one `invoke` on one tokenized text (the texts
    in turn); tokenization is left out.

    Args:
        files: dict of name to `.tflite` path (files from `export_tflite`).
        texts: the texts to run, a non-empty list of str.
        runs: timed runs of each file.
        block: runs of one file before the next takes its turn.
        num_threads: LiteRT interpreter threads.

    Returns:
        A dict of name to median milliseconds.

    Example:

    ```python
    ms = compare_latency({"teacher": "teacher.tflite", "student": "student.tflite"},
                         ["a fine film", "a dull one"])
    ms["teacher"] / ms["student"]
    ```
    """
    if not files:
        raise ValueError("`files` is empty; pass {name: path} of .tflite files to time.")
    if isinstance(texts, str) or not texts:
        raise ValueError(
            "`texts` must be a non-empty list of strings. Received: "
            f"{texts!r:.60}"
        )
    for name, value in (("runs", runs), ("block", block)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
    missing = [str(path) for path in files.values() if not os.path.isfile(path)]
    if missing:
        raise FileNotFoundError(f"No .tflite file at {missing}.")
    classifiers = {
        name: TFLiteTextClassifier(path, num_threads=num_threads)
        for name, path in files.items()
    }
    inputs = {
        name: itertools.cycle(c.encode(list(texts))) for name, c in classifiers.items()
    }
    times = {name: [] for name in classifiers}
    for start in range(0, runs, block):
        for name, classifier in classifiers.items():
            # Each block starts with an untimed run: back in the caches first.
            times[name] += _timed_runs(
                lambda: classifier.run(next(inputs[name])), min(block, runs - start)
            )
    return {name: float(np.median(t) * 1000.0) for name, t in times.items()}


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
):
    """Runs a `.tflite` classifier on real texts and compares it with Keras.

    The texts are tokenized with the vocabulary and settings embedded in the
    file; the Keras model gets the same token ids. The `.tflite` runs in the
    LiteRT interpreter (`ai_edge_litert`) and, when `mediapipe` is installed,
    in MediaPipe Tasks' `TextClassifier` on the raw strings.

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

    Returns:
        A `VerificationReport`.

    Example:

    ```python
    report = verify_tflite("minilm.tflite", model, data.test)
    report.max_abs_diff, report.argmax_agreement
    ```
    """
    texts, labels = serving.text_inputs(data, "data")
    if use_mediapipe and not mediapipe_available():
        raise ImportError(
            "use_mediapipe=True needs the optional `mediapipe` package: "
            '`pip install "keras-kd[mediapipe]"`.'
        )
    if use_mediapipe is None:
        use_mediapipe = mediapipe_available()
    classifier = TFLiteTextClassifier(path, num_threads=num_threads)
    encoded = classifier.encode(texts)
    litert = np.stack([classifier.run(x) for x in encoded])
    keras_probs = keras_probabilities(keras_model, encoded, from_logits)
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
    )
    if latency_runs:
        report.litert_latency_ms = _median_ms(
            lambda: classifier.run(encoded[0]), latency_runs
        )
    if use_mediapipe:
        mediapipe = MediaPipeTextClassifier(path)
        try:
            mp_probs = mediapipe.predict(texts)
            if latency_runs:
                report.mediapipe_latency_ms = _median_ms(
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

