"""A model folder's own settings, as its sentence-transformers configuration states them, checked
against ``model.*`` before a run loads anything (``model.folder_settings: check``).

A folder saved by sentence-transformers (``modules.json``) is the model's own recipe: mteb's run
of it (the leaderboard's) pools as its Pooling module says, runs its Dense module (or any other)
after it, normalizes only where it has a Normalize module, cuts inputs at
``sentence_bert_config.json``'s ``max_seq_length`` (lower-cased where it says ``do_lower_case``),
pads them on its tokenizer's side, loads the weights in its ``config.json``'s dtype (transformers
5), puts its ``config_sentence_transformers.json`` prompts before the texts and scores with its
``similarity_fn_name``. ``model=hf_auto`` states generic
values (mean, normalized, 512 tokens, no prompt), which the harness applies on either backend:
over a CLS-pooled, unnormalized or 256-token model they give other vectors and other scores,
filed as the model's own. So where they differ the run stops with one line naming each setting
and the value of the folder (on the sentence-transformers backend the pipeline pools and
normalizes itself: what it does otherwise is refused as it loads); ``model.folder_settings=ignore``
evaluates with ``model.*`` as set (the results are that configuration's: every such setting is in
the fingerprint and the records).

Reads JSON files only (no sentence-transformers, no torch), as sentence-transformers 6 reads them
(the rules of 6.3, checked against its code and by the tests). A transformers folder without
``modules.json`` is mteb's run of it too, with sentence-transformers' defaults (mean pooling,
the last token's for a causal LM, no Normalize module, the tokenizer's length): the same check
compares those. A folder without ``config.json`` either states nothing; a file of the
configuration that does not parse, or that a module cannot load without, is named
(:class:`UnreadableFile`).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from qzhou_eval.config.spec import DTYPES, POOLING_MODES, SIMILARITIES, ModelSpec
from qzhou_eval.errors import ConfigError, is_int

# the modules' class names (sentence-transformers 5 writes sentence_transformers.models.Pooling,
# 6 sentence_transformers.sentence_transformer.modules.pooling.Pooling)
_POOLING_MODULE, _NORMALIZE_MODULE, _TRANSFORMER_MODULE = "Pooling", "Normalize", "Transformer"
_DENSE_MODULE = "Dense"
# what the native backend runs of a pipeline: its Transformer module (at the folder's top), one
# Pooling, one Dense after it (model.projection), one Normalize last
_NATIVE_MODULES = (_POOLING_MODULE, _DENSE_MODULE, _NORMALIZE_MODULE)
_BACKEND_FIX = "model.backend=sentence_transformers"
_SENTENCE = "sentence_embedding"  # the features' key of the sentence's vector
_ST_SIMILARITIES = ("cosine", "dot", "euclidean", "manhattan")
# sentence-transformers' Pooling config flags (and its 6.x ``pooling_mode`` names) -> model.pooling,
# in its order (several modes' vectors are put side by side in this order)
_POOLING_FLAGS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len",
    "pooling_mode_weightedmean_tokens": "weighted_mean",
    "pooling_mode_lasttoken": "last_token",
}
_POOLING_NAMES = {
    "cls": "cls",
    "mean": "mean",
    "max": "max",
    "mean_sqrt_len_tokens": "mean_sqrt_len",
    "weightedmean": "weighted_mean",
    "lasttoken": "last_token",
}
_NO_LIMIT = 10**9  # tokenizers without a limit say 1e30 (transformers' VERY_LARGE_INTEGER)
# sentence-transformers' own prompts (empty unless the folder sets them): mteb always finds them
_OWN_PROMPTS = ("query", "document")
# what a fix line can write as a Hydra override (anything else: in a recipe file)
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.-]+")
_IN_A_FILE = "its prompts in a prompts file of your own (see the README's Model prompts)"


@dataclass(frozen=True)
class FolderSettings:
    """What a sentence-transformers folder states (None: it does not say)."""

    pooling: str | None
    normalize: bool
    max_length: int | None
    prompts: dict[str, str] = field(default_factory=dict)  # name -> prompt, as the file has them
    default_prompt_name: str | None = None
    include_prompt: bool = True  # its Pooling module pools the prompt's tokens too
    similarity: str = "cosine"  # its similarity_fn_name (sentence-transformers' default)
    lowercase: bool = False  # its Transformer module lower-cases texts (do_lower_case)
    padding_side: str = "right"  # its tokenizer's (transformers' default)
    dtype: str | None = None  # its config.json's, in which sentence-transformers 6 loads it
    transformer_path: str = ""  # its Transformer module's folder ("": the folder's top)
    modules: tuple[tuple[str, str], ...] = ()  # (type, path) of each module after that one
    unsupported: tuple[str, ...] = ()  # what it does that no model.* setting states
    own: tuple[str, ...] = ()  # what its Transformer module does that the native backend does not
    defaults: bool = False  # no modules.json: sentence-transformers' defaults (mteb's run of it)

    def mteb_prompts(self, read: Collection[str]) -> tuple[dict[str, str], str | None]:
        """The prompts mteb's run of the model puts before texts, in the recipe's terms
        (``model_prompts``, ``default_prompt``): those of its keys mteb ``read`` (of
        :meth:`keys_mteb_reads`; mteb drops the others, e.g. ``passage``), without
        sentence-transformers' own empty ``query``/``document`` prompts (no prompt either way);
        the default prompt is read from every prompt, as sentence-transformers reads it."""
        prompts = {
            k: v
            for k, v in self.prompts.items()
            if k in read and not (k in _OWN_PROMPTS and v == "")
        }
        default = None
        if self.default_prompt_name is not None:
            default = {**dict.fromkeys(_OWN_PROMPTS, ""), **self.prompts}[self.default_prompt_name]
        return prompts, default or None

    def keys_mteb_reads(
        self, mteb_reads: Callable[[Mapping[str, str]], Collection[str]]
    ) -> set[str]:
        """The keys of its prompts mteb reads (``mteb_reads`` asks mteb's own check)."""
        return set(mteb_reads(self.prompts)) if self.prompts else set()

    def unread_prompts(self, read: Collection[str]) -> list[str]:
        """The keys of its prompts that mteb's run never puts before a text (``passage``, a
        lower-case task type), but the default prompt's; ``read``: :meth:`keys_mteb_reads`."""
        unread = {k for k, v in self.prompts.items() if v and k not in read}
        return sorted(unread - {self.default_prompt_name})


class UnreadableFile(ValueError):
    """A file of the folder's sentence-transformers configuration that does not parse."""


def read_folder_settings(folder: str | Path) -> FolderSettings | None:
    """The settings ``folder``'s sentence-transformers configuration states, as
    sentence-transformers 5 and 6 write it; a transformers folder without it (no
    ``modules.json``): sentence-transformers' defaults; None where it is neither (no
    ``config.json``). Raises :class:`UnreadableFile` naming a file of it that does not parse."""
    root = Path(folder)
    if not (root / "modules.json").exists():
        return _defaults(root) if (root / "config.json").exists() else None
    listed = [
        _module(root, str(m.get("type")).rsplit(".", 1)[-1], str(m.get("path") or ""))
        for m in _json(root, "modules.json", list)
        if isinstance(m, dict)
    ]
    paths = dict(reversed(listed))  # (each type's first)
    pooling, include_prompt = None, True
    if _POOLING_MODULE in paths:  # (sentence-transformers cannot load it without its config)
        config = _json(root, f"{paths[_POOLING_MODULE]}/config.json".lstrip("/"), dict)
        pooling, include_prompt = _pooling(config), config.get("include_prompt") is not False
    base = paths.get(_TRANSFORMER_MODULE, "")
    text = _TextModule.read(root, base)
    st = _json(root, "config_sentence_transformers.json", dict, {})
    unsupported = list(text.unsupported())
    if _TRANSFORMER_MODULE not in paths:  # (a Router: a pipeline per side; or no text module)
        unsupported.append(f"a pipeline of {', '.join(t for t, _ in listed)} modules")
    if _number(st.get("truncate_dim")):
        unsupported.append(f"a cut of its vectors to {st['truncate_dim']} values (truncate_dim)")
    raw = st.get("prompts") if isinstance(st.get("prompts"), dict) else {}
    # (sentence-transformers reads a null prompt as "")
    prompts = {str(k): v or "" for k, v in raw.items() if isinstance(v, str) or v is None}
    default = st.get("default_prompt_name")
    if default is not None and default not in {*prompts, *_OWN_PROMPTS}:
        raise UnreadableFile(
            f"config_sentence_transformers.json names the default prompt {default!r}, which is "
            "not one of its prompts (sentence-transformers refuses to load it)"
        )
    return FolderSettings(
        pooling=pooling,
        normalize=_NORMALIZE_MODULE in paths,
        max_length=text.max_length(),
        prompts=prompts,
        default_prompt_name=None if default is None else str(default),
        include_prompt=include_prompt,
        similarity=_similarity(st.get("similarity_fn_name")),
        lowercase=text.st_config.get("do_lower_case") is True,
        padding_side=text.padding_side(),
        dtype=text.dtype(),
        transformer_path=base,
        # (without a Transformer module the whole pipeline is refused, as unsupported)
        modules=tuple(m for m in listed if m[0] != _TRANSFORMER_MODULE)
        if _TRANSFORMER_MODULE in paths
        else (),
        unsupported=tuple(unsupported),
        own=text.own(),
    )


def _defaults(root: Path) -> FolderSettings:
    """What sentence-transformers 6 makes of a transformers folder that has no configuration of
    its own (``SentenceTransformer._load_default_modules``, mteb's run of any such model): the
    model and tokenizer as transformers loads them (no arguments of a module's own), mean pooling,
    the last token's for a ``*ForCausalLM`` model not made bidirectional (``is_causal``), no
    Normalize module, cosine. mteb's run of a ``*ForSequenceClassification`` model is a
    cross-encoder's, which the harness cannot give."""
    text = _TextModule(
        _json(root, "config.json", dict), _json(root, "tokenizer_config.json", dict, {}), {}
    )
    names = text.model_config.get("architectures")
    names = [str(n) for n in names] if isinstance(names, list) else []
    causal = bool(names) and names[0].endswith("ForCausalLM")
    causal = causal and bool(text.model_config.get("is_causal", True))
    cross = [n for n in names if n.endswith("ForSequenceClassification")]
    return FolderSettings(
        pooling="last_token" if causal else "mean",
        normalize=False,
        max_length=text.max_length(),
        padding_side=text.padding_side(),
        dtype=text.dtype(),
        unsupported=(
            (f"cross-encoder scoring (mteb evaluates a {cross[0]} model as a cross-encoder)",)
            if cross
            else ()
        ),
        defaults=True,
    )


def _module(root: Path, kind: str, path: str) -> tuple[str, str]:
    """(type, path) of a module; a Dense or Normalize module that reads the token states rather
    than the sentence's vector is another kind of module (``Dense(token_embeddings)``)."""
    if kind in (_DENSE_MODULE, _NORMALIZE_MODULE):
        # (sentence-transformers cannot load a Dense module without its config; a Normalize
        # module without one normalizes the sentence's vector)
        missing = None if kind == _DENSE_MODULE else {}
        config = _json(root, f"{path}/config.json".lstrip("/"), dict, missing)
        reads = config.get("module_input_name", _SENTENCE)
        if reads != _SENTENCE:
            return f"{kind}({reads})", path
    return kind, path


def _similarity(name: Any) -> str:
    """The score function: sentence-transformers 6 keeps a saved name it supports, else
    cosine."""
    return name if name in _ST_SIMILARITIES else "cosine"


# sentence-transformers 6 reads the first of these its Transformer module's folder holds
_ST_CONFIGS = tuple(
    f"sentence_{name}_config.json"
    for name in ("bert", "roberta", "distilbert", "camembert", "albert", "xlm-roberta", "xlnet")
)
# its keys for the model's and the tokenizer's arguments (5 wrote the first of each pair)
_MODEL_KWARGS, _PROCESSOR_KWARGS = (
    ("model_args", "model_kwargs"),
    ("tokenizer_args", "processor_kwargs"),
)
_CONFIG_KWARGS = ("config_args", "config_kwargs")


@dataclass(frozen=True)
class _TextModule:
    """The files of a folder's Transformer module that decide its inputs, as
    sentence-transformers 6 reads them (``Transformer.load`` and ``__init__``)."""

    model_config: dict[str, Any]  # config.json
    tokenizer_config: dict[str, Any]  # tokenizer_config.json
    st_config: dict[str, Any]  # sentence_bert_config.json (or an older name)

    @classmethod
    def read(cls, root: Path, base: str) -> _TextModule:
        def file(name: str, missing: Any = None) -> Any:
            return _json(
                root, f"{base}/{name}".lstrip("/"), dict, {} if missing is None else missing
            )

        st = next((c for name in _ST_CONFIGS if (c := file(name, False)) is not False), {})
        return cls(file("config.json"), file("tokenizer_config.json"), st)

    def _kwargs(self, keys: tuple[str, str]) -> dict[str, Any]:
        """Its model's or tokenizer's arguments: the older key's where it has both, as
        sentence-transformers 6 replaces the newer with it."""
        old, new = keys
        value = self.st_config[old] if old in self.st_config else self.st_config.get(new)
        return value if isinstance(value, dict) else {}

    def max_length(self) -> int | None:
        """The tokenizer's ``model_max_length`` as the module sets it: its tokenizer arguments',
        else ``max_seq_length``, else the tokenizer's own capped at the model's positions; never
        more than those (the model reads no more: the harness's own check at load says so)."""
        positions = _number(self.model_config.get("max_position_embeddings"))
        length = _number(self._kwargs(_PROCESSOR_KWARGS).get("model_max_length"))
        length = length or _number(self.st_config.get("max_seq_length"))
        length = length or _number(self.tokenizer_config.get("model_max_length"))
        for bucket in ("common", "text"):  # a per-call max_length, which wins
            calls = self.st_config.get("processing_kwargs")
            if isinstance(calls, dict) and isinstance(calls.get(bucket), dict):
                length = _number(calls[bucket].get("max_length")) or length
        if length is None or positions is None:
            return length or positions
        return min(length, positions)

    def dtype(self) -> str | None:
        """The dtype the model loads in: its model arguments', else config.json's (transformers 5
        loads that; 4's key is torch_dtype)."""
        for source in (self._kwargs(_MODEL_KWARGS), self.model_config):
            value = source.get("dtype") or source.get("torch_dtype")
            if isinstance(value, str) and value != "auto":  # (auto: config.json's)
                value = value.removeprefix("torch.")
                return value if value in DTYPES else None
        return None

    def padding_side(self) -> str:
        return self._side("padding_side")

    def _side(self, key: str) -> str:
        side = self._kwargs(_PROCESSOR_KWARGS).get(key) or self.tokenizer_config.get(key)
        return side if side in ("left", "right") else "right"  # (transformers' default)

    def unsupported(self) -> tuple[str, ...]:
        """What the module does to inputs that no ``model.*`` setting states."""
        out = []
        if self._side("truncation_side") == "left":
            out.append("truncation on the left (its tokenizer's truncation_side)")
        lengths = {k: self.st_config.get(k) for k in ("query_length", "document_length")}
        if any(v is not None for v in lengths.values()):
            said = " and ".join(f"{k} {v}" for k, v in lengths.items() if v is not None)
            out.append(f"a length per side ({said})")
        calls = self.st_config.get("processing_kwargs")
        other = {
            f"{bucket}.{key}"
            for bucket, values in (calls.items() if isinstance(calls, dict) else ())
            for key in (values if isinstance(values, dict) else {"?": 0})
            if not (bucket in ("common", "text") and key == "max_length")
        }
        if other:
            out.append(
                f"tokenizer arguments per call (processing_kwargs: {', '.join(sorted(other))})"
            )
        if self.st_config.get("query_expansion") is not None:
            out.append("queries expanded to a length of their own (query_expansion)")
        task = self.st_config.get("transformer_task")
        if task not in (None, "feature-extraction"):
            out.append(f"a model head other than its hidden states (transformer_task {task})")
        return tuple(out)

    def own(self) -> tuple[str, ...]:
        """What the module does as sentence-transformers loads it, which the native backend,
        loading the model and tokenizer with transformers, does not: its tokenizer from another
        folder, arguments to the tokenizer or the model's configuration (those the check reads
        aside)."""
        out = []
        if self.st_config.get("tokenizer_name_or_path") not in (None, ""):
            out.append(f"its tokenizer is {self.st_config['tokenizer_name_or_path']}")
        # (read above, or what changes no token: transformers 5 makes every tokenizer fast)
        read = {
            "model_max_length",
            "padding_side",
            "truncation_side",
            "revision",
            "trust_remote_code",
            "use_fast",
        }
        tokenizer = sorted(set(self._kwargs(_PROCESSOR_KWARGS)) - read)
        if tokenizer:
            out.append(f"it gives its tokenizer {', '.join(tokenizer)}")
        config = sorted(self._kwargs(_CONFIG_KWARGS))
        if config:
            out.append(f"it sets its model's {', '.join(config)}")
        return tuple(out)


def _number(value: Any) -> int | None:
    ok = is_int(value) and 0 < value < _NO_LIMIT
    return value if ok else None


Prompts = tuple[dict[str, str], "str | None"]
"""A table of model prompts and a default prompt."""


@dataclass(frozen=True)
class RecipePrompts:
    """What a recipe without instructions does to texts: its model prompts, and what else it
    does to them (``extras``: what, and the override that undoes it)."""

    table: dict[str, str]
    default: str | None
    extras: tuple[tuple[str, str], ...] = ()


@dataclass
class _Differences:
    """Where a run's settings differ from a folder's own: in words (``differ``), the overrides
    that would follow the folder (``fixes``), what the harness lacks to (``cannot``), the
    run's own settings that differ (``ours``: ``model.max_length=64``, ``prompts``), and the
    settings the folder states, compared (``compared``: ``model.max_length``, ``prompts``)."""

    differ: list[str] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)
    cannot: list[str] = field(default_factory=list)
    ours: list[str] = field(default_factory=list)
    compared: set[str] = field(default_factory=set)

    def add(self, what: str, ours: str | None) -> None:
        self.differ.append(what)
        if ours is not None and ours not in self.ours:
            self.ours.append(ours)


