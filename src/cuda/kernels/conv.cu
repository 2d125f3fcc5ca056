/* CUDA Conv and ConvTranspose (float32, NCHW, 1-D to 3-D) on cuDNN 9's
 * legacy convolution API.
 *
 * prepare works out the geometry with src/ops/conv_geometry.c (as the CPU
 * kernels in src/ops/conv.c do), builds the
 * cuDNN descriptors (1-D convolutions become 2-D ones with H = 1), picks the
 * algorithm (FACEGRAPH_CUDNN_CONV_ALGO_SEARCH = exhaustive (default, cached
 * on disk through conv_algo_cache) | heuristic | default) and sizes the
 * scratch: [cuDNN workspace | padded input or full transposed output].
 *
 * Paths:
 *   - depthwise 2-D (group == C_in == C_out): direct kernels with fused
 *     bias and activation (conv_depthwise.cuh: 3x3 stride 1/2 tiles, else one
 *     thread per output); FACEGRAPH_CUDA_DEPTHWISE=cudnn uses cuDNN instead,
 *     =generic the one-thread-per-output kernel for every shape
 *   - 1-D/2-D Conv with group 1 and constant weights (and bias): after the
 *     cuDNN set-up below, prepare times the direct kernels of
 *     conv_direct.cuh (one kernel each, bias and activation fused) against
 *     the cuDNN path, each captured in a CUDA graph, on temporary buffers,
 *     and keeps the fastest; the choice is cached on disk (conv_algo_cache,
 *     key "direct11|...") so later starts skip the timing.
 *     FACEGRAPH_CUDA_CONV = auto (default) | cudnn | direct (fastest direct
 *     kernel, no cuDNN, no cache) | <n> (direct kernel n where it applies)
 *     | winograd2 | winograd4 | winograd-fused | tensorcore (for testing;
 *     see direct_mode).
 *   - 3x3 stride-1 convolutions of 32+ channels: Winograd F(2x2) and
 *     F(4x4) (conv_winograd.cuh: weights transformed once, input transform,
 *     one batched cuBLAS GEMM, output transform with bias, residual and
 *     activation) are two more candidates of the same timing, and F(2x2)
 *     with a float16 GEMM on tensor cores a third where float16 is allowed;
 *     from 8 channels, the fused Winograd kernel (wf_kernel: the three
 *     steps in one launch, enum wf_variant) in six block shapes;
 *     each must reproduce cuDNN's output first (1e-3, float16 2e-2).
 *   - Conv: cudnnConvolutionBiasActivationForward when there is a bias and
 *     the activation is ReLU (or none with the implicit precomputed GEMM
 *     algorithm), else cudnnConvolutionForward + one bias/activation kernel.
 *     Asymmetric pads: the input is zero-padded into scratch by the excess
 *     and cuDNN runs with the symmetric remainder.
 *   - ConvTranspose: cudnnConvolutionBackwardData straight into the output
 *     when the pads fit cuDNN's symmetric model (pad_begin - pad_end, the
 *     output padding, in [0, stride)); otherwise into the full (unpadded)
 *     result in scratch, cropped by the bias/activation kernel.
 * TF32: call->allow_tf32 == 0 forces CUDNN_FMA_MATH (true fp32). */
#include "cuda/cuda_ops.h"
#include "cuda/kernels/kernel_util.cuh"
#include "cuda/conv_algo_cache.h"
#include "cuda/kernels/conv_direct.cuh"
#include "cuda/kernels/conv_depthwise.cuh"
#include "cuda/kernels/conv_winograd.cuh"

extern "C" {
#include "ops/conv_geometry.h"
}

#include <limits.h>
#include <stdio.h>

#define CONV_ALIGN 256
#define HALF_TOLERANCE 2e-2f /* float16 paths: agreement with the float32 output, of its largest value */
#define CONV_MAX_ALGOS 16
#define CONV_SEARCH_WORKSPACE_CAP ((size_t)1 << 30)

/* ------------------------------------------------------------ kernels */

/* Spatial geometry widened to 3 axes (leading axes of size 1), 32-bit. */
typedef struct sp3 {
    int d, h, w;
} sp3;

/* y[i] = act(y[i] + bias[channel]) in place; bias may be NULL. */
__global__ void conv_bias_act_kernel(float *y, const float *bias, const float *residual, uint32_t channels,
                                     uint32_t plane, uint32_t total, op_activation act)
{
    CU_KERNEL_PROLOGUE();
    CU_LOOP(i, total)
    {
        float v = y[i];
        if (bias)
            v += __ldg(bias + (i / plane) % channels);
        if (residual)
            v += residual[i];
        y[i] = cu_act(act, v);
    }
}

/* Same with float4 (plane % 4 == 0, 16-byte aligned y). */
__global__ void conv_bias_act_vec4_kernel(float4 *y, const float *bias, const float4 *residual, uint32_t channels,
                                          uint32_t plane4, uint32_t total4, op_activation act)
{
    CU_KERNEL_PROLOGUE();
    CU_LOOP(i, total4)
    {
        float4 v = y[i];
        float b = bias ? __ldg(bias + (i / plane4) % channels) : 0.0f;
        v.x += b;
        v.y += b;
        v.z += b;
        v.w += b;
        if (residual) {
            float4 r = residual[i];
            v.x += r.x;
            v.y += r.y;
            v.z += r.z;
            v.w += r.w;
        }
        v.x = cu_act(act, v.x);
        v.y = cu_act(act, v.y);
        v.z = cu_act(act, v.z);
        v.w = cu_act(act, v.w);
        y[i] = v;
    }
}

/* Zero-pads planes: dst[p, z, y, x] = src[p, z - lo.d, y - lo.h, x - lo.w] (0 outside). */
__global__ void conv_pad_kernel(const float *src, float *dst, sp3 in, sp3 out, sp3 lo, uint32_t total)
{
    CU_KERNEL_PROLOGUE();
    CU_LOOP(i, total)
    {
        uint32_t x = i % out.w, t = i / out.w;
        uint32_t yy = t % out.h;
        t /= out.h;
        uint32_t z = t % out.d, p = t / out.d;
        int sx = (int)x - lo.w, sy = (int)yy - lo.h, sz = (int)z - lo.d;
        float v = 0.0f;
        if (sx >= 0 && sx < in.w && sy >= 0 && sy < in.h && sz >= 0 && sz < in.d)
            v = src[(((size_t)p * in.d + sz) * in.h + sy) * in.w + sx];
        dst[i] = v;
    }
}

/* y[p, z, y, x] = act(full[p, z + off.d, y + off.h, x + off.w] (0 outside) + bias[p % channels]). */
__global__ void conv_crop_bias_act_kernel(const float *full, float *y, const float *bias, uint32_t channels,
                                          sp3 full_sp, sp3 out, sp3 off, uint32_t total, op_activation act)
{
    CU_KERNEL_PROLOGUE();
    CU_LOOP(i, total)
    {
        uint32_t x = i % out.w, t = i / out.w;
        uint32_t yy = t % out.h;
        t /= out.h;
        uint32_t z = t % out.d, p = t / out.d;
        int sx = (int)x + off.w, sy = (int)yy + off.h, sz = (int)z + off.d;
        float v = 0.0f;
        if (sx >= 0 && sx < full_sp.w && sy >= 0 && sy < full_sp.h && sz >= 0 && sz < full_sp.d)
            v = full[(((size_t)p * full_sp.d + sz) * full_sp.h + sy) * full_sp.w + sx];
        if (bias)
            v += __ldg(bias + p % channels);
        y[i] = cu_act(act, v);
    }
}

/* depthwise: conv_depthwise.cuh */

/* ------------------------------------------------------------ state */

enum conv_path { CONV_PATH_CUDNN = 0, CONV_PATH_DEPTHWISE, CONV_PATH_DIRECT, CONV_PATH_HALF, CONV_PATH_WINOGRAD };
/* tuning candidates beside enum cd_kind */
#define CONV_KIND_HALF (CD_COUNT + 1)  /* the float16 path */
#define CONV_KIND_WINO2 (CD_COUNT + 2) /* Winograd F(2x2, 3x3) */
#define CONV_KIND_WINO4 (CD_COUNT + 3) /* Winograd F(4x4, 3x3) */
#define CONV_KIND_WINO2_F16 (CD_COUNT + 4) /* Winograd F(2x2, 3x3), float16 GEMM (call->allow_fp16) */
#define CONV_KIND_WF (CD_COUNT + 5)    /* + enum wf_variant: fused Winograd, one kernel */
#define CONV_KIND_END (CONV_KIND_WF + WF_COUNT)
enum conv_search { SEARCH_EXHAUSTIVE = 0, SEARCH_HEURISTIC, SEARCH_DEFAULT };

typedef struct conv_state {
    conv_geom g;
    int path;
    int empty;       /* output has no elements: nothing to run */
    int has_bias;
    int has_residual; /* input 3: a residual the planner fused (y = act(conv + bias + residual)) */
    op_activation act;
    /* cuDNN */
    int nd;          /* 4 or 5 */
    cudnnTensorDescriptor_t x_desc, y_desc, bias_desc; /* transposed: x_desc = dy (the input), y_desc = dx */
    cudnnFilterDescriptor_t w_desc;
    cudnnConvolutionDescriptor_t conv_desc;
    cudnnActivationDescriptor_t act_desc;
    int algo;        /* cudnnConvolutionFwdAlgo_t or cudnnConvolutionBwdDataAlgo_t */
    size_t ws_bytes;
    int fused;       /* cudnnConvolutionBiasActivationForward */
    int post;        /* bias/activation kernel after cuDNN */
    /* Conv with asymmetric pads: input zero-padded into scratch */
    int pad_input;
    sp3 pad_in, pad_out, pad_lo;
    uint32_t pad_total;
    /* ConvTranspose outside cuDNN's pad model: full result in scratch, cropped */
    int crop;
    sp3 full_sp, crop_out, crop_off;
    size_t buf_off;  /* scratch offset of the padded input / full result */
    /* depthwise (conv_depthwise.cuh) */
    dw_plan dw;
    /* direct kernels (conv_direct.cuh) */
    int direct_kind; /* the tuned choice: enum cd_kind, or CONV_KIND_WINO* / CONV_KIND_WF + v on the Winograd path */
    cd_params cd;
    float *cd_weights; /* device: the packed weights and bias */
    /* Winograd (conv_winograd.cuh): scratch = [cuBLAS workspace | V | M]; fused: none */
    wino_params wino;
    int wino_half;     /* U and V in float16 */
    int wino_fused;    /* enum wf_variant, or -1 for the three-step path */
    void *wino_u;      /* device: the transformed weights */
    int fp16_allowed;  /* call->allow_fp16 at prepare */
    size_t wino_v_off, wino_m_off;
    /* float16 (see "float16 path" below) */
    int half;        /* this state's cuDNN descriptors are float16 (the half path's own state) */
    const void *w_dev; /* weights for the algorithm search when not call->op.in[1] */
    struct half_path *hp;
} conv_state;

