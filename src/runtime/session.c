#include "runtime/runtime.h"

#include "cpu/cpu.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *fg_available_providers(void) { return "cpu"; }

fg_status *fg_engine_create(const fg_engine_options *options, fg_engine **out)
{
    *out = NULL;
    fg_engine *e = calloc(1, sizeof *e);
    if (!e)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory creating the engine");
    int n = options && options->n_providers > 0 ? options->n_providers : 0;
    if (n > 8)
        n = 8;
    for (int i = 0; i < n; i++) {
        const char *name = options->providers[i];
        if (strcmp(name, "cpu") != 0) {
            fg_status *st = fg_error(FG_ERR_UNSUPPORTED,
                                     "execution provider '%s' is not available in this build; available: %s", name,
                                     fg_available_providers());
            free(e);
            return st;
        }
        snprintf(e->providers[e->n_providers++], sizeof e->providers[0], "%s", name);
    }
    if (!e->n_providers)
        snprintf(e->providers[e->n_providers++], sizeof e->providers[0], "cpu");
    e->device_id = options ? options->device_id : 0;
    e->thread_count = options && options->thread_count > 0 ? options->thread_count : omp_get_num_procs();
    *out = e;
    return NULL;
}

void fg_engine_destroy(fg_engine *engine) { free(engine); }

static void fill_value_info(const ir_value *v, fg_value_info *info)
{
    info->name = v->name;
    info->dtype = v->dtype;
    info->rank = v->rank < 0 ? 0 : v->rank;
    for (int d = 0; d < info->rank; d++) {
        info->dims[d] = v->dims[d];
        info->dim_names[d] = v->dim_names[d];
    }
}

/* Every node's op must exist and accept its attributes, at load time. */
static fg_status *check_ops(const ir_model *model)
{
    const ir_graph *g = model->graph;
    for (int k = 0; k < g->n_nodes; k++) {
        const ir_node *node = &g->nodes[k];
        const op_def *op = op_find(node->domain, node->op_type);
        if (!op) {
            const char *domain = node->domain[0] ? node->domain : "ai.onnx";
            return fg_error(FG_ERR_UNSUPPORTED,
                            "node '%s': op '%s' (domain '%s', opset %lld) is not supported by facegraph; "
                            "`facegraph inspect` lists the model's ops",
                            node->name, node->op_type, domain, (long long)model->opset);
        }
        if (op->check)
            FG_TRY(op->check(node, model->opset));
    }
    return NULL;
}

fg_status *fg_session_open(fg_engine *engine, const char *model_path, fg_session **out)
{
    *out = NULL;
    if (!engine || !model_path)
        return fg_error(FG_ERR_INVALID_ARGUMENT, "fg_session_open needs an engine and a model path");
    ir_model *model = NULL;
    FG_TRY(ir_model_load(model_path, &model));
    fg_status *st = check_ops(model);
    if (st) {
        ir_model_free(model);
        return fg_error_wrap(st, "%s", model_path);
    }
    fg_session *s = calloc(1, sizeof *s);
    const ir_graph *g = model->graph;
    if (s) {
        s->inputs = calloc((size_t)g->n_inputs + 1, sizeof *s->inputs);
        s->outputs = calloc((size_t)g->n_outputs + 1, sizeof *s->outputs);
    }
    if (!s || !s->inputs || !s->outputs) {
        if (s) {
            free(s->inputs);
            free(s->outputs);
        }
        free(s);
        ir_model_free(model);
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory opening %s", model_path);
    }
    s->engine = engine;
    s->model = model;
    for (int i = 0; i < g->n_inputs; i++)
        fill_value_info(&g->values[g->inputs[i]], &s->inputs[i]);
    for (int i = 0; i < g->n_outputs; i++)
        fill_value_info(&g->values[g->outputs[i]], &s->outputs[i]);
    pthread_mutex_init(&s->lock, NULL);
    *out = s;
    return NULL;
}

