"""The out-of-memory check, run here against a simulated GPU: a fake backbone whose activations
cost memory, and a mocked torch.cuda that enforces the memory cap."""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

import pytest
import torch

from qzhou_eval.check import context as check_context
from qzhou_eval.check.context import Context
from qzhou_eval.check.memory import oom_recovery
from qzhou_eval.check.subject import Subject
from qzhou_eval.encoder import device_loop
from qzhou_eval.models.inputs import TokenBatch, collate_padded

MIB = 2**20


class SimulatedGpu:
    """1000 MiB, 100 MiB of weights, 0.1 MiB per token of a forward; ``leak``: MiB a forward
    leaves allocated."""

    def __init__(self, leak: float = 0.0) -> None:
        self.total, self.base, self.per_token = 1000 * MIB, 100 * MIB, 0.1 * MIB
        self.fraction = 1.0
        self.allocated = self.base
        self.peak = self.base
        self.leak = leak * MIB
        self.fractions: list[float] = []

    def forward(self, tokens: int) -> None:
        need = self.allocated + self.per_token * tokens
        if need > self.fraction * self.total:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        self.peak = max(self.peak, need)
        self.allocated += self.leak

    def install(self, monkeypatch) -> SimulatedGpu:
        cuda = torch.cuda

        def set_fraction(fraction, device=None):
            self.fraction = fraction
            self.fractions.append(fraction)

        def reset_peak(device=None):
            self.peak = self.allocated

        class Event:
            def record(self, stream=None):
                pass

            def synchronize(self):
                pass

        real_empty = torch.empty
        monkeypatch.setattr(cuda, "set_per_process_memory_fraction", set_fraction)
        monkeypatch.setattr(cuda, "memory_allocated", lambda device=None: self.allocated)
        monkeypatch.setattr(cuda, "max_memory_allocated", lambda device=None: self.peak)
        monkeypatch.setattr(cuda, "reset_peak_memory_stats", reset_peak)
        monkeypatch.setattr(
            cuda, "get_device_properties", lambda d: SimpleNamespace(total_memory=self.total)
        )
        monkeypatch.setattr(cuda, "empty_cache", lambda: None)
        monkeypatch.setattr(cuda, "device", lambda d: contextlib.nullcontext())
        monkeypatch.setattr(cuda, "set_device", lambda d: None)
        monkeypatch.setattr(cuda, "current_stream", lambda d=None: None)
        monkeypatch.setattr(cuda, "Event", Event)
        monkeypatch.setattr(torch, "empty", lambda *a, pin_memory=False, **k: real_empty(*a, **k))
        monkeypatch.setattr(torch.Tensor, "is_cuda", property(lambda t: True), raising=False)
        for module in (device_loop, check_context):
            monkeypatch.setattr(module, "to_device", lambda inputs, device: inputs)
        return self


class GpuBackbone:
    """Vectors (sum of ids, count, first id) per row; memory as the simulated GPU says."""

    device = torch.device("cuda:0")
    packing = False
    tokenizer = range(5000)  # len(): the vocabulary size the check draws ids from

    def __init__(self, gpu: SimulatedGpu) -> None:
        self.gpu = gpu
        self.forward_calls = 0

    def collate(self, batch: TokenBatch, pin: bool = False):
        return collate_padded(batch, 0, "left")

    def forward(self, inputs):
        ids, mask = inputs["input_ids"], inputs["attention_mask"]
        self.gpu.forward(ids.numel())
        self.forward_calls += 1
        real = ids * mask
        return torch.stack([real.sum(1), mask.sum(1), real.max(1).values], 1).double().float()


def _context(gpu: SimulatedGpu) -> Context:
    spec = SimpleNamespace(max_length=64, dtype="float32", name="sim")
    subject = Subject(spec, None, "simulated")  # type: ignore[arg-type]
    check = SimpleNamespace(oom_memory_fraction=0.5, tolerance_float32=1e-4, tolerance_half=3e-2)
    runtime = SimpleNamespace(devices=("cuda:0",), max_batch_size=512)
    ids = [[1000 + i, 2000 + i * 7, 1500] for i in range(4)]
    return Context(subject, runtime, check, GpuBackbone(gpu), [], ids)  # type: ignore[arg-type]


def test_oom_recovery_passes_when_memory_is_freed_and_the_limit_is_sane(monkeypatch):
    gpu = SimulatedGpu().install(monkeypatch)
    result = oom_recovery(_context(gpu))
    assert result.status == "PASS", result.detail
    # 400 MiB under the 50% cap at 0.1 MiB per token: 4,000 tokens fit; 94 x 64 tokens did not
    assert result.figures["tokens_fit"] == 4000
    assert 1000 <= result.figures["token_limit"] < 94 * 64
    assert gpu.fractions == [0.5, 1.0]  # capped for the check, uncapped after


def test_oom_recovery_fails_when_memory_stays_allocated(monkeypatch):
    gpu = SimulatedGpu(leak=100).install(monkeypatch)  # every forward leaves 100 MiB behind
    result = oom_recovery(_context(gpu))
    assert result.status == "FAIL" and "still allocated after the run" in result.detail
    assert "the split run stopped: out of memory on cuda:0 for one input" in result.detail
    assert gpu.fractions[-1] == 1.0


def test_oom_recovery_skips_on_a_cpu():
    from qzhou_eval.check.context import Skip

    ctx = _context(SimulatedGpu())
    ctx.backbone.device = torch.device("cpu")
    with pytest.raises(Skip, match="needs a CUDA device"):
        oom_recovery(ctx)
