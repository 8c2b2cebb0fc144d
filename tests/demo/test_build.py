"""Layout builders: seeded sampling, reranking candidates, balanced splits."""

from __future__ import annotations

import pytest

from qzhou_eval.demo import build
from qzhou_eval.demo.sources import Exchange


def test_sample_is_seeded_and_bounded() -> None:
    items = list(range(100))
    assert build.sample(items, 10, 1) == build.sample(items, 10, 1)
    assert build.sample(items, 10, 1) != build.sample(items, 10, 2)
    assert sorted(build.sample(items, 500, 1)) == items


def test_qa_collection_shares_repeated_answers() -> None:
    qa = build.qa_collection(
        [Exchange("a", "hi", "hello"), Exchange("a", "hey", "hello"), Exchange("b", "hi", "yo")]
    )
    assert list(qa.queries.values()) == ["hi", "hey"]
    assert list(qa.corpus.values()) == ["hello", "yo"]
    assert qa.qrels == {"q0": {"d0": 1, "d1": 1}, "q1": {"d0": 1}}
    assert qa.doc_topic == {"d0": "a", "d1": "b"}


def test_candidate_lists_mix_hard_and_easy_negatives() -> None:
    doc_group = {f"d{i}": "x" if i < 10 else "y" for i in range(30)}
    qrels = {"q0": {"d0": 1}, "q1": {"d12": 1, "d13": 1}}
    query_group = {"q0": "x", "q1": "y"}
    lists = build.candidate_lists(qrels, doc_group, query_group, n_negatives=6, n_hard=2, seed=0)
    for qid, candidates in lists.items():
        assert len(candidates) == len(set(candidates)) == len(qrels[qid]) + 6
        assert set(qrels[qid]) <= set(candidates)
        negatives = [d for d in candidates if d not in qrels[qid]]
        hard = [d for d in negatives if doc_group[d] == query_group[qid]]
        assert len(hard) == 2
    assert lists == build.candidate_lists(
        qrels, doc_group, query_group, n_negatives=6, n_hard=2, seed=0
    )


def test_candidate_lists_top_up_when_other_groups_run_out() -> None:
    doc_group = {f"d{i}": "x" if i < 10 else "y" for i in range(12)}
    lists = build.candidate_lists(
        {"q": {"d0": 1}}, doc_group, {"q": "x"}, n_negatives=5, n_hard=1, seed=0
    )
    assert len(lists["q"]) == 6


def test_top_heavy_sample_takes_half_from_the_top() -> None:
    scores = [i / 100 for i in range(100)]
    chosen = build.top_heavy_sample(scores, 20, top_fraction=0.1, seed=0)
    assert len(chosen) == len(set(chosen)) == 20 and chosen == sorted(chosen)
    assert sum(1 for i in chosen if i >= 90) == 10


def test_classification_splits_are_balanced_and_disjoint() -> None:
    texts = {"neg": [f"n{i}" for i in range(30)], "pos": [f"p{i}" for i in range(30)]}
    splits = build.classification_splits(texts, n_train=5, n_test=10, seed=0)
    assert splits["train"].features["label"].names == ["neg", "pos"]
    assert sorted(splits["test"]["label"]) == [0] * 10 + [1] * 10
    assert len(splits["train"]) == 10
    assert not set(splits["train"]["text"]) & set(splits["test"]["text"])
    with pytest.raises(ValueError, match="need 40"):
        build.classification_splits(texts, n_train=20, n_test=20, seed=0)
