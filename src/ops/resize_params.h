/* Host-side logic of Resize / Upsample shared by the CPU kernel
 * (src/ops/resize.c) and the CUDA kernel (src/cuda/kernels/misc.cu):
 * attribute parsing, output geometry from scales / sizes / roi, and the
 * per-axis (input index, weight) tables that every interpolation mode
 * reduces to. Coordinates and weights are computed in float like ONNX
 * Runtime does, so nearest-neighbour picks match it at rounding boundaries. */
#ifndef FACEGRAPH_OPS_RESIZE_PARAMS_H
#define FACEGRAPH_OPS_RESIZE_PARAMS_H

#include "ops/op.h"

typedef enum resize_mode { RESIZE_NEAREST, RESIZE_LINEAR, RESIZE_CUBIC } resize_mode;

typedef enum resize_coord {
    COORD_HALF_PIXEL,
    COORD_PYTORCH_HALF_PIXEL,
    COORD_ALIGN_CORNERS,
    COORD_ASYMMETRIC,
    COORD_TF_CROP_AND_RESIZE,
    COORD_TF_HALF_PIXEL_FOR_NN,
    COORD_HALF_PIXEL_SYMMETRIC
} resize_coord;

typedef enum resize_nearest {
    NEAREST_ROUND_PREFER_FLOOR,
    NEAREST_ROUND_PREFER_CEIL,
    NEAREST_FLOOR,
    NEAREST_CEIL,
    NEAREST_SIMPLE /* opset < 11: truncate when upsampling, ceil when downsampling */
} resize_nearest;

typedef struct resize_params {
    resize_mode mode;
    resize_coord coord;
    resize_nearest nearest;
    float cubic_a;
    int exclude_outside;
    float extrapolation;
    int antialias;
    int rank;
    int64_t in_dims[FG_MAX_RANK];
    int64_t out_dims[FG_MAX_RANK];
    float scale[FG_MAX_RANK];     /* per-axis scale used by the coordinate transform */
    float resized_len[FG_MAX_RANK]; /* in * scale when scales are given (the spec's
                                       length_resized for align_corners and
                                       tf_crop_and_resize), the size when sizes are */
    float roi_start[FG_MAX_RANK]; /* tf_crop_and_resize only */
    float roi_end[FG_MAX_RANK];
    int taps[FG_MAX_RANK];        /* input positions read per output position */
} resize_params;

/* One axis's table: per output position, `taps` (input index, weight) pairs. */
typedef struct resize_axis {
    int64_t in_len, out_len;
    int taps;
    int identity;     /* output i reads input i with weight 1 */
    int64_t *index;   /* out_len * taps, clamped into [0, in_len) */
    float *weight;    /* out_len * taps */
    uint8_t *outside; /* out_len: 1 = extrapolation_value (tf_crop_and_resize) */
} resize_axis;

/* Parses and validates the attributes of a Resize or Upsample node. */
fg_status *resize_parse_attributes(const ir_node *node, int64_t opset, resize_params *p);

/* Reads the attributes, scales or sizes (which must be present: returns
 * op_need_value() otherwise), and roi into p; fills the output dims and the
 * taps per axis. A tf_crop_and_resize roi input without data is skipped, or
 * with roi_must_be_constant is an FG_ERR_UNSUPPORTED error. */
fg_status *resize_setup(const op_call *call, resize_params *p, int roi_must_be_constant);

/* Fills ax->index / weight / outside (allocated by the caller: out_dims[d] *
 * taps[d] entries, and out_dims[d]) and the rest of ax for axis d. */
void resize_build_axis(const resize_params *p, int d, resize_axis *ax);

#endif
