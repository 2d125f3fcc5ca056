"""Vision-transformer stand-ins for FaceFusion's content analyser.

Names: content_analyser.py forward_nsfw feeds {'input': frame} and reads
output [0][0]: nsfw_2 gives 2 logits (flagged when l0 - l1 > 0.25), nsfw_3 4
logits (flagged when (l2 + l3) - (l0 + l1) > 10.5). Outputs are called
'output' here.

nsfw_2: a ViT-Tiny/16 at 384 (timm layout): 16x16 stride-16 patch Conv,
Reshape/Transpose to tokens, class token Concat, position embedding Add,
12 pre-norm blocks (LayerNormalization, MatMul qkv, Reshape/Transpose,
MatMul + Softmax attention, projection, Gelu spelled with Erf), final
LayerNormalization, class token Gather, Gemm to 2 logits.

nsfw_3: a CLIP ViT-B/32 image tower at 448 (14x14 patches +
class token, ln_pre, 12 blocks with QuickGELU = x * Sigmoid(1.702 x),
ln_post, projection to 512), followed by a zero-shot head: L2-normalised
features MatMul 4 fixed (normalised) text embeddings, times the CLIP logit
scale 100.
"""

import math

import numpy as np

from .common import Builder, channels


def gelu_erf(b, x):
    inner = b.node('Erf', [b.node('Div', [x, b.const_f32('sqrt2', [math.sqrt(2.0)])], 'gelu_div')], 'erf')
    return b.mul(b.mul(x, b.add(inner, b.const_f32('one', [1.0]))), b.const_f32('half', [0.5]))


def quick_gelu(b, x):
    return b.mul(x, b.node('Sigmoid', [b.mul(x, b.const_f32('k1702', [1.702]))], 'sigmoid'))


def attention(b, x, tokens, dim, heads):
    head_dim = dim // heads
    qkv = b.linear(x, dim, 3 * dim, prefix='qkv')
    qkv = b.reshape(qkv, [1, tokens, 3, heads, head_dim])
    qkv = b.node('Transpose', [qkv], 'qkv_t', perm=[2, 0, 3, 1, 4])
    q, k, v = b.node('Split', [qkv, b.const_i64('split', [1, 1, 1])], 'qkv_split', outputs=3, axis=0)
    squeeze_axes = b.const_i64('axes', [0])
    q = b.node('Squeeze', [q, squeeze_axes], 'q')
    k = b.node('Squeeze', [k, squeeze_axes], 'k')
    v = b.node('Squeeze', [v, squeeze_axes], 'v')
    q = b.mul(q, b.const_f32('attn_scale', [1.0 / math.sqrt(head_dim)]))
    scores = b.node('MatMul', [q, b.node('Transpose', [k], 'k_t', perm=[0, 1, 3, 2])], 'scores')
    weights = b.node('Softmax', [scores], 'softmax', axis=-1)
    out = b.node('MatMul', [weights, v], 'attn')
    out = b.reshape(b.node('Transpose', [out], 'attn_t', perm=[0, 2, 1, 3]), [1, tokens, dim])
    return b.linear(out, dim, dim, gain=0.5, prefix='proj')


def block(b, x, tokens, dim, heads, mlp_ratio, activation):
    x = b.add(x, attention(b, b.layernorm(x, dim), tokens, dim, heads))
    y = b.linear(b.layernorm(x, dim), dim, dim * mlp_ratio, gain=2.0, prefix='fc1')
    y = activation(b, y)
    y = b.linear(y, dim * mlp_ratio, dim, gain=0.5, prefix='fc2')
    return b.add(x, y)


def embed(b, x, size, patch, dim, bias):
    grid = size // patch
    tokens = grid * grid + 1
    x = b.conv(x, 3, dim, patch, patch, pad=0, bias=bias, gain=1.0, prefix='patch')
    x = b.node('Transpose', [b.reshape(x, [1, dim, grid * grid])], 'tokens', perm=[0, 2, 1])
    cls = b.initializer('class_token', b.normal((1, 1, dim), 0.02))
    x = b.concat([cls, x], axis=1)
    x = b.add(x, b.initializer('position_embedding', b.normal((1, tokens, dim), 0.02)))
    return x, tokens


def class_token(b, x):
    return b.node('Gather', [x, b.const_i64('cls_index', 0)], 'cls', axis=1)


def build_nsfw_2(width=1.0):
    b = Builder('nsfw_2', 6001)
    dim = channels(192, width, multiple=12, minimum=48)
    heads = 3
    x = b.input('input', [1, 3, 384, 384])
    x, tokens = embed(b, x, 384, 16, dim, bias=True)
    for _ in range(12):
        x = block(b, x, tokens, dim, heads, 4, gelu_erf)
    x = class_token(b, b.layernorm(x, dim))
    x = b.gemm(x, dim, 2, gain=1.0, prefix='head')
    b.output(x, 'output', [1, 2])
    return b.model('stand-in for nsfw_2 (ViT-Tiny/16 at 384)')


def build_nsfw_3(width=1.0):
    b = Builder('nsfw_3', 6011)
    dim = channels(768, width, multiple=64, minimum=64)
    heads = max(1, dim // 64)
    embed_dim = channels(512, width, multiple=16)
    labels = 4
    x = b.input('input', [1, 3, 448, 448])
    x, tokens = embed(b, x, 448, 32, dim, bias=False)
    x = b.layernorm(x, dim, prefix='ln_pre')
    for _ in range(12):
        x = block(b, x, tokens, dim, heads, 4, quick_gelu)
    x = b.layernorm(class_token(b, x), dim, prefix='ln_post')
    proj = b.initializer('proj', b.normal((dim, embed_dim), 1.0 / math.sqrt(dim)))
    x = b.node('MatMul', [x, proj], 'features')
    norm = b.node('Sqrt', [b.node('ReduceSum', [b.mul(x, x), b.const_i64('axes', [1])], 'sumsq', keepdims=1)], 'norm')
    x = b.node('Div', [x, norm], 'unit_features')
    text = b.rng.standard_normal((embed_dim, labels)).astype(np.float32)
    text /= np.linalg.norm(text, axis=0, keepdims=True)
    logits = b.node('MatMul', [x, b.initializer('text_embeddings', text)], 'similarity')
    logits = b.mul(logits, b.const_f32('logit_scale', [100.0]))
    b.output(logits, 'output', [1, labels])
    return b.model('stand-in for nsfw_3 (CLIP ViT-B/32 at 448 + zero-shot head)')
