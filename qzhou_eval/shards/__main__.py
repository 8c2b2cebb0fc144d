"""Print the shards before submitting them: ``python -m qzhou_eval.shards``.

    python -m qzhou_eval.shards benchmark=mteb_eng_v2 benchmark.num_shards=8
    python -m qzhou_eval.shards benchmark=cmteb benchmark.num_shards=2 'benchmark.tasks=[BQ,ATEC]'

Per shard: its tasks, each with its estimated cost (characters of the distinct texts it encodes,
from mteb's statistics) and share of the total. Every shard is printed, whatever
``benchmark.shard`` says (a number outside ``0..num_shards-1`` is refused, as a run refuses it).
"""

from __future__ import annotations

from qzhou_eval.early_stop import stop_early

stop_early(__name__)  # first: a Ctrl-C as the imports below run gets the command's line

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from qzhou_eval.config import hydra_app
from qzhou_eval.config.app import run_as_process


def _amount(chars: float) -> str:
    """``632.2M``: characters with a unit prefix."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if chars >= size:
            return f"{chars / size:.1f}{unit}"
    return f"{chars:.0f}"


def render_shards(bench_cfg: Mapping[str, Any]) -> str:
    """The listing of every shard of the configured (filtered) benchmark."""
    # (imported here: mteb, seconds, once the command handles Ctrl-C; see qzhou_eval.lazy)
    from qzhou_eval.benchmarks import filtered_tasks
    from qzhou_eval.shards.split import check_shard_settings, split_tasks

    # every shard is listed; a shard number the runs would refuse is refused here too
    num_shards, _ = check_shard_settings(bench_cfg.get("num_shards", 1), bench_cfg.get("shard", 0))
    shards = split_tasks(filtered_tasks(bench_cfg), num_shards)
    items = [t for s in shards for t in s.tasks]
    costed = any(t.estimated for t in items)  # else every task counts 1
    total = sum(s.cost for s in shards)

    def cost(chars: float) -> str:
        return _amount(chars) if costed else f"{chars:.0f}"

    lines = [
        f"{bench_cfg.get('name')}: {len(items)} task(s) in {num_shards} shard(s), balanced by "
        "estimated cost (characters of the distinct texts each task encodes, mteb's statistics)"
    ]
    if not costed:
        lines.append("no task has mteb statistics: each counts 1, the shards balance the count")
    elif not all(t.estimated for t in items):
        lines.append("~ = no mteb statistics: counted as the median task")
    width = max(len(t.name) for t in items)
    for shard in shards:
        lines.append(
            f"shard {shard.index}: {len(shard.tasks)} task(s), estimated cost {cost(shard.cost)} "
            f"({100 * shard.cost / total:.1f}%)"
        )
        for t in shard.tasks:
            mark = "~" if costed and not t.estimated else " "
            lines.append(
                f"  {t.name:<{width}}  {t.task.metadata.type:<18} {mark}{cost(t.cost.chars):>7}"
                f"  {100 * t.cost.chars / total:5.1f}%"
            )
    loads = [s.cost for s in shards]
    if num_shards > 1:
        lines.append(f"largest / smallest shard: {max(loads) / min(loads):.2f}")
    biggest = max(items, key=lambda t: t.cost.chars)
    if num_shards > 1 and biggest.cost.chars > total / num_shards:
        lines.append(
            f"note: {biggest.name} alone is {100 * biggest.cost.chars / total:.0f}% of the "
            f"total, more than 1/{num_shards}: no split into whole tasks balances better"
        )
    return "\n".join(lines)


@hydra_app("mteb", kept=None)
def main(cfg: DictConfig) -> None:
    print(render_shards(OmegaConf.to_container(cfg.benchmark, resolve=True)))


if __name__ == "__main__":
    run_as_process(main)
