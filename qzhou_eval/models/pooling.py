"""Pooling of token states into one vector per sequence, correct under left and right padding."""

from __future__ import annotations

import torch


def _last_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of the last non-padding token of each row (works for left and right padding)."""
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    return torch.where(mask.bool(), positions, torch.full_like(positions, -1)).max(dim=1).values


def _first_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of the first non-padding token of each row."""
    width = mask.shape[1]
    positions = torch.arange(width, device=mask.device).expand_as(mask)
    return torch.where(mask.bool(), positions, torch.full_like(positions, width)).min(dim=1).values


def pool(hidden: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """Pool ``hidden`` (B, L, D) over the tokens where ``mask`` (B, L) is 1.

    Computed in float32 whatever the model dtype: bf16 sums over 1024 tokens lose digits.
    - mean: average of the non-padding token states;
    - last_token: state of the last non-padding token;
    - cls: state of the first non-padding token;
    - weighted_mean: position-weighted mean, weight i for the i-th non-padding token (1-based).
    """
    h = hidden.float()
    m = mask.to(h.dtype)
    rows = torch.arange(h.shape[0], device=h.device)
    if mode == "mean":
        return (h * m.unsqueeze(-1)).sum(dim=1) / m.sum(dim=1, keepdim=True).clamp(min=1.0)
    if mode == "last_token":
        return h[rows, _last_index(mask)]
    if mode == "cls":
        return h[rows, _first_index(mask)]
    if mode == "weighted_mean":
        weights = torch.cumsum(m, dim=1) * m  # 1..n over the real tokens, 0 on padding
        weights = weights / weights.sum(dim=1, keepdim=True).clamp(min=1e-9)
        return (h * weights.unsqueeze(-1)).sum(dim=1)
    raise ValueError(f"unknown pooling mode {mode!r}")
