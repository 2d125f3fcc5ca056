/* Helpers shared by the CUDA kernel families (the .cu files in src/cuda/kernels):
 * launch sizing, the fused activation on the device, dtype load/store, and
 * an N-d index map (output dims + per-operand element strides, coalesced)
 * that kernels take BY VALUE for broadcasting, transposes, slices, ...
 *
 * Include after "cuda/cuda_ops.h". Everything here is static (header-only).
 *
 * Index math is 32-bit (unsigned) for speed: cu_map_* refuse tensors of
 * 2^31 elements or more (return -1), and callers turn that into
 * FG_ERR_UNSUPPORTED. Face models stay far below that.
 */
#ifndef FACEGRAPH_CUDA_KERNEL_UTIL_CUH
#define FACEGRAPH_CUDA_KERNEL_UTIL_CUH

#include "cuda/cuda_ops.h"

#include <cuda_fp16.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CU_THREADS 256
#define CU_MAX_RANK 8      /* == FG_MAX_RANK */
#define CU_MAX_OPERANDS 3  /* inputs an index map carries strides for */
#define CU_INDEX_LIMIT ((int64_t)INT32_MAX)

/* ------------------------------------------------------------ launch sizing */

/* Blocks of CU_THREADS for a grid-stride loop over n items (at least 1 block).
 * Capped so that large tensors loop rather than launch millions of blocks. */
static inline unsigned cu_blocks(int64_t n)
{
    int64_t b = (n + CU_THREADS - 1) / CU_THREADS;
    if (b < 1)
        b = 1;
    if (b > 132 * 64)
        b = 132 * 64;
    return (unsigned)b;
}

/* Grid-stride loop over [0, n) with a 32-bit index. */
#define CU_LOOP(i, n)                                                                      \
    for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < (uint32_t)(n);            \
         i += blockDim.x * gridDim.x)

/* ------------------------------------------------------------ launches
 * Every engine kernel is launched with cu_launch and starts with
 * CU_KERNEL_PROLOGUE(). On Hopper this is programmatic dependent launch:
 * the next kernel on the stream is launched as the CTAs of the one before
 * it finish, rather than after the whole grid has drained (in a CUDA graph
 * too: capture turns the attribute into a programmatic edge), which hides
 * part of the launch gap between the small kernels of a face model. The
 * prologue's griddepcontrol.wait blocks until the previous kernel has
 * completed and its writes are visible, before the kernel touches global
 * memory, so results are exactly those of a plain launch. Without a
 * programmatic predecessor (a library kernel, a copy, a plain launch) it
 * does nothing. Measured on the H100 (graph replay): yunet 0.249 -> 0.232
 * ms, pfld_68 0.169 -> 0.156 ms. An explicit griddepcontrol.launch_dependents
 * at kernel start (dependents launched even earlier) was slower (yunet
 * 0.266 ms), so it is not issued. FACEGRAPH_CUDA_PDL=0 launches plainly. */
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define CU_KERNEL_PROLOGUE() asm volatile("griddepcontrol.wait;" ::: "memory")
#else
#define CU_KERNEL_PROLOGUE()                                                                                           \
    do {                                                                                                               \
    } while (0)
#endif

static inline int cu_pdl_enabled(void)
{
    static int enabled = -1;
    if (enabled < 0) {
        const char *e = getenv("FACEGRAPH_CUDA_PDL");
        enabled = !(e && strcmp(e, "0") == 0);
    }
    return enabled;
}

template <typename T> struct cu_param {
    typedef T type; /* the kernel's own parameter types, so that arguments convert as in <<<>>> (NULL, ints) */
};

/* kernel<<<grid, block, smem, stream>>>(args...) with programmatic dependent launch; the launch error. */
template <typename... Params>
static inline cudaError_t cu_launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                                    cudaStream_t stream, typename cu_param<Params>::type... args)
{
    cudaLaunchAttribute attr;
    memset(&attr, 0, sizeof attr);
    attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr.val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = stream;
    cfg.attrs = &attr;
    cfg.numAttrs = cu_pdl_enabled() ? 1 : 0;
    return cudaLaunchKernelEx(&cfg, kernel, args...);
}

