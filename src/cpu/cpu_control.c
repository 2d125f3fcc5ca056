/* If and Loop on the CPU: pick a branch or iterate a body, each through a
 * sub-plan cached per signature on the step. */
#include "cpu/cpu.h"

#include <stdlib.h>
#include <string.h>

#define MAX_SUB_IO 64

/* The view of value id in the current run. */
static fg_tensor value_view(plan *p, int id)
{
    fg_tensor t = p->values[id].t;
    t.data = plan_value_data(p, id);
    return t;
}

/* Appends the enclosing values `graph` reads (by name) after n inputs. */
static fg_status *append_outer(plan *p, const plan_step *s, const ir_graph *graph, fg_tensor *inputs, int *n)
{
    int ids[MAX_SUB_IO];
    int count = plan_outer_values(graph, ids, MAX_SUB_IO);
    if (*n + count > MAX_SUB_IO)
        return fg_error(FG_ERR_UNSUPPORTED, "node '%s' (%s): its subgraph has more than %d inputs", s->node->name,
                        s->node->op_type, MAX_SUB_IO);
    for (int k = 0; k < count; k++) {
        int id = ir_graph_find_value(p->graph, graph->values[ids[k]].name);
        if (id < 0)
            return fg_error(FG_ERR_INTERNAL, "node '%s': enclosing value '%s' not found", s->node->name,
                            graph->values[ids[k]].name);
        inputs[(*n)++] = value_view(p, id);
    }
    return NULL;
}

/* Copies t into the step's output j (a grow-only buffer of the plan). */
static fg_status *store_output(plan *p, const plan_step *s, int j, const fg_tensor *t)
{
    int id = s->out[j];
    if (id < 0)
        return NULL;
    plan_value *v = &p->values[id];
    size_t bytes = fg_tensor_nbytes(t);
    fg_status *st = cpu_grow_buffer(&v->heap, &v->heap_bytes, bytes ? bytes : 1);
    if (st)
        return fg_error_wrap(st, "node '%s' (%s)", s->node->name, s->node->op_type);
    memmove(v->heap, t->data, bytes);
    v->kind = PLAN_DYNAMIC;
    v->t = *t;
    v->t.data = v->heap;
    return NULL;
}

static fg_status *run_if(plan *p, plan_step *s)
{
    fg_tensor cond = value_view(p, s->in[0]);
    if (fg_tensor_numel(&cond) < 1)
        return fg_error(FG_ERR_SHAPE, "node '%s' (If): the condition is empty", s->node->name);
    int take_then = fg_load_i64(cond.dtype, cond.data, 0) != 0;
    const ir_graph *branch = ir_attr_find(s->node, take_then ? "then_branch" : "else_branch")->g;
    fg_tensor inputs[MAX_SUB_IO], outputs[MAX_SUB_IO];
    int n = 0;
    FG_TRY(append_outer(p, s, branch, inputs, &n));
    plan *sub;
    FG_TRY(plan_subplan_for(p, s, branch, inputs, n, &sub));
    if (sub->n_outputs != s->n_out || sub->n_outputs > MAX_SUB_IO)
        return fg_error(FG_ERR_CORRUPT, "node '%s' (If): the %s branch gives %d outputs, the node has %d",
                        s->node->name, take_then ? "then" : "else", sub->n_outputs, s->n_out);
    FG_TRY(cpu_run_plan(sub, inputs, outputs));
    for (int j = 0; j < s->n_out; j++)
        FG_TRY(store_output(p, s, j, &outputs[j]));
    return NULL;
}

/* Scan outputs: appended per iteration into a growing buffer. */
typedef struct stacked {
    char *data;
    size_t bytes, cap;
    fg_tensor first;
    int64_t count;
} stacked;

