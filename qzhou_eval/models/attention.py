"""Switch a stock transformers decoder (Qwen2, Qwen3, Llama, ...) to bidirectional attention."""

from __future__ import annotations

from torch import nn


def make_bidirectional(model: nn.Module) -> int:
    """Make every self-attention layer of ``model`` non-causal; return how many were switched.

    Two switches are needed in transformers 5.x: ``config.is_causal = False`` makes the mask
    builder produce a bidirectional padding mask, and each attention module's ``is_causal = False``
    keeps SDPA / flash kernels from re-imposing causality when the mask is skipped (no padding).
    """
    config = getattr(model, "config", None)
    if config is not None:
        config.is_causal = False
        for sub in ("text_config", "decoder"):
            if hasattr(config, sub):
                getattr(config, sub).is_causal = False
    switched = 0
    for module in model.modules():
        if hasattr(module, "is_causal") and isinstance(module, nn.Module) and module is not model:
            module.is_causal = False
            switched += 1
    if switched == 0:
        raise ValueError(f"{type(model).__name__} has no attention module with an is_causal flag")
    return switched
