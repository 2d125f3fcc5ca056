/* CUDA kernels for the reduction family (src/ops/reduce.c): ReduceSum/Mean/
 * Max/Min/Prod/L1/L2/SumSquare/LogSumExp/LogSum, Softmax/LogSoftmax/Hardmax,
 * ArgMax/ArgMin and TopK.
 *
 * Semantics follow the CPU kernels: floating types (and the L2/LogSum/
 * LogSumExp reductions of integers) accumulate in double, integers in
 * int64; Softmax of float32 rows computes in float like the CPU fast path,
 * every other Softmax in double. Axes, K and the reduction layout are
 * resolved on the host in prepare; run only launches. */
#include "cuda/cuda_ops.h"
#include "cuda/kernels/kernel_util.cuh"

extern "C" {
#include "ops/reduce_axes.h"
}

#include <cuda_fp16.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RED_THREADS 256
#define RED_FULL_MASK 0xffffffffu

/* ------------------------------------------------------------ dtype access */

static __device__ __forceinline__ long long red_load_i64(int dt, const void *p, int64_t i)
{
    switch (dt) {
    case FG_INT64: return ((const long long *)p)[i];
    case FG_INT32: return ((const int *)p)[i];
    case FG_INT16: return ((const short *)p)[i];
    case FG_INT8: return ((const signed char *)p)[i];
    case FG_UINT8: case FG_BOOL: return ((const unsigned char *)p)[i];
    case FG_UINT16: return ((const unsigned short *)p)[i];
    case FG_UINT32: return ((const unsigned int *)p)[i];
    case FG_UINT64: return (long long)((const unsigned long long *)p)[i];
    default: return (long long)cu_load_f64_idx64(dt, p, i);
    }
}

static int red_is_float(fg_dtype t)
{
    return t == FG_FLOAT32 || t == FG_FLOAT64 || t == FG_FLOAT16;
}

/* An infer-style helper needed a non-constant input's value. */
static fg_status *red_constant_error(const cuda_call *call, fg_status *st, const char *what)
{
    if (st == op_need_value())
        return op_error(&call->op, FG_ERR_UNSUPPORTED, "%s must be a constant for the CUDA backend", what);
    return st;
}

/* ------------------------------------------------------------ Reduce* */

/* The reduction walk, passed by value: output o reads base(o) + offset(r)
 * for r in [0, red_count). Adjacent axes that are walked in order are
 * merged. */
typedef struct red_desc {
    int kind, dtype;
    int use_double; /* accumulate in double (floats; L2/LogSum/LogSumExp of ints) */
    int n_kept, n_red;
    int64_t kept_dims[FG_MAX_RANK], kept_strides[FG_MAX_RANK];
    int64_t red_dims[FG_MAX_RANK], red_strides[FG_MAX_RANK];
    int64_t red_count, n_out;
} red_desc;

typedef enum red_mode { RED_MODE_NOOP, RED_MODE_ROWS, RED_MODE_GENERIC } red_mode;

typedef struct red_state {
    red_mode mode;
    int lanes_per_row; /* ROWS: 32 (a warp per row) or RED_THREADS (a block per row) */
    red_desc d;
} red_state;

/* Merges axis i+1 into i where walking them in order is one strided run. */
static int red_merge(int n, int64_t *dims, int64_t *strides)
{
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (m > 0 && strides[m - 1] == strides[i] * dims[i]) {
            dims[m - 1] *= dims[i];
            strides[m - 1] = strides[i];
            continue;
        }
        dims[m] = dims[i];
        strides[m] = strides[i];
        m++;
    }
    return m;
}

static fg_status *reduce_prepare(cuda_call *call)
{
    op_call hc = call->op;
    hc.in = (fg_tensor *)call->host_in;
    const fg_tensor *x = &call->op.in[0];
    int reduced[FG_MAX_RANK], noop;
    FG_TRY(red_constant_error(call, red_axes(&hc, reduced, &noop), "the axes input"));
    red_state *st = (red_state *)calloc(1, sizeof *st);
    if (!st)
        return op_error(&call->op, FG_ERR_OUT_OF_MEMORY, "out of host memory");
    call->op.state = st;
    if (noop) {
        st->mode = RED_MODE_NOOP;
        return NULL;
    }
    red_desc *d = &st->d;
    red_kind kind = red_kind_of(call->op.node->op_type);
    d->kind = kind;
    d->dtype = x->dtype;
    d->use_double = red_is_float(x->dtype) || kind == RED_L2 || kind == RED_LOG_SUM || kind == RED_LOG_SUM_EXP;
    int64_t strides[FG_MAX_RANK];
    int64_t s = 1;
    for (int a = x->rank - 1; a >= 0; a--) {
        strides[a] = s;
        s *= x->dims[a];
    }
    d->red_count = 1;
    int last_kept = -1, first_red = FG_MAX_RANK;
    for (int a = 0; a < x->rank; a++) {
        if (reduced[a]) {
            if (x->dims[a] == 1)
                continue;
            d->red_dims[d->n_red] = x->dims[a];
            d->red_strides[d->n_red++] = strides[a];
            d->red_count *= x->dims[a];
            if (a < first_red)
                first_red = a;
        } else {
            d->kept_dims[d->n_kept] = x->dims[a];
            d->kept_strides[d->n_kept++] = strides[a];
            if (x->dims[a] != 1)
                last_kept = a;
        }
    }
    d->n_out = fg_tensor_numel(&call->op.out[0]);
    int merge_ok = 1;
    for (int a = 0; a < x->rank; a++)
        if (x->dims[a] == 0)
            merge_ok = 0; /* keep zero-length axes as they are */
    if (merge_ok) {
        d->n_red = red_merge(d->n_red, d->red_dims, d->red_strides);
        d->n_kept = red_merge(d->n_kept, d->kept_dims, d->kept_strides);
    }
    if (last_kept < first_red && d->red_count > 4) {
        st->mode = RED_MODE_ROWS;
        st->lanes_per_row = d->red_count <= 2048 ? 32 : RED_THREADS;
    } else {
        st->mode = RED_MODE_GENERIC;
    }
    return NULL;
}

