/* Host-side logic of Resize / Upsample shared by the CPU and CUDA kernels
 * (see resize_params.h). */
#include "ops/resize_params.h"

#include <math.h>
#include <string.h>

static int is_resize(const op_call *call)
{
    return strcmp(call->node->op_type, "Resize") == 0;
}

fg_status *resize_parse_attributes(const ir_node *node, int64_t opset, resize_params *p)
{
    int resize = strcmp(node->op_type, "Resize") == 0;
    const char *mode = ir_attr_string(node, "mode", "nearest");
    if (strcmp(mode, "nearest") == 0)
        p->mode = RESIZE_NEAREST;
    else if (strcmp(mode, "linear") == 0 || strcmp(mode, "bilinear") == 0)
        p->mode = RESIZE_LINEAR;
    else if (strcmp(mode, "cubic") == 0 && resize && opset >= 11)
        p->mode = RESIZE_CUBIC;
    else
        return op_node_error(node, opset, FG_ERR_UNSUPPORTED,
                             "mode '%s' is not supported (expected nearest, linear or cubic)", mode);

    p->coord = COORD_ASYMMETRIC;
    p->nearest = NEAREST_SIMPLE;
    p->cubic_a = -0.75f;
    p->exclude_outside = 0;
    p->extrapolation = 0.0f;
    p->antialias = 0;
    if (resize && opset >= 11) {
        const char *coord = ir_attr_string(node, "coordinate_transformation_mode", "half_pixel");
        static const struct {
            const char *name;
            resize_coord coord;
        } coords[] = {
            {"half_pixel", COORD_HALF_PIXEL},
            {"pytorch_half_pixel", COORD_PYTORCH_HALF_PIXEL},
            {"align_corners", COORD_ALIGN_CORNERS},
            {"asymmetric", COORD_ASYMMETRIC},
            {"tf_crop_and_resize", COORD_TF_CROP_AND_RESIZE},
            {"tf_half_pixel_for_nn", COORD_TF_HALF_PIXEL_FOR_NN},
            {"half_pixel_symmetric", COORD_HALF_PIXEL_SYMMETRIC},
        };
        size_t i;
        for (i = 0; i < sizeof coords / sizeof coords[0]; i++)
            if (strcmp(coord, coords[i].name) == 0)
                break;
        if (i == sizeof coords / sizeof coords[0])
            return op_node_error(node, opset, FG_ERR_UNSUPPORTED,
                                 "coordinate_transformation_mode '%s' is not supported", coord);
        p->coord = coords[i].coord;

        const char *nearest = ir_attr_string(node, "nearest_mode", "round_prefer_floor");
        if (strcmp(nearest, "round_prefer_floor") == 0)
            p->nearest = NEAREST_ROUND_PREFER_FLOOR;
        else if (strcmp(nearest, "round_prefer_ceil") == 0)
            p->nearest = NEAREST_ROUND_PREFER_CEIL;
        else if (strcmp(nearest, "floor") == 0)
            p->nearest = NEAREST_FLOOR;
        else if (strcmp(nearest, "ceil") == 0)
            p->nearest = NEAREST_CEIL;
        else
            return op_node_error(node, opset, FG_ERR_UNSUPPORTED, "nearest_mode '%s' is not supported", nearest);

        p->cubic_a = ir_attr_float(node, "cubic_coeff_a", -0.75f);
        p->exclude_outside = ir_attr_int(node, "exclude_outside", 0) != 0;
        p->extrapolation = ir_attr_float(node, "extrapolation_value", 0.0f);
        if (opset >= 18)
            p->antialias = ir_attr_int(node, "antialias", 0) != 0;
        if (p->antialias && p->mode == RESIZE_NEAREST)
            p->antialias = 0; /* antialias applies to linear and cubic only */
        const char *policy = ir_attr_string(node, "keep_aspect_ratio_policy", "stretch");
        if (strcmp(policy, "stretch") != 0 && strcmp(policy, "not_larger") != 0 &&
            strcmp(policy, "not_smaller") != 0)
            return op_node_error(node, opset, FG_ERR_UNSUPPORTED, "keep_aspect_ratio_policy '%s' is not supported",
                                 policy);
    }
    return NULL;
}

