"""Padding-free packed batches give the vectors of padded batches."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
import torch

from qzhou_eval.config.spec import POOLING_MODES
from qzhou_eval.models.backbone import TransformersBackbone
from qzhou_eval.models.inputs import TokenBatch, collate_padded
from qzhou_eval.models.packing import pool_packed
from qzhou_eval.models.pooling import pool
from tests.models.conftest import native_spec

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEXTS = ["Hello world", "a", "Instruct: find it\nQuery: a much longer input text here", "你好"]


@pytest.mark.parametrize("mode", POOLING_MODES)
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


# --- the CUDA varlen kernel's call form, per torch release (run here with fakes) ---------------


def _reference_varlen(q, k, v, cu, causal, scale):
    """Per-span SDPA over (tokens, heads, dim) tensors: what every varlen_attn form computes."""
    out = torch.empty_like(q)
    bounds = cu.tolist()
    for start, stop in itertools.pairwise(bounds):
        span = slice(start, stop)
        out[span] = torch.nn.functional.scaled_dot_product_attention(
            q[span].transpose(0, 1),
            k[span].transpose(0, 1),
            v[span].transpose(0, 1),
            is_causal=causal,
            scale=scale,
            enable_gqa=True,
        ).transpose(0, 1)
    return out


def varlen_attn_2_11(
    query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, *, return_aux=None, scale=None,
    window_size=(-1, -1),
):  # fmt: skip
    """torch 2.11's signature: no enable_gqa; K/V must have the query's heads."""
    assert key.shape[1] == query.shape[1], "2.11 fake: K/V heads must equal the query heads"
    assert window_size in ((-1, -1), (-1, 0))
    return _reference_varlen(query, key, value, cu_seq_q, window_size == (-1, 0), scale)


def varlen_attn_2_13(
    query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, *, return_aux=None, scale=None,
    window_size=(-1, -1), enable_gqa=False,
):  # fmt: skip
    """torch 2.13's signature: enable_gqa required for grouped K/V heads."""
    if key.shape[1] != query.shape[1] and not enable_gqa:
        raise RuntimeError("2.13 fake: grouped K/V heads need enable_gqa=True")
    return _reference_varlen(query, key, value, cu_seq_q, window_size == (-1, 0), scale)


class _Attn(torch.nn.Module):
    def __init__(self, causal: bool) -> None:
        super().__init__()
        self.is_causal = causal


@pytest.fixture
def tensors_claim_cuda(monkeypatch):
    """CPU tensors that say they are on CUDA, so the kernel branch runs here (with a fake); the
    kernel decided by register() is put back after the test."""
    from qzhou_eval.models import packing

    monkeypatch.setattr(torch.Tensor, "is_cuda", property(lambda self: True), raising=False)
    monkeypatch.setattr(packing, "_kernel", getattr(packing, "_kernel", None), raising=False)


def _packed_attention(causal: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The packed attention's output and the reference, grouped K/V heads (4 query, 2 K/V)."""
    from qzhou_eval.models import packing

    torch.manual_seed(0)
    cu = torch.tensor([0, 3, 4, 9], dtype=torch.int32)
    q = torch.randn(1, 4, 9, 8, dtype=torch.bfloat16)  # (1, heads, tokens, dim)
    k, v = (torch.randn(1, 2, 9, 8, dtype=torch.bfloat16) for _ in range(2))
    out, _ = packing.varlen_attention(
        _Attn(causal), q, k, v, None, 0.3, cu_seq_lens_q=cu, max_length_q=5
    )
    expected = _reference_varlen(*(t[0].transpose(0, 1) for t in (q, k, v)), cu, causal, 0.3)
    return out[0], expected


@pytest.mark.parametrize("fake", [varlen_attn_2_11, varlen_attn_2_13])
@pytest.mark.parametrize("causal", [False, True])
def test_varlen_kernel_call_matches_the_installed_torch_signature(
    monkeypatch, tensors_claim_cuda, fake, causal
):
    import torch.nn.attention.varlen as varlen

    from qzhou_eval.models import packing

    monkeypatch.setattr(varlen, "varlen_attn", fake)
    packing.register()
    out, expected = _packed_attention(causal)
    assert torch.equal(out, expected)


def test_the_varlen_call_form_is_decided_at_load_time(monkeypatch, tensors_claim_cuda):
    import torch.nn.attention.varlen as varlen

    from qzhou_eval.models import packing

    def not_at_the_forward(*args, **kwargs):
        raise AssertionError("varlen_attn was looked up again at the forward")

    monkeypatch.setattr(varlen, "varlen_attn", varlen_attn_2_11)
    packing.register()  # a packed backbone calls this when it loads
    monkeypatch.setattr(varlen, "varlen_attn", not_at_the_forward)
    out, expected = _packed_attention(causal=False)
    assert torch.equal(out, expected)


def test_the_kernel_form_is_read_from_the_signature():
    from qzhou_eval.models.packing import VarlenKernel

    old, new = VarlenKernel.of(varlen_attn_2_11), VarlenKernel.of(varlen_attn_2_13)
    assert old.window and not old.gqa_flag and "2.11" in old.form
    assert new.window and new.gqa_flag and "2.13" in new.form
    assert VarlenKernel.of(None).fn is None
