"""Landmarker stand-ins: 2dfan4 (FAN, 4 stacked hourglasses) and fan_68_5.

Names: FaceFusion feeds both as {'input': ...} (face_landmarker.py
forward_with_2dfan4 / forward_fan_68_5). 2dfan4's outputs are read by
position: `face_landmark_68, face_heatmap = prediction` (landmarks 1x68x3 on
the 64 grid: x, y, score; heatmaps 1x68x64x64), so their names here
('landmarks', 'heatmaps') are descriptive only. fan_68_5's output [0][0] is
1x68x2, named 'output'.

2dfan4 follows Bulat & Tzimiropoulos' FAN: 7x7/2 stem, pre-activation
ConvBlocks (BN, ReLU, 3x3 conv; three branches of width out/2, out/4, out/4
concatenated, 1x1 downsample when widths differ), AveragePool, four
hourglasses of depth 4 with nearest Resize upsampling and intermediate
supervision (1x1 convs back into the trunk). The landmarks are decoded in
the graph from the last heatmaps: ArgMax / ReduceMax / Mod / Div / Cast.

fan_68_5 is a 4-layer MLP (Gemm + MatMul/Add with Relu) from the 10 input
coordinates to 136 outputs.
"""

import numpy as np

from .common import Builder, channels, FLOAT


def conv_block(b, x, cin, cout):
    half, quarter = cout // 2, cout // 4
    y = b.relu(b.batchnorm(x, cin))
    out1 = b.conv(y, cin, half, 3, bias=False, gain=1.0)
    y = b.relu(b.batchnorm(out1, half))
    out2 = b.conv(y, half, quarter, 3, bias=False, gain=1.0)
    y = b.relu(b.batchnorm(out2, quarter))
    out3 = b.conv(y, quarter, quarter, 3, bias=False, gain=1.0)
    out = b.concat([out1, out2, out3])
    # Keep the residual stream bounded: scale the branch before the add.
    out = b.mul(out, b.const_f32('branch_scale', [0.3]))
    if cin != cout:
        residual = b.conv(b.relu(b.batchnorm(x, cin)), cin, cout, 1, bias=False, gain=1.0)
    else:
        residual = x
    return b.add(out, residual)


def hourglass(b, x, level, c):
    up1 = conv_block(b, x, c, c)
    low1 = b.node('AveragePool', [x], 'avgpool', kernel_shape=[2, 2], strides=[2, 2])
    low1 = conv_block(b, low1, c, c)
    if level > 1:
        low2 = hourglass(b, low1, level - 1, c)
    else:
        low2 = conv_block(b, low1, c, c)
    low3 = conv_block(b, low2, c, c)
    up2 = b.resize(low3, 2.0)
    return b.add(up1, up2)


def build_2dfan4(width=1.0):
    b = Builder('2dfan4', 2001)
    c64, c128, c256 = channels(64, width), channels(128, width), channels(256, width)
    points = 68
    x = b.input('input', [1, 3, 256, 256])
    x = b.relu(b.batchnorm(b.conv(x, 3, c64, 7, 2), c64))
    x = conv_block(b, x, c64, c128)
    x = b.node('AveragePool', [x], 'avgpool', kernel_shape=[2, 2], strides=[2, 2])
    x = conv_block(b, x, c128, c128)
    previous = conv_block(b, x, c128, c256)
    heatmaps = None
    stacks = 4
    for stack in range(stacks):
        hg = hourglass(b, previous, 4, c256)
        ll = conv_block(b, hg, c256, c256)
        ll = b.relu(b.batchnorm(b.conv(ll, c256, c256, 1), c256))
        heatmaps = b.conv(ll, c256, points, 1, gain=0.05)
        if stack < stacks - 1:
            ll = b.conv(ll, c256, c256, 1, gain=0.3)
            back = b.conv(heatmaps, points, c256, 1, gain=0.3)
            previous = b.add(b.add(previous, ll), back)
    flat = b.reshape(heatmaps, [1, points, 64 * 64])
    index = b.node('ArgMax', [flat], 'argmax', axis=2, keepdims=1)
    score = b.node('ReduceMax', [flat], 'score', axes=[2], keepdims=1)
    grid = b.const_i64('grid', [64])
    xs = b.node('Cast', [b.node('Mod', [index, grid], 'mod')], 'x', to=FLOAT)
    ys = b.node('Cast', [b.node('Div', [index, grid], 'div')], 'y', to=FLOAT)
    landmarks = b.concat([xs, ys, score], axis=2)
    b.output(landmarks, 'landmarks', [1, points, 3])
    b.output(heatmaps, 'heatmaps', [1, points, 64, 64])
    return b.model('stand-in for 2dfan4 (FAN, 4 hourglasses)')


def build_fan_68_5(width=1.0):
    b = Builder('fan_68_5', 2011)
    hidden = channels(310, width, multiple=2)
    x = b.input('input', [1, 5, 2])
    x = b.reshape(x, [1, 10])
    x = b.relu(b.gemm(x, 10, hidden, gain=2.0))
    x = b.relu(b.linear(x, hidden, hidden, gain=2.0))
    x = b.relu(b.linear(x, hidden, hidden, gain=2.0))
    x = b.linear(x, hidden, 136, gain=1.0)
    b.output(b.reshape(x, [1, 68, 2]), 'output', [1, 68, 2])
    return b.model('stand-in for fan_68_5 (5 to 68 landmark MLP)')
