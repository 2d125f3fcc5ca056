/* Reductions (ReduceMean/Sum/Max/Min/Prod/L1/L2/SumSquare/LogSumExp),
 * Softmax/LogSoftmax/Hardmax, ArgMax/ArgMin and TopK.
 *
 * Floating types accumulate in double, integer types in int64. Every kernel
 * walks the input in place (no copies) and runs in parallel over output
 * elements. */
#include "ops/op.h"
#include "ops/fast_math.h"
#include "ops/reduce_axes.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static int red_threads(const op_call *call)
{
    return call->threads > 0 ? call->threads : omp_get_max_threads();
}

static int red_is_float(fg_dtype t)
{
    return t == FG_FLOAT32 || t == FG_FLOAT64 || t == FG_FLOAT16;
}

static int red_is_numeric(fg_dtype t)
{
    switch (t) {
    case FG_FLOAT32: case FG_FLOAT64: case FG_FLOAT16: case FG_INT8: case FG_INT16: case FG_INT32:
    case FG_INT64: case FG_UINT8: case FG_UINT16: case FG_UINT32: case FG_UINT64:
        return 1;
    default:
        return 0;
    }
}

static void red_contiguous_strides(const fg_tensor *t, int64_t *strides)
{
    int64_t s = 1;
    for (int d = t->rank - 1; d >= 0; d--) {
        strides[d] = s;
        s *= t->dims[d];
    }
}

/* ------------------------------------------------------------ Reduce* */

static fg_status *reduce_infer(op_call *call)
{
    if (call->n_in < 1)
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "expects an input");
    const fg_tensor *x = &call->in[0];
    if (!red_is_numeric(x->dtype))
        return op_error(call, FG_ERR_UNSUPPORTED, "element type %s is not supported", fg_dtype_name(x->dtype));
    int reduced[FG_MAX_RANK], noop;
    FG_TRY(red_axes(call, reduced, &noop));
    int keepdims = ir_attr_int(call->node, "keepdims", 1) != 0;
    fg_tensor *y = &call->out[0];
    y->dtype = x->dtype;
    int r = 0;
    for (int d = 0; d < x->rank; d++) {
        if (noop || !reduced[d])
            y->dims[r++] = x->dims[d];
        else if (keepdims)
            y->dims[r++] = 1;
    }
    y->rank = r;
    return NULL;
}

typedef struct red_walk {
    int n_kept, n_red;
    int64_t kept_dims[FG_MAX_RANK], kept_strides[FG_MAX_RANK];
    int64_t red_dims[FG_MAX_RANK], red_strides[FG_MAX_RANK];
    int64_t red_count;
} red_walk;

static void red_walk_init(const fg_tensor *x, const int *reduced, red_walk *w)
{
    int64_t strides[FG_MAX_RANK];
    red_contiguous_strides(x, strides);
    memset(w, 0, sizeof *w);
    w->red_count = 1;
    for (int d = 0; d < x->rank; d++) {
        if (reduced[d]) {
            if (x->dims[d] == 1)
                continue; /* walking it adds nothing */
            w->red_dims[w->n_red] = x->dims[d];
            w->red_strides[w->n_red++] = strides[d];
            w->red_count *= x->dims[d];
        } else {
            w->kept_dims[w->n_kept] = x->dims[d];
            w->kept_strides[w->n_kept++] = strides[d];
        }
    }
    for (int d = 0; d < x->rank; d++)
        if (reduced[d] && x->dims[d] == 0)
            w->red_count = 0;
}

static int64_t red_base_offset(const red_walk *w, int64_t o)
{
    int64_t off = 0;
    for (int d = w->n_kept - 1; d >= 0; d--) {
        off += (o % w->kept_dims[d]) * w->kept_strides[d];
        o /= w->kept_dims[d];
    }
    return off;
}

