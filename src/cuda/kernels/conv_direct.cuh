/* Direct float32 NCHW 2-D convolutions (group 1) with the bias and the
 * fused activation applied in the same kernel: one kernel per convolution.
 * Included by conv.cu (which times these against cuDNN in prepare and keeps
 * the fastest); kept in a header so that a stand-alone test can include it.
 *
 * Variants (cd_kind):
 *   CD_PIXEL   one thread per output pixel computing 16 output channels
 *              (blockIdx.y picks the group of 16); the group's weights sit in
 *              shared memory. For small reductions (C_in * KH * KW <= 512):
 *              first layers (C_in = 3) and tiny heads.
 *   CD_GEMM_*  implicit GEMM: C_out x pixels tiles, the reduction taken tap
 *              by tap (kh, kw) and 8 input channels at a time; weights and
 *              the gathered input go through shared memory, the next chunk
 *              is fetched into registers while the current one is used;
 *              each thread accumulates TM x TN outputs.
 *   CD_DOT     one block of 128 threads per output element (a dot product
 *              over C_in * KH * KW, reduced in a fixed order): for convolutions
 *              with very few outputs and long reductions (a 7x7 kernel on a
 *              7x7 input).
 *   CD_PW_*    pointwise (1x1, stride 1, no padding): a GEMM over the pixel
 *              plane without im2col. Each thread computes TM output channels
 *              x VEC consecutive pixels (float4 / float2 loads and stores of
 *              the pixels when the plane and the pointers allow), weights
 *              read from the gemm section (a warp-uniform float4 broadcast);
 *              the block's channel groups share the same pixels (the L1
 *              cache serves the repeats). _Sn: the input channels split over
 *              n slices of the block (8 channels at a time, interleaved),
 *              summed in slice order: for small maps (14x14, 28x28) where
 *              pixels x channels alone give too few blocks.
 *   CD_FIRST_* small reductions (C_in * KH * KW <= 1152: first layers, 3x3
 *              convolutions of up to 128 channels): each thread computes TM output channels for
 *              VEC pixels 32 apart (the lanes of a warp take consecutive
 *              pixels, so loads and stores are coalesced), weights from the
 *              pixel section (warp-uniform float4 broadcast), each loaded
 *              weight used for VEC pixels. _Sn: input channels split over n
 *              slices, summed in slice order.
 *   CD_T3_*    3x3 convolutions (stride 1 or 2, dilation 1) of 8..512 input
 *              channels: a block computes a TH x TW tile of output pixels of
 *              one image x BM output channels. Chunks of CK input channels
 *              (their input tile with its halo, and their weights) are copied
 *              into shared memory with cp.async, in a pipeline of 3 stages
 *              (2 for the largest tiles): the next chunks are in flight while
 *              the current one is used, one barrier per chunk; each thread
 *              accumulates PX (= 4) pixels of one column x TM channels in
 *              registers, each input value loaded once per (channel, kw) and
 *              used for 3 kh x TM outputs. _Sn: each chunk's channels split
 *              over n slices of the block, summed in slice order.
 *   CD_TC_*    3x3 convolutions (stride 1 or 2) of 8..512 input channels on
 *              the tensor cores in float32 precision (3xTF32): an implicit
 *              GEMM of pixels x output channels, staged like CD_T3_*
 *              (conv_tensor_core.cuh).
 * Every variant accumulates in float32 in a fixed order (no atomics):
 * results are deterministic.
 *
 * The weights are repacked once (cd_pack_weights) into one device buffer:
 *   [gemm weights: (tap, C_in padded to 8, C_out padded to 64)]
 *   [bias: C_out padded to 64, zeros without a bias]
 *   [pixel weights: (group of 16, k, 16), only when C_in * KH * KW <= 1152]
 *   (CD_GEMM_* and CD_PW_* read the gemm weights; CD_PIXEL and CD_FIRST_* the
 *   pixel weights; CD_DOT the raw weights; all read the bias.)
 *   [raw weights: (C_out, C_in * KH * KW), as in the model]
 */
#ifndef FACEGRAPH_CUDA_CONV_DIRECT_CUH
#define FACEGRAPH_CUDA_CONV_DIRECT_CUH

#include "cuda/cuda_ops.h"
#include "cuda/kernels/kernel_util.cuh"

#define CD_BK 8                /* input channels per reduction chunk */
#define CD_COUT_ALIGN 64       /* C_out padding of the packed weights (largest BM) */
#define CD_PIX_GROUP 16        /* output channels per thread of CD_PIXEL */
#define CD_PIX_MAX_K 512       /* C_in * KH * KW limit of CD_PIXEL (32 KiB of shared memory) */
#define CD_FIRST_MAX_K 1152    /* C_in * KH * KW limit of CD_FIRST_* and of the pixel weights section */
#define CD_PIX_THREADS 128
#define CD_DOT_THREADS 128

typedef struct cd_params {
    int batch, c_in, c_out;
    int in_h, in_w, out_h, out_w;
    int k_h, k_w, s_h, s_w, d_h, d_w, p_h, p_w; /* p: leading pads */
    int c_in_pad, c_out_pad;
    int n_pix;       /* batch * out_h * out_w */
    int k_total;     /* c_in * k_h * k_w */
    int bias_off, pix_off, raw_off, total_floats; /* packed buffer layout (floats); pix_off < 0: none */
    const float *residual; /* per launch: added to each output before the activation (a residual the
                              planner fused: y = act(conv + bias + residual)); NULL: none */
} cd_params;

enum cd_kind {
    CD_CUDNN = 0, /* not a direct kernel: the cuDNN path */
    CD_PIXEL,
    CD_GEMM_64x64,
    CD_GEMM_32x64,
    CD_GEMM_32x32,
    CD_GEMM_16x128,
    CD_GEMM_8x128,
    CD_GEMM_4x256,
    CD_GEMM_64x32_S2, /* _Sn: the reduction split over n slices of the block */
    CD_GEMM_32x32_S4,
    CD_GEMM_16x64_S4,
    CD_GEMM_16x32_S4,
    CD_GEMM_16x32_S8,
    CD_GEMM_8x64_S4,
    CD_DOT,
    CD_PW_16x4,      /* _TMxVEC: output channels x pixels per thread */
    CD_PW_8x4,
    CD_PW_8x2_S4,
    CD_PW_8x1_S8,
    CD_PW_4x1_S8,
    CD_FIRST_16x4,
    CD_FIRST_16x2,
    CD_FIRST_8x2,
    CD_FIRST_8x1,
    CD_FIRST_16x2_S4,
    CD_FIRST_8x2_S4,
    CD_T3_8x16_M32_S2, /* _THxTW_M(BM)[_T(TM)]_S: pixel tile, channel tile, channels per thread (8), slices */
    CD_T3_8x16_M16_S4,
    CD_T3_4x16_M32_S4,
    CD_T3_4x16_M16_S4,
    CD_T3_8x8_M32_S4,
    CD_T3_4x8_M16_T4_S8,
    CD_T3_8x32_M32_S1,
    CD_T3_8x16_M32_T16_S4,
    CD_TC_8x16_N3, /* _THxTW_N(NT)[_K3]: tensor cores, 3xTF32 (conv_tensor_core.cuh): pixel tile, 8-channel
                      tiles, taps split over 3 warp slices */
    CD_TC_16x16_N3,
    CD_TC_4x16_N3,
    CD_TC_8x32_N2,
    CD_TC_8x16_N4,
    CD_TC_4x16_N6,
    CD_TC_4x16_N8,
    CD_TC_4x8_N5,
    CD_TC_8x16_N1,
    CD_TC_4x16_N1,
    CD_TC_4x16_N1_K3,
    CD_TC_4x16_N3_K3,
    CD_TC_4x16_N6_K3,
    CD_TC_8x16_N3_K3,
    CD_TC_4x8_N5_K3,
    CD_COUNT
};

#define CD_FIRST_SMALL_C_IN 16 /* CD_FIRST_* without slices: only up to this many input channels */

/* ------------------------------------------------------------ host: layout and packing */

/* Fills p from the 2-D geometry; returns 0, or -1 when a size needs more than 31 bits. */
static inline int cd_params_init(cd_params *p, int64_t batch, int64_t c_in, int64_t c_out, const int64_t *in,
                          const int64_t *out, const int64_t *k, const int64_t *st, const int64_t *dl,
                          const int64_t *pl)
{
    memset(p, 0, sizeof *p);
    int64_t in_total = batch * c_in * in[0] * in[1];
    int64_t out_total = batch * c_out * out[0] * out[1];
    int64_t k_total = c_in * k[0] * k[1];
    int64_t c_in_pad = (c_in + CD_BK - 1) / CD_BK * CD_BK;
    int64_t c_out_pad = (c_out + CD_COUT_ALIGN - 1) / CD_COUT_ALIGN * CD_COUT_ALIGN;
    int64_t gemm = k[0] * k[1] * c_in_pad * c_out_pad;
    int64_t pix = k_total <= CD_FIRST_MAX_K ? (c_out + CD_PIX_GROUP - 1) / CD_PIX_GROUP * CD_PIX_GROUP * k_total : 0;
    int64_t total = gemm + c_out_pad + pix + c_out * k_total;
    if (in_total > CU_INDEX_LIMIT || out_total > CU_INDEX_LIMIT || total > CU_INDEX_LIMIT / 4 ||
        batch * out[0] * out[1] > CU_INDEX_LIMIT)
        return -1;
    for (int i = 0; i < 2; i++)
        if (st[i] > 65536 || dl[i] > 65536 || pl[i] > 65536 || pl[i] < 0)
            return -1;
    p->batch = (int)batch, p->c_in = (int)c_in, p->c_out = (int)c_out;
    p->in_h = (int)in[0], p->in_w = (int)in[1];
    p->out_h = (int)out[0], p->out_w = (int)out[1];
    p->k_h = (int)k[0], p->k_w = (int)k[1];
    p->s_h = (int)st[0], p->s_w = (int)st[1];
    p->d_h = (int)dl[0], p->d_w = (int)dl[1];
    p->p_h = (int)pl[0], p->p_w = (int)pl[1];
    p->c_in_pad = (int)c_in_pad, p->c_out_pad = (int)c_out_pad;
    p->n_pix = (int)(batch * out[0] * out[1]);
    p->k_total = (int)k_total;
    p->bias_off = (int)gemm;
    p->pix_off = pix ? (int)(gemm + c_out_pad) : -1;
    p->raw_off = (int)(gemm + c_out_pad + pix);
    p->total_floats = (int)total;
    return 0;
}