static void red_release(void *state)
{
    free(state);
}

static __device__ __forceinline__ int64_t red_base(const red_desc *d, int64_t o)
{
    int64_t off = 0;
    for (int k = d->n_kept - 1; k >= 0; k--) {
        off += (o % d->kept_dims[k]) * d->kept_strides[k];
        o /= d->kept_dims[k];
    }
    return off;
}

static __device__ __forceinline__ int64_t red_offset(const red_desc *d, int64_t r)
{
    if (d->n_red == 1)
        return r * d->red_strides[0];
    int64_t off = 0;
    for (int k = d->n_red - 1; k >= 0; k--) {
        off += (r % d->red_dims[k]) * d->red_strides[k];
        r /= d->red_dims[k];
    }
    return off;
}

static __device__ __forceinline__ double red_map_d(int kind, double v)
{
    switch (kind) {
    case RED_L1: return fabs(v);
    case RED_L2:
    case RED_SUM_SQUARE: return v * v;
    default: return v;
    }
}

static __device__ __forceinline__ double red_init_d(int kind)
{
    switch (kind) {
    case RED_MAX: return -INFINITY;
    case RED_MIN: return INFINITY;
    case RED_PROD: return 1.0;
    default: return 0.0;
    }
}

static __device__ __forceinline__ double red_combine_d(int kind, double a, double b)
{
    switch (kind) {
    case RED_MAX: return (b > a || isnan(b)) ? b : a;
    case RED_MIN: return (b < a || isnan(b)) ? b : a;
    case RED_PROD: return a * b;
    default: return a + b;
    }
}

static __device__ __forceinline__ long long red_map_i(int kind, long long v)
{
    switch (kind) {
    case RED_L1: return v < 0 ? -v : v;
    case RED_SUM_SQUARE: return v * v;
    default: return v;
    }
}

static __device__ __forceinline__ long long red_init_i(int kind)
{
    switch (kind) {
    case RED_MAX: return LLONG_MIN;
    case RED_MIN: return LLONG_MAX;
    case RED_PROD: return 1;
    default: return 0;
    }
}

static __device__ __forceinline__ long long red_combine_i(int kind, long long a, long long b)
{
    switch (kind) {
    case RED_MAX: return b > a ? b : a;
    case RED_MIN: return b < a ? b : a;
    case RED_PROD: return a * b;
    default: return a + b;
    }
}

static __device__ __forceinline__ double red_max_ignore_nan(double a, double b)
{
    return b > a ? b : a;
}

/* Finishes a double accumulation (LogSumExp is finished by its caller). */
static __device__ __forceinline__ double red_finish_d(int kind, double acc, int64_t count)
{
    switch (kind) {
    case RED_MEAN: return acc / (double)count;
    case RED_L2: return sqrt(acc);
    case RED_LOG_SUM: return log(acc);
    default: return acc;
    }
}

static __device__ __forceinline__ void red_store_int(const red_desc *d, void *y, int64_t o, long long acc)
{
    if (d->kind == RED_MEAN && d->red_count > 0)
        acc /= d->red_count;
    if (d->dtype == FG_INT64)
        ((long long *)y)[o] = acc;
    else if (d->dtype == FG_UINT64)
        ((unsigned long long *)y)[o] = (unsigned long long)acc;
    else
        cu_store_f64_idx64(d->dtype, y, o, (double)acc);
}

/* One thread per output element. */
__global__ void red_generic_kernel(red_desc d, const void *x, void *y)
{
    CU_KERNEL_PROLOGUE();
    for (int64_t o = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; o < d.n_out;
         o += (int64_t)gridDim.x * blockDim.x) {
        int64_t base = red_base(&d, o);
        if (d.use_double) {
            double result;
            if (d.kind == RED_LOG_SUM_EXP) {
                double mx = -INFINITY;
                for (int64_t r = 0; r < d.red_count; r++)
                    mx = red_max_ignore_nan(mx, cu_load_f64_idx64(d.dtype, x, base + red_offset(&d, r)));
                if (isinf(mx)) {
                    result = mx;
                } else {
                    double acc = 0;
                    for (int64_t r = 0; r < d.red_count; r++)
                        acc += exp(cu_load_f64_idx64(d.dtype, x, base + red_offset(&d, r)) - mx);
                    result = mx + log(acc);
                }
            } else {
                double acc = red_init_d(d.kind);
                for (int64_t r = 0; r < d.red_count; r++)
                    acc = red_combine_d(d.kind, acc,
                                        red_map_d(d.kind, cu_load_f64_idx64(d.dtype, x, base + red_offset(&d, r))));
                result = red_finish_d(d.kind, acc, d.red_count);
            }
            cu_store_f64_idx64(d.dtype, y, o, result);
        } else {
            long long acc = red_init_i(d.kind);
            for (int64_t r = 0; r < d.red_count; r++)
                acc = red_combine_i(d.kind, acc, red_map_i(d.kind, red_load_i64(d.dtype, x, base + red_offset(&d, r))));
            red_store_int(&d, y, o, acc);
        }
    }
}

