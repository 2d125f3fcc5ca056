/* The segment runner: static pieces on a piece backend (CPU or GPU), If and
 * Loop decided on the host. See segments.h. */
#include "runtime/segments.h"

#include "cpu/cpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef FG_HAVE_CUDA
#include <cuda_runtime.h>
#endif

/* A grow-only buffer in host or device memory. */
typedef struct seg_buffer {
    void *data;
    size_t bytes;
    fg_location location;
} seg_buffer;

typedef struct seg_instance seg_instance;

/* Where pieces run: binds a planned piece, runs it on inputs that are in
 * its memory (location), gives outputs that view its memory. */
typedef struct piece_backend {
    const char *name;
    fg_location location;
    fg_status *(*bind)(seg_runner *r, seg_instance *inst);
    fg_status *(*run)(seg_runner *r, seg_instance *inst, fg_tensor *outputs);
    void (*unbind)(seg_instance *inst);
} piece_backend;

/* A piece planned for one input signature. */
struct seg_instance {
    const piece_backend *backend;
    plan *p;
    void *bound;          /* the GPU backend's cuda_plan */
    int n_in;
    seg_buffer *stage;    /* per input: its copy when it lives in other memory */
    fg_tensor *in;        /* per input: the view handed to the backend */
    int last_run;         /* runner serial of the latest run that used it */
    char reason[256];     /* why it is not a captured graph, once known */
    seg_instance *next;
};

struct chain_rt;

/* Run-time state of one segment. */
typedef struct seg_state {
    seg_instance *instances;   /* piece: one per input signature */
    fg_tensor *in, *out;       /* piece: its inputs and outputs; control: the node's outputs */
    struct chain_rt *sub[2];   /* control: If then / else, Loop body */
    /* Loop */
    int n_carried, n_scan;
    fg_tensor *body_in, *body_out, *carried;
    seg_buffer *carried_buf[2];
    seg_buffer *scan_buf;
    fg_tensor *scan_first;
    int64_t *scan_count;
    size_t *scan_used;
} seg_state;

/* A graph's run: its values by id, and the enclosing graph's run. */
typedef struct chain_rt {
    const segment_chain *chain;
    fg_tensor *env;
    char *have;
    seg_state *states;
    fg_tensor *outputs;
    struct chain_rt *parent;
} chain_rt;

struct seg_runner {
    const ir_model *model;
    seg_runner_options options;
    const piece_backend *backend;
    segment_chain *chain;
    chain_rt *top;
    seg_buffer *out_buf;    /* per model output: a copy in the caller's memory */
    int serial;
    int plans, dynamic_plans;
    size_t arena_bytes;
    seg_runner_stats stats; /* of the latest run */
    char warning[512];
#ifdef FG_HAVE_CUDA
    cudaStream_t stream;    /* the runner's copies between pieces */
#endif
};

/* ------------------------------------------------------------- memory */

static fg_status *copy_bytes(seg_runner *r, void *dst, fg_location dst_loc, const void *src, fg_location src_loc,
                             size_t bytes)
{
    if (!bytes || dst == src)
        return NULL;
    if (dst_loc == FG_HOST && src_loc == FG_HOST) {
        memmove(dst, src, bytes);
        return NULL;
    }
#ifdef FG_HAVE_CUDA
    enum cudaMemcpyKind kind = dst_loc == FG_HOST   ? cudaMemcpyDeviceToHost
                               : src_loc == FG_HOST ? cudaMemcpyHostToDevice
                                                    : cudaMemcpyDeviceToDevice;
    cudaError_t err = cudaMemcpyAsync(dst, src, bytes, kind, r->stream);
    if (err == cudaSuccess)
        err = cudaStreamSynchronize(r->stream);
    if (err != cudaSuccess)
        return fg_error(err == cudaErrorMemoryAllocation ? FG_ERR_OUT_OF_MEMORY : FG_ERR_DEVICE,
                        "copying a value between graph segments failed on the GPU: %s", cudaGetErrorString(err));
    return NULL;
#else
    (void)r;
    return fg_error(FG_ERR_INTERNAL, "a GPU tensor in a build without the CUDA provider");
#endif
}

static void buffer_release(seg_buffer *b)
{
    if (!b->data)
        return;
#ifdef FG_HAVE_CUDA
    if (b->location == FG_DEVICE)
        cudaFree(b->data);
    else
#endif
        fg_aligned_free(b->data);
    b->data = NULL;
    b->bytes = 0;
}

