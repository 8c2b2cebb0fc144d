"""``python -m qzhou_eval.report``: the issue's "done when" items, end to end."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mteb
import pytest

from qzhou_eval.config.app import compose_config
from qzhou_eval.errors import ConfigError, UserError
from qzhou_eval.report.cli import run_report
from qzhou_eval.report.discover import run_path
from tests.in_process import qzhou_eval
from tests.report.report_testdata import (
    CMN,
    CURRENT_CMN,
    ENG,
    GOLDEN,
    MALFORMED,
    PUBLISHED_CMN,
    PUBLISHED_ENG,
    QZHOU,
    QZHOU_REV,
    QZHOU_ZH,
    REPO,
    TYPES_CMN,
    TYPES_ENG,
    edit_scores,
    golden_task_scores,
    task_file,
)

COLUMNS = ["Mean(Task)", "Mean(TaskType)"]


def report(*overrides: str) -> str:
    return run_report(compose_config("report", list(overrides)))


def table_rows(text: str, occurrence: int = 0, ranks: bool = False) -> dict[str, list[str]]:
    """The rows of the ``occurrence``-th leaderboard table in the text: label -> cells (the
    scores, or with ``ranks`` the Borda rank a table of several runs ends with)."""
    blocks = [b for b in text.split("\n\n") if "\nModel " in f"\n{b}" or b.startswith("Model ")]
    lines = blocks[occurrence].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Model "))
    ranked = lines[start].rstrip().endswith("Rank (Borda)")
    rows = {}
    for line in lines[start + 2 :]:
        label, *cells = line.split("  ")
        cells = [c.strip() for c in cells if c.strip()]
        if ranks:
            rows[label.strip()] = cells[-1:] if ranked else []
        else:
            rows[label.strip()] = cells[:-1] if ranked else cells
    return rows


def expected_cells(row: dict[str, float], types: tuple[str, ...]) -> list[str]:
    return [f"{row[c]:.2f}" for c in (*types, *COLUMNS)]


def test_eng_published_row(package_results: Path) -> None:
    text = report(f"results_dir={package_results}", "out_dir=false")
    assert text.startswith("MTEB(eng, v2): all 41 tasks")
    assert table_rows(text)[QZHOU] == expected_cells(PUBLISHED_ENG, TYPES_ENG)
    assert "REPRODUCED: all 41 tasks" in text
    assert "Skipped (no results for these tasks): Kingsoft-LLM/QZhou-Embedding-Zh@" in text


def test_cmteb_rows_under_both_definitions(package_results: Path) -> None:
    text = report(f"results_dir={package_results}", "benchmark=cmteb", "out_dir=false")
    assert "Definition: MultilingualSentiment counts validation only" in text
    published, current = table_rows(text, 0), table_rows(text, 1)
    assert list(published) == [QZHOU_ZH, QZHOU]  # by Mean(TaskType)
    for model in (QZHOU, QZHOU_ZH):
        assert published[model] == expected_cells(PUBLISHED_CMN[model], TYPES_CMN)
        row = PUBLISHED_CMN[model] | CURRENT_CMN[model]
        assert current[model] == expected_cells(row, TYPES_CMN)
    assert "The same where MultilingualSentiment counts validation and test" in text
    assert text.count("REPRODUCED: all 31 tasks") == 2

    today = report(
        f"results_dir={package_results}",
        "benchmark=cmteb",
        "definition=current",
        "out_dir=false",
    )
    assert "Definition: MultilingualSentiment counts validation and test" in today
    row = PUBLISHED_CMN[QZHOU] | CURRENT_CMN[QZHOU]
    assert table_rows(today, 0)[QZHOU] == expected_cells(row, TYPES_CMN)
    assert table_rows(today, 1)[QZHOU] == expected_cells(PUBLISHED_CMN[QZHOU], TYPES_CMN)


def _golden_rows(csv_path: Path, bench: str) -> dict[str, list[str]]:
    """Leaderboard rows computed independently from the per-task CSV."""
    models = {r["model"] for r in csv.DictReader(csv_path.open(encoding="utf-8"))}
    types = {t.metadata.name: t.metadata.type for t in mteb.get_benchmark(bench).tasks}
    rows = {}
    for model in models:
        scores = golden_task_scores(csv_path, model, bench)
        if len(scores) != len(types):
            continue
        by_type: dict[str, list[float]] = {}
        for task, value in scores.items():
            by_type.setdefault(types[task], []).append(value)
        type_means = {t: sum(v) / len(v) for t, v in sorted(by_type.items())}
        values = [*type_means.values()]
        values += [sum(scores.values()) / len(scores), sum(type_means.values()) / len(type_means)]
        rows[model] = [f"{v * 100:.2f}" for v in values]
    return rows


@pytest.mark.parametrize("bench", ["mteb_eng_v2", "cmteb"])
def test_several_models_one_row_each(package_results: Path, tmp_path: Path, bench: str) -> None:
    """A folder holding the peers' and the QZhou results: one correct row per model, sorted."""
    combined = tmp_path / "combined"
    combined.mkdir()
    for folder in (package_results, GOLDEN / "results_peers"):
        for model_dir in folder.iterdir():
            (combined / model_dir.name).symlink_to(model_dir)
    text = report(f"results_dir={combined}", f"benchmark={bench}", "out_dir=false")
    rows = table_rows(text)
    name = ENG if bench == "mteb_eng_v2" else CMN
    golden = _golden_rows(GOLDEN / "peers_per_task.csv", name)
    golden |= _golden_rows(GOLDEN / "qzhou_per_task.csv", name)
    expected = {m: golden[m] for m in rows}
    assert rows == expected
    assert len(rows) == (4 if bench == "mteb_eng_v2" else 5)
    mean_task_type = [float(cells[-1]) for cells in rows.values()]
    assert mean_task_type == sorted(mean_task_type, reverse=True)

    listed = report(
        f"results_dir=[{package_results},{GOLDEN / 'results_peers'}]",
        f"benchmark={bench}",
        "out_dir=false",
    )
    assert table_rows(listed) == rows


