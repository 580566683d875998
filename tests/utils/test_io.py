"""keras_kd.utils.io: what a write leaves when it completes, fails or is
killed, and with which permissions."""

import os
import re
import signal
import subprocess
import sys

import pytest

from keras_kd.utils.io import (
    atomic_folder,
    atomic_write,
    atomic_write_text,
    check_resumable,
    resumable_folder,
)


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_files_and_folders_get_normal_permissions(tmp_path, umask_022):
    path = atomic_write_text(tmp_path / "report.json", "{}\n")
    assert os.stat(path).st_mode & 0o777 == 0o644
    with atomic_folder(tmp_path / "run") as staging:
        atomic_write_text(staging / "metrics.json", "{}\n")
    assert os.stat(tmp_path / "run").st_mode & 0o777 == 0o755
    assert os.stat(tmp_path / "run" / "metrics.json").st_mode & 0o777 == 0o644


def test_an_existing_file_is_replaced_only_with_overwrite(tmp_path):
    path = tmp_path / "a.txt"
    atomic_write_text(path, "old")
    with pytest.raises(FileExistsError, match="a.txt"):
        atomic_write_text(path, "new")
    assert path.read_text() == "old"
    atomic_write_text(path, "new", overwrite=True)
    assert path.read_text() == "new"


def test_the_temporary_file_keeps_the_extension(tmp_path):
    # keras.Model.save and numpy.save check or add the extension.
    seen = []
    atomic_write(tmp_path / "model.keras", lambda tmp: seen.append(tmp))
    (temporary,) = seen
    assert temporary.endswith(".keras")
    assert os.path.dirname(temporary) == str(tmp_path)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"old complete")

    def half_write(tmp):
        with open(tmp, "wb") as f:
            f.write(b"half")
        raise RuntimeError("converter crashed")

    with pytest.raises(RuntimeError, match="converter crashed"):
        atomic_write(path, half_write, overwrite=True)
    assert path.read_bytes() == b"old complete"
    assert os.listdir(tmp_path) == ["model.tflite"]


_WRITER = """
import sys, time
from keras_kd.utils.io import atomic_write

def write(tmp):
    with open(tmp, "wb") as f:
        f.write(b"x" * 4_000_000)
        f.flush()
        print("writing", flush=True)
        time.sleep(120)

atomic_write(sys.argv[1], write, overwrite=True)
"""


