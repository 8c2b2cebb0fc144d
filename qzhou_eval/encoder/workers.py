"""Data parallel over devices: one persistent worker process per device.

The main process keeps the recipe, dedup, the embedding store and mteb; it tokenizes and cuts
length-sorted batches. Workers only turn token ids into vectors:

- one ``spawn`` process per device, started on the first input that needs the model and kept for
  the whole run (every task, every MRL dimension), stopped at the end;
- batches go into one shared queue, longest first; an idle worker takes the next one (work
  stealing), so devices finish together whatever their speed; each worker runs them through a
  :class:`~qzhou_eval.encoder.device_loop.DeviceLoop` (prefetch, async copies, OOM learning);
- vectors come back tagged with their batch number and are put back in input order by the caller;
- workers die with the main process, from their first moment (:mod:`.lifeline`, before torch is
  imported): they ignore SIGINT and SIGHUP (the main process stops them), ask the kernel to kill
  them when the main process dies (Linux ``PR_SET_PDEATHSIG``), and a watchdog thread exits when
  their parent changes (``kill -9`` of the main process included);
- a worker that fails (cannot load the model, out of memory on one input, killed) stops the run
  with one line naming its device;
- each worker gets the usable cores (the process's affinity mask, e.g. a SLURM job's
  ``cpus_per_task``) shared out as torch threads, and CUDA workers start with
  ``PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True`` (less fragmentation from variable batch
  shapes) unless ``PYTORCH_CUDA_ALLOC_CONF`` or ``PYTORCH_ALLOC_CONF`` is already set.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import multiprocessing as mp
import os
import pickle
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from qzhou_eval.config.cores import usable_cores
from qzhou_eval.config.spec import ModelSpec
from qzhou_eval.encoder import lifeline
from qzhou_eval.environment import temporary_environment
from qzhou_eval.errors import DeviceError, one_line
from qzhou_eval.models.inputs import TokenBatch
from qzhou_eval.process_tracker import start_resource_tracker

logger = logging.getLogger(__name__)

_POLL_SECONDS = lifeline.POLL_SECONDS
# Batches of a call queued or running per worker: enough that a worker always finds its next
# one queued (its device loop prefetches two), few enough to hold little memory.
IN_FLIGHT_PER_WORKER = 4


BackboneFactory = Callable[[ModelSpec, str], Any]
"""``(spec, device) -> Backbone``; a module-level function, so that ``spawn`` can pickle it."""


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker process needs to build its model (picklable for ``spawn``)."""

    spec: ModelSpec
    device: str
    factory: BackboneFactory | None
    threads: int


# Against fragmentation from variable batch shapes; the user's own setting wins.
CUDA_ALLOC_CONF = "expandable_segments:True"
_ALLOC_CONF_VARS = ("PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_ALLOC_CONF")


