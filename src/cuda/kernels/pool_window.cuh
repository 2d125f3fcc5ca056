/* Fast 2-D MaxPool / AveragePool on the GPU (float32, NCHW, no dilation, no
 * Indices output), for src/cuda/kernels/misc.cu. Everything else (3-D,
 * dilations, LpPool, Indices, other dtypes, tensors of 2^31 elements or
 * more) stays on misc.cu's generic int64 kernel.
 *
 * Kernels (index math 32-bit, geometry resolved on the host):
 *   PW_PAIR   2x2 windows, stride 2: each thread makes 2 adjacent outputs of
 *             a row from one float4 per input row (when the leading column
 *             pad is 0 and rows are 16-byte aligned).
 *   PW_THREAD one thread per output, any window, stride and padding.
 *   PW_BLOCK  one block per output, for windows much larger than the output
 *             plane (a window over the whole plane, like pfld's): threads
 *             take the window's elements in turn, then a tree reduction in
 *             a fixed order (deterministic).
 * Arithmetic follows the CPU's 2-D fast path (src/ops/pool.c pool_2d_fast):
 * float32 sums, per window column the sum down its rows, then the columns
 * left to right (PW_BLOCK: in its own fixed order), divided by the taps inside
 * the input (or inside the padded input with count_include_pad); taps in the
 * padding are skipped; an empty window gives -inf (max) or 0 (average).
 *
 * Include after "cuda/cuda_ops.h" and "cuda/kernels/kernel_util.cuh";
 * everything here is static (tests/gpu/dwpool_test.cu includes it too). */
#ifndef FACEGRAPH_CUDA_POOL_WINDOW_CUH
#define FACEGRAPH_CUDA_POOL_WINDOW_CUH

#include "cuda/cuda_ops.h"
#include "cuda/kernels/kernel_util.cuh"

#include <math.h>
#include <stdint.h>
#include <string.h>

enum pw_kind { PW_NONE = 0, PW_PAIR, PW_THREAD, PW_BLOCK, PW_KIND_COUNT };

#define PW_BLOCK_THREADS 128

typedef struct pw_params {
    int is_max;            /* 1: MaxPool, 0: AveragePool */
    int count_include_pad;
    uint32_t planes, in_h, in_w, out_h, out_w;
    int k_h, k_w, s_h, s_w;
    int p_t, p_l, p_b, p_r; /* pads: top, left (leading), bottom, right */
    uint32_t total;         /* planes * out_h * out_w */
    uint32_t pairs;         /* PW_PAIR: ceil(out_w / 2) */
    int vec;                /* PW_PAIR: float4 loads (p_l == 0, in_w % 4 == 0, x aligned) */
} pw_params;

typedef struct pw_plan {
    int kind; /* enum pw_kind */
    pw_params p;
} pw_plan;

/* Taps of a window [start, start + k) inside [lo, hi). */
static __host__ __device__ __forceinline__ int pw_taps_inside(int start, int k, int lo, int hi)
{
    int b = start > lo ? start : lo, e = start + k < hi ? start + k : hi;
    return e > b ? e - b : 0;
}

/* The average's divisor for a window starting at (ih0, iw0). */
static __device__ __forceinline__ int pw_count(const pw_params &p, int ih0, int iw0)
{
    if (p.count_include_pad)
        return pw_taps_inside(ih0, p.k_h, -p.p_t, (int)p.in_h + p.p_b) *
               pw_taps_inside(iw0, p.k_w, -p.p_l, (int)p.in_w + p.p_r);
    return pw_taps_inside(ih0, p.k_h, 0, (int)p.in_h) * pw_taps_inside(iw0, p.k_w, 0, (int)p.in_w);
}

/* ------------------------------------------------------------ one thread per output */

