"""mteb's similarities are computed on the CPU in a scoring process even where a GPU is visible.

A GPU is faked by ``torch.cuda.is_available`` answering True on this CPU-only torch build: mteb
would then move every similarity to ``cuda`` (and ask the GPU's compute capability), which fails
here, so a run that finishes computed none of them on a GPU.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from mteb import similarity_functions as sf

from qzhou_eval.runs.similarity import similarities_on_cpu
from tests.in_process import qzhou_eval

MINILM = "sentence-transformers__all-MiniLM-L6-v2/8b3219a92973c328a8e22fadcfa821b5dc75636a"


@pytest.fixture
def visible_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)


@pytest.mark.usefixtures("visible_gpu")
def test_every_similarity_of_numpy_vectors_is_computed_on_the_cpu():
    similarities_on_cpu()
    similarities_on_cpu()  # idempotent
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((5, 8), np.float32), rng.standard_normal((7, 8), np.float32)
    na = a / np.linalg.norm(a, axis=1, keepdims=True)
    nb = b / np.linalg.norm(b, axis=1, keepdims=True)
    for fn, expected in [
        (sf.cos_sim, na @ nb.T),
        (sf.dot_score, a @ b.T),
        (sf.pairwise_cos_sim, np.sum(na[:5] * nb[:5], axis=1)),
        (sf.pairwise_dot_score, np.sum(a[:5] * b[:5], axis=1)),
    ]:
        got = fn(a, b) if fn in (sf.cos_sim, sf.dot_score) else fn(a, b[:5])
        got = torch.as_tensor(got)
        assert got.device.type == "cpu", fn.__name__
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-6)
    # and with torch tensors, which mteb would compile on a GPU of compute capability 8.0/9.0
    assert torch.equal(sf.cos_sim(torch.from_numpy(a), torch.from_numpy(b)), sf.cos_sim(a, b))


@pytest.mark.slow
@pytest.mark.usefixtures("visible_gpu")
def test_a_run_where_a_gpu_is_visible_scores_exactly_as_on_a_cpu_node(tmp_path, minilm_demo):
    """Every task type of the demo suite, from the store (no model), in the main process."""
    run = qzhou_eval(
        "run",
        "model=minilm",
        "model.path=/nonexistent",
        "benchmark=demo_eng",
        "runtime.encode=false",
        "runtime.devices=cpu",
        "runtime.scoring_workers=0",
        "runtime.progress=false",
        f"runtime.results_dir={tmp_path / 'results'}",
        f"runtime.store_dir={minilm_demo / 'store'}",
    )
    assert run.code == 0, run.err
    scored, plain = _scores(tmp_path / "results"), _scores(minilm_demo / "results")
    assert len(scored) == 5
    assert scored == {task: plain[task] for task in scored}


def _scores(results: Path) -> dict[str, dict]:
    return {
        p.stem: json.loads(p.read_text())["scores"]
        for p in (results / MINILM).glob("*.json")
        if p.name != "model_meta.json"
    }
