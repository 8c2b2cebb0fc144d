"""Where things live in a mirror folder, and the marker that ``fill_mirror`` leaves.

```
<mirror>/
  <org>__<name>/              one Hugging Face dataset repo at one revision, as
    README.md, data files...  snapshot_download(local_dir=...) writes it
    .cache/huggingface/...    snapshot_download's own per-file metadata (commit hash first)
    .qzhou-mirror.json        marker: written by fill_mirror after a complete download
  .staging/<org>__<name>@<revision>/   fill_mirror's download in progress (resumable)
```
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from qzhou_eval.errors import MirrorError

MARKER_NAME = ".qzhou-mirror.json"
STAGING_DIR = ".staging"


def is_repo_id(path: str) -> bool:
    """Whether ``path`` names a Hub repo (``org/name``) rather than a local folder."""
    org, sep, name = path.partition("/")
    return bool(sep and org and name) and "/" not in name and not path.startswith((".", "~"))


def mirror_folder(mirror_dir: Path | str, repo_id: str) -> Path:
    """The folder holding ``repo_id`` (``org/name``) in the mirror: ``<mirror_dir>/org__name``."""
    if not is_repo_id(repo_id):
        raise MirrorError(f"{repo_id!r} is not a Hugging Face repo id of the form org/name")
    org, _, name = repo_id.partition("/")
    return Path(mirror_dir) / f"{org}__{name}"


def staging_folder(mirror_dir: Path | str, repo_id: str, revision: str) -> Path:
    """Where ``fill_mirror`` downloads ``repo_id@revision`` before moving it into place.

    The revision is part of the name so that resuming an interrupted download never mixes files
    of two revisions.
    """
    return Path(mirror_dir) / STAGING_DIR / f"{mirror_folder('', repo_id).name}@{revision}"


def write_marker(folder: Path, repo_id: str, revision: str) -> Path:
    """Record that ``folder`` holds all of ``repo_id@revision``, with the list of its files."""
    files = sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and not _is_bookkeeping(p.relative_to(folder))
    )
    marker = folder / MARKER_NAME
    content = {"repo_id": repo_id, "revision": revision, "files": files}
    marker.write_text(json.dumps(content, indent=1) + "\n", encoding="utf-8")
    return marker


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The marker's content, or None when ``folder`` has none (filled by other means)."""
    marker = folder / MARKER_NAME
    if not marker.is_file():
        return None
    try:
        content = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return content if isinstance(content, dict) else {}


def _is_bookkeeping(rel: Path) -> bool:
    """snapshot_download's ``.cache`` folder and the marker itself: not part of the repo."""
    return rel.parts[0] == ".cache" or rel.as_posix() == MARKER_NAME
