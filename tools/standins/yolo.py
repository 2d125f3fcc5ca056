"""YOLOv8 family stand-ins: yoloface_8n (face + 5 keypoints) and nsfw_1.

Names: FaceFusion feeds both models as {'input': frame} (face_detector.py
forward_with_yolo_face, content_analyser.py forward_nsfw) and reads output
[0] by position; the output is called 'output' here (FaceFusion renames its
re-exported models' tensors to input/output; the name itself is never read).

yoloface_8n: YOLOv8n-pose layout (width 0.25, depth 0.33): Conv+SiLU stem,
C2f blocks, SPPF (MaxPool 5 x3), FPN/PAN neck with nearest Resize + Concat,
a Pose head (box DFL branch, class branch, keypoint branch) decoded in-graph:
DFL = Reshape/Transpose/Softmax/1x1 Conv with arange weights, dist2bbox with
Sub/Add/Mul/Div/Concat, keypoints (k*2 + anchor - 0.5) * stride, Sigmoid
visibility. Output 1x20x8400 = cx, cy, w, h, score, 5 x (x, y, visibility).

nsfw_1: the same detector family without keypoints (YOLOv8 with a wider
backbone: an m-like width so the count lands near 20 M) and 5 classes
(FaceFusion takes max over rows 4: of 1x(4+classes)x8400).
"""

import numpy as np

from .common import Builder, channels


def conv_silu(b, x, cin, cout, k=3, s=1, prefix='conv'):
    return b.silu(b.conv(x, cin, cout, k, s, prefix=prefix))


def bottleneck(b, x, c, shortcut):
    y = conv_silu(b, x, c, c, 3)
    y = b.conv(y, c, c, 3, gain=0.5)
    y = b.silu(y)
    return b.add(x, y) if shortcut else y


def c2f(b, x, cin, cout, n, shortcut):
    hidden = cout // 2
    y = conv_silu(b, x, cin, 2 * hidden, 1)
    parts = b.node('Split', [y, b.const_i64('split', [hidden, hidden])], 'split', outputs=2, axis=1)
    parts = list(parts)
    current = parts[1]
    for _ in range(n):
        current = bottleneck(b, current, hidden, shortcut)
        parts.append(current)
    return conv_silu(b, b.concat(parts), (2 + n) * hidden, cout, 1)


def sppf(b, x, cin, cout):
    hidden = cin // 2
    y = conv_silu(b, x, cin, hidden, 1)
    p1 = b.maxpool(y, 5, 1, 2)
    p2 = b.maxpool(p1, 5, 1, 2)
    p3 = b.maxpool(p2, 5, 1, 2)
    return conv_silu(b, b.concat([y, p1, p2, p3]), 4 * hidden, cout, 1)


def backbone_and_neck(b, x, widths, depths):
    c1, c2, c3, c4, c5 = widths
    n1, n2, n3, n4 = depths
    x = conv_silu(b, x, 3, c1, 3, 2)
    x = conv_silu(b, x, c1, c2, 3, 2)
    x = c2f(b, x, c2, c2, n1, True)
    x = conv_silu(b, x, c2, c3, 3, 2)
    p3 = c2f(b, x, c3, c3, n2, True)
    x = conv_silu(b, p3, c3, c4, 3, 2)
    p4 = c2f(b, x, c4, c4, n3, True)
    x = conv_silu(b, p4, c4, c5, 3, 2)
    x = c2f(b, x, c5, c5, n4, True)
    p5 = sppf(b, x, c5, c5)
    # top-down
    up = b.resize(p5, 2.0)
    h4 = c2f(b, b.concat([up, p4]), c5 + c4, c4, n4, False)
    up = b.resize(h4, 2.0)
    out3 = c2f(b, b.concat([up, p3]), c4 + c3, c3, n4, False)
    # bottom-up
    down = conv_silu(b, out3, c3, c3, 3, 2)
    out4 = c2f(b, b.concat([down, h4]), c3 + c4, c4, n4, False)
    down = conv_silu(b, out4, c4, c4, 3, 2)
    out5 = c2f(b, b.concat([down, p5]), c4 + c5, c5, n4, False)
    return [out3, out4, out5], [c3, c4, c5]


def branch(b, x, cin, hidden, cout, final_gain=0.1):
    y = conv_silu(b, x, cin, hidden, 3)
    y = conv_silu(b, y, hidden, hidden, 3)
    return b.conv(y, hidden, cout, 1, gain=final_gain)


def make_anchors(size, strides):
    points, stride_rows = [], []
    for stride in strides:
        cells = size // stride
        ys, xs = np.meshgrid(np.arange(cells, dtype=np.float32) + 0.5, np.arange(cells, dtype=np.float32) + 0.5, indexing='ij')
        points.append(np.stack([xs.ravel(), ys.ravel()]))
        stride_rows.append(np.full((cells * cells,), stride, dtype=np.float32))
    return np.concatenate(points, axis=1), np.concatenate(stride_rows)[None, :]


