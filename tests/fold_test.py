#!/usr/bin/env python3
"""Steps folded into the convolution before them (src/plan/plan.c):
  - fold_into_conv: a BatchNormalization, or a Mul, Add or Sub (conv - c) by
    a constant that is a scalar or one value per output channel, becomes
    part of the conv's weights and bias;
  - fuse_conv_residual: Add(conv, r) becomes the conv's residual input, also
    where r is computed after the conv (a feature pyramid's lateral conv +
    Resize of the coarser level): the conv then runs in the Add's place;
  - fuse_activation_into_concat_inputs: an activation of a Concat of conv
    outputs that only the Concat reads (RetinaFace's SSH modules) runs in
    each conv.
Small models built here, run by `facegraph infer` and by ONNX Runtime (CPU).

For every model:
  - facegraph's outputs match onnxruntime: max |ours - ref| <= 1e-5 * max |ref| + 1e-6
  - `facegraph inspect --json` reports the expected plan steps and counts of
    folded batch norms, scales and residuals; the cases that must not fold (a
    constant along another axis, c - conv, an output read twice, a model
    output) keep their step
Prints 'N passed, M failed'.

    python3 tests/fold_test.py [--facegraph build/facegraph] [--device cuda] [--only name,...]
"""
import os
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fusion_harness as harness  # noqa: E402

F32 = TensorProto.FLOAT
RNG = np.random.default_rng(3)
C = 6


