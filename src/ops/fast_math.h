/* Vectorisable float math shared by the CPU kernels. */
#ifndef FACEGRAPH_OPS_FAST_MATH_H
#define FACEGRAPH_OPS_FAST_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* These functions do not rely on floating-point exception flags; telling
 * the compiler so lets loops that inline them vectorize. GCC inlines them
 * only into functions compiled with the same option: wrap callers in the
 * same push_options / optimize("no-trapping-math") region. */
#pragma GCC push_options
#pragma GCC optimize("no-trapping-math")

/* min / max as plain selects so that loops using them vectorize */
static inline float min_f(float a, float b) { return a < b ? a : b; }
static inline float max_f(float a, float b) { return a > b ? a : b; }

/* exp for float with a Cephes-style range reduction and polynomial; about
 * 1-2 ulp, written so that the compiler vectorizes loops that use it. */
static inline float fast_expf(float x)
{
    x = min_f(max_f(x, -87.0f), 88.0f);
    float fn = floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - fn * 0.693359375f + fn * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * (r * r) + r + 1.0f;
    int32_t e = ((int32_t)fn + 127) << 23;
    float scale;
    memcpy(&scale, &e, sizeof scale);
    return y * scale;
}

/* tanh: odd Taylor series near 0, 1 - 2 / (exp(2|x|) + 1) elsewhere. */
static inline float fast_tanhf(float x)
{
    float ax = fabsf(x);
    float x2 = x * x;
    float small = x * (1.0f + x2 * (-1.0f / 3 + x2 * (2.0f / 15 + x2 * (-17.0f / 315 + x2 * (62.0f / 2835)))));
    float big = 1.0f - 2.0f / (fast_expf(2.0f * min_f(ax, 10.0f)) + 1.0f);
    big = copysignf(big, x);
    return ax < 0.4f ? small : big;
}

/* erf: Taylor series near 0, Abramowitz-Stegun 7.1.26 (abs error 1.5e-7)
 * elsewhere. */
static inline float fast_erff(float x)
{
    float ax = fabsf(x);
    float x2 = x * x;
    float small = 1.12837916709551257f * x *
                  (1.0f + x2 * (-1.0f / 3 + x2 * (1.0f / 10 + x2 * (-1.0f / 42 + x2 * (1.0f / 216 - x2 / 1320)))));
    float t = 1.0f / (1.0f + 0.3275911f * ax);
    float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
    float big = copysignf(1.0f - poly * fast_expf(-x2), x);
    return ax < 0.5f ? small : big;
}

#pragma GCC pop_options

/* The float32 unary math that the element-wise kernels (elementwise.c) and
 * the fused chains (elementwise_chain.c) share, so a fused chain gives the
 * same bits: `case EW_op: LOOP(expression of x, alpha, beta);` for each op.
 * Needs ops/elementwise_ops.h; use inside the no-trapping-math region. */
#define EW_F32_UNARY_CASES(LOOP)                                                          \
    case EW_RELU: LOOP(x > 0 ? x : 0.0f);                                                 \
    case EW_LEAKY_RELU: LOOP(x * (x >= 0 ? 1.0f : alpha));                                \
    case EW_SIGMOID: LOOP(1.0f / (1.0f + fast_expf(-x)));                                 \
    case EW_TANH: LOOP(fast_tanhf(x));                                                    \
    case EW_HARD_SIGMOID: LOOP(min_f(max_f(alpha * x + beta, 0.0f), 1.0f));               \
    case EW_HARD_SWISH: LOOP(x * min_f(max_f(x * (1.0f / 6.0f) + 0.5f, 0.0f), 1.0f));     \
    case EW_CLIP: LOOP(x < alpha ? alpha : (x > beta ? beta : x));                        \
    case EW_ERF: LOOP(fast_erff(x));                                                      \
    case EW_SQRT: LOOP(sqrtf(x));                                                         \
    case EW_EXP: LOOP(expf(x));                                                           \
    case EW_LOG: LOOP(logf(x));                                                           \
    case EW_ABS: LOOP(fabsf(x));                                                          \
    case EW_NEG: LOOP(-x);                                                                \
    case EW_RECIPROCAL: LOOP(1.0f / x);                                                   \
    case EW_FLOOR: LOOP(floorf(x));                                                       \
    case EW_CEIL: LOOP(ceilf(x));

#endif
