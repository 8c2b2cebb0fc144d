"""Official tasks run by the runners from a repo-shaped offline mirror (the issue's done-when)."""

from __future__ import annotations

import copy
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import mteb
import pytest
import yaml

from tests.conftest import REPO
from tests.in_process import qzhou_eval, script
from tests.mirror.repo_writer import write_table, write_task_repo

MINILM = "sentence-transformers__all-MiniLM-L6-v2/8b3219a92973c328a8e22fadcfa821b5dc75636a"
PAIRS = [
    ("A man is playing a guitar.", "A man is playing a guitar.", 5.0),
    ("A man is playing a guitar.", "A man plays the guitar.", 4.2),
    ("A woman is slicing an onion.", "A woman is cutting an onion.", 3.8),
    ("The stock market fell sharply today.", "A kitten sleeps on the warm sofa.", 0.0),
]
# q2's relevant document has q2's exact text but is not among q2's candidates: reranking over
# the candidate lists scores MAP (1 + 0) / 2 = 0.5, full-corpus retrieval would score 1.0.
RERANK = {
    "corpus": {
        "d1": "the cat sat on the mat",
        "d2": "a recipe for tomato soup",
        "d3": "stock markets fell today",
        "d4": "the weather is sunny",
    },
    "queries": {"q1": "the cat sat on the mat", "q2": "stock markets fell today"},
    "qrels": {"q1": {"d1": 1, "d2": 0}, "q2": {"d3": 1, "d4": 0}},
    "top_ranked": {"q1": ["d1", "d2"], "q2": ["d2", "d4"]},
}

pytestmark = pytest.mark.slow


def _task(benchmark: str, name: str):
    task = next(t for t in mteb.get_benchmark(benchmark).tasks if t.metadata.name == name)
    return copy.copy(task)


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, script, "model=minilm", "runtime.progress=false", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )


def _main_score(path: Path) -> float:
    return json.loads(path.read_text())["scores"][
        next(iter(json.loads(path.read_text())["scores"]))
    ][0]["main_score"]


def test_run_cmteb_sts_and_reranking_from_mirror(tmp_path):
    mirror = tmp_path / "mirror"
    write_task_repo(mirror, _task("MTEB(cmn, v1)", "AFQMC"), pairs=PAIRS)
    write_task_repo(mirror, _task("MTEB(cmn, v1)", "T2Reranking"), **RERANK)
    res = _run(
        "run_cmteb.py",
        "benchmark.tasks=[AFQMC,T2Reranking]",
        f"data.mirror={mirror}",
        f"runtime.results_dir={tmp_path / 'results'}",
        f"runtime.store_dir={tmp_path / 's'}",
    )
    assert res.returncode == 0, res.stderr[-3000:]
    folder = tmp_path / "results" / MINILM
    assert _main_score(folder / "AFQMC.json") == pytest.approx(1.0)
    assert _main_score(folder / "T2Reranking.json") == pytest.approx(0.5)  # candidate lists used
    assert "T2Reranking" in res.stdout and "AFQMC" in res.stdout