/* Packs weights W [C_out, C_in, KH, KW] and bias (may be NULL) into dst (p->total_floats floats). */
static inline void cd_pack_weights(const cd_params *p, const float *w, const float *bias, float *dst)
{
    memset(dst, 0, sizeof(float) * (size_t)p->total_floats);
    int taps = p->k_h * p->k_w;
    for (int m = 0; m < p->c_out; m++)
        for (int ci = 0; ci < p->c_in; ci++)
            for (int t = 0; t < taps; t++)
                dst[((size_t)t * p->c_in_pad + ci) * p->c_out_pad + m] = w[((size_t)m * p->c_in + ci) * taps + t];
    for (int m = 0; m < p->c_out; m++)
        dst[p->bias_off + m] = bias ? bias[m] : 0.0f;
    if (p->pix_off >= 0)
        for (int m = 0; m < p->c_out; m++)
            for (int k = 0; k < p->k_total; k++) {
                int g = m / CD_PIX_GROUP, c = m % CD_PIX_GROUP;
                dst[p->pix_off + ((size_t)g * p->k_total + k) * CD_PIX_GROUP + c] = w[(size_t)m * p->k_total + k];
            }
    memcpy(dst + p->raw_off, w, sizeof(float) * (size_t)p->c_out * p->k_total);
}

/* Tile of a GEMM variant: rows (output channels) BM, columns (pixels) BN, reduction slices. */
static inline void cd_gemm_tile(int kind, int *bm, int *bn, int *slices)
{
    *slices = 1;
    switch (kind) {
    case CD_GEMM_64x64: *bm = 64, *bn = 64; return;
    case CD_GEMM_32x64: *bm = 32, *bn = 64; return;
    case CD_GEMM_32x32: *bm = 32, *bn = 32; return;
    case CD_GEMM_16x128: *bm = 16, *bn = 128; return;
    case CD_GEMM_8x128: *bm = 8, *bn = 128; return;
    case CD_GEMM_4x256: *bm = 4, *bn = 256; return;
    case CD_GEMM_64x32_S2: *bm = 64, *bn = 32, *slices = 2; return;
    case CD_GEMM_32x32_S4: *bm = 32, *bn = 32, *slices = 4; return;
    case CD_GEMM_16x64_S4: *bm = 16, *bn = 64, *slices = 4; return;
    case CD_GEMM_16x32_S4: *bm = 16, *bn = 32, *slices = 4; return;
    case CD_GEMM_16x32_S8: *bm = 16, *bn = 32, *slices = 8; return;
    case CD_GEMM_8x64_S4: *bm = 8, *bn = 64, *slices = 4; return;
    default: *bm = *bn = 0; return;
    }
}

/* Tile of a CD_PW_* variant: channels per thread TM, pixels per thread VEC,
 * channel groups per block CG (warps of 32 pixel threads each), slices S. */
static inline void cd_pw_tile(int kind, int *tm, int *vec, int *cg, int *slices)
{
    switch (kind) {
    case CD_PW_16x4: *tm = 16, *vec = 4, *cg = 4, *slices = 1; return;
    case CD_PW_8x4: *tm = 8, *vec = 4, *cg = 4, *slices = 1; return;
    case CD_PW_8x2_S4: *tm = 8, *vec = 2, *cg = 2, *slices = 4; return;
    case CD_PW_8x1_S8: *tm = 8, *vec = 1, *cg = 1, *slices = 8; return;
    case CD_PW_4x1_S8: *tm = 4, *vec = 1, *cg = 1, *slices = 8; return;
    default: *tm = *vec = *cg = *slices = 0; return;
    }
}

/* Tile of a CD_FIRST_* variant: channels per thread TM, pixels per thread
 * VEC, pixel warps per block WP, slices S. */
static inline void cd_first_tile(int kind, int *tm, int *vec, int *wp, int *slices)
{
    switch (kind) {
    case CD_FIRST_16x4: *tm = 16, *vec = 4, *wp = 4, *slices = 1; return;
    case CD_FIRST_16x2: *tm = 16, *vec = 2, *wp = 4, *slices = 1; return;
    case CD_FIRST_8x2: *tm = 8, *vec = 2, *wp = 4, *slices = 1; return;
    case CD_FIRST_8x1: *tm = 8, *vec = 1, *wp = 4, *slices = 1; return;
    case CD_FIRST_16x2_S4: *tm = 16, *vec = 2, *wp = 2, *slices = 4; return;
    case CD_FIRST_8x2_S4: *tm = 8, *vec = 2, *wp = 2, *slices = 4; return;
    default: *tm = *vec = *wp = *slices = 0; return;
    }
}

/* Tile of a CD_T3_* variant: output rows TH x columns TW, output channels BM,
 * channels per thread TM, slices S (each thread: CD_T3_PX rows x TM channels). */
#define CD_T3_PX 4
#define CD_T3_MAX_C_IN 512 /* CD_T3_* tried up to this many input channels */
static inline void cd_t3_tile(int kind, int *th, int *tw, int *bm, int *tm, int *slices)
{
    *tm = 8;
    switch (kind) {
    case CD_T3_8x16_M32_S2: *th = 8, *tw = 16, *bm = 32, *slices = 2; return;
    case CD_T3_8x16_M16_S4: *th = 8, *tw = 16, *bm = 16, *slices = 4; return;
    case CD_T3_4x16_M32_S4: *th = 4, *tw = 16, *bm = 32, *slices = 4; return;
    case CD_T3_4x16_M16_S4: *th = 4, *tw = 16, *bm = 16, *slices = 4; return;
    case CD_T3_8x8_M32_S4: *th = 8, *tw = 8, *bm = 32, *slices = 4; return;
    case CD_T3_4x8_M16_T4_S8: *th = 4, *tw = 8, *bm = 16, *tm = 4, *slices = 8; return;
    case CD_T3_8x32_M32_S1: *th = 8, *tw = 32, *bm = 32, *slices = 1; return;
    case CD_T3_8x16_M32_T16_S4: *th = 8, *tw = 16, *bm = 32, *tm = 16, *slices = 4; return;
    default: *th = *tw = *bm = *tm = *slices = 0; return;
    }
}

/* Tile of a CD_TC_* variant: output rows TH x columns TW, channel tiles NT
 * (BN = 8 NT channels), m-tiles per warp MT, tap slices KS (1 or 3). */
#define CD_TC_MAX_C_IN 512 /* CD_TC_* tried up to this many input channels */
static inline void cd_tc_tile(int kind, int *th, int *tw, int *nt, int *mt, int *ks)
{
    *ks = 1;
    switch (kind) {
    case CD_TC_8x16_N3: *th = 8, *tw = 16, *nt = 3, *mt = 2; return;
    case CD_TC_16x16_N3: *th = 16, *tw = 16, *nt = 3, *mt = 2; return;
    case CD_TC_4x16_N3: *th = 4, *tw = 16, *nt = 3, *mt = 1; return;
    case CD_TC_8x32_N2: *th = 8, *tw = 32, *nt = 2, *mt = 2; return;
    case CD_TC_8x16_N4: *th = 8, *tw = 16, *nt = 4, *mt = 2; return;
    case CD_TC_4x16_N6: *th = 4, *tw = 16, *nt = 6, *mt = 1; return;
    case CD_TC_4x16_N8: *th = 4, *tw = 16, *nt = 8, *mt = 1; return;
    case CD_TC_4x8_N5: *th = 4, *tw = 8, *nt = 5, *mt = 1; return;
    case CD_TC_8x16_N1: *th = 8, *tw = 16, *nt = 1, *mt = 2; return;
    case CD_TC_4x16_N1: *th = 4, *tw = 16, *nt = 1, *mt = 1; return;
    case CD_TC_4x16_N1_K3: *th = 4, *tw = 16, *nt = 1, *mt = 1, *ks = 3; return;
    case CD_TC_4x16_N3_K3: *th = 4, *tw = 16, *nt = 3, *mt = 1, *ks = 3; return;
    case CD_TC_4x16_N6_K3: *th = 4, *tw = 16, *nt = 6, *mt = 1, *ks = 3; return;
    case CD_TC_8x16_N3_K3: *th = 8, *tw = 16, *nt = 3, *mt = 2, *ks = 3; return;
    case CD_TC_4x8_N5_K3: *th = 4, *tw = 8, *nt = 5, *mt = 1, *ks = 3; return;
    default: *th = *tw = *nt = *mt = 0; return;
    }
}

/* Whether kind is a CD_TC_* variant. */
static inline int cd_is_tensor_core(int kind)
{
    int th, tw, nt, mt, ks;
    cd_tc_tile(kind, &th, &tw, &nt, &mt, &ks);
    return th != 0;
}

/* The tiled 3x3 kernels (CD_T3_*, CD_TC_*) with TH x TW pixel tiles and
 * `channels` output channels per block: whether they can compute p ... */
static inline int cd_tiled_3x3_runnable(const cd_params *p, int th, int tw, int channels)
{
    return p->k_h == 3 && p->k_w == 3 && p->d_h == 1 && p->d_w == 1 && p->s_h == p->s_w &&
           (p->s_h == 1 || p->s_h == 2) && p->batch <= 65535 && (p->c_out + channels - 1) / channels <= 65535 &&
           (int64_t)((p->out_h + th - 1) / th) * ((p->out_w + tw - 1) / tw) <= INT32_MAX;
}

/* ... and the conditions both share for being worth trying: at least 8 and
 * at most max_c_in input channels, pads of a 'same' or strided 3x3, pixel
 * tiles covering at most twice the map. */
