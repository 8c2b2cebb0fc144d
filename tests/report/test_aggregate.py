"""Leaderboard means: published rows, incomplete types, ordering, and agreement with mteb."""

from __future__ import annotations

import os
from pathlib import Path

import mteb
import pytest
from mteb.abstasks import AbsTask

from qzhou_eval.report.aggregate import (
    MEAN_TASK,
    MEAN_TASK_TYPE,
    Mean,
    leaderboard_order,
    mean_of,
    summarize,
)
from qzhou_eval.report.definitions import CURRENT, PUBLISHED, apply_definition
from qzhou_eval.report.discover import RunDir, RunId, run_path
from qzhou_eval.report.scores import load_run_scores
from tests.report.report_testdata import (
    CMN,
    CURRENT_CMN,
    PUBLISHED_CMN,
    PUBLISHED_ENG,
    QZHOU,
    QZHOU_REV,
    QZHOU_ZH,
    QZHOU_ZH_REV,
    points,
    task_file,
)


def _summary(results: Path, model: str, revision: str, tasks: list[AbsTask]):
    run = RunDir(RunId(model, revision), run_path(results, model, revision))
    return summarize(load_run_scores(run, tasks))


def _row(summary) -> dict[str, float | None]:
    row = {t: points(m.value) for t, m in summary.types.items()}
    return (
        row
        | {MEAN_TASK: points(summary.mean_task.value)}
        | {MEAN_TASK_TYPE: points(summary.mean_task_type.value)}
    )


def test_published_eng_row(package_results: Path, eng_tasks: list[AbsTask]) -> None:
    assert _row(_summary(package_results, QZHOU, QZHOU_REV, eng_tasks)) == PUBLISHED_ENG


@pytest.mark.parametrize(("model", "revision"), [(QZHOU, QZHOU_REV), (QZHOU_ZH, QZHOU_ZH_REV)])
def test_published_cmteb_rows_under_both_definitions(
    package_results: Path, cmn_tasks: list[AbsTask], model: str, revision: str
) -> None:
    published = _summary(package_results, model, revision, apply_definition(cmn_tasks, PUBLISHED))
    assert _row(published) == PUBLISHED_CMN[model]
    current = _summary(package_results, model, revision, apply_definition(cmn_tasks, CURRENT))
    assert _row(current) == PUBLISHED_CMN[model] | CURRENT_CMN[model]


def test_incomplete_type_has_no_mean_but_a_count(
    results_copy: Path, eng_tasks: list[AbsTask]
) -> None:
    task_file(results_copy, QZHOU, QZHOU_REV, "STS12").unlink()
    summary = _summary(results_copy, QZHOU, QZHOU_REV, eng_tasks)
    assert summary.types["STS"] == Mean(None, 8, 9)
    assert points(summary.types["Retrieval"].value) == PUBLISHED_ENG["Retrieval"]
    assert summary.mean_task == Mean(None, 40, 41)
    assert summary.mean_task_type == Mean(None, 6, 7)
    assert not summary.complete


def test_mean_of() -> None:
    assert mean_of([0.5, 0.7]).value == pytest.approx(0.6)
    assert mean_of([0.5, None]) == Mean(None, 1, 2)
    assert mean_of([]) == Mean(None, 0, 0)


def test_leaderboard_order_by_mean_task_type(
    package_results: Path, cmn_tasks: list[AbsTask], results_copy: Path
) -> None:
    zh = _summary(package_results, QZHOU_ZH, QZHOU_ZH_REV, cmn_tasks)
    base = _summary(package_results, QZHOU, QZHOU_REV, cmn_tasks)
    task_file(results_copy, QZHOU_ZH, QZHOU_ZH_REV, "ATEC").unlink()
    incomplete = _summary(results_copy, QZHOU_ZH, QZHOU_ZH_REV, cmn_tasks)
    ordered = leaderboard_order([incomplete, base, zh])
    assert ordered == [zh, base, incomplete]


@pytest.mark.slow
def test_agrees_with_mteb_leaderboard_summary(
    package_results: Path, cmn_tasks: list[AbsTask], tmp_path: Path
) -> None:
    """mteb's own summary table (today's definition) gives the same means for these models."""
    os.symlink(package_results, tmp_path / "results")
    bench = mteb.get_benchmark(CMN)
    loaded = mteb.ResultCache(tmp_path).load_results(
        tasks=bench, include_remote=False, require_model_meta=False, validate_and_filter=True
    )
    table = loaded.get_benchmark_result().set_index("Model")
    current = apply_definition(cmn_tasks, CURRENT)
    for model, revision in [(QZHOU, QZHOU_REV), (QZHOU_ZH, QZHOU_ZH_REV)]:
        ours = _summary(package_results, model, revision, current)
        assert table.loc[model, "Mean (Task)"] == pytest.approx(ours.mean_task.value, abs=1e-12)
        assert table.loc[model, "Mean (TaskType)"] == pytest.approx(
            ours.mean_task_type.value, abs=1e-12
        )
        for task_type, mean in ours.types.items():
            assert table.loc[model, task_type] == pytest.approx(mean.value, abs=1e-12)
