"""Faults and bad input, as a user meets them on a finished demo run (issue 8).

Each case damages a copy of one clean reference run (or makes a folder unwritable, or fills the
disk, or interrupts the run) and checks: the exit code, exactly one line on stderr naming the
thing to fix, no traceback, no temporary or 0-byte file, earlier result files unchanged, and that
the rerun ends with the reference run's scores. The CLI runs in-process (``qzhou-eval run``, see
``tests.in_process``); real subprocesses only where a signal is involved or two runs race.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from qzhou_eval import atomic
from qzhou_eval.config import app
from qzhou_eval.store import disk
from tests.conftest import REPO
from tests.in_process import Run, qzhou_eval
from tests.test_atomic import DiskFillsUp

MINILM = "sentence-transformers__all-MiniLM-L6-v2/8b3219a92973c328a8e22fadcfa821b5dc75636a"
STS, CLS = "DemoEngSTS", "DemoEngClassification"


def _args(root: Path, *extra: str, tasks: str = f"{STS},{CLS}") -> list[str]:
    return [
        "model=minilm",
        "benchmark=demo_eng",
        f"benchmark.tasks=[{tasks}]",
        f"runtime.results_dir={root / 'results'}",
        f"runtime.store_dir={root / 'store'}",
        "runtime.progress=false",
        *extra,
    ]


def cli(*args: str) -> Run:
    """``python run_mteb.py <args>``, in this process."""
    return qzhou_eval("run", *args)


def _scores(root: Path) -> dict[str, list[float]]:
    folder = root / "results" / MINILM
    return {
        p.stem: [
            s["main_score"] for split in json.loads(p.read_text())["scores"].values() for s in split
        ]
        for p in sorted(folder.glob("*.json"))
        if p.name != "model_meta.json"
    }


def _files(root: Path) -> dict[str, bytes]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


@dataclass
class Reference:
    root: Path
    scores: dict[str, list[float]]
    inputs: dict[str, int]  # distinct inputs each task encodes
    sts_shards: list[str]  # store shards that hold the vectors of DemoEngSTS


@pytest.fixture(scope="session")
def reference(tmp_path_factory) -> Reference:
    """One clean run of two demo tasks with a store, shared by every case (copied per case)."""
    root = tmp_path_factory.mktemp("reference")
    first = cli(*_args(root, tasks=STS))
    sts_shards = [p.name for p in _shards(root)]
    both = cli(*_args(root))
    assert first.code == both.code == 0, first.err + both.err
    assert set(_scores(root)) == {STS, CLS}
    return Reference(root, _scores(root), {STS: first.encoded, CLS: both.encoded}, sts_shards)


@pytest.fixture
def case(reference, tmp_path) -> Path:
    for sub in ("results", "store"):
        shutil.copytree(reference.root / sub, tmp_path / sub)
    return tmp_path


def _result(root: Path, task: str) -> Path:
    return root / "results" / MINILM / f"{task}.json"


def _shards(root: Path) -> list[Path]:
    return sorted((root / "store").glob(f"*/*{disk.KEYS}"))


def assert_clean(root: Path) -> None:
    """No temporary file and no 0-byte file anywhere under ``root``."""
    for p in root.rglob("*"):
        if p.is_file():
            assert not atomic.is_temp_name(p.name), p
            assert p.stat().st_size > 0, p


def assert_one_error(run: Run, code: int, *needles: str) -> str:
    assert run.code == code, (run.code, run.err[-3000:])
    assert "Traceback" not in run.err + run.out
    (line,) = run.err_lines
    assert line.startswith("error: ") and all(n in line for n in needles), line
    return line


def assert_reference_scores(root: Path, reference: Reference) -> None:
    scores = _scores(root)
    assert scores.keys() == reference.scores.keys()
    for task, values in reference.scores.items():
        assert scores[task] == pytest.approx(values, abs=1e-6), task


def _fail_writes(monkeypatch, error: int, when: Callable[[Path], bool]) -> list[Path]:
    """Writes whose temp file matches ``when`` fail: ENOSPC half-way through, EROFS at open."""
    real = atomic._open_temp
    failed: list[Path] = []

    def open_temp(tmp: Path):
        if not when(tmp):
            return real(tmp)
        failed.append(tmp)
        if error == errno.ENOSPC:
            return DiskFillsUp(real(tmp))
        raise OSError(error, os.strerror(error), str(tmp))

    monkeypatch.setattr(atomic, "_open_temp", open_temp)
    return failed


def _target(tmp: Path) -> Path:
    """The file a temporary file ``.<name>.<32 hex>.tmp`` was going to become."""
    return tmp.with_name(re.sub(r"\.[0-9a-f]{32}(-[A-Za-z0-9-]+-\d+)?\.tmp$", "", tmp.name[1:]))


def _under(folder: Path) -> Callable[[Path], bool]:
    return lambda tmp: folder in tmp.parents


# ---- damaged files are healed ------------------------------------------------------------


@pytest.mark.slow
def test_damaged_result_json_is_moved_aside_and_evaluated_again(case, reference):
    sts = _result(case, STS)
    sts.write_bytes(sts.read_bytes()[: sts.stat().st_size // 2])
    cls_before = _result(case, CLS).read_bytes()

    run = cli(*_args(case))
    assert run.code == 0 and run.err_lines == [], run.err
    warnings = [ln for ln in run.out.splitlines() if "is damaged (" in ln]
    assert len(warnings) == 1, run.out
    warning = warnings[0]
    (moved,) = sts.parent.glob(f"{STS}.json.corrupt-*")
    assert str(sts) in warning and moved.name in warning
    assert run.encoded == 0  # its vectors come from the store
    # the summary counts it as this run's, not as finished before
    (before,) = [ln for ln in run.out.splitlines() if "finished by an earlier run" in ln]
    assert STS not in before and CLS in before
    assert [ln for ln in run.out.splitlines() if ln.split()[:1] == [STS]], run.out
    assert _result(case, CLS).read_bytes() == cls_before
    assert_reference_scores(case, reference)
    assert "is damaged (" not in cli(*_args(case)).out


@pytest.mark.slow
def test_damaged_store_shards_are_set_aside_and_their_inputs_encoded_again(case, reference):
    # Re-shard DemoEngSTS's vectors into five small shards (valid ones), then damage each.
    folder = _shards(case)[0].parent
    keys = np.concatenate([np.load(folder / n) for n in reference.sts_shards])
    vecs = np.concatenate(
        [np.load(folder / n.replace(disk.KEYS, disk.VECS)) for n in reference.sts_shards]
    )
    for n in reference.sts_shards:
        (folder / n).unlink()
        (folder / n.replace(disk.KEYS, disk.VECS)).unlink()
    names = [f"{i:032x}" for i in range(5)]
    for name, rows in zip(names, np.array_split(np.arange(len(keys)), 5), strict=True):
        atomic.save_npy(folder / f"{name}{disk.VECS}", vecs[rows])
        atomic.save_npy(folder / f"{name}{disk.KEYS}", keys[rows])
    vecs = [folder / f"{n}{disk.VECS}" for n in names]
    (folder / f"{names[0]}{disk.KEYS}").write_bytes(os.urandom(256))  # garbage keys
    vecs[1].write_bytes(os.urandom(4096))  # garbage vectors
    vecs[2].write_bytes(vecs[2].read_bytes()[: vecs[2].stat().st_size // 2])  # truncated
    np.save(vecs[3], np.load(vecs[3])[:-2])  # fewer vectors than keys
    nan = np.load(vecs[4])
    nan[5] = np.nan  # a value no model gives, the format intact (a traceback or a score before)
    np.save(vecs[4], nan)
    old = time.time() - atomic.STALE_AFTER_S - 60
    orphan = folder / f"{'e' * 32}{disk.VECS}"  # keys never written by a killed run
    stale = atomic.temp_path(folder / f"{'f' * 32}{disk.VECS}")
    live = atomic.temp_path(folder / f"{'a' * 32}{disk.VECS}")  # another run writing right now
    for p in (orphan, stale, live):
        np.save(p.open("wb"), np.zeros((2, 384), dtype=np.float32))
    for p in (orphan, stale):
        os.utime(p, (old, old))
    for task in (STS, CLS):
        _result(case, task).unlink()

    run = cli(*_args(case))
    assert run.code == 0 and run.err_lines == [], run.err
    warnings = [ln for ln in run.out.splitlines() if "is damaged" in ln]
    assert len(warnings) == 5 and all(any(n in w for w in warnings) for n in names), warnings
    assert "1 of " in warnings[-1] and "are NaN, inf or all zero" in warnings[-1], warnings
    assert run.encoded == reference.inputs[STS]  # what the damaged shards held, nothing else
    assert_reference_scores(case, reference)
    assert not orphan.exists() and not stale.exists() and live.exists()
    live.unlink()
    assert_clean(case)
    again = cli(*_args(case))
    assert "is damaged (" not in again.out and again.encoded == 0


@pytest.mark.slow
def test_a_result_whose_record_was_deleted_is_set_aside_and_evaluated_again(case, reference):
    records = case / "results" / MINILM / "qzhou_eval_records"
    (records / f"{STS}.yaml").unlink()
    cls_before = _result(case, CLS).read_bytes()
    run = cli(*_args(case))
    assert run.code == 0 and run.err_lines == [], run.err
    warnings = [ln for ln in run.out.splitlines() if "has no record" in ln]
    assert len(warnings) == 1 and STS in warnings[0], run.out
    (moved,) = _result(case, STS).parent.glob(f"{STS}.json.unrecorded-*")
    assert moved.name in warnings[0]  # kept beside, not deleted
    assert run.encoded == 0  # evaluated again from the stored vectors
    assert (records / f"{STS}.yaml").exists()  # and recorded this time
    assert _result(case, CLS).read_bytes() == cls_before
    assert_reference_scores(case, reference)
    assert "has no record" not in cli(*_args(case)).out


@pytest.mark.slow
def test_the_record_is_written_before_the_result(case, monkeypatch):
    from qzhou_eval.results import ResultsFolder

    _result(case, STS).unlink()
    (case / "results" / MINILM / "qzhou_eval_records" / f"{STS}.yaml").unlink()
    real, seen = ResultsFolder.save_to_cache, []

    def save(self, task_result, model_name, *args, **kwargs):
        path = self.get_task_result_path(task_result.task_name, model_name)
        seen.append((path.parent / "qzhou_eval_records" / f"{path.stem}.yaml").exists())
        return real(self, task_result, model_name, *args, **kwargs)

    monkeypatch.setattr(ResultsFolder, "save_to_cache", save)
    assert cli(*_args(case, tasks=STS)).code == 0
    assert seen and all(seen)  # so a kill between the two writes leaves a record, not a result


@pytest.mark.slow
def test_a_run_killed_between_record_and_result_does_not_block_another_configuration(tmp_path):
    # Both configurations file into experiments/experiment_shared/ (experiment= names it).
    proc = _popen(*_args(tmp_path, "experiment=shared", tasks=STS))
    folder = tmp_path / "results" / MINILM / "experiments" / "experiment_shared"
    record = folder / "qzhou_eval_records" / f"{STS}.yaml"
    deadline = time.monotonic() + 300
    while not record.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # preempted: no result, its record stays
    proc.communicate(timeout=60)
    assert not (folder / f"{STS}.json").exists()

    other = cli(*_args(tmp_path, "experiment=shared", "model.max_length=128", tasks=STS))
    assert other.code == 0 and other.err_lines == [], other.err
    warnings = [ln for ln in other.out.splitlines() if "left no" in ln]
    assert len(warnings) == 1 and str(record) in warnings[0], other.out
    assert (folder / f"{STS}.json").exists()
    assert "max_length: 128" in record.read_text()  # the record is the new configuration's
    assert len(list(record.parent.glob(f"{STS}.yaml.stale-*"))) == 1
    assert_clean(tmp_path / "results")


# ---- unwritable folders and full disks -------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("key", ["results_dir", "store_dir"])
def test_read_only_folder_is_refused_before_anything_loads(case, reference, monkeypatch, key):
    # Running as root, chmod does not make a folder unwritable: opening a file there fails the
    # way it does on a read-only mount (EROFS) instead.
    folder = case / ("results" if key == "results_dir" else "store")
    _result(case, STS).unlink()  # something to write
    before = _files(case)
    _fail_writes(monkeypatch, errno.EROFS, _under(folder))
    run = cli(*_args(case))
    assert_one_error(run, 2, f"runtime.{key}={folder} is not writable: Read-only file system")
    assert run.out.strip() == ""  # refused before the plan printed anything
    monkeypatch.undo()
    assert _files(case) == before
    rerun = cli(*_args(case))
    assert rerun.code == 0 and rerun.encoded == 0
    assert_reference_scores(case, reference)
    if key == "store_dir":  # scoring from the vectors there is suggested where there are some
        hint = "(to score from the vectors stored there: runtime.encode=false)"
        assert run.err_lines[0].endswith(hint)
        shutil.rmtree(folder)
        folder.mkdir()
        _result(case, STS).unlink()
        _fail_writes(monkeypatch, errno.EROFS, _under(folder))
        empty = cli(*_args(case))
        assert hint not in assert_one_error(empty, 2, f"runtime.{key}={folder} is not writable")


@pytest.mark.slow
@pytest.mark.parametrize("folders", [("results",), ("store",), ("results", "store")])
def test_read_only_folders_with_every_result_finished_print_the_summary(
    case, reference, monkeypatch, folders
):
    # a kill between a result and its run_settings.jsonl line: a writable folder heals that
    # on reading (test_results_disk_filling_mid_run_...), a read-only one is only read
    run_settings = case / "results" / MINILM / "run_settings.jsonl"
    run_settings.write_text("".join(ln for ln in run_settings.open() if STS not in ln))
    before = _files(case)
    failed = _fail_writes(
        monkeypatch, errno.EROFS, lambda tmp: any(case / f in tmp.parents for f in folders)
    )
    run = cli(*_args(case))
    assert run.code == 0 and run.err_lines == [], run.err
    assert "Traceback" not in run.out
    assert STS in run.out and CLS in run.out and run.encoded == 0  # the summary, from the files
    assert failed  # the probe found the folder read-only
    assert _files(case) == before  # nothing was written


@pytest.mark.slow
def test_a_read_only_results_folder_keeps_its_model_meta_and_says_so(case, monkeypatch):
    # a writable folder gets the model's metadata as now set (test_runner's
    # test_a_finished_run_brings_model_meta_up_to_date); a read-only one cannot, and said nothing
    meta = case / "results" / MINILM / "model_meta.json"
    before = _files(case)
    _fail_writes(monkeypatch, errno.EROFS, _under(case / "results"))
    run = cli(*_args(case, "model.reference=https://example.org/x"))
    assert run.code == 0 and run.err_lines == [] and run.encoded == 0, run.err
    stale = [ln for ln in run.out.splitlines() if "model_meta.json" in ln]
    assert len(stale) == 1 and str(meta) in stale[0] and "not writable" in stale[0], run.out
    assert _files(case) == before
    run = cli(*_args(case))  # as the results were written: nothing to say
    assert run.code == 0 and "model_meta.json" not in run.out


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_scoring_from_a_read_only_store_writes_nothing_there(case, reference, monkeypatch, workers):
    # A CPU node scores from the store the GPU nodes wrote, mounted read-only; the scoring
    # processes (workers=2) open it too.
    _result(case, STS).unlink()
    store = _files(case / "store")
    failed = _fail_writes(monkeypatch, errno.EROFS, _under(case / "store"))
    run = cli(
        *_args(case),
        "runtime.encode=false",
        "model.path=/nonexistent",
        f"runtime.scoring_workers={workers}",
    )
    assert run.code == 0 and run.err_lines == [], run.err
    assert run.encoded == 0
    assert re.search(r"every vector \(\d+\) came from the embedding store", run.out), run.out
    assert not failed and _files(case / "store") == store
    assert_reference_scores(case, reference)


@pytest.mark.slow
def test_scoring_from_a_store_that_is_not_there_is_refused(case, reference):
    _result(case, STS).unlink()
    nowhere = case / "nowhere"
    run = cli(*_args(case), "runtime.encode=false", f"runtime.store_dir={nowhere}")
    assert_one_error(run, 2, f"runtime.store_dir={nowhere} does not exist", "encode=false")
    assert not nowhere.exists()


@pytest.mark.slow
def test_scoring_from_a_store_of_another_model_configuration_says_so(case, reference):
    run = cli(*_args(case), "runtime.encode=false", "model.max_length=32")
    line = assert_one_error(run, 1, f"{STS} (", f"{CLS} (")
    assert "finished already" not in run.out and run.encoded == 0  # nothing was scored
    assert line.endswith(
        "a setting that changes vectors (model.*, runtime.packing) differs from the encoding "
        "run's (it holds 1 other configuration(s))"
    )


@pytest.mark.slow
def test_a_task_the_store_lacks_is_missing_from_the_summary_not_a_subset(case, reference):
    run = cli(
        *_args(case, tasks=f"{STS},{CLS},DemoEngClustering"),
        "runtime.encode=false",
        "model.path=/nonexistent",
    )
    assert_one_error(run, 1, "DemoEngClustering (")
    assert "DemoEngClustering (no result file)" in run.out  # listed as missing
    assert re.search(r"Mean\(Task\)\s+NA \(2/3\)", run.out), run.out  # no mean of the other two
    assert "subset of 2" not in run.out and run.encoded == 0


@pytest.mark.slow
def test_store_dir_that_is_a_file_is_refused(case, reference):
    store_file = case / "not_a_folder"
    store_file.write_text("x")
    before = _files(case)
    run = cli(*_args(case), f"runtime.store_dir={store_file}")
    assert_one_error(run, 2, f"runtime.store_dir={store_file} is a file, not a folder")
    assert _files(case) == before
    assert cli(*_args(case)).code == 0
    assert_reference_scores(case, reference)


@pytest.mark.slow
def test_store_disk_filling_mid_run_stops_with_one_line_and_keeps_what_was_stored(
    case, reference, monkeypatch
):
    shutil.rmtree(case / "store")
    _result(case, STS).unlink()  # DemoEngSTS is encoded again, in two calls (two shards)
    cls_before = _result(case, CLS).read_bytes()
    real = atomic._open_temp
    store_writes: list[Path] = []

    def third_store_write_fills_the_disk(tmp: Path):  # shard 1 (2 files) fits, shard 2 not
        if case / "store" not in tmp.parents or ".npy." not in tmp.name:  # not the probe
            return real(tmp)
        store_writes.append(tmp)
        return DiskFillsUp(real(tmp)) if len(store_writes) == 3 else real(tmp)

    monkeypatch.setattr(atomic, "_open_temp", third_store_write_fills_the_disk)
    run = cli(*_args(case))
    assert_one_error(
        run,
        1,
        f"runtime.store_dir={case / 'store'}: cannot write {_target(store_writes[2])}: No space",
    )
    monkeypatch.undo()
    assert_clean(case)
    assert _result(case, CLS).read_bytes() == cls_before and not _result(case, STS).exists()
    (kept,) = _shards(case)  # the shard written before the disk filled
    kept_rows = len(np.load(kept))

    rerun = cli(*_args(case))
    assert rerun.code == 0, rerun.err
    assert 0 < rerun.encoded == reference.inputs[STS] - kept_rows
    assert_reference_scores(case, reference)


@pytest.mark.slow
@pytest.mark.parametrize("fills_at", [f"{STS}.json", "run_settings.jsonl"])
def test_results_disk_filling_mid_run_stops_with_one_line_and_the_rerun_heals(
    case, reference, monkeypatch, fills_at
):
    _result(case, STS).unlink()  # evaluated again from the stored vectors
    run_settings = case / "results" / MINILM / "run_settings.jsonl"
    run_settings.write_text("".join(ln for ln in run_settings.open() if STS not in ln))
    before = _files(case)
    _fail_writes(monkeypatch, errno.ENOSPC, lambda tmp: tmp.name.startswith(f".{fills_at}."))

    run = cli(*_args(case))
    folder = case / "results"
    assert_one_error(run, 1, f"runtime.results_dir={folder}: cannot write", fills_at, "No space")
    monkeypatch.undo()
    assert_clean(case)
    after = _files(case)
    changed = {k for k in after.keys() | before.keys() if after.get(k) != before.get(k)}
    if fills_at == "run_settings.jsonl":  # killed between the two writes, in effect
        assert f"results/{MINILM}/{STS}.json" in changed
        assert changed <= {f"results/{MINILM}/{STS}.json", f"results/{MINILM}/model_meta.json"}
    else:
        assert changed == set()
    assert run_settings.read_text() == before[f"results/{MINILM}/run_settings.jsonl"].decode()

    rerun = cli(*_args(case))
    assert rerun.code == 0 and rerun.encoded == 0, rerun.err
    assert_reference_scores(case, reference)
    assert {json.loads(ln)["task"] for ln in run_settings.open()} == {STS, CLS}


# ---- bad input ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("override", "needles"),
    [
        (
            f"runtime.device=cuda:{max(7, torch.cuda.device_count())}",  # absent here
            ["runtime.device=cuda:", "CUDA device"],
        ),
        ("model=nosuch", ["model=nosuch is unknown; use one of [", "'minilm'"]),
        ("benchmark=nosuch", ["benchmark=nosuch is unknown; use one of [", "'demo_eng'"]),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(case, reference, override, needles):
    before = _files(case)
    run = cli(*_args(case), override)
    line = assert_one_error(run, 2, *needles)
    assert "search path" not in line.lower()
    assert _files(case) == before
    assert cli(*_args(case)).code == 0
    assert_reference_scores(case, reference)


def test_a_text_that_is_not_valid_unicode_is_one_line_naming_the_task(tmp_path, monkeypatch):
    from qzhou_eval.encoder.encoder import RecipeEncoder

    real = RecipeEncoder.encode

    def encode(self, inputs, **kwargs):  # the task's data holds a lone surrogate
        batches = [dict(b) for b in inputs]
        batches[0]["text"] = ["a \ud800 b", *batches[0]["text"][1:]]
        return real(self, batches, **kwargs)

    monkeypatch.setattr(RecipeEncoder, "encode", encode)
    run = cli(*_args(tmp_path, tasks=STS))
    line = assert_one_error(run, 2, f"task {STS} (test, default): text 0 is not valid Unicode")
    assert "U+D800" in line
    assert not list((tmp_path / "results").rglob("*.json"))
    assert not list((tmp_path / "results").rglob("*.yaml"))  # its record was released


@pytest.mark.slow
def test_yaml_syntax_error_in_a_config_file(case, reference, monkeypatch, tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(app.CONF_DIR, conf)
    model = conf / "model" / "minilm.yaml"
    lines = model.read_text().splitlines()
    lines.insert(3, "  pooling: [mean")
    model.write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(app, "CONF_DIR", conf)
    before = _files(case)
    run = cli(*_args(case))
    assert_one_error(run, 2, f"{model}:4: ")
    assert _files(case) == before
    monkeypatch.undo()
    assert cli(*_args(case)).code == 0
    assert_reference_scores(case, reference)


# ---- signals and races (real processes) --------------------------------------------------


def _popen(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "run_mteb.py", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


@pytest.mark.slow
def test_ctrl_c_is_one_line_exit_130_and_the_rerun_resumes(case, reference):
    _result(case, CLS).unlink()
    for keys in _shards(case):  # DemoEngClassification is encoded again: train, then test
        if keys.name not in reference.sts_shards:
            keys.unlink()
            keys.with_name(keys.name.replace(disk.KEYS, disk.VECS)).unlink()
    before = _files(case)
    proc = _popen(*_args(case))
    deadline = time.monotonic() + 300
    while len(_shards(case)) == len(reference.sts_shards):  # interrupt it mid-task
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out[-2000:], err[-2000:])
    assert [ln for ln in err.splitlines() if ln.strip()] == [app.INTERRUPTED]
    assert "Traceback" not in out + err
    assert_clean(case)
    after = _files(case)
    assert {k for k in before if after.get(k) != before[k]} == set()  # earlier files unchanged
    stored = sum(len(np.load(p)) for p in _shards(case)) - reference.inputs[STS]
    assert stored > 0

    rerun = cli(*_args(case))
    assert rerun.code == 0, rerun.err
    assert rerun.encoded == reference.inputs[CLS] - stored  # resumed from the stored vectors
    assert_reference_scores(case, reference)


@pytest.mark.slow
def test_two_identical_runs_at_once_do_not_keep_vectors_twice(reference, tmp_path):
    procs = [_popen(*_args(tmp_path, tasks=STS)) for _ in range(2)]
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        assert "Traceback" not in out + err
    store = disk.DiskStore(tmp_path / "store", _shards(reference.root)[0].parent.name)
    assert store.duplicate_rows == 0  # at the latest, the next run's open compacts them
    rows = sum(len(np.load(p)) for p in _shards(tmp_path))
    assert rows == len(store) == reference.inputs[STS]
    assert_clean(tmp_path)
    assert _scores(tmp_path)[STS] == pytest.approx(reference.scores[STS], abs=1e-6)


# ---- what an interrupted encoding call keeps ----------------------------------------------


class _InterruptedBackbone:
    """Tokenizes to one id per character; ``error`` is raised during the third batch."""

    device = torch.device("cpu")
    output_dim = 4

    def __init__(self, error: type[BaseException]) -> None:
        self.error = error
        self.batches = 0

    def tokenize(self, texts, spans=None):
        return [[1] * len(t) for t in texts]

    def collate(self, batch, pin=False):
        return {"lengths": batch.lengths.tolist()}

    def forward(self, inputs):
        self.batches += 1
        if self.batches == 3:
            raise self.error()
        return torch.tensor([[float(n)] * 4 for n in inputs["lengths"]])


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])  # Ctrl-C, a failed batch
def test_interrupted_encoding_call_stores_the_vectors_it_finished(tmp_path, error):
    from qzhou_eval.encoder.embedder import Embedder

    backbone = _InterruptedBackbone(error)
    store = disk.DiskStore(tmp_path, "fp")
    embedder = Embedder(
        lambda: backbone, tokens_per_batch=8, max_batch_size=2, store=store, progress=False
    )
    texts = [f"t{'x' * i}" for i in range(10)]
    with pytest.raises(error):
        embedder.embed(texts, "query")
    stored = [v for v in disk.DiskStore(tmp_path, "fp").get_many("query", texts) if v is not None]
    assert len(stored) >= 2  # the finished batches, though far below flush_every
    assert all(v[0] == v[1] for v in stored)
