"""How many CPU cores this job may use, and what the defaults derived from them are."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (what a SLURM job's
    ``cpus_per_task``, ``taskset`` or a container's cpuset allow), not the node's core count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity API (macOS)
        return max(1, os.cpu_count() or 1)


def default_scoring_workers(cores: int) -> int:
    """``runtime.scoring_workers: auto``: every core but two, one for the main process (it feeds
    the devices) and one for tokenization (one core tokenizes about what 6-9 GPUs consume);
    at most 16. On 1-2 cores this is 0: scoring stays in the main process."""
    return max(0, min(16, cores - 2))
