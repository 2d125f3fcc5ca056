/* Shared oneDNN plumbing for the CPU ops: one engine per process (made on
 * first use), one stream per thread, and oneDNN status -> fg_status. */
#ifndef FACEGRAPH_OPS_DNNL_UTIL_H
#define FACEGRAPH_OPS_DNNL_UTIL_H

#include "ops/op.h"

#include <oneapi/dnnl/dnnl.h>

/* The process-wide CPU engine; NULL on failure (*status set). */
fg_status *dnnl_util_engine(const op_call *call, dnnl_engine_t *engine);
/* A CPU stream for the calling thread (created on first use, kept). */
fg_status *dnnl_util_stream(const op_call *call, dnnl_stream_t *stream);
/* An error naming the node, the oneDNN call that failed and its status. */
fg_status *dnnl_util_error(const op_call *call, dnnl_status_t st, const char *what);
const char *dnnl_util_status_name(dnnl_status_t st);

/* Sets the calling thread's OpenMP thread count (oneDNN reads it when it
 * creates and runs primitives); returns the previous count to restore. */
int dnnl_util_set_threads(int threads);

#define DNNL_TRY(call, expr, what)                                  \
    do {                                                           \
        dnnl_status_t dnnl_try_st_ = (expr);                       \
        if (dnnl_try_st_ != dnnl_success)                          \
            return dnnl_util_error((call), dnnl_try_st_, (what));  \
    } while (0)

#endif
