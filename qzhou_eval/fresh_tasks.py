"""Task objects that score as fresh ones: no evaluation depends on what ran before it.

An mteb 2.26 task draws some random subsamples from generators it owns, ``task.rng_state``
(``random.Random``) and ``task.np_rng`` (``numpy.random.Generator``): v2 clustering picks the
documents it embeds with ``rng_state.sample`` (``abstasks/clustering.py``), multilabel
classification undersamples with ``np_rng``. Both are seeded once, in ``AbsTask.__init__``, and
every ``evaluate`` advances them. So a task object evaluated a second time (the next MRL
dimension, the next job of a Hydra multirun in the same process, a second model) scores other
subsamples than a fresh task would: its score depends on what ran before it. The leaderboard's
scores came from fresh task objects, one evaluation each.

Two copies, both shallow (the loaded data, filters and metadata are shared, not copied):

- :func:`fresh_copy`: a task as constructed, its generators seeded from ``task.seed``. Benchmark
  tasks are taken through it: ``mteb.get_benchmark`` hands out the same module-level task objects
  on every call in a process, so they may carry an earlier run's advanced generators (and an
  earlier run's mirror metadata).
- :func:`evaluation_copy`: one per ``mteb.evaluate`` call of a loaded task, with its own copies
  of the generators as they stand after loading (what a fresh task has when its evaluation
  starts), so evaluating the copy leaves the original's generators untouched.

mteb has no public API to re-seed a task; its private ``mteb._set_seed._set_seed`` also re-seeds
the process-wide generators. :func:`seeded_generators` builds what ``AbsTask.__init__`` assigns;
``tests/test_fresh_tasks.py`` checks it against a newly constructed task, so a change in mteb
fails there and not silently in a score.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from typing import TypeVar

import numpy as np
from mteb.abstasks import AbsTask

T = TypeVar("T", bound=AbsTask)


def seeded_generators(seed: int) -> tuple[random.Random, np.random.Generator]:
    """``(rng_state, np_rng)`` as ``AbsTask.__init__(seed=seed)`` sets them in mteb 2.26."""
    return random.Random(seed), np.random.default_rng(seed)


def fresh_copy(task: T) -> T:
    """A copy of ``task`` with the generators it had when it was constructed."""
    clone = copy.copy(task)
    clone.rng_state, clone.np_rng = seeded_generators(task.seed)
    _copy_sub_tasks(clone, fresh_copy)
    return clone


def evaluation_copy(task: T) -> T:
    """A copy of ``task`` for one evaluation: same data, its own copy of the generators."""
    clone = copy.copy(task)
    clone.rng_state = copy.deepcopy(task.rng_state)
    clone.np_rng = copy.deepcopy(task.np_rng)
    _copy_sub_tasks(clone, evaluation_copy)
    return clone


def _copy_sub_tasks(task: AbsTask, how: Callable[[AbsTask], AbsTask]) -> None:
    """An aggregate task evaluates its sub-tasks: they get the same treatment."""
    from mteb.abstasks.aggregated_task import AbsTaskAggregate

    if not isinstance(task, AbsTaskAggregate):
        return
    subs = [how(sub) for sub in task.metadata.tasks]
    task.metadata = task.metadata.model_copy(update={"tasks": subs})
    task.taskname_to_task = {sub.metadata.name: sub for sub in subs}  # type: ignore[attr-defined]
