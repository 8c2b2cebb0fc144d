"""mteb's ResultCache rooted at a results folder, with crash-safe writes and self-healing reads.

Layout (mteb's own, so folders can be compared with and submitted to the public results repo)::

    <results_dir>/<org>__<model>/<revision>/<Task>.json
    <results_dir>/<org>__<model>/<revision>/experiments/<experiment>/<Task>.json

mteb writes result files in place; a run killed mid-write leaves a truncated JSON that breaks the
next run. Here every file (results, ``model_meta.json``, ``run_settings.jsonl``) goes through
:mod:`qzhou_eval.atomic`. What a crash, a full disk or a damaged disk can still leave is healed
when a run starts (:meth:`ResultsFolder.heal`, so that it counts the task as its own) and when
mteb looks a task up (:meth:`ResultsFolder.load_task_result`):

- a result file that does not load is moved aside as ``<Task>.json.corrupt-<UTC time>`` (one
  warning) and the task is evaluated again;
- a result whose ``run_settings.jsonl`` line is missing (killed between the two writes) gets it.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mteb.cache import ResultCache
from mteb.models import ModelMeta
from mteb.results import TaskResult

from qzhou_eval import atomic
from qzhou_eval.atomic import move_aside, remove_stale_temp_files, replacing, temp_path
from qzhou_eval.errors import WriteError

__all__ = ["ResultsFolder"]

logger = logging.getLogger(__name__)

RUN_SETTINGS = "run_settings.jsonl"
# what mteb's TaskResult loading raises for a damaged file (JSON, UTF-8 and pydantic errors are
# ValueErrors)
DAMAGED = (ValueError, KeyError, TypeError)


MODEL_META = "model_meta.json"


class ResultsFolder(ResultCache):
    """A ResultCache whose ``results_dir`` holds ``<org>__<model>/`` folders directly.

    ``encode_kwargs``: what the run passes to ``mteb.evaluate`` (recorded when a missing
    ``run_settings.jsonl`` line is restored). ``writable=False`` (a read-only folder whose
    results are all finished): reads heal nothing; a damaged file is left where it is.
    """

    def __init__(
        self,
        results_dir: Path | str,
        encode_kwargs: Mapping[str, Any] | None = None,
        *,
        writable: bool = True,
    ) -> None:
        self.results_dir = Path(results_dir).expanduser()
        self.encode_kwargs = dict(encode_kwargs or {})
        self.writable = writable
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

    def load_task_result(
        self,
        task_name: str,
        model_name: str | ModelMeta,
        model_revision: str | None = None,
        raise_if_not_found: bool = False,
        prioritize_remote: bool = False,
        experiment_name: str | None = None,
    ) -> TaskResult | None:
        """mteb's lookup; a damaged file counts as missing (moved aside); lost lines restored."""
        path = self.get_task_result_path(
            task_name, model_name, model_revision, experiment_name=experiment_name
        )
        try:
            result = super().load_task_result(
                task_name,
                model_name,
                model_revision,
                raise_if_not_found=raise_if_not_found,
                experiment_name=experiment_name,
            )
        except DAMAGED as e:
            if self.writable:
                self._move_damaged(path, task_name, e)
            if raise_if_not_found:
                raise FileNotFoundError(f"{path} is damaged") from None
            return None
        if result is not None and self.writable:
            self._restore_run_settings(path.parent, result)
        return result

    def heal(self, path: Path, task_name: str) -> None:
        """Move the result file at ``path`` aside if it does not load (see
        :meth:`load_task_result`), before a run decides which tasks are finished; a read-only
        folder is left as it is."""
        if not self.writable or not path.is_file():
            return
        try:
            TaskResult.from_disk(path)
        except DAMAGED as e:
            self._move_damaged(path, task_name, e)
        except OSError:  # unreadable: mteb's own lookup says so when the task is evaluated
            pass

    @staticmethod
    def _move_damaged(path: Path, task_name: str, error: Exception) -> None:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:120]
        try:
            moved = move_aside(path)
        except FileNotFoundError:  # another run moved it first
            return
        logger.warning(
            "result file %s is damaged (%s): moved aside as %s; evaluating %s again",
            path,
            reason,
            moved.name,
            task_name,
        )

    def save_to_cache(
        self,
        task_result: TaskResult,
        model_name: str | ModelMeta,
        model_revision: str | None = None,
        *,
        encode_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        path = self.get_task_result_path(task_result.task_name, model_name, model_revision)
        # mteb's own serialization (public TaskResult.to_disk, which writes in place) goes to a
        # scratch file; its bytes then go through the one atomic writer.
        scratch = temp_path(path)
        try:
            atomic.in_folder(path, lambda: task_result.to_disk(scratch))
            data = scratch.read_bytes()
        except OSError as e:
            raise WriteError(path, e) from e
        finally:
            with contextlib.suppress(OSError):  # (a read-only mount refuses even this)
                scratch.unlink(missing_ok=True)
        atomic.write_bytes(path, data)
        if isinstance(model_name, ModelMeta):
            self.write_model_meta(path.parent, model_name)
        kwargs = self.encode_kwargs if encode_kwargs is None else encode_kwargs
        self._write_run_settings(path.parent, task_result, task_result.scores, kwargs)

    @staticmethod
    def write_model_meta(folder: Path, meta: ModelMeta, *, only_if_changed: bool = False) -> None:
        """``<folder>/model_meta.json`` as mteb writes it. ``only_if_changed``: only where the
        file is there and says something else (a finished run whose model metadata, such as
        ``model.max_tokens``, changed since: the folder describes the model as now set)."""
        if only_if_changed and not ResultsFolder.model_meta_differs(folder, meta):
            return
        atomic.write_text(folder / MODEL_META, _model_meta_text(meta))

    @staticmethod
    def model_meta_differs(folder: Path, meta: ModelMeta) -> bool:
        """Whether ``<folder>/model_meta.json`` says other than ``meta``, or is missing from a
        folder with results (deleted: mteb's loaders skip such a folder)."""
        try:
            return (folder / MODEL_META).read_bytes() != _model_meta_text(meta).encode("utf-8")
        except FileNotFoundError:  # none there: no result in the folder yet, or it was deleted
            return any(p.name != MODEL_META for p in folder.glob("*.json"))
        except OSError:
            return False

    def _restore_run_settings(self, folder: Path, result: TaskResult) -> None:
        """Add the ``run_settings.jsonl`` lines of splits the file lacks (a kill between writes)."""
        recorded = {
            (entry.get("task"), split)
            for entry in _read_jsonl(folder / RUN_SETTINGS)
            for split in entry.get("splits") or [entry.get("split")]
        }
        missing = {
            split: scores
            for split, scores in result.scores.items()
            if (result.task_name, split) not in recorded
        }
        if missing:
            self._write_run_settings(folder, result, missing, self.encode_kwargs)
            logger.info("%s: restored the %s line of %s", folder, RUN_SETTINGS, result.task_name)

    @staticmethod
    def _write_run_settings(
        folder: Path,
        task_result: TaskResult,
        scores: Mapping[str, list[dict[str, Any]]],
        encode_kwargs: Mapping[str, Any] | None,
    ) -> None:
        """mteb's run_settings.jsonl (package versions per split), merged by mteb, written by us.

        mteb's merge (one line per task/split/subset, latest wins, rows combined) is a private
        helper that writes in place; it runs on a scratch copy whose text then goes through our
        atomic writer. Lines that do not parse are dropped. Skipped if a later mteb moves the
        helpers (the file is informational).
        """
        try:
            from mteb.cache.result_cache import _get_package_versions
            from mteb.results.task_result import _write_and_merge_keyed_json
        except ImportError:
            return
        kwargs = json.loads(json.dumps(dict(encode_kwargs or {}), default=str))
        settings = [
            {
                "task": task_result.task_name,
                "splits": [split],
                "version": _get_package_versions(),
                "encode_kwargs": kwargs,
                "subsets": sorted({s.get("hf_subset", "default") for s in split_scores}),
            }
            for split, split_scores in scores.items()
        ]
        if not settings:
            return
        path = folder / RUN_SETTINGS
        with replacing(path) as out:
            scratch = temp_path(path)
            try:  # only the lines that parse: a damaged file is healed, not fatal
                old = "".join(json.dumps(e, default=str) + "\n" for e in _read_jsonl(path))
                scratch.write_text(old, encoding="utf-8")
                _write_and_merge_keyed_json(scratch, settings)
                out.write(scratch.read_bytes())
            finally:
                with contextlib.suppress(OSError):
                    scratch.unlink(missing_ok=True)

    def remove_stale_temp_files(self) -> int:
        """Delete temporary files left by killed runs (not those of a run still writing)."""
        return remove_stale_temp_files(self.results_dir, recursive=True)


def _model_meta_text(meta: ModelMeta) -> str:
    """``model_meta.json`` as mteb writes it, its sets sorted: mteb lists a set (the training
    datasets) in the process's hash order, so two runs, or the jobs of a sweep, would write the
    same metadata as different files."""
    fields = meta.to_dict()
    for key, value in dict(meta).items():
        if isinstance(value, (set, frozenset)):
            fields[key] = sorted(value, key=str)
    return json.dumps(fields, default=str, indent=4)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a .jsonl file; lines that do not parse are skipped."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict):
                out.append(entry)
    return out
