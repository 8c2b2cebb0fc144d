"""Shared body of run_mteb.py and run_cmteb.py."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence

from omegaconf import DictConfig

from qzhou_eval.config.app import override_key
from qzhou_eval.config.folders import remove_empty
from qzhou_eval.pipeline.schedule import coverage_line
from qzhou_eval.progress import stderr_is_terminal
from qzhou_eval.report import render_run_summary
from qzhou_eval.runs.runner import RunOutcome, execute, plan_run
from qzhou_eval.runs.scoring import quiet_libraries


def recipe_label(name: str, overrides: Sequence[str]) -> str:
    """The recipe's name, and the keys of it the command line set: the file of that name no
    longer says all the run does to texts."""
    keys = sorted({k for k in map(override_key, overrides) if k.startswith("prompts.")})
    return f"{name} with {', '.join(keys)} from the command line" if keys else name


def _task_overrides() -> list[str]:
    """This job's overrides (a sweep's job: its own values), as Hydra records them."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def run_from_config(cfg: DictConfig) -> int:
    """Plan (validate everything), execute, print the tables; return the exit code (after
    :func:`qzhou_eval.runs.launch.prepare`)."""
    quiet_libraries()
    # the libraries' bars only on a terminal (in a log they are carriage-return noise; the
    # encoder prints plain periodic lines there instead)
    if not cfg.runtime.progress or not stderr_is_terminal():
        import datasets
        import transformers

        datasets.disable_progress_bars()
        transformers.utils.logging.disable_progress_bar()
    plan = plan_run(cfg)
    own = "official" if plan.identity.canonical is not None else "in the revision's folder"
    filed = [
        f"{len(names)} in experiments/{name}" if name else f"{len(names)} {own}"
        for name, names in plan.experiments.items()
    ]
    varies = ""
    differences = plan.identity.differences()
    if differences and any(plan.experiments):  # (some tasks filed apart)
        # (a variant folder's name is a hash, an experiment's the user's: what it sets, once)
        experiment = plan.identity.experiment
        apart = f"experiment {experiment}" if experiment else f"variant_{plan.identity.variant_id}"
        varies = f"; {apart}: {', '.join(differences)}"
    variant = f" ({', '.join(filed)}{varies})" if set(plan.experiments) != {""} else ""
    try:
        print(
            f"qzhou-eval: {plan.spec.name}@{plan.spec.revision[:12]} on {len(plan.tasks)} "
            f"task(s), recipe {recipe_label(plan.recipe.name, _task_overrides())}{variant}, "
            f"results in {plan.runtime.results_dir}",
            flush=True,
        )
    except BaseException:  # stdout on a full disk, Ctrl-C: the folders planned stay unmade
        remove_empty(plan.created)
        raise
    outcome = execute(plan)
    for run in outcome.runs:
        print(
            render_run_summary(
                outcome.results_dir,
                outcome.summary_tasks(run),
                run.model,
                run.revision,
                run.experiment,
                benchmark=plan.benchmark,
            )
        )
    print("\n".join([*wall_times(outcome), encoded_line(outcome)]), flush=True)
    if outcome.store_summary:
        print(outcome.store_summary)
    if (coverage := coverage_line(outcome.coverage, outcome.overlapped)) is not None:
        print(coverage)
    if outcome.missing:
        print(
            f"error: runtime.encode=false: {len(outcome.missing)} task(s) lack stored inputs "
            "(run them with runtime.encode=true, or point runtime.store_dir at the store that "
            "encoded them): "
            + "; ".join(f"{task} ({what})" for task, what in outcome.missing.items())
            + _store_hint(outcome),
            file=sys.stderr,
        )
    if outcome.failures:
        for task, err in outcome.failures.items():
            print(f"FAILED {task}: {err}", file=sys.stderr)
        return 1
    return 1 if outcome.missing else 0


def _store_hint(outcome: RunOutcome) -> str:
    """Why the store lacks inputs, where it can tell: damaged shards it skipped; or nothing at
    all of this run's model configuration (vectors are filed under a fingerprint of every
    setting that changes a vector, so another dtype or max length finds none)."""
    if outcome.store_damaged:
        return (
            f". {outcome.store_damaged} damaged shard(s) of the store were skipped (named in "
            "the run's warning: lines, on stdout): runtime.encode=true sets them aside and "
            "encodes their inputs again"
        )
    if outcome.store_vectors != 0:
        return ""
    if not outcome.store_others:
        return ". The store holds no vectors at all: nothing was encoded into it yet"
    return (
        ". The store holds no vector of this model configuration: a setting that changes "
        f"vectors (model.*, runtime.packing) differs from the encoding run's (it holds "
        f"{outcome.store_others} other configuration(s))"
    )


def wall_times(outcome: RunOutcome) -> list[str]:
    """``wall time 41.2 s in all``, then one line per task evaluated (loading its data, encoding,
    scoring; the first task that encodes also loads the model)."""
    lines = [f"wall time {outcome.seconds:.1f} s in all"]
    by_others = outcome.tasks_by_others()
    done = {*outcome.finished_before, *by_others}
    timed = {task: s for task, s in outcome.task_seconds.items() if task not in done}
    width = max(map(len, timed), default=0)
    unscored = {**dict.fromkeys(outcome.missing, "lacks stored inputs"), **outcome.failures}
    lines += [
        f"  {task:<{width}}  {s:8.1f} s" + ("  (not scored)" if task in unscored else "")
        for task, s in timed.items()
    ]
    if outcome.finished_before and timed:  # (all of them: the encoded line says so)
        listed = _listed(outcome.finished_before)
        lines.append(f"  finished by an earlier run, not evaluated again: {listed}")
    if by_others:
        lines.append(
            "  finished by another run of this configuration meanwhile, not evaluated here: "
            + _listed(by_others)
        )
    return lines


def _listed(names: Iterable[str]) -> str:
    names = list(names)
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def encoded_line(outcome: RunOutcome) -> str:
    """How many inputs went through the model, and how many vectors the store gave instead (an
    input met twice in one run, e.g. in both columns of an STS task, is stored then reused),
    counted once per task for all its sweep points, whichever runner."""
    encoded, stored = outcome.encoded_inputs, outcome.stored_inputs
    if encoded:
        line = f"encoded {encoded} input(s) in {outcome.model_seconds:.1f} s of model time"
        reused = f"; {stored} vector(s) reused (stored before, or met twice in this run)"
        return line + (reused if stored else "")
    if outcome.missing or outcome.failures:  # not every task was scored: the error lines say why
        return (
            f"encoded 0 input(s); {stored} vector(s) read from the store"
            if stored
            else ("encoded 0 input(s)")
        )
    if stored:
        return f"encoded 0 input(s): every vector ({stored}) came from the embedding store"
    return (
        "encoded 0 input(s): every task was finished already (runtime.overwrite=true "
        "evaluates them again)"
    )
