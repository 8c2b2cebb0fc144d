"""Estimated cost of evaluating a task: the distinct texts its evaluated splits encode.

Read from mteb's descriptive statistics, which mteb ships per task
(``task.metadata.descriptive_stats``: per split, and per subset for multilingual tasks, the
number of distinct texts and their average length for every text column: queries, documents,
sentences, text pairs, summaries). For each split the benchmark evaluates (``task.eval_splits``)
and each subset it keeps (``task.hf_subsets``), a text column costs ``distinct texts x average
length`` characters. Two task types encode less than their statistics describe, and the estimate
follows what mteb does:

- clustering (``AbsTaskClustering``) embeds ``max_document_to_embed`` documents, or
  ``max_fraction_of_documents_to_embed`` of them, when the task sets one;
- classification also encodes its train split, but only the union of its undersamples: at most
  ``samples_per_label x n_experiments`` texts per label.

Not modelled: instructions and templates (a few tokens per text), truncation at the model's
maximum length (very long texts cost less than estimated), and scoring time (small next to a
large model's encoding).

A task without statistics (the demo suites, a new task) has no estimate here;
:mod:`qzhou_eval.shards.split` decides what it counts as.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mteb.abstasks import AbsTask, AbsTaskClassification, AbsTaskClustering

_SUBSETS = "hf_subset_descriptive_stats"


@dataclass(frozen=True)
class Cost:
    """Estimated distinct texts a task encodes, and their characters (the cost)."""

    texts: float
    chars: float

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.texts + other.texts, self.chars + other.chars)

    def scaled(self, factor: float) -> Cost:
        return Cost(self.texts * factor, self.chars * factor)


NO_COST = Cost(0.0, 0.0)


def estimate_cost(task: AbsTask) -> Cost | None:
    """The task's estimated cost from mteb's statistics, or None when it has none."""
    stats = task.metadata.descriptive_stats
    if not stats:
        return None
    subsets = list(task.hf_subsets) if task.metadata.is_multilingual else None
    total = NO_COST
    for split in task.eval_splits:
        if split not in stats:
            return None  # statistics of other splits than the evaluated ones: no estimate
        for block in _subset_blocks(stats[split], subsets):
            total += _embedded(task, block)
    if isinstance(task, AbsTaskClassification) and task.train_split not in task.eval_splits:
        train = stats.get(task.train_split)
        if train is None:
            return None
        # the same train texts serve every evaluated split (the store encodes them once)
        for block in _subset_blocks(train, subsets):
            total += _train_undersample(task, block)
    return total


def _subset_blocks(
    split_stats: Mapping[str, Any], subsets: Sequence[str] | None
) -> Iterator[Mapping[str, Any]]:
    """The statistics of the subsets kept (the whole split when it has no per-subset ones)."""
    per_subset = split_stats.get(_SUBSETS)
    if subsets is None or not per_subset or any(s not in per_subset for s in subsets):
        yield split_stats
        return
    for s in subsets:
        yield per_subset[s]


def _text_columns(block: Mapping[str, Any]) -> Cost:
    """Sum over the block's text columns: every value holding a text-length statistic."""
    total = NO_COST
    for value in block.values():
        if isinstance(value, Mapping) and "average_text_length" in value:
            n = float(value.get("unique_texts") or 0)
            total += Cost(n, n * float(value.get("average_text_length") or 0.0))
    return total


def _embedded(task: AbsTask, block: Mapping[str, Any]) -> Cost:
    cost = _text_columns(block)
    n = block.get("num_samples")
    if not isinstance(task, AbsTaskClustering) or not n:
        return cost
    most = getattr(task, "max_document_to_embed", None)
    fraction = getattr(task, "max_fraction_of_documents_to_embed", None)
    if most is not None:
        return cost.scaled(min(1.0, most / n))
    if fraction is not None:
        return cost.scaled(min(1.0, int(fraction * n) / n))
    return cost


def _train_undersample(task: AbsTask, block: Mapping[str, Any]) -> Cost:
    cost = _text_columns(block)
    labels = (block.get("label_statistics") or block.get("labels_statistics") or {}).get(
        "unique_labels"
    )
    if not labels or not cost.texts:
        return cost
    most = labels * getattr(task, "samples_per_label", 8) * getattr(task, "n_experiments", 10)
    return cost.scaled(min(1.0, most / cost.texts))
