/* Matrix products: MatMul, Gemm, Einsum.
 *
 * Every product is described as a strided batched matrix multiply
 * (mm_layout): C(b,m,n) = alpha * sum_k A(b,m,k) B(b,k,n) [+ beta C(b,m,n)],
 * optionally repeated over an outer index space with its own strides (numpy
 * batch broadcasting that does not collapse into one batch). float32 runs on
 * a oneDNN matmul primitive made in prepare (user scratchpad, no allocation
 * in run); other dtypes, or shapes oneDNN declines, run on a generic loop. */
#include "ops/op.h"
#include "ops/matmul_layout.h"

#include "ops/dnnl_util.h"

#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ oneDNN glue */

/* The process-wide engine from dnnl_util (shared with conv); NULL when
 * oneDNN cannot make one (the generic kernels then run). */
static dnnl_engine_t mm_get_engine(const op_call *call)
{
    dnnl_engine_t eng = NULL;
    fg_status *st = dnnl_util_engine(call, &eng);
    if (st) {
        fg_status_free(st);
        return NULL;
    }
    return eng;
}

static int mm_threads(const op_call *call)
{
    return call->threads > 0 ? call->threads : omp_get_max_threads();
}

/* oneDNN (OpenMP build) uses omp_get_max_threads() of the calling thread:
 * primitives are made and run with it set to their thread count, then it is
 * restored. */
static void mm_threads_leave(int saved)
{
    omp_set_num_threads(saved);
}

/* ------------------------------------------------------------ layout */
static void mm_generic(const mm_layout *l, fg_dtype dtype, const void *a, const void *b, void *c, int threads)
{
    int64_t outer = mm_outer_count(l);
    int64_t rows = l->batch * l->M;
    for (int64_t o = 0; o < outer; o++) {
        int64_t oa, ob, oc;
        mm_outer_offsets(l, o, &oa, &ob, &oc);
        if (dtype == FG_FLOAT32) {
            const float *af = (const float *)a + oa;
            const float *bf = (const float *)b + ob;
            float *cf = (float *)c + oc;
#pragma omp parallel for num_threads(threads) if (rows * l->N * l->K > 32768) schedule(static)
            for (int64_t r = 0; r < rows; r++) {
                int64_t bi = r / l->M, m = r % l->M;
                float *crow = cf + bi * l->c_bs + m * l->c_rs;
                if (l->beta == 0.0f)
                    memset(crow, 0, (size_t)l->N * sizeof(float));
                else
                    for (int64_t n = 0; n < l->N; n++)
                        crow[n] *= l->beta;
                const float *arow = af + bi * l->a_bs + m * l->a_rs;
                const float *bmat = bf + bi * l->b_bs;
                for (int64_t k = 0; k < l->K; k++) {
                    float av = l->alpha * arow[k * l->a_cs];
                    const float *brow = bmat + k * l->b_rs;
                    if (l->b_cs == 1)
                        for (int64_t n = 0; n < l->N; n++)
                            crow[n] += av * brow[n];
                    else
                        for (int64_t n = 0; n < l->N; n++)
                            crow[n] += av * brow[n * l->b_cs];
                }
            }
        } else {
            int is_int = !(dtype == FG_FLOAT64 || dtype == FG_FLOAT16);
#pragma omp parallel for num_threads(threads) if (rows * l->N * l->K > 32768) schedule(static)
            for (int64_t r = 0; r < rows; r++) {
                int64_t bi = r / l->M, m = r % l->M;
                int64_t crow = oc + bi * l->c_bs + m * l->c_rs;
                int64_t arow = oa + bi * l->a_bs + m * l->a_rs;
                int64_t bmat = ob + bi * l->b_bs;
                for (int64_t n = 0; n < l->N; n++) {
                    double v;
                    if (is_int && l->alpha == 1.0f && l->beta == 0.0f) {
                        int64_t acc = 0;
                        for (int64_t k = 0; k < l->K; k++)
                            acc += fg_load_i64(dtype, a, arow + k * l->a_cs) *
                                   fg_load_i64(dtype, b, bmat + k * l->b_rs + n * l->b_cs);
                        v = 0;
                        if (dtype == FG_INT64) {
                            ((int64_t *)c)[crow + n] = acc;
                            continue;
                        }
                        v = (double)acc;
                    } else {
                        double acc = 0;
                        for (int64_t k = 0; k < l->K; k++)
                            acc += fg_load_f64(dtype, a, arow + k * l->a_cs) *
                                   fg_load_f64(dtype, b, bmat + k * l->b_rs + n * l->b_cs);
                        v = l->alpha * acc;
                        if (l->beta != 0.0f)
                            v += l->beta * fg_load_f64(dtype, c, crow + n);
                    }
                    fg_store_f64(dtype, c, crow + n, v);
                }
            }
        }
    }
}

