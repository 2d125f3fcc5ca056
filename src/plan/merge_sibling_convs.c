/* Sibling convolutions merged into one.
 *
 * Detection heads run several small convolutions on one feature map: SCRFD
 * its class, box and landmark 3x3 convolutions (2, 8 and 20 channels from
 * 64) at each stride, YuNet four 1x1 convolutions (1, 4, 1 and 10 channels)
 * each followed by a 3x3 depthwise one. A single convolution with the
 * channels of all the siblings does the same arithmetic in one kernel, with
 * channel counts that tile better. It writes [1, C_total, H, W]; with batch
 * 1 in NCHW each sibling's output is a contiguous channel slice of that, so
 * each becomes a view (PLAN_ALIAS with an alias_offset) and nothing is
 * copied.
 *
 * Rule 1, one input: 2-D group-1 Conv steps that read the same value with
 * the same kernel, strides, pads and dilations and the same fused
 * activation, without a fused residual. Where exactly one of them has an
 * activation (SCRFD's class head ends in a sigmoid, its box and landmark
 * heads in none) and it is a plain one (Relu, Sigmoid, Tanh, HardSwish),
 * they merge without it, and that sibling's slice goes through a step of
 * the activation alone: an element-wise pass over a few channels costs
 * far less than a convolution of its own. That step takes a merged-away
 * sibling's place, before anything reads its output.
 * Rule 2, depthwise over slices: depthwise Conv steps (group == C_in ==
 * C_out) with the same geometry and activation whose inputs are channel
 * slices of one value (as rule 1 leaves them): one depthwise convolution
 * over the channel range they span (channels between them get zero
 * weights), whose output slices line up with the input's. YuNet's class and
 * objectness heads end in a sigmoid (fused into their depthwise step), its
 * box and landmark heads do not: they merge as two pairs, the first over a
 * gap of the box channels.
 *
 * Each slice starts on a 256-byte boundary (a sibling's channel count is
 * padded with zero-weight channels where the plane size needs it), since
 * later steps' cuDNN and cuBLAS choices assume aligned tensors; a group that
 * would need more than twice its channels for that (or for the gaps of rule
 * 2, beyond MERGE_DEPTHWISE_GAP channels) is left alone, as is any
 * convolution whose output is a model output. The merged step takes the
 * place of the first sibling (every sibling's input exists by then). */
#include "plan/plan_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MERGE_ALIGN 256 /* bytes: where each sibling's slice starts */
#define MERGE_MAX 16    /* siblings per merged convolution */
#define MERGE_DEPTHWISE_GAP 16 /* rule 2: channels between the slices it may compute for nothing */

typedef struct sibling {
    int step;
    conv_geom g;
    int64_t channel; /* first channel of its slice: in the merged output (rule 1), in the shared input (rule 2) */
} sibling;

static int same_geometry(const conv_geom *a, const conv_geom *b)
{
    for (int k = 0; k < 2; k++)
        if (a->in_sp[k] != b->in_sp[k] || a->kernel[k] != b->kernel[k] || a->stride[k] != b->stride[k] ||
            a->dilation[k] != b->dilation[k] || a->pad_l[k] != b->pad_l[k] || a->pad_r[k] != b->pad_r[k])
            return 0;
    return a->batch == b->batch;
}

static int same_activation(const op_activation *a, const op_activation *b)
{
    return a->kind == b->kind && a->alpha == b->alpha && a->beta == b->beta;
}

static int is_model_output(const plan *p, int id)
{
    for (int i = 0; i < p->n_outputs; i++)
        if (p->outputs[i] == id)
            return 1;
    return 0;
}

/* A convolution either rule may merge: 2-D, batch 1, no fused residual, an
 * arena output that is not a model output. */
static int mergeable(const plan *p, const char *removed, int i, conv_geom *g)
{
    const plan_step *s = &p->steps[i];
    return !removed[i] && plan_conv2d_step(p, s, g) && g->batch == 1 && !(s->n_in > 3 && s->in[3] >= 0) &&
           p->values[s->out[0]].kind == PLAN_ARENA && !is_model_output(p, s->out[0]);
}

static int is_depthwise(const conv_geom *g) { return g->group == g->c_in && g->c_out == g->c_in; }

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Channels per alignment step for planes of plane_bytes. */
static int64_t channel_step(int64_t plane_bytes) { return MERGE_ALIGN / gcd64(plane_bytes, MERGE_ALIGN); }

/* Adds a float32 constant of `count` zeros and the given dims; its id (and
 * its data in *data), or -1. */
