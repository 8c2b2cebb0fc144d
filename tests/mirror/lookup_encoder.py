"""A deterministic mteb encoder whose embeddings the test chooses: text -> vector, nothing else.

Unknown texts are an error, so a test also proves exactly which texts mteb asked to encode.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from mteb.models.abs_encoder import AbsEncoder

from qzhou_eval.testing.meta import stand_in_meta


class LookupEncoder(AbsEncoder):
    """Encode each text as the vector ``vectors[text]``; record every text encoded."""

    def __init__(self, vectors: Mapping[str, Sequence[float]], name: str = "test/lookup") -> None:
        self.vectors = {text: np.asarray(v, dtype=np.float32) for text, v in vectors.items()}
        self.seen: list[str] = []
        dim = len(next(iter(self.vectors.values())))
        self.mteb_model_meta = stand_in_meta(name, dim)

    def encode(self, inputs: Any, **kwargs: Any) -> np.ndarray:
        out = []
        for batch in inputs:
            for text in batch["text"]:
                if text not in self.vectors:
                    raise KeyError(f"LookupEncoder has no vector for {text!r}")
                self.seen.append(text)
                out.append(self.vectors[text])
        return np.stack(out)
