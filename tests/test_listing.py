"""``qzhou-eval list benchmarks|models|tasks``."""

from __future__ import annotations

from qzhou_eval.listing import USAGE
from tests.in_process import qzhou_eval


def test_list_benchmarks_and_models():
    run = qzhou_eval("list", "benchmarks")
    assert run.code == 0 and run.err == ""
    rows = {line.split()[0]: line for line in run.out.splitlines()}
    assert set(rows) == {"cmteb", "demo_eng", "demo_zho", "mteb_eng_v2"}
    assert "MTEB(eng, v2)" in rows["mteb_eng_v2"] and rows["mteb_eng_v2"].endswith("41 task(s)")
    assert rows["cmteb"].endswith("31 task(s)")

    run = qzhou_eval("list", "models")
    assert run.code == 0 and run.err == ""
    rows = {line.split()[0]: line for line in run.out.splitlines()}
    assert {"minilm", "qzhou_embedding", "qzhou_embedding_zh", "hf_auto"} <= set(rows)
    assert "Kingsoft-LLM/QZhou-Embedding " in rows["qzhou_embedding"]
    assert "1792 dims" in rows["qzhou_embedding_zh"]
    assert "(set model.name)" in rows["hf_auto"]


def test_list_tasks_of_a_benchmark():
    run = qzhou_eval("list", "tasks", "benchmark=demo_zho", "benchmark.tasks=[DemoZhoClustering]")
    assert run.code == 0 and run.err == ""
    assert run.out.splitlines() == [
        "demo_zho: 1 task(s)",
        "  DemoZhoClustering  Clustering           cmn",
    ]


def test_list_tasks_of_a_shard_is_the_runs_and_a_bad_shard_is_refused():
    # the shard's tasks, as a run of the same overrides evaluates (DemoEngReranking and
    # DemoEngSTS split by name: shard 1 of 2 is DemoEngSTS)
    tasks = "benchmark.tasks=[DemoEngReranking,DemoEngSTS]"
    shard = ("benchmark=demo_eng", tasks, "benchmark.num_shards=2", "benchmark.shard=1")
    run = qzhou_eval("list", "tasks", *shard)
    assert run.code == 0 and run.err == ""
    assert run.out.splitlines() == [
        "demo_eng: 1 task(s), shard 1 of 2",
        "  DemoEngSTS  STS                  eng",
    ]
    run = qzhou_eval(
        "list", "tasks", "benchmark=demo_eng", "benchmark.num_shards=2", "benchmark.shard=3"
    )
    assert run.code == 2 and len(run.err_lines) == 1 and run.out == ""
    assert run.err_lines[0].startswith("error: benchmark.shard=3")


def test_list_refuses_in_one_line():
    run = qzhou_eval("list", "datasets")
    assert (run.code, run.err_lines) == (
        2,
        ["error: cannot list 'datasets'; use one of ['benchmarks', 'models', 'tasks']"],
    )
    run = qzhou_eval("list", "tasks", "benchmark=nosuch")
    assert run.code == 2 and len(run.err_lines) == 1
    assert run.err_lines[0].startswith("error: benchmark=nosuch is unknown; use one of [")
    # a key no setting reads: the hint names a command that takes --cfg (list takes none)
    run = qzhou_eval("list", "tasks", "benchmarks=demo_eng")
    assert run.code == 2 and run.err_lines[0].endswith(
        "did you mean benchmark? (qzhou-eval run --cfg job lists every key)"
    )
    run = qzhou_eval("list")
    assert run.code == 2 and run.err_lines[0].startswith("usage: qzhou-eval list")
    assert run.err_lines[-1] == "error: name what to list: benchmarks, models or tasks"


def test_list_help_anywhere_and_no_other_option():
    from qzhou_eval.config import CONF_DIR

    for args in (["--help"], ["tasks", "--help"], ["tasks", "benchmark=demo_eng", "-h"]):
        run = qzhou_eval("list", *args)
        assert run.code == 0 and run.err == "", args
        assert run.out.splitlines() == [USAGE, f"The config files: {CONF_DIR}"]
    for flag in ("-m", "--cfg"):  # Hydra's: list is not a Hydra app
        run = qzhou_eval("list", "tasks", flag, "benchmark=demo_eng")
        assert (run.code, run.out) == (2, "")
        assert run.err_lines == [
            f"error: list takes no option {flag} (only --help): name what to list, then the "
            "benchmark's overrides"
        ]
