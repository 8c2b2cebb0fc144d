"""Shared body of run_mteb.py and run_cmteb.py."""

from __future__ import annotations

import logging
import sys

from omegaconf import DictConfig

from qzhou_eval.pipeline import coverage_line
from qzhou_eval.report import render_run_summary
from qzhou_eval.runs.runner import execute, plan_run


def run_from_config(cfg: DictConfig) -> int:
    """Plan (validate everything), execute, print the tables; return the exit code."""
    logging.getLogger("mteb").setLevel(logging.WARNING)
    if not cfg.runtime.progress:
        import datasets
        import transformers

        datasets.disable_progress_bars()
        transformers.utils.logging.disable_progress_bar()
    plan = plan_run(cfg)
    filed = [
        f"{len(names)} in experiments/{name}" if name else f"{len(names)} official"
        for name, names in plan.experiments.items()
    ]
    variant = f" ({', '.join(filed)})" if set(plan.experiments) != {""} else ""
    print(
        f"qzhou-eval: {plan.spec.name}@{plan.spec.revision[:12]} on {len(plan.tasks)} task(s), "
        f"recipe {plan.recipe.name}{variant}, results in {plan.runtime.results_dir}",
        flush=True,
    )
    outcome = execute(plan)
    for run, names in outcome.runs.items():
        print(
            render_run_summary(
                outcome.results_dir,
                [t for t in plan.tasks if t.metadata.name in names],
                run.model,
                run.revision,
                run.experiment,
                benchmark=plan.benchmark,
            )
        )
    print(
        f"encoded {outcome.encoded_inputs} input(s) in {outcome.seconds:.1f} s",
        flush=True,
    )
    if outcome.store_summary:
        print(outcome.store_summary)
    if (coverage := coverage_line(outcome.coverage)) is not None:
        print(coverage)
    if outcome.missing:
        print(
            f"error: runtime.encode=false: {len(outcome.missing)} task(s) lack stored inputs "
            "(run them with runtime.encode=true, or point runtime.store_dir at the store that "
            "encoded them): "
            + "; ".join(f"{task} ({what})" for task, what in outcome.missing.items()),
            file=sys.stderr,
        )
    if outcome.failures:
        for task, err in outcome.failures.items():
            print(f"FAILED {task}: {err}", file=sys.stderr)
        return 1
    return 1 if outcome.missing else 0
