/* plan_for_signature: shapes, constant folding, dead-node removal, fusion,
 * arena layout. See plan.h. */
#include "plan/plan.h"
#include "plan/plan_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t align_up(size_t n) { return (n + PLAN_ARENA_ALIGN - 1) / PLAN_ARENA_ALIGN * PLAN_ARENA_ALIGN; }

static fg_status *own(plan *p, void *ptr)
{
    if (p->n_owned == p->cap_owned) {
        int cap = p->cap_owned ? p->cap_owned * 2 : 64;
        void **grown = realloc(p->owned, (size_t)cap * sizeof *grown);
        if (!grown)
            return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory while planning");
        p->owned = grown;
        p->cap_owned = cap;
    }
    p->owned[p->n_owned++] = ptr;
    return NULL;
}

static fg_status *own_alloc(plan *p, size_t bytes, void **out)
{
    void *ptr = fg_aligned_alloc(bytes);
    if (!ptr)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory: %zu bytes for a folded constant", bytes);
    fg_status *st = own(p, ptr);
    if (st) {
        fg_aligned_free(ptr);
        return st;
    }
    *out = ptr;
    return NULL;
}

fg_status *plan_own_alloc(plan *p, size_t bytes, void **out) { return own_alloc(p, bytes, out); }

void plan_readers_free(plan_readers *r)
{
    free(r->consumers);
    free(r->reader);
    free(r->producer);
    memset(r, 0, sizeof *r);
}

fg_status *plan_readers_count(const plan *p, const char *removed, plan_readers *r)
{
    const size_t n = (size_t)p->n_values + 1;
    r->consumers = malloc(sizeof(int) * n);
    r->reader = malloc(sizeof(int) * n);
    r->producer = malloc(sizeof(int) * n);
    if (!r->consumers || !r->reader || !r->producer) {
        plan_readers_free(r);
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory while planning");
    }
    int *consumers = r->consumers, *reader = r->reader, *producer = r->producer;
    for (int i = 0; i < p->n_values; i++) {
        consumers[i] = 0;
        reader[i] = -1;
        producer[i] = -1;
    }
    for (int i = 0; i < p->n_steps; i++) {
        if (removed[i])
            continue;
        const plan_step *s = &p->steps[i];
        for (int k = 0; k < s->n_out; k++)
            if (s->out[k] >= 0)
                producer[s->out[k]] = i;
        for (int k = 0; k < s->n_in; k++)
            if (s->in[k] >= 0) {
                consumers[s->in[k]]++;
                reader[s->in[k]] = i;
            }
    }
    for (int i = 0; i < p->n_outputs; i++)
        consumers[p->outputs[i]] += 2;
    return NULL;
}

int plan_value_plain_f32(const plan *p, int id)
{
    return id >= 0 && p->values[id].t.dtype == FG_FLOAT32 && !p->values[id].bounded &&
           p->values[id].kind != PLAN_UNUSED && p->values[id].kind != PLAN_DYNAMIC;
}

/* The channel slice that value id is of its alias parent: 1 with the parent
 * and the first channel, when id is a whole-plane channel slice of a
 * [1, C, H, W] value. */
int plan_channel_slice(const plan *p, int id, int *parent, int64_t *channel)
{
    const plan_value *v = &p->values[id];
    if (v->kind != PLAN_ALIAS || v->alias_of < 0)
        return 0;
    const plan_value *r = &p->values[v->alias_of];
    if (v->t.rank != 4 || r->t.rank != 4 || r->t.dtype != FG_FLOAT32 || r->t.dims[0] != 1 || v->t.dims[0] != 1 ||
        r->t.dims[2] != v->t.dims[2] || r->t.dims[3] != v->t.dims[3])
        return 0;
    const int64_t plane_bytes = (int64_t)sizeof(float) * r->t.dims[2] * r->t.dims[3];
    if (plane_bytes == 0 || v->alias_offset % plane_bytes)
        return 0;
    *parent = v->alias_of;
    *channel = v->alias_offset / plane_bytes;
    return *channel + v->t.dims[1] <= r->t.dims[1];
}

/* The synthetic Conv node of plan_conv_node and everything it points at. */
typedef struct conv_node {
    ir_node node;
    ir_attr attrs[5];
    int64_t kernel[2], strides[2], pads[4], dilations[2];
    int inputs[3];
    int output;
    char name[200];
} conv_node;

fg_status *plan_conv_node(plan *p, const char *name, const conv_geom *g, int64_t group, int x, int w, int b, int y,
                          const ir_node **out)
{
    conv_node *cn;
    FG_TRY(plan_own_alloc(p, sizeof *cn, (void **)&cn));
    memset(cn, 0, sizeof *cn);
    snprintf(cn->name, sizeof cn->name, "%s", name);
    for (int k = 0; k < 2; k++) {
        cn->kernel[k] = g->kernel[k];
        cn->strides[k] = g->stride[k];
        cn->dilations[k] = g->dilation[k];
        cn->pads[k] = g->pad_l[k];
        cn->pads[2 + k] = g->pad_r[k];
    }
    cn->attrs[0] = (ir_attr){.name = "kernel_shape", .type = IR_ATTR_INTS, .n = 2, .ints = cn->kernel};
    cn->attrs[1] = (ir_attr){.name = "strides", .type = IR_ATTR_INTS, .n = 2, .ints = cn->strides};
    cn->attrs[2] = (ir_attr){.name = "pads", .type = IR_ATTR_INTS, .n = 4, .ints = cn->pads};
    cn->attrs[3] = (ir_attr){.name = "dilations", .type = IR_ATTR_INTS, .n = 2, .ints = cn->dilations};
    cn->attrs[4] = (ir_attr){.name = "group", .type = IR_ATTR_INT, .i = group};
    cn->inputs[0] = x;
    cn->inputs[1] = w;
    cn->inputs[2] = b;
    cn->output = y;
    cn->node.name = cn->name;
    cn->node.op_type = "Conv";
    cn->node.domain = "";
    cn->node.n_inputs = b >= 0 ? 3 : 2;
    cn->node.inputs = cn->inputs;
    cn->node.n_outputs = 1;
    cn->node.outputs = &cn->output;
    cn->node.n_attrs = 5;
    cn->node.attrs = cn->attrs;
    *out = &cn->node;
    return NULL;
}

static int is_const_f32(const plan *p, int id)
{
    return id >= 0 && p->values[id].kind == PLAN_CONST && p->values[id].t.dtype == FG_FLOAT32 &&
           p->values[id].t.data != NULL;
}

int plan_conv2d_step(const plan *p, const plan_step *s, conv_geom *g)
{
    const char *domain = s->node->domain;
    if (s->dynamic || s->control || !s->op || strcmp(s->node->op_type, "Conv") != 0 ||
        (domain && domain[0] && strcmp(domain, "ai.onnx") != 0) || s->n_out != 1 || s->out[0] < 0 ||
        s->call.out_bounded || s->n_in < 2 || s->in[0] < 0 || s->in[1] < 0)
        return 0;
    if (!plan_value_plain_f32(p, s->in[0]) || !plan_value_plain_f32(p, s->out[0]) || !is_const_f32(p, s->in[1]))
        return 0;
    const int has_bias = s->n_in > 2 && s->in[2] >= 0;
    if (has_bias && !is_const_f32(p, s->in[2]))
        return 0;
    fg_tensor in[3];
    memset(in, 0, sizeof in);
    in[0] = p->values[s->in[0]].t;
    in[1] = p->values[s->in[1]].t;
    if (has_bias)
        in[2] = p->values[s->in[2]].t;
    op_call call = s->call;
    call.in = in;
    call.n_in = has_bias ? 3 : 2;
    fg_status *st = conv_geometry(&call, 0, g);
    if (st) {
        fg_status_free(st);
        return 0;
    }
    const fg_tensor *y = &p->values[s->out[0]].t;
    return g->nsp == 2 && in[0].rank == 4 && y->rank == 4 && y->dims[0] == g->batch && y->dims[1] == g->c_out &&
           y->dims[2] == g->out_sp[0] && y->dims[3] == g->out_sp[1];
}

int plan_add_value(plan *p)
{
    if (p->n_values == p->cap_values) {
        int cap = p->cap_values * 2;
        plan_value *grown = realloc(p->values, (size_t)cap * sizeof *grown);
        if (!grown)
            return -1;
        memset(grown + p->cap_values, 0, (size_t)(cap - p->cap_values) * sizeof *grown);
        p->values = grown;
        p->cap_values = cap;
    }
    int id = p->n_values++;
    plan_value *v = &p->values[id];
    memset(v, 0, sizeof *v);
    v->alias_of = -1;
    v->input_index = -1;
    v->first_step = v->last_step = -1;
    return id;
}

int plan_add_const_value(plan *p, fg_dtype dtype, int rank, const int64_t *dims, void *data)
{
    int id = plan_add_value(p);
    if (id < 0)
        return -1;
    plan_value *v = &p->values[id];
    v->kind = PLAN_CONST;
    v->t.dtype = dtype;
    v->t.rank = rank;
    memcpy(v->t.dims, dims, sizeof(int64_t) * (size_t)rank);
    v->t.data = data;
    v->bytes = fg_tensor_nbytes(&v->t);
    return id;
}

/* ------------------------------------------------------------- float16
 * Kernels compute in float32. A float16 model runs as ONNX Runtime's CPU
 * provider runs one: float16 weights become float32 constants, float16
 * inputs are converted on entry, Cast-to-float16 inside the graph becomes
 * Cast-to-float32, and float16 outputs are converted back on exit. */

static fg_status *float16_const_to_float32(plan *p, plan_value *v)
{
    if (v->kind != PLAN_CONST || v->t.dtype != FG_FLOAT16)
        return NULL;
    p->float16_model = 1;
    int64_t n = fg_tensor_numel(&v->t);
    float *f;
    FG_TRY(own_alloc(p, (size_t)(n ? n : 1) * sizeof(float), (void **)&f));
    for (int64_t i = 0; i < n; i++)
        f[i] = fg_half_to_float(((const uint16_t *)v->t.data)[i]);
    v->t.dtype = FG_FLOAT32;
    v->t.data = f;
    v->bytes = (size_t)n * sizeof(float);
    return NULL;
}

