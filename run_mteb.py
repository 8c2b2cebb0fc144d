#!/usr/bin/env python
"""Evaluate a model on MTEB(eng, v2) (default: QZhou-Embedding). Hydra app over conf/mteb.yaml.

python run_mteb.py model=minilm 'benchmark.tasks=[STSBenchmark]' data.mirror=/data/mteb
"""

import sys

from qzhou_eval.config import hydra_app


@hydra_app("mteb")
def main(cfg) -> None:
    # Imported here, not at the top: the app's one-line Ctrl-C handling covers these seconds too.
    from qzhou_eval.runs.cli import run_from_config

    code = run_from_config(cfg)
    if code:
        sys.exit(code)


if __name__ == "__main__":
    main()
