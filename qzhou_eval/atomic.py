"""Crash-safe file writes, for every file the package writes, and what to do with damaged ones.

A file is written to a temporary sibling ``.<name>.<32 hex>.tmp`` (no loader picks up such a name:
result loaders read ``*.json``, the embedding store ``*.keys.npy``), flushed and fsynced, then
moved over the target with ``os.replace``. Readers see the old file or the new one, never a
0-byte or half-written one. On any failure (a full disk included) the temporary file is removed
and a :class:`~qzhou_eval.errors.WriteError` naming the target is raised.

Temporary files left by a killed process are removed by :func:`remove_stale_temp_files`, but only
once they are older than :data:`STALE_AFTER_S`: a younger one may belong to a live writer in
another process (or on another node of a shared filesystem).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, TypeVar

import numpy as np

from qzhou_eval.errors import WriteError

STALE_AFTER_S = 3600.0
"""A temporary (or orphan) file this many seconds old belongs to no live writer (1 hour: a writer
keeps touching its file while it writes; the margin covers clock skew between cluster nodes)."""

T = TypeVar("T")

_TEMP = re.compile(r"^\..+\.[0-9a-f]{32}(?:-(?P<host>[A-Za-z0-9-]+)-(?P<pid>\d+))?\.tmp$")
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:64] or "host"


def temp_path(path: Path) -> Path:
    """``.<name>.<32 hex>-<host>-<pid>.tmp``: the writer's host and pid let a later run on the same
    host remove it as soon as that process is gone (kill -9), not only once it is old."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}-{_HOST}-{os.getpid()}.tmp")


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is one of this module's temporary file names."""
    return bool(_TEMP.match(name))


def _writer_gone(name: str) -> bool:
    """A temporary file whose writer ran on this host and no longer runs."""
    match = _TEMP.match(name)
    if match is None or match["pid"] is None:
        return False
    return process_gone(match["host"], int(match["pid"]))


def this_process() -> dict[str, str | int]:
    """``{"host": ..., "pid": ...}`` of this process, as :func:`process_gone` reads it back."""
    return {"host": _HOST, "pid": os.getpid()}


def process_gone(host: object, pid: object) -> bool:
    """Whether process ``pid`` of ``host`` is known to be gone: only for this host's processes
    (another node's cannot be asked; False)."""
    if host != _HOST or not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


