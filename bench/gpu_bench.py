#!/usr/bin/env python3
"""GPU latency: facegraph (eager and CUDA graph) vs PyTorch (eager and CUDA graph).

For every shared model and every full-size stand-in (tools/make_standins.py),
batch 1, same inputs:
  facegraph   `facegraph infer --execution-providers cuda --repeat N` with
              --cuda-graph off (eager) and auto (graph); median wall time per
              fg_session_run, which includes copying the inputs in and the
              outputs out and waiting for the GPU; --report gives whether a
              graph was captured (or why not), kernels per run, arena bytes
  fp16        the same with --execution-precision fp16 when the CLI takes it
  PyTorch     bench/onnx_torch.py (the ONNX graph run with torch ops, constants
              folded): eager forward and whole-forward CUDA graph replay,
              CUDA events around each run, synchronised, median of N; inputs
              and outputs stay on the GPU (favours PyTorch); 'graph e2e' also
              copies inputs in / outputs out and waits, like facegraph's timing
TF32 is off on both sides (fp32 means fp32). Writes gpu_bench.md and
gpu_bench.json to --out (default $OUT, else build/bench-gpu), rewritten after
every model so a timeout keeps what finished.

Targets: faster than PyTorch graph replay on every model, >= 2x geometric
mean, yunet <= 0.20 ms, pfld_68 <= 0.15 ms, scrfd <= 0.50 ms.
"""
import argparse
import gc
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "gpu"))
sys.path.insert(0, HERE)
from gpu_inputs import default_shared, make_inputs  # noqa: E402

try:
    import torch
    import onnx_torch
    TORCH_ERROR = None
except Exception as e:  # the benchmark still measures facegraph
    torch = None
    TORCH_ERROR = "%s: %s" % (type(e).__name__, e)

# model-name substring -> facegraph graph-replay target in ms
LATENCY_TARGETS = {"yunet": 0.20, "pfld_68": 0.15, "scrfd": 0.50}
GEOMEAN_TARGET = 2.0


def run_facegraph(fg, model, inputs, out_dir, repeat, device, graph, precision, timeout):
    """(result dict, error string): median ms, report fields, output files."""
    shutil.rmtree(out_dir, ignore_errors=True)
    args = [fg, "infer", model, "--output-dir", out_dir, "--repeat", str(repeat), "--report",
            "--execution-providers", "cuda", "--execution-device-id", str(device), "--cuda-graph", graph]
    if precision != "fp32":
        args += ["--execution-precision", precision]
    for name, path in inputs:
        args += ["--input", "%s=%s" % (name, path)]
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "timed out after %d s" % timeout
    if r.returncode != 0:
        msg = (r.stderr.strip() or r.stdout.strip() or "exit %d" % r.returncode).splitlines()
        return None, one_line(msg[-1] if msg else "") if r.returncode > 0 else "CRASHED (signal %d)" % -r.returncode
    m = re.search(r"median run time: ([0-9.]+) ms", r.stdout)
    if not m:
        return None, "no 'median run time' in the output: " + r.stdout[-200:]
    res = {"ms": float(m.group(1))}
    dev = re.search(r"median device time: ([0-9.]+) ms", r.stdout)
    if dev:
        res["device_ms"] = float(dev.group(1))
    rep = re.search(r"^execution: (\{.*\})\s*$", r.stdout, re.M)
    if rep:
        try:
            res.update(json.loads(rep.group(1)))
        except ValueError:
            res["report_error"] = rep.group(1)[:200]
    if r.stderr.strip():
        res["warning"] = r.stderr.strip()[-300:]
    try:
        mapping = json.load(open(os.path.join(out_dir, "outputs.json")))
        res["outputs"] = {k: os.path.join(out_dir, v) for k, v in mapping.items()}
    except (OSError, ValueError):
        res["outputs"] = {}
    return res, None


