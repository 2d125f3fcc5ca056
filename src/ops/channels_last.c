/* ChannelsLastSlices on the CPU (see src/ops/channels_last.h): per output, a
 * 2-D transpose of its channel slice with the activation applied on the way
 * (op_activation_scalar, the math of the stand-alone activation ops). */
#include "ops/channels_last.h"

#include <string.h>

int cls_perm_is_channels_last(const int64_t *perm, int rank)
{
    if (rank != 4)
        return 0;
    static const int64_t order[3] = {2, 3, 1}; /* H, W, C: the axes other than the batch, in order */
    int seen = 0, k = 0;
    for (int d = 0; d < 4; d++) {
        if (perm[d] < 0 || perm[d] > 3 || (seen & (1 << perm[d])))
            return 0;
        seen |= 1 << perm[d];
        if (perm[d] != 0 && perm[d] != order[k++])
            return 0;
    }
    return 1;
}

static fg_status *read_list(const op_call *call, const char *name, int n, const int64_t **values)
{
    if (ir_attr_ints(call->node, name, values) != n)
        return op_error(call, FG_ERR_CORRUPT, "attribute %s needs %d values, one per output", name, n);
    return NULL;
}

fg_status *cls_geometry(const op_call *call, cls_geom *g)
{
    memset(g, 0, sizeof *g);
    const fg_tensor *x = &call->in[0];
    if (call->n_in != 1 || call->n_out < 1 || call->n_out > CLS_MAX_OUTPUTS)
        return op_error(call, FG_ERR_CORRUPT, "expects one input and 1 to %d outputs", CLS_MAX_OUTPUTS);
    if (x->dtype != FG_FLOAT32)
        return op_error(call, FG_ERR_DTYPE, "x has dtype %s; only float32 is supported", fg_dtype_name(x->dtype));
    if (x->rank != 4 || x->dims[0] != 1)
        return op_error(call, FG_ERR_SHAPE, "x must be [1, C, H, W]");
    g->n = call->n_out;
    g->c = x->dims[1];
    g->h = x->dims[2];
    g->w = x->dims[3];
    const int64_t *perm, *offsets, *channels, *acts;
    const float *params = NULL;
    if (ir_attr_ints(call->node, "perm", &perm) != 4 || !cls_perm_is_channels_last(perm, 4))
        return op_error(call, FG_ERR_CORRUPT, "attribute perm must put H, W and C last in that order");
    memcpy(g->perm, perm, sizeof g->perm);
    FG_TRY(read_list(call, "channel_offsets", g->n, &offsets));
    FG_TRY(read_list(call, "channels", g->n, &channels));
    FG_TRY(read_list(call, "activations", g->n, &acts));
    if (ir_attr_floats(call->node, "activation_params", &params) != 2 * g->n)
        return op_error(call, FG_ERR_CORRUPT, "attribute activation_params needs 2 values per output");
    int64_t total = 0;
    for (int j = 0; j < g->n; j++) {
        if (offsets[j] < 0 || channels[j] < 1 || offsets[j] + channels[j] > g->c)
            return op_error(call, FG_ERR_CORRUPT, "output %d's channels %lld..%lld are not within x's %lld", j,
                            (long long)offsets[j], (long long)(offsets[j] + channels[j] - 1), (long long)g->c);
        if (acts[j] < OP_ACT_NONE || acts[j] > OP_ACT_SILU)
            return op_error(call, FG_ERR_CORRUPT, "output %d has unknown activation %lld", j, (long long)acts[j]);
        g->offset[j] = offsets[j];
        g->channels[j] = channels[j];
        g->act[j] = (op_activation){(op_act_kind)acts[j], params[2 * j], params[2 * j + 1]};
        total += channels[j];
    }
    if (total > CLS_MAX_CHANNELS)
        return op_error(call, FG_ERR_UNSUPPORTED, "more than %d channels in all", CLS_MAX_CHANNELS);
    return NULL;
}

fg_status *cls_infer(op_call *call)
{
    cls_geom g;
    FG_TRY(cls_geometry(call, &g));
    for (int j = 0; j < g.n; j++) {
        const int64_t in_dims[4] = {1, g.channels[j], g.h, g.w};
        fg_tensor *y = &call->out[j];
        y->dtype = FG_FLOAT32;
        y->rank = 4;
        for (int d = 0; d < 4; d++)
            y->dims[d] = in_dims[g.perm[d]];
    }
    return NULL;
}

fg_status *cls_run(op_call *call)
{
    cls_geom g;
    FG_TRY(cls_geometry(call, &g));
    const int64_t plane = g.h * g.w;
    const float *x = call->in[0].data;
    for (int j = 0; j < g.n; j++) {
        float *y = call->out[j].data;
        const int64_t cj = g.channels[j];
        const float *src = x + g.offset[j] * plane;
        for (int64_t i = 0; i < plane; i++)
            for (int64_t c = 0; c < cj; c++)
                y[i * cj + c] = op_activation_scalar(&g.act[j], src[c * plane + i]);
    }
    return NULL;
}
