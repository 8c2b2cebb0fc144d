"""Progress: a bar on a terminal, plain periodic lines in a log (no carriage returns)."""

from __future__ import annotations

from tqdm.auto import tqdm

from qzhou_eval import progress as progress_module
from qzhou_eval.progress import PlainProgress, progress


def test_plain_lines_when_stderr_is_not_a_terminal(capsys):
    assert isinstance(progress(10, "encode", True), PlainProgress)  # pytest's stderr: no tty
    with PlainProgress(10, "encode [query]", every=0) as bar:
        bar.update(4)
        bar.update(6)
    err = capsys.readouterr().err
    assert "\r" not in err
    assert err.splitlines() == [
        "encode [query]: 4/10 (40%), 0 s",
        "encode [query]: 10/10 (100%), 0 s",
    ]


def test_a_short_call_prints_nothing_and_a_long_one_its_end(capsys):
    with PlainProgress(10, "encode", every=3600) as bar:
        bar.update(10)
    assert capsys.readouterr().err == ""  # done before the first period
    with PlainProgress(10, "encode", every=0) as bar:
        bar.update(4)
        bar.every = 3600
        bar.update(6)
    assert capsys.readouterr().err.splitlines() == [
        "encode: 4/10 (40%), 0 s",
        "encode: 10/10 (100%), 0 s",
    ]


def test_a_bar_on_a_terminal_and_nothing_when_disabled(monkeypatch, capsys):
    monkeypatch.setattr(progress_module, "stderr_is_terminal", lambda: True)
    bar = progress(10, "encode", True)
    assert isinstance(bar, tqdm) and not bar.disable
    bar.close()
    monkeypatch.undo()
    quiet = progress(10, "encode", False)
    assert isinstance(quiet, tqdm) and quiet.disable
