"""What a sentence-transformers pipeline decides itself, checked against the model config.

With ``backend: sentence_transformers`` the pipeline's own modules pool, normalize and attend;
the harness applies only the dtype, the attention kernel, the length, padding and truncation.
A config that asks for something else (``model.pooling=cls`` over a mean-pooling pipeline) would
otherwise be filed as a variant under a setting that was never applied: its record and folder
would claim CLS pooling for mean-pooled vectors. So each setting the pipeline decides must agree
with it, or the run stops with one line that says what to set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from qzhou_eval.config.spec import POOLING_MODES, ModelSpec
from qzhou_eval.errors import ConfigError

_NATIVE = "or model.backend=native, where the harness applies it"

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
    for module in pipeline:
        if isinstance(module, Pooling):
            check_pooling(spec, _pooling_mode(module), where)
        # (a Normalize module of the token states leaves the sentence's vector as it is)
        reads = getattr(module, "module_input_name", "sentence_embedding")
        if isinstance(module, Normalize) and reads == "sentence_embedding":
            check_normalize(spec, True, where)
    backbone = getattr(pipeline[0], "auto_model", None)
    if not isinstance(backbone, nn.Module):
        return  # not a transformers backbone: nothing more to read
    attention = attention_of(backbone)
    if spec.attention != "causal_default" and attention not in (None, spec.attention):
        raise ConfigError(
            f"model.attention={spec.attention}, but the model of {where} attends {attention} "
            f"(the harness does not change it on this backend): set model.attention="
            f"{attention}, {_NATIVE}"
        )
    kernel = getattr(getattr(backbone, "config", None), "_attn_implementation", None)
    if isinstance(kernel, str) and kernel != spec.attn_implementation:
        raise ConfigError(
            f"model.attn_implementation={spec.attn_implementation}, but the model of {where} "
            f"runs {kernel} attention (its code chose it): set model.attn_implementation="
            f"{kernel}, {_NATIVE}"
        )


def check_folder_pipeline(spec: ModelSpec, folder: str | Path) -> None:
    """:func:`check_pipeline_settings`' pooling and normalization, read from the pipeline's
    folder rather than the loaded pipeline: a run whose vectors are all stored never loads it,
    and ``model.normalize`` is no key of the store (the harness normalizes after it), so
    ``normalize=false`` over a pipeline with a Normalize module was filed as a variant of the
    official vectors, unchanged (a trial). Nothing on the native backend, nor where the folder's
    configuration cannot be read (the load says why)."""
    if spec.backend != "sentence_transformers":
        return
    from qzhou_eval.models.folder_settings import UnreadableFile, read_folder_settings

    try:
        theirs = read_folder_settings(folder)
    except (UnreadableFile, OSError):
        return
    if theirs is None or theirs.unsupported:
        return
    where = f"the sentence-transformers pipeline of model.path={folder}"
    check_pooling(spec, theirs.pooling, where)
    check_normalize(spec, theirs.normalize, where)


def check_pooling(spec: ModelSpec, theirs: str | None, where: str) -> None:
    """A ConfigError where the pipeline pools with ``theirs`` (None: it does not say) and
    ``model.pooling`` says otherwise."""
    if theirs is None or theirs == spec.pooling:
        return
    fix = (
        f"set model.pooling={theirs}, {_NATIVE}"
        if theirs in POOLING_MODES
        else f"model.pooling cannot state it: use model.backend=native with one of "
        f"{list(POOLING_MODES)}"
    )
    raise ConfigError(
        f"model.pooling={spec.pooling}, but {where} pools with {theirs} (its Pooling module "
        f"decides): {fix}"
    )


def check_normalize(spec: ModelSpec, normalizes: bool, where: str) -> None:
    """A ConfigError where the pipeline L2-normalizes and ``model.normalize`` is false."""
    if normalizes and not spec.normalize:
        raise ConfigError(
            f"model.normalize=false, but {where} L2-normalizes (its Normalize module): set "
            "model.normalize=true, or model.backend=native for unnormalized vectors"
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
