"""What a run command does first, before its heavy imports (torch, mteb: seconds of CPU)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from qzhou_eval.config.spec import scoring_workers
from qzhou_eval.errors import ConfigError
from qzhou_eval.pipeline.scoring_pool import start_server
from qzhou_eval.process_tracker import start_resource_tracker


def prepare(cfg: Mapping[str, Any]) -> None:
    """The host's defaults for a run; then, when the run will score in processes, their fork
    server, started now so that its imports run while this process does its own (a bad value
    is left to the run's plan, which names it)."""
    # The tokenizer's own threads (Rust, outside the GIL) unless the user chose: one core
    # tokenizes about what 6-9 GPUs consume. Device workers are spawned and scoring processes
    # forked from a server that never tokenizes, so the tokenizers library's fork warning does
    # not apply. (Set before the server starts: it is one of the variables it is started under.)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    start_resource_tracker()  # before any process or queue: quiet if the run is killed outright
    try:
        workers = scoring_workers(cfg["runtime"])
    except (ConfigError, KeyError, TypeError):
        return
    if workers:
        start_server()
