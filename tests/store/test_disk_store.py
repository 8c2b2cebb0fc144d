"""The embedding store heals what a crash or a bad disk leaves, and never keeps a vector twice."""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import multiprocessing
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from qzhou_eval import atomic
from qzhou_eval.errors import ConfigError, WriteError
from qzhou_eval.store import disk
from qzhou_eval.store.disk import DiskStore

DIM = 8


def _vectors(texts: list[str]) -> np.ndarray:
    """A deterministic vector per text (so any process can check what it reads)."""
    seeds = [int.from_bytes(hashlib.sha256(t.encode()).digest()[:4], "little") for t in texts]
    return np.stack([np.random.default_rng(s).standard_normal(DIM) for s in seeds]).astype(
        np.float32
    )


def _texts(a: int, b: int) -> list[str]:
    return [f"text {i}" for i in range(a, b)]


def _store_with_shards(root: Path, *chunks: list[str]) -> DiskStore:
    store = DiskStore(root, "fp")
    for texts in chunks:
        store.put_many("query", texts, _vectors(texts))
    return store


def _shard_names(folder: Path) -> list[str]:
    return sorted(p.name[: -len(disk.KEYS)] for p in folder.glob(f"*{disk.KEYS}"))


def _assert_serves(store: DiskStore, texts: list[str]) -> None:
    got = store.get_many("query", texts)
    assert all(v is not None for v in got)
    np.testing.assert_array_equal(np.stack(got), _vectors(texts))


def _age(path: Path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_put_get_roundtrip_and_rows_read_in_any_order(tmp_path):
    store = _store_with_shards(tmp_path, _texts(0, 10), _texts(10, 30))
    texts = [*_texts(0, 30)[::-1], "text 3", "not stored"]
    got = store.get_many("query", texts)
    assert got[-1] is None
    np.testing.assert_array_equal(np.stack(got[:-1]), _vectors(texts[:-1]))
    assert store.get_many("document", ["text 1"]) == [None]  # the side is part of the key
    assert len(DiskStore(tmp_path, "fp")) == 30


def test_a_text_that_is_not_valid_unicode_has_a_key_and_valid_keys_are_unchanged(tmp_path):
    store = DiskStore(tmp_path, "fp")
    texts = ["a \ud800 b", "a \udfff b", "a b"]
    vectors = np.eye(3, DIM, dtype=np.float32)
    store.put_many("query", texts, vectors)  # no UnicodeEncodeError
    np.testing.assert_array_equal(np.stack(store.get_many("query", texts)), vectors)
    assert disk._key("query", "日本") == hashlib.sha256("query\0日本".encode()).digest()


def _garbage_keys(folder: Path, name: str) -> None:
    (folder / f"{name}{disk.KEYS}").write_bytes(os.urandom(300))


def _garbled_keys_header(folder: Path, name: str) -> None:
    path = folder / f"{name}{disk.KEYS}"
    path.write_bytes(path.read_bytes()[:10] + b"{'descr': garbage" + b" " * 100)


def _garbage_vecs(folder: Path, name: str) -> None:
    (folder / f"{name}{disk.VECS}").write_bytes(os.urandom(3000))


def _truncated_vecs(folder: Path, name: str) -> None:
    path = folder / f"{name}{disk.VECS}"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _fewer_rows(folder: Path, name: str) -> None:
    path = folder / f"{name}{disk.VECS}"
    np.save(path, np.load(path)[:-3])


def _keys_wrong_shape(folder: Path, name: str) -> None:
    np.save(folder / f"{name}{disk.KEYS}", np.zeros((10, 16), dtype=np.uint8))


def _vecs_missing(folder: Path, name: str) -> None:
    (folder / f"{name}{disk.VECS}").unlink()


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (_garbage_keys, "keys file is not a .npy file (no NumPy header)"),
        (_garbled_keys_header, "keys file does not load"),
        (_garbage_vecs, "vectors file does not load"),
        (_truncated_vecs, "truncated"),
        (_fewer_rows, "7 vectors for 10 keys"),
        (_keys_wrong_shape, "not uint8 (n, 32)"),
        (_vecs_missing, "vectors file is missing"),
    ],
)
def test_damaged_shard_is_set_aside_with_one_warning_and_its_inputs_are_missing(
    tmp_path, caplog, damage, problem
):
    first, second = _texts(0, 10), _texts(10, 25)
    store = _store_with_shards(tmp_path, first)
    (bad,) = _shard_names(store.folder)
    store.put_many("query", second, _vectors(second))
    damage(store.folder, bad)

    with caplog.at_level(logging.WARNING, logger="qzhou_eval.store.disk"):
        reopened = DiskStore(tmp_path, "fp")
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and bad in warnings[0] and problem in warnings[0], warnings
    assert reopened.get_many("query", first) == [None] * len(first)  # to be encoded again
    _assert_serves(reopened, second)
    assert _shard_names(reopened.folder) == [n for n in _shard_names(reopened.folder) if n != bad]
    assert any(p.name.startswith(f"{bad}{disk.KEYS}.corrupt-") for p in reopened.folder.iterdir())

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="qzhou_eval.store.disk"):
        again = DiskStore(tmp_path, "fp")
    assert not caplog.records  # moved aside: the next run does not warn again
    again.put_many("query", first, _vectors(first))
    _assert_serves(DiskStore(tmp_path, "fp"), first + second)


