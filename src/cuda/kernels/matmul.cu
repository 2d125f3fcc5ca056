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

#include <limits.h>
#include <stdio.h>

#define MM_ALIGN 256
#define MM_CUBLAS_WORKSPACE ((size_t)32 << 20) /* cuBLAS's recommendation for Hopper */

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

/* ------------------------------------------------------------ layout (as src/ops/matmul.c) */

typedef struct mm_layout {
    int64_t M, N, K;
    int64_t batch;            /* inner batch count */
    int64_t a_bs, a_rs, a_cs; /* A(b,m,k) = a[b*a_bs + m*a_rs + k*a_cs]; a_bs 0: broadcast */
    int64_t b_bs, b_rs, b_cs; /* B(b,k,n) = b[b*b_bs + k*b_rs + n*b_cs] */
    int64_t c_bs, c_rs;       /* C(b,m,n) = c[b*c_bs + m*c_rs + n] */
    int outer_rank;           /* outer loop over broadcast batch dims */
    int64_t outer_dims[FG_MAX_RANK];
    int64_t outer_a[FG_MAX_RANK], outer_b[FG_MAX_RANK], outer_c[FG_MAX_RANK];
    float alpha, beta;
} mm_layout;

static int64_t mm_outer_count(const mm_layout *l)
{
    int64_t n = 1;
    for (int d = 0; d < l->outer_rank; d++)
        n *= l->outer_dims[d];
    return n;
}

static void mm_outer_offsets(const mm_layout *l, int64_t index, int64_t *oa, int64_t *ob, int64_t *oc)
{
    *oa = *ob = *oc = 0;
    for (int d = l->outer_rank - 1; d >= 0; d--) {
        int64_t i = index % l->outer_dims[d];
        index /= l->outer_dims[d];
        *oa += i * l->outer_a[d];
        *ob += i * l->outer_b[d];
        *oc += i * l->outer_c[d];
    }
}

static int mm_dtype_supported(fg_dtype t)
{
    switch (t) {
    case FG_FLOAT32: case FG_FLOAT16: case FG_FLOAT64: case FG_INT32: case FG_INT64: case FG_UINT32:
    case FG_UINT64:
        return 1;
    default:
        return 0;
    }
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

/* Stream, pointer mode, math mode and workspace for this call. */
static fg_status *blas_setup(cuda_call *call, void *workspace)
{
    cudaStream_t current = NULL;
    if (cublasGetStream(call->cublas, &current) != CUBLAS_STATUS_SUCCESS || current != call->stream)
        BLAS_TRY(call, cublasSetStream(call->cublas, call->stream), "stream");
    BLAS_TRY(call, cublasSetPointerMode(call->cublas, CUBLAS_POINTER_MODE_HOST), "pointer mode");
    BLAS_TRY(call,
             cublasSetMathMode(call->cublas, call->allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH),
             "math mode");
    BLAS_TRY(call, cublasSetWorkspace(call->cublas, workspace, MM_CUBLAS_WORKSPACE), "workspace");
    return NULL;
}

/* c = alpha * a @ b (beta 0) on cuBLAS. */
static fg_status *mm_exec_blas(cuda_call *call, const mm_exec *e, const void *a, const void *b, void *c,
                               void *workspace)
{
    FG_TRY(blas_setup(call, workspace));
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
    mm_generic_kernel<<<(unsigned)blocks, CU_THREADS, 0, call->stream>>>(a, b, c_data, c, p);
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
        mm_act_vec4_kernel<<<cu_blocks(total / 4), CU_THREADS, 0, call->stream>>>((float4 *)y,
                                                                                   (uint32_t)(total / 4), act);
    } else {
        mm_epilogue_kernel<<<cu_blocks(total), CU_THREADS, 0, call->stream>>>(y, c, (uint32_t)N, c_rs, c_cs, beta,
                                                                               (uint32_t)total, act);
    }
    CU_CHECK_LAUNCH(call, "matrix product epilogue");
    return NULL;
}

/* ------------------------------------------------------------ MatMul / Gemm */

typedef struct mm_state {
    mm_exec exec;
    int is_gemm;
    int empty;
} mm_state;

static void mm_release(void *state)
{
    mm_state *s = (mm_state *)state;
    if (!s)
        return;
    mm_exec_release(&s->exec);
    free(s);
}

