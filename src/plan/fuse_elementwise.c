/* Element-wise chain fusion: a run of float32 element-wise steps where each
 * intermediate value is read only by the next step (and is no model output)
 * becomes one FusedElementwise step (src/ops/elementwise_chain.h), so a GELU
 * written as Div -> Erf -> Add -> Mul(x) -> Mul(0.5) is one kernel instead of
 * five. Each step of the chain carries the chain value through one input; its
 * other input (binary ops) is a constant scalar, the chain's input, or a
 * tensor of the chain's shape or broadcast to it along one contiguous block
 * of axes (a bias [C], a per-channel [1,C,1,1], a per-row [..., 1]). The
 * chain's value keeps the shape of its input throughout. When the chain's
 * input comes from an element-wise step that only the chain reads (a bias Add
 * whose output GELU reads twice), that step joins the chain at its head and
 * its value is saved for the chain's reads.
 *
 * The fused step takes the place of the chain's last step: every tensor it
 * reads exists by then. */
#include "plan/plan_internal.h"

#include "ops/elementwise_chain.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct chain_op {
    const char *name;
    ew_op op;
} chain_op;

static const chain_op chain_ops[] = {
    {"Neg", EW_NEG},       {"Abs", EW_ABS},         {"Exp", EW_EXP},
    {"Log", EW_LOG},       {"Sqrt", EW_SQRT},       {"Reciprocal", EW_RECIPROCAL},
    {"Erf", EW_ERF},       {"Tanh", EW_TANH},       {"Sigmoid", EW_SIGMOID},
    {"Relu", EW_RELU},     {"LeakyRelu", EW_LEAKY_RELU}, {"Floor", EW_FLOOR},
    {"Ceil", EW_CEIL},     {"HardSigmoid", EW_HARD_SIGMOID}, {"HardSwish", EW_HARD_SWISH},
    {"Clip", EW_CLIP},     {"Add", EW_ADD},         {"Sub", EW_SUB},
    {"Mul", EW_MUL},       {"Div", EW_DIV},         {"Pow", EW_POW},
    {"Max", EW_MAX},       {"Min", EW_MIN},
};

/* A chain being built. */
typedef struct chain {
    int n_steps;
    int steps[EWC_MAX_INSTRUCTIONS];
    ewc_instruction code[EWC_MAX_INSTRUCTIONS];
    int n_inputs;
    int inputs[EWC_MAX_INPUTS]; /* plan value ids; [0] is the chain input */
    const fg_tensor *shape;     /* the chain value's dtype and shape */
} chain;

static int chain_op_of(const plan_step *s, ew_op *op)
{
    const char *domain = s->node->domain;
    if (domain && domain[0] && strcmp(domain, "ai.onnx") != 0)
        return 0;
    for (size_t k = 0; k < sizeof chain_ops / sizeof chain_ops[0]; k++)
        if (!strcmp(s->node->op_type, chain_ops[k].name)) {
            *op = chain_ops[k].op;
            return 1;
        }
    return 0;
}

static int is_plain_f32(const plan *p, int id)
{
    return id >= 0 && p->values[id].t.dtype == FG_FLOAT32 && !p->values[id].bounded &&
           p->values[id].kind != PLAN_UNUSED && p->values[id].kind != PLAN_DYNAMIC;
}

static int is_const_scalar_f32(const plan *p, int id, float *value)
{
    const plan_value *v = &p->values[id];
    if (v->kind != PLAN_CONST || v->t.dtype != FG_FLOAT32 || fg_tensor_numel(&v->t) != 1 || !v->t.data)
        return 0;
    *value = *(const float *)v->t.data;
    return 1;
}

/* Clip's bounds as the CPU and CUDA kernels read them; 0 when a bound is not a
 * constant float32 scalar. */
static int clip_bounds(const plan *p, const plan_step *s, float *lo, float *hi)
{
    if (s->call.opset < 11) {
        *lo = ir_attr_float(s->node, "min", -FLT_MAX);
        *hi = ir_attr_float(s->node, "max", FLT_MAX);
        return 1;
    }
    *lo = -INFINITY;
    *hi = INFINITY;
    for (int k = 1; k <= 2 && k < s->n_in; k++) {
        if (s->in[k] < 0)
            continue;
        if (!is_const_scalar_f32(p, s->in[k], k == 1 ? lo : hi))
            return 0;
    }
    return 1;
}

/* The index of value `id` among the chain's inputs, added if new; -1 when the
 * chain has no room for another input. */
static int chain_input(chain *c, int id)
{
    for (int k = 0; k < c->n_inputs; k++)
        if (c->inputs[k] == id)
            return k;
    if (c->n_inputs == EWC_MAX_INPUTS)
        return -1;
    c->inputs[c->n_inputs] = id;
    return c->n_inputs++;
}

/* Appends step `si` to the chain if it carries the chain value `carried`
 * (-1: the step starts the chain) and its other operand fits; 1 if added. */
