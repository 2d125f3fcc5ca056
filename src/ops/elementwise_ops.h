/* Host-side logic of the element-wise ops shared by the CPU kernels
 * (src/ops/elementwise.c) and the CUDA kernels
 * (src/cuda/kernels/elementwise.cu): the op codes, the ONNX op names that map
 * onto them, the arithmetic domain an input type computes in, and the
 * attributes / Clip bounds each op reads. */
#ifndef FACEGRAPH_OPS_ELEMENTWISE_OPS_H
#define FACEGRAPH_OPS_ELEMENTWISE_OPS_H

#include "ops/op.h"

typedef enum ew_op {
    /* unary */
    EW_RELU, EW_LEAKY_RELU, EW_SIGMOID, EW_TANH, EW_HARD_SIGMOID, EW_HARD_SWISH, EW_ELU, EW_SELU, EW_CELU,
    EW_THRESHOLDED_RELU, EW_CLIP, EW_ERF, EW_SQRT, EW_EXP, EW_LOG, EW_ABS, EW_NEG, EW_RECIPROCAL, EW_FLOOR,
    EW_CEIL, EW_ROUND, EW_SIGN, EW_SIN, EW_COS, EW_TAN, EW_ASIN, EW_ACOS, EW_ATAN, EW_SINH, EW_COSH, EW_ASINH,
    EW_ACOSH, EW_ATANH, EW_SOFTPLUS, EW_SOFTSIGN, EW_NOT, EW_ISNAN, EW_ISINF, EW_SHRINK,
    /* binary */
    EW_ADD, EW_SUB, EW_MUL, EW_DIV, EW_POW, EW_MOD, EW_MAX, EW_MIN, EW_PRELU, EW_EQUAL, EW_GREATER, EW_LESS,
    EW_GREATER_EQUAL, EW_LESS_EQUAL, EW_AND, EW_OR, EW_XOR, EW_SHIFT_LEFT, EW_SHIFT_RIGHT,
    /* a copy (the CUDA kernels' single-input Sum / Max / Min / Mean) */
    EW_IDENTITY,
    EW_COUNT
} ew_op;

/* The ONNX ops that are one op code each: X(OnnxName, code). Sum is Add over
 * any number of inputs; Mean, BitShift, Where and Cast are spelled out by
 * each backend. */
#define EW_UNARY_OPS(X)                                                                                   \
    X(Relu, EW_RELU) X(LeakyRelu, EW_LEAKY_RELU) X(Sigmoid, EW_SIGMOID) X(Tanh, EW_TANH)                  \
    X(HardSigmoid, EW_HARD_SIGMOID) X(HardSwish, EW_HARD_SWISH) X(Elu, EW_ELU) X(Selu, EW_SELU)           \
    X(Celu, EW_CELU) X(ThresholdedRelu, EW_THRESHOLDED_RELU) X(Clip, EW_CLIP) X(Erf, EW_ERF)              \
    X(Sqrt, EW_SQRT) X(Exp, EW_EXP) X(Log, EW_LOG) X(Abs, EW_ABS) X(Neg, EW_NEG)                          \
    X(Reciprocal, EW_RECIPROCAL) X(Floor, EW_FLOOR) X(Ceil, EW_CEIL) X(Round, EW_ROUND) X(Sign, EW_SIGN)  \
    X(Sin, EW_SIN) X(Cos, EW_COS) X(Tan, EW_TAN) X(Asin, EW_ASIN) X(Acos, EW_ACOS) X(Atan, EW_ATAN)       \
    X(Sinh, EW_SINH) X(Cosh, EW_COSH) X(Asinh, EW_ASINH) X(Acosh, EW_ACOSH) X(Atanh, EW_ATANH)            \
    X(Softplus, EW_SOFTPLUS) X(Softsign, EW_SOFTSIGN) X(Not, EW_NOT) X(IsNaN, EW_ISNAN)                   \
    X(IsInf, EW_ISINF) X(Shrink, EW_SHRINK)
#define EW_BINARY_OPS(X)                                                                                  \
    X(Add, EW_ADD) X(Sub, EW_SUB) X(Mul, EW_MUL) X(Div, EW_DIV) X(Pow, EW_POW) X(Mod, EW_MOD)             \
    X(Max, EW_MAX) X(Min, EW_MIN) X(Sum, EW_ADD) X(PRelu, EW_PRELU) X(Equal, EW_EQUAL)                    \
    X(Greater, EW_GREATER) X(Less, EW_LESS) X(GreaterOrEqual, EW_GREATER_EQUAL)                          \
    X(LessOrEqual, EW_LESS_EQUAL) X(And, EW_AND) X(Or, EW_OR) X(Xor, EW_XOR)

/* The arithmetic an op computes in: double, int64 or uint64. */
enum ew_domain { DOM_F, DOM_I, DOM_U };

/* The domain of an input type (float types: DOM_F, signed ints: DOM_I, the rest: DOM_U). */
int ew_domain_of(fg_dtype dt);
/* Unary ops that stay exact in integer arithmetic; others compute in double. */
int ew_unary_has_int_path(ew_op op);

/* Reads a unary op's attributes (LeakyRelu / Elu / Celu / ThresholdedRelu
 * alpha, HardSigmoid alpha and beta, Selu alpha and gamma, Shrink lambd and
 * bias, IsInf's detect flags); leaves the outputs alone for other ops. */
void ew_read_unary_attributes(const ir_node *node, ew_op op, double *alpha, double *beta, int *detect_negative,
                              int *detect_positive);

/* Clip's bounds in each domain (defaults: no bound). */
typedef struct ew_clip_bounds {
    double lo, hi;
    int64_t ilo, ihi;
    uint64_t ulo, uhi;
    int lo_needs_device, hi_needs_device; /* the bound input has no host value */
} ew_clip_bounds;

/* Clip bounds: attributes before opset 11, optional scalar inputs after,
 * checked against call->in and read from values[j].data (call->in on the
 * CPU, the host views of constant inputs on the GPU). A bound input without
 * a value returns op_need_value() when require_values, else sets
 * *_needs_device and keeps that bound's default. */
fg_status *ew_read_clip_bounds(const op_call *call, const fg_tensor *values, int require_values, ew_clip_bounds *b);

#endif
