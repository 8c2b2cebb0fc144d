"""One evaluation run: config -> recipe -> encoder -> mteb -> results.

The runner only wires objects together; each step lives in its own module.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mteb.abstasks import AbsTask
from mteb.models import ModelMeta
from omegaconf import DictConfig

from qzhou_eval import atomic
from qzhou_eval.config.deprecation import held_until_valid
from qzhou_eval.config.folders import (
    FolderNotWritable,
    check_readable_folder,
    check_results_place,
    check_writable_folder,
    remove_empty,
)
from qzhou_eval.config.hub import check_hub_model, check_local_model
from qzhou_eval.config.spec import (
    ModelSpec,
    RuntimeSpec,
)
from qzhou_eval.encoder import RecipeEncoder
from qzhou_eval.encoder.embedder import Embedder, MemoryStore, MissingInputs
from qzhou_eval.encoder.engines import Engine, make_engine
from qzhou_eval.errors import ConfigError
from qzhou_eval.mirror.offline import check_hub_data, check_offline_data
from qzhou_eval.mirror.provenance import data_identity, data_provenance
from qzhou_eval.precision import DEFAULT_PRECISION, Point
from qzhou_eval.recipe import Recipe
from qzhou_eval.report import BenchmarkInfo, RunId, benchmark_info
from qzhou_eval.results import ResultsFolder
from qzhou_eval.runs.identity import (
    RECORDS,
    EvaluatedElsewhere,
    Identity,
    TaskRecord,
    Variant,
    build_model_meta,
    claimed,
    migrate_legacy,
    record_for,
)
from qzhou_eval.runs.model_folder import (
    ModelFolder,
    Place,
    check_folder_settings,
    check_model_folder,
    check_scoring_settings,
    check_stored_model_folder,
)
from qzhou_eval.runs.other_runs import wait_for_deferred
from qzhou_eval.runs.scoring import (
    ENCODE_KWARGS,
    Encoders,
    failed,
    fill_hint,
    missing_description,
    score,
)
from qzhou_eval.runs.settings import read_settings
from qzhou_eval.store import DiskStore, model_fingerprint, store_folder
from qzhou_eval.store.disk import KEYS
from qzhou_eval.task_records import revision_folder

logger = logging.getLogger(__name__)


@dataclass
class RunPlan:
    """Everything validated before any dataset or model is loaded."""

    spec: ModelSpec
    runtime: RuntimeSpec
    recipe: Recipe
    tasks: list[AbsTask]
    points: list[Point]  # (output size, precision) of the sweep, all from one encoding pass
    identity: Identity  # where each task is filed
    benchmark: BenchmarkInfo  # what the tasks are: all of a benchmark or a subset of it
    read_only: bool = False  # every result is finished and a folder is not writable
    # folders plan_run made (results_dir, store_dir and their parents, outermost first): a run
    # that ends with nothing in them, stopped or failed early, removes them again
    created: list[Path] = field(default_factory=list)
    data: dict[str, dict[str, Any]] = field(default_factory=dict)  # task -> data provenance
    model_folder: ModelFolder | None = None  # a local model.path's digest, to record

    def variant(self, task: str) -> Variant | None:
        variant = self.identity.variant(task)
        if variant is None and data_identity(self.data.get(task)) is not None:
            return ("variant", self.identity.other_data_id)  # never filed as the pinned data's
        return variant

    def model_meta(self, task: str, point: Point) -> ModelMeta:
        """The mteb model meta of ``task`` at sweep point ``point``: its name, revision and
        experiment decide the results folder it is filed in."""
        return build_model_meta(
            self.spec,
            self.recipe,
            dim=point.dim,
            variant=self.variant(task),
            precision=point.precision,
        )

    def pending(self, records: dict[tuple[str, Point], TaskRecord], task: str) -> bool:
        """Whether ``task`` is to be evaluated at some sweep point (``records``: see
        :func:`task_records`)."""
        overwrite = self.runtime.overwrite
        return any(overwrite or not records[(task, p)].result.exists() for p in self.points)

    @property
    def experiments(self) -> dict[str, list[str]]:
        """Experiment folder name -> the tasks filed there, over every sweep point, in order;
        the revision's own folder is ``""``."""
        out: dict[str, list[str]] = {}
        for point in self.points:
            for task in self.tasks:
                # mteb's name for the folder (it makes the user's experiment= name path-safe)
                name = self.model_meta(task.metadata.name, point).experiment_name
                out.setdefault(name or "", []).append(task.metadata.name)
        return out


