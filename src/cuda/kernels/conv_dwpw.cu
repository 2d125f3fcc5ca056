/* FusedDepthwisePointwise on the GPU (see src/ops/conv_dwpw.h): one kernel
 * per step. A block takes a tile of DWPW_TILE consecutive output pixels of
 * one image and a tile of output channels:
 *   phase 1  the depthwise 3x3 outputs of ALL input channels at those pixels
 *            (+ bias, + the depthwise activation) into shared memory,
 *            mid[c][pixel], one warp per channel and 32 pixels at a time;
 *   phase 2  each warp makes DWPW_CO_PER_WARP output channels for the 32
 *            pixels (one per lane) from shared memory, the pointwise weights
 *            read warp-uniformly as float4 from a transposed copy
 *            [c_in][co_pad] uploaded in prepare, then bias, residual and the
 *            activation, and stores coalesced along the pixel row.
 * Each depthwise output is computed as the stand-alone kernel does
 * (conv_depthwise.cuh: fmaf over the taps kh outer and kw inner, + bias,
 * activation); the pointwise sums run over input channels in order with
 * fmaf. No atomics: every output has one fixed order of operations, so eager
 * runs and CUDA-graph replays give identical bits. Blocks with several
 * output-channel tiles recompute the depthwise outputs (9 multiply-adds per
 * value against c_out_tile for the pointwise), which keeps the grid wide on
 * small feature maps.
 *
 * Limits: C and Co at most DWPW_MAX_CHANNELS (the planner only fuses such
 * pairs); shared memory is C * DWPW_TILE floats (64 KiB at 512 channels,
 * granted through cudaFuncSetAttribute in prepare). */
#include "cuda/cuda_ops.h"
#include "cuda/kernels/kernel_util.cuh"
#include "cuda/kernels/conv_dwpw.cuh"

extern "C" {
#include "ops/conv_dwpw.h"
}

#define DWPW_TILE 32         /* output pixels per block: one per lane */
#define DWPW_CO_PER_WARP 8   /* output channels per warp (two float4 weight loads) */
#define DWPW_MAX_WARPS 8     /* 256 threads */
#define DWPW_MIN_WARPS 4
#define DWPW_CO_PAD (DWPW_MAX_WARPS * DWPW_CO_PER_WARP) /* packed weight rows padded to this */

typedef struct dwpw_dev_params {
    uint32_t c_in, c_out, co_pad;
    uint32_t in_h, in_w, out_w, pixels; /* pixels = out_h * out_w */
    uint32_t tiles;                     /* pixel tiles per image */
    int stride_h, stride_w, pad_t, pad_l;
    op_activation dw_act, pw_act;
} dwpw_dev_params;

typedef struct dwpw_cuda_state {
    dwpw_dev_params p;
    float *d_packed; /* [c_in][co_pad] pointwise weights (transposed), then [co_pad] bias; zero padded */
    unsigned grid_x, grid_y, threads;
    size_t smem;
    int has_dw_bias, has_residual, empty;
} dwpw_cuda_state;