def test_one_task_file_removed(results_copy: Path) -> None:
    task_file(results_copy, QZHOU, QZHOU_REV, "STS12").unlink()
    text = report(f"results_dir={results_copy}", "out_dir=false")
    cells = table_rows(text)[QZHOU]
    # STS, Summ., Mean(Task), Mean(TaskType)
    assert cells[5:] == ["NA (8/9)", "33.05", "NA (40/41)", "NA (6/7)"]
    assert "STS12 (no result file)" in text
    assert "1 of 41 tasks incomplete" in text
    assert "INCOMPLETE: 40 of 41 tasks compared" in text


def test_reference_against_itself_and_one_altered_task(
    package_results: Path, results_copy: Path, tmp_path: Path
) -> None:
    official = package_results
    common = (f"reference={official}", "plots=false")
    text = report(f"results_dir={official}", f"out_dir={tmp_path / 'a'}", *common)
    assert "REPRODUCED: all 41 tasks within ±0.01 points; largest |Δ| 0.00" in text
    diffs = [r for r in csv.DictReader((tmp_path / "a" / "mteb_eng_v2_compare.csv").open())]
    assert diffs and all(float(r["diff_points"]) == 0.0 for r in diffs)
    assert not any(r["flagged"] == "True" for r in diffs)

    def lower(data: dict) -> None:
        data["scores"]["test"][0]["main_score"] -= 0.0123

    edit_scores(task_file(results_copy, QZHOU, QZHOU_REV, "TwitterURLCorpus"), lower)
    text = report(f"results_dir={results_copy}", f"out_dir={tmp_path / 'b'}", *common)
    verdict = "NOT REPRODUCED: 1 of 41 tasks differ by more than ±0.01 points: TwitterURLCorpus"
    assert verdict in text
    rows = list(csv.DictReader((tmp_path / "b" / "mteb_eng_v2_compare.csv").open()))
    flagged = [r["name"] for r in rows if r["level"] == "task" and r["flagged"] == "True"]
    assert flagged == ["TwitterURLCorpus"]
    flagged_lines = [line for line in text.splitlines() if line.endswith("<- differs")]
    assert [line.split()[0] for line in flagged_lines] == [
        "PairClassification",
        "TwitterURLCorpus",
        "Mean(Task)",
        "Mean(TaskType)",
    ]


