/* Host-side parameter reading of the data-movement ops shared by the CPU and
 * CUDA kernels (see tensor_params.h). */
#include "ops/tensor_params.h"

#include <string.h>

int tensor_dtype_is_integer(fg_dtype t)
{
    switch (t) {
    case FG_INT8: case FG_INT16: case FG_INT32: case FG_INT64:
    case FG_UINT8: case FG_UINT16: case FG_UINT32: case FG_UINT64:
        return 1;
    default:
        return 0;
    }
}

fg_status *tensor_read_int_input(const op_call *call, int index, int64_t *values, int max, int *count)
{
    const fg_tensor *t = &call->in[index];
    if (!tensor_dtype_is_integer(t->dtype))
        return op_error(call, FG_ERR_DTYPE, "input %d must be an integer tensor, got %s", index,
                        fg_dtype_name(t->dtype));
    if (t->rank > 1)
        return op_error(call, FG_ERR_SHAPE, "input %d must be a scalar or 1-D tensor, got rank %d", index, t->rank);
    int64_t n = fg_tensor_numel(t);
    if (n > max)
        return op_error(call, FG_ERR_SHAPE, "input %d has %lld values; at most %d fit here", index, (long long)n,
                        max);
    op_read_ints(t, values, n);
    *count = (int)n;
    return NULL;
}

fg_status *tensor_normalise_axes(const op_call *call, int64_t *axes, int n, int rank)
{
    for (int i = 0; i < n; i++) {
        int a;
        FG_TRY(op_axis(call, axes[i], rank, &a));
        axes[i] = a;
        for (int j = 0; j < i; j++)
            if (axes[j] == a)
                return op_error(call, FG_ERR_INVALID_ARGUMENT, "axis %d is listed twice", a);
    }
    return NULL;
}

fg_status *slice_params_get(const op_call *call, slice_params *p)
{
    const fg_tensor *in = &call->in[0];
    int rank = in->rank;
    int64_t starts[FG_MAX_RANK], ends[FG_MAX_RANK], axes[FG_MAX_RANK], steps[FG_MAX_RANK];
    int n = 0, n_ends = 0, n_axes = -1, n_steps = -1;
    if (call->opset < 10) {
        const int64_t *v;
        n = ir_attr_ints(call->node, "starts", &v);
        if (n > rank)
            return op_error(call, FG_ERR_SHAPE, "starts has %d entries for rank %d", n, rank);
        memcpy(starts, v, (size_t)n * sizeof *v);
        n_ends = ir_attr_ints(call->node, "ends", &v);
        if (n_ends > rank)
            return op_error(call, FG_ERR_SHAPE, "ends has %d entries for rank %d", n_ends, rank);
        memcpy(ends, v, (size_t)n_ends * sizeof *v);
        if (ir_attr_find(call->node, "axes")) {
            n_axes = ir_attr_ints(call->node, "axes", &v);
            if (n_axes > rank)
                return op_error(call, FG_ERR_SHAPE, "axes has %d entries for rank %d", n_axes, rank);
            memcpy(axes, v, (size_t)n_axes * sizeof *v);
        }
    } else {
        if (call->n_in < 3)
            return op_error(call, FG_ERR_INVALID_ARGUMENT, "Slice needs starts and ends inputs");
        OP_REQUIRE_VALUE(call, 1);
        OP_REQUIRE_VALUE(call, 2);
        if (op_has_input(call, 3))
            OP_REQUIRE_VALUE(call, 3);
        if (op_has_input(call, 4))
            OP_REQUIRE_VALUE(call, 4);
        FG_TRY(tensor_read_int_input(call, 1, starts, rank, &n));
        FG_TRY(tensor_read_int_input(call, 2, ends, rank, &n_ends));
        if (op_has_input(call, 3))
            FG_TRY(tensor_read_int_input(call, 3, axes, rank, &n_axes));
        if (op_has_input(call, 4))
            FG_TRY(tensor_read_int_input(call, 4, steps, rank, &n_steps));
    }
    if (n_ends != n || (n_axes >= 0 && n_axes != n) || (n_steps >= 0 && n_steps != n))
        return op_error(call, FG_ERR_SHAPE, "starts, ends, axes and steps must have the same length");
    if (n_axes < 0)
        for (int i = 0; i < n; i++)
            axes[i] = i;
    if (n_steps < 0)
        for (int i = 0; i < n; i++)
            steps[i] = 1;
    FG_TRY(tensor_normalise_axes(call, axes, n, rank));
    for (int d = 0; d < rank; d++) {
        p->start[d] = 0;
        p->step[d] = 1;
        p->count[d] = in->dims[d];
    }
    for (int i = 0; i < n; i++) {
        int a = (int)axes[i];
        int64_t dim = in->dims[a], step = steps[i], s = starts[i], e = ends[i];
        if (step == 0)
            return op_error(call, FG_ERR_INVALID_ARGUMENT, "slice step on axis %d is 0", a);
        if (s < 0) s += dim;
        if (e < 0) e += dim;
        int64_t count;
        if (step > 0) {
            s = s < 0 ? 0 : (s > dim ? dim : s);
            e = e < 0 ? 0 : (e > dim ? dim : e);
            count = e > s ? (e - s + step - 1) / step : 0;
        } else {
            s = s < 0 ? 0 : s;
            s = s > dim - 1 ? dim - 1 : s;
            e = e < -1 ? -1 : (e > dim - 1 ? dim - 1 : e);
            count = s > e ? (s - e + (-step) - 1) / (-step) : 0;
        }
        p->start[a] = count ? s : 0;
        p->step[a] = step;
        p->count[a] = count;
    }
    return NULL;
}
