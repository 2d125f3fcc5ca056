/* Data-dependent ops: NonZero and NonMaxSuppression.
 *
 * Their output shapes depend on input values. infer gives a capacity (the
 * largest possible output) and sets call->out_bounded to 1 + the axis whose
 * length depends on data. run lays the data out at capacity (the entries
 * past the true length are zero, so later ops may process the whole
 * capacity safely) and stores the true shape in call->out[0].dims. */
#include "ops/op.h"
#include "ops/nms_params.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------ NonZero */

static fg_status *nonzero_infer(op_call *call)
{
    const fg_tensor *x = &call->in[0];
    if (x->dtype == FG_STRING || fg_dtype_size(x->dtype) == 0)
        return op_error(call, FG_ERR_DTYPE, "input type %s is not supported", fg_dtype_name(x->dtype));
    fg_tensor *y = &call->out[0];
    y->dtype = FG_INT64;
    y->rank = 2;
    y->dims[0] = x->rank > 0 ? x->rank : 1; /* a scalar counts as one axis, like ONNX Runtime */
    y->dims[1] = fg_tensor_numel(x);
    call->out_bounded = 2; /* axis 1 */
    return NULL;
}

static int element_is_nonzero(const fg_tensor *x, int64_t i)
{
    switch (x->dtype) {
    case FG_FLOAT32: return ((const float *)x->data)[i] != 0.0f;
    case FG_FLOAT64: return ((const double *)x->data)[i] != 0.0;
    case FG_FLOAT16: return (((const uint16_t *)x->data)[i] & 0x7fff) != 0;
    case FG_BOOL:
    case FG_UINT8:
    case FG_INT8: return ((const uint8_t *)x->data)[i] != 0;
    case FG_UINT16:
    case FG_INT16: return ((const uint16_t *)x->data)[i] != 0;
    case FG_UINT32:
    case FG_INT32: return ((const uint32_t *)x->data)[i] != 0;
    case FG_UINT64:
    case FG_INT64: return ((const uint64_t *)x->data)[i] != 0;
    default: return 0;
    }
}

static fg_status *nonzero_run(op_call *call)
{
    const fg_tensor *x = &call->in[0];
    fg_tensor *y = &call->out[0];
    int64_t n = fg_tensor_numel(x);
    int rank = x->rank;
    int64_t count = 0;
    for (int64_t i = 0; i < n; i++)
        count += element_is_nonzero(x, i);
    int rows = rank > 0 ? rank : 1;
    int64_t capacity = y->dims[1];
    int64_t *out = y->data;
    memset(out, 0, sizeof(int64_t) * (size_t)(rows * capacity));
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!element_is_nonzero(x, i))
            continue;
        if (rank == 0) {
            out[k] = 0;
        } else {
            int64_t rest = i;
            for (int d = rank - 1; d >= 0; d--) {
                out[(int64_t)d * capacity + k] = rest % x->dims[d];
                rest /= x->dims[d];
            }
        }
        k++;
    }
    y->dtype = FG_INT64;
    y->rank = 2;
    y->dims[0] = rows;
    y->dims[1] = count;
    return NULL;
}

/* ------------------------------------------------------------ NonMaxSuppression */

typedef struct nms_candidate {
    float score;
    int64_t index;
} nms_candidate;

/* a before b: higher score first, then lower box index (ONNX Runtime's order). */
static int candidate_before(const nms_candidate *a, const nms_candidate *b)
{
    return a->score > b->score || (a->score == b->score && a->index < b->index);
}

/* In-place heap sort (no allocation) into "before" order. */
static void sift_down(nms_candidate *v, int64_t start, int64_t n)
{
    int64_t root = start;
    for (;;) {
        int64_t child = 2 * root + 1;
        if (child >= n)
            return;
        /* max-heap on "after": the element that goes last sits at the root */
        if (child + 1 < n && candidate_before(&v[child], &v[child + 1]))
            child++;
        if (!candidate_before(&v[root], &v[child]))
            return;
        nms_candidate t = v[root];
        v[root] = v[child];
        v[child] = t;
        root = child;
    }
}

static void sort_candidates(nms_candidate *v, int64_t n)
{
    for (int64_t i = n / 2 - 1; i >= 0; i--)
        sift_down(v, i, n);
    for (int64_t end = n - 1; end > 0; end--) {
        nms_candidate t = v[0];
        v[0] = v[end];
        v[end] = t;
        sift_down(v, 0, end);
    }
}

typedef struct nms_box {
    float y1, x1, y2, x2; /* y1 <= y2, x1 <= x2 */
} nms_box;

static nms_box read_box(const float *b, int center_point)
{
    nms_box r;
    if (center_point) {
        float xc = b[0], yc = b[1], w = b[2], h = b[3];
        r.x1 = xc - w / 2;
        r.x2 = xc + w / 2;
        r.y1 = yc - h / 2;
        r.y2 = yc + h / 2;
    } else {
        r.y1 = fminf(b[0], b[2]);
        r.y2 = fmaxf(b[0], b[2]);
        r.x1 = fminf(b[1], b[3]);
        r.x2 = fmaxf(b[1], b[3]);
    }
    return r;
}

