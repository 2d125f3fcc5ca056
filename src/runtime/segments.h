/* The segment runner: runs a model whose graph has If / Loop nodes as a
 * chain of static pieces (src/plan/segments.h) around host decisions.
 *
 * Each piece is planned per input signature (plans cached per piece) and
 * bound to a piece backend: the CPU (cpu_run_plan) or the GPU (a cuda_plan
 * per signature, so every piece is an eager run first, then a CUDA graph
 * validated bit-exact against eager). Values between pieces stay where the
 * backend keeps them (device memory on the GPU). At an If the condition is
 * read to the host and the chosen branch runs through the same runner; at a
 * Loop the body runs per iteration, its condition read on the host, carried
 * values passed along and scan outputs stacked in grow-only buffers. The
 * semantics are those of src/cpu/cpu_control.c.
 *
 * A runner is used by one caller at a time (the session holds its lock). */
#ifndef FACEGRAPH_RUNTIME_SEGMENTS_H
#define FACEGRAPH_RUNTIME_SEGMENTS_H

#include "plan/segments.h"

#ifdef FG_HAVE_CUDA
#include "cuda/cuda_backend.h"
#endif

typedef struct seg_runner seg_runner;

typedef struct seg_runner_options {
    int threads;       /* CPU threads of CPU-run pieces */
    int cpu_fallback;  /* GPU: a piece the GPU cannot run runs on the CPU (else the run fails) */
#ifdef FG_HAVE_CUDA
    cuda_device *cuda; /* NULL: every piece runs on the CPU */
    cuda_weights *weights;
    cuda_plan_options plan_options;
#endif
} seg_runner_options;

/* Cuts the model's graph and prepares the runner; plans are made on use. */
fg_status *seg_runner_create(const ir_model *model, const seg_runner_options *options, seg_runner **out);
void seg_runner_free(seg_runner *runner);

/* Runs the model. Host inputs give host outputs, device inputs (all of
 * them, GPU runner only) device outputs; either view runner memory valid
 * until the next run. */
fg_status *seg_runner_run(seg_runner *runner, const fg_tensor *inputs, int n_inputs, fg_tensor *outputs);

typedef struct seg_runner_stats {
    int runs;
    int on_cuda;           /* the runner's backend is the GPU */
    int pieces;            /* distinct piece plans the latest run used */
    int pieces_captured;   /* of those: replaying a validated CUDA graph */
    int pieces_on_cpu;     /* of those: run on the CPU (GPU runner: fallback) */
    int piece_runs;        /* piece executions of the latest run (a Loop body counts per iteration) */
    int host_decisions;    /* If and Loop conditions read on the host in the latest run */
    int kernels;           /* GPU kernels of the latest run, over every piece execution */
    double device_ms;      /* GPU time of those kernels */
    size_t arena_bytes;    /* working memory of every piece plan made */
    int plans;             /* piece plans made so far */
    int dynamic_plans;     /* of those: with run-time shapes (which the GPU refuses) */
    char reason[512];      /* "3 CUDA graph segments around If 'x' (the branch is chosen on the host); ..." */
    char warning[512];     /* the first piece that fell back to the CPU, or "" */
} seg_runner_stats;
void seg_runner_get_stats(const seg_runner *runner, seg_runner_stats *stats);

#endif
