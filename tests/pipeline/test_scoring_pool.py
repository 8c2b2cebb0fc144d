"""The scoring pool: where its processes come from, and a submit that never waits for them."""

from __future__ import annotations

import json
import multiprocessing.context
import os
import subprocess
import sys
import textwrap
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


def test_the_fork_server_imports_this_process_s_package_not_the_current_folder_s(tmp_path):
    # The server starts as ``python -c`` in the command's folder: a qzhou_eval folder there (a
    # checkout beside the installed package) must not be what the scoring processes run.
    shadow = tmp_path / "qzhou_eval"
    shadow.mkdir()
    marker = tmp_path / "shadow-imported"
    (shadow / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    script = tmp_path / "bin" / "command.py"
    script.parent.mkdir()
    script.write_text(
        textwrap.dedent(
            """
            import multiprocessing, os
            from qzhou_eval.pipeline import scoring_pool

            if __name__ == "__main__":
                scoring_pool.PROCESS_MODULE = "qzhou_eval.errors"  # a light stand-in
                before = {k: os.environ.get(k) for k in ("PYTHONPATH", "PYTHONSAFEPATH")}
                assert scoring_pool.start_server()
                child = multiprocessing.get_context("forkserver").Process(target=os.getpid)
                child.start()  # forked once the server's imports are done
                child.join()
                assert child.exitcode == 0
                assert before == {k: os.environ.get(k) for k in before}, "environment changed"
            """
        )
    )
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=environment, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert not marker.exists(), "the fork server imported the current folder's qzhou_eval"


@pytest.mark.parametrize("package", ["same", "/elsewhere/qzhou_eval"])
def test_a_scoring_process_that_cannot_start_fails_each_job_with_one_line(package):
    # A failed initializer would print the executor's traceback and look like a killed process.
    script = textwrap.dedent(
        f"""
        import multiprocessing
        from qzhou_eval.pipeline import scoring_pool
        reader, writer = multiprocessing.Pipe(duplex=False)  # the writer stays open
        package = {package!r}
        package = scoring_pool.package_folder() if package == "same" else package
        scoring_pool._start(b"not a payload", None, reader, package)
        try:
            scoring_pool._score(None)
        except scoring_pool.ScoringProcessDied as e:
            print(e)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0 and not done.stderr, done.stderr
    (line,) = done.stdout.splitlines()
    assert line.startswith("a scoring process could not start: ")
    if package == "same":  # the payload could not be read
        assert "UnpicklingError" in line
    else:
        assert "/elsewhere/qzhou_eval" in line and "run it from another folder" in line


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


@pytest.mark.slow
def test_a_result_a_killed_process_was_writing_leaves_no_temporary_file(tmp_path, minilm_demo):
    # (a helper's Ctrl-C during scoring left .DemoEngReranking.json.<id>-<host>-<pid>.tmp; the
    # next run removed it)
    from qzhou_eval import atomic

    plan = _plan(tmp_path, minilm_demo)
    pool = ScoringPool(1, plan)
    try:
        future = pool.submit(Job("DemoEngSTS", plan.points[0]))
        pool.handoff.finished("DemoEngSTS")
        future.result(timeout=300)
        (pid,) = [p.pid for p in pool._executor._processes.values()]  # (no public list)
        folder = next((tmp_path / "results").rglob("DemoEngSTS.json")).parent
        half = folder / f".DemoEngX.json.{'0' * 32}-{atomic._HOST}-{pid}.tmp"
        half.write_text('{"scores": ')
        live = folder / f".DemoEngY.json.{'0' * 32}-{atomic._HOST}-{os.getpid()}.tmp"
        live.write_text("{")  # a live writer's (this process): kept
    finally:
        pool.close(force=True)
    assert not half.exists() and live.exists()


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


def test_a_scoring_process_writes_warnings_as_the_main_process_does(capsys):
    # (they were "[scoring] WARNING Estimating quantization parameters ...")
    import logging

    from qzhou_eval.pipeline.scoring_process import log_warnings_as_lines

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        log_warnings_as_lines()
        logging.getLogger("mteb.models").warning("Estimating quantization parameters")
        logging.getLogger("mteb.models").info("not shown")
    finally:  # (the test process's own logging)
        root.handlers[:] = handlers
        root.setLevel(level)
    captured = capsys.readouterr()
    assert captured.err == "warning: Estimating quantization parameters\n"
    assert captured.out == ""