static int suppressed_by(const nms_box *a, const nms_box *b, float iou_threshold)
{
    float area_a = (a->y2 - a->y1) * (a->x2 - a->x1);
    float area_b = (b->y2 - b->y1) * (b->x2 - b->x1);
    if (area_a <= 0 || area_b <= 0)
        return 0;
    float iy1 = fmaxf(a->y1, b->y1), ix1 = fmaxf(a->x1, b->x1);
    float iy2 = fminf(a->y2, b->y2), ix2 = fminf(a->x2, b->x2);
    float inter = fmaxf(iy2 - iy1, 0.0f) * fmaxf(ix2 - ix1, 0.0f);
    if (inter <= 0)
        return 0;
    float uni = area_a + area_b - inter;
    if (uni <= 0)
        return 0;
    return inter / uni > iou_threshold;
}

/* Reads an optional scalar input; returns 0 when omitted or empty. */
static int optional_scalar(const op_call *call, int i, double *value)
{
    if (!op_has_input(call, i) || fg_tensor_numel(&call->in[i]) == 0 || !call->in[i].data)
        return 0;
    *value = fg_load_f64(call->in[i].dtype, call->in[i].data, 0);
    return 1;
}

static fg_status *nms_infer(op_call *call)
{
    FG_TRY(nms_check_inputs(call));
    const fg_tensor *boxes = &call->in[0], *scores = &call->in[1];
    int64_t batches = boxes->dims[0], n = boxes->dims[1], classes = scores->dims[1];
    int64_t per_class = n;
    if (op_has_input(call, 2) && call->in[2].data) {
        double max_out = 0;
        optional_scalar(call, 2, &max_out);
        if (max_out < 0)
            max_out = 0;
        if (max_out < (double)per_class)
            per_class = (int64_t)max_out;
    }
    fg_tensor *y = &call->out[0];
    y->dtype = FG_INT64;
    y->rank = 2;
    y->dims[0] = batches * classes * per_class;
    y->dims[1] = 3;
    call->out_bounded = 1; /* axis 0 */
    /* candidates, then the selected boxes of one class */
    call->scratch_bytes = (size_t)n * sizeof(nms_candidate) + (size_t)n * sizeof(nms_box) + 64;
    return NULL;
}

static fg_status *nms_run(op_call *call)
{
    const fg_tensor *boxes_t = &call->in[0], *scores_t = &call->in[1];
    int64_t batches = boxes_t->dims[0], n = boxes_t->dims[1], classes = scores_t->dims[1];
    double value;
    int64_t max_out = 0;
    if (optional_scalar(call, 2, &value))
        max_out = value > (double)n ? n : (value < 0 ? 0 : (int64_t)value);
    float iou_threshold = 0;
    if (optional_scalar(call, 3, &value))
        iou_threshold = (float)value;
    int has_score_threshold = optional_scalar(call, 4, &value);
    float score_threshold = has_score_threshold ? (float)value : 0;
    if (iou_threshold < 0 || iou_threshold > 1)
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "iou_threshold must be in [0, 1] (got %g)",
                        (double)iou_threshold);
    int center_point = ir_attr_int(call->node, "center_point_box", 0) != 0;

    fg_tensor *y = &call->out[0];
    int64_t capacity = y->dims[0];
    int64_t *out = y->data;
    int64_t count = 0;
    memset(out, 0, sizeof(int64_t) * (size_t)(capacity * 3));
    nms_candidate *candidates = call->scratch;
    nms_box *selected = (nms_box *)((char *)call->scratch + (size_t)n * sizeof(nms_candidate));
    const float *boxes = boxes_t->data, *scores = scores_t->data;

    for (int64_t b = 0; b < batches && max_out > 0; b++) {
        const float *batch_boxes = boxes + b * n * 4;
        for (int64_t c = 0; c < classes; c++) {
            const float *class_scores = scores + (b * classes + c) * n;
            int64_t m = 0;
            for (int64_t i = 0; i < n; i++) {
                if (has_score_threshold && !(class_scores[i] > score_threshold))
                    continue;
                candidates[m].score = class_scores[i];
                candidates[m].index = i;
                m++;
            }
            sort_candidates(candidates, m);
            int64_t n_selected = 0;
            for (int64_t k = 0; k < m && n_selected < max_out; k++) {
                nms_box box = read_box(batch_boxes + candidates[k].index * 4, center_point);
                int keep = 1;
                for (int64_t s = 0; s < n_selected && keep; s++)
                    if (suppressed_by(&box, &selected[s], iou_threshold))
                        keep = 0;
                if (!keep)
                    continue;
                if (count >= capacity)
                    return op_error(call, FG_ERR_INTERNAL, "more boxes selected than the output capacity %lld",
                                    (long long)capacity);
                selected[n_selected++] = box;
                out[count * 3 + 0] = b;
                out[count * 3 + 1] = c;
                out[count * 3 + 2] = candidates[k].index;
                count++;
            }
        }
    }
    y->dtype = FG_INT64;
    y->rank = 2;
    y->dims[0] = count;
    y->dims[1] = 3;
    return NULL;
}

const op_def op_family_detection[] = {
    {"NonZero", NULL, nonzero_infer, NULL, nonzero_run, NULL, OP_DATA_DEPENDENT},
    {"NonMaxSuppression", NULL, nms_infer, NULL, nms_run, NULL, OP_DATA_DEPENDENT},
    {0},
};
