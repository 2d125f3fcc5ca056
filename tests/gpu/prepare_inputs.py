#!/usr/bin/env python3
"""Writes a model's test inputs as .npy files and prints the matching
`--input NAME=FILE` arguments for `facegraph infer` (one line).

    python3 tests/gpu/prepare_inputs.py MODEL DIR [--shared DIR]

Models of tools/regression_models.py (by file stem) get their first call's
feeds; other models get the parity inputs (tests/gpu/gpu_inputs.py).
"""
import argparse
import os
import sys

import numpy as np
import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tools"))
from gpu_inputs import default_shared, make_inputs  # noqa: E402
import regression_models  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("dir")
    ap.add_argument("--shared", default=default_shared(REPO))
    args = ap.parse_args()
    stem = os.path.splitext(os.path.basename(args.model))[0]
    if stem in regression_models.MODELS:
        feeds = regression_models.calls(stem)[0]
    else:
        feeds = make_inputs(args.model, onnx.load(args.model, load_external_data=False), args.shared)
    os.makedirs(args.dir, exist_ok=True)
    parts = []
    for name, value in feeds.items():
        path = os.path.join(os.path.abspath(args.dir), "%s_%s.npy" % (stem, "".join(c if c.isalnum() else "_" for c in name)))
        np.save(path, np.asarray(value))
        parts += ["--input", "%s=%s" % (name, path)]
    print(" ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
