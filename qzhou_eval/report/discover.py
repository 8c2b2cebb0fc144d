"""Find the runs in results folders laid out as mteb writes them.

Layout: ``<results_dir>/<org>__<model>/<revision>/<Task>.json`` and, for experiments (MRL
dimensions are ``embed_dim_<d>``), ``<revision>/experiments/<experiment>/<Task>.json``.
``results_dir`` is what mteb's ``ResultCache`` calls ``cache_path / "results"``.

This is written by hand rather than through ``mteb.ResultCache`` because the cache wants its own
root (``<root>/results``), names experiments after ``experiment_kwargs`` in a ``model_meta.json``
and skips experiment folders without one; the report needs the folder names as they are.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from qzhou_eval.errors import UserError
from qzhou_eval.precision import DEFAULT_PRECISION, PRECISIONS
from qzhou_eval.store.disk import KEYS

EXPERIMENTS_FOLDER = "experiments"
MODEL_META = "model_meta.json"
_DIM_EXPERIMENT = re.compile(r"embed_dim_(\d+)")
_DTYPE_PART = "output_dtypes_"  # mteb's CompressionWrapper: experiment_kwargs["output_dtypes"]


@dataclass(frozen=True, order=True)
class RunId:
    """One row of a leaderboard table: a model, its revision and an optional experiment."""

    model: str
    revision: str
    experiment: str | None = None

    def __str__(self) -> str:
        text = f"{self.model}@{self.revision}"
        return f"{text} [{self.experiment}]" if self.experiment else text


@dataclass(frozen=True)
class RunDir:
    """Where a run's task files are, plus what its ``model_meta.json`` says about it. A run
    found in several results folders (the shards of a sweep, each written on its own node) is
    one run: ``also`` holds the folders after the first."""

    id: RunId
    path: Path
    embed_dim: int | None = None
    also: tuple[Path, ...] = ()

    @property
    def paths(self) -> tuple[Path, ...]:
        return (self.path, *self.also)

    @property
    def source(self) -> str:
        """The run's folder(s), as the report names them."""
        return " + ".join(str(p) for p in self.paths)


def model_dir_name(model: str) -> str:
    """The folder name mteb uses for a model name (``org/name`` -> ``org__name``)."""
    return model.replace("/", "__").replace(" ", "_")


def run_path(results_dir: Path, model: str, revision: str, experiment: str | None = None) -> Path:
    """The folder holding the task files of one run."""
    path = Path(results_dir) / model_dir_name(model) / revision
    return path / EXPERIMENTS_FOLDER / experiment if experiment else path


def experiment_dim(experiment: str | None) -> int | None:
    """The MRL output dimension an experiment name stands for (``embed_dim_256`` -> 256)."""
    match = _DIM_EXPERIMENT.fullmatch(experiment or "")
    return int(match.group(1)) if match else None


def experiment_point(experiment: str | None) -> tuple[int | None, str, str | None]:
    """The sweep point an experiment name stands for, (dimension, precision, the rest): mteb
    names it from ``embed_dim`` and ``output_dtypes`` (``embed_dim_256__output_dtypes_int8``;
    dimension None: the full size); the rest is what else the name holds (``variant_<id>``, the
    user's ``experiment_<name>``; None when nothing), the configuration the point belongs to.
    The base run is (None, float32, None)."""
    dim, precision, rest = None, DEFAULT_PRECISION, []
    for part in experiment.split("__") if experiment else []:
        if (match := _DIM_EXPERIMENT.fullmatch(part)) is not None:
            dim = int(match.group(1))
        elif part.startswith(_DTYPE_PART) and part[len(_DTYPE_PART) :] in PRECISIONS:
            precision = part[len(_DTYPE_PART) :]
        else:
            rest.append(part)
    return dim, precision, "__".join(rest) or None


def run_dir(results_dir: Path, model: str, revision: str, experiment: str | None = None) -> RunDir:
    """The run folder of a known run, with the output dimension its name or model_meta states."""
    path = run_path(results_dir, model, revision, experiment)
    dim = experiment_dim(experiment) or _embed_dim(_read_meta(path))
    return RunDir(RunId(model, revision, experiment), path, dim)


def task_files(path: Path) -> list[Path]:
    """The task result files in a run folder (``model_meta.json`` is not one)."""
    if not path.is_dir():
        return []
    return sorted(p for p in path.glob("*.json") if p.name != MODEL_META and p.is_file())


def resolve_results_dirs(value: str | Path | Iterable[str | Path]) -> list[Path]:
    """The results folder(s) a config value names; each must exist.

    A folder that holds ``results/`` but no runs itself (an mteb cache root) is read through its
    ``results/`` folder.
    """
    items = [value] if isinstance(value, (str, Path)) else list(value)
    if not items:
        raise UserError("results_dir is empty; name a folder in mteb's results layout")
    dirs = []
    for item in items:
        path = Path(str(item)).expanduser()
        if not path.is_dir():
            raise UserError(f"results_dir {str(path)!r} is not a folder")
        if not _has_runs(path) and _has_runs(path / "results"):
            path = path / "results"
        if not any(path.resolve() == d.resolve() for d in dirs):  # (named twice: read once)
            dirs.append(path)
    return dirs


