"""Out-of-memory recovery on CUDA, under a capped memory fraction: a batch that cannot fit is
split, memory is freed, and the limit learned is sane."""

from __future__ import annotations

import gc
import math

import numpy as np
import torch

from qzhou_eval.check.context import PASS, Context, Result, Skip, embed, max_diff
from qzhou_eval.check.inputs import synthetic_ids
from qzhou_eval.encoder.device_loop import DeviceLoop
from qzhou_eval.errors import DeviceError
from qzhou_eval.models.inputs import TokenBatch

_GIB = 2**30


def oom_recovery(ctx: Context) -> Result:
    if not ctx.cuda:
        raise Skip("needs a CUDA device (out-of-memory recovery is the CUDA path)")
    device = ctx.device
    fraction = float(ctx.check.oom_memory_fraction)
    total = torch.cuda.get_device_properties(device).total_memory
    width = ctx.subject.spec.max_length
    vocab = len(ctx.backbone.tokenizer)
    with torch.cuda.device(device):
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.set_per_process_memory_fraction(fraction, device)
        try:
            before = torch.cuda.memory_allocated(device)
            # Activation memory per token, measured on two full-length inputs.
            torch.cuda.reset_peak_memory_stats(device)
            probe = synthetic_ids([width] * 2, vocab, seed=1)
            embed(ctx.backbone, probe)
            per_token = max((torch.cuda.max_memory_allocated(device) - before) / (2 * width), 1)
            room = fraction * total - before
            if room < 4 * per_token * width:
                raise Skip(
                    f"the model leaves {max(room, 0) / _GIB:.1f} GiB under a {fraction:.0%} cap, "
                    "less than 4 full-length inputs need; raise check.oom_memory_fraction"
                )
            rows = max(math.ceil(1.5 * room / per_token / width), 2)  # 1.5x what can fit
            ids = synthetic_ids([width] * rows, vocab, seed=2)
            loop = DeviceLoop(ctx.backbone)
            try:
                got = np.concatenate([v for _, v in loop.run([(0, TokenBatch.from_lists(ids))])])
                stopped = ""
            except DeviceError as e:  # split down to one input that still did not fit
                got, stopped = np.zeros((0, 1), dtype=np.float32), str(e)
            gc.collect()
            torch.cuda.empty_cache()
            after = torch.cuda.memory_allocated(device)
            reference = None if stopped else embed(ctx.backbone, ids[:4])  # a batch that fits
        finally:
            torch.cuda.set_per_process_memory_fraction(1.0, device)
            torch.cuda.empty_cache()
    fits = room / per_token  # tokens one batch could hold by the measurement
    limit = loop.token_limit
    diff = max_diff(got[:4], reference) if reference is not None else float("inf")
    problems = [f"the split run stopped: {stopped}"] if stopped else []
    if limit is None:
        problems.append(f"no out-of-memory error at {rows * width} tokens (cap {fraction:.0%})")
    elif limit < fits / 4:
        problems.append(f"learned limit {limit} tokens is below 1/4 of the {fits:.0f} that fit")
    if not stopped and (got.shape[0] != rows or not np.isfinite(got).all()):
        problems.append("vectors missing or not finite")
    if not stopped and not ctx.ok(diff):
        problems.append(f"vectors differ from a batch that fits (max |Δ| {diff:.1e})")
    if after - before > 256 * 2**20:
        problems.append(f"{(after - before) / _GIB:.2f} GiB still allocated after the run")
    what = (
        f"memory capped at {fraction:.0%} of {total / _GIB:.0f} GiB; a batch of {rows} x {width} "
        f"tokens; learned limit {limit} tokens (about {fits:.0f} fit); {ctx.within(diff)}"
    )
    if problems:
        return Result("oom_recovery", "FAIL", "; ".join(problems) + f"; {what}")
    return Result("oom_recovery", PASS, what, {"token_limit": limit, "tokens_fit": int(fits)})