@dataclass
class RunOutcome:
    plan: RunPlan
    failures: dict[str, str] = field(default_factory=dict)
    results_dir: Path | None = None
    # the result folders (one per sweep point and experiment) and the tasks filed in each
    runs: dict[RunId, list[str]] = field(default_factory=dict)
    encoded_inputs: int = 0
    # inputs the store already held (not encoded again), per task once for all its sweep points
    stored_inputs: int = 0
    task_seconds: dict[str, float] = field(default_factory=dict)  # wall time per task
    # tasks an earlier run finished at every sweep point (not evaluated again)
    finished_before: list[str] = field(default_factory=list)
    forward_calls: int = 0
    model_seconds: float = 0.0
    store_summary: str = ""
    store_vectors: int | None = None  # vectors of this model configuration in the disk store
    store_damaged: int = 0  # damaged shards of it left in place (read-only), inputs not stored
    store_others: int = 0  # other model configurations the disk store holds vectors of
    seconds: float = 0.0
    # runtime.encode=false: tasks whose inputs are not all stored -> how many are missing
    missing: dict[str, str] = field(default_factory=dict)
    # look-ahead: task -> (distinct inputs mteb asked for, of those found in the store)
    coverage: dict[str, tuple[int, int]] = field(default_factory=dict)
    # tasks that scored while the devices still encoded their inputs (waited for some)
    overlapped: set[str] = field(default_factory=set)
    # (task, point)s another live run of this configuration was evaluating (waited for at the
    # end), and the tasks such a run finished meanwhile (:mod:`qzhou_eval.runs.other_runs`)
    deferred: list[tuple[str, Point]] = field(default_factory=list)
    by_others: set[tuple[str, Point]] = field(default_factory=set)
    # (task, point)s without a result when the run started; of those, the ones not claimed yet
    pending_at_start: set[tuple[str, Point]] = field(default_factory=set)
    unclaimed: set[tuple[str, Point]] = field(default_factory=set)

    def claiming(self, key: tuple[str, Point], record: TaskRecord, overwrite: bool) -> None:
        """Before the first claim of ``key``: a result that appeared since the run started is
        another run's of this configuration (one that finished it before this run got to it)."""
        if key in self.unclaimed:
            self.unclaimed.discard(key)
            if not overwrite and record.result.exists():
                self.by_others.add(key)

    def tasks_by_others(self) -> list[str]:
        """The tasks another run of this configuration finished at every point this run found
        unfinished (a task of which this run evaluated some point is this run's)."""
        if not self.by_others:
            return []
        return [
            t.metadata.name
            for t in self.plan.tasks
            if (keys := {k for k in self.pending_at_start if k[0] == t.metadata.name})
            and keys <= self.by_others
        ]

    def add(self, task: str, encoder: RecipeEncoder, errors: list[str]) -> None:
        """A finished evaluation of ``task`` (its errors: mteb's per-split exceptions)."""
        self.runs.setdefault(run_id(encoder.mteb_model_meta), []).append(task)
        for err in errors:
            self.failures[task] = err

    def summary_tasks(self, run: RunId) -> list[AbsTask]:
        """The tasks of ``run``'s summary: those it scored, and those filed in its folder that
        got no result here (failed, or inputs missing from the store), which the summary shows
        as missing rather than as a subset the user chose."""
        scored = set(self.runs.get(run, ()))
        unscored = {*self.missing, *self.failures} - scored
        return [
            t
            for t in self.plan.tasks
            if t.metadata.name in scored
            or (t.metadata.name in unscored and run in run_ids(self.plan, t.metadata.name))
        ]


