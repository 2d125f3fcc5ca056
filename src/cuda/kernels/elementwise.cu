/* CUDA element-wise ops: unary math and activations, binary arithmetic with
 * numpy broadcasting, variadic Max/Min/Sum/Mean, comparisons and logic,
 * BitShift, Where, Cast and CastLike. Semantics follow src/ops/elementwise.c.
 *
 * prepare() resolves attributes and constant inputs, picks a launch path and
 * stores everything in an ew_state; run() only launches.
 *
 * Paths:
 *   float32 in and out, common ops: specialised float kernels
 *     SAME     all operands have the output's shape (float4 when aligned)
 *     SCALAR   one operand is a single element
 *     CHANNEL  one operand varies along one axis only ([N,C,H,W] op [1,C,1,1],
 *              [.., C] op [C], PRelu slopes): index (i / inner) % channels
 *     GENERIC  N-d broadcast through a cu_map
 *   everything else: one generic kernel that computes in double (floats),
 *   int64 (signed) or uint64 (unsigned, bool), exactly like the CPU.
 * Variadic ops with n inputs run n-1 pairwise steps (out = out op in_j), the
 * fused activation (and Mean's division) is applied in the last step. */
#include "cuda/cuda_ops.h"
#include "cuda/kernels/kernel_util.cuh"

extern "C" {
#include "ops/elementwise_ops.h"
}

#include <float.h>

enum { EW_KIND_UNARY, EW_KIND_BINARY, EW_KIND_WHERE, EW_KIND_CAST };

enum { EW_PATH_SAME, EW_PATH_SCALAR, EW_PATH_CHANNEL, EW_PATH_GENERIC };

#define EW_MAX_INPUTS 16

/* Kernel parameters (by value). */
typedef struct ew_params {
    int op;
    int domain;
    int n_in;              /* 1 or 2 operands */
    fg_dtype in_dtype[2];
    fg_dtype out_dtype;
    double alpha, beta;    /* op parameters (LeakyRelu alpha, Clip bounds, ...) */
    float falpha, fbeta;   /* the same as float */
    int64_t ilo, ihi;      /* Clip bounds in the int64 domain */
    uint64_t ulo, uhi;     /* Clip bounds in the uint64 domain */
    const void *clip_lo;   /* Clip bounds read on the device (non-constant inputs), or NULL */
    const void *clip_hi;
    int fmod;              /* Mod */
    int detect_neg, detect_pos; /* IsInf */
    unsigned bits;         /* BitShift: element width */
    float mean_count;      /* > 0: divide the result by this (Mean, last step) */
    op_activation act;     /* fused activation for float outputs */
} ew_params;

typedef struct ew_step {
    int path;
    int bcast_is_a;        /* SCALAR / CHANNEL: the broadcast operand is a (else b) */
    uint32_t inner, channels;
    cu_map map;            /* GENERIC: operands a, b (Where: condition, x, y) */
} ew_step;

typedef struct ew_state {
    int kind;
    int f32_fast;          /* float32 in and out and an op with a float kernel */
    ew_params p;
    uint32_t n;            /* output elements */
    int n_steps;
    ew_step steps[EW_MAX_INPUTS - 1];
} ew_state;

/* ---------------------------------------------------------------- device loads and stores */
static __device__ __forceinline__ int dev_is_float(fg_dtype dt)
{
    return dt == FG_FLOAT32 || dt == FG_FLOAT16 || dt == FG_FLOAT64;
}

static __device__ __forceinline__ void store_bits(fg_dtype dt, void *p, uint32_t i, uint64_t v)
{
    switch (dt) {
    case FG_INT64: case FG_UINT64: ((uint64_t *)p)[i] = v; break;
    case FG_INT32: case FG_UINT32: ((uint32_t *)p)[i] = (uint32_t)v; break;
    case FG_INT16: case FG_UINT16: ((uint16_t *)p)[i] = (uint16_t)v; break;
    case FG_INT8: case FG_UINT8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case FG_BOOL: ((uint8_t *)p)[i] = v != 0; break;
    default: break;
    }
}

/* A value into a float element (f16 rounds from the float value, like the CPU). */
static __device__ __forceinline__ void store_float(fg_dtype dt, void *p, uint32_t i, double v)
{
    switch (dt) {
    case FG_FLOAT32: ((float *)p)[i] = (float)v; break;
    case FG_FLOAT64: ((double *)p)[i] = v; break;
    case FG_FLOAT16: ((__half *)p)[i] = __float2half_rn((float)v); break;
    default: break;
    }
}

/* double -> integer element: truncates toward zero, saturates out of int64
 * range, NaN -> 0, then wraps to the element width. */
static __device__ void store_f_to_int(fg_dtype dt, void *p, uint32_t i, double v)
{
    if (dt == FG_BOOL) {
        ((uint8_t *)p)[i] = v != 0;
        return;
    }
    uint64_t bits;
    if (v != v)
        bits = 0;
    else if (dt == FG_UINT64 && v >= 9223372036854775808.0)
        bits = v >= 18446744073709551616.0 ? UINT64_MAX : (uint64_t)v;
    else if (v >= 9223372036854775807.0)
        bits = (uint64_t)INT64_MAX;
    else if (v <= -9223372036854775808.0)
        bits = (uint64_t)INT64_MIN;
    else
        bits = (uint64_t)(int64_t)v;
    store_bits(dt, p, i, bits);
}

static __device__ __forceinline__ void store_f(fg_dtype dt, void *p, uint32_t i, double v)
{
    if (dev_is_float(dt))
        store_float(dt, p, i, v);
    else
        store_f_to_int(dt, p, i, v);
}

static __device__ __forceinline__ void store_i(fg_dtype dt, void *p, uint32_t i, int64_t v)
{
    if (dev_is_float(dt))
        store_float(dt, p, i, (double)v);
    else
        store_bits(dt, p, i, (uint64_t)v);
}

