"""CPU processes that score tasks from the embedding store while the devices encode.

Contract:

- A job is one (task, sweep point). A scoring process gets the run's plan once (pickled when the
  pool is made: the same task objects, recipe, identity, mirror), makes an embedder that reads
  the disk store only (``encode=False``: it never loads the model), and evaluates the job through
  the same :func:`qzhou_eval.runs.scoring.score` as the main process: a fresh copy of the task,
  results and ``run_settings.jsonl`` written by mteb through the one atomic writer. A job's task
  stays loaded in its process for the next job of the same task (the other output sizes).
- A job may be submitted while the main process still encodes its task: inputs that are not
  stored yet are waited for through the pool's :class:`~.handoff.Handoff` (the main process
  reports each encode call of the task's look-ahead, and its end). Inputs still missing once
  the look-ahead is over raise :class:`MissingInputs` (the first encode call that missed some:
  side, inputs, spans) in the main process, which encodes them and submits the job again;
  nothing is written for the failed attempt. Any other exception is the job's
  failure, raised in the main process as the task's failure would be in a sequential run.
- Processes ignore Ctrl-C (the main process stops them) and die with the main process
  (``kill -9`` included: each watches a pipe whose writing end only the main process holds;
  see :func:`qzhou_eval.encoder.lifeline.die_with_writer`). A process that dies makes every
  job still pending fail with ``BrokenProcessPool`` (see
  :func:`qzhou_eval.pipeline.schedule.died`); finished results are files of their own and stay.
- Submitting never blocks the main process: the processes are started, and jobs handed to
  them, by a thread of the pool.

How the processes start: where the platform has it, from multiprocessing's fork server, which
imports :mod:`.scoring_process` (torch, mteb, sentence-transformers: about 10 CPU-seconds) once
and forks every scoring process from there; spawned processes would each import it again, on
the cores the tokenizer and the other processes need. :func:`start_server` starts the server
without waiting for its imports: the run command calls it before its own imports, so that both
import at once and the first scoring process can be forked as soon as the run wants it. The
server ignores Ctrl-C (the main process stops the run; the server exits with it, once its
imports are done if it is still importing) and lives as long as the main process, for every
later pool. A later run in the same process whose environment differs in a variable those
libraries read as they are imported spawns its processes instead.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import multiprocessing as mp
import multiprocessing.forkserver
import os
import pickle
import queue
import signal
import sys
import threading
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qzhou_eval.config.cores import usable_cores
from qzhou_eval.environment import temporary_environment
from qzhou_eval.errors import DeviceError, UserError
from qzhou_eval.pipeline.handoff import Handoff
from qzhou_eval.process_tracker import start_resource_tracker

if TYPE_CHECKING:
    from collections.abc import Sequence

    from qzhou_eval.precision import Point
    from qzhou_eval.runs.runner import RunPlan

logger = logging.getLogger(__name__)

PROCESS_MODULE = "qzhou_eval.pipeline.scoring_process"
# Variables the libraries a scoring process imports read as they are imported (cache folders,
# offline switches, thread counts): a fork server that imported them under other values is not
# reused.
IMPORT_TIME_VARIABLES = (
    "HF_",
    "HUGGINGFACE_",
    "TRANSFORMERS_",
    "SENTENCE_TRANSFORMERS_",
    "MTEB_",
    "TORCH",
    "PYTORCH_",
    "CUDA_",
    "OMP_",
    "MKL_",
    "OPENBLAS_",
    "TOKENIZERS_",
    "XDG_",
    "HOME",
    "PYTHON",
)


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


_server_environment: dict[str, str] | None = None  # what the fork server was started with


def start_method() -> str:
    """``forkserver`` where the platform has it and the server (started by this process's first
    pool) imported its libraries under this environment; else ``spawn``."""
    global _server_environment
    if "forkserver" not in mp.get_all_start_methods():
        return "spawn"
    environment = {k: v for k, v in os.environ.items() if k.startswith(IMPORT_TIME_VARIABLES)}
    if _server_environment is None:
        _server_environment = environment
    return "forkserver" if environment == _server_environment else "spawn"


def start_server() -> bool:
    """Start the fork server now and return at once (its imports take seconds; the first
    scoring process is forked once they are done); False where processes will be spawned.
    Idempotent. Call it from the main thread: the server then ignores Ctrl-C from its start
    (a signal ignored across exec stays ignored, and Python installs no KeyboardInterrupt
    handler for it), rather than printing a KeyboardInterrupt traceback from its imports."""
    if start_method() != "forkserver":
        return False
    start_resource_tracker()  # the server and its processes share it
    mp.get_context("forkserver").set_forkserver_preload([PROCESS_MODULE])
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if in_main_thread else None
    try:
        # in the module's __all__, not in the docs: the server is otherwise started by the
        # first process, which waits for its imports
        with _this_import_path():
            multiprocessing.forkserver.ensure_running()
    finally:
        if in_main_thread:  # (None: a handler not set from Python, which it cannot restore)
            signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)
    if not _stopping_at_exit:
        _stopping_at_exit.append(True)
        atexit.register(_stop_server)
    return True


def _this_import_path() -> contextlib.AbstractContextManager[None]:
    """While the fork server starts: its import path is this process's. The server is started
    as ``python -c``, which puts the current folder first on its path, and multiprocessing
    (Python 3.11) does not apply the path it hands the server: a ``qzhou_eval`` folder where the
    command runs (a checkout beside an installed wheel) would be what every scoring process
    runs. The environment is the only way in (``PYTHONSAFEPATH``: Python 3.11+; on 3.10 a
    scoring process finds the mismatch, see :func:`package_folder`)."""
    path = os.pathsep.join(os.path.abspath(entry) for entry in sys.path)
    return temporary_environment({"PYTHONPATH": path, "PYTHONSAFEPATH": "1"})


def package_folder() -> str:
    """The folder this process imports qzhou_eval from (a scoring process's must be the main
    process's: results are filed under this version's name)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


