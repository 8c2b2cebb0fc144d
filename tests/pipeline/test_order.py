"""The encoding order of a pipelined run: the longest estimated scoring tail first."""

from __future__ import annotations

import pytest

from qzhou_eval.benchmarks import filtered_tasks
from qzhou_eval.demo import get_demo_tasks
from qzhou_eval.pipeline.order import encode_order, scoring_tail
from tests.test_shards import _bench


def _names(tasks) -> list[str]:
    return [t.metadata.name for t in tasks]


@pytest.mark.parametrize(
    ("key", "first"), [("mteb_eng_v2", "MindSmallReranking"), ("cmteb", "T2Retrieval")]
)
def test_the_largest_scoring_tail_is_encoded_first(key, first):
    tasks = filtered_tasks(_bench(key))
    order = encode_order(tasks)
    assert sorted(_names(order)) == sorted(_names(tasks))
    assert order[0].metadata.name == first
    tails = [scoring_tail(t) for t in order]
    assert tails == sorted(tails, reverse=True)
    # the tasks estimated at no tail (classification, STS, ...) keep the benchmark's order
    rest = [t for t in order if not scoring_tail(t)]
    assert rest and _names(rest) == [n for n in _names(tasks) if n in set(_names(rest))]


def test_tasks_without_statistics_keep_their_order():
    tasks = get_demo_tasks("demo_eng")
    assert [scoring_tail(t) for t in tasks] == [0.0] * len(tasks)
    assert encode_order(tasks) == list(tasks)
