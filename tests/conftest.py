"""Shared test fixtures: offline environment, the golden data in tests/data, one torch thread."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# The tests of Ctrl-C expect a terminal's: a suite started in the background of a non-interactive
# shell (`make test &` in a script) inherits SIGINT ignored, which the commands keep ignored, as
# under nohup, and which every command the tests start would inherit too.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
# Likewise SIGHUP under `nohup make test`: the tests of a closed terminal expect it not ignored.
if signal.getsignal(signal.SIGHUP) == signal.SIG_IGN:
    signal.signal(signal.SIGHUP, signal.SIG_DFL)

REPO = Path(__file__).resolve().parents[1]
# Upstream files the tests compare with (official prompts, per-task CSVs, peers' results), committed
# as data; see its README.md. The QZhou result JSONs are the package's copy (qzhou_eval/data).
GOLDEN = REPO / "tests" / "data" / "reference"


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models gain nothing from threads; on a busy 2-core box 2 threads are ~50x slower.

    Use per module: ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def minilm_demo(tmp_path_factory) -> Path:
    """A folder with ``store/`` (MiniLM's vectors of every input of both demo suites) and
    ``results/`` (the plain sequential runs of both suites), made once per session: tests that
    compare scoring paths read vectors from it instead of encoding again."""
    from qzhou_eval.config import compose_config
    from qzhou_eval.runs.runner import execute, plan_run

    root = tmp_path_factory.mktemp("minilm_demo")
    for suite in ("demo_eng", "demo_zho"):
        cfg = compose_config(
            "mteb",
            [
                "model=minilm",
                f"benchmark={suite}",
                f"runtime.results_dir={root / 'results'}",
                f"runtime.store_dir={root / 'store'}",
                "runtime.progress=false",
                "runtime.scoring_workers=0",
            ],
        )
        execute(plan_run(cfg))
    return root