def discover_runs(
    results_dirs: Sequence[Path],
    models: Sequence[str] | None = None,
    experiments: str | Sequence[str] = "all",
) -> list[RunDir]:
    """Every run in ``results_dirs``, filtered by model pattern and experiment selection.

    ``models``: names (``org/name``), glob patterns (``Kingsoft-LLM/*``) or ``name@revision``.
    ``experiments``: ``"all"`` (each experiment is its own run), ``"none"`` (base runs only) or a
    list of experiment names (base runs plus those).
    """
    found: dict[RunId, RunDir] = {}
    seen: set[str] = set()  # the experiments of the runs of the models asked for
    for results_dir in results_dirs:
        for run in _runs_in(Path(results_dir)):
            if run.id.experiment is not None and _wanted(run.id, models, "all"):
                seen.add(run.id.experiment)
            if not _wanted(run.id, models, experiments):
                continue
            earlier = found.get(run.id)
            if earlier is not None and run.path not in earlier.paths:
                if None not in (earlier.embed_dim, run.embed_dim) and (
                    earlier.embed_dim != run.embed_dim
                ):
                    raise UserError(
                        f"{run.id} is in two results folders with different output sizes "
                        f"({earlier.embed_dim} and {run.embed_dim}): {earlier.path} and "
                        f"{run.path}; report them apart"
                    )
                run = replace(
                    earlier,
                    embed_dim=earlier.embed_dim or run.embed_dim,
                    also=(*earlier.also, run.path),
                )
            found[run.id] = run
    unknown = [] if isinstance(experiments, str) else sorted(set(experiments) - seen)
    if unknown:  # (a name mistyped would otherwise leave the base runs only, silently)
        held = ", ".join(sorted(seen)) or "none"
        raise UserError(f"experiments: no run has experiment {unknown} (these runs have: {held})")
    return [found[k] for k in sorted(found, key=_sort_key)]


def _sort_key(run: RunId) -> tuple[str, str, str]:
    return (run.model, run.revision, run.experiment or "")


def _has_runs(path: Path) -> bool:
    return path.is_dir() and any(True for _ in _runs_in(path))


def _runs_in(results_dir: Path) -> Iterable[RunDir]:
    for model_dir in sorted(p for p in results_dir.iterdir() if p.is_dir()):
        for rev_dir in sorted(p for p in model_dir.iterdir() if p.is_dir()):
            if any(rev_dir.glob(f"*{KEYS}")):  # an embedding store kept in the results folder
                continue  # (runtime.store_dir=<results_dir>/...): its settings.json is no task
            meta = _read_meta(rev_dir)
            model = str(meta.get("name") or model_dir.name.replace("__", "/"))
            if task_files(rev_dir):
                yield RunDir(RunId(model, rev_dir.name), rev_dir, _embed_dim(meta))
            exp_root = rev_dir / EXPERIMENTS_FOLDER
            if not exp_root.is_dir():
                continue
            for exp_dir in sorted(p for p in exp_root.iterdir() if p.is_dir()):
                if task_files(exp_dir):
                    dim = experiment_dim(exp_dir.name) or _embed_dim(_read_meta(exp_dir))
                    yield RunDir(RunId(model, rev_dir.name, exp_dir.name), exp_dir, dim)


def meta_problem(folder: Path) -> str | None:
    """Why a run folder's ``model_meta.json`` is not one mteb's loaders read, or None: mteb's
    ``ResultCache`` skips a folder without one, and fails on one that is not a JSON object."""
    path = folder / MODEL_META
    if not path.is_file():
        return f"no {MODEL_META}"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"its {MODEL_META} is not JSON"
    return None if isinstance(data, dict) else f"its {MODEL_META} is not a JSON object"


def _read_meta(folder: Path) -> dict[str, object]:
    path = folder / MODEL_META
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _embed_dim(meta: dict[str, object]) -> int | None:
    kwargs = meta.get("experiment_kwargs")
    value = kwargs.get("embed_dim") if isinstance(kwargs, dict) else None
    value = value if value is not None else meta.get("embed_dim")
    return value if isinstance(value, int) else None


def _wanted(run: RunId, models: Sequence[str] | None, experiments: str | Sequence[str]) -> bool:
    if models is not None and not any(_matches(run, pattern) for pattern in models):
        return False
    if run.experiment is None:
        return True
    if isinstance(experiments, str):
        return experiments == "all"
    return run.experiment in experiments


def _matches(run: RunId, pattern: str) -> bool:
    name, _, revision = str(pattern).partition("@")
    names = (run.model, model_dir_name(run.model))
    if not any(fnmatch.fnmatchcase(n, name) for n in names):
        return False
    if not revision or fnmatch.fnmatchcase(run.revision, revision):
        return True
    return not re.search(r"[*?\[]", revision) and same_revision(revision, run.revision)


def same_revision(given: str, revision: str) -> bool:
    """Whether ``given`` names ``revision``: the same, or a commit's short form, as the run's
    first line prints it (git's: 7 or more characters)."""
    return revision == given or (len(given) >= 7 and revision.startswith(given))