@held_until_valid()  # a refused config gets its error line alone
def plan_run(cfg: DictConfig) -> RunPlan:
    """Validate the whole config and resolve tasks; fail fast with one line."""
    # runtime.encode=false never loads the model: its folder need not exist on a scoring node
    settings = read_settings(cfg)
    values, tasks, identity = settings.values, settings.tasks, settings.identity
    runtime, spec, recipe, points, mirror = (
        values.runtime,
        values.spec,
        values.recipe,
        values.points,
        values.mirror,
    )
    if mirror is not None:
        from qzhou_eval.mirror import apply_mirror

        apply_mirror(tasks, mirror, fill_hint(cfg.benchmark.key, mirror, "{task}"))
    plan = RunPlan(
        spec, runtime, recipe, tasks, points, identity, benchmark_info(cfg.benchmark, tasks)
    )
    plan.data = {t.metadata.name: data_provenance(t, mirror) for t in tasks}
    unfinished = unfinished_tasks(plan)
    if mirror is None:  # offline, or the Hub unreachable: data must be cached (finished: none)
        check_offline_data(unfinished, fill_hint(cfg.benchmark.key))
        check_hub_data(unfinished, fill_hint(cfg.benchmark.key))
    check_results_place(runtime.results_dir, runtime.store_dir)
    # the store first: a run it refuses leaves no (empty) results folder behind
    if runtime.store_dir is not None and not runtime.encode and unfinished:
        # only read (a read-only mount is fine); a finished run needs no store (deleted since)
        check_readable_folder(
            "runtime.store_dir",
            runtime.store_dir,
            "runtime.encode=false scores from the vectors stored there: point it at the store "
            "the encoding run wrote",
        )
    stored = None
    if runtime.store_dir is not None and (runtime.encode or unfinished):
        stored = store_folder(runtime.store_dir, model_fingerprint(spec))  # (a folder in the way)
    created: list[Path] = []  # a run refused here leaves none of them behind
    try:
        if runtime.store_dir is not None and runtime.encode:
            try:
                created += check_writable_folder("runtime.store_dir", runtime.store_dir)
            except FolderNotWritable as e:
                assert stored is not None  # (encoding: its folder was checked above)
                if not any(stored.glob(f"*{KEYS}")):  # no vectors of this model to score from
                    raise
                raise FolderNotWritable(
                    f"{e} (to score from the vectors stored there: runtime.encode=false)"
                ) from None
        created += check_writable_folder("runtime.results_dir", runtime.results_dir)
    except FolderNotWritable:
        if unfinished:
            remove_empty(created)
            raise
        plan.read_only = True  # nothing to write: the summary is read from the results
    except BaseException:
        remove_empty(created)
        raise
    plan.created = created
    if runtime.encode and not plan.read_only:
        try:
            # the model folder's own settings, also where every task is finished: results an
            # earlier release filed with them ignored are not shown as the model's (exit 0)
            check_folder_settings(spec, plan.recipe)
            if spec.path and Path(spec.path).is_dir():  # a local folder's files (a Hub id's
                plan.model_folder = check_model_folder(  # revision names its files)
                    spec.path, f"{spec.name}@{spec.revision}", _model_places(plan), spec.projection
                )
        except BaseException:
            remove_empty(created)
            raise
    elif not plan.read_only and stored is not None and unfinished:
        # scored from the store: its results are of the model folder that filled the store
        results, store = _model_places(plan)
        try:
            # the folder's own settings and pipeline, as an encoding run checks them
            check_scoring_settings(spec, plan.recipe)
            plan.model_folder = check_stored_model_folder(
                store, f"{spec.name}@{spec.revision}", results
            )
        except BaseException:
            remove_empty(created)
            raise
    return plan


def _model_places(plan: RunPlan) -> list[Place]:
    """Where this run keeps the model's vectors and results (:mod:`.model_folder`): the store's
    folder of its configuration, the results' folder of its model revision."""
    runtime = plan.runtime
    folder = ResultsFolder(runtime.results_dir)
    run = result_folder(folder, plan, plan.tasks[0].metadata.name, plan.points[0])
    revision = revision_folder(run)
    places = [Place(revision, f"runtime.results_dir={runtime.results_dir}", False)]
    if runtime.store_dir is not None:
        stored = store_folder(runtime.store_dir, model_fingerprint(plan.spec))
        places.append(Place(stored, f"runtime.store_dir={runtime.store_dir}", True))
    return places


def run_id(meta: ModelMeta) -> RunId:
    """The results folder of a model meta, as the report names it."""
    return RunId(meta.name, meta.revision, meta.experiment_name)


def run_ids(plan: RunPlan, task: str) -> set[RunId]:
    """The result folders ``task`` is filed in, one per sweep point."""
    return {run_id(plan.model_meta(task, point)) for point in plan.points}


