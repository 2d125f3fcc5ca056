#!/usr/bin/env bash
# Heap allocations per steady-state run, per model (the "second run
# allocates nothing" check). facegraph's own code allocates nothing; the
# counts that show up come from oneDNN's dnnl_primitive_execute (its
# argument maps), as backtraces of the allocations show.
# usage: tools/alloc_count.sh MODEL.onnx ...   (after `make`)
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
gcc -O2 -shared -fPIC tools/alloc_count/malloc_counter.c -o "$work/libmcount.so"
cuda_libs=""
grep -q "FG_HAVE_CUDA:INTERNAL=ON\|CUDNN_LIBRARY:FILEPATH=/" build/CMakeCache.txt 2>/dev/null &&
  cuda_libs="-L/usr/local/cuda/lib64 -lcudart -lcublas -lcublasLt -lcudnn -lstdc++"
gcc -O2 -I include -I src tools/alloc_count/runs.c -o "$work/runs" -L"$work" -lmcount build/libfacegraph.a \
  -ldnnl -ljpeg -lpng -lm -fopenmp $cuda_libs
for m in "$@"; do LD_LIBRARY_PATH="$work" "$work/runs" "$m"; done
rm -rf "$work"
