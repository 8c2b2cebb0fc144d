"""Output precisions: the points of a sweep, mteb's quantization, and the size of a stored vector.

A sweep point is an output size and a precision (:class:`Point`). Every point is scored from the
same stored vectors in the order mteb's ``CompressionWrapper`` gives around an encoder that cuts
and normalizes: keep the first ``dim`` values -> L2-normalize -> quantize. The quantization is
mteb's own: :func:`quantizer` calls ``CompressionWrapper``'s quantization on the vectors of each
encode call, so integer ranges (int8, uint8, int4, uint4) are calibrated per call, queries apart
from documents, exactly as mteb's wrapper does; results are filed where mteb's wrapper files them
(:func:`compressed_meta`).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import torch
    from mteb.models import ModelMeta

DEFAULT_PRECISION = "float32"  # no quantization: the plain run

# Bits per stored value of each precision mteb's CompressionWrapper knows (its OutputDType
# values), plus float32; a test checks that the names are mteb's.
BITS = {
    "float32": 32,
    "float16": 16,
    "bfloat16": 16,
    "float8_e4m3fn": 8,
    "float8_e5m2": 8,
    "float8_e8m0fnu": 8,
    "float8_e4m3fnuz": 8,
    "float8_e5m2fnuz": 8,
    "int8": 8,
    "uint8": 8,
    "int4": 4,
    "uint4": 4,
    "binary": 1,
}
PRECISIONS = tuple(BITS)

# mteb's wrapper warns, once per encode call, that fewer than 10,000 vectors calibrate the integer
# ranges; the run logs it once instead (see :func:`quantizer`).
_MTEB_LOGGER = "mteb.models.compression_wrappers.compression_wrapper"
_CALIBRATION = "Estimating quantization parameters"


@dataclass(frozen=True)
class Point:
    """One point of a sweep: the output size (None: the model's full size) and the precision."""

    dim: int | None = None
    precision: str = DEFAULT_PRECISION

    def __str__(self) -> str:
        size = "full size" if self.dim is None else f"dim {self.dim}"
        return size if self.precision == DEFAULT_PRECISION else f"{size} {self.precision}"


def bytes_per_vector(dim: int, precision: str) -> float:
    """The bytes one stored vector of ``dim`` values takes at ``precision`` (int4: two values a
    byte, binary: eight; a fraction of a byte is counted as such)."""
    return dim * BITS[precision] / 8


def compressed_meta(meta: ModelMeta, precision: str) -> ModelMeta:
    """The model meta mteb's ``CompressionWrapper`` gives an encoder of ``meta`` at
    ``precision``: ``output_dtypes`` and ``experiment_kwargs["output_dtypes"]`` added, so
    results are filed under mteb's experiment for that dtype. ``meta`` itself at float32."""
    if precision == DEFAULT_PRECISION:
        return meta
    return _wrapper(meta, precision).mteb_model_meta


def quantizer(meta: ModelMeta, precision: str) -> Callable[[np.ndarray], Any] | None:
    """The function that quantizes one encode call's vectors as mteb's ``CompressionWrapper``
    of ``precision`` does (its own code, on the same input type); None at float32."""
    if precision == DEFAULT_PRECISION:
        return None
    import torch

    # (meta may be compressed_meta's already: mteb would warn that the model "natively" has it)
    wrapper = _wrapper(meta.model_copy(update={"output_dtypes": None}), precision)

    def quantize(vectors: np.ndarray) -> torch.Tensor:
        # mteb has no public quantization function: its wrapper's private method is the code
        # that quantizes in mteb's own runs, called here rather than copied
        embeddings = vectors if isinstance(vectors, torch.Tensor) else torch.tensor(vectors)
        with _calibration_warning_once():
            return wrapper._quantize_embeddings(embeddings.float())

    return quantize


def _wrapper(meta: ModelMeta, precision: str) -> Any:
    """mteb's ``CompressionWrapper`` of ``precision`` around a stand-in holding ``meta`` (the
    wrapper reads only the wrapped model's meta when it is made; the stand-in's meta is a copy)."""
    from mteb.models import CompressionWrapper
    from mteb.types import OutputDType

    class _Model:
        mteb_model_meta = meta

    return CompressionWrapper(_Model(), OutputDType(precision))  # type: ignore[arg-type]


class _FirstOnly(logging.Filter):
    """Lets the first of mteb's calibration warnings through, no later one."""

    shown = False

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.getMessage().startswith(_CALIBRATION):
            return True
        first, _FirstOnly.shown = not _FirstOnly.shown, True
        return first


@contextmanager
def _calibration_warning_once() -> Iterator[None]:
    """Around one quantization: mteb's per-call calibration warning is logged the first time
    only (and never raised as a Python warning, which the log line already says)."""
    logging.getLogger(_MTEB_LOGGER).addFilter(_FILTER)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_CALIBRATION)
        yield


_FILTER = _FirstOnly()
