#!/usr/bin/env python3
"""Element-wise chain fusion (src/plan/fuse_elementwise.c), and a Pad of
zeros or a Transpose of size-1 axes planned as a view: small ONNX models built here, run by `facegraph
infer` and by ONNX Runtime (CPU).

For every model:
  - facegraph's outputs match onnxruntime: max |ours - ref| <= 1e-5 * max |ref| + 1e-6
  - the outputs with the fusion (default) are bit-identical to the outputs
    without it (FACEGRAPH_FUSE_ELEMENTWISE=0): the fused kernel does the
    stand-alone kernels' float math
  - `facegraph inspect --json` reports the expected plan step counts with and
    without the fusion (chains that must fuse drop to one step; an
    intermediate read twice or a model output stays)
Prints 'N passed, M failed'.

    python3 tests/fusion_test.py [--facegraph build/facegraph] [--device cuda] [--only name,...]
"""
import os
import sys

import numpy as np
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fusion_harness as harness  # noqa: E402



def const(name, value):
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


build = harness.build_model
N = harness.node


def models():
    """(name, model, expected steps without fusion, expected steps with fusion)"""
    rng = np.random.default_rng(7)
    out = []

    # GELU as nsfw_2/3 write it (Div -> Erf -> Add -> Mul(x) -> Mul(0.5)), large enough for threads
    out.append(("gelu", build("gelu", [
        N("Div", ["x", "sqrt2"], ["d"]), N("Erf", ["d"], ["e"]), N("Add", ["e", "one"], ["a"]),
        N("Mul", ["x", "a"], ["m"]), N("Mul", ["m", "half"], ["y"])],
        [("x", [1, 197, 768])], ["y"],
        [const("sqrt2", 1.4142135381698608), const("one", 1.0), const("half", 0.5)]), 5, 1))

    # bias Add -> GELU: the bias Add is read twice, both times by the chain, so it joins the chain
    out.append(("bias_gelu", build("bias_gelu", [
        N("Add", ["x", "bias"], ["h"]),
        N("Div", ["h", "sqrt2"], ["d"]), N("Erf", ["d"], ["e"]), N("Add", ["e", "one"], ["a"]),
        N("Mul", ["h", "a"], ["m"]), N("Mul", ["m", "half"], ["y"])],
        [("x", [1, 50, 32])], ["y"],
        [const("bias", rng.normal(size=32)), const("sqrt2", 1.4142135381698608), const("one", 1.0),
         const("half", 0.5)]), 6, 1))

    # QuickGELU as nsfw_3 writes it: bias Add -> Mul(1.702) -> Sigmoid -> Mul(h, sigmoid)
    out.append(("bias_quick_gelu", build("bias_quick_gelu", [
        N("Add", ["x", "bias"], ["h"]), N("Mul", ["h", "k"], ["m"]), N("Sigmoid", ["m"], ["s"]),
        N("Mul", ["h", "s"], ["y"])],
        [("x", [4, 24])], ["y"], [const("bias", rng.normal(size=24)), const("k", 1.702)]), 3, 1))

    # the head step's output is also a model output: it stays out of the chain
    out.append(("head_kept", build("head_kept", [
        N("Add", ["x", "bias"], ["h"]), N("Div", ["h", "two"], ["d"]), N("Erf", ["d"], ["e"]),
        N("Mul", ["h", "e"], ["y"])],
        [("x", [4, 24])], ["h", "y"], [const("bias", rng.normal(size=24)), const("two", 2.0)]), 4, 2))

    # per-channel modulation (x - mean) / std * g + b, constants [1,C,1,1] and [C,1,1], a non-constant scale
    c = 8
    out.append(("modulation", build("modulation", [
        N("Sub", ["x", "mean"], ["s"]), N("Div", ["s", "std"], ["d"]), N("Mul", ["d", "g"], ["m"]),
        N("Add", ["m", "b"], ["a"]), N("Mul", ["a", "scale"], ["y"])],
        [("x", [2, c, 5, 7]), ("scale", [1, c, 1, 1])], ["y"],
        [const("mean", rng.normal(size=(1, c, 1, 1))), const("std", rng.uniform(0.5, 2, size=(1, c, 1, 1))),
         const("g", rng.normal(size=(1, c, 1, 1))), const("b", rng.normal(size=(c, 1, 1)))]), 5, 1))

    # LayerNorm tail: per-row [.., 1] operand, bias [C] on the last axis, a tensor of the chain's shape
    out.append(("rows_and_bias", build("rows_and_bias", [
        N("Div", ["x", "rstd"], ["d"]), N("Mul", ["d", "gamma"], ["m"]), N("Add", ["m", "beta"], ["a"]),
        N("Add", ["a", "res"], ["y"])],
        [("x", [3, 10, 48]), ("rstd", [3, 10, 1]), ("res", [3, 10, 48])], ["y"],
        [const("gamma", rng.normal(size=48)), const("beta", rng.normal(size=48))]), 4, 1))

    # scalar Pow (x*x, x, powf paths), swapped Sub / Div / Max / Min, unary math; Div -> Tanh becomes a Div with
    # a fused activation first; Abs is read twice (Add, Sqrt) so it stays, and so does Sqrt (the chain takes
    # its output as a tensor operand)
    out.append(("pow_and_unary", build("pow_and_unary", [
        N("Abs", ["x"], ["a0"]), N("Add", ["a0", "c01"], ["a1"]), N("Pow", ["a1", "c15"], ["a2"]),
        N("Pow", ["a2", "c2"], ["a3"]), N("Pow", ["a3", "c1"], ["a4"]), N("Sub", ["c3", "a4"], ["a5"]),
        N("Max", ["a5", "cm3"], ["a6"]), N("Min", ["c5", "a6"], ["a7"]), N("Div", ["c2", "a7"], ["a8"]),
        N("Tanh", ["a8"], ["a9"]), N("Sigmoid", ["a9"], ["a10"]), N("Exp", ["a10"], ["a11"]),
        N("Log", ["a11"], ["a12"]), N("Neg", ["a12"], ["a13"]), N("Reciprocal", ["a13"], ["a14"]),
        N("Sqrt", ["a0"], ["s0"]), N("Mul", ["a14", "s0"], ["y"])],
        [("x", [4, 33, 17])], ["y"],
        [const("c01", 0.1), const("c15", 1.5), const("c2", 2.0), const("c1", 1.0), const("c3", 3.0),
         const("cm3", -3.0), const("c5", 5.0)]), 16, 3))

    # activations fused into their producer first (Mul -> LeakyRelu, Sub -> HardSwish, Mul -> Clip, Add -> Relu,
    # Add -> Sigmoid), then the chain: instructions with an activation, HardSigmoid, Floor, Ceil
    out.append(("activations", build("activations", [
        N("Mul", ["x", "c3"], ["a0"]), N("LeakyRelu", ["a0"], ["a1"], alpha=0.2),
        N("HardSigmoid", ["a1"], ["a2"], alpha=0.3, beta=0.4), N("Sub", ["a2", "c05"], ["a3"]),
        N("HardSwish", ["a3"], ["a4"]), N("Mul", ["a4", "c7"], ["a5"]), N("Clip", ["a5", "lo", "hi"], ["a6"]),
        N("Floor", ["a6"], ["a7"]), N("Add", ["a7", "x"], ["a8"]), N("Relu", ["a8"], ["a9"]),
        N("Ceil", ["a9"], ["a10"]), N("Add", ["a10", "x"], ["a11"]), N("Sigmoid", ["a11"], ["a12"]),
        N("Mul", ["a12", "x"], ["y"])],
        [("x", [2, 3, 11, 13])], ["y"],
        [const("c3", 3.0), const("c05", 0.5), const("c7", 7.0), const("lo", -2.5), const("hi", 4.5)]), 9, 1))

    # stand-alone activations (after unary ops nothing fuses them first), Clip bounds from inputs
    out.append(("unary_activations", build("unary_activations", [
        N("Neg", ["x"], ["a0"]), N("LeakyRelu", ["a0"], ["a1"], alpha=0.1), N("Erf", ["a1"], ["a2"]),
        N("HardSwish", ["a2"], ["a3"]), N("Tanh", ["a3"], ["a4"]), N("Clip", ["a4", "lo", "hi"], ["a5"]),
        N("Sigmoid", ["a5"], ["a6"]), N("Relu", ["a6"], ["a7"]), N("Sqrt", ["a7"], ["a8"]),
        N("HardSigmoid", ["a8"], ["y"])],
        [("x", [3, 7, 9])], ["y"], [const("lo", -0.3), const("hi", 0.6)]), 10, 1))

    # Clip before opset 11 (bounds as attributes), Clip with one bound
    out.append(("clip_attributes", build("clip_attributes", [
        N("Neg", ["x"], ["a0"]), N("Clip", ["a0"], ["a1"], min=-1.0, max=1.5), N("Exp", ["a1"], ["a2"]),
        N("Clip", ["a2"], ["y"], max=2.0)],
        [("x", [3, 7, 9])], ["y"], opset=10), 4, 1))

    # a chain that must not fuse: the intermediate is read twice
    out.append(("used_twice", build("used_twice", [
        N("Add", ["x", "one"], ["t"]), N("Mul", ["t", "two"], ["y1"]), N("Sub", ["t", "two"], ["y2"])],
        [("x", [2, 50])], ["y1", "y2"], [const("one", 1.0), const("two", 2.0)]), 3, 3))

    # a chain that must not fuse: the intermediate is a model output
    out.append(("output_inside", build("output_inside", [
        N("Add", ["x", "one"], ["t"]), N("Mul", ["t", "two"], ["y"])],
        [("x", [2, 50])], ["t", "y"], [const("one", 1.0), const("two", 2.0)]), 2, 2))

    # a value read twice splits chains; the second chain reads it as a tensor operand
    out.append(("split", build("split", [
        N("Add", ["x", "one"], ["a"]), N("Mul", ["a", "two"], ["b"]), N("Exp", ["b"], ["c"]),
        N("Add", ["b", "c"], ["y"])],
        [("x", [2, 3, 40])], ["y"], [const("one", 1.0), const("two", -0.5)]), 4, 2))

    # the chain value may not grow: Exp on [1,C,1,1], then broadcast against [N,C,H,W]
    out.append(("no_growth", build("no_growth", [
        N("Exp", ["p"], ["e"]), N("Add", ["e", "t"], ["a"]), N("Mul", ["a", "half"], ["y"])],
        [("p", [1, 4, 1, 1]), ("t", [2, 4, 3, 5])], ["y"], [const("half", 0.5)]), 3, 2))

    # 20 steps: more than one program holds (16)
    nodes = []
    prev = "x"
    for k in range(20):
        nodes.append(N("Mul" if k % 2 else "Add", [prev, "k%d" % k], ["v%d" % k]))
        prev = "v%d" % k
    out.append(("long", build("long", nodes, [("x", [5, 64])], [prev],
                              [const("k%d" % k, 1.0 + 0.01 * k) for k in range(20)]), 20, 2))

    # 10 different non-constant tensors: more than the 8 a fused step reads
    nodes = []
    prev = "x"
    for k in range(10):
        nodes.append(N("Add", [prev, "b%d" % k], ["v%d" % k]))
        prev = "v%d" % k
    out.append(("many_inputs", build("many_inputs", nodes, [("x", [6, 16])] + [("b%d" % k, [16]) for k in range(10)],
                                     [prev]), 10, 2))
    # a Pad of zeros is a view of its input (pfld_68 has two before its pooling): no kernel, same outputs,
    # also when the padded value is a model output next to the input it aliases; a real Pad still runs
    zeros = numpy_helper.from_array(np.zeros(8, dtype=np.int64), "zeros")
    ones = numpy_helper.from_array(np.array([0, 0, 1, 2, 0, 0, 2, 1], dtype=np.int64), "ones")
    out.append(("zero_pad_pool", build("zero_pad_pool", [
        N("Pad", ["x"], ["p"], mode="constant", pads=[0] * 8, value=0.0),
        N("AveragePool", ["p"], ["y"], kernel_shape=[2, 2], strides=[2, 2])],
        [("x", [1, 3, 8, 6])], ["y"], opset=10), 2, 2))
    out.append(("zero_pad_output", build("zero_pad_output", [
        N("Pad", ["x", "zeros"], ["p"]), N("Relu", ["p"], ["y"])],
        [("x", [2, 3, 4, 5])], ["p", "y"], [zeros], opset=13), 2, 2))
    out.append(("real_pad", build("real_pad", [
        N("Pad", ["x", "ones"], ["p"]), N("Relu", ["p"], ["y"])],
        [("x", [2, 3, 4, 5])], ["y"], [ones], opset=13), 2, 2))
    # a Transpose that moves only axes of size 1 (yunet's score heads, [1,1,H,W] -> [1,H,W,1]) is a view too;
    # one that reorders larger axes still runs
    out.append(("transpose_size1", build("transpose_size1", [
        N("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]), N("Sigmoid", ["t"], ["y"])],
        [("x", [1, 1, 6, 7])], ["t", "y"]), 2, 2))
    out.append(("transpose_real", build("transpose_real", [
        N("Transpose", ["x"], ["t"], perm=[1, 0, 3, 2]), N("Relu", ["t"], ["y"])],
        [("x", [2, 1, 3, 4])], ["y"]), 2, 2))
    return out


# view steps (no kernel, output = the input's bytes) the plan of these cases must have
VIEWS = {"zero_pad_pool": 1, "zero_pad_output": 1, "real_pad": 0, "transpose_size1": 1, "transpose_real": 0}


def check(name, model, unfused_steps, fused_steps, fg, work, device):
    on = dict(os.environ)
    off = dict(os.environ, FACEGRAPH_FUSE_ELEMENTWISE="0")
    path, names, ref, got, base = harness.run_on_and_off(name, model, fg, work, device, on, off, scale=2.0)
    problems = harness.reference_problems(names, got, ref)
    for n in names:
        ours = got[n]
        if ours.shape == base[n].shape and ours.tobytes() != base[n].tobytes():
            diff = float(np.nanmax(np.abs(ours.astype(np.float64) - base[n].astype(np.float64))))
            problems.append("%s: fused and unfused outputs differ (max %.3g)" % (n, diff))
    if name in VIEWS:
        views = harness.plan_summary(fg, path, on)["views"]
        if views != VIEWS[name]:
            problems.append("%d view steps, expected %d" % (views, VIEWS[name]))
    step_problem, detail = harness.step_problem(fg, path, on, off, unfused_steps, fused_steps)
    return problems + ([step_problem] if step_problem else []), detail


if __name__ == "__main__":
    sys.exit(harness.main(models, check))
