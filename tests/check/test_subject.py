"""The model under check: random weights identical everywhere, a scaled-down architecture."""

from __future__ import annotations

import pytest
import torch

from qzhou_eval.check.subject import KNOWN_ARCHITECTURES, _scaled, fill_hashed, make_subject
from qzhou_eval.config import compose_config
from qzhou_eval.config.spec import model_spec
from qzhou_eval.errors import ConfigError, ModelLoadError


def test_hashed_weights_depend_on_seed_name_and_index_only():
    a = torch.empty(3, 1000)
    b = torch.empty(3000, dtype=torch.float64)
    fill_hashed(a, 0, "layer.weight", 0.02)
    fill_hashed(b, 0, "layer.weight", 0.02)
    assert torch.equal(a.view(-1), b.float())  # the same values whatever the shape and dtype
    c = torch.empty(3, 1000)
    fill_hashed(c, 0, "other.weight", 0.02)
    assert not torch.equal(a, c)
    assert abs(float(a.mean())) < 2e-3 and abs(float(a.std()) - 0.02) < 2e-3


@pytest.mark.parametrize("name", sorted(KNOWN_ARCHITECTURES))
def test_scaling_down_keeps_the_grouped_heads(name):
    arch = KNOWN_ARCHITECTURES[name]
    small = _scaled(arch, 8, 256)
    assert small["num_hidden_layers"] == 8 and small["hidden_size"] == 256
    heads, kv = small["num_attention_heads"], small["num_key_value_heads"]
    assert heads % kv == 0 and kv < heads  # still grouped-query attention
    assert small["vocab_size"] == arch["vocab_size"] and small["model_type"] == arch["model_type"]


def test_a_model_of_unknown_architecture_is_one_config_error():
    cfg = compose_config(
        "check", ["model=hf_auto", "model.name=org/unknown", "check.random_weights=true"]
    )
    with pytest.raises(ConfigError, match=r"no known architecture for model\.name=org/unknown"):
        make_subject(model_spec(cfg.model), cfg.check, ("cpu",))


@pytest.mark.parametrize(
    ("text", "says"),
    [("{not json", "cannot read "), ('{"hidden_size": 8}', "names no model_type")],
)
def test_a_config_json_random_weights_cannot_read_is_one_line(tmp_path, text, says):
    # (a JSONDecodeError traceback, where run and a plain check said it in one line)
    (tmp_path / "config.json").write_text(text)
    cfg = compose_config(
        "check",
        [
            "model=hf_auto",
            "model.name=org/x",
            f"model.path={tmp_path}",
            "check.random_weights=true",
        ],
    )
    with pytest.raises(ModelLoadError, match=rf"check\.random_weights=true: .*{says}"):
        make_subject(model_spec(cfg.model), cfg.check, ("cpu",))


def test_token_prepending_needs_enough_scaled_layers():
    cfg = compose_config(
        "check", ["model=qzhou_embedding_zh", "check.random_weights=true", "check.scaled_layers=4"]
    )
    with pytest.raises(ConfigError, match=r"check\.scaled_layers=4"):
        make_subject(model_spec(cfg.model), cfg.check, ("cpu",))
