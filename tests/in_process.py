"""``qzhou-eval <command> ...`` or ``python run_cmteb.py ...`` in this process: a subprocess's exit
code, stdout and stderr.

Cheaper than a subprocess (no second import of torch and mteb), so bad-input cases can afford
one run each. Real subprocesses stay where a signal, a second process or the interpreter's own
exit is what is tested.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass

from qzhou_eval import cli


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [ln for ln in self.err.splitlines() if ln.strip()]

    @property
    def encoded(self) -> int:
        """What a run's "encoded N input(s)" line says."""
        return int(re.search(r"^encoded (\d+) input", self.out, re.M)[1])


def qzhou_eval(*args: str) -> Run:
    """``qzhou-eval <args>`` (``run ...`` is ``run_mteb.py ...``), in this process."""
    return _captured(lambda: cli.main(list(args)))


def script(name: str, *args: str) -> Run:
    """``python <name> <args>`` for a Hydra app script of the repository's root (``run_cmteb.py``),
    in this process."""
    module = importlib.import_module(name.removesuffix(".py"))
    return _captured(module.main, [name, *args])  # the arguments the Hydra app reads


def _captured(command: Callable[[], object], argv: list[str] | None = None) -> Run:
    out, err = io.StringIO(), io.StringIO()
    saved = sys.argv
    if argv is not None:
        sys.argv = argv
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            command()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else int(e.code is not None)
    finally:
        sys.argv = saved
    return Run(code, out.getvalue(), err.getvalue())
