"""Write folders shaped like the Hugging Face dataset repos that mteb's official tasks load.

A mirror folder is what ``huggingface_hub.snapshot_download(repo_id, repo_type="dataset",
revision=..., local_dir=<mirror>/<org>__<name>)`` leaves on disk. The functions here write the same
files, with tiny rows, so that tests can run ``mteb.evaluate`` on official task objects without the
Hub. The layouts are the ones the real repos use at the revisions MTEB(eng, v2) / MTEB(cmn, v1) pin:

``split-files`` style, no README configs; ``datasets`` infers the splits from the file names
(``AbsTask.load_data`` -> ``load_dataset(path, revision=...)``):
    - ``"root-jsonl-gz"``: ``<split>.jsonl.gz`` at the repo root (``mteb/stsbenchmark-sts``,
      ``mteb/sts12-sts``...).
    - ``"data-parquet"``: ``data/<split>-00000-of-00001-<hash>.parquet`` (the ``C-MTEB/*`` STS
      repos: ``C-MTEB/AFQMC``, ``C-MTEB/LCQMC``, ``C-MTEB/ATEC``, ``C-MTEB/BQ``...).

``configs`` style: a README.md whose YAML front matter declares ``configs`` (what
``RetrievalDatasetLoader`` reads: ``corpus``, ``queries``, ``default`` or ``qrels`` for the
relevance judgements, optionally ``top_ranked`` for reranking candidate lists):
    - ``"beir"``: ``corpus.jsonl`` / ``queries.jsonl`` (split ``corpus`` / ``queries``, rows with
      ``_id``) and ``qrels/<split>.jsonl`` (float scores), plus an unreferenced
      ``qrels/<split>.tsv`` (``mteb/scidocs``, ``mteb/arguana``... BEIR uploads).
    - ``"parquet"``: ``<config>/<split>-00000-of-00001.parquet`` for every config, all under the
      eval split name, rows with ``id`` (what mteb's ``push_dataset_to_hub`` writes:
      ``mteb/AskUbuntuDupQuestions``, ``mteb/T2Reranking``, ``mteb/CMedQAv1-reranking``,
      ``mteb/T2Retrieval``...).

Every writer also adds ``.gitattributes`` and, with ``revision=...``, the
``.cache/huggingface/download/<file>.metadata`` files ``snapshot_download(local_dir=...)`` leaves
(first line: the commit hash), so a written folder is indistinguishable from a real download.

Entry points:
    - :func:`write_task_repo`: the repo of an official mteb task, in its real layout, inside a
      mirror (``<mirror>/<org>__<name>``); dispatches on the task type (STS, Retrieval,
      Reranking; other types raise NotImplementedError).
    - :func:`write_sts_repo`, :func:`write_retrieval_repo`: one repo folder from plain Python data.
    - :func:`write_split_files_repo`, :func:`write_configs_repo`, :func:`write_table`: the low-level
      pieces.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from qzhou_eval.mirror import mirror_folder
from qzhou_eval.mirror.repos import hub_dataset

Rows = Sequence[Mapping[str, Any]]
SplitStyle = Literal["root-jsonl-gz", "data-parquet"]
ConfigStyle = Literal["beir", "parquet"]

# The layout of each repo, from the Hub's file listings and dataset cards (verified: the
# stsbenchmark / sts12 / biosses / sickr file lists, the C-MTEB uploads' data/ folders, the
# mteb/scidocs card, the staging repo of mteb/AskUbuntuDupQuestions; the other entries follow the
# uploader's pattern). Repos not listed get their task type's default (see write_task_repo).
KNOWN_STYLES: dict[str, SplitStyle | ConfigStyle] = {
    "mteb/stsbenchmark-sts": "root-jsonl-gz",
    "mteb/sts12-sts": "root-jsonl-gz",
    "mteb/biosses-sts": "root-jsonl-gz",
    "mteb/sickr-sts": "root-jsonl-gz",
    "C-MTEB/AFQMC": "data-parquet",
    "C-MTEB/LCQMC": "data-parquet",
    "C-MTEB/ATEC": "data-parquet",
    "C-MTEB/BQ": "data-parquet",
    "mteb/scidocs": "beir",
    "mteb/arguana": "beir",
    "mteb/AskUbuntuDupQuestions": "parquet",
    "mteb/T2Reranking": "parquet",
    "mteb/CMedQAv1-reranking": "parquet",
    "mteb/T2Retrieval": "parquet",
}

GITATTRIBUTES = (
    "*.parquet filter=lfs diff=lfs merge=lfs -text\n*.gz filter=lfs diff=lfs merge=lfs -text\n"
)


def write_table(path: Path, rows: Rows) -> Path:
    """Write ``rows`` to ``path`` in the format its suffix names: parquet, jsonl, jsonl.gz, tsv."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [dict(r) for r in rows]
    name = path.name
    if name.endswith(".parquet"):
        pq.write_table(pa.Table.from_pylist(rows), path)
    elif name.endswith(".jsonl.gz"):
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    elif name.endswith(".jsonl"):
        with path.open("w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    elif name.endswith(".tsv"):
        with path.open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="\t")
            writer.writeheader()
            writer.writerows(rows)
    else:
        raise ValueError(f"write_table: unsupported file type {name!r}")
    return path


