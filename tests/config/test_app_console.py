"""The console: a reader that goes away, an encoding that lacks a character, a closed terminal.

Real processes: what is tested is the interpreter's own exit (its last flush of stdout, its
stream encodings), which an in-process run does not have.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from qzhou_eval.config.app import BROKEN_PIPE_EXIT
from tests.conftest import REPO


def _qzhou_eval(
    *args: str,
    closed_stdout: bool = False,
    env: dict[str, str] | None = None,
    stdout: str | None = None,
):
    """``python -m qzhou_eval <args>``: (exit code, stdout, stderr). ``closed_stdout``: stdout is
    a pipe whose reader is gone before the command writes (what ``| head -1`` ends in);
    ``stdout``: a file stdout goes to (``/dev/full``: a full disk)."""
    environ = {**os.environ, **(env or {})}
    command = [sys.executable, "-m", "qzhou_eval", *args]
    if stdout is not None:
        with open(stdout, "wb") as out:
            done = subprocess.run(
                command, cwd=REPO, env=environ, stdout=out, stderr=subprocess.PIPE, timeout=300
            )
        return done.returncode, b"", done.stderr.decode()
    if not closed_stdout:
        done = subprocess.run(command, cwd=REPO, env=environ, capture_output=True, timeout=300)
        return done.returncode, done.stdout, done.stderr.decode()
    read, write = os.pipe()
    proc = subprocess.Popen(command, cwd=REPO, env=environ, stdout=write, stderr=subprocess.PIPE)
    os.close(write)
    os.close(read)  # the reader leaves before the first line
    _, err = proc.communicate(timeout=300)
    return proc.returncode, b"", err.decode()


@pytest.mark.parametrize(
    "args",
    [
        ("prompts", "model=minilm", "benchmark=demo_zho"),  # JSON lines, then the exit's flush
        ("run", "--help"),  # Hydra's own printing
    ],
)
def test_a_reader_that_goes_away_ends_the_command_quietly(args):
    code, _, err = _qzhou_eval(*args, closed_stdout=True)
    assert code == BROKEN_PIPE_EXIT == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err
    assert "Error executing job" not in err  # Hydra's own line about a failed job


FULL = "error: cannot write to stdout: No space left on device; fix it and rerun"


def test_stderr_on_a_full_disk_stops_nothing_and_errors_go_to_stdout(tmp_path):
    # (a helper's 2>/dev/full: a warning line failed, exit 1, nothing said, empty folders left)
    prompts = ("prompts", "model=minilm", "benchmark=demo_eng")
    renamed = ("~prompts.instruction_on_all_texts", "+prompts.both_sides=[]")  # warns
    refused = ("run", "model=minilm", "benchmark=demo_eng", "runtime.scoring_workers=-1")
    for args, code in (((*prompts, *renamed), 0), (refused, 2)):
        with open("/dev/full", "wb") as full:
            done = subprocess.run(
                [sys.executable, "-m", "qzhou_eval", *args],
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=full,
                timeout=300,
            )
        out = done.stdout.decode()
        assert done.returncode == code, (done.returncode, out[-300:])
        if code:
            assert out == "error: runtime.scoring_workers=-1: give a whole number >= 0 or 'auto'\n"
        else:
            assert [json.loads(ln)["task"] for ln in out.splitlines()][-1] == "DemoEngClustering"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args",
    [
        ("--version",),  # the console script's own printing
        ("list", "models"),
        ("run", "--help"),  # Hydra's
        ("prompts", "model=minilm", "benchmark=demo_eng"),  # an app's, in Hydra's job
    ],
)
def test_stdout_on_a_full_disk_is_one_line(args):
    code, _, err = _qzhou_eval(*args, stdout="/dev/full")
    lines = [ln for ln in err.splitlines() if ln.startswith("error:") or "Traceback" in ln]
    assert code == 1 and lines == [FULL], err
    assert "Exception ignored" not in err and "Error executing job" not in err


def test_a_run_whose_stdout_is_full_stops_with_one_line_and_leaves_no_folder(tmp_path):
    code, _, err = _qzhou_eval(
        "run",
        "model=minilm",
        "benchmark=demo_eng",
        f"runtime.results_dir={tmp_path / 'new' / 'results'}",
        f"runtime.store_dir={tmp_path / 'new' / 'store'}",
        stdout="/dev/full",
    )
    assert code == 1 and err.strip().splitlines() == [FULL], err
    assert list(tmp_path.iterdir()) == []  # the folders it made for the run are gone again


def test_an_ascii_console_gets_escapes_not_a_unicode_error():
    code, out, err = _qzhou_eval(
        "prompts",
        "model=minilm",
        "benchmark=demo_zho",
        "+text='今天'",
        env={"PYTHONIOENCODING": "ascii"},
    )
    assert code == 0 and "Traceback" not in err, err
    out.decode("ascii")  # every byte is ASCII
    rows = [json.loads(line) for line in out.decode("ascii").splitlines()]
    # the escapes are JSON's own: the lines still parse to the exact input
    assert rows and all(row["input"].endswith("今天") for row in rows)


def test_a_c_locale_without_utf8_mode_gets_escapes_not_a_unicode_error(minilm_demo):
    # Python gives a C locale's stdout surrogateescape, which fails on any other character
    # beyond ASCII: the report's "×100" was a traceback (a run's summary too, its results filed)
    code, out, err = _qzhou_eval(
        "report",
        f"results_dir={minilm_demo / 'results'}",
        "benchmark=demo_eng",
        "out_dir=false",
        env={"PYTHONUTF8": "0", "LC_ALL": "C", "LANG": "C"},
    )
    assert code == 0 and "Traceback" not in err, err
    assert b"main score \\xd7100" in out