def test_shard_that_vanishes_between_listing_and_loading_is_skipped_silently(
    tmp_path, caplog, monkeypatch
):
    _store_with_shards(tmp_path, _texts(0, 10), _texts(10, 20))
    real = disk.read_shard
    folder = tmp_path / "fp"
    victim = _shard_names(folder)[0]

    def compacted_meanwhile(f: Path, name: str):
        if name == victim:  # another process deletes it, keys file first, like compaction does
            (f / f"{name}{disk.KEYS}").unlink()
            (f / f"{name}{disk.VECS}").unlink()
        return real(f, name)

    monkeypatch.setattr(disk, "read_shard", compacted_meanwhile)
    with caplog.at_level(logging.WARNING):
        store = DiskStore(tmp_path, "fp")
    assert not caplog.records
    assert len(store) == 10


def test_reader_whose_shard_was_compacted_elsewhere_rereads_from_the_merged_shard(tmp_path):
    texts = _texts(0, 20)
    writer = _store_with_shards(tmp_path, texts[:10], texts[10:])
    reader = DiskStore(tmp_path, "fp")
    # a duplicate shard written behind the dedupe (a writer racing), then compacted elsewhere
    atomic.save_npy(writer.folder / f"{'0' * 32}{disk.VECS}", _vectors(texts[5:15]))
    keys = np.frombuffer(b"".join(disk._key("query", t) for t in texts[5:15]), dtype=np.uint8)
    atomic.save_npy(writer.folder / f"{'0' * 32}{disk.KEYS}", keys.reshape(10, 32))
    compactor = DiskStore(tmp_path, "fp")  # opening compacts
    assert compactor.duplicate_rows == 0 and len(_shard_names(compactor.folder)) == 1
    _assert_serves(reader, texts)  # its index named shards that no longer exist


def test_shard_merged_away_by_another_process_before_its_read_back_is_not_an_error(
    tmp_path, monkeypatch
):
    # a writes keys that b wrote after a's refresh; the moment a's keys file lands, b compacts
    # both shards into one and deletes a's, before a reads its new shard back (seen in CI)
    texts = _texts(0, 10)
    a = DiskStore(tmp_path, "fp")
    b = DiskStore(tmp_path, "fp")
    real_save = atomic.save_npy
    real_refresh = DiskStore.refresh
    state = {"b_wrote": False, "raced": False}

    def refresh(self: DiskStore) -> None:
        real_refresh(self)
        if self is a and not state["b_wrote"]:
            b.put_many("query", texts[5:], _vectors(texts[5:]))  # behind a's dedupe
            state["b_wrote"] = True

    def save(path: Path, array: np.ndarray) -> None:
        real_save(path, array)
        if path.name.endswith(disk.KEYS) and state["b_wrote"] and not state["raced"]:
            state["raced"] = True
            b.refresh()
            assert b.compact() == 5  # merges a's new shard and deletes it

    monkeypatch.setattr(DiskStore, "refresh", refresh)
    monkeypatch.setattr(atomic, "save_npy", save)
    a.put_many("query", texts, _vectors(texts))
    monkeypatch.undo()
    assert state["raced"]
    _assert_serves(a, texts)
    fresh = DiskStore(tmp_path, "fp")
    assert fresh.duplicate_rows == 0 and len(_shard_names(fresh.folder)) == 1
    _assert_serves(fresh, texts)