/* A oneDNN matmul primitive for a layout's inner (batched) product. */
typedef struct mm_prim {
    dnnl_primitive_t prim;
    dnnl_stream_t stream;
    dnnl_memory_t src, wei, dst, pad;
    size_t scratch_bytes;
    int threads;          /* OpenMP threads the primitive was made for */
    void *packed_weights; /* constant B reordered once in prepare (wei points at it) */
} mm_prim;

static void mm_prim_release(mm_prim *p)
{
    if (p->prim)
        dnnl_primitive_destroy(p->prim);
    if (p->src)
        dnnl_memory_destroy(p->src);
    if (p->wei)
        dnnl_memory_destroy(p->wei);
    if (p->dst)
        dnnl_memory_destroy(p->dst);
    if (p->pad)
        dnnl_memory_destroy(p->pad);
    if (p->stream)
        dnnl_stream_destroy(p->stream);
    fg_aligned_free(p->packed_weights);
    memset(p, 0, sizeof *p);
}

static int64_t mm_max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* Reorders constant weights into the layout the primitive prefers, into an
 * owned buffer. Returns 1 on success. */
static int mm_pack_weights(mm_prim *p, dnnl_engine_t eng, const dnnl_memory_desc_t *plain,
                           const dnnl_memory_desc_t *packed, const void *weights)
{
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t reorder = NULL;
    dnnl_memory_t from = NULL;
    int ok = 0;
    size_t bytes = dnnl_memory_desc_get_size(packed);
    p->packed_weights = fg_aligned_alloc(bytes ? bytes : 64);
    if (!p->packed_weights)
        return 0;
    if (dnnl_reorder_primitive_desc_create(&rpd, plain, eng, packed, eng, NULL) != dnnl_success ||
        dnnl_primitive_create(&reorder, rpd) != dnnl_success ||
        dnnl_memory_create(&from, plain, eng, (void *)weights) != dnnl_success ||
        dnnl_memory_create(&p->wei, packed, eng, p->packed_weights) != dnnl_success)
        goto done;
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, p->wei}};
    if (dnnl_primitive_execute(reorder, p->stream, 2, args) != dnnl_success ||
        dnnl_stream_wait(p->stream) != dnnl_success)
        goto done;
    ok = 1;
done:
    if (from)
        dnnl_memory_destroy(from);
    if (reorder)
        dnnl_primitive_destroy(reorder);
    if (rpd)
        dnnl_primitive_desc_destroy(rpd);
    return ok;
}

/* Implementation choice, measured on a 16-core AVX-512 Xeon (noisy host):
 * for plain (unpacked) f32 weights oneDNN's gemm-based matmul ("gemm:jit")
 * beats brgemm clearly (ViT 577x768x3072 at 2 threads: ~12 ms vs ~23 ms;
 * brgemm re-packs B on every call). For constant weights, packed once in
 * prepare, brgemm is about even at 2 threads and ahead from 4 threads up
 * (16 threads: ~2.5 ms vs ~3-4.4 ms). */
static const int mm_packed_brgemm_min_threads = 4;

static dnnl_primitive_desc_t mm_pick_impl(const dnnl_matmul_desc_t *desc, const_dnnl_primitive_attr_t attr,
                                          dnnl_engine_t eng, int prefer_gemm)
{
    dnnl_primitive_desc_iterator_t it = NULL;
    if (dnnl_primitive_desc_iterator_create(&it, desc, attr, eng, NULL) != dnnl_success)
        return NULL;
    dnnl_primitive_desc_t first = NULL, chosen = NULL;
    do {
        dnnl_primitive_desc_t pd = dnnl_primitive_desc_iterator_fetch(it);
        if (!pd)
            break;
        const char *name = "";
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name);
        if (!first) {
            first = pd;
            if (!prefer_gemm)
                break;
        } else if (!chosen && strncmp(name, "gemm", 4) == 0) {
            chosen = pd;
            break;
        } else {
            dnnl_primitive_desc_destroy(pd);
        }
        if (first == pd && strncmp(name, "gemm", 4) == 0)
            break;
    } while (dnnl_primitive_desc_iterator_next(it) == dnnl_success);
    dnnl_primitive_desc_iterator_destroy(it);
    if (chosen) {
        dnnl_primitive_desc_destroy(first);
        return chosen;
    }
    return first;
}

