#!/usr/bin/env python3
"""ONNX models for what broke ONNX Runtime's CUDA graphs (data-dependent shapes).

    python3 tools/regression_models.py --out DIR

Writes DIR/<name>.onnx for every model below. Each model comes with a list of
calls (feeds) that tests/graph_regression_test.py runs through ONE session, so
that a CUDA graph captured on one call is replayed on inputs that change the
data-dependent sizes (detections, non-zero count, k, shapes, branch, trips):

  detector_nms      conv features -> scores/boxes -> NonMaxSuppression -> Gather
                    of the kept boxes; the score threshold is an input, so zero
                    detections happen
  nonzero_gather    NonZero of (x > t) -> Gather / GatherND of the selected
  topk_dynamic_k    TopK with k from an input
  shape_reshape     Shape -> Gather -> Concat -> Reshape (dynamic N, H, W)
  if_branch         If whose condition comes from the data (both branches)
  loop_dynamic      Loop whose trip count is the number of positive inputs
  conv_dynamic_hw   small conv detector on changing input sizes (160..640)
"""

import argparse
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8


def _const(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def _model(graph):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="facegraph-regression")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def _weights(rng, *shape, scale=None):
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    scale = scale if scale is not None else 1.0 / np.sqrt(fan_in)
    return (rng.standard_normal(shape) * scale).astype(np.float32)


# ---------------------------------------------------------------- (a) NMS detector
NMS_SIZE = 32  # input H = W; 16x16 = 256 anchors after the stride-2 conv


def build_detector_nms():
    rng = np.random.default_rng(101)
    grid = (NMS_SIZE // 2)
    ys, xs = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
    centers = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)[None] * 2.0 + 1.0  # [1,256,2]
    inits = [
        _const("w1", _weights(rng, 8, 3, 3, 3)), _const("b1", _weights(rng, 8, scale=0.1)),
        _const("w2", _weights(rng, 5, 8, 1, 1)), _const("b2", _weights(rng, 5, scale=0.1)),
        _const("feat_shape", np.array([1, 5, grid * grid], np.int64)),
        _const("split_sizes", np.array([1, 2, 2], np.int64)),
        _const("centers", centers),
        _const("clip_lo", np.array(-2.0, np.float32)), _const("clip_hi", np.array(2.0, np.float32)),
        _const("box_scale", np.array(3.0, np.float32)),
        _const("max_out", np.array([64], np.int64)),
        _const("iou", np.array([0.45], np.float32)),
        _const("col2", np.array(2, np.int64)),
        _const("axes0", np.array([0], np.int64)),
    ]
    nodes = [
        helper.make_node("Conv", ["image", "w1", "b1"], ["c1"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], kernel_shape=[1, 1]),
        helper.make_node("Reshape", ["c2", "feat_shape"], ["feat"]),                       # [1,5,256]
        helper.make_node("Split", ["feat", "split_sizes"], ["logit", "offset_t", "size_t"], axis=1),
        helper.make_node("Sigmoid", ["logit"], ["scores"]),                                # [1,1,256]
        helper.make_node("Transpose", ["offset_t"], ["offset"], perm=[0, 2, 1]),           # [1,256,2]
        helper.make_node("Transpose", ["size_t"], ["size_raw"], perm=[0, 2, 1]),
        helper.make_node("Tanh", ["offset"], ["offset_tanh"]),
        helper.make_node("Add", ["centers", "offset_tanh"], ["center"]),
        helper.make_node("Clip", ["size_raw", "clip_lo", "clip_hi"], ["size_clip"]),
        helper.make_node("Exp", ["size_clip"], ["size_exp"]),
        helper.make_node("Mul", ["size_exp", "box_scale"], ["size"]),
        helper.make_node("Concat", ["center", "size"], ["boxes"], axis=2),                 # [1,256,4] cx,cy,w,h
        helper.make_node("NonMaxSuppression", ["boxes", "scores", "max_out", "iou", "score_threshold"], ["selected"],
                         center_point_box=1),                                              # [N,3]
        helper.make_node("Gather", ["selected", "col2"], ["keep"], axis=1),                # [N]
        helper.make_node("Squeeze", ["boxes", "axes0"], ["boxes2"]),                        # [256,4]
        helper.make_node("Squeeze", ["scores", "axes0"], ["scores2"]),                      # [1,256]
        helper.make_node("Gather", ["boxes2", "keep"], ["det_boxes"], axis=0),             # [N,4]
        helper.make_node("Gather", ["scores2", "keep"], ["det_scores"], axis=1),           # [1,N]
    ]
    graph = helper.make_graph(
        nodes, "detector_nms",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, NMS_SIZE, NMS_SIZE]),
         helper.make_tensor_value_info("score_threshold", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("selected", TensorProto.INT64, ["n", 3]),
         helper.make_tensor_value_info("det_boxes", TensorProto.FLOAT, ["n", 4]),
         helper.make_tensor_value_info("det_scores", TensorProto.FLOAT, [1, "n"])],
        inits)
    return _model(graph)


