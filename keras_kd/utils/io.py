"""The one way keras-kd writes files and folders: complete or not at all.

`atomic_write` writes a file through a temporary sibling and renames it into
place; `atomic_folder` builds a folder in a temporary sibling and swaps it in.
A process killed midway leaves the destination absent or as it was.
`resumable_folder` builds a run's folder in `.<name>.partial`, which
outlives a kill, so that the run can continue from its completed steps
(`RunProgress`). Both
refuse to replace an existing destination unless `overwrite=True`, and give
the result normal permissions (0666 files, 0777 folders, less the umask:
0644 and 0755 under the usual umask 022) instead of `tempfile`'s private
0600/0700. A temporary file keeps its destination's extensions, so writers
that check them (`keras.Model.save`, `save_weights`'s `.weights.h5`,
`numpy.save`) work on it unchanged. `file_lock` makes processes that
would build the same destination (a shared cache) take turns.
"""

import contextlib
import fcntl
import glob
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


def file_above(path):
    """The file among `path`'s ancestors that stops `path` from being
    created (`a_file` for `a_file/runs/x`), or None. For checks before
    the work: creating the folder after it fails with an errno message
    that names only one of the two paths.

    Example:

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> (folder / "notes").write_text("mine")
    4
    >>> file_above(folder / "notes" / "runs" / "x") == str(folder / "notes")
    True
    >>> file_above(folder / "runs" / "x") is None
    True
    """
    ancestor = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    return None if os.path.isdir(ancestor) else ancestor


def atomic_write(path, write, overwrite=False):
    """Writes a file atomically.

    Args:
        path: destination file. Its folder is created if missing.
        write: a callable that takes a temporary path (in the destination's
            folder, so the final rename is atomic; with the destination's
            extensions) and writes the file there, e.g. `model.save`.
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
        dir=path.parent, prefix=f".{path.name}.tmp-", suffix="".join(path.suffixes)
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

    Each staging folder has a lock file beside it, held while it is in use,
    so the next call removes the staging folders of killed processes and
    leaves those of live ones (another process building the same folder).
    A process killed between the two renames of the swap leaves the old
    folder aside; the next call moves it back.

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
    >>> sorted(p.name for p in root.iterdir())
    ['run']
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{directory.name}.tmp-"
    _remove_abandoned(directory, prefix)
    _check_overwrite(directory, overwrite)
    with _locked_staging(directory.parent, prefix) as staging:
        yield staging
        _swap_in(staging, directory, overwrite)


_LOCK = ".lock"
_ASIDE = ".old"


@contextlib.contextmanager
def _locked_staging(parent, prefix):
    """A new staging folder `<prefix>XXXX` in `parent`, with its lock file
    `<prefix>XXXX.lock` created and held first; both removed at the end."""
    while True:
        fd, lock = tempfile.mkstemp(dir=parent, prefix=prefix, suffix=_LOCK)
        handle = os.fdopen(fd, "a")
        fcntl.flock(handle, fcntl.LOCK_EX)
        # A cleaner that locked the new file before this process did has
        # deleted it: start again with another.
        if os.path.exists(lock) and os.stat(lock).st_ino == os.fstat(fd).st_ino:
            break
        handle.close()
    staging = Path(lock[: -len(_LOCK)])
    try:
        staging.mkdir()
        yield staging
    finally:
        for folder in (staging, Path(str(staging) + _ASIDE)):
            if folder.exists():
                shutil.rmtree(folder, ignore_errors=True)
        os.remove(lock)
        handle.close()


def _remove_abandoned(directory, prefix):
    """Removes the staging folders of `directory` whose lock no process
    holds (their writers were killed), moving back a folder left aside by
    a swap killed halfway; staging folders without a lock file predate
    the locks and go too."""
    pattern = glob.escape(prefix) + "*"
    for lock in directory.parent.glob(pattern + _LOCK):
        try:
            handle = open(lock)
        except FileNotFoundError:  # its writer has just finished
            continue
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            staging = Path(str(lock)[: -len(_LOCK)])
            for folder in (staging, Path(str(staging) + _ASIDE)):
                _discard(folder, directory)
            os.remove(lock)
    for folder in directory.parent.glob(pattern):
        name = str(folder)
        base = name[: -len(_ASIDE)] if name.endswith(_ASIDE) else name
        if folder.is_dir() and not os.path.exists(base + _LOCK):
            _discard(folder, directory)


def _discard(folder, directory):
    """Deletes an abandoned staging folder. An aside folder (`.old`) may
    hold the old `directory`, which a swap killed halfway moved there: it
    goes back first. A staging folder's own contents never become
    `directory`: they may be half written."""
    old = folder / "old"
    if str(folder).endswith(_ASIDE) and old.is_dir() and not os.path.lexists(directory):
        os.replace(old, directory)
    shutil.rmtree(folder, ignore_errors=True)


def _swap_in(staging, directory, overwrite):
    """Moves the complete folder `staging` to `directory`; an existing one
    is moved aside first (into `<staging>.old`), so a failed rename leaves
    it intact."""
    os.chmod(staging, 0o777 & ~_umask())
    _check_overwrite(directory, overwrite)
    if os.path.lexists(directory):
        aside = Path(str(staging) + _ASIDE)
        aside.mkdir()
        os.replace(directory, aside / "old")
        os.replace(staging, directory)
        shutil.rmtree(aside)
    else:
        os.replace(staging, directory)


@contextlib.contextmanager
def file_lock(path):
    """Holds an exclusive lock on the file `path` (created if missing)
    while the block runs; other processes wait for it.

    For a destination that several processes may build at once, such as a
    converted preset in the shared cache: the second process, once it holds
    the lock, finds the first one's result instead of deleting its staging
    folder and building it again. The lock ends with the process, so a
    killed holder blocks no one.

    Example:

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "cache.lock")
    >>> with file_lock(path):
    ...     os.path.isfile(path)
    True
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


