"""``qzhou-eval <command> [Hydra overrides]``: the console script, one subcommand per app.

    qzhou-eval run model=minilm benchmark=demo_eng      # evaluate (conf/mteb.yaml)
    qzhou-eval prompts model=qzhou_embedding_zh benchmark=cmteb
    qzhou-eval report results_dir=results benchmark=cmteb
    qzhou-eval mirror benchmark=cmteb data.mirror=/data/mteb-mirror
    qzhou-eval check model=qzhou_embedding check.random_weights=true
    qzhou-eval shards benchmark=mteb_eng_v2 benchmark.num_shards=2
    qzhou-eval list tasks benchmark=cmteb

Each subcommand but ``list`` is a Hydra app (:func:`qzhou_eval.config.hydra_app`): the same
overrides, flags (``-m``, ``--cfg job``, ``--help``) and one-line errors as ``run_mteb.py`` /
``python -m qzhou_eval.<app>``. A subcommand is one line in :data:`COMMANDS`.
"""

from __future__ import annotations

from qzhou_eval.early_stop import stop_early

stop_early(__name__)  # first: a Ctrl-C as the imports below run gets the command's line

import importlib
import signal
import sys
from collections.abc import Callable
from typing import NamedTuple

from omegaconf import DictConfig

from qzhou_eval import __version__
from qzhou_eval.config.app import (
    CONF_DIR,
    INTERRUPTED,
    hydra_app,
    import_failed,
    quiet_broken_pipe,
    run_as_process,
    stop_line,
    tolerant_console,
)


class Command(NamedTuple):
    app: str  # "module:attribute" of the Hydra app, imported only when the command runs
    help: str


COMMANDS: dict[str, Command] = {
    "run": Command("qzhou_eval.cli:run", "evaluate a model on a benchmark"),
    "prompts": Command("qzhou_eval.prompts:main", "print the exact model input of every task"),
    "report": Command("qzhou_eval.report.__main__:main", "leaderboard tables, reproduction report"),
    "mirror": Command("qzhou_eval.mirror.__main__:main", "fill an offline mirror of the datasets"),
    "check": Command("qzhou_eval.check.__main__:main", "check this machine before a long run"),
    "shards": Command("qzhou_eval.shards.__main__:main", "show the tasks of each of N shards"),
    "list": Command("qzhou_eval.listing:main", "list benchmarks, models or a benchmark's tasks"),
}


def run_app(config_name: str) -> Callable[[], None]:
    """The evaluation app over ``conf/<config_name>.yaml`` (``mteb``: any benchmark=...)."""

    @hydra_app(config_name)
    def evaluate(cfg: DictConfig) -> None:
        from qzhou_eval.runs.launch import prepare

        prepare(cfg)  # before the imports below: the scoring processes' imports overlap them
        # Imported here, not at the top: the app's one-line Ctrl-C handling covers these seconds.
        from qzhou_eval.runs.cli import run_from_config

        code = run_from_config(cfg)
        if code:
            sys.exit(code)

    return evaluate


run = run_app("mteb")


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {c.help}" for name, c in COMMANDS.items()]
    return "\n".join(
        [
            "usage: qzhou-eval <command> [key=value ...] [Hydra flags]",
            "       qzhou-eval --version",
            "",
            "commands:",
            *lines,
            "",
            "qzhou-eval <command> --help: the command's main keys; --cfg job: every key.",
            f"config files: {CONF_DIR}",
            "the README (in the source, and the package's description) explains each command",
        ]
    )


def version() -> str:
    """``qzhou-eval 0.1.0 (mteb 2.26.24, Python 3.11.7)``: what decides a run's numbers."""
    from importlib import metadata

    def installed(dist: str, fallback: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return fallback

    mteb = installed("mteb", "not installed")
    python = ".".join(map(str, sys.version_info[:3]))
    return f"qzhou-eval {installed('qzhou-eval', __version__)} (mteb {mteb}, Python {python})"


def main(argv: list[str] | None = None) -> None:
    """Dispatch ``qzhou-eval <command> ...`` to the command's Hydra app (``argv`` None: this
    process's own arguments, as the console script: the command is then the process's whole
    life, :func:`qzhou_eval.config.app.run_as_process`)."""
    if argv is None:
        run_as_process(lambda: main(sys.argv[1:]))
        return
    tolerant_console()
    with quiet_broken_pipe():
        _dispatch(list(argv))


def _dispatch(args: list[str]) -> None:
    if not args:
        print(usage(), file=sys.stderr)
        print(f"error: name a command, one of {list(COMMANDS)}", file=sys.stderr)
        sys.exit(2)
    if args[0] in ("-h", "--help", "help"):
        print(usage())
        sys.exit(0)
    if args[0] in ("-V", "--version"):
        print(version())
        sys.exit(0)
    name, rest = args[0], args[1:]
    # (Hydra's own flag, or a prefix argparse takes for it, would print Hydra's version)
    if any(a.startswith("--v") and "--version".startswith(a) for a in rest):
        print(version())
        sys.exit(0)
    if name not in COMMANDS:
        flag = " (a flag goes after the command: qzhou-eval run " + name + ")"
        print(
            f"error: unknown command {name!r}; use one of {list(COMMANDS)}"
            + (flag if name.startswith("-") else ""),
            file=sys.stderr,
        )
        sys.exit(2)
    module, _, attribute = COMMANDS[name].app.partition(":")
    try:
        app = getattr(importlib.import_module(module), attribute)
    except KeyboardInterrupt:  # the app's own handling starts once it runs
        print(INTERRUPTED if name == "run" else stop_line(signal.SIGINT, None), file=sys.stderr)
        sys.exit(130)
    except OSError as e:  # mteb makes its cache folder as it imports (HOME a file: no folder)
        sys.exit(import_failed(e))
    sys.argv = [f"qzhou-eval {name}", *rest]  # what the Hydra app reads (and --help shows)
    app()


if __name__ == "__main__":
    main()
