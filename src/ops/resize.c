/* Resize (opsets 10, 11, 13, 18, 19) and Upsample (opsets 7, 9).
 *
 * Every interpolation mode is separable: each output coordinate along an
 * axis reads `taps` input positions with fixed weights. run first builds, per
 * axis, a table of (clamped input index, weight) per output position in the
 * scratch buffer (tiny next to the tensor work, and it keeps the op correct
 * when scales or roi arrive only at run time), then combines the axes:
 *   - float32 with only the last two axes resized: a plane kernel, OpenMP
 *     over N*C*out_height rows;
 *   - anything else: a generic kernel over every output element (nearest
 *     copies bytes for any dtype; linear/cubic read and write through double).
 * Coordinates and weights are computed in float like ONNX Runtime does, so
 * nearest-neighbour picks match it at rounding boundaries. */
#include "ops/op.h"

#include <math.h>
#include <string.h>

typedef enum resize_mode { RESIZE_NEAREST, RESIZE_LINEAR, RESIZE_CUBIC } resize_mode;

typedef enum resize_coord {
    COORD_HALF_PIXEL,
    COORD_PYTORCH_HALF_PIXEL,
    COORD_ALIGN_CORNERS,
    COORD_ASYMMETRIC,
    COORD_TF_CROP_AND_RESIZE,
    COORD_TF_HALF_PIXEL_FOR_NN,
    COORD_HALF_PIXEL_SYMMETRIC
} resize_coord;

typedef enum resize_nearest {
    NEAREST_ROUND_PREFER_FLOOR,
    NEAREST_ROUND_PREFER_CEIL,
    NEAREST_FLOOR,
    NEAREST_CEIL,
    NEAREST_SIMPLE /* opset < 11: truncate when upsampling, ceil when downsampling */
} resize_nearest;

typedef struct resize_params {
    resize_mode mode;
    resize_coord coord;
    resize_nearest nearest;
    float cubic_a;
    int exclude_outside;
    float extrapolation;
    int antialias;
    int rank;
    int64_t in_dims[FG_MAX_RANK];
    int64_t out_dims[FG_MAX_RANK];
    float scale[FG_MAX_RANK];     /* per-axis scale used by the coordinate transform */
    float resized_len[FG_MAX_RANK]; /* in * scale when scales are given (the spec's
                                       length_resized for align_corners and
                                       tf_crop_and_resize), the size when sizes are */
    float roi_start[FG_MAX_RANK]; /* tf_crop_and_resize only */
    float roi_end[FG_MAX_RANK];
    int taps[FG_MAX_RANK];        /* input positions read per output position */
} resize_params;

/* One axis's table, laid out in the scratch buffer. */
typedef struct resize_axis {
    int64_t in_len, out_len;
    int taps;
    int identity;     /* output i reads input i with weight 1 */
    int64_t *index;   /* out_len * taps, clamped into [0, in_len) */
    float *weight;    /* out_len * taps */
    uint8_t *outside; /* out_len: 1 = extrapolation_value (tf_crop_and_resize) */
} resize_axis;

static int is_resize(const op_call *call)
{
    return strcmp(call->node->op_type, "Resize") == 0;
}

/* ------------------------------------------------------------ attributes */

static fg_status *parse_attributes(const ir_node *node, int64_t opset, resize_params *p)
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

