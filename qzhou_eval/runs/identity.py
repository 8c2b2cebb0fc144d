"""What each task's results are filed under, and the record that keeps configurations apart.

mteb keys results by model name + revision (+ ``experiment_kwargs``); prompts and model settings
are not in the key, so results of different configurations would silently mix. Here identity is
per task: a task's scores depend on the model settings, the output normalization, dimension and
precision, the score function (``model.similarity``), and that task's own model inputs (its
instruction, which sides get it, the template, the wrapper, the empty-text rule), nothing else.

- A task whose identity equals the model config's own (official) configuration's files under
  ``<org>__<model>/<revision>/`` (``experiments/embed_dim_<d>/`` below the full dimension;
  a precision other than float32 adds ``output_dtypes_<precision>``, where mteb's
  ``CompressionWrapper`` files it: ``experiments/embed_dim_<d>__output_dtypes_int8/``).
- Any other task files under ``experiments/variant_<id>/``. The id hashes the model settings and
  the recipe's differences from the official recipe over every task it names, so it does not
  depend on which tasks a run evaluates: overriding STS12's instruction and running STS12 and
  SCIDOCS files STS12 as a variant and SCIDOCS as official.
- A task whose data are not shown to be the pinned revision's (a mirror's files edited, or
  filled without the download metadata), which would otherwise file under ``<revision>/``, files
  under ``experiments/variant_<id>/`` with an id of its own (:attr:`Identity.other_data_id`);
  its record holds the data's content hash.
- ``experiment=<name>`` files every task under ``experiments/experiment_<name>/``.
- Each folder records, per task, the fingerprint of what produced its result
  (``qzhou_eval_records/<Task>.yaml``). A run refuses only a task whose recorded fingerprint
  differs from its own. Records are created race-free (of two first writers with different
  configurations exactly one wins), before the task is evaluated, so a result never lacks its
  record: one that does (the record was deleted) has unknown provenance and is set aside, and
  so is a result other than the one the record's run wrote (the record keeps its sha256 once it
  is written). A record without a result whose writer is gone (killed between the two
  writes: its process is gone, or the record is older than ``atomic.STALE_AFTER_S``; a live run
  keeps touching its record) is stale and replaced. A record of this configuration without a
  result whose writer is another live run (touched within ``LIVE_WITHIN_S``) leaves the task to
  that run (:class:`EvaluatedElsewhere`; :mod:`qzhou_eval.runs.other_runs` waits for it).
- Folders written by qzhou-eval 0.1 (one ``qzhou_eval_run.yaml`` for the whole folder) are
  migrated to per-task records when their configuration is this run's, else refused.

The official configuration is what Hydra composed from the model file alone (the ``canonical``
section the run configs' defaults list adds): no second composition, no file read.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pydantic
import yaml
from mteb.models import ModelMeta

from qzhou_eval import atomic
from qzhou_eval.config.spec import DEFAULT_SIMILARITY, UNCHECKED, ModelSpec
from qzhou_eval.errors import ConfigError, shown
from qzhou_eval.fingerprint import file_digest, fingerprint
from qzhou_eval.models.folder_settings import Apart
from qzhou_eval.precision import DEFAULT_PRECISION, compressed_meta
from qzhou_eval.recipe import SIDES, Recipe
from qzhou_eval.task_records import (
    DIFFERS,
    FILED_IN,
    RECORD_FORMAT,
    RECORDS,
    RESULT_DIGEST,
    filed_elsewhere,
    filed_in,
    is_whole,
)

logger = logging.getLogger(__name__)

LEGACY_RECORD = "qzhou_eval_run.yaml"
_PROBE = "\x00TEXT\x00"  # a text no task has, to read a recipe's rules off its output
_OTHER_TASK = "\x00any task the recipe does not name\x00"

Variant = tuple[str, str]
"""(kind, value): ("experiment", <user's name>) or ("variant", <id>). mteb names the folder
``<kind>_<value>`` (e.g. ``experiments/variant_1a2b3c4d5e``)."""


def task_inputs(recipe: Recipe, task: str) -> dict[str, list[str]]:
    """What the recipe does to ``task``'s texts, per side: a probe text's model input and the
    empty text's. Behaviour, not key names: renaming a recipe key changes no identity."""
    return {
        side: [recipe.format(task, side, _PROBE), recipe.format(task, side, "")] for side in SIDES
    }


def task_fields(
    spec: ModelSpec,
    recipe: Recipe,
    task: str,
    dim: int | None,
    precision: str = DEFAULT_PRECISION,
) -> dict[str, Any]:
    """Everything ``task``'s scores depend on. The precision and the similarity are fields only
    when they are not float32 and cosine, so the records of such runs (all of them, before these
    fields) keep the fingerprints they always had."""
    fields = {
        "model": spec.fingerprint_fields(),
        "normalize": spec.normalize,
        "dim": dim,
        "inputs": task_inputs(recipe, task),
        **_similarity_field(spec),
    }
    if precision != DEFAULT_PRECISION:
        fields["precision"] = precision
    return fields


def _similarity_field(spec: ModelSpec) -> dict[str, str]:
    """The score function mteb uses, when it is not cosine: not a setting of the vectors (the
    store shares them), but of every score computed from them."""
    return {} if spec.similarity == DEFAULT_SIMILARITY else {"similarity": spec.similarity}


def _vector_fields(spec: ModelSpec) -> dict[str, Any]:
    """What a configuration's variant ids hash of its model: the vectors' settings, the
    normalization and the score function."""
    return {
        "model": spec.fingerprint_fields(),
        "normalize": spec.normalize,
        **_similarity_field(spec),
    }


def _recipe_fields(recipe: Recipe, official: Recipe) -> dict[str, Any]:
    """What a variant id hashes of ``recipe``: the inputs of the tasks neither recipe names, of
    each task whose inputs differ from ``official``'s, and its prompts by task type (they reach
    tasks the recipe does not name)."""
    named = sorted(recipe.named_tasks() | official.named_tasks())
    fields: dict[str, Any] = {
        "other_tasks": task_inputs(recipe, _OTHER_TASK),
        "tasks": {
            t: task_inputs(recipe, t)
            for t in named
            if task_inputs(recipe, t) != task_inputs(official, t)
        },
    }
    if recipe.prompt_rules():
        fields["prompt_rules"] = recipe.prompt_rules()
    return fields


def _set_otherwise(spec: ModelSpec, recipe: Recipe, other: Canonical) -> list[str]:
    """What ``spec`` and ``recipe`` set otherwise than ``other``, as the overrides that name it
    (``model.max_length=64``; ``model.token_prepending`` for a section; ``prompts`` where the
    recipe gives some task other inputs)."""

    def settings(spec: ModelSpec) -> dict[str, Any]:
        return {
            **spec.fingerprint_fields(),
            "normalize": spec.normalize,
            "similarity": spec.similarity,
        }

    ours, theirs = settings(spec), settings(other.spec)
    out = []
    for key in sorted(ours.keys() | theirs.keys()):
        value = ours.get(key, False)  # (packing: absent when off)
        if key == "backbone_normalizes" or value == theirs.get(key, False):
            continue
        name = "runtime.packing" if key == "packing" else f"model.{key}"
        if isinstance(value, dict):
            out.append(name)
        else:
            shown = str(value).lower() if isinstance(value, bool) or value is None else value
            out.append(f"{name}={shown}")
    if _recipe_fields(recipe, other.recipe) != _recipe_fields(other.recipe, other.recipe):
        out.append("prompts")
    return out


@dataclass(frozen=True)
class Canonical:
    """The model config's own (official) configuration."""

    spec: ModelSpec
    recipe: Recipe


@dataclass
class Identity:
    """Where each task of a run is filed."""

    spec: ModelSpec
    recipe: Recipe
    canonical: Canonical | None
    experiment: str | None = None  # the user's experiment=<name>
    # an unchecked run's settings other than the model folder's own (None: not read), and the
    # model file's own settings (hf_auto's, before the command line)
    apart: Apart | None = None
    file: Canonical | None = None

    @cached_property
    def unchecked(self) -> bool:
        """A model without an official configuration, evaluated with
        ``model.folder_settings=ignore``: nothing says its settings are the model folder's own
        (mteb's run of it), so its results are not filed as the model's own but as a variant."""
        return self.canonical is None and self.spec.folder_settings == UNCHECKED

    @cached_property
    def variant_id(self) -> str:
        """Id of this configuration's automatic variant folder (independent of the task list)."""
        assert self.canonical is not None or self.unchecked
        # (no official configuration: all of the recipe's inputs, and the unchecked settings)
        official = self.canonical.recipe if self.canonical is not None else self.recipe
        payload = {**_vector_fields(self.spec), **_recipe_fields(self.recipe, official)}
        if self.canonical is None:
            payload["folder_settings"] = UNCHECKED
        return fingerprint(payload, 10)

    def differences(self) -> list[str]:
        """What this configuration sets otherwise than the official one, as the overrides that
        name it (``model.max_length=64``; ``prompts`` where the recipe gives some task other
        inputs): a variant folder's name is a hash, and says none of it. Without an official
        configuration: ``model.folder_settings=ignore`` where that made the run a variant, what
        it sets otherwise than the model folder's own settings where they were read
        (:attr:`apart`), and otherwise than its model file (:attr:`file`) where the folder
        states nothing of that setting; else empty."""
        return list(self._differences)

    @cached_property
    def _differences(self) -> tuple[str, ...]:  # (each task's record says them: once per run)
        if self.canonical is not None:
            return tuple(_set_otherwise(self.spec, self.recipe, self.canonical))
        if not self.unchecked:
            return ()
        # what it sets otherwise than the folder; then than its model file, where the folder
        # states nothing of it (dtype, attention, truncation...: two variants told apart)
        out = [f"model.folder_settings={UNCHECKED}"]
        compared: frozenset[str] = frozenset()
        if self.apart is not None:
            out += self.apart.settings
            compared = self.apart.compared
        if self.file is not None:
            out += [
                setting
                for setting in _set_otherwise(self.spec, self.recipe, self.file)
                if setting.partition("=")[0] not in compared and setting not in out
            ]
        return tuple(out)

    @cached_property
    def other_data_id(self) -> str:
        """Id of the variant folder of tasks whose data are not shown to be the pinned revision's
        (a mirror edited, or filled without the download metadata), which would otherwise be
        filed in the revision's own folder: never as the results of the pinned data."""
        payload = {**_vector_fields(self.spec), "data": "not shown to be the pinned revision"}
        return fingerprint(payload, 10)

    def is_official(self, task: str) -> bool:
        if self.canonical is None:
            return False
        ours = task_fields(self.spec, self.recipe, task, None)
        return ours == task_fields(self.canonical.spec, self.canonical.recipe, task, None)

    def variant(self, task: str) -> Variant | None:
        """The experiment folder ``task`` goes to (None: the revision's own folder)."""
        if self.experiment:
            return ("experiment", str(self.experiment))
        if self.unchecked:
            return ("variant", self.variant_id)
        if self.canonical is None or self.is_official(task):
            return None
        return ("variant", self.variant_id)


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
    spec: ModelSpec,
    recipe: Recipe,
    *,
    dim: int | None,
    variant: Variant | None,
    precision: str = DEFAULT_PRECISION,
) -> ModelMeta:
    """ModelMeta with the model's real name and revision (this decides the results folder); a
    precision other than float32 is added as mteb's ``CompressionWrapper`` adds it (the
    experiment gets ``output_dtypes_<precision>``)."""
    framework = ["PyTorch"]
    if spec.backend == "sentence_transformers":
        framework.append("Sentence Transformers")
    try:
        meta = _model_meta(spec, recipe, dim=dim, variant=variant, framework=framework)
    except pydantic.ValidationError as e:  # what mteb checks itself: the language codes
        error = e.errors()[0]
        key = ".".join(str(part) for part in error["loc"]) or "?"
        raise ConfigError(
            f"model.{key}={shown(error.get('input'))}: {error['msg']} (mteb's model metadata)"
        ) from None
    return compressed_meta(meta, precision)


