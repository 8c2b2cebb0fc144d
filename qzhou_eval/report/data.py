"""Where each run's data came from, as its task records say (``qzhou_eval_records/<Task>.yaml``).

Folders without records (the public results repository, mteb's own runs) show nothing here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from qzhou_eval.fingerprint import file_digest
from qzhou_eval.mirror.provenance import describe

RECORDS = "qzhou_eval_records"  # qzhou_eval.runs.identity.RECORDS
RESULT_DIGEST = "result_sha256"  # qzhou_eval.runs.identity.RESULT_DIGEST
REPLACED = (
    "result replaced after its run (its sha256 differs from its record's, so what produced it "
    "is unknown): not counted; `qzhou-eval run` evaluates the task again"
)


def run_data(path: Path, tasks: Sequence[str]) -> dict[str, list[str]]:
    """Description of the data -> the tasks with a result in ``path`` read from it; empty when
    no task has a record that names its data."""
    out: dict[str, list[str]] = {}
    for task in tasks:
        if (path / f"{task}.json").is_file():
            out.setdefault(describe(_data_source(path, task)), []).append(task)
    return out if set(out) != {describe(None)} else {}


def replaced(path: Path, task: str) -> bool:
    """The task's result is not the one its record's run wrote (a file copied in from another
    folder, edited by hand): its provenance is unknown. Results without a record, or whose
    record predates the digest, are not judged here."""
    sealed = _record(path, task).get(RESULT_DIGEST)
    return isinstance(sealed, str) and sealed != file_digest(path / f"{task}.json")


def _data_source(path: Path, task: str) -> dict[str, Any] | None:
    source = _record(path, task).get("data_source")
    return source if isinstance(source, dict) else None


def _record(path: Path, task: str) -> dict[str, Any]:
    try:
        record = yaml.safe_load((path / RECORDS / f"{task}.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return record if isinstance(record, dict) else {}


def data_line(sources: dict[str, list[str]], n_tasks: int) -> str:
    """``mirror /m, files match the pinned revision`` or, when they differ,
    ``<description> (task, task); <description> (task)``."""
    if len(sources) == 1 and len(next(iter(sources.values()))) == n_tasks:
        return next(iter(sources))
    return "; ".join(f"{d} ({', '.join(tasks)})" for d, tasks in sources.items())