/* Calls BODY(offset) for every element reduced into the output at base. */
#define RED_FOR_EACH(w, base, BODY)                                                            \
    do {                                                                                       \
        int64_t idx_[FG_MAX_RANK] = {0};                                                       \
        int last_ = (w)->n_red - 1;                                                            \
        int64_t inner_n_ = last_ >= 0 ? (w)->red_dims[last_] : 1;                             \
        int64_t inner_s_ = last_ >= 0 ? (w)->red_strides[last_] : 0;                           \
        int64_t off_ = (base);                                                                 \
        if ((w)->red_count == 0)                                                               \
            break;                                                                             \
        for (;;) {                                                                             \
            for (int64_t i_ = 0; i_ < inner_n_; i_++) {                                        \
                int64_t offset = off_ + i_ * inner_s_;                                         \
                BODY;                                                                          \
            }                                                                                  \
            int d_ = last_ - 1;                                                                \
            for (; d_ >= 0; d_--) {                                                            \
                off_ += (w)->red_strides[d_];                                                  \
                if (++idx_[d_] < (w)->red_dims[d_])                                            \
                    break;                                                                     \
                off_ -= idx_[d_] * (w)->red_strides[d_];                                       \
                idx_[d_] = 0;                                                                  \
            }                                                                                  \
            if (d_ < 0)                                                                        \
                break;                                                                         \
        }                                                                                      \
    } while (0)

static double red_float_one(red_kind kind, const red_walk *w, fg_dtype dt, const void *data, int64_t base)
{
    const float *f = dt == FG_FLOAT32 ? data : NULL;
#define LOAD(off) (f ? (double)f[off] : fg_load_f64(dt, data, off))
    double acc;
    switch (kind) {
    case RED_MAX:
        acc = -INFINITY;
        RED_FOR_EACH(w, base, { double v = LOAD(offset); if (v > acc || isnan(v)) acc = v; });
        return acc;
    case RED_MIN:
        acc = INFINITY;
        RED_FOR_EACH(w, base, { double v = LOAD(offset); if (v < acc || isnan(v)) acc = v; });
        return acc;
    case RED_PROD:
        acc = 1;
        RED_FOR_EACH(w, base, { acc *= LOAD(offset); });
        return acc;
    case RED_L1:
        acc = 0;
        RED_FOR_EACH(w, base, { acc += fabs(LOAD(offset)); });
        return acc;
    case RED_L2:
    case RED_SUM_SQUARE:
        acc = 0;
        RED_FOR_EACH(w, base, { double v = LOAD(offset); acc += v * v; });
        return kind == RED_L2 ? sqrt(acc) : acc;
    case RED_LOG_SUM_EXP: {
        double mx = -INFINITY;
        RED_FOR_EACH(w, base, { double v = LOAD(offset); if (v > mx) mx = v; });
        if (isinf(mx))
            return mx;
        acc = 0;
        RED_FOR_EACH(w, base, { acc += exp(LOAD(offset) - mx); });
        return mx + log(acc);
    }
    case RED_LOG_SUM:
        acc = 0;
        RED_FOR_EACH(w, base, { acc += LOAD(offset); });
        return log(acc);
    case RED_SUM:
    case RED_MEAN:
        acc = 0;
        RED_FOR_EACH(w, base, { acc += LOAD(offset); });
        return kind == RED_MEAN ? acc / (double)w->red_count : acc;
    }
#undef LOAD
    return 0;
}

static void red_int_one(red_kind kind, const red_walk *w, fg_dtype dt, const void *data, int64_t base, void *out,
                        int64_t o)
{
    int64_t acc;
    switch (kind) {
    case RED_MAX:
        acc = INT64_MIN;
        RED_FOR_EACH(w, base, { int64_t v = fg_load_i64(dt, data, offset); if (v > acc) acc = v; });
        break;
    case RED_MIN:
        acc = INT64_MAX;
        RED_FOR_EACH(w, base, { int64_t v = fg_load_i64(dt, data, offset); if (v < acc) acc = v; });
        break;
    case RED_PROD:
        acc = 1;
        RED_FOR_EACH(w, base, { acc *= fg_load_i64(dt, data, offset); });
        break;
    case RED_L1:
        acc = 0;
        RED_FOR_EACH(w, base, { int64_t v = fg_load_i64(dt, data, offset); acc += v < 0 ? -v : v; });
        break;
    case RED_SUM_SQUARE:
        acc = 0;
        RED_FOR_EACH(w, base, { int64_t v = fg_load_i64(dt, data, offset); acc += v * v; });
        break;
    case RED_SUM:
    case RED_MEAN:
        acc = 0;
        RED_FOR_EACH(w, base, { acc += fg_load_i64(dt, data, offset); });
        if (kind == RED_MEAN && w->red_count > 0)
            acc /= w->red_count;
        break;
    default: /* L2, LogSumExp, LogSum: computed in double */
        fg_store_f64(dt, out, o, red_float_one(kind, w, dt, data, base));
        return;
    }
    if (dt == FG_INT64)
        ((int64_t *)out)[o] = acc;
    else if (dt == FG_UINT64)
        ((uint64_t *)out)[o] = (uint64_t)acc;
    else
        fg_store_f64(dt, out, o, (double)acc);
}

