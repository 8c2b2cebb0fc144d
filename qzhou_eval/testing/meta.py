"""The mteb model meta of an encoder that is not a model (tests and measurement scripts).

mteb's encoders must carry a ``ModelMeta``, most of whose fields are required but say nothing
about a stand-in; this is the one place that fills them. Not exported by the package's
``__init__`` (it needs mteb, the tokenizer builders do not).
"""

from __future__ import annotations

from typing import Any

from mteb.models import ModelMeta


def stand_in_meta(
    name: str,
    embed_dim: int,
    *,
    revision: str = "0",
    use_instructions: bool = False,
    experiment_kwargs: dict[str, Any] | None = None,
) -> ModelMeta:
    """A cosine-similarity meta named ``name`` (``org/model``) with every other field unknown."""
    return ModelMeta(
        loader=None,
        name=name,
        revision=revision,
        release_date=None,
        languages=None,
        n_parameters=None,
        memory_usage_mb=None,
        max_tokens=None,
        embed_dim=embed_dim,
        license=None,
        open_weights=None,
        public_training_code=None,
        public_training_data=None,
        framework=[],
        similarity_fn_name="cosine",
        use_instructions=use_instructions,
        training_datasets=None,
        experiment_kwargs=experiment_kwargs,
    )
