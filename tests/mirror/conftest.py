"""Fixtures for the offline-mirror tests: no network at all, official task objects, a mirror dir."""

from __future__ import annotations

import copy
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import datasets
import huggingface_hub.constants
import mteb
import pytest
from mteb.abstasks import AbsTask


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[object]]:
    """Offline mode as a user sets it, plus a socket guard that fails the test on any connection.

    ``datasets`` and ``huggingface_hub`` read the offline variables at import, so their module
    constants are patched too. The datasets cache goes to a temporary folder: the tests must not
    depend on, or leave, cached datasets.
    """
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf_datasets_cache")
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object, *args: object) -> None:
        attempts.append(address)
        raise OSError(f"test forbids network access (to {address!r})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    yield attempts
    assert attempts == [], f"something tried the network: {attempts}"


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    """An empty mirror folder."""
    path = tmp_path / "mirror"
    path.mkdir()
    return path


@pytest.fixture
def bench_task() -> Callable[[str, str], AbsTask]:
    """``bench_task(benchmark, name)``: a copy of the benchmark's task object.

    The benchmark's objects carry its split/subset filters; they are shared process-wide, so the
    tests work on shallow copies (which keep the filters) and leave the originals untouched.
    """

    def get(benchmark: str, name: str) -> AbsTask:
        for task in mteb.get_benchmark(benchmark).tasks:
            if task.metadata.name == name:
                return copy.copy(task)
        raise KeyError(f"{name} is not in {benchmark}")

    return get
