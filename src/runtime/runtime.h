/* Engine and session internals shared by the runtime's files and the CLI. */
#ifndef FACEGRAPH_RUNTIME_H
#define FACEGRAPH_RUNTIME_H

#include "plan/plan.h"

#include <pthread.h>

struct fg_engine {
    char providers[8][16];
    int n_providers;
    int device_id;
    int thread_count;
};

typedef struct session_plan {
    plan *plan;
    struct session_plan *next;
} session_plan;

struct fg_session {
    fg_engine *engine;
    ir_model *model;
    fg_value_info *inputs;
    fg_value_info *outputs;
    session_plan *plans; /* one per input-shape signature, most recent first */
    int n_plans;
    pthread_mutex_t lock;
};

/* The plan for these inputs' shapes, made on first use and cached. */
fg_status *session_plan_for(fg_session *session, const fg_tensor *inputs, int n_inputs, plan **out);
const ir_model *session_model(const fg_session *session);

#endif
