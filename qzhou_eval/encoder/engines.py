"""Where batches run: in this process on one device, or in one worker process per device.

Both engines take the same length-sorted token batches and return the same vectors; the embedder
does not care which one it drives.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import torch

from qzhou_eval.config.spec import ModelSpec
from qzhou_eval.encoder.device_loop import DeviceLoop, select_device
from qzhou_eval.errors import ModelLoadError, one_line
from qzhou_eval.models.backbone import Backbone, InputTokenizer, load_backbone, load_input_tokenizer
from qzhou_eval.models.inputs import TokenBatch

T = TypeVar("T")


class Engine(Protocol):
    """Tokenizes in this process and turns token batches into raw float32 vectors."""

    packing: bool

    @property
    def forward_calls(self) -> int: ...

    def tokenize(
        self, texts: Sequence[str], spans: Sequence[tuple[int, int]] | None = None
    ) -> list[list[int]]: ...

    def run(self, batches: Sequence[TokenBatch]) -> Iterator[tuple[int, np.ndarray]]:
        """``(batch number, vectors)`` for every batch, in any order."""
        ...

    def close(self, force: bool = False) -> None:
        """Release the devices; ``force``: without waiting for work still queued."""
        ...


class LocalEngine:
    """One device, in this process (today's behaviour, the default on a CPU machine)."""

    def __init__(self, backbone: Backbone) -> None:
        select_device(backbone.device)
        self.backbone = backbone
        self.loop = DeviceLoop(backbone)
        self.packing = self.loop.packing

    @property
    def forward_calls(self) -> int:
        return self.loop.forward_calls

    def tokenize(
        self, texts: Sequence[str], spans: Sequence[tuple[int, int]] | None = None
    ) -> list[list[int]]:
        return self.backbone.tokenize(texts, spans)

    def run(self, batches: Sequence[TokenBatch]) -> Iterator[tuple[int, np.ndarray]]:
        return self.loop.run(enumerate(batches))

    def close(self, force: bool = False) -> None:
        """Nothing to stop: the model lives as long as this process."""


class PoolEngine:
    """Every listed device, one persistent worker process each (data parallel)."""

    def __init__(self, spec: ModelSpec, devices: Sequence[str], factory: Any = None) -> None:
        """``factory``: ``(spec, device) -> Backbone`` run in each worker (default: load
        ``spec.path``); a module-level function, so that it pickles."""
        from qzhou_eval.encoder.workers import WorkerPool

        self.spec = spec
        self.packing = spec.packing
        self.pool = WorkerPool(spec, devices, factory)
        self._inputs: InputTokenizer | None = None

    @property
    def forward_calls(self) -> int:
        return self.pool.forward_calls

    def tokenize(
        self, texts: Sequence[str], spans: Sequence[tuple[int, int]] | None = None
    ) -> list[list[int]]:
        if self._inputs is None:
            self.pool.start()  # the workers load the model while this process tokenizes
            self._inputs = loading(self.spec, "tokenizer", load_input_tokenizer)
        return self._inputs.tokenize(texts, spans)

    def run(self, batches: Sequence[TokenBatch]) -> Iterator[tuple[int, np.ndarray]]:
        return self.pool.run(batches)

    def close(self, force: bool = False) -> None:
        self.pool.close(timeout=0.0 if force else 10.0)


# What any model folder transformers or sentence-transformers loads holds at its top
_MODEL_FILES = ("config.json", "modules.json")


def loading(spec: ModelSpec, what: str, load: Callable[..., T], *args: object) -> T:
    """``load(spec, *args)``, with a failure turned into one line naming the model and path."""
    from safetensors import SafetensorError  # a truncated or damaged model.safetensors

    try:
        return load(spec, *args)
    except (
        OSError,
        ValueError,
        ImportError,
        KeyError,
        RuntimeError,
        TypeError,
        SafetensorError,
    ) as e:  # (TypeError: a library's constructor given a malformed config, a missing value)
        if isinstance(e, torch.cuda.OutOfMemoryError):
            raise
        detail = one_line(e)
        folder = Path(spec.path).expanduser()
        if folder.is_dir() and not any((folder / f).is_file() for f in _MODEL_FILES):
            detail = f"the folder holds no model (none of {', '.join(_MODEL_FILES)})"
        elif (
            folder.is_dir() and spec.backend == "native" and not (folder / "config.json").is_file()
        ):
            detail = "it has no config.json (the native backend loads the folder's top)"
        elif folder.is_dir():  # (the decoder's message names no file; a loader's wraps it)
            if (damaged := _unparsable_json(folder)) is not None:
                detail = f"{damaged} is not valid JSON: {detail}"
            elif isinstance(e, SafetensorError) and (damaged := _unreadable_weights(folder)):
                detail = f"{damaged} is damaged (cut short?): {detail}"
            elif "ignore_mismatched_sizes" in detail:  # (its report, logged above, is not shown)
                detail = (
                    "its weights do not fit its config.json: a tensor's shape differs from the "
                    "one config.json gives it (e.g. its max_position_embeddings or vocab_size "
                    "edited): use the config.json the weights were saved with"
                )
        raise ModelLoadError(
            f"cannot load the {what} of {spec.name} from model.path={spec.path}: {detail}"
        ) from None


def _unparsable_json(folder: Path) -> str | None:
    """The first JSON file of a model folder (or its module folders) that does not parse."""
    for path in sorted(folder.glob("*.json")) + sorted(folder.glob("*/*.json")):
        try:
            json.loads(path.read_bytes())
        except (OSError, ValueError):
            return str(path.relative_to(folder))
    return None


def _unreadable_weights(folder: Path) -> str | None:
    """The first safetensors file of a model folder whose header does not read."""
    from safetensors import safe_open

    for path in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*/*.safetensors")):
        try:
            with safe_open(str(path), "pt"):
                pass
        except Exception:  # SafetensorError, OSError: what the loader met
            return str(path.relative_to(folder))
    return None


def make_engine(spec: ModelSpec, devices: Sequence[str]) -> Engine:
    """An in-process engine for one device, a worker pool for several."""
    if len(devices) == 1:
        select_device(devices[0])  # before the model loads: no context on cuda:0
        return LocalEngine(loading(spec, "model", load_backbone, devices[0]))
    return PoolEngine(spec, devices)