/* Reduces v over the `lanes` threads of a row group (32: the warp; 256: the
 * block, through shared). Every thread of the group gets the result. */
static __device__ double red_group_d(int kind, double v, int lanes, double *shared)
{
    for (int off = 16; off > 0; off >>= 1)
        v = red_combine_d(kind, v, __shfl_down_sync(RED_FULL_MASK, v, off));
    v = __shfl_sync(RED_FULL_MASK, v, 0);
    if (lanes <= 32)
        return v;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    __syncthreads(); /* shared may still be read from a previous call */
    if (lane == 0)
        shared[warp] = v;
    __syncthreads();
    v = shared[0];
    for (int w = 1; w < (int)(blockDim.x >> 5); w++)
        v = red_combine_d(kind, v, shared[w]);
    return v;
}

static __device__ long long red_group_i(int kind, long long v, int lanes, long long *shared)
{
    for (int off = 16; off > 0; off >>= 1)
        v = red_combine_i(kind, v, __shfl_down_sync(RED_FULL_MASK, v, off));
    v = __shfl_sync(RED_FULL_MASK, v, 0);
    if (lanes <= 32)
        return v;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    __syncthreads();
    if (lane == 0)
        shared[warp] = v;
    __syncthreads();
    v = shared[0];
    for (int w = 1; w < (int)(blockDim.x >> 5); w++)
        v = red_combine_i(kind, v, shared[w]);
    return v;
}

/* The reduced elements of output o are x[o * red_count ...] contiguous:
 * `lanes` threads per row. */
__global__ void red_rows_kernel(red_desc d, const void *x, void *y, int lanes)
{
    CU_KERNEL_PROLOGUE();
    __shared__ double shared_d[RED_THREADS / 32];
    __shared__ long long shared_i[RED_THREADS / 32];
    int rows_per_block = blockDim.x / lanes;
    int64_t row = (int64_t)blockIdx.x * rows_per_block + threadIdx.x / lanes;
    int lane = threadIdx.x % lanes;
    if (lanes <= 32 && row >= d.n_out)
        return; /* whole warps leave together */
    int64_t n = d.red_count, base = row * n;
    if (d.use_double) {
        double result;
        if (d.kind == RED_LOG_SUM_EXP) {
            double mx = -INFINITY;
            for (int64_t r = lane; r < n; r += lanes)
                mx = red_max_ignore_nan(mx, cu_load_f64_idx64(d.dtype, x, base + r));
            mx = red_group_d(RED_MAX, mx, lanes, shared_d); /* NaN was skipped already */
            double acc = 0;
            if (!isinf(mx))
                for (int64_t r = lane; r < n; r += lanes)
                    acc += exp(cu_load_f64_idx64(d.dtype, x, base + r) - mx);
            acc = red_group_d(RED_SUM, acc, lanes, shared_d);
            result = isinf(mx) ? mx : mx + log(acc);
        } else {
            double acc = red_init_d(d.kind);
            for (int64_t r = lane; r < n; r += lanes)
                acc = red_combine_d(d.kind, acc, red_map_d(d.kind, cu_load_f64_idx64(d.dtype, x, base + r)));
            acc = red_group_d(d.kind, acc, lanes, shared_d);
            result = red_finish_d(d.kind, acc, n);
        }
        if (lane == 0)
            cu_store_f64_idx64(d.dtype, y, row, result);
    } else {
        long long acc = red_init_i(d.kind);
        for (int64_t r = lane; r < n; r += lanes)
            acc = red_combine_i(d.kind, acc, red_map_i(d.kind, red_load_i64(d.dtype, x, base + r)));
        acc = red_group_i(d.kind, acc, lanes, shared_i);
        if (lane == 0)
            red_store_int(&d, y, row, acc);
    }
}

/* float32 ReduceSum / ReduceMean over contiguous rows of a multiple of 4
 * elements (an instance norm's statistics): float4 loads, double
 * accumulation like the generic kernel, `lanes` threads per row. */
