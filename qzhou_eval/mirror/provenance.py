"""Where a task's data came from, for its record and the report.

Per task, one of:

- ``demo``: a demo suite built from installed packages (its revision names the package versions);
- ``hub``: the Hugging Face repo at the revision the task pins (``datasets`` checks the revision);
- ``local``: a task of its own that reads a local path (named);
- ``mirror``: a folder of ``data.mirror``, with a SHA-256 over the files the task's loader reads
  (data files and README, by relative path) and whether that content *is* the pinned revision:
  every file's hash equals the one ``snapshot_download`` recorded for it at that revision (its
  ``.cache/huggingface/download/<file>.metadata``: commit hash, then etag = SHA-256 for LFS files,
  git blob SHA-1 for the others).

Only a mirror whose content is not shown to be the pinned revision (edited files, files copied by
hand without the download metadata) changes the task's identity (:func:`data_identity`): its
results are never filed as those of the pinned data. Hashing reads each file once per process
(about 1 GB/s).
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qzhou_eval.config.hub import DOWNLOAD_METADATA
from qzhou_eval.mirror.check import data_files, is_data_file
from qzhou_eval.mirror.layout import mirror_folder
from qzhou_eval.mirror.offline import hub_repo
from qzhou_eval.mirror.repos import leaf_tasks

if TYPE_CHECKING:
    from mteb.abstasks import AbsTask

_HEX = re.compile(r"^[0-9a-f]{40}$|^[0-9a-f]{64}$")
_CHUNK = 1 << 20


def data_provenance(task: AbsTask, mirror: Path | None) -> dict[str, Any]:
    """What the record says about ``task``'s data (see the module docstring)."""
    parts = [_leaf_provenance(leaf, mirror) for leaf in leaf_tasks(task)]
    if len(parts) == 1:
        return parts[0]
    combined = hashlib.sha256("".join(str(p.get("sha256", "")) for p in parts).encode())
    return {
        "source": parts[0]["source"],
        "parts": parts,
        **({"sha256": combined.hexdigest()} if mirror is not None else {}),
        "matches_revision": all(p.get("matches_revision", True) for p in parts),
    }


def data_identity(provenance: dict[str, Any] | None) -> str | None:
    """What the data adds to a task's identity: the content hash of a mirror not shown to hold the
    pinned revision; None for the pinned data (Hub, a verified mirror) and demo suites."""
    if not provenance or provenance.get("source") != "mirror":
        return None
    if provenance.get("matches_revision"):
        return None
    return f"sha256:{provenance.get('sha256')}"


def describe(provenance: dict[str, Any] | None) -> str:
    """A short human description (tasks with the same one are listed together in the report)."""
    if not provenance:
        return "not recorded"
    source = provenance.get("source")
    if source == "demo":
        return "demo suite built from installed packages"
    if source == "hub":
        return "Hugging Face Hub, pinned revision"
    if source == "local":
        return f"local data {provenance.get('path', '?')}"
    if source == "mirror":
        where = f"mirror {provenance.get('mirror', '?')}"
        if provenance.get("matches_revision"):
            return f"{where}, files match the pinned revision"
        return f"{where}, content NOT shown to be the pinned revision"
    return str(source)


def _leaf_provenance(task: AbsTask, mirror: Path | None) -> dict[str, Any]:
    from qzhou_eval.demo.base import BuiltLocally

    repo = hub_repo(task)
    if repo is None:
        dataset = task.metadata.dataset
        if isinstance(task, BuiltLocally):
            return {"source": "demo", "revision": str(dataset.get("revision", ""))}
        return {"source": "local", "path": str(dataset.get("path", ""))}  # a task of its own
    repo_id, revision = repo
    if mirror is None:
        return {"source": "hub", "repo": repo_id, "revision": revision}
    root = Path(mirror).expanduser().resolve()
    folder = mirror_folder(root, repo_id)
    sha256, matches = _shown(folder, revision)
    return {
        "source": "mirror",
        "mirror": str(root),
        "folder": str(folder),
        "repo": repo_id,
        "revision": revision,
        "sha256": sha256,
        "matches_revision": matches,
    }


def _content_files(folder: Path) -> list[tuple[str, Path]]:
    """The files a loader reads: data files and the README (its ``configs`` name the data)."""
    files = list(data_files(folder))
    if (folder / "README.md").is_file():
        files.append(folder / "README.md")
    return sorted((p.relative_to(folder).as_posix(), p) for p in files)


def content_sha256(folder: Path) -> str:
    """The SHA-256 over the files a loader reads in ``folder`` (each file's relative path and
    content): the ``sha256`` of a mirror task's record."""
    return _content(folder, None, _content_files(folder))[0]


def _content(folder: Path, revision: str | None, files: list[tuple[str, Path]]) -> tuple[str, bool]:
    """(SHA-256 over the files, whether each matches its download metadata at ``revision``;
    False for ``revision=None``)."""
    total = hashlib.sha256()
    matches = bool(files) and revision is not None
    for rel, path in files:
        stat = path.stat()
        sha256, git_sha1 = _file_hashes(str(path), stat.st_size, stat.st_mtime_ns)
        total.update(f"{rel}\0{sha256}\n".encode())
        if matches:
            matches = _recorded(folder, rel, str(revision)) in (sha256, git_sha1)
    return total.hexdigest(), matches


def matches_revision(folder: Path, revision: str) -> bool:
    """Whether ``folder`` is shown to hold ``revision``: a run files its tasks as the pinned
    data's (``matches_revision`` in their records) only then. Every file a loader reads has
    the hash ``snapshot_download`` recorded for it at ``revision``, and every such file it
    recorded is there."""
    return _shown(folder, revision)[1]


def _shown(folder: Path, revision: str) -> tuple[str, bool]:
    """(the SHA-256 of ``folder``'s content, whether it is shown to hold ``revision``: see
    :func:`matches_revision`)."""
    sha256, matches = _content(folder, revision, _content_files(folder))
    return sha256, matches and not _missing_recorded(folder)


def _missing_recorded(folder: Path) -> str | None:
    """The first data file or README ``snapshot_download`` recorded a download of that the folder
    no longer holds (a partial copy: the data are not the whole revision)."""
    root = folder / DOWNLOAD_METADATA
    if not root.is_dir():
        return None
    for meta in sorted(root.rglob("*.metadata")):
        rel = meta.relative_to(root).as_posix().removesuffix(".metadata")
        path = folder / rel
        if (is_data_file(path) or rel == "README.md") and not path.is_file():
            return rel
    return None


@functools.cache
def _file_hashes(path: str, size: int, mtime_ns: int) -> tuple[str, str]:
    """SHA-256 of the content and its git blob SHA-1 (what the Hub reports for non-LFS files);
    once per process for a file of that size and time (a changed file is hashed again)."""
    sha256 = hashlib.sha256()
    git = hashlib.sha1(f"blob {size}\0".encode())  # git's blob id
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            sha256.update(chunk)
            git.update(chunk)
    return sha256.hexdigest(), git.hexdigest()


def _recorded(folder: Path, rel: str, revision: str) -> str | None:
    """The etag ``snapshot_download`` recorded for ``rel`` if it records ``revision``, else None."""
    try:
        lines = (folder / DOWNLOAD_METADATA / f"{rel}.metadata").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    commit, _, rest = lines.partition("\n")
    etag = rest.partition("\n")[0].strip().strip('"')
    if commit.strip() != revision or not _HEX.match(etag):
        return None
    return etag
