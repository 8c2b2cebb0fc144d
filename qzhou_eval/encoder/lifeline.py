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


def die_with_fork_server(main_pid: int) -> None:
    """:func:`die_with_parent` for a child of multiprocessing's fork server, which exits as soon
    as the main process that started it does: the child dies with the server, and the main
    process being gone already (before the ties were armed) is checked here."""
    server = os.getppid()
    try:
        os.kill(main_pid, 0)  # signal 0: only whether the process exists
    except ProcessLookupError:
        os._exit(1)
    except PermissionError:  # exists, as another user (a reused pid): nothing to tell
        pass
    die_with_parent(server, kernel_signal=True)


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