def test_put_many_stores_only_keys_not_yet_stored_by_anyone(tmp_path):
    a = DiskStore(tmp_path, "fp")
    b = DiskStore(tmp_path, "fp")  # another process, opened before a wrote
    a.put_many("query", _texts(0, 10), _vectors(_texts(0, 10)))
    b.put_many("query", _texts(5, 15), _vectors(_texts(5, 15)))  # refreshes: writes 10..14 only
    b.put_many("query", _texts(0, 15), _vectors(_texts(0, 15)))  # nothing new: no shard
    shards = [np.load(p) for p in a.folder.glob(f"*{disk.KEYS}")]
    assert sorted(len(k) for k in shards) == [5, 10]
    fresh = DiskStore(tmp_path, "fp")
    assert fresh.duplicate_rows == 0 and len(fresh) == 15
    _assert_serves(fresh, _texts(0, 15))


def test_duplicates_are_compacted_merged_shard_first(tmp_path, monkeypatch):
    texts = _texts(0, 30)
    folder = tmp_path / "fp"
    # three shards sharing keys (written by racing writers) and one unrelated shard
    for i, chunk in enumerate([texts[0:12], texts[8:20], texts[18:25], texts[25:30]]):
        name = f"{i:032x}"
        keys = b"".join(disk._key("query", t) for t in chunk)
        atomic.save_npy(folder / f"{name}{disk.VECS}", _vectors(chunk))
        atomic.save_npy(
            folder / f"{name}{disk.KEYS}",
            np.frombuffer(keys, dtype=np.uint8).reshape(-1, 32),
        )
    order: list[str] = []
    real_unlink = Path.unlink

    def unlink(self: Path, missing_ok: bool = False) -> None:
        order.append(self.name)
        real_unlink(self, missing_ok=missing_ok)

    real_save = atomic.save_npy

    def save(path: Path, array: np.ndarray) -> None:
        order.append(f"write {path.name}")
        real_save(path, array)

    monkeypatch.setattr(Path, "unlink", unlink)
    monkeypatch.setattr(atomic, "save_npy", save)
    store = DiskStore(tmp_path, "fp")
    monkeypatch.undo()

    assert store.duplicate_rows == 0
    names = _shard_names(folder)
    assert len(names) == 2 and f"{3:032x}" in names  # the unrelated shard is left alone
    _assert_serves(DiskStore(tmp_path, "fp"), texts)
    writes = [i for i, step in enumerate(order) if step.startswith("write ")]
    deletes = [i for i, step in enumerate(order) if not step.startswith("write ")]
    assert writes and deletes and max(writes) < min(deletes)  # merged shard committed first
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


def test_stale_temp_and_orphan_files_are_removed_only_when_old(tmp_path):
    store = _store_with_shards(tmp_path, _texts(0, 5))
    folder = store.folder
    old_tmp = atomic.temp_path(folder / f"{'a' * 32}{disk.VECS}")
    new_tmp = atomic.temp_path(folder / f"{'b' * 32}{disk.VECS}")
    old_orphan = folder / f"{'c' * 32}{disk.VECS}"
    new_orphan = folder / f"{'d' * 32}{disk.VECS}"
    for p in (old_tmp, new_tmp, old_orphan, new_orphan):
        np.save(p.open("wb"), _vectors(["x"]))
    _age(old_tmp, atomic.STALE_AFTER_S + 60)
    _age(old_orphan, atomic.STALE_AFTER_S + 60)
    DiskStore(tmp_path, "fp")
    left = {p.name for p in folder.iterdir()}
    assert old_tmp.name not in left and old_orphan.name not in left
    assert new_tmp.name in left and new_orphan.name in left  # may be a live writer's
    _assert_serves(DiskStore(tmp_path, "fp"), _texts(0, 5))


def test_full_disk_while_writing_a_shard_leaves_the_store_as_it_was(tmp_path, monkeypatch):
    store = _store_with_shards(tmp_path, _texts(0, 5))
    before = sorted(p.name for p in store.folder.iterdir())
    real = atomic._open_temp
    calls = []

    def full(tmp: Path):
        f = real(tmp)
        calls.append(tmp)
        if len(calls) == 2:  # the keys file: vectors already renamed into place
            f.close()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))
        return f

    monkeypatch.setattr(atomic, "_open_temp", full)
    with pytest.raises(WriteError, match="No space left on device") as info:
        store.put_many("query", _texts(5, 10), _vectors(_texts(5, 10)))
    assert info.value.errno == errno.ENOSPC and info.value.path.name.endswith(disk.KEYS)
    monkeypatch.undo()
    # no keys file: the new shard does not exist, and its vectors file, which would take up
    # the full disk's room for an hour (STALE_AFTER_S), is gone too
    assert sorted(p.name for p in store.folder.iterdir()) == before
    fresh = DiskStore(tmp_path, "fp")
    assert len(fresh) == 5 and fresh.get_many("query", ["text 7"]) == [None]