/* At least want bytes in loc; the first keep bytes survive a move. */
static fg_status *buffer_reserve(seg_runner *r, seg_buffer *b, fg_location loc, size_t want, size_t keep)
{
    if (!want)
        want = 1;
    if (b->data && b->location == loc && b->bytes >= want)
        return NULL;
    void *d = NULL;
    if (loc == FG_HOST) {
        d = fg_aligned_alloc(want);
    } else {
#ifdef FG_HAVE_CUDA
        if (cudaMalloc(&d, want) != cudaSuccess) {
            cudaGetLastError();
            d = NULL;
        }
#endif
    }
    if (!d)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of %s memory: %zu bytes for a value between graph segments",
                        loc == FG_HOST ? "host" : "GPU", want);
    fg_status *st = keep && b->data ? copy_bytes(r, d, loc, b->data, b->location, keep) : NULL;
    seg_buffer old = *b;
    b->data = d;
    b->bytes = want;
    b->location = loc;
    if (st) {
        buffer_release(b);
        *b = old;
        return st;
    }
    buffer_release(&old);
    return NULL;
}

/* Element 0 of t, on the host: the host decision. */
static fg_status *read_scalar(seg_runner *r, const fg_tensor *t, int64_t *value)
{
    if (t->location == FG_HOST) {
        *value = fg_load_i64(t->dtype, t->data, 0);
        return NULL;
    }
    uint64_t element = 0;
    size_t size = fg_dtype_size(t->dtype);
    if (size > sizeof element)
        return fg_error(FG_ERR_DTYPE, "a %s condition is not supported", fg_dtype_name(t->dtype));
    FG_TRY(copy_bytes(r, &element, FG_HOST, t->data, FG_DEVICE, size));
    *value = fg_load_i64(t->dtype, &element, 0);
    return NULL;
}

/* ------------------------------------------------------------- piece backends */

/* Inputs where the instance's backend reads them. */
static fg_status *stage_inputs(seg_runner *r, seg_instance *inst, const fg_tensor *inputs)
{
    fg_location want = inst->backend->location;
    for (int j = 0; j < inst->n_in; j++) {
        inst->in[j] = inputs[j];
        if (inputs[j].location == want)
            continue;
        size_t bytes = fg_tensor_nbytes(&inputs[j]);
        FG_TRY(buffer_reserve(r, &inst->stage[j], want, bytes, 0));
        FG_TRY(copy_bytes(r, inst->stage[j].data, want, inputs[j].data, inputs[j].location, bytes));
        inst->in[j].data = inst->stage[j].data;
        inst->in[j].location = want;
    }
    return NULL;
}

static fg_status *cpu_bind(seg_runner *r, seg_instance *inst)
{
    (void)r;
    (void)inst;
    return NULL;
}

static fg_status *cpu_run(seg_runner *r, seg_instance *inst, fg_tensor *outputs)
{
    (void)r;
    return cpu_run_plan(inst->p, inst->in, outputs);
}

static void cpu_unbind(seg_instance *inst) { (void)inst; }

static const piece_backend cpu_backend = {"cpu", FG_HOST, cpu_bind, cpu_run, cpu_unbind};

#ifdef FG_HAVE_CUDA
static fg_status *gpu_bind(seg_runner *r, seg_instance *inst)
{
    cuda_plan *cp = NULL;
    fg_status *st = cuda_plan_create(r->options.cuda, r->options.weights, inst->p, &r->options.plan_options, &cp);
    if (st && r->options.cpu_fallback && fg_status_code(st) == FG_ERR_UNSUPPORTED) {
        snprintf(inst->reason, sizeof inst->reason, "runs on the cpu provider: %s", fg_status_message(st));
        if (!r->warning[0])
            snprintf(r->warning, sizeof r->warning, "a graph segment runs on the cpu provider: %s",
                     fg_status_message(st));
        fg_status_free(st);
        inst->backend = &cpu_backend;
        return NULL;
    }
    inst->bound = cp;
    return st;
}