def test_output_files(results_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    text = report(f"results_dir={results_copy}", "benchmark=cmteb", f"out_dir={out}")
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "cmteb-published.json",
        "cmteb-published.md",
        "cmteb-published_compare.csv",
        "cmteb-published_scores.csv",
        "cmteb-published_summary.csv",
        "cmteb-published_types_Kingsoft-LLM_QZhou-Embedding-Zh.png",
        "cmteb-published_types_Kingsoft-LLM_QZhou-Embedding.png",
    ]
    assert all(str(out / n) in text for n in names)
    data = json.loads((out / "cmteb-published.json").read_text(encoding="utf-8"))
    assert data["definition"] == "published" and data["scale"].startswith("0-1")
    run = next(r for r in data["runs"] if r["model"] == QZHOU)
    assert round(run["mean_task_type"]["value"] * 100, 2) == 78.58
    assert round(run["other_definition"]["mean_task_type"]["value"] * 100, 2) == 78.60
    assert {c["verdict"] for c in data["comparisons"]} == {"reproduced"}
    md = (out / "cmteb-published.md").read_text(encoding="utf-8")
    assert "| Kingsoft-LLM/QZhou-Embedding | 79.99 | 70.91 |" in md
    summary = list(csv.DictReader((out / "cmteb-published_summary.csv").open()))
    assert {r["model"] for r in summary} == {QZHOU, QZHOU_ZH}
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the per-split scores CSV reads back as a reference and reproduces itself
    again = report(
        f"results_dir={results_copy}",
        "benchmark=cmteb",
        f"reference={out / 'cmteb-published_scores.csv'}",
        "out_dir=false",
    )
    assert again.count("REPRODUCED: all 31 tasks") == 2


def test_default_out_dir_is_beside_the_results(results_copy: Path) -> None:
    text = report(f"results_dir={results_copy}", "plots=false", "per_task=false")
    beside = results_copy.parent / "results_report"
    assert (beside / "mteb_eng_v2.md").is_file()
    assert f"{beside}/mteb_eng_v2.json" in text
    assert not list(results_copy.rglob("*.md"))


def test_the_default_out_dir_of_several_folders_is_theirs_not_the_firsts(tmp_path: Path) -> None:
    from qzhou_eval.report.cli import _out_dir

    a, b = tmp_path / "a", tmp_path / "nodes" / "b"
    assert _out_dir(None, [a]) == tmp_path / "a_report"
    assert _out_dir(None, [a, b]) == tmp_path / "a+b_report"  # not a's own report's folder
    many = [tmp_path / f"results_of_node_{i:03d}" for i in range(8)]
    name = _out_dir(None, many).name
    assert name.startswith("results_of_node_000+7_more_") and name.endswith("_report")
    assert _out_dir(None, [*many[:7], b]) != _out_dir(None, many)
    assert _out_dir("false", [a, b]) is None


def test_subset_of_the_benchmark(package_results: Path) -> None:
    text = report(
        f"results_dir={package_results}",
        "benchmark.tasks=[STSBenchmark]",
        "out_dir=false",
    )
    assert text.startswith("MTEB(eng, v2): subset of 1 of its 41 tasks, not the full benchmark")
    assert table_rows(text)[QZHOU] == ["95.04", "95.04", "95.04"]


def test_models_and_experiments_filters(results_copy: Path) -> None:
    common = (f"results_dir={results_copy}", "benchmark=cmteb", "out_dir=false")
    text = report(*common, f"models=[{QZHOU_ZH}]")
    assert list(table_rows(text)) == [QZHOU_ZH]
    text = report(*common, "models=[Kingsoft-LLM/*]")
    assert len(table_rows(text)) == 2


def test_a_selection_that_leaves_out_every_experiment_run_says_so(
    results_copy: Path, tmp_path: Path
) -> None:
    # (it said "no runs in <folder>", of a folder holding runs)
    run = task_file(results_copy, QZHOU, QZHOU_REV, "x").parent
    only = tmp_path / "only" / run.parent.name / run.name / "experiments" / "mine"
    shutil.copytree(run, only)
    with pytest.raises(UserError) as e:
        report(f"results_dir={tmp_path / 'only'}", "benchmark=mteb_eng_v2", "experiments=none")
    assert str(e.value) == (
        f"experiments=none: every run in {tmp_path / 'only'} is in an experiment folder "
        "(mine): experiments=all reports them"
    )
    text = report(f"results_dir={tmp_path / 'only'}", "benchmark=mteb_eng_v2", "out_dir=false")
    assert f"{QZHOU} [mine]" in text


