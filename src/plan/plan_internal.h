/* Planner internals shared by the passes in src/plan (not for backends). */
#ifndef FACEGRAPH_PLAN_INTERNAL_H
#define FACEGRAPH_PLAN_INTERNAL_H

#include "ops/conv_geometry.h"
#include "plan/plan.h"

/* Bytes every arena value's offset is a multiple of. */
#define PLAN_ARENA_ALIGN 64

/* Host memory (64-byte aligned) that lives as long as the plan: folded
 * constants, rewritten weights, synthetic nodes. */
fg_status *plan_own_alloc(plan *p, size_t bytes, void **out);

/* Appends a value (kind PLAN_UNUSED); returns its id or -1 on out of memory.
 * p->values may move. */
int plan_add_value(plan *p);
/* Appends a constant value (rewritten weights; data owned by the plan);
 * returns its id or -1. */
int plan_add_const_value(plan *p, fg_dtype dtype, int rank, const int64_t *dims, void *data);

/* 1 when value id is float32 with a static, unbounded shape. */
int plan_value_plain_f32(const plan *p, int id);
/* 1 when step s is a plain 2-D Conv (default domain, float32 input and
 * output with static shapes, constant float32 weights and bias), with its
 * geometry in g; 0 when it is something else. */
int plan_conv2d_step(const plan *p, const plan_step *s, conv_geom *g);

/* 1 when value id is a view of whole channel planes of a [1, C, H, W]
 * float32 value: the value in *parent, its first channel in *channel. */
int plan_channel_slice(const plan *p, int id, int *parent, int64_t *channel);
/* Reads a step of one activation op (Relu, Sigmoid, LeakyRelu, Clip with
 * constant bounds, ...) into act; 0 when it is something else. */
int plan_activation_of(const plan *p, const plan_step *a, op_activation *act);

/* A synthetic 2-D Conv node with g's kernel, strides, pads and dilations and
 * the given group, reading values x, w and b (-1: no bias) and writing y;
 * it lives as long as the plan. */
fg_status *plan_conv_node(plan *p, const char *name, const conv_geom *g, int64_t group, int x, int w, int b, int y,
                          const ir_node **out);

/* Makes step s (kept in its place) a step of op for the synthetic node, whose
 * inputs and outputs are plan value ids, with fused activation act; runs the
 * op's shape rule. The node must live as long as the plan. */
fg_status *plan_replace_step(plan *p, plan_step *s, const ir_node *node, const op_def *op, op_activation act);

/* Over the steps not marked in removed, per value id: how many step inputs
 * read it (+2 for a model output, which is never an intermediate), the last
 * step reading it (-1: none) and the step writing it (-1: none). */
typedef struct plan_readers {
    int *consumers, *reader, *producer;
} plan_readers;
/* Allocates and fills r (free it with plan_readers_free, also after an error). */
fg_status *plan_readers_count(const plan *p, const char *removed, plan_readers *r);
void plan_readers_free(plan_readers *r);

/* Replaces chains of float32 element-wise steps (each intermediate read by
 * the next step only) with one FusedElementwise step each (see
 * src/plan/fuse_elementwise.c). removed[i] marks steps already fused away;
 * the pass marks the chain steps it absorbs there too. The environment
 * variable FACEGRAPH_FUSE_ELEMENTWISE=0 turns the pass off. */
fg_status *fuse_elementwise_chains(plan *p, char *removed);

/* Folds each AveragePool (non-overlapping windows, no padding) whose output
 * only a 1x1 convolution reads into that convolution, which becomes a
 * k x k convolution of stride k (see src/plan/fold_pool_into_conv.c). The
 * environment variable FACEGRAPH_FOLD_POOLS=0 turns the pass off. */
fg_status *fold_average_pools(plan *p, char *removed);

/* Replaces each depthwise 3x3 convolution whose output only a pointwise (1x1)
 * convolution reads with one FusedDepthwisePointwise step (see
 * src/plan/fuse_dwpw.c), marking the depthwise steps it absorbs in removed.
 * Off unless FACEGRAPH_FUSE_DWPW=1 (experimental: on an H100 the fused
 * kernel measured slower than depthwise + pointwise, pfld_68 0.81 vs 0.18 ms:
 * small maps give few blocks that each run the whole depthwise tile). */
fg_status *fuse_depthwise_pointwise(plan *p, char *removed);

/* Merges sibling convolutions into one (see src/plan/merge_sibling_convs.c):
 * 2-D group-1 convolutions that read the same input with the same geometry
 * and activation, then depthwise convolutions that read adjacent channel
 * slices of one merged output. Each original output becomes a view (a
 * channel slice) of the merged output. Batch 1 only. The environment
 * variable FACEGRAPH_MERGE_SIBLINGS=0 turns the pass off. */
fg_status *merge_sibling_convs(plan *p, char *removed);

/* Replaces channels-last Transposes of channel slices of one value (and an
 * activation step between a slice and its Transpose) with one
 * ChannelsLastSlices step per value (see src/plan/merge_slice_transposes.c).
 * The environment variable FACEGRAPH_MERGE_TRANSPOSES=0 turns the pass off. */
fg_status *merge_slice_transposes(plan *p, char *removed);

/* Makes Slice and Split steps whose outputs are contiguous blocks of their
 * input view steps, and has the inputs of a Concat written in place in its
 * output where each is a contiguous block of it, removing the Concat (see
 * src/plan/concat_in_place.c). The environment variable
 * FACEGRAPH_CONCAT_IN_PLACE=0 turns the pass off. */
fg_status *place_slices_and_concats(plan *p, char *removed);

#endif
