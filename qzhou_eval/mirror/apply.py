"""Point mteb tasks at an offline mirror so that mteb's own ``load_data`` reads local folders.

Why the path, and nothing else, changes: every official task reads
``datasets.load_dataset(path, revision=..., name=...)`` (retrieval and reranking tasks through
``RetrievalDatasetLoader``, which also calls ``get_dataset_config_names`` and
``get_dataset_split_names`` on the same path). For a local folder ``datasets`` builds the dataset
from the folder's files (its README ``configs``, or file names for the splits) and ignores
``revision``, with no network call (the path is a link to the folder named after its content,
so that ``datasets``' cache of the tables it builds is never another content's:
:mod:`.datasets_cache`); the revision stays in the metadata, so results still record
the pinned one (which of the pinned files the folder holds is what :mod:`.check` verifies). The
Hub-path fallback offline, ``datasets``' cache of processed datasets, is never reached; per
DESIGN.md it ignores the revision and loses the ``top_ranked`` config, which silently turns a
reranking task into full-corpus retrieval.

``metadata`` is a class attribute in mteb, shared by every instance of a task. The mirrored
metadata is a copy set on the instance (mteb's own data-cleaning filters do the same), so other
instances and the class keep the Hub path. Two consequences:

- ``mteb.get_benchmark`` returns the same task objects on every call in a process: applying the
  mirror to them is visible to every later caller of ``get_benchmark`` in that process. Copy the
  tasks first (``copy.copy``) when that matters.
- ``AbsTask.unload_data`` drops the instance's metadata, and ``mteb.evaluate`` calls it after
  each task it loaded itself: after an evaluate call the task points at the Hub again. Call
  :func:`apply_mirror` again before each ``mteb.evaluate`` (it is cheap and idempotent), or load
  the data once yourself (``task.load_data()``), which makes mteb keep it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from qzhou_eval.config.hub import DOWNLOAD_METADATA
from qzhou_eval.errors import MirrorError
from qzhou_eval.mirror.check import repo_problem
from qzhou_eval.mirror.datasets_cache import content_link
from qzhou_eval.mirror.layout import mirror_folder, read_marker
from qzhou_eval.mirror.repos import (
    hub_dataset,
    leaf_tasks,
    reads_lang_column,
    required_configs,
    required_splits,
    sub_tasks,
)

if TYPE_CHECKING:
    from mteb.abstasks import AbsTask


@dataclass(frozen=True)
class _Missing:
    task: str
    repo_id: str
    revision: str
    folder: Path
    problem: str


def apply_mirror(tasks: Iterable[AbsTask], mirror_dir: Path | str, fetch_hint: str) -> None:
    """Point every task (and every sub-task of an aggregate) at its folder in ``mirror_dir``.

    All folders are checked before any task is changed (:func:`check_mirror`): if one is
    missing or incomplete, no task is changed. Tasks built locally (the demo suites, from
    installed packages) read no Hub data and are left as they are.
    """
    tasks = check_mirror(tasks, mirror_dir, fetch_hint)
    mirror_dir = Path(mirror_dir).expanduser().resolve()
    for task in tasks:
        if task.is_aggregate:
            _mirror_aggregate(task, mirror_dir)
        else:
            _mirror_task(task, mirror_dir)


def check_mirror(
    tasks: Iterable[AbsTask], mirror_dir: Path | str, fetch_hint: str
) -> list[AbsTask]:
    """Check that ``mirror_dir`` holds every task's repo, complete, changing nothing (see
    :mod:`qzhou_eval.mirror.check`): else MirrorError names the first task missing data, its
    repo and the command that fetches it (``fetch_hint.format(task=<comma-separated names of
    every task missing data>)``). Returns the tasks that read Hub data (not the demo suites)."""
    from qzhou_eval.demo.base import BuiltLocally

    tasks = [t for t in tasks if not isinstance(t, BuiltLocally)]
    mirror_dir = Path(mirror_dir).expanduser().resolve()
    missing: list[_Missing] = []
    for task in tasks:
        for leaf in leaf_tasks(task):
            dataset = hub_dataset(leaf)
            folder = mirror_folder(mirror_dir, dataset["path"])
            problem = repo_problem(
                folder,
                dataset["revision"],
                required_splits(leaf),
                configs=required_configs(leaf),
                lang_column=reads_lang_column(leaf),
            )
            if problem:
                name = task.metadata.name
                missing.append(
                    _Missing(name, dataset["path"], dataset["revision"], folder, problem)
                )
    if missing:
        raise MirrorError(_missing_message(missing, mirror_dir, fetch_hint))
    return tasks


def _mirror_task(task: AbsTask, mirror_dir: Path) -> None:
    """Give ``task`` its own metadata whose dataset path is the local folder (read through the
    link :mod:`.datasets_cache` names after its content).

    The copy starts from the instance's current metadata (its own if mteb's data cleaning gave it
    one), so only the path differs; the class's metadata is left untouched.
    """
    folder = content_link(mirror_folder(mirror_dir, hub_dataset(task)["path"]))
    dataset = {**task.metadata.dataset, "path": str(folder)}
    task.metadata = task.metadata.model_copy(update={"dataset": dataset})


def _mirror_aggregate(task: AbsTask, mirror_dir: Path) -> None:
    """Mirror copies of the sub-tasks: the originals are shared through the class metadata."""
    subs = [copy.copy(sub) for sub in sub_tasks(task)]
    for sub in subs:
        _mirror_task(sub, mirror_dir)
    task.metadata = task.metadata.model_copy(update={"tasks": subs})
    task.tasks = subs  # type: ignore[attr-defined]
    task.taskname_to_task = {sub.metadata.name: sub for sub in subs}  # type: ignore[attr-defined]


def _missing_message(missing: list[_Missing], mirror_dir: Path, fetch_hint: str) -> str:
    first = missing[0]
    names = list(dict.fromkeys(m.task for m in missing))
    more = f" (and {len(names) - 1} more task(s): {', '.join(names[1:])})" if len(names) > 1 else ""
    command = fetch_hint.format(task=",".join(names))
    fix = f"fetch it with: {command}"
    if _is_a_repo_folder(mirror_dir, missing):  # (a fill there would nest repos in a repo)
        fix = (
            f"data.mirror names a repo's own folder: name the folder that holds the repos' "
            f"folders (<org>__<name>/), e.g. data.mirror={mirror_dir.parent}"
        )
    text = (
        f"offline mirror {mirror_dir} lacks the dataset of task {first.task}: "
        f"repo {first.repo_id}@{first.revision[:12]} "
        f"(folder {first.folder} {first.problem}){more}; {fix}"
    )
    return " ".join(text.split())


def _is_a_repo_folder(folder: Path, missing: list[_Missing]) -> bool:
    """Whether ``folder`` is one repo's download (its marker, or ``snapshot_download``'s
    metadata, at its top, or the name of a repo's folder) rather than a mirror of repos."""
    named = folder.name in {m.folder.name for m in missing}
    return named or read_marker(folder) is not None or (folder / DOWNLOAD_METADATA).is_dir()
