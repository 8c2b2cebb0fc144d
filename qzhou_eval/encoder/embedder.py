"""Exact model inputs -> raw vectors, fast: dedup, store, length-sorted batches, overlap.

- Each distinct input goes through the model once per run (and once ever, with the disk store).
- The engine (one device in this process, or one worker process per device) loads lazily on the
  first input that is not already stored, so a rerun whose vectors are all stored never loads
  the model.
- Inputs are tokenized in chunks by a background thread while the previous chunk's batches run;
  each chunk is cut into length-sorted token-budget batches with bounded padding.
- Finished vectors go to the store every ``flush_every`` inputs from a background writer, so a run
  killed mid-task resumes from there; an interrupted or failed call still stores what it has.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any, NamedTuple, Protocol

import numpy as np

from qzhou_eval.encoder.batching import packed_batches, token_budget_batches
from qzhou_eval.encoder.device_loop import prefetch
from qzhou_eval.encoder.engines import Engine, LocalEngine
from qzhou_eval.errors import DataError, ModelOutputError, WriteError
from qzhou_eval.models.backbone import Backbone
from qzhou_eval.models.inputs import TokenBatch
from qzhou_eval.progress import progress
from qzhou_eval.store.disk import unusable_rows

logger = logging.getLogger(__name__)

# Texts tokenized at a time: the unit of overlap between tokenizing and encoding. Large enough
# that length-sorted batches within a chunk are as full as over all inputs, small enough that
# the token ids of one chunk stay a few hundred MB at most.
CHUNK_SIZE = 32768
# The first chunk of a call: the devices wait while it is tokenized (32,768 documents of 500
# tokens: about a minute on one core), so a call starts small and doubles each chunk up to
# CHUNK_SIZE, each chunk tokenized while the devices encode the one before.
FIRST_CHUNK = 256


def chunk_bounds(
    n: int, first: int, largest: int, breaks: Sequence[int] = ()
) -> list[tuple[int, int]]:
    """(start, stop) of the chunks of ``n`` texts: ``first``, then doubling up to ``largest``.

    ``breaks`` cut the texts into calls (mteb's encode calls, as the look-ahead derives them),
    each chunked as if it came alone: the doubling starts again at each break. A chunk's texts
    are batched among themselves, so a call gets the batches it would get on its own, whatever
    came before it: on a GPU, whose kernels round a row's vector differently in another batch,
    the look-ahead's vectors are then bit for bit those of the sequential runner.

    A call is chunked and batched over all its distinct inputs, the stored ones too, and only
    the batches with an input to encode run: an input's batch, and so its vector, is the same
    whatever the store holds (a rerun after Ctrl-C, a task run alone over a store that other
    tasks filled). A stored input in such a batch is encoded again and keeps its stored vector."""
    bounds, start = [], 0
    for limit in [*sorted({b for b in breaks if 0 < b < n}), n]:
        size = max(1, min(first, largest))
        while start < limit:
            stop = min(limit, start + size)
            bounds.append((start, stop))
            start = stop
            size = min(largest, 2 * size)
    return bounds


class VectorStore(Protocol):
    """Where computed vectors are kept between calls (memory, or disk for resumable runs)."""

    def get_many(self, side: str, inputs: Sequence[str]) -> list[np.ndarray | None]: ...

    def has_many(self, side: str, inputs: Sequence[str]) -> list[bool]:
        """Whether each input is stored (without reading its vector)."""
        ...

    def put_many(self, side: str, inputs: Sequence[str], vectors: np.ndarray) -> None: ...

    def clear(self) -> None:
        """Called after each task: drop what need not outlive it."""


class MemoryStore:
    """Vectors of the current task in memory: lets several MRL dims share one encoding pass."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], np.ndarray] = {}

    def get_many(self, side: str, inputs: Sequence[str]) -> list[np.ndarray | None]:
        return [self._data.get((side, x)) for x in inputs]

    def has_many(self, side: str, inputs: Sequence[str]) -> list[bool]:
        return [(side, x) in self._data for x in inputs]

    def put_many(self, side: str, inputs: Sequence[str], vectors: np.ndarray) -> None:
        for x, v in zip(inputs, vectors, strict=True):
            self._data[(side, x)] = v

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


class _Chunk:
    """Token ids of a run of consecutive texts, flat (int32) with offsets."""

    def __init__(self, start: int, ids: list[list[int]]) -> None:
        self.start = start
        self.lengths = np.fromiter((len(x) for x in ids), dtype=np.int32, count=len(ids))
        self.offsets = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum(self.lengths, out=self.offsets[1:])
        self.flat = np.fromiter(
            (t for x in ids for t in x), dtype=np.int32, count=int(self.offsets[-1])
        )

    def batch(self, rows: Sequence[int]) -> TokenBatch:
        pieces = [self.flat[self.offsets[i] : self.offsets[i + 1]] for i in rows]
        flat = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int32)
        return TokenBatch(flat, self.lengths[list(rows)])