/* Threads worth using for a product of this size: small products lose more
 * to fork/join than they gain. */
static int mm_useful_threads(const op_call *call, const mm_layout *l)
{
    double flops = 2.0 * (double)l->M * (double)l->N * (double)l->K * (double)l->batch * (double)mm_outer_count(l);
    int t = (int)(flops / 4.0e6);
    int max = mm_threads(call);
    return t < 1 ? 1 : (t > max ? max : t);
}

/* Returns 1 when the primitive was made; 0 when oneDNN declines (the caller
 * falls back to mm_generic). const_weights: B's data when it is constant
 * (then packed once here and never read again), else NULL. */
static int mm_prim_create(const op_call *call, const mm_layout *l, mm_prim *p, const void *const_weights)
{
    memset(p, 0, sizeof *p);
    dnnl_engine_t eng = mm_get_engine(call);
    if (!eng || l->M <= 0 || l->N <= 0 || l->K <= 0 || l->batch <= 0)
        return 0;
    int nd = l->batch > 1 ? 3 : 2;
    dnnl_dims_t sd, ss, wd, ws, dd, ds;
    int i = 0;
    if (nd == 3) {
        sd[0] = l->a_bs ? l->batch : 1;
        ss[0] = l->a_bs ? l->a_bs : mm_max64(l->M * l->a_rs, l->K * l->a_cs);
        wd[0] = l->b_bs ? l->batch : 1;
        ws[0] = l->b_bs ? l->b_bs : mm_max64(l->K * l->b_rs, l->N * l->b_cs);
        dd[0] = l->batch;
        ds[0] = l->c_bs;
        i = 1;
    }
    sd[i] = l->M, sd[i + 1] = l->K, ss[i] = l->a_rs, ss[i + 1] = l->a_cs;
    wd[i] = l->K, wd[i + 1] = l->N, ws[i] = l->b_rs, ws[i + 1] = l->b_cs;
    dd[i] = l->M, dd[i + 1] = l->N, ds[i] = l->c_rs, ds[i + 1] = 1;
    /* strides of unit dims do not address anything; keep them plausible */
    if (l->M == 1)
        ss[i] = l->K * l->a_cs, ds[i] = l->N;
    if (l->N == 1)
        ws[i + 1] = 1;

    dnnl_memory_desc_t smd, wmd, dmd, wmd_any;
    if (dnnl_memory_desc_init_by_strides(&smd, nd, sd, dnnl_f32, ss) != dnnl_success ||
        dnnl_memory_desc_init_by_strides(&wmd, nd, wd, dnnl_f32, ws) != dnnl_success ||
        dnnl_memory_desc_init_by_strides(&dmd, nd, dd, dnnl_f32, ds) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&wmd_any, nd, wd, dnnl_f32, dnnl_format_tag_any) != dnnl_success)
        return 0;
    /* packing pays off for constant weights of a single product */
    int pack = const_weights && l->outer_rank == 0 && (nd == 2 || l->b_bs != 0);
    dnnl_matmul_desc_t desc;
    if (dnnl_matmul_desc_init(&desc, &smd, pack ? &wmd_any : &wmd, NULL, &dmd) != dnnl_success)
        return 0;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    int ok = 0;
    int saved = omp_get_max_threads();
    p->threads = mm_useful_threads(call, l);
    omp_set_num_threads(p->threads);
    if (dnnl_primitive_attr_create(&attr) != dnnl_success)
        goto done;
    if (dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) != dnnl_success)
        goto done;
    if (l->alpha != 1.0f && dnnl_primitive_attr_set_output_scales(attr, 1, 0, &l->alpha) != dnnl_success)
        goto done;
    if (l->beta != 0.0f) {
        if (dnnl_post_ops_create(&po) != dnnl_success || dnnl_post_ops_append_sum(po, l->beta) != dnnl_success ||
            dnnl_primitive_attr_set_post_ops(attr, po) != dnnl_success)
            goto done;
    }
    pd = mm_pick_impl(&desc, attr, eng, !(pack && p->threads >= mm_packed_brgemm_min_threads));
    if (!pd)
        goto done;
    if (dnnl_primitive_create(&p->prim, pd) != dnnl_success)
        goto done;
    const dnnl_memory_desc_t *pad_md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    p->scratch_bytes = pad_md ? dnnl_memory_desc_get_size(pad_md) : 0;
    if (dnnl_stream_create(&p->stream, eng, dnnl_stream_default_flags) != dnnl_success ||
        dnnl_memory_create(&p->src, &smd, eng, DNNL_MEMORY_NONE) != dnnl_success ||
        dnnl_memory_create(&p->dst, &dmd, eng, DNNL_MEMORY_NONE) != dnnl_success)
        goto done;
    const dnnl_memory_desc_t *chosen = pack ? dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0) : NULL;
    if (pack && !chosen)
        goto done;
    if (chosen && !dnnl_memory_desc_equal(chosen, &wmd)) {
        if (!mm_pack_weights(p, eng, &wmd, chosen, const_weights))
            goto done;
    } else if (dnnl_memory_create(&p->wei, &wmd, eng, DNNL_MEMORY_NONE) != dnnl_success) {
        goto done;
    }
    if (p->scratch_bytes && dnnl_memory_create(&p->pad, pad_md, eng, DNNL_MEMORY_NONE) != dnnl_success)
        goto done;
    ok = 1;