def detect_head(b, features, feature_channels, classes, keypoints, size, width):
    """YOLOv8 Detect/Pose head with in-graph decoding; returns 1x(4+classes+3k)xA."""
    reg_max = 16
    box_hidden = max(channels(16, width), feature_channels[0] // 4, channels(64, width))
    cls_hidden = max(feature_channels[0], min(classes, 100))
    kpt_hidden = max(feature_channels[0] // 4, keypoints * 3) if keypoints else 0
    strides = [8, 16, 32]
    anchors_count = sum((size // s) ** 2 for s in strides)
    box_cls, kpt_raw = [], []
    for feature, cin in zip(features, feature_channels):
        box = branch(b, feature, cin, box_hidden, 4 * reg_max, final_gain=1.0)
        cls = branch(b, feature, cin, cls_hidden, classes)
        box_cls.append(b.reshape(b.concat([box, cls]), [1, 4 * reg_max + classes, -1]))
        if keypoints:
            kpt_raw.append(b.reshape(branch(b, feature, cin, kpt_hidden, keypoints * 3), [1, keypoints * 3, -1]))
    merged = b.concat(box_cls, axis=2)
    box, cls = b.node('Split', [merged, b.const_i64('split', [4 * reg_max, classes])], 'split', outputs=2, axis=1)
    # DFL: softmax over 16 bins, expectation via a fixed 1x1 conv
    dfl = b.reshape(box, [1, 4, reg_max, anchors_count])
    dfl = b.node('Transpose', [dfl], 'dfl_t', perm=[0, 2, 1, 3])
    dfl = b.node('Softmax', [dfl], 'dfl_softmax', axis=1)
    bins = b.initializer('dfl_w', np.arange(reg_max, dtype=np.float32).reshape(1, reg_max, 1, 1))
    dfl = b.node('Conv', [dfl, bins], 'dfl_conv', kernel_shape=[1, 1])
    dist = b.reshape(dfl, [1, 4, anchors_count])
    left_top, right_bottom = b.node('Split', [dist, b.const_i64('split', [2, 2])], 'split', outputs=2, axis=1)
    anchor_points, stride_row = make_anchors(size, strides)
    anchor_name = b.initializer('anchors', anchor_points[None])
    stride_name = b.initializer('strides', stride_row[None])
    x1y1 = b.node('Sub', [anchor_name, left_top], 'x1y1')
    x2y2 = b.node('Add', [anchor_name, right_bottom], 'x2y2')
    centre = b.node('Div', [b.add(x1y1, x2y2), b.const_f32('two', [2.0])], 'centre')
    size_wh = b.node('Sub', [x2y2, x1y1], 'wh')
    boxes = b.mul(b.concat([centre, size_wh]), stride_name)
    scores = b.node('Sigmoid', [cls], 'scores')
    parts = [boxes, scores]
    if keypoints:
        kpt = b.reshape(b.concat(kpt_raw, axis=2), [1, keypoints, 3, anchors_count])
        xy = b.slice(kpt, [0], [2], [2])
        visibility = b.node('Sigmoid', [b.slice(kpt, [2], [3], [2])], 'visibility')
        grid = b.initializer('kpt_anchors', (anchor_points - 0.5).reshape(1, 1, 2, anchors_count))
        xy = b.mul(b.add(b.mul(xy, b.const_f32('two', [2.0])), grid), b.reshape(stride_name, [1, 1, 1, anchors_count]))
        kpts = b.reshape(b.concat([xy, visibility], axis=2), [1, keypoints * 3, anchors_count])
        parts.append(kpts)
    return b.concat(parts, axis=1), anchors_count


def build_yolo(name, seed, width, widths, depths, classes, keypoints, size=640):
    b = Builder(name, seed)
    x = b.input('input', [1, 3, size, size])
    widths = [channels(c, width) for c in widths]
    features, feature_channels = backbone_and_neck(b, x, widths, depths)
    out, anchors = detect_head(b, features, feature_channels, classes, keypoints, size, width)
    b.output(out, 'output', [1, 4 + classes + keypoints * 3, anchors])
    return b


def build_yoloface_8n(width=1.0):
    b = build_yolo('yoloface_8n', 1001, width, [16, 32, 64, 128, 256], [1, 2, 2, 1], classes=1, keypoints=5)
    return b.model('stand-in for yoloface_8n (YOLOv8n-face)')


def build_nsfw_1(width=1.0):
    b = build_yolo('nsfw_1', 1011, width, [48, 96, 192, 352, 448], [2, 4, 4, 2], classes=5, keypoints=0)
    return b.model('stand-in for nsfw_1 (YOLOv8-style NSFW detector)')
