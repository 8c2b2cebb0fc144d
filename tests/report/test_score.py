"""Scoring: which splits count, per-task scores from mteb's loaders, leaderboard means."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mteb
import pytest
from mteb.abstasks import AbsTask
from mteb.results import TaskResult

from qzhou_eval.errors import ConfigError
from qzhou_eval.report.discover import RunDir, RunId, run_path
from qzhou_eval.report.score import (
    CURRENT,
    DEFAULT_DEFINITION,
    MEAN_TASK,
    MEAN_TASK_TYPE,
    NO_FILE,
    PUBLISHED,
    Mean,
    RunScores,
    Summary,
    TaskScore,
    affected_tasks,
    apply_definition,
    borda_ranks,
    check_definition,
    describe_definition,
    leaderboard_order,
    load_run_scores,
    load_task_results,
    mean_of,
    other_definition,
    score_task,
    summarize,
)
from tests.report.report_testdata import (
    CMN,
    CURRENT_CMN,
    ENG,
    GOLDEN,
    PUBLISHED_CMN,
    PUBLISHED_ENG,
    QZHOU,
    QZHOU_REV,
    QZHOU_ZH,
    QZHOU_ZH_REV,
    edit_scores,
    golden_task_scores,
    points,
    task_file,
)

PEER = "Qwen/Qwen3-Embedding-8B"
PEER_DIR = "Qwen__Qwen3-Embedding-8B"


def _ms(tasks: list[AbsTask]) -> AbsTask:
    return next(t for t in tasks if t.metadata.name == "MultilingualSentiment")


def test_published_counts_validation_only_without_touching_mteb_tasks(
    cmn_tasks: list[AbsTask],
) -> None:
    before = list(_ms(cmn_tasks).eval_splits)
    published = apply_definition(cmn_tasks, PUBLISHED)
    assert list(_ms(published).eval_splits) == ["validation"]
    assert list(_ms(cmn_tasks).eval_splits) == before == ["validation", "test"]
    assert list(_ms(apply_definition(cmn_tasks, CURRENT)).eval_splits) == before
    others = [(a, b) for a, b in zip(cmn_tasks, published, strict=True) if a is not b]
    assert [a.metadata.name for a, _ in others] == ["MultilingualSentiment"]


def test_only_cmteb_is_affected(cmn_tasks: list[AbsTask], eng_tasks: list[AbsTask]) -> None:
    assert affected_tasks(cmn_tasks) == ["MultilingualSentiment"]
    assert affected_tasks(eng_tasks) == []
    assert describe_definition(PUBLISHED, eng_tasks) is None
    assert "validation only" in describe_definition(PUBLISHED, cmn_tasks)
    assert "validation and test" in describe_definition(CURRENT, cmn_tasks)


def test_names() -> None:
    assert DEFAULT_DEFINITION == PUBLISHED
    assert other_definition(PUBLISHED) == CURRENT
    assert other_definition(CURRENT) == PUBLISHED
    with pytest.raises(ConfigError, match="definition='old'"):
        check_definition("old")


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
    # said in words, not as the loader's internals ('list' object has no attribute 'get', a
    # KeyError's bare key); a main score that is not a number is not a missing split
    sts = task_file(results_copy, QZHOU, QZHOU_REV, "STS13")
    quoted = json.loads(sts.read_text(encoding="utf-8"))
    quoted["scores"]["test"][0]["main_score"] = "0.7"
    for text, problem in (
        ("[]", "unreadable result file: it holds an array, not mteb's result object"),
        ("null", "unreadable result file: it holds null, not mteb's result object"),
        ("{}", "unreadable result file: it lacks 'mteb_dataset_name', which mteb's loader reads"),
        (json.dumps(quoted), "main_score '0.7' (test/default) is not a number"),
    ):
        sts.write_text(text, encoding="utf-8")
        scored = load_run_scores(_run(results_copy, QZHOU, QZHOU_REV), eng_tasks).by_name()
        assert (scored["STS13"].score, scored["STS13"].problem) == (None, problem)


def test_a_file_of_another_task_or_of_0_100_scores_is_not_counted(
    results_copy: Path, eng_tasks: list[AbsTask]
) -> None:
    """mteb's loaders file a result under the task it names, not under its file name: a file
    holding another task's result (copied or renamed) is not that task's; and no main score of
    mteb's is beyond 1 (72.87 is a 0-100 file: counted, it made Mean(Task) 1516)."""
    sts12 = task_file(results_copy, QZHOU, QZHOU_REV, "STS12")
    shutil.copy(task_file(results_copy, QZHOU, QZHOU_REV, "BIOSSES"), sts12)
    edit_scores(
        task_file(results_copy, QZHOU, QZHOU_REV, "STS13"),
        lambda d: d["scores"]["test"][0].update(main_score=72.87),
    )
    scores = load_run_scores(_run(results_copy, QZHOU, QZHOU_REV), eng_tasks).by_name()
    assert scores["STS12"].score is None
    assert scores["STS12"].problem == "the file holds a result of BIOSSES, not of STS12"
    assert scores["STS13"].score is None
    assert scores["STS13"].problem.startswith("main_score 72.87 (test/default) is beyond")
    assert scores["BIOSSES"].complete and scores["STS14"].complete


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