def calls_detector_nms(rng):
    thresholds = [0.45, 1.0, 0.3, 0.55, 0.0, 0.6, 0.5, 1.0, 0.4, 0.35, 0.2, 0.58]
    calls = []
    for t in thresholds:
        image = (rng.standard_normal((1, 3, NMS_SIZE, NMS_SIZE)) * rng.uniform(0.5, 3.0)).astype(np.float32)
        calls.append({"image": image, "score_threshold": np.array([t], np.float32)})
    return calls


# ---------------------------------------------------------------- (b) NonZero -> Gather
def build_nonzero_gather():
    inits = [_const("row", np.array(0, np.int64))]
    nodes = [
        helper.make_node("Greater", ["x", "threshold"], ["mask"]),
        helper.make_node("NonZero", ["mask"], ["nz"]),                       # [2,N]
        helper.make_node("Gather", ["nz", "row"], ["rows"], axis=0),         # [N]
        helper.make_node("Gather", ["x", "rows"], ["picked_rows"], axis=0),  # [N,16]
        helper.make_node("Transpose", ["nz"], ["nz_t"], perm=[1, 0]),        # [N,2]
        helper.make_node("GatherND", ["x", "nz_t"], ["values"]),             # [N]
    ]
    graph = helper.make_graph(
        nodes, "nonzero_gather",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [6, 16]),
         helper.make_tensor_value_info("threshold", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("nz", TensorProto.INT64, [2, "n"]),
         helper.make_tensor_value_info("picked_rows", TensorProto.FLOAT, ["n", 16]),
         helper.make_tensor_value_info("values", TensorProto.FLOAT, ["n"])],
        inits)
    return _model(graph)


def calls_nonzero_gather(rng):
    calls = []
    for t in [0.0, 5.0, 1.5, -5.0, 0.8, 3.0, 5.0, 0.0, 2.2, -0.5]:
        calls.append({"x": rng.standard_normal((6, 16)).astype(np.float32), "threshold": np.array(t, np.float32)})
    return calls


# ---------------------------------------------------------------- (c) TopK with k from an input
def build_topk_dynamic_k():
    inits = [_const("two", np.array(2.0, np.float32))]
    nodes = [
        helper.make_node("Mul", ["x", "two"], ["x2"]),
        helper.make_node("TopK", ["x2", "k"], ["values", "indices"], axis=-1, largest=1, sorted=1),
        helper.make_node("Gather", ["x", "indices"], ["gathered"], axis=1),  # [1,1,k]
    ]
    graph = helper.make_graph(
        nodes, "topk_dynamic_k",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 100]),
         helper.make_tensor_value_info("k", TensorProto.INT64, [1])],
        [helper.make_tensor_value_info("values", TensorProto.FLOAT, [1, "k"]),
         helper.make_tensor_value_info("indices", TensorProto.INT64, [1, "k"]),
         helper.make_tensor_value_info("gathered", TensorProto.FLOAT, [1, 1, "k"])],
        inits)
    return _model(graph)


def calls_topk_dynamic_k(rng):
    return [{"x": rng.standard_normal((1, 100)).astype(np.float32), "k": np.array([k], np.int64)}
            for k in [5, 1, 17, 100, 3, 5, 64, 2, 5, 33]]


