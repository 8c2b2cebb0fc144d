"""A sentence-transformers pipeline's own settings must agree with the model config: a setting
the backend cannot apply is refused, never filed as a variant under a claim that is untrue."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
import torch

from qzhou_eval.config import compose_config
from qzhou_eval.config.spec import model_spec
from qzhou_eval.errors import ConfigError
from qzhou_eval.models.attention import make_bidirectional
from qzhou_eval.models.backbone import TransformersBackbone, load_backbone
from qzhou_eval.models.st_pipeline import attention_of, check_pipeline_settings


@pytest.fixture(scope="module")
def minilm_spec():
    return model_spec(compose_config("mteb", ["model=minilm"]).model)


@pytest.fixture(scope="module")
def minilm_pipeline(minilm_spec):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(minilm_spec.path, device="cpu")


def test_the_shipped_config_agrees_with_its_pipeline(minilm_spec, minilm_pipeline):
    check_pipeline_settings(minilm_pipeline, minilm_spec)  # mean, Normalize, bidirectional, sdpa
    check_pipeline_settings(
        minilm_pipeline, dataclasses.replace(minilm_spec, attention="causal_default")
    )


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (
            {"pooling": "cls"},
            "model.pooling=cls, but this sentence-transformers pipeline pools "
            "with mean (its Pooling module decides): set model.pooling=mean",
        ),
        ({"pooling": "last_token"}, "set model.pooling=mean"),
        (
            {"normalize": False},
            "model.normalize=false, but this sentence-transformers pipeline "
            "L2-normalizes (its Normalize module)",
        ),
        (
            {"attention": "causal"},
            "attends bidirectional (the harness does not change it on this "
            "backend): set model.attention=bidirectional",
        ),
        (
            {"attn_implementation": "eager"},
            "runs sdpa attention (its code chose it): set model.attn_implementation=sdpa",
        ),
    ],
)
def test_a_setting_the_pipeline_decides_otherwise_is_refused(
    minilm_spec, minilm_pipeline, change, needle
):
    with pytest.raises(ConfigError) as info:
        check_pipeline_settings(minilm_pipeline, dataclasses.replace(minilm_spec, **change))
    assert needle in str(info.value)
    assert "or model.backend=native" in str(info.value)


def test_pooling_names_are_the_configs(minilm_spec, minilm_pipeline):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Pooling

    dim = minilm_pipeline.get_embedding_dimension()
    for theirs, ours in (("lasttoken", "last_token"), ("weightedmean", "weighted_mean")):
        pipeline = SentenceTransformer(modules=[minilm_pipeline[0], Pooling(dim, theirs)])
        check_pipeline_settings(pipeline, dataclasses.replace(minilm_spec, pooling=ours))
        with pytest.raises(ConfigError, match=f"pools with {ours} "):
            check_pipeline_settings(pipeline, minilm_spec)
    both = SentenceTransformer(modules=[minilm_pipeline[0], Pooling(dim, ("cls", "mean"))])
    with pytest.raises(ConfigError, match=r"pools with cls\+mean .*model.pooling cannot state"):
        check_pipeline_settings(both, minilm_spec)


def test_the_attention_kernel_is_applied_not_ignored(minilm_spec):
    """model.attn_implementation reaches the pipeline's model (it changes the arithmetic)."""
    for kernel in ("eager", "sdpa"):
        backbone = load_backbone(dataclasses.replace(minilm_spec, attn_implementation=kernel))
        assert backbone.model[0].auto_model.config._attn_implementation == kernel


def test_attention_read_from_the_modules(tiny_qwen2: Path, minilm_pipeline):
    from transformers import AutoModel

    assert attention_of(minilm_pipeline[0].auto_model) == "bidirectional"
    decoder = AutoModel.from_pretrained(tiny_qwen2)
    assert attention_of(decoder) == "causal"
    make_bidirectional(decoder)
    assert attention_of(decoder) == "bidirectional"


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        (["model.projection=2_Dense"], "model.projection=2_Dense needs model.backend=native"),
        (
            [
                "model.token_prepending.enabled=true",
                "+model.token_prepending.placeholder=x",
                "+model.token_prepending.starting_index=1",
                "+model.token_prepending.exiting_index=2",
            ],
            "model.token_prepending.enabled=true needs model.backend=native",
        ),
    ],
)
def test_what_only_the_native_backend_adds_is_refused_before_loading(overrides, needle):
    with pytest.raises(ConfigError, match=needle):
        model_spec(compose_config("mteb", ["model=minilm", *overrides]).model)


