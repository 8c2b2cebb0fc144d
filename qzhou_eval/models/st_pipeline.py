"""What a sentence-transformers pipeline decides itself, checked against the model config.

With ``backend: sentence_transformers`` the pipeline's own modules pool, normalize and attend;
the harness applies only the dtype, the attention kernel, the length, padding and truncation.
A config that asks for something else (``model.pooling=cls`` over a mean-pooling pipeline) would
otherwise be filed as a variant under a setting that was never applied: its record and folder
would claim CLS pooling for mean-pooled vectors. So each setting the pipeline decides must agree
with it, or the run stops with one line that says what to set.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from qzhou_eval.config.spec import POOLING_MODES, ModelSpec
from qzhou_eval.errors import ConfigError

# sentence-transformers' pooling mode names -> model.pooling's
_POOLING_NAMES = {
    "mean": "mean",
    "cls": "cls",
    "lasttoken": "last_token",
    "weightedmean": "weighted_mean",
    "max": "max",
    "mean_sqrt_len_tokens": "mean_sqrt_len",
}


def check_pipeline_settings(pipeline: Any, spec: ModelSpec) -> None:
    """Raise :class:`ConfigError` where ``spec`` asks for what the loaded pipeline does not do:
    another pooling, no normalization over a Normalize module, another attention or kernel."""
    from sentence_transformers.models import Normalize, Pooling

    where = "this sentence-transformers pipeline"
    native = "or model.backend=native, where the harness applies it"
    for module in pipeline:
        if isinstance(module, Pooling):
            theirs = _pooling_mode(module)
            if theirs is not None and theirs != spec.pooling:
                fix = (
                    f"set model.pooling={theirs}, {native}"
                    if theirs in POOLING_MODES
                    else f"model.pooling cannot state it: use model.backend=native with one of "
                    f"{list(POOLING_MODES)}"
                )
                raise ConfigError(
                    f"model.pooling={spec.pooling}, but {where} pools with {theirs} (its "
                    f"Pooling module decides): {fix}"
                )
        # (a Normalize module of the token states leaves the sentence's vector as it is)
        reads = getattr(module, "module_input_name", "sentence_embedding")
        if isinstance(module, Normalize) and reads == "sentence_embedding" and not spec.normalize:
            raise ConfigError(
                f"model.normalize=false, but {where} L2-normalizes (its Normalize module): set "
                "model.normalize=true, or model.backend=native for unnormalized vectors"
            )
    backbone = getattr(pipeline[0], "auto_model", None)
    if not isinstance(backbone, nn.Module):
        return  # not a transformers backbone: nothing more to read
    attention = attention_of(backbone)
    if spec.attention != "causal_default" and attention not in (None, spec.attention):
        raise ConfigError(
            f"model.attention={spec.attention}, but the model of {where} attends {attention} "
            f"(the harness does not change it on this backend): set model.attention="
            f"{attention}, {native}"
        )
    kernel = getattr(getattr(backbone, "config", None), "_attn_implementation", None)
    if isinstance(kernel, str) and kernel != spec.attn_implementation:
        raise ConfigError(
            f"model.attn_implementation={spec.attn_implementation}, but the model of {where} "
            f"runs {kernel} attention (its code chose it): set model.attn_implementation="
            f"{kernel}, {native}"
        )


def attention_of(model: nn.Module) -> str | None:
    """``bidirectional`` or ``causal`` as the model's attention modules say (their
    ``is_causal`` flags, as transformers 5.x reads them); None where they are absent or mixed."""
    flags = {
        bool(module.is_causal)
        for module in model.modules()
        if module is not model and isinstance(getattr(module, "is_causal", None), bool)
    }
    if len(flags) != 1:
        return None
    return "causal" if flags.pop() else "bidirectional"


def _pooling_mode(module: Any) -> str | None:
    """The Pooling module's mode in ``model.pooling``'s names (sentence-transformers 6:
    ``pooling_mode``, a name or a tuple of them; 5: ``get_pooling_mode_str()``, joined by ``+``);
    None where it does not say."""
    mode = getattr(module, "pooling_mode", None)
    if mode is None and hasattr(module, "get_pooling_mode_str"):
        mode = module.get_pooling_mode_str()
    if isinstance(mode, (tuple, list)):
        mode = "+".join(str(m) for m in mode)
    if not isinstance(mode, str):
        return None
    return "+".join(_POOLING_NAMES.get(m, m) for m in mode.split("+"))