static void conv_release(void *state);
static void half_path_release(struct half_path *hp);
static fg_status *half_forward(cuda_call *call, conv_state *s, const float *x, const float *residual, float *y,
                               char *scratch);

static void conv_release(void *state)
{
    conv_state *s = (conv_state *)state;
    if (!s)
        return;
    if (s->x_desc)
        cudnnDestroyTensorDescriptor(s->x_desc);
    if (s->y_desc)
        cudnnDestroyTensorDescriptor(s->y_desc);
    if (s->bias_desc)
        cudnnDestroyTensorDescriptor(s->bias_desc);
    if (s->w_desc)
        cudnnDestroyFilterDescriptor(s->w_desc);
    if (s->conv_desc)
        cudnnDestroyConvolutionDescriptor(s->conv_desc);
    if (s->act_desc)
        cudnnDestroyActivationDescriptor(s->act_desc);
    if (s->cd_weights)
        cudaFree(s->cd_weights);
    if (s->wino_u)
        cudaFree(s->wino_u);
    half_path_release(s->hp);
    free(s);
}

static size_t align_up(size_t x)
{
    return (x + CONV_ALIGN - 1) & ~(size_t)(CONV_ALIGN - 1);
}

static int search_mode(void)
{
    const char *e = getenv("FACEGRAPH_CUDNN_CONV_ALGO_SEARCH");
    if (!e || !e[0] || strcmp(e, "exhaustive") == 0)
        return SEARCH_EXHAUSTIVE;
    if (strcmp(e, "heuristic") == 0)
        return SEARCH_HEURISTIC;
    if (strcmp(e, "default") == 0)
        return SEARCH_DEFAULT;
    return SEARCH_EXHAUSTIVE;
}

static int depthwise_direct_enabled(void)
{
    const char *e = getenv("FACEGRAPH_CUDA_DEPTHWISE");
    return !(e && strcmp(e, "cudnn") == 0);
}

/* FACEGRAPH_CUDA_TENSOR_CORE_CONV=0: no CD_TC_* candidates (for comparison). */
static int tensor_core_conv_enabled(void)
{
    const char *e = getenv("FACEGRAPH_CUDA_TENSOR_CORE_CONV");
    return !(e && strcmp(e, "0") == 0);
}

/* Widens n spatial values to `count` axes (2 or 3), padding in front. */
static void widen(const int64_t *v, int nsp, int count, int64_t fill, int64_t *out)
{
    int off = count - nsp;
    for (int i = 0; i < count; i++)
        out[i] = i >= off ? v[i - off] : fill;
}

/* fill: the depth of 2-D geometry (1 for sizes, 0 for offsets). */
static sp3 to_sp3(const int64_t *v, int count, int fill)
{
    sp3 r;
    r.d = count == 3 ? (int)v[0] : fill;
    r.h = (int)v[count - 2];
    r.w = (int)v[count - 1];
    return r;
}

static int fits_int(int64_t v)
{
    return v >= 0 && v <= INT_MAX;
}

#define DNN_TRY(call, expr, what)                                                                                    \
    do {                                                                                                             \
        cudnnStatus_t st_ = (expr);                                                                                  \
        if (st_ != CUDNN_STATUS_SUCCESS)                                                                             \
            return cudnn_error((call), st_, (what));                                                                 \
    } while (0)

static fg_status *set_tensor_desc_typed(const cuda_call *call, cudnnTensorDescriptor_t desc, int nd, const int *dims,
                                        cudnnDataType_t type)
{
    int strides[5];
    int64_t s = 1;
    for (int i = nd - 1; i >= 0; i--) {
        strides[i] = (int)s;
        s *= dims[i];
    }
    if (s > INT_MAX)
        return op_error(&call->op, FG_ERR_UNSUPPORTED, "tensor of %lld elements is too large for cuDNN",
                        (long long)s);
    DNN_TRY(call, cudnnSetTensorNdDescriptor(desc, type, nd, dims, strides), "tensor descriptor");
    return NULL;
}

static fg_status *set_tensor_desc(const cuda_call *call, cudnnTensorDescriptor_t desc, int nd, const int *dims)
{
    return set_tensor_desc_typed(call, desc, nd, dims, CUDNN_DATA_FLOAT);
}

/* Tensor cores: float16 always, float32 only as TF32 when allowed. */
static int tensor_ops_allowed(const cuda_call *call, const conv_state *s)
{
    return call->allow_tf32 || s->half;
}

/* Math types a search result may carry. */
static int math_allowed(const cuda_call *call, const conv_state *s, cudnnMathType_t m)
{
    if (m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION)
        return 0; /* may down-convert to fp16/bf16 */
    if (!tensor_ops_allowed(call, s) && m == CUDNN_TENSOR_OP_MATH)
        return 0;
    return 1;
}

/* Sets the descriptor's math type for a chosen algorithm's result. */
static fg_status *apply_math(const cuda_call *call, conv_state *s, cudnnMathType_t m)
{
    cudnnMathType_t use = tensor_ops_allowed(call, s) ? m : CUDNN_FMA_MATH;
    DNN_TRY(call, cudnnSetConvolutionMathType(s->conv_desc, use), "math type");
    return NULL;
}

static size_t workspace_cap(void)
{
    size_t free_b = 0, total_b = 0;
    size_t cap = CONV_SEARCH_WORKSPACE_CAP;
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess && free_b / 4 < cap)
        cap = free_b / 4;
    return cap;
}

/* The signature of a convolution for the algorithm cache. */
static void make_cache_key(const cuda_call *call, const conv_state *s, char *key, size_t size)
{
    struct cudaDeviceProp prop;
    char name[256] = "gpu";
    if (cudaGetDeviceProperties(&prop, call->device) == cudaSuccess) {
        snprintf(name, sizeof name, "%s", prop.name);
        for (char *p = name; *p; p++)
            if (*p == '\t' || *p == '\n' || *p == '\r' || *p == '|')
                *p = ' ';
    }
    int xd[5], yd[5], wd[5], pad[3], str[3], dil[3], nd_out, n_conv;
    cudnnDataType_t dt;
    cudnnTensorFormat_t fmt;
    cudnnConvolutionMode_t mode;
    int xs[5], ys[5];
    cudnnGetTensorNdDescriptor(s->x_desc, 5, &dt, &nd_out, xd, xs);
    cudnnGetTensorNdDescriptor(s->y_desc, 5, &dt, &nd_out, yd, ys);
    cudnnGetFilterNdDescriptor(s->w_desc, 5, &dt, &fmt, &nd_out, wd);
    cudnnGetConvolutionNdDescriptor(s->conv_desc, 3, &n_conv, pad, str, dil, &mode, &dt);
    int n = snprintf(key, size, "%s|%s|cudnn%zu|tf32=%d%s|g%lld|x", s->g.transposed ? "bwd_data" : "fwd", name,
                     (size_t)cudnnGetVersion(), call->allow_tf32, s->half ? "|f16tc" : "", (long long)s->g.group);
    for (int i = 0; i < s->nd && n > 0 && (size_t)n < size; i++)
        n += snprintf(key + n, size - n, "%s%d", i ? "," : "", xd[i]);
    if (n > 0 && (size_t)n < size)
        n += snprintf(key + n, size - n, "|w");
    for (int i = 0; i < s->nd && n > 0 && (size_t)n < size; i++)
        n += snprintf(key + n, size - n, "%s%d", i ? "," : "", wd[i]);
    if (n > 0 && (size_t)n < size)
        n += snprintf(key + n, size - n, "|y");
    for (int i = 0; i < s->nd && n > 0 && (size_t)n < size; i++)
        n += snprintf(key + n, size - n, "%s%d", i ? "," : "", yd[i]);
    for (int i = 0; i < s->nd - 2 && n > 0 && (size_t)n < size; i++)
        n += snprintf(key + n, size - n, "|p%d,s%d,d%d", pad[i], str[i], dil[i]);
}

static size_t tensor_desc_bytes(cudnnTensorDescriptor_t d)
{
    size_t b = 0;
    if (cudnnGetTensorSizeInBytes(d, &b) != CUDNN_STATUS_SUCCESS)
        return 0;
    return b;
}

/* Workspace bytes of the chosen algorithm; CUDNN status on failure. */
static cudnnStatus_t algo_workspace(const cuda_call *call, const conv_state *s, int algo, size_t *bytes)
{
    if (!s->g.transposed)
        return cudnnGetConvolutionForwardWorkspaceSize(call->cudnn, s->x_desc, s->w_desc, s->conv_desc, s->y_desc,
                                                       (cudnnConvolutionFwdAlgo_t)algo, bytes);
    return cudnnGetConvolutionBackwardDataWorkspaceSize(call->cudnn, s->w_desc, s->x_desc, s->conv_desc, s->y_desc,
                                                        (cudnnConvolutionBwdDataAlgo_t)algo, bytes);
}

/* Heuristic choice; *found = 0 when nothing usable was returned. */
static fg_status *choose_heuristic(const cuda_call *call, conv_state *s, int *found, size_t *max_memory)
{
    int returned = 0;
    *found = 0;
    *max_memory = 0;
    if (!s->g.transposed) {
        cudnnConvolutionFwdAlgoPerf_t perf[CONV_MAX_ALGOS];
        DNN_TRY(call,
                cudnnGetConvolutionForwardAlgorithm_v7(call->cudnn, s->x_desc, s->w_desc, s->conv_desc, s->y_desc,
                                                       CONV_MAX_ALGOS, &returned, perf),
                "algorithm heuristics");
        for (int i = 0; i < returned; i++) {
            if (perf[i].status != CUDNN_STATUS_SUCCESS || !math_allowed(call, s, perf[i].mathType))
                continue;
            if (perf[i].memory > *max_memory)
                *max_memory = perf[i].memory;
            if (!*found) {
                s->algo = (int)perf[i].algo;
                FG_TRY(apply_math(call, s, perf[i].mathType));
                *found = 1;
            }
        }
    } else {
        cudnnConvolutionBwdDataAlgoPerf_t perf[CONV_MAX_ALGOS];
        DNN_TRY(call,
                cudnnGetConvolutionBackwardDataAlgorithm_v7(call->cudnn, s->w_desc, s->x_desc, s->conv_desc,
                                                            s->y_desc, CONV_MAX_ALGOS, &returned, perf),
                "algorithm heuristics");
        for (int i = 0; i < returned; i++) {
            if (perf[i].status != CUDNN_STATUS_SUCCESS || !math_allowed(call, s, perf[i].mathType))
                continue;
            if (perf[i].memory > *max_memory)
                *max_memory = perf[i].memory;
            if (!*found) {
                s->algo = (int)perf[i].algo;
                FG_TRY(apply_math(call, s, perf[i].mathType));
                *found = 1;
            }
        }
    }
    return NULL;
}

