"""Precision sweeps in the report: mteb's output_dtypes experiments, the quality-per-byte table
with its Pareto front, and the plot of Mean(Task) against bytes per vector."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qzhou_eval.report.build import BenchmarkInfo, build_report, precision_grids
from qzhou_eval.report.discover import discover_runs, run_path
from qzhou_eval.report.render import precision_table
from qzhou_eval.report.score import CURRENT
from tests.report.report_testdata import (
    CMN,
    QZHOU_ZH,
    QZHOU_ZH_REV,
    cmteb_report_plot,
    points,
    scaled_copies,
)

# experiment -> (its experiment_kwargs, the factor on every score); 1792 is the full size
FAKE = {
    "embed_dim_256": ({"embed_dim": 256}, 0.96),
    "embed_dim_256__output_dtypes_int8": ({"embed_dim": 256, "output_dtypes": "int8"}, 0.95),
    "output_dtypes_binary": ({"output_dtypes": "binary"}, 0.97),
    "embed_dim_512__output_dtypes_binary": ({"embed_dim": 512, "output_dtypes": "binary"}, 0.85),
}


@pytest.fixture
def grid_results(results_copy: Path) -> Path:
    """QZhou-Embedding-Zh with fake precision experiments, as mteb's CompressionWrapper files
    them (model_meta.json with experiment_kwargs): every score scaled."""
    base = run_path(results_copy, QZHOU_ZH, QZHOU_ZH_REV)
    meta = json.loads((base / "model_meta.json").read_text(encoding="utf-8"))
    for name, (kwargs, factor) in FAKE.items():
        exp = run_path(results_copy, QZHOU_ZH, QZHOU_ZH_REV, name)
        exp.mkdir(parents=True)
        (exp / "model_meta.json").write_text(json.dumps({**meta, "experiment_kwargs": kwargs}))
        scaled_copies(base, exp, factor)
    return results_copy


def _report(results: Path, tasks: list, **kwargs):
    return build_report(
        discover_runs([results]), tasks, BenchmarkInfo("cmteb", CMN, 31), [results], **kwargs
    )


def test_grid_points_bytes_and_front(grid_results: Path, cmn_tasks: list) -> None:
    report = _report(grid_results, cmn_tasks)
    (grid,) = report.precision
    assert grid.model == QZHOU_ZH
    assert list(grid.points) == [
        (256, "float32"),
        (256, "int8"),
        (512, "binary"),
        (1792, "float32"),  # the base run: its model_meta's full size
        (1792, "binary"),
    ]
    assert grid.precisions == ["float32", "int8", "binary"]
    full = points(grid.points[(1792, "float32")].mean_task.value)
    assert points(grid.points[(256, "int8")].mean_task.value) == pytest.approx(full * 0.95, 1e-3)
    # 1792 binary (224 bytes) beats 256 int8 (256 bytes) and 256 float32 (1,024 bytes)
    assert grid.front() == [(512, "binary"), (1792, "binary"), (1792, "float32")]
    assert sorted(grid.published) == [128, 256, 512, 768, 1024, 1280, 1536, 1792]


def test_table_rows(grid_results: Path, cmn_tasks: list) -> None:
    (grid,) = _report(grid_results, cmn_tasks).precision
    table = precision_table(grid)
    assert table.columns[:4] == ["dim", "precision", "bytes/vector", "front"]
    assert table.columns[-2:] == ["Mean(Task)", "Mean(TaskType)"]
    rows = {(r[0], r[1]): r for r in table.rows}
    assert rows[("256", "float32")][2:4] == ["1024", ""]
    assert rows[("256", "int8")][2:4] == ["256", ""]
    assert rows[("512", "binary")][2:4] == ["64", "*"]
    assert rows[("1792", "binary")][2:4] == ["224", "*"]
    assert rows[("1792", "float32")][2:4] == ["7168", "*"]
    # the card's float32 rows beside the float32 rows that were run, none beside the others
    assert rows[("1792", "float32 (published)")][-1] == "80.29"
    assert rows[("256", "float32 (published)")][-1] == "79.74"
    assert ("512", "float32 (published)") not in rows


def test_report_prints_the_table_and_draws_the_plot(grid_results: Path, tmp_path: Path) -> None:
    text, _ = cmteb_report_plot(grid_results, tmp_path / "out", "precision", QZHOU_ZH)
    assert f"Quality per byte: {QZHOU_ZH} by output dimension and precision" in text


def test_no_grid_without_a_precision(grid_results: Path, cmn_tasks: list) -> None:
    summaries = _report(grid_results, cmn_tasks).summaries
    assert precision_grids([s for s in summaries if "output_dtypes" not in str(s.run)]) == []
    # the card's rows only where they compare (the published definition)
    current = _report(grid_results, cmn_tasks, definition=CURRENT)
    assert current.precision[0].published == {}


def test_a_variants_sweep_is_a_grid_of_its_own(grid_results: Path, cmn_tasks: list) -> None:
    """The points of another configuration (here a recipe variant) are not mixed with the
    official ones; the card's rows stand beside the official configuration only."""
    official = run_path(grid_results, QZHOU_ZH, QZHOU_ZH_REV, "output_dtypes_binary")
    for name in ("variant_ab", "output_dtypes_binary__variant_ab"):
        folder = run_path(grid_results, QZHOU_ZH, QZHOU_ZH_REV, name)
        folder.mkdir(parents=True)
        for f in official.glob("*.json"):
            (folder / f.name).write_bytes(f.read_bytes())
    grids = _report(grid_results, cmn_tasks).precision
    assert [(g.experiment, list(g.points)) for g in grids] == [
        (
            None,
            [(256, "float32"), (256, "int8"), (512, "binary"), (1792, "float32"), (1792, "binary")],
        ),
        ("variant_ab", [(1792, "float32"), (1792, "binary")]),
    ]
    assert grids[0].published and not grids[1].published
    assert f"Quality per byte: {QZHOU_ZH} [variant_ab] by" in precision_table(grids[1]).title