def _kill_when_writing(script, path):
    """Runs `script` on `path` in a process and kills it with SIGKILL once
    it prints "writing"."""
    writer = subprocess.Popen(
        [sys.executable, "-c", script, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert writer.stdout.readline().strip() == "writing"
        writer.send_signal(signal.SIGKILL)
    finally:
        writer.wait(timeout=60)
        writer.stdout.close()
    assert writer.returncode == -signal.SIGKILL


@pytest.mark.parametrize("existing", [b"old complete", None])
def test_a_writer_killed_midway_leaves_the_old_file_or_none(tmp_path, existing):
    path = tmp_path / "model.tflite"
    if existing is not None:
        path.write_bytes(existing)
    _kill_when_writing(_WRITER, path)
    if existing is None:
        assert not path.exists()
    else:
        assert path.read_bytes() == existing
    # The killed writer's half-written temporary file never took the name.
    (temporary,) = [p for p in os.listdir(tmp_path) if p != "model.tflite"]
    assert os.path.getsize(tmp_path / temporary) == 4_000_000


def test_a_live_writers_staging_folder_is_left_alone(tmp_path):
    run = tmp_path / "run"
    with atomic_folder(run, overwrite=True) as first:
        atomic_write_text(first / "a.txt", "first")
        # Another writer of the same folder, meanwhile, must not delete it.
        with atomic_folder(run, overwrite=True) as second:
            atomic_write_text(second / "b.txt", "second")
        assert (first / "a.txt").read_text() == "first"
        assert sorted(p.name for p in run.iterdir()) == ["b.txt"]
        with pytest.raises(FileExistsError, match="run"):
            atomic_folder(run).__enter__()
    assert sorted(p.name for p in run.iterdir()) == ["a.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


_FOLDER_WRITER = """
import sys, time
from keras_kd.utils.io import atomic_folder, atomic_write_text

with atomic_folder(sys.argv[1], overwrite=True) as staging:
    atomic_write_text(staging / "half.txt", "half")
    print("writing", flush=True)
    time.sleep(120)
"""


def test_a_killed_writers_staging_folder_is_removed_next_time(tmp_path):
    run = tmp_path / "run"
    _kill_when_writing(_FOLDER_WRITER, run)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert len(left) == 2 and left[1] == left[0] + ".lock" and not run.exists()
    with atomic_folder(run) as staging:
        atomic_write_text(staging / "whole.txt", "whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert [p.name for p in run.iterdir()] == ["whole.txt"]


def test_a_swap_killed_halfway_gets_the_old_folder_back(tmp_path):
    # What a kill between the swap's two renames leaves: the old folder
    # aside, the new one staged, the lock file no longer held.
    run = tmp_path / "run"
    staging = tmp_path / ".run.tmp-killed"
    (staging / "new.txt").parent.mkdir()
    (staging / "new.txt").write_text("new")
    (staging.parent / (staging.name + ".old") / "old").mkdir(parents=True)
    (tmp_path / ".run.tmp-killed.old" / "old" / "kept.txt").write_text("kept")
    (tmp_path / ".run.tmp-killed.lock").write_text("")
    with pytest.raises(FileExistsError, match="run"):
        atomic_folder(run).__enter__()
    assert [p.name for p in run.iterdir()] == ["kept.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_killed_staging_folders_contents_never_become_the_folder(tmp_path):
    # A half-written staging folder may hold a folder named "old" of its
    # own: only an aside folder's "old" is the user's previous folder.
    run = tmp_path / "run"
    (tmp_path / ".run.tmp-killed" / "old").mkdir(parents=True)
    (tmp_path / ".run.tmp-killed" / "old" / "half.txt").write_text("half")
    (tmp_path / ".run.tmp-killed.lock").write_text("")
    with atomic_folder(run) as staging:
        atomic_write_text(staging / "whole.txt", "whole")
    assert [p.name for p in run.iterdir()] == ["whole.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_resumable_swap_killed_halfway_is_completed(tmp_path):
    # A finished run (progress record removed) killed between the swap's
    # renames: the new run in the partial folder, the old one aside.
    run = tmp_path / "run"
    (tmp_path / ".run.partial").mkdir()
    (tmp_path / ".run.partial" / "new.txt").write_text("new")
    (tmp_path / ".run.partial.old" / "old").mkdir(parents=True)
    (tmp_path / ".run.partial.old" / "old" / "kept.txt").write_text("kept")
    check_resumable(run, {"epochs": 1})
    assert [p.name for p in run.iterdir()] == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_an_unfinished_resumable_run_gets_the_old_folder_back(tmp_path):
    # With its progress record the partial run had not finished: it stays,
    # resumable, and the folder aside is the user's again.
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        with resumable_folder(run, {"epochs": 1}) as progress:
            progress.complete("teacher")
            raise KeyboardInterrupt
    (tmp_path / ".run.partial.old" / "old").mkdir(parents=True)
    (tmp_path / ".run.partial.old" / "old" / "kept.txt").write_text("kept")
    with resumable_folder(run, {"epochs": 1}, resume=True, overwrite=True) as progress:
        assert progress.done("teacher")
        assert [p.name for p in run.iterdir()] == ["kept.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


@pytest.mark.parametrize("overwrite", [False, True])
def test_resuming_with_other_settings_names_the_fix_that_applies(tmp_path, overwrite):
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        with resumable_folder(run, {"epochs": 1}) as progress:
            progress.complete("teacher")
            raise KeyboardInterrupt
    # With --overwrite given, "pass --overwrite" is no fix: resume wins.
    fix = "drop resume=True (--resume) to discard it" if overwrite else "discard it with overwrite=True"
    with pytest.raises(ValueError, match=re.escape(f"epochs=2 (started with 1). Resume it with the settings it was started with, or {fix}")):
        check_resumable(run, {"epochs": 2}, resume=True, overwrite=overwrite)
    assert (tmp_path / ".run.partial" / "progress.json").is_file()
