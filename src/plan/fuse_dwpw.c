/* Depthwise -> pointwise fusion: a depthwise 3x3 convolution A (group ==
 * C_in == C_out, stride 1 or 2, pads 0 or 1, dilation 1, constant weights,
 * any fused activation, no fused residual) whose output is read only by a
 * pointwise convolution B (1x1, group 1, stride 1, no pads, constant
 * weights, any fused activation and residual) becomes one
 * FusedDepthwisePointwise step (src/ops/conv_dwpw.h): on the GPU one kernel
 * instead of two, and the depthwise output never goes through memory.
 *
 * The fused step takes B's place in the step order (B's residual exists by
 * then, and A's input long before); A goes. Float32 only; both channel counts
 * at most DWPW_MAX_CHANNELS (what the CUDA kernel holds in shared memory).
 * Off unless FACEGRAPH_FUSE_DWPW=1: on an H100 the fused kernel measured
 * slower than the two kernels it replaces (pfld_68 0.81 vs 0.18 ms). */
#include "plan/plan_internal.h"

#include "ops/conv_dwpw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fusable_depthwise(const plan *p, const plan_step *a, const conv_geom *g)
{
    if (a->n_in > 3 && a->in[3] >= 0) /* a fused residual */
        return 0;
    if (g->group != g->c_in || g->c_out != g->c_in || g->c_in > DWPW_MAX_CHANNELS)
        return 0;
    for (int k = 0; k < 2; k++)
        if (g->kernel[k] != 3 || g->dilation[k] != 1 || (g->stride[k] != 1 && g->stride[k] != 2) ||
            g->pad_l[k] < 0 || g->pad_l[k] > 1 || g->pad_r[k] < 0 || g->pad_r[k] > 1)
            return 0;
    return 1;
}

static int fusable_pointwise(const plan *p, const plan_step *b, const conv_geom *g, int mid)
{
    if (b->in[0] != mid || g->group != 1 || g->c_out > DWPW_MAX_CHANNELS)
        return 0;
    for (int k = 0; k < 2; k++)
        if (g->kernel[k] != 1 || g->stride[k] != 1 || g->pad_l[k] != 0 || g->pad_r[k] != 0)
            return 0;
    for (int k = 1; k < b->n_in; k++)
        if (b->in[k] == mid)
            return 0;
    if (b->n_in > 4)
        return 0;
    if (b->n_in > 3 && b->in[3] >= 0) {
        const fg_tensor *r = &p->values[b->in[3]].t, *y = &p->values[b->out[0]].t;
        if (!plan_value_plain_f32(p, b->in[3]) || !fg_shape_equal(r->rank, r->dims, y->rank, y->dims))
            return 0;
    }
    return 1;
}

/* The synthetic node of a fused pair and everything it points at. */
typedef struct dwpw_node {
    ir_node node;
    ir_attr attrs[4];
    int64_t strides[2], pads[4];
    float act_params[2];
    int inputs[6];
    int output;
    char name[200];
} dwpw_node;

/* Turns step bi (the pointwise convolution) into the fused step; step ai
 * (the depthwise one) goes. */
static fg_status *replace_pair(plan *p, int ai, int bi, const conv_geom *ga, char *removed)
{
    plan_step *a = &p->steps[ai], *b = &p->steps[bi];
    dwpw_node *dn;
    FG_TRY(plan_own_alloc(p, sizeof *dn, (void **)&dn));
    memset(dn, 0, sizeof *dn);
    snprintf(dn->name, sizeof dn->name, "%s+%s (depthwise+pointwise)", a->node->name ? a->node->name : "",
             b->node->name ? b->node->name : "");
    dn->strides[0] = ga->stride[0];
    dn->strides[1] = ga->stride[1];
    dn->pads[0] = ga->pad_l[0];
    dn->pads[1] = ga->pad_l[1];
    dn->pads[2] = ga->pad_r[0];
    dn->pads[3] = ga->pad_r[1];
    dn->act_params[0] = a->call.act.alpha;
    dn->act_params[1] = a->call.act.beta;
    dn->attrs[0] = (ir_attr){.name = "strides", .type = IR_ATTR_INTS, .n = 2, .ints = dn->strides};
    dn->attrs[1] = (ir_attr){.name = "pads", .type = IR_ATTR_INTS, .n = 4, .ints = dn->pads};
    dn->attrs[2] = (ir_attr){.name = "dw_activation", .type = IR_ATTR_INT, .i = a->call.act.kind};
    dn->attrs[3] = (ir_attr){.name = "dw_activation_params", .type = IR_ATTR_FLOATS, .n = 2,
                             .floats = dn->act_params};
    const int has_residual = b->n_in > 3 && b->in[3] >= 0;
    const int n_in = has_residual ? 6 : 5;
    dn->inputs[DWPW_IN_X] = a->in[0];
    dn->inputs[DWPW_IN_DW_W] = a->in[1];
    dn->inputs[DWPW_IN_DW_B] = a->n_in > 2 ? a->in[2] : -1;
    dn->inputs[DWPW_IN_PW_W] = b->in[1];
    dn->inputs[DWPW_IN_PW_B] = b->n_in > 2 ? b->in[2] : -1;
    dn->inputs[DWPW_IN_RESIDUAL] = has_residual ? b->in[3] : -1;
    dn->output = b->out[0];
    dn->node.name = dn->name;
    dn->node.op_type = DWPW_OP_TYPE;
    dn->node.domain = DWPW_DOMAIN;
    dn->node.n_inputs = n_in;
    dn->node.inputs = dn->inputs;
    dn->node.n_outputs = 1;
    dn->node.outputs = &dn->output;
    dn->node.n_attrs = 4;
    dn->node.attrs = dn->attrs;

    const int mid = a->out[0];
    /* the activation stays: it is the pointwise one */
    fg_status *st = plan_replace_step(p, b, &dn->node, op_find(DWPW_DOMAIN, DWPW_OP_TYPE), b->call.act);
    if (st)
        return fg_error_wrap(st, "fusing convolutions (a bug in facegraph)");
    p->values[mid].kind = PLAN_UNUSED;
    removed[ai] = 1;
    return NULL;
}

fg_status *fuse_depthwise_pointwise(plan *p, char *removed)
{
    const char *env = getenv("FACEGRAPH_FUSE_DWPW"); /* off by default: see plan_internal.h */
    if (!env || strcmp(env, "1") != 0)
        return NULL;
    plan_readers r;
    fg_status *st = plan_readers_count(p, removed, &r);
    const int *consumers = r.consumers, *reader = r.reader;
    for (int ai = 0; ai < p->n_steps && !st; ai++) {
        if (removed[ai])
            continue;
        const plan_step *a = &p->steps[ai];
        conv_geom ga, gb;
        if (!plan_conv2d_step(p, a, &ga) || !fusable_depthwise(p, a, &ga))
            continue;
        const int mid = a->out[0];
        const int bi = reader[mid];
        if (consumers[mid] != 1 || bi <= ai || removed[bi] || p->values[mid].kind != PLAN_ARENA)
            continue;
        const plan_step *b = &p->steps[bi];
        if (!plan_conv2d_step(p, b, &gb) || !fusable_pointwise(p, b, &gb, mid) || gb.c_in != ga.c_out)
            continue;
        st = replace_pair(p, ai, bi, &ga, removed);
    }
    plan_readers_free(&r);
    return st;
}
