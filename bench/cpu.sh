#!/usr/bin/env bash
# CPU benchmark: facegraph vs ONNX Runtime on every shared model and every
# full-size stand-in, same machine, inputs and thread count.
# usage: bench/cpu.sh [--threads N] [--json FILE] [--only name,...]
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install_deps.sh --test
make all >/dev/null
exec python3 bench/cpu_bench.py "$@"
