"""Hydra's launchers of a sweep (``-m``): settings checked before any job starts, and joblib's
processes stopped with the sweep.

- SLURM's launcher where no SLURM is, and joblib's ``n_jobs`` / ``timeout`` values joblib would
  refuse only once the jobs start (with a traceback): one line each, exit code 2.
- A joblib job that runs past ``hydra.launcher.timeout``: joblib stops the sweep with
  ``multiprocessing.TimeoutError``; :func:`timed_out` says so in one line.
- Ctrl-C (or SIGTERM) during a joblib sweep: joblib's loky backend, aborting, kills its worker
  processes and then starts fresh ones for the next call (``abort_everything(ensure_ready=
  True)``), which no call comes to; and a job its worker stopped leaves the worker idle. They
  idle for loky's timeout (300 s), each holding the memory its imports took, and print "leaked
  semlock" warnings as they end, minutes after the command. :func:`stop_launcher_processes`
  stops them as the command stops, :func:`kill_launcher_processes` where it ends at once (a
  second Ctrl-C; GNU ``timeout`` sends the command its signal twice, to it and to its group).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qzhou_eval.errors import ConfigError, quoted_hint

# The launchers of the ``cluster`` extra: Hydra's plugin package that each needs.
_PLUGINS = {
    "joblib": "hydra_plugins.hydra_joblib_launcher",
    "slurm": "hydra_plugins.hydra_submitit_launcher",
    "submitit_slurm": "hydra_plugins.hydra_submitit_launcher",
    "submitit_local": "hydra_plugins.hydra_submitit_launcher",
}


def _jobs(text: str) -> bool:
    """Whether ``hydra.launcher.n_jobs=<text>`` is a count of jobs joblib takes."""
    return bool(re.fullmatch(r"-?\d+", text.strip())) and int(text) != 0


def check_launcher(args: Sequence[str]) -> None:
    """A ConfigError for a launcher setting that cannot work, before any job is launched."""
    plain = [a.lstrip("+") for a in args]
    for arg in plain:
        name = arg.partition("hydra/launcher=")[2] if arg.startswith("hydra/launcher=") else ""
        if name in _PLUGINS and not _installed(_PLUGINS[name]):
            raise ConfigError(
                f"hydra/launcher={name} needs Hydra's launcher plugin {_PLUGINS[name]}, which is "
                'not installed: pip install "qzhou-eval[cluster]"'
            )
    if "hydra/launcher=slurm" in plain and not shutil.which("sbatch"):
        raise ConfigError(
            "hydra/launcher=slurm submits SLURM jobs, and this machine has no SLURM (no sbatch "
            "on PATH): run the command on the cluster's login node, or here with "
            "hydra/launcher=joblib"
        )
    values = dict(a.partition("=")[::2] for a in plain if a.startswith("hydra.launcher."))
    n_jobs = values.get("hydra.launcher.n_jobs")
    if n_jobs is not None and not _jobs(n_jobs):
        inner = n_jobs.strip()[1:-1] if re.fullmatch(r"'.*'|\".*\"", n_jobs.strip()) else None
        quoted = quoted_hint(inner, lambda n: _jobs(str(n)))
        raise ConfigError(
            f"hydra.launcher.n_jobs={n_jobs}: give how many jobs run at once, a whole number "
            f"(-1: as many as CPU cores){quoted}"
        )
    timeout = values.get("hydra.launcher.timeout")
    if timeout is not None and timeout.strip() != "null":
        try:
            seconds = float(timeout)
        except ValueError:
            seconds = 0.0
        if not seconds > 0:
            raise ConfigError(
                f"hydra.launcher.timeout={timeout}: give the seconds a job may take, a positive "
                "number, or null (no limit)"
            )


def _installed(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # not even the plugins' namespace package
        return False


def timed_out(error: BaseException) -> str | None:
    """The line for a sweep joblib stopped because a job ran past its timeout; None for any
    other error."""
    import multiprocessing

    if not isinstance(error, multiprocessing.TimeoutError):
        return None
    return (
        "a job of the sweep ran past hydra.launcher.timeout, and joblib stopped the sweep; "
        "finished results and stored vectors are kept: raise the timeout (or set it to null) "
        "and rerun the same command to resume"
    )


def lost_job(error: BaseException) -> str | None:
    """The line for a sweep whose submitit job ended without a result (killed: out of memory,
    ``scancel``, past its time limit; submitit's ``UncompletedJobError``); None for any other
    error. The launcher stops collecting at that job: the jobs after it go on (on SLURM, as
    always once submitted), so the line says to rerun once they have ended."""
    if type(error).__name__ != "UncompletedJobError" or not type(error).__module__.startswith(
        "submitit"
    ):
        return None
    said = str(error).strip().splitlines() or [type(error).__name__]
    return (
        f"a job of the sweep ended without a result (killed, out of memory, or past its time "
        f"limit): {said[0].strip()}; finished results and stored vectors are kept; the sweep's "
        "other jobs may still be running (on SLURM: squeue): once they have ended, rerun the same "
        "command to resume"
    )


def job_log() -> str | None:
    """Where this process's stderr goes when it is a submitit job (its ``_log.err`` file in the
    sweep's ``.submitit/`` folder), else None: the sweep's command reads a failed job's line
    there, since the job's own stderr is not the terminal."""
    if not os.environ.get("SUBMITIT_EXECUTOR"):
        return None
    try:
        import submitit

        return str(submitit.JobEnvironment().paths.stderr)
    except Exception:  # (only a pointer for the command's line)
        return None


def failed_job_line(code: int, log: str) -> str:
    """The command's line for a submitit job that failed with ``code``: the ``error:`` line its
    log ends with (the job printed it there, not on the terminal), and the log's path."""
    said = None
    with contextlib.suppress(OSError, UnicodeDecodeError):
        lines = Path(log).read_text(encoding="utf-8").splitlines()
        said = next((ln for ln in reversed(lines) if ln.startswith("error: ")), None)
    if said is None:
        return f"error: a job of the sweep failed with exit code {code} (its log: {log})"
    return f"error: a job of the sweep failed: {said.removeprefix('error: ')} (its log: {log})"


def _loky_executor() -> Any:
    """joblib's loky executor of this process, or None (joblib never ran). loky has no public
    accessor that does not create one when none exists, so its module's own reference is read."""
    module = sys.modules.get("joblib.externals.loky.reusable_executor")
    return getattr(module, "_executor", None)


def stop_launcher_processes() -> None:
    """Kill the worker processes joblib's loky backend holds, and wait for its clean-up (see the
    module docstring)."""
    executor = _loky_executor()
    if executor is not None:
        with contextlib.suppress(Exception):  # (stopping anyway: never in the way of the line)
            executor.shutdown(wait=True, kill_workers=True)
    kill_launcher_processes()  # any an abort took out of the executor's record


def kill_launcher_processes() -> None:
    """SIGKILL the worker processes joblib's loky backend started, without waiting: the process
    ends next. They are this process's children (``multiprocessing.active_children``), also
    those an abort under way has taken out of the executor's own record."""
    if "joblib.externals.loky" not in sys.modules:
        return
    import multiprocessing

    for process in multiprocessing.active_children():
        if process.name.startswith("LokyProcess") and process.pid:
            with contextlib.suppress(OSError):
                os.kill(process.pid, signal.SIGKILL)
