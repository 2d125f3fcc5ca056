"""Mask model stand-ins: bisenet_resnet_34 (face parser) and xseg_1 (occluder).

Names: face_masker.py forward_parse_face / forward_occlude_face feed
{'input': frame} and read output [0][0]; outputs are called 'output' here.

bisenet_resnet_34: BiSeNet as in the face-parsing.PyTorch export FaceFusion
uses (1x3x512x512 ImageNet-normalised RGB -> 1x19x512x512 logits, argmax
over classes): ResNet-34 backbone (7x7/2 Conv, MaxPool, BasicBlocks
[3, 4, 6, 3] with BN folded into Conv, Relu, Add), context path (global
ReduceMean + 1x1 Conv Resized back with run-time sizes, attention
refinement modules: 3x3 Conv, ReduceMean, 1x1 Conv, Sigmoid, Mul; nearest
Resize x2 + 3x3 Conv heads), feature fusion module (Concat, 1x1 Conv,
squeeze-excite attention, Mul, Add), output head 3x3 Conv + 1x1 Conv and a
bilinear Resize x8 back to 512.

xseg_1: FaceFusion's XSeg occluder takes NHWC 1x256x256x3 (BGR / 255) and
returns NHWC 1x256x256x1 in [0, 1]: Transpose in, a U-Net (Conv +
LeakyRelu pairs, MaxPool down to 8x8, nearest Resize + Conv up, Concat
skips), 1x1 Conv, Sigmoid, Transpose out.
"""

from .common import Builder, channels


def conv_bn_relu(b, x, cin, cout, k, stride=1, gain=2.0):
    return b.relu(b.conv(x, cin, cout, k, stride, gain=gain))


def basic_block(b, x, cin, cout, stride):
    y = conv_bn_relu(b, x, cin, cout, 3, stride)
    y = b.conv(y, cout, cout, 3, 1, gain=0.5)
    residual = b.conv(x, cin, cout, 1, stride, pad=0, gain=1.0) if (stride != 1 or cin != cout) else x
    return b.relu(b.add(y, residual))


def attention_refinement(b, x, cin, cout):
    feat = conv_bn_relu(b, x, cin, cout, 3)
    atten = b.node('ReduceMean', [feat], 'gap', axes=[2, 3], keepdims=1)
    atten = b.node('Sigmoid', [b.conv(atten, cout, cout, 1, pad=0, gain=1.0)], 'atten')
    return b.mul(feat, atten)


def build_bisenet_resnet_34(width=1.0):
    b = Builder('bisenet_resnet_34', 7001)
    c = [channels(n, width) for n in (64, 128, 256, 512)]
    mid = channels(128, width)
    fuse = channels(256, width)
    classes = 19
    x = b.input('input', [1, 3, 512, 512])
    y = conv_bn_relu(b, x, 3, c[0], 7, 2)
    y = b.maxpool(y, 3, 2, 1)
    features = []
    cin = c[0]
    for stage, (cout, blocks) in enumerate(zip(c, (3, 4, 6, 3))):
        for index in range(blocks):
            y = basic_block(b, y, cin, cout, 2 if (index == 0 and stage > 0) else 1)
            cin = cout
        features.append(y)
    feat8, feat16, feat32 = features[1], features[2], features[3]
    # context path
    avg = b.node('ReduceMean', [feat32], 'global_avg', axes=[2, 3], keepdims=1)
    avg = conv_bn_relu(b, avg, c[3], mid, 1)
    avg_up = b.resize_to(avg, feat32)
    feat32_sum = b.add(attention_refinement(b, feat32, c[3], mid), avg_up)
    feat32_up = conv_bn_relu(b, b.resize(feat32_sum, 2.0), mid, mid, 3)
    feat16_sum = b.add(attention_refinement(b, feat16, c[2], mid), feat32_up)
    feat16_up = conv_bn_relu(b, b.resize(feat16_sum, 2.0), mid, mid, 3)
    # feature fusion
    fused = conv_bn_relu(b, b.concat([feat8, feat16_up]), c[1] + mid, fuse, 1)
    atten = b.node('ReduceMean', [fused], 'gap', axes=[2, 3], keepdims=1)
    atten = b.relu(b.conv(atten, fuse, fuse // 4, 1, pad=0, bias=False))
    atten = b.node('Sigmoid', [b.conv(atten, fuse // 4, fuse, 1, pad=0, bias=False, gain=1.0)], 'atten')
    fused = b.add(b.mul(fused, atten), fused)
    # output head
    out = conv_bn_relu(b, fused, fuse, fuse, 3)
    out = b.conv(out, fuse, classes, 1, pad=0, bias=False, gain=1.0)
    scales = b.const_f32('resize_scales', [1.0, 1.0, 8.0, 8.0])
    out = b.node('Resize', [out, '', scales], 'resize', mode='linear', coordinate_transformation_mode='align_corners')
    b.output(out, 'output', [1, classes, 512, 512])
    return b.model('stand-in for bisenet_resnet_34 (BiSeNet, ResNet-34 backbone)')


def conv_pair(b, x, cin, cout):
    x = b.leaky(b.conv(x, cin, cout, 3), 0.1)
    return b.leaky(b.conv(x, cout, cout, 3), 0.1)


def build_xseg_1(width=1.0):
    b = Builder('xseg_1', 7011)
    widths = [channels(n, width) for n in (32, 64, 128, 256, 448, 448)]
    x = b.input('input', [1, 256, 256, 3])
    y = b.node('Transpose', [x], 'nchw', perm=[0, 3, 1, 2])
    skips = []
    cin = 3
    for level, cout in enumerate(widths):
        if level:
            y = b.maxpool(y, 2, 2)
        y = conv_pair(b, y, cin, cout)
        skips.append((y, cout))
        cin = cout
    skips.pop()
    for skip, cskip in reversed(skips):
        y = b.leaky(b.conv(b.resize(y, 2.0), cin, cskip, 3), 0.1)
        y = conv_pair(b, b.concat([y, skip]), 2 * cskip, cskip)
        cin = cskip
    y = b.node("Sigmoid", [b.conv(y, cin, 1, 1, pad=0, gain=40.0)], "mask")
    y = b.node('Transpose', [y], 'nhwc', perm=[0, 2, 3, 1])
    b.output(y, 'output', [1, 256, 256, 1])
    return b.model('stand-in for xseg_1 (XSeg U-Net occluder, NHWC)')
