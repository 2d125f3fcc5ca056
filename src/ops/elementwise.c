/* Element-wise ops: unary math and activations, binary arithmetic with numpy
 * broadcasting, variadic Max/Min/Sum/Mean, comparisons and logic, Where,
 * Cast and CastLike.
 *
 * Layout: every kernel goes through one broadcast driver (ew_run). It turns
 * the inputs' broadcast strides into a merged, minimal-rank layout whose last
 * axis is contiguous (step 1) or broadcast (step 0) for each input, then calls
 * a row function on chunks of that last axis, in parallel for big tensors.
 * float32 has tight typed row functions; every other dtype goes through a
 * generic row that computes in double (floats), int64 (signed) or uint64
 * (unsigned, bool), so integer results are exact (constant folding of shape
 * arithmetic relies on that). */
#include "ops/op.h"
#include "ops/elementwise_ops.h"
#include "ops/fast_math.h"

#include <float.h>
#include <math.h>
#include <string.h>

#if defined(__F16C__)
#include <immintrin.h>
#endif


/* dtype sets as bit masks over fg_dtype codes */
#define M(dt) (1u << (dt))
#define T_FLOAT (M(FG_FLOAT32) | M(FG_FLOAT16) | M(FG_FLOAT64))
#define T_SINT (M(FG_INT8) | M(FG_INT16) | M(FG_INT32) | M(FG_INT64))
#define T_UINT (M(FG_UINT8) | M(FG_UINT16) | M(FG_UINT32) | M(FG_UINT64))
#define T_NUM (T_FLOAT | T_SINT | T_UINT)
#define T_BOOL M(FG_BOOL)

static int is_float_dtype(fg_dtype dt) { return ((T_FLOAT >> dt) & 1u) != 0; }
static int is_sint_dtype(fg_dtype dt) { return ((T_SINT >> dt) & 1u) != 0; }

static int is_compare(ew_op op) { return op >= EW_EQUAL && op <= EW_LESS_EQUAL; }

/* ---------------------------------------------------------------- kernel description */

#define EW_MAX_IN 3

typedef struct ew_kernel {
    ew_op op;
    int domain;
    int n_in;
    fg_dtype in_dtype[EW_MAX_IN];
    fg_dtype out_dtype;
    double alpha, beta;       /* op parameters (LeakyRelu alpha, Clip bounds, ...) */
    int64_t ilo, ihi;         /* Clip bounds in the int64 domain */
    uint64_t ulo, uhi;        /* Clip bounds in the uint64 domain */
    int fmod;                 /* Mod */
    int detect_neg, detect_pos; /* IsInf */
    const op_activation *act; /* fused activation applied to float outputs, or NULL */
} ew_kernel;

typedef void (*ew_row_fn)(const ew_kernel *k, void *out, const void *const *in, int64_t n, const int64_t *step);

/* ---------------------------------------------------------------- loads and stores */
static inline int64_t load_i(fg_dtype dt, const void *p, int64_t i) { return fg_load_i64(dt, p, i); }
static inline uint64_t load_u(fg_dtype dt, const void *p, int64_t i) { return (uint64_t)fg_load_i64(dt, p, i); }

/* Stores the low bits of v into an integer element (wrapping like C). */
static void store_bits(fg_dtype dt, void *p, int64_t i, uint64_t v)
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

static inline void store_i(fg_dtype dt, void *p, int64_t i, int64_t v)
{
    if (is_float_dtype(dt))
        fg_store_f64(dt, p, i, (double)v);
    else
        store_bits(dt, p, i, (uint64_t)v);
}

static inline void store_u(fg_dtype dt, void *p, int64_t i, uint64_t v)
{
    if (is_float_dtype(dt))
        fg_store_f64(dt, p, i, (double)v);
    else
        store_bits(dt, p, i, v);
}

/* double -> integer element: truncates toward zero, saturates out of int64
 * range, NaN -> 0, then wraps to the element width. */
static void store_f_to_int(fg_dtype dt, void *p, int64_t i, double v)
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

static inline void store_f(fg_dtype dt, void *p, int64_t i, double v)
{
    if (is_float_dtype(dt))
        fg_store_f64(dt, p, i, v);
    else
        store_f_to_int(dt, p, i, v);
}

