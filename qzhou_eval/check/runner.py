"""``qzhou-eval check``: every check in turn, one line each, a JSON summary line last."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from omegaconf import DictConfig

from qzhou_eval.check.context import FAIL, PASS, SKIP, Context, Result, Skip
from qzhou_eval.check.devices import devices_vs_first, pool_vs_in_process
from qzhou_eval.check.environment import environment
from qzhou_eval.check.inputs import model_inputs, sample_texts
from qzhou_eval.check.memory import oom_recovery
from qzhou_eval.check.numerics import (
    async_vs_sync,
    batch_vs_alone,
    packed_vs_padded,
    padding_finite,
)
from qzhou_eval.check.speed import throughput
from qzhou_eval.check.subject import make_subject
from qzhou_eval.config.deprecation import held_until_valid
from qzhou_eval.config.spec import (
    check_embed_dim,
    flag,
    setting,
)
from qzhou_eval.errors import ConfigError, is_int, is_number, one_line, quoted_hint, shown
from qzhou_eval.runs.settings import Values, check_values, read_settings

CHECKS: list[tuple[str, Callable[[Context], Result]]] = [
    ("batch_vs_alone", batch_vs_alone),
    ("padding_finite", padding_finite),
    ("packed_vs_padded", packed_vs_padded),
    ("async_vs_sync", async_vs_sync),
    ("devices_vs_first", devices_vs_first),
    ("oom_recovery", oom_recovery),
    ("throughput", throughput),
    # Last: it frees the in-process model before the workers load theirs (one GPU may not hold
    # two copies of a 7B model).
    ("pool_vs_in_process", pool_vs_in_process),
]


def validate(check: Any) -> None:
    """A ConfigError (one line, exit code 2) for a ``check.*`` value that cannot work."""

    def value(key: str) -> Any:
        return setting(check, "check", key)

    def positive_int(key: str, low: int = 1) -> None:
        v = value(key)
        if not is_int(v) or v < low:
            quoted = quoted_hint(v, lambda n: is_int(n) and n >= low)
            raise ConfigError(f"check.{key}={shown(v)} must be an integer >= {low}{quoted}")

    for key, low in (("texts", 2), ("scaled_layers", 1), ("scaled_hidden_size", 32)):
        positive_int(key, low)
    if value("scaled_hidden_size") % 32:
        raise ConfigError("check.scaled_hidden_size must be a multiple of 32 (heads of 32)")
    for key in ("tolerance_float32", "tolerance_half"):
        v = value(key)
        if not is_number(v) or v <= 0:
            quoted = quoted_hint(v, lambda n: is_number(n) and n > 0)
            raise ConfigError(f"check.{key}={shown(v)} must be a positive number{quoted}")
    fraction = value("oom_memory_fraction")
    if not is_number(fraction) or not 0 < fraction < 1:
        quoted = quoted_hint(fraction, lambda n: is_number(n) and 0 < n < 1)
        raise ConfigError(
            f"check.oom_memory_fraction={shown(fraction)}: give a fraction in (0, 1){quoted}"
        )
    budgets = value("budgets")

    def two_budgets(v: Any) -> bool:
        return isinstance(v, Sequence) and len(v) == 2 and all(is_int(b) and b > 0 for b in v)

    if budgets is not None and not two_budgets(budgets):
        raise ConfigError(
            f"check.budgets={shown(budgets)}: give two token budgets, e.g. [16384,32768]"
            + quoted_hint(budgets, two_budgets)
        )
    if value("speed_tokens") is not None:
        positive_int("speed_tokens")
    for key in ("random_weights", "scale_down", "seed", "only"):
        value(key)
    flag("check", "random_weights", value("random_weights"))
    positive_int("seed", 0)
    if value("scale_down") not in (True, False, "auto"):
        scale_down = value("scale_down")
        quoted = quoted_hint(scale_down, lambda v: isinstance(v, bool))
        raise ConfigError(f"check.scale_down={shown(scale_down)}: give true, false or auto{quoted}")
    only = value("only")
    if only is not None and (isinstance(only, (str, int, float, bool)) or not only):
        raise ConfigError(
            f"check.only={shown(only)}: give a list of checks, e.g. [batch_vs_alone] (null: all)"
        )
    names = [n for n, _ in CHECKS]
    unknown = set(value("only") or []) - set(names)
    if unknown:
        raise ConfigError(f"check.only: unknown check(s) {sorted(unknown)}; use {names}")


def checked_settings(cfg: DictConfig) -> Values:
    """The run's settings, checked as a run checks them before loading anything: with mteb's
    tasks where mteb is installed (a GPU machine may have the model's libraries only)."""
    try:
        import mteb  # noqa: F401
    except ImportError:
        return check_values(cfg, resolve_path=True, with_mteb=False)
    settings = read_settings(cfg, resolve_path=True)
    if (mirror := settings.values.mirror) is not None:  # a mirror that lacks a task's data
        from qzhou_eval.mirror.apply import check_mirror
        from qzhou_eval.runs.scoring import fill_hint

        check_mirror(settings.tasks, mirror, fill_hint(cfg.benchmark.key, mirror, "{task}"))
    return settings.values


def run_checks(cfg: DictConfig, out: Callable[[str], None] = print) -> int:
    """Print every check's line and the JSON summary; return the exit code (1: a check failed)."""
    started = time.perf_counter()
    check = setting(cfg, "", "check")
    with held_until_valid():  # a refused config gets its error line alone
        # every setting a run refuses before loading anything (mrl.*, experiment, benchmark.*,
        # data.mirror: they passed here, and the run stopped)
        values = checked_settings(cfg)
        runtime, spec = values.runtime, values.spec
        validate(check)
        if spec.folder_settings == "check":  # a folder a run would refuse: the same line
            from qzhou_eval.runs.model_folder import check_folder_settings

            check_folder_settings(spec, values.recipe)
    only = set(check.only or [])
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one line per step, no loading bars
    lines, facts = environment()
    for line in lines:
        out(line)
    subject = make_subject(spec, check, runtime.devices)
    results: list[Result] = []
    try:
        out(f"model {subject.description}; devices {', '.join(runtime.devices)}")
        load_started = time.perf_counter()
        backbone = subject.build(runtime.devices[0])
        out(f"model loaded on {runtime.devices[0]} in {time.perf_counter() - load_started:.1f} s")
        check_embed_dim(subject.spec.embed_dim, int(backbone.output_dim))  # as a run refuses
        inputs = model_inputs(cfg.prompts, sample_texts(int(check.texts)))
        ids = backbone.tokenize(inputs)
        empty = [text for text, x in zip(inputs, ids, strict=True) if not len(x)]
        if empty:  # (the empty sample, where the recipe keeps it and the tokenizer adds nothing)
            out(
                f"warning: {empty[0]!r} gives no tokens with this tokenizer: left out of the "
                "checks; a run stops at the first task with such an input"
            )
            kept = [i for i, x in enumerate(ids) if len(x)]
            inputs, ids = [inputs[i] for i in kept], [ids[i] for i in kept]
        ctx = Context(subject, runtime, check, backbone, inputs, ids)
        del backbone  # held by ctx alone: the last check frees it
        for name, run in CHECKS:
            if only and name not in only:
                continue
            t0 = time.perf_counter()
            try:
                result = run(ctx)
            except Skip as e:
                result = Result(name, SKIP, str(e))
            except Exception as e:  # a check that breaks is a failed check, not a crash
                result = Result(name, FAIL, f"{type(e).__name__}: {one_line(e, 400)}")
            result.figures["seconds"] = round(time.perf_counter() - t0, 2)
            results.append(result)
            out(result.line())
            sys.stdout.flush()
    finally:
        subject.close()
    failed = [r.name for r in results if r.status == FAIL]
    summary: dict[str, Any] = {
        "ok": not failed,
        "passed": [r.name for r in results if r.status == PASS],
        "failed": failed,
        "skipped": [r.name for r in results if r.status == SKIP],
        "model": spec.name,
        "random_weights": bool(check.random_weights),
        "description": subject.description,
        "devices": list(runtime.devices),
        "environment": facts,
        "figures": {r.name: r.figures for r in results},
        "seconds": round(time.perf_counter() - started, 1),
    }
    out(json.dumps(summary, default=str))
    return 1 if failed else 0
