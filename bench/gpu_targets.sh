#!/usr/bin/env bash
# The issue's latency-target models on the GPU, quickly:
#  - the direct-conv and Winograd kernel tests: every variant against a
#    double reference, then per-variant timings on the face models' shapes;
#  - graph-replay device time of yunet_2023mar, pfld_68 and scrfd_2.5g
#    (bench/gpu_bench.py, no PyTorch), and scrfd without the tensor-core
#    convolutions (FG_TARGETS_BASELINE=0 skips that);
#  - gpu-parity with every eligible 3x3 convolution forced onto each of
#    FG_TARGETS_PARITY (default: tensorcore winograd-fused);
#  - a per-step profile of scrfd.
# Output under $OUT: conv_direct.txt, winograd.txt, b/ and b0/ gpu_bench.json,
# parity-<mode>.log, gpu_profile.txt, logs; a short table last.
# Quick form: FG_TARGETS_QUICK=1 leaves out the direct-conv test, the
# no-tensor-core baseline, the parity runs and the profile, and adds
# compute-sanitizer memcheck over the Winograd test's checks.
# FG_TARGETS_AB="VAR=value ..." also times scrfd with each setting alone
# (a plan pass or a backend feature turned off), in the same call.
# FG_TARGETS_TESTS="merge_transposes fold_pools ..." also runs those
# tests/<name>_test.py suites with --device cuda.
# usage (device machine, .debs and .shared carried): OUT=dir bash bench/gpu_targets.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-build-gpu/out}"
mkdir -p "$OUT"
export PATH=/usr/local/cuda/bin:$PATH
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
( . bench/gpu_build.sh > "$OUT/build.log" 2>&1; echo "build rc=$?" >> "$OUT/build.log" ) &
build_pid=$!
# the kernel test builds on its own (one nvcc) while the library builds
nvcc -O3 -arch=sm_90 -I src -I include tests/gpu/winograd_test.cu -lcublas -o build-gpu-winograd_test 2> "$OUT/nvcc-winograd.log" &
wino_pid=$!
QUICK=${FG_TARGETS_QUICK:-0}
if [ "$QUICK" = 1 ]; then
  FG_TARGETS_BASELINE=0
  FG_TARGETS_PARITY=""
else
  nvcc -O3 -arch=sm_90 -I src -I include tests/gpu/conv_direct_test.cu -o build-gpu-conv_direct_test 2> "$OUT/nvcc.log" &&
    timeout 240 ./build-gpu-conv_direct_test > "$OUT/conv_direct.txt" 2>&1
  echo "conv direct test rc=$?: $(grep -E 'passed, [0-9]+ failed' "$OUT/conv_direct.txt")"
fi
wait $wino_pid && timeout 120 ./build-gpu-winograd_test > "$OUT/winograd.txt" 2>&1
echo "winograd test rc=$?: $(grep -E 'passed, [0-9]+ failed' "$OUT/winograd.txt")"
grep -E "FAIL" "$OUT/winograd.txt" | head -5
sed -n '/time per launch/,$p' "$OUT/winograd.txt"
[ -f "$OUT/conv_direct.txt" ] && grep -E "FAIL|ERROR" "$OUT/conv_direct.txt" | head -5
# per 3x3 shape: the fastest SIMT variant and the fastest tensor-core one (us)
[ -f "$OUT/conv_direct.txt" ] && grep -E "^[0-9]+ .* k3 " "$OUT/conv_direct.txt" | sed 's/=/ /g' | awk '{b=1e9; bn=""; t=1e9; tn="";
  for (i = 7; i < NF; i += 2) { v = $(i + 1) + 0; if ($i ~ /^tc/) { if (v < t) { t = v; tn = $i } } else if (v < b) { b = v; bn = $i } }
  printf "%s %s %s %s %s  simt %s %.2f  tc %s %.2f\n", $1, $2, $3, $4, $6, bn, b, tn, t }'
