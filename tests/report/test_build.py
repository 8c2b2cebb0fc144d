"""Building a report; MRL sweeps: embed_dim_<d>/ folders, the curve, its table and plot."""

from __future__ import annotations

from pathlib import Path

import pytest

from qzhou_eval.config.app import compose_config
from qzhou_eval.report.build import BenchmarkInfo, build_report, mrl_curves
from qzhou_eval.report.cli import run_report
from qzhou_eval.report.discover import discover_runs, run_path
from qzhou_eval.report.render import render_text
from qzhou_eval.report.score import CURRENT
from tests.report.report_testdata import (
    CMN,
    QZHOU,
    QZHOU_ZH,
    QZHOU_ZH_REV,
    cmteb_report_plot,
    points,
    scaled_copies,
)

FACTORS = {256: 0.96, 512: 0.98}


@pytest.fixture
def mrl_results(results_copy: Path) -> Path:
    """QZhou-Embedding-Zh with fake embed_dim_256/512 experiments: every score scaled."""
    base = run_path(results_copy, QZHOU_ZH, QZHOU_ZH_REV)
    for dim, factor in FACTORS.items():
        exp = run_path(results_copy, QZHOU_ZH, QZHOU_ZH_REV, f"embed_dim_{dim}")
        exp.mkdir(parents=True)
        scaled_copies(base, exp, factor, mteb_version="2.26.24")
    return results_copy


def test_curve_points(mrl_results: Path, cmn_tasks: list) -> None:
    runs = discover_runs([mrl_results])
    report = build_report(runs, cmn_tasks, BenchmarkInfo("cmteb", CMN, 31), [mrl_results])
    curves = mrl_curves(report.summaries)
    assert [(c.model, c.dims) for c in curves] == [(QZHOU_ZH, [256, 512, 1792])]
    curve = curves[0]
    full = curve.points[1792]
    assert points(full.mean_task_type.value) == 80.29  # the base run, embed_dim from model_meta
    for dim, factor in FACTORS.items():
        for task_type, mean in curve.points[dim].types.items():
            assert mean.value == pytest.approx(full.types[task_type].value * factor)
    assert all(c.model != QZHOU for c in curves)  # one dimension only: no curve


def test_report_draws_the_curve(mrl_results: Path, tmp_path: Path) -> None:
    text, _ = cmteb_report_plot(mrl_results, tmp_path / "out", "mrl", QZHOU_ZH)
    assert f"{QZHOU_ZH} [embed_dim_256]" in text
    no_exp = run_report(
        compose_config(
            "report",
            [f"results_dir={mrl_results}", "benchmark=cmteb", "out_dir=false", "experiments=none"],
        )
    )
    assert "embed_dim" not in no_exp
    one = run_report(
        compose_config(
            "report",
            [
                f"results_dir={mrl_results}",
                "benchmark=cmteb",
                "out_dir=false",
                "experiments=[embed_dim_512]",
            ],
        )
    )
    assert "[embed_dim_512]" in one and "[embed_dim_256]" not in one


def test_report_prints_the_dimension_by_type_table(mrl_results: Path) -> None:
    text = run_report(
        compose_config("report", [f"results_dir={mrl_results}", "benchmark=cmteb", "out_dir=false"])
    )
    block = text[text.index(f"MRL: {QZHOU_ZH} by output dimension") :].splitlines()
    rows = {line.split("  ")[0].strip(): line.split() for line in block[3:20] if line.strip()}
    assert rows["1792"][-1] == "80.29"  # the base run (published definition)
    assert rows["1792 (published)"][-1] == "80.29"  # the model card's row beside it
    assert rows["256 (published)"][-1] == "79.74"
    assert "128" not in rows and "128 (published)" not in rows  # only dimensions that were run
    assert float(rows["256"][-1]) == pytest.approx(80.29 * 0.96, abs=0.01)


def test_card_rows_only_beside_the_whole_benchmark_under_the_published_definition(
    mrl_results: Path, cmn_tasks: list
) -> None:
    """Decided once in the report: the text table and the plot show the same rows."""
    runs = discover_runs([mrl_results])
    bench = BenchmarkInfo("cmteb", CMN, 31)
    full = build_report(runs, cmn_tasks, bench, [mrl_results])
    assert sorted(full.mrl[0].published) == [128, 256, 512, 768, 1024, 1280, 1536, 1792]
    current = build_report(runs, cmn_tasks, bench, [mrl_results], definition=CURRENT)
    subset = build_report(runs, cmn_tasks[:3], bench, [mrl_results])
    for report in (current, subset):
        assert [c.dims for c in report.mrl] == [[256, 512, 1792]]
        assert report.mrl[0].published == {}
        assert "(published)" not in render_text(report)


def test_a_reference_model_the_reference_lacks_is_one_line(results_copy: Path, cmn_tasks: list):
    # a mistyped name would otherwise compare nothing and say only "no reference run"
    from qzhou_eval.errors import UserError

    runs = discover_runs([results_copy])
    bench = BenchmarkInfo("cmteb", CMN, 31)
    found = build_report(runs, cmn_tasks, bench, [results_copy], reference_model=QZHOU_ZH)
    assert found.comparisons
    with pytest.raises(UserError, match=r"reference_model=nope/x is not in the reference, .*"):
        build_report(runs, cmn_tasks, bench, [results_copy], reference_model="nope/x")
    with pytest.raises(UserError, match=rf"reference_model={QZHOU_ZH}@abc is not in the ref"):
        build_report(runs, cmn_tasks, bench, [results_copy], reference_model=f"{QZHOU_ZH}@abc")
    # the revision's short form, as a run's first line prints it (as models= takes it)
    short = f"{QZHOU_ZH}@{QZHOU_ZH_REV[:12]}"
    by_short = build_report(runs, cmn_tasks, bench, [results_copy], reference_model=short)
    compared = [c.reference.scores.run for c in by_short.comparisons]
    assert compared and compared == [c.reference.scores.run for c in found.comparisons]


def test_a_sweep_under_an_experiment_is_a_curve_of_its_own(
    mrl_results: Path, cmn_tasks: list
) -> None:
    # (it had none: its points were rows of the leaderboard only, a trial)
    base = run_path(mrl_results, QZHOU_ZH, QZHOU_ZH_REV)
    for experiment, factor in (("experiment_bar", 0.99), ("embed_dim_256__experiment_bar", 0.9)):
        folder = run_path(mrl_results, QZHOU_ZH, QZHOU_ZH_REV, experiment)
        folder.mkdir(parents=True)
        scaled_copies(base, folder, factor, mteb_version="2.26.24")
    (
        run_path(mrl_results, QZHOU_ZH, QZHOU_ZH_REV, "experiment_bar") / "model_meta.json"
    ).write_text('{"embed_dim": 1792}')
    runs = discover_runs([mrl_results])
    report = build_report(runs, cmn_tasks, BenchmarkInfo("cmteb", CMN, 31), [mrl_results])
    curves = {c.experiment: c for c in report.mrl}
    assert set(curves) == {None, "experiment_bar"}
    assert curves["experiment_bar"].dims == [256, 1792] and curves[None].dims == [256, 512, 1792]
    assert not curves["experiment_bar"].published  # the card's rows: the official one's only
    bar = curves["experiment_bar"].points
    assert bar[1792].run.experiment == "experiment_bar"
    assert bar[256].run.experiment == "embed_dim_256__experiment_bar"
    text = render_text(report)
    assert f"MRL: {QZHOU_ZH} [experiment_bar] by output dimension" in text
    assert f"MRL: {QZHOU_ZH} by output dimension" in text
