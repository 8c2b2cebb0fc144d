"""QZhou-Embedding-Zh's native path on a tiny random Qwen3: TP + last token + Dense + MRL."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qzhou_eval.config.spec import TokenPrependingSpec
from qzhou_eval.encoder import RecipeEncoder
from qzhou_eval.encoder.embedder import Embedder
from qzhou_eval.models.backbone import TransformersBackbone
from qzhou_eval.recipe import Recipe
from tests.models.conftest import native_spec

EOL = Recipe(
    name="eol",
    instruction_template="Instruct: {instruction}\nQuery: ",
    instructions={"T": "Retrieve semantically similar text"},
    input_template="This sentence: <|im_start|>“{text}” means in one word: “",
)
TEXTS = ["你好", "Hello world, a somewhat longer sentence here", "短", "another input"]


@pytest.fixture(scope="module")
def tiny_qwen3_zh(tmp_path_factory):
    from qzhou_eval.testing.tiny_models import cached_tiny_model

    return cached_tiny_model("qwen3", tmp_path_factory, seed=1, with_dense=96)


def zh_spec(path, tp: bool = True, **kw):
    return native_spec(
        path,
        attention="causal",
        pooling="last_token",
        token_prepending=TokenPrependingSpec(enabled=tp),
        projection="2_Dense",
        embed_dim=96,
        **kw,
    )


def _inputs():
    return [EOL.format("T", "document", t) for t in TEXTS]


def test_tp_projection_and_left_padding(tiny_qwen3_zh):
    bb = TransformersBackbone(zh_spec(tiny_qwen3_zh))
    assert bb.output_dim == 96
    ids = bb.tokenize(_inputs())
    batch = bb.embed_ids(ids)
    assert batch.shape == (4, 96)
    for i, one in enumerate(ids):  # a left-padded batch equals one-by-one encoding
        torch.testing.assert_close(batch[i], bb.embed_ids([one])[0], rtol=1e-4, atol=1e-5)
    off = TransformersBackbone(zh_spec(tiny_qwen3_zh, tp=False)).embed_ids(ids)
    assert not torch.allclose(batch, off, atol=1e-3)  # TP is really applied


def test_tp_off_is_plain_last_token_plus_dense(tiny_qwen3_zh):
    from sentence_transformers.sentence_transformer.modules import Dense
    from transformers import AutoModel

    bb = TransformersBackbone(zh_spec(tiny_qwen3_zh, tp=False))
    ids = bb.tokenize(_inputs()[:1])
    model = AutoModel.from_pretrained(tiny_qwen3_zh)
    dense = Dense.load(str(tiny_qwen3_zh / "2_Dense"))
    with torch.inference_mode():
        last = model(input_ids=torch.tensor(ids)).last_hidden_state[:, -1]
        expected = dense({"sentence_embedding": last})["sentence_embedding"]
    torch.testing.assert_close(bb.embed_ids(ids), expected, rtol=1e-4, atol=1e-5)


def test_every_mrl_dim_from_one_pass_equals_a_separate_encode(tiny_qwen3_zh):
    spec = zh_spec(tiny_qwen3_zh)
    shared = Embedder(
        lambda: TransformersBackbone(spec), tokens_per_batch=4096, max_batch_size=64, progress=False
    )

    class Meta:
        name = "T"

    dims = [16, 32, 64, 96]
    from_one_pass = {
        d: RecipeEncoder(meta=None, recipe=EOL, embedder=shared, dim=d).encode(
            [{"text": TEXTS}], task_metadata=Meta, hf_split="test", hf_subset="default"
        )
        for d in dims
    }
    assert shared.encoded_inputs == len(TEXTS)  # the model ran once per input for all dims
    assert shared.loaded_backbone.forward_calls == 1
    for d in dims:
        fresh = Embedder(
            lambda: shared.loaded_backbone,  # the same weights; a fresh embedder and store
            tokens_per_batch=4096,
            max_batch_size=64,
            progress=False,
        )
        alone = RecipeEncoder(meta=None, recipe=EOL, embedder=fresh, dim=d).encode(
            [{"text": TEXTS}], task_metadata=Meta, hf_split="test", hf_subset="default"
        )
        assert from_one_pass[d].shape == (len(TEXTS), d)
        np.testing.assert_allclose(from_one_pass[d], alone, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.linalg.norm(alone, axis=1), 1.0, rtol=1e-5)
    # truncation happens before normalization (the official order), not after
    full = from_one_pass[96]
    assert not np.allclose(from_one_pass[16], full[:, :16])


def test_shipped_config_applies_token_prepending_before_layers_1_to_6(tiny_qwen3_zh, fired_layers):
    """conf/model/qzhou_embedding_zh.yaml on the tiny Qwen3: the hooks of layers 1..6 fire, once
    each per forward, and no other layer's."""
    from qzhou_eval.config import compose_config
    from qzhou_eval.config.spec import model_spec

    cfg = compose_config("cmteb", ["model=qzhou_embedding_zh", f"model.path={tiny_qwen3_zh}"])
    spec = model_spec(cfg.model)
    bb = TransformersBackbone(spec)
    assert len(bb.model.layers) == 8 and spec.numerics == "official"
    bb.embed_ids(bb.tokenize(_inputs()[:2]))
    assert fired_layers == [1, 2, 3, 4, 5, 6]
