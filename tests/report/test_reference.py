"""The default reference shipped in the package, results-folder and CSV references, matching."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest
from mteb.abstasks import AbsTask

from qzhou_eval.errors import UserError
from qzhou_eval.report.aggregate import summarize
from qzhou_eval.report.definitions import CURRENT, PUBLISHED, apply_definition
from qzhou_eval.report.discover import RunId
from qzhou_eval.report.published import published_mrl, published_row
from qzhou_eval.report.reference import (
    DEFAULT_LABEL,
    load_reference,
    package_reference_dir,
    published_table_path,
)
from qzhou_eval.report.scores import RunScores
from tests.report.report_testdata import (
    CMN,
    ENG,
    QZHOU,
    QZHOU_REV,
    QZHOU_ZH,
    QZHOU_ZH_REV,
    points,
)


def test_package_copies_are_byte_identical(shared_reference: Path) -> None:
    ours = package_reference_dir()
    for model_dir in (shared_reference / "results").iterdir():
        for rev_dir in model_dir.iterdir():
            names = sorted(p.name for p in rev_dir.iterdir())
            target = ours / model_dir.name / rev_dir.name
            assert sorted(p.name for p in target.iterdir()) == names
            _, mismatch, errors = filecmp.cmpfiles(rev_dir, target, names, shallow=False)
            assert not mismatch and not errors
    assert filecmp.cmp(shared_reference / "published.csv", published_table_path(), shallow=False)


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
    """Package data alone: the shipped JSONs give the shipped published rows (no shared/)."""
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


def test_csv_reference_per_split_rows(shared_reference: Path, cmn_tasks: list[AbsTask]) -> None:
    """qzhou_per_task.csv holds the counted rows: complete under the published definition only."""
    path = shared_reference / "qzhou_per_task.csv"
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
