"""Does a mirror folder look like a complete download of a dataset repo at a given revision?

The checks only stat and read small files (no dataset is parsed), so checking a whole benchmark
before a run costs milliseconds. A folder is accepted when all of these hold:

- it exists and holds at least one data file (parquet, json/jsonl, csv/tsv, arrow, txt, possibly
  compressed) outside hidden folders;
- no data file is a git-lfs pointer (a ``git clone`` without ``git lfs``);
- ``snapshot_download`` left no ``*.incomplete`` file (an interrupted download);
- every data-file pattern the README's ``configs`` declares matches at least one file (so a
  retrieval repo has its corpus, queries, qrels and, for reranking, ``top_ranked``); without
  README configs, every split the task reads has a file named after it (``datasets``' own
  split-from-file-name rules);
- every config the task loads by name is declared (``repos.required_configs``):
  retrieval and reranking read ``corpus``, ``queries`` and the qrels (``default``/``qrels``) as
  configs, reranking also ``top_ranked``, so a BEIR archive unpacked as it is (``corpus.jsonl``,
  ``queries.jsonl``, ``qrels/test.tsv``, no README configs) is refused; other multilingual tasks
  read a config per subset, or the ``lang`` column of the default config (``fast_loading``);
- the revision it records equals the pinned one: the marker's revision if ``fill_mirror`` wrote
  the folder, else the commit hash in ``snapshot_download``'s per-file metadata; a folder that
  records no revision at all (files copied by hand) is accepted as is;
- every file the marker lists is still there.

The marker is not required: mirrors filled with plain ``snapshot_download`` or
``huggingface-cli download --local-dir`` are accepted on the evidence above.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import yaml
from datasets.data_files import EmptyDatasetError, get_data_patterns

from qzhou_eval.config.hub import COMMIT, DOWNLOAD_METADATA, download_commits
from qzhou_eval.mirror.layout import read_marker

DATA_SUFFIXES = (".parquet", ".jsonl", ".json", ".ndjson", ".csv", ".tsv", ".arrow", ".txt")
COMPRESSION_SUFFIXES = ("", ".gz", ".bz2", ".xz", ".zst", ".lz4", ".zip")
_LFS_POINTER = b"version https://git-lfs.github.com/spec/"


def is_data_file(path: Path) -> bool:
    """Whether ``path`` is a file ``datasets`` can load rows from (by its name)."""
    name = path.name.lower()
    return any(name.endswith(d + c) for d in DATA_SUFFIXES for c in COMPRESSION_SUFFIXES)


def data_files(folder: Path) -> list[Path]:
    """The data files of a repo folder, hidden folders (``.cache``, ``.git``) left out."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and is_data_file(p)
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def repo_problem(
    folder: Path,
    revision: str,
    splits: Sequence[str] = (),
    *,
    configs: Sequence[tuple[str, ...]] = (),
    lang_column: bool = False,
) -> str | None:
    """Why ``folder`` is not a complete copy of its repo at ``revision``; None when it is.

    ``splits``: the splits the task reads; checked for repos without README ``configs``, whose
    splits ``datasets`` infers from the file names. ``configs``: the configs the task loads by
    name, each as its alternatives (see :func:`~qzhou_eval.mirror.repos.required_configs`);
    ``lang_column``: the task splits the default config by its ``lang`` column. The reason
    completes the sentence "the mirror folder <folder> ...".
    """
    if not folder.is_dir():
        return "does not exist"
    return (
        _marker_problem(folder, revision)
        or _incomplete_problem(folder)
        or _revision_problem(folder, revision)
        or _data_problem(folder)
        or _readme_problem(folder)
        or _configs_problem(folder)
        or _needed_configs_problem(folder, configs)
        or _splits_problem(folder, splits)
        or _lang_problem(folder, lang_column)
    )


def _marker_problem(folder: Path, revision: str) -> str | None:
    marker = read_marker(folder)
    if marker is None:
        return None
    if marker.get("revision") != revision:
        return f"holds revision {marker.get('revision')} but the task pins {revision}"
    missing = [f for f in marker.get("files", []) if not (folder / f).is_file()]
    if missing:
        return f"lacks {len(missing)} file(s) its marker lists, e.g. {missing[0]}"
    return None


def _incomplete_problem(folder: Path) -> str | None:
    meta_root = folder / DOWNLOAD_METADATA
    if meta_root.is_dir() and next(meta_root.rglob("*.incomplete"), None) is not None:
        return "holds an interrupted download (*.incomplete files)"
    return None


def _revision_problem(folder: Path, revision: str) -> str | None:
    """Compare the commit hash snapshot_download recorded per file with the pinned revision."""
    if not COMMIT.match(revision):
        return None
    other = sorted(download_commits(folder) - {revision})
    return f"holds revision {other[0]} but the task pins {revision}" if other else None


