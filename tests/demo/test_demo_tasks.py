"""The offline demo suites: contract, data layout per task type, and scores against chance.

Chance is computed per task from the task's own data (``chance_level``); a task passes when a real
model beats chance by the task's margin (``MARGINS``) and a random-embedding model does not.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from pathlib import Path
from typing import Any

import mteb
import numpy as np
import pytest
from mteb.abstasks import (
    AbsTask,
    AbsTaskClassification,
    AbsTaskClustering,
    AbsTaskPairClassification,
    AbsTaskRetrieval,
    AbsTaskSTS,
)
from sklearn.metrics import v_measure_score

from qzhou_eval.demo import DEMO_SUITES, get_demo_tasks, is_demo_task

ABSTASK_OF_TYPE: dict[str, type[AbsTask]] = {
    "Retrieval": AbsTaskRetrieval,
    "Reranking": AbsTaskRetrieval,  # mteb 2.x: retrieval with `top_ranked` candidate lists
    "STS": AbsTaskSTS,
    "PairClassification": AbsTaskPairClassification,
    "Classification": AbsTaskClassification,
    "Clustering": AbsTaskClustering,
}
MAIN_SCORE_OF_TYPE = {
    "Retrieval": "ndcg_at_10",
    "Reranking": "map_at_1000",
    "STS": "cosine_spearman",
    "PairClassification": "max_ap",
    "Classification": "accuracy",
    "Clustering": "v_measure",
}
LANGS = {"demo_eng": ["eng-Latn"], "demo_zho": ["cmn-Hans"]}
MAX_TEXTS = 2000  # per task, so that the whole demo stays a quick CPU run

# Required lead of all-MiniLM-L6-v2 over chance (chance_level), with what the margin stands on.
# sd = standard deviation of the chance score at the task's size; "MiniLM" = the measured score.
MARGINS: dict[str, float] = {
    "DemoEngRetrieval": 0.25,  # chance ~0.006 (400 queries, 851 answers); MiniLM ~0.53
    "DemoEngReranking": 0.30,  # chance ~0.29 (1 of 10, sd ~0.03 over 80 queries); MiniLM ~0.98
    "DemoEngSTS": 0.35,  # chance 0 (sd 0.10 at 100 pairs); MiniLM ~0.73
    "DemoEngClassification": 0.30,  # chance 0.20 (sd 0.025 at 250 test texts); MiniLM ~0.87
    "DemoEngClustering": 0.20,  # chance ~0.07 (random-embedding model: 0.12); MiniLM ~0.55
    # MiniLM is English-only (most Chinese characters are [UNK] to it): smaller, sd-based margins.
    "DemoZhoRetrieval": 0.04,  # chance ~0.01 (random-embedding model: 0.03); MiniLM ~0.09
    "DemoZhoReranking": 0.04,  # chance ~0.30 (sd ~0.013 over 368 queries); MiniLM ~0.41
    "DemoZhoPairClassification": 0.06,  # chance 0.50 (sd ~0.02, 736 pairs); MiniLM ~0.62
    "DemoZhoClassification": 0.05,  # chance 0.50 (sd 0.022 at 500 test texts); MiniLM ~0.63
    "DemoZhoClustering": 0.10,  # chance ~0.07 (random-embedding model: 0.11); MiniLM ~0.30
}


def _all_tasks() -> list[tuple[str, AbsTask]]:
    return [(suite, task) for suite in sorted(DEMO_SUITES) for task in get_demo_tasks(suite)]


TASK_IDS = [task.metadata.name for _, task in _all_tasks()]


@pytest.fixture(scope="module")
def loaded() -> dict[str, AbsTask]:
    """Every demo task, data loaded, by name."""
    tasks = {}
    for _, task in _all_tasks():
        task.load_data()
        tasks[task.metadata.name] = task
    return tasks


def _split(task: AbsTask) -> Any:
    """The test split of a loaded task, whatever its type's layout."""
    if isinstance(task, AbsTaskRetrieval):
        return task.dataset["default"]["test"]
    return task.dataset["test"]


# --- contract ---------------------------------------------------------------------------------


def test_suites_and_fresh_instances() -> None:
    assert frozenset({"demo_eng", "demo_zho"}) == DEMO_SUITES
    for suite in DEMO_SUITES:
        first, second = get_demo_tasks(suite), get_demo_tasks(suite)
        assert [t.metadata.name for t in first] == [t.metadata.name for t in second]
        assert all(a is not b for a, b in zip(first, second, strict=True))
        assert all(isinstance(t, AbsTask) and not t.data_loaded for t in first)
        assert all(is_demo_task(t) for t in first)
    with pytest.raises(KeyError, match="demo_fra"):
        get_demo_tasks("demo_fra")


def test_each_suite_covers_the_task_types() -> None:
    for suite in DEMO_SUITES:
        types = [t.metadata.type for t in get_demo_tasks(suite)]
        assert len(types) == len(set(types)) == 5
        assert {"Retrieval", "Reranking", "Classification", "Clustering"} <= set(types)
        assert {"STS", "PairClassification"} & set(types)


