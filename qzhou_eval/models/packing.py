"""Padding-free packed batches: variable-length attention and per-input pooling.

``runtime.packing: true`` concatenates a batch's inputs into one row and keeps each input's
attention inside its own span, so no compute is spent on padding. The attention runs through
transformers' attention interface (a registered function, like its ``flash_attention_2``
varlen path, reading ``cu_seq_lens_q`` / ``max_length_q`` from the forward's kwargs):

- on CUDA with bfloat16/float16: ``torch.nn.attention.varlen.varlen_attn`` (PyTorch's
  FlashAttention varlen kernel; no extra package), non-causal when the module's ``is_causal`` is
  False (QZhou-Embedding's bidirectional attention), causal otherwise;
- elsewhere (CPU, float32): SDPA over each input's span, one call per input; exact, slow, meant
  for tests and for checking the CUDA path against.

The published scores were computed with padded SDPA batches, so packing is off by default and a
packed run's vectors are filed apart (it is part of the model fingerprint).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from qzhou_eval.models.pooling import official_span_means

ATTN_IMPLEMENTATION = "qzhou_varlen"
PACKED_MODEL_TYPES = ("qwen2", "qwen3", "llama", "mistral")


def varlen_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: object,
) -> tuple[torch.Tensor, None]:
    """transformers attention-interface function for one packed row.

    ``query`` (1, heads, tokens, head_dim), ``key``/``value`` (1, kv_heads, tokens, head_dim);
    returns (1, tokens, heads, head_dim) like transformers' own SDPA function.
    """
    cu = kwargs.get("cu_seq_lens_q")
    max_length = kwargs.get("max_length_q")
    if cu is None or max_length is None or query.shape[0] != 1:
        raise ValueError(
            f"{ATTN_IMPLEMENTATION} attention needs one packed row with cu_seq_lens_q and "
            "max_length_q (runtime.packing); got a padded batch"
        )
    causal = bool(getattr(module, "is_causal", True))
    q, k, v = (t[0].transpose(0, 1) for t in (query, key, value))  # (tokens, heads, dim)
    gqa = k.shape[1] != q.shape[1]
    if q.is_cuda and q.dtype in (torch.bfloat16, torch.float16):
        from torch.nn.attention.varlen import varlen_attn

        out = varlen_attn(
            q,
            k,
            v,
            cu,
            cu,
            int(max_length),
            int(max_length),
            scale=scaling,
            window_size=(-1, 0) if causal else (-1, -1),
            enable_gqa=gqa,
        )
    else:
        out = torch.empty_like(q)
        bounds = cu.tolist()
        for start, stop in itertools.pairwise(bounds):
            span = slice(start, stop)
            out[span] = F.scaled_dot_product_attention(
                q[span].transpose(0, 1),
                k[span].transpose(0, 1),
                v[span].transpose(0, 1),
                is_causal=causal,
                scale=scaling,
                enable_gqa=gqa,
            ).transpose(0, 1)
    return out.unsqueeze(0), None


def register() -> str:
    """Register the packed attention with transformers (idempotent); returns its name."""
    from transformers import AttentionInterface

    AttentionInterface.register(ATTN_IMPLEMENTATION, varlen_attention)
    return ATTN_IMPLEMENTATION


def pool_packed(
    hidden: torch.Tensor,
    cu_seqlens: torch.Tensor,
    mode: str,
    numerics: str = "float32",
    spans: Sequence[tuple[int, int]] | None = None,
) -> torch.Tensor:
    """Pool a packed row's states (tokens, dim) per input, as :func:`pool` would pool them padded.

    ``numerics="official"``: mean per input in the model dtype (the official per-row sum and
    division, ``spans`` = each input's (offset, length) from the host); last/first token states
    in the model dtype. Otherwise in float32.
    """
    cu = cu_seqlens.to(device=hidden.device, dtype=torch.long)
    lengths = cu[1:] - cu[:-1]
    rows = lengths.shape[0]
    if numerics == "official" and mode in ("mean", "last_token", "cls"):
        if mode == "mean":
            if spans is None:
                spans = list(zip(cu[:-1].tolist(), lengths.tolist(), strict=True))
            return official_span_means(hidden, spans, lengths)
        return hidden[cu[1:] - 1] if mode == "last_token" else hidden[cu[:-1]]
    h = hidden.float()
    if mode == "last_token":
        return h[cu[1:] - 1]
    if mode == "cls":
        return h[cu[:-1]]
    segment = torch.repeat_interleave(torch.arange(rows, device=h.device), lengths)
    if mode == "mean":
        sums = torch.zeros(rows, h.shape[1], dtype=h.dtype, device=h.device)
        sums.index_add_(0, segment, h)
        return sums / lengths.clamp(min=1).unsqueeze(1).to(h.dtype)
    if mode == "weighted_mean":
        within = torch.arange(h.shape[0], device=h.device) - cu[:-1][segment]
        weights = (within + 1).to(h.dtype)
        totals = torch.zeros(rows, dtype=h.dtype, device=h.device).index_add_(0, segment, weights)
        sums = torch.zeros(rows, h.shape[1], dtype=h.dtype, device=h.device)
        sums.index_add_(0, segment, h * weights.unsqueeze(1))
        return sums / totals.clamp(min=1e-9).unsqueeze(1)
    raise ValueError(f"unknown pooling mode {mode!r}")
