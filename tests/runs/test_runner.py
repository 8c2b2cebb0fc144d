"""End-to-end runs with the real small model (all-MiniLM-L6-v2 from its PyPI package)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qzhou_eval.config import compose_config
from qzhou_eval.errors import ConfigError
from qzhou_eval.report import BenchmarkInfo, RunId
from qzhou_eval.runs.runner import execute, plan_run

MINILM = "sentence-transformers__all-MiniLM-L6-v2/8b3219a92973c328a8e22fadcfa821b5dc75636a"
SMALL = "benchmark.tasks=[DemoEngSTS,DemoEngClassification]"

pytestmark = pytest.mark.slow


def _cfg(tmp: Path, *extra: str):
    return compose_config(
        "mteb",
        [
            "model=minilm",
            "benchmark=demo_eng",
            SMALL,
            f"runtime.results_dir={tmp / 'results'}",
            f"runtime.store_dir={tmp / 'store'}",
            "runtime.progress=false",
            *extra,
        ],
    )


def test_demo_run_writes_mteb_layout_and_rerun_skips(tmp_path):
    plan = plan_run(_cfg(tmp_path), "mteb")
    assert plan.benchmark == BenchmarkInfo("demo_eng", "demo_eng", 5)  # 2 of its 5 tasks run
    outcome = execute(plan)
    folder = tmp_path / "results" / MINILM
    files = sorted(p.name for p in folder.glob("*.json"))
    assert files == ["DemoEngClassification.json", "DemoEngSTS.json", "model_meta.json"]
    sts = json.loads((folder / "DemoEngSTS.json").read_text())
    assert sts["scores"]["test"][0]["main_score"] > 0.2  # MiniLM is clearly above chance here
    assert outcome.encoded_inputs > 300
    model, revision = MINILM.split("/")
    assert outcome.runs == [RunId(model.replace("__", "/"), revision)]  # data, rendered by the CLI
    assert outcome.results_dir == tmp_path / "results"

    again = execute(plan_run(_cfg(tmp_path), "mteb"))
    assert again.encoded_inputs == 0  # finished tasks are skipped, the model never loads
    assert again.forward_calls == 0


def test_recipe_variant_gets_its_own_folder(tmp_path):
    plan = plan_run(_cfg(tmp_path, "model.max_length=32"), "mteb")
    assert plan.variant and plan.variant[0] == "variant"
    execute(plan)
    exp = tmp_path / "results" / MINILM / "experiments" / plan.experiment
    assert plan.experiment.startswith("variant_")
    assert (exp / "DemoEngSTS.json").exists()
    assert not (tmp_path / "results" / MINILM / "DemoEngSTS.json").exists()
    assert plan_run(_cfg(tmp_path), "mteb").variant is None  # the canonical config has none


def test_folder_of_another_configuration_is_refused(tmp_path):
    execute(plan_run(_cfg(tmp_path, "experiment=mine"), "mteb"))
    with pytest.raises(ConfigError, match="different configuration"):
        execute(plan_run(_cfg(tmp_path, "experiment=mine", "model.max_length=32"), "mteb"))


def test_mrl_dims_from_one_pass(tmp_path):
    plan = plan_run(_cfg(tmp_path, "mrl.dims=[128,256]", "benchmark.tasks=[DemoEngSTS]"), "mteb")
    outcome = execute(plan)
    base = tmp_path / "results" / MINILM / "experiments"
    assert (base / "embed_dim_128" / "DemoEngSTS.json").exists()
    assert (base / "embed_dim_256" / "DemoEngSTS.json").exists()
    # one encoding pass: every distinct input went through the model once for both dims
    single = execute(
        plan_run(_cfg(tmp_path / "b", "mrl.dim=128", "benchmark.tasks=[DemoEngSTS]"), "mteb")
    )
    assert outcome.encoded_inputs == single.encoded_inputs > 0
    rerun = execute(plan)
    assert rerun.encoded_inputs == 0
    s128 = json.loads((base / "embed_dim_128" / "DemoEngSTS.json").read_text())
    s128b = json.loads(
        (tmp_path / "b/results" / MINILM / "experiments/embed_dim_128/DemoEngSTS.json").read_text()
    )
    assert np.isclose(
        s128["scores"]["test"][0]["main_score"], s128b["scores"]["test"][0]["main_score"]
    )


def test_unknown_task_filter_fails_before_loading(tmp_path):
    with pytest.raises(ConfigError, match="NoSuchTask"):
        plan_run(_cfg(tmp_path, "benchmark.tasks=[NoSuchTask]"), "mteb")


@pytest.mark.usefixtures("one_torch_thread")
def test_two_worker_processes_give_the_scores_of_one_device(tmp_path):
    def scores(devices: str, where: Path) -> dict[str, float]:
        cfg = _cfg(where, f"runtime.devices={devices}", "runtime.store_dir=null")
        execute(plan_run(cfg, "mteb"))
        folder = where / "results" / MINILM
        return {
            p.stem: json.loads(p.read_text())["scores"]["test"][0]["main_score"]
            for p in folder.glob("Demo*.json")
        }

    one = scores("[cpu]", tmp_path / "one")
    two = scores("[cpu,cpu]", tmp_path / "two")
    assert set(one) == {"DemoEngSTS", "DemoEngClassification"}
    assert two == one
