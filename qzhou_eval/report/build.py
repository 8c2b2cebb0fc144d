"""Build a report: every run over a task list, scored, summarized and compared with its reference.

The same builder serves ``python -m qzhou_eval.report`` and the runners' end-of-run summary. What
the renderings show is decided here, once: which runs, which reference rows, which MRL sweeps and
whether the model card's published MRL rows go beside them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mteb.abstasks import AbsTask

from qzhou_eval.errors import UserError
from qzhou_eval.precision import BITS, DEFAULT_PRECISION, bytes_per_vector
from qzhou_eval.report.compare import (
    DEFAULT_TOLERANCE,
    Comparison,
    Reference,
    compare,
    load_reference,
    published_mrl,
)
from qzhou_eval.report.data import run_data, run_differs
from qzhou_eval.report.discover import (
    RunDir,
    RunId,
    experiment_point,
    meta_problem,
    run_dir,
    same_revision,
)
from qzhou_eval.report.score import (
    DEFAULT_DEFINITION,
    PUBLISHED,
    Summary,
    affected_tasks,
    apply_definition,
    describe_definition,
    leaderboard_order,
    load_task_results,
    other_definition,
    score_run,
    summarize,
)


@dataclass(frozen=True)
class BenchmarkInfo:
    """The benchmark a task list comes from, as the config names it.

    ``n_full`` is the number of tasks of the whole benchmark; None for a task list of its own.
    """

    key: str
    name: str
    n_full: int | None = None


def benchmark_info(bench_cfg: Mapping[str, Any], tasks: Sequence[AbsTask]) -> BenchmarkInfo:
    """The ``benchmark`` config's benchmark; ``tasks`` are its (possibly narrowed) tasks.

    ``key`` (the config file's name, used in report file names) falls back to ``name``.
    """
    from qzhou_eval.benchmarks import is_narrowed, load_benchmark_tasks, whole_benchmark

    n_full = len(tasks)
    if is_narrowed(bench_cfg):  # a task list or a shard: count the whole benchmark
        n_full = len(load_benchmark_tasks(whole_benchmark(bench_cfg)))
    name = str(bench_cfg.get("name"))
    return BenchmarkInfo(str(bench_cfg.get("key") or name), name, n_full)


@dataclass(frozen=True)
class MrlCurve:
    """One configuration's float32 summaries by output dimension (ascending).

    ``experiment``: the configuration's experiment apart from the dimension (a variant, the
    user's experiment; None: the model file's own). ``published``: the model card's rows (points
    ×100 by dimension and column) to show beside them; empty when there are none or they would
    not be comparable.
    """

    model: str
    revision: str
    points: dict[int, Summary]
    published: dict[int, dict[str, float]] = field(default_factory=dict)
    experiment: str | None = None

    @property
    def dims(self) -> list[int]:
        return sorted(self.points)

    @property
    def run(self) -> RunId:
        """The configuration as a run id (its base run's)."""
        return RunId(self.model, self.revision, self.experiment)


def mrl_curves(summaries: Sequence[Summary]) -> list[MrlCurve]:
    """The Matryoshka sweeps with at least two dimensions, one per configuration (model,
    revision and the experiment apart from ``embed_dim``: a sweep under a variant or a named
    experiment is a curve of its own, as in :func:`precision_grids`), float32 points only.

    Experiments named ``embed_dim_<d>`` (``embed_dim_<d>__<rest>``) are dimension ``d``; the
    configuration's run without one counts as the dimension its ``model_meta.json`` states,
    unless an experiment already covers that dimension.
    """
    by_run: dict[tuple[str, str, str], dict[int, Summary]] = {}
    bases: dict[tuple[str, str, str], Summary] = {}
    for s in summaries:
        dim, precision, rest = experiment_point(s.run.experiment)
        if precision != DEFAULT_PRECISION:
            continue
        key = (s.run.model, s.run.revision, rest or "")
        if dim is None:
            bases[key] = s
        else:
            by_run.setdefault(key, {})[dim] = s
    curves = []
    for key, points in sorted(by_run.items()):
        base = bases.get(key)
        dim = base.scores.embed_dim if base is not None else None
        if base is not None and dim is not None and dim not in points:
            points = {**points, dim: base}
        if len(points) >= 2:
            model, revision, rest = key
            curves.append(
                MrlCurve(model, revision, dict(sorted(points.items())), experiment=rest or None)
            )
    return curves


@dataclass(frozen=True)
class PrecisionGrid:
    """One configuration's summaries by (output dimension, precision), for the quality per byte
    of a stored vector: the points of ``mrl.dims`` x ``mrl.precisions``.

    ``experiment``: the configuration's experiment apart from dimension and precision (a
    variant, the user's experiment; None: the model file's own). ``published``: the model
    card's MRL rows (float32; points ×100 by dimension and column).
    """

    model: str
    revision: str
    experiment: str | None
    points: dict[tuple[int, str], Summary]  # by dimension, then precision from most bits
    published: dict[int, dict[str, float]] = field(default_factory=dict)

    @property
    def run(self) -> RunId:
        """The configuration as a run id (its base run's)."""
        return RunId(self.model, self.revision, self.experiment)

    @property
    def precisions(self) -> list[str]:
        """The precisions of the grid, most bits first."""
        return sorted({p for _, p in self.points}, key=_precision_order)

    def front(self) -> list[tuple[int, str]]:
        """The Pareto front of Mean(Task) against bytes per vector, fewest bytes first: the
        points no other point beats with as few bytes and as high a Mean(Task) (one of them
        strictly). A point without a Mean(Task) (incomplete) is on no front."""
        scored = [
            (bytes_per_vector(*point), s.mean_task.value, point)
            for point, s in self.points.items()
            if s.mean_task.value is not None
        ]
        front = [
            point
            for size, score, point in scored
            if not any(b <= size and v >= score and (b < size or v > score) for b, v, _ in scored)
        ]
        return sorted(front, key=lambda point: bytes_per_vector(*point))


def _precision_order(precision: str) -> tuple[int, str]:
    return (-BITS[precision], precision)


def precision_grids(summaries: Sequence[Summary]) -> list[PrecisionGrid]:
    """The sweeps with a precision other than float32 and at least two points, one per
    configuration (model, revision and the experiment apart from ``embed_dim`` and
    ``output_dtypes``, which mteb names the points by; see ``experiment_point``). Each point's
    dimension is the one its results state (``model_meta.json``: the base run's is the full
    size); an experiment ``embed_dim_<full>`` and the base run are one point."""
    by_run: dict[tuple[str, str, str], dict[tuple[int, str], Summary]] = {}
    for s in sorted(summaries, key=lambda s: s.run.experiment is None):  # experiments first
        _, precision, rest = experiment_point(s.run.experiment)
        dim = s.scores.embed_dim
        if dim is None:
            continue
        key = (s.run.model, s.run.revision, rest or "")
        by_run.setdefault(key, {}).setdefault((dim, precision), s)
    grids = []
    for (model, revision, rest), points in sorted(by_run.items()):
        if len(points) < 2 or all(p == DEFAULT_PRECISION for _, p in points):
            continue
        ordered = sorted(points, key=lambda point: (point[0], _precision_order(point[1])))
        grids.append(PrecisionGrid(model, revision, rest or None, {p: points[p] for p in ordered}))
    return grids


@dataclass
class Report:
    """Everything the tables, files and plots are made from."""

    benchmark: BenchmarkInfo
    n_tasks: int
    definition: str
    definition_line: str | None
    alternative_line: str | None
    results_dirs: list[Path]
    tolerance: float
    summaries: list[Summary] = field(default_factory=list)
    alternative: list[Summary] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    mrl: list[MrlCurve] = field(default_factory=list)
    precision: list[PrecisionGrid] = field(default_factory=list)
    reference_label: str | None = None
    no_reference: list[RunId] = field(default_factory=list)
    skipped: list[RunId] = field(default_factory=list)
    # per run: description of where its data came from -> tasks (from the task records)
    data: dict[RunId, dict[str, list[str]]] = field(default_factory=dict)
    # per run filed apart from the official results: what its configuration sets otherwise
    # (from the task records) -> tasks
    differs: dict[RunId, dict[str, list[str]]] = field(default_factory=dict)
    # run folders whose model_meta.json mteb's loaders do not read: (folder, why)
    meta_problems: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def is_subset(self) -> bool:
        """Whether the tasks are only part of their benchmark."""
        n_full = self.benchmark.n_full
        return n_full is not None and self.n_tasks < n_full

    def describe_tasks(self) -> str:
        """What the task list is: a whole benchmark, a subset of one, or a list of its own."""
        name, n, n_full = self.benchmark.name, self.n_tasks, self.benchmark.n_full
        if self.is_subset:
            return (
                f"{name}: subset of {n} of its {n_full} tasks, not the full benchmark (the means "
                "cover these tasks only)"
            )
        if n_full is not None:
            return f"{name}: all {n} tasks"
        return f"{name}: {n} task{'' if n == 1 else 's'}"


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
        n_tasks=len(tasks),
        definition=definition,
        definition_line=describe_definition(definition, tasks),
        alternative_line=describe_definition(other_definition(definition), tasks),
        results_dirs=list(results_dirs),
        tolerance=tolerance,
    )
    main, alt = [], {}
    for run in runs:
        loaded = load_task_results(run.paths, tasks)
        scores = score_run(run.id, effective, loaded, run.source, run.embed_dim)
        if scores.n_present == 0 and not keep_empty:
            report.skipped.append(run.id)
            continue
        main.append(summarize(scores))
        if sources := run_data(run.paths, [t.metadata.name for t in tasks]):
            report.data[run.id] = sources
        if differs := run_differs(run.paths, [t.metadata.name for t in tasks]):
            report.differs[run.id] = differs
        report.meta_problems += [(p, why) for p in run.paths if (why := meta_problem(p))]
        if alt_tasks:
            alt_scores = score_run(run.id, alt_tasks, loaded, run.source, run.embed_dim)
            alt[run.id] = summarize(alt_scores)
    report.summaries = leaderboard_order(main)
    report.alternative = [alt[s.run] for s in report.summaries if s.run in alt]
    # The card's MRL rows were computed on the whole benchmark under the published definition;
    # beside anything else they would not compare.
    show_card = definition == PUBLISHED and not report.is_subset
    report.mrl = [
        dataclasses.replace(c, published=published_mrl(c.model, benchmark.name))
        if show_card and c.experiment is None
        else c
        for c in mrl_curves(report.summaries)
    ]
    report.precision = [
        dataclasses.replace(g, published=published_mrl(g.model, benchmark.name))
        if show_card and g.experiment is None
        else g
        for g in precision_grids(report.summaries)
    ]
    ref = load_reference(reference, effective) if report.summaries else None
    if ref is not None:
        _add_comparisons(report, ref, reference_model, tolerance)
    return report