typedef struct synthetic_node {
    ir_node node;
    ir_attr *attrs;
    int io[2];
} synthetic_node;

/* A copy of `node` (sharing its strings) whose Cast target is float32. */
static fg_status *float32_cast_of(plan *p, const ir_node *node, const ir_node **out)
{
    synthetic_node *sn = NULL;
    FG_TRY(own_alloc(p, sizeof *sn + sizeof(ir_attr) * (size_t)(node->n_attrs + 1), (void **)&sn));
    memset(sn, 0, sizeof *sn);
    sn->node = *node;
    sn->attrs = (ir_attr *)(sn + 1);
    memcpy(sn->attrs, node->attrs, sizeof(ir_attr) * (size_t)node->n_attrs);
    for (int a = 0; a < node->n_attrs; a++)
        if (!strcmp(sn->attrs[a].name, "to"))
            sn->attrs[a].i = FG_FLOAT32;
    sn->node.attrs = sn->attrs;
    *out = &sn->node;
    return NULL;
}

static fg_status *plan_node(plan *p, const ir_model *model, const ir_node *node, const op_def *op,
                            const int *remap);

/* Adds a Cast step from value `from` to dtype `to`; *out is the new value. */
static fg_status *add_cast_step(plan *p, const ir_model *model, int from, fg_dtype to, int *out)
{
    synthetic_node *sn = NULL;
    FG_TRY(own_alloc(p, sizeof *sn + sizeof(ir_attr), (void **)&sn));
    memset(sn, 0, sizeof *sn + sizeof(ir_attr));
    sn->attrs = (ir_attr *)(sn + 1);
    sn->attrs[0].name = "to";
    sn->attrs[0].type = IR_ATTR_INT;
    sn->attrs[0].i = to;
    int id = plan_add_value(p);
    if (id < 0)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory while planning");
    sn->io[0] = from;
    sn->io[1] = id;
    sn->node.name = "float16 conversion";
    sn->node.op_type = "Cast";
    sn->node.domain = "";
    sn->node.n_inputs = 1;
    sn->node.inputs = &sn->io[0];
    sn->node.n_outputs = 1;
    sn->node.outputs = &sn->io[1];
    sn->node.n_attrs = 1;
    sn->node.attrs = sn->attrs;
    *out = id;
    return plan_node(p, model, &sn->node, op_find("", "Cast"), NULL);
}

int plan_value_root(const plan *p, int id)
{
    while (id >= 0 && p->values[id].kind == PLAN_ALIAS)
        id = p->values[id].alias_of;
    return id;
}

int64_t plan_value_offset(const plan *p, int id)
{
    int64_t offset = 0;
    while (id >= 0 && p->values[id].kind == PLAN_ALIAS) {
        offset += p->values[id].alias_offset;
        id = p->values[id].alias_of;
    }
    return offset;
}

size_t plan_output_bytes(const plan *p, int id)
{
    const plan_value *root = &p->values[plan_value_root(p, id)];
    if (root->kind == PLAN_ARENA && plan_value_offset(p, id) == 0)
        return root->bytes;
    return fg_tensor_nbytes(&p->values[id].t);
}

int plan_step_is_view(const plan *p, const plan_step *s)
{
    /* (a value of the arena placed in a Concat's output is an alias too, of that output: its step runs) */
    return s->out[0] >= 0 && s->n_in > 0 && p->values[s->out[0]].kind == PLAN_ALIAS &&
           p->values[s->out[0]].alias_of == s->in[0];
}

void *plan_value_data(const plan *p, int id)
{
    const plan_value *v = &p->values[plan_value_root(p, id)];
    switch (v->kind) {
    case PLAN_CONST:
    case PLAN_INPUT: return v->t.data;
    case PLAN_ARENA: return (char *)p->arena + v->offset + plan_value_offset(p, id);
    case PLAN_DYNAMIC: return v->heap;
    default: return NULL;
    }
}

static void step_release(plan_step *s)
{
    if (s->prepared && s->op && s->op->release && s->call.state)
        s->op->release(s->call.state);
    s->call.state = NULL;
    s->prepared = 0;
}

void plan_free(plan *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n_steps; i++) {
        step_release(&p->steps[i]);
        for (plan_subplan *sp = p->steps[i].subplans; sp;) {
            plan_subplan *next = sp->next;
            plan_free(sp->plan);
            free(sp);
            sp = next;
        }
        free(p->steps[i].in);
        free(p->steps[i].out);
        free(p->steps[i].in_t);
        free(p->steps[i].out_t);
    }
    for (int i = 0; i < p->n_values; i++)
        free(p->values[i].heap);
    for (int i = 0; i < p->n_owned; i++)
        fg_aligned_free(p->owned[i]);
    free(p->owned);
    fg_aligned_free(p->dynamic_scratch);
    free(p->steps);
    free(p->values);
    free(p->signature);
    free(p->outputs);
    fg_aligned_free(p->arena);
    free(p);
}

/* Fills the step's op_call input views from the plan values (data only for
 * constants: the planner never has run-time data). */
static void bind_plan_inputs(plan *p, plan_step *s)
{
    for (int i = 0; i < s->n_in; i++) {
        fg_tensor *t = &s->in_t[i];
        int id = s->in[i];
        if (id < 0) {
            memset(t, 0, sizeof *t);
            continue;
        }
        const plan_value *v = &p->values[plan_value_root(p, id)];
        *t = p->values[id].t;
        t->data = v->kind == PLAN_CONST ? v->t.data : NULL;
    }
}

static fg_status *make_step(plan *p, const ir_model *model, const ir_node *node, const op_def *op, plan_step *s)
{
    memset(s, 0, sizeof *s);
    s->op = op;
    s->node = node;
    s->n_in = node->n_inputs;
    s->n_out = node->n_outputs;
    int in_cap = s->n_in < 3 ? 3 : s->n_in; /* Conv may gain a bias when BN folds */
    s->in = calloc((size_t)in_cap, sizeof *s->in);
    s->out = calloc((size_t)(s->n_out ? s->n_out : 1), sizeof *s->out);
    s->in_t = calloc((size_t)in_cap, sizeof *s->in_t);
    s->out_t = calloc((size_t)(s->n_out ? s->n_out : 1), sizeof *s->out_t);
    if (!s->in || !s->out || !s->in_t || !s->out_t)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory while planning");
    memcpy(s->in, node->inputs, sizeof(int) * (size_t)s->n_in);
    memcpy(s->out, node->outputs, sizeof(int) * (size_t)s->n_out);
    s->call.node = node;
    s->call.opset = model->opset;
    s->call.n_in = s->n_in;
    s->call.n_out = s->n_out;
    s->call.in = s->in_t;
    s->call.out = s->out_t;
    s->call.threads = p->threads;
    return NULL;
}

fg_status *plan_replace_step(plan *p, plan_step *s, const ir_node *node, const op_def *op, op_activation act)
{
    if (!op)
        return fg_error(FG_ERR_INTERNAL, "node '%s': op %s is not registered", node->name, node->op_type);
    step_release(s);
    free(s->in);
    free(s->out);
    free(s->in_t);
    free(s->out_t);
    FG_TRY(make_step(p, p->model, node, op, s));
    bind_plan_inputs(p, s);
    s->call.act = act;
    return s->op->infer(&s->call);
}

/* Runs a node whose inputs are all constant, making its outputs constants. */
static fg_status *fold_step(plan *p, plan_step *s)
{
    int64_t capacity = s->call.out_bounded ? s->out_t[0].dims[s->call.out_bounded - 1] : 0;
    for (int j = 0; j < s->n_out; j++) {
        if (s->out[j] < 0)
            continue;
        size_t bytes = fg_tensor_nbytes(&s->out_t[j]);
        FG_TRY(own_alloc(p, bytes ? bytes : 1, &s->out_t[j].data));
    }
    void *scratch = NULL;
    fg_status *st = NULL;
    if (s->op->prepare)
        st = s->op->prepare(&s->call);
    s->prepared = 1;
    if (!st && s->call.scratch_bytes) {
        scratch = fg_aligned_alloc(s->call.scratch_bytes);
        if (!scratch)
            st = fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory folding a constant");
    }
    s->call.scratch = scratch;
    if (!st)
        st = s->op->run(&s->call);
    fg_aligned_free(scratch);
    s->call.scratch = NULL;
    step_release(s);
    if (st)
        return st;
    for (int j = 0; j < s->n_out; j++) {
        int id = s->out[j];
        if (id < 0)
            continue;
        plan_value *v = &p->values[id];
        if (s->call.out_bounded) /* folded: its length is known now */
            plan_compact_bounded(&s->out_t[j], s->call.out_bounded - 1, capacity);
        v->kind = PLAN_CONST;
        v->t = s->out_t[j];
        v->bytes = fg_tensor_nbytes(&v->t);
        FG_TRY(float16_const_to_float32(p, v));
    }
    p->n_folded++;
    return NULL;
}

/* ------------------------------------------------------------- fusion */

typedef struct fusion_ctx {
    plan *p;
    int *producer;  /* value id -> step index or -1 */
    int *consumers; /* value id -> number of consuming steps (+1 if a model output) */
    char *removed;  /* step index -> removed */
} fusion_ctx;

static int only_consumer(const fusion_ctx *f, int value, int *step_index)
{
    if (f->consumers[value] != 1)
        return 0;
    for (int i = 0; i < f->p->n_steps; i++) {
        if (f->removed[i])
            continue;
        const plan_step *s = &f->p->steps[i];
        for (int k = 0; k < s->n_in; k++)
            if (s->in[k] == value) {
                *step_index = i;
                return 1;
            }
    }
    return 0;
}

