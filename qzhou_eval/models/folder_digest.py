"""What a local model folder holds, in one digest, so that one folder's vectors and scores are
never taken for another's.

A run names its model by ``model.name`` and ``model.revision``; a local folder (``model.path``)
is taken at its word that it holds that revision. Two checkpoints under one name and revision
(``hf_auto``'s revision is ``main``; a model trained again in place) would share the stored
vectors and the results of the first: the second's run would report the first's scores. So the
places that keep them record the digest of the folder that filled them
(:mod:`qzhou_eval.runs.model_folder`), and a folder whose digest differs is refused.

The digest covers the files a load of the folder reads: each file at its top, and the subfolders
the load reads (the sentence-transformers modules ``modules.json`` names, the projection's); every
subfolder where ``modules.json`` cannot be read. Not the README, hidden files (``.git``,
``.cache``), nor other subfolders: a trainer's ``checkpoint-*/``, or this tool's own results and
store when a run is started in the model's folder (they counted once, and the folder's second run
was refused as another folder's). Of each file: its relative path, size and content; of a file
over 256 MiB (a weight shard) its size, its first and last MiB and 1 MiB at every 64 MiB, so that
a 15 GB checkpoint costs reading about 250 MB (any training changes far more than 64 MiB of a
shard).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Collection, Mapping
from pathlib import Path

_WHOLE_UP_TO = 256 << 20
_SAMPLE = 1 << 20
_EVERY = 64 << 20
_SKIPPED = frozenset({"README.md", "readme.md"})


def read_subfolders(folder: Path, projection: str | None = None) -> list[str] | None:
    """The subfolders a load of ``folder`` reads: those of the sentence-transformers modules its
    ``modules.json`` names, and the projection's (``model.projection``); None (every subfolder)
    where a ``modules.json`` cannot be read."""
    names = {projection.strip("/").split("/")[0]} if projection else set()
    modules = folder / "modules.json"
    if modules.exists():
        try:
            paths = [m.get("path") or "" for m in json.loads(modules.read_bytes())]
        except (OSError, ValueError, AttributeError, TypeError):
            return None
        if not all(isinstance(path, str) for path in paths):
            return None
        names.update(path.strip("/").split("/")[0] for path in paths)
    return sorted(n for n in names if n)


def covered(files: Mapping[str, str], subfolders: Collection[str] | None) -> dict[str, str]:
    """The entries of ``files`` (as :func:`folder_files` names them) at the folder's top or in
    ``subfolders`` (None: all)."""
    if subfolders is None:
        return dict(files)
    return {rel: d for rel, d in files.items() if rel.partition("/")[0] in {*subfolders, rel}}


def folder_files(folder: Path, subfolders: Collection[str] | None = None) -> dict[str, str]:
    """Each file's relative path -> the SHA-256 of its size and content (sampled above 256 MiB),
    at the folder's top and in ``subfolders`` (None: every one)."""
    files: dict[str, str] = {}
    for root, dirs, names in os.walk(folder, followlinks=True):
        top = Path(root) == folder
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".") and (subfolders is None or not top or d in subfolders)
        )
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
