"""Device strings are checked against what torch sees, one line naming the config key."""

from __future__ import annotations

import pytest
import torch

from qzhou_eval.config import compose_config
from qzhou_eval.config.devices import check_device
from qzhou_eval.config.spec import runtime_spec
from qzhou_eval.errors import ConfigError


def runtime(**keys):
    """``runtime_spec`` of conf/runtime/default.yaml with ``keys`` set."""
    cfg = compose_config("mteb").runtime
    for key, value in keys.items():
        cfg[key] = value
    return runtime_spec(cfg)


@pytest.mark.parametrize("device", ["auto", "cpu", " cpu "])
def test_auto_and_cpu_always_pass(device):
    assert check_device(device, "runtime.device") == device.strip()


@pytest.mark.parametrize("device", ["gpu", "cuda:", "cuda:x", "cpu:0", "mps:1", "", "CUDA"])
def test_malformed_device_names_the_key_and_the_forms(device):
    with pytest.raises(ConfigError, match=r"^runtime\.device=.* is not a device; use auto, cpu"):
        check_device(device, "runtime.device")
    # each key lists the forms it takes: runtime.devices also all and lists, a list's item neither
    with pytest.raises(ConfigError, match=r"^runtime\.devices=.* device; use auto, all, .*a list"):
        runtime(devices=device or " ")
    with pytest.raises(ConfigError, match=r"^runtime\.devices\[1\]=.* device; use cpu, cuda, "):
        runtime(devices=["cpu", device])


def test_cuda_on_a_machine_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    for device in ("cuda", "cuda:0", "cuda:7"):
        with pytest.raises(ConfigError, match=rf"^runtime\.device={device}: no CUDA device \("):
            check_device(device, "runtime.device")


def test_cuda_index_beyond_the_visible_devices(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert check_device("cuda", "runtime.device") == "cuda"
    assert check_device("cuda:1", "runtime.device") == "cuda:1"
    with pytest.raises(ConfigError, match=r"has 2 CUDA device\(s\) \(cuda:0 to cuda:1\)"):
        check_device("cuda:2", "runtime.device")


def test_mps_only_where_it_exists(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r"^runtime\.device=mps: this machine has no MPS"):
        check_device("mps", "runtime.device")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert check_device("mps", "runtime.device") == "mps"


def test_runtime_spec_checks_its_device():
    absent = f"cuda:{max(7, torch.cuda.device_count())}"  # the cuda:7, absent here
    with pytest.raises(ConfigError, match=rf"^runtime\.device={absent}: "):
        runtime(device=absent)
    assert runtime(device="cpu").devices == ("cpu",)


def test_runtime_devices_lists_and_aliases(monkeypatch):
    assert runtime(devices=["cpu", "cpu"]).devices == ("cpu", "cpu")
    assert runtime(devices="cpu").devices == ("cpu",)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert runtime(devices="auto").devices == ("cuda:0", "cuda:1")
    assert runtime(devices="all").devices == ("cuda:0", "cuda:1")
    assert runtime(devices=["cuda:1", "cuda:0"]).devices == ("cuda:1", "cuda:0")
    with pytest.raises(ConfigError, match=r"^runtime\.devices\[1\]=cuda:2: this machine has 2"):
        runtime(devices=["cuda:0", "cuda:2"])
    with pytest.raises(ConfigError, match="not both"):
        runtime(devices=["cuda:0"], device="cuda:1")
    with pytest.raises(ConfigError, match="not auto"):
        runtime(devices=["auto", "cpu"])
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r"^runtime\.devices=all: no CUDA device"):
        runtime(devices="all")


def test_more_scoring_processes_than_cores_are_capped_with_one_warning(monkeypatch, capsys):
    from qzhou_eval.config import deprecation, spec

    monkeypatch.setattr(spec, "usable_cores", lambda: 4)
    deprecation.forget_warnings()
    for bad in ({"store_dir": None}, {"lookahead": -1}):  # an error, and no warning before it
        with pytest.raises(ConfigError):
            runtime(scoring_workers=1000, **bad)
    assert capsys.readouterr().err == ""
    assert runtime(scoring_workers=1000).scoring_workers == 4
    assert runtime(scoring_workers=1000).scoring_workers == 4
    assert runtime(scoring_workers=4).scoring_workers == 4
    assert capsys.readouterr().err.splitlines() == [
        "warning: runtime.scoring_workers=1000 is more than the 4 core(s) this job may use; "
        "4 processes score (scores do not depend on it)"
    ]
    monkeypatch.setattr(spec, "usable_cores", lambda: 1)  # two: one may wait for the devices
    assert runtime(scoring_workers=2).scoring_workers == 2
    assert capsys.readouterr().err == ""