static fg_status *resize_check(const ir_node *node, int64_t opset)
{
    resize_params p;
    return parse_attributes(node, opset, &p);
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

/* Reads the attributes, scales or sizes (which must be present), and roi
 * (when present) into p; fills the output dims. */
static fg_status *resize_setup(const op_call *call, resize_params *p)
{
    FG_TRY(parse_attributes(call->node, call->opset, p));
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
        call->in[roi_index].data) {
        const fg_tensor *roi = &call->in[roi_index];
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

static size_t align64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

static size_t tables_bytes(const resize_params *p)
{
    size_t bytes = 0;
    for (int d = 0; d < p->rank; d++) {
        size_t entries = (size_t)p->out_dims[d] * (size_t)p->taps[d];
        bytes += align64(entries * sizeof(int64_t)) + align64(entries * sizeof(float)) +
                 align64((size_t)p->out_dims[d]);
    }
    return bytes;
}

static fg_status *resize_infer(op_call *call)
{
    resize_params p;
    FG_TRY(resize_setup(call, &p));
    fg_tensor *y = &call->out[0];
    y->dtype = call->in[0].dtype;
    y->rank = p.rank;
    memcpy(y->dims, p.out_dims, sizeof(int64_t) * p.rank);
    call->scratch_bytes = tables_bytes(&p);
    return NULL;
}

/* ------------------------------------------------------------ tables */

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
static void build_axis(const resize_params *p, int d, resize_axis *ax)
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

/* ------------------------------------------------------------ kernels */

/* float32, every axis but the last two identity. */
static void run_planes_f32(const op_call *call, const resize_params *p, const resize_axis *ay, const resize_axis *ax)
{
    const float *in = call->in[0].data;
    float *out = call->out[0].data;
    int64_t planes = 1;
    for (int d = 0; d < p->rank - 2; d++)
        planes *= p->in_dims[d];
    int64_t ih = ay->in_len, iw = ax->in_len, oh = ay->out_len, ow = ax->out_len;
    int64_t rows = planes * oh;
    float extrap = p->extrapolation;
    int ny = ay->taps, nx = ax->taps;
#pragma omp parallel for num_threads(call->threads) if (rows * ow > 32768) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        int64_t plane = r / oh, oy = r % oh;
        const float *src = in + plane * ih * iw;
        float *dst = out + r * ow;
        if (ay->outside[oy]) {
            for (int64_t ox = 0; ox < ow; ox++)
                dst[ox] = extrap;
            continue;
        }
        if (ny == 1 && nx == 1) {
            const float *row = src + ay->index[oy] * iw;
            if (ax->identity) {
                memcpy(dst, row, sizeof(float) * ow);
            } else {
                const int64_t *ix = ax->index;
                for (int64_t ox = 0; ox < ow; ox++)
                    dst[ox] = row[ix[ox]];
            }
        } else if (ny == 2 && nx == 2) {
            /* bilinear: both source rows in one pass */
            float wy0 = ay->weight[oy * 2], wy1 = ay->weight[oy * 2 + 1];
            const float *row0 = src + ay->index[oy * 2] * iw;
            const float *row1 = src + ay->index[oy * 2 + 1] * iw;
            const int64_t *ix = ax->index;
            const float *wx = ax->weight;
            for (int64_t ox = 0; ox < ow; ox++) {
                int64_t i0 = ix[2 * ox], i1 = ix[2 * ox + 1];
                float w0 = wx[2 * ox], w1 = wx[2 * ox + 1];
                dst[ox] = wy0 * (w0 * row0[i0] + w1 * row0[i1]) + wy1 * (w0 * row1[i0] + w1 * row1[i1]);
            }
        } else {
            for (int64_t ox = 0; ox < ow; ox++)
                dst[ox] = 0;
            for (int ty = 0; ty < ny; ty++) {
                float wy = ay->weight[oy * ny + ty];
                if (wy == 0)
                    continue;
                const float *row = src + ay->index[oy * ny + ty] * iw;
                if (nx == 2) {
                    for (int64_t ox = 0; ox < ow; ox++) {
                        const int64_t *ix = ax->index + ox * 2;
                        const float *wx = ax->weight + ox * 2;
                        dst[ox] += wy * (wx[0] * row[ix[0]] + wx[1] * row[ix[1]]);
                    }
                } else {
                    for (int64_t ox = 0; ox < ow; ox++) {
                        const int64_t *ix = ax->index + ox * nx;
                        const float *wx = ax->weight + ox * nx;
                        float s = 0;
                        for (int tx = 0; tx < nx; tx++)
                            s += wx[tx] * row[ix[tx]];
                        dst[ox] += wy * s;
                    }
                }
            }
        }
        for (int64_t ox = 0; ox < ow; ox++)
            if (ax->outside[ox])
                dst[ox] = extrap;
    }
}

/* Integer outputs truncate like ONNX Runtime's static_cast (a value within
 * 1e-3 of an integer counts as that integer, absorbing weight rounding);
 * 8-bit ones saturate first. */
static double integer_result(fg_dtype dtype, double v)
{
    if (dtype != FG_FLOAT32 && dtype != FG_FLOAT64 && dtype != FG_FLOAT16 && fabs(v - nearbyint(v)) < 1e-3)
        v = nearbyint(v);
    switch (dtype) {
    case FG_FLOAT32:
    case FG_FLOAT64:
    case FG_FLOAT16: return v;
    case FG_UINT8: return v < 0 ? 0 : (v > 255 ? 255 : trunc(v));
    case FG_INT8: return v < -128 ? -128 : (v > 127 ? 127 : trunc(v));
    default: return trunc(v);
    }
}

/* Any dtype, any axes. */
static void run_generic(const op_call *call, const resize_params *p, const resize_axis *axes)
{
    const fg_tensor *x = &call->in[0];
    fg_tensor *y = &call->out[0];
    int rank = p->rank;
    int64_t in_strides[FG_MAX_RANK];
    int64_t s = 1;
    for (int d = rank - 1; d >= 0; d--) {
        in_strides[d] = s;
        s *= p->in_dims[d];
    }
    int all_single = 1;
    for (int d = 0; d < rank; d++)
        if (axes[d].taps != 1)
            all_single = 0;
    size_t elem = fg_dtype_size(x->dtype);
    int64_t total = fg_shape_numel(rank, p->out_dims);
    const char *in = x->data;
    char *out = y->data;
    double extrap = p->extrapolation;
    int is_f32 = x->dtype == FG_FLOAT32;
#pragma omp parallel for num_threads(call->threads) if (total > 32768) schedule(static)
    for (int64_t o = 0; o < total; o++) {
        int64_t pos[FG_MAX_RANK];
        int64_t rest = o;
        int outside = 0;
        for (int d = rank - 1; d >= 0; d--) {
            pos[d] = rest % p->out_dims[d];
            rest /= p->out_dims[d];
            outside |= axes[d].outside[pos[d]];
        }
        if (outside) {
            fg_store_f64(y->dtype, out, o, extrap);
            continue;
        }
        if (all_single) {
            int64_t offset = 0;
            for (int d = 0; d < rank; d++)
                offset += axes[d].index[pos[d]] * in_strides[d];
            memcpy(out + (size_t)o * elem, in + (size_t)offset * elem, elem);
            continue;
        }
        /* Odometer over the tap combinations. */
        int tap[FG_MAX_RANK] = {0};
        double acc = 0;
        for (;;) {
            int64_t offset = 0;
            double w = 1;
            for (int d = 0; d < rank; d++) {
                int64_t k = pos[d] * axes[d].taps + tap[d];
                offset += axes[d].index[k] * in_strides[d];
                w *= axes[d].weight[k];
            }
            if (w != 0)
                acc += w * (is_f32 ? ((const float *)in)[offset] : fg_load_f64(x->dtype, in, offset));
            int d = rank - 1;
            while (d >= 0 && ++tap[d] == axes[d].taps)
                tap[d--] = 0;
            if (d < 0)
                break;
        }
        if (is_f32)
            ((float *)out)[o] = (float)acc;
        else
            fg_store_f64(y->dtype, out, o, integer_result(y->dtype, acc));
    }
}

static fg_status *resize_run(op_call *call)
{
    resize_params p;
    FG_TRY(resize_setup(call, &p));
    if (p.coord == COORD_TF_CROP_AND_RESIZE && (!op_has_input(call, 1) || fg_tensor_numel(&call->in[1]) == 0))
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "coordinate_transformation_mode tf_crop_and_resize needs roi");
    if (fg_shape_numel(p.rank, p.out_dims) == 0)
        return NULL;
    if (call->scratch_bytes < tables_bytes(&p))
        return op_error(call, FG_ERR_INTERNAL, "scratch of %zu bytes is smaller than the %zu bytes needed",
                        call->scratch_bytes, tables_bytes(&p));
    if (call->in[0].dtype == FG_STRING)
        return op_error(call, FG_ERR_DTYPE, "string tensors cannot be resized");

    resize_axis axes[FG_MAX_RANK];
    char *cursor = call->scratch;
    for (int d = 0; d < p.rank; d++) {
        size_t entries = (size_t)p.out_dims[d] * (size_t)p.taps[d];
        axes[d].index = (int64_t *)cursor;
        cursor += align64(entries * sizeof(int64_t));
        axes[d].weight = (float *)cursor;
        cursor += align64(entries * sizeof(float));
        axes[d].outside = (uint8_t *)cursor;
        cursor += align64((size_t)p.out_dims[d]);
        build_axis(&p, d, &axes[d]);
    }

    if (call->in[0].dtype == FG_FLOAT32 && p.rank >= 2) {
        int outer_identity = 1;
        for (int d = 0; d < p.rank - 2; d++)
            if (!axes[d].identity)
                outer_identity = 0;
        if (outer_identity) {
            run_planes_f32(call, &p, &axes[p.rank - 2], &axes[p.rank - 1]);
            return NULL;
        }
    }
    run_generic(call, &p, axes);
    return NULL;
}

const op_def op_family_resize[] = {
    {"Resize", resize_check, resize_infer, NULL, resize_run, NULL, 0},
    {"Upsample", resize_check, resize_infer, NULL, resize_run, NULL, 0},
    {0},
};
