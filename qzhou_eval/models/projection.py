"""The linear projection after pooling, read from a sentence-transformers Dense module folder.

QZhou-Embedding-Zh ships its MRL projection (hidden 4096 -> 1792) as ``2_Dense/`` inside the
model folder. sentence-transformers' own ``Dense.load`` reads it (config + weights), so the
projection is exactly the module the model card's pipeline runs. From the Hub it is read at the
model's pinned revision, like the backbone.

Where sentence-transformers cannot be imported (it imports ``datasets`` at import time; a GPU
box set up for ``qzhou-eval check`` or the throughput benchmark may have neither), a local
folder is read by :class:`PlainDense`: the same ``config.json`` and ``linear`` weights, a linear
layer and an identity or tanh activation (what Dense modules of embedding models ship); other
activations, residual Dense modules and Hub folders still need sentence-transformers.
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


_PLAIN_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "torch.nn.modules.linear.Identity": nn.Identity,
    "torch.nn.modules.activation.Tanh": nn.Tanh,
}


class PlainDense(nn.Module):
    """A sentence-transformers Dense folder read without sentence-transformers."""

    def __init__(self, folder: Path) -> None:
        import json

        super().__init__()
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        activation = config.get("activation_function", "torch.nn.modules.linear.Identity")
        if activation not in _PLAIN_ACTIVATIONS or config.get("use_residual"):
            raise ImportError(
                f"{folder}: a Dense module with activation {activation} needs sentence-transformers"
            )
        bias = bool(config.get("bias", True))
        self.linear = nn.Linear(int(config["in_features"]), int(config["out_features"]), bias=bias)
        self.activation_function = _PLAIN_ACTIVATIONS[activation]()
        weights = _dense_weights(folder)
        self.load_state_dict({k: v for k, v in weights.items() if k.startswith("linear.")})
        self.out_features = int(config["out_features"])

    def get_embedding_dimension(self) -> int:
        return self.out_features

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = features["sentence_embedding"]
        return {**features, "sentence_embedding": self.activation_function(self.linear(x))}


def _dense_weights(folder: Path) -> dict[str, torch.Tensor]:
    if (folder / "model.safetensors").is_file():
        from safetensors.torch import load_file

        weights = load_file(str(folder / "model.safetensors"))
    else:
        weights = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    return weights


def load_dense_projection(
    model_path: str,
    subfolder: str,
    device: torch.device,
    *,
    revision: str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Projection:
    """The Dense module ``subfolder`` of a local model folder, or of a Hub repo at ``revision``."""
    local = Path(model_path).expanduser()
    if local.is_dir() and not (local / subfolder / "config.json").is_file():
        raise ValueError(
            f"model.projection={subfolder}: {local / subfolder} holds no Dense module "
            "(no config.json); name the model folder's Dense module folder, e.g. 2_Dense"
        )
    try:
        from sentence_transformers.sentence_transformer.modules import Dense
    except Exception:  # not installed, or its own imports fail (datasets absent, a version clash)
        if not local.is_dir():
            raise
        dense: nn.Module = PlainDense(local / subfolder)  # see the module docstring
    else:
        if local.is_dir():
            dense = Dense.load(str(local / subfolder))
        else:
            dense = Dense.load(model_path, subfolder=subfolder, revision=revision)
    return Projection(dense, dtype).to(device).eval()
