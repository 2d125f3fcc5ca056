/* oneDNN engine/stream management and error mapping. */
#include "ops/dnnl_util.h"

#include <omp.h>
#include <pthread.h>

static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static dnnl_engine_t shared_engine;
static dnnl_status_t engine_status = dnnl_success;

static void make_engine(void)
{
    engine_status = dnnl_engine_create(&shared_engine, dnnl_cpu, 0);
    if (engine_status != dnnl_success)
        shared_engine = NULL;
}

const char *dnnl_util_status_name(dnnl_status_t st)
{
    switch (st) {
    case dnnl_success: return "success";
    case dnnl_out_of_memory: return "out of memory";
    case dnnl_invalid_arguments: return "invalid arguments";
    case dnnl_unimplemented: return "no implementation for these shapes/parameters";
    case dnnl_iterator_ends: return "iterator ends";
    case dnnl_runtime_error: return "runtime error";
    case dnnl_not_required: return "not required";
    }
    return "unknown status";
}

fg_status *dnnl_util_error(const op_call *call, dnnl_status_t st, const char *what)
{
    fg_code code = st == dnnl_out_of_memory    ? FG_ERR_OUT_OF_MEMORY
                   : st == dnnl_unimplemented  ? FG_ERR_UNSUPPORTED
                   : st == dnnl_invalid_arguments ? FG_ERR_INVALID_ARGUMENT
                                                  : FG_ERR_INTERNAL;
    return op_error(call, code, "oneDNN %s failed: %s", what, dnnl_util_status_name(st));
}

fg_status *dnnl_util_engine(const op_call *call, dnnl_engine_t *engine)
{
    pthread_once(&engine_once, make_engine);
    if (!shared_engine)
        return dnnl_util_error(call, engine_status, "CPU engine creation");
    *engine = shared_engine;
    return NULL;
}

fg_status *dnnl_util_stream(const op_call *call, dnnl_stream_t *stream)
{
    static _Thread_local dnnl_stream_t thread_stream;
    if (!thread_stream) {
        dnnl_engine_t engine;
        FG_TRY(dnnl_util_engine(call, &engine));
        DNNL_TRY(call, dnnl_stream_create(&thread_stream, engine, dnnl_stream_default_flags), "stream creation");
    }
    *stream = thread_stream;
    return NULL;
}

int dnnl_util_set_threads(int threads)
{
    int previous = omp_get_max_threads();
    if (threads > 0 && threads != previous)
        omp_set_num_threads(threads);
    return previous;
}
