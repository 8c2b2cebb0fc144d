"""A damaged mirror file is named in one line once loading the task's data failed."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from qzhou_eval.mirror.content import file_problem
from tests.in_process import qzhou_eval
from tests.mirror.repo_writer import write_table, write_task_repo

GOOD = '{"sentence1": "a", "sentence2": "b", "score": 1.0}\n'


def _gz(path: Path, data: bytes) -> Path:
    path.write_bytes(gzip.compress(data, mtime=0))
    return path


@pytest.mark.parametrize(
    ("name", "data", "problem"),
    [
        ("t.jsonl", (GOOD * 3)[:-20].encode(), "is cut off mid-line at line 3"),
        (
            "t.jsonl",
            (GOOD + GOOD.replace('"a"', '"a \\ud800"')).encode(),
            "the escape \\ud800 on line 2",
        ),
        ("t.jsonl", GOOD.encode() + b'{"sentence1": "caf\xe9"}\n', "0xe9 at byte"),
        ("t.jsonl", (GOOD + GOOD.replace('"a"', '"\\ud83d\\ude00"')).encode(), None),  # a pair
        ("t.tsv", b"a\tb\tscore\nx\ty\t1\nx\ty", "is cut off mid-line at line 3"),
        ("t.json", b'{"a": [1, 2', "is not valid JSON"),
    ],
)
def test_damaged_text_files(tmp_path, name, data, problem):
    path = tmp_path / name
    path.write_bytes(data)
    found = file_problem(path)
    assert (found is None) if problem is None else (problem in (found or "")), found


def test_damaged_compressed_and_parquet_files(tmp_path):
    whole = gzip.compress((GOOD * 2000).encode(), mtime=0)
    cut = tmp_path / "t.jsonl.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    assert "is truncated or damaged" in (file_problem(cut) or "")
    assert file_problem(_gz(tmp_path / "ok.jsonl.gz", (GOOD * 3).encode())) is None
    table = write_table(tmp_path / "t.parquet", [{"a": 1}] * 10)
    assert file_problem(table) is None
    table.write_bytes(table.read_bytes()[:-30])
    assert "not a readable parquet file" in (file_problem(table) or "")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("damage", "needle"),
    [
        (lambda data: data[: len(data) // 2], "is truncated or damaged"),
        (lambda data: _text(data).replace('"A man', '"\\ud800 A man', 1).encode(), "\\ud800"),
        (lambda data: _text(data).encode().replace(b"guitar", b"guit\xffr", 1), "not UTF-8"),
    ],
)
def test_a_damaged_mirror_file_stops_the_run_with_one_line(tmp_path, bench_task, damage, needle):
    mirror, test_file = _sts_mirror(tmp_path, bench_task)
    raw = test_file.read_bytes()
    damaged = damage(raw)
    test_file.write_bytes(damaged if damaged[:2] == raw[:2] else gzip.compress(damaged, mtime=0))
    run = _run_sts(tmp_path, mirror)
    assert run.code == 2, run.err[-3000:]
    assert "Traceback" not in run.err + run.out
    (line,) = run.err_lines
    assert line.startswith(f"error: task STSBenchmark: mirror file {test_file} ") and needle in line
    assert "python -m qzhou_eval.mirror benchmark=mteb_eng_v2" in line
    assert not list((tmp_path / "results").rglob("*.json"))


@pytest.mark.slow
def test_rows_edited_into_another_shape_are_one_line_naming_the_folder(tmp_path, bench_task):
    """A score that is not a number parses, then fails inside mteb's STS evaluation (a helper's
    trial: a 76-line traceback): the data are not the pinned revision's, so the line says so."""
    mirror, test_file = _sts_mirror(tmp_path, bench_task)
    rows = [{"sentence1": "a", "sentence2": "b", "score": {"a": 1}}] * 3
    write_table(test_file, rows)
    run = _run_sts(tmp_path, mirror)
    assert run.code == 2 and "Traceback" not in run.err + run.out, run.err[-3000:]
    (line,) = run.err_lines
    assert line.startswith(
        f"error: task STSBenchmark failed on the data of mirror folder {test_file.parent}, which "
        "are not shown to be the pinned revision (TypeError: "
    ), line
    assert f"fetch the repo again: remove {test_file.parent} and run python -m " in line
    assert not list((tmp_path / "results").rglob("STSBenchmark.json"))