done:
    mm_threads_leave(saved);
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (po)
        dnnl_post_ops_destroy(po);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    if (!ok)
        mm_prim_release(p);
    return ok;
}

static fg_status *mm_prim_run(const op_call *call, const mm_prim *p, const mm_layout *l, const float *a,
                              const float *b, float *c, void *pad)
{
    int64_t outer = mm_outer_count(l);
    int saved = omp_get_max_threads();
    omp_set_num_threads(p->threads);
    dnnl_status_t st = dnnl_success;
    if (p->pad)
        st = dnnl_memory_set_data_handle_v2(p->pad, pad, p->stream);
    for (int64_t o = 0; o < outer && st == dnnl_success; o++) {
        int64_t oa, ob, oc;
        mm_outer_offsets(l, o, &oa, &ob, &oc);
        if ((st = dnnl_memory_set_data_handle_v2(p->src, (void *)(a + oa), p->stream)) != dnnl_success ||
            (!p->packed_weights &&
             (st = dnnl_memory_set_data_handle_v2(p->wei, (void *)(b + ob), p->stream)) != dnnl_success) ||
            (st = dnnl_memory_set_data_handle_v2(p->dst, c + oc, p->stream)) != dnnl_success)
            break;
        dnnl_exec_arg_t args[4] = {
            {DNNL_ARG_SRC, p->src}, {DNNL_ARG_WEIGHTS, p->wei}, {DNNL_ARG_DST, p->dst}, {DNNL_ARG_SCRATCHPAD, p->pad}};
        st = dnnl_primitive_execute(p->prim, p->stream, p->pad ? 4 : 3, args);
        if (st == dnnl_success)
            st = dnnl_stream_wait(p->stream);
    }
    mm_threads_leave(saved);
    if (st != dnnl_success)
        return op_error(call, FG_ERR_INTERNAL, "oneDNN matmul failed (status %d)", (int)st);
    return NULL;
}

/* y = act(y [+ bias along the last axis]) over n floats; bias (length
 * row) is MatMul's third input when the planner fused a following Add. */
static void mm_apply_epilogue(const op_call *call, float *data, int64_t n, const float *bias, int64_t row)
{
    if ((call->act.kind == OP_ACT_NONE && !bias) || n <= 0)
        return;
    int threads = mm_threads(call);
    if (bias) {
        int64_t rows = n / row;
#pragma omp parallel for num_threads(threads) if (n > 16384)
        for (int64_t r = 0; r < rows; r++) {
            float *y = data + r * row;
            for (int64_t j = 0; j < row; j++)
                y[j] += bias[j];
            op_activation_apply(&call->act, y, row);
        }
        return;
    }
    int64_t chunk = 16384;
    int64_t chunks = (n + chunk - 1) / chunk;
#pragma omp parallel for num_threads(threads) if (chunks > 1)
    for (int64_t i = 0; i < chunks; i++) {
        int64_t start = i * chunk;
        op_activation_apply(&call->act, data + start, (n - start) < chunk ? (n - start) : chunk);
    }
}