# ---------------------------------------------------------------- (d) Shape -> Gather -> Concat -> Reshape
def build_shape_reshape():
    rng = np.random.default_rng(104)
    inits = [
        _const("w", _weights(rng, 4, 4, 3, 3)),
        _const("nc_index", np.array([0, 1], np.int64)),
        _const("minus_one", np.array([-1], np.int64)),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Shape", ["y"], ["shape"]),
        helper.make_node("Gather", ["shape", "nc_index"], ["nc"], axis=0),
        helper.make_node("Concat", ["nc", "minus_one"], ["new_shape"], axis=0),
        helper.make_node("Reshape", ["y", "new_shape"], ["flat"]),          # [N,4,H*W]
        helper.make_node("Softmax", ["flat"], ["prob"], axis=-1),
        helper.make_node("ReduceMax", ["prob"], ["peak"], axes=[2], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes, "shape_reshape",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4, "h", "w"])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["n", 4, "hw"]),
         helper.make_tensor_value_info("peak", TensorProto.FLOAT, ["n", 4])],
        inits)
    return _model(graph)


def calls_shape_reshape(rng):
    shapes = [(1, 4, 8, 8), (1, 4, 5, 7), (2, 4, 3, 3), (1, 4, 8, 8), (1, 4, 16, 2), (1, 4, 5, 7), (3, 4, 1, 1),
              (1, 4, 8, 8)]
    return [{"x": rng.standard_normal(s).astype(np.float32)} for s in shapes]


# ---------------------------------------------------------------- (e) If with a data-dependent condition
def build_if_branch():
    then_graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "then_two"], ["then_out"])], "then_branch", [],
        [helper.make_tensor_value_info("then_out", TensorProto.FLOAT, [8])],
        [_const("then_two", np.array(2.0, np.float32))])
    else_graph = helper.make_graph(
        [helper.make_node("Sub", ["x", "else_one"], ["else_sub"]),
         helper.make_node("Abs", ["else_sub"], ["else_out"])], "else_branch", [],
        [helper.make_tensor_value_info("else_out", TensorProto.FLOAT, [8])],
        [_const("else_one", np.array(1.0, np.float32))])
    inits = [_const("zero", np.array(0.0, np.float32))]
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["total"], keepdims=0),
        helper.make_node("Greater", ["total", "zero"], ["cond"]),
        helper.make_node("If", ["cond"], ["branch_out"], then_branch=then_graph, else_branch=else_graph),
        helper.make_node("Relu", ["branch_out"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "if_branch", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [8])], inits)
    return _model(graph)


def calls_if_branch(rng):
    calls = []
    for i in range(10):
        x = np.abs(rng.standard_normal(8)).astype(np.float32) + 0.1
        calls.append({"x": x if i % 2 == 0 else -x})
    return calls


# ---------------------------------------------------------------- (f) Loop with a data-dependent trip count
def build_loop_dynamic():
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Mul", ["v_in", "half"], ["v_half"]),
         helper.make_node("Cast", ["iteration"], ["iteration_f"], to=TensorProto.FLOAT),
         helper.make_node("Add", ["v_half", "iteration_f"], ["v_out"])],
        "loop_body",
        [helper.make_tensor_value_info("iteration", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_in", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [4])],
        [_const("half", np.array(0.5, np.float32))])
    inits = [_const("zero", np.array(0.0, np.float32)), _const("true", np.array(True))]
    nodes = [
        helper.make_node("Greater", ["x", "zero"], ["positive"]),
        helper.make_node("Cast", ["positive"], ["positive_i"], to=TensorProto.INT64),
        helper.make_node("ReduceSum", ["positive_i"], ["trips"], keepdims=0),
        helper.make_node("Loop", ["trips", "true", "x"], ["v_final"], body=body),
    ]
    graph = helper.make_graph(
        nodes, "loop_dynamic", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("v_final", TensorProto.FLOAT, [4]),
         helper.make_tensor_value_info("trips", TensorProto.INT64, [])], inits)
    return _model(graph)


def calls_loop_dynamic(rng):
    calls = []
    for positives in [2, 0, 4, 1, 3, 0, 2, 4]:
        x = np.abs(rng.standard_normal(4)).astype(np.float32) + 0.1
        x[positives:] *= -1.0
        calls.append({"x": rng.permutation(x).astype(np.float32)})
    return calls