class Apart(NamedTuple):
    """A run's settings other than a folder's own (``settings``: the overrides that set them),
    and the settings the folder states (``compared``: their keys)."""

    settings: tuple[str, ...]
    compared: frozenset[str]


def check_folder_settings(
    spec: ModelSpec,
    folder: str | Path,
    recipe: RecipePrompts | None,
    mteb_reads: Callable[[Mapping[str, str]], Collection[str]],
    where: str | None = None,
) -> None:
    """A ConfigError where ``spec`` evaluates ``folder``'s model otherwise than its own
    sentence-transformers configuration says; nothing where ``model.folder_settings=ignore`` or
    the folder has no such configuration. ``recipe``: what the recipe does to texts (None: it
    instructs, a recipe of the user's own, which the folder's prompts then stand beside); a
    folder that states no prompt leaves them to the recipe (a model's prompts are often on its
    card only); ``mteb_reads``: the prompt keys mteb reads of a table of prompts; ``where``: how
    the line names the folder, ``model.path=<folder>`` by default."""
    if spec.folder_settings != "check":
        return
    name = where or f"model.path={folder}"
    ignore = "to evaluate it with model.* and the recipe as set: model.folder_settings=ignore"
    try:
        theirs = read_folder_settings(folder)
    except UnreadableFile as e:
        kind = "sentence-transformers " if (Path(folder) / "modules.json").exists() else ""
        raise ConfigError(
            f"{name}: its {kind}configuration cannot be read to check this run's settings "
            f"against it: {e}; fix the file, or {ignore}"
        ) from None
    if theirs is None:
        return
    d = _compare(spec, theirs, recipe, mteb_reads)
    if not d.differ:
        return
    fixes = d.fixes
    if _BACKEND_FIX in fixes:  # (the pipeline runs its Dense itself)
        fixes = [f for f in fixes if not f.startswith("model.projection=")]
    if d.cannot:  # (what else differs would not make it so)
        how = (
            f"The harness cannot evaluate it as it is configured: it lacks {' and '.join(d.cannot)}"
        )
    else:  # the overrides as a shell takes them (to paste), then what no override carries
        said = [" ".join(f for f in fixes if not f.startswith(_IN_A_FILE))]
        said += [f for f in fixes if f.startswith(_IN_A_FILE)]
        how = f"To evaluate it as it is configured: {' and '.join(filter(None, said))}"
    what = (
        "is a transformers model without a sentence-transformers configuration; "
        "sentence-transformers' defaults, which mteb's run of it applies, differ from this run's"
        if theirs.defaults
        else "is a sentence-transformers model whose own configuration differs from this run's"
    )
    raise ConfigError(f"{name} {what}: {'; '.join(d.differ)}. {how}; {ignore}")


