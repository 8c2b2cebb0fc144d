"""The task names a recipe may mention (mteb's registry and the demo suites), and their types."""

from __future__ import annotations

from functools import cache


@cache
def _demo_task_types() -> dict[str, str]:
    from qzhou_eval.demo import DEMO_SUITES, get_demo_tasks

    return {t.metadata.name: t.metadata.type for s in DEMO_SUITES for t in get_demo_tasks(s)}


@cache
def _task_type(name: str) -> str | None:
    import mteb

    if name in _demo_task_types():
        return _demo_task_types()[name]
    try:
        return str(mteb.get_task(name).metadata.type)
    except KeyError:
        return None


class _KnownTasks:
    """A container (``name in KNOWN_TASKS``) over mteb's public ``get_task`` and the demo suites,
    so nothing enumerates mteb's thousands of tasks; a recipe's
    :class:`~qzhou_eval.recipe.TaskCatalog`."""

    def __contains__(self, name: object) -> bool:
        return _task_type(str(name)) is not None

    @property
    def task_types(self) -> frozenset[str]:
        """mteb's task types (``TaskMetadata.type``: no public list but the annotation's)."""
        from typing import get_args

        from mteb.abstasks.task_metadata import TaskType

        return frozenset(get_args(TaskType))

    def type_of(self, task: str) -> str | None:
        return _task_type(task)


KNOWN_TASKS = _KnownTasks()