def test_bad_settings(results_copy: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="is not a folder"):
        report(f"results_dir={tmp_path / 'absent'}")
    with pytest.raises(ConfigError, match="inside results_dir"):
        report(f"results_dir={results_copy}", f"out_dir={results_copy / 'report'}")
    (tmp_path / "afile").write_text("")
    with pytest.raises(ConfigError, match=r"out_dir='.*afile' is a file: name a folder"):
        report(f"results_dir={results_copy}", f"out_dir={tmp_path / 'afile'}")
    for value in ("-1", "nan", "inf", "1e308", "101"):  # (nan called every gap reproduced;
        # inf and 1e308 broke the plot's axis: a traceback)
        with pytest.raises(ConfigError, match=r"tolerance=.*: give a number of score points from"):
            report(f"results_dir={results_copy}", f"tolerance={value}")
    with pytest.raises(ConfigError, match="definition"):
        report(f"results_dir={results_copy}", "definition=old")
    with pytest.raises(ConfigError, match=r"^definition=null is unknown"):  # (was 'None')
        report(f"results_dir={results_copy}", "definition=null")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no runs"):
        report(f"results_dir={tmp_path / 'empty'}")
    with pytest.raises(UserError, match="no results for any of the 41 tasks") as e:
        report(f"results_dir={results_copy}", f"models=[{QZHOU_ZH}]")
    assert str(e.value).endswith(
        "; if those runs are of another benchmark, set benchmark=<one of cmteb, demo_eng, "
        "demo_zho, mteb_eng_v2>"
    )
    with pytest.raises(ConfigError, match="plots='no': give true or false"):
        report(f"results_dir={results_copy}", "plots=no")
    with pytest.raises(UserError, match=r"experiments: no run has experiment \['nosuch'\]"):
        report(f"results_dir={results_copy}", "experiments=[nosuch]")
    # true, a mapping or an empty selection names nothing (they were a traceback, or read as
    # a folder or model named "True")
    for override, line in [
        ("results_dir=true", "results_dir=true: give a folder"),
        ("models=true", "models=true: give model names or patterns"),
        ("models=[]", r"models=\[\]: give model names or patterns"),
        ("experiments=true", "experiments=true: give all, none or experiment folder names"),
        ("experiments={a: 1}", "experiments={a: 1}: give all, none"),
        ("reference=true", "reference=true: give a results folder, a .csv file, or false"),
        ("reference_model=true", "reference_model=true: give a model name"),
        ("out_dir=true", "out_dir=true: give a folder for the report files, or false"),
        # blank ($DIR unset): not the current folder, not the default
        ("results_dir=", "results_dir='': give a folder"),
        ("results_dir=[x,' ']", r"results_dir=\['x', ' '\]: give a folder"),
        ("models=", "models='': give model names or patterns"),
        ("experiments=", "experiments='': give all, none or experiment folder names"),
        ("reference=", "reference='': give a results folder, a .csv file, or false"),
        ("reference=' '", "reference=' ': give a results folder, a .csv file, or false"),
        ("reference_model=", "reference_model='': give a model name"),
        # (ignored: the report compared nothing, silently)
        ("reference=false && reference_model=a/b", "reference_model='a/b' compares with nothing"),
        ("out_dir=", "out_dir='': give a folder for the report files, or false"),
    ]:
        with pytest.raises(ConfigError, match=line):
            report(f"results_dir={results_copy}", *override.split(" && "))


