#!/usr/bin/env python3
"""Depthwise 3x3 -> pointwise 1x1 fusion (src/plan/fuse_dwpw.c, one
FusedDepthwisePointwise step): small ONNX models built here, run by
`facegraph infer` and by ONNX Runtime (CPU).

For every model:
  - facegraph's outputs match onnxruntime: max |ours - ref| <= 1e-4 * max |ref| + 1e-6
  - the outputs with the fusion (FACEGRAPH_FUSE_DWPW=1) match the outputs without it
    (the default) within 1e-5 * max |ref| + 1e-7
  - `facegraph inspect --json` reports the expected plan step counts with and
    without the fusion (pairs that must fuse drop one step each; a depthwise
    output read twice or a model output, more than 512 channels, a 5x5 or a
    dilated depthwise, a strided 1x1 stay)
Prints 'N passed, M failed'.

    python3 tests/dwpw_test.py [--facegraph build/facegraph] [--device cuda] [--only name,...]
"""
import os
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fusion_harness as harness  # noqa: E402

F32 = TensorProto.FLOAT


class Builder:
    """Collects nodes and initializers of one model."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, stem):
        self.n += 1
        return "%s%d" % (stem, self.n)

    def const(self, value):
        name = self.name("c")
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def const_i64(self, value):
        name = self.name("c")
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.int64), name))
        return name

    def node(self, op, ins, **attrs):
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, ins, [out], **attrs))
        return out

    def conv(self, x, c_in, c_out, k, group=1, stride=1, pads=None, bias=True, dilation=1):
        w = self.rng.normal(size=(c_out, c_in // group, k, k)) * (1.0 / np.sqrt(c_in // group * k * k))
        ins = [x, self.const(w)]
        if bias:
            ins.append(self.const(self.rng.normal(size=c_out) * 0.1))
        if pads is None:
            pads = [(k // 2) * dilation] * 4
        return self.node("Conv", ins, kernel_shape=[k, k], group=group, strides=[stride, stride], pads=pads,
                         dilations=[dilation, dilation])

    def bn(self, x, c):
        r = self.rng
        return self.node("BatchNormalization", [x, self.const(r.uniform(0.5, 1.5, c)), self.const(r.normal(size=c) * 0.1),
                                                self.const(r.normal(size=c) * 0.1), self.const(r.uniform(0.5, 2, c))],
                         epsilon=1e-5)

    def act(self, x, kind):
        if kind is None:
            return x
        if kind == "relu":
            return self.node("Relu", [x])
        if kind == "relu6":
            return self.node("Clip", [x, self.const(0.0), self.const(6.0)])
        if kind == "leaky":
            return self.node("LeakyRelu", [x], alpha=0.1)
        if kind == "hardswish":
            return self.node("HardSwish", [x])
        if kind == "sigmoid":
            return self.node("Sigmoid", [x])
        raise ValueError(kind)

    def block(self, x, c_in, c_out, stride=1, bn=True, dw_act="relu", pw_act=None, pw_bn=False, pads=None,
              dw_bias=True, pw_bias=True, residual=None, k=3, dilation=1, pw_stride=1):
        """dw kxk (+BN) (+act) -> 1x1 (+BN) [+ residual] (+act); returns (depthwise output, block output)."""
        d = self.conv(x, c_in, c_in, k, group=c_in, stride=stride, pads=pads, bias=dw_bias and not bn,
                      dilation=dilation)
        if bn:
            d = self.bn(d, c_in)
        d = self.act(d, dw_act)
        y = self.conv(d, c_in, c_out, 1, stride=pw_stride, pads=[0, 0, 0, 0], bias=pw_bias)
        if pw_bn:
            y = self.bn(y, c_out)
        if residual is not None:
            y = self.node("Add", [y, residual])
        return d, self.act(y, pw_act)

    def model(self, name, inputs, outputs):
        graph = helper.make_graph(self.nodes, name, [helper.make_tensor_value_info(n, F32, s) for n, s in inputs],
                                  [helper.make_tensor_value_info(n, F32, None) for n in outputs], self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
        m.ir_version = 8
        return m


def models():
    """(name, model, expected steps without fusion, expected steps with fusion)"""
    out = []

    b = Builder(1)  # the basic MobileNet block: dw 3x3 s1 + BN + ReLU -> 1x1 + ReLU
    _, y = b.block("x", 8, 16, pw_act="relu")
    out.append(("s1_bn_relu", b.model("s1_bn_relu", [("x", [2, 8, 9, 11])], [y]), 2, 1))

    b = Builder(2)  # stride 2, odd sizes, 1x1 with BN and no activation
    _, y = b.block("x", 32, 64, stride=2, pw_bn=True)
    out.append(("s2_odd", b.model("s2_odd", [("x", [2, 32, 15, 13])], [y]), 2, 1))

    b = Builder(3)  # residual Add after the 1x1, then ReLU (input 5 of the fused step)
    _, y = b.block("x", 24, 24, residual="x", pw_act="relu")
    out.append(("residual", b.model("residual", [("x", [2, 24, 7, 9])], [y]), 2, 1))

    b = Builder(4)  # residual without activation, ReLU6 on the depthwise
    _, y = b.block("x", 40, 40, dw_act="relu6", residual="x")
    out.append(("residual_relu6", b.model("residual_relu6", [("x", [2, 40, 10, 10])], [y]), 2, 1))

    b = Builder(5)  # 256 -> 128, ReLU6 (Clip) on both
    _, y = b.block("x", 256, 128, dw_act="relu6", pw_act="relu6")
    out.append(("c256", b.model("c256", [("x", [2, 256, 7, 9])], [y]), 2, 1))

    b = Builder(6)  # 128 -> 512 (the limit), stride 2 on 17x17, LeakyReLU, a partial last output-channel tile
    _, y = b.block("x", 128, 512, stride=2, dw_act="leaky", pw_act="hardswish")
    out.append(("c512_s2", b.model("c512_s2", [("x", [2, 128, 17, 17])], [y]), 2, 1))

    b = Builder(7)  # 512 -> 40 (C_in at the limit: 64 KiB of shared memory on the GPU), sigmoid
    _, y = b.block("x", 512, 40, dw_act="relu", pw_act="sigmoid")
    out.append(("c512_in", b.model("c512_in", [("x", [1, 512, 5, 6])], [y]), 2, 1))

    b = Builder(8)  # facemesh's stride-2 blocks: pads [0, 0, 1, 1], no activation, no biases
    _, y = b.block("x", 16, 32, stride=2, bn=False, dw_act=None, pads=[0, 0, 1, 1], dw_bias=False, pw_bias=False)
    out.append(("asym_pads_nobias", b.model("asym_pads_nobias", [("x", [2, 16, 12, 12])], [y]), 2, 1))

    b = Builder(9)  # no padding at all, odd channel count, pixels not a multiple of 32
    _, y = b.block("x", 13, 21, bn=False, pads=[0, 0, 0, 0], pw_act="relu")
    out.append(("valid_odd", b.model("valid_odd", [("x", [2, 13, 9, 8])], [y]), 2, 1))

    b = Builder(10)  # two blocks in a row, the second with a residual: 4 steps -> 2
    _, h = b.block("x", 16, 32, stride=2, pw_act="relu")
    _, y = b.block(h, 32, 32, residual=h, pw_act="relu")
    out.append(("two_blocks", b.model("two_blocks", [("x", [2, 16, 21, 19])], [y]), 4, 2))

    b = Builder(11)  # a larger map (several pixel tiles per image, many blocks)
    _, y = b.block("x", 16, 24, pw_act="relu")
    out.append(("large_map", b.model("large_map", [("x", [2, 16, 67, 45])], [y]), 2, 1))

    b = Builder(12)  # 1x1 -> Reshape -> ReLU: the activation moves into the fused step after the fusion
    _, y = b.block("x", 16, 8, dw_act="relu")
    y = b.act(b.node("Reshape", [y, b.const_i64([2, 8, -1])]), "relu")
    out.append(("act_through_reshape", b.model("act_through_reshape", [("x", [2, 16, 9, 7])], [y]), 3, 2))

    # ---- pairs that must not fuse
    b = Builder(20)  # the depthwise output is also a model output
    d, y = b.block("x", 8, 8)
    out.append(("dw_is_output", b.model("dw_is_output", [("x", [2, 8, 9, 9])], [d, y]), 2, 2))

    b = Builder(21)  # the depthwise output is read by two 1x1 convolutions
    d, y1 = b.block("x", 8, 8)
    y2 = b.conv(d, 8, 4, 1, pads=[0, 0, 0, 0])
    out.append(("dw_read_twice", b.model("dw_read_twice", [("x", [2, 8, 9, 9])], [y1, y2]), 3, 3))

    b = Builder(22)  # more than 512 channels
    _, y = b.block("x", 640, 16)
    out.append(("c640", b.model("c640", [("x", [1, 640, 4, 4])], [y]), 2, 2))

    b = Builder(23)  # 5x5 depthwise
    _, y = b.block("x", 8, 8, k=5)
    out.append(("dw5x5", b.model("dw5x5", [("x", [2, 8, 9, 9])], [y]), 2, 2))

    b = Builder(24)  # dilated depthwise
    _, y = b.block("x", 8, 8, dilation=2)
    out.append(("dw_dilated", b.model("dw_dilated", [("x", [2, 8, 11, 11])], [y]), 2, 2))

    b = Builder(25)  # strided 1x1
    _, y = b.block("x", 8, 8, pw_stride=2)
    out.append(("pw_strided", b.model("pw_strided", [("x", [2, 8, 11, 11])], [y]), 2, 2))
    return out


def max_err(a, b):
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0


def check(name, model, unfused_steps, fused_steps, fg, work, device):
    on = dict(os.environ, FACEGRAPH_FUSE_DWPW="1")  # experimental, off by default
    off = dict(os.environ, FACEGRAPH_FUSE_DWPW="0")
    path, names, ref, got, base = harness.run_on_and_off(name, model, fg, work, device, on, off)
    problems = []
    for n in names:
        ours, r = got[n], ref[n]
        if ours.shape != r.shape:
            problems.append("%s: shape %s, onnxruntime %s" % (n, ours.shape, r.shape))
            continue
        scale = float(np.max(np.abs(r))) if r.size else 0.0
        err, tol = max_err(ours, r), 1e-4 * scale + 1e-6
        if not err <= tol:
            problems.append("%s: max |ours - onnxruntime| = %.3g > %.3g" % (n, err, tol))
        err, tol = max_err(ours, base[n]), 1e-5 * scale + 1e-7
        if not err <= tol:
            problems.append("%s: fused and unfused outputs differ by %.3g > %.3g" % (n, err, tol))
    step_problem, detail = harness.step_problem(fg, path, on, off, unfused_steps, fused_steps)
    return problems + ([step_problem] if step_problem else []), detail


if __name__ == "__main__":
    sys.exit(harness.main(models, check))
