#!/usr/bin/env python3
"""Tests for `facegraph detect` (images, face detection, CLI).

usage: tests/test_detect.py [path/to/facegraph]   (default build/facegraph)

Detection results are compared with a reference written here independently
from ONNX Runtime's raw outputs: facegraph writes the letterboxed model input
it used (--dump-input), ONNX Runtime runs the model on that same tensor, and
the decoders below (numpy, one per output layout) turn the raw outputs into
faces. Both must agree on the count and on each face (box IoU >= 0.95).
Everything else (corrupt files, missing models, PNG flavours, annotated
output) runs against the binary alone. Fixtures are made in a temp dir.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "facegraph")
SHARED = os.environ.get("FACEGRAPH_SHARED", "/work/shared")
MODELS = os.path.join(SHARED, "models")
IMAGES = os.path.join(SHARED, "images")
IMAGE_NAMES = ["portrait_a.jpg", "portrait_b.jpg", "group_lab.jpg", "class_photo.jpg", "crowd_selfie.jpg",
               "gorilla_rgba.png"]

passed = 0
failed = 0


def check(name, condition, detail=""):
    global passed, failed
    if condition:
        passed += 1
        print("ok   %s" % name)
    else:
        failed += 1
        print("FAIL %s %s" % (name, detail))


def run(args):
    return subprocess.run([BINARY] + args, capture_output=True, text=True)


# ------------------------------------------------------------------ image size from headers

def image_size(path):
    data = open(path, "rb").read()
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return struct.unpack(">II", data[16:24])
    assert data[:2] == b"\xff\xd8", path
    i = 2
    while i < len(data):
        while data[i] == 0xFF:
            i += 1
        marker = data[i]
        i += 1
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            continue
        length = struct.unpack(">H", data[i:i + 2])[0]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            h, w = struct.unpack(">HH", data[i + 3:i + 7])
            return w, h
        i += length
    raise ValueError("no SOF in " + path)


# ------------------------------------------------------------------ reference decoders

def nms(boxes, scores, threshold=0.4):
    order = np.argsort(-scores, kind="stable")
    keep = []
    suppressed = np.zeros(len(order), bool)
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    for rank, i in enumerate(order):
        if suppressed[rank]:
            continue
        keep.append(i)
        rest = order[rank + 1:]
        iw = np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0])
        ih = np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1])
        inter = np.where((iw > 0) & (ih > 0), iw * ih, 0)
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-12)
        suppressed[rank + 1:] |= iou > threshold
    return np.array(keep, int)


def grid(rows, cols, stride, repeat):
    y, x = np.mgrid[:rows, :cols]
    xy = np.stack([x.ravel(), y.ravel()], 1).astype(np.float32) * stride
    return np.repeat(xy, repeat, axis=0)


def decode_scrfd(outputs, size, threshold):
    width, height = size
    by_width = {1: [], 4: [], 10: []}
    for o in outputs:
        by_width[o.shape[-1]].append(o.reshape(-1, o.shape[-1]))
    for k in by_width:
        by_width[k].sort(key=lambda a: -a.shape[0])
    boxes, scores, kps = [], [], []
    for s, stride in enumerate((8, 16, 32)):
        sc = by_width[1][s][:, 0]
        cells = (height // stride) * (width // stride)
        anchors = grid(height // stride, width // stride, stride, sc.shape[0] // cells)
        keep = sc >= threshold
        d = by_width[4][s][keep] * stride
        a = anchors[keep]
        boxes.append(np.stack([a[:, 0] - d[:, 0], a[:, 1] - d[:, 1], a[:, 0] + d[:, 2], a[:, 1] + d[:, 3]], 1))
        k = by_width[10][s][keep].reshape(-1, 5, 2) * stride + a[:, None, :]
        kps.append(k)
        scores.append(sc[keep])
    return np.concatenate(boxes), np.concatenate(scores), np.concatenate(kps)


def decode_yunet(outputs, size, threshold):
    width, height = size
    boxes, scores, kps = [], [], []
    for s, stride in enumerate((8, 16, 32)):
        cls, obj, bbox, kp = (outputs[g * 3 + s].reshape(-1, outputs[g * 3 + s].shape[-1]) for g in range(4))
        sc = cls[:, 0] * obj[:, 0]
        keep = sc >= threshold
        a = grid(height // stride, width // stride, stride, 1)[keep]
        b = bbox[keep]
        centre = b[:, :2] * stride + a
        wh = np.exp(b[:, 2:4]) * stride
        boxes.append(np.concatenate([centre - wh / 2, centre + wh / 2], 1))
        kps.append(kp[keep].reshape(-1, 5, 2) * stride + a[:, None, :])
        scores.append(sc[keep])
    return np.concatenate(boxes), np.concatenate(scores), np.concatenate(kps)


def decode_retinaface_priors(outputs, size, threshold):
    width, height = size
    loc = next(o for o in outputs if o.shape[-1] == 4)[0]
    conf = next(o for o in outputs if o.shape[-1] == 2)[0]
    land = next(o for o in outputs if o.shape[-1] == 10)[0]
    priors = []
    for step, sizes in ((8, (16, 32)), (16, (64, 128)), (32, (256, 512))):
        rows, cols = -(-height // step), -(-width // step)
        for y in range(rows):
            for x in range(cols):
                for m in sizes:
                    priors.append(((x + 0.5) * step, (y + 0.5) * step, m, m))
    priors = np.array(priors, np.float32)
    sc = conf[:, 1]
    keep = sc >= threshold
    p, l, k = priors[keep], loc[keep], land[keep]
    centre = p[:, :2] + l[:, :2] * 0.1 * p[:, 2:]
    wh = p[:, 2:] * np.exp(l[:, 2:] * 0.2)
    boxes = np.concatenate([centre - wh / 2, centre + wh / 2], 1)
    kps = p[:, None, :2] + k.reshape(-1, 5, 2) * 0.1 * p[:, None, 2:]
    return boxes, sc[keep], kps


def decode_yolo_raw(outputs, size, threshold):
    width, height = size
    boxes, scores, kps = [], [], []
    for o in outputs:
        _, c, rows, cols = o.shape
        stride = height // rows
        p = o[0].reshape(c, -1).T
        sc = 1 / (1 + np.exp(-p[:, 64]))
        keep = sc >= threshold
        p = p[keep]
        bins = p[:, :64].reshape(-1, 4, 16)
        e = np.exp(bins - bins.max(-1, keepdims=True))
        dist = (e / e.sum(-1, keepdims=True)) @ np.arange(16, dtype=np.float32)
        g = grid(rows, cols, 1, 1)[keep]
        a = g + 0.5
        boxes.append(np.concatenate([a - dist[:, :2], a + dist[:, 2:]], 1) * stride)
        raw = p[:, 65:80].reshape(-1, 5, 3)
        kps.append((raw[:, :, :2] * 2 + g[:, None, :]) * stride)
        scores.append(sc[keep])
    return np.concatenate(boxes), np.concatenate(scores), np.concatenate(kps)


DECODERS = {"scrfd": decode_scrfd, "yunet": decode_yunet, "retinaface": decode_retinaface_priors,
            "yolo_face": decode_yolo_raw}

_sessions = {}


def reference_faces(model, family, input_tensor, image_path, threshold):
    import onnxruntime as ort
    if model not in _sessions:
        _sessions[model] = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    session = _sessions[model]
    outputs = session.run(None, {session.get_inputs()[0].name: input_tensor})
    _, _, height, width = input_tensor.shape
    boxes, scores, kps = DECODERS[family](outputs, (width, height), threshold)
    w, h = image_size(image_path)
    if w > width or h > height:
        scale = min(height / h, width / w)
        rw, rh = max(int(w * scale), 1), max(int(h * scale), 1)
    else:
        rw, rh = w, h
    ratio = np.array([w / rw, h / rh], np.float32)
    boxes = boxes * np.tile(ratio, 2)
    kps = kps * ratio
    keep = nms(boxes, scores)
    return boxes[keep], scores[keep], kps[keep]


def box_iou(a, b):
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def detect(image, family, model, tmp, extra=()):
    dump = os.path.join(tmp, "input.npy")
    if os.path.exists(dump):
        os.unlink(dump)
    r = run(["detect", "-t", image, "--json", "--face-detector-model", family, "--face-detector-path", model,
             "--dump-input", dump] + list(extra))
    return r, dump


def compare_with_reference(name, image, family, model, tmp, threshold=0.5, extra=()):
    r, dump = detect(image, family, model, tmp, extra)
    if r.returncode != 0:
        check(name, False, "exit %d: %s" % (r.returncode, r.stderr.strip()))
        return None
    faces = json.loads(r.stdout)["faces"]
    tensor = np.load(dump)
    boxes, scores, kps = reference_faces(model, family, tensor, image, threshold)
    ok = len(faces) == len(boxes)
    detail = "facegraph %d faces, reference %d" % (len(faces), len(boxes))
    if ok:
        used = set()
        worst = 1.0
        for f in faces:
            ious = [box_iou(f["box"], b) if j not in used else -1 for j, b in enumerate(boxes)]
            j = int(np.argmax(ious))
            used.add(j)
            worst = min(worst, ious[j])
            if ious[j] < 0.95 or abs(f["score"] - scores[j]) > 0.02:
                ok = False
                detail = "face %s vs reference box %s score %.3f (IoU %.3f)" % (f, boxes[j].tolist(), scores[j],
                                                                              ious[j])
                break
            size = max(b - a for a, b in zip(f["box"][:2], f["box"][2:]))
            if np.abs(np.array(f["landmarks_5"]) - kps[j]).max() > 0.05 * size + 1:
                ok = False
                detail = "landmarks %s vs reference %s" % (f["landmarks_5"], kps[j].tolist())
                break
        if ok:
            detail = "%d faces, worst IoU %.4f" % (len(faces), worst)
    check(name, ok, detail)
    print("     %s" % detail)
    return faces


# ------------------------------------------------------------------ PNG fixtures (zlib + struct only)

def png_bytes(width, height, colour_type, bit_depth, rows, palette=None, trns=None):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + row for row in rows)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0))
    if palette is not None:
        out += chunk(b"PLTE", palette)
    if trns is not None:
        out += chunk(b"tRNS", trns)
    return out + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def read_png_rgb(path):
    """Decodes an 8-bit RGB non-interlaced PNG (what facegraph writes)."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    i, idat = 8, b""
    while i < len(data):
        length, kind = struct.unpack(">I4s", data[i:i + 8])
        body = data[i + 8:i + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype == 2
        elif kind == b"IDAT":
            idat += body
        i += 12 + length
    raw = zlib.decompress(idat)
    stride = width * 3
    out = np.zeros((height, stride), np.int32)
    prev = np.zeros(stride, np.int32)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int32)
        cur = np.zeros(stride, np.int32)
        for x in range(stride):
            a = cur[x - 3] if x >= 3 else 0
            b = prev[x]
            c = prev[x - 3] if x >= 3 else 0
            if f == 0:
                p = 0
            elif f == 1:
                p = a
            elif f == 2:
                p = b
            elif f == 3:
                p = (a + b) // 2
            else:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            cur[x] = (line[x] + p) & 0xFF
        out[y] = cur
        prev = cur
    return out.reshape(height, width, 3)