static fg_status *matmul_layout(const op_call *call, mm_layout *l)
{
    if (call->n_in < 2)
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "expects 2 inputs, got %d", call->n_in);
    const fg_tensor *a = &call->in[0], *b = &call->in[1];
    if (a->dtype != b->dtype)
        return op_error(call, FG_ERR_DTYPE, "inputs have different element types (%s and %s)",
                        fg_dtype_name(a->dtype), fg_dtype_name(b->dtype));
    if (!mm_dtype_supported(a->dtype))
        return op_error(call, FG_ERR_UNSUPPORTED, "element type %s is not supported", fg_dtype_name(a->dtype));
    if (a->rank < 1 || b->rank < 1)
        return op_error(call, FG_ERR_SHAPE, "inputs must have rank >= 1 (got %d and %d)", a->rank, b->rank);
    int64_t M = a->rank >= 2 ? a->dims[a->rank - 2] : 1;
    int64_t K = a->dims[a->rank - 1];
    int64_t Kb = b->rank >= 2 ? b->dims[b->rank - 2] : b->dims[0];
    int64_t N = b->rank >= 2 ? b->dims[b->rank - 1] : 1;
    if (K != Kb)
        return op_error(call, FG_ERR_SHAPE, "inner dimensions do not match (%lld and %lld)", (long long)K,
                        (long long)Kb);
    int ab = a->rank > 2 ? a->rank - 2 : 0, bb = b->rank > 2 ? b->rank - 2 : 0;
    int nb = ab > bb ? ab : bb;
    int64_t bdims[FG_MAX_RANK], adims_p[FG_MAX_RANK], bdims_p[FG_MAX_RANK];
    for (int d = 0; d < nb; d++) {
        int64_t x = d - (nb - ab) >= 0 ? a->dims[d - (nb - ab)] : 1;
        int64_t y = d - (nb - bb) >= 0 ? b->dims[d - (nb - bb)] : 1;
        adims_p[d] = x, bdims_p[d] = y;
        if (x != y && x != 1 && y != 1)
            return op_error(call, FG_ERR_SHAPE, "batch dimensions cannot be broadcast (%lld and %lld)",
                            (long long)x, (long long)y);
        bdims[d] = x == 1 ? y : x;
    }
    memset(l, 0, sizeof *l);
    l->M = M, l->N = N, l->K = K, l->alpha = 1.0f, l->beta = 0.0f;
    l->a_rs = K, l->a_cs = 1;
    l->b_rs = b->rank >= 2 ? N : 1, l->b_cs = 1;
    l->c_rs = N;
    int64_t a_batch = 1, b_batch = 1, o_batch = 1;
    int same = 1;
    for (int d = 0; d < nb; d++) {
        a_batch *= adims_p[d], b_batch *= bdims_p[d], o_batch *= bdims[d];
        same &= adims_p[d] == bdims_p[d];
    }
    if (b_batch == 1) { /* weights: fold A's batch into M */
        l->M = M * a_batch;
        l->batch = 1;
    } else if (same || a_batch == 1) {
        l->batch = o_batch;
        l->a_bs = a_batch == 1 && !same ? 0 : M * K;
        l->b_bs = K * N;
        l->c_bs = M * N;
    } else { /* general broadcasting: outer index space over the batch dims */
        l->batch = 1;
        l->outer_rank = nb;
        int64_t sa = M * K, sb = K * N, sc = M * N;
        for (int d = nb - 1; d >= 0; d--) {
            l->outer_dims[d] = bdims[d];
            l->outer_a[d] = adims_p[d] == 1 ? 0 : sa;
            l->outer_b[d] = bdims_p[d] == 1 ? 0 : sb;
            l->outer_c[d] = sc;
            sa *= adims_p[d], sb *= bdims_p[d], sc *= bdims[d];
        }
    }
    return NULL;
}

