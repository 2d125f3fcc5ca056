#include "runtime/runtime.h"

#include "cpu/cpu.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *fg_available_providers(void)
{
#ifdef FG_HAVE_CUDA
    return "cuda, cpu";
#else
    return "cpu";
#endif
}

static int provider_known(const char *name)
{
    return !strcmp(name, "cpu") || !strcmp(name, "cuda");
}

fg_status *fg_engine_create(const fg_engine_options *options, fg_engine **out)
{
    *out = NULL;
    fg_engine *e = calloc(1, sizeof *e);
    if (!e)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory creating the engine");
    int n = options && options->n_providers > 0 ? options->n_providers : 0;
    if (n > ENGINE_MAX_PROVIDERS)
        n = ENGINE_MAX_PROVIDERS;
    for (int i = 0; i < n; i++) {
        const char *name = options->providers[i];
        int available = !strcmp(name, "cpu");
#ifdef FG_HAVE_CUDA
        available |= !strcmp(name, "cuda");
#endif
        if (!available) {
            fg_status *st = fg_error(FG_ERR_UNSUPPORTED,
                                     "execution provider '%s' is %s; available: %s", name,
                                     provider_known(name) ? "not built into this facegraph (no CUDA toolkit at build time)"
                                                          : "not available in facegraph",
                                     fg_available_providers());
            free(e);
            return st;
        }
        snprintf(e->providers[e->n_providers++], sizeof e->providers[0], "%s", name);
        /* the first provider listed is the one used; cpu after cuda is its fallback */
        if (!strcmp(name, "cuda") && e->n_providers == 1)
            e->use_cuda = 1;
        else if (!strcmp(name, "cpu") && e->use_cuda)
            e->cpu_fallback = 1;
    }
    if (!e->n_providers)
        snprintf(e->providers[e->n_providers++], sizeof e->providers[0], "cpu");
    e->device_id = options ? options->device_id : 0;
    e->thread_count = options && options->thread_count > 0 ? options->thread_count : omp_get_num_procs();
    e->cuda_graph = options ? options->cuda_graph : FG_CUDA_GRAPH_AUTO;
    const char *kill = getenv("FACEGRAPH_CUDA_GRAPH");
    if (kill && !strcmp(kill, "0"))
        e->cuda_graph = FG_CUDA_GRAPH_OFF;
    e->allow_tf32 = options ? options->allow_tf32 : 0;
    e->precision_fp16 = options ? options->precision_fp16 : 0;
    pthread_mutex_init(&e->lock, NULL);
    for (int i = 0; options && i < options->n_cuda_graph_exclude && i < ENGINE_MAX_EXCLUDES; i++)
        snprintf(e->graph_exclude[e->n_graph_exclude++], sizeof e->graph_exclude[0], "%s",
                 options->cuda_graph_exclude[i]);
#ifdef FG_HAVE_CUDA
    if (e->use_cuda) {
        if (e->device_id < 0) {
            free(e);
            return fg_error(FG_ERR_INVALID_ARGUMENT, "--execution-device-id must be 0 or more");
        }
        fg_status *st = cuda_device_open(e->device_id, &e->cuda);
        if (st) {
            free(e);
            return st;
        }
    }
#endif
    *out = e;
    return NULL;
}

void fg_engine_destroy(fg_engine *engine)
{
    if (!engine)
        return;
#ifdef FG_HAVE_CUDA
    cuda_device_close(engine->cuda);
#endif
    pthread_mutex_destroy(&engine->lock);
    free(engine);
}

/* "--cuda-graph-exclude scrfd_2.5g" matches /path/scrfd_2.5g.onnx. */
static int graph_excluded(const fg_engine *e, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t stem = strcspn(base, ".");
    const char *dot = strrchr(base, '.');
    if (dot)
        stem = (size_t)(dot - base);
    for (int i = 0; i < e->n_graph_exclude; i++)
        if (!strcmp(e->graph_exclude[i], base) ||
            (strlen(e->graph_exclude[i]) == stem && !strncmp(e->graph_exclude[i], base, stem)))
            return 1;
    return 0;
}

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

static void session_free(fg_session *s)
{
    seg_runner_free(s->segments);
    for (session_plan *sp = s->plans; sp;) {
        session_plan *next = sp->next;
#ifdef FG_HAVE_CUDA
        for (int i = 0; i < sp->n_gpu; i++)
            cuda_plan_free(sp->gpu[i]);
#endif
        plan_free(sp->plan);
        free(sp);
        sp = next;
    }
#ifdef FG_HAVE_CUDA
    cuda_weights_free(s->weights);
#endif
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->gpu_free);
    free(s->inputs);
    free(s->outputs);
    ir_model_free(s->model);
    free(s);
}

