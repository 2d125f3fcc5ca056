/* ChannelsLastSlices (domain "facegraph"): channel slices of one
 * [1, C, H, W] tensor, each moved channels-last and through an activation,
 * as one step. It is what a detection head becomes once its sibling
 * convolutions are merged (SCRFD: the class, box and landmark slices of
 * the merged head convolution, each Transpose'd to [H, W, 1, c], the class
 * one through a sigmoid): one step instead of a Transpose per slice and an
 * activation. The planner (src/plan/merge_slice_transposes.c) builds it;
 * the CPU kernel is src/ops/channels_last.c, the CUDA kernel
 * src/cuda/kernels/channels_last.cu.
 *
 *   y_j[h, w, c] = act_j(x[0, offset_j + c, h, w])      c < channels_j
 *
 * with y_j's dims those of Transpose(x[:, offset_j : offset_j + channels_j],
 * perm): perm keeps H before W and puts the channels after them; the batch
 * axis (size 1) may sit anywhere. In memory y_j is [H * W, channels_j].
 *
 * Input 0: x, float32 [1, C, H, W]. Outputs: 1 to CLS_MAX_OUTPUTS.
 * Attributes (one entry per output, in output order):
 *   "perm"              ints (4): the transposes' permutation
 *   "channel_offsets"   ints: offset_j
 *   "channels"          ints: channels_j
 *   "activations"       ints: an op_act_kind each
 *   "activation_params" floats: alpha_j, beta_j for each output */
#ifndef FACEGRAPH_OPS_CHANNELS_LAST_H
#define FACEGRAPH_OPS_CHANNELS_LAST_H

#include "ops/op.h"

#define CLS_OP_TYPE "ChannelsLastSlices"
#define CLS_DOMAIN "facegraph"
#define CLS_MAX_OUTPUTS 8
#define CLS_MAX_CHANNELS 256 /* all outputs' channels together: what the CUDA kernel's tile holds */

typedef struct cls_geom {
    int n;                 /* outputs */
    int64_t c, h, w;       /* x's dims */
    int64_t perm[4];
    int64_t offset[CLS_MAX_OUTPUTS], channels[CLS_MAX_OUTPUTS];
    op_activation act[CLS_MAX_OUTPUTS];
} cls_geom;

/* 1 when perm (rank 4, of an [N, C, H, W] tensor with N == 1) gives the
 * channels-last layout: H, then W, then C, the batch axis anywhere. */
int cls_perm_is_channels_last(const int64_t *perm, int rank);

/* Reads and checks the step's input and attributes. */
fg_status *cls_geometry(const op_call *call, cls_geom *g);

fg_status *cls_infer(op_call *call);
fg_status *cls_run(op_call *call);

#endif
