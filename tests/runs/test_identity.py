"""Per-task identity: which folder a task is filed in, and the record that guards it."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest
import yaml

from qzhou_eval.config import compose_config
from qzhou_eval.config.spec import model_spec
from qzhou_eval.errors import ConfigError
from qzhou_eval.known_tasks import KNOWN_TASKS
from qzhou_eval.recipe import recipe_from_config
from qzhou_eval.runs.identity import (
    LEGACY_RECORD,
    RecordConflict,
    TaskRecord,
    legacy_fingerprint,
    migrate_legacy,
    task_fields,
    task_record,
)
from qzhou_eval.runs.runner import plan_run


def _plan(tmp_path: Path, *overrides: str):
    cfg = compose_config(
        "mteb",
        [f"runtime.results_dir={tmp_path / 'r'}", "runtime.store_dir=null", *overrides],
    )
    return plan_run(cfg)


def test_overriding_one_instruction_files_only_that_task_apart(tmp_path):
    plan = _plan(tmp_path, "benchmark.tasks=[STS12,SCIDOCS]", "prompts.instructions.STS12=x")
    assert plan.variant("SCIDOCS") is None
    assert plan.variant("STS12")[0] == "variant"
    assert set(plan.experiments) == {"", f"variant_{plan.variant('STS12')[1]}"}
    official = _plan(tmp_path, "benchmark.tasks=[STS12,SCIDOCS]")
    assert set(official.experiments) == {""}


def test_a_model_setting_makes_every_task_the_same_variant(tmp_path):
    plan = _plan(tmp_path, "benchmark.tasks=[STS12,SCIDOCS]", "model.max_length=512")
    assert plan.variant("STS12") == plan.variant("SCIDOCS") != None  # noqa: E711
    other = _plan(tmp_path, "benchmark.tasks=[STS12,SCIDOCS]", "model.max_length=256")
    assert other.variant("STS12") != plan.variant("STS12")
    named = _plan(tmp_path, "benchmark.tasks=[STS12]", "experiment=mine")
    assert named.variant("STS12") == ("experiment", "mine")


def test_a_recipe_key_of_no_effect_changes_no_identity(tmp_path):
    # A template change reaches only instructed texts: a query-only task's documents keep theirs.
    base = _plan(tmp_path, "benchmark.tasks=[SCIDOCS]")
    spec, recipe = base.spec, base.recipe
    fields = task_fields(spec, recipe, "SCIDOCS", None)
    assert fields["inputs"]["document"][0] == "\x00TEXT\x00"  # documents get no instruction
    assert fields["inputs"]["query"][0].startswith("Instruct: ")
    assert task_fields(spec, recipe, "SCIDOCS", 256) != fields  # the dimension counts


def _record(folder: Path, fields: dict) -> TaskRecord:
    return TaskRecord(folder, "STS12", fields, "test")


def test_record_refuses_another_configuration_and_accepts_its_own(tmp_path):
    mine, other = _record(tmp_path, {"a": 1}), _record(tmp_path, {"a": 2})
    assert mine.claim() is True
    assert mine.claim() is False  # the same configuration again: fine, nothing new
    assert other.conflict() is not None
    with pytest.raises(RecordConflict, match="STS12 result of a different configuration"):
        other.claim()
    assert yaml.safe_load(mine.path.read_text())["fingerprint"] == mine.fingerprint
    mine.release()  # no result: our record goes, another configuration may run the task
    assert not mine.path.exists()
    other.claim()


def test_a_damaged_record_is_set_aside_with_its_result(tmp_path):
    record = _record(tmp_path, {"a": 1})
    record.path.parent.mkdir(parents=True)
    record.path.write_text("{{{ not yaml")
    record.result.write_text("{}")
    import os
    import time

    old = time.time() - 60
    os.utime(record.path, (old, old))
    assert record.conflict() is None  # healed: the task is evaluated again
    assert not record.result.exists() and not record.path.exists()
    assert len(list(tmp_path.glob("STS12.json.corrupt-*"))) == 1


def _race(folder: str, value: int, barrier, outcomes) -> None:
    record = _record(Path(folder), {"config": value})
    barrier.wait()
    try:
        record.claim()
        outcomes.put(("won", value))
    except RecordConflict:
        outcomes.put(("refused", value))


def test_two_first_writers_with_different_configurations_exactly_one_wins(tmp_path):
    ctx = mp.get_context("fork")
    for rep in range(25):
        folder = tmp_path / f"rep{rep}"
        barrier, outcomes = ctx.Barrier(2), ctx.Queue()
        procs = [
            ctx.Process(target=_race, args=(str(folder), v, barrier, outcomes)) for v in (1, 2)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(30)
            assert p.exitcode == 0
        results = sorted(outcomes.get(timeout=10) for _ in procs)
        assert [r[0] for r in results] == ["refused", "won"], results
        winner = next(v for kind, v in results if kind == "won")
        recorded = yaml.safe_load(_record(folder, {}).path.read_text())
        assert recorded["config"] == winner


def test_a_folder_of_qzhou_eval_0_1_is_migrated_or_refused(tmp_path):
    cfg = compose_config("mteb", ["model=minilm", "benchmark=demo_eng"])
    spec, recipe = model_spec(cfg.model), recipe_from_config(cfg.prompts, KNOWN_TASKS)
    fp = legacy_fingerprint(spec, recipe)
    assert fp is not None  # minilm runs the float32 numerics 0.1 had
    (tmp_path / "DemoEngSTS.json").write_text("{}")
    (tmp_path / LEGACY_RECORD).write_text(yaml.safe_dump({"fingerprint": "other", "dim": None}))
    with pytest.raises(ConfigError, match=r"qzhou-eval 0\.1 for another configuration"):
        migrate_legacy(tmp_path, spec, recipe, None)
    (tmp_path / LEGACY_RECORD).write_text(yaml.safe_dump({"fingerprint": fp, "dim": None}))
    migrate_legacy(tmp_path, spec, recipe, None)
    record = TaskRecord(tmp_path, "DemoEngSTS", task_fields(spec, recipe, "DemoEngSTS", None), "")
    assert record.path.exists() and record.conflict() is None
    assert not (tmp_path / LEGACY_RECORD).exists()
    official = compose_config("mteb", ["benchmark=demo_eng"])  # QZhou: official numerics
    assert legacy_fingerprint(model_spec(official.model, resolve_path=False), recipe) is None


def test_a_full_size_record_of_an_earlier_release_is_the_plain_runs(tmp_path):
    # Before 0.2.0 a sweep's full size was recorded as dim: <embed_dim>, apart from dim: null.
    cfg = compose_config("mteb", ["model=minilm", "benchmark=demo_eng"])
    spec, recipe = model_spec(cfg.model), recipe_from_config(cfg.prompts, KNOWN_TASKS)
    old = TaskRecord(tmp_path, "DemoEngSTS", task_fields(spec, recipe, "DemoEngSTS", 384), "")
    assert old.claim() is True
    full = task_record(tmp_path, spec, recipe, "DemoEngSTS", None)
    assert full.fingerprint != old.fingerprint and full.conflict() is None
    assert full.claim() is False  # accepted as the same identity; the old record stays
    cut = task_record(tmp_path, spec, recipe, "DemoEngSTS", 256)
    assert cut.conflict() is not None  # a real cut is still another configuration
    # and a 0.1 folder recorded at the full size migrates as the plain run's
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "DemoEngSTS.json").write_text("{}")
    fp = legacy_fingerprint(spec, recipe)
    (tmp_path / "b" / LEGACY_RECORD).write_text(yaml.safe_dump({"fingerprint": fp, "dim": 384}))
    migrate_legacy(tmp_path / "b", spec, recipe, None)
    assert task_record(tmp_path / "b", spec, recipe, "DemoEngSTS", None).path.exists()
