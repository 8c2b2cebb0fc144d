"""What a local model folder holds, in one digest, so that one folder's vectors and scores are
never taken for another's.

A run names its model by ``model.name`` and ``model.revision``; a local folder (``model.path``)
is taken at its word that it holds that revision. Two checkpoints under one name and revision
(``hf_auto``'s revision is ``main``; a model trained again in place) would share the stored
vectors and the results of the first: the second's run would report the first's scores. So the
places that keep them record the digest of the folder that filled them
(:mod:`qzhou_eval.runs.model_folder`), and a folder whose digest differs is refused.

The digest covers each file of the folder (its subfolders too) but the README and hidden files
(``.git``, ``.cache``): its relative path, size and content; of a file over 256 MiB (a weight
shard) its size, its first and last MiB and 1 MiB at every 64 MiB, so that a 15 GB checkpoint
costs reading about 250 MB (any training changes far more than 64 MiB of a shard).
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

_WHOLE_UP_TO = 256 << 20
_SAMPLE = 1 << 20
_EVERY = 64 << 20
_SKIPPED = frozenset({"README.md", "readme.md"})


def folder_files(folder: Path) -> dict[str, str]:
    """Each file's relative path -> the SHA-256 of its size and content (sampled above 256 MiB)."""
    files: dict[str, str] = {}
    for root, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith(".") or name in _SKIPPED:
                continue
            path = Path(root, name)
            stat = path.stat()
            files[path.relative_to(folder).as_posix()] = _known_digest(
                str(path), stat.st_size, stat.st_mtime_ns
            )
    return files


def digest_of(files: dict[str, str]) -> str:
    """One SHA-256 over :func:`folder_files`' entries."""
    total = hashlib.sha256()
    for rel in sorted(files):
        total.update(f"{rel}\0{files[rel]}\n".encode())
    return total.hexdigest()


@functools.cache
def _known_digest(path: str, size: int, mtime_ns: int) -> str:
    """Once per process for a file of that size and time (a changed file is read again)."""
    return _file_digest(Path(path))


def _file_digest(path: Path) -> str:
    size = path.stat().st_size
    digest = hashlib.sha256(f"{size}\n".encode())
    with open(path, "rb") as f:
        if size <= _WHOLE_UP_TO:
            while chunk := f.read(_SAMPLE):
                digest.update(chunk)
            return digest.hexdigest()
        for offset in [*range(0, size - _SAMPLE, _EVERY), size - _SAMPLE]:
            f.seek(offset)
            digest.update(f.read(_SAMPLE))
    return digest.hexdigest()
