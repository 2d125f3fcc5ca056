/* Channels-last transposes of channel slices of one value, as one step.
 *
 * After merge_sibling_convs, a detection head is one convolution whose
 * output's channel slices are its siblings' outputs, and each slice goes
 * channels-last through a Transpose of its own (SCRFD: [1, c, H, W] ->
 * [H, W, 1, c] for its class, box and landmark outputs, the class slice
 * first through a sigmoid). Those Transposes, and an activation step between
 * a slice and its Transpose, become one ChannelsLastSlices step
 * (src/ops/channels_last.h): per SCRFD head one kernel instead of four.
 *
 * A member: a Transpose (float32, static shapes, an arena output) whose
 * perm puts H, W, then C last (cls_perm_is_channels_last) and whose input
 * is a channel slice of a [1, C, H, W] value (plan_channel_slice), or the
 * output of an activation step (plan_activation_of) that only it reads and
 * whose input is such a slice. Members with the same value and perm form a
 * group; a group of two or more, or one with an activation, becomes one
 * step in the place of its earliest member step (the value exists by then,
 * and every output is written before anything that read it before). The
 * environment variable FACEGRAPH_MERGE_TRANSPOSES=0 turns the pass off. */
#include "plan/plan_internal.h"

#include "ops/channels_last.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct member {
    int step;     /* the Transpose */
    int act_step; /* the activation step before it, or -1 */
    int parent;   /* the value it takes channels of */
    int64_t channel, channels;
    op_activation act;
    const int64_t *perm;
} member;

/* The synthetic node of a group and everything it points at. */
typedef struct slices_node {
    ir_node node;
    ir_attr attrs[5];
    int64_t perm[4], offsets[CLS_MAX_OUTPUTS], channels[CLS_MAX_OUTPUTS], acts[CLS_MAX_OUTPUTS];
    float act_params[2 * CLS_MAX_OUTPUTS];
    int input;
    int outputs[CLS_MAX_OUTPUTS];
    char name[200];
} slices_node;

static int channels_last_transpose(const plan *p, const plan_step *s, const int64_t **perm)
{
    if (s->dynamic || s->control || strcmp(s->node->op_type, "Transpose") != 0 ||
        (s->node->domain && s->node->domain[0] && strcmp(s->node->domain, "ai.onnx") != 0) || s->n_in != 1 ||
        s->n_out != 1 || s->in[0] < 0 || s->out[0] < 0)
        return 0;
    const plan_value *y = &p->values[s->out[0]];
    return y->kind == PLAN_ARENA && plan_value_plain_f32(p, s->out[0]) && plan_value_plain_f32(p, s->in[0]) &&
           ir_attr_ints(s->node, "perm", perm) == 4 && cls_perm_is_channels_last(*perm, 4);
}

/* Step i as a member (1), or not (0). */
static int as_member(const plan *p, const char *removed, const int *consumers, const int *producer, int i,
                     member *m)
{
    const plan_step *s = &p->steps[i];
    if (removed[i] || !channels_last_transpose(p, s, &m->perm))
        return 0;
    m->step = i;
    m->act_step = -1;
    memset(&m->act, 0, sizeof m->act);
    int x = s->in[0];
    if (!plan_channel_slice(p, x, &m->parent, &m->channel)) {
        const int a = producer[x];
        if (a < 0 || removed[a] || consumers[x] != 1 || p->values[x].kind != PLAN_ARENA)
            return 0;
        const plan_step *as = &p->steps[a];
        if (as->n_out != 1 || as->n_in < 1 || as->in[0] < 0 || !plan_activation_of(p, as, &m->act) ||
            !plan_channel_slice(p, as->in[0], &m->parent, &m->channel))
            return 0;
        m->act_step = a;
        x = as->in[0];
    }
    m->channels = p->values[x].t.dims[1];
    return 1;
}

