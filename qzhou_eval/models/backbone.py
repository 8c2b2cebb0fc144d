"""Backbones: tokenize texts, and turn a batch of token ids into pooled float32 vectors.

Two implementations share one small interface so the encoder does not care which runs:
- :class:`TransformersBackbone` (``backend: native``): stock transformers ``AutoModel``, no remote
  code; optional bidirectional attention (QZhou-Embedding), Token Prepending and a Dense
  projection (QZhou-Embedding-Zh), and padding-free packed batches (``runtime.packing``);
- :class:`SentenceTransformerBackbone` (``backend: sentence_transformers``): a model's own
  sentence-transformers pipeline (all-MiniLM-L6-v2, or remote-code pipelines).

A forward is split in two so that the encoder can overlap them: :meth:`collate` (CPU, numpy,
pinned memory on CUDA; runs in a prefetch thread) and :meth:`forward` (device tensors in, device
vectors out, no host synchronisation of its own).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import torch

from qzhou_eval.config.spec import ModelSpec
from qzhou_eval.models.attention import make_bidirectional
from qzhou_eval.models.inputs import TokenBatch, collate_packed, collate_padded, to_device
from qzhou_eval.models.pooling import official_normalize, pool
from qzhou_eval.models.st_pipeline import check_pipeline_settings
from qzhou_eval.models.truncation import inner_truncate

logger = logging.getLogger(__name__)

TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class Backbone(Protocol):
    """What the encoder needs from a model."""

    device: torch.device
    output_dim: int
    forward_calls: int

    def tokenize(
        self, texts: Sequence[str], spans: Sequence[tuple[int, int]] | None = None
    ) -> list[list[int]]:
        """Token ids of each text, truncated to the model's max length.

        ``spans`` (character span of the task text in each input) selects inner truncation.
        """
        ...

    def collate(self, batch: TokenBatch, pin: bool = False) -> dict[str, Any]:
        """Model input tensors on the CPU (pinned when ``pin``)."""
        ...

    def forward(self, inputs: dict[str, Any]) -> torch.Tensor:
        """Pooled (and projected) float32 vectors on the device: (rows, dim). Not normalized,
        except where ``spec.backbone_normalizes`` (official numerics without a projection)."""
        ...

    def embed_ids(self, ids: Sequence[Sequence[int]]) -> torch.Tensor:
        """collate + forward in one call: float32 vectors on the CPU."""
        ...


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(device)


class InputTokenizer:
    """The model's tokenizer with the spec's truncation rules; no model weights needed.

    The encoder's main process tokenizes with it while worker processes run the model.
    """

    def __init__(self, tokenizer: Any, spec: ModelSpec, *, lowercase: bool = False) -> None:
        self.tokenizer = tokenizer
        self.spec = spec
        self.lowercase = lowercase  # sentence-transformers' do_lower_case
        special = set(tokenizer.all_special_ids)
        if len(tokenizer) <= len(special):  # (transformers builds one where the files lack)
            raise ValueError(
                f"its tokenizer has no vocabulary, only its {len(special)} special token(s): "
                "the folder lacks the tokenizer's files (tokenizer.json, vocab.txt, "
                "tokenizer.model, ...), and transformers built an empty one"
            )
        tokenizer.padding_side = spec.padding_side
        tokenizer.truncation_side = "right"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        if tokenizer.pad_token_id is None:  # (sentence-transformers cannot pad either)
            raise ValueError(
                "its tokenizer has neither a pad token nor an EOS token to pad with: give it a "
                "pad_token (tokenizer_config.json or special_tokens_map.json)"
            )
        self.pad_id = int(tokenizer.pad_token_id)

    def tokenize(
        self, texts: Sequence[str], spans: Sequence[tuple[int, int]] | None = None
    ) -> list[list[int]]:
        if self.lowercase:
            texts = [t.lower() for t in texts]
        if spans is not None and self.spec.truncation == "inner":
            return inner_truncate(self.tokenizer, texts, spans, self.spec.max_length)
        return self.tokenizer(
            list(texts), truncation=True, max_length=self.spec.max_length, padding=False
        )["input_ids"]


def _hub_kwargs(spec: ModelSpec) -> dict[str, str]:
    return {} if _is_local(spec.path) else {"revision": spec.revision}


def load_input_tokenizer(spec: ModelSpec) -> InputTokenizer:
    """The tokenizer a backbone of ``spec`` would use, without loading the weights."""
    from transformers import AutoTokenizer

    path, lowercase = spec.path, False
    if spec.backend == "sentence_transformers" and _is_local(spec.path):
        path, lowercase = _sentence_transformers_text_module(Path(spec.path).expanduser())
    tokenizer = AutoTokenizer.from_pretrained(
        path, trust_remote_code=spec.trust_remote_code, **_hub_kwargs(spec)
    )
    return InputTokenizer(tokenizer, spec, lowercase=lowercase)


def _sentence_transformers_text_module(folder: Path) -> tuple[str, bool]:
    """Folder of a local sentence-transformers model's Transformer module, and do_lower_case."""
    module_dir = folder
    modules = folder / "modules.json"
    if modules.is_file():
        for entry in json.loads(modules.read_text(encoding="utf-8")):
            if str(entry.get("type", "")).endswith("Transformer"):
                module_dir = folder / str(entry.get("path") or "")
                break
    config = module_dir / "sentence_bert_config.json"
    lowercase = False
    if config.is_file():
        lowercase = bool(json.loads(config.read_text(encoding="utf-8")).get("do_lower_case"))
    return str(module_dir), lowercase


