#!/usr/bin/env python
"""Evaluate a model on MTEB(cmn, v1) (default: QZhou-Embedding). Hydra app over conf/cmteb.yaml.

python run_cmteb.py model=minilm 'benchmark.tasks=[AFQMC]' data.mirror=/data/mteb
"""

import sys

from qzhou_eval.config import hydra_app


@hydra_app("cmteb")
def main(cfg) -> None:
    # Imported here, not at the top: the app's one-line Ctrl-C handling covers these seconds too.
    from qzhou_eval.runs.cli import run_from_config

    code = run_from_config(cfg)
    if code:
        sys.exit(code)


if __name__ == "__main__":
    main()
