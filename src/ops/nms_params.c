/* Host-side checks of NonMaxSuppression shared by the CPU and CUDA kernels
 * (see nms_params.h). */
#include "ops/nms_params.h"

fg_status *nms_check_inputs(const op_call *call)
{
    if (call->n_in < 2 || !op_has_input(call, 0) || !op_has_input(call, 1))
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "boxes and scores are required");
    const fg_tensor *boxes = &call->in[0], *scores = &call->in[1];
    if (boxes->rank != 3 || boxes->dims[2] != 4)
        return op_error(call, FG_ERR_SHAPE, "boxes must have shape [batch, boxes, 4]");
    if (scores->rank != 3 || scores->dims[0] != boxes->dims[0] || scores->dims[2] != boxes->dims[1])
        return op_error(call, FG_ERR_SHAPE, "scores must have shape [batch, classes, boxes] matching boxes");
    if (boxes->dtype != FG_FLOAT32 || scores->dtype != FG_FLOAT32)
        return op_error(call, FG_ERR_DTYPE, "boxes and scores must be float32 (got %s and %s)",
                        fg_dtype_name(boxes->dtype), fg_dtype_name(scores->dtype));
    return NULL;
}