static __global__ void __launch_bounds__(DWPW_MAX_WARPS * 32)
    dwpw_kernel(const float *__restrict__ x, const float *__restrict__ dw_w, const float *__restrict__ dw_b,
                const float *__restrict__ pw_wt, const float *__restrict__ pw_b, const float *__restrict__ residual,
                float *__restrict__ y, dwpw_dev_params p)
{
    CU_KERNEL_PROLOGUE();
    extern __shared__ float mid[]; /* [c_in][DWPW_TILE] */
    const uint32_t image = blockIdx.x / p.tiles;
    const uint32_t pix0 = (blockIdx.x % p.tiles) * DWPW_TILE;
    const uint32_t in_plane = p.in_h * p.in_w;
    const float *xn = x + (size_t)image * p.c_in * in_plane;

    /* phase 1: depthwise outputs of every input channel at the tile's pixels */
    const uint32_t items = p.c_in * DWPW_TILE;
    for (uint32_t i = threadIdx.x; i < items; i += blockDim.x) {
        const uint32_t c = i / DWPW_TILE, pix = pix0 + i % DWPW_TILE;
        float v = 0.0f;
        if (pix < p.pixels) {
            const int oh = (int)(pix / p.out_w), ow = (int)(pix % p.out_w);
            const int ih0 = oh * p.stride_h - p.pad_t, iw0 = ow * p.stride_w - p.pad_l;
            const float *xp = xn + (size_t)c * in_plane;
            const float *wp = dw_w + (size_t)c * 9;
            float acc = 0.0f;
#pragma unroll
            for (int kh = 0; kh < 3; kh++) {
                const int ih = ih0 + kh;
                if (ih < 0 || ih >= (int)p.in_h)
                    continue;
                const float *row = xp + (uint32_t)ih * p.in_w;
#pragma unroll
                for (int kw = 0; kw < 3; kw++) {
                    const int iw = iw0 + kw;
                    if (iw >= 0 && iw < (int)p.in_w)
                        acc = fmaf(__ldg(row + iw), __ldg(wp + kh * 3 + kw), acc);
                }
            }
            if (dw_b)
                acc += __ldg(dw_b + c);
            v = cu_act(p.dw_act, acc);
        }
        mid[i] = v;
    }
    __syncthreads();

    /* phase 2: DWPW_CO_PER_WARP output channels per warp, one pixel per lane */
    const uint32_t lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const uint32_t co0 = (blockIdx.y * (blockDim.x / 32) + warp) * DWPW_CO_PER_WARP;
    if (co0 >= p.c_out)
        return; /* warp-uniform; no barrier follows */
    float acc[DWPW_CO_PER_WARP];
#pragma unroll
    for (int j = 0; j < DWPW_CO_PER_WARP; j++)
        acc[j] = 0.0f;
    const float *wcol = pw_wt + co0; /* co0 + 8 <= co_pad: rows are padded to DWPW_CO_PAD */
#pragma unroll 4
    for (uint32_t ci = 0; ci < p.c_in; ci++) {
        const float v = mid[ci * DWPW_TILE + lane];
        const float4 wa = __ldg((const float4 *)(wcol + (size_t)ci * p.co_pad));
        const float4 wb = __ldg((const float4 *)(wcol + (size_t)ci * p.co_pad + 4));
        acc[0] = fmaf(v, wa.x, acc[0]);
        acc[1] = fmaf(v, wa.y, acc[1]);
        acc[2] = fmaf(v, wa.z, acc[2]);
        acc[3] = fmaf(v, wa.w, acc[3]);
        acc[4] = fmaf(v, wb.x, acc[4]);
        acc[5] = fmaf(v, wb.y, acc[5]);
        acc[6] = fmaf(v, wb.z, acc[6]);
        acc[7] = fmaf(v, wb.w, acc[7]);
    }
    const uint32_t pix = pix0 + lane;
    if (pix >= p.pixels)
        return;
#pragma unroll
    for (int j = 0; j < DWPW_CO_PER_WARP; j++) {
        const uint32_t co = co0 + j;
        if (co < p.c_out) {
            const size_t idx = ((size_t)image * p.c_out + co) * p.pixels + pix;
            float v = acc[j] + __ldg(pw_b + co);
            if (residual)
                v += __ldg(residual + idx);
            y[idx] = cu_act(p.pw_act, v);
        }
    }
}

extern "C" void cuda_dwpw_release(void *state)
{
    dwpw_cuda_state *s = (dwpw_cuda_state *)state;
    if (!s)
        return;
    if (s->d_packed)
        cudaFree(s->d_packed);
    free(s);
}

/* Transposed, zero-padded pointwise weights and bias, uploaded once. */
static fg_status *upload_pointwise(cuda_call *call, dwpw_cuda_state *s, const float *w, const float *bias)
{
    const size_t c_in = s->p.c_in, c_out = s->p.c_out, co_pad = s->p.co_pad;
    const size_t floats = c_in * co_pad + co_pad;
    float *host = (float *)calloc(floats, sizeof(float));
    if (!host)
        return op_error(&call->op, FG_ERR_OUT_OF_MEMORY, "out of host memory packing convolution weights");
    for (size_t co = 0; co < c_out; co++)
        for (size_t ci = 0; ci < c_in; ci++)
            host[ci * co_pad + co] = w[co * c_in + ci];
    if (bias)
        memcpy(host + c_in * co_pad, bias, c_out * sizeof(float));
    cudaError_t err = cudaMalloc((void **)&s->d_packed, floats * sizeof(float));
    if (err == cudaSuccess)
        err = cudaMemcpy(s->d_packed, host, floats * sizeof(float), cudaMemcpyHostToDevice);
    free(host);
    if (err != cudaSuccess) {
        cudaGetLastError();
        return cuda_error(call, err, "uploading the fused convolution's weights");
    }
    return NULL;
}

