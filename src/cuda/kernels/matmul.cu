/* CUDA matrix products: MatMul, Gemm, Einsum.
 *
 * Every product is described, as in src/ops/matmul.c, by a strided batched
 * layout (mm_layout): C(b,m,n) = alpha * sum_k A(b,m,k) B(b,k,n), optionally
 * repeated over an outer index space of broadcast batch dims. float32 and
 * float16 run on cuBLAS with the row-major trick (C^T = B^T A^T in cuBLAS's
 * column-major terms): one cublasSgemm / SgemmStridedBatched (stride 0 for a
 * broadcast operand) or, for general batch broadcasting, cublasSgemmBatched
 * over device pointer arrays made in prepare. Other dtypes (and shapes cuBLAS
 * cannot take) run on a generic kernel. Gemm's C (times beta) and the fused
 * activation are applied by one epilogue kernel after the product.
 *
 * cuBLAS settings per run (all capturable): the stream, host pointer mode,
 * math mode (CUBLAS_DEFAULT_MATH = true fp32 unless call->allow_tf32, then
 * CUBLAS_TF32_TENSOR_OP_MATH) and a workspace carved from the op's scratch,
 * so that cuBLAS allocates nothing while a CUDA graph is captured.
 *
 * Einsum follows the CPU decomposition: two float32 operands without
 * diagonals or broadcasting become permute kernels + one batched product;
 * anything else runs on a generic contraction kernel. */
#include "cuda/cuda_ops.h"
#include "cuda/kernels/kernel_util.cuh"

#include <cublasLt.h>

extern "C" {
#include "ops/matmul_layout.h"
}

#include <limits.h>
#include <stdio.h>

#define MM_ALIGN 256

static size_t mm_align(size_t x)
{
    return (x + MM_ALIGN - 1) & ~(size_t)(MM_ALIGN - 1);
}

static int64_t mm_max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static int fits_int(int64_t v)
{
    return v >= 0 && v <= INT_MAX;
}

/* ------------------------------------------------------------ kernels */

static __device__ __forceinline__ void mm_store(fg_dtype dt, void *p, int64_t i, double v)
{
    switch (dt) {
    case FG_FLOAT32: ((float *)p)[i] = (float)v; break;
    case FG_FLOAT64: ((double *)p)[i] = v; break;
    case FG_FLOAT16: ((__half *)p)[i] = __float2half((float)v); break;
    case FG_INT64: ((int64_t *)p)[i] = (int64_t)v; break;
    case FG_INT32: ((int32_t *)p)[i] = (int32_t)v; break;
    case FG_UINT32: ((uint32_t *)p)[i] = (uint32_t)v; break;
    case FG_UINT64: ((uint64_t *)p)[i] = (uint64_t)v; break;
    default: break;
    }
}

static __device__ __forceinline__ double mm_load(fg_dtype dt, const void *p, int64_t i)
{
    switch (dt) {
    case FG_FLOAT32: return ((const float *)p)[i];
    case FG_FLOAT64: return ((const double *)p)[i];
    case FG_FLOAT16: return __half2float(((const __half *)p)[i]);
    case FG_INT64: return (double)((const int64_t *)p)[i];
    case FG_INT32: return ((const int32_t *)p)[i];
    case FG_UINT32: return ((const uint32_t *)p)[i];
    case FG_UINT64: return (double)((const uint64_t *)p)[i];
    default: return 0.0;
    }
}

static __device__ __forceinline__ int64_t mm_load_int(fg_dtype dt, const void *p, int64_t i)
{
    switch (dt) {
    case FG_INT64: return ((const int64_t *)p)[i];
    case FG_INT32: return ((const int32_t *)p)[i];
    case FG_UINT32: return ((const uint32_t *)p)[i];
    case FG_UINT64: return (int64_t)((const uint64_t *)p)[i];
    default: return 0;
    }
}

typedef struct mm_generic_params {
    mm_layout l;
    fg_dtype dtype;
    int has_c;              /* Gemm's C input, read with (c_in_rs, c_in_cs), 0 strides broadcast */
    int64_t c_in_rs, c_in_cs;
    int64_t total;          /* outputs: outer * batch * M * N */
    op_activation act;      /* float32 only */
} mm_generic_params;

