"""Hydra entry points shared by every command-line app.

Every app is a Hydra app over the repository's top-level ``conf/`` folder. Bad input surfaces as a
:class:`~qzhou_eval.errors.UserError`; :func:`hydra_app` prints it as one line on stderr and exits
with code 2, leaving no traceback wall for a config typo.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from qzhou_eval.errors import UserError

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"

# Hydra overrides that keep a run from writing outputs/ folders and log files into the cwd.
_QUIET_HYDRA = [
    "hydra.output_subdir=null",
    "hydra.run.dir=.",
    "hydra.sweep.dir=multirun",
    "hydra/job_logging=stdout",
    "hydra/hydra_logging=none",
]


def compose_config(config_name: str, overrides: Sequence[str] = ()) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` with command-line style overrides (no Hydra app).

    Used by tests and by library callers. Hydra errors (unknown group option, bad override
    syntax) become a one-line ConfigError.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from qzhou_eval.errors import ConfigError

    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
            return compose(config_name=config_name, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as e:
        raise ConfigError(_one_line(str(e))) from None


def _one_line(msg: str) -> str:
    lines = [ln.strip() for ln in msg.strip().splitlines() if ln.strip()]
    return " ".join(lines[:12]) if lines else "invalid configuration"


def _precheck(config_name: str, args: Sequence[str]) -> None:
    """Compose once before Hydra does, so a bad override is one line and exit code 2.

    Skipped for multirun sweeps and Hydra's own flags (--help, --cfg, ...), which Hydra handles.
    """
    from qzhou_eval.errors import ConfigError

    if any(a.startswith("-") for a in args):
        return
    overrides = [a for a in args if not a.lstrip("+~").startswith("hydra")]
    try:
        compose_config(config_name, overrides)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)


def hydra_app(config_name: str) -> Callable[[Callable[[DictConfig], Any]], Callable[[], None]]:
    """Decorator: turn ``fn(cfg)`` into a Hydra command-line app over ``conf/``.

    A UserError raised by ``fn`` prints ``error: <message>`` and exits with code 2.
    """

    def wrap(fn: Callable[[DictConfig], Any]) -> Callable[[], None]:
        import hydra

        @functools.wraps(fn)
        def task(cfg: DictConfig) -> None:
            try:
                fn(cfg)
            except UserError as e:
                print(f"error: {e}", file=sys.stderr)
                sys.exit(e.exit_code)

        main = hydra.main(config_path=str(CONF_DIR), config_name=config_name, version_base=None)(
            task
        )

        def entry() -> None:
            logging.getLogger("hydra").setLevel(logging.WARNING)
            os.environ.setdefault("HYDRA_FULL_ERROR", "0")
            user_args = sys.argv[1:]
            _precheck(config_name, user_args)
            # Hydra's parser wants overrides in one run: append ours after the user's, unless the
            # user's last word is a flag that may take a value.
            if user_args and user_args[-1].startswith("-"):
                sys.argv = [sys.argv[0], *_QUIET_HYDRA, *user_args]
            else:
                sys.argv = [sys.argv[0], *user_args, *_QUIET_HYDRA]
            main()

        return entry

    return wrap