def settings_apart(
    spec: ModelSpec,
    folder: str | Path,
    recipe: RecipePrompts | None,
    mteb_reads: Callable[[Mapping[str, str]], Collection[str]],
) -> Apart | None:
    """The run's settings other than ``folder``'s own, as the overrides that set them
    (``model.max_length=64``, ``prompts``): what a run with ``model.folder_settings=ignore``
    does otherwise than the model's own configuration (see :func:`check_folder_settings`).
    None: the folder's configuration cannot be read."""
    try:
        theirs = read_folder_settings(folder)
    except UnreadableFile:
        return None
    if theirs is None:
        return Apart((), frozenset())
    d = _compare(spec, theirs, recipe, mteb_reads)
    return Apart(tuple(d.ours), frozenset(d.compared))


def _compare(
    spec: ModelSpec,
    theirs: FolderSettings,
    recipe: RecipePrompts | None,
    mteb_reads: Callable[[Mapping[str, str]], Collection[str]],
) -> _Differences:
    d = _Differences()
    # on that backend the pipeline's own modules pool, and normalize where it has a Normalize
    # module: a setting that says otherwise would be refused as it loads (models/st_pipeline.py),
    # so it is named here too, before anything loads
    pipeline = spec.backend == "sentence_transformers"
    d.compared |= {"model.normalize", "model.padding_side", "model.similarity"}
    d.compared |= {
        f"model.{key}"
        for key, stated in (("pooling", theirs.pooling), ("max_length", theirs.max_length))
        if stated is not None
    }
    if theirs.dtype is not None:
        d.compared.add("model.dtype")
    if theirs.pooling is not None and theirs.pooling != spec.pooling:
        ours = f"model.pooling={spec.pooling}"
        d.add(f"it pools with {theirs.pooling} ({ours})", ours)
        _fix_or_lack("pooling", theirs.pooling, POOLING_MODES, "pooling", d.fixes, d.cannot)
    if theirs.normalize != spec.normalize:
        has = "has a Normalize module" if theirs.normalize else "has no Normalize module"
        ours = f"model.normalize={str(spec.normalize).lower()}"
        d.add(f"it {has} ({ours})", ours)
        d.fixes.append(f"model.normalize={str(theirs.normalize).lower()}")
    if theirs.max_length is not None and theirs.max_length != spec.max_length:
        ours = f"model.max_length={spec.max_length}"
        d.add(f"it reads {theirs.max_length} tokens ({ours})", ours)
        d.fixes.append(f"model.max_length={theirs.max_length}")
    if theirs.padding_side != spec.padding_side:
        ours = f"model.padding_side={spec.padding_side}"
        d.add(f"its tokenizer pads on the {theirs.padding_side} ({ours})", ours)
        d.fixes.append(f"model.padding_side={theirs.padding_side}")
    if theirs.dtype is not None and theirs.dtype != spec.dtype:
        ours = f"model.dtype={spec.dtype}"
        d.add(f"it loads in {theirs.dtype} ({ours})", ours)
        d.fixes.append(f"model.dtype={theirs.dtype}")
    if theirs.similarity != spec.similarity:
        ours = f"model.similarity={spec.similarity}"
        d.add(f"it scores with {theirs.similarity} similarity ({ours})", ours)
        _fix_or_lack("similarity", theirs.similarity, SIMILARITIES, "similarity", d.fixes, d.cannot)
    for what in theirs.unsupported:
        d.add(f"it applies {what}", None)
        d.cannot.append(what)
    if not pipeline:
        d.compared |= {"model.projection", "model.backend"}
        _check_native_modules(spec, theirs, d)
    read = theirs.keys_mteb_reads(mteb_reads)  # (mteb's check asks its registry per key: once)
    prompts = theirs.mteb_prompts(read)
    prompted = any(prompts[0].values()) or prompts[1] is not None
    if recipe is not None and prompted:
        d.compared.add("prompts")
        ours = _behaviour((recipe.table, recipe.default))
        if ours != prompts:
            unread = theirs.unread_prompts(read)
            listed = " or ".join([", ".join(unread[:-1]), unread[-1]] if unread[:-1] else unread)
            also = f" (mteb reads none of its {listed} prompts)" if unread else ""
            d.add(f"it puts {_shown(prompts)}, this recipe {_shown(ours)}{also}", "prompts")
            d.fixes.extend(_prompt_overrides(prompts, recipe))
        for what, fix in recipe.extras:
            d.add(f"this recipe {what}", "prompts")
            d.fixes.append(fix)
    if not theirs.include_prompt and prompted:
        d.add("its Pooling module leaves the prompt's tokens out (include_prompt: false)", None)
        d.cannot.append("pooling without the prompt's tokens")
    return d