def write_readme(folder: Path, configs: Mapping[str, Mapping[str, str]]) -> Path:
    """README.md whose front matter declares ``configs``: config -> split -> file path or glob."""
    front = {
        "configs": [
            {
                "config_name": config,
                "data_files": [{"split": split, "path": path} for split, path in splits.items()],
            }
            for config, splits in configs.items()
        ]
    }
    text = "---\n" + yaml.safe_dump(front, sort_keys=False) + "---\n\n# Test repo\n"
    path = folder / "README.md"
    path.write_text(text, encoding="utf-8")
    return path


def write_download_metadata(folder: Path, revision: str) -> None:
    """What ``snapshot_download(local_dir=folder)`` keeps per file: commit hash, etag, timestamp."""
    meta_root = folder / ".cache" / "huggingface" / "download"
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = file.relative_to(folder)
        if rel.parts[0] == ".cache":
            continue
        etag = hashlib.sha256(file.read_bytes()).hexdigest()
        meta = meta_root / f"{rel.as_posix()}.metadata"
        meta.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text(f"{revision}\n{etag}\n1712656091.123\n", encoding="utf-8")


def _finish(folder: Path, revision: str | None) -> Path:
    (folder / ".gitattributes").write_text(GITATTRIBUTES, encoding="utf-8")
    if revision is not None:
        write_download_metadata(folder, revision)
    return folder


def write_split_files_repo(
    folder: Path,
    splits: Mapping[str, Rows],
    *,
    style: SplitStyle,
    revision: str | None = None,
) -> Path:
    """A repo without README configs: one file per split, named so ``datasets`` infers the split."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        if style == "root-jsonl-gz":
            write_table(folder / f"{split}.jsonl.gz", rows)
        else:
            digest = hashlib.sha1(split.encode()).hexdigest()[:16]
            write_table(folder / "data" / f"{split}-00000-of-00001-{digest}.parquet", rows)
    return _finish(folder, revision)


def write_configs_repo(
    folder: Path,
    configs: Mapping[str, Mapping[str, Rows]],
    *,
    files: Mapping[str, Mapping[str, str]],
    revision: str | None = None,
) -> Path:
    """A repo whose README declares ``configs``; ``files[config][split]`` is each file's path."""
    folder.mkdir(parents=True, exist_ok=True)
    for config, splits in configs.items():
        for split, rows in splits.items():
            write_table(folder / files[config][split], rows)
    write_readme(folder, files)
    return _finish(folder, revision)


def write_sts_repo(
    folder: Path,
    pairs: Sequence[tuple[str, str, float]],
    *,
    splits: Sequence[str] = ("test",),
    style: SplitStyle = "root-jsonl-gz",
    revision: str | None = None,
    label_column: str = "score",
) -> Path:
    """An STS repo: columns sentence1, sentence2 and ``label_column`` (what AbsTaskSTS reads).

    Every split gets the same ``pairs``; list the splits the real repo has (the loader reads all of
    them, the task evaluates its eval splits).
    """
    rows = [{"sentence1": a, "sentence2": b, label_column: s} for a, b, s in pairs]
    return write_split_files_repo(
        folder, dict.fromkeys(splits, rows), style=style, revision=revision
    )


