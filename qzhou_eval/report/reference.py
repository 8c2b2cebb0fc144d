"""Reference scores to compare a run with: the published QZhou results, a results folder or a CSV.

A reference is scored with the same task objects (hence the same split/subset filters and the same
MultilingualSentiment definition) as the runs it is compared with.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from mteb.abstasks import AbsTask
from mteb.results import TaskResult

from qzhou_eval.errors import UserError
from qzhou_eval.report.discover import RunId, discover_runs, experiment_dim, resolve_results_dirs
from qzhou_eval.report.scores import Loaded, Part, RunScores, TaskScore, load_run_scores, score_run

DEFAULT_LABEL = "published QZhou results (package data)"
_CSV_REQUIRED = ("model", "task", "main_score")


def package_reference_dir() -> Path:
    """The package's copy of the published QZhou result files (mteb results layout)."""
    return Path(str(resources.files("qzhou_eval") / "data" / "reference" / "results"))


def published_table_path() -> Path:
    """The package's transcription of the published tables (``published.csv``, ×100)."""
    return Path(str(resources.files("qzhou_eval") / "data" / "reference" / "published.csv"))


@dataclass(frozen=True)
class Reference:
    """Scored reference runs, by run id."""

    label: str
    runs: dict[RunId, RunScores] = field(default_factory=dict)

    def find(self, run: RunScores, reference_model: str | None = None) -> RunScores | None:
        """The reference run to compare ``run`` with, or None.

        Same model name (or ``reference_model``: ``org/name`` or ``org/name@revision``) and same
        experiment; an ``embed_dim_<d>`` experiment also matches a base run whose model_meta says
        ``embed_dim: d``. Among several revisions: the run's own, else the most complete one.
        """
        name, _, revision = (reference_model or run.run.model).partition("@")
        pool = [
            r
            for r in self.runs.values()
            if r.run.model == name and (not revision or r.run.revision == revision)
        ]
        same = [r for r in pool if r.run.experiment == run.run.experiment]
        if not same and run.run.experiment is not None:
            dim = experiment_dim(run.run.experiment)
            same = [r for r in pool if r.run.experiment is None and dim and r.embed_dim == dim]
        if not same:
            return None
        same.sort(
            key=lambda r: (r.run.revision != run.run.revision, -_n_complete(r), r.run.revision)
        )
        return same[0]


def load_reference(spec: object, tasks: Sequence[AbsTask]) -> Reference | None:
    """The reference named by the ``reference`` setting, scored over ``tasks``.

    ``None``/``"default"``: the published QZhou results shipped in the package.
    ``False``/``"none"``: no reference. A ``.csv`` path: a CSV of scores. Any other path: a results
    folder.
    """
    if spec is False or (isinstance(spec, str) and spec.lower() in ("none", "false", "off")):
        return None
    if spec is None or (isinstance(spec, str) and spec.lower() == "default"):
        return load_reference_dir(package_reference_dir(), tasks, label=DEFAULT_LABEL)
    path = Path(str(spec)).expanduser()
    if path.suffix.lower() == ".csv":
        return load_reference_csv(path, tasks)
    return load_reference_dir(path, tasks)


def load_reference_dir(path: Path, tasks: Sequence[AbsTask], label: str | None = None) -> Reference:
    """Every run in a results folder (experiments included), scored over ``tasks``."""
    try:
        dirs = resolve_results_dirs(path)
    except UserError as e:
        raise UserError(f"reference: {e}") from None
    runs = {run.id: load_run_scores(run, tasks) for run in discover_runs(dirs)}
    return Reference(label=label or str(path), runs=runs)


def load_reference_csv(path: Path, tasks: Sequence[AbsTask]) -> Reference:
    """Scores from a CSV with columns ``model``, ``task``, ``main_score`` (0–1 scale).

    Optional columns: ``revision``, ``experiment``, and ``split`` + ``subset``. With split and
    subset, rows are per (split, subset) — like ``qzhou_per_task.csv`` or this report's
    ``*_scores.csv`` — and the task filters pick the counted ones; without, each row is a task
    score. Rows of tasks not in ``tasks`` are ignored.
    """
    if not path.is_file():
        raise UserError(f"reference CSV {str(path)!r} does not exist")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = set(reader.fieldnames or ())
        rows = list(reader)
    lacking = [c for c in _CSV_REQUIRED if c not in columns]
    if lacking:
        raise UserError(f"reference CSV {path} lacks column(s) {', '.join(lacking)}")
    per_pair = {"split", "subset"} <= columns
    wanted = {t.metadata.name for t in tasks}
    grouped: dict[RunId, dict[str, list[dict[str, str]]]] = {}
    for row in rows:
        if row["task"] not in wanted:
            continue
        run = RunId(row["model"], row.get("revision") or "", row.get("experiment") or None)
        grouped.setdefault(run, {}).setdefault(row["task"], []).append(row)
    runs = {}
    for run, by_task in grouped.items():
        if per_pair:
            loaded: dict[str, Loaded] = {
                n: _csv_task_result(n, r, path) for n, r in by_task.items()
            }
            runs[run] = score_run(run, tasks, loaded, str(path), experiment_dim(run.experiment))
        else:
            runs[run] = _csv_task_scores(run, tasks, by_task, path)
    return Reference(label=str(path), runs=runs)


def _csv_score(row: dict[str, str], path: Path) -> float:
    try:
        value = float(row["main_score"])
    except ValueError:
        raise UserError(
            f"reference CSV {path}: main_score {row['main_score']!r} of {row['task']} is no number"
        ) from None
    if not math.isfinite(value) or abs(value) > 1.0:
        raise UserError(
            f"reference CSV {path}: main_score {value} of {row['task']} is not on the 0–1 scale "
            "of mteb's result files"
        )
    return value


def _csv_task_result(task: str, rows: list[dict[str, str]], path: Path) -> TaskResult:
    scores: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        entry = {"hf_subset": row["subset"], "main_score": _csv_score(row, path), "languages": []}
        split = scores.setdefault(row["split"], [])
        split[:] = [e for e in split if e["hf_subset"] != row["subset"]] + [entry]
    return TaskResult(
        dataset_revision="",
        task_name=task,
        mteb_version=None,
        scores=scores,
        evaluation_time=None,
    )


def _csv_task_scores(
    run: RunId, tasks: Sequence[AbsTask], by_task: dict[str, list[dict[str, str]]], path: Path
) -> RunScores:
    scored = []
    for task in tasks:
        meta = task.metadata
        base = {"name": meta.name, "task_type": str(meta.type), "main_score_name": meta.main_score}
        rows = by_task.get(meta.name)
        if not rows:
            scored.append(TaskScore(**base, score=None, problem="not in the reference CSV"))
            continue
        value = _csv_score(rows[-1], path)
        scored.append(TaskScore(**base, score=value, parts=(Part("-", "-", value),)))
    return RunScores(run, tuple(scored), str(path), experiment_dim(run.experiment))


def _n_complete(run: RunScores) -> int:
    return sum(1 for t in run.tasks if t.complete)
