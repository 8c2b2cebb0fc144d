"""A task's look-ahead handed over call by call as it is derived; an error ends it early."""

from __future__ import annotations

import logging
import threading

from qzhou_eval.pipeline.derivation import Derivation
from qzhou_eval.pipeline.lookahead import Call, SideInputs


def _call(text: str) -> Call:
    return Call("query", SideInputs([text], [(0, len(text))], []))


def test_each_call_is_handed_over_as_soon_as_it_is_derived():
    go_on = threading.Event()

    def derive():
        yield _call("first")
        assert go_on.wait(30)
        yield _call("second")

    derivation = Derivation("A", derive)
    assert derivation.first.result(timeout=30) is True  # while the second is still to come
    calls = iter(derivation)
    assert next(calls).inputs.inputs == ["first"]
    assert not derivation.ended.is_set()
    go_on.set()
    assert [c.inputs.inputs for c in calls] == [["second"]]
    assert derivation.ended.wait(30)


def test_nothing_to_derive_says_so_at_once():
    derivation = Derivation("A", lambda: None)
    assert derivation.first.result(timeout=30) is False
    assert list(derivation) == []


def test_an_error_ends_the_derivation_and_is_logged(caplog):
    def derive():
        yield _call("first")
        raise ValueError("bad row 7")

    def fails_at_once():
        raise OSError("no data")

    with caplog.at_level(logging.INFO, logger="qzhou_eval.pipeline.derivation"):
        part = Derivation("A", derive)
        assert [c.inputs.inputs for c in part] == [["first"]]
        assert part.first.result(timeout=30) is True
        none = Derivation("B", fails_at_once)
        assert none.first.result(timeout=30) is False and list(none) == []
    assert "look-ahead: A derived in part, the rest on demand (bad row 7)" in caplog.text
    assert "look-ahead: B not derived (no data)" in caplog.text


def test_a_derivation_after_another_starts_once_that_one_ended():
    release = threading.Event()
    started: list[str] = []

    def slow():
        started.append("first")
        yield _call("a")
        assert release.wait(30)

    def second():
        started.append("second")
        yield _call("b")

    first = Derivation("A", slow)
    later = Derivation("B", second, after=first)
    assert first.first.result(timeout=30)
    assert not later.first.done() and started == ["first"]  # it waits for the first to end
    release.set()
    assert later.first.result(timeout=30) and started == ["first", "second"]
    assert list(first) == [_call("a")] and list(later) == [_call("b")]
