"""model.numerics on tiny random bf16 Qwen models: official = the official arithmetic, bit for bit;
float32 = the precise path the harness had before (also bit for bit).

The references below are written from the official embedders' arithmetic (GitHub
Kingsoft-LLM/QZhou-Embedding ``embedder.py``; QZhou-Embedding-Zh ``embedder.py`` with
sentence-transformers 3.4.1) and applied to the very hidden states the backbone computed, which a
forward hook captures, so the comparison covers pooling, projection and normalization only.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.preprocessing import normalize as sk_normalize

from qzhou_eval.config.spec import TokenPrependingSpec
from qzhou_eval.encoder import RecipeEncoder
from qzhou_eval.models.backbone import TransformersBackbone
from qzhou_eval.models.pooling import official_mean, pool
from qzhou_eval.recipe import Recipe
from tests.models.conftest import native_spec

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEMPLATE = "Instruct: Retrieve semantically similar text\nQuery: "
TEXTS = [
    "Hello world",
    TEMPLATE + "a much longer input text, with many more tokens than the others have",
    "你好",
    TEMPLATE + "medium length text",
]
EOL = "This sentence: <|im_start|>“{text}” means in one word: “"
NUMERICS = ("official", "float32")


@pytest.fixture(scope="module")
def tiny_qwen3_zh(tmp_path_factory):
    from qzhou_eval.testing.tiny_models import cached_tiny_model

    return cached_tiny_model("qwen3", tmp_path_factory, seed=1, with_dense=96)


@pytest.fixture(scope="module")
def qe_backbones(tiny_qwen2):
    """QZhou-Embedding-like: bidirectional Qwen2, mean pooling, bf16; official and float32."""
    spec = {"dtype": "bfloat16", "attention": "bidirectional", "pooling": "mean"}
    return {n: TransformersBackbone(native_spec(tiny_qwen2, numerics=n, **spec)) for n in NUMERICS}


@pytest.fixture(scope="module")
def zh_backbones(tiny_qwen3_zh):
    """QZhou-Embedding-Zh-like: causal Qwen3 (+ Token Prepending), last token, Dense, bf16."""
    made: dict = {}

    def get(numerics: str, tp: bool = True) -> TransformersBackbone:
        if (numerics, tp) not in made:
            spec = native_spec(
                tiny_qwen3_zh,
                dtype="bfloat16",
                attention="causal",
                pooling="last_token",
                token_prepending=TokenPrependingSpec(enabled=tp),
                projection="2_Dense",
                embed_dim=96,
                numerics=numerics,
            )
            made[numerics, tp] = TransformersBackbone(spec)
        return made[numerics, tp]

    return get


@contextlib.contextmanager
def _capture(backbone: TransformersBackbone):
    """Record the last hidden state and attention mask of the backbone model's forward."""
    seen: dict = {}

    def hook(module, args, kwargs, output):
        seen["hidden"] = output.last_hidden_state
        seen["mask"] = kwargs["attention_mask"]

    handle = backbone.model.register_forward_hook(hook, with_kwargs=True)
    try:
        yield seen
    finally:
        handle.remove()


