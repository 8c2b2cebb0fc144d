"""Cost-balanced task shards: ``benchmark.num_shards=N benchmark.shard=K``.

``python -m qzhou_eval.shards benchmark=mteb_eng_v2 benchmark.num_shards=4`` prints the split.
"""

from typing import TYPE_CHECKING

from qzhou_eval.lazy import lazy_names

if TYPE_CHECKING:
    from qzhou_eval.shards.cost import Cost, estimate_cost
    from qzhou_eval.shards.split import (
        Shard,
        TaskCost,
        check_shard_settings,
        shard_tasks,
        split_tasks,
        task_costs,
    )

__all__ = [
    "Cost",
    "Shard",
    "TaskCost",
    "check_shard_settings",
    "estimate_cost",
    "shard_tasks",
    "split_tasks",
    "task_costs",
]
__getattr__ = lazy_names(
    __name__,
    {
        "Cost": ".cost",
        "estimate_cost": ".cost",
        "Shard": ".split",
        "TaskCost": ".split",
        "check_shard_settings": ".split",
        "shard_tasks": ".split",
        "split_tasks": ".split",
        "task_costs": ".split",
    },
)