static __global__ void pool_thread_kernel(const float *__restrict__ x, float *__restrict__ y, pw_params p)
{
    CU_KERNEL_PROLOGUE();
    CU_LOOP(i, p.total)
    {
        uint32_t ow = i % p.out_w, t = i / p.out_w;
        uint32_t oh = t % p.out_h, plane = t / p.out_h;
        int ih0 = (int)oh * p.s_h - p.p_t, iw0 = (int)ow * p.s_w - p.p_l;
        int hb = ih0 > 0 ? ih0 : 0, he = ih0 + p.k_h < (int)p.in_h ? ih0 + p.k_h : (int)p.in_h;
        int wb = iw0 > 0 ? iw0 : 0, we = iw0 + p.k_w < (int)p.in_w ? iw0 + p.k_w : (int)p.in_w;
        const float *xp = x + plane * p.in_h * p.in_w;
        if (p.is_max) {
            float best = -INFINITY;
            for (int iw = wb; iw < we; iw++)
                for (int ih = hb; ih < he; ih++) {
                    float v = __ldg(xp + (uint32_t)ih * p.in_w + iw);
                    best = v > best ? v : best;
                }
            y[i] = best;
            continue;
        }
        float sum = 0.0f;
        if (hb < he)
            for (int iw = wb; iw < we; iw++) {
                const float *col = xp + (uint32_t)hb * p.in_w + iw;
                float s = __ldg(col);
                for (int ih = hb + 1; ih < he; ih++) {
                    col += p.in_w;
                    s += __ldg(col);
                }
                sum = iw == wb ? s : sum + s;
            }
        int count = pw_count(p, ih0, iw0);
        y[i] = hb < he && count > 0 ? sum / (float)count : 0.0f;
    }
}

/* ------------------------------------------------------------ 2x2, stride 2, two outputs a thread */

/* Outputs 2j and 2j + 1 of a row read input columns 4j .. 4j + 3 (less the
 * leading pad) of the window's two input rows. */
static __global__ void pool_pair_kernel(const float *__restrict__ x, float *__restrict__ y, pw_params p)
{
    CU_KERNEL_PROLOGUE();
    uint32_t items = p.planes * p.out_h * p.pairs;
    CU_LOOP(i, items)
    {
        uint32_t j = i % p.pairs, t = i / p.pairs;
        uint32_t oh = t % p.out_h, plane = t / p.out_h;
        int ih0 = 2 * (int)oh - p.p_t, iw0 = 4 * (int)j - p.p_l; /* window of output 2j starts at iw0 */
        int in_h = (int)p.in_h, in_w = (int)p.in_w;
        int ok0 = ih0 >= 0 && ih0 < in_h, ok1 = ih0 + 1 >= 0 && ih0 + 1 < in_h;
        const float *xp = x + plane * p.in_h * p.in_w;
        const float *row0 = xp + (ok0 ? (uint32_t)ih0 * p.in_w : 0u);
        const float *row1 = xp + (ok1 ? (uint32_t)(ih0 + 1) * p.in_w : 0u);
        float a[4], b[4];   /* columns iw0 .. iw0 + 3 of the two rows */
        int col_ok[4];
#pragma unroll
        for (int k = 0; k < 4; k++)
            col_ok[k] = iw0 + k >= 0 && iw0 + k < in_w;
        if (p.vec && iw0 + 3 < in_w) {
            float4 q0 = ok0 ? __ldg((const float4 *)(row0 + iw0)) : make_float4(0.f, 0.f, 0.f, 0.f);
            float4 q1 = ok1 ? __ldg((const float4 *)(row1 + iw0)) : make_float4(0.f, 0.f, 0.f, 0.f);
            a[0] = q0.x, a[1] = q0.y, a[2] = q0.z, a[3] = q0.w;
            b[0] = q1.x, b[1] = q1.y, b[2] = q1.z, b[3] = q1.w;
        } else {
#pragma unroll
            for (int k = 0; k < 4; k++) {
                a[k] = ok0 && col_ok[k] ? __ldg(row0 + iw0 + k) : 0.0f;
                b[k] = ok1 && col_ok[k] ? __ldg(row1 + iw0 + k) : 0.0f;
            }
        }
        float *yrow = y + (plane * p.out_h + oh) * p.out_w;
#pragma unroll
        for (int o = 0; o < 2; o++) {
            uint32_t ow = 2 * j + o;
            if (ow >= p.out_w)
                break;
            float r;
            if (p.is_max) {
                r = -INFINITY;
#pragma unroll
                for (int c = 2 * o; c < 2 * o + 2; c++) {
                    if (!col_ok[c])
                        continue;
                    /* the column's max down its rows, then across */
                    float m = ok0 ? a[c] : -INFINITY;
                    if (ok1)
                        m = ok0 ? (b[c] > m ? b[c] : m) : b[c];
                    r = m > r ? m : r;
                }
            } else {
                float sum = 0.0f;
                int first = 1;
#pragma unroll
                for (int c = 2 * o; c < 2 * o + 2; c++) {
                    if (!col_ok[c])
                        continue;
                    float s = ok0 ? (ok1 ? a[c] + b[c] : a[c]) : b[c];
                    sum = first ? s : sum + s;
                    first = 0;
                }
                int count = pw_count(p, ih0, iw0 + 2 * o);
                r = (ok0 || ok1) && count > 0 ? sum / (float)count : 0.0f;
            }
            yrow[ow] = r;
        }
    }
}

