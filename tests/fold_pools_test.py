#!/usr/bin/env python3
"""AveragePool -> 1x1 Conv folded into one k x k, stride-k convolution
(src/plan/fold_pool_into_conv.c): small models built here, run by
`facegraph infer` with the fold (default) and without it
(FACEGRAPH_FOLD_POOLS=0), and by ONNX Runtime (CPU).

For every model:
  - facegraph's outputs, folded and not, match onnxruntime:
    max |ours - ref| <= 1e-5 * max |ref| + 1e-6
  - `facegraph inspect --json` reports the expected count of folded pools
    and the expected plan step counts without and with the fold; the pools
    that must stay (partial windows, overlapping windows, padding, a second
    reader, a convolution that is not 1x1) stay
Prints 'N passed, M failed'.

    python3 tests/fold_pools_test.py [--facegraph build/facegraph] [--device cuda] [--only name,...]
"""
import os
import sys

import numpy as np
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fusion_harness as harness  # noqa: E402

RNG = np.random.default_rng(9)
N = harness.node


def const(name, value):
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def pool_conv(name, size=16, c_in=8, c_out=12, pool=None, k=1, bias=True, relu=False, shortcut=False,
              second_reader=False):
    """x [1, c_in, size, size] -> AveragePool(**pool) -> Conv(k x k, c_in -> c_out) [-> Relu]; with shortcut, plus
    a 3x3 stride-2 convolution of x (SCRFD's ResNet-D downsampling block); with second_reader, the pool is also an
    output."""
    pool = dict(kernel_shape=[2, 2], strides=[2, 2]) if pool is None else pool
    inits = [const("w", RNG.normal(size=(c_out, c_in, k, k)) / np.sqrt(c_in * k * k))]
    conv_ins = ["pooled", "w"]
    if bias:
        inits.append(const("b", RNG.normal(size=c_out) * 0.1))
        conv_ins.append("b")
    nodes = [N("AveragePool", ["x"], ["pooled"], **pool),
             N("Conv", conv_ins, ["y"], kernel_shape=[k, k], pads=[k // 2] * 4)]
    out = "y"
    if shortcut:
        inits.append(const("ws", RNG.normal(size=(c_out, c_in, 3, 3)) / np.sqrt(c_in * 9)))
        nodes += [N("Conv", ["x", "ws"], ["s"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
                  N("Add", ["s", "y"], ["sum"])]
        out = "sum"
    if relu:
        nodes.append(N("Relu", [out], ["act"]))
        out = "act"
    outputs = [out] + (["pooled"] if second_reader else [])
    return harness.build_model(name, nodes, [("x", [1, c_in, size, size])], outputs, inits)


def models():
    """(name, model, folded pools, steps without the fold, steps with it)"""
    out = []
    # SCRFD's shortcut: AveragePool 2x2 stride 2 (ceil_mode 1, exact here) -> 1x1 conv, added to a 3x3 stride-2
    # conv, then Relu: the pool goes, the 1x1 becomes 2x2 stride 2 (the Add and Relu fuse into a conv either way)
    out.append(("resnet_d", pool_conv("resnet_d", pool=dict(kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
                                      shortcut=True, relu=True), 1, 3, 2))
    # a 3x3 window of stride 3 on 12x12, no bias, a Relu fused into the new conv
    out.append(("window3", pool_conv("window3", size=12, pool=dict(kernel_shape=[3, 3], strides=[3, 3]),
                                     bias=False, relu=True), 1, 2, 1))
    # a 2x4 window of stride 2x4 on a 16x16 map
    out.append(("window2x4", pool_conv("window2x4", pool=dict(kernel_shape=[2, 4], strides=[2, 4])), 1, 2, 1))
    # ceil_mode on an odd map: the last window is partial (averaged over fewer values), so it stays
    out.append(("partial_window", pool_conv("partial_window", size=15,
                                            pool=dict(kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)), 0, 2, 2))
    # overlapping windows (3x3 stride 2) stay
    out.append(("overlapping", pool_conv("overlapping", pool=dict(kernel_shape=[3, 3], strides=[2, 2],
                                                                  pads=[1, 1, 1, 1])), 0, 2, 2))
    # padding with count_include_pad stays
    out.append(("padded", pool_conv("padded", size=14, pool=dict(kernel_shape=[2, 2], strides=[2, 2],
                                                                 pads=[1, 1, 1, 1], count_include_pad=1)), 0, 2, 2))
    # the pool is a model output too: it stays
    out.append(("second_reader", pool_conv("second_reader", second_reader=True), 0, 2, 2))
    # a 3x3 convolution after the pool stays
    out.append(("conv3x3_after", pool_conv("conv3x3_after", k=3), 0, 2, 2))
    return out


def check(name, model, folded, unfolded_steps, folded_steps, fg, work, device):
    on = dict(os.environ)
    off = dict(os.environ, FACEGRAPH_FOLD_POOLS="0")
    return harness.check_pass(name, model, fg, work, device, on, off, "folded_pools", folded, unfolded_steps,
                              folded_steps, "pools folded")


if __name__ == "__main__":
    sys.exit(harness.main(models, check))
