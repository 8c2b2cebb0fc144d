"""Tokens/s, model FLOPs utilization and peak memory at two batch budgets, and the
``runtime.tokens_per_batch`` the memory figures suggest.

FLOPs per input of L real tokens: ``2 * P * L + 4 * layers * hidden * L**2`` (P: parameters
outside the embedding tables; the second term: attention scores and their weighted sum over the
whole input, as for bidirectional attention; a causal model needs half of it, so its MFU is
slightly overstated). MFU = FLOPs / seconds / the device's dense bf16 peak (known GPUs only).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from qzhou_eval.check.context import PASS, Context, Result
from qzhou_eval.check.inputs import synthetic_ids, synthetic_lengths
from qzhou_eval.encoder.batching import token_budget_batches
from qzhou_eval.encoder.engines import LocalEngine
from qzhou_eval.models.inputs import TokenBatch

PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "H800": 989e12, "H20": 148e12, "A100": 312e12}
PEAK_BF16.update({"A800": 312e12, "L40S": 362e12, "B200": 2250e12})
_GIB = 2**30
_MEMORY_TARGET = 0.85  # of the device's memory, for the suggested budget
_CPU_TOKENS = 8192  # timed on a CPU: enough for a rate, short enough for a check


def flops(lengths: list[int], params: int, layers: int, hidden: int) -> float:
    x = np.asarray(lengths, dtype=np.float64)
    return float(2 * params * x.sum() + 4 * layers * hidden * (x**2).sum())


def _architecture(backbone) -> tuple[int, int, int]:
    """(parameters outside the embeddings, layers, hidden size) of the backbone's model."""
    model = getattr(backbone, "model", None)
    config = getattr(model, "config", None)
    if config is None:  # sentence-transformers: the Transformer module's model
        inner = model[0].auto_model
        model, config = inner, inner.config
    params = sum(p.numel() for n, p in model.named_parameters() if "embed" not in n)
    return params, int(config.num_hidden_layers), int(config.hidden_size)


def suggest_budget(points: list[tuple[int, int]], total: int, cap: int, floor: int) -> int | None:
    """Budget whose peak memory reaches the target share of ``total``, from (budget, peak)
    points of a line; None when the points do not grow."""
    (b1, m1), (b2, m2) = points[0], points[-1]
    if b2 <= b1 or m2 <= m1:
        return None
    slope = (m2 - m1) / (b2 - b1)
    base = m1 - slope * b1
    budget = int((_MEMORY_TARGET * total - base) / slope) // 1024 * 1024
    return int(min(max(budget, floor), cap))


def throughput(ctx: Context) -> Result:
    spec, runtime = ctx.subject.spec, ctx.runtime
    budgets = list(ctx.check.budgets or [runtime.tokens_per_batch, 2 * runtime.tokens_per_batch])
    total_tokens = int(ctx.check.speed_tokens or (4 * max(budgets) if ctx.cuda else _CPU_TOKENS))
    lengths = synthetic_lengths(total_tokens, spec.max_length)
    ids = synthetic_ids(lengths, len(ctx.backbone.tokenizer))
    params, layers, hidden = _architecture(ctx.backbone)
    work = flops(lengths, params, layers, hidden)
    name = torch.cuda.get_device_name(ctx.device) if ctx.cuda else "cpu"
    peak = next((v for k, v in PEAK_BF16.items() if k in name), None) if ctx.cuda else None
    engine = LocalEngine(ctx.backbone)
    rows, points, parts = [], [], []
    for budget in budgets:
        cut = token_budget_batches(lengths, budget, runtime.max_batch_size, runtime.max_padding)
        batches = [TokenBatch.from_lists([ids[i] for i in r]) for r in cut]
        # warm-up: every batch once, so that each shape's kernels are chosen and the memory
        # pools grown before the clock starts (one batch was not enough on an H200: the first
        # budget timed at 11,439 tokens/s, the second at 27,594, a run's batches at 37,000)
        list(engine.run(batches))
        if ctx.cuda:
            torch.cuda.synchronize(ctx.device)
            torch.cuda.reset_peak_memory_stats(ctx.device)
        started = time.perf_counter()
        for _ in engine.run(batches):
            pass
        if ctx.cuda:
            torch.cuda.synchronize(ctx.device)
        seconds = time.perf_counter() - started
        rate = sum(lengths) / seconds
        row = {"budget": budget, "tokens_per_s": round(rate, 1), "seconds": round(seconds, 3)}
        text = f"budget {budget}: {rate:,.0f} tokens/s"
        if peak:
            row["mfu"] = round(work / seconds / peak, 4)
            text += f", MFU {row['mfu']:.1%}"
        if ctx.cuda:
            memory = torch.cuda.max_memory_allocated(ctx.device)
            row["peak_memory_gib"] = round(memory / _GIB, 2)
            points.append((budget, memory))
            text += f", peak {memory / _GIB:.1f} GiB"
        rows.append(row)
        parts.append(text)
    figures: dict = {"budgets": rows, "tokens": sum(lengths), "flops_per_pass": work}
    detail = f"{sum(lengths)} tokens on {name}; " + "; ".join(parts)
    if ctx.cuda:
        total = torch.cuda.get_device_properties(ctx.device).total_memory
        cap = runtime.max_batch_size * spec.max_length
        suggested = suggest_budget(points, total, cap, spec.max_length)
        figures["suggested_tokens_per_batch"] = suggested
        if suggested is not None:
            detail += (
                f"; suggested runtime.tokens_per_batch={suggested} (peak memory linear in the "
                f"budget, up to {_MEMORY_TARGET:.0%} of {total / _GIB:.0f} GiB)"
            )
    else:
        detail += "; peak memory, MFU and a suggested budget need a CUDA device"
    if peak is None and ctx.cuda:
        detail += f"; MFU: no known bf16 peak for {name}"
    ok = all(np.isfinite(r["tokens_per_s"]) and r["tokens_per_s"] > 0 for r in rows)
    return Result("throughput", PASS if ok else "FAIL", detail, figures)