static inline int cd_tiled_3x3_worth(const cd_params *p, int th, int tw, int max_c_in)
{
    int64_t tiled = (int64_t)((p->out_h + th - 1) / th * th) * ((p->out_w + tw - 1) / tw * tw);
    return p->c_in >= 8 && p->c_in <= max_c_in && p->p_h <= 1 && p->p_w <= 1 &&
           tiled <= 2 * (int64_t)p->out_h * p->out_w;
}

/* Whether variant `kind` can compute p correctly (whether or not it is worth trying). */
static inline int cd_runnable(const cd_params *p, int kind)
{
    if (kind == CD_PIXEL)
        return p->pix_off >= 0 && p->k_total <= CD_PIX_MAX_K;
    if (kind == CD_DOT)
        return p->n_pix <= 65535 && p->c_out <= 65535;
    int tm, vec, cg, wp, slices;
    cd_pw_tile(kind, &tm, &vec, &cg, &slices);
    if (tm)
        return p->k_h == 1 && p->k_w == 1 && p->s_h == 1 && p->s_w == 1 && p->p_h == 0 && p->p_w == 0 &&
               p->out_h == p->in_h && p->out_w == p->in_w && p->batch <= 65535 &&
               (p->c_out + cg * tm - 1) / (cg * tm) <= 65535;
    cd_first_tile(kind, &tm, &vec, &wp, &slices);
    if (tm)
        return p->pix_off >= 0 && p->n_pix <= INT32_MAX - 4096 && (p->c_out + tm - 1) / tm <= 65535;
    {
        int th, tw, nt, mt, ks;
        cd_tc_tile(kind, &th, &tw, &nt, &mt, &ks);
        if (th)
            return cd_tiled_3x3_runnable(p, th, tw, 8 * nt);
    }
    {
        int th, tw, bm;
        cd_t3_tile(kind, &th, &tw, &bm, &tm, &slices);
        if (th)
            return cd_tiled_3x3_runnable(p, th, tw, bm);
    }
    int bm, bn;
    cd_gemm_tile(kind, &bm, &bn, &slices);
    return bm && (p->c_out + bm - 1) / bm <= 65535;
}

/* Whether variant `kind` is worth trying (and able to run) for p. */
static inline int cd_eligible(const cd_params *p, int kind)
{
    if (kind <= CD_CUDNN || kind >= CD_COUNT || !cd_runnable(p, kind))
        return 0;
    if (kind == CD_PIXEL)
        return p->c_out <= 128;
    {
        int tm, vec, cg, wp, slices;
        cd_pw_tile(kind, &tm, &vec, &cg, &slices);
        if (tm) {
            /* slices need at least one chunk of 8 input channels each; channel
               blocks beyond twice the channel count only waste work */
            return p->c_in_pad / CD_BK >= slices && !(cg * tm > 2 * p->c_out && cg * tm > 4);
        }
        cd_first_tile(kind, &tm, &vec, &wp, &slices);
        if (tm) {
            if (slices > 1 ? p->c_in < 2 * slices : p->c_in > CD_FIRST_SMALL_C_IN)
                return 0;
            return !(tm == 16 && p->c_out <= 8);
        }
    }
    {
        int th, tw, bm, tm, slices;
        cd_t3_tile(kind, &th, &tw, &bm, &tm, &slices);
        if (th) {
            /* enough input channels for the slices, channel tiles not beyond twice the channel count */
            int rows = 4;
            while (rows < p->c_out)
                rows *= 2;
            return cd_tiled_3x3_worth(p, th, tw, CD_T3_MAX_C_IN) && p->c_in >= 2 * slices && bm <= rows;
        }
    }
    {
        int th, tw, nt, mt, ks;
        cd_tc_tile(kind, &th, &tw, &nt, &mt, &ks);
        if (th) {
            /* channel tiles wasting at most half the channels (plus one n-tile) */
            int64_t channels = (int64_t)(p->c_out + 8 * nt - 1) / (8 * nt) * (8 * nt);
            return cd_tiled_3x3_worth(p, th, tw, CD_TC_MAX_C_IN) && 2 * channels <= 3 * (int64_t)p->c_out + 16;
        }
    }
    if (kind == CD_DOT)
        return (int64_t)p->n_pix * p->c_out <= 65536 && p->k_total >= 64 && p->n_pix <= 65535 && p->c_out <= 65535;
    int bm, bn, slices;
    cd_gemm_tile(kind, &bm, &bn, &slices);
    if (!bm)
        return 0;
    /* slices need enough reduction chunks to share */
    if (slices > 1 && p->k_h * p->k_w * (p->c_in_pad / CD_BK) < 2 * slices)
        return 0;
    /* rows beyond twice the channel count only waste work */
    int rows = 4;
    while (rows < p->c_out)
        rows *= 2;
    if (bm > rows)
        return 0;
    if (bm < 16 && p->c_out > 16)
        return 0;
    if ((p->c_out + bm - 1) / bm > 65535)
        return 0;
    return 1;
}

/* ------------------------------------------------------------ kernels */

/* Every variant's epilogue: act(v [+ the residual at dst's place]). */
static __device__ __forceinline__ float cd_out(const cd_params &p, const float *y, const float *dst, float v,
                                               op_activation act)
{
    if (p.residual)
        v += __ldg(p.residual + (dst - y));
    return cu_act(act, v);
}

/* CD_PIXEL: blockIdx.y = group of 16 output channels, one pixel per thread.
 * KH, KW > 0: the kernel size known at compile time (the taps unrolled, so
 * that their loads are in flight together); 0: taken from p. */
template <int KH, int KW>
__global__ void __launch_bounds__(CD_PIX_THREADS)
    cd_pixel_kernel(const float *__restrict__ x, const float *__restrict__ wbuf, float *__restrict__ y, cd_params p,
                    op_activation act)
{
    CU_KERNEL_PROLOGUE();
    const int k_h = KH > 0 ? KH : p.k_h, k_w = KW > 0 ? KW : p.k_w;
    extern __shared__ float4 cd_pix_smem[];
    float *ws = (float *)cd_pix_smem;
    const int k_total = p.k_total;
    const float *wg = wbuf + p.pix_off + (size_t)blockIdx.y * k_total * CD_PIX_GROUP;
    for (int e = threadIdx.x; e < k_total * CD_PIX_GROUP; e += CD_PIX_THREADS)
        ws[e] = __ldg(wg + e);
    __syncthreads();
    int n = blockIdx.x * CD_PIX_THREADS + threadIdx.x;
    if (n >= p.n_pix)
        return;
    int plane = p.out_h * p.out_w;
    int b = n / plane, pix = n - b * plane;
    int oh = pix / p.out_w, ow = pix - oh * p.out_w;
    int ih0 = oh * p.s_h - p.p_h, iw0 = ow * p.s_w - p.p_w;
    int in_plane = p.in_h * p.in_w;
    const float *xb = x + (size_t)b * p.c_in * in_plane;
    float acc[CD_PIX_GROUP];
#pragma unroll
    for (int c = 0; c < CD_PIX_GROUP; c++)
        acc[c] = 0.0f;
    for (int ci = 0; ci < p.c_in; ci++) {
        const float *xc = xb + (size_t)ci * in_plane;
#pragma unroll
        for (int kh = 0; kh < k_h; kh++) {
            int ih = ih0 + kh * p.d_h;
            bool row_in = ih >= 0 && ih < p.in_h;
            const float *xrow = xc + (row_in ? ih : 0) * p.in_w;
            const float4 *wrow = cd_pix_smem + ((ci * k_h + kh) * k_w) * (CD_PIX_GROUP / 4);
#pragma unroll
            for (int kw = 0; kw < k_w; kw++) {
                int iw = iw0 + kw * p.d_w;
                /* out of the image: a zero input (adds nothing) */
                float v = row_in && iw >= 0 && iw < p.in_w ? __ldg(xrow + iw) : 0.0f;
                const float4 *w4 = wrow + kw * (CD_PIX_GROUP / 4);
#pragma unroll
                for (int q = 0; q < CD_PIX_GROUP / 4; q++) {
                    float4 wv = w4[q];
                    acc[4 * q + 0] = fmaf(v, wv.x, acc[4 * q + 0]);
                    acc[4 * q + 1] = fmaf(v, wv.y, acc[4 * q + 1]);
                    acc[4 * q + 2] = fmaf(v, wv.z, acc[4 * q + 2]);
                    acc[4 * q + 3] = fmaf(v, wv.w, acc[4 * q + 3]);
                }
            }
        }
    }
    const float *bias = wbuf + p.bias_off;
    int m0 = blockIdx.y * CD_PIX_GROUP;
    float *yb = y + ((size_t)b * p.c_out + m0) * plane + pix;
#pragma unroll
    for (int c = 0; c < CD_PIX_GROUP; c++)
        if (m0 + c < p.c_out)
            yb[(size_t)c * plane] = cd_out(p, y, yb + (size_t)c * plane, acc[c] + __ldg(bias + m0 + c), act);
}

/* CD_GEMM_*: blockIdx.x = tile of BN pixels (over batch * out_h * out_w),
 * blockIdx.y = tile of BM output channels. The block has S slices of
 * T = (BM / TM) * (BN / TN) threads; slice s takes the reduction chunks
 * s, s + S, s + 2S, ... and the slices' partial tiles are summed in slice
 * order at the end (a fixed order: deterministic). In a slice, thread
 * (ty, tx) owns rows ty + i * (BM / TM) and columns tx + j * (BN / TN);
 * for loading, thread t owns pixel column t % BN and chunk rows
 * t / BN + j * (T / BN). */