static int step_is(const plan_step *s, const char *op_type)
{
    return !s->dynamic && strcmp(s->node->op_type, op_type) == 0;
}

/* Per output channel o of a Conv with oc channels, the factor k[o] and
 * shift[o] that a BatchNormalization (constant parameters) or a Mul, Add or
 * Sub (conv - c) by a constant (a scalar, or one value per channel on axis
 * 1) applies to the conv's output y: k * y + shift. Step t reads y = the
 * conv's output; 0 when it is something else. */
static int affine_after_conv(const plan *p, const plan_step *t, int y, int64_t oc, float *k, float *shift)
{
    if (step_is(t, "BatchNormalization")) {
        if (t->in[0] != y || t->n_in < 5 || (t->n_out > 1 && t->out[1] >= 0))
            return 0;
        for (int q = 1; q < 5; q++)
            if (!is_const_f32(p, t->in[q]) || fg_tensor_numel(&p->values[t->in[q]].t) != oc)
                return 0;
        const float *scale = p->values[t->in[1]].t.data, *beta = p->values[t->in[2]].t.data;
        const float *mean = p->values[t->in[3]].t.data, *var = p->values[t->in[4]].t.data;
        const float eps = ir_attr_float(t->node, "epsilon", 1e-5f);
        for (int64_t o = 0; o < oc; o++) {
            k[o] = scale[o] / sqrtf(var[o] + eps);
            shift[o] = beta[o] - mean[o] * k[o];
        }
        return 1;
    }
    const int mul = step_is(t, "Mul"), add = step_is(t, "Add"), sub = step_is(t, "Sub");
    if (!(mul || add || sub) || t->n_in != 2 || t->n_out != 1)
        return 0;
    const int c = t->in[0] == y ? t->in[1] : t->in[0];
    if ((t->in[0] != y && t->in[1] != y) || c == y || (sub && t->in[0] != y) || !is_const_f32(p, c))
        return 0;
    /* the constant broadcasts along axis 1 only, and the result keeps y's shape */
    const fg_tensor *ct = &p->values[c].t, *yt = &p->values[y].t, *zt = &p->values[t->out[0]].t;
    if (ct->rank > yt->rank || !fg_shape_equal(zt->rank, zt->dims, yt->rank, yt->dims) || zt->dtype != FG_FLOAT32)
        return 0;
    const int64_t n = fg_tensor_numel(ct);
    for (int d = 0; d < ct->rank; d++) {
        const int axis = yt->rank - ct->rank + d;
        if (ct->dims[d] != 1 && !(axis == 1 && ct->dims[d] == oc))
            return 0;
    }
    const float *v = ct->data;
    for (int64_t o = 0; o < oc; o++) {
        const float x = v[n == 1 ? 0 : o];
        k[o] = mul ? x : 1.0f;
        shift[o] = mul ? 0.0f : sub ? -x : x;
    }
    return 1;
}

/* Conv (no activation yet) -> BatchNormalization, or Mul / Add / Sub by a
 * constant per channel (SCRFD scales its box outputs by the stride): the
 * conv's weights become w * k and its bias b * k + shift, and it writes
 * the folded step's output. Repeats while such a step follows. */
static fg_status *fold_into_conv(fusion_ctx *f)
{
    plan *p = f->p;
    float *k = NULL, *shift = NULL;
    fg_status *st = NULL;
    for (int i = 0; i < p->n_steps && !st; i++) {
        plan_step *c = &p->steps[i];
        int ti;
        while (!f->removed[i] && step_is(c, "Conv") && c->call.act.kind == OP_ACT_NONE &&
               is_const_f32(p, c->in[1]) && !(c->n_in > 2 && c->in[2] >= 0 && !is_const_f32(p, c->in[2])) &&
               p->values[c->in[1]].t.rank >= 1 && only_consumer(f, c->out[0], &ti)) {
            const fg_tensor *w = &p->values[c->in[1]].t;
            const int64_t oc = w->dims[0], per = oc ? fg_tensor_numel(w) / oc : 0;
            free(k);
            free(shift);
            k = malloc(sizeof(float) * (size_t)(oc + 1));
            shift = malloc(sizeof(float) * (size_t)(oc + 1));
            if (!k || !shift) {
                st = fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory while planning");
                break;
            }
            plan_step *t = &p->steps[ti];
            if (!affine_after_conv(p, t, c->out[0], oc, k, shift))
                break;
            const float *bias = (c->n_in > 2 && c->in[2] >= 0) ? p->values[c->in[2]].t.data : NULL;
            float *nw, *nb;
            if ((st = own_alloc(p, fg_tensor_nbytes(w), (void **)&nw)) ||
                (st = own_alloc(p, (size_t)oc * sizeof(float), (void **)&nb)))
                break;
            const float *ow = w->data;
            for (int64_t o = 0; o < oc; o++) {
                for (int64_t e = 0; e < per; e++)
                    nw[o * per + e] = ow[o * per + e] * k[o];
                nb[o] = (bias ? bias[o] : 0.0f) * k[o] + shift[o];
            }
            /* plan_add_const_value may move p->values (and w with it) */
            const int w_rank = w->rank;
            int64_t w_dims[FG_MAX_RANK];
            memcpy(w_dims, w->dims, sizeof w_dims);
            const int wid = plan_add_const_value(p, FG_FLOAT32, w_rank, w_dims, nw);
            const int bid = plan_add_const_value(p, FG_FLOAT32, 1, &oc, nb);
            if (wid < 0 || bid < 0) {
                st = fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory while folding into a convolution");
                break;
            }
            c->in[1] = wid;
            c->in[2] = bid;
            if (c->n_in < 3) {
                c->n_in = 3;
                c->call.n_in = 3;
            }
            p->values[c->out[0]].kind = PLAN_UNUSED;
            c->out[0] = t->out[0];
            f->producer[t->out[0]] = i;
            f->removed[ti] = 1;
            if (step_is(t, "BatchNormalization"))
                p->n_fused_bn++;
            else
                p->n_fused_scale++;
        }
    }
    free(k);
    free(shift);
    return st;
}

/* MatMul -> Add(constant row vector along the last axis): the bias becomes
 * MatMul's third input (a transformer's projections), added by the product's
 * epilogue (one cuBLASLt call on the GPU). */
static void fuse_matmul_bias(fusion_ctx *f)
{
    plan *p = f->p;
    for (int i = 0; i < p->n_steps; i++) {
        plan_step *m = &p->steps[i];
        if (f->removed[i] || !step_is(m, "MatMul") || m->n_in != 2 || m->call.act.kind != OP_ACT_NONE)
            continue;
        int y = m->out[0], ai;
        const fg_tensor *yt = &p->values[y].t;
        if (yt->dtype != FG_FLOAT32 || yt->rank < 1 || p->values[y].bounded || !only_consumer(f, y, &ai) ||
            !step_is(&p->steps[ai], "Add"))
            continue;
        plan_step *a = &p->steps[ai];
        if (a->n_in != 2 || (a->in[0] != y && a->in[1] != y))
            continue;
        int bias = a->in[0] == y ? a->in[1] : a->in[0];
        if (!is_const_f32(p, bias))
            continue;
        const fg_tensor *bt = &p->values[bias].t;
        int64_t n = yt->dims[yt->rank - 1];
        int row_vector = fg_tensor_numel(bt) == n && bt->rank <= yt->rank && bt->rank >= 1 &&
                         bt->dims[bt->rank - 1] == n;
        const fg_tensor *ot = &p->values[a->out[0]].t;
        if (!row_vector || !fg_shape_equal(ot->rank, ot->dims, yt->rank, yt->dims))
            continue;
        m->in[2] = bias;
        m->n_in = 3;
        m->call.n_in = 3;
        p->values[y].kind = PLAN_UNUSED;
        m->out[0] = a->out[0];
        f->producer[m->out[0]] = i;
        f->removed[ai] = 1;
    }
}

/* Conv -> Add(conv, residual) -> [activation] (a residual block): the
 * residual becomes the convolution's fourth input, added before the
 * activation: y = act(conv(x) + bias + residual). 2-D, group 1, float32.
 * The residual must exist when the convolution runs: of two convolutions
 * feeding the Add, the later one takes the other's output. Where the
 * residual comes after the convolution (a feature pyramid: lateral 1x1
 * conv + Resize(coarser level)), the convolution moves to the Add's place;
 * only the Add read its output, and its own inputs exist earlier still. */
static fg_status *fuse_conv_residual(fusion_ctx *f)
{
    plan *p = f->p;
    for (int ai = 0; ai < p->n_steps; ai++) {
        plan_step *a = &p->steps[ai];
        if (f->removed[ai] || !step_is(a, "Add") || a->n_in != 2 || a->n_out != 1 || a->in[0] < 0 ||
            a->in[1] < 0 || a->in[0] == a->in[1])
            continue;
        const fg_tensor *ot = &p->values[a->out[0]].t;
        if (ot->dtype != FG_FLOAT32 || ot->rank != 4 || p->values[a->out[0]].bounded)
            continue;
        int best = -1, residual = -1, moved = -1, moved_residual = -1;
        for (int k = 0; k < 2; k++) {
            int y = a->in[k], other = a->in[1 - k];
            int ci = f->producer[y];
            if (ci < 0 || f->removed[ci] || f->consumers[y] != 1 || p->values[other].bounded)
                continue;
            const plan_step *c = &p->steps[ci];
            if (!step_is(c, "Conv") || c->call.act.kind != OP_ACT_NONE || c->n_in > 3 ||
                ir_attr_int(c->node, "group", 1) != 1 || p->values[y].t.dtype != FG_FLOAT32)
                continue;
            const fg_tensor *yt = &p->values[y].t, *rt = &p->values[other].t;
            if (rt->dtype != FG_FLOAT32 || !fg_shape_equal(yt->rank, yt->dims, ot->rank, ot->dims) ||
                !fg_shape_equal(rt->rank, rt->dims, ot->rank, ot->dims))
                continue;
            if (f->producer[other] >= ci) {
                moved = ci;
                moved_residual = other;
            } else if (ci > best) {
                best = ci;
                residual = other;
            }
        }
        int add_at = ai;
        if (best < 0 && moved >= 0) {
            /* the conv takes the Add's place, the Add (removed below) the conv's */
            plan_step t = p->steps[ai];
            p->steps[ai] = p->steps[moved];
            p->steps[moved] = t;
            best = ai;
            add_at = moved;
            residual = moved_residual;
        }
        if (best < 0)
            continue;
        a = &p->steps[add_at];
        plan_step *c = &p->steps[best];
        int *in = realloc(c->in, sizeof(int) * 4);
        if (in)
            c->in = in;
        fg_tensor *in_t = in ? realloc(c->in_t, sizeof(fg_tensor) * 4) : NULL;
        if (!in_t)
            return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory while planning");
        c->in_t = in_t;
        c->call.in = in_t;
        for (int k = c->n_in; k < 3; k++) {
            c->in[k] = -1;
            memset(&c->in_t[k], 0, sizeof c->in_t[k]);
        }
        c->in[3] = residual;
        c->n_in = 4;
        c->call.n_in = 4;
        c->call.act = a->call.act;
        p->values[c->out[0]].kind = PLAN_UNUSED;
        c->out[0] = a->out[0];
        f->producer[c->out[0]] = best;
        f->removed[add_at] = 1;
        p->n_fused_residual++;
    }
    return NULL;
}

