"""Every file read from a Hub model repo is read at the pinned revision: weights, tokenizer, the
Dense projection (2_Dense), and the sentence-transformers pipeline. The loaders are replaced by
recorders that hand back the tiny local model, so nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from qzhou_eval.models import backbone as backbone_module
from qzhou_eval.models.projection import load_dense_projection
from tests.models.conftest import native_spec

REPO_ID = "Kingsoft-LLM/QZhou-Embedding-Zh"  # not a local folder: read from the Hub
REVISION = "0321ccb126413d1e49c5ce908e802b63d35f18e2"


@pytest.fixture(scope="module")
def tiny_qwen3_zh(tmp_path_factory):
    from qzhou_eval.testing.tiny_models import cached_tiny_model

    return cached_tiny_model("qwen3", tmp_path_factory, seed=1, with_dense=96)


def _recording(calls: list, name: str, real, local_path):
    """A stand-in for ``real`` that records (name, path, kwargs) and loads ``local_path``."""

    def load(path, *args, **kwargs):
        calls.append((name, path, dict(kwargs)))
        if Path(path).is_dir():
            return real(path, *args, **kwargs)
        kwargs.pop("revision", None)
        if "subfolder" in kwargs:  # Dense.load(repo, subfolder=...) -> the local subfolder
            return real(str(local_path / kwargs.pop("subfolder")), *args, **kwargs)
        return real(str(local_path), *args, **kwargs)

    return load


def test_dense_projection_gets_the_revision(tiny_qwen3_zh, monkeypatch):
    from sentence_transformers.sentence_transformer.modules import Dense

    calls: list = []
    monkeypatch.setattr(Dense, "load", _recording(calls, "dense", Dense.load, tiny_qwen3_zh))
    projection = load_dense_projection(REPO_ID, "2_Dense", torch.device("cpu"), revision=REVISION)
    assert calls == [("dense", REPO_ID, {"subfolder": "2_Dense", "revision": REVISION})]
    assert projection.out_features == 96
    calls.clear()
    load_dense_projection(str(tiny_qwen3_zh), "2_Dense", torch.device("cpu"), revision=REVISION)
    assert calls[0][1] == str(tiny_qwen3_zh / "2_Dense")  # a local folder has no revision


def test_native_backbone_reads_weights_tokenizer_and_dense_at_the_revision(
    tiny_qwen3_zh, monkeypatch
):
    import transformers
    from sentence_transformers.sentence_transformer.modules import Dense

    calls: list = []
    for cls, name in ((transformers.AutoModel, "model"), (transformers.AutoTokenizer, "tok")):
        recorder = _recording(calls, name, cls.from_pretrained, tiny_qwen3_zh)
        monkeypatch.setattr(cls, "from_pretrained", recorder)
    monkeypatch.setattr(Dense, "load", _recording(calls, "dense", Dense.load, tiny_qwen3_zh))
    spec = native_spec(
        tiny_qwen3_zh,
        name=REPO_ID,
        revision=REVISION,
        attention="causal",
        pooling="last_token",
        projection="2_Dense",
        embed_dim=96,
        numerics="official",
    )
    spec = type(spec)(**{**vars(spec), "path": REPO_ID})
    backbone = backbone_module.TransformersBackbone(spec)
    assert {name for name, _, _ in calls} == {"model", "tok", "dense"}
    for name, path, kwargs in calls:
        assert path == REPO_ID, name
        assert kwargs.get("revision") == REVISION, name
    assert backbone.output_dim == 96


def test_sentence_transformers_backbone_gets_the_revision(monkeypatch):
    import sentence_transformers

    seen: dict = {}

    class Recorder:
        def __init__(self, path, **kwargs):
            seen.update(path=path, **kwargs)
            raise RuntimeError("stop after recording")

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", Recorder)
    spec = native_spec("unused", backend="sentence_transformers", revision=REVISION)
    spec = type(spec)(**{**vars(spec), "path": REPO_ID})
    with pytest.raises(RuntimeError, match="stop after recording"):
        backbone_module.SentenceTransformerBackbone(spec)
    assert seen["path"] == REPO_ID and seen["revision"] == REVISION