template <int BM, int BN, int TM, int TN, int S>
__global__ void __launch_bounds__(S * (BM / TM) * (BN / TN))
    cd_gemm_kernel(const float *__restrict__ x, const float *__restrict__ wbuf, float *__restrict__ y, cd_params p,
                   op_activation act)
{
    CU_KERNEL_PROLOGUE();
    const int T = (BM / TM) * (BN / TN);
    const int ROWS_PER_PASS = T / BN;
    const int BL = CD_BK * BN / T;            /* input values each thread fetches per chunk */
    const int AL = (CD_BK * BM + T - 1) / T;  /* weights each thread fetches per chunk */
    static_assert(T % BN == 0 && (CD_BK * BN) % T == 0, "tile shape");
    static_assert(CD_COUT_ALIGN % BM == 0, "tile rows must divide the C_out padding");

    __shared__ float As[S][CD_BK][BM];
    __shared__ float Bs[S][CD_BK][BN];
    __shared__ float red[S > 1 ? S - 1 : 1][S > 1 ? BM * BN : 1];

    const int slice = threadIdx.x / T, tid = threadIdx.x - slice * T;
    const int tx = tid % (BN / TN), ty = tid / (BN / TN);
    const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
    const int plane = p.out_h * p.out_w, in_plane = p.in_h * p.in_w;

    /* this thread's load column */
    const int ln = tid % BN, lk = tid / BN;
    const int n_load = n0 + ln;
    const bool col_valid = n_load < p.n_pix;
    int ih0 = 0, iw0 = 0;
    const float *xb = x;
    if (col_valid) {
        int b = n_load / plane, pix = n_load - b * plane;
        int oh = pix / p.out_w, ow = pix - oh * p.out_w;
        ih0 = oh * p.s_h - p.p_h;
        iw0 = ow * p.s_w - p.p_w;
        xb = x + (size_t)b * p.c_in * in_plane;
    }
    const float *wt = wbuf;
    const int chunks = (p.c_in + CD_BK - 1) / CD_BK;
    const int iters = p.k_h * p.k_w * chunks;
    const int rounds = (iters + S - 1) / S;

    float ra[AL], rb[BL];
    float acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < TN; j++)
            acc[i][j] = 0.0f;

    /* fetch chunk `it` into registers (zeros past the last chunk) */
#define CD_FETCH(it)                                                                                                \
    do {                                                                                                            \
        if ((it) >= iters) {                                                                                        \
            _Pragma("unroll") for (int j_ = 0; j_ < BL; j_++) rb[j_] = 0.0f;                                        \
            _Pragma("unroll") for (int i_ = 0; i_ < AL; i_++) ra[i_] = 0.0f;                                        \
            break;                                                                                                  \
        }                                                                                                           \
        int tap_ = (it) / chunks;                                                                                   \
        int ci0_ = ((it) - tap_ * chunks) * CD_BK;                                                                  \
        int kh_ = tap_ / p.k_w, kw_ = tap_ - kh_ * p.k_w;                                                           \
        int ih_ = ih0 + kh_ * p.d_h, iw_ = iw0 + kw_ * p.d_w;                                                       \
        bool inb_ = col_valid && ih_ >= 0 && ih_ < p.in_h && iw_ >= 0 && iw_ < p.in_w;                              \
        int off_ = inb_ ? ih_ * p.in_w + iw_ : 0;                                                                   \
        _Pragma("unroll") for (int j_ = 0; j_ < BL; j_++)                                                           \
        {                                                                                                           \
            int ci_ = ci0_ + lk + j_ * ROWS_PER_PASS;                                                               \
            rb[j_] = (inb_ && ci_ < p.c_in) ? __ldg(xb + (size_t)ci_ * in_plane + off_) : 0.0f;                     \
        }                                                                                                           \
        const float *wsrc_ = wt + ((size_t)tap_ * p.c_in_pad + ci0_) * p.c_out_pad + m0;                            \
        _Pragma("unroll") for (int i_ = 0; i_ < AL; i_++)                                                           \
        {                                                                                                           \
            int e_ = tid + i_ * T;                                                                                  \
            if (e_ < CD_BK * BM)                                                                                    \
                ra[i_] = __ldg(wsrc_ + (size_t)(e_ / BM) * p.c_out_pad + (e_ % BM));                                \
        }                                                                                                           \
    } while (0)

    CD_FETCH(slice);
    for (int r = 0; r < rounds; r++) {
#pragma unroll
        for (int j = 0; j < BL; j++)
            Bs[slice][lk + j * ROWS_PER_PASS][ln] = rb[j];
#pragma unroll
        for (int i = 0; i < AL; i++) {
            int e = tid + i * T;
            if (e < CD_BK * BM)
                As[slice][e / BM][e % BM] = ra[i];
        }
        __syncthreads();
        if (r + 1 < rounds)
            CD_FETCH((r + 1) * S + slice);
#pragma unroll
        for (int kk = 0; kk < CD_BK; kk++) {
            float a[TM], bv[TN];
#pragma unroll
            for (int i = 0; i < TM; i++)
                a[i] = As[slice][kk][ty + i * (BM / TM)];
#pragma unroll
            for (int j = 0; j < TN; j++)
                bv[j] = Bs[slice][kk][tx + j * (BN / TN)];
#pragma unroll
            for (int i = 0; i < TM; i++)
#pragma unroll
                for (int j = 0; j < TN; j++)
                    acc[i][j] = fmaf(a[i], bv[j], acc[i][j]);
        }
        __syncthreads();
    }
#undef CD_FETCH

    if (S > 1) {
        if (slice > 0) {
#pragma unroll
            for (int i = 0; i < TM; i++)
#pragma unroll
                for (int j = 0; j < TN; j++)
                    red[slice - 1][(ty + i * (BM / TM)) * BN + tx + j * (BN / TN)] = acc[i][j];
        }
        __syncthreads();
        if (slice > 0)
            return;
#pragma unroll
        for (int s = 0; s < S - 1; s++)
#pragma unroll
            for (int i = 0; i < TM; i++)
#pragma unroll
                for (int j = 0; j < TN; j++)
                    acc[i][j] += red[s][(ty + i * (BM / TM)) * BN + tx + j * (BN / TN)];
    }

    const float *bias = wbuf + p.bias_off;
#pragma unroll
    for (int j = 0; j < TN; j++) {
        int n = n0 + tx + j * (BN / TN);
        if (n >= p.n_pix)
            continue;
        int b = n / plane, pix = n - b * plane;
        float *yb = y + (size_t)b * p.c_out * plane + pix;
#pragma unroll
        for (int i = 0; i < TM; i++) {
            int m = m0 + ty + i * (BM / TM);
            if (m < p.c_out)
                yb[(size_t)m * plane] = cd_out(p, y, yb + (size_t)m * plane, acc[i][j] + __ldg(bias + m), act);
        }
    }
}

/* CD_DOT: blockIdx.x = pixel, blockIdx.y = output channel; the block sums
 * over k = (ci, kh, kw) with a stride of CD_DOT_THREADS, then reduces the
 * partial sums in a fixed tree order. */
