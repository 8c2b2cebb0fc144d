"""Pooling of token states into one vector per sequence, correct under left and right padding,
and the L2 normalizations of the two numerics (``model.numerics``).

``float32`` pools in float32 whatever the model dtype (bf16 sums over 1024 tokens lose digits).
``official`` repeats the official QZhou embedder's arithmetic op for op (``embedder.py`` of
GitHub Kingsoft-LLM/QZhou-Embedding): mean pooling is, per row, the sum over the real tokens in
the model dtype divided by their count, stacked; the L2 normalization is ``F.normalize`` on that
tensor, in its dtype. The same torch ops in the same order give the same bits; a vectorized masked
sum would sum in another order, so it is a loop over rows, as there.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F


def _last_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of the last non-padding token of each row (works for left and right padding)."""
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    return torch.where(mask.bool(), positions, torch.full_like(positions, -1)).max(dim=1).values


def _first_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of the first non-padding token of each row."""
    width = mask.shape[1]
    positions = torch.arange(width, device=mask.device).expand_as(mask)
    return torch.where(mask.bool(), positions, torch.full_like(positions, width)).min(dim=1).values


def pool(
    hidden: torch.Tensor,
    mask: torch.Tensor,
    mode: str,
    numerics: str = "float32",
    spans: Sequence[tuple[int, int]] | None = None,
) -> torch.Tensor:
    """Pool ``hidden`` (B, L, D) over the tokens where ``mask`` (B, L) is 1.

    - mean: average of the non-padding token states;
    - last_token: state of the last non-padding token;
    - cls: state of the first non-padding token;
    - weighted_mean: position-weighted mean, weight i for the i-th non-padding token (1-based);
    - max: the largest value of each dimension over the non-padding tokens;
    - mean_sqrt_len: the sum of the non-padding token states divided by the square root of
      their count (sentence-transformers' ``mean_sqrt_len_tokens``).

    ``numerics="float32"`` returns float32. ``"official"`` returns what the official embedder's
    pooling returns: mean in the model dtype (see :func:`official_mean`); last_token / cls are the
    model-dtype states (indexing is exact, the cast to float32 is left to the caller);
    weighted_mean is float32 as there (its float32 weights promote the product); the official
    embedders have no other mode, so the others pool in float32 under either numerics.

    ``spans``: each row's (first real position, real token count), known on the host from the
    batch's lengths; the official mean then needs no host synchronisation to find them.
    """
    if numerics == "official":
        if mode == "mean":
            return official_mean(hidden, mask, spans)
        if mode in ("last_token", "cls"):
            rows = torch.arange(hidden.shape[0], device=hidden.device)
            index = _last_index(mask) if mode == "last_token" else _first_index(mask)
            return hidden[rows, index]
    elif numerics != "float32":
        raise ValueError(f"unknown numerics {numerics!r}")
    h = hidden.float()
    m = mask.to(h.dtype)
    rows = torch.arange(h.shape[0], device=h.device)
    if mode in ("mean", "mean_sqrt_len"):
        count = m.sum(dim=1, keepdim=True).clamp(min=1.0)
        return (h * m.unsqueeze(-1)).sum(dim=1) / (count if mode == "mean" else count.sqrt())
    if mode == "max":  # (exact in any dtype: the float32 cast keeps every value)
        return h.masked_fill(~mask.bool().unsqueeze(-1), float("-inf")).max(dim=1).values
    if mode == "last_token":
        return h[rows, _last_index(mask)]
    if mode == "cls":
        return h[rows, _first_index(mask)]
    if mode == "weighted_mean":
        weights = torch.cumsum(m, dim=1) * m  # 1..n over the real tokens, 0 on padding
        weights = weights / weights.sum(dim=1, keepdim=True).clamp(min=1e-9)
        return (h * weights.unsqueeze(-1)).sum(dim=1)
    raise ValueError(f"unknown pooling mode {mode!r}")


def official_mean(
    hidden: torch.Tensor, mask: torch.Tensor, spans: Sequence[tuple[int, int]] | None = None
) -> torch.Tensor:
    """The official mean pooling, in ``hidden``'s dtype: per row ``h[i, a:a+n].sum(0) / n``.

    ``n`` is the row's token count as a 0-d integer tensor on the device (``mask.sum(-1)[i]``, as
    the official loop divides by; a Python int would be converted differently) and ``a`` its first
    real position; with left padding ``h[i, a:a+n]`` is the official ``h[i, -n:]``, the same view.
    Rows must be contiguous runs of real tokens (padding on one side). ``spans`` gives each row's
    (a, n) from the host; without it they are read back from the device.
    """
    lengths = mask.sum(dim=-1).clamp(min=1)  # an empty row gives zeros, not 0/0
    if spans is None:
        spans = list(zip(_first_index(mask).tolist(), lengths.tolist(), strict=True))
    return official_span_means(hidden, spans, lengths)


def official_span_means(
    hidden: torch.Tensor, spans: Sequence[tuple[int, int]], lengths: torch.Tensor
) -> torch.Tensor:
    """``stack([h[i][a:a+n].sum(0) / lengths[i]])`` over rows of a padded (B, L, D) batch, or
    over the inputs of one packed row (``hidden`` (T, D), ``a`` an offset into it)."""
    packed = hidden.dim() == 2
    rows = [
        (hidden[a : a + n] if packed else hidden[i, a : a + n]).sum(dim=0) / lengths[i]
        for i, (a, n) in enumerate(spans)
    ]
    return torch.stack(rows, dim=0)


def official_normalize(vectors: torch.Tensor) -> torch.Tensor:
    """The official embedder's L2 normalization: ``F.normalize(p=2, dim=-1)`` in the input dtype."""
    return F.normalize(vectors, p=2, dim=-1)


def normalize_rows(vectors: np.ndarray, numerics: str = "float32") -> np.ndarray:
    """L2-normalize each row of a float32 array.

    ``official``: sklearn's ``normalize``, which the official QZhou-Embedding-Zh script applies
    after cutting to the MRL dim (bit-exact needs the same function: it sums the squares with
    ``einsum``, numpy's ``norm`` sums in another order). ``float32``: ``x / max(|x|, 1e-12)``
    with ``numpy.linalg.norm``.
    """
    if numerics == "official":
        from sklearn.preprocessing import normalize

        return normalize(vectors, norm="l2")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
