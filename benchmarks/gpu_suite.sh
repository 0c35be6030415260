#!/usr/bin/env bash
# Every GPU check and benchmark of tdrag in one call, on a bare CUDA machine that has only torch.
#
#   bash benchmarks/gpu_suite.sh OUT_DIR [WHEELS_DIR]
#
# Installs what the checks need and the machine lacks (captum, for the attribution tests) from the
# wheels in WHEELS_DIR (default: .whl/ at the repository root; make them here with
# `bash benchmarks/gpu_wheels.sh`), without touching the network, into OUT_DIR/site; puts the
# repository on PYTHONPATH; then, each step with its own time limit so one that hangs cannot eat
# the others' time (about 6 minutes in all on an H100/H200):
#
#   1. every @pytest.mark.gpu test                         -> OUT_DIR/gpu_tests.log
#   2. bench_model.py: r3d18 and TDRAG, fp32 / bf16 / bf16+channels_last_3d / compiled
#      (clips/s, achieved TFLOP/s, peak memory)              -> OUT_DIR/bench_model.md
#   3. bench_epoch.py: a DFEW-sized epoch (9,356 training clips, 3,000 test clips, T = 16,
#      128 px cached, 112 px crops, batch 64) through the cache loader vs model-only, and the
#      projected 5-fold x 100-epoch protocol                 -> OUT_DIR/bench_epoch.json
#   4. bench_analysis.py --device cuda: attributions per second per method on full-size TDRAG
#                                                            -> OUT_DIR/bench_analysis.md
#   5. one Markdown block for benchmarks/RESULTS.md           -> OUT_DIR/RESULTS_block.md (and stdout)
#
# Every output goes under OUT_DIR; a failing step is recorded there and the suite goes on.
set -uo pipefail
OUT=${1:?usage: bash benchmarks/gpu_suite.sh OUT_DIR [WHEELS_DIR]}
REPO=$(cd "$(dirname "$0")/.." && pwd)
WHEELS=${2:-$REPO/.whl}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-8}
PY=${PYTHON:-python3}

if ! $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "error: no CUDA device visible to torch; this suite needs a GPU" | tee "$OUT/error.txt" >&2
    exit 2
fi
if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$OUT/site" "$WHEELS"/*.whl \
        >"$OUT/pip.log" 2>&1 || { echo "error: installing wheels from $WHEELS failed (see $OUT/pip.log)" >&2; exit 2; }
    export PYTHONPATH="$OUT/site:$REPO${PYTHONPATH:+:$PYTHONPATH}"
else
    echo "note: no wheels in $WHEELS; using what is installed" >&2
    export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
fi
cd "$REPO"
$PY - <<'PY' >"$OUT/machine.txt" 2>&1
import platform, torch
print(f"card: {torch.cuda.get_device_name(0)}; torch {torch.__version__}; CUDA {torch.version.cuda}; "
      f"cuDNN {torch.backends.cudnn.version()}; python {platform.python_version()}")
PY
cat "$OUT/machine.txt"

step() {  # step NAME SECONDS COMMAND...
    local name=$1 limit=$2; shift 2
    echo "[gpu_suite] $name (limit ${limit}s)" >&2
    local started=$SECONDS
    timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    echo "$name rc=$rc seconds=$((SECONDS - started))" >>"$OUT/steps.txt"
    [ $rc -eq 0 ] || echo "[gpu_suite] $name failed (rc $rc): see $OUT/$name.log" >&2
}

GPU_TESTS=$(grep -rl "mark.gpu" tests --include='test_*.py' | sort | tr '\n' ' ')
step gpu_tests 150 $PY -m pytest -m gpu -p no:cacheprovider -o addopts="" --timeout=120 -q -rs $GPU_TESTS
step bench_model 150 $PY benchmarks/bench_model.py --device cuda --out "$OUT/bench_model.md"
step bench_epoch 240 $PY benchmarks/bench_epoch.py --device cuda --model tdrag --clips 9356 --test-clips 3000 \
    --frames 16 --size 128 --crop 112 --render 128 --batch 64 --workers "$(( $(nproc) > 12 ? 12 : $(nproc) ))" \
    --data "$OUT/epoch_data" --json "$OUT/bench_epoch.json"
step bench_analysis 90 $PY benchmarks/bench_analysis.py --device cuda --untrained-width 64 --heavy-clips 4 \
    --out "$OUT/bench_analysis.md"
rm -rf "$OUT/epoch_data"  # 1.5 GB of synthetic frames: not worth bringing back
$PY benchmarks/gpu_summary.py "$OUT" | tee "$OUT/RESULTS_block.md"