def _model_meta(
    spec: ModelSpec,
    recipe: Recipe,
    *,
    dim: int | None,
    variant: Variant | None,
    framework: list[str],
) -> ModelMeta:
    ours = ModelMeta(
        loader=None,
        name=spec.name,
        revision=spec.revision,
        release_date=spec.release_date,
        languages=spec.languages,
        n_parameters=spec.n_parameters,
        memory_usage_mb=None,
        max_tokens=spec.max_tokens,  # (null: the registry's, else the run's max_length)
        reference=spec.reference,
        embed_dim=dim or spec.embed_dim,
        license=spec.license,
        open_weights=True,
        public_training_code=None,
        public_training_data=None,
        framework=framework,
        similarity_fn_name="cosine" if spec.similarity == "cosine" else "dot",
        # (mteb counts a model's input format, e.g. 'query: {text}', as instructions too)
        use_instructions=recipe.uses_instructions or recipe.uses_model_prompts,
        training_datasets=None,
        experiment_kwargs=experiment_kwargs(dim=dim, full_dim=spec.embed_dim, variant=variant),
    )
    meta = with_registered(ours)
    if meta.max_tokens is None:
        meta = meta.model_copy(update={"max_tokens": spec.max_length})
    return meta


@functools.cache
def _registered(name: str, revision: str | None) -> ModelMeta | None:
    """mteb's registry entry of ``name`` at ``revision``, or None (once per model: a name it
    lacks costs mteb a fuzzy search of every name it has, for its suggestion)."""
    import mteb

    try:
        with warnings.catch_warnings():  # (a renamed model: mteb's deprecation warning)
            warnings.simplefilter("ignore")
            known = mteb.get_model_meta(name, revision)
    except (KeyError, ValueError):  # not registered, or another revision
        return None
    return known if known.name == name else None  # (renamed: another model's entry)


