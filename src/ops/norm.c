/* Normalisations: BatchNormalization (inference), InstanceNormalization,
 * LayerNormalization (with optional Mean / InvStdDev outputs),
 * GroupNormalization, LRN.
 *
 * Kernels compute in float32 with double accumulation for statistics;
 * inputs of other float dtypes (float16, float64) are converted through
 * scratch, outputs converted back. */
#include "ops/op.h"

#include <math.h>
#include <string.h>

static int is_float_dtype(fg_dtype dt) { return dt == FG_FLOAT32 || dt == FG_FLOAT16 || dt == FG_FLOAT64; }

static fg_status *check_float_inputs(const op_call *call)
{
    for (int i = 0; i < call->n_in; i++)
        if (op_has_input(call, i) && !is_float_dtype(call->in[i].dtype))
            return op_error(call, FG_ERR_DTYPE, "input %d has dtype %s; float32, float16 or float64 expected", i,
                            fg_dtype_name(call->in[i].dtype));
    return NULL;
}

static size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Scratch for float32 copies of non-float32 inputs and outputs. */
static size_t conversion_scratch(const op_call *call)
{
    size_t bytes = 0;
    for (int i = 0; i < call->n_in; i++)
        if (op_has_input(call, i) && call->in[i].dtype != FG_FLOAT32)
            bytes += round64((size_t)fg_tensor_numel(&call->in[i]) * sizeof(float));
    for (int o = 0; o < call->n_out; o++)
        if (call->out[o].dtype != FG_FLOAT32 && call->out[o].dtype != FG_DTYPE_UNDEFINED)
            bytes += round64((size_t)fg_shape_numel(call->out[o].rank, call->out[o].dims) * sizeof(float));
    return bytes;
}

typedef struct float_views {
    const float *in[8];
    float *out[4];
} float_views;

/* Points views at float32 data: the tensors themselves, or converted
 * copies in scratch. */
static void make_views(op_call *call, float_views *v)
{
    char *scratch = call->scratch;
    size_t offset = 0;
    for (int i = 0; i < call->n_in && i < 8; i++) {
        v->in[i] = NULL;
        if (!op_has_input(call, i))
            continue;
        const fg_tensor *t = &call->in[i];
        if (t->dtype == FG_FLOAT32) {
            v->in[i] = t->data;
            continue;
        }
        float *buf = (float *)(scratch + offset);
        int64_t n = fg_tensor_numel(t);
        offset += round64((size_t)n * sizeof(float));
        for (int64_t k = 0; k < n; k++)
            buf[k] = (float)fg_load_f64(t->dtype, t->data, k);
        v->in[i] = buf;
    }
    for (int o = 0; o < call->n_out && o < 4; o++) {
        fg_tensor *t = &call->out[o];
        v->out[o] = NULL;
        if (!t->data)
            continue;
        if (t->dtype == FG_FLOAT32) {
            v->out[o] = t->data;
            continue;
        }
        v->out[o] = (float *)(scratch + offset);
        offset += round64((size_t)fg_tensor_numel(t) * sizeof(float));
    }
}

static void store_views(op_call *call, const float_views *v)
{
    for (int o = 0; o < call->n_out && o < 4; o++) {
        fg_tensor *t = &call->out[o];
        if (!t->data || t->dtype == FG_FLOAT32)
            continue;
        int64_t n = fg_tensor_numel(t);
        for (int64_t k = 0; k < n; k++)
            fg_store_f64(t->dtype, t->data, k, v->out[o][k]);
    }
}

static void copy_shape(fg_tensor *dst, const fg_tensor *src)
{
    dst->dtype = src->dtype;
    dst->rank = src->rank;
    memcpy(dst->dims, src->dims, sizeof dst->dims);
}

/* ---------------------------------------------------- BatchNormalization */

