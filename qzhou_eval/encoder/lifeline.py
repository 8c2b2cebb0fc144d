"""The first thing a worker process does: tie its life to its parent's, before any heavy import.

A ``spawn`` child unpickles its target and arguments before it runs anything of ours; with a
worker's own target that means importing torch and the model code, seconds during which a
killed parent would leave it running. So the pool starts this light module's :func:`run`,
which arms the ties at once and only then imports the worker's body and unpickles its settings.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import os
import pickle
import signal
import sys
import threading
import time
from typing import Any

_PR_SET_PDEATHSIG = 1
POLL_SECONDS = 0.5


def die_with_parent(parent_pid: int, kernel_signal: bool) -> None:
    """Exit when ``parent_pid`` is no longer this process's parent (``kill -9`` included).

    ``kernel_signal``: also ask Linux to SIGKILL this process when its parent dies
    (``PR_SET_PDEATHSIG``; it fires when the parent *thread* ends, so only for a pool started
    from the main thread). A watchdog thread covers the rest.
    """
    if kernel_signal and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(POLL_SECONDS)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="qzhou-eval-watchdog", daemon=True).start()


def die_with_writer(reader: Any) -> None:
    """Exit once the writing end of ``reader`` (a one-way multiprocessing pipe whose writing end
    the main process alone holds, and never writes to) is closed: the main process ended,
    ``kill -9`` included, whoever this process's parent is.

    For the children of multiprocessing's fork server, which neither :func:`die_with_parent`
    nor the server can tie to the main process: they are the server's children, and each holds
    a copy of the pipe that would tell the server the main process is gone.
    """

    def watch() -> None:
        with contextlib.suppress(EOFError, OSError):
            reader.recv_bytes()
        os._exit(1)

    threading.Thread(target=watch, name="qzhou-eval-lifeline", daemon=True).start()


def run(parent_pid: int, kernel_signal: bool, target: str, payload: bytes, *args: Any) -> None:
    """Arm the ties, then call ``target`` (``"module:function"``) with the unpickled
    ``payload`` (a tuple of arguments) followed by ``args``."""
    die_with_parent(parent_pid, kernel_signal)
    # Ctrl-C and a closed terminal reach the whole process group: the main process stops us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    module, _, name = target.partition(":")
    body = getattr(importlib.import_module(module), name)
    body(*pickle.loads(payload), *args)