static fg_status *gpu_run(seg_runner *r, seg_instance *inst, fg_tensor *outputs)
{
    cuda_plan *cp = inst->bound;
    FG_TRY(cuda_plan_run(cp, inst->in, outputs));
    cuda_plan_stats s;
    cuda_plan_get_stats(cp, &s);
    r->stats.kernels += s.kernels_per_run;
    r->stats.device_ms += s.device_ms;
    if (!s.graph_adopted)
        snprintf(inst->reason, sizeof inst->reason, "%s", s.graph_reason);
    else
        inst->reason[0] = 0;
    return NULL;
}

static void gpu_unbind(seg_instance *inst)
{
    if (inst->bound)
        cuda_plan_free(inst->bound);
    inst->bound = NULL;
}

static const piece_backend gpu_backend = {"cuda", FG_DEVICE, gpu_bind, gpu_run, gpu_unbind};
#endif

static void instance_free(seg_instance *inst)
{
    inst->backend->unbind(inst);
    plan_free(inst->p);
    for (int j = 0; inst->stage && j < inst->n_in; j++)
        buffer_release(&inst->stage[j]);
    free(inst->stage);
    free(inst->in);
    free(inst);
}

/* ------------------------------------------------------------- runtime tree */

static void chain_rt_free(chain_rt *c)
{
    if (!c)
        return;
    for (int i = 0; c->states && i < c->chain->n_segments; i++) {
        seg_state *s = &c->states[i];
        for (seg_instance *inst = s->instances; inst;) {
            seg_instance *next = inst->next;
            instance_free(inst);
            inst = next;
        }
        for (int j = 0; j < 2; j++) {
            chain_rt_free(s->sub[j]);
            for (int k = 0; s->carried_buf[j] && k < s->n_carried; k++)
                buffer_release(&s->carried_buf[j][k]);
            free(s->carried_buf[j]);
        }
        for (int k = 0; s->scan_buf && k < s->n_scan; k++)
            buffer_release(&s->scan_buf[k]);
        free(s->scan_buf);
        free(s->scan_first);
        free(s->scan_count);
        free(s->scan_used);
        free(s->in);
        free(s->out);
        free(s->body_in);
        free(s->body_out);
        free(s->carried);
    }
    free(c->states);
    free(c->env);
    free(c->have);
    free(c->outputs);
    free(c);
}

static void *zalloc(size_t n, size_t size, int *failed)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        *failed = 1;
    return p;
}

static fg_status *chain_rt_create(const segment_chain *chain, chain_rt **out)
{
    *out = NULL;
    const ir_graph *g = chain->source;
    int failed = 0;
    chain_rt *c = zalloc(1, sizeof *c, &failed);
    if (!c)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory preparing the graph segments");
    c->chain = chain;
    c->env = zalloc((size_t)g->n_values, sizeof *c->env, &failed);
    c->have = zalloc((size_t)g->n_values, 1, &failed);
    c->outputs = zalloc((size_t)g->n_outputs, sizeof *c->outputs, &failed);
    c->states = zalloc((size_t)chain->n_segments, sizeof *c->states, &failed);
    fg_status *st = NULL;
    for (int i = 0; !failed && !st && i < chain->n_segments; i++) {
        const segment *seg = &chain->segments[i];
        seg_state *s = &c->states[i];
        if (!seg->control) {
            s->in = zalloc((size_t)seg->n_inputs, sizeof *s->in, &failed);
            s->out = zalloc((size_t)seg->n_outputs, sizeof *s->out, &failed);
            continue;
        }
        s->out = zalloc((size_t)seg->control->n_outputs, sizeof *s->out, &failed);
        for (int j = 0; j < seg->n_sub && !st; j++)
            st = chain_rt_create(seg->sub[j], &s->sub[j]);
        if (st || strcmp(seg->control->op_type, "Loop") != 0 || seg->n_sub < 1)
            continue;
        const ir_graph *body = seg->sub[0]->source;
        s->n_carried = seg->control->n_inputs - 2 > 0 ? seg->control->n_inputs - 2 : 0;
        s->n_scan = body->n_outputs - 1 - s->n_carried > 0 ? body->n_outputs - 1 - s->n_carried : 0;
        s->body_in = zalloc((size_t)(2 + s->n_carried), sizeof *s->body_in, &failed);
        s->body_out = zalloc((size_t)body->n_outputs, sizeof *s->body_out, &failed);
        s->carried = zalloc((size_t)s->n_carried, sizeof *s->carried, &failed);
        for (int j = 0; j < 2; j++)
            s->carried_buf[j] = zalloc((size_t)s->n_carried, sizeof(seg_buffer), &failed);
        s->scan_buf = zalloc((size_t)s->n_scan, sizeof *s->scan_buf, &failed);
        s->scan_first = zalloc((size_t)s->n_scan, sizeof *s->scan_first, &failed);
        s->scan_count = zalloc((size_t)s->n_scan, sizeof *s->scan_count, &failed);
        s->scan_used = zalloc((size_t)s->n_scan, sizeof *s->scan_used, &failed);
    }
    if (failed && !st)
        st = fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory preparing the graph segments");
    if (st) {
        chain_rt_free(c);
        return st;
    }
    *out = c;
    return NULL;
}