def test_a_run_asking_what_the_pipeline_does_not_do_stops_with_one_line(tmp_path):
    from tests.in_process import qzhou_eval

    run = qzhou_eval(
        "run",
        "model=minilm",
        "benchmark=demo_eng",
        "benchmark.tasks=[DemoEngSTS]",
        "model.pooling=cls",
        f"runtime.results_dir={tmp_path / 'results'}",
        f"runtime.store_dir={tmp_path / 'store'}",
    )
    assert run.code == 2
    assert run.err_lines[-1].startswith(
        "error: model.pooling=cls, but the sentence-transformers pipeline of model.path="
    )
    assert not [p for p in (tmp_path / "results").rglob("*") if p.is_file()]  # nothing filed


@pytest.mark.parametrize("encode", [True, False])
def test_normalize_false_over_stored_vectors_of_a_normalizing_pipeline_is_refused(
    tmp_path, minilm_demo, encode
):
    # model.normalize is no key of the store: with every vector stored the model never loaded,
    # and the official vectors, unchanged, were filed as a variant claiming normalize=false
    from tests.in_process import qzhou_eval

    shutil.copytree(minilm_demo / "store", tmp_path / "store")
    run = qzhou_eval(
        "run",
        "model=minilm",
        "benchmark=demo_eng",
        "benchmark.tasks=[DemoEngClustering]",
        "model.normalize=false",
        f"runtime.encode={str(encode).lower()}",
        f"runtime.results_dir={tmp_path / 'results'}",
        f"runtime.store_dir={tmp_path / 'store'}",
    )
    assert run.code == 2, run.err[-2000:]
    (line,) = run.err_lines
    assert line.startswith("error: model.normalize=false, but the sentence-transformers pipeline")
    assert line.endswith(
        "L2-normalizes (its Normalize module): set model.normalize=true, or "
        "model.backend=native for unnormalized vectors"
    )
    assert not [p for p in (tmp_path / "results").rglob("*") if p.is_file()]  # nothing filed


@pytest.mark.parametrize(
    ("theirs", "ours"),
    [
        ("cls", "cls"),
        ("mean", "mean"),
        ("max", "max"),
        ("mean_sqrt_len_tokens", "mean_sqrt_len"),
        ("weightedmean", "weighted_mean"),
        ("lasttoken", "last_token"),
    ],
)
def test_the_native_backend_pools_as_the_pipelines_pooling_module(
    minilm_spec, minilm_pipeline, theirs, ours
):
    """Each mode model.pooling names gives the vectors of sentence-transformers' own Pooling
    module of that mode (over MiniLM's real transformer, both without normalization)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Pooling

    texts = ["A short one.", "a somewhat longer input, with more tokens than the first", "x"]
    dim = minilm_pipeline.get_embedding_dimension()
    pipeline = SentenceTransformer(modules=[minilm_pipeline[0], Pooling(dim, theirs)])
    expected = pipeline.encode(texts, convert_to_tensor=True, batch_size=len(texts))
    spec = dataclasses.replace(minilm_spec, backend="native", pooling=ours, normalize=False)
    backbone = TransformersBackbone(spec)
    got = backbone.embed_ids(backbone.tokenize(texts))
    torch.testing.assert_close(got, expected.float(), rtol=1e-4, atol=1e-5)
    check_pipeline_settings(pipeline, dataclasses.replace(spec, backend="sentence_transformers"))


def test_a_normalize_module_of_the_token_states_does_not_normalize_the_vectors(
    minilm_spec, minilm_pipeline
):
    """(a trial: the folder check read it as no normalization, this check as one: no way
    through either)"""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Normalize, Pooling

    dim = minilm_pipeline.get_embedding_dimension()
    tokens = Normalize(module_input_name="token_embeddings")
    pipeline = SentenceTransformer(modules=[minilm_pipeline[0], tokens, Pooling(dim, "mean")])
    check_pipeline_settings(pipeline, dataclasses.replace(minilm_spec, normalize=False))