static fg_status *reduce_run(op_call *call)
{
    const fg_tensor *x = &call->in[0];
    fg_tensor *y = &call->out[0];
    int reduced[FG_MAX_RANK], noop;
    FG_TRY(red_axes(call, reduced, &noop));
    if (noop) {
        if (y->data != x->data)
            memcpy(y->data, x->data, fg_tensor_nbytes(x));
        return NULL;
    }
    red_kind kind = red_kind_of(call->node->op_type);
    red_walk w;
    red_walk_init(x, reduced, &w);
    int64_t n_out = fg_tensor_numel(y);
    fg_dtype dt = x->dtype;
    int is_float = red_is_float(dt);
#pragma omp parallel for num_threads(red_threads(call)) if (n_out * w.red_count > 65536 && n_out > 1) \
    schedule(static)
    for (int64_t o = 0; o < n_out; o++) {
        int64_t base = red_base_offset(&w, o);
        if (is_float) {
            double v = red_float_one(kind, &w, dt, x->data, base);
            if (dt == FG_FLOAT32)
                ((float *)y->data)[o] = (float)v;
            else
                fg_store_f64(dt, y->data, o, v);
        } else {
            red_int_one(kind, &w, dt, x->data, base, y->data, o);
        }
    }
    return NULL;
}

/* ------------------------------------------------------------ Softmax family */

typedef enum smx_kind { SMX_SOFTMAX, SMX_LOG_SOFTMAX, SMX_HARDMAX } smx_kind;

/* outer x n x inner view of the input for the normalised axis. */
static fg_status *smx_view(op_call *call, int64_t *outer, int64_t *n, int64_t *inner)
{
    const fg_tensor *x = &call->in[0];
    int legacy = call->opset < 13;
    int64_t axis_attr = ir_attr_int(call->node, "axis", legacy ? 1 : -1);
    int axis = 0;
    if (x->rank > 0)
        FG_TRY(op_axis(call, axis_attr, x->rank, &axis));
    *outer = 1, *n = 1, *inner = 1;
    for (int d = 0; d < x->rank; d++) {
        if (d < axis)
            *outer *= x->dims[d];
        else if (d == axis || legacy)
            *n *= x->dims[d];
        else
            *inner *= x->dims[d];
    }
    return NULL;
}

static fg_status *smx_infer(op_call *call)
{
    if (call->n_in < 1)
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "expects an input");
    const fg_tensor *x = &call->in[0];
    if (!red_is_float(x->dtype))
        return op_error(call, FG_ERR_DTYPE, "element type %s is not supported (needs a float type)",
                        fg_dtype_name(x->dtype));
    int64_t o = 1, n = 1, i = 1;
    FG_TRY(smx_view(call, &o, &n, &i));
    fg_tensor *y = &call->out[0];
    y->dtype = x->dtype;
    y->rank = x->rank;
    memcpy(y->dims, x->dims, sizeof(int64_t) * (size_t)x->rank);
    return NULL;
}

static smx_kind smx_kind_of(const char *op_type)
{
    if (strcmp(op_type, "LogSoftmax") == 0)
        return SMX_LOG_SOFTMAX;
    if (strcmp(op_type, "Hardmax") == 0)
        return SMX_HARDMAX;
    return SMX_SOFTMAX;
}

/* float32, contiguous rows (inner == 1). Compiled like fast_math.h's
 * functions (no trapping math), so that fast_expf inlines and vectorizes. */