static fg_status *gemm_layout(const op_call *call, mm_layout *l)
{
    if (call->n_in < 2)
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "expects at least 2 inputs, got %d", call->n_in);
    const fg_tensor *a = &call->in[0], *b = &call->in[1];
    if (a->dtype != b->dtype)
        return op_error(call, FG_ERR_DTYPE, "A and B have different element types (%s and %s)",
                        fg_dtype_name(a->dtype), fg_dtype_name(b->dtype));
    if (!mm_dtype_supported(a->dtype))
        return op_error(call, FG_ERR_UNSUPPORTED, "element type %s is not supported", fg_dtype_name(a->dtype));
    if (a->rank != 2 || b->rank != 2)
        return op_error(call, FG_ERR_SHAPE, "A and B must be 2-D (got rank %d and %d)", a->rank, b->rank);
    int trans_a = ir_attr_int(call->node, "transA", 0) != 0;
    int trans_b = ir_attr_int(call->node, "transB", 0) != 0;
    int64_t M = trans_a ? a->dims[1] : a->dims[0];
    int64_t K = trans_a ? a->dims[0] : a->dims[1];
    int64_t Kb = trans_b ? b->dims[1] : b->dims[0];
    int64_t N = trans_b ? b->dims[0] : b->dims[1];
    if (K != Kb)
        return op_error(call, FG_ERR_SHAPE, "inner dimensions do not match (%lld and %lld)", (long long)K,
                        (long long)Kb);
    if (op_has_input(call, 2)) {
        const fg_tensor *c = &call->in[2];
        if (c->dtype != a->dtype)
            return op_error(call, FG_ERR_DTYPE, "C has element type %s, A has %s", fg_dtype_name(c->dtype),
                            fg_dtype_name(a->dtype));
        int ok = c->rank <= 2;
        if (ok && c->rank >= 1 && c->dims[c->rank - 1] != 1 && c->dims[c->rank - 1] != N)
            ok = 0;
        if (ok && c->rank == 2 && c->dims[0] != 1 && c->dims[0] != M)
            ok = 0;
        if (!ok)
            return op_error(call, FG_ERR_SHAPE, "C cannot be broadcast to %lldx%lld", (long long)M, (long long)N);
    }
    memset(l, 0, sizeof *l);
    l->M = M, l->N = N, l->K = K, l->batch = 1;
    l->a_rs = trans_a ? 1 : K, l->a_cs = trans_a ? M : 1;
    l->b_rs = trans_b ? 1 : N, l->b_cs = trans_b ? K : 1;
    l->c_rs = N;
    l->alpha = ir_attr_float(call->node, "alpha", 1.0f);
    l->beta = op_has_input(call, 2) ? ir_attr_float(call->node, "beta", 1.0f) : 0.0f;
    return NULL;
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
    FG_TRY(is_gemm ? gemm_layout(&call->op, &l) : matmul_layout(&call->op, &l));
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
        call->op.scratch_bytes = MM_CUBLAS_WORKSPACE;
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
    const fg_tensor *c_in = s->is_gemm && op_has_input(&call->op, 2) ? &call->op.in[2] : NULL;
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

#define EIN_MAX_OPERANDS 8
#define EIN_LABELS 64 /* a-z: 0-25, A-Z: 26-51, ellipsis dims: 52.. */
#define EIN_ELLIPSIS_BASE 52
#define EIN_GPU_MAX_SUM 16

typedef struct einsum_spec {
    int n_ops;
    int rank[EIN_MAX_OPERANDS];
    int labels[EIN_MAX_OPERANDS][FG_MAX_RANK];
    int out_rank;
    int out_labels[FG_MAX_RANK];
    int64_t size[EIN_LABELS];
    int n_sum;
    int sum_labels[EIN_LABELS];
} einsum_spec;

static int ein_letter(char ch)
{
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a';
    if (ch >= 'A' && ch <= 'Z')
        return 26 + (ch - 'A');
    return -1;
}

