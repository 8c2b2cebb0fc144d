"""The report's tables: the leaderboard rows, the per-task breakdown and the comparison."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from qzhou_eval.report.aggregate import MEAN_TASK, MEAN_TASK_TYPE, Summary, task_types
from qzhou_eval.report.compare import Comparison, Delta
from qzhou_eval.report.discover import RunId
from qzhou_eval.report.mrl import MrlCurve
from qzhou_eval.report.tables import Table, fmt_diff, fmt_mean, fmt_score, type_label

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
    """One row per run: per-type means, Mean(Task), Mean(TaskType) (leaderboard columns)."""
    types = task_types(summaries)
    labels = run_labels([s.run for s in summaries])
    table = Table(
        ["Model", *(type_label(t) for t in types), MEAN_TASK, MEAN_TASK_TYPE], title=title
    )
    for s in summaries:
        cells = [fmt_mean(s.types[t]) if t in s.types else "" for t in types]
        table.rows.append(
            [labels[s.run], *cells, fmt_mean(s.mean_task), fmt_mean(s.mean_task_type)]
        )
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


def mrl_table(curve: MrlCurve, published: dict[int, dict[str, float]] | None = None) -> Table:
    """Dimension by task type, like the QZhou-Embedding-Zh model card's MRL table.

    With ``published`` (the card's rows, in points) each dimension gets a second row with them.
    """
    summaries = list(curve.points.values())
    types = task_types(summaries)
    columns = [*types, MEAN_TASK, MEAN_TASK_TYPE]
    title = f"MRL: {curve.model} by output dimension"
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
        if published and dim in published:
            row = published[dim]
            table.rows.append(
                [f"{dim} (published)", *(f"{row[c]:.2f}" if c in row else "" for c in columns)]
            )
    return table