#pragma GCC push_options
#pragma GCC optimize("no-trapping-math")
static void smx_row_f32(smx_kind kind, const float *x, float *y, int64_t n)
{
    float mx = -INFINITY;
    int64_t arg = 0;
    if (kind == SMX_HARDMAX) {
        for (int64_t j = 0; j < n; j++)
            if (x[j] > mx)
                mx = x[j], arg = j;
    } else {
#pragma omp simd reduction(max : mx)
        for (int64_t j = 0; j < n; j++)
            mx = x[j] > mx ? x[j] : mx;
    }
    if (kind == SMX_HARDMAX) {
        for (int64_t j = 0; j < n; j++)
            y[j] = 0.0f;
        if (n)
            y[arg] = 1.0f;
        return;
    }
    float sum = 0.0f;
    if (kind == SMX_SOFTMAX) { /* vectorised: the polynomial exp and a SIMD sum */
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < n; j++) {
            float e = fast_expf(x[j] - mx);
            y[j] = e;
            sum += e;
        }
        float inv = 1.0f / sum;
#pragma omp simd
        for (int64_t j = 0; j < n; j++)
            y[j] *= inv;
    } else {
        for (int64_t j = 0; j < n; j++)
            sum += expf(x[j] - mx);
        float lse = logf(sum);
        for (int64_t j = 0; j < n; j++)
            y[j] = x[j] - mx - lse;
    }
}

#pragma GCC pop_options

static fg_status *smx_run(op_call *call)
{
    const fg_tensor *x = &call->in[0];
    fg_tensor *y = &call->out[0];
    int64_t outer = 1, n = 1, inner = 1;
    FG_TRY(smx_view(call, &outer, &n, &inner));
    smx_kind kind = smx_kind_of(call->node->op_type);
    fg_dtype dt = x->dtype;
    int64_t lanes = outer * inner;
    if (dt == FG_FLOAT32 && inner == 1) {
        const float *xf = x->data;
        float *yf = y->data;
#pragma omp parallel for num_threads(red_threads(call)) if (lanes * n > 16384 && lanes > 1) schedule(static)
        for (int64_t r = 0; r < outer; r++)
            smx_row_f32(kind, xf + r * n, yf + r * n, n);
        return NULL;
    }
    if (dt == FG_FLOAT32) { /* strided lanes (axis not last) */
        const float *xf = x->data;
        float *yf = y->data;
#pragma omp parallel for num_threads(red_threads(call)) if (lanes * n > 16384 && lanes > 1) schedule(static)
        for (int64_t lane = 0; lane < lanes; lane++) {
            int64_t base = (lane / inner) * n * inner + lane % inner;
            float mx = -INFINITY;
            int64_t arg = 0;
            for (int64_t j = 0; j < n; j++)
                if (xf[base + j * inner] > mx)
                    mx = xf[base + j * inner], arg = j;
            if (kind == SMX_HARDMAX) {
                for (int64_t j = 0; j < n; j++)
                    yf[base + j * inner] = j == arg ? 1.0f : 0.0f;
                continue;
            }
            float sum = 0.0f;
            for (int64_t j = 0; j < n; j++)
                sum += expf(xf[base + j * inner] - mx);
            float inv = 1.0f / sum, lse = logf(sum);
            for (int64_t j = 0; j < n; j++) {
                float v = xf[base + j * inner] - mx;
                yf[base + j * inner] = kind == SMX_SOFTMAX ? expf(v) * inv : v - lse;
            }
        }
        return NULL;
    }
#pragma omp parallel for num_threads(red_threads(call)) if (lanes * n > 16384 && lanes > 1) schedule(static)
    for (int64_t lane = 0; lane < lanes; lane++) {
        int64_t base = (lane / inner) * n * inner + lane % inner;
        double mx = -INFINITY;
        int64_t arg = 0;
        for (int64_t j = 0; j < n; j++) {
            double v = fg_load_f64(dt, x->data, base + j * inner);
            if (v > mx)
                mx = v, arg = j;
        }
        if (kind == SMX_HARDMAX) {
            for (int64_t j = 0; j < n; j++)
                fg_store_f64(dt, y->data, base + j * inner, j == arg ? 1.0 : 0.0);
            continue;
        }
        double sum = 0;
        for (int64_t j = 0; j < n; j++)
            sum += exp(fg_load_f64(dt, x->data, base + j * inner) - mx);
        double lse = log(sum);
        for (int64_t j = 0; j < n; j++) {
            double v = fg_load_f64(dt, x->data, base + j * inner) - mx;
            fg_store_f64(dt, y->data, base + j * inner, kind == SMX_SOFTMAX ? exp(v) / sum : v - lse);
        }
    }
    return NULL;
}