def test_a_run_in_two_folders_counts_each_task_once(tmp_path: Path) -> None:
    sts, cls = mteb.get_task("STSBenchmark"), mteb.get_task("Banking77Classification")
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, task, score, time in ((a, sts, 0.9, 1.0), (b, cls, 0.7, 1.0), (b, sts, 0.9, 2.0)):
        main = {"main_score": score, "cosine_spearman": score, "accuracy": score}
        split = task.metadata.eval_splits[0]
        result = TaskResult.from_task_results(task, {split: {"default": main}}, time)
        folder.mkdir(exist_ok=True)
        result.to_disk(folder / f"{task.metadata.name}.json")
    loaded = load_task_results((a, b), [sts, cls])
    assert score_task(cls, loaded["Banking77Classification"]).score == pytest.approx(0.7)
    # in both folders with equal scores (a shard run twice; its time differs): counted once
    assert score_task(sts, loaded["STSBenchmark"]).score == pytest.approx(0.9)
    other = TaskResult.from_task_results(
        sts, {"test": {"default": {"main_score": 0.5, "cosine_spearman": 0.5}}}, 1.0
    )
    other.to_disk(b / "STSBenchmark.json")
    scored = score_task(sts, load_task_results((a, b), [sts])["STSBenchmark"])
    assert scored.score is None
    assert scored.problem == (
        f"different scores in {a} and {b}: not counted (report the folders apart)"
    )


def test_a_result_other_than_the_one_its_record_vouches_for_is_not_counted(tmp_path: Path):
    # e.g. copied in from another dimension's folder after the run: its provenance is unknown
    from qzhou_eval.runs.identity import TaskRecord, claimed

    task = mteb.get_task("STSBenchmark")
    record = TaskRecord(tmp_path, "STSBenchmark", {"a": 1}, "test")

    def write(score: float) -> None:
        result = TaskResult.from_task_results(
            task, {"test": {"default": {"main_score": score, "cosine_spearman": score}}}, 1.0
        )
        result.to_disk(tmp_path / "STSBenchmark.json")

    with claimed(record, overwrite=False):  # as a run writes it: the record seals it
        write(0.9)
    assert score_task(task, load_task_results(tmp_path, [task])["STSBenchmark"]).score == 0.9
    write(0.5)
    scored = score_task(task, load_task_results(tmp_path, [task])["STSBenchmark"])
    assert scored.score is None and "result replaced after its run" in scored.problem
    (tmp_path / "STSBenchmark.json").write_text('{"scores": ')  # truncated: unreadable
    scored = score_task(task, load_task_results(tmp_path, [task])["STSBenchmark"])
    assert scored.score is None and scored.problem.startswith("unreadable result file")


