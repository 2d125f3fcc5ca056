#!/usr/bin/env python3
"""A small ONNX -> PyTorch runner: the PyTorch peer of the GPU benchmark.

Interprets an ONNX graph node by node with torch ops. Loading specialises it
for fixed input shapes: every value that depends only on initializers,
constants or shapes (Shape, shape arithmetic, Reshape targets, Resize scales,
...) is computed once, so the forward is pure tensor ops on the device with no
host synchronisation (and can be captured whole as a CUDA graph).

    runner = OnnxTorch("model.onnx", {"input": np_array}, device="cuda")
    outputs = runner(*torch_inputs)               # list of tensors, graph output order
    python3 bench/onnx_torch.py MODEL [--device cuda] [--runs 200]   # eager / graph timing

Timing (time_eager / time_graph): CUDA events around each forward (eager) or
graph replay, synchronised after each run, median over >= 200 runs after a
warm-up; the inputs and outputs stay on the device.
"""
import argparse
import math
import statistics
import sys
import time

import numpy as np
import onnx
from onnx import numpy_helper
import torch
import torch.nn.functional as F

TORCH_OF_ONNX = {1: torch.float32, 2: torch.uint8, 3: torch.int8, 5: torch.int16, 6: torch.int32, 7: torch.int64,
                 9: torch.bool, 10: torch.float16, 11: torch.float64, 16: torch.bfloat16}


class Unsupported(Exception):
    pass


def _attrs(node):
    out = {}
    for a in node.attribute:
        out[a.name] = onnx.helper.get_attribute_value(a)
        if isinstance(out[a.name], bytes):
            out[a.name] = out[a.name].decode()
    return out


def _host(v):
    """A static tensor as a python list (or scalar)."""
    return v.detach().cpu().tolist()


def _ints(v):
    if v is None:
        return None
    h = _host(v) if torch.is_tensor(v) else v
    return [int(x) for x in (h if isinstance(h, (list, tuple)) else [h])]


def _floats(v):
    if v is None:
        return None
    h = _host(v) if torch.is_tensor(v) else v
    return [float(x) for x in (h if isinstance(h, (list, tuple)) else [h])]


def _axis(a, rank):
    return a + rank if a < 0 else a


# ---------------------------------------------------------------- ops
# Each op: fn(ctx, inputs, attrs) -> tensor or list of tensors. `inputs` are
# tensors (None for an omitted optional input); ctx.static(i) says whether
# input i is fixed at load (its host value may then be read: reads happen
# during specialisation only, because a node whose host-read inputs are all
# static is re-created as a closure over those values, see _compile).

def _unary(fn):
    return lambda ctx, x, a: fn(x[0])


def _binary(fn):
    return lambda ctx, x, a: fn(x[0], x[1])


def _div(ctx, x, a):
    if x[0].is_floating_point():
        return torch.div(x[0], x[1])
    return torch.div(x[0], x[1], rounding_mode="trunc")


def _mod(ctx, x, a):
    if a.get("fmod", 0) or x[0].is_floating_point():
        return torch.fmod(x[0], x[1])
    return torch.remainder(x[0], x[1])


def _pow(ctx, x, a):
    y = torch.pow(x[0], x[1])
    return y.to(x[0].dtype)


def _prelu(ctx, x, a):
    return torch.where(x[0] >= 0, x[0], x[0] * x[1])


def _leaky(ctx, x, a):
    return F.leaky_relu(x[0], a.get("alpha", 0.01))


def _elu(ctx, x, a):
    return F.elu(x[0], a.get("alpha", 1.0))


def _hardsigmoid(ctx, x, a):
    alpha, beta = a.get("alpha", 0.2), a.get("beta", 0.5)
    return torch.clamp(x[0] * alpha + beta, 0.0, 1.0)


def _clip(ctx, x, a):
    lo, hi = a.get("min"), a.get("max")
    if len(x) > 1 and x[1] is not None:
        lo = float(ctx.host(x, 1)) if ctx.static(1) else x[1]
    if len(x) > 2 and x[2] is not None:
        hi = float(ctx.host(x, 2)) if ctx.static(2) else x[2]
    if lo is None and hi is None:
        return x[0]
    return torch.clamp(x[0], lo, hi)


def _softmax_like(fn):
    def op(ctx, x, a):
        v = x[0]
        if ctx.opset < 13:
            axis = _axis(a.get("axis", 1), v.dim())
            shape = v.shape
            return fn(v.reshape(int(np.prod(shape[:axis], dtype=np.int64)), -1), 1).reshape(shape)
        return fn(v, a.get("axis", -1))
    return op


def _hardmax(v, dim):
    return F.one_hot(torch.argmax(v, dim=dim), v.shape[dim]).movedim(-1, dim).to(v.dtype)


def _cast(ctx, x, a):
    return x[0].to(TORCH_OF_ONNX[a["to"]])


def _concat(ctx, x, a):
    parts = [t for t in x if t is not None and t.numel() > 0] or [x[0]]
    return torch.cat(parts, dim=a["axis"])