/* ---------------------------------------------------------------- scalar math (generic path) */
static double scalar_f(const ew_kernel *k, double a, double b)
{
    switch (k->op) {
    case EW_RELU: return a > 0 ? a : 0;
    case EW_LEAKY_RELU: return a >= 0 ? a : a * k->alpha;
    case EW_SIGMOID: return 1.0 / (1.0 + exp(-a));
    case EW_TANH: return tanh(a);
    case EW_HARD_SIGMOID: {
        double y = k->alpha * a + k->beta;
        return y < 0 ? 0 : (y > 1 ? 1 : y);
    }
    case EW_HARD_SWISH: {
        double y = a / 6.0 + 0.5;
        return a * (y < 0 ? 0 : (y > 1 ? 1 : y));
    }
    case EW_ELU: return a >= 0 ? a : k->alpha * (exp(a) - 1.0);
    case EW_SELU: return a > 0 ? k->beta * a : k->beta * (k->alpha * exp(a) - k->alpha);
    case EW_CELU: return (a > 0 ? a : 0) + fmin(0.0, k->alpha * (exp(a / k->alpha) - 1.0));
    case EW_THRESHOLDED_RELU: return a > k->alpha ? a : 0;
    case EW_CLIP: {
        double v = a < k->alpha ? k->alpha : a;
        return v > k->beta ? k->beta : v;
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
    case EW_ROUND: return nearbyint(a);
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
    case EW_SHRINK: return a < -k->alpha ? a + k->beta : (a > k->alpha ? a - k->beta : 0);
    case EW_ISINF: return (isinf(a) && ((a > 0 && k->detect_pos) || (a < 0 && k->detect_neg))) ? 1 : 0;
    case EW_ADD: return a + b;
    case EW_SUB: return a - b;
    case EW_MUL: return a * b;
    case EW_DIV: return a / b;
    case EW_POW: return pow(a, b);
    case EW_MOD: {
        double r = fmod(a, b);
        if (!k->fmod && r != 0 && ((r < 0) != (b < 0)))
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

static int64_t scalar_i(const ew_kernel *k, int64_t a, int64_t b)
{
    switch (k->op) {
    case EW_RELU: return a > 0 ? a : 0;
    case EW_ABS: return a < 0 ? (int64_t)(0 - (uint64_t)a) : a;
    case EW_NEG: return (int64_t)(0 - (uint64_t)a);
    case EW_SIGN: return a > 0 ? 1 : (a < 0 ? -1 : 0);
    case EW_CLIP: {
        int64_t v = a < k->ilo ? k->ilo : a;
        return v > k->ihi ? k->ihi : v;
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
        if (b == 0)
            return 0;
        if (b == -1)
            return 0;
        int64_t r = a % b;
        if (!k->fmod && r != 0 && ((r < 0) != (b < 0)))
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

static uint64_t scalar_u(const ew_kernel *k, uint64_t a, uint64_t b, unsigned bits)
{
    switch (k->op) {
    case EW_RELU: case EW_ABS: return a;
    case EW_NEG: return 0 - a;
    case EW_SIGN: return a != 0;
    case EW_CLIP: {
        uint64_t v = a < k->ulo ? k->ulo : a;
        return v > k->uhi ? k->uhi : v;
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
    case EW_SHIFT_LEFT: return b >= bits ? 0 : a << b;
    case EW_SHIFT_RIGHT: return b >= bits ? 0 : a >> b;
    default: return 0;
    }
}

static void row_generic(const ew_kernel *k, void *out, const void *const *in, int64_t n, const int64_t *step)
{
    const fg_dtype d0 = k->in_dtype[0], d1 = k->in_dtype[1], od = k->out_dtype;
    const int binary = k->n_in > 1;
    switch (k->domain) {
    case DOM_F:
        for (int64_t i = 0; i < n; i++) {
            double a = fg_load_f64(d0, in[0], i * step[0]);
            double b = binary ? fg_load_f64(d1, in[1], i * step[1]) : 0;
            store_f(od, out, i, scalar_f(k, a, b));
        }
        break;
    case DOM_I:
        for (int64_t i = 0; i < n; i++) {
            int64_t a = load_i(d0, in[0], i * step[0]);
            int64_t b = binary ? load_i(d1, in[1], i * step[1]) : 0;
            store_i(od, out, i, scalar_i(k, a, b));
        }
        break;
    default: {
        unsigned bits = (unsigned)fg_dtype_size(d0) * 8;
        for (int64_t i = 0; i < n; i++) {
            uint64_t a = load_u(d0, in[0], i * step[0]);
            uint64_t b = binary ? load_u(d1, in[1], i * step[1]) : 0;
            store_u(od, out, i, scalar_u(k, a, b, bits));
        }
        break;
    }
    }
}

/* ---------------------------------------------------------------- float32 fast rows */
/* The float32 rows do not rely on floating-point exception flags; telling the
 * compiler so lets it turn selects and comparisons into vector code. */
#pragma GCC push_options
#pragma GCC optimize("no-trapping-math")
static void row_f32_unary(const ew_kernel *k, void *out_, const void *const *in, int64_t n, const int64_t *step)
{
    const float *restrict a = in[0];
    float *restrict o = out_;
    const float alpha = (float)k->alpha, beta = (float)k->beta;
    (void)step;
#define LOOP(EXPR)                          \
    _Pragma("omp simd")                     \
    for (int64_t i = 0; i < n; i++) {       \
        const float x = a[i];               \
        o[i] = (EXPR);                      \
    }                                       \
    break
    switch (k->op) {
        EW_F32_UNARY_CASES(LOOP)
    case EW_ELU: LOOP(x >= 0 ? x : alpha * (fast_expf(min_f(x, 0.0f)) - 1.0f));
    case EW_SELU: LOOP(x > 0 ? beta * x : beta * (alpha * fast_expf(min_f(x, 0.0f)) - alpha));
    case EW_CELU: LOOP(max_f(x, 0.0f) + min_f(0.0f, alpha * (fast_expf(min_f(x, 0.0f) / alpha) - 1.0f)));
    case EW_THRESHOLDED_RELU: LOOP(x > alpha ? x : 0.0f);
    case EW_ROUND: LOOP(nearbyintf(x));
    case EW_SIGN: LOOP(x > 0 ? 1.0f : (x < 0 ? -1.0f : x));
    case EW_SIN: LOOP(sinf(x));
    case EW_COS: LOOP(cosf(x));
    case EW_SOFTPLUS: LOOP(x > 0 ? x + log1pf(expf(-x)) : log1pf(expf(x)));
    case EW_SOFTSIGN: LOOP(x / (1.0f + fabsf(x)));
    default:
        row_generic(k, out_, in, n, step);
        break;
    }
#undef LOOP
}

/* Binary loops specialised on which operand is broadcast along the row. */
#define BIN_LOOPS(T_OUT, EXPR)                                  \
    do {                                                        \
        T_OUT *restrict o_ = (T_OUT *)out_;                     \
        if (s0 && s1) {                                         \
            for (int64_t i = 0; i < n; i++) {                   \
                const float x = a[i], y = b[i];                 \
                (void)x, (void)y;                               \
                o_[i] = (EXPR);                                 \
            }                                                   \
        } else if (s0) {                                        \
            const float y = b[0];                               \
            (void)y;                                            \
            for (int64_t i = 0; i < n; i++) {                   \
                const float x = a[i];                           \
                o_[i] = (EXPR);                                 \
            }                                                   \
        } else if (s1) {                                        \
            const float x = a[0];                               \
            (void)x;                                            \
            for (int64_t i = 0; i < n; i++) {                   \
                const float y = b[i];                           \
                (void)y;                                        \
                o_[i] = (EXPR);                                 \
            }                                                   \
        } else {                                                \
            const float x = a[0], y = b[0];                     \
            (void)x, (void)y;                                   \
            const T_OUT v_ = (EXPR);                            \
            for (int64_t i = 0; i < n; i++)                     \
                o_[i] = v_;                                     \
        }                                                       \
    } while (0)

static void row_f32_binary(const ew_kernel *k, void *out_, const void *const *in, int64_t n, const int64_t *step)
{
    const float *a = in[0], *b = in[1];
    const int s0 = step[0] != 0, s1 = step[1] != 0;
    switch (k->op) {
    case EW_ADD: BIN_LOOPS(float, x + y); break;
    case EW_SUB: BIN_LOOPS(float, x - y); break;
    case EW_MUL: BIN_LOOPS(float, x * y); break;
    case EW_DIV: BIN_LOOPS(float, x / y); break;
    case EW_MAX: BIN_LOOPS(float, (x != x || x > y) ? x : y); break;
    case EW_MIN: BIN_LOOPS(float, (x != x || x < y) ? x : y); break;
    case EW_PRELU: BIN_LOOPS(float, x < 0 ? x * y : x); break;
    case EW_POW:
        if (!s1 && b[0] == 2.0f)
            BIN_LOOPS(float, x * x);
        else if (!s1 && b[0] == 1.0f)
            BIN_LOOPS(float, x);
        else
            BIN_LOOPS(float, powf(x, y));
        break;
    case EW_MOD: BIN_LOOPS(float, (float)scalar_f(k, x, y)); break;
    case EW_EQUAL: BIN_LOOPS(uint8_t, x == y); break;
    case EW_GREATER: BIN_LOOPS(uint8_t, x > y); break;
    case EW_LESS: BIN_LOOPS(uint8_t, x < y); break;
    case EW_GREATER_EQUAL: BIN_LOOPS(uint8_t, x >= y); break;
    case EW_LESS_EQUAL: BIN_LOOPS(uint8_t, x <= y); break;
    default: row_generic(k, out_, in, n, step); break;
    }
}

#pragma GCC pop_options

/* int64 fast rows for the shape arithmetic the planner folds. */
static void row_i64_binary(const ew_kernel *k, void *out_, const void *const *in, int64_t n, const int64_t *step)
{
    const int64_t *a = in[0], *b = in[1];
    const int64_t s0 = step[0], s1 = step[1];
    switch (k->op) {
    case EW_ADD: {
        int64_t *o = out_;
        for (int64_t i = 0; i < n; i++)
            o[i] = (int64_t)((uint64_t)a[i * s0] + (uint64_t)b[i * s1]);
        break;
    }
    case EW_SUB: {
        int64_t *o = out_;
        for (int64_t i = 0; i < n; i++)
            o[i] = (int64_t)((uint64_t)a[i * s0] - (uint64_t)b[i * s1]);
        break;
    }
    case EW_MUL: {
        int64_t *o = out_;
        for (int64_t i = 0; i < n; i++)
            o[i] = (int64_t)((uint64_t)a[i * s0] * (uint64_t)b[i * s1]);
        break;
    }
    default: row_generic(k, out_, in, n, step); break;
    }
}

/* ---------------------------------------------------------------- Where */
#define WHERE_LOOP(T)                                                        \
    do {                                                                     \
        const T *x = in[1], *y = in[2];                                      \
        T *o = out;                                                          \
        for (int64_t i = 0; i < n; i++)                                      \
            o[i] = c[i * sc] ? x[i * sx] : y[i * sy];                        \
    } while (0)

static void row_where(const ew_kernel *k, void *out, const void *const *in, int64_t n, const int64_t *step)
{
    const uint8_t *c = in[0];
    const int64_t sc = step[0], sx = step[1], sy = step[2];
    switch (fg_dtype_size(k->out_dtype)) {
    case 1: WHERE_LOOP(uint8_t); break;
    case 2: WHERE_LOOP(uint16_t); break;
    case 4: WHERE_LOOP(uint32_t); break;
    case 8: WHERE_LOOP(uint64_t); break;
    default: break;
    }
}

/* ---------------------------------------------------------------- Cast */
static void row_cast(const ew_kernel *k, void *out, const void *const *in, int64_t n, const int64_t *step)
{
    const fg_dtype from = k->in_dtype[0], to = k->out_dtype;
    const void *src = in[0];
    (void)step;
    if (from == to) {
        memcpy(out, src, (size_t)n * fg_dtype_size(to));
        return;
    }
    if (from == FG_FLOAT32 && to == FG_FLOAT16) {
        const float *s = src;
        uint16_t *d = out;
        int64_t i = 0;
#if defined(__F16C__)
        for (; i + 8 <= n; i += 8)
            _mm_storeu_si128((__m128i *)(d + i), _mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT));
#endif
        for (; i < n; i++)
            d[i] = fg_float_to_half(s[i]);
        return;
    }
    if (from == FG_FLOAT16 && to == FG_FLOAT32) {
        const uint16_t *s = src;
        float *d = out;
        int64_t i = 0;
#if defined(__F16C__)
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + i))));
#endif
        for (; i < n; i++)
            d[i] = fg_half_to_float(s[i]);
        return;
    }
    if (to == FG_FLOAT32 && from == FG_UINT8) {
        const uint8_t *s = src;
        float *d = out;
        for (int64_t i = 0; i < n; i++)
            d[i] = s[i];
        return;
    }
    if (to == FG_FLOAT32 && from == FG_INT64) {
        const int64_t *s = src;
        float *d = out;
        for (int64_t i = 0; i < n; i++)
            d[i] = (float)s[i];
        return;
    }
    if (to == FG_FLOAT32 && from == FG_FLOAT64) {
        const double *s = src;
        float *d = out;
        for (int64_t i = 0; i < n; i++)
            d[i] = (float)s[i];
        return;
    }
    if (to == FG_FLOAT32 && from == FG_INT32) {
        const int32_t *s = src;
        float *d = out;
        for (int64_t i = 0; i < n; i++)
            d[i] = (float)s[i];
        return;
    }
    if (from == FG_FLOAT32 && to == FG_UINT8) {
        /* to 8-bit: truncation, values outside [0, 255] wrap like int->uint8 */
        const float *s = src;
        uint8_t *d = out;
        for (int64_t i = 0; i < n; i++) {
            float v = s[i];
            d[i] = (v >= 0 && v < 256.0f) ? (uint8_t)v : (uint8_t)(uint32_t)(int32_t)(v != v ? 0 : fmaxf(fminf(v, 2e9f), -2e9f));
        }
        return;
    }
    if (from == FG_INT32 && to == FG_INT64) {
        const int32_t *s = src;
        int64_t *d = out;
        for (int64_t i = 0; i < n; i++)
            d[i] = s[i];
        return;
    }
    if (from == FG_INT64 && to == FG_INT32) {
        const int64_t *s = src;
        int32_t *d = out;
        for (int64_t i = 0; i < n; i++)
            d[i] = (int32_t)(uint32_t)(uint64_t)s[i];
        return;
    }
    if (is_float_dtype(from)) {
        if (to == FG_FLOAT32 || to == FG_FLOAT64) {
            for (int64_t i = 0; i < n; i++)
                fg_store_f64(to, out, i, fg_load_f64(from, src, i));
        } else if (to == FG_FLOAT16) { /* round once, from the float value */
            for (int64_t i = 0; i < n; i++) {
                double v = fg_load_f64(from, src, i);
                ((uint16_t *)out)[i] = fg_float_to_half((float)v);
            }
        } else {
            for (int64_t i = 0; i < n; i++)
                store_f_to_int(to, out, i, fg_load_f64(from, src, i));
        }
    } else if (is_sint_dtype(from)) {
        for (int64_t i = 0; i < n; i++)
            store_i(to, out, i, load_i(from, src, i));
    } else {
        for (int64_t i = 0; i < n; i++)
            store_u(to, out, i, load_u(from, src, i));
    }
}

/* ---------------------------------------------------------------- broadcast driver */
#define EW_CHUNK 16384
#define EW_PARALLEL_MIN 32768

typedef struct ew_layout {
    int rank; /* >= 1 after merging */
    int64_t dims[FG_MAX_RANK];
    int64_t strides[EW_MAX_IN][FG_MAX_RANK];
} ew_layout;

/* Broadcast strides of each input against out, with size-1 axes dropped and
 * neighbouring axes merged wherever every input allows it. */
static void ew_layout_make(ew_layout *L, int n_in, const fg_tensor *const *ins, const fg_tensor *out)
{
    int64_t st[EW_MAX_IN][FG_MAX_RANK];
    for (int k = 0; k < n_in; k++)
        op_broadcast_strides(ins[k], out->rank, out->dims, st[k]);
    int r = 0;
    for (int d = 0; d < out->rank; d++) {
        int64_t dim = out->dims[d];
        if (dim == 1)
            continue;
        if (r > 0) {
            int mergeable = 1;
            for (int k = 0; k < n_in; k++)
                if (L->strides[k][r - 1] != st[k][d] * dim)
                    mergeable = 0;
            if (mergeable) {
                L->dims[r - 1] *= dim;
                for (int k = 0; k < n_in; k++)
                    L->strides[k][r - 1] = st[k][d];
                continue;
            }
        }
        L->dims[r] = dim;
        for (int k = 0; k < n_in; k++)
            L->strides[k][r] = st[k][d];
        r++;
    }
    if (r == 0) {
        L->dims[0] = 1;
        for (int k = 0; k < n_in; k++)
            L->strides[k][0] = 0;
        r = 1;
    }
    L->rank = r;
}

static void apply_activation(const op_activation *act, fg_dtype dt, void *out, int64_t n)
{
    if (dt == FG_FLOAT32) {
        op_activation_apply(act, out, n);
    } else if (is_float_dtype(dt)) {
        for (int64_t i = 0; i < n; i++)
            fg_store_f64(dt, out, i, op_activation_scalar(act, (float)fg_load_f64(dt, out, i)));
    }
}

/* out = fn(ins...) with ins broadcast to out's shape. */
static void ew_run(const ew_kernel *k, int threads, int n_in, const fg_tensor *const *ins, fg_tensor *out,
                   ew_row_fn fn)
{
    int64_t total = fg_tensor_numel(out);
    if (total <= 0)
        return;
    ew_layout L;
    ew_layout_make(&L, n_in, ins, out);
    const int m = L.rank;
    const int64_t inner = L.dims[m - 1];
    const int64_t outer = total / inner;
    const int64_t chunks_per_row = (inner + EW_CHUNK - 1) / EW_CHUNK;
    const int64_t blocks = outer * chunks_per_row;
    const size_t out_size = fg_dtype_size(k->out_dtype);
    size_t in_size[EW_MAX_IN] = {0};
    const char *in_data[EW_MAX_IN] = {0};
    for (int j = 0; j < n_in; j++) {
        in_size[j] = fg_dtype_size(ins[j]->dtype);
        in_data[j] = ins[j]->data;
    }
    const int use_act = k->act && k->act->kind != OP_ACT_NONE;
    if (threads < 1)
        threads = 1;
#pragma omp parallel for num_threads(threads) if (total >= EW_PARALLEL_MIN && blocks > 1 && threads > 1) schedule(static)
    for (int64_t b = 0; b < blocks; b++) {
        const int64_t row = b / chunks_per_row;
        const int64_t start = (b % chunks_per_row) * EW_CHUNK;
        const int64_t len = inner - start < EW_CHUNK ? inner - start : EW_CHUNK;
        int64_t off[EW_MAX_IN] = {0};
        int64_t rem = row;
        for (int d = m - 2; d >= 0; d--) {
            const int64_t idx = rem % L.dims[d];
            rem /= L.dims[d];
            for (int j = 0; j < n_in; j++)
                off[j] += idx * L.strides[j][d];
        }
        const void *p[EW_MAX_IN] = {0};
        int64_t step[EW_MAX_IN] = {0};
        for (int j = 0; j < n_in; j++) {
            step[j] = L.strides[j][m - 1];
            p[j] = in_data[j] + (size_t)(off[j] + start * step[j]) * in_size[j];
        }
        void *o = (char *)out->data + (size_t)(row * inner + start) * out_size;
        fn(k, o, p, len, step);
        if (use_act)
            apply_activation(k->act, k->out_dtype, o, len);
    }
}

/* ---------------------------------------------------------------- op descriptions */
typedef struct ew_info {
    const char *name;
    unsigned types; /* allowed input dtypes (input 0) */
} ew_info;

static const ew_info ew_infos[EW_COUNT] = {
    [EW_RELU] = {"Relu", T_FLOAT | T_SINT},
    [EW_LEAKY_RELU] = {"LeakyRelu", T_FLOAT},
    [EW_SIGMOID] = {"Sigmoid", T_FLOAT},
    [EW_TANH] = {"Tanh", T_FLOAT},
    [EW_HARD_SIGMOID] = {"HardSigmoid", T_FLOAT},
    [EW_HARD_SWISH] = {"HardSwish", T_FLOAT},
    [EW_ELU] = {"Elu", T_FLOAT},
    [EW_SELU] = {"Selu", T_FLOAT},
    [EW_CELU] = {"Celu", T_FLOAT},
    [EW_THRESHOLDED_RELU] = {"ThresholdedRelu", T_FLOAT},
    [EW_CLIP] = {"Clip", T_NUM},
    [EW_ERF] = {"Erf", T_NUM},
    [EW_SQRT] = {"Sqrt", T_FLOAT},
    [EW_EXP] = {"Exp", T_FLOAT},
    [EW_LOG] = {"Log", T_FLOAT},
    [EW_ABS] = {"Abs", T_NUM},
    [EW_NEG] = {"Neg", T_FLOAT | T_SINT},
    [EW_RECIPROCAL] = {"Reciprocal", T_FLOAT},
    [EW_FLOOR] = {"Floor", T_FLOAT},
    [EW_CEIL] = {"Ceil", T_FLOAT},
    [EW_ROUND] = {"Round", T_FLOAT},
    [EW_SIGN] = {"Sign", T_NUM},
    [EW_SIN] = {"Sin", T_FLOAT},
    [EW_COS] = {"Cos", T_FLOAT},
    [EW_TAN] = {"Tan", T_FLOAT},
    [EW_ASIN] = {"Asin", T_FLOAT},
    [EW_ACOS] = {"Acos", T_FLOAT},
    [EW_ATAN] = {"Atan", T_FLOAT},
    [EW_SINH] = {"Sinh", T_FLOAT},
    [EW_COSH] = {"Cosh", T_FLOAT},
    [EW_ASINH] = {"Asinh", T_FLOAT},
    [EW_ACOSH] = {"Acosh", T_FLOAT},
    [EW_ATANH] = {"Atanh", T_FLOAT},
    [EW_SOFTPLUS] = {"Softplus", T_FLOAT},
    [EW_SOFTSIGN] = {"Softsign", T_FLOAT},
    [EW_NOT] = {"Not", T_BOOL},
    [EW_ISNAN] = {"IsNaN", T_FLOAT},
    [EW_ISINF] = {"IsInf", T_FLOAT},
    [EW_SHRINK] = {"Shrink", T_NUM},
    [EW_ADD] = {"Add", T_NUM},
    [EW_SUB] = {"Sub", T_NUM},
    [EW_MUL] = {"Mul", T_NUM},
    [EW_DIV] = {"Div", T_NUM},
    [EW_POW] = {"Pow", T_NUM},
    [EW_MOD] = {"Mod", T_NUM},
    [EW_MAX] = {"Max", T_NUM},
    [EW_MIN] = {"Min", T_NUM},
    [EW_PRELU] = {"PRelu", T_NUM},
    [EW_EQUAL] = {"Equal", T_NUM | T_BOOL},
    [EW_GREATER] = {"Greater", T_NUM},
    [EW_LESS] = {"Less", T_NUM},
    [EW_GREATER_EQUAL] = {"GreaterOrEqual", T_NUM},
    [EW_LESS_EQUAL] = {"LessOrEqual", T_NUM},
    [EW_AND] = {"And", T_BOOL},
    [EW_OR] = {"Or", T_BOOL},
    [EW_XOR] = {"Xor", T_BOOL},
    [EW_SHIFT_LEFT] = {"BitShift", T_UINT},
    [EW_SHIFT_RIGHT] = {"BitShift", T_UINT},
};

static fg_status *check_dtype(const op_call *call, ew_op op, int input, fg_dtype dt)
{
    if ((ew_infos[op].types >> dt) & 1u)
        return NULL;
    return op_error(call, FG_ERR_DTYPE, "input %d has element type %s, which %s does not accept", input,
                    fg_dtype_name(dt), call->node->op_type);
}

static void kernel_init(ew_kernel *k, const op_call *call, ew_op op, int n_in)
{
    memset(k, 0, sizeof *k);
    k->op = op;
    k->n_in = n_in;
    for (int j = 0; j < n_in && j < call->n_in; j++)
        k->in_dtype[j] = call->in[j].dtype;
    k->out_dtype = call->out[0].dtype;
    k->domain = ew_domain_of(call->in[0].dtype);
}

static void copy_shape(fg_tensor *dst, const fg_tensor *src)
{
    dst->rank = src->rank;
    for (int d = 0; d < src->rank; d++)
        dst->dims[d] = src->dims[d];
}

/* ---------------------------------------------------------------- unary */
static fg_status *unary_infer(op_call *call, ew_op op)
{
    if (call->n_in < 1 || call->in[0].dtype == FG_DTYPE_UNDEFINED)
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "the input is missing");
    FG_TRY(check_dtype(call, op, 0, call->in[0].dtype));
    fg_tensor *out = &call->out[0];
    out->dtype = (op == EW_ISNAN || op == EW_ISINF) ? FG_BOOL : call->in[0].dtype;
    copy_shape(out, &call->in[0]);
    return NULL;
}

/* Clip bounds: attributes before opset 11, optional scalar inputs after. */
static fg_status *clip_bounds(const op_call *call, ew_kernel *k)
{
    ew_clip_bounds b;
    FG_TRY(ew_read_clip_bounds(call, call->in, 1, &b));
    k->alpha = b.lo;
    k->beta = b.hi;
    k->ilo = b.ilo;
    k->ihi = b.ihi;
    k->ulo = b.ulo;
    k->uhi = b.uhi;
    return NULL;
}

static fg_status *unary_run(op_call *call, ew_op op)
{
    ew_kernel k;
    kernel_init(&k, call, op, 1);
    ew_read_unary_attributes(call->node, op, &k.alpha, &k.beta, &k.detect_neg, &k.detect_pos);
    if (op == EW_CLIP)
        FG_TRY(clip_bounds(call, &k));
    const fg_dtype dt = call->in[0].dtype;
    if (!ew_unary_has_int_path(op))
        k.domain = DOM_F;
    ew_row_fn fn = row_generic;
    if (dt == FG_FLOAT32 && call->out[0].dtype == FG_FLOAT32)
        fn = row_f32_unary;
    const fg_tensor *ins[1] = {&call->in[0]};
    ew_run(&k, call->threads, 1, ins, &call->out[0], fn);
    return NULL;
}

/* ---------------------------------------------------------------- binary and variadic */
static fg_status *binary_infer(op_call *call, ew_op op)
{
    if (call->n_in < 1)
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "needs at least one input");
    const fg_tensor *ins[16];
    int n = call->n_in;
    if (n > 16)
        return op_error(call, FG_ERR_UNSUPPORTED, "%d inputs is more than the 16 supported", n);
    const fg_dtype dt = call->in[0].dtype;
    for (int j = 0; j < n; j++) {
        const fg_dtype dj = call->in[j].dtype;
        if (dj == FG_DTYPE_UNDEFINED)
            return op_error(call, FG_ERR_INVALID_ARGUMENT, "input %d is missing", j);
        if (op == EW_POW && j == 1) {
            if (!((T_NUM >> dj) & 1u))
                return op_error(call, FG_ERR_DTYPE, "the exponent has element type %s, which Pow does not accept",
                                fg_dtype_name(dj));
        } else if (dj != dt) {
            return op_error(call, FG_ERR_DTYPE,
                            "input %d has element type %s but input 0 has %s; %s needs them to match (insert a Cast)",
                            j, fg_dtype_name(dj), fg_dtype_name(dt), call->node->op_type);
        } else {
            FG_TRY(check_dtype(call, op, j, dj));
        }
        ins[j] = &call->in[j];
    }
    if (op == EW_SHIFT_LEFT || op == EW_SHIFT_RIGHT || op == EW_AND || op == EW_OR || op == EW_XOR ||
        op == EW_MOD || op == EW_POW || op == EW_PRELU || is_compare(op) || op == EW_DIV || op == EW_SUB) {
        if (n != 2)
            return op_error(call, FG_ERR_INVALID_ARGUMENT, "needs exactly 2 inputs, got %d", n);
    }
    fg_tensor *out = &call->out[0];
    FG_TRY(op_broadcast_shape(call, n, ins, &out->rank, out->dims));
    if (op == EW_PRELU && !fg_shape_equal(out->rank, out->dims, call->in[0].rank, call->in[0].dims)) {
        char sx[96], ss[96];
        return op_error(call, FG_ERR_SHAPE, "slope shape %s does not broadcast to the input shape %s",
                        fg_shape_format(call->in[1].rank, call->in[1].dims, ss, sizeof ss),
                        fg_shape_format(call->in[0].rank, call->in[0].dims, sx, sizeof sx));
    }
    out->dtype = (is_compare(op) || op == EW_AND || op == EW_OR || op == EW_XOR) ? FG_BOOL : dt;
    return NULL;
}

static ew_row_fn binary_row_for(const ew_kernel *k)
{
    if (k->in_dtype[0] == FG_FLOAT32 && k->in_dtype[1] == FG_FLOAT32)
        return row_f32_binary;
    if (k->in_dtype[0] == FG_INT64 && k->in_dtype[1] == FG_INT64 && k->out_dtype == FG_INT64)
        return row_i64_binary;
    return row_generic;
}

static fg_status *binary_run(op_call *call, ew_op op)
{
    ew_kernel k;
    kernel_init(&k, call, op, 2);
    if (op == EW_MOD)
        k.fmod = (int)ir_attr_int(call->node, "fmod", 0);
    if (op == EW_POW)
        k.domain = DOM_F;
    fg_tensor *out = &call->out[0];
    const int n = call->n_in;
    if (n == 1) {
        if (out->data != call->in[0].data)
            memcpy(out->data, call->in[0].data, fg_tensor_nbytes(out));
        if (call->act.kind != OP_ACT_NONE)
            apply_activation(&call->act, out->dtype, out->data, fg_tensor_numel(out));
        return NULL;
    }
    ew_row_fn fn = binary_row_for(&k);
    const fg_tensor *ins[2] = {&call->in[0], &call->in[1]};
    k.act = n == 2 ? &call->act : NULL;
    ew_run(&k, call->threads, 2, ins, out, fn);
    for (int j = 2; j < n; j++) {
        const fg_tensor *pair[2] = {out, &call->in[j]};
        k.act = j == n - 1 ? &call->act : NULL;
        ew_run(&k, call->threads, 2, pair, out, fn);
    }
    return NULL;
}

static fg_status *mean_run(op_call *call)
{
    ew_kernel k;
    kernel_init(&k, call, EW_ADD, 2);
    fg_tensor *out = &call->out[0];
    const int n = call->n_in;
    if (n == 1) {
        if (out->data != call->in[0].data)
            memcpy(out->data, call->in[0].data, fg_tensor_nbytes(out));
        return NULL;
    }
    ew_row_fn fn = binary_row_for(&k);
    const fg_tensor *ins[2] = {&call->in[0], &call->in[1]};
    ew_run(&k, call->threads, 2, ins, out, fn);
    for (int j = 2; j < n; j++) {
        const fg_tensor *pair[2] = {out, &call->in[j]};
        ew_run(&k, call->threads, 2, pair, out, fn);
    }
    const int64_t total = fg_tensor_numel(out);
    if (out->dtype == FG_FLOAT32) {
        float *o = out->data;
        const float count = (float)n;
        for (int64_t i = 0; i < total; i++)
            o[i] /= count;
    } else {
        for (int64_t i = 0; i < total; i++)
            store_f(out->dtype, out->data, i, fg_load_f64(out->dtype, out->data, i) / n);
    }
    return NULL;
}

/* ---------------------------------------------------------------- Where */
static fg_status *where_infer(op_call *call)
{
    if (call->n_in != 3)
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "needs 3 inputs (condition, X, Y), got %d", call->n_in);
    if (call->in[0].dtype != FG_BOOL)
        return op_error(call, FG_ERR_DTYPE, "the condition has element type %s; it must be bool",
                        fg_dtype_name(call->in[0].dtype));
    if (call->in[1].dtype != call->in[2].dtype)
        return op_error(call, FG_ERR_DTYPE, "X is %s but Y is %s; they must match", fg_dtype_name(call->in[1].dtype),
                        fg_dtype_name(call->in[2].dtype));
    if (fg_dtype_size(call->in[1].dtype) == 0)
        return op_error(call, FG_ERR_UNSUPPORTED, "element type %s is not supported",
                        fg_dtype_name(call->in[1].dtype));
    const fg_tensor *ins[3] = {&call->in[0], &call->in[1], &call->in[2]};
    fg_tensor *out = &call->out[0];
    FG_TRY(op_broadcast_shape(call, 3, ins, &out->rank, out->dims));
    out->dtype = call->in[1].dtype;
    return NULL;
}

