#!/usr/bin/env bash
# GPU benchmark: facegraph (eager and CUDA graph) vs PyTorch (eager and CUDA
# graph) on every shared model and every full-size stand-in, batch 1.
# usage: bench/gpu.sh [--facegraph BIN] [--shared DIR] [--out DIR] [--runs N]
#                     [--budget SECONDS] [--only name,...]
# Builds build-gpu/ first when no --facegraph is given and it is missing.
# Writes gpu_bench.md and gpu_bench.json to --out (default $OUT, else
# build/bench-gpu). See bench/gpu_bench.py.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/cuda/bin:$PATH"
if [[ " $* " != *" --facegraph "* ]] && [ ! -x build-gpu/facegraph ]; then
  dnnl=()
  [ -d .debs/root/usr/include/oneapi ] && dnnl=(-DDNNL_ROOT="$PWD/.debs/root/usr")
  cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release "${dnnl[@]}" >/dev/null && cmake --build build-gpu -j "$(nproc)" >/dev/null \
    || { echo "bench/gpu.sh: building build-gpu/ failed"; exit 1; }
fi
exec python3 bench/gpu_bench.py "$@"