_stopping_at_exit: list[bool] = []


def _stop_server() -> None:
    """At this process's exit: the fork server goes now. It ends by itself once this process
    is gone, but only after its imports: a command that stops early (a bad value, Ctrl-C) would
    leave it importing, seconds of a core, after its exit. multiprocessing has no public way to
    stop it (CPython's own tests use a private one); its pid is read the same way."""
    pid = getattr(getattr(multiprocessing.forkserver, "_forkserver", None), "_forkserver_pid", 0)
    if pid:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


_STOP = object()


class ScoringPool:
    """``workers`` processes scoring jobs of one run (see the module's contract)."""

    def __init__(self, workers: int, plan: RunPlan, damaged: Sequence[str] = ()) -> None:
        """``damaged``: shards of the store the main process found damaged and warned about
        (the processes skip them without warning again)."""
        self.workers = workers
        self._results_dir = Path(plan.runtime.results_dir)
        self._forked = start_server()
        self._context = mp.get_context("forkserver" if self._forked else "spawn")
        self.handoff = Handoff(self._context, [t.metadata.name for t in plan.tasks])
        # pickled now, while no task's data are loaded (the processes start later)
        threads = max(1, usable_cores() // workers)
        payload = pickle.dumps((plan, threads, dict(os.environ), list(damaged)))
        # the processes' tie to this one: the writing end stays here, unused, until the pool
        # closes (or this process ends, however it ends)
        lifeline, self._lifeline = self._context.Pipe(duplex=False)
        self._executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=self._context,
            initializer=_start,
            initargs=(payload, self.handoff, lifeline, package_folder()),
        )
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._killed = threading.Event()
        self._thread = threading.Thread(
            target=self._hand_out, name="qzhou-eval-scoring-pool", daemon=True
        )
        self._thread.start()

    def submit(self, job: Job) -> Future[JobDone]:
        """The job's future, at once (its process may still be starting)."""
        future: Future[JobDone] = Future()
        self._queue.put((job, future))
        return future

    def _hand_out(self) -> None:
        """The pool's thread: start every process, then hand each job to the executor."""
        failure: BaseException | None = None
        try:
            if self._forked:
                # The first child of a fresh server is forked once the server's imports are
                # done (seconds): waited for here, by a process of our own, so that the
                # executor's lock (which a forced close takes) is never held that long.
                probe = self._context.Process(target=_ready, daemon=True)
                probe.start()
                probe.join()
            # Start every process now, not at the first jobs. (The executor starts one per
            # submit while none is idle.)
            for _ in range(self.workers):
                if not self._killed.is_set():
                    self._executor.submit(_ready)
        except Exception as e:  # the server could not start, or the pool was closed meanwhile
            failure = e
        while (item := self._queue.get()) is not _STOP:
            job, future = item
            if self._killed.is_set():
                future.cancel()
            if not future.set_running_or_notify_cancel():
                continue
            if failure is not None:
                future.set_exception(
                    ScoringProcessDied(f"the scoring processes did not start: {failure}")
                )
                continue
            try:
                inner = self._executor.submit(_score, job)
            except BaseException as e:  # BrokenProcessPool: a process died while idle
                future.set_exception(e)
                continue
            inner.add_done_callback(partial(_forward, future))

    def close(self, force: bool = False) -> None:
        """Wait for the jobs and stop the processes; ``force``: drop pending jobs and kill the
        processes now (after an error or Ctrl-C)."""
        if not force:
            self._queue.put(_STOP)
            self._thread.join()
            self._executor.shutdown(wait=True)
            self._lifeline.close()
            return
        self._killed.set()
        self._queue.put(_STOP)  # jobs still queued are cancelled
        # ProcessPoolExecutor has no public way to kill its processes before Python 3.14
        # (terminate_workers); shutdown(wait=False) alone would let running jobs finish. Its
        # table of processes is read after the shutdown (which waits for a submit of the pool's
        # thread that may be starting one), from the reference taken before (which it drops).
        table = getattr(self._executor, "_processes", None)
        self._executor.shutdown(wait=False, cancel_futures=True)
        processes = list(table.values()) if table is not None else []
        for process in processes:
            if process.is_alive():
                process.kill()
        for process in processes:
            process.join(timeout=5)
        # now that no process runs, the executor's thread finds them gone and releases its
        # queues (their semaphores would otherwise be reported leaked at exit)
        self._executor.shutdown(wait=True)
        self._lifeline.close()  # any process still starting ends as it starts
        # a result a killed process was writing: its temporary file (the next run would remove
        # it; a live writer's, another run's, stays)
        from qzhou_eval.atomic import remove_stale_temp_files  # (numpy: not in the first calls)

        with contextlib.suppress(OSError):
            remove_stale_temp_files(self._results_dir, recursive=True)


