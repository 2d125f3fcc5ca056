/* CUDA kernels for pooling (src/ops/pool.c), normalisation (norm.c),
 * Resize/Upsample (resize.c) and the data-dependent detection ops
 * (detection.c): MaxPool, AveragePool, LpPool, GlobalMax/Average/LpPool,
 * BatchNormalization, InstanceNormalization, LayerNormalization,
 * GroupNormalization, LRN, Resize, Upsample, NonZero, NonMaxSuppression.
 *
 * Each op resolves its geometry on the host in prepare (Resize builds its
 * per-axis index/weight tables there and uploads them once) and run only
 * launches kernels on call->stream. Arithmetic mirrors the CPU kernels:
 * float32 math with double accumulation for statistics and averages; float32
 * 2-D MaxPool/AveragePool without Indices run pool_window.cuh's kernels,
 * which sum in float32 like the CPU's 2-D fast path. */
#include "cuda/cuda_ops.h"
#include "cuda/kernels/kernel_util.cuh"
#include "cuda/kernels/pool_window.cuh"

extern "C" {
#include "ops/nms_params.h"
#include "ops/pool_geometry.h"
#include "ops/resize_params.h"
}

#include <cuda_fp16.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MISC_THREADS 256
#define MISC_FULL_MASK 0xffffffffu

/* ------------------------------------------------------------ helpers */

/* Element as float, the way the CPU converts inputs through scratch. */
static __device__ __forceinline__ float misc_load_f32(int dt, const void *p, int64_t i)
{
    if (dt == FG_FLOAT32)
        return ((const float *)p)[i];
    return (float)cu_load_f64_idx64(dt, p, i);
}

static __device__ __forceinline__ void misc_store_f32(int dt, void *p, int64_t i, float v)
{
    if (dt == FG_FLOAT32)
        ((float *)p)[i] = v;
    else
        cu_store_f64_idx64(dt, p, i, (double)v);
}

static void misc_release(void *state)
{
    free(state);
}

static void *misc_state(cuda_call *call, size_t bytes)
{
    void *st = calloc(1, bytes);
    call->op.state = st;
    return st;
}

static int misc_is_float(fg_dtype dt)
{
    return dt == FG_FLOAT32 || dt == FG_FLOAT16 || dt == FG_FLOAT64;
}

/* Sum of v over a group of `lanes` threads (32: the warp, else the block,
 * through shared); every thread of the group gets it. */
static __device__ double misc_group_sum(double v, int lanes, double *shared)
{
    for (int off = 16; off > 0; off >>= 1)
        v += __shfl_down_sync(MISC_FULL_MASK, v, off);
    v = __shfl_sync(MISC_FULL_MASK, v, 0);
    if (lanes <= 32)
        return v;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    __syncthreads();
    if (lane == 0)
        shared[warp] = v;
    __syncthreads();
    v = shared[0];
    for (int w = 1; w < (int)(blockDim.x >> 5); w++)
        v += shared[w];
    return v;
}

/* Mean and 1/sqrt(var + eps) of n values starting at x + base (two-pass,
 * double accumulation, like the CPU's moments()), over a lane group. */
static __device__ void misc_moments(int dt, const void *x, int64_t base, int64_t n, float eps, int lane, int lanes,
                                    double *shared, float *mean_out, float *inv_std_out)
{
    double sum = 0;
    for (int64_t i = lane; i < n; i += lanes)
        sum += (double)misc_load_f32(dt, x, base + i);
    sum = misc_group_sum(sum, lanes, shared);
    double mean = n ? sum / n : 0;
    double sq = 0;
    for (int64_t i = lane; i < n; i += lanes) {
        double d = (double)misc_load_f32(dt, x, base + i) - mean;
        sq += d * d;
    }
    sq = misc_group_sum(sq, lanes, shared);
    double var = n ? sq / n : 0;
    *mean_out = (float)mean;
    *inv_std_out = (float)(1.0 / sqrt(var + eps));
}

/* ================================================================ pooling */

typedef struct pool_desc {
    int kind, dtype, global, count_include_pad, storage_order, p;
    int64_t planes, in_size, out_size;
    /* widened to 3 spatial axes with leading size-1 axes */
    int64_t in[3], out[3], k[3], s[3], d[3], pl[3], pr[3];
} pool_desc;

typedef struct pool_state {
    pool_desc g;
    int use_global_kernel;
    int lanes_per_plane;
    pw_plan fast; /* pool_window.cuh: float32 2-D max/average; kind PW_NONE: the kernels below */
} pool_state;

/* FACEGRAPH_CUDA_POOL=generic: the int64 one-thread-per-output kernel for
 * every windowed pool (A/B runs). */
static int pool_fast_enabled(void)
{
    const char *e = getenv("FACEGRAPH_CUDA_POOL");
    return !(e && strcmp(e, "generic") == 0);
}

static fg_status *pool_prepare_common(cuda_call *call, pool_kind kind, int global)
{
    const op_call *oc = &call->op;
    const fg_tensor *x = &oc->in[0];
    pool_geom geom;
    FG_TRY(pool_geometry(oc, kind, global, &geom));
    for (int i = 0; i < geom.nsp; i++)
        if (geom.out[i] != oc->out[0].dims[2 + i])
            return op_error(oc, FG_ERR_INTERNAL, "spatial axis %d: planned output %lld, computed %lld", i,
                            (long long)oc->out[0].dims[2 + i], (long long)geom.out[i]);
    pool_state *st = (pool_state *)misc_state(call, sizeof(pool_state));
    if (!st)
        return op_error(oc, FG_ERR_OUT_OF_MEMORY, "out of host memory");
    pool_desc *g = &st->g;
    g->kind = kind;
    g->dtype = x->dtype;
    g->global = global;
    g->count_include_pad = geom.count_include_pad;
    g->storage_order = geom.storage_order;
    g->p = geom.p;
    g->planes = geom.planes;
    pool3 wide;
    pool_widen(&geom, &wide);
    for (int i = 0; i < 3; i++) {
        g->in[i] = wide.in[i];
        g->out[i] = wide.out[i];
        g->k[i] = wide.k[i];
        g->s[i] = wide.s[i];
        g->d[i] = wide.d[i];
        g->pl[i] = wide.p[i];
        g->pr[i] = wide.pr[i];
    }
    g->in_size = g->in[0] * g->in[1] * g->in[2];
    g->out_size = g->out[0] * g->out[1] * g->out[2];
    int has_indices = oc->n_out > 1 && oc->out[1].dtype != FG_DTYPE_UNDEFINED;
    st->use_global_kernel = global && !has_indices;
    st->lanes_per_plane = g->in_size <= 4096 ? 32 : MISC_THREADS;
    st->fast.kind = PW_NONE;
    /* 2-D (a leading depth of 1 included), no dilation */
    if (!global && !has_indices && (kind == POOL_MAX || kind == POOL_AVG) && x->dtype == FG_FLOAT32 &&
        wide.in[0] == 1 && wide.out[0] == 1 && wide.k[0] == 1 && wide.p[0] == 0 && wide.pr[0] == 0 &&
        wide.d[1] == 1 && wide.d[2] == 1 && pool_fast_enabled())
        pw_plan_init(&st->fast, kind == POOL_MAX, g->count_include_pad, g->planes, &wide.in[1], &wide.out[1],
                     &wide.k[1], &wide.s[1], &wide.p[1], &wide.pr[1]);
    return NULL;
}

/* Window taps along one axis: first tap kb and end ke inside [lo, hi). */
static __device__ __forceinline__ void pool_taps(int64_t start, int64_t k, int64_t d, int64_t lo, int64_t hi,
                                                 int64_t *kb, int64_t *ke)
{
    int64_t b = 0, e = k;
    if (start < lo)
        b = (lo - start + d - 1) / d;
    if (start + (k - 1) * d >= hi)
        e = hi - start <= 0 ? 0 : (hi - start + d - 1) / d;
    if (e < b)
        e = b;
    *kb = b;
    *ke = e;
}