wait $build_pid
tail -2 "$OUT/build.log"
. bench/gpu_build.sh > /dev/null 2>&1 || exit 1
FG=build-gpu/facegraph
SHARED=.shared; [ -d "$SHARED" ] || SHARED=../shared
table() { python3 -c "import json,sys; [print('%-8s %-36s %8.4f ms %4d kernels' % (sys.argv[2], m['model'][:36], m['fg_graph_device_ms'], m['kernels_per_run'])) for m in json.load(open(sys.argv[1]))['models']]" "$1" "$2"; }
[ "${FG_TARGETS_BASELINE:-1}" = 1 ] &&
  FACEGRAPH_CUDA_TENSOR_CORE_CONV=0 FACEGRAPH_CACHE_DIR="$OUT/cache-no-tc" python3 bench/gpu_bench.py --facegraph $FG \
  --shared "$SHARED" --out "$OUT/b0" --no-standins --no-torch --only scrfd > "$OUT/bench-no-tc.log" 2>&1
export FACEGRAPH_CACHE_DIR="$OUT/cache"
python3 bench/gpu_bench.py --facegraph $FG --shared "$SHARED" --out "$OUT/b" --no-standins --no-torch \
  --only yunet,pfld,scrfd > "$OUT/bench.log" 2>&1
# every eligible 3x3 convolution of the shared models and small stand-ins forced onto one kind of kernel, vs ORT
for mode in ${FG_TARGETS_PARITY-tensorcore winograd-fused}; do
  FACEGRAPH_CUDA_CONV=$mode python3 tests/gpu/gpu_parity.py --facegraph $FG --shared "$SHARED" \
    --gen build-gpu/gen/standins-small --modes eager,graph > "$OUT/parity-$mode.log" 2>&1
  echo "$mode parity: $(tail -1 "$OUT/parity-$mode.log")"
done
if [ "$QUICK" != 1 ]; then
  OUT="$OUT" bash bench/gpu_profile.sh "$SHARED/models/scrfd_2.5g.onnx" > /dev/null 2>&1
  grep -A40 "scrfd" "$OUT/gpu_profile.txt" | head -45
fi
[ -f "$OUT/b0/gpu_bench.json" ] && table "$OUT/b0/gpu_bench.json" "no-tc"
table "$OUT/b/gpu_bench.json" "default"
for ab in ${FG_TARGETS_AB:-}; do
  env "$ab" FACEGRAPH_CACHE_DIR="$OUT/cache-ab" python3 bench/gpu_bench.py --facegraph $FG --shared "$SHARED" \
    --out "$OUT/ab" --no-standins --no-torch --only scrfd > /dev/null 2>&1
  table "$OUT/ab/gpu_bench.json" "$ab"
  python3 -c "import json,sys; print('   ', json.load(open(sys.argv[1]))['models'][0]['graph_reason'])" "$OUT/ab/gpu_bench.json"
done
rm -rf "$OUT/ab" "$OUT/cache-ab"
for t in ${FG_TARGETS_TESTS:-}; do
  echo "$t (cuda): $(timeout 120 python3 tests/${t}_test.py --device cuda --facegraph $FG | tail -1)"
done
python3 -c "import json,sys; [print('   ', m['model'][:24], m['graph_reason']) for m in json.load(open(sys.argv[1]))['models']]" \
  "$OUT/b/gpu_bench.json"
if [ "$QUICK" = 1 ]; then
  timeout 90 compute-sanitizer --tool memcheck --error-exitcode 1 --print-limit 20 \
    ./build-gpu-winograd_test --check-only > "$OUT/memcheck-winograd.txt" 2>&1
  echo "winograd memcheck rc=$?: $(grep -E 'ERROR SUMMARY' "$OUT/memcheck-winograd.txt")"
fi
# at most 8 files come back from the device: drop the empty and the redundant ones
rm -rf "$OUT/cache" "$OUT/cache-no-tc" "$OUT/b/gpu_bench.md" "$OUT/b0/gpu_bench.md" "$OUT/bench-no-tc.log"
for f in "$OUT"/nvcc*.log; do [ -s "$f" ] || rm -f "$f"; done
