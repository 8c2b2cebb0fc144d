"""Turn records from :mod:`qzhou_eval.demo.sources` into the data layout each mteb task class reads.

Language-agnostic helpers; every random choice takes an explicit seed and works on inputs in a
fixed order, so a task built twice holds the same data.

Layouts (mteb 2.26):

- Retrieval / Reranking: ``RetrievalSplitData`` with ``queries`` (``id``, ``text``), ``corpus``
  (``id``, ``title``, ``text``), ``relevant_docs`` (query id -> {doc id: score}) and
  ``top_ranked`` (query id -> candidate doc ids; ``None`` for full-corpus retrieval).
- STS: ``sentence1``, ``sentence2``, ``score``.
- PairClassification: ``sentence1``, ``sentence2``, ``labels`` (0/1).
- Classification: ``train`` and ``test`` splits with ``text`` and an integer ``label``.
- Clustering: ``sentences`` and ``labels``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData

from qzhou_eval.demo.sources import Exchange

T = TypeVar("T")


def sample(items: Sequence[T], k: int, seed: int) -> list[T]:
    """``k`` items drawn without replacement (all of them, shuffled, when ``k >= len(items)``)."""
    return random.Random(seed).sample(list(items), min(k, len(items)))


@dataclass(frozen=True)
class QACollection:
    """Questions, the distinct answers, and which answers respond to which question."""

    queries: dict[str, str]  # query id -> question
    corpus: dict[str, str]  # doc id -> answer
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: 1}
    query_topic: dict[str, str]
    doc_topic: dict[str, str]


def qa_collection(exchanges: Sequence[Exchange]) -> QACollection:
    """Group exchanges by question; an answer given to several questions is one document."""
    query_ids: dict[str, str] = {}
    doc_ids: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    query_topic: dict[str, str] = {}
    doc_topic: dict[str, str] = {}
    for ex in exchanges:
        qid = query_ids.setdefault(ex.question, f"q{len(query_ids)}")
        did = doc_ids.setdefault(ex.answer, f"d{len(doc_ids)}")
        qrels.setdefault(qid, {})[did] = 1
        query_topic.setdefault(qid, ex.topic)
        doc_topic.setdefault(did, ex.topic)
    return QACollection(
        queries={qid: q for q, qid in query_ids.items()},
        corpus={did: d for d, did in doc_ids.items()},
        qrels=qrels,
        query_topic=query_topic,
        doc_topic=doc_topic,
    )


def retrieval_split(
    queries: Mapping[str, str],
    corpus: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    top_ranked: Mapping[str, Sequence[str]] | None = None,
) -> RetrievalSplitData:
    """One split of a retrieval (``top_ranked=None``) or reranking task.

    Documents have an empty ``title``, as in most BEIR-style corpora.
    """
    return RetrievalSplitData(
        queries=Dataset.from_dict({"id": list(queries), "text": list(queries.values())}),
        corpus=Dataset.from_dict(
            {"id": list(corpus), "title": [""] * len(corpus), "text": list(corpus.values())}
        ),
        relevant_docs={q: dict(docs) for q, docs in qrels.items()},
        top_ranked=None if top_ranked is None else {q: list(c) for q, c in top_ranked.items()},
    )


def candidate_lists(
    qrels: Mapping[str, Mapping[str, int]],
    doc_group: Mapping[str, str],
    query_group: Mapping[str, str],
    *,
    n_negatives: int,
    n_hard: int,
    seed: int,
) -> dict[str, list[str]]:
    """Reranking candidates per query: all its relevant docs plus ``n_negatives`` others, shuffled.

    Up to ``n_hard`` negatives are "hard" (same group, e.g. topic, as the query); the rest are
    drawn from other groups. Negatives come from ``doc_group``'s keys, in their order. The list
    is shuffled so that a scorer that ties everything lands at chance, not at the top.
    """
    rng = random.Random(seed)
    docs = list(doc_group)
    out: dict[str, list[str]] = {}
    for qid, rel in qrels.items():
        positives = [d for d in rel if rel[d] > 0]
        hard = [d for d in docs if doc_group[d] == query_group[qid] and d not in rel]
        easy = [d for d in docs if doc_group[d] != query_group[qid] and d not in rel]
        negatives = rng.sample(hard, min(n_hard, len(hard)))
        negatives += rng.sample(easy, min(n_negatives - len(negatives), len(easy)))
        if len(negatives) < n_negatives:  # too few docs in other groups: top up with hard ones
            spare = [d for d in hard if d not in negatives]
            negatives += rng.sample(spare, min(n_negatives - len(negatives), len(spare)))
        candidates = positives + negatives
        rng.shuffle(candidates)
        out[qid] = candidates
    return out


def matched_and_mismatched_pairs(qa: QACollection, seed: int) -> list[tuple[str, str, int]]:
    """Per question: (question, one of its answers, 1) and (question, an unrelated answer, 0)."""
    rng = random.Random(seed)
    doc_ids = list(qa.corpus)
    pairs: list[tuple[str, str, int]] = []
    for qid, question in qa.queries.items():
        rel = qa.qrels[qid]
        positive = rng.choice(sorted(rel))
        negative = rng.choice([d for d in doc_ids if d not in rel])
        pairs.append((question, qa.corpus[positive], 1))
        pairs.append((question, qa.corpus[negative], 0))
    return pairs


def top_heavy_sample(
    scores: Sequence[float], k: int, *, top_fraction: float, seed: int
) -> list[int]:
    """Indices of ``k`` items: half from the ``top_fraction`` highest-scored, half from the rest.

    For rating data where most pairs are unrelated (gensim's Lee judgements: the median pair is
    rated 0.28 of 1), a plain random sample holds few related pairs and its rank correlation
    swings widely from seed to seed; STS benchmarks are likewise built to span the score range.
    Returned in increasing index order.
    """
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    n_top = max(1, round(len(order) * top_fraction))
    top, rest = order[:n_top], order[n_top:]
    chosen = sample(top, k // 2, seed) + sample(rest, k - k // 2, seed + 1)
    return sorted(chosen)


def pair_classification_split(pairs: Sequence[tuple[str, str, int]]) -> DatasetDict:
    """``test`` split of (sentence1, sentence2, labels) rows."""
    s1, s2, labels = zip(*pairs, strict=True) if pairs else ((), (), ())
    return DatasetDict(
        {
            "test": Dataset.from_dict(
                {"sentence1": list(s1), "sentence2": list(s2), "labels": list(labels)}
            )
        }
    )


def sts_split(pairs: Sequence[tuple[str, str, float]]) -> DatasetDict:
    """``test`` split of (sentence1, sentence2, score) rows."""
    s1, s2, scores = zip(*pairs, strict=True) if pairs else ((), (), ())
    return DatasetDict(
        {
            "test": Dataset.from_dict(
                {"sentence1": list(s1), "sentence2": list(s2), "score": [float(x) for x in scores]}
            )
        }
    )


def classification_splits(
    texts_by_label: Mapping[str, Sequence[str]], *, n_train: int, n_test: int, seed: int
) -> DatasetDict:
    """Balanced, disjoint ``train``/``test`` splits: ``n_train``/``n_test`` texts per label.

    Labels are integers (a ``ClassLabel`` over the sorted label names): mteb computes average
    precision for binary tasks, which needs numeric labels.
    """
    names = sorted(texts_by_label)
    features = Features({"text": Value("string"), "label": ClassLabel(names=names)})
    rows: dict[str, dict[str, list]] = {s: {"text": [], "label": []} for s in ("train", "test")}
    for label_id, name in enumerate(names):
        texts = sample(texts_by_label[name], n_train + n_test, seed + label_id)
        if len(texts) < n_train + n_test:
            raise ValueError(f"label {name!r} has {len(texts)} texts, need {n_train + n_test}")
        for split, chunk in (("test", texts[:n_test]), ("train", texts[n_test:])):
            rows[split]["text"] += chunk
            rows[split]["label"] += [label_id] * len(chunk)
    return DatasetDict({s: Dataset.from_dict(r, features=features) for s, r in rows.items()})


def clustering_split(items: Sequence[tuple[str, str]]) -> DatasetDict:
    """``test`` split of (sentence, label) rows."""
    return DatasetDict(
        {
            "test": Dataset.from_dict(
                {"sentences": [t for t, _ in items], "labels": [label for _, label in items]}
            )
        }
    )
