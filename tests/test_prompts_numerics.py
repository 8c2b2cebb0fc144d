"""The prompts app states the numerics and the Token Prepending layers on stderr; stdout stays pure
JSON lines; a bad Token Prepending setting is one error line, exit code 2, nothing on stdout."""

from __future__ import annotations

import json

from tests.in_process import Run, qzhou_eval


def _prompts(*overrides: str) -> Run:
    return qzhou_eval("prompts", *overrides)


def test_zh_states_numerics_and_layers_on_stderr_and_keeps_stdout_json():
    run = _prompts("model=qzhou_embedding_zh", "benchmark=cmteb")
    assert run.code == 0, run.err
    rows = [json.loads(line) for line in run.out.splitlines()]  # every line is JSON
    assert len({r["task"] for r in rows}) == 31
    assert all(set(r) == {"task", "side", "input"} for r in rows)
    err = run.err_lines
    numerics = [line for line in err if line.startswith("numerics: ")]
    layers = [line for line in err if line.startswith("token prepending: ")]
    assert numerics == [
        "numerics: official (Dense projection in bfloat16, then float32; first dim values, "
        "sklearn normalize in float32)"
    ]
    assert len(layers) == 1
    assert "layers 1..6" in layers[0] and "starting_index=1, exiting_index=7" in layers[0]
    assert "numerics" not in run.out and "token prepending" not in run.out


def test_old_and_new_layer_keys_together_fail_in_one_line():
    run = _prompts(
        "model=qzhou_embedding_zh", "benchmark=cmteb", "+model.token_prepending.end_layer=7"
    )
    assert run.code == 2
    assert run.out == ""
    err = run.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: model.token_prepending:"), err