/* ------------------------------------------------------------- running */

static fg_status *run_chain(seg_runner *r, chain_rt *c, chain_rt *parent, const fg_tensor *inputs, int n_inputs);

/* The current view of value id of c's graph: produced earlier in this
 * run, an initializer, or read from an enclosing graph by name. */
static fg_status *lookup(chain_rt *c, int id, fg_tensor *t)
{
    const ir_graph *g = c->chain->source;
    if (c->have[id]) {
        *t = c->env[id];
        return NULL;
    }
    const ir_value *v = &g->values[id];
    if (v->initializer) {
        const ir_tensor *init = v->initializer;
        memset(t, 0, sizeof *t);
        t->dtype = init->dtype;
        t->rank = init->rank;
        memcpy(t->dims, init->dims, sizeof t->dims);
        t->data = (void *)init->data;
        t->location = FG_HOST;
        c->env[id] = *t;
        c->have[id] = 1;
        return NULL;
    }
    if (v->outer)
        for (chain_rt *up = c->parent; up; up = up->parent) {
            int up_id = ir_graph_find_value(up->chain->source, v->name);
            if (up_id >= 0)
                return lookup(up, up_id, t);
        }
    return fg_error(FG_ERR_CORRUPT, "graph '%s': value '%s' is read before any node produces it",
                    g->name ? g->name : "", v->name);
}

static void set_value(chain_rt *c, int id, const fg_tensor *t)
{
    if (id < 0)
        return;
    c->env[id] = *t;
    c->have[id] = 1;
}

static fg_status *new_instance(seg_runner *r, const segment *seg, const fg_tensor *inputs, seg_instance **out)
{
    seg_instance *inst = calloc(1, sizeof *inst);
    if (!inst)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory planning a graph segment");
    inst->n_in = seg->n_inputs;
    inst->stage = calloc((size_t)seg->n_inputs + 1, sizeof *inst->stage);
    inst->in = calloc((size_t)seg->n_inputs + 1, sizeof *inst->in);
    inst->backend = r->backend;
    inst->last_run = -1;
    fg_status *st = NULL;
    if (!inst->stage || !inst->in)
        st = fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory planning a graph segment");
    if (!st)
        st = plan_for_graph(r->model, seg->graph, inputs, seg->n_inputs, r->options.threads,
                                inst->backend != &cpu_backend, &inst->p);
    if (!st)
        st = inst->backend->bind(r, inst);
    if (st) {
        inst->backend = &cpu_backend; /* nothing bound */
        instance_free(inst);
        return st;
    }
    r->plans++;
    r->dynamic_plans += inst->p->has_dynamic;
    r->arena_bytes += inst->p->arena_bytes;
    *out = inst;
    return NULL;
}

static fg_status *run_piece(seg_runner *r, chain_rt *c, seg_state *s, const segment *seg)
{
    for (int j = 0; j < seg->n_inputs; j++)
        FG_TRY(lookup(c, seg->inputs[j], &s->in[j]));
    seg_instance *inst = s->instances;
    for (; inst; inst = inst->next)
        if (plan_matches_signature(inst->p, s->in, seg->n_inputs))
            break;
    if (!inst) {
        FG_TRY(new_instance(r, seg, s->in, &inst));
        inst->next = s->instances;
        s->instances = inst;
    }
    FG_TRY(stage_inputs(r, inst, s->in));
    FG_TRY(inst->backend->run(r, inst, s->out));
    r->stats.piece_runs++;
    if (inst->last_run != r->serial) {
        inst->last_run = r->serial;
        r->stats.pieces++;
        if (inst->backend->location == FG_HOST && r->backend != &cpu_backend)
            r->stats.pieces_on_cpu++;
        else if (!inst->reason[0] && r->backend != &cpu_backend)
            r->stats.pieces_captured++;
    }
    for (int j = 0; j < seg->n_outputs; j++)
        set_value(c, seg->outputs[j], &s->out[j]);
    return NULL;
}

