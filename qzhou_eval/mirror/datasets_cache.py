"""Mirrored data meets ``datasets``' cache through a link named by the data's content.

``datasets`` files what it builds from a local folder (Arrow tables) under
``<HF_DATASETS_CACHE>/<folder name>/<config>/0.0.0/<hash>``, and for a repo whose README declares
``configs`` (every retrieval and reranking repo) the hash covers those declarations, not the
data files' paths or content (datasets 5.2.0, seen; upstream: huggingface/datasets#2956). A
mirror folder refilled at another revision, a file replaced or damaged since, or a second mirror
of the same repo (every mirror names the folder ``<org>__<name>``) would be read from the tables
built the first time: other data than the folder's, filed under the folder's content hash.

So each mirrored repo is read through ``<HF_DATASETS_CACHE>/qzhou_eval_mirror/<folder
name>-<content SHA-256, 16 hex>``, a symbolic link to the folder: ``datasets`` names its cache
entry after the link, so a content gets tables of its own (a content seen before gets its
tables back); the SHA-256 is the record's (:func:`.provenance.content_sha256`).

A cache folder that fills up while ``datasets`` builds a task's tables (from a mirror or the Hub)
fails deep inside its builder (a ``DatasetGenerationError`` over the ``OSError``):
:func:`full_cache` turns that into the one line of a failed write, naming the folder.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from qzhou_eval import atomic
from qzhou_eval.errors import MirrorError, UserError, WriteError, raising_packages
from qzhou_eval.mirror.provenance import content_sha256

LINKS = "qzhou_eval_mirror"


def content_link(folder: Path) -> Path:
    """The link through which ``datasets`` reads ``folder`` (made, or pointed at ``folder``, if
    needed). MirrorError when datasets' cache folder cannot take it."""
    import datasets.config

    cache = Path(datasets.config.HF_DATASETS_CACHE)
    target = folder.resolve()
    link = cache / LINKS / f"{target.name}-{content_sha256(target)[:16]}"
    with contextlib.suppress(OSError):
        if os.readlink(link) == str(target):
            return link
    # Another folder of the same content may hold the name: pointed here, the same tables serve.
    tmp = atomic.temp_path(link)  # (unique to this process, also across nodes)
    try:
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, tmp, target_is_directory=True)
        os.replace(tmp, link)  # atomic: a concurrent run sees the old link or this one
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise MirrorError(
            f"datasets' cache folder {cache} (HF_DATASETS_CACHE) cannot take {link.name}, "
            f"through which the mirror folder {target} is read: {e.strerror or e}; set "
            "HF_DATASETS_CACHE (or HF_HOME) to a writable folder"
        ) from None
    return link


_FULL = (errno.ENOSPC, errno.EDQUOT)
_ITS_CHECK = "Not enough disk space."


def full_cache(task: str, error: BaseException) -> UserError | None:
    """The failed write of ``task``'s tables where ``datasets`` met a full disk (or quota) as it
    built them; None for any other error."""
    if isinstance(error, UserError):
        return None
    seen, cause = set(), error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        # (datasets' own check of the free space raises an OSError without an errno)
        full = isinstance(cause, OSError) and (
            cause.errno in _FULL or str(cause).startswith(_ITS_CHECK)
        )
        if full and "datasets" in raising_packages(cause):
            import datasets.config

            why = (
                f"{cause.strerror or 'not enough disk space'} (datasets builds the tables of "
                f"task {task} there: free space, or set HF_DATASETS_CACHE or HF_HOME to a folder "
                "with room)"
            )
            number = cause.errno or errno.ENOSPC
            return WriteError(datasets.config.HF_DATASETS_CACHE, OSError(number, why), False)
        cause = cause.__cause__ or cause.__context__
    return None
