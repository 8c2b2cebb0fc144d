"""Fill an offline mirror on a connected machine: each task's repo at its pinned revision.

A repo is downloaded with ``snapshot_download`` into ``<mirror>/.staging/<org>__<name>@<rev>``,
checked, given the marker, and only then renamed to ``<mirror>/<org>__<name>``. An interrupted
run therefore never leaves a half-written folder under the final name, and the next run resumes
the staged download (``snapshot_download`` skips files it already has). The marker is not what
makes a folder acceptable (see :mod:`qzhou_eval.mirror.check`): folders filled with plain
``snapshot_download`` / ``huggingface-cli download`` are accepted and, when complete, skipped here.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import huggingface_hub

from qzhou_eval.config.folders import remove_empty
from qzhou_eval.errors import MirrorError
from qzhou_eval.mirror.check import repo_problem
from qzhou_eval.mirror.layout import mirror_folder, staging_folder, write_marker
from qzhou_eval.mirror.provenance import matches_revision
from qzhou_eval.mirror.repos import hub_dataset, leaf_tasks, required_splits

if TYPE_CHECKING:
    from mteb.abstasks import AbsTask


def fill_mirror(
    tasks: Iterable[AbsTask],
    mirror_dir: Path | str,
    *,
    snapshot_download: Callable[..., Any] = huggingface_hub.snapshot_download,
    before_downloading: Callable[[], None] | None = None,
) -> list[Path]:
    """Download every task's dataset repo that the mirror lacks; return the folders written.

    Repos already complete at the pinned revision are skipped (and not returned). A folder that
    is incomplete, holds another revision, a file whose content differs from the hash its
    download recorded (damaged or edited since), or a file it recorded no download of (a file
    left behind, files copied without their download metadata) is replaced once the new
    download is complete: a run files such data as not shown to be the pinned revision.
    ``snapshot_download`` is called with keywords ``repo_id``, ``repo_type="dataset"``,
    ``revision`` and ``local_dir``. ``before_downloading`` is called once, before the first
    download touches the mirror (none when every repo is complete): it may raise to stop.
    """
    mirror_dir = Path(mirror_dir).expanduser().resolve()
    written: list[Path] = []
    for (repo_id, revision), splits in _needs(tasks).items():
        final = mirror_folder(mirror_dir, repo_id)
        # complete, and shown to be the pinned revision as a run judges it: a folder copied
        # without its download metadata, or with a file left behind, was skipped here and its
        # tasks then filed as other data's (a trial)
        if repo_problem(final, revision, splits) is None and matches_revision(final, revision):
            continue
        if before_downloading is not None:
            before_downloading()
            before_downloading = None
        staging = staging_folder(mirror_dir, repo_id, revision)
        _drop_stale_partials(staging)
        staging.parent.mkdir(parents=True, exist_ok=True)
        try:
            snapshot_download(
                repo_id=repo_id, repo_type="dataset", revision=revision, local_dir=str(staging)
            )
        except BaseException:
            remove_empty([staging.parent, staging])  # a download that wrote nothing: no folder
            raise
        problem = repo_problem(staging, revision, splits)
        if problem:
            raise MirrorError(
                f"downloaded {repo_id}@{revision} into {staging} but the folder {problem}"
            )
        write_marker(staging, repo_id, revision)
        _move_into_place(staging, final)
        written.append(final)
    return written


def _needs(tasks: Iterable[AbsTask]) -> dict[tuple[str, str], tuple[str, ...]]:
    """(repo_id, revision) -> the splits the tasks read from it, in task order."""
    needs: dict[tuple[str, str], tuple[str, ...]] = {}
    for task in tasks:
        for leaf in leaf_tasks(task):
            dataset = hub_dataset(leaf)
            key = (dataset["path"], dataset["revision"])
            needs[key] = tuple(dict.fromkeys((*needs.get(key, ()), *required_splits(leaf))))
    return needs


def _drop_stale_partials(staging: Path) -> None:
    """Remove ``*.incomplete`` files a killed download left, before resuming in ``staging``.

    huggingface_hub 2.x (checked: 2.4) downloads each file into a uniquely named ``.incomplete``
    file and deletes it when the download fails, so only a killed process leaves one behind, and
    it is never resumed from; left in place it would make the finished folder look interrupted.
    (Older versions resumed from ``<etag>.incomplete``; dropping one costs that file's progress.)
    """
    meta_root = staging / ".cache" / "huggingface" / "download"
    if meta_root.is_dir():
        for partial in meta_root.rglob("*.incomplete"):
            partial.unlink(missing_ok=True)


def _move_into_place(staging: Path, final: Path) -> None:
    """Rename ``staging`` to ``final``, first moving aside (then deleting) what ``final`` holds."""
    old = None
    if final.exists():
        old = staging.with_name(f"{final.name}.old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        final.rename(old)
    staging.rename(final)
    if old is not None:
        shutil.rmtree(old)