static fg_status *run_loop(plan *p, plan_step *s)
{
    const ir_node *node = s->node;
    const ir_graph *body = ir_attr_find(node, "body")->g;
    int n_carried = node->n_inputs - 2;
    int n_scan = body->n_outputs - 1 - n_carried;
    if (n_carried + 2 + 16 > MAX_SUB_IO || n_scan > MAX_SUB_IO)
        return fg_error(FG_ERR_UNSUPPORTED, "node '%s' (Loop): too many loop values", node->name);
    int64_t max_trips = INT64_MAX;
    int cond = 1;
    if (s->in[0] >= 0) {
        fg_tensor m = value_view(p, s->in[0]);
        max_trips = fg_tensor_numel(&m) ? fg_load_i64(m.dtype, m.data, 0) : 0;
    }
    if (s->in[1] >= 0) {
        fg_tensor c = value_view(p, s->in[1]);
        cond = fg_tensor_numel(&c) ? fg_load_i64(c.dtype, c.data, 0) != 0 : 0;
    }
    /* carried values live in owned copies between iterations */
    fg_tensor carried[MAX_SUB_IO];
    void *carried_buf[MAX_SUB_IO] = {0};
    stacked scans[MAX_SUB_IO];
    memset(scans, 0, sizeof scans);
    fg_status *st = NULL;
    for (int k = 0; k < n_carried && !st; k++) {
        carried[k] = value_view(p, s->in[2 + k]);
        size_t bytes = fg_tensor_nbytes(&carried[k]);
        carried_buf[k] = malloc(bytes ? bytes : 1);
        if (!carried_buf[k])
            st = fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory in Loop '%s'", node->name);
        else
            memcpy(carried_buf[k], carried[k].data, bytes);
        carried[k].data = carried_buf[k];
    }
    int64_t iteration = 0;
    uint8_t cond_value = 1;
    for (; !st && iteration < max_trips && cond; iteration++) {
        fg_tensor inputs[MAX_SUB_IO], outputs[MAX_SUB_IO];
        int n = 0;
        inputs[n++] = (fg_tensor){FG_INT64, 0, {0}, &iteration, FG_HOST};
        cond_value = (uint8_t)cond;
        inputs[n++] = (fg_tensor){FG_BOOL, 0, {0}, &cond_value, FG_HOST};
        for (int k = 0; k < n_carried; k++)
            inputs[n++] = carried[k];
        st = append_outer(p, s, body, inputs, &n);
        plan *sub = NULL;
        if (!st)
            st = plan_subplan_for(p, s, body, inputs, n, &sub);
        if (!st)
            st = cpu_run_plan(sub, inputs, outputs);
        if (st)
            break;
        cond = fg_tensor_numel(&outputs[0]) ? fg_load_i64(outputs[0].dtype, outputs[0].data, 0) != 0 : 0;
        for (int k = 0; k < n_scan && !st; k++) {
            const fg_tensor *o = &outputs[1 + n_carried + k];
            stacked *sc = &scans[k];
            size_t bytes = fg_tensor_nbytes(o);
            if (sc->count == 0)
                sc->first = *o;
            else if (!fg_shape_equal(o->rank, o->dims, sc->first.rank, sc->first.dims))
                st = fg_error(FG_ERR_SHAPE, "node '%s' (Loop): scan output %d changes shape between iterations",
                              node->name, k);
            if (!st && sc->bytes + bytes > sc->cap) {
                size_t cap = (sc->bytes + bytes) * 2 + 64;
                char *grown = realloc(sc->data, cap);
                if (!grown)
                    st = fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory in Loop '%s'", node->name);
                else {
                    sc->data = grown;
                    sc->cap = cap;
                }
            }
            if (!st) {
                memcpy(sc->data + sc->bytes, o->data, bytes);
                sc->bytes += bytes;
                sc->count++;
            }
        }
        /* outputs may alias the inputs (Identity in the body): copy all
         * of them before releasing the previous iteration's values */
        void *next_buf[MAX_SUB_IO] = {0};
        for (int k = 0; k < n_carried && !st; k++) {
            size_t bytes = fg_tensor_nbytes(&outputs[1 + k]);
            next_buf[k] = malloc(bytes ? bytes : 1);
            if (!next_buf[k])
                st = fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory in Loop '%s'", node->name);
            else
                memcpy(next_buf[k], outputs[1 + k].data, bytes);
        }
        for (int k = 0; k < n_carried; k++) {
            if (st) {
                free(next_buf[k]);
                continue;
            }
            free(carried_buf[k]);
            carried_buf[k] = next_buf[k];
            carried[k] = outputs[1 + k];
            carried[k].data = next_buf[k];
        }
    }
    for (int k = 0; k < n_carried && !st; k++)
        st = store_output(p, s, k, &carried[k]);
    for (int k = 0; k < n_scan && !st; k++) {
        fg_tensor t = scans[k].first;
        if (t.rank + 1 > FG_MAX_RANK) {
            st = fg_error(FG_ERR_UNSUPPORTED, "node '%s' (Loop): scan output rank too high", node->name);
            break;
        }
        memmove(t.dims + 1, t.dims, sizeof(int64_t) * (size_t)t.rank);
        t.rank++;
        t.dims[0] = scans[k].count;
        if (scans[k].count == 0) { /* no iteration: rank from the body's declaration */
            const ir_value *v = &body->values[body->outputs[1 + n_carried + k]];
            t.dtype = v->dtype;
            t.rank = v->rank >= 0 ? v->rank + 1 : 1;
            for (int d = 1; d < t.rank; d++)
                t.dims[d] = v->dims[d - 1] > 0 ? v->dims[d - 1] : 0;
        }
        t.data = scans[k].data;
        st = store_output(p, s, n_carried + k, &t);
    }
    for (int k = 0; k < n_carried; k++)
        free(carried_buf[k]);
    for (int k = 0; k < n_scan; k++)
        free(scans[k].data);
    return st;
}

fg_status *cpu_run_control(plan *p, plan_step *s)
{
    if (!strcmp(s->node->op_type, "If"))
        return run_if(p, s);
    return run_loop(p, s);
}