/* ------------------------------------------------------------ ArgMax / ArgMin */

static fg_status *arg_view(op_call *call, int *axis, int64_t *outer, int64_t *n, int64_t *inner)
{
    const fg_tensor *x = &call->in[0];
    if (x->rank == 0)
        return op_error(call, FG_ERR_SHAPE, "input must have rank >= 1");
    FG_TRY(op_axis(call, ir_attr_int(call->node, "axis", 0), x->rank, axis));
    *outer = 1, *inner = 1;
    for (int d = 0; d < x->rank; d++) {
        if (d < *axis)
            *outer *= x->dims[d];
        else if (d > *axis)
            *inner *= x->dims[d];
    }
    *n = x->dims[*axis];
    return NULL;
}

static fg_status *arg_infer(op_call *call)
{
    if (call->n_in < 1)
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "expects an input");
    const fg_tensor *x = &call->in[0];
    if (!red_is_numeric(x->dtype))
        return op_error(call, FG_ERR_UNSUPPORTED, "element type %s is not supported", fg_dtype_name(x->dtype));
    int axis = 0;
    int64_t o = 1, n = 1, i = 1;
    FG_TRY(arg_view(call, &axis, &o, &n, &i));
    if (n == 0)
        return op_error(call, FG_ERR_SHAPE, "cannot take the index of an extreme over an empty axis");
    int keepdims = ir_attr_int(call->node, "keepdims", 1) != 0;
    fg_tensor *y = &call->out[0];
    y->dtype = FG_INT64;
    int r = 0;
    for (int d = 0; d < x->rank; d++) {
        if (d != axis)
            y->dims[r++] = x->dims[d];
        else if (keepdims)
            y->dims[r++] = 1;
    }
    y->rank = r;
    return NULL;
}

static fg_status *arg_run(op_call *call)
{
    const fg_tensor *x = &call->in[0];
    int64_t *y = call->out[0].data;
    int axis = 0;
    int64_t outer = 1, n = 1, inner = 1;
    FG_TRY(arg_view(call, &axis, &outer, &n, &inner));
    int is_max = strcmp(call->node->op_type, "ArgMax") == 0;
    int last = ir_attr_int(call->node, "select_last_index", 0) != 0;
    fg_dtype dt = x->dtype;
    int is_float = red_is_float(dt);
    int64_t lanes = outer * inner;
#pragma omp parallel for num_threads(red_threads(call)) if (lanes * n > 65536 && lanes > 1) schedule(static)
    for (int64_t lane = 0; lane < lanes; lane++) {
        int64_t base = (lane / inner) * n * inner + lane % inner;
        int64_t best = 0;
        if (is_float) {
            double bv = fg_load_f64(dt, x->data, base);
            for (int64_t j = 1; j < n; j++) {
                double v = fg_load_f64(dt, x->data, base + j * inner);
                int better = is_max ? (last ? v >= bv : v > bv) : (last ? v <= bv : v < bv);
                if (better)
                    bv = v, best = j;
            }
        } else {
            int64_t bv = fg_load_i64(dt, x->data, base);
            for (int64_t j = 1; j < n; j++) {
                int64_t v = fg_load_i64(dt, x->data, base + j * inner);
                int better = is_max ? (last ? v >= bv : v > bv) : (last ? v <= bv : v < bv);
                if (better)
                    bv = v, best = j;
            }
        }
        y[lane] = best;
    }
    return NULL;
}

/* ------------------------------------------------------------ TopK */

typedef struct topk_item {
    double value;
    int64_t index;
} topk_item;

static int topk_cmp_largest(const void *pa, const void *pb)
{
    const topk_item *a = pa, *b = pb;
    if (a->value != b->value)
        return a->value > b->value ? -1 : 1;
    return a->index < b->index ? -1 : (a->index > b->index);
}

