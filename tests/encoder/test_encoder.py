"""The mteb encoder over the recipe: what it refuses to encode, and to file."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from qzhou_eval.config import compose_config
from qzhou_eval.encoder.encoder import RecipeEncoder
from qzhou_eval.errors import ConfigError, DataError
from qzhou_eval.recipe import recipe_from_config


class _NeverCalled:
    def embed(self, *args, **kwargs) -> np.ndarray:
        raise AssertionError("nothing may be encoded")


def test_a_text_with_a_lone_surrogate_is_one_line_naming_the_task():
    recipe = recipe_from_config(compose_config("mteb", ["prompts=none"]).prompts, [])
    encoder = RecipeEncoder(meta=None, recipe=recipe, embedder=_NeverCalled())  # type: ignore[arg-type]
    batches = [{"text": ["fine", "ünïcode"]}, {"text": ["x", "before \ud800 after"]}]
    with pytest.raises(DataError) as info:
        encoder.encode(
            batches,
            task_metadata=SimpleNamespace(name="STS12"),
            hf_split="test",
            hf_subset="default",
        )
    message = str(info.value)
    assert message.startswith("task STS12 (test, default): text 3 is not valid Unicode")
    assert "U+D800 at character 7" in message and "before \\ud800 after" in message
    assert "\n" not in message


def test_vectors_of_another_size_than_model_embed_dim_stop_the_run():
    # model_meta.json (and the MRL cuts) would describe the results with the configured size
    recipe = recipe_from_config(compose_config("mteb", ["prompts=none"]).prompts, [])
    vectors = np.ones((2, 384), dtype=np.float32)
    for dim in (None, 128):
        encoder = RecipeEncoder(
            meta=None,  # type: ignore[arg-type]
            recipe=recipe,
            embedder=_NeverCalled(),  # type: ignore[arg-type]
            dim=dim,
            model_dim=100,
        )
        with pytest.raises(ConfigError) as info:
            encoder.finish(vectors)
        assert str(info.value).startswith(
            "model.embed_dim=100, but the model's vectors have 384 values: set model.embed_dim=384"
        )
        encoder.model_dim = 384
        assert encoder.finish(vectors).shape == (2, dim or 384)
        encoder.model_dim = None  # not stated: any size
        assert encoder.finish(vectors).shape == (2, dim or 384)
