#!/usr/bin/env python3
"""CUDA-graph regression: models whose output sizes depend on the data.

For every model of tools/regression_models.py (NMS detector, NonZero, TopK
with k from an input, Shape-dependent Reshape, If, Loop, conv detector on
changing input sizes) runs all its calls through ONE facegraph session
(build/test_gpu_graph_replay, which links libfacegraph) and compares every
call's outputs with ONNX Runtime (CPU): integer outputs exactly, float
outputs within 1e-4 * max|ref| + 1e-5. Call 0 also goes through
`facegraph infer` (the CLI).

Modes: cpu; with --gpu also cuda with --cuda-graph off, on and auto. The
outputs of graph on/auto must be byte-identical to graph off, call by call.
A model facegraph refuses counts as "unsupported: reason" (skipped), never
as a crash, except the If / Loop models (GPU_SEGMENTS): on the GPU they run
as CUDA graph segments around host decisions, so they must pass there and
their execution report must say so. Prints 'N passed, M failed, K skipped'.

    python3 tests/graph_regression_test.py [--gpu] [--facegraph build/facegraph]
        [--driver build/test_gpu_graph_replay] [--out DIR] [--json FILE] [--only name,...]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tools"))
import regression_models  # noqa: E402

ort.set_default_logger_severity(3)

NP_OF_ONNX = {1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32, 7: np.int64,
              9: np.bool_, 10: np.float16, 11: np.float64, 12: np.uint32, 13: np.uint64}
ONNX_OF_NP = {np.dtype(v): k for k, v in NP_OF_ONNX.items()}

TIMEOUT = 180

# Models with If / Loop: on the cuda provider they run as CUDA graph segments
# around a host decision (src/runtime/segments.c), never refused.
GPU_SEGMENTS = {"if_branch", "loop_dynamic"}


def compare(ours, ref, what):
    """None if `ours` matches `ref`, else a sentence saying how it differs."""
    if ours.shape != ref.shape:
        return "%s: shape %s, onnxruntime %s" % (what, ours.shape, ref.shape)
    if ours.dtype != ref.dtype:
        return "%s: dtype %s, onnxruntime %s" % (what, ours.dtype, ref.dtype)
    if ref.size == 0:
        return None
    if not np.issubdtype(ref.dtype, np.floating):
        bad = np.flatnonzero(ours.ravel() != ref.ravel())
        if bad.size:
            return "%s: %d of %d values differ (first at flat index %d: %s vs %s)" % (
                what, bad.size, ref.size, bad[0], ours.ravel()[bad[0]], ref.ravel()[bad[0]])
        return None
    a, b = ours.astype(np.float64), ref.astype(np.float64)
    if not np.all(np.isfinite(a) == np.isfinite(b)):
        return "%s: non-finite values differ" % what
    finite = np.isfinite(b)
    err = float(np.max(np.abs(a[finite] - b[finite]))) if finite.any() else 0.0
    tol = 1e-4 * float(np.max(np.abs(b[finite]))) + 1e-5 if finite.any() else 0.0
    if not err <= tol:
        return "%s: max |ours - ref| = %.4g > %.4g" % (what, err, tol)
    return None


def write_calls(calls, work):
    """Raw input files and the CALLS manifest for the driver."""
    path = os.path.join(work, "calls.txt")
    with open(path, "w") as fp:
        for c, feeds in enumerate(calls):
            for name, value in feeds.items():
                value = np.asarray(value)  # tofile writes C order; ascontiguousarray would make a scalar 1-d
                f = os.path.join(work, "in_c%d_%s.bin" % (c, name))
                value.tofile(f)
                fp.write("%d %s %d %d %s %s\n" % (c, name, ONNX_OF_NP[value.dtype], value.ndim,
                                                 " ".join(str(d) for d in value.shape), f))
    return path


def run_driver(driver, model_path, calls_path, out_dir, providers, graph, device):
    """Runs all calls in one session. Returns (status, detail, outputs, reports):
    status is 'ok', 'unsupported', 'skipped' or 'fail'; outputs[call] is a list
    of arrays; reports[call] is (provider, captured, kernels, plans, reason)."""
    os.makedirs(out_dir, exist_ok=True)
    args = [driver, model_path, calls_path, out_dir, "--providers", providers, "--graph", graph, "--device", str(device)]
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return "fail", "timed out after %d s" % TIMEOUT, None, None
    text = (r.stdout + r.stderr).strip()
    if r.returncode < 0:
        return "fail", "CRASHED (signal %d): %s" % (-r.returncode, text[-400:]), None, None
    if r.returncode == 3 or "unsupported:" in r.stdout:
        msg = r.stdout.split("unsupported:", 1)[-1].strip()
        if not msg:
            return "fail", "refused without a message", None, None
        return "unsupported", msg, None, None
    if r.returncode == 0 and r.stdout.startswith("skipped"):
        return "skipped", r.stdout.strip(), None, None
    if r.returncode != 0:
        return "fail", "exit %d: %s" % (r.returncode, text[-600:]), None, None
    outputs, reports = {}, {}
    with open(os.path.join(out_dir, "result.txt")) as fp:
        for line in fp:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "output":
                call, index, dtype, rank = (int(x) for x in parts[1:5])
                dims = [int(x) for x in parts[5:5 + rank]]
                data = np.fromfile(parts[5 + rank], dtype=NP_OF_ONNX[dtype]).reshape(dims)
                outputs.setdefault(call, []).append((index, data))
            elif parts[0] == "report":
                call = int(parts[1])
                reports[call] = (parts[2], int(parts[3]), int(parts[4]), int(parts[5]), " ".join(parts[6:]))
    outputs = {c: [a for _, a in sorted(v, key=lambda t: t[0])] for c, v in outputs.items()}
    return "ok", "", outputs, reports


def run_cli(facegraph, model_path, feeds, work, extra):
    """Call 0 through `facegraph infer`; returns (status, detail, outputs by name)."""
    out = os.path.join(work, "cli_out")
    shutil.rmtree(out, ignore_errors=True)
    args = [facegraph, "infer", model_path, "--output-dir", out, "--repeat", "3"] + extra
    for name, value in feeds.items():
        f = os.path.join(work, "cli_%s.npy" % name)
        np.save(f, value)
        args += ["--input", "%s=%s" % (name, f)]
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return "fail", "facegraph infer timed out", None
    if r.returncode < 0:
        return "fail", "facegraph infer CRASHED (signal %d): %s" % (-r.returncode, r.stderr.strip()[-400:]), None
    if r.returncode != 0:
        msg = r.stderr.strip()
        if not msg:
            return "fail", "facegraph infer failed without a message", None
        if r.returncode == 3 or "cannot run as a CUDA graph" in msg:  # 3: valid but not supported
            return "unsupported", msg[-400:], None
        return "fail", "facegraph infer: " + msg[-400:], None
    mapping = json.load(open(os.path.join(out, "outputs.json")))
    return "ok", "", {name: np.load(os.path.join(out, f)) for name, f in mapping.items()}


def describe_graph(reports):
    captured = [c for c, r in sorted(reports.items()) if r[1]]
    last = reports[max(reports)] if reports else None
    plans = last[3] if last else 0
    if captured:
        return "graph replayed on %d of %d calls, %d plans" % (len(captured), len(reports), plans)
    return "never captured (%s), %d plans" % (last[4] if last else "?", plans)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gpu", action="store_true", help="also run on the cuda provider, graph off/on/auto")
    ap.add_argument("--facegraph", default=os.path.join(REPO, "build", "facegraph"))
    ap.add_argument("--driver", default=None, help="test_gpu_graph_replay (default: next to --facegraph)")
    ap.add_argument("--device", type=int, default=0)
    ap.add_argument("--gpu-providers", default="cuda", help="providers of the --gpu modes (e.g. cuda,cpu)")
    ap.add_argument("--out", default=None, help="working directory (default: a temporary one)")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    driver = args.driver or os.path.join(os.path.dirname(os.path.abspath(args.facegraph)), "test_gpu_graph_replay")
    for exe in (args.facegraph, driver):
        if not os.path.exists(exe):
            print("FAIL: %s not found (build first)" % exe)
            print("0 passed, 1 failed, 0 skipped")
            return 1
    names = [n for n in args.only.split(",") if n] or list(regression_models.MODELS)
    modes = [("cpu", "cpu", "off")]
    if args.gpu:
        gp = args.gpu_providers
        modes += [("cuda-graph-off", gp, "off"), ("cuda-graph-on", gp, "on"), ("cuda-graph-auto", gp, "auto")]
    cli_modes = {"cpu": ["--execution-providers", "cpu"],
                 "cuda-graph-on": ["--execution-providers"] + args.gpu_providers.split(",") + ["--cuda-graph", "on",
                                   "--execution-device-id", str(args.device)]}

    base = args.out or tempfile.mkdtemp(prefix="fg-graph-regression-")
    os.makedirs(base, exist_ok=True)
    passed = failed = skipped = 0
    results = []

    def record(model, test, status, detail):
        nonlocal passed, failed, skipped
        label = {"ok": "PASS", "fail": "FAIL", "unsupported": "SKIP", "skipped": "SKIP"}[status]
        if status == "unsupported":
            detail = "unsupported: " + detail
        print("%s %s [%s]%s" % (label, model, test, (": " + detail) if detail else ""), flush=True)
        results.append({"model": model, "test": test, "status": status, "detail": detail})
        if status == "ok":
            passed += 1
        elif status == "fail":
            failed += 1
        else:
            skipped += 1

    for name in names:
        work = os.path.join(base, name)
        os.makedirs(work, exist_ok=True)
        model_path = os.path.join(work, name + ".onnx")
        onnx.save(regression_models.MODELS[name][0](), model_path)
        calls = regression_models.calls(name)
        try:
            sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
            ref_names = [o.name for o in sess.get_outputs()]
            refs = [sess.run(None, feeds) for feeds in calls]
        except Exception as e:  # the reference itself failing is a broken test model
            record(name, "onnxruntime", "fail", "reference failed: %s" % str(e)[:300])
            continue
        sizes = ", ".join("x".join(str(d) for d in r[0].shape) for r in refs)
        print("--- %s: %d calls, first output shapes %s" % (name, len(calls), sizes), flush=True)
        calls_path = write_calls(calls, work)
        by_mode = {}
        for mode, providers, graph in modes:
            status, detail, outs, reports = run_driver(driver, model_path, calls_path, os.path.join(work, mode),
                                                       providers, graph, args.device)
            if status == "ok":
                problems = []
                for c, ref in enumerate(refs):
                    got = outs.get(c, [])
                    if len(got) != len(ref):
                        problems.append("call %d: %d outputs, onnxruntime %d" % (c, len(got), len(ref)))
                        continue
                    for k, (o, r) in enumerate(zip(got, ref)):
                        p = compare(o, r, "call %d output %s" % (c, ref_names[k]))
                        if p:
                            problems.append(p)
                if problems:
                    status, detail = "fail", "; ".join(problems[:3]) + (" (+%d more)" % (len(problems) - 3)
                                                                           if len(problems) > 3 else "")
                else:
                    by_mode[mode] = outs
                    detail = "%d calls match onnxruntime" % len(calls)
                    if providers != "cpu":
                        detail += "; " + describe_graph(reports)
                        last = reports[max(reports)] if reports else None
                        if name in GPU_SEGMENTS and (not last or last[0] != "cuda" or
                                                     "graph segments around" not in last[4]):
                            status, detail = "fail", "expected CUDA graph segments, the report says: %s" % (
                                "%s: %s" % (last[0], last[4]) if last else "nothing")
                        if graph == "on" and not any(r[1] for r in reports.values()):
                            status, detail = "fail", "--cuda-graph on but no call replayed a graph: " + detail
            if status == "skipped" and args.gpu:
                status, detail = "fail", "--gpu was given, but: " + detail
            if status == "unsupported" and providers != "cpu" and name in GPU_SEGMENTS:
                status, detail = "fail", "If / Loop must run on the GPU as graph segments, but: " + detail
            record(name, mode, status, detail)
            if mode in cli_modes and not detail.startswith("--gpu was given") and status != "skipped":
                cstatus, cdetail, couts = run_cli(args.facegraph, model_path, calls[0], work, cli_modes[mode])
                if cstatus == "unsupported" and mode != "cpu" and name in GPU_SEGMENTS:
                    cstatus, cdetail = "fail", "If / Loop must run on the GPU as graph segments, but: " + cdetail
                if cstatus == "ok":
                    problems = [p for p in (compare(couts[n], r, "output " + n) if n in couts else "output %s missing" % n
                                            for n, r in zip(ref_names, refs[0])) if p]
                    cstatus, cdetail = ("fail", "; ".join(problems[:3])) if problems else ("ok", "")
                record(name, mode + " cli", cstatus, cdetail)
        if "cuda-graph-off" in by_mode:
            for mode in ("cuda-graph-on", "cuda-graph-auto"):
                if mode not in by_mode:
                    continue
                diffs = []
                for c in range(len(calls)):
                    for k, (a, b) in enumerate(zip(by_mode["cuda-graph-off"][c], by_mode[mode][c])):
                        if a.shape != b.shape or a.tobytes() != b.tobytes():
                            diffs.append("call %d output %s" % (c, ref_names[k]))
                record(name, mode + " == graph off", "fail" if diffs else "ok",
                       ("not byte-identical at " + ", ".join(diffs[:4])) if diffs else "byte-identical on every call")

    print("graph regression: %d passed, %d failed, %d skipped" % (passed, failed, skipped))
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    if args.json:
        json.dump({"passed": passed, "failed": failed, "skipped": skipped, "results": results},
                  open(args.json, "w"), indent=1)
    if not args.out:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