def threads_per_worker(devices: int) -> int:
    """torch threads of each worker: the usable cores shared out, at least one."""
    return max(usable_cores() // max(devices, 1), 1)


def worker_environment(devices: Sequence[str]) -> dict[str, str]:
    """Variables a worker process starts with on top of ours: the CUDA allocator's
    ``expandable_segments`` for CUDA workers, unless the user set an allocator config."""
    cuda = any(str(d).startswith("cuda") for d in devices)
    if not cuda or any(v in os.environ for v in _ALLOC_CONF_VARS):
        return {}
    return {"PYTORCH_CUDA_ALLOC_CONF": CUDA_ALLOC_CONF}


def _worker_main(index: int, settings: WorkerSettings, tasks: Any, results: Any) -> None:
    """Body of one worker process (started through :func:`lifeline.run`, which has already tied
    its life to the main process's and set it to ignore Ctrl-C and SIGHUP)."""
    logging.basicConfig(
        level=logging.WARNING, format=f"[worker {settings.device}] %(levelname)s %(message)s"
    )
    import torch
    import transformers

    from qzhou_eval.encoder.device_loop import DeviceLoop
    from qzhou_eval.models.backbone import load_backbone

    torch.set_num_threads(settings.threads)
    transformers.utils.logging.disable_progress_bar()  # the main process shows the progress
    try:
        if settings.device.startswith("cuda"):
            torch.cuda.set_device(torch.device(settings.device))  # no stray context on cuda:0
        backbone = (settings.factory or load_backbone)(settings.spec, settings.device)
    except BaseException as e:
        results.put(("error", index, f"cannot load the model: {one_line(e)}"))
        return
    results.put(("ready", index, int(backbone.output_dim)))
    loop = DeviceLoop(backbone)

    def feed() -> Iterator[tuple[tuple[int, int], TokenBatch]]:
        while True:
            item = tasks.get()
            if item is None:
                return
            call, number, batch = item
            yield (call, number), batch

    try:
        for (call, number), vectors in loop.run(feed()):
            results.put(("done", index, call, number, vectors, loop.forward_calls))
    except BaseException as e:
        results.put(("error", index, one_line(e)))


class WorkerPool:
    """Persistent worker processes, one per device, fed from one shared queue."""

    def __init__(
        self, spec: ModelSpec, devices: Sequence[str], factory: BackboneFactory | None = None
    ) -> None:
        """``factory`` builds each worker's backbone (default: load ``spec.path``)."""
        if not devices:
            raise ValueError("a worker pool needs at least one device")
        self.spec = spec
        self.devices = list(devices)
        self.factory = factory
        self._procs: list[Any] = []
        self._tasks: Any = None
        self._results: Any = None
        self._call = 0
        self._forwards = [0] * len(self.devices)
        self.output_dim: int | None = None
        self._starting = threading.Lock()

    @property
    def started(self) -> bool:
        return bool(self._procs)

    @property
    def forward_calls(self) -> int:
        return sum(self._forwards)

    def start(self) -> None:
        """Start the workers (once; the embedder's tokenizer and its caller may both ask)."""
        with self._starting:
            if not self._procs:
                self._start()

    def _start(self) -> None:
        start_resource_tracker()  # before the queues' semaphores
        ctx = mp.get_context("spawn")  # CUDA cannot be used in forked children
        if mp.get_start_method(allow_none=True) not in (None, "spawn", "fork", "forkserver"):
            # Inside a joblib (loky) job the global start method is "loky", which a spawned
            # child cannot set up; the pool's own children only need the standard one.
            mp.set_start_method("spawn", force=True)
        self._tasks = ctx.Queue()
        self._results = ctx.Queue()
        threads = threads_per_worker(len(self.devices))
        main_thread = threading.current_thread() is threading.main_thread()
        with temporary_environment(worker_environment(self.devices)):  # (copied at start)
            for index, device in enumerate(self.devices):
                settings = WorkerSettings(self.spec, device, self.factory, threads)
                proc = ctx.Process(
                    target=lifeline.run,
                    args=(
                        os.getpid(),
                        main_thread,  # PR_SET_PDEATHSIG fires when the starting *thread* ends
                        f"{__name__}:_worker_main",
                        pickle.dumps((index, settings)),
                        self._tasks,
                        self._results,
                    ),
                    name=f"qzhou-eval-worker-{index}-{device}",
                    daemon=True,
                )
                proc.start()
                self._procs.append(proc)
        atexit.register(self.close)
        logger.info("started %d worker(s) on %s", len(self._procs), ", ".join(self.devices))

    def run(self, batches: Iterable[TokenBatch]) -> Iterator[tuple[int, np.ndarray]]:
        """Vectors of each batch as ``(batch number, vectors)``, in completion order.

        ``batches`` may be lazy: a thread of this call takes them as the workers need them, up
        to ``IN_FLIGHT_PER_WORKER`` per worker queued or running, so a long stream never
        drains the devices between its parts and holds only a few batches at a time."""
        self.start()
        self._call += 1
        call = self._call
        slots = threading.Semaphore(IN_FLIGHT_PER_WORKER * len(self.devices))
        stop = threading.Event()
        fed = [0]  # batches queued so far
        ended: list[BaseException | None] = []  # [error or None] once the feeding ends

        def feed() -> None:
            error: BaseException | None = None
            try:
                for number, batch in enumerate(batches):
                    while not slots.acquire(timeout=_POLL_SECONDS):
                        if stop.is_set():
                            return
                    if stop.is_set():
                        return
                    self._tasks.put((call, number, batch))
                    fed[0] = number + 1
            except BaseException as e:  # raised in the caller's thread
                error = e
            finally:
                ended.append(error)
                with contextlib.suppress(Exception):
                    self._results.put(("fed", -1))  # wakes the caller if it waits

        feeder = threading.Thread(target=feed, name="qzhou-eval-pool-feed", daemon=True)
        feeder.start()
        received = 0
        try:
            while not (ended and received == fed[0]):
                message = self._next()
                kind, index = message[0], message[1]
                if kind == "done":
                    _, _, msg_call, number, vectors, forwards = message
                    self._forwards[index] = forwards
                    if msg_call != call:  # left over from an abandoned call
                        continue
                    received += 1
                    slots.release()
                    yield number, vectors
                elif kind == "ready":
                    self.output_dim = message[2]
                elif kind != "fed":
                    raise DeviceError(f"{self.worker_name(index)} failed: {message[2]}")
            if ended[0] is not None:
                raise ended[0]
        finally:
            # not joined: it may wait on a lazy source that ends only once our caller goes on
            stop.set()

    def worker_name(self, index: int) -> str:
        """``the worker on cuda:3``; where a device is listed twice (``[cpu,cpu]``) also its
        place in ``runtime.devices`` and its process id: ``the worker on cpu (#1, pid 4242)``."""
        device = self.devices[index]
        if self.devices.count(device) == 1:
            return f"the worker on {device}"
        pid = self._procs[index].pid if index < len(self._procs) else None
        return f"the worker on {device} (#{index}{f', pid {pid}' if pid else ''})"

    def _next(self) -> tuple:
        while True:
            try:
                return self._results.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                for index, proc in enumerate(self._procs):
                    if proc.exitcode is not None:
                        raise DeviceError(
                            f"{self.worker_name(index)} exited (code {proc.exitcode}) before it "
                            "finished its batches"
                        ) from None

    def close(self, timeout: float = 10.0) -> None:
        """Stop every worker: politely when they are idle, by force after ``timeout``."""
        if not self._procs:
            return
        procs, self._procs = self._procs, []
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)
        for proc in procs:
            if proc.is_alive():
                with contextlib.suppress(Exception):
                    self._tasks.put(None)
        deadline = time.monotonic() + timeout
        for proc in procs:
            proc.join(max(deadline - time.monotonic(), 0.0))
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
                proc.join(5.0)
            if proc.is_alive():
                proc.kill()
                proc.join(5.0)
        for q in (self._tasks, self._results):
            with contextlib.suppress(Exception):
                q.cancel_join_thread()
                q.close()
