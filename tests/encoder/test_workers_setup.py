"""How worker processes are set up: threads from the affinity mask, the CUDA allocator setting
(fast: the processes are recorded, not started)."""

from __future__ import annotations

import os
import pickle
from typing import ClassVar

import pytest

from qzhou_eval.encoder import workers
from qzhou_eval.encoder.workers import WorkerPool, threads_per_worker, worker_environment


class _Process:
    started: ClassVar[list[tuple[int, str | None]]] = []  # (threads, allocator setting) at start

    def __init__(self, target, args, name, daemon) -> None:
        # lifeline.run(parent pid, kernel signal, body, pickled (index, settings), queues...)
        self.settings = pickle.loads(args[3])[1]
        self.exitcode = 0

    def start(self) -> None:
        _Process.started.append((self.settings.threads, os.environ.get("PYTORCH_CUDA_ALLOC_CONF")))

    def is_alive(self) -> bool:
        return False

    def join(self, timeout=None) -> None:
        pass


class _Context:
    Process = _Process

    def Queue(self):
        return None


@pytest.fixture
def recorded_starts(monkeypatch):
    monkeypatch.setattr(workers.mp, "get_context", lambda method: _Context())
    monkeypatch.setattr(workers.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(workers.os, "cpu_count", lambda: 64)  # the node's cores: not ours
    for var in ("PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_ALLOC_CONF"):
        monkeypatch.delenv(var, raising=False)
    _Process.started = []
    return _Process.started


def test_threads_come_from_the_affinity_mask_not_the_node(recorded_starts):
    assert threads_per_worker(2) == 2 and threads_per_worker(8) == 1
    pool = WorkerPool(object(), ["cpu", "cpu"])
    pool.start()
    pool.close()
    assert [t for t, _ in recorded_starts] == [2, 2]


def test_cuda_workers_start_with_expandable_segments_unless_the_user_chose(
    recorded_starts, monkeypatch
):
    pool = WorkerPool(object(), ["cuda:0", "cuda:1"])
    pool.start()
    pool.close()
    assert [a for _, a in recorded_starts] == ["expandable_segments:True"] * 2
    assert "PYTORCH_CUDA_ALLOC_CONF" not in os.environ  # only the workers got it
    assert worker_environment(["cpu"]) == {}
    monkeypatch.setenv("PYTORCH_ALLOC_CONF", "max_split_size_mb:128")
    assert worker_environment(["cuda:0"]) == {}  # the user's setting wins
