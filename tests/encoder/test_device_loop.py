"""The device loop: order, prefetch errors, and out-of-memory handling that learns."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from qzhou_eval.encoder.device_loop import DeviceLoop, prefetch
from qzhou_eval.errors import DeviceError
from qzhou_eval.models.inputs import TokenBatch, collate_padded


class FakeBackbone:
    """Vectors = (row sum of ids, row length); fails with CUDA OOM above ``fits`` tokens."""

    device = torch.device("cpu")
    output_dim = 2
    packing = False

    def __init__(self, fits: int | None = None) -> None:
        self.fits = fits
        self.forward_calls = 0
        self.attempts: list[int] = []  # padded sizes the loop tried

    def collate(self, batch: TokenBatch, pin: bool = False):
        return collate_padded(batch, 0, "left")

    def forward(self, inputs):
        ids, mask = inputs["input_ids"], inputs["attention_mask"]
        self.attempts.append(ids.numel())
        if self.fits is not None and ids.numel() > self.fits:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (fake)")
        self.forward_calls += 1
        return torch.stack([(ids * mask).sum(1), mask.sum(1)], dim=1).float()


def _batches(sizes):
    return [TokenBatch.from_lists([[r + 1] * width for r in range(rows)]) for rows, width in sizes]


def _expected(batch: TokenBatch) -> np.ndarray:
    return np.array([[sum(x), len(x)] for x in batch.to_lists()], dtype=np.float32)


def test_vectors_come_back_in_order():
    batches = _batches([(4, 8), (3, 5), (2, 2), (1, 1)])
    out = list(DeviceLoop(FakeBackbone()).run(enumerate(batches)))
    assert [k for k, _ in out] == [0, 1, 2, 3]
    for (_, got), batch in zip(out, batches, strict=True):
        np.testing.assert_array_equal(got, _expected(batch))


def test_out_of_memory_splits_and_later_batches_use_the_learned_limit(caplog):
    backbone = FakeBackbone(fits=40)
    loop = DeviceLoop(backbone)
    batches = _batches([(8, 10), (8, 10), (6, 10), (4, 4)])
    with caplog.at_level(logging.WARNING):
        out = dict(loop.run(enumerate(batches)))
    for k, batch in enumerate(batches):
        np.testing.assert_array_equal(out[k], _expected(batch))
    assert loop.token_limit == 40  # 80 failed, then halves of 40 fit
    # Only the first batch ever failed: later large batches were split before they ran.
    assert sum(1 for a in backbone.attempts if a > 40) == 1
    warnings = [r for r in caplog.records if "out of memory" in r.getMessage()]
    assert len(warnings) == 1 and "80 tokens" in warnings[0].getMessage()


def test_one_input_that_does_not_fit_is_one_clear_error():
    loop = DeviceLoop(FakeBackbone(fits=5))
    with pytest.raises(DeviceError, match=r"out of memory on cpu for one input of 9 tokens"):
        list(loop.run(enumerate(_batches([(2, 9)]))))


def test_prefetch_reraises_producer_errors_and_reports_readiness():
    def items():
        yield 1
        raise RuntimeError("boom")

    it = prefetch(items(), depth=2)
    assert next(it) == 1
    with pytest.raises(RuntimeError, match="boom"):
        next(it)
    done = prefetch(iter([]), depth=1)
    assert list(done) == []