/* Launch check for run(): returns the status from the enclosing function. */
#define CU_CHECK_LAUNCH(call, what)                                                        \
    do {                                                                                   \
        cudaError_t e_ = cudaGetLastError();                                               \
        if (e_ != cudaSuccess)                                                             \
            return cuda_error((call), e_, (what));                                         \
    } while (0)

/* ------------------------------------------------------------ fused activation */

/* Same math as op_activation_scalar (src/ops/common.c). */
static __device__ __forceinline__ float cu_act(op_activation act, float x)
{
    switch (act.kind) {
    case OP_ACT_NONE: return x;
    case OP_ACT_RELU: return x > 0.0f ? x : 0.0f;
    case OP_ACT_LEAKY_RELU: return x >= 0.0f ? x : x * act.alpha;
    case OP_ACT_CLIP: return x < act.alpha ? act.alpha : (x > act.beta ? act.beta : x);
    case OP_ACT_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case OP_ACT_HARD_SIGMOID: {
        float y = act.alpha * x + act.beta;
        return y < 0.0f ? 0.0f : (y > 1.0f ? 1.0f : y);
    }
    case OP_ACT_HARD_SWISH: {
        float y = x / 6.0f + 0.5f;
        return x * (y < 0.0f ? 0.0f : (y > 1.0f ? 1.0f : y));
    }
    case OP_ACT_TANH: return tanhf(x);
    case OP_ACT_SILU: return x / (1.0f + expf(-x));
    }
    return x;
}

/* ------------------------------------------------------------ dtype load/store */

/* Element `i` of a tensor of any numeric dtype as double / int64 (device). */
static __device__ __forceinline__ double cu_load_f64(fg_dtype dt, const void *p, uint32_t i)
{
    switch (dt) {
    case FG_FLOAT32: return ((const float *)p)[i];
    case FG_FLOAT64: return ((const double *)p)[i];
    case FG_FLOAT16: return __half2float(((const __half *)p)[i]);
    case FG_UINT8: return ((const uint8_t *)p)[i];
    case FG_INT8: return ((const int8_t *)p)[i];
    case FG_UINT16: return ((const uint16_t *)p)[i];
    case FG_INT16: return ((const int16_t *)p)[i];
    case FG_INT32: return ((const int32_t *)p)[i];
    case FG_INT64: return (double)((const int64_t *)p)[i];
    case FG_UINT32: return ((const uint32_t *)p)[i];
    case FG_UINT64: return (double)((const uint64_t *)p)[i];
    case FG_BOOL: return ((const uint8_t *)p)[i] ? 1.0 : 0.0;
    default: return 0.0;
    }
}

static __device__ __forceinline__ int64_t cu_load_i64(fg_dtype dt, const void *p, uint32_t i)
{
    switch (dt) {
    case FG_INT64: return ((const int64_t *)p)[i];
    case FG_UINT64: return (int64_t)((const uint64_t *)p)[i];
    case FG_INT32: return ((const int32_t *)p)[i];
    case FG_UINT32: return ((const uint32_t *)p)[i];
    case FG_INT16: return ((const int16_t *)p)[i];
    case FG_UINT16: return ((const uint16_t *)p)[i];
    case FG_INT8: return ((const int8_t *)p)[i];
    case FG_UINT8: return ((const uint8_t *)p)[i];
    case FG_BOOL: return ((const uint8_t *)p)[i] ? 1 : 0;
    default: return (int64_t)cu_load_f64(dt, p, i);
    }
}

/* Element `i` (64-bit index) of a tensor of any numeric dtype as double; a
 * bool reads as its byte value (pooling, normalisation and reductions). */