def _fix_or_lack(
    key: str, value: str, values: Sequence[str], what: str, fixes: list[str], cannot: list[str]
) -> None:
    """``model.<key>=<value>`` where ``model.<key>`` can state ``value``, else what the harness
    lacks."""
    if value in values:
        fixes.append(f"model.{key}={value}")
    else:
        cannot.append(f"{value} {what} (it has {', '.join(values)})")


def _check_native_modules(spec: ModelSpec, theirs: FolderSettings, d: _Differences) -> None:
    """What of the folder's pipeline the native backend does not run as it does: its Dense
    module (``model.projection``, if one, after the Pooling module, before any Normalize), and
    what only the sentence-transformers backend runs: a Transformer module in a subfolder, its
    lower-casing, any other module."""
    types = [t for t, _ in theirs.modules]
    dense = [p for t, p in theirs.modules if t == _DENSE_MODULE]
    runs_own = []
    if theirs.transformer_path:
        runs_own.append(f"its Transformer module is in {theirs.transformer_path}/")
    if theirs.lowercase:
        runs_own.append("it lower-cases every input (do_lower_case)")
    runs_own.extend(theirs.own)
    others = any(t not in _NATIVE_MODULES for t in types)
    in_order = types == [t for t in _NATIVE_MODULES if t in types]  # (each once, in that order)
    if others or not in_order:
        listed = ", ".join(f"{t} ({p or 'top'})" for t, p in theirs.modules)
        runs_own.append(f"its modules after the Transformer are {listed}")
    elif (dense[0] if dense else None) != spec.projection:
        ours = f"model.projection={spec.projection or 'null'}"
        if dense:
            d.add(f"it projects with its Dense module {dense[0]} ({ours})", ours)
            d.fixes.append(shlex.quote(f"model.projection={dense[0]}"))
        else:
            d.add(f"it has no Dense module ({ours})", ours)
            d.fixes.append("model.projection=null")
    if runs_own:
        d.add(
            f"{'; '.join(runs_own)} (which the native backend does not run; the "
            "sentence-transformers backend runs the folder's own modules)",
            f"model.backend={spec.backend}",
        )
        d.fixes.append(_BACKEND_FIX)


