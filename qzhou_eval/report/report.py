"""Build a report: every run over a task list, scored, summarized and compared with its reference.

The same builder serves ``python -m qzhou_eval.report`` and the runners' end-of-run summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mteb.abstasks import AbsTask

from qzhou_eval.errors import UserError
from qzhou_eval.report.aggregate import Summary, leaderboard_order, summarize
from qzhou_eval.report.compare import DEFAULT_TOLERANCE, Comparison, compare
from qzhou_eval.report.definitions import (
    DEFAULT_DEFINITION,
    affected_tasks,
    apply_definition,
    describe_definition,
    other_definition,
)
from qzhou_eval.report.discover import RunDir, RunId
from qzhou_eval.report.reference import Reference, load_reference
from qzhou_eval.report.scores import load_task_results, score_run

KNOWN_BENCHMARKS = ("MTEB(eng, v2)", "MTEB(cmn, v1)")


@dataclass(frozen=True)
class BenchmarkInfo:
    """What the task list is: a whole benchmark, a subset of one, or a list of its own."""

    key: str
    name: str
    n_tasks: int
    n_full: int | None = None

    @property
    def is_subset(self) -> bool:
        return self.n_full is not None and self.n_tasks < self.n_full

    def describe(self) -> str:
        if self.is_subset:
            return (
                f"{self.name}: subset of {self.n_tasks} of its {self.n_full} tasks, not the full "
                "benchmark (the means cover these tasks only)"
            )
        if self.n_full is not None:
            return f"{self.name}: all {self.n_tasks} tasks"
        return f"{self.name}: {self.n_tasks} task{'' if self.n_tasks == 1 else 's'}"


def detect_benchmark(tasks: Sequence[AbsTask], name: str | None = None) -> BenchmarkInfo:
    """Name the task list: the given benchmark, or a known mteb benchmark that contains it."""
    import mteb

    names = {t.metadata.name for t in tasks}
    candidates = [name] if name else list(KNOWN_BENCHMARKS)
    for candidate in candidates:
        try:
            full = {t.metadata.name for t in mteb.get_benchmark(candidate).tasks}
        except (KeyError, ValueError):
            continue
        if names <= full:
            return BenchmarkInfo(candidate, candidate, len(names), len(full))
    return BenchmarkInfo(name or "tasks", name or "custom task list", len(names))


@dataclass
class Report:
    """Everything the tables, files and plots are made from."""

    benchmark: BenchmarkInfo
    definition: str
    definition_line: str | None
    alternative_line: str | None
    results_dirs: list[Path]
    tolerance: float
    summaries: list[Summary] = field(default_factory=list)
    alternative: list[Summary] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    reference_label: str | None = None
    no_reference: list[RunId] = field(default_factory=list)
    skipped: list[RunId] = field(default_factory=list)


def build_report(
    runs: Sequence[RunDir],
    tasks: Sequence[AbsTask],
    benchmark: BenchmarkInfo,
    results_dirs: Sequence[Path],
    *,
    definition: str = DEFAULT_DEFINITION,
    reference: object = None,
    reference_model: str | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    keep_empty: bool = False,
) -> Report:
    """Score every run over ``tasks`` under ``definition`` and compare it with its reference.

    Runs with no result for any of the tasks are listed as skipped (kept when ``keep_empty``).
    """
    effective = apply_definition(tasks, definition)
    alt_tasks = []
    if affected_tasks(tasks):
        alt_tasks = apply_definition(tasks, other_definition(definition))
    report = Report(
        benchmark=benchmark,
        definition=definition,
        definition_line=describe_definition(definition, tasks),
        alternative_line=describe_definition(other_definition(definition), tasks),
        results_dirs=list(results_dirs),
        tolerance=tolerance,
    )
    main, alt = [], {}
    for run in runs:
        loaded = load_task_results(run.path, tasks)
        scores = score_run(run.id, effective, loaded, str(run.path), run.embed_dim)
        if scores.n_present == 0 and not keep_empty:
            report.skipped.append(run.id)
            continue
        main.append(summarize(scores))
        if alt_tasks:
            alt_scores = score_run(run.id, alt_tasks, loaded, str(run.path), run.embed_dim)
            alt[run.id] = summarize(alt_scores)
    report.summaries = leaderboard_order(main)
    report.alternative = [alt[s.run] for s in report.summaries if s.run in alt]
    ref = load_reference(reference, effective) if report.summaries else None
    if ref is not None:
        _add_comparisons(report, ref, reference_model, tolerance)
    return report


def _add_comparisons(
    report: Report, ref: Reference, reference_model: str | None, tolerance: float
) -> None:
    report.reference_label = ref.label
    for summary in report.summaries:
        found = ref.find(summary.scores, reference_model)
        if found is None:
            report.no_reference.append(summary.run)
            continue
        report.comparisons.append(compare(summary, summarize(found), tolerance, ref.label))


def check_nonempty(report: Report, tasks: Sequence[AbsTask]) -> None:
    """Raise a UserError when no run has any result for the tasks."""
    if not report.summaries:
        where = ", ".join(str(d) for d in report.results_dirs)
        found = ", ".join(str(r) for r in report.skipped) or "none"
        raise UserError(
            f"no results for any of the {len(tasks)} tasks of {report.benchmark.name} in {where} "
            f"(runs found: {found})"
        )
