"""One task's look-ahead, derived call by call in a thread of its own.

Deriving a task's inputs means loading its data and running mteb's own text helpers over them
(a ``datasets.map`` over every document of a retrieval corpus): seconds for a large corpus, time
in which the devices would wait for the task if it were derived whole before its first input is
encoded. A :class:`Derivation` instead hands over each of mteb's encode calls as soon as it is
derived (:func:`qzhou_eval.pipeline.lookahead.model_input_calls`), so that the devices start on
the first (a retrieval task's queries, then its first corpus chunk) while the rest is derived.

Contract:

- :attr:`Derivation.first` is a future: True once a first call is derived, False once it is
  known that none will be (finished at every point, a type that is not derived, data that do
  not load, a derivation that fails at once);
- iterating a derivation (once: the encoding stream does) yields the calls in order, blocking
  until each is derived, and ends when the derivation ends, however it ends: an error is logged
  and ends it early (the look-ahead is a hint: what it did not derive is encoded on demand);
- ``after``: another derivation that must end first (a run derives one task at a time past the
  first two: two derivations at once would share the main process's GIL, and the task needed
  next would wait for the one after it).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future

from qzhou_eval.errors import one_line
from qzhou_eval.pipeline.lookahead import Call

logger = logging.getLogger(__name__)

_END = object()


class Derivation:
    def __init__(
        self,
        name: str,
        derive: Callable[[], Iterable[Call] | None],
        after: Derivation | None = None,
    ) -> None:
        self.name = name
        self.first: Future[bool] = Future()
        self.ended = threading.Event()
        self._calls: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._derive, self._after = derive, after
        # a daemon: never delays the exit after Ctrl-C
        threading.Thread(target=self._run, name="look-ahead", daemon=True).start()

    def _run(self) -> None:
        taken = 0
        try:
            if self._after is not None:
                self._after.ended.wait()
            calls = self._derive()
            for call in calls or ():
                self._calls.put(call)
                taken += 1
                if taken == 1:
                    self.first.set_result(True)
        except Exception as e:  # a hint only
            what = "derived in part, the rest on demand" if taken else "not derived"
            logger.info("look-ahead: %s %s (%s)", self.name, what, one_line(e))
        finally:
            self._calls.put(_END)
            self.ended.set()
            if not self.first.done():
                self.first.set_result(False)

    def __iter__(self) -> Iterator[Call]:
        while (call := self._calls.get()) is not _END:
            assert isinstance(call, Call)
            yield call
