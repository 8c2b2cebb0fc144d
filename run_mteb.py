#!/usr/bin/env python
"""Evaluate a model on MTEB(eng, v2) (default: QZhou-Embedding). Hydra app over conf/mteb.yaml.

The same as ``qzhou-eval run``:

python run_mteb.py model=minilm 'benchmark.tasks=[STSBenchmark]' data.mirror=/data/mteb
"""

from qzhou_eval.early_stop import stop_early

stop_early(__name__)  # first: a Ctrl-C as the imports below run gets the command's line

from qzhou_eval.cli import run_app
from qzhou_eval.config.app import run_as_process

main = run_app("mteb")

if __name__ == "__main__":
    run_as_process(main)
