"""The device loop: order, prefetch errors, and out-of-memory handling that learns."""

from __future__ import annotations

import contextlib
import logging
import threading
import weakref

import numpy as np
import pytest
import torch

from qzhou_eval.encoder.device_loop import DeviceLoop, prefetch
from qzhou_eval.errors import DeviceError
from qzhou_eval.models.inputs import TokenBatch, collate_padded


class FakeBackbone:
    """Vectors = (row sum of ids, row length); fails with CUDA OOM above ``fits`` tokens."""

    device = torch.device("cpu")
    output_dim = 2
    packing = False

    def __init__(self, fits: int | None = None) -> None:
        self.fits = fits
        self.forward_calls = 0
        self.attempts: list[int] = []  # padded sizes the loop tried

    def collate(self, batch: TokenBatch, pin: bool = False):
        return collate_padded(batch, 0, "left")

    def forward(self, inputs):
        ids, mask = inputs["input_ids"], inputs["attention_mask"]
        self.attempts.append(ids.numel())
        if self.fits is not None and ids.numel() > self.fits:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (fake)")
        self.forward_calls += 1
        return torch.stack([(ids * mask).sum(1), mask.sum(1)], dim=1).float()


def _batches(sizes):
    return [TokenBatch.from_lists([[r + 1] * width for r in range(rows)]) for rows, width in sizes]


def _expected(batch: TokenBatch) -> np.ndarray:
    return np.array([[sum(x), len(x)] for x in batch.to_lists()], dtype=np.float32)


def test_vectors_come_back_in_order():
    batches = _batches([(4, 8), (3, 5), (2, 2), (1, 1)])
    out = list(DeviceLoop(FakeBackbone()).run(enumerate(batches)))
    assert [k for k, _ in out] == [0, 1, 2, 3]
    for (_, got), batch in zip(out, batches, strict=True):
        np.testing.assert_array_equal(got, _expected(batch))


def test_out_of_memory_splits_and_later_batches_use_the_learned_limit(caplog):
    backbone = FakeBackbone(fits=40)
    loop = DeviceLoop(backbone)
    batches = _batches([(8, 10), (8, 10), (6, 10), (4, 4)])
    with caplog.at_level(logging.WARNING):
        out = dict(loop.run(enumerate(batches)))
    for k, batch in enumerate(batches):
        np.testing.assert_array_equal(out[k], _expected(batch))
    assert loop.token_limit == 40  # 80 failed, then halves of 40 fit
    # Only the first batch ever failed: later large batches were split before they ran.
    assert sum(1 for a in backbone.attempts if a > 40) == 1
    warnings = [r for r in caplog.records if "out of memory" in r.getMessage()]
    assert len(warnings) == 1 and "80 tokens" in warnings[0].getMessage()


def test_one_input_that_does_not_fit_is_one_clear_error():
    loop = DeviceLoop(FakeBackbone(fits=5))
    with pytest.raises(DeviceError, match=r"out of memory on cpu for one input of 9 tokens"):
        list(loop.run(enumerate(_batches([(2, 9)]))))


def test_prefetch_reraises_producer_errors_and_reports_readiness():
    def items():
        yield 1
        raise RuntimeError("boom")

    it = prefetch(items(), depth=2)
    assert next(it) == 1
    with pytest.raises(RuntimeError, match="boom"):
        next(it)
    done = prefetch(iter([]), depth=1)
    assert list(done) == []


# --- CUDA bookkeeping, with a mocked torch.cuda ---------------------------------------------


class FakeCuda:
    """Stands in for torch.cuda's device selection, streams and events; records what happened."""

    def __init__(self) -> None:
        self.local = threading.local()
        self.events: list[int] = []  # device of the stream each event was recorded on
        self.empty_cache_alive: list[int] = []

    @property
    def current(self) -> int:
        return getattr(self.local, "device", 0)  # a new thread starts on cuda:0, as in CUDA

    def set_device(self, device) -> None:
        self.local.device = torch.device(device).index

    @contextlib.contextmanager
    def device(self, device):
        before = self.current
        self.set_device(device)
        try:
            yield
        finally:
            self.local.device = before

    def current_stream(self, device=None):
        return ("stream", self.current if device is None else torch.device(device).index)

    def install(self, monkeypatch) -> FakeCuda:
        fake = self

        class Event:
            def record(self, stream=None):
                fake.events.append((stream or fake.current_stream())[1])

            def synchronize(self):
                pass

        real_empty = torch.empty
        monkeypatch.setattr(torch.cuda, "set_device", self.set_device)
        monkeypatch.setattr(torch.cuda, "device", self.device)
        monkeypatch.setattr(torch.cuda, "current_stream", self.current_stream)
        monkeypatch.setattr(torch.cuda, "Event", Event)
        monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
        monkeypatch.setattr(torch, "empty", lambda *a, pin_memory=False, **k: real_empty(*a, **k))
        monkeypatch.setattr(torch.Tensor, "is_cuda", property(lambda t: True), raising=False)
        return self


