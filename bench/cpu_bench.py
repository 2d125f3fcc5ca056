#!/usr/bin/env python3
"""CPU latency: facegraph vs ONNX Runtime, same machine, inputs and threads.

For every shared model and every stand-in (tools/make_standins.py) at full
size: median latency of facegraph (`facegraph infer --repeat N`, planning
excluded) and of onnxruntime's CPU provider (session.run, first run
excluded). Writes a table to stdout and JSON to --json.
"""
import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))
from parity_test import SHARED, make_inputs  # noqa: E402  (same inputs as the parity test)


def time_ort(path, feeds, threads, budget):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    sess.run(None, feeds)
    times = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < budget and len(times) < 200):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), len(times)


def time_facegraph(fg, path, feeds, threads, repeat, tmp):
    args = [fg, "infer", path, "--output-dir", os.path.join(tmp, "out"), "--execution-thread-count", str(threads),
            "--repeat", str(repeat)]
    for i, (k, v) in enumerate(feeds.items()):
        f = os.path.join(tmp, "in%d.npy" % i)
        np.save(f, v)
        args += ["--input", "%s=%s" % (k, f)]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        return None, r.stderr.strip()[-300:]
    return float(re.search(r"median run time: ([0-9.]+) ms", r.stdout).group(1)), None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--facegraph", default=os.path.join(REPO, "build", "facegraph"))
    ap.add_argument("--gen", default=os.path.join(REPO, "build", "gen"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--budget", type=float, default=3.0, help="seconds of timing per model and runtime")
    ap.add_argument("--json", default=os.path.join(REPO, "build", "bench-cpu.json"))
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    models = sorted(os.path.join(SHARED, "models", f) for f in os.listdir(os.path.join(SHARED, "models")) if f.endswith(".onnx"))
    gen = os.path.join(args.gen, "standins-full")
    os.makedirs(gen, exist_ok=True)
    subprocess.run([sys.executable, os.path.join(REPO, "tools", "make_standins.py"), "--out", gen, "--scale", "full"], check=True)
    models += sorted(os.path.join(gen, f) for f in os.listdir(gen) if f.endswith(".onnx"))
    if args.only:
        models = [m for m in models if any(k in os.path.basename(m) for k in args.only.split(","))]
    rows = []
    print("%-34s %12s %12s %7s" % ("model", "facegraph ms", "onnxrt ms", "ratio"))
    with tempfile.TemporaryDirectory() as tmp:
        for m in models:
            model = onnx.load(m, load_external_data=False)
            feeds = make_inputs(m, model, np.random.default_rng(1234))
            ort_ms, n = time_ort(m, feeds, args.threads, args.budget)
            fg_ms, err = time_facegraph(args.facegraph, m, feeds, args.threads, max(3, min(n, 200)), tmp)
            row = {"model": os.path.basename(m), "onnxruntime_ms": round(ort_ms, 3), "runs": n}
            if fg_ms is None:
                row["error"] = err
                print("%-34s %12s %12.3f %7s  %s" % (row["model"], "error", ort_ms, "-", err))
            else:
                row["facegraph_ms"] = round(fg_ms, 3)
                row["ratio"] = round(fg_ms / ort_ms, 3)
                print("%-34s %12.3f %12.3f %7.2f" % (row["model"], fg_ms, ort_ms, row["ratio"]), flush=True)
            rows.append(row)
    ratios = [r["ratio"] for r in rows if "ratio" in r]
    geo = float(np.exp(np.mean(np.log(ratios)))) if ratios else None
    worst = max(ratios) if ratios else None
    print("geometric mean ratio: %s, worst: %s (targets: <= 1.0 and <= 1.5)" % (geo and round(geo, 3), worst))
    result = {"device": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(), "threads": args.threads,
              "onnxruntime": ort.__version__, "models": rows, "geomean_ratio": geo, "worst_ratio": worst}
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    json.dump(result, open(args.json, "w"), indent=1)
    print("wrote", args.json)


if __name__ == "__main__":
    main()