class _StoreWriter:
    """Hands vectors to the store from one background thread, in order."""

    def __init__(self, store: VectorStore, on_stored: Callable[[], None] | None = None) -> None:
        self.store = store
        self.on_stored = on_stored
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qzhou-eval-store")
        self._last: Future | None = None
        self._lock = threading.Lock()

    def submit(self, side: str, texts: list[str], vectors: np.ndarray) -> None:
        self._enqueue(self._write, side, texts, vectors)

    def then(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` in the writer's thread once every write submitted before is done."""
        self._enqueue(fn)

    def _enqueue(self, fn: Callable[..., None], *args: object) -> None:
        with self._lock:  # the stream's threads both enqueue
            if self._last is not None and self._last.done():
                self._last.result()  # a failed write stops the run at the next flush
            self._last = self._pool.submit(self._after_last, self._last, fn, *args)

    @staticmethod
    def _after_last(last: Future | None, fn: Callable[..., None], *args: object) -> None:
        if last is not None:
            last.result()  # nothing after a failed write
        fn(*args)

    def _write(self, side: str, texts: list[str], vectors: np.ndarray) -> None:
        self.store.put_many(side, texts, vectors)
        if self.on_stored is not None:
            self.on_stored()

    def finish(self) -> None:
        """Wait for every write; re-raise the first failure."""
        self._pool.shutdown(wait=True)
        if self._last is not None:
            self._last.result()


def unusable(call: _Chunked, rows: Sequence[int], bad: np.ndarray) -> ModelOutputError:
    """The error for a batch whose vectors include some no score can use (``bad``: per row)."""
    first = call.texts[rows[int(np.argmax(bad))]]
    shown = first if len(first) <= 60 else first[:57] + "..."
    return ModelOutputError(
        f"the model returned NaN, inf or all-zero vectors for {int(bad.sum())} of the "
        f"{len(rows)} inputs of a batch of {call.desc} (the first: {shown!r}); none of them "
        "is stored. Its numbers overflow (model.dtype=float16 often does: try bfloat16 or "
        "float32) or its weights are damaged"
    )


def no_tokens(call: _Chunked, text: str) -> DataError:
    """The error for an input the tokenizer turns into no token at all: no forward can give it
    a vector (mean pooling divides by zero tokens; last-token or CLS pooling reads padding)."""
    return DataError(
        f"an input of {call.desc} gives no tokens ({text!r}: the tokenizer of model.path adds "
        "no special token to an empty text), so the model cannot embed it: use a model whose "
        "tokenizer adds one (a BOS, CLS or EOS token), or a recipe that adds text to every input"
    )


class FillRequest(NamedTuple):
    """Inputs of one side to encode into the store (see :meth:`Embedder.fill_all`)."""

    inputs: Sequence[str]
    side: str
    desc: str = "encode"
    spans: Sequence[tuple[int, int]] | None = None
    breaks: Sequence[int] = ()
    # called with how many inputs were encoded, once all of them are in the store
    done: Callable[[int], None] | None = None
    # read the vectors the store holds (as a scoring process does, which then finds a damaged
    # shard and misses them), not just look up their keys
    verify: bool = False


class Stopped(Exception):
    """A stream was stopped from another thread (see :meth:`Embedder.fill_all`)."""


class _Chunked:
    """One call's texts on their way through the model: the chunks cut so far and their batches
    not back yet. The producer (the engine's feeding thread) writes what it creates before it
    hands a batch over; the consumer (the caller's thread) then owns the counts.

    ``texts`` are all the call's distinct inputs, ``needed`` marks those to encode (the others
    are stored, or on their way): the chunks and batches are cut over all of them, whatever the
    store holds, and only the batches with a needed input run (see :func:`chunk_bounds`)."""

    def __init__(
        self,
        texts: list[str],
        needed: np.ndarray,
        side: str,
        desc: str,
        spans: Sequence[tuple[int, int]] | None,
        breaks: Sequence[int],
        keep: bool,
        done: Callable[[int], None] | None,
    ) -> None:
        self.texts, self.side, self.desc, self.spans = texts, side, desc, spans
        self.needed = needed
        self.count = int(needed.sum())  # inputs to encode
        self.breaks, self.keep, self.done = breaks, keep, done
        self.out: np.ndarray | None = None  # (keep) the needed inputs' vectors, in call order
        # batches not handed to the store yet (copies: an engine may reuse its output buffer)
        self.pending: list[tuple[list[int], np.ndarray]] = []
        self.cut = 0  # chunks cut into batches (by the producer)
        self.chunks: int | None = None  # all of them: set by the producer with the last one
        self.chunks_done = 0  # chunks whose vectors are all back (by the consumer)
        self.bar: Any = None
        self.complete = False  # all of it stored or on its way (set once, under a lock)
        self.closing = contextlib.ExitStack()  # its progress bar, closed when it is done


class _Cut(NamedTuple):
    call: _Chunked
    end: int  # where the chunk ends in the call's texts
    rows: list[int]  # the batch's rows in the call's texts
    left: list[int]  # [batches of the chunk not back yet], shared by its batches


class MissingInputs(Exception):
    """Inputs that are not in the store, asked of an embedder that may not encode.

    ``inputs`` (``spans``): those not stored; ``call`` (``call_spans``): every distinct input of
    the encode call that asked for them, which whoever encodes them batches together, as the
    call would have been (see :func:`chunk_bounds`)."""

    def __init__(
        self,
        side: str,
        inputs: list[str],
        spans: list[tuple[int, int]] | None = None,
        call: list[str] | None = None,
        call_spans: list[tuple[int, int]] | None = None,
    ) -> None:
        super().__init__(f"{len(inputs)} {side} input(s) are not in the embedding store")
        self.side, self.inputs, self.spans = side, inputs, spans
        self.call, self.call_spans = (inputs, spans) if call is None else (call, call_spans)

    def __reduce__(self):  # picklable: scoring processes hand it to the main process
        return (type(self), (self.side, self.inputs, self.spans, self.call, self.call_spans))


class Embedder:
    """Turns exact model inputs into raw (unnormalized, full-dimension) float32 vectors."""

    def __init__(
        self,
        engine_factory: Callable[[], Engine | Backbone],
        *,
        tokens_per_batch: int,
        max_batch_size: int,
        max_padding: float | None = None,
        store: VectorStore | None = None,
        progress: bool = True,
        flush_every: int = 4096,
        chunk_size: int = CHUNK_SIZE,
        encode: bool = True,
    ) -> None:
        """``engine_factory`` builds an :class:`Engine`, or a backbone to run in this process.

        ``max_padding``: cut batches so that padding stays within that fraction of each batch
        (see :func:`token_budget_batches`); None = token budget and row limit only.
        ``encode=False``: vectors come from the store only; an input that is not stored raises
        :class:`MissingInputs` (the model is never loaded), unless :attr:`wait_for_inputs` is
        set: a callable that blocks until another process may have stored more (True: look
        again) or will store no more (False: raise).
        """
        self._factory = engine_factory
        self._engine: Engine | None = None
        self._closed_forward_calls = 0
        self.tokens_per_batch = tokens_per_batch
        self.max_batch_size = max_batch_size
        self.max_padding = max_padding
        self.store = store if store is not None else MemoryStore()
        self.progress = progress
        self.flush_every = flush_every
        self.chunk_size = chunk_size
        self.encoded_inputs = 0  # inputs that went through the model (tests, benchmarks)
        self.stored_inputs = 0  # distinct inputs of each call found in the store (or waited for)
        self.model_seconds = 0.0  # time spent loading the model, tokenizing and encoding
        self.real_tokens = 0  # tokens of the encoded inputs
        self.padded_tokens = 0  # tokens their batches cost once padded (== real when packing)
        self.encode = encode
        self.asked_inputs = 0  # distinct inputs asked for per call, summed (look-ahead coverage)
        self.wait_for_inputs: Callable[[], bool] | None = None
        # called (from the store's writer thread) each time encoded vectors reach the store
        self.on_stored: Callable[[], None] | None = None
        self.waits = 0  # times wait_for_inputs returned True (inputs were on their way)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            built = self._factory()
            self._engine = built if hasattr(built, "run") else LocalEngine(built)  # type: ignore[arg-type]
        return self._engine

    def load(self) -> None:
        """Load the model (build the engine) now, rather than at the first input the store lacks:
        for a run that will surely encode, in the main thread (where Ctrl-C stops it between two
        of its steps) while another thread loads the first task's data."""
        started = time.perf_counter()
        self.engine  # noqa: B018  (built on first access)
        self.model_seconds += time.perf_counter() - started

    @property
    def loaded_backbone(self) -> Backbone | None:
        """The in-process backbone if it was loaded (None when every vector came from the store
        or the model runs in worker processes)."""
        return getattr(self._engine, "backbone", None)

    @property
    def forward_calls(self) -> int:
        """Forward passes so far, over every engine this embedder has had."""
        live = self._engine.forward_calls if self._engine is not None else 0
        return self._closed_forward_calls + live

    def close(self, force: bool = False) -> None:
        """Stop the engine's worker processes, if any (``force``: now, without waiting for queued
        batches); the embedder can be used again after."""
        if self._engine is not None:
            engine, self._engine = self._engine, None
            self._closed_forward_calls += engine.forward_calls
            engine.close(force=force)

    def embed(
        self,
        inputs: Sequence[str],
        side: str,
        desc: str = "encode",
        spans: Sequence[tuple[int, int]] | None = None,
    ) -> np.ndarray:
        """Vectors for ``inputs`` in order; each distinct input goes through the model once.

        ``spans``: character span of the task text inside each input (for inner truncation).
        """
        if not inputs:
            return np.zeros((0, 0), dtype=np.float32)
        span_of = dict(zip(inputs, spans, strict=True)) if spans is not None else None
        unique = list(dict.fromkeys(inputs))
        found = dict(zip(unique, self.store.get_many(side, unique), strict=True))
        todo = [x for x in unique if found[x] is None]
        if not self.encode:
            while todo and self.wait_for_inputs is not None and self.wait_for_inputs():
                self.waits += 1
                found.update(zip(todo, self.store.get_many(side, todo), strict=True))
                todo = [x for x in todo if found[x] is None]
        self.asked_inputs += len(unique)
        self.stored_inputs += len(unique) - len(todo)
        if todo:
            call_spans = [span_of[x] for x in unique] if span_of is not None else None
            if not self.encode:
                todo_spans = [span_of[x] for x in todo] if span_of is not None else None
                raise MissingInputs(side, todo, todo_spans, unique, call_spans)
            missing = set(todo)
            needed = np.fromiter((x in missing for x in unique), dtype=bool, count=len(unique))
            vectors = self._run_model(unique, needed, side, desc, call_spans)
            found.update((x, vectors[i]) for i, x in enumerate(unique) if needed[i])
        return np.stack([found[x] for x in inputs]).astype(np.float32, copy=False)

    def fill(
        self,
        inputs: Sequence[str],
        side: str,
        desc: str = "encode",
        spans: Sequence[tuple[int, int]] | None = None,
        breaks: Sequence[int] = (),
    ) -> int:
        """Encode into the store the distinct ``inputs`` it lacks, in one pass, and return how
        many: :meth:`fill_all` for one request."""
        encoded: list[int] = []
        self.fill_all([FillRequest(inputs, side, desc, spans, breaks, encoded.append)])
        return encoded[0]

    def fill_all(
        self, requests: Iterable[FillRequest], stop: threading.Event | None = None
    ) -> None:
        """Encode into the store what each request's distinct inputs lack, the requests one
        after the other in one stream of batches: the next request's first chunk is tokenized
        and queued while the devices finish the last one's, so a stream of requests (a run's
        look-ahead, task after task) never leaves the devices idle between them. ``requests``
        may be lazy and block (the stream then waits, and hands back all it has first); each
        request's ``done`` is called once all its vectors are stored. Neither reads the stored
        vectors nor holds the new ones, so one request may cover a whole corpus.

        ``breaks`` (sorted): positions in ``inputs`` where one of mteb's encode calls ends and
        the next begins (a retrieval corpus's chunks). Inputs are encoded in order, in
        length-sorted chunks that never span a break, and each call's last vectors go to the
        store as its last chunk ends: a scoring process waiting for that call goes on then,
        not once the chunk around the break is done.

        ``stop``: set from another thread to end the stream at the next batch (raises
        :class:`Stopped`, after storing what was computed)."""
        on_the_way: set[tuple[str, str]] = set()  # (side, input) taken, not stored yet
        calls = (self._fill_call(r, on_the_way) for r in requests)
        self._stream(calls, stop, on_the_way)

    def _fill_call(self, request: FillRequest, on_the_way: set[tuple[str, str]]) -> _Chunked:
        """A request as a call of the stream: each of its encode calls (cut at ``breaks``) as
        the sequential runner's embedder gets it, its distinct inputs in order, one after the
        other. To encode: the inputs the store lacks, once each, less those an earlier call of
        the stream is encoding (stored before this one is reported: calls are reported in
        order)."""
        inputs, side, desc, spans, breaks, done, verify = request
        texts: list[str] = []
        where: list[int] = []  # each text's position in ``inputs``
        cuts: list[int] = []
        limits = sorted({b for b in breaks if 0 < b < len(inputs)})
        for begin, end in zip([0, *limits], [*limits, len(inputs)], strict=True):
            first: dict[str, int] = {}  # the call's distinct inputs -> where each first occurs
            for i in range(begin, end):
                first.setdefault(inputs[i], i)
            if texts:
                cuts.append(len(texts))
            texts.extend(first)
            where.extend(first.values())
        unique = list(dict.fromkeys(texts))
        # on the way first: one leaves that set only once it is stored
        fresh = [x for x in unique if (side, x) not in on_the_way]
        if verify:
            stored = [v is not None for v in self.store.get_many(side, fresh)]
        else:
            stored = self.store.has_many(side, fresh)
        todo = {x for x, has in zip(fresh, stored, strict=True) if not has}
        on_the_way.update((side, x) for x in todo)
        self.stored_inputs += len(unique) - len(todo)
        needed = np.zeros(len(texts), dtype=bool)
        pending = set(todo)
        for i, x in enumerate(texts):
            if x in pending:  # its first occurrence (a later call finds it stored)
                needed[i] = True
                pending.discard(x)
        call_spans = [spans[i] for i in where] if spans is not None else None
        return _Chunked(texts, needed, side, desc, call_spans, cuts, keep=False, done=done)

    def _batches(self, lengths: np.ndarray) -> list[list[int]]:
        if self.engine.packing:
            return packed_batches(lengths.tolist(), self.tokens_per_batch, self.max_batch_size)
        return token_budget_batches(
            lengths.tolist(), self.tokens_per_batch, self.max_batch_size, self.max_padding
        )

    def _run_model(
        self,
        texts: list[str],
        needed: np.ndarray,
        side: str,
        desc: str,
        spans: Sequence[tuple[int, int]] | None = None,
    ) -> np.ndarray:
        """The vectors of the ``needed`` ones of ``texts`` (a call's distinct inputs), at their
        rows (the others' rows are undefined), also handed to the store."""
        call = _Chunked(texts, needed, side, desc, spans, (), keep=True, done=None)
        self._stream([call])
        assert call.out is not None
        return call.out

    def _stream(
        self,
        calls: Iterable[_Chunked],
        stop: threading.Event | None = None,
        on_the_way: set[tuple[str, str]] | None = None,
    ) -> None:
        """Every call's texts through the model in one engine stream (see :meth:`fill_all`).

        Three threads: the tokenizer runs one chunk ahead (:func:`prefetch`), the engine's
        feeding thread cuts each chunk into length-sorted batches as it needs them, and this
        one takes the vectors back, keeps them (``keep``) and hands them to the store: every
        ``flush_every`` inputs, at each break, and at the end of each call, after which the
        call's ``done`` runs in the store's writer thread. Calls are reported in the order they
        came, a call with nothing to encode too (after what is on its way); the model is loaded
        (in this thread) by the first call that has something. ``on_the_way``: the (side, input)
        pairs of :meth:`fill_all`'s calls not stored yet, each removed once it is."""
        started = last_done = time.perf_counter()
        waited = 0.0  # seconds with no call underway, waiting for the next: not model time
        taken, finished = [0], [0]  # calls taken (the tokenizer's count) and done (this thread's)
        remaining = iter(calls)
        writer: _StoreWriter | None = None
        unreported: deque[_Chunked] = deque()  # calls taken, in order, not reported yet
        reporting = threading.Lock()

        def report(call: _Chunked) -> None:
            """``call`` is all stored (or on its way to the store): report it, and every call
            after it that is, once those before it are (from either thread)."""
            with reporting:
                call.complete = True
                if not call.count:  # nothing to encode: in line all the same
                    unreported.append(call)
                ready = []
                while unreported and unreported[0].complete:
                    ready.append(unreported.popleft())
                for c in ready:
                    if c.done is None:
                        continue
                    if writer is None:  # nothing written by this stream yet
                        c.done(c.count)
                    else:  # after the writes before it
                        writer.then(partial(c.done, c.count))

        def next_call() -> _Chunked | None:
            nonlocal waited
            while True:
                asked = time.perf_counter()
                call = next(remaining, None)
                if taken[0] == finished[0]:
                    waited += time.perf_counter() - max(asked, last_done)
                if call is None:
                    return None
                if call.count:
                    with reporting:
                        unreported.append(call)
                    taken[0] += 1
                    return call
                report(call)  # everything stored, or on its way

        first = next_call()
        if first is None:
            return
        engine = self.engine
        writer = _StoreWriter(self.store, self.on_stored)
        assert writer is not None  # (for the type checker: report reads it from a closure)
        cuts: dict[int, _Cut] = {}  # batch number in the stream -> where its vectors go

        def chunks() -> Iterator[tuple[_Chunked, _Chunk, bool]]:
            """The tokenizer's thread."""
            call = first
            while call is not None:
                bounds = chunk_bounds(len(call.texts), FIRST_CHUNK, self.chunk_size, call.breaks)
                # (a chunk with nothing to encode is not even tokenized)
                bounds = [(b, e) for b, e in bounds if call.needed[b:e].any()]
                for k, (begin, end) in enumerate(bounds):
                    part = call.spans[begin:end] if call.spans is not None else None
                    ids = engine.tokenize(call.texts[begin:end], part)
                    empty = next((i for i, x in enumerate(ids) if not len(x)), None)
                    if empty is not None:
                        raise no_tokens(call, call.texts[begin + empty])
                    yield call, _Chunk(begin, ids), k == len(bounds) - 1
                call = next_call()

        def batches(tokenized: Iterator[tuple[_Chunked, _Chunk, bool]]) -> Iterator[TokenBatch]:
            """The engine's feeding thread: each chunk cut into batches as they are needed."""
            number = 0
            for call, chunk, last in tokenized:
                # the chunk's batches as if it were all to encode; those with nothing to encode
                # are left out, so a needed input's batch never depends on what is stored
                needed = call.needed[chunk.start : chunk.start + len(chunk.lengths)]
                rows = [r for r in self._batches(chunk.lengths) if needed[r].any()]
                payload = [chunk.batch(r) for r in rows]
                self.real_tokens += sum(b.real_tokens for b in payload)
                self.padded_tokens += sum(
                    b.real_tokens if engine.packing else b.padded_tokens for b in payload
                )
                left = [len(rows)]
                end = chunk.start + len(chunk.lengths)
                for r in rows:  # registered before the engine can hand back their vectors
                    cuts[number] = _Cut(call, end, [chunk.start + i for i in r], left)
                    number += 1
                call.cut += 1
                if last:
                    call.chunks = call.cut
                yield from payload

        def flush(call: _Chunked) -> None:
            if call.pending:
                rows = [i for batch_rows, _ in call.pending for i in batch_rows]
                vectors = np.concatenate([v for _, v in call.pending])
                texts = [call.texts[i] for i in rows]
                writer.submit(call.side, texts, vectors)
                if on_the_way is not None:
                    writer.then(
                        partial(on_the_way.difference_update, [(call.side, t) for t in texts])
                    )
                call.pending.clear()

        underway: dict[int, _Chunked] = {}  # calls with vectors back, not done yet

        def take(number: int, vectors: np.ndarray) -> None:
            nonlocal last_done
            call, end, rows, left = cuts.pop(number)
            bad = unusable_rows(vectors)
            if bad.any():
                raise unusable(call, rows, bad)
            if id(call) not in underway:
                underway[id(call)] = call
                call.bar = call.closing.enter_context(
                    progress(call.count, call.desc, self.progress)
                )
            wanted = call.needed[rows]
            if not wanted.all():  # the batch's stored inputs keep their stored vectors
                rows = [i for i, w in zip(rows, wanted, strict=True) if w]
                vectors = vectors[wanted]
            if call.keep:
                if call.out is None:
                    call.out = np.empty((len(call.texts), vectors.shape[1]), np.float32)
                call.out[rows] = vectors
            call.pending.append((rows, vectors.astype(np.float32, copy=True)))
            if sum(len(r) for r, _ in call.pending) >= self.flush_every:
                flush(call)
            call.bar.update(len(rows))
            left[0] -= 1
            if left[0]:
                return
            call.chunks_done += 1
            if call.chunks_done == call.chunks:  # the whole call is back
                flush(call)
                call.closing.close()
                del underway[id(call)]
                self.encoded_inputs += call.count
                last_done = time.perf_counter()
                finished[0] += 1
                report(call)
            elif end in call.breaks:
                flush(call)  # one of mteb's encode calls is all done

        try:
            with prefetch(chunks(), depth=1) as tokenized:
                for number, vectors in engine.run(batches(tokenized)):
                    take(number, vectors)
                    if stop is not None and stop.is_set():
                        raise Stopped
        except BaseException as e:
            # Ctrl-C, a failed worker: store what was computed, so a rerun resumes from there
            # (not after a failed write: a full store cannot take more).
            if not isinstance(e, WriteError):
                for call in underway.values():
                    with contextlib.suppress(Exception):
                        flush(call)
            with contextlib.suppress(Exception):
                writer.finish()
            for call in underway.values():
                call.closing.close()
            raise
        finally:
            self.model_seconds += time.perf_counter() - started - waited
        writer.finish()