static fg_status *where_run(op_call *call)
{
    ew_kernel k;
    kernel_init(&k, call, EW_ADD, 3);
    const fg_tensor *ins[3] = {&call->in[0], &call->in[1], &call->in[2]};
    ew_run(&k, call->threads, 3, ins, &call->out[0], row_where);
    return NULL;
}

/* ---------------------------------------------------------------- Cast / CastLike */
static int cast_supported(fg_dtype dt)
{
    return ((T_NUM | T_BOOL) >> dt) & 1u;
}

static fg_status *cast_check(const ir_node *node, int64_t opset)
{
    if (strcmp(node->op_type, "CastLike") == 0)
        return NULL;
    const ir_attr *to = ir_attr_find(node, "to");
    if (!to)
        return op_node_error(node, opset, FG_ERR_INVALID_ARGUMENT, "the 'to' attribute is missing");
    if (to->i < 0 || to->i > 31 || !cast_supported((fg_dtype)to->i))
        return op_node_error(node, opset, FG_ERR_UNSUPPORTED, "casting to element type %lld (%s) is not supported",
                             (long long)to->i, fg_dtype_name((fg_dtype)to->i));
    return NULL;
}

static fg_status *cast_infer_to(op_call *call, fg_dtype to)
{
    if (call->n_in < 1 || call->in[0].dtype == FG_DTYPE_UNDEFINED)
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "the input is missing");
    if (!cast_supported(call->in[0].dtype))
        return op_error(call, FG_ERR_UNSUPPORTED, "casting from %s is not supported",
                        fg_dtype_name(call->in[0].dtype));
    if ((int)to < 0 || (int)to > 31 || !cast_supported(to))
        return op_error(call, FG_ERR_UNSUPPORTED, "casting to element type %d (%s) is not supported", (int)to,
                        fg_dtype_name(to));
    call->out[0].dtype = to;
    copy_shape(&call->out[0], &call->in[0]);
    return NULL;
}