class _Common:
    """Tokenizing and collating, shared by both backbones."""

    inputs: InputTokenizer
    device: torch.device
    spec: ModelSpec
    forward_calls: int
    packing: bool = False

    @property
    def tokenizer(self) -> Any:
        return self.inputs.tokenizer

    def tokenize(
        self, texts: Sequence[str], spans: Sequence[tuple[int, int]] | None = None
    ) -> list[list[int]]:
        return self.inputs.tokenize(texts, spans)

    def collate(self, batch: TokenBatch, pin: bool = False) -> dict[str, Any]:
        if self.packing:
            return collate_packed(batch, pin=pin)
        return collate_padded(batch, self.inputs.pad_id, self.spec.padding_side, pin=pin)

    def _pad(self, ids: Sequence[Sequence[int]]) -> dict[str, torch.Tensor]:
        """Padded ``input_ids`` / ``attention_mask`` of ``ids`` on the device."""
        batch = collate_padded(
            TokenBatch.from_lists(ids), self.inputs.pad_id, self.spec.padding_side
        )
        return to_device(batch, self.device)

    def embed_ids(self, ids: Sequence[Sequence[int]]) -> torch.Tensor:
        inputs = to_device(self.collate(TokenBatch.from_lists(ids)), self.device)
        return self.forward(inputs).cpu()

    def forward(self, inputs: dict[str, Any]) -> torch.Tensor:  # pragma: no cover - protocol
        raise NotImplementedError


class TransformersBackbone(_Common):
    """Stock transformers model + pooling (+ Token Prepending, + Dense projection)."""

    def __init__(
        self,
        spec: ModelSpec,
        device: str = "auto",
        *,
        model: torch.nn.Module | None = None,
        tokenizer: Any = None,
    ) -> None:
        """Load ``spec.path``; or wrap an already built ``model`` / ``tokenizer`` (e.g. a random
        full-size architecture in the throughput benchmark), applying the same spec."""
        from transformers import AutoModel, AutoTokenizer

        self.spec = spec
        self.device = resolve_device(device)
        self.packing = packing = spec.packing
        hub_kwargs = _hub_kwargs(spec)
        if tokenizer is None:
            tokenizer = AutoTokenizer.from_pretrained(
                spec.path, trust_remote_code=spec.trust_remote_code, **hub_kwargs
            )
        self.inputs = InputTokenizer(tokenizer, spec)
        attn_implementation = spec.attn_implementation
        if packing:
            from qzhou_eval.models.packing import register

            attn_implementation = register()
        if model is None:
            with _quiet_loading_report():
                model, loaded = AutoModel.from_pretrained(
                    spec.path,
                    dtype=TORCH_DTYPES[spec.dtype],
                    attn_implementation=attn_implementation,
                    trust_remote_code=spec.trust_remote_code,
                    output_loading_info=True,
                    **hub_kwargs,
                )
            _check_weights(loaded["missing_keys"])
        elif packing:
            model.set_attn_implementation(attn_implementation)
        self.model = model
        check_positions(self.model, spec)
        if packing:
            _check_packable(self.model, spec)
        if spec.attention == "bidirectional":
            make_bidirectional(self.model)
        elif spec.attention == "causal" and getattr(self.model.config, "is_causal", True) is False:
            self.model.config.is_causal = True
        self.model.to(self.device).eval()
        self.token_prepending = None
        if spec.token_prepending.enabled:
            self.token_prepending = _attach_token_prepending(self.model, self.tokenizer, spec)
        self.projection = _load_projection(spec, self.device) if spec.projection else None
        hidden = int(self.model.config.hidden_size)
        self.output_dim = self.projection.out_features if self.projection is not None else hidden
        self.forward_calls = 0

    @torch.inference_mode()
    def forward(self, inputs: dict[str, Any]) -> torch.Tensor:
        self.forward_calls += 1
        if "cu_seqlens" in inputs:
            return self._forward_packed(inputs)
        # Token Prepending hooks (when attached) read the placeholder positions from input_ids.
        out = self.model(
            input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], use_cache=False
        ).last_hidden_state
        vectors = pool(
            out,
            inputs["attention_mask"],
            self.spec.pooling,
            self.spec.numerics,
            inputs.get("spans"),
        )
        return self._finish(vectors)

    def _forward_packed(self, inputs: dict[str, Any]) -> torch.Tensor:
        from qzhou_eval.models.packing import pool_packed

        cu, longest = inputs["cu_seqlens"], inputs["max_length"]
        layer_masks = {"full_attention": None, "sliding_attention": None}
        out = self.model(
            input_ids=inputs["input_ids"],
            position_ids=inputs["position_ids"],
            attention_mask=layer_masks,  # skips mask creation: attention stays per input
            use_cache=False,
            cu_seq_lens_q=cu,
            cu_seq_lens_k=cu,
            max_length_q=longest,
            max_length_k=longest,
        ).last_hidden_state
        pooled = pool_packed(out[0], cu, self.spec.pooling, self.spec.numerics, inputs["spans"])
        return self._finish(pooled)

    def _finish(self, vectors: torch.Tensor) -> torch.Tensor:
        if self.projection is not None:
            vectors = self.projection(vectors)
        elif self.spec.backbone_normalizes:  # official: normalized before the cast, as there
            vectors = official_normalize(vectors)
        return vectors.float()


