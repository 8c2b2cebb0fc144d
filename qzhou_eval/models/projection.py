"""The linear projection after pooling, read from a sentence-transformers Dense module folder.

QZhou-Embedding-Zh ships its MRL projection (hidden 4096 -> 1792) as ``2_Dense/`` inside the
model folder. sentence-transformers' own ``Dense.load`` reads it (config + weights), so the
projection is exactly the module the model card's pipeline runs.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


class Projection(nn.Module):
    """``pooled (B, H) -> (B, out_features)``, computed in float32."""

    def __init__(self, dense: nn.Module) -> None:
        super().__init__()
        self.dense = dense.float()
        self.out_features = int(dense.get_embedding_dimension())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense({"sentence_embedding": x.float()})["sentence_embedding"]


def load_dense_projection(model_path: str, subfolder: str, device: torch.device) -> Projection:
    from sentence_transformers.sentence_transformer.modules import Dense

    local = Path(model_path).expanduser()
    if local.is_dir():
        dense = Dense.load(str(local / subfolder))
    else:
        dense = Dense.load(model_path, subfolder=subfolder)
    return Projection(dense).to(device).eval()
