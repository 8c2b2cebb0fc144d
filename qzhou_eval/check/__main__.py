"""``qzhou-eval check [overrides]`` / ``python -m qzhou_eval.check``: see the package docstring."""

from __future__ import annotations

from qzhou_eval.early_stop import stop_early

stop_early(__name__)  # first: a Ctrl-C as the imports below run gets the command's line

import sys

from omegaconf import DictConfig

from qzhou_eval.config.app import hydra_app, run_as_process


@hydra_app("check", kept=None)
def main(cfg: DictConfig) -> None:
    from qzhou_eval.check.runner import run_checks

    code = run_checks(cfg)
    if code:
        sys.exit(code)


if __name__ == "__main__":
    run_as_process(main)
