from __future__ import annotations

from pathlib import Path

import pytest

from qzhou_eval.config.spec import ModelSpec


@pytest.fixture(scope="session")
def tiny_qwen2(tmp_path_factory) -> Path:
    from qzhou_eval.testing.tiny_models import cached_tiny_model

    return cached_tiny_model("qwen2", tmp_path_factory, seed=0)


def native_spec(path: Path, **overrides) -> ModelSpec:
    base = {
        "name": "test/tiny-qwen2",
        "revision": "0",
        "path": str(path),
        "backend": "native",
        "attention": "bidirectional",
        "pooling": "mean",
        "normalize": True,
        "dtype": "float32",
        "attn_implementation": "sdpa",
        "max_length": 64,
        "padding_side": "left",
        "truncation": "right",
        "trust_remote_code": False,
        "embed_dim": 64,
        "similarity": "cosine",
        "languages": None,
    }
    base.update(overrides)
    return ModelSpec(**base)


@pytest.fixture
def fired_layers(monkeypatch) -> list[int]:
    """Indices of the decoder layers whose Token Prepending hook fired, in firing order."""
    from qzhou_eval.models.token_prepending import TokenPrependingHandle

    fired: list[int] = []
    original = TokenPrependingHandle._before_layer

    def counting(self, module, args, kwargs):
        fired.append(next(i for i, layer in enumerate(self.decoder.layers) if layer is module))
        return original(self, module, args, kwargs)

    monkeypatch.setattr(TokenPrependingHandle, "_before_layer", counting)
    return fired