def test_missing_dataset_fails_before_encoding(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    res = script(
        "run_cmteb.py",
        "model=minilm",
        "runtime.progress=false",
        "benchmark.tasks=[BQ]",
        f"data.mirror={mirror}",
        f"runtime.results_dir={tmp_path / 'results'}",
    )
    assert res.code == 2
    line = res.err_lines
    assert len(line) == 1
    assert "BQ" in line[0] and "C-MTEB/BQ" in line[0] and "python -m qzhou_eval.mirror" in line[0]
    assert not (tmp_path / "results").exists()


def test_records_and_reports_say_where_the_data_came_from(tmp_path):
    mirror = tmp_path / "mirror"
    folder = write_task_repo(mirror, _task("MTEB(eng, v2)", "STSBenchmark"), pairs=PAIRS)
    args = [
        "model=minilm",
        "benchmark.tasks=[STSBenchmark]",
        f"data.mirror={mirror}",
        f"runtime.results_dir={tmp_path / 'results'}",
        f"runtime.store_dir={tmp_path / 's'}",
        "runtime.progress=false",
    ]
    first = qzhou_eval("run", *args)  # run_mteb.py's app
    assert first.code == 0, first.err[-3000:]
    result = tmp_path / "results" / MINILM / "STSBenchmark.json"
    assert _main_score(result) == pytest.approx(1.0)  # MiniLM orders the four pairs like the gold
    assert "STSBenchmark" in first.out and "100.00" in first.out
    record = yaml.safe_load(
        (tmp_path / "results" / MINILM / "qzhou_eval_records" / "STSBenchmark.yaml").read_text()
    )
    source = record["data_source"]
    assert source["source"] == "mirror" and source["folder"] == str(folder.resolve())
    assert source["matches_revision"] is True and len(source["sha256"]) == 64
    assert "data_content" not in record  # the pinned data: the official identity
    assert f"Data: mirror {mirror.resolve()}, files match the pinned revision" in first.out

    # Other rows under the same revision's download metadata: never filed as the official data,
    # whether or not the official folder holds the pinned data's result yet (a helper's trial:
    # filed there first, then the pinned data were refused as "made from other data").
    official = result.read_bytes()
    for rows, results in ((2, tmp_path / "results"), (3, tmp_path / "fresh")):
        write_table(
            folder / "test.jsonl.gz",
            [{"sentence1": "a", "sentence2": "b", "score": 1.0}] * rows
            + [{"sentence1": "a", "sentence2": "c", "score": 0.0}],
        )
        other = qzhou_eval("run", *args, f"runtime.results_dir={results}")
        assert other.code == 0, other.err[-3000:]
        (variant,) = (results / MINILM / "experiments").glob("variant_*")
        assert f"(1 in experiments/{variant.name})" in other.out.splitlines()[0]
        record = yaml.safe_load((variant / "qzhou_eval_records/STSBenchmark.yaml").read_text())
        assert record["data_content"] == f"sha256:{record['data_source']['sha256']}"
        assert not (results / MINILM / "STSBenchmark.json").exists() or (
            result.read_bytes() == official
        )
    # a third content, where the second's result is filed: refused, then filed apart by name
    write_table(folder / "test.jsonl.gz", [{"sentence1": "a", "sentence2": "b", "score": 1.0}] * 3)
    refused = qzhou_eval("run", *args)
    assert refused.code == 2 and "Traceback" not in refused.err
    (line,) = refused.err_lines
    assert "STSBenchmark result of a different configuration, made from other data" in line

    apart = qzhou_eval("run", *args, "experiment=edited_mirror")
    assert apart.code == 0, apart.err[-3000:]
    edited = tmp_path / "results" / MINILM / "experiments" / "experiment_edited_mirror"
    record = yaml.safe_load((edited / "qzhou_eval_records" / "STSBenchmark.yaml").read_text())
    assert record["data_content"] == f"sha256:{record['data_source']['sha256']}"
    assert record["data_source"]["matches_revision"] is False

    report = qzhou_eval(
        "report",
        f"results_dir={tmp_path / 'results'}",
        "benchmark.tasks=[STSBenchmark]",
        "out_dir=false",
    )
    assert report.code == 0, report.err[-3000:]
    lines = [ln for ln in report.out.splitlines() if ln.startswith("Data of ")]
    assert len(lines) == 3, report.out
    assert any("files match the pinned revision" in ln for ln in lines)
    assert any(
        "edited_mirror" in ln and "NOT shown to be the pinned revision" in ln for ln in lines
    )


@pytest.mark.parametrize("when", ["as it writes", "before it writes"])
def test_a_full_datasets_cache_is_one_line_naming_it(tmp_path, monkeypatch, when):
    """datasets meets a full disk as it builds a task's tables (a helper's trial: 119 lines of
    traceback, ending in DatasetGenerationError), or finds no free space before it starts (its
    own check: an OSError without an errno): the line of a failed write, naming the cache
    folder and the task; nothing is filed."""
    import datasets.builder
    import datasets.config
    from datasets.arrow_writer import ArrowWriter

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if when == "as it writes":
        monkeypatch.setattr(ArrowWriter, "write_table", full)
    else:
        monkeypatch.setattr(datasets.builder, "has_sufficient_disk_space", lambda *a, **k: False)
    said = "No space left on device" if when == "as it writes" else "not enough disk space"
    mirror = tmp_path / "mirror"
    rows = [(f"{tmp_path.name} one", "two", 1.0), ("three", "four", 0.0)]  # tables of its own
    write_task_repo(mirror, _task("MTEB(eng, v2)", "STSBenchmark"), pairs=rows)
    results = tmp_path / "results"
    run = qzhou_eval(
        "run",
        "model=minilm",
        "benchmark.tasks=[STSBenchmark]",
        f"data.mirror={mirror}",
        f"runtime.results_dir={results}",
        f"runtime.store_dir={tmp_path / 's'}",
        "runtime.progress=false",
    )
    assert run.code == 1 and "Traceback" not in run.err, run.err[-3000:]
    assert run.err_lines[-1].startswith(
        f"error: cannot write {datasets.config.HF_DATASETS_CACHE}: {said} "
        "(datasets builds the tables of task STSBenchmark there: free space, or set "
        "HF_DATASETS_CACHE or HF_HOME to a folder with room)"
    ), run.err_lines
    assert not list(results.rglob("STSBenchmark.json"))