static fg_status *cast_infer(op_call *call)
{
    const ir_attr *to = ir_attr_find(call->node, "to");
    if (!to)
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "the 'to' attribute is missing");
    return cast_infer_to(call, (fg_dtype)to->i);
}

static fg_status *castlike_infer(op_call *call)
{
    if (call->n_in < 2 || call->in[1].dtype == FG_DTYPE_UNDEFINED)
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "needs 2 inputs (input, target_type)");
    return cast_infer_to(call, call->in[1].dtype);
}

static fg_status *cast_run(op_call *call)
{
    ew_kernel k;
    kernel_init(&k, call, EW_ADD, 1);
    const fg_tensor *ins[1] = {&call->in[0]};
    ew_run(&k, call->threads, 1, ins, &call->out[0], row_cast);
    return NULL;
}

/* ---------------------------------------------------------------- checks */
static fg_status *mod_check(const ir_node *node, int64_t opset)
{
    int64_t f = ir_attr_int(node, "fmod", 0);
    if (f != 0 && f != 1)
        return op_node_error(node, opset, FG_ERR_INVALID_ARGUMENT, "fmod must be 0 or 1, got %lld", (long long)f);
    return NULL;
}

static fg_status *bitshift_check(const ir_node *node, int64_t opset)
{
    const char *dir = ir_attr_string(node, "direction", "");
    if (strcmp(dir, "LEFT") != 0 && strcmp(dir, "RIGHT") != 0)
        return op_node_error(node, opset, FG_ERR_INVALID_ARGUMENT, "direction must be \"LEFT\" or \"RIGHT\", got \"%s\"",
                             dir);
    return NULL;
}

