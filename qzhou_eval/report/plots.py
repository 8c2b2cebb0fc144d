"""PNG plots: per-type scores against the reference, score versus MRL output dimension, and
Mean(Task) versus bytes per vector over output dimensions and precisions.

Figures are built with matplotlib's object API (no pyplot, no display backend) and returned as PNG
bytes, so the caller decides where and how (atomically) they are written.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from qzhou_eval.precision import DEFAULT_PRECISION, bytes_per_vector
from qzhou_eval.report.build import MrlCurve, PrecisionGrid
from qzhou_eval.report.compare import Comparison
from qzhou_eval.report.render import fmt_diff, type_label
from qzhou_eval.report.score import MEAN_TASK, MEAN_TASK_TYPE, Summary

_RUN, _REF, _FLAG = "#1f77b4", "#b0b0b0", "#d62728"


def types_vs_reference_png(comparison: Comparison, title: str) -> bytes:
    """Per task type and for both means: run and reference bars (top), run − reference (bottom).

    The bottom panel shades the tolerance band; differences beyond it are red; ``NA`` marks a value
    that is missing (an incomplete type or mean).
    """
    deltas = [*comparison.types, *comparison.means]
    labels = [type_label(d.name) for d in deltas]
    run = np.array([_points(d.run) for d in deltas])
    ref = np.array([_points(d.reference) for d in deltas])
    diff = np.array([np.nan if d.diff is None else d.diff for d in deltas])
    x = np.arange(len(deltas))
    width = 0.38
    fig = Figure(figsize=(max(8.0, 1.05 * len(deltas) + 2.5), 7.0), dpi=110)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    top.bar(x - width / 2, np.nan_to_num(run), width, label="run", color=_RUN)
    top.bar(x + width / 2, np.nan_to_num(ref), width, label="reference", color=_REF)
    for i in range(len(deltas)):
        for offset, value in ((-width / 2, run[i]), (width / 2, ref[i])):
            text = "NA" if np.isnan(value) else f"{value:.2f}"
            y = 1.0 if np.isnan(value) else value + 1.0
            top.text(x[i] + offset, y, text, ha="center", va="bottom", fontsize=7, rotation=90)
    top.set_ylim(0, 100 if np.nanmax([*run, *ref, 0.0]) <= 85 else 112)
    top.set_ylabel("score (×100)")
    top.set_title(title, fontsize=10)
    top.legend(loc="upper left", ncol=2, fontsize=9, framealpha=0.9)
    top.grid(axis="y", alpha=0.3)

    tol = comparison.tolerance
    limit = max(float(np.nanmax(np.abs(diff), initial=0.0)), 3 * tol, 0.05) * 1.35
    bottom.axhspan(-tol, tol, color="#2ca02c", alpha=0.15, label=f"±{tol:g} tolerance")
    bottom.axhline(0, color="black", linewidth=0.8)
    colors = [_FLAG if d.flagged else "#555555" for d in deltas]
    bottom.bar(x, np.nan_to_num(diff), 0.5, color=colors)
    for i, d in enumerate(deltas):
        if d.diff is None:
            bottom.text(x[i], 0, "NA", ha="center", va="center", fontsize=9)
            continue
        va = "bottom" if d.diff >= 0 else "top"
        color = _FLAG if d.flagged else "black"
        bottom.text(x[i], d.diff, fmt_diff(d.diff), ha="center", va=va, fontsize=8, color=color)
    bottom.set_ylim(-limit, limit)
    bottom.set_ylabel("run − reference (points)")
    bottom.legend(loc="upper right", fontsize=8)
    bottom.grid(axis="y", alpha=0.3)
    bottom.set_xticks(x, labels)
    for ax in (top, bottom):
        ax.axvline(len(comparison.types) - 0.5, color="black", linewidth=0.8, linestyle=":")
    fig.tight_layout()
    return _png(fig)


def mrl_png(curve: MrlCurve, title: str) -> bytes:
    """Score versus output dimension, one line per task type plus the two means.

    A type whose tasks are incomplete at some dimension has no point there. The card's rows
    (``curve.published``, points ×100 by dimension and column) are hollow squares in the same
    colours.
    """
    dims, published = curve.dims, curve.published
    types = sorted({t for s in curve.points.values() for t in s.types})
    columns = [*types, MEAN_TASK, MEAN_TASK_TYPE]
    fig = Figure(figsize=(9, 5.5), dpi=110)
    ax = fig.add_subplot()
    colors = {c: f"C{i}" for i, c in enumerate(types)}
    colors |= {MEAN_TASK: "dimgray", MEAN_TASK_TYPE: "black"}
    for column in columns:
        ys = [_points(_column(curve.points[d], column)) for d in dims]
        is_mean = column in (MEAN_TASK, MEAN_TASK_TYPE)
        ax.plot(
            dims,
            ys,
            marker="o",
            color=colors[column],
            linewidth=2.4 if is_mean else 1.5,
            linestyle="--" if column == MEAN_TASK else "-",
            label=column if is_mean else type_label(column),
        )
        if published:
            pdims = [d for d in sorted(published) if column in published[d]]
            ax.plot(
                pdims,
                [published[d][column] for d in pdims],
                linestyle="none",
                marker="s",
                markersize=7,
                markerfacecolor="none",
                markeredgecolor=colors[column],
            )
    if published:
        ax.plot(
            [],
            [],
            linestyle="none",
            marker="s",
            markerfacecolor="none",
            markeredgecolor="black",
            label="published (model card)",
        )
    ticks = sorted(set(dims) | set(published or {}))
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticks(ticks, [str(d) for d in ticks])
    if len(ticks) > 5:
        ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    ax.set_xlabel("output dimension (MRL)")
    ax.set_ylabel("score (×100)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=9)
    fig.tight_layout()
    return _png(fig)


def precision_png(grid: PrecisionGrid, title: str) -> bytes:
    """Mean(Task) against bytes per vector (log scale): one line per precision across the output
    dimensions (each point labelled with its dimension), the Pareto front as a thick grey step
    line through ringed points, and the card's float32 rows (``grid.published``) as hollow
    squares beside the float32 line."""
    fig = Figure(figsize=(9, 5.5), dpi=110)
    ax = fig.add_subplot()
    for i, precision in enumerate(grid.precisions):
        points = [(d, s) for (d, p), s in grid.points.items() if p == precision]
        xs = [bytes_per_vector(d, precision) for d, _ in points]
        ys = [_points(s.mean_task.value) for _, s in points]
        ax.plot(xs, ys, marker="o", color=f"C{i}", linewidth=1.6, label=precision)
        for x, y, (d, _) in zip(xs, ys, points, strict=True):
            if not np.isnan(y):
                ax.annotate(str(d), (x, y), xytext=(4, -11), textcoords="offset points", fontsize=7)
    front = grid.front()
    if front:
        fx = [bytes_per_vector(*point) for point in front]
        fy = [_points(grid.points[point].mean_task.value) for point in front]
        ax.step(fx, fy, where="post", color="black", alpha=0.35, linewidth=4, zorder=0)
        ax.plot(
            fx,
            fy,
            linestyle="none",
            marker="o",
            markersize=12,
            markerfacecolor="none",
            markeredgecolor="black",
            label="Pareto front",
        )
    published = {d: row[MEAN_TASK] for d, row in grid.published.items() if MEAN_TASK in row}
    if published:
        dims = sorted(published)
        ax.plot(
            [bytes_per_vector(d, DEFAULT_PRECISION) for d in dims],
            [published[d] for d in dims],
            linestyle="none",
            marker="s",
            markersize=8,
            markerfacecolor="none",
            markeredgecolor=f"C{grid.precisions.index(DEFAULT_PRECISION)}"
            if DEFAULT_PRECISION in grid.precisions
            else "black",
            label="float32, published (model card)",
        )
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    ax.set_xlabel("bytes per vector (log scale)")
    ax.set_ylabel(f"{MEAN_TASK} (×100)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=9, title="precision")
    fig.tight_layout()
    return _png(fig)


def _column(summary: Summary, column: str) -> float | None:
    if column in (MEAN_TASK, MEAN_TASK_TYPE):
        return summary.value(column)
    mean = summary.types.get(column)
    return mean.value if mean is not None else None


def _points(value: float | None) -> float:
    return float("nan") if value is None else value * 100.0


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
