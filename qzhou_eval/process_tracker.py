"""multiprocessing's resource tracker, started so that a run killed outright stays quiet.

The queues and locks that connect a run's worker and scoring processes are named semaphores,
which multiprocessing's resource tracker (a process of its own) removes if the run dies before it
can: ``kill -9``, the OOM killer. It then also warns, on the run's stderr, "There appear to be 5
leaked semaphore objects to clean up at shutdown": a line from a run that, killed outright,
prints nothing (README, "Embedding store, crashes and reruns"). Started here first, before any
semaphore exists, the tracker reads one more warning filter from its environment: that
warning, and only it, is dropped; the clean-up is done as before.

It is also started with SIGHUP blocked. A closed terminal or ssh session sends SIGHUP to the
whole process group; the tracker ignores SIGINT and SIGTERM, not SIGHUP. Killed by it while the
run was stopping, it was started again by the run's clean-up, and the new tracker printed a
``KeyError`` traceback for each semaphore it had never seen. A blocked signal stays blocked
across ``exec``, and the tracker unblocks only SIGINT and SIGTERM, so it now outlives the
hang-up, cleans up and ends with the run.
"""

from __future__ import annotations

import os
import signal
from multiprocessing import resource_tracker

from qzhou_eval.environment import temporary_environment

# action:message:category:module, as in -W (the warning is raised in the tracker's main())
_QUIET = "ignore:resource_tracker:UserWarning:multiprocessing.resource_tracker"


def start_resource_tracker() -> None:
    """Start this process's resource tracker, unless it runs already (then as it was started).

    ``ensure_running`` is public in the module (joblib's loky calls it too), not in the docs;
    the tracker is otherwise started by the first semaphore, with whatever environment the
    process has then."""
    if os.name != "posix":  # the tracker is POSIX's (named semaphores)
        return
    warnings = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), _QUIET]))
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})  # (this thread's mask)
    try:
        with temporary_environment({"PYTHONWARNINGS": warnings}):  # (read as the tracker starts)
            resource_tracker.ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


# joblib's loky runs a tracker of its own, whose warnings come from its own module
_QUIET_LOKY = "ignore:resource_tracker:UserWarning:joblib.externals.loky.backend.resource_tracker"


def start_launcher_resource_tracker() -> None:
    """Start joblib's loky resource tracker (a sweep's joblib launcher), quiet and with SIGHUP
    blocked as :func:`start_resource_tracker` starts multiprocessing's: a sweep stopped by
    Ctrl-C, its launcher's semaphores removed by that tracker, printed its "leaked semlock"
    warnings. Nothing where joblib is not installed (the ``cluster`` extra)."""
    if os.name != "posix":
        return
    try:
        from joblib.externals.loky.backend import resource_tracker as loky_tracker
    except ImportError:
        return
    warnings = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), _QUIET_LOKY]))
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
    try:
        with temporary_environment({"PYTHONWARNINGS": warnings}):
            loky_tracker.ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