static int add_zero_const(plan *p, int rank, const int64_t *dims, float **data, fg_status **st)
{
    int64_t count = 1;
    for (int d = 0; d < rank; d++)
        count *= dims[d];
    *st = plan_own_alloc(p, sizeof(float) * (size_t)(count ? count : 1), (void **)data);
    if (*st)
        return -1;
    memset(*data, 0, sizeof(float) * (size_t)count);
    int id = plan_add_const_value(p, FG_FLOAT32, rank, dims, *data);
    if (id < 0)
        *st = fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory while planning");
    return id;
}

/* A step of one activation (Relu, Sigmoid, ...) on a sibling's slice. */
typedef struct activation_node {
    ir_node node;
    int input, output;
    char name[220];
} activation_node;

/* The unary op that applies act on its own, or NULL. */
static const char *activation_op(const op_activation *act)
{
    switch (act->kind) {
    case OP_ACT_RELU: return "Relu";
    case OP_ACT_SIGMOID: return "Sigmoid";
    case OP_ACT_TANH: return "Tanh";
    case OP_ACT_HARD_SWISH: return "HardSwish";
    default: return NULL;
    }
}

/* The first step not removed that reads value id (n_steps when none does). */
static int first_reader(const plan *p, const char *removed, int id)
{
    for (int i = 0; i < p->n_steps; i++)
        for (int k = 0; !removed[i] && k < p->steps[i].n_in; k++)
            if (p->steps[i].in[k] == id)
                return i;
    return p->n_steps;
}

/* Makes the merged convolution, with activation act, in the first
 * sibling's place: input x, total output channels, group (1, or total for
 * depthwise), channel `sib[k].channel - first` of its output (and of its
 * weights) for sibling k; every sibling's output becomes a view of the
 * merged output, except sibling act_sibling's (-1: none), which a step of
 * its own activation writes from its slice, in step act_slot's place. */
static fg_status *merge_group(plan *p, char *removed, const sibling *sib, int n, int x, int64_t first, int64_t total,
                              int depthwise, op_activation act, int act_sibling, int act_slot)
{
    const conv_geom *g = &sib[0].g;
    const plan_step *s0 = &p->steps[sib[0].step];
    const int64_t taps = g->kernel[0] * g->kernel[1];
    const int64_t per_channel = (depthwise ? 1 : g->c_in) * taps;
    const int64_t w_dims[4] = {total, depthwise ? 1 : g->c_in, g->kernel[0], g->kernel[1]};
    fg_status *st = NULL;
    float *w, *b;
    int w_id = add_zero_const(p, 4, w_dims, &w, &st);
    if (w_id < 0)
        return st;
    int b_id = add_zero_const(p, 1, &total, &b, &st);
    if (b_id < 0)
        return st;
    for (int k = 0; k < n; k++) {
        const plan_step *s = &p->steps[sib[k].step];
        const int64_t at = sib[k].channel - first, c = sib[k].g.c_out;
        memcpy(w + at * per_channel, p->values[s->in[1]].t.data, sizeof(float) * (size_t)(c * per_channel));
        if (s->n_in > 2 && s->in[2] >= 0)
            memcpy(b + at, p->values[s->in[2]].t.data, sizeof(float) * (size_t)c);
    }
    int y = plan_add_value(p);
    if (y < 0)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory while planning");
    char name[200];
    snprintf(name, sizeof name, "%s+%d sibling%s (merged)", s0->node->name ? s0->node->name : "", n - 1,
             n > 2 ? "s" : "");
    const ir_node *node;
    FG_TRY(plan_conv_node(p, name, g, depthwise ? total : 1, x, w_id, b_id, y, &node));

    int outs[MERGE_MAX];
    for (int k = 0; k < n; k++)
        outs[k] = p->steps[sib[k].step].out[0];
    const op_activation act_alone = act_sibling >= 0 ? p->steps[sib[act_sibling].step].call.act : act;
    const char *act_name = act_sibling >= 0 ? p->steps[sib[act_sibling].step].node->name : NULL;
    plan_step *s = &p->steps[sib[0].step];
    st = plan_replace_step(p, s, node, op_find("", "Conv"), act);
    if (st)
        return fg_error_wrap(st, "merging sibling convolutions (a bug in facegraph)");
    plan_value *v = &p->values[y];
    v->kind = PLAN_ARENA;
    v->t = s->out_t[0];
    v->t.data = NULL;
    v->bytes = fg_tensor_nbytes(&v->t);
    const int64_t plane_bytes = (int64_t)sizeof(float) * v->t.dims[2] * v->t.dims[3];
    for (int k = 0; k < n; k++) {
        if (k)
            removed[sib[k].step] = 1;
        if (k == act_sibling)
            continue;
        plan_value *o = &p->values[outs[k]];
        o->kind = PLAN_ALIAS;
        o->alias_of = y;
        o->alias_offset = (sib[k].channel - first) * plane_bytes;
    }
    p->n_merged_convs += n - 1;
    if (act_sibling < 0)
        return NULL;
    /* the activation sibling: its slice of the merged output -> the activation -> its output */
    int slice = plan_add_value(p);
    if (slice < 0)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory while planning");
    plan_value *sv = &p->values[slice];
    sv->kind = PLAN_ALIAS;
    sv->t = p->values[outs[act_sibling]].t;
    sv->t.data = NULL;
    sv->bytes = fg_tensor_nbytes(&sv->t);
    sv->alias_of = y;
    sv->alias_offset = (sib[act_sibling].channel - first) * plane_bytes;
    activation_node *an;
    FG_TRY(plan_own_alloc(p, sizeof *an, (void **)&an));
    memset(an, 0, sizeof *an);
    snprintf(an->name, sizeof an->name, "%s (its activation, after the merge)", act_name ? act_name : "");
    an->input = slice;
    an->output = outs[act_sibling];
    an->node.name = an->name;
    an->node.op_type = (char *)activation_op(&act_alone);
    an->node.domain = "";
    an->node.n_inputs = 1;
    an->node.inputs = &an->input;
    an->node.n_outputs = 1;
    an->node.outputs = &an->output;
    removed[act_slot] = 0;
    const op_activation none = {OP_ACT_NONE, 0.0f, 0.0f};
    st = plan_replace_step(p, &p->steps[act_slot], &an->node, op_find("", an->node.op_type), none);
    return st ? fg_error_wrap(st, "merging sibling convolutions (a bug in facegraph)") : NULL;
}