def png_flavours(tmp):
    """Each flavour decodes to the same 8-bit RGB (alpha dropped)."""
    w, h = 24, 16
    yy, xx = np.mgrid[:h, :w]
    rgb = np.stack([(xx * 10) % 256, (yy * 15) % 256, ((xx + yy) * 7) % 256], -1).astype(np.uint8)
    gray = ((xx * 3 + yy * 5) % 256).astype(np.uint8)
    alpha = ((xx * 11) % 256).astype(np.uint8)
    cases = []
    cases.append(("rgb8", png_bytes(w, h, 2, 8, [r.tobytes() for r in rgb]), rgb))
    rgb16 = (rgb.astype(np.uint32) * 256 + 200).astype(">u2")  # low byte dropped
    cases.append(("rgb16", png_bytes(w, h, 2, 16, [r.tobytes() for r in rgb16]), rgb))
    rgba = np.concatenate([rgb, alpha[..., None]], -1)
    cases.append(("rgba8", png_bytes(w, h, 6, 8, [r.tobytes() for r in rgba]), rgb))
    rgba16 = rgba.astype(">u2") * 257
    cases.append(("rgba16", png_bytes(w, h, 6, 16, [r.tobytes() for r in rgba16]), rgb))
    g3 = np.repeat(gray[..., None], 3, -1)
    cases.append(("gray8", png_bytes(w, h, 0, 8, [r.tobytes() for r in gray]), g3))
    cases.append(("gray16", png_bytes(w, h, 0, 16, [r.tobytes() for r in gray.astype(">u2") * 257]), g3))
    ga = np.stack([gray, alpha], -1)
    cases.append(("gray_alpha8", png_bytes(w, h, 4, 8, [r.tobytes() for r in ga]), g3))
    g1 = (gray >= 128).astype(np.uint8)
    packed = [np.packbits(r).tobytes() for r in g1]
    cases.append(("gray1", png_bytes(w, h, 0, 1, packed), np.repeat((g1 * 255)[..., None], 3, -1)))
    palette = np.array([[(i * 37) % 256, (i * 91) % 256, (i * 53) % 256] for i in range(256)], np.uint8)
    index = ((xx + yy * 3) % 256).astype(np.uint8)
    cases.append(("palette8", png_bytes(w, h, 3, 8, [r.tobytes() for r in index], palette.tobytes(),
                                        bytes(range(0, 256, 2)[:128])), palette[index]))
    results = []
    for name, data, expected_rgb in cases:
        src = os.path.join(tmp, "flavour_%s.png" % name)
        out = os.path.join(tmp, "flavour_%s_out.png" % name)
        open(src, "wb").write(data)
        # yunet on a tiny gradient finds nothing; -o then writes the decoded pixels back unchanged.
        r = run(["detect", "-t", src, "-o", out, "--face-detector-model", "yunet", "--face-detector-path",
                 os.path.join(MODELS, "face_detection_yunet_2023mar.onnx")])
        if r.returncode != 0:
            results.append((name, False, r.stderr.strip()))
            continue
        got = read_png_rgb(out)
        same = got.shape == expected_rgb.shape and np.array_equal(got, expected_rgb.astype(np.int32))
        results.append((name, same, "" if same else "decoded pixels differ"))
    return results


