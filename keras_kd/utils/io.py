"""The one way keras-kd writes files and folders: complete or not at all.

`atomic_write` writes a file through a temporary sibling and renames it into
place; `atomic_folder` builds a folder in a temporary sibling and swaps it in.
A process killed midway leaves the destination absent or as it was. Both
refuse to replace an existing destination unless `overwrite=True`, and give
the result normal permissions (0666 files, 0777 folders, less the umask:
0644 and 0755 under the usual umask 022) instead of `tempfile`'s private
0600/0700. A temporary file keeps its destination's extension, so writers
that check it (`keras.Model.save`, `numpy.save`) work on it unchanged.
"""

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _check_overwrite(path, overwrite):
    if not overwrite and os.path.lexists(path):
        raise FileExistsError(
            f"{os.fspath(path)!r} already exists. Pass overwrite=True to "
            "replace it, or choose another path."
        )


def atomic_write(path, write, overwrite=False):
    """Writes a file atomically.

    Args:
        path: destination file. Its folder is created if missing.
        write: a callable that takes a temporary path (in the destination's
            folder, so the final rename is atomic; with the destination's
            extension) and writes the file there, e.g. `model.save`.
        overwrite: replace an existing `path`; if False, an existing file
            raises `FileExistsError` before `write` is called.

    Returns:
        `path` as a `pathlib.Path`.

    Example:

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = atomic_write(folder / "a.txt", lambda tmp: pathlib.Path(tmp).write_text("hi"))
    >>> (folder / "a.txt").read_text()
    'hi'
    >>> atomic_write_text(folder / "a.txt", "again")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileExistsError: '.../a.txt' already exists. Pass overwrite=True to replace it, or choose another path.
    """
    path = Path(path)
    _check_overwrite(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.tmp-", suffix=path.suffix
    )
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        if not overwrite:
            _check_overwrite(path, overwrite)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def atomic_write_bytes(path, data, overwrite=False):
    """Writes `data` (bytes) to `path` with `atomic_write`."""

    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(data)

    return atomic_write(path, write, overwrite=overwrite)


def atomic_write_text(path, text, overwrite=False):
    """Writes `text` (UTF-8) to `path` with `atomic_write`."""
    return atomic_write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


def atomic_write_json(path, payload, overwrite=False):
    """Writes `payload` as indented JSON to `path` with `atomic_write`."""
    return atomic_write_text(
        path, json.dumps(payload, indent=2) + "\n", overwrite=overwrite
    )


@contextlib.contextmanager
def atomic_folder(directory, overwrite=False):
    """Builds a folder in a temporary sibling, then swaps it in for `directory`.

    Yields the staging folder (a `pathlib.Path`). On normal exit the staging
    folder replaces `directory`: an existing one is moved aside first, so a
    failed rename leaves it intact, and is deleted after the swap. On an
    exception the staging folder is deleted and `directory` is untouched.
    Staging folders left by killed processes are removed on the next call.

    Args:
        directory: the destination folder. Its parent is created if missing.
        overwrite: replace an existing `directory`; if False, an existing one
            raises `FileExistsError` before anything is written.

    Example:

    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_folder(root / "run") as staging:
    ...     _ = (staging / "result.txt").write_text("done")
    >>> sorted(p.name for p in (root / "run").iterdir())
    ['result.txt']
    """
    directory = Path(directory)
    _check_overwrite(directory, overwrite)
    directory.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{directory.name}.tmp-"
    for stale in directory.parent.glob(prefix + "*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=prefix))
    try:
        yield staging
        os.chmod(staging, 0o777 & ~_umask())
        _check_overwrite(directory, overwrite)
        if os.path.lexists(directory):
            aside = Path(tempfile.mkdtemp(dir=directory.parent, prefix=prefix))
            os.replace(directory, aside / "old")
            os.replace(staging, directory)
            shutil.rmtree(aside)
        else:
            os.replace(staging, directory)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