static int topk_cmp_smallest(const void *pa, const void *pb)
{
    const topk_item *a = pa, *b = pb;
    if (a->value != b->value)
        return a->value < b->value ? -1 : 1;
    return a->index < b->index ? -1 : (a->index > b->index);
}

/* K is -1 when it comes from an input whose value is not known yet (infer
 * at plan time): the outputs then get the axis length as their capacity. */
static fg_status *topk_params(op_call *call, int *axis, int64_t *k)
{
    const fg_tensor *x = &call->in[0];
    if (x->rank == 0)
        return op_error(call, FG_ERR_SHAPE, "input must have rank >= 1");
    FG_TRY(op_axis(call, ir_attr_int(call->node, "axis", -1), x->rank, axis));
    if (call->opset >= 10) {
        if (!op_has_input(call, 1))
            return op_error(call, FG_ERR_INVALID_ARGUMENT, "the K input is missing");
        if (fg_tensor_numel(&call->in[1]) != 1)
            return op_error(call, FG_ERR_SHAPE, "K must hold exactly one value");
        if (!call->in[1].data) {
            *k = -1;
            return NULL;
        }
        *k = fg_load_i64(call->in[1].dtype, call->in[1].data, 0);
    } else {
        *k = ir_attr_int(call->node, "k", -1);
    }
    if (*k < 0 || *k > x->dims[*axis])
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "K=%lld is out of range for an axis of size %lld",
                        (long long)*k, (long long)x->dims[*axis]);
    return NULL;
}

static fg_status *topk_infer(op_call *call)
{
    if (call->n_in < 1)
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "expects an input");
    const fg_tensor *x = &call->in[0];
    if (!red_is_numeric(x->dtype))
        return op_error(call, FG_ERR_UNSUPPORTED, "element type %s is not supported", fg_dtype_name(x->dtype));
    int axis = 0;
    int64_t k = 0;
    FG_TRY(topk_params(call, &axis, &k));
    if (k < 0) { /* K known only at run time: plan at capacity (the whole axis) */
        k = x->dims[axis];
        call->out_bounded = 1 + axis;
    }
    for (int o = 0; o < call->n_out && o < 2; o++) {
        fg_tensor *y = &call->out[o];
        y->dtype = o == 0 ? x->dtype : FG_INT64;
        y->rank = x->rank;
        memcpy(y->dims, x->dims, sizeof(int64_t) * (size_t)x->rank);
        y->dims[axis] = k;
    }
    call->scratch_bytes = (size_t)red_threads(call) * (size_t)x->dims[axis] * sizeof(topk_item);
    return NULL;
}

/* The next item after `prev` in the output order (prev NULL: the first). */
static int topk_after(int largest, const topk_item *prev, const topk_item *cand)
{
    if (!prev)
        return 1;
    int c = largest ? topk_cmp_largest(prev, cand) : topk_cmp_smallest(prev, cand);
    return c < 0;
}

