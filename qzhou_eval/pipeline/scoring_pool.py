"""CPU processes that score tasks from the embedding store while the devices encode.

Contract:

- A job is one (task, sweep point). A scoring process gets the run's plan once (pickled: the
  same task objects, recipe, identity, mirror), makes an embedder that reads the disk store
  only (``encode=False``: it never loads the model), and evaluates the job through the same
  :func:`qzhou_eval.runs.scoring.score` as the main process: a fresh copy of the task, results
  and ``run_settings.jsonl`` written by mteb through the one atomic writer. A job's task stays
  loaded in its process for the next job of the same task (the other output sizes).
- A job may be submitted while the main process still encodes its task: inputs that are not
  stored yet are waited for through the pool's :class:`~.handoff.Handoff` (the main process
  reports each encode call of the task's look-ahead, and its end). Inputs still missing once
  the look-ahead is over raise :class:`MissingInputs` (the first encode call that missed some:
  side, inputs, spans) in the main process, which encodes them and submits the job again;
  nothing is written for the failed attempt. Any other exception is the job's
  failure, raised in the main process as the task's failure would be in a sequential run.
- Processes ignore Ctrl-C (the main process stops them) and die with the main process
  (``kill -9`` included). A process that dies makes every job still pending fail with
  :class:`ScoringProcessDied`; finished results are files of their own and stay.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from qzhou_eval.config.cores import usable_cores
from qzhou_eval.errors import DeviceError
from qzhou_eval.pipeline.handoff import Handoff

if TYPE_CHECKING:
    from qzhou_eval.precision import Point
    from qzhou_eval.runs.runner import RunPlan

logger = logging.getLogger(__name__)


class ScoringProcessDied(DeviceError):
    """A scoring process ended without finishing its job (killed, out of memory)."""


@dataclass(frozen=True)
class Job:
    task: str
    point: Point
    attempt: int = 0  # 1, 2, ...: after the main process encoded what the last one missed


@dataclass(frozen=True)
class JobDone:
    job: Job
    errors: list[str]  # mteb's per-split exceptions of the result
    asked: int  # distinct inputs mteb asked for, summed over its encode calls
    stored: int  # of those, the ones found in the store (stored ahead, or waited for)
    waited: bool  # some were waited for: the job scored while the devices encoded its inputs
    seconds: float


class ScoringPool:
    """``workers`` spawned processes scoring jobs of one run (see the module's contract)."""

    def __init__(self, workers: int, plan: RunPlan) -> None:
        self.workers = workers
        context = mp.get_context("spawn")
        self.handoff = Handoff(context, [t.metadata.name for t in plan.tasks])
        self._executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=_start,
            initargs=(
                plan,
                self.handoff,
                os.getpid(),
                threading.current_thread() is threading.main_thread(),
                max(1, usable_cores() // workers),
            ),
        )
        # Start every process now: their imports (torch, mteb: seconds each) overlap the first
        # task's encoding instead of delaying its scoring. (The executor starts a process per
        # submit while none is idle.)
        for _ in range(workers):
            self._executor.submit(_ready)

    def submit(self, job: Job) -> Future[JobDone]:
        return self._executor.submit(_score, job)

    def close(self, force: bool = False) -> None:
        """Wait for the jobs and stop the processes; ``force``: drop pending jobs and kill the
        processes now (after an error or Ctrl-C)."""
        if not force:
            self._executor.shutdown(wait=True)
            return
        # ProcessPoolExecutor has no public way to kill its processes before Python 3.14
        # (terminate_workers); shutdown(wait=False) alone would let running jobs finish.
        processes = list((getattr(self._executor, "_processes", None) or {}).values())
        self._executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.kill()
        for process in processes:
            process.join(timeout=5)
        # now that no process runs, the executor's thread finds them gone and releases its
        # queues (their semaphores would otherwise be reported leaked at exit)
        self._executor.shutdown(wait=True)


# --- inside a scoring process -------------------------------------------------------------------

_state: dict[str, Any] = {}


def _ready() -> None:
    """A job that only makes the executor start a process."""


def _start(
    plan: RunPlan, handoff: Handoff, parent_pid: int, kernel_signal: bool, threads: int
) -> None:
    from qzhou_eval.encoder.lifeline import die_with_parent

    die_with_parent(parent_pid, kernel_signal)
    # Ctrl-C and a closed terminal reach the whole process group: the main process stops us
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="[scoring] %(levelname)s %(message)s")
    logging.getLogger("mteb").setLevel(logging.WARNING)
    import datasets
    import transformers
    from tqdm import tqdm

    from qzhou_eval.encoder.embedder import Embedder
    from qzhou_eval.results import ResultsFolder
    from qzhou_eval.runs.scoring import ENCODE_KWARGS, Encoders
    from qzhou_eval.store import DiskStore, model_fingerprint

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    # the job's share of the cores, not every core per process: torch (retrieval search) and
    # the BLAS under numpy and scikit-learn (classifiers, k-means)
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    _state["limits"] = threadpool_limits(threads)
    # tqdm's default lock is a multiprocessing lock (a named semaphore): one left by a process
    # killed on Ctrl-C makes Python's resource tracker print a warning as the run exits
    tqdm.set_lock(threading.RLock())
    assert plan.runtime.store_dir is not None

    def no_model() -> Any:
        raise AssertionError("a scoring process never loads the model")

    embedder = Embedder(
        no_model,
        tokens_per_batch=1,
        max_batch_size=1,
        store=DiskStore(plan.runtime.store_dir, model_fingerprint(plan.spec)),
        progress=False,
        encode=False,
    )
    _state.update(
        plan=plan,
        tasks={t.metadata.name: t for t in plan.tasks},
        folder=ResultsFolder(plan.runtime.results_dir, encode_kwargs=ENCODE_KWARGS),
        encoders=Encoders(plan, embedder),
        embedder=embedder,
        handoff=handoff,
        loaded=None,
    )


def _score(job: Job) -> JobDone:
    import time

    from qzhou_eval.runs.scoring import score

    started = time.monotonic()
    plan, embedder = _state["plan"], _state["embedder"]
    task, folder = _state["tasks"][job.task], _state["folder"]
    encoder = _state["encoders"](job.task, job.point)
    loaded = _state["loaded"]
    if loaded is not None and loaded is not task and loaded.data_loaded:
        loaded.unload_data()  # one task's data at a time
    finished = folder.get_task_result_path(job.task, encoder.mteb_model_meta).exists()
    if not task.data_loaded and (plan.runtime.overwrite or not finished):
        task.load_data()  # kept for the task's other output sizes
        _state["loaded"] = task
    embedder.wait_for_inputs = partial(_state["handoff"].wait, job.task)
    asked, stored, waits = embedder.asked_inputs, embedder.stored_inputs, embedder.waits
    result = score(encoder, task, folder, plan.runtime.overwrite)
    return JobDone(
        job,
        [str(err.exception) for err in result.exceptions or []],
        embedder.asked_inputs - asked,
        embedder.stored_inputs - stored,
        embedder.waits > waits,
        time.monotonic() - started,
    )