static fg_status *einsum_parse(const op_call *call, einsum_spec *s)
{
    const char *eq_attr = ir_attr_string(call->node, "equation", NULL);
    if (!eq_attr)
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "the 'equation' attribute is missing");
    char eq[256];
    size_t n = 0;
    for (const char *p = eq_attr; *p && n + 1 < sizeof eq; p++)
        if (*p != ' ' && *p != '\t')
            eq[n++] = *p;
    eq[n] = 0;
    memset(s, 0, sizeof *s);
    for (int i = 0; i < EIN_LABELS; i++)
        s->size[i] = -1;
    char *arrow = strstr(eq, "->");
    char *rhs = NULL;
    if (arrow) {
        *arrow = 0;
        rhs = arrow + 2;
    }
    if (call->n_in > EIN_MAX_OPERANDS)
        return op_error(call, FG_ERR_UNSUPPORTED, "at most %d operands are supported", EIN_MAX_OPERANDS);
    int ell_rank[EIN_MAX_OPERANDS] = {0};
    int ell_pos[EIN_MAX_OPERANDS];
    char *term = eq;
    int op = 0, max_ell = 0;
    for (;;) {
        char *comma = strchr(term, ',');
        if (comma)
            *comma = 0;
        if (op >= call->n_in)
            return op_error(call, FG_ERR_INVALID_ARGUMENT, "equation '%s' names more operands than the %d inputs",
                            eq_attr, call->n_in);
        int letters = 0;
        ell_pos[op] = -1;
        for (const char *p = term; *p; p++) {
            if (p[0] == '.' && p[1] == '.' && p[2] == '.') {
                if (ell_pos[op] >= 0)
                    return op_error(call, FG_ERR_INVALID_ARGUMENT, "equation '%s' has two ellipses in a term",
                                    eq_attr);
                ell_pos[op] = letters;
                p += 2;
            } else if (ein_letter(*p) >= 0) {
                letters++;
            } else {
                return op_error(call, FG_ERR_INVALID_ARGUMENT, "equation '%s' has an unexpected character '%c'",
                                eq_attr, *p);
            }
        }
        int rank = call->in[op].rank;
        if (ell_pos[op] < 0 ? letters != rank : letters > rank)
            return op_error(call, FG_ERR_SHAPE, "term %d of equation '%s' has %d labels but input %d has rank %d",
                            op, eq_attr, letters, op, rank);
        ell_rank[op] = ell_pos[op] < 0 ? 0 : rank - letters;
        if (ell_rank[op] > max_ell)
            max_ell = ell_rank[op];
        s->rank[op] = rank;
        int axis = 0;
        for (const char *p = term; *p; p++) {
            if (*p == '.') {
                for (int e = 0; e < ell_rank[op]; e++)
                    s->labels[op][axis++] = EIN_ELLIPSIS_BASE + (max_ell - ell_rank[op]) + e;
                p += 2;
            } else {
                s->labels[op][axis++] = ein_letter(*p);
            }
        }
        op++;
        if (!comma)
            break;
        term = comma + 1;
    }
    if (op != call->n_in)
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "equation '%s' names %d operands but the node has %d inputs",
                        eq_attr, op, call->n_in);
    s->n_ops = op;
    for (int t = 0; t < s->n_ops; t++)
        if (ell_pos[t] >= 0)
            for (int e = 0; e < ell_rank[t]; e++)
                s->labels[t][ell_pos[t] + e] = EIN_ELLIPSIS_BASE + (max_ell - ell_rank[t]) + e;
    int count[EIN_LABELS] = {0};
    for (int t = 0; t < s->n_ops; t++) {
        for (int d = 0; d < s->rank[t]; d++) {
            int lb = s->labels[t][d];
            int64_t sz = call->in[t].dims[d];
            count[lb]++;
            if (s->size[lb] < 0 || s->size[lb] == 1)
                s->size[lb] = sz;
            else if (sz != 1 && sz != s->size[lb])
                return op_error(call, FG_ERR_SHAPE, "equation '%s': a label has sizes %lld and %lld", eq_attr,
                                (long long)s->size[lb], (long long)sz);
        }
    }
    if (rhs) {
        int r = 0;
        for (const char *p = rhs; *p; p++) {
            if (p[0] == '.' && p[1] == '.' && p[2] == '.') {
                for (int e = 0; e < max_ell; e++) {
                    if (r >= FG_MAX_RANK)
                        return op_error(call, FG_ERR_UNSUPPORTED, "output rank exceeds %d", FG_MAX_RANK);
                    s->out_labels[r++] = EIN_ELLIPSIS_BASE + e;
                }
                p += 2;
                continue;
            }
            int lb = ein_letter(*p);
            if (lb < 0)
                return op_error(call, FG_ERR_INVALID_ARGUMENT, "equation '%s' has an unexpected character '%c'",
                                eq_attr, *p);
            if (!count[lb])
                return op_error(call, FG_ERR_INVALID_ARGUMENT,
                                "equation '%s': output label '%c' does not appear in any input", eq_attr, *p);
            for (int i = 0; i < r; i++)
                if (s->out_labels[i] == lb)
                    return op_error(call, FG_ERR_INVALID_ARGUMENT, "equation '%s': output label '%c' repeats",
                                    eq_attr, *p);
            if (r >= FG_MAX_RANK)
                return op_error(call, FG_ERR_UNSUPPORTED, "output rank exceeds %d", FG_MAX_RANK);
            s->out_labels[r++] = lb;
        }
        s->out_rank = r;
    } else {
        int r = 0;
        for (int e = 0; e < max_ell; e++)
            s->out_labels[r++] = EIN_ELLIPSIS_BASE + e;
        for (char ch = 'A'; ch <= 'z'; ch++) {
            int lb = ein_letter(ch);
            if (lb >= 0 && count[lb] == 1) {
                if (r >= FG_MAX_RANK)
                    return op_error(call, FG_ERR_UNSUPPORTED, "output rank exceeds %d", FG_MAX_RANK);
                s->out_labels[r++] = lb;
            }
        }
        s->out_rank = r;
    }
    int in_out[EIN_LABELS] = {0};
    for (int i = 0; i < s->out_rank; i++)
        in_out[s->out_labels[i]] = 1;
    for (int lb = 0; lb < EIN_LABELS; lb++)
        if (count[lb] && !in_out[lb])
            s->sum_labels[s->n_sum++] = lb;
    return NULL;
}