@pytest.mark.slow
def test_with_continue_on_error_a_damaged_mirror_file_is_the_tasks_failure(tmp_path, bench_task):
    mirror, test_file = _sts_mirror(tmp_path, bench_task)
    test_file.write_bytes(test_file.read_bytes()[:-8])  # the gzip trailer is cut off
    run = _run_sts(tmp_path, mirror, "runtime.continue_on_error=true")
    assert run.code == 1 and "Traceback" not in run.err + run.out, run.err[-3000:]
    (line,) = run.err_lines  # the task's failure, listed at the end
    assert line.startswith(
        f"FAILED STSBenchmark: task STSBenchmark: mirror file {test_file} is truncated or damaged"
    )


@pytest.mark.slow
def test_a_damaged_parquet_file_is_one_line_too(tmp_path, bench_task):
    """datasets logs an error of its own before it raises on a parquet file it cannot read;
    the run prints its one line alone."""
    task = bench_task("MTEB(eng, v2)", "AskUbuntuDupQuestions")
    folder = write_task_repo(
        tmp_path / "mirror",
        task,
        corpus={"d1": "a cat", "d2": "a dog"},
        queries={"q1": "cats"},
        qrels={"q1": {"d1": 1, "d2": 0}},
        top_ranked={"q1": ["d1", "d2"]},
    )
    (corpus,) = folder.glob("corpus/*.parquet")
    corpus.write_bytes(corpus.read_bytes()[:100])
    run = _run_sts(tmp_path, tmp_path / "mirror", "benchmark.tasks=[AskUbuntuDupQuestions]")
    assert run.code == 2, run.err[-3000:]
    (line,) = run.err_lines
    assert line.startswith(f"error: task AskUbuntuDupQuestions: mirror file {corpus} ")
    assert "Failed to read schema" not in run.out


@pytest.mark.slow
def test_a_damaged_jsonl_corpus_is_one_line_naming_how_to_fetch_it_again(tmp_path, bench_task):
    """A BEIR repo's corpus.jsonl cut short: datasets' JSON loader logs an error of its own per
    try before it raises (a helper's trial: two such lines before the run's); the run prints its
    one line alone, with the command that fetches the repo again, whole."""
    task = bench_task("MTEB(eng, v2)", "ArguAna")
    folder = write_task_repo(
        tmp_path / "mirror",
        task,
        style="beir",
        corpus={"d1": "a cat", "d2": "a dog"},
        queries={"q1": "cats"},
        qrels={"q1": {"d1": 1, "d2": 0}},
    )
    corpus = folder / "corpus.jsonl"
    corpus.write_bytes(corpus.read_bytes()[:-20])
    run = _run_sts(tmp_path, tmp_path / "mirror", "benchmark.tasks=[ArguAna]")
    assert run.code == 2, run.err[-3000:]
    assert "Failed to load JSON" not in run.out + run.err
    (line,) = run.err_lines
    mirror = (tmp_path / "mirror").resolve()
    assert line.startswith(f"error: task ArguAna: mirror file {corpus} ")
    assert line.endswith(
        f"fetch the repo again: remove {folder} and run python -m qzhou_eval.mirror "
        f"benchmark=mteb_eng_v2 data.mirror={mirror} 'benchmark.tasks=[ArguAna]'"
    ), line


def _text(gz: bytes) -> str:
    return gzip.decompress(gz).decode()


def _sts_mirror(tmp_path: Path, bench_task) -> tuple[Path, Path]:
    """A mirror holding STSBenchmark only (three pairs): the mirror, and its test split's file."""
    mirror = tmp_path / "mirror"
    task = bench_task("MTEB(eng, v2)", "STSBenchmark")
    folder = write_task_repo(
        mirror, task, pairs=[("A man plays a guitar.", "A man plays.", 4.0)] * 3
    )
    return mirror, folder / "test.jsonl.gz"


def _run_sts(tmp_path: Path, mirror: Path, *extra: str):
    return qzhou_eval(
        "run",
        "model=minilm",
        "benchmark.tasks=[STSBenchmark]",
        f"data.mirror={mirror}",
        f"runtime.results_dir={tmp_path / 'results'}",
        "runtime.store_dir=null",
        "runtime.progress=false",
        *extra,
    )
