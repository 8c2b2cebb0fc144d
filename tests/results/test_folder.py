"""ResultsFolder: damaged result files are moved aside, lost run_settings lines come back."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import time
from pathlib import Path

import pytest
from mteb.results import TaskResult

from qzhou_eval import atomic
from qzhou_eval.errors import WriteError
from qzhou_eval.results import ResultsFolder
from qzhou_eval.results.folder import RUN_SETTINGS

REFERENCE = Path(__file__).resolve().parents[2] / "qzhou_eval" / "data" / "reference" / "results"
MODEL, REVISION = "Kingsoft-LLM/QZhou-Embedding", "f1e6c03ee3882e7b9fa5cec91217715272e433b8"
KWARGS = {"batch_size": 1024, "show_progress_bar": False}


@pytest.fixture
def folder(tmp_path) -> ResultsFolder:
    """A results folder holding two of the published result files."""
    src = REFERENCE / "Kingsoft-LLM__QZhou-Embedding" / REVISION
    dst = tmp_path / "results" / "Kingsoft-LLM__QZhou-Embedding" / REVISION
    dst.mkdir(parents=True)
    for name in ("STS12.json", "BIOSSES.json"):
        shutil.copy(src / name, dst / name)
    return ResultsFolder(tmp_path / "results", encode_kwargs=KWARGS)


def _path(folder: ResultsFolder, task: str) -> Path:
    return folder.get_task_result_path(task, MODEL, REVISION)


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _garbage(p: Path) -> None:
    p.write_bytes(os.urandom(2000))


def _empty(p: Path) -> None:
    p.write_bytes(b"")


def _not_a_result(p: Path) -> None:
    p.write_text('{"hello": "world"}')


@pytest.mark.parametrize("damage", [_truncate, _garbage, _empty, _not_a_result])
def test_damaged_result_is_moved_aside_with_one_warning(folder, caplog, damage):
    sts12 = _path(folder, "STS12")
    damage(sts12)
    damaged = sts12.read_bytes()
    biosses = _path(folder, "BIOSSES").read_bytes()
    with caplog.at_level(logging.WARNING, logger="qzhou_eval.results.folder"):
        assert folder.load_task_result("STS12", MODEL, REVISION) is None  # mteb evaluates again
    (warning,) = [r.getMessage() for r in caplog.records]
    (moved,) = sts12.parent.glob("STS12.json.corrupt-*")
    assert str(sts12) in warning and moved.name in warning and "evaluating STS12 again" in warning
    assert moved.read_bytes() == damaged and not sts12.exists()
    assert _path(folder, "BIOSSES").read_bytes() == biosses
    # result loaders (mteb's, the report's) read *.json: the moved file is invisible to them
    assert [p.name for p in sts12.parent.glob("*.json")] == ["BIOSSES.json"]


def test_heal_moves_a_damaged_result_aside_before_the_run_counts_it(folder, caplog):
    sts12, biosses = _path(folder, "STS12"), _path(folder, "BIOSSES")
    _truncate(sts12)
    kept = biosses.read_bytes()
    reader = ResultsFolder(folder.results_dir, writable=False)
    reader.heal(sts12, "STS12")  # a read-only folder is left as it is
    assert sts12.exists()
    with caplog.at_level(logging.WARNING, logger="qzhou_eval.results.folder"):
        folder.heal(sts12, "STS12")
        folder.heal(biosses, "BIOSSES")
        folder.heal(_path(folder, "STS13"), "STS13")  # none there
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "evaluating STS12 again" in warning
    assert not sts12.exists() and len(list(sts12.parent.glob("STS12.json.corrupt-*"))) == 1
    assert biosses.read_bytes() == kept


def test_a_folder_gone_read_only_is_named_by_the_result_not_a_scratch_file(folder, monkeypatch):
    # a read-only mount refuses the scratch file, and then even its removal
    result = TaskResult.from_disk(_path(folder, "STS12"))

    def refused(self, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))

    monkeypatch.setattr(TaskResult, "to_disk", lambda self, path: refused(path))
    monkeypatch.setattr(Path, "unlink", refused)
    with pytest.raises(WriteError) as caught:
        folder.save_to_cache(result, MODEL, REVISION)
    assert caught.value.path == _path(folder, "STS12")
    assert ".tmp" not in str(caught.value) and os.strerror(errno.EROFS) in str(caught.value)


def test_save_writes_result_meta_and_run_settings_atomically(folder):
    result = TaskResult.from_disk(_path(folder, "STS12"))
    folder.save_to_cache(result, MODEL, REVISION, encode_kwargs=KWARGS)
    saved = json.loads(_path(folder, "STS12").read_text())
    assert saved["task_name"] == "STS12"
    (line,) = [json.loads(x) for x in (_path(folder, "STS12").parent / RUN_SETTINGS).open()]
    assert line["task"] == "STS12" and line["encode_kwargs"] == KWARGS
    assert line["splits"] == ["test"] and line["version"]["mteb"]
    assert not [p for p in _path(folder, "STS12").parent.iterdir() if p.name.startswith(".")]


def test_run_settings_line_lost_between_the_two_writes_is_restored(folder, monkeypatch):
    result = TaskResult.from_disk(_path(folder, "STS12"))
    real = atomic._open_temp

    def full_at_run_settings(tmp: Path):
        if RUN_SETTINGS in tmp.name:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))
        return real(tmp)

    monkeypatch.setattr(atomic, "_open_temp", full_at_run_settings)
    with pytest.raises(WriteError, match=RUN_SETTINGS):
        folder.save_to_cache(result, MODEL, REVISION)
    monkeypatch.undo()
    run_settings = _path(folder, "STS12").parent / RUN_SETTINGS
    assert _path(folder, "STS12").exists() and not run_settings.exists()
    assert not [p for p in run_settings.parent.iterdir() if p.name.startswith(".")]

    assert folder.load_task_result("STS12", MODEL, REVISION) is not None  # the next run's lookup
    (line,) = [json.loads(x) for x in run_settings.open()]
    assert (line["task"], line["splits"], line["encode_kwargs"]) == ("STS12", ["test"], KWARGS)
    folder.load_task_result("STS12", MODEL, REVISION)
    assert len(run_settings.read_text().splitlines()) == 1  # not added twice


def test_damaged_run_settings_lines_are_dropped_on_the_next_write(folder):
    run_settings = _path(folder, "STS12").parent / RUN_SETTINGS
    run_settings.write_bytes(b'{"task": "BIOSSES", "splits": ["test"], "subsets": ["default"]}\n')
    with run_settings.open("ab") as f:
        f.write(os.urandom(500) + b"\n" + b'{"task": "STS12", "spl')  # a torn tail
    result = TaskResult.from_disk(_path(folder, "STS12"))
    folder.save_to_cache(result, MODEL, REVISION)
    tasks = [json.loads(x)["task"] for x in run_settings.read_text().splitlines()]
    assert sorted(tasks) == ["BIOSSES", "STS12"]


def test_startup_cleanup_spares_a_concurrent_runs_temp_file(folder):
    revision_dir = _path(folder, "STS12").parent
    old = atomic.temp_path(revision_dir / "A.json")
    live = atomic.temp_path(revision_dir / "B.json")
    for p in (old, live):
        p.write_text("{")
    past = time.time() - atomic.STALE_AFTER_S - 60
    os.utime(old, (past, past))
    assert folder.remove_stale_temp_files() == 1
    assert not old.exists() and live.exists()