/* One thread per output element: any dtype, any layout, alpha/beta/C. */
__global__ void mm_generic_kernel(const void *a, const void *b, const void *c_in, void *c, mm_generic_params p)
{
    CU_KERNEL_PROLOGUE();
    const mm_layout &l = p.l;
    int is_int = !(p.dtype == FG_FLOAT32 || p.dtype == FG_FLOAT64 || p.dtype == FG_FLOAT16);
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < p.total;
         i += (int64_t)blockDim.x * gridDim.x) {
        int64_t n = i % l.N, t = i / l.N;
        int64_t m = t % l.M;
        t /= l.M;
        int64_t bi = t % l.batch, o = t / l.batch;
        int64_t oa = 0, ob = 0, oc = 0;
        for (int d = l.outer_rank - 1; d >= 0; d--) {
            int64_t j = o % l.outer_dims[d];
            o /= l.outer_dims[d];
            oa += j * l.outer_a[d];
            ob += j * l.outer_b[d];
            oc += j * l.outer_c[d];
        }
        int64_t arow = oa + bi * l.a_bs + m * l.a_rs;
        int64_t bcol = ob + bi * l.b_bs + n * l.b_cs;
        int64_t out = oc + bi * l.c_bs + m * l.c_rs + n;
        if (is_int && l.alpha == 1.0f && !p.has_c) {
            int64_t acc = 0;
            for (int64_t k = 0; k < l.K; k++)
                acc += mm_load_int(p.dtype, a, arow + k * l.a_cs) * mm_load_int(p.dtype, b, bcol + k * l.b_rs);
            if (p.dtype == FG_INT64)
                ((int64_t *)c)[out] = acc;
            else
                mm_store(p.dtype, c, out, (double)acc);
            continue;
        }
        double acc = 0.0;
        for (int64_t k = 0; k < l.K; k++)
            acc += mm_load(p.dtype, a, arow + k * l.a_cs) * mm_load(p.dtype, b, bcol + k * l.b_rs);
        double v = l.alpha * acc;
        if (p.has_c)
            v += l.beta * mm_load(p.dtype, c_in, m * p.c_in_rs + n * p.c_in_cs);
        if (p.dtype == FG_FLOAT32)
            v = cu_act(p.act, (float)v);
        mm_store(p.dtype, c, out, v);
    }
}

/* y = act(y + beta * C(m, n)) over a contiguous M x N (x batches) output; C may be NULL. */
__global__ void mm_epilogue_kernel(float *y, const float *c, uint32_t N, int64_t c_rs, int64_t c_cs, float beta,
                                   uint32_t total, op_activation act)
{
    CU_KERNEL_PROLOGUE();
    CU_LOOP(i, total)
    {
        float v = y[i];
        if (c) {
            uint32_t m = i / N, n = i - m * N;
            v += beta * __ldg(c + m * c_rs + n * c_cs);
        }
        y[i] = cu_act(act, v);
    }
}

__global__ void mm_act_vec4_kernel(float4 *y, uint32_t total4, op_activation act)
{
    CU_KERNEL_PROLOGUE();
    CU_LOOP(i, total4)
    {
        float4 v = y[i];
        v.x = cu_act(act, v.x);
        v.y = cu_act(act, v.y);
        v.z = cu_act(act, v.z);
        v.w = cu_act(act, v.w);
        y[i] = v;
    }
}

/* ------------------------------------------------------------ cuBLAS execution */

typedef struct mm_exec {
    mm_layout l;
    fg_dtype dtype;
    int use_blas;
    cublasOperation_t op_first, op_second; /* first operand = B, second = A (row-major trick) */
    int m, n, k, ld_first, ld_second, ldc;
    long long stride_first, stride_second, stride_c;
    int batch;                             /* strided batch (outer_rank == 0) */
    void **d_ptrs;                         /* outer_rank > 0: [B ptrs | A ptrs | C ptrs], ptr_count each */
    int ptr_count;
} mm_exec;

/* The logical R x C matrix X(r, c) = p[r*rs + c*cs] is needed as X^T (C x R)
 * in cuBLAS's column-major terms: either stored column-major C x R (OP_N) or
 * column-major R x C transposed (OP_T). Returns 0 when neither fits. */
static int operand_op(int64_t R, int64_t C, int64_t rs, int64_t cs, cublasOperation_t *op, int64_t *ld)
{
    if (cs == 1 || C == 1) {
        int64_t l = R == 1 ? mm_max64(C, 1) : rs;
        if (l >= mm_max64(C, 1)) {
            *op = CUBLAS_OP_N;
            *ld = l;
            return 1;
        }
    }
    if (rs == 1 || R == 1) {
        int64_t l = C == 1 ? mm_max64(R, 1) : cs;
        if (l >= mm_max64(R, 1)) {
            *op = CUBLAS_OP_T;
            *ld = l;
            return 1;
        }
    }
    return 0;
}