__global__ void __launch_bounds__(CD_DOT_THREADS)
    cd_dot_kernel(const float *__restrict__ x, const float *__restrict__ wbuf, float *__restrict__ y, cd_params p,
                  op_activation act)
{
    CU_KERNEL_PROLOGUE();
    __shared__ float partial[CD_DOT_THREADS / 32];
    const int n = blockIdx.x, m = blockIdx.y;
    const int plane = p.out_h * p.out_w, in_plane = p.in_h * p.in_w;
    int b = n / plane, pix = n - b * plane;
    int oh = pix / p.out_w, ow = pix - oh * p.out_w;
    int ih0 = oh * p.s_h - p.p_h, iw0 = ow * p.s_w - p.p_w;
    const float *xb = x + (size_t)b * p.c_in * in_plane;
    const float *wr = wbuf + p.raw_off + (size_t)m * p.k_total;
    const int khw = p.k_h * p.k_w;
    float acc = 0.0f;
    for (int k = threadIdx.x; k < p.k_total; k += CD_DOT_THREADS) {
        int ci = k / khw, r = k - ci * khw;
        int kh = r / p.k_w, kw = r - kh * p.k_w;
        int ih = ih0 + kh * p.d_h, iw = iw0 + kw * p.d_w;
        if (ih >= 0 && ih < p.in_h && iw >= 0 && iw < p.in_w)
            acc = fmaf(__ldg(xb + (size_t)ci * in_plane + ih * p.in_w + iw), __ldg(wr + k), acc);
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        acc += __shfl_down_sync(0xffffffffu, acc, o);
    if ((threadIdx.x & 31) == 0)
        partial[threadIdx.x >> 5] = acc;
    __syncthreads();
    if (threadIdx.x == 0) {
        float s = 0.0f;
#pragma unroll
        for (int w = 0; w < CD_DOT_THREADS / 32; w++)
            s += partial[w];
        float *dst = y + ((size_t)b * p.c_out + m) * plane + pix;
        *dst = cd_out(p, y, dst, s + __ldg(wbuf + p.bias_off + m), act);
    }
}

/* CD_PW_*: pointwise convolution. blockIdx.x = tile of PT * VEC pixels of
 * one image's plane, blockIdx.y = tile of CG * TM output channels,
 * blockIdx.z = image. Thread (tx, cg, slice) computes channels
 * m0 .. m0 + TM - 1 for pixels n0 .. n0 + VEC - 1 over the input channel
 * chunks slice, slice + S, ... (8 channels each, in increasing order); the
 * slices' partial sums are added in slice order (deterministic).
 * vec_io: the plane is a multiple of VEC and x, y are aligned for VEC-wide
 * loads and stores. */
/* at most 128 registers per thread: 16 warps per SM stay resident (these kernels are latency bound) */
#define CD_MIN_BLOCKS(threads) (512 / (threads) > 0 ? 512 / (threads) : 1)

/* CD_PW_*: input channels ci0 .. ci0 + KB - 1 of VEC pixels from n0 (zeros past C_in and the plane). */
template <int KB, int VEC>
static __device__ __forceinline__ void cd_pw_load(float (&xv)[KB][VEC], const float *xb, int ci0, int plane, int c_in,
                                                  int n0, bool full)
{
#pragma unroll
    for (int kk = 0; kk < KB; kk++) {
        const int ci = ci0 + kk;
        const float *xr = xb + (size_t)ci * plane;
        if (ci >= c_in) {
#pragma unroll
            for (int v = 0; v < VEC; v++)
                xv[kk][v] = 0.0f;
        } else if (VEC == 4 && full) {
            float4 t = __ldg((const float4 *)xr);
            xv[kk][0] = t.x, xv[kk][1 % VEC] = t.y, xv[kk][2 % VEC] = t.z, xv[kk][3 % VEC] = t.w;
        } else if (VEC == 2 && full) {
            float2 t = __ldg((const float2 *)xr);
            xv[kk][0] = t.x, xv[kk][1 % VEC] = t.y;
        } else {
#pragma unroll
            for (int v = 0; v < VEC; v++)
                xv[kk][v] = n0 + v < plane ? __ldg(xr + v) : 0.0f;
        }
    }
}

template <int TM, int VEC, int PT, int CG, int S>
__global__ void __launch_bounds__(PT * CG * S, CD_MIN_BLOCKS(PT * CG * S))
    cd_pw_kernel(const float *__restrict__ x, const float *__restrict__ wbuf, float *__restrict__ y, cd_params p,
                 op_activation act, int vec_io)
{
    CU_KERNEL_PROLOGUE();
    static_assert(TM % 4 == 0 && (VEC == 1 || VEC == 2 || VEC == 4), "pointwise tile");
    static_assert(CD_COUT_ALIGN % (CG * TM) == 0, "channel tile must divide the C_out padding");
    __shared__ float red[S > 1 ? S - 1 : 1][S > 1 ? CG * TM * VEC * PT : 1];

    const int tx = threadIdx.x % PT, cg = (threadIdx.x / PT) % CG, slice = threadIdx.x / (PT * CG);
    const int plane = p.out_h * p.out_w;
    const int b = blockIdx.z;
    const int n0 = (blockIdx.x * PT + tx) * VEC;
    const int m0 = (blockIdx.y * CG + cg) * TM;
    const bool active = n0 < plane && m0 < p.c_out;
    const bool full = vec_io && n0 + VEC <= plane;
    const float *xb = x + (size_t)b * p.c_in * plane + n0;

    float acc[TM][VEC];
#pragma unroll
    for (int i = 0; i < TM; i++)
#pragma unroll
        for (int v = 0; v < VEC; v++)
            acc[i][v] = 0.0f;

    if (active) {
        /* input channels taken KB at a time (fewer for the larger tiles: no spills); the next KB
           channels are loaded into registers before this KB's products (one load latency exposed
           per kernel instead of one per group: these kernels wait on memory, not on FMAs) */
        const int KB = TM * VEC >= 64 ? CD_BK / 4 : TM * VEC >= 32 ? CD_BK / 2 : CD_BK;
        const int end = p.c_in_pad;
        float xv[KB][VEC], xn[KB][VEC];
        int ci0 = slice * CD_BK;
        if (ci0 < end)
            cd_pw_load<KB, VEC>(xn, xb, ci0, plane, p.c_in, n0, full);
        while (ci0 < end) {
#pragma unroll
            for (int kk = 0; kk < KB; kk++)
#pragma unroll
                for (int v = 0; v < VEC; v++)
                    xv[kk][v] = xn[kk][v];
            /* this slice's next group: the rest of the chunk, then the chunk S further on */
            const int next = ci0 % CD_BK + KB < CD_BK ? ci0 + KB : ci0 - ci0 % CD_BK + S * CD_BK;
            if (next < end)
                cd_pw_load<KB, VEC>(xn, xb, next, plane, p.c_in, n0, full);
#pragma unroll
            for (int kk = 0; kk < KB; kk++) {
                /* gemm weights of tap 0: [ci][C_out padded], zeros past C_in and C_out */
                const float4 *w4 = (const float4 *)(wbuf + (size_t)(ci0 + kk) * p.c_out_pad + m0);
#pragma unroll
                for (int q = 0; q < TM / 4; q++) {
                    float4 w = __ldg(w4 + q);
#pragma unroll
                    for (int v = 0; v < VEC; v++) {
                        acc[4 * q + 0][v] = fmaf(w.x, xv[kk][v], acc[4 * q + 0][v]);
                        acc[4 * q + 1][v] = fmaf(w.y, xv[kk][v], acc[4 * q + 1][v]);
                        acc[4 * q + 2][v] = fmaf(w.z, xv[kk][v], acc[4 * q + 2][v]);
                        acc[4 * q + 3][v] = fmaf(w.w, xv[kk][v], acc[4 * q + 3][v]);
                    }
                }
            }
            ci0 = next;
        }
    }

    if (S > 1) {
        /* every thread reaches the barrier (inactive ones with zeros) */
        if (slice > 0) {
#pragma unroll
            for (int i = 0; i < TM; i++)
#pragma unroll
                for (int v = 0; v < VEC; v++)
                    red[slice > 0 ? slice - 1 : 0][((cg * TM + i) * VEC + v) * PT + tx] = acc[i][v];
        }
        __syncthreads();
        if (slice > 0)
            return;
#pragma unroll
        for (int s = 0; s < S - 1; s++)
#pragma unroll
            for (int i = 0; i < TM; i++)
#pragma unroll
                for (int v = 0; v < VEC; v++)
                    acc[i][v] += red[s][((cg * TM + i) * VEC + v) * PT + tx];
    }
    if (!active)
        return;

    const float *bias = wbuf + p.bias_off;
    float *yb = y + ((size_t)b * p.c_out + m0) * plane + n0;
#pragma unroll
    for (int i = 0; i < TM; i++) {
        if (m0 + i >= p.c_out)
            break;
        const float bv = __ldg(bias + m0 + i);
        float *yr = yb + (size_t)i * plane;
        float r[VEC];
#pragma unroll
        for (int v = 0; v < VEC; v++) {
            float a = acc[i][v] + bv;
            if (p.residual && (full || n0 + v < plane))
                a += __ldg(p.residual + (yr + v - y));
            r[v] = cu_act(act, a);
        }
        if (VEC == 4 && full) {
            *(float4 *)yr = make_float4(r[0], r[1 % VEC], r[2 % VEC], r[3 % VEC]);
        } else if (VEC == 2 && full) {
            *(float2 *)yr = make_float2(r[0], r[1 % VEC]);
        } else {
#pragma unroll
            for (int v = 0; v < VEC; v++)
                if (n0 + v < plane)
                    yr[v] = r[v];
        }
    }
}

/* CD_FIRST_*: blockIdx.x = tile of WP * 32 * VEC pixels (over batch *
 * out_h * out_w), blockIdx.y = group of TM output channels (TM divides the
 * pixel section's groups of 16). Lane l of pixel warp w computes pixels
 * base + l + 32 v (v < VEC), base = (blockIdx.x * WP + w) * 32 * VEC, over
 * the input channels slice, slice + S, ... (taps in (kh, kw) order); the
 * slices' partial sums are added in slice order (deterministic).
 * KH, KW > 0: the kernel size known at compile time; 0: taken from p. */
template <int KH, int KW, int TM, int VEC, int WP, int S>
__global__ void __launch_bounds__(32 * WP * S, CD_MIN_BLOCKS(32 * WP * S))
    cd_first_kernel(const float *__restrict__ x, const float *__restrict__ wbuf, float *__restrict__ y, cd_params p,
                    op_activation act)
{
    CU_KERNEL_PROLOGUE();
    static_assert(TM % 4 == 0 && CD_PIX_GROUP % TM == 0, "first-layer tile");
    const int PIX = 32 * WP;
    __shared__ float red[S > 1 ? S - 1 : 1][S > 1 ? TM * VEC * PIX : 1];

    const int k_h = KH > 0 ? KH : p.k_h, k_w = KW > 0 ? KW : p.k_w;
    const int pt = threadIdx.x % PIX, slice = threadIdx.x / PIX;
    const int lane = pt % 32, warp = pt / 32;
    const int plane = p.out_h * p.out_w, in_plane = p.in_h * p.in_w;
    const int base = (blockIdx.x * WP + warp) * 32 * VEC + lane;
    const int m0 = blockIdx.y * TM;

    int x_off[VEC], y_off[VEC], ih0[VEC], iw0[VEC];
#pragma unroll
    for (int v = 0; v < VEC; v++) {
        const int n = base + v * 32;
        if (n < p.n_pix) {
            int b = n / plane, pix = n - b * plane;
            int oh = pix / p.out_w, ow = pix - oh * p.out_w;
            ih0[v] = oh * p.s_h - p.p_h;
            iw0[v] = ow * p.s_w - p.p_w;
            x_off[v] = b * p.c_in * in_plane;
            y_off[v] = b * p.c_out * plane + pix;
        } else {
            /* no such pixel: every row out of the image (zero inputs), nothing stored */
            ih0[v] = -(1 << 30);
            iw0[v] = 0;
            x_off[v] = 0;
            y_off[v] = -1;
        }
    }
    const float *wg =
        wbuf + p.pix_off + (size_t)(m0 / CD_PIX_GROUP) * p.k_total * CD_PIX_GROUP + (m0 % CD_PIX_GROUP);

    float acc[TM][VEC];
#pragma unroll
    for (int i = 0; i < TM; i++)
#pragma unroll
        for (int v = 0; v < VEC; v++)
            acc[i][v] = 0.0f;

    for (int ci = slice; ci < p.c_in; ci += S) {
        const float *xc = x + (size_t)ci * in_plane;
#pragma unroll 1 /* the taps of one row unrolled: enough loads in flight without spilling */
        for (int kh = 0; kh < k_h; kh++) {
            int row[VEC];
            bool row_in[VEC];
#pragma unroll
            for (int v = 0; v < VEC; v++) {
                int ih = ih0[v] + kh * p.d_h;
                row_in[v] = ih >= 0 && ih < p.in_h;
                row[v] = row_in[v] ? x_off[v] + ih * p.in_w : 0;
            }
            const float *wrow = wg + (size_t)((ci * k_h + kh) * k_w) * CD_PIX_GROUP;
#pragma unroll
            for (int kw = 0; kw < k_w; kw++) {
                float xv[VEC];
#pragma unroll
                for (int v = 0; v < VEC; v++) {
                    int iw = iw0[v] + kw * p.d_w;
                    /* out of the image: a zero input (adds nothing) */
                    xv[v] = row_in[v] && iw >= 0 && iw < p.in_w ? __ldg(xc + row[v] + iw) : 0.0f;
                }
                const float4 *w4 = (const float4 *)(wrow + kw * CD_PIX_GROUP);
#pragma unroll
                for (int q = 0; q < TM / 4; q++) {
                    float4 w = __ldg(w4 + q);
#pragma unroll
                    for (int v = 0; v < VEC; v++) {
                        acc[4 * q + 0][v] = fmaf(xv[v], w.x, acc[4 * q + 0][v]);
                        acc[4 * q + 1][v] = fmaf(xv[v], w.y, acc[4 * q + 1][v]);
                        acc[4 * q + 2][v] = fmaf(xv[v], w.z, acc[4 * q + 2][v]);
                        acc[4 * q + 3][v] = fmaf(xv[v], w.w, acc[4 * q + 3][v]);
                    }
                }
            }
        }
    }

    if (S > 1) {
        if (slice > 0) {
#pragma unroll
            for (int i = 0; i < TM; i++)
#pragma unroll
                for (int v = 0; v < VEC; v++)
                    red[slice > 0 ? slice - 1 : 0][(i * VEC + v) * PIX + pt] = acc[i][v];
        }
        __syncthreads();
        if (slice > 0)
            return;
#pragma unroll
        for (int s = 0; s < S - 1; s++)
#pragma unroll
            for (int i = 0; i < TM; i++)
#pragma unroll
                for (int v = 0; v < VEC; v++)
                    acc[i][v] += red[s][(i * VEC + v) * PIX + pt];
    }

    const float *bias = wbuf + p.bias_off;
#pragma unroll
    for (int i = 0; i < TM; i++) {
        const int m = m0 + i;
        if (m >= p.c_out)
            break;
        const float bv = __ldg(bias + m);
        float *ym = y + (size_t)m * plane;
#pragma unroll
        for (int v = 0; v < VEC; v++)
            if (y_off[v] >= 0)
                ym[y_off[v]] = cd_out(p, y, ym + y_off[v], acc[i][v] + bv, act);
    }
}

/* ------------------------------------------------------------ CD_T3_*: tiled 3x3 kernels */

/* cp.async (sm_80+): global -> shared copies that do not stall the thread;
 * `valid` false fills the destination with zeros (src is not read, but must
 * be a valid address). Elsewhere (host emulation) a plain copy. */
static __device__ __forceinline__ void cd_cp_async_f32(float *dst, const float *src, bool valid)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    unsigned d = (unsigned)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(d), "l"(src), "r"(valid ? 4 : 0));
#else
    *dst = valid ? *src : 0.0f;