static int chain_add(const plan *p, chain *c, int si, int carried)
{
    const plan_step *s = &p->steps[si];
    ew_op op;
    if (c->n_steps == EWC_MAX_INSTRUCTIONS || s->dynamic || s->control || !s->op || !op_is_elementwise(s->op) ||
        !chain_op_of(s, &op) || s->n_out != 1 || s->out[0] < 0 || s->call.out_bounded)
        return 0;
    const plan_value *out = &p->values[s->out[0]];
    if (out->kind != PLAN_ARENA || out->t.dtype != FG_FLOAT32 || out->bounded)
        return 0;
    ewc_instruction ins;
    memset(&ins, 0, sizeof ins);
    ins.op = op;
    ins.act = s->call.act;
    int slot; /* the input that carries the chain value */
    if (ewc_op_is_unary(op)) {
        if (s->n_in < 1 || s->in[0] < 0 || (carried >= 0 && s->in[0] != carried))
            return 0;
        for (int k = 1; k < s->n_in; k++)
            if (s->in[k] == s->in[0])
                return 0;
        slot = 0;
        ins.operand = EWC_UNARY;
        double alpha = 0, beta = 0;
        int unused_neg = 0, unused_pos = 0;
        ew_read_unary_attributes(s->node, op, &alpha, &beta, &unused_neg, &unused_pos);
        ins.alpha = (float)alpha;
        ins.beta = (float)beta;
        if (op == EW_CLIP && !clip_bounds(p, s, &ins.alpha, &ins.beta))
            return 0;
    } else {
        if (s->n_in != 2 || s->in[0] < 0 || s->in[1] < 0 || s->in[0] == s->in[1])
            return 0;
        if (carried >= 0) {
            slot = s->in[0] == carried ? 0 : (s->in[1] == carried ? 1 : -1);
        } else { /* the chain input: not a constant, the output's shape */
            slot = -1;
            for (int k = 1; k >= 0; k--) {
                const plan_value *v = &p->values[s->in[k]];
                if (v->kind != PLAN_CONST && fg_shape_equal(v->t.rank, v->t.dims, out->t.rank, out->t.dims))
                    slot = k;
            }
        }
        if (slot < 0)
            return 0;
        const int other = s->in[1 - slot];
        ins.swapped = slot == 1;
        if (!is_plain_f32(p, other))
            return 0;
        if (is_const_scalar_f32(p, other, &ins.scalar)) {
            ins.operand = EWC_SCALAR;
        } else {
            int64_t inner, dim;
            if (op == EW_POW || ewc_broadcast_block(&p->values[other].t, &out->t, &inner, &dim) != 0)
                return 0;
            ins.operand = EWC_TENSOR;
        }
        if (op == EW_POW && (ins.swapped || ins.operand != EWC_SCALAR))
            return 0;
    }
    const int carried_id = s->in[slot];
    if (!is_plain_f32(p, carried_id))
        return 0;
    const fg_tensor *ct = &p->values[carried_id].t;
    if (!fg_shape_equal(ct->rank, ct->dims, out->t.rank, out->t.dims))
        return 0; /* the chain value never grows */
    if (carried < 0) {
        c->n_inputs = 0;
        c->inputs[c->n_inputs++] = carried_id;
        c->shape = &out->t;
    } else if (!fg_shape_equal(c->shape->rank, c->shape->dims, out->t.rank, out->t.dims)) {
        return 0;
    }
    if (ins.operand == EWC_TENSOR) {
        const int saved = c->n_inputs;
        ins.input = chain_input(c, s->in[1 - slot]);
        if (ins.input < 0) {
            c->n_inputs = saved;
            return 0;
        }
    }
    c->steps[c->n_steps] = si;
    c->code[c->n_steps] = ins;
    c->n_steps++;
    return 1;
}

/* The chain input x is made by an element-wise step P that only the chain
 * reads (more than once, e.g. a bias Add before GELU's Div and Mul(x, ...)):
 * the chain starts with P instead, saving its value for the chain's reads of
 * x. 1 if P was taken in. */
static int prepend_producer(const plan *p, chain *c, const int *producer, const int *consumers,
                            const char *removed, const char *in_chain)
{
    const int x = c->inputs[0];
    const int pi = producer[x];
    if (pi < 0 || removed[pi] || in_chain[pi] || c->n_steps + 1 > EWC_MAX_INSTRUCTIONS)
        return 0;
    int reads = 0;
    for (int k = 0; k < c->n_steps; k++) {
        const plan_step *s = &p->steps[c->steps[k]];
        for (int q = 0; q < s->n_in; q++)
            reads += s->in[q] == x;
    }
    if (consumers[x] != reads)
        return 0;
    chain grown;
    memset(&grown, 0, sizeof grown);
    if (!chain_add(p, &grown, pi, -1) || p->steps[pi].out[0] != x ||
        !fg_shape_equal(grown.shape->rank, grown.shape->dims, c->shape->rank, c->shape->dims))
        return 0;
    grown.code[0].save = 1;
    for (int k = 0; k < c->n_steps; k++) {
        ewc_instruction ins = c->code[k];
        if (ins.operand == EWC_TENSOR && ins.input == 0) {
            ins.operand = EWC_SAVED;
            ins.input = 0;
        } else if (ins.operand == EWC_TENSOR) {
            ins.input = chain_input(&grown, c->inputs[ins.input]);
            if (ins.input < 0)
                return 0;
        }
        grown.steps[grown.n_steps] = c->steps[k];
        grown.code[grown.n_steps] = ins;
        grown.n_steps++;
    }
    *c = grown;
    return 1;
}