#ifdef FG_HAVE_CUDA
static cuda_plan_options gpu_plan_options(const fg_session *s)
{
    cuda_plan_options co = {CUDA_GRAPH_AUTO, s->engine->allow_tf32, s->engine->precision_fp16};
    if (s->engine->cuda_graph == FG_CUDA_GRAPH_OFF || s->graph_excluded)
        co.graph_mode = CUDA_GRAPH_OFF;
    else if (s->engine->cuda_graph == FG_CUDA_GRAPH_ON)
        co.graph_mode = CUDA_GRAPH_ON;
    return co;
}

/* If / Loop on the GPU: static pieces as CUDA graphs, decisions on the host. */
static fg_status *create_segment_runner(fg_session *s)
{
    seg_runner_options o;
    memset(&o, 0, sizeof o);
    o.threads = s->engine->thread_count;
    o.cpu_fallback = s->engine->cpu_fallback;
    o.cuda = s->engine->cuda;
    o.weights = s->weights;
    o.plan_options = gpu_plan_options(s);
    return seg_runner_create(s->model, &o, &s->segments);
}
#endif

/* A new session over a loaded model (takes ownership of it). */
static fg_status *session_create(fg_engine *engine, const char *model_path, ir_model *model, fg_session **out)
{
    fg_status *st = check_ops(model);
    if (st) {
        ir_model_free(model);
        return fg_error_wrap(st, "%s", model_path);
    }
    fg_session *s = calloc(1, sizeof *s);
    const ir_graph *g = model->graph;
    if (!s) {
        ir_model_free(model);
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory opening %s", model_path);
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->gpu_free, NULL);
    s->engine = engine;
    s->model = model;
    s->refs = 1;
    s->inputs = calloc((size_t)g->n_inputs + 1, sizeof *s->inputs);
    s->outputs = calloc((size_t)g->n_outputs + 1, sizeof *s->outputs);
    if (!s->inputs || !s->outputs) {
        session_free(s);
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory opening %s", model_path);
    }
    for (int i = 0; i < g->n_inputs; i++)
        fill_value_info(&g->values[g->inputs[i]], &s->inputs[i]);
    for (int i = 0; i < g->n_outputs; i++)
        fill_value_info(&g->values[g->outputs[i]], &s->outputs[i]);
    s->graph_excluded = graph_excluded(engine, model_path);
#ifdef FG_HAVE_CUDA
    if (engine->use_cuda) {
        const ir_node *missing = cuda_first_unsupported(model);
        if (!missing) {
            s->on_cuda = 1;
            st = cuda_weights_create(engine->cuda, &s->weights);
            if (!st && segments_graph_has_control(g))
                st = create_segment_runner(s);
        } else if (engine->cpu_fallback) {
            snprintf(s->warning, sizeof s->warning,
                     "node '%s' (%s) has no CUDA kernel: %s runs on the cpu provider", missing->name,
                     missing->op_type, model_path);
        } else {
            st = fg_error(FG_ERR_UNSUPPORTED,
                          "%s: node '%s' (%s) has no CUDA kernel; add cpu as a fallback "
                          "(--execution-providers cuda cpu)",
                          model_path, missing->name, missing->op_type);
        }
        if (st) {
            session_free(s);
            return st;
        }
    }
#endif
    *out = s;
    return NULL;
}

/* Sessions are cached per engine (provider, device, options) and model
 * sha256: opening the same model twice returns the same session, so its
 * weights exist once per device. */
fg_status *fg_session_open(fg_engine *engine, const char *model_path, fg_session **out)
{
    *out = NULL;
    if (!engine || !model_path)
        return fg_error(FG_ERR_INVALID_ARGUMENT, "fg_session_open needs an engine and a model path");
    ir_model *model = NULL;
    FG_TRY(ir_model_load(model_path, &model));
    pthread_mutex_lock(&engine->lock);
    for (fg_session *s = engine->sessions; s; s = s->next)
        if (!strcmp(s->model->sha256, model->sha256)) {
            s->refs++;
            pthread_mutex_unlock(&engine->lock);
            ir_model_free(model);
            *out = s;
            return NULL;
        }
    fg_session *s = NULL;
    fg_status *st = session_create(engine, model_path, model, &s);
    if (!st) {
        s->next = engine->sessions;
        engine->sessions = s;
        *out = s;
    }
    pthread_mutex_unlock(&engine->lock);
    return st;
}

