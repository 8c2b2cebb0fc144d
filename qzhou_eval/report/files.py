"""Write a report's files: Markdown, CSV, JSON and (where there is a curve or a comparison) PNG,
all of them or none (one failed write leaves the folder as it was).

Machine-readable files keep the 0–1 scale of mteb's result files, at 10 decimals in the CSVs (far
below any score's own precision; it drops float noise such as ``0.7317335999999999``, which is
73.17336 / 100); only the Markdown tables are ×100 and rounded. ``*_scores.csv`` can be read back
as ``reference=``. PNG plots only where there is something to draw: a comparison with a reference,
an MRL sweep.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import io
import json
import re
from collections.abc import Iterable
from pathlib import Path

from qzhou_eval import atomic
from qzhou_eval.report.build import Report
from qzhou_eval.report.compare import Comparison, Delta
from qzhou_eval.report.discover import RunId
from qzhou_eval.report.render import render_text, run_labels
from qzhou_eval.report.score import (
    MEAN_TASK,
    MEAN_TASK_TYPE,
    Mean,
    Summary,
    borda_ranks,
    other_definition,
    task_types,
)

SCALE = "0-1, as in mteb's result files (the tables show ×100)"


def report_stem(report: Report, key: str) -> str:
    """File name stem: benchmark key, the definition where it matters, ``-subset`` for subsets."""
    stem = key
    if report.definition_line:
        stem += f"-{report.definition}"
    if report.is_subset:
        stem += "-subset"
    return _slug(stem)


def write_report_files(report: Report, out_dir: Path, plots: bool = True) -> list[Path]:
    """Write every file of ``report`` into ``out_dir``, all of them or none (a failed write
    leaves the folder as it was); returns their paths."""
    stem = report_stem(report, report.benchmark.key)
    texts = {
        f"{stem}.md": render_text(report, per_task=True, markdown=True),
        f"{stem}_summary.csv": summary_csv(report),
        f"{stem}_scores.csv": scores_csv(report),
        f"{stem}.json": json.dumps(report_dict(report), indent=2) + "\n",
    }
    if report.comparisons:
        texts[f"{stem}_compare.csv"] = compare_csv(report)
    files = {out_dir / name: text.encode("utf-8") for name, text in texts.items()}
    if plots:
        files |= {out_dir / name: png for name, png in _plots(report, stem).items()}
    atomic.write_all(files)
    written = list(files)
    _remove_stale(out_dir, stem, written)
    return written


# files of a report that another report of the same benchmark may lack (no comparison, another
# set of runs, plots off): left in place, they would pass for this report's
_OPTIONAL = ("_compare.csv", "_types_*.png", "_mrl_*.png", "_precision_*.png")


def _remove_stale(out_dir: Path, stem: str, written: list[Path]) -> None:
    """Remove the files an earlier report of ``stem`` wrote into ``out_dir`` that this one
    did not: a folder holds one report per benchmark, never a mix of two."""
    for pattern in _OPTIONAL:
        for path in out_dir.glob(f"{glob.escape(stem)}{pattern}"):
            if path not in written:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()


def _plots(report: Report, stem: str) -> dict[str, bytes]:
    """File name -> PNG of each plot the report has something to draw for."""
    from qzhou_eval.report.plots import mrl_png, precision_png, types_vs_reference_png

    pngs = {}
    labels = run_labels([c.run.run for c in report.comparisons])
    for c in report.comparisons:
        label = labels[c.run.run]
        title = f"{report.benchmark.name}: {label}\nvs {_short_reference(c)}"
        pngs[f"{stem}_types_{_slug(label)}.png"] = types_vs_reference_png(c, title)
    for curve in report.mrl:
        label = run_labels([curve.run])[curve.run]
        title = f"{report.benchmark.name}: {label}, score vs output dimension"
        pngs[f"{stem}_mrl_{_slug(label)}.png"] = mrl_png(curve, title)
    for grid in report.precision:
        label = run_labels([grid.run])[grid.run]
        title = f"{report.benchmark.name}: {label}, {MEAN_TASK} vs bytes per vector"
        pngs[f"{stem}_precision_{_slug(label)}.png"] = precision_png(grid, title)
    return pngs


def _short_reference(c: Comparison) -> str:
    ref = c.reference.run
    return f"{c.reference_label}: {ref.model}@{ref.revision[:12]}"


def summary_csv(report: Report) -> str:
    """One row per run: per-type means, Mean(Task), Mean(TaskType) (0–1; empty = missing), its
    rank by Borda count (the leaderboard's order)."""
    types = task_types(report.summaries)
    header = ["model", "revision", "experiment", *types, MEAN_TASK, MEAN_TASK_TYPE]
    header += ["rank_borda", "tasks_complete", "tasks_total", "complete", "definition"]
    rows = []
    ranks = borda_ranks(report.summaries)
    for s in report.summaries:
        values = [_num(s.types[t].value) if t in s.types else "" for t in types]
        rows.append(
            [
                *_run_cells(s.run),
                *values,
                _num(s.mean_task.value),
                _num(s.mean_task_type.value),
                "" if ranks[s.run] is None else ranks[s.run],
                s.mean_task.n_present,
                s.mean_task.n_total,
                s.complete,
                report.definition,
            ]
        )
    return _csv(header, rows)


def scores_csv(report: Report) -> str:
    """One row per counted (task, split, subset) score, like the reference's per-task CSVs."""
    header = ["model", "revision", "experiment", "benchmark", "task", "task_type", "split"]
    header += ["subset", "main_score_name", "main_score"]
    rows = []
    for s in report.summaries:
        for t in s.scores.tasks:
            for p in t.parts:
                rows.append(
                    [
                        *_run_cells(s.run),
                        report.benchmark.name,
                        t.name,
                        t.task_type,
                        p.split,
                        p.subset,
                        t.main_score_name,
                        _num(p.score),
                    ]
                )
    return _csv(header, rows)


def compare_csv(report: Report) -> str:
    """Every compared value: level (task/type/mean), run and reference (0–1), diff in points."""
    header = ["model", "revision", "experiment", "reference", "reference_model"]
    header += ["reference_revision", "level", "name", "task_type"]
    header += ["run", "reference_score", "diff_points", "flagged", "verdict"]
    rows = []
    for c in report.comparisons:
        for level, deltas in (("task", c.tasks), ("type", c.types), ("mean", c.means)):
            for d in deltas:
                rows.append(
                    [
                        *_run_cells(c.run.run),
                        c.reference_label,
                        c.reference.run.model,
                        c.reference.run.revision,
                        level,
                        d.name,
                        d.task_type or "",
                        _num(d.run),
                        _num(d.reference),
                        _num(d.diff),
                        d.flagged,
                        c.verdict,
                    ]
                )
    return _csv(header, rows)


def report_dict(report: Report) -> dict[str, object]:
    """The whole report as JSON-ready data (0–1 scores, None for missing)."""
    alternative = {s.run: s for s in report.alternative}
    ranks = borda_ranks(report.summaries)
    b = report.benchmark
    return {
        "benchmark": {
            "name": b.name,
            "key": b.key,
            "tasks": report.n_tasks,
            "tasks_in_full_benchmark": b.n_full,
            "is_subset": report.is_subset,
            "description": report.describe_tasks(),
        },
        "definition": report.definition,
        "definition_note": report.definition_line,
        "scale": SCALE,
        "tolerance_points": report.tolerance,
        "results_dirs": [str(d) for d in report.results_dirs],
        "runs": [
            _run_dict(s, alternative.get(s.run), report, ranks[s.run]) for s in report.summaries
        ],
        "reference": report.reference_label,
        "comparisons": [_comparison_dict(c) for c in report.comparisons],
        "no_reference": [_run_id_dict(r) for r in report.no_reference],
        "skipped": [_run_id_dict(r) for r in report.skipped],
    }


def _run_dict(
    s: Summary, alt: Summary | None, report: Report, rank: int | None
) -> dict[str, object]:
    out: dict[str, object] = {
        **_run_id_dict(s.run),
        "rank_borda": rank,
        "source": s.scores.source,
        "data": report.data.get(s.run, {}),  # where its data came from -> tasks (records)
        "embed_dim": s.scores.embed_dim,
        "complete": s.complete,
        **_means_dict(s),
        "tasks": [
            {
                "task": t.name,
                "task_type": t.task_type,
                "main_score_name": t.main_score_name,
                "score": t.score,
                "counted": [
                    {"split": p.split, "subset": p.subset, "score": p.score} for p in t.parts
                ],
                "missing": [f"{split}/{subset}" for split, subset in t.missing],
                "problem": t.problem,
            }
            for t in s.scores.tasks
        ],
    }
    if alt is not None:
        out["other_definition"] = {
            "definition": other_definition(report.definition),
            **_means_dict(alt),
        }
    return out


def _means_dict(s: Summary) -> dict[str, object]:
    return {
        "types": {t: _mean_dict(m) for t, m in s.types.items()},
        "mean_task": _mean_dict(s.mean_task),
        "mean_task_type": _mean_dict(s.mean_task_type),
    }


def _comparison_dict(c: Comparison) -> dict[str, object]:
    return {
        **_run_id_dict(c.run.run),
        "reference": c.reference_label,
        "reference_run": _run_id_dict(c.reference.run),
        "verdict": c.verdict,
        "verdict_line": c.verdict_line(),
        "tolerance_points": c.tolerance,
        "tasks": [_delta_dict(d) for d in c.tasks],
        "types": [_delta_dict(d) for d in c.types],
        "means": [_delta_dict(d) for d in c.means],
    }


def _delta_dict(d: Delta) -> dict[str, object]:
    return {
        "name": d.name,
        "run": d.run,
        "reference": d.reference,
        "diff_points": d.diff,
        "flagged": d.flagged,
    }


def _mean_dict(m: Mean) -> dict[str, object]:
    return {"value": m.value, "present": m.n_present, "total": m.n_total}


def _run_id_dict(r: RunId) -> dict[str, object]:
    return {"model": r.model, "revision": r.revision, "experiment": r.experiment}


def _run_cells(r: RunId) -> list[str]:
    return [r.model, r.revision, r.experiment or ""]


CSV_DECIMALS = 10


def _num(value: float | None) -> str:
    """A CSV number: shortest repr at ``CSV_DECIMALS`` decimals (``0.7317336``), "" for missing."""
    return "" if value is None else repr(round(float(value), CSV_DECIMALS))


def _csv(header: list[str], rows: Iterable[list[object]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")