/* 1 when step s is ReduceMean(value) over every axis from 2 on, keeping them. */
static int is_spatial_mean(const plan *p, const plan_step *s, int value)
{
    if (!step_is(s, "ReduceMean") || s->n_out != 1 || s->in[0] != value || ir_attr_int(s->node, "keepdims", 1) != 1)
        return 0;
    int rank = p->values[value].t.rank;
    const int64_t *axes = NULL;
    int n = ir_attr_ints(s->node, "axes", &axes);
    if (!n && s->n_in > 1 && s->in[1] >= 0 && p->values[s->in[1]].kind == PLAN_CONST &&
        p->values[s->in[1]].t.dtype == FG_INT64) {
        n = (int)fg_tensor_numel(&p->values[s->in[1]].t);
        axes = p->values[s->in[1]].t.data;
    }
    if (n != rank - 2 || rank < 3)
        return 0;
    int seen = 0;
    for (int k = 0; k < n; k++) {
        int64_t a = axes[k] < 0 ? axes[k] + rank : axes[k];
        if (a < 2 || a >= rank || (seen & (1 << a)))
            return 0;
        seen |= 1 << a;
    }
    return 1;
}

/* The only consumer of value v, when it is an `op_type` step; -1 otherwise. */
static int sole_consumer_of_type(fusion_ctx *f, int v, const char *op_type)
{
    int k;
    if (v < 0 || !only_consumer(f, v, &k) || !step_is(&f->p->steps[k], op_type))
        return -1;
    return k;
}

/* Instance normalisation written out (inswapper's AdaIN, StyleGAN blocks):
 *   m = ReduceMean(x, spatial)  d = x - m  v = ReduceMean(d * d, spatial)
 *   y = d / Sqrt(v + eps)
 * becomes one InstanceNormalization(x, scale 1, bias 0, epsilon eps) step:
 * seven kernels become one. */
static fg_status *fuse_instance_norm(fusion_ctx *f)
{
    plan *p = f->p;
    for (int r1 = 0; r1 < p->n_steps; r1++) {
        plan_step *s1 = &p->steps[r1];
        if (f->removed[r1] || s1->n_in < 1 || s1->in[0] < 0)
            continue;
        int x = s1->in[0];
        const fg_tensor *xt = &p->values[x].t;
        if (xt->dtype != FG_FLOAT32 || !is_spatial_mean(p, s1, x))
            continue;
        int m = s1->out[0];
        int sub = sole_consumer_of_type(f, m, "Sub");
        if (sub < 0 || p->steps[sub].in[0] != x || p->steps[sub].in[1] != m ||
            p->steps[sub].call.act.kind != OP_ACT_NONE)
            continue;
        int d = p->steps[sub].out[0];
        if (f->consumers[d] != 3) /* Mul(d, d) reads it twice, Div once */
            continue;
        /* d's two readers: Mul(d, d) and Div(d, s) */
        int mul = -1, div = -1;
        for (int k = sub + 1; k < p->n_steps; k++) {
            if (f->removed[k])
                continue;
            const plan_step *s = &p->steps[k];
            if (step_is(s, "Mul") && s->n_in == 2 && s->in[0] == d && s->in[1] == d)
                mul = k;
            else if (step_is(s, "Div") && s->n_in == 2 && s->in[0] == d)
                div = k;
        }
        if (mul < 0 || div < 0 || p->steps[mul].call.act.kind != OP_ACT_NONE)
            continue;
        int r2 = sole_consumer_of_type(f, p->steps[mul].out[0], "ReduceMean");
        if (r2 < 0 || !is_spatial_mean(p, &p->steps[r2], p->steps[mul].out[0]))
            continue;
        int add = sole_consumer_of_type(f, p->steps[r2].out[0], "Add");
        if (add < 0 || p->steps[add].call.act.kind != OP_ACT_NONE)
            continue;
        const plan_step *sa = &p->steps[add];
        int v = p->steps[r2].out[0], eps_id = sa->in[0] == v ? sa->in[1] : sa->in[0];
        if (!is_const_f32(p, eps_id) || fg_tensor_numel(&p->values[eps_id].t) != 1)
            continue;
        float eps = *(const float *)p->values[eps_id].t.data;
        int sq = sole_consumer_of_type(f, sa->out[0], "Sqrt");
        if (sq < 0 || p->steps[div].in[1] != p->steps[sq].out[0] || f->consumers[p->steps[sq].out[0]] != 1)
            continue;
        int y = p->steps[div].out[0];
        const fg_tensor *yt = &p->values[y].t;
        if (!fg_shape_equal(yt->rank, yt->dims, xt->rank, xt->dims) || p->steps[div].call.act.kind != OP_ACT_NONE)
            continue;
        /* the InstanceNormalization step, in Div's place */
        int64_t c = xt->dims[1];
        float *ones, *zeros;
        FG_TRY(own_alloc(p, (size_t)(c ? c : 1) * sizeof(float), (void **)&ones));
        FG_TRY(own_alloc(p, (size_t)(c ? c : 1) * sizeof(float), (void **)&zeros));
        for (int64_t i = 0; i < c; i++) {
            ones[i] = 1.0f;
            zeros[i] = 0.0f;
        }
        int scale_id = plan_add_const_value(p, FG_FLOAT32, 1, &c, ones);
        int bias_id = plan_add_const_value(p, FG_FLOAT32, 1, &c, zeros);
        synthetic_node *sn = NULL;
        FG_TRY(own_alloc(p, sizeof *sn + sizeof(ir_attr) + 4 * sizeof(int), (void **)&sn));
        if (scale_id < 0 || bias_id < 0)
            return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory while planning");
        memset(sn, 0, sizeof *sn + sizeof(ir_attr) + 4 * sizeof(int));
        sn->attrs = (ir_attr *)(sn + 1);
        sn->attrs[0].name = "epsilon";
        sn->attrs[0].type = IR_ATTR_FLOAT;
        sn->attrs[0].f = eps;
        int *io = (int *)(sn->attrs + 1);
        io[0] = x;
        io[1] = scale_id;
        io[2] = bias_id;
        io[3] = y;
        sn->node.name = p->steps[div].node->name;
        sn->node.op_type = "InstanceNormalization";
        sn->node.domain = "";
        sn->node.n_inputs = 3;
        sn->node.inputs = io;
        sn->node.n_outputs = 1;
        sn->node.outputs = io + 3;
        sn->node.n_attrs = 1;
        sn->node.attrs = sn->attrs;
        op_activation none = {OP_ACT_NONE, 0, 0};
        FG_TRY(plan_replace_step(p, &p->steps[div], &sn->node, op_find("", "InstanceNormalization"), none));
        int removed[] = {r1, sub, mul, r2, add, sq};
        for (size_t k = 0; k < sizeof removed / sizeof removed[0]; k++) {
            plan_step *gone = &p->steps[removed[k]];
            for (int j = 0; j < gone->n_out; j++)
                if (gone->out[j] >= 0)
                    p->values[gone->out[j]].kind = PLAN_UNUSED;
            f->removed[removed[k]] = 1;
        }
        f->producer[y] = div;
        f->consumers[x] -= 1; /* read by ReduceMean and Sub before, by the norm now */
        p->n_fused_norm++;
    }
    return NULL;
}

int plan_activation_of(const plan *p, const plan_step *a, op_activation *act)
{
    const char *t = a->node->op_type;
    memset(act, 0, sizeof *act);
    if (a->dynamic)
        return 0;
    if (!strcmp(t, "Relu")) {
        act->kind = OP_ACT_RELU;
    } else if (!strcmp(t, "LeakyRelu")) {
        act->kind = OP_ACT_LEAKY_RELU;
        act->alpha = ir_attr_float(a->node, "alpha", 0.01f);
    } else if (!strcmp(t, "Sigmoid")) {
        act->kind = OP_ACT_SIGMOID;
    } else if (!strcmp(t, "Tanh")) {
        act->kind = OP_ACT_TANH;
    } else if (!strcmp(t, "HardSigmoid")) {
        act->kind = OP_ACT_HARD_SIGMOID;
        act->alpha = ir_attr_float(a->node, "alpha", 0.2f);
        act->beta = ir_attr_float(a->node, "beta", 0.5f);
    } else if (!strcmp(t, "HardSwish")) {
        act->kind = OP_ACT_HARD_SWISH;
    } else if (!strcmp(t, "Clip")) {
        act->kind = OP_ACT_CLIP;
        act->alpha = -INFINITY;
        act->beta = INFINITY;
        if (a->call.opset < 11) {
            act->alpha = ir_attr_float(a->node, "min", -INFINITY);
            act->beta = ir_attr_float(a->node, "max", INFINITY);
        } else {
            for (int k = 1; k <= 2; k++) {
                if (k >= a->n_in || a->in[k] < 0)
                    continue;
                if (!is_const_f32(p, a->in[k]))
                    return 0;
                float v = *(const float *)p->values[a->in[k]].t.data;
                if (k == 1)
                    act->alpha = v;
                else
                    act->beta = v;
            }
        }
    } else {
        return 0;
    }
    return 1;
}

