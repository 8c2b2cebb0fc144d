"""Padding-free packed batches give the vectors of padded batches."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from qzhou_eval.models.backbone import TransformersBackbone
from qzhou_eval.models.inputs import TokenBatch, collate_padded
from qzhou_eval.models.packing import pool_packed
from qzhou_eval.models.pooling import pool
from tests.models.conftest import native_spec

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEXTS = ["Hello world", "a", "Instruct: find it\nQuery: a much longer input text here", "你好"]


@pytest.mark.parametrize("mode", ["mean", "last_token", "cls", "weighted_mean"])
def test_packed_pooling_equals_padded_pooling(mode):
    lengths = [3, 1, 5, 2]
    torch.manual_seed(0)
    states = [torch.randn(n, 8) for n in lengths]
    cu = torch.tensor([0, 3, 4, 9, 11], dtype=torch.int32)
    packed = pool_packed(torch.cat(states), cu, mode)
    for side in ("left", "right"):
        padded = torch.zeros(4, 5, 8)
        mask = torch.zeros(4, 5, dtype=torch.long)
        for r, s in enumerate(states):
            cols = slice(5 - len(s), 5) if side == "left" else slice(0, len(s))
            padded[r, cols], mask[r, cols] = s, 1
        torch.testing.assert_close(packed, pool(padded, mask, mode), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("attention", "pooling"), [("bidirectional", "mean"), ("causal", "last_token")]
)
def test_packed_forward_equals_padded_forward(tiny_qwen2, attention, pooling):
    spec = native_spec(tiny_qwen2, attention=attention, pooling=pooling)
    padded_bb = TransformersBackbone(spec)
    packed_bb = TransformersBackbone(dataclasses.replace(spec, packing=True))
    ids = padded_bb.tokenize(TEXTS)
    expected = padded_bb.embed_ids(ids)
    got = packed_bb.embed_ids(ids)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    # the packed forward saw one row without padding
    inputs = packed_bb.collate(TokenBatch.from_lists(ids))
    assert inputs["input_ids"].shape == (1, sum(map(len, ids)))
    assert collate_padded(TokenBatch.from_lists(ids), 0, "left")["input_ids"].numel() > (
        inputs["input_ids"].numel()
    )


def test_packing_is_in_the_fingerprint(tiny_qwen2):
    spec = native_spec(tiny_qwen2)
    packed = dataclasses.replace(spec, packing=True)
    assert "packing" not in spec.fingerprint_fields()  # unchanged for every existing run
    assert packed.fingerprint_fields()["packing"] is True


@pytest.mark.parametrize("mode", ["mean", "last_token"])
def test_packed_official_pooling_is_bit_identical_to_padded(mode):
    lengths = [3, 1, 5, 2]
    torch.manual_seed(1)
    states = [torch.randn(n, 8).to(torch.bfloat16) for n in lengths]
    cu = torch.tensor([0, 3, 4, 9, 11], dtype=torch.int32)
    spans = [(0, 3), (3, 1), (4, 5), (9, 2)]
    packed = pool_packed(torch.cat(states), cu, mode, "official", spans)
    padded = torch.zeros(4, 5, 8, dtype=torch.bfloat16)
    mask = torch.zeros(4, 5, dtype=torch.long)
    for r, s in enumerate(states):
        padded[r, 5 - len(s) :], mask[r, 5 - len(s) :] = s, 1
    expected = pool(padded, mask, mode, "official")
    assert packed.dtype == torch.bfloat16 and torch.equal(packed, expected)
