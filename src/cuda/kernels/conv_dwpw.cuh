/* FusedDepthwisePointwise on the GPU (src/cuda/kernels/conv_dwpw.cu): the
 * entry points that cuda_family_facegraph (elementwise_chain.cu) lists. */
#ifndef FACEGRAPH_CUDA_CONV_DWPW_CUH
#define FACEGRAPH_CUDA_CONV_DWPW_CUH

#include "cuda/cuda_ops.h"

extern "C" {
fg_status *cuda_dwpw_prepare(cuda_call *call);
fg_status *cuda_dwpw_run(cuda_call *call);
void cuda_dwpw_release(void *state);
}

#endif
