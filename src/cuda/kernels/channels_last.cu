/* ChannelsLastSlices on the GPU (see src/ops/channels_last.h): one kernel
 * for all of a step's outputs. A block takes CLS_TILE consecutive pixels:
 * it reads each output's channel rows of them (coalesced along the pixel
 * row) into a shared tile [channel][pixel], then writes each output's
 * [pixel][channel] block, which is contiguous in that output, coalesced,
 * through the output's activation (cu_act, the math of the fused
 * activations). Each output element is one load and one activation, so
 * eager runs and graph replays give identical bits. */
#include "cuda/cuda_ops.h"
#include "cuda/kernels/kernel_util.cuh"
#include "cuda/kernels/channels_last.cuh"

extern "C" {
#include "ops/channels_last.h"
}

#define CLS_TILE 32 /* pixels per block; the tile's rows are CLS_TILE + 1 floats (no bank conflicts) */

typedef struct cls_params {
    float *out[CLS_MAX_OUTPUTS];
    int offset[CLS_MAX_OUTPUTS];   /* first channel of x */
    int channels[CLS_MAX_OUTPUTS];
    int row[CLS_MAX_OUTPUTS];      /* first row of the tile */
    op_activation act[CLS_MAX_OUTPUTS];
    int n, rows;
    uint32_t plane;                /* H * W */
} cls_params;

static __global__ void cls_kernel(const float *__restrict__ x, cls_params p)
{
    CU_KERNEL_PROLOGUE();
    extern __shared__ float tile[];
    const uint32_t first = blockIdx.x * CLS_TILE;
    const int count = p.plane - first < CLS_TILE ? (int)(p.plane - first) : CLS_TILE;
    for (int j = 0; j < p.n; j++) {
        const float *src = x + (size_t)p.offset[j] * p.plane + first;
        float *rows = tile + p.row[j] * (CLS_TILE + 1);
        for (int i = threadIdx.x; i < p.channels[j] * CLS_TILE; i += blockDim.x) {
            const int c = i / CLS_TILE, t = i % CLS_TILE;
            if (t < count)
                rows[c * (CLS_TILE + 1) + t] = src[(size_t)c * p.plane + t];
        }
    }
    __syncthreads();
    for (int j = 0; j < p.n; j++) {
        const int cj = p.channels[j];
        const float *rows = tile + p.row[j] * (CLS_TILE + 1);
        float *dst = p.out[j] + (size_t)first * cj;
        for (int i = threadIdx.x; i < cj * count; i += blockDim.x) {
            const int t = i / cj, c = i - t * cj;
            dst[i] = cu_act(p.act[j], rows[c * (CLS_TILE + 1) + t]);
        }
    }
}

extern "C" fg_status *cuda_cls_prepare(cuda_call *call)
{
    cls_geom g;
    FG_TRY(cls_geometry(&call->op, &g));
    if (fg_tensor_numel(&call->op.in[0]) > CU_INDEX_LIMIT)
        return op_error(&call->op, FG_ERR_UNSUPPORTED, "tensors of 2^31 elements or more are not supported on the GPU");
    cls_params *st = (cls_params *)cu_state_alloc(sizeof(cls_params));
    if (!st)
        return op_error(&call->op, FG_ERR_OUT_OF_MEMORY, "out of host memory preparing the kernel");
    call->op.state = st;
    st->n = g.n;
    st->plane = (uint32_t)(g.h * g.w);
    for (int j = 0; j < g.n; j++) {
        st->offset[j] = (int)g.offset[j];
        st->channels[j] = (int)g.channels[j];
        st->row[j] = st->rows;
        st->act[j] = g.act[j];
        st->rows += (int)g.channels[j];
    }
    return NULL;
}

extern "C" fg_status *cuda_cls_run(cuda_call *call)
{
    cls_params p = *(const cls_params *)call->op.state;
    if (p.plane == 0)
        return NULL;
    for (int j = 0; j < p.n; j++)
        p.out[j] = (float *)call->op.out[j].data;
    const size_t smem = sizeof(float) * (size_t)p.rows * (CLS_TILE + 1);
    cu_launch(cls_kernel, (p.plane + CLS_TILE - 1) / CLS_TILE, CU_THREADS, smem, call->stream,
              (const float *)call->op.in[0].data, p);
    CU_CHECK_LAUNCH(call, "channels-last slices kernel");
    return NULL;
}

extern "C" void cuda_cls_release(void *state) { free(state); }
