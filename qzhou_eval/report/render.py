"""A report as text: aligned terminal tables or Markdown (the same content, two renderings).

Scores are stored on the 0–1 scale and shown ×100 with two decimals; rounding happens here only.
Plain string grids rather than pandas: every cell is formatted on its own (``NA (n/m)``, signed
differences, indented task rows, flags), so a DataFrame would only carry strings.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mteb.abstasks import AbsTask

from qzhou_eval.config.spec import UNCHECKED
from qzhou_eval.precision import DEFAULT_PRECISION, bytes_per_vector
from qzhou_eval.report.build import BenchmarkInfo, MrlCurve, PrecisionGrid, Report, run_summary
from qzhou_eval.report.compare import DEFAULT_LABEL, Comparison, Delta
from qzhou_eval.report.data import data_line
from qzhou_eval.report.discover import RunId
from qzhou_eval.report.score import (
    DEFAULT_DEFINITION,
    MEAN_TASK,
    MEAN_TASK_TYPE,
    RANK,
    Mean,
    Summary,
    borda_ranks,
    task_types,
)

# -- tables ---------------------------------------------------------------------------------------

MISSING = "NA"

# The MTEB leaderboard's short column labels.
TYPE_LABELS = {
    "BitextMining": "Bitext.",
    "Classification": "Class.",
    "Clustering": "Clust.",
    "InstructionRetrieval": "InstrRetr.",
    "MultilabelClassification": "MLCl.",
    "PairClassification": "PairCl.",
    "Reranking": "Rerank.",
    "Retrieval": "Retr.",
    "STS": "STS",
    "Summarization": "Summ.",
}


@dataclass
class Table:
    """A titled grid of strings; ``align`` is ``"l"`` or ``"r"`` per column."""

    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    align: list[str] | None = None
    title: str | None = None

    def aligns(self) -> list[str]:
        return self.align or ["l"] + ["r"] * (len(self.columns) - 1)


def type_label(task_type: str) -> str:
    return TYPE_LABELS.get(task_type, task_type)


def fmt_score(value: float | None) -> str:
    """A 0–1 score as leaderboard points (×100, two decimals), ``NA`` when missing."""
    return MISSING if value is None else f"{value * 100:.2f}"


def fmt_mean(mean: Mean) -> str:
    """A mean, or ``NA (present/total)`` when some of its inputs are missing."""
    if mean.value is not None:
        return fmt_score(mean.value)
    return f"{MISSING} ({mean.n_present}/{mean.n_total})"


def fmt_diff(points: float | None) -> str:
    """A difference in points with its sign; ``0.00`` when it rounds to zero."""
    if points is None:
        return MISSING
    text = f"{points:+.2f}"
    return "0.00" if text in ("+0.00", "-0.00") else text


def format_text(table: Table) -> str:
    """Aligned columns for the terminal."""
    widths = [len(c) for c in table.columns]
    for row in table.rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    aligns = table.aligns()

    def line(cells: Sequence[str]) -> str:
        out = [
            cell.rjust(w) if a == "r" else cell.ljust(w)
            for cell, w, a in zip(cells, widths, aligns, strict=True)
        ]
        return "  ".join(out).rstrip()

    lines = [table.title] if table.title else []
    lines += [line(table.columns), "  ".join("-" * w for w in widths).rstrip()]
    lines += [line(row) for row in table.rows]
    return "\n".join(lines)


def format_markdown(table: Table) -> str:
    """A GitHub-flavoured Markdown table (leading indentation kept as non-breaking spaces)."""

    def cell(text: str) -> str:
        stripped = text.lstrip(" ")
        indent = "\u00a0" * (len(text) - len(stripped))
        return (indent + stripped).replace("|", "\\|")

    lines = [f"**{table.title}**", ""] if table.title else []
    lines.append("| " + " | ".join(cell(c) for c in table.columns) + " |")
    lines.append("|" + "|".join("---:" if a == "r" else "---" for a in table.aligns()) + "|")
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in table.rows]
    return "\n".join(lines)


# -- the report's tables ------------------------------------------------------------------------

FLAG = "<- differs"


def run_labels(runs: Sequence[RunId], short: bool = False) -> dict[RunId, str]:
    """Row labels: the model name, plus the revision where a model has several, plus experiment.

    ``short`` drops the organisation when that keeps the labels unique (for column headers).
    """
    revisions = Counter(r.model for r in {(r.model, r.revision): r for r in runs}.values())
    labels = {}
    for run in runs:
        label = run.model
        if short:
            label = run.model.split("/")[-1]
        if revisions[run.model] > 1:
            label += f"@{run.revision[:12]}"
        if run.experiment:
            label += f" [{run.experiment}]"
        labels[run] = label
    if short and len(set(labels.values())) < len(labels):
        return run_labels(runs, short=False)
    return labels


def leaderboard_table(summaries: Sequence[Summary], title: str | None = None) -> Table:
    """One row per run: per-type means, Mean(Task), Mean(TaskType) (leaderboard columns), and
    with several runs their rank by Borda count, the leaderboard's order."""
    types = task_types(summaries)
    labels = run_labels([s.run for s in summaries])
    ranks = borda_ranks(summaries) if len(summaries) > 1 else {}
    columns = ["Model", *(type_label(t) for t in types), MEAN_TASK, MEAN_TASK_TYPE]
    table = Table([*columns, RANK] if ranks else columns, title=title)
    for s in summaries:
        cells = [fmt_mean(s.types[t]) if t in s.types else "" for t in types]
        row = [labels[s.run], *cells, fmt_mean(s.mean_task), fmt_mean(s.mean_task_type)]
        rank = ranks.get(s.run)
        table.rows.append([*row, "" if rank is None else str(rank)] if ranks else row)
    return table


