/* Host-side logic of the matrix products shared by the CPU kernels
 * (src/ops/matmul.c) and the CUDA kernels (src/cuda/kernels/matmul.cu):
 * MatMul / Gemm shape checks and their strided batched layout (numpy batch
 * broadcasting included), and Einsum's equation parsing and its
 * decomposition into permutations + one batched matrix product. */
#ifndef FACEGRAPH_OPS_MATMUL_LAYOUT_H
#define FACEGRAPH_OPS_MATMUL_LAYOUT_H

#include "ops/op.h"

/* C(b,m,n) = alpha * sum_k A(b,m,k) B(b,k,n) [+ beta C(b,m,n)], optionally
 * repeated over an outer index space with its own strides. */
typedef struct mm_layout {
    int64_t M, N, K;
    int64_t batch;            /* inner batch count */
    int64_t a_bs, a_rs, a_cs; /* A(b,m,k) = a[b*a_bs + m*a_rs + k*a_cs]; a_bs 0: broadcast */
    int64_t b_bs, b_rs, b_cs; /* B(b,k,n) = b[b*b_bs + k*b_rs + n*b_cs] */
    int64_t c_bs, c_rs;       /* C(b,m,n) = c[b*c_bs + m*c_rs + n] */
    int outer_rank;           /* outer loop over broadcast batch dims */
    int64_t outer_dims[FG_MAX_RANK];
    int64_t outer_a[FG_MAX_RANK], outer_b[FG_MAX_RANK], outer_c[FG_MAX_RANK];
    float alpha, beta;        /* beta != 0: C is accumulated into (caller pre-fills C) */
} mm_layout;

/* Elements of the outer index space (1 without one). */
int64_t mm_outer_count(const mm_layout *l);
/* Offsets of A, B and C for outer index `index`. */
void mm_outer_offsets(const mm_layout *l, int64_t index, int64_t *oa, int64_t *ob, int64_t *oc);
/* 1 for the element types the products accept. */
int mm_dtype_supported(fg_dtype t);

/* MatMul: input count, element types and ranks. */
fg_status *matmul_check_inputs(const op_call *call);
/* MatMul's layout (and output shape when out != NULL); inputs checked by
 * matmul_check_inputs. */
fg_status *matmul_layout(const op_call *call, mm_layout *l, fg_tensor *out);
/* Gemm's checks and layout (and output shape when out != NULL). */
fg_status *gemm_layout(const op_call *call, mm_layout *l, fg_tensor *out);

#define EIN_MAX_OPERANDS 8
#define EIN_LABELS 64       /* a-z: 0-25, A-Z: 26-51, ellipsis dims: 52.. */
#define EIN_ELLIPSIS_BASE 52

typedef struct einsum_spec {
    int n_ops;
    int rank[EIN_MAX_OPERANDS];
    int labels[EIN_MAX_OPERANDS][FG_MAX_RANK];
    int out_rank;
    int out_labels[FG_MAX_RANK];
    int64_t size[EIN_LABELS];
    int n_sum;                 /* labels summed over (in inputs, not in output) */
    int sum_labels[EIN_LABELS];
} einsum_spec;

/* Parses the equation attribute against the input shapes. */
fg_status *einsum_parse(const op_call *call, einsum_spec *s);
/* Input count and element types. */
fg_status *einsum_check_dtypes(const op_call *call);
/* Contiguous element strides of an input, summed per label (repeated labels
 * walk the diagonal); 0 for labels the input lacks or broadcasts. */
void ein_label_strides(const einsum_spec *s, const fg_tensor *t, int op, int64_t *strides);

/* A copy of an operand into contiguous order: dims in the new order and the
 * source's element stride along each. */
typedef struct ein_permute {
    int needed;
    int rank;
    int64_t dims[FG_MAX_RANK];
    int64_t src_strides[FG_MAX_RANK];
} ein_permute;

/* Two float32 operands contracted as a batched matrix product. Operand X is
 * copied into [batch, M, K] order unless its own layout is already
 * [batch, M, K] or [batch, K, M]; the product lands in [batch, M, N] and is
 * permuted into the output order unless that is the same. */
typedef struct einsum_matmul_plan {
    int swap; /* operand 1 plays A */
    ein_permute perm_a, perm_b, perm_c;
    mm_layout layout;
} einsum_matmul_plan;

/* Fills plan and returns 1 when the contraction is such a product (two
 * float32 operands, no diagonals, no broadcasting, no label summed within
 * one operand only, nothing empty); returns 0 otherwise. */
int einsum_plan_matmul(const op_call *call, const einsum_spec *s, einsum_matmul_plan *plan);

#endif
