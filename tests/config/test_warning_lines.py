"""Python's warnings reach the user as the log's one-line ``warning:`` lines, once each."""

from __future__ import annotations

import sys
import warnings

from qzhou_eval.config import hydra_app


class FitWarning(UserWarning):
    pass


def test_a_multi_line_warning_is_one_line_once(monkeypatch, capsys, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["app", "model=minilm"])

    def fn(cfg) -> None:
        for _ in range(3):  # as mteb fits a classifier per experiment
            text = "failed to converge (status=1):\nSTOP: LIMIT\n\nIncrease"
            warnings.warn(FitWarning(text), stacklevel=1)
        warnings.warn("another one", stacklevel=1)

    capsys.readouterr()
    hydra_app("mteb")(fn)()
    out, err = capsys.readouterr()
    assert err == ""
    assert [ln for ln in out.splitlines() if "warning" in ln.lower()] == [
        "warning: FitWarning: failed to converge (status=1)",
        "warning: UserWarning: another one",
    ]
    assert warnings.showwarning.__module__ == "warnings"  # restored once the command ended
