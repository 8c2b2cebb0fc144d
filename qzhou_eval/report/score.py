"""What a run scores on the leaderboard: per task over the counted splits, per type, overall.

Which splits count: today's mteb definition, or the one behind the published numbers. The
published CMTEB numbers were computed when MultilingualSentiment counted only its ``validation``
split; today's mteb definition averages ``validation`` and ``test``. Every other task of
MTEB(eng, v2) and MTEB(cmn, v1) is counted the same way under both definitions.

Per-task scores: loading and filtering are mteb's. ``TaskResult.from_disk`` reads mteb 1.x and 2.x
files (including the pre-1.11 layout) and ``TaskResult.validate_and_filter_scores(task)`` keeps
the splits and subsets of the task object, which for benchmark tasks carry the leaderboard's
filters (STS17 ``en-en``, ATEC ``test``, ...). A task's score is the mean main score over the
kept (split, subset) pairs, as ``TaskResult.get_score()`` takes it. Written here is only the
bookkeeping the leaderboard does not do: listing what is missing instead of averaging around it.

Means, as the MTEB leaderboard computes them: Mean(Task) is the mean of the task scores, a type's
score is the mean of its tasks' scores, Mean(TaskType) is the mean of the type scores. Unlike
mteb's ``Benchmark.get_score`` (which blanks every type as soon as one task is missing), a
complete type keeps its mean here; an incomplete one has none, only the count of what is there.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from mteb.abstasks import AbsTask
from mteb.results import TaskResult

from qzhou_eval.errors import ConfigError, is_number, one_line, shown
from qzhou_eval.report.data import unvouched
from qzhou_eval.report.discover import RunDir, RunId

# -- which splits count -------------------------------------------------------------------------

PUBLISHED = "published"
CURRENT = "current"
DEFINITIONS = (PUBLISHED, CURRENT)
# The published numbers reproduce only under this definition, and reproducing them is what the
# report is for; the other definition's numbers are printed beside them wherever they differ.
DEFAULT_DEFINITION = PUBLISHED

# task name -> the splits it counted when the published numbers were computed
PUBLISHED_SPLITS: dict[str, tuple[str, ...]] = {"MultilingualSentiment": ("validation",)}


def check_definition(definition: object) -> str:
    """Return ``definition`` if it is known, else raise a one-line ConfigError."""
    if not isinstance(definition, str) or definition not in DEFINITIONS:
        raise ConfigError(
            f"definition={shown(definition)} is unknown; use one of {list(DEFINITIONS)}"
        )
    return definition


def other_definition(definition: str) -> str:
    """The definition that is not ``definition``."""
    return CURRENT if check_definition(definition) == PUBLISHED else PUBLISHED


def affected_tasks(tasks: Sequence[AbsTask]) -> list[str]:
    """Names of the tasks that the two definitions count differently."""
    return [t.metadata.name for t in tasks if _published_splits(t) is not None]


def apply_definition(tasks: Sequence[AbsTask], definition: str) -> list[AbsTask]:
    """The tasks as ``definition`` counts them.

    Affected tasks are shallow copies narrowed to the published splits; the caller's task objects
    (often mteb's cached benchmark objects) are never modified.
    """
    if check_definition(definition) == CURRENT:
        return list(tasks)
    out: list[AbsTask] = []
    for task in tasks:
        splits = _published_splits(task)
        if splits is None:
            out.append(task)
        else:
            narrowed = copy.copy(task)
            narrowed.filter_eval_splits(list(splits))
            out.append(narrowed)
    return out


def describe_definition(definition: str, tasks: Sequence[AbsTask]) -> str | None:
    """One line saying what the affected tasks count, or None when no task is affected."""
    check_definition(definition)
    parts = []
    for task in tasks:
        published = _published_splits(task)
        if published is None:
            continue
        if definition == PUBLISHED:
            what = (
                f"{_join(published)} only (the published definition, as in the published numbers;"
                " mteb and its leaderboard today count both splits)"
            )
        else:
            what = f"{_join(task.eval_splits)} (today's definition: mteb's and its leaderboard's)"
        parts.append(f"{task.metadata.name} counts {what}")
    return "; ".join(parts) or None


def _join(splits: Sequence[str]) -> str:
    return " and ".join(splits)


def _published_splits(task: AbsTask) -> tuple[str, ...] | None:
    """The published split set of ``task`` when it differs from its current one, else None."""
    splits = PUBLISHED_SPLITS.get(task.metadata.name)
    if splits is None or not set(splits) <= set(task.eval_splits):
        return None
    if tuple(splits) == tuple(task.eval_splits):
        return None
    return splits


# -- per-task scores -----------------------------------------------------------------------------

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


def load_task_results(paths: Path | Sequence[Path], tasks: Sequence[AbsTask]) -> dict[str, Loaded]:
    """Read ``<path>/<Task>.json`` for every task from the run's folder(s); never raises for a
    bad file. A task counted in two of a run's folders (a shard run twice) counts once where
    their scores are equal, and not at all where they differ."""
    folders = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    loaded: dict[str, Loaded] = {}
    for task in tasks:
        name = task.metadata.name
        held = [p for p in folders if (p / f"{name}.json").is_file()]
        found = [_load_one(p, name) for p in held]
        counted = [r for r in found if isinstance(r, TaskResult)]
        if len({json.dumps(r.scores, sort_keys=True, default=str) for r in counted}) > 1:
            where = " and ".join(map(str, held))
            loaded[name] = f"different scores in {where}: not counted (report the folders apart)"
        else:
            loaded[name] = (counted or found or [None])[0]
    return loaded


def _load_one(path: Path, name: str) -> Loaded:
    why = unvouched(path, name)
    if why is not None:
        return why
    try:
        with _quiet_mteb():
            result = TaskResult.from_disk(path / f"{name}.json")
    except Exception as e:
        return f"unreadable result file: {_why_unreadable(path / f'{name}.json', e)}"
    if result.task_name != name:  # mteb's loaders file it under the name it holds
        return f"the file holds a result of {result.task_name}, not of {name}"
    return result


_JSON_KINDS = {list: "an array", str: "a string", bool: "true or false", type(None): "null"}


def _why_unreadable(file: Path, error: Exception) -> str:
    """Why mteb's loader refused ``file``, in words rather than its internals (a KeyError's
    bare key, an AttributeError of a list)."""
    try:
        data = json.loads(file.read_bytes())
    except (OSError, ValueError) as e:
        return one_line(e, limit=160)
    if not isinstance(data, dict):
        kind = _JSON_KINDS.get(type(data), "a number")
        return f"it holds {kind}, not mteb's result object"
    if isinstance(error, KeyError) and error.args:
        return f"it lacks {error.args[0]!r}, which mteb's loader reads"
    return one_line(error, limit=160)


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
    in_file = {
        (split, entry.get("hf_subset"))
        for split, entries in result.scores.items()
        for entry in entries
        if isinstance(entry, dict)
    }
    for split in task.eval_splits:
        for entry in sorted(kept.scores.get(split, []), key=lambda e: str(e["hf_subset"])):
            value = entry.get("main_score")
            if _is_number(value) and abs(float(value)) > 1:  # every main score mteb has
                problem = (
                    f"main_score {float(value):g} ({split}/{entry['hf_subset']}) is beyond "
                    "mteb's scale of at most 1 (a file of 0-100 scores?)"
                )
                return TaskScore(**base, score=None, problem=problem)
            if _is_number(value):
                parts.append(Part(split, str(entry["hf_subset"]), float(value)))
            elif (split, entry["hf_subset"]) in in_file:  # (its number damaged: not missing)
                problem = f"main_score {value!r} ({split}/{entry['hf_subset']}) is not a number"
                return TaskScore(**base, score=None, problem=problem)
            else:  # (mteb's loader puts NaN for a split/subset the file lacks)
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
    loaded = load_task_results(run.paths, tasks)
    return score_run(run.id, tasks, loaded, run.source, run.embed_dim)


def _is_number(value: object) -> bool:
    return is_number(value) and math.isfinite(value)


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


# -- leaderboard means ----------------------------------------------------------------------------


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
RANK = "Rank (Borda)"


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


def borda_ranks(summaries: Sequence[Summary]) -> dict[RunId, int | None]:
    """Each run's rank by Borda count among ``summaries`` (1 = best), the leaderboard's order;
    None for a run without any score, which the leaderboard leaves out.

    mteb 2.26's definition (``mteb/benchmarks/_create_table.py``; its functions are private, and
    its public summary table drops models and tasks its registry lacks): per task, the runs that
    have a score are ranked, equal scores sharing the average rank; each earns the number of runs
    that have any score (its table drops the others before counting) minus its rank; a missing
    task earns nothing. Most points first; equal points share the best rank."""
    scored_runs = [s for s in summaries if any(t.score is not None for t in s.scores.tasks)]
    n = len(scored_runs)
    points = {s.run: 0.0 for s in scored_runs}
    by_task: dict[str, list[tuple[float, RunId]]] = {}
    for s in scored_runs:
        for t in s.scores.tasks:
            if t.score is not None:
                by_task.setdefault(t.name, []).append((t.score, s.run))
    for scored in by_task.values():
        for score, run in scored:
            better = sum(1 for other, _ in scored if other > score)
            equal = sum(1 for other, _ in scored if other == score)
            points[run] += n - (better + (equal + 1) / 2)  # the average rank of the tie
    ranks: dict[RunId, int | None] = {s.run: None for s in summaries}
    ranks.update({run: 1 + sum(1 for o in points.values() if o > p) for run, p in points.items()})
    return ranks


def leaderboard_order(summaries: Iterable[Summary]) -> list[Summary]:
    """By Borda rank as the leaderboard (:func:`borda_ranks`); equal ranks by Mean(TaskType),
    then Mean(Task), then by name."""
    summaries = list(summaries)
    ranks = borda_ranks(summaries)

    def key(s: Summary) -> tuple[int, int, float, float, str, str, str]:
        mtt, mt = s.mean_task_type.value, s.mean_task.value
        rank = ranks[s.run]
        return (
            rank if rank is not None else len(summaries) + 1,  # (no score at all: last)
            0 if mtt is not None else 1,
            -(mtt if mtt is not None else 0.0),
            -(mt if mt is not None else 0.0),
            s.run.model,
            s.run.revision,
            s.run.experiment or "",
        )

    return sorted(summaries, key=key)
