"""``qzhou-eval list benchmarks|models|tasks``."""

from __future__ import annotations

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


def test_list_refuses_in_one_line():
    run = qzhou_eval("list", "datasets")
    assert (run.code, run.err_lines) == (
        2,
        ["error: cannot list 'datasets'; use one of ['benchmarks', 'models', 'tasks']"],
    )
    run = qzhou_eval("list", "tasks", "benchmark=nosuch")
    assert run.code == 2 and len(run.err_lines) == 1
    assert run.err_lines[0].startswith("error: benchmark=nosuch is unknown; use one of [")
    run = qzhou_eval("list")
    assert run.code == 2 and run.err_lines[0].startswith("usage: qzhou-eval list")
    assert run.err_lines[-1] == "error: name what to list: benchmarks, models or tasks"