static __device__ __forceinline__ void store_u(fg_dtype dt, void *p, uint32_t i, uint64_t v)
{
    if (dev_is_float(dt))
        store_float(dt, p, i, (double)v);
    else
        store_bits(dt, p, i, v);
}

/* ---------------------------------------------------------------- scalar math (generic path) */
static __device__ double scalar_f(const ew_params &k, double a, double b)
{
    switch (k.op) {
    case EW_IDENTITY: return a;
    case EW_RELU: return a > 0 ? a : 0;
    case EW_LEAKY_RELU: return a >= 0 ? a : a * k.alpha;
    case EW_SIGMOID: return 1.0 / (1.0 + exp(-a));
    case EW_TANH: return tanh(a);
    case EW_HARD_SIGMOID: {
        double y = k.alpha * a + k.beta;
        return y < 0 ? 0 : (y > 1 ? 1 : y);
    }
    case EW_HARD_SWISH: {
        double y = a / 6.0 + 0.5;
        return a * (y < 0 ? 0 : (y > 1 ? 1 : y));
    }
    case EW_ELU: return a >= 0 ? a : k.alpha * (exp(a) - 1.0);
    case EW_SELU: return a > 0 ? k.beta * a : k.beta * (k.alpha * exp(a) - k.alpha);
    case EW_CELU: return (a > 0 ? a : 0) + fmin(0.0, k.alpha * (exp(a / k.alpha) - 1.0));
    case EW_THRESHOLDED_RELU: return a > k.alpha ? a : 0;
    case EW_CLIP: {
        double v = a < k.alpha ? k.alpha : a;
        return v > k.beta ? k.beta : v;
    }
    case EW_ERF: return erf(a);
    case EW_SQRT: return sqrt(a);
    case EW_EXP: return exp(a);
    case EW_LOG: return log(a);
    case EW_ABS: return fabs(a);
    case EW_NEG: return -a;
    case EW_RECIPROCAL: return 1.0 / a;
    case EW_FLOOR: return floor(a);
    case EW_CEIL: return ceil(a);
    case EW_ROUND: return rint(a); /* half to even */
    case EW_SIGN: return a > 0 ? 1.0 : (a < 0 ? -1.0 : (a == 0 ? 0.0 : a));
    case EW_SIN: return sin(a);
    case EW_COS: return cos(a);
    case EW_TAN: return tan(a);
    case EW_ASIN: return asin(a);
    case EW_ACOS: return acos(a);
    case EW_ATAN: return atan(a);
    case EW_SINH: return sinh(a);
    case EW_COSH: return cosh(a);
    case EW_ASINH: return asinh(a);
    case EW_ACOSH: return acosh(a);
    case EW_ATANH: return atanh(a);
    case EW_SOFTPLUS: return a > 0 ? a + log1p(exp(-a)) : log1p(exp(a));
    case EW_SOFTSIGN: return a / (1.0 + fabs(a));
    case EW_NOT: return a == 0;
    case EW_ISNAN: return a != a;
    case EW_SHRINK: return a < -k.alpha ? a + k.beta : (a > k.alpha ? a - k.beta : 0);
    case EW_ISINF: return (isinf(a) && ((a > 0 && k.detect_pos) || (a < 0 && k.detect_neg))) ? 1 : 0;
    case EW_ADD: return a + b;
    case EW_SUB: return a - b;
    case EW_MUL: return a * b;
    case EW_DIV: return a / b;
    case EW_POW: return pow(a, b);
    case EW_MOD: {
        double r = fmod(a, b);
        if (!k.fmod && r != 0 && ((r < 0) != (b < 0)))
            r += b;
        return r;
    }
    case EW_MAX: return (a != a || a > b) ? a : b;
    case EW_MIN: return (a != a || a < b) ? a : b;
    case EW_PRELU: return a < 0 ? a * b : a;
    case EW_EQUAL: return a == b;
    case EW_GREATER: return a > b;
    case EW_LESS: return a < b;
    case EW_GREATER_EQUAL: return a >= b;
    case EW_LESS_EQUAL: return a <= b;
    case EW_AND: return (a != 0) && (b != 0);
    case EW_OR: return (a != 0) || (b != 0);
    case EW_XOR: return (a != 0) != (b != 0);
    default: return 0;
    }
}

static __device__ int64_t scalar_i(const ew_params &k, int64_t a, int64_t b)
{
    switch (k.op) {
    case EW_IDENTITY: return a;
    case EW_RELU: return a > 0 ? a : 0;
    case EW_ABS: return a < 0 ? (int64_t)(0 - (uint64_t)a) : a;
    case EW_NEG: return (int64_t)(0 - (uint64_t)a);
    case EW_SIGN: return a > 0 ? 1 : (a < 0 ? -1 : 0);
    case EW_CLIP: {
        int64_t v = a < k.ilo ? k.ilo : a;
        return v > k.ihi ? k.ihi : v;
    }
    case EW_NOT: return a == 0;
    case EW_ADD: return (int64_t)((uint64_t)a + (uint64_t)b);
    case EW_SUB: return (int64_t)((uint64_t)a - (uint64_t)b);
    case EW_MUL: return (int64_t)((uint64_t)a * (uint64_t)b);
    case EW_DIV:
        if (b == 0)
            return 0;
        if (b == -1)
            return (int64_t)(0 - (uint64_t)a);
        return a / b;
    case EW_MOD: {
        if (b == 0 || b == -1)
            return 0;
        int64_t r = a % b;
        if (!k.fmod && r != 0 && ((r < 0) != (b < 0)))
            r += b;
        return r;
    }
    case EW_MAX: return a > b ? a : b;
    case EW_MIN: return a < b ? a : b;
    case EW_PRELU: return a < 0 ? (int64_t)((uint64_t)a * (uint64_t)b) : a;
    case EW_EQUAL: return a == b;
    case EW_GREATER: return a > b;
    case EW_LESS: return a < b;
    case EW_GREATER_EQUAL: return a >= b;
    case EW_LESS_EQUAL: return a <= b;
    case EW_AND: return (a != 0) && (b != 0);
    case EW_OR: return (a != 0) || (b != 0);
    case EW_XOR: return (a != 0) != (b != 0);
    default: return 0;
    }
}

