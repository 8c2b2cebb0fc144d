"""Resolve a ``benchmark`` config into the mteb task objects to run.

Official benchmarks come from ``mteb.get_benchmark``: the benchmark object carries the leaderboard's
split and subset filters, which ``mteb.get_tasks`` by name does not. Demo suites come from
:mod:`qzhou_eval.demo`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import mteb
from mteb.abstasks import AbsTask

from qzhou_eval.errors import ConfigError

SOURCES = ("mteb", "demo")


def load_benchmark_tasks(bench_cfg: Mapping[str, Any]) -> list[AbsTask]:
    """All tasks of the configured benchmark, narrowed by ``tasks`` when it is set.

    Raises ConfigError naming the unknown benchmark or task.
    """
    source = bench_cfg.get("source")
    name = bench_cfg.get("name")
    if source not in SOURCES:
        raise ConfigError(f"benchmark.source={source!r} is unknown; use one of {list(SOURCES)}")
    if source == "mteb":
        try:
            tasks = list(mteb.get_benchmark(name).tasks)
        except (KeyError, ValueError) as e:
            raise ConfigError(f"benchmark.name={name!r} is not an mteb benchmark ({e})") from None
    else:
        from qzhou_eval.demo import DEMO_SUITES, get_demo_tasks

        if name not in DEMO_SUITES:
            raise ConfigError(
                f"benchmark.name={name!r} is not a demo suite; use one of {sorted(DEMO_SUITES)}"
            )
        tasks = get_demo_tasks(name)
    return select_tasks(tasks, bench_cfg.get("tasks"), str(name))


def select_tasks(
    tasks: Sequence[AbsTask], wanted: Sequence[str] | None, bench: str
) -> list[AbsTask]:
    """Keep the tasks named in ``wanted`` (in benchmark order); every name must exist."""
    if wanted is None:
        return list(tasks)
    if isinstance(wanted, str):
        wanted = [wanted]
    by_name = {t.metadata.name: t for t in tasks}
    unknown = [w for w in wanted if w not in by_name]
    if unknown:
        raise ConfigError(
            f"benchmark.tasks: {', '.join(map(str, unknown))} not in {bench} "
            f"(known: {', '.join(sorted(by_name))})"
        )
    keep = set(wanted)
    return [t for t in tasks if t.metadata.name in keep]