def _data_problem(folder: Path) -> str | None:
    files = data_files(folder)
    if not files:
        return "holds no data files"
    for file in files:
        if file.stat().st_size < 1024:
            with file.open("rb") as f:
                if f.read(len(_LFS_POINTER)) == _LFS_POINTER:
                    rel = file.relative_to(folder).as_posix()
                    return f"holds a git-lfs pointer instead of data ({rel})"
    return None


def _configs_problem(folder: Path) -> str | None:
    for config, pattern in readme_data_files(folder):
        if next(folder.glob(pattern.lstrip("/")), None) is None:
            return f"lacks the files of config {config!r} ({pattern})"
    return None


def _needed_configs_problem(folder: Path, configs: Sequence[tuple[str, ...]]) -> str | None:
    """Every config the task loads by name is declared (without README configs, ``datasets``
    knows only ``default``)."""
    declared = {name for name, _ in readme_data_files(folder)}
    missing = [
        alternatives
        for alternatives in configs
        if not set(alternatives) & (declared or {"default"})
    ]
    if not missing:
        return None
    names = ", ".join(" or ".join(repr(a) for a in alternatives) for alternatives in missing)
    if not declared:
        return (
            f"declares no configs (no README.md front matter), but the task loads {names} as "
            "configs; a BEIR archive unpacked as it is has none: fill the mirror with the "
            "command below instead"
        )
    found = ", ".join(sorted(declared))
    return f"lacks the config(s) {names} the task loads (README.md declares {found})"


def _lang_problem(folder: Path, needed: bool) -> str | None:
    """The default config's rows carry the ``lang`` column the task splits its subsets by."""
    if not needed:
        return None
    patterns = [p for name, p in readme_data_files(folder) if name == "default"]
    files = sorted({f for p in patterns for f in folder.glob(p.lstrip("/"))}) or data_files(folder)
    columns = _columns(files[0]) if files else None
    if columns is None or "lang" in columns:
        return None  # a format whose columns are not read cheaply is left to the loader
    rel = files[0].relative_to(folder).as_posix()
    return (
        f"has no 'lang' column in {rel} (columns: {', '.join(columns)}); the task splits its "
        "language subsets by it"
    )


def _columns(path: Path) -> list[str] | None:
    """The column names of a data file's first row (parquet schema, JSON lines, CSV/TSV header)."""
    import gzip
    import json

    name = path.name.lower()
    try:
        if name.endswith(".parquet"):
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as f:
            first = f.readline()
        stem = name.removesuffix(".gz")
        if stem.endswith((".jsonl", ".ndjson", ".json")):
            row = json.loads(first)
            return list(row) if isinstance(row, dict) else None
        if stem.endswith((".csv", ".tsv")):
            return [
                c.strip()
                for c in first.rstrip("\r\n").split("\t" if stem.endswith(".tsv") else ",")
            ]
    except (OSError, ValueError, EOFError):
        return None  # damaged: the content check names it
    return None


def _splits_problem(folder: Path, splits: Sequence[str]) -> str | None:
    """Without README configs, each needed split must match a file the way datasets names them."""
    if not splits or readme_data_files(folder):
        return None
    try:
        found = {str(split) for split in get_data_patterns(str(folder))}
    except EmptyDatasetError:
        return "holds no data files"
    missing = [split for split in splits if split not in found]
    if missing:
        return f"lacks the files of split {missing[0]!r} (found: {', '.join(sorted(found))})"
    return None


def _readme_problem(folder: Path) -> str | None:
    """The README's YAML front matter (what ``datasets`` reads the configs from) must parse."""
    try:
        _front_matter(folder)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 2})" if mark is not None else ""  # (after the '---')
        return f"has a README.md whose YAML front matter does not parse{where}"
    return None


def _front_matter(folder: Path) -> object:
    """The README's YAML front matter (None: no README or none in it); raises YAMLError."""
    readme = folder / "README.md"
    if not readme.is_file():
        return None
    text = readme.read_text(encoding="utf-8", errors="replace")
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, re.DOTALL)
    return yaml.safe_load(match.group(1)) if match else None


def readme_data_files(folder: Path) -> list[tuple[str, str]]:
    """(config name, data-file pattern) pairs the README's YAML front matter declares."""
    try:
        front = _front_matter(folder)
    except yaml.YAMLError:
        return []
    configs = front.get("configs") if isinstance(front, dict) else None
    pairs: list[tuple[str, str]] = []
    for entry in configs if isinstance(configs, list) else []:
        if not isinstance(entry, dict):
            continue
        name = str(entry.get("config_name", "default"))
        pairs.extend((name, pattern) for pattern in _patterns(entry.get("data_files")))
    return pairs


def _patterns(data_files: object) -> list[str]:
    """Flatten a ``data_files`` entry: a str, a list of str, or a list of {split, path}."""
    if isinstance(data_files, str):
        return [data_files]
    if isinstance(data_files, dict):
        return _patterns(data_files.get("path"))
    if isinstance(data_files, list):
        return [p for item in data_files for p in _patterns(item)]
    return []