def _add_comparisons(
    report: Report, ref: Reference, reference_model: str | None, tolerance: float
) -> None:
    report.reference_label = ref.label
    if reference_model is not None:  # a name mistyped would compare nothing, silently
        name, _, revision = str(reference_model).partition("@")
        held = sorted({f"{r.model}@{r.revision}" for r in ref.runs})
        if not any(
            r.model == name and (not revision or same_revision(revision, r.revision))
            for r in ref.runs
        ):
            raise UserError(
                f"reference_model={reference_model} is not in the reference, {ref.label} (it "
                f"has: {', '.join(held) or 'no runs'})"
            )
    for summary in report.summaries:
        found = ref.find(summary.scores, reference_model)
        if found is None:
            report.no_reference.append(summary.run)
            continue
        report.comparisons.append(compare(summary, summarize(found), tolerance, ref.label))


def check_nonempty(report: Report) -> None:
    """Raise a UserError when no run has any result for the tasks."""
    if not report.summaries:
        from qzhou_eval.config.app import group_options

        where = ", ".join(str(d) for d in report.results_dirs)
        found = ", ".join(str(r) for r in report.skipped) or "none"
        hint = ""
        if report.skipped:  # (runs of another benchmark's tasks, most likely)
            names = ", ".join(group_options("benchmark"))
            hint = f"; if those runs are of another benchmark, set benchmark=<one of {names}>"
        raise UserError(
            f"no results for any of the {report.n_tasks} tasks of {report.benchmark.name} in "
            f"{where} (runs found: {found}){hint}"
        )


def run_summary(
    results_dir: Path,
    tasks: Sequence[AbsTask],
    run: RunId,
    benchmark: BenchmarkInfo | None = None,
    *,
    definition: str = DEFAULT_DEFINITION,
    compare_published: bool = True,
) -> Report:
    """The report of one run over exactly ``tasks``, as the runners print it at the end.

    Without ``benchmark`` the tasks are a list of their own. For the QZhou models the published
    results are the reference (``compare_published``); any other model needs no "no reference"
    note.
    """
    found = run_dir(Path(results_dir), run.model, run.revision, run.experiment)
    if benchmark is None:
        benchmark = BenchmarkInfo("tasks", "custom task list")
    report = build_report(
        [found],
        tasks,
        benchmark,
        [found.path],
        definition=definition,
        reference=None if compare_published else False,
        keep_empty=True,
    )
    report.no_reference = []
    return report
