/* Host-side logic of the Reduce* ops shared by the CPU and CUDA kernels (see
 * reduce_axes.h). */
#include "ops/reduce_axes.h"

#include <string.h>

red_kind red_kind_of(const char *op_type)
{
    static const struct {
        const char *name;
        red_kind kind;
    } table[] = {
        {"ReduceSum", RED_SUM},   {"ReduceMean", RED_MEAN}, {"ReduceMax", RED_MAX},
        {"ReduceMin", RED_MIN},   {"ReduceProd", RED_PROD}, {"ReduceL1", RED_L1},
        {"ReduceL2", RED_L2},     {"ReduceSumSquare", RED_SUM_SQUARE},
        {"ReduceLogSumExp", RED_LOG_SUM_EXP}, {"ReduceLogSum", RED_LOG_SUM},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(table[i].name, op_type) == 0)
            return table[i].kind;
    return RED_SUM;
}

fg_status *red_axes(const op_call *call, int reduced[FG_MAX_RANK], int *noop)
{
    const fg_tensor *x = &call->in[0];
    red_kind kind = red_kind_of(call->node->op_type);
    int axes_from_input = call->opset >= (kind == RED_SUM ? 13 : 18);
    int64_t axes[FG_MAX_RANK * 2];
    int64_t n_axes = 0;
    if (axes_from_input) {
        if (op_has_input(call, 1)) {
            OP_REQUIRE_VALUE(call, 1);
            int64_t n = fg_tensor_numel(&call->in[1]);
            if (n > FG_MAX_RANK * 2)
                return op_error(call, FG_ERR_INVALID_ARGUMENT, "%lld axes given for a rank %d input", (long long)n,
                                x->rank);
            n_axes = op_read_ints(&call->in[1], axes, n);
        }
    } else {
        const int64_t *attr = NULL;
        int n = ir_attr_ints(call->node, "axes", &attr);
        if (n > FG_MAX_RANK * 2)
            return op_error(call, FG_ERR_INVALID_ARGUMENT, "%d axes given for a rank %d input", n, x->rank);
        for (int i = 0; i < n; i++)
            axes[i] = attr[i];
        n_axes = n;
    }
    *noop = 0;
    for (int d = 0; d < FG_MAX_RANK; d++)
        reduced[d] = 0;
    if (n_axes == 0) {
        if (ir_attr_int(call->node, "noop_with_empty_axes", 0)) {
            *noop = 1;
            return NULL;
        }
        for (int d = 0; d < x->rank; d++)
            reduced[d] = 1;
        return NULL;
    }
    for (int64_t i = 0; i < n_axes; i++) {
        int a;
        FG_TRY(op_axis(call, axes[i], x->rank, &a));
        if (x->rank == 0)
            continue;
        reduced[a] = 1;
    }
    return NULL;
}