/* Exhaustive (timed) choice on temporary device buffers. *found = 0 when
 * the search could not run (memory) or returned nothing usable. */
static fg_status *choose_exhaustive(const cuda_call *call, conv_state *s, size_t ws_hint, int *found)
{
    *found = 0;
    size_t x_bytes = tensor_desc_bytes(s->x_desc), y_bytes = tensor_desc_bytes(s->y_desc);
    void *x = NULL, *y = NULL, *ws = NULL;
    size_t ws_bytes = ws_hint < workspace_cap() ? ws_hint : workspace_cap();
    if (cudaMalloc(&x, x_bytes ? x_bytes : 256) != cudaSuccess || cudaMalloc(&y, y_bytes ? y_bytes : 256) != cudaSuccess) {
        cudaGetLastError(); /* clear the allocation error: the heuristic choice stands */
        cudaFree(x);
        return NULL;
    }
    while (ws_bytes && cudaMalloc(&ws, ws_bytes) != cudaSuccess) {
        cudaGetLastError();
        ws = NULL;
        ws_bytes /= 2;
    }
    /* deterministic, finite contents: the timings must not depend on denormals or NaNs */
    cudaMemsetAsync(x, 0, x_bytes, call->stream);
    const void *w = s->w_dev ? s->w_dev : call->op.in[1].data;
    int returned = 0;
    cudnnStatus_t st;
    if (!s->g.transposed) {
        cudnnConvolutionFwdAlgoPerf_t perf[CONV_MAX_ALGOS];
        st = cudnnFindConvolutionForwardAlgorithmEx(call->cudnn, s->x_desc, x, s->w_desc, w, s->conv_desc, s->y_desc,
                                                    y, CONV_MAX_ALGOS, &returned, perf, ws, ws_bytes);
        for (int i = 0; st == CUDNN_STATUS_SUCCESS && i < returned; i++) {
            if (perf[i].status != CUDNN_STATUS_SUCCESS || !math_allowed(call, s, perf[i].mathType) ||
                perf[i].memory > ws_bytes)
                continue;
            s->algo = (int)perf[i].algo;
            fg_status *err = apply_math(call, s, perf[i].mathType);
            if (err) {
                fg_status_free(err);
                break;
            }
            *found = 1;
            break;
        }
    } else {
        cudnnConvolutionBwdDataAlgoPerf_t perf[CONV_MAX_ALGOS];
        st = cudnnFindConvolutionBackwardDataAlgorithmEx(call->cudnn, s->w_desc, w, s->x_desc, x, s->conv_desc,
                                                         s->y_desc, y, CONV_MAX_ALGOS, &returned, perf, ws, ws_bytes);
        for (int i = 0; st == CUDNN_STATUS_SUCCESS && i < returned; i++) {
            if (perf[i].status != CUDNN_STATUS_SUCCESS || !math_allowed(call, s, perf[i].mathType) ||
                perf[i].memory > ws_bytes)
                continue;
            s->algo = (int)perf[i].algo;
            fg_status *err = apply_math(call, s, perf[i].mathType);
            if (err) {
                fg_status_free(err);
                break;
            }
            *found = 1;
            break;
        }
    }
    cudaStreamSynchronize(call->stream);
    cudaFree(x);
    cudaFree(y);
    cudaFree(ws);
    cudaGetLastError();
    return NULL;
}

static fg_status *choose_algorithm(const cuda_call *call, conv_state *s)
{
    int mode = search_mode();
    /* float16 needs TENSOR_OP_MATH for tensor cores; float32 gets them (TF32) under DEFAULT_MATH */
    cudnnMathType_t base_math =
        s->half ? CUDNN_TENSOR_OP_MATH : (call->allow_tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH);
    DNN_TRY(call, cudnnSetConvolutionMathType(s->conv_desc, base_math), "math type");
    size_t bytes = 0;
    if (mode == SEARCH_DEFAULT) {
        s->algo = s->g.transposed ? (int)CUDNN_CONVOLUTION_BWD_DATA_ALGO_1
                                  : (int)CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
        if (algo_workspace(call, s, s->algo, &bytes) == CUDNN_STATUS_SUCCESS) {
            s->ws_bytes = bytes;
            return NULL;
        }
        mode = SEARCH_HEURISTIC;
    }
    char key[CONV_ALGO_KEY_MAX + 1];
    int cached = 0;
    if (mode == SEARCH_EXHAUSTIVE) {
        make_cache_key(call, s, key, sizeof key);
        int algo, math;
        if (conv_algo_cache_lookup(key, &algo, &math) && math_allowed(call, s, (cudnnMathType_t)math)) {
            s->algo = algo;
            FG_TRY(apply_math(call, s, (cudnnMathType_t)math));
            if (algo_workspace(call, s, s->algo, &bytes) == CUDNN_STATUS_SUCCESS) {
                s->ws_bytes = bytes;
                return NULL;
            }
            DNN_TRY(call, cudnnSetConvolutionMathType(s->conv_desc, base_math), "math type");
        }
    }
    int found = 0;
    size_t max_memory = 0;
    FG_TRY(choose_heuristic(call, s, &found, &max_memory));
    if (mode == SEARCH_EXHAUSTIVE) {
        int heuristic_algo = s->algo;
        cudnnMathType_t heuristic_math = CUDNN_DEFAULT_MATH;
        cudnnGetConvolutionMathType(s->conv_desc, &heuristic_math);
        DNN_TRY(call, cudnnSetConvolutionMathType(s->conv_desc, base_math), "math type");
        int exhaustive_found = 0;
        FG_TRY(choose_exhaustive(call, s, max_memory, &exhaustive_found));
        if (exhaustive_found) {
            cudnnMathType_t m = CUDNN_DEFAULT_MATH;
            cudnnGetConvolutionMathType(s->conv_desc, &m);
            if (algo_workspace(call, s, s->algo, &bytes) == CUDNN_STATUS_SUCCESS) {
                conv_algo_cache_store(key, s->algo, (int)m);
                cached = 1;
            }
        }
        if (!cached && found) {
            s->algo = heuristic_algo;
            FG_TRY(apply_math(call, s, heuristic_math));
        }
        found = found || cached;
    }
    if (!found)
        return op_error(&call->op, FG_ERR_UNSUPPORTED, "cuDNN has no algorithm for this %s",
                        s->g.transposed ? "transposed convolution" : "convolution");
    DNN_TRY(call, algo_workspace(call, s, s->algo, &bytes), "workspace size");
    s->ws_bytes = bytes;
    return NULL;
}

/* Depthwise 2-D (or 1-D) convolution the direct kernel handles. */
static int is_depthwise(const conv_geom *g)
{
    return !g->transposed && g->nsp <= 2 && g->group > 1 && g->group == g->c_in && g->group == g->c_out;
}

static fg_status *prepare_depthwise(cuda_call *call, conv_state *s)
{
    const conv_geom *g = &s->g;
    int64_t in[2], out[2], k[2], st[2], dl[2], pl[2];
    widen(g->in_sp, g->nsp, 2, 1, in);
    widen(g->out_sp, g->nsp, 2, 1, out);
    widen(g->kernel, g->nsp, 2, 1, k);
    widen(g->stride, g->nsp, 2, 1, st);
    widen(g->dilation, g->nsp, 2, 1, dl);
    widen(g->pad_l, g->nsp, 2, 0, pl);
    if (dw_plan_init(&s->dw, g->batch, g->c_out, in, out, k, st, dl, pl) != 0)
        return op_error(&call->op, FG_ERR_UNSUPPORTED, "depthwise convolution too large (%lld outputs)",
                        (long long)(g->batch * g->c_out * out[0] * out[1]));
    /* FACEGRAPH_CUDA_DEPTHWISE=generic: the one-thread-per-output kernel everywhere */
    const char *e = getenv("FACEGRAPH_CUDA_DEPTHWISE");
    if (e && strcmp(e, "generic") == 0)
        dw_plan_force(&s->dw, DW_GENERIC, 0);
    s->path = CONV_PATH_DEPTHWISE;
    call->op.scratch_bytes = 0;
    return NULL;
}

