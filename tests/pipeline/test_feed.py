"""The encoding stream of a pipelined run: tasks put one after the other, each reported once
stored, the next taken while the one before is encoded."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from qzhou_eval.encoder.embedder import Embedder, MemoryStore
from qzhou_eval.errors import DeviceError
from qzhou_eval.pipeline.feed import EncodeFeed, FeedClosed
from qzhou_eval.pipeline.lookahead import SideInputs
from tests.encoder.test_embedder import ReusingEngine


class GatedEngine(ReusingEngine):
    """Encodes a batch only once the test opens the gate; fails on texts starting with '!'."""

    gate = threading.Event()
    runs = 0

    def tokenize(self, texts, spans=None):
        if any(t.startswith("!") for t in texts):
            raise DeviceError("the device failed (test)")
        return super().tokenize(texts, spans)

    def run(self, batches):
        GatedEngine.runs += 1
        for item in super().run(batches):
            assert GatedEngine.gate.wait(30)
            yield item


def _wanted(prefix: str, n: int) -> list[tuple[str, SideInputs]]:
    queries = [f"{prefix} query {i}" for i in range(n)]
    docs = [f"{prefix} document {i}" for i in range(2 * n)]
    return [
        ("query", SideInputs(queries, [(0, len(q)) for q in queries], [])),
        ("document", SideInputs(docs, [(0, len(d)) for d in docs], [n])),
    ]


@pytest.fixture
def gated(monkeypatch):
    gate = threading.Event()
    monkeypatch.setattr(GatedEngine, "gate", gate)
    monkeypatch.setattr(GatedEngine, "runs", 0)
    store = MemoryStore()
    embedder = Embedder(GatedEngine, tokens_per_batch=64, max_batch_size=4, store=store)
    return embedder, store, gate


def test_tasks_are_encoded_in_one_stream_and_each_reported_once_stored(gated):
    embedder, store, gate = gated
    feed = EncodeFeed(embedder)
    first = feed.put("A", _wanted("a", 6))
    assert feed.ready.result(timeout=30) is None  # taken: the next may be put
    second = feed.put("B", _wanted("b", 4))
    assert not first.done() and not second.done()  # nothing encoded while the gate is shut
    gate.set()
    first.result(timeout=30)
    assert all(store.has_many("document", [f"a document {i}" for i in range(12)]))
    second.result(timeout=30)
    again = feed.put("A", _wanted("a", 6))  # all stored: done without the engine
    again.result(timeout=30)
    feed.close()
    assert GatedEngine.runs == 1 and embedder.encoded_inputs == 18 + 12
    missing = feed.put("C", _wanted("c", 1))  # after the stream ended
    with pytest.raises(FeedClosed):
        missing.result(timeout=5)


def test_inputs_a_scoring_process_missed_go_through_the_same_stream(gated):
    embedder, store, gate = gated
    gate.set()
    feed = EncodeFeed(embedder)
    feed.put_missing("A", "query", ["late one", "late two"], None).result(timeout=30)
    feed.close()
    assert all(store.has_many("query", ["late one", "late two"]))
    assert np.stack(store.get_many("query", ["late one"])).shape == (1, 4)


def test_a_failed_stream_fails_every_task_still_waiting(gated):
    embedder, _, gate = gated
    gate.set()
    feed = EncodeFeed(embedder)
    failing = feed.put("A", [("query", SideInputs(["!bad"], [(0, 4)], []))])
    with pytest.raises(DeviceError, match="device failed"):
        failing.result(timeout=30)
    feed.ready.result(timeout=30)  # nobody is left waiting to put the next
    later = feed.put("B", _wanted("b", 2))
    with pytest.raises(DeviceError):
        later.result(timeout=5)
    feed.close()


def test_a_forced_close_stops_at_the_next_batch(gated):
    embedder, store, gate = gated
    feed = EncodeFeed(embedder)
    task = feed.put("A", _wanted("a", 40))
    feed.ready.result(timeout=30)
    closing = threading.Thread(target=feed.close, kwargs={"force": True})
    closing.start()
    deadline = time.monotonic() + 30
    while not feed._stop.is_set():  # the close has asked the stream to stop
        assert time.monotonic() < deadline
        time.sleep(0.01)
    gate.set()
    closing.join(30)
    assert not closing.is_alive()
    with pytest.raises(Exception):  # noqa: B017  (Stopped, from the stream's thread)
        task.result(timeout=5)
    assert 0 < len(store) < 120  # what was computed is stored


def test_calls_that_come_lazily_are_encoded_as_they_come(gated):
    embedder, store, gate = gated
    gate.set()
    second_derived = threading.Event()

    def derivation():  # a look-ahead still deriving its second call
        (query, document) = _wanted("a", 3)
        yield query
        assert second_derived.wait(30)
        yield document

    feed = EncodeFeed(embedder)
    task = feed.put("A", derivation())
    feed.ready.result(timeout=30)  # the stream is on it: the next task may be put
    deadline = time.monotonic() + 30
    while not all(store.has_many("query", [f"a query {i}" for i in range(3)])):
        assert time.monotonic() < deadline  # the first call is stored before the second exists
        time.sleep(0.01)
    assert not task.done()  # not before its last call is in
    second_derived.set()
    task.result(timeout=30)
    assert all(store.has_many("document", [f"a document {i}" for i in range(6)]))
    feed.put("B", iter(())).result(timeout=30)  # nothing derived: done all the same
    feed.close()
