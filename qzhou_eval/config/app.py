"""Hydra entry points shared by every command-line app.

Every app is a Hydra app over the config folder (:func:`config_dir`: the repository's top-level
``conf/`` in a checkout, its copy inside the package in an installed wheel). Hydra's own settings
(no output folders, logs to stdout) are config too: ``conf/hydra/default.yaml``. Whatever stops a
command reaches the user as one line on stderr, never a traceback:

- bad input (a :class:`~qzhou_eval.errors.UserError`: config value, YAML syntax error, unknown
  config name, missing folder, unwritable folder, absent device): ``error: ...``, exit code 2;
- a write that fails mid-run (disk full, quota, read-only mount): ``error: ...`` naming the config
  key and folder, exit code 1 (and what the command keeps: a run, its finished results and stored
  vectors);
- Ctrl-C (SIGINT), SIGTERM (a scheduler's preemption) or SIGHUP (the terminal or ssh session
  closed): ``interrupted: ...`` / ``terminated (SIGTERM): ...`` / ``terminated (SIGHUP): ...``,
  exit code 130 / 143 / 129, the line naming what the command keeps (``interrupted`` alone for
  one that keeps nothing: report, prompts, shards, check); a run stores on the way out the
  vectors computed so far. A second such signal (a second Ctrl-C) ends the process at once, with
  the first one's line and code: the way out is not waited for (only the records of the
  evaluations under way are removed), and no thread left in a library's native code is there
  when the interpreter finalizes ("terminate called without an active exception", exit code
  134). One that comes once the command is done (threads being joined, atexit callbacks) ends it
  at once too, with nothing more printed;
- a reader that goes away (``| head``): no output, no traceback, exit code 141 (as a command
  killed by SIGPIPE), at the first print or log line that meets the closed pipe; text the
  console's encoding cannot show (``PYTHONIOENCODING=ascii``) is written as backslash escapes,
  never a ``UnicodeEncodeError``.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import functools
import gc
import logging
import os
import re
import shlex
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from types import FrameType
from typing import Any

from omegaconf import DictConfig, OmegaConf

from qzhou_eval import early_stop
from qzhou_eval.config.launchers import (
    check_launcher,
    failed_job_line,
    job_log,
    kill_launcher_processes,
    lost_job,
    stop_launcher_processes,
    timed_out,
)
from qzhou_eval.config.spec import TOKEN_PREPENDING_KEYS, section_not_value
from qzhou_eval.environment import temporary_environment
from qzhou_eval.errors import ConfigError, DeviceError, UserError, WriteError, shown
from qzhou_eval.process_tracker import start_launcher_resource_tracker, start_resource_tracker

PRIMARY_CONFIG = "mteb.yaml"  # a file every config folder has: tells it from any other conf/


def config_dir() -> Path:
    """The config folder, for an installed wheel and a checkout (editable install) alike.

    A wheel carries a copy of the repository's ``conf/`` as ``qzhou_eval/conf`` (setup.py maps
    it there at build time); a checkout has only the top-level ``conf/``, the one source.
    """
    package = Path(__file__).resolve().parents[1]
    candidates = (package / "conf", package.parent / "conf")
    for folder in candidates:
        if (folder / PRIMARY_CONFIG).is_file():
            return folder
    return candidates[0]  # absent: composing then fails with one line naming it


CONF_DIR = config_dir()


def config_groups(*groups: str) -> str:
    """``model: hf_auto, minilm, ...``, one line per group: the files a command's
    ``group=option`` can pick. Hydra's ``$APP_CONFIG_GROUPS`` lists every group of the config
    folder, which each command shares, so ``report --help`` would offer groups it does not
    compose."""
    return "\n".join(f"{g}: {', '.join(group_options(g))}" for g in groups)


def group_options(group: str) -> list[str]:
    """The files a ``group=option`` override can pick (``conf/<group>/<option>.yaml``)."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def _register_resolvers() -> None:
    """For ``--help``: ``${qzhou_eval.conf_dir:}``, the config folder in use (a checkout's
    ``conf/`` or a wheel's copy); ``${qzhou_eval.groups:model,benchmark}``, see
    :func:`config_groups`."""
    if not OmegaConf.has_resolver("qzhou_eval.conf_dir"):
        OmegaConf.register_new_resolver("qzhou_eval.conf_dir", lambda: str(CONF_DIR))
    if not OmegaConf.has_resolver("qzhou_eval.groups"):
        OmegaConf.register_new_resolver("qzhou_eval.groups", config_groups)


_register_resolvers()


# What a stopped run keeps, said by its signal lines and its write errors; each command says
# what it keeps (hydra_app's ``kept``), a command that keeps nothing no more than what stopped it.
RUN_KEPT = "finished results and stored vectors are kept"


def stop_line(signum: int, kept: str | None = RUN_KEPT) -> str:
    """The one line of a command stopped by ``signum``, which keeps ``kept`` (None: nothing)."""
    return early_stop.stop_line(signum, kept)


INTERRUPTED = stop_line(signal.SIGINT)  # a run's Ctrl-C line
# Exit codes of a command that stopped on a signal: 128 + the signal's number, as a shell shows.
BROKEN_PIPE_EXIT = 128 + 13  # SIGPIPE
STOPPED_CODES = {130, 143, 129, BROKEN_PIPE_EXIT}

# OSErrors that are the machine's state, not a bug: one line, exit code 1.
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


class JobFailed(Exception):
    """A multirun job that stopped with ``code`` (its one line already printed).

    An Exception, not SystemExit: Hydra records the job as failed and every launcher (basic,
    joblib, submitit) runs the other jobs to their end; the sweep then exits with ``code``.
    ``log``: the file the job's line went to (a submitit job's), which the command reads.
    """

    def __init__(self, code: int, log: str | None = None) -> None:
        super().__init__(f"job failed with exit code {code}")
        self.code = code
        self.log = log

    def __reduce__(self):  # picklable across joblib / submitit processes
        return (JobFailed, (self.code, self.log))


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM or SIGHUP, so that a run stops like on Ctrl-C."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)

    @property
    def line(self) -> str:
        return stop_line(self.signum, _stop["kept"])