def write_retrieval_repo(
    folder: Path,
    *,
    split: str,
    corpus: Mapping[str, str | tuple[str, str]],
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    top_ranked: Mapping[str, Sequence[str]] | None = None,
    style: ConfigStyle = "parquet",
    qrels_config: Literal["default", "qrels"] = "default",
    revision: str | None = None,
) -> Path:
    """A retrieval or reranking repo: corpus, queries, qrels and (reranking) ``top_ranked``.

    ``corpus`` maps a document id to its text or to ``(title, text)``; ``qrels`` maps a query id to
    ``{doc id: relevance}``; ``top_ranked`` maps a query id to its candidate document ids.
    """
    id_col = "_id" if style == "beir" else "id"
    corpus_rows = [
        {id_col: did, "title": doc[0], "text": doc[1]}
        if isinstance(doc, tuple)
        else {id_col: did, "title": "", "text": doc}
        for did, doc in corpus.items()
    ]
    query_rows = [{id_col: qid, "text": text} for qid, text in queries.items()]
    qrel_rows = [
        {"query-id": qid, "corpus-id": did, "score": score}
        for qid, docs in qrels.items()
        for did, score in docs.items()
    ]
    if style == "beir":
        # The BEIR uploads also carry qrels/<split>.tsv, which no config names: datasets picks one
        # builder per repo from the first config's files, so the configs must all be jsonl.
        write_table(folder / "qrels" / f"{split}.tsv", qrel_rows)
        qrel_rows = [{**row, "score": float(row["score"])} for row in qrel_rows]
        configs: dict[str, dict[str, Rows]] = {
            qrels_config: {split: qrel_rows},
            "corpus": {"corpus": corpus_rows},
            "queries": {"queries": query_rows},
        }
        files: dict[str, dict[str, str]] = {
            qrels_config: {split: f"qrels/{split}.jsonl"},
            "corpus": {"corpus": "corpus.jsonl"},
            "queries": {"queries": "queries.jsonl"},
        }
    else:
        configs = {
            "corpus": {split: corpus_rows},
            "queries": {split: query_rows},
            qrels_config: {split: qrel_rows},
        }
        files = {c: {split: f"{c}/{split}-00000-of-00001.parquet"} for c in configs}
    if top_ranked is not None:
        configs["top_ranked"] = {
            split: [{"query-id": q, "corpus-ids": list(ids)} for q, ids in top_ranked.items()]
        }
        files["top_ranked"] = {
            split: f"top_ranked/{split}.jsonl"
            if style == "beir"
            else f"top_ranked/{split}-00000-of-00001.parquet"
        }
    return write_configs_repo(folder, configs, files=files, revision=revision)


def write_task_repo(
    mirror_dir: Path,
    task: Any,
    *,
    snapshot_metadata: bool = True,
    style: SplitStyle | ConfigStyle | None = None,
    **data: Any,
) -> Path:
    """Write ``task``'s repo into ``mirror_dir`` in the layout the real repo has; return the folder.

    ``data`` is what :func:`write_sts_repo` (``pairs=...``, for STS tasks) or
    :func:`write_retrieval_repo` (``corpus=..., queries=..., qrels=..., top_ranked=...``, for
    Retrieval and Reranking tasks) take; the split is the task's first eval split (STS: all its
    eval splits) unless ``split=``/``splits=`` is given. With ``snapshot_metadata`` the folder
    also gets the ``.cache/huggingface/download`` metadata naming the task's pinned revision.
    """
    dataset = hub_dataset(task)  # the Hub repo, even once the task points at a mirror
    repo_id = dataset["path"]
    revision = dataset["revision"] if snapshot_metadata else None
    folder = mirror_folder(mirror_dir, repo_id)
    kind = task.metadata.type
    style = style or KNOWN_STYLES.get(repo_id)
    if kind == "STS":
        data.setdefault("splits", list(task.eval_splits))
        default = "data-parquet" if repo_id.startswith("C-MTEB/") else "root-jsonl-gz"
        return write_sts_repo(folder, style=style or default, revision=revision, **data)
    if kind in ("Retrieval", "Reranking"):
        data.setdefault("split", task.eval_splits[0])
        return write_retrieval_repo(folder, style=style or "parquet", revision=revision, **data)
    raise NotImplementedError(f"write_task_repo: no writer for task type {kind!r}")
