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

import bisect
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

import numpy as np

from qzhou_eval.encoder.batching import packed_batches, token_budget_batches
from qzhou_eval.encoder.device_loop import prefetch
from qzhou_eval.encoder.engines import Engine, LocalEngine
from qzhou_eval.errors import WriteError
from qzhou_eval.models.backbone import Backbone
from qzhou_eval.models.inputs import TokenBatch
from qzhou_eval.progress import progress

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
    """(start, stop) of the chunks of ``n`` texts: ``first``, then doubling up to ``largest``;
    no chunk spans one of ``breaks`` (a chunk is cut there and the next goes on doubling)."""
    bounds, start, size = [], 0, max(1, min(first, largest))
    for limit in [*sorted({b for b in breaks if 0 < b < n}), n]:
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

    def __init__(
        self, store: VectorStore, side: str, on_stored: Callable[[], None] | None = None
    ) -> None:
        self.store = store
        self.side = side
        self.on_stored = on_stored
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qzhou-eval-store")
        self._last: Future | None = None

    def submit(self, texts: list[str], vectors: np.ndarray) -> None:
        if self._last is not None and self._last.done():
            self._last.result()  # a failed write stops the run at the next flush
        self._last = self._pool.submit(self._write, texts, vectors)

    def _write(self, texts: list[str], vectors: np.ndarray) -> None:
        self.store.put_many(self.side, texts, vectors)
        if self.on_stored is not None:
            self.on_stored()

    def finish(self) -> None:
        """Wait for every write; re-raise the first failure."""
        self._pool.shutdown(wait=True)
        if self._last is not None:
            self._last.result()


class MissingInputs(Exception):
    """Inputs that are not in the store, asked of an embedder that may not encode."""

    def __init__(
        self, side: str, inputs: list[str], spans: list[tuple[int, int]] | None = None
    ) -> None:
        super().__init__(f"{len(inputs)} {side} input(s) are not in the embedding store")
        self.side, self.inputs, self.spans = side, inputs, spans

    def __reduce__(self):  # picklable: scoring processes hand it to the main process
        return (type(self), (self.side, self.inputs, self.spans))


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
            todo_spans = [span_of[x] for x in todo] if span_of is not None else None
            if not self.encode:
                raise MissingInputs(side, todo, todo_spans)
            vectors = self._run_model(todo, side, desc, todo_spans)
            assert vectors is not None
            found.update(zip(todo, vectors, strict=True))
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
        many: the look-ahead's call. Neither reads the stored vectors nor holds the new ones
        (they go to the store as they come), so one call may cover a whole corpus.

        ``breaks`` (sorted): positions in ``inputs`` where one of mteb's encode calls ends and
        the next begins (a retrieval corpus's chunks). Inputs are encoded in order, in
        length-sorted chunks that never span a break, and each call's last vectors go to the
        store as its last chunk ends: a scoring process waiting for that call goes on then,
        not once the chunk around the break is done."""
        first: dict[str, int] = {}  # input -> where it first occurs
        for i, x in enumerate(inputs):
            first.setdefault(x, i)
        unique = list(first)
        todo = [
            x for x, has in zip(unique, self.store.has_many(side, unique), strict=True) if not has
        ]
        self.stored_inputs += len(unique) - len(todo)
        if todo:
            todo_spans = [spans[first[x]] for x in todo] if spans is not None else None
            calls = [bisect.bisect_right(breaks, first[x]) for x in todo]  # nondecreasing
            cuts = [i for i in range(1, len(todo)) if calls[i] != calls[i - 1]]
            self._run_model(todo, side, desc, todo_spans, keep=False, breaks=cuts)
        return len(todo)

    def _batches(self, lengths: np.ndarray) -> list[list[int]]:
        if self.engine.packing:
            return packed_batches(lengths.tolist(), self.tokens_per_batch, self.max_batch_size)
        return token_budget_batches(
            lengths.tolist(), self.tokens_per_batch, self.max_batch_size, self.max_padding
        )

    def _run_model(
        self,
        texts: list[str],
        side: str,
        desc: str,
        spans: Sequence[tuple[int, int]] | None = None,
        keep: bool = True,
        breaks: Sequence[int] = (),
    ) -> np.ndarray | None:
        """The vectors of ``texts``, also handed to the store; ``keep=False``: only stored.
        ``breaks``: see :meth:`fill`."""
        started = time.perf_counter()
        engine = self.engine
        bounds = chunk_bounds(len(texts), FIRST_CHUNK, self.chunk_size, breaks)
        flush_at = set(breaks)

        def tokenize(bound: tuple[int, int]) -> _Chunk:
            start, stop = bound
            part_spans = spans[start:stop] if spans is not None else None
            return _Chunk(start, engine.tokenize(texts[start:stop], part_spans))

        out: np.ndarray | None = None
        # batches not handed to the store yet (copies: an engine may reuse its output buffer)
        pending: list[tuple[list[int], np.ndarray]] = []

        writer = _StoreWriter(self.store, side, self.on_stored)

        def flush() -> None:
            if pending:
                rows = [i for batch_rows, _ in pending for i in batch_rows]
                vectors = np.concatenate([v for _, v in pending])
                writer.submit([texts[i] for i in rows], vectors)
                pending.clear()

        try:
            with (
                progress(len(texts), desc, self.progress) as bar,
                prefetch(map(tokenize, bounds), depth=1) as chunks,
            ):
                for chunk in chunks:
                    batches = self._batches(chunk.lengths)
                    payload = [chunk.batch(b) for b in batches]
                    self.real_tokens += sum(b.real_tokens for b in payload)
                    self.padded_tokens += sum(
                        b.real_tokens if engine.packing else b.padded_tokens for b in payload
                    )
                    for number, vectors in engine.run(payload):
                        rows = [chunk.start + i for i in batches[number]]
                        if keep:
                            if out is None:
                                out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
                            out[rows] = vectors
                        pending.append((rows, vectors.astype(np.float32, copy=True)))
                        if sum(len(r) for r, _ in pending) >= self.flush_every:
                            flush()
                        bar.update(len(rows))
                    if chunk.start + len(chunk.lengths) in flush_at:
                        flush()  # one of mteb's encode calls is all done
        except BaseException as e:
            # Ctrl-C, a failed worker: store what was computed, so a rerun resumes from there
            # (not after a failed write: a full store cannot take more).
            if not isinstance(e, WriteError):
                with contextlib.suppress(Exception):
                    flush()
            with contextlib.suppress(Exception):
                writer.finish()
            raise
        finally:
            self.model_seconds += time.perf_counter() - started
        flush()
        writer.finish()
        assert out is not None or not keep
        self.encoded_inputs += len(texts)
        return out
