#include "cpu/cpu.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

fg_status *cpu_grow_buffer(void **buf, size_t *have, size_t want)
{
    if (want <= *have)
        return NULL;
    void *grown = fg_aligned_alloc(want);
    if (!grown)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory: %zu bytes for a data-dependent tensor", want);
    fg_aligned_free(*buf);
    *buf = grown;
    *have = want;
    return NULL;
}

/* A node downstream of a data-dependent shape: infer, size, prepare, run. */
static fg_status *run_dynamic_step(plan *p, plan_step *s, void **scratch, size_t *scratch_have)
{
    for (int j = 0; j < s->n_out; j++)
        memset(&s->out_t[j], 0, sizeof s->out_t[j]);
    s->call.out_bounded = 0;
    s->call.scratch_bytes = 0;
    fg_status *st = s->op->infer(&s->call);
    if (st == op_need_value())
        return fg_error(FG_ERR_INTERNAL, "node '%s' (%s): shape still unknown at run time", s->node->name,
                        s->node->op_type);
    if (st)
        return st;
    for (int j = 0; j < s->n_out; j++) {
        int id = s->out[j];
        if (id < 0)
            continue;
        plan_value *v = &p->values[id];
        v->kind = PLAN_DYNAMIC;
        size_t bytes = fg_tensor_nbytes(&s->out_t[j]);
        FG_TRY(cpu_grow_buffer(&v->heap, &v->heap_bytes, bytes ? bytes : 1));
        v->t = s->out_t[j];
        s->out_t[j].data = v->heap;
    }
    if (s->op->prepare) {
        st = s->op->prepare(&s->call);
        s->prepared = 1;
    }
    if (!st)
        st = cpu_grow_buffer(scratch, scratch_have, s->call.scratch_bytes);
    s->call.scratch = *scratch;
    if (!st)
        st = s->op->run(&s->call);
    if (s->prepared && s->op->release && s->call.state)
        s->op->release(s->call.state);
    s->call.state = NULL;
    s->prepared = 0;
    return st;
}

/* The true-length view of a bounded value, for a step that needs true
 * shapes: a prefix along axis 0, else a dense copy in the value's heap. */
static fg_status *bounded_view(plan *p, int id, fg_tensor *t)
{
    plan_value *v = &p->values[id];
    int axis = v->bound_axis;
    int64_t capacity = t->dims[axis];
    t->dims[axis] = p->values[v->count_of].count;
    if (axis == 0 || t->dims[axis] == capacity)
        return NULL;
    size_t bytes = fg_tensor_nbytes(t);
    FG_TRY(cpu_grow_buffer(&v->heap, &v->heap_bytes, bytes ? bytes : 1));
    int64_t outer = fg_shape_numel(axis, t->dims);
    size_t inner = fg_dtype_size(t->dtype);
    for (int d = axis + 1; d < t->rank; d++)
        inner *= (size_t)t->dims[d];
    size_t row = (size_t)t->dims[axis] * inner;
    for (int64_t o = 0; o < outer; o++)
        memcpy((char *)v->heap + (size_t)o * row, (const char *)t->data + (size_t)(o * capacity) * inner, row);
    t->data = v->heap;
    return NULL;
}

fg_status *cpu_run_plan(plan *p, const fg_tensor *inputs, fg_tensor *outputs)
{
    return cpu_profile_plan(p, inputs, outputs, NULL);
}

fg_status *cpu_profile_plan(plan *p, const fg_tensor *inputs, fg_tensor *outputs, double *step_ms)
{
    fg_status *st = NULL;
    omp_set_num_threads(p->threads);
    for (int i = 0; i < p->n_values; i++)
        if (p->values[i].kind == PLAN_INPUT)
            p->values[i].t.data = inputs[p->values[i].input_index].data;
    for (int k = 0; k < p->n_steps && !st; k++) {
        plan_step *s = &p->steps[k];
        if (!s->dynamic && plan_step_is_view(p, s))
            continue; /* a view: its output shares its input's bytes */
        for (int i = 0; i < s->n_in; i++) {
            int id = s->in[i];
            if (id < 0) {
                memset(&s->in_t[i], 0, sizeof s->in_t[i]);
                continue;
            }
            s->in_t[i] = p->values[id].t;
            s->in_t[i].data = plan_value_data(p, id);
            if ((s->dynamic || s->control) && p->values[id].bounded && !st)
                st = bounded_view(p, id, &s->in_t[i]);
        }
        if (st)
            break;
        double t0 = step_ms ? fg_now_seconds() : 0;
        if (s->control) {
            st = cpu_run_control(p, s);
        } else if (s->dynamic) {
            st = run_dynamic_step(p, s, &p->dynamic_scratch, &p->dynamic_scratch_bytes);
        } else {
            for (int j = 0; j < s->n_out; j++) {
                int id = s->out[j];
                if (id < 0)
                    continue;
                s->out_t[j] = p->values[id].t;
                s->out_t[j].data = plan_value_data(p, id);
            }
            s->call.scratch = (char *)p->arena + p->scratch_offset;
            st = s->op->run(&s->call);
        }
        if (step_ms)
            step_ms[k] = (fg_now_seconds() - t0) * 1e3;
        for (int j = 0; j < s->n_out && !st && s->call.out_bounded; j++) {
            if (s->out[j] < 0)
                continue;
            plan_value *v = &p->values[s->out[j]];
            int axis = s->call.out_bounded - 1;
            if (s->dynamic) { /* only dynamic steps read it: make it dense now */
                plan_compact_bounded(&s->out_t[j], axis, v->t.dims[axis]);
                v->t = s->out_t[j];
            } else { /* later steps run on the capacity; remember the length */
                v->count = s->out_t[j].dims[axis];
            }
        }
    }
    if (st)
        return st;
    for (int i = 0; i < p->n_outputs; i++) {
        int id = p->outputs[i];
        outputs[i] = p->values[id].t;
        outputs[i].data = plan_value_data(p, id);
        outputs[i].location = FG_HOST;
        if (p->values[id].bounded) {
            int axis = p->values[id].bound_axis;
            int64_t capacity = outputs[i].dims[axis];
            outputs[i].dims[axis] = p->values[p->values[id].count_of].count;
            plan_compact_bounded(&outputs[i], axis, capacity);
        }
    }
    return NULL;
}
