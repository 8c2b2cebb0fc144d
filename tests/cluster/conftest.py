"""Shared by the launcher tests: the sweep as a user starts it, and one single-run reference."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

MINILM = "sentence-transformers__all-MiniLM-L6-v2/8b3219a92973c328a8e22fadcfa821b5dc75636a"
# The two cheapest demo tasks. No demo task has mteb statistics, so each counts 1 and the split is
# by name: DemoEngReranking is shard 0 of 2, DemoEngSTS shard 1.
TASKS = ["DemoEngReranking", "DemoEngSTS"]


def run_args(root: Path, *extra: str) -> list[str]:
    return [
        "model=minilm",
        "benchmark=demo_eng",
        f"benchmark.tasks=[{','.join(TASKS)}]",
        f"runtime.results_dir={root / 'results'}",
        f"runtime.store_dir={root / 'store'}",
        "runtime.devices=cpu",
        "runtime.progress=false",
        *extra,
    ]


def scores(root: Path) -> dict[str, dict]:
    """Every result file's scores (all metrics of every split), by task."""
    folder = root / "results" / MINILM
    return {
        p.stem: json.loads(p.read_text())["scores"]
        for p in sorted(folder.glob("*.json"))
        if p.name != "model_meta.json"
    }


def sweep_command(*args: str) -> tuple[list[str], dict[str, str]]:
    """``python run_mteb.py -m <args>`` and its environment: its jobs import this checkout."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    return [sys.executable, str(REPO / "run_mteb.py"), "-m", *args], env


def sweep(cwd: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    """:func:`sweep_command` run in ``cwd``."""
    command, env = sweep_command(*args)
    return subprocess.run(
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def single_run(minilm_demo) -> dict[str, dict]:
    """The scores of one plain run of TASKS: the session's sequential run of the demo suites
    (in this process, on the CPU)."""
    result = {task: found for task, found in scores(minilm_demo).items() if task in TASKS}
    assert sorted(result) == TASKS
    return result