def compose_config(
    config_name: str, overrides: Sequence[str] = (), *, with_hydra: bool = False
) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` with command-line style overrides (no Hydra app);
    ``with_hydra``: with Hydra's own node (``hydra.sweep.dir``, ...), which takes ``hydra.*``
    overrides too.

    Used by tests and by library callers. Hydra errors (unknown group option, bad override
    syntax) and YAML syntax errors become a one-line ConfigError.
    """
    import yaml
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    # a group given a list (benchmark=[a,b]) Hydra would merge the files of, or fail on (model=5)
    if problem := _group_option_problem(overrides):
        raise ConfigError(problem)
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
            cfg = compose(
                config_name=config_name, overrides=list(overrides), return_hydra_config=with_hydra
            )
    except (yaml.YAMLError, HydraException, OmegaConfBaseException) as e:
        problem = _config_problem(e) or _one_line(str(e))
        unknown = re.match(r"Could not override '([^']+)'", problem)
        if unknown:  # Hydra would have it appended (+key=...), where nothing reads it
            problem = (
                _unknown_key(config_name, overrides, unknown.group(1))
                or _merged_map(overrides, unknown.group(1))
                or problem
            )
        merged = re.match(r"Error merging override (.+)", problem)
        if merged:  # a value (a list) where a section of settings goes: mrl=[64]
            problem = _section_problem(config_name, overrides, merged.group(1)) or problem
        raise ConfigError(problem) from None
    except ValueError as e:  # Hydra's own check of a group's option, not a HydraError
        if not str(e).startswith("Config group override must be"):
            raise
        raise ConfigError(_one_line(str(e))) from None
    for override in overrides:
        key = override_key(override)
        section = key.rpartition(".")[0]
        if key.split(".")[0] == "canonical" and not re.search(r"[/@]", key):
            own = key.partition(".")[2] or "model"
            raise ConfigError(
                f"{key} is the official configuration, composed from the model file alone: it "
                f"is not to be overridden; set {own} instead (a run that differs from the "
                "official configuration files its results as a variant)"
            )
        # (a key of its own, not a config group's option, in a section of fixed keys, or in a
        # mapping of its own that the config does not have: +prompts.instrctions.STS12=...)
        if (
            override.startswith("+")
            and not re.search(r"[/@]", key)
            and key not in APPENDABLE_KEYS
            and key.split(".")[0] != "hydra"  # Hydra's own node, not composed here
        ):
            fixed = section in FIXED_SECTIONS
            problem = _unknown_key(config_name, overrides, key if fixed else section, key)
            if problem:
                raise ConfigError(problem)
    return cfg


def _group_option_problem(overrides: Sequence[str]) -> str | None:
    """``model=5: model picks a file of conf/model/; use one of [...]`` for the override that
    gave a config group a number, true/false, null or a list (Hydra takes only a file's name
    there; a list of names it would merge into one config). None when every group gets a name,
    or an override cannot be parsed (composing says why)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException:
        return None
    for override in parsed:
        group = override.key_or_group
        if override.is_sweep_override() or not (CONF_DIR / group).is_dir():
            continue
        value = override.value()
        options = group_options(group)
        if isinstance(value, list):
            several = (
                f"; to run several, sweep them: -m {group}={','.join(value)}"
                if len(value) > 1 and set(value) <= set(options)
                else ""
            )
            return (
                f"{override.input_line}: {group} picks one file of conf/{group}/, not a list; "
                f"use one of {options}{several}"
            )
        if not isinstance(value, str):
            return (
                f"{group}={shown(value)}: {group} picks a file of conf/{group}/; use one of "
                f"{options}"
            )
    return None


def _section_problem(config_name: str, overrides: Sequence[str], override: str) -> str | None:
    """``mrl=[64]: mrl is a section of settings, not a value; set its keys (mrl.dims=...)`` when
    ``override`` gave a value to a section (the message ``spec._section`` gives ``mrl=5``)."""
    from omegaconf import DictConfig, OmegaConf

    key, _, value = override.partition("=")
    rest = [o for o in overrides if o != override]
    try:
        base = compose_config(config_name, rest)
    except ConfigError:
        return None
    name = key.lstrip("+~")
    node = OmegaConf.select(base, name)
    if not isinstance(node, DictConfig):
        return None
    if not len(node):  # a map without keys yet (prompts.instructions of a recipe without any)
        return (
            f"{override}: {name} is a map (key: value), which a list cannot replace; give a "
            f"map, e.g. '++{name}={{<key>:\"<text>\"}}' (++ adds keys to it)"
        )
    return section_not_value(name, value, str(next(iter(node))))


# Sections whose code reads the keys their files set, and no other: a key appended there
# (``+mrl.dimz=128``, as Hydra suggests for a key it does not know) would be read by nothing.
# (Recipe files are not: ``prompts.instructions`` is a mapping of tasks, and their deprecated
# keys are taken appended; a key appended under a mapping the config lacks is refused too.)
FIXED_SECTIONS = (
    "",
    "runtime",
    "mrl",
    "data",
    "check",
    "benchmark",
    "model",
    "model.token_prepending",
)
# Maps of the user's own keys (a task's instruction, a model prompt), not settings of fixed names.
OPEN_MAPS = ("prompts.instructions", "prompts.model_prompts")
# Keys a command reads though its config file may not set them (``prompts '+text=...'``, Token
# Prepending's settings in a model file where it is off).
APPENDABLE_KEYS = ("text", *(f"model.token_prepending.{k}" for k in TOKEN_PREPENDING_KEYS))
_ABSENT = object()


def _unknown_key(
    config_name: str, overrides: Sequence[str], key: str, given: str | None = None
) -> str | None:
    """``mrl.dimz is not a key of this command's config ...; did you mean mrl.dims?`` when
    ``key`` is in no composition of ``config_name`` without the override ``given`` (default:
    ``key``) sets (None: it is, after all)."""
    import difflib

    if not key:
        return None
    given = given or key
    others = [o for o in overrides if override_key(o) != given]
    try:
        base = compose_config(config_name, others)
    except ConfigError:
        return None  # another override's own problem: that one is reported
    if OmegaConf.select(base, key, default=_ABSENT, throw_on_missing=False) is not _ABSENT:
        return None
    value = _override_value(overrides, given)
    if key in APPENDABLE_KEYS:
        return f"{key} is read only where it is added: {_pasteable(f'+{key}={value}')}"
    section, _, name = key.rpartition(".")
    if section in OPEN_MAPS:
        return f"{section} has no {name} yet: add it with {_pasteable(f'+{key}={value}')}"
    known = _dotted_keys(OmegaConf.to_container(base, resolve=False))
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.7)
    hint = f"; did you mean {close[0]}?" if close else ""
    # the command as typed where it is the Hydra app running (list takes no --cfg: the run's)
    typed = _typed_command()
    command = (
        typed
        if typed and typed == _stop["command"]
        else (f"qzhou-eval {config_name if config_name in ('report', 'check') else 'run'}")
    )
    return (
        f"{key} is not a key of this command's config, so no setting reads it{hint} ({command} "
        "--cfg job lists every key)"
    )


def override_key(override: str) -> str:
    """The key an override sets, adds or removes (``++prompts.x=1``: ``prompts.x``)."""
    return override.lstrip("+~").partition("=")[0]


def _override_value(overrides: Sequence[str], key: str) -> str:
    """What the command line gives ``key`` (``<value>`` where it is not found)."""
    given = (o.partition("=") for o in overrides if override_key(o) == key)
    return next((value for _, eq, value in given if eq), "<value>")


def _pasteable(arg: str) -> str:
    """``arg`` quoted for a POSIX shell, to paste as it is shown."""
    if "'" not in arg:
        return f"'{arg}'"
    if not any(c in arg for c in '"$`\\!'):
        return f'"{arg}"'
    return shlex.quote(arg)


def _merged_map(overrides: Sequence[str], key: str) -> str | None:
    """Hydra's "Could not override" for a map given a map: it merges the two, and a map of the
    user's own keys (``prompts.instructions``) has none of the new ones."""
    value = _override_value(overrides, key)
    if key not in OPEN_MAPS or not value.startswith("{"):
        return None
    return (
        f"{key}={value} adds keys to {key}, which Hydra merges a map into: replace the whole map "
        f"with {_pasteable(f'++{key}={value}')}, or add one key with '+{key}.<name>=<value>'"
    )


def _dotted_keys(node: Any, prefix: str = "") -> list[str]:
    if not isinstance(node, dict):
        return []
    out = []
    for k, v in node.items():
        out.append(f"{prefix}{k}")
        out += _dotted_keys(v, f"{prefix}{k}.")
    return out


def _yaml_problem(e: Exception) -> str:
    """``<file>:<line>: <problem>`` of a YAML syntax error."""
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    problem = getattr(e, "problem", None) or getattr(e, "context", None) or _one_line(str(e))
    if mark is None:
        return f"YAML syntax error: {problem}"
    name = str(mark.name)
    with_cwd = os.path.relpath(name) if os.path.isabs(name) else name
    if not with_cwd.startswith(".."):
        name = with_cwd
    return f"{name}:{mark.line + 1}: {problem}"