def _behaviour(prompts: Prompts) -> Prompts:
    """``prompts`` without what changes no input (empty query/document prompts, default "")."""
    table, default = prompts
    kept = {k: v for k, v in table.items() if not (k in _OWN_PROMPTS and v == "")}
    return kept, default or None


def _shown(prompts: Prompts) -> str:
    table, default = prompts
    if not table and default is None:
        return "no prompt"
    parts = [f"{k}: {v!r}" for k, v in sorted(table.items())]
    if default is not None:
        parts.append(f"by default {default!r}")
    return f"prompts before texts ({', '.join(parts)})"


def _prompt_overrides(theirs: Prompts, recipe: RecipePrompts) -> list[str]:
    """The recipe overrides that give ``theirs``, as typed in a shell; prompts Hydra's command
    line cannot carry plainly, as a recipe file states them."""
    table, default = theirs
    ours = _behaviour((recipe.table, recipe.default))

    def plain(text: str) -> bool:  # (no ${...}: an interpolation; no line breaks)
        return text.isprintable() and "\\" not in text and "${" not in text

    if not all(_PLAIN_KEY.fullmatch(k) and plain(v) for k, v in table.items()) or (
        default is not None and not plain(default)
    ):
        return [f"{_IN_A_FILE}, which states {_file_lines(theirs)}"]
    fixes = []
    if table != ours[0]:
        items = ",".join(f"{k}:{_quoted(v)}" for k, v in sorted(table.items()))
        # ++ merges into the recipe's table: a key it has and the folder lacks is dropped first
        if set(recipe.table) <= set(table):
            fixes.append(shlex.quote(f"++prompts.model_prompts={{{items}}}"))
        else:
            fixes += ["~prompts.model_prompts", shlex.quote(f"+prompts.model_prompts={{{items}}}")]
    if default != ours[1]:
        value = "null" if default is None else _quoted(default)
        fixes.append(shlex.quote(f"prompts.default_prompt={value}"))
    return fixes


