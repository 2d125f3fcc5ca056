"""Small graph builder shared by the stand-in generators.

A `Builder` collects nodes and initializers, names every tensor uniquely,
and hands out seeded random weights scaled so activations stay finite and
non-trivial (He-style for convolutions feeding rectifiers, smaller gains for
the last layer of residual branches). Every initializer is a parameter for the
purpose of the parameter count (the real files' count is estimated as
file size / 4, which also includes every stored constant).
"""

import math

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
FLOAT = TensorProto.FLOAT
FLOAT16 = TensorProto.FLOAT16
INT64 = TensorProto.INT64


def channels(count, width, multiple=4, minimum=4):
    """Channel count scaled by the width multiplier, rounded to `multiple`."""
    if width >= 1.0:
        return int(count)
    scaled = int(round(count * width / multiple)) * multiple
    return max(minimum, scaled)


class Builder:
    def __init__(self, graph_name, seed):
        self.graph_name = graph_name
        self.rng = np.random.default_rng(seed)
        self.nodes = []
        self.initializers = []
        self.graph_inputs = []
        self.graph_outputs = []
        self.used_names = set()
        self.parameter_count = 0

    # ---- naming -------------------------------------------------------
    def fresh(self, prefix):
        index = 0
        candidate = prefix
        while candidate in self.used_names:
            index += 1
            candidate = '%s_%d' % (prefix, index)
        self.used_names.add(candidate)
        return candidate

    # ---- graph io -----------------------------------------------------
    def input(self, name, shape, elem_type=FLOAT):
        self.used_names.add(name)
        self.graph_inputs.append(helper.make_tensor_value_info(name, elem_type, shape))
        return name

    def output(self, tensor, name, shape, elem_type=FLOAT):
        """Expose `tensor` as graph output `name`, renaming it everywhere (no Identity node)."""
        if tensor != name:
            self.used_names.add(name)
            for node in self.nodes:
                for index, value in enumerate(node.input):
                    if value == tensor:
                        node.input[index] = name
                for index, value in enumerate(node.output):
                    if value == tensor:
                        node.output[index] = name
        self.graph_outputs.append(helper.make_tensor_value_info(name, elem_type, shape))
        return name

    # ---- initializers -------------------------------------------------
    def initializer(self, prefix, array):
        name = self.fresh(prefix)
        array = np.asarray(array, order='C')  # keeps 0-d arrays 0-d
        self.initializers.append(numpy_helper.from_array(array, name))
        self.parameter_count += int(array.size)
        return name

    def const_i64(self, prefix, values):
        return self.initializer(prefix, np.asarray(values, dtype=np.int64))

    def const_f32(self, prefix, values):
        return self.initializer(prefix, np.asarray(values, dtype=np.float32))

    def normal(self, shape, std):
        return (self.rng.standard_normal(size=shape, dtype=np.float32) * np.float32(std)).astype(np.float32)

    def uniform(self, shape, low, high):
        return self.rng.uniform(low, high, size=shape).astype(np.float32)

    # ---- nodes --------------------------------------------------------
    def node(self, op_type, inputs, prefix=None, outputs=1, **attributes):
        prefix = prefix or op_type.lower()
        out_names = [self.fresh(prefix if outputs == 1 else '%s_out%d' % (prefix, i)) for i in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), out_names, name=self.fresh('n_' + prefix), **attributes))
        return out_names[0] if outputs == 1 else out_names

    # ---- layers -------------------------------------------------------
    def conv(self, x, cin, cout, kernel, stride=1, pad=None, groups=1, bias=True, gain=2.0, prefix='conv', dilation=1):
        if pad is None:
            pad = (kernel // 2) * dilation
        fan_in = cin // groups * kernel * kernel
        weight = self.initializer(prefix + '_w', self.normal((cout, cin // groups, kernel, kernel), math.sqrt(gain / fan_in)))
        inputs = [x, weight]
        if bias:
            inputs.append(self.initializer(prefix + '_b', self.normal((cout,), 0.02)))
        return self.node('Conv', inputs, prefix, kernel_shape=[kernel, kernel], strides=[stride, stride],
                         pads=[pad, pad, pad, pad], group=groups, dilations=[dilation, dilation])

    def batchnorm(self, x, count, prefix='bn', gamma=1.0):
        scale = self.initializer(prefix + '_scale', self.uniform((count,), 0.9, 1.1) * np.float32(gamma))
        shift = self.initializer(prefix + '_bias', self.normal((count,), 0.02))
        mean = self.initializer(prefix + '_mean', self.normal((count,), 0.02))
        var = self.initializer(prefix + '_var', self.uniform((count,), 0.9, 1.1))
        return self.node('BatchNormalization', [x, scale, shift, mean, var], prefix, epsilon=1e-5)

    def gemm(self, x, fin, fout, gain=1.0, bias=True, prefix='fc'):
        weight = self.initializer(prefix + '_w', self.normal((fout, fin), math.sqrt(gain / fin)))
        inputs = [x, weight]
        if bias:
            inputs.append(self.initializer(prefix + '_b', self.normal((fout,), 0.02)))
        return self.node('Gemm', inputs, prefix, transB=1)

    def linear(self, x, fin, fout, gain=1.0, prefix='linear'):
        """MatMul + Add (the way transformers are exported)."""
        weight = self.initializer(prefix + '_w', self.normal((fin, fout), math.sqrt(gain / fin)))
        bias = self.initializer(prefix + '_b', self.normal((fout,), 0.02))
        return self.node('Add', [self.node('MatMul', [x, weight], prefix + '_mm'), bias], prefix)

    def relu(self, x):
        return self.node('Relu', [x], 'relu')

    def leaky(self, x, alpha=0.2):
        return self.node('LeakyRelu', [x], 'lrelu', alpha=alpha)

    def silu(self, x):
        return self.node('Mul', [x, self.node('Sigmoid', [x], 'sigmoid')], 'silu')

    def prelu(self, x, count):
        slope = self.initializer('prelu_slope', np.full((count, 1, 1), 0.25, dtype=np.float32))
        return self.node('PRelu', [x, slope], 'prelu')

    def add(self, a, b):
        return self.node('Add', [a, b], 'add')

    def mul(self, a, b):
        return self.node('Mul', [a, b], 'mul')

    def concat(self, tensors, axis=1):
        return self.node('Concat', list(tensors), 'concat', axis=axis)

    def resize(self, x, factor, mode='nearest'):
        scales = self.const_f32('resize_scales', [1.0, 1.0, factor, factor])
        attributes = {'mode': mode}
        if mode == 'nearest':
            attributes['nearest_mode'] = 'floor'
            attributes['coordinate_transformation_mode'] = 'asymmetric'
        else:
            attributes['coordinate_transformation_mode'] = 'half_pixel' if factor >= 1 else 'pytorch_half_pixel'
        return self.node('Resize', [x, '', scales], 'resize', **attributes)

    def resize_to(self, x, like):
        """Resize `x` to the spatial size of `like` (shape computed at run time)."""
        shape = self.node('Shape', [like], 'shape')
        spatial = self.node('Slice', [shape, self.const_i64('s', [2]), self.const_i64('e', [4])], 'hw')
        lead = self.node('Slice', [self.node('Shape', [x], 'shape'), self.const_i64('s', [0]), self.const_i64('e', [2])], 'nc')
        sizes = self.node('Concat', [lead, spatial], 'sizes', axis=0)
        return self.node('Resize', [x, '', '', sizes], 'resize', mode='nearest',
                         coordinate_transformation_mode='asymmetric', nearest_mode='floor')

    def maxpool(self, x, kernel, stride, pad=0):
        return self.node('MaxPool', [x], 'maxpool', kernel_shape=[kernel, kernel], strides=[stride, stride], pads=[pad] * 4)

    def reshape(self, x, shape):
        return self.node('Reshape', [x, self.const_i64('shape', shape)], 'reshape')

    def slice(self, x, starts, ends, axes):
        return self.node('Slice', [x, self.const_i64('starts', starts), self.const_i64('ends', ends), self.const_i64('axes', axes)], 'slice')

    def layernorm(self, x, dim, prefix='ln'):
        scale = self.initializer(prefix + '_scale', self.uniform((dim,), 0.9, 1.1))
        shift = self.initializer(prefix + '_bias', self.normal((dim,), 0.02))
        return self.node('LayerNormalization', [x, scale, shift], prefix, axis=-1, epsilon=1e-5)

    # ---- model --------------------------------------------------------
    def model(self, doc=''):
        graph = helper.make_graph(self.nodes, self.graph_name, self.graph_inputs, self.graph_outputs, self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', OPSET)], producer_name='facegraph-standins',
                                  doc_string=doc)
        model.ir_version = 8
        return model


def count_parameters(model):
    total = 0
    for tensor in model.graph.initializer:
        total += int(np.prod(tensor.dims)) if len(tensor.dims) else 1
    return total