def _missing_option(e: BaseException) -> str | None:
    """``model=nosuch is unknown; use one of [...]`` for a config name Hydra cannot find."""
    from hydra.errors import MissingConfigException

    while e is not None and not isinstance(e, MissingConfigException):
        e = e.__cause__ or e.__context__
    if e is None or not e.missing_cfg_file or "/" not in e.missing_cfg_file:
        return None
    group, _, name = e.missing_cfg_file.rpartition("/")
    msg = f"{group.replace('/', '.')}={name} is unknown; use one of {list(e.options or [])}"
    if group == "prompts":
        msg += " (each model's recipe is conf/prompts/<model>.yaml: add one, or set prompts=none)"
    return msg


def _launcher_setting(e: BaseException) -> str | None:
    """A launcher's setting where Hydra's basic launcher runs the jobs: it has none, and Hydra
    would have it appended (+hydra.launcher.n_jobs=2), where nothing reads it."""
    found = re.match(r"Could not override '(hydra\.launcher\.[^']+)'", str(e))
    if found is None:
        return None
    chosen = [a.partition("=")[2] for a in sys.argv[1:] if a.startswith("hydra/launcher=")]
    if chosen:
        return (
            f"{found.group(1)} is not a setting of the {chosen[-1]} launcher (--cfg hydra "
            "lists them, under launcher)"
        )
    return (
        f"{found.group(1)} is a setting of a launcher this command does not use (Hydra's basic "
        "launcher, which runs the jobs one after another, has none): pick one with "
        "hydra/launcher=joblib, or hydra/launcher=slurm"
    )


def _renamed_key(e: BaseException) -> str | None:
    """``prompts.template was renamed ...`` for an override of a key that has a new name."""
    from qzhou_eval.recipe import RENAMED_KEYS

    match = re.search(r"Could not override '([^']+)'", str(e))  # a key not in the config
    key = match.group(1) if match else ""
    section, _, old = key.rpartition(".")
    if section != "prompts" or old not in RENAMED_KEYS:
        return None
    new = f"prompts.{RENAMED_KEYS[old]}"
    return f"{key} is deprecated and renamed {new} (same meaning): override {new} instead"


def _one_line(msg: str) -> str:
    text = msg.split("Config search path:")[0]  # Hydra's search-path dump says nothing useful
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return " ".join(lines[:12]) if lines else "invalid configuration"


_HYDRA_FLAGS_WITHOUT_COMPOSE_CHANGE = ("-m", "--multirun")
_CFG_PARTS = ("job", "hydra", "all")


def _without_cfg_flag(args: Sequence[str]) -> tuple[list[str], str | None]:
    """The arguments without Hydra's ``--cfg <part>`` (``-c``, ``--cfg=<part>``), and the part
    (None without the flag; "" when it lacks one)."""
    rest, part = list(args), None
    for i, arg in enumerate(rest):
        if arg.startswith("--cfg="):
            return rest[:i] + rest[i + 1 :], arg.partition("=")[2]
        if arg in ("--cfg", "-c"):
            part = rest[i + 1] if i + 1 < len(rest) else ""
            return rest[:i] + rest[i + 2 :], part
    return rest, part


def _sets_launcher(arg: str) -> bool:
    """Whether a command-line argument sets Hydra's launcher (its choice or a setting of it)."""
    plain = arg.lstrip("+~")
    return plain.startswith(("hydra/launcher=", "hydra.launcher.", "hydra.launcher="))


def _precheck(config_name: str, args: Sequence[str]) -> None:
    """Compose once before Hydra does, so a bad override is one line and exit code 2.

    A multirun (``-m``): every job's composition, and the settings that hold on any machine
    (:func:`~qzhou_eval.config.spec.check_sweep_settings`), before Hydra launches any (on a
    cluster, jobs queued only to fail, their reasons in their log files); SLURM's launcher where
    there is no SLURM. Skipped for Hydra's other flags (--help, --cfg, --config-name, ...),
    which Hydra handles.
    """
    args, shown_part = _without_cfg_flag(args)
    try:
        unknown = _unknown_flags(args)
    except ConfigError as e:
        _say(f"error: {e}")
        sys.exit(e.exit_code)
    if unknown:  # Hydra's argparse: its usage, then its error line
        _say(
            f"error: {unknown[0]} is not an option of this command: it takes key=value settings "
            "and Hydra's options (-m to sweep, --cfg job, --help)"
        )
        sys.exit(ConfigError.exit_code)
    flags = [a for a in args if a.startswith("-")]
    if any(f not in _HYDRA_FLAGS_WITHOUT_COMPOSE_CHANGE for f in flags):
        return
    overrides = [
        a for a in args if not a.startswith("-") and not a.lstrip("+~").startswith("hydra")
    ]
    try:
        if shown_part is not None:  # what --cfg prints is what a run would take: checked alike
            if shown_part not in _CFG_PARTS:
                raise ConfigError(
                    f"--cfg{' ' + shown_part if shown_part else ''}: give job (every key of the "
                    "command's config), hydra or all"
                )
            compose_config(config_name, _without_sweeps(overrides))  # (a sweep: Hydra's line)
            return
        if not flags:
            launcher = next((a for a in args if _sets_launcher(a)), None)
            if launcher is not None:  # (Hydra ignores it: a SLURM run would run here instead)
                raise ConfigError(
                    f"{launcher} sets the launcher of a sweep, and this command is no sweep: add "
                    "-m to sweep, or drop it to run here"
                )
            compose_config(config_name, overrides)
            return
        check_launcher(args)
        base = compose_config(config_name, _without_sweeps(overrides))
        jobs = list(_sweep_jobs(overrides))
        if not jobs:  # no sweep, or one only Hydra expands: what holds for every job
            _check_sweep(config_name, base)
        composed = []
        for job, swept in jobs:  # (the base alone may not be any job: num_shards=2,4 shard=3)
            try:
                cfg = compose_config(config_name, job)
                _check_sweep(config_name, cfg)
            except ConfigError as e:
                raise ConfigError(f"the sweep's job {' '.join(swept)}: {e}") from None
            composed.append((swept, cfg))
        if config_name in ("mteb", "cmteb"):
            from qzhou_eval.config.spec import check_sweep_folders

            check_sweep_folders(composed)
        _check_sweep_dir(config_name, [a for a in args if not a.startswith("-")])
    except ConfigError as e:
        if _stop["signal"] is not None:  # (a Ctrl-C inside Hydra, worded as a config error)
            raise _as_stop(e) from None
        _say(f"error: {e}")
        sys.exit(e.exit_code)


def _check_sweep_dir(config_name: str, overrides: list[str]) -> None:
    """A ConfigError where Hydra could not make the sweep's folder (``hydra.sweep.dir``, by
    default beside ``runtime.results_dir``), which it makes before any job: the folder is made,
    a file written there and both removed again."""
    from qzhou_eval.config.folders import check_writable_folder, remove_empty

    cfg = compose_config(config_name, _without_sweeps(overrides), with_hydra=True)
    folder = Path(str(cfg.hydra.sweep.dir)).expanduser()
    try:
        remove_empty(check_writable_folder("hydra.sweep.dir", folder))
    except ConfigError as e:
        raise ConfigError(
            f"{e} (where the sweep keeps its job folders, made before any job runs; "
            "hydra.sweep.dir=<folder> puts them elsewhere)"
        ) from None