/* Decides whether cuBLAS can run the layout (pointer arrays come later). */
static void mm_exec_plan(mm_exec *e, const mm_layout *l, fg_dtype dtype)
{
    memset(e, 0, sizeof *e);
    e->l = *l;
    e->dtype = dtype;
    if (dtype != FG_FLOAT32 && dtype != FG_FLOAT16)
        return;
    if (l->M <= 0 || l->N <= 0 || l->K <= 0 || l->batch <= 0)
        return;
    int64_t ld_b, ld_a, ldc = l->M == 1 ? mm_max64(l->N, 1) : l->c_rs;
    if (!operand_op(l->K, l->N, l->b_rs, l->b_cs, &e->op_first, &ld_b) ||
        !operand_op(l->M, l->K, l->a_rs, l->a_cs, &e->op_second, &ld_a) || ldc < l->N)
        return;
    int64_t count = l->batch * mm_outer_count(l);
    if (!fits_int(l->M) || !fits_int(l->N) || !fits_int(l->K) || !fits_int(ld_a) || !fits_int(ld_b) ||
        !fits_int(ldc) || !fits_int(count))
        return;
    e->m = (int)l->N;
    e->n = (int)l->M;
    e->k = (int)l->K;
    e->ld_first = (int)ld_b;
    e->ld_second = (int)ld_a;
    e->ldc = (int)ldc;
    e->stride_first = l->b_bs;
    e->stride_second = l->a_bs;
    e->stride_c = l->c_bs;
    e->batch = (int)l->batch;
    e->ptr_count = l->outer_rank ? (int)count : 0;
    e->use_blas = 1;
}

/* Outer broadcasting: device arrays of per-product pointers, from the
 * (fixed) device addresses of the operands. */
static fg_status *mm_exec_build_ptrs(cuda_call *call, mm_exec *e, const void *a, const void *b, void *c)
{
    if (!e->use_blas || !e->ptr_count)
        return NULL;
    size_t es = fg_dtype_size(e->dtype);
    int count = e->ptr_count;
    void **host = (void **)malloc(sizeof(void *) * 3 * (size_t)count);
    if (!host)
        return op_error(&call->op, FG_ERR_OUT_OF_MEMORY, "out of memory for batch pointers");
    const mm_layout *l = &e->l;
    int64_t outer = mm_outer_count(l);
    int idx = 0;
    for (int64_t o = 0; o < outer; o++) {
        int64_t oa, ob, oc;
        mm_outer_offsets(l, o, &oa, &ob, &oc);
        for (int64_t bi = 0; bi < l->batch; bi++, idx++) {
            host[idx] = (char *)b + (size_t)(ob + bi * l->b_bs) * es;
            host[count + idx] = (char *)a + (size_t)(oa + bi * l->a_bs) * es;
            host[2 * count + idx] = (char *)c + (size_t)(oc + bi * l->c_bs) * es;
        }
    }
    cudaError_t err = cudaMalloc((void **)&e->d_ptrs, sizeof(void *) * 3 * (size_t)count);
    if (err == cudaSuccess)
        err = cudaMemcpy(e->d_ptrs, host, sizeof(void *) * 3 * (size_t)count, cudaMemcpyHostToDevice);
    free(host);
    if (err != cudaSuccess)
        return cuda_error(call, err, "batch pointer upload");
    return NULL;
}

static void mm_exec_release(mm_exec *e)
{
    if (e->d_ptrs)
        cudaFree(e->d_ptrs);
    e->d_ptrs = NULL;
}

#define BLAS_TRY(call, expr, what)                                                                                   \
    do {                                                                                                             \
        cublasStatus_t st_ = (expr);                                                                                 \
        if (st_ != CUBLAS_STATUS_SUCCESS)                                                                            \
            return cublas_error((call), st_, (what));                                                                \
    } while (0)

/* Stream, pointer mode, math mode and workspace for this call (shared with conv.cu's Winograd path). */
extern "C" fg_status *cuda_blas_setup(cuda_call *call, void *workspace)
{
    cudaStream_t current = NULL;
    if (cublasGetStream(call->cublas, &current) != CUBLAS_STATUS_SUCCESS || current != call->stream)
        BLAS_TRY(call, cublasSetStream(call->cublas, call->stream), "stream");
    BLAS_TRY(call, cublasSetPointerMode(call->cublas, CUBLAS_POINTER_MODE_HOST), "pointer mode");
    BLAS_TRY(call,
             cublasSetMathMode(call->cublas, call->allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH),
             "math mode");
    BLAS_TRY(call, cublasSetWorkspace(call->cublas, workspace, CUDA_BLAS_WORKSPACE), "workspace");
    return NULL;
}

