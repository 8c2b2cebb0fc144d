"""Where each run's data came from, as its task records say (``qzhou_eval_records/<Task>.yaml``).

Folders without records (the public results repository, mteb's own runs) show nothing here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from qzhou_eval.mirror.provenance import describe

RECORDS = "qzhou_eval_records"  # qzhou_eval.runs.identity.RECORDS


def run_data(path: Path, tasks: Sequence[str]) -> dict[str, list[str]]:
    """Description of the data -> the tasks with a result in ``path`` read from it; empty when
    no task has a record that names its data."""
    out: dict[str, list[str]] = {}
    for task in tasks:
        if (path / f"{task}.json").is_file():
            out.setdefault(describe(_data_source(path, task)), []).append(task)
    return out if set(out) != {describe(None)} else {}


def _data_source(path: Path, task: str) -> dict[str, Any] | None:
    try:
        record = yaml.safe_load((path / RECORDS / f"{task}.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    source = record.get("data_source") if isinstance(record, dict) else None
    return source if isinstance(source, dict) else None


def data_line(sources: dict[str, list[str]], n_tasks: int) -> str:
    """``mirror /m, files match the pinned revision`` or, when they differ,
    ``<description> (task, task); <description> (task)``."""
    if len(sources) == 1 and len(next(iter(sources.values()))) == n_tasks:
        return next(iter(sources))
    return "; ".join(f"{d} ({', '.join(tasks)})" for d, tasks in sources.items())
