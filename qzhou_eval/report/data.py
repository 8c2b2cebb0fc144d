"""Where each run's data came from, as its task records say (``qzhou_eval_records/<Task>.yaml``).

Folders without records (the public results repository, mteb's own runs) show nothing here, and
their results are taken as they are.
"""

from __future__ import annotations

import json
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
UNRECORDED = (
    "result without a readable record in a folder qzhou-eval wrote ({records}/{task}.yaml), so "
    "what produced it is unknown: not counted; `qzhou-eval run` sets it aside and evaluates the "
    "task again"
)


def run_data(path: Path, tasks: Sequence[str]) -> dict[str, list[str]]:
    """Description of the data -> the tasks with a counted result in ``path`` read from it;
    empty when no task has a record that names its data."""
    out: dict[str, list[str]] = {}
    for task in tasks:
        if (path / f"{task}.json").is_file() and unvouched(path, task) is None:
            out.setdefault(describe(_data_source(path, task)), []).append(task)
    return out if set(out) != {describe(None)} else {}


def unvouched(path: Path, task: str) -> str | None:
    """Why the task's result in ``path`` is not counted, or None. Where qzhou-eval wrote the
    folder (it has a records folder), a result needs its record (a result copied in, or whose
    record was deleted or damaged, is what ``qzhou-eval run`` sets aside) and must be the file
    that record's run wrote (its sha256). A folder without records (the public results
    repository, mteb's own runs) is not judged; neither is a record that predates the digest."""
    if not (path / RECORDS).is_dir():
        return None
    record = _record(path, task)
    if not isinstance(record.get("fingerprint"), str):
        return UNRECORDED.format(records=RECORDS, task=task)
    sealed = record.get(RESULT_DIGEST)
    if isinstance(sealed, str) and sealed != file_digest(path / f"{task}.json"):
        try:
            json.loads((path / f"{task}.json").read_bytes())
        except (OSError, ValueError):  # truncated, garbage: reported as unreadable when loaded
            return None
        return REPLACED
    return None


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
