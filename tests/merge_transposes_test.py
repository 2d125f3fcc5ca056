#!/usr/bin/env python3
"""Channels-last transposes of channel slices merged into one step
(src/plan/merge_slice_transposes.c, the ChannelsLastSlices op): detection
heads built here and in tests/merge_test.py, run by `facegraph infer` with
the pass (default) and without it (FACEGRAPH_MERGE_TRANSPOSES=0), and by
ONNX Runtime (CPU).

For every model:
  - facegraph's outputs, with the pass and without, match onnxruntime:
    max |ours - ref| <= 1e-5 * max |ref| + 1e-6
  - `facegraph inspect --json` reports the expected count of merged
    transposes and the expected plan step counts without and with the pass
Prints 'N passed, M failed'.

    python3 tests/merge_transposes_test.py [--facegraph build/facegraph] [--device cuda] [--only name,...]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fusion_harness as harness  # noqa: E402
import merge_test  # noqa: E402

N = harness.node
conv, head = merge_test.conv, merge_test.head

# merged transposes, steps without the pass, steps with it, for merge_test's models
FROM_MERGE_TEST = {
    # one merged convolution, then its three slices channels-last in one step
    "scrfd_head": (3, 4, 2),
    # the same with the class slice's sigmoid, which the one step applies: SCRFD's heads
    "scrfd_sigmoid": (3, 5, 2),
    # the class convolution (LeakyRelu) stays apart, as does its transpose (not of a slice); box and landmarks merge
    "leaky_sibling": (2, 5, 4),
    "no_place": (2, 5, 4),
    # YuNet: the box and landmark slices of one merged depthwise output (the one-channel class and objectness
    # transposes are views, and their slices are of the other merged output)
    "yunet_head": (2, 7, 6),
    # nothing merged before it: the transposes read whole convolution outputs
    "unaligned_head": (0, 12, 12),
    "output_kept": (2, 4, 3),
    "batch2": (0, 4, 4),
    # two merged convolutions (the Relu pair) give two slices; the other two transposes read whole outputs
    "mixed": (2, 7, 6),
}


def models():
    """(name, model, merged transposes, steps without the pass, steps with it)"""
    out = [(name, model) + FROM_MERGE_TEST[name] for name, model, _, _, _ in merge_test.models()]

    def sliced(perms, acts, name, size=16):
        """Three convolutions (3, 5, 6 channels) on one map, merged; slice k goes through acts[k] (an op or None)
        and a Transpose with perms[k]."""
        parts = []
        for k, (c_name, c) in enumerate((("a", 3), ("b", 5), ("c", 6))):
            n, i = conv(c_name, "x", 4, c)
            nodes, y = [n], c_name
            if acts[k]:
                op, attrs = acts[k]
                nodes.append(N(op, [y], [y + "_act"], **attrs))
                y += "_act"
            nodes.append(N("Transpose", [y], [c_name + "_t"], perm=perms[k]))
            parts.append((nodes, i))
        return head(parts, [("x", [1, 4, size, size])], ["a_t", "b_t", "c_t"], name)

    nhwc, hw1c = [0, 2, 3, 1], [2, 3, 0, 1]
    # two layouts: a group per perm, the lone (2, 3, 0, 1) transpose stays (nothing to merge it with)
    out.append(("two_perms", sliced([nhwc, hw1c, nhwc], [None, None, None], "two_perms"), 2, 4, 3))
    # a transpose that is not channels-last (C, W, H) stays
    out.append(("not_channels_last", sliced([nhwc, [0, 1, 3, 2], nhwc], [None, None, None], "not_channels_last"),
                2, 4, 3))
    # the activation of one slice goes into the step (a sigmoid kept out of the merge by the others' Relu: the
    # merged pair's activation is theirs)
    out.append(("relu_pair_sigmoid", sliced([nhwc, nhwc, nhwc], [("Relu", {}), ("Relu", {}), ("Sigmoid", {})],
                                           "relu_pair_sigmoid"), 2, 5, 4))
    # a tanh on the last slice (its convolution's, which the merge takes out), a 32x32 map: one step
    out.append(("tanh_last", sliced([hw1c] * 3, [None, None, ("Tanh", {})], "tanh_last", size=32), 3, 5, 2))
    return out


def check(name, model, merged, unmerged_steps, merged_steps, fg, work, device):
    on = dict(os.environ)
    off = dict(os.environ, FACEGRAPH_MERGE_TRANSPOSES="0")
    return harness.check_pass(name, model, fg, work, device, on, off, "merged_transposes", merged, unmerged_steps,
                              merged_steps, "transposes merged")


if __name__ == "__main__":
    sys.exit(harness.main(models, check))
