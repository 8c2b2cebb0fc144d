"""Config warnings (deprecated keys, a value cut to what the machine allows): one line on stderr,
once per process."""

from __future__ import annotations

import functools
import sys


@functools.cache
def warn_once(message: str) -> None:
    """One line on stderr, once per process (stdout may be a JSON stream, e.g. the prompts app)."""
    print(message, file=sys.stderr)