/* Taps per output position along an axis with this scale. */
static int axis_taps(const resize_params *p, float scale)
{
    if (p->mode == RESIZE_NEAREST)
        return 1;
    int support = p->mode == RESIZE_LINEAR ? 1 : 2;
    if (!p->antialias || scale >= 1.0f)
        return 2 * support;
    int start = (int)floor(-(double)support / scale) + 1;
    return 2 - 2 * start;
}

fg_status *resize_setup(const op_call *call, resize_params *p, int roi_must_be_constant)
{
    FG_TRY(resize_parse_attributes(call->node, call->opset, p));
    const fg_tensor *x = &call->in[0];
    int rank = x->rank;
    if (rank < 1)
        return op_error(call, FG_ERR_SHAPE, "the input must have rank 1 or more (got a scalar)");
    p->rank = rank;
    memcpy(p->in_dims, x->dims, sizeof(int64_t) * rank);

    /* Axes the scales / sizes / roi refer to (opset 18: the axes attribute). */
    int axes[FG_MAX_RANK];
    int n_axes = rank;
    for (int d = 0; d < rank; d++)
        axes[d] = d;
    const int64_t *axes_attr = NULL;
    int n_axes_attr = (is_resize(call) && call->opset >= 18) ? ir_attr_ints(call->node, "axes", &axes_attr) : 0;
    if (n_axes_attr > 0) {
        if (n_axes_attr > rank)
            return op_error(call, FG_ERR_INVALID_ARGUMENT, "axes has %d entries for an input of rank %d", n_axes_attr,
                            rank);
        int seen[FG_MAX_RANK] = {0};
        for (int i = 0; i < n_axes_attr; i++) {
            FG_TRY(op_axis(call, axes_attr[i], rank, &axes[i]));
            if (seen[axes[i]]++)
                return op_error(call, FG_ERR_INVALID_ARGUMENT, "axes repeats axis %d", axes[i]);
        }
        n_axes = n_axes_attr;
    }

    for (int d = 0; d < rank; d++) {
        p->scale[d] = 1.0f;
        p->out_dims[d] = p->in_dims[d];
        p->roi_start[d] = 0.0f;
        p->roi_end[d] = 1.0f;
        p->resized_len[d] = (float)p->in_dims[d];
    }

    /* Locate scales and sizes. */
    int scales_index = -1, sizes_index = -1, roi_index = -1;
    const float *scales_attr = NULL;
    int n_scales_attr = 0;
    if (!is_resize(call)) {
        if (call->opset < 9)
            n_scales_attr = ir_attr_floats(call->node, "scales", &scales_attr);
        else
            scales_index = 1;
    } else if (call->opset < 11) {
        scales_index = 1;
    } else {
        roi_index = 1;
        scales_index = 2;
        sizes_index = 3;
    }
    int use_sizes = 0;
    if (scales_index >= 0 && op_has_input(call, scales_index) && call->in[scales_index].rank >= 1 &&
        call->in[scales_index].dims[0] > 0) {
        OP_REQUIRE_VALUE(call, scales_index);
    } else if (sizes_index >= 0 && op_has_input(call, sizes_index) && fg_tensor_numel(&call->in[sizes_index]) > 0) {
        OP_REQUIRE_VALUE(call, sizes_index);
        use_sizes = 1;
    } else if (n_scales_attr == 0) {
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "neither scales nor sizes is given");
    }

    if (use_sizes) {
        const fg_tensor *sizes = &call->in[sizes_index];
        if (fg_tensor_numel(sizes) != n_axes)
            return op_error(call, FG_ERR_SHAPE, "sizes has %lld values, expected %d", (long long)fg_tensor_numel(sizes),
                            n_axes);
        int64_t values[FG_MAX_RANK];
        op_read_ints(sizes, values, n_axes);
        for (int i = 0; i < n_axes; i++) {
            if (values[i] < 0)
                return op_error(call, FG_ERR_INVALID_ARGUMENT, "sizes[%d] is negative (%lld)", i, (long long)values[i]);
            int d = axes[i];
            p->out_dims[d] = values[i];
            p->scale[d] = p->in_dims[d] > 0 ? (float)values[i] / (float)p->in_dims[d] : 1.0f;
            p->resized_len[d] = (float)values[i];
        }
        const char *policy = ir_attr_string(call->node, "keep_aspect_ratio_policy", "stretch");
        if (call->opset >= 18 && strcmp(policy, "stretch") != 0) {
            float chosen = p->scale[axes[0]];
            for (int i = 1; i < n_axes; i++) {
                float s = p->scale[axes[i]];
                if (strcmp(policy, "not_larger") == 0 ? s < chosen : s > chosen)
                    chosen = s;
            }
            for (int i = 0; i < n_axes; i++) {
                int d = axes[i];
                p->scale[d] = chosen;
                p->out_dims[d] = (int64_t)(chosen * (float)p->in_dims[d] + 0.5f);
                p->resized_len[d] = chosen * (float)p->in_dims[d];
            }
        }
    } else {
        float values[FG_MAX_RANK];
        int n;
        if (n_scales_attr > 0) {
            n = n_scales_attr;
            if (n != n_axes)
                return op_error(call, FG_ERR_SHAPE, "the scales attribute has %d values, expected %d", n, n_axes);
            for (int i = 0; i < n; i++)
                values[i] = scales_attr[i];
        } else {
            const fg_tensor *scales = &call->in[scales_index];
            int64_t count = fg_tensor_numel(scales);
            if (count != n_axes)
                return op_error(call, FG_ERR_SHAPE, "scales has %lld values, expected %d", (long long)count, n_axes);
            n = (int)count;
            for (int i = 0; i < n; i++)
                values[i] = (float)fg_load_f64(scales->dtype, scales->data, i);
        }
        for (int i = 0; i < n; i++) {
            if (!(values[i] > 0.0f))
                return op_error(call, FG_ERR_INVALID_ARGUMENT, "scales[%d] must be positive (got %g)", i,
                                (double)values[i]);
            int d = axes[i];
            p->scale[d] = values[i];
            p->out_dims[d] = (int64_t)((float)p->in_dims[d] * values[i]);
            p->resized_len[d] = (float)p->in_dims[d] * values[i];
        }
    }

    if (p->coord == COORD_TF_CROP_AND_RESIZE && roi_index >= 0 && op_has_input(call, roi_index) &&
        (call->in[roi_index].data || roi_must_be_constant)) {
        const fg_tensor *roi = &call->in[roi_index];
        if (!roi->data)
            return op_error(call, FG_ERR_UNSUPPORTED, "the roi input must be a constant for the CUDA backend");
        int64_t count = fg_tensor_numel(roi);
        if (count != 2 * n_axes)
            return op_error(call, FG_ERR_SHAPE, "roi has %lld values, expected %d", (long long)count, 2 * n_axes);
        for (int i = 0; i < n_axes; i++) {
            p->roi_start[axes[i]] = (float)fg_load_f64(roi->dtype, roi->data, i);
            p->roi_end[axes[i]] = (float)fg_load_f64(roi->dtype, roi->data, n_axes + i);
        }
    }

    for (int d = 0; d < rank; d++) {
        if (p->in_dims[d] == 0 && p->out_dims[d] > 0)
            return op_error(call, FG_ERR_SHAPE, "cannot resize axis %d of length 0 to length %lld", d,
                            (long long)p->out_dims[d]);
        p->taps[d] = axis_taps(p, p->scale[d]);
    }
    return NULL;
}

