"""The one fingerprint helper: a stable hash of JSON-like settings (and a file's digest).

Used for the embedding store's folder (what changes a raw vector), each task's run record (what
its scores depend on) and the name of an automatic variant folder. Keys are sorted, so the order
in which settings were stated never matters; non-JSON values hash by their ``str``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def fingerprint(payload: Any, length: int | None = None) -> str:
    """sha256 hex digest of ``payload`` as canonical JSON, cut to ``length`` characters."""
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:length]


def file_digest(path: Path | str) -> str | None:
    """sha256 hex digest of a file's bytes (a task's result: small); None: no such file."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except FileNotFoundError:
        return None