class CudaBackbone(FakeBackbone):
    """FakeBackbone on ``cuda:1`` that records the current device at each forward and collate."""

    def __init__(self, cuda: FakeCuda) -> None:
        super().__init__()
        self.device = torch.device("cuda:1")
        self.cuda = cuda
        self.forward_devices: list[int] = []
        self.collate_devices: list[int] = []

    def collate(self, batch, pin=False):
        self.collate_devices.append(self.cuda.current)
        return super().collate(batch)

    def forward(self, inputs):
        self.forward_devices.append(self.cuda.current)
        return super().forward(inputs)


def test_cuda_n_selects_its_device_and_records_events_on_its_stream(monkeypatch):
    import qzhou_eval.encoder.device_loop as device_loop

    cuda = FakeCuda().install(monkeypatch)
    monkeypatch.setattr(device_loop, "to_device", lambda inputs, device: inputs)
    backbone = CudaBackbone(cuda)
    batches = _batches([(4, 8), (3, 5), (2, 2)])
    out = dict(DeviceLoop(backbone).run(enumerate(batches)))
    for k, batch in enumerate(batches):
        np.testing.assert_array_equal(out[k], _expected(batch))
    assert backbone.forward_devices == [1, 1, 1]  # cuda:1 selected around every forward
    assert backbone.collate_devices == [1, 1, 1]  # and in the prefetch thread
    assert cuda.events == [1, 1, 1]  # each copy-back event on cuda:1's stream, not cuda:0's


def test_local_engine_selects_the_device_before_the_model_loads(monkeypatch):
    import qzhou_eval.encoder.engines as engines

    cuda = FakeCuda().install(monkeypatch)
    loaded_on: list[int] = []

    def load(spec, device):
        loaded_on.append(cuda.current)
        return CudaBackbone(cuda)

    monkeypatch.setattr(engines, "load_backbone", load)
    engine = engines.make_engine(object(), ["cuda:1"])
    assert isinstance(engine, engines.LocalEngine)
    assert loaded_on == [1] and cuda.current == 1


class LeakyBackbone(FakeBackbone):
    """FakeBackbone whose every forward holds an "activation" while it runs; records how many
    activations of failed forwards were still alive at each retry and at each empty_cache."""

    def __init__(self, fits: int) -> None:
        super().__init__(fits)
        self.activations: list[weakref.ref] = []
        self.alive_at_forward: list[int] = []
        self.alive_at_empty_cache: list[int] = []

    def alive(self) -> int:
        return sum(ref() is not None for ref in self.activations)

    def forward(self, inputs):
        self.alive_at_forward.append(self.alive())
        activation = torch.zeros(inputs["input_ids"].numel(), 4)  # freed when this frame is
        self.activations.append(weakref.ref(activation))
        return super().forward(inputs)


def test_out_of_memory_recovery_runs_after_the_failed_forward_is_freed(monkeypatch):
    backbone = LeakyBackbone(fits=10)
    monkeypatch.setattr(
        torch.cuda, "empty_cache", lambda: backbone.alive_at_empty_cache.append(backbone.alive())
    )
    batches = _batches([(8, 10), (4, 5), (2, 9)])
    out = dict(DeviceLoop(backbone).run(enumerate(batches)))
    for k, batch in enumerate(batches):
        np.testing.assert_array_equal(out[k], _expected(batch))
    assert len(backbone.alive_at_empty_cache) >= 2  # failed at 80, then at 40 and 20 tokens
    assert backbone.alive_at_empty_cache == [0] * len(backbone.alive_at_empty_cache)
    assert backbone.alive_at_forward == [0] * len(backbone.alive_at_forward)


def test_a_loop_closed_early_stops_cleanly(monkeypatch):
    # The next batch is always "ready", so computed batches stay pending when the consumer stops.
    monkeypatch.setattr(prefetch, "ready", lambda self: True)
    loop = DeviceLoop(FakeBackbone(), in_flight=3)
    run = loop.run(enumerate(_batches([(2, 3)] * 6)))
    assert next(run)[0] == 0
    run.close()  # no "generator ignored GeneratorExit"
    assert list(run) == []
