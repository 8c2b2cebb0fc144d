"""Output precisions: mteb's own quantization and filing, and the size of a stored vector."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from mteb.models import CompressionWrapper, ModelMeta
from mteb.types import OutputDType

from qzhou_eval.precision import (
    DEFAULT_PRECISION,
    PRECISIONS,
    Point,
    bytes_per_vector,
    compressed_meta,
    quantizer,
)
from qzhou_eval.report.discover import experiment_point
from qzhou_eval.testing.meta import stand_in_meta

COMPRESSED = [p for p in PRECISIONS if p != DEFAULT_PRECISION]


def _meta(experiment_kwargs=None) -> ModelMeta:
    return stand_in_meta("org/model", 64, revision="rev", experiment_kwargs=experiment_kwargs)


class _Fixed:
    """An encoder that returns fixed vectors, for mteb's wrapper to quantize."""

    def __init__(self, vectors: np.ndarray, meta: ModelMeta) -> None:
        self.vectors, self.mteb_model_meta = vectors, meta

    def encode(self, inputs, **kwargs):
        return self.vectors


def _vectors(n: int = 50, dim: int = 64) -> np.ndarray:
    v = np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_precisions_are_mtebs_output_dtypes():
    assert set(PRECISIONS) == {d.value for d in OutputDType}
    assert PRECISIONS[0] == DEFAULT_PRECISION == "float32"


@pytest.mark.parametrize("precision", COMPRESSED)
def test_quantization_equals_mtebs_compression_wrapper(precision):
    """The same vectors through mteb's wrapper and through ours: equal values, equal dtype."""
    vectors = _vectors()
    wrapper = CompressionWrapper(_Fixed(vectors, _meta()), OutputDType(precision))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fewer than 10,000 vectors calibrate (int types)
        theirs = wrapper.encode(None, task_metadata=None, hf_split="test", hf_subset="default")
    ours = quantizer(_meta(), precision)(vectors.copy())
    assert ours.dtype == theirs.dtype
    assert torch.equal(ours, theirs)


def test_float32_is_no_quantization():
    assert quantizer(_meta(), DEFAULT_PRECISION) is None
    meta = _meta({"embed_dim": 32})
    assert compressed_meta(meta, DEFAULT_PRECISION) is meta


def test_integer_ranges_are_calibrated_per_call():
    """Like mteb's wrapper: each call's own minimum and maximum per dimension."""
    quantize = quantizer(_meta(), "int8")
    vectors = _vectors()
    together = quantize(vectors)
    alone = quantize(vectors[:10])
    assert not torch.equal(together[:10], alone)
    assert together.min() == -128 and together.max() <= 127


@pytest.mark.parametrize("kwargs", [None, {"embed_dim": 32}, {"embed_dim": 32, "variant": "ab"}])
def test_results_are_filed_as_mteb_files_them(kwargs):
    theirs = CompressionWrapper(_Fixed(_vectors(), _meta(kwargs)), OutputDType.INT8).mteb_model_meta
    ours = compressed_meta(_meta(kwargs), "int8")
    assert ours.model_dump() == theirs.model_dump()
    assert experiment_point(ours.experiment_name) == (
        (kwargs or {}).get("embed_dim"),
        "int8",
        "variant_ab" if kwargs and "variant" in kwargs else None,
    )


def test_experiment_points():
    assert experiment_point(None) == (None, "float32", None)
    assert experiment_point("embed_dim_128") == (128, "float32", None)
    assert experiment_point("output_dtypes_binary") == (None, "binary", None)
    assert experiment_point("embed_dim_64__output_dtypes_float8_e4m3fn") == (
        64,
        "float8_e4m3fn",
        None,
    )
    assert experiment_point("embed_dim_64__output_dtypes_int8__variant_1a") == (
        64,
        "int8",
        "variant_1a",
    )
    assert experiment_point("experiment_my__name__output_dtypes_int4") == (
        None,
        "int4",
        "experiment_my__name",
    )
    assert experiment_point("output_dtypes_int7") == (None, "float32", "output_dtypes_int7")


def test_bytes_per_vector():
    assert bytes_per_vector(384, "float32") == 1536
    assert bytes_per_vector(384, "bfloat16") == 768
    assert bytes_per_vector(384, "int8") == bytes_per_vector(384, "float8_e5m2") == 384
    assert bytes_per_vector(384, "uint4") == 192
    assert bytes_per_vector(384, "binary") == 48
    assert bytes_per_vector(12, "binary") == 1.5


def test_point():
    assert Point() == Point(None, "float32")
    assert str(Point(128, "int8")) == "dim 128 int8" and str(Point()) == "full size"