/* Element strides of an input per label (repeated labels walk the diagonal;
 * 0 for labels it lacks or broadcasts). */
static void ein_label_strides(const einsum_spec *s, const fg_tensor *t, int op, int64_t *strides)
{
    for (int lb = 0; lb < EIN_LABELS; lb++)
        strides[lb] = 0;
    int64_t st = 1;
    for (int d = s->rank[op] - 1; d >= 0; d--) {
        if (t->dims[d] != 1)
            strides[s->labels[op][d]] += st;
        st *= t->dims[d];
    }
}

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

typedef struct ein_permute {
    int needed;
    int rank;
    int64_t dims[FG_MAX_RANK];
    int64_t src_strides[FG_MAX_RANK];
} ein_permute;

typedef struct ein_permute_params {
    cu_map map;
    uint32_t total;
} ein_permute_params;

/* dst (contiguous) = src read through the map's operand-0 strides. */
__global__ void ein_permute_kernel(const float *src, float *dst, ein_permute_params p)
{
    CU_LOOP(i, p.total)
    {
        dst[i] = src[cu_map_offset0(p.map, i)];
    }
}

typedef struct einsum_state {
    einsum_spec spec;
    int fast;
    int empty;
    int swap;                              /* operand 1 plays A */
    ein_permute perm_a, perm_b, perm_c;
    ein_permute_params pp_a, pp_b, pp_c;
    size_t off_a, off_b, off_c;            /* scratch offsets (after the cuBLAS workspace) */
    mm_exec exec;
    ein_generic_params gp;
} einsum_state;

