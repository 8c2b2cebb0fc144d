"""Plain tables and their two renderings: aligned terminal text and Markdown.

Scores are stored on the 0–1 scale and shown ×100 with two decimals; rounding happens here only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from qzhou_eval.report.aggregate import Mean

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
