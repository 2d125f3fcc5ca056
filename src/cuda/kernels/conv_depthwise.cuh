/* Depthwise 2-D convolution on the GPU (group == C_in == C_out, float32,
 * NCHW) with fused bias and activation, for src/cuda/kernels/conv.cu.
 *
 * Kernels:
 *   DW_GENERIC  one thread per output, any kernel size, stride, dilation
 *               and padding (1-D convolutions arrive as H = 1).
 *   DW_3X3_S1   3x3, stride 1, dilation 1, any padding: each thread makes a
 *   DW_3X3_S2   tile of 4 adjacent outputs along a row by up to 4 rows (3x3,
 *               stride 2 likewise), keeping a sliding window of input rows
 *               and the 9 weights in registers; float4 loads when the
 *               leading pad is 1 and rows are 16-byte aligned, float4
 *               stores when the output rows are.
 * Every kernel computes an output the same way: acc = 0, then
 * acc = fmaf(x, w, acc) over the taps, kh outer and kw inner, then
 * acc += bias, then the activation. Taps in the padding read 0, which leaves
 * acc unchanged (fmaf(0, w, acc) == acc for finite w), so the fast kernels
 * give the generic kernel's results bit for bit.
 *
 * Index math is 32-bit: dw_plan_init refuses tensors of 2^31 elements or
 * more. Include after "cuda/cuda_ops.h" and "cuda/kernels/kernel_util.cuh";
 * everything here is static (tests/gpu/dwpool_test.cu includes it too). */
#ifndef FACEGRAPH_CUDA_CONV_DEPTHWISE_CUH
#define FACEGRAPH_CUDA_CONV_DEPTHWISE_CUH

#include "cuda/cuda_ops.h"
#include "cuda/kernels/kernel_util.cuh"

#include <stdint.h>

enum dw_kind { DW_GENERIC = 0, DW_3X3_S1, DW_3X3_S2, DW_KIND_COUNT };

#define DW3_COLS 4          /* outputs per thread along a row */
#define DW3_MAX_ROWS 4      /* output rows per thread, at most */
#define DW3_MIN_THREADS 65536 /* fewer rows per thread below this many threads */

typedef struct dw_params {
    uint32_t channels, in_h, in_w, out_h, out_w;
    int k_h, k_w, s_h, s_w, d_h, d_w, p_h, p_w; /* p: leading pads */
    uint32_t total;
} dw_params;

typedef struct dw3_params {
    uint32_t channels, in_h, in_w, out_h, out_w;
    int p_h, p_w;        /* leading pads */
    uint32_t col_tiles;  /* ceil(out_w / DW3_COLS) */
    uint32_t rows;       /* output rows per thread, 1 to DW3_MAX_ROWS */
    uint32_t row_tiles;  /* ceil(out_h / rows) */
    uint32_t items;      /* planes * row_tiles * col_tiles: one thread each */
    int vec_in;          /* p_w == 1, in_w % 4 == 0, x 16-byte aligned: float4 loads */
    int vec_out;         /* out_w % 4 == 0, y 16-byte aligned: float4 stores */
} dw3_params;

typedef struct dw_plan {
    int kind; /* enum dw_kind */
    dw_params generic;
    dw3_params fast;
} dw_plan;

/* ------------------------------------------------------------ generic kernel */