static fg_status *conv_prepare_common(cuda_call *call, int transposed)
{
    conv_state *s = (conv_state *)cu_state_alloc(sizeof *s);
    if (!s)
        return op_error(&call->op, FG_ERR_OUT_OF_MEMORY, "out of memory for convolution state");
    call->op.state = s;
    call->op.scratch_bytes = 0;
    s->wino_fused = -1;
    FG_TRY(conv_geometry(&call->op, transposed, &s->g));
    for (int i = 0; i < call->op.n_in && i < 3; i++)
        if (op_has_input(&call->op, i) && call->op.in[i].dtype != FG_FLOAT32)
            return op_error(&call->op, FG_ERR_UNSUPPORTED,
                            "input %d has dtype %s; the CUDA convolution supports float32 only", i,
                            fg_dtype_name(call->op.in[i].dtype));
    const conv_geom *g = &s->g;
    s->has_bias = op_has_input(&call->op, 2);
    s->has_residual = call->op.n_in > 3 && op_has_input(&call->op, 3);
    if (s->has_residual && (transposed || call->op.in[3].dtype != FG_FLOAT32 ||
                            fg_tensor_numel(&call->op.in[3]) != fg_tensor_numel(&call->op.out[0])))
        return op_error(&call->op, FG_ERR_INTERNAL, "the fused residual does not match the convolution's output");
    s->act = call->op.act;
    s->fp16_allowed = call->allow_fp16;
    if (fg_tensor_numel(&call->op.out[0]) == 0) {
        s->empty = 1;
        return NULL;
    }
    if (is_depthwise(g) && depthwise_direct_enabled() && !s->has_residual)
        return prepare_depthwise(call, s);

    int cnt = g->nsp <= 2 ? 2 : 3;
    s->nd = cnt + 2;
    int64_t in[3], out[3], k[3], st[3], dl[3], pl[3], pr[3];
    widen(g->in_sp, g->nsp, cnt, 1, in);
    widen(g->out_sp, g->nsp, cnt, 1, out);
    widen(g->kernel, g->nsp, cnt, 1, k);
    widen(g->stride, g->nsp, cnt, 1, st);
    widen(g->dilation, g->nsp, cnt, 1, dl);
    widen(g->pad_l, g->nsp, cnt, 0, pl);
    widen(g->pad_r, g->nsp, cnt, 0, pr);

    int pad[3], strides[3], dils[3];
    int x_dims[5], y_dims[5], w_dims[5];
    x_dims[0] = y_dims[0] = (int)g->batch;
    if (!fits_int(g->batch) || !fits_int(g->c_in) || !fits_int(g->c_out))
        return op_error(&call->op, FG_ERR_UNSUPPORTED, "dimensions too large for cuDNN");
    for (int i = 0; i < cnt; i++) {
        strides[i] = (int)st[i];
        dils[i] = (int)dl[i];
        w_dims[2 + i] = (int)k[i];
        if (!fits_int(in[i]) || !fits_int(out[i]) || !fits_int(k[i]) || st[i] > INT_MAX || dl[i] > INT_MAX)
            return op_error(&call->op, FG_ERR_UNSUPPORTED, "dimensions too large for cuDNN");
    }
    size_t buf_bytes = 0;
    if (!transposed) {
        /* forward: X [N, C_in, in], W [C_out, C_in/g, k], Y [N, C_out, out] */
        x_dims[1] = (int)g->c_in;
        y_dims[1] = (int)g->c_out;
        w_dims[0] = (int)g->c_out;
        w_dims[1] = (int)(g->c_in / g->group);
        int64_t padded[3], lo[3];
        for (int i = 0; i < cnt; i++) {
            if (pl[i] < 0 || pr[i] < 0)
                return op_error(&call->op, FG_ERR_UNSUPPORTED, "negative pads are not supported");
            int64_t p = pl[i] < pr[i] ? pl[i] : pr[i];
            pad[i] = (int)p;
            lo[i] = pl[i] - p;
            padded[i] = in[i] + (pl[i] - p) + (pr[i] - p);
            if (pl[i] != pr[i])
                s->pad_input = 1;
            if (!fits_int(padded[i]))
                return op_error(&call->op, FG_ERR_UNSUPPORTED, "dimensions too large for cuDNN");
            x_dims[2 + i] = (int)(s->pad_input ? padded[i] : in[i]);
            y_dims[2 + i] = (int)out[i];
        }
        if (s->pad_input) {
            for (int i = 0; i < cnt; i++)
                x_dims[2 + i] = (int)padded[i];
            s->pad_in = to_sp3(in, cnt, 1);
            s->pad_out = to_sp3(padded, cnt, 1);
            s->pad_lo = to_sp3(lo, cnt, 0);
            int64_t total = g->batch * g->c_in * padded[0] * padded[1] * (cnt == 3 ? padded[2] : 1);
            if (total > CU_INDEX_LIMIT)
                return op_error(&call->op, FG_ERR_UNSUPPORTED, "padded input too large (%lld elements)",
                                (long long)total);
            s->pad_total = (uint32_t)total;
            buf_bytes = (size_t)total * sizeof(float);
        }
    } else {
        /* ConvTranspose as the data gradient of the forward convolution
         * dX -> dY with dY = our input X [N, C_in, in], W [C_in, C_out/g, k],
         * dX = our output (or the full result) [N, C_out, ...] */
        x_dims[1] = (int)g->c_in;
        y_dims[1] = (int)g->c_out;
        w_dims[0] = (int)g->c_in;
        w_dims[1] = (int)(g->c_out / g->group);
        int direct = 1;
        for (int i = 0; i < cnt; i++)
            if (pl[i] < 0 || pl[i] > INT_MAX || pr[i] > pl[i] || pl[i] - pr[i] >= st[i])
                direct = 0;
        int64_t full[3], off[3];
        for (int i = 0; i < cnt; i++) {
            x_dims[2 + i] = (int)in[i];
            full[i] = st[i] * (in[i] - 1) + dl[i] * (k[i] - 1) + 1;
            off[i] = pl[i];
            if (!fits_int(full[i]) || pl[i] > INT_MAX || pl[i] < INT_MIN)
                return op_error(&call->op, FG_ERR_UNSUPPORTED, "dimensions too large for cuDNN");
            pad[i] = direct ? (int)pl[i] : 0;
            y_dims[2 + i] = (int)(direct ? out[i] : full[i]);
        }
        if (!direct) {
            s->crop = 1;
            s->full_sp = to_sp3(full, cnt, 1);
            s->crop_out = to_sp3(out, cnt, 1);
            s->crop_off = to_sp3(off, cnt, 0);
            int64_t total = g->batch * g->c_out * full[0] * full[1] * (cnt == 3 ? full[2] : 1);
            if (total > CU_INDEX_LIMIT)
                return op_error(&call->op, FG_ERR_UNSUPPORTED, "transposed convolution too large (%lld elements)",
                                (long long)total);
            buf_bytes = (size_t)total * sizeof(float);
        }
    }
    if (fg_tensor_numel(&call->op.out[0]) > CU_INDEX_LIMIT)
        return op_error(&call->op, FG_ERR_UNSUPPORTED, "output too large (%lld elements)",
                        (long long)fg_tensor_numel(&call->op.out[0]));

    DNN_TRY(call, cudnnSetStream(call->cudnn, call->stream), "stream");
    DNN_TRY(call, cudnnCreateTensorDescriptor(&s->x_desc), "tensor descriptor");
    DNN_TRY(call, cudnnCreateTensorDescriptor(&s->y_desc), "tensor descriptor");
    DNN_TRY(call, cudnnCreateFilterDescriptor(&s->w_desc), "filter descriptor");
    DNN_TRY(call, cudnnCreateConvolutionDescriptor(&s->conv_desc), "convolution descriptor");
    FG_TRY(set_tensor_desc(call, s->x_desc, s->nd, x_dims));
    FG_TRY(set_tensor_desc(call, s->y_desc, s->nd, y_dims));
    DNN_TRY(call, cudnnSetFilterNdDescriptor(s->w_desc, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, s->nd, w_dims),
            "filter descriptor");
    DNN_TRY(call,
            cudnnSetConvolutionNdDescriptor(s->conv_desc, cnt, pad, strides, dils, CUDNN_CROSS_CORRELATION,
                                            CUDNN_DATA_FLOAT),
            "convolution descriptor");
    DNN_TRY(call, cudnnSetConvolutionGroupCount(s->conv_desc, (int)g->group), "group count");

    /* the forward convolution must map the descriptors onto each other */
    int check[5];
    const int *expect = transposed ? x_dims : y_dims;
    DNN_TRY(call,
            cudnnGetConvolutionNdForwardOutputDim(s->conv_desc, transposed ? s->y_desc : s->x_desc, s->w_desc, s->nd,
                                                  check),
            "output dimensions");
    for (int i = 0; i < s->nd; i++)
        if (check[i] != expect[i])
            return op_error(&call->op, FG_ERR_INTERNAL,
                            "cuDNN computes output dimension %d = %d where ONNX gives %d", i, check[i], expect[i]);

    FG_TRY(choose_algorithm(call, s));

    int need_post = s->has_bias || s->has_residual || s->act.kind != OP_ACT_NONE;
    if (!transposed && s->has_bias &&
        (s->act.kind == OP_ACT_RELU ||
         (s->act.kind == OP_ACT_NONE && s->algo == (int)CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM))) {
        int bias_dims[5] = {1, (int)g->c_out, 1, 1, 1};
        DNN_TRY(call, cudnnCreateTensorDescriptor(&s->bias_desc), "tensor descriptor");
        FG_TRY(set_tensor_desc(call, s->bias_desc, s->nd, bias_dims));
        DNN_TRY(call, cudnnCreateActivationDescriptor(&s->act_desc), "activation descriptor");
        DNN_TRY(call,
                cudnnSetActivationDescriptor(s->act_desc,
                                             s->act.kind == OP_ACT_RELU ? CUDNN_ACTIVATION_RELU
                                                                        : CUDNN_ACTIVATION_IDENTITY,
                                             CUDNN_NOT_PROPAGATE_NAN, 0.0),
                "activation descriptor");
        s->fused = 1;
        need_post = 0;
    }
    s->post = need_post;
    s->buf_off = align_up(s->ws_bytes);
    call->op.scratch_bytes = s->buf_off + align_up(buf_bytes);
    return NULL;
}

/* ------------------------------------------------------------ run */

static fg_status *launch_bias_act(cuda_call *call, const conv_state *s, float *y, const float *residual)
{
    const fg_tensor *out = &call->op.out[0];
    int64_t total = fg_tensor_numel(out);
    int64_t plane = total / (s->g.batch * s->g.c_out);
    const float *bias = s->has_bias ? (const float *)call->op.in[2].data : NULL;
    if (plane % 4 == 0 && ((uintptr_t)y & 15) == 0 && ((uintptr_t)residual & 15) == 0) {
        uint32_t total4 = (uint32_t)(total / 4);
        cu_launch(conv_bias_act_vec4_kernel, cu_blocks(total4), CU_THREADS, 0, call->stream,
            (float4 *)y, bias, (const float4 *)residual, (uint32_t)s->g.c_out, (uint32_t)(plane / 4), total4, s->act);
    } else {
        cu_launch(conv_bias_act_kernel, cu_blocks(total), CU_THREADS, 0, call->stream,
            y, bias, residual, (uint32_t)s->g.c_out, (uint32_t)plane, (uint32_t)total, s->act);
    }
    CU_CHECK_LAUNCH(call, "convolution bias and activation");
    return NULL;
}

static int is_not_supported(cudnnStatus_t st)
{
    return st >= CUDNN_STATUS_NOT_SUPPORTED && st < CUDNN_STATUS_NOT_SUPPORTED + 1000;
}

