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
 * Every variant accumulates in float32 in a fixed order (no atomics):
 * results are deterministic.
 *
 * The weights are repacked once (cd_pack_weights) into one device buffer:
 *   [gemm weights: (tap, C_in padded to 8, C_out padded to 64)]
 *   [bias: C_out padded to 64, zeros without a bias]
 *   [pixel weights: (group of 16, k, 16), only when C_in * KH * KW <= 512]
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
    CD_COUNT
};

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
    int64_t pix = k_total <= CD_PIX_MAX_K ? (c_out + CD_PIX_GROUP - 1) / CD_PIX_GROUP * CD_PIX_GROUP * k_total : 0;
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

/* Whether variant `kind` is worth trying (and able to run) for p. */
static inline int cd_eligible(const cd_params *p, int kind)
{
    if (kind == CD_PIXEL)
        return p->pix_off >= 0 && p->c_out <= 128;
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

/* CD_PIXEL: blockIdx.y = group of 16 output channels, one pixel per thread.
 * KH, KW > 0: the kernel size known at compile time (the taps unrolled, so
 * that their loads are in flight together); 0: taken from p. */
template <int KH, int KW>
__global__ void __launch_bounds__(CD_PIX_THREADS)
    cd_pixel_kernel(const float *__restrict__ x, const float *__restrict__ wbuf, float *__restrict__ y, cd_params p,
                    op_activation act)
{
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
            yb[(size_t)c * plane] = cu_act(act, acc[c] + __ldg(bias + m0 + c));
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
                yb[(size_t)m * plane] = cu_act(act, acc[i][j] + __ldg(bias + m));
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
        y[((size_t)b * p.c_out + m) * plane + pix] = cu_act(act, s + __ldg(wbuf + p.bias_off + m));
    }
}

/* ------------------------------------------------------------ launch */

template <int BM, int BN, int TM, int TN, int S>
static void cd_launch_gemm(const float *x, const float *wbuf, float *y, const cd_params *p, op_activation act,
                           cudaStream_t stream)
{
    dim3 grid((unsigned)((p->n_pix + BN - 1) / BN), (unsigned)((p->c_out + BM - 1) / BM));
    cd_gemm_kernel<BM, BN, TM, TN, S><<<grid, S * (BM / TM) * (BN / TN), 0, stream>>>(x, wbuf, y, *p, act);
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
            cd_pixel_kernel<3, 3><<<grid, CD_PIX_THREADS, smem, stream>>>(x, wbuf, y, *p, act);
        else
            cd_pixel_kernel<0, 0><<<grid, CD_PIX_THREADS, smem, stream>>>(x, wbuf, y, *p, act);
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
        cd_dot_kernel<<<grid, CD_DOT_THREADS, 0, stream>>>(x, wbuf, y, *p, act);
        break;
    }
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

static inline const char *cd_kind_name(int kind)
{
    static const char *names[CD_COUNT] = {"cudnn",      "pixel",       "gemm64x64",   "gemm32x64",   "gemm32x32",
                                          "gemm16x128", "gemm8x128",   "gemm4x256",   "gemm64x32s2", "gemm32x32s4",
                                          "gemm16x64s4", "gemm16x32s4", "gemm16x32s8", "gemm8x64s4", "dot"};
    return kind >= 0 && kind < CD_COUNT ? names[kind] : "?";
}

#endif