static fg_status *per_channel_check(const op_call *call, int first, int last, int64_t channels, const char *what)
{
    for (int i = first; i <= last; i++) {
        if (!op_has_input(call, i))
            return op_error(call, FG_ERR_INVALID_ARGUMENT, "input %d is required", i);
        if (fg_tensor_numel(&call->in[i]) != channels)
            return op_error(call, FG_ERR_SHAPE, "input %d has %lld elements, expected %lld (%s)", i,
                            (long long)fg_tensor_numel(&call->in[i]), (long long)channels, what);
    }
    return NULL;
}

static fg_status *batch_norm_infer(op_call *call)
{
    FG_TRY(check_float_inputs(call));
    const fg_tensor *x = &call->in[0];
    if (call->n_in < 5)
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "needs 5 inputs (X, scale, B, mean, var), got %d", call->n_in);
    if (x->rank < 2)
        return op_error(call, FG_ERR_SHAPE, "input X has rank %d, at least 2 (N, C, ...) expected", x->rank);
    FG_TRY(per_channel_check(call, 1, 4, x->dims[1], "one per channel"));
    copy_shape(&call->out[0], x);
    for (int o = 1; o < call->n_out; o++) /* optional training outputs: statistics per channel */
        copy_shape(&call->out[o], &call->in[o < 3 ? o + 2 : 3]);
    call->scratch_bytes = conversion_scratch(call);
    return NULL;
}

/* training_mode=1: normalise with the batch statistics; outputs 1 and 2
 * are the updated running mean and variance. */
static void batch_norm_training(op_call *call, const float_views *v)
{
    const fg_tensor *x = &call->in[0];
    int64_t n = x->dims[0], c = x->dims[1], inner = fg_shape_numel(x->rank - 2, x->dims + 2);
    float eps = ir_attr_float(call->node, "epsilon", 1e-5f), momentum = ir_attr_float(call->node, "momentum", 0.9f);
    const float *xs = v->in[0], *scale = v->in[1], *bias = v->in[2], *mean_in = v->in[3], *var_in = v->in[4];
    float *y = v->out[0], *mean_out = call->n_out > 1 ? v->out[1] : NULL, *var_out = call->n_out > 2 ? v->out[2] : NULL;
#pragma omp parallel for num_threads(call->threads > 0 ? call->threads : 1) if (n * c * inner > 100000)
    for (int64_t ch = 0; ch < c; ch++) {
        double sum = 0, sq = 0, count = (double)(n * inner);
        for (int64_t b = 0; b < n; b++)
            for (int64_t i = 0; i < inner; i++)
                sum += xs[(b * c + ch) * inner + i];
        double mean = count > 0 ? sum / count : 0;
        for (int64_t b = 0; b < n; b++)
            for (int64_t i = 0; i < inner; i++) {
                double d = xs[(b * c + ch) * inner + i] - mean;
                sq += d * d;
            }
        double var = count > 0 ? sq / count : 0;
        float a = (float)(scale[ch] / sqrt(var + eps)), off = (float)(bias[ch] - mean * a);
        for (int64_t b = 0; b < n; b++)
            for (int64_t i = 0; i < inner; i++)
                y[(b * c + ch) * inner + i] = xs[(b * c + ch) * inner + i] * a + off;
        if (mean_out)
            mean_out[ch] = (float)(mean_in[ch] * momentum + mean * (1 - momentum));
        if (var_out)
            var_out[ch] = (float)(var_in[ch] * momentum + var * (1 - momentum));
    }
}

