#!/usr/bin/env python3
"""Generate ONNX stand-ins for FaceFusion's models (seeded random weights).

    python3 tools/make_standins.py --out DIR [--scale full|small] [--only name,...]

Writes DIR/<name>.onnx for each model (see tools/standins/__init__.py for the
list) and prints name, parameter count, target count and file size. Output
never goes into the repository unless you point --out there.
"""

import argparse
import os
import sys
import time

sys.dont_write_bytecode = True  # keep tools/standins free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import onnx  # noqa: E402

import standins  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', required=True, help='directory for the .onnx files')
    parser.add_argument('--scale', default='full', choices=sorted(standins.SCALES), help='full size or narrow CI models')
    parser.add_argument('--only', default='', help='comma-separated model names (default: all)')
    args = parser.parse_args(argv)

    names = [n for n in args.only.split(',') if n] or list(standins.MODELS)
    unknown = [n for n in names if n not in standins.MODELS]
    if unknown:
        parser.error('unknown model(s): %s (known: %s)' % (', '.join(unknown), ', '.join(standins.MODELS)))
    os.makedirs(args.out, exist_ok=True)
    print('%-20s %12s %12s %7s %10s %6s' % ('model', 'params', 'target', 'ratio', 'MB', 's'))
    for name in names:
        start = time.time()
        model = standins.build(name, args.scale)
        path = os.path.join(args.out, name + '.onnx')
        onnx.save(model, path)
        params = standins.count_parameters(model)
        target = standins.target_parameters(name)
        print('%-20s %12d %12d %7.3f %10.1f %6.1f' % (name, params, target, params / target,
                                                     os.path.getsize(path) / 1e6, time.time() - start), flush=True)
        del model
    return 0


if __name__ == '__main__':
    sys.exit(main())