static fg_status *merge_group(plan *p, char *removed, const member *g, int n)
{
    slices_node *sn;
    FG_TRY(plan_own_alloc(p, sizeof *sn, (void **)&sn));
    memset(sn, 0, sizeof *sn);
    int slot = p->n_steps;
    for (int k = 0; k < n; k++) {
        slot = g[k].step < slot ? g[k].step : slot;
        slot = g[k].act_step >= 0 && g[k].act_step < slot ? g[k].act_step : slot;
        sn->offsets[k] = g[k].channel;
        sn->channels[k] = g[k].channels;
        sn->acts[k] = g[k].act.kind;
        sn->act_params[2 * k] = g[k].act.alpha;
        sn->act_params[2 * k + 1] = g[k].act.beta;
        sn->outputs[k] = p->steps[g[k].step].out[0];
    }
    memcpy(sn->perm, g[0].perm, sizeof sn->perm);
    snprintf(sn->name, sizeof sn->name, "%s+%d (channels-last slices)", p->steps[g[0].step].node->name, n - 1);
    sn->attrs[0] = (ir_attr){.name = "perm", .type = IR_ATTR_INTS, .n = 4, .ints = sn->perm};
    sn->attrs[1] = (ir_attr){.name = "channel_offsets", .type = IR_ATTR_INTS, .n = n, .ints = sn->offsets};
    sn->attrs[2] = (ir_attr){.name = "channels", .type = IR_ATTR_INTS, .n = n, .ints = sn->channels};
    sn->attrs[3] = (ir_attr){.name = "activations", .type = IR_ATTR_INTS, .n = n, .ints = sn->acts};
    sn->attrs[4] = (ir_attr){.name = "activation_params", .type = IR_ATTR_FLOATS, .n = 2 * n,
                             .floats = sn->act_params};
    sn->input = g[0].parent;
    sn->node.name = sn->name;
    sn->node.op_type = CLS_OP_TYPE;
    sn->node.domain = CLS_DOMAIN;
    sn->node.n_inputs = 1;
    sn->node.inputs = &sn->input;
    sn->node.n_outputs = n;
    sn->node.outputs = sn->outputs;
    sn->node.n_attrs = 5;
    sn->node.attrs = sn->attrs;
    for (int k = 0; k < n; k++) {
        removed[g[k].step] = 1;
        if (g[k].act_step >= 0) {
            p->values[p->steps[g[k].act_step].out[0]].kind = PLAN_UNUSED;
            removed[g[k].act_step] = 1;
        }
    }
    removed[slot] = 0;
    const op_activation none = {OP_ACT_NONE, 0.0f, 0.0f};
    fg_status *st = plan_replace_step(p, &p->steps[slot], &sn->node, op_find(CLS_DOMAIN, CLS_OP_TYPE), none);
    return st ? fg_error_wrap(st, "merging channels-last transposes (a bug in facegraph)") : NULL;
}

fg_status *merge_slice_transposes(plan *p, char *removed)
{
    const char *env = getenv("FACEGRAPH_MERGE_TRANSPOSES");
    if (env && strcmp(env, "0") == 0)
        return NULL;
    char *taken = calloc((size_t)p->n_steps + 1, 1);
    if (!taken)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory while planning");
    plan_readers r;
    fg_status *st = plan_readers_count(p, removed, &r);
    const int *consumers = r.consumers, *producer = r.producer;
    for (int i = 0; i < p->n_steps && !st; i++) {
        member g[CLS_MAX_OUTPUTS];
        if (taken[i] || !as_member(p, removed, consumers, producer, i, &g[0]))
            continue;
        int n = 1;
        int64_t channels = g[0].channels;
        for (int j = i + 1; j < p->n_steps && n < CLS_MAX_OUTPUTS; j++) {
            if (taken[j] || !as_member(p, removed, consumers, producer, j, &g[n]) || g[n].parent != g[0].parent ||
                memcmp(g[n].perm, g[0].perm, 4 * sizeof(int64_t)) != 0 ||
                channels + g[n].channels > CLS_MAX_CHANNELS)
                continue;
            channels += g[n].channels;
            taken[j] = 1;
            n++;
        }
        if (n > 1 || g[0].act_step >= 0) {
            st = merge_group(p, removed, g, n);
            if (!st)
                p->n_merged_transposes += n;
        }
    }
    plan_readers_free(&r);
    free(taken);
    return st;
}