def result_folder(folder: ResultsFolder, plan: RunPlan, task: str, point: Point) -> Path:
    """The folder ``task``'s result at sweep point ``point`` is filed in."""
    return folder.get_task_result_path(task, plan.model_meta(task, point)).parent


def task_record(folder: ResultsFolder, plan: RunPlan, task: str, point: Point) -> TaskRecord:
    """The record of ``task`` at sweep point ``point`` in the folder it is filed in."""
    where = result_folder(folder, plan, task, point)
    data = plan.data.get(task)
    extra = {}
    if (content := data_identity(data)) is not None:  # not the pinned data: another identity
        extra["data_content"] = content
    official = plan.identity.variant(task) is None
    return record_for(
        where,
        plan.spec,
        plan.recipe,
        task,
        point.dim,
        precision=point.precision,
        extra=extra,
        data_source=data,
        differs=() if official else plan.identity.differences(),
    )


def unfinished_tasks(plan: RunPlan) -> list[AbsTask]:
    """The tasks that lack this configuration's result at some sweep point (reads only)."""
    if plan.runtime.overwrite or not Path(plan.runtime.results_dir).expanduser().is_dir():
        return list(plan.tasks)  # (and nothing is created here)
    folder = ResultsFolder(plan.runtime.results_dir)
    return [
        t
        for t in plan.tasks
        if not all(task_record(folder, plan, t.metadata.name, p).finished() for p in plan.points)
    ]


def execute(plan: RunPlan) -> RunOutcome:
    """Evaluate every task at every sweep point; one encoding pass per task."""
    started = time.monotonic()
    spec, runtime = plan.spec, plan.runtime
    folder = ResultsFolder(
        runtime.results_dir, encode_kwargs=ENCODE_KWARGS, writable=not plan.read_only
    )
    if not plan.read_only:
        folder.remove_stale_temp_files()
    store: MemoryStore | DiskStore
    if runtime.store_dir is not None and not plan.read_only:
        # runtime.encode=false only reads: the store may be on a read-only mount
        store = DiskStore(
            runtime.store_dir,
            model_fingerprint(spec),
            writable=runtime.encode,
            settings=spec.fingerprint_fields(),
        )
    else:
        store = MemoryStore()
    embedder = Embedder(
        lambda: _engine(spec, runtime.devices),
        tokens_per_batch=runtime.tokens_per_batch,
        max_batch_size=runtime.max_batch_size,
        max_padding=runtime.max_padding,
        store=store,
        progress=runtime.progress,
        encode=runtime.encode,
    )
    # The worker processes, if any, live as long as the run; after an error or Ctrl-C they are
    # stopped at once rather than left to finish the batches still queued.
    try:
        outcome = _evaluate(plan, folder, store, embedder)
        refresh_model_metas(plan, folder)
    except BaseException:
        embedder.close(force=True)
        raise
    finally:
        if plan.model_folder is not None:  # where the run filed anything: its model folder
            plan.model_folder.mark()
        remove_empty_result_folders(plan, folder)
        if isinstance(store, DiskStore) and store.writable:
            store.remove_if_empty()
        remove_empty(plan.created)
    embedder.close()
    outcome.encoded_inputs = embedder.encoded_inputs
    outcome.stored_inputs += embedder.stored_inputs  # (and a pipeline's processes')
    outcome.forward_calls = embedder.forward_calls
    outcome.model_seconds = embedder.model_seconds
    if isinstance(store, DiskStore):
        outcome.store_vectors = len(store)
        outcome.store_damaged = len(store.damaged)
        if not len(store):
            outcome.store_others = store.other_configurations()
        outcome.store_summary = (  # (runtime.store_dir is the store, not this folder in it)
            f"embedding store {store.folder.parent}, this model configuration's folder "
            f"{store.folder.name}: {len(store)} vectors, {store.size_bytes() / 2**20:.1f} MiB"
        )
    outcome.seconds = time.monotonic() - started
    outcome.results_dir = folder.results_dir
    return outcome