static __device__ uint64_t scalar_u(const ew_params &k, uint64_t a, uint64_t b)
{
    switch (k.op) {
    case EW_IDENTITY: return a;
    case EW_RELU: case EW_ABS: return a;
    case EW_NEG: return 0 - a;
    case EW_SIGN: return a != 0;
    case EW_CLIP: {
        uint64_t v = a < k.ulo ? k.ulo : a;
        return v > k.uhi ? k.uhi : v;
    }
    case EW_NOT: return a == 0;
    case EW_ADD: return a + b;
    case EW_SUB: return a - b;
    case EW_MUL: return a * b;
    case EW_DIV: return b ? a / b : 0;
    case EW_MOD: return b ? a % b : 0;
    case EW_MAX: return a > b ? a : b;
    case EW_MIN: return a < b ? a : b;
    case EW_PRELU: return a;
    case EW_EQUAL: return a == b;
    case EW_GREATER: return a > b;
    case EW_LESS: return a < b;
    case EW_GREATER_EQUAL: return a >= b;
    case EW_LESS_EQUAL: return a <= b;
    case EW_AND: return (a != 0) && (b != 0);
    case EW_OR: return (a != 0) || (b != 0);
    case EW_XOR: return (a != 0) != (b != 0);
    case EW_SHIFT_LEFT: return b >= k.bits ? 0 : a << b;
    case EW_SHIFT_RIGHT: return b >= k.bits ? 0 : a >> b;
    default: return 0;
    }
}

/* Clip bounds that live on the device (non-constant min/max inputs). */
static __device__ __forceinline__ void resolve_clip(ew_params &k)
{
    if (k.op != EW_CLIP)
        return;
    if (k.clip_lo) {
        k.alpha = cu_load_f64(k.in_dtype[0], k.clip_lo, 0);
        k.falpha = (float)k.alpha;
        k.ilo = cu_load_i64(k.in_dtype[0], k.clip_lo, 0);
        k.ulo = (uint64_t)k.ilo;
    }
    if (k.clip_hi) {
        k.beta = cu_load_f64(k.in_dtype[0], k.clip_hi, 0);
        k.fbeta = (float)k.beta;
        k.ihi = cu_load_i64(k.in_dtype[0], k.clip_hi, 0);
        k.uhi = (uint64_t)k.ihi;
    }
}

/* One generic kernel for every dtype and op: operands through a cu_map. */
static __global__ void ew_generic_kernel(ew_params k, cu_map m, uint32_t n, void *out, const void *a, const void *b)
{
    CU_KERNEL_PROLOGUE();
    resolve_clip(k);
    const int binary = k.n_in > 1;
    const int use_act = k.act.kind != OP_ACT_NONE && dev_is_float(k.out_dtype);
    CU_LOOP(i, n) {
        uint32_t off[CU_MAX_OPERANDS];
        cu_map_offsets(m, i, off);
        switch (k.domain) {
        case DOM_F: {
            double x = cu_load_f64(k.in_dtype[0], a, off[0]);
            double y = binary ? cu_load_f64(k.in_dtype[1], b, off[1]) : 0.0;
            double v = scalar_f(k, x, y);
            if (k.mean_count > 0)
                v = v / k.mean_count;
            if (use_act)
                v = cu_act(k.act, (float)v);
            store_f(k.out_dtype, out, i, v);
            break;
        }
        case DOM_I: {
            int64_t x = cu_load_i64(k.in_dtype[0], a, off[0]);
            int64_t y = binary ? cu_load_i64(k.in_dtype[1], b, off[1]) : 0;
            store_i(k.out_dtype, out, i, scalar_i(k, x, y));
            break;
        }
        default: {
            uint64_t x = (uint64_t)cu_load_i64(k.in_dtype[0], a, off[0]);
            uint64_t y = binary ? (uint64_t)cu_load_i64(k.in_dtype[1], b, off[1]) : 0;
            store_u(k.out_dtype, out, i, scalar_u(k, x, y));
            break;
        }
        }
    }
}

/* ---------------------------------------------------------------- float32 fast kernels */
static int f32_unary_has_kernel(int op)
{
    switch (op) {
    case EW_IDENTITY: case EW_RELU: case EW_LEAKY_RELU: case EW_SIGMOID: case EW_TANH: case EW_HARD_SIGMOID:
    case EW_HARD_SWISH: case EW_ELU: case EW_SELU: case EW_CELU: case EW_THRESHOLDED_RELU: case EW_CLIP:
    case EW_ERF: case EW_SQRT: case EW_EXP: case EW_LOG: case EW_ABS: case EW_NEG: case EW_RECIPROCAL:
    case EW_FLOOR: case EW_CEIL: case EW_ROUND: case EW_SIGN: case EW_SIN: case EW_COS: case EW_SOFTPLUS:
    case EW_SOFTSIGN:
        return 1;
    default: return 0;
    }
}

static int f32_binary_has_kernel(int op)
{
    switch (op) {
    case EW_ADD: case EW_SUB: case EW_MUL: case EW_DIV: case EW_MAX: case EW_MIN: case EW_PRELU: case EW_POW:
        return 1;
    default: return 0;
    }
}

