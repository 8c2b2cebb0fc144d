#!/usr/bin/env python
"""Evaluate a model on MTEB(cmn, v1) (default: QZhou-Embedding). Hydra app over conf/cmteb.yaml.

The same as ``qzhou-eval run benchmark=cmteb``:

python run_cmteb.py model=minilm 'benchmark.tasks=[AFQMC]' data.mirror=/data/mteb
"""

from qzhou_eval.early_stop import stop_early

stop_early(__name__)  # first: a Ctrl-C as the imports below run gets the command's line

from qzhou_eval.cli import run_app
from qzhou_eval.config.app import run_as_process

main = run_app("cmteb")

if __name__ == "__main__":
    run_as_process(main)
