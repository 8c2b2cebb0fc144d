#!/usr/bin/env python
"""Evaluate a model on MTEB(eng, v2) (default: QZhou-Embedding). Hydra app over conf/mteb.yaml.

python run_mteb.py model=minilm 'benchmark.tasks=[STSBenchmark]' data.mirror=/data/mteb
"""

import sys

from qzhou_eval.config import hydra_app
from qzhou_eval.runs.cli import run_from_config


@hydra_app("mteb")
def main(cfg) -> None:
    code = run_from_config(cfg, "mteb")
    if code:
        sys.exit(code)


if __name__ == "__main__":
    main()
