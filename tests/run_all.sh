#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds (release and
# ASan+UBSan), runs every suite, prints one summary line.
# Suites print their own "N passed, M failed"; this script counts suites.
set -uo pipefail
cd "$(dirname "$0")/.."
tools/install_deps.sh --test || { echo "dependency install failed"; exit 1; }
make all asan >/tmp/facegraph-build.log 2>&1 || { tail -50 /tmp/facegraph-build.log; echo "build failed"; exit 1; }
echo "build: ok (release build/ and ASan+UBSan build-asan/)"

export FACEGRAPH_SHARED="${FACEGRAPH_SHARED:-$(cd .. && pwd)/shared}"
GEN="${FACEGRAPH_GEN:-build/gen}"
mkdir -p "$GEN"
passed=0; failed=0; skipped=0; failed_names=""

suite() { # name command...
  local name="$1"; shift
  echo
  echo "=== $name"
  local start=$SECONDS
  "$@"
  local rc=$?
  if [ $rc -eq 0 ]; then passed=$((passed+1)); echo "--- $name: ok ($((SECONDS-start)) s)"
  elif [ $rc -eq 77 ]; then skipped=$((skipped+1)); echo "--- $name: skipped"
  else failed=$((failed+1)); failed_names="$failed_names $name"; echo "--- $name: FAILED ($((SECONDS-start)) s)"; fi
}

suite onnx-reader python3 tests/onnx_reader_test.py build/test_onnx_reader
suite api build/test_api "$FACEGRAPH_SHARED/models"
suite arena bash -c 'm="$0/models"; build/test_arena "$m"/scrfd_2.5g.onnx "$m"/face_detection_yunet_2023mar.onnx "$m"/retinaface_mnet025_biubug6.onnx "$m"/yolov8-lite-t_face.onnx' "$FACEGRAPH_SHARED"
suite conformance build/test_conformance --known-failures tests/conformance_known_failures.txt
suite segments bash -c 'python3 tests/segments_models.py --out "$0/segments" >/dev/null && build/test_segments "$0"/segments/*.onnx' "$GEN"
suite standins python3 tests/standins_test.py
suite parity python3 tests/parity_test.py --facegraph build/facegraph --gen "$GEN"
suite detect python3 tests/test_detect.py build/facegraph
suite graph-regression python3 tests/graph_regression_test.py --facegraph build/facegraph
suite fusion python3 tests/fusion_test.py --facegraph build/facegraph
suite dwpw python3 tests/dwpw_test.py --facegraph build/facegraph
suite merge python3 tests/merge_test.py --facegraph build/facegraph
suite merge-transposes python3 tests/merge_transposes_test.py --facegraph build/facegraph
suite fold python3 tests/fold_test.py --facegraph build/facegraph
suite fold-pools python3 tests/fold_pools_test.py --facegraph build/facegraph
suite concat-in-place python3 tests/concat_in_place_test.py --facegraph build/facegraph
suite bad-inputs python3 tests/bad_inputs_test.py --facegraph build-asan/facegraph
suite gpu bash tests/gpu/run_if_gpu.sh

echo
[ -n "$failed_names" ] && echo "failed suites:$failed_names"
echo "suites: $passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
