"""inswapper_128 stand-in (and its float16 twin).

Names: InsightFace's inswapper_128.onnx has inputs 'target' (1x3x128x128,
RGB in [0, 1]) and 'source' (1x512, the embedding already multiplied by
emap and divided by its norm) and one output 'output' (1x3x128x128);
FaceFusion's face_swapper.py matches the inputs by these names
(`face_swapper_input.name == 'source'` / `'target'`) and reads output
[0][0]. FaceFusion takes emap from the LAST initializer of the graph
(`onnx.numpy_helper.to_array(model.graph.initializer[-1])`), so a 512x512
`emap` is appended last here too (not consumed by any node, as in the real
file).

Layout: reflection Pad + 7x7 Conv, three strided 3x3 Convs with LeakyRelu
(128 -> 16 pixels, 1024 channels), six AdaIN residual style blocks (per
block: two Pad+3x3 Convs, each followed by instance normalisation spelled
out as ReduceMean/Sub/Mul/ReduceMean/Add/Sqrt/Div and a style modulation
x*(1+gamma)+beta whose gamma/beta come from a Gemm on `source`), then
three nearest Resize x2 + 3x3 Conv + LeakyRelu stages, Pad + 7x7 Conv, Tanh
mapped to [0, 1]. Most weights sit in the style blocks' 1024-channel convs
and their style Gemms.
"""

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from .common import Builder, channels, FLOAT16


def padded_conv(b, x, cin, cout, k, stride=1, gain=2.0):
    pad = k // 2
    pads = b.const_i64('pads', [0, 0, pad, pad, 0, 0, pad, pad])
    x = b.node('Pad', [x, pads], 'pad', mode='reflect')
    return b.conv(x, cin, cout, k, stride, pad=0, gain=gain)


def instance_norm(b, x):
    mean = b.node('ReduceMean', [x], 'in_mean', axes=[2, 3], keepdims=1)
    centred = b.node('Sub', [x, mean], 'in_centred')
    var = b.node('ReduceMean', [b.mul(centred, centred)], 'in_var', axes=[2, 3], keepdims=1)
    std = b.node('Sqrt', [b.add(var, b.const_f32('eps', [1e-5]))], 'in_std')
    return b.node('Div', [centred, std], 'in_norm')


def adain(b, x, source, c, style_dim):
    style = b.gemm(source, style_dim, 2 * c, gain=0.1, prefix='style')
    gamma, beta = b.node('Split', [style, b.const_i64('split', [c, c])], 'style_split', outputs=2, axis=1)
    gamma = b.reshape(gamma, [1, c, 1, 1])
    beta = b.reshape(beta, [1, c, 1, 1])
    one = b.const_f32('one', [1.0])
    return b.add(b.mul(instance_norm(b, x), b.add(gamma, one)), beta)


def style_block(b, x, source, c, style_dim):
    y = padded_conv(b, x, c, c, 3, gain=1.0)
    y = b.relu(adain(b, y, source, c, style_dim))
    y = padded_conv(b, y, c, c, 3, gain=1.0)
    y = adain(b, y, source, c, style_dim)
    y = b.mul(y, b.const_f32('branch_scale', [0.3]))
    return b.add(x, y)


def build_inswapper_128(width=1.0):
    b = Builder('inswapper_128', 4001)
    c = [channels(n, width) for n in (128, 256, 512, 1024)]
    style_dim = 512
    target = b.input('target', [1, 3, 128, 128])
    source = b.input('source', [1, style_dim])
    x = b.leaky(padded_conv(b, target, 3, c[0], 7))
    x = b.leaky(b.conv(x, c[0], c[1], 3, 2))
    x = b.leaky(b.conv(x, c[1], c[2], 3, 2))
    x = b.leaky(b.conv(x, c[2], c[3], 3, 2))
    for _ in range(6):
        x = style_block(b, x, source, c[3], style_dim)
    x = b.leaky(b.conv(b.resize(x, 2.0), c[3], c[2], 3))
    x = b.leaky(b.conv(b.resize(x, 2.0), c[2], c[1], 3))
    x = b.leaky(b.conv(b.resize(x, 2.0), c[1], c[0], 3))
    x = padded_conv(b, x, c[0], 3, 7, gain=0.5)
    x = b.node('Tanh', [x], 'tanh')
    x = b.mul(b.add(x, b.const_f32('one', [1.0])), b.const_f32('half', [0.5]))
    b.output(x, 'output', [1, 3, 128, 128])
    # emap: a well-conditioned 512x512 matrix (orthogonal times 1.0 plus noise).
    q, _ = np.linalg.qr(b.rng.standard_normal((style_dim, style_dim)))
    b.initializer('emap', q.astype(np.float32))
    return b.model('stand-in for inswapper_128 (AdaIN style-block swapper)')


def to_float16(model):
    """Copy of `model` with float16 weights and float16 inputs/outputs."""
    model16 = type(model)()
    model16.CopyFrom(model)
    graph = model16.graph
    # Resize scales stay float32 (the operator requires tensor(float) there).
    keep_float = {node.input[2] for node in graph.node if node.op_type == 'Resize' and len(node.input) > 2}
    for index, tensor in enumerate(graph.initializer):
        if tensor.data_type == TensorProto.FLOAT and tensor.name not in keep_float:
            array = numpy_helper.to_array(tensor).astype(np.float16)
            graph.initializer[index].CopyFrom(numpy_helper.from_array(array, tensor.name))
    for value in list(graph.input) + list(graph.output):
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            value.type.tensor_type.elem_type = FLOAT16
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.name == 'to' and attribute.i == TensorProto.FLOAT:
                attribute.i = FLOAT16
    return model16


def build_inswapper_128_fp16(width=1.0):
    model = to_float16(build_inswapper_128(width))
    model.graph.name = 'inswapper_128_fp16'
    model.doc_string = 'stand-in for inswapper_128_fp16 (float16 weights and IO)'
    return model
