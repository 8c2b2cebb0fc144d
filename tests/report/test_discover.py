"""Finding runs in mteb's results layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qzhou_eval.errors import UserError
from qzhou_eval.report.discover import (
    RunId,
    discover_runs,
    experiment_dim,
    model_dir_name,
    resolve_results_dirs,
    run_path,
)
from tests.report.report_testdata import QZHOU, QZHOU_REV, QZHOU_ZH


def _touch(path: Path, content: str = "{}") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")


def test_layout(tmp_path: Path) -> None:
    _touch(tmp_path / "org__a" / "r1" / "STS12.json")
    _touch(tmp_path / "org__a" / "r1" / "model_meta.json", json.dumps({"embed_dim": 64}))
    _touch(tmp_path / "org__a" / "r1" / "experiments" / "embed_dim_32" / "STS12.json")
    _touch(tmp_path / "org__a" / "r1" / "experiments" / "empty" / "model_meta.json")
    _touch(tmp_path / "org__b" / "r2" / "model_meta.json", json.dumps({"name": "Org/B"}))
    _touch(tmp_path / "org__b" / "r2" / "STS12.json")
    runs = discover_runs([tmp_path])
    assert [r.id for r in runs] == [
        RunId("Org/B", "r2"),
        RunId("org/a", "r1"),
        RunId("org/a", "r1", "embed_dim_32"),
    ]
    assert [r.embed_dim for r in runs] == [None, 64, 32]
    # an embedding store kept in the results folder is no run (its settings.json was read as
    # a task's result: "emb@<configuration>" skipped, in the report)
    _touch(tmp_path / "emb" / "9d9d646cdaa1f2c4a4b9" / "settings.json")
    _touch(tmp_path / "emb" / "9d9d646cdaa1f2c4a4b9" / "0661cf47.keys.npy", "")
    assert [r.id for r in discover_runs([tmp_path])] == [r.id for r in runs]
    assert [r.id for r in discover_runs([tmp_path], experiments="none")] == [
        RunId("Org/B", "r2"),
        RunId("org/a", "r1"),
    ]
    assert [r.id for r in discover_runs([tmp_path], models=["org/*@r1"])] == [
        RunId("org/a", "r1"),
        RunId("org/a", "r1", "embed_dim_32"),
    ]
    assert discover_runs([tmp_path], models=["org__b"]) == []  # meta name wins: Org/B
    _touch(tmp_path / "org__c" / "0123456789abcdef" / "STS12.json")
    for short, found in (("0123456789ab", 1), ("0123456", 1), ("012345", 0), ("0123457", 0)):
        # the short revision the run's first line prints (git's: 7 characters or more)
        assert len(discover_runs([tmp_path], models=[f"org/c@{short}"])) == found
    assert [r.id.model for r in discover_runs([tmp_path], models=["Org/B"])] == ["Org/B"]


def test_mteb_cache_root_and_errors(tmp_path: Path) -> None:
    _touch(tmp_path / "cache" / "results" / "org__a" / "r1" / "STS12.json")
    assert resolve_results_dirs(str(tmp_path / "cache")) == [tmp_path / "cache" / "results"]
    # one folder named twice is read once (its report went to results+results_report/)
    twice = [tmp_path / "cache", f"{tmp_path}/cache/../cache/results"]
    assert resolve_results_dirs(twice) == [tmp_path / "cache" / "results"]
    with pytest.raises(UserError, match="not a folder"):
        resolve_results_dirs(tmp_path / "nope")


def test_a_run_in_several_folders_is_one_run(tmp_path: Path) -> None:
    # the shards of a sweep, each written on a node of its own and copied back apart
    a, b = tmp_path / "a", tmp_path / "b"
    _touch(a / "org__a" / "r1" / "STS12.json")
    _touch(b / "org__a" / "r1" / "SCIDOCS.json")
    _touch(b / "org__a" / "r1" / "model_meta.json", json.dumps({"embed_dim": 64}))
    (run,) = discover_runs([a, b])
    assert run.id == RunId("org/a", "r1") and run.embed_dim == 64
    assert run.paths == (a / "org__a" / "r1", b / "org__a" / "r1")
    assert run.source == f"{a / 'org__a' / 'r1'} + {b / 'org__a' / 'r1'}"
    assert discover_runs([a, a]) == discover_runs([a])  # one folder named twice: one folder
    _touch(a / "org__a" / "r1" / "model_meta.json", json.dumps({"embed_dim": 32}))
    with pytest.raises(UserError, match=r"two results folders with different output sizes"):
        discover_runs([a, b])


def test_names(package_results: Path) -> None:
    assert model_dir_name(QZHOU_ZH) == "Kingsoft-LLM__QZhou-Embedding-Zh"
    assert run_path(package_results, QZHOU, QZHOU_REV).is_dir()
    expected = Path("r/a__b/v/experiments/embed_dim_8")
    assert run_path(Path("r"), "a/b", "v", "embed_dim_8") == expected
    assert experiment_dim("embed_dim_256") == 256
    assert experiment_dim("embed_dim_x") is None and experiment_dim(None) is None
