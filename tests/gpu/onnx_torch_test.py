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
from gpu_inputs import default_shared, make_inputs  # noqa: E402


def op_models():
    """Single-node models for ops the face models use rarely (or differently)."""
    from onnx import TensorProto as T, helper as h, numpy_helper as nh
    rng = np.random.default_rng(5)
    x4 = rng.standard_normal((1, 3, 5, 6)).astype(np.float32)

    def model(name, nodes, inputs, outputs, inits=(), opset=17):
        g = h.make_graph(nodes, name, [h.make_tensor_value_info(n, T.FLOAT, a.shape) for n, a in inputs],
                         [h.make_tensor_value_info(o, T.FLOAT, None) for o in outputs],
                         [nh.from_array(np.asarray(v), k) for k, v in inits])
        m = h.make_model(g, opset_imports=[h.make_opsetid("", opset)])
        m.ir_version = 8
        return name, m, dict(inputs)

    out = []
    for coord in ["half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel"]:
        for mode, nmode in [("nearest", "round_prefer_floor"), ("nearest", "floor"), ("nearest", "round_prefer_ceil"),
                            ("linear", "floor")]:
            for label, extra in [("scales", [("scales", np.array([1, 1, 2, 1.5], np.float32))]),
                                 ("sizes", [("sizes", np.array([1, 3, 7, 13], np.int64))])]:
                ins = ["x", "", "scales", ""] if label == "scales" else ["x", "", "", "sizes"]
                out.append(model("resize_%s_%s_%s_%s" % (mode, nmode, coord, label),
                                 [h.make_node("Resize", ins, ["y"], mode=mode, nearest_mode=nmode,
                                              coordinate_transformation_mode=coord)],
                                 [("x", x4)], ["y"], extra))
    out.append(model("upsample9", [h.make_node("Upsample", ["x", "s"], ["y"], mode="nearest")], [("x", x4)], ["y"],
                     [("s", np.array([1, 1, 2, 2], np.float32))], opset=9))
    for mode in ["constant", "reflect", "edge"]:
        out.append(model("pad_" + mode, [h.make_node("Pad", ["x", "p", "v"], ["y"], mode=mode)], [("x", x4)], ["y"],
                         [("p", np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64)), ("v", np.array(0.5, np.float32))]))
    out.append(model("slice_negstep", [h.make_node("Slice", ["x", "s", "e", "a", "t"], ["y"])], [("x", x4)], ["y"],
                     [("s", np.array([-1, 4], np.int64)), ("e", np.array([-100, 0], np.int64)),
                      ("a", np.array([3, 2], np.int64)), ("t", np.array([-2, -1], np.int64))]))
    out.append(model("convtranspose", [h.make_node("ConvTranspose", ["x", "w", "b"], ["y"], strides=[2, 2],
                                                   pads=[1, 0, 0, 1], output_padding=[1, 1])],
                     [("x", x4)], ["y"], [("w", rng.standard_normal((3, 4, 3, 3)).astype(np.float32)),
                                          ("b", rng.standard_normal(4).astype(np.float32))]))
    out.append(model("instancenorm", [h.make_node("InstanceNormalization", ["x", "s", "b"], ["y"], epsilon=1e-3)],
                     [("x", x4)], ["y"], [("s", rng.standard_normal(3).astype(np.float32)),
                                          ("b", rng.standard_normal(3).astype(np.float32))]))
    out.append(model("misc", [h.make_node("HardSigmoid", ["x"], ["a"], alpha=0.3, beta=0.4),
                              h.make_node("HardSwish", ["x"], ["b"]),
                              h.make_node("Tile", ["x", "r"], ["c"]),
                              h.make_node("Equal", ["x", "x"], ["e"]),
                              h.make_node("Where", ["e", "a", "b"], ["d"]),
                              h.make_node("Expand", ["x", "es"], ["f"]),
                              h.make_node("GlobalAveragePool", ["x"], ["g"]),
                              h.make_node("AveragePool", ["x"], ["k"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                                          count_include_pad=0, ceil_mode=1, strides=[2, 2]),
                              h.make_node("MaxPool", ["x"], ["m"], kernel_shape=[3, 2], pads=[1, 0, 1, 1], strides=[2, 2]),
                              h.make_node("Split", ["x"], ["s1", "s2"], axis=3, num_outputs=2),
                              h.make_node("Softmax", ["x"], ["sm"], axis=1)],
                     [("x", x4)], ["a", "b", "c", "d", "f", "g", "k", "m", "s1", "s2", "sm"],
                     [("r", np.array([1, 2, 1, 2], np.int64)), ("es", np.array([2, 1, 1, 1], np.int64))], opset=18))
    out.append(model("softmax_opset11", [h.make_node("Softmax", ["x"], ["y"], axis=1)], [("x", x4)], ["y"], opset=11))
    return out


def check_ops(device):
    passed = failed = 0
    for name, model, feeds in op_models():
        try:
            ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
            runner = onnx_torch.OnnxTorch(None, feeds, device, model=model)
            with torch.inference_mode():
                ours = [o.cpu().numpy() for o in runner(*[torch.from_numpy(feeds[n]).to(device)
                                                           for n in runner.input_names])]
            bad = [i for i, (o, r) in enumerate(zip(ours, ref))
                   if o.shape != r.shape or not np.allclose(o.astype(np.float64), r.astype(np.float64), 1e-5, 1e-5)]
            detail = ", ".join("output %d: %s vs %s" % (i, ours[i].shape, ref[i].shape) for i in bad)
        except Exception as e:
            bad, detail = [0], "%s: %s" % (type(e).__name__, str(e)[:300])
        if bad:
            print("FAIL op %s: %s" % (name, detail), flush=True)
        passed += not bad
        failed += bool(bad)
    print("op models: %d passed, %d failed" % (passed, failed))
    return passed, failed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=default_shared(REPO))
    ap.add_argument("--gen", default=None, help="directory with (or for) the small stand-ins")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--only", default="")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--no-ops", action="store_true", help="skip the single-op models")
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
    torch.backends.cudnn.allow_tf32 = False
    passed, failed = check_ops(args.device) if not args.no_ops else (0, 0)
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