extern "C" fg_status *cuda_dwpw_prepare(cuda_call *call)
{
    dwpw_geom g;
    FG_TRY(dwpw_geometry(&call->op, &g));
    const fg_tensor *y = &call->op.out[0];
    if (y->dtype != FG_FLOAT32 || y->rank != 4 || y->dims[0] != g.batch || y->dims[1] != g.c_out ||
        y->dims[2] != g.out_h || y->dims[3] != g.out_w)
        return op_error(&call->op, FG_ERR_INTERNAL, "the output shape does not match the fused convolution");
    if (g.c_in > DWPW_MAX_CHANNELS || g.c_out > DWPW_MAX_CHANNELS)
        return op_error(&call->op, FG_ERR_UNSUPPORTED,
                        "the fused depthwise+pointwise kernel takes at most %d channels (got %lld -> %lld)",
                        DWPW_MAX_CHANNELS, (long long)g.c_in, (long long)g.c_out);
    const float *w_host = (const float *)call->host_in[DWPW_IN_PW_W].data;
    const float *b_host = g.has_pw_bias ? (const float *)call->host_in[DWPW_IN_PW_B].data : NULL;
    if (!w_host || (g.has_pw_bias && !b_host))
        return op_error(&call->op, FG_ERR_UNSUPPORTED, "the pointwise weights of a fused convolution must be constant");
    if (g.batch * g.c_in * g.in_h * g.in_w >= CU_INDEX_LIMIT || g.batch * g.c_out * g.out_h * g.out_w >= CU_INDEX_LIMIT)
        return op_error(&call->op, FG_ERR_UNSUPPORTED, "tensors of 2^31 elements or more are not supported");

    dwpw_cuda_state *s = (dwpw_cuda_state *)calloc(1, sizeof *s);
    if (!s)
        return op_error(&call->op, FG_ERR_OUT_OF_MEMORY, "out of host memory");
    dwpw_dev_params *p = &s->p;
    p->c_in = (uint32_t)g.c_in;
    p->c_out = (uint32_t)g.c_out;
    p->co_pad = (uint32_t)((g.c_out + DWPW_CO_PAD - 1) / DWPW_CO_PAD * DWPW_CO_PAD);
    p->in_h = (uint32_t)g.in_h;
    p->in_w = (uint32_t)g.in_w;
    p->out_w = (uint32_t)g.out_w;
    p->pixels = (uint32_t)(g.out_h * g.out_w);
    p->tiles = (p->pixels + DWPW_TILE - 1) / DWPW_TILE;
    p->stride_h = (int)g.stride_h;
    p->stride_w = (int)g.stride_w;
    p->pad_t = (int)g.pad_t;
    p->pad_l = (int)g.pad_l;
    p->dw_act = g.dw_act;
    s->has_dw_bias = g.has_dw_bias;
    s->has_residual = g.has_residual;
    s->empty = g.batch == 0 || p->pixels == 0 || g.c_out == 0 || g.c_in == 0;
    call->op.state = s;
    if (s->empty)
        return NULL;
    FG_TRY(upload_pointwise(call, s, w_host, b_host));

    s->smem = (size_t)p->c_in * DWPW_TILE * sizeof(float);
    if (s->smem > 48 * 1024) {
        cudaError_t err = cudaFuncSetAttribute(dwpw_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)s->smem);
        if (err != cudaSuccess) {
            cudaGetLastError();
            return cuda_error(call, err, "granting the fused convolution's shared memory");
        }
    }
    int sms = 0;
    if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, call->device) != cudaSuccess || sms < 1) {
        cudaGetLastError();
        sms = 132;
    }
    /* one warp per DWPW_CO_PER_WARP output channels, up to 8 warps (64 channels) per block; half as many
     * (down to 4) while the grid would leave SMs idle */
    const int64_t grid_x = g.batch * (int64_t)p->tiles;
    if (grid_x > INT32_MAX)
        return op_error(&call->op, FG_ERR_UNSUPPORTED, "too many pixels for the fused convolution");
    unsigned warps = (unsigned)((g.c_out + DWPW_CO_PER_WARP - 1) / DWPW_CO_PER_WARP);
    if (warps > DWPW_MAX_WARPS)
        warps = DWPW_MAX_WARPS;
    while (warps > DWPW_MIN_WARPS &&
           grid_x * ((g.c_out + warps * DWPW_CO_PER_WARP - 1) / (warps * DWPW_CO_PER_WARP)) < 2 * (int64_t)sms)
        warps = (warps + 1) / 2 > DWPW_MIN_WARPS ? (warps + 1) / 2 : DWPW_MIN_WARPS;
    s->threads = warps * 32;
    s->grid_x = (unsigned)grid_x;
    s->grid_y = (unsigned)((g.c_out + warps * DWPW_CO_PER_WARP - 1) / (warps * DWPW_CO_PER_WARP));
    return NULL;
}

extern "C" fg_status *cuda_dwpw_run(cuda_call *call)
{
    const dwpw_cuda_state *s = (const dwpw_cuda_state *)call->op.state;
    if (!s)
        return op_error(&call->op, FG_ERR_INTERNAL, "the fused convolution was not prepared");
    if (s->empty)
        return NULL;
    const fg_tensor *in = call->op.in;
    const float *pw_b = s->d_packed + (size_t)s->p.c_in * s->p.co_pad;
    dwpw_dev_params p = s->p;
    p.pw_act = call->op.act;
    cu_launch(dwpw_kernel, dim3(s->grid_x, s->grid_y), s->threads, s->smem, call->stream,
        (const float *)in[DWPW_IN_X].data, (const float *)in[DWPW_IN_DW_W].data,
        s->has_dw_bias ? (const float *)in[DWPW_IN_DW_B].data : NULL, s->d_packed, pw_b,
        s->has_residual ? (const float *)in[DWPW_IN_RESIDUAL].data : NULL, (float *)call->op.out[0].data, p);
    CU_CHECK_LAUNCH(call, "fused depthwise+pointwise convolution");
    return NULL;
}
