"""The task record file, ``qzhou_eval_records/<Task>.yaml``: its keys, and whether one is whole.

A record (written by :mod:`qzhou_eval.runs.identity`, read there and by the report) holds a few
keys about the record itself (:data:`ABOUT_THE_RECORD`) and the fields of the task's identity,
whose fingerprint it states. So a record checks itself: one cut short, or edited by hand, no
longer hashes to its fingerprint. Light on purpose (no mteb): the report reads records too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qzhou_eval.fingerprint import fingerprint

RECORDS = "qzhou_eval_records"
RECORD_FORMAT = 2
# the sha256 of the result a record's run wrote (absent: written before this key, or the run
# stopped between the two writes; such a record vouches for any result, as it always did)
RESULT_DIGEST = "result_sha256"
# the folder the record's run filed the task in, from the revision's folder: "." (the
# official one) or "experiments/<name>" (absent: written before this key)
FILED_IN = "filed_in"
# what the record's configuration sets otherwise than the model's official one, as overrides
# (``model.max_length=64``, ``prompts``): a variant folder's name is a hash and says none of it
# (absent: the official configuration, no official one, or written before this key)
DIFFERS = "differs_from_official"
EXPERIMENTS = "experiments"  # mteb's folder of a revision's experiments
# every key a record has ever held besides its identity's fields ("data": briefly, before
# "data_source")
ABOUT_THE_RECORD = frozenset(
    {
        "format",
        "task",
        "fingerprint",
        "recipe",
        "created",
        "writer",
        "data",
        "data_source",
        RESULT_DIGEST,
        FILED_IN,
        DIFFERS,
    }
)


def is_whole(record: Any) -> bool:
    """Whether ``record`` (a parsed record file) is one a run wrote, unchanged: a mapping with
    a fingerprint that, in the current format, its own identity fields hash to."""
    if not isinstance(record, dict) or not isinstance(record.get("fingerprint"), str):
        return False
    if record.get("format") != RECORD_FORMAT:
        return True  # (another format: its fingerprint is all that can be checked)
    fields = {k: v for k, v in record.items() if k not in ABOUT_THE_RECORD}
    return fingerprint(fields) == record["fingerprint"]


def filed_in(folder: Path) -> str:
    """The :data:`FILED_IN` value of a run folder: ``"."`` for a revision's own folder,
    ``"experiments/<name>"`` for one of its experiments'."""
    return f"{EXPERIMENTS}/{folder.name}" if folder.parent.name == EXPERIMENTS else "."


def revision_folder(folder: Path) -> Path:
    """The revision's folder of a run folder (itself, or the revision an experiment is in)."""
    return folder.parent.parent if folder.parent.name == EXPERIMENTS else folder


def filed_elsewhere(record: dict[str, Any], folder: Path) -> str | None:
    """The folder a record names (:data:`FILED_IN`) when it is not ``folder``: its result was
    copied there, record and all; None where it names ``folder`` or predates the key."""
    filed = record.get(FILED_IN)
    return None if filed is None or filed == filed_in(folder) else str(filed)
