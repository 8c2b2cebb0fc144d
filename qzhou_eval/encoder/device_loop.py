"""Run batches on one device and keep it busy: prefetch, async copies, OOM that learns.

The loop is the same in the main process (one device) and in each data-parallel worker:

- a prefetch thread collates the next batches (numpy, pinned memory on CUDA) while the device
  computes the current one;
- on CUDA, inputs are copied with ``non_blocking=True`` and the vectors come back through a
  pinned buffer and a CUDA event; the loop waits for batch k only after it has queued batch
  k + 1, so the only synchronisation per batch is the one that returns its vectors;
- after a CUDA out-of-memory error the batch is split, and every later batch above the size
  that failed is split before it runs (logged once per reduction), instead of failing and
  splitting again on every long batch. The recovery (``empty_cache`` and the retry) runs after
  the ``except`` block is left: inside it the exception's traceback still holds the failed
  forward's activations, which ``empty_cache`` then cannot free;
- every CUDA call names the loop's device: the device is selected (``torch.cuda.device``) around
  each forward and in the prefetch thread (the current device is per thread), and the copy-back
  event is recorded on that device's current stream. ``cuda:N`` with N >= 1 thus never reads a
  pinned buffer before its copy landed, and opens no context on cuda:0.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections import deque
from collections.abc import Hashable, Iterable, Iterator
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


def select_device(device: torch.device | str) -> None:
    """Make a CUDA device with an index this thread's current device (CUDA calls without a device,
    such as ``torch.cuda.Event().record()``, use it); nothing for other devices."""
    if str(device).startswith("cuda:"):
        torch.cuda.set_device(torch.device(device))


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

    def on_device(self) -> contextlib.AbstractContextManager[Any]:
        """The loop's CUDA device selected (the current device is per thread); a no-op elsewhere."""
        return torch.cuda.device(self.device) if self.cuda else contextlib.nullcontext()

    def _collated(
        self, batches: Iterable[tuple[K, TokenBatch]]
    ) -> Iterator[tuple[K, TokenBatch, Any]]:
        """Collated batches; runs in the prefetch thread, with the loop's device selected."""
        select_device(self.device)  # this thread's current device (pinned buffers)
        collate = self.backbone.collate
        for key, batch in batches:
            yield key, batch, collate(batch, pin=self.cuda)

    def run(self, batches: Iterable[tuple[K, TokenBatch]]) -> Iterator[tuple[K, np.ndarray]]:
        """Vectors (float32, CPU) of each batch, in the order the batches were given."""
        prepared = prefetch(self._collated(batches), self.prefetch_depth)
        pending: deque[tuple[K, torch.Tensor, Any]] = deque()
        error: BaseException | None = None
        try:
            yield from self._loop(prepared, pending)
        except GeneratorExit:  # the consumer stopped early: nobody wants the pending vectors
            raise
        except BaseException as e:  # a failed batch or Ctrl-C
            error = e
        finally:
            prepared.close()
        if error is None:
            return
        # Hand over the batches already computed, then stop. Outside the except block: a consumer
        # that closes the generator here gets a clean GeneratorExit.
        while pending:
            try:
                item = self._finish(pending.popleft())
            except Exception:
                continue
            yield item
        raise error

    def _loop(
        self, prepared: prefetch, pending: deque[tuple[K, torch.Tensor, Any]]
    ) -> Iterator[tuple[K, np.ndarray]]:
        for key, batch, inputs in prepared:
            with self.on_device():
                if self.token_limit is not None and self._cost(batch) > self.token_limit:
                    vectors = self._run_split(batch)
                else:
                    vectors = self._forward(inputs)
                    if vectors is None:  # out of memory: recover now that the except is left
                        self._learn(self._cost(batch))
                        vectors = self._run_split(batch)
                pending.append(self._to_host(key, vectors))
            # Wait for a batch only once the next one is queued behind it; when no next batch is
            # ready (a worker between calls), return everything: nobody may wait on us.
            while pending and (len(pending) >= self.in_flight or not prepared.ready()):
                yield self._finish(pending.popleft())
        while pending:
            yield self._finish(pending.popleft())

    def _forward(self, inputs: dict[str, Any]) -> torch.Tensor | None:
        """The batch's vectors, or None after a CUDA out-of-memory error.

        Nothing is done inside the ``except`` block: its traceback keeps the failed forward's
        frames, and with them its activations, alive until the block is left.
        """
        try:
            return self.backbone.forward(to_device(inputs, self.device))
        except torch.cuda.OutOfMemoryError:
            return None

    def _to_host(self, key: K, vectors: torch.Tensor) -> tuple[K, torch.Tensor, Any]:
        if not self.cuda or not vectors.is_cuda:
            return key, vectors, None
        host = torch.empty(vectors.shape, dtype=vectors.dtype, pin_memory=True)
        host.copy_(vectors, non_blocking=True)  # queued on the vectors' device's current stream
        event = torch.cuda.Event()
        event.record(torch.cuda.current_stream(self.device))  # that stream, not cuda:0's
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
            vectors = self._forward(self.backbone.collate(part))
            if vectors is None:  # recovered here, after the except block (see _forward)
                if part.rows == 1:
                    torch.cuda.empty_cache()
                    raise DeviceError(
                        f"out of memory on {self.device} for one input of {part.real_tokens} "
                        "tokens; lower model.max_length or use a device with more memory"
                    )
                self._learn(self._cost(part))
                vectors = self._run_split(part)
            parts.append(vectors)
        return torch.cat(parts)
