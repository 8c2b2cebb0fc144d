"""Whether a Hugging Face Hub model id can be loaded here, known in seconds.

Without ``HF_HUB_OFFLINE`` an unreachable Hub costs minutes before transformers gives up (the Hub
client retries each request with back-off); with it, a model missing from the Hugging Face cache
fails with a message that does not say what to do. This check runs before the model is loaded and
names the fix: ``model.path=<folder>``, or ``HF_HUB_OFFLINE=1`` where the cache has the model.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from urllib.parse import urlparse

from qzhou_eval.errors import ConfigError, ModelLoadError

_TRUE = {"1", "ON", "YES", "TRUE"}
_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
PROBE_TIMEOUT_S = 5.0
COMMIT = re.compile(r"^[0-9a-f]{40}$")
# where `hf download --local-dir` and snapshot_download(local_dir=...) keep each file's metadata
DOWNLOAD_METADATA = Path(".cache") / "huggingface" / "download"


def offline() -> bool:
    return any(
        os.environ.get(v, "").upper() in _TRUE for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def hub_endpoint() -> tuple[str, int]:
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    return url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)


def reachable(timeout: float = PROBE_TIMEOUT_S) -> bool:
    """A TCP connection to the Hub opens (assumed true behind a proxy, which this cannot test)."""
    if any(os.environ.get(v) for v in _PROXY_VARIABLES):
        return True
    try:
        socket.create_connection(hub_endpoint(), timeout=timeout).close()
    except OSError:
        return False
    return True


def cached(repo_id: str, revision: str | None) -> bool:
    """The Hugging Face cache holds the model's ``config.json`` at ``revision``."""
    return cached_folder(repo_id, revision) is not None


def cached_folder(repo_id: str, revision: str | None) -> Path | None:
    """The Hugging Face cache's snapshot folder of the model at ``revision`` (where it holds the
    model's ``config.json``), else None."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    except Exception:  # a malformed id or cache: let the loader say what it finds
        return None
    return Path(found).parent if isinstance(found, str) else None


def check_hub_model(path: str, revision: str | None) -> None:
    """Raise a one-line :class:`ModelLoadError` when ``path`` is a Hub id that cannot be loaded
    here; nothing for a local folder."""
    if Path(path).expanduser().exists() or path.count("/") != 1:
        return  # a folder (or not a Hub id): the loader's own checks apply
    folder = f"model.path=/models/{path.rsplit('/', 1)[-1]}"
    if offline():
        if not cached(path, revision):
            raise ModelLoadError(
                f"model.path={path} is a Hugging Face Hub id, HF_HUB_OFFLINE is set and the "
                f"Hugging Face cache has no copy of it at revision {revision}: point model.path "
                f"at a folder that holds the model ({folder})"
            )
        return
    if reachable():
        return
    host = hub_endpoint()[0]
    if cached(path, revision):
        raise ModelLoadError(
            f"the Hugging Face Hub ({host}) cannot be reached to load model.path={path}: set "
            f"HF_HUB_OFFLINE=1 to load it from the Hugging Face cache, which has it, or point "
            f"model.path at a folder ({folder})"
        )
    raise ModelLoadError(
        f"model.path={path} is a Hugging Face Hub id and the Hub ({host}) cannot be reached: "
        f"point model.path at a folder that holds the model ({folder}), or run where the Hub "
        "is reachable"
    )


def download_commits(folder: Path) -> set[str]:
    """The commit hashes a Hub download into ``folder`` recorded (its per-file metadata, first
    line); empty for files copied by hand."""
    out: set[str] = set()
    meta_root = Path(folder) / DOWNLOAD_METADATA
    if not meta_root.is_dir():
        return out
    for meta in meta_root.rglob("*.metadata"):
        try:
            commit = meta.read_text(encoding="utf-8").split("\n", 1)[0].strip()
        except (OSError, UnicodeDecodeError):
            continue
        if COMMIT.match(commit):
            out.add(commit)
    return out


def check_local_model(path: str, revision: str | None) -> None:
    """A ConfigError when the model folder ``path`` shows that it holds another revision than
    ``model.revision`` (results are filed, and vectors stored, under the revision): a Hugging
    Face cache snapshot (``.../snapshots/<commit>``) or a Hub download's metadata. A folder
    without such evidence (copied by hand, a package's) is taken at its word."""
    folder = Path(path).expanduser()
    if not revision or not COMMIT.match(revision) or not folder.is_dir():
        return
    held = download_commits(folder)
    if folder.parent.name == "snapshots" and COMMIT.match(folder.name):
        held.add(folder.name)
    other = sorted(held - {revision})
    if other:
        raise ConfigError(
            f"model.path={path} holds revision {other[0]} (its Hub download says so) but "
            f"model.revision={revision}: results are filed under model.revision, so point "
            f"model.path at that revision's files, or set model.revision={other[0]}"
        )
