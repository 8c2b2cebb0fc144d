"""Building an engine: one device in this process, several in worker processes."""

from __future__ import annotations

import pytest

from qzhou_eval.encoder.engines import LocalEngine, PoolEngine, make_engine
from qzhou_eval.errors import ModelLoadError
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
    assert message.startswith("cannot load the model of test/tiny-qwen2 from model.path=")
    assert str(empty) in message and "\n" not in message
