#!/usr/bin/env bash
# The GPU test batch, for the device machine (one H100, CUDA + cuDNN in
# /usr/local/cuda, python3 with torch, onnx, onnxruntime, numpy). Run from
# anywhere:  OUT=/some/dir bash tests/gpu/run.sh
#
# Stages, each time-boxed (`timeout`), all within FG_GPU_BUDGET seconds
# (default 520, under 9 minutes):
#   build        carried .debs (oneDNN) unpacked into .debs/root; cmake Release -> build-gpu/
#   standins     tools/make_standins.py, small and full
#   conformance  build-gpu/test_conformance (CPU sanity; needs ONNX's node test data)
#   gpu-parity   tests/gpu/gpu_parity.py: cuda (graph off, auto, fp16) vs onnxruntime CPU
#   conv-direct  tests/gpu/conv_direct_test.cu: every direct convolution kernel vs a double reference
#   dwpool       tests/gpu/dwpool_test.cu: depthwise and pooling kernels vs a double reference
#   winograd     tests/gpu/winograd_test.cu: Winograd F(2x2) and F(4x4) 3x3 convolutions (three-step and fused) vs a double reference
#   gpu-parity-winograd  gpu-parity (eager, graph) with every eligible 3x3 convolution forced onto Winograd F(4x4)
#   gpu-parity-winograd-fused  the same, forced onto the fused F(2x2) kernel
#   gpu-parity-tensor-core  gpu-parity (eager, graph) with every eligible 3x3 convolution on a tensor-core kernel
#   gpu-parity-branches  gpu-parity (graph) with every graph captured with parallel branches where it has any
#   gpu-api, fusion-gpu, dwpw-gpu, merge-gpu, merge-transposes-gpu, fold-gpu, fold-pools-gpu,
#                concat-in-place-gpu (planner fusions on the GPU), detect-gpu, graph-matrix
#   graph-regression  tests/graph_regression_test.py --gpu (If/Loop as graph segments included)
#   bench        bench/gpu.sh (the time left but FG_GPU_RESERVE=170 s; FG_GPU_SKIP_BENCH=1
#                skips it, to run bench/gpu.sh as a call of its own)
#   memcheck-*   compute-sanitizer memcheck on a graph-replay run (pfld_68; the NMS regression model),
#                and on the Winograd kernel test's checks (every fused variant)
#   racecheck    compute-sanitizer racecheck on a graph-replay run of pfld_68
#   torch-peer   tests/gpu/onnx_torch_test.py --device cuda (the benchmark's PyTorch peer is right)
# FG_GPU_SKIP="stage,stage": stages to leave out (as when they ran in an
# earlier call of the same commit), listed as skipped.
# Everything goes to $OUT (default build-gpu/out): summary.md, results.json,
# logs/<stage>.log, gpu_bench.md/json, gpu_parity.json, graph_regression.json.
# Shared models: $FACEGRAPH_SHARED, else .shared/ (carried), else ../shared.
# ONNX node test data for conformance: $FG_ONNX_NODE_DATA, else
# /usr/include/onnx/backend/test/data/node, else .onnx-node-data/ (carried).
# Last line: 'N passed, M failed' (stages).
set -uo pipefail
cd "$(dirname "$0")/../.."
REPO="$PWD"
OUT="${OUT:-$REPO/build-gpu/out}"
mkdir -p "$OUT/logs"
OUT="$(cd "$OUT" && pwd)"
LOGS="$OUT/logs"
BUDGET="${FG_GPU_BUDGET:-520}"
T0=$SECONDS
export PATH="/usr/local/cuda/bin:$PATH"
export PYTHONUNBUFFERED=1
export CUDA_MODULE_LOADING=LAZY
STAGES="$OUT/stages.tsv"  # archived into logs.tgz at the end
: > "$STAGES"
FG="$REPO/build-gpu/facegraph"

left() { echo $((BUDGET - (SECONDS - T0))); }

record() { # name status rc seconds summary
  printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$(printf '%s' "$5" | tr '\t\n' '  ' | cut -c1-400)" >> "$STAGES"
}

skip() { # name reason
  echo "skipped: $2" > "$LOGS/$1.log"
  record "$1" skipped - 0 "$2"
  echo "=== $1: SKIPPED ($2)"
}

