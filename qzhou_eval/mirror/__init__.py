"""Offline dataset mirror: Hugging Face dataset repos on disk, one folder per repo.

A mirror is a folder ``<dir>`` where ``<dir>/<org>__<name>/`` holds a dataset repo's files at the
revision the task pins, exactly what ``huggingface_hub.snapshot_download(repo_id,
repo_type="dataset", revision=..., local_dir=<dir>/<org>__<name>)`` writes.

- :func:`fill_mirror` (connected machine): download the repos a list of tasks needs.
- :func:`apply_mirror` (offline machine): check the folders, then point the tasks at them so that
  mteb's own ``load_data`` reads them; a missing dataset is a :class:`MirrorError` before
  anything is loaded.
"""

from typing import TYPE_CHECKING

from qzhou_eval.lazy import lazy_names

if TYPE_CHECKING:
    from qzhou_eval.mirror.apply import apply_mirror
    from qzhou_eval.mirror.check import repo_problem
    from qzhou_eval.mirror.fill import fill_mirror
    from qzhou_eval.mirror.layout import MARKER_NAME, mirror_folder
    from qzhou_eval.mirror.repos import task_repos

__all__ = [
    "MARKER_NAME",
    "apply_mirror",
    "fill_mirror",
    "mirror_folder",
    "repo_problem",
    "task_repos",
]
__getattr__ = lazy_names(
    __name__,
    {
        "MARKER_NAME": ".layout",
        "apply_mirror": ".apply",
        "fill_mirror": ".fill",
        "mirror_folder": ".layout",
        "repo_problem": ".check",
        "task_repos": ".repos",
    },
)