static fg_status *topk_run(op_call *call)
{
    const fg_tensor *x = &call->in[0];
    int axis = 0;
    int64_t k = 0;
    FG_TRY(topk_params(call, &axis, &k));
    if (k < 0)
        return op_error(call, FG_ERR_INTERNAL, "the value of K is missing at run time");
    int largest = ir_attr_int(call->node, "largest", 1) != 0;
    int64_t outer = 1, inner = 1, n = x->dims[axis];
    /* bounded (K from a run-time input): the outputs are laid out at
     * capacity (the axis length), zeros past K; their true dims get K */
    int64_t stride_k = call->out_bounded ? n : k;
    for (int d = 0; d < x->rank; d++) {
        if (d < axis)
            outer *= x->dims[d];
        else if (d > axis)
            inner *= x->dims[d];
    }
    fg_dtype dt = x->dtype;
    size_t es = fg_dtype_size(dt);
    char *values = call->n_out > 0 ? call->out[0].data : NULL;
    int64_t *indices = call->n_out > 1 ? call->out[1].data : NULL;
    int threads = red_threads(call);
    size_t need = (size_t)threads * (size_t)n * sizeof(topk_item);
    int use_sort = call->scratch && call->scratch_bytes >= need && k > 16;
    int64_t lanes = outer * inner;
    if (call->out_bounded) {
        for (int o = 0; o < call->n_out && o < 2; o++)
            call->out[o].dims[axis] = k;
        /* entries k..n-1 of every lane of one outer slice are contiguous */
        size_t tail = (size_t)((n - k) * inner);
        for (int64_t o = 0; o < outer && tail; o++) {
            int64_t first = (o * n + k) * inner;
            if (values)
                memset(values + first * (int64_t)es, 0, tail * es);
            if (indices)
                memset(indices + first, 0, tail * sizeof *indices);
        }
    }
    if (k == 0 || lanes == 0)
        return NULL;
#pragma omp parallel num_threads(threads) if (lanes * n > 16384 && lanes > 1)
    {
        topk_item *items = use_sort ? (topk_item *)call->scratch + (size_t)omp_get_thread_num() * (size_t)n : NULL;
#pragma omp for schedule(static)
        for (int64_t lane = 0; lane < lanes; lane++) {
            int64_t o = lane / inner, i = lane % inner;
            int64_t base = o * n * inner + i;
            int64_t out_base = o * stride_k * inner + i;
            if (use_sort) {
                for (int64_t j = 0; j < n; j++) {
                    items[j].value = fg_load_f64(dt, x->data, base + j * inner);
                    items[j].index = j;
                }
                qsort(items, (size_t)n, sizeof *items, largest ? topk_cmp_largest : topk_cmp_smallest);
                for (int64_t j = 0; j < k; j++) {
                    int64_t dst = out_base + j * inner;
                    if (values)
                        memcpy(values + dst * es, (const char *)x->data + (base + items[j].index * inner) * es, es);
                    if (indices)
                        indices[dst] = items[j].index;
                }
            } else {
                /* selection without memory: each pick is the best item
                 * ordered after the previous pick */
                topk_item prev = {0, -1};
                for (int64_t j = 0; j < k; j++) {
                    topk_item best = {0, -1};
                    for (int64_t m = 0; m < n; m++) {
                        topk_item c = {fg_load_f64(dt, x->data, base + m * inner), m};
                        if (!topk_after(largest, prev.index >= 0 ? &prev : NULL, &c))
                            continue;
                        if (best.index < 0 || topk_after(largest, &c, &best))
                            best = c;
                    }
                    int64_t dst = out_base + j * inner;
                    if (values)
                        memcpy(values + dst * es, (const char *)x->data + (base + best.index * inner) * es, es);
                    if (indices)
                        indices[dst] = best.index;
                    prev = best;
                }
            }
        }
    }
    return NULL;
}

/* ------------------------------------------------------------ table */

const op_def op_family_reduce[] = {
    {"ReduceSum", NULL, reduce_infer, NULL, reduce_run, NULL, 0},
    {"ReduceMean", NULL, reduce_infer, NULL, reduce_run, NULL, 0},
    {"ReduceMax", NULL, reduce_infer, NULL, reduce_run, NULL, 0},
    {"ReduceMin", NULL, reduce_infer, NULL, reduce_run, NULL, 0},
    {"ReduceProd", NULL, reduce_infer, NULL, reduce_run, NULL, 0},
    {"ReduceL1", NULL, reduce_infer, NULL, reduce_run, NULL, 0},
    {"ReduceL2", NULL, reduce_infer, NULL, reduce_run, NULL, 0},
    {"ReduceSumSquare", NULL, reduce_infer, NULL, reduce_run, NULL, 0},
    {"ReduceLogSumExp", NULL, reduce_infer, NULL, reduce_run, NULL, 0},
    {"ReduceLogSum", NULL, reduce_infer, NULL, reduce_run, NULL, 0},
    {"Softmax", NULL, smx_infer, NULL, smx_run, NULL, 0},
    {"LogSoftmax", NULL, smx_infer, NULL, smx_run, NULL, 0},
    {"Hardmax", NULL, smx_infer, NULL, smx_run, NULL, 0},
    {"ArgMax", NULL, arg_infer, NULL, arg_run, NULL, 0},
    {"ArgMin", NULL, arg_infer, NULL, arg_run, NULL, 0},
    {"TopK", NULL, topk_infer, NULL, topk_run, NULL, 0},
    {0},
};
