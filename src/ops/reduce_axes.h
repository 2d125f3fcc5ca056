/* Host-side logic of the Reduce* ops shared by the CPU kernels
 * (src/ops/reduce.c) and the CUDA kernels (src/cuda/kernels/reduce.cu): the
 * reduction kinds and which axes a node reduces. */
#ifndef FACEGRAPH_OPS_REDUCE_AXES_H
#define FACEGRAPH_OPS_REDUCE_AXES_H

#include "ops/op.h"

typedef enum red_kind {
    RED_SUM,
    RED_MEAN,
    RED_MAX,
    RED_MIN,
    RED_PROD,
    RED_L1,
    RED_L2,
    RED_SUM_SQUARE,
    RED_LOG_SUM_EXP,
    RED_LOG_SUM
} red_kind;

/* The kind of a Reduce* op type (RED_SUM for an unknown name). */
red_kind red_kind_of(const char *op_type);

/* Which axes are reduced (reduced[d] = 1), from the axes attribute or, from
 * ReduceSum 13 / the others 18, the axes input (op_need_value() while it has
 * no value). *noop: the op is the identity. */
fg_status *red_axes(const op_call *call, int reduced[FG_MAX_RANK], int *noop);

#endif