def test_a_result_without_its_record_in_a_folder_qzhou_eval_wrote_is_not_counted(tmp_path):
    # e.g. its record deleted, or damaged, or the file copied in beside recorded results
    from qzhou_eval.runs.identity import RECORDS, TaskRecord, claimed

    sts, sick = mteb.get_task("STSBenchmark"), mteb.get_task("SICK-R")

    def write(task: AbsTask) -> None:
        scores = {"test": {"default": {"main_score": 0.8, "cosine_spearman": 0.8}}}
        TaskResult.from_task_results(task, scores, 1.0).to_disk(
            tmp_path / f"{task.metadata.name}.json"
        )

    write(sick)  # a folder without records (the public results repository): counted
    assert score_task(sick, load_task_results(tmp_path, [sick])["SICK-R"]).score == 0.8
    with claimed(TaskRecord(tmp_path, "STSBenchmark", {"a": 1}, "test"), overwrite=False):
        write(sts)
    loaded = load_task_results(tmp_path, [sts, sick])
    assert score_task(sts, loaded["STSBenchmark"]).score == 0.8
    unrecorded = score_task(sick, loaded["SICK-R"])
    assert unrecorded.score is None
    assert (
        f"without a whole record in a folder qzhou-eval wrote ({RECORDS}/SICK-R.yaml missing, "
        "cut short or edited)" in (unrecorded.problem or "")
    )
    record = tmp_path / RECORDS / "STSBenchmark.yaml"
    text = record.read_text()
    for damaged in (
        "{{ not yaml",
        text[:60],  # cut short, yet YAML: its fingerprint cut, its fields gone
        text[: text.index("\na: 1")],  # cut after the fingerprint: the fields gone
        text.replace("a: 1", "a: 2"),  # edited: another configuration's, said to be this one
    ):
        record.write_text(damaged)
        scored = score_task(sts, load_task_results(tmp_path, [sts])["STSBenchmark"])
        assert scored.score is None and "without a whole record" in (scored.problem or "")
    record.write_text(text)
    assert score_task(sts, load_task_results(tmp_path, [sts])["STSBenchmark"]).score == 0.8


def test_a_run_folder_whose_records_were_deleted_beside_recorded_ones_is_not_counted(tmp_path):
    # mteb's layout has no mark of the harness of its own; the records of the revision's other
    # run folders say qzhou-eval wrote the tree (a 128-dimension result once showed as the full
    # size's STS, its records folder deleted)
    root = tmp_path / "rev"
    small = root / "experiments" / "embed_dim_128"
    task = _recorded_sts(small, {"dim": 128})
    _recorded_sts(root, {"dim": None})
    shutil.rmtree(root / "qzhou_eval_records")
    scored = score_task(task, load_task_results(root, [task])["STSBenchmark"])
    assert scored.score is None and "without a whole record" in (scored.problem or "")
    shutil.rmtree(small / "qzhou_eval_records")  # no record left anywhere: read as it is
    assert score_task(task, load_task_results(root, [task])["STSBenchmark"]).score == 0.7
    assert score_task(task, load_task_results(small, [task])["STSBenchmark"]).score == 0.7


def _recorded_sts(folder: Path, fields: dict) -> AbsTask:
    """An STSBenchmark result of 0.7 in ``folder``, written as a run writes it (its record
    first, sealed after); it counts there."""
    from qzhou_eval.runs.identity import TaskRecord, claimed

    task = mteb.get_task("STSBenchmark")
    scores = {"test": {"default": {"main_score": 0.7, "cosine_spearman": 0.7}}}
    with claimed(TaskRecord(folder, "STSBenchmark", fields, "test"), overwrite=False):
        TaskResult.from_task_results(task, scores, 1.0).to_disk(folder / "STSBenchmark.json")
    assert score_task(task, load_task_results(folder, [task])["STSBenchmark"]).score == 0.7
    return task


