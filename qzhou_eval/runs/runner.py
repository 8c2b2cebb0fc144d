"""One evaluation run: config -> recipe -> encoder -> mteb -> results.

The runner only wires objects together; each step lives in its own module.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import mteb
from mteb.abstasks import AbsTask
from omegaconf import DictConfig

from qzhou_eval.benchmarks import load_benchmark_tasks
from qzhou_eval.config import compose_config
from qzhou_eval.config.folders import check_writable_folder
from qzhou_eval.config.spec import (
    ModelSpec,
    RuntimeSpec,
    mirror_dir,
    model_spec,
    mrl_dims,
    runtime_spec,
)
from qzhou_eval.encoder import RecipeEncoder
from qzhou_eval.encoder.embedder import Embedder, MemoryStore
from qzhou_eval.encoder.engines import make_engine
from qzhou_eval.errors import ConfigError, UserError
from qzhou_eval.recipe import Recipe, recipe_from_config
from qzhou_eval.report import BenchmarkInfo, RunId, benchmark_info
from qzhou_eval.results import ResultsFolder
from qzhou_eval.runs.identity import Variant, build_model_meta, check_and_record, variant_of
from qzhou_eval.store import DiskStore, model_fingerprint

logger = logging.getLogger(__name__)

ENCODE_KWARGS = {"batch_size": 1024, "show_progress_bar": False}  # what mteb records per run


@lru_cache(maxsize=1)
def known_task_names() -> frozenset[str]:
    """Every task name a recipe may mention: mteb's registry plus the demo suites."""
    from mteb.get_tasks import _TASKS_REGISTRY

    from qzhou_eval.demo import DEMO_SUITES, get_demo_tasks

    names = set(_TASKS_REGISTRY)
    for suite in DEMO_SUITES:
        names.update(t.metadata.name for t in get_demo_tasks(suite))
    return frozenset(names)


def build_recipe(cfg: DictConfig) -> Recipe:
    return recipe_from_config(cfg.prompts, known_tasks=known_task_names())


@dataclass
class RunPlan:
    """Everything validated before any dataset or model is loaded."""

    spec: ModelSpec
    runtime: RuntimeSpec
    recipe: Recipe
    tasks: list[AbsTask]
    dims: list[int | None]
    variant: Variant | None
    benchmark: BenchmarkInfo  # what the tasks are: all of a benchmark or a subset of it

    @property
    def experiment(self) -> str | None:
        """The experiment folder name of the full-dimension results (None = the revision's)."""
        return f"{self.variant[0]}_{self.variant[1]}" if self.variant else None


@dataclass
class RunOutcome:
    plan: RunPlan
    failures: dict[str, str] = field(default_factory=dict)
    results_dir: Path | None = None
    runs: list[RunId] = field(default_factory=list)  # the result folders, one per dimension
    encoded_inputs: int = 0
    forward_calls: int = 0
    model_seconds: float = 0.0
    store_summary: str = ""
    seconds: float = 0.0


def canonical_of(cfg: DictConfig, config_name: str) -> tuple[ModelSpec, Recipe] | None:
    """The model config's own defaults (its official recipe), composed afresh, or None."""
    key = cfg.model.get("key")
    if not key:
        return None
    try:
        pristine = compose_config(config_name, [f"model={key}"])
        return model_spec(pristine.model), build_recipe(pristine)
    except ConfigError:
        return None


def plan_run(cfg: DictConfig, config_name: str) -> RunPlan:
    """Validate the whole config and resolve tasks; fail fast with one line."""
    runtime = runtime_spec(cfg.runtime)
    spec = with_packing(model_spec(cfg.model), runtime.packing)
    recipe = build_recipe(cfg)
    tasks = load_benchmark_tasks(cfg.benchmark)
    recipe.check_tasks(t.metadata.name for t in tasks)
    dims = mrl_dims(cfg, spec.embed_dim)
    variant = variant_of(spec, recipe, canonical_of(cfg, config_name), cfg.get("experiment"))
    mirror = mirror_dir(cfg)
    if mirror is not None:
        from qzhou_eval.mirror import apply_mirror

        hint = (
            f"python -m qzhou_eval.mirror benchmark={cfg.benchmark.key} data.mirror={mirror} "
            "'benchmark.tasks=[{task}]'"
        )
        apply_mirror(tasks, mirror, hint)
    check_writable_folder("runtime.results_dir", runtime.results_dir)
    if runtime.store_dir is not None:
        check_writable_folder("runtime.store_dir", runtime.store_dir)
    return RunPlan(
        spec, runtime, recipe, tasks, dims, variant, benchmark_info(cfg.benchmark, tasks)
    )