# what describes the run, never taken from mteb's registry (its output_dtypes is its loader's)
_RUN_FIELDS = frozenset({"experiment_kwargs", "output_dtypes", "loader_kwargs"})


def with_registered(meta: ModelMeta) -> ModelMeta:
    """``meta`` with what mteb's registry says of the same model at the same revision where
    ``meta`` says nothing (its training datasets, which the leaderboard's zero-shot figures
    read, citation, memory, the model's own context length, mteb's loader...) and its
    frameworks, in the registry's order: the ``model_meta.json`` mteb's own run of the model
    writes. Unchanged for a model or revision mteb does not know."""
    known = _registered(meta.name, meta.revision)
    if known is None:
        return meta
    fill = {
        key: value
        for key, value in dict(known).items()
        if key not in _RUN_FIELDS and value is not None and getattr(meta, key, None) is None
    }
    fill["framework"] = [*known.framework, *(f for f in meta.framework if f not in known.framework)]
    return meta.model_copy(update=fill)


# --- per-task records ---------------------------------------------------------------------------


class RecordConflict(ConfigError):
    """A task's folder holds a result of another configuration."""


# A run touches the record of each task it is evaluating this often, so that a record of this
# configuration without a result, touched within LIVE_WITHIN_S by a process not known to be gone,
# is another run evaluating the task now (two runs of one configuration into one folder): the
# later one waits for it (:mod:`qzhou_eval.runs.other_runs`) instead of evaluating it too. A run
# killed on another node holds its tasks that long; on this host, not at all (its pid is gone).
RECORD_TOUCH_S = 15.0
LIVE_WITHIN_S = 90.0


