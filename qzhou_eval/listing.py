"""``qzhou-eval list benchmarks|models|tasks``: what the config folder offers, one line each.

    qzhou-eval list benchmarks                 # benchmark files: source, name, task count
    qzhou-eval list models                     # model files: Hub id, revision, output size
    qzhou-eval list tasks benchmark=cmteb      # one benchmark file's tasks (default: the run's)

Names are the file names that ``benchmark=`` / ``model=`` take. Not a Hydra app: the word after
``list`` says what to list; ``benchmark=<file>``, ``benchmark.tasks=[...]`` and the shard
(``benchmark.num_shards=N benchmark.shard=K``) narrow ``tasks`` as they narrow a run.
"""

from __future__ import annotations

from qzhou_eval.early_stop import stop_early

stop_early(__name__)  # first: a Ctrl-C as the imports below run gets the command's line

import sys
from collections.abc import Callable, Sequence

from omegaconf import OmegaConf

from qzhou_eval.config.app import compose_config, config_dir, import_failed, quiet_broken_pipe
from qzhou_eval.errors import ConfigError, UserError

USAGE = (
    "usage: qzhou-eval list benchmarks|models|tasks [benchmark=<file>] ['benchmark.tasks=[...]'] "
    "[benchmark.num_shards=N benchmark.shard=K]"
)


def _names(group: str) -> list[str]:
    return sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))


def list_benchmarks(overrides: Sequence[str] = ()) -> list[str]:
    from qzhou_eval.benchmarks import filtered_tasks

    lines = []
    for name in _names("benchmark"):
        bench = compose_config("mteb", [f"benchmark={name}", *overrides]).benchmark
        n = len(filtered_tasks({**bench, "tasks": None}))
        lines.append(f"{name:<14} {bench.source:<6} {bench.name:<16} {n:>3} task(s)")
    return lines


def list_models(overrides: Sequence[str] = ()) -> list[str]:
    lines = []
    for name in _names("model"):
        model = compose_config("mteb", [f"model={name}", *overrides]).model
        hub = "(set model.name)" if OmegaConf.is_missing(model, "name") else str(model.name)
        dims = str(model.get("embed_dim") or "-")
        path = model.get("path") or "the Hub id"
        lines.append(f"{name:<22} {hub:<38} {str(model.revision)[:12]:<12} {dims:>5} dims  {path}")
    return lines


def list_tasks(overrides: Sequence[str] = ()) -> list[str]:
    """The tasks a run of these overrides evaluates: the benchmark's, narrowed by
    ``benchmark.tasks`` and by the shard (``benchmark.num_shards``/``shard``, checked as a run
    checks them)."""
    from qzhou_eval.benchmarks import load_benchmark_tasks

    bench = compose_config("mteb", list(overrides)).benchmark
    tasks = load_benchmark_tasks(bench)
    width = max((len(t.metadata.name) for t in tasks), default=0)
    shards = bench.get("num_shards", 1)
    shard = f", shard {bench.get('shard', 0)} of {shards}" if shards != 1 else ""
    lines = [f"{bench.name}: {len(tasks)} task(s){shard}"]
    for task in tasks:
        meta = task.metadata
        langs = ",".join(sorted({lang.split("-")[0] for lang in meta.languages}))
        lines.append(f"  {meta.name:<{width}}  {meta.type:<20} {langs}")
    return lines


LISTS: dict[str, Callable[[Sequence[str]], list[str]]] = {
    "benchmarks": list_benchmarks,
    "models": list_models,
    "tasks": list_tasks,
}


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    helped = any(a in ("-h", "--help") for a in args)
    if not args or helped:
        print(USAGE, file=sys.stdout if args else sys.stderr)
        if helped:
            print(f"The config files: {config_dir()}")
        else:
            print("error: name what to list: benchmarks, models or tasks", file=sys.stderr)
        sys.exit(0 if args else 2)
    what, overrides = args[0], args[1:]
    with quiet_broken_pipe():
        try:
            flag = next((a for a in args if a.startswith("-")), None)
            if flag is not None:  # not a Hydra app: none of its flags (-m, --cfg) apply
                raise ConfigError(
                    f"list takes no option {flag} (only --help): name what to list, then "
                    "the benchmark's overrides"
                )
            if what not in LISTS:
                raise ConfigError(f"cannot list {what!r}; use one of {list(LISTS)}")
            if what != "tasks" and overrides:
                raise ConfigError(f"list {what} takes no overrides (got {overrides})")
            lines = LISTS[what](overrides)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(e.exit_code)
        except OSError as e:  # mteb makes its cache folder as it imports (HOME a file)
            sys.exit(import_failed(e))
        print("\n".join(lines))


if __name__ == "__main__":
    main()