def _check_packable(model: torch.nn.Module, spec: ModelSpec) -> None:
    from qzhou_eval.models.packing import PACKED_MODEL_TYPES

    model_type = getattr(model.config, "model_type", "?")
    if model_type not in PACKED_MODEL_TYPES:
        raise ValueError(
            f"runtime.packing supports {', '.join(PACKED_MODEL_TYPES)} decoders; "
            f"{spec.name} is a {model_type!r} model (set runtime.packing=false)"
        )


class SentenceTransformerBackbone(_Common):
    """A sentence-transformers pipeline; its own modules decide pooling, normalization and
    attention, which must agree with the spec (``st_pipeline``); dtype, attention kernel, length,
    padding and truncation are the spec's."""

    def __init__(self, spec: ModelSpec, device: str = "auto") -> None:
        from sentence_transformers import SentenceTransformer

        if spec.packing:
            raise ValueError("runtime.packing needs model.backend=native")
        self.spec = spec
        self.device = resolve_device(device)
        missing: list[str] = []
        with _quiet_loading_report(), _missing_tensors_recorded(missing):
            self.model = SentenceTransformer(
                spec.path,
                device=str(self.device),
                trust_remote_code=spec.trust_remote_code,
                model_kwargs={
                    "dtype": TORCH_DTYPES[spec.dtype],
                    "attn_implementation": spec.attn_implementation,
                },
                **_hub_kwargs(spec),
            )
        _check_weights(missing)
        check_pipeline_settings(self.model, spec)
        check_positions(self.model, spec)
        _check_sentence_embedding(self.model, self.device)
        self.model.max_seq_length = spec.max_length
        lowercase = bool(getattr(self.model[0], "do_lower_case", False))
        self.inputs = InputTokenizer(self.model.tokenizer, spec, lowercase=lowercase)
        self._token_types = "token_type_ids" in self.tokenizer.model_input_names
        self.output_dim = int(self.model.get_embedding_dimension())
        self.forward_calls = 0

    @torch.inference_mode()
    def forward(self, inputs: dict[str, Any]) -> torch.Tensor:
        self.forward_calls += 1
        features = {k: v for k, v in inputs.items() if isinstance(v, torch.Tensor)}
        if self._token_types and "token_type_ids" not in features:
            features["token_type_ids"] = torch.zeros_like(features["input_ids"])
        return self.model(features)["sentence_embedding"].float()


@contextmanager
def _quiet_loading_report() -> Iterator[None]:
    """transformers' table of the tensors a checkpoint lacks or has too many of (its "LOAD
    REPORT", about 20 lines) not printed while a model loads: those it lacks are refused in one
    line (:func:`_check_weights`), those it has too many of are not used. A filter, not a level:
    transformers runs another check, with warnings of its own, when that logger's level is
    raised."""
    report = logging.getLogger("transformers.modeling_utils")

    def not_the_table(record: logging.LogRecord) -> bool:
        return "LOAD REPORT" not in str(record.msg)

    report.addFilter(not_the_table)
    try:
        yield
    finally:
        report.removeFilter(not_the_table)


