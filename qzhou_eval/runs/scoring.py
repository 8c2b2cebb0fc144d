"""One evaluation of one task at one output size: the encoders of a run, and the mteb call.

Shared by the main process (sequential runs, and tasks the pipeline scores in-process) and the
scoring processes of :mod:`qzhou_eval.pipeline`, so both score exactly alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mteb
from mteb.abstasks import AbsTask
from mteb.results import ModelResult

from qzhou_eval.encoder import RecipeEncoder
from qzhou_eval.encoder.embedder import Embedder
from qzhou_eval.fresh_tasks import evaluation_copy
from qzhou_eval.results import ResultsFolder
from qzhou_eval.runs.identity import Variant, build_model_meta

if TYPE_CHECKING:
    from qzhou_eval.runs.runner import RunPlan

ENCODE_KWARGS = {"batch_size": 1024, "show_progress_bar": False}  # what mteb records per run


class Encoders:
    """The run's mteb encoders, one per (output size, experiment folder), over one embedder."""

    def __init__(self, plan: RunPlan, embedder: Embedder) -> None:
        self.plan = plan
        self.embedder = embedder
        self._made: dict[tuple[int | None, Variant | None], RecipeEncoder] = {}

    def __call__(self, task: str, dim: int | None) -> RecipeEncoder:
        key = (dim, self.plan.variant(task))
        if key not in self._made:
            spec = self.plan.spec
            self._made[key] = RecipeEncoder(
                meta=build_model_meta(spec, self.plan.recipe, dim=dim, variant=key[1]),
                recipe=self.plan.recipe,
                embedder=self.embedder,
                dim=dim,
                normalize=spec.normalize,
                numerics=spec.numerics,
                prenormalized=spec.backbone_normalizes,
            )
        return self._made[key]


def score(
    encoder: RecipeEncoder, task: AbsTask, folder: ResultsFolder, overwrite: bool
) -> ModelResult:
    """Evaluate ``task`` with ``encoder`` into ``folder`` (a finished result is read, unless
    ``overwrite``), on a copy of the task that scores as a fresh one (see fresh_tasks)."""
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
