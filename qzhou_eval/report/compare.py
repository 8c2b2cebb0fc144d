"""Compare runs with a reference: load it, match each run to its reference run, one verdict each.

A reference is the published QZhou results shipped in the package (the default), a results folder
or a CSV of scores. It is scored with the same task objects (hence the same split/subset filters
and the same MultilingualSentiment definition) as the runs it is compared with. The package also
ships the published tables (``published.csv``, ×100 as printed), of which the report shows the
model card's MRL rows.

Differences are in score points on the tables' ×100 scale and computed from unrounded scores; a
difference is flagged when its absolute value exceeds the tolerance.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

from mteb.abstasks import AbsTask
from mteb.results import TaskResult

from qzhou_eval.errors import UserError
from qzhou_eval.report.discover import (
    RunId,
    discover_runs,
    experiment_dim,
    resolve_results_dirs,
    same_revision,
)
from qzhou_eval.report.score import (
    MEAN_TASK,
    MEAN_TASK_TYPE,
    Loaded,
    Part,
    RunScores,
    Summary,
    TaskScore,
    load_run_scores,
    score_run,
)

DEFAULT_LABEL = "published QZhou results (package data)"
_CSV_REQUIRED = ("model", "task", "main_score")

# -- the package's reference data ---------------------------------------------------------------


def package_reference_dir() -> Path:
    """The package's copy of the published QZhou result files (mteb results layout)."""
    return Path(str(resources.files("qzhou_eval") / "data" / "reference" / "results"))


def published_table_path() -> Path:
    """The package's transcription of the published tables (``published.csv``, ×100)."""
    return Path(str(resources.files("qzhou_eval") / "data" / "reference" / "published.csv"))


MRL_TABLE = "Zh card Table 3: MRL output dimension (CMTEB)"
MRL_MODEL = "Kingsoft-LLM/QZhou-Embedding-Zh"
MRL_BENCHMARK = "MTEB(cmn, v1)"
TYPE_COLUMNS = (
    "Classification",
    "Clustering",
    "PairClassification",
    "Reranking",
    "Retrieval",
    "STS",
    "Summarization",
    "Mean(Task)",
    "Mean(TaskType)",
)


@cache
def published_rows() -> tuple[dict[str, str], ...]:
    """Every row of ``published.csv``."""
    with published_table_path().open(newline="", encoding="utf-8") as f:
        return tuple(csv.DictReader(f))


def published_row(table_prefix: str, row: str) -> dict[str, float]:
    """The non-empty columns of one published row, as points (×100)."""
    for r in published_rows():
        if r["table"].startswith(table_prefix) and r["row"] == row:
            return {c: float(r[c]) for c in TYPE_COLUMNS if r.get(c)}
    raise KeyError(f"no published row {row!r} in a table starting {table_prefix!r}")


def published_mrl(model: str, benchmark: str) -> dict[int, dict[str, float]]:
    """The model card's per-dimension rows for QZhou-Embedding-Zh on CMTEB (else empty)."""
    if model != MRL_MODEL or benchmark != MRL_BENCHMARK:
        return {}
    out = {}
    for r in published_rows():
        match = re.match(r"dim=(\d+)", r["row"])
        if r["table"] == MRL_TABLE and match:
            out[int(match.group(1))] = {c: float(r[c]) for c in TYPE_COLUMNS if r.get(c)}
    return out


# -- reference runs ------------------------------------------------------------------------------


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
            if r.run.model == name and (not revision or same_revision(revision, r.run.revision))
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


def reference_off(spec: object) -> bool:
    """Whether the ``reference`` setting asks for no comparison."""
    return spec is False or (isinstance(spec, str) and spec.lower() in ("none", "false", "off"))


def load_reference(spec: object, tasks: Sequence[AbsTask]) -> Reference | None:
    """The reference named by the ``reference`` setting, scored over ``tasks``.

    ``None``/``"default"``: the published QZhou results shipped in the package.
    ``False``/``"none"``: no reference. A ``.csv`` path: a CSV of scores. Any other path: a results
    folder.
    """
    if reference_off(spec):
        return None
    if spec is None or (isinstance(spec, str) and spec.lower() == "default"):
        return load_reference_dir(package_reference_dir(), tasks, label=DEFAULT_LABEL)
    path = Path(str(spec)).expanduser()
    if path.suffix.lower() == ".csv":
        return load_reference_csv(path, tasks)
    return load_reference_dir(path, tasks)