def task_table(
    summaries: Sequence[Summary],
    comparison: Comparison | None = None,
    title: str | None = None,
    reference_header: str = "Reference",
) -> Table:
    """Tasks grouped by type (type rows carry the type means), runs as columns.

    With a ``comparison`` (one run only) the reference score, the difference and a flag follow.
    """
    labels = run_labels([s.run for s in summaries], short=True)
    columns = ["Task", *(labels[s.run] for s in summaries)]
    if comparison is not None:
        columns += [reference_header, "Δ", ""]
    table = Table(columns, title=title)
    deltas: dict[tuple[str, str], Delta] = {}
    if comparison is not None:
        deltas = {("task", d.name): d for d in comparison.tasks}
        deltas |= {("type", d.name): d for d in comparison.types}
        deltas |= {("mean", d.name): d for d in comparison.means}

    def row(label: str, key: tuple[str, str], values: list[str]) -> list[str]:
        cells = [label, *values]
        if comparison is not None:
            d = deltas.get(key)
            cells += ["", "", ""] if d is None else _delta_cells(d)
        return cells

    first = summaries[0]
    by_name = [s.scores.by_name() for s in summaries]
    for task_type in task_types(summaries):
        values = [fmt_mean(s.types[task_type]) if task_type in s.types else "" for s in summaries]
        table.rows.append(row(task_type, ("type", task_type), values))
        for task in first.scores.tasks:
            if task.task_type != task_type:
                continue
            values = [fmt_score(b[task.name].score if task.name in b else None) for b in by_name]
            table.rows.append(row(f"  {task.name}", ("task", task.name), values))
    for name in (MEAN_TASK, MEAN_TASK_TYPE):
        values = [fmt_mean(s.mean(name)) for s in summaries]
        table.rows.append(row(name, ("mean", name), values))
    return table


def _delta_cells(d: Delta) -> list[str]:
    return [fmt_score(d.reference), fmt_diff(d.diff), FLAG if d.flagged else ""]


def missing_lines(summary: Summary) -> list[str]:
    """What keeps a run from being complete, one task per line."""
    return [t.describe_missing() for t in summary.scores.tasks if not t.complete]


def mrl_table(curve: MrlCurve) -> Table:
    """Dimension by task type, like the QZhou-Embedding-Zh model card's MRL table.

    With the card's rows (``curve.published``, in points) each dimension gets a second row.
    """
    summaries = list(curve.points.values())
    types = task_types(summaries)
    columns = [*types, MEAN_TASK, MEAN_TASK_TYPE]
    what = f"{curve.model} [{curve.experiment}]" if curve.experiment else curve.model
    title = f"MRL: {what} by output dimension"
    table = Table(["dim", *(type_label(t) for t in types), MEAN_TASK, MEAN_TASK_TYPE], title=title)
    for dim, s in curve.points.items():
        table.rows.append(
            [
                str(dim),
                *(
                    fmt_mean(s.mean(c)) if c in s.types or c in (MEAN_TASK, MEAN_TASK_TYPE) else ""
                    for c in columns
                ),
            ]
        )
        if dim in curve.published:
            row = curve.published[dim]
            table.rows.append(
                [f"{dim} (published)", *(f"{row[c]:.2f}" if c in row else "" for c in columns)]
            )
    return table


