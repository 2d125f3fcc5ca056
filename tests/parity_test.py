#!/usr/bin/env python3
"""Parity: facegraph's outputs against ONNX Runtime (CPU) on real inputs.

For every model in ../shared/models and every generated stand-in (tools/,
small scale unless --full), feeds the same input to `facegraph infer` and to
onnxruntime, and requires for every output

    max |ours - ref| <= 1e-4 * max |ref| + 1e-5

(1e-3 for float16 outputs, about two float16 rounding steps at the largest
magnitude; float16 models compute in float32 inside, as ONNX Runtime's CPU
provider does.)
Image models get a shared photo resized to their input and normalised as
FaceFusion (or the model's authors) feed them; other inputs are seeded random.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort

ort.set_default_logger_severity(3)
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SHARED = os.environ.get("FACEGRAPH_SHARED", os.path.join(os.path.dirname(REPO), "shared"))

# file stem -> (image, channel order, normalisation)
IMAGE_FEEDS = {
    "face_detection_yunet_2023mar": ("group_lab.jpg", "bgr", lambda x: x),
    "scrfd_2.5g": ("group_lab.jpg", "bgr", lambda x: (x - 127.5) / 128.0),
    "yolov8-lite-t_face": ("portrait_a.jpg", "rgb", lambda x: x / 255.0),
    "retinaface_mnet025_biubug6": ("class_photo.jpg", "bgr", lambda x: x - np.array([104, 117, 123]).reshape(3, 1, 1)),
    "ultraface_version-RFB-320": ("class_photo.jpg", "rgb", lambda x: (x - 127.0) / 128.0),
    "pfld_68_cunjian": ("portrait_b.jpg", "rgb", lambda x: x / 255.0),
    "facemesh_dfl": ("portrait_a.jpg", "rgb", lambda x: x / 255.0),
    "mobilefacenet_photo_analyze": ("portrait_a.jpg", "rgb", lambda x: (x - 127.5) / 128.0),
}


def image_tensor(name, shape, order, norm, nhwc):
    h, w = (shape[1], shape[2]) if nhwc else (shape[2], shape[3])
    img = Image.open(os.path.join(SHARED, "images", name)).convert("RGB").resize((w, h), Image.BILINEAR)
    x = np.asarray(img, dtype=np.float32)  # HWC RGB
    if order == "bgr":
        x = x[:, :, ::-1]
    x = np.ascontiguousarray(x.transpose(2, 0, 1))
    x = norm(x).astype(np.float32)
    if nhwc:
        x = x.transpose(1, 2, 0)
    return np.ascontiguousarray(x[None].repeat(shape[0], axis=0))


def concrete_shape(value, default_hw=640):
    dims = []
    t = value.type.tensor_type
    for i, d in enumerate(t.shape.dim):
        if d.HasField("dim_value") and d.dim_value > 0:
            dims.append(d.dim_value)
        else:
            dims.append(1 if i == 0 else default_hw)
    return dims


NP_TYPES = {1: np.float32, 10: np.float16, 11: np.float64, 7: np.int64, 6: np.int32, 2: np.uint8, 9: np.bool_}


def make_inputs(path, model, rng):
    stem = os.path.splitext(os.path.basename(path))[0]
    inits = {i.name for i in model.graph.initializer}
    feeds = {}
    for v in model.graph.input:
        if v.name in inits:
            continue
        shape = concrete_shape(v)
        dtype = NP_TYPES[v.type.tensor_type.elem_type]
        feed = IMAGE_FEEDS.get(stem)
        is_image = len(shape) == 4 and (shape[1] == 3 or shape[3] == 3) and min(shape[-2:] if shape[1] == 3 else shape[1:3]) >= 32
        if is_image and dtype in (np.float32, np.float16):
            nhwc = shape[3] == 3 and shape[1] != 3
            image, order, norm = feed if feed else ("portrait_a.jpg", "rgb", lambda x: x / 255.0)
            feeds[v.name] = image_tensor(image, shape, order, norm, nhwc).astype(dtype)
        elif np.issubdtype(dtype, np.floating):
            feeds[v.name] = rng.standard_normal(shape).astype(dtype)
        else:
            feeds[v.name] = rng.integers(0, 2, shape).astype(dtype)
    return feeds


def check_model(path, facegraph, threads, tmp):
    model = onnx.load(path, load_external_data=False)
    rng = np.random.default_rng(1234)
    feeds = make_inputs(path, model, rng)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    ref = sess.run(None, feeds)
    names = [o.name for o in sess.get_outputs()]
    work = tempfile.mkdtemp(dir=tmp)
    args = [facegraph, "infer", path, "--output-dir", os.path.join(work, "out"), "--execution-thread-count", str(threads)]
    for k, v in feeds.items():
        f = os.path.join(work, "in_%d.npy" % len(args))
        np.save(f, v)
        args += ["--input", "%s=%s" % (k, f)]
    run = subprocess.run(args, capture_output=True, text=True)
    if run.returncode != 0:
        return False, "facegraph infer failed: " + run.stderr.strip()[-600:]
    mapping = json.load(open(os.path.join(work, "out", "outputs.json")))
    worst = []
    for name, r in zip(names, ref):
        ours = np.load(os.path.join(work, "out", mapping[name]))
        if ours.shape != r.shape:
            return False, "output %s: shape %s, onnxruntime %s" % (name, ours.shape, r.shape)
        if ours.dtype != r.dtype:
            return False, "output %s: dtype %s, onnxruntime %s" % (name, ours.dtype, r.dtype)
        a, b = ours.astype(np.float64), r.astype(np.float64)
        if r.size == 0:
            continue
        err = float(np.max(np.abs(a - b)))
        # float16 outputs are rounded to 11 significant bits: allow about two
        # float16 steps at the largest magnitude instead of 1e-4
        rel = 1e-3 if r.dtype == np.float16 else 1e-4
        tol = rel * float(np.max(np.abs(b))) + 1e-5
        worst.append("%s err %.3g tol %.3g" % (name, err, tol))
        if not err <= tol:
            return False, "output %s: max |ours - ref| = %.4g > %.4g" % (name, err, tol)
    return True, "; ".join(worst[:3])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--facegraph", default=os.path.join(REPO, "build", "facegraph"))
    ap.add_argument("--gen", default=os.path.join(REPO, "build", "gen"))
    ap.add_argument("--full", action="store_true", help="stand-ins at full size")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default="", help="comma-separated substrings of model names")
    args = ap.parse_args()

    models = sorted(os.path.join(SHARED, "models", f) for f in os.listdir(os.path.join(SHARED, "models")) if f.endswith(".onnx"))
    scale = "full" if args.full else "small"
    gen = os.path.join(args.gen, "standins-" + scale)
    maker = os.path.join(REPO, "tools", "make_standins.py")
    if os.path.exists(maker):
        os.makedirs(gen, exist_ok=True)
        r = subprocess.run([sys.executable, maker, "--out", gen, "--scale", scale], capture_output=True, text=True)
        if r.returncode != 0:
            print("FAIL stand-in generation:", r.stderr.strip()[-800:])
            print("0 passed, 1 failed")
            return 1
        models += sorted(os.path.join(gen, f) for f in os.listdir(gen) if f.endswith(".onnx"))
    if args.only:
        keys = args.only.split(",")
        models = [m for m in models if any(k in os.path.basename(m) for k in keys)]
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for m in models:
            ok, detail = check_model(m, args.facegraph, args.threads, tmp)
            print("%s %s: %s" % ("PASS" if ok else "FAIL", os.path.basename(m), detail), flush=True)
            passed += ok
            failed += not ok
    print("parity: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
