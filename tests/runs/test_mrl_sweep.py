"""MRL sweeps: every dimension scores exactly as a run of that dimension alone, and the full size
is the plain run (one identity, one result), on every demo task type."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qzhou_eval.config import compose_config
from qzhou_eval.runs.runner import execute, plan_run

pytestmark = pytest.mark.slow

MINILM = "sentence-transformers__all-MiniLM-L6-v2/8b3219a92973c328a8e22fadcfa821b5dc75636a"


def _run(tmp: Path, store: Path, results: str, suite: str, *extra: str):
    cfg = compose_config(
        "mteb",
        [
            "model=minilm",
            f"benchmark={suite}",
            f"runtime.results_dir={tmp / results}",
            f"runtime.store_dir={store}",  # vectors encoded once per session
            "runtime.scoring_workers=0",
            "runtime.progress=false",
            *extra,
        ],
    )
    return execute(plan_run(cfg))


def _scores(tmp: Path, results: str, experiment: str = "") -> dict[str, dict]:
    """Task -> its result's scores (everything mteb computed, every split and subset)."""
    folder = tmp / results / MINILM / experiment
    return {
        p.stem: json.loads(p.read_text())["scores"]
        for p in folder.glob("*.json")
        if p.name != "model_meta.json"
    }


# demo_eng has five task types; demo_zho adds pair classification
SUITES = {
    "demo_eng": (
        "benchmark.tasks=null",
        {"Retrieval", "Reranking", "Classification", "Clustering", "STS"},
    ),
    "demo_zho": (
        "benchmark.tasks=[DemoZhoPairClassification,DemoZhoClustering]",
        {"PairClassification", "Clustering"},
    ),
}


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_every_dimension_of_a_sweep_scores_as_a_run_of_it_alone(tmp_path, minilm_demo, suite):
    narrow, types = SUITES[suite]
    store = minilm_demo / "store"
    plain = _run(tmp_path, store, "one", suite, narrow)
    assert {t.metadata.type for t in plain.plan.tasks} == types
    _run(tmp_path, store, "one", suite, narrow, "mrl.dim=128")  # each dimension alone
    _run(tmp_path, store, "one", suite, narrow, "mrl.dim=256")
    alone = {d: _scores(tmp_path, "one", f"experiments/embed_dim_{d}") for d in (128, 256)}
    full = _scores(tmp_path, "one")
    assert len(full) == len(alone[128]) == len(alone[256]) == len(types)
    assert alone[128] != full != alone[256]

    # The README's sweep after the plain run, into its folder: accepted (the full size is one
    # identity, however it is asked for), nothing encoded, no finished result touched.
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "one").rglob("*.json")}
    for dims in ("mrl.dims=[128,256,384]", "mrl.dim=384"):
        again = _run(tmp_path, store, "one", suite, narrow, dims)
        assert again.encoded_inputs == 0
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "one").rglob("*.json")} == before

    # The sweep into a fresh folder, full size last: every dimension equals its run alone, to
    # the last digit of every metric mteb computed.
    sweep = _run(tmp_path, store, "sweep", suite, narrow, "mrl.dims=[128,256,384]")
    assert sweep.encoded_inputs == 0
    assert _scores(tmp_path, "sweep") == full
    for d in (128, 256):
        assert _scores(tmp_path, "sweep", f"experiments/embed_dim_{d}") == alone[d], d