static __device__ __forceinline__ float unary_f32(const ew_params &k, float x)
{
    const float alpha = k.falpha, beta = k.fbeta;
    switch (k.op) {
    case EW_IDENTITY: return x;
    case EW_RELU: return x > 0 ? x : 0.0f;
    case EW_LEAKY_RELU: return x >= 0 ? x : x * alpha;
    case EW_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case EW_TANH: return tanhf(x);
    case EW_HARD_SIGMOID: return fminf(fmaxf(alpha * x + beta, 0.0f), 1.0f);
    case EW_HARD_SWISH: return x * fminf(fmaxf(x * (1.0f / 6.0f) + 0.5f, 0.0f), 1.0f);
    case EW_ELU: return x >= 0 ? x : alpha * (expf(fminf(x, 0.0f)) - 1.0f);
    case EW_SELU: return x > 0 ? beta * x : beta * (alpha * expf(fminf(x, 0.0f)) - alpha);
    case EW_CELU: return fmaxf(x, 0.0f) + fminf(0.0f, alpha * (expf(fminf(x, 0.0f) / alpha) - 1.0f));
    case EW_THRESHOLDED_RELU: return x > alpha ? x : 0.0f;
    case EW_CLIP: return x < alpha ? alpha : (x > beta ? beta : x);
    case EW_ERF: return erff(x);
    case EW_SQRT: return sqrtf(x);
    case EW_EXP: return expf(x);
    case EW_LOG: return logf(x);
    case EW_ABS: return fabsf(x);
    case EW_NEG: return -x;
    case EW_RECIPROCAL: return 1.0f / x;
    case EW_FLOOR: return floorf(x);
    case EW_CEIL: return ceilf(x);
    case EW_ROUND: return rintf(x); /* half to even */
    case EW_SIGN: return x > 0 ? 1.0f : (x < 0 ? -1.0f : x);
    case EW_SIN: return sinf(x);
    case EW_COS: return cosf(x);
    case EW_SOFTPLUS: return x > 0 ? x + log1pf(expf(-x)) : log1pf(expf(x));
    case EW_SOFTSIGN: return x / (1.0f + fabsf(x));
    default: return x;
    }
}

/* Binary float op, then Mean's division, then the fused activation. */
static __device__ __forceinline__ float binary_f32(const ew_params &k, float x, float y)
{
    float v;
    switch (k.op) {
    case EW_ADD: v = x + y; break;
    case EW_SUB: v = x - y; break;
    case EW_MUL: v = x * y; break;
    case EW_DIV: v = x / y; break;
    case EW_MAX: v = (x != x || x > y) ? x : y; break;
    case EW_MIN: v = (x != x || x < y) ? x : y; break;
    case EW_PRELU: v = x < 0 ? x * y : x; break;
    case EW_POW: v = y == 2.0f ? x * x : (y == 1.0f ? x : powf(x, y)); break;
    default: v = 0.0f; break;
    }
    if (k.mean_count > 0)
        v = v / k.mean_count;
    return cu_act(k.act, v);
}

static __global__ void ew_f32_unary_kernel(ew_params k, uint32_t n, float *out, const float *a, int vec)
{
    CU_KERNEL_PROLOGUE();
    resolve_clip(k);
    uint32_t start = 0;
    if (vec) {
        const uint32_t n4 = n >> 2;
        CU_LOOP(i, n4) {
            float4 v = ((const float4 *)a)[i];
            v.x = cu_act(k.act, unary_f32(k, v.x));
            v.y = cu_act(k.act, unary_f32(k, v.y));
            v.z = cu_act(k.act, unary_f32(k, v.z));
            v.w = cu_act(k.act, unary_f32(k, v.w));
            ((float4 *)out)[i] = v;
        }
        start = n4 << 2;
    }
    for (uint32_t i = start + blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x)
        out[i] = cu_act(k.act, unary_f32(k, a[i]));
}

static __global__ void ew_f32_same_kernel(ew_params k, uint32_t n, float *out, const float *a, const float *b,
                                          int vec)
{
    CU_KERNEL_PROLOGUE();
    uint32_t start = 0;
    if (vec) {
        const uint32_t n4 = n >> 2;
        CU_LOOP(i, n4) {
            const float4 x = ((const float4 *)a)[i];
            const float4 y = ((const float4 *)b)[i];
            float4 v;
            v.x = binary_f32(k, x.x, y.x);
            v.y = binary_f32(k, x.y, y.y);
            v.z = binary_f32(k, x.z, y.z);
            v.w = binary_f32(k, x.w, y.w);
            ((float4 *)out)[i] = v;
        }
        start = n4 << 2;
    }
    for (uint32_t i = start + blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x)
        out[i] = binary_f32(k, a[i], b[i]);
}

/* One operand is a single element `s`; `full` has the output's shape. */
static __global__ void ew_f32_scalar_kernel(ew_params k, uint32_t n, float *out, const float *full,
                                            const float *s, int scalar_is_a, int vec)
{
    CU_KERNEL_PROLOGUE();
    const float c = s[0];
    uint32_t start = 0;
    if (vec) {
        const uint32_t n4 = n >> 2;
        CU_LOOP(i, n4) {
            const float4 x = ((const float4 *)full)[i];
            float4 v;
            if (scalar_is_a) {
                v.x = binary_f32(k, c, x.x);
                v.y = binary_f32(k, c, x.y);
                v.z = binary_f32(k, c, x.z);
                v.w = binary_f32(k, c, x.w);
            } else {
                v.x = binary_f32(k, x.x, c);
                v.y = binary_f32(k, x.y, c);
                v.z = binary_f32(k, x.z, c);
                v.w = binary_f32(k, x.w, c);
            }
            ((float4 *)out)[i] = v;
        }
        start = n4 << 2;
    }
    for (uint32_t i = start + blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x)
        out[i] = scalar_is_a ? binary_f32(k, c, full[i]) : binary_f32(k, full[i], c);
}

/* One operand varies along one axis: element i reads bc[(i / inner) % channels].
 * vec: inner % 4 == 0 and aligned, so the 4 elements of a float4 share a channel. */