/* One thread per output element. */
__global__ void pool_window_kernel(pool_desc g, const void *x, void *y, long long *indices)
{
    CU_KERNEL_PROLOGUE();
    int64_t total = g.planes * g.out_size;
    double p = g.p;
    for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (int64_t)gridDim.x * blockDim.x) {
        int64_t plane = idx / g.out_size, o = idx % g.out_size;
        int64_t ow = o % g.out[2], oh = (o / g.out[2]) % g.out[1], od = o / (g.out[2] * g.out[1]);
        int64_t sd = od * g.s[0] - g.pl[0], sh = oh * g.s[1] - g.pl[1], sw = ow * g.s[2] - g.pl[2];
        int64_t db, de, hb, he, wb, we;
        pool_taps(sd, g.k[0], g.d[0], 0, g.in[0], &db, &de);
        pool_taps(sh, g.k[1], g.d[1], 0, g.in[1], &hb, &he);
        pool_taps(sw, g.k[2], g.d[2], 0, g.in[2], &wb, &we);
        int64_t xbase = plane * g.in_size;
        if (g.kind == POOL_MAX) {
            float best = -INFINITY;
            int64_t best_at = -1;
            for (int64_t a = db; a < de; a++)
                for (int64_t b = hb; b < he; b++) {
                    int64_t row = ((sd + a * g.d[0]) * g.in[1] + sh + b * g.d[1]) * g.in[2];
                    for (int64_t c = wb; c < we; c++) {
                        int64_t at = row + sw + c * g.d[2];
                        float v = misc_load_f32(g.dtype, x, xbase + at);
                        if (v > best || best_at < 0) {
                            best = v;
                            best_at = at;
                        }
                    }
                }
            misc_store_f32(g.dtype, y, idx, best);
            if (indices) {
                int64_t at = best_at < 0 ? 0 : best_at;
                if (g.storage_order == 1) {
                    int64_t iw = at % g.in[2], ih = at / g.in[2] % g.in[1], id = at / (g.in[2] * g.in[1]);
                    at = (iw * g.in[1] + ih) * g.in[0] + id;
                }
                indices[idx] = xbase + at;
            }
            continue;
        }
        double sum = 0;
        for (int64_t a = db; a < de; a++)
            for (int64_t b = hb; b < he; b++) {
                int64_t row = xbase + ((sd + a * g.d[0]) * g.in[1] + sh + b * g.d[1]) * g.in[2];
                for (int64_t c = wb; c < we; c++) {
                    float v = misc_load_f32(g.dtype, x, row + sw + c * g.d[2]);
                    sum += g.kind == POOL_AVG ? (double)v : pow(fabs((double)v), p);
                }
            }
        if (g.kind == POOL_LP) {
            misc_store_f32(g.dtype, y, idx, (float)pow(sum, 1.0 / p));
            continue;
        }
        int64_t count;
        if (g.count_include_pad) {
            int64_t c0b, c0e, c1b, c1e, c2b, c2e;
            pool_taps(sd, g.k[0], g.d[0], -g.pl[0], g.in[0] + g.pr[0], &c0b, &c0e);
            pool_taps(sh, g.k[1], g.d[1], -g.pl[1], g.in[1] + g.pr[1], &c1b, &c1e);
            pool_taps(sw, g.k[2], g.d[2], -g.pl[2], g.in[2] + g.pr[2], &c2b, &c2e);
            count = (c0e - c0b) * (c1e - c1b) * (c2e - c2b);
        } else {
            count = (de - db) * (he - hb) * (we - wb);
        }
        misc_store_f32(g.dtype, y, idx, count > 0 ? (float)(sum / count) : 0.0f);
    }
}

/* Global pools: `lanes` threads per (batch, channel) plane. */
__global__ void pool_global_kernel(pool_desc g, const void *x, void *y, int lanes)
{
    CU_KERNEL_PROLOGUE();
    __shared__ double shared[MISC_THREADS / 32];
    __shared__ float shared_f[MISC_THREADS / 32];
    int per_block = blockDim.x / lanes;
    int64_t plane = (int64_t)blockIdx.x * per_block + threadIdx.x / lanes;
    int lane = threadIdx.x % lanes;
    if (lanes <= 32 && plane >= g.planes)
        return;
    int64_t n = g.in_size, base = plane * n;
    if (g.kind == POOL_MAX) {
        float best = -INFINITY;
        for (int64_t i = lane; i < n; i += lanes) {
            float v = misc_load_f32(g.dtype, x, base + i);
            best = v > best ? v : best;
        }
        for (int off = 16; off > 0; off >>= 1) {
            float o = __shfl_down_sync(MISC_FULL_MASK, best, off);
            best = o > best ? o : best;
        }
        if (lanes > 32) {
            int warp = threadIdx.x >> 5;
            if ((threadIdx.x & 31) == 0)
                shared_f[warp] = best;
            __syncthreads();
            best = shared_f[0];
            for (int w = 1; w < (int)(blockDim.x >> 5); w++)
                best = shared_f[w] > best ? shared_f[w] : best;
        }
        if (lane == 0)
            misc_store_f32(g.dtype, y, plane, best);
        return;
    }
    double p = g.p, sum = 0;
    for (int64_t i = lane; i < n; i += lanes) {
        float v = misc_load_f32(g.dtype, x, base + i);
        sum += g.kind == POOL_AVG ? (double)v : pow(fabs((double)v), p);
    }
    sum = misc_group_sum(sum, lanes, shared);
    if (lane == 0)
        misc_store_f32(g.dtype, y, plane, g.kind == POOL_AVG ? (float)(sum / n) : (float)pow(sum, 1.0 / p));
}

static fg_status *pool_run(cuda_call *call)
{
    const pool_state *st = (const pool_state *)call->op.state;
    const pool_desc *g = &st->g;
    void *y = call->op.out[0].data;
    long long *indices = call->op.n_out > 1 ? (long long *)call->op.out[1].data : NULL;
    int64_t total = g->planes * g->out_size;
    if (total == 0)
        return NULL;
    if (st->fast.kind != PW_NONE) {
        cudaError_t err = pw_launch(&st->fast, (const float *)call->op.in[0].data, (float *)y, call->stream);
        if (err != cudaSuccess)
            return cuda_error(call, err, "launching the pooling kernel");
        return NULL;
    }
    if (st->use_global_kernel) {
        int per_block = MISC_THREADS / st->lanes_per_plane;
        int64_t blocks = (g->planes + per_block - 1) / per_block;
        cu_launch(pool_global_kernel, (unsigned)blocks, MISC_THREADS, 0, call->stream, *g, call->op.in[0].data, y,
                                                                               st->lanes_per_plane);
    } else {
        cu_launch(pool_window_kernel, cu_blocks_for(total, MISC_THREADS), MISC_THREADS, 0, call->stream,
            *g, call->op.in[0].data, y, indices);
    }
    return cu_launch_status(call, "launching the pooling kernel");
}

static fg_status *max_pool_prepare(cuda_call *call) { return pool_prepare_common(call, POOL_MAX, 0); }
static fg_status *avg_pool_prepare(cuda_call *call) { return pool_prepare_common(call, POOL_AVG, 0); }
static fg_status *lp_pool_prepare(cuda_call *call) { return pool_prepare_common(call, POOL_LP, 0); }
static fg_status *global_max_prepare(cuda_call *call) { return pool_prepare_common(call, POOL_MAX, 1); }
static fg_status *global_avg_prepare(cuda_call *call) { return pool_prepare_common(call, POOL_AVG, 1); }
static fg_status *global_lp_prepare(cuda_call *call) { return pool_prepare_common(call, POOL_LP, 1); }

/* ================================================================ normalisation */

static fg_status *norm_check_float(const cuda_call *call)
{
    for (int i = 0; i < call->op.n_in; i++)
        if (op_has_input(&call->op, i) && !misc_is_float(call->op.in[i].dtype))
            return op_error(&call->op, FG_ERR_DTYPE, "input %d has dtype %s; float32, float16 or float64 expected", i,
                            fg_dtype_name(call->op.in[i].dtype));
    return NULL;
}

/* ---------------------------------------------------- BatchNormalization */

typedef struct bn_desc {
    int x_dt, scale_dt, bias_dt, mean_dt, var_dt, y_dt;
    int mean_out_dt, var_out_dt;
    float eps, momentum;
    int64_t n, c, inner;
} bn_desc;

typedef struct bn_state {
    bn_desc d;
    int training;
} bn_state;

static fg_status *bn_prepare(cuda_call *call)
{
    const op_call *oc = &call->op;
    FG_TRY(norm_check_float(call));
    if (oc->n_in < 5)
        return op_error(oc, FG_ERR_INVALID_ARGUMENT, "needs 5 inputs (X, scale, B, mean, var), got %d", oc->n_in);
    const fg_tensor *x = &oc->in[0];
    if (x->rank < 2)
        return op_error(oc, FG_ERR_SHAPE, "input X has rank %d, at least 2 (N, C, ...) expected", x->rank);
    for (int i = 1; i <= 4; i++)
        if (!op_has_input(oc, i) || fg_tensor_numel(&oc->in[i]) != x->dims[1])
            return op_error(oc, FG_ERR_SHAPE, "input %d must hold one value per channel", i);
    bn_state *st = (bn_state *)misc_state(call, sizeof(bn_state));
    if (!st)
        return op_error(oc, FG_ERR_OUT_OF_MEMORY, "out of host memory");
    bn_desc *d = &st->d;
    d->x_dt = x->dtype;
    d->scale_dt = oc->in[1].dtype;
    d->bias_dt = oc->in[2].dtype;
    d->mean_dt = oc->in[3].dtype;
    d->var_dt = oc->in[4].dtype;
    d->y_dt = oc->out[0].dtype;
    d->mean_out_dt = oc->n_out > 1 ? oc->out[1].dtype : FG_FLOAT32;
    d->var_out_dt = oc->n_out > 2 ? oc->out[2].dtype : FG_FLOAT32;
    d->eps = ir_attr_float(oc->node, "epsilon", 1e-5f);
    d->momentum = ir_attr_float(oc->node, "momentum", 0.9f);
    d->n = x->dims[0];
    d->c = x->dims[1];
    d->inner = fg_shape_numel(x->rank - 2, x->dims + 2);
    st->training = ir_attr_int(oc->node, "training_mode", 0) != 0;
    return NULL;
}

