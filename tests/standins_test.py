#!/usr/bin/env python3
"""Checks the FaceFusion stand-in generators (tools/standins).

    python3 tests/standins_test.py [--full] [--only name,...] [--dir DIR]

Default: builds every model at --scale small into a temporary directory,
runs onnx.checker on the saved file, runs it through ONNX Runtime with
seeded random inputs in each model's input range, and checks input/output
names, shapes and dtypes, that outputs are finite, not constant (std > 1e-3
for outputs with more than 8 values) and depend on the input (two different
feeds give different outputs). Also checks model-specific contracts: opset
17, inswapper's 512x512 `emap` is the last initializer, gfpgan has a Conv
whose weight is computed at run time.

--full: additionally builds the full-size models one at a time (written to
the temporary directory, deleted after use), checks their parameter counts
are within 10 % of the real files' (file size / 4), runs them through ONNX
Runtime with the same checks, and prints a table: model, params, target,
ratio. Prints 'N passed, M failed' and exits non-zero on any failure.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
import traceback

import numpy as np
import onnx
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # keep tools/standins free of __pycache__
sys.path.insert(0, os.path.join(ROOT, 'tools'))

import standins  # noqa: E402

ORT_TYPES = {'float32': 'tensor(float)', 'float16': 'tensor(float16)'}


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, label, condition, detail=''):
        if condition:
            self.passed += 1
        else:
            self.failed += 1
            print('FAIL %s %s' % (label, detail), flush=True)
        return condition


def make_feeds(specs, seed):
    rng = np.random.default_rng(seed)
    return {name: rng.uniform(low, high, size=shape).astype(dtype) for name, shape, dtype, (low, high) in specs}


def check_model(results, name, model, directory, label):
    model_spec = standins.MODELS[name]
    input_specs, output_specs = model_spec[2], model_spec[3]
    path = os.path.join(directory, '%s.%s.onnx' % (name, label))
    onnx.save(model, path)
    tag = '%s[%s]' % (name, label)
    try:
        onnx.checker.check_model(path, full_check=False)
        results.check(tag + ' checker', True)
    except Exception as error:  # noqa: BLE001
        results.check(tag + ' checker', False, str(error)[:300])
        return
    results.check(tag + ' opset 17', any(o.domain in ('', 'ai.onnx') and o.version == 17 for o in model.opset_import))
    if name.startswith('inswapper_128'):
        last = model.graph.initializer[-1]
        results.check(tag + ' emap last initializer', last.name == 'emap' and list(last.dims) == [512, 512],
                      '%s %s' % (last.name, list(last.dims)))
    if name == 'gfpgan_1.4':
        constants = {t.name for t in model.graph.initializer}
        dynamic = [n for n in model.graph.node if n.op_type == 'Conv' and n.input[1] not in constants]
        results.check(tag + ' run-time conv weights', len(dynamic) >= 10, '%d dynamic convs' % len(dynamic))

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.log_severity_level = 3
    session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    got_inputs = [(i.name, list(i.shape), i.type) for i in session.get_inputs()]
    want_inputs = [(n, s, ORT_TYPES[d]) for n, s, d, _ in input_specs]
    results.check(tag + ' inputs', got_inputs == want_inputs, '%s != %s' % (got_inputs, want_inputs))
    got_outputs = [o.name for o in session.get_outputs()]
    results.check(tag + ' output names', got_outputs == [n for n, _, _ in output_specs], str(got_outputs))

    start = time.time()
    first = session.run(None, make_feeds(input_specs, 1))
    second = session.run(None, make_feeds(input_specs, 2))
    elapsed = time.time() - start
    for (out_name, shape, dtype), a, b in zip(output_specs, first, second):
        otag = '%s %s' % (tag, out_name)
        results.check(otag + ' shape', list(a.shape) == shape, '%s != %s' % (list(a.shape), shape))
        results.check(otag + ' dtype', str(a.dtype) == dtype, str(a.dtype))
        a64 = a.astype(np.float64)
        finite = bool(np.isfinite(a64).all() and np.isfinite(b.astype(np.float64)).all())
        results.check(otag + ' finite', finite)
        if a.size > 8:
            results.check(otag + ' std > 1e-3', finite and a64.std() > 1e-3, 'std %g' % a64.std())
        difference = np.abs(a64 - b.astype(np.float64)).max() if finite else 0.0
        results.check(otag + ' depends on input', difference > 1e-4, 'max diff %g' % difference)
    del session
    os.remove(path)
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--full', action='store_true', help='also check full-size models and parameter counts')
    parser.add_argument('--only', default='', help='comma-separated model names')
    parser.add_argument('--dir', default=None, help='scratch directory (default: a new temporary directory)')
    args = parser.parse_args()

    names = [n for n in args.only.split(',') if n] or list(standins.MODELS)
    directory = tempfile.mkdtemp(prefix='standins_', dir=args.dir)
    results = Results()
    table = []
    start = time.time()
    try:
        for name in names:
            try:
                check_model(results, name, standins.build(name, 'small'), directory, 'small')
            except Exception:  # noqa: BLE001
                results.check('%s[small] build/run' % name, False, traceback.format_exc()[-600:])
        print('small models: %.1f s' % (time.time() - start), flush=True)
        if args.full:
            for name in names:
                try:
                    model = standins.build(name, 'full')
                    params = standins.count_parameters(model)
                    target = standins.target_parameters(name)
                    ratio = params / target
                    results.check('%s[full] params within 10%%' % name, abs(ratio - 1.0) <= 0.10, '%.3f' % ratio)
                    elapsed = check_model(results, name, model, directory, 'full')
                    table.append((name, params, target, ratio, elapsed))
                    del model
                except Exception:  # noqa: BLE001
                    results.check('%s[full] build/run' % name, False, traceback.format_exc()[-600:])
            print('%-20s %12s %12s %7s %8s' % ('model', 'params', 'target', 'ratio', 'ort s'))
            for name, params, target, ratio, elapsed in table:
                print('%-20s %12d %12d %7.3f %8.2f' % (name, params, target, ratio, elapsed or 0.0))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print('%d passed, %d failed' % (results.passed, results.failed))
    return 1 if results.failed else 0


if __name__ == '__main__':
    sys.exit(main())