/* One thread per output element. */
static __global__ void conv_depthwise_kernel(const float *__restrict__ x, const float *__restrict__ w,
                                             const float *__restrict__ bias, float *__restrict__ y, dw_params p,
                                             op_activation act)
{
    CU_KERNEL_PROLOGUE();
    CU_LOOP(i, p.total)
    {
        uint32_t ow = i % p.out_w, t = i / p.out_w;
        uint32_t oh = t % p.out_h, plane = t / p.out_h;
        uint32_t c = plane % p.channels;
        const float *xp = x + (size_t)plane * p.in_h * p.in_w;
        const float *wp = w + (size_t)c * p.k_h * p.k_w;
        int ih0 = (int)oh * p.s_h - p.p_h, iw0 = (int)ow * p.s_w - p.p_w;
        float acc = 0.0f;
        for (int kh = 0; kh < p.k_h; kh++) {
            int ih = ih0 + kh * p.d_h;
            if (ih < 0 || ih >= (int)p.in_h)
                continue;
            const float *xrow = xp + (size_t)ih * p.in_w;
            const float *wrow = wp + kh * p.k_w;
            for (int kw = 0; kw < p.k_w; kw++) {
                int iw = iw0 + kw * p.d_w;
                if (iw >= 0 && iw < (int)p.in_w)
                    acc = fmaf(__ldg(xrow + iw), __ldg(wrow + kw), acc);
            }
        }
        if (bias)
            acc += __ldg(bias + c);
        y[i] = cu_act(act, acc);
    }
}

/* ------------------------------------------------------------ 3x3 kernels */

/* Input row ih, columns iw0 .. iw0 + 5 (stride 1: 4 outputs need 6 columns),
 * zeros outside the input. */
static __device__ __forceinline__ void dw3_row6(const float *__restrict__ xp, int ih, int iw0, const dw3_params &p,
                                                float *v)
{
    int in_w = (int)p.in_w;
    if (ih < 0 || ih >= (int)p.in_h) {
#pragma unroll
        for (int k = 0; k < 6; k++)
            v[k] = 0.0f;
        return;
    }
    const float *row = xp + (uint32_t)ih * p.in_w;
    if (p.vec_in && iw0 + 4 < in_w) {
        /* iw0 + 1 = the tile's first output column, a multiple of 4 */
        float4 q = __ldg((const float4 *)(row + iw0 + 1));
        v[0] = iw0 >= 0 ? __ldg(row + iw0) : 0.0f;
        v[1] = q.x, v[2] = q.y, v[3] = q.z, v[4] = q.w;
        v[5] = iw0 + 5 < in_w ? __ldg(row + iw0 + 5) : 0.0f;
    } else if (iw0 >= 0 && iw0 + 5 < in_w) {
#pragma unroll
        for (int k = 0; k < 6; k++)
            v[k] = __ldg(row + iw0 + k);
    } else {
#pragma unroll
        for (int k = 0; k < 6; k++)
            v[k] = iw0 + k >= 0 && iw0 + k < in_w ? __ldg(row + iw0 + k) : 0.0f;
    }
}

/* Input row ih, columns iw0 .. iw0 + 8 (stride 2: 4 outputs need 9 columns). */
static __device__ __forceinline__ void dw3_row9(const float *__restrict__ xp, int ih, int iw0, const dw3_params &p,
                                                float *v)
{
    int in_w = (int)p.in_w;
    if (ih < 0 || ih >= (int)p.in_h) {
#pragma unroll
        for (int k = 0; k < 9; k++)
            v[k] = 0.0f;
        return;
    }
    const float *row = xp + (uint32_t)ih * p.in_w;
    if (p.vec_in && iw0 + 8 < in_w) {
        /* iw0 + 1 = twice the tile's first output column, a multiple of 8 */
        float4 q0 = __ldg((const float4 *)(row + iw0 + 1));
        float4 q1 = __ldg((const float4 *)(row + iw0 + 5));
        v[0] = iw0 >= 0 ? __ldg(row + iw0) : 0.0f;
        v[1] = q0.x, v[2] = q0.y, v[3] = q0.z, v[4] = q0.w;
        v[5] = q1.x, v[6] = q1.y, v[7] = q1.z, v[8] = q1.w;
    } else if (iw0 >= 0 && iw0 + 8 < in_w) {
#pragma unroll
        for (int k = 0; k < 9; k++)
            v[k] = __ldg(row + iw0 + k);
    } else {
#pragma unroll
        for (int k = 0; k < 9; k++)
            v[k] = iw0 + k >= 0 && iw0 + k < in_w ? __ldg(row + iw0 + k) : 0.0f;
    }
}