__global__ void bn_infer_kernel(bn_desc d, const void *x, const void *scale, const void *bias, const void *mean,
                                const void *var, void *y)
{
    CU_KERNEL_PROLOGUE();
    int64_t total = d.n * d.c * d.inner;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t ch = (i / d.inner) % d.c;
        float a = misc_load_f32(d.scale_dt, scale, ch) / sqrtf(misc_load_f32(d.var_dt, var, ch) + d.eps);
        float b = misc_load_f32(d.bias_dt, bias, ch) - misc_load_f32(d.mean_dt, mean, ch) * a;
        misc_store_f32(d.y_dt, y, i, misc_load_f32(d.x_dt, x, i) * a + b);
    }
}

/* float32 fast path: float4 over planes whose length is a multiple of 4. */
__global__ void bn_infer_f32x4_kernel(bn_desc d, const float4 *x, const float *scale, const float *bias,
                                      const float *mean, const float *var, float4 *y)
{
    CU_KERNEL_PROLOGUE();
    int64_t inner4 = d.inner / 4, total = d.n * d.c * inner4;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t ch = (i / inner4) % d.c;
        float a = scale[ch] / sqrtf(var[ch] + d.eps);
        float b = bias[ch] - mean[ch] * a;
        float4 v = x[i];
        v.x = v.x * a + b;
        v.y = v.y * a + b;
        v.z = v.z * a + b;
        v.w = v.w * a + b;
        y[i] = v;
    }
}

/* training_mode=1: one block per channel, batch statistics. */
__global__ void bn_train_kernel(bn_desc d, const void *x, const void *scale, const void *bias, const void *mean_in,
                                const void *var_in, void *y, void *mean_out, void *var_out)
{
    CU_KERNEL_PROLOGUE();
    __shared__ double shared[MISC_THREADS / 32];
    int64_t ch = blockIdx.x;
    int64_t count = d.n * d.inner;
    double sum = 0;
    for (int64_t k = threadIdx.x; k < count; k += blockDim.x) {
        int64_t b = k / d.inner, i = k % d.inner;
        sum += misc_load_f32(d.x_dt, x, (b * d.c + ch) * d.inner + i);
    }
    sum = misc_group_sum(sum, blockDim.x, shared);
    double mean = count > 0 ? sum / (double)count : 0;
    double sq = 0;
    for (int64_t k = threadIdx.x; k < count; k += blockDim.x) {
        int64_t b = k / d.inner, i = k % d.inner;
        double dv = misc_load_f32(d.x_dt, x, (b * d.c + ch) * d.inner + i) - mean;
        sq += dv * dv;
    }
    sq = misc_group_sum(sq, blockDim.x, shared);
    double var = count > 0 ? sq / (double)count : 0;
    float a = (float)(misc_load_f32(d.scale_dt, scale, ch) / sqrt(var + d.eps));
    float off = (float)(misc_load_f32(d.bias_dt, bias, ch) - mean * a);
    for (int64_t k = threadIdx.x; k < count; k += blockDim.x) {
        int64_t b = k / d.inner, i = k % d.inner;
        int64_t at = (b * d.c + ch) * d.inner + i;
        misc_store_f32(d.y_dt, y, at, misc_load_f32(d.x_dt, x, at) * a + off);
    }
    if (threadIdx.x == 0) {
        if (mean_out)
            misc_store_f32(d.mean_out_dt, mean_out, ch,
                           (float)(misc_load_f32(d.mean_dt, mean_in, ch) * d.momentum + mean * (1 - d.momentum)));
        if (var_out)
            misc_store_f32(d.var_out_dt, var_out, ch,
                           (float)(misc_load_f32(d.var_dt, var_in, ch) * d.momentum + var * (1 - d.momentum)));
    }
}

static fg_status *bn_run(cuda_call *call)
{
    const bn_state *st = (const bn_state *)call->op.state;
    const bn_desc *d = &st->d;
    const op_call *oc = &call->op;
    void *in[5];
    for (int i = 0; i < 5; i++)
        in[i] = oc->in[i].data;
    void *y = oc->out[0].data;
    int64_t total = d->n * d->c * d->inner;
    if (st->training) {
        if (d->c == 0)
            return NULL;
        void *mean_out = oc->n_out > 1 ? oc->out[1].data : NULL;
        void *var_out = oc->n_out > 2 ? oc->out[2].data : NULL;
        cu_launch(bn_train_kernel, (unsigned)d->c, MISC_THREADS, 0, call->stream, *d, in[0], in[1], in[2], in[3], in[4], y,
                                                                          mean_out, var_out);
        return cu_launch_status(call, "launching the batch-normalisation kernel");
    }
    if (total > 0) {
        int all_f32 = d->x_dt == FG_FLOAT32 && d->y_dt == FG_FLOAT32 && d->scale_dt == FG_FLOAT32 &&
                      d->bias_dt == FG_FLOAT32 && d->mean_dt == FG_FLOAT32 && d->var_dt == FG_FLOAT32;
        int aligned = ((uintptr_t)in[0] % 16) == 0 && ((uintptr_t)y % 16) == 0;
        if (all_f32 && aligned && d->inner % 4 == 0) {
            cu_launch(bn_infer_f32x4_kernel, cu_blocks_for(total / 4, MISC_THREADS), MISC_THREADS, 0, call->stream,
                *d, (const float4 *)in[0], (const float *)in[1], (const float *)in[2], (const float *)in[3],
                (const float *)in[4], (float4 *)y);
        } else {
            cu_launch(bn_infer_kernel, cu_blocks_for(total, MISC_THREADS), MISC_THREADS, 0, call->stream,
                *d, in[0], in[1], in[2], in[3], in[4], y);
        }
        FG_TRY(cu_launch_status(call, "launching the batch-normalisation kernel"));
    }
    /* optional outputs in inference mode: the running statistics as given */
    for (int o = 1; o < oc->n_out && o < 4; o++) {
        if (!oc->out[o].data)
            continue;
        const fg_tensor *src = &oc->in[o < 3 ? o + 2 : 3];
        size_t bytes = fg_tensor_nbytes(&oc->out[o]);
        if (src->dtype != oc->out[o].dtype || fg_tensor_nbytes(src) != bytes)
            return op_error(oc, FG_ERR_UNSUPPORTED, "output %d: statistics of another dtype than the input", o);
        if (bytes && src->data != oc->out[o].data) {
            cudaError_t err =
                cudaMemcpyAsync(oc->out[o].data, src->data, bytes, cudaMemcpyDeviceToDevice, call->stream);
            if (err != cudaSuccess)
                return cuda_error(call, err, "copying the running statistics");
        }
    }
    return NULL;
}

/* ------------------------------------------------- Instance / Group normalisation */

/* Both normalise contiguous blocks of `block_len` values: instance norm one
 * block per (n, c) plane (channels_per_block 1), group norm one per (n, group). */
typedef struct gn_desc {
    int x_dt, scale_dt, bias_dt, y_dt;
    float eps;
    int64_t blocks, groups, channels_per_block, inner, channels;
    int scale_per_channel, bias_per_channel;
} gn_desc;

static fg_status *instance_norm_prepare(cuda_call *call)
{
    const op_call *oc = &call->op;
    FG_TRY(norm_check_float(call));
    const fg_tensor *x = &oc->in[0];
    if (oc->n_in < 3)
        return op_error(oc, FG_ERR_INVALID_ARGUMENT, "needs 3 inputs (input, scale, B), got %d", oc->n_in);
    if (x->rank < 3)
        return op_error(oc, FG_ERR_SHAPE, "input has rank %d, at least 3 (N, C, D1, ...) expected", x->rank);
    for (int i = 1; i <= 2; i++)
        if (!op_has_input(oc, i) || fg_tensor_numel(&oc->in[i]) != x->dims[1])
            return op_error(oc, FG_ERR_SHAPE, "input %d must hold one value per channel", i);
    gn_desc *d = (gn_desc *)misc_state(call, sizeof(gn_desc));
    if (!d)
        return op_error(oc, FG_ERR_OUT_OF_MEMORY, "out of host memory");
    d->x_dt = x->dtype;
    d->scale_dt = oc->in[1].dtype;
    d->bias_dt = oc->in[2].dtype;
    d->y_dt = oc->out[0].dtype;
    d->eps = ir_attr_float(oc->node, "epsilon", 1e-5f);
    d->channels = x->dims[1];
    d->groups = x->dims[1];
    d->blocks = x->dims[0] * x->dims[1];
    d->channels_per_block = 1;
    d->inner = fg_shape_numel(x->rank - 2, x->dims + 2);
    d->scale_per_channel = d->bias_per_channel = 1;
    return NULL;
}

