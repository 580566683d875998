"""What every benchmark records about the machine and the code it ran on."""

import os
import platform
import subprocess

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _git(*args):
    try:
        return subprocess.run(
            ["git", *args], cwd=_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def machine_info():
    """Returns the commit (and the tracked files with uncommitted changes,
    an empty list for a clean tree), CPU count, processor, platform and library versions."""
    import keras
    import keras_hub
    import tensorflow as tf

    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": _git("rev-parse", "HEAD"),
        "uncommitted_changes": None
        if status is None
        else [line.split(maxsplit=1)[1] for line in status.splitlines()],
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "platform": platform.platform(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras_hub": keras_hub.__version__,
    }