static fg_status *run_if(seg_runner *r, chain_rt *c, seg_state *s, const segment *seg)
{
    const ir_node *node = seg->control;
    if (node->n_inputs < 1 || node->inputs[0] < 0 || seg->n_sub != 2)
        return fg_error(FG_ERR_CORRUPT, "node '%s' (If) needs a condition and two branches", node->name);
    fg_tensor cond;
    FG_TRY(lookup(c, node->inputs[0], &cond));
    if (fg_tensor_numel(&cond) < 1)
        return fg_error(FG_ERR_SHAPE, "node '%s' (If): the condition is empty", node->name);
    int64_t value = 0;
    FG_TRY(read_scalar(r, &cond, &value));
    r->stats.host_decisions++;
    int take_then = value != 0;
    chain_rt *branch = s->sub[take_then ? 0 : 1];
    const ir_graph *bg = branch->chain->source;
    if (bg->n_outputs != node->n_outputs)
        return fg_error(FG_ERR_CORRUPT, "node '%s' (If): the %s branch gives %d outputs, the node has %d",
                        node->name, take_then ? "then" : "else", bg->n_outputs, node->n_outputs);
    FG_TRY(run_chain(r, branch, c, NULL, 0));
    for (int j = 0; j < node->n_outputs; j++)
        set_value(c, node->outputs[j], &branch->outputs[j]);
    return NULL;
}

/* Appends one iteration's scan output k. */
static fg_status *append_scan(seg_runner *r, seg_state *s, const ir_node *node, int k, const fg_tensor *o)
{
    size_t bytes = fg_tensor_nbytes(o);
    if (s->scan_count[k] == 0)
        s->scan_first[k] = *o;
    else if (!fg_shape_equal(o->rank, o->dims, s->scan_first[k].rank, s->scan_first[k].dims))
        return fg_error(FG_ERR_SHAPE, "node '%s' (Loop): scan output %d changes shape between iterations",
                        node->name, k);
    seg_buffer *b = &s->scan_buf[k];
    fg_location loc = r->backend->location;
    size_t need = s->scan_used[k] + bytes;
    if (!b->data || b->location != loc || need > b->bytes) {
        fg_status *st = buffer_reserve(r, b, loc, need > b->bytes ? need * 2 + 64 : b->bytes, s->scan_used[k]);
        if (st)
            return fg_error_wrap(st, "node '%s' (Loop)", node->name);
    }
    FG_TRY(copy_bytes(r, (char *)b->data + s->scan_used[k], loc, o->data, o->location, bytes));
    s->scan_used[k] = need;
    s->scan_count[k]++;
    return NULL;
}

