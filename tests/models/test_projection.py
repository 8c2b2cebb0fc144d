"""The Dense projection: sentence-transformers' module, and the plain reader used without it."""

from __future__ import annotations

import sys

import pytest
import torch

from qzhou_eval.models.projection import PlainDense, load_dense_projection
from qzhou_eval.testing.tiny_models import _write_dense


@pytest.mark.parametrize("bias", [True, False])
def test_plain_dense_equals_sentence_transformers_dense(tmp_path, bias):
    from sentence_transformers.sentence_transformer.modules import Dense

    _write_dense(tmp_path, 16, 8, seed=3, bias=bias)
    x = torch.randn(5, 16)
    expected = Dense.load(str(tmp_path / "2_Dense"))({"sentence_embedding": x})
    got = PlainDense(tmp_path / "2_Dense")({"sentence_embedding": x})
    assert torch.equal(got["sentence_embedding"], expected["sentence_embedding"])


def test_the_projection_loads_without_sentence_transformers(tmp_path, monkeypatch):
    _write_dense(tmp_path, 16, 8, seed=3, bias=True)
    with_st = load_dense_projection(str(tmp_path), "2_Dense", torch.device("cpu"))
    for name in [m for m in sys.modules if m.startswith("sentence_transformers")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    without = load_dense_projection(str(tmp_path), "2_Dense", torch.device("cpu"))
    assert isinstance(without.dense, PlainDense) and without.out_features == 8
    x = torch.randn(3, 16)
    assert torch.equal(without(x), with_st(x))
