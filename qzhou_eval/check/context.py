"""What every check shares: the settings, the model under check on the first device, the
sample inputs, the results, and the vector comparison."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from qzhou_eval.check.subject import Subject
from qzhou_eval.config.spec import RuntimeSpec
from qzhou_eval.models.inputs import TokenBatch, to_device

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


class Skip(Exception):
    """Raised by a check that does not apply here; the message says why."""


@dataclass
class Result:
    name: str
    status: str
    detail: str
    figures: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        return f"{self.status:<4}  {self.name:<20} {self.detail}"


@dataclass
class Context:
    subject: Subject
    runtime: RuntimeSpec
    check: Any  # the check section of the config
    backbone: Any  # the model under check on devices[0]
    inputs: list[str]  # sample model inputs
    ids: list[list[int]]  # their token ids

    @property
    def devices(self) -> tuple[str, ...]:
        return self.runtime.devices

    @property
    def device(self) -> torch.device:
        return self.backbone.device

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def half(self) -> bool:
        return self.subject.spec.dtype in ("bfloat16", "float16")

    @property
    def tolerance(self) -> float:
        """Largest |difference| allowed between two L2-normalized vectors of one input."""
        return float(self.check.tolerance_half if self.half else self.check.tolerance_float32)

    @functools.cached_property
    def separation(self) -> float:
        """The smallest max |difference| between the vectors of two different sample inputs.

        A random-weight model (or a model with a strong common direction) can map different
        inputs to vectors closer than the dtype tolerance; a vector then only passes when it is
        also much closer (< 1/4 of this) to its own reference than any other input's vector is.
        """
        distinct = list({tuple(x): x for x in self.ids}.values())
        v = normalized(np.concatenate([embed(self.backbone, [x]) for x in distinct]))
        if len(v) < 2:
            return float("inf")
        gaps = np.abs(v[:, None, :] - v[None, :, :]).max(axis=-1)
        np.fill_diagonal(gaps, np.inf)
        return float(gaps.min())

    def ok(self, diff: float) -> bool:
        return diff <= self.tolerance and diff < self.separation / 4

    def within(self, diff: float) -> str:
        return (
            f"max |Δ| {diff:.1e} <= {self.tolerance:.0e} ({self.subject.spec.dtype}) and < 1/4 "
            f"of the closest two different inputs' {self.separation:.1e}"
        )


def normalized(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def max_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest |difference| between the L2-normalized rows of ``a`` and ``b`` (NaN: inf)."""
    if a.shape != b.shape:
        raise AssertionError(f"shapes differ: {a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("inf")
    return float(np.abs(normalized(a) - normalized(b)).max()) if a.size else 0.0


def embed(backbone: Any, ids: list[list[int]]) -> np.ndarray:
    """One batch through ``backbone`` synchronously: float32 vectors on the CPU."""
    inputs = to_device(backbone.collate(TokenBatch.from_lists(ids)), backbone.device)
    return backbone.forward(inputs).cpu().numpy()
