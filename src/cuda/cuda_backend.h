/* The CUDA backend: runs a plan on one GPU, eagerly or as a validated CUDA
 * graph. Built only when nvcc and cuDNN are present (FG_HAVE_CUDA). */
#ifndef FACEGRAPH_CUDA_BACKEND_H
#define FACEGRAPH_CUDA_BACKEND_H

#include "plan/plan.h"

typedef enum cuda_graph_mode { CUDA_GRAPH_OFF = 0, CUDA_GRAPH_AUTO, CUDA_GRAPH_ON } cuda_graph_mode;

typedef struct cuda_device cuda_device; /* a GPU: stream, cuDNN and cuBLAS handles, weight cache */
typedef struct cuda_plan cuda_plan;     /* a plan bound to a device */

/* Opens device `device_id`; a bad id is an error listing the devices found. */
fg_status *cuda_device_open(int device_id, cuda_device **out);
void cuda_device_close(cuda_device *dev);
/* "NVIDIA H100 80GB HBM3, driver 13.0, CUDA runtime 13.0, cuDNN 9.19.0, cuBLAS 13.0" */
const char *cuda_device_describe(const cuda_device *dev);
int cuda_device_count(void);

/* The CUDA device number. */
int cuda_device_id(const cuda_device *dev);

/* Name of the first node of the model (in plan order) that has no CUDA
 * kernel, or NULL when every op has one. If and Loop need none (they run
 * as graph segments around a host decision): their subgraphs' nodes do. */
const ir_node *cuda_first_unsupported(const ir_model *model);

/* A model's weights on one device, shared by every plan (signature) of the
 * model: uploaded on first use, freed with the session. */
typedef struct cuda_weights cuda_weights;
fg_status *cuda_weights_create(cuda_device *dev, cuda_weights **out);
void cuda_weights_free(cuda_weights *weights);
size_t cuda_weights_bytes(const cuda_weights *weights);

typedef struct cuda_plan_options {
    cuda_graph_mode graph_mode;
    int allow_tf32;
    int precision_fp16; /* convolutions may run in float16 (always for float16 models) */
} cuda_plan_options;

/* Binds a host plan to the device: device arena, constants uploaded (shared
 * per device through the weight cache), every step prepared. Takes
 * ownership of p on success. */
fg_status *cuda_plan_create(cuda_device *dev, cuda_weights *weights, plan *p, const cuda_plan_options *options,
                            cuda_plan **out);
void cuda_plan_free(cuda_plan *cp);

/* Runs on host or device inputs (all alike). Host inputs give outputs that
 * view pinned host memory, device inputs outputs in device memory; both
 * valid until the next run. The first runs are eager; then (graph mode
 * auto/on) the kernels are captured, replayed on the same inputs and the
 * graph adopted only if the outputs are bit-identical to the eager ones. */
fg_status *cuda_plan_run(cuda_plan *cp, const fg_tensor *inputs, fg_tensor *outputs);

typedef struct cuda_plan_stats {
    int graph_adopted;         /* 1: replays a CUDA graph */
    int graph_tried;
    char graph_reason[256];    /* why not adopted (or "validated bit-exact against eager") */
    int kernels_per_run;       /* graph nodes, or launches counted eagerly */
    size_t arena_bytes;
    int runs;
    float device_ms;           /* GPU time of the latest run's kernels (CUDA events), copies excluded */
} cuda_plan_stats;
void cuda_plan_get_stats(const cuda_plan *cp, cuda_plan_stats *stats);

/* One eager run timing every step with CUDA events: step_ms[k] for plan
 * step k (0 for steps that are views). */
fg_status *cuda_plan_profile(cuda_plan *cp, const fg_tensor *inputs, fg_tensor *outputs, double *step_ms);

#endif
