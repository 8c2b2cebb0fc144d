"""Which splits a task counts: today's mteb definition or the one behind the published numbers.

The published CMTEB numbers were computed when MultilingualSentiment counted only its
``validation`` split; today's mteb definition averages ``validation`` and ``test``. Every other task
of MTEB(eng, v2) and MTEB(cmn, v1) is counted the same way under both definitions.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from mteb.abstasks import AbsTask

from qzhou_eval.errors import ConfigError

PUBLISHED = "published"
CURRENT = "current"
DEFINITIONS = (PUBLISHED, CURRENT)
# The published numbers reproduce only under this definition, and reproducing them is what the
# report is for; the other definition's numbers are printed beside them wherever they differ.
DEFAULT_DEFINITION = PUBLISHED

# task name -> the splits it counted when the published numbers were computed
PUBLISHED_SPLITS: dict[str, tuple[str, ...]] = {"MultilingualSentiment": ("validation",)}


def check_definition(definition: str) -> str:
    """Return ``definition`` if it is known, else raise a one-line ConfigError."""
    if definition not in DEFINITIONS:
        raise ConfigError(f"definition={definition!r} is unknown; use one of {list(DEFINITIONS)}")
    return definition


def other_definition(definition: str) -> str:
    """The definition that is not ``definition``."""
    return CURRENT if check_definition(definition) == PUBLISHED else PUBLISHED


def affected_tasks(tasks: Sequence[AbsTask]) -> list[str]:
    """Names of the tasks that the two definitions count differently."""
    return [t.metadata.name for t in tasks if _published_splits(t) is not None]


def apply_definition(tasks: Sequence[AbsTask], definition: str) -> list[AbsTask]:
    """The tasks as ``definition`` counts them.

    Affected tasks are shallow copies narrowed to the published splits; the caller's task objects
    (often mteb's cached benchmark objects) are never modified.
    """
    if check_definition(definition) == CURRENT:
        return list(tasks)
    out: list[AbsTask] = []
    for task in tasks:
        splits = _published_splits(task)
        if splits is None:
            out.append(task)
        else:
            narrowed = copy.copy(task)
            narrowed.filter_eval_splits(list(splits))
            out.append(narrowed)
    return out


def describe_definition(definition: str, tasks: Sequence[AbsTask]) -> str | None:
    """One line saying what the affected tasks count, or None when no task is affected."""
    check_definition(definition)
    parts = []
    for task in tasks:
        published = _published_splits(task)
        if published is None:
            continue
        if definition == PUBLISHED:
            what = (
                f"{_join(published)} only (the published definition, as in the published numbers)"
            )
        else:
            what = f"{_join(task.eval_splits)} (today's mteb definition)"
        parts.append(f"{task.metadata.name} counts {what}")
    return "; ".join(parts) or None


def _join(splits: Sequence[str]) -> str:
    return " and ".join(splits)


def _published_splits(task: AbsTask) -> tuple[str, ...] | None:
    """The published split set of ``task`` when it differs from its current one, else None."""
    splits = PUBLISHED_SPLITS.get(task.metadata.name)
    if splits is None or not set(splits) <= set(task.eval_splits):
        return None
    if tuple(splits) == tuple(task.eval_splits):
        return None
    return splits
