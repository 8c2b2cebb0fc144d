"""The main process's choices that need no run: which of the first two tasks goes first."""

from __future__ import annotations

import threading
from concurrent.futures import Future

from qzhou_eval.pipeline.schedule import quicker_second


def _done(value=None) -> Future:
    future: Future = Future()
    future.set_result(value)
    return future


def test_the_second_task_goes_first_only_when_it_is_derived_first():
    assert quicker_second({0: Future(), 1: _done()})
    assert not quicker_second({0: _done(), 1: _done()})  # both ready: the order stands
    assert not quicker_second({0: _done()})  # one task, or nothing derived (encode=false)


def test_the_choice_waits_for_one_of_the_two():
    first: Future = Future()
    threading.Timer(0.2, first.set_result, (None,)).start()
    assert not quicker_second({0: first, 1: Future()})  # the first came first