def _unknown_flags(args: Sequence[str]) -> list[str]:
    """The arguments Hydra's command line takes for options it does not have (``--foo``)."""
    import io

    # Hydra's own parser (no public API names its options): what it would refuse, as it would
    from hydra._internal.utils import get_args_parser

    quiet = io.StringIO()
    try:
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            _, unknown = get_args_parser().parse_known_args(list(args))
    except SystemExit as e:  # --help, --version: Hydra answers them
        said = re.search(r": error: (.+)$", quiet.getvalue().strip())
        if e.code == 2 and said:  # a value an option lacks or refuses: argparse's own line
            raise ConfigError(said.group(1)) from None  # (not after its whole usage)
        return []
    return [a for a in unknown if a.startswith("-")]


def _check_sweep(config_name: str, cfg: DictConfig) -> None:
    if config_name in ("mteb", "cmteb"):  # a run's: the checks that hold on any node
        from qzhou_eval.config.spec import check_sweep_settings

        check_sweep_settings(cfg)


def _sweep_jobs(overrides: list[str]) -> Iterator[tuple[list[str], list[str]]]:
    """Each job of a multirun (its overrides, and of them its sweep's values), as Hydra's
    basic sweeper expands them: every combination of the sweep overrides' values. Its own
    expansion is internal to Hydra; this uses the override parser plugins are written with."""
    import itertools

    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ValueType

    enumerable = (ValueType.SIMPLE_CHOICE_SWEEP, ValueType.CHOICE_SWEEP, ValueType.RANGE_SWEEP)
    parsed = OverridesParser.create().parse_overrides(overrides)
    swept = [o for o in parsed if o.is_sweep_override()]
    if not swept or any(o.value_type not in enumerable for o in swept):
        return  # (a glob needs Hydra's config loader: its jobs check themselves)
    fixed = [o.input_line for o in parsed if not o.is_sweep_override() and o.input_line]
    sweeps = [[f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()] for o in swept]
    for values in itertools.product(*sweeps):
        yield [*fixed, *values], list(values)


def _without_sweeps(overrides: list[str]) -> list[str]:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as e:
        raise ConfigError(_config_problem(e) or _one_line(str(e))) from None
    return [o.input_line for o in parsed if not o.is_sweep_override() and o.input_line]


