"""The embedder's store-only pass (the look-ahead's): what the store lacks, encoded once, stored
as it comes, without reading stored vectors back."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from qzhou_eval.encoder import embedder as embedder_module
from qzhou_eval.encoder.embedder import Embedder, MemoryStore
from qzhou_eval.models.inputs import TokenBatch


class ReusingEngine:
    """Vectors from token ids, written into one output buffer that every batch reuses (as an
    engine with pinned host buffers may do)."""

    packing = False

    def __init__(self) -> None:
        self.forward_calls = 0
        self._buffer = np.empty((64, 4), dtype=np.float32)

    def tokenize(self, texts: Sequence[str], spans=None) -> list[list[int]]:
        return [[ord(c) for c in t] or [0] for t in texts]

    def run(self, batches: Sequence[TokenBatch]) -> Iterator[tuple[int, np.ndarray]]:
        for number, batch in enumerate(batches):
            self.forward_calls += 1
            out = self._buffer[: len(batch.lengths)]
            start = 0
            for row, n in enumerate(batch.lengths):
                ids = batch.flat[start : start + n].astype(np.float32)
                out[row] = [ids.sum(), n, ids.max(), ids.min()]
                start += n
            yield number, out

    def close(self, force: bool = False) -> None:
        pass


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.vectors_read = 0

    def get_many(self, side, inputs):
        self.vectors_read += len(inputs)
        return super().get_many(side, inputs)


def _embedder(store: MemoryStore) -> Embedder:
    return Embedder(
        ReusingEngine, tokens_per_batch=40, max_batch_size=4, store=store, flush_every=5
    )


def test_fill_stores_what_is_missing_once_and_reads_no_vector(monkeypatch):
    monkeypatch.setattr(embedder_module, "FIRST_CHUNK", 3)  # several chunks, growing
    texts = [f"text number {i}" + "x" * (i % 7) for i in range(40)]
    reference = _embedder(MemoryStore()).embed(texts, "doc")

    store = CountingStore()
    first = _embedder(store)
    first.embed(texts[:10], "doc")  # some are stored already
    reads = store.vectors_read
    stored_events: list[int] = []
    first.on_stored = lambda: stored_events.append(1)
    assert first.fill([*texts, texts[0], texts[20]], "doc") == 30  # the rest, each once
    assert store.vectors_read == reads  # presence only: no stored vector read back
    assert first.encoded_inputs == 40 and len(stored_events) >= 30 // 5  # stored as it came
    assert first.fill(texts, "doc") == 0
    got = np.stack(store.get_many("doc", texts))
    np.testing.assert_array_equal(got, reference)  # no batch overwrote another's vectors


class RecordingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[list[str]] = []

    def put_many(self, side, inputs, vectors):
        self.writes.append(list(inputs))
        super().put_many(side, inputs, vectors)


def test_fill_stores_each_of_mteb_calls_as_its_last_chunk_ends(monkeypatch):
    # breaks: where one of mteb's encode calls (a corpus chunk) ends; the store gets all of it
    # then, not at the next flush of flush_every inputs
    monkeypatch.setattr(embedder_module, "FIRST_CHUNK", 3)
    texts = [f"text number {i}" + "x" * (i % 5) for i in range(40)]
    store = RecordingStore()
    embedder = Embedder(
        ReusingEngine, tokens_per_batch=40, max_batch_size=4, store=store, flush_every=1000
    )
    embedder.embed(texts[5:8], "doc")  # stored already
    store.writes.clear()
    assert embedder.fill([*texts, texts[3], texts[30]], "doc", breaks=[12, 25]) == 37
    written: set[str] = set()
    prefixes = []
    for batch in store.writes:
        written |= set(batch)
        prefixes.append(set(written))
    todo = [t for t in texts if t not in texts[5:8]]
    assert written == set(todo)
    assert set(todo[: 12 - 3]) in prefixes and set(todo[: 25 - 3]) in prefixes
