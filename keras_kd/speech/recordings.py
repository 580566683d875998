"""Real English recordings for checks, offline: the speech WAV files that
the `moonshine-voice` package ships in `moonshine_voice/assets/`."""

import os

from keras_kd.speech.audio import SAMPLING_RATE, load_wav
from keras_kd.utils.packages import package_folder

RECORDINGS_PACKAGE = "moonshine_voice"
_PIP = "pip install --no-deps moonshine-voice==0.1.5"

# What is said in them, as far as the checks use it.
TRANSCRIPTS = {
    "beckett.wav": "Ever tried. Ever failed. No matter. Try again. Fail again. Fail better.",
}

# The package's speech recordings (its other WAV files are chimes).
SPEECH_RECORDINGS = ("beckett.wav", "clone-test.wav", "endgame_nagg_nell.wav", "two_cities.wav")


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


def speech_windows(names=SPEECH_RECORDINGS, max_seconds=30.0):
    """The speech recordings as 16 kHz waveforms Whisper hears whole: a
    recording longer than `max_seconds` is cut into equal pieces no longer
    than that.

    Returns:
        A list of `(label, waveform)`, the label the file name and, for a
        piece, its number (`"two_cities.wav#1"`).

    Example:

    >>> [(label, round(len(audio) / 16000, 1)) for label, audio in speech_windows()]
    [('beckett.wav', 10.0), ('clone-test.wav', 4.1), ('endgame_nagg_nell.wav', 28.3), ('two_cities.wav#1', 22.2), ('two_cities.wav#2', 22.2)]
    """
    windows = []
    limit = int(max_seconds * SAMPLING_RATE)
    for name in names:
        audio = load_wav(recording(name))
        pieces = -(-len(audio) // limit)
        if pieces == 1:
            windows.append((name, audio))
            continue
        size = -(-len(audio) // pieces)
        windows += [
            (f"{name}#{i + 1}", audio[i * size : (i + 1) * size]) for i in range(pieces)
        ]
    return windows