def _reshape(ctx, x, a):
    shape = ctx.ints(x, 1) if len(x) > 1 else list(a["shape"])
    if not a.get("allowzero", 0):
        shape = [x[0].shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return x[0].reshape(shape)


def _transpose(ctx, x, a):
    perm = a.get("perm", list(range(x[0].dim() - 1, -1, -1)))
    return x[0].permute(*perm)


def _flatten(ctx, x, a):
    axis = _axis(a.get("axis", 1), x[0].dim())
    lead = int(np.prod(x[0].shape[:axis], dtype=np.int64))
    return x[0].reshape(lead, -1)


def _squeeze(ctx, x, a):
    axes = ctx.ints(x, 1) if len(x) > 1 and x[1] is not None else a.get("axes")
    v = x[0]
    if axes is None:
        return v.squeeze()
    for ax in sorted((_axis(i, v.dim()) for i in axes), reverse=True):
        v = v.squeeze(ax)
    return v


def _unsqueeze(ctx, x, a):
    axes = ctx.ints(x, 1) if len(x) > 1 and x[1] is not None else a["axes"]
    v = x[0]
    rank = v.dim() + len(axes)
    for ax in sorted(_axis(i, rank) for i in axes):
        v = v.unsqueeze(ax)
    return v


def _slice(ctx, x, a):
    v = x[0]
    if ctx.opset < 10:
        starts, ends, axes, steps = a["starts"], a["ends"], a.get("axes"), None
    else:
        starts, ends = ctx.ints(x, 1), ctx.ints(x, 2)
        axes = ctx.ints(x, 3) if len(x) > 3 and x[3] is not None else None
        steps = ctx.ints(x, 4) if len(x) > 4 and x[4] is not None else None
    axes = axes or list(range(len(starts)))
    steps = steps or [1] * len(starts)
    index = [slice(None)] * v.dim()
    flips = []
    for s, e, ax, st in zip(starts, ends, axes, steps):
        ax = _axis(ax, v.dim())
        n = v.shape[ax]
        if st > 0:
            s = max(0, min(n, s + n if s < 0 else s))
            e = max(0, min(n, e + n if e < 0 else e))
            index[ax] = slice(s, max(s, e), st)
        else:  # negative step: pick the elements ONNX picks, then flip
            s = max(-1, min(n - 1, s + n if s < 0 else s))
            e = max(-1, min(n - 1, e + n if e < 0 else e))
            picked = list(range(s, e, st))
            if not picked:
                index[ax] = slice(0, 0)
            else:
                lo = picked[-1]
                index[ax] = slice(lo, picked[0] + 1, -st)
                flips.append(ax)
    y = v[tuple(index)]
    if flips:
        y = torch.flip(y, flips)
    return y


def _gather(ctx, x, a):
    v, idx = x[0], x[1]
    axis = _axis(a.get("axis", 0), v.dim())
    if ctx.static(1) and idx.dim() == 0:
        i = int(ctx.host(x, 1))
        return v.select(axis, i + v.shape[axis] if i < 0 else i)
    if ctx.static(1) and idx.dim() == 1:
        h = [i + v.shape[axis] if i < 0 else i for i in ctx.host(x, 1)]
        if h and h == list(range(h[0], h[0] + len(h))):  # a contiguous run: a view
            return v.narrow(axis, h[0], len(h))
        idx = ctx.memo("gather_index", lambda: torch.tensor(h, dtype=torch.int64, device=v.device))
        return torch.index_select(v, axis, idx)
    idx = torch.where(idx < 0, idx + v.shape[axis], idx).long()
    flat = torch.index_select(v, axis, idx.reshape(-1))
    shape = list(v.shape[:axis]) + list(idx.shape) + list(v.shape[axis + 1:])
    return flat.reshape(shape)


def _gather_elements(ctx, x, a):
    v, idx = x[0], x[1]
    axis = _axis(a.get("axis", 0), v.dim())
    idx = torch.where(idx < 0, idx + v.shape[axis], idx).long()
    return torch.gather(v, axis, idx)


def _split(ctx, x, a):
    v = x[0]
    axis = _axis(a.get("axis", 0), v.dim())
    sizes = ctx.ints(x, 1) if len(x) > 1 and x[1] is not None else a.get("split")
    if sizes is None:
        n = a.get("num_outputs", ctx.n_outputs)
        chunk = -(-v.shape[axis] // n)
        sizes = [min(chunk, v.shape[axis] - chunk * i) for i in range(n)]
    return list(torch.split(v, list(sizes), dim=axis))


def _expand(ctx, x, a):
    shape = ctx.ints(x, 1)
    out = torch.broadcast_shapes(tuple(x[0].shape), tuple(shape))
    return x[0].expand(out)


def _tile(ctx, x, a):
    return x[0].repeat(*ctx.ints(x, 1))


def _where(ctx, x, a):
    return torch.where(x[0], x[1], x[2])


def _shape(ctx, x, a):
    shape = list(x[0].shape)
    start, end = a.get("start", 0), a.get("end", len(shape))
    return torch.tensor(shape[start:end] if len(shape) else [], dtype=torch.int64, device=ctx.device)


def _size(ctx, x, a):
    return torch.tensor(x[0].numel(), dtype=torch.int64, device=ctx.device)


def _constant(ctx, x, a):
    if "value" in a:
        arr = numpy_helper.to_array(a["value"])
    elif "value_float" in a:
        arr = np.array(a["value_float"], np.float32)
    elif "value_int" in a:
        arr = np.array(a["value_int"], np.int64)
    elif "value_floats" in a:
        arr = np.array(a["value_floats"], np.float32)
    elif "value_ints" in a:
        arr = np.array(a["value_ints"], np.int64)
    else:
        raise Unsupported("Constant without a supported value attribute")
    return torch.from_numpy(np.array(arr)).to(ctx.device)


def _constant_of_shape(ctx, x, a):
    value = numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1, np.float32)
    t = torch.from_numpy(np.array(value)).to(ctx.device)
    return t.reshape(()).expand(ctx.ints(x, 0)).clone()


def _range(ctx, x, a):
    start, limit, delta = (ctx.host(x, k) for k in range(3))
    return torch.arange(start, limit, delta, dtype=x[0].dtype, device=ctx.device)


def _pads_for(a, spatial, kernel, strides, dilations, in_shape):
    """ONNX pads [b0, b1, ..., e0, e1, ...] including auto_pad SAME_*."""
    auto = a.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads_b, pads_e = [], []
        for i in range(spatial):
            n = in_shape[2 + i]
            out = -(-n // strides[i])
            total = max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - n)
            small, big = total // 2, total - total // 2
            pads_b.append(small if auto == "SAME_UPPER" else big)
            pads_e.append(big if auto == "SAME_UPPER" else small)
        return pads_b + pads_e
    if auto == "VALID":
        return [0] * (2 * spatial)
    return list(a.get("pads", [0] * (2 * spatial)))


def _torch_pad(pads, spatial):
    """ONNX [b..., e...] for the last `spatial` dims -> F.pad order (last dim first)."""
    out = []
    for i in reversed(range(spatial)):
        out += [pads[i], pads[i + spatial]]
    return out


def _conv(ctx, x, a):
    v, w = x[0], x[1]
    b = x[2] if len(x) > 2 else None
    spatial = v.dim() - 2
    kernel = list(w.shape[2:])
    strides = list(a.get("strides", [1] * spatial))
    dil = list(a.get("dilations", [1] * spatial))
    pads = _pads_for(a, spatial, kernel, strides, dil, v.shape)
    fn = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[spatial]
    if pads[:spatial] == pads[spatial:]:
        return fn(v, w, b, strides, pads[:spatial], dil, a.get("group", 1))
    v = F.pad(v, _torch_pad(pads, spatial))
    return fn(v, w, b, strides, 0, dil, a.get("group", 1))


def _conv_transpose(ctx, x, a):
    v, w = x[0], x[1]
    b = x[2] if len(x) > 2 else None
    spatial = v.dim() - 2
    if "output_shape" in a or a.get("auto_pad", "NOTSET") != "NOTSET":
        raise Unsupported("ConvTranspose with output_shape or auto_pad")
    strides = list(a.get("strides", [1] * spatial))
    dil = list(a.get("dilations", [1] * spatial))
    pads = list(a.get("pads", [0] * (2 * spatial)))
    opad = list(a.get("output_padding", [0] * spatial))
    fn = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[spatial]
    if pads[:spatial] == pads[spatial:]:
        return fn(v, w, b, strides, pads[:spatial], opad, a.get("group", 1), dil)
    y = fn(v, w, b, strides, 0, opad, a.get("group", 1), dil)
    index = [slice(None), slice(None)] + [slice(pads[i], y.shape[2 + i] - pads[spatial + i]) for i in range(spatial)]
    return y[tuple(index)]


def _pool(kind):
    def op(ctx, x, a):
        v = x[0]
        spatial = v.dim() - 2
        kernel = list(a["kernel_shape"])
        strides = list(a.get("strides", [1] * spatial))
        dil = list(a.get("dilations", [1] * spatial))
        pads = _pads_for(a, spatial, kernel, strides, dil, v.shape)
        ceil = bool(a.get("ceil_mode", 0))
        if kind == "max":
            fn = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[spatial]
            if pads[:spatial] != pads[spatial:] or any(p * 2 > k for p, k in zip(pads, kernel * 2)):
                v = F.pad(v, _torch_pad(pads, spatial), value=-math.inf)
                pads = [0] * (2 * spatial)
            return fn(v, kernel, strides, pads[:spatial], dil, ceil)
        fn = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[spatial]
        include = bool(a.get("count_include_pad", 0))
        if pads[:spatial] != pads[spatial:] or any(p * 2 > k for p, k in zip(pads, kernel * 2)):
            if not include:
                raise Unsupported("AveragePool with asymmetric pads and count_include_pad=0")
            v = F.pad(v, _torch_pad(pads, spatial))
            pads = [0] * (2 * spatial)
        return fn(v, kernel, strides, pads[:spatial], ceil, include)
    return op


def _global_pool(kind):
    def op(ctx, x, a):
        dims = tuple(range(2, x[0].dim()))
        if kind == "avg":
            return x[0].mean(dim=dims, keepdim=True)
        return x[0].amax(dim=dims, keepdim=True)
    return op


def _batchnorm(ctx, x, a):
    v, scale, bias, mean, var = x[:5]
    return F.batch_norm(v, mean, var, scale, bias, False, 0.0, a.get("epsilon", 1e-5))


def _instancenorm(ctx, x, a):
    return F.instance_norm(x[0], weight=x[1], bias=x[2], eps=a.get("epsilon", 1e-5))


def _layernorm(ctx, x, a):
    v = x[0]
    axis = _axis(a.get("axis", -1), v.dim())
    shape = tuple(v.shape[axis:])
    scale = x[1]
    bias = x[2] if len(x) > 2 else None
    eps = a.get("epsilon", 1e-5)
    if tuple(scale.shape) == shape and (bias is None or tuple(bias.shape) == shape):
        return F.layer_norm(v, shape, scale, bias, eps)
    y = F.layer_norm(v, shape, None, None, eps) * scale
    return y + bias if bias is not None else y


def _gemm(ctx, x, a):
    A, B = x[0], x[1]
    C = x[2] if len(x) > 2 else None
    alpha, beta = a.get("alpha", 1.0), a.get("beta", 1.0)
    if a.get("transA", 0):
        A = A.t()
    if a.get("transB", 0) and alpha == 1.0 and (C is None or beta == 1.0):
        return F.linear(A, B, C)  # B is [out, in], as torch stores weights
    if a.get("transB", 0):
        B = B.t()
    y = torch.matmul(A, B)
    if alpha != 1.0:
        y = y * alpha
    if C is not None:
        y = y + (C * beta if beta != 1.0 else C)
    return y


def _reduce(fn_name):
    def op(ctx, x, a):
        v = x[0]
        axes = a.get("axes")
        if len(x) > 1 and x[1] is not None:
            axes = ctx.ints(x, 1)
        keep = bool(a.get("keepdims", 1))
        if not axes:
            if a.get("noop_with_empty_axes", 0):
                return v
            axes = list(range(v.dim()))
        axes = tuple(_axis(i, v.dim()) for i in axes)
        if fn_name == "mean":
            return v.mean(dim=axes, keepdim=keep)
        if fn_name == "sum":
            return v.sum(dim=axes, keepdim=keep)
        if fn_name == "max":
            return v.amax(dim=axes, keepdim=keep)
        if fn_name == "min":
            return v.amin(dim=axes, keepdim=keep)
        if fn_name == "sumsquare":
            return (v * v).sum(dim=axes, keepdim=keep)
        if fn_name == "l2":
            return torch.sqrt((v * v).sum(dim=axes, keepdim=keep))
        if fn_name == "prod":
            y = v
            for ax in sorted(axes, reverse=True):
                y = y.prod(dim=ax, keepdim=keep)
            return y
        raise Unsupported(fn_name)
    return op


def _arg(kind):
    def op(ctx, x, a):
        v = x[0]
        axis = _axis(a.get("axis", 0), v.dim())
        keep = bool(a.get("keepdims", 1))
        if a.get("select_last_index", 0):
            v = torch.flip(v, [axis])
            r = (torch.argmax if kind == "max" else torch.argmin)(v, dim=axis, keepdim=keep)
            return v.shape[axis] - 1 - r
        return (torch.argmax if kind == "max" else torch.argmin)(v, dim=axis, keepdim=keep)
    return op


def _pad(ctx, x, a):
    v = x[0]
    if ctx.opset < 11:
        pads, value = list(a["pads"]), a.get("value", 0.0)
    else:
        pads = ctx.ints(x, 1)
        value = float(ctx.host(x, 2)) if len(x) > 2 and x[2] is not None and x[2].numel() else 0.0
    rank = v.dim()
    if len(x) > 3 and x[3] is not None:  # opset 18 axes
        axes = [_axis(i, rank) for i in ctx.ints(x, 3)]
        full = [0] * (2 * rank)
        for k, ax in enumerate(axes):
            full[ax], full[rank + ax] = pads[k], pads[len(axes) + k]
        pads = full
    mode = a.get("mode", "constant")
    # F.pad pads the last dims; drop leading dims with no padding
    first = 0
    while first < rank and pads[first] == 0 and pads[rank + first] == 0:
        first += 1
    if first == rank:
        return v
    spatial = rank - first
    tp = _torch_pad(pads[first:rank] + pads[rank + first:], spatial)
    if mode == "constant":
        return F.pad(v, tp, value=value)
    tmode = {"reflect": "reflect", "edge": "replicate", "wrap": "circular"}[mode]
    if any(p < 0 for p in tp):
        raise Unsupported("Pad %s with negative pads" % mode)
    # torch's reflect/replicate want (N, C, spatial...) with 1-3 padded dims
    lead = max(0, rank - 2 - spatial)
    if spatial > 3:
        raise Unsupported("Pad %s over more than 3 dims" % mode)
    shape = v.shape
    if rank - spatial < 2:  # add unit batch/channel dims
        extra = 2 - (rank - spatial)
        y = F.pad(v.reshape((1,) * extra + tuple(shape)), tp, mode=tmode)
        return y.reshape(y.shape[extra:])
    if lead:
        y = F.pad(v.reshape((-1,) + tuple(shape[rank - spatial - 1:])), tp, mode=tmode)
        return y.reshape(tuple(shape[:rank - spatial]) + tuple(y.shape[-spatial:]))
    return F.pad(v, tp, mode=tmode)


# -------- Resize / Upsample
def _resize_geometry(ctx, x, a, op_type):
    """(out_shape, scales per dim) from attributes and static inputs."""
    v = x[0]
    rank = v.dim()
    scales = sizes = None
    if op_type == "Upsample":
        scales = ctx.floats(x, 1) if len(x) > 1 else list(a["scales"])
    elif ctx.opset < 11:
        scales = ctx.floats(x, 1)
    else:
        if len(x) > 3 and x[3] is not None and x[3].numel():
            sizes = ctx.ints(x, 3)
        elif len(x) > 2 and x[2] is not None and x[2].numel():
            scales = ctx.floats(x, 2)
    if "axes" in a:
        axes = [_axis(i, rank) for i in a["axes"]]
        full_s, full_z = [1.0] * rank, list(v.shape)
        for k, ax in enumerate(axes):
            if scales:
                full_s[ax] = scales[k]
            if sizes:
                full_z[ax] = sizes[k]
        scales = full_s if scales else None
        sizes = full_z if sizes else None
    if sizes is not None:
        if a.get("keep_aspect_ratio_policy", "stretch") != "stretch":
            raise Unsupported("Resize keep_aspect_ratio_policy")
        out = list(sizes)
        scales = [o / i for o, i in zip(out, v.shape)]
    else:
        out = [int(math.floor(i * s)) for i, s in zip(v.shape, scales)]
    return out, scales


def _source_coords(mode, n_in, n_out, scale):
    d = np.arange(n_out, dtype=np.float64)
    if mode == "half_pixel":
        return (d + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (d + 0.5) / scale - 0.5 if n_out > 1 else np.zeros(n_out)
    if mode == "align_corners":
        return d * (n_in - 1) / (n_out - 1) if n_out > 1 else np.zeros(n_out)
    if mode == "asymmetric":
        return d / scale
    if mode == "half_pixel_symmetric":
        adj = n_out / (scale * n_in)
        center = n_in / 2.0
        offset = center * (1 - adj)
        return offset + (d + 0.5) / scale - 0.5
    raise Unsupported("Resize coordinate_transformation_mode %s" % mode)


def _nearest_index(nearest_mode, src, n_in):
    if nearest_mode == "round_prefer_floor":
        idx = np.where(src == np.floor(src) + 0.5, np.floor(src), np.round(src))
    elif nearest_mode == "round_prefer_ceil":
        idx = np.where(src == np.floor(src) + 0.5, np.ceil(src), np.round(src))
    elif nearest_mode == "floor":
        idx = np.floor(src)
    elif nearest_mode == "ceil":
        idx = np.ceil(src)
    else:
        raise Unsupported("Resize nearest_mode %s" % nearest_mode)
    return np.clip(idx, 0, n_in - 1).astype(np.int64)


class _ResizePlan:
    """Resize specialised for a fixed input shape: F.interpolate where it is
    exactly ONNX's mapping, else gathers (nearest) or separable lerps (linear)."""

    def __init__(self, ctx, x, a, op_type):
        v = x[0]
        self.out, scales = _resize_geometry(ctx, x, a, op_type)
        mode = a.get("mode", "nearest")
        coord = a.get("coordinate_transformation_mode", "half_pixel" if op_type == "Resize" and ctx.opset >= 11
                      else "asymmetric")
        if op_type == "Upsample" or ctx.opset < 11:
            coord = "asymmetric"
        nearest_mode = a.get("nearest_mode", "round_prefer_floor") if op_type == "Resize" and ctx.opset >= 11 else "floor"
        if op_type == "Upsample" or ctx.opset < 11:
            nearest_mode = "floor"
        self.mode = mode
        self.steps = []  # (dim, kind, data)
        rank = v.dim()
        resized = [d for d in range(rank) if self.out[d] != v.shape[d] or scales[d] != 1.0]
        self.fast = None
        if mode == "nearest":
            for d in resized:
                idx = _nearest_index(nearest_mode, _source_coords(coord, v.shape[d], self.out[d], scales[d]), v.shape[d])
                self.steps.append((d, "gather", torch.from_numpy(idx).to(ctx.device)))
            # torch 'nearest': src = floor(dst * in / out)
            if rank >= 3 and all(d >= 2 for d in resized) and rank <= 5:
                same = True
                for d, _, idx in self.steps:
                    n_in, n_out = v.shape[d], self.out[d]
                    # ATen computes the scale and the product in float32
                    scale32 = np.float32(n_in) / np.float32(n_out)
                    prod = np.arange(n_out, dtype=np.float32) * scale32
                    mine = np.minimum(np.floor(prod), n_in - 1).astype(np.int64)
                    same &= bool(np.array_equal(mine, idx.cpu().numpy()))
                if same:
                    self.fast = ("nearest", tuple(self.out[2:]))
        elif mode == "linear":
            if rank == 4 and all(d >= 2 for d in resized) and coord in ("half_pixel", "pytorch_half_pixel",
                                                                         "align_corners"):
                exact = coord == "align_corners" or all(
                    abs(self.out[d] / v.shape[d] - scales[d]) < 1e-6 for d in resized)
                if exact and not (coord == "pytorch_half_pixel" and min(self.out[2:]) <= 1):
                    self.fast = ("bilinear", tuple(self.out[2:]), coord == "align_corners")
            if self.fast is None:
                for d in resized:
                    n_in = v.shape[d]
                    src = _source_coords(coord, n_in, self.out[d], scales[d])
                    src = np.clip(src, 0, n_in - 1)
                    lo = np.floor(src).astype(np.int64)
                    hi = np.minimum(lo + 1, n_in - 1)
                    frac = (src - lo).astype(np.float32)
                    shape = [1] * rank
                    shape[d] = -1
                    self.steps.append((d, "lerp", (torch.from_numpy(lo).to(ctx.device),
                                                   torch.from_numpy(hi).to(ctx.device),
                                                   torch.from_numpy(frac).reshape(shape).to(ctx.device))))
        else:
            raise Unsupported("Resize mode %s" % mode)

    def __call__(self, v):
        if self.fast and self.fast[0] == "nearest":
            return F.interpolate(v, size=self.fast[1], mode="nearest")
        if self.fast and self.fast[0] == "bilinear":
            return F.interpolate(v, size=self.fast[1], mode="bilinear", align_corners=self.fast[2])
        for d, kind, data in self.steps:
            if kind == "gather":
                v = torch.index_select(v, d, data)
            else:
                lo, hi, frac = data
                a0, a1 = torch.index_select(v, d, lo), torch.index_select(v, d, hi)
                v = a0 + (a1 - a0) * frac.to(v.dtype)
        return v


OPS = {
    "Relu": _unary(F.relu), "Sigmoid": _unary(torch.sigmoid), "Tanh": _unary(torch.tanh),
    "Exp": _unary(torch.exp), "Sqrt": _unary(torch.sqrt), "Erf": _unary(torch.erf), "Abs": _unary(torch.abs),
    "Neg": _unary(torch.neg), "Floor": _unary(torch.floor), "Ceil": _unary(torch.ceil), "Log": _unary(torch.log),
    "Reciprocal": _unary(torch.reciprocal), "Softplus": _unary(F.softplus), "Sin": _unary(torch.sin),
    "Cos": _unary(torch.cos), "Not": _unary(torch.logical_not), "Round": _unary(torch.round),
    "Identity": _unary(lambda v: v), "Dropout": _unary(lambda v: v), "Sign": _unary(torch.sign),
    "HardSwish": _unary(F.hardswish), "Softsign": _unary(F.softsign),
    "LeakyRelu": _leaky, "PRelu": _prelu, "Elu": _elu, "HardSigmoid": _hardsigmoid, "Clip": _clip,
    "Add": _binary(torch.add), "Sub": _binary(torch.sub), "Mul": _binary(torch.mul), "Div": _div, "Pow": _pow,
    "Mod": _mod, "Max": lambda c, x, a: _fold(torch.maximum, x), "Min": lambda c, x, a: _fold(torch.minimum, x),
    "Sum": lambda c, x, a: _fold(torch.add, x),
    "Equal": _binary(torch.eq), "Greater": _binary(torch.gt), "Less": _binary(torch.lt),
    "GreaterOrEqual": _binary(torch.ge), "LessOrEqual": _binary(torch.le),
    "And": _binary(torch.logical_and), "Or": _binary(torch.logical_or), "Xor": _binary(torch.logical_xor),
    "Where": _where, "Cast": _cast, "Concat": _concat, "Reshape": _reshape, "Transpose": _transpose,
    "Flatten": _flatten, "Squeeze": _squeeze, "Unsqueeze": _unsqueeze, "Slice": _slice, "Gather": _gather,
    "GatherElements": _gather_elements, "Split": _split, "Expand": _expand, "Tile": _tile, "Shape": _shape,
    "Size": _size, "Constant": _constant, "ConstantOfShape": _constant_of_shape, "Range": _range,
    "Conv": _conv, "ConvTranspose": _conv_transpose, "MaxPool": _pool("max"), "AveragePool": _pool("avg"),
    "GlobalAveragePool": _global_pool("avg"), "GlobalMaxPool": _global_pool("max"),
    "BatchNormalization": _batchnorm, "InstanceNormalization": _instancenorm, "LayerNormalization": _layernorm,
    "Softmax": _softmax_like(lambda v, d: torch.softmax(v, d)),
    "LogSoftmax": _softmax_like(lambda v, d: torch.log_softmax(v, d)), "Hardmax": _softmax_like(_hardmax),
    "Gemm": _gemm, "MatMul": _binary(torch.matmul),
    "ReduceMean": _reduce("mean"), "ReduceSum": _reduce("sum"), "ReduceMax": _reduce("max"),
    "ReduceMin": _reduce("min"), "ReduceProd": _reduce("prod"), "ReduceSumSquare": _reduce("sumsquare"),
    "ReduceL2": _reduce("l2"), "ArgMax": _arg("max"), "ArgMin": _arg("min"), "Pad": _pad,
}
# Ops whose output is known once the input *shapes* are (not their values).
SHAPE_ONLY = {"Shape", "Size"}
# Ops that read host values of some inputs: those inputs must be static for a
# sync-free forward (index -> needed).
HOST_INPUTS = {"Reshape": [1], "Slice": [1, 2, 3, 4], "Squeeze": [1], "Unsqueeze": [1], "Split": [1],
               "Expand": [1], "Tile": [1], "Pad": [1, 2, 3], "Resize": [1, 2, 3], "Upsample": [1], "Clip": [],
               "ReduceMean": [1], "ReduceSum": [1], "ReduceMax": [1], "ReduceMin": [1], "ReduceProd": [1],
               "ConstantOfShape": [0], "Range": [0, 1, 2]}


def _fold(fn, xs):
    y = xs[0]
    for t in xs[1:]:
        y = fn(y, t)
    return y


class _Ctx:
    def __init__(self, device, opset):
        self.device = device
        self.opset = opset
        self.n_outputs = 1
        self.static_flags = ()
        self.cache = {}

    def static(self, i):
        return i < len(self.static_flags) and self.static_flags[i]

    # Host values of static inputs are read once (at specialisation) and
    # kept: the same tensors come back on every forward, and reading them
    # again would synchronise (and break CUDA graph capture).
    def memo(self, key, make):
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]

    def host(self, x, i):
        if not self.static(i):
            raise Unsupported("input %d is read on the host but is not constant" % i)
        return self.memo(("host", i), lambda: _host(x[i]))

    def ints(self, x, i):
        return _ints(self.host(x, i))

    def floats(self, x, i):
        return _floats(self.host(x, i))


class OnnxTorch:
    """An ONNX model specialised for fixed input shapes, run with torch ops."""

    def __init__(self, path, example_inputs, device="cuda", model=None):
        model = model if model is not None else onnx.load(path)
        self.device = torch.device(device)
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
        g = model.graph
        consts = {}
        for init in g.initializer:
            arr = numpy_helper.to_array(init)
            consts[init.name] = torch.from_numpy(np.array(arr)).to(self.device)
        self.input_names = [i.name for i in g.input if i.name not in consts]
        self.output_names = [o.name for o in g.output]
        missing = [n for n in self.input_names if n not in example_inputs]
        if missing:
            raise ValueError("example inputs lack %s" % missing)
        # Specialise: run once on the examples, marking which values are static.
        values = dict(consts)
        static = {k: True for k in consts}
        for n in self.input_names:
            values[n] = torch.as_tensor(np.asarray(example_inputs[n])).to(self.device)
            static[n] = False
        self.program = []  # (fn, input names, output names)
        for node in g.node:
            if node.domain not in ("", "ai.onnx"):
                raise Unsupported("op %s of domain %s" % (node.op_type, node.domain))
            if node.op_type not in OPS and node.op_type not in ("Resize", "Upsample"):
                raise Unsupported("op %s (node %s)" % (node.op_type, node.name))
            a = _attrs(node)
            ins = [values[i] if i else None for i in node.input]
            flags = tuple(bool(i) and static.get(i, False) for i in node.input)
            ctx = _Ctx(self.device, self.opset)
            ctx.static_flags = flags
            ctx.n_outputs = len(node.output)
            is_static = node.op_type in SHAPE_ONLY or all(f for i, f in zip(node.input, flags) if i)
            if node.op_type in ("Resize", "Upsample"):
                for k in (1, 2, 3):
                    if k < len(node.input) and node.input[k] and not flags[k]:
                        raise Unsupported("%s with computed scales/sizes" % node.op_type)
                plan = _ResizePlan(ctx, ins, a, node.op_type)
                fn = (lambda p: lambda xs: p(xs[0]))(plan)
            else:
                for k in HOST_INPUTS.get(node.op_type, []):
                    if k < len(node.input) and node.input[k] and not flags[k]:
                        raise Unsupported("%s reads input %d on the host, and it is not constant" % (node.op_type, k))
                fn = (lambda f, c, at: lambda xs: f(c, xs, at))(OPS[node.op_type], ctx, a)
            out = fn(ins)
            outs = out if isinstance(out, (list, tuple)) else [out]
            for name, t in zip(node.output, outs):
                if name:
                    values[name] = t
                    static[name] = is_static
            if not is_static:
                self.program.append((fn, list(node.input), [o for o in node.output]))
        self.reference_outputs = [values[n] for n in self.output_names]
        # Keep only what the forward needs: static values it reads.
        needed = {i for _, ins, _ in self.program for i in ins if i and static.get(i)}
        needed |= {n for n in self.output_names if static.get(n)}
        self.static_values = {k: values[k] for k in needed}
        # Slots: name -> index, so the forward indexes a list.
        names = list(self.static_values) + self.input_names + [o for _, _, outs in self.program for o in outs if o]
        self.slot = {n: i for i, n in enumerate(dict.fromkeys(names))}
        self.steps = [(fn, [self.slot[i] if i else -1 for i in ins], [self.slot[o] if o else -1 for o in outs])
                      for fn, ins, outs in self.program]
        self.n_slots = len(self.slot)
        self.base = [None] * self.n_slots
        for k, v in self.static_values.items():
            self.base[self.slot[k]] = v
        self.input_slots = [self.slot[n] for n in self.input_names]
        self.output_slots = [self.slot[n] for n in self.output_names]

    def __call__(self, *inputs):
        env = list(self.base)
        for s, t in zip(self.input_slots, inputs):
            env[s] = t
        for fn, ins, outs in self.steps:
            out = fn([env[i] if i >= 0 else None for i in ins])
            if len(outs) == 1:
                env[outs[0]] = out[0] if isinstance(out, (list, tuple)) else out
            else:
                for s, t in zip(outs, out):
                    if s >= 0:
                        env[s] = t
        return [env[s] for s in self.output_slots]

    def kernels_hint(self):
        return len(self.steps)


# ---------------------------------------------------------------- timing
def _median_ms(times):
    return float(statistics.median(times))


def time_eager(runner, inputs, runs=200, warmup=20):
    """Median ms of one forward (CUDA events, synchronised each run; wall
    time on the CPU, which is there only to test this code)."""
    with torch.inference_mode():
        for _ in range(warmup):
            runner(*inputs)
        if inputs and inputs[0].device.type == "cpu":
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                runner(*inputs)
                times.append((time.perf_counter() - t0) * 1e3)
            return _median_ms(times)
        torch.cuda.synchronize()
        times = []
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        for _ in range(runs):
            start.record()
            runner(*inputs)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
    return _median_ms(times)


def capture_graph(runner, inputs, warmup=3):
    """Captures the whole forward as a CUDA graph; returns (graph, static inputs, static outputs)."""
    static_inputs = [t.clone() for t in inputs]
    with torch.inference_mode():
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                runner(*static_inputs)
        torch.cuda.current_stream().wait_stream(side)
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_outputs = runner(*static_inputs)
    torch.cuda.synchronize()
    return graph, static_inputs, static_outputs


def time_graph(graph, runs=200, warmup=20):
    """Median ms of one graph replay (CUDA events, synchronised each run)."""
    for _ in range(warmup):
        graph.replay()
    torch.cuda.synchronize()
    times = []
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    for _ in range(runs):
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return _median_ms(times)


def time_graph_end_to_end(graph, static_inputs, static_outputs, host_inputs, runs=200, warmup=20):
    """Median wall ms of: copy inputs from pinned host memory, replay, copy
    outputs back, synchronise (what `facegraph infer` times per run)."""
    pinned_in = [t.cpu().pin_memory() for t in host_inputs]
    pinned_out = [torch.empty(o.shape, dtype=o.dtype).pin_memory() for o in static_outputs]

    def once():
        for dst, src in zip(static_inputs, pinned_in):
            dst.copy_(src, non_blocking=True)
        graph.replay()
        for dst, src in zip(pinned_out, static_outputs):
            dst.copy_(src, non_blocking=True)
        torch.cuda.current_stream().synchronize()

    for _ in range(warmup):
        once()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        once()
        times.append((time.perf_counter() - t0) * 1e3)
    return _median_ms(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--check", action="store_true", help="compare with onnxruntime (CPU)")
    args = ap.parse_args()
    model = onnx.load(args.model)
    rng = np.random.default_rng(0)
    np_of = {1: np.float32, 10: np.float16, 7: np.int64, 6: np.int32, 9: np.bool_}
    inits = {i.name for i in model.graph.initializer}
    feeds = {}
    for v in model.graph.input:
        if v.name in inits:
            continue
        dims = [d.dim_value if d.dim_value > 0 else (1 if k == 0 else 256)
                for k, d in enumerate(v.type.tensor_type.shape.dim)]
        feeds[v.name] = rng.uniform(-1, 1, dims).astype(np_of[v.type.tensor_type.elem_type])
    runner = OnnxTorch(args.model, feeds, args.device, model=model)
    inputs = [torch.from_numpy(feeds[n]).to(args.device) for n in runner.input_names]
    print("%s: %d steps" % (args.model, len(runner.steps)))
    if args.check:
        import onnxruntime as ort
        ref = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"]).run(None, feeds)
        with torch.inference_mode():
            ours = runner(*inputs)
        for name, o, r in zip(runner.output_names, ours, ref):
            o = o.cpu().numpy().astype(np.float64)
            print("  %s: max err %.3g (max |ref| %.3g)" % (name, np.max(np.abs(o - r)) if r.size else 0,
                                                           np.max(np.abs(r)) if r.size else 0))
    if args.device.startswith("cuda"):
        print("eager %.3f ms" % time_eager(runner, inputs, args.runs))
        graph, si, so = capture_graph(runner, inputs)
        print("graph %.3f ms" % time_graph(graph, args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