PROGRESS_FILE = "progress.json"
RESUME_FOLDER = ".resume"


def partial_folder(directory):
    """The folder where a resumable run of `directory` is built:
    `.<name>.partial` beside it (`resumable_folder`).

    >>> str(partial_folder("saved_models/demo"))
    'saved_models/.demo.partial'
    """
    directory = Path(directory)
    return directory.parent / f".{directory.name}.partial"


def check_resumable(directory, settings, resume=False, overwrite=False):
    """Checks, before any work, that a `resumable_folder` of `directory` can
    start (or, with `resume`, continue) a run with `settings`.

    Args:
        directory: the run's final folder.
        settings: a JSON-able dict of the run's settings.
        resume: continue the partial run of `directory`.
        overwrite: discard a partial run (unless `resume`).

    A swap that a kill interrupted between its two renames (the finished
    run in the partial folder, the previous `directory` moved aside) is
    completed first.

    Raises:
        FileNotFoundError: `resume` is set and there is no partial run.
        ValueError: `resume` is set and the partial run was started with
            other settings (`keras_kd.utils.validation.check_same_settings`).
        FileExistsError: a partial run exists, and neither `resume` nor
            `overwrite` is set.

    Example:

    >>> import tempfile, pathlib
    >>> run = pathlib.Path(tempfile.mkdtemp()) / "run"
    >>> check_resumable(run, {"epochs": 1}, resume=True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: resume=True (--resume) continues a partial run, but '.../run' has none (no '.../.run.partial' folder). Start it without resume=True (--resume).
    """
    from keras_kd.utils.validation import check_same_settings

    _finish_killed_swap(directory)
    partial = partial_folder(directory)
    if resume:
        if not (partial / PROGRESS_FILE).is_file():
            raise FileNotFoundError(
                "resume=True (--resume) continues a partial run, but "
                f"{os.fspath(directory)!r} has none (no {os.fspath(partial)!r} "
                "folder). Start it without resume=True (--resume)."
            )
        with open(partial / PROGRESS_FILE) as f:
            saved = json.load(f)["settings"]
        check_same_settings(
            f"The partial run in {os.fspath(partial)!r}", saved, settings,
            # resume wins over overwrite: "pass --overwrite" would be no fix.
            discard=(
                "drop resume=True (--resume) to discard it (overwrite=True, "
                "--overwrite, is given)" if overwrite
                else "discard it with overwrite=True (--overwrite)"
            ),
        )
    elif os.path.lexists(partial) and not overwrite:
        raise FileExistsError(
            f"A partial run of {os.fspath(directory)!r} exists in "
            f"{os.fspath(partial)!r}: pass resume=True (--resume) to continue "
            "it, or overwrite=True (--overwrite) to discard it."
        )