/* ------------------------------------------------------------ one block per output */

static __global__ void pool_block_kernel(const float *__restrict__ x, float *__restrict__ y, pw_params p)
{
    CU_KERNEL_PROLOGUE();
    __shared__ float partial[PW_BLOCK_THREADS / 32];
    for (uint32_t i = blockIdx.x; i < p.total; i += gridDim.x) {
        uint32_t ow = i % p.out_w, t = i / p.out_w;
        uint32_t oh = t % p.out_h, plane = t / p.out_h;
        int ih0 = (int)oh * p.s_h - p.p_t, iw0 = (int)ow * p.s_w - p.p_l;
        int hb = ih0 > 0 ? ih0 : 0, he = ih0 + p.k_h < (int)p.in_h ? ih0 + p.k_h : (int)p.in_h;
        int wb = iw0 > 0 ? iw0 : 0, we = iw0 + p.k_w < (int)p.in_w ? iw0 + p.k_w : (int)p.in_w;
        uint32_t rows = he > hb ? (uint32_t)(he - hb) : 0u, cols = we > wb ? (uint32_t)(we - wb) : 0u;
        uint32_t n = rows * cols;
        const float *xw = x + plane * p.in_h * p.in_w + (uint32_t)hb * p.in_w + (uint32_t)wb;
        /* thread t: window elements t, t + blockDim.x, ... in row-major order */
        float acc = p.is_max ? -INFINITY : 0.0f;
        for (uint32_t e = threadIdx.x; e < n; e += blockDim.x) {
            uint32_t r = e / cols, c = e - r * cols;
            float v = __ldg(xw + r * p.in_w + c);
            acc = p.is_max ? (v > acc ? v : acc) : acc + v;
        }
        /* fixed-order tree: lanes within the warp, then warps 0, 1, ... */
        for (int off = 16; off > 0; off >>= 1) {
            float o = __shfl_down_sync(0xffffffffu, acc, off);
            acc = p.is_max ? (o > acc ? o : acc) : acc + o;
        }
        if ((threadIdx.x & 31) == 0)
            partial[threadIdx.x >> 5] = acc;
        __syncthreads();
        if (threadIdx.x == 0) {
            float r = partial[0];
            for (uint32_t w = 1; w < blockDim.x / 32; w++)
                r = p.is_max ? (partial[w] > r ? partial[w] : r) : r + partial[w];
            if (!p.is_max) {
                int count = pw_count(p, ih0, iw0);
                r = n > 0 && count > 0 ? r / (float)count : 0.0f;
            }
            y[i] = r;
        }
        __syncthreads(); /* partial[] is reused by the next output */
    }
}

/* ------------------------------------------------------------ host side */

/* The plan for a float32 2-D pool (no dilation, no Indices) over `planes`
 * planes; in/out/k/s/pl/pr: [h, w] (pl, pr: leading and trailing pads).
 * Returns the chosen kind, PW_NONE when a size needs more than 31 bits. */