/* One output: taps kh outer, kw inner (column `col` of each row, step 1). */
static __device__ __forceinline__ float dw3_dot(const float *r0, const float *r1, const float *r2, int col,
                                                const float *wk)
{
    float acc = 0.0f;
    acc = fmaf(r0[col], wk[0], acc);
    acc = fmaf(r0[col + 1], wk[1], acc);
    acc = fmaf(r0[col + 2], wk[2], acc);
    acc = fmaf(r1[col], wk[3], acc);
    acc = fmaf(r1[col + 1], wk[4], acc);
    acc = fmaf(r1[col + 2], wk[5], acc);
    acc = fmaf(r2[col], wk[6], acc);
    acc = fmaf(r2[col + 1], wk[7], acc);
    acc = fmaf(r2[col + 2], wk[8], acc);
    return acc;
}

/* Bias, activation and the store of one tile row (outputs ow0 .. ow0 + 3). */
static __device__ __forceinline__ void dw3_store(float *__restrict__ yrow, uint32_t ow0, const dw3_params &p,
                                                 float *o, int has_bias, float b, op_activation act)
{
#pragma unroll
    for (int j = 0; j < DW3_COLS; j++) {
        float v = o[j];
        if (has_bias)
            v += b;
        o[j] = cu_act(act, v);
    }
    if (p.vec_out) {
        *(float4 *)(yrow + ow0) = make_float4(o[0], o[1], o[2], o[3]);
    } else {
#pragma unroll
        for (int j = 0; j < DW3_COLS; j++)
            if (ow0 + j < p.out_w)
                yrow[ow0 + j] = o[j];
    }
}

/* Tile of the thread's item: plane, first output row and column. */
static __device__ __forceinline__ void dw3_tile(const dw3_params &p, uint32_t i, uint32_t *plane, uint32_t *oh0,
                                                uint32_t *ow0)
{
    uint32_t ct = i % p.col_tiles, t = i / p.col_tiles;
    uint32_t rt = t % p.row_tiles;
    *plane = t / p.row_tiles;
    *oh0 = rt * p.rows;
    *ow0 = ct * DW3_COLS;
}

/* 3x3, stride 1: rows ih, ih + 1, ih + 2 slide down the tile. */
static __global__ void conv_dw3x3_s1_kernel(const float *__restrict__ x, const float *__restrict__ w,
                                            const float *__restrict__ bias, float *__restrict__ y, dw3_params p,
                                            op_activation act)
{
    CU_KERNEL_PROLOGUE();
    CU_LOOP(i, p.items)
    {
        uint32_t plane, oh0, ow0;
        dw3_tile(p, i, &plane, &oh0, &ow0);
        uint32_t c = plane % p.channels;
        float wk[9];
#pragma unroll
        for (int k = 0; k < 9; k++)
            wk[k] = __ldg(w + c * 9 + k);
        int has_bias = bias != NULL;
        float b = has_bias ? __ldg(bias + c) : 0.0f;
        const float *xp = x + plane * p.in_h * p.in_w;
        float *yp = y + plane * p.out_h * p.out_w;
        int ih = (int)oh0 - p.p_h, iw0 = (int)ow0 - p.p_w;
        float r0[6], r1[6], r2[6];
        dw3_row6(xp, ih, iw0, p, r0);
        dw3_row6(xp, ih + 1, iw0, p, r1);
#pragma unroll
        for (int r = 0; r < DW3_MAX_ROWS; r++) {
            if (r >= (int)p.rows || oh0 + r >= p.out_h)
                break;
            dw3_row6(xp, ih + r + 2, iw0, p, r2);
            float o[DW3_COLS];
#pragma unroll
            for (int j = 0; j < DW3_COLS; j++)
                o[j] = dw3_dot(r0, r1, r2, j, wk);
            dw3_store(yp + (oh0 + r) * p.out_w, ow0, p, o, has_bias, b, act);
#pragma unroll
            for (int k = 0; k < 6; k++) {
                r0[k] = r1[k];
                r1[k] = r2[k];
            }
        }
    }
}

