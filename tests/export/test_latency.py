"""Tests of keras_kd.export.compare_latency: its turn-taking and medians
(with a fake clock) and its input checks, on the tiny model's file."""

import types

import pytest

from keras_kd.export import TFLiteTextClassifier, compare_latency
from keras_kd.export import latency as latency_module

TEXTS = ["A GORGEOUS, witty, seductive movie.", "The plot is dull.", "meh"]


def test_compare_latency_alternates_blocks_and_takes_medians(
    tiny_tflite, tmp_path, monkeypatch
):
    # A fake clock that each run advances by its file's cost: the medians
    # are exact, and the order of the runs shows the blocks.
    copy = tmp_path / "copy.tflite"
    copy.write_bytes(open(tiny_tflite.path, "rb").read())
    files = {"fp32": tiny_tflite.path, "int8": str(copy)}
    cost = {files["fp32"]: 0.010, files["int8"]: 0.004}
    clock, order = [0.0], []

    def run(self, inputs):
        clock[0] += cost[self.path]
        order.append(self.path)

    monkeypatch.setattr(TFLiteTextClassifier, "run", run)
    monkeypatch.setattr(
        latency_module, "time", types.SimpleNamespace(perf_counter=lambda: clock[0])
    )
    ms = compare_latency(files, TEXTS, runs=5, block=2)
    assert ms == {"fp32": pytest.approx(10.0), "int8": pytest.approx(4.0)}
    # Per block: one untimed warm-up run, then the block's timed runs.
    a, b = files["fp32"], files["int8"]
    assert order == [a] * 3 + [b] * 3 + [a] * 3 + [b] * 3 + [a] * 2 + [b] * 2


def test_compare_latency_times_real_runs(tiny_tflite):
    ms = compare_latency({"tiny": tiny_tflite.path}, TEXTS, runs=3, block=2)
    assert list(ms) == ["tiny"] and 0 < ms["tiny"] < 10_000


@pytest.mark.parametrize(
    "files, texts, runs, block, message",
    [
        ({}, ["a"], 5, 50, "`files` is empty"),
        (None, "a film", 5, 50, "non-empty list of strings"),
        (None, [], 5, 50, "non-empty list of strings"),
        (None, ["a"], 0, 50, r"`runs` must be an int >= 1.*Received: runs=0"),
        (None, ["a"], 5, 2.5, r"`block` must be an int >= 1.*Received: block=2.5"),
        ({"x": "missing.tflite"}, ["a"], 5, 50, r"No .tflite file at \['missing.tflite'\]"),
    ],
)
def test_compare_latency_bad_input(tiny_tflite, files, texts, runs, block, message):
    files = {"fp32": tiny_tflite.path} if files is None else files
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        compare_latency(files, texts, runs=runs, block=block)
