/* Hand-written CPU convolution kernels on plain NCHW tensors (AVX2 + FMA,
 * AVX-512 where the CPU has it, chosen at run time; conv_gemm.c):
 *
 *   conv_gemm_*      a forward convolution as a GEMM per group:
 *                    Y[ocg, pixels] = W[ocg, icg*kh*kw] . X'[icg*kh*kw, pixels],
 *                    where X' is X itself for pointwise (1x1, stride 1, no
 *                    padding) convolutions and an im2col panel of 32 (AVX-512)
 *                    or 16 (AVX2) output pixels, packed per thread, otherwise.
 *                    Weights are packed once (prepare) into blocks of the
 *                    micro-tile's rows (8 with AVX-512, 6 with AVX2).
 *   conv_direct_*    few output channels over few taps (first layers): each
 *                    tap's input vector multiplies 16 output channels.
 *   conv_depthwise_* one filter per channel, direct loops over output rows.
 *
 * Bias and the fused activation are applied while the output is still in
 * registers; nothing is reordered in or out. Which convolution goes where
 * is decided in conv.c. */
#ifndef FACEGRAPH_OPS_CONV_KERNELS_H
#define FACEGRAPH_OPS_CONV_KERNELS_H

#include "ops/op.h"

/* 2-D geometry (a 1-D convolution is 2-D with height 1). */
typedef struct conv2d_shape {
    int64_t batch, group, icg, ocg; /* channels per group */
    int64_t ih, iw, oh, ow;
    int64_t kh, kw, sh, sw, dh, dw, ph, pw; /* ph, pw: top/left padding */
} conv2d_shape;

/* Floats of packed weights (and of packed bias) conv_gemm_pack makes. */
size_t conv_gemm_packed_weights_floats(const conv2d_shape *s);
size_t conv_gemm_packed_bias_floats(const conv2d_shape *s);
/* Packs ONNX weights [group*ocg][icg][kh][kw] and bias (may be NULL) into
 * row blocks of the micro-tile, zero padded. */
void conv_gemm_pack(const conv2d_shape *s, const float *w, const float *bias, float *packed_w, float *packed_b);
/* Scratch bytes conv_gemm_run needs with this many threads. */
size_t conv_gemm_scratch_bytes(const conv2d_shape *s, int threads);
void conv_gemm_run(const conv2d_shape *s, const float *packed_w, const float *packed_b, const float *x, float *y,
                   const op_activation *act, int threads, void *scratch);

/* Direct AVX-512 convolution for few output channels per group (first
 * layers); only where conv_direct_ok. Weights and bias packed together. */
int conv_direct_ok(const conv2d_shape *s);
size_t conv_direct_packed_floats(const conv2d_shape *s);
void conv_direct_pack(const conv2d_shape *s, const float *w, const float *bias, float *packed);
void conv_direct_run(const conv2d_shape *s, const float *packed, const float *x, float *y, const op_activation *act,
                     int threads);

/* Depthwise (group == channels, one output per channel); any kernel size,
 * stride, dilation and padding. */
void conv_depthwise_run(const conv2d_shape *s, const float *w, const float *bias, const float *x, float *y,
                        const op_activation *act, int threads);
/* 3x3 depthwise (dilation 1, stride 1 or 2) straight from NCHW with AVX-512
 * masked loads; only where conv_depthwise_direct_ok. */
int conv_depthwise_direct_ok(const conv2d_shape *s);
void conv_depthwise_direct_run(const conv2d_shape *s, const float *w, const float *bias, const float *x, float *y,
                               const op_activation *act, int threads);
/* Any depthwise shape through a zero-padded copy of each plane in scratch
 * (AVX2; faster than conv_depthwise_run): scratch of
 * conv_depthwise_scratch_bytes. */
size_t conv_depthwise_scratch_bytes(const conv2d_shape *s, int threads);
void conv_depthwise_padded_run(const conv2d_shape *s, const float *w, const float *bias, const float *x, float *y,
                               const op_activation *act, int threads, void *scratch);

#endif