def refresh_model_metas(plan: RunPlan, folder: ResultsFolder) -> None:
    """Each of the run's result folders describes the model as it is set now: a folder whose
    ``model_meta.json`` says otherwise (its tasks finished before ``model.max_tokens`` or
    ``model.release_date`` changed; no score depends on them) gets this run's. In a folder
    this run cannot write, such a file stays as it is, with a warning."""
    for where, meta in _result_folders(plan, folder).items():
        if not plan.read_only:
            folder.write_model_meta(where, meta, only_if_changed=True)
        elif folder.model_meta_differs(where, meta):
            logger.warning(
                "%s/model_meta.json is missing or describes the model as set when its results "
                "were written (this run's model settings differ, e.g. model.max_tokens or "
                "model.reference; no score depends on them) and the folder is not writable: "
                "rerun where it is to bring it up to date",
                where,
            )


def _result_folders(plan: RunPlan, folder: ResultsFolder) -> dict[Path, ModelMeta]:
    """Each folder the run's tasks are filed in, with the model meta they are filed under."""
    folders = {}
    for task in plan.tasks:
        for point in plan.points:
            meta = plan.model_meta(task.metadata.name, point)
            folders[folder.get_task_result_path(task.metadata.name, meta).parent] = meta
    return folders


def remove_empty_result_folders(plan: RunPlan, folder: ResultsFolder) -> None:
    """Remove the run's result folders (and their records folders) that hold nothing: every
    task failed there, or lacked stored inputs (``runtime.encode=false``). No empty folder is
    left to be taken for a run."""
    if plan.read_only:
        return
    with contextlib.suppress(Exception):  # best effort: never in the way of the run's outcome
        _remove_empty_result_folders(plan, folder)


def _remove_empty_result_folders(plan: RunPlan, folder: ResultsFolder) -> None:
    for where in sorted(_result_folders(plan, folder)):
        atomic.remove_empty_folders(where / RECORDS, folder.results_dir)


def _engine(spec: ModelSpec, devices: Sequence[str]) -> Engine:
    """The engine, once a Hub id is known to be loadable here (seconds, not the Hub's retries)."""
    check_hub_model(spec.path, spec.revision)
    check_local_model(spec.path, spec.revision)
    return make_engine(spec, devices)


def _evaluate(
    plan: RunPlan, folder: ResultsFolder, store: MemoryStore | DiskStore, embedder: Embedder
) -> RunOutcome:
    encoders = Encoders(plan, embedder)
    records = task_records(plan, folder)  # a refused run writes nothing
    outcome = RunOutcome(plan)
    outcome.finished_before = [
        t.metadata.name for t in plan.tasks if not plan.pending(records, t.metadata.name)
    ]
    outcome.pending_at_start = {k for k, record in records.items() if not record.result.exists()}
    outcome.unclaimed = set(outcome.pending_at_start)
    load = model_needed(plan, store, records)
    if plan.runtime.encode:
        import_model_libraries()  # before threads load data beside the model
    if plan.runtime.scoring_workers and not plan.read_only:
        from qzhou_eval.pipeline.schedule import run_pipeline

        run_pipeline(plan, records, encoders, outcome, load_model=load)
    else:
        if load:
            pending = (t for t in plan.tasks if plan.pending(records, t.metadata.name))
            load_model_beside_data(embedder, next(pending, None))
        for task in plan.tasks:
            evaluate_in_process(plan, task, records, encoders, folder, outcome)
            store.clear()
        tasks = {t.metadata.name: t for t in plan.tasks}
        while outcome.deferred:  # what another run was evaluating: its result, or ours now
            names = wait_for_deferred(outcome.deferred, outcome.by_others, records)
            for name in names:  # (its finished points: mteb reads their results)
                evaluate_in_process(plan, tasks[name], records, encoders, folder, outcome)
                store.clear()
    return outcome


def model_needed(
    plan: RunPlan, store: MemoryStore | DiskStore, records: dict[tuple[str, Point], TaskRecord]
) -> bool:
    """Whether the model will surely be loaded: a task is to be evaluated and the store holds
    no vector of this model configuration (a first run, or vectors kept in memory). A rerun
    whose store has vectors may need none: its model loads only if an input is missing."""
    if not plan.runtime.encode or plan.read_only or len(store):
        return False
    return any(plan.pending(records, t.metadata.name) for t in plan.tasks)


