"""Rendering: ×100 with two decimals at the end only, NA with counts, Markdown; the run summary."""

from __future__ import annotations

from pathlib import Path

import mteb
import pytest
from mteb.abstasks import AbsTask, AbsTaskClassification
from mteb.abstasks.task_metadata import TaskMetadata
from mteb.results import TaskResult

from qzhou_eval.report import BenchmarkInfo, render_run_summary
from qzhou_eval.report.discover import run_path
from qzhou_eval.report.render import (
    Table,
    fmt_diff,
    fmt_mean,
    fmt_score,
    format_markdown,
    format_text,
    type_label,
)
from qzhou_eval.report.score import Mean
from tests.report.report_testdata import (
    CMN,
    ENG,
    PUBLISHED_ENG,
    QZHOU,
    QZHOU_REV,
    QZHOU_ZH,
    QZHOU_ZH_REV,
    task_file,
)

# What the run plan carries (qzhou_eval.runs.runner.RunPlan.benchmark).
ENG_BENCH = BenchmarkInfo("mteb_eng_v2", ENG, 41)
CMN_BENCH = BenchmarkInfo("cmteb", CMN, 31)


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


def _named(tasks: list[AbsTask], *names: str) -> list[AbsTask]:
    return [t for t in tasks if t.metadata.name in names]


def test_full_benchmark(package_results: Path, eng_tasks: list[AbsTask]) -> None:
    text = render_run_summary(package_results, eng_tasks, QZHOU, QZHOU_REV, benchmark=ENG_BENCH)
    assert text.startswith(f"Run summary: {QZHOU}@{QZHOU_REV}\nMTEB(eng, v2): all 41 tasks")
    row = next(line for line in text.splitlines() if line.startswith(QZHOU + " "))
    assert row.split()[1:] == [f"{v:.2f}" for v in PUBLISHED_ENG.values()]
    assert "REPRODUCED: all 41 tasks" in text
    assert "SCIDOCS" in text and "Mean(TaskType)" in text


def test_subset_is_labelled_and_covers_only_its_tasks(
    package_results: Path, eng_tasks: list[AbsTask]
) -> None:
    text = render_run_summary(
        package_results,
        _named(eng_tasks, "STSBenchmark"),
        QZHOU,
        QZHOU_REV,
        None,
        benchmark=ENG_BENCH,
    )
    assert "MTEB(eng, v2): subset of 1 of its 41 tasks, not the full benchmark" in text
    assert "STSBenchmark" in text
    assert "SCIDOCS" not in text and "STS12" not in text
    row = next(line for line in text.splitlines() if line.startswith(QZHOU + " "))
    assert row.split()[1:] == ["95.04", "95.04", "95.04"]


def test_missing_tasks_are_listed(results_copy: Path, eng_tasks: list[AbsTask]) -> None:
    task_file(results_copy, QZHOU, QZHOU_REV, "STS12").unlink()
    text = render_run_summary(results_copy, eng_tasks, QZHOU, QZHOU_REV, benchmark=ENG_BENCH)
    assert "STS12 (no result file)" in text
    assert "NA (40/41)" in text and "NA (8/9)" in text
    assert "INCOMPLETE" in text


def test_run_without_any_result(tmp_path: Path, eng_tasks: list[AbsTask]) -> None:
    text = render_run_summary(tmp_path, _named(eng_tasks, "STS12", "SCIDOCS"), "me/m", "r1")
    assert "Run summary: me/m@r1" in text
    assert "STS12 (no result file)" in text and "SCIDOCS (no result file)" in text
    assert "NA (0/2)" in text
    assert "No reference" not in text


def test_experiment_folder_and_definition(
    results_copy: Path, cmn_tasks: list[AbsTask], tmp_path: Path
) -> None:
    base = run_path(results_copy, QZHOU_ZH, QZHOU_ZH_REV)
    exp = run_path(results_copy, QZHOU_ZH, QZHOU_ZH_REV, "embed_dim_1792")
    exp.mkdir(parents=True)
    for f in base.glob("*.json"):
        if f.name != "model_meta.json":
            (exp / f.name).write_bytes(f.read_bytes())
    text = render_run_summary(
        results_copy, cmn_tasks, QZHOU_ZH, QZHOU_ZH_REV, "embed_dim_1792", benchmark=CMN_BENCH
    )
    assert text.startswith(f"Run summary: {QZHOU_ZH}@{QZHOU_ZH_REV} [embed_dim_1792]")
    assert f"Results: {exp}" in text
    assert "REPRODUCED: all 31 tasks" in text  # compared with the published 1792-dim results
    row = next(line for line in text.splitlines() if line.startswith(QZHOU_ZH))
    assert row.split()[-2:] == ["78.52", "80.29"]
    today = render_run_summary(
        results_copy, cmn_tasks, QZHOU_ZH, QZHOU_ZH_REV, "embed_dim_1792", definition="current"
    )
    row = next(line for line in today.splitlines() if line.startswith(QZHOU_ZH))
    assert row.split()[-2:] == ["78.52", "80.30"]


def test_tasks_outside_any_known_benchmark(tmp_path: Path) -> None:
    """Demo-like tasks: any AbsTask list, even one unknown to mteb's registry."""

    class TinyClassification(AbsTaskClassification):
        metadata = TaskMetadata(
            name="TinyDemoClassification",
            description="a task the report has never heard of",
            main_score="accuracy",
            type="Classification",
            eval_langs=["eng-Latn"],
            eval_splits=["test"],
            dataset={"path": "not/exists", "revision": "none"},
        )

    tiny, sts16 = TinyClassification(), mteb.get_task("STS16")
    folder = run_path(tmp_path, "local/minilm", "demo")
    folder.mkdir(parents=True)
    scores = {"test": {"default": {"main_score": 0.75, "accuracy": 0.75}}}
    TaskResult.from_task_results(tiny, scores, 1.0).to_disk(folder / "TinyDemoClassification.json")
    TaskResult.from_task_results(sts16, scores, 1.0).to_disk(folder / "STS16.json")
    text = render_run_summary(tmp_path, [tiny, sts16], "local/minilm", "demo")
    assert "custom task list: 2 tasks" in text
    row = next(line for line in text.splitlines() if line.startswith("local/minilm "))
    assert row.split()[1:] == ["75.00", "75.00", "75.00", "75.00"]


def test_benchmark_of_the_run_plan_labels_the_list(
    package_results: Path, cmn_tasks: list[AbsTask]
) -> None:
    tasks = _named(cmn_tasks, "ATEC", "BQ")
    text = render_run_summary(package_results, tasks, QZHOU, QZHOU_REV, benchmark=CMN_BENCH)
    assert "MTEB(cmn, v1): subset of 2 of its 31 tasks" in text
    with pytest.raises(Exception, match="definition"):
        render_run_summary(package_results, tasks, QZHOU, QZHOU_REV, definition="old")
