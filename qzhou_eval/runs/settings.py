"""A run's settings, every one validated: the part of a run's plan that reads nothing but the
config (and mteb's task list, and whether ``data.mirror`` exists), shared by ``qzhou-eval run``
and ``qzhou-eval check``, so that a config a run refuses before loading anything is refused by
``check`` with the same line (it passed every check, then the run stopped: a trial).

:func:`check_values` needs no mteb (``check`` runs where only the model's libraries are
installed); :func:`read_settings` adds what needs mteb's tasks, imported when it is called.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

from qzhou_eval.config.folders import check_name_lengths
from qzhou_eval.config.spec import (
    ModelSpec,
    RuntimeSpec,
    experiment_name,
    mirror_dir,
    model_spec,
    mrl_points,
    runtime_spec,
    with_packing,
)
from qzhou_eval.errors import ConfigError, shown
from qzhou_eval.known_tasks import KNOWN_TASKS
from qzhou_eval.precision import Point
from qzhou_eval.recipe import Recipe, recipe_from_config

if TYPE_CHECKING:
    from mteb.abstasks import AbsTask

    from qzhou_eval.runs.identity import Canonical, Identity


@dataclass(frozen=True)
class Values:
    """The settings that need no mteb to check."""

    runtime: RuntimeSpec
    spec: ModelSpec
    recipe: Recipe
    points: list[Point]  # (output size, precision) of the sweep, all from one encoding pass
    experiment: str | None
    canonical: tuple[ModelSpec, Recipe] | None  # the model file's official configuration
    mirror: Path | None  # data.mirror


@dataclass(frozen=True)
class RunSettings:
    """The validated settings of a run."""

    values: Values
    tasks: list[AbsTask]
    identity: Identity  # where each task is filed


def check_values(
    cfg: DictConfig, *, resolve_path: bool | None = None, with_mteb: bool = True
) -> Values:
    """Every setting of ``cfg`` that needs no mteb, checked (a one-line ConfigError);
    ``resolve_path``: whether ``model.path`` must name a model (default: where the run encodes;
    a scoring-only run never loads it); ``with_mteb=False``: the recipe's task names and
    prompt keys left unchecked (mteb's task list knows them)."""
    runtime = runtime_spec(cfg.runtime)
    resolve = runtime.encode if resolve_path is None else resolve_path
    spec = with_packing(model_spec(cfg.model, resolve_path=resolve), runtime.packing)
    known = KNOWN_TASKS if with_mteb else None
    recipe = recipe_from_config(cfg.prompts, known)
    points = mrl_points(cfg, spec.embed_dim)
    canonical = canonical_of(cfg, known)
    values = Values(runtime, spec, recipe, points, experiment_name(cfg), canonical, mirror_dir(cfg))
    check_name_lengths("runtime.results_dir", runtime.results_dir)
    if runtime.store_dir is not None:
        check_name_lengths("runtime.store_dir", runtime.store_dir)
    check_name_lengths("model.revision", spec.revision or "")
    return values


def read_settings(cfg: DictConfig, *, resolve_path: bool | None = None) -> RunSettings:
    """:func:`check_values`, then the benchmark's tasks against the recipe, and the model's
    metadata and folder name as mteb files them."""
    from qzhou_eval.benchmarks import load_benchmark_tasks, sides_of
    from qzhou_eval.report.discover import model_dir_name
    from qzhou_eval.runs.identity import Canonical, Identity, build_model_meta

    values = check_values(cfg, resolve_path=resolve_path)
    spec, recipe = values.spec, values.recipe
    tasks = load_benchmark_tasks(cfg.benchmark)
    recipe.check_tasks(t.metadata.name for t in tasks)
    recipe.warn_unreached({t.metadata.name: sides_of(t) for t in tasks})
    canonical = Canonical(*values.canonical) if values.canonical else None
    identity = Identity(spec, recipe, canonical, values.experiment)
    if identity.unchecked:  # what it sets otherwise than the folder, said in its records
        from qzhou_eval.runs.model_folder import settings_apart

        file = model_file_settings(cfg, KNOWN_TASKS)
        identity = replace(identity, apart=settings_apart(spec, recipe), file=file)
    build_model_meta(spec, recipe, dim=None, variant=None)  # mteb's checks of its metadata
    check_name_lengths("model.name", spec.name, [model_dir_name(spec.name)])  # mteb's folder
    return RunSettings(values, tasks, identity)


def model_file_settings(
    cfg: DictConfig, known_tasks: Container[str] | None = KNOWN_TASKS
) -> Canonical | None:
    """The model file's own settings and recipe, as Hydra composed them from the file alone
    (``canonical``), with the run's model name, revision and path: what a model file without an
    official configuration (``hf_auto``) sets before the command line. None where they cannot
    be read (a config composed without that section)."""
    from qzhou_eval.runs.identity import Canonical  # (needs mteb: not at the top)

    canonical = _canonical_section(cfg)
    if canonical is None:
        return None
    own = OmegaConf.merge(
        canonical.model, {k: cfg.model.get(k) for k in ("name", "revision", "path")}
    )
    try:
        spec = model_spec(own, resolve_path=False)
        return Canonical(spec, recipe_from_config(canonical.prompts, known_tasks))
    except ConfigError:
        return None


def _canonical_section(cfg: DictConfig) -> DictConfig | None:
    """The run configs' ``canonical`` section (the model file's own settings and recipe, as
    Hydra composed them), None where the config has none of it."""
    canonical = cfg.get("canonical")
    if canonical is None or "model" not in canonical or "prompts" not in canonical:
        return None
    return canonical


def canonical_of(
    cfg: DictConfig, known_tasks: Container[str] | None = KNOWN_TASKS
) -> tuple[ModelSpec, Recipe] | None:
    """The model file's own configuration, as Hydra composed it beside the run's (the run
    configs' ``canonical`` section). None for a model file without a ``key`` (no official one).

    Raises ConfigError when it cannot be derived: a run is never taken for official by default.
    """
    if not cfg.model.get("key"):
        return None
    canonical = _canonical_section(cfg)
    if canonical is None:
        raise ConfigError(
            "the config has no canonical.model / canonical.prompts section, so results cannot be "
            "told apart from the official configuration's (compose conf/mteb.yaml or cmteb.yaml)"
        )
    if canonical.model.get("key") != cfg.model.key:
        raise ConfigError(  # (model.key=x: "canonical.model is 'minilm', not model=x")
            f"model.key={cfg.model.key} is not the key of its model file "
            f"({shown(canonical.model.get('key'))}): pick a model file with model=<name> "
            "(qzhou-eval list models); model.key is no setting"
        )
    try:
        spec = model_spec(canonical.model, resolve_path=False)
        recipe = recipe_from_config(canonical.prompts, known_tasks)
    except ConfigError as e:
        raise ConfigError(f"the official configuration of model={cfg.model.key}: {e}") from None
    return spec, recipe