/* ------------------------------------------------------------ MatMul */

typedef struct matmul_state {
    mm_layout layout;
    mm_prim prim;
    int use_prim;
} matmul_state;

static fg_status *matmul_infer(op_call *call)
{
    FG_TRY(matmul_check_inputs(call));
    mm_layout l;
    return matmul_layout(call, &l, &call->out[0]);
}

static void matmul_release(void *state)
{
    matmul_state *s = state;
    if (!s)
        return;
    mm_prim_release(&s->prim);
    free(s);
}

static fg_status *matmul_prepare(op_call *call)
{
    FG_TRY(matmul_check_inputs(call));
    matmul_state *s = calloc(1, sizeof *s);
    if (!s)
        return op_error(call, FG_ERR_OUT_OF_MEMORY, "out of memory preparing the product");
    fg_status *st = matmul_layout(call, &s->layout, NULL);
    if (st) {
        free(s);
        return st;
    }
    if (call->in[0].dtype == FG_FLOAT32)
        s->use_prim = mm_prim_create(call, &s->layout, &s->prim, call->in[1].data);
    call->scratch_bytes = s->use_prim ? s->prim.scratch_bytes : 0;
    call->state = s;
    return NULL;
}

static fg_status *matmul_run(op_call *call)
{
    matmul_state *s = call->state;
    mm_layout local;
    const mm_layout *l;
    if (s) {
        l = &s->layout;
    } else {
        FG_TRY(matmul_check_inputs(call));
        FG_TRY(matmul_layout(call, &local, NULL));
        l = &local;
    }
    fg_tensor *out = &call->out[0];
    int64_t n_out = fg_tensor_numel(out);
    if (n_out == 0)
        return NULL;
    if (l->K == 0) {
        memset(out->data, 0, fg_tensor_nbytes(out));
    } else if (s && s->use_prim) {
        FG_TRY(mm_prim_run(call, &s->prim, l, call->in[0].data, call->in[1].data, out->data, call->scratch));
    } else {
        mm_generic(l, out->dtype, call->in[0].data, call->in[1].data, out->data, mm_threads(call));
    }
    const float *bias = call->n_in > 2 && call->in[2].data ? call->in[2].data : NULL; /* fused by the planner */
    if (out->dtype == FG_FLOAT32)
        mm_apply_epilogue(call, out->data, n_out, bias, out->dims[out->rank - 1]);
    return NULL;
}

/* ------------------------------------------------------------ Gemm */

typedef struct gemm_state {
    mm_layout layout;
    mm_prim prim;
    int use_prim;
} gemm_state;


static fg_status *gemm_infer(op_call *call)
{
    mm_layout l;
    return gemm_layout(call, &l, &call->out[0]);
}

static void gemm_release(void *state)
{
    gemm_state *s = state;
    if (!s)
        return;
    mm_prim_release(&s->prim);
    free(s);
}

static fg_status *gemm_prepare(op_call *call)
{
    gemm_state *s = calloc(1, sizeof *s);
    if (!s)
        return op_error(call, FG_ERR_OUT_OF_MEMORY, "out of memory preparing the product");
    fg_status *st = gemm_layout(call, &s->layout, NULL);
    if (st) {
        free(s);
        return st;
    }
    if (call->in[0].dtype == FG_FLOAT32)
        s->use_prim = mm_prim_create(call, &s->layout, &s->prim, call->in[1].data);
    call->scratch_bytes = s->use_prim ? s->prim.scratch_bytes : 0;
    call->state = s;
    return NULL;
}

/* Writes C broadcast to MxN into y (the value the product accumulates onto). */
static void gemm_fill_c(const fg_tensor *c, fg_tensor *y)
{
    int64_t M = y->dims[0], N = y->dims[1];
    size_t es = fg_dtype_size(y->dtype);
    int64_t cm = c->rank == 2 ? c->dims[0] : 1, cn = c->rank >= 1 ? c->dims[c->rank - 1] : 1;
    const char *src = c->data;
    char *dst = y->data;
    for (int64_t m = 0; m < M; m++) {
        const char *row = src + (size_t)(cm == 1 ? 0 : m) * cn * es;
        char *drow = dst + (size_t)m * N * es;
        if (cn == N) {
            memcpy(drow, row, (size_t)N * es);
        } else {
            for (int64_t n = 0; n < N; n++)
                memcpy(drow + n * es, row, es);
        }
    }
}

