/* Host-side convolution geometry shared by the CPU and CUDA kernels (see
 * conv_geometry.h). */
#include "ops/conv_geometry.h"

#include <string.h>

fg_status *spatial_pads_attr(const op_call *call, int nsp, int64_t *pad_l, int64_t *pad_r)
{
    const int64_t *pads;
    int n_pads = ir_attr_ints(call->node, "pads", &pads);
    if (n_pads && n_pads != 2 * nsp)
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "pads has %d values, expected %d", n_pads, 2 * nsp);
    for (int i = 0; i < nsp; i++) {
        pad_l[i] = n_pads ? pads[i] : 0;
        pad_r[i] = n_pads ? pads[nsp + i] : 0;
    }
    return NULL;
}

fg_status *auto_pad_attr(const op_call *call, auto_pad_mode *mode)
{
    const char *auto_pad = ir_attr_string(call->node, "auto_pad", "NOTSET");
    if (strcmp(auto_pad, "SAME_UPPER") == 0)
        *mode = AUTO_PAD_SAME_UPPER;
    else if (strcmp(auto_pad, "SAME_LOWER") == 0)
        *mode = AUTO_PAD_SAME_LOWER;
    else if (strcmp(auto_pad, "VALID") == 0)
        *mode = AUTO_PAD_VALID;
    else if (strcmp(auto_pad, "NOTSET") == 0)
        *mode = AUTO_PAD_NOTSET;
    else
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "unknown auto_pad '%s'", auto_pad);
    return NULL;
}

int64_t same_auto_pads(int64_t in, int64_t stride, int64_t span, int upper, int64_t *pad_l, int64_t *pad_r)
{
    int64_t out = (in + stride - 1) / stride;
    int64_t total = (out - 1) * stride + span - in;
    if (total < 0)
        total = 0;
    *pad_l = upper ? total / 2 : total - total / 2;
    *pad_r = total - *pad_l;
    return out;
}

static fg_status *read_spatial_attr(const op_call *call, const char *name, int nsp, int64_t dflt, int64_t *out)
{
    const int64_t *v;
    int n = ir_attr_ints(call->node, name, &v);
    for (int i = 0; i < nsp; i++)
        out[i] = dflt;
    if (n == 0)
        return NULL;
    if (n != nsp)
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "attribute %s has %d values, expected %d (one per spatial axis)",
                        name, n, nsp);
    for (int i = 0; i < nsp; i++)
        out[i] = v[i];
    return NULL;
}

/* Conv: W is M x C/group x k...; the output size follows from the (explicit
 * or SAME) pads. */
static fg_status *forward_output(const op_call *call, const fg_tensor *w, auto_pad_mode mode, conv_geom *g)
{
    g->c_out = w->dims[0];
    if (g->c_in != w->dims[1] * g->group)
        return op_error(call, FG_ERR_SHAPE,
                        "input has %lld channels but weights expect %lld (W dim 1 = %lld times group %lld)",
                        (long long)g->c_in, (long long)(w->dims[1] * g->group), (long long)w->dims[1],
                        (long long)g->group);
    if (g->c_out % g->group)
        return op_error(call, FG_ERR_SHAPE, "output channels %lld are not divisible by group %lld",
                        (long long)g->c_out, (long long)g->group);
    int same = mode == AUTO_PAD_SAME_UPPER || mode == AUTO_PAD_SAME_LOWER;
    for (int i = 0; i < g->nsp; i++) {
        int64_t span = g->dilation[i] * (g->kernel[i] - 1) + 1;
        if (same)
            same_auto_pads(g->in_sp[i], g->stride[i], span, mode == AUTO_PAD_SAME_UPPER, &g->pad_l[i], &g->pad_r[i]);
        int64_t padded = g->in_sp[i] + g->pad_l[i] + g->pad_r[i];
        if (padded < span)
            return op_error(call, FG_ERR_SHAPE,
                            "spatial axis %d: padded input size %lld is smaller than the dilated kernel %lld", i,
                            (long long)padded, (long long)span);
        g->out_sp[i] = (padded - span) / g->stride[i] + 1;
    }
    return NULL;
}

/* ConvTranspose: W is C x M/group x k...; output_shape or SAME padding set
 * the pads from the wanted output size, output_padding extends the end. */
