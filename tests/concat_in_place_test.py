#!/usr/bin/env python3
"""Concatenations and slices without copies (src/plan/concat_in_place.c):
small models built here, run by `facegraph infer` with the pass (default) and
without it (FACEGRAPH_CONCAT_IN_PLACE=0), and by ONNX Runtime (CPU).

For every model:
  - facegraph's outputs, with and without the pass, match onnxruntime:
    max |ours - ref| <= 1e-5 * max |ref| + 1e-6, and are bit-identical to
    each other (the same kernels compute them; only where they write moves)
  - `facegraph inspect --json` reports the expected count of Concat steps
    written in place and the expected plan steps that run a kernel (steps
    less views) without and with the pass; the cases that must stay (batch
    2, a model input or output among the inputs, blocks off the 64-byte
    grid, a value concatenated twice, a strided or non-contiguous Slice)
    keep their steps
Prints 'N passed, M failed'.

    python3 tests/concat_in_place_test.py [--facegraph build/facegraph] [--device cuda] [--only name,...]
"""
import os
import sys

import numpy as np
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fusion_harness as harness  # noqa: E402

RNG = np.random.default_rng(9)


def const(name, value, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def ints(name, values):
    return const(name, values, np.int64)


build = harness.build_model
N = harness.node


def conv(name, x, c_in, c_out, k=3):
    """A 3x3 (or 1x1) Conv node named name reading x, and its initializers."""
    w = const(name + "_w", RNG.normal(size=(c_out, c_in, k, k)) / np.sqrt(c_in * k * k))
    b = const(name + "_b", RNG.normal(size=c_out) * 0.1)
    return N("Conv", [x, name + "_w", name + "_b"], [name], kernel_shape=[k, k], pads=[k // 2] * 4), [w, b]


def chain(*parts):
    nodes, inits = [], []
    for n, i in parts:
        nodes.append(n)
        inits += i
    return nodes, inits


def c2f(name, split_op, hw=8, c=8, batch=1):
    """YOLOv8's C2f block: conv -> two channel halves (Split, or two Slices) -> two convs on the second half
    -> Concat of all four -> 1x1 conv."""
    nodes, inits = chain(conv("cv1", "x", 4, 2 * c, k=1))
    if split_op == "Split":
        nodes.append(N("Split", ["cv1", "halves"], ["y0", "y1"], axis=1))
        inits.append(ints("halves", [c, c]))
    else:
        nodes += [N("Slice", ["cv1", "s0", "e0", "ax"], ["y0"]), N("Slice", ["cv1", "s1", "e1", "ax"], ["y1"])]
        inits += [ints("s0", [0]), ints("e0", [c]), ints("s1", [c]), ints("e1", [2 * c]), ints("ax", [1])]
    n, i = chain(conv("m0", "y1", c, c), conv("m1", "m0", c, c))
    nodes += n + [N("Concat", ["y0", "y1", "m0", "m1"], ["cat"], axis=1)]
    n2, i2 = chain(conv("cv2", "cat", 4 * c, c, k=1))
    return build(name, nodes + n2, [("x", [batch, 4, hw, hw])], ["cv2"], inits + i + i2)


def pooled_heads(name):
    """pfld_68's tail: global average pools of two maps and a 1x1 conv, flattened and concatenated."""
    nodes, inits = chain(conv("a", "x", 4, 16), conv("b", "a", 16, 32), conv("c", "b", 32, 128, k=1))
    nodes += [N("GlobalAveragePool", ["a"], ["pa"]), N("GlobalAveragePool", ["b"], ["pb"]),
              N("GlobalAveragePool", ["c"], ["pc"]), N("Flatten", ["pa"], ["fa"]), N("Flatten", ["pb"], ["fb"]),
              N("Flatten", ["pc"], ["fc"]), N("Concat", ["fa", "fb", "fc"], ["cat"], axis=1),
              N("Gemm", ["cat", "g_w", "g_b"], ["y"], transB=1)]
    inits += [const("g_w", RNG.normal(size=(10, 176)) * 0.1), const("g_b", RNG.normal(size=10))]
    return build(name, nodes, [("x", [1, 4, 7, 7])], ["y"], inits)


def two_convs_cat(name, x_shape, extra_nodes=(), outputs=("y",), cat_inputs=("a", "b"), inputs=None, c=8):
    """x -> conv a -> conv b (not siblings, which would merge), Concat(cat_inputs) -> Relu."""
    nodes, inits = chain(conv("a", "x", x_shape[1], c), conv("b", "a", c, c))
    nodes += [N("Concat", list(cat_inputs), ["cat"], axis=1), N("Relu", ["cat"], ["y"])] + list(extra_nodes)
    return build(name, nodes, inputs or [("x", list(x_shape))], list(outputs), inits)


def models():
    """(name, model, concats in place, kernel steps without the pass, kernel steps with it)"""
    out = []
    # the Split becomes a view, the Concat goes: cv1 writes the first half of cat, m0 and m1 their quarters
    out.append(("c2f_split", c2f("c2f_split", "Split"), 1, 6, 4))
    out.append(("c2f_slices", c2f("c2f_slices", "Slice"), 1, 7, 4))
    # batch 2: a channel block is not contiguous; nothing changes
    out.append(("c2f_batch2", c2f("c2f_batch2", "Split", batch=2), 0, 6, 6))
    # [1, 16] + [1, 32] + [1, 128] floats: blocks at bytes 0, 64 and 192
    out.append(("pooled_heads", pooled_heads("pooled_heads"), 1, 8, 7))
    # two 8-channel 6x6 convs: blocks at 0 and 1152 bytes
    out.append(("two_convs", two_convs_cat("two_convs", [1, 3, 6, 6]), 1, 4, 3))
    # 3x3 planes of 8 channels are 288 bytes: the second block would start off the 64-byte grid
    out.append(("off_grid", two_convs_cat("off_grid", [1, 3, 3, 3]), 0, 4, 4))
    # a model input among the inputs; a conv output that is also a model output; one value twice
    out.append(("model_input", two_convs_cat("model_input", [1, 8, 4, 4], cat_inputs=("a", "x")), 0, 3, 3))
    out.append(("model_output", two_convs_cat("model_output", [1, 3, 6, 6], outputs=("y", "b")), 0, 4, 4))
    out.append(("twice", two_convs_cat("twice", [1, 3, 6, 6], cat_inputs=("a", "b", "a")), 0, 4, 4))
    # b in two Concats: the first takes it in place, the second copies it from there
    out.append(("two_concats", two_convs_cat("two_concats", [1, 3, 6, 6], extra_nodes=[
        N("Concat", ["b", "y"], ["cat2"], axis=1), N("Sigmoid", ["cat2"], ["z"])], outputs=("z",)), 1, 6, 5))
    # Concat(Concat(a, b), c): both in place
    nodes, inits = chain(conv("a", "x", 3, 8), conv("b", "a", 8, 8), conv("c", "b", 8, 16))
    nodes += [N("Concat", ["a", "b"], ["ab"], axis=1), N("Concat", ["ab", "c"], ["abc"], axis=1),
              N("Relu", ["abc"], ["y"])]
    out.append(("nested", build("nested", nodes, [("x", [1, 3, 6, 6])], ["y"], inits), 2, 6, 4))
    # Slices that stay: every other channel (step 2); a band of rows of a multi-channel map (not contiguous)
    nodes, inits = chain(conv("a", "x", 3, 8))
    nodes += [N("Slice", ["a", "s", "e", "ax", "st"], ["odd"]), N("Slice", ["a", "r0", "r1", "ax2"], ["rows"]),
              N("Relu", ["odd"], ["y1"]), N("Relu", ["rows"], ["y2"])]
    inits += [ints("s", [1]), ints("e", [8]), ints("ax", [1]), ints("st", [2]), ints("r0", [2]), ints("r1", [4]),
              ints("ax2", [2])]
    out.append(("slices_kept", build("slices_kept", nodes, [("x", [1, 3, 6, 8])], ["y1", "y2"], inits), 0, 5, 5))
    return out


def kernel_steps(fg, path, env):
    plan = harness.plan_summary(fg, path, env)
    return plan["steps"] - plan["views"], plan["concats_in_place"]


def check(name, model, in_place, steps_off, steps_on, fg, work, device):
    on = dict(os.environ)
    off = dict(os.environ, FACEGRAPH_CONCAT_IN_PLACE="0")
    path, names, ref, got, base = harness.run_on_and_off(name, model, fg, work, device, on, off)
    problems = harness.reference_problems(names, got, ref)
    for n in names:
        if got[n].tobytes() != base[n].tobytes():
            problems.append("%s: outputs with and without the pass differ" % n)
    (k_on, count), (k_off, _) = kernel_steps(fg, path, on), kernel_steps(fg, path, off)
    if count != in_place:
        problems.append("%d concatenations in place, expected %d" % (count, in_place))
    if (k_off, k_on) != (steps_off, steps_on):
        problems.append("kernel steps %d -> %d, expected %d -> %d" % (k_off, k_on, steps_off, steps_on))
    return problems, "%d -> %d kernel steps, %d in place" % (k_off, k_on, count)


if __name__ == "__main__":
    sys.exit(harness.main(models, check))
