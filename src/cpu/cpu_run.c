#include "cpu/cpu.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

static fg_status *grow(void **buf, size_t *have, size_t want)
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
        FG_TRY(grow(&v->heap, &v->heap_bytes, bytes ? bytes : 1));
        v->t = s->out_t[j];
        s->out_t[j].data = v->heap;
    }
    if (s->op->prepare) {
        st = s->op->prepare(&s->call);
        s->prepared = 1;
    }
    if (!st)
        st = grow(scratch, scratch_have, s->call.scratch_bytes);
    s->call.scratch = *scratch;
    if (!st)
        st = s->op->run(&s->call);
    if (s->prepared && s->op->release && s->call.state)
        s->op->release(s->call.state);
    s->call.state = NULL;
    s->prepared = 0;
    return st;
}

fg_status *cpu_run_plan(plan *p, const fg_tensor *inputs, fg_tensor *outputs)
{
    fg_status *st = NULL;
    omp_set_num_threads(p->threads);
    for (int i = 0; i < p->n_values; i++)
        if (p->values[i].kind == PLAN_INPUT)
            p->values[i].t.data = inputs[p->values[i].input_index].data;
    for (int k = 0; k < p->n_steps && !st; k++) {
        plan_step *s = &p->steps[k];
        if (!s->dynamic && s->out[0] >= 0 && p->values[s->out[0]].kind == PLAN_ALIAS)
            continue; /* a view: its output shares its input's bytes */
        for (int i = 0; i < s->n_in; i++) {
            int id = s->in[i];
            if (id < 0) {
                memset(&s->in_t[i], 0, sizeof s->in_t[i]);
                continue;
            }
            s->in_t[i] = p->values[id].t;
            s->in_t[i].data = plan_value_data(p, id);
        }
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
        if (!st && s->call.out_bounded)
            for (int j = 0; j < s->n_out; j++)
                if (s->out[j] >= 0)
                    memcpy(p->values[s->out[j]].t.dims, s->out_t[j].dims, sizeof s->out_t[j].dims);
    }
    if (st)
        return st;
    for (int i = 0; i < p->n_outputs; i++) {
        int id = p->outputs[i];
        outputs[i] = p->values[id].t;
        outputs[i].data = plan_value_data(p, id);
        outputs[i].location = FG_HOST;
    }
    return NULL;
}