def const(name, value):
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def model(name, nodes, outputs, inits, x_shape=(1, 4, 9, 11), more_inputs=()):
    """x -> Conv(4 -> C, 3x3, 'conv') -> nodes; the conv's weights and bias included."""
    conv = helper.make_node("Conv", ["x", "w", "b"], ["conv"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    inits = [const("w", RNG.normal(size=(C, 4, 3, 3)) / 6.0), const("b", RNG.normal(size=C))] + list(inits)
    inputs = [("x", list(x_shape))] + list(more_inputs)
    graph = helper.make_graph([conv] + nodes, name, [helper.make_tensor_value_info(n, F32, s) for n, s in inputs],
                              [helper.make_tensor_value_info(n, F32, None) for n in outputs], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def N(op, ins, outs, **attrs):
    return helper.make_node(op, ins, outs, **attrs)


def models():
    """(name, model, plan steps, folded batch norms, folded scales, fused residuals)"""
    per_channel = RNG.uniform(0.5, 2.0, size=(1, C, 1, 1))
    bn = [const("scale", RNG.uniform(0.5, 2, size=C)), const("beta", RNG.normal(size=C)),
          const("mean", RNG.normal(size=C)), const("var", RNG.uniform(0.5, 2, size=C))]
    return [
        # SCRFD's box heads: conv * stride
        ("mul_scalar", model("mul_scalar", [N("Mul", ["conv", "s"], ["y"])], ["y"], [const("s", 8.0)]), 1, 0, 1, 0),
        ("mul_scalar_first", model("mul_scalar_first", [N("Mul", ["s", "conv"], ["y"])], ["y"], [const("s", 0.37)]),
         1, 0, 1, 0),
        ("mul_per_channel", model("mul_per_channel", [N("Mul", ["conv", "k"], ["y"])], ["y"],
                                  [const("k", per_channel)]), 1, 0, 1, 0),
        ("add_per_channel", model("add_per_channel", [N("Add", ["conv", "a"], ["y"])], ["y"],
                                  [const("a", RNG.normal(size=(C, 1, 1)))]), 1, 0, 1, 0),
        ("sub_scalar", model("sub_scalar", [N("Sub", ["conv", "a"], ["y"])], ["y"], [const("a", 0.25)]), 1, 0, 1, 0),
        # a chain: BN, then a scale, then a shift, then a Relu fused after them
        ("bn_mul_add_relu", model("bn_mul_add_relu", [
            N("BatchNormalization", ["conv", "scale", "beta", "mean", "var"], ["n"]),
            N("Mul", ["n", "k"], ["m"]), N("Add", ["m", "a"], ["a1"]), N("Relu", ["a1"], ["y"])], ["y"],
            bn + [const("k", per_channel), const("a", 0.5)]), 1, 1, 2, 0),
        # must not fold: c - conv; a constant along the width; a constant of the whole map; the conv's output
        # read twice; the conv's output a model output
        ("sub_reversed", model("sub_reversed", [N("Sub", ["a", "conv"], ["y"])], ["y"], [const("a", 0.25)]),
         2, 0, 0, 0),
        ("mul_along_width", model("mul_along_width", [N("Mul", ["conv", "k"], ["y"])], ["y"],
                                  [const("k", RNG.normal(size=11))]), 2, 0, 0, 0),
        ("mul_whole_map", model("mul_whole_map", [N("Mul", ["conv", "k"], ["y"])], ["y"],
                                [const("k", RNG.normal(size=(1, C, 9, 11)))]), 2, 0, 0, 0),
        ("read_twice", model("read_twice", [N("Mul", ["conv", "s"], ["y"]), N("Sigmoid", ["conv"], ["z"])],
                             ["y", "z"], [const("s", 2.0)]), 3, 0, 0, 0),
        ("conv_is_output", model("conv_is_output", [N("Mul", ["conv", "s"], ["y"])], ["conv", "y"],
                                 [const("s", 2.0)]), 2, 0, 0, 0),
        # a feature pyramid: Add(lateral conv, Resize(coarser level)) -> Relu, the Resize after the conv: the conv
        # moves to the Add's place and takes the Resize's output as its residual (and the Relu)
        ("pyramid_add", model("pyramid_add", [
            N("Resize", ["coarse", "", "up"], ["r"], mode="nearest"), N("Add", ["conv", "r"], ["a"]),
            N("Relu", ["a"], ["y"])], ["y"], [const("up", [1, 1, 2, 2])], x_shape=(1, 4, 8, 10),
            more_inputs=[("coarse", [1, C, 4, 5])]), 2, 0, 0, 1),
        ("pyramid_read_twice", model("pyramid_read_twice", [
            N("Resize", ["coarse", "", "up"], ["r"], mode="nearest"), N("Add", ["conv", "r"], ["y"]),
            N("Sigmoid", ["conv"], ["z"])], ["y", "z"], [const("up", [1, 1, 2, 2])], x_shape=(1, 4, 8, 10),
            more_inputs=[("coarse", [1, C, 4, 5])]), 4, 0, 0, 0),
        # SSH: Relu(Concat(conv 3x3, conv 5x5)) -> the Relu in both convs (a 6-channel 9x11 block does not start on
        # the 64-byte grid, so the Concat itself still runs); not when a conv's output is read elsewhere too
        ("ssh_relu", model("ssh_relu", [
            N("Conv", ["x", "w5", "b5"], ["conv5"], kernel_shape=[5, 5], pads=[2, 2, 2, 2]),
            N("Concat", ["conv", "conv5"], ["cat"], axis=1), N("Relu", ["cat"], ["y"])], ["y"],
            [const("w5", RNG.normal(size=(C, 4, 5, 5)) / 10.0), const("b5", RNG.normal(size=C))]), 3, 0, 0, 0),
        ("ssh_read_twice", model("ssh_read_twice", [
            N("Conv", ["x", "w5", "b5"], ["conv5"], kernel_shape=[5, 5], pads=[2, 2, 2, 2]),
            N("Concat", ["conv", "conv5"], ["cat"], axis=1), N("Relu", ["cat"], ["y"]),
            N("Sigmoid", ["conv5"], ["z"])], ["y", "z"],
            [const("w5", RNG.normal(size=(C, 4, 5, 5)) / 10.0), const("b5", RNG.normal(size=C))]), 5, 0, 0, 0),
    ]


def check(name, m, steps, folded_bn, folded_scale, residuals, fg, work, device):
    path = os.path.join(work, name + ".onnx")
    harness.onnx.save(m, path)
    feeds = harness.feeds_for(m)
    names, ref = harness.reference(path, feeds)
    got = harness.run_facegraph(fg, path, feeds, os.path.join(work, name), dict(os.environ), device)
    problems = harness.reference_problems(names, got, ref)
    plan = harness.plan_summary(fg, path, dict(os.environ))
    got_counts = (plan["steps"], plan["fused_batchnorm"], plan["fused_scale"], plan["fused_residual"])
    if got_counts != (steps, folded_bn, folded_scale, residuals):
        problems.append("plan: %d steps, %d batch norms, %d scales and %d residuals folded; expected %d, %d, %d, %d"
                        % (got_counts + (steps, folded_bn, folded_scale, residuals)))
    return problems, "%d steps, %d batch norms, %d scales and %d residuals folded" % got_counts


if __name__ == "__main__":
    sys.exit(harness.main(models, check))