def _writer(record: dict[str, Any] | None) -> dict[str, Any]:
    """The process a record names as its writer (``{}`` where it names none)."""
    writer = (record or {}).get("writer")
    return writer if isinstance(writer, dict) else {}


class EvaluatedElsewhere(Exception):
    """Another live run of this configuration is evaluating the task into this folder now."""

    def __init__(self, record: TaskRecord, writer: dict[str, Any]) -> None:
        self.record, self.writer = record, writer
        who = f" (pid {writer.get('pid')} on {writer.get('host')})" if writer else ""
        super().__init__(
            f"another run of this configuration{who} is evaluating {record.task} into "
            f"{record.folder}"
        )


@dataclass(frozen=True)
class TaskRecord:
    """The record of one task in one results folder."""

    folder: Path
    task: str
    fields: dict[str, Any]
    recipe_name: str
    # where the task's data came from (qzhou_eval.mirror.provenance); not in the fingerprint,
    # which holds only what the data add to the identity (``fields["data_content"]``)
    data_source: dict[str, Any] | None = None
    # fingerprints earlier releases recorded for this same identity (read as ours, never written)
    aliases: tuple[str, ...] = ()
    # what the configuration sets otherwise than the official one (Identity.differences): said
    # in the record of a task filed apart from the official results, for the report
    differs: tuple[str, ...] = ()

    @property
    def path(self) -> Path:
        return self.folder / RECORDS / f"{self.task}.yaml"

    @property
    def result(self) -> Path:
        return self.folder / f"{self.task}.json"

    @cached_property
    def fingerprint(self) -> str:
        return fingerprint(self.fields)

    def text(self) -> str:
        record = {
            "format": RECORD_FORMAT,
            "task": self.task,
            "fingerprint": self.fingerprint,
            "recipe": self.recipe_name,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "writer": atomic.this_process(),  # tells a dead writer's record from a live one's
            FILED_IN: filed_in(self.folder),  # (a result copied to another folder says so)
            **({"data_source": self.data_source} if self.data_source is not None else {}),
            **({DIFFERS: list(self.differs)} if self.differs else {}),
            **self.fields,
        }
        return yaml.safe_dump(record, sort_keys=False, allow_unicode=True, width=1000)

    def conflict(self) -> str | None:
        """Why this task may not be written here, or None. Heals a damaged record, sets aside a
        result without a record and replaces a stale record of another configuration."""
        for folder in reversed(self.path.parents):
            if folder.exists() and not folder.is_dir():
                return f"{folder} is a file where a folder of the results belongs: move it away"
        for path, what in ((self.result, "result"), (self.path, "record")):
            if path.exists() and not path.is_file():
                return (
                    f"{path} is not a file but where the {self.task} {what} belongs (a "
                    "folder?): move it away"
                )
        if self.result.exists() and not self.path.exists():  # in write order: record first
            self._set_aside_unrecorded()
        elif self.result.exists():
            self._set_aside_if_changed()
        data = self._load()
        if data is None:
            return None
        if data["fingerprint"] == self.fingerprint or data["fingerprint"] in self.aliases:
            return self._misfiled(data)  # (this configuration's, but another folder's copy?)
        if self._replace_if_stale():
            return None
        recorded_data = self._load() or {}
        if not self.result.exists():  # its writer is alive (or on another node, recently)
            writer = recorded_data.get("writer") or {}
            who = f" (pid {writer.get('pid')} on {writer.get('host')})" if writer else ""
            return (
                f"a run of another configuration{who} is evaluating {self.task} into "
                f"{self.folder} (its record {self.path} has no result yet); set "
                "experiment=<name> or runtime.results_dir=<another folder>, or wait for it"
            )
        size = [(f.get("dim"), f.get("precision")) for f in (self.fields, recorded_data)]
        if size[0] != size[1] and self.result.exists():
            dim, precision = size[1]
            return (
                f"{self.result} is of output size {dim or 'full'}"
                f"{f', precision {precision}' if precision else ''}, as its record "
                f"{self.path} says, which its folder does not hold (copied between folders?): "
                "move the two files away"
            )
        misfiled = self._misfiled(recorded_data)
        if misfiled is not None:
            return misfiled
        ours, theirs = self.fields.get("data_content"), recorded_data.get("data_content")
        other_data = ""
        if ours != theirs:
            what = f"content {ours[:19]}..." if ours else "the pinned revision"
            other_data = f", made from other data (this run reads {what})"
        return (
            f"{self.folder} holds a {self.task} result of a different configuration{other_data} "
            f"(see {self.path}); set experiment=<name> or runtime.results_dir=<another folder>"
        )

    def finished(self) -> bool:
        """This configuration's result is here (only reads: nothing is healed)."""
        try:
            data = yaml.safe_load(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return False
        if not is_whole(data) or filed_elsewhere(data, self.folder) is not None:
            return False
        ours = data["fingerprint"] == self.fingerprint or data["fingerprint"] in self.aliases
        return ours and self.result.is_file() and self._vouches_for_result(data)

    def _misfiled(self, data: dict[str, Any]) -> str | None:
        """Why the result here is another folder's, as its record ``data`` says (copied
        between folders, record and all), or None."""
        filed = filed_elsewhere(data, self.folder)
        if filed is None or not self.result.exists():
            return None
        return (
            f"{self.result} was filed in {filed!r} of its revision's folder, as its record "
            f"{self.path} says, not in {filed_in(self.folder)!r} (copied between folders?): "
            "move the two files away"
        )

    def seal(self) -> None:
        """Once the task's evaluation wrote its result: the record keeps the result's digest,
        so that a result replaced later (a folder merged by hand, a file copied from another
        dimension's folder) is not taken for this configuration's."""
        data = self._load()
        digest = file_digest(self.result)
        if data is None or digest is None or data.get(RESULT_DIGEST) == digest:
            return
        if data["fingerprint"] != self.fingerprint and data["fingerprint"] not in self.aliases:
            return  # (not ours: never the case after a claim)
        data[RESULT_DIGEST] = digest
        atomic.write_text(
            self.path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1000)
        )

    def _vouches_for_result(self, data: dict[str, Any]) -> bool:
        sealed = data.get(RESULT_DIGEST)
        return sealed is None or sealed == file_digest(self.result)

    def claim(self) -> bool:
        """Record this configuration for the task, or refuse (RecordConflict) where another
        configuration's record is there, or EvaluatedElsewhere where another live run of this
        one is evaluating it. Race-free: of concurrent first writers one wins. Returns whether
        this call created the record."""
        if atomic.create_exclusive(self.path, self.text()):
            return True
        problem = self.conflict()
        if problem is not None:
            raise RecordConflict(problem)
        if not self.path.exists():  # a damaged record was just set aside: record ours
            return self.claim()
        writer = self.evaluated_elsewhere()
        if writer is not None:
            raise EvaluatedElsewhere(self, writer)
        return False

    def take_over(self) -> bytes | None:
        """This configuration's record without a result, whose writer is gone (see
        :meth:`claim`), names this process from now on, so that a third run sees this one
        evaluate the task, not the gone one; the bytes it replaced (None: nothing to take over,
        e.g. this process's own record)."""
        try:
            found = self.path.read_bytes()
        except FileNotFoundError:
            return None
        if self.result.exists() or _writer(self._load()) == atomic.this_process():
            return None
        atomic.write_text(self.path, self.text())
        return found

    def put_back(self, found: bytes) -> None:
        """The record :meth:`take_over` replaced, where the task still has no result and the
        record is still this process's (a run stopped before its result leaves it as found)."""
        if not self.result.exists() and _writer(self._load()) == atomic.this_process():
            atomic.write_bytes(self.path, found)

    def evaluated_elsewhere(self) -> dict[str, Any] | None:
        """The writer of this configuration's record of the task, where the record has no
        result yet (nor was sealed with one) and that writer is another process that may be
        alive (not known to be gone, the record touched within :data:`LIVE_WITHIN_S`); else
        None."""
        if self.result.exists():
            return None
        data = self._load()
        if data is None or (
            data["fingerprint"] != self.fingerprint and data["fingerprint"] not in self.aliases
        ):
            return None
        if data.get(RESULT_DIGEST):  # sealed: its run finished it (the result removed since)
            return None
        writer = _writer(data)
        if writer == atomic.this_process() or atomic.process_gone(
            writer.get("host"), writer.get("pid")
        ):
            return None
        try:
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return None
        return writer if age <= LIVE_WITHIN_S else None

    def live(self) -> contextlib.AbstractContextManager[None]:
        """Around its evaluation: the record is touched every :data:`RECORD_TOUCH_S`, so that
        it never looks stale, nor left, to another run."""
        return atomic.kept_fresh(self.path, RECORD_TOUCH_S)

    def release(self) -> None:
        """Remove the record this run created for a task that produced no result (it failed),
        so that another configuration may run it; a record with a result stays."""
        if not self.result.exists() and self._read() == self.fingerprint:
            self.path.unlink(missing_ok=True)

    def _read(self) -> str | None:
        """The recorded fingerprint (None: no record). A record that does not parse is set
        aside with its result, which is then evaluated again (its provenance is unknown)."""
        data = self._load()
        return None if data is None else data["fingerprint"]

    def _load(self) -> dict[str, Any] | None:
        """The record's content (None: no record); see :meth:`_read`."""
        for attempt in range(3):
            try:
                raw = self.path.read_bytes()
            except FileNotFoundError:
                return None
            try:
                data = yaml.safe_load(raw.decode("utf-8"))
            except (UnicodeDecodeError, yaml.YAMLError):
                data = None
            if is_whole(data):  # (not cut short, not edited: see qzhou_eval.task_records)
                return data
            if attempt < 2 and time.time() - self.path.stat().st_mtime < 2.0:
                time.sleep(0.5)  # maybe being written (filesystems without hard links)
                continue
            break
        self._set_aside()
        return None

    def _set_aside(self) -> None:
        for path in (self.path, self.result):
            try:
                moved = atomic.move_aside(path)
            except FileNotFoundError:
                continue
            logger.warning("%s was damaged or unverifiable: moved to %s", path, moved.name)

    def _set_aside_unrecorded(self) -> None:
        """A result without a record: what produced it is unknown, so it is not this run's."""
        self._set_result_aside("unrecorded", f"has no record ({self.path})")

    def _set_result_aside(self, label: str, why: str) -> None:
        """Move the result aside as ``<name>.<label>-<time>`` (its provenance is unknown: ``why``)
        and say so once."""
        try:
            moved = atomic.move_aside(self.result, label)
        except FileNotFoundError:  # another run set it aside first
            return
        logger.warning(
            "%s %s, so what produced it is unknown: moved aside as %s; evaluating %s again",
            self.result,
            why,
            moved.name,
            self.task,
        )

    def _set_aside_if_changed(self) -> None:
        """A result other than the one its record's run wrote: what produced it is unknown."""
        data = self._load()
        if data is None or self._vouches_for_result(data):
            return
        try:
            json.loads(self.result.read_bytes())
        except (OSError, ValueError):  # damaged (truncated...): the results folder says so
            return
        self._set_result_aside(
            "changed",
            f"is not the result its record ({self.path}) was written with (replaced or copied "
            "in after that run)",
        )

    def _replace_if_stale(self) -> bool:
        """Set aside another configuration's record that has no result and whose writer is
        gone; True if it was (or another run just did). Race-safe: the file renamed is checked
        to be the one judged stale; a fresh record renamed by mistake is put back."""
        try:
            seen = self.path.stat()
        except FileNotFoundError:
            return True
        writer = _writer(self._load())
        gone = atomic.process_gone(writer.get("host"), writer.get("pid"))
        if self.result.exists() or not (gone or atomic.is_stale(self.path)):
            return False
        try:
            moved = atomic.move_aside(self.path, "stale")
        except FileNotFoundError:
            return True
        if moved.stat().st_ino != seen.st_ino:  # another run replaced it in between: restore
            with contextlib.suppress(OSError):
                os.link(moved, self.path)
                moved.unlink()
            return not self.path.exists()
        logger.warning(
            "%s recorded a run of another configuration that left no %s result (killed before "
            "writing it): moved aside as %s",
            self.path,
            self.task,
            moved.name,
        )
        return True


