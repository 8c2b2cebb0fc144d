"""Padding-free packed batches: variable-length attention and per-input pooling.

``runtime.packing: true`` concatenates a batch's inputs into one row and keeps each input's
attention inside its own span, so no compute is spent on padding. The attention runs through
transformers' attention interface (a registered function, like its ``flash_attention_2``
varlen path, reading ``cu_seq_lens_q`` / ``max_length_q`` from the forward's kwargs):

- on CUDA with bfloat16/float16: ``torch.nn.attention.varlen.varlen_attn`` (PyTorch's
  FlashAttention varlen kernel; no extra package), non-causal when the module's ``is_causal`` is
  False (QZhou-Embedding's bidirectional attention), causal otherwise. Its keywords changed
  between torch releases (2.10: ``is_causal``; 2.11/2.12: ``scale``, ``window_size``; 2.13+:
  also ``enable_gqa``, required when K/V have fewer heads), so the call form is read from its
  signature once, when packing is set up (:func:`register`), never at the first forward; without
  ``enable_gqa`` grouped K/V heads are expanded to the query heads first;
- elsewhere (CPU, float32): SDPA over each input's span, one call per input; exact, slow, meant
  for tests and for checking the CUDA path against.

The published scores were computed with padded SDPA batches, so packing is off by default and a
packed run's vectors are filed apart (it is part of the model fingerprint).
"""

from __future__ import annotations

import inspect
import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from qzhou_eval.models.pooling import official_span_means

logger = logging.getLogger(__name__)

ATTN_IMPLEMENTATION = "qzhou_varlen"
PACKED_MODEL_TYPES = ("qwen2", "qwen3", "llama", "mistral")


@dataclass(frozen=True)
class VarlenKernel:
    """How this torch's ``varlen_attn`` is called (read from its signature, once)."""

    fn: Callable[..., torch.Tensor] | None  # None: no varlen_attn (torch < 2.10)
    gqa_flag: bool = False  # takes enable_gqa (2.13+); else grouped K/V heads are expanded
    window: bool = False  # takes window_size (2.11+); else is_causal (2.10)
    scale: bool = False  # takes scale (2.11+)

    @classmethod
    def of(cls, fn: Callable[..., torch.Tensor] | None) -> VarlenKernel:
        if fn is None:
            return cls(None)
        params = inspect.signature(fn).parameters
        window = "window_size" in params
        if not window and "is_causal" not in params:
            return cls(None)  # a form this code does not know: the exact SDPA loop instead
        return cls(fn, "enable_gqa" in params, window, "scale" in params)

    @property
    def form(self) -> str:
        if self.fn is None:
            return "none (per-input SDPA)"
        if self.gqa_flag:
            return "varlen_attn(enable_gqa=, window_size=, scale=) (torch >= 2.13)"
        if self.window:
            return "varlen_attn(window_size=, scale=), K/V heads expanded (torch 2.11-2.12)"
        return "varlen_attn(is_causal=), K/V heads expanded (torch 2.10)"

    def __call__(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        cu: torch.Tensor,
        max_length: int,
        causal: bool,
        scale: float | None,
    ) -> torch.Tensor:
        """(tokens, heads, dim) in, (tokens, heads, dim) out."""
        assert self.fn is not None
        kwargs: dict[str, object] = {}
        heads, kv_heads = q.shape[1], k.shape[1]
        if self.gqa_flag:
            kwargs["enable_gqa"] = kv_heads != heads
        elif kv_heads != heads:  # query head h reads K/V head h // (heads / kv_heads)
            k = k.repeat_interleave(heads // kv_heads, dim=1, output_size=heads)
            v = v.repeat_interleave(heads // kv_heads, dim=1, output_size=heads)
        if self.window:
            kwargs["window_size"] = (-1, 0) if causal else (-1, -1)
        else:
            kwargs["is_causal"] = causal
        if self.scale:
            kwargs["scale"] = scale
        elif scale is not None and abs(scale - q.shape[-1] ** -0.5) > 1e-9:
            raise ValueError(f"this torch's varlen_attn has no scale argument (scale={scale})")
        return self.fn(q, k, v, cu, cu, max_length, max_length, **kwargs)


def varlen_kernel() -> VarlenKernel:
    """This torch's ``varlen_attn`` and its call form."""
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return VarlenKernel(None)
    return VarlenKernel.of(varlen_attn)


# Set by register(), when a packed backbone is built: the kernel every packed forward uses.
_kernel: VarlenKernel | None = None


def kernel() -> VarlenKernel:
    """The call form decided by :func:`register` (decided now if it was not called)."""
    global _kernel
    if _kernel is None:
        _kernel = varlen_kernel()
    return _kernel


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
    fast = kernel()
    if fast.fn is not None and q.is_cuda and q.dtype in (torch.bfloat16, torch.float16):
        out = fast(q, k, v, cu, int(max_length), causal, scaling)
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
    """Register the packed attention with transformers (idempotent) and decide, from the
    installed torch's signature, how ``varlen_attn`` is called; returns the attention's name."""
    from transformers import AttentionInterface

    global _kernel
    _kernel = varlen_kernel()
    logger.info("packed attention: %s on CUDA, per-input SDPA elsewhere", _kernel.form)
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
    segment = torch.repeat_interleave(
        torch.arange(rows, device=h.device), lengths, output_size=h.shape[0]
    )  # output_size: no device-to-host read of the lengths
    if mode in ("mean", "mean_sqrt_len"):
        sums = torch.zeros(rows, h.shape[1], dtype=h.dtype, device=h.device)
        sums.index_add_(0, segment, h)
        count = lengths.clamp(min=1).unsqueeze(1).to(h.dtype)
        return sums / (count if mode == "mean" else count.sqrt())
    if mode == "max":
        highest = torch.full((rows, h.shape[1]), float("-inf"), dtype=h.dtype, device=h.device)
        return highest.scatter_reduce(0, segment.unsqueeze(1).expand_as(h), h, reduce="amax")
    if mode == "weighted_mean":
        within = torch.arange(h.shape[0], device=h.device) - cu[:-1][segment]
        weights = (within + 1).to(h.dtype)
        totals = torch.zeros(rows, dtype=h.dtype, device=h.device).index_add_(0, segment, weights)
        sums = torch.zeros(rows, h.shape[1], dtype=h.dtype, device=h.device)
        sums.index_add_(0, segment, h * weights.unsqueeze(1))
        return sums / totals.clamp(min=1e-9).unsqueeze(1)
    raise ValueError(f"unknown pooling mode {mode!r}")