static fg_status *group_norm_prepare(cuda_call *call)
{
    const op_call *oc = &call->op;
    FG_TRY(norm_check_float(call));
    const fg_tensor *x = &oc->in[0];
    if (oc->n_in < 3)
        return op_error(oc, FG_ERR_INVALID_ARGUMENT, "needs 3 inputs (X, scale, bias), got %d", oc->n_in);
    if (x->rank < 3)
        return op_error(oc, FG_ERR_SHAPE, "input has rank %d, at least 3 expected", x->rank);
    int64_t groups = ir_attr_int(oc->node, "num_groups", 0);
    if (groups < 1 || x->dims[1] % groups)
        return op_error(oc, FG_ERR_INVALID_ARGUMENT, "num_groups %lld must be positive and divide the %lld channels",
                        (long long)groups, (long long)x->dims[1]);
    gn_desc *d = (gn_desc *)misc_state(call, sizeof(gn_desc));
    if (!d)
        return op_error(oc, FG_ERR_OUT_OF_MEMORY, "out of host memory");
    d->x_dt = x->dtype;
    d->scale_dt = oc->in[1].dtype;
    d->bias_dt = oc->in[2].dtype;
    d->y_dt = oc->out[0].dtype;
    d->eps = ir_attr_float(oc->node, "epsilon", 1e-5f);
    d->channels = x->dims[1];
    d->groups = groups;
    d->blocks = x->dims[0] * groups;
    d->channels_per_block = x->dims[1] / groups;
    d->inner = fg_shape_numel(x->rank - 2, x->dims + 2);
    d->scale_per_channel = fg_tensor_numel(&oc->in[1]) == x->dims[1];
    d->bias_per_channel = fg_tensor_numel(&oc->in[2]) == x->dims[1];
    return NULL;
}

/* One block per normalised block. */
__global__ void gn_kernel(gn_desc d, const void *x, const void *scale, const void *bias, void *y)
{
    CU_KERNEL_PROLOGUE();
    __shared__ double shared[MISC_THREADS / 32];
    int64_t blk = blockIdx.x;
    int64_t grp = blk % d.groups, n = d.channels_per_block * d.inner;
    int64_t base = blk * n;
    float mean, inv_std;
    misc_moments(d.x_dt, x, base, n, d.eps, threadIdx.x, blockDim.x, shared, &mean, &inv_std);
    for (int64_t k = 0; k < d.channels_per_block; k++) {
        int64_t ch = grp * d.channels_per_block + k;
        float s = misc_load_f32(d.scale_dt, scale, d.scale_per_channel ? ch : grp);
        float b = misc_load_f32(d.bias_dt, bias, d.bias_per_channel ? ch : grp);
        float a = s * inv_std, off = b - mean * a;
        int64_t row = base + k * d.inner;
        for (int64_t i = threadIdx.x; i < d.inner; i += blockDim.x)
            misc_store_f32(d.y_dt, y, row + i, misc_load_f32(d.x_dt, x, row + i) * a + off);
    }
}

static fg_status *gn_run(cuda_call *call)
{
    const gn_desc *d = (const gn_desc *)call->op.state;
    if (d->blocks == 0)
        return NULL;
    if (d->blocks > 0x7fffffffLL)
        return op_error(&call->op, FG_ERR_UNSUPPORTED, "too many planes (%lld)", (long long)d->blocks);
    cu_launch(gn_kernel, (unsigned)d->blocks, MISC_THREADS, 0, call->stream, *d, call->op.in[0].data, call->op.in[1].data,
                                                                     call->op.in[2].data, call->op.out[0].data);
    return cu_launch_status(call, "launching the normalisation kernel");
}

/* ---------------------------------------------------- LayerNormalization */

typedef struct ln_desc {
    int x_dt, scale_dt, bias_dt, y_dt, has_bias;
    int scale_step, bias_step;
    float eps;
    int64_t outer, inner;
    int lanes;
} ln_desc;

static fg_status *ln_prepare(cuda_call *call)
{
    const op_call *oc = &call->op;
    FG_TRY(norm_check_float(call));
    const fg_tensor *x = &oc->in[0];
    if (oc->n_in < 2 || !op_has_input(oc, 1))
        return op_error(oc, FG_ERR_INVALID_ARGUMENT, "needs inputs X and Scale");
    int axis;
    FG_TRY(op_axis(oc, ir_attr_int(oc->node, "axis", -1), x->rank, &axis));
    ln_desc *d = (ln_desc *)misc_state(call, sizeof(ln_desc));
    if (!d)
        return op_error(oc, FG_ERR_OUT_OF_MEMORY, "out of host memory");
    d->outer = fg_shape_numel(axis, x->dims);
    d->inner = fg_shape_numel(x->rank - axis, x->dims + axis);
    d->x_dt = x->dtype;
    d->y_dt = oc->out[0].dtype;
    d->scale_dt = oc->in[1].dtype;
    d->has_bias = op_has_input(oc, 2);
    d->bias_dt = d->has_bias ? oc->in[2].dtype : FG_FLOAT32;
    d->scale_step = fg_tensor_numel(&oc->in[1]) == d->inner ? 1 : 0;
    d->bias_step = d->has_bias && fg_tensor_numel(&oc->in[2]) == d->inner ? 1 : 0;
    d->eps = ir_attr_float(oc->node, "epsilon", 1e-5f);
    d->lanes = d->inner <= 1024 ? 32 : MISC_THREADS;
    return NULL;
}

__global__ void ln_kernel(ln_desc d, const void *x, const void *scale, const void *bias, void *y, float *mean_out,
                          float *inv_out)
{
    CU_KERNEL_PROLOGUE();
    __shared__ double shared[MISC_THREADS / 32];
    int per_block = blockDim.x / d.lanes;
    int64_t row = (int64_t)blockIdx.x * per_block + threadIdx.x / d.lanes;
    int lane = threadIdx.x % d.lanes;
    if (d.lanes <= 32 && row >= d.outer)
        return;
    int64_t base = row * d.inner;
    float mean, inv_std;
    misc_moments(d.x_dt, x, base, d.inner, d.eps, lane, d.lanes, shared, &mean, &inv_std);
    if (lane == 0) {
        if (mean_out)
            mean_out[row] = mean;
        if (inv_out)
            inv_out[row] = inv_std;
    }
    for (int64_t i = lane; i < d.inner; i += d.lanes) {
        float z = (misc_load_f32(d.x_dt, x, base + i) - mean) * inv_std *
                  misc_load_f32(d.scale_dt, scale, i * d.scale_step);
        if (d.has_bias)
            z = z + misc_load_f32(d.bias_dt, bias, i * d.bias_step);
        misc_store_f32(d.y_dt, y, base + i, z);
    }
}

/* float32 rows of 64..LN_ROW_ITEMS * MISC_THREADS elements: one block per row, the
 * row read once into registers (LN_ROW_ITEMS per thread), statistics in
 * double like misc_moments. Enough blocks to fill the GPU for a
 * transformer's [tokens, width] (197 x 768 takes 197 blocks, not 25). */
#define LN_ROW_ITEMS 8

__global__ void ln_rows_f32_kernel(ln_desc d, const float *__restrict__ x, const float *__restrict__ scale,
                                   const float *__restrict__ bias, float *__restrict__ y, float *mean_out,
                                   float *inv_out)
{
    CU_KERNEL_PROLOGUE();
    __shared__ double shared[MISC_THREADS / 32];
    int64_t row = blockIdx.x;
    const float *xr = x + row * d.inner;
    float v[LN_ROW_ITEMS];
    double sum = 0;
#pragma unroll
    for (int k = 0; k < LN_ROW_ITEMS; k++) {
        int64_t i = threadIdx.x + (int64_t)k * blockDim.x;
        v[k] = i < d.inner ? xr[i] : 0.0f;
        sum += (double)v[k];
    }
    sum = misc_group_sum(sum, blockDim.x, shared);
    double mean = sum / d.inner, sq = 0;
#pragma unroll
    for (int k = 0; k < LN_ROW_ITEMS; k++) {
        int64_t i = threadIdx.x + (int64_t)k * blockDim.x;
        double dv = (double)v[k] - mean;
        sq += i < d.inner ? dv * dv : 0.0;
    }
    sq = misc_group_sum(sq, blockDim.x, shared);
    float m = (float)mean, inv_std = (float)(1.0 / sqrt(sq / d.inner + d.eps));
    if (threadIdx.x == 0) {
        if (mean_out)
            mean_out[row] = m;
        if (inv_out)
            inv_out[row] = inv_std;
    }
    float *yr = y + row * d.inner;
#pragma unroll
    for (int k = 0; k < LN_ROW_ITEMS; k++) {
        int64_t i = threadIdx.x + (int64_t)k * blockDim.x;
        if (i < d.inner) {
            float z = (v[k] - m) * inv_std * scale[i * d.scale_step];
            if (bias)
                z = z + bias[i * d.bias_step];
            yr[i] = z;
        }
    }
}