def with_packing(spec: ModelSpec, packing: bool) -> ModelSpec:
    """``runtime.packing`` joins the model spec: it changes the vectors, so their fingerprint."""
    if not packing:
        return spec
    if spec.backend != "native":
        raise ConfigError("runtime.packing=true needs model.backend=native")
    if spec.token_prepending.enabled:
        raise ConfigError(
            "runtime.packing=true does not support Token Prepending yet; set runtime.packing=false"
        )
    return dataclasses.replace(spec, packing=True)


def execute(plan: RunPlan) -> RunOutcome:
    """Evaluate every task at every requested dimension; one encoding pass per task."""
    started = time.monotonic()
    spec, runtime = plan.spec, plan.runtime
    folder = ResultsFolder(runtime.results_dir, encode_kwargs=ENCODE_KWARGS)
    folder.remove_stale_temp_files()
    store: MemoryStore | DiskStore
    if runtime.store_dir is not None:
        store = DiskStore(runtime.store_dir, model_fingerprint(spec))
    else:
        store = MemoryStore()
    embedder = Embedder(
        lambda: make_engine(spec, runtime.devices),
        tokens_per_batch=runtime.tokens_per_batch,
        max_batch_size=runtime.max_batch_size,
        max_padding=runtime.max_padding,
        store=store,
        progress=runtime.progress,
    )
    # The worker processes, if any, live as long as the run; after an error or Ctrl-C they are
    # stopped at once rather than left to finish the batches still queued.
    try:
        outcome = _evaluate(plan, folder, store, embedder, started)
    except BaseException:
        embedder.close(force=True)
        raise
    embedder.close()
    return outcome


def _evaluate(
    plan: RunPlan,
    folder: ResultsFolder,
    store: MemoryStore | DiskStore,
    embedder: Embedder,
    started: float,
) -> RunOutcome:
    spec, runtime = plan.spec, plan.runtime
    encoders = [
        RecipeEncoder(
            meta=build_model_meta(spec, plan.recipe, dim=dim, variant=plan.variant),
            recipe=plan.recipe,
            embedder=embedder,
            dim=dim,
            normalize=spec.normalize,
            numerics=spec.numerics,
            prenormalized=spec.backbone_normalizes,
        )
        for dim in plan.dims
    ]
    for write in (False, True):  # check every folder before recording in any
        for encoder in encoders:
            target = folder.get_task_result_path("x", encoder.mteb_model_meta).parent
            check_and_record(target, spec, plan.recipe, encoder.dim, write=write)

    outcome = RunOutcome(plan)
    strategy = "always" if runtime.overwrite else "only-missing"
    for task in plan.tasks:
        name = task.metadata.name
        if len(encoders) > 1:
            task.load_data()  # once for all dimensions (mteb would load it per evaluate call)
        for encoder in encoders:
            try:
                result = mteb.evaluate(
                    encoder,
                    task,
                    cache=folder,
                    overwrite_strategy=strategy,
                    encode_kwargs=ENCODE_KWARGS,
                    show_progress_bar=False,
                    raise_error=True,
                    co2_tracker=False,
                )
            except UserError:
                raise
            except Exception as e:  # a task that fails must not lose the finished ones
                if not runtime.continue_on_error:
                    raise
                logger.exception("task %s failed", name)
                outcome.failures[name] = f"{type(e).__name__}: {e}"
                break
            for err in result.exceptions or []:
                outcome.failures[name] = str(err.exception)
        store.clear()
        if task.data_loaded:
            task.unload_data()
    outcome.encoded_inputs = embedder.encoded_inputs
    outcome.forward_calls = embedder.forward_calls
    outcome.model_seconds = embedder.model_seconds
    if isinstance(store, DiskStore):
        outcome.store_summary = (
            f"embedding store {store.folder}: {len(store)} vectors, "
            f"{store.size_bytes() / 2**20:.1f} MiB"
        )
    outcome.seconds = time.monotonic() - started
    outcome.results_dir = folder.results_dir
    outcome.runs = [
        RunId(e.mteb_model_meta.name, e.mteb_model_meta.revision, e.mteb_model_meta.experiment_name)
        for e in encoders
    ]
    return outcome