def _writer(root: str, start: int, rounds: int, ready, go) -> None:
    """One of several processes writing one store at once (overlapping keys).

    While the others write and compact, every input this process stored so far must stay
    readable with its own vector, and whatever else it reads must be the right vector (an
    assertion error makes the exit code non-zero).
    """
    store = DiskStore(root, "fp")
    ready.set()
    go.wait()
    mine: list[str] = []
    for r in range(rounds):
        texts = _texts(start + r * 7, start + r * 7 + 20)
        store.put_many("query", texts, _vectors(texts))
        mine = sorted({*mine, *texts})
        _assert_serves(store, mine)  # nothing stored is lost or unreadable mid-race
        others = _texts(0, 200)
        got = store.get_many("query", others)  # read while others write and compact
        hits = [i for i, v in enumerate(got) if v is not None]
        np.testing.assert_array_equal(
            np.stack([got[i] for i in hits]), _vectors([others[i] for i in hits])
        )


def test_processes_writing_one_store_at_once_lose_nothing_and_leave_no_duplicates(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    readies, procs = [], []
    for start in (0, 3, 5):  # three writers on mostly the same keys
        ready = ctx.Event()
        p = ctx.Process(target=_writer, args=(str(tmp_path), start, 20, ready, go))
        p.start()
        readies.append(ready)
        procs.append(p)
    for ready in readies:
        assert ready.wait(60)
    go.set()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    every = sorted(set(_texts(0, 5 + 19 * 7 + 20)))
    store = DiskStore(tmp_path, "fp")  # the next run opens it: duplicates compacted
    assert store.duplicate_rows == 0
    assert len(store) == len(every)
    _assert_serves(store, every)
    rows = sum(len(np.load(p)) for p in store.folder.glob(f"*{disk.KEYS}"))
    assert rows == len(every)
    assert not [p for p in store.folder.iterdir() if atomic.is_temp_name(p.name)]
    # no shard was ever judged unreadable (a reader racing a writer or a compactor)
    assert not [p for p in store.folder.iterdir() if ".corrupt-" in p.name]


def test_presence_is_known_without_reading_and_sees_other_writers(tmp_path):
    store = _store_with_shards(tmp_path, _texts(0, 5))
    other = DiskStore(tmp_path, "fp")  # another process's view of the same store
    assert other.has_many("query", ["text 1", "text 9"]) == [True, False]
    store.put_many("query", _texts(9, 10), _vectors(_texts(9, 10)))
    assert other.has_many("query", ["text 9", "text 1"]) == [True, True]
    assert other.has_many("document", ["text 1"]) == [False]  # the side is part of the key


def _tree(root: Path) -> dict[str, tuple[bytes, float]]:
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime)
        for p in root.rglob("*")
        if p.is_file()
    }


def _non_finite(folder: Path, name: str, rows: slice, value: float) -> None:
    """Values no model gives, the file's format intact (a disk's bit flips, a hand's edit)."""
    path = folder / f"{name}{disk.VECS}"
    vectors = np.load(path)
    vectors[rows, 1] = value
    np.save(path, vectors)


