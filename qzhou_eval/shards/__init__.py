"""Cost-balanced task shards: ``benchmark.num_shards=N benchmark.shard=K``.

``python -m qzhou_eval.shards benchmark=mteb_eng_v2 benchmark.num_shards=4`` prints the split.
"""

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
