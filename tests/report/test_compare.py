"""References (package data, folder, CSV), their golden copies, and the comparison verdicts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from mteb.abstasks import AbsTask

from qzhou_eval.errors import UserError
from qzhou_eval.report.compare import (
    DEFAULT_LABEL,
    INCOMPLETE,
    NOT_REPRODUCED,
    REPRODUCED,
    Delta,
    compare,
    load_reference,
    package_reference_dir,
    published_mrl,
    published_row,
    published_table_path,
)
from qzhou_eval.report.discover import RunDir, RunId, run_path
from qzhou_eval.report.score import (
    CURRENT,
    PUBLISHED,
    RunScores,
    apply_definition,
    load_run_scores,
    summarize,
)
from tests.report.report_testdata import (
    CMN,
    ENG,
    GOLDEN,
    HEADER,
    MALFORMED,
    QZHOU,
    QZHOU_REV,
    QZHOU_ZH,
    QZHOU_ZH_REV,
    edit_scores,
    points,
    task_file,
)


def _sha256sums() -> dict[str, str]:
    """Upstream file (path relative to the reference folder) -> its SHA-256 (``SHA256SUMS``)."""
    lines = (GOLDEN / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    return {path: digest for digest, path in (line.split("  ", 1) for line in lines)}


def _digests(root: Path, under: str) -> dict[str, str]:
    files = sorted(p for p in (root / under).rglob("*") if p.is_file())
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_package_copies_match_the_upstream_files() -> None:
    """The shipped results and published.csv are byte-identical to the upstream files."""
    upstream = _sha256sums()
    ours = _digests(package_reference_dir().parent, "results")
    assert ours == {p: d for p, d in upstream.items() if p.startswith("results/")}
    assert len(ours) == 72 + 31 + 2  # task JSONs of both models + their model_meta.json
    published = hashlib.sha256(published_table_path().read_bytes()).hexdigest()
    assert published == upstream["published.csv"]


def test_golden_test_data_matches_the_upstream_files() -> None:
    """tests/data/reference holds byte-identical copies of the other upstream files, no more."""
    upstream = _sha256sums()
    copied = {p: d for p, d in upstream.items() if not p.startswith("results/")}
    del copied["published.csv"]
    ours = _digests(GOLDEN, ".")
    del ours["README.md"], ours["SHA256SUMS"]
    assert ours == copied


@pytest.mark.parametrize(
    ("model", "bench", "table"),
    [
        (QZHOU, ENG, "Table 2: MTEB(eng, v2)"),
        (QZHOU, CMN, "Table 3: CMTEB(cmn, v1)"),
        (QZHOU_ZH, CMN, "Zh card Table 1: CMTEB(cmn, v1)"),
        (QZHOU, CMN, "Zh card Table 1: CMTEB(cmn, v1)"),
    ],
)
def test_default_reference_reproduces_the_published_tables(
    eng_tasks: list[AbsTask], cmn_tasks: list[AbsTask], model: str, bench: str, table: str
) -> None:
    """Package data alone: the shipped JSONs give the shipped published rows."""
    tasks = apply_definition(eng_tasks if bench == ENG else cmn_tasks, PUBLISHED)
    ref = load_reference(None, tasks)
    assert ref is not None and ref.label == DEFAULT_LABEL
    found = ref.find(RunScores(RunId(model, "my-rerun"), (), "x"))
    assert found is not None
    summary = summarize(found)
    got = {t: points(m.value) for t, m in summary.types.items()}
    got |= {"Mean(Task)": points(summary.mean_task.value)}
    got |= {"Mean(TaskType)": points(summary.mean_task_type.value)}
    assert got == published_row(table, model.split("/")[-1])


def test_published_mrl_rows() -> None:
    rows = published_mrl(QZHOU_ZH, CMN)
    assert sorted(rows) == [128, 256, 512, 768, 1024, 1280, 1536, 1792]
    assert rows[1792]["Mean(TaskType)"] == 80.29
    assert published_mrl(QZHOU, CMN) == {}


def test_reference_matching_rules(cmn_tasks: list[AbsTask]) -> None:
    ref = load_reference(None, cmn_tasks)
    assert ref is not None

    def find(run: RunId, reference_model: str | None = None) -> RunId | None:
        found = ref.find(RunScores(run, (), "x"), reference_model)
        return found.run if found else None

    zh = RunId(QZHOU_ZH, QZHOU_ZH_REV)
    assert find(RunId(QZHOU_ZH, "other")) == zh
    assert find(RunId(QZHOU_ZH, QZHOU_ZH_REV, "embed_dim_1792")) == zh  # model_meta embed_dim
    assert find(RunId(QZHOU_ZH, QZHOU_ZH_REV, "embed_dim_256")) is None
    assert find(RunId("me/local-model", "1")) is None
    assert find(RunId("me/local-model", "1"), QZHOU_ZH) == zh
    assert find(RunId("me/local-model", "1"), f"{QZHOU}@{QZHOU_REV}") == RunId(QZHOU, QZHOU_REV)
    assert find(RunId("me/local-model", "1"), f"{QZHOU}@nope") is None


def test_no_reference() -> None:
    assert load_reference(False, []) is None
    assert load_reference("none", []) is None


def test_csv_reference_per_split_rows(cmn_tasks: list[AbsTask]) -> None:
    """qzhou_per_task.csv holds the counted rows: complete under the published definition only."""
    path = GOLDEN / "qzhou_per_task.csv"
    published = load_reference(str(path), apply_definition(cmn_tasks, PUBLISHED))
    scores = published.runs[RunId(QZHOU_ZH, QZHOU_ZH_REV)]
    assert scores.complete
    assert points(summarize(scores).mean_task_type.value) == 80.29
    current = load_reference(path, apply_definition(cmn_tasks, CURRENT))
    ms = current.runs[RunId(QZHOU_ZH, QZHOU_ZH_REV)].by_name()["MultilingualSentiment"]
    assert ms.score is None and ms.missing == (("test", "default"),)


def test_csv_reference_task_rows_and_errors(tmp_path: Path, eng_tasks: list[AbsTask]) -> None:
    path = tmp_path / "ref.csv"
    path.write_text("model,task,main_score\nme/m,STS12,0.5\nme/m,Unknown,0.1\n", encoding="utf-8")
    ref = load_reference(path, eng_tasks)
    scores = ref.runs[RunId("me/m", "")].by_name()
    assert scores["STS12"].score == 0.5
    assert scores["STS13"].score is None
    path.write_text("model,task,main_score\nme/m,STS12,88.97\n", encoding="utf-8")
    with pytest.raises(UserError, match="0–1 scale"):
        load_reference(path, eng_tasks)
    path.write_text("model,score\nme/m,0.5\n", encoding="utf-8")
    with pytest.raises(UserError, match="lacks column"):
        load_reference(path, eng_tasks)
    with pytest.raises(UserError, match="does not exist"):
        load_reference(tmp_path / "absent.csv", eng_tasks)
    with pytest.raises(UserError, match="reference"):
        load_reference(tmp_path / "absent-folder", eng_tasks)
    (tmp_path / "run1.log").write_text("")  # (was named "results_dir '...' is not a folder")
    with pytest.raises(UserError, match=r"^reference=.*run1.log: is not a folder in mteb's res"):
        load_reference(tmp_path / "run1.log", eng_tasks)


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_csv_names_the_file_and_line(
    tmp_path: Path, eng_tasks: list[AbsTask], case: str
) -> None:
    data, line, problem = MALFORMED[case]
    path = tmp_path / f"{case}.csv"
    path.write_bytes(data)
    with pytest.raises(UserError) as caught:
        load_reference(path, eng_tasks)
    message = str(caught.value)
    assert message.startswith(f"reference CSV {path}, line {line}: ")
    assert problem in message and "\n" not in message


def test_csv_quirks_that_are_fine(tmp_path: Path, eng_tasks: list[AbsTask]) -> None:
    """A byte-order mark, CRLF line ends, quoted fields and blank lines read as before."""
    path = tmp_path / "ok.csv"
    path.write_bytes(b'\xef\xbb\xbfmodel,task,main_score\r\n"me/m",STS12,0.5\r\n\r\n')
    ref = load_reference(path, eng_tasks)
    assert ref.runs[RunId("me/m", "")].by_name()["STS12"].score == 0.5
    path.write_bytes(HEADER + b"me/m,STS12,2.5\n")
    with pytest.raises(UserError, match=rf"{path}, line 2: main_score 2.5 of STS12"):
        load_reference(path, eng_tasks)


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
