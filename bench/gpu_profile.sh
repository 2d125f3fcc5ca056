#!/usr/bin/env bash
# Per-step GPU profile of the shared models: builds (if needed), then for each
# model prints the device time of graph replay and the slowest op types and
# steps of one eager run (CUDA events). Output: $OUT/gpu_profile.txt.
# usage: OUT=dir bash bench/gpu_profile.sh [MODEL.onnx ...]
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-build-gpu/out}"
mkdir -p "$OUT"
. bench/gpu_build.sh || { echo "build failed"; exit 1; }
SHARED="${FACEGRAPH_SHARED:-$( [ -d .shared ] && echo .shared || echo ../shared )}"
models=("$@")
[ ${#models[@]} -eq 0 ] && models=("$SHARED"/models/*.onnx)
work=$(mktemp -d)
for m in "${models[@]}"; do
  args=$(python3 tests/gpu/prepare_inputs.py "$m" "$work" 2>/dev/null)
  echo "=== $(basename "$m")"
  build-gpu/facegraph infer "$m" $args --output-dir "$work/out" --repeat 200 --profile \
    --execution-providers cuda --cuda-graph auto 2>&1
done | tee "$OUT/gpu_profile.txt"
