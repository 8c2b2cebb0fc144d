"""Two runs of one configuration into one results folder: a task the other run is evaluating now is
left to it and waited for, then counted (its result) or evaluated here (its writer gone)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from qzhou_eval import atomic
from qzhou_eval.runs import other_runs
from qzhou_eval.runs.identity import RESULT_DIGEST
from tests.in_process import qzhou_eval

TASK = "DemoEngSTS"


def _folders(minilm_demo: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    """A copy of the session's demo results and store; the folder of MiniLM's results."""
    results, store = tmp_path / "results", tmp_path / "store"
    shutil.copytree(minilm_demo / "results", results)
    shutil.copytree(minilm_demo / "store", store)
    (result,) = results.glob(f"*/*/{TASK}.json")
    return results, store, result.parent


def _held_by(folder: Path, pid: int) -> tuple[bytes, bytes]:
    """Turn the task's finished result and record into those of a run that is evaluating it
    (process ``pid`` of this host, the record without its result yet); return the finished
    result's and record's bytes, as that run will write them."""
    result, record = folder / f"{TASK}.json", folder / "qzhou_eval_records" / f"{TASK}.yaml"
    finished = result.read_bytes(), record.read_bytes()
    data = yaml.safe_load(finished[1])
    data.pop(RESULT_DIGEST)
    data["writer"] = {**atomic.this_process(), "pid": pid}
    record.write_text(yaml.safe_dump(data, sort_keys=False))
    result.unlink()
    return finished


def _when_waiting(monkeypatch: pytest.MonkeyPatch, then: Callable[[], None]) -> list[float]:
    """Do ``then`` (the other run ends) at the first poll of a run that waits for it."""
    polls: list[float] = []

    def sleep(seconds: float) -> None:
        if not polls:
            then()
        polls.append(seconds)

    monkeypatch.setattr(other_runs, "time", SimpleNamespace(sleep=sleep))
    return polls


# (each runner, each ending: the two others share their code; the suite's time is kept down)
@pytest.mark.parametrize(("workers", "ends"), [(0, "finished"), (2, "killed")])
def test_a_task_another_run_evaluates_is_waited_for(
    minilm_demo, tmp_path, monkeypatch, workers, ends
):
    results, store, folder = _folders(minilm_demo, tmp_path)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        result_bytes, record_bytes = _held_by(folder, other.pid)

        def other_run_ends() -> None:
            if ends == "finished":  # its result and sealed record
                (folder / f"{TASK}.json").write_bytes(result_bytes)
                (folder / "qzhou_eval_records" / f"{TASK}.yaml").write_bytes(record_bytes)
            other.kill()
            other.wait()

        polls = _when_waiting(monkeypatch, other_run_ends)
        run = qzhou_eval(
            "run",
            "model=minilm",
            "benchmark=demo_eng",
            f"benchmark.tasks=[{TASK},DemoEngClassification]",
            f"runtime.results_dir={results}",
            f"runtime.store_dir={store}",
            f"runtime.scoring_workers={workers}",
        )
    finally:
        other.kill()
        other.wait()
    assert run.code == 0, run.err[-3000:]
    assert polls, "the run did not wait for the other"
    assert f"waiting for another run of this configuration (pid {other.pid} on " in run.out
    by_others = (
        f"finished by another run of this configuration meanwhile, not evaluated here: {TASK}"
    )
    assert (by_others in run.out) == (ends == "finished"), run.out
    # counted in the summary, and (finished by the other run) its very file, not written again
    assert "not counted" not in run.out and "unknown" not in run.out, run.out
    assert (folder / f"{TASK}.json").exists()
    if ends == "finished":
        assert (folder / f"{TASK}.json").read_bytes() == result_bytes
    else:  # its writer gone without a result: evaluated here after all (a wall time line)
        assert f"the other run left {TASK} without a result (stopped, or failed it): " in run.out
        assert re.search(rf"^  {TASK} +[\d.]+ s$", run.out, re.M), run.out
    record = yaml.safe_load((folder / "qzhou_eval_records" / f"{TASK}.yaml").read_text())
    assert record[RESULT_DIGEST]  # sealed: its result is vouched for


def test_a_task_another_run_finished_before_this_one_got_to_it_is_said_so(
    minilm_demo, tmp_path, monkeypatch
):
    # (listed with its wall time, as if this run had evaluated it)
    from qzhou_eval.runs import runner

    results, store, folder = _folders(minilm_demo, tmp_path)
    result, record = folder / f"{TASK}.json", folder / "qzhou_eval_records" / f"{TASK}.yaml"
    finished = result.read_bytes(), record.read_bytes()
    result.unlink()
    record.unlink()
    score, restored = runner.score, []

    def other_run_finishes_it(encoder, task, *args, **kwargs):
        if task.metadata.name != TASK and not restored:  # while this run scores another task
            record.write_bytes(finished[1])
            result.write_bytes(finished[0])
            restored.append(task.metadata.name)
        return score(encoder, task, *args, **kwargs)

    monkeypatch.setattr(runner, "score", other_run_finishes_it)
    run = qzhou_eval(
        "run",
        "model=minilm",
        "benchmark=demo_eng",
        f"benchmark.tasks=[DemoEngReranking,{TASK}]",  # (in that order)
        f"runtime.results_dir={results}",
        f"runtime.store_dir={store}",
        "runtime.scoring_workers=0",
    )
    assert run.code == 0, run.err[-3000:]
    assert restored == ["DemoEngReranking"]
    assert f"meanwhile, not evaluated here: {TASK}" in run.out, run.out
    assert not re.search(rf"^  {TASK} +[\d.]+ s$", run.out, re.M), run.out
    assert result.read_bytes() == finished[0]
