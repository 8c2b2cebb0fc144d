"""Benchmark config -> the tasks to run: the task filter first, then the shard."""

from __future__ import annotations

import pytest

from qzhou_eval.benchmarks import is_narrowed, load_benchmark_tasks, whole_benchmark
from qzhou_eval.errors import ConfigError
from qzhou_eval.report import benchmark_info

DEMO = {"key": "demo_eng", "source": "demo", "name": "demo_eng", "tasks": None}


def _names(tasks) -> list[str]:
    return [t.metadata.name for t in tasks]


def test_shards_split_the_filtered_tasks():
    three = ["DemoEngSTS", "DemoEngRetrieval", "DemoEngClustering"]
    cfg = {**DEMO, "tasks": three, "num_shards": 2}
    parts = [_names(load_benchmark_tasks({**cfg, "shard": k})) for k in (0, 1)]
    assert sorted(parts[0] + parts[1]) == sorted(three)
    assert [len(p) for p in parts] == [2, 1]


def test_no_shard_settings_mean_one_shard():
    assert len(load_benchmark_tasks(DEMO)) == 5
    assert not is_narrowed(DEMO) and not is_narrowed({**DEMO, "num_shards": 1, "shard": 0})


def test_a_shard_is_reported_as_a_subset_of_the_whole_benchmark():
    cfg = {**DEMO, "num_shards": 2, "shard": 1}
    tasks = load_benchmark_tasks(cfg)
    info = benchmark_info(cfg, tasks)
    assert len(tasks) == 2 and info.n_full == 5  # the run summary says "subset of 2 of its 5"
    assert is_narrowed(cfg) and not is_narrowed(whole_benchmark(cfg))


def test_a_name_that_is_not_a_text_is_one_line():
    # (mteb's get_benchmark(5) was a TypeError traceback in the report)
    for source, name in (("mteb", 5), ("mteb", ""), ("demo", None)):
        with pytest.raises(ConfigError, match=r"^benchmark\.name=.*: give a benchmark's name$"):
            load_benchmark_tasks({**DEMO, "source": source, "name": name})
