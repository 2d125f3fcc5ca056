/* Winograd float32 3x3 convolutions (stride 1, dilation 1, group 1, NCHW),
 * F(m x m, 3 x 3) with m = 2 (4x4 tiles) or m = 4 (6x6 tiles): 2.25x or 4x
 * fewer multiplications than the direct convolution, which is what the
 * large convolutions of the swapper, enhancer and recogniser models need in
 * float32, where cuDNN's direct kernels already run at the FMA peak.
 *
 * With A = m + 2 and P = batch x ceil(OH/m) x ceil(OW/m) output tiles:
 *   weights  U[xi][k][c] = (G g[k][c] G^T)[xi]       once, in prepare
 *                                                     (double precision)
 *   input    V[xi][c][p] = (B^T d[c][p] B)[xi]        d: the A x A input patch
 *                                                     of tile p, zero outside
 *   product  M[xi] = U[xi] . V[xi]                    A^2 GEMMs (K x C)(C x P),
 *                                                     one strided-batched cuBLAS
 *                                                     call made by conv.cu
 *   output   y[k][tile p] = act(A^T M[.][k][p] A + bias[k] + residual)
 * The transforms are Lavin & Gray's (points 0, +-1, +-2 for m = 4); checked
 * against the direct sum in double precision in tests/gpu/winograd_test.cu,
 * and every use is checked against cuDNN's output when it is chosen (conv.cu).
 * float16 variant (only F(2x2): F(4x4)'s transforms lose ~1% in float16):
 * U and V are stored in float16 and the GEMM runs on tensor cores with
 * float32 accumulation; the transforms compute in float32 and M stays
 * float32 (~5e-4 of the largest value off).
 * Deterministic: fixed summation order everywhere (cuBLAS without split-K
 * atomics for GEMMs of this kind).
 * Included by conv.cu; a header so that the stand-alone test can include it. */
#ifndef FACEGRAPH_CUDA_CONV_WINOGRAD_CUH
#define FACEGRAPH_CUDA_CONV_WINOGRAD_CUH

#include "cuda/cuda_ops.h"
#include "cuda/kernels/kernel_util.cuh"

typedef struct wino_params {
    int m, a;                /* output tile m x m, input tile a x a (a = m + 2) */
    int batch, c_in, c_out;
    int in_h, in_w, out_h, out_w;
    int p_h, p_w;            /* leading pads (trailing ones are the zeros past the input) */
    int tiles_h, tiles_w;
    int64_t tiles;           /* P = batch * tiles_h * tiles_w */
} wino_params;

/* 0 when the convolution fits (3x3, stride 1, dilation 1 checked by the caller), else -1. */
static inline int wino_params_init(wino_params *p, int m, int64_t batch, int64_t c_in, int64_t c_out, int64_t in_h,
                                   int64_t in_w, int64_t out_h, int64_t out_w, int64_t p_h, int64_t p_w)
{
    if (m != 2 && m != 4)
        return -1;
    memset(p, 0, sizeof *p);
    p->m = m;
    p->a = m + 2;
    int64_t th = (out_h + m - 1) / m, tw = (out_w + m - 1) / m;
    int64_t tiles = batch * th * tw;
    /* 32-bit index math in the kernels */
    if (tiles <= 0 || tiles * (c_in > c_out ? c_in : c_out) * p->a * p->a > CU_INDEX_LIMIT ||
        c_in * c_out * p->a * p->a > CU_INDEX_LIMIT || batch * c_out * out_h * out_w > CU_INDEX_LIMIT ||
        batch * c_in * in_h * in_w > CU_INDEX_LIMIT)
        return -1;
    p->batch = (int)batch;
    p->c_in = (int)c_in;
    p->c_out = (int)c_out;
    p->in_h = (int)in_h;
    p->in_w = (int)in_w;
    p->out_h = (int)out_h;
    p->out_w = (int)out_w;
    p->p_h = (int)p_h;
    p->p_w = (int)p_w;
    p->tiles_h = (int)th;
    p->tiles_w = (int)tw;
    p->tiles = tiles;
    return 0;
}

/* Elements of the transformed weights U, of the transformed input V and of the products M. */
static inline size_t wino_weight_floats(const wino_params *p)
{
    return (size_t)p->a * p->a * p->c_out * p->c_in;
}
static inline size_t wino_input_floats(const wino_params *p)
{
    return (size_t)p->a * p->a * p->c_in * p->tiles;
}
static inline size_t wino_product_floats(const wino_params *p)
{
    return (size_t)p->a * p->a * p->c_out * p->tiles;
}