#endif
}

/* 16 bytes; dst and src 16-byte aligned */
static __device__ __forceinline__ void cd_cp_async_f32x4(float *dst, const float *src, bool valid)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    unsigned d = (unsigned)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(valid ? 16 : 0));
#else
    for (int i = 0; i < 4; i++)
        dst[i] = valid ? src[i] : 0.0f;
#endif
}

static __device__ __forceinline__ void cd_cp_async_commit(void)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;\n" ::);
#endif
}

/* waits until at most the latest N committed groups are still in flight */
template <int N>
static __device__ __forceinline__ void cd_cp_async_wait(void)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
#endif
}

/* Shared-memory row stride of a CD_T3 input tile: at least `need` floats and,
 * when a warp spans several row groups (TW < 32 columns each, `rows` rows
 * apart), such that rows * stride = TW (mod 32): the lanes' loads then fall
 * on distinct banks. */
static __host__ __device__ constexpr int cd_t3_row_stride(int need, int rows, int tw)
{
    if (tw >= 32)
        return need;
    for (int r = need; r < need + 32; r++)
        if ((rows * r) % 32 == tw)
            return r;
    return need;
}

/* Geometry of a CD_T3 instance: TH x TW output pixels, BM output channels,
 * TM channels per thread, S slices, CK input channels per chunk (halved
 * while two stages do not fit in 48 KiB), NSTAGE stages of the pipeline (3
 * where they fit, else 2), ST stride. */
template <int TH, int TW, int BM, int TM, int S, int CK_MAX, int ST>
struct cd_t3_geo {
    static constexpr int PX = CD_T3_PX;                         /* output rows per thread */
    static constexpr int PG = TH / PX * TW;                     /* pixel threads: TW columns x TH / PX row groups */
    static constexpr int CG = BM / TM;                          /* channel groups */
    static constexpr int T = PG * CG;                           /* threads per slice */
    static constexpr int THREADS = S * T;
    static constexpr int IH = (TH - 1) * ST + 3, IW = (TW - 1) * ST + 3; /* input tile with its halo */
    /* stride 1: rows of RS floats; stride 2: each row split into its even and
       odd columns (planes of IH rows of RS floats), so that lanes reading
       columns 2c + kw read consecutive words */
    static constexpr int RS = ST == 1 ? cd_t3_row_stride(IW, PX, TW) : cd_t3_row_stride(TW + 1, 2 * PX, TW);
    static constexpr int CH = ST == 1 ? IH * RS : 2 * IH * RS;  /* floats per input channel */
    static constexpr int stage_floats(int ck) { return (ck * CH + 3) / 4 * 4 + ck * 9 * BM; }
    static constexpr int RED = (S - 1) * BM * TH * TW;          /* the slices' partial sums */
    static constexpr int smem_floats(int ck, int stages)
    {
        return stages * stage_floats(ck) > RED ? stages * stage_floats(ck) : RED;
    }
    static constexpr int CK = smem_floats(CK_MAX, 2) <= 12288 ? CK_MAX
                              : smem_floats(CK_MAX / 2, 2) <= 12288 ? CK_MAX / 2 : CK_MAX / 4;
    static constexpr int NSTAGE = smem_floats(CK, 3) <= 12288 ? 3 : 2;
    static constexpr int CKS = CK / S;                          /* channels per slice per chunk */
    static constexpr int XS = (CK * CH + 3) / 4 * 4;            /* input floats of a stage (weights follow) */
    static constexpr int STAGE = stage_floats(CK);
    static constexpr int SMEM = smem_floats(CK, NSTAGE);
};

/* The tiled 3x3 kernels' (CD_T3_*, CD_TC_*) slice reduction: each thread
 * holds N partial sums v (its outputs, over its slice's share of the inputs);
 * slices 1 .. SLICES - 1 hand theirs to slice 0 through red (the stage
 * buffers, (SLICES - 1) * N * TPS floats, once every thread is done with
 * them: only empty copy groups are still pending), and slice 0 adds them in
 * slice order (deterministic). ts: the thread's index within its slice of
 * TPS threads. Every thread of the block must call it (two barriers); it
 * returns false to the threads of slices 1.., which are done. */
template <int N, int SLICES, int TPS>
static __device__ __forceinline__ bool cd_sum_slices(float (&v)[N], float *red, int slice, int ts)
{
    float *mine = red + ts; /* (s * N + e) * TPS: slice s + 1's sum e */
    __syncthreads();
    if (slice > 0) {
#pragma unroll
        for (int e = 0; e < N; e++)
            mine[((slice - 1) * N + e) * TPS] = v[e];
    }
    __syncthreads();
    if (slice > 0)
        return false;
#pragma unroll
    for (int s = 0; s < SLICES - 1; s++)
#pragma unroll
        for (int e = 0; e < N; e++)
            v[e] += mine[(s * N + e) * TPS];
    return true;
}

/* Copies chunk `c` (input channels c * CK ...) of a 3x3 convolution into
 * stage buffer `st` (CD_T3_*, CD_TC_*): the input tile of IH x IW (zeros
 * outside the image and past C_in) at a channel stride of CH floats (stride
 * 1: rows of RS floats; stride 2: each row split into its even and odd
 * columns, two planes of IH rows of RS floats), then at st + XS the weights
 * [ck][tap][BM] of output channels m0 .. m0 + BM - 1, rows of WSTR floats,
 * from the gemm section (zeros past C_in and C_out). */
template <int CK, int IH, int IW, int RS, int CH, int ST, int BM, int WSTR, int XS, int THREADS>
static __device__ __forceinline__ void cd_stage_chunk(float *st, const float *xb, const float *wbuf, const cd_params &p,
                                                      int c, int ih_base, int iw_base, int m0)
{
    const int ci0 = c * CK;
    const int in_plane = p.in_h * p.in_w;
    for (int e = threadIdx.x; e < CK * IH * IW; e += THREADS) {
        const int ck = e / (IH * IW), rem = e - ck * (IH * IW);
        const int r = rem / IW, col = rem - r * IW;
        const int ci = ci0 + ck, ih = ih_base + r, iw = iw_base + col;
        const bool ok = ci < p.c_in && (unsigned)ih < (unsigned)p.in_h && (unsigned)iw < (unsigned)p.in_w;
        const float *src = ok ? xb + (size_t)ci * in_plane + ih * p.in_w + iw : xb;
        float *dst = st + ck * CH + (ST == 1 ? r * RS + col : (col & 1) * (IH * RS) + r * RS + (col >> 1));
        cd_cp_async_f32(dst, src, ok);
    }
    float *ws = st + XS;
    const int row4 = BM / 4;
    for (int e = threadIdx.x; e < CK * 9 * row4; e += THREADS) {
        const int ck = e / (9 * row4), rem = e - ck * (9 * row4);
        const int tap = rem / row4, m4 = rem - tap * row4;
        const int ci = ci0 + ck, m = m0 + 4 * m4;
        /* c_out_pad is a multiple of 64 and m of 4: a row of 4 is wholly in or out */
        const bool ok = ci < p.c_in && m < p.c_out_pad;
        const float *src = ok ? wbuf + ((size_t)tap * p.c_in_pad + ci) * p.c_out_pad + m : wbuf;
        cd_cp_async_f32x4(ws + (ck * 9 + tap) * WSTR + 4 * m4, src, ok);
    }
}