static fg_status *gemm_run(op_call *call)
{
    gemm_state *s = call->state;
    mm_layout local;
    const mm_layout *l;
    if (s) {
        l = &s->layout;
    } else {
        FG_TRY(gemm_layout(call, &local, NULL));
        l = &local;
    }
    fg_tensor *y = &call->out[0];
    int64_t n_out = fg_tensor_numel(y);
    if (n_out == 0)
        return NULL;
    if (l->beta != 0.0f)
        gemm_fill_c(&call->in[2], y);
    if (l->K == 0) {
        for (int64_t i = 0; i < n_out; i++)
            fg_store_f64(y->dtype, y->data, i, l->beta != 0.0f ? l->beta * fg_load_f64(y->dtype, y->data, i) : 0.0);
    } else if (s && s->use_prim) {
        FG_TRY(mm_prim_run(call, &s->prim, l, call->in[0].data, call->in[1].data, y->data, call->scratch));
    } else {
        mm_generic(l, y->dtype, call->in[0].data, call->in[1].data, y->data, mm_threads(call));
    }
    if (y->dtype == FG_FLOAT32)
        mm_apply_epilogue(call, y->data, n_out, NULL, 0);
    return NULL;
}

/* ------------------------------------------------------------ Einsum */


static fg_status *einsum_infer(op_call *call)
{
    FG_TRY(einsum_check_dtypes(call));
    einsum_spec s;
    FG_TRY(einsum_parse(call, &s));
    fg_tensor *out = &call->out[0];
    out->dtype = call->in[0].dtype;
    out->rank = s.out_rank;
    for (int i = 0; i < s.out_rank; i++)
        out->dims[i] = s.size[s.out_labels[i]];
    return NULL;
}
/* Generic evaluation: any operand count, diagonals, broadcasting. */
static void einsum_generic(const op_call *call, const einsum_spec *s)
{
    int64_t strides[EIN_MAX_OPERANDS][EIN_LABELS];
    for (int t = 0; t < s->n_ops; t++)
        ein_label_strides(s, &call->in[t], t, strides[t]);
    fg_tensor *out = &call->out[0];
    int64_t n_out = fg_tensor_numel(out);
    int64_t n_sum = 1;
    for (int i = 0; i < s->n_sum; i++)
        n_sum *= s->size[s->sum_labels[i]];
    fg_dtype dt = out->dtype;
    int n_ops = s->n_ops;
#pragma omp parallel for num_threads(mm_threads(call)) if (n_out * n_sum > 32768) schedule(static)
    for (int64_t o = 0; o < n_out; o++) {
        int64_t base[EIN_MAX_OPERANDS] = {0};
        int64_t rem = o;
        for (int d = s->out_rank - 1; d >= 0; d--) {
            int lb = s->out_labels[d];
            int64_t i = rem % s->size[lb];
            rem /= s->size[lb];
            for (int t = 0; t < n_ops; t++)
                base[t] += i * strides[t][lb];
        }
        double acc = 0;
        for (int64_t j = 0; j < n_sum; j++) {
            int64_t r = j;
            double prod = 1;
            for (int t = 0; t < n_ops; t++) {
                int64_t off = base[t];
                r = j;
                for (int d = s->n_sum - 1; d >= 0; d--) {
                    int lb = s->sum_labels[d];
                    off += (r % s->size[lb]) * strides[t][lb];
                    r /= s->size[lb];
                }
                prod *= fg_load_f64(dt, call->in[t].data, off);
            }
            acc += prod;
        }
        fg_store_f64(dt, out->data, o, acc);
    }
}

typedef struct einsum_state {
    einsum_spec spec;
    int fast;
    einsum_matmul_plan product; /* the fast path's permutations and product */
    size_t off_a, off_b, off_c, off_pad; /* scratch offsets */
    mm_prim prim;
    int use_prim;
} einsum_state;

static void ein_permute_run(const ein_permute *p, const float *src, float *dst, int threads)
{
    int r = p->rank;
    int64_t inner = r ? p->dims[r - 1] : 1;
    int64_t inner_stride = r ? p->src_strides[r - 1] : 1;
    int64_t rows = 1;
    for (int d = 0; d < r - 1; d++)
        rows *= p->dims[d];
#pragma omp parallel for num_threads(threads) if (rows * inner > 65536) schedule(static)
    for (int64_t row = 0; row < rows; row++) {
        int64_t rem = row, off = 0;
        for (int d = r - 2; d >= 0; d--) {
            off += (rem % p->dims[d]) * p->src_strides[d];
            rem /= p->dims[d];
        }
        float *drow = dst + row * inner;
        const float *srow = src + off;
        for (int64_t i = 0; i < inner; i++)
            drow[i] = srow[i * inner_stride];
    }
}