__global__ void red_rows_f32_sum_kernel(red_desc d, const float4 *__restrict__ x, float *__restrict__ y, int lanes)
{
    CU_KERNEL_PROLOGUE();
    __shared__ double shared_d[RED_THREADS / 32];
    int rows_per_block = blockDim.x / lanes;
    int64_t row = (int64_t)blockIdx.x * rows_per_block + threadIdx.x / lanes;
    int lane = threadIdx.x % lanes;
    if (lanes <= 32 && row >= d.n_out)
        return; /* whole warps leave together */
    int n4 = (int)(d.red_count / 4);
    const float4 *xr = x + row * n4;
    double acc = 0;
    for (int r = lane; r < n4; r += lanes) {
        float4 v = xr[r];
        acc += (double)v.x;
        acc += (double)v.y;
        acc += (double)v.z;
        acc += (double)v.w;
    }
    acc = red_group_d(RED_SUM, acc, lanes, shared_d);
    if (lane == 0)
        y[row] = (float)red_finish_d(d.kind, acc, d.red_count);
}

static fg_status *reduce_run(cuda_call *call)
{
    const red_state *st = (const red_state *)call->op.state;
    const fg_tensor *x = &call->op.in[0];
    fg_tensor *y = &call->op.out[0];
    if (st->mode == RED_MODE_NOOP) {
        size_t bytes = fg_tensor_nbytes(x);
        if (y->data != x->data && bytes) {
            cudaError_t err = cudaMemcpyAsync(y->data, x->data, bytes, cudaMemcpyDeviceToDevice, call->stream);
            if (err != cudaSuccess)
                return cuda_error(call, err, "copying the input (no axes to reduce)");
        }
        return NULL;
    }
    if (st->d.n_out == 0)
        return NULL;
    if (st->mode == RED_MODE_ROWS && st->d.dtype == FG_FLOAT32 && y->dtype == FG_FLOAT32 &&
        (st->d.kind == RED_SUM || st->d.kind == RED_MEAN) && st->d.red_count % 4 == 0 &&
        st->d.red_count / 4 <= 0x7fffffffLL && ((uintptr_t)x->data & 15) == 0) {
        int rows_per_block = RED_THREADS / st->lanes_per_row;
        int64_t blocks = (st->d.n_out + rows_per_block - 1) / rows_per_block;
        cu_launch(red_rows_f32_sum_kernel, (unsigned)blocks, RED_THREADS, 0, call->stream,
            st->d, (const float4 *)x->data, (float *)y->data, st->lanes_per_row);
    } else if (st->mode == RED_MODE_ROWS) {
        int rows_per_block = RED_THREADS / st->lanes_per_row;
        int64_t blocks = (st->d.n_out + rows_per_block - 1) / rows_per_block;
        cu_launch(red_rows_kernel, (unsigned)blocks, RED_THREADS, 0, call->stream, st->d, x->data, y->data,
                                                                           st->lanes_per_row);
    } else {
        cu_launch(red_generic_kernel, cu_blocks_for(st->d.n_out, RED_THREADS), RED_THREADS, 0, call->stream, st->d, x->data,
                                                                                                 y->data);
    }
    return cu_launch_status(call, "launching the reduction kernel");
}

/* ------------------------------------------------------------ Softmax family */

typedef enum smx_kind { SMX_SOFTMAX, SMX_LOG_SOFTMAX, SMX_HARDMAX } smx_kind;

typedef struct smx_state {
    int kind, dtype;
    int64_t outer, n, inner;
    int rows; /* 1: float32 rows (inner == 1) with a warp or block per row */
    int lanes_per_row;
} smx_state;

static smx_kind smx_kind_of(const char *op_type)
{
    if (strcmp(op_type, "LogSoftmax") == 0)
        return SMX_LOG_SOFTMAX;
    if (strcmp(op_type, "Hardmax") == 0)
        return SMX_HARDMAX;
    return SMX_SOFTMAX;
}

static fg_status *smx_prepare(cuda_call *call)
{
    const fg_tensor *x = &call->op.in[0];
    if (!red_is_float(x->dtype))
        return op_error(&call->op, FG_ERR_DTYPE, "element type %s is not supported (needs a float type)",
                        fg_dtype_name(x->dtype));
    int legacy = call->op.opset < 13;
    int64_t axis_attr = ir_attr_int(call->op.node, "axis", legacy ? 1 : -1);
    int axis = 0;
    if (x->rank > 0)
        FG_TRY(op_axis(&call->op, axis_attr, x->rank, &axis));
    smx_state *st = (smx_state *)calloc(1, sizeof *st);
    if (!st)
        return op_error(&call->op, FG_ERR_OUT_OF_MEMORY, "out of host memory");
    call->op.state = st;
    st->outer = 1, st->n = 1, st->inner = 1;
    for (int d = 0; d < x->rank; d++) {
        if (d < axis)
            st->outer *= x->dims[d];
        else if (d == axis || legacy)
            st->n *= x->dims[d];
        else
            st->inner *= x->dims[d];
    }
    st->kind = smx_kind_of(call->op.node->op_type);
    st->dtype = x->dtype;
    st->rows = x->dtype == FG_FLOAT32 && st->inner == 1 && st->n > 16;
    st->lanes_per_row = st->n <= 1024 ? 32 : RED_THREADS;
    return NULL;
}

/* One thread per (outer, inner) lane, walking the axis like the CPU does:
 * float math for float32 rows, double otherwise. */
