#!/usr/bin/env bash
# Per-kernel GPU time of one eager run of each model (ncu, real clocks, warm
# caches): one line per kernel launch (us, grid, block, name), then the total.
# usage (on the GPU machine, after a build in build-gpu/):
#   OUT=dir bash bench/ncu_kernels.sh MODEL.onnx|NAME ...   (NAME: a shared model's stem)
# Writes $OUT/<stem>.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-build-gpu/out}"; mkdir -p "$OUT"
S=.shared/models; W=$(mktemp -d)
for m in "$@"; do
  path=$m; [ -f "$path" ] || path=$S/$m.onnx
  stem=$(basename "$path" .onnx)
  args=$(python3 tests/gpu/prepare_inputs.py "$path" "$W" 2>/dev/null)
  build-gpu/facegraph infer "$path" $args --output-dir "$W/o" --repeat 3 --execution-providers cuda \
    --cuda-graph off >/dev/null 2>&1   # tunes and caches the convolution choices first
  timeout 150 ncu --clock-control none --cache-control none --metrics gpu__time_duration.sum --csv \
    build-gpu/facegraph infer "$path" $args --output-dir "$W/o" --repeat 1 --execution-providers cuda \
    --cuda-graph off 2>/dev/null | sed -n '/^"ID"/,$p' | python3 -c "
import csv, sys
rows = list(csv.reader(sys.stdin))
if not rows:
    sys.exit('no ncu output')
h = rows[0]; ki, vi = h.index('Kernel Name'), h.index('Metric Value')
gi, bi = h.index('Grid Size'), h.index('Block Size')
total = 0.0
for r in rows[1:]:
    if len(r) > vi:
        us = float(r[vi].replace(',', '')) / 1000; total += us
        print('%8.2f %s %s %s' % (us, r[gi], r[bi], r[ki][:110]))
print('total us', round(total, 2), 'kernels', len(rows) - 1)
" > "$OUT/$stem.txt"
done
rm -rf "$W"