/* Source coordinate of output position `o` along an axis (float like ORT). */
static float source_coordinate(const resize_params *p, int d, int64_t o)
{
    float x = (float)o;
    float scale = p->scale[d];
    float in_len = (float)p->in_dims[d];
    float out_len = (float)p->out_dims[d];
    float resized_len = p->resized_len[d];
    switch (p->coord) {
    case COORD_HALF_PIXEL: return (x + 0.5f) / scale - 0.5f;
    case COORD_PYTORCH_HALF_PIXEL: return out_len > 1 ? (x + 0.5f) / scale - 0.5f : 0.0f;
    case COORD_ALIGN_CORNERS: return resized_len == 1 ? 0.0f : x * (in_len - 1) / (resized_len - 1);
    case COORD_ASYMMETRIC: return x / scale;
    case COORD_TF_HALF_PIXEL_FOR_NN: return (x + 0.5f) / scale;
    case COORD_TF_CROP_AND_RESIZE: {
        float start = p->roi_start[d], end = p->roi_end[d];
        if (resized_len != 1)
            return start * (in_len - 1) + (x * (end - start) * (in_len - 1)) / (resized_len - 1);
        return 0.5f * (start + end) * (in_len - 1);
    }
    case COORD_HALF_PIXEL_SYMMETRIC: {
        float adjustment = out_len / resized_len;
        float center = in_len / 2;
        float offset = center * (1 - adjustment);
        return offset + (x + 0.5f) / scale - 0.5f;
    }
    }
    return x;
}

