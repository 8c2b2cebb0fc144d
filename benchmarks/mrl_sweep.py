"""Cost of an 8-dimension MRL sweep (and of a dimensions x precisions grid) from one encoding
pass vs eight separate runs.

    python benchmarks/mrl_sweep.py [--suite demo_zho] [--tasks N] [--precisions float32,int8,binary]
                                   [--workers 2] [--no-separate]

A tiny random Qwen3 with Token Prepending and a 1792-wide Dense projection (QZhou-Embedding-Zh's
layout) is evaluated on a demo suite these ways, side by side in one process:

1. one run at one dimension, float32 (the unit of cost: one (dimension, precision) pair);
2. one run with ``mrl.dims=[128, ..., 1792]`` (every dim scored from one encoding pass);
3. the grid: ``mrl.dims`` x ``mrl.precisions`` (8 x 3 pairs by default) from one encoding pass,
   scored in the main process (``runtime.scoring_workers=0``);
4. the same grid with the pairs scored in parallel by ``--workers`` scoring processes
   (qzhou_eval.pipeline; skipped with ``--workers 0``);
5. eight separate runs, one per ``mrl.dim``, without the embedding store (the official script;
   skipped with ``--no-separate``).

It prints, for each: wall time, model time (loading, tokenizing, forward passes), forward passes
and encoded inputs, with the ratios to (1). What one pass saves is model work; mteb's scoring of
each dimension (logistic regressions, k-means, retrieval) is paid per dimension either way, and on
a tiny model it dominates the wall time, whereas on an 8B model on a GPU the model time does.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from qzhou_eval.config import compose_config
from qzhou_eval.runs.runner import execute, plan_run
from qzhou_eval.testing.tiny_models import build_tiny_model

DIMS = [128, 256, 512, 768, 1024, 1280, 1536, 1792]


def run(model_dir: Path, work: Path, suite: str, tasks: list[str] | None, extra: list[str]):
    overrides = [
        "model=qzhou_embedding_zh",
        f"model.path={model_dir}",
        "model.name=bench/tiny-qwen3-zh",
        "model.revision=bench",
        "model.dtype=float32",
        "model.max_length=128",
        f"benchmark={suite}",
        f"runtime.results_dir={work / 'results'}",
        "runtime.progress=false",
        "prompts.on_missing_instruction=no_instruction",
        *extra,
    ]
    if tasks:
        overrides.append(f"benchmark.tasks=[{','.join(tasks)}]")
    cfg = compose_config("cmteb", overrides)
    started = time.perf_counter()
    outcome = execute(plan_run(cfg))
    wall = time.perf_counter() - started
    return wall, outcome.model_seconds, outcome.forward_calls, outcome.encoded_inputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="demo_zho")
    parser.add_argument("--tasks", nargs="*", default=None, help="task names (default: all)")
    parser.add_argument("--precisions", default="float32,int8,binary", help="the grid's")
    parser.add_argument("--workers", type=int, default=2, help="scoring processes (grid)")
    parser.add_argument("--no-separate", action="store_true", help="skip the 8 separate runs")
    args = parser.parse_args()
    dims_arg = f"mrl.dims=[{','.join(map(str, DIMS))}]"
    precisions = args.precisions.split(",")
    grid_arg = f"mrl.precisions=[{args.precisions}]"
    grid = f"{len(DIMS)} dims x {len(precisions)} precisions"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model_dir = build_tiny_model(root / "model", "qwen3", seed=0, with_dense=1792)

        def timed(name: str, extra: list[str]) -> tuple[str, float, float, int, int]:
            folder = root / f"run{len(list(root.glob('run*')))}"
            return (name, *run(model_dir, folder, args.suite, args.tasks, extra))

        def store(name: str) -> str:  # a fresh store per run: each encodes its inputs once
            return f"runtime.store_dir={root / name}"

        sequential = "runtime.scoring_workers=0"
        rows = [
            timed("one run, one pair (1792 float32)", ["runtime.store_dir=null"]),
            timed("one run, 8 dims (mrl.dims)", [store("s1"), dims_arg, sequential]),
            timed(f"one run, {grid}", [store("s2"), dims_arg, grid_arg, sequential]),
        ]
        if args.workers:
            workers = f"runtime.scoring_workers={args.workers}"
            name = f"same, {args.workers} scoring processes"
            rows.append(timed(name, [store("s3"), dims_arg, grid_arg, workers]))
        if not args.no_separate:
            separate = [timed(f"dim {d}", ["runtime.store_dir=null", f"mrl.dim={d}"]) for d in DIMS]
            rows.append(
                (
                    "8 separate runs (mrl.dim=d)",
                    sum(r[1] for r in separate),
                    sum(r[2] for r in separate),
                    sum(r[3] for r in separate),
                    sum(r[4] for r in separate),
                )
            )
    base_t, base_m, base_calls, _ = rows[0][1:]
    print(
        f"{'configuration':36} {'wall s':>7} {'model s':>8} {'forwards':>9} {'inputs':>7} "
        f"{'wall x':>7} {'model x':>8} {'fwd x':>6}"
    )
    for name, t, m, calls, n in rows:
        print(
            f"{name:36} {t:7.2f} {m:8.2f} {calls:9d} {n:7d} {t / base_t:7.2f} "
            f"{m / base_m:8.2f} {calls / base_calls:6.2f}"
        )
    for name, t, m, calls, _ in rows[1:]:
        print(
            f"{name} / one pair: model time {m / base_m:.2f}x, forward passes "
            f"{calls / base_calls:.2f}x, wall {t / base_t:.2f}x"
        )


if __name__ == "__main__":
    main()
