"""``qzhou-eval check``: one line per check, a JSON summary last, exit 1 on a failure; runs with
mteb (and, on the native backend, datasets, pyarrow and polars) blocked from import."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from qzhou_eval.check import runner
from qzhou_eval.check.context import Result, Skip
from qzhou_eval.config import compose_config
from tests.conftest import REPO
from tests.in_process import qzhou_eval


def test_a_failing_check_is_a_fail_line_and_exit_code_1(monkeypatch):
    def fine(ctx):
        return Result("fine", "PASS", f"{len(ctx.ids)} inputs")

    def broken(ctx):
        raise RuntimeError("the kernel said no")

    def elsewhere(ctx):
        raise Skip("not on this machine")

    monkeypatch.setattr(
        runner, "CHECKS", [("fine", fine), ("broken", broken), ("elsewhere", elsewhere)]
    )
    lines: list[str] = []
    cfg = compose_config("check", ["model=minilm", "check.texts=3"])
    assert runner.run_checks(cfg, lines.append) == 1
    assert "PASS  fine                 3 inputs" in lines
    assert "FAIL  broken               RuntimeError: the kernel said no" in lines
    assert "SKIP  elsewhere            not on this machine" in lines
    summary = json.loads(lines[-1])
    assert summary["failed"] == ["broken"] and summary["ok"] is False
    assert summary["passed"] == ["fine"] and summary["skipped"] == ["elsewhere"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("check.only=[nosuch]", "error: check.only: unknown check(s) ['nosuch']"),
        ("check.texts=1", "error: check.texts=1 must be an integer >= 2"),
        ("check.oom_memory_fraction=1.5", "error: check.oom_memory_fraction=1.5: give a fraction"),
        ("check.budgets=[4096]", "error: check.budgets=[4096]: give two token budgets"),
        ("check.scaled_hidden_size=100", "error: check.scaled_hidden_size must be a multiple"),
        ("check.seed=abc", "error: check.seed='abc' must be an integer >= 0"),
        ("check.scale_down=sometimes", "error: check.scale_down='sometimes': give true, false"),
        ("check.only=[]", "error: check.only=[]: give a list of checks"),
        ("check.only=5", "error: check.only=5: give a list of checks"),  # (a traceback)
    ],
)
def test_a_bad_check_setting_is_one_error_line(override, message):
    run = qzhou_eval("check", "model=minilm", override)
    assert run.code == 2
    assert run.err_lines[-1].startswith(message), run.err_lines
    assert "Traceback" not in run.err and run.out == ""


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("{empty}", "error: cannot load the model of Kingsoft-LLM/QZhou-Embedding from model.path"),
        ("Kingsoft-LLM/QZhou-Embedding", "error: model.path=Kingsoft-LLM/QZhou-Embedding is a "),
    ],
)
def test_a_model_that_cannot_be_loaded_is_one_error_line(tmp_path, path, message):
    # as a run says it: a folder that does not hold the model; a Hub id offline, not cached
    run = qzhou_eval("check", f"model.path={path.format(empty=tmp_path)}")
    assert run.code == 2, run.err
    assert run.err_lines[-1].startswith(message), run.err_lines
    assert "Traceback" not in run.err and len(run.err_lines) == 1, run.err


def test_an_embed_dim_the_model_does_not_give_is_one_error_line_as_a_run_says_it():
    # (check passed it; the run then stopped at its first task's vectors)
    run = qzhou_eval("check", "model=minilm", "model.embed_dim=32", "check.only=[batch_vs_alone]")
    assert run.code == 2 and "Traceback" not in run.err, run.err
    assert run.err_lines == [
        "error: model.embed_dim=32, but the model's vectors have 384 values: set "
        "model.embed_dim=384 (results are filed and described with it)"
    ]


def _run_blocked(blocked: list[str], args: list[str]) -> subprocess.CompletedProcess:
    code = (
        "import sys\n"
        f"for name in {blocked!r}:\n"
        "    sys.modules[name] = None  # any import of it fails\n"
        "from qzhou_eval.cli import main\n"
        f"main({['check', *args]!r})\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=600
    )


def _summary(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_minilm_check_runs_with_mteb_blocked():
    proc = _run_blocked(
        ["mteb"],
        [
            "model=minilm",
            "runtime.devices=[cpu,cpu]",
            "check.texts=6",
            "check.speed_tokens=1024",
            "check.only=[batch_vs_alone,padding_finite,packed_vs_padded,async_vs_sync,"
            "devices_vs_first,oom_recovery,throughput]",
        ],
    )
    summary = _summary(proc)
    passed = ["batch_vs_alone", "padding_finite", "async_vs_sync", "devices_vs_first"]
    assert summary["passed"] == [*passed, "throughput"]
    assert summary["skipped"] == ["packed_vs_padded", "oom_recovery"]  # not native; no CUDA
    assert "SKIP  oom_recovery         needs a CUDA device" in proc.stdout


@pytest.mark.slow
def test_scaled_down_random_qzhou_zh_runs_without_mteb_datasets_pyarrow_polars():
    proc = _run_blocked(
        ["mteb", "datasets", "pyarrow", "polars"],
        [
            "model=qzhou_embedding_zh",
            "check.random_weights=true",
            "check.texts=6",
            "check.only=[batch_vs_alone,padding_finite,packed_vs_padded,async_vs_sync]",
        ],
    )
    summary = _summary(proc)
    assert summary["passed"] == ["batch_vs_alone", "padding_finite", "async_vs_sync"]
    assert summary["skipped"] == ["packed_vs_padded"]  # not with Token Prepending yet
    assert "scaled down (check.scale_down): 8 of 36 layers, hidden size 256 of 4096" in proc.stdout
    assert "causal attention (sdpa), Token Prepending layers 1..6" in proc.stdout


@pytest.mark.slow
def test_random_weights_take_the_architecture_and_tokenizer_of_a_local_folder(tiny_qwen2):
    """A folder with config.json and the tokenizer but any weights: its architecture at full
    size (small enough here not to be scaled down), random weights, its own tokenizer."""
    lines: list[str] = []
    cfg = compose_config(
        "check",
        [
            "model=qzhou_embedding",
            f"model.path={tiny_qwen2}",
            "model.embed_dim=64",  # the folder's size (3584 is refused, as a run refuses it)
            "check.random_weights=true",
            "check.texts=4",
            "check.only=[batch_vs_alone,packed_vs_padded]",
        ],
    )
    assert runner.run_checks(cfg, lines.append) == 0, lines
    assert any("qwen2 architecture of Kingsoft-LLM/QZhou-Embedding" in ln for ln in lines)
    assert any("full size" in ln for ln in lines)
    assert json.loads(lines[-1])["passed"] == ["batch_vs_alone", "packed_vs_padded"]


def test_a_sample_of_no_tokens_is_left_out_with_a_warning(tiny_qwen2):
    # hf_auto keeps an empty text as it is, and Qwen's tokenizer adds no token to it: packed,
    # the empty sample failed two checks of its own ("a packed batch cannot hold an empty
    # input"); a run stops at such an input with one line (tests/encoder/test_embedder.py)
    lines: list[str] = []
    cfg = compose_config(
        "check",
        [
            "model=hf_auto",
            "model.name=test/tiny-qwen2",
            f"model.path={tiny_qwen2}",
            "runtime.packing=true",
            "check.texts=4",
            "check.only=[batch_vs_alone,packed_vs_padded]",
            "model.folder_settings=ignore",  # (hf_auto's settings as set)
        ],
    )
    assert runner.run_checks(cfg, lines.append) == 0, lines
    assert "warning: '' gives no tokens with this tokenizer: left out of the checks" in "\n".join(
        lines
    )
    assert json.loads(lines[-1])["passed"] == ["batch_vs_alone", "packed_vs_padded"]


def test_a_folder_a_run_would_refuse_is_refused_with_the_runs_line(tmp_path):
    # (the check passed such a config, then the run stopped at the folder check)
    from tests.models.test_folder_settings import MINILM

    args = ["model=hf_auto", "model.name=test/minilm", f"model.path={MINILM}"]
    check = qzhou_eval("check", *args, "check.only=[batch_vs_alone]")
    run = qzhou_eval("run", *args, "benchmark=demo_eng", f"runtime.results_dir={tmp_path}/r")
    assert check.code == run.code == 2 and check.out == ""
    assert check.err_lines == run.err_lines
    assert run.err_lines[0].startswith(f"error: model.path={MINILM} is a sentence-transformers ")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("mrl.dims=[0]", "error: mrl.dims=[0]: 0 is not a positive integer"),
        ("mrl.precisions=[int9]", "error: mrl.precisions='int9' is unknown"),
        ("benchmark.tasks=[Foo]", "error: benchmark.tasks: Foo not in MTEB(eng, v2)"),
        ("experiment=a/b", "error: experiment='a/b': it names a folder"),
        ("data.mirror=/nonexistent", "error: data.mirror=/nonexistent does not exist"),
        ("model.key=bogus", "error: model.key=bogus is not the key of its model file ('minilm')"),
    ],
)
def test_a_setting_a_run_refuses_is_refused_with_the_runs_line(tmp_path, override, message):
    # (check loaded the model and passed every check; the run then stopped: a trial)
    check = qzhou_eval("check", "model=minilm", override, "check.only=[batch_vs_alone]")
    run = qzhou_eval("run", "model=minilm", override, f"runtime.results_dir={tmp_path}/r")
    assert check.code == run.code == 2 and check.out == ""
    assert check.err_lines == run.err_lines and len(run.err_lines) == 1
    assert run.err_lines[0].startswith(message), run.err_lines


def test_without_mteb_the_settings_that_need_none_are_still_checked():
    proc = _run_blocked(["mteb"], ["model=minilm", "mrl.dims=[0]"])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.strip() == "error: mrl.dims=[0]: 0 is not a positive integer"


def test_a_mirror_that_lacks_a_tasks_data_is_refused_with_the_runs_line(tmp_path):
    # (check passed an empty mirror on an air-gapped box; the run then stopped at once: a trial)
    (tmp_path / "mirror").mkdir()
    args = ["model=minilm", "benchmark=cmteb", "benchmark.tasks=[AFQMC]"]
    mirror = f"data.mirror={tmp_path / 'mirror'}"
    check = qzhou_eval("check", *args, mirror, "check.only=[batch_vs_alone]")
    run = qzhou_eval("run", *args, mirror, f"runtime.results_dir={tmp_path}/r")
    assert check.code == run.code == 2 and check.out == ""
    assert check.err_lines == run.err_lines and len(run.err_lines) == 1
    assert run.err_lines[0].startswith(
        f"error: offline mirror {tmp_path / 'mirror'} lacks the dataset of task AFQMC"
    ), run.err_lines
