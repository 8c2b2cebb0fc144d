"""A run without data.mirror on a machine told to stay offline: one line, nothing created."""

from __future__ import annotations

import time
from pathlib import Path

import datasets.config
import huggingface_hub.constants
import pytest

from qzhou_eval.mirror.offline import check_offline_data, offline_setting
from tests.in_process import Run, qzhou_eval


@pytest.fixture
def empty_caches(tmp_path, monkeypatch) -> tuple[Path, Path]:
    data, hub = tmp_path / "hf-datasets", tmp_path / "hf-hub"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", data)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return data, hub


def _run(tmp_path: Path, *extra: str) -> Run:
    return qzhou_eval(
        "run",
        "model=minilm",
        "benchmark.tasks=[STSBenchmark]",
        f"runtime.results_dir={tmp_path / 'results'}",
        f"runtime.store_dir={tmp_path / 'store'}",
        "runtime.progress=false",
        *extra,
    )


def _one_line(run: Run) -> str:
    assert run.code == 2, run.err[-3000:]
    assert "Traceback" not in run.err + run.out
    (line,) = run.err_lines
    assert line.startswith("error: ")
    return line


def test_offline_without_mirror_is_one_line_before_anything_is_created(tmp_path, empty_caches):
    started = time.monotonic()
    line = _one_line(_run(tmp_path))
    assert time.monotonic() - started < 30  # no retries against the network
    assert (
        "HF_HUB_OFFLINE=1 and no data.mirror: task STSBenchmark reads mteb/stsbenchmark-sts@"
        in line
    )
    assert "set data.mirror=<folder>" in line
    assert "python -m qzhou_eval.mirror benchmark=mteb_eng_v2 data.mirror=<folder>" in line
    assert not (tmp_path / "results").exists() and not (tmp_path / "store").exists()


@pytest.mark.slow
def test_offline_without_mirror_finished_tasks_need_no_data(tmp_path, empty_caches):
    import mteb

    from tests.mirror.repo_writer import write_task_repo

    (sts,) = [
        t for t in mteb.get_benchmark("MTEB(eng, v2)").tasks if t.metadata.name == "STSBenchmark"
    ]
    pairs = [("a man plays", "a man is playing", 4.0), ("cats", "stocks fell", 0.0)]
    write_task_repo(tmp_path / "mirror", sts, pairs=pairs)
    first = _run(tmp_path, f"data.mirror={tmp_path / 'mirror'}")  # the pinned data, mirrored
    assert first.code == 0, first.err[-3000:]
    again = _run(tmp_path)  # offline, no mirror, nothing cached: the result is finished
    assert again.code == 0 and again.err_lines == [], again.err[-3000:]
    assert "STSBenchmark" in again.out and again.encoded == 0


def test_offline_with_a_cache_that_cannot_serve_the_data_is_one_line(tmp_path, empty_caches):
    _, hub = empty_caches
    (hub / "datasets--mteb--stsbenchmark-sts").mkdir(parents=True)  # present, but no snapshot
    line = _one_line(_run(tmp_path))
    assert "task STSBenchmark could not read mteb/stsbenchmark-sts@" in line
    assert "Couldn't reach" in line and "set data.mirror=<folder>" in line
    assert not list((tmp_path / "results").rglob("*.yaml"))  # its record was released


def test_online_or_demo_tasks_are_not_checked(monkeypatch):
    import mteb

    from qzhou_eval.demo import get_demo_tasks

    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    assert offline_setting() is None
    (sts,) = [
        t for t in mteb.get_benchmark("MTEB(eng, v2)").tasks if t.metadata.name == "STSBenchmark"
    ]
    check_offline_data([sts], "hint")  # online: the Hub is tried as usual
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "true")
    assert offline_setting() == "HF_DATASETS_OFFLINE=true"
    check_offline_data(get_demo_tasks("demo_eng"), "hint")  # built locally: nothing to reach


@pytest.fixture
def hub_unreachable(empty_caches, monkeypatch) -> tuple[Path, Path]:
    from qzhou_eval.mirror import offline

    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(offline, "reachable", lambda: False)  # the connection probe fails
    return empty_caches


def test_online_with_the_hub_unreachable_is_one_line_in_seconds(tmp_path, hub_unreachable):
    # without it, datasets retries each request with back-off (about a minute, a line a retry)
    started = time.monotonic()
    line = _one_line(_run(tmp_path))
    assert time.monotonic() - started < 30
    assert (
        "the Hugging Face Hub (huggingface.co) cannot be reached and there is no data.mirror"
        in line
    )
    assert "task STSBenchmark reads mteb/stsbenchmark-sts@" in line
    assert "python -m qzhou_eval.mirror benchmark=mteb_eng_v2 data.mirror=<folder>" in line
    assert not (tmp_path / "results").exists() and not (tmp_path / "store").exists()

    # the cache holds it: read it from there, offline
    _, hub = hub_unreachable
    (hub / "datasets--mteb--stsbenchmark-sts").mkdir(parents=True)
    line = _one_line(_run(tmp_path))
    assert "cannot be reached: set HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1" in line


def test_the_hub_is_not_probed_offline_for_local_data_or_when_it_answers(monkeypatch):
    import mteb

    from qzhou_eval.demo import get_demo_tasks
    from qzhou_eval.mirror import offline

    probes = []
    monkeypatch.setattr(offline, "reachable", lambda: probes.append(1) or True)
    (sts,) = [
        t for t in mteb.get_benchmark("MTEB(eng, v2)").tasks if t.metadata.name == "STSBenchmark"
    ]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline.check_hub_data([sts], "hint")  # offline: check_offline_data's case
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    offline.check_hub_data(get_demo_tasks("demo_eng"), "hint")  # nothing read from the Hub
    assert probes == []
    offline.check_hub_data([sts], "hint")  # online, and it answers
    assert probes == [1]
