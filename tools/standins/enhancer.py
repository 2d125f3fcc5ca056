"""gfpgan_1.4 stand-in: GFPGANv1Clean layout (U-Net + StyleGAN2 decoder).

Names: FaceFusion's face_enhancer feeds {'input': crop} (matching inputs by
name: `face_enhancer_input.name == 'input'`) and reads output [0][0]; the
output is called 'output' here. Input and output are 1x3x512x512 in [-1, 1].

Layout (channel_multiplier 2, U-Net at half width, sft_half):
- U-Net encoder: 1x1 Conv + LeakyRelu, seven down ResBlocks (3x3 Conv,
  bilinear Resize x0.5, 3x3 Conv, 1x1 skip, Add) to 4x4, a 3x3 Conv, then
  Flatten + Gemm to 16 style vectors of 512 (different_w).
- U-Net decoder: seven up ResBlocks (bilinear Resize x2) with skip Adds;
  at each level two small conv heads give the SFT scale and shift.
- StyleGAN2 decoder: constant 4x4 input, modulated convolutions whose
  weight is computed at run time: style = Gemm(latent) -> Mul with the
  constant weight -> Pow/ReduceSum/Add/Sqrt/Div demodulation -> Reshape ->
  Conv with that NON-constant weight (batch 1), noise injection (constant
  noise x learned strength), bias + LeakyRelu*sqrt(2), SFT on half the
  channels (Split/Mul/Add/Concat), ToRGB (modulated 1x1 without
  demodulation) accumulated through bilinear Resize.
"""

import math

import numpy as np

from .common import Builder, channels

SQRT2 = math.sqrt(2.0)


def lrelu_gain(b, x):
    return b.mul(b.leaky(x, 0.2), b.const_f32('sqrt2', [SQRT2]))


def res_block(b, x, cin, cout, factor):
    y = b.leaky(b.conv(x, cin, cin, 3, gain=2.0))
    y = b.resize(y, factor, mode='linear')
    y = b.leaky(b.conv(y, cin, cout, 3, gain=2.0))
    skip = b.conv(b.resize(x, factor, mode='linear'), cin, cout, 1, pad=0, bias=False, gain=1.0)
    return b.mul(b.add(y, skip), b.const_f32('inv_sqrt2', [1.0 / SQRT2]))


def latent(b, latents, index):
    return b.node('Gather', [latents, b.const_i64('latent_index', index)], 'latent', axis=1)


def modulated_conv(b, x, style_vector, style_dim, cin, cout, k, demodulate=True, upsample=False):
    style = b.gemm(style_vector, style_dim, cin, gain=1.0, prefix='modulation')
    style = b.add(style, b.const_f32('one', [1.0]))
    style = b.reshape(style, [1, 1, cin, 1, 1])
    weight = b.initializer('modconv_w', b.normal((1, cout, cin, k, k), 1.0 / math.sqrt(cin * k * k)))
    weight = b.mul(weight, style)
    if demodulate:
        energy = b.node('ReduceSum', [b.node('Pow', [weight, b.const_f32('two', [2.0])], 'pow'),
                                      b.const_i64('axes', [2, 3, 4])], 'energy', keepdims=1)
        norm = b.node('Sqrt', [b.add(energy, b.const_f32('eps', [1e-8]))], 'norm')
        weight = b.node('Div', [weight, norm], 'demod')
    weight = b.reshape(weight, [cout, cin, k, k])
    if upsample:
        x = b.resize(x, 2.0, mode='linear')
    return b.node('Conv', [x, weight], 'modconv', kernel_shape=[k, k], pads=[k // 2] * 4)


def style_conv(b, x, style_vector, style_dim, cin, cout, size, upsample=False):
    y = modulated_conv(b, x, style_vector, style_dim, cin, cout, 3, upsample=upsample)
    noise = b.initializer('noise', b.normal((1, 1, size, size), 1.0))
    strength = b.initializer('noise_strength', np.full((1,), 0.1, dtype=np.float32))
    y = b.add(y, b.mul(noise, strength))
    y = b.add(y, b.initializer('activate_b', b.normal((1, cout, 1, 1), 0.02)))
    return lrelu_gain(b, y)


def to_rgb(b, x, style_vector, style_dim, cin, skip):
    y = modulated_conv(b, x, style_vector, style_dim, cin, 3, 1, demodulate=False)
    y = b.add(y, b.initializer('rgb_b', np.zeros((1, 3, 1, 1), dtype=np.float32)))
    if skip is not None:
        y = b.add(y, b.resize(skip, 2.0, mode='linear'))
    return y


def build_gfpgan_1_4(width=1.0):
    b = Builder('gfpgan_1.4', 5001)
    style_dim = 512
    levels = [4, 8, 16, 32, 64, 128, 256, 512]
    unet = {4: 256, 8: 256, 16: 256, 32: 256, 64: 256, 128: 128, 256: 64, 512: 32}
    sgan = {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128, 512: 64}
    unet = {k: channels(v, width) for k, v in unet.items()}
    sgan = {k: channels(v, width) for k, v in sgan.items()}
    num_latent = 16

    x = b.input('input', [1, 3, 512, 512])
    feat = b.leaky(b.conv(x, 3, unet[512], 1, pad=0))
    skips = []
    for size in reversed(levels[1:]):
        feat = res_block(b, feat, unet[size], unet[size // 2], 0.5)
        skips.insert(0, feat)
    feat = b.leaky(b.conv(feat, unet[4], unet[4], 3))
    code = b.gemm(b.node('Flatten', [feat], 'flatten', axis=1), unet[4] * 16, num_latent * style_dim, gain=1.0,
                  prefix='final_linear')
    latents = b.reshape(code, [1, num_latent, style_dim])

    conditions = []
    for size, skip in zip(levels[1:], skips):
        feat = b.add(feat, skip)
        feat = res_block(b, feat, unet[size // 2], unet[size], 2.0)
        half = sgan[size] // 2
        scale = b.conv(b.leaky(b.conv(feat, unet[size], unet[size], 3)), unet[size], half, 3, gain=0.2)
        shift = b.conv(b.leaky(b.conv(feat, unet[size], unet[size], 3)), unet[size], half, 3, gain=0.2)
        conditions.append((scale, shift))

    const = b.initializer('constant_input', b.normal((1, sgan[4], 4, 4), 1.0))
    out = style_conv(b, const, latent(b, latents, 0), style_dim, sgan[4], sgan[4], 4)
    rgb = to_rgb(b, out, latent(b, latents, 1), style_dim, sgan[4], None)
    index = 1
    for level, size in enumerate(levels[1:]):
        out = style_conv(b, out, latent(b, latents, index), style_dim, sgan[size // 2], sgan[size], size, upsample=True)
        half = sgan[size] // 2
        same, sft = b.node('Split', [out, b.const_i64('split', [half, half])], 'sft_split', outputs=2, axis=1)
        scale, shift = conditions[level]
        sft = b.add(b.mul(sft, scale), shift)
        out = b.concat([same, sft])
        out = style_conv(b, out, latent(b, latents, index + 1), style_dim, sgan[size], sgan[size], size)
        rgb = to_rgb(b, out, latent(b, latents, index + 2), style_dim, sgan[size], rgb)
        index += 2
    b.output(rgb, 'output', [1, 3, 512, 512])
    return b.model('stand-in for gfpgan_1.4 (GFPGANv1Clean)')
