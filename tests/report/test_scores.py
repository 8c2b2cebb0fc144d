"""Per-task scores: mteb's loading and split/subset filters, and the listing of what is missing."""

from __future__ import annotations

import json
from pathlib import Path

import mteb
import pytest
from mteb.abstasks import AbsTask
from mteb.results import TaskResult

from qzhou_eval.report.definitions import PUBLISHED, apply_definition
from qzhou_eval.report.discover import RunDir, RunId, run_path
from qzhou_eval.report.scores import NO_FILE, load_run_scores, load_task_results, score_task
from tests.report.report_testdata import (
    CMN,
    ENG,
    GOLDEN,
    QZHOU,
    QZHOU_REV,
    QZHOU_ZH,
    QZHOU_ZH_REV,
    edit_scores,
    golden_task_scores,
    task_file,
)


def _run(results: Path, model: str, revision: str) -> RunDir:
    return RunDir(RunId(model, revision), run_path(results, model, revision))


@pytest.mark.parametrize(
    ("model", "revision", "bench"),
    [(QZHOU, QZHOU_REV, ENG), (QZHOU, QZHOU_REV, CMN), (QZHOU_ZH, QZHOU_ZH_REV, CMN)],
)
def test_task_scores_match_the_counted_rows(
    package_results: Path, model: str, revision: str, bench: str
) -> None:
    """Every task score equals the mean of the rows the leaderboard counted (golden CSV)."""
    tasks = apply_definition(mteb.get_benchmark(bench).tasks, PUBLISHED)
    scores = load_run_scores(_run(package_results, model, revision), tasks)
    golden = golden_task_scores(GOLDEN / "qzhou_per_task.csv", model, bench)
    got = {t.name: t.score for t in scores.tasks}
    assert set(got) == set(golden)
    for task, value in golden.items():
        assert got[task] == pytest.approx(value, abs=1e-12), task
    assert scores.complete


def test_benchmark_filters_keep_only_the_counted_subsets(
    package_results: Path, eng_tasks: list[AbsTask]
) -> None:
    scores = load_run_scores(_run(package_results, QZHOU, QZHOU_REV), eng_tasks).by_name()
    assert [(p.split, p.subset) for p in scores["STS17"].parts] == [("test", "en-en")]
    assert [(p.split, p.subset) for p in scores["AmazonCounterfactualClassification"].parts] == [
        ("test", "en")
    ]
    assert [p.subset for p in scores["STS22.v2"].parts] == ["en"]


def test_cmteb_splits(package_results: Path, cmn_tasks: list[AbsTask]) -> None:
    scores = load_run_scores(_run(package_results, QZHOU, QZHOU_REV), cmn_tasks).by_name()
    assert {p.split for p in scores["ATEC"].parts} == {"test"}
    assert {p.split for p in scores["T2Retrieval"].parts} == {"dev"}
    assert {p.split for p in scores["TNews"].parts} == {"validation"}
    assert {p.split for p in scores["MultilingualSentiment"].parts} == {"validation", "test"}


def test_missing_file_split_and_subset_are_listed(
    results_copy: Path, eng_tasks: list[AbsTask]
) -> None:
    task_file(results_copy, QZHOU, QZHOU_REV, "STS12").unlink()

    def drop_en_en(data: dict) -> None:
        data["scores"]["test"] = [e for e in data["scores"]["test"] if e["hf_subset"] != "en-en"]

    edit_scores(task_file(results_copy, QZHOU, QZHOU_REV, "STS17"), drop_en_en)
    edit_scores(
        task_file(results_copy, QZHOU, QZHOU_REV, "SCIDOCS"),
        lambda d: d["scores"].pop("test"),
    )
    scores = load_run_scores(_run(results_copy, QZHOU, QZHOU_REV), eng_tasks).by_name()
    assert scores["STS12"].score is None and scores["STS12"].problem == NO_FILE
    assert scores["STS17"].score is None and scores["STS17"].missing == (("test", "en-en"),)
    assert scores["SCIDOCS"].score is None and scores["SCIDOCS"].missing == (("test", "default"),)
    assert scores["STS17"].describe_missing() == "STS17: test/en-en"
    assert scores["STS12"].describe_missing() == "STS12 (no result file)"


def test_unreadable_file_is_reported_not_fatal(
    results_copy: Path, eng_tasks: list[AbsTask]
) -> None:
    task_file(results_copy, QZHOU, QZHOU_REV, "BIOSSES").write_text("{not json", encoding="utf-8")
    scores = load_run_scores(_run(results_copy, QZHOU, QZHOU_REV), eng_tasks).by_name()
    assert scores["BIOSSES"].score is None
    assert scores["BIOSSES"].problem.startswith("unreadable result file")
    assert scores["STS12"].complete


def test_pre_1_11_result_files_are_read(tmp_path: Path) -> None:
    """The oldest mteb 1.x layout (split -> metric dicts, no main_score) goes through mteb."""
    old = {
        "mteb_version": "1.0.0",
        "mteb_dataset_name": "STS17",
        "dataset_revision": "x",
        "test": {
            "en-en": {"cos_sim": {"pearson": 0.8, "spearman": 0.85}},
            "ko-ko": {"cos_sim": {"pearson": 0.8, "spearman": 0.5}},
            "evaluation_time": 1.0,
        },
    }
    (tmp_path / "STS17.json").write_text(json.dumps(old), encoding="utf-8")
    task = next(t for t in mteb.get_benchmark(ENG).tasks if t.metadata.name == "STS17")
    loaded = load_task_results(tmp_path, [task])
    scored = score_task(task, loaded["STS17"])
    assert scored.score == pytest.approx(0.85)  # en-en only, as the benchmark counts it


def test_mteb_2_result_files_are_read(tmp_path: Path) -> None:
    task = mteb.get_task("STSBenchmark")
    result = TaskResult.from_task_results(
        task, {"test": {"default": {"main_score": 0.9, "cosine_spearman": 0.9}}}, 1.0
    )
    result.to_disk(tmp_path / "STSBenchmark.json")
    scored = score_task(task, load_task_results(tmp_path, [task])["STSBenchmark"])
    assert scored.score == pytest.approx(0.9)
    assert [(p.split, p.subset) for p in scored.parts] == [("test", "default")]
