"""The launcher configs compose, and the SLURM settings are ours and overridable."""

from __future__ import annotations

import contextlib
import io
import sys

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from qzhou_eval.config import CONF_DIR


def _hydra(*overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        return compose("mteb", overrides=list(overrides), return_hydra_config=True).hydra


def test_slurm_launcher_has_our_settings_and_every_one_is_overridable():
    launcher = _hydra("hydra/launcher=slurm").launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.gpus_per_node, launcher.tasks_per_node, launcher.nodes) == (1, 1, 1)
    assert launcher.cpus_per_task > 0 and launcher.mem_gb > 0 and launcher.timeout_min > 0
    assert launcher.partition is None  # the cluster's default partition
    changed = _hydra(
        "hydra/launcher=slurm",
        "hydra.launcher.partition=gpu",
        "hydra.launcher.gpus_per_node=8",
        "hydra.launcher.cpus_per_task=32",
        "hydra.launcher.mem_gb=512",
        "hydra.launcher.timeout_min=60",
    ).launcher
    assert (changed.partition, changed.gpus_per_node, changed.cpus_per_task) == ("gpu", 8, 32)
    assert (changed.mem_gb, changed.timeout_min) == (512, 60)


@pytest.mark.parametrize("launcher", ["submitit_local", "submitit_slurm", "joblib"])
def test_the_plugins_own_launchers_compose(launcher):
    assert _hydra(f"hydra/launcher={launcher}").launcher._target_.startswith("hydra_plugins.")


@pytest.mark.parametrize(
    "args",
    [
        ["--cfg", "hydra", "hydra/launcher=slurm"],
        ["-m", "hydra/launcher=slurm", "--cfg", "hydra"],  # as the issue writes it
    ],
)
def test_cfg_hydra_prints_the_slurm_settings(args):
    import run_mteb

    out = io.StringIO()
    argv, sys.argv = sys.argv, ["run_mteb.py", *args]
    try:
        with contextlib.redirect_stdout(out):
            run_mteb.main()
    finally:
        sys.argv = argv
    text = out.getvalue()
    for key in ("partition:", "gpus_per_node: 1", "cpus_per_task:", "mem_gb:", "timeout_min:"):
        assert key in text, key
