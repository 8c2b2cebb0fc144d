"""A command stopped while its modules import: the command's one line, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

# The child stops itself (SIGINT or SIGTERM) as it starts importing omegaconf, the first
# library each command's module imports after its first statement: a moment before the
# command's app handles the signals, deterministic unlike a timer.
_STOP_AT_IMPORT = """
import builtins, os, runpy, signal, sys
real = builtins.__import__
def stopping(name, *args, **kwargs):
    if name == "omegaconf" and not stopping.sent:
        stopping.sent = True
        os.kill(os.getpid(), signal.{signal})
    return real(name, *args, **kwargs)
stopping.sent = False
builtins.__import__ = stopping
sys.argv = ["command", "benchmark=demo_eng"]
{start}
"""

STARTS = {
    "python -m qzhou_eval.report": 'runpy.run_module("qzhou_eval.report", run_name="__main__")',
    "python -m qzhou_eval.check": 'runpy.run_module("qzhou_eval.check", run_name="__main__")',
    "python -m qzhou_eval.shards": 'runpy.run_module("qzhou_eval.shards", run_name="__main__")',
    "python -m qzhou_eval.mirror": 'runpy.run_module("qzhou_eval.mirror", run_name="__main__")',
    "python -m qzhou_eval.prompts": 'runpy.run_module("qzhou_eval.prompts", run_name="__main__")',
    "python -m qzhou_eval": 'runpy.run_module("qzhou_eval", run_name="__main__")',
    "python run_mteb.py": 'runpy.run_path("run_mteb.py", run_name="__main__")',
    "python run_cmteb.py": 'runpy.run_path("run_cmteb.py", run_name="__main__")',
    # the console script: its __main__ is the script pip wrote, which imports the cli
    "qzhou-eval": (
        'sys.modules["__main__"].__file__ = "/venv/bin/qzhou-eval"\n'
        "from qzhou_eval.cli import main\nmain()"
    ),
}


def _started(start: str, signame: str) -> subprocess.CompletedProcess:
    code = _STOP_AT_IMPORT.format(signal=signame, start=start)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("command", list(STARTS))
def test_a_command_stopped_as_its_modules_import_prints_its_one_line(command):
    # (a Ctrl-C there printed a KeyboardInterrupt traceback; a SIGTERM ended it with no line)
    run = _started(STARTS[command], "SIGINT")
    assert (run.returncode, run.stderr) == (130, "interrupted\n"), run.stderr[-2000:]
    run = _started(STARTS[command], "SIGTERM")
    assert (run.returncode, run.stderr) == (143, "terminated (SIGTERM)\n"), run.stderr[-2000:]


def test_a_command_imported_by_another_program_leaves_its_signals_alone():
    # a test or a library caller that imports a command's modules keeps Python's handlers
    code = (
        "import signal\n"
        "import qzhou_eval.report.__main__, qzhou_eval.cli, qzhou_eval.prompts, run_mteb\n"
        "assert signal.getsignal(signal.SIGINT) is signal.default_int_handler\n"
        "assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL\n"
        "assert signal.getsignal(signal.SIGHUP) == signal.SIG_DFL\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