static fg_status *ln_run(cuda_call *call)
{
    const ln_desc *d = (const ln_desc *)call->op.state;
    const op_call *oc = &call->op;
    if (d->outer == 0)
        return NULL;
    float *mean_out = oc->n_out > 1 ? (float *)oc->out[1].data : NULL;
    float *inv_out = oc->n_out > 2 ? (float *)oc->out[2].data : NULL;
    int all_f32 = d->x_dt == FG_FLOAT32 && d->y_dt == FG_FLOAT32 && d->scale_dt == FG_FLOAT32 &&
                  (!d->has_bias || d->bias_dt == FG_FLOAT32);
    if (all_f32 && d->inner >= 64 && d->inner <= (int64_t)LN_ROW_ITEMS * MISC_THREADS && d->outer <= 0x7fffffffLL) {
        int threads = 32;
        while (threads * LN_ROW_ITEMS < d->inner)
            threads *= 2;
        cu_launch(ln_rows_f32_kernel, (unsigned)d->outer, threads, 0, call->stream,
            *d, (const float *)oc->in[0].data, (const float *)oc->in[1].data,
            d->has_bias ? (const float *)oc->in[2].data : NULL, (float *)oc->out[0].data, mean_out, inv_out);
        return cu_launch_status(call, "launching the layer-normalisation kernel");
    }
    int per_block = MISC_THREADS / d->lanes;
    int64_t blocks = (d->outer + per_block - 1) / per_block;
    cu_launch(ln_kernel, (unsigned)blocks, MISC_THREADS, 0, call->stream, *d, oc->in[0].data, oc->in[1].data,
                                                                  d->has_bias ? oc->in[2].data : NULL,
                                                                  oc->out[0].data, mean_out, inv_out);
    return cu_launch_status(call, "launching the layer-normalisation kernel");
}

/* ------------------------------------------------------------------- LRN */

typedef struct lrn_desc {
    int x_dt, y_dt;
    int64_t c, planes, inner, size, before, after;
    float alpha, beta, bias;
} lrn_desc;

static fg_status *lrn_prepare(cuda_call *call)
{
    const op_call *oc = &call->op;
    FG_TRY(norm_check_float(call));
    const fg_tensor *x = &oc->in[0];
    if (x->rank < 3)
        return op_error(oc, FG_ERR_SHAPE, "input has rank %d, at least 3 expected", x->rank);
    int64_t size = ir_attr_int(oc->node, "size", 0);
    if (size < 1)
        return op_error(oc, FG_ERR_INVALID_ARGUMENT, "attribute size must be positive");
    lrn_desc *d = (lrn_desc *)misc_state(call, sizeof(lrn_desc));
    if (!d)
        return op_error(oc, FG_ERR_OUT_OF_MEMORY, "out of host memory");
    d->x_dt = x->dtype;
    d->y_dt = oc->out[0].dtype;
    d->c = x->dims[1];
    d->planes = x->dims[0] * x->dims[1];
    d->inner = fg_shape_numel(x->rank - 2, x->dims + 2);
    d->size = size;
    d->before = (size - 1) / 2;
    d->after = size - 1 - d->before;
    d->alpha = ir_attr_float(oc->node, "alpha", 1e-4f);
    d->beta = ir_attr_float(oc->node, "beta", 0.75f);
    d->bias = ir_attr_float(oc->node, "bias", 1.0f);
    return NULL;
}

__global__ void lrn_kernel(lrn_desc d, const void *x, void *y)
{
    CU_KERNEL_PROLOGUE();
    int64_t total = d.planes * d.inner;
    float alpha_over_size = d.alpha / (float)d.size;
    for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (int64_t)gridDim.x * blockDim.x) {
        int64_t plane = idx / d.inner, i = idx % d.inner;
        int64_t n = plane / d.c, ch = plane % d.c;
        int64_t c0 = ch - d.before < 0 ? 0 : ch - d.before, c1 = ch + d.after >= d.c ? d.c - 1 : ch + d.after;
        double sq = 0;
        for (int64_t k = c0; k <= c1; k++) {
            float e = misc_load_f32(d.x_dt, x, (n * d.c + k) * d.inner + i);
            sq += (double)e * e;
        }
        double v = misc_load_f32(d.x_dt, x, idx) / pow(d.bias + alpha_over_size * sq, (double)d.beta);
        misc_store_f32(d.y_dt, y, idx, (float)v);
    }
}

static fg_status *lrn_run(cuda_call *call)
{
    const lrn_desc *d = (const lrn_desc *)call->op.state;
    int64_t total = d->planes * d->inner;
    if (total == 0)
        return NULL;
    cu_launch(lrn_kernel, cu_blocks_for(total, MISC_THREADS), MISC_THREADS, 0, call->stream, *d, call->op.in[0].data,
                                                                                   call->op.out[0].data);
    return cu_launch_status(call, "launching the LRN kernel");
}

/* ================================================================ Resize / Upsample */

/* Kernel parameters (device table pointers per axis). */
typedef struct resize_desc {
    int rank, dtype, elem_size, all_single;
    float extrapolation;
    int64_t total;
    int64_t in_dims[FG_MAX_RANK], out_dims[FG_MAX_RANK], in_strides[FG_MAX_RANK];
    int taps[FG_MAX_RANK];
    const int *index[FG_MAX_RANK];
    const float *weight[FG_MAX_RANK];
    const unsigned char *outside[FG_MAX_RANK];
} resize_desc;

typedef struct resize_state {
    int planes_f32; /* float32, outer axes identity: the plane kernel */
    int64_t planes;
    resize_desc d;
    void *d_tables;
} resize_state;

static void resize_release(void *state)
{
    resize_state *st = (resize_state *)state;
    if (!st)
        return;
    if (st->d_tables)
        cudaFree(st->d_tables);
    free(st);
}

static size_t resize_align(size_t n)
{
    return (n + 255) & ~(size_t)255;
}

static fg_status *resize_prepare(cuda_call *call)
{
    op_call hc = call->op;
    hc.in = (fg_tensor *)call->host_in;
    const op_call *oc = &call->op;
    resize_params p;
    memset(&p, 0, sizeof p);
    fg_status *s = resize_setup(&hc, &p, 1);
    if (s == op_need_value())
        return op_error(oc, FG_ERR_UNSUPPORTED, "scales / sizes must be constants for the CUDA backend");
    FG_TRY(s);
    if (p.coord == COORD_TF_CROP_AND_RESIZE && (!op_has_input(oc, 1) || fg_tensor_numel(&oc->in[1]) == 0))
        return op_error(oc, FG_ERR_INVALID_ARGUMENT, "coordinate_transformation_mode tf_crop_and_resize needs roi");
    const fg_tensor *x = &oc->in[0];
    if (x->dtype == FG_STRING)
        return op_error(oc, FG_ERR_DTYPE, "string tensors cannot be resized");
    size_t es = fg_dtype_size(x->dtype);
    if (es != 1 && es != 2 && es != 4 && es != 8)
        return op_error(oc, FG_ERR_DTYPE, "element type %s is not supported", fg_dtype_name(x->dtype));
    for (int d = 0; d < p.rank; d++) {
        if (p.out_dims[d] != oc->out[0].dims[d])
            return op_error(oc, FG_ERR_INTERNAL, "axis %d: planned output %lld, computed %lld", d,
                            (long long)oc->out[0].dims[d], (long long)p.out_dims[d]);
        if (p.in_dims[d] > INT_MAX)
            return op_error(oc, FG_ERR_UNSUPPORTED, "axis %d is too long (%lld)", d, (long long)p.in_dims[d]);
    }
    resize_state *st = (resize_state *)calloc(1, sizeof *st);
    if (!st)
        return op_error(oc, FG_ERR_OUT_OF_MEMORY, "out of host memory");
    call->op.state = st;
    resize_desc *d = &st->d;
    d->rank = p.rank;
    d->dtype = x->dtype;
    d->elem_size = (int)es;
    d->extrapolation = p.extrapolation;
    d->total = fg_shape_numel(p.rank, p.out_dims);
    int64_t stride = 1;
    for (int a = p.rank - 1; a >= 0; a--) {
        d->in_strides[a] = stride;
        stride *= p.in_dims[a];
    }
    d->all_single = 1;
    for (int a = 0; a < p.rank; a++) {
        d->in_dims[a] = p.in_dims[a];
        d->out_dims[a] = p.out_dims[a];
        d->taps[a] = p.taps[a];
        if (p.taps[a] != 1)
            d->all_single = 0;
    }
    if (d->total == 0)
        return NULL;

    /* host tables, then one upload */
    size_t offsets[FG_MAX_RANK][3], bytes = 0;
    for (int a = 0; a < p.rank; a++) {
        size_t entries = (size_t)p.out_dims[a] * (size_t)p.taps[a];
        offsets[a][0] = bytes;
        bytes += resize_align(entries * sizeof(int));
        offsets[a][1] = bytes;
        bytes += resize_align(entries * sizeof(float));
        offsets[a][2] = bytes;
        bytes += resize_align((size_t)p.out_dims[a]);
    }
    /* resize_build_axis writes int64 indices; the kernels read int (every
     * input length fits, checked above) */
    size_t max_entries = 0;
    for (int a = 0; a < p.rank; a++) {
        size_t entries = (size_t)p.out_dims[a] * (size_t)p.taps[a];
        if (entries > max_entries)
            max_entries = entries;
    }
    char *host = (char *)calloc(1, bytes);
    int64_t *wide_index = (int64_t *)malloc(max_entries * sizeof(int64_t));
    if (!host || !wide_index) {
        free(host);
        free(wide_index);
        return op_error(oc, FG_ERR_OUT_OF_MEMORY, "out of host memory for the resize tables");
    }
    resize_axis axes[FG_MAX_RANK];
    for (int a = 0; a < p.rank; a++) {
        axes[a].index = wide_index;
        axes[a].weight = (float *)(host + offsets[a][1]);
        axes[a].outside = (uint8_t *)(host + offsets[a][2]);
        resize_build_axis(&p, a, &axes[a]);
        int *index = (int *)(host + offsets[a][0]);
        size_t entries = (size_t)p.out_dims[a] * (size_t)p.taps[a];
        for (size_t e = 0; e < entries; e++)
            index[e] = (int)wide_index[e];
        axes[a].index = NULL;
    }
    free(wide_index);
    cudaError_t err = cudaMalloc(&st->d_tables, bytes);
    if (err == cudaSuccess)
        err = cudaMemcpy(st->d_tables, host, bytes, cudaMemcpyHostToDevice);
    free(host);
    if (err != cudaSuccess)
        return cuda_error(call, err, "uploading the resize tables");
    for (int a = 0; a < p.rank; a++) {
        d->index[a] = (const int *)((char *)st->d_tables + offsets[a][0]);
        d->weight[a] = (const float *)((char *)st->d_tables + offsets[a][1]);
        d->outside[a] = (const unsigned char *)((char *)st->d_tables + offsets[a][2]);
    }
    if (x->dtype == FG_FLOAT32 && p.rank >= 2) {
        int outer_identity = 1;
        for (int a = 0; a < p.rank - 2; a++)
            if (!axes[a].identity)
                outer_identity = 0;
        st->planes_f32 = outer_identity && d->total <= CU_INDEX_LIMIT; /* 32-bit index math */
        st->planes = 1;
        for (int a = 0; a < p.rank - 2; a++)
            st->planes *= p.in_dims[a];
    }
    return NULL;
}

