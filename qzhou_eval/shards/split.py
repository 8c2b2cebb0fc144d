"""Split a task list into N shards of balanced estimated cost, the same way in every job.

Every job of a sweep computes the split for itself (no coordinator), so it depends only on the
task list and mteb's statistics: tasks in decreasing cost (ties by name) each go to the shard with
the least cost so far (ties: the lowest shard number), the classic longest-processing-time rule
(within 4/3 of the best possible makespan). Each shard lists its tasks in benchmark order.

A task without mteb statistics counts as the median cost of the tasks that have them; when none
has any (the demo suites), every task counts 1 and the shards balance the number of tasks.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from mteb.abstasks import AbsTask

from qzhou_eval.errors import ConfigError, is_int, quoted_hint, shown
from qzhou_eval.shards.cost import Cost, estimate_cost

UNIT = Cost(0.0, 1.0)  # what a task counts when no task of the list has statistics


@dataclass(frozen=True)
class TaskCost:
    """A task and what it is estimated to cost. ``estimated``: from mteb's statistics."""

    task: AbsTask
    cost: Cost
    estimated: bool

    @property
    def name(self) -> str:
        return self.task.metadata.name


@dataclass(frozen=True)
class Shard:
    index: int
    tasks: tuple[TaskCost, ...]

    @property
    def cost(self) -> float:
        return sum(t.cost.chars for t in self.tasks)


def task_costs(tasks: Sequence[AbsTask]) -> list[TaskCost]:
    """Every task's cost; tasks without statistics get the fallback (see the module docstring)."""
    estimates = [estimate_cost(t) for t in tasks]
    known = [c for c in estimates if c is not None]
    fallback = (
        Cost(statistics.median(c.texts for c in known), statistics.median(c.chars for c in known))
        if known
        else UNIT
    )
    return [
        TaskCost(t, c if c is not None else fallback, c is not None)
        for t, c in zip(tasks, estimates, strict=True)
    ]


def check_shard_settings(num_shards: object, shard: object) -> tuple[int, int]:
    """``benchmark.num_shards`` and ``benchmark.shard`` as ints; a bad value is a ConfigError."""
    if not is_int(num_shards) or num_shards < 1:
        quoted = quoted_hint(num_shards, lambda v: is_int(v) and v >= 1)
        raise ConfigError(
            f"benchmark.num_shards={shown(num_shards)} must be a positive integer{quoted}"
        )
    if not is_int(shard) or not 0 <= shard < num_shards:
        valid = "0" if num_shards == 1 else f"0 to {num_shards - 1}"
        quoted = quoted_hint(shard, lambda v: is_int(v) and 0 <= v < num_shards)
        raise ConfigError(
            f"benchmark.shard={shown(shard)} is not a shard of benchmark.num_shards={num_shards}; "
            f"use {valid}{quoted}"
        )
    return num_shards, shard


def split_tasks(tasks: Sequence[AbsTask], num_shards: int) -> list[Shard]:
    """The ``num_shards`` shards of ``tasks``; each task is in exactly one."""
    if num_shards > len(tasks):
        raise ConfigError(
            f"benchmark.num_shards={num_shards} is more than the {len(tasks)} task(s) to split; "
            f"use at most {len(tasks)}"
        )
    costs = task_costs(tasks)
    order = {t.name: i for i, t in enumerate(costs)}
    loads = [0.0] * num_shards
    members: list[list[TaskCost]] = [[] for _ in range(num_shards)]
    for item in sorted(costs, key=lambda t: (-t.cost.chars, t.name)):
        target = min(range(num_shards), key=lambda k: (loads[k], k))
        loads[target] += item.cost.chars
        members[target].append(item)
    return [Shard(k, tuple(sorted(m, key=lambda t: order[t.name]))) for k, m in enumerate(members)]


def shard_tasks(tasks: Sequence[AbsTask], num_shards: int, shard: int) -> list[AbsTask]:
    """The tasks of shard ``shard`` of ``num_shards`` (all of them when there is one shard)."""
    num_shards, shard = check_shard_settings(num_shards, shard)
    if num_shards == 1:
        return list(tasks)
    return [t.task for t in split_tasks(tasks, num_shards)[shard].tasks]
