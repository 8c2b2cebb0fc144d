"""What a run command does before its heavy imports: the scoring processes' fork server starts
then, only when the run will score in processes."""

from __future__ import annotations

import multiprocessing.forkserver as forkserver
import os

import pytest

from qzhou_eval.config import compose_config
from qzhou_eval.pipeline import scoring_pool
from qzhou_eval.runs.launch import prepare
from tests.processes import alive, fork_servers


@pytest.fixture
def no_fork_server(monkeypatch):
    # (a private method: multiprocessing has no public way to stop its fork server; CPython's
    # own tests use it)
    forkserver._forkserver._stop()
    monkeypatch.setattr(scoring_pool, "_server_environment", None)
    yield
    forkserver._forkserver._stop()


def _runtime(tmp_path, *overrides: str):
    return compose_config("mteb", [f"runtime.store_dir={tmp_path}", *overrides])


def test_the_fork_server_starts_before_the_run_when_processes_will_score(
    tmp_path, no_fork_server, monkeypatch
):
    monkeypatch.delenv("TOKENIZERS_PARALLELISM", raising=False)
    prepare(_runtime(tmp_path, "runtime.scoring_workers=0"))
    assert not fork_servers(os.getpid())
    assert os.environ["TOKENIZERS_PARALLELISM"] == "true"  # before the server: one of its variables
    prepare(_runtime(tmp_path, "runtime.scoring_workers=one"))  # the plan names the bad value
    assert not fork_servers(os.getpid())
    prepare(_runtime(tmp_path, "runtime.scoring_workers=2"))
    (server,) = fork_servers(os.getpid())
    assert alive(server)
    assert scoring_pool.start_method() == "forkserver"  # the run's pool will fork from it
