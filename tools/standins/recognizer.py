"""arcface_w600k_r50 stand-in: InsightFace IResNet-50.

Names: FaceFusion feeds {'input': crop} (face_recognizer.py forward) and
reads output [0] (1x512); the output is called 'output' here. (InsightFace's
own w600k_r50.onnx uses 'input.1' / '683'; FaceFusion's copy is re-exported
with an 'input' input.)

Layout as exported from PyTorch with BN folded where it follows a conv:
3x3 stem Conv + PRelu, four stages [3, 4, 14, 3] of IBasicBlocks
(BatchNormalization, Conv 3x3, PRelu, Conv 3x3 with stride, folded BN,
1x1 strided Conv downsample, Add), final BatchNormalization, Flatten,
Gemm 512*7*7 -> 512 and a BatchNormalization over the 512 features.
"""

from .common import Builder, channels


def basic_block(b, x, cin, planes, stride, branch_gain):
    y = b.batchnorm(x, cin)
    y = b.conv(y, cin, planes, 3, 1, gain=1.0)
    y = b.prelu(y, planes)
    y = b.conv(y, planes, planes, 3, stride, gain=branch_gain)
    if stride != 1 or cin != planes:
        residual = b.conv(x, cin, planes, 1, stride, pad=0, gain=1.0)
    else:
        residual = x
    return b.add(y, residual)


def build_arcface_w600k_r50(width=1.0):
    b = Builder('arcface_w600k_r50', 3001)
    widths = [channels(c, width) for c in (64, 128, 256, 512)]
    features = 512  # the embedding keeps its size at every scale
    x = b.input('input', [1, 3, 112, 112])
    x = b.prelu(b.conv(x, 3, widths[0], 3, 1), widths[0])
    cin = widths[0]
    for planes, blocks in zip(widths, (3, 4, 14, 3)):
        for index in range(blocks):
            x = basic_block(b, x, cin, planes, 2 if index == 0 else 1, branch_gain=0.2)
            cin = planes
    x = b.batchnorm(x, cin)
    x = b.node('Flatten', [x], 'flatten', axis=1)
    x = b.gemm(x, cin * 7 * 7, features, gain=1.0)
    x = b.batchnorm(x, features)
    b.output(x, 'output', [1, features])
    return b.model('stand-in for arcface_w600k_r50 (IResNet-50)')