static __device__ __forceinline__ double cu_load_f64_idx64(int dt, const void *p, int64_t i)
{
    switch (dt) {
    case FG_FLOAT32: return ((const float *)p)[i];
    case FG_FLOAT64: return ((const double *)p)[i];
    case FG_FLOAT16: return __half2float(((const __half *)p)[i]);
    case FG_INT64: return (double)((const long long *)p)[i];
    case FG_INT32: return ((const int *)p)[i];
    case FG_INT16: return ((const short *)p)[i];
    case FG_INT8: return ((const signed char *)p)[i];
    case FG_UINT8: case FG_BOOL: return ((const unsigned char *)p)[i];
    case FG_UINT16: return ((const unsigned short *)p)[i];
    case FG_UINT32: return ((const unsigned int *)p)[i];
    case FG_UINT64: return (double)((const unsigned long long *)p)[i];
    default: return 0;
    }
}

/* Stores v into element `i` (64-bit index), converted like a C cast; a bool
 * stores v != 0. */
static __device__ __forceinline__ void cu_store_f64_idx64(int dt, void *p, int64_t i, double v)
{
    switch (dt) {
    case FG_FLOAT32: ((float *)p)[i] = (float)v; break;
    case FG_FLOAT64: ((double *)p)[i] = v; break;
    case FG_FLOAT16: ((__half *)p)[i] = __float2half((float)v); break;
    case FG_INT64: ((long long *)p)[i] = (long long)v; break;
    case FG_INT32: ((int *)p)[i] = (int)v; break;
    case FG_INT16: ((short *)p)[i] = (short)v; break;
    case FG_INT8: ((signed char *)p)[i] = (signed char)v; break;
    case FG_UINT8: ((unsigned char *)p)[i] = (unsigned char)v; break;
    case FG_BOOL: ((unsigned char *)p)[i] = v != 0; break;
    case FG_UINT16: ((unsigned short *)p)[i] = (unsigned short)v; break;
    case FG_UINT32: ((unsigned int *)p)[i] = (unsigned int)v; break;
    case FG_UINT64: ((unsigned long long *)p)[i] = (unsigned long long)v; break;
    default: break;
    }
}

/* ------------------------------------------------------------ launch sizing (64-bit work) */

/* Blocks of `threads` for a grid-stride loop over `work` items (1 to
 * 65535 * 16). */
static inline unsigned cu_blocks_for(int64_t work, int threads)
{
    int64_t b = (work + threads - 1) / threads;
    if (b < 1)
        b = 1;
    if (b > 65535LL * 16)
        b = 65535LL * 16;
    return (unsigned)b;
}

/* Launch check for run() as a function: the status of the last launch. */
static inline fg_status *cu_launch_status(const cuda_call *call, const char *what)
{
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess)
        return cuda_error(call, err, what);
    return NULL;
}

/* Index map: an output of `rank` dims (row-major) and, for each of up to
 * CU_MAX_OPERANDS operands, the element stride of each output dim in that
 * operand (0 on broadcast dims). Passed by value to kernels (~140 bytes). */
typedef struct cu_map {
    int rank;     /* 0: a single element */
    int n_operands;
    uint32_t dims[CU_MAX_RANK];
    uint32_t strides[CU_MAX_OPERANDS][CU_MAX_RANK];
} cu_map;

/* Offsets of output element `i` in each operand. */
static __device__ __forceinline__ void cu_map_offsets(const cu_map &m, uint32_t i, uint32_t *off)
{
#pragma unroll
    for (int k = 0; k < CU_MAX_OPERANDS; k++)
        off[k] = 0;
    for (int d = m.rank - 1; d >= 0; d--) {
        uint32_t q = i / m.dims[d];
        uint32_t r = i - q * m.dims[d];
#pragma unroll
        for (int k = 0; k < CU_MAX_OPERANDS; k++)
            off[k] += r * m.strides[k][d];
        i = q;
    }
}