def torch_times(path, model, feeds, runs, device):
    """PyTorch eager / graph / graph end-to-end medians and the outputs."""
    res = {}
    dev = "cuda:%d" % device if device >= 0 else "cpu"  # cpu: only to test this script without a GPU
    runner = onnx_torch.OnnxTorch(path, feeds, dev, model=model)
    inputs = [torch.from_numpy(np.ascontiguousarray(feeds[n])).to(dev) for n in runner.input_names]
    res["torch_steps"] = len(runner.steps)
    res["torch_eager_ms"] = onnx_torch.time_eager(runner, inputs, runs)
    try:
        graph, static_in, static_out = onnx_torch.capture_graph(runner, inputs)
        res["torch_graph_ms"] = onnx_torch.time_graph(graph, runs)
        res["torch_graph_e2e_ms"] = onnx_torch.time_graph_end_to_end(graph, static_in, static_out, inputs, runs)
        outs = [o.float().cpu().numpy() for o in static_out]
        del graph, static_in, static_out
    except Exception as e:
        res["torch_graph_error"] = one_line("%s: %s" % (type(e).__name__, e))
        with torch.inference_mode():
            outs = [o.float().cpu().numpy() for o in runner(*inputs)]
    names = runner.output_names
    del runner, inputs
    return res, dict(zip(names, outs))


def agreement(fg_outputs, torch_outputs):
    """max over outputs of max|fg - torch| / max|torch| (None if nothing to compare)."""
    worst = None
    for name, ref in torch_outputs.items():
        f = fg_outputs.get(name)
        if f is None or not os.path.exists(f) or ref.size == 0:
            continue
        ours = np.load(f).astype(np.float64)
        if ours.shape != ref.shape:
            return float("inf")
        err = float(np.max(np.abs(ours - ref))) / (float(np.max(np.abs(ref))) + 1e-12)
        worst = err if worst is None else max(worst, err)
    return worst


def one_line(text, limit=300):
    return " ".join(str(text).split())[:limit]


def fmt(v, digits=3):
    if v is None:
        return "-"
    if isinstance(v, float):
        return ("%%.%df" % digits) % v
    return str(v)


def target_for(name):
    for key, ms in LATENCY_TARGETS.items():
        if key in name:
            return ms
    return None


def summarise(rows):
    speedups = [r["speedup_vs_torch_graph"] for r in rows if r.get("speedup_vs_torch_graph")]
    geo = float(math.exp(sum(math.log(s) for s in speedups) / len(speedups))) if speedups else None
    slower = [r["model"] for r in rows if r.get("speedup_vs_torch_graph") and r["speedup_vs_torch_graph"] <= 1.0]
    missed = [r["model"] for r in rows if r.get("target_ms") and not (r.get("fg_best_ms") is not None and
                                                                       r["fg_best_ms"] <= r["target_ms"])]
    uncompared = [r["model"] for r in rows if not r.get("speedup_vs_torch_graph")]
    return {"geomean_speedup_vs_torch_graph": geo, "models_compared": len(speedups),
            "slower_than_torch_graph": slower, "latency_targets_missed": missed, "not_compared": uncompared,
            "targets_met": bool(speedups) and not slower and not uncompared and geo is not None and
            geo >= GEOMEAN_TARGET and not missed}


