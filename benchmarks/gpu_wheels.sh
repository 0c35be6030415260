#!/usr/bin/env bash
# Download, here, the wheels benchmarks/gpu_suite.sh installs on a bare CUDA machine (Python 3.12,
# x86-64) that has torch, numpy, pandas, matplotlib, seaborn, scikit-learn, opencv, pytest and
# pyyaml but not captum: `bash benchmarks/gpu_wheels.sh [DIR]` (default .whl/, which git ignores).
set -euo pipefail
DIR=${1:-$(cd "$(dirname "$0")/.." && pwd)/.whl}
mkdir -p "$DIR"
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$DIR" "captum==0.9.0"
ls -la "$DIR"
