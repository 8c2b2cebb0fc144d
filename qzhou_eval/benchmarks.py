"""Resolve a ``benchmark`` config into the mteb task objects to run.

Official benchmarks come from ``mteb.get_benchmark``: the benchmark object carries the leaderboard's
split and subset filters, which ``mteb.get_tasks`` by name does not. Demo suites come from
:mod:`qzhou_eval.demo`.

Two narrowings, in this order: ``benchmark.tasks`` (names), then ``benchmark.num_shards`` /
``benchmark.shard`` (one of N cost-balanced shards of what remains, see :mod:`qzhou_eval.shards`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import mteb
from mteb.abstasks import AbsTask
from mteb.abstasks.retrieval import AbsTaskRetrieval

from qzhou_eval.errors import ConfigError, shown
from qzhou_eval.fresh_tasks import fresh_copy
from qzhou_eval.recipe import Side

SOURCES = ("mteb", "demo")


def load_benchmark_tasks(bench_cfg: Mapping[str, Any]) -> list[AbsTask]:
    """The tasks to run: the benchmark's, narrowed by ``tasks``, then by the shard.

    Raises ConfigError naming the unknown benchmark or task, or the bad shard setting.
    """
    from qzhou_eval.shards import check_shard_settings, shard_tasks

    num_shards, shard = check_shard_settings(
        bench_cfg.get("num_shards", 1), bench_cfg.get("shard", 0)
    )
    return shard_tasks(filtered_tasks(bench_cfg), num_shards, shard)


def is_narrowed(bench_cfg: Mapping[str, Any]) -> bool:
    """Whether the config runs less than the whole benchmark (a task list or a shard)."""
    return bench_cfg.get("tasks") is not None or bench_cfg.get("num_shards", 1) != 1


def whole_benchmark(bench_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The same benchmark config without its narrowings (every task, one shard)."""
    return {**bench_cfg, "tasks": None, "num_shards": 1, "shard": 0}


def filtered_tasks(bench_cfg: Mapping[str, Any]) -> list[AbsTask]:
    """The benchmark's tasks narrowed by ``tasks`` (not by the shard)."""
    source = bench_cfg.get("source")
    name = bench_cfg.get("name")
    if source not in SOURCES:
        raise ConfigError(
            f"benchmark.source={shown(source)} is unknown; use one of {list(SOURCES)}"
        )
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"benchmark.name={shown(name)}: give a benchmark's name")
    if source == "mteb":
        try:
            tasks = list(mteb.get_benchmark(name).tasks)
        except (KeyError, ValueError) as e:
            raise ConfigError(
                f"benchmark.name={shown(name)} is not an mteb benchmark ({e})"
            ) from None
    else:
        from qzhou_eval.demo import DEMO_SUITES, get_demo_tasks

        if name not in DEMO_SUITES:
            raise ConfigError(
                f"benchmark.name={shown(name)} is not a demo suite; "
                f"use one of {sorted(DEMO_SUITES)}"
            )
        tasks = get_demo_tasks(name)
    # fresh copies: mteb's benchmark objects are shared by every caller in the process, and an
    # earlier evaluation in it (a Hydra multirun job, a joblib worker reused) advanced their
    # random generators (see qzhou_eval.fresh_tasks)
    return [fresh_copy(t) for t in select_tasks(tasks, bench_cfg.get("tasks"), str(name))]


def select_tasks(
    tasks: Sequence[AbsTask], wanted: Sequence[str] | None, bench: str
) -> list[AbsTask]:
    """Keep the tasks named in ``wanted`` (in benchmark order); every name must exist."""
    if wanted is None:
        return list(tasks)
    if isinstance(wanted, str):
        wanted = [wanted]
    if isinstance(wanted, (bool, int, float, Mapping)):
        raise ConfigError(
            f"benchmark.tasks={shown(wanted)}: give task names, e.g. "
            f"'benchmark.tasks=[{', '.join(t.metadata.name for t in tasks[:2])}]'"
        )
    if not wanted:
        raise ConfigError(
            f"benchmark.tasks is empty: it selects no task of {bench}; name at least one task, "
            "or leave benchmark.tasks out to run them all"
        )
    by_name = {t.metadata.name: t for t in tasks}
    unknown = [w for w in wanted if w not in by_name]
    if unknown:
        raise ConfigError(
            f"benchmark.tasks: {', '.join(map(str, unknown))} not in {bench} "
            f"(known: {', '.join(sorted(by_name))})"
        )
    keep = set(wanted)
    return [t for t in tasks if t.metadata.name in keep]


def sides_of(task: AbsTask) -> tuple[Side, ...]:
    """The sides mteb encodes a task's texts with."""
    if isinstance(task, AbsTaskRetrieval):  # retrieval and reranking: queries and documents
        return ("query", "document")
    return ("none",)