void fg_session_close(fg_session *s)
{
    if (!s)
        return;
    fg_engine *e = s->engine;
    pthread_mutex_lock(&e->lock);
    int last = --s->refs == 0;
    if (last)
        for (fg_session **link = &e->sessions; *link; link = &(*link)->next)
            if (*link == s) {
                *link = s->next;
                break;
            }
    pthread_mutex_unlock(&e->lock);
    if (last)
        session_free(s);
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


#ifdef FG_HAVE_CUDA
static fg_status *new_gpu_instance(fg_session *s, plan *p, cuda_plan **out)
{
    cuda_plan_options co = gpu_plan_options(s);
    return cuda_plan_create(s->engine->cuda, s->weights, p, &co, out);
}

/* A free GPU instance of sp (made if fewer than the engine's thread count
 * exist, else waited for); call with s->lock held. */
static fg_status *acquire_gpu_instance(fg_session *s, session_plan *sp, int *index)
{
    int limit = s->engine->thread_count < SESSION_MAX_GPU_INSTANCES ? s->engine->thread_count
                                                                     : SESSION_MAX_GPU_INSTANCES;
    for (;;) {
        for (int i = 0; i < sp->n_gpu; i++)
            if (!sp->gpu_busy[i]) {
                sp->gpu_busy[i] = 1;
                *index = i;
                return NULL;
            }
        if (sp->n_gpu < limit) {
            cuda_plan *cp = NULL;
            FG_TRY(new_gpu_instance(s, sp->plan, &cp));
            sp->gpu[sp->n_gpu] = cp;
            sp->gpu_busy[sp->n_gpu] = 1;
            *index = sp->n_gpu++;
            return NULL;
        }
        pthread_cond_wait(&s->gpu_free, &s->lock);
    }
}
#endif

fg_status *session_plan_for(fg_session *s, const fg_tensor *inputs, int n_inputs, session_plan **out)
{
    for (session_plan *sp = s->plans; sp; sp = sp->next)
        if (plan_matches_signature(sp->plan, inputs, n_inputs)) {
            *out = sp;
            return NULL;
        }
    session_plan *sp = calloc(1, sizeof *sp);
    if (!sp)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory while planning");
    fg_status *st = plan_for_signature(s->model, inputs, n_inputs, s->engine->thread_count, s->on_cuda, &sp->plan);
    if (st) {
        free(sp);
        return fg_error_wrap(st, "%s", s->model->path);
    }
#ifdef FG_HAVE_CUDA
    if (s->on_cuda && !s->segments) { /* segments: this whole-graph plan only profiles, on the CPU */
        cuda_plan *cp = NULL;
        st = new_gpu_instance(s, sp->plan, &cp);
        if (st && s->engine->cpu_fallback && fg_status_code(st) == FG_ERR_UNSUPPORTED) {
            snprintf(s->warning, sizeof s->warning, "%s: runs on the cpu provider: %s", s->model->path,
                     fg_status_message(st));
            fg_status_free(st);
            st = NULL;
        } else if (st) {
            plan_free(sp->plan);
            free(sp);
            return fg_error_wrap(st, "%s", s->model->path);
        }
        if (cp)
            sp->gpu[sp->n_gpu++] = cp;
    }
#endif
    sp->next = s->plans;
    s->plans = sp;
    s->n_plans++;
    *out = sp;
    return NULL;
}

fg_status *fg_session_run(fg_session *s, const fg_tensor *inputs, int n_inputs, fg_tensor *outputs, int n_outputs)
{
    if (!s || (!inputs && n_inputs) || !outputs)
        return fg_error(FG_ERR_INVALID_ARGUMENT, "fg_session_run needs a session, inputs and an outputs array");
    if (n_outputs < fg_session_output_count(s))
        return fg_error(FG_ERR_INVALID_ARGUMENT, "the model has %d outputs; the outputs array holds %d",
                        fg_session_output_count(s), n_outputs);
    int on_device = 0;
    for (int i = 0; i < n_inputs; i++) {
        on_device |= inputs[i].location == FG_DEVICE;
        if (!inputs[i].data && fg_tensor_numel(&inputs[i]) > 0)
            return fg_error(FG_ERR_INVALID_ARGUMENT, "input %d has no data", i);
    }
    pthread_mutex_lock(&s->lock);
    if (s->segments) { /* If / Loop on the GPU: one caller at a time through the segment runner */
        fg_status *seg_st = seg_runner_run(s->segments, inputs, n_inputs, outputs);
        seg_runner_stats stats;
        seg_runner_get_stats(s->segments, &stats);
        if (stats.warning[0] && !s->warning[0])
            snprintf(s->warning, sizeof s->warning, "%.200s: %.300s", s->model->path, stats.warning);
        pthread_mutex_unlock(&s->lock);
        return seg_st ? fg_error_wrap(seg_st, "%s", s->model->path) : NULL;
    }
    session_plan *sp = NULL;
    fg_status *st = session_plan_for(s, inputs, n_inputs, &sp);
    if (!st)
        s->last = sp;
#ifdef FG_HAVE_CUDA
    if (!st && sp->n_gpu) {
        /* GPU: concurrent callers run on separate instances, unlocked */
        int i = 0;
        st = acquire_gpu_instance(s, sp, &i);
        if (!st) {
            sp->last_gpu = i;
            pthread_mutex_unlock(&s->lock);
            st = cuda_plan_run(sp->gpu[i], inputs, outputs);
            pthread_mutex_lock(&s->lock);
            sp->gpu_busy[i] = 0;
            pthread_cond_signal(&s->gpu_free);
        }
        pthread_mutex_unlock(&s->lock);
        return st;
    }
#endif
    if (!st && on_device)
        st = fg_error(FG_ERR_INVALID_ARGUMENT,
                      "the inputs are in GPU memory but %s runs on the cpu provider; pass host tensors",
                      s->model->path);
    if (!st) /* CPU: one caller at a time; the kernels use the threads */
        st = cpu_run_plan(sp->plan, inputs, outputs);
    pthread_mutex_unlock(&s->lock);
    return st;
}

fg_status *session_profile(fg_session *s, const fg_tensor *inputs, int n_inputs, fg_tensor *outputs, plan **p,
                           double **step_ms)
{
    pthread_mutex_lock(&s->lock);
    session_plan *sp = NULL;
    fg_status *st = session_plan_for(s, inputs, n_inputs, &sp);
    if (!st) {
        *p = sp->plan;
        *step_ms = calloc((size_t)sp->plan->n_steps + 1, sizeof **step_ms);
        if (!*step_ms)
            st = fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory");
    }
#ifdef FG_HAVE_CUDA
    if (!st && sp->n_gpu) {
        st = cuda_plan_profile(sp->gpu[0], inputs, outputs, *step_ms);
        pthread_mutex_unlock(&s->lock);
        return st;
    }
#endif
    if (!st)
        st = cpu_profile_plan(sp->plan, inputs, outputs, *step_ms);
    pthread_mutex_unlock(&s->lock);
    return st;
}

const char *fg_session_warning(const fg_session *s) { return s->warning; }

fg_status *fg_session_execution_report(const fg_session *s, fg_execution_report *r)
{
    memset(r, 0, sizeof *r);
    if (s->segments) {
        seg_runner_stats stats;
        seg_runner_get_stats(s->segments, &stats);
        if (!stats.runs)
            return fg_error(FG_ERR_INVALID_ARGUMENT,
                            "the session has not run yet: run it once, then ask for the report");
        snprintf(r->provider, sizeof r->provider, "%s", stats.on_cuda ? "cuda" : "cpu");
#ifdef FG_HAVE_CUDA
        if (stats.on_cuda)
            snprintf(r->device, sizeof r->device, "%s", cuda_device_describe(s->engine->cuda));
#endif
        r->graph_captured = stats.on_cuda && stats.pieces > 0 && stats.pieces_captured == stats.pieces;
        snprintf(r->graph_reason, sizeof r->graph_reason, "%s", stats.reason);
        r->kernels_per_run = stats.kernels;
        r->device_ms = stats.device_ms;
        r->arena_bytes = stats.arena_bytes;
        r->plans = stats.plans;
        return NULL;
    }
    const session_plan *sp = s->last;
    if (!sp)
        return fg_error(FG_ERR_INVALID_ARGUMENT, "the session has not run yet: run it once, then ask for the report");
    snprintf(r->provider, sizeof r->provider, "cpu");
    r->arena_bytes = sp->plan->arena_bytes;
    r->plans = s->n_plans;
    snprintf(r->graph_reason, sizeof r->graph_reason, "%s",
             s->engine->use_cuda ? s->warning : "CUDA graphs apply to the cuda provider only");
#ifdef FG_HAVE_CUDA
    if (sp->n_gpu) {
        cuda_plan_stats stats;
        cuda_plan_get_stats(sp->gpu[sp->last_gpu], &stats);
        snprintf(r->provider, sizeof r->provider, "cuda");
        snprintf(r->device, sizeof r->device, "%s", cuda_device_describe(s->engine->cuda));
        r->graph_captured = stats.graph_adopted;
        snprintf(r->graph_reason, sizeof r->graph_reason, "%s", stats.graph_reason);
        r->kernels_per_run = stats.kernels_per_run;
        r->device_ms = stats.device_ms;
    }
#endif
    return NULL;
}
