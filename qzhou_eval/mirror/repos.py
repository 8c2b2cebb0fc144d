"""Which Hugging Face dataset repos (and revisions) a task reads.

Every task of MTEB(eng, v2) and MTEB(cmn, v1) (checked against mteb 2.26.24) reads exactly one
repo, ``metadata.dataset["path"]`` at ``metadata.dataset["revision"]``: none overrides
``load_data``, and the ``dataset_transform`` hooks some define (clustering, pair classification,
ToxicConversations) only reshape the loaded data. Neither benchmark holds an aggregate task; for
one (e.g. ``CQADupstackRetrieval``) the repos of its sub-tasks are returned. A task whose
``load_data`` reads repos of its own beyond its metadata is not detected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qzhou_eval.errors import MirrorError
from qzhou_eval.mirror.layout import is_repo_id

if TYPE_CHECKING:
    from mteb.abstasks import AbsTask


def task_repos(task: AbsTask) -> list[tuple[str, str]]:
    """The (repo_id, revision) pairs ``task`` loads, in order, without duplicates.

    Reads the published dataset entry even after :func:`apply_mirror` pointed the instance at a
    local folder, so the answer does not change once a task is mirrored.
    """
    datasets = [hub_dataset(leaf) for leaf in leaf_tasks(task)]
    return list(dict.fromkeys((d["path"], d["revision"]) for d in datasets))


def leaf_tasks(task: AbsTask) -> list[AbsTask]:
    """The tasks that load data: an aggregate's sub-tasks, else the task itself."""
    return sub_tasks(task) if task.is_aggregate else [task]


def sub_tasks(task: AbsTask) -> list[AbsTask]:
    """The tasks an aggregate task evaluates (what ``mteb.evaluate`` runs for it)."""
    return list(task.metadata.tasks)  # type: ignore[attr-defined]


def required_splits(task: AbsTask) -> tuple[str, ...]:
    """The splits a (leaf) task reads: its eval splits, plus the train split of classification."""
    splits = list(task.eval_splits)
    train_split = getattr(task, "train_split", None)
    if isinstance(train_split, str):
        splits.append(train_split)
    return tuple(dict.fromkeys(splits))


def hub_dataset(task: AbsTask) -> dict[str, str]:
    """The task's dataset entry naming its Hub repo: the instance's, else the class's.

    The instance's entry is a local folder once mirrored; the class's entry is the published one.
    """
    for dataset in (task.metadata.dataset, type(task).metadata.dataset):
        if is_repo_id(str(dataset.get("path", ""))):
            return dict(dataset)
    raise MirrorError(
        f"task {task.metadata.name} reads its data from {task.metadata.dataset.get('path')!r}, "
        "not from a Hugging Face repo; it cannot be mirrored"
    )


def required_configs(task: AbsTask) -> tuple[tuple[str, ...], ...]:
    """The configs a (leaf) task loads by name, each as its accepted alternatives.

    Retrieval and reranking (mteb's ``RetrievalDatasetLoader``): ``corpus``, ``queries`` (or
    ``query``), the qrels as ``default`` (or ``qrels``) and, for reranking, ``top_ranked``; a
    subset ``s`` other than ``default`` prefixes them (``s-corpus``...). Other multilingual tasks
    load each subset as a config, unless they split one ``default`` config by its ``lang`` column
    (``fast_loading``). Monolingual tasks: none (the default config).
    """
    from mteb.abstasks import AbsTaskRetrieval

    subsets = list(dict.fromkeys(task.hf_subsets))
    if isinstance(task, AbsTaskRetrieval):
        needed: list[tuple[str, ...]] = []
        for subset in subsets:
            prefix = "" if subset == "default" else f"{subset}-"
            needed += [(f"{prefix}corpus",), (f"{prefix}queries",) + (() if prefix else ("query",))]
            needed.append((f"{prefix}qrels",) if prefix else ("default", "qrels"))
            if task.metadata.type == "Reranking":
                needed.append((f"{prefix}top_ranked",))
        return tuple(needed)
    if not task.metadata.is_multilingual:
        return ()
    if getattr(task, "fast_loading", False):
        return (("default",),)
    return tuple((subset,) for subset in subsets)


def reads_lang_column(task: AbsTask) -> bool:
    """Whether the task splits its default config into subsets by a ``lang`` column."""
    return bool(task.metadata.is_multilingual and getattr(task, "fast_loading", False))
