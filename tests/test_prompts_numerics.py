"""The prompts app states the numerics and the Token Prepending layers on stderr; stdout stays pure
JSON lines; a bad Token Prepending setting is one error line, exit code 2, nothing on stdout."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO


def _prompts(*overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "qzhou_eval.prompts", *overrides],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_zh_states_numerics_and_layers_on_stderr_and_keeps_stdout_json():
    run = _prompts("model=qzhou_embedding_zh", "benchmark=cmteb")
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in run.stdout.splitlines()]  # every line is JSON
    assert len({r["task"] for r in rows}) == 31
    assert all(set(r) == {"task", "side", "input"} for r in rows)
    err = [line for line in run.stderr.splitlines() if line.strip()]
    numerics = [line for line in err if line.startswith("numerics: ")]
    layers = [line for line in err if line.startswith("token prepending: ")]
    assert numerics == [
        "numerics: official (Dense projection in bfloat16, then float32; first dim values, "
        "sklearn normalize in float32)"
    ]
    assert len(layers) == 1
    assert "layers 1..6" in layers[0] and "starting_index=1, exiting_index=7" in layers[0]
    assert "numerics" not in run.stdout and "token prepending" not in run.stdout


def test_old_and_new_layer_keys_together_fail_in_one_line():
    run = _prompts(
        "model=qzhou_embedding_zh", "benchmark=cmteb", "+model.token_prepending.end_layer=7"
    )
    assert run.returncode == 2
    assert run.stdout == ""
    err = run.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: model.token_prepending:"), err