def _forward(future: Future[JobDone], inner: Future[JobDone]) -> None:
    """The executor's outcome of a job, onto the future the main process holds."""
    if inner.cancelled():
        future.set_exception(CancelledError())
    elif (error := inner.exception()) is not None:
        future.set_exception(error)
    else:
        future.set_result(inner.result())


# --- the first calls inside a scoring process: light, so that its ties to the main process are
# armed before the heavy imports (a spawned process's) --------------------------------------


def _ready() -> None:
    """A job that only makes the executor (or the fork server) start a process."""


_start_failure: list[str] = []  # why this process could not start (its jobs fail with it)


def _start(payload: bytes, handoff: Handoff, lifeline: Any, package: str) -> None:
    """A process's initializer. A failure here is not raised: the executor would print its
    traceback and end the process, and the run would see a process that died; each job
    raises it instead, as one line."""
    from qzhou_eval.encoder.lifeline import die_with_writer

    die_with_writer(lifeline)
    # Ctrl-C and a closed terminal reach the whole process group: the main process stops us
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        if package_folder() != package:
            raise UserError(
                f"the scoring processes import qzhou_eval from {package_folder()}, not from "
                f"{package} as this command does (a qzhou_eval folder where the command runs): "
                "run it from another folder"
            )
        # the payload first: one that cannot be read fails before the heavy imports (a spawned
        # process's seconds; a forked one has them already)
        settings = pickle.loads(payload)
        from qzhou_eval.pipeline import scoring_process

        scoring_process.start(settings, handoff)
    except Exception as e:
        _start_failure.append(str(e) if isinstance(e, UserError) else f"{type(e).__name__}: {e}")


def _score(job: Job) -> JobDone:
    if _start_failure:
        raise ScoringProcessDied(f"a scoring process could not start: {_start_failure[0]}")
    from qzhou_eval.pipeline import scoring_process

    return scoring_process.score_job(job)