def import_model_libraries() -> None:
    """Import transformers (its tokenizer base) in this thread, before other threads start.

    The model loads in one thread while others load and derive task data (the pipeline's
    look-ahead, the first task's data beside the model). transformers imports its modules
    lazily, and not safely from two threads at once: datasets, hashing the functions mteb maps
    over a dataset, reads ``transformers.PreTrainedTokenizerBase`` whenever transformers is in
    ``sys.modules``, and met it half imported ("module 'transformers' has no attribute
    'PreTrainedTokenizerBase'"): the look-ahead of a first run's first two tasks was lost (they
    were encoded on demand). About 0.3 s once torch is imported; a run that encodes needs it."""
    from transformers import PreTrainedTokenizerBase  # noqa: F401


def load_model_beside_data(embedder: Embedder, task: AbsTask | None) -> None:
    """Load the model in this thread while a daemon thread loads ``task``'s data, which mteb
    then finds loaded: a first run pays the longer of the two, not their sum. A data load that
    fails there is left to the task's evaluation, which loads it again and meets the error."""

    def load_data() -> None:
        with contextlib.suppress(Exception):
            if task is not None and not task.data_loaded:
                task.load_data()

    data = threading.Thread(target=load_data, name="qzhou-eval-first-data", daemon=True)
    data.start()
    embedder.load()
    data.join()


def task_records(plan: RunPlan, folder: ResultsFolder) -> dict[tuple[str, Point], TaskRecord]:
    """Every (task, sweep point)'s record, checked before any task is evaluated: a task whose
    folder holds another configuration's result stops the run (one line) before it writes; a
    result file that does not load is then moved aside (the task is evaluated again)."""

    records = {
        (t.metadata.name, p): task_record(folder, plan, t.metadata.name, p)
        for t in plan.tasks
        for p in plan.points
    }
    for (_, point), record in records.items():
        if point.precision == DEFAULT_PRECISION:  # 0.1 knew float32 only
            migrate_legacy(record.folder, plan.spec, plan.recipe, point.dim)
    # (one line per problem: a folder in the way is every task's)
    conflicts = list(dict.fromkeys(p for r in records.values() if (p := r.conflict()) is not None))
    if conflicts:
        more = f" (and {len(conflicts) - 1} more task(s))" if len(conflicts) > 1 else ""
        raise ConfigError(conflicts[0] + more)
    for (task, _), record in records.items():
        folder.heal(record.result, task)  # a damaged result: the task is evaluated again
    return records


def evaluate_in_process(
    plan: RunPlan,
    task: AbsTask,
    records: dict[tuple[str, Point], TaskRecord],
    encoders: Encoders,
    folder: ResultsFolder,
    outcome: RunOutcome,
) -> None:
    """Evaluate ``task`` at every sweep point in this process, one after the other."""
    runtime = plan.runtime
    name = task.metadata.name
    started = time.monotonic()
    pending = [
        p for p in plan.points if runtime.overwrite or not records[(name, p)].result.exists()
    ]
    try:
        try:
            if len(pending) > 1 and not task.data_loaded:
                task.load_data()  # once for all points (mteb keeps data it did not load)
        except Exception as e:
            if failed(plan, task, e, outcome):
                return
            raise
        evaluated = False  # a point was evaluated: what the store gave it is counted
        for point in plan.points:
            encoder = encoders(name, point)
            record = records[(name, point)]
            asked, stored = encoders.embedder.asked_inputs, encoders.embedder.stored_inputs
            outcome.claiming((name, point), record, runtime.overwrite)
            try:
                # a live run's record never looks stale, nor left
                with claimed(record, runtime.overwrite), record.live():
                    result = score(encoder, task, folder, runtime.overwrite)
                if evaluated:  # the same vectors again, for another output size: counted once
                    outcome.stored_inputs -= encoders.embedder.stored_inputs - stored
                evaluated = evaluated or encoders.embedder.asked_inputs > asked
            except EvaluatedElsewhere:  # left to it; waited for at the end
                outcome.deferred.append((name, point))
                continue
            except MissingInputs as e:
                if runtime.encode:
                    raise
                outcome.missing[name] = missing_description(plan, task, encoders.embedder, e)
                return
            except Exception as e:
                if failed(plan, task, e, outcome):
                    return
                raise
            outcome.add(name, encoder, [str(err.exception) for err in result.exceptions or []])
    finally:
        if task.data_loaded:
            task.unload_data()
        outcome.task_seconds[name] = time.monotonic() - started
