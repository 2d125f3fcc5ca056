/* Helpers shared by the op families: errors, axes, broadcasting,
 * fused activations. */
#include "ops/op.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

fg_status *op_need_value(void)
{
    static fg_status *need;
    if (!need)
        need = fg_status_need_value_sentinel();
    return need;
}

static fg_status *node_error_v(const ir_node *node, int64_t opset, fg_code code, const char *fmt, va_list ap)
{
    char msg[768];
    vsnprintf(msg, sizeof msg, fmt, ap);
    return fg_error(code, "node '%s' (%s, opset %lld): %s", node && node->name ? node->name : "",
                    node ? node->op_type : "?", (long long)opset, msg);
}

fg_status *op_error(const op_call *call, fg_code code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fg_status *s = node_error_v(call->node, call->opset, code, fmt, ap);
    va_end(ap);
    return s;
}

fg_status *op_node_error(const ir_node *node, int64_t opset, fg_code code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fg_status *s = node_error_v(node, opset, code, fmt, ap);
    va_end(ap);
    return s;
}

fg_status *op_axis(const op_call *call, int64_t axis, int rank, int *out)
{
    int64_t a = axis < 0 ? axis + rank : axis;
    if (a < 0 || a >= (rank ? rank : 1))
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "axis %lld is out of range for rank %d", (long long)axis,
                        rank);
    *out = (int)a;
    return NULL;
}

fg_status *op_broadcast_shape(const op_call *call, int n, const fg_tensor *const *inputs, int *rank, int64_t *dims)
{
    int r = 0;
    for (int i = 0; i < n; i++)
        if (inputs[i]->rank > r)
            r = inputs[i]->rank;
    for (int d = 0; d < r; d++)
        dims[d] = 1;
    for (int i = 0; i < n; i++) {
        const fg_tensor *t = inputs[i];
        int off = r - t->rank;
        for (int d = 0; d < t->rank; d++) {
            int64_t a = dims[off + d], b = t->dims[d];
            if (a == b || b == 1)
                continue;
            if (a == 1) {
                dims[off + d] = b;
                continue;
            }
            char sa[96], sb[96];
            fg_shape_format(inputs[0]->rank, inputs[0]->dims, sa, sizeof sa);
            fg_shape_format(t->rank, t->dims, sb, sizeof sb);
            return op_error(call, FG_ERR_SHAPE, "shapes %s and %s cannot be broadcast together", sa, sb);
        }
    }
    *rank = r;
    return NULL;
}

void op_broadcast_strides(const fg_tensor *t, int rank, const int64_t *dims, int64_t *strides)
{
    int off = rank - t->rank;
    int64_t s = 1;
    for (int d = rank - 1; d >= 0; d--) {
        int td = d - off;
        if (td < 0 || t->dims[td] == 1) {
            strides[d] = 0;
        } else {
            strides[d] = s;
            s *= t->dims[td];
        }
        (void)dims;
    }
}

int64_t op_read_ints(const fg_tensor *t, int64_t *dst, int64_t max)
{
    int64_t n = fg_tensor_numel(t);
    if (n > max)
        n = max;
    for (int64_t i = 0; i < n; i++)
        dst[i] = fg_load_i64(t->dtype, t->data, i);
    return n;
}

float op_activation_scalar(const op_activation *act, float x)
{
    switch (act->kind) {
    case OP_ACT_NONE: return x;
    case OP_ACT_RELU: return x > 0 ? x : 0;
    case OP_ACT_LEAKY_RELU: return x >= 0 ? x : x * act->alpha;
    case OP_ACT_CLIP: return x < act->alpha ? act->alpha : (x > act->beta ? act->beta : x);
    case OP_ACT_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case OP_ACT_HARD_SIGMOID: {
        float y = act->alpha * x + act->beta;
        return y < 0 ? 0 : (y > 1 ? 1 : y);
    }
    case OP_ACT_HARD_SWISH: {
        float y = x / 6.0f + 0.5f;
        return x * (y < 0 ? 0 : (y > 1 ? 1 : y));
    }
    case OP_ACT_TANH: return tanhf(x);
    case OP_ACT_SILU: return x / (1.0f + expf(-x));
    }
    return x;
}

void op_activation_apply(const op_activation *act, float *data, int64_t n)
{
    if (act->kind == OP_ACT_NONE)
        return;
    if (act->kind == OP_ACT_RELU) {
        for (int64_t i = 0; i < n; i++)
            data[i] = data[i] > 0 ? data[i] : 0;
        return;
    }
    for (int64_t i = 0; i < n; i++)
        data[i] = op_activation_scalar(act, data[i]);
}