static fg_status *batch_norm_run(op_call *call)
{
    float_views v;
    make_views(call, &v);
    if (ir_attr_int(call->node, "training_mode", 0) != 0) {
        batch_norm_training(call, &v);
        store_views(call, &v);
        return NULL;
    }
    const fg_tensor *x = &call->in[0];
    int64_t n = x->dims[0], c = x->dims[1], inner = fg_shape_numel(x->rank - 2, x->dims + 2);
    float eps = ir_attr_float(call->node, "epsilon", 1e-5f);
    const float *xs = v.in[0], *scale = v.in[1], *bias = v.in[2], *mean = v.in[3], *var = v.in[4];
    float *y = v.out[0];
    int64_t planes = n * c;
#pragma omp parallel for num_threads(call->threads > 0 ? call->threads : 1) if (planes * inner > 100000)
    for (int64_t plane = 0; plane < planes; plane++) {
        int64_t ch = plane % c;
        float a = scale[ch] / sqrtf(var[ch] + eps);
        float b = bias[ch] - mean[ch] * a;
        const float *xp = xs + plane * inner;
        float *yp = y + plane * inner;
        for (int64_t i = 0; i < inner; i++)
            yp[i] = xp[i] * a + b;
    }
    for (int o = 1; o < call->n_out && o < 4; o++)
        if (v.out[o])
            memcpy(v.out[o], v.in[o < 3 ? o + 2 : 3], (size_t)c * sizeof(float));
    store_views(call, &v);
    return NULL;
}

/* ------------------------------------------------- InstanceNormalization */

static fg_status *instance_norm_infer(op_call *call)
{
    FG_TRY(check_float_inputs(call));
    const fg_tensor *x = &call->in[0];
    if (call->n_in < 3)
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "needs 3 inputs (input, scale, B), got %d", call->n_in);
    if (x->rank < 3)
        return op_error(call, FG_ERR_SHAPE, "input has rank %d, at least 3 (N, C, D1, ...) expected", x->rank);
    FG_TRY(per_channel_check(call, 1, 2, x->dims[1], "one per channel"));
    copy_shape(&call->out[0], x);
    call->scratch_bytes = conversion_scratch(call);
    return NULL;
}

/* Mean and 1/sqrt(var + eps) of n floats (two-pass, double accumulation). */
static void moments(const float *x, int64_t n, float eps, float *mean_out, float *inv_std_out)
{
    double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += x[i];
    double mean = n ? sum / n : 0;
    double sq = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = x[i] - mean;
        sq += d * d;
    }
    double var = n ? sq / n : 0;
    *mean_out = (float)mean;
    *inv_std_out = (float)(1.0 / sqrt(var + eps));
}

static fg_status *instance_norm_run(op_call *call)
{
    float_views v;
    make_views(call, &v);
    const fg_tensor *x = &call->in[0];
    int64_t c = x->dims[1], planes = x->dims[0] * c, inner = fg_shape_numel(x->rank - 2, x->dims + 2);
    float eps = ir_attr_float(call->node, "epsilon", 1e-5f);
    const float *xs = v.in[0], *scale = v.in[1], *bias = v.in[2];
    float *y = v.out[0];
#pragma omp parallel for num_threads(call->threads > 0 ? call->threads : 1) if (planes * inner > 50000)
    for (int64_t plane = 0; plane < planes; plane++) {
        int64_t ch = plane % c;
        float mean, inv_std;
        moments(xs + plane * inner, inner, eps, &mean, &inv_std);
        float a = scale[ch] * inv_std, b = bias[ch] - mean * a;
        const float *xp = xs + plane * inner;
        float *yp = y + plane * inner;
        for (int64_t i = 0; i < inner; i++)
            yp[i] = xp[i] * a + b;
    }
    store_views(call, &v);
    return NULL;
}

/* ---------------------------------------------------- LayerNormalization */

