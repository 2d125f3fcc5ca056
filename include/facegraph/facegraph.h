/* facegraph: run ONNX face models on the CPU (and CUDA), FaceFusion-compatible.
 *
 * Conventions
 * - Every fallible call returns `fg_status *`: NULL means success; otherwise
 *   the caller owns the status, reads fg_status_message() (a sentence a user
 *   can act on) and frees it with fg_status_free().
 * - The library never prints, aborts or exits.
 * - Tensors are dense, row-major (C order).
 */
#ifndef FACEGRAPH_FACEGRAPH_H
#define FACEGRAPH_FACEGRAPH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- status */
typedef enum fg_code {
    FG_OK = 0,
    FG_ERR_INVALID_ARGUMENT, /* a caller-supplied value is wrong */
    FG_ERR_NOT_FOUND,        /* a file, model, input or device does not exist */
    FG_ERR_IO,               /* reading or writing failed */
    FG_ERR_CORRUPT,          /* a model, image or array file is malformed */
    FG_ERR_UNSUPPORTED,      /* valid but not supported (op, attribute, dtype) */
    FG_ERR_SHAPE,            /* a tensor shape does not fit */
    FG_ERR_DTYPE,            /* a tensor element type does not fit */
    FG_ERR_OUT_OF_MEMORY,    /* host or device memory exhausted */
    FG_ERR_DEVICE,           /* the GPU or its libraries failed */
    FG_ERR_INTERNAL          /* a bug in facegraph */
} fg_code;

typedef struct fg_status fg_status;

fg_code fg_status_code(const fg_status *status);       /* FG_OK for NULL */
const char *fg_status_message(const fg_status *status); /* "" for NULL */
void fg_status_free(fg_status *status);                 /* NULL is fine */

/* ---------------------------------------------------------------- tensors */
/* Values are ONNX TensorProto.DataType codes. */
typedef enum fg_dtype {
    FG_DTYPE_UNDEFINED = 0,
    FG_FLOAT32 = 1,
    FG_UINT8 = 2,
    FG_INT8 = 3,
    FG_UINT16 = 4,
    FG_INT16 = 5,
    FG_INT32 = 6,
    FG_INT64 = 7,
    FG_STRING = 8,
    FG_BOOL = 9,
    FG_FLOAT16 = 10,
    FG_FLOAT64 = 11,
    FG_UINT32 = 12,
    FG_UINT64 = 13
} fg_dtype;

const char *fg_dtype_name(fg_dtype dtype); /* "float32", ...; "undefined" */
size_t fg_dtype_size(fg_dtype dtype);      /* bytes per element, 0 if unknown */

#define FG_MAX_RANK 8

typedef enum fg_location { FG_HOST = 0, FG_DEVICE = 1 } fg_location;

typedef struct fg_tensor {
    fg_dtype dtype;
    int rank;                     /* 0 for a scalar */
    int64_t dims[FG_MAX_RANK];
    void *data;                   /* not owned by the struct */
    fg_location location;         /* FG_DEVICE: a CUDA device pointer */
} fg_tensor;

int64_t fg_tensor_numel(const fg_tensor *t);
size_t fg_tensor_nbytes(const fg_tensor *t);

/* ---------------------------------------------------------------- engine */
typedef enum fg_cuda_graph_mode {
    FG_CUDA_GRAPH_AUTO = 0, /* capture where validation passes, else run eagerly and record why */
    FG_CUDA_GRAPH_ON,       /* a model that cannot be captured is an error */
    FG_CUDA_GRAPH_OFF
} fg_cuda_graph_mode;

