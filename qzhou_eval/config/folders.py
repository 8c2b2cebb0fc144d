"""Folders a command writes: checked before anything loads, named when a write fails mid-run."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from qzhou_eval import atomic
from qzhou_eval.errors import ConfigError, raising_packages

# Config keys that name folders the apps write to, for naming the key in a write error.
WRITTEN_FOLDER_KEYS = ("runtime.results_dir", "runtime.store_dir", "data.mirror", "out_dir")


class FolderNotWritable(ConfigError):
    """A folder exists (or can be made) but cannot be written: read-only, no permission, full."""


def check_writable_folder(key: str, folder: Path) -> list[Path]:
    """Create ``folder`` if needed and write, fsync and remove a probe file in it; return the
    folders it created, outermost first (a run refused after all removes them again:
    :func:`remove_empty`).

    A ConfigError names ``key`` and the folder: a file where the folder should be, a read-only
    mount, no permission, a full disk or quota. Nothing it created is left then.
    """
    folder = Path(folder)
    check_folder_place(key, folder)
    created = [f for f in (folder, *folder.parents) if not f.exists()][::-1]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic.probe(folder)
    except (FileExistsError, NotADirectoryError):
        remove_empty(created)
        raise ConfigError(
            f"{key}={folder}: a file is in the way of this folder; point {key} at a folder"
        ) from None
    except OSError as e:
        remove_empty(created)
        raise FolderNotWritable(f"{key}={folder} is not writable: {e.strerror or e}") from None
    return created


def check_folder_place(key: str, folder: Path) -> None:
    """A ConfigError naming ``key`` where no folder can be at ``folder``: a file is there, or
    in the way above it. Nothing is read but the paths, nothing is written."""
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{key}={folder} is a file, not a folder; point {key} at a folder")
    above = next((p for p in folder.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise ConfigError(
            f"{key}={folder}: a file is in the way of this folder ({above}); point {key} at a "
            "folder"
        )


# What a run writes in the folder of one run (a revision's or an experiment's), not in the
# results folder above it (mteb's layout; the records and settings are this harness's).
_RUN_FOLDER_FILES = ("model_meta.json", "qzhou_eval_records", "run_settings.jsonl")


def check_results_place(results_dir: Path, store_dir: Path | None) -> None:
    """A ConfigError where ``runtime.results_dir`` is not where a results folder can be: in
    the embedding store, or one run's or one model's folder inside a results folder (mteb
    would nest a second results tree in it, which no report of the first one finds)."""
    from qzhou_eval.store.disk import KEYS

    here = Path(results_dir).expanduser().resolve()
    if store_dir is not None:
        store = Path(store_dir).expanduser().resolve()
        # the store itself, or inside one configuration's folder of it (not any folder below
        # a store_dir of ".": the store reads only its configurations' folders)
        inside = store in here.parents and any(
            (store / here.relative_to(store).parts[0]).glob(f"*{KEYS}")
        )
        if here == store or inside:
            raise ConfigError(
                f"runtime.results_dir={results_dir} is in the embedding store "
                f"(runtime.store_dir={store_dir}): give the results a folder of their own"
            )
    if not here.is_dir():
        return
    mark = next((m for m in _RUN_FOLDER_FILES if (here / m).exists()), None)
    what = f"one run's folder inside a results folder (it holds {mark})"
    if mark is None:
        with contextlib.suppress(OSError):
            inner = (c for c in here.iterdir() if c.is_dir())
            mark = next((m for c in inner for m in _RUN_FOLDER_FILES if (c / m).exists()), None)
        what = f"one model's folder inside a results folder (its runs hold {mark})"
    if mark is not None:
        raise ConfigError(
            f"runtime.results_dir={results_dir} is {what}: point runtime.results_dir at the "
            "results folder above it"
        )


# Bytes a file or folder name may have (ext4, xfs, btrfs, NTFS: 255): a longer one fails every
# call that names it, even a lookup (ENAMETOOLONG), not only a write.
NAME_MAX = 255


def check_name_lengths(key: str, value: str | os.PathLike[str], names: Iterable[str] = ()) -> None:
    """A ConfigError naming ``key`` where a folder name in ``value`` (or one of ``names``, the
    folders it makes: a model's results folder) is longer than :data:`NAME_MAX` bytes."""
    for name in (*Path(value).parts, *names):
        size = len(os.fsencode(name))
        if size > NAME_MAX:
            raise ConfigError(
                f"{key}={shown_value(value)} makes a folder name of {size} bytes "
                f"({name[:24]}...); file systems allow {NAME_MAX}: shorten it"
            )


def shown_value(value: str | os.PathLike[str]) -> str:
    """A long value cut for an error line (its start and end kept)."""
    text = str(value)
    return text if len(text) <= 80 else f"{text[:40]}...{text[-20:]}"


def remove_empty(folders: Iterable[Path]) -> None:
    """Remove ``folders`` (outermost first, as created), innermost first, where still empty."""
    for folder in reversed(list(folders)):
        with contextlib.suppress(OSError):
            folder.rmdir()


def check_readable_folder(key: str, folder: Path, why: str) -> None:
    """A ConfigError naming ``key`` unless ``folder`` is a folder this process may list and
    read (it is only read: a read-only mount is fine). ``why``: what is read there."""
    folder = Path(folder)
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise ConfigError(f"{key}={folder} {what}; {why}")
    if not os.access(folder, os.R_OK | os.X_OK):
        raise ConfigError(f"{key}={folder} cannot be read (no permission); {why}")


def key_of_path(cfg: DictConfig, path: Path | str) -> tuple[str, str] | None:
    """``(key, value)`` of the folder key in ``cfg`` that ``path`` lies under, if any."""
    target = Path(path).expanduser().absolute()
    for key, value in _folder_values(cfg, WRITTEN_FOLDER_KEYS):
        folder = Path(value).expanduser().absolute()
        if target == folder or folder in target.parents:
            return key, value
    return None


# Libraries that write caches under the home folder, and the variable that moves each one.
CACHE_VARIABLES = {
    "mteb": "MTEB_CACHE",
    "datasets": "HF_HOME",
    "huggingface_hub": "HF_HOME",
    "transformers": "HF_HOME",
    "sentence_transformers": "HF_HOME",
    "torch": "TORCH_HOME",
    "triton": "TRITON_CACHE_DIR",
    "matplotlib": "MPLCONFIGDIR",
}


def cache_writer(error: BaseException, path: Path | str) -> str | None:
    """``mteb writes its cache there: set MTEB_CACHE=...`` for a write under the home folder (or
    ``XDG_CACHE_HOME``) that failed inside a library; None for any other write.

    The library is the innermost frame of the traceback that is neither the standard library nor
    this package (a failed ``mkdir(parents=True)`` names only the first missing folder,
    e.g. ``~/.cache``, so the path alone does not tell).
    """
    target = Path(path).expanduser().absolute()
    homes = [Path.home(), Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")]
    if not any(target == h or h in target.parents for h in homes):
        return None
    library = next((p for p in reversed(raising_packages(error)) if p in CACHE_VARIABLES), None)
    if library is None:
        return "a library writes its cache there: set XDG_CACHE_HOME (or HOME) to a writable folder"
    variable = CACHE_VARIABLES[library]
    return f"{library} writes its cache there: set {variable} to a writable folder"


def _folder_values(cfg: DictConfig, keys: Iterable[str]) -> Iterable[tuple[str, str]]:
    for key in keys:
        try:
            value = OmegaConf.select(cfg, key, default=None)
        except Exception:  # an interpolation that does not resolve: not a folder we wrote
            continue
        if isinstance(value, str | os.PathLike) and str(value):
            yield key, str(value)