stage() { # name limit_seconds command...
  local name="$1" limit="$2"
  shift 2
  local remaining
  remaining=$(left)
  if [[ ",${FG_GPU_SKIP:-}," == *",$name,"* ]]; then
    skip "$name" "left out by FG_GPU_SKIP"
    return 0
  fi
  if [ "$remaining" -lt 15 ]; then
    skip "$name" "out of time (batch budget ${BUDGET}s)"
    return 0
  fi
  [ "$limit" -gt "$remaining" ] && limit=$remaining
  echo "=== $name (limit ${limit}s, $(left)s of the batch left)"
  local start=$SECONDS
  timeout -k 10 "$limit" "$@" > "$LOGS/$name.log" 2>&1
  local rc=$?
  local took=$((SECONDS - start))
  local line status=passed
  line=$(grep -E '[0-9]+ passed, [0-9]+ failed|^geometric-mean|ERROR SUMMARY' "$LOGS/$name.log" | tail -1)
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    status=failed
    line="timed out after ${limit}s; $line"
  elif [ $rc -eq 77 ]; then
    status=skipped
    line=$(tail -1 "$LOGS/$name.log")
  elif [ $rc -ne 0 ]; then
    status=failed
    local why
    why=$(grep -m1 -iE 'error:|^FAIL|Traceback|CRASHED' "$LOGS/$name.log")
    [ -n "$why" ] && line="$line; first problem: $why"
  fi
  [ -z "$line" ] && line=$(grep -v '^\s*$' "$LOGS/$name.log" | tail -1)
  record "$name" "$status" "$rc" "$took" "$line"
  echo "--- $name: $status (rc $rc, ${took}s): $line"
  [ "$status" = failed ] && tail -5 "$LOGS/$name.log" | sed 's/^/    /'
  return 0
}

# ------------------------------------------------------------ environment
{
  echo "date: $(date -u)"
  nvidia-smi -L 2>&1
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1
  nvcc --version 2>&1 | tail -2
  ls /usr/local/cuda/lib64/libcudnn.so* /usr/lib/x86_64-linux-gnu/libcudnn.so* 2>/dev/null | head -3
  python3 -c "import sys, numpy, onnx, onnxruntime; print('python', sys.version.split()[0], 'numpy', numpy.__version__, 'onnx', onnx.__version__, 'onnxruntime', onnxruntime.__version__)" 2>&1
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(), 'gpu', torch.cuda.is_available() and torch.cuda.get_device_name(0))" 2>&1
  command -v compute-sanitizer 2>&1 || ls /usr/local/cuda/compute-sanitizer/compute-sanitizer 2>&1
  nproc
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

SHARED="${FACEGRAPH_SHARED:-}"
if [ -z "$SHARED" ]; then
  for d in "$REPO/.shared" "$REPO/../shared"; do
    if [ -d "$d/models" ]; then SHARED="$(cd "$d" && pwd)"; break; fi
  done
fi
[ -n "$SHARED" ] && export FACEGRAPH_SHARED="$SHARED"
echo "shared models: ${SHARED:-none found}"

