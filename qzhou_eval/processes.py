"""Helper processes (device workers, scoring workers) that never outlive the main process."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1
_POLL_SECONDS = 0.5


def die_with_parent(parent_pid: int, kernel_signal: bool) -> None:
    """Exit when ``parent_pid`` dies, whatever kills it (``kill -9`` included).

    ``kernel_signal``: also ask Linux to SIGKILL this process then (``PR_SET_PDEATHSIG``); it
    fires when the *thread* that started the process ends, so only for processes started from
    the main thread. A watchdog thread covers the rest within half a second.
    """
    if kernel_signal and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(_POLL_SECONDS)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="qzhou-eval-watchdog", daemon=True).start()


def one_line(error: BaseException) -> str:
    """An exception's message on one line of at most 300 characters."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."
