"""The local model folder that filled a store's configuration folder and a results revision
(:mod:`qzhou_eval.models.folder_digest`): checked before a run from a local folder loads
anything, recorded once the run has filed something there, so that another folder's model is
never filed, or shown, as this one's.

Each place keeps ``model_folder.yaml`` (the folder's path, digest and per-file digests): in the
store, the configuration's folder; in the results, the revision's ``qzhou_eval_records``. It is
written at the end of a run (also one stopped or failed) where the place then holds something,
so a run that files nothing leaves nothing. A place that holds something without a marker (filled
before markers existed, or by a run killed outright before its end) takes the next run's folder
at its word, as does one whose marker is damaged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from qzhou_eval import atomic
from qzhou_eval.config.hub import cached_folder
from qzhou_eval.config.spec import ModelSpec, resolve_model_path
from qzhou_eval.errors import ConfigError
from qzhou_eval.models import folder_settings
from qzhou_eval.models.folder_digest import covered, digest_of, folder_files, read_subfolders
from qzhou_eval.models.st_pipeline import check_folder_pipeline
from qzhou_eval.recipe import Recipe
from qzhou_eval.results.folder import MODEL_META
from qzhou_eval.store.disk import KEYS
from qzhou_eval.task_records import RECORDS

MARKER = "model_folder.yaml"  # (YAML as the records: no loader of results reads it)


@dataclass(frozen=True)
class Place:
    """Where vectors or results of one model are kept (a store's configuration folder, a
    results revision folder), and the setting that names it (``runtime.store_dir=...``)."""

    folder: Path
    setting: str
    stores_vectors: bool

    @property
    def marker(self) -> Path:
        return self.folder / MARKER if self.stores_vectors else self.folder / RECORDS / MARKER

    @property
    def holds(self) -> str:
        return "stored vectors" if self.stores_vectors else "results"

    def in_use(self) -> bool:
        """Whether it holds any vectors (a shard) or results (a result file) yet."""
        if self.stores_vectors:
            return any(self.folder.glob(f"*{KEYS}"))
        return any(p.name != MODEL_META and p.is_file() for p in self.folder.rglob("*.json"))


@dataclass
class ModelFolder:
    """A local model folder's record, and the places whose marker is missing or stale."""

    record: dict[str, Any]
    unmarked: list[Place] = field(default_factory=list)

    def mark(self) -> None:
        """Write the marker of each unmarked place that now holds something; best effort (the
        run's outcome, or its error line, is what matters at this point)."""
        text = yaml.safe_dump(self.record, sort_keys=False, allow_unicode=True)
        for place in self.unmarked:
            with contextlib.suppress(Exception):
                if place.in_use():
                    atomic.write_text(place.marker, text)


def check_model_folder(
    model_path: str, model: str, places: list[Place], projection: str | None = None
) -> ModelFolder:
    """ConfigError when a place holding vectors or results of ``model`` (name@revision) came
    from a folder with other files than ``model_path`` (those a load reads, ``projection``'s
    subfolder included: :mod:`~qzhou_eval.models.folder_digest`); reads only."""
    folder = Path(model_path).resolve()
    subfolders = read_subfolders(folder, projection)
    files = folder_files(folder, subfolders)
    record = {"path": str(folder), "digest": digest_of(files), "files": files}
    checked = ModelFolder(record if subfolders is None else {**record, "subfolders": subfolders})
    for place in places:
        if (recorded := _other_folder(checked, place)) is not None:
            before = recorded.get("path", "?")
            source = (  # (a folder changed in place: its path named once)
                f"it held when the {place.holds} of {model} in {place.setting} came from it"
                if before == str(folder)
                else f"{before}, the folder the {place.holds} of {model} in {place.setting} "
                "came from"
            )
            raise ConfigError(
                f"model.path={model_path} holds other files than {source} "
                f"({_difference(recorded, checked.record)}): give this model its own "
                f"model.revision (or model.name), or point {place.setting.partition('=')[0]} "
                "elsewhere"
            )
    return checked


def check_stored_model_folder(store: Place, model: str, results: Place) -> ModelFolder | None:
    """A run that scores from the store (``runtime.encode=false``) files results of the model
    folder that filled ``store``, as its marker says: ConfigError when ``results`` holds results
    of ``model`` from another folder; the marker to record in ``results`` (None: the store does
    not say, e.g. a Hub id's vectors). Reads only."""
    record = _read(store.marker)
    if record is None:
        return None
    checked = ModelFolder(record)
    if (recorded := _other_folder(checked, results)) is not None:
        raise ConfigError(
            f"the vectors of {model} in {store.setting} came from {record.get('path', '?')}, "
            f"the results of {model} in {results.setting} from {recorded.get('path', '?')} "
            f"({_difference(recorded, record)}): give this model its own model.revision (or "
            "model.name), or point runtime.results_dir elsewhere"
        )
    return checked


def _other_folder(checked: ModelFolder, place: Place) -> dict[str, Any] | None:
    """The marker of another folder where ``place`` holds vectors or results of it (the caller
    names the conflict); else None, and ``place`` is one for ``checked`` to mark unless it holds
    that folder's marker already."""
    recorded = _read(place.marker)
    if recorded is not None and _same_files(recorded, checked.record):
        return None
    if recorded is not None and place.in_use():
        return recorded
    checked.unmarked.append(place)
    return None


