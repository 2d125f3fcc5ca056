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
        const float *g = w + (size_t)i * 9;
        double t[A][3];
#pragma unroll
        for (int r = 0; r < A; r++)
#pragma unroll
            for (int j = 0; j < 3; j++)
                t[r][j] = wino_f<M>::g(r, 0) * g[j] + wino_f<M>::g(r, 1) * g[3 + j] + wino_f<M>::g(r, 2) * g[6 + j];
#pragma unroll
        for (int r = 0; r < A; r++)
#pragma unroll
            for (int s = 0; s < A; s++) {
                double v = t[r][0] * wino_f<M>::g(s, 0) + t[r][1] * wino_f<M>::g(s, 1) + t[r][2] * wino_f<M>::g(s, 2);
                wino_store(u + (size_t)(r * A + s) * n + i, (float)v);
            }
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
        const float *xc = x + ((size_t)b * p.c_in + c) * p.in_h * p.in_w;
        float d[A][A];
#pragma unroll
        for (int y = 0; y < A; y++) {
            const int h = h0 + y;
            const bool row = h >= 0 && h < p.in_h;
#pragma unroll
            for (int z = 0; z < A; z++) {
                const int ww = w0 + z;
                d[y][z] = row && ww >= 0 && ww < p.in_w ? __ldg(xc + h * p.in_w + ww) : 0.0f;
            }
        }
        float t1[A][A]; /* B^T d */
#pragma unroll
        for (int y = 0; y < A; y++)
#pragma unroll
            for (int z = 0; z < A; z++) {
                float s = 0.0f;
#pragma unroll
                for (int q = 0; q < A; q++)
                    if (wino_f<M>::bt(y, q) != 0.0f)
                        s += wino_f<M>::bt(y, q) * d[q][z];
                t1[y][z] = s;
            }
        T *vo = v + i;
        const size_t stride = (size_t)n;
#pragma unroll
        for (int y = 0; y < A; y++)
#pragma unroll
            for (int z = 0; z < A; z++) {
                float s = 0.0f;
#pragma unroll
                for (int q = 0; q < A; q++)
                    if (wino_f<M>::bt(z, q) != 0.0f)
                        s += t1[y][q] * wino_f<M>::bt(z, q);
                wino_store(vo + (size_t)(y * A + z) * stride, s);
            }
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
        const int h0 = (int)(r / p.tiles_w) * M, w0 = (int)(r % p.tiles_w) * M;
        float mv[A][A];
#pragma unroll
        for (int y = 0; y < A; y++)
#pragma unroll
            for (int z = 0; z < A; z++)
                mv[y][z] = __ldg(mm + (size_t)(y * A + z) * n + i);
        float t1[M][A]; /* A^T M */
#pragma unroll
        for (int y = 0; y < M; y++)
#pragma unroll
            for (int z = 0; z < A; z++) {
                float s = 0.0f;
#pragma unroll
                for (int q = 0; q < A; q++)
                    if (wino_f<M>::at(y, q) != 0.0f)
                        s += wino_f<M>::at(y, q) * mv[q][z];
                t1[y][z] = s;
            }
        const float bv = bias ? __ldg(bias + k) : 0.0f;
        const size_t plane = (size_t)p.out_h * p.out_w;
        const size_t base = ((size_t)b * p.c_out + k) * plane;
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
                float s = 0.0f;
#pragma unroll
                for (int q = 0; q < A; q++)
                    if (wino_f<M>::at(z, q) != 0.0f)
                        s += t1[y][q] * wino_f<M>::at(z, q);
                const size_t o = base + (size_t)h * p.out_w + ww;
                s += bv;
                if (residual)
                    s += __ldg(residual + o);
                out[o] = cu_act(act, s);
            }
        }
    }
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