static __global__ void ew_f32_channel_kernel(ew_params k, uint32_t n, float *out, const float *full,
                                             const float *bc, uint32_t inner, uint32_t channels, int bc_is_a,
                                             int vec)
{
    CU_KERNEL_PROLOGUE();
    if (vec) {
        const uint32_t n4 = n >> 2;
        CU_LOOP(i, n4) {
            const float c = bc[((i << 2) / inner) % channels];
            const float4 x = ((const float4 *)full)[i];
            float4 v;
            if (bc_is_a) {
                v.x = binary_f32(k, c, x.x);
                v.y = binary_f32(k, c, x.y);
                v.z = binary_f32(k, c, x.z);
                v.w = binary_f32(k, c, x.w);
            } else {
                v.x = binary_f32(k, x.x, c);
                v.y = binary_f32(k, x.y, c);
                v.z = binary_f32(k, x.z, c);
                v.w = binary_f32(k, x.w, c);
            }
            ((float4 *)out)[i] = v;
        }
        return; /* n % 4 == 0 whenever inner % 4 == 0 */
    }
    CU_LOOP(i, n) {
        const float c = bc[(i / inner) % channels];
        out[i] = bc_is_a ? binary_f32(k, c, full[i]) : binary_f32(k, full[i], c);
    }
}

static __global__ void ew_f32_generic_kernel(ew_params k, cu_map m, uint32_t n, float *out, const float *a,
                                             const float *b)
{
    CU_KERNEL_PROLOGUE();
    CU_LOOP(i, n) {
        uint32_t off[CU_MAX_OPERANDS];
        cu_map_offsets(m, i, off);
        out[i] = binary_f32(k, a[off[0]], b[off[1]]);
    }
}

/* ---------------------------------------------------------------- Where */
#define WHERE_KERNEL(NAME, T)                                                                             \
    static __global__ void NAME(cu_map m, uint32_t n, T *out, const uint8_t *cond, const T *x, const T *y) \
    { CU_KERNEL_PROLOGUE();                                                                               \
        CU_LOOP(i, n) {                                                                                   \
            uint32_t off[CU_MAX_OPERANDS];                                                                \
            cu_map_offsets(m, i, off);                                                                    \
            out[i] = cond[off[0]] ? x[off[1]] : y[off[2]];                                                \
        }                                                                                                 \
    }
WHERE_KERNEL(ew_where1_kernel, uint8_t)
WHERE_KERNEL(ew_where2_kernel, uint16_t)
WHERE_KERNEL(ew_where4_kernel, uint32_t)
WHERE_KERNEL(ew_where8_kernel, uint64_t)

/* ---------------------------------------------------------------- Cast */
static __global__ void ew_cast_f32_to_f16_kernel(uint32_t n, __half *out, const float *in)
{
    CU_KERNEL_PROLOGUE();
    CU_LOOP(i, n)
        out[i] = __float2half_rn(in[i]);
}

static __global__ void ew_cast_f16_to_f32_kernel(uint32_t n, float *out, const __half *in)
{
    CU_KERNEL_PROLOGUE();
    CU_LOOP(i, n)
        out[i] = __half2float(in[i]);
}

static __global__ void ew_cast_kernel(fg_dtype from, fg_dtype to, uint32_t n, void *out, const void *in)
{
    CU_KERNEL_PROLOGUE();
    CU_LOOP(i, n) {
        if (dev_is_float(from)) {
            double v = cu_load_f64(from, in, i);
            if (dev_is_float(to)) {
                store_float(to, out, i, v);
            } else if (from == FG_FLOAT32 && to == FG_UINT8) {
                /* the CPU's float32 -> uint8: truncation, outside [0, 256) wraps like int32 -> uint8 */
                float f = ((const float *)in)[i];
                ((uint8_t *)out)[i] = (f >= 0 && f < 256.0f)
                                          ? (uint8_t)f
                                          : (uint8_t)(uint32_t)(int32_t)(f != f ? 0.0f
                                                                                : fmaxf(fminf(f, 2e9f), -2e9f));
            } else {
                store_f_to_int(to, out, i, v);
            }
        } else if (from == FG_INT64 && to == FG_FLOAT32) {
            ((float *)out)[i] = (float)((const int64_t *)in)[i];
        } else if (from == FG_INT8 || from == FG_INT16 || from == FG_INT32 || from == FG_INT64) {
            store_i(to, out, i, cu_load_i64(from, in, i));
        } else {
            store_u(to, out, i, (uint64_t)cu_load_i64(from, in, i));
        }
    }
}

/* ---------------------------------------------------------------- prepare */
static fg_status *too_big(const cuda_call *call)
{
    return op_error(&call->op, FG_ERR_UNSUPPORTED,
                    "tensors of 2^31 elements or more are not supported on the GPU");
}

/* Clip bounds: attributes before opset 11, optional scalar inputs after
 * (constant: read on the host; otherwise read on the device). */
static fg_status *clip_bounds(cuda_call *call, ew_params *p)
{
    const op_call *oc = &call->op;
    ew_clip_bounds b;
    FG_TRY(ew_read_clip_bounds(oc, call->host_in, 0, &b));
    p->alpha = b.lo;
    p->beta = b.hi;
    p->ilo = b.ilo;
    p->ihi = b.ihi;
    p->ulo = b.ulo;
    p->uhi = b.uhi;
    if (b.lo_needs_device)
        p->clip_lo = oc->in[1].data;
    if (b.hi_needs_device)
        p->clip_hi = oc->in[2].data;
    return NULL;
}

static void params_init(ew_params *p, const cuda_call *call, int op, int n_in)
{
    memset(p, 0, sizeof *p);
    p->op = op;
    p->n_in = n_in;
    for (int j = 0; j < n_in && j < 2 && j < call->op.n_in; j++)
        p->in_dtype[j] = call->op.in[j].dtype;
    p->out_dtype = call->op.out[0].dtype;
    p->domain = ew_domain_of(call->op.in[0].dtype);
    p->act = call->op.act;
}

