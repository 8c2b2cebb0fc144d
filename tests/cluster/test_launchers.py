"""Shards through Hydra's launchers write what one plain run writes (issue 11)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.cluster.conftest import TASKS, run_args, scores, sweep, sweep_command

pytestmark = pytest.mark.slow


def test_joblib_two_jobs_over_two_shards_give_the_single_run_scores(
    tmp_path, single_run, minilm_demo
):
    # the session's vectors: the jobs only score (encoding in a job: the tests below)
    shutil.copytree(minilm_demo / "store", tmp_path / "store")
    res = sweep(
        tmp_path,
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        *run_args(tmp_path, "benchmark.num_shards=2", "benchmark.shard=0,1"),
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("on 1 task(s)") == 2  # each job ran its own shard
    assert scores(tmp_path) == single_run  # every metric of every split, both tasks


def test_submitit_local_runs_one_shard_end_to_end(tmp_path, single_run):
    res = sweep(
        tmp_path,
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=10",
        *run_args(tmp_path, "benchmark.num_shards=2", "benchmark.shard=1"),
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert scores(tmp_path) == {TASKS[1]: single_run[TASKS[1]]}  # shard 1 only
    (log,) = tmp_path.rglob(".submitit/*/*_0_log.out")  # the job's stdout, in the sweep folder
    text = log.read_text()
    assert "on 1 task(s)" in text and "encoded" in text


def test_a_failed_joblib_job_loses_no_other_jobs_results(tmp_path, single_run):
    # the job on a device its node lacks stops with its one line (only the job can tell); the
    # other still finishes, on two worker processes started inside joblib's own worker process
    # (its start method is loky's)
    res = sweep(
        tmp_path,
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        *run_args(tmp_path, "benchmark.num_shards=2", "benchmark.shard=0"),
        "runtime.devices=[cpu,cpu],cuda:7",
    )
    assert res.returncode == 2, res.stderr[-3000:]
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "runtime.devices" in errors[0], res.stderr[-3000:]
    assert "Error executing job" not in res.stderr  # Hydra's own line, after the job's
    got = scores(tmp_path)
    assert list(got) == [TASKS[0]]
    main = got[TASKS[0]]["test"][0]["main_score"]
    assert main == pytest.approx(single_run[TASKS[0]]["test"][0]["main_score"], abs=1e-5)


def test_a_failed_submitit_job_has_its_line_on_the_terminal(tmp_path):
    # the job's stderr is its log file: the command printed nothing and exited 1 (a trial)
    res = sweep(
        tmp_path,
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=10",
        *run_args(tmp_path, "benchmark.num_shards=2", "benchmark.shard=1"),
        "runtime.devices=cuda:7",
    )
    assert res.returncode == 2, res.stderr[-3000:]
    (log,) = tmp_path.rglob(".submitit/*/*_0_log.err")
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, res.stderr[-3000:]
    assert errors[0].startswith("error: a job of the sweep failed: runtime.devices=cuda:7: no CUDA")
    assert "Traceback" not in res.stderr and errors[0].endswith(f"(its log: {log})")


def test_a_killed_submitit_job_is_one_line(tmp_path):
    # kill -9 (as the OOM killer) of the job's process: submitit's UncompletedJobError, a
    # traceback (a trial)
    args, env = sweep_command(
        "hydra/launcher=submitit_local",
        *run_args(tmp_path, "benchmark.num_shards=2", "benchmark.shard=1"),
    )
    command = subprocess.Popen(args, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    job = None
    while job is None and time.monotonic() < deadline and command.poll() is None:
        for proc in Path("/proc").glob("[0-9]*"):
            with contextlib.suppress(OSError):
                cmdline = (proc / "cmdline").read_bytes().split(b"\0")
                if b"submitit.core._submit" in cmdline and str(tmp_path).encode() in b" ".join(
                    cmdline
                ):
                    job = int(proc.name)
        time.sleep(0.2)
    assert job is not None, "the job's process never started"
    os.kill(job, signal.SIGKILL)
    _, err = command.communicate(timeout=300)
    assert command.returncode == 1, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    (line,) = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert line.startswith("error: a job of the sweep ended without a result (killed, out of ")
    assert line.endswith("once they have ended, rerun the same command to resume")
