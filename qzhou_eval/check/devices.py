"""Checks over the listed devices: each gives the first one's vectors, and the worker pool gives
the in-process path's."""

from __future__ import annotations

import gc

import numpy as np

from qzhou_eval.check.context import PASS, Context, Result, Skip, max_diff
from qzhou_eval.encoder.device_loop import select_device
from qzhou_eval.encoder.engines import LocalEngine, PoolEngine
from qzhou_eval.models.inputs import TokenBatch


def _release(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        import torch

        with torch.cuda.device(device):
            torch.cuda.empty_cache()


def _looped(backbone, batches: list[TokenBatch]) -> np.ndarray:
    """The batches through the device loop (async copies and events on the backbone's device)."""
    out = dict(LocalEngine(backbone).run(batches))
    return np.concatenate([out[k] for k in range(len(batches))])


def devices_vs_first(ctx: Context) -> Result:
    """Every listed device, in this process and through the device loop (cuda:N selected, events
    on its own stream), gives the vectors of the first."""
    if len(ctx.devices) < 2:
        raise Skip(f"one device listed (runtime.devices={ctx.devices[0]})")
    batches = [TokenBatch.from_lists(ctx.ids[i : i + 3]) for i in range(0, len(ctx.ids), 3)]
    first = _looped(ctx.backbone, batches)
    worst, diffs = 0.0, {}
    try:
        for device in ctx.devices[1:]:
            backbone = ctx.subject.build(device)
            try:
                diffs[device] = diff = max_diff(_looped(backbone, batches), first)
            finally:
                del backbone
                _release(device)
            worst = max(worst, diff)
    finally:
        select_device(ctx.devices[0])  # LocalEngine selected each device in turn
    ok = ctx.ok(worst)
    each = ", ".join(f"{d} {v:.1e}" for d, v in diffs.items())
    return Result(
        "devices_vs_first",
        PASS if ok else "FAIL",
        f"{ctx.within(worst)}; against {ctx.devices[0]}: {each}",
        {"max_diff": worst},
    )


def pool_vs_in_process(ctx: Context) -> Result:
    """One worker process per listed device (as a run with several devices) gives the vectors of
    the in-process path on the first device. Runs last: it frees the in-process model first."""
    batches = [TokenBatch.from_lists([x]) for x in ctx.ids[:2]] + [TokenBatch.from_lists(ctx.ids)]
    local = dict(LocalEngine(ctx.backbone).run(batches))
    ctx.separation  # noqa: B018 - measured now, while the in-process model is there
    ctx.backbone = None  # the last check: free the model's memory for the workers' copies
    _release(ctx.devices[0])
    pool = PoolEngine(ctx.subject.spec, list(ctx.devices), ctx.subject.factory)
    try:
        pooled = dict(pool.run(batches))
    finally:
        pool.close()
    diff = max(max_diff(pooled[k], local[k]) for k in range(len(batches)))
    ok = ctx.ok(diff) and sorted(pooled) == list(range(len(batches)))
    n = len(ctx.devices)
    what = f"{n} worker process{'es' if n > 1 else ''} on {', '.join(ctx.devices)}"
    return Result(
        "pool_vs_in_process",
        PASS if ok else "FAIL",
        f"{ctx.within(diff)}; {what}",
        {"max_diff": diff, "vectors": int(sum(v.shape[0] for v in pooled.values()))},
    )
