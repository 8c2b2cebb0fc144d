"""Length-sorted, token-budget batches with bounded padding.

A padded batch costs ``len(batch) * longest`` tokens of compute, of which only the real tokens are
useful. Sorting by length and cutting on a token budget alone is not enough: a batch of 512 short
texts whose lengths range from 30 down to 10 is half padding. So a batch here is cut when the
budget, the row limit *or* the padding limit would be exceeded: its padded size stays within
``max_padding`` of its real tokens. On real length distributions (many texts of every length) the
batches are still full; only the few batches at the edges of a length range get shorter.
"""

from __future__ import annotations

from collections.abc import Sequence


def token_budget_batches(
    lengths: Sequence[int],
    tokens_per_batch: int,
    max_batch_size: int,
    max_padding: float | None = None,
) -> list[list[int]]:
    """Group indices into batches whose padded size stays within ``tokens_per_batch``.

    Inputs are sorted longest first, so each batch pads to its first element's length and its
    padded cost is ``len(batch) * lengths[batch[0]]``. The longest batches come first: an
    out-of-memory error shows up at the start of a task, not an hour into it. A single input
    longer than the budget still gets a batch of its own.

    ``max_padding`` (e.g. 0.03): a batch is also cut before its padding tokens would exceed that
    fraction of its padded size, so every batch has ``real / padded >= 1 - max_padding``.
    None: no padding limit (budget and row limit only).
    """
    if max_padding is not None and not 0.0 <= max_padding < 1.0:
        raise ValueError(f"max_padding must be in [0, 1), got {max_padding}")
    min_fill = 1.0 - max_padding if max_padding is not None else 0.0
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    width = 0
    real = 0
    for i in order:
        n = max(int(lengths[i]), 1)
        if current:
            rows = len(current) + 1
            # Sorted longest first: the width of the batch is its first element's length.
            if (
                rows * width > tokens_per_batch
                or rows > max_batch_size
                or real + n < min_fill * rows * width
            ):
                batches.append(current)
                current, real = [], 0
        if not current:
            width = n
        current.append(i)
        real += n
    if current:
        batches.append(current)
    return batches


def packed_batches(
    lengths: Sequence[int], tokens_per_batch: int, max_batch_size: int
) -> list[list[int]]:
    """Batches for padding-free packing: longest first, up to ``tokens_per_batch`` real tokens.

    A packed batch costs its real tokens (plus attention, quadratic in each input's own length),
    so only the total and the row count are bounded. An input longer than the budget still gets
    a batch of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    total = 0
    for i in order:
        n = max(int(lengths[i]), 1)
        if current and (total + n > tokens_per_batch or len(current) >= max_batch_size):
            batches.append(current)
            current, total = [], 0
        current.append(i)
        total += n
    if current:
        batches.append(current)
    return batches


def padded_tokens(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> int:
    """Tokens the batches cost once padded to their longest input."""
    return sum(len(b) * max(max(int(lengths[i]), 1) for i in b) for b in batches if b)


def padding_efficiency(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> float:
    """Real tokens / padded tokens over all batches (1.0 = no padding at all)."""
    padded = padded_tokens(lengths, batches)
    real = sum(max(int(lengths[i]), 1) for b in batches for i in b)
    return real / padded if padded else 1.0