/* Producer (Conv, ConvTranspose, Gemm, ...) -> activation: run the activation
 * inside the producer. Also Conv -> Sigmoid -> Mul(conv, sigmoid) = SiLU. */
static void fuse_activations(fusion_ctx *f)
{
    plan *p = f->p;
    for (int i = 0; i < p->n_steps; i++) {
        plan_step *c = &p->steps[i];
        if (f->removed[i] || c->dynamic || !(c->op->flags & OP_FUSES_ACTIVATION) ||
            c->call.act.kind != OP_ACT_NONE || p->values[c->out[0]].t.dtype != FG_FLOAT32)
            continue;
        int y = c->out[0];
        int ai;
        op_activation act;
        if (only_consumer(f, y, &ai) && plan_activation_of(p, &p->steps[ai], &act) && p->steps[ai].in[0] == y) {
            c->call.act = act;
            p->values[y].kind = PLAN_UNUSED;
            c->out[0] = p->steps[ai].out[0];
            f->producer[c->out[0]] = i;
            f->removed[ai] = 1;
            p->n_fused_act++;
            continue;
        }
        /* SiLU: y consumed by exactly Sigmoid(y) and Mul(y, sigmoid). */
        if (f->consumers[y] != 2)
            continue;
        int si = -1, mi = -1;
        for (int k = i + 1; k < p->n_steps; k++) {
            if (f->removed[k])
                continue;
            plan_step *s = &p->steps[k];
            for (int q = 0; q < s->n_in; q++) {
                if (s->in[q] != y)
                    continue;
                if (step_is(s, "Sigmoid"))
                    si = k;
                else if (step_is(s, "Mul"))
                    mi = k;
            }
        }
        if (si < 0 || mi < 0)
            continue;
        plan_step *s = &p->steps[si], *m = &p->steps[mi];
        int sig = s->out[0];
        int other = m->in[0] == y ? m->in[1] : m->in[0];
        if (other != sig || f->consumers[sig] != 1 || m->n_in != 2)
            continue;
        if (!fg_shape_equal(p->values[m->out[0]].t.rank, p->values[m->out[0]].t.dims, p->values[y].t.rank,
                            p->values[y].t.dims))
            continue;
        c->call.act.kind = OP_ACT_SILU;
        p->values[y].kind = PLAN_UNUSED;
        p->values[sig].kind = PLAN_UNUSED;
        c->out[0] = m->out[0];
        f->producer[c->out[0]] = i;
        f->removed[si] = f->removed[mi] = 1;
        p->n_fused_act++;
    }
}

/* Steps that only move elements (one data input, the rest constants): an
 * element-wise activation after them gives what it gives before them. */
static int moves_elements(const plan *p, const plan_step *s, int input)
{
    static const char *const ops[] = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Transpose"};
    int known = 0;
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++)
        known |= step_is(s, ops[k]);
    if (!known || s->n_out != 1 || s->n_in < 1 || s->in[0] != input || p->values[s->out[0]].bounded)
        return 0;
    for (int k = 1; k < s->n_in; k++)
        if (s->in[k] >= 0 && p->values[s->in[k]].kind != PLAN_CONST)
            return 0;
    return 1;
}

/* Producer -> Transpose/Reshape/... -> activation (a detection head:
 * Conv -> Transpose -> Reshape -> Sigmoid): the activation moves into the
 * producer and its node disappears; the last move now yields its output. */
static void fuse_activations_through_moves(fusion_ctx *f)
{
    plan *p = f->p;
    for (int i = 0; i < p->n_steps; i++) {
        plan_step *c = &p->steps[i];
        if (f->removed[i] || c->dynamic || !(c->op->flags & OP_FUSES_ACTIVATION) ||
            c->call.act.kind != OP_ACT_NONE || p->values[c->out[0]].t.dtype != FG_FLOAT32 ||
            p->values[c->out[0]].bounded)
            continue;
        int cur = c->out[0], next, last_move = -1;
        while (only_consumer(f, cur, &next) && moves_elements(p, &p->steps[next], cur)) {
            last_move = next;
            cur = p->steps[next].out[0];
        }
        op_activation act;
        int ai;
        if (last_move < 0 || !only_consumer(f, cur, &ai) || !plan_activation_of(p, &p->steps[ai], &act) ||
            p->steps[ai].in[0] != cur || p->steps[ai].n_out != 1)
            continue;
        plan_step *m = &p->steps[last_move], *a = &p->steps[ai];
        int y = a->out[0];
        plan_value *old = &p->values[cur], *v = &p->values[y];
        if (old->kind == PLAN_ALIAS) {
            v->kind = PLAN_ALIAS;
            v->alias_of = old->alias_of;
            v->alias_offset = old->alias_offset;
        }
        old->kind = PLAN_UNUSED;
        m->out[0] = y;
        f->producer[y] = last_move;
        c->call.act = act;
        f->removed[ai] = 1;
        p->n_fused_act++;
    }
}

/* Concat -> activation, where each input of the Concat is the sole output
 * of a producer that fuses activations (a Conv) and only the Concat reads
 * it (RetinaFace's SSH modules: Relu(Concat(conv3x3, conv5x5, conv7x7))):
 * the activation, element-wise, goes into every producer and its step
 * disappears; the Concat then yields the activation's output. */
static void fuse_activation_into_concat_inputs(fusion_ctx *f)
{
    plan *p = f->p;
    for (int i = 0; i < p->n_steps; i++) {
        plan_step *c = &p->steps[i];
        int ai, ok = !f->removed[i] && step_is(c, "Concat") && c->n_out == 1 && c->n_in > 0 &&
                     p->values[c->out[0]].t.dtype == FG_FLOAT32 && !p->values[c->out[0]].bounded;
        op_activation act;
        if (!ok || !only_consumer(f, c->out[0], &ai) || !plan_activation_of(p, &p->steps[ai], &act) ||
            p->steps[ai].in[0] != c->out[0] || p->steps[ai].n_out != 1)
            continue;
        for (int k = 0; k < c->n_in && ok; k++) {
            const int v = c->in[k], pi = v >= 0 ? f->producer[v] : -1;
            const plan_step *s = pi >= 0 ? &p->steps[pi] : NULL;
            ok = s && !f->removed[pi] && !s->dynamic && (s->op->flags & OP_FUSES_ACTIVATION) && s->n_out == 1 &&
                 s->call.act.kind == OP_ACT_NONE && f->consumers[v] == 1 &&
                 p->values[v].t.dtype == FG_FLOAT32 && !p->values[v].bounded;
        }
        if (!ok)
            continue;
        for (int k = 0; k < c->n_in; k++)
            p->steps[f->producer[c->in[k]]].call.act = act;
        plan_step *a = &p->steps[ai];
        p->values[c->out[0]].kind = PLAN_UNUSED;
        c->out[0] = a->out[0];
        f->producer[c->out[0]] = i;
        f->removed[ai] = 1;
        p->n_fused_act++;
    }
}

static fg_status *run_fusions(plan *p)
{
    fusion_ctx f = {p, NULL, NULL, NULL};
    f.producer = malloc(sizeof(int) * (size_t)p->cap_values * 2);
    f.consumers = calloc((size_t)p->cap_values * 2, sizeof(int));
    f.removed = calloc((size_t)p->n_steps + 1, 1);
    fg_status *st = NULL;
    if (!f.producer || !f.consumers || !f.removed) {
        st = fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory while planning");
        goto done;
    }
    for (int i = 0; i < p->cap_values * 2; i++)
        f.producer[i] = -1;
    for (int i = 0; i < p->n_steps; i++) {
        plan_step *s = &p->steps[i];
        for (int k = 0; k < s->n_out; k++)
            if (s->out[k] >= 0)
                f.producer[s->out[k]] = i;
        for (int k = 0; k < s->n_in; k++)
            if (s->in[k] >= 0)
                f.consumers[s->in[k]]++;
    }
    for (int i = 0; i < p->n_outputs; i++)
        f.consumers[p->outputs[i]] += 2; /* never fuse away a model output */
    st = fold_into_conv(&f);
    if (!st)
        st = fuse_instance_norm(&f);
    if (!st)
        st = fold_average_pools(p, f.removed);
    if (st)
        goto done;
    fuse_matmul_bias(&f);
    fuse_activations(&f);
    st = fuse_conv_residual(&f);
    if (!st)
        st = fuse_depthwise_pointwise(p, f.removed);
    if (st)
        goto done;
    fuse_activations_through_moves(&f);
    fuse_activation_into_concat_inputs(&f);
    st = merge_sibling_convs(p, f.removed);
    if (!st)
        st = merge_slice_transposes(p, f.removed);
    if (!st)
        st = fuse_elementwise_chains(p, f.removed);
    if (!st)
        st = place_slices_and_concats(p, f.removed);
    if (st)
        goto done;
    /* compact */
    int n = 0;
    for (int i = 0; i < p->n_steps; i++) {
        if (f.removed[i]) {
            step_release(&p->steps[i]);
            free(p->steps[i].in);
            free(p->steps[i].out);
            free(p->steps[i].in_t);
            free(p->steps[i].out_t);
            continue;
        }
        p->steps[n++] = p->steps[i];
    }
    p->n_removed += p->n_steps - n;
    p->n_steps = n;
done:
    free(f.producer);
    free(f.consumers);
    free(f.removed);
    return st;
}

/* ------------------------------------------------------------- arena */

