"""Formatting: ×100 with two decimals at the end only, NA with counts, Markdown."""

from __future__ import annotations

from qzhou_eval.report.aggregate import Mean
from qzhou_eval.report.tables import (
    Table,
    fmt_diff,
    fmt_mean,
    fmt_score,
    format_markdown,
    format_text,
    type_label,
)


def test_numbers() -> None:
    assert fmt_score(0.889836) == "88.98"
    assert fmt_score(None) == "NA"
    assert fmt_mean(Mean(None, 40, 41)) == "NA (40/41)"
    assert fmt_mean(Mean(0.5, 2, 2)) == "50.00"
    assert fmt_diff(0.0) == "0.00"
    assert fmt_diff(-0.004) == "0.00"
    assert fmt_diff(1.0) == "+1.00"
    assert fmt_diff(-0.5) == "-0.50"
    assert fmt_diff(None) == "NA"
    assert type_label("PairClassification") == "PairCl."
    assert type_label("SomethingNew") == "SomethingNew"


def test_text_and_markdown() -> None:
    table = Table(["Task", "Score"], [["STS", "91.65"], ["  STS12", "90.29"]], title="T")
    assert format_text(table).splitlines() == [
        "T",
        "Task     Score",
        "-------  -----",
        "STS      91.65",
        "  STS12  90.29",
    ]
    md = format_markdown(table).splitlines()
    assert md[:2] == ["**T**", ""]
    assert md[2:4] == ["| Task | Score |", "|---|---:|"]
    assert md[5] == "| \u00a0\u00a0STS12 | 90.29 |"