def test_task_names_are_unique_and_not_mteb_tasks() -> None:
    names = [task.metadata.name for _, task in _all_tasks()]
    assert len(names) == len(set(names)) == len(MARGINS)
    assert set(names) == set(MARGINS)
    for name in names:
        with pytest.raises(KeyError):
            mteb.get_task(name)


@pytest.mark.parametrize(("suite", "task"), _all_tasks(), ids=TASK_IDS)
def test_metadata(suite: str, task: AbsTask) -> None:
    meta = task.metadata
    assert isinstance(task, ABSTASK_OF_TYPE[meta.type])
    assert meta.main_score == MAIN_SCORE_OF_TYPE[meta.type]
    assert meta.eval_splits == ["test"]
    assert meta.eval_langs == LANGS[suite]
    assert meta.name.startswith("DemoEng" if suite == "demo_eng" else "DemoZho")
    assert isinstance(meta.prompt, str) and meta.prompt
    # the revision names the source package's installed version
    assert meta.dataset["revision"].startswith("demo-v1+")
    assert not meta.dataset["revision"].endswith("-missing")


# --- data ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("suite", "task"), _all_tasks(), ids=TASK_IDS)
def test_task_data(suite: str, task: AbsTask, loaded: dict[str, AbsTask]) -> None:
    task = loaded[task.metadata.name]
    assert task.data_loaded
    kind = task.metadata.type
    split = _split(task)
    if kind in ("Retrieval", "Reranking"):
        n_texts = _check_retrieval(split, reranking=kind == "Reranking")
    elif kind in ("STS", "PairClassification"):
        n_texts = 2 * len(split)
        assert len(split) >= 100
        assert all(a and b for a, b in zip(split["sentence1"], split["sentence2"], strict=True))
        if kind == "STS":
            scores = np.asarray(split["score"])
            assert task.min_score <= scores.min() < scores.max() <= task.max_score
        else:
            assert Counter(split["labels"]).keys() == {0, 1}
    elif kind == "Classification":
        train, test = task.dataset["train"], task.dataset["test"]
        n_texts = len(train) + len(test)
        assert len(test) >= 200
        labels = Counter(test["label"])
        assert len(labels) >= 2 and set(Counter(train["label"])) == set(labels)
        assert min(Counter(train["label"]).values()) >= task.samples_per_label
        assert not set(train["text"]) & set(test["text"])
    else:  # Clustering
        n_texts = len(split)
        assert len(split) >= 200
        assert len(set(split["labels"])) >= 5
        assert all(split["sentences"])
    assert n_texts <= MAX_TEXTS


def _check_retrieval(split: dict[str, Any], *, reranking: bool) -> int:
    query_ids, doc_ids = list(split["queries"]["id"]), list(split["corpus"]["id"])
    assert len(set(query_ids)) == len(query_ids) >= 80
    assert len(set(doc_ids)) == len(doc_ids) >= 150
    assert all(split["queries"]["text"]) and all(split["corpus"]["text"])
    corpus = set(doc_ids)
    qrels = split["relevant_docs"]
    assert set(qrels) == set(query_ids)
    for rel in qrels.values():
        assert rel and set(rel) <= corpus and all(score > 0 for score in rel.values())
    top_ranked = split["top_ranked"]
    if not reranking:
        assert top_ranked is None
    else:
        assert set(top_ranked) == set(query_ids)
        for qid, candidates in top_ranked.items():
            assert len(candidates) == len(set(candidates)) > len(qrels[qid])
            assert set(qrels[qid]) <= set(candidates) <= corpus
        # the corpus holds only candidates: a reranking run encodes the whole corpus
        assert corpus == {d for c in top_ranked.values() for d in c}
    return len(query_ids) + len(doc_ids)


def _fingerprint(task: AbsTask) -> str:
    task.load_data()
    split = _split(task)
    if isinstance(task, AbsTaskRetrieval):
        parts = {
            "queries": split["queries"].to_dict(),
            "corpus": split["corpus"].to_dict(),
            "qrels": split["relevant_docs"],
            "top_ranked": split["top_ranked"],
        }
    else:
        parts = {name: ds.to_dict() for name, ds in task.dataset.items()}
    return json.dumps(parts, sort_keys=True, ensure_ascii=False)


@pytest.mark.parametrize("suite", sorted(DEMO_SUITES))
def test_building_is_deterministic(suite: str) -> None:
    first = [_fingerprint(t) for t in get_demo_tasks(suite)]
    second = [_fingerprint(t) for t in get_demo_tasks(suite)]
    assert first == second


# --- chance levels -----------------------------------------------------------------------------


def _random_ndcg_at_10(n_relevant: int, n_docs: int) -> float:
    """Expected nDCG@10 of a uniformly random ranking (binary relevance)."""
    discounts = [1 / math.log2(rank + 1) for rank in range(1, 11)]
    expected_dcg = n_relevant / n_docs * sum(discounts)
    return expected_dcg / sum(discounts[: min(n_relevant, 10)])