def fmt_bytes(size: float) -> str:
    """Bytes per vector: whole bytes as an integer, a fraction with up to three decimals."""
    return str(int(size)) if size == int(size) else f"{size:.3f}".rstrip("0")


def precision_table(grid: PrecisionGrid) -> Table:
    """Quality per byte: (dimension, precision) by task type, with bytes per vector and the
    points on the Pareto front of Mean(Task) against bytes (``*``).

    With the card's rows (``grid.published``, in points, float32) a float32 row of a dimension
    the card has gets a second row.
    """
    summaries = list(grid.points.values())
    types = task_types(summaries)
    columns = [*types, MEAN_TASK, MEAN_TASK_TYPE]
    front = set(grid.front())
    what = f"{grid.model} [{grid.experiment}]" if grid.experiment else grid.model
    title = f"Quality per byte: {what} by output dimension and precision (* Pareto front)"
    labels = [type_label(t) for t in types]
    table = Table(
        ["dim", "precision", "bytes/vector", "front", *labels, MEAN_TASK, MEAN_TASK_TYPE],
        align=["r", "l", "r", "l", *["r"] * len(columns)],
        title=title,
    )
    for (dim, precision), s in grid.points.items():
        cells = [
            fmt_mean(s.mean(c)) if c in s.types or c in (MEAN_TASK, MEAN_TASK_TYPE) else ""
            for c in columns
        ]
        size = fmt_bytes(bytes_per_vector(dim, precision))
        mark = "*" if (dim, precision) in front else ""
        table.rows.append([str(dim), precision, size, mark, *cells])
        if precision == DEFAULT_PRECISION and dim in grid.published:
            row = grid.published[dim]
            published = [f"{row[c]:.2f}" if c in row else "" for c in columns]
            table.rows.append([str(dim), "float32 (published)", size, "", *published])
    return table


# -- the whole report ----------------------------------------------------------------------------

SCALE_NOTE = (
    "Scores: the leaderboard's main score ×100, per task the mean over the splits and subsets the "
    "benchmark keeps; NA = missing; NA (n/m) = a mean with only n of its m inputs present."
)


