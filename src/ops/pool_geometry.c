/* Host-side pooling geometry shared by the CPU and CUDA kernels (see
 * pool_geometry.h). */
#include "ops/pool_geometry.h"

#include "ops/conv_geometry.h"

#include <string.h>

static fg_status *check_input(const op_call *call)
{
    const fg_tensor *x = &call->in[0];
    if (x->rank < 3 || x->rank > 2 + POOL_MAX_SP)
        return op_error(call, FG_ERR_UNSUPPORTED, "input has rank %d; supported are ranks 3 to 5 (N, C, 1-3 spatial axes)",
                        x->rank);
    switch (x->dtype) {
    case FG_FLOAT32: case FG_FLOAT16: case FG_FLOAT64: case FG_INT8: case FG_UINT8: return NULL;
    default:
        return op_error(call, FG_ERR_DTYPE, "input dtype %s is not supported (float32, float16, float64, int8, uint8)",
                        fg_dtype_name(x->dtype));
    }
}

static fg_status *spatial_ints(const op_call *call, const char *name, int nsp, int64_t dflt, int64_t *out,
                               int required)
{
    const int64_t *v;
    int n = ir_attr_ints(call->node, name, &v);
    if (n == 0) {
        if (required)
            return op_error(call, FG_ERR_INVALID_ARGUMENT, "attribute %s is required", name);
        for (int i = 0; i < nsp; i++)
            out[i] = dflt;
        return NULL;
    }
    if (n != nsp)
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "attribute %s has %d values, expected %d", name, n, nsp);
    for (int i = 0; i < nsp; i++)
        out[i] = v[i];
    return NULL;
}

fg_status *pool_geometry(const op_call *call, pool_kind kind, int global, pool_geom *g)
{
    memset(g, 0, sizeof *g);
    FG_TRY(check_input(call));
    const fg_tensor *x = &call->in[0];
    int nsp = x->rank - 2;
    g->nsp = nsp;
    g->planes = x->dims[0] * x->dims[1];
    for (int i = 0; i < nsp; i++)
        g->in[i] = x->dims[2 + i];
    g->p = (int)ir_attr_int(call->node, "p", 2);
    if (global) {
        for (int i = 0; i < nsp; i++) {
            g->k[i] = g->in[i];
            g->s[i] = g->d[i] = g->out[i] = 1;
        }
        return NULL;
    }
    FG_TRY(spatial_ints(call, "kernel_shape", nsp, 1, g->k, 1));
    FG_TRY(spatial_ints(call, "strides", nsp, 1, g->s, 0));
    FG_TRY(spatial_ints(call, "dilations", nsp, 1, g->d, 0));
    for (int i = 0; i < nsp; i++)
        if (g->k[i] < 1 || g->s[i] < 1 || g->d[i] < 1)
            return op_error(call, FG_ERR_INVALID_ARGUMENT, "kernel_shape, strides and dilations must be positive");
    FG_TRY(spatial_pads_attr(call, nsp, g->pad_l, g->pad_r));
    g->count_include_pad = (int)ir_attr_int(call->node, "count_include_pad", 0);
    g->storage_order = (int)ir_attr_int(call->node, "storage_order", 0);
    int ceil_mode = (int)ir_attr_int(call->node, "ceil_mode", 0);
    auto_pad_mode mode;
    FG_TRY(auto_pad_attr(call, &mode));
    for (int i = 0; i < nsp; i++) {
        int64_t span = (g->k[i] - 1) * g->d[i] + 1;
        if (mode == AUTO_PAD_SAME_UPPER || mode == AUTO_PAD_SAME_LOWER) {
            g->out[i] =
                same_auto_pads(g->in[i], g->s[i], span, mode == AUTO_PAD_SAME_UPPER, &g->pad_l[i], &g->pad_r[i]);
            continue;
        }
        if (mode == AUTO_PAD_VALID)
            g->pad_l[i] = g->pad_r[i] = 0;
        int64_t room = g->in[i] + g->pad_l[i] + g->pad_r[i] - span;
        if (room < 0)
            return op_error(call, FG_ERR_SHAPE, "spatial axis %d: padded input %lld is smaller than the window %lld", i,
                            (long long)(g->in[i] + g->pad_l[i] + g->pad_r[i]), (long long)span);
        int64_t out = (ceil_mode ? (room + g->s[i] - 1) / g->s[i] : room / g->s[i]) + 1;
        /* a window may not start inside the right padding */
        if (ceil_mode && (out - 1) * g->s[i] >= g->in[i] + g->pad_l[i])
            out--;
        g->out[i] = out;
    }
    return NULL;
}

void pool_widen(const pool_geom *g, pool3 *w)
{
    int off = 3 - g->nsp;
    for (int i = 0; i < 3; i++) {
        int j = i - off;
        w->in[i] = j >= 0 ? g->in[j] : 1;
        w->out[i] = j >= 0 ? g->out[j] : 1;
        w->k[i] = j >= 0 ? g->k[j] : 1;
        w->s[i] = j >= 0 ? g->s[j] : 1;
        w->d[i] = j >= 0 ? g->d[j] : 1;
        w->p[i] = j >= 0 ? g->pad_l[j] : 0;
        w->pr[i] = j >= 0 ? g->pad_r[j] : 0;
    }
}
