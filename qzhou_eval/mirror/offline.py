"""A run without ``data.mirror`` on a machine told to stay offline (``HF_HUB_OFFLINE`` /
``HF_DATASETS_OFFLINE``): Hub datasets can come only from the Hugging Face caches.

:func:`check_offline_data` refuses, in one line and before anything is loaded or created, a task
whose repo neither cache holds (``datasets``' processed cache ``<org>___<name>``, the Hub cache
``datasets--<org>--<name>``): offline, ``datasets`` would otherwise fail deep inside mteb after its
retries. Where a cache holds the repo the run goes on; if loading still cannot reach the data,
:func:`unreachable_data` turns the error into the same kind of line. :func:`check_hub_data` does
the same online when the Hub cannot be reached (``datasets`` would retry each request with
back-off for about a minute first, printing a line per retry).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from qzhou_eval.config.hub import hub_endpoint, reachable
from qzhou_eval.errors import MirrorError
from qzhou_eval.mirror.repos import hub_dataset, leaf_tasks

if TYPE_CHECKING:
    from mteb.abstasks import AbsTask

OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
_TRUE = {"1", "true", "yes", "on"}


def offline_setting() -> str | None:
    """``HF_HUB_OFFLINE=1`` (the first offline variable that is set), or None when online."""
    for var in OFFLINE_VARS:
        value = os.environ.get(var, "")
        if value.strip().lower() in _TRUE:
            return f"{var}={value}"
    return None


def hub_repo(task: AbsTask) -> tuple[str, str] | None:
    """(repo, revision) a task reads from the Hub; None for data built locally (demo suites)."""
    from qzhou_eval.demo.base import BuiltLocally

    if isinstance(task, BuiltLocally):
        return None
    try:
        dataset = hub_dataset(task)
    except MirrorError:
        return None
    return dataset["path"], dataset["revision"]


def in_hf_cache(repo: str) -> bool:
    """Whether either Hugging Face cache holds anything of dataset ``repo`` (offline reads)."""
    import datasets.config
    import huggingface_hub.constants

    org, _, name = repo.partition("/")
    return (Path(datasets.config.HF_DATASETS_CACHE) / f"{org}___{name}").is_dir() or (
        Path(huggingface_hub.constants.HF_HUB_CACHE) / f"datasets--{org}--{name}"
    ).is_dir()


def check_offline_data(tasks: Iterable[AbsTask], fill_hint: str) -> None:
    """MirrorError naming the first task offline mode cannot read, its repo, ``data.mirror`` and
    ``fill_hint`` (the command that fills a mirror); nothing when online."""
    setting = offline_setting()
    if setting is None:
        return
    error = _not_cached(
        _hub_reads(tasks),
        f"{setting} and no data.mirror",
        ", which offline mode cannot reach",
        fill_hint,
    )
    if error is not None:
        raise error


def check_hub_data(tasks: Iterable[AbsTask], fill_hint: str) -> None:
    """Online, a MirrorError in seconds when a task reads its data from the Hub and the Hub
    cannot be reached (a 5 s connection probe; assumed reachable behind a proxy): naming the
    first task whose dataset the Hugging Face cache lacks, ``data.mirror`` and ``fill_hint``, or,
    where the cache holds them all, the offline switch that reads them from it. Nothing offline
    (see :func:`check_offline_data`), for data built locally, or when the Hub answers."""
    if offline_setting() is not None:
        return
    reads = _hub_reads(tasks)
    if not reads or reachable():
        return
    host = hub_endpoint()[0]
    cause = f"the Hugging Face Hub ({host}) cannot be reached"
    error = _not_cached(reads, f"{cause} and there is no data.mirror", "", fill_hint)
    raise error or MirrorError(
        f"{cause}: set HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 to read the tasks' data from the "
        "Hugging Face cache, which holds it, or set data.mirror=<folder>"
    )


def _hub_reads(tasks: Iterable[AbsTask]) -> list[tuple[str, str, str]]:
    """(task, repo, revision) of each dataset the tasks read from the Hub."""
    return [
        (task.metadata.name, *repo)
        for task in tasks
        for leaf in leaf_tasks(task)
        if (repo := hub_repo(leaf)) is not None
    ]


def _not_cached(
    reads: list[tuple[str, str, str]], cause: str, reach: str, fill_hint: str
) -> MirrorError | None:
    """The one line for the first of ``reads`` the Hugging Face cache lacks (``cause``: why the
    Hub is no way; ``reach``: said of the Hub), counting the other tasks; None if it has all."""
    missing = [r for r in reads if not in_hf_cache(r[1])]
    if not missing:
        return None
    name, repo, revision = missing[0]
    others = list(dict.fromkeys(m[0] for m in missing[1:] if m[0] != name))
    more = f" (and {len(others)} more task(s): {', '.join(others[:5])})" if others else ""
    return MirrorError(
        f"{cause}: task {name} reads {repo}@{revision[:12]} from the Hub{reach}, and the Hugging "
        f"Face cache does not hold it{more}; set data.mirror=<folder> (fill the folder on a "
        f"connected machine: {fill_hint})"
    )


def unreachable_data(task: AbsTask, error: BaseException, fill_hint: str) -> MirrorError | None:
    """The one-line error for ``task`` whose data loading could not reach the Hub, else None."""
    if not isinstance(error, ConnectionError):  # datasets' "Couldn't reach ... on the Hub"
        return None
    repo = hub_repo(task) if not task.is_aggregate else None
    where = f"{repo[0]}@{repo[1][:12]}" if repo else "its dataset"
    reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
    return MirrorError(
        f"task {task.metadata.name} could not read {where} ({reason}); set data.mirror=<folder> "
        f"(fill the folder on a connected machine: {fill_hint})"
    )
