"""The published QZhou tables (package data ``published.csv``, ×100, rounded as printed)."""

from __future__ import annotations

import csv
import re
from functools import cache

from qzhou_eval.report.reference import published_table_path

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