/* CD_T3_* stage: cd_stage_chunk with the instance's geometry. */
template <int TH, int TW, int BM, int TM, int S, int CK_MAX, int ST>
static __device__ __forceinline__ void cd_t3_stage(float *st, const float *xb, const float *wbuf, const cd_params &p,
                                                   int c, int ih_base, int iw_base, int m0)
{
    typedef cd_t3_geo<TH, TW, BM, TM, S, CK_MAX, ST> G;
    cd_stage_chunk<G::CK, G::IH, G::IW, G::RS, G::CH, ST, BM, BM, G::XS, G::THREADS>(st, xb, wbuf, p, c, ih_base,
                                                                                     iw_base, m0);
}

/* CD_T3_*: blockIdx.x = tile of TH x TW output pixels (row-major over the
 * tiles of the map), blockIdx.y = tile of BM output channels, blockIdx.z =
 * image. Thread (slice, cg, rg, col) computes output rows rg * PX .. + PX - 1
 * of column col for channels cg * TM .. + TM - 1, over the input channels
 * slice * CKS .. + CKS - 1 of every chunk (in increasing chunk order; within
 * a channel taps in (kw, kh) order); the slices' partial sums are added in
 * slice order (deterministic). */
template <int TH, int TW, int BM, int TM, int S, int CK_MAX, int ST>
__global__ void __launch_bounds__(S *(TH / CD_T3_PX) * TW * (BM / TM),
                                  TM * CD_T3_PX >= 64 ? 1 : CD_MIN_BLOCKS(S *(TH / CD_T3_PX) * TW * (BM / TM)))
    cd_t3_kernel(const float *__restrict__ x, const float *__restrict__ wbuf, float *__restrict__ y, cd_params p,
                 op_activation act)
{
    CU_KERNEL_PROLOGUE();
    typedef cd_t3_geo<TH, TW, BM, TM, S, CK_MAX, ST> G;
    const int PX = G::PX;
    static_assert(TH % CD_T3_PX == 0 && TM % 4 == 0 && BM % TM == 0 && G::T % 32 == 0, "tile shape");
    static_assert(G::CK % S == 0 && G::CKS >= 1 && G::SMEM <= 12288, "chunk / shared memory");
    static_assert(CD_COUT_ALIGN % 4 == 0 && BM % 4 == 0, "weights copied 4 at a time");
    static_assert(G::THREADS == S * (TH / CD_T3_PX) * TW * (BM / TM), "launch bounds");
    __shared__ __align__(16) float smem[G::SMEM];

    const int slice = threadIdx.x / G::T, ts = threadIdx.x - slice * G::T;
    const int cg = ts / G::PG, pg = ts - cg * G::PG;
    const int rg = pg / TW, col = pg - rg * TW;

    const int tiles_w = (p.out_w + TW - 1) / TW;
    const int tile_r = blockIdx.x / tiles_w, tile_c = blockIdx.x - tile_r * tiles_w;
    const int oh0 = tile_r * TH, ow0 = tile_c * TW;
    const int m0 = blockIdx.y * BM;
    const int b = blockIdx.z;
    const int ih_base = oh0 * ST - p.p_h, iw_base = ow0 * ST - p.p_w;
    const float *xb = x + (size_t)b * p.c_in * p.in_h * p.in_w;
    const int chunks = (p.c_in + G::CK - 1) / G::CK;

    /* this thread's first input value and weights within a stage */
    const int x_off = slice * G::CKS * G::CH + rg * PX * ST * G::RS + col;
    const int w_off = G::XS + slice * G::CKS * 9 * BM + cg * TM;

    float acc[TM][PX];
#pragma unroll
    for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < PX; j++)
            acc[i][j] = 0.0f;

    /* pipeline: chunk c goes to stage c % NSTAGE; one commit group per chunk
       (empty past the last), NSTAGE - 1 chunks in flight ahead of the one used */
#pragma unroll
    for (int c = 0; c < G::NSTAGE - 1; c++) {
        if (c < chunks)
            cd_t3_stage<TH, TW, BM, TM, S, CK_MAX, ST>(smem + c * G::STAGE, xb, wbuf, p, c, ih_base, iw_base, m0);
        cd_cp_async_commit();
    }
    int use = 0, fill = G::NSTAGE - 1; /* stages of chunks c and c + NSTAGE - 1 */
    for (int c = 0; c < chunks; c++) {
        cd_cp_async_wait<G::NSTAGE - 2>(); /* chunk c has landed (this thread's copies) */
        __syncthreads(); /* ... everyone's; and everyone is done with chunk c - 1, whose stage is refilled now */
        if (c + G::NSTAGE - 1 < chunks)
            cd_t3_stage<TH, TW, BM, TM, S, CK_MAX, ST>(smem + fill * G::STAGE, xb, wbuf, p, c + G::NSTAGE - 1,
                                                       ih_base, iw_base, m0);
        cd_cp_async_commit();
        const float *xs = smem + use * G::STAGE + x_off;
        const float *ws = smem + use * G::STAGE + w_off;
        use = use + 1 == G::NSTAGE ? 0 : use + 1;
        fill = fill + 1 == G::NSTAGE ? 0 : fill + 1;
#pragma unroll
        for (int k = 0; k < G::CKS; k++) {
#pragma unroll
            for (int kw = 0; kw < 3; kw++) {
                /* the column's input values for the 3 kh of PX output rows */
                const int NR = (PX - 1) * ST + 3;
                const float *xk = xs + k * G::CH + (ST == 1 ? kw : (kw & 1) * (G::IH * G::RS) + (kw >> 1));
                float xv[NR];
#pragma unroll
                for (int r = 0; r < NR; r++)
                    xv[r] = xk[r * G::RS];
#pragma unroll
                for (int kh = 0; kh < 3; kh++) {
                    const float4 *w4 = (const float4 *)(ws + (k * 9 + kh * 3 + kw) * BM);
#pragma unroll
                    for (int q = 0; q < TM / 4; q++) {
                        const float4 w = w4[q];
#pragma unroll
                        for (int j = 0; j < PX; j++) {
                            const float v = xv[j * ST + kh];
                            acc[4 * q + 0][j] = fmaf(v, w.x, acc[4 * q + 0][j]);
                            acc[4 * q + 1][j] = fmaf(v, w.y, acc[4 * q + 1][j]);
                            acc[4 * q + 2][j] = fmaf(v, w.z, acc[4 * q + 2][j]);
                            acc[4 * q + 3][j] = fmaf(v, w.w, acc[4 * q + 3][j]);
                        }
                    }
                }
            }
        }
    }

    /* acc[i][j] is partial sum i * PX + j */
    if (S > 1 && !cd_sum_slices<TM * PX, S, G::T>(reinterpret_cast<float(&)[TM * PX]>(acc), smem, slice, ts))
        return;

    const int ow = ow0 + col;
    if (ow >= p.out_w)
        return;
    const int plane = p.out_h * p.out_w;
    const float *bias = wbuf + p.bias_off;
#pragma unroll
    for (int i = 0; i < TM; i++) {
        const int m = m0 + cg * TM + i;
        if (m >= p.c_out)
            break;
        const float bv = __ldg(bias + m);
        float *ym = y + ((size_t)b * p.c_out + m) * plane + ow;
#pragma unroll
        for (int j = 0; j < PX; j++) {
            const int oh = oh0 + rg * PX + j;
            if (oh < p.out_h) {
                float *dst = ym + oh * p.out_w;
                *dst = cd_out(p, y, dst, acc[i][j] + bv, act);
            }
        }
    }
}

#include "cuda/kernels/conv_tensor_core.cuh"

/* ------------------------------------------------------------ launch */

template <int BM, int BN, int TM, int TN, int S>
static void cd_launch_gemm(const float *x, const float *wbuf, float *y, const cd_params *p, op_activation act,
                           cudaStream_t stream)
{
    dim3 grid((unsigned)((p->n_pix + BN - 1) / BN), (unsigned)((p->c_out + BM - 1) / BM));
    cu_launch(cd_gemm_kernel<BM, BN, TM, TN, S>, grid, S * (BM / TM) * (BN / TN), 0, stream, x, wbuf, y, *p, act);
}

template <int TM, int VEC, int CG, int S>
static void cd_launch_pw(const float *x, const float *wbuf, float *y, const cd_params *p, op_activation act,
                         cudaStream_t stream)
{
    const int PT = 32;
    const int plane = p->out_h * p->out_w;
    const uintptr_t align = (uintptr_t)(sizeof(float) * VEC);
    const int vec_io = VEC > 1 && plane % VEC == 0 && (uintptr_t)x % align == 0 && (uintptr_t)y % align == 0;
    dim3 grid((unsigned)((plane + PT * VEC - 1) / (PT * VEC)), (unsigned)((p->c_out + CG * TM - 1) / (CG * TM)),
              (unsigned)p->batch);
    cu_launch(cd_pw_kernel<TM, VEC, PT, CG, S>, grid, PT * CG * S, 0, stream, x, wbuf, y, *p, act, vec_io);
}

template <int TM, int VEC, int WP, int S>
static void cd_launch_first(const float *x, const float *wbuf, float *y, const cd_params *p, op_activation act,
                            cudaStream_t stream)
{
    const int tile = WP * 32 * VEC;
    dim3 grid((unsigned)((p->n_pix + tile - 1) / tile), (unsigned)((p->c_out + TM - 1) / TM));
    /* the 3x3 taps unrolled (their loads in flight together) where the registers allow it */
    const int K3 = TM * VEC <= 32 ? 3 : 0;
    if (K3 == 3 && p->k_h == 3 && p->k_w == 3)
        cu_launch(cd_first_kernel<K3, K3, TM, VEC, WP, S>, grid, 32 * WP * S, 0, stream, x, wbuf, y, *p, act);
    else
        cu_launch(cd_first_kernel<0, 0, TM, VEC, WP, S>, grid, 32 * WP * S, 0, stream, x, wbuf, y, *p, act);
}