def _quoted(text: str) -> str:
    """``text`` as a Hydra quoted string."""
    return '"' + text.replace('"', '\\"') + '"'


def _file_lines(theirs: Prompts) -> str:
    """``model_prompts: {...}`` (and ``default_prompt: ...``) as a YAML file takes them: JSON's
    strings are YAML's double-quoted ones; ``${`` escaped from OmegaConf's interpolation."""

    def text(value: str) -> str:  # (a backslash before ${ doubled, then ${ escaped)
        escaped = re.sub(r"(\\*)\$\{", lambda m: m[1] * 2 + "\\${", value)
        return json.dumps(escaped, ensure_ascii=False)

    table, default = theirs
    items = ", ".join(f"{text(k)}: {text(v)}" for k, v in sorted(table.items()))
    lines = f"model_prompts: {{{items}}}"
    return lines if default is None else f"{lines} and default_prompt: {text(default)}"


def _pooling(config: dict[str, Any]) -> str | None:
    """The Pooling config's mode in model.pooling's names (``+`` between several)."""
    mode = config.get("pooling_mode")
    if isinstance(mode, list):  # (6 writes several modes as a list)
        mode = "+".join(str(m) for m in mode)
    if isinstance(mode, str):
        names = [_POOLING_NAMES.get(m, m) for m in mode.split("+")]
    else:
        names = [name for flag, name in _POOLING_FLAGS.items() if config.get(flag) is True]
    return "+".join(names) or "mean"  # (sentence-transformers' default)


def _json(root: Path, name: str, kind: type, missing: Any = None) -> Any:
    """``root/name`` parsed, of type ``kind``; ``missing`` where there is no such file (or
    :class:`UnreadableFile` where ``missing`` is None)."""
    try:
        value = json.loads((root / name).read_text(encoding="utf-8"))
    except FileNotFoundError:
        if missing is None:
            raise UnreadableFile(f"{name} is missing") from None
        return missing
    except (OSError, ValueError) as e:  # (UnicodeDecodeError is a ValueError)
        raise UnreadableFile(f"{name} does not parse ({type(e).__name__})") from None
    if not isinstance(value, kind):
        raise UnreadableFile(f"{name} holds a {type(value).__name__}, not a {kind.__name__}")
    return value