@pytest.mark.parametrize("writable", [True, False])
def test_a_shard_holding_nan_inf_or_zero_vectors_is_damaged_when_they_are_read(
    tmp_path, caplog, writable
):
    # (they reached mteb before: a traceback from scikit-learn, or rankings scored silently)
    first, second = _texts(0, 10), _texts(10, 25)
    store = _store_with_shards(tmp_path, first)
    (bad,) = _shard_names(store.folder)
    store.put_many("query", second, _vectors(second))
    _non_finite(store.folder, bad, slice(3, 5), np.nan)
    _non_finite(store.folder, bad, slice(7, 8), -np.inf)
    zeroed = _texts(25, 30)  # all zero: a disk's zero-filled block (a score before, silently)
    before = set(_shard_names(store.folder))
    store.put_many("query", zeroed, _vectors(zeroed))
    (zero,) = set(_shard_names(store.folder)) - before
    path = store.folder / f"{zero}{disk.VECS}"
    vectors = np.load(path)
    vectors[2] = 0
    np.save(path, vectors)

    reader = DiskStore(tmp_path, "fp", writable=writable)  # (headers and sizes are right)
    with caplog.at_level(logging.WARNING, logger="qzhou_eval.store.disk"):
        got = reader.get_many("query", [first[0], second[0], first[4]])
    assert got[0] is None and got[2] is None  # a finite row of the shard is not served either
    np.testing.assert_array_equal(got[1], _vectors(second[:1])[0])
    (warning,) = [r.getMessage() for r in caplog.records]
    assert bad in warning and "1 of 2 vectors read are NaN, inf or all zero" in warning, warning
    assert reader.has_many("query", first) == [False] * len(first)  # to be encoded again
    _assert_serves(reader, second)
    moved = any(p.name.startswith(f"{bad}{disk.KEYS}.corrupt-") for p in reader.folder.iterdir())
    assert moved == writable and reader.damaged == ([] if writable else [bad])
    caplog.clear()
    reader.get_many("query", first)
    assert not caplog.records  # one warning
    assert reader.get_many("query", zeroed[1:3]) == [None, None]
    assert zero in caplog.text and "1 of 2 vectors read are NaN, inf or all zero" in caplog.text


def test_a_store_opened_read_only_serves_and_never_changes_the_folder(tmp_path, caplog):
    # What a writer would clean up, merge or move aside: an old temp file and an old orphan,
    # duplicate keys (texts 5-14 in a second shard), a damaged shard (texts 20-24).
    store = _store_with_shards(tmp_path, _texts(0, 10), _texts(10, 20))
    folder = store.folder
    kept = _shard_names(folder)
    store.put_many("query", _texts(20, 25), _vectors(_texts(20, 25)))
    (bad,) = set(_shard_names(folder)) - set(kept)
    _truncated_vecs(folder, bad)
    for p in (
        atomic.temp_path(folder / f"{'a' * 32}{disk.VECS}"),
        folder / f"{'c' * 32}{disk.VECS}",
    ):
        np.save(p.open("wb"), _vectors(["x"]))
        _age(p, atomic.STALE_AFTER_S + 60)
    keys = b"".join(disk._key("query", t) for t in _texts(5, 15))
    atomic.save_npy(folder / f"{'e' * 32}{disk.VECS}", _vectors(_texts(5, 15)))
    atomic.save_npy(
        folder / f"{'e' * 32}{disk.KEYS}", np.frombuffer(keys, dtype=np.uint8).reshape(-1, 32)
    )
    before = _tree(tmp_path)

    with caplog.at_level(logging.WARNING, logger="qzhou_eval.store.disk"):
        reader = DiskStore(tmp_path, "fp", writable=False)
    _assert_serves(reader, _texts(0, 20))
    assert reader.get_many("query", _texts(20, 25)) == [None] * 5  # not stored, for this run
    assert reader.duplicate_rows == 10  # read, not merged
    (warning,) = [r.getMessage() for r in caplog.records]
    assert bad in warning and "left in place" in warning and "count as not stored" in warning
    with pytest.raises(PermissionError):
        reader.put_many("query", ["new"], _vectors(["new"]))
    assert _tree(tmp_path) == before  # nothing created, deleted, moved or merged

    writer = DiskStore(tmp_path, "fp")  # a writer heals it all
    assert writer.duplicate_rows == 0 and len(_tree(tmp_path)) < len(before)


def test_a_read_only_store_of_a_configuration_never_stored_is_empty_and_creates_nothing(
    tmp_path,
):
    _store_with_shards(tmp_path, _texts(0, 3))
    before = sorted(tmp_path.rglob("*"))
    reader = DiskStore(tmp_path, "another fingerprint", writable=False)
    assert len(reader) == 0 and reader.get_many("query", _texts(0, 3)) == [None] * 3
    assert reader.size_bytes() == 0
    assert sorted(tmp_path.rglob("*")) == before