def _copied_and_scored(task: AbsTask, source: Path, folder: Path):
    """The result scored in ``folder`` once it and its record are copied there from
    ``source`` (a folder merged by hand)."""
    (folder / "qzhou_eval_records").mkdir(parents=True, exist_ok=True)
    for name in ("STSBenchmark.json", "qzhou_eval_records/STSBenchmark.yaml"):
        shutil.copy(source / name, folder / name)
    return score_task(task, load_task_results(folder, [task])["STSBenchmark"])


def test_a_result_and_record_copied_from_a_variants_folder_are_not_counted(tmp_path):
    # (a folder merged by hand: a variant's STS shown as the official run's before)
    root = tmp_path / "rev"
    variant = root / "experiments" / "variant_b504d9d8d8"
    task = _recorded_sts(variant, {"dim": None})
    scored = _copied_and_scored(task, variant, root)
    assert scored.score is None
    assert scored.problem.startswith(
        "result whose record says it was filed in 'experiments/variant_b504d9d8d8' of its "
        "revision's folder, found in '.' (copied between folders?): not counted"
    )


def test_a_result_and_record_copied_into_another_sizes_folder_are_not_counted(tmp_path):
    # a 128-dimension result with its record copied into the full size's folder (or int8's into
    # float32's): the record says what it is, the folder's name what it holds
    root = tmp_path / "rev"
    small = root / "experiments" / "embed_dim_128__output_dtypes_int8"
    task = _recorded_sts(small, {"dim": 128, "precision": "int8"})
    _recorded_sts(root, {"dim": None})
    scored = _copied_and_scored(task, small, root)
    assert scored.score is None
    assert scored.problem.startswith(
        "result whose record says output size 128, precision int8, in a folder of output size "
        "full, precision float32"
    )
    # a record before 0.2.0 named the full size: the folder's model_meta.json states it
    (root / "model_meta.json").write_text(json.dumps({"embed_dim": 384}))
    (root / "STSBenchmark.json").unlink()
    (root / "qzhou_eval_records" / "STSBenchmark.yaml").unlink()
    _recorded_sts(root, {"dim": 384})  # (counts: asserted there)
    (root / "model_meta.json").write_text(json.dumps({"embed_dim": 768}))
    assert score_task(task, load_task_results(root, [task])["STSBenchmark"]).score is None


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


def _scored(name: str, scores: dict[str, float | None]) -> Summary:
    tasks = tuple(
        TaskScore(task, "STS" if task.startswith("S") else "Retrieval", "m", score)
        for task, score in scores.items()
    )
    return summarize(RunScores(RunId(name, "r"), tasks, "folder"))


def test_borda_rank_shares_ties_and_gives_nothing_for_a_missing_task() -> None:
    a = _scored("a", {"S1": 0.9, "S2": 0.5, "R1": 0.7})
    b = _scored("b", {"S1": 0.9, "S2": 0.6, "R1": None})
    c = _scored("c", {"S1": 0.1, "S2": 0.4, "R1": 0.2})
    # S1: a, b share ranks 1-2 (1.5 points each of n=3), c 0; S2: b 2, a 1, c 0; R1: a 2, c 1
    assert borda_ranks([a, b, c]) == {a.run: 1, b.run: 2, c.run: 3}  # 4.5, 3.5, 1
    d = _scored("d", {"S1": 0.9, "S2": 0.6, "R1": 0.7})  # equal points share the best rank
    e = _scored("e", {"S1": 0.9, "S2": 0.6, "R1": 0.7})
    assert borda_ranks([d, e]) == {d.run: 1, e.run: 1}