static fg_status *layer_norm_infer(op_call *call)
{
    FG_TRY(check_float_inputs(call));
    const fg_tensor *x = &call->in[0];
    if (call->n_in < 2 || !op_has_input(call, 1))
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "needs inputs X and Scale");
    int axis;
    FG_TRY(op_axis(call, ir_attr_int(call->node, "axis", -1), x->rank, &axis));
    int64_t inner = fg_shape_numel(x->rank - axis, x->dims + axis);
    for (int i = 1; i < 3; i++) {
        if (!op_has_input(call, i))
            continue;
        int64_t n = fg_tensor_numel(&call->in[i]);
        if (n != inner && n != 1)
            return op_error(call, FG_ERR_SHAPE,
                            "input %d has %lld elements; expected %lld (the normalized axes from axis %d) or 1", i,
                            (long long)n, (long long)inner, axis);
    }
    copy_shape(&call->out[0], x);
    for (int o = 1; o < call->n_out && o < 3; o++) {
        fg_tensor *t = &call->out[o];
        copy_shape(t, x);
        t->dtype = FG_FLOAT32; /* stash_type float32 */
        for (int d = axis; d < x->rank; d++)
            t->dims[d] = 1;
    }
    call->scratch_bytes = conversion_scratch(call);
    return NULL;
}

static fg_status *layer_norm_run(op_call *call)
{
    float_views v;
    make_views(call, &v);
    const fg_tensor *x = &call->in[0];
    int axis;
    FG_TRY(op_axis(call, ir_attr_int(call->node, "axis", -1), x->rank, &axis));
    int64_t outer = fg_shape_numel(axis, x->dims), inner = fg_shape_numel(x->rank - axis, x->dims + axis);
    float eps = ir_attr_float(call->node, "epsilon", 1e-5f);
    const float *xs = v.in[0], *scale = v.in[1], *bias = op_has_input(call, 2) ? v.in[2] : NULL;
    int scale_step = fg_tensor_numel(&call->in[1]) == inner ? 1 : 0;
    int bias_step = bias && fg_tensor_numel(&call->in[2]) == inner ? 1 : 0;
    float *y = v.out[0], *mean_out = call->n_out > 1 ? v.out[1] : NULL, *inv_out = call->n_out > 2 ? v.out[2] : NULL;
#pragma omp parallel for num_threads(call->threads > 0 ? call->threads : 1) if (outer * inner > 50000)
    for (int64_t row = 0; row < outer; row++) {
        const float *xp = xs + row * inner;
        float *yp = y + row * inner;
        float mean, inv_std;
        moments(xp, inner, eps, &mean, &inv_std);
        if (mean_out)
            mean_out[row] = mean;
        if (inv_out)
            inv_out[row] = inv_std;
        for (int64_t i = 0; i < inner; i++) {
            float z = (xp[i] - mean) * inv_std * scale[i * scale_step];
            yp[i] = bias ? z + bias[i * bias_step] : z;
        }
    }
    store_views(call, &v);
    return NULL;
}

/* ---------------------------------------------------- GroupNormalization */

static fg_status *group_norm_infer(op_call *call)
{
    FG_TRY(check_float_inputs(call));
    const fg_tensor *x = &call->in[0];
    if (call->n_in < 3)
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "needs 3 inputs (X, scale, bias), got %d", call->n_in);
    if (x->rank < 3)
        return op_error(call, FG_ERR_SHAPE, "input has rank %d, at least 3 expected", x->rank);
    int64_t groups = ir_attr_int(call->node, "num_groups", 0);
    if (groups < 1 || x->dims[1] % groups)
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "num_groups %lld must be positive and divide the %lld channels",
                        (long long)groups, (long long)x->dims[1]);
    for (int i = 1; i < 3; i++) {
        int64_t n = fg_tensor_numel(&call->in[i]);
        if (n != x->dims[1] && n != groups)
            return op_error(call, FG_ERR_SHAPE, "input %d has %lld elements, expected %lld (channels) or %lld (groups)",
                            i, (long long)n, (long long)x->dims[1], (long long)groups);
    }
    copy_shape(&call->out[0], x);
    call->scratch_bytes = conversion_scratch(call);
    return NULL;
}