/* Chooses the float32 path for out = a op b. */
static int pick_f32_path(ew_step *s, const fg_tensor *a, const fg_tensor *b, const fg_tensor *out)
{
    const fg_tensor *pair[2] = {a, b};
    if (cu_map_broadcast(&s->map, out, 2, pair) != 0)
        return -1;
    const int same_a = cu_same_shape(a, out), same_b = cu_same_shape(b, out);
    if (same_a && same_b) {
        s->path = EW_PATH_SAME;
        return 0;
    }
    if ((same_a && fg_tensor_numel(b) == 1) || (same_b && fg_tensor_numel(a) == 1)) {
        s->path = EW_PATH_SCALAR;
        s->bcast_is_a = !same_a;
        return 0;
    }
    if (same_a || same_b) {
        const int k = same_a ? 1 : 0; /* the broadcast operand */
        int axis = -1, count = 0;
        for (int d = 0; d < s->map.rank; d++)
            if (s->map.strides[k][d] != 0) {
                axis = d;
                count++;
            }
        if (count == 1 && s->map.strides[k][axis] == 1) {
            uint32_t inner = 1;
            for (int d = axis + 1; d < s->map.rank; d++)
                inner *= s->map.dims[d];
            s->path = EW_PATH_CHANNEL;
            s->bcast_is_a = k == 0;
            s->inner = inner;
            s->channels = s->map.dims[axis];
            return 0;
        }
    }
    s->path = EW_PATH_GENERIC;
    return 0;
}

static fg_status *state_new(cuda_call *call, ew_state **out)
{
    *out = (ew_state *)cu_state_alloc(sizeof(ew_state));
    if (!*out)
        return op_error(&call->op, FG_ERR_OUT_OF_MEMORY, "out of host memory preparing the kernel");
    call->op.state = *out;
    return NULL;
}

static fg_status *unary_prepare(cuda_call *call, int op)
{
    const op_call *oc = &call->op;
    if (fg_tensor_numel(&oc->out[0]) > CU_INDEX_LIMIT)
        return too_big(call);
    ew_state *st;
    FG_TRY(state_new(call, &st));
    st->kind = EW_KIND_UNARY;
    st->n = (uint32_t)fg_tensor_numel(&oc->out[0]);
    ew_params *p = &st->p;
    params_init(p, call, op, 1);
    ew_read_unary_attributes(oc->node, (ew_op)op, &p->alpha, &p->beta, &p->detect_neg, &p->detect_pos);
    if (op == EW_CLIP)
        FG_TRY(clip_bounds(call, p));
    p->falpha = (float)p->alpha;
    p->fbeta = (float)p->beta;
    if (!ew_unary_has_int_path((ew_op)op))
        p->domain = DOM_F;
    st->f32_fast = oc->in[0].dtype == FG_FLOAT32 && oc->out[0].dtype == FG_FLOAT32 && f32_unary_has_kernel(op);
    st->n_steps = 1;
    const fg_tensor *ins[1] = {&oc->in[0]};
    if (cu_map_broadcast(&st->steps[0].map, &oc->out[0], 1, ins) != 0)
        return too_big(call);
    st->steps[0].path = EW_PATH_GENERIC;
    return NULL;
}

/* Binary and variadic ops (Max/Min/Sum/Mean with any count). */
static fg_status *binary_prepare(cuda_call *call, int op, int mean)
{
    const op_call *oc = &call->op;
    const fg_tensor *out = &oc->out[0];
    if (fg_tensor_numel(out) > CU_INDEX_LIMIT)
        return too_big(call);
    const int n = oc->n_in;
    if (n < 1 || n > EW_MAX_INPUTS)
        return op_error(&call->op, FG_ERR_UNSUPPORTED, "%d inputs: the GPU supports 1 to %d", n, EW_MAX_INPUTS);
    ew_state *st;
    FG_TRY(state_new(call, &st));
    st->kind = EW_KIND_BINARY;
    st->n = (uint32_t)fg_tensor_numel(out);
    ew_params *p = &st->p;
    if (n == 1) {
        /* a copy, with the fused activation */
        params_init(p, call, EW_IDENTITY, 1);
        if (mean)
            p->act.kind = OP_ACT_NONE;
        st->kind = EW_KIND_UNARY;
        st->f32_fast = out->dtype == FG_FLOAT32;
        st->n_steps = 1;
        const fg_tensor *ins[1] = {&oc->in[0]};
        if (cu_map_broadcast(&st->steps[0].map, out, 1, ins) != 0)
            return too_big(call);
        return NULL;
    }
    params_init(p, call, op, 2);
    if (op == EW_MOD)
        p->fmod = (int)ir_attr_int(oc->node, "fmod", 0);
    if (op == EW_POW)
        p->domain = DOM_F;
    if (op == EW_SHIFT_LEFT || op == EW_SHIFT_RIGHT)
        p->bits = (unsigned)fg_dtype_size(oc->in[0].dtype) * 8;
    if (mean)
        p->act.kind = OP_ACT_NONE;
    st->f32_fast = oc->in[0].dtype == FG_FLOAT32 && oc->in[1].dtype == FG_FLOAT32 && out->dtype == FG_FLOAT32 &&
                   f32_binary_has_kernel(op);
    st->n_steps = n - 1;
    for (int s = 0; s < n - 1; s++) {
        const fg_tensor *a = s == 0 ? &oc->in[0] : out;
        const fg_tensor *b = &oc->in[s + 1];
        if (b->dtype != oc->in[0].dtype && !(op == EW_POW && s == 0))
            return op_error(&call->op, FG_ERR_DTYPE, "input %d has element type %s but input 0 has %s", s + 1,
                            fg_dtype_name(b->dtype), fg_dtype_name(oc->in[0].dtype));
        ew_step *step = &st->steps[s];
        if (st->f32_fast) {
            if (pick_f32_path(step, a, b, out) != 0)
                return too_big(call);
        } else {
            const fg_tensor *pair[2] = {a, b};
            if (cu_map_broadcast(&step->map, out, 2, pair) != 0)
                return too_big(call);
            step->path = EW_PATH_GENERIC;
        }
    }
    return NULL;
}

