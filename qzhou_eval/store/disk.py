"""Embedding store on disk, keyed by model fingerprint + side + the exact model input.

Layout: ``<root>/<model fingerprint>/`` holds shards, each a pair ``<id>.vecs.npy`` (float32,
full-dimension vectors before the MRL cut) and ``<id>.keys.npy`` (uint8 (n, 32): sha256 of
``side \\0 input``).
A shard is written through :mod:`qzhou_eval.atomic`, vectors first, keys last: a shard without
its keys file does not exist, so a run killed at any moment leaves a valid store and the next run
re-encodes only what was not stored.

Shared by processes (several runs, several nodes on one filesystem), without locks:

- writers refresh the index from disk before writing and store only keys not yet present;
- duplicate keys (two writers racing on the same inputs) are compacted away: the shards that
  share keys are merged into a new shard, which is committed (and read back) before any of them
  is deleted, keys file first. Every vector therefore lives in some committed shard at every
  moment, also when two processes compact at once (the worst case is one more duplicate, merged
  next time);
- readers read rows with plain file reads (no long-lived memory maps: a shard deleted by another
  node's compaction would crash a mapped reader on NFS), re-index and retry when a shard has
  vanished, and treat an input they cannot read as not stored (it is encoded again).

Each shard is validated when first indexed (both files load; keys uint8 (n, 32); vectors 2-D
float32 with n rows, the file as long as its header says), and each vector read is checked:
one with a NaN or inf, or all zero, is no model's (the embedder never stores one), so its shard
is damaged. A damaged shard is moved aside as ``*.corrupt-<UTC time>`` with one warning and its
inputs are encoded again. Other values are trusted: no checksum of the vectors is kept (one
would mean reading every shard whole).
Orphan ``.vecs.npy`` files (the keys file never written) and temporary files are deleted once
older than :data:`qzhou_eval.atomic.STALE_AFTER_S`; younger ones may belong to a live writer.

The fingerprint is ``ModelSpec.fingerprint_fields``: everything that changes a stored vector
(name, revision, backend, attention, pooling, dtype, numerics, attention kernel, packing, max
length, padding side, truncation policy, Token Prepending layers, projection). The recipe is not
in it: it is in the key, because the key is the exact model input. The folder keeps those fields
(:data:`SETTINGS`, written with its first shard): a folder whose settings do not hash to its name
(renamed or copied in by hand) is refused, instead of serving another configuration's vectors as
this one's; a folder without the file (filled before it existed) is taken at its word.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qzhou_eval import atomic
from qzhou_eval.config.spec import ModelSpec
from qzhou_eval.errors import ConfigError
from qzhou_eval.fingerprint import fingerprint

logger = logging.getLogger(__name__)

KEY_BYTES = 32
KEYS = ".keys.npy"
VECS = ".vecs.npy"


# Reads of a store's vectors, each after the shards that vanished under the last (merged by
# another process compacting) are forgotten and the folder is read again: with several writers
# compacting at once, a merged shard can be merged again before it is read. Compaction
# converges, so a few suffice.
READ_ATTEMPTS = 5


def model_fingerprint(spec: ModelSpec) -> str:
    """The store folder of a model configuration: what changes a raw vector."""
    return fingerprint(spec.fingerprint_fields(), 20)


def _key(side: str, text: str) -> bytes:
    # surrogatepass: a lone surrogate (not valid Unicode) still gets a key of its own; every
    # valid text's bytes are its UTF-8 bytes, as before
    return hashlib.sha256(f"{side}\0{text}".encode("utf-8", "surrogatepass")).digest()


# What numpy raises on a file that is not a valid .npy (bad magic, garbled header, short data).
_LOAD_ERRORS = (ValueError, OSError, EOFError, SyntaxError, TypeError, KeyError)


def _first_line(e: BaseException, limit: int = 120) -> str:
    line = (str(e).strip().splitlines() or [type(e).__name__])[0]
    if len(line) <= limit:
        return line
    cut = line.rfind(" ", 0, limit - 3)  # at a word's end
    return line[: cut if cut > 0 else limit - 3] + "..."


NPY_MAGIC = b"\x93NUMPY"


def unusable_rows(vectors: np.ndarray) -> np.ndarray:
    """Per row, whether it is no vector a model gives (a NaN or inf in it, or all zero): none
    is stored, and a shard found holding one is damaged (e.g. a disk's zero-filled block)."""
    return ~np.isfinite(vectors).all(axis=1) | ~vectors.any(axis=1)


class DamagedShard(ValueError):
    """A shard whose files do not hold what a shard holds (the message says what is wrong)."""


@dataclass(frozen=True)
class Shard:
    """A validated shard: its keys in memory, where its vectors start in the ``.vecs.npy``."""

    name: str
    keys: np.ndarray  # (n, KEY_BYTES) uint8
    dim: int
    offset: int  # byte offset of row 0 in the vectors file


def read_shard(folder: Path, name: str) -> Shard:
    """Load and validate shard ``name``. FileNotFoundError: a file is gone; DamagedShard: bad."""
    try:
        with (folder / f"{name}{KEYS}").open("rb") as f:
            if f.read(len(NPY_MAGIC)) != NPY_MAGIC:  # (numpy would call it pickled data)
                raise DamagedShard("keys file is not a .npy file (no NumPy header)")
        keys = np.load(folder / f"{name}{KEYS}", allow_pickle=False)
    except (FileNotFoundError, DamagedShard):
        raise
    except _LOAD_ERRORS as e:
        raise DamagedShard(f"keys file does not load: {_first_line(e)}") from None
    if not isinstance(keys, np.ndarray):  # np.load opened something else (an .npz archive)
        raise DamagedShard("keys file is not a .npy array")
    if keys.dtype != np.uint8 or keys.ndim != 2 or keys.shape[1] != KEY_BYTES:
        raise DamagedShard(f"keys are {keys.dtype} {keys.shape}, not uint8 (n, {KEY_BYTES})")
    vecs = folder / f"{name}{VECS}"
    with vecs.open("rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read_header(f)
        except _LOAD_ERRORS as e:
            raise DamagedShard(f"vectors file does not load: {_first_line(e)}") from None
        offset = f.tell()
        size = os.fstat(f.fileno()).st_size
    if dtype != np.float32 or len(shape) != 2 or fortran:
        raise DamagedShard(f"vectors are {dtype} {shape}, not float32 (n, dim)")
    if shape[0] != len(keys):
        raise DamagedShard(f"{shape[0]} vectors for {len(keys)} keys")
    if size != offset + shape[0] * shape[1] * 4:
        raise DamagedShard(f"vectors file is truncated ({size} bytes, header says more)")
    return Shard(name, np.ascontiguousarray(keys), int(shape[1]), offset)


def read_rows(folder: Path, shard: Shard, rows: Sequence[int]) -> np.ndarray:
    """Rows of a shard's vectors, in the order asked, read with plain reads (no memory map)."""
    out = np.empty((len(rows), shard.dim), dtype=np.float32)
    row_bytes = shard.dim * 4
    order = np.argsort(np.asarray(rows), kind="stable")
    with (folder / f"{shard.name}{VECS}").open("rb") as f:  # buffered: read(n) gets n bytes
        i = 0
        while i < len(order):  # one read per run of consecutive rows
            j = i
            while j + 1 < len(order) and rows[order[j + 1]] == rows[order[j]] + 1:
                j += 1
            f.seek(shard.offset + rows[order[i]] * row_bytes)
            block = f.read((j - i + 1) * row_bytes)
            if len(block) != (j - i + 1) * row_bytes:
                raise OSError(f"short read in {shard.name}{VECS}")
            out[order[i : j + 1]] = np.frombuffer(block, dtype=np.float32).reshape(-1, shard.dim)
            i = j + 1
    return out


SETTINGS = "settings.json"  # the fingerprint fields the folder's name is the hash of


def store_folder(root: Path | str, fingerprint: str) -> Path:
    """The folder of one model configuration's vectors in the store ``root``; a ConfigError
    where a file is in its way, or where ``root`` is itself such a folder (the run summary names
    it: taken for the store, it would be an empty one, or a store nested in it)."""
    root = Path(root).expanduser()
    if root.is_dir() and next(root.glob(f"*{KEYS}"), None) is not None:
        raise ConfigError(
            f"runtime.store_dir={root} is the folder of one model configuration's vectors (it "
            f"holds {KEYS} files), inside a store: point runtime.store_dir at the store, "
            f"{root.parent}"
        )
    folder = root / fingerprint
    if folder.exists() and not folder.is_dir():
        raise ConfigError(
            f"{folder} is a file where the store folder of this model configuration belongs "
            "(in runtime.store_dir): move it away"
        )
    _check_settings(folder)
    return folder


def _check_settings(folder: Path) -> None:
    """A ConfigError where the settings ``folder`` keeps do not hash to its name."""
    if not folder.is_dir():  # (a root that is a file: its own line names runtime.store_dir)
        return
    try:
        kept = json.loads((folder / SETTINGS).read_text(encoding="utf-8"))
        problem = "" if isinstance(kept, dict) else f"holds a {type(kept).__name__}"
    except FileNotFoundError:  # none yet, or filled before the file existed: at its word
        return
    except (OSError, ValueError) as e:  # (written atomically: damaged, or edited by hand)
        problem = f"does not parse ({type(e).__name__})"
    if problem:
        raise ConfigError(
            f"{folder}: its {SETTINGS} {problem}, so the settings of its vectors are unknown: "
            f"move the folder out of runtime.store_dir (or delete that file to take the folder "
            "at its word)"
        )
    if fingerprint(kept, len(folder.name)) != folder.name:
        raise ConfigError(
            f"{folder} holds the vectors of another model configuration than its name says (its "
            f"{SETTINGS} hashes to {fingerprint(kept, len(folder.name))}: renamed or copied in by "
            f"hand?): move it to that name, or out of runtime.store_dir"
        )


class DiskStore:
    """Vectors of one model configuration, shared across tasks, runs, dims and processes."""

    def __init__(
        self,
        root: Path | str,
        fingerprint: str,
        *,
        writable: bool = True,
        damaged: Iterable[str] = (),
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        """``writable=False``: only read (a scoring process, ``runtime.encode=false``, a store on
        a read-only mount): nothing in the folder is created, deleted, moved or merged, and a
        folder that does not exist is an empty store. ``damaged``: shards another process of
        the run found damaged and warned about (:attr:`damaged`): skipped without a warning.
        ``settings``: the fields ``fingerprint`` is the hash of, kept in the folder."""
        self.folder = store_folder(root, fingerprint)
        self.settings = settings
        self.writable = writable
        if writable:
            self.folder.mkdir(parents=True, exist_ok=True)
        self._shards: dict[str, Shard] = {}
        self._index: dict[bytes, tuple[str, int]] = {}
        self._unusable: set[str] = set(damaged)  # damaged shards that could not be moved aside
        self._raced = False  # a shard was listed, then gone before it was loaded
        if writable:
            self.remove_stale_files()
        self.refresh()
        if self.duplicate_rows and writable:
            logger.info("embedding store: %d duplicate vectors compacted", self.compact())

    def remove_if_empty(self) -> None:
        """Remove this configuration's folder if it holds nothing (a run that stored nothing,
        stopped or failed early, leaves no empty folder); best effort."""
        with contextlib.suppress(OSError):
            self.folder.rmdir()

    # ---- reading the folder ----------------------------------------------------------------

    def _names_on_disk(self) -> set[str]:
        # no folder: nothing of this configuration was stored, or a run that stored nothing
        # removed its empty folder (:meth:`remove_if_empty`; the next write makes it again)
        if not self.folder.is_dir():
            return set()
        with os.scandir(self.folder) as entries:
            return {
                e.name[: -len(KEYS)]
                for e in entries
                if e.name.endswith(KEYS) and not e.name.startswith(".")
            }

    def refresh(self) -> None:
        """Index every complete shard on disk (also those written by other processes)."""
        on_disk = self._names_on_disk()
        vanished = self._shards.keys() - on_disk
        for name in vanished:
            del self._shards[name]
        added = []
        for name in sorted(on_disk - self._shards.keys() - self._unusable):
            shard = self._open(name)
            if shard is not None:
                self._shards[name] = shard
                added.append(shard)
        if vanished:
            self._rebuild_index()
        else:
            self._index_shards(added)

    def _open(self, name: str) -> Shard | None:
        try:
            return read_shard(self.folder, name)
        except FileNotFoundError:
            if not (self.folder / f"{name}{KEYS}").exists():
                self._raced = True
                return None  # removed between listing and loading (another process compacted)
            problem = "vectors file is missing"
        except DamagedShard as e:
            problem = str(e)
        self._set_aside(name, problem)
        return None

    def _set_aside(self, name: str, problem: str) -> None:
        if not self.writable:  # skip it in this process, warn once
            self._unusable.add(name)
            done = "left in place (read-only here)"
        else:
            moved = []
            try:
                for suffix in (KEYS, VECS):  # keys first: the shard stops existing at once
                    with contextlib.suppress(FileNotFoundError):
                        moved.append(atomic.move_aside(self.folder / f"{name}{suffix}").name)
            except OSError as e:  # cannot rename here: skip it in this process, warn once
                self._unusable.add(name)
                done = f"left in place ({e.strerror or e})"
            else:
                if not moved:
                    return  # another process set it aside first (and warned)
                done = f"its files are now {name}.*{moved[0][moved[0].rindex('.') :]}"
        logger.warning(
            "embedding store: shard %s is damaged (%s); %s; its inputs count as not stored",
            self.folder / name,
            problem,
            done,
        )

    def _drop(self, name: str, problem: str) -> None:
        """Stop using an indexed shard found damaged on reading its vectors: set aside (or, where
        it cannot be moved, skipped in this process), its inputs no longer indexed."""
        self._set_aside(name, problem)
        if name in self._shards:
            del self._shards[name]
            self._rebuild_index()

    def _index_shards(self, shards: Iterable[Shard]) -> None:
        for shard in shards:
            for row, k in enumerate(shard.keys):
                self._index.setdefault(k.tobytes(), (shard.name, row))

    def _rebuild_index(self) -> None:
        self._index = {}
        self._index_shards(self._shards[n] for n in sorted(self._shards))

    def remove_stale_files(self) -> int:
        """Delete old temporary files and old orphan ``.vecs.npy`` (their keys never written)."""
        n = atomic.remove_stale_temp_files(self.folder)
        for vecs in self.folder.glob(f"*{VECS}"):
            keys = vecs.with_name(vecs.name[: -len(VECS)] + KEYS)
            if not keys.exists() and atomic.is_stale(vecs):
                with contextlib.suppress(FileNotFoundError):
                    vecs.unlink()
                    n += 1
        return n

    # ---- the VectorStore protocol ----------------------------------------------------------

    def get_many(self, side: str, inputs: Sequence[str]) -> list[np.ndarray | None]:
        self._raced = False
        self.refresh()
        keys = [_key(side, t) for t in inputs]
        out: list[np.ndarray | None] = [None] * len(keys)
        todo = list(range(len(keys)))
        for attempt in range(READ_ATTEMPTS):
            # shard -> (position, row) of each input found in it: the index may change below
            # (a damaged shard dropped), so each read goes by what this lookup found
            by_shard: dict[str, list[tuple[int, int]]] = {}
            unindexed = []
            for i in todo:
                hit = self._index.get(keys[i])
                if hit is None:
                    unindexed.append(i)
                else:
                    by_shard.setdefault(hit[0], []).append((i, hit[1]))
            # a shard listed, then merged away before it was loaded: the shard its keys went
            # to may have come after the listing, so what is not indexed is looked up again
            todo = unindexed if self._raced else []
            self._raced = False
            for name, found in by_shard.items():
                positions = [i for i, _ in found]
                try:
                    rows = read_rows(self.folder, self._shards[name], [row for _, row in found])
                except OSError:  # gone since indexing (compacted elsewhere), or unreadable
                    todo.extend(positions)
                    continue
                unusable = unusable_rows(rows)
                if unusable.any():  # no model's vector: the file's values are damaged
                    self._drop(
                        name,
                        f"{int(unusable.sum())} of {len(rows)} vectors read are NaN, inf or all "
                        "zero",
                    )
                    todo.extend(positions)  # (another shard may hold them too)
                    continue
                for i, vector in zip(positions, rows, strict=True):
                    out[i] = vector
            if not todo or attempt == READ_ATTEMPTS - 1:
                break
            self._forget_vanished()  # (the merged shard may itself be merged meanwhile)
        return out  # what could not be read counts as not stored: it is encoded again

    def has_many(self, side: str, inputs: Sequence[str]) -> list[bool]:
        """Whether each input is indexed (no vector is read; one that turns out unreadable
        later counts as not stored then, and is encoded again)."""
        self.refresh()
        return [_key(side, t) in self._index for t in inputs]

    def _forget_vanished(self) -> None:
        self._shards = {
            n: s for n, s in self._shards.items() if (self.folder / f"{n}{KEYS}").exists()
        }
        self._rebuild_index()
        self.refresh()

    def put_many(self, side: str, inputs: Sequence[str], vectors: np.ndarray) -> None:
        """Store the vectors of inputs not stored yet (by this or any other process)."""
        if len(inputs) == 0:
            return
        if not self.writable:
            raise PermissionError(errno.EROFS, f"embedding store {self.folder} is read-only here")
        self.refresh()
        fresh: dict[bytes, int] = {}
        for row, text in enumerate(inputs):
            k = _key(side, text)
            if k not in self._index:
                fresh.setdefault(k, row)
        if fresh:
            rows = list(fresh.values())
            keys = np.frombuffer(b"".join(fresh), dtype=np.uint8).reshape(len(rows), KEY_BYTES)
            self._write_shard(keys, np.asarray(vectors, dtype=np.float32)[rows])
        if self.duplicate_rows:  # another process wrote some of the same keys meanwhile
            self.compact()

    def _write_shard(self, keys: np.ndarray, vectors: np.ndarray) -> Shard | None:
        """Commit a new shard and index it; None when another process merged it away already.

        Another process may index the shard the moment its keys file lands, find keys it
        shares, and merge and delete it before it is read back here. Its vectors then live in
        that merged shard (committed before any deletion), which the refresh indexes.
        """
        name = uuid.uuid4().hex
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.settings is not None and not (self.folder / SETTINGS).exists():
            text = json.dumps(self.settings, sort_keys=True, ensure_ascii=False, default=str)
            atomic.write_text(self.folder / SETTINGS, text + "\n")
        atomic.save_npy(self.folder / f"{name}{VECS}", vectors)
        try:
            atomic.save_npy(self.folder / f"{name}{KEYS}", keys)  # the commit point
        except BaseException:  # (a full disk) a shard without keys does not exist: its vectors go
            if not (self.folder / f"{name}{KEYS}").exists():  # (not if it failed after the commit)
                with contextlib.suppress(OSError):
                    (self.folder / f"{name}{VECS}").unlink()
            raise
        try:
            shard = read_shard(self.folder, name)
        except FileNotFoundError:
            self.refresh()
            return None
        self._shards[name] = shard
        self._index_shards([shard])
        return shard

    def clear(self) -> None:
        """Nothing to drop: the disk store keeps vectors across tasks (that is its job)."""

    # ---- duplicates ------------------------------------------------------------------------

    @property
    def duplicate_rows(self) -> int:
        """Rows whose key is stored more than once (in one shard or several)."""
        return sum(len(s.keys) for s in self._shards.values()) - len(self._index)

    def compact(self) -> int:
        """Merge each group of shards that share keys into one shard; return rows dropped.

        Safe with concurrent readers, writers and compactors: a shard is deleted only after a
        merged shard holding all its keys was committed and read back.
        """
        dropped = 0
        if not self.writable:
            return 0  # the index reads each key's first copy; a writer merges them
        for group in self._duplicate_groups():
            if not all(n in self._shards for n in group):
                continue  # changed by an earlier group's re-indexing: next time
            try:
                dropped += self._merge(group)
            except OSError:  # a member vanished (another compactor): next time
                self._forget_vanished()
        return dropped

    def _duplicate_groups(self) -> list[list[str]]:
        """Connected groups of shards that share a key (a shard alone if it repeats a key)."""
        parent: dict[str, str] = {}

        def root(n: str) -> str:
            while parent.get(n, n) != n:
                n = parent[n]
            return n

        involved: set[str] = set()
        for name in sorted(self._shards):
            for row, k in enumerate(self._shards[name].keys):
                holder = self._index.get(k.tobytes())
                if holder is not None and holder != (name, row):
                    involved.update((name, holder[0]))
                    a, b = root(name), root(holder[0])
                    if a != b:
                        parent[max(a, b)] = min(a, b)
        groups: dict[str, list[str]] = {}
        for name in sorted(involved):
            groups.setdefault(root(name), []).append(name)
        return list(groups.values())

    def _merge(self, group: list[str]) -> int:
        members = [self._shards[n] for n in group]
        dims = {s.dim for s in members}
        if len(dims) != 1:  # cannot happen within one fingerprint; never merge what differs
            logger.warning("embedding store: shards %s differ in size; not merged", group)
            return 0
        keys = np.concatenate([s.keys for s in members])
        vectors = np.concatenate([read_rows(self.folder, s, range(len(s.keys))) for s in members])
        _, first = np.unique(keys, axis=0, return_index=True)
        first.sort()
        merged = self._write_shard(keys[first], vectors[first])
        if merged is None:  # another compactor merged it already: its keys are safe there
            self._forget_vanished()
            return 0
        # Every key of every member must be in the committed merged shard before any deletion.
        on_disk = read_shard(self.folder, merged.name)
        if {k.tobytes() for k in on_disk.keys} != {k.tobytes() for k in keys}:
            logger.warning("embedding store: merged shard %s reads back wrong", merged.name)
            return 0  # keep every member; the extra shard is merged away next time
        for shard in members:
            for suffix in (KEYS, VECS):  # keys first: the shard stops existing at once
                with contextlib.suppress(FileNotFoundError):
                    (self.folder / f"{shard.name}{suffix}").unlink()
            self._shards.pop(shard.name, None)
        self._rebuild_index()
        return len(keys) - len(first)

    # ---- reporting -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._index)

    @property
    def damaged(self) -> list[str]:
        """Damaged shards left in place (a read-only store, or one that could not be renamed):
        warned about once, their inputs count as not stored."""
        return sorted(self._unusable)

    def other_configurations(self) -> int:
        """How many other model configurations (fingerprint folders with a shard) the store's
        root holds."""
        root = self.folder.parent
        if not root.is_dir():
            return 0
        return sum(
            1
            for f in root.iterdir()
            if f.is_dir() and f != self.folder and next(f.glob(f"*{KEYS}"), None) is not None
        )

    def size_bytes(self) -> int:
        total = 0
        for p in self.folder.glob("*.npy"):
            with contextlib.suppress(FileNotFoundError):
                total += p.stat().st_size
        return total
