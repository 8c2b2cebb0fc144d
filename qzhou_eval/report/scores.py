"""Per-task leaderboard scores of one run, over exactly the splits and subsets a task counts.

Loading and filtering are mteb's: ``TaskResult.from_disk`` reads mteb 1.x and 2.x files (including
the pre-1.11 layout) and ``TaskResult.validate_and_filter_scores(task)`` keeps the splits and
subsets of the task object, which for benchmark tasks carry the leaderboard's filters (STS17
``en-en``, ATEC ``test``, ...). A task's score is the mean main score over the kept (split, subset)
pairs, as ``TaskResult.get_score()`` takes it. Written here is only the bookkeeping the leaderboard
does not do: listing what is missing instead of averaging around it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from mteb.abstasks import AbsTask
from mteb.results import TaskResult

from qzhou_eval.report.discover import RunDir, RunId

NO_FILE = "no result file"


@dataclass(frozen=True)
class Part:
    """One counted (split, subset) main score, on the 0–1 scale of the result files."""

    split: str
    subset: str
    score: float


@dataclass(frozen=True)
class TaskScore:
    """A task's leaderboard score in one run, or what keeps it from having one."""

    name: str
    task_type: str
    main_score_name: str
    score: float | None
    parts: tuple[Part, ...] = ()
    missing: tuple[tuple[str, str], ...] = ()
    problem: str | None = None

    @property
    def complete(self) -> bool:
        return self.score is not None

    def describe_missing(self) -> str:
        """``"Task: test/en-en, test/de"`` or ``"Task (no result file)"``; empty when complete."""
        if self.problem:
            return f"{self.name} ({self.problem})"
        if not self.missing:
            return ""
        return f"{self.name}: " + ", ".join(f"{split}/{subset}" for split, subset in self.missing)


@dataclass(frozen=True)
class RunScores:
    """The per-task scores of one run, in task order."""

    run: RunId
    tasks: tuple[TaskScore, ...]
    source: str
    embed_dim: int | None = None

    @property
    def complete(self) -> bool:
        return all(t.complete for t in self.tasks)

    @property
    def n_present(self) -> int:
        """How many tasks have at least one result (complete or partial)."""
        return sum(1 for t in self.tasks if t.problem != NO_FILE)

    def by_name(self) -> dict[str, TaskScore]:
        return {t.name: t for t in self.tasks}


Loaded = TaskResult | str | None
"""A task's loaded result, an error message when its file cannot be read, or None (no file)."""


def load_task_results(path: Path, tasks: Sequence[AbsTask]) -> dict[str, Loaded]:
    """Read ``<path>/<Task>.json`` for every task; never raises for a bad file."""
    loaded: dict[str, Loaded] = {}
    for task in tasks:
        name = task.metadata.name
        file = Path(path) / f"{name}.json"
        if not file.is_file():
            loaded[name] = None
            continue
        try:
            with _quiet_mteb():
                loaded[name] = TaskResult.from_disk(file)
        except Exception as e:
            loaded[name] = f"unreadable result file: {_one_line(e)}"
    return loaded


def score_task(task: AbsTask, result: Loaded) -> TaskScore:
    """The leaderboard score of ``task`` from ``result``, or the list of what is missing."""
    meta = task.metadata
    base = {"name": meta.name, "task_type": str(meta.type), "main_score_name": meta.main_score}
    if result is None:
        return TaskScore(**base, score=None, problem=NO_FILE)
    if isinstance(result, str):
        return TaskScore(**base, score=None, problem=result)
    with _quiet_mteb():
        kept = result.validate_and_filter_scores(task)
    parts: list[Part] = []
    missing: list[tuple[str, str]] = []
    for split in task.eval_splits:
        for entry in sorted(kept.scores.get(split, []), key=lambda e: str(e["hf_subset"])):
            value = entry.get("main_score")
            if _is_number(value):
                parts.append(Part(split, str(entry["hf_subset"]), float(value)))
            else:
                missing.append((split, str(entry["hf_subset"])))
    if missing or not parts:
        problem = None if parts or missing else "no counted split/subset in the result file"
        return TaskScore(
            **base, score=None, parts=tuple(parts), missing=tuple(missing), problem=problem
        )
    # The mean over the counted pairs, as TaskResult.get_score() takes it; computed from the parts
    # because get_score() also drops entries whose "languages" list is empty.
    score = float(np.mean([p.score for p in parts]))
    return TaskScore(**base, score=score, parts=tuple(parts))


def score_run(
    run: RunId,
    tasks: Sequence[AbsTask],
    loaded: Mapping[str, Loaded],
    source: str,
    embed_dim: int | None = None,
) -> RunScores:
    """Score every task of ``tasks`` from already loaded results."""
    scored = tuple(score_task(t, loaded.get(t.metadata.name)) for t in tasks)
    return RunScores(run=run, tasks=scored, source=source, embed_dim=embed_dim)


def load_run_scores(run: RunDir, tasks: Sequence[AbsTask]) -> RunScores:
    """Load and score one run folder."""
    loaded = load_task_results(run.path, tasks)
    return score_run(run.id, tasks, loaded, str(run.path), run.embed_dim)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return (text[:157] + "...") if len(text) > 160 else text or type(error).__name__


@contextlib.contextmanager
def _quiet_mteb() -> Iterator[None]:
    """Silence mteb's own missing-split warnings: the report lists what is missing itself."""
    names = ("mteb.results.task_result", "mteb")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