static fg_status *where_prepare(cuda_call *call)
{
    const op_call *oc = &call->op;
    if (oc->n_in != 3 || oc->in[0].dtype != FG_BOOL || oc->in[1].dtype != oc->in[2].dtype)
        return op_error(oc, FG_ERR_INVALID_ARGUMENT, "needs a bool condition and X, Y of one element type");
    size_t size = fg_dtype_size(oc->out[0].dtype);
    if (size != 1 && size != 2 && size != 4 && size != 8)
        return op_error(oc, FG_ERR_UNSUPPORTED, "element type %s is not supported on the GPU",
                        fg_dtype_name(oc->out[0].dtype));
    ew_state *st;
    FG_TRY(state_new(call, &st));
    st->kind = EW_KIND_WHERE;
    st->n = (uint32_t)fg_tensor_numel(&oc->out[0]);
    st->n_steps = 1;
    const fg_tensor *ins[3] = {&oc->in[0], &oc->in[1], &oc->in[2]};
    if (fg_tensor_numel(&oc->out[0]) > CU_INDEX_LIMIT || cu_map_broadcast(&st->steps[0].map, &oc->out[0], 3, ins))
        return too_big(call);
    return NULL;
}

static fg_status *cast_prepare(cuda_call *call)
{
    const op_call *oc = &call->op;
    if (fg_tensor_numel(&oc->out[0]) > CU_INDEX_LIMIT)
        return too_big(call);
    fg_dtype from = oc->in[0].dtype, to = oc->out[0].dtype;
    if (fg_dtype_size(from) == 0 || fg_dtype_size(to) == 0 || from == FG_STRING || to == FG_STRING)
        return op_error(oc, FG_ERR_UNSUPPORTED, "casting %s to %s is not supported on the GPU", fg_dtype_name(from),
                        fg_dtype_name(to));
    ew_state *st;
    FG_TRY(state_new(call, &st));
    st->kind = EW_KIND_CAST;
    st->n = (uint32_t)fg_tensor_numel(&oc->out[0]);
    st->p.in_dtype[0] = from;
    st->p.out_dtype = to;
    return NULL;
}

/* ---------------------------------------------------------------- run */
static fg_status *launch_binary_step(cuda_call *call, const ew_state *st, int s)
{
    const op_call *oc = &call->op;
    const ew_step *step = &st->steps[s];
    ew_params k = st->p;
    const int last = s == st->n_steps - 1;
    if (!last) {
        k.act.kind = OP_ACT_NONE;
        k.mean_count = 0;
    }
    if (s > 0) {
        k.in_dtype[0] = oc->out[0].dtype;
        k.in_dtype[1] = oc->in[s + 1].dtype;
    }
    const void *a = s == 0 ? oc->in[0].data : oc->out[0].data;
    const void *b = oc->in[s + 1].data;
    void *out = oc->out[0].data;
    const uint32_t n = st->n;
    const unsigned blocks = cu_blocks(n);
    if (!st->f32_fast) {
        cu_launch(ew_generic_kernel, blocks, CU_THREADS, 0, call->stream, k, step->map, n, out, a, b);
        return NULL;
    }
    const float *fa = (const float *)a, *fb = (const float *)b;
    float *fo = (float *)out;
    switch (step->path) {
    case EW_PATH_SAME: {
        int vec = ((uintptr_t)fa % 16 == 0) && ((uintptr_t)fb % 16 == 0) && ((uintptr_t)fo % 16 == 0);
        cu_launch(ew_f32_same_kernel, cu_blocks(vec ? n / 4 + 1 : n), CU_THREADS, 0, call->stream, k, n, fo, fa, fb, vec);
        break;
    }
    case EW_PATH_SCALAR: {
        const float *full = step->bcast_is_a ? fb : fa, *sc = step->bcast_is_a ? fa : fb;
        int vec = ((uintptr_t)full % 16 == 0) && ((uintptr_t)fo % 16 == 0);
        cu_launch(ew_f32_scalar_kernel, cu_blocks(vec ? n / 4 + 1 : n), CU_THREADS, 0, call->stream,
            k, n, fo, full, sc, step->bcast_is_a, vec);
        break;
    }
    case EW_PATH_CHANNEL: {
        const float *full = step->bcast_is_a ? fb : fa, *bc = step->bcast_is_a ? fa : fb;
        int vec = step->inner % 4 == 0 && ((uintptr_t)full % 16 == 0) && ((uintptr_t)fo % 16 == 0);
        cu_launch(ew_f32_channel_kernel, cu_blocks(vec ? n / 4 : n), CU_THREADS, 0, call->stream,
            k, n, fo, full, bc, step->inner, step->channels, step->bcast_is_a, vec);
        break;
    }
    default:
        cu_launch(ew_f32_generic_kernel, blocks, CU_THREADS, 0, call->stream, k, step->map, n, fo, fa, fb);
        break;
    }
    return NULL;
}

