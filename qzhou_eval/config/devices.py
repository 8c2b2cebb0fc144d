"""Device strings checked at plan time: a device this machine lacks is one line, not a traceback.

Checked against what torch sees (without starting CUDA: ``torch.cuda.device_count`` asks NVML),
so ``cuda:7`` on a one-GPU node fails before any dataset or model is loaded.
"""

from __future__ import annotations

import os
import re

from qzhou_eval.errors import ConfigError, shown

DEVICE_FORMS = "auto, cpu, cuda, cuda:N or mps"  # runtime.device, check.device
_DEVICES_FORMS = "auto, all, cpu, cuda, cuda:N, mps, or a list such as [cuda:0, cuda:1]"
_LISTED_FORMS = "cpu, cuda, cuda:N or mps"
_DEVICE = re.compile(r"(auto|cpu|mps|cuda)(?::(\d+))?")


def check_device(device: str, key: str, forms: str = DEVICE_FORMS) -> str:
    """Return ``device`` if this machine has it; else a ConfigError naming ``key`` (one line;
    a malformed one lists ``forms``, the values ``key`` takes).

    ``auto`` (cuda if available, else cpu) and ``cpu`` always pass.
    """
    m = _DEVICE.fullmatch(str(device).strip())
    if m is None or (m[2] is not None and m[1] != "cuda"):
        raise ConfigError(f"{key}={shown(device)} is not a device; use {forms}")
    kind, index = m[1], m[2]
    if kind in ("auto", "cpu"):
        return m[0]
    import torch

    if kind == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(f"{key}=mps: this machine has no MPS device; use {key}=cpu or auto")
        return m[0]
    count = torch.cuda.device_count()
    if count == 0:
        if torch.version.cuda is None:
            why = f"this torch {torch.__version__} is a CPU-only build"
        elif os.environ.get("CUDA_VISIBLE_DEVICES") is not None:
            why = f"none is visible (CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']!r})"
        else:
            why = "none is visible"
        raise ConfigError(f"{key}={device}: no CUDA device ({why}); use {key}=cpu or auto")
    if index is not None and int(index) >= count:
        visible = "cuda:0" if count == 1 else f"cuda:0 to cuda:{count - 1}"
        raise ConfigError(f"{key}={device}: this machine has {count} CUDA device(s) ({visible})")
    return m[0]


def visible_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_devices(devices: object, device: object = None) -> list[str]:
    """The devices to encode on, from ``runtime.devices`` (and the older ``runtime.device``).

    - ``auto`` (default; ``null`` too): every visible CUDA GPU (one worker process each when
      there are several), else ``mps``, else ``cpu``;
    - ``all``: every visible CUDA GPU (an error when there is none);
    - one device (``cuda:1``, ``cpu``) or a list (``[cuda:0, cuda:1]``; ``[cpu, cpu]`` runs two
      CPU worker processes). Several devices mean one persistent worker process per device.

    ``runtime.device`` (one device) is the older spelling and still works.
    """
    if device is not None:
        if devices not in (None, "auto"):
            raise ConfigError("set runtime.devices or runtime.device, not both")
        devices = check_device(str(device), "runtime.device")
    if devices is None or devices == "auto":
        n = visible_gpus()
        if n:
            return [f"cuda:{i}" for i in range(n)]
        import torch

        return ["mps"] if torch.backends.mps.is_available() else ["cpu"]
    if devices == "all":
        n = visible_gpus()
        if n == 0:
            raise ConfigError("runtime.devices=all: no CUDA device is visible; use cpu or auto")
        return [f"cuda:{i}" for i in range(n)]
    if isinstance(devices, str):
        return [check_device(devices, "runtime.devices", _DEVICES_FORMS)]
    if isinstance(devices, (list, tuple)) and devices:
        out = [
            check_device(str(d), f"runtime.devices[{i}]", _LISTED_FORMS)
            for i, d in enumerate(devices)
        ]
        if "auto" in out:
            raise ConfigError("runtime.devices: a list names devices (cpu, cuda:0, ...), not auto")
        return out
    raise ConfigError(
        f"runtime.devices={shown(devices)}: give auto, all, one device or a list of devices"
    )