static fg_status *run_loop(seg_runner *r, chain_rt *c, seg_state *s, const segment *seg)
{
    const ir_node *node = seg->control;
    if (seg->n_sub != 1)
        return fg_error(FG_ERR_CORRUPT, "node '%s' (Loop) needs one body graph", node->name);
    chain_rt *body = s->sub[0];
    const ir_graph *bg = body->chain->source;
    int n_carried = node->n_inputs - 2;
    int n_scan = bg->n_outputs - 1 - n_carried;
    if (n_carried < 0 || n_scan < 0 || bg->n_inputs != 2 + n_carried)
        return fg_error(FG_ERR_CORRUPT,
                        "node '%s' (Loop): the body takes %d inputs and gives %d outputs for %d loop-carried values",
                        node->name, bg->n_inputs, bg->n_outputs, n_carried < 0 ? 0 : n_carried);
    int64_t max_trips = INT64_MAX;
    int cond = 1;
    fg_tensor t;
    if (node->inputs[0] >= 0) {
        FG_TRY(lookup(c, node->inputs[0], &t));
        int64_t m = 0;
        if (fg_tensor_numel(&t))
            FG_TRY(read_scalar(r, &t, &m));
        max_trips = m;
    }
    if (node->inputs[1] >= 0) {
        FG_TRY(lookup(c, node->inputs[1], &t));
        int64_t v = 0;
        if (fg_tensor_numel(&t))
            FG_TRY(read_scalar(r, &t, &v));
        cond = v != 0;
        r->stats.host_decisions++;
    }
    for (int k = 0; k < n_carried; k++)
        FG_TRY(lookup(c, node->inputs[2 + k], &s->carried[k]));
    for (int k = 0; k < n_scan; k++) {
        s->scan_count[k] = 0;
        s->scan_used[k] = 0;
        memset(&s->scan_first[k], 0, sizeof s->scan_first[k]);
    }
    fg_location loc = r->backend->location;
    int cur = 0;
    int64_t iteration = 0;
    uint8_t cond_value = 1;
    for (; iteration < max_trips && cond; iteration++) {
        fg_tensor *in = s->body_in, *out = body->outputs;
        memset(in, 0, sizeof *in * 2);
        in[0].dtype = FG_INT64;
        in[0].data = &iteration;
        cond_value = (uint8_t)cond;
        in[1].dtype = FG_BOOL;
        in[1].data = &cond_value;
        for (int k = 0; k < n_carried; k++)
            in[2 + k] = s->carried[k];
        FG_TRY(run_chain(r, body, c, in, 2 + n_carried));
        int64_t v = 0;
        if (fg_tensor_numel(&out[0]))
            FG_TRY(read_scalar(r, &out[0], &v));
        cond = v != 0;
        r->stats.host_decisions++;
        for (int k = 0; k < n_scan; k++)
            FG_TRY(append_scan(r, s, node, k, &out[1 + n_carried + k]));
        /* carried values into the other buffer: the outputs may view this iteration's inputs */
        int next = 1 - cur;
        for (int k = 0; k < n_carried; k++) {
            const fg_tensor *o = &out[1 + k];
            size_t bytes = fg_tensor_nbytes(o);
            seg_buffer *b = &s->carried_buf[next][k];
            fg_status *st = buffer_reserve(r, b, loc, bytes, 0);
            if (st)
                return fg_error_wrap(st, "node '%s' (Loop)", node->name);
            FG_TRY(copy_bytes(r, b->data, loc, o->data, o->location, bytes));
        }
        for (int k = 0; k < n_carried; k++) {
            s->carried[k] = out[1 + k];
            s->carried[k].data = s->carried_buf[next][k].data;
            s->carried[k].location = loc;
        }
        cur = next;
    }
    for (int k = 0; k < n_carried && k < node->n_outputs; k++)
        set_value(c, node->outputs[k], &s->carried[k]);
    for (int k = 0; k < n_scan && n_carried + k < node->n_outputs; k++) {
        fg_tensor out = s->scan_first[k];
        if (out.rank + 1 > FG_MAX_RANK)
            return fg_error(FG_ERR_UNSUPPORTED, "node '%s' (Loop): scan output rank too high", node->name);
        memmove(out.dims + 1, out.dims, sizeof(int64_t) * (size_t)out.rank);
        out.rank++;
        out.dims[0] = s->scan_count[k];
        if (s->scan_count[k] == 0) { /* no iteration: rank from the body's declaration */
            const ir_value *v = &bg->values[bg->outputs[1 + n_carried + k]];
            out.dtype = v->dtype;
            out.rank = v->rank >= 0 ? v->rank + 1 : 1;
            for (int d = 1; d < out.rank; d++)
                out.dims[d] = v->dims[d - 1] > 0 ? v->dims[d - 1] : 0;
            FG_TRY(buffer_reserve(r, &s->scan_buf[k], loc, 1, 0));
        }
        out.data = s->scan_buf[k].data;
        out.location = s->scan_buf[k].location;
        set_value(c, node->outputs[n_carried + k], &out);
    }
    return NULL;
}

/* Runs one graph: inputs by position, enclosing values through parent;
 * c->outputs receives the graph's outputs. */
