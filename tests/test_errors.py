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


QUOTED = " (quoted, it is a text: write it without the quotes)"


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["run", "model=minilm", "runtime.overwrite='true'"],
            "runtime.overwrite='true': give true or false",
        ),
        (
            ["run", "model=minilm", "mrl.dims=['128',256]"],
            "mrl.dims=['128', 256]: '128' is not a positive integer",
        ),
        (
            ["shards", "benchmark=demo_eng", "benchmark.num_shards='2'"],
            "benchmark.num_shards='2' must be a positive integer",
        ),
        (["check", "check.texts='4'"], "check.texts='4' must be an integer >= 2"),
        (
            ["run", "model=minilm", "runtime.max_padding='0.5'"],
            "runtime.max_padding='0.5': give a fraction in [0, 1), e.g. 0.03, or null",
        ),
        (
            ["run", "model=minilm", "mrl.dims='[64,128]'"],
            "mrl.dims='[64,128]': give a list of positive integers, e.g. 'mrl.dims=[256,1024]'",
        ),
        (
            ["check", "check.budgets=['1024',2048]"],
            "check.budgets=['1024', 2048]: give two token budgets, e.g. [16384,32768]",
        ),
        (["check", "check.scale_down='true'"], "check.scale_down='true': give true, false or auto"),
        (
            ["report", "results_dir={tmp}", "tolerance='0.5'"],
            "tolerance='0.5': give a number of score points from 0 to 100 (e.g. 0.01)",
        ),
        (
            ["run", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs='2'", "mrl.dim=1,2"],
            "hydra.launcher.n_jobs='2': give how many jobs run at once, a whole number (-1: as "
            "many as CPU cores)",
        ),
    ],
)
def test_a_value_quoted_into_a_text_is_named_as_such_wherever_a_number_or_flag_is_asked(
    tmp_path, args, line
):
    # (only runtime.* and a few model.* keys said so; the rest read as if nothing were given)
    from tests.in_process import qzhou_eval

    run = qzhou_eval(*[a.format(tmp=tmp_path) for a in args])
    assert (run.code, run.err_lines[-1:]) == (2, [f"error: {line}{QUOTED}"])


@pytest.mark.parametrize(
    "args",
    [
        ["run", "model=minilm", "runtime.scoring_workers='-1'"],
        ["shards", "benchmark=demo_eng", "benchmark.num_shards='-2'"],
        ["run", "model=minilm", "mrl.dims=['0']"],
        ["check", "check.budgets=['1024','-5']"],
        ["run", "model=minilm", "runtime.max_padding='1.5'"],
    ],
)
def test_a_quoted_value_that_is_wrong_unquoted_too_gets_no_quotes_hint(args):
    from tests.in_process import qzhou_eval

    run = qzhou_eval(*args)
    assert run.code == 2 and len(run.err_lines) == 1 and "quoted" not in run.err_lines[0]


def test_a_model_key_set_on_the_command_line_names_the_files_key_as_yaml_writes_it():
    # (hf_auto's key is null: the line said "(None)")
    from tests.in_process import qzhou_eval

    run = qzhou_eval("run", "model=hf_auto", "model.name=x/y", "model.key=minilm")
    assert run.code == 2 and run.err_lines[-1].startswith(
        "error: model.key=minilm is not the key of its model file (null): pick a model file"
    )
