#!/usr/bin/env python3
"""`facegraph detect` on the GPU finds the same faces as on the CPU.

For scrfd_2.5g and yunet_2023mar on every shared image: same face count,
each GPU box matched to a CPU box with IoU >= 0.99 and |score diff| <= 1e-3.
Prints 'N passed, M failed'.

    python3 tests/gpu/detect_gpu_vs_cpu.py FACEGRAPH SHARED_DIR
"""
import json
import os
import subprocess
import sys


def detect(fg, model, family, image, provider):
    r = subprocess.run([fg, "detect", "-t", image, "--json", "--face-detector-model", family,
                        "--face-detector-path", model, "--execution-providers", provider],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip()[-300:])
    return json.loads(r.stdout)["faces"]


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def main():
    fg, shared = sys.argv[1], sys.argv[2]
    passed = failed = 0
    images = sorted(f for f in os.listdir(os.path.join(shared, "images")) if f.endswith((".jpg", ".png")))
    for family, file in (("scrfd", "scrfd_2.5g.onnx"), ("yunet", "face_detection_yunet_2023mar.onnx")):
        model = os.path.join(shared, "models", file)
        for image in images:
            path = os.path.join(shared, "images", image)
            try:
                cpu = detect(fg, model, family, path, "cpu")
                gpu = detect(fg, model, family, path, "cuda")
            except (RuntimeError, ValueError, subprocess.TimeoutExpired) as e:
                failed += 1
                print("FAIL %s %s: %s" % (family, image, e))
                continue
            ok = len(cpu) == len(gpu)
            for g in gpu if ok else []:
                best = max(cpu, key=lambda c: iou(c["box"], g["box"]))
                ok &= iou(best["box"], g["box"]) >= 0.99 and abs(best["score"] - g["score"]) <= 1e-3
            passed += ok
            failed += not ok
            print("%s %s %s: %d faces on cpu, %d on cuda" % ("PASS" if ok else "FAIL", family, image, len(cpu), len(gpu)))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
