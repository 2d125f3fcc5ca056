/* The contract between CUDA op kernels (src/cuda/kernels/, one .cu per family) and the CUDA
 * backend (src/cuda/cuda_backend.c).
 *
 * The CUDA backend runs the same plan as the CPU (src/plan): shapes, folding,
 * fusion and the arena layout are shared; the arena lives on the device and
 * constants are uploaded once per model and device. For each step the
 * backend calls the CUDA op registered for the node's op_type:
 *   prepare  once per plan, outside any capture: may read constant inputs on
 *            the host (call->host_in[i].data), build cuDNN/cuBLAS descriptors,
 *            choose algorithms, and declare device scratch (scratch_bytes)
 *   run      per inference, on call->stream: kernel launches and async
 *            library calls only: no allocation, no synchronisation, no host
 *            reads of device data, so that it can be captured in a CUDA graph
 *   release  when the plan goes
 * Data-dependent outputs (NonZero, NonMaxSuppression, TopK with K from an
 * input) are laid out at the planned capacity with zeros past the true
 * length, and the true length (shared by all the step's outputs) goes to
 * *call->device_count (an int64 in device memory) instead of changing dims.
 */
#ifndef FACEGRAPH_CUDA_OPS_H
#define FACEGRAPH_CUDA_OPS_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "ops/op.h"

typedef struct cuda_call {
    op_call op;               /* node, opset, in/out shapes; in[i].data / out[i].data are DEVICE pointers;
                                 op.act is the fused activation; op.state is the op's prepared state */
    const fg_tensor *host_in; /* host views: data non-NULL only for constant inputs */
    cudaStream_t stream;
    cudnnHandle_t cudnn;
    cublasHandle_t cublas;
    void *scratch;            /* device scratch of op.scratch_bytes bytes (run only) */
    int64_t *device_count;    /* data-dependent ops: device int64 receiving the true output length */
    int device;
    int allow_tf32;           /* 1: convolutions and matmuls may use TF32 tensor cores */
    int allow_fp16;           /* 1: convolutions may run in float16 (tensor cores, float32 accumulation) */
} cuda_call;

typedef struct cuda_op_def {
    const char *op_type;
    fg_status *(*prepare)(cuda_call *call); /* optional */
    fg_status *(*run)(cuda_call *call);
    void (*release)(void *state);           /* optional */
} cuda_op_def;

/* Kernel families, each an array ending with a zeroed entry. */
extern const cuda_op_def cuda_family_elementwise[];
extern const cuda_op_def cuda_family_tensor[];
extern const cuda_op_def cuda_family_conv[];
extern const cuda_op_def cuda_family_matmul[];
extern const cuda_op_def cuda_family_reduce[];
extern const cuda_op_def cuda_family_misc[]; /* pool, norm, resize, detection */
extern const cuda_op_def cuda_family_facegraph[]; /* domain "facegraph": FusedElementwise, FusedDepthwisePointwise,
                                                     ChannelsLastSlices */

const cuda_op_def *cuda_op_find(const char *domain, const char *op_type);

/* cuBLAS calls inside run(): the handle on call->stream, host pointer mode,
 * TF32 only when call->allow_tf32, and `workspace` (CUDA_BLAS_WORKSPACE
 * bytes of the op's scratch) so that nothing is allocated during a capture. */
#define CUDA_BLAS_WORKSPACE ((size_t)32 << 20) /* cuBLAS's recommendation for Hopper */
fg_status *cuda_blas_setup(cuda_call *call, void *workspace);

/* An fg_status for a failed CUDA runtime / cuDNN / cuBLAS call naming the node. */
fg_status *cuda_error(const cuda_call *call, cudaError_t err, const char *what);
fg_status *cudnn_error(const cuda_call *call, cudnnStatus_t err, const char *what);
fg_status *cublas_error(const cuda_call *call, cublasStatus_t err, const char *what);

#ifdef __cplusplus
}
#endif
#endif
