"""What the planner-fusion tests (fusion_test.py, dwpw_test.py) share: the
inputs, running `facegraph infer` and `inspect`, ONNX Runtime's reference
and the case loop. Each test keeps its own models and comparisons."""
import argparse
import json
import os
import subprocess
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

ort.set_default_logger_severity(3)
F32 = TensorProto.FLOAT

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_model(name, nodes, inputs, outputs, inits=(), opset=17):
    """A float32 model: inputs [(name, shape)], outputs by name (shapes left to inference)."""
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info(n, F32, s) for n, s in inputs],
                              [helper.make_tensor_value_info(n, F32, None) for n in outputs], list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def node(op, ins, outs, **attrs):
    return helper.make_node(op, ins, outs, **attrs)


def feeds_for(model, scale=1.0, seed=11):
    """Normal random float32 inputs (times scale) for every graph input."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for i in model.graph.input:
        shape = [d.dim_value for d in i.type.tensor_type.shape.dim]
        feeds[i.name] = rng.normal(size=shape).astype(np.float32) * np.float32(scale)
    return feeds


def run_facegraph(fg, path, feeds, outdir, env, device):
    """facegraph infer's outputs by name."""
    args = [fg, "infer", path, "--output-dir", outdir, "--execution-providers", device]
    for name, value in feeds.items():
        f = os.path.join(outdir + ".in", name + ".npy")
        os.makedirs(os.path.dirname(f), exist_ok=True)
        np.save(f, value)
        args += ["--input", "%s=%s" % (name, f)]
    r = subprocess.run(args, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError("facegraph infer failed: " + r.stderr.strip()[-600:])
    mapping = json.load(open(os.path.join(outdir, "outputs.json")))
    return {k: np.load(os.path.join(outdir, v)) for k, v in mapping.items()}


def plan_summary(fg, path, env):
    """The "plan" object of `facegraph inspect --json` (steps, views, fusions)."""
    r = subprocess.run([fg, "inspect", path, "--json"], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError("facegraph inspect failed: " + r.stderr.strip()[-600:])
    return json.loads(r.stdout)["plan"]


def plan_steps(fg, path, env):
    """The plan's step count from `facegraph inspect --json`."""
    return plan_summary(fg, path, env)["steps"]


def reference(path, feeds):
    """(output names, ONNX Runtime's outputs by name) on the CPU provider."""
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return names, dict(zip(names, sess.run(None, feeds)))


def reference_problems(names, outs, ref, rel=1e-5, label=""):
    """Where outs (ours, by name) differ from onnxruntime's ref: a shape, NaNs in other places, or
    max |ours - ref| over rel * max |ref| + 1e-6 (NaNs aside). label prefixes each problem."""
    problems = []
    for n in names:
        ours, r = outs[n], ref[n]
        where = (label + " " if label else "") + n
        if ours.shape != r.shape:
            problems.append("%s: shape %s, onnxruntime %s" % (where, ours.shape, r.shape))
            continue
        a, b = ours.astype(np.float64), r.astype(np.float64)
        if not np.array_equal(np.isnan(a), np.isnan(b)):
            problems.append("%s: NaNs differ from onnxruntime" % where)
            continue
        ok = ~np.isnan(b)
        err = float(np.max(np.abs(a[ok] - b[ok]))) if ok.any() else 0.0
        tol = rel * float(np.max(np.abs(b[ok]))) + 1e-6 if ok.any() else 0.0
        if not err <= tol:
            problems.append("%s: max |ours - onnxruntime| = %.3g > %.3g" % (where, err, tol))
    return problems


def run_on_and_off(name, model, fg, work, device, env_on, env_off, scale=1.0):
    """Saves the model; returns (path, names, reference, outputs with env_on, outputs with env_off)."""
    path = os.path.join(work, name + ".onnx")
    onnx.save(model, path)
    feeds = feeds_for(model, scale)
    names, ref = reference(path, feeds)
    got = run_facegraph(fg, path, feeds, os.path.join(work, name + "_on"), env_on, device)
    base = run_facegraph(fg, path, feeds, os.path.join(work, name + "_off"), env_off, device)
    return path, names, ref, got, base


def step_problem(fg, path, env_on, env_off, unfused_steps, fused_steps):
    """(problem or None, 'a -> b steps') from the plans with and without the fusion."""
    s_on, s_off = plan_steps(fg, path, env_on), plan_steps(fg, path, env_off)
    problem = None
    if (s_off, s_on) != (unfused_steps, fused_steps):
        problem = "plan steps %d unfused -> %d fused, expected %d -> %d" % (s_off, s_on, unfused_steps, fused_steps)
    return problem, "%d -> %d steps" % (s_off, s_on)


def check_pass(name, model, fg, work, device, env_on, env_off, count_key, count, steps_off, steps_on, what):
    """A plan pass's usual checks: outputs with it (env_on) and without it (env_off) both match onnxruntime,
    `inspect` counts `count` under plan[count_key] with it, and the plan has steps_off -> steps_on steps.
    Returns (problems, detail) for main()."""
    path, names, ref, got, base = run_on_and_off(name, model, fg, work, device, env_on, env_off)
    problems = reference_problems(names, got, ref, label="with the pass") + \
        reference_problems(names, base, ref, label="without it")
    found = plan_summary(fg, path, env_on)[count_key]
    if found != count:
        problems.append("%d %s, expected %d" % (found, what, count))
    problem, detail = step_problem(fg, path, env_on, env_off, steps_off, steps_on)
    return problems + ([problem] if problem else []), detail


def main(models, check):
    """Runs check(*case, fg, work, device) -> (problems, detail) for each case
    (name, model, expectations...) of models(); prints a line per case and
    'N passed, M failed'."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--facegraph", default=os.path.join(REPO, "build", "facegraph"))
    ap.add_argument("--device", default="cpu", help="execution provider for infer (cpu or cuda)")
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    passed = failed = 0
    with tempfile.TemporaryDirectory() as work:
        for case in models():
            name = case[0]
            if args.only and name not in args.only.split(","):
                continue
            try:
                problems, detail = check(*case, args.facegraph, work, args.device)
            except RuntimeError as e:
                problems, detail = [str(e)], ""
            if problems:
                failed += 1
                print("FAIL %-18s %s" % (name, "; ".join(problems)))
            else:
                passed += 1
                print("ok   %-18s %s" % (name, detail))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0
