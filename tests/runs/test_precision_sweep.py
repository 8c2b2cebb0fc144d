"""Precision sweeps (``mrl.precisions``): one encoding pass, and every (dimension, precision)
scores exactly as mteb's own ``CompressionWrapper`` around a run of that dimension alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from mteb.models import CompressionWrapper
from mteb.types import OutputDType

from qzhou_eval.config import compose_config
from qzhou_eval.encoder.embedder import Embedder
from qzhou_eval.results import ResultsFolder
from qzhou_eval.runs.runner import execute, plan_run
from qzhou_eval.runs.scoring import ENCODE_KWARGS, Encoders, score
from qzhou_eval.store import DiskStore, model_fingerprint

pytestmark = pytest.mark.slow

MINILM = "sentence-transformers__all-MiniLM-L6-v2/8b3219a92973c328a8e22fadcfa821b5dc75636a"
DIMS, PRECISIONS = (128, 384), ("int8", "binary")  # 384: MiniLM's full size


def _cfg(tmp: Path, results: str, *extra: str):
    return compose_config(
        "mteb",
        [
            "model=minilm",
            "benchmark=demo_eng",  # one task of each of five types
            f"runtime.results_dir={tmp / results}",
            f"runtime.store_dir={tmp / 'store'}",
            "runtime.progress=false",
            *extra,
        ],
    )


def _folder(tmp: Path, results: str, experiment: str = "") -> Path:
    return tmp / results / MINILM / (f"experiments/{experiment}" if experiment else "")


def _scores(folder: Path) -> dict[str, dict]:
    """Task -> its result's scores (everything mteb computed, every split and subset)."""
    return {
        p.stem: json.loads(p.read_text())["scores"]
        for p in folder.glob("*.json")
        if p.name != "model_meta.json"
    }


def _experiment(dim: int, precision: str) -> str:
    size = f"embed_dim_{dim}__" if dim != 384 else ""
    return f"{size}output_dtypes_{precision}"


def _mteb_compression_run(tmp: Path, dim: int, precision: str) -> None:
    """mteb's CompressionWrapper around the encoder of a run of ``dim`` alone (float32), into
    ``tmp/mteb``, reading the stored vectors (nothing is encoded)."""
    plan = plan_run(_cfg(tmp, "mteb", f"mrl.dim={dim}"))
    store = DiskStore(tmp / "store", model_fingerprint(plan.spec))
    embedder = Embedder(
        lambda: None, tokens_per_batch=1024, max_batch_size=8, store=store, encode=False
    )
    folder = ResultsFolder(tmp / "mteb", encode_kwargs=ENCODE_KWARGS)
    (point,) = plan.points
    for task in plan.tasks:
        one_dim = Encoders(plan, embedder)(task.metadata.name, point)  # a fresh one to wrap
        score(CompressionWrapper(one_dim, OutputDType(precision)), task, folder, overwrite=False)


@pytest.mark.filterwarnings("ignore:Estimating quantization parameters")
def test_precision_grid_scores_as_mtebs_compression_wrapper(tmp_path, minilm_demo):
    # the store of the session's plain runs: every input's full-size float32 vector, once
    shutil.copytree(minilm_demo / "store", tmp_path / "store")
    grid = ["mrl.dims=[128,384]", "mrl.precisions=[float32,int8,binary]"]
    # the README's command, through the pipeline's scoring processes
    sweep = execute(plan_run(_cfg(tmp_path, "sweep", *grid, "runtime.scoring_workers=2")))
    assert len(sweep.runs) == 6 and all(len(tasks) == 5 for tasks in sweep.runs.values())
    # every point from the one stored pass: no precision or size asks the model again
    assert sweep.encoded_inputs == sweep.forward_calls == 0 and not sweep.failures

    # float32 is the plain run, to the last digit, at either size
    cut = execute(plan_run(_cfg(tmp_path, "plain", "mrl.dim=128", "runtime.scoring_workers=0")))
    assert cut.encoded_inputs == 0
    plain = _scores(_folder(minilm_demo, "results"))
    assert _scores(_folder(tmp_path, "sweep")) == {
        t: plain[t] for t in plain if t.startswith("DemoEng")
    }
    assert _scores(_folder(tmp_path, "sweep", "embed_dim_128")) == _scores(
        _folder(tmp_path, "plain", "embed_dim_128")
    )

    # every other point equals mteb's wrapper around the one-dimension run; filed alike
    for dim in DIMS:
        for precision in PRECISIONS:
            _mteb_compression_run(tmp_path, dim, precision)
            ours = _folder(tmp_path, "sweep", _experiment(dim, precision))
            theirs = _folder(tmp_path, "mteb", _experiment(dim, precision))
            assert len(_scores(ours)) == 5, ours
            assert _scores(ours) == _scores(theirs), (dim, precision)
            meta = [json.loads((f / "model_meta.json").read_text()) for f in (ours, theirs)]
            assert meta[0] == meta[1]
    assert _scores(_folder(tmp_path, "sweep", "output_dtypes_int8")) != _scores(
        _folder(tmp_path, "sweep")
    )

    # each record carries its dimension and precision; float32 records have no precision field
    records = (
        _folder(tmp_path, "sweep", "embed_dim_128__output_dtypes_binary") / "qzhou_eval_records"
    )
    record = (records / "DemoEngSTS.yaml").read_text()
    assert "dim: 128" in record and "precision: binary" in record
    plain_record = (_folder(tmp_path, "sweep") / "qzhou_eval_records/DemoEngSTS.yaml").read_text()
    assert "precision" not in plain_record

    # a rerun finds every result: nothing encoded or scored again
    again = execute(plan_run(_cfg(tmp_path, "sweep", *grid, "runtime.scoring_workers=0")))
    assert again.encoded_inputs == 0 and again.forward_calls == 0
