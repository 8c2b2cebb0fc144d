"""Token ids -> model input tensors: padded batches, or padding-free packed ones.

A batch travels between processes as a :class:`TokenBatch` (one flat int32 array and the lengths),
which pickles as two buffers instead of thousands of Python ints. Collation is vectorized numpy;
on CUDA the tensors are put in pinned memory so the copy to the device can run asynchronously.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class TokenBatch:
    """Token ids of several inputs: ``flat`` holds them back to back, ``lengths`` per input."""

    flat: np.ndarray  # (total,) int32
    lengths: np.ndarray  # (rows,) int32

    @classmethod
    def from_lists(cls, ids: Sequence[Sequence[int]]) -> TokenBatch:
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int32, count=len(ids))
        flat = np.fromiter(
            (t for x in ids for t in x), dtype=np.int32, count=int(lengths.sum(dtype=np.int64))
        )
        return cls(flat, lengths)

    @property
    def rows(self) -> int:
        return int(self.lengths.shape[0])

    @property
    def width(self) -> int:
        """Length of the longest input (at least 1): the padded batch's sequence length."""
        return max(int(self.lengths.max()), 1) if self.rows else 1

    @property
    def real_tokens(self) -> int:
        return int(self.lengths.sum(dtype=np.int64))

    @property
    def padded_tokens(self) -> int:
        return self.rows * self.width

    def to_lists(self) -> list[list[int]]:
        bounds = np.cumsum(self.lengths, dtype=np.int64)
        return [x.tolist() for x in np.split(self.flat, bounds[:-1])] if self.rows else []

    def split(self, rows_per_part: int) -> list[TokenBatch]:
        """Consecutive pieces of at most ``rows_per_part`` inputs each."""
        rows_per_part = max(int(rows_per_part), 1)
        if self.rows <= rows_per_part:
            return [self]
        ends = np.concatenate([[0], np.cumsum(self.lengths, dtype=np.int64)])
        parts = []
        for start in range(0, self.rows, rows_per_part):
            stop = min(start + rows_per_part, self.rows)
            parts.append(TokenBatch(self.flat[ends[start] : ends[stop]], self.lengths[start:stop]))
        return parts


def _positions(batch: TokenBatch) -> tuple[np.ndarray, np.ndarray]:
    """Row of each token and its position inside its own input."""
    rows = np.repeat(np.arange(batch.rows), batch.lengths)
    starts = np.cumsum(batch.lengths, dtype=np.int64) - batch.lengths
    within = np.arange(batch.flat.shape[0], dtype=np.int64) - np.repeat(starts, batch.lengths)
    return rows, within


def collate_padded(
    batch: TokenBatch, pad_id: int, padding_side: str, *, pin: bool = False
) -> dict[str, Any]:
    """``input_ids`` and ``attention_mask`` (rows, width), padded on ``padding_side``.

    Equal to ``tokenizer.pad(..., padding=True)`` for the same side and pad id. ``spans``: each
    row's (first real position, length) as host ints, for pooling without a device read-back.
    """
    width = batch.width
    input_ids = np.full((batch.rows, width), pad_id, dtype=np.int64)
    mask = np.zeros((batch.rows, width), dtype=np.int64)
    rows, within = _positions(batch)
    cols = (
        within + np.repeat(width - batch.lengths, batch.lengths)
        if padding_side == "left"
        else within
    )
    input_ids[rows, cols] = batch.flat
    mask[rows, cols] = 1
    lengths = batch.lengths.tolist()
    starts = [width - n for n in lengths] if padding_side == "left" else [0] * len(lengths)
    tensors = _tensors({"input_ids": input_ids, "attention_mask": mask}, pin)
    return {**tensors, "spans": list(zip(starts, lengths, strict=True))}


def collate_packed(batch: TokenBatch, *, pin: bool = False) -> dict[str, Any]:
    """One padding-free row: the inputs back to back, positions restarting at 0 for each.

    ``cu_seqlens`` (rows + 1,) int32 are the inputs' boundaries, ``max_length`` the longest input;
    the varlen attention path keeps every input's attention inside its own span. ``spans``: each
    input's (offset, length) as host ints.
    """
    if batch.rows and int(batch.lengths.min()) == 0:
        raise ValueError("a packed batch cannot hold an empty input (0 tokens)")
    _, within = _positions(batch)
    cu = np.zeros(batch.rows + 1, dtype=np.int32)
    np.cumsum(batch.lengths, out=cu[1:])
    tensors = _tensors(
        {
            "input_ids": batch.flat.astype(np.int64)[None, :],
            "position_ids": within[None, :],
            "cu_seqlens": cu,
        },
        pin,
    )
    spans = list(zip(cu[:-1].tolist(), batch.lengths.tolist(), strict=True))
    return {**tensors, "max_length": batch.width, "spans": spans}


def _tensors(arrays: dict[str, np.ndarray], pin: bool) -> dict[str, torch.Tensor]:
    out = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
    return {k: v.pin_memory() for k, v in out.items()} if pin else out


def to_device(batch: dict, device: torch.device) -> dict:
    """Tensors of a collated batch on ``device`` (asynchronously from pinned memory)."""
    return {
        k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
        for k, v in batch.items()
    }