typedef struct fg_engine_options {
    /* Execution providers in order of preference, e.g. {"cuda", "cpu"}; NULL
     * or n_providers == 0 means {"cpu"}. "cpu" after "cuda" is the fallback
     * for a model the GPU cannot run (the session's warning names the node). */
    const char *const *providers;
    int n_providers;
    int device_id;    /* CUDA device; ignored for cpu */
    int thread_count; /* CPU threads; <= 0 means all cores */
    fg_cuda_graph_mode cuda_graph;     /* FACEGRAPH_CUDA_GRAPH=0 in the environment forces OFF */
    const char *const *cuda_graph_exclude; /* model file names (or stems) never captured */
    int n_cuda_graph_exclude;
    int allow_tf32;   /* 1: float32 convolutions and matmuls may use TF32 tensor cores (off by default) */
    /* 1: convolutions may run in float16 on tensor cores, float32 accumulation
     * (cuda only; each convolution keeps float32 where that is faster).
     * float16 models do so whatever this says. */
    int precision_fp16;
} fg_engine_options;

typedef struct fg_engine fg_engine;

fg_status *fg_engine_create(const fg_engine_options *options, fg_engine **engine);
void fg_engine_destroy(fg_engine *engine);
/* Comma-separated providers compiled into this build, e.g. "cpu,cuda". */
const char *fg_available_providers(void);

/* ---------------------------------------------------------------- sessions */
typedef struct fg_session fg_session;

/* Describes a model input or output. dims[i] < 0 is a dynamic dimension;
 * dim_names[i] then holds its symbolic name (or NULL). */
typedef struct fg_value_info {
    const char *name;
    fg_dtype dtype;
    int rank;
    int64_t dims[FG_MAX_RANK];
    const char *dim_names[FG_MAX_RANK];
} fg_value_info;

/* Opens an ONNX model file. The weights stay memory-mapped (never copied
 * whole), unsupported ops are reported here, naming the node. */
fg_status *fg_session_open(fg_engine *engine, const char *model_path, fg_session **session);
void fg_session_close(fg_session *session);

int fg_session_input_count(const fg_session *session);
int fg_session_output_count(const fg_session *session);
const fg_value_info *fg_session_input(const fg_session *session, int index);
const fg_value_info *fg_session_output(const fg_session *session, int index);
/* Index of the named input, or -1. */
int fg_session_input_index(const fg_session *session, const char *name);
/* Hex sha256 of the model file (64 characters). */
const char *fg_session_sha256(const fg_session *session);

/* Runs the model. `inputs` are in the model's input order (see
 * fg_session_input). On success `outputs[i]` describe the model's outputs;
 * their data belongs to the session and stays valid until the next run or
 * close. A plan is made (and cached) per input-shape signature; a second run
 * with the same shapes allocates nothing.
 * With the cuda provider, inputs may be device tensors (location
 * FG_DEVICE, all of them); the outputs then stay on the device too
 * (FG_DEVICE pointers into the session's GPU memory), so a pipeline on the
 * GPU never round-trips through the host. Several threads may run one
 * session at once: on the GPU each gets its own stream (up to the engine's
 * thread count); on the CPU they take turns. */
fg_status *fg_session_run(fg_session *session, const fg_tensor *inputs, int n_inputs,
                          fg_tensor *outputs, int n_outputs);

/* A warning about how the session runs (e.g. a CPU fallback naming the
 * node the GPU cannot run), or "" when there is none. */
const char *fg_session_warning(const fg_session *session);

/* How the most recent run executed. */
typedef struct fg_execution_report {
    char provider[16];     /* "cuda" or "cpu" */
    char device[256];      /* GPU name and library versions, or "" */
    int graph_captured;    /* 1: replays a validated CUDA graph */
    char graph_reason[512];/* why (not) captured */
    int kernels_per_run;   /* GPU kernels (graph nodes) per run; 0 on the CPU */
    size_t arena_bytes;    /* working memory of the plan */
    double device_ms;      /* GPU time of the latest run's kernels (CUDA events; copies excluded); 0 on the CPU */
    int plans;             /* input-shape signatures planned so far */
} fg_execution_report;
fg_status *fg_session_execution_report(const fg_session *session, fg_execution_report *report);

#ifdef __cplusplus
}
#endif
#endif