/* 3x3, stride 2: output row r reads input rows 2r .. 2r + 2 of the tile; the
 * last becomes the next output row's first. Bounded to 64 registers (no
 * spills; 4 blocks of 256 threads per SM). */
static __global__ void __launch_bounds__(CU_THREADS, 4)
    conv_dw3x3_s2_kernel(const float *__restrict__ x, const float *__restrict__ w, const float *__restrict__ bias,
                         float *__restrict__ y, dw3_params p, op_activation act)
{
    CU_KERNEL_PROLOGUE();
    CU_LOOP(i, p.items)
    {
        uint32_t plane, oh0, ow0;
        dw3_tile(p, i, &plane, &oh0, &ow0);
        uint32_t c = plane % p.channels;
        float wk[9];
#pragma unroll
        for (int k = 0; k < 9; k++)
            wk[k] = __ldg(w + c * 9 + k);
        int has_bias = bias != NULL;
        float b = has_bias ? __ldg(bias + c) : 0.0f;
        const float *xp = x + plane * p.in_h * p.in_w;
        float *yp = y + plane * p.out_h * p.out_w;
        int ih = 2 * (int)oh0 - p.p_h, iw0 = 2 * (int)ow0 - p.p_w;
        float r0[9], r1[9], r2[9];
        dw3_row9(xp, ih, iw0, p, r0);
#pragma unroll
        for (int r = 0; r < DW3_MAX_ROWS; r++) {
            if (r >= (int)p.rows || oh0 + r >= p.out_h)
                break;
            dw3_row9(xp, ih + 2 * r + 1, iw0, p, r1);
            dw3_row9(xp, ih + 2 * r + 2, iw0, p, r2);
            float o[DW3_COLS];
#pragma unroll
            for (int j = 0; j < DW3_COLS; j++)
                o[j] = dw3_dot(r0, r1, r2, 2 * j, wk);
            dw3_store(yp + (oh0 + r) * p.out_w, ow0, p, o, has_bias, b, act);
#pragma unroll
            for (int k = 0; k < 9; k++)
                r0[k] = r2[k];
        }
    }
}

/* ------------------------------------------------------------ host side */

/* Rows per thread of the 3x3 kernels (1 to DW3_MAX_ROWS); sets the tiling. */
static inline void dw3_set_rows(dw3_params *f, uint32_t planes, uint32_t rows)
{
    if (rows < 1)
        rows = 1;
    if (rows > DW3_MAX_ROWS)
        rows = DW3_MAX_ROWS;
    f->rows = rows;
    f->row_tiles = (f->out_h + rows - 1) / rows;
    f->items = planes * f->row_tiles * f->col_tiles;
}

/* The most rows per thread that still leaves DW3_MIN_THREADS threads. */
static inline uint32_t dw3_default_rows(const dw3_params *f, uint32_t planes)
{
    for (uint32_t rows = DW3_MAX_ROWS; rows > 1; rows /= 2) {
        uint64_t items = (uint64_t)planes * ((f->out_h + rows - 1) / rows) * f->col_tiles;
        if (items >= DW3_MIN_THREADS)
            return rows;
    }
    return 1;
}

/* The plan for a depthwise convolution of `batch` x `channels` planes;
 * in/out/k/st/dl/pad: [h, w] (pad: leading pads). Picks a 3x3 kernel where
 * one applies. Returns 0, or -1 when a tensor has 2^31 elements or more. */
