"""``truncation: inner``: cut the task text, keep the instruction and the wrapper.

The official runs right-truncate the whole templated string at ``max_length`` tokens, so a long
text loses the wrapper's tail (for QZhou-Embedding-Zh, the PromptEOL ending and the pooled token).
Inner truncation tokenizes the full string once, finds the tokens that cover the task text (by
character offsets) and drops the text's last tokens until the whole fits. An input that already
fits is tokenized exactly as with right truncation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def inner_truncate(
    tokenizer: Any, texts: Sequence[str], spans: Sequence[tuple[int, int]], max_length: int
) -> list[list[int]]:
    enc = tokenizer(
        list(texts), truncation=False, padding=False, return_offsets_mapping=True, verbose=False
    )
    out: list[list[int]] = []
    for ids, offsets, (a, b) in zip(enc["input_ids"], enc["offset_mapping"], spans, strict=True):
        if len(ids) <= max_length:
            out.append(list(ids))
            continue
        # Tokens inside the text span. A token straddling a boundary (" Hello" after "Query:",
        # "here ”" before the wrapper tail) carries template characters and is kept.
        body = [i for i, (s, e) in enumerate(offsets) if e > s and s >= a and e <= b]
        if not body:
            out.append(list(ids[:max_length]))
            continue
        head, tail = ids[: body[0]], ids[body[-1] + 1 :]
        keep = max_length - len(head) - len(tail)
        if keep <= 0:  # the template alone is longer than max_length: plain right truncation
            out.append(list(ids[:max_length]))
            continue
        out.append(list(head) + list(ids[body[0] : body[-1] + 1][:keep]) + list(tail))
    return out