template <int TH, int TW, int BM, int TM, int S, int CK_MAX>
static void cd_launch_t3(const float *x, const float *wbuf, float *y, const cd_params *p, op_activation act,
                         cudaStream_t stream)
{
    dim3 grid((unsigned)(((p->out_h + TH - 1) / TH) * ((p->out_w + TW - 1) / TW)), (unsigned)((p->c_out + BM - 1) / BM),
              (unsigned)p->batch);
    if (p->s_h == 1)
        cu_launch(cd_t3_kernel<TH, TW, BM, TM, S, CK_MAX, 1>, grid, cd_t3_geo<TH, TW, BM, TM, S, CK_MAX, 1>::THREADS, 0, stream, x, wbuf, y, *p, act);
    else
        cu_launch(cd_t3_kernel<TH, TW, BM, TM, S, CK_MAX, 2>, grid, cd_t3_geo<TH, TW, BM, TM, S, CK_MAX, 2>::THREADS, 0, stream, x, wbuf, y, *p, act);
}

/* Launches variant `kind` (cd_eligible must hold); the launch error, if any. */
static inline cudaError_t cd_launch(int kind, const float *x, const float *wbuf, float *y, const cd_params *p,
                                    op_activation act, cudaStream_t stream)
{
    switch (kind) {
    case CD_PIXEL: {
        dim3 grid((unsigned)((p->n_pix + CD_PIX_THREADS - 1) / CD_PIX_THREADS),
                  (unsigned)((p->c_out + CD_PIX_GROUP - 1) / CD_PIX_GROUP));
        size_t smem = sizeof(float) * (size_t)p->k_total * CD_PIX_GROUP;
        if (p->k_h == 3 && p->k_w == 3)
            cu_launch(cd_pixel_kernel<3, 3>, grid, CD_PIX_THREADS, smem, stream, x, wbuf, y, *p, act);
        else
            cu_launch(cd_pixel_kernel<0, 0>, grid, CD_PIX_THREADS, smem, stream, x, wbuf, y, *p, act);
        break;
    }
    case CD_GEMM_64x64: cd_launch_gemm<64, 64, 4, 4, 1>(x, wbuf, y, p, act, stream); break;
    case CD_GEMM_32x64: cd_launch_gemm<32, 64, 2, 4, 1>(x, wbuf, y, p, act, stream); break;
    case CD_GEMM_32x32: cd_launch_gemm<32, 32, 2, 2, 1>(x, wbuf, y, p, act, stream); break;
    case CD_GEMM_16x128: cd_launch_gemm<16, 128, 2, 4, 1>(x, wbuf, y, p, act, stream); break;
    case CD_GEMM_8x128: cd_launch_gemm<8, 128, 1, 4, 1>(x, wbuf, y, p, act, stream); break;
    case CD_GEMM_4x256: cd_launch_gemm<4, 256, 1, 4, 1>(x, wbuf, y, p, act, stream); break;
    case CD_GEMM_64x32_S2: cd_launch_gemm<64, 32, 4, 4, 2>(x, wbuf, y, p, act, stream); break;
    case CD_GEMM_32x32_S4: cd_launch_gemm<32, 32, 4, 4, 4>(x, wbuf, y, p, act, stream); break;
    case CD_GEMM_16x64_S4: cd_launch_gemm<16, 64, 2, 4, 4>(x, wbuf, y, p, act, stream); break;
    case CD_GEMM_16x32_S4: cd_launch_gemm<16, 32, 2, 4, 4>(x, wbuf, y, p, act, stream); break;
    case CD_GEMM_16x32_S8: cd_launch_gemm<16, 32, 2, 4, 8>(x, wbuf, y, p, act, stream); break;
    case CD_GEMM_8x64_S4: cd_launch_gemm<8, 64, 1, 4, 4>(x, wbuf, y, p, act, stream); break;
    case CD_DOT: {
        dim3 grid((unsigned)p->n_pix, (unsigned)p->c_out);
        cu_launch(cd_dot_kernel, grid, CD_DOT_THREADS, 0, stream, x, wbuf, y, *p, act);
        break;
    }
    case CD_PW_16x4: cd_launch_pw<16, 4, 4, 1>(x, wbuf, y, p, act, stream); break;
    case CD_PW_8x4: cd_launch_pw<8, 4, 4, 1>(x, wbuf, y, p, act, stream); break;
    case CD_PW_8x2_S4: cd_launch_pw<8, 2, 2, 4>(x, wbuf, y, p, act, stream); break;
    case CD_PW_8x1_S8: cd_launch_pw<8, 1, 1, 8>(x, wbuf, y, p, act, stream); break;
    case CD_PW_4x1_S8: cd_launch_pw<4, 1, 1, 8>(x, wbuf, y, p, act, stream); break;
    case CD_FIRST_16x4: cd_launch_first<16, 4, 4, 1>(x, wbuf, y, p, act, stream); break;
    case CD_FIRST_16x2: cd_launch_first<16, 2, 4, 1>(x, wbuf, y, p, act, stream); break;
    case CD_FIRST_8x2: cd_launch_first<8, 2, 4, 1>(x, wbuf, y, p, act, stream); break;
    case CD_FIRST_8x1: cd_launch_first<8, 1, 4, 1>(x, wbuf, y, p, act, stream); break;
    case CD_FIRST_16x2_S4: cd_launch_first<16, 2, 2, 4>(x, wbuf, y, p, act, stream); break;
    case CD_FIRST_8x2_S4: cd_launch_first<8, 2, 2, 4>(x, wbuf, y, p, act, stream); break;
    case CD_T3_8x16_M32_S2: cd_launch_t3<8, 16, 32, 8, 2, 8>(x, wbuf, y, p, act, stream); break;
    case CD_T3_8x16_M16_S4: cd_launch_t3<8, 16, 16, 8, 4, 8>(x, wbuf, y, p, act, stream); break;
    case CD_T3_4x16_M32_S4: cd_launch_t3<4, 16, 32, 8, 4, 8>(x, wbuf, y, p, act, stream); break;
    case CD_T3_4x16_M16_S4: cd_launch_t3<4, 16, 16, 8, 4, 8>(x, wbuf, y, p, act, stream); break;
    case CD_T3_8x8_M32_S4: cd_launch_t3<8, 8, 32, 8, 4, 8>(x, wbuf, y, p, act, stream); break;
    case CD_T3_4x8_M16_T4_S8: cd_launch_t3<4, 8, 16, 4, 8, 16>(x, wbuf, y, p, act, stream); break;
    case CD_T3_8x32_M32_S1: cd_launch_t3<8, 32, 32, 8, 1, 8>(x, wbuf, y, p, act, stream); break;
    case CD_T3_8x16_M32_T16_S4: cd_launch_t3<8, 16, 32, 16, 4, 8>(x, wbuf, y, p, act, stream); break;
    case CD_TC_8x16_N3: return cd_launch_tc<8, 16, 3, 2, 1>(x, wbuf, y, p, act, stream);
    case CD_TC_16x16_N3: return cd_launch_tc<16, 16, 3, 2, 1>(x, wbuf, y, p, act, stream);
    case CD_TC_4x16_N3: return cd_launch_tc<4, 16, 3, 1, 1>(x, wbuf, y, p, act, stream);
    case CD_TC_8x32_N2: return cd_launch_tc<8, 32, 2, 2, 1>(x, wbuf, y, p, act, stream);
    case CD_TC_8x16_N4: return cd_launch_tc<8, 16, 4, 2, 1>(x, wbuf, y, p, act, stream);
    case CD_TC_4x16_N6: return cd_launch_tc<4, 16, 6, 1, 1>(x, wbuf, y, p, act, stream);
    case CD_TC_4x16_N8: return cd_launch_tc<4, 16, 8, 1, 1>(x, wbuf, y, p, act, stream);
    case CD_TC_4x8_N5: return cd_launch_tc<4, 8, 5, 1, 1>(x, wbuf, y, p, act, stream);
    case CD_TC_8x16_N1: return cd_launch_tc<8, 16, 1, 2, 1>(x, wbuf, y, p, act, stream);
    case CD_TC_4x16_N1: return cd_launch_tc<4, 16, 1, 1, 1>(x, wbuf, y, p, act, stream);
    case CD_TC_4x16_N1_K3: return cd_launch_tc<4, 16, 1, 1, 3>(x, wbuf, y, p, act, stream);
    case CD_TC_4x16_N3_K3: return cd_launch_tc<4, 16, 3, 1, 3>(x, wbuf, y, p, act, stream);
    case CD_TC_4x16_N6_K3: return cd_launch_tc<4, 16, 6, 1, 3>(x, wbuf, y, p, act, stream);
    case CD_TC_8x16_N3_K3: return cd_launch_tc<8, 16, 3, 2, 3>(x, wbuf, y, p, act, stream);
    case CD_TC_4x8_N5_K3: return cd_launch_tc<4, 8, 5, 1, 3>(x, wbuf, y, p, act, stream);
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

static inline const char *cd_kind_name(int kind)
{
    static const char *names[CD_COUNT] = {"cudnn",      "pixel",       "gemm64x64",   "gemm32x64",   "gemm32x32",
                                          "gemm16x128", "gemm8x128",   "gemm4x256",   "gemm64x32s2", "gemm32x32s4",
                                          "gemm16x64s4", "gemm16x32s4", "gemm16x32s8", "gemm8x64s4", "dot",
                                          "pw16x4",      "pw8x4",       "pw8x2s4",     "pw8x1s8",    "pw4x1s8",
                                          "first16x4",   "first16x2",   "first8x2",    "first8x1",   "first16x2s4",
                                          "first8x2s4",  "t3_8x16m32s2", "t3_8x16m16s4", "t3_4x16m32s4",
                                          "t3_4x16m16s4", "t3_8x8m32s4", "t3_4x8m16t4s8", "t3_8x32m32",
                                          "t3_8x16m32t16s4", "tc8x16n3", "tc16x16n3", "tc4x16n3", "tc8x32n2",
                                          "tc8x16n4",    "tc4x16n6",    "tc4x16n8",    "tc4x8n5",      "tc8x16n1",
                                          "tc4x16n1",    "tc4x16n1k3",  "tc4x16n3k3",  "tc4x16n6k3",   "tc8x16n3k3",
                                          "tc4x8n5k3"};
    return kind >= 0 && kind < CD_COUNT ? names[kind] : "?";
}

#endif
