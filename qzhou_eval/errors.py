"""Errors that the command-line apps turn into one clear line (``error: ...``) and an exit code."""

from __future__ import annotations

import ast
import contextlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def shown(value: Any) -> str:
    """A config value as it is written in YAML or an override (``true``, ``null``, ``[1, 2]``),
    not as Python prints it (``True``, ``None``): what error lines echo back."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "_is_missing"):  # an OmegaConf container (omegaconf not imported here)
        from omegaconf import OmegaConf

        value = OmegaConf.to_container(value, resolve=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(shown(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {shown(v)}" for k, v in value.items()) + "}"
    return repr(value)


def unquoted(value: Any) -> Any:
    """``value`` as the command line would give it without the quotes that made it a text
    (Hydra reads ``key='2'`` as one): ``'2'`` -> 2, ``'0.5'`` -> 0.5, ``'true'`` -> True,
    ``'[64,128]'`` -> [64, 128]; anything else as it is (the same object)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    if text.startswith("[") and text.endswith("]"):
        with contextlib.suppress(ValueError, SyntaxError):
            return list(ast.literal_eval(text))
    return value


def quoted_hint(value: Any, accepted: Callable[[Any], bool]) -> str:
    """What an error line adds for a value quoted on the command line (``'2'``, ``'true'``, an
    item of a list: ``[\'128\',256]``), where the value unquoted would be ``accepted``; else ""
    (a quoted ``'-1'`` where a positive number is asked is wrong unquoted too)."""
    if isinstance(value, str):
        parsed = unquoted(value)
        quoted = parsed is not value
    elif isinstance(value, Sequence):  # (a list, or OmegaConf's ListConfig)
        items = list(value)
        parsed = [unquoted(item) for item in items]
        quoted = any(p is not item for p, item in zip(parsed, items, strict=True))
    else:
        return ""
    if not quoted or not accepted(parsed):
        return ""
    return " (quoted, it is a text: write it without the quotes)"


def is_int(value: Any) -> bool:
    """An integer, not a bool (YAML's ``true`` is an int to Python)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An integer or a float, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class UserError(Exception):
    """Bad input the user can fix: a config value, a missing file, a missing mirror folder.

    The message is one line that names the thing to fix.
    """

    exit_code = 2


class ConfigError(UserError):
    """The composed configuration is invalid."""


class MirrorError(UserError):
    """The offline dataset mirror lacks a dataset a task needs."""


class WriteError(UserError, OSError):
    """A file could not be written mid-run: disk full, quota, read-only mount, folder removed.

    An ``OSError`` for library callers (``errno``, ``strerror``, ``filename`` are the original's),
    a ``UserError`` for the apps: one line, exit code 1 (the input was fine; the disk was not).
    Nothing is half-written: the writer removed its temporary file before raising this.
    """

    exit_code = 1

    def __init__(self, path: Path | str, cause: OSError, kept: bool | None = None) -> None:
        """``kept``: ``path`` exists (None: looked up now); the message then says that it is
        whole and unchanged, not half-written."""
        strerror = cause.strerror or str(cause) or type(cause).__name__
        super().__init__(cause.errno or 0, strerror, os.fspath(path))
        self.path = Path(path)
        self.kept = _is_file(self.path) if kept is None else kept

    def __str__(self) -> str:
        unchanged = " (the file there is whole, as before this write)" if self.kept else ""
        return f"cannot write {self.path}: {self.strerror}{unchanged}"

    def __reduce__(self):  # picklable across processes (launchers, worker pools)
        return (type(self), (self.path, OSError(self.errno, self.strerror), self.kept))


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # (not a question worth a second error)
        return False


class DeviceError(UserError):
    """A device or a data-parallel worker failed mid-run (out of memory, a worker died).

    Finished results and stored vectors are kept; the message names the device.
    """

    exit_code = 1


class ModelOutputError(UserError):
    """The model returned vectors no score can use (NaN, inf, all zero); none is stored.

    Finished results and stored vectors are kept; the message names the task and the input.
    """

    exit_code = 1


class ModelLoadError(UserError):
    """The model or its tokenizer cannot be loaded from ``model.path`` (missing or bad files)."""


class DataError(UserError):
    """A task's data cannot be used as it is: a text that is not valid Unicode, a damaged file.

    The message names the task and what to fix in its data.
    """


def raising_packages(error: BaseException) -> list[str]:
    """The top-level package of each frame of ``error``'s traceback, outermost first (which
    library raised it: the innermost frame of one)."""
    packages, tb = [], error.__traceback__
    while tb is not None:
        packages.append(str(tb.tb_frame.f_globals.get("__name__", "")).partition(".")[0])
        tb = tb.tb_next
    return packages


def one_line(error: BaseException | str, limit: int = 300) -> str:
    """An exception's message on one line of at most ``limit`` characters (``error:`` lines): its
    whole sentences that fit, else cut at a word and marked ``...``."""
    text = " ".join(str(error).split()) or type(error).__name__
    if len(text) <= limit:
        return text
    cut = text[:limit]
    end = cut.rfind(". ")
    if end >= limit // 3:
        return cut[: end + 1]
    cut = cut[: limit - 4]
    return cut[: cut.rfind(" ") if " " in cut else len(cut)].rstrip(" ,;:") + " ..."