def test_names_hydra_reads_as_numbers_are_names(
    results_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``results_dir=2026`` is the folder 2026, as for a run (Hydra gives the number 2026)."""
    results_copy.rename(tmp_path / "2026")
    monkeypatch.chdir(tmp_path)
    text = report("results_dir=2026", "out_dir=2027", "plots=false")
    assert table_rows(text)[QZHOU] == expected_cells(PUBLISHED_ENG, TYPES_ENG)
    assert (tmp_path / "2027" / "mteb_eng_v2.md").is_file()
    with pytest.raises(UserError, match=r"^models=\['123'\]: no run in 2026 matches \(it has: "):
        report("results_dir=2026", "models=123", "out_dir=false")  # (was "no runs in 2026")
    with pytest.raises(UserError, match=r"no run has experiment \['5'\]"):
        report("results_dir=[2026]", "experiments=5", "out_dir=false")


def test_a_failed_write_leaves_the_report_folder_as_it_was(
    results_copy: Path, tmp_path: Path
) -> None:
    """All of the report's files or none: a folder where one file goes (or a full disk) stops
    the report before any file of it replaces an earlier report's."""
    out = tmp_path / "out"
    report(f"results_dir={results_copy}", f"out_dir={out}", "plots=false")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    scores = out / "mteb_eng_v2_scores.csv"
    scores.unlink()
    scores.mkdir()
    edit_scores(
        task_file(results_copy, QZHOU, QZHOU_REV, "STS12"),
        lambda data: data["scores"]["test"][0].update(main_score=0.5),
    )
    with pytest.raises(UserError, match=r"cannot write .*mteb_eng_v2_scores\.csv: Is a directory"):
        report(f"results_dir={results_copy}", f"out_dir={out}", "plots=false")
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert after == {name: data for name, data in before.items() if name != scores.name}
    assert sorted(p.name for p in out.iterdir()) == sorted(before)  # no temporary files


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.run(
        [sys.executable, "-m", "qzhou_eval.report", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_command_line(package_results: Path, tmp_path: Path) -> None:
    """The issue's command, results_dir relative to the cwd (the app does not change it)."""
    relative = os.path.relpath(package_results, REPO)
    done = _cli(
        f"results_dir={relative}", "benchmark=mteb_eng_v2", f"out_dir={tmp_path}", "plots=false"
    )
    assert done.returncode == 0, done.stderr
    assert table_rows(done.stdout)[QZHOU] == expected_cells(PUBLISHED_ENG, TYPES_ENG)
    assert (tmp_path / "mteb_eng_v2.md").is_file()


@pytest.mark.parametrize("case", ["unclosed_quote", "binary", "short_row", "two_scores"])
def test_malformed_reference_csv_is_one_line_exit_2(
    package_results: Path, tmp_path: Path, case: str
) -> None:
    data, line, _ = MALFORMED[case]
    bad = tmp_path / f"{case}.csv"
    bad.write_bytes(data)
    done = qzhou_eval(
        "report",
        f"results_dir={package_results}",
        "benchmark.tasks=[STS12]",
        f"reference={bad}",
        "out_dir=false",
    )
    assert done.code == 2
    assert done.err.splitlines() == [done.err.strip()]  # exactly one line
    assert done.err.startswith(f"error: reference CSV {bad}, line {line}: ")
    assert "Traceback" not in done.err + done.out
    assert done.out == ""  # no tables above it, no "no reference run" line


def test_never_touches_result_files(results_copy: Path, tmp_path: Path) -> None:
    before = {p: p.stat().st_mtime_ns for p in results_copy.rglob("*")}
    report(f"results_dir={results_copy}", f"out_dir={tmp_path / 'out'}", "plots=false")
    assert {p: p.stat().st_mtime_ns for p in results_copy.rglob("*")} == before
    assert not list((tmp_path / "out").glob(".*.tmp"))
    shutil.rmtree(tmp_path / "out")


def test_every_line_names_a_run_as_its_table_row_does(results_copy: Path) -> None:
    # two revisions of one model: the Missing list named the incomplete one without its
    # revision, so either row could be meant (a trial)
    base = run_path(results_copy, QZHOU, QZHOU_REV)
    shutil.copytree(base, run_path(results_copy, QZHOU, "retrained"))
    task_file(results_copy, QZHOU, "retrained", "STS12").unlink()
    text = report(f"results_dir={results_copy}", "benchmark=mteb_eng_v2", "plots=false")
    rows = table_rows(text)
    assert f"{QZHOU}@retrained" in rows and f"{QZHOU}@{QZHOU_REV[:12]}" in rows
    assert f"- {QZHOU}@retrained: 1 of 41 tasks incomplete" in text


def test_a_run_folder_whose_model_meta_mteb_cannot_read_is_named(results_copy: Path) -> None:
    # mteb's ResultCache skips a folder without model_meta.json and fails on a list: the report
    # counted such runs without a word (a trial)
    base = run_path(results_copy, QZHOU, QZHOU_REV)
    (base / "model_meta.json").write_text("[]")
    text = report(f"results_dir={results_copy}", "benchmark=mteb_eng_v2", "plots=false")
    assert f"{base}: its model_meta.json is not a JSON object, so mteb's loaders" in text
    (base / "model_meta.json").write_text("{")
    assert "its model_meta.json is not JSON, so" in report(
        f"results_dir={results_copy}", "benchmark=mteb_eng_v2", "plots=false"
    )
