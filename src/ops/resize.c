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
 * Attribute parsing, output geometry and the axis tables live in
 * resize_params.c, shared with the CUDA kernel. */
#include "ops/op.h"
#include "ops/resize_params.h"

#include <math.h>
#include <string.h>

static fg_status *resize_check(const ir_node *node, int64_t opset)
{
    resize_params p;
    return resize_parse_attributes(node, opset, &p);
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
    FG_TRY(resize_setup(call, &p, 0));
    fg_tensor *y = &call->out[0];
    y->dtype = call->in[0].dtype;
    y->rank = p.rank;
    memcpy(y->dims, p.out_dims, sizeof(int64_t) * p.rank);
    call->scratch_bytes = tables_bytes(&p);
    return NULL;
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
    FG_TRY(resize_setup(call, &p, 0));
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
        resize_build_axis(&p, d, &axes[d]);
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