# ------------------------------------------------------------ build
DNNL_ARGS=()
if ls .debs/*.deb >/dev/null 2>&1; then
  mkdir -p .debs/root
  for f in .debs/*.deb; do dpkg -x "$f" .debs/root; done
  export CMAKE_PREFIX_PATH="$REPO/.debs/root/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  export DNNL_ROOT="$REPO/.debs/root/usr"
  export LD_LIBRARY_PATH="$REPO/.debs/root/usr/lib/x86_64-linux-gnu:$REPO/.debs/root/usr/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  DNNL_ARGS=(-DDNNL_ROOT="$DNNL_ROOT")
  echo "unpacked $(ls .debs/*.deb | wc -l) .deb files into .debs/root"
fi
export FG
export DNNL_ARGS_STR="${DNNL_ARGS[*]:-}"
# (functions cannot carry arrays: pass the cmake arguments through a string)
build_cmd() {
  cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release $DNNL_ARGS_STR &&
    cmake --build build-gpu -j "$(nproc)" &&
    if "$FG" --help 2>&1 | grep -qi 'this build: .*cuda'; then
      echo "build: ok, with the cuda provider"
    else
      "$FG" --help 2>&1 | grep -i 'this build'
      echo "build: FAILED: the cuda provider is missing from this build (nvcc or cuDNN not found?)"; false
    fi
}
export -f build_cmd
stage build 240 bash -c build_cmd
BUILT=0
[ -x "$FG" ] && "$FG" --help 2>&1 | grep -qi 'this build: .*cuda' && BUILT=1

# ------------------------------------------------------------ models
GEN="$REPO/build-gpu/gen"
stage standins 90 bash -c "python3 tools/make_standins.py --out '$GEN/standins-small' --scale small &&
  python3 tools/make_standins.py --out '$GEN/standins-full' --scale full &&
  python3 tools/regression_models.py --out '$GEN/regression'"

# ------------------------------------------------------------ tests
if [ -f .onnx-data/node.tgz ] && [ ! -d build-gpu/onnx-node/node ]; then
  mkdir -p build-gpu/onnx-node && tar xzf .onnx-data/node.tgz -C build-gpu/onnx-node
fi
NODE_DATA=""
for d in "${FG_ONNX_NODE_DATA:-}" "$REPO/build-gpu/onnx-node/node" /usr/include/onnx/backend/test/data/node "$REPO/.onnx-node-data" \
         "$(python3 -c 'import onnx, os; print(os.path.join(os.path.dirname(onnx.__file__), "backend/test/data/node"))' 2>/dev/null)"; do
  if [ -n "$d" ] && [ -d "$d" ]; then NODE_DATA="$d"; break; fi
done
if [ $BUILT = 0 ] && [ ! -x build-gpu/test_conformance ]; then
  skip conformance "the build failed"
elif [ -z "$NODE_DATA" ]; then
  skip conformance "no ONNX node test data (carry /usr/include/onnx/backend/test/data/node as .onnx-node-data)"
else
  stage conformance 60 build-gpu/test_conformance --data "$NODE_DATA" --known-failures tests/conformance_known_failures.txt
  [ $BUILT = 1 ] && stage conformance-cuda 90 build-gpu/test_conformance --cuda --data "$NODE_DATA" \
    --known-failures tests/conformance_known_failures.txt
fi

if [ $BUILT = 1 ]; then
  stage gpu-parity 200 python3 tests/gpu/gpu_parity.py --facegraph "$FG" --gen "$GEN/standins-small" \
    --json "$OUT/gpu_parity.json" ${SHARED:+--shared "$SHARED"}
  stage conv-direct 180 bash -c "nvcc -O3 -arch=sm_90 -I src -I include tests/gpu/conv_direct_test.cu \
    -o build-gpu/conv_direct_test && build-gpu/conv_direct_test"
  stage dwpool 60 bash -c "nvcc -O3 -arch=sm_90 -I src -I include tests/gpu/dwpool_test.cu \
    -o build-gpu/dwpool_test && build-gpu/dwpool_test"
  stage winograd 90 bash -c "nvcc -O3 -arch=sm_90 -I src -I include tests/gpu/winograd_test.cu -lcublas \
    -o build-gpu/winograd_test && build-gpu/winograd_test"
  # every eligible 3x3 convolution forced onto Winograd F(4x4), whatever the timing says
  stage gpu-parity-winograd 120 env FACEGRAPH_CUDA_CONV=winograd4 python3 tests/gpu/gpu_parity.py --facegraph "$FG" \
    --gen "$GEN/standins-small" --modes eager,graph ${SHARED:+--shared "$SHARED"}
  # ... and onto the fused Winograd kernels (one kernel per convolution)
  stage gpu-parity-winograd-fused 120 env FACEGRAPH_CUDA_CONV=winograd-fused python3 tests/gpu/gpu_parity.py \
    --facegraph "$FG" --gen "$GEN/standins-small" --modes eager,graph ${SHARED:+--shared "$SHARED"}
  # every eligible 3x3 convolution forced onto a tensor-core kernel (CD_TC_*), whatever the timing says
  stage gpu-parity-tensor-core 120 env FACEGRAPH_CUDA_CONV=tensorcore python3 tests/gpu/gpu_parity.py \
    --facegraph "$FG" --gen "$GEN/standins-small" --modes eager,graph ${SHARED:+--shared "$SHARED"}
  # every graph that has independent steps captured with parallel branches, whatever the timing says
  stage gpu-parity-branches 120 env FACEGRAPH_CUDA_GRAPH_BRANCHES=1 python3 tests/gpu/gpu_parity.py \
    --facegraph "$FG" --gen "$GEN/standins-small" --modes graph ${SHARED:+--shared "$SHARED"}
  stage gpu-api 60 build-gpu/test_gpu_api "${SHARED:-.shared}/models"
  stage fusion-gpu 60 python3 tests/fusion_test.py --device cuda --facegraph "$FG"
  stage dwpw-gpu 60 python3 tests/dwpw_test.py --device cuda --facegraph "$FG"
  stage merge-gpu 60 python3 tests/merge_test.py --device cuda --facegraph "$FG"
  stage merge-transposes-gpu 60 python3 tests/merge_transposes_test.py --device cuda --facegraph "$FG"
  stage fold-gpu 60 python3 tests/fold_test.py --device cuda --facegraph "$FG"
  stage fold-pools-gpu 60 python3 tests/fold_pools_test.py --device cuda --facegraph "$FG"
  stage concat-in-place-gpu 60 python3 tests/concat_in_place_test.py --device cuda --facegraph "$FG"
  stage detect-gpu 90 python3 tests/gpu/detect_gpu_vs_cpu.py "$FG" "${SHARED:-.shared}"
  stage graph-regression 90 python3 tests/graph_regression_test.py --gpu --facegraph "$FG" \
    --out "$REPO/build-gpu/graph-regression" --json "$OUT/graph_regression.json"
else
  for s in gpu-parity graph-regression; do skip "$s" "the build failed"; done
fi

# ------------------------------------------------------------ the CUDA-graph compatibility matrix
if [ $BUILT = 1 ] && [ -n "$SHARED" ]; then
  export FACEGRAPH_CACHE_DIR="$REPO/build-gpu/cache"
  stage graph-matrix 90 bash -c "'$FG' models --graphs --models '$SHARED/models' --runs 100 | tee '$OUT/graph_matrix.txt' &&
    '$FG' models --graphs --models '$SHARED/models' --json > '$OUT/graph_matrix.json' &&
    echo 'cached re-run:' && '$FG' models --graphs --models '$GEN/regression' --runs 20"
fi

# ------------------------------------------------------------ benchmark
# It gets the time left but RESERVE seconds (for the sanitizers and the torch
# peer check); --budget stops it starting new models, the stage limit kills
# it a minute later (the results so far are already written).
RESERVE="${FG_GPU_RESERVE:-170}"
if [ -n "${FG_GPU_SKIP_BENCH:-}" ]; then
  skip bench "FG_GPU_SKIP_BENCH is set (run bench/gpu.sh on its own)"
elif [ $BUILT = 1 ]; then
  BENCH_BUDGET=$(( $(left) - RESERVE - 60 ))
  [ "$BENCH_BUDGET" -lt 30 ] && BENCH_BUDGET=30
  stage bench $((BENCH_BUDGET + 60)) bash bench/gpu.sh --facegraph "$FG" --gen "$GEN/standins-full" --out "$OUT" \
    --budget "$BENCH_BUDGET" ${SHARED:+--shared "$SHARED"}
else
  skip bench "the build failed"
fi

# ------------------------------------------------------------ sanitizers
# compute-sanitizer on one graph-replay run: --repeat 2 runs eager, eager,
# then captures and replays (validated against the eager outputs).
if [ $BUILT = 1 ]; then
  SAN="$REPO/build-gpu/sanitize"
  mkdir -p "$SAN"
  SMALL="${SHARED:+$SHARED/models/pfld_68_cunjian.onnx}"
  [ -z "$SMALL" ] || [ ! -f "$SMALL" ] && SMALL="$GEN/standins-small/fan_68_5.onnx"
  NMS="$GEN/regression/detector_nms.onnx"
  SANITIZER="${FG_COMPUTE_SANITIZER:-$(command -v compute-sanitizer || ls /usr/local/cuda/compute-sanitizer/compute-sanitizer 2>/dev/null | head -1)}"
  if [ -z "$SANITIZER" ] || [ ! -x "$SANITIZER" ]; then
    skip memcheck-small "compute-sanitizer not found (looked in PATH and /usr/local/cuda/compute-sanitizer)"
  elif [ ! -f "$SMALL" ]; then
    skip memcheck-small "no small model for the sanitizer ($SMALL)"
  else
    SMALL_ARGS=$(python3 tests/gpu/prepare_inputs.py "$SMALL" "$SAN" 2>>"$LOGS/prepare.log")
    stage memcheck-small 70 "$SANITIZER" --tool memcheck --error-exitcode 1 --print-limit 20 \
      "$FG" infer "$SMALL" $SMALL_ARGS --output-dir "$SAN/out-memcheck" --repeat 2 --report \
      --execution-providers cuda --cuda-graph on
    if [ -f "$NMS" ]; then
      NMS_ARGS=$(python3 tests/gpu/prepare_inputs.py "$NMS" "$SAN" 2>>"$LOGS/prepare.log")
      stage memcheck-nms 45 "$SANITIZER" --tool memcheck --error-exitcode 1 --print-limit 20 \
        "$FG" infer "$NMS" $NMS_ARGS --output-dir "$SAN/out-nms" --repeat 2 --report \
        --execution-providers cuda --cuda-graph auto
    fi
    stage racecheck-small 70 "$SANITIZER" --tool racecheck --error-exitcode 1 --print-limit 20 \
      "$FG" infer "$SMALL" $SMALL_ARGS --output-dir "$SAN/out-racecheck" --repeat 2 --report \
      --execution-providers cuda --cuda-graph on
    # every Winograd form and fused variant on the test's small shapes (built by the winograd stage)
    [ -x build-gpu/winograd_test ] &&
      stage memcheck-winograd 90 "$SANITIZER" --tool memcheck --error-exitcode 1 --print-limit 20 \
        build-gpu/winograd_test --check-only
  fi
else
  skip memcheck-small "the build failed"
fi

# ------------------------------------------------------------ the benchmark's PyTorch peer
stage torch-peer 60 python3 tests/gpu/onnx_torch_test.py --device cuda --gen "$GEN/standins-small" \
  ${SHARED:+--shared "$SHARED"}

# ------------------------------------------------------------ summary
python3 - "$OUT" "$((SECONDS - T0))" <<'PY'
import json, os, sys
out, took = sys.argv[1], int(sys.argv[2])
stages = []
for line in open(os.path.join(out, "stages.tsv")):
    parts = line.rstrip("\n").split("\t")
    if len(parts) >= 5:
        stages.append({"stage": parts[0], "status": parts[1], "rc": parts[2], "seconds": parts[3], "summary": parts[4]})
results = {"seconds": took, "stages": stages}
for name in ("gpu_parity", "graph_regression", "gpu_bench"):
    p = os.path.join(out, name + ".json")
    if os.path.exists(p):
        try:
            results[name] = json.load(open(p))
        except ValueError as e:
            results[name] = {"error": str(e)}
json.dump(results, open(os.path.join(out, "results.json"), "w"), indent=1)
n = {s: sum(1 for x in stages if x["status"] == s) for s in ("passed", "failed", "skipped")}
lines = ["# facegraph GPU batch", "", "%d passed, %d failed, %d skipped stages in %d s" % (n["passed"], n["failed"], n["skipped"], took), "",
         "| stage | status | rc | s | summary |", "|---|---|---|---|---|"]
lines += ["| %s | %s | %s | %s | %s |" % (s["stage"], s["status"], s["rc"], s["seconds"], s["summary"].replace("|", "/")) for s in stages]
env = os.path.join(out, "env.txt")
if os.path.exists(env):
    lines += ["", "## Environment", "", "```", open(env).read().strip(), "```"]
for name, title in (("gpu_parity", "GPU parity failures"), ("graph_regression", "Graph regression failures and skips")):
    r = results.get(name, {})
    bad = [x for x in r.get("results", []) if x.get("status") != "ok"]
    if bad:
        lines += ["", "## " + title, ""] + ["- %s %s: %s" % (x.get("model"), x.get("mode", x.get("test", "")), x.get("detail", "")) for x in bad]
bench = os.path.join(out, "gpu_bench.md")
if os.path.exists(bench):
    lines += ["", open(bench).read().replace("# GPU benchmark", "## GPU benchmark", 1)]
open(os.path.join(out, "summary.md"), "w").write("\n".join(lines) + "\n")
print("wrote %s/summary.md and results.json" % out)
PY
# what comes back from a device run is limited to a few files: fold the logs
# and the per-suite JSON (already inside results.json) into one archive
tar czf "$OUT/logs.tgz" -C "$OUT" logs stages.tsv env.txt $(cd "$OUT" && ls gpu_parity.json graph_regression.json 2>/dev/null) &&
  rm -rf "$OUT/logs" "$OUT/env.txt" "$OUT/gpu_parity.json" "$OUT/graph_regression.json"
passed=$(awk -F'\t' '$2=="passed"' "$STAGES" | wc -l)
failed=$(awk -F'\t' '$2=="failed"' "$STAGES" | wc -l)
skipped=$(awk -F'\t' '$2=="skipped"' "$STAGES" | wc -l)
echo "gpu batch: $passed passed, $failed failed, $skipped skipped stages in $((SECONDS - T0)) s (logs in $OUT)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