__global__ void smx_lanes_kernel(int kind, int dt, int64_t outer, int64_t n, int64_t inner, const void *x, void *y)
{
    CU_KERNEL_PROLOGUE();
    int64_t lanes = outer * inner;
    int use_float = dt == FG_FLOAT32 && inner == 1;
    for (int64_t lane = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; lane < lanes;
         lane += (int64_t)gridDim.x * blockDim.x) {
        int64_t base = (lane / inner) * n * inner + lane % inner;
        if (use_float) {
            const float *xr = (const float *)x + base;
            float *yr = (float *)y + base;
            float mx = -INFINITY;
            int64_t arg = 0;
            for (int64_t j = 0; j < n; j++)
                if (xr[j] > mx)
                    mx = xr[j], arg = j;
            if (kind == SMX_HARDMAX) {
                for (int64_t j = 0; j < n; j++)
                    yr[j] = j == arg ? 1.0f : 0.0f;
                continue;
            }
            float sum = 0.0f;
            for (int64_t j = 0; j < n; j++)
                sum += expf(xr[j] - mx);
            if (kind == SMX_SOFTMAX) {
                float inv = 1.0f / sum;
                for (int64_t j = 0; j < n; j++)
                    yr[j] = expf(xr[j] - mx) * inv;
            } else {
                float lse = logf(sum);
                for (int64_t j = 0; j < n; j++)
                    yr[j] = xr[j] - mx - lse;
            }
            continue;
        }
        double mx = -INFINITY;
        int64_t arg = 0;
        for (int64_t j = 0; j < n; j++) {
            double v = cu_load_f64_idx64(dt, x, base + j * inner);
            if (v > mx)
                mx = v, arg = j;
        }
        if (kind == SMX_HARDMAX) {
            for (int64_t j = 0; j < n; j++)
                cu_store_f64_idx64(dt, y, base + j * inner, j == arg ? 1.0 : 0.0);
            continue;
        }
        double sum = 0;
        for (int64_t j = 0; j < n; j++)
            sum += exp(cu_load_f64_idx64(dt, x, base + j * inner) - mx);
        double lse = log(sum);
        for (int64_t j = 0; j < n; j++) {
            double v = cu_load_f64_idx64(dt, x, base + j * inner) - mx;
            cu_store_f64_idx64(dt, y, base + j * inner, kind == SMX_SOFTMAX ? exp(v) / sum : v - lse);
        }
    }
}

/* (max, first index of it) over a row group; index INT64_MAX: none above -inf. */
static __device__ void smx_group_max(float *mx, long long *arg, int lanes, float *shared_v, long long *shared_i)
{
    float v = *mx;
    long long a = *arg;
    for (int off = 16; off > 0; off >>= 1) {
        float ov = __shfl_down_sync(RED_FULL_MASK, v, off);
        long long oa = __shfl_down_sync(RED_FULL_MASK, a, off);
        if (ov > v || (ov == v && oa < a))
            v = ov, a = oa;
    }
    v = __shfl_sync(RED_FULL_MASK, v, 0);
    a = __shfl_sync(RED_FULL_MASK, a, 0);
    if (lanes > 32) {
        int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
        __syncthreads();
        if (lane == 0)
            shared_v[warp] = v, shared_i[warp] = a;
        __syncthreads();
        v = shared_v[0], a = shared_i[0];
        for (int w = 1; w < (int)(blockDim.x >> 5); w++)
            if (shared_v[w] > v || (shared_v[w] == v && shared_i[w] < a))
                v = shared_v[w], a = shared_i[w];
    }
    *mx = v;
    *arg = a;
}

static __device__ float smx_group_sum(float v, int lanes, float *shared_v)
{
    for (int off = 16; off > 0; off >>= 1)
        v += __shfl_down_sync(RED_FULL_MASK, v, off);
    v = __shfl_sync(RED_FULL_MASK, v, 0);
    if (lanes <= 32)
        return v;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    __syncthreads();
    if (lane == 0)
        shared_v[warp] = v;
    __syncthreads();
    v = shared_v[0];
    for (int w = 1; w < (int)(blockDim.x >> 5); w++)
        v += shared_v[w];
    return v;
}

/* float32 contiguous rows, `lanes` threads per row. */
__global__ void smx_rows_kernel(int kind, int64_t rows, int64_t n, const float *x, float *y, int lanes)
{
    CU_KERNEL_PROLOGUE();
    __shared__ float shared_v[RED_THREADS / 32];
    __shared__ long long shared_i[RED_THREADS / 32];
    int rows_per_block = blockDim.x / lanes;
    int64_t row = (int64_t)blockIdx.x * rows_per_block + threadIdx.x / lanes;
    int lane = threadIdx.x % lanes;
    if (lanes <= 32 && row >= rows)
        return;
    const float *xr = x + row * n;
    float *yr = y + row * n;
    float mx = -INFINITY;
    long long arg = LLONG_MAX;
    for (int64_t j = lane; j < n; j += lanes)
        if (xr[j] > mx)
            mx = xr[j], arg = j;
    smx_group_max(&mx, &arg, lanes, shared_v, shared_i);
    if (kind == SMX_HARDMAX) {
        if (arg == LLONG_MAX)
            arg = 0;
        for (int64_t j = lane; j < n; j += lanes)
            yr[j] = j == arg ? 1.0f : 0.0f;
        return;
    }
    float sum = 0.0f;
    for (int64_t j = lane; j < n; j += lanes)
        sum += expf(xr[j] - mx);
    sum = smx_group_sum(sum, lanes, shared_v);
    if (kind == SMX_SOFTMAX) {
        float inv = 1.0f / sum;
        for (int64_t j = lane; j < n; j += lanes)
            yr[j] = expf(xr[j] - mx) * inv;
    } else {
        float lse = logf(sum);
        for (int64_t j = lane; j < n; j += lanes)
            yr[j] = xr[j] - mx - lse;
    }
}

