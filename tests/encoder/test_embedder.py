"""The embedder's store-only pass (the look-ahead's): what the store lacks, encoded once, stored
as it comes, without reading stored vectors back."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from qzhou_eval.encoder import embedder as embedder_module
from qzhou_eval.encoder.embedder import Embedder, FillRequest, MemoryStore, Stopped
from qzhou_eval.errors import DataError, ModelOutputError
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


class CountingRuns(ReusingEngine):
    """Counts the engine streams started (one per ``run`` call)."""

    runs = 0

    def run(self, batches):
        CountingRuns.runs += 1
        return super().run(batches)


def test_fill_all_runs_every_request_in_one_stream_and_reports_each_once_stored(monkeypatch):
    monkeypatch.setattr(embedder_module, "FIRST_CHUNK", 3)
    monkeypatch.setattr(CountingRuns, "runs", 0)
    texts = [f"text number {i}" + "x" * (i % 5) for i in range(30)]
    reference = _embedder(MemoryStore()).embed(texts, "doc")
    store = MemoryStore()
    embedder = Embedder(
        CountingRuns, tokens_per_batch=40, max_batch_size=4, store=store, flush_every=1000
    )
    embedder.embed(texts[10:20], "doc")  # the second request is all stored already
    runs_before = CountingRuns.runs
    reported: list[tuple[str, int, bool]] = []

    def done(name: str, inputs: list[str]):
        # called once the request's vectors are all in the store
        return lambda n: reported.append((name, n, all(store.has_many("doc", inputs))))

    parts = {"a": texts[:10], "b": texts[10:20], "c": [*texts[20:], texts[0]]}
    embedder.fill_all(FillRequest(p, "doc", done=done(k, p)) for k, p in parts.items())
    assert CountingRuns.runs - runs_before == 1  # one stream: no drain between requests
    assert sorted(reported) == [("a", 10, True), ("b", 0, True), ("c", 10, True)]
    np.testing.assert_array_equal(np.stack(store.get_many("doc", texts)), reference)


def test_a_stream_hands_back_a_request_before_it_waits_for_the_next():
    # A lazy source that blocks (a run's next task not derived yet): what came before is stored
    # and reported first, even though the device loop queues batches ahead.
    from tests.encoder.test_device_loop import FakeBackbone

    class Tokenizing(FakeBackbone):
        def tokenize(self, texts, spans=None):
            return [[ord(c) for c in t] for t in texts]

    store = MemoryStore()
    embedder = Embedder(Tokenizing, tokens_per_batch=64, max_batch_size=4, store=store)
    first_done = threading.Event()

    def requests():
        yield FillRequest([f"first {i}" for i in range(9)], "doc", done=lambda n: first_done.set())
        assert first_done.wait(30), "the first request was held back while the source waited"
        yield FillRequest([f"second {i}" for i in range(5)], "doc")

    embedder.fill_all(requests())
    assert len(store) == 14


def test_a_stream_stopped_from_another_thread_stores_what_it_computed(monkeypatch):
    monkeypatch.setattr(embedder_module, "FIRST_CHUNK", 2)
    store = MemoryStore()
    embedder = Embedder(ReusingEngine, tokens_per_batch=8, max_batch_size=1, store=store)
    stop = threading.Event()
    stop.set()  # at the first batch
    texts = [f"t{i}" for i in range(20)]
    with pytest.raises(Stopped):
        embedder.fill_all([FillRequest(texts, "doc")], stop=stop)
    assert 0 < len(store) < len(texts)


class BatchSensitiveEngine(ReusingEngine):
    """As a GPU's bf16 kernels: a row's vector depends on the batch it ran in (its rows and its
    padded length), here in plain sight."""

    def run(self, batches: Sequence[TokenBatch]) -> Iterator[tuple[int, np.ndarray]]:
        for number, out in super().run(batches):
            yield number, out + np.float32(len(out) * 1000)  # the batch's rows


def _batch_sensitive(store: MemoryStore, encode: bool = True) -> Embedder:
    return Embedder(
        BatchSensitiveEngine,
        tokens_per_batch=40,
        max_batch_size=4,
        store=store,
        flush_every=5,
        encode=encode,
    )


def _store_holding(texts: list[str], reference: np.ndarray, keep: list[int]) -> MemoryStore:
    """A store that already holds some of ``texts`` (an interrupted attempt, other tasks)."""
    store = MemoryStore()
    store.put_many("doc", [texts[i] for i in keep], reference[keep])
    return store


def test_an_inputs_vector_does_not_depend_on_what_the_store_already_holds(monkeypatch):
    # A rerun after Ctrl-C finds part of a call stored; a task run alone finds inputs that other
    # tasks stored. The inputs left are batched as the whole call is, so each gets the vector a
    # run over an empty store gives it (the batches with nothing to encode do not run).
    monkeypatch.setattr(embedder_module, "FIRST_CHUNK", 3)
    texts = [f"text number {i}" + "x" * (i % 7) for i in range(40)]
    reference = _batch_sensitive(MemoryStore()).embed(texts, "doc")
    assert len(np.unique(reference[:, 0] // 1000)) > 1  # batches of several sizes
    for keep in ([0, 5, 6, 17, 30, 39], list(range(0, 40, 2)), list(range(13))):
        store = _store_holding(texts, reference, keep)
        embedder = _batch_sensitive(store)
        np.testing.assert_array_equal(embedder.embed(texts, "doc"), reference)
        assert embedder.encoded_inputs == 40 - len(keep)
        np.testing.assert_array_equal(np.stack(store.get_many("doc", texts)), reference)


def test_the_look_ahead_encodes_what_is_left_of_each_call_in_that_calls_batches(monkeypatch):
    # fill() with breaks (the look-ahead's form of several of mteb's calls) against the
    # sequential runner's embed() call by call; an input in two calls is the first one's
    monkeypatch.setattr(embedder_module, "FIRST_CHUNK", 3)
    texts = [f"text number {i}" + "x" * (i % 7) for i in range(40)]
    calls = [texts[:12], [*texts[12:25], texts[3]], [*texts[25:], texts[20], texts[30]]]
    sequential = _batch_sensitive(MemoryStore())
    for call in calls:
        sequential.embed(call, "doc")
    reference = np.stack(sequential.store.get_many("doc", texts))
    for keep in ([], [1, 2, 14, 26, 27], list(range(0, 40, 3))):
        store = _store_holding(texts, reference, keep)
        flat = [t for call in calls for t in call]
        breaks = [len(calls[0]), len(calls[0]) + len(calls[1])]
        assert _batch_sensitive(store).fill(flat, "doc", breaks=breaks) == 40 - len(keep)
        np.testing.assert_array_equal(np.stack(store.get_many("doc", texts)), reference)


def test_inputs_missing_from_a_read_only_embedder_come_with_their_whole_call():
    import pickle

    from qzhou_eval.encoder.embedder import MissingInputs

    texts = ["a", "bb", "a", "ccc", "dd"]
    store = _store_holding(["a", "ccc"], np.ones((2, 4), np.float32), [0, 1])
    with pytest.raises(MissingInputs) as caught:
        _batch_sensitive(store, encode=False).embed(texts, "doc", spans=[(0, 1)] * 5)
    e = pickle.loads(pickle.dumps(caught.value))  # as a scoring process hands it over
    assert (e.side, e.inputs, e.call) == ("doc", ["bb", "dd"], ["a", "bb", "ccc", "dd"])
    assert e.spans == [(0, 1)] * 2 and e.call_spans == [(0, 1)] * 4


class NanEngine(ReusingEngine):
    """ReusingEngine whose vector for one text is NaN (as a float16 model's that overflows), or
    ``VALUE``."""

    OVERFLOWS = "text 9 overflows!"
    VALUE = np.nan

    def run(self, batches: Sequence[TokenBatch]) -> Iterator[tuple[int, np.ndarray]]:
        for number, out in super().run(batches):
            out[out[:, 0] == sum(map(ord, self.OVERFLOWS))] = self.VALUE
            yield number, out


@pytest.mark.parametrize("value", [np.nan, np.inf, 0.0])
@pytest.mark.parametrize("call", ["embed", "fill"])
def test_nan_vectors_stop_the_run_with_one_line_and_are_never_stored(monkeypatch, call, value):
    # (stored, they reached mteb: scikit-learn's traceback, or rankings scored silently)
    monkeypatch.setattr(embedder_module, "FIRST_CHUNK", 4)
    monkeypatch.setattr(NanEngine, "VALUE", value)
    texts = [f"text {i:02d}" for i in range(12)]
    texts[9] = NanEngine.OVERFLOWS
    store = MemoryStore()
    embedder = Embedder(NanEngine, tokens_per_batch=40, max_batch_size=4, store=store)
    with pytest.raises(ModelOutputError) as e:
        getattr(embedder, call)(texts, "doc", desc="MyTask [doc]")
    assert re.fullmatch(
        r"the model returned NaN, inf or all-zero vectors for 1 of the \d inputs of a batch of "
        r"MyTask "
        r"\[doc\] \(the first: 'text 9 overflows!'\); none of them is stored\. Its numbers "
        r"overflow \(model\.dtype=float16 often does: try bfloat16 or float32\) or its "
        r"weights are damaged",
        str(e.value),
    ), e.value
    stored = store.has_many("doc", texts)
    assert not stored[9] and sum(stored) >= 4  # the batches before it are kept
    assert all(np.isfinite(v).all() for v in store.get_many("doc", texts) if v is not None)


class NoSpecialTokens(ReusingEngine):
    """A tokenizer that adds no special token: an empty text gives no token at all (Qwen's,
    Llama's without a BOS), as a recipe that keeps an empty text as it is passes it."""

    def tokenize(self, texts: Sequence[str], spans=None) -> list[list[int]]:
        return [[ord(c) for c in t] for t in texts]


@pytest.mark.parametrize("call", ["embed", "fill"])
def test_an_input_of_no_tokens_stops_the_run_with_one_line(monkeypatch, call):
    # (mean pooling gave a zero vector, called an overflow; last-token pooling read padding: a
    # wrong vector, stored; CLS pooling an IndexError)
    monkeypatch.setattr(embedder_module, "FIRST_CHUNK", 4)
    texts = [f"text {i:02d}" for i in range(12)]
    texts[9] = ""
    store = MemoryStore()
    embedder = Embedder(NoSpecialTokens, tokens_per_batch=40, max_batch_size=4, store=store)
    with pytest.raises(DataError) as e:
        getattr(embedder, call)(texts, "doc", desc="MyTask [doc]")
    assert str(e.value).startswith(
        "an input of MyTask [doc] gives no tokens ('': the tokenizer of model.path adds no "
        "special token to an empty text), so the model cannot embed it"
    )
    assert not store.has_many("doc", [""])[0]
