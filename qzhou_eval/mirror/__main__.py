"""Fill an offline mirror on a connected machine: ``qzhou-eval mirror``.

    qzhou-eval mirror benchmark=mteb_eng_v2 data.mirror=/data/mteb-mirror
    qzhou-eval mirror benchmark=cmteb data.mirror=/data/mirror 'benchmark.tasks=[BQ]'

(``python -m qzhou_eval.mirror ...`` is the same.)

Downloads every dataset repo the benchmark's tasks read, at the revision each task pins, into
``<mirror>/<org>__<name>/``; repos already complete are skipped. Copy the folder to the offline
machine and run with ``data.mirror=<folder>``.
"""

from __future__ import annotations

from qzhou_eval.early_stop import stop_early

stop_early(__name__)  # first: a Ctrl-C as the imports below run gets the command's line

import contextlib
from pathlib import Path

from omegaconf import DictConfig

from qzhou_eval.config import hydra_app
from qzhou_eval.config.app import run_as_process
from qzhou_eval.config.folders import check_folder_place, check_writable_folder, remove_empty
from qzhou_eval.config.spec import mirror_dir
from qzhou_eval.errors import ConfigError, UserError
from qzhou_eval.progress import stderr_is_terminal


def fill(cfg: DictConfig) -> list[Path]:
    if cfg.benchmark.get("source") == "demo":  # built from installed packages: nothing to fetch
        named = mirror_dir(cfg, must_exist=False)
        if named is not None:  # a file there: refused as for any other suite (a run does too)
            check_folder_place("data.mirror", named)
        print(
            f"benchmark={cfg.benchmark.key}: the demo suites are built from installed packages "
            "and need no mirror; nothing to download"
        )
        return []
    target = mirror_dir(cfg, must_exist=False)
    if target is None:
        raise ConfigError("set data.mirror=<folder> (the mirror to fill)")
    created = check_writable_folder("data.mirror", target)  # a file in the way: not the Hub's
    try:
        return _fill(cfg, target)
    finally:  # a mirror that stopped before its first download leaves no empty folder behind
        remove_empty(created)


def _fill(cfg: DictConfig, target: Path) -> list[Path]:
    # (imported here: mteb and datasets, seconds, once the command handles Ctrl-C)
    from qzhou_eval.benchmarks import load_benchmark_tasks
    from qzhou_eval.mirror import fill_mirror, task_repos

    tasks = load_benchmark_tasks(cfg.benchmark)
    repos = sorted({repo for task in tasks for repo in task_repos(task)})
    print(f"mirror {target}: {len(repos)} dataset repo(s) for {len(tasks)} task(s)", flush=True)
    from huggingface_hub.utils import disable_progress_bars

    from qzhou_eval.config.hub import PROBE_TIMEOUT_S, hub_endpoint, offline, reachable

    def probe_hub() -> None:
        """Before the first download: the Hub client would retry each request for about half
        a minute before failing."""
        if not offline() and not reachable():
            raise UserError(
                f"the Hugging Face Hub ({hub_endpoint()[0]}) cannot be reached (a "
                f"{PROBE_TIMEOUT_S:.0f} s connection probe) to download into mirror {target}: "
                "run this on a machine that reaches it (HF_ENDPOINT names another Hub, "
                "HTTPS_PROXY a proxy)"
            )

    # the download bars only on a terminal: in a log they are carriage-return noise
    quiet = contextlib.nullcontext() if stderr_is_terminal() else disable_progress_bars()
    try:
        with quiet:
            fetched = fill_mirror(tasks, target, before_downloading=probe_hub)
    except (OSError, ValueError, RuntimeError) as e:  # huggingface_hub's errors derive from these
        if isinstance(e, OSError) and e.filename:  # a local file or folder, not the Hub
            raise UserError(
                f"data.mirror={target}: cannot write {e.filename}: {e.strerror or e}"
            ) from None
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        why = (
            "HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE is set: unset it to download"
            if offline()
            else "is the Hugging Face Hub reachable?"
        )
        raise UserError(f"could not download into mirror {target} ({why}): {first_line}") from None
    print(f"downloaded {len(fetched)}, already complete {len(repos) - len(fetched)}")
    return fetched


@hydra_app("mteb", kept="finished and staged downloads are kept")
def main(cfg: DictConfig) -> None:
    fill(cfg)


if __name__ == "__main__":
    run_as_process(main)
