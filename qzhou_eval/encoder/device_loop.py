"""Run batches on one device and keep it busy: prefetch, async copies, OOM that learns.

The loop is the same in the main process (one device) and in each data-parallel worker:

- a prefetch thread collates the next batches (numpy, pinned memory on CUDA) while the device
  computes the current one;
- on CUDA, inputs are copied with ``non_blocking=True`` and the vectors come back through a
  pinned buffer and a CUDA event; the loop waits for batch k only after it has queued batch
  k + 1, so the only synchronisation per batch is the one that returns its vectors;
- after a CUDA out-of-memory error the batch is split, and every later batch above the size
  that failed is split before it runs (logged once per reduction), instead of failing and
  splitting again on every long batch.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Any, TypeVar

import numpy as np
import torch

from qzhou_eval.errors import DeviceError
from qzhou_eval.models.backbone import Backbone
from qzhou_eval.models.inputs import TokenBatch, to_device

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")

_DONE = object()


class prefetch(Iterator[T]):
    """Iterate ``items`` in a background thread, up to ``depth`` items ahead.

    An exception raised while producing is re-raised in the consumer; :meth:`close` (or garbage
    collection) stops the thread. :meth:`ready` says whether the next item is already there.
    """

    def __init__(self, items: Iterable[T], depth: int) -> None:
        self._buffer: queue.Queue[Any] = queue.Queue(maxsize=max(depth, 1))
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(
            target=self._produce, args=(iter(items),), name="qzhou-eval-prefetch", daemon=True
        )
        self._thread.start()

    def _produce(self, items: Iterator[T]) -> None:
        try:
            for item in items:
                if not self._put(item):
                    return
            self._put(_DONE)
        except BaseException as e:  # handed to the consumer
            self._put(e)

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def ready(self) -> bool:
        """True when the next item (or the end) can be taken without waiting."""
        return not self._buffer.empty()

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        item = self._buffer.get()
        if item is _DONE:
            self.close()
            raise StopIteration
        if isinstance(item, BaseException):
            self.close()
            raise item
        return item

    def close(self) -> None:
        self._finished = True
        self._stop.set()

    def __enter__(self) -> prefetch[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


class DeviceLoop:
    """Turns token batches into vectors on one backbone's device."""

    def __init__(self, backbone: Backbone, *, prefetch_depth: int = 2, in_flight: int = 2):
        self.backbone = backbone
        self.device = backbone.device
        self.cuda = self.device.type == "cuda"
        self.prefetch_depth = prefetch_depth
        self.in_flight = max(in_flight, 1)
        self.packing = bool(getattr(backbone, "packing", False))
        # Largest batch (in tokens, as _cost counts them) known to fit after an out-of-memory
        # error; None until one happens.
        self.token_limit: int | None = None

    @property
    def forward_calls(self) -> int:
        return int(getattr(self.backbone, "forward_calls", 0))

    def _cost(self, batch: TokenBatch) -> int:
        return batch.real_tokens if self.packing else batch.padded_tokens

    def run(self, batches: Iterable[tuple[K, TokenBatch]]) -> Iterator[tuple[K, np.ndarray]]:
        """Vectors (float32, CPU) of each batch, in the order the batches were given."""
        collate = self.backbone.collate
        prepared = prefetch(
            ((key, batch, collate(batch, pin=self.cuda)) for key, batch in batches),
            self.prefetch_depth,
        )
        pending: deque[tuple[K, torch.Tensor, Any]] = deque()
        try:
            yield from self._loop(prepared, pending)
        except BaseException:
            # A failed batch or Ctrl-C: hand over the batches already computed, then stop.
            while pending:
                with contextlib.suppress(Exception):
                    yield self._finish(pending.popleft())
            raise
        finally:
            prepared.close()

    def _loop(
        self, prepared: prefetch, pending: deque[tuple[K, torch.Tensor, Any]]
    ) -> Iterator[tuple[K, np.ndarray]]:
        for key, batch, inputs in prepared:
            if self.token_limit is not None and self._cost(batch) > self.token_limit:
                vectors = self._run_split(batch)
            else:
                try:
                    vectors = self.backbone.forward(to_device(inputs, self.device))
                except torch.cuda.OutOfMemoryError:
                    self._learn(self._cost(batch))
                    vectors = self._run_split(batch)
            pending.append(self._to_host(key, vectors))
            # Wait for a batch only once the next one is queued behind it; when no next batch is
            # ready (a worker between calls), return everything: nobody may wait on us.
            while pending and (len(pending) >= self.in_flight or not prepared.ready()):
                yield self._finish(pending.popleft())
        while pending:
            yield self._finish(pending.popleft())

    def _to_host(self, key: K, vectors: torch.Tensor) -> tuple[K, torch.Tensor, Any]:
        if not self.cuda or not vectors.is_cuda:
            return key, vectors, None
        host = torch.empty(vectors.shape, dtype=vectors.dtype, pin_memory=True)
        host.copy_(vectors, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        return key, host, event

    @staticmethod
    def _finish(item: tuple[K, torch.Tensor, Any]) -> tuple[K, np.ndarray]:
        key, host, event = item
        if event is not None:
            event.synchronize()
        return key, host.cpu().numpy()

    def _learn(self, failed_cost: int) -> None:
        torch.cuda.empty_cache()
        limit = max(failed_cost // 2, 1)
        if self.token_limit is None or limit < self.token_limit:
            self.token_limit = limit
            logger.warning(
                "out of memory on %s at %d tokens in one batch; batches above %d tokens are "
                "split for the rest of the run",
                self.device,
                failed_cost,
                limit,
            )

    def _run_split(self, batch: TokenBatch) -> torch.Tensor:
        """Run ``batch`` in pieces within the learned limit, learning again if a piece fails."""
        assert self.token_limit is not None
        rows = max(self.token_limit // max(batch.width, 1), 1)
        parts = []
        for part in batch.split(rows):
            run: Callable[[], torch.Tensor] = lambda p=part: self.backbone.forward(  # noqa: E731
                to_device(self.backbone.collate(p), self.device)
            )
            try:
                parts.append(run())
            except torch.cuda.OutOfMemoryError:
                if part.rows == 1:
                    torch.cuda.empty_cache()
                    raise DeviceError(
                        f"out of memory on {self.device} for one input of {part.real_tokens} "
                        "tokens; lower model.max_length or use a device with more memory"
                    ) from None
                self._learn(self._cost(part))
                parts.append(self._run_split(part))
        return torch.cat(parts)