static fg_status *run_chain(seg_runner *r, chain_rt *c, chain_rt *parent, const fg_tensor *inputs, int n_inputs)
{
    const segment_chain *chain = c->chain;
    const ir_graph *g = chain->source;
    if (n_inputs != g->n_inputs)
        return fg_error(FG_ERR_CORRUPT, "graph '%s' takes %d inputs, %d were given", g->name ? g->name : "",
                        g->n_inputs, n_inputs);
    c->parent = parent;
    memset(c->have, 0, (size_t)g->n_values);
    for (int i = 0; i < n_inputs; i++)
        set_value(c, g->inputs[i], &inputs[i]);
    for (int i = 0; i < chain->n_segments; i++) {
        const segment *seg = &chain->segments[i];
        seg_state *s = &c->states[i];
        if (!seg->control)
            FG_TRY(run_piece(r, c, s, seg));
        else if (!strcmp(seg->control->op_type, "If"))
            FG_TRY(run_if(r, c, s, seg));
        else
            FG_TRY(run_loop(r, c, s, seg));
    }
    for (int i = 0; i < g->n_outputs; i++)
        FG_TRY(lookup(c, g->outputs[i], &c->outputs[i]));
    return NULL;
}

/* ------------------------------------------------------------- runner */

fg_status *seg_runner_create(const ir_model *model, const seg_runner_options *options, seg_runner **out)
{
    *out = NULL;
    seg_runner *r = calloc(1, sizeof *r);
    if (!r)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory preparing the graph segments");
    r->model = model;
    r->options = *options;
    if (r->options.threads < 1)
        r->options.threads = 1;
    r->backend = &cpu_backend;
    r->serial = -1;
    fg_status *st = segments_split(model->graph, &r->chain);
    if (!st)
        st = chain_rt_create(r->chain, &r->top);
    if (!st) {
        r->out_buf = calloc((size_t)model->graph->n_outputs + 1, sizeof *r->out_buf);
        if (!r->out_buf)
            st = fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory preparing the graph segments");
    }
#ifdef FG_HAVE_CUDA
    if (!st && options->cuda) {
        r->backend = &gpu_backend;
        cudaError_t err = cudaSetDevice(cuda_device_id(options->cuda));
        if (err == cudaSuccess)
            err = cudaStreamCreateWithFlags(&r->stream, cudaStreamNonBlocking);
        if (err != cudaSuccess) {
            r->stream = NULL;
            st = fg_error(FG_ERR_DEVICE, "creating a CUDA stream for the graph segments failed: %s",
                          cudaGetErrorString(err));
        }
    }
#endif
    if (st) {
        seg_runner_free(r);
        return st;
    }
    *out = r;
    return NULL;
}

void seg_runner_free(seg_runner *r)
{
    if (!r)
        return;
    chain_rt_free(r->top);
    for (int i = 0; r->out_buf && i < r->model->graph->n_outputs; i++)
        buffer_release(&r->out_buf[i]);
    free(r->out_buf);
    segments_free(r->chain);
#ifdef FG_HAVE_CUDA
    if (r->stream)
        cudaStreamDestroy(r->stream);
#endif
    free(r);
}

/* The model's inputs against its declaration (as the whole-graph planner checks them). */
static fg_status *check_inputs(const ir_graph *g, const fg_tensor *inputs, int n_inputs)
{
    if (n_inputs != g->n_inputs)
        return fg_error(FG_ERR_INVALID_ARGUMENT, "the model takes %d inputs, %d were given", g->n_inputs, n_inputs);
    for (int i = 0; i < n_inputs; i++) {
        const ir_value *v = &g->values[g->inputs[i]];
        const fg_tensor *t = &inputs[i];
        FG_TRY(plan_check_input(v, t));
        if (!t->data && fg_tensor_numel(t) > 0)
            return fg_error(FG_ERR_INVALID_ARGUMENT, "input '%s' has no data", v->name);
    }
    return NULL;
}

/* "If 'a', Loop 'b'" and what the host decides, for the reason line. */
static void describe_control(const segment_chain *chain, char *list, size_t list_size, const char **decides)
{
    int n_if = 0, n_loop = 0, listed = 0;
    list[0] = 0;
    for (int i = 0; i < chain->n_segments; i++) {
        const ir_node *node = chain->segments[i].control;
        if (!node)
            continue;
        int is_if = !strcmp(node->op_type, "If");
        n_if += is_if;
        n_loop += !is_if;
        if (listed < 3) { /* an unnamed node by its first output */
            size_t len = strlen(list);
            const char *label = node->name[0]                              ? node->name
                                : node->n_outputs && node->outputs[0] >= 0 ? chain->source->values[node->outputs[0]].name
                                                                           : "";
            snprintf(list + len, list_size - len, "%s%s '%.60s'", listed ? ", " : "", node->op_type, label);
        }
        listed++;
    }
    if (listed > 3) {
        size_t len = strlen(list);
        snprintf(list + len, list_size - len, " and %d more", listed - 3);
    }
    *decides = n_if && n_loop ? "branches and loop conditions are decided"
               : n_if         ? "the branch is chosen"
                              : "the loop condition is read after each iteration";
}