/* float32 with only the last two axes resized: the CPU's plane kernel, one
 * thread per output element (fewer than 2^31 of them: 32-bit index math). */
__global__ void resize_planes_f32_kernel(resize_desc d, int64_t planes, const float *__restrict__ in,
                                         float *__restrict__ out)
{
    CU_KERNEL_PROLOGUE();
    int ry = d.rank - 2, rx = d.rank - 1;
    int64_t ih = d.in_dims[ry], iw = d.in_dims[rx];
    const uint32_t oh = (uint32_t)d.out_dims[ry], ow = (uint32_t)d.out_dims[rx];
    int ny = d.taps[ry], nx = d.taps[rx];
    const int *__restrict__ iy_t = d.index[ry], *__restrict__ ix_t = d.index[rx];
    const float *__restrict__ wy_t = d.weight[ry], *__restrict__ wx_t = d.weight[rx];
    const uint32_t total = (uint32_t)(planes * oh * ow);
    CU_LOOP(idx, total)
    {
        uint32_t ox = idx % ow, r = idx / ow;
        uint32_t oy = r % oh, plane = r / oh;
        if (d.outside[ry][oy] || d.outside[rx][ox]) {
            out[idx] = d.extrapolation;
            continue;
        }
        const float *src = in + (int64_t)plane * ih * iw;
        float v;
        if (ny == 1 && nx == 1) {
            v = src[(int64_t)iy_t[oy] * iw + ix_t[ox]];
        } else if (ny == 2 && nx == 2) {
            float wy0 = wy_t[oy * 2], wy1 = wy_t[oy * 2 + 1];
            const float *row0 = src + (int64_t)iy_t[oy * 2] * iw;
            const float *row1 = src + (int64_t)iy_t[oy * 2 + 1] * iw;
            int i0 = ix_t[2 * ox], i1 = ix_t[2 * ox + 1];
            float w0 = wx_t[2 * ox], w1 = wx_t[2 * ox + 1];
            v = wy0 * (w0 * row0[i0] + w1 * row0[i1]) + wy1 * (w0 * row1[i0] + w1 * row1[i1]);
        } else {
            v = 0;
            for (int ty = 0; ty < ny; ty++) {
                float wy = wy_t[oy * ny + ty];
                if (wy == 0)
                    continue;
                const float *row = src + (int64_t)iy_t[oy * ny + ty] * iw;
                if (nx == 2) {
                    const int *ix = ix_t + ox * 2;
                    const float *wx = wx_t + ox * 2;
                    v += wy * (wx[0] * row[ix[0]] + wx[1] * row[ix[1]]);
                } else {
                    const int *ix = ix_t + ox * nx;
                    const float *wx = wx_t + ox * nx;
                    float s = 0;
                    for (int tx = 0; tx < nx; tx++)
                        s += wx[tx] * row[ix[tx]];
                    v += wy * s;
                }
            }
        }
        out[idx] = v;
    }
}

/* Integer outputs truncate (within 1e-3 of an integer counts as it); 8-bit
 * ones saturate first: the CPU's integer_result. */
static __device__ __forceinline__ double resize_integer_result(int dtype, double v)
{
    if (dtype != FG_FLOAT32 && dtype != FG_FLOAT64 && dtype != FG_FLOAT16 && fabs(v - rint(v)) < 1e-3)
        v = rint(v);
    switch (dtype) {
    case FG_FLOAT32:
    case FG_FLOAT64:
    case FG_FLOAT16: return v;
    case FG_UINT8: return v < 0 ? 0 : (v > 255 ? 255 : trunc(v));
    case FG_INT8: return v < -128 ? -128 : (v > 127 ? 127 : trunc(v));
    default: return trunc(v);
    }
}

static __device__ __forceinline__ void resize_copy(int es, const void *in, int64_t src, void *out, int64_t dst)
{
    switch (es) {
    case 1: ((unsigned char *)out)[dst] = ((const unsigned char *)in)[src]; break;
    case 2: ((unsigned short *)out)[dst] = ((const unsigned short *)in)[src]; break;
    case 4: ((unsigned int *)out)[dst] = ((const unsigned int *)in)[src]; break;
    default: ((unsigned long long *)out)[dst] = ((const unsigned long long *)in)[src]; break;
    }
}

/* Any dtype, any axes: one thread per output element. */
__global__ void resize_generic_kernel(resize_desc d, const void *in, void *out)
{
    CU_KERNEL_PROLOGUE();
    for (int64_t o = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; o < d.total;
         o += (int64_t)gridDim.x * blockDim.x) {
        int64_t pos[FG_MAX_RANK];
        int64_t rest = o;
        int outside = 0;
        for (int a = d.rank - 1; a >= 0; a--) {
            pos[a] = rest % d.out_dims[a];
            rest /= d.out_dims[a];
            outside |= d.outside[a][pos[a]];
        }
        if (outside) {
            cu_store_f64_idx64(d.dtype, out, o, (double)d.extrapolation);
            continue;
        }
        if (d.all_single) {
            int64_t offset = 0;
            for (int a = 0; a < d.rank; a++)
                offset += (int64_t)d.index[a][pos[a]] * d.in_strides[a];
            resize_copy(d.elem_size, in, offset, out, o);
            continue;
        }
        int tap[FG_MAX_RANK];
        for (int a = 0; a < d.rank; a++)
            tap[a] = 0;
        double acc = 0;
        for (;;) {
            int64_t offset = 0;
            double w = 1;
            for (int a = 0; a < d.rank; a++) {
                int64_t k = pos[a] * d.taps[a] + tap[a];
                offset += (int64_t)d.index[a][k] * d.in_strides[a];
                w *= d.weight[a][k];
            }
            if (w != 0)
                acc += w * cu_load_f64_idx64(d.dtype, in, offset);
            int a = d.rank - 1;
            while (a >= 0 && ++tap[a] == d.taps[a])
                tap[a--] = 0;
            if (a < 0)
                break;
        }
        if (d.dtype == FG_FLOAT32)
            ((float *)out)[o] = (float)acc;
        else
            cu_store_f64_idx64(d.dtype, out, o, resize_integer_result(d.dtype, acc));
    }
}

