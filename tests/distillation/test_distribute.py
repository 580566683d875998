"""The Distiller and a fine-tuned `FinetuneModel` under tf.distribute give
the weights and logged losses of one device on the same global batches: `MirroredStrategy` on 2 logical CPU
devices, and `MultiWorkerMirroredStrategy` with 2 worker processes on
127.0.0.1 against one process. Each run is a new process
(tests/distillation/distributed_run.py): TensorFlow fixes its devices and
collectives at start-up."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_kd.utils.testing import free_ports

SCRIPT = os.path.join(os.path.dirname(__file__), "distributed_run.py")
TIMEOUT_S = 120


def start(out, mode, tf_config=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return subprocess.Popen(
        [sys.executable, SCRIPT, str(out), mode],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(processes):
    """Waits for every process (all within `TIMEOUT_S` together); fails
    with the output of any that failed or ran out of time."""
    try:
        for process in processes:
            process.wait(timeout=TIMEOUT_S)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    for process in processes:
        output = process.stdout.read()
        assert process.returncode == 0, output[-3000:]


LOGS = {
    "live": {"loss", "student_loss", "distillation_loss", "accuracy"},
    "cache": {"loss", "student_loss", "distillation_loss", "accuracy"},
    "finetune": {"loss", "accuracy"},
}


def assert_same_training(expected, actual):
    for source, names in LOGS.items():
        assert len(actual[source]["weights"]) == len(expected[source]["weights"])
        for a, b in zip(expected[source]["weights"], actual[source]["weights"]):
            np.testing.assert_allclose(np.array(b), np.array(a), rtol=1e-5, atol=1e-6)
        assert set(actual[source]["history"]) == names
        for name, values in expected[source]["history"].items():
            np.testing.assert_allclose(
                actual[source]["history"][name], values, rtol=1e-5, err_msg=name
            )
        # Each step's logs, as callbacks get them: one number per name.
        assert len(actual[source]["steps"]) == len(expected[source]["steps"]) == 3
        for want, got in zip(expected[source]["steps"], actual[source]["steps"]):
            assert set(got) == set(want)
            for name, value in want.items():
                assert np.ndim(got[name]) == 0, (name, got[name])
                np.testing.assert_allclose(got[name], value, rtol=1e-5, err_msg=name)
        evaluation = actual[source]["evaluation"]
        assert set(evaluation) == set(expected[source]["evaluation"])
        for name, value in expected[source]["evaluation"].items():
            np.testing.assert_allclose(evaluation[name], value, rtol=1e-5, err_msg=name)


@pytest.mark.large
def test_mirrored_strategy_on_two_devices_equals_one_device(tmp_path):
    out = tmp_path / "mirrored.json"
    finish([start(out, "mirrored")])
    results = json.loads(out.read_text())
    assert results["replicas"] == 2
    single = results["single"]
    assert_same_training(single, results["mirrored"])
    live, cache, finetune = single["live"], single["cache"], single["finetune"]
    for initial, trained in zip(finetune["initial"], finetune["weights"]):
        if np.abs(np.array(trained) - np.array(initial)).max() > 1e-3:
            break
    else:
        raise AssertionError("fine-tuning left every weight as it was")
    for initial, from_live, from_cache in zip(
        live["initial"], live["weights"], cache["weights"]
    ):
        # Training moved the weights: the runs compare trained ones.
        assert np.abs(np.array(from_live) - np.array(initial)).max() > 1e-3
        # The cache holds the live teacher's logits.
        np.testing.assert_allclose(from_cache, from_live, rtol=1e-5, atol=1e-6)


@pytest.mark.large
def test_multi_worker_mirrored_strategy_equals_one_process(tmp_path):
    """Two workers (one replica each) train on halves of each global
    batch: Keras 3.15's `fit` under `MultiWorkerMirroredStrategy` needs the
    two work-arounds of `keras_kd.utils.multi_worker` (the symbolic build
    from one replica's batch, one-element logs), which the Distiller and
    `FinetuneModel.token_id_model` have; see keras-team/keras#20585."""
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = [start(tmp_path / "single.json", "single")]
    for index in range(2):
        tf_config = {
            "cluster": {"worker": workers},
            "task": {"type": "worker", "index": index},
        }
        processes.append(start(tmp_path / f"worker{index}.json", "worker", tf_config))
    finish(processes)
    single = json.loads((tmp_path / "single.json").read_text())["single"]
    for index in range(2):
        worker = json.loads((tmp_path / f"worker{index}.json").read_text())["worker"]
        assert_same_training(single, worker)
