"""What a run's results are filed under: model name, revision and experiment.

mteb keys results by model name + revision (+ ``experiment_kwargs``); prompts and model settings
are not in the key. A recipe variant that reused the official folder would silently mix its
scores with the official configuration's. So:

- a run whose model inputs/settings equal the model config's own defaults (its official recipe)
  files under ``<org>__<model>/<revision>/``;
- any other run files under ``experiments/variant_<hash>/`` (or ``experiment=<name>``);
- an MRL dimension below the model's full size adds ``embed_dim_<d>`` (mteb's convention);
- every folder records the fingerprint of what produced it (``qzhou_eval_run.yaml``); a run
  whose fingerprint differs from the recorded one refuses to write there.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from mteb.models import ModelMeta

from qzhou_eval import atomic
from qzhou_eval.config.spec import ModelSpec
from qzhou_eval.errors import ConfigError
from qzhou_eval.recipe import Recipe

RUN_RECORD = "qzhou_eval_run.yaml"


def input_fingerprint(spec: ModelSpec, recipe: Recipe) -> str:
    """Hash of everything that changes the raw (full-dimension) vectors of a text."""
    payload = {"model": spec.fingerprint_fields(), "recipe": recipe.fingerprint_fields()}
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def score_fingerprint(spec: ModelSpec, recipe: Recipe) -> str:
    """Input fingerprint plus the output normalization: what the scores depend on."""
    return hashlib.sha256(
        f"{input_fingerprint(spec, recipe)}|normalize={spec.normalize}".encode()
    ).hexdigest()


Variant = tuple[str, str]
"""(kind, value): ("experiment", <user's name>) or ("variant", <fingerprint prefix>). mteb names the
folder ``<kind>_<value>`` (e.g. ``experiments/variant_1a2b3c4d5e``)."""


def experiment_kwargs(
    *, dim: int | None, full_dim: int | None, variant: Variant | None
) -> dict[str, Any] | None:
    kwargs: dict[str, Any] = {}
    if dim is not None and dim != full_dim:
        kwargs["embed_dim"] = dim
    if variant:
        kwargs[variant[0]] = variant[1]
    return kwargs or None


def build_model_meta(
    spec: ModelSpec, recipe: Recipe, *, dim: int | None, variant: Variant | None
) -> ModelMeta:
    """ModelMeta with the model's real name and revision (this decides the results folder)."""
    framework = ["PyTorch"]
    if spec.backend == "sentence_transformers":
        framework.append("Sentence Transformers")
    return ModelMeta(
        loader=None,
        name=spec.name,
        revision=spec.revision,
        release_date=spec.release_date,
        languages=spec.languages,
        n_parameters=spec.n_parameters,
        memory_usage_mb=None,
        max_tokens=spec.max_length,
        embed_dim=dim or spec.embed_dim,
        license=spec.license,
        open_weights=True,
        public_training_code=None,
        public_training_data=None,
        framework=framework,
        similarity_fn_name="cosine" if spec.similarity == "cosine" else "dot",
        use_instructions=recipe.uses_instructions,
        training_datasets=None,
        experiment_kwargs=experiment_kwargs(dim=dim, full_dim=spec.embed_dim, variant=variant),
    )


def variant_of(
    spec: ModelSpec, recipe: Recipe, canonical: tuple[ModelSpec, Recipe] | None, named: str | None
) -> Variant | None:
    """The experiment a run belongs to: the user's name, else automatic when not canonical."""
    if named:
        return ("experiment", str(named))
    if canonical is None:
        return None
    if score_fingerprint(spec, recipe) == score_fingerprint(*canonical):
        return None
    return ("variant", score_fingerprint(spec, recipe)[:10])


def check_and_record(
    folder: Path, spec: ModelSpec, recipe: Recipe, dim: int | None, *, write: bool = True
) -> None:
    """Refuse to mix results of different configurations in one folder; record ours.

    ``write=False`` only checks (the runner checks every folder of a run before recording any).
    """
    record = {
        "fingerprint": score_fingerprint(spec, recipe),
        "dim": dim,
        "recipe": recipe.name,
        "model": spec.fingerprint_fields(),
        "normalize": spec.normalize,
    }
    path = folder / RUN_RECORD
    if path.exists():
        old = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if old.get("fingerprint") != record["fingerprint"] or old.get("dim") != dim:
            raise ConfigError(
                f"{folder} holds results of a different configuration (see {RUN_RECORD}); "
                "set experiment=<name> or runtime.results_dir=<another folder>"
            )
        return
    if not write:
        return
    text = yaml.safe_dump(record, sort_keys=True, allow_unicode=True)
    atomic.write_text(path, text)