typedef struct placed {
    int64_t offset;
    size_t bytes;
    int first, last;
    int value;
} placed;

/* Which arena values may share bytes. Two values whose step ranges overlap
 * never do. Beyond that, a backend may run steps that do not depend on each
 * other side by side (the CUDA backend captures a detector's heads as
 * parallel branches of one graph), and bytes shared by two values of
 * independent branches would order those branches. So the earlier value's
 * bytes go to the later one only when every step that touches the earlier
 * one comes, through the steps' data (each step after every step that
 * writes a value it reads), before every step that writes the later one.
 * Bit sets over the steps: for each step the steps it depends on, for each
 * value the steps that touch it and the steps all of its writers depend
 * on. Plans made without `branches` (the CPU runs one step after another)
 * and plans of more than ARENA_ORDER_MAX_STEPS steps share by step ranges
 * alone. */
#define ARENA_ORDER_MAX_STEPS 8192

typedef struct arena_order {
    int words;         /* 64-bit words per set */
    uint64_t *touch;   /* [value][words]: the steps writing or reading it */
    uint64_t *before;  /* [value][words]: the steps that every step writing it depends on */
} arena_order;

static void arena_order_free(arena_order *o)
{
    free(o->touch);
    free(o->before);
    o->touch = o->before = NULL;
}

/* 0 on success (o->words 0 when the plan shares by step ranges alone), -1 out of memory. */
static int arena_order_make(const plan *p, arena_order *o)
{
    memset(o, 0, sizeof *o);
    const int n = p->n_steps;
    if (!p->branches || n == 0 || n > ARENA_ORDER_MAX_STEPS)
        return 0;
    const int w = (n + 63) / 64;
    uint64_t *deps = calloc((size_t)n * w, sizeof(uint64_t));
    o->touch = calloc((size_t)p->n_values * w, sizeof(uint64_t));
    o->before = malloc((size_t)p->n_values * w * sizeof(uint64_t));
    if (!deps || !o->touch || !o->before) {
        free(deps);
        arena_order_free(o);
        return -1;
    }
    o->words = w;
    uint64_t *written = o->before; /* first: [value][words] the steps writing it */
    memset(written, 0, (size_t)p->n_values * w * sizeof(uint64_t));
    for (int i = 0; i < n; i++) {
        const plan_step *s = &p->steps[i];
        uint64_t *d = deps + (size_t)i * w;
        for (int k = 0; k < s->n_in; k++) {
            if (s->in[k] < 0)
                continue;
            const int r = plan_value_root(p, s->in[k]);
            const uint64_t *wr = written + (size_t)r * w;
            for (int q = 0; q < w; q++)
                d[q] |= wr[q];
            o->touch[(size_t)r * w + i / 64] |= (uint64_t)1 << (i % 64);
        }
        for (int q = 0; q < w; q++) /* and what those writers depend on (their sets are complete) */
            for (uint64_t bits = d[q]; bits; bits &= bits - 1) {
                const uint64_t *dj = deps + (size_t)(q * 64 + __builtin_ctzll(bits)) * w;
                for (int t = 0; t < w; t++)
                    d[t] |= dj[t];
            }
        for (int k = 0; k < s->n_out; k++) {
            if (s->out[k] < 0)
                continue;
            const int r = plan_value_root(p, s->out[k]);
            written[(size_t)r * w + i / 64] |= (uint64_t)1 << (i % 64);
            o->touch[(size_t)r * w + i / 64] |= (uint64_t)1 << (i % 64);
        }
    }
    /* before[v] = the AND of deps[writer] over v's writers (none: empty) */
    uint64_t writers[ARENA_ORDER_MAX_STEPS / 64];
    for (int v = 0; v < p->n_values; v++) {
        uint64_t *b = o->before + (size_t)v * w;
        memcpy(writers, b, (size_t)w * sizeof(uint64_t));
        int any = 0;
        for (int q = 0; q < w; q++)
            b[q] = ~(uint64_t)0;
        for (int q = 0; q < w; q++)
            for (uint64_t bits = writers[q]; bits; bits &= bits - 1) {
                const uint64_t *dj = deps + (size_t)(q * 64 + __builtin_ctzll(bits)) * w;
                any = 1;
                for (int t = 0; t < w; t++)
                    b[t] &= dj[t];
            }
        if (!any)
            memset(b, 0, (size_t)w * sizeof(uint64_t));
    }
    free(deps);
    return 0;
}

/* 1 when values a (whose steps come first) and b may share bytes: every step touching a before every writer of b. */
static int arena_ordered(const arena_order *o, int a, int b)
{
    if (!o->words)
        return 1;
    const uint64_t *t = o->touch + (size_t)a * o->words, *before = o->before + (size_t)b * o->words;
    for (int q = 0; q < o->words; q++)
        if (t[q] & ~before[q])
            return 0;
    return 1;
}

static int by_size_desc(const void *a, const void *b, void *ctx)
{
    const plan_value *v = ctx;
    size_t sa = v[*(const int *)a].bytes, sb = v[*(const int *)b].bytes;
    return sa < sb ? 1 : (sa > sb ? -1 : 0);
}

static fg_status *layout_arena(plan *p)
{
    for (int i = 0; i < p->n_values; i++) {
        p->values[i].first_step = -1;
        p->values[i].last_step = -1;
    }
    for (int i = 0; i < p->n_steps; i++) {
        plan_step *s = &p->steps[i];
        for (int k = 0; k < s->n_out; k++) {
            int r = plan_value_root(p, s->out[k]);
            if (s->out[k] >= 0 && p->values[r].first_step < 0)
                p->values[r].first_step = i;
            if (s->out[k] >= 0 && p->values[r].last_step < i)
                p->values[r].last_step = i;
        }
        for (int k = 0; k < s->n_in; k++) {
            if (s->in[k] < 0)
                continue;
            int r = plan_value_root(p, s->in[k]);
            if (p->values[r].last_step < i)
                p->values[r].last_step = i;
        }
    }
    for (int i = 0; i < p->n_outputs; i++)
        p->values[plan_value_root(p, p->outputs[i])].last_step = p->n_steps;

    int *order = malloc(sizeof(int) * (size_t)(p->n_values + 1));
    placed *done = malloc(sizeof(placed) * (size_t)(p->n_values + 1));
    arena_order order_sets;
    if (!order || !done || arena_order_make(p, &order_sets) != 0) {
        free(order);
        free(done);
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory while planning");
    }
    int n = 0;
    for (int i = 0; i < p->n_values; i++)
        if (p->values[i].kind == PLAN_ARENA && p->values[i].first_step >= 0)
            order[n++] = i;
    qsort_r(order, (size_t)n, sizeof(int), by_size_desc, p->values);
    size_t top = 0;
    int n_done = 0;
    for (int k = 0; k < n; k++) {
        plan_value *v = &p->values[order[k]];
        size_t bytes = align_up(v->bytes ? v->bytes : 1);
        /* lowest offset that overlaps no live-at-the-same-time block */
        int64_t offset = 0;
        for (int moved = 1; moved;) {
            moved = 0;
            for (int d = 0; d < n_done; d++) {
                placed *o = &done[d];
                if (o->last < v->first_step && arena_ordered(&order_sets, o->value, order[k]))
                    continue;
                if (o->first > v->last_step && arena_ordered(&order_sets, order[k], o->value))
                    continue;
                if (offset < o->offset + (int64_t)o->bytes && o->offset < offset + (int64_t)bytes) {
                    offset = o->offset + (int64_t)o->bytes;
                    moved = 1;
                }
            }
        }
        v->offset = offset;
        done[n_done++] = (placed){offset, bytes, v->first_step, v->last_step, order[k]};
        if ((size_t)offset + bytes > top)
            top = (size_t)offset + bytes;
    }
    free(order);
    free(done);
    arena_order_free(&order_sets);
    size_t scratch = 0;
    for (int i = 0; i < p->n_steps; i++)
        if (!p->steps[i].dynamic && p->steps[i].call.scratch_bytes > scratch)
            scratch = p->steps[i].call.scratch_bytes;
    p->scratch_offset = align_up(top);
    p->scratch_bytes = scratch;
    p->arena_bytes = p->scratch_offset + align_up(scratch);
    p->arena = fg_aligned_alloc(p->arena_bytes ? p->arena_bytes : PLAN_ARENA_ALIGN);
    if (!p->arena)
        return fg_error(FG_ERR_OUT_OF_MEMORY,
                        "out of host memory: the model needs %zu MiB of working memory for these input shapes",
                        p->arena_bytes >> 20);
    return NULL;
}

/* ------------------------------------------------------------- control flow */

int plan_outer_values(const ir_graph *graph, int *ids, int max)
{
    int n = 0;
    for (int v = 0; v < graph->n_values; v++)
        if (graph->values[v].outer) {
            if (n < max)
                ids[n] = v;
            n++;
        }
    return n;
}

/* If / Loop: the step runs at run time; it also reads every enclosing value
 * its subgraphs use, so those become extra inputs (for liveness). */
static fg_status *plan_control_step(plan *p, plan_step *s)
{
    const ir_graph *g = p->graph;
    s->control = 1;
    s->dynamic = 1;
    p->has_dynamic = 1;
    for (int a = 0; a < s->node->n_attrs; a++) {
        const ir_graph *sub = s->node->attrs[a].type == IR_ATTR_GRAPH ? s->node->attrs[a].g : NULL;
        for (int v = 0; sub && v < sub->n_values; v++) {
            if (!sub->values[v].outer)
                continue;
            int id = ir_graph_find_value(g, sub->values[v].name);
            if (id < 0)
                return fg_error(FG_ERR_UNSUPPORTED,
                                "node '%s' (%s): its subgraph reads '%s' from two or more graphs up, which is not "
                                "supported",
                                s->node->name, s->node->op_type, sub->values[v].name);
            int seen = 0;
            for (int i = 0; i < s->n_in; i++)
                seen |= s->in[i] == id;
            if (seen)
                continue;
            int *in = realloc(s->in, sizeof(int) * (size_t)(s->n_in + 1));
            fg_tensor *in_t = in ? realloc(s->in_t, sizeof(fg_tensor) * (size_t)(s->n_in + 1)) : NULL;
            if (in)
                s->in = in;
            if (!in || !in_t)
                return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory while planning");
            s->in_t = in_t;
            s->call.in = in_t;
            s->in[s->n_in++] = id;
        }
    }
    for (int j = 0; j < s->n_out; j++)
        if (s->out[j] >= 0) {
            p->values[s->out[j]].kind = PLAN_DYNAMIC;
            p->values[s->out[j]].t.rank = -1;
        }
    return NULL;
}