/* The cuDNN path of a forward convolution: [pad] + convolution [+ bias/activation]. */
static fg_status *cudnn_forward(cuda_call *call, conv_state *s, const float *x, const float *w, const float *bias,
                                const float *residual, float *y, char *scratch)
{
    void *ws = s->ws_bytes ? scratch : NULL;
    DNN_TRY(call, cudnnSetStream(call->cudnn, call->stream), "stream");
    if (s->pad_input) {
        float *padded = (float *)(scratch + s->buf_off);
        cu_launch(conv_pad_kernel, cu_blocks(s->pad_total), CU_THREADS, 0, call->stream, x, padded, s->pad_in, s->pad_out,
                                                                                   s->pad_lo, s->pad_total);
        CU_CHECK_LAUNCH(call, "convolution input padding");
        x = padded;
    }
    const float one = 1.0f, zero = 0.0f;
    if (s->fused) {
        /* y = act(conv + alpha2 * z + bias): z is the fused residual */
        cudnnStatus_t st = cudnnConvolutionBiasActivationForward(
            call->cudnn, &one, s->x_desc, x, s->w_desc, w, s->conv_desc, (cudnnConvolutionFwdAlgo_t)s->algo, ws,
            s->ws_bytes, residual ? &one : &zero, s->y_desc, residual ? (const void *)residual : (const void *)y,
            s->bias_desc, bias, s->act_desc, s->y_desc, y);
        if (st == CUDNN_STATUS_SUCCESS)
            return NULL;
        if (!is_not_supported(st))
            return cudnn_error(call, st, "fused convolution");
        /* not available for these parameters: convolution + bias/activation kernel from now on */
        s->fused = 0;
        s->post = 1;
    }
    DNN_TRY(call,
            cudnnConvolutionForward(call->cudnn, &one, s->x_desc, x, s->w_desc, w, s->conv_desc,
                                    (cudnnConvolutionFwdAlgo_t)s->algo, ws, s->ws_bytes, &zero, s->y_desc, y),
            "convolution");
    if (s->post)
        FG_TRY(launch_bias_act(call, s, y, residual));
    return NULL;
}

/* The Winograd path: input transform, one batched GEMM, output transform with bias/residual/activation; or the fused kernel. */
static fg_status *wino_forward(cuda_call *call, const conv_state *s, const float *x, const float *residual, float *y,
                               char *scratch)
{
    const float *bias = s->has_bias ? (const float *)call->op.in[2].data : NULL;
    if (s->wino_fused >= 0) {
        cudaError_t err = wf_launch(&s->wino, s->wino_fused, x, (const float *)s->wino_u, bias, residual, y, s->act,
                                    call->stream);
        return err == cudaSuccess ? NULL : cuda_error(call, err, "fused Winograd convolution");
    }
    void *v = scratch + s->wino_v_off;
    float *mm = (float *)(scratch + s->wino_m_off);
    cudaError_t err = wino_transform_input(&s->wino, s->wino_half, x, v, call->stream);
    if (err != cudaSuccess)
        return cuda_error(call, err, "Winograd input transform");
    FG_TRY(cuda_blas_setup(call, scratch));
    cublasStatus_t st = wino_products(call->cublas, &s->wino, s->wino_half, s->wino_u, v, mm);
    if (st != CUBLAS_STATUS_SUCCESS)
        return cublas_error(call, st, "Winograd products");
    err = wino_transform_output(&s->wino, mm, bias, residual, y, s->act, call->stream);
    if (err != cudaSuccess)
        return cuda_error(call, err, "Winograd output transform");
    return NULL;
}

static fg_status *conv_run(cuda_call *call)
{
    conv_state *s = (conv_state *)call->op.state;
    if (!s)
        return op_error(&call->op, FG_ERR_INTERNAL, "convolution was not prepared");
    if (s->empty)
        return NULL;
    const float *x = (const float *)call->op.in[0].data;
    const float *w = (const float *)call->op.in[1].data;
    const float *bias = s->has_bias ? (const float *)call->op.in[2].data : NULL;
    float *y = (float *)call->op.out[0].data;
    const float *residual = s->has_residual ? (const float *)call->op.in[3].data : NULL;
    if (s->path == CONV_PATH_DEPTHWISE) {
        cudaError_t err = dw_launch(&s->dw, x, w, bias, y, s->act, call->stream);
        if (err != cudaSuccess)
            return cuda_error(call, err, "depthwise convolution");
        return NULL;
    }
    if (s->path == CONV_PATH_DIRECT) {
        cd_params cd = s->cd;
        cd.residual = residual;
        cudaError_t err = cd_launch(s->direct_kind, x, s->cd_weights, y, &cd, s->act, call->stream);
        if (err != cudaSuccess)
            return cuda_error(call, err, "direct convolution");
        return NULL;
    }
    if (s->path == CONV_PATH_HALF)
        return half_forward(call, s, x, residual, y, (char *)call->scratch);
    if (s->path == CONV_PATH_WINOGRAD)
        return wino_forward(call, s, x, residual, y, (char *)call->scratch);
    return cudnn_forward(call, s, x, w, bias, residual, y, (char *)call->scratch);
}

/* ------------------------------------------------------------ direct kernels: choice */

/* FACEGRAPH_CUDA_CONV: auto (default: time the direct kernels and Winograd
 * against cuDNN, cached) | cudnn (never the direct kernels) | direct (the
 * fastest direct kernel, cuDNN not considered, nothing cached) | <n> (direct
 * kernel n of enum cd_kind where it applies, for testing) | winograd2 |
 * winograd4 (Winograd F(2x2 or 4x4, 3x3) wherever it applies, for testing) |
 * winograd-fused (the fused kernel, 16 output channels a block) |
 * tensorcore (the last CD_TC_* variant in enum order that applies, for testing). */
enum { DIRECT_AUTO = 0, DIRECT_OFF = -1, DIRECT_ONLY = -2, DIRECT_TENSOR_CORE = -3 };

static int direct_mode(void)
{
    const char *e = getenv("FACEGRAPH_CUDA_CONV");
    if (!e || !e[0] || strcmp(e, "auto") == 0)
        return DIRECT_AUTO;
    if (strcmp(e, "cudnn") == 0)
        return DIRECT_OFF;
    if (strcmp(e, "direct") == 0)
        return DIRECT_ONLY;
    if (strcmp(e, "winograd2") == 0)
        return CONV_KIND_WINO2;
    if (strcmp(e, "winograd4") == 0)
        return CONV_KIND_WINO4;
    if (strcmp(e, "winograd-fused") == 0)
        return CONV_KIND_WF + WF_F2_K16;
    if (strcmp(e, "tensorcore") == 0)
        return DIRECT_TENSOR_CORE;
    char *end;
    long n = strtol(e, &end, 10);
    if (*end == 0 && n > CD_CUDNN && n < CD_COUNT)
        return (int)n;
    return DIRECT_AUTO;
}

/* ------------------------------------------------------------ Winograd: choice */

static int wino_tile(int kind)
{
    if (kind >= CONV_KIND_WF && kind < CONV_KIND_END)
        return wf_tile(kind - CONV_KIND_WF);
    return kind == CONV_KIND_WINO2 || kind == CONV_KIND_WINO2_F16 ? 2 : kind == CONV_KIND_WINO4 ? 4 : 0;
}

/* Winograd applies to 3x3 stride-1 undilated convolutions (prepare_direct
 * checked 2-D, group 1, constant weights); its float16 form where float16
 * is allowed. Unless forced, only from 32 channels in and out (the fused
 * kernel: 8): below that the transforms cost more than the GEMM saves. */
static int wino_eligible(const conv_state *s, int kind, int forced)
{
    const cd_params *p = &s->cd;
    wino_params wp;
    if (!wino_tile(kind) || p->k_h != 3 || p->k_w != 3 || p->s_h != 1 || p->s_w != 1 || p->d_h != 1 || p->d_w != 1)
        return 0;
    if (kind == CONV_KIND_WINO2_F16 && !s->fp16_allowed)
        return 0;
    int least = kind >= CONV_KIND_WF ? 8 : 32;
    if (!forced && (p->c_in < least || p->c_out < least))
        return 0;
    return wino_params_init(&wp, wino_tile(kind), p->batch, p->c_in, p->c_out, p->in_h, p->in_w, p->out_h, p->out_w,
                            p->p_h, p->p_w) == 0;
}

/* Tuning candidate `kind` (enum cd_kind without CD_CUDNN, a CONV_KIND_WINO* form or CONV_KIND_WF + v) applies. */
static int candidate_eligible(const conv_state *s, int kind, int forced)
{
    if (cd_is_tensor_core(kind) && !tensor_core_conv_enabled())
        return 0;
    if (kind > CD_CUDNN && kind < CD_COUNT)
        return cd_eligible(&s->cd, kind);
    return wino_eligible(s, kind, forced);
}

/* s->wino for candidate `kind`, with the scratch layout [cuBLAS workspace | V | M] (fused: no scratch);
 * 0 and *scratch_bytes, or -1. */
static int wino_layout(conv_state *s, int kind, size_t *scratch_bytes)
{
    const cd_params *p = &s->cd;
    *scratch_bytes = 0;
    if (wino_params_init(&s->wino, wino_tile(kind), p->batch, p->c_in, p->c_out, p->in_h, p->in_w, p->out_h,
                         p->out_w, p->p_h, p->p_w) != 0)
        return -1;
    s->wino_half = kind == CONV_KIND_WINO2_F16;
    s->wino_fused = kind >= CONV_KIND_WF ? kind - CONV_KIND_WF : -1;
    if (s->wino_fused >= 0)
        return 0;
    size_t element = s->wino_half ? sizeof(__half) : sizeof(float);
    s->wino_v_off = align_up(CUDA_BLAS_WORKSPACE);
    s->wino_m_off = s->wino_v_off + align_up(element * wino_input_floats(&s->wino));
    *scratch_bytes = s->wino_m_off + align_up(sizeof(float) * wino_product_floats(&s->wino));
    return 0;
}

/* s->wino and s->wino_u (the weights transformed on the device) for candidate `kind`; 0, or -1 when that failed. */
static int wino_prepare(cuda_call *call, conv_state *s, int kind)
{
    if (s->wino_u)
        cudaFree(s->wino_u);
    s->wino_u = NULL;
    size_t scratch_bytes;
    if (wino_layout(s, kind, &scratch_bytes) != 0)
        return -1;
    size_t element = s->wino_half ? sizeof(__half) : sizeof(float);
    size_t floats = s->wino_fused >= 0 ? wf_weight_floats(&s->wino, s->wino_fused) : wino_weight_floats(&s->wino);
    const float *w = (const float *)call->op.in[1].data;
    if (cudaMalloc(&s->wino_u, element * floats) == cudaSuccess &&
        (s->wino_fused >= 0 ? wf_transform_weights(&s->wino, s->wino_fused, w, (float *)s->wino_u, call->stream)
                            : wino_transform_weights(&s->wino, s->wino_half, w, s->wino_u, call->stream)) ==
            cudaSuccess &&
        cudaStreamSynchronize(call->stream) == cudaSuccess)
        return 0;
    cudaGetLastError();
    cudaFree(s->wino_u);
    s->wino_u = NULL;
    return -1;
}

/* Launches of each timed sample (captured into one graph when possible). */
#define TUNE_LAUNCHES 8
#define TUNE_SAMPLES 3

