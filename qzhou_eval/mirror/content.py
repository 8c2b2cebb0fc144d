"""Which mirror file is damaged, once loading a task's data from a mirror failed.

The mirror check (:mod:`.check`) looks at names and small files only; a file cut mid-line, a
``\\ud800`` escape (a lone surrogate: not valid Unicode) or a byte that is not UTF-8 shows only when
``datasets`` parses it, as a deep ``DatasetGenerationError`` / ``UnicodeDecodeError``. After such a
failure, :func:`damaged_data` reads the task's mirror files once and names the first bad one in
one line. Nothing is read while loading succeeds.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import json
import lzma
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from qzhou_eval.errors import DataError, UserError, one_line
from qzhou_eval.mirror.check import data_files

_TEXT = (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".txt")
_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_CHUNK = 1 << 20
# A JSON \u escape of a surrogate that is not part of a high+low pair.
_LONE_SURROGATE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


def damaged_data(
    task: str, error: BaseException, provenance: dict[str, Any] | None, fill_hint: str
) -> UserError | None:
    """DataError naming ``task`` and its first damaged mirror file, when the task read from a
    mirror (``provenance``, see :mod:`.provenance`) and one of its files is damaged; or naming
    the error and the folder, when a file parses but the task failed on data not shown to be
    the pinned revision (rows edited into another shape: the data, not the harness); else
    None."""
    if isinstance(error, UserError) or not isinstance(error, Exception) or not provenance:
        return None
    parts = [p for p in provenance.get("parts") or [provenance] if p.get("source") == "mirror"]

    def again(folder: Path) -> str:
        return f"fetch the repo again: remove {folder} and run {fill_hint}"

    for part in parts:
        folder = Path(part["folder"])
        for path in data_files(folder):
            problem = file_problem(path)
            if problem is not None:
                return DataError(f"task {task}: mirror file {path} {problem}; {again(folder)}")
    for part in parts:
        if not part.get("matches_revision"):
            folder = Path(part["folder"])
            return DataError(
                f"task {task} failed on the data of mirror folder {folder}, which are not shown "
                f"to be the pinned revision ({type(error).__name__}: {one_line(error, 160)}); "
                f"{again(folder)}"
            )
    return None


def file_problem(path: Path) -> str | None:
    """What is wrong with a data file (the rest of a sentence), or None when it reads cleanly."""
    name = path.name.lower()
    if name.endswith(".parquet"):
        return _parquet_problem(path)
    stem, compression = name, ""
    for suffix in _OPENERS:
        if name.endswith(suffix):
            stem, compression = name.removesuffix(suffix), suffix
    if not stem.endswith(_TEXT):
        return None
    try:
        return _text_problem(_lines(path, compression), stem)
    except _Damaged as e:
        return str(e)


class _Damaged(Exception):
    pass


def _parquet_problem(path: Path) -> str | None:
    import pyarrow.parquet as pq

    try:
        pq.read_metadata(path)
    except Exception as e:  # pyarrow raises ArrowInvalid / OSError for a cut or garbled file
        return f"is not a readable parquet file, truncated or damaged ({_first_line(e)})"
    return None


def _lines(path: Path, compression: str) -> Iterator[str]:
    """The file's lines (with their ``\\n``), streamed; _Damaged for a cut compressed stream or
    a byte that is not UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    carry = ""
    offset = line = 0
    try:
        for chunk in _chunks(path, compression):
            try:
                text = carry + decoder.decode(chunk)
            except UnicodeDecodeError as e:
                bad_line = line + chunk.count(b"\n", 0, e.start) + 1
                raise _Damaged(
                    f"has a byte that is not UTF-8 (0x{chunk[e.start]:02x} at byte "
                    f"{offset + e.start}, line {bad_line})"
                ) from None
            offset += len(chunk)
            line += chunk.count(b"\n")
            *complete, carry = text.split("\n")
            for piece in complete:
                yield piece + "\n"
        carry += decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise _Damaged(f"ends inside a UTF-8 character (line {line + 1}): cut off") from None
    except (EOFError, OSError, zlib.error, lzma.LZMAError) as e:
        raise _Damaged(f"is truncated or damaged ({_first_line(e)})") from None
    if carry:
        yield carry


def _chunks(path: Path, compression: str) -> Iterator[bytes]:
    opener = _OPENERS.get(compression)
    f: IO[bytes] = opener(path, "rb") if opener else path.open("rb")  # type: ignore[operator]
    with f:
        while chunk := f.read(_CHUNK):
            yield chunk


def _checked(lines: Iterator[str]) -> Iterator[tuple[int, str]]:
    """Numbered lines; _Damaged at the first ``\\ud800``-style escape of a lone surrogate."""
    for number, line in enumerate(lines, 1):
        match = _LONE_SURROGATE.search(line)
        if match is not None:
            raise _Damaged(
                f"has the escape {match.group()} on line {number}: a lone surrogate, not valid "
                "Unicode"
            )
        yield number, line


def _text_problem(lines: Iterator[str], stem: str) -> str | None:
    numbered = _checked(lines)
    if stem.endswith((".jsonl", ".ndjson")):
        for number, line in numbered:
            if line.strip():
                try:
                    json.loads(line)
                except ValueError:
                    if not line.endswith("\n"):
                        return f"is cut off mid-line at line {number}"
                    return f"has a line that is not JSON (line {number})"
    elif stem.endswith(".json"):
        text = "".join(line for _, line in numbered)
        try:
            json.loads(text)
        except ValueError as e:
            return f"is not valid JSON, cut off? ({_first_line(e)})"
    elif stem.endswith((".csv", ".tsv")):
        return _table_problem(numbered, "\t" if stem.endswith(".tsv") else ",")
    else:
        for _ in numbered:
            pass
    return None


def _table_problem(numbered: Iterator[tuple[int, str]], delimiter: str) -> str | None:
    last: list[str] = [""]

    def lines() -> Iterator[str]:
        for _, line in numbered:
            last[0] = line
            yield line

    reader = csv.reader(lines(), delimiter=delimiter, strict=True)
    width: int | None = None
    try:
        for row in reader:
            if width is None:
                width = len(row)
            elif row and len(row) != width:
                if not last[0].endswith("\n"):
                    return f"is cut off mid-line at line {reader.line_num}"
                return (
                    f"has {len(row)} field(s) on line {reader.line_num} where the header has "
                    f"{width}"
                )
    except csv.Error as e:
        return f"is not a readable table at line {reader.line_num} ({e})"
    return None


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