@contextmanager
def _missing_tensors_recorded(missing: list[str]) -> Iterator[None]:
    """The tensors each transformers model loaded inside lacks, added to ``missing``: a
    sentence-transformers pipeline calls ``from_pretrained`` itself and keeps what it loaded to
    itself, so the public ``output_loading_info`` argument is asked for here and its answer taken
    off before the pipeline sees it (no other API tells what was started at random). Loads run
    one at a time in a process (a device worker loads its own copy)."""
    from transformers import PreTrainedModel

    original = PreTrainedModel.__dict__["from_pretrained"]
    load = original.__func__

    def recorded(cls: type, *args: Any, **kwargs: Any) -> Any:
        if "output_loading_info" in kwargs:  # the caller asked for it: its own to check
            return load(cls, *args, **kwargs)
        model, info = load(cls, *args, output_loading_info=True, **kwargs)
        missing.extend(info["missing_keys"])
        return model

    PreTrainedModel.from_pretrained = classmethod(recorded)  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        PreTrainedModel.from_pretrained = original  # type: ignore[method-assign]


def _check_weights(missing: Sequence[str]) -> None:
    """A ValueError where the checkpoint lacks tensors the model uses: transformers starts them
    at random and only prints a table. (The pooler of BERT-like models is not used: every
    pooling reads the last hidden states.)"""
    used = sorted(k for k in missing if not k.startswith("pooler."))
    if used:
        more = f" and {len(used) - 1} more" if len(used) > 1 else ""
        raise ValueError(
            f"its weights lack {len(used)} of the model's tensors ({used[0]}{more}), which "
            "would start at random: the checkpoint is incomplete or of another architecture"
        )


def _check_sentence_embedding(pipeline: Any, device: torch.device) -> None:
    """A ValueError where the pipeline gives no sentence embedding (no Pooling module, or none
    of its modules makes one): found by one forward of a one-word input as it loads, not by a
    KeyError from the first batch of a run. (Which modules make one is known only by running
    them: a model's own code may.)"""
    preprocess = getattr(pipeline, "preprocess", None) or pipeline.tokenize  # (5.x: tokenize)
    features = {
        k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in preprocess(["a"]).items()
    }
    with torch.inference_mode():
        out = pipeline(features)
    modules = ", ".join(type(m).__name__ for m in pipeline)
    if "sentence_embedding" not in out:
        raise ValueError(
            f"its sentence-transformers pipeline ({modules}) gives no sentence embedding (a "
            "Pooling module makes one): add one to its modules.json, or set "
            "model.backend=native, where the harness pools as model.pooling says"
        )
    shape = tuple(getattr(out["sentence_embedding"], "shape", ()))
    if len(shape) != 2 or shape[0] != 1:  # (a module after the pooling that reads the tokens)
        raise ValueError(
            f"its sentence-transformers pipeline ({modules}) gives a sentence embedding of "
            f"shape {shape} for one input, not one vector: its modules do not make one vector "
            "per input"
        )


def check_positions(model: torch.nn.Module, spec: ModelSpec) -> None:
    """A ValueError where ``model.max_length`` is more than the model's learned position
    embeddings hold (BERT-like models: an input that long fails in the forward, mid-run)."""
    for name, module in model.named_modules():
        if name.endswith("position_embeddings") and isinstance(module, torch.nn.Embedding):
            pad = module.padding_idx  # RoBERTa-like positions start after the padding index
            limit = module.num_embeddings - (pad + 1 if pad is not None else 0)
            if spec.max_length > limit:
                raise ValueError(
                    f"model.max_length={spec.max_length} is more than the {limit} positions "
                    f"its position embeddings hold: set model.max_length={limit} or less"
                )
            return


def _is_local(path: str) -> bool:
    return Path(path).expanduser().exists()


def _attach_token_prepending(model: torch.nn.Module, tokenizer: object, spec: ModelSpec):
    from qzhou_eval.models.token_prepending import attach_for_spec

    return attach_for_spec(model, tokenizer, spec.token_prepending)


def _load_projection(spec: ModelSpec, device: torch.device) -> torch.nn.Module:
    from qzhou_eval.models.projection import load_dense_projection

    # official numerics: the Dense runs in the model dtype, as the official pipeline ran it
    dtype = TORCH_DTYPES[spec.dtype] if spec.numerics == "official" else torch.float32
    return load_dense_projection(
        spec.path, spec.projection, device, revision=spec.revision, dtype=dtype
    )


def load_backbone(spec: ModelSpec, device: str = "auto") -> Backbone:
    """Build the backbone the spec asks for."""
    logger.info("loading %s (%s backend) from %s on %s", spec.name, spec.backend, spec.path, device)
    if spec.backend == "sentence_transformers":
        return SentenceTransformerBackbone(spec, device)
    return TransformersBackbone(spec, device)
