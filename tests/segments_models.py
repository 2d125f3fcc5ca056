#!/usr/bin/env python3
"""Models for tests/test_segments.c (graph segments around If / Loop).

    python3 tests/segments_models.py --out DIR

Writes DIR/<name>.onnx: the regression models if_branch and loop_dynamic
(tools/regression_models.py) and:

  nested_loop_if    a Loop whose body holds an If; the body and a branch read
                    values of the enclosing graphs; a scan output
  shape_across_if   a value and a Shape -> Gather -> Concat chain computed
                    before an If and used after it (a Reshape's target that a
                    later piece must still fold to a constant)

The inputs are float32; test_segments fills them with values whose sign
alternates from call to call, so both branches and several trip counts run.
"""
import argparse
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tools"))
import regression_models  # noqa: E402


def _const(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def _model(graph):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="facegraph-test")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def build_nested_loop_if():
    then_graph = helper.make_graph(
        [helper.make_node("Mul", ["vx", "limit"], ["then_out"])], "then_branch", [],
        [helper.make_tensor_value_info("then_out", TensorProto.FLOAT, [4])])
    else_graph = helper.make_graph(
        [helper.make_node("Add", ["vx", "x"], ["else_sum"]),
         helper.make_node("Abs", ["else_sum"], ["else_out"])], "else_branch", [],
        [helper.make_tensor_value_info("else_out", TensorProto.FLOAT, [4])])
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Add", ["v_in", "x"], ["vx"]),
         helper.make_node("ReduceMax", ["vx"], ["peak"], keepdims=0),
         helper.make_node("Greater", ["peak", "limit"], ["big"]),
         helper.make_node("If", ["big"], ["v_mid"], then_branch=then_graph, else_branch=else_graph),
         helper.make_node("Cast", ["iteration"], ["iteration_f"], to=TensorProto.FLOAT),
         helper.make_node("Sub", ["v_mid", "iteration_f"], ["v_out"]),
         helper.make_node("ReduceSum", ["v_out"], ["scan_sum"], keepdims=1)],
        "loop_body",
        [helper.make_tensor_value_info("iteration", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_in", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [4]),
         helper.make_tensor_value_info("scan_sum", TensorProto.FLOAT, [1])],
        [_const("limit", np.array(1.5, np.float32))])
    inits = [_const("zero", np.array(0.0, np.float32)), _const("half", np.array(0.5, np.float32)),
             _const("three", np.array(3, np.int64))]
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["total"], keepdims=0),
        helper.make_node("Greater", ["total", "zero"], ["positive"]),
        helper.make_node("Cast", ["positive"], ["positive_i"], to=TensorProto.INT64),
        helper.make_node("Add", ["positive_i", "three"], ["trips"]),
        helper.make_node("Loop", ["trips", "", "x"], ["v_final", "sums"], body=body),
        helper.make_node("Mul", ["v_final", "half"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "nested_loop_if", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4]),
         helper.make_tensor_value_info("sums", TensorProto.FLOAT, [None, 1])], inits)
    return _model(graph)


def build_shape_across_if():
    rng = np.random.default_rng(7)
    then_graph = helper.make_graph(
        [helper.make_node("Relu", ["c"], ["then_out"])], "then_branch", [],
        [helper.make_tensor_value_info("then_out", TensorProto.FLOAT, [1, 2, 4, 4])])
    else_graph = helper.make_graph(
        [helper.make_node("Neg", ["c"], ["else_out"])], "else_branch", [],
        [helper.make_tensor_value_info("else_out", TensorProto.FLOAT, [1, 2, 4, 4])])
    inits = [_const("w", rng.standard_normal((2, 2, 1, 1)).astype(np.float32)),
             _const("zero", np.array(0.0, np.float32)), _const("index0", np.array([0], np.int64)),
             _const("minus_one", np.array([-1], np.int64))]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"]),
        helper.make_node("Shape", ["c"], ["shape"]),
        helper.make_node("Gather", ["shape", "index0"], ["batch"], axis=0),
        helper.make_node("Concat", ["batch", "minus_one"], ["target"], axis=0),
        helper.make_node("ReduceMean", ["c"], ["mean"], keepdims=0),
        helper.make_node("Greater", ["mean", "zero"], ["cond"]),
        helper.make_node("If", ["cond"], ["o"], then_branch=then_graph, else_branch=else_graph),
        helper.make_node("Reshape", ["o", "target"], ["y"]),
        helper.make_node("Add", ["c", "c"], ["y2"]),
    ]
    graph = helper.make_graph(
        nodes, "shape_across_if", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32]),
         helper.make_tensor_value_info("y2", TensorProto.FLOAT, [1, 2, 4, 4])], inits)
    return _model(graph)


MODELS = {
    "if_branch": regression_models.build_if_branch,
    "loop_dynamic": regression_models.build_loop_dynamic,
    "nested_loop_if": build_nested_loop_if,
    "shape_across_if": build_shape_across_if,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name, build in MODELS.items():
        path = os.path.join(args.out, name + ".onnx")
        onnx.save(build(), path)
        print(path)


if __name__ == "__main__":
    main()