@contextlib.contextmanager
def claimed(record: TaskRecord, overwrite: bool) -> Iterator[None]:
    """Around the evaluation of a record's task: the record is created before the result (a
    result never lacks its record), sealed with the result's digest once it is written, and
    removed again when the evaluation fails (no result: another configuration may run the
    task). This configuration's record left by a gone run is taken over (it names this process)
    and put back as found when the evaluation fails."""
    created = record.claim() if overwrite or not record.result.exists() else False
    found = None if created or record.result.exists() else record.take_over()
    undo = functools.partial(_undo_claim, record, created, found)
    _claims_underway[id(undo)] = undo
    try:
        yield
    except BaseException:
        undo()
        raise
    finally:
        _claims_underway.pop(id(undo), None)
    record.seal()


# The claims of evaluations under way in this process, each with its undoing: what a process
# that ends at once (a second Ctrl-C: ``os._exit``, no exception unwinds the evaluations) undoes
# on its way out (:func:`undo_claims_underway`).
_claims_underway: dict[int, Callable[[], None]] = {}


def _undo_claim(record: TaskRecord, created: bool, found: bytes | None) -> None:
    """The record of an evaluation that ends without its result: removed where this run
    created it, put back as found where it took it over. Best effort: the error on its way is
    the one to report (a read-only folder fails both); a record left without a result is
    replaced by the next run."""
    with contextlib.suppress(OSError):
        if created:
            record.release()
        elif found is not None:
            record.put_back(found)


