"""The task names a recipe may mention: mteb's registry and the demo suites."""

from __future__ import annotations

from functools import cache


@cache
def _demo_task_names() -> frozenset[str]:
    from qzhou_eval.demo import DEMO_SUITES, get_demo_tasks

    return frozenset(t.metadata.name for s in DEMO_SUITES for t in get_demo_tasks(s))


class _KnownTasks:
    """A container (``name in KNOWN_TASKS``) over mteb's public ``get_task`` and the demo suites,
    so nothing enumerates mteb's thousands of tasks."""

    def __contains__(self, name: object) -> bool:
        import mteb

        if name in _demo_task_names():
            return True
        try:
            mteb.get_task(str(name))
        except KeyError:
            return False
        return True


KNOWN_TASKS = _KnownTasks()
