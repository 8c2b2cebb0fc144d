"""A command's stop line from its first moment: Ctrl-C, SIGTERM or SIGHUP before the command's
own handling starts (:mod:`qzhou_eval.config.app`, once its Hydra app runs).

Until then a command imports its libraries (omegaconf, Hydra: a few tenths of a second, more on a
loaded machine), where a Ctrl-C printed a ``KeyboardInterrupt`` traceback and a SIGTERM ended the
process with no line. :func:`stop_early`, the first statement of every module a command starts
from, takes these signals until the app takes them over: the command's line (it has done
nothing: nothing to keep), exit code 128 + the signal's number.

Only the standard library here: this runs before anything else is imported.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from types import FrameType

# How each stopping signal is named in the line a stopped command prints.
STOPPED_BY = {
    signal.SIGINT: "interrupted",
    signal.SIGTERM: "terminated (SIGTERM)",
    signal.SIGHUP: "terminated (SIGHUP: the terminal or session closed)",
}
# The handler each has in a Python process that installed none.
DEFAULT_HANDLERS = {
    signal.SIGINT: signal.default_int_handler,
    signal.SIGTERM: signal.SIG_DFL,
    signal.SIGHUP: signal.SIG_DFL,
}
CONSOLE_SCRIPT = "qzhou-eval"


def stop_line(signum: int, kept: str | None) -> str:
    """The one line of a command stopped by ``signum``, which keeps ``kept`` (None: nothing)."""
    stopped = STOPPED_BY.get(signum) or f"terminated ({signal.Signals(signum).name})"
    return f"{stopped}: {kept}; rerun the same command to resume" if kept else stopped


def _stopped(signum: int, frame: FrameType | None) -> None:
    try:
        sys.stderr.write(stop_line(signum, None) + "\n")
        sys.stderr.flush()
    finally:
        os._exit(128 + signum)


def stop_early(module: str) -> None:
    """Take the stopping signals until the command's app does, where ``module`` (the caller's
    ``__name__``) starts this process's command: run as ``__main__`` (``python -m ...``, a
    script), or imported by the ``qzhou-eval`` console script. Imported otherwise (a test that
    calls a command in its own process), nothing changes. A signal someone else handles
    (``nohup``'s ignored SIGHUP) is left alone."""
    program = Path(getattr(sys.modules.get("__main__"), "__file__", None) or "").name
    if module != "__main__" and program != CONSOLE_SCRIPT:
        return
    for signum, default in DEFAULT_HANDLERS.items():
        if signal.getsignal(signum) == default:
            signal.signal(signum, _stopped)


def taken_early(handler: object) -> bool:
    """Whether ``handler`` is this module's (the app's own handling then replaces it)."""
    return handler is _stopped
