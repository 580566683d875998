"""`keras_kd.utils.backup.BackupAndRestore`: a training process killed with
SIGKILL in the middle of an epoch, started again, ends with the weights of
a run that was never interrupted (the child script: backup_run.py)."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

import backup_run

pytestmark = pytest.mark.large

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "backup_run.py")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(SCRIPT)))


def _run(out, preset, mode):
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.run(
        [sys.executable, SCRIPT, str(out), preset, mode],
        env=env, capture_output=True, text=True, timeout=300,
    )


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory, tiny_preset):
    """Runs the cases, killing each in turn, then the references."""
    out = tmp_path_factory.mktemp("backup")
    for case in backup_run.CASES:
        killed = _run(out, tiny_preset, case)
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
        # The kill came one batch after a backup, in the second epoch.
        state = json.loads((out / f"backup_{case}" / "backup.json").read_text())
        assert (state["epoch"], state["steps"]) == (backup_run.KILL_EPOCH, 2)
    finished = _run(out, tiny_preset, "reference")
    assert finished.returncode == 0, finished.stderr[-3000:]
    return out


@pytest.mark.parametrize("case", backup_run.CASES)
def test_killed_training_resumes_to_the_uninterrupted_weights(killed_and_resumed, case):
    out = killed_and_resumed
    resumed, reference = np.load(out / f"{case}.npz"), np.load(out / f"{case}.reference.npz")
    assert sorted(resumed.files) == sorted(reference.files)
    for key in reference.files:
        np.testing.assert_allclose(resumed[key], reference[key], atol=1e-5, rtol=0)
    steps = backup_run.EPOCHS * backup_run.EXAMPLES // backup_run.BATCH
    counts = json.loads((out / f"{case}.json").read_text())
    # Each step applied once (Keras's own callback applies the 2 steps
    # before the backup again: 10), and the process that resumed trained
    # only the 2 batches after the backup.
    assert counts == {"iterations": steps, "trained_batches": 2}
    assert json.loads((out / f"{case}.reference.json").read_text())["iterations"] == steps
    # A completed fit deletes its backup.
    assert not (out / f"backup_{case}").exists()
