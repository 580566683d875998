"""Where keras-kd keeps what it downloads or converts once."""

import os
from pathlib import Path


def cache_dir():
    """Returns keras-kd's cache folder: `$KERAS_KD_CACHE`, else
    `~/.cache/keras_kd`.

    Example:

    >>> import unittest.mock
    >>> with unittest.mock.patch.dict(os.environ, {"KERAS_KD_CACHE": "/data/kd"}):
    ...     str(cache_dir())
    '/data/kd'
    """
    return Path(os.environ.get("KERAS_KD_CACHE") or Path.home() / ".cache" / "keras_kd")