static fg_status *smx_run(cuda_call *call)
{
    const smx_state *st = (const smx_state *)call->op.state;
    const void *x = call->op.in[0].data;
    void *y = call->op.out[0].data;
    int64_t lanes = st->outer * st->inner;
    if (lanes == 0 || st->n == 0)
        return NULL;
    if (st->rows) {
        int rows_per_block = RED_THREADS / st->lanes_per_row;
        int64_t blocks = (st->outer + rows_per_block - 1) / rows_per_block;
        cu_launch(smx_rows_kernel, (unsigned)blocks, RED_THREADS, 0, call->stream, st->kind, st->outer, st->n,
                                                                           (const float *)x, (float *)y,
                                                                           st->lanes_per_row);
    } else {
        cu_launch(smx_lanes_kernel, cu_blocks_for(lanes, RED_THREADS), RED_THREADS, 0, call->stream,
            st->kind, st->dtype, st->outer, st->n, st->inner, x, y);
    }
    return cu_launch_status(call, "launching the softmax kernel");
}

/* ------------------------------------------------------------ ArgMax / ArgMin */

typedef struct arg_state {
    int dtype, is_max, last, is_float;
    int64_t outer, n, inner;
} arg_state;

static fg_status *arg_prepare(cuda_call *call)
{
    const fg_tensor *x = &call->op.in[0];
    if (x->rank == 0)
        return op_error(&call->op, FG_ERR_SHAPE, "input must have rank >= 1");
    int axis = 0;
    FG_TRY(op_axis(&call->op, ir_attr_int(call->op.node, "axis", 0), x->rank, &axis));
    arg_state *st = (arg_state *)calloc(1, sizeof *st);
    if (!st)
        return op_error(&call->op, FG_ERR_OUT_OF_MEMORY, "out of host memory");
    call->op.state = st;
    st->outer = 1, st->inner = 1;
    for (int d = 0; d < x->rank; d++) {
        if (d < axis)
            st->outer *= x->dims[d];
        else if (d > axis)
            st->inner *= x->dims[d];
    }
    st->n = x->dims[axis];
    st->dtype = x->dtype;
    st->is_float = red_is_float(x->dtype);
    st->is_max = strcmp(call->op.node->op_type, "ArgMax") == 0;
    st->last = ir_attr_int(call->op.node, "select_last_index", 0) != 0;
    return NULL;
}

/* One thread per lane, scanning in order like the CPU (NaN handling included). */
__global__ void arg_kernel(arg_state a, const void *x, long long *y)
{
    CU_KERNEL_PROLOGUE();
    int64_t lanes = a.outer * a.inner;
    for (int64_t lane = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; lane < lanes;
         lane += (int64_t)gridDim.x * blockDim.x) {
        int64_t base = (lane / a.inner) * a.n * a.inner + lane % a.inner;
        long long best = 0;
        if (a.is_float) {
            double bv = cu_load_f64_idx64(a.dtype, x, base);
            for (int64_t j = 1; j < a.n; j++) {
                double v = cu_load_f64_idx64(a.dtype, x, base + j * a.inner);
                int better = a.is_max ? (a.last ? v >= bv : v > bv) : (a.last ? v <= bv : v < bv);
                if (better)
                    bv = v, best = j;
            }
        } else {
            long long bv = red_load_i64(a.dtype, x, base);
            for (int64_t j = 1; j < a.n; j++) {
                long long v = red_load_i64(a.dtype, x, base + j * a.inner);
                int better = a.is_max ? (a.last ? v >= bv : v > bv) : (a.last ? v <= bv : v < bv);
                if (better)
                    bv = v, best = j;
            }
        }
        y[lane] = best;
    }
}

static fg_status *arg_run(cuda_call *call)
{
    const arg_state *st = (const arg_state *)call->op.state;
    int64_t lanes = st->outer * st->inner;
    if (lanes == 0 || st->n == 0)
        return NULL;
    cu_launch(arg_kernel, cu_blocks_for(lanes, RED_THREADS), RED_THREADS, 0, call->stream, *st, call->op.in[0].data,
                                                                               (long long *)call->op.out[0].data);
    return cu_launch_status(call, "launching the arg-extreme kernel");
}

/* ------------------------------------------------------------ TopK */

/* k is the output length along the axis: K, or with a run-time K (the
 * plan's out_bounded) the capacity n, the true K then being read on the
 * device from the K input (k_dtype) and stored in *device_count. */
typedef struct topk_state {
    int dtype, elem_size, largest;
    int k_on_device, k_dtype;
    int64_t outer, n, inner, k;
} topk_state;