static ew_op bitshift_op(const op_call *call)
{
    return strcmp(ir_attr_string(call->node, "direction", "LEFT"), "RIGHT") == 0 ? EW_SHIFT_RIGHT : EW_SHIFT_LEFT;
}

static fg_status *bitshift_infer(op_call *call) { return binary_infer(call, bitshift_op(call)); }
static fg_status *bitshift_run(op_call *call) { return binary_run(call, bitshift_op(call)); }

static fg_status *mean_infer(op_call *call)
{
    FG_TRY(binary_infer(call, EW_ADD));
    if (!is_float_dtype(call->out[0].dtype))
        return op_error(call, FG_ERR_DTYPE, "element type %s is not accepted; Mean needs a float type",
                        fg_dtype_name(call->out[0].dtype));
    return NULL;
}

/* ---------------------------------------------------------------- table */
#define EW_UNARY(NAME, CODE)                                                  \
    static fg_status *infer_##NAME(op_call *c) { return unary_infer(c, CODE); } \
    static fg_status *run_##NAME(op_call *c) { return unary_run(c, CODE); }
#define EW_BINARY(NAME, CODE)                                                  \
    static fg_status *infer_##NAME(op_call *c) { return binary_infer(c, CODE); } \
    static fg_status *run_##NAME(op_call *c) { return binary_run(c, CODE); }