def test_a_shard_merged_away_between_listing_and_loading_is_read_from_its_merge(
    tmp_path, monkeypatch
):
    # Another process compacts while this one refreshes: a shard it listed is merged into a
    # new one (committed after the listing) and deleted before it is loaded. What it held is
    # looked for again, not reported as not stored (three writers at once, once in a CI run).
    reader = DiskStore(tmp_path, "fp")  # before the shard exists: it has to list it
    texts = _texts(0, 10)
    _store_with_shards(tmp_path, texts)
    (name,) = _shard_names(reader.folder)
    real, merged = disk.read_shard, []

    def merged_meanwhile(folder: Path, shard: str):
        if shard == name and not merged:
            merged.append(shard)
            other = DiskStore(tmp_path, "fp")  # the compactor: a new shard with its rows
            other._write_shard(real(folder, name).keys, _vectors(texts))
            for suffix in (disk.KEYS, disk.VECS):
                (folder / f"{name}{suffix}").unlink()
        return real(folder, shard)

    monkeypatch.setattr(disk, "read_shard", merged_meanwhile)
    _assert_serves(reader, texts)


def test_a_file_where_the_configurations_store_folder_belongs_is_one_line(tmp_path):
    (tmp_path / "fp").write_text("x")
    with pytest.raises(ConfigError) as info:
        DiskStore(tmp_path, "fp")
    assert str(info.value) == (
        f"{tmp_path / 'fp'} is a file where the store folder of this model configuration "
        "belongs (in runtime.store_dir): move it away"
    )
    with pytest.raises(ConfigError, match="is a file where the store folder"):
        DiskStore(tmp_path, "fp", writable=False)  # only read (runtime.encode=false): the same
    assert (tmp_path / "fp").read_text() == "x"


def test_a_shard_dropped_mid_read_does_not_shift_another_shards_rows(tmp_path):
    # The index is rebuilt when a damaged shard is dropped; an input held twice (two writers
    # raced; a read-only store does not compact) may then be indexed in its other shard, at
    # another row: each read goes by the lookup made before the drop.
    def shard(name: str, texts: list[str]) -> None:
        keys = np.stack([np.frombuffer(disk._key("query", t), np.uint8) for t in texts])
        atomic.save_npy(folder / f"{name}{disk.VECS}", _vectors(texts))
        atomic.save_npy(folder / f"{name}{disk.KEYS}", keys)

    folder = tmp_path / "fp"
    folder.mkdir()
    shard("b" * 32, _texts(0, 4))
    shard("c" * 32, [*_texts(10, 15), "twice"])  # "twice" at row 5
    _non_finite(folder, "b" * 32, slice(1, 2), np.nan)
    reader = DiskStore(tmp_path, "fp", writable=False)
    shard("a" * 32, ["twice", *_texts(20, 22)])  # another writer's, listed first from now on
    got = reader.get_many("query", ["text 1", "twice", "text 11"])
    assert got[0] is None
    np.testing.assert_array_equal(np.stack(got[1:]), _vectors(["twice", "text 11"]))


def test_a_folder_keeps_its_settings_and_one_renamed_by_hand_is_refused(tmp_path):
    # (a helper copied one configuration's folder under another's name: the run scored 73.17
    # from max_length=256 vectors and recorded max_length=16, whose own vectors score 69.51)
    from qzhou_eval.fingerprint import fingerprint

    settings = {"name": "org/m", "max_length": 256, "token_prepending": {"layers": (1, 7)}}
    name = fingerprint(settings, 20)
    store = DiskStore(tmp_path, name, settings=settings)
    store.put_many("query", _texts(0, 3), _vectors(_texts(0, 3)))
    kept = tmp_path / name / disk.SETTINGS
    assert fingerprint(json.loads(kept.read_text()), 20) == name  # read back, it hashes alike
    _assert_serves(DiskStore(tmp_path, name, writable=False), _texts(0, 3))

    other = fingerprint({**settings, "max_length": 16}, 20)
    shutil.copytree(tmp_path / name, tmp_path / other)
    for writable in (True, False):
        with pytest.raises(ConfigError) as e:
            DiskStore(tmp_path, other, writable=writable)
        assert str(e.value) == (
            f"{tmp_path / other} holds the vectors of another model configuration than its name "
            f"says (its {disk.SETTINGS} hashes to {name}: renamed or copied in by hand?): move "
            "it to that name, or out of runtime.store_dir"
        )
    for text, problem in (("", "does not parse (JSONDecodeError)"), ("[]", "holds a list")):
        (tmp_path / other / disk.SETTINGS).write_text(text)  # (a helper emptied it: served)
        with pytest.raises(ConfigError, match=re.escape(f"its {disk.SETTINGS} {problem}, so")):
            DiskStore(tmp_path, other)
    (tmp_path / other / disk.SETTINGS).unlink()  # filled before the file existed: at its word
    _assert_serves(DiskStore(tmp_path, other), _texts(0, 3))
