"""``runtime.devices``: which devices encode, checked before anything loads.

- ``auto`` (default): every visible CUDA GPU (one worker process each when there are several),
  else ``mps``, else ``cpu``;
- ``all``: every visible CUDA GPU (an error when there is none);
- one device (``cuda:1``, ``cpu``) or a list (``[cuda:0, cuda:1]``; ``[cpu, cpu]`` runs two CPU
  worker processes). Several devices mean one persistent worker process per device.

``runtime.device`` (one device) is the older spelling and still works.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from qzhou_eval.errors import ConfigError

_DEVICE = re.compile(r"(cpu|mps|cuda)(:\d+)?")


def visible_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def check_device(name: Any, key: str) -> str:
    """``name`` if it is a device this machine has; else a one-line ConfigError naming ``key``."""
    text = str(name).strip()
    match = _DEVICE.fullmatch(text)
    if match is None:
        raise ConfigError(f"{key}={text!r} is not a device; use cpu, cuda, cuda:<N>, mps or auto")
    kind, index = match.group(1), match.group(2)
    if kind == "cuda":
        n = visible_gpus()
        if n == 0:
            raise ConfigError(f"{key}={text}: this machine has no visible CUDA GPU (use cpu)")
        if index is not None and int(index[1:]) >= n:
            raise ConfigError(
                f"{key}={text}: only {n} CUDA GPU(s) are visible (cuda:0..cuda:{n - 1})"
            )
    if kind == "mps":
        import torch

        if not torch.backends.mps.is_available():
            raise ConfigError(f"{key}={text}: MPS is not available on this machine (use cpu)")
    return text


def resolve_devices(devices: Any, device: Any = None) -> list[str]:
    """The devices to encode on, from ``runtime.devices`` (and the older ``runtime.device``)."""
    if device is not None:
        if devices not in (None, "auto"):
            raise ConfigError("set runtime.devices or runtime.device, not both")
        return [check_device(device, "runtime.device")]
    if devices is None or devices == "auto":
        n = visible_gpus()
        if n:
            return [f"cuda:{i}" for i in range(n)]
        import torch

        return ["mps"] if torch.backends.mps.is_available() else ["cpu"]
    if devices == "all":
        n = visible_gpus()
        if n == 0:
            raise ConfigError("runtime.devices=all: this machine has no visible CUDA GPU")
        return [f"cuda:{i}" for i in range(n)]
    if isinstance(devices, str):
        return [check_device(devices, "runtime.devices")]
    if isinstance(devices, Sequence) and devices:
        return [check_device(d, "runtime.devices") for d in devices]
    raise ConfigError(f"runtime.devices={devices!r}: give auto, all, a device or a list of devices")
