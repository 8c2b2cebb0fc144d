"""Exact model inputs -> raw vectors, fast: dedup, length sort, token-budget batches, memo/store.

The backbone loads lazily on the first input that is not already stored, so a rerun whose tasks
are all finished (or whose vectors are all stored) never loads the model.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from qzhou_eval.encoder.batching import token_budget_batches
from qzhou_eval.errors import WriteError
from qzhou_eval.models.backbone import Backbone

logger = logging.getLogger(__name__)


class VectorStore(Protocol):
    """Where computed vectors are kept between calls (memory, or disk for resumable runs)."""

    def get_many(self, side: str, inputs: Sequence[str]) -> list[np.ndarray | None]: ...

    def put_many(self, side: str, inputs: Sequence[str], vectors: np.ndarray) -> None: ...

    def clear(self) -> None:
        """Called after each task: drop what need not outlive it."""


class MemoryStore:
    """Vectors of the current task in memory: lets several MRL dims share one encoding pass."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], np.ndarray] = {}

    def get_many(self, side: str, inputs: Sequence[str]) -> list[np.ndarray | None]:
        return [self._data.get((side, x)) for x in inputs]

    def put_many(self, side: str, inputs: Sequence[str], vectors: np.ndarray) -> None:
        for x, v in zip(inputs, vectors, strict=True):
            self._data[(side, x)] = v

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


class Embedder:
    """Turns exact model inputs into raw (unnormalized, full-dimension) float32 vectors."""

    def __init__(
        self,
        backbone_factory: Callable[[], Backbone],
        *,
        tokens_per_batch: int,
        max_batch_size: int,
        store: VectorStore | None = None,
        progress: bool = True,
        flush_every: int = 4096,
    ) -> None:
        self._factory = backbone_factory
        self._backbone: Backbone | None = None
        self.tokens_per_batch = tokens_per_batch
        self.max_batch_size = max_batch_size
        self.store = store if store is not None else MemoryStore()
        self.progress = progress
        self.flush_every = flush_every
        self.encoded_inputs = 0  # inputs that went through the model (tests, benchmarks)
        self.model_seconds = 0.0  # time spent loading the model, tokenizing and encoding

    @property
    def loaded_backbone(self) -> Backbone | None:
        """The backbone if it was loaded (None when every vector came from the store)."""
        return self._backbone

    @property
    def backbone(self) -> Backbone:
        if self._backbone is None:
            self._backbone = self._factory()
        return self._backbone

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
        if todo:
            todo_spans = [span_of[x] for x in todo] if span_of is not None else None
            found.update(zip(todo, self._run_model(todo, side, desc, todo_spans), strict=True))
        return np.stack([found[x] for x in inputs]).astype(np.float32, copy=False)

    def _run_model(
        self,
        texts: list[str],
        side: str,
        desc: str,
        spans: Sequence[tuple[int, int]] | None = None,
    ) -> np.ndarray:
        """Encode ``texts``; hand finished vectors to the store every ``flush_every`` inputs, so a
        run killed mid-task resumes from there."""
        started = time.perf_counter()
        backbone = self.backbone
        ids = backbone.tokenize(texts, spans)
        lengths = [len(x) for x in ids]
        batches = token_budget_batches(lengths, self.tokens_per_batch, self.max_batch_size)
        out: np.ndarray | None = None
        pending: list[int] = []
        with tqdm(total=len(texts), desc=desc, disable=not self.progress, leave=False) as bar:
            try:
                for batch in batches:
                    vectors = self._forward_with_oom_split(backbone, [ids[i] for i in batch])
                    if out is None:
                        out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
                    out[batch] = vectors.numpy()
                    pending.extend(batch)
                    if len(pending) >= self.flush_every:
                        self._flush(side, texts, out, pending)
                    bar.update(len(batch))
            except BaseException as e:  # Ctrl-C, a failed batch: keep the vectors computed so far
                if out is not None and not isinstance(e, WriteError):  # (a full store cannot)
                    with contextlib.suppress(Exception):
                        self._flush(side, texts, out, pending)
                raise
        assert out is not None
        self._flush(side, texts, out, pending)
        self.encoded_inputs += len(texts)
        self.model_seconds += time.perf_counter() - started
        return out

    def _flush(self, side: str, texts: list[str], out: np.ndarray, pending: list[int]) -> None:
        if pending:
            self.store.put_many(side, [texts[i] for i in pending], out[pending])
            pending.clear()

    def _forward_with_oom_split(self, backbone: Backbone, ids: list[list[int]]) -> torch.Tensor:
        """Run one batch; on a CUDA out-of-memory error, split it in halves and go on."""
        try:
            return backbone.embed_ids(ids)
        except torch.cuda.OutOfMemoryError:
            if len(ids) == 1:
                raise
            torch.cuda.empty_cache()
            half = len(ids) // 2
            logger.warning("out of memory on a batch of %d; splitting it", len(ids))
            return torch.cat(
                [
                    self._forward_with_oom_split(backbone, ids[:half]),
                    self._forward_with_oom_split(backbone, ids[half:]),
                ]
            )
