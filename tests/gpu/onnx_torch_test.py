#!/usr/bin/env python3
"""Checks bench/onnx_torch.py (the PyTorch peer of the GPU benchmark) against
ONNX Runtime (CPU) on the shared models and the small stand-ins, so the
benchmark compares facegraph with a PyTorch forward that computes the same
thing. Runs on the CPU (torch CPU build) or with --device cuda.

    python3 tests/gpu/onnx_torch_test.py [--shared DIR] [--gen DIR] [--device cpu|cuda] [--only a,b]

Tolerance: max |torch - ort| <= 1e-3 * max |ort| + 1e-4 (fp32; fp16 models
1e-2): looser than the parity test because cuDNN/MKL choose their own
algorithms. Prints 'N passed, M failed'; exits 77 when torch is missing.
"""
import argparse
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "bench"))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402

ort.set_default_logger_severity(3)

try:
    import torch  # noqa: E402
except ImportError:
    print("skipped: torch is not installed")
    sys.exit(77)

import onnx_torch  # noqa: E402
from gpu_inputs import make_inputs  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.environ.get("FACEGRAPH_SHARED", os.path.join(os.path.dirname(REPO), "shared")))
    ap.add_argument("--gen", default=None, help="directory with (or for) the small stand-ins")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--only", default="")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    models = []
    mdir = os.path.join(args.shared, "models")
    if os.path.isdir(mdir):
        models += sorted(os.path.join(mdir, f) for f in os.listdir(mdir) if f.endswith(".onnx"))
    gen = args.gen or tempfile.mkdtemp(prefix="fg-standins-small-")
    if not any(f.endswith(".onnx") for f in os.listdir(gen)) if os.path.isdir(gen) else True:
        os.makedirs(gen, exist_ok=True)
        subprocess.run([sys.executable, os.path.join(REPO, "tools", "make_standins.py"), "--out", gen, "--scale", "small"],
                       check=True, stdout=subprocess.DEVNULL)
    models += sorted(os.path.join(gen, f) for f in os.listdir(gen) if f.endswith(".onnx"))
    if args.only:
        models = [m for m in models if any(k in os.path.basename(m) for k in args.only.split(","))]
    passed = failed = 0
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    for path in models:
        name = os.path.basename(path)
        try:
            model = onnx.load(path)
            feeds = make_inputs(path, model, args.shared)
            ref = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, feeds)
            runner = onnx_torch.OnnxTorch(path, feeds, args.device, model=model)
            inputs = [torch.from_numpy(feeds[n]).to(args.device) for n in runner.input_names]
            with torch.inference_mode():
                ours = [o.cpu().numpy() for o in runner(*inputs)]
        except Exception as e:
            print("FAIL %s: %s: %s" % (name, type(e).__name__, str(e)[:300]), flush=True)
            failed += 1
            continue
        problems, worst = [], []
        for oname, o, r in zip(runner.output_names, ours, ref):
            if o.shape != r.shape:
                problems.append("%s: shape %s vs %s" % (oname, o.shape, r.shape))
                continue
            if r.size == 0:
                continue
            a, b = o.astype(np.float64), r.astype(np.float64)
            err = float(np.max(np.abs(a - b)))
            rel = 1e-2 if r.dtype == np.float16 else 1e-3
            tol = rel * float(np.max(np.abs(b))) + 1e-4
            worst.append("%s %.2g/%.2g" % (oname, err, tol))
            if not err <= tol:
                problems.append("%s: max err %.4g > %.4g" % (oname, err, tol))
        ok = not problems
        print("%s %s (%d steps): %s" % ("PASS" if ok else "FAIL", name, len(runner.steps),
                                         "; ".join(problems or worst[:3])), flush=True)
        passed += ok
        failed += not ok
    print("onnx_torch: %d passed, %d failed" % (passed, failed))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
