"""Collation of token ids into padded or packed tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from qzhou_eval.models.inputs import TokenBatch, collate_packed, collate_padded

ids_lists = st.lists(
    st.lists(st.integers(min_value=0, max_value=151_000), min_size=1, max_size=12),
    min_size=1,
    max_size=8,
)


@given(ids_lists)
def test_token_batch_round_trip_and_split(ids):
    batch = TokenBatch.from_lists(ids)
    assert batch.to_lists() == ids
    assert batch.rows == len(ids) and batch.real_tokens == sum(map(len, ids))
    assert batch.padded_tokens == len(ids) * max(map(len, ids))
    for rows in (1, 2, 3):
        parts = batch.split(rows)
        assert [x for p in parts for x in p.to_lists()] == ids
        assert all(p.rows <= rows for p in parts)


@pytest.mark.parametrize("side", ["left", "right"])
def test_padded_equals_the_tokenizers_own_padding(side):
    from transformers import AutoTokenizer

    from qzhou_eval.testing.tiny_models import cached_qwen_tokenizer

    tok = AutoTokenizer.from_pretrained(cached_qwen_tokenizer())
    tok.padding_side = side
    ids = tok(["Hello world", "a", "a much longer input text here"])["input_ids"]
    expected = tok.pad({"input_ids": ids}, padding=True, return_tensors="pt")
    got = collate_padded(TokenBatch.from_lists(ids), tok.pad_token_id, side)
    assert torch.equal(got["input_ids"], expected["input_ids"])
    assert torch.equal(got["attention_mask"], expected["attention_mask"])


def test_packed_row_positions_and_boundaries():
    packed = collate_packed(TokenBatch.from_lists([[5, 6, 7], [8], [9, 10]]))
    assert packed["input_ids"].tolist() == [[5, 6, 7, 8, 9, 10]]
    assert packed["position_ids"].tolist() == [[0, 1, 2, 0, 0, 1]]
    assert packed["cu_seqlens"].tolist() == [0, 3, 4, 6]
    assert packed["cu_seqlens"].dtype == torch.int32
    assert packed["max_length"] == 3


def test_packed_refuses_an_empty_input():
    with pytest.raises(ValueError, match="empty input"):
        collate_packed(TokenBatch(np.array([1], dtype=np.int32), np.array([1, 0], dtype=np.int32)))
