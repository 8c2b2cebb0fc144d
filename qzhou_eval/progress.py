"""Progress that suits where stderr goes: a tqdm bar on a terminal, plain lines in a log.

A bar redraws itself with carriage returns; written into a file (a SLURM log, ``2> run.log``) that
is kilobytes of one unreadable line. When stderr is not a terminal, progress is a plain line every
``PLAIN_EVERY_S`` seconds instead (and one at the end of a call that printed any).
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import IO, Any

PLAIN_EVERY_S = 30.0


def stderr_is_terminal() -> bool:
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # closed
        return False


class PlainProgress:
    """tqdm's ``update`` / context manager protocol, printing ``<desc>: n/total (p%), t s``
    lines at most every ``every`` seconds."""

    def __init__(
        self, total: int, desc: str, every: float = PLAIN_EVERY_S, file: IO[str] | None = None
    ) -> None:
        self.total, self.desc, self.every = total, desc, every
        self.file = file
        self.n = 0
        self.started = self.last = time.monotonic()
        self.printed_n: int | None = None  # n of the last line printed

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            self._line(now)

    def _line(self, now: float) -> None:
        share = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        print(
            f"{self.desc}: {self.n}/{self.total}{share}, {now - self.started:.0f} s",
            file=self.file or sys.stderr,
            flush=True,
        )
        self.printed_n = self.n

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is None and self.printed_n not in (None, self.n):  # a long call: its end too
            self._line(time.monotonic())


def progress(total: int, desc: str, enabled: bool = True) -> Any:
    """A tqdm bar on a terminal; :class:`PlainProgress` lines otherwise; silent if not enabled."""
    if enabled and not stderr_is_terminal():
        return PlainProgress(total, desc)
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False)