static void finish_stats(seg_runner *r)
{
    seg_runner_stats *s = &r->stats;
    s->runs = r->serial + 1;
    s->on_cuda = r->backend != &cpu_backend;
    s->plans = r->plans;
    s->dynamic_plans = r->dynamic_plans;
    s->arena_bytes = r->arena_bytes;
    snprintf(s->warning, sizeof s->warning, "%s", r->warning);
    char list[256];
    const char *decides;
    describe_control(r->chain, list, sizeof list, &decides);
    if (!s->on_cuda) {
        snprintf(s->reason, sizeof s->reason, "%d graph segments around %s (%s on the host), on the cpu provider",
                 s->pieces, list, decides);
        return;
    }
    if (s->pieces_captured == s->pieces && !s->pieces_on_cpu) {
        snprintf(s->reason, sizeof s->reason,
                 "%d CUDA graph segments around %s (%s on the host); each replay validated bit-exact against eager",
                 s->pieces, list, decides);
        return;
    }
    /* the first segment of the latest run that is not a captured graph says why */
    const char *why = "";
    const chain_rt *stack[64];
    int top = 0;
    stack[top++] = r->top;
    while (top && !why[0]) {
        const chain_rt *c = stack[--top];
        for (int i = 0; i < c->chain->n_segments && !why[0]; i++) {
            const seg_state *st = &c->states[i];
            for (const seg_instance *inst = st->instances; inst && !why[0]; inst = inst->next)
                if (inst->last_run == r->serial && inst->reason[0])
                    why = inst->reason;
            for (int j = 0; j < 2 && top < 64; j++)
                if (st->sub[j])
                    stack[top++] = st->sub[j];
        }
    }
    snprintf(s->reason, sizeof s->reason, "%d CUDA graph segments around %s (%s on the host); %d not captured: %s",
             s->pieces, list, decides, s->pieces - s->pieces_captured, why);
}

fg_status *seg_runner_run(seg_runner *r, const fg_tensor *inputs, int n_inputs, fg_tensor *outputs)
{
    const ir_graph *g = r->model->graph;
    FG_TRY(check_inputs(g, inputs, n_inputs));
    int on_device = n_inputs > 0 && inputs[0].location == FG_DEVICE;
    for (int i = 0; i < n_inputs; i++)
        if ((inputs[i].location == FG_DEVICE) != on_device)
            return fg_error(FG_ERR_INVALID_ARGUMENT, "inputs must all be in host memory or all on the GPU");
    if (on_device && r->backend == &cpu_backend)
        return fg_error(FG_ERR_INVALID_ARGUMENT,
                        "the inputs are in GPU memory but the model runs on the cpu provider; pass host tensors");
#ifdef FG_HAVE_CUDA
    if (r->backend != &cpu_backend) {
        cudaError_t err = cudaSetDevice(cuda_device_id(r->options.cuda));
        if (err != cudaSuccess)
            return fg_error(FG_ERR_DEVICE, "selecting the GPU failed: %s", cudaGetErrorString(err));
    }
#endif
    r->serial++;
    memset(&r->stats, 0, sizeof r->stats);
    FG_TRY(run_chain(r, r->top, NULL, inputs, n_inputs));
    fg_location want = on_device ? FG_DEVICE : FG_HOST;
    for (int i = 0; i < g->n_outputs; i++) {
        outputs[i] = r->top->outputs[i];
        if (outputs[i].location == want)
            continue;
        size_t bytes = fg_tensor_nbytes(&outputs[i]);
        FG_TRY(buffer_reserve(r, &r->out_buf[i], want, bytes, 0));
        FG_TRY(copy_bytes(r, r->out_buf[i].data, want, outputs[i].data, outputs[i].location, bytes));
        outputs[i].data = r->out_buf[i].data;
        outputs[i].location = want;
    }
    finish_stats(r);
    return NULL;
}

void seg_runner_get_stats(const seg_runner *r, seg_runner_stats *stats) { *stats = r->stats; }
