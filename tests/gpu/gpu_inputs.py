"""Inputs for the GPU parity test and the GPU benchmark.

The same feeds as tests/parity_test.py (a shared photo resized to the model's
input and normalised as FaceFusion feeds it; other inputs seeded random),
without needing PIL: where PIL is missing (the GPU machine may lack it), or
the image is, a seeded synthetic image (smooth gradients plus noise, 0..255)
stands in for the photo.
"""
import os

import numpy as np

try:
    from PIL import Image
except ImportError:  # pragma: no cover - depends on the machine
    Image = None

# file stem -> (image, channel order, normalisation); as tests/parity_test.py
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

NP_TYPES = {1: np.float32, 10: np.float16, 11: np.float64, 7: np.int64, 6: np.int32, 2: np.uint8, 9: np.bool_}


def synthetic_image(h, w, seed=7):
    """HWC RGB float32 0..255: gradients, a few blobs, noise (seeded)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([x / max(w - 1, 1), y / max(h - 1, 1), (x + y) / max(h + w - 2, 1)], axis=2) * 200.0
    for _ in range(6):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0.05, 0.2) * min(h, w)
        blob = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r * r))
        img += blob[:, :, None] * rng.uniform(-80, 80, 3)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.float32)


def load_image(shared, name, h, w):
    path = os.path.join(shared, "images", name) if shared else ""
    if Image is not None and path and os.path.exists(path):
        img = Image.open(path).convert("RGB").resize((w, h), Image.BILINEAR)
        return np.asarray(img, dtype=np.float32)
    return synthetic_image(h, w)


def concrete_shape(value, default_hw=640):
    dims = []
    for i, d in enumerate(value.type.tensor_type.shape.dim):
        if d.HasField("dim_value") and d.dim_value > 0:
            dims.append(d.dim_value)
        else:
            dims.append(1 if i == 0 else default_hw)
    return dims


def make_inputs(path, model, shared, seed=1234):
    """{input name: array} for the model at `path`."""
    rng = np.random.default_rng(seed)
    stem = os.path.splitext(os.path.basename(path))[0]
    inits = {i.name for i in model.graph.initializer}
    feeds = {}
    for v in model.graph.input:
        if v.name in inits:
            continue
        shape = concrete_shape(v)
        dtype = NP_TYPES[v.type.tensor_type.elem_type]
        is_image = len(shape) == 4 and (shape[1] == 3 or shape[3] == 3) and \
            min(shape[-2:] if shape[1] == 3 else shape[1:3]) >= 32
        if is_image and dtype in (np.float32, np.float16):
            nhwc = shape[3] == 3 and shape[1] != 3
            h, w = (shape[1], shape[2]) if nhwc else (shape[2], shape[3])
            image, order, norm = IMAGE_FEEDS.get(stem, ("portrait_a.jpg", "rgb", lambda x: x / 255.0))
            x = load_image(shared, image, h, w)
            if order == "bgr":
                x = x[:, :, ::-1]
            x = norm(np.ascontiguousarray(x.transpose(2, 0, 1))).astype(np.float32)
            if nhwc:
                x = x.transpose(1, 2, 0)
            feeds[v.name] = np.ascontiguousarray(x[None].repeat(shape[0], axis=0)).astype(dtype)
        elif np.issubdtype(dtype, np.floating):
            feeds[v.name] = rng.standard_normal(shape).astype(dtype)
        else:
            feeds[v.name] = rng.integers(0, 2, shape).astype(dtype)
    return feeds


def default_shared(repo):
    """$FACEGRAPH_SHARED, else <repo>/.shared (the copy carried to the GPU
    machine), else <repo>/../shared."""
    env = os.environ.get("FACEGRAPH_SHARED")
    if env:
        return env
    for candidate in (os.path.join(repo, ".shared"), os.path.join(os.path.dirname(repo), "shared")):
        if os.path.isdir(os.path.join(candidate, "models")):
            return candidate
    return os.path.join(os.path.dirname(repo), "shared")