static fg_status *resize_run(cuda_call *call)
{
    const resize_state *st = (const resize_state *)call->op.state;
    const resize_desc *d = &st->d;
    if (d->total == 0)
        return NULL;
    if (st->planes_f32) {
        cu_launch(resize_planes_f32_kernel, cu_blocks_for(d->total, MISC_THREADS), MISC_THREADS, 0, call->stream,
            *d, st->planes, (const float *)call->op.in[0].data, (float *)call->op.out[0].data);
    } else {
        cu_launch(resize_generic_kernel, cu_blocks_for(d->total, MISC_THREADS), MISC_THREADS, 0, call->stream,
            *d, call->op.in[0].data, call->op.out[0].data);
    }
    return cu_launch_status(call, "launching the resize kernel");
}

/* ================================================================ NonZero */

#define NZ_THREADS 1024

typedef struct nz_desc {
    int dtype, rank;
    int64_t n;
    int64_t dims[FG_MAX_RANK];
} nz_desc;

static fg_status *nz_prepare(cuda_call *call)
{
    const op_call *oc = &call->op;
    const fg_tensor *x = &oc->in[0];
    if (x->dtype == FG_STRING || fg_dtype_size(x->dtype) == 0)
        return op_error(oc, FG_ERR_DTYPE, "input type %s is not supported", fg_dtype_name(x->dtype));
    nz_desc *d = (nz_desc *)misc_state(call, sizeof(nz_desc));
    if (!d)
        return op_error(oc, FG_ERR_OUT_OF_MEMORY, "out of host memory");
    d->dtype = x->dtype;
    d->rank = x->rank;
    d->n = fg_tensor_numel(x);
    for (int a = 0; a < x->rank; a++)
        d->dims[a] = x->dims[a];
    return NULL;
}

static __device__ __forceinline__ int nz_is_nonzero(int dt, const void *p, int64_t i)
{
    switch (dt) {
    case FG_FLOAT32: return ((const float *)p)[i] != 0.0f;
    case FG_FLOAT64: return ((const double *)p)[i] != 0.0;
    case FG_FLOAT16: return (((const unsigned short *)p)[i] & 0x7fff) != 0;
    case FG_BOOL:
    case FG_UINT8:
    case FG_INT8: return ((const unsigned char *)p)[i] != 0;
    case FG_UINT16:
    case FG_INT16: return ((const unsigned short *)p)[i] != 0;
    case FG_UINT32:
    case FG_INT32: return ((const unsigned int *)p)[i] != 0;
    case FG_UINT64:
    case FG_INT64: return ((const unsigned long long *)p)[i] != 0;
    default: return 0;
    }
}

/* One block: count, then an ordered compaction chunk by chunk. */
__global__ void __launch_bounds__(NZ_THREADS) nz_kernel(nz_desc d, const void *x, long long *out, long long *count_out)
{
    CU_KERNEL_PROLOGUE();
    __shared__ long long warp_counts[NZ_THREADS / 32];
    __shared__ int chunk_counts[NZ_THREADS / 32];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, n_warps = blockDim.x >> 5;
    /* laid out at capacity [rows, n]: zeros past the true length */
    int64_t rows = d.rank > 0 ? d.rank : 1;
    for (int64_t i = threadIdx.x; i < rows * d.n; i += blockDim.x)
        out[i] = 0;
    __syncthreads();
    long long mine = 0;
    for (int64_t i = threadIdx.x; i < d.n; i += blockDim.x)
        mine += nz_is_nonzero(d.dtype, x, i);
    for (int off = 16; off > 0; off >>= 1)
        mine += __shfl_down_sync(MISC_FULL_MASK, mine, off);
    if (lane == 0)
        warp_counts[warp] = mine;
    __syncthreads();
    long long count = 0;
    for (int w = 0; w < n_warps; w++)
        count += warp_counts[w];
    long long written = 0;
    for (int64_t start = 0; start < d.n; start += blockDim.x) {
        int64_t i = start + threadIdx.x;
        int flag = i < d.n && nz_is_nonzero(d.dtype, x, i);
        unsigned ballot = __ballot_sync(MISC_FULL_MASK, flag);
        if (lane == 0)
            chunk_counts[warp] = __popc(ballot);
        __syncthreads();
        long long before = written;
        int chunk_total = 0;
        for (int w = 0; w < n_warps; w++) {
            if (w < warp)
                before += chunk_counts[w];
            chunk_total += chunk_counts[w];
        }
        if (flag) {
            long long k = before + __popc(ballot & ((1u << lane) - 1u));
            if (d.rank == 0) {
                out[k] = 0;
            } else {
                int64_t rest = i;
                for (int a = d.rank - 1; a >= 0; a--) {
                    out[(int64_t)a * d.n + k] = rest % d.dims[a];
                    rest /= d.dims[a];
                }
            }
        }
        written += chunk_total;
        __syncthreads(); /* chunk_counts is rewritten next round */
    }
    if (threadIdx.x == 0 && count_out)
        *count_out = count;
}

static fg_status *nz_run(cuda_call *call)
{
    const nz_desc *d = (const nz_desc *)call->op.state;
    cu_launch(nz_kernel, 1, NZ_THREADS, 0, call->stream, *d, call->op.in[0].data, (long long *)call->op.out[0].data,
                                                  (long long *)call->device_count);
    return cu_launch_status(call, "launching the NonZero kernel");
}

/* ================================================================ NonMaxSuppression */

#define NMS_THREADS 512

typedef struct nms_key {
    float score;
    int index; /* >= n: not a candidate (below the score threshold, or padding) */
} nms_key;

/* A scalar input: a host constant, or read on the device. */
typedef struct nms_scalar {
    int present;   /* input given and non-empty */
    int on_device; /* not a constant: read from ptr */
    int dtype;
    const void *ptr;
    double value;
} nms_scalar;

typedef struct nms_desc {
    int64_t batches, classes, n, pow2, capacity;
    int center_point;
    nms_scalar max_out, iou, score;
    /* scratch layout */
    size_t keys_offset, boxes_offset, selected_offset, counts_offset;
} nms_desc;

static void nms_scalar_init(const cuda_call *call, int i, nms_scalar *s)
{
    memset(s, 0, sizeof *s);
    const op_call *oc = &call->op;
    if (!op_has_input(oc, i) || fg_tensor_numel(&oc->in[i]) == 0)
        return;
    s->present = 1;
    s->dtype = oc->in[i].dtype;
    if (call->host_in[i].data) {
        s->value = fg_load_f64(call->host_in[i].dtype, call->host_in[i].data, 0);
    } else {
        s->on_device = 1;
        s->ptr = oc->in[i].data;
    }
}

static fg_status *nms_prepare(cuda_call *call)
{
    const op_call *oc = &call->op;
    FG_TRY(nms_check_inputs(oc));
    const fg_tensor *boxes = &oc->in[0], *scores = &oc->in[1];
    if (boxes->dims[1] > INT_MAX / 4)
        return op_error(oc, FG_ERR_UNSUPPORTED, "too many boxes (%lld)", (long long)boxes->dims[1]);
    nms_desc *d = (nms_desc *)misc_state(call, sizeof(nms_desc));
    if (!d)
        return op_error(oc, FG_ERR_OUT_OF_MEMORY, "out of host memory");
    d->batches = boxes->dims[0];
    d->n = boxes->dims[1];
    d->classes = scores->dims[1];
    d->capacity = oc->out[0].dims[0];
    d->center_point = ir_attr_int(oc->node, "center_point_box", 0) != 0;
    nms_scalar_init(call, 2, &d->max_out);
    nms_scalar_init(call, 3, &d->iou);
    nms_scalar_init(call, 4, &d->score);
    if (d->iou.present && !d->iou.on_device) {
        float t = (float)d->iou.value;
        if (t < 0 || t > 1)
            return op_error(oc, FG_ERR_INVALID_ARGUMENT, "iou_threshold must be in [0, 1] (got %g)", (double)t);
    }
    int64_t p2 = 1;
    while (p2 < d->n)
        p2 <<= 1;
    d->pow2 = p2;
    int64_t bc = d->batches * d->classes;
    size_t bytes = 0;
    d->keys_offset = bytes;
    bytes += resize_align((size_t)bc * (size_t)p2 * sizeof(nms_key));
    d->boxes_offset = bytes;
    bytes += resize_align((size_t)bc * (size_t)d->n * sizeof(float4));
    d->selected_offset = bytes;
    bytes += resize_align((size_t)bc * (size_t)d->n * sizeof(int));
    d->counts_offset = bytes;
    bytes += resize_align((size_t)(bc > 0 ? bc : 1) * sizeof(long long));
    call->op.scratch_bytes = bytes;
    return NULL;
}

static __device__ double nms_scalar_value(const nms_scalar *s)
{
    if (!s->present)
        return 0;
    if (s->on_device)
        return cu_load_f64_idx64(s->dtype, s->ptr, 0);
    return s->value;
}

