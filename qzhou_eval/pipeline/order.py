"""The order in which a pipelined run encodes its tasks: the longest scoring tail first.

A run ends no sooner than each task's last input is encoded plus the scoring that comes after
it, its tail: mteb's per-query loop over a reranking task's candidate lists, the search of a
retrieval task's last corpus chunk and its metrics, k-means over a clustering task's sample.
With scoring processes to spare, encoding the tasks in decreasing order of their tails makes the
shortest run (Jackson's rule: one machine, the devices, and a delivery time per job).
MindSmallReranking is the case in point: little to encode, about 20 CPU-minutes of scoring per
dimension. In the benchmark's order (20th of MTEB(eng, v2)'s 41 tasks) its scoring would still
run long after the devices were done; encoded first, it scores while they encode the rest.

The tail is estimated from mteb's descriptive statistics, which mteb ships per task (no data is
loaded), at rates measured for the pipeline issue (one core, mteb 2.26, 3584 dimensions):
MindSmallReranking's 97M (query, candidate) rows in about 20 minutes, StackExchangeClusteringP2P.v2
(about 1,500 documents in 524 clusters) in about 2. Retrieval: each query's top 1,000 (the task's
largest k) of the last corpus chunk, and as many for the metrics. Other task types (classification,
STS, pair classification: seconds to a minute) and tasks without statistics count as no tail and
keep their order after the others. The order changes when scoring ends, never a score: every task is
evaluated on a fresh copy whatever ran before it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mteb.abstasks import AbsTask, AbsTaskClustering, AbsTaskRetrieval
from mteb.abstasks.clustering_legacy import AbsTaskClusteringLegacy

from qzhou_eval.shards.cost import estimate_cost

SECONDS_PER_RANKED_ROW = 20 * 60 / 97e6  # one (query, document) row of mteb's Python loops
SECONDS_PER_CLUSTERED_PAIR = 2 * 60 / (1_545 * 524)  # one (document, cluster) of k-means


def scoring_tail(task: AbsTask) -> float:
    """Estimated CPU-seconds of scoring after ``task``'s last input is encoded (0: unknown or
    small)."""
    try:
        stats = task.metadata.descriptive_stats or {}
        splits = [stats[s] for s in task.eval_splits if s in stats]
        if isinstance(task, AbsTaskRetrieval):
            top_k = max(task.k_values)  # documents mteb keeps per query and corpus chunk
            return SECONDS_PER_RANKED_ROW * sum(_ranked_rows(s, top_k) for s in splits)
        if isinstance(task, (AbsTaskClustering, AbsTaskClusteringLegacy)):
            cost = estimate_cost(task)
            clusters = max((_labels(s) for s in splits), default=0)
            return SECONDS_PER_CLUSTERED_PAIR * (cost.texts if cost else 0.0) * clusters
    except Exception:  # statistics of an unexpected shape: an order hint only
        return 0.0
    return 0.0


def encode_order(tasks: Sequence[AbsTask]) -> list[AbsTask]:
    """``tasks`` by decreasing estimated scoring tail; equal tails keep their order."""
    return sorted(tasks, key=lambda t: -scoring_tail(t))


def _ranked_rows(split: Mapping[str, Any], top_k: int) -> float:
    top = split.get("top_ranked_statistics") or {}
    if top.get("num_top_ranked"):  # reranking: every candidate of every query
        return float(top["num_top_ranked"])
    queries = split.get("num_queries") or (split.get("queries_text_statistics") or {}).get(
        "unique_texts", 0
    )
    documents = (split.get("documents_text_statistics") or {}).get("unique_texts", 0)
    return 2.0 * queries * min(top_k, documents)  # the last chunk's search, then the metrics


def _labels(split: Mapping[str, Any]) -> int:
    labels = split.get("labels_statistics") or split.get("label_statistics") or {}
    return int(labels.get("unique_labels") or 0)
