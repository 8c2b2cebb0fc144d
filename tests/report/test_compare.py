"""Reference comparison: verdicts, flags and the tolerance."""

from __future__ import annotations

from pathlib import Path

import pytest
from mteb.abstasks import AbsTask

from qzhou_eval.report.aggregate import summarize
from qzhou_eval.report.compare import (
    INCOMPLETE,
    NOT_REPRODUCED,
    REPRODUCED,
    Delta,
    compare,
)
from qzhou_eval.report.discover import RunDir, RunId, run_path
from qzhou_eval.report.scores import load_run_scores
from tests.report.report_testdata import QZHOU, QZHOU_REV, edit_scores, task_file


def _summary(results: Path, tasks: list[AbsTask]):
    run = RunDir(RunId(QZHOU, QZHOU_REV), run_path(results, QZHOU, QZHOU_REV))
    return summarize(load_run_scores(run, tasks))


def _bump(path: Path, delta: float) -> None:
    def edit(data: dict) -> None:
        for entry in data["scores"]["test"]:
            entry["main_score"] += delta

    edit_scores(path, edit)


def test_self_comparison_is_reproduced_with_zero_differences(
    package_results: Path, eng_tasks: list[AbsTask]
) -> None:
    s = _summary(package_results, eng_tasks)
    c = compare(s, s, 0.01, "self")
    assert c.verdict == REPRODUCED
    assert all(d.diff == 0.0 for d in (*c.tasks, *c.types, *c.means))
    assert c.verdict_line().startswith("REPRODUCED: all 41 tasks within ±0.01 points")


def test_one_altered_task_is_flagged_alone(
    package_results: Path, results_copy: Path, eng_tasks: list[AbsTask]
) -> None:
    _bump(task_file(results_copy, QZHOU, QZHOU_REV, "SCIDOCS"), -0.005)
    c = compare(_summary(results_copy, eng_tasks), _summary(package_results, eng_tasks), 0.01)
    assert [d.name for d in c.flagged_tasks] == ["SCIDOCS"]
    assert c.flagged_tasks[0].diff == pytest.approx(-0.5)
    assert [d.name for d in c.types if d.flagged] == ["Retrieval"]
    assert c.verdict == NOT_REPRODUCED
    assert "SCIDOCS (-0.50)" in c.verdict_line()


def test_missing_task_makes_it_incomplete(
    package_results: Path, results_copy: Path, eng_tasks: list[AbsTask]
) -> None:
    task_file(results_copy, QZHOU, QZHOU_REV, "STS12").unlink()
    c = compare(_summary(results_copy, eng_tasks), _summary(package_results, eng_tasks), 0.01)
    assert c.verdict == INCOMPLETE
    assert c.missing_in_run == ["STS12"]
    assert "INCOMPLETE: 40 of 41 tasks compared" in c.verdict_line()
    reverse = compare(_summary(package_results, eng_tasks), _summary(results_copy, eng_tasks))
    assert reverse.missing_in_reference == ["STS12"] and reverse.verdict == INCOMPLETE


def test_tolerance_is_in_points_and_strict() -> None:
    assert not Delta("t", None, 0.8001, 0.8, 0.01).flagged  # 0.01 points: at the tolerance
    assert Delta("t", None, 0.8002, 0.8, 0.01).flagged  # 0.02 points
    assert not Delta("t", None, 0.81, 0.8, 1.0).flagged
    assert Delta("t", None, None, 0.8, 0.0).diff is None