def write_reports(out, meta, rows):
    summary = summarise(rows)
    json.dump(dict(meta, models=rows, summary=summary), open(os.path.join(out, "gpu_bench.json"), "w"), indent=1)
    lines = ["# GPU benchmark: facegraph vs PyTorch", "",
             "Device: %s  " % meta.get("device", "?"),
             "facegraph: %s  " % meta.get("facegraph_device", "?"),
             "PyTorch: %s  " % meta.get("torch", "?"),
             "fp16: %s  " % meta.get("fp16", "measured"),
             "Batch 1, fp32, TF32 off; medians over %d runs. 'device' columns: GPU time of the kernels by CUDA "
             "events (facegraph: around the graph launch or the eager steps; PyTorch: around graph replay), "
             "copies excluded: the speedup compares these. 'e2e' columns: wall time per run including the input "
             "copy in, the output copy out and the sync (facegraph: `fg_session_run` on host tensors)." % meta["runs"],
             "",
             "| model | fg eager device ms | fg graph device ms | graph | kernels | arena MB | torch eager ms | "
             "torch graph ms | speedup vs torch graph | target ms | fg graph e2e ms | torch graph e2e ms | "
             "speedup e2e | max rel diff | fg fp16 device ms | fp16 rel diff |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        arena = r.get("arena_bytes")
        target = r.get("target_ms")
        met = "" if target is None else (" (met)" if r.get("fg_best_ms") is not None and r["fg_best_ms"] <= target
                                         else " (MISSED)")
        graph = "yes" if r.get("graph_captured") else ("no: " + one_line(r.get("graph_reason", ""), 60).replace("|", "/")
                                                       if "graph_captured" in r else "-")
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["model"], fmt(r.get("fg_eager_device_ms")), fmt(r.get("fg_graph_device_ms")), graph,
            fmt(r.get("kernels_per_run")), fmt(arena / 1e6, 1) if arena else "-", fmt(r.get("torch_eager_ms")),
            fmt(r.get("torch_graph_ms")), fmt(r.get("speedup_vs_torch_graph"), 2),
            (fmt(target, 2) + met) if target else "-", fmt(r.get("fg_graph_ms")), fmt(r.get("torch_graph_e2e_ms")),
            fmt(r.get("speedup_e2e"), 2), fmt(r.get("max_rel_diff"), 6) if r.get("max_rel_diff") is not None else "-",
            fmt(r.get("fg_fp16_device_ms")),
            fmt(r.get("fp16_max_rel_diff"), 4) if r.get("fp16_max_rel_diff") is not None else "-"))
    errors = [(r["model"], k, v) for r in rows for k, v in r.items() if k.endswith("error") and v]
    if errors:
        lines += ["", "Errors:", ""] + ["- %s %s: %s" % e for e in errors]
    lines += ["", "Summary: geometric-mean speedup vs PyTorch graph replay: %s (target >= %.1fx) over %d models; "
              "slower than PyTorch graph: %s; not compared (errors): %s; latency targets missed: %s; "
              "all targets met: %s" % (
                  fmt(summary["geomean_speedup_vs_torch_graph"], 2), GEOMEAN_TARGET, summary["models_compared"],
                  ", ".join(summary["slower_than_torch_graph"]) or "none", ", ".join(summary["not_compared"]) or "none",
                  ", ".join(summary["latency_targets_missed"]) or "none", "yes" if summary["targets_met"] else "NO"),
              "Latency targets: " + ", ".join("%s <= %.2f ms" % kv for kv in LATENCY_TARGETS.items())]
    open(os.path.join(out, "gpu_bench.md"), "w").write("\n".join(lines) + "\n")
    return summary


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--facegraph", default=os.path.join(REPO, "build-gpu", "facegraph"))
    ap.add_argument("--shared", default=default_shared(REPO))
    ap.add_argument("--gen", default=os.path.join(REPO, "build-gpu", "gen", "standins-full"),
                    help="directory with (or for) the full-size stand-ins")
    ap.add_argument("--no-standins", action="store_true")
    ap.add_argument("--out", default=os.environ.get("OUT") or os.path.join(REPO, "build", "bench-gpu"))
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--device", type=int, default=0)
    ap.add_argument("--only", default="", help="comma-separated substrings of model names")
    ap.add_argument("--budget", type=float, default=0, help="stop starting new models after this many seconds")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--torch-cpu", action="store_true", help=argparse.SUPPRESS)  # tests this script without a GPU
    ap.add_argument("--timeout", type=int, default=120, help="seconds per facegraph run")
    args = ap.parse_args()
    start = time.time()
    os.makedirs(args.out, exist_ok=True)

    models = []
    mdir = os.path.join(args.shared, "models")
    if os.path.isdir(mdir):
        models += sorted(os.path.join(mdir, f) for f in os.listdir(mdir) if f.endswith(".onnx"))
    else:
        print("warning: no shared models in %s (pass --shared DIR)" % mdir)
    if not args.no_standins:
        os.makedirs(args.gen, exist_ok=True)
        if not any(f.endswith(".onnx") for f in os.listdir(args.gen)):
            t0 = time.time()
            r = subprocess.run([sys.executable, os.path.join(REPO, "tools", "make_standins.py"), "--out", args.gen,
                                "--scale", "full"], capture_output=True, text=True)
            print("stand-ins generated in %.1f s%s" % (time.time() - t0, "" if r.returncode == 0 else
                                                       ": FAILED " + r.stderr[-300:]), flush=True)
        models += sorted(os.path.join(args.gen, f) for f in os.listdir(args.gen) if f.endswith(".onnx"))
    if args.only:
        models = [m for m in models if any(k in os.path.basename(m) for k in args.only.split(","))]

    use_torch = torch is not None and not args.no_torch and (torch.cuda.is_available() or args.torch_cpu)
    meta = {"runs": args.runs, "host": platform.node(), "python": platform.python_version(),
            "torch": ("%s (cuDNN %s)" % (torch.__version__, torch.backends.cudnn.version())) if torch else
            "unavailable: %s" % TORCH_ERROR,
            "device": torch.cuda.get_device_name(args.device) if use_torch and not args.torch_cpu else "?"}
    if torch is not None and not use_torch and not args.no_torch:
        meta["torch"] += " (no CUDA device visible to torch)"
    if use_torch and not args.torch_cpu:
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.cuda.set_device(args.device)

    rows = []
    fp16_state = None  # None: untested; else the reason fp16 is skipped ("" when it works)
    tmp = tempfile.mkdtemp(prefix="fg-gpu-bench-")
    print("%-34s %9s %9s %5s %8s %9s %9s %9s %8s" % ("model", "fg eager", "fg graph", "graph", "kernels",
                                                    "pt eager", "pt graph", "pt e2e", "speedup"), flush=True)
    for path in models:
        name = os.path.basename(path)
        if args.budget and time.time() - start > args.budget:
            rows.append({"model": name, "error": "skipped: the time budget (%.0f s) ran out" % args.budget})
            write_reports(args.out, meta, rows)
            continue
        row = {"model": name}
        target = target_for(name)
        if target:
            row["target_ms"] = target
        work = os.path.join(tmp, os.path.splitext(name)[0])
        os.makedirs(work, exist_ok=True)
        try:
            model = onnx.load(path)
            feeds = make_inputs(path, model, args.shared)
        except Exception as e:
            row["error"] = "loading: %s" % e
            rows.append(row)
            write_reports(args.out, meta, rows)
            continue
        inputs = []
        for k, (iname, value) in enumerate(feeds.items()):
            f = os.path.join(work, "in%d.npy" % k)
            np.save(f, value)
            inputs.append((iname, f))
        eager, err = run_facegraph(args.facegraph, path, inputs, os.path.join(work, "eager"), args.runs, args.device,
                                   "off", "fp32", args.timeout)
        if eager:
            row["fg_eager_ms"] = eager["ms"]
            if eager.get("device_ms"):
                row["fg_eager_device_ms"] = eager["device_ms"]
        else:
            row["fg_eager_error"] = err
        graph, err = run_facegraph(args.facegraph, path, inputs, os.path.join(work, "graph"), args.runs, args.device,
                                   "auto", "fp32", args.timeout)
        fg_outputs = {}
        if graph:
            row["fg_graph_ms"] = graph["ms"]
            if graph.get("device_ms"):
                row["fg_graph_device_ms"] = graph["device_ms"]
            fg_outputs = graph.get("outputs", {})
            for k in ("provider", "graph_captured", "graph_reason", "kernels_per_run", "arena_bytes", "device"):
                if k in graph:
                    row[k] = graph[k]
            if graph.get("device") and "facegraph_device" not in meta:
                meta["facegraph_device"] = graph["device"]
            if graph.get("provider") not in (None, "cuda"):
                row["fg_graph_error"] = "ran on the %s provider, not cuda" % graph.get("provider")
            if graph.get("warning"):
                row["fg_warning"] = graph["warning"]
        else:
            row["fg_graph_error"] = err
        if eager and not fg_outputs:
            fg_outputs = eager.get("outputs", {})
        # like for like: facegraph's kernels (CUDA events around the graph
        # launch, copies excluded) against PyTorch's graph replay (CUDA events)
        best = [v for v in (row.get("fg_eager_device_ms"), row.get("fg_graph_device_ms")) if v is not None]
        if not best:
            best = [v for v in (row.get("fg_eager_ms"), row.get("fg_graph_ms")) if v is not None]
        row["fg_best_ms"] = min(best) if best else None
        # fp16: only where the CLI takes it (probed once)
        half = None
        if fp16_state is None or fp16_state == "":
            half, err = run_facegraph(args.facegraph, path, inputs, os.path.join(work, "fp16"), args.runs,
                                      args.device, "auto", "fp16", args.timeout)
            if half:
                row["fg_fp16_ms"] = half["ms"]
                if half.get("device_ms"):
                    row["fg_fp16_device_ms"] = half["device_ms"]
                fp16_state = ""
            elif fp16_state is None and err and ("not supported" in err or "precision" in err):
                fp16_state = err
                meta["fp16"] = "skipped: " + err
            else:
                row["fg_fp16_error"] = err
        if use_torch:
            try:
                tres, touts = torch_times(path, model, feeds, args.runs, -1 if args.torch_cpu else args.device)
                row.update(tres)
                row["max_rel_diff"] = agreement(fg_outputs, touts)
                if half:
                    row["fp16_max_rel_diff"] = agreement(half.get("outputs", {}), touts)
            except Exception as e:
                row["torch_error"] = one_line("%s: %s" % (type(e).__name__, e))
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        elif not args.no_torch:
            row["torch_error"] = meta["torch"]
        peer = row.get("torch_graph_ms")
        if peer and row.get("fg_best_ms"):
            row["speedup_vs_torch_graph"] = round(peer / row["fg_best_ms"], 3)
        if row.get("torch_graph_e2e_ms") and row.get("fg_graph_ms"):
            row["speedup_e2e"] = round(row["torch_graph_e2e_ms"] / row["fg_graph_ms"], 3)
        rows.append(row)
        print("%-34s %9s %9s %5s %8s %9s %9s %9s %8s" % (
            name[:34], fmt(row.get("fg_eager_ms")), fmt(row.get("fg_graph_ms")),
            {True: "yes", False: "no"}.get(row.get("graph_captured"), "-"), fmt(row.get("kernels_per_run")),
            fmt(row.get("torch_eager_ms")), fmt(row.get("torch_graph_ms")), fmt(row.get("torch_graph_e2e_ms")),
            fmt(row.get("speedup_vs_torch_graph"), 2)), flush=True)
        for k, v in row.items():
            if k.endswith("error") and v:
                print("    %s: %s" % (k, v), flush=True)
        del model, feeds
        write_reports(args.out, meta, rows)
        shutil.rmtree(work, ignore_errors=True)
    summary = write_reports(args.out, meta, rows)
    shutil.rmtree(tmp, ignore_errors=True)
    print("geometric-mean speedup vs PyTorch graph replay: %s (target >= %.1f) over %d models" % (
        fmt(summary["geomean_speedup_vs_torch_graph"], 2), GEOMEAN_TARGET, summary["models_compared"]))
    print("slower than PyTorch graph replay: %s" % (", ".join(summary["slower_than_torch_graph"]) or "none"))
    print("latency targets (%s) missed: %s" % (", ".join("%s <= %.2f ms" % kv for kv in LATENCY_TARGETS.items()),
                                               ", ".join(summary["latency_targets_missed"]) or "none"))
    print("all targets met: %s" % ("yes" if summary["targets_met"] else "NO"))
    print("wrote %s and %s (%.0f s)" % (os.path.join(args.out, "gpu_bench.md"), os.path.join(args.out, "gpu_bench.json"),
                                        time.time() - start))
    broken = [r["model"] for r in rows if any(k.startswith("fg_") and k.endswith("error") and v for k, v in r.items())
              or r.get("error")]
    if broken:
        print("facegraph failed or was not measured on %d of %d models: %s" % (len(broken), len(rows), ", ".join(broken)))
    return 1 if broken or not rows else 0


if __name__ == "__main__":
    sys.exit(main())
