"""Length-sorted, token-budget batching."""

from __future__ import annotations

from collections.abc import Sequence


def token_budget_batches(
    lengths: Sequence[int], tokens_per_batch: int, max_batch_size: int
) -> list[list[int]]:
    """Group indices into batches whose padded size stays within ``tokens_per_batch``.

    Inputs are sorted longest first, so each batch pads to its first element's length and the
    padded cost of a batch is ``len(batch) * lengths[batch[0]]``. The longest batches come first:
    an out-of-memory error shows up at the start of a task, not an hour into it. A single input
    longer than the budget still gets a batch of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    width = 0
    for i in order:
        n = max(int(lengths[i]), 1)
        if current and (
            (len(current) + 1) * max(width, n) > tokens_per_batch or len(current) >= max_batch_size
        ):
            batches.append(current)
            current, width = [], 0
        current.append(i)
        width = max(width, n)
    if current:
        batches.append(current)
    return batches
