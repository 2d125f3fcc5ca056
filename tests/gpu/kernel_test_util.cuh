/* What the stand-alone kernel tests (conv_direct_test.cu, dwpool_test.cu)
 * share: a reproducible input generator and the double-precision reference
 * of the fused activations they exercise. */
#ifndef FACEGRAPH_TESTS_GPU_KERNEL_TEST_UTIL_CUH
#define FACEGRAPH_TESTS_GPU_KERNEL_TEST_UTIL_CUH

#include "ops/op.h"

#include <math.h>

/* Uniform in [-1, 1) from a linear congruential state. */
static float urand(unsigned *s)
{
    *s = *s * 1664525u + 1013904223u;
    return ((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* The activation kinds the tests use (leaky ReLU with alpha 0.1). */
static double act_ref(int kind, double v)
{
    if (kind == OP_ACT_LEAKY_RELU)
        return v >= 0 ? v : v * 0.1;
    if (kind == OP_ACT_SIGMOID)
        return 1.0 / (1.0 + exp(-v));
    if (kind == OP_ACT_RELU)
        return v > 0 ? v : 0;
    return v;
}

#endif