/* Temporary buffers for timing and checking the candidates of one
 * convolution (tune_direct, choose_half): a fixed pseudo-random input, the
 * output, scratch, a constant residual when the convolution has one, two
 * events, and host room for a reference output and a candidate's output. */
typedef struct tune_buffers {
    const float *x;
    const float *residual; /* 0.0115f everywhere, when the convolution has a fused residual */
    float *y;
    char *scratch;
    cudaEvent_t start, stop;
    size_t ny;             /* output elements */
    float *ref, *host_y;   /* host, ny floats each */
} tune_buffers;

static void tune_buffers_free(cuda_call *call, tune_buffers *b)
{
    cudaStreamSynchronize(call->stream);
    if (b->start)
        cudaEventDestroy(b->start);
    if (b->stop)
        cudaEventDestroy(b->stop);
    cudaFree((void *)b->x);
    cudaFree(b->y);
    cudaFree(b->scratch);
    cudaFree((void *)b->residual);
    free(b->ref);
    free(b->host_y);
    memset(b, 0, sizeof *b);
    cudaGetLastError();
}

/* 0, or -1 (with everything freed) when something could not be allocated. */
static int tune_buffers_alloc(cuda_call *call, const conv_state *s, size_t scratch_bytes, tune_buffers *b)
{
    size_t nx = (size_t)fg_tensor_numel(&call->op.in[0]), ny = (size_t)fg_tensor_numel(&call->op.out[0]);
    size_t x_bytes = sizeof(float) * nx, y_bytes = sizeof(float) * ny;
    void *x = NULL, *y = NULL, *scratch = NULL, *residual = NULL;
    memset(b, 0, sizeof *b);
    b->ny = ny;
    float *host_x = (float *)malloc(x_bytes + 4);
    b->ref = (float *)malloc(y_bytes + 4);
    b->host_y = (float *)malloc(y_bytes + 4);
    int ok = host_x && b->ref && b->host_y && cudaMalloc(&x, x_bytes + 4) == cudaSuccess &&
             cudaMalloc(&y, y_bytes + 4) == cudaSuccess &&
             (!scratch_bytes || cudaMalloc(&scratch, scratch_bytes) == cudaSuccess) &&
             (!s->has_residual || (cudaMalloc(&residual, y_bytes + 4) == cudaSuccess &&
                                   cudaMemset(residual, 0x3c, y_bytes) == cudaSuccess)) &&
             cudaEventCreate(&b->start) == cudaSuccess && cudaEventCreate(&b->stop) == cudaSuccess;
    b->x = (const float *)x;
    b->y = (float *)y;
    b->scratch = (char *)scratch;
    b->residual = (const float *)residual;
    if (ok) {
        /* deterministic, finite values in [-1, 1): the timings must not depend on denormals or NaNs */
        for (size_t i = 0; i < nx; i++)
            host_x[i] = (float)((uint32_t)(i * 2654435761u) >> 22) / 512.0f - 1.0f;
        ok = cudaMemcpy(x, host_x, x_bytes, cudaMemcpyHostToDevice) == cudaSuccess;
    }
    free(host_x);
    if (!ok)
        tune_buffers_free(call, b);
    return ok ? 0 : -1;
}

static fg_status *launch_candidate(cuda_call *call, conv_state *s, int kind, const tune_buffers *b)
{
    if (kind == CONV_KIND_HALF)
        return half_forward(call, s, b->x, b->residual, b->y, b->scratch);
    if (wino_tile(kind))
        return wino_forward(call, s, b->x, b->residual, b->y, b->scratch);
    if (kind == CD_CUDNN)
        return cudnn_forward(call, s, b->x, (const float *)call->op.in[1].data,
                             s->has_bias ? (const float *)call->op.in[2].data : NULL, b->residual, b->y, b->scratch);
    cd_params cd = s->cd;
    cd.residual = b->residual;
    cudaError_t err = cd_launch(kind, b->x, s->cd_weights, b->y, &cd, s->act, call->stream);
    return err == cudaSuccess ? NULL : cuda_error(call, err, "direct convolution");
}

/* Milliseconds per launch of candidate `kind` (best of TUNE_SAMPLES), or a negative value when it failed. */
static float time_candidate(cuda_call *call, conv_state *s, int kind, const tune_buffers *b)
{
    cudaStream_t stream = call->stream;
    cudaGraph_t graph = NULL;
    cudaGraphExec_t exec = NULL;
    float best = -1.0f;
    /* warm-up outside any capture (first-call costs, the fused cuDNN path's availability) */
    fg_status *err = launch_candidate(call, s, kind, b);
    if (err || cudaStreamSynchronize(stream) != cudaSuccess)
        goto done;
    if (cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess) {
        for (int r = 0; r < TUNE_LAUNCHES && !err; r++)
            err = launch_candidate(call, s, kind, b);
        cudaError_t end = cudaStreamEndCapture(stream, &graph);
        if (err || end != cudaSuccess || cudaGraphInstantiate(&exec, graph, 0) != cudaSuccess)
            goto done;
        if (cudaGraphLaunch(exec, stream) != cudaSuccess)
            goto done;
    }
    cudaGetLastError();
    for (int t = 0; t < TUNE_SAMPLES; t++) {
        if (cudaEventRecord(b->start, stream) != cudaSuccess)
            goto done;
        if (exec) {
            if (cudaGraphLaunch(exec, stream) != cudaSuccess)
                goto done;
        } else {
            for (int r = 0; r < TUNE_LAUNCHES && !err; r++)
                err = launch_candidate(call, s, kind, b);
            if (err)
                goto done;
        }
        float ms = 0.0f;
        if (cudaEventRecord(b->stop, stream) != cudaSuccess || cudaEventSynchronize(b->stop) != cudaSuccess ||
            cudaEventElapsedTime(&ms, b->start, b->stop) != cudaSuccess)
            goto done;
        ms /= TUNE_LAUNCHES;
        if (best < 0.0f || ms < best)
            best = ms;
    }
done:
    if (err) {
        fg_status_free(err);
        best = -1.0f;
    }
    if (exec)
        cudaGraphExecDestroy(exec);
    if (graph)
        cudaGraphDestroy(graph);
    cudaStreamSynchronize(stream);
    cudaGetLastError();
    return best;
}

