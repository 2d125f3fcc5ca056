/* FusedDepthwisePointwise (domain "facegraph"): a depthwise 3x3 convolution
 * whose output only a pointwise (1x1) convolution reads, run as one step
 * (MobileNet-style blocks). The planner (src/plan/fuse_dwpw.c) builds it; the
 * CPU kernel is src/ops/conv_dwpw.c, the CUDA kernel
 * src/cuda/kernels/conv_dwpw.cu.
 *
 *   mid = dw_act(depthwise3x3(x, dw_w, strides, pads) + dw_b)
 *   y   = act(pointwise(mid, pw_w) + pw_b [+ residual])
 *
 * Inputs (float32, NCHW):
 *   0 x         [N, C, H, W]
 *   1 dw_w      [C, 1, 3, 3]
 *   2 dw_b      [C]        (optional: omitted input)
 *   3 pw_w      [Co, C, 1, 1]
 *   4 pw_b      [Co]       (optional)
 *   5 residual  [N, Co, OH, OW] (optional: a residual Add fused into the 1x1)
 * Attributes:
 *   "strides"              ints [sh, sw], each 1 or 2
 *   "pads"                 ints [top, left, bottom, right], each 0 or 1
 *   "dw_activation"        int, an op_act_kind applied to the depthwise output
 *   "dw_activation_params" floats [alpha, beta] of that activation
 * The pointwise activation is the step's fused activation (call->act). */
#ifndef FACEGRAPH_OPS_CONV_DWPW_H
#define FACEGRAPH_OPS_CONV_DWPW_H

#include "ops/op.h"

#define DWPW_OP_TYPE "FusedDepthwisePointwise"
#define DWPW_DOMAIN "facegraph"
#define DWPW_MAX_CHANNELS 512 /* C and Co: what the CUDA kernel's shared memory holds */

enum { DWPW_IN_X = 0, DWPW_IN_DW_W, DWPW_IN_DW_B, DWPW_IN_PW_W, DWPW_IN_PW_B, DWPW_IN_RESIDUAL };

typedef struct dwpw_geom {
    int64_t batch, c_in, c_out;
    int64_t in_h, in_w, out_h, out_w;
    int64_t stride_h, stride_w, pad_t, pad_l, pad_b, pad_r;
    op_activation dw_act;
    int has_dw_bias, has_pw_bias, has_residual;
} dwpw_geom;

/* Reads the node's attributes and checks the inputs' dtypes and shapes. */
fg_status *dwpw_geometry(const op_call *call, dwpw_geom *g);

/* The CPU op (registered in op_family_facegraph). */
fg_status *dwpw_infer(op_call *call);
fg_status *dwpw_prepare(op_call *call);
fg_status *dwpw_run(op_call *call);
void dwpw_release(void *state);

#endif
