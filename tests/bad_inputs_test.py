#!/usr/bin/env python3
"""Bad inputs get a clear error and a non-zero exit, with no sanitizer report.

Runs the ASan+UBSan build of the CLI (build-asan/facegraph) on truncated and
random model files, an unsupported op, wrong input shape and dtype, a missing
input, corrupt JPEG and PNG images, directories and missing files. Each case
names the words its error message must contain.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SHARED = os.environ.get("FACEGRAPH_SHARED", os.path.join(os.path.dirname(REPO), "shared"))
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer", "Segmentation fault")


def small_model(path, op="Relu", domain=""):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])
    node = helper.make_node(op, ["x"], ["y"], name="the_node", domain=domain)
    opsets = [helper.make_opsetid("", 13)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    m = helper.make_model(helper.make_graph([node], "g", [x], [y]), opset_imports=opsets)
    m.ir_version = 8
    onnx.save(m, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--facegraph", default=os.path.join(REPO, "build-asan", "facegraph"))
    args = ap.parse_args()
    fg = args.facegraph
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0", UBSAN_OPTIONS="print_stacktrace=1")
    tmp = tempfile.mkdtemp()
    good = os.path.join(SHARED, "models", "face_detection_yunet_2023mar.onnx")
    data = open(good, "rb").read()

    def write(name, content):
        p = os.path.join(tmp, name)
        with open(p, "wb") as f:
            f.write(content)
        return p

    trunc = write("truncated.onnx", data[: len(data) // 3])
    trunc_small = write("truncated_header.onnx", data[:37])
    rnd = write("random.onnx", np.random.default_rng(7).bytes(5000))
    empty = write("empty.onnx", b"")
    unsupported = os.path.join(tmp, "unsupported.onnx")
    small_model(unsupported, op="GridSample")
    custom = os.path.join(tmp, "custom_domain.onnx")
    small_model(custom, op="FancyOp", domain="com.example")
    relu = os.path.join(tmp, "relu.onnx")
    small_model(relu)
    np.save(os.path.join(tmp, "wrong_shape.npy"), np.zeros((1, 3, 5, 5), np.float32))
    np.save(os.path.join(tmp, "wrong_dtype.npy"), np.zeros((1, 3, 4, 4), np.int64))
    np.save(os.path.join(tmp, "ok.npy"), np.zeros((1, 3, 4, 4), np.float32))
    jpeg = open(os.path.join(SHARED, "images", "portrait_a.jpg"), "rb").read()
    png = open(os.path.join(SHARED, "images", "gorilla_rgba.png"), "rb").read()
    bad_jpeg = write("broken.jpg", jpeg[: len(jpeg) // 5])
    bad_png = write("broken.png", png[: len(png) // 5])
    garbage_img = write("garbage.jpg", b"hello, I am not an image" * 10)
    out = os.path.join(tmp, "out")
    det = ["--face-detector-model", "yunet", "--face-detector-path", good]

    cases = [
        ("truncated model", ["inspect", trunc], ["truncated.onnx"]),
        ("truncated header", ["inspect", trunc_small], ["truncated_header.onnx"]),
        ("random bytes", ["inspect", rnd], ["random.onnx"]),
        ("empty file", ["inspect", empty], ["empty.onnx"]),
        ("directory as model", ["inspect", tmp], ["directory"]),
        ("missing model", ["inspect", os.path.join(tmp, "nope.onnx")], ["nope.onnx"]),
        ("unsupported op", ["inspect", unsupported], ["the_node", "GridSample", "not supported"], 3),
        ("custom domain op", ["inspect", custom], ["FancyOp", "com.example"], 3),
        ("wrong input shape", ["infer", relu, "--input", "x=" + os.path.join(tmp, "wrong_shape.npy"), "--output-dir", out], ["'x'", "shape"]),
        ("wrong input dtype", ["infer", relu, "--input", "x=" + os.path.join(tmp, "wrong_dtype.npy"), "--output-dir", out], ["'x'", "float32", "int64"]),
        ("missing input", ["infer", relu, "--output-dir", out], ["missing input", "'x'"]),
        ("unknown input name", ["infer", relu, "--input", "nope=" + os.path.join(tmp, "ok.npy"), "--output-dir", out], ["nope"]),
        ("missing npy", ["infer", relu, "--input", "x=" + os.path.join(tmp, "nope.npy"), "--output-dir", out], ["nope.npy"]),
        ("corrupt jpeg", ["detect", "-t", bad_jpeg, "--json"] + det, ["broken.jpg"]),
        ("corrupt png", ["detect", "-t", bad_png, "--json"] + det, ["broken.png"]),
        ("not an image", ["detect", "-t", garbage_img, "--json"] + det, ["garbage.jpg"]),
        ("directory as image", ["detect", "-t", tmp, "--json"] + det, ["directory"]),
        ("missing image", ["detect", "-t", os.path.join(tmp, "nope.jpg"), "--json"] + det, ["nope.jpg"]),
        ("missing detector", ["detect", "-t", os.path.join(SHARED, "images", "portrait_a.jpg"), "--models", tmp], ["yoloface_8n.onnx"]),
        ("unknown provider", ["infer", relu, "--input", "x=" + os.path.join(tmp, "ok.npy"), "--output-dir", out, "--execution-providers", "tensorrt"], ["tensorrt", "available"]),
    ]
    passed = failed = 0
    for case in cases:
        name, argv, words = case[:3]
        want_rc = case[3] if len(case) > 3 else None
        r = subprocess.run([fg] + argv, capture_output=True, text=True, env=env, timeout=300)
        problems = []
        if want_rc is not None and r.returncode != want_rc:
            problems.append("exit status %d, expected %d" % (r.returncode, want_rc))
        if r.returncode == 0:
            problems.append("exit status 0")
        if r.returncode < 0 or r.returncode > 3:
            problems.append("exit status %d (crash or sanitizer)" % r.returncode)
        for mark in SANITIZER_MARKS:
            if mark in r.stderr:
                problems.append("sanitizer report: " + mark)
        low = r.stderr.lower()
        for w in words:
            if w.lower() not in low:
                problems.append("message lacks %r" % w)
        msg = r.stderr.strip().splitlines()[0] if r.stderr.strip() else "(no message)"
        if problems:
            failed += 1
            print("FAIL %s: %s\n     stderr: %s" % (name, "; ".join(problems), r.stderr.strip()[-1500:]))
        else:
            passed += 1
            print("PASS %s: %s" % (name, msg))
    # nothing half-written: a failing infer must not leave outputs.json
    if os.path.exists(os.path.join(out, "outputs.json")):
        failed += 1
        print("FAIL failed runs left %s behind" % os.path.join(out, "outputs.json"))
    print("bad inputs: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