/* Runs candidate `kind` once and keeps its output in b->ref; 0, or -1. */
static int tune_reference(cuda_call *call, conv_state *s, int kind, tune_buffers *b)
{
    fg_status *err = launch_candidate(call, s, kind, b);
    int ok = !err && cudaStreamSynchronize(call->stream) == cudaSuccess &&
             cudaMemcpy(b->ref, b->y, b->ny * sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess;
    fg_status_free(err);
    cudaGetLastError();
    return ok ? 0 : -1;
}

/* 1 when candidate `kind` runs and its output matches b->ref within
 * reordering error: max |out - ref| <= tol * max |ref| + 1e-5. */
static int matches_reference(cuda_call *call, conv_state *s, int kind, tune_buffers *b, float tol)
{
    cudaMemsetAsync(b->y, 0xff, b->ny * sizeof(float), call->stream); /* NaNs where a kernel writes nothing */
    fg_status *err = launch_candidate(call, s, kind, b);
    int ran = !err && cudaStreamSynchronize(call->stream) == cudaSuccess &&
              cudaMemcpy(b->host_y, b->y, b->ny * sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess;
    fg_status_free(err);
    cudaGetLastError();
    if (!ran)
        return 0;
    const float *ref = b->ref, *host = b->host_y;
    double max_ref = 0.0, max_err = 0.0;
    for (size_t i = 0; i < b->ny; i++) {
        double r = fabs((double)ref[i]), e = fabs((double)host[i] - (double)ref[i]);
        if (r > max_ref)
            max_ref = r;
        if (!(e <= max_err)) /* NaN counts as a mismatch */
            max_err = e == e ? e : INFINITY;
    }
    return max_err <= tol * max_ref + 1e-5;
}

/* The fastest candidate on temporary buffers, or -1 when none could be
 * timed. With cuDNN included, each direct kernel and Winograd tile must
 * first reproduce cuDNN's output on a fixed pseudo-random input, else it is
 * not taken. A Winograd choice leaves its s->wino and s->wino_u set. */
static int tune_direct(cuda_call *call, conv_state *s, int include_cudnn)
{
    size_t scratch_bytes = include_cudnn ? call->op.scratch_bytes : 0;
    for (int kind = CONV_KIND_WINO2; kind < CONV_KIND_END; kind++) {
        size_t wb = 0;
        if (wino_eligible(s, kind, 0) && wino_layout(s, kind, &wb) == 0)
            scratch_bytes = wb > scratch_bytes ? wb : scratch_bytes;
    }
    void *best_u = NULL; /* the transformed weights of the best Winograd candidate so far */
    tune_buffers b;
    int best = -1;
    float best_ms = 0.0f;
    /* TF32 cuDNN results are themselves ~1e-3 off */
    float tol = call->allow_tf32 ? 2e-2f : 1e-3f;
    if (tune_buffers_alloc(call, s, scratch_bytes, &b) != 0)
        return -1;
    int have_ref = include_cudnn && tune_reference(call, s, CD_CUDNN, &b) == 0;
    for (int kind = 0; kind < CONV_KIND_END; kind++) {
        if (kind == CD_CUDNN ? !include_cudnn : !candidate_eligible(s, kind, 0))
            continue;
        if (kind != CD_CUDNN && include_cudnn && !have_ref)
            continue;
        if (wino_tile(kind) && wino_prepare(call, s, kind) != 0)
            continue;
        int usable = 1;
        if (kind != CD_CUDNN && include_cudnn)
            usable = matches_reference(call, s, kind, &b, kind == CONV_KIND_WINO2_F16 ? HALF_TOLERANCE : tol);
        float ms = usable ? time_candidate(call, s, kind, &b) : -1.0f;
        if (ms >= 0.0f && (best < 0 || ms < best_ms)) {
            best = kind;
            best_ms = ms;
            cudaFree(best_u);
            best_u = s->wino_u; /* NULL unless Winograd */
            s->wino_u = NULL;
        }
        cudaFree(s->wino_u);
        s->wino_u = NULL;
    }
    if (wino_tile(best)) {
        size_t unused;
        s->wino_u = best_u;
        wino_layout(s, best, &unused);
    } else {
        cudaFree(best_u);
    }
    tune_buffers_free(call, &b);
    return best;
}

static void make_direct_key(const cuda_call *call, const conv_state *s, const int64_t *in, const int64_t *out,
                            const int64_t *k, const int64_t *st, const int64_t *dl, const int64_t *pl,
                            const int64_t *pr, char *key, size_t size)
{
    struct cudaDeviceProp prop;
    char name[256] = "gpu";
    if (cudaGetDeviceProperties(&prop, call->device) == cudaSuccess) {
        snprintf(name, sizeof name, "%s", prop.name);
        for (char *q = name; *q; q++)
            if (*q == '\t' || *q == '\n' || *q == '\r' || *q == '|')
                *q = ' ';
    }
    const conv_geom *g = &s->g;
    snprintf(key, size,
             "direct11|%s|cudnn%zu|tf32=%d|x%lld,%lld,%lld,%lld|w%lld,%lld,%lld|y%lld,%lld,%lld|s%lld,%lld|d%lld,%lld|"
             "p%lld,%lld,%lld,%lld|b%d|a%d|r%d|f16=%d",
             name, (size_t)cudnnGetVersion(), call->allow_tf32, (long long)g->batch, (long long)g->c_in,
             (long long)in[0], (long long)in[1], (long long)g->c_out, (long long)k[0], (long long)k[1],
             (long long)g->c_out, (long long)out[0], (long long)out[1], (long long)st[0], (long long)st[1],
             (long long)dl[0], (long long)dl[1], (long long)pl[0], (long long)pl[1], (long long)pr[0],
             (long long)pr[1], s->has_bias, (int)s->act.kind, s->has_residual, s->fp16_allowed);
}

/* After the cuDNN set-up of a forward convolution: switches to a direct
 * kernel where one applies and is faster (or is asked for). Any failure
 * here leaves the cuDNN path in place. */
static fg_status *prepare_direct(cuda_call *call, conv_state *s)
{
    const conv_geom *g = &s->g;
    int mode = direct_mode();
    if (mode == DIRECT_OFF || s->empty || s->path != CONV_PATH_CUDNN || g->transposed || g->group != 1 ||
        g->nsp > 2)
        return NULL;
    const float *w_host = (const float *)call->host_in[1].data;
    const float *b_host = s->has_bias ? (const float *)call->host_in[2].data : NULL;
    if (!w_host || (s->has_bias && !b_host))
        return NULL; /* weights computed at run time: cuDNN */
    int64_t in[2], out[2], k[2], st[2], dl[2], pl[2], pr[2];
    widen(g->in_sp, g->nsp, 2, 1, in);
    widen(g->out_sp, g->nsp, 2, 1, out);
    widen(g->kernel, g->nsp, 2, 1, k);
    widen(g->stride, g->nsp, 2, 1, st);
    widen(g->dilation, g->nsp, 2, 1, dl);
    widen(g->pad_l, g->nsp, 2, 0, pl);
    widen(g->pad_r, g->nsp, 2, 0, pr);
    if (cd_params_init(&s->cd, g->batch, g->c_in, g->c_out, in, out, k, st, dl, pl) != 0)
        return NULL;
    if (mode == DIRECT_TENSOR_CORE) {
        for (int kind = CD_COUNT - 1; kind > CD_CUDNN && mode == DIRECT_TENSOR_CORE; kind--)
            if (cd_is_tensor_core(kind) && candidate_eligible(s, kind, 1))
                mode = kind;
        if (mode == DIRECT_TENSOR_CORE)
            return NULL;
    }
    if (mode > 0 && !candidate_eligible(s, mode, 1))
        return NULL;

    char key[CONV_ALGO_KEY_MAX + 1];
    int choice = -1;
    if (mode == DIRECT_AUTO) {
        make_direct_key(call, s, in, out, k, st, dl, pl, pr, key, sizeof key);
        int algo, math;
        if (conv_algo_cache_lookup(key, &algo, &math) && (algo == CD_CUDNN || candidate_eligible(s, algo, 0)))
            choice = algo;
        if (choice == CD_CUDNN)
            return NULL;
    } else if (mode > 0) {
        choice = mode;
    }

    size_t bytes = sizeof(float) * (size_t)s->cd.total_floats;
    float *packed = (float *)malloc(bytes);
    if (!packed)
        return NULL;
    cd_pack_weights(&s->cd, w_host, b_host, packed);
    cudaError_t err = cudaMalloc((void **)&s->cd_weights, bytes);
    if (err == cudaSuccess)
        err = cudaMemcpy(s->cd_weights, packed, bytes, cudaMemcpyHostToDevice);
    free(packed);
    if (err != cudaSuccess) {
        cudaGetLastError();
        if (s->cd_weights)
            cudaFree(s->cd_weights);
        s->cd_weights = NULL;
        return NULL;
    }
    if (choice < 0) {
        choice = tune_direct(call, s, mode == DIRECT_AUTO);
        if (mode == DIRECT_AUTO && choice >= 0)
            conv_algo_cache_store(key, choice, 0);
    }
    if (wino_tile(choice) && !s->wino_u && wino_prepare(call, s, choice) != 0)
        choice = CD_CUDNN;
    if (choice <= CD_CUDNN || wino_tile(choice)) {
        cudaFree(s->cd_weights);
        s->cd_weights = NULL;
    }
    if (choice <= CD_CUDNN)
        return NULL;
    s->direct_kind = choice;
    if (wino_tile(choice)) {
        s->path = CONV_PATH_WINOGRAD;
        wino_layout(s, choice, &call->op.scratch_bytes);
        return NULL;
    }
    s->path = CONV_PATH_DIRECT;
    call->op.scratch_bytes = 0;
    return NULL;
}

/* ------------------------------------------------------------ float16 path
 * With --execution-precision fp16, and always for a float16 model
 * (call->allow_fp16), a forward convolution may run in float16 on tensor
 * cores with float32 accumulation: the input is converted to float16 in
 * scratch, cuDNN convolves in float16 (PSEUDO_HALF: float compute), and one
 * kernel converts the result back to float32 adding bias and activation.
 * prepare times it against the float32 choice and keeps the faster, provided
 * its output agrees with the float32 one (HALF_TOLERANCE of the largest
 * value). Every other op stays float32. */

#define HALF_WORKSPACE_CAP ((size_t)64 << 20) /* FFT algorithms can ask for hundreds of MiB */

typedef struct half_path {
    conv_state c;        /* cuDNN in float16: descriptors, algorithm, workspace */
    __half *w;           /* the weights in float16 (device) */
    size_t x_off, y_off; /* float16 input and output in scratch, after the workspace */
    uint32_t nx, ny;
    size_t scratch_bytes;
} half_path;

static void half_path_release(half_path *hp)
{
    if (!hp)
        return;
    conv_state *c = &hp->c;
    if (c->x_desc)
        cudnnDestroyTensorDescriptor(c->x_desc);
    if (c->y_desc)
        cudnnDestroyTensorDescriptor(c->y_desc);
    if (c->w_desc)
        cudnnDestroyFilterDescriptor(c->w_desc);
    if (c->conv_desc)
        cudnnDestroyConvolutionDescriptor(c->conv_desc);
    if (hp->w)
        cudaFree(hp->w);
    free(hp);
}

__global__ void conv_to_half_kernel(const float *__restrict__ x, __half *__restrict__ y, uint32_t n)
{
    CU_KERNEL_PROLOGUE();
    CU_LOOP(i, n)
    y[i] = __float2half_rn(x[i]);
}

__global__ void conv_to_half_vec4_kernel(const float4 *__restrict__ x, __half2 *__restrict__ y, uint32_t n4)
{
    CU_KERNEL_PROLOGUE();
    CU_LOOP(i, n4)
    {
        float4 v = x[i];
        y[2 * i] = __floats2half2_rn(v.x, v.y);
        y[2 * i + 1] = __floats2half2_rn(v.z, v.w);
    }
}

/* y[i] = act(float(y16[i]) + bias[channel of i] + residual[i]) */
__global__ void conv_from_half_bias_act_kernel(const __half *__restrict__ y16, float *__restrict__ y,
                                               const float *__restrict__ bias, const float *__restrict__ residual,
                                               uint32_t channels, uint32_t plane, uint32_t total, op_activation act)
{
    CU_KERNEL_PROLOGUE();
    CU_LOOP(i, total)
    {
        float v = __half2float(y16[i]);
        if (bias)
            v += __ldg(bias + (i / plane) % channels);
        if (residual)
            v += residual[i];
        y[i] = cu_act(act, v);
    }
}

static fg_status *half_forward(cuda_call *call, conv_state *s, const float *x, const float *residual, float *y,
                               char *scratch)
{
    half_path *hp = s->hp;
    __half *x16 = (__half *)(scratch + hp->x_off), *y16 = (__half *)(scratch + hp->y_off);
    if (hp->nx % 4 == 0 && ((uintptr_t)x & 15) == 0) {
        uint32_t n4 = hp->nx / 4;
        cu_launch(conv_to_half_vec4_kernel, cu_blocks(n4), CU_THREADS, 0, call->stream, (const float4 *)x, (__half2 *)x16,
                                                                                  n4);
    } else {
        cu_launch(conv_to_half_kernel, cu_blocks(hp->nx), CU_THREADS, 0, call->stream, x, x16, hp->nx);
    }
    CU_CHECK_LAUNCH(call, "float16 conversion of a convolution input");
    const float one = 1.0f, zero = 0.0f;
    DNN_TRY(call, cudnnSetStream(call->cudnn, call->stream), "stream");
    DNN_TRY(call,
            cudnnConvolutionForward(call->cudnn, &one, hp->c.x_desc, x16, hp->c.w_desc, hp->w, hp->c.conv_desc,
                                    (cudnnConvolutionFwdAlgo_t)hp->c.algo, hp->c.ws_bytes ? scratch : NULL,
                                    hp->c.ws_bytes, &zero, hp->c.y_desc, y16),
            "float16 convolution");
    uint32_t plane = (uint32_t)(hp->ny / (s->g.batch * s->g.c_out));
    const float *bias = s->has_bias ? (const float *)call->op.in[2].data : NULL;
    cu_launch(conv_from_half_bias_act_kernel, cu_blocks(hp->ny), CU_THREADS, 0, call->stream,
        y16, y, bias, residual, (uint32_t)s->g.c_out, plane ? plane : 1, hp->ny, s->act);
    CU_CHECK_LAUNCH(call, "convolution bias and activation");
    return NULL;
}

/* cuDNN set-up of the float16 path beside the float32 one (its descriptors
 * copied with HALF data); NULL with s->hp left NULL when it does not apply. */
static fg_status *prepare_half(cuda_call *call, conv_state *s)
{
    const conv_geom *g = &s->g;
    const float *w_host = (const float *)call->host_in[1].data;
    if (!call->allow_fp16 || s->empty || g->transposed || s->path == CONV_PATH_DEPTHWISE || s->pad_input ||
        !s->x_desc || !w_host)
        return NULL;
    half_path *hp = (half_path *)calloc(1, sizeof *hp);
    if (!hp)
        return op_error(&call->op, FG_ERR_OUT_OF_MEMORY, "out of host memory");
    s->hp = hp;
    conv_state *c = &hp->c;
    c->g = s->g;
    c->nd = s->nd;
    c->half = 1;
    int nd = 0, x_dims[5], y_dims[5], w_dims[5], strides[5], pad[3], str[3], dil[3], n_conv = 0;
    cudnnDataType_t dt;
    cudnnTensorFormat_t fmt;
    cudnnConvolutionMode_t mode;
    DNN_TRY(call, cudnnGetTensorNdDescriptor(s->x_desc, 5, &dt, &nd, x_dims, strides), "tensor descriptor");
    DNN_TRY(call, cudnnGetTensorNdDescriptor(s->y_desc, 5, &dt, &nd, y_dims, strides), "tensor descriptor");
    DNN_TRY(call, cudnnGetFilterNdDescriptor(s->w_desc, 5, &dt, &fmt, &nd, w_dims), "filter descriptor");
    DNN_TRY(call, cudnnGetConvolutionNdDescriptor(s->conv_desc, 3, &n_conv, pad, str, dil, &mode, &dt),
            "convolution descriptor");
    DNN_TRY(call, cudnnCreateTensorDescriptor(&c->x_desc), "tensor descriptor");
    DNN_TRY(call, cudnnCreateTensorDescriptor(&c->y_desc), "tensor descriptor");
    DNN_TRY(call, cudnnCreateFilterDescriptor(&c->w_desc), "filter descriptor");
    DNN_TRY(call, cudnnCreateConvolutionDescriptor(&c->conv_desc), "convolution descriptor");
    FG_TRY(set_tensor_desc_typed(call, c->x_desc, nd, x_dims, CUDNN_DATA_HALF));
    FG_TRY(set_tensor_desc_typed(call, c->y_desc, nd, y_dims, CUDNN_DATA_HALF));
    DNN_TRY(call, cudnnSetFilterNdDescriptor(c->w_desc, CUDNN_DATA_HALF, CUDNN_TENSOR_NCHW, nd, w_dims),
            "filter descriptor");
    DNN_TRY(call,
            cudnnSetConvolutionNdDescriptor(c->conv_desc, n_conv, pad, str, dil, CUDNN_CROSS_CORRELATION,
                                            CUDNN_DATA_FLOAT),
            "convolution descriptor");
    DNN_TRY(call, cudnnSetConvolutionGroupCount(c->conv_desc, (int)g->group), "group count");

    size_t nw = (size_t)fg_tensor_numel(&call->op.in[1]);
    uint16_t *w16 = (uint16_t *)malloc(nw * sizeof(uint16_t) + 2);
    if (!w16)
        return op_error(&call->op, FG_ERR_OUT_OF_MEMORY, "out of host memory");
    for (size_t i = 0; i < nw; i++)
        w16[i] = fg_float_to_half(w_host[i]);
    cudaError_t err = cudaMalloc((void **)&hp->w, nw * sizeof(uint16_t) + 2);
    if (err == cudaSuccess)
        err = cudaMemcpy(hp->w, w16, nw * sizeof(uint16_t), cudaMemcpyHostToDevice);
    free(w16);
    if (err != cudaSuccess)
        return cuda_error(call, err, "uploading float16 weights");
    c->w_dev = hp->w;
    DNN_TRY(call, cudnnSetConvolutionMathType(c->conv_desc, CUDNN_TENSOR_OP_MATH), "math type");
    hp->nx = (uint32_t)fg_tensor_numel(&call->op.in[0]);
    hp->ny = (uint32_t)fg_tensor_numel(&call->op.out[0]);
    return NULL;
}

/* Sets the float16 path's cuDNN algorithm and its scratch layout
 * [workspace | input in float16 | output in float16]; 0 when cuDNN does not
 * take that algorithm for these descriptors. */
static int half_use_algorithm(const cuda_call *call, half_path *hp, int algo)
{
    size_t ws = 0;
    if (cudnnGetConvolutionForwardWorkspaceSize(call->cudnn, hp->c.x_desc, hp->c.w_desc, hp->c.conv_desc,
                                                hp->c.y_desc, (cudnnConvolutionFwdAlgo_t)algo,
                                                &ws) != CUDNN_STATUS_SUCCESS ||
        ws > HALF_WORKSPACE_CAP)
        return 0;
    hp->c.algo = algo;
    hp->c.ws_bytes = ws;
    hp->x_off = align_up(ws);
    hp->y_off = hp->x_off + align_up((size_t)hp->nx * sizeof(__half));
    hp->scratch_bytes = hp->y_off + align_up((size_t)hp->ny * sizeof(__half));
    return 1;
}

/* Chooses between the float32 path already prepared and the float16 one:
 * every cuDNN algorithm that takes the float16 descriptors is run on a
 * fixed input, kept only if its output agrees with the float32 path's
 * (some return wrong results for some shapes: checking is not optional),
 * and timed; the fastest agreeing one replaces the float32 path if it is
 * faster. The choice (0, or 1 + the algorithm) is cached. */
/* The tuned candidate before the float16 cuDNN path is considered: a direct kernel, a Winograd form, or cuDNN. */
static int tuned_choice(const conv_state *s)
{
    return s->path == CONV_PATH_DIRECT || s->path == CONV_PATH_WINOGRAD ? s->direct_kind : CD_CUDNN;
}

static void choose_half(cuda_call *call, conv_state *s)
{
    static const int algos[] = {
        CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
        CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED,     CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD,
        CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING,            CUDNN_CONVOLUTION_FWD_ALGO_FFT,
        CUDNN_CONVOLUTION_FWD_ALGO_GEMM,
    };
    half_path *hp = s->hp;
    char key[CONV_ALGO_KEY_MAX + 1];
    char base[CONV_ALGO_KEY_MAX - 64];
    make_cache_key(call, &hp->c, base, sizeof base);
    snprintf(key, sizeof key, "half-choice2|%s|b%d|a%d|r%d|k%d", base, s->has_bias, (int)s->act.kind,
             s->has_residual, tuned_choice(s));
    int cached = 0, math = 0, best = -1;
    if (conv_algo_cache_lookup(key, &cached, &math)) {
        best = cached - 1;
        if (best >= 0 && !half_use_algorithm(call, hp, best))
            best = -1;
    } else {
        int current = tuned_choice(s);
        void *scratch16 = NULL;
        tune_buffers b;
        float best_ms = -1.0f;
        if (tune_buffers_alloc(call, s, call->op.scratch_bytes + 4, &b) == 0) {
            char *scratch32 = b.scratch;
            if (tune_reference(call, s, current, &b) == 0)
                best_ms = time_candidate(call, s, current, &b);
            for (size_t a = 0; best_ms >= 0.0f && a < sizeof algos / sizeof algos[0]; a++) {
                if (!half_use_algorithm(call, hp, algos[a]))
                    continue;
                cudaFree(scratch16);
                scratch16 = NULL;
                if (cudaMalloc(&scratch16, hp->scratch_bytes + 4) != cudaSuccess) {
                    cudaGetLastError();
                    continue;
                }
                b.scratch = (char *)scratch16;
                float ms = matches_reference(call, s, CONV_KIND_HALF, &b, HALF_TOLERANCE)
                               ? time_candidate(call, s, CONV_KIND_HALF, &b)
                               : -1.0f;
                if (ms >= 0.0f && ms < best_ms) {
                    best_ms = ms;
                    best = algos[a];
                }
            }
            b.scratch = scratch32;
            conv_algo_cache_store(key, best + 1, 0);
            tune_buffers_free(call, &b);
        }
        cudaFree(scratch16);
        cudaGetLastError();
        if (best >= 0 && !half_use_algorithm(call, hp, best))
            best = -1;
    }
    if (best < 0) {
        half_path_release(s->hp);
        s->hp = NULL;
        return;
    }
    cudaFree(s->cd_weights);
    s->cd_weights = NULL;
    cudaFree(s->wino_u);
    s->wino_u = NULL;
    s->path = CONV_PATH_HALF;
    call->op.scratch_bytes = hp->scratch_bytes;
}

static fg_status *conv_transpose_run(cuda_call *call)
{
    conv_state *s = (conv_state *)call->op.state;
    if (!s)
        return op_error(&call->op, FG_ERR_INTERNAL, "transposed convolution was not prepared");
    if (s->empty)
        return NULL;
    const float *x = (const float *)call->op.in[0].data;
    const float *w = (const float *)call->op.in[1].data;
    float *y = (float *)call->op.out[0].data;
    char *scratch = (char *)call->scratch;
    void *ws = s->ws_bytes ? scratch : NULL;
    float *dx = s->crop ? (float *)(scratch + s->buf_off) : y;
    const float one = 1.0f, zero = 0.0f;
    DNN_TRY(call, cudnnSetStream(call->cudnn, call->stream), "stream");
    DNN_TRY(call,
            cudnnConvolutionBackwardData(call->cudnn, &one, s->w_desc, w, s->x_desc, x, s->conv_desc,
                                         (cudnnConvolutionBwdDataAlgo_t)s->algo, ws, s->ws_bytes, &zero, s->y_desc,
                                         dx),
            "transposed convolution");
    if (s->crop) {
        uint32_t total = (uint32_t)fg_tensor_numel(&call->op.out[0]);
        const float *bias = s->has_bias ? (const float *)call->op.in[2].data : NULL;
        cu_launch(conv_crop_bias_act_kernel, cu_blocks(total), CU_THREADS, 0, call->stream,
            dx, y, bias, (uint32_t)s->g.c_out, s->full_sp, s->crop_out, s->crop_off, total, s->act);
        CU_CHECK_LAUNCH(call, "transposed convolution crop");
    } else if (s->post) {
        FG_TRY(launch_bias_act(call, s, y, NULL));
    }
    return NULL;
}

static fg_status *conv_prepare(cuda_call *call)
{
    FG_TRY(conv_prepare_common(call, 0));
    conv_state *s = (conv_state *)call->op.state;
    FG_TRY(prepare_direct(call, s));
    FG_TRY(prepare_half(call, s));
    if (s->hp)
        choose_half(call, s);
    return NULL;
}
static fg_status *conv_transpose_prepare(cuda_call *call) { return conv_prepare_common(call, 1); }

extern "C" const cuda_op_def cuda_family_conv[] = {
    {"Conv", conv_prepare, conv_run, conv_release},
    {"ConvTranspose", conv_transpose_prepare, conv_transpose_run, conv_release},
    {NULL, NULL, NULL, NULL},
};
