#!/usr/bin/env python3
"""Sibling convolutions merged into one (src/plan/merge_sibling_convs.c):
small detection-head models built here, run by `facegraph infer` with the
merge (default) and without it (FACEGRAPH_MERGE_SIBLINGS=0), and by ONNX
Runtime (CPU).

For every model:
  - facegraph's outputs, merged and not, match onnxruntime:
    max |ours - ref| <= 1e-5 * max |ref| + 1e-6
  - `facegraph inspect --json` reports the expected count of merged
    convolutions and the expected plan step counts without and with the merge
    (with the channels-last transposes of the slices left as they are:
    FACEGRAPH_MERGE_TRANSPOSES=0; tests/merge_transposes_test.py merges them)
Prints 'N passed, M failed'.

    python3 tests/merge_test.py [--facegraph build/facegraph] [--device cuda] [--only name,...]
"""
import os
import sys

import numpy as np
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fusion_harness as harness  # noqa: E402

RNG = np.random.default_rng(5)


def const(name, value):
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


build = harness.build_model
N = harness.node


def conv(name, x, c_in, c_out, k=3, stride=1, group=1, bias=True):
    """A Conv node named name reading x (output name) and its initializers."""
    pad = k // 2
    inits = [const(name + "_w", RNG.normal(size=(c_out, c_in // group, k, k)) / np.sqrt(c_in // group * k * k))]
    ins = [x, name + "_w"]
    if bias:
        inits.append(const(name + "_b", RNG.normal(size=c_out) * 0.1))
        ins.append(name + "_b")
    node = N("Conv", ins, [name], kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4, group=group)
    return node, inits


def head(parts, inputs, outputs, name):
    nodes, inits = [], []
    for n, i in parts:
        nodes += n if isinstance(n, list) else [n]
        inits += i
    return build(name, nodes, inputs, outputs, inits)


def to_nhwc(x, y):
    return N("Transpose", [x], [y], perm=[0, 2, 3, 1])


def models():
    """(name, model, merged convolutions, steps without the merge, steps with it)"""
    out = []

    # SCRFD's head at stride 32: class, box and landmark 3x3 convolutions (2, 8, 20 channels) on one 20x20 map
    # (1600-byte planes: slices start at multiples of 4 channels, so the class head is padded to 4)
    parts = []
    for c_name, c in (("cls", 2), ("box", 8), ("kps", 20)):
        n, i = conv(c_name, "x", 16, c)
        parts.append(([n, to_nhwc(c_name, c_name + "_t")], i))
    out.append(("scrfd_head", head(parts, [("x", [1, 16, 20, 20])], ["cls_t", "box_t", "kps_t"],
                                   "scrfd_head"), 2, 6, 4))

    # the same head as SCRFD writes it: the class scores through a sigmoid (fused into its conv), the boxes times
    # the stride (folded into theirs), the three convolutions first. They merge without the sigmoid, which then
    # runs on the class slice alone: one convolution and one sigmoid instead of three convolutions
    def scrfd_order(score, name):
        nodes, inits = [], []
        for c_name, c in (("cls", 2), ("box", 8), ("kps", 20)):
            n, i = conv(c_name, "x", 16, c)
            nodes.append(n)
            inits += i
            if c_name == "cls":
                nodes.append(N(score, ["cls"], ["cls_s"]))
            if c_name == "box":
                nodes.append(N("Mul", ["box", "stride"], ["box_s"]))
        nodes += [to_nhwc("cls_s", "cls_t"), to_nhwc("box_s", "box_t"), to_nhwc("kps", "kps_t")]
        return build(name, nodes, [("x", [1, 16, 20, 20])], ["cls_t", "box_t", "kps_t"],
                     inits + [const("stride", 32.0)])
    out.append(("scrfd_sigmoid", scrfd_order("Sigmoid", "scrfd_sigmoid"), 2, 6, 5))
    # an activation that has no op of its own here (LeakyRelu: alpha): the other two merge
    out.append(("leaky_sibling", scrfd_order("LeakyRelu", "leaky_sibling"), 1, 6, 5))
    # the class head's output is read before the next sibling's place, where the sigmoid would go: the other
    # two merge
    parts = []
    for c_name, c in (("cls", 2), ("box", 8), ("kps", 20)):
        n, i = conv(c_name, "x", 16, c)
        parts.append(([n] + ([N("Sigmoid", ["cls"], ["cls_s"]), to_nhwc("cls_s", "cls_t")] if c_name == "cls"
                             else [to_nhwc(c_name, c_name + "_t")]), i))
    out.append(("no_place", head(parts, [("x", [1, 16, 20, 20])], ["cls_t", "box_t", "kps_t"], "no_place"), 1, 6, 5))

    # YuNet's head: four 1x1 convolutions (1, 4, 1, 10 channels) each followed by a 3x3 depthwise one; the
    # class and objectness scores end in a sigmoid (fused into their depthwise step), so the depthwise steps
    # merge as two pairs: 4 -> 1 pointwise, 4 -> 2 depthwise
    parts = []
    for c_name, c, score in (("cls", 1, True), ("box", 4, False), ("obj", 1, True), ("kps", 10, False)):
        n1, i1 = conv(c_name + "_pw", "x", 8, c, k=1)
        n2, i2 = conv(c_name + "_dw", c_name + "_pw", c, c, group=c)
        nodes = [n1, n2, to_nhwc(c_name + "_dw", c_name + "_t")]
        if score:
            nodes.append(N("Sigmoid", [c_name + "_t"], [c_name + "_s"]))
        parts.append((nodes, i1 + i2))
    out.append(("yunet_head", head(parts, [("x", [1, 8, 20, 20])], ["cls_s", "box_t", "obj_s", "kps_t"],
                                   "yunet_head"), 5, 12, 7))
    # the same on a 10x10 map: 400-byte planes would need slices of 16 channels for 256-byte alignment, more
    # than twice the 16 channels the heads have, so nothing merges
    out.append(("unaligned_head", head(parts, [("x", [1, 8, 10, 10])], ["cls_s", "box_t", "obj_s", "kps_t"],
                                       "unaligned_head"), 0, 12, 12))

    # a sibling whose output is a model output stays on its own; the other two merge
    parts = []
    for c_name, c in (("a", 3), ("b", 5), ("c", 6)):
        n, i = conv(c_name, "x", 4, c)
        parts.append(([n] + ([] if c_name == "a" else [to_nhwc(c_name, c_name + "_t")]), i))
    out.append(("output_kept", head(parts, [("x", [1, 4, 8, 8])], ["a", "b_t", "c_t"], "output_kept"), 1, 5, 4))

    # batch 2: a channel slice is not contiguous, nothing merges
    parts = []
    for c_name, c in (("a", 3), ("b", 5)):
        n, i = conv(c_name, "x", 4, c)
        parts.append(([n, to_nhwc(c_name, c_name + "_t")], i))
    out.append(("batch2", head(parts, [("x", [2, 4, 8, 8])], ["a_t", "b_t"], "batch2"), 0, 4, 4))

    # different strides do not merge, nor does a sibling without an activation with two that have one; the two
    # alike (Relu both) do, without a bias
    n1, i1 = conv("s1", "x", 4, 6, bias=False)
    n2, i2 = conv("s2", "x", 4, 6, stride=2)
    n3, i3 = conv("r1", "x", 4, 3, bias=False)
    n4, i4 = conv("r2", "x", 4, 5)
    parts = [([n1, to_nhwc("s1", "s1_t")], i1), ([n2, to_nhwc("s2", "s2_t")], i2),
             ([n3, N("Relu", ["r1"], ["r1_a"]), to_nhwc("r1_a", "r1_t")], i3),
             ([n4, N("Relu", ["r2"], ["r2_a"]), to_nhwc("r2_a", "r2_t")], i4)]
    out.append(("mixed", head(parts, [("x", [1, 4, 12, 12])], ["s1_t", "s2_t", "r1_t", "r2_t"], "mixed"),
                1, 8, 7))
    return out


def check(name, model, merged, unmerged_steps, merged_steps, fg, work, device):
    # the channels-last transposes of the merged slices stay steps of their own here (merge_transposes_test.py)
    on = dict(os.environ, FACEGRAPH_MERGE_TRANSPOSES="0")
    off = dict(on, FACEGRAPH_MERGE_SIBLINGS="0")
    return harness.check_pass(name, model, fg, work, device, on, off, "merged_convs", merged, unmerged_steps,
                              merged_steps, "convolutions merged")


if __name__ == "__main__":
    sys.exit(harness.main(models, check))