def _read(marker: Path) -> dict[str, Any] | None:
    try:
        recorded = yaml.safe_load(marker.read_bytes())
    except (OSError, ValueError, yaml.YAMLError):
        return None
    return recorded if isinstance(recorded, dict) and "digest" in recorded else None


def _compared(a: dict[str, Any], b: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """The files of two folder records that a load reads, by the newer record's subfolders: a
    record written before the digest left out the subfolders a load never reads (a trainer's
    checkpoints, a run's own results) holds theirs too, and is compared without them."""
    subfolders = a.get("subfolders", b.get("subfolders"))
    if not isinstance(subfolders, list):
        subfolders = None
    files = [r.get("files") if isinstance(r.get("files"), dict) else {} for r in (a, b)]
    return covered(files[0], subfolders), covered(files[1], subfolders)


def _same_files(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two folder records are of the same files (those a load reads)."""
    if a.get("digest") == b.get("digest"):
        return True
    files_a, files_b = _compared(a, b)
    return bool(files_a) and files_a == files_b


def _difference(recorded: dict[str, Any], record: dict[str, Any]) -> str:
    """The first file that differs between the recorded folder and this one, in words."""
    before, files = _compared(recorded, record)
    # the folder's top first: its modules.json decides which subfolders a load reads
    for rel in sorted(set(before) | set(files), key=lambda rel: ("/" in rel, rel)):
        if rel not in files:
            return f"this one lacks its {rel}"
        if rel not in before:
            return f"it lacks this one's {rel}"
        if before[rel] != files[rel]:
            return f"their {rel} differ"
    return "their files differ"


def check_folder_settings(spec: ModelSpec, recipe: Recipe) -> None:
    """The model folder's own sentence-transformers settings against ``spec`` and ``recipe``
    (:mod:`qzhou_eval.models.folder_settings`), then what the sentence-transformers backend's
    pipeline decides itself (:func:`check_folder_pipeline`): a local folder, or a Hub id's
    snapshot in the Hugging Face cache (a model not downloaded yet is not read here)."""
    folder, where = _model_folder(spec)
    if folder is not None:
        folder_settings.check_folder_settings(
            spec, folder, recipe_prompts(recipe), mteb_reads, where
        )
        check_folder_pipeline(spec, folder)


def check_scoring_settings(spec: ModelSpec, recipe: Recipe) -> None:
    """For a run that scores from the store (``runtime.encode=false``), where the model folder
    can be read: what :func:`check_folder_settings` checks before an encoding run. Its results
    are filed by ``spec`` as an encoding run's are: without this, vectors made with
    ``model.folder_settings=ignore`` (a variant) and scored without it were filed as the model's
    own. Where the folder cannot be read (``model.path=/nonexistent``), nothing is checked."""
    with contextlib.suppress(ConfigError):  # (a scoring run's model.path as written: pkg:...)
        spec = dataclasses.replace(spec, path=resolve_model_path(spec.path))
    check_folder_settings(spec, recipe)


def settings_apart(spec: ModelSpec, recipe: Recipe) -> folder_settings.Apart | None:
    """The run's settings other than the model folder's own (:func:`folder_settings.
    settings_apart`), where the folder (or the Hub snapshot in the cache) can be read; else
    None. What a run with ``model.folder_settings=ignore`` sets otherwise than the model."""
    with contextlib.suppress(ConfigError):  # (pkg:..., as check_scoring_settings reads it)
        spec = dataclasses.replace(spec, path=resolve_model_path(spec.path))
    folder, _ = _model_folder(spec)
    if folder is None:
        return None
    return folder_settings.settings_apart(spec, folder, recipe_prompts(recipe), mteb_reads)


def _model_folder(spec: ModelSpec) -> tuple[Path | None, str | None]:
    """The model's local folder, or its Hub snapshot in the Hugging Face cache (None: neither),
    and how a line names it (None: ``model.path=<folder>``)."""
    folder = Path(spec.path)
    if folder.is_dir():
        return folder, None
    return cached_folder(spec.path, spec.revision), f"{spec.name}@{spec.revision}"


def recipe_prompts(recipe: Recipe) -> folder_settings.RecipePrompts | None:
    """What ``recipe`` does to texts, against a folder's prompts (None: it instructs, a recipe
    of the user's own)."""
    if recipe.uses_instructions:
        return None
    extras = []
    if recipe.input_template is not None:
        what = f"wraps every input in {recipe.input_template!r} (its input_template)"
        extras.append((what, "prompts.input_template=null"))
    if recipe.empty_text is not None:
        what = f"puts {recipe.empty_text!r} for an empty text (its empty_text)"
        extras.append((what, "prompts.empty_text=null"))
    return folder_settings.RecipePrompts(
        dict(recipe.model_prompts), recipe.default_prompt, tuple(extras)
    )


def mteb_reads(prompts: Mapping[str, str]) -> list[str]:
    """The keys of a model's ``prompts`` that mteb's run of it reads (its own check, which drops
    the others, e.g. ``passage``, with a warning each: the check's line names what matters)."""
    import mteb

    mteb_logger = logging.getLogger("mteb")
    level = mteb_logger.level
    mteb_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            read, _ = mteb.SentenceTransformerEncoderWrapper.validate_task_to_prompt_name(
                dict(prompts), raise_for_invalid_keys=False
            )
    finally:
        mteb_logger.setLevel(level)
    return list(read or {})