# ---------------------------------------------------------------- (g) conv detector with dynamic H, W
def build_conv_dynamic_hw():
    rng = np.random.default_rng(107)
    inits = [
        _const("w1", _weights(rng, 8, 3, 3, 3)), _const("b1", _weights(rng, 8, scale=0.1)),
        _const("w2", _weights(rng, 16, 8, 3, 3)), _const("b2", _weights(rng, 16, scale=0.1)),
        _const("w3", _weights(rng, 16, 16, 3, 3)), _const("b3", _weights(rng, 16, scale=0.1)),
        _const("wl", _weights(rng, 16, 8, 1, 1)),
        _const("ws", _weights(rng, 1, 16, 1, 1)), _const("bs", _weights(rng, 1, scale=0.1)),
        _const("wb", _weights(rng, 4, 16, 1, 1)), _const("bb", _weights(rng, 4, scale=0.1)),
        _const("scales", np.array([1.0, 1.0, 2.0, 2.0], np.float32)),
        _const("box_shape", np.array([1, -1, 4], np.int64)),
        _const("score_shape", np.array([1, -1], np.int64)),
        _const("slope", np.array([0.1], np.float32)),
    ]
    nodes = [
        helper.make_node("Conv", ["image", "w1", "b1"], ["c1"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),                                                   # H/2
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("LeakyRelu", ["c2"], ["r2"], alpha=0.1),                                   # H/4
        helper.make_node("Conv", ["r2", "w3", "b3"], ["c3"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("PRelu", ["c3", "slope"], ["r3"]),                                         # H/8
        helper.make_node("Resize", ["r3", "", "scales"], ["up"], mode="nearest"),                  # H/4
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),           # H/4, 8 ch
        helper.make_node("Conv", ["p1", "wl"], ["lat"], kernel_shape=[1, 1]),
        helper.make_node("Add", ["up", "lat"], ["fused"]),
        helper.make_node("Conv", ["fused", "ws", "bs"], ["score_map"], kernel_shape=[1, 1]),
        helper.make_node("Sigmoid", ["score_map"], ["score_sig"]),
        helper.make_node("Reshape", ["score_sig", "score_shape"], ["scores"]),
        helper.make_node("Conv", ["fused", "wb", "bb"], ["box_map"], kernel_shape=[1, 1]),
        helper.make_node("Transpose", ["box_map"], ["box_nhwc"], perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", ["box_nhwc", "box_shape"], ["boxes"]),
    ]
    graph = helper.make_graph(
        nodes, "conv_dynamic_hw",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, "height", "width"])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, "anchors"]),
         helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, "anchors", 4])],
        inits)
    return _model(graph)


def calls_conv_dynamic_hw(rng):
    # each size comes back: a plan (and its graph, captured on its third call) is kept per input shape,
    # and replayed on new data
    sizes = [(160, 160), (320, 320), (640, 640), (160, 160), (480, 640), (320, 320), (640, 480), (160, 160),
             (320, 320), (160, 160), (640, 640), (320, 320), (160, 160)]
    return [{"image": rng.uniform(-1.0, 1.0, (1, 3, h, w)).astype(np.float32)} for h, w in sizes]


# name: (builder, calls(rng) -> list of feeds)
MODELS = {
    "detector_nms": (build_detector_nms, calls_detector_nms),
    "nonzero_gather": (build_nonzero_gather, calls_nonzero_gather),
    "topk_dynamic_k": (build_topk_dynamic_k, calls_topk_dynamic_k),
    "shape_reshape": (build_shape_reshape, calls_shape_reshape),
    "if_branch": (build_if_branch, calls_if_branch),
    "loop_dynamic": (build_loop_dynamic, calls_loop_dynamic),
    "conv_dynamic_hw": (build_conv_dynamic_hw, calls_conv_dynamic_hw),
}


def calls(name, seed=2024):
    """The feeds for `name`'s calls, seeded (same on every machine)."""
    return MODELS[name][1](np.random.default_rng(seed))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="directory for the .onnx files")
    ap.add_argument("--only", default="", help="comma-separated model names (default: all)")
    args = ap.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        ap.error("unknown model(s): %s (known: %s)" % (", ".join(unknown), ", ".join(MODELS)))
    os.makedirs(args.out, exist_ok=True)
    for name in names:
        path = os.path.join(args.out, name + ".onnx")
        onnx.save(MODELS[name][0](), path)
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
