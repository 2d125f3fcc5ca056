/* Host-side logic of the element-wise ops shared by the CPU and CUDA kernels
 * (see elementwise_ops.h). */
#include "ops/elementwise_ops.h"

#include <float.h>
#include <math.h>

static int is_float_dtype(fg_dtype dt)
{
    return dt == FG_FLOAT32 || dt == FG_FLOAT16 || dt == FG_FLOAT64;
}

static int is_signed_int_dtype(fg_dtype dt)
{
    return dt == FG_INT8 || dt == FG_INT16 || dt == FG_INT32 || dt == FG_INT64;
}

int ew_domain_of(fg_dtype dt)
{
    if (is_float_dtype(dt))
        return DOM_F;
    if (is_signed_int_dtype(dt))
        return DOM_I;
    return DOM_U;
}

int ew_unary_has_int_path(ew_op op)
{
    return op == EW_RELU || op == EW_ABS || op == EW_NEG || op == EW_SIGN || op == EW_CLIP || op == EW_NOT ||
           op == EW_IDENTITY;
}

void ew_read_unary_attributes(const ir_node *node, ew_op op, double *alpha, double *beta, int *detect_negative,
                              int *detect_positive)
{
    switch (op) {
    case EW_LEAKY_RELU: *alpha = ir_attr_float(node, "alpha", 0.01f); break;
    case EW_HARD_SIGMOID:
        *alpha = ir_attr_float(node, "alpha", 0.2f);
        *beta = ir_attr_float(node, "beta", 0.5f);
        break;
    case EW_ELU: *alpha = ir_attr_float(node, "alpha", 1.0f); break;
    case EW_SELU:
        *alpha = ir_attr_float(node, "alpha", 1.67326319217681884765625f);
        *beta = ir_attr_float(node, "gamma", 1.05070102214813232421875f);
        break;
    case EW_CELU: *alpha = ir_attr_float(node, "alpha", 1.0f); break;
    case EW_THRESHOLDED_RELU: *alpha = ir_attr_float(node, "alpha", 1.0f); break;
    case EW_SHRINK:
        *alpha = ir_attr_float(node, "lambd", 0.5f);
        *beta = ir_attr_float(node, "bias", 0.0f);
        break;
    case EW_ISINF:
        *detect_negative = (int)ir_attr_int(node, "detect_negative", 1);
        *detect_positive = (int)ir_attr_int(node, "detect_positive", 1);
        break;
    default: break;
    }
}

fg_status *ew_read_clip_bounds(const op_call *call, const fg_tensor *values, int require_values, ew_clip_bounds *b)
{
    const fg_dtype dt = call->in[0].dtype;
    b->lo = -INFINITY;
    b->hi = INFINITY;
    b->ilo = INT64_MIN;
    b->ihi = INT64_MAX;
    b->ulo = 0;
    b->uhi = UINT64_MAX;
    b->lo_needs_device = b->hi_needs_device = 0;
    if (call->opset < 11) {
        b->lo = ir_attr_float(call->node, "min", -FLT_MAX);
        b->hi = ir_attr_float(call->node, "max", FLT_MAX);
        return NULL;
    }
    for (int j = 1; j <= 2; j++) {
        if (!op_has_input(call, j))
            continue;
        const fg_tensor *t = &call->in[j];
        if (t->dtype != dt)
            return op_error(call, FG_ERR_DTYPE, "the %s bound has element type %s but the input is %s",
                            j == 1 ? "min" : "max", fg_dtype_name(t->dtype), fg_dtype_name(dt));
        if (fg_tensor_numel(t) != 1)
            return op_error(call, FG_ERR_SHAPE, "the %s bound must be a scalar", j == 1 ? "min" : "max");
        const void *data = values[j].data;
        if (!data) {
            if (require_values)
                return op_need_value();
            if (j == 1)
                b->lo_needs_device = 1;
            else
                b->hi_needs_device = 1;
            continue;
        }
        double v = fg_load_f64(dt, data, 0);
        int64_t iv = fg_load_i64(dt, data, 0);
        if (j == 1) {
            b->lo = v;
            b->ilo = iv;
            b->ulo = (uint64_t)iv;
        } else {
            b->hi = v;
            b->ihi = iv;
            b->uhi = (uint64_t)iv;
        }
    }
    return NULL;
}
