"""Error lines echo config values as the user wrote them."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from qzhou_eval.config import compose_config
from qzhou_eval.config.spec import runtime_spec
from qzhou_eval.errors import ConfigError, shown


def test_values_are_shown_as_yaml_writes_them():
    assert [shown(v) for v in (True, False, None, 3, 0.5, "x")] == [
        "true",
        "false",
        "null",
        "3",
        "0.5",
        "'x'",
    ]
    assert shown([1, None, [True]]) == "[1, null, [true]]"
    assert shown(OmegaConf.create({"a": [None, "b"]})) == "{a: [null, 'b']}"


@pytest.mark.parametrize(
    ("key", "value", "line"),
    [
        ("lookahead", True, "runtime.lookahead=true: give a whole number >= 0 or 'all'"),
        ("encode", None, "runtime.encode=null: give true or false"),
        ("tokens_per_batch", [1, 2], "runtime.tokens_per_batch=[1, 2] must be a positive integer"),
    ],
)
def test_a_bad_runtime_value_is_echoed_as_written(key, value, line):
    cfg = compose_config("mteb").runtime
    cfg[key] = value
    with pytest.raises(ConfigError) as e:
        runtime_spec(cfg)
    assert str(e.value) == line