static inline int pw_plan_init(pw_plan *plan, int is_max, int count_include_pad, int64_t planes, const int64_t *in,
                               const int64_t *out, const int64_t *k, const int64_t *s, const int64_t *pl,
                               const int64_t *pr)
{
    memset(plan, 0, sizeof *plan);
    const int64_t lim = CU_INDEX_LIMIT / 4; /* room for window and pad arithmetic in int */
    if (planes * in[0] * in[1] > CU_INDEX_LIMIT || planes * out[0] * out[1] > CU_INDEX_LIMIT)
        return PW_NONE;
    for (int a = 0; a < 2; a++)
        if (in[a] > lim || out[a] > lim || k[a] > lim || s[a] > lim || pl[a] > lim || pr[a] > lim ||
            out[a] * s[a] > lim || k[a] < 1 || s[a] < 1)
            return PW_NONE;
    if (k[0] * k[1] > CU_INDEX_LIMIT)
        return PW_NONE;
    pw_params *p = &plan->p;
    p->is_max = is_max;
    p->count_include_pad = count_include_pad;
    p->planes = (uint32_t)planes;
    p->in_h = (uint32_t)in[0], p->in_w = (uint32_t)in[1];
    p->out_h = (uint32_t)out[0], p->out_w = (uint32_t)out[1];
    p->k_h = (int)k[0], p->k_w = (int)k[1];
    p->s_h = (int)s[0], p->s_w = (int)s[1];
    p->p_t = (int)pl[0], p->p_l = (int)pl[1];
    p->p_b = (int)pr[0], p->p_r = (int)pr[1];
    p->total = (uint32_t)(planes * out[0] * out[1]);
    p->pairs = (p->out_w + 1) / 2;
    if (out[0] * out[1] * 32 <= k[0] * k[1])
        plan->kind = PW_BLOCK;
    else if (k[0] == 2 && k[1] == 2 && s[0] == 2 && s[1] == 2)
        plan->kind = PW_PAIR;
    else
        plan->kind = PW_THREAD;
    return plan->kind;
}

static inline const char *pw_kind_name(int kind)
{
    return kind == PW_PAIR ? "pair" : kind == PW_THREAD ? "thread" : kind == PW_BLOCK ? "block" : "none";
}

/* Forces a kernel (tests): PW_THREAD and PW_BLOCK always apply, PW_PAIR only
 * to 2x2 windows of stride 2. */
static inline int pw_plan_force(pw_plan *plan, int kind)
{
    if (plan->kind == PW_NONE || kind <= PW_NONE || kind >= PW_KIND_COUNT)
        return -1;
    if (kind == PW_PAIR && !(plan->p.k_h == 2 && plan->p.k_w == 2 && plan->p.s_h == 2 && plan->p.s_w == 2))
        return -1;
    plan->kind = kind;
    return 0;
}

/* Launches the planned kernel on `stream` (capturable); returns the launch status. */
static inline cudaError_t pw_launch(const pw_plan *plan, const float *x, float *y, cudaStream_t stream)
{
    pw_params p = plan->p;
    if (p.total == 0)
        return cudaSuccess;
    switch (plan->kind) {
    case PW_PAIR:
        p.vec = p.p_l == 0 && p.in_w % 4 == 0 && ((uintptr_t)x & 15) == 0;
        cu_launch(pool_pair_kernel, cu_blocks((int64_t)p.planes * p.out_h * p.pairs), CU_THREADS, 0, stream, x, y, p);
        break;
    case PW_BLOCK: {
        unsigned blocks = p.total < 65535u * 16u ? p.total : 65535u * 16u;
        cu_launch(pool_block_kernel, blocks, PW_BLOCK_THREADS, 0, stream, x, y, p);
        break;
    }
    default:
        cu_launch(pool_thread_kernel, cu_blocks(p.total), CU_THREADS, 0, stream, x, y, p);
        break;
    }
    return cudaGetLastError();
}

#endif
