#!/usr/bin/env python3
"""GPU parity: facegraph on the cuda provider against ONNX Runtime (CPU).

For every shared model and every small stand-in (tools/make_standins.py
--scale small), the same inputs go to onnxruntime (CPU) and to
`facegraph infer --execution-providers cuda` twice:
  eager   --cuda-graph off
  graph   --cuda-graph auto --repeat 3 (the last run replays the captured
          graph; --report says whether one was captured, and why not)
  fp16    the same with --execution-precision fp16
and every output must satisfy
  max |ours - ref| <= 1e-4 * max |ref| + 1e-5       (float32)
  max |ours - ref| <= 5e-3 * max |ref| + 1e-3       (float16 outputs)
  max |ours - ref| <= 3e-2 * max |ref| + 1e-3       (convolutions allowed in
      float16: the fp16 mode, and every mode of a model with float16 weights)
with the same shape and dtype. Prints 'N passed, M failed'.

    python3 tests/gpu/gpu_parity.py --facegraph build-gpu/facegraph [--shared DIR]
        [--gen DIR] [--json FILE] [--only a,b] [--device N]
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from gpu_inputs import default_shared, make_inputs  # noqa: E402

ort.set_default_logger_severity(3)
TIMEOUT = 120


def tolerance(ref, half_compute=False):
    if half_compute:
        return 3e-2 * float(np.max(np.abs(ref.astype(np.float64)))) + 1e-3
    if ref.dtype == np.float16:
        return 5e-3 * float(np.max(np.abs(ref.astype(np.float64)))) + 1e-3
    return 1e-4 * float(np.max(np.abs(ref.astype(np.float64)))) + 1e-5


def run_facegraph(fg, path, inputs, out, extra):
    shutil.rmtree(out, ignore_errors=True)
    args = [fg, "infer", path, "--output-dir", out, "--report"] + extra
    for name, f in inputs:
        args += ["--input", "%s=%s" % (name, f)]
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, None, "timed out after %d s" % TIMEOUT
    if r.returncode < 0:
        return None, None, "CRASHED (signal %d): %s" % (-r.returncode, r.stderr.strip()[-300:])
    if r.returncode != 0:
        return None, None, " ".join((r.stderr.strip() or r.stdout.strip()).split())[-400:]
    report = {}
    m = re.search(r"^execution: (\{.*\})\s*$", r.stdout, re.M)
    if m:
        try:
            report = json.loads(m.group(1))
        except ValueError:
            pass
    mapping = json.load(open(os.path.join(out, "outputs.json")))
    return {k: np.load(os.path.join(out, v)) for k, v in mapping.items()}, report, None


def compare(outs, names, refs, half_compute):
    worst = []
    for name, ref in zip(names, refs):
        if name not in outs:
            return "output %s missing" % name, worst
        o = outs[name]
        if o.shape != ref.shape:
            return "output %s: shape %s, onnxruntime %s" % (name, o.shape, ref.shape), worst
        if o.dtype != ref.dtype:
            return "output %s: dtype %s, onnxruntime %s" % (name, o.dtype, ref.dtype), worst
        if ref.size == 0:
            continue
        if not np.issubdtype(ref.dtype, np.floating):
            if not np.array_equal(o, ref):
                return "output %s: integer values differ" % name, worst
            continue
        a, b = o.astype(np.float64), ref.astype(np.float64)
        if np.isnan(a).any() and not np.isnan(b).any():
            return "output %s: NaN where onnxruntime has none" % name, worst
        err = float(np.nanmax(np.abs(a - b))) if a.size else 0.0
        tol = tolerance(ref, half_compute)
        worst.append("%s %.2g/%.2g" % (name, err, tol))
        if not err <= tol:
            return "output %s: max |ours - ref| = %.4g > %.4g" % (name, err, tol), worst
    return None, worst


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--facegraph", default=os.path.join(REPO, "build-gpu", "facegraph"))
    ap.add_argument("--shared", default=default_shared(REPO))
    ap.add_argument("--gen", default=os.path.join(REPO, "build-gpu", "gen", "standins-small"))
    ap.add_argument("--device", type=int, default=0)
    ap.add_argument("--providers", default="cuda", help="e.g. 'cuda' (strict) or 'cuda cpu' (with fallback)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--only", default="")
    ap.add_argument("--modes", default="eager,graph,fp16", help="which of eager, graph, fp16 to run")
    args = ap.parse_args()
    models = []
    mdir = os.path.join(args.shared, "models") if args.shared else ""
    if mdir and os.path.isdir(mdir):
        models += sorted(os.path.join(mdir, f) for f in os.listdir(mdir) if f.endswith(".onnx"))
    else:
        print("warning: no shared models (pass --shared DIR)")
    os.makedirs(args.gen, exist_ok=True)
    if not any(f.endswith(".onnx") for f in os.listdir(args.gen)):
        r = subprocess.run([sys.executable, os.path.join(REPO, "tools", "make_standins.py"), "--out", args.gen,
                            "--scale", "small"], capture_output=True, text=True)
        if r.returncode != 0:
            print("FAIL stand-in generation: " + r.stderr.strip()[-400:])
    models += sorted(os.path.join(args.gen, f) for f in os.listdir(args.gen) if f.endswith(".onnx"))
    if args.only:
        models = [m for m in models if any(k in os.path.basename(m) for k in args.only.split(","))]
    base = ["--execution-providers"] + args.providers.split() + ["--execution-device-id", str(args.device)]
    modes = [("eager", base + ["--cuda-graph", "off"]), ("graph", base + ["--cuda-graph", "auto", "--repeat", "3"]),
             ("fp16", base + ["--cuda-graph", "auto", "--repeat", "3", "--execution-precision", "fp16"])]
    modes = [m for m in modes if m[0] in args.modes.split(",")]
    passed = failed = 0
    results = []
    tmp = tempfile.mkdtemp(prefix="fg-gpu-parity-")
    for path in models:
        name = os.path.basename(path)
        start = time.time()
        work = os.path.join(tmp, os.path.splitext(name)[0])
        os.makedirs(work, exist_ok=True)
        try:
            model = onnx.load(path, load_external_data=False)
            float16_model = any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)
            feeds = make_inputs(path, model, args.shared)
            sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            refs = sess.run(None, feeds)
            names = [o.name for o in sess.get_outputs()]
        except Exception as e:
            print("FAIL %s: reference: %s" % (name, str(e)[:300]), flush=True)
            failed += 1
            results.append({"model": name, "status": "fail", "detail": "reference: %s" % str(e)[:300]})
            continue
        inputs = []
        for k, (iname, value) in enumerate(feeds.items()):
            f = os.path.join(work, "in%d.npy" % k)
            np.save(f, value)
            inputs.append((iname, f))
        for mode, extra in modes:
            outs, report, err = run_facegraph(args.facegraph, path, inputs, os.path.join(work, mode), extra)
            if err is None:
                err, worst = compare(outs, names, refs, float16_model or mode == "fp16")
                if err is None and report.get("provider") not in (None, "cuda") and args.providers == "cuda":
                    err = "ran on the %s provider" % report.get("provider")
            else:
                worst = []
            ok = err is None
            graph = ""
            if mode == "graph" and report:
                graph = "; graph %s" % ("captured" if report.get("graph_captured") else
                                        "NOT captured: " + str(report.get("graph_reason", ""))[:120])
            if report and report.get("kernels_per_run"):
                graph += "; %s kernels" % report["kernels_per_run"]
            detail = (err if err else "; ".join(worst[:3])) + graph
            print("%s %s [%s]: %s" % ("PASS" if ok else "FAIL", name, mode, detail), flush=True)
            results.append({"model": name, "mode": mode, "status": "ok" if ok else "fail", "detail": detail,
                            "report": report})
            passed += ok
            failed += not ok
        shutil.rmtree(work, ignore_errors=True)
        del start
    shutil.rmtree(tmp, ignore_errors=True)
    print("gpu parity: %d passed, %d failed" % (passed, failed))
    print("%d passed, %d failed" % (passed, failed))
    if args.json:
        json.dump({"passed": passed, "failed": failed, "results": results}, open(args.json, "w"), indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