EW_UNARY_OPS(EW_UNARY)
EW_BINARY_OPS(EW_BINARY)

#define U(NAME) {#NAME, NULL, infer_##NAME, NULL, run_##NAME, NULL, 0}
#define B(NAME) {#NAME, NULL, infer_##NAME, NULL, run_##NAME, NULL, 0}
#define BF(NAME) {#NAME, NULL, infer_##NAME, NULL, run_##NAME, NULL, OP_FUSES_ACTIVATION}

const op_def op_family_elementwise[] = {
    U(Relu), U(LeakyRelu), U(Sigmoid), U(Tanh), U(HardSigmoid), U(HardSwish), U(Elu), U(Selu), U(Celu),
    U(ThresholdedRelu), U(Clip), U(Erf), U(Sqrt), U(Exp), U(Log), U(Abs), U(Neg), U(Reciprocal), U(Floor),
    U(Ceil), U(Round), U(Sign), U(Sin), U(Cos), U(Tan), U(Asin), U(Acos), U(Atan), U(Sinh), U(Cosh), U(Asinh),
    U(Acosh), U(Atanh), U(Softplus), U(Softsign), U(Not), U(IsNaN), U(IsInf), U(Shrink),
    BF(Add), BF(Sub), BF(Mul), BF(Div), B(Pow), B(Max), B(Min), BF(Sum), B(PRelu), B(Equal), B(Greater),
    B(Less), B(GreaterOrEqual), B(LessOrEqual), B(And), B(Or), B(Xor),
    {"Mean", NULL, mean_infer, NULL, mean_run, NULL, 0},
    {"BitShift", bitshift_check, bitshift_infer, NULL, bitshift_run, NULL, 0},
    {"Where", NULL, where_infer, NULL, where_run, NULL, 0},
    {"Cast", cast_check, cast_infer, NULL, cast_run, NULL, 0},
    {"CastLike", cast_check, castlike_infer, NULL, cast_run, NULL, 0},
    {"Mod", mod_check, infer_Mod, NULL, run_Mod, NULL, 0},
    {0},
};
