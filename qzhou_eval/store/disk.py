"""Embedding store on disk, keyed by model fingerprint + side + the exact model input.

Layout: ``<root>/<model fingerprint>/`` holds append-only shards, each a pair
``<id>.vecs.npy`` (float32, raw full-dimension vectors) and ``<id>.keys.npy`` (sha256 of
``side \\0 input``). A shard is written to temporary names and renamed, vectors first, keys last:
a shard without its keys file does not exist, so a run killed at any moment leaves a valid store
and the next run re-encodes only what was not stored.

The fingerprint covers everything that changes a raw vector (name, revision, backend, attention,
pooling, dtype, attention kernel, max length, padding side, truncation policy, Token Prepending,
projection). The recipe is not in it: it is in the key, because the key is the exact model input.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qzhou_eval.config.spec import ModelSpec

KEY_BYTES = 32


def model_fingerprint(spec: ModelSpec) -> str:
    blob = json.dumps(spec.fingerprint_fields(), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:20]


def _key(side: str, text: str) -> bytes:
    return hashlib.sha256(f"{side}\0{text}".encode()).digest()


def _save_npy_atomic(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with tmp.open("wb") as f:
            np.save(f, array)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


class DiskStore:
    """Vectors of one model configuration, shared across tasks, runs, dims and processes."""

    def __init__(self, root: Path | str, fingerprint: str) -> None:
        self.folder = Path(root).expanduser() / fingerprint
        self.folder.mkdir(parents=True, exist_ok=True)
        self._index: dict[bytes, tuple[str, int]] = {}
        self._vectors: dict[str, np.ndarray] = {}
        self.refresh()

    def refresh(self) -> None:
        """Index every complete shard on disk (also those written by other processes)."""
        for keys_file in sorted(self.folder.glob("*.keys.npy")):
            shard = keys_file.name[: -len(".keys.npy")]
            if shard in self._vectors:
                continue
            vecs_file = self.folder / f"{shard}.vecs.npy"
            if not vecs_file.exists():
                continue
            keys = np.load(keys_file)
            self._vectors[shard] = np.load(vecs_file, mmap_mode="r")
            for row, k in enumerate(keys):
                self._index.setdefault(k.tobytes(), (shard, row))

    def get_many(self, side: str, inputs: Sequence[str]) -> list[np.ndarray | None]:
        out: list[np.ndarray | None] = []
        for text in inputs:
            hit = self._index.get(_key(side, text))
            out.append(None if hit is None else np.asarray(self._vectors[hit[0]][hit[1]]))
        return out

    def put_many(self, side: str, inputs: Sequence[str], vectors: np.ndarray) -> None:
        if len(inputs) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        keys = np.frombuffer(b"".join(_key(side, t) for t in inputs), dtype=np.uint8).reshape(
            len(inputs), KEY_BYTES
        )
        shard = uuid.uuid4().hex
        _save_npy_atomic(self.folder / f"{shard}.vecs.npy", vectors)
        _save_npy_atomic(self.folder / f"{shard}.keys.npy", keys)  # the commit point
        self._vectors[shard] = np.load(self.folder / f"{shard}.vecs.npy", mmap_mode="r")
        for row, k in enumerate(keys):
            self._index.setdefault(k.tobytes(), (shard, row))

    def clear(self) -> None:
        """Nothing to drop: the disk store keeps vectors across tasks (that is its job)."""

    def __len__(self) -> int:
        return len(self._index)

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.folder.glob("*.npy"))
