"""The devices' one stream in a pipelined run: each task's look-ahead, one after the other.

Encoding task by task, each an encode call of its own, drains the devices at every boundary:
the last batches of one task finish, its vectors are stored, then the next task's first chunk is
tokenized while the devices wait. The feed instead runs one :meth:`Embedder.fill_all` stream in
a thread of its own for the whole run, and the main process puts each task's inputs into it: the
next task's first chunk is tokenized and queued while the devices finish the one before.

Contract:

- :meth:`EncodeFeed.put` hands over one task's derived calls and returns a future done once
  all that the store lacked is stored, or failed with the stream's error. The calls may come
  lazily (a :class:`~qzhou_eval.pipeline.derivation.Derivation`): the stream encodes each as it
  comes, and the future waits for the last. Tasks are encoded in the order they are put;
  :meth:`EncodeFeed.put_missing` likewise for inputs a scoring process missed.
- :attr:`EncodeFeed.ready` is a future done once the stream has started on everything put so
  far (the devices are on its last task): the moment to put the next. So at most one task waits
  behind the one being encoded, and its inputs are the only ones held ahead.
- :meth:`EncodeFeed.close` waits for everything put; ``force=True`` (an error, Ctrl-C) stops at
  the next batch, after storing what was computed. A failed stream fails every future not done.
- The model is loaded by the stream's thread on the first input the store lacks (never when
  everything is stored), unless the run loaded it first (a first run, see
  :func:`qzhou_eval.pipeline.schedule.run_pipeline`).
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from qzhou_eval.encoder.embedder import Embedder, FillRequest

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from qzhou_eval.pipeline.lookahead import Call

_STOP = object()


class FeedClosed(RuntimeError):
    """Inputs put into a feed whose stream has ended."""


class EncodeFeed:
    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._waiting = 0  # groups put and not taken by the stream yet
        self._ready: Future[None] = Future()
        self._ready.set_result(None)
        self._open: set[Future[None]] = set()  # not done yet: failed if the stream fails
        self._ended: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="qzhou-eval-encode", daemon=True)
        self._thread.start()

    @property
    def ready(self) -> Future[None]:
        """Done once the stream has taken everything put so far."""
        return self._ready

    def put(self, task: str, calls: Iterable[Call]) -> Future[None]:
        """Encode into the store what ``task``'s derived calls lack (each of mteb's calls, or
        each side with its breaks). ``calls`` may be lazy and block (a
        :class:`~qzhou_eval.pipeline.derivation.Derivation`): the stream takes each call as it
        comes, and encodes the ones before meanwhile."""
        requests = (
            FillRequest(inputs, side, f"{task} [{side}]", spans, breaks)
            for side, (inputs, spans, breaks) in calls
        )
        return self._put(requests)

    def put_missing(
        self,
        task: str,
        side: str,
        inputs: Sequence[str],
        spans: Sequence[tuple[int, int]] | None,
    ) -> Future[None]:
        """Encode into the store the inputs of ``task`` that a scoring process missed:
        ``inputs`` are all those of the encode call that missed them (the store's are not
        encoded again, but batched with the others as that call's are). The stored ones are
        read, not just looked up: a damaged shard the process found is set aside here too."""
        return self._put([FillRequest(inputs, side, f"{task} [{side}]", spans, verify=True)])

    def _put(self, requests: Iterable[FillRequest]) -> Future[None]:
        future: Future[None] = Future()
        with self._lock:
            if self._ended is not None:
                future.set_exception(self._ended)  # how it ended: its error, or FeedClosed
                return future
            self._open.add(future)
            self._waiting += 1
            if self._ready.done():
                self._ready = Future()
        self._queue.put(self._group(requests, future))
        return future

    def _group(
        self, requests: Iterable[FillRequest], future: Future[None]
    ) -> Iterator[FillRequest]:
        """One put's requests as the stream takes them; ``future`` is done once the last one
        was taken and every one taken is stored (the store's writer thread calls ``done``)."""
        counts = {"taken": 0, "stored": 0, "ended": 0}

        def settled(key: str) -> None:
            with self._lock:
                counts[key] += 1
                if not counts["ended"] or counts["stored"] < counts["taken"]:
                    return
                if future not in self._open:  # the other thread saw it first
                    return
                self._open.discard(future)
            future.set_result(None)

        for request in requests:
            with self._lock:
                counts["taken"] += 1
            yield request._replace(done=lambda _: settled("stored"))
        settled("ended")

    def _requests(self) -> Iterator[FillRequest]:
        """The stream's source: blocks until a group is put; ends at close."""
        while (group := self._queue.get()) is not _STOP:
            with self._lock:
                self._waiting -= 1
                ready = None if self._waiting else self._ready
            if ready is not None and not ready.done():
                ready.set_result(None)
            yield from group

    def _run(self) -> None:
        error: BaseException | None = None
        try:
            self._embedder.fill_all(self._requests(), stop=self._stop)
        except BaseException as e:  # handed to whoever waits on a future
            error = e
        with self._lock:
            self._ended = error or FeedClosed("the encoding stream has ended")
            left, self._open = list(self._open), set()
            ready = self._ready
        for future in left:
            if not future.done():
                future.set_exception(self._ended)
        if not ready.done():
            ready.set_result(None)

    def close(self, force: bool = False, timeout: float | None = None) -> None:
        """Wait for everything put, then end the stream; ``force``: stop it at the next batch."""
        if force:
            self._stop.set()
        self._queue.put(_STOP)
        self._thread.join(timeout)