static int64_t nearest_index(const resize_params *p, float x, float scale)
{
    float fl = floorf(x);
    switch (p->nearest) {
    case NEAREST_ROUND_PREFER_FLOOR: return (int64_t)(x - fl <= 0.5f ? fl : fl + 1);
    case NEAREST_ROUND_PREFER_CEIL: return (int64_t)(x - fl < 0.5f ? fl : fl + 1);
    case NEAREST_FLOOR: return (int64_t)fl;
    case NEAREST_CEIL: return (int64_t)ceilf(x);
    case NEAREST_SIMPLE: return scale < 1.0f ? (int64_t)ceilf(x) : (int64_t)x;
    }
    return (int64_t)fl;
}

static float cubic_kernel(float x, float a)
{
    x = fabsf(x);
    if (x <= 1)
        return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2)
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
    return 0;
}

/* Fills one axis's table. */
void resize_build_axis(const resize_params *p, int d, resize_axis *ax)
{
    int64_t in_len = p->in_dims[d], out_len = p->out_dims[d];
    int taps = p->taps[d];
    float scale = p->scale[d];
    float kernel_scale = p->antialias && scale < 1.0f ? scale : 1.0f;
    int identity = in_len == out_len;
    for (int64_t o = 0; o < out_len; o++) {
        float x = source_coordinate(p, d, o);
        int64_t *index = ax->index + o * taps;
        float *weight = ax->weight + o * taps;
        ax->outside[o] = p->coord == COORD_TF_CROP_AND_RESIZE && (x < 0 || x > (float)(in_len - 1));
        if (ax->outside[o])
            identity = 0;
        if (p->mode == RESIZE_NEAREST) {
            int64_t i = nearest_index(p, x, scale);
            index[0] = i < 0 ? 0 : (i >= in_len ? in_len - 1 : i);
            weight[0] = 1.0f;
            if (index[0] != o)
                identity = 0;
            continue;
        }
        /* base = ceil(x) - 1 and ratio in (0, 1]: an integer x reads the
         * right-hand tap with full weight (as the ONNX reference does). */
        float base_f = ceilf(x) - 1;
        float ratio = x - base_f;
        int64_t base = (int64_t)base_f;
        int64_t first = base - taps / 2 + 1;
        float sum = 0;
        for (int t = 0; t < taps; t++) {
            int64_t i = first + t;
            float w;
            if (p->mode == RESIZE_LINEAR) {
                if (!p->antialias || kernel_scale >= 1.0f) {
                    w = t == 0 ? 1 - ratio : ratio;
                } else {
                    w = 1 - fabsf((float)(i - base) - ratio) * kernel_scale;
                    w = w < 0 ? 0 : w;
                }
            } else if (!p->antialias || kernel_scale >= 1.0f) {
                float r1 = ratio + 1, r2 = 1 - ratio, r3 = 2 - ratio, a = p->cubic_a;
                switch (t) {
                case 0: w = ((a * r1 - 5 * a) * r1 + 8 * a) * r1 - 4 * a; break;
                case 1: w = ((a + 2) * ratio - (a + 3)) * ratio * ratio + 1; break;
                case 2: w = ((a + 2) * r2 - (a + 3)) * r2 * r2 + 1; break;
                default: w = ((a * r3 - 5 * a) * r3 + 8 * a) * r3 - 4 * a; break;
                }
            } else {
                w = cubic_kernel(((float)(i - base) - ratio) * kernel_scale, p->cubic_a);
            }
            if (p->exclude_outside && (i < 0 || i >= in_len))
                w = 0;
            weight[t] = w;
            sum += w;
            index[t] = i < 0 ? 0 : (i >= in_len ? in_len - 1 : i);
            if (w != 0 && !(i == o && w == 1.0f))
                identity = 0;
        }
        if ((p->exclude_outside || p->antialias) && sum != 0 && sum != 1.0f)
            for (int t = 0; t < taps; t++)
                weight[t] /= sum;
    }
    ax->in_len = in_len;
    ax->out_len = out_len;
    ax->taps = taps;
    ax->identity = identity;
}
