/* The CPU backend: runs a plan's steps over its arena. */
#ifndef FACEGRAPH_CPU_H
#define FACEGRAPH_CPU_H

#include "plan/plan.h"

/* Binds inputs (no copy), runs every step, and fills outputs[i] with views
 * of plan memory (valid until the next run). */
fg_status *cpu_run_plan(plan *p, const fg_tensor *inputs, fg_tensor *outputs);
/* The same, timing every step: step_ms[k] for plan step k (0 for views). */
fg_status *cpu_profile_plan(plan *p, const fg_tensor *inputs, fg_tensor *outputs, double *step_ms);
/* Grow-only buffer for tensors whose size is known only at run time:
 * reallocates (aligned, contents dropped) when want exceeds *have. */
fg_status *cpu_grow_buffer(void **buf, size_t *have, size_t want);
/* Runs an If or Loop step (src/cpu/cpu_control.c). */
fg_status *cpu_run_control(plan *p, plan_step *s);

#endif