static fg_status *topk_prepare(cuda_call *call)
{
    const fg_tensor *x = &call->op.in[0];
    if (x->rank == 0)
        return op_error(&call->op, FG_ERR_SHAPE, "input must have rank >= 1");
    int axis = 0;
    FG_TRY(op_axis(&call->op, ir_attr_int(call->op.node, "axis", -1), x->rank, &axis));
    int64_t k;
    int k_on_device = 0;
    fg_dtype k_dtype = FG_INT64;
    if (call->op.opset >= 10) {
        const fg_tensor *kt = &call->host_in[1];
        if (!op_has_input(&call->op, 1))
            return op_error(&call->op, FG_ERR_INVALID_ARGUMENT, "the K input is missing");
        if (fg_tensor_numel(kt) != 1)
            return op_error(&call->op, FG_ERR_SHAPE, "K must hold exactly one value");
        if (call->op.out_bounded) { /* K known at run time only: outputs planned at capacity */
            if (call->op.out_bounded - 1 != axis || !call->device_count)
                return op_error(&call->op, FG_ERR_INTERNAL, "a run-time K needs the TopK axis bounded and a count");
            if (kt->dtype != FG_INT64 && kt->dtype != FG_INT32)
                return op_error(&call->op, FG_ERR_DTYPE, "K must be int64 (got %s)", fg_dtype_name(kt->dtype));
            k_on_device = 1;
            k_dtype = kt->dtype;
            k = x->dims[axis];
        } else {
            if (!kt->data)
                return op_error(&call->op, FG_ERR_UNSUPPORTED, "the K input must be a constant for the CUDA backend");
            k = fg_load_i64(kt->dtype, kt->data, 0);
        }
    } else {
        k = ir_attr_int(call->op.node, "k", -1);
    }
    if (k < 0 || k > x->dims[axis])
        return op_error(&call->op, FG_ERR_INVALID_ARGUMENT, "K=%lld is out of range for an axis of size %lld",
                        (long long)k, (long long)x->dims[axis]);
    size_t es = fg_dtype_size(x->dtype);
    if (es != 1 && es != 2 && es != 4 && es != 8)
        return op_error(&call->op, FG_ERR_DTYPE, "element type %s is not supported", fg_dtype_name(x->dtype));
    topk_state *st = (topk_state *)calloc(1, sizeof *st);
    if (!st)
        return op_error(&call->op, FG_ERR_OUT_OF_MEMORY, "out of host memory");
    call->op.state = st;
    st->dtype = x->dtype;
    st->elem_size = (int)es;
    st->largest = ir_attr_int(call->op.node, "largest", 1) != 0;
    st->outer = 1, st->inner = 1;
    for (int d = 0; d < x->rank; d++) {
        if (d < axis)
            st->outer *= x->dims[d];
        else if (d > axis)
            st->inner *= x->dims[d];
    }
    st->n = x->dims[axis];
    st->k = k;
    st->k_on_device = k_on_device;
    st->k_dtype = k_dtype;
    return NULL;
}

/* a comes before b in the output order (value, then lower index). */
static __device__ __forceinline__ int topk_before(int largest, double av, long long ai, double bv, long long bi)
{
    if (av != bv)
        return largest ? av > bv : av < bv;
    return ai < bi;
}

/* Keeps in (v, i) the earlier of (v, i) and (ov, oi); index -1 is empty. */
static __device__ __forceinline__ void topk_pick(int largest, double *v, long long *i, double ov, long long oi)
{
    if (oi < 0)
        return;
    if (*i < 0 || topk_before(largest, ov, oi, *v, *i))
        *v = ov, *i = oi;
}

static __device__ __forceinline__ void topk_copy(int es, const void *x, int64_t src, void *y, int64_t dst)
{
    switch (es) {
    case 1: ((unsigned char *)y)[dst] = ((const unsigned char *)x)[src]; break;
    case 2: ((unsigned short *)y)[dst] = ((const unsigned short *)x)[src]; break;
    case 4: ((unsigned int *)y)[dst] = ((const unsigned int *)x)[src]; break;
    default: ((unsigned long long *)y)[dst] = ((const unsigned long long *)x)[src]; break;
    }
}

static __device__ __forceinline__ void topk_zero(int es, void *y, int64_t dst)
{
    switch (es) {
    case 1: ((unsigned char *)y)[dst] = 0; break;
    case 2: ((unsigned short *)y)[dst] = 0; break;
    case 4: ((unsigned int *)y)[dst] = 0; break;
    default: ((unsigned long long *)y)[dst] = 0; break;
    }
}

/* One block per lane (at least one block): picks rounds, each picking the
 * first item ordered after the previous pick (the CPU's selection, in
 * parallel). Outputs have t.k entries per lane; with K read on the device
 * (k_in) there are K picks (clamped to [0, n]; the CPU rejects K out of
 * range), zeros after them, and block 0 stores K in *count. */
