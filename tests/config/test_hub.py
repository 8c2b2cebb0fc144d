"""A Hub model id that cannot be loaded here fails in seconds, naming model.path."""

from __future__ import annotations

import time

import pytest

from qzhou_eval.config import hub
from qzhou_eval.errors import ModelLoadError
from tests.in_process import qzhou_eval

REPO_ID = "nobody/no-such-model"


@pytest.fixture
def online(monkeypatch):
    for variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", *hub._PROXY_VARIABLES):
        monkeypatch.delenv(variable, raising=False)


def test_offline_without_a_cached_copy(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError) as info:
        hub.check_hub_model(REPO_ID, "main")
    assert str(info.value) == (
        f"model.path={REPO_ID} is a Hugging Face Hub id, HF_HUB_OFFLINE is set and the Hugging "
        "Face cache has no copy of it at revision main: point model.path at a folder that holds "
        "the model (model.path=/models/no-such-model)"
    )


def test_unreachable_hub_is_found_in_seconds(monkeypatch, online):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    started = time.monotonic()
    assert not hub.reachable()
    with pytest.raises(ModelLoadError) as info:
        hub.check_hub_model(REPO_ID, "main")
    assert time.monotonic() - started < 5
    assert str(info.value) == (
        f"model.path={REPO_ID} is a Hugging Face Hub id and the Hub (127.0.0.1) cannot be "
        "reached: point model.path at a folder that holds the model "
        "(model.path=/models/no-such-model), or run where the Hub is reachable"
    )
    monkeypatch.setattr(hub, "cached", lambda repo, revision: True)
    with pytest.raises(ModelLoadError, match="set HF_HUB_OFFLINE=1 to load it from the Hugging"):
        hub.check_hub_model(REPO_ID, "main")


def test_a_folder_a_reachable_hub_or_a_proxy_pass(monkeypatch, online, tmp_path):
    hub.check_hub_model(str(tmp_path), "main")  # a folder: the loader's own checks apply
    monkeypatch.setattr(hub, "reachable", lambda: True)
    hub.check_hub_model(REPO_ID, "main")
    monkeypatch.undo()
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    assert hub.reachable()  # a proxy cannot be probed with a plain connection: trust it


def test_run_of_an_uncached_hub_model_offline_is_one_line(tmp_path):
    run = qzhou_eval(
        "run",
        "model=qzhou_embedding",
        "benchmark=demo_eng",
        "benchmark.tasks=[DemoEngSTS]",
        f"runtime.results_dir={tmp_path / 'r'}",
        "runtime.store_dir=null",
    )
    assert run.code == 2 and "Traceback" not in run.err
    assert run.err_lines == [
        "error: model.path=Kingsoft-LLM/QZhou-Embedding is a Hugging Face Hub id, "
        "HF_HUB_OFFLINE is set and the Hugging Face cache has no copy of it at revision "
        "f1e6c03ee3882e7b9fa5cec91217715272e433b8: point model.path at a folder that holds "
        "the model (model.path=/models/QZhou-Embedding)"
    ]
