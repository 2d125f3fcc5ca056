/* ChannelsLastSlices on the GPU (src/cuda/kernels/channels_last.cu): the
 * entry points that cuda_family_facegraph (elementwise_chain.cu) lists. */
#ifndef FACEGRAPH_CUDA_CHANNELS_LAST_CUH
#define FACEGRAPH_CUDA_CHANNELS_LAST_CUH

#include "cuda/cuda_ops.h"

extern "C" {
fg_status *cuda_cls_prepare(cuda_call *call);
fg_status *cuda_cls_run(cuda_call *call);
void cuda_cls_release(void *state);
}

#endif