def undo_claims_underway() -> None:
    """Undo the claims of every evaluation under way (see :func:`claimed`): for a process about
    to end without unwinding them; another run, on another node too, then finds the tasks free
    at once instead of a record to wait out."""
    for undo in list(_claims_underway.values()):
        with contextlib.suppress(Exception):  # (a record being written as the signal came)
            undo()
    _claims_underway.clear()


def record_for(
    folder: Path,
    spec: ModelSpec,
    recipe: Recipe,
    task: str,
    dim: int | None,
    *,
    precision: str = DEFAULT_PRECISION,
    extra: dict[str, Any] | None = None,
    data_source: dict[str, Any] | None = None,
    differs: Sequence[str] = (),
) -> TaskRecord:
    """The record of ``task`` at output size ``dim`` (None: the full size) and ``precision`` in
    ``folder``; ``extra``: further fields of its identity (the data's content when it is not the
    pinned one); ``differs``: what the configuration sets otherwise than the official one
    (recorded, not part of the identity).

    Releases before 0.2.0 recorded a sweep's full size as ``dim: <embed_dim>``; that is the same
    identity as no cut, so such a record is read as this one's."""
    extra = extra or {}
    aliases: tuple[str, ...] = ()
    if dim is None and spec.embed_dim is not None and precision == DEFAULT_PRECISION:
        aliases = (fingerprint({**task_fields(spec, recipe, task, spec.embed_dim), **extra}),)
    fields = {**task_fields(spec, recipe, task, dim, precision), **extra}
    return TaskRecord(
        folder,
        task,
        fields,
        recipe.name,
        data_source=data_source,
        aliases=aliases,
        differs=tuple(differs),
    )