/* ------------------------------------------------------------ transform matrices */

template <int M> struct wino_f;

template <> struct wino_f<2> {
    static __device__ __forceinline__ float bt(int i, int j)
    {
        const float t[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
        return t[i][j];
    }
    static __device__ __forceinline__ float at(int i, int j)
    {
        const float t[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};
        return t[i][j];
    }
    static __device__ __forceinline__ double g(int i, int j)
    {
        const double t[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
        return t[i][j];
    }
};

template <> struct wino_f<4> {
    static __device__ __forceinline__ float bt(int i, int j)
    {
        const float t[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                               {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
        return t[i][j];
    }
    static __device__ __forceinline__ float at(int i, int j)
    {
        const float t[4][6] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};
        return t[i][j];
    }
    static __device__ __forceinline__ double g(int i, int j)
    {
        const double t[6][3] = {{1.0 / 4, 0, 0},
                                {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                {0, 0, 1}};
        return t[i][j];
    }
};

/* ------------------------------------------------------------ the transforms of one tile */

/* u = G g G^T for one 3x3 filter g, in double precision. */
template <int M> static __device__ __forceinline__ void wino_filter_transform(const float *g, double u[M + 2][M + 2])
{
    const int A = M + 2;
    double t[A][3];
#pragma unroll
    for (int r = 0; r < A; r++)
#pragma unroll
        for (int j = 0; j < 3; j++)
            t[r][j] = wino_f<M>::g(r, 0) * g[j] + wino_f<M>::g(r, 1) * g[3 + j] + wino_f<M>::g(r, 2) * g[6 + j];
#pragma unroll
    for (int r = 0; r < A; r++)
#pragma unroll
        for (int s = 0; s < A; s++)
            u[r][s] = t[r][0] * wino_f<M>::g(s, 0) + t[r][1] * wino_f<M>::g(s, 1) + t[r][2] * wino_f<M>::g(s, 2);
}

/* The A x A input patch whose top-left corner is (h0, w0) of one channel plane, zero outside it (and everywhere unless `valid`). */
template <int M>
static __device__ __forceinline__ void wino_load_patch(const float *__restrict__ xc, int in_h, int in_w, int h0, int w0,
                                                       bool valid, float d[M + 2][M + 2])
{
    const int A = M + 2;
#pragma unroll
    for (int y = 0; y < A; y++) {
        const int h = h0 + y;
        const bool row = valid && h >= 0 && h < in_h;
#pragma unroll
        for (int z = 0; z < A; z++) {
            const int ww = w0 + z;
            d[y][z] = row && ww >= 0 && ww < in_w ? __ldg(xc + h * in_w + ww) : 0.0f;
        }
    }
}

/* out = T in T^T for T = B^T (R = M + 2: the input transform, v = B^T d B)
 * or T = A^T (R = M: the output transform, o = A^T m A), T's zeros skipped;
 * one summation order for both. */
template <int M, int R> static __device__ __forceinline__ float wino_t(int i, int j)
{
    return R == M ? wino_f<M>::at(i, j) : wino_f<M>::bt(i, j);
}
template <int M, int R>
static __device__ __forceinline__ void wino_sandwich(const float in[M + 2][M + 2], float out[R][R])
{
    const int A = M + 2;
    float t1[R][A]; /* T in */
#pragma unroll
    for (int y = 0; y < R; y++)
#pragma unroll
        for (int z = 0; z < A; z++) {
            float s = 0.0f;
#pragma unroll
            for (int q = 0; q < A; q++)
                if (wino_t<M, R>(y, q) != 0.0f)
                    s += wino_t<M, R>(y, q) * in[q][z];
            t1[y][z] = s;
        }
#pragma unroll
    for (int y = 0; y < R; y++)
#pragma unroll
        for (int z = 0; z < R; z++) {
            float s = 0.0f;
#pragma unroll
            for (int q = 0; q < A; q++)
                if (wino_t<M, R>(z, q) != 0.0f)
                    s += t1[y][q] * wino_t<M, R>(z, q);
            out[y][z] = s;
        }
}

/* y[k][tile at (h0, w0)] = act(o + bias + residual), the part inside the output. */
template <int M>
static __device__ __forceinline__ void wino_store_tile(const wino_params &p, const float o[M][M], int b, int k, int h0,
                                                       int w0, float bias, const float *__restrict__ residual,
                                                       float *__restrict__ out, op_activation act)
{
    const size_t base = ((size_t)b * p.c_out + k) * p.out_h * p.out_w;
#pragma unroll
    for (int y = 0; y < M; y++) {
        const int h = h0 + y;
        if (h >= p.out_h)
            break;
#pragma unroll
        for (int z = 0; z < M; z++) {
            const int ww = w0 + z;
            if (ww >= p.out_w)
                break;
            const size_t at = base + (size_t)h * p.out_w + ww;
            float s = o[y][z] + bias;
            if (residual)
                s += __ldg(residual + at);
            out[at] = cu_act(act, s);
        }
    }
}

/* ------------------------------------------------------------ kernels */

static __device__ __forceinline__ void wino_store(float *p, float v)
{
    *p = v;
}
static __device__ __forceinline__ void wino_store(__half *p, float v)
{
    *p = __float2half_rn(v);
}

/* U[xi][k][c] = G w[k][c] G^T, one thread per (k, c), in double precision; T: float or __half. */
template <int M, typename T>
static __global__ void wino_weights_kernel(wino_params p, const float *__restrict__ w, T *__restrict__ u)
{
    CU_KERNEL_PROLOGUE();
    const int A = M + 2;
    const uint32_t n = (uint32_t)p.c_out * (uint32_t)p.c_in;
    CU_LOOP(i, n)
    {
        double t[A][A];
        wino_filter_transform<M>(w + (size_t)i * 9, t);
#pragma unroll
        for (int r = 0; r < A; r++)
#pragma unroll
            for (int s = 0; s < A; s++)
                wino_store(u + (size_t)(r * A + s) * n + i, (float)t[r][s]);
    }
}

/* V[xi][c][p] = B^T d B, one thread per (c, p): i = c * P + p, so that the stores are coalesced. */
template <int M, typename T>
static __global__ void wino_input_kernel(wino_params p, const float *__restrict__ x, T *__restrict__ v)
{
    CU_KERNEL_PROLOGUE();
    const int A = M + 2;
    const uint32_t P = (uint32_t)p.tiles, n = (uint32_t)p.c_in * P;
    const uint32_t tiles_img = (uint32_t)(p.tiles_h * p.tiles_w);
    CU_LOOP(i, n)
    {
        const uint32_t c = i / P, t = i % P;
        const uint32_t b = t / tiles_img, r = t % tiles_img;
        const int h0 = (int)(r / p.tiles_w) * M - p.p_h, w0 = (int)(r % p.tiles_w) * M - p.p_w;
        float d[A][A], tv[A][A];
        wino_load_patch<M>(x + ((size_t)b * p.c_in + c) * p.in_h * p.in_w, p.in_h, p.in_w, h0, w0, true, d);
        wino_sandwich<M, M + 2>(d, tv);
#pragma unroll
        for (int y = 0; y < A; y++)
#pragma unroll
            for (int z = 0; z < A; z++)
                wino_store(v + i + (size_t)(y * A + z) * n, tv[y][z]);
    }
}

/* y = act(A^T M A + bias + residual) for one (k, p) per thread: i = k * P + p. */
template <int M>
static __global__ void wino_output_kernel(wino_params p, const float *__restrict__ mm, const float *__restrict__ bias,
                                          const float *__restrict__ residual, float *__restrict__ out, op_activation act)
{
    CU_KERNEL_PROLOGUE();
    const int A = M + 2;
    const uint32_t P = (uint32_t)p.tiles, n = (uint32_t)p.c_out * P;
    const uint32_t tiles_img = (uint32_t)(p.tiles_h * p.tiles_w);
    CU_LOOP(i, n)
    {
        const uint32_t k = i / P, t = i % P;
        const uint32_t b = t / tiles_img, r = t % tiles_img;
        float mv[A][A], o[M][M];
#pragma unroll
        for (int y = 0; y < A; y++)
#pragma unroll
            for (int z = 0; z < A; z++)
                mv[y][z] = __ldg(mm + (size_t)(y * A + z) * n + i);
        wino_sandwich<M, M>(mv, o);
        wino_store_tile<M>(p, o, (int)b, (int)k, (int)(r / p.tiles_w) * M, (int)(r % p.tiles_w) * M,
                           bias ? __ldg(bias + k) : 0.0f, residual, out, act);
    }
}

/* ------------------------------------------------------------ fused: one kernel per convolution
 * The three steps above in one kernel, for the small and mid-size maps of
 * the face detectors, where the separate transforms and cuBLAS's GEMM cost
 * more in launches and memory round trips than they save. A block computes
 * KB output channels of a TH x TW block of tiles (TB = TH * TW tiles):
 *   for each chunk of CB input channels:
 *     the threads transform the CB * TB (channel, tile) input patches into
 *     shared memory (Vs[xi][c][t]); the block copies the chunk's transformed
 *     weights (Us[c][xi][k], laid out in that order by wf_weights_kernel);
 *     each of the A^2 groups of NT threads owns one xi and accumulates its
 *     KB x TB products, KR x TR per thread, in registers;
 *   then the products go through shared memory (Ms[xi][k][t]) to the
 *   threads that apply A^T . A, bias, residual and activation per (k, tile).
 * The next chunk's patches and weights are loaded into registers before the
 * current chunk's products, so their latency overlaps the arithmetic.
 * Weights: U[k block][c (padded to CB)][xi][k in block], zeros past c_in
 * and c_out. Summation order is fixed (deterministic). The index math is
 * mirrored in tools/emulate_wf_conv.py (numpy, no GPU): change both. */

template <int M, int KB, int TH, int TW, int KR, int TR, int CB_> struct wf_config {
    enum {
        A = M + 2,
        A2 = A * A,
        TB = TH * TW,
        CB = CB_,
        NT = (KB / KR) * (TB / TR), /* threads per xi */
        THREADS = A2 * NT,
        PP = (CB * TB + THREADS - 1) / THREADS, /* input patches per thread and chunk */
        PC = THREADS / TB,           /* channels of the chunk one pass of the block covers */
        VS = CB * TB + 4,            /* floats per xi in Vs (the 4: no bank conflicts between xi) */
        US = CB * A2 * KB,           /* floats of one chunk of weights */
        OPS = US + A2 * VS,
        MS = A2 * KB * TB,
        SMEM = OPS > MS ? OPS : MS,
        UV = (US / 4 + THREADS - 1) / THREADS /* float4 of weights per thread and chunk */
    };
};

/* r[0..N) = s[0..N), 16-byte loads where N allows (s aligned accordingly). */
template <int N> static __device__ __forceinline__ void wf_lds(const float *s, float *r)
{
    if (N % 4 == 0) {
#pragma unroll
        for (int i = 0; i < N / 4; i++) {
            const float4 q = *(const float4 *)(s + 4 * i);
            r[4 * i] = q.x, r[4 * i + 1] = q.y, r[4 * i + 2] = q.z, r[4 * i + 3] = q.w;
        }
    } else if (N % 2 == 0) {
#pragma unroll
        for (int i = 0; i < N / 2; i++) {
            const float2 q = *(const float2 *)(s + 2 * i);
            r[2 * i] = q.x, r[2 * i + 1] = q.y;
        }
    } else {
#pragma unroll
        for (int i = 0; i < N; i++)
            r[i] = s[i];
    }
}

/* Into registers, chunk `ch`'s input patches of this thread (channel pc + i * C::PC of the chunk, for the
 * tile whose patch starts at (ph0, pw0); zeros past the chunk and past c_in) and its share of the chunk's
 * transformed weights (from uk, the block's first chunk). */
template <typename C, int M>
static __device__ __forceinline__ void wf_fetch_chunk(const wino_params &p, const float *__restrict__ xb, size_t plane,
                                                      int ch, int pc, int ph0, int pw0, const float4 *__restrict__ uk,
                                                      int tid, float d[C::PP][M + 2][M + 2], float4 ur[C::UV])
{
#pragma unroll
    for (int i = 0; i < C::PP; i++) {
        const int c = pc + i * C::PC, cc = ch * C::CB + c;
        wino_load_patch<M>(xb + (size_t)cc * plane, p.in_h, p.in_w, ph0, pw0, c < C::CB && cc < p.c_in, d[i]);
    }
    const float4 *un = uk + (size_t)ch * (C::US / 4);
#pragma unroll
    for (int i = 0; i < C::UV; i++)
        if (tid + i * C::THREADS < C::US / 4)
            ur[i] = __ldg(un + tid + i * C::THREADS);
}

/* grid: (tile blocks, k blocks, batch); c_pad: c_in rounded up to CB. */
template <int M, int KB, int TH, int TW, int KR, int TR, int CB>
static __global__ void __launch_bounds__(wf_config<M, KB, TH, TW, KR, TR, CB>::THREADS)
    wf_kernel(wino_params p, int c_pad, const float *__restrict__ x, const float *__restrict__ u,
              const float *__restrict__ bias, const float *__restrict__ residual, float *__restrict__ out,
              op_activation act)
{
    CU_KERNEL_PROLOGUE();
    typedef wf_config<M, KB, TH, TW, KR, TR, CB> C;
    const int A = C::A, A2 = C::A2, TB = C::TB, PP = C::PP;
    static_assert(KB % KR == 0 && TB % TR == 0 && TR % 4 == 0 && KB % 4 == 0, "tile shape");
    __shared__ __align__(16) float smem[C::SMEM];
    float *us = smem;         /* [CB][A2][KB] */
    float *vs = smem + C::US; /* [A2][VS], each [CB][TB] */
    const int tid = threadIdx.x;
    const int blocks_w = (p.tiles_w + TW - 1) / TW;
    const int tile_y0 = (int)(blockIdx.x / blocks_w) * TH, tile_x0 = (int)(blockIdx.x % blocks_w) * TW;
    const int kb = blockIdx.y, b = blockIdx.z;
    const size_t plane = (size_t)p.in_h * p.in_w;
    const float *xb = x + (size_t)b * p.c_in * plane;

    /* input transform: patch i of this thread is channel pc + i * PC of the chunk, tile pt of the block */
    static_assert(C::THREADS % TB == 0 && PP * C::PC >= CB, "whole passes over the chunk's patches");
    const int pc = tid / TB, pt = tid % TB;
    const int ph0 = (tile_y0 + pt / TW) * M - p.p_h, pw0 = (tile_x0 + pt % TW) * M - p.p_w;
    /* products: xi, and the KR x TR block (kq, tq) of its KB x TB */
    const int xi = tid / C::NT, sub = tid % C::NT;
    const int kq = sub / (TB / TR), tq = sub % (TB / TR);

    float acc[KR][TR];
#pragma unroll
    for (int i = 0; i < KR; i++)
#pragma unroll
        for (int j = 0; j < TR; j++)
            acc[i][j] = 0.0f;

    const int chunks = c_pad / CB;
    const float4 *uk = (const float4 *)(u + (size_t)kb * c_pad * A2 * KB);
    float d[PP][A][A];
    float4 ur[C::UV];
    wf_fetch_chunk<C, M>(p, xb, plane, 0, pc, ph0, pw0, uk, tid, d, ur);

    for (int ch = 0; ch < chunks; ch++) {
        __syncthreads(); /* the previous chunk's products are done with us and vs */
#pragma unroll
        for (int i = 0; i < PP; i++) {
            const int c = pc + i * C::PC;
            if (c < CB) {
                float v[A][A];
                wino_sandwich<M, M + 2>(d[i], v);
#pragma unroll
                for (int y = 0; y < A; y++)
#pragma unroll
                    for (int z = 0; z < A; z++)
                        vs[(y * A + z) * C::VS + c * TB + pt] = v[y][z];
            }
        }
#pragma unroll
        for (int i = 0; i < C::UV; i++)
            if (tid + i * C::THREADS < C::US / 4)
                ((float4 *)us)[tid + i * C::THREADS] = ur[i];
        __syncthreads();
        if (ch + 1 < chunks) /* the next chunk's loads, in flight during the products */
            wf_fetch_chunk<C, M>(p, xb, plane, ch + 1, pc, ph0, pw0, uk, tid, d, ur);
        const float *ux = us + xi * KB + kq * KR, *vx = vs + xi * C::VS + tq * TR;
#pragma unroll
        for (int c = 0; c < CB; c++) {
            float ka[KR], ta[TR];
            wf_lds<KR>(ux + c * A2 * KB, ka);
            wf_lds<TR>(vx + c * TB, ta);
#pragma unroll
            for (int i = 0; i < KR; i++)
#pragma unroll
                for (int j = 0; j < TR; j++)
                    acc[i][j] = fmaf(ka[i], ta[j], acc[i][j]);
        }
    }

    __syncthreads(); /* everyone is done with us and vs: smem becomes Ms[xi][k][t] */
    float *ms = smem;
#pragma unroll
    for (int i = 0; i < KR; i++)
#pragma unroll
        for (int j = 0; j < TR; j += 4)
            *(float4 *)(ms + (xi * KB + kq * KR + i) * TB + tq * TR + j) =
                make_float4(acc[i][j], acc[i][j + 1], acc[i][j + 2], acc[i][j + 3]);
    __syncthreads();
    for (int q = tid; q < KB * TB; q += C::THREADS) {
        const int kk = q / TB, t = q % TB, k = kb * KB + kk;
        const int ty = tile_y0 + t / TW, tx = tile_x0 + t % TW;
        if (k >= p.c_out || ty >= p.tiles_h || tx >= p.tiles_w)
            continue;
        float mv[A][A], o[M][M];
#pragma unroll
        for (int y = 0; y < A; y++)
#pragma unroll
            for (int z = 0; z < A; z++)
                mv[y][z] = ms[((y * A + z) * KB + kk) * TB + t];
        wino_sandwich<M, M>(mv, o);
        wino_store_tile<M>(p, o, b, k, ty * M, tx * M, bias ? __ldg(bias + k) : 0.0f, residual, out, act);
    }
}

/* U[k block][c][xi][k in block] = G w[k][c] G^T, one thread per (k block, c, k in block), zeros past c_in / c_out. */
template <int M>
static __global__ void wf_weights_kernel(wino_params p, int kb_size, int c_pad, const float *__restrict__ w,
                                         float *__restrict__ u)
{
    CU_KERNEL_PROLOGUE();
    const int A = M + 2;
    const int k_blocks = (p.c_out + kb_size - 1) / kb_size;
    const uint32_t n = (uint32_t)k_blocks * (uint32_t)c_pad * (uint32_t)kb_size;
    CU_LOOP(i, n)
    {
        const int kk = (int)(i % kb_size), c = (int)(i / kb_size % c_pad), kb = (int)(i / kb_size / c_pad);
        const int k = kb * kb_size + kk;
        double t[A][A];
        if (k < p.c_out && c < p.c_in) {
            wino_filter_transform<M>(w + ((size_t)k * p.c_in + c) * 9, t);
        } else {
#pragma unroll
            for (int r = 0; r < A; r++)
#pragma unroll
                for (int s = 0; s < A; s++)
                    t[r][s] = 0.0;
        }
        float *o = u + ((size_t)(kb * c_pad + c) * A * A) * kb_size + kk;
#pragma unroll
        for (int r = 0; r < A; r++)
#pragma unroll
            for (int s = 0; s < A; s++)
                o[(size_t)(r * A + s) * kb_size] = (float)t[r][s];
    }
}

#define WF_TILES_H 4 /* tile rows of a block, every variant */

/* The fused variants: tile m, output channels per block (k), tiles per block (t), input channels per chunk (c). */
/* All F(2x2): F(4x4) variants (16 and 8 output channels, 4x4 tiles) were
 * slower than every F(2x2) one on all sixteen detector shapes measured on
 * the H100 (one 288-thread block per SM at 135-168 registers, and only 128
 * of its threads transforming input patches), so there are none. Nor is
 * there one of 48 channels over 4x2 tiles (twice the blocks of K48_T16): it
 * was the fastest on none of the sixteen (48 -> 48 at 80x80: 13.4 us
 * against 11.4). */
enum wf_variant {
    WF_F2_K16 = 0,
    WF_F2_K8,
    WF_F2_K8_C16,
    WF_F2_K16_T16_C16,
    WF_F2_K24_T16, /* 24 or 48 output channels: each input patch transformed once per block */
    WF_F2_K48_T16,
    WF_F2_K32_T16,     /* 64 output channels in two blocks (twice the blocks of one of 64, which would not fit) */
    WF_F2_K24_T16_C12, /* 12 input channels in one chunk, none padded */
    WF_F2_K12_C12,
    WF_COUNT
};
/* Each variant's template arguments M, KB, TH, TW, KR, TR, CB (wf_config): tile, output channels, tile
 * rows and columns of a block, each thread's share of the products (KR x TR), input channels per chunk */
#define WF_CONFIG_F2_K16 2, 16, WF_TILES_H, 8, 4, 8, 8
#define WF_CONFIG_F2_K8 2, 8, WF_TILES_H, 8, 2, 8, 8
#define WF_CONFIG_F2_K8_C16 2, 8, WF_TILES_H, 8, 2, 8, 16
#define WF_CONFIG_F2_K16_T16_C16 2, 16, WF_TILES_H, 4, 4, 4, 16
#define WF_CONFIG_F2_K24_T16 2, 24, WF_TILES_H, 4, 6, 4, 8
#define WF_CONFIG_F2_K48_T16 2, 48, WF_TILES_H, 4, 12, 4, 8
#define WF_CONFIG_F2_K32_T16 2, 32, WF_TILES_H, 4, 8, 4, 8
#define WF_CONFIG_F2_K24_T16_C12 2, 24, WF_TILES_H, 4, 6, 4, 12
#define WF_CONFIG_F2_K12_C12 2, 12, WF_TILES_H, 8, 3, 8, 12

/* What the host needs of them (made from the same lists, so the two cannot disagree). */
static const struct wf_shape {
    int m, kb, tw, cb;
} wf_shapes[WF_COUNT] = {
#define WF_SHAPE(...) WF_SHAPE_OF(__VA_ARGS__)
#define WF_SHAPE_OF(m, kb, th, tw, kr, tr, cb) {m, kb, tw, cb}
    WF_SHAPE(WF_CONFIG_F2_K16),         WF_SHAPE(WF_CONFIG_F2_K8),      WF_SHAPE(WF_CONFIG_F2_K8_C16),
    WF_SHAPE(WF_CONFIG_F2_K16_T16_C16), WF_SHAPE(WF_CONFIG_F2_K24_T16), WF_SHAPE(WF_CONFIG_F2_K48_T16),
    WF_SHAPE(WF_CONFIG_F2_K32_T16),     WF_SHAPE(WF_CONFIG_F2_K24_T16_C12), WF_SHAPE(WF_CONFIG_F2_K12_C12),
#undef WF_SHAPE_OF
#undef WF_SHAPE
};

static inline int wf_tile(int v)
{
    return wf_shapes[v].m;
}
static inline int wf_k_block(int v)
{
    return wf_shapes[v].kb;
}
static inline int wf_tiles_w(int v)
{
    return wf_shapes[v].tw;
}
/* c_in rounded up to variant v's chunk */
static inline int wf_c_pad(const wino_params *p, int v)
{
    return (p->c_in + wf_shapes[v].cb - 1) / wf_shapes[v].cb * wf_shapes[v].cb;
}
/* Floats of variant v's transformed weights (p made with wf_tile(v)). */
static inline size_t wf_weight_floats(const wino_params *p, int v)
{
    size_t k_blocks = (size_t)(p->c_out + wf_k_block(v) - 1) / wf_k_block(v);
    return k_blocks * wf_c_pad(p, v) * p->a * p->a * wf_k_block(v);
}

/* ------------------------------------------------------------ launches (the launch error, if any) */

/* u, v: float, or __half when `half` (F(2x2) only). */
static inline cudaError_t wino_transform_weights(const wino_params *p, int half, const float *w, void *u,
                                                 cudaStream_t stream)
{
    uint32_t n = (uint32_t)p->c_out * (uint32_t)p->c_in;
    if (half)
        return p->m == 2 ? cu_launch(wino_weights_kernel<2, __half>, cu_blocks(n), CU_THREADS, 0, stream, *p, w,
                                     (__half *)u)
                         : cudaErrorInvalidValue;
    if (p->m == 2)
        return cu_launch(wino_weights_kernel<2, float>, cu_blocks(n), CU_THREADS, 0, stream, *p, w, (float *)u);
    return cu_launch(wino_weights_kernel<4, float>, cu_blocks(n), CU_THREADS, 0, stream, *p, w, (float *)u);
}

static inline cudaError_t wino_transform_input(const wino_params *p, int half, const float *x, void *v,
                                               cudaStream_t stream)
{
    int64_t n = (int64_t)p->c_in * p->tiles;
    if (half)
        return p->m == 2 ? cu_launch(wino_input_kernel<2, __half>, cu_blocks(n), CU_THREADS, 0, stream, *p, x,
                                     (__half *)v)
                         : cudaErrorInvalidValue;
    if (p->m == 2)
        return cu_launch(wino_input_kernel<2, float>, cu_blocks(n), CU_THREADS, 0, stream, *p, x, (float *)v);
    return cu_launch(wino_input_kernel<4, float>, cu_blocks(n), CU_THREADS, 0, stream, *p, x, (float *)v);
}

static inline cudaError_t wino_transform_output(const wino_params *p, const float *mm, const float *bias,
                                                const float *residual, float *y, op_activation act,
                                                cudaStream_t stream)
{
    int64_t n = (int64_t)p->c_out * p->tiles;
    if (p->m == 2)
        return cu_launch(wino_output_kernel<2>, cu_blocks(n), CU_THREADS, 0, stream, *p, mm, bias, residual, y, act);
    return cu_launch(wino_output_kernel<4>, cu_blocks(n), CU_THREADS, 0, stream, *p, mm, bias, residual, y, act);
}

static inline cudaError_t wf_transform_weights(const wino_params *p, int v, const float *w, float *u, cudaStream_t stream)
{
    const int kb = wf_k_block(v), c_pad = wf_c_pad(p, v);
    int64_t n = (int64_t)((p->c_out + kb - 1) / kb) * c_pad * kb;
    if (p->m != 2)
        return cudaErrorInvalidValue;
    return cu_launch(wf_weights_kernel<2>, cu_blocks(n), CU_THREADS, 0, stream, *p, kb, c_pad, w, u);
}

/* The fused convolution with variant v (p made with wf_tile(v), u from wf_transform_weights). */
static inline cudaError_t wf_launch(const wino_params *p, int v, const float *x, const float *u, const float *bias,
                                    const float *residual, float *y, op_activation act, cudaStream_t stream)
{
    dim3 grid((unsigned)(((p->tiles_h + WF_TILES_H - 1) / WF_TILES_H) *
                         ((p->tiles_w + wf_tiles_w(v) - 1) / wf_tiles_w(v))),
              (unsigned)((p->c_out + wf_k_block(v) - 1) / wf_k_block(v)), (unsigned)p->batch);
    if (grid.y > 65535 || grid.z > 65535)
        return cudaErrorInvalidConfiguration;
    const int c_pad = wf_c_pad(p, v);
#define WF_LAUNCH(cfg)                                                                                                 \
    cu_launch(wf_kernel<cfg>, grid, wf_config<cfg>::THREADS, 0, stream, *p, c_pad, x, u, bias, residual, y, act)
    switch (v) {
    case WF_F2_K16: return WF_LAUNCH(WF_CONFIG_F2_K16);
    case WF_F2_K8: return WF_LAUNCH(WF_CONFIG_F2_K8);
    case WF_F2_K8_C16: return WF_LAUNCH(WF_CONFIG_F2_K8_C16);
    case WF_F2_K16_T16_C16: return WF_LAUNCH(WF_CONFIG_F2_K16_T16_C16);
    case WF_F2_K24_T16: return WF_LAUNCH(WF_CONFIG_F2_K24_T16);
    case WF_F2_K48_T16: return WF_LAUNCH(WF_CONFIG_F2_K48_T16);
    case WF_F2_K32_T16: return WF_LAUNCH(WF_CONFIG_F2_K32_T16);
    case WF_F2_K24_T16_C12: return WF_LAUNCH(WF_CONFIG_F2_K24_T16_C12);
    case WF_F2_K12_C12: return WF_LAUNCH(WF_CONFIG_F2_K12_C12);
    }
#undef WF_LAUNCH
    return cudaErrorInvalidValue;
}

/* M[xi] = U[xi] . V[xi] for every xi: one strided-batched GEMM in cuBLAS's
 * column-major terms (M^T = V^T U^T); float32 M, float32 accumulation, U
 * and V in float16 when `half`. The handle's stream, math mode and
 * workspace are the caller's. */
static inline cublasStatus_t wino_products(cublasHandle_t h, const wino_params *p, int half, const void *u,
                                           const void *v, float *mm)
{
    const float one = 1.0f, zero = 0.0f;
    const int P = (int)p->tiles;
    const cudaDataType_t in = half ? CUDA_R_16F : CUDA_R_32F;
    return cublasGemmStridedBatchedEx(h, CUBLAS_OP_N, CUBLAS_OP_N, P, p->c_out, p->c_in, &one, v, in, P,
                                      (long long)p->c_in * P, u, in, p->c_in, (long long)p->c_out * p->c_in, &zero,
                                      mm, CUDA_R_32F, P, (long long)p->c_out * P, p->a * p->a, CUBLAS_COMPUTE_32F,
                                      CUBLAS_GEMM_DEFAULT);
}

#endif