/* a before b: candidates first, then higher score, then lower index. */
static __device__ __forceinline__ int nms_before(nms_key a, nms_key b, int n)
{
    int av = a.index < n, bv = b.index < n;
    if (av != bv)
        return av;
    if (!av)
        return a.index < b.index;
    return a.score > b.score || (a.score == b.score && a.index < b.index);
}

/* (y1, x1, y2, x2) with y1 <= y2 and x1 <= x2. */
static __device__ __forceinline__ float4 nms_read_box(const float *b, int center_point)
{
    float4 r;
    if (center_point) {
        float xc = b[0], yc = b[1], w = b[2], h = b[3];
        r.y = xc - w / 2;
        r.w = xc + w / 2;
        r.x = yc - h / 2;
        r.z = yc + h / 2;
    } else {
        r.x = fminf(b[0], b[2]);
        r.z = fmaxf(b[0], b[2]);
        r.y = fminf(b[1], b[3]);
        r.w = fmaxf(b[1], b[3]);
    }
    return r;
}

/* The CPU's suppressed_by, without contracted multiply-adds. */
static __device__ __forceinline__ int nms_suppressed_by(float4 a, float4 b, float iou_threshold)
{
    float area_a = __fmul_rn(a.z - a.x, a.w - a.y);
    float area_b = __fmul_rn(b.z - b.x, b.w - b.y);
    if (area_a <= 0 || area_b <= 0)
        return 0;
    float iy1 = fmaxf(a.x, b.x), ix1 = fmaxf(a.y, b.y);
    float iy2 = fminf(a.z, b.z), ix2 = fminf(a.w, b.w);
    float inter = __fmul_rn(fmaxf(iy2 - iy1, 0.0f), fmaxf(ix2 - ix1, 0.0f));
    if (inter <= 0)
        return 0;
    float uni = __fsub_rn(__fadd_rn(area_a, area_b), inter);
    if (uni <= 0)
        return 0;
    return __fdiv_rn(inter, uni) > iou_threshold;
}

/* One block per (batch, class): sort the candidates (bitonic, in scratch),
 * then greedy suppression in order. */
__global__ void __launch_bounds__(NMS_THREADS) nms_select_kernel(nms_desc d, const float *boxes, const float *scores, char *scratch)
{
    CU_KERNEL_PROLOGUE();
    __shared__ int n_candidates;
    int64_t bc = blockIdx.x;
    int64_t b = bc / d.classes;
    int n = (int)d.n;
    nms_key *keys = (nms_key *)(scratch + d.keys_offset) + bc * d.pow2;
    float4 *selected_boxes = (float4 *)(scratch + d.boxes_offset) + bc * d.n;
    int *selected = (int *)(scratch + d.selected_offset) + bc * d.n;
    long long *counts = (long long *)(scratch + d.counts_offset);
    const float *class_scores = scores + bc * d.n;
    const float *batch_boxes = boxes + b * d.n * 4;

    double mo = nms_scalar_value(&d.max_out);
    int64_t max_out = d.max_out.present ? (mo > (double)d.n ? d.n : (mo < 0 ? 0 : (int64_t)mo)) : 0;
    float iou_threshold = (float)nms_scalar_value(&d.iou);
    int has_score_threshold = d.score.present;
    float score_threshold = (float)nms_scalar_value(&d.score);

    if (threadIdx.x == 0)
        n_candidates = 0;
    __syncthreads();
    int mine = 0;
    for (int64_t i = threadIdx.x; i < d.pow2; i += blockDim.x) {
        nms_key k;
        if (i < n) {
            float s = class_scores[i];
            int ok = !has_score_threshold || s > score_threshold;
            k.score = s;
            k.index = ok ? (int)i : n + (int)i;
            mine += ok;
        } else {
            k.score = 0;
            k.index = n + (int)i;
        }
        keys[i] = k;
    }
    atomicAdd(&n_candidates, mine);
    __syncthreads();
    for (int64_t size = 2; size <= d.pow2; size <<= 1) {
        for (int64_t stride = size >> 1; stride > 0; stride >>= 1) {
            for (int64_t i = threadIdx.x; i < d.pow2; i += blockDim.x) {
                int64_t l = i ^ stride;
                if (l <= i)
                    continue;
                nms_key a = keys[i], c = keys[l];
                int up = (i & size) == 0;
                int swap = up ? nms_before(c, a, n) : nms_before(a, c, n);
                if (swap) {
                    keys[i] = c;
                    keys[l] = a;
                }
            }
            __syncthreads();
        }
    }
    int m = n_candidates;
    int n_selected = 0;
    for (int k = 0; k < m && n_selected < max_out; k++) {
        int index = keys[k].index;
        float4 box = nms_read_box(batch_boxes + (int64_t)index * 4, d.center_point);
        int suppressed = 0;
        for (int s = threadIdx.x; s < n_selected && !suppressed; s += blockDim.x)
            suppressed = nms_suppressed_by(box, selected_boxes[s], iou_threshold);
        suppressed = __syncthreads_or(suppressed);
        if (suppressed)
            continue;
        if (threadIdx.x == 0) {
            selected_boxes[n_selected] = box;
            selected[n_selected] = index;
        }
        n_selected++;
        __syncthreads();
    }
    if (threadIdx.x == 0)
        counts[bc] = n_selected;
}

/* One block: concatenates the selections in (batch, class) order. */
__global__ void nms_gather_kernel(nms_desc d, const char *scratch, long long *out, long long *count_out)
{
    CU_KERNEL_PROLOGUE();
    const int *selected = (const int *)(scratch + d.selected_offset);
    const long long *counts = (const long long *)(scratch + d.counts_offset);
    int64_t bc_total = d.batches * d.classes;
    long long offset = 0;
    for (int64_t bc = 0; bc < bc_total; bc++) {
        long long cnt = counts[bc];
        for (long long s = threadIdx.x; s < cnt; s += blockDim.x) {
            long long pos = offset + s;
            if (pos >= d.capacity)
                break;
            out[pos * 3 + 0] = bc / d.classes;
            out[pos * 3 + 1] = bc % d.classes;
            out[pos * 3 + 2] = selected[bc * d.n + s];
        }
        offset += cnt;
    }
    /* rows past the true length are zero, so later steps may read the capacity */
    for (long long pos = offset + threadIdx.x; pos < d.capacity; pos += blockDim.x) {
        out[pos * 3 + 0] = 0;
        out[pos * 3 + 1] = 0;
        out[pos * 3 + 2] = 0;
    }
    if (threadIdx.x == 0 && count_out)
        *count_out = offset < d.capacity ? offset : d.capacity;
}

static fg_status *nms_run(cuda_call *call)
{
    const nms_desc *d = (const nms_desc *)call->op.state;
    int64_t bc = d->batches * d->classes;
    char *scratch = (char *)call->scratch;
    if (bc > 0 && d->n > 0) {
        if (bc > 0x7fffffffLL)
            return op_error(&call->op, FG_ERR_UNSUPPORTED, "too many (batch, class) pairs");
        cu_launch(nms_select_kernel, (unsigned)bc, NMS_THREADS, 0, call->stream, *d, (const float *)call->op.in[0].data,
                                                                         (const float *)call->op.in[1].data, scratch);
        FG_TRY(cu_launch_status(call, "launching the NonMaxSuppression kernel"));
    } else if (bc > 0) {
        cudaError_t err = cudaMemsetAsync(scratch + d->counts_offset, 0, (size_t)bc * sizeof(long long), call->stream);
        if (err != cudaSuccess)
            return cuda_error(call, err, "clearing the NonMaxSuppression counts");
    }
    cu_launch(nms_gather_kernel, 1, MISC_THREADS, 0, call->stream, *d, scratch, (long long *)call->op.out[0].data,
                                                           (long long *)call->device_count);
    return cu_launch_status(call, "launching the NonMaxSuppression gather kernel");
}

/* ================================================================ table */

extern "C" const cuda_op_def cuda_family_misc[] = {
    {"MaxPool", max_pool_prepare, pool_run, misc_release},
    {"AveragePool", avg_pool_prepare, pool_run, misc_release},
    {"LpPool", lp_pool_prepare, pool_run, misc_release},
    {"GlobalMaxPool", global_max_prepare, pool_run, misc_release},
    {"GlobalAveragePool", global_avg_prepare, pool_run, misc_release},
    {"GlobalLpPool", global_lp_prepare, pool_run, misc_release},
    {"BatchNormalization", bn_prepare, bn_run, misc_release},
    {"InstanceNormalization", instance_norm_prepare, gn_run, misc_release},
    {"GroupNormalization", group_norm_prepare, gn_run, misc_release},
    {"LayerNormalization", ln_prepare, ln_run, misc_release},
    {"LRN", lrn_prepare, lrn_run, misc_release},
    {"Resize", resize_prepare, resize_run, resize_release},
    {"Upsample", resize_prepare, resize_run, resize_release},
    {"NonZero", nz_prepare, nz_run, misc_release},
    {"NonMaxSuppression", nms_prepare, nms_run, misc_release},
    {NULL, NULL, NULL, NULL},
};
