"""One evaluation of one task at one sweep point: the encoders of a run, and the mteb call.

Shared by the main process (sequential runs, and tasks the pipeline scores in-process) and the
scoring processes of :mod:`qzhou_eval.pipeline`, so both score exactly alike.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import mteb
from mteb.abstasks import AbsTask
from mteb.results import ModelResult

from qzhou_eval.encoder import RecipeEncoder
from qzhou_eval.encoder.embedder import Embedder, MissingInputs
from qzhou_eval.errors import UserError
from qzhou_eval.fresh_tasks import evaluation_copy
from qzhou_eval.mirror.content import damaged_data
from qzhou_eval.mirror.datasets_cache import full_cache
from qzhou_eval.mirror.offline import unreachable_data
from qzhou_eval.precision import Point
from qzhou_eval.results import ResultsFolder
from qzhou_eval.runs.identity import Variant
from qzhou_eval.runs.similarity import similarities_on_cpu

if TYPE_CHECKING:
    from qzhou_eval.runs.runner import RunOutcome, RunPlan

# mteb logs it (the run's "warning:" line) and warns it too: a second copy, raw, on stderr
_LOGGED_TOO = r"The task '.*' is superseded by "


def quiet_libraries() -> None:
    """mteb's log from warnings up; the Python warnings mteb also logs ignored (its logger's line
    is the one printed); the errors datasets' file loaders log before they raise on a damaged
    file left out (the run's one line names the file, :mod:`qzhou_eval.mirror.content`)."""
    logging.getLogger("mteb").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=_LOGGED_TOO, category=UserWarning)
    logging.getLogger("datasets.packaged_modules").setLevel(logging.CRITICAL)


logger = logging.getLogger(__name__)

ENCODE_KWARGS = {"batch_size": 1024, "show_progress_bar": False}  # what mteb records per run


class Encoders:
    """The run's mteb encoders, one per (sweep point, experiment folder), over one embedder."""

    def __init__(self, plan: RunPlan, embedder: Embedder) -> None:
        self.plan = plan
        self.embedder = embedder
        self._made: dict[tuple[Point, Variant | None], RecipeEncoder] = {}

    def __call__(self, task: str, point: Point) -> RecipeEncoder:
        key = (point, self.plan.variant(task))
        if key not in self._made:
            spec = self.plan.spec
            self._made[key] = RecipeEncoder(
                meta=self.plan.model_meta(task, point),
                recipe=self.plan.recipe,
                embedder=self.embedder,
                dim=point.dim,
                model_dim=spec.embed_dim,
                normalize=spec.normalize,
                numerics=spec.numerics,
                prenormalized=spec.backbone_normalizes,
                precision=point.precision,
            )
        return self._made[key]


def score(
    encoder: RecipeEncoder, task: AbsTask, folder: ResultsFolder, overwrite: bool
) -> ModelResult:
    """Evaluate ``task`` with ``encoder`` into ``folder`` (a finished result is read, unless
    ``overwrite``), on a copy of the task that scores as a fresh one (see fresh_tasks), its
    similarities computed on the CPU (see :mod:`.similarity`)."""
    similarities_on_cpu()
    return mteb.evaluate(
        encoder,
        evaluation_copy(task),
        cache=folder,
        overwrite_strategy="always" if overwrite else "only-missing",
        encode_kwargs=ENCODE_KWARGS,
        show_progress_bar=False,
        raise_error=True,
        co2_tracker=False,
    )


def failed(plan: RunPlan, task: AbsTask, error: Exception, outcome: RunOutcome) -> bool:
    """Whether ``error`` of ``task`` is recorded as its failure (``runtime.continue_on_error``);
    False: the caller re-raises it. Unreachable or damaged data become their one-line error."""
    name = task.metadata.name
    problem = data_problem(plan, task, error)
    if problem is not None and not plan.runtime.continue_on_error:
        raise problem from None
    if problem is None and (isinstance(error, UserError) or not plan.runtime.continue_on_error):
        return False  # a failed task keeps the finished ones
    if problem is None:
        logger.exception("task %s failed", name)
    outcome.failures[name] = str(problem) if problem else f"{type(error).__name__}: {error}"
    return True


def data_problem(plan: RunPlan, task: AbsTask, error: BaseException) -> UserError | None:
    """The one line for a task whose data could not be loaded: unreachable (offline, no Hub),
    datasets' cache folder full, a damaged mirror file (named), or any failure on mirror data not
    shown to be the pinned revision (:func:`~qzhou_eval.mirror.content.damaged_data`); None for
    any other error."""
    name = task.metadata.name
    hint = fill_hint(plan.benchmark.key, (plan.data.get(name) or {}).get("mirror"), name)
    return (
        unreachable_data(task, error, hint)
        or full_cache(name, error)
        or damaged_data(name, error, plan.data.get(name), hint)
    )


def fill_hint(benchmark_key: str, mirror: str | Path | None = None, task: str | None = None) -> str:
    """The command that fills a mirror (``<folder>`` where none is known yet) with a benchmark's
    datasets, or only a task's."""
    only = f" 'benchmark.tasks=[{task}]'" if task else ""
    return (
        f"python -m qzhou_eval.mirror benchmark={benchmark_key} data.mirror={mirror or '<folder>'}"
        f"{only}"
    )


def missing_description(
    plan: RunPlan, task: AbsTask, embedder: Embedder, first: MissingInputs
) -> str:
    """How many of ``task``'s inputs the store lacks (``runtime.encode=false``): counted over
    every input the look-ahead derives, else the first request that missed some."""
    from qzhou_eval.pipeline.lookahead import count_missing

    n = count_missing(task, plan.recipe, embedder.store)
    return f"{n} input(s) not stored" if n else f"{len(first.inputs)}+ input(s) not stored"
