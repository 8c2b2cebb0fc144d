"""model.numerics and model.token_prepending: defaults of the model files, the deprecated inclusive
keys, validation, and what the fingerprint depends on."""

from __future__ import annotations

import pytest

from qzhou_eval.config import compose_config
from qzhou_eval.config.deprecation import forget_warnings
from qzhou_eval.config.spec import (
    TokenPrependingSpec,
    fidelity_lines,
    model_spec,
    token_prepending_spec,
)
from qzhou_eval.errors import ConfigError
from qzhou_eval.fingerprint import fingerprint
from qzhou_eval.runs.identity import task_fields
from qzhou_eval.store import model_fingerprint

OLD_KEYS = ["~model.token_prepending.starting_index", "~model.token_prepending.exiting_index"]
ON = {"enabled": True, "placeholder": "<|im_start|>"}


def zh(*overrides: str):
    return model_spec(compose_config("cmteb", ["model=qzhou_embedding_zh", *overrides]).model)


def test_model_files_state_their_numerics_and_layers():
    spec = zh()
    assert spec.numerics == "official" and not spec.backbone_normalizes
    assert list(spec.token_prepending.layers) == [1, 2, 3, 4, 5, 6]
    assert (spec.token_prepending.starting_index, spec.token_prepending.exiting_index) == (1, 7)
    qe = model_spec(compose_config("mteb").model)
    assert qe.numerics == "official" and qe.backbone_normalizes
    st = model_spec(compose_config("cmteb", ["model=qzhou_embedding_zh_st"]).model)
    assert st.numerics == "official" and not st.backbone_normalizes  # the pipeline's own
    assert model_spec(compose_config("mteb", ["model=minilm"]).model).numerics == "float32"
    hf = compose_config("mteb", ["model=hf_auto", "model.name=org/m"]).model
    assert model_spec(hf).numerics == "float32"
    assert not model_spec(
        compose_config("mteb", ["model.numerics=float32"]).model
    ).backbone_normalizes


def test_deprecated_inclusive_keys_map_to_the_same_layers(capsys):
    forget_warnings()
    tp = token_prepending_spec({**ON, "start_layer": 1, "end_layer": 7})
    assert (tp.starting_index, tp.exiting_index) == (1, 8)
    assert list(tp.layers) == [1, 2, 3, 4, 5, 6, 7]  # what end_layer=7 always meant
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "deprecated" in err[0] and "exiting_index=8" in err[0]
    token_prepending_spec({**ON, "start_layer": 1, "end_layer": 7})
    assert capsys.readouterr().err == ""  # once per process
    # an old file that set only one key keeps the old default of the other (1..7 inclusive)
    assert list(token_prepending_spec({**ON, "start_layer": 3}).layers) == [
        3,
        4,
        5,
        6,
        7,
    ]
    # and through the composed config
    spec = zh(*OLD_KEYS, "+model.token_prepending.end_layer=6")
    assert spec.token_prepending.layers == range(1, 7)


def test_old_and_new_keys_together_are_one_line_error():
    with pytest.raises(ConfigError, match="not both") as e:
        zh("+model.token_prepending.end_layer=7")
    assert "\n" not in str(e.value)
    # the file sets the new keys, not the user: the line says what to set instead
    assert str(e.value).endswith("takes them: exiting_index=<end_layer + 1>)")
    with pytest.raises(ConfigError, match="not both"):
        token_prepending_spec({"start_layer": 1, "exiting_index": 7})


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        (["model.token_prepending.exiting_index=1"], "starting_index < exiting_index"),
        (["model.token_prepending.starting_index=-1"], "starting_index < exiting_index"),
        (["model.token_prepending.exiting_index=seven"], "integer"),
        (["model.numerics=bfloat16"], r"model\.numerics"),
    ],
)
def test_bad_values_name_the_key(overrides, needle):
    with pytest.raises(ConfigError, match=needle):
        zh(*overrides)


def test_fingerprint_depends_on_the_layers_applied_not_the_key_names():
    default = zh()
    same_layers = zh(
        *OLD_KEYS, "+model.token_prepending.start_layer=1", "+model.token_prepending.end_layer=6"
    )
    assert same_layers.fingerprint_fields() == default.fingerprint_fields()
    assert model_fingerprint(same_layers) == model_fingerprint(default)
    inclusive = zh("model.token_prepending.exiting_index=8")  # the other reading: 1..7
    assert model_fingerprint(inclusive) != model_fingerprint(default)
    assert default.fingerprint_fields()["token_prepending"] == {
        "enabled": True,
        "placeholder": "<|im_start|>",
        "layers": [1, 2, 3, 4, 5, 6],
    }
    # layers do not matter when Token Prepending is off
    off = TokenPrependingSpec(enabled=False, starting_index=2, exiting_index=4)
    assert off.fingerprint() == TokenPrependingSpec().fingerprint() == {"enabled": False}
    st = model_spec(compose_config("cmteb", ["model=qzhou_embedding_zh_st"]).model)
    assert st.token_prepending.fingerprint() == {"enabled": False}


def test_token_prepending_reads_its_keys_from_the_model_file():
    assert token_prepending_spec({"enabled": False}) == TokenPrependingSpec(enabled=False)
    for absent in ("placeholder", "starting_index", "exiting_index"):
        cfg = {**ON, "starting_index": 1, "exiting_index": 7}
        del cfg[absent]
        with pytest.raises(ConfigError, match=rf"^model\.token_prepending\.{absent} is not set"):
            token_prepending_spec(cfg)
    with pytest.raises(ConfigError, match=r"^model\.token_prepending\.enabled is not set"):
        token_prepending_spec({})


def test_numerics_is_in_the_fingerprint():
    for model in ("qzhou_embedding", "qzhou_embedding_zh"):
        cfg = compose_config("cmteb", [f"model={model}"])
        official = model_spec(cfg.model)
        precise = model_spec(
            compose_config("cmteb", [f"model={model}", "model.numerics=float32"]).model
        )
        assert official.fingerprint_fields()["numerics"] == "official"
        assert model_fingerprint(official) != model_fingerprint(precise)  # separate stores
    # QZhou-Embedding: with official numerics the stored vectors are normalized, so normalize
    # changes them: not the same store either
    qe = model_spec(compose_config("mteb").model)
    raw = model_spec(compose_config("mteb", ["model.normalize=false"]).model)
    assert model_fingerprint(qe) != model_fingerprint(raw)


def test_fidelity_lines():
    lines = fidelity_lines(compose_config("cmteb", ["model=qzhou_embedding_zh"]).model)
    assert len(lines) == 2
    assert lines[0].startswith("numerics: official (Dense projection in bfloat16")
    assert "layers 1..6" in lines[1] and "exiting_index=7" in lines[1]
    lines = fidelity_lines(compose_config("mteb", ["model.numerics=float32"]).model)
    assert lines == [
        "numerics: float32 (pooling, projection and L2 normalization in float32)",
        "token prepending: off",
    ]
    # works without weights or a model name (hf_auto leaves model.name unset)
    assert fidelity_lines(compose_config("mteb", ["model=hf_auto"]).model)[0].startswith(
        "numerics: float32"
    )


def test_task_fingerprint_files_float32_apart():
    from qzhou_eval.recipe import recipe_from_config

    cfg = compose_config("cmteb", ["model=qzhou_embedding_zh"])
    recipe = recipe_from_config(cfg.prompts)
    official = fingerprint(task_fields(zh(), recipe, "AFQMC", None))
    precise = fingerprint(task_fields(zh("model.numerics=float32"), recipe, "AFQMC", None))
    assert official != precise