int plan_matches_signature(const plan *p, const fg_tensor *inputs, int n)
{
    if (p->n_inputs != n)
        return 0;
    for (int i = 0; i < n; i++)
        if (p->signature[i].dtype != inputs[i].dtype ||
            !fg_shape_equal(p->signature[i].rank, p->signature[i].dims, inputs[i].rank, inputs[i].dims))
            return 0;
    return 1;
}

fg_status *plan_subplan_for(plan *p, plan_step *s, const ir_graph *graph, const fg_tensor *inputs, int n_inputs,
                            plan **out)
{
    for (plan_subplan *sp = s->subplans; sp; sp = sp->next)
        if (sp->graph == graph && plan_matches_signature(sp->plan, inputs, n_inputs)) {
            *out = sp->plan;
            return NULL;
        }
    plan_subplan *sp = calloc(1, sizeof *sp);
    if (!sp)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory while planning a subgraph");
    fg_status *st = plan_for_graph(p->model, graph, inputs, n_inputs, p->threads, p->branches, &sp->plan);
    if (st) {
        free(sp);
        return fg_error_wrap(st, "node '%s' (%s)", s->node->name, s->node->op_type);
    }
    sp->graph = graph;
    sp->next = s->subplans;
    s->subplans = sp;
    *out = sp->plan;
    return NULL;
}

/* ------------------------------------------------------------- planning */

/* ------------------------------------------------------------- capacity */

void plan_compact_bounded(fg_tensor *t, int axis, int64_t capacity)
{
    int64_t count = t->dims[axis];
    if (count == capacity || axis == 0)
        return; /* axis 0: the true rows are already a prefix */
    int64_t outer = fg_shape_numel(axis, t->dims);
    size_t inner = fg_dtype_size(t->dtype);
    for (int d = axis + 1; d < t->rank; d++)
        inner *= (size_t)t->dims[d];
    char *base = t->data;
    for (int64_t o = 0; o < outer; o++) /* forward: each destination is at or before its source */
        memmove(base + (size_t)(o * count) * inner, base + (size_t)(o * capacity) * inner, (size_t)count * inner);
}

/* A step reads a value whose length along one axis depends on data. If the
 * op maps that axis to one output axis row by row (element-wise ops with the
 * other inputs broadcast along it, Gather by bounded indices or along
 * another axis, GatherND by bounded indices, Transpose), it runs on the capacity and its output is
 * bounded too: returns that output axis. Otherwise -1 (the step waits for
 * the true shapes at run time). */
static int bounded_passthrough(const plan *p, const plan_step *s, int *count_of)
{
    int axis_in = -1, which = -1;
    for (int i = 0; i < s->n_in; i++) {
        int id = s->in[i];
        if (id < 0 || !p->values[id].bounded)
            continue;
        if (which >= 0 && p->values[id].count_of != *count_of)
            return -1;
        *count_of = p->values[id].count_of;
        if (which < 0) {
            which = i;
            axis_in = p->values[id].bound_axis;
        }
    }
    const fg_tensor *x = &p->values[s->in[which]].t;
    const fg_tensor *y = &s->out_t[0];
    const char *t = s->node->op_type;
    if (s->n_out != 1)
        return -1;
    if (op_is_elementwise(s->op)) {
        int axis_out = axis_in + (y->rank - x->rank);
        for (int i = 0; i < s->n_in; i++) {
            int id = s->in[i];
            if (id < 0)
                continue;
            const plan_value *v = &p->values[id];
            int a = axis_out - (y->rank - v->t.rank);
            if (v->bounded ? (v->bound_axis != a) : (a >= 0 && v->t.dims[a] != 1))
                return -1;
        }
        return axis_out;
    }
    if (!strcmp(t, "Gather")) {
        int rank = p->values[s->in[0]].t.rank;
        int64_t axis = ir_attr_int(s->node, "axis", 0);
        if (axis < 0)
            axis += rank;
        int data_bounded = p->values[s->in[0]].bounded, idx_bounded = p->values[s->in[1]].bounded;
        if (data_bounded && idx_bounded)
            return -1;
        if (idx_bounded)
            return (int)axis + p->values[s->in[1]].bound_axis;
        int a = p->values[s->in[0]].bound_axis;
        if (a == axis)
            return -1;
        return a < axis ? a : a + p->values[s->in[1]].t.rank - 1;
    }
    if (!strcmp(t, "GatherND") && which == 1 && !p->values[s->in[0]].bounded &&
        ir_attr_int(s->node, "batch_dims", 0) == 0 && axis_in < x->rank - 1)
        return axis_in; /* output = indices.shape[:-1] + data.shape[r:] */
    if (!strcmp(t, "Transpose")) {
        const int64_t *perm;
        int n = ir_attr_ints(s->node, "perm", &perm);
        for (int d = 0; d < y->rank; d++)
            if ((n ? perm[d] : y->rank - 1 - d) == axis_in)
                return d;
    }
    return -1;
}

/* Plans one node: shape, then fold, defer (dynamic) or give it memory.
 * remap redirects model value ids (float16 inputs converted on entry). */
static fg_status *plan_node(plan *p, const ir_model *model, const ir_node *node, const op_def *op,
                            const int *remap)
{
    const ir_graph *g = p->graph;
    plan_step *s = &p->steps[p->n_steps];
    FG_TRY(make_step(p, model, node, op, s));
    p->n_steps++;
    int dynamic = 0, all_const = 1, bounded_in = 0;
    for (int i = 0; i < s->n_in; i++) {
        int id = s->in[i];
        if (id < 0)
            continue;
        if (remap)
            id = s->in[i] = remap[id];
        const plan_value *v = &p->values[id];
        if (v->kind == PLAN_UNUSED)
            return fg_error(FG_ERR_CORRUPT, "node '%s' (%s): input '%s' is not produced by any earlier node",
                            node->name, node->op_type, id < g->n_values ? g->values[id].name : "?");
        if (v->kind == PLAN_DYNAMIC)
            dynamic = 1;
        if (v->bounded)
            bounded_in = 1;
        if (v->kind != PLAN_CONST)
            all_const = 0;
    }
    if (op->flags & OP_CONTROL_FLOW)
        return plan_control_step(p, s);
    bind_plan_inputs(p, s);
    fg_status *st = dynamic ? op_need_value() : op->infer(&s->call);
    int bound_axis = -1, count_of = -1;
    if (!st && bounded_in) {
        /* run on the capacity if the op keeps the data-dependent axis */
        bound_axis = bounded_passthrough(p, s, &count_of);
        if (bound_axis < 0)
            st = op_need_value();
    }
    if (st == op_need_value()) {
        s->dynamic = 1;
        p->has_dynamic = 1;
        for (int j = 0; j < s->n_out; j++)
            if (s->out[j] >= 0) {
                p->values[s->out[j]].kind = PLAN_DYNAMIC;
                p->values[s->out[j]].t.rank = -1;
            }
        return NULL;
    }
    if (st)
        return st;
    if (all_const || (op->flags & OP_SHAPE_ONLY)) {
        FG_TRY(fold_step(p, s));
        step_release(s);
        free(s->in);
        free(s->out);
        free(s->in_t);
        free(s->out_t);
        p->n_steps--;
        return NULL;
    }
    int sole_output = 1; /* Dropout's mask output needs run(), so no alias then */
    for (int q = 1; q < s->n_out; q++)
        sole_output &= s->out[q] < 0;
    int own_count = -1; /* out_bounded: every output shares the axis and the count of the first one */
    for (int q = 0; q < s->n_out && own_count < 0; q++)
        own_count = s->out[q];
    for (int j = 0; j < s->n_out; j++) {
        int id = s->out[j];
        if (id < 0)
            continue;
        plan_value *v = &p->values[id];
        v->t = s->out_t[j];
        v->t.data = NULL;
        v->bytes = fg_tensor_nbytes(&v->t);
        v->bounded = 0;
        if (s->call.out_bounded) {
            v->bounded = 1;
            v->bound_axis = s->call.out_bounded - 1;
            v->count_of = own_count;
        } else if (bound_axis >= 0) {
            v->bounded = 1;
            v->bound_axis = bound_axis;
            v->count_of = count_of;
        }
        v->kind = PLAN_ARENA;
        if (j == 0 && ((op->flags & OP_VIEW) || s->call.out_is_input) && s->in[0] >= 0 && sole_output) {
            v->kind = PLAN_ALIAS;
            v->alias_of = s->in[0];
        }
    }
    return NULL;
}

