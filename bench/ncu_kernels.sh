# per-kernel GPU time of one eager run (ncu, real clocks, warm caches)
S=.shared/models; W=$(mktemp -d)
for m in "$@"; do
  args=$(python3 tests/gpu/prepare_inputs.py $S/$m.onnx $W 2>/dev/null)
  build-gpu/facegraph infer $S/$m.onnx $args --output-dir $W/o --repeat 3 --execution-providers cuda --cuda-graph off >/dev/null 2>&1
  timeout 150 ncu --clock-control none --cache-control none --metrics gpu__time_duration.sum --csv build-gpu/facegraph infer $S/$m.onnx $args --output-dir $W/o --repeat 1 --execution-providers cuda --cuda-graph off 2>/dev/null | sed -n '/^"ID"/,$p' | python3 -c "
import csv,sys
r=list(csv.reader(sys.stdin))
h=r[0]; ki=h.index('Kernel Name'); vi=h.index('Metric Value'); gi=h.index('Grid Size'); bi=h.index('Block Size')
tot=0
for row in r[1:]:
    if len(row)>vi:
        v=float(row[vi].replace(',',''))/1000; tot+=v
        print('%8.2f'%v, row[gi], row[bi], row[ki][:110])
print('total us', tot, 'kernels', len(r)-1)
" > $OUT/$m.txt
done