static int ein_order_is(const einsum_spec *s, int t, const int *want, int n)
{
    if (s->rank[t] != n)
        return 0;
    for (int i = 0; i < n; i++)
        if (s->labels[t][i] != want[i])
            return 0;
    return 1;
}

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
    const einsum_spec *s = &st->spec;
    if (s->n_ops != 2 || call->op.in[0].dtype != FG_FLOAT32)
        return;
    int where[EIN_LABELS] = {0};
    for (int t = 0; t < 2; t++) {
        for (int d = 0; d < s->rank[t]; d++) {
            int lb = s->labels[t][d];
            if (where[lb] & (1 << t))
                return; /* diagonal */
            if (call->op.in[t].dims[d] != s->size[lb])
                return; /* broadcast */
            where[lb] |= 1 << t;
        }
    }
    for (int i = 0; i < s->out_rank; i++)
        where[s->out_labels[i]] |= 4;
    int batch[FG_MAX_RANK], nbatch = 0, mk[2][FG_MAX_RANK], nmk[2] = {0, 0}, kc[FG_MAX_RANK], nkc = 0;
    int first_free = -1;
    for (int i = 0; i < s->out_rank; i++) {
        int lb = s->out_labels[i];
        if ((where[lb] & 3) == 3) {
            batch[nbatch++] = lb;
        } else {
            int t = (where[lb] & 1) ? 0 : 1;
            mk[t][nmk[t]++] = lb;
            if (first_free < 0)
                first_free = t;
        }
    }
    for (int lb = 0; lb < EIN_LABELS; lb++)
        if (where[lb] && where[lb] != 3 && !(where[lb] & 4))
            return; /* summed within one operand only */
    int ta = first_free == 1 ? 1 : 0, tb = 1 - ta;
    for (int d = 0; d < s->rank[ta]; d++)
        if (where[s->labels[ta][d]] == 3)
            kc[nkc++] = s->labels[ta][d];
    int64_t Bt = 1, M = 1, N = 1, K = 1;
    for (int i = 0; i < nbatch; i++)
        Bt *= s->size[batch[i]];
    for (int i = 0; i < nmk[ta]; i++)
        M *= s->size[mk[ta][i]];
    for (int i = 0; i < nmk[tb]; i++)
        N *= s->size[mk[tb][i]];
    for (int i = 0; i < nkc; i++)
        K *= s->size[kc[i]];
    if (Bt == 0 || M == 0 || N == 0 || K == 0)
        return;

    mm_layout l;
    memset(&l, 0, sizeof l);
    l.M = M, l.N = N, l.K = K, l.batch = Bt, l.alpha = 1.0f;
    int order[FG_MAX_RANK], n;
    int a_normal[FG_MAX_RANK];
    n = 0;
    memcpy(a_normal + n, batch, sizeof(int) * nbatch), n += nbatch;
    memcpy(a_normal + n, mk[ta], sizeof(int) * nmk[ta]), n += nmk[ta];
    memcpy(a_normal + n, kc, sizeof(int) * nkc), n += nkc;
    int na = n;
    memcpy(order, batch, sizeof(int) * nbatch);
    n = nbatch;
    memcpy(order + n, kc, sizeof(int) * nkc), n += nkc;
    memcpy(order + n, mk[ta], sizeof(int) * nmk[ta]), n += nmk[ta];
    l.a_bs = M * K;
    if (ein_order_is(s, ta, a_normal, na)) {
        l.a_rs = K, l.a_cs = 1;
    } else if (ein_order_is(s, ta, order, n)) {
        l.a_rs = 1, l.a_cs = M;
    } else {
        l.a_rs = K, l.a_cs = 1;
        st->perm_a.needed = 1;
        st->perm_a.rank = na;
        int64_t str[EIN_LABELS];
        ein_label_strides(s, &call->op.in[ta], ta, str);
        for (int i = 0; i < na; i++) {
            st->perm_a.dims[i] = s->size[a_normal[i]];
            st->perm_a.src_strides[i] = str[a_normal[i]];
        }
    }
    int b_normal[FG_MAX_RANK];
    n = 0;
    memcpy(b_normal + n, batch, sizeof(int) * nbatch), n += nbatch;
    memcpy(b_normal + n, kc, sizeof(int) * nkc), n += nkc;
    memcpy(b_normal + n, mk[tb], sizeof(int) * nmk[tb]), n += nmk[tb];
    int nbn = n;
    n = nbatch;
    memcpy(order, batch, sizeof(int) * nbatch);
    memcpy(order + n, mk[tb], sizeof(int) * nmk[tb]), n += nmk[tb];
    memcpy(order + n, kc, sizeof(int) * nkc), n += nkc;
    l.b_bs = K * N;
    if (ein_order_is(s, tb, b_normal, nbn)) {
        l.b_rs = N, l.b_cs = 1;
    } else if (ein_order_is(s, tb, order, n)) {
        l.b_rs = 1, l.b_cs = K;
    } else {
        l.b_rs = N, l.b_cs = 1;
        st->perm_b.needed = 1;
        st->perm_b.rank = nbn;
        int64_t str[EIN_LABELS];
        ein_label_strides(s, &call->op.in[tb], tb, str);
        for (int i = 0; i < nbn; i++) {
            st->perm_b.dims[i] = s->size[b_normal[i]];
            st->perm_b.src_strides[i] = str[b_normal[i]];
        }
    }
    l.c_bs = M * N, l.c_rs = N;
    int c_order[FG_MAX_RANK];
    n = 0;
    memcpy(c_order + n, batch, sizeof(int) * nbatch), n += nbatch;
    memcpy(c_order + n, mk[ta], sizeof(int) * nmk[ta]), n += nmk[ta];
    memcpy(c_order + n, mk[tb], sizeof(int) * nmk[tb]), n += nmk[tb];
    int same = n == s->out_rank;
    for (int i = 0; same && i < n; i++)
        same = c_order[i] == s->out_labels[i];
    if (!same) {
        int64_t cstr[EIN_LABELS] = {0};
        int64_t acc = 1;
        for (int i = n - 1; i >= 0; i--) {
            cstr[c_order[i]] = acc;
            acc *= s->size[c_order[i]];
        }
        st->perm_c.needed = 1;
        st->perm_c.rank = s->out_rank;
        for (int i = 0; i < s->out_rank; i++) {
            st->perm_c.dims[i] = s->size[s->out_labels[i]];
            st->perm_c.src_strides[i] = cstr[s->out_labels[i]];
        }
    }
    mm_exec_plan(&st->exec, &l, FG_FLOAT32);
    if (!st->exec.use_blas || st->exec.ptr_count)
        return;
    if ((st->perm_a.needed && ein_permute_build(&st->perm_a, &st->pp_a) != 0) ||
        (st->perm_b.needed && ein_permute_build(&st->perm_b, &st->pp_b) != 0) ||
        (st->perm_c.needed && ein_permute_build(&st->perm_c, &st->pp_c) != 0))
        return;
    st->swap = ta == 1;
    size_t off = MM_CUBLAS_WORKSPACE;
    st->off_a = off;
    off += st->perm_a.needed ? mm_align((size_t)(Bt * M * K) * sizeof(float)) : 0;
    st->off_b = off;
    off += st->perm_b.needed ? mm_align((size_t)(Bt * K * N) * sizeof(float)) : 0;
    st->off_c = off;
    off += st->perm_c.needed ? mm_align((size_t)(Bt * M * N) * sizeof(float)) : 0;
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
    if (call->op.n_in < 1)
        return op_error(&call->op, FG_ERR_INVALID_ARGUMENT, "expects at least one input");
    for (int i = 0; i < call->op.n_in; i++)
        if (call->op.in[i].dtype != call->op.in[0].dtype)
            return op_error(&call->op, FG_ERR_DTYPE, "inputs have different element types (%s and %s)",
                            fg_dtype_name(call->op.in[0].dtype), fg_dtype_name(call->op.in[i].dtype));
    if (!mm_dtype_supported(call->op.in[0].dtype))
        return op_error(&call->op, FG_ERR_UNSUPPORTED, "element type %s is not supported",
                        fg_dtype_name(call->op.in[0].dtype));
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
    ein_permute_kernel<<<cu_blocks(pp->total), CU_THREADS, 0, call->stream>>>(src, dst, *pp);
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
        ein_generic_kernel<<<(unsigned)blocks, CU_THREADS, 0, call->stream>>>(ops, call->op.out[0].data, *p);
        CU_CHECK_LAUNCH(call, "einsum");
        return NULL;
    }
    char *scratch = (char *)call->scratch;
    const float *a = (const float *)call->op.in[st->swap ? 1 : 0].data;
    const float *b = (const float *)call->op.in[st->swap ? 0 : 1].data;
    float *c = (float *)call->op.out[0].data;
    if (st->perm_a.needed) {
        float *pa = (float *)(scratch + st->off_a);
        FG_TRY(launch_permute(call, &st->pp_a, a, pa));
        a = pa;
    }
    if (st->perm_b.needed) {
        float *pb = (float *)(scratch + st->off_b);
        FG_TRY(launch_permute(call, &st->pp_b, b, pb));
        b = pb;
    }
    float *prod = st->perm_c.needed ? (float *)(scratch + st->off_c) : c;
    FG_TRY(mm_exec_blas(call, &st->exec, a, b, prod, scratch));
    if (st->perm_c.needed)
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