/* c = alpha * a @ b (beta 0) on cuBLAS. */
static fg_status *mm_exec_blas(cuda_call *call, const mm_exec *e, const void *a, const void *b, void *c,
                               void *workspace)
{
    FG_TRY(cuda_blas_setup(call, workspace));
    const float alpha = e->l.alpha, beta = 0.0f;
    cublasHandle_t h = call->cublas;
    if (e->dtype == FG_FLOAT32) {
        if (e->ptr_count) {
            BLAS_TRY(call,
                     cublasSgemmBatched(h, e->op_first, e->op_second, e->m, e->n, e->k, &alpha,
                                        (const float *const *)e->d_ptrs, e->ld_first,
                                        (const float *const *)(e->d_ptrs + e->ptr_count), e->ld_second, &beta,
                                        (float *const *)(e->d_ptrs + 2 * e->ptr_count), e->ldc, e->ptr_count),
                     "batched matrix product");
        } else if (e->batch == 1) {
            BLAS_TRY(call,
                     cublasSgemm(h, e->op_first, e->op_second, e->m, e->n, e->k, &alpha, (const float *)b,
                                 e->ld_first, (const float *)a, e->ld_second, &beta, (float *)c, e->ldc),
                     "matrix product");
        } else {
            BLAS_TRY(call,
                     cublasSgemmStridedBatched(h, e->op_first, e->op_second, e->m, e->n, e->k, &alpha,
                                               (const float *)b, e->ld_first, e->stride_first, (const float *)a,
                                               e->ld_second, e->stride_second, &beta, (float *)c, e->ldc,
                                               e->stride_c, e->batch),
                     "batched matrix product");
        }
        return NULL;
    }
    /* float16 storage, float32 accumulation */
    if (e->ptr_count) {
        BLAS_TRY(call,
                 cublasGemmBatchedEx(h, e->op_first, e->op_second, e->m, e->n, e->k, &alpha,
                                     (const void *const *)e->d_ptrs, CUDA_R_16F, e->ld_first,
                                     (const void *const *)(e->d_ptrs + e->ptr_count), CUDA_R_16F, e->ld_second,
                                     &beta, (void *const *)(e->d_ptrs + 2 * e->ptr_count), CUDA_R_16F, e->ldc,
                                     e->ptr_count, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                 "batched matrix product");
    } else {
        BLAS_TRY(call,
                 cublasGemmStridedBatchedEx(h, e->op_first, e->op_second, e->m, e->n, e->k, &alpha, b, CUDA_R_16F,
                                            e->ld_first, e->stride_first, a, CUDA_R_16F, e->ld_second,
                                            e->stride_second, &beta, c, CUDA_R_16F, e->ldc, e->stride_c, e->batch,
                                            CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                 "batched matrix product");
    }
    return NULL;
}

static fg_status *launch_generic(cuda_call *call, const mm_layout *l, fg_dtype dtype, const void *a, const void *b,
                                 void *c, const fg_tensor *c_in, int64_t total)
{
    mm_generic_params p;
    memset(&p, 0, sizeof p);
    p.l = *l;
    p.dtype = dtype;
    p.total = total;
    p.act = dtype == FG_FLOAT32 ? call->op.act : op_activation{OP_ACT_NONE, 0.0f, 0.0f};
    const void *c_data = NULL;
    if (c_in && l->beta != 0.0f) {
        p.has_c = 1;
        int64_t cm = c_in->rank == 2 ? c_in->dims[0] : 1, cn = c_in->rank >= 1 ? c_in->dims[c_in->rank - 1] : 1;
        p.c_in_rs = cm == 1 ? 0 : cn;
        p.c_in_cs = cn == 1 ? 0 : 1;
        c_data = c_in->data;
    }
    int64_t blocks = (total + CU_THREADS - 1) / CU_THREADS;
    if (blocks > 132 * 64)
        blocks = 132 * 64;
    if (blocks < 1)
        blocks = 1;
    cu_launch(mm_generic_kernel, (unsigned)blocks, CU_THREADS, 0, call->stream, a, b, c_data, c, p);
    CU_CHECK_LAUNCH(call, "matrix product");
    return NULL;
}

/* float32 epilogue: y = act(y + beta * C) (C: Gemm's input, broadcast to M x N). */
static fg_status *launch_epilogue(cuda_call *call, float *y, int64_t total, int64_t N, const fg_tensor *c_in,
                                  float beta)
{
    op_activation act = call->op.act;
    const float *c = NULL;
    int64_t c_rs = 0, c_cs = 0;
    if (c_in && beta != 0.0f) {
        int64_t cm = c_in->rank == 2 ? c_in->dims[0] : 1, cn = c_in->rank >= 1 ? c_in->dims[c_in->rank - 1] : 1;
        c_rs = cm == 1 ? 0 : cn;
        c_cs = cn == 1 ? 0 : 1;
        c = (const float *)c_in->data;
    }
    if (!c && act.kind == OP_ACT_NONE)
        return NULL;
    if (!c && total % 4 == 0 && ((uintptr_t)y & 15) == 0) {
        cu_launch(mm_act_vec4_kernel, cu_blocks(total / 4), CU_THREADS, 0, call->stream, (float4 *)y,
                                                                                   (uint32_t)(total / 4), act);
    } else {
        cu_launch(mm_epilogue_kernel, cu_blocks(total), CU_THREADS, 0, call->stream, y, c, (uint32_t)N, c_rs, c_cs, beta,
                                                                               (uint32_t)total, act);
    }
    CU_CHECK_LAUNCH(call, "matrix product epilogue");
    return NULL;
}

/* ------------------------------------------------------------ cuBLASLt: product + bias in one kernel
 * A float32 product whose C is a bias vector along N (Gemm's C of [N] or
 * [1, N] with beta 1; MatMul's bias the planner fused from a following Add)
 * runs as one cublasLtMatmul with the BIAS (or RELU_BIAS) epilogue instead
 * of cuBLAS + an epilogue kernel. Other cases keep the two-kernel path. */

typedef struct mm_lt {
    cublasLtHandle_t handle;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t first, second, out;
    cublasLtMatmulAlgo_t algo;
    size_t workspace;
} mm_lt;

static void mm_lt_release(mm_lt *lt)
{
    if (!lt)
        return;
    if (lt->out)
        cublasLtMatrixLayoutDestroy(lt->out);
    if (lt->second)
        cublasLtMatrixLayoutDestroy(lt->second);
    if (lt->first)
        cublasLtMatrixLayoutDestroy(lt->first);
    if (lt->desc)
        cublasLtMatmulDescDestroy(lt->desc);
    if (lt->handle)
        cublasLtDestroy(lt->handle);
    free(lt);
}

/* The bias-epilogue product for e (single float32 GEMM), or NULL when
 * cuBLASLt has no algorithm for it (the caller keeps the cuBLAS path). */
static mm_lt *mm_lt_create(const cuda_call *call, const mm_exec *e, const float *bias, int relu)
{
    if (e->dtype != FG_FLOAT32 || e->ptr_count || e->batch != 1 || ((uintptr_t)bias & 15))
        return NULL;
    mm_lt *lt = (mm_lt *)calloc(1, sizeof *lt);
    if (!lt)
        return NULL;
    cublasComputeType_t compute = call->allow_tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    cublasLtEpilogue_t epilogue = relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
    cublasOperation_t op_first = e->op_first, op_second = e->op_second;
    size_t ws = CUDA_BLAS_WORKSPACE;
    cublasLtMatmulPreference_t pref = NULL;
    cublasLtMatmulHeuristicResult_t result;
    int found = 0;
    int ok = cublasLtCreate(&lt->handle) == CUBLAS_STATUS_SUCCESS &&
             cublasLtMatmulDescCreate(&lt->desc, compute, CUDA_R_32F) == CUBLAS_STATUS_SUCCESS &&
             cublasLtMatmulDescSetAttribute(lt->desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_first, sizeof op_first) ==
                 CUBLAS_STATUS_SUCCESS &&
             cublasLtMatmulDescSetAttribute(lt->desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_second, sizeof op_second) ==
                 CUBLAS_STATUS_SUCCESS &&
             cublasLtMatmulDescSetAttribute(lt->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue) ==
                 CUBLAS_STATUS_SUCCESS &&
             cublasLtMatmulDescSetAttribute(lt->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias) ==
                 CUBLAS_STATUS_SUCCESS &&
             cublasLtMatrixLayoutCreate(&lt->first, CUDA_R_32F, op_first == CUBLAS_OP_N ? e->m : e->k,
                                        op_first == CUBLAS_OP_N ? e->k : e->m, e->ld_first) == CUBLAS_STATUS_SUCCESS &&
             cublasLtMatrixLayoutCreate(&lt->second, CUDA_R_32F, op_second == CUBLAS_OP_N ? e->k : e->n,
                                        op_second == CUBLAS_OP_N ? e->n : e->k, e->ld_second) ==
                 CUBLAS_STATUS_SUCCESS &&
             cublasLtMatrixLayoutCreate(&lt->out, CUDA_R_32F, e->m, e->n, e->ldc) == CUBLAS_STATUS_SUCCESS &&
             cublasLtMatmulPreferenceCreate(&pref) == CUBLAS_STATUS_SUCCESS &&
             cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws) ==
                 CUBLAS_STATUS_SUCCESS &&
             cublasLtMatmulAlgoGetHeuristic(lt->handle, lt->desc, lt->first, lt->second, lt->out, lt->out, pref, 1,
                                            &result, &found) == CUBLAS_STATUS_SUCCESS &&
             found > 0 && result.state == CUBLAS_STATUS_SUCCESS;
    if (pref)
        cublasLtMatmulPreferenceDestroy(pref);
    if (!ok) {
        mm_lt_release(lt);
        return NULL;
    }
    lt->algo = result.algo;
    lt->workspace = result.workspaceSize;
    return lt;
}

static fg_status *mm_lt_run(cuda_call *call, const mm_lt *lt, float alpha, const void *a, const void *b, void *c,
                            void *workspace)
{
    const float beta = 0.0f;
    BLAS_TRY(call,
             cublasLtMatmul(lt->handle, lt->desc, &alpha, b, lt->first, a, lt->second, &beta, c, lt->out, c, lt->out,
                            &lt->algo, workspace, lt->workspace, call->stream),
             "matrix product with bias");
    return NULL;
}

/* ------------------------------------------------------------ MatMul / Gemm */

typedef struct mm_state {
    mm_exec exec;
    int is_gemm;
    int empty;
    mm_lt *lt;    /* product + bias (+ relu) in one cuBLASLt call */
} mm_state;

static void mm_release(void *state)
{
    mm_state *s = (mm_state *)state;
    if (!s)
        return;
    mm_exec_release(&s->exec);
    mm_lt_release(s->lt);
    free(s);
}

/* The bias input of a product, if it is a vector along N: Gemm's C ([N] or
 * [1, N], beta 1) or the bias the planner gave MatMul as a third input. */
static const fg_tensor *bias_vector(const cuda_call *call, const mm_layout *l, int is_gemm)
{
    if (!op_has_input(&call->op, 2))
        return NULL;
    const fg_tensor *c = &call->op.in[2];
    if (c->dtype != FG_FLOAT32 || fg_tensor_numel(c) != l->N || (c->rank == 2 && c->dims[0] != 1) || c->rank > 2)
        return NULL;
    if (is_gemm && l->beta != 1.0f)
        return NULL;
    return c;
}

static fg_status *mm_prepare_common(cuda_call *call, int is_gemm)
{
    mm_state *s = (mm_state *)cu_state_alloc(sizeof *s);
    if (!s)
        return op_error(&call->op, FG_ERR_OUT_OF_MEMORY, "out of memory preparing the product");
    call->op.state = s;
    call->op.scratch_bytes = 0;
    s->is_gemm = is_gemm;
    mm_layout l;
    if (is_gemm) {
        FG_TRY(gemm_layout(&call->op, &l, NULL));
    } else {
        FG_TRY(matmul_check_inputs(&call->op));
        FG_TRY(matmul_layout(&call->op, &l, NULL));
        if (op_has_input(&call->op, 2))
            l.beta = 1.0f; /* the bias the planner fused (a row vector along N) */
    }
    fg_tensor *out = &call->op.out[0];
    int64_t total = fg_tensor_numel(out);
    if (total == 0) {
        s->empty = 1;
        return NULL;
    }
    if (total > CU_INDEX_LIMIT)
        return op_error(&call->op, FG_ERR_UNSUPPORTED, "output of %lld elements is too large", (long long)total);
    fg_dtype dt = call->op.in[0].dtype;
    mm_exec_plan(&s->exec, &l, dt);
    /* float16 Gemm with C: the generic kernel applies C */
    if (is_gemm && dt == FG_FLOAT16 && l.beta != 0.0f)
        s->exec.use_blas = 0;
    if (s->exec.use_blas) {
        FG_TRY(mm_exec_build_ptrs(call, &s->exec, call->op.in[0].data, call->op.in[1].data, out->data));
        call->op.scratch_bytes = CUDA_BLAS_WORKSPACE;
        const fg_tensor *bias = bias_vector(call, &l, is_gemm);
        op_act_kind act = call->op.act.kind;
        if (bias && (act == OP_ACT_NONE || act == OP_ACT_RELU))
            s->lt = mm_lt_create(call, &s->exec, (const float *)bias->data, act == OP_ACT_RELU);
    }
    return NULL;
}

static fg_status *mm_run(cuda_call *call)
{
    mm_state *s = (mm_state *)call->op.state;
    if (!s)
        return op_error(&call->op, FG_ERR_INTERNAL, "product was not prepared");
    if (s->empty)
        return NULL;
    const mm_exec *e = &s->exec;
    fg_tensor *out = &call->op.out[0];
    int64_t total = fg_tensor_numel(out);
    /* Gemm's C, or MatMul's fused bias (added once: beta 1) */
    const fg_tensor *c_in = op_has_input(&call->op, 2) ? &call->op.in[2] : NULL;
    if (s->lt)
        return mm_lt_run(call, s->lt, e->l.alpha, call->op.in[0].data, call->op.in[1].data, out->data, call->scratch);
    if (!e->use_blas)
        return launch_generic(call, &e->l, e->dtype, call->op.in[0].data, call->op.in[1].data, out->data, c_in,
                              total);
    FG_TRY(mm_exec_blas(call, e, call->op.in[0].data, call->op.in[1].data, out->data, call->scratch));
    if (e->dtype == FG_FLOAT32)
        FG_TRY(launch_epilogue(call, (float *)out->data, total, e->l.N, c_in, e->l.beta));
    return NULL;
}

static fg_status *matmul_prepare(cuda_call *call) { return mm_prepare_common(call, 0); }
static fg_status *gemm_prepare(cuda_call *call) { return mm_prepare_common(call, 1); }

/* ------------------------------------------------------------ Einsum */

#define EIN_GPU_MAX_SUM 16

typedef struct ein_generic_params {
    int n_ops, out_rank, n_sum;
    fg_dtype dtype;
    int64_t total, n_sum_total;
    int64_t out_dims[FG_MAX_RANK], sum_dims[EIN_GPU_MAX_SUM];
    int64_t out_strides[EIN_MAX_OPERANDS][FG_MAX_RANK];
    int64_t sum_strides[EIN_MAX_OPERANDS][EIN_GPU_MAX_SUM];
} ein_generic_params;

typedef struct ein_operands {
    const void *p[EIN_MAX_OPERANDS];
} ein_operands;

/* One thread per output element: product of the operands summed over the
 * contracted labels, accumulated in double (as the CPU's generic loop). */
__global__ void ein_generic_kernel(ein_operands in, void *out, ein_generic_params p)
{
    CU_KERNEL_PROLOGUE();
    for (int64_t o = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; o < p.total;
         o += (int64_t)blockDim.x * gridDim.x) {
        int64_t base[EIN_MAX_OPERANDS];
        for (int t = 0; t < p.n_ops; t++)
            base[t] = 0;
        int64_t rem = o;
        for (int d = p.out_rank - 1; d >= 0; d--) {
            int64_t i = rem % p.out_dims[d];
            rem /= p.out_dims[d];
            for (int t = 0; t < p.n_ops; t++)
                base[t] += i * p.out_strides[t][d];
        }
        double acc = 0.0;
        for (int64_t j = 0; j < p.n_sum_total; j++) {
            double prod = 1.0;
            for (int t = 0; t < p.n_ops; t++) {
                int64_t off = base[t], r = j;
                for (int d = p.n_sum - 1; d >= 0; d--) {
                    off += (r % p.sum_dims[d]) * p.sum_strides[t][d];
                    r /= p.sum_dims[d];
                }
                prod *= mm_load(p.dtype, in.p[t], off);
            }
            acc += prod;
        }
        mm_store(p.dtype, out, o, acc);
    }
}

typedef struct ein_permute_params {
    cu_map map;
    uint32_t total;
} ein_permute_params;

/* dst (contiguous) = src read through the map's operand-0 strides. */
__global__ void ein_permute_kernel(const float *src, float *dst, ein_permute_params p)
{
    CU_KERNEL_PROLOGUE();
    CU_LOOP(i, p.total)
    {
        dst[i] = src[cu_map_offset0(p.map, i)];
    }
}

typedef struct einsum_state {
    einsum_spec spec;
    int fast;
    int empty;
    einsum_matmul_plan product;            /* the fast path's permutations and product */
    ein_permute_params pp_a, pp_b, pp_c;
    size_t off_a, off_b, off_c;            /* scratch offsets (after the cuBLAS workspace) */
    mm_exec exec;
    ein_generic_params gp;
} einsum_state;

static int ein_permute_build(const ein_permute *pm, ein_permute_params *pp)
{
    int64_t strides[CU_MAX_OPERANDS][CU_MAX_RANK];
    memset(strides, 0, sizeof strides);
    int64_t total = 1;
    for (int d = 0; d < pm->rank; d++) {
        strides[0][d] = pm->src_strides[d];
        total *= pm->dims[d];
    }
    if (cu_map_build(&pp->map, pm->rank, pm->dims, 1, (const int64_t (*)[CU_MAX_RANK])strides) != 0)
        return -1;
    pp->total = (uint32_t)total;
    return 0;
}

/* The CPU's fast decomposition; st->fast stays 0 when it does not apply. */
static void einsum_plan_fast(cuda_call *call, einsum_state *st)
{
    if (!einsum_plan_matmul(&call->op, &st->spec, &st->product))
        return;
    const mm_layout *l = &st->product.layout;
    int64_t Bt = l->batch, M = l->M, N = l->N, K = l->K;
    mm_exec_plan(&st->exec, l, FG_FLOAT32);
    if (!st->exec.use_blas || st->exec.ptr_count)
        return;
    const einsum_matmul_plan *pm = &st->product;
    if ((pm->perm_a.needed && ein_permute_build(&pm->perm_a, &st->pp_a) != 0) ||
        (pm->perm_b.needed && ein_permute_build(&pm->perm_b, &st->pp_b) != 0) ||
        (pm->perm_c.needed && ein_permute_build(&pm->perm_c, &st->pp_c) != 0))
        return;
    size_t off = CUDA_BLAS_WORKSPACE;
    st->off_a = off;
    off += pm->perm_a.needed ? mm_align((size_t)(Bt * M * K) * sizeof(float)) : 0;
    st->off_b = off;
    off += pm->perm_b.needed ? mm_align((size_t)(Bt * K * N) * sizeof(float)) : 0;
    st->off_c = off;
    off += pm->perm_c.needed ? mm_align((size_t)(Bt * M * N) * sizeof(float)) : 0;
    call->op.scratch_bytes = off;
    st->fast = 1;
}

static fg_status *einsum_plan_generic(cuda_call *call, einsum_state *st)
{
    const einsum_spec *s = &st->spec;
    ein_generic_params *p = &st->gp;
    memset(p, 0, sizeof *p);
    if (s->n_sum > EIN_GPU_MAX_SUM)
        return op_error(&call->op, FG_ERR_UNSUPPORTED, "at most %d summed labels are supported on the GPU",
                        EIN_GPU_MAX_SUM);
    p->n_ops = s->n_ops;
    p->out_rank = s->out_rank;
    p->n_sum = s->n_sum;
    p->dtype = call->op.out[0].dtype;
    p->total = fg_tensor_numel(&call->op.out[0]);
    p->n_sum_total = 1;
    for (int i = 0; i < s->out_rank; i++)
        p->out_dims[i] = s->size[s->out_labels[i]];
    for (int i = 0; i < s->n_sum; i++) {
        p->sum_dims[i] = s->size[s->sum_labels[i]];
        p->n_sum_total *= p->sum_dims[i];
    }
    for (int t = 0; t < s->n_ops; t++) {
        int64_t str[EIN_LABELS];
        ein_label_strides(s, &call->op.in[t], t, str);
        for (int i = 0; i < s->out_rank; i++)
            p->out_strides[t][i] = str[s->out_labels[i]];
        for (int i = 0; i < s->n_sum; i++)
            p->sum_strides[t][i] = str[s->sum_labels[i]];
    }
    return NULL;
}

static void einsum_release(void *state)
{
    einsum_state *s = (einsum_state *)state;
    if (!s)
        return;
    mm_exec_release(&s->exec);
    free(s);
}

static fg_status *einsum_prepare(cuda_call *call)
{
    einsum_state *st = (einsum_state *)cu_state_alloc(sizeof *st);
    if (!st)
        return op_error(&call->op, FG_ERR_OUT_OF_MEMORY, "out of memory preparing the contraction");
    call->op.state = st;
    call->op.scratch_bytes = 0;
    FG_TRY(einsum_check_dtypes(&call->op));
    FG_TRY(einsum_parse(&call->op, &st->spec));
    if (fg_tensor_numel(&call->op.out[0]) == 0) {
        st->empty = 1;
        return NULL;
    }
    einsum_plan_fast(call, st);
    if (!st->fast) {
        call->op.scratch_bytes = 0;
        FG_TRY(einsum_plan_generic(call, st));
    }
    return NULL;
}

static fg_status *launch_permute(cuda_call *call, const ein_permute_params *pp, const float *src, float *dst)
{
    cu_launch(ein_permute_kernel, cu_blocks(pp->total), CU_THREADS, 0, call->stream, src, dst, *pp);
    CU_CHECK_LAUNCH(call, "einsum permutation");
    return NULL;
}

static fg_status *einsum_run(cuda_call *call)
{
    einsum_state *st = (einsum_state *)call->op.state;
    if (!st)
        return op_error(&call->op, FG_ERR_INTERNAL, "contraction was not prepared");
    if (st->empty)
        return NULL;
    if (!st->fast) {
        const ein_generic_params *p = &st->gp;
        ein_operands ops;
        memset(&ops, 0, sizeof ops);
        for (int t = 0; t < p->n_ops; t++)
            ops.p[t] = call->op.in[t].data;
        int64_t blocks = (p->total + CU_THREADS - 1) / CU_THREADS;
        if (blocks > 132 * 64)
            blocks = 132 * 64;
        if (blocks < 1)
            blocks = 1;
        cu_launch(ein_generic_kernel, (unsigned)blocks, CU_THREADS, 0, call->stream, ops, call->op.out[0].data, *p);
        CU_CHECK_LAUNCH(call, "einsum");
        return NULL;
    }
    char *scratch = (char *)call->scratch;
    const float *a = (const float *)call->op.in[st->product.swap ? 1 : 0].data;
    const float *b = (const float *)call->op.in[st->product.swap ? 0 : 1].data;
    float *c = (float *)call->op.out[0].data;
    if (st->product.perm_a.needed) {
        float *pa = (float *)(scratch + st->off_a);
        FG_TRY(launch_permute(call, &st->pp_a, a, pa));
        a = pa;
    }
    if (st->product.perm_b.needed) {
        float *pb = (float *)(scratch + st->off_b);
        FG_TRY(launch_permute(call, &st->pp_b, b, pb));
        b = pb;
    }
    float *prod = st->product.perm_c.needed ? (float *)(scratch + st->off_c) : c;
    FG_TRY(mm_exec_blas(call, &st->exec, a, b, prod, scratch));
    if (st->product.perm_c.needed)
        FG_TRY(launch_permute(call, &st->pp_c, prod, c));
    return NULL;
}

/* ------------------------------------------------------------ table */

extern "C" const cuda_op_def cuda_family_matmul[] = {
    {"MatMul", matmul_prepare, mm_run, mm_release},
    {"Gemm", gemm_prepare, mm_run, mm_release},
    {"Einsum", einsum_prepare, einsum_run, einsum_release},
    {NULL, NULL, NULL, NULL},
};