def official_qzhou_embedding(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """QZhou-Embedding's embedder: per row, the sum of the last n states (left padding) in the
    model dtype divided by n; stacked; F.normalize in the model dtype; then float32."""
    pooled = []
    for i in range(hidden.shape[0]):
        n = mask[i].sum()
        pooled.append(hidden[i, -n:].sum(dim=0) / n)
    return F.normalize(torch.stack(pooled), p=2, dim=-1).to(torch.float32)


@torch.inference_mode()
def test_qzhou_embedding_official_is_the_official_arithmetic_bit_for_bit(qe_backbones):
    official, precise = qe_backbones["official"], qe_backbones["float32"]
    assert official.spec.backbone_normalizes and not precise.spec.backbone_normalizes
    ids = official.tokenize(TEXTS)
    assert len({len(x) for x in ids}) == len(TEXTS)  # really padded, every row differently
    with _capture(official) as seen:
        got = official.embed_ids(ids)
    hidden, mask = seen["hidden"], seen["mask"]
    assert hidden.dtype == torch.bfloat16 and not mask.all()
    assert mask[:, -1].all()  # left padding, as the official embedder
    assert got.dtype == torch.float32
    assert torch.equal(got, official_qzhou_embedding(hidden, mask))
    # float32 is today's path: float32 masked mean of the same states, not normalized
    with _capture(precise) as seen32:
        got32 = precise.embed_ids(ids)
    h, m = seen32["hidden"].float(), seen32["mask"].float()
    today = (h * m.unsqueeze(-1)).sum(dim=1) / m.sum(dim=1, keepdim=True).clamp(min=1.0)
    assert torch.equal(got32, today)
    # the two really differ, beyond float32 rounding (so the checks above could fail)
    gap = (got - F.normalize(got32, dim=-1)).abs().max().item()
    assert gap > 1e-4, gap


def test_official_mean_is_the_official_slice_for_left_padding():
    torch.manual_seed(0)
    hidden = torch.randn(3, 6, 8).to(torch.bfloat16)
    mask = torch.tensor([[0, 0, 0, 1, 1, 1], [1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 1]])
    expected = torch.stack([hidden[i, -n:].sum(0) / n for i, n in enumerate(mask.sum(-1))])
    assert torch.equal(official_mean(hidden, mask), expected)
    assert official_mean(hidden, mask).dtype == torch.bfloat16
    # right padding: the same real tokens, the same bits
    right = torch.zeros_like(hidden)
    for i, n in enumerate(mask.sum(-1).tolist()):
        right[i, :n] = hidden[i, -n:]
    assert torch.equal(official_mean(right, mask.flip(1)), expected)
    # indexing modes are exact in any dtype; pool(official) leaves the cast to the caller
    for mode in ("last_token", "cls"):
        official = pool(hidden, mask, mode, "official")
        assert official.dtype == torch.bfloat16
        assert torch.equal(official.float(), pool(hidden, mask, mode, "float32"))


@torch.inference_mode()
@pytest.mark.parametrize("tp", [True, False])
def test_zh_official_dense_in_model_dtype_bit_for_bit(tiny_qwen3_zh, zh_backbones, tp):
    from sentence_transformers.sentence_transformer.modules import Dense

    official = zh_backbones("official", tp)
    assert not official.spec.backbone_normalizes  # -Zh normalizes after the MRL cut
    ids = official.tokenize([EOL.format(text=t) for t in TEXTS])
    with _capture(official) as seen:
        got = official.embed_ids(ids)
    hidden = seen["hidden"]
    assert hidden.dtype == torch.bfloat16 and seen["mask"][:, -1].all()
    # sentence-transformers 3.4.1: every module cast to the model dtype; last-token pooling
    # (a gather: contiguous); the Dense in bf16; encode() returns float32
    dense = Dense.load(str(tiny_qwen3_zh / "2_Dense")).to(torch.bfloat16)
    last = hidden[:, -1, :].contiguous()
    expected = dense({"sentence_embedding": last})["sentence_embedding"].float()
    assert torch.equal(got, expected)
    # float32: today's path, the Dense in float32 on the float32 state
    precise = zh_backbones("float32", tp)
    with _capture(precise) as seen32:
        got32 = precise.embed_ids(ids)
    dense32 = Dense.load(str(tiny_qwen3_zh / "2_Dense")).float()
    today = dense32({"sentence_embedding": seen32["hidden"].float()[:, -1].contiguous()})
    assert torch.equal(got32, today["sentence_embedding"])
    assert (got - got32).abs().max().item() > 1e-4


class _FixedEmbedder:
    """Stands in for the Embedder: hands back given raw vectors."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors

    def embed(self, inputs, side, desc="", spans=None):
        assert len(inputs) == len(self.vectors)
        return self.vectors.copy()


def _encode(vectors: np.ndarray, **kw) -> np.ndarray:
    class Meta:
        name = "T"

    recipe = Recipe(name="r", instruction_template="{instruction}", instructions={"T": "x"})
    encoder = RecipeEncoder(meta=None, recipe=recipe, embedder=_FixedEmbedder(vectors), **kw)
    texts = [f"text {i}" for i in range(len(vectors))]
    return encoder.encode(
        [{"text": texts}], task_metadata=Meta, hf_split="test", hf_subset="default"
    )


@torch.inference_mode()
def test_finish_hands_mteb_exactly_the_official_vectors(qe_backbones, zh_backbones):
    # QZhou-Embedding: the backbone normalized in bf16; no second normalization at full size
    official = qe_backbones["official"]
    raw = official.embed_ids(official.tokenize(TEXTS)).numpy()
    prenormalized = {"numerics": "official", "prenormalized": True}
    for dim in (None, raw.shape[1]):
        assert np.array_equal(_encode(raw, dim=dim, **prenormalized), raw)
    assert not np.array_equal(_encode(raw, numerics="official"), raw)  # it would change bits
    # an MRL cut is normalized again (there is no official rule for it; sklearn's, as -Zh)
    assert np.array_equal(_encode(raw, dim=16, **prenormalized), sk_normalize(raw[:, :16]))
    # QZhou-Embedding-Zh: raw Dense output -> first dim values -> sklearn normalize in float32
    zh = zh_backbones("official")
    raw = zh.embed_ids(zh.tokenize([EOL.format(text=t) for t in TEXTS])).numpy()
    for dim in (16, 64, 96, None):
        out = _encode(raw, dim=dim, numerics="official")
        assert out.dtype == np.float32
        assert np.array_equal(out, sk_normalize(raw[:, :dim]))
    # float32 keeps today's numpy normalization
    norms = np.linalg.norm(raw[:, :16], axis=1, keepdims=True)
    assert np.array_equal(_encode(raw, dim=16), raw[:, :16] / np.maximum(norms, 1e-12))