static fg_status *transposed_output(const op_call *call, const fg_tensor *w, auto_pad_mode mode, conv_geom *g)
{
    int nsp = g->nsp;
    if (g->c_in != w->dims[0])
        return op_error(call, FG_ERR_SHAPE, "input has %lld channels but weights dim 0 is %lld", (long long)g->c_in,
                        (long long)w->dims[0]);
    if (g->c_in % g->group)
        return op_error(call, FG_ERR_SHAPE, "input channels %lld are not divisible by group %lld",
                        (long long)g->c_in, (long long)g->group);
    g->c_out = w->dims[1] * g->group;
    int64_t out_pad[CONV_MAX_SP];
    FG_TRY(read_spatial_attr(call, "output_padding", nsp, 0, out_pad));
    const int64_t *os;
    int n_os = ir_attr_ints(call->node, "output_shape", &os);
    if (n_os && n_os != nsp && n_os != nsp + 2)
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "output_shape has %d values, expected %d", n_os, nsp);
    int same = mode == AUTO_PAD_SAME_UPPER || mode == AUTO_PAD_SAME_LOWER;
    for (int i = 0; i < nsp; i++) {
        int64_t span = g->dilation[i] * (g->kernel[i] - 1) + 1;
        int64_t full = g->stride[i] * (g->in_sp[i] - 1) + out_pad[i] + span;
        if (n_os || same) {
            int64_t out_shape = n_os ? os[n_os - nsp + i] : g->in_sp[i] * g->stride[i];
            /* may be negative: the output then extends past the input's reach */
            int64_t total = full - out_shape;
            int64_t half = total >= 0 ? total / 2 : -((1 - total) / 2); /* floor(total / 2) */
            if (mode == AUTO_PAD_SAME_UPPER) {
                g->pad_l[i] = half;
                g->pad_r[i] = total - half;
            } else {
                g->pad_l[i] = total - half;
                g->pad_r[i] = half;
            }
        }
        g->out_sp[i] = full - g->pad_l[i] - g->pad_r[i];
        if (g->out_sp[i] < 1)
            return op_error(call, FG_ERR_SHAPE, "spatial axis %d: output size %lld is not positive", i,
                            (long long)g->out_sp[i]);
        g->pad_r[i] -= out_pad[i];
    }
    return NULL;
}

fg_status *conv_geometry(const op_call *call, int transposed, conv_geom *g)
{
    memset(g, 0, sizeof *g);
    g->transposed = transposed;
    if (call->n_in < 2 || !op_has_input(call, 1))
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "needs inputs X and W");
    const fg_tensor *x = &call->in[0], *w = &call->in[1];
    if (x->rank < 3 || x->rank > 2 + CONV_MAX_SP)
        return op_error(call, FG_ERR_UNSUPPORTED, "input X has rank %d; supported are 1-D to 3-D convolutions (rank 3 to 5)",
                        x->rank);
    if (w->rank != x->rank)
        return op_error(call, FG_ERR_SHAPE, "weights W have rank %d but input X has rank %d", w->rank, x->rank);
    int nsp = x->rank - 2;
    g->nsp = nsp;
    g->batch = x->dims[0];
    g->c_in = x->dims[1];
    g->group = ir_attr_int(call->node, "group", 1);
    if (g->group < 1)
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "group is %lld, must be at least 1", (long long)g->group);
    for (int i = 0; i < nsp; i++) {
        g->in_sp[i] = x->dims[2 + i];
        g->kernel[i] = w->dims[2 + i];
    }
    int64_t ks[CONV_MAX_SP];
    FG_TRY(read_spatial_attr(call, "kernel_shape", nsp, 0, ks));
    if (ir_attr_find(call->node, "kernel_shape"))
        for (int i = 0; i < nsp; i++)
            if (ks[i] != g->kernel[i])
                return op_error(call, FG_ERR_SHAPE, "kernel_shape[%d] = %lld does not match weights dimension %lld", i,
                                (long long)ks[i], (long long)g->kernel[i]);
    FG_TRY(read_spatial_attr(call, "strides", nsp, 1, g->stride));
    FG_TRY(read_spatial_attr(call, "dilations", nsp, 1, g->dilation));
    for (int i = 0; i < nsp; i++)
        if (g->stride[i] < 1 || g->dilation[i] < 1 || g->kernel[i] < 1)
            return op_error(call, FG_ERR_INVALID_ARGUMENT, "strides, dilations and kernel sizes must be positive");

    FG_TRY(spatial_pads_attr(call, nsp, g->pad_l, g->pad_r));
    auto_pad_mode mode;
    FG_TRY(auto_pad_attr(call, &mode));
    if (mode == AUTO_PAD_VALID)
        for (int i = 0; i < nsp; i++)
            g->pad_l[i] = g->pad_r[i] = 0;

    if (!transposed)
        FG_TRY(forward_output(call, w, mode, g));
    else
        FG_TRY(transposed_output(call, w, mode, g));

    if (op_has_input(call, 2)) {
        const fg_tensor *b = &call->in[2];
        if (fg_tensor_numel(b) != g->c_out || b->rank != 1)
            return op_error(call, FG_ERR_SHAPE, "bias has %lld elements, expected %lld (one per output channel)",
                            (long long)fg_tensor_numel(b), (long long)g->c_out);
    }
    return NULL;
}