static fg_status *group_norm_run(op_call *call)
{
    float_views v;
    make_views(call, &v);
    const fg_tensor *x = &call->in[0];
    int64_t c = x->dims[1], groups = ir_attr_int(call->node, "num_groups", 1);
    int64_t inner = fg_shape_numel(x->rank - 2, x->dims + 2), per_group = c / groups;
    float eps = ir_attr_float(call->node, "epsilon", 1e-5f);
    int scale_per_channel = fg_tensor_numel(&call->in[1]) == c, bias_per_channel = fg_tensor_numel(&call->in[2]) == c;
    const float *xs = v.in[0], *scale = v.in[1], *bias = v.in[2];
    float *y = v.out[0];
    int64_t blocks = x->dims[0] * groups;
#pragma omp parallel for num_threads(call->threads > 0 ? call->threads : 1) if (blocks * per_group * inner > 50000)
    for (int64_t blk = 0; blk < blocks; blk++) {
        int64_t grp = blk % groups, n = per_group * inner;
        const float *xp = xs + blk * n;
        float *yp = y + blk * n;
        float mean, inv_std;
        moments(xp, n, eps, &mean, &inv_std);
        for (int64_t k = 0; k < per_group; k++) {
            int64_t ch = grp * per_group + k;
            float s = scale[scale_per_channel ? ch : grp], b = bias[bias_per_channel ? ch : grp];
            float a = s * inv_std, off = b - mean * a;
            for (int64_t i = 0; i < inner; i++)
                yp[k * inner + i] = xp[k * inner + i] * a + off;
        }
    }
    store_views(call, &v);
    return NULL;
}

/* ------------------------------------------------------------------- LRN */

static fg_status *lrn_infer(op_call *call)
{
    FG_TRY(check_float_inputs(call));
    const fg_tensor *x = &call->in[0];
    if (x->rank < 3)
        return op_error(call, FG_ERR_SHAPE, "input has rank %d, at least 3 expected", x->rank);
    if (ir_attr_int(call->node, "size", 0) < 1)
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "attribute size must be positive");
    copy_shape(&call->out[0], x);
    call->scratch_bytes = conversion_scratch(call);
    return NULL;
}

static fg_status *lrn_run(op_call *call)
{
    float_views v;
    make_views(call, &v);
    const fg_tensor *x = &call->in[0];
    int64_t c = x->dims[1], planes = x->dims[0] * c, inner = fg_shape_numel(x->rank - 2, x->dims + 2);
    int64_t size = ir_attr_int(call->node, "size", 1);
    float alpha = ir_attr_float(call->node, "alpha", 1e-4f), beta = ir_attr_float(call->node, "beta", 0.75f);
    float bias = ir_attr_float(call->node, "bias", 1.0f);
    int64_t before = (size - 1) / 2, after = size - 1 - before;
    const float *xs = v.in[0];
    float *y = v.out[0];
#pragma omp parallel for num_threads(call->threads > 0 ? call->threads : 1) if (planes * inner * size > 100000)
    for (int64_t plane = 0; plane < planes; plane++) {
        int64_t n = plane / c, ch = plane % c;
        int64_t c0 = ch - before < 0 ? 0 : ch - before, c1 = ch + after >= c ? c - 1 : ch + after;
        for (int64_t i = 0; i < inner; i++) {
            double sq = 0;
            for (int64_t k = c0; k <= c1; k++) {
                float e = xs[(n * c + k) * inner + i];
                sq += (double)e * e;
            }
            y[plane * inner + i] = (float)(xs[plane * inner + i] / pow(bias + alpha / size * sq, beta));
        }
    }
    store_views(call, &v);
    return NULL;
}

const op_def op_family_norm[] = {
    {"BatchNormalization", NULL, batch_norm_infer, NULL, batch_norm_run, NULL, 0},
    {"InstanceNormalization", NULL, instance_norm_infer, NULL, instance_norm_run, NULL, 0},
    {"LayerNormalization", NULL, layer_norm_infer, NULL, layer_norm_run, NULL, 0},
    {"GroupNormalization", NULL, group_norm_infer, NULL, group_norm_run, NULL, 0},
    {"LRN", NULL, lrn_infer, NULL, lrn_run, NULL, 0},
    {0},
};