/* The synthetic node of a fused chain and everything it points at. */
typedef struct chain_node {
    ir_node node;
    ir_attr attrs[2];
    int64_t program[EWC_MAX_INSTRUCTIONS * EWC_INTS_PER_INSTRUCTION];
    float params[EWC_MAX_INSTRUCTIONS * EWC_FLOATS_PER_INSTRUCTION];
    int inputs[EWC_MAX_INPUTS];
    int output;
    char name[160];
} chain_node;

/* Turns the chain's last step into the fused step; the others go. */
static fg_status *replace_chain(plan *p, const chain *c, char *removed)
{
    const int last = c->steps[c->n_steps - 1];
    plan_step *s = &p->steps[last];
    chain_node *cn;
    FG_TRY(plan_own_alloc(p, sizeof *cn, (void **)&cn));
    memset(cn, 0, sizeof *cn);
    const ir_node *first_node = p->steps[c->steps[0]].node;
    snprintf(cn->name, sizeof cn->name, "%s..%s (%d fused)", first_node->name ? first_node->name : "",
             s->node->name ? s->node->name : "", c->n_steps);
    for (int i = 0; i < c->n_steps; i++) {
        const ewc_instruction *ins = &c->code[i];
        int64_t *w = cn->program + i * EWC_INTS_PER_INSTRUCTION;
        float *f = cn->params + i * EWC_FLOATS_PER_INSTRUCTION;
        w[0] = ins->op;
        w[1] = ins->operand;
        w[2] = ins->input;
        w[3] = ins->swapped;
        w[4] = ins->act.kind;
        w[5] = ins->save;
        f[0] = ins->scalar;
        f[1] = ins->alpha;
        f[2] = ins->beta;
        f[3] = ins->act.alpha;
        f[4] = ins->act.beta;
    }
    cn->attrs[0].name = "program";
    cn->attrs[0].type = IR_ATTR_INTS;
    cn->attrs[0].n = c->n_steps * EWC_INTS_PER_INSTRUCTION;
    cn->attrs[0].ints = cn->program;
    cn->attrs[1].name = "params";
    cn->attrs[1].type = IR_ATTR_FLOATS;
    cn->attrs[1].n = c->n_steps * EWC_FLOATS_PER_INSTRUCTION;
    cn->attrs[1].floats = cn->params;
    memcpy(cn->inputs, c->inputs, sizeof(int) * (size_t)c->n_inputs);
    cn->output = s->out[0];
    cn->node.name = cn->name;
    cn->node.op_type = EWC_OP_TYPE;
    cn->node.domain = EWC_DOMAIN;
    cn->node.n_inputs = c->n_inputs;
    cn->node.inputs = cn->inputs;
    cn->node.n_outputs = 1;
    cn->node.outputs = &cn->output;
    cn->node.n_attrs = 2;
    cn->node.attrs = cn->attrs;

    op_activation none = {OP_ACT_NONE, 0, 0}; /* the program applies every activation */
    fg_status *st = plan_replace_step(p, s, &cn->node, op_find(EWC_DOMAIN, EWC_OP_TYPE), none);
    if (st)
        return fg_error_wrap(st, "fusing element-wise steps (a bug in facegraph)");
    for (int i = 0; i + 1 < c->n_steps; i++) {
        plan_step *gone = &p->steps[c->steps[i]];
        p->values[gone->out[0]].kind = PLAN_UNUSED;
        removed[c->steps[i]] = 1;
    }
    return NULL;
}

fg_status *fuse_elementwise_chains(plan *p, char *removed)
{
    const char *env = getenv("FACEGRAPH_FUSE_ELEMENTWISE");
    if (env && !strcmp(env, "0"))
        return NULL;
    char *in_chain = calloc((size_t)p->n_steps + 1, 1);
    if (!in_chain)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory while planning");
    plan_readers r;
    fg_status *st = plan_readers_count(p, removed, &r);
    const int *consumers = r.consumers, *reader = r.reader, *producer = r.producer;
    for (int i = 0; i < p->n_steps && !st; i++) {
        if (removed[i] || in_chain[i])
            continue;
        chain c;
        memset(&c, 0, sizeof c);
        if (!chain_add(p, &c, i, -1))
            continue;
        int cur = p->steps[i].out[0];
        while (consumers[cur] == 1 && reader[cur] > c.steps[c.n_steps - 1] && !removed[reader[cur]] &&
               chain_add(p, &c, reader[cur], cur))
            cur = p->steps[reader[cur]].out[0];
        if (c.n_steps < 2)
            continue;
        prepend_producer(p, &c, producer, consumers, removed, in_chain);
        for (int k = 0; k < c.n_steps; k++)
            in_chain[c.steps[k]] = 1;
        st = replace_chain(p, &c, removed);
    }
    plan_readers_free(&r);
    free(in_chain);
    return st;
}