# --- folders of qzhou-eval 0.1 ------------------------------------------------------------------


def migrate_legacy(folder: Path, spec: ModelSpec, recipe: Recipe, dim: int | None) -> None:
    """Turn a 0.1 folder record into per-task records when it is this run's configuration.

    Raises a one-line ConfigError when the folder's results came from another configuration.
    """
    legacy = folder / LEGACY_RECORD
    if not legacy.is_file():
        return
    try:
        old = yaml.safe_load(legacy.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        old = {}
    old_dim = None if old.get("dim") == spec.embed_dim else old.get("dim")  # full size = None
    if old.get("fingerprint") != legacy_fingerprint(spec, recipe) or old_dim != dim:
        raise ConfigError(
            f"{folder} holds results recorded by qzhou-eval 0.1 for another configuration (see "
            f"{legacy}); set experiment=<name> or runtime.results_dir=<another folder>"
        )
    for result in sorted(folder.glob("*.json")):
        if result.name == "model_meta.json" or atomic.is_temp_name(result.name):
            continue
        task = result.stem
        record = TaskRecord(folder, task, task_fields(spec, recipe, task, dim), recipe.name)
        atomic.create_exclusive(record.path, record.text())
    atomic.move_aside(legacy)
    logger.warning("%s: per-task records written; the 0.1 record was set aside", folder)


def legacy_fingerprint(spec: ModelSpec, recipe: Recipe) -> str | None:
    """The folder fingerprint qzhou-eval 0.1 recorded for this configuration, or None when 0.1
    could not have produced it (it knew only the float32 numerics, no packing and cosine)."""
    if spec.numerics != "float32" or spec.packing or spec.similarity != DEFAULT_SIMILARITY:
        return None
    tp = spec.token_prepending
    # 0.1 recorded every Token Prepending field, inclusive end, defaults 1..7 when off
    start, end = (tp.starting_index, tp.exiting_index - 1) if tp.enabled else (1, 7)
    model = {
        "name": spec.name,
        "revision": spec.revision,
        "backend": spec.backend,
        "attention": spec.attention,
        "pooling": spec.pooling,
        "dtype": spec.dtype,
        "attn_implementation": spec.attn_implementation,
        "max_length": spec.max_length,
        "padding_side": spec.padding_side,
        "truncation": spec.truncation,
        "token_prepending": {
            "enabled": tp.enabled,
            "placeholder": tp.placeholder,
            "start_layer": start,
            "end_layer": end,
        },
        "projection": spec.projection,
    }
    inputs = fingerprint({"model": model, "recipe": recipe.legacy_fields()})
    # 0.1's formula, kept only to read its records
    return hashlib.sha256(f"{inputs}|normalize={spec.normalize}".encode()).hexdigest()
