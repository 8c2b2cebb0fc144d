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
        # a number in quotes is a text: the line says so (it read as if no number were given)
        (
            "scoring_workers",
            "2",
            "runtime.scoring_workers='2': give a whole number >= 0 or 'auto' (quoted, it is a "
            "text: write it without the quotes)",
        ),
        (
            "tokens_per_batch",
            " 8 ",
            "runtime.tokens_per_batch=' 8 ' must be a positive integer (quoted, it is a text",
        ),
        ("scoring_workers", "two", "runtime.scoring_workers='two': give a whole number >= 0 or "),
        # a blank store (runtime.store_dir=$STORE, STORE unset) is not vectors in memory only
        ("store_dir", "", "runtime.store_dir='': give a folder, or null to keep vectors in memory"),
        ("store_dir", "  ", "runtime.store_dir='  ': give a folder, or null to keep vectors in"),
        ("store_dir", True, "runtime.store_dir=true: give a folder, or null to keep vectors in"),
        ("results_dir", True, "runtime.results_dir=true: give a folder"),
        ("results_dir", "", "runtime.results_dir must be set (a folder)"),
    ],
)
def test_a_bad_runtime_value_is_echoed_as_written(key, value, line):
    cfg = compose_config("mteb").runtime
    cfg[key] = value
    with pytest.raises(ConfigError) as e:
        runtime_spec(cfg)
    assert str(e.value).startswith(line)


def test_a_folder_hydra_reads_as_a_number_is_that_folder():
    cfg = compose_config("mteb", ["runtime.results_dir=2026", "runtime.store_dir=7"]).runtime
    spec = runtime_spec(cfg, node=False)
    assert (str(spec.results_dir), str(spec.store_dir)) == ("2026", "7")
