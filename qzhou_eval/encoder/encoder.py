"""mteb 2.x encoder protocol over the recipe and the embedder."""

from __future__ import annotations

from typing import Any

import numpy as np
from mteb.models import ModelMeta
from mteb.models.abs_encoder import AbsEncoder

from qzhou_eval.config.spec import DEFAULT_NUMERICS, check_embed_dim
from qzhou_eval.encoder.embedder import Embedder
from qzhou_eval.errors import DataError
from qzhou_eval.models.pooling import normalize_rows
from qzhou_eval.precision import DEFAULT_PRECISION, quantizer
from qzhou_eval.recipe import Recipe, side_of


def check_unicode(texts: list[str], where: str) -> None:
    """DataError naming ``where`` and the text when one is not valid Unicode (a lone surrogate
    such as ``"\\ud800"``): no tokenizer can take it, and it has no UTF-8 form to store."""
    for i, text in enumerate(texts):
        if text.isascii():
            continue
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            code = ord(text[e.start])
            around = text[max(0, e.start - 20) : e.start + 20].encode("utf-8", "backslashreplace")
            raise DataError(
                f"task {where}: text {i} is not valid Unicode (a lone surrogate U+{code:04X} at "
                f'character {e.start}: "{around.decode("utf-8")}"); remove or '
                "replace it in the task's data"
            ) from None


class RecipeEncoder(AbsEncoder):
    """Feeds mteb's texts through the recipe, returns float32 numpy vectors of size ``dim``.

    Output order follows the official QZhou-Embedding-Zh rule for MRL: raw vector -> keep the first
    ``dim`` values -> L2-normalize (when ``normalize``), with the normalization of ``numerics``.
    ``prenormalized``: the embedder's full-size vectors are already final (the backbone normalized
    them, ``ModelSpec.backbone_normalizes``); they are normalized again only after a cut.
    ``precision`` other than float32: then each encode call's vectors are quantized as mteb's
    ``CompressionWrapper`` does (:mod:`qzhou_eval.precision`), returned as its torch tensor.
    ``model_dim``: ``model.embed_dim``, the size the model's vectors must have (None: not
    stated); results are filed and described with it, so another size stops the run.
    """

    def __init__(
        self,
        *,
        meta: ModelMeta,
        recipe: Recipe,
        embedder: Embedder,
        dim: int | None = None,
        model_dim: int | None = None,
        normalize: bool = True,
        numerics: str = DEFAULT_NUMERICS,
        prenormalized: bool = False,
        precision: str = DEFAULT_PRECISION,
    ) -> None:
        self.mteb_model_meta = meta
        self.recipe = recipe
        self.embedder = embedder
        self.dim = dim
        self.model_dim = model_dim
        self.normalize = normalize
        self.numerics = numerics
        self.prenormalized = prenormalized
        self.precision = precision
        self._quantize = quantizer(meta, precision)

    def encode(
        self,
        inputs: Any,
        *,
        task_metadata: Any,
        hf_split: str,
        hf_subset: str,
        prompt_type: Any = None,
        **kwargs: Any,
    ) -> Any:
        texts: list[str] = []
        for batch in inputs:
            texts.extend(batch["text"])
        side = side_of(prompt_type)
        task = task_metadata.name
        check_unicode(texts, f"{task} ({hf_split}, {hf_subset})")
        formatted = [self.recipe.format_with_span(task, side, t) for t in texts]
        model_inputs = [s for s, _ in formatted]
        spans = [span for _, span in formatted]
        vectors = self.embedder.embed(model_inputs, side, desc=f"{task} [{side}]", spans=spans)
        vectors = self.finish(vectors)
        # per encode call, as mteb's CompressionWrapper calibrates
        return vectors if self._quantize is None else self._quantize(vectors)

    def finish(self, vectors: np.ndarray) -> np.ndarray:
        """Raw vectors -> first ``dim`` values -> L2 normalization."""
        if vectors.ndim == 2 and len(vectors):
            check_embed_dim(self.model_dim, vectors.shape[1])
        cut = self.dim is not None and self.dim < vectors.shape[-1]
        if cut:
            vectors = vectors[:, : self.dim]
        if self.normalize and vectors.size and (cut or not self.prenormalized):
            vectors = normalize_rows(vectors, self.numerics)
        return np.ascontiguousarray(vectors, dtype=np.float32)