/* Rule 1's channel layout: sibling k's slice starts at sib[k].channel, each
 * but the last padded to a multiple of step channels; 1 with the total in
 * *total when that at most doubles the channels. */
static int lay_out_slices(sibling *sib, int n, int64_t step, int64_t *total)
{
    int64_t real = 0;
    *total = 0;
    for (int k = 0; k < n; k++) {
        sib[k].channel = *total;
        *total += k + 1 < n ? (sib[k].g.c_out + step - 1) / step * step : sib[k].g.c_out;
        real += sib[k].g.c_out;
    }
    return *total <= 2 * real;
}

/* Rule 1: group-1 convolutions reading the same value. */
static fg_status *merge_same_input(plan *p, char *removed)
{
    for (int i = 0; i < p->n_steps; i++) {
        sibling sib[MERGE_MAX];
        if (!mergeable(p, removed, i, &sib[0].g) || sib[0].g.group != 1)
            continue;
        sib[0].step = i;
        const plan_step *s0 = &p->steps[i];
        /* every sibling of the same geometry; then, unless exactly one has a plain activation and
           the rest none, those with s0's activation */
        int n = 1, n_act = s0->call.act.kind != OP_ACT_NONE, act_sibling = n_act ? 0 : -1;
        for (int j = i + 1; j < p->n_steps && n < MERGE_MAX; j++) {
            const plan_step *s = &p->steps[j];
            if (s->n_in < 1 || s->in[0] != s0->in[0] || !mergeable(p, removed, j, &sib[n].g) ||
                sib[n].g.group != 1 || !same_geometry(&sib[0].g, &sib[n].g))
                continue;
            if (s->call.act.kind != OP_ACT_NONE) {
                n_act++;
                act_sibling = n;
            }
            sib[n++].step = j;
        }
        const int64_t step = channel_step((int64_t)sizeof(float) * sib[0].g.out_sp[0] * sib[0].g.out_sp[1]);
        int64_t total = 0;
        int act_slot = -1;
        if (n_act == 1 && n > 1 && activation_op(&p->steps[sib[act_sibling].step].call.act)) {
            /* the activation step's place: its own, or (the first sibling's) the next sibling's */
            act_slot = sib[act_sibling > 0 ? act_sibling : 1].step;
            if (act_slot >= first_reader(p, removed, p->steps[sib[act_sibling].step].out[0]) ||
                !lay_out_slices(sib, n, step, &total))
                act_slot = -1;
        }
        if (act_slot < 0) {
            int kept = 1;
            for (int k = 1; k < n; k++)
                if (same_activation(&s0->call.act, &p->steps[sib[k].step].call.act))
                    sib[kept++] = sib[k];
            n = kept;
            act_sibling = -1;
            if (n < 2 || !lay_out_slices(sib, n, step, &total))
                continue;
        }
        const op_activation none = {OP_ACT_NONE, 0.0f, 0.0f};
        FG_TRY(merge_group(p, removed, sib, n, s0->in[0], 0, total, 0, act_sibling >= 0 ? none : s0->call.act,
                           act_sibling, act_slot));
    }
    return NULL;
}