@contextlib.contextmanager
def kept_fresh(path: Path, every_s: float = STALE_AFTER_S / 6) -> Iterator[None]:
    """Touch ``path`` every ``every_s`` seconds while the block runs: a file a live process
    owns never looks older than :data:`STALE_AFTER_S` to another node (best effort)."""
    stop = threading.Event()

    def touch() -> None:
        while not stop.wait(every_s):
            with contextlib.suppress(OSError):
                os.utime(path)

    thread = threading.Thread(target=touch, name=f"keep-fresh {Path(path).name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _open_temp(tmp: Path) -> BinaryIO:
    # Mode 0o666 minus the umask (what open() gives), not mkstemp's 0o600: on a shared cluster the
    # group may read the results.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    return os.fdopen(fd, "wb")


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (best effort: not every filesystem lets a folder be fsynced)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def in_folder(path: Path, create: Callable[[], T]) -> T:
    """``create()``, which creates a file in ``path``'s folder, once that folder is made; again
    if the folder vanished in between: a run that ends with nothing in its result folders
    removes them (:func:`remove_empty_folders`), maybe as another run on the same results
    folder starts writing there."""
    for attempt in range(3):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return create()
        except FileNotFoundError:
            if attempt == 2 or path.parent.is_dir():
                raise
    raise AssertionError("unreachable")


def remove_empty_folders(folder: Path, root: Path) -> None:
    """Remove ``folder`` and then each of its parents below ``root`` while they are empty
    (best effort: a folder another process has just written into stays)."""
    folder, root = Path(folder), Path(root)
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except FileNotFoundError:
            pass
        except OSError:
            return
        folder = folder.parent


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[BinaryIO]:
    """Binary file to write ``path`` through; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        with in_folder(path, lambda: _open_temp(tmp)) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(e, OSError) and not isinstance(e, WriteError):
            raise WriteError(path, e) from e
        raise
    _fsync_dir(path.parent)


def write_bytes(path: Path, data: bytes) -> None:
    with replacing(path) as f:
        f.write(data)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_all(files: Mapping[Path, bytes]) -> None:
    """Write a set of files that belong together (a report's): all of them or, on any failure,
    none. Each is written to its temporary file first; only once every one is whole are they
    moved into place, and a target a rename could not replace (a folder of that name) is refused
    before anything is written."""
    for path in map(Path, files):
        if path.is_dir():
            raise WriteError(path, IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR)))
    temps: dict[Path, Path] = {}
    current = Path()
    try:
        for current, data in ((Path(p), d) for p, d in files.items()):
            tmp = temps[current] = temp_path(current)
            with in_folder(current, lambda tmp=tmp: _open_temp(tmp)) as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        for current, tmp in temps.items():
            os.replace(tmp, current)
    except BaseException as e:
        for tmp in temps.values():
            with contextlib.suppress(OSError):
                tmp.unlink()
        if isinstance(e, OSError) and not isinstance(e, WriteError):
            raise WriteError(current, e) from e
        raise
    for folder in {p.parent for p in temps}:
        _fsync_dir(folder)


def save_npy(path: Path, array: np.ndarray) -> None:
    with replacing(path) as f:
        # through write(), not numpy's fwrite of a real file, whose failure (a full disk) says
        # "30720 requested and 30688 written" and carries no errno
        np.save(_Writes(f), array, allow_pickle=False)


class _Writes:
    """A file seen by numpy as a plain writable object (it then writes it in chunks)."""

    def __init__(self, f: BinaryIO) -> None:
        self.write = f.write


def create_exclusive(path: Path, text: str) -> bool:
    """Create ``path`` with ``text`` unless it exists; True if this call created it.

    Race-free across processes and nodes of a shared filesystem: the text is written and fsynced
    in a temporary file, which is then hard-linked to ``path`` (``link`` fails if ``path``
    exists, atomically, also on NFS). Of several concurrent creators exactly one wins, and no
    reader ever sees a partial file. Where hard links are not supported, ``O_EXCL`` creation is
    used instead (a reader may then briefly see the file before its content).
    """
    path = Path(path)
    tmp = temp_path(path)
    try:
        with in_folder(path, lambda: _open_temp(tmp)) as f:
            f.write(text.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            return _create_with_o_excl(path, text)
    except OSError as e:
        if isinstance(e, WriteError):
            raise
        raise WriteError(path, e) from e
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    _fsync_dir(path.parent)
    return True


def _create_with_o_excl(path: Path, text: str) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as f:
        f.write(text.encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())
    return True


def probe(folder: Path) -> None:
    """Create, write, fsync and remove a temporary file in ``folder``; OSError if it cannot."""
    tmp = temp_path(Path(folder) / ".write_probe")
    try:
        with _open_temp(tmp) as f:
            f.write(b"probe\n")
            f.flush()
            os.fsync(f.fileno())
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def is_stale(path: Path, now: float | None = None) -> bool:
    """No live writer can own it: a temporary file of a process of this host that is gone, or
    any file older than :data:`STALE_AFTER_S` (False for a file that is already gone)."""
    if _writer_gone(path.name):
        return path.exists()
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return False
    return (time.time() if now is None else now) - mtime > STALE_AFTER_S


def remove_stale_temp_files(folder: Path, *, recursive: bool = False) -> int:
    """Delete this module's temporary files under ``folder`` that no live writer can own."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    now = time.time()
    candidates = folder.rglob(".*.tmp") if recursive else folder.glob(".*.tmp")
    n = 0
    for tmp in candidates:
        if is_temp_name(tmp.name) and is_stale(tmp, now):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                n += 1
    return n


def move_aside(path: Path, label: str = "corrupt") -> Path:
    """Rename a damaged file to ``<name>.<label>-<UTC time>`` (no loader reads it); return that.

    The file is kept, not deleted: it may be evidence of a failing disk, and the user decides.
    ``label`` says why (``corrupt``; ``stale``, ``unrecorded``). Raises FileNotFoundError when
    another process already moved (or removed) it.
    """
    path = Path(path)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.{label}-{stamp}")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.{label}-{stamp}-{n}")
        n += 1
    os.rename(path, target)
    return target
