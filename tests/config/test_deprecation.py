"""Config warnings: once per process, and never before a config's error line."""

from __future__ import annotations

import pytest

from qzhou_eval.config import compose_config
from qzhou_eval.config.deprecation import forget_warnings, held_until_valid, warn_once
from qzhou_eval.errors import ConfigError


def test_a_blocks_warnings_are_printed_once_it_succeeds(capsys):
    forget_warnings()
    with pytest.raises(ValueError), held_until_valid():
        warn_once("warning: a")
        raise ValueError("the config's error")
    assert capsys.readouterr().err == ""
    with held_until_valid():
        warn_once("warning: a")
        warn_once("warning: a")
        assert capsys.readouterr().err == ""  # held until the block ends
    assert capsys.readouterr().err == "warning: a\n"
    warn_once("warning: a")
    assert capsys.readouterr().err == ""  # once per process


def test_a_refused_run_config_prints_no_warning_before_its_error(tmp_path, monkeypatch, capsys):
    from qzhou_eval.config import spec
    from qzhou_eval.runs.runner import plan_run

    forget_warnings()
    monkeypatch.setattr(spec, "usable_cores", lambda: 4)
    cfg = compose_config(
        "mteb",
        [
            "model=minilm",
            "benchmark=demo_eng",
            "benchmark.tasks=[NoSuchTask]",
            "runtime.scoring_workers=1000",  # cut to 4, with a warning: held
            f"runtime.results_dir={tmp_path / 'r'}",
            f"runtime.store_dir={tmp_path / 's'}",
        ],
    )
    with pytest.raises(ConfigError, match="NoSuchTask"):
        plan_run(cfg)
    assert capsys.readouterr().err == ""