static fg_status *plan_nodes(plan *p, const ir_model *model, const char *live)
{
    const ir_graph *g = p->graph;
    int *remap = malloc(sizeof(int) * (size_t)(g->n_values + 1));
    if (!remap)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory while planning");
    for (int i = 0; i < g->n_values; i++)
        remap[i] = i;
    fg_status *st = NULL;
    for (int i = 0; i < g->n_inputs && !st; i++)
        if (p->values[g->inputs[i]].t.dtype == FG_FLOAT16)
            st = add_cast_step(p, model, g->inputs[i], FG_FLOAT32, &remap[g->inputs[i]]);
    for (int k = 0; k < g->n_nodes && !st; k++) {
        if (!live[k])
            continue;
        const ir_node *node = &g->nodes[k];
        const op_def *op = op_find(node->domain, node->op_type);
        if (!op)
            st = fg_error(FG_ERR_UNSUPPORTED, "node '%s': op %s%s%s is not supported", node->name,
                          node->domain[0] ? node->domain : "", node->domain[0] ? "." : "", node->op_type);
        else if (!strcmp(node->op_type, "Cast") && ir_attr_int(node, "to", 0) == FG_FLOAT16 &&
                 !(st = float32_cast_of(p, node, &node)))
            st = plan_node(p, model, node, op, remap);
        else if (!st)
            st = plan_node(p, model, node, op, remap);
    }
    for (int i = 0; i < g->n_outputs && !st; i++) {
        int id = remap[p->outputs[i]];
        p->outputs[i] = id;
        if (g->values[g->outputs[i]].dtype == FG_FLOAT16 && p->values[id].t.dtype == FG_FLOAT32 &&
            p->values[id].kind != PLAN_UNUSED && p->values[id].kind != PLAN_DYNAMIC)
            st = add_cast_step(p, model, id, FG_FLOAT16, &p->outputs[i]);
    }
    free(remap);
    return st;
}

fg_status *plan_check_input(const ir_value *v, const fg_tensor *t)
{
    if (v->dtype != FG_DTYPE_UNDEFINED && t->dtype != v->dtype)
        return fg_error(FG_ERR_DTYPE, "input '%s' must be %s, got %s", v->name, fg_dtype_name(v->dtype),
                        fg_dtype_name(t->dtype));
    if (t->rank < 0 || t->rank > FG_MAX_RANK)
        return fg_error(FG_ERR_SHAPE, "input '%s': rank %d is not supported", v->name, t->rank);
    for (int d = 0; d < t->rank; d++)
        if (t->dims[d] < 0)
            return fg_error(FG_ERR_SHAPE, "input '%s': dimension %d is negative", v->name, d);
    if (v->rank < 0)
        return NULL;
    int bad = v->rank != t->rank;
    for (int d = 0; !bad && d < v->rank; d++)
        bad = v->dims[d] >= 0 && v->dims[d] != t->dims[d];
    if (bad) {
        char want[160], got[160];
        fg_shape_format(v->rank, v->dims, want, sizeof want);
        fg_shape_format(t->rank, t->dims, got, sizeof got);
        return fg_error(FG_ERR_SHAPE, "input '%s' must have shape %s ('?' is free), got %s", v->name, want, got);
    }
    return NULL;
}

static fg_status *check_signature(const ir_graph *g, const fg_tensor *inputs, int n_inputs)
{
    int n_outer = plan_outer_values(g, NULL, 0);
    if (n_inputs != g->n_inputs + n_outer)
        return fg_error(FG_ERR_INVALID_ARGUMENT, "the model takes %d inputs, %d were given", g->n_inputs,
                        n_inputs - n_outer);
    for (int i = 0; i < g->n_inputs && !g->parent; i++) /* subgraph inputs are typed by the caller */
        FG_TRY(plan_check_input(&g->values[g->inputs[i]], &inputs[i]));
    return NULL;
}

fg_status *plan_for_signature(const ir_model *model, const fg_tensor *inputs, int n_inputs, int threads,
                              int branches, plan **out)
{
    return plan_for_graph(model, model->graph, inputs, n_inputs, threads, branches, out);
}

fg_status *plan_for_graph(const ir_model *model, const ir_graph *g, const fg_tensor *inputs, int n_inputs,
                          int threads, int branches, plan **out)
{
    *out = NULL;
    FG_TRY(check_signature(g, inputs, n_inputs));
    plan *p = calloc(1, sizeof *p);
    if (!p)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory while planning");
    fg_status *st = NULL;
    char *live = NULL, *needed = NULL;
    p->threads = threads > 0 ? threads : 1;
    p->branches = branches;
    p->model = model;
    p->graph = g;
    p->cap_values = g->n_values + 64;
    p->n_values = g->n_values;
    p->values = calloc((size_t)p->cap_values, sizeof *p->values);
    p->steps = calloc((size_t)(g->n_nodes + n_inputs + g->n_outputs) + 1, sizeof *p->steps);
    p->signature = calloc((size_t)n_inputs + 1, sizeof *p->signature);
    p->outputs = calloc((size_t)g->n_outputs + 1, sizeof *p->outputs);
    live = calloc((size_t)g->n_nodes + 1, 1);
    needed = calloc((size_t)g->n_values + 1, 1);
    if (!p->values || !p->steps || !p->signature || !p->outputs || !live || !needed) {
        st = fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory while planning");
        goto fail;
    }
    p->n_inputs = n_inputs;
    p->n_outputs = g->n_outputs;
    memcpy(p->outputs, g->outputs, sizeof(int) * (size_t)g->n_outputs);
    for (int i = 0; i < g->n_values; i++) {
        plan_value *v = &p->values[i];
        v->alias_of = -1;
        v->input_index = -1;
        const ir_tensor *init = g->values[i].initializer;
        if (init) {
            v->kind = PLAN_CONST;
            v->t.dtype = init->dtype;
            v->t.rank = init->rank;
            memcpy(v->t.dims, init->dims, sizeof init->dims);
            v->t.data = (void *)init->data;
            v->bytes = init->nbytes;
            st = float16_const_to_float32(p, v);
            if (st)
                goto fail;
        }
    }
    int *input_ids = malloc(sizeof(int) * (size_t)(n_inputs + 1));
    if (!input_ids) {
        st = fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory while planning");
        goto fail;
    }
    memcpy(input_ids, g->inputs, sizeof(int) * (size_t)g->n_inputs);
    plan_outer_values(g, input_ids + g->n_inputs, n_inputs - g->n_inputs);
    for (int i = 0; i < n_inputs; i++) {
        plan_value *v = &p->values[input_ids[i]];
        v->kind = PLAN_INPUT;
        v->t = inputs[i];
        v->t.data = NULL;
        v->t.location = FG_HOST;
        v->input_index = i;
        v->bytes = fg_tensor_nbytes(&v->t);
        p->signature[i] = v->t;
    }
    free(input_ids);
    /* dead-node removal: keep nodes that lead to a model output */
    for (int i = 0; i < g->n_outputs; i++)
        needed[g->outputs[i]] = 1;
    for (int k = g->n_nodes - 1; k >= 0; k--) {
        const ir_node *node = &g->nodes[k];
        for (int j = 0; j < node->n_outputs && !live[k]; j++)
            live[k] = node->outputs[j] >= 0 && needed[node->outputs[j]];
        if (!live[k]) {
            p->n_removed++;
            continue;
        }
        for (int j = 0; j < node->n_inputs; j++)
            if (node->inputs[j] >= 0)
                needed[node->inputs[j]] = 1;
    }
    st = plan_nodes(p, model, live);
    if (st)
        goto fail;
    for (int i = 0; i < p->n_outputs; i++) {
        if (p->values[p->outputs[i]].kind == PLAN_UNUSED) {
            st = fg_error(FG_ERR_CORRUPT, "model output '%s' is not produced by any node",
                          g->values[p->outputs[i]].name);
            goto fail;
        }
    }
    st = run_fusions(p);
    if (st)
        goto fail;
    for (int i = 0; i < p->n_steps; i++) {
        plan_step *s = &p->steps[i];
        if (s->dynamic || !s->op->prepare)
            continue;
        bind_plan_inputs(p, s);
        for (int j = 0; j < s->n_out; j++)
            if (s->out[j] >= 0)
                s->out_t[j] = p->values[s->out[j]].t;
        st = s->op->prepare(&s->call);
        s->prepared = 1;
        if (st)
            goto fail;
    }
    st = layout_arena(p);
    if (st)
        goto fail;
    free(live);
    free(needed);
    *out = p;
    return NULL;
fail:
    free(live);
    free(needed);
    plan_free(p);
    return st;
}

static double conv_flops(const plan *p, const plan_step *s)
{
    const fg_tensor *w = &p->values[s->in[1]].t;
    const fg_tensor *y = &p->values[s->out[0]].t;
    if (w->rank < 2)
        return 0;
    double per_out = 2.0 * (double)fg_tensor_numel(w) / (double)w->dims[0];
    return per_out * (double)fg_tensor_numel(y);
}

double plan_step_flops(const plan *p, const plan_step *s)
{
    const char *t = s->node->op_type;
    if (s->dynamic || s->out[0] < 0)
        return 0;
    const fg_tensor *y = &p->values[s->out[0]].t;
    if (!strcmp(t, "Conv"))
        return conv_flops(p, s);
    if (!strcmp(t, "ConvTranspose")) {
        const fg_tensor *x = &p->values[s->in[0]].t, *w = &p->values[s->in[1]].t;
        return 2.0 * (double)fg_tensor_numel(x) * (double)fg_tensor_numel(w) / (double)w->dims[0];
    }
    if (!strcmp(t, "FusedDepthwisePointwise")) { /* k x k depthwise, then 1x1 (inputs x, dw_w, dw_b, pw_w, ...) */
        const fg_tensor *dw = &p->values[s->in[1]].t, *pw = &p->values[s->in[3]].t;
        double taps = (double)fg_tensor_numel(dw) / (double)(dw->dims[0] ? dw->dims[0] : 1);
        double pixels = (double)fg_tensor_numel(y) / (double)(y->dims[1] ? y->dims[1] : 1);
        return 2.0 * pixels * ((double)dw->dims[0] * taps + (double)pw->dims[1] * (double)pw->dims[0]);
    }
    if (!strcmp(t, "MatMul") || !strcmp(t, "Gemm")) {
        const fg_tensor *a = &p->values[s->in[0]].t;
        int64_t k = a->rank ? a->dims[a->rank - 1] : 1;
        if (!strcmp(t, "Gemm") && ir_attr_int(s->node, "transA", 0))
            k = a->dims[0];
        return 2.0 * (double)fg_tensor_numel(y) * (double)k;
    }
    return (double)fg_tensor_numel(y);
}
