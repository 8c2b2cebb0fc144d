"""Config warnings (deprecated keys, a value cut to what the machine allows): one line on stderr,
once per process, and none before an error line."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

_printed: set[str] = set()
_held: list[list[str]] = []  # one list per open :func:`held_until_valid` block


def warn_once(message: str) -> None:
    """One line on stderr, once per process (stdout may be a JSON stream, e.g. the prompts app);
    inside :func:`held_until_valid`, once the block succeeds."""
    if _held:
        if message not in _held[-1]:
            _held[-1].append(message)
    elif message not in _printed:
        _printed.add(message)
        print(message, file=sys.stderr)


def forget_warnings() -> None:
    """Every warning may be printed again (tests)."""
    _printed.clear()


@contextlib.contextmanager
def held_until_valid() -> Iterator[None]:
    """The warnings of a block that checks a config are printed when it succeeds: a config it
    refuses gets its error line alone (a warning about one value, then an error about another,
    reads as two problems)."""
    _held.append([])
    try:
        yield
    except BaseException:
        _held.pop()
        raise
    for message in _held.pop():
        warn_once(message)