void fg_session_close(fg_session *s)
{
    if (!s)
        return;
    for (session_plan *sp = s->plans; sp;) {
        session_plan *next = sp->next;
        plan_free(sp->plan);
        free(sp);
        sp = next;
    }
    pthread_mutex_destroy(&s->lock);
    free(s->inputs);
    free(s->outputs);
    ir_model_free(s->model);
    free(s);
}

int fg_session_input_count(const fg_session *s) { return s->model->graph->n_inputs; }
int fg_session_output_count(const fg_session *s) { return s->model->graph->n_outputs; }

const fg_value_info *fg_session_input(const fg_session *s, int i)
{
    return i >= 0 && i < fg_session_input_count(s) ? &s->inputs[i] : NULL;
}

const fg_value_info *fg_session_output(const fg_session *s, int i)
{
    return i >= 0 && i < fg_session_output_count(s) ? &s->outputs[i] : NULL;
}

int fg_session_input_index(const fg_session *s, const char *name)
{
    for (int i = 0; i < fg_session_input_count(s); i++)
        if (strcmp(s->inputs[i].name, name) == 0)
            return i;
    return -1;
}

const char *fg_session_sha256(const fg_session *s) { return s->model->sha256; }
const ir_model *session_model(const fg_session *s) { return s->model; }

static int signature_matches(const plan *p, const fg_tensor *inputs, int n)
{
    if (p->n_inputs != n)
        return 0;
    for (int i = 0; i < n; i++)
        if (p->signature[i].dtype != inputs[i].dtype ||
            !fg_shape_equal(p->signature[i].rank, p->signature[i].dims, inputs[i].rank, inputs[i].dims))
            return 0;
    return 1;
}

fg_status *session_plan_for(fg_session *s, const fg_tensor *inputs, int n_inputs, plan **out)
{
    for (session_plan *sp = s->plans; sp; sp = sp->next)
        if (signature_matches(sp->plan, inputs, n_inputs)) {
            *out = sp->plan;
            return NULL;
        }
    session_plan *sp = calloc(1, sizeof *sp);
    if (!sp)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory while planning");
    fg_status *st = plan_for_signature(s->model, inputs, n_inputs, s->engine->thread_count, &sp->plan);
    if (st) {
        free(sp);
        return fg_error_wrap(st, "%s", s->model->path);
    }
    sp->next = s->plans;
    s->plans = sp;
    s->n_plans++;
    *out = sp->plan;
    return NULL;
}

fg_status *fg_session_run(fg_session *s, const fg_tensor *inputs, int n_inputs, fg_tensor *outputs, int n_outputs)
{
    if (!s || (!inputs && n_inputs) || !outputs)
        return fg_error(FG_ERR_INVALID_ARGUMENT, "fg_session_run needs a session, inputs and an outputs array");
    if (n_outputs < fg_session_output_count(s))
        return fg_error(FG_ERR_INVALID_ARGUMENT, "the model has %d outputs; the outputs array holds %d",
                        fg_session_output_count(s), n_outputs);
    for (int i = 0; i < n_inputs; i++) {
        if (inputs[i].location != FG_HOST)
            return fg_error(FG_ERR_INVALID_ARGUMENT, "input '%s' is on the GPU; the cpu provider needs host tensors",
                            i < fg_session_input_count(s) ? s->inputs[i].name : "?");
        if (!inputs[i].data && fg_tensor_numel(&inputs[i]) > 0)
            return fg_error(FG_ERR_INVALID_ARGUMENT, "input %d has no data", i);
    }
    pthread_mutex_lock(&s->lock);
    plan *p = NULL;
    fg_status *st = session_plan_for(s, inputs, n_inputs, &p);
    if (!st)
        st = cpu_run_plan(p, inputs, outputs);
    pthread_mutex_unlock(&s->lock);
    return st;
}
