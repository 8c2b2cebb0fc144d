"""A package's names, imported from its modules on first use (PEP 562's module ``__getattr__``).

``python -m qzhou_eval.report`` imports the package ``qzhou_eval.report`` before the command's
own module, and so before the command handles Ctrl-C and SIGTERM: a package that imported mteb
there (seconds) answered a Ctrl-C in those seconds with a traceback, and a SIGTERM with no line.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """The ``__getattr__`` of ``package``: each of ``names`` (name -> the package's module that
    defines it, relative: ``.build``) is imported from its module when first read."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module, package), name)

    return __getattr__