def _say(line: str) -> None:
    """``line`` on stderr in one write: processes that stop at once (a sweep's jobs and its
    command) never run their lines together (``print`` writes the text and the newline apart,
    which an unbuffered stderr sends as two writes)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _as_stop(e: BaseException) -> BaseException:
    """``e``, or the stop it stands for: a stop signal that lands inside a library can surface
    as another exception, its cleanup failing on what the interruption left (omegaconf's
    ``AttributeError`` while Hydra composes, which Hydra may word as a config error). Once a
    stop signal was delivered, whatever ends the command is that stop."""
    signum = _stop["signal"]
    if signum is None or isinstance(e, (KeyboardInterrupt, Terminated)):
        return e
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def _report(e: BaseException, cfg: DictConfig | None) -> int:
    """Print ``e`` as one line on stderr; return the exit code (re-raise what is a bug)."""
    e = _as_stop(e)
    if isinstance(e, KeyboardInterrupt) and _stop["pipe"]:  # raised by stdout_closed
        _stop["quiet"] = True
        return BROKEN_PIPE_EXIT
    failed = _stop["stdout_error"] if isinstance(e, KeyboardInterrupt) else e
    if isinstance(failed, StdoutError):  # a print that failed, or raised by stdout_failed
        _stop["quiet"] = True
        return _stdout_problem(failed)
    if isinstance(e, (KeyboardInterrupt, Terminated)):
        signum = e.signum if isinstance(e, Terminated) else signal.SIGINT
        _say(_stop_line(signum))
        _stop["quiet"] = True
        return 128 + signum
    if isinstance(e, OSError) and e.errno == errno.ENAMETOOLONG and not isinstance(e, WriteError):
        _say(f"error: {_name_too_long(e, cfg)}")  # (any lookup of it fails, not only a write)
        return ConfigError.exit_code
    if isinstance(e, WriteError) or (
        isinstance(e, OSError) and (e.errno in _DISK_ERRNOS or _cache_folder_problem(e))
    ):
        _say(f"error: {_write_problem(e, cfg)}")
        return 1
    if isinstance(e, UserError):
        _say(f"error: {e}")
        return e.exit_code
    raise e


def import_failed(e: OSError) -> int:
    """An app's module failed to import on a write (a library's cache folder): its one line, as
    the app would print it; the exit code. Anything else is a bug: re-raised."""
    _stop["kept"] = None  # (nothing ran: nothing to keep)
    return _report(e, None)


def _cache_folder_problem(e: OSError) -> bool:
    """A library could not make its cache folder under the home folder: HOME (or
    XDG_CACHE_HOME) names a file, or a place where no folder can be made."""
    from qzhou_eval.config.folders import cache_writer

    missing = (errno.ENOTDIR, errno.ENOENT, errno.EEXIST)
    return e.errno in missing and bool(e.filename) and cache_writer(e, e.filename) is not None


def _name_too_long(e: OSError, cfg: DictConfig | None) -> str:
    from qzhou_eval.config.folders import NAME_MAX, key_of_path, shown_value

    path = os.fsdecode(e.filename) if e.filename else ""
    where = key_of_path(cfg, path) if cfg is not None and path else None
    named = [f"{where[0]}={shown_value(where[1])}"] if where else []
    if not where or Path(where[1]).expanduser().absolute() != Path(path).absolute():
        named.append(shown_value(path))
    return (
        f"{': '.join(named)}: a file or folder name in it is longer than the file system "
        f"allows ({NAME_MAX} bytes): shorten it"
    )


def _write_problem(e: OSError, cfg: DictConfig | None) -> str:
    from qzhou_eval.config.folders import cache_writer, key_of_path

    path = e.path if isinstance(e, WriteError) else e.filename
    what = str(e) if isinstance(e, WriteError) else f"{path}: {e.strerror}"
    where = key_of_path(cfg, path) if cfg is not None and path else None
    prefix = f"{where[0]}={where[1]}: " if where else ""
    writer = cache_writer(e, path) if path and not where else None
    if writer:
        what += f" ({writer})"
    kept = f"; {_stop['kept']}" if _stop["kept"] else ""
    return f"{prefix}{what}{kept}; fix it and rerun"


def _config_problem(e: Exception) -> str | None:
    """The one-line message of a config error raised by Hydra itself, else None."""
    import yaml
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(e, yaml.YAMLError):
        return _yaml_problem(e)
    if isinstance(e, HydraException | OmegaConfBaseException):
        override = getattr(e, "override", None)  # OverrideParseException: name the override
        if override:
            return _override_problem(override, str(e))
        if "HydraConfig was not set" in str(e):  # the settings are checked before any job
            return (
                "a ${hydra:...} value (as in 'experiment=job${hydra:job.num}') is known only "
                "once Hydra runs a job, and every setting is checked before any job starts: use "
                "the job's own settings instead, e.g. 'experiment=dim_${mrl.dim}'"
            )
        return (
            _missing_option(e) or _renamed_key(e) or _launcher_setting(e) or _omegaconf_problem(e)
        )
    return None


def _omegaconf_problem(e: Exception) -> str:
    """OmegaConf's message, its first line, after the setting it names (``model.revision:
    Interpolation key 'x' not found``), not its ``full_key: ... object_type=dict`` lines."""
    said = _one_line(str(e).split("\n    full_key:")[0])
    key = getattr(e, "full_key", None)
    return f"{key}: {said}" if key and not said.startswith(f"{key}") else said


_LEXER_ERROR = "LexerNoViableAltException: "


def _override_problem(override: str, message: str) -> str:
    """``cannot parse the override ...``: the character Hydra's lexer stopped at, and the quoting
    that makes a value of any text (``'+text="今天天气很好"'``)."""
    lines = message.splitlines()
    problem = _one_line(message.split("See https://hydra.cc")[0])
    if lines and lines[0].startswith(_LEXER_ERROR) and len(lines) > 1 and "^" in lines[1]:
        column = lines[1].index("^") - len(_LEXER_ERROR)
        if 0 <= column < len(override):
            problem = f"Hydra's override grammar takes {override[column]!r} only inside quotes"
            key, _, value = override.partition("=")
            if column > len(key) and '"' not in value:  # a character of the value
                problem += "; quote the value, Hydra's quotes inside the shell's: "
                problem += f"'{key}=\"{value}\"'"
    elif (
        re.search(r"mismatched input '[{}]'|no viable alternative at input '[^']*[{}]", message)
        and '"' not in override
    ):
        key, _, value = override.partition("=")  # a brace of the text, not a ${...} reference
        problem += f"; quote the value, Hydra's quotes inside the shell's: '{key}=\"{value}\"'"
    return f"cannot parse the override {override!r}: {problem}"


@contextlib.contextmanager
def _hydra_reraises() -> Iterator[None]:
    """Let Hydra raise its errors to us (it would print them with a traceback, exit code 1)."""
    with temporary_environment({"HYDRA_FULL_ERROR": "1"}):
        yield


_HYDRA_JOB_ERROR = "Error executing job with overrides: "


@contextlib.contextmanager
def _job_failed_line_dropped() -> Iterator[None]:
    """A multirun whose jobs failed: once every job ran, Hydra writes ``Error executing job
    with overrides: [...]`` on stderr (for the first failed job only) and raises its exception.
    For a :class:`JobFailed`, whose job printed its own line, that line is dropped, and for a
    config error the app prints as one line (a ``${x}`` no key answers, which Hydra meets as it
    runs the job); for anything else it is written as Hydra would. (Hydra writes it straight to
    ``sys.stderr``.)"""
    real, held = sys.stderr, []

    class Held:
        def write(self, text: str) -> int:
            if text.startswith(_HYDRA_JOB_ERROR):
                held.append(text)
                return len(text)
            return real.write(text)

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

    sys.stderr = Held()  # type: ignore[assignment]
    try:
        yield
    except JobFailed:
        raise
    except BaseException as e:
        if not (isinstance(e, Exception) and _config_problem(e) is not None):
            for text in held:
                real.write(text)
        raise
    finally:
        sys.stderr = real


# Signals the app turns into exceptions while it runs (signal -> the handler it replaces): Ctrl-C,
# a scheduler's preemption, a closed terminal or ssh session (not under nohup, which ignores it).
_STOPPING_SIGNALS = early_stop.DEFAULT_HANDLERS
_REDELIVER_AFTER_S = 0.05


# The weak containers' callbacks (WeakKeyDictionary's and WeakValueDictionary's ``remove``,
# WeakSet's ``_remove``) and ``weakref.finalize``'s: run as a weak reference dies, anywhere; a
# Ctrl-C raised in one was swallowed ("Exception ignored in ... WeakKeyDictionary ... remove")
# and the run went on to its end (a trial)
_WEAKREF_FILES = re.compile(r"(^|[\\/])_?weakref(set)?\.py$")
_WEAKREF_CALLBACKS = frozenset({"remove", "_remove", "__call__"})


def _in_finalizer(frame: FrameType | None) -> bool:
    """Whether ``frame`` runs inside a ``__del__``, inside a garbage collector callback (one of
    ``gc.callbacks``, which libraries register: hypothesis times collections with one), inside
    the weakref callback that drops one of the import machinery's module locks
    (``_get_module_lock``'s ``cb``; another thread's import can run it in this one), or inside
    a weak container's or ``weakref.finalize``'s callback: Python swallows what is raised in
    any of them. An import itself is not one: an exception raised
    there propagates."""
    collector = {getattr(getattr(c, "__func__", c), "__code__", None) for c in gc.callbacks}
    while frame is not None:
        code = frame.f_code
        if (
            code.co_name == "__del__"
            or code in collector
            or (code.co_name == "cb" and code.co_filename.startswith("<frozen importlib"))
            or (_WEAKREF_FILES.search(code.co_filename) and code.co_name in _WEAKREF_CALLBACKS)
        ):
            return True
        frame = frame.f_back
    return False


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """While the app runs, SIGINT raises KeyboardInterrupt, SIGTERM and SIGHUP :class:`Terminated`.

    Only where no one else installed a handler. A signal that lands inside a finalizer (e.g. a
    library object's ``__del__`` run by the garbage collector) would be swallowed there ("Exception
    ignored in ...") and the run would go on: it is delivered again a moment later instead.
    """
    active = threading.Event()

    def redeliver(signum: int) -> None:
        if active.is_set():
            os.kill(os.getpid(), signum)

    def handler(signum: int, frame: FrameType | None) -> None:
        if _in_finalizer(frame):
            threading.Timer(_REDELIVER_AFTER_S, redeliver, (signum,)).start()
            return
        _stop["signal"] = signum
        for other, _ in installed:  # a second one ends the process at once
            signal.signal(other, _exit_now)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated(signum)

    installed = []
    if threading.current_thread() is threading.main_thread():
        for signum, default in _STOPPING_SIGNALS.items():
            current = signal.getsignal(signum)
            if current == default or early_stop.taken_early(current):  # (the process's start)
                signal.signal(signum, handler)
                installed.append((signum, default))
    active.set()
    _stop["raising"] = any(signum == signal.SIGINT for signum, _ in installed)
    previous_hook = threading.excepthook
    threading.excepthook = _thread_error_unless_stopping(previous_hook)
    try:
        yield
    finally:
        _stop["raising"] = False
        active.clear()
        if _stop["signal"] is None:  # (stopping: threads may still fail on the way out)
            threading.excepthook = previous_hook
        for signum, default in installed:
            signal.signal(signum, default)
        if installed:
            _quiet_at_shutdown()


def _thread_error_unless_stopping(
    hook: Callable[[threading.ExceptHookArgs], Any],
) -> Callable[[threading.ExceptHookArgs], Any]:
    """``hook``, but for a thread that fails once the command stops (a signal, a closed pipe):
    its line says what stopped it. (joblib's executor thread, killing its workers on Ctrl-C,
    printed a traceback when the same Ctrl-C reached the ``pgrep`` it runs to find them.)"""

    def quiet(args: threading.ExceptHookArgs) -> Any:
        if _stop["signal"] is None and not _stop["pipe"]:
            return hook(args)
        return None

    return quiet


_shutdown_hook_registered = False


def _quiet_at_shutdown() -> None:
    """Once the interpreter shuts down (after the command: threads joined, atexit callbacks such
    as torch's), a stopping signal exits at once, quietly (:func:`_exit_now`).

    Registered with threading's shutdown callbacks, which run first at exit (before it joins
    threads and before any atexit callback) and last-registered first: a private function of the
    standard library (used by concurrent.futures since 3.9), as no public hook runs that early;
    ``atexit`` where it is missing. Registered after the command ran, so that a process that goes
    on (tests that call an app in-process) keeps the usual handlers until it exits. A command
    that is the process's whole life (:func:`run_as_process`) takes them now: between its end and
    the interpreter's shutdown, a SIGTERM ended it with the default action (no exit code of its
    own) and a Ctrl-C raised in the library code still running (Hydra's)."""
    global _shutdown_hook_registered
    if _stop["owns_process"]:
        _signals_exit_now()
    if _shutdown_hook_registered:
        return
    register = getattr(threading, "_register_atexit", None)
    try:
        (register or atexit.register)(_signals_exit_now)
    except RuntimeError:  # the interpreter is shutting down already
        _signals_exit_now()
    _shutdown_hook_registered = True


def _signals_exit_now() -> None:
    _stop["quiet"] = True  # the command said all it had to
    if threading.current_thread() is threading.main_thread():
        for signum, default in _STOPPING_SIGNALS.items():
            if signal.getsignal(signum) == default:  # not one ignored (nohup) or taken
                signal.signal(signum, _exit_now)


# The first stopping signal, and whether its line is printed (or the command is done); whether
# stdout's reader went away (pipe), or a write to stdout failed (stdout_error: the StdoutError);
# what the command running keeps when it stops (its hydra_app's ``kept``).
_stop: dict[str, Any] = {
    "owns_process": False,  # the command is this process's whole life (run_as_process)
    "kept": RUN_KEPT,
    "signal": None,
    "quiet": False,
    "pipe": False,
    "raising": False,
    "stdout_error": None,
    "job_ran": False,  # whether Hydra ran a job of the command (then a ValueError is no flag's)
    "command": "",  # the Hydra app's command as typed (qzhou-eval shards; "": none runs)
}


def _stop_line(signum: int) -> str:
    return stop_line(signum, _stop["kept"])


def run_as_process(command: Callable[[], Any]) -> None:
    """Run ``command`` (an app's entry, the console script) as this process's whole life: a
    script's or ``python -m``'s ``__main__``. Then a stopped command ends the process once its
    line is out (:func:`_end_stopped_process`); called in-process (tests), it only returns."""
    _stop["owns_process"] = True
    command()


def _end_stopped_process(e: SystemExit) -> None:
    """End a process that a signal stopped at once, with ``e``'s code, once the command has
    unwound (its pools and workers stopped, its files whole).

    A library's thread goes on after the stop: the first task's data loading beside the model
    (datasets building Arrow tables), a thread pool's workers. Left to the interpreter's
    shutdown, its non-daemon threads are joined (a run hung until SIGKILL after its
    ``terminated`` line), and a daemon thread still in C code meets the interpreter finalizing
    (``Fatal Python error: PyGILState_Release``, exit 134): a trial stopped runs that read a
    large mirror so, 12 times of 19. Without other threads too: a Ctrl-C that landed in code a
    library runs through ``exec`` (dataclasses' generated methods, as mteb imports) marks the
    interrupt as unhandled although it was, and the interpreter of ``python -m`` then ended by
    SIGINT (-2) after the line, not with 130. The logging handlers and the console are flushed
    first; nothing else at exit is the command's (what it writes, it writes whole as it goes)."""
    if not _stop["owns_process"] or _stop["signal"] is None:
        return
    code = e.code if isinstance(e.code, int) else int(e.code is not None)
    with contextlib.suppress(Exception):
        logging.shutdown()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    os._exit(code)


def _exit_now(signum: int, frame: FrameType | None) -> None:
    """End the process now, with the first stopping signal's code and line (once), and a
    sweep's joblib processes with it."""
    kill_launcher_processes()
    # the records of evaluations under way, which no exception unwinds now: released, so that
    # another run (on another node too) finds their tasks free at once. Looked up, not imported:
    # only a run has any, and the app is below the runs.
    identity = sys.modules.get("qzhou_eval.runs.identity")
    if identity is not None:
        identity.undo_claims_underway()
    first = _stop["signal"] or signum
    with contextlib.suppress(Exception):
        if not _stop["quiet"] and not _stop["pipe"]:
            _say(_stop_line(first))
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(BROKEN_PIPE_EXIT if _stop["pipe"] else 128 + first)


_tied_to_launcher = False


def _die_with_launcher() -> None:
    """In a sweep's job run by a process of its launcher (joblib's workers, children of the
    command's process): end this process once the command's is gone, ``kill -9`` included, as a
    run's own workers do, rather than run on (holding its devices) and idle for good, with no
    one to report to. A job in the command's own process (Hydra's basic launcher), or started
    by a scheduler (SLURM), has no such parent, and is left alone."""
    global _tied_to_launcher
    import multiprocessing

    parent = multiprocessing.parent_process()
    if _tied_to_launcher or parent is None or parent.pid is None or not _in_multirun():
        return
    from qzhou_eval.encoder.lifeline import die_with_parent

    die_with_parent(parent.pid, kernel_signal=False)  # (joblib starts them from its thread)
    _tied_to_launcher = True


class LineFormatter(logging.Formatter):
    """The job logs' lines (``conf/hydra/job_logging/lines.yaml``): the message, a warning's
    after ``warning: ``, as the warnings the apps print themselves."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        return f"warning: {line}" if record.levelno == logging.WARNING else line


def warnings_as_lines() -> None:
    """Python's warnings as the log's ``warning:`` lines: one line each (the message's first),
    once per process and text. Printed raw, each is the message, the file and the source line:
    scikit-learn's ConvergenceWarning is nine lines, once per classifier mteb fits (ten for a
    classification task at a small MRL size)."""
    shown: set[tuple[str, str]] = set()
    log = logging.getLogger("py.warnings")  # the logger Python's own capture uses

    def show(message: Any, category: type, filename: str, lineno: int, *_: Any) -> None:
        text = next((ln.strip() for ln in str(message).splitlines() if ln.strip()), "").rstrip(":")
        if (category.__name__, text) in shown:
            return
        shown.add((category.__name__, text))
        parts = Path(filename).parts
        where = parts[parts.index("site-packages") + 1] if "site-packages" in parts[:-1] else ""
        log.warning("%s%s: %s", category.__name__, f" ({where})" if where else "", text)

    warnings.showwarning = show


class StdoutLogHandler(logging.StreamHandler):
    """The job logs' handler (``conf/hydra/job_logging/lines.yaml``: plain lines on stdout).

    A reader that goes away (``qzhou-eval run ... | head -1``) ends the command as it ends one
    that prints (exit code 141, nothing printed). logging catches the BrokenPipeError of its
    handlers itself and prints a traceback for each record after it, so the print's way
    (:func:`quiet_broken_pipe`) never sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        # submitit prints its records with handlers of its own (set up as it is imported, in a
        # sweep's command and in each of its jobs); they reach this one too: each line twice
        if record.name.partition(".")[0] == "submitit" and any(
            not isinstance(h, logging.NullHandler) for h in logging.getLogger("submitit").handlers
        ):
            return False
        return bool(super().filter(record))

    def handleError(self, record: logging.LogRecord) -> None:
        failed = sys.exc_info()[1]
        if isinstance(failed, BrokenPipeError):
            stdout_closed()
        elif isinstance(failed, StdoutError):
            stdout_failed(failed)
        else:
            super().handleError(record)


def stdout_closed() -> None:
    """stdout's reader went away (seen in any thread): stdout is pointed at devnull, so that
    nothing else fails on it, and the command stops as on Ctrl-C (its way out: vectors stored,
    processes stopped), quietly, with exit code 141."""
    if _stop["pipe"]:
        return
    _stop["pipe"] = True
    _stop_without_stdout()


def stdout_failed(e: OSError) -> None:
    """stdout could not be written (seen in any thread): the command stops as on Ctrl-C, and
    says why (:func:`_stdout_problem`), with exit code 1."""
    if _stop["stdout_error"] is not None or _stop["pipe"]:
        return
    _stop["stdout_error"] = e
    _stop_without_stdout()


def _stop_without_stdout() -> None:
    """stdout to devnull, so that nothing else fails on it; the command stops as on Ctrl-C."""
    _stdout_to_devnull()
    if _stop["raising"] and _stop["signal"] is None:
        os.kill(os.getpid(), signal.SIGINT)  # raised in the main thread, whichever logged


class StdoutError(OSError):
    """A write to stdout failed (a full disk, an I/O error; not a closed pipe): raised in place
    of the OSError, which names no file, so that it is told from any other."""


class _StdoutWrites:
    """sys.stdout, whose failed writes raise :class:`StdoutError`; all else is the stream's."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as e:
            raise StdoutError(e.errno, e.strerror) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as e:
            raise StdoutError(e.errno, e.strerror) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _StderrWrites:
    """sys.stderr, whose failed writes (closed, a full disk: ``2>/dev/full``) never stop the
    command: the stream then goes to /dev/null (nothing is left to flush at exit, where a failed
    flush would turn the exit code into 120), and what the command would have said as an error
    line (``error: ...``, ``interrupted: ...``, ``terminated ...``) goes to stdout instead;
    warnings and progress are dropped. All else is the stream's."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.failed = False

    def write(self, text: str) -> int:
        if not self.failed:
            try:
                n = self._stream.write(text)
                self._stream.flush()
                return n
            except (OSError, ValueError):
                self.failed = True
                _to_devnull(self._stream)
        if text.startswith(("error:", "interrupted", "terminated")) and sys.stdout is not None:
            with contextlib.suppress(OSError, ValueError):
                sys.stdout.write(text if text.endswith("\n") else text + "\n")
                sys.stdout.flush()
        return len(text)

    def flush(self) -> None:
        if not self.failed:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self.failed = True
                _to_devnull(self._stream)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _stdout_problem(e: OSError) -> int:
    """One line for stdout that cannot be written; exit code 1, as for a full disk."""
    _stdout_to_devnull()  # so that the interpreter's own flush at exit does not fail again
    why = e.strerror or str(e) or type(e).__name__
    with contextlib.suppress(OSError, ValueError):
        _say(f"error: cannot write to stdout: {why}; fix it and rerun")
    return 1


def _stdout_to_devnull() -> None:
    _to_devnull(sys.stdout)


def _to_devnull(stream: Any) -> None:
    """``stream``'s file descriptor to /dev/null: what it still holds is flushed there."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


def tolerant_console() -> None:
    """stdout and stderr never raise UnicodeEncodeError: what the console's encoding cannot show
    (``PYTHONIOENCODING=ascii``, a C locale) is written as backslash escapes (``\\u4eca``); a
    write that stdout fails raises :class:`StdoutError`. (Python gives a C locale's stdout
    ``surrogateescape``, which writes undecodable bytes back but fails on any other character
    beyond ASCII, where UTF-8 mode is off: ``PYTHONUTF8=0``.)"""
    for stream in (sys.stdout, sys.stderr):
        raising = getattr(stream, "errors", None) in ("strict", "surrogateescape")
        if raising and hasattr(stream, "reconfigure"):
            with contextlib.suppress(ValueError, OSError):
                stream.reconfigure(errors="backslashreplace")
    if sys.stdout is not None and not isinstance(sys.stdout, _StdoutWrites):
        sys.stdout = _StdoutWrites(sys.stdout)  # type: ignore[assignment]
    if sys.stderr is not None and not isinstance(sys.stderr, _StderrWrites):
        sys.stderr = _StderrWrites(sys.stderr)  # type: ignore[assignment]


@contextlib.contextmanager
def quiet_broken_pipe() -> Iterator[None]:
    """A reader that goes away (``qzhou-eval prompts | head -1``) ends the command quietly;
    stdout that cannot be written (``> /dev/full``) ends it with one line, exit code 1.

    Exit code 141, as a command killed by SIGPIPE (Python ignores that signal and raises
    BrokenPipeError instead). As Python's documentation advises, stdout is then pointed at
    devnull, so that the interpreter's own flush at exit does not fail a second time.
    """
    try:
        try:
            yield
        finally:
            sys.stdout.flush()  # inside the try: buffered output meets the closed pipe here
    except BrokenPipeError:
        _stdout_to_devnull()
        sys.exit(BROKEN_PIPE_EXIT)
    except StdoutError as e:  # stdout on a full disk: one line
        sys.exit(_stdout_problem(e))


def _printing_not_sweeping(args: list[str]) -> list[str]:
    """``-m ... --cfg hydra`` prints the config a sweep would use; Hydra allows only one of the
    two flags, so the sweep flag goes (the printed settings, the launcher's included, are the
    same)."""
    prints = any(a in ("--cfg", "-c") or a.startswith("--cfg=") for a in args)
    return [a for a in args if a not in ("-m", "--multirun")] if prints else args


def _swept_while_printing(args: list[str]) -> str | None:
    """The first sweep override (``mrl.dim=128,256``) of a ``-m ... --cfg`` command, else None:
    what ``--cfg`` prints is one job's config, so a sweep has no one config to print (without
    this, Hydra would read the sweep as an ambiguous value and suggest the ``-m`` already
    given)."""
    prints = any(a in ("--cfg", "-c") or a.startswith("--cfg=") for a in args)
    if not prints or not any(a in ("-m", "--multirun") for a in args):
        return None
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    for arg in args:
        if arg.startswith("-") or "=" not in arg:
            continue
        try:
            (override,) = parser.parse_overrides([arg])
        except Exception:  # not parsable: Hydra names it when it composes
            continue
        if override.is_sweep_override():
            return arg
    return None


def _full_flags(args: Sequence[str]) -> list[str]:
    """``args`` with Hydra's options written in full: its parser takes any unambiguous prefix
    (``--multi`` for ``--multirun``), and the checks before it compare whole names (an
    abbreviated ``--multirun`` would skip the sweep's checks)."""
    from hydra._internal.utils import get_args_parser

    # argparse has no public list of a parser's options; its actions' option strings are it
    names = [s for a in get_args_parser()._actions for s in a.option_strings if s[:2] == "--"]
    out = []
    for arg in args:
        name, eq, value = arg.partition("=")
        if name[:2] == "--" and name not in names:
            matches = [n for n in names if n.startswith(name)]
            if len(matches) == 1:
                arg = matches[0] + eq + value
        out.append(arg)
    return out


def _flags_first(args: Sequence[str]) -> list[str]:
    """``args`` with Hydra's options (and their values) before the overrides, each group in its
    order: its parser (argparse's ``parse_args``) takes no option after an override and refuses
    the rest of the line (``run model=minilm --help``, ``run model=x -m mrl.dim=64,128``)."""
    from hydra._internal.utils import get_args_parser

    # (argparse has no public list of a parser's options: see _full_flags)
    actions = {s: a for a in get_args_parser()._actions for s in a.option_strings}
    flags: list[str] = []
    overrides: list[str] = []
    unvalued: list[str] = []  # an option missing its value: last, for the parser to say so
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if not arg.startswith("-"):
            overrides.append(arg)
            continue
        action = actions.get(arg)
        given = bool(rest) and not rest[0].startswith("-")
        if action is not None and action.nargs == "?":  # (--info: a value, not an override)
            given = given and ("=" not in rest[0] and rest[0][:1] not in "~+")
        if action is not None and action.nargs in (None, "?") and not given:
            unvalued.append(arg)  # (before an override, argparse would take that as its value)
            continue
        flags.append(arg)
        if action is not None and given and action.nargs in (None, "?"):
            flags.append(rest.pop(0))  # its value
    return [*flags, *overrides, *unvalued]


def _without_overrides_for_hydra_help(args: list[str]) -> list[str]:
    """``--hydra-help`` prints Hydra's own help, which no override changes; Hydra applies them
    to the config of that help, where a group like ``model`` is not, and fails on it."""
    if "--hydra-help" not in args:
        return args
    return [a for a in args if a.startswith("-") or not ("=" in a or a[:1] in "~+")]


def _help_names_the_command(args: list[str]) -> list[str]:
    """``--help`` shows the command as it was typed (``qzhou-eval run``, ``python run_mteb.py``)."""
    if not any(a in ("--help", "-h") for a in args):
        return args
    program = _typed_command()
    if not program:
        return args
    quoted = program.replace("'", "\\'")  # (a quote inside Hydra's quoted value: escaped)
    return [*args, f"hydra.help.app_name='{quoted}'"]


def _typed_command() -> str:
    """The command as it was typed: ``qzhou-eval shards``, ``python -m qzhou_eval.report``,
    ``python run_mteb.py`` ("" where this process runs none of them, e.g. a test's)."""
    program = sys.argv[0]
    return program if program.startswith("qzhou-eval") else _python_command(program)


def _python_command(script: str) -> str:
    """``python -m qzhou_eval.report`` for a module of this package run with ``-m`` (Python sets
    ``sys.argv[0]`` to its file), ``python run_mteb.py`` for a script; "" if neither."""
    path = Path(script).resolve()
    package = Path(__file__).resolve().parents[1]  # qzhou_eval/
    if path.suffix != ".py":
        return ""
    if path.is_relative_to(package):
        parts = path.relative_to(package.parent).with_suffix("").parts
        return "python -m " + ".".join(parts[:-1] if parts[-1] == "__main__" else parts)
    # (as typed: from another folder, its bare name names no file there)
    return f"python {shlex.quote(script)}" if path.name != "__main__.py" else ""


def hydra_app(
    config_name: str, kept: str | None = RUN_KEPT
) -> Callable[[Callable[[DictConfig], Any]], Callable[[], None]]:
    """Decorator: turn ``fn(cfg)`` into a Hydra command-line app over ``conf/``.

    What stops ``fn`` is printed as one line with its exit code (see the module docstring);
    any other exception is a bug and keeps its traceback. ``kept``: what the command keeps when
    a signal or a failed write stops it, said in that line (None: it writes nothing to keep).
    """

    def wrap(fn: Callable[[DictConfig], Any]) -> Callable[[], None]:
        import hydra

        @functools.wraps(fn)
        def task(cfg: DictConfig) -> None:
            _stop["job_ran"] = True
            _die_with_launcher()
            try:
                with warnings.catch_warnings():  # (the way warnings are shown, restored after)
                    warnings_as_lines()
                    fn(cfg)
                code = 0
            except SystemExit as e:  # the app's own exit code (e.g. a task failed)
                code = e.code if isinstance(e.code, int) else int(e.code is not None)
            except BrokenPipeError:  # the reader went away: quiet_broken_pipe ends it
                code = BROKEN_PIPE_EXIT
            except (Exception, KeyboardInterrupt, Terminated) as e:
                code = _report(e, cfg)
            if _stop["pipe"] and code == 0:  # its log lines went to a reader that went away
                code = BROKEN_PIPE_EXIT
            elif _stop["stdout_error"] is not None and code == 0:  # ... or could not be written
                code = _stdout_problem(_stop["stdout_error"])
            if code:
                if _in_multirun() and code not in STOPPED_CODES:
                    raise JobFailed(code, job_log())  # Hydra marks it failed; the others run
                sys.exit(code)

        main = hydra.main(config_path=str(CONF_DIR), config_name=config_name, version_base=None)(
            task
        )

        def entry() -> None:
            try:
                command()
            except SystemExit as e:  # (the command's end: its line is out)
                _end_stopped_process(e)
                raise

        def command() -> None:
            args = _flags_first(_full_flags(sys.argv[1:]))
            sys.argv = [sys.argv[0], *_without_overrides_for_hydra_help(args)]
            swept = _swept_while_printing(sys.argv[1:])
            if swept is not None:
                _say(
                    f"error: --cfg prints one job's config, and {swept} sweeps (-m): give one of "
                    "its values to print that job's config"
                )
                sys.exit(ConfigError.exit_code)
            sys.argv = [sys.argv[0], *_help_names_the_command(_printing_not_sweeping(sys.argv[1:]))]
            tolerant_console()
            _stop["pipe"] = False  # a command run in this process before may have met one
            _stop["signal"] = None
            _stop["kept"] = kept
            _stop["stdout_error"] = None
            _stop["job_ran"] = False
            _stop["command"] = _typed_command()
            with quiet_broken_pipe(), _signals_raise(), _hydra_reraises():
                try:
                    _precheck(config_name, sys.argv[1:])
                    if any(a in ("-m", "--multirun") for a in sys.argv[1:]):
                        # a sweep: joblib's processes, stopped, leave no "leaked semaphore" lines
                        start_resource_tracker()
                        if any("launcher=joblib" in a for a in sys.argv[1:]):
                            start_launcher_resource_tracker()
                    with _job_failed_line_dropped():
                        main()
                except JobFailed as e:  # after every job ran; its line was printed
                    if e.log is not None:  # ... in its log file (submitit), not here
                        _say(failed_job_line(e.code, e.log))
                    sys.exit(e.code)
                except (KeyboardInterrupt, Terminated) as e:  # before or between Hydra's jobs
                    stop_launcher_processes()
                    sys.exit(_report(e, None))
                except BrokenProcessPool as e:  # a joblib job's process killed: joblib stops all
                    stop_launcher_processes()
                    said = str(e).strip().splitlines() or [type(e).__name__]
                    why = next((ln for ln in said if "exit code" in ln), said[0]).strip()
                    _say(
                        f"error: a job's process of the sweep ended abruptly (killed, or out of "
                        f"memory: {why}), and the launcher stopped the other jobs; finished "
                        "results and stored vectors are kept: rerun the same command to resume"
                    )
                    sys.exit(DeviceError.exit_code)
                except Exception as e:  # Hydra composing a job (a multirun's sweep values)
                    if _stop["signal"] is not None:  # (see _as_stop)
                        stop_launcher_processes()
                        sys.exit(_report(e, None))
                    stopped = timed_out(e) or lost_job(e)
                    if stopped is not None:  # a joblib job past its timeout, a submitit one lost
                        stop_launcher_processes()
                        _say(f"error: {stopped}")
                        sys.exit(DeviceError.exit_code)
                    if isinstance(e, OSError) and e.errno is not None:  # Hydra's own writes
                        sys.exit(_report(e, None))  # (the sweep's folder)
                    problem = _config_problem(e)
                    if problem is None and isinstance(e, ValueError) and not _stop["job_ran"]:
                        problem = _one_line(str(e))  # Hydra's own check of its flags
                    if problem is None:
                        raise  # a bug: keep its traceback
                    _say(f"error: {problem}")
                    sys.exit(ConfigError.exit_code)

        return entry

    return wrap
