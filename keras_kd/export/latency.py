"""Latency of `.tflite` classifiers: `compare_latency` times several files
side by side; `timed_runs` and `median_ms` are the warm-up-and-time loop it
and `verify_tflite` share."""

import itertools
import os
import time

import numpy as np

from keras_kd.export.text_classifier import TFLiteTextClassifier
from keras_kd.utils.validation import check_int


def timed_runs(fn, runs):
    """Seconds of each of `runs` calls of `fn`, after one untimed call.

    Example:

    >>> calls = []
    >>> times = timed_runs(lambda: calls.append(1), runs=3)
    >>> len(times), len(calls)
    (3, 4)
    """
    fn()  # The first call allocates and warms caches; leave it out.
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def median_ms(fn, runs):
    """Median milliseconds of `runs` calls of `fn`, after one untimed call."""
    return float(np.median(timed_runs(fn, runs)) * 1000.0)


def compare_latency(files, texts, runs=200, block=50, num_threads=2):
    """Median single-example latency of `.tflite` classifiers, side by side.

    Timing one file, then another minutes later, lets the machine's drift
    (other work, frequency scaling) into the ratio: on a shared 2-core CPU
    the same file measured 4.2 and 6.3 ms in two runs. Here the files take
    turns in blocks of `block` runs, so drift hits them alike, while each
    stays warm in the caches within its block, as it would running alone
    on a phone. Each block starts with one untimed run. Each run is one
    `invoke` on one tokenized text (the texts in turn); tokenization is left
    out.

    Args:
        files: dict of name to `.tflite` path (files from `export_tflite`).
        texts: the texts to run, a non-empty list of str.
        runs: timed runs of each file.
        block: runs of one file before the next takes its turn.
        num_threads: LiteRT interpreter threads.

    Returns:
        A dict of name to median milliseconds.

    Example, with `tflite_path` a file from `export_tflite` (timed against
    itself here; compare a teacher's and a student's files in practice):

    >>> ms = compare_latency({"a": tflite_path, "b": tflite_path},
    ...                      ["a fine film", "a dull one"], runs=4, block=2)
    >>> sorted(ms), all(value > 0 for value in ms.values())
    (['a', 'b'], True)
    """
    if not files:
        raise ValueError("`files` is empty; pass {name: path} of .tflite files to time.")
    if isinstance(texts, str) or not texts:
        raise ValueError(
            "`texts` must be a non-empty list of strings. Received: "
            f"{texts!r:.60}"
        )
    check_int("runs", runs, example=200)
    check_int("block", block, example=50)
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
            times[name] += timed_runs(
                lambda: classifier.run(next(inputs[name])), min(block, runs - start)
            )
    return {name: float(np.median(t) * 1000.0) for name, t in times.items()}
