"""``python -m qzhou_eval.report``: from the composed ``report`` config to tables and files."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from qzhou_eval.benchmarks import load_benchmark_tasks
from qzhou_eval.config.spec import flag, names_something
from qzhou_eval.errors import ConfigError, UserError, is_number, quoted_hint, shown
from qzhou_eval.fingerprint import fingerprint
from qzhou_eval.report.build import benchmark_info, build_report, check_nonempty
from qzhou_eval.report.compare import reference_off
from qzhou_eval.report.discover import discover_runs, resolve_results_dirs
from qzhou_eval.report.render import render_text
from qzhou_eval.report.score import check_definition


@dataclass(frozen=True)
class ReportOptions:
    """The validated ``report`` config."""

    results_dirs: list[Path]
    reference: object
    reference_model: str | None
    tolerance: float
    definition: str
    out_dir: Path | None
    models: list[str] | None
    experiments: str | list[str]
    plots: bool
    per_task: bool


def options_from_config(cfg: Mapping[str, Any]) -> ReportOptions:
    """Check every setting; a bad one raises a one-line ConfigError/UserError."""
    results_dirs = resolve_results_dirs(_texts("results_dir", cfg.get("results_dir"), "a folder"))
    tolerance = cfg.get("tolerance")
    if not _tolerance(tolerance):  # (nan passed every gap; inf broke the plot)
        raise ConfigError(
            f"tolerance={shown(tolerance)}: give a number of score points from 0 to 100 (e.g. "
            f"0.01){quoted_hint(tolerance, _tolerance)}"
        )
    given = cfg.get("experiments", "all")
    experiments: str | list[str]
    if given is None or given is False:
        experiments = "none"
    elif isinstance(given, str) and given in ("all", "none"):
        experiments = given
    else:
        experiments = _texts("experiments", given, "all, none or experiment folder names")
    models = cfg.get("models")
    reference = cfg.get("reference")
    if reference is True or OmegaConf.is_config(reference) or str(reference).strip() == "":
        raise ConfigError(
            f"reference={shown(reference)}: give a results folder, a .csv file, or false"
        )
    reference_model = cfg.get("reference_model")
    if reference_model is not None and reference_off(reference):
        raise ConfigError(
            f"reference_model={shown(reference_model)} compares with nothing under "
            f"reference={shown(reference)}: drop one of them"
        )
    return ReportOptions(
        results_dirs=results_dirs,
        reference=reference,
        reference_model=None
        if reference_model is None
        else _text("reference_model", reference_model),
        tolerance=float(tolerance),
        definition=check_definition(cfg.get("definition")),
        out_dir=_out_dir(cfg.get("out_dir"), results_dirs),
        models=None if models is None else _texts("models", models, "model names or patterns", 1),
        experiments=experiments,
        plots=flag("", "plots", cfg.get("plots", True)),
        per_task=flag("", "per_task", cfg.get("per_task", True)),
    )


def _tolerance(value: Any) -> bool:
    return is_number(value) and 0 <= value <= 100


def run_report(cfg: DictConfig) -> str:
    """Build the report the config describes, write its files, return the text to print."""
    from qzhou_eval.report.files import write_report_files

    options = options_from_config(cfg)
    bench_cfg = _plain(cfg.benchmark)
    tasks = load_benchmark_tasks(bench_cfg)
    benchmark = benchmark_info(bench_cfg, tasks)
    runs = discover_runs(options.results_dirs, options.models, options.experiments)
    if not runs:
        where = ", ".join(str(d) for d in options.results_dirs)
        others = discover_runs(options.results_dirs, None, "all") if options.models else []
        if others:  # (the runs are there: the selection is what to fix)
            held = sorted({f"{r.id.model}@{r.id.revision}" for r in others})
            raise UserError(
                f"models={shown(options.models)}: no run in {where} matches (it has: "
                f"{', '.join(held)})"
            )
        apart = discover_runs(options.results_dirs, options.models, "all")
        if apart:  # (only experiment folders, which the selection leaves out)
            held = sorted({str(r.id.experiment) for r in apart})
            chosen = options.experiments
            named = chosen if isinstance(chosen, str) else shown(chosen)
            raise UserError(
                f"experiments={named}: every run in {where} is in an experiment folder "
                f"({', '.join(held)}): experiments=all reports them"
            )
        raise UserError(
            f"no runs in {where} (expected <org>__<model>/<revision>/<Task>.json"
            + (f" for models {options.models}" if options.models else "")
            + ")"
        )
    report = build_report(
        runs,
        tasks,
        benchmark,
        options.results_dirs,
        definition=options.definition,
        reference=options.reference,
        reference_model=options.reference_model,
        tolerance=options.tolerance,
    )
    check_nonempty(report)
    text = render_text(report, per_task=options.per_task)
    if options.out_dir is None:
        return text
    try:
        files = write_report_files(report, options.out_dir, plots=options.plots)
    except OSError as e:
        msg = f"cannot write the report files to {options.out_dir}: {e}; set out_dir=..."
        raise UserError(msg) from None
    return text + "\nWrote:\n" + "".join(f"  {f}\n" for f in files)


def _out_dir(value: object, results_dirs: list[Path]) -> Path | None:
    """``null``: ``<results folder>_report`` beside it (several: ``<a>+<b>_report`` beside the
    first, so that the report of a and b together does not replace a's own); ``false``: no files.

    Never inside a results folder: a JSON file there would be read as a task result.
    """
    if value is False or (isinstance(value, str) and value.lower() in ("false", "none", "off")):
        return None
    if value is None:
        folders = [Path(os.path.abspath(d)) for d in results_dirs]
        name = "+".join(f.name for f in folders)
        if len(folders) > 1 and len(name) > 100:  # (a file name's limit is 255 bytes)
            digest = fingerprint([str(f) for f in folders], 8)
            name = f"{folders[0].name}+{len(folders) - 1}_more_{digest}"
        return folders[0].parent / f"{name}_report"
    if not names_something(value):
        raise ConfigError(f"out_dir={shown(value)}: give a folder for the report files, or false")
    out = Path(str(value)).expanduser()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out_dir={str(out)!r} is a file: name a folder for the report files")
    for d in results_dirs:
        if Path(os.path.abspath(out)).is_relative_to(Path(os.path.abspath(d))):
            raise ConfigError(
                f"out_dir={str(out)!r} is inside results_dir {str(d)!r}; put it beside"
            )
    return out


def _texts(key: str, value: object, what: str, least: int = 0) -> list[str]:
    """A key that takes one text or a list of at least ``least`` texts. Hydra reads
    ``results_dir=2026`` as a number: it names the folder ``2026``, as ``runtime.results_dir=2026``
    does for a run; true, false, null and mappings name nothing."""
    items = _plain(value)
    items = items if isinstance(items, list) else [items]
    if len(items) < least or not all(names_something(v) for v in items):
        raise ConfigError(f"{key}={shown(value)}: give {what} (one, or [a,b] for several)")
    return [str(v) for v in items]


def _text(key: str, value: object) -> str:
    if not names_something(value):
        raise ConfigError(
            f"{key}={shown(value)}: give a model name (org/name or org/name@revision)"
        )
    return str(value)


def _plain(value: object) -> Any:
    """OmegaConf containers as plain Python values."""
    if OmegaConf.is_config(value):
        return OmegaConf.to_container(value, resolve=True)  # type: ignore[arg-type]
    return value
