"""A task record checks itself: cut short or edited, it no longer hashes to its fingerprint."""

from __future__ import annotations

from pathlib import Path

import yaml

from qzhou_eval.runs.identity import TaskRecord
from qzhou_eval.task_records import DIFFERS, FILED_IN, RESULT_DIGEST, filed_in, is_whole

FIELDS = {
    "model": {"name": "org/m", "max_length": 512, "projection": None, "scale": 1e-5},
    "inputs": {"query": ["为这个句子生成表示：\0TEXT\0", ""], "document": ["\0TEXT\0"]},
    "dim": None,
    "precision": "int8",
}


def _written(folder: Path) -> dict:
    """A record as a run writes it, read back as every reader reads it."""
    return yaml.safe_load(TaskRecord(folder, "T2Retrieval", FIELDS, "zh").text())


def test_a_record_as_written_is_whole_and_any_change_to_its_settings_is_not(tmp_path):
    record = _written(tmp_path)
    assert is_whole(record)
    assert is_whole({**record, RESULT_DIGEST: "ab" * 32, "created": "later"})  # not settings
    assert not is_whole({**record, "dim": 128})
    assert not is_whole({k: v for k, v in record.items() if k != "inputs"})  # cut short
    assert not is_whole({**record, "fingerprint": record["fingerprint"][:12]})
    assert not is_whole({**record, "fingerprint": None})
    assert not is_whole(None) and not is_whole("text") and not is_whole({})


def test_a_record_of_another_format_is_judged_by_its_fingerprint_alone(tmp_path):
    other = {**_written(tmp_path), "format": 3, "dim": 128}
    assert is_whole(other)
    assert not is_whole({**other, "fingerprint": 5})


def test_a_record_names_the_folder_it_was_filed_in(tmp_path):
    revision = tmp_path / "org__m" / "rev"
    assert _written(revision)[FILED_IN] == filed_in(revision) == "."
    variant = revision / "experiments" / "variant_1a2b3c4d5e"
    assert _written(variant)[FILED_IN] == "experiments/variant_1a2b3c4d5e"


def test_what_a_variant_sets_is_said_in_its_record_and_hashed_in_no_fingerprint(tmp_path):
    plain = TaskRecord(tmp_path, "T2Retrieval", FIELDS, "zh")
    said = TaskRecord(tmp_path, "T2Retrieval", FIELDS, "zh", differs=("model.max_length=64",))
    record = yaml.safe_load(said.text())
    assert record[DIFFERS] == ["model.max_length=64"] and DIFFERS not in _written(tmp_path)
    assert said.fingerprint == plain.fingerprint and is_whole(record)  # the same identity