static size_t ein_align(size_t x)
{
    return (x + 63) & ~(size_t)63;
}

/* Fast path: two float32 operands as a batched matrix product (see
 * einsum_plan_matmul), on the oneDNN primitive when it takes the layout. */
static void einsum_plan_fast(op_call *call, einsum_state *st)
{
    if (!einsum_plan_matmul(call, &st->spec, &st->product))
        return;
    const mm_layout *l = &st->product.layout;
    int64_t Bt = l->batch, M = l->M, N = l->N, K = l->K;
    st->fast = 1;
    st->use_prim = mm_prim_create(call, l, &st->prim, NULL);
    size_t off = 0;
    st->off_pad = off;
    off += ein_align(st->use_prim ? st->prim.scratch_bytes : 0);
    st->off_a = off;
    off += st->product.perm_a.needed ? ein_align((size_t)(Bt * M * K) * sizeof(float)) : 0;
    st->off_b = off;
    off += st->product.perm_b.needed ? ein_align((size_t)(Bt * K * N) * sizeof(float)) : 0;
    st->off_c = off;
    off += st->product.perm_c.needed ? ein_align((size_t)(Bt * M * N) * sizeof(float)) : 0;
    call->scratch_bytes = off;
}
static void einsum_release(void *state)
{
    einsum_state *s = state;
    if (!s)
        return;
    mm_prim_release(&s->prim);
    free(s);
}

static fg_status *einsum_prepare(op_call *call)
{
    FG_TRY(einsum_check_dtypes(call));
    einsum_state *st = calloc(1, sizeof *st);
    if (!st)
        return op_error(call, FG_ERR_OUT_OF_MEMORY, "out of memory preparing the contraction");
    fg_status *err = einsum_parse(call, &st->spec);
    if (err) {
        free(st);
        return err;
    }
    call->scratch_bytes = 0;
    einsum_plan_fast(call, st);
    call->state = st;
    return NULL;
}

static fg_status *einsum_run(op_call *call)
{
    einsum_state *st = call->state;
    if (!st || !st->fast) {
        einsum_spec local;
        const einsum_spec *s = st ? &st->spec : NULL;
        if (!s) {
            FG_TRY(einsum_check_dtypes(call));
            FG_TRY(einsum_parse(call, &local));
            s = &local;
        }
        einsum_generic(call, s);
        return NULL;
    }
    int threads = mm_threads(call);
    char *scratch = call->scratch;
    const float *a = call->in[st->product.swap ? 1 : 0].data;
    const float *b = call->in[st->product.swap ? 0 : 1].data;
    float *c = call->out[0].data;
    if (st->product.perm_a.needed) {
        float *pa = (float *)(scratch + st->off_a);
        ein_permute_run(&st->product.perm_a, a, pa, threads);
        a = pa;
    }
    if (st->product.perm_b.needed) {
        float *pb = (float *)(scratch + st->off_b);
        ein_permute_run(&st->product.perm_b, b, pb, threads);
        b = pb;
    }
    float *prod = st->product.perm_c.needed ? (float *)(scratch + st->off_c) : c;
    if (st->use_prim)
        FG_TRY(mm_prim_run(call, &st->prim, &st->product.layout, a, b, prod, scratch + st->off_pad));
    else
        mm_generic(&st->product.layout, FG_FLOAT32, a, b, prod, threads);
    if (st->product.perm_c.needed)
        ein_permute_run(&st->product.perm_c, prod, c, threads);
    return NULL;
}

/* ------------------------------------------------------------ table */

const op_def op_family_matmul[] = {
    {"MatMul", NULL, matmul_infer, matmul_prepare, matmul_run, matmul_release, OP_FUSES_ACTIVATION},
    {"Gemm", NULL, gemm_infer, gemm_prepare, gemm_run, gemm_release, OP_FUSES_ACTIVATION},
    {"Einsum", NULL, einsum_infer, einsum_prepare, einsum_run, einsum_release, 0},
    {0},
};
