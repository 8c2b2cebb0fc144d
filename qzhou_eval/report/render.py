"""A report as terminal text or as Markdown (the same content, two renderings)."""

from __future__ import annotations

from qzhou_eval.report.mrl import mrl_curves
from qzhou_eval.report.published import published_mrl
from qzhou_eval.report.reference import DEFAULT_LABEL
from qzhou_eval.report.report import Report
from qzhou_eval.report.tables import format_markdown, format_text
from qzhou_eval.report.views import (
    leaderboard_table,
    missing_lines,
    mrl_table,
    run_labels,
    task_table,
)

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

    head = [*heading(1, report.benchmark.describe())]
    head.append("Results: " + ", ".join(str(d) for d in report.results_dirs))
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
        labels = run_labels([s.run for s in incomplete])
        for s in incomplete:
            missing = missing_lines(s)
            n = len(s.scores.tasks)
            lines.append(item(f"{labels[s.run]}: {len(missing)} of {n} tasks incomplete"))
            lines += [item(line, 1) for line in missing]
        blocks.append(lines)

    for curve in mrl_curves(report.summaries):
        published = published_mrl(curve.model, report.benchmark.name)
        blocks.append([fmt(mrl_table(curve, published))])

    if per_task and (len(report.summaries) > 1 or not report.comparisons):
        blocks.append([fmt(task_table(report.summaries, title="Per task"))])

    if report.comparisons:
        lines = heading(
            2,
            "Comparison with the reference (differences in points, flagged beyond "
            f"±{report.tolerance:g}, from unrounded scores)",
        )
        labels = run_labels([c.run.run for c in report.comparisons])
        for c in report.comparisons:
            verdict = f"**{c.verdict_line()}**" if md else f"  {c.verdict_line()}"
            lines.append(item(f"{labels[c.run.run]} vs {c.reference_label}: {c.reference.run}"))
            lines += ["", verdict] if md else [verdict]
            blocks.append(lines)
            lines = []
            if per_task:
                blocks.append([fmt(task_table([c.run], comparison=c))])

    notes = []
    if report.no_reference:
        what = report.reference_label or "the reference"
        hint = " (it has the QZhou models only; set reference=...)" if what == DEFAULT_LABEL else ""
        names = ", ".join(run_labels(report.no_reference).values())
        notes.append(f"No reference run (same model and experiment) in {what}{hint} for: {names}")
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
