"""Data-parallel worker processes: equal vectors in order, one-line failures, no orphans."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from qzhou_eval.config import app
from qzhou_eval.encoder.embedder import Embedder
from qzhou_eval.encoder.engines import LocalEngine, PoolEngine
from qzhou_eval.errors import DeviceError
from qzhou_eval.models.backbone import TransformersBackbone
from tests.conftest import REPO
from tests.models.conftest import native_spec
from tests.processes import alive, spawned_children

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

TEXTS = [f"{'word ' * (i % 23 + 1)}number {i}" for i in range(240)]


def _embedder(factory) -> Embedder:
    return Embedder(factory, tokens_per_batch=512, max_batch_size=16, progress=False)


def _mapped_weights(pid: int) -> bool:
    """Whether process ``pid`` has the model's weights mapped (safetensors loads by mmap)."""
    try:
        return b".safetensors" in Path(f"/proc/{pid}/maps").read_bytes()
    except OSError:
        return False


def test_one_and_two_workers_give_equal_vectors_in_input_order(tiny_qwen2):
    spec = native_spec(tiny_qwen2)
    alone = _embedder(lambda: LocalEngine(TransformersBackbone(spec)))
    expected = alone.embed(TEXTS, "none")
    pool = _embedder(lambda: PoolEngine(spec, ["cpu", "cpu"]))
    try:
        got = pool.embed(TEXTS, "none")
        workers = [p.pid for p in pool.engine.pool._procs]
        assert len(workers) == 2 and all(alive(w) for w in workers)
        # the same workers serve the next call (persistent), which mixes new and known inputs
        more = pool.embed(["a new one", *TEXTS[:5]], "query")
        assert [p.pid for p in pool.engine.pool._procs] == workers
    finally:
        pool.close()
    np.testing.assert_array_equal(got, expected)  # same batches, same arithmetic, same order
    np.testing.assert_array_equal(more[1:], alone.embed(TEXTS[:5], "query"))
    assert pool.forward_calls > 1 and pool.encoded_inputs == len(TEXTS) + 6
    deadline = time.monotonic() + 20
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(w) for w in workers)


def test_a_worker_that_cannot_load_its_model_is_one_line_naming_the_device(tmp_path):
    from qzhou_eval.testing.tiny_models import cached_qwen_tokenizer

    only_tokenizer = tmp_path / "no-weights"
    shutil.copytree(cached_qwen_tokenizer(), only_tokenizer)  # this process can tokenize
    pool = _embedder(lambda: PoolEngine(native_spec(only_tokenizer), ["cpu", "cpu"]))
    try:
        with pytest.raises(DeviceError) as info:
            pool.embed(["x"], "none")
    finally:
        pool.close(force=True)
    message = str(info.value)
    # two workers on one device: the line says which of them (place in the list, process id)
    assert re.match(r"the worker on cpu \(#[01], pid \d+\) failed: cannot load the model", message)
    assert "\n" not in message


def test_a_killed_worker_of_two_on_one_device_is_named_by_its_place(tiny_qwen2):
    pool = _embedder(lambda: PoolEngine(native_spec(tiny_qwen2), ["cpu", "cpu"]))
    try:
        pool.embed(TEXTS[:40], "none")  # both workers have loaded the model
        first, second = pool.engine.pool._procs
        os.kill(first.pid, signal.SIGSTOP)  # takes no batch, so only the killed one can fail
        os.kill(second.pid, signal.SIGKILL)
        second.join(10)
        with pytest.raises(DeviceError) as info:
            pool.embed(TEXTS[40:], "none")
        assert str(info.value) == (
            f"the worker on cpu (#1, pid {second.pid}) exited (code -9) before it finished its "
            "batches"
        )
    finally:
        with contextlib.suppress(OSError):
            os.kill(first.pid, signal.SIGCONT)
        pool.close(force=True)


def _run_with_two_workers(tmp_path: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "run_mteb.py",
            "model=minilm",
            "benchmark=demo_eng",
            "runtime.devices=[cpu,cpu]",
            "runtime.tokens_per_batch=512",
            f"runtime.results_dir={tmp_path / 'results'}",
            "runtime.store_dir=null",
            "runtime.progress=false",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _started_workers(proc: subprocess.Popen, deadline: float, poll: float = 0.5) -> list[int]:
    workers: list[int] = []
    while len(workers) < 2:
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        assert time.monotonic() < deadline, "the workers never started"
        time.sleep(poll)
        workers = spawned_children(proc.pid)
    return workers


def _kill_all(proc: subprocess.Popen) -> None:
    """Whatever a failed test left: the main process and its workers."""
    if proc.poll() is None:
        proc.kill()
    for w in spawned_children(proc.pid):
        os.kill(w, signal.SIGKILL)


def _gone_within(workers: list[int], seconds: float) -> float:
    """Seconds until every worker has exited (fails after ``seconds``)."""
    started = time.monotonic()
    while any(alive(w) for w in workers):
        assert time.monotonic() - started < seconds, "a worker outlived the main process"
        time.sleep(0.05)
    return time.monotonic() - started


# Ctrl-C and kill -9. SIGTERM and SIGHUP stop the run as Ctrl-C does (the same exception path
# out of the runner, which closes the workers); their lines and exit codes are tested without
# workers (tests/config/test_app_errors.py) and with scoring processes (tests/pipeline/).
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL])
def test_no_worker_outlives_the_main_process(tmp_path, how):
    proc = _run_with_two_workers(tmp_path)
    try:
        deadline = time.monotonic() + 300
        workers = _started_workers(proc, deadline)
        while not all(_mapped_weights(w) for w in workers):  # each has loaded the model
            assert proc.poll() is None, proc.stderr.read()[-2000:]
            assert time.monotonic() < deadline, "the workers never loaded the model"
            time.sleep(0.2)
        time.sleep(1)  # and taken batches
        assert proc.poll() is None and all(alive(w) for w in workers)
        os.kill(proc.pid, how)
        proc.wait(timeout=60)
        if how != signal.SIGKILL:  # one line, exit 130, as without workers
            err = proc.stderr.read()
            assert proc.returncode == 128 + how, err[-2000:]
            assert [ln for ln in err.splitlines() if ln.strip()] == [app.INTERRUPTED], err
        _gone_within(workers, 5)
    finally:
        _kill_all(proc)


def test_no_worker_outlives_a_main_process_killed_while_they_start(tmp_path):
    """Killed before the workers have even imported torch: they go within about a second."""
    proc = _run_with_two_workers(tmp_path)
    try:
        workers = _started_workers(proc, time.monotonic() + 300, poll=0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        assert not any(_mapped_weights(w) for w in workers)  # still starting: no model yet
        _gone_within(workers, 3)
    finally:
        _kill_all(proc)
