"""The scoring pool: where its processes come from, and a submit that never waits for them."""

from __future__ import annotations

import json
import multiprocessing.context
import threading

import pytest

from qzhou_eval.config import compose_config
from qzhou_eval.pipeline import scoring_pool
from qzhou_eval.pipeline.scoring_pool import Job, JobDone, ScoringPool, start_method
from qzhou_eval.runs.runner import plan_run


def test_the_fork_server_is_reused_only_under_its_import_environment(monkeypatch):
    monkeypatch.setattr(scoring_pool, "_server_environment", None)
    monkeypatch.setenv("HF_HOME", "/first")
    assert start_method() == "forkserver"  # the first pool starts the server
    monkeypatch.setenv("SOME_UNRELATED_VARIABLE", "x")
    assert start_method() == "forkserver"
    monkeypatch.setenv("HF_HOME", "/second")  # the server's libraries read the first one
    assert start_method() == "spawn"
    monkeypatch.setenv("HF_HOME", "/first")
    assert start_method() == "forkserver"


@pytest.mark.slow
def test_a_job_is_taken_at_once_and_handed_out_when_the_processes_start(
    tmp_path, minilm_demo, monkeypatch
):
    # The fork server's first child comes only after the server's imports (seconds): held here
    # until released, the main process's submit still returns at once.
    release = threading.Event()
    start = multiprocessing.context.ForkServerProcess.start

    def held_start(process) -> None:
        assert release.wait(timeout=120)
        start(process)

    monkeypatch.setattr(multiprocessing.context.ForkServerProcess, "start", held_start)
    plan = _plan(tmp_path, minilm_demo)
    pool = ScoringPool(1, plan)
    try:
        future = pool.submit(Job("DemoEngSTS", plan.points[0]))
        assert not future.done()
        pool.handoff.finished("DemoEngSTS")  # every input is stored
        release.set()
        done = future.result(timeout=300)
    finally:
        release.set()
        pool.close()
    _check(done, tmp_path, minilm_demo)


@pytest.mark.slow
def test_spawned_processes_score_alike(tmp_path, minilm_demo, monkeypatch):
    # where the fork server cannot serve (another platform, another import environment)
    monkeypatch.setattr(scoring_pool, "start_method", lambda: "spawn")
    plan = _plan(tmp_path, minilm_demo)
    pool = ScoringPool(1, plan)
    try:
        assert not pool._forked
        future = pool.submit(Job("DemoEngSTS", plan.points[0]))
        pool.handoff.finished("DemoEngSTS")
        done = future.result(timeout=300)
    finally:
        pool.close()
    _check(done, tmp_path, minilm_demo)


def _plan(tmp_path, minilm_demo):
    cfg = compose_config(
        "mteb",
        [
            "model=minilm",
            "benchmark=demo_eng",
            "benchmark.tasks=[DemoEngSTS]",
            f"runtime.results_dir={tmp_path / 'results'}",
            f"runtime.store_dir={minilm_demo / 'store'}",
            "runtime.progress=false",
        ],
    )
    return plan_run(cfg)


def _check(done, tmp_path, minilm_demo) -> None:
    """A job that read every input from the store and wrote the plain run's scores."""
    assert isinstance(done, JobDone) and done.asked == done.stored > 0 and not done.waited
    (result,) = (tmp_path / "results").rglob("DemoEngSTS.json")
    (plain,) = (minilm_demo / "results").rglob("DemoEngSTS.json")
    assert json.loads(result.read_text())["scores"] == json.loads(plain.read_text())["scores"]