def render_text(report: Report, per_task: bool = True, markdown: bool = False) -> str:
    """The report for the terminal, or with ``markdown`` as a Markdown document.

    ``per_task`` adds the per-task tables (the leaderboard rows, missing lists and verdicts are
    always there).
    """
    md = markdown
    fmt = format_markdown if md else format_text
    blocks: list[list[str]] = []

    def heading(level: int, text: str) -> list[str]:
        return [f"{'#' * level} {text}", ""] if md else [text]

    def item(text: str, depth: int = 0) -> str:
        return ("  " * depth + f"- {text}") if md else ("    " * depth + f"- {text}")

    head = [*heading(1, report.describe_tasks())]
    head.append("Results: " + ", ".join(str(d) for d in report.results_dirs))
    # every line names a run as the table's row does (the revision where a model has several)
    row_labels = run_labels([s.run for s in report.summaries])

    def named(run: RunId) -> str:
        return row_labels.get(run) or run_labels([run])[run]

    for run, sources in report.data.items():
        label = f" of {named(run)}" if len(report.summaries) > 1 else ""
        head.append(f"Data{label}: {data_line(sources)}")
    for run, differs in report.differs.items():
        # (a variant folder's name is a hash: what the run set, as its records say)
        # (model.folder_settings=ignore over a model without an official configuration: what
        # the run set otherwise than the model folder's own settings, or its model file's)
        unchecked = any(d.startswith(f"model.folder_settings={UNCHECKED}") for d in differs)
        than = "the model folder's own or its model file's" if unchecked else "official"
        head.append(f"Settings of {named(run)} other than {than}: {data_line(differs)}")
    if report.definition_line:
        head.append(f"Definition: {report.definition_line}")
    head.append(SCALE_NOTE)
    blocks.append(_paragraphs(head) if md else head)
    blocks.append([fmt(leaderboard_table(report.summaries))])
    if report.alternative:
        title = f"The same where {report.alternative_line}:"
        blocks.append([fmt(leaderboard_table(report.alternative, title=title))])

    incomplete = [s for s in report.summaries if not s.complete]
    if incomplete:
        lines = heading(2, "Missing (incomplete runs; their incomplete means are NA)")
        for s in incomplete:
            missing = missing_lines(s)
            n = len(s.scores.tasks)
            lines.append(item(f"{named(s.run)}: {len(missing)} of {n} tasks incomplete"))
            lines += [item(line, 1) for line in missing]
        blocks.append(lines)

    for curve in report.mrl:
        blocks.append([fmt(mrl_table(curve))])
    for grid in report.precision:
        blocks.append([fmt(precision_table(grid))])

    if per_task and (len(report.summaries) > 1 or not report.comparisons):
        blocks.append([fmt(task_table(report.summaries, title="Per task"))])

    if report.comparisons:
        lines = heading(
            2,
            "Comparison with the reference (differences in points, flagged beyond "
            f"±{report.tolerance:g}, from unrounded scores)",
        )
        for c in report.comparisons:
            verdict = f"**{c.verdict_line()}**" if md else f"  {c.verdict_line()}"
            lines.append(item(f"{named(c.run.run)} vs {c.reference_label}: {c.reference.run}"))
            lines += ["", verdict] if md else [verdict]
            blocks.append(lines)
            lines = []
            if per_task:
                blocks.append([fmt(task_table([c.run], comparison=c))])

    notes = []
    if report.no_reference:
        what = report.reference_label or "the reference"
        hint = " (it has the QZhou models only; set reference=...)" if what == DEFAULT_LABEL else ""
        names = ", ".join(named(run) for run in report.no_reference)
        notes.append(f"No reference run (same model and experiment) in {what}{hint} for: {names}")
    for folder, why in report.meta_problems:
        notes.append(
            f"{folder}: {why}, so mteb's loaders (the leaderboard's) skip or fail on the run "
            "there; a `qzhou-eval run` of its settings writes it again"
        )
    if report.skipped:
        names = ", ".join(str(r) for r in report.skipped)
        notes.append(f"Skipped (no results for these tasks): {names}")
    if notes:
        blocks.append(_paragraphs(notes) if md else notes)
    return "\n\n".join("\n".join(b) for b in blocks).rstrip() + "\n"


def _paragraphs(lines: list[str]) -> list[str]:
    """Markdown: every non-empty line its own paragraph."""
    out: list[str] = []
    for line in lines:
        if line:
            out += [line, ""]
    return out[:-1]


def render_run_summary(
    results_dir: Path,
    tasks: Sequence[AbsTask],
    model_name: str,
    revision: str,
    experiment: str | None = None,
    *,
    benchmark: BenchmarkInfo | None = None,
    definition: str = DEFAULT_DEFINITION,
    compare_published: bool = True,
) -> str:
    """The leaderboard-style table of one run over exactly ``tasks``, as the runners print it.

    Score per task, mean per task type, Mean(Task) and Mean(TaskType); missing tasks, splits and
    subsets are listed and incomplete means shown as missing. ``benchmark`` (the one the run
    plan names) labels the tasks as all of it or a subset; without it they are a list of their
    own. For the QZhou models the published results are the reference (``compare_published``).

    Args:
        results_dir: the folder holding ``<org>__<model>/`` (mteb's ``cache_path / "results"``).
        tasks: the task objects the run evaluated (they carry the split/subset filters).
        model_name: ``org/name`` as in the results layout.
        revision: the revision folder.
        experiment: the experiment folder under ``<revision>/experiments/``, if any.
        benchmark: the benchmark ``tasks`` come from.
        definition: MultilingualSentiment definition, ``published`` or ``current``.
        compare_published: compare with the published QZhou results when there are some.
    """
    run = RunId(model_name, revision, experiment)
    report = run_summary(
        results_dir,
        tasks,
        run,
        benchmark,
        definition=definition,
        compare_published=compare_published,
    )
    return f"Run summary: {run}\n{render_text(report, per_task=True)}"
