/* Host-side parameter reading of the data-movement ops shared by the CPU
 * kernels (src/ops/tensor.c) and the CUDA kernels (src/cuda/kernels/tensor.cu):
 * integer inputs (shapes, axes, pads, ...), axis normalisation and Slice's
 * per-axis start / step / count. */
#ifndef FACEGRAPH_OPS_TENSOR_PARAMS_H
#define FACEGRAPH_OPS_TENSOR_PARAMS_H

#include "ops/op.h"

/* 1 for the signed and unsigned integer element types. */
int tensor_dtype_is_integer(fg_dtype t);

/* Reads integer input `index` (a scalar or 1-D tensor of at most max values,
 * whose data must be present) into values; *count = its length. */
fg_status *tensor_read_int_input(const op_call *call, int index, int64_t *values, int max, int *count);

/* Normalises axes to [0, rank) in place, rejecting duplicates. */
fg_status *tensor_normalise_axes(const op_call *call, int64_t *axes, int n, int rank);

/* Slice per input axis: first element, step and element count. */
typedef struct slice_params {
    int64_t start[FG_MAX_RANK], step[FG_MAX_RANK], count[FG_MAX_RANK];
} slice_params;

/* Slice's parameters from its attributes (opset < 10) or its starts / ends /
 * axes / steps inputs (op_need_value() while one has no value). */
fg_status *slice_params_get(const op_call *call, slice_params *p);

#endif
