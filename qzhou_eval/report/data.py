"""Where each run's data came from, as its task records say (``qzhou_eval_records/<Task>.yaml``).

Folders without records (the public results repository, mteb's own runs) show nothing here, and
their results are taken as they are, unless another run folder of the same model revision has
records: qzhou-eval wrote that tree, and a run folder whose records were deleted is not the
public repository's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from qzhou_eval.fingerprint import file_digest
from qzhou_eval.mirror.provenance import describe
from qzhou_eval.task_records import (
    DIFFERS,
    EXPERIMENTS,
    RECORDS,
    RESULT_DIGEST,
    filed_elsewhere,
    filed_in,
    is_whole,
    revision_folder,
)

REPLACED = (
    "result replaced after its run (its sha256 differs from its record's, so what produced it "
    "is unknown): not counted; `qzhou-eval run` evaluates the task again"
)
MISFILED = (
    "result whose record says {said}, in a folder of {held} (copied between folders?): not "
    "counted; `qzhou-eval run` refuses it as another configuration's"
)
COPIED = (
    "result whose record says it was filed in {said!r} of its revision's folder, found in "
    "{held!r} (copied between folders?): not counted; `qzhou-eval run` refuses it"
)
UNRECORDED = (
    "result without a whole record in a folder qzhou-eval wrote ({records}/{task}.yaml missing, "
    "cut short or edited), so what produced it is unknown: not counted; `qzhou-eval run` sets "
    "it aside and evaluates the task again"
)


def run_data(paths: Sequence[Path], tasks: Sequence[str]) -> dict[str, list[str]]:
    """Description of the data -> the tasks with a counted result in the run's folders read
    from it (a task's first folder that holds it); empty when no task has a record that names
    its data."""
    out: dict[str, list[str]] = {}
    for task in tasks:
        path = next((p for p in paths if (p / f"{task}.json").is_file()), None)
        if path is not None and unvouched(path, task) is None:
            out.setdefault(describe(_data_source(path, task)), []).append(task)
    return out if set(out) != {describe(None)} else {}


def run_differs(paths: Sequence[Path], tasks: Sequence[str]) -> dict[str, list[str]]:
    """What the run's configuration sets otherwise than the model's official one, as the records
    of its counted results say (``model.max_length=64, prompts``) -> the tasks whose record says
    it; empty when none says anything (the official configuration, a model without one, records
    written before they said it)."""
    out: dict[str, list[str]] = {}
    for task in tasks:
        path = next((p for p in paths if (p / f"{task}.json").is_file()), None)
        if path is None or unvouched(path, task) is not None:
            continue
        differs = _record(path, task).get(DIFFERS)
        if isinstance(differs, list) and differs and all(isinstance(d, str) for d in differs):
            out.setdefault(", ".join(differs), []).append(task)
    return out


def unvouched(path: Path, task: str) -> str | None:
    """Why the task's result in ``path`` is not counted, or None. Where qzhou-eval wrote the
    folder (it or another run folder of its revision has records), a result needs its whole
    record (a result copied in, or whose record was deleted, cut short or edited, is what
    ``qzhou-eval run`` sets aside), must be the file that record's run wrote (its sha256), and
    its record's folder, output size and precision must be its folder's. Run folders of a
    revision where none has records (the public results repository, mteb's own runs) are not
    judged; neither is the digest, or folder, of a record that predates it."""
    if not _written_by_qzhou_eval(path):
        return None
    record = _record(path, task)
    if not is_whole(record):
        return UNRECORDED.format(records=RECORDS, task=task)
    sealed = record.get(RESULT_DIGEST)
    if isinstance(sealed, str) and sealed != file_digest(path / f"{task}.json"):
        try:
            json.loads((path / f"{task}.json").read_bytes())
        except (OSError, ValueError):  # truncated, garbage: reported as unreadable when loaded
            return None
        return REPLACED
    return _misfiled(path, record)


def _written_by_qzhou_eval(path: Path) -> bool:
    """Whether ``path`` (a revision's folder or one of its ``experiments/<name>``) is one a
    qzhou-eval run wrote: it, or another run folder of its model revision, has a records folder.
    (mteb's layout has no mark of its own: ``run_settings.jsonl`` and ``model_meta.json`` are
    mteb's files too.)"""
    revision = revision_folder(path)
    experiments = revision / EXPERIMENTS
    folders = [revision, *(experiments.iterdir() if experiments.is_dir() else ())]
    return any((folder / RECORDS).is_dir() for folder in folders)


def _misfiled(path: Path, record: dict[str, Any]) -> str | None:
    """Why a result's record does not belong in ``path``, or None: the output size and precision
    a record names are in its folder's name, as mteb names experiments (``embed_dim_<d>``,
    ``output_dtypes_<precision>``, joined by ``__``; the revision's own folder holds the full
    size at float32), and the folder it names (``filed_in``) is ``path``. (Records before 0.2.0
    name the full size there as ``dim: <size>``, which the folder's ``model_meta.json``
    states.)"""
    parts = path.name.split("__") if path.parent.name == EXPERIMENTS else []
    dims = [p.removeprefix("embed_dim_") for p in parts if p.startswith("embed_dim_")]
    dtypes = [p.removeprefix("output_dtypes_") for p in parts if p.startswith("output_dtypes_")]
    folder_dim = int(dims[0]) if dims and dims[0].isdigit() else None
    folder_precision = dtypes[0] if dtypes else "float32"
    dim, precision = record.get("dim"), record.get("precision", "float32")
    if dim is not None and folder_dim is None and dim == _meta_embed_dim(path):
        dim = None  # (a full size recorded before 0.2.0)
    if (dim, precision) != (folder_dim, folder_precision):

        def what(d: Any, p: Any) -> str:
            return f"output size {d if d is not None else 'full'}, precision {p}"

        return MISFILED.format(said=what(dim, precision), held=what(folder_dim, folder_precision))
    filed = filed_elsewhere(record, path)  # (a variant's or another experiment's, same size)
    return None if filed is None else COPIED.format(said=filed, held=filed_in(path))


def _meta_embed_dim(path: Path) -> Any:
    try:
        meta = json.loads((path / "model_meta.json").read_bytes())
    except (OSError, ValueError):
        return None
    return meta.get("embed_dim") if isinstance(meta, dict) else None


def _data_source(path: Path, task: str) -> dict[str, Any] | None:
    source = _record(path, task).get("data_source")
    return source if isinstance(source, dict) else None


def _record(path: Path, task: str) -> dict[str, Any]:
    try:
        record = yaml.safe_load((path / RECORDS / f"{task}.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return record if isinstance(record, dict) else {}


def data_line(sources: dict[str, list[str]]) -> str:
    """``mirror /m, files match the pinned revision`` when every task with a result read its
    data alike (tasks without one are the table's missing ones, not another source) or, when
    they differ, ``<description> (task, task); <description> (task)``."""
    if len(sources) == 1:
        return next(iter(sources))
    return "; ".join(f"{d} ({', '.join(tasks)})" for d, tasks in sources.items())
