"""The environment lines ``qzhou-eval check`` prints first: versions, devices, attention kernels."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess

import torch

from qzhou_eval.config.cores import usable_cores


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _driver() -> str:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout.split()
        return out[0] if out else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown (no nvidia-smi)"


def environment() -> tuple[list[str], dict]:
    """Printable lines and the same facts for the JSON summary."""
    from qzhou_eval.models.packing import varlen_kernel

    cuda = torch.cuda.is_available()
    facts: dict = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "transformers": _version("transformers"),
        "sentence_transformers": _version("sentence-transformers"),
        "cpus": usable_cores(),
        "alloc_conf": os.environ.get("PYTORCH_CUDA_ALLOC_CONF")
        or os.environ.get("PYTORCH_ALLOC_CONF"),
    }
    lines = [
        f"env   python {facts['python']}, torch {facts['torch']} (CUDA {facts['cuda'] or 'none'}), "
        f"transformers {facts['transformers']}, sentence-transformers "
        f"{facts['sentence_transformers']}, {facts['cpus']} usable CPU cores"
    ]
    gpus = []
    if cuda:
        facts["driver"] = _driver()
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            gpus.append(f"cuda:{i} {p.name} {p.total_memory / 2**30:.0f} GiB sm_{p.major}{p.minor}")
        lines.append(f"env   driver {facts['driver']}; GPUs: {'; '.join(gpus)}")
    else:
        lines.append("env   GPUs: none visible (CUDA-only checks SKIP)")
    facts["gpus"] = gpus
    kernels = ["sdpa"]
    if cuda:
        backends = torch.backends.cuda
        flags = {
            "flash": backends.flash_sdp_enabled(),
            "mem_efficient": backends.mem_efficient_sdp_enabled(),
            "cudnn": backends.cudnn_sdp_enabled(),
            "math": backends.math_sdp_enabled(),
        }
        kernels[0] += f" (backends on: {', '.join(k for k, v in flags.items() if v) or 'none'})"
    try:
        from transformers.utils import is_flash_attn_2_available

        kernels.append(
            "flash_attention_2 " + ("available" if is_flash_attn_2_available() else "not installed")
        )
    except ImportError:
        pass
    kernels.append(f"packed varlen: {varlen_kernel().form}")
    facts["kernels"] = kernels
    lines.append(f"env   attention: {'; '.join(kernels)}")
    if cuda:
        lines.append(
            f"env   CUDA allocator: {facts['alloc_conf'] or 'default'} in this process; worker "
            "processes start with expandable_segments:True unless it is set"
        )
    return lines, facts