__global__ void topk_kernel(topk_state t, const void *x, void *values, long long *indices, const void *k_in,
                            long long *count)
{
    CU_KERNEL_PROLOGUE();
    __shared__ double shared_v[RED_THREADS / 32];
    __shared__ long long shared_i[RED_THREADS / 32];
    __shared__ double prev_v;
    __shared__ long long prev_i;
    int64_t picks = t.k;
    if (t.k_on_device) {
        long long k_value = red_load_i64(t.k_dtype, k_in, 0);
        picks = k_value < 0 ? 0 : (k_value > t.n ? t.n : k_value);
        if (blockIdx.x == 0 && threadIdx.x == 0)
            *count = picks;
    }
    int64_t lane_id = blockIdx.x;
    if (lane_id >= t.outer * t.inner) /* the whole block: only the count was to be written */
        return;
    int64_t o = lane_id / t.inner, in = lane_id % t.inner;
    int64_t base = o * t.n * t.inner + in;
    int64_t out_base = o * t.k * t.inner + in;
    for (int64_t j = picks + threadIdx.x; j < t.k; j += blockDim.x) { /* past a run-time K: zeros */
        int64_t dst = out_base + j * t.inner;
        if (values)
            topk_zero(t.elem_size, values, dst);
        if (indices)
            indices[dst] = 0;
    }
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (threadIdx.x == 0)
        prev_v = 0, prev_i = -1;
    __syncthreads();
    for (int64_t j = 0; j < picks; j++) {
        double pv = prev_v;
        long long pi = prev_i;
        double bv = 0;
        long long bi = -1;
        for (int64_t m = threadIdx.x; m < t.n; m += blockDim.x) {
            double v = cu_load_f64_idx64(t.dtype, x, base + m * t.inner);
            if (pi >= 0 && !topk_before(t.largest, pv, pi, v, m))
                continue;
            topk_pick(t.largest, &bv, &bi, v, m);
        }
        for (int off = 16; off > 0; off >>= 1) {
            double ov = __shfl_down_sync(RED_FULL_MASK, bv, off);
            long long oi = __shfl_down_sync(RED_FULL_MASK, bi, off);
            topk_pick(t.largest, &bv, &bi, ov, oi);
        }
        if (lane == 0)
            shared_v[warp] = bv, shared_i[warp] = bi;
        __syncthreads();
        if (threadIdx.x == 0) {
            bv = shared_v[0], bi = shared_i[0];
            for (int w = 1; w < (int)(blockDim.x >> 5); w++)
                topk_pick(t.largest, &bv, &bi, shared_v[w], shared_i[w]);
            if (bi < 0)
                bi = 0; /* only with NaN in the data */
            int64_t dst = out_base + j * t.inner;
            if (values)
                topk_copy(t.elem_size, x, base + bi * t.inner, values, dst);
            if (indices)
                indices[dst] = bi;
            prev_v = cu_load_f64_idx64(t.dtype, x, base + bi * t.inner);
            prev_i = bi;
        }
        __syncthreads();
    }
}

static fg_status *topk_run(cuda_call *call)
{
    const topk_state *st = (const topk_state *)call->op.state;
    int64_t lanes = st->outer * st->inner;
    if ((st->k == 0 || lanes == 0) && !st->k_on_device)
        return NULL;
    void *values = call->op.n_out > 0 ? call->op.out[0].data : NULL;
    long long *indices = call->op.n_out > 1 ? (long long *)call->op.out[1].data : NULL;
    if (lanes > 0x7fffffffLL)
        return op_error(&call->op, FG_ERR_UNSUPPORTED, "too many rows (%lld) for the CUDA TopK", (long long)lanes);
    const void *k_in = st->k_on_device ? call->op.in[1].data : NULL;
    long long *count = st->k_on_device ? (long long *)call->device_count : NULL;
    unsigned blocks = lanes > 0 ? (unsigned)lanes : 1u; /* one block still writes the count */
    cu_launch(topk_kernel, blocks, RED_THREADS, 0, call->stream, *st, call->op.in[0].data, values, indices, k_in, count);
    return cu_launch_status(call, "launching the TopK kernel");
}

/* ------------------------------------------------------------ table */

extern "C" const cuda_op_def cuda_family_reduce[] = {
    {"ReduceSum", reduce_prepare, reduce_run, red_release},
    {"ReduceMean", reduce_prepare, reduce_run, red_release},
    {"ReduceMax", reduce_prepare, reduce_run, red_release},
    {"ReduceMin", reduce_prepare, reduce_run, red_release},
    {"ReduceProd", reduce_prepare, reduce_run, red_release},
    {"ReduceL1", reduce_prepare, reduce_run, red_release},
    {"ReduceL2", reduce_prepare, reduce_run, red_release},
    {"ReduceSumSquare", reduce_prepare, reduce_run, red_release},
    {"ReduceLogSumExp", reduce_prepare, reduce_run, red_release},
    {"ReduceLogSum", reduce_prepare, reduce_run, red_release},
    {"Softmax", smx_prepare, smx_run, red_release},
    {"LogSoftmax", smx_prepare, smx_run, red_release},
    {"Hardmax", smx_prepare, smx_run, red_release},
    {"ArgMax", arg_prepare, arg_run, red_release},
    {"ArgMin", arg_prepare, arg_run, red_release},
    {"TopK", topk_prepare, topk_run, red_release},
    {NULL, NULL, NULL, NULL},
};
