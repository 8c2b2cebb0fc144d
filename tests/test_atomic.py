"""The one atomic writer: old file or new file, never a 0-byte or half one; temp files cleaned."""

from __future__ import annotations

import errno
import os
import pickle
import re
import time
from pathlib import Path

import numpy as np
import pytest

from qzhou_eval import atomic
from qzhou_eval.errors import UserError, WriteError


class DiskFillsUp:
    """Stands in for a full disk: the file takes half of what is written, then ENOSPC."""

    def __init__(self, f) -> None:
        self._f = f

    def write(self, data) -> int:
        data = bytes(data)
        self._f.write(data[: len(data) // 2])
        self._f.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._f.close()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_write_replaces_whole_file_with_group_readable_mode(tmp_path):
    target = tmp_path / "sub" / "a.json"
    atomic.write_text(target, "old")
    atomic.write_text(target, "new")
    assert target.read_text() == "new"
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0o600
    assert _leftovers(target.parent) == []


@pytest.mark.parametrize("writer", ["text", "npy"])
def test_full_disk_mid_write_keeps_the_old_file_and_removes_the_temp(tmp_path, monkeypatch, writer):
    target = tmp_path / ("a.json" if writer == "text" else "a.npy")
    atomic.write_bytes(target, b"old content")
    real = atomic._open_temp
    monkeypatch.setattr(atomic, "_open_temp", lambda tmp: DiskFillsUp(real(tmp)))
    with pytest.raises(WriteError) as info:
        if writer == "text":
            atomic.write_text(target, "new content " * 1000)
        else:
            atomic.save_npy(target, np.ones((100, 8), dtype=np.float32))
    e = info.value
    assert e.errno == errno.ENOSPC and e.path == target and isinstance(e, OSError | UserError)
    # the file named is whole: the message says so (one would take it for half-written)
    assert str(e) == (
        f"cannot write {target}: No space left on device "
        "(the file there is whole, as before this write)"
    )
    assert e.exit_code == 1
    assert target.read_bytes() == b"old content"
    assert _leftovers(tmp_path) == []
    fresh = tmp_path / "b.json"  # no file before: none after, and nothing said of one
    with pytest.raises(WriteError) as info:
        atomic.write_text(fresh, "new content " * 1000)
    assert str(info.value) == f"cannot write {fresh}: No space left on device"
    assert not fresh.exists()


def test_a_set_of_files_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    a, b = tmp_path / "a.md", tmp_path / "sub" / "b.csv"
    atomic.write_all({a: b"a1", b: b"b1"})
    assert (a.read_bytes(), b.read_bytes()) == (b"a1", b"b1")
    real, opened = atomic._open_temp, []

    def second_fills_the_disk(tmp):
        opened.append(tmp)
        return DiskFillsUp(real(tmp)) if len(opened) == 2 else real(tmp)

    monkeypatch.setattr(atomic, "_open_temp", second_fills_the_disk)
    with pytest.raises(WriteError, match=re.escape(f"cannot write {b}: No space left on device")):
        atomic.write_all({a: b"a2", b: b"b2"})
    assert (a.read_bytes(), b.read_bytes()) == (b"a1", b"b1")  # the first not replaced either
    assert _leftovers(tmp_path) == _leftovers(b.parent) == []
    monkeypatch.undo()
    (tmp_path / "c.json").mkdir()
    with pytest.raises(WriteError, match=r"c\.json: Is a directory"):
        atomic.write_all({a: b"a3", tmp_path / "c.json": b"c"})
    assert a.read_bytes() == b"a1" and _leftovers(tmp_path) == []


def test_interrupt_while_writing_removes_the_temp_and_is_not_wrapped(tmp_path):
    target = tmp_path / "a.json"
    with pytest.raises(KeyboardInterrupt), atomic.replacing(target) as f:
        f.write(b"half")
        raise KeyboardInterrupt
    assert not target.exists() and _leftovers(tmp_path) == []


def test_write_error_survives_pickling():
    e = WriteError("/x/y.json", OSError(errno.EROFS, os.strerror(errno.EROFS)), kept=True)
    back = pickle.loads(pickle.dumps(e))
    assert (str(back), back.errno, back.path) == (str(e), errno.EROFS, Path("/x/y.json"))
    # (from a scoring process)
    assert str(back).endswith("(the file there is whole, as before this write)")


def test_only_old_temp_files_of_ours_are_removed(tmp_path):
    (tmp_path / "deep").mkdir()
    old = atomic.temp_path(tmp_path / "deep" / "T.json")
    fresh = atomic.temp_path(tmp_path / "deep" / "U.json")  # a live writer's, in another run
    foreign = tmp_path / ".editor-swap.tmp"  # not one of ours
    for p in (old, fresh, foreign):
        p.write_text("x")
    past = time.time() - atomic.STALE_AFTER_S - 60
    for p in (old, foreign):
        os.utime(p, (past, past))
    assert atomic.remove_stale_temp_files(tmp_path, recursive=True) == 1
    assert not old.exists() and fresh.exists() and foreign.exists()
    assert atomic.remove_stale_temp_files(tmp_path / "missing") == 0


def test_move_aside_keeps_the_damaged_file_under_a_name_no_loader_reads(tmp_path):
    a = tmp_path / "Task.json"
    a.write_text("{trunc")
    first = atomic.move_aside(a)
    a.write_text("{again")
    second = atomic.move_aside(a)
    assert first != second and not a.exists()
    for moved in (first, second):
        assert re.fullmatch(r"Task\.json\.corrupt-\d{8}T\d{6}Z(-\d+)?", moved.name), moved.name
    assert first.read_text() == "{trunc" and second.read_text() == "{again"
    with pytest.raises(FileNotFoundError):
        atomic.move_aside(a)


def test_a_temp_file_of_a_dead_process_on_this_host_is_stale_at_once(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    mine = atomic.temp_path(tmp_path / "A.json")  # this live process's
    dead = mine.with_name(mine.name.replace(f"-{os.getpid()}.tmp", f"-{proc.stdout.strip()}.tmp"))
    for p in (mine, dead):
        p.write_text("partial")
    assert atomic.is_temp_name(dead.name)
    assert atomic.remove_stale_temp_files(tmp_path) == 1
    assert mine.exists() and not dead.exists()


@pytest.mark.parametrize("writer", ["replace", "create_exclusive"])
def test_a_write_goes_through_when_another_run_removes_its_empty_folder(
    tmp_path, monkeypatch, writer
):
    # Another run on the same results folder removes an empty result folder (it scored nothing
    # there) between this writer's mkdir and its open: the writer makes the folder again.
    target = tmp_path / "model" / "rev" / "qzhou_eval_records" / "Task.yaml"
    real = atomic._open_temp
    removed = []

    def open_after_removal(tmp: Path):
        if not removed:
            atomic.remove_empty_folders(tmp.parent, tmp_path)
            removed.append(tmp.parent)
        return real(tmp)

    monkeypatch.setattr(atomic, "_open_temp", open_after_removal)
    if writer == "replace":
        atomic.write_text(target, "content")
    else:
        assert atomic.create_exclusive(target, "content")
    assert removed == [target.parent]  # (the whole empty chain was removed, then made again)
    assert target.read_text() == "content"


def test_only_empty_folders_below_the_root_are_removed(tmp_path):
    kept = tmp_path / "results" / "org__a" / "rev" / "A.json"
    kept.parent.mkdir(parents=True)
    kept.write_text("{}")
    empty = tmp_path / "results" / "org__a" / "rev" / "experiments" / "x" / "qzhou_eval_records"
    empty.mkdir(parents=True)
    atomic.remove_empty_folders(empty, tmp_path / "results")
    assert not (tmp_path / "results" / "org__a" / "rev" / "experiments").exists()
    assert kept.exists()

    alone = tmp_path / "results" / "org__b" / "rev" / "qzhou_eval_records"
    alone.mkdir(parents=True)
    atomic.remove_empty_folders(alone, tmp_path / "results")
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["org__a"]  # root stays
    atomic.remove_empty_folders(tmp_path / "results" / "gone" / "records", tmp_path / "results")
    atomic.remove_empty_folders(tmp_path / "elsewhere", tmp_path / "results")  # not below: kept


def test_a_full_disk_under_an_array_says_so(tmp_path):
    # numpy writes an array to a real file with fwrite, whose failure has no errno ("30720
    # requested and 30688 written"); the store's shards say what a full disk is, as every
    # other write does. A file size limit stands in for the full disk (EFBIG).
    import subprocess
    import sys

    script = f"""
import errno, resource, signal
import numpy as np
from qzhou_eval import atomic
from qzhou_eval.errors import WriteError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # (Python's own default: the write fails)
resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
try:
    atomic.save_npy({str(tmp_path / "a.npy")!r}, np.zeros(100_000, dtype=np.float32))
except WriteError as e:
    print(e.errno == errno.EFBIG, e)
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("True cannot write "), out
    assert _leftovers(tmp_path) == [] and not (tmp_path / "a.npy").exists()
