"""What runs inside a scoring process (see :mod:`.scoring_pool` for the contract).

Importing this module imports everything a scoring job needs, ``sentence_transformers``
included (mteb imports it at a job's first ``mteb.evaluate``): the pool's fork server imports
it once and forks every scoring process from there, so that no process pays these imports
(about 10 CPU-seconds, on cores the tokenizer and the other processes need) again.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from functools import partial
from typing import TYPE_CHECKING, Any

import datasets
import sentence_transformers  # noqa: F401  (imported by mteb.evaluate; see the docstring)
import torch
import transformers
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from qzhou_eval.config.app import LineFormatter, warnings_as_lines
from qzhou_eval.encoder.embedder import Embedder
from qzhou_eval.pipeline.scoring_pool import JobDone
from qzhou_eval.results import ResultsFolder
from qzhou_eval.runs.scoring import ENCODE_KWARGS, Encoders, quiet_libraries, score
from qzhou_eval.store import DiskStore, model_fingerprint

if TYPE_CHECKING:
    from qzhou_eval.pipeline.handoff import Handoff
    from qzhou_eval.pipeline.scoring_pool import Job

_state: dict[str, Any] = {}


def log_warnings_as_lines() -> None:
    """The process's log: warnings (mteb's logged ones, Python's: scikit-learn's) as the main
    process writes them, ``warning: ...``, on stderr (stdout is the main process's, whose reader
    may go away: a run ended by that stops these processes)."""
    lines = logging.StreamHandler(sys.stderr)
    lines.setFormatter(LineFormatter("%(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[lines], force=True)
    warnings_as_lines()


def start(settings: tuple[Any, ...], handoff: Handoff) -> None:
    """A process's initializer (after the pool's light one armed its ties to the main process
    and read its payload): the embedder over the store. ``settings``: ``(plan, threads,
    environment, damaged)``, the environment being the main process's when the pool was made (a
    fork server's child starts with the server's), ``damaged`` the store's shards it warned
    about."""
    log_warnings_as_lines()
    quiet_libraries()
    plan, threads, environment, damaged = settings
    os.environ.clear()
    os.environ.update(environment)
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    # the job's share of the cores, not every core per process: torch (retrieval search) and
    # the BLAS under numpy and scikit-learn (classifiers, k-means)
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
        # only read here: what a job misses is encoded and stored by the main process
        store=DiskStore(
            plan.runtime.store_dir, model_fingerprint(plan.spec), writable=False, damaged=damaged
        ),
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


def score_job(job: Job) -> JobDone:
    """Evaluate one (task, sweep point) from the store; the task's data stay loaded for its
    other points."""
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