def load_reference_dir(path: Path, tasks: Sequence[AbsTask], label: str | None = None) -> Reference:
    """Every run in a results folder (experiments included), scored over ``tasks``."""
    if not Path(path).is_dir():  # (not "results_dir ...": the setting is reference)
        raise UserError(
            f"reference={path}: is not a folder in mteb's results layout, nor a .csv file of scores"
        )
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
    score. Rows of tasks not in ``tasks`` are ignored. A malformed file raises a UserError naming
    the file and the line.
    """
    columns, rows = _read_csv(path)
    lacking = [c for c in _CSV_REQUIRED if c not in columns]
    if lacking:
        raise UserError(f"reference CSV {path} lacks column(s) {', '.join(lacking)}")
    per_pair = {"split", "subset"} <= set(columns)
    wanted = {t.metadata.name for t in tasks}
    grouped: dict[RunId, dict[str, list[_CsvRow]]] = {}
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


class _CsvRow(dict[str, str]):
    """One data row of a reference CSV (column -> value), with the line it starts on."""

    def __init__(self, line: int, values: dict[str, str]) -> None:
        super().__init__(values)
        self.line = line


def _read_csv(path: Path) -> tuple[list[str], list[_CsvRow]]:
    """The header and the data rows (blank lines skipped); UserError for a malformed file.

    Read strictly, unlike ``csv.DictReader``'s defaults, which pass an unclosed quote (the rest of
    the file becomes one field) and rows with missing fields (as None) without a word.
    """
    if not path.is_file():
        raise UserError(f"reference CSV {str(path)!r} does not exist")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UserError(f"reference CSV {path} cannot be read: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise UserError(
            f"reference CSV {path}, line {line}: not UTF-8 text (byte {data[e.start]:#04x}); "
            "give a CSV file saved as UTF-8"
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    rows: list[_CsvRow] = []
    line = 1  # where the record being read starts
    try:
        for fields in reader:
            start, line = line, reader.line_num + 1
            if not fields:
                continue
            if header is None:
                header = fields
            elif len(fields) != len(header):
                raise UserError(
                    f"reference CSV {path}, line {start}: {len(fields)} field(s) where the header "
                    f"has {len(header)}"
                )
            else:
                rows.append(_CsvRow(start, dict(zip(header, fields, strict=True))))
    except csv.Error as e:
        problem = str(e)
        if "unexpected end of data" in problem:
            problem = "a quoted field opened here is never closed"
        raise UserError(f"reference CSV {path}, line {line}: {problem}") from None
    return header or [], rows


def _csv_score(row: _CsvRow, path: Path) -> float:
    where = f"reference CSV {path}, line {row.line}"
    try:
        value = float(row["main_score"])
    except ValueError:
        raise UserError(
            f"{where}: main_score {row['main_score']!r} of {row['task']} is no number"
        ) from None
    if not math.isfinite(value) or abs(value) > 1.0:
        raise UserError(
            f"{where}: main_score {value} of {row['task']} is not on the 0–1 scale of mteb's "
            "result files"
        )
    return value


def _check_unique(rows: list[_CsvRow], path: Path, key: tuple[str, ...]) -> None:
    """UserError naming the line of a second, different score for the same ``key`` columns
    (a repeated identical row is harmless)."""
    first: dict[tuple[str, ...], _CsvRow] = {}
    for row in rows:
        other = first.setdefault(tuple(row[k] for k in key), row)
        if other is not row and _csv_score(other, path) != _csv_score(row, path):
            what = " ".join(f"{k} {row[k]!r}" for k in key)
            raise UserError(
                f"reference CSV {path}, line {row.line}: a second main_score for {what} of "
                f"model {row['model']!r} ({row['main_score']}; line {other.line} has "
                f"{other['main_score']}); keep one row"
            )


def _csv_task_result(task: str, rows: list[_CsvRow], path: Path) -> TaskResult:
    _check_unique(rows, path, ("task", "split", "subset"))
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
    run: RunId, tasks: Sequence[AbsTask], by_task: dict[str, list[_CsvRow]], path: Path
) -> RunScores:
    scored = []
    for task in tasks:
        meta = task.metadata
        base = {"name": meta.name, "task_type": str(meta.type), "main_score_name": meta.main_score}
        rows = by_task.get(meta.name)
        if not rows:
            scored.append(TaskScore(**base, score=None, problem="not in the reference CSV"))
            continue
        _check_unique(rows, path, ("task",))
        value = _csv_score(rows[-1], path)
        scored.append(TaskScore(**base, score=value, parts=(Part("-", "-", value),)))
    return RunScores(run, tuple(scored), str(path), experiment_dim(run.experiment))


def _n_complete(run: RunScores) -> int:
    return sum(1 for t in run.tasks if t.complete)


# -- comparison ----------------------------------------------------------------------------------

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCOMPLETE = "incomplete"
DEFAULT_TOLERANCE = 0.01
_EPS = 1e-9  # float noise when the tolerance sits exactly on a difference


@dataclass(frozen=True)
class Delta:
    """One compared value: scores on the 0–1 scale, ``diff`` in points (×100)."""

    name: str
    task_type: str | None
    run: float | None
    reference: float | None
    tolerance: float

    @property
    def diff(self) -> float | None:
        if self.run is None or self.reference is None:
            return None
        return (self.run - self.reference) * 100.0

    @property
    def flagged(self) -> bool:
        diff = self.diff
        return diff is not None and abs(diff) > self.tolerance + _EPS


@dataclass(frozen=True)
class Comparison:
    """A run against its reference."""

    run: Summary
    reference: Summary
    reference_label: str
    tolerance: float
    tasks: tuple[Delta, ...]
    types: tuple[Delta, ...]
    means: tuple[Delta, ...]

    @property
    def flagged_tasks(self) -> list[Delta]:
        return [d for d in self.tasks if d.flagged]

    @property
    def missing_in_run(self) -> list[str]:
        return [d.name for d in self.tasks if d.run is None]

    @property
    def missing_in_reference(self) -> list[str]:
        return [d.name for d in self.tasks if d.reference is None]

    @property
    def verdict(self) -> str:
        if any(d.flagged for d in (*self.tasks, *self.types, *self.means)):
            return NOT_REPRODUCED
        if self.missing_in_run or self.missing_in_reference:
            return INCOMPLETE
        return REPRODUCED

    def verdict_line(self) -> str:
        """``REPRODUCED: ...`` / ``NOT REPRODUCED: ...`` / ``INCOMPLETE: ...`` in one line."""
        tol = f"±{self.tolerance:g} points"
        compared = [d for d in self.tasks if d.diff is not None]
        n = len(self.tasks)
        largest = max(compared, key=lambda d: abs(d.diff or 0.0), default=None)
        worst = ""
        if largest is not None:
            size = abs(largest.diff or 0.0)
            worst = f"; largest |Δ| {size:.2f}" + (f" ({largest.name})" if size > 0 else "")
        gaps = []
        if self.missing_in_run:
            gaps.append(f"missing in the run: {_names(self.missing_in_run)}")
        if self.missing_in_reference:
            gaps.append(f"missing in the reference: {_names(self.missing_in_reference)}")
        verdict = self.verdict
        if verdict == NOT_REPRODUCED:
            flagged = self.flagged_tasks
            listed = ", ".join(f"{d.name} ({d.diff:+.2f})" for d in flagged[:8])
            more = f" and {len(flagged) - 8} more" if len(flagged) > 8 else ""
            text = f"{len(flagged)} of {n} tasks differ by more than {tol}: {listed}{more}"
            if not flagged:
                text = f"the means differ by more than {tol}"
            return f"NOT REPRODUCED: {text}" + (f"; {'; '.join(gaps)}" if gaps else "")
        if verdict == INCOMPLETE:
            return (
                f"INCOMPLETE: {len(compared)} of {n} tasks compared, all within {tol}; "
                + "; ".join(gaps)
            )
        return f"REPRODUCED: all {n} tasks within {tol}{worst}"


def compare(
    run: Summary, reference: Summary, tolerance: float = DEFAULT_TOLERANCE, label: str = ""
) -> Comparison:
    """Compare ``run`` with ``reference`` (both summarized over the same task objects)."""
    ref_tasks = reference.scores.by_name()
    tasks = tuple(
        Delta(
            t.name,
            t.task_type,
            t.score,
            ref_tasks[t.name].score if t.name in ref_tasks else None,
            tolerance,
        )
        for t in run.scores.tasks
    )
    types = tuple(
        Delta(name, name, m.value, _value(reference, name), tolerance)
        for name, m in run.types.items()
    )
    means = tuple(
        Delta(name, None, run.value(name), reference.value(name), tolerance)
        for name in (MEAN_TASK, MEAN_TASK_TYPE)
    )
    return Comparison(run, reference, label, tolerance, tasks, types, means)


def _value(summary: Summary, column: str) -> float | None:
    mean = summary.types.get(column)
    return mean.value if mean is not None else None


def _names(names: list[str], limit: int = 6) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more