static int by_channel(const void *a, const void *b)
{
    int64_t ca = ((const sibling *)a)->channel, cb = ((const sibling *)b)->channel;
    return ca < cb ? -1 : ca > cb;
}

/* Rule 2: depthwise convolutions reading channel slices of one value. */
static fg_status *merge_depthwise_slices(plan *p, char *removed)
{
    for (int i = 0; i < p->n_steps; i++) {
        sibling sib[MERGE_MAX];
        int parent;
        if (!mergeable(p, removed, i, &sib[0].g) || !is_depthwise(&sib[0].g) ||
            !plan_channel_slice(p, p->steps[i].in[0], &parent, &sib[0].channel))
            continue;
        sib[0].step = i;
        const plan_step *s0 = &p->steps[i];
        int n = 1;
        for (int j = i + 1; j < p->n_steps && n < MERGE_MAX; j++) {
            const plan_step *s = &p->steps[j];
            int parent_j;
            if (s->n_in < 1 || s->in[0] < 0 || !mergeable(p, removed, j, &sib[n].g) || !is_depthwise(&sib[n].g) ||
                !plan_channel_slice(p, s->in[0], &parent_j, &sib[n].channel) || parent_j != parent ||
                !same_geometry(&sib[0].g, &sib[n].g) || !same_activation(&s0->call.act, &s->call.act))
                continue;
            sib[n++].step = j;
        }
        if (n < 2)
            continue;
        qsort(sib, (size_t)n, sizeof *sib, by_channel);
        int overlap = 0;
        int64_t real = 0;
        for (int k = 0; k < n; k++) {
            real += sib[k].g.c_out;
            overlap |= k + 1 < n && sib[k].channel + sib[k].g.c_out > sib[k + 1].channel;
        }
        const int64_t first = sib[0].channel, total = sib[n - 1].channel + sib[n - 1].g.c_out - first;
        const int64_t out_plane = (int64_t)sizeof(float) * sib[0].g.out_sp[0] * sib[0].g.out_sp[1];
        int aligned = 1;
        for (int k = 0; k < n; k++)
            aligned &= (sib[k].channel - first) * out_plane % MERGE_ALIGN == 0;
        if (overlap || !aligned || (total > 2 * real && total - real > MERGE_DEPTHWISE_GAP))
            continue;
        /* the merged input: the parent, or a view of the channels the siblings span */
        int x = parent;
        const plan_value *pv = &p->values[parent];
        if (first != 0 || total != pv->t.dims[1]) {
            const int64_t in_plane = (int64_t)sizeof(float) * pv->t.dims[2] * pv->t.dims[3];
            if (first * in_plane % MERGE_ALIGN)
                continue;
            fg_tensor t = pv->t;
            t.dims[1] = total;
            t.data = NULL;
            x = plan_add_value(p);
            if (x < 0)
                return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory while planning");
            plan_value *v = &p->values[x];
            v->kind = PLAN_ALIAS;
            v->t = t;
            v->bytes = fg_tensor_nbytes(&t);
            v->alias_of = parent;
            v->alias_offset = first * in_plane;
        }
        /* the first sibling in step order takes the merged step's place */
        int lead = 0;
        for (int k = 1; k < n; k++)
            if (sib[k].step < sib[lead].step)
                lead = k;
        sibling t = sib[0];
        sib[0] = sib[lead];
        sib[lead] = t;
        FG_TRY(merge_group(p, removed, sib, n, x, first, total, 1, p->steps[sib[0].step].call.act, -1, -1));
    }
    return NULL;
}

fg_status *merge_sibling_convs(plan *p, char *removed)
{
    const char *env = getenv("FACEGRAPH_MERGE_SIBLINGS");
    if (env && strcmp(env, "0") == 0)
        return NULL;
    FG_TRY(merge_same_input(p, removed));
    return merge_depthwise_slices(p, removed);
}
