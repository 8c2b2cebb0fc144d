"""``qzhou-eval report results_dir=... benchmark=cmteb [reference=...]`` (or python -m ...)."""

from __future__ import annotations

from qzhou_eval.early_stop import stop_early

stop_early(__name__)  # first: a Ctrl-C as the imports below run gets the command's line

from omegaconf import DictConfig

from qzhou_eval.config.app import hydra_app, run_as_process


@hydra_app("report", kept=None)
def main(cfg: DictConfig) -> None:
    """Print the leaderboard tables and the reproduction report; write its files."""
    from qzhou_eval.report.cli import run_report

    print(run_report(cfg), end="")


if __name__ == "__main__":
    run_as_process(main)