static fg_status *ew_run(cuda_call *call)
{
    const ew_state *st = (const ew_state *)call->op.state;
    const op_call *oc = &call->op;
    const uint32_t n = st->n;
    if (n == 0)
        return NULL;
    const unsigned blocks = cu_blocks(n);
    switch (st->kind) {
    case EW_KIND_UNARY: {
        const void *in = oc->in[0].data;
        void *out = oc->out[0].data;
        if (st->p.op == EW_IDENTITY && st->p.act.kind == OP_ACT_NONE) {
            if (in != out) {
                cudaError_t e = cudaMemcpyAsync(out, in, fg_tensor_nbytes(&oc->out[0]), cudaMemcpyDeviceToDevice,
                                                call->stream);
                if (e != cudaSuccess)
                    return cuda_error(call, e, "copy");
            }
            return NULL;
        }
        if (st->f32_fast) {
            int vec = ((uintptr_t)in % 16 == 0) && ((uintptr_t)out % 16 == 0);
            cu_launch(ew_f32_unary_kernel, cu_blocks(vec ? n / 4 + 1 : n), CU_THREADS, 0, call->stream,
                st->p, n, (float *)out, (const float *)in, vec);
        } else {
            cu_launch(ew_generic_kernel, blocks, CU_THREADS, 0, call->stream, st->p, st->steps[0].map, n, out, in, NULL);
        }
        break;
    }
    case EW_KIND_BINARY:
        for (int s = 0; s < st->n_steps; s++) {
            FG_TRY(launch_binary_step(call, st, s));
            CU_CHECK_LAUNCH(call, "element-wise kernel");
        }
        return NULL;
    case EW_KIND_WHERE: {
        const cu_map m = st->steps[0].map;
        const uint8_t *c = (const uint8_t *)oc->in[0].data;
        switch (fg_dtype_size(oc->out[0].dtype)) {
        case 1:
            cu_launch(ew_where1_kernel, blocks, CU_THREADS, 0, call->stream, m, n, (uint8_t *)oc->out[0].data, c,
                                                                     (const uint8_t *)oc->in[1].data,
                                                                     (const uint8_t *)oc->in[2].data);
            break;
        case 2:
            cu_launch(ew_where2_kernel, blocks, CU_THREADS, 0, call->stream, m, n, (uint16_t *)oc->out[0].data, c,
                                                                     (const uint16_t *)oc->in[1].data,
                                                                     (const uint16_t *)oc->in[2].data);
            break;
        case 4:
            cu_launch(ew_where4_kernel, blocks, CU_THREADS, 0, call->stream, m, n, (uint32_t *)oc->out[0].data, c,
                                                                     (const uint32_t *)oc->in[1].data,
                                                                     (const uint32_t *)oc->in[2].data);
            break;
        default:
            cu_launch(ew_where8_kernel, blocks, CU_THREADS, 0, call->stream, m, n, (uint64_t *)oc->out[0].data, c,
                                                                     (const uint64_t *)oc->in[1].data,
                                                                     (const uint64_t *)oc->in[2].data);
            break;
        }
        break;
    }
    case EW_KIND_CAST: {
        const fg_dtype from = st->p.in_dtype[0], to = st->p.out_dtype;
        const void *in = oc->in[0].data;
        void *out = oc->out[0].data;
        if (from == to) {
            if (in != out) {
                cudaError_t e = cudaMemcpyAsync(out, in, fg_tensor_nbytes(&oc->out[0]), cudaMemcpyDeviceToDevice,
                                                call->stream);
                if (e != cudaSuccess)
                    return cuda_error(call, e, "copy");
            }
            return NULL;
        }
        if (from == FG_FLOAT32 && to == FG_FLOAT16)
            cu_launch(ew_cast_f32_to_f16_kernel, blocks, CU_THREADS, 0, call->stream, n, (__half *)out, (const float *)in);
        else if (from == FG_FLOAT16 && to == FG_FLOAT32)
            cu_launch(ew_cast_f16_to_f32_kernel, blocks, CU_THREADS, 0, call->stream, n, (float *)out, (const __half *)in);
        else
            cu_launch(ew_cast_kernel, blocks, CU_THREADS, 0, call->stream, from, to, n, out, in);
        break;
    }
    default: break;
    }
    CU_CHECK_LAUNCH(call, "element-wise kernel");
    return NULL;
}

static void ew_release(void *state) { free(state); }

/* ---------------------------------------------------------------- table */
#define EW_UNARY(NAME, CODE) \
    static fg_status *prepare_##NAME(cuda_call *c) { return unary_prepare(c, CODE); }
#define EW_BINARY(NAME, CODE) \
    static fg_status *prepare_##NAME(cuda_call *c) { return binary_prepare(c, CODE, 0); }

EW_UNARY_OPS(EW_UNARY)
EW_BINARY_OPS(EW_BINARY)

static fg_status *prepare_Mean(cuda_call *c)
{
    FG_TRY(binary_prepare(c, EW_ADD, 1));
    ew_state *st = (ew_state *)c->op.state;
    if (st->kind == EW_KIND_BINARY)
        st->p.mean_count = (float)c->op.n_in;
    return NULL;
}

static fg_status *prepare_BitShift(cuda_call *c)
{
    int right = strcmp(ir_attr_string(c->op.node, "direction", "LEFT"), "RIGHT") == 0;
    return binary_prepare(c, right ? EW_SHIFT_RIGHT : EW_SHIFT_LEFT, 0);
}

#define E(NAME) {#NAME, prepare_##NAME, ew_run, ew_release}

extern "C" const cuda_op_def cuda_family_elementwise[] = {
    E(Relu), E(LeakyRelu), E(Sigmoid), E(Tanh), E(HardSigmoid), E(HardSwish), E(Elu), E(Selu), E(Celu),
    E(ThresholdedRelu), E(Clip), E(Erf), E(Sqrt), E(Exp), E(Log), E(Abs), E(Neg), E(Reciprocal), E(Floor),
    E(Ceil), E(Round), E(Sign), E(Sin), E(Cos), E(Tan), E(Asin), E(Acos), E(Atan), E(Sinh), E(Cosh), E(Asinh),
    E(Acosh), E(Atanh), E(Softplus), E(Softsign), E(Not), E(IsNaN), E(IsInf), E(Shrink),
    E(Add), E(Sub), E(Mul), E(Div), E(Pow), E(Mod), E(Max), E(Min), E(Sum), E(Mean), E(PRelu),
    E(Equal), E(Greater), E(Less), E(GreaterOrEqual), E(LessOrEqual), E(And), E(Or), E(Xor), E(BitShift),
    {"Where", where_prepare, ew_run, ew_release},
    {"Cast", cast_prepare, ew_run, ew_release},
    {"CastLike", cast_prepare, ew_run, ew_release},
    {NULL, NULL, NULL, NULL},
};