/* Offset of output element `i` in operand 0 only (cheaper). */
static __device__ __forceinline__ uint32_t cu_map_offset0(const cu_map &m, uint32_t i)
{
    uint32_t off = 0;
    for (int d = m.rank - 1; d >= 0; d--) {
        uint32_t q = i / m.dims[d];
        off += (i - q * m.dims[d]) * m.strides[0][d];
        i = q;
    }
    return off;
}

/* Builds a map from output dims and per-operand int64 strides: drops size-1
 * dims and merges adjacent dims that are contiguous in every operand.
 * Returns 0, or -1 when the output or an offset needs more than 31 bits. */
static inline int cu_map_build(cu_map *m, int rank, const int64_t *dims, int n_operands,
                               const int64_t (*strides)[CU_MAX_RANK])
{
    memset(m, 0, sizeof *m);
    m->n_operands = n_operands;
    int64_t total = 1;
    for (int d = 0; d < rank; d++)
        total *= dims[d];
    if (total > CU_INDEX_LIMIT)
        return -1;
    for (int k = 0; k < n_operands; k++) {
        int64_t span = 0;
        for (int d = 0; d < rank; d++)
            if (dims[d] > 0)
                span += (dims[d] - 1) * (strides[k][d] < 0 ? -strides[k][d] : strides[k][d]);
        if (span > CU_INDEX_LIMIT)
            return -1;
    }
    int r = 0;
    int64_t cur_dims[CU_MAX_RANK];
    int64_t cur_strides[CU_MAX_OPERANDS][CU_MAX_RANK];
    for (int d = 0; d < rank; d++) {
        if (dims[d] == 1)
            continue;
        int merge = r > 0;
        for (int k = 0; k < n_operands && merge; k++)
            if (cur_strides[k][r - 1] != strides[k][d] * dims[d])
                merge = 0;
        if (merge) {
            cur_dims[r - 1] *= dims[d];
            for (int k = 0; k < n_operands; k++)
                cur_strides[k][r - 1] = strides[k][d];
        } else {
            cur_dims[r] = dims[d];
            for (int k = 0; k < n_operands; k++)
                cur_strides[k][r] = strides[k][d];
            r++;
        }
    }
    m->rank = r;
    for (int d = 0; d < r; d++) {
        m->dims[d] = (uint32_t)cur_dims[d];
        for (int k = 0; k < n_operands; k++)
            m->strides[k][d] = (uint32_t)cur_strides[k][d];
    }
    return 0;
}

/* Map for numpy broadcasting of n inputs (n <= CU_MAX_OPERANDS) to `out`. */
static inline int cu_map_broadcast(cu_map *m, const fg_tensor *out, int n, const fg_tensor *const *inputs)
{
    int64_t strides[CU_MAX_OPERANDS][CU_MAX_RANK];
    memset(strides, 0, sizeof strides);
    for (int k = 0; k < n; k++)
        op_broadcast_strides(inputs[k], out->rank, out->dims, strides[k]);
    return cu_map_build(m, out->rank, out->dims, n, (const int64_t (*)[CU_MAX_RANK])strides);
}

/* Row-major element strides of a tensor's own dims. */
static inline void cu_contiguous_strides(int rank, const int64_t *dims, int64_t *strides)
{
    int64_t s = 1;
    for (int d = rank - 1; d >= 0; d--) {
        strides[d] = s;
        s *= dims[d];
    }
}

/* True when the tensor has the same dims as `out` (no broadcasting). */
static inline int cu_same_shape(const fg_tensor *a, const fg_tensor *out)
{
    return fg_tensor_numel(a) == fg_tensor_numel(out) && a->rank <= out->rank &&
           (a->rank == out->rank ? memcmp(a->dims, out->dims, sizeof(int64_t) * (size_t)a->rank) == 0 : 1);
}

/* Allocates a zeroed host state block for prepare (NULL on failure). */
static inline void *cu_state_alloc(size_t bytes)
{
    return calloc(1, bytes);
}

#endif