# ------------------------------------------------------------------ synthetic yoloface_8n-style model

def decoded_yolo_case(tmp):
    """yoloface_8n's decoded 1x20xN layout (the file itself is not shared): a
    model whose output is a fixed table of candidates, so decoding, the score
    threshold, NMS and the scale back can be checked exactly."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    n = 8400
    table = np.zeros((1, 20, n), np.float32)
    rows = {10: (100, 100, 50, 60, 0.9), 11: (104, 102, 50, 60, 0.8), 12: (300, 200, 40, 40, 0.7),
            13: (500, 500, 40, 40, 0.3)}
    for i, (cx, cy, w, h, score) in rows.items():
        table[0, :5, i] = (cx, cy, w, h, score)
        for p in range(5):
            table[0, 5 + 3 * p:8 + 3 * p, i] = (cx - 10 + 5 * p, cy + p, 1.0)
    nodes = [helper.make_node("ReduceSum", ["images"], ["total"], keepdims=0),
             helper.make_node("Mul", ["total", "zero"], ["nothing"]),
             helper.make_node("Add", ["table", "nothing"], ["output0"])]
    graph = helper.make_graph(
        nodes, "decoded_yolo_face", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 640, 640])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 20, n])],
        [numpy_helper.from_array(table, "table"), numpy_helper.from_array(np.zeros((), np.float32), "zero")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = os.path.join(tmp, "decoded_yolo_face.onnx")
    onnx.save(model, path)
    image = os.path.join(IMAGES, "portrait_a.jpg")  # 800x1066 -> 480x640 on the canvas
    r = run(["detect", "-t", image, "--json", "--face-detector-model", "yolo_face", "--face-detector-path", path])
    if r.returncode != 0:
        check("decoded yolo_face layout", False, r.stderr)
        return
    faces = json.loads(r.stdout)["faces"]
    rx, ry = 800 / 480, 1066 / 640
    expected = []
    for i in (10, 12):  # 11 overlaps 10 (IoU > 0.4), 13 scores below 0.5
        cx, cy, w, h, score = rows[i]
        expected.append(([(cx - w / 2) * rx, (cy - h / 2) * ry, (cx + w / 2) * rx, (cy + h / 2) * ry], score,
                         [[(cx - 10 + 5 * p) * rx, (cy + p) * ry] for p in range(5)]))
    ok = len(faces) == 2 and all(
        np.allclose(f["box"], e[0], atol=0.01) and abs(f["score"] - e[1]) < 1e-5
        and np.allclose(f["landmarks_5"], e[2], atol=0.01) for f, e in zip(faces, expected))
    check("decoded yolo_face layout: decode, threshold, NMS, scale back", ok, "%s vs %s" % (faces, expected))


# ------------------------------------------------------------------ main

def main():
    if not os.path.exists(BINARY):
        print("facegraph binary not found: %s" % BINARY)
        print("0 passed, 1 failed")
        return 1
    scrfd = os.path.join(MODELS, "scrfd_2.5g.onnx")
    yunet = os.path.join(MODELS, "face_detection_yunet_2023mar.onnx")
    retina = os.path.join(MODELS, "retinaface_mnet025_biubug6.onnx")
    yolo = os.path.join(MODELS, "yolov8-lite-t_face.onnx")
    with tempfile.TemporaryDirectory() as tmp:
        for family, model in (("scrfd", scrfd), ("yunet", yunet)):
            for name in IMAGE_NAMES:
                image = os.path.join(IMAGES, name)
                faces = compare_with_reference("%s %s matches reference" % (family, name), image, family, model,
                                               tmp)
                if faces is None:
                    continue
                if name == "crowd_selfie.jpg":  # 2048 wide: at 640 only the larger faces survive
                    check("%s crowd at 640 finds many faces" % family, len(faces) >= 60, "%d faces" % len(faces))
                if name == "gorilla_rgba.png":
                    check("%s gorilla: few faces" % family, len(faces) <= 2, "%d faces" % len(faces))
                if name.startswith("portrait"):
                    check("%s %s: one face" % (family, name), len(faces) == 1, "%d faces" % len(faces))
        # Full resolution (scrfd is dynamic): the crowd's hundreds of faces, no cap.
        faces = compare_with_reference("scrfd crowd_selfie.jpg at 2048x1152 matches reference",
                                       os.path.join(IMAGES, "crowd_selfie.jpg"), "scrfd", scrfd, tmp,
                                       extra=["--face-detector-size", "2048x1152"])
        if faces is not None:
            check("scrfd crowd at 2048x1152 finds hundreds of faces", len(faces) >= 400, "%d faces" % len(faces))
        # A non-default detector size (scrfd is dynamic).
        compare_with_reference("scrfd group_lab.jpg at 320x320 matches reference",
                               os.path.join(IMAGES, "group_lab.jpg"), "scrfd", scrfd, tmp,
                               extra=["--face-detector-size", "320x320"])
        for family, model in (("retinaface", retina), ("yolo_face", yolo)):
            for name in ("portrait_a.jpg", "portrait_b.jpg"):
                faces = compare_with_reference("%s %s matches reference" % (family, name),
                                               os.path.join(IMAGES, name), family, model, tmp)
                if faces is not None:
                    check("%s %s: exactly one face" % (family, name), len(faces) == 1, "%d faces" % len(faces))
                    if faces:
                        eyes = faces[0]["landmarks_5"]
                        box = faces[0]["box"]
                        inside = all(box[0] <= x <= box[2] and box[1] <= y <= box[3] for x, y in eyes)
                        check("%s %s: landmarks inside the box, left eye left of right eye" % (family, name),
                              inside and eyes[0][0] < eyes[1][0], str(faces[0]))

        decoded_yolo_case(tmp)

        # Annotated output: written atomically, valid JPEG, nothing left behind.
        out_dir = os.path.join(tmp, "annotated")
        os.mkdir(out_dir)
        out = os.path.join(out_dir, "a.jpg")
        r = run(["detect", "-t", os.path.join(IMAGES, "group_lab.jpg"), "-o", out, "--face-detector-model",
                 "scrfd", "--face-detector-path", scrfd])
        check("-o writes an annotated JPEG", r.returncode == 0 and os.path.exists(out)
              and open(out, "rb").read(3) == b"\xff\xd8\xff" and os.listdir(out_dir) == ["a.jpg"],
              r.stderr + str(os.listdir(out_dir)))
        r = run(["detect", "-t", out, "--json", "--face-detector-model", "scrfd", "--face-detector-path", scrfd])
        check("annotated JPEG reads back", r.returncode == 0 and len(json.loads(r.stdout or "{}").get("faces", [])) > 5,
              r.stderr)

        for name, ok, detail in png_flavours(tmp):
            check("PNG %s decodes to the expected BGR pixels" % name, ok, detail)

        # Errors: each exits non-zero with a clear message naming the problem.
        portrait = open(os.path.join(IMAGES, "portrait_a.jpg"), "rb").read()
        gorilla = open(os.path.join(IMAGES, "gorilla_rgba.png"), "rb").read()
        bad_jpeg = os.path.join(tmp, "truncated.jpg")
        open(bad_jpeg, "wb").write(portrait[:len(portrait) // 3])
        bad_png = os.path.join(tmp, "truncated.png")
        open(bad_png, "wb").write(gorilla[:len(gorilla) // 3])
        garbage_jpeg = os.path.join(tmp, "garbage.jpg")
        open(garbage_jpeg, "wb").write(portrait[:2] + bytes(range(256)) * 40)
        text_file = os.path.join(tmp, "notes.jpg")
        open(text_file, "w").write("hello, not an image\n")
        cases = [
            ("truncated JPEG", ["-t", bad_jpeg], ["truncated.jpg", "JPEG"]),
            ("corrupt JPEG", ["-t", garbage_jpeg], ["garbage.jpg"]),
            ("truncated PNG", ["-t", bad_png], ["truncated.png", "PNG"]),
            ("text file named .jpg", ["-t", text_file], ["not a JPEG or PNG image"]),
            ("directory", ["-t", tmp], ["directory"]),
            ("missing image", ["-t", os.path.join(tmp, "nope.jpg")], ["nope.jpg", "no such file"]),
        ]
        for label, args, needles in cases:
            r = run(["detect"] + args + ["--face-detector-model", "scrfd", "--face-detector-path", scrfd])
            check("%s fails clearly" % label, r.returncode != 0 and "Traceback" not in r.stderr
                  and r.returncode < 128 and all(n in r.stderr for n in needles), "rc=%d: %s" % (r.returncode, r.stderr))
        # Stray bytes before the end marker (common in camera files) are harmless: still decoded.
        stray = os.path.join(tmp, "stray_bytes.jpg")
        open(stray, "wb").write(portrait[:-2] + b"\x00\x00" + portrait[-2:])
        r = run(["detect", "-t", stray, "--json", "--face-detector-model", "scrfd", "--face-detector-path", scrfd])
        check("JPEG with stray bytes before EOI still loads", r.returncode == 0
              and len(json.loads(r.stdout)["faces"]) == 1, r.stderr)
        r = run(["detect", "-t", os.path.join(IMAGES, "portrait_a.jpg"), "--face-detector-model", "scrfd",
                 "--models", os.path.join(tmp, "no_models")])
        check("missing model fails clearly", r.returncode != 0 and "scrfd_2.5g.onnx" in r.stderr
              and "--face-detector-path" in r.stderr, r.stderr)
        r = run(["detect", "-t", os.path.join(IMAGES, "portrait_a.jpg"), "--face-detector-model", "yunet",
                 "--face-detector-path", scrfd])
        check("model of another family fails clearly", r.returncode != 0 and "yunet" in r.stderr, r.stderr)
        r = run(["detect", "-t", os.path.join(IMAGES, "portrait_a.jpg"), "--face-detector-model", "nope"])
        check("unknown detector name fails clearly", r.returncode != 0 and "yolo_face" in r.stderr, r.stderr)
        r = run(["detect", "-t", os.path.join(IMAGES, "portrait_a.jpg"), "--face-detector-model", "yunet",
                 "--face-detector-path", yunet, "--face-detector-size", "320x320"])
        check("fixed-size model with another size fails clearly", r.returncode != 0 and "640x640" in r.stderr,
              r.stderr)
        r = run(["detect", "-t", os.path.join(IMAGES, "portrait_a.jpg"), "-o", os.path.join(tmp, "x.bmp"),
                 "--face-detector-path", scrfd, "--face-detector-model", "scrfd"])
        check("unknown output extension fails clearly", r.returncode != 0 and ".png" in r.stderr, r.stderr)

    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
