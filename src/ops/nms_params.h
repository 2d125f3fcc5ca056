/* Host-side checks of NonMaxSuppression shared by the CPU kernel
 * (src/ops/detection.c) and the CUDA kernel (src/cuda/kernels/misc.cu). */
#ifndef FACEGRAPH_OPS_NMS_PARAMS_H
#define FACEGRAPH_OPS_NMS_PARAMS_H

#include "ops/op.h"

/* boxes [batch, boxes, 4] and scores [batch, classes, boxes], both float32. */
fg_status *nms_check_inputs(const op_call *call);

#endif
