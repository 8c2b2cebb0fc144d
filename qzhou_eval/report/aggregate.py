"""Leaderboard means: per task type, Mean(Task) and Mean(TaskType), never over incomplete data.

As the MTEB leaderboard computes them: Mean(Task) is the mean of the task scores, a type's score
is the mean of its tasks' scores, Mean(TaskType) is the mean of the type scores. Unlike mteb's
``Benchmark.get_score`` (which blanks every type as soon as one task is missing), a complete type
keeps its mean here; an incomplete one has none, only the count of what is there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from qzhou_eval.report.discover import RunId
from qzhou_eval.report.scores import RunScores


@dataclass(frozen=True)
class Mean:
    """A mean that exists only when all of its ``n_total`` inputs are present."""

    value: float | None
    n_present: int
    n_total: int

    @property
    def complete(self) -> bool:
        return self.value is not None


@dataclass(frozen=True)
class Summary:
    """A run's leaderboard row: the per-type means and the two overall means (0–1 scale)."""

    scores: RunScores
    types: dict[str, Mean]
    mean_task: Mean
    mean_task_type: Mean

    @property
    def run(self) -> RunId:
        return self.scores.run

    @property
    def complete(self) -> bool:
        return self.mean_task.complete

    def value(self, column: str) -> float | None:
        """The value of a leaderboard column: a task type, ``Mean(Task)`` or ``Mean(TaskType)``."""
        return self.mean(column).value

    def mean(self, column: str) -> Mean:
        if column == MEAN_TASK:
            return self.mean_task
        if column == MEAN_TASK_TYPE:
            return self.mean_task_type
        return self.types[column]


MEAN_TASK = "Mean(Task)"
MEAN_TASK_TYPE = "Mean(TaskType)"


def mean_of(values: Sequence[float | None]) -> Mean:
    """The mean of ``values``, or no value when any of them is missing."""
    present = [v for v in values if v is not None]
    value = float(np.mean(present)) if present and len(present) == len(values) else None
    return Mean(value, len(present), len(values))


def summarize(scores: RunScores) -> Summary:
    """The leaderboard row of one run."""
    by_type: dict[str, list[float | None]] = {}
    for task in scores.tasks:
        by_type.setdefault(task.task_type, []).append(task.score)
    types = {t: mean_of(by_type[t]) for t in sorted(by_type)}
    return Summary(
        scores=scores,
        types=types,
        mean_task=mean_of([t.score for t in scores.tasks]),
        mean_task_type=mean_of([m.value for m in types.values()]),
    )


def task_types(summaries: Iterable[Summary]) -> list[str]:
    """The task types of the summaries, in the leaderboard's (alphabetical) column order."""
    return sorted({t for s in summaries for t in s.types})


def leaderboard_order(summaries: Iterable[Summary]) -> list[Summary]:
    """Best Mean(TaskType) first; rows without one follow, by Mean(Task), then by name."""

    def key(s: Summary) -> tuple[int, float, float, str, str, str]:
        mtt, mt = s.mean_task_type.value, s.mean_task.value
        return (
            0 if mtt is not None else 1,
            -(mtt if mtt is not None else 0.0),
            -(mt if mt is not None else 0.0),
            s.run.model,
            s.run.revision,
            s.run.experiment or "",
        )

    return sorted(summaries, key=key)
