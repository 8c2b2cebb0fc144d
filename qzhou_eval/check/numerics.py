"""Checks on one device: a batch equals each input alone, no NaN under padding, packed equals
padded, the asynchronous device loop equals a synchronous forward."""

from __future__ import annotations

import dataclasses

import numpy as np

from qzhou_eval.check.context import PASS, Context, Result, Skip, embed, max_diff
from qzhou_eval.encoder.batching import token_budget_batches
from qzhou_eval.encoder.engines import LocalEngine
from qzhou_eval.models.inputs import TokenBatch


def _verdict(ctx: Context, name: str, diff: float, what: str) -> Result:
    ok = ctx.ok(diff)
    return Result(name, PASS if ok else "FAIL", f"{ctx.within(diff)}; {what}", {"max_diff": diff})


def _attention(ctx: Context) -> str:
    spec = ctx.subject.spec
    parts = [f"{spec.attention} attention ({spec.attn_implementation})"]
    if spec.token_prepending.enabled:
        layers = spec.token_prepending.layers
        parts.append(f"Token Prepending layers {layers.start}..{layers.stop - 1}")
    return ", ".join(parts)


def batch_vs_alone(ctx: Context) -> Result:
    """The inputs in one batch give each input's vector when encoded alone."""
    together = embed(ctx.backbone, ctx.ids)
    alone = np.concatenate([embed(ctx.backbone, [x]) for x in ctx.ids])
    lengths = [len(x) for x in ctx.ids]
    how = (
        "one packed row"
        if ctx.subject.spec.packing
        else (f"one {ctx.subject.spec.padding_side}-padded batch")
    )
    what = f"{len(lengths)} inputs of {min(lengths)}-{max(lengths)} tokens in {how}"
    return _verdict(ctx, "batch_vs_alone", max_diff(together, alone), what)


def padding_finite(ctx: Context) -> Result:
    """No NaN or inf when short inputs are padded to a long one (fully padded attention rows)."""
    order = sorted(range(len(ctx.ids)), key=lambda i: len(ctx.ids[i]))
    ids = [ctx.ids[order[-1]], *(ctx.ids[i] for i in order[:3])]  # longest + the 3 shortest
    vectors = embed(ctx.backbone, ids)
    bad = int((~np.isfinite(vectors)).any(axis=1).sum())
    padded = len(ids[0]) - len(ids[1])
    what = f"{ctx.subject.spec.padding_side} padding of up to {padded} tokens, {_attention(ctx)}"
    if bad:
        return Result("padding_finite", "FAIL", f"{bad} of {len(ids)} vectors hold NaN/inf; {what}")
    return Result("padding_finite", PASS, f"no NaN/inf in {len(ids)} vectors; {what}")


def packed_vs_padded(ctx: Context) -> Result:
    """Padding-free packed batches give the padded batches' vectors."""
    from qzhou_eval.models.backbone import TransformersBackbone
    from qzhou_eval.models.packing import ATTN_IMPLEMENTATION, PACKED_MODEL_TYPES, kernel

    spec = ctx.subject.spec
    if spec.backend != "native":
        raise Skip("packing needs model.backend=native")
    if spec.token_prepending.enabled:
        raise Skip("packing does not support Token Prepending yet")
    model = ctx.backbone.model
    model_type = getattr(model.config, "model_type", "?")
    if model_type not in PACKED_MODEL_TYPES:
        raise Skip(f"packing supports {', '.join(PACKED_MODEL_TYPES)}; this is {model_type!r}")
    tokenizer = ctx.backbone.tokenizer
    device = str(ctx.device)
    try:
        packed = TransformersBackbone(
            dataclasses.replace(spec, packing=True), device, model=model, tokenizer=tokenizer
        )
        got = embed(packed, ctx.ids)
        model.set_attn_implementation(spec.attn_implementation)
        padded = TransformersBackbone(
            dataclasses.replace(spec, packing=False), device, model=model, tokenizer=tokenizer
        )
        expected = embed(padded, ctx.ids)
    finally:  # the model as the backbone under check uses it
        model.set_attn_implementation(
            ATTN_IMPLEMENTATION if spec.packing else spec.attn_implementation
        )
    fast = kernel()
    on_kernel = ctx.cuda and ctx.half and fast.fn is not None
    path = fast.form if on_kernel else "per-input SDPA (the exact path off CUDA / in float32)"
    return _verdict(ctx, "packed_vs_padded", max_diff(got, expected), f"packed kernel: {path}")


def async_vs_sync(ctx: Context) -> Result:
    """The device loop (prefetch, async copies, events) returns what a synchronous forward does."""
    lengths = [len(x) for x in ctx.ids]
    budget = max(max(lengths), sum(lengths) // 4)  # several batches, so that they overlap
    rows = token_budget_batches(lengths, budget, ctx.runtime.max_batch_size, None)
    batches = [TokenBatch.from_lists([ctx.ids[i] for i in r]) for r in rows]
    looped = dict(LocalEngine(ctx.backbone).run(batches))
    diff = 0.0
    for number, batch in enumerate(batches):
        sync = embed(ctx.backbone, batch.to_lists())
        diff = max(diff, max_diff(looped[number], sync))
    what = f"{len(batches)} batches; expected 0 (the same batches on the same device)"
    return _verdict(ctx, "async_vs_sync", diff, what)
