/* Host-side convolution geometry shared by the CPU kernels (src/ops/conv.c)
 * and the CUDA kernels (src/cuda/kernels/conv.cu): input checks, the kernel /
 * stride / dilation / padding / group attributes (auto_pad, output_padding
 * and output_shape included) and the output size per spatial axis.
 *
 * The padding helpers (explicit pads, auto_pad, SAME padding) are also used
 * by the pooling geometry (src/ops/pool_geometry.c). */
#ifndef FACEGRAPH_OPS_CONV_GEOMETRY_H
#define FACEGRAPH_OPS_CONV_GEOMETRY_H

#include "ops/op.h"

#define CONV_MAX_SP 3

typedef struct conv_geom {
    int transposed;
    int nsp; /* spatial rank: 1..3 */
    int64_t batch, c_in, c_out, group;
    int64_t in_sp[CONV_MAX_SP], out_sp[CONV_MAX_SP], kernel[CONV_MAX_SP];
    int64_t stride[CONV_MAX_SP], dilation[CONV_MAX_SP];
    int64_t pad_l[CONV_MAX_SP], pad_r[CONV_MAX_SP]; /* transposed: pad_r already less output_padding */
} conv_geom;

/* Checks inputs X, W (rank 3 to 5) and the optional bias against each other
 * and the attributes, and fills g (Conv, or ConvTranspose when transposed).
 * Dtypes are not checked. */
fg_status *conv_geometry(const op_call *call, int transposed, conv_geom *g);

typedef enum auto_pad_mode { AUTO_PAD_NOTSET, AUTO_PAD_VALID, AUTO_PAD_SAME_UPPER, AUTO_PAD_SAME_LOWER } auto_pad_mode;

/* Reads the "pads" attribute (2 * nsp values: begins then ends; zeros when
 * absent) into pad_l / pad_r. */
fg_status *spatial_pads_attr(const op_call *call, int nsp, int64_t *pad_l, int64_t *pad_r);

/* Reads the "auto_pad" attribute (default NOTSET). */
fg_status *auto_pad_attr(const op_call *call, auto_pad_mode *mode);

/* SAME_UPPER / SAME_LOWER padding of one spatial axis of size in for a
 * window of span (dilated size) and stride: the output has ceil(in / stride)
 * elements (returned); the total padding (never negative) is split with the
 * odd element at the end (upper) or the beginning (lower). */
int64_t same_auto_pads(int64_t in, int64_t stride, int64_t span, int upper, int64_t *pad_l, int64_t *pad_r);

#endif
