"""Golden values and helpers shared by the report tests (a module, so tests can import it)."""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Callable
from pathlib import Path

from tests.conftest import GOLDEN, REPO

__all__ = ["GOLDEN", "REPO"]  # re-exported for the report tests

QZHOU = "Kingsoft-LLM/QZhou-Embedding"
QZHOU_REV = "f1e6c03ee3882e7b9fa5cec91217715272e433b8"
QZHOU_ZH = "Kingsoft-LLM/QZhou-Embedding-Zh"
QZHOU_ZH_REV = "0321ccb126413d1e49c5ce908e802b63d35f18e2"
ENG = "MTEB(eng, v2)"
CMN = "MTEB(cmn, v1)"

# The published rows (qzhou_eval/data/reference/published.csv), labelled by what they are: the
# technical report's "STS" and "Retr." headers are swapped, these are not.
TYPES_ENG = (
    "Classification",
    "Clustering",
    "PairClassification",
    "Reranking",
    "Retrieval",
    "STS",
    "Summarization",
)
TYPES_CMN = TYPES_ENG[:-1]
PUBLISHED_ENG = dict(zip(TYPES_ENG, (88.97, 61.65, 92.43, 51.77, 67.12, 91.65, 33.05), strict=True))
PUBLISHED_ENG |= {"Mean(Task)": 75.97, "Mean(TaskType)": 69.52}
PUBLISHED_CMN = {
    QZHOU: dict(zip(TYPES_CMN, (79.99, 70.91, 95.07, 74.85, 78.80, 71.89), strict=True))
    | {"Mean(Task)": 76.99, "Mean(TaskType)": 78.58},
    QZHOU_ZH: dict(zip(TYPES_CMN, (78.57, 81.76, 95.49, 72.37, 80.24, 73.33), strict=True))
    | {"Mean(Task)": 78.52, "Mean(TaskType)": 80.29},
}
# Today's MultilingualSentiment definition (validation and test): only these values change.
CURRENT_CMN = {
    QZHOU: {"Classification": 80.11, "Mean(Task)": 77.02, "Mean(TaskType)": 78.60},
    QZHOU_ZH: {"Classification": 78.58, "Mean(Task)": 78.52, "Mean(TaskType)": 80.30},
}


def task_file(results: Path, model: str, revision: str, task: str) -> Path:
    return results / model.replace("/", "__") / revision / f"{task}.json"


def edit_scores(path: Path, edit: Callable[[dict], None]) -> None:
    """Load a result JSON, let ``edit`` change it in place, write it back."""
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def scaled_copies(base: Path, experiment: Path, factor: float, **fields) -> None:
    """Copy every task result of run folder ``base`` into ``experiment`` with each main score
    times ``factor`` (and top-level ``fields`` set), as a fake experiment of the same model."""
    for f in base.glob("*.json"):
        if f.name == "model_meta.json":
            continue
        data = json.loads(f.read_text(encoding="utf-8"))
        for split in data["scores"].values():
            for entry in split:
                entry["main_score"] *= factor
        data.update(fields)
        (experiment / f.name).write_text(json.dumps(data), encoding="utf-8")


def golden_task_scores(csv_path: Path, model: str, benchmark: str) -> dict[str, float]:
    """Per-task scores from a ``*_per_task.csv``: the mean of the counted rows (0–1)."""
    rows: dict[str, list[float]] = {}
    with csv_path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["model"] == model and row["benchmark"] == benchmark:
                rows.setdefault(row["task"], []).append(float(row["main_score"]))
    return {task: sum(v) / len(v) for task, v in rows.items()}


def points(value: float | None) -> float | None:
    """A 0–1 score as displayed: ×100, rounded to two decimals."""
    return None if value is None else round(value * 100, 2)


# Malformed reference CSVs: name -> (bytes, the line the error names, a part of the message).
HEADER = b"model,task,main_score\n"
MALFORMED = {
    # an unclosed quote: csv's lenient default made the rest of the file one field
    "unclosed_quote": (HEADER + b'me/m,"STS12,0.5\nme/m,STS13,0.6\n', 2, "never closed"),
    # a compressed (binary) file passed as a CSV
    "binary": (gzip.compress(HEADER + b"me/m,STS12,0.5\n", mtime=0), 1, "not UTF-8 text"),
    # bytes that are not UTF-8 further down an otherwise good file
    "latin1_row": (HEADER + b"me/m,STS12,0.5\nme/m,Caf\xe9,0.6\n", 3, "not UTF-8 text"),
    # a row with fewer fields than the header (csv gave None: a TypeError further on)
    "short_row": (
        HEADER + b"me/m,STS12,0.5\n\nme/m,STS13\n",
        4,
        "2 field(s) where the header has 3",
    ),
    "long_row": (HEADER + b"me/m,STS12,0.5,extra\n", 2, "4 field(s) where the header has 3"),
    # two different scores for one task (the last row won silently); a repeat of a row is fine
    "two_scores": (
        HEADER + b"me/m,STS12,0.5\nme/m,STS12,0.5\nme/m,STS12,0.6\n",
        4,
        "a second main_score for task 'STS12' of model 'me/m' (0.6; line 2 has 0.5)",
    ),
    "two_subset_scores": (
        b"model,task,split,subset,main_score\nme/m,STS12,test,default,0.5\n"
        b"me/m,STS12,test,default,0.7\n",
        3,
        "a second main_score for task 'STS12' split 'test' subset 'default'",
    ),
}


def cmteb_report_plot(results: Path, out: Path, kind: str, model: str) -> tuple[str, Path]:
    """The report of ``results`` against CMTEB written to ``out``: its text, and the path of its
    ``kind`` plot (mrl, precision) of ``model`` (``org/name``), checked to be a drawn PNG."""
    from qzhou_eval.config.app import compose_config
    from qzhou_eval.report.cli import run_report

    cfg = compose_config("report", [f"results_dir={results}", "benchmark=cmteb", f"out_dir={out}"])
    text = run_report(cfg)
    png = out / f"cmteb-published_{kind}_{model.replace('/', '_')}.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 20_000
    return text, png
