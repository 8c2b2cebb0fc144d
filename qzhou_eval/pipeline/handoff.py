"""How scoring processes learn that the look-ahead stored more of a task's inputs.

A task's scoring jobs are submitted when the main process starts encoding the task, not when it
ends: a scoring process loads the task's data and lets mteb start while the devices still encode,
and when mteb asks for inputs that are not stored yet, it waits for them instead of failing. For
retrieval, mteb asks for the queries, then the corpus chunk by chunk, scoring each chunk before
asking for the next: so the scoring of a large corpus runs behind its encoding.

Contract (one :class:`Handoff` per run, made by the main process before the scoring processes
start, and given to them at their start):

- the main process calls :meth:`Handoff.stored` each time encoded vectors reach the store (from
  the store's writer thread) and :meth:`Handoff.finished` once the look-ahead of a task is over
  (all of it stored, or it could not be derived, or ``runtime.encode=false``);
- a scoring process that misses inputs of a task calls :meth:`Handoff.wait`: it returns True as
  soon as more was stored (look again), False once the task's look-ahead is over (what is still
  missing, the look-ahead did not foresee: hand it back to the main process).

No lock is shared: a counter of stores and a flag per task, in shared memory, written by the
main process only and polled by the readers; a scoring process killed at any moment cannot leave
anything held. (Two threads of the main process may bump the counter at once and lose one of the
two increments: the counter still moves, which is all a reader needs; a task's flag is set before
its bump.) The readers write one byte only: a mark per task that one of them waited for it
(:meth:`Handoff.waited`, read by tests). Deadlock-free by construction as long as the main
process calls ``finished`` for a task before it blocks on any of that task's jobs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from multiprocessing.context import BaseContext
from typing import Any

POLL_SECONDS = 0.01


class Handoff:
    def __init__(self, context: BaseContext, tasks: Sequence[str]) -> None:
        self._index = {name: i for i, name in enumerate(tasks)}
        # RawValue/RawArray: plain shared memory, no lock (see the module docstring)
        self._calls: Any = context.RawValue("q", 0)
        self._done: Any = context.RawArray("b", len(tasks))
        self._waited: Any = context.RawArray("b", len(tasks))  # a reader waited for the task

    # --- main process ---------------------------------------------------------------------

    def stored(self) -> None:
        """More inputs are in the store."""
        self._calls.value += 1

    def finished(self, task: str) -> None:
        """``task``'s look-ahead is over: nothing more of it will be stored ahead of mteb."""
        self._done[self._index[task]] = 1
        self._calls.value += 1

    # --- scoring processes ----------------------------------------------------------------

    def is_finished(self, task: str) -> bool:
        return bool(self._done[self._index[task]])

    def waited(self, task: str) -> bool:
        """Whether a scoring process has waited for inputs of ``task``."""
        return bool(self._waited[self._index[task]])

    def wait(self, task: str, timeout: float | None = None) -> bool:
        """Block until more inputs were stored (True) or ``task``'s look-ahead is over (False).

        ``timeout`` (tests): give up after that many seconds, as if the look-ahead were over.
        """
        seen = self._calls.value  # before the flag: a finish in between still ends the wait
        if self.is_finished(task):
            return False
        self._waited[self._index[task]] = 1
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._calls.value == seen:
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(POLL_SECONDS)
        return True
