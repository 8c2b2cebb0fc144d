"""A model folder's own settings, as its sentence-transformers configuration states them, checked
against ``model.*`` before a run loads anything (``model.folder_settings: check``).

A folder saved by sentence-transformers (``modules.json``) is the model's own recipe: mteb's run
of it (the leaderboard's) pools as its Pooling module says, normalizes only where it has a
Normalize module, cuts inputs at ``sentence_bert_config.json``'s ``max_seq_length`` and puts its
``config_sentence_transformers.json`` prompts before the texts. ``model=hf_auto`` states generic
values (mean, normalized, 512 tokens, no prompt), which the harness applies on either backend:
over a CLS-pooled, unnormalized or 256-token model they give other vectors and other scores,
filed as the model's own. So where they differ the run stops with one line naming each setting
and the value of the folder (on the sentence-transformers backend the pipeline pools and
normalizes itself: what it does otherwise is refused as it loads); ``model.folder_settings=ignore``
evaluates with ``model.*`` as set (the results are that configuration's: every such setting is in
the fingerprint and the records).

Reads JSON files only (no sentence-transformers, no torch). A folder without ``modules.json``
states nothing; a file that does not parse states nothing here (loading the model says what is
wrong with it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qzhou_eval.config.spec import POOLING_MODES, ModelSpec
from qzhou_eval.errors import ConfigError

_POOLING_MODULE = "sentence_transformers.models.Pooling"
_NORMALIZE_MODULE = "sentence_transformers.models.Normalize"
# sentence-transformers' Pooling config flags (and its 6.x ``pooling_mode`` names) -> model.pooling
_POOLING_FLAGS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len",
    "pooling_mode_weightedmean_tokens": "weighted_mean",
    "pooling_mode_lasttoken": "last_token",
}
_POOLING_NAMES = {
    "cls": "cls",
    "mean": "mean",
    "max": "max",
    "mean_sqrt_len_tokens": "mean_sqrt_len",
    "weightedmean": "weighted_mean",
    "lasttoken": "last_token",
}


@dataclass(frozen=True)
class FolderSettings:
    """What a sentence-transformers folder states (None: it does not say)."""

    pooling: str | None
    normalize: bool
    max_length: int | None
    prompts: dict[str, str] = field(default_factory=dict)  # name -> non-empty prompt


def read_folder_settings(folder: str | Path) -> FolderSettings | None:
    """The settings ``folder``'s sentence-transformers configuration states; None where it has
    none (no ``modules.json``, or one that does not parse)."""
    root = Path(folder)
    modules = _json(root / "modules.json")
    if not isinstance(modules, list):
        return None
    kinds = {str(m.get("type")): str(m.get("path") or "") for m in modules if isinstance(m, dict)}
    pooling = None
    if _POOLING_MODULE in kinds:
        config = _json(root / kinds[_POOLING_MODULE] / "config.json")
        pooling = _pooling(config) if isinstance(config, dict) else None
    bert = _json(root / "sentence_bert_config.json")
    length = bert.get("max_seq_length") if isinstance(bert, dict) else None
    st = _json(root / "config_sentence_transformers.json")
    prompts = st.get("prompts") if isinstance(st, dict) else None
    return FolderSettings(
        pooling=pooling,
        normalize=_NORMALIZE_MODULE in kinds,
        max_length=length if isinstance(length, int) and length > 0 else None,
        prompts={str(k): v for k, v in (prompts or {}).items() if isinstance(v, str) and v.strip()},
    )


def check_folder_settings(
    spec: ModelSpec, folder: str | Path, has_instructions: bool, where: str | None = None
) -> None:
    """A ConfigError where ``spec`` evaluates ``folder``'s model otherwise than its own
    sentence-transformers configuration says (``has_instructions``: whether the recipe puts
    anything before a text, which the folder's prompts then stand beside; ``where``: how the
    line names the folder, ``model.path=<folder>`` by default); nothing where
    ``model.folder_settings=ignore`` or the folder has no such configuration."""
    if spec.folder_settings != "check":
        return
    theirs = read_folder_settings(folder)
    if theirs is None:
        return
    differ, fixes = [], []
    # on that backend the pipeline's own modules pool, and normalize where it has a Normalize
    # module: a setting that asks otherwise is refused as it loads (models/st_pipeline.py)
    pipeline = spec.backend == "sentence_transformers"
    if theirs.pooling is not None and theirs.pooling != spec.pooling and not pipeline:
        differ.append(f"it pools with {theirs.pooling} (model.pooling={spec.pooling})")
        fixes.append(
            f"model.pooling={theirs.pooling}"
            if theirs.pooling in POOLING_MODES
            else f"a pooling the harness lacks ({theirs.pooling}; it has {list(POOLING_MODES)})"
        )
    if theirs.normalize != spec.normalize and not (pipeline and theirs.normalize):
        has = "has a Normalize module" if theirs.normalize else "has no Normalize module"
        differ.append(f"it {has} (model.normalize={str(spec.normalize).lower()})")
        fixes.append(f"model.normalize={str(theirs.normalize).lower()}")
    if theirs.max_length is not None and theirs.max_length != spec.max_length:
        differ.append(
            f"it reads {theirs.max_length} tokens (its max_seq_length; model.max_length="
            f"{spec.max_length})"
        )
        fixes.append(f"model.max_length={theirs.max_length}")
    if theirs.prompts and not has_instructions:
        shown = ", ".join(f"{k}: {v!r}" for k, v in sorted(theirs.prompts.items()))
        differ.append(f"it puts prompts before texts ({shown}), this recipe nothing")
        fixes.append("a recipe (prompts=<file>) with them as its instructions")
    if not differ:
        return
    raise ConfigError(
        f"{where or f'model.path={folder}'} is a sentence-transformers model whose own "
        "configuration "
        f"differs from this run's: {'; '.join(differ)}. To evaluate it as it is configured: "
        f"{', '.join(fixes)}; to evaluate it with model.* and the recipe as set: "
        "model.folder_settings=ignore"
    )


def _pooling(config: dict[str, Any]) -> str | None:
    """The Pooling config's mode in model.pooling's names (``+`` between several)."""
    mode = config.get("pooling_mode")
    if isinstance(mode, str):
        names = [_POOLING_NAMES.get(m, m) for m in mode.split("+")]
    else:
        names = [name for flag, name in _POOLING_FLAGS.items() if config.get(flag) is True]
    return "+".join(names) or None


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