static inline int dw_plan_init(dw_plan *pl, int64_t batch, int64_t channels, const int64_t *in, const int64_t *out,
                               const int64_t *k, const int64_t *st, const int64_t *dl, const int64_t *pad)
{
    memset(pl, 0, sizeof *pl);
    int64_t total = batch * channels * out[0] * out[1];
    int64_t in_total = batch * channels * in[0] * in[1];
    if (total > CU_INDEX_LIMIT || in_total > CU_INDEX_LIMIT || k[0] * k[1] > CU_INDEX_LIMIT ||
        channels * k[0] * k[1] > CU_INDEX_LIMIT)
        return -1;
    dw_params *p = &pl->generic;
    p->channels = (uint32_t)channels;
    p->in_h = (uint32_t)in[0], p->in_w = (uint32_t)in[1];
    p->out_h = (uint32_t)out[0], p->out_w = (uint32_t)out[1];
    p->k_h = (int)k[0], p->k_w = (int)k[1];
    p->s_h = (int)st[0], p->s_w = (int)st[1];
    p->d_h = (int)dl[0], p->d_w = (int)dl[1];
    p->p_h = (int)pad[0], p->p_w = (int)pad[1];
    p->total = (uint32_t)total;
    pl->kind = DW_GENERIC;
    int stride = (int)st[0];
    if (k[0] == 3 && k[1] == 3 && dl[0] == 1 && dl[1] == 1 && st[0] == st[1] && (stride == 1 || stride == 2) &&
        pad[0] <= 16 && pad[1] <= 16) {
        dw3_params *f = &pl->fast;
        f->channels = p->channels;
        f->in_h = p->in_h, f->in_w = p->in_w;
        f->out_h = p->out_h, f->out_w = p->out_w;
        f->p_h = p->p_h, f->p_w = p->p_w;
        f->col_tiles = (f->out_w + DW3_COLS - 1) / DW3_COLS;
        uint32_t planes = (uint32_t)(batch * channels);
        dw3_set_rows(f, planes, dw3_default_rows(f, planes));
        pl->kind = stride == 1 ? DW_3X3_S1 : DW_3X3_S2;
    }
    return 0;
}

/* Forces a kernel (tests and A/B runs): DW_GENERIC always applies; a 3x3
 * kind only where dw_plan_init chose one of the two; rows: 0 = default. */
static inline int dw_plan_force(dw_plan *pl, int kind, uint32_t rows)
{
    if (kind != DW_GENERIC && kind != pl->kind)
        return -1;
    pl->kind = kind;
    if (kind != DW_GENERIC) {
        uint32_t plane_size = pl->fast.out_h * pl->fast.out_w;
        uint32_t planes = plane_size ? pl->generic.total / plane_size : 0;
        dw3_set_rows(&pl->fast, planes, rows ? rows : dw3_default_rows(&pl->fast, planes));
    }
    return 0;
}

static inline const char *dw_kind_name(int kind)
{
    return kind == DW_3X3_S1 ? "3x3s1" : kind == DW_3X3_S2 ? "3x3s2" : "generic";
}

/* Launches the planned kernel on `stream` (capturable); returns the launch
 * status. bias may be NULL. */
static inline cudaError_t dw_launch(const dw_plan *pl, const float *x, const float *w, const float *bias, float *y,
                                    op_activation act, cudaStream_t stream)
{
    if (pl->kind == DW_GENERIC) {
        cu_launch(conv_depthwise_kernel, cu_blocks(pl->generic.total), CU_THREADS, 0, stream, x, w, bias, y, pl->generic,
                                                                                        act);
        return cudaGetLastError();
    }
    dw3_params p = pl->fast;
    p.vec_in = p.p_w == 1 && p.in_w % 4 == 0 && ((uintptr_t)x & 15) == 0;
    p.vec_out = p.out_w % 4 == 0 && ((uintptr_t)y & 15) == 0;
    if (pl->kind == DW_3X3_S1)
        cu_launch(conv_dw3x3_s1_kernel, cu_blocks(p.items), CU_THREADS, 0, stream, x, w, bias, y, p, act);
    else
        cu_launch(conv_dw3x3_s2_kernel, cu_blocks(p.items), CU_THREADS, 0, stream, x, w, bias, y, p, act);
    return cudaGetLastError();
}

#endif
