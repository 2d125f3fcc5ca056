/* Engine and session internals shared by the runtime's files and the CLI. */
#ifndef FACEGRAPH_RUNTIME_H
#define FACEGRAPH_RUNTIME_H

#include "plan/plan.h"
#include "runtime/segments.h"

#ifdef FG_HAVE_CUDA
#include "cuda/cuda_backend.h"
#endif

#include <pthread.h>

#define ENGINE_MAX_PROVIDERS 8
#define ENGINE_MAX_EXCLUDES 32

struct fg_engine {
    char providers[ENGINE_MAX_PROVIDERS][16];
    int n_providers;
    int use_cuda;         /* "cuda" was asked for (and this build has it) */
    int cpu_fallback;     /* "cpu" listed after "cuda" */
    int device_id;
    int thread_count;
    fg_cuda_graph_mode cuda_graph;
    int allow_tf32;
    int precision_fp16;   /* --execution-precision fp16 */
    char graph_exclude[ENGINE_MAX_EXCLUDES][128];
    int n_graph_exclude;
#ifdef FG_HAVE_CUDA
    cuda_device *cuda;
#endif
    struct fg_session *sessions; /* open sessions, one per model sha256 */
    pthread_mutex_t lock;
};

#define SESSION_MAX_GPU_INSTANCES 16

typedef struct session_plan {
    plan *plan;
#ifdef FG_HAVE_CUDA
    /* GPU instances of the plan, each with its own stream, arena and graph,
     * made on demand for concurrent callers (up to the engine's thread
     * count); none when this signature runs on the CPU */
    cuda_plan *gpu[SESSION_MAX_GPU_INSTANCES];
    char gpu_busy[SESSION_MAX_GPU_INSTANCES];
    int n_gpu;
    int last_gpu;
#endif
    struct session_plan *next;
} session_plan;

struct fg_session {
    fg_engine *engine;
    ir_model *model;
    fg_value_info *inputs;
    fg_value_info *outputs;
    int on_cuda;          /* this model runs on the GPU */
    int graph_excluded;
    char warning[512];
    session_plan *plans;  /* one per input-shape signature, most recent first */
    session_plan *last;   /* the plan of the latest run */
    int n_plans;
    /* cuda with If / Loop in the graph: runs as CUDA graph segments around
     * host decisions (one runner per session: its callers take turns under
     * lock); NULL otherwise */
    seg_runner *segments;
    pthread_mutex_t lock;
    pthread_cond_t gpu_free;      /* signalled when a GPU instance is released */
    int refs;                     /* fg_session_open calls not yet closed */
    struct fg_session *next;      /* in the engine's list */
#ifdef FG_HAVE_CUDA
    cuda_weights *weights;        /* the model's weights on the GPU, shared by all plans */
#endif
};

/* The plan for these inputs' shapes, made on first use and cached. */
fg_status *session_plan_for(fg_session *session, const fg_tensor *inputs, int n_inputs, session_plan **out);
const ir_model *session_model(const fg_session *session);

/* One run that times every step of the plan for these inputs (eagerly on
 * the GPU, with CUDA events). *p receives the plan (owned by the session),
 * *step_ms a malloc'd array of p->n_steps times. */
fg_status *session_profile(fg_session *session, const fg_tensor *inputs, int n_inputs, fg_tensor *outputs,
                           plan **p, double **step_ms);

#endif