def _random_average_precision(n_relevant: int, n_candidates: int) -> float:
    """Expected average precision of a uniformly random order of the candidates.

    A relevant item sits at rank k with probability 1/n and then has (R-1)(k-1)/(n-1) other
    relevant items above it, so E[AP] = (H_n + (R-1)/(n-1) * (n - H_n)) / n.
    """
    n, r = n_candidates, n_relevant
    harmonic = sum(1 / k for k in range(1, n + 1))
    return (harmonic + (r - 1) / (n - 1) * (n - harmonic)) / n


def chance_level(task: AbsTask) -> float:
    """The main score that a model without any semantics gets on average, from the task's data."""
    kind = task.metadata.type
    split = _split(task)
    if kind == "Retrieval":
        n_docs = len(split["corpus"])
        return float(
            np.mean([_random_ndcg_at_10(len(r), n_docs) for r in split["relevant_docs"].values()])
        )
    if kind == "Reranking":
        qrels = split["relevant_docs"]
        return float(
            np.mean(
                [
                    _random_average_precision(len(qrels[q]), len(c))
                    for q, c in split["top_ranked"].items()
                ]
            )
        )
    if kind == "STS":
        return 0.0
    if kind == "PairClassification":
        return float(np.mean(split["labels"]))
    if kind == "Classification":
        counts = Counter(task.dataset["test"]["label"])
        return max(counts.values()) / sum(counts.values())
    # Clustering: random assignment into as many clusters as there are labels, on bootstrap
    # samples of the size mteb clusters
    labels = list(split["labels"])
    n_clusters = len(set(labels))
    rng = random.Random(0)
    scores = []
    for _ in range(20):
        sample = rng.choices(labels, k=task.max_documents_per_cluster)
        assignment = [rng.randrange(n_clusters) for _ in sample]
        scores.append(v_measure_score(sample, assignment))
    return float(np.mean(scores))


def test_chance_formulas_match_simulation() -> None:
    rng = np.random.default_rng(0)
    for n_relevant, n_candidates in ((1, 10), (3, 12)):
        aps = []
        for _ in range(20000):
            relevant = np.flatnonzero(rng.permutation(n_candidates) < n_relevant) + 1
            aps.append(np.mean(np.arange(1, n_relevant + 1) / relevant))
        assert abs(np.mean(aps) - _random_average_precision(n_relevant, n_candidates)) < 0.005
    assert _random_ndcg_at_10(1, 10) == pytest.approx(
        sum(1 / math.log2(r + 1) for r in range(1, 11)) / 10
    )


@pytest.fixture(scope="module")
def thresholds(loaded: dict[str, AbsTask]) -> dict[str, float]:
    return {name: chance_level(task) + MARGINS[name] for name, task in loaded.items()}


# --- end to end ------------------------------------------------------------------------------


def _main_scores(model: Any, tasks: list[AbsTask], **kwargs: Any) -> dict[str, float]:
    result = mteb.evaluate(model, tasks, cache=None, show_progress_bar=False, **kwargs)
    return {r.task_name: r.get_score() for r in result.task_results}


@pytest.mark.slow
@pytest.mark.parametrize("suite", sorted(DEMO_SUITES))
def test_minilm_beats_chance(suite: str, minilm_demo: Path, thresholds: dict[str, float]) -> None:
    # the session's plain MiniLM runs of both suites (model=minilm: the sentence-transformers
    # model the package ships, as the model card encodes), read as mteb reads results
    folder = next((minilm_demo / "results").glob("*/*"))
    names = {t.metadata.name for t in get_demo_tasks(suite)}
    results = [mteb.TaskResult.from_disk(folder / f"{name}.json") for name in sorted(names)]
    scores = {r.task_name: r.get_score() for r in results}
    assert set(scores) == names
    below = {
        n: (round(s, 4), round(thresholds[n], 4))
        for n, s in scores.items()
        if not s > thresholds[n]
    }
    assert not below, f"main score <= chance + margin: {below}"


@pytest.mark.slow
def test_random_embeddings_stay_below_thresholds(
    thresholds: dict[str, float], tmp_path: Path
) -> None:
    """The thresholds reject a model without semantics, and reranking scores only candidates."""
    model = mteb.get_model("mteb/baseline-random-encoder")
    tasks = [task for _, task in _all_tasks()]
    scores = _main_scores(model, tasks, prediction_folder=tmp_path)
    above = {
        n: (round(s, 4), round(thresholds[n], 4)) for n, s in scores.items() if s > thresholds[n]
    }
    assert not above, f"random embeddings beat chance + margin: {above}"

    for task in tasks:
        if task.metadata.type != "Reranking":
            continue
        predictions = json.loads((tmp_path / task.prediction_file_name).read_text())["default"][
            "test"
        ]
        fresh = next(
            t for t in get_demo_tasks(_suite_of(task)) if t.metadata.name == task.metadata.name
        )
        fresh.load_data()
        top_ranked = _split(fresh)["top_ranked"]
        assert predictions.keys() == top_ranked.keys()
        for qid, scored in predictions.items():
            assert set(scored) == set(top_ranked[qid])


def _suite_of(task: AbsTask) -> str:
    return "demo_eng" if task.metadata.name.startswith("DemoEng") else "demo_zho"
