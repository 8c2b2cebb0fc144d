"""Backbones: tokenize texts, and turn a batch of token ids into pooled float32 vectors.

Two implementations share one small interface so the encoder does not care which runs:
- :class:`TransformersBackbone` (``backend: native``): stock transformers ``AutoModel``, no remote
  code; optional bidirectional attention (QZhou-Embedding), Token Prepending and a Dense
  projection (QZhou-Embedding-Zh);
- :class:`SentenceTransformerBackbone` (``backend: sentence_transformers``): a model's own
  sentence-transformers pipeline (all-MiniLM-L6-v2, or remote-code pipelines).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

import torch

from qzhou_eval.config.spec import ModelSpec
from qzhou_eval.models.attention import make_bidirectional
from qzhou_eval.models.pooling import official_normalize, pool
from qzhou_eval.models.truncation import inner_truncate

logger = logging.getLogger(__name__)

TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class Backbone(Protocol):
    """What the encoder needs from a model."""

    device: torch.device
    output_dim: int

    def tokenize(
        self, texts: Sequence[str], spans: Sequence[tuple[int, int]] | None = None
    ) -> list[list[int]]:
        """Token ids of each text, truncated to the model's max length.

        ``spans`` (character span of the task text in each input) selects inner truncation.
        """
        ...

    def embed_ids(self, ids: Sequence[Sequence[int]]) -> torch.Tensor:
        """Pooled (and projected) vectors, float32 on CPU: (len(ids), dim). Not normalized,
        except where ``spec.backbone_normalizes`` (official numerics without a projection)."""
        ...


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(device)


class _TokenizerMixin:
    tokenizer: object
    device: torch.device
    spec: ModelSpec

    def tokenize(
        self, texts: Sequence[str], spans: Sequence[tuple[int, int]] | None = None
    ) -> list[list[int]]:
        if spans is not None and self.spec.truncation == "inner":
            return inner_truncate(self.tokenizer, texts, spans, self.spec.max_length)
        return self.tokenizer(  # type: ignore[operator]
            list(texts), truncation=True, max_length=self.spec.max_length, padding=False
        )["input_ids"]

    def _pad(self, ids: Sequence[Sequence[int]]) -> dict[str, torch.Tensor]:
        batch = self.tokenizer.pad(  # type: ignore[attr-defined]
            {"input_ids": [list(x) for x in ids]}, padding=True, return_tensors="pt"
        )
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}


class TransformersBackbone(_TokenizerMixin):
    """Stock transformers model + pooling (+ Token Prepending, + Dense projection)."""

    def __init__(self, spec: ModelSpec, device: str = "auto") -> None:
        from transformers import AutoModel, AutoTokenizer

        self.spec = spec
        self.device = resolve_device(device)
        hub_kwargs = {} if _is_local(spec.path) else {"revision": spec.revision}
        self.tokenizer = AutoTokenizer.from_pretrained(
            spec.path, trust_remote_code=spec.trust_remote_code, **hub_kwargs
        )
        self.tokenizer.padding_side = spec.padding_side
        self.tokenizer.truncation_side = "right"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModel.from_pretrained(
            spec.path,
            dtype=TORCH_DTYPES[spec.dtype],
            attn_implementation=spec.attn_implementation,
            trust_remote_code=spec.trust_remote_code,
            **hub_kwargs,
        )
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
    def embed_ids(self, ids: Sequence[Sequence[int]]) -> torch.Tensor:
        batch = self._pad(ids)
        self.forward_calls += 1
        # Token Prepending hooks (when attached) read the placeholder positions from input_ids.
        out = self.model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False
        ).last_hidden_state
        vectors = pool(out, batch["attention_mask"], self.spec.pooling, self.spec.numerics)
        if self.projection is not None:
            vectors = self.projection(vectors)
        elif self.spec.backbone_normalizes:  # official: normalized before the cast, as there
            vectors = official_normalize(vectors)
        return vectors.float().cpu()


class SentenceTransformerBackbone(_TokenizerMixin):
    """A sentence-transformers pipeline; its own modules decide pooling (and normalization)."""

    def __init__(self, spec: ModelSpec, device: str = "auto") -> None:
        from sentence_transformers import SentenceTransformer

        self.spec = spec
        self.device = resolve_device(device)
        hub_kwargs = {} if _is_local(spec.path) else {"revision": spec.revision}
        self.model = SentenceTransformer(
            spec.path,
            device=str(self.device),
            trust_remote_code=spec.trust_remote_code,
            model_kwargs={"dtype": TORCH_DTYPES[spec.dtype]},
            **hub_kwargs,
        )
        self.model.max_seq_length = spec.max_length
        self.tokenizer = self.model.tokenizer
        self.tokenizer.padding_side = spec.padding_side
        self.output_dim = int(self.model.get_embedding_dimension())
        self.forward_calls = 0

    @torch.inference_mode()
    def embed_ids(self, ids: Sequence[Sequence[int]]) -> torch.Tensor:
        batch = self._pad(ids)
        self.forward_calls += 1
        features = dict(batch)
        if "token_type_ids" in self.tokenizer.model_input_names and "token_type_ids" not in batch:
            features["token_type_ids"] = torch.zeros_like(batch["input_ids"])
        out = self.model(features)["sentence_embedding"]
        return out.float().cpu()


def _is_local(path: str) -> bool:
    from pathlib import Path

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
    logger.info("loading %s (%s backend) from %s", spec.name, spec.backend, spec.path)
    if spec.backend == "sentence_transformers":
        return SentenceTransformerBackbone(spec, device)
    return TransformersBackbone(spec, device)