def _finish_killed_swap(directory):
    """Completes a `resumable_folder` swap killed between its renames. Its
    partial folder had lost its progress record, so the run had finished;
    with a progress record (not a finished run) the previous folder goes
    back instead."""
    partial = partial_folder(directory)
    aside = Path(str(partial) + _ASIDE)
    if not aside.is_dir():
        return
    finished = partial.is_dir() and not (partial / PROGRESS_FILE).exists()
    if finished and not os.path.lexists(directory):
        os.replace(partial, directory)
    _discard(aside, directory)


class RunProgress:
    """The completed steps of a run in a `resumable_folder`.

    `path` is the partial folder, where the run writes its files; each
    step's result (JSON-able) is recorded in its `progress.json`, written
    atomically, once the step's files are in place.

    Attributes:
        path: the partial folder (a `pathlib.Path`).
    """

    def __init__(self, path, settings):
        self.path = Path(path)
        self._file = self.path / PROGRESS_FILE
        if self._file.is_file():
            with open(self._file) as f:
                self._state = json.load(f)
        else:
            self._state = {"settings": settings, "steps": {}}
            self._save()

    def _save(self):
        atomic_write_json(self._file, self._state, overwrite=True)

    def done(self, step):
        """Whether `step` was completed, in this process or before."""
        return step in self._state["steps"]

    def result(self, step):
        """The result recorded for the completed `step`."""
        return self._state["steps"][step]

    def complete(self, step, result=None):
        """Records `step` as completed with its JSON-able `result`."""
        self._state["steps"][step] = result
        self._save()

    def resume_path(self, name):
        """A path in the partial folder for what only a resumed run needs
        (a training's `keras_kd.utils.backup.BackupAndRestore` folder, a
        model that is not one of the run's files), removed with the
        progress record when the run completes."""
        return str(self.path / RESUME_FOLDER / name)


@contextlib.contextmanager
def resumable_folder(directory, settings, resume=False, overwrite=False):
    """Like `atomic_folder`, for a run that can continue after a kill.

    The run is built in `partial_folder(directory)`, which outlives a
    failure or a kill: started again with `resume=True` and the same
    `settings`, the run finds there the steps it completed
    (`RunProgress`). On normal exit the progress record and the training
    backups are removed and the folder replaces `directory`.

    Args:
        directory: the run's final folder.
        settings: a JSON-able dict of the run's settings; a resumed run
            must have the same.
        resume: continue the partial run (`check_resumable`).
        overwrite: replace an existing `directory`, and discard a partial
            run when not `resume`.

    Yields:
        A `RunProgress`.

    Example:

    >>> import tempfile, pathlib
    >>> run = pathlib.Path(tempfile.mkdtemp()) / "run"
    >>> try:
    ...     with resumable_folder(run, {"epochs": 1}) as progress:
    ...         _ = (progress.path / "teacher.txt").write_text("trained")
    ...         progress.complete("teacher")
    ...         raise KeyboardInterrupt  # killed during the next step
    ... except KeyboardInterrupt:
    ...     pass
    >>> resumable_folder(run, {"epochs": 2}, resume=True).__enter__()  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: The partial run in '.../.run.partial' was started with other settings: epochs=2 (started with 1). ...
    >>> with resumable_folder(run, {"epochs": 1}, resume=True) as progress:
    ...     progress.done("teacher")
    True
    >>> sorted(p.name for p in run.iterdir())
    ['teacher.txt']
    """
    directory = Path(directory)
    check_resumable(directory, settings, resume=resume, overwrite=overwrite)
    _check_overwrite(directory, overwrite)
    partial = partial_folder(directory)
    if not resume and os.path.lexists(partial):
        shutil.rmtree(partial)
    partial.mkdir(parents=True, exist_ok=True)
    progress = RunProgress(partial, settings)
    yield progress
    # What only a resumed run needs goes; the run's own files stay.
    os.remove(partial / PROGRESS_FILE)
    if os.path.exists(partial / RESUME_FOLDER):
        shutil.rmtree(partial / RESUME_FOLDER)
    _swap_in(partial, directory, overwrite)