def test_a_run_without_any_score_has_no_borda_rank_and_changes_none() -> None:
    # mteb's table drops such a model before counting its models: counted, it made n 3, and
    # b's one more task than a's then tied them (4 points each) where mteb ranks a first
    a = _scored("a", {"S1": 0.9, "S2": 0.9, "R1": None})  # 1 + 1 points of n=2
    b = _scored("b", {"S1": 0.1, "S2": 0.1, "R1": 0.5})  # 0 + 0 + 1
    empty = _scored("empty", {"S1": None, "S2": None, "R1": None})
    assert borda_ranks([a, b, empty]) == {a.run: 1, b.run: 2, empty.run: None}
    assert leaderboard_order([empty, b, a]) == [a, b, empty]


def test_leaderboard_order_is_the_borda_rank_not_a_mean() -> None:
    """A run that wins most tasks narrowly ranks first, as on the leaderboard, though another
    has the better Mean(TaskType); equal ranks follow Mean(TaskType)."""
    narrow = _scored("narrow", {"S1": 0.81, "S2": 0.81, "R1": 0.10})
    broad = _scored("broad", {"S1": 0.80, "S2": 0.80, "R1": 0.90})
    assert broad.mean_task_type.value > narrow.mean_task_type.value
    assert leaderboard_order([broad, narrow]) == [narrow, broad]
    twin = _scored("twin", {"S1": 0.80, "S2": 0.80, "R1": 0.90})
    assert leaderboard_order([twin, narrow, broad])[0] == narrow


@pytest.mark.slow
def test_agrees_with_mteb_leaderboard_summary(
    package_results: Path, cmn_tasks: list[AbsTask], tmp_path: Path
) -> None:
    """mteb's own summary table (today's definition) gives the same means for these models, and
    the same Borda ranks, also for a run whose rank and Mean(TaskType) disagree: a peer with
    QZhou-Embedding-Zh's results a little higher on every task but classification, far lower
    there."""
    results = tmp_path / "results"
    shutil.copytree(package_results, results)
    shutil.copytree(GOLDEN / "results_peers" / "Qwen__Qwen3-Embedding-8B", results / PEER_DIR)
    (peer,) = (results / PEER_DIR).iterdir()
    zh = run_path(results, QZHOU_ZH, QZHOU_ZH_REV)
    for task in cmn_tasks:
        name = task.metadata.name
        shutil.copy(zh / f"{name}.json", peer / f"{name}.json")
        narrow = task.metadata.type != "Classification"

        def edit(data: dict, narrow: bool = narrow) -> None:
            for entries in data["scores"].values():
                for entry in entries:
                    entry["main_score"] = entry["main_score"] + 0.001 if narrow else 0.3

        edit_scores(peer / f"{name}.json", edit)
    bench = mteb.get_benchmark(CMN)
    loaded = mteb.ResultCache(tmp_path).load_results(
        tasks=bench, include_remote=False, require_model_meta=False, validate_and_filter=True
    )
    table = loaded.get_benchmark_result().set_index("Model")
    current = apply_definition(cmn_tasks, CURRENT)
    runs = {
        model: _summary(results, model, revision, current)
        for model, revision in [(QZHOU, QZHOU_REV), (QZHOU_ZH, QZHOU_ZH_REV), (PEER, peer.name)]
    }
    ranks = borda_ranks(list(runs.values()))
    assert {m: ranks[s.run] for m, s in runs.items()} == table["Rank (Borda)"].to_dict()
    ordered = [s.run.model for s in leaderboard_order(runs.values())]
    assert ordered == [PEER, QZHOU_ZH, QZHOU]
    assert max(runs.values(), key=lambda s: s.mean_task_type.value).run.model != PEER
    for model, revision in [(QZHOU, QZHOU_REV), (QZHOU_ZH, QZHOU_ZH_REV)]:
        ours = _summary(results, model, revision, current)
        assert table.loc[model, "Mean (Task)"] == pytest.approx(ours.mean_task.value, abs=1e-12)
        assert table.loc[model, "Mean (TaskType)"] == pytest.approx(
            ours.mean_task_type.value, abs=1e-12
        )
        for task_type, mean in ours.types.items():
            assert table.loc[model, task_type] == pytest.approx(mean.value, abs=1e-12)
