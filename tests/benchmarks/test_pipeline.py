"""benchmarks/pipeline.py's pieces that decide its figures: the shape tasks' texts and the
critical-path bound (the benchmark itself runs for minutes and is not a test)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def bench():
    path = REPO / "benchmarks" / "pipeline.py"
    spec = importlib.util.spec_from_file_location("pipeline_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_texts_have_the_words_asked_and_lean_to_their_topic(bench):
    texts = bench._texts(np.random.default_rng(0), 200, [3, 3, 7])
    again = bench._texts(np.random.default_rng(0), 200, [3, 3, 7])
    assert texts == again  # one seed, one data set: scores comparable between runs
    assert [len(t.split()) for t in texts] == [200, 200, 200]
    assert texts[0] != texts[1]
    own = {f"w{3 * 40 + i}" for i in range(40)}  # topic 3's words
    share = sum(w in own for w in texts[0].split()) / 200
    assert 0.35 < share < 0.65  # half from the topic (and 1% of the rest by chance)
    assert sum(w in own for w in texts[2].split()) / 200 < 0.1


def test_critical_path_is_the_task_whose_encoding_and_tails_end_last(bench):
    clock = bench.TaskClock(device=None)
    clock.device_seconds = {"long corpus": 8.0, "long tails": 1.0, "never asked": 20.0}
    clock.tails = {"long corpus": [2.0], "long tails": [3.0, 3.0, 3.0, 3.0]}
    # one process: the four tails one after the other; two: two at a time
    assert clock.critical_path(1) == (13.0, "long tails")
    assert clock.critical_path(2) == (10.0, "long corpus")
    # never less than the longest tail, however many processes
    assert clock.critical_path(16) == (10.0, "long corpus")
    clock.tails["long tails"] = [9.5]
    assert clock.critical_path(16) == (10.5, "long tails")
