"""The linear projection after pooling, read from a sentence-transformers Dense module folder.

QZhou-Embedding-Zh ships its MRL projection (hidden 4096 -> 1792) as ``2_Dense/`` inside the
model folder. sentence-transformers' own ``Dense.load`` reads it (config + weights), so the
projection is exactly the module the model card's pipeline runs. From the Hub it is read at the
model's pinned revision, like the backbone.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


class Projection(nn.Module):
    """``pooled (B, H) -> (B, out_features)``, computed in ``dtype``.

    float32 is the precise path; the model dtype is what the official pipeline ran
    (sentence-transformers 3.4.1 casts every module to the dtype of the first one).
    """

    def __init__(self, dense: nn.Module, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.compute_dtype = dtype
        self.dense = dense.to(dtype)
        self.out_features = int(dense.get_embedding_dimension())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense({"sentence_embedding": x.to(self.compute_dtype)})["sentence_embedding"]


def load_dense_projection(
    model_path: str,
    subfolder: str,
    device: torch.device,
    *,
    revision: str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Projection:
    """The Dense module ``subfolder`` of a local model folder, or of a Hub repo at ``revision``."""
    from sentence_transformers.sentence_transformer.modules import Dense

    local = Path(model_path).expanduser()
    if local.is_dir():
        dense = Dense.load(str(local / subfolder))
    else:
        dense = Dense.load(model_path, subfolder=subfolder, revision=revision)
    return Projection(dense, dtype).to(device).eval()
