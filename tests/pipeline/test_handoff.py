"""Scoring processes wait for inputs the main process is still encoding, and stop waiting once
the task's look-ahead is over."""

from __future__ import annotations

import multiprocessing as mp
import threading
import time

import numpy as np
import pytest

from qzhou_eval.encoder.embedder import Embedder, MemoryStore, MissingInputs
from qzhou_eval.pipeline.handoff import Handoff

CONTEXT = mp.get_context("spawn")


def _no_model():
    raise AssertionError("the model is never needed")


def _later(seconds: float, fn) -> threading.Thread:
    thread = threading.Thread(target=lambda: (time.sleep(seconds), fn()))
    thread.start()
    return thread


def test_a_wait_ends_when_more_is_stored_and_when_the_task_is_finished():
    handoff = Handoff(CONTEXT, ["A", "B"])
    started = time.monotonic()
    _later(0.2, handoff.stored)
    assert handoff.wait("A") is True
    assert time.monotonic() - started >= 0.15
    assert handoff.waited("A") and not handoff.waited("B")
    _later(0.2, lambda: handoff.finished("A"))
    assert handoff.wait("A") is True  # the finish moved the counter: look once more
    assert handoff.wait("A") is False  # then no more waiting for A
    assert handoff.wait("B", timeout=0.1) is False  # B is not finished: only the timeout ended it
    assert not handoff.is_finished("B")


def _reader(handoff: Handoff, answers) -> None:
    answers.put(("ready", None))
    answers.put(("first", handoff.wait("T")))
    while handoff.wait("T"):
        pass
    answers.put(("last", handoff.is_finished("T")))


def test_a_spawned_process_sees_the_main_process_store_and_finish():
    handoff = Handoff(CONTEXT, ["S", "T"])
    answers = CONTEXT.Queue()
    reader = CONTEXT.Process(target=_reader, args=(handoff, answers))
    reader.start()
    try:
        assert answers.get(timeout=60) == ("ready", None)
        time.sleep(0.3)  # let it block in the wait
        handoff.stored()
        assert answers.get(timeout=30) == ("first", True)
        handoff.finished("S")  # another task's finish wakes it, but does not end its wait
        handoff.finished("T")
        assert answers.get(timeout=30) == ("last", True)
    finally:
        reader.join(timeout=30)
        if reader.is_alive():
            reader.kill()
    assert reader.exitcode == 0


def test_an_embedder_that_may_not_encode_waits_for_inputs_on_their_way():
    store = MemoryStore()
    rng = np.random.default_rng(0)
    vectors = {t: rng.standard_normal(4).astype(np.float32) for t in "abc"}
    arrivals = [["a"], ["b"]]  # what "the main process" stores before each wake-up

    def wait() -> bool:
        if not arrivals:
            return False  # the look-ahead is over
        texts = arrivals.pop(0)
        store.put_many("doc", texts, np.stack([vectors[t] for t in texts]))
        return True

    store.put_many("doc", ["c"], vectors["c"][None])
    embedder = Embedder(_no_model, tokens_per_batch=1, max_batch_size=1, store=store, encode=False)
    embedder.wait_for_inputs = wait
    out = embedder.embed(["a", "c", "b", "a"], "doc")
    np.testing.assert_array_equal(out, np.stack([vectors[t] for t in "acba"]))
    assert embedder.waits == 2 and embedder.asked_inputs == embedder.stored_inputs == 3

    # once the look-ahead is over, what is still missing is handed back, and only that
    with pytest.raises(MissingInputs) as e:
        embedder.embed(["a", "d", "e"], "doc")
    assert e.value.inputs == ["d", "e"] and embedder.waits == 2
