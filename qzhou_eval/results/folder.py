"""mteb's ResultCache rooted at a results folder, with crash-safe writes.

Layout (mteb's own, so folders can be compared with and submitted to the public results repo)::

    <results_dir>/<org>__<model>/<revision>/<Task>.json
    <results_dir>/<org>__<model>/<revision>/experiments/<experiment>/<Task>.json

mteb writes result files in place; a run killed mid-write leaves a truncated JSON that breaks the
next run. Here every file is written to a temporary sibling (a name that does not end in
``.json``, so no result loader picks it up) and moved into place with ``os.replace``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mteb.cache import ResultCache
from mteb.models import ModelMeta
from mteb.results import TaskResult

logger = logging.getLogger(__name__)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class ResultsFolder(ResultCache):
    """A ResultCache whose ``results_dir`` holds ``<org>__<model>/`` folders directly."""

    def __init__(self, results_dir: Path | str) -> None:
        self.results_dir = Path(results_dir).expanduser()
        super().__init__(cache_path=self.results_dir)

    @property
    def has_remote(self) -> bool:
        return False

    def get_task_result_path(
        self,
        task_name: str,
        model_name: str | ModelMeta,
        model_revision: str | None = None,
        remote: bool = False,
        experiment_name: str | None = None,
    ) -> Path:
        path = super().get_task_result_path(
            task_name, model_name, model_revision, remote=False, experiment_name=experiment_name
        )
        return self.results_dir / path.relative_to(self.cache_path / "results")

    def save_to_cache(
        self,
        task_result: TaskResult,
        model_name: str | ModelMeta,
        model_revision: str | None = None,
        *,
        encode_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        path = self.get_task_result_path(task_result.task_name, model_name, model_revision)
        json_obj = task_result.model_dump()
        json_obj["date"] = task_result.date.timestamp() if task_result.date else None
        task_result._round_scores(json_obj["scores"], 6)
        atomic_write_text(path, json.dumps(json_obj, indent=2))
        if isinstance(model_name, ModelMeta):
            meta_text = json.dumps(model_name.to_dict(), default=str, indent=4)
            atomic_write_text(path.parent / "model_meta.json", meta_text)
        self._append_run_settings(path.parent, task_result, encode_kwargs)

    @staticmethod
    def _append_run_settings(
        folder: Path, task_result: TaskResult, encode_kwargs: Mapping[str, Any] | None
    ) -> None:
        """mteb's run_settings.jsonl (package versions per split); best effort, never fatal."""
        try:
            from mteb.cache.result_cache import _get_package_versions
            from mteb.results.task_result import _write_and_merge_keyed_json
        except ImportError:  # private helpers moved in a later mteb
            return
        settings = [
            {
                "task": task_result.task_name,
                "splits": [split],
                "version": _get_package_versions(),
                "encode_kwargs": json.loads(json.dumps(dict(encode_kwargs or {}), default=str)),
                "subsets": sorted({s.get("hf_subset", "default") for s in scores}),
            }
            for split, scores in task_result.scores.items()
        ]
        if settings:
            _write_and_merge_keyed_json(folder / "run_settings.jsonl", settings)

    def remove_stale_temp_files(self) -> int:
        """Delete temporary files left by a killed run; return how many."""
        n = 0
        for tmp in self.results_dir.glob("**/.*.json.*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                n += 1
        return n
