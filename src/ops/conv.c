/* Conv and ConvTranspose (ONNX opsets 1-17), float32, 1-D to 3-D.
 *
 * prepare picks, for the final shapes, one of:
 *   - depthwise 2-D (group == channels): own row kernels (conv_gemm.c),
 *     AVX-512 straight from NCHW for 3x3, else through zero-padded planes;
 *   - pointwise and tiny (<= 32 taps) forward convolutions: own NCHW GEMM
 *     (conv_gemm.c) with weights packed once into the state;
 *   - few output channels over few taps (first layers, AVX-512): own direct
 *     kernel (conv_gemm.c);
 *   - everything else (larger KxK, transposed, 3-D): a oneDNN primitive.
 *     The op's src/dst stay NCHW; oneDNN may pick blocked formats, in which
 *     case the op reorders in and out through scratch. Constant weights are
 *     reordered once into the op state, the fused activation becomes eltwise
 *     post-ops, and the scratchpad comes from call->scratch.
 * The own kernels fuse bias and activation into their stores. run allocates
 * nothing.
 *
 * run falls back to a direct reference loop when nothing was prepared
 * (constant folding, shapes only known at run time, or oneDNN having no
 * implementation for the parameters). */
#include "ops/conv_geometry.h"
#include "ops/conv_kernels.h"
#include "ops/dnnl_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int geom_equal(const conv_geom *a, const conv_geom *b)
{
    return memcmp(a, b, sizeof *a) == 0;
}

static fg_status *check_dtypes(const op_call *call)
{
    for (int i = 0; i < call->n_in && i < 3; i++) {
        if (!op_has_input(call, i))
            continue;
        fg_dtype dt = call->in[i].dtype;
        if (dt == FG_FLOAT16)
            return op_error(call, FG_ERR_UNSUPPORTED,
                            "float16 CPU convolution is not supported yet (input %d is float16); use a float32 model", i);
        if (dt != FG_FLOAT32)
            return op_error(call, FG_ERR_DTYPE, "input %d has dtype %s; only float32 is supported", i,
                            fg_dtype_name(dt));
    }
    return NULL;
}

static fg_status *conv_infer_common(op_call *call, int transposed)
{
    FG_TRY(check_dtypes(call));
    conv_geom g;
    FG_TRY(conv_geometry(call, transposed, &g));
    fg_tensor *y = &call->out[0];
    y->dtype = FG_FLOAT32;
    y->rank = 2 + g.nsp;
    y->dims[0] = g.batch;
    y->dims[1] = g.c_out;
    for (int i = 0; i < g.nsp; i++)
        y->dims[2 + i] = g.out_sp[i];
    return NULL;
}

static fg_status *conv_infer(op_call *call) { return conv_infer_common(call, 0); }
static fg_status *conv_transpose_infer(op_call *call) { return conv_infer_common(call, 1); }

/* ------------------------------------------------------ reference loops */

/* Geometry widened to 3 spatial axes (leading axes of size 1). */
typedef struct geom3 {
    int64_t in[3], out[3], k[3], s[3], d[3], p[3];
} geom3;

static void widen(const conv_geom *g, geom3 *w)
{
    int off = 3 - g->nsp;
    for (int i = 0; i < 3; i++) {
        int j = i - off;
        w->in[i] = j >= 0 ? g->in_sp[j] : 1;
        w->out[i] = j >= 0 ? g->out_sp[j] : 1;
        w->k[i] = j >= 0 ? g->kernel[j] : 1;
        w->s[i] = j >= 0 ? g->stride[j] : 1;
        w->d[i] = j >= 0 ? g->dilation[j] : 1;
        w->p[i] = j >= 0 ? g->pad_l[j] : 0;
    }
}

static void conv_reference(const conv_geom *g, const float *x, const float *w, const float *bias, float *y,
                           const op_activation *act, int threads)
{
    geom3 G;
    widen(g, &G);
    int64_t icg = g->c_in / g->group, ocg = g->c_out / g->group;
    int64_t in_size = G.in[0] * G.in[1] * G.in[2], out_size = G.out[0] * G.out[1] * G.out[2];
    int64_t k_size = G.k[0] * G.k[1] * G.k[2];
    int64_t planes = g->batch * g->c_out;
    if (!g->transposed) {
#pragma omp parallel for num_threads(threads) if (planes * out_size * icg * k_size > 100000)
        for (int64_t plane = 0; plane < planes; plane++) {
            int64_t n = plane / g->c_out, oc = plane % g->c_out, grp = oc / ocg;
            float *yp = y + plane * out_size;
            for (int64_t od = 0; od < G.out[0]; od++)
                for (int64_t oh = 0; oh < G.out[1]; oh++)
                    for (int64_t ow = 0; ow < G.out[2]; ow++) {
                        double acc = bias ? bias[oc] : 0.0;
                        for (int64_t ic = 0; ic < icg; ic++) {
                            const float *xp = x + (n * g->c_in + grp * icg + ic) * in_size;
                            const float *wp = w + (oc * icg + ic) * k_size;
                            for (int64_t kd = 0; kd < G.k[0]; kd++) {
                                int64_t id = od * G.s[0] - G.p[0] + kd * G.d[0];
                                if (id < 0 || id >= G.in[0])
                                    continue;
                                for (int64_t kh = 0; kh < G.k[1]; kh++) {
                                    int64_t ih = oh * G.s[1] - G.p[1] + kh * G.d[1];
                                    if (ih < 0 || ih >= G.in[1])
                                        continue;
                                    for (int64_t kw = 0; kw < G.k[2]; kw++) {
                                        int64_t iw = ow * G.s[2] - G.p[2] + kw * G.d[2];
                                        if (iw < 0 || iw >= G.in[2])
                                            continue;
                                        acc += (double)xp[(id * G.in[1] + ih) * G.in[2] + iw] *
                                               wp[(kd * G.k[1] + kh) * G.k[2] + kw];
                                    }
                                }
                            }
                        }
                        yp[(od * G.out[1] + oh) * G.out[2] + ow] = op_activation_scalar(act, (float)acc);
                    }
        }
    } else {
        /* y[n, grp*ocg+oc, o] = sum over ic of the group and k with o = i*s - p + k*d */
#pragma omp parallel for num_threads(threads) if (planes * out_size * icg * k_size > 100000)
        for (int64_t plane = 0; plane < planes; plane++) {
            int64_t n = plane / g->c_out, oc_full = plane % g->c_out, grp = oc_full / ocg, oc = oc_full % ocg;
            float *yp = y + plane * out_size;
            for (int64_t od = 0; od < G.out[0]; od++)
                for (int64_t oh = 0; oh < G.out[1]; oh++)
                    for (int64_t ow = 0; ow < G.out[2]; ow++) {
                        double acc = bias ? bias[oc_full] : 0.0;
                        for (int64_t ic = 0; ic < icg; ic++) {
                            int64_t c = grp * icg + ic;
                            const float *xp = x + (n * g->c_in + c) * in_size;
                            const float *wp = w + (c * ocg + oc) * k_size;
                            for (int64_t kd = 0; kd < G.k[0]; kd++) {
                                int64_t td = od + G.p[0] - kd * G.d[0];
                                if (td < 0 || td % G.s[0])
                                    continue;
                                int64_t id = td / G.s[0];
                                if (id >= G.in[0])
                                    continue;
                                for (int64_t kh = 0; kh < G.k[1]; kh++) {
                                    int64_t th = oh + G.p[1] - kh * G.d[1];
                                    if (th < 0 || th % G.s[1])
                                        continue;
                                    int64_t ih = th / G.s[1];
                                    if (ih >= G.in[1])
                                        continue;
                                    for (int64_t kw = 0; kw < G.k[2]; kw++) {
                                        int64_t tw = ow + G.p[2] - kw * G.d[2];
                                        if (tw < 0 || tw % G.s[2])
                                            continue;
                                        int64_t iw = tw / G.s[2];
                                        if (iw >= G.in[2])
                                            continue;
                                        acc += (double)xp[(id * G.in[1] + ih) * G.in[2] + iw] *
                                               wp[(kd * G.k[1] + kh) * G.k[2] + kw];
                                    }
                                }
                            }
                        }
                        yp[(od * G.out[1] + oh) * G.out[2] + ow] = op_activation_scalar(act, (float)acc);
                    }
        }
    }
}

/* ------------------------------------------- own kernels (conv_gemm.c) */

/* One filter per channel: direct row loops, no reorders. */
static int is_depthwise(const conv_geom *g)
{
    return !g->transposed && g->nsp <= 2 && g->group == g->c_in && g->c_out == g->c_in;
}

/* Pointwise (1x1) forward convolutions run as NCHW GEMMs (conv_gemm.c):
 * no reorders, measured 1.3-2x faster than oneDNN with its reorders. Larger
 * kernels go to oneDNN's blocked direct convolution, which beats the
 * im2col GEMM (measured 48x80x80 3x3: 1.07 ms vs 1.46 ms, one thread);
 * transposed and 3-D ones too. */
static int uses_gemm(const conv_geom *g)
{
    if (g->transposed || g->nsp > 2 || is_depthwise(g))
        return 0;
    int64_t taps = g->c_in / g->group;
    int pointwise = 1;
    for (int i = 0; i < g->nsp; i++) {
        taps *= g->kernel[i];
        pointwise &= g->kernel[i] == 1;
    }
    /* tiny first layers too (3 -> 64 3x3/2 at 112x112: 0.075 vs 0.100 ms) */
    return pointwise || taps <= 32;
}

static void to_shape2d(const conv_geom *g, conv2d_shape *s)
{
    int two = g->nsp == 2;
    s->batch = g->batch;
    s->group = g->group;
    s->icg = g->c_in / g->group;
    s->ocg = g->c_out / g->group;
    s->ih = two ? g->in_sp[0] : 1;
    s->iw = g->in_sp[two];
    s->oh = two ? g->out_sp[0] : 1;
    s->ow = g->out_sp[two];
    s->kh = two ? g->kernel[0] : 1;
    s->kw = g->kernel[two];
    s->sh = two ? g->stride[0] : 1;
    s->sw = g->stride[two];
    s->dh = two ? g->dilation[0] : 1;
    s->dw = g->dilation[two];
    s->ph = two ? g->pad_l[0] : 0;
    s->pw = g->pad_l[two];
}

/* ------------------------------------------------------------ oneDNN */

typedef struct conv_state {
    conv_geom geom;
    /* own kernels (conv_gemm.c): 1 GEMM, 2 direct; packed weights and bias */
    int gemm;
    conv2d_shape shape;
    float *packed_w, *packed_b;
    size_t off_packed_w, off_packed_b; /* non-constant weights: packed per run into scratch */
    size_t off_panels;
    int panel_threads; /* threads the panels in scratch were sized for */
    dnnl_primitive_t prim;
    dnnl_primitive_t src_reorder, dst_reorder, weights_reorder; /* NULL when not needed */
    dnnl_memory_t user_src, user_dst, user_weights;             /* plain layouts, handles set per run */
    dnnl_memory_t prim_src, prim_dst, prim_weights, bias, scratchpad;
    void *weights; /* reordered constant weights (owned), or NULL */
    size_t off_src, off_dst, off_weights, off_scratchpad;
    int has_bias;
    op_activation post_act; /* what oneDNN could not fuse, applied after */
    char impl[64];
} conv_state;

static void conv_release(void *p)
{
    conv_state *s = p;
    if (!s)
        return;
    dnnl_primitive_t prims[] = {s->prim, s->src_reorder, s->dst_reorder, s->weights_reorder};
    for (size_t i = 0; i < sizeof prims / sizeof prims[0]; i++)
        if (prims[i])
            dnnl_primitive_destroy(prims[i]);
    dnnl_memory_t mems[] = {s->user_src, s->user_dst, s->user_weights, s->prim_src,
                            s->prim_dst, s->prim_weights, s->bias, s->scratchpad};
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
        if (mems[i])
            dnnl_memory_destroy(mems[i]);
    fg_aligned_free(s->weights);
    fg_aligned_free(s->packed_w);
    fg_aligned_free(s->packed_b);
    free(s);
}

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Plain (strided) descriptor of the ONNX weights in oneDNN's logical order
 * ([g,] o, i, spatial...). */
static dnnl_status_t weights_plain_md(const conv_geom *g, dnnl_memory_desc_t *md)
{
    int nsp = g->nsp, grouped = g->group > 1;
    int64_t ocg = g->c_out / g->group, icg = g->c_in / g->group;
    dnnl_dims_t dims, strides;
    int64_t k_size = 1;
    for (int i = 0; i < nsp; i++)
        k_size *= g->kernel[i];
    int nd = 0;
    if (grouped)
        dims[nd++] = g->group;
    dims[nd++] = ocg;
    dims[nd++] = icg;
    for (int i = 0; i < nsp; i++)
        dims[nd++] = g->kernel[i];
    /* spatial strides: row-major */
    int64_t st = 1;
    for (int i = nsp - 1; i >= 0; i--) {
        strides[nd - nsp + i] = st;
        st *= g->kernel[i];
    }
    int o_axis = grouped ? 1 : 0, i_axis = o_axis + 1;
    if (!g->transposed) { /* ONNX [g*ocg][icg][k] */
        strides[i_axis] = k_size;
        strides[o_axis] = icg * k_size;
        if (grouped)
            strides[0] = ocg * icg * k_size;
    } else { /* ONNX [g*icg][ocg][k] */
        strides[o_axis] = k_size;
        strides[i_axis] = ocg * k_size;
        if (grouped)
            strides[0] = icg * ocg * k_size;
    }
    return dnnl_memory_desc_init_by_strides(md, nd, dims, dnnl_f32, strides);
}

static dnnl_format_tag_t plain_tag(int nsp)
{
    return nsp == 1 ? dnnl_ncw : nsp == 2 ? dnnl_nchw : dnnl_ncdhw;
}

static dnnl_status_t append_act(dnnl_post_ops_t po, const op_activation *act, int *fused)
{
    *fused = 1;
    switch (act->kind) {
    case OP_ACT_NONE: *fused = 0; return dnnl_success;
    case OP_ACT_RELU: return dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f);
    case OP_ACT_LEAKY_RELU: return dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, act->alpha, 0.0f);
    case OP_ACT_CLIP: return dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_clip_v2, act->alpha, act->beta);
    case OP_ACT_SIGMOID: return dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_logistic, 0.0f, 0.0f);
    case OP_ACT_HARD_SIGMOID: {
        dnnl_status_t st = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_linear, act->alpha, act->beta);
        if (st != dnnl_success)
            return st;
        return dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_clip_v2, 0.0f, 1.0f);
    }
    case OP_ACT_HARD_SWISH: return dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_hardswish, 0.0f, 0.0f);
    case OP_ACT_TANH: return dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_tanh, 0.0f, 0.0f);
    case OP_ACT_SILU: return dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_swish, 1.0f, 0.0f);
    }
    *fused = 0;
    return dnnl_success;
}

/* Creates the primitive descriptor; src/dst are plain or `any`. */
static dnnl_status_t make_pd(const conv_geom *g, dnnl_engine_t engine, int blocked, int has_bias,
                             const op_activation *act, int *act_fused, dnnl_primitive_desc_t *pd)
{
    int nsp = g->nsp, nd = 2 + nsp;
    dnnl_dims_t src_dims, dst_dims, w_dims, strides, dilates, pad_l, pad_r;
    src_dims[0] = dst_dims[0] = g->batch;
    src_dims[1] = g->c_in;
    dst_dims[1] = g->c_out;
    for (int i = 0; i < nsp; i++) {
        src_dims[2 + i] = g->in_sp[i];
        dst_dims[2 + i] = g->out_sp[i];
        strides[i] = g->stride[i];
        dilates[i] = g->dilation[i] - 1;
        pad_l[i] = g->pad_l[i];
        pad_r[i] = g->pad_r[i];
    }
    dnnl_memory_desc_t src_md, dst_md, w_plain, w_md, b_md;
    dnnl_format_tag_t tag = blocked ? dnnl_format_tag_any : plain_tag(nsp);
    dnnl_status_t st;
    if ((st = dnnl_memory_desc_init_by_tag(&src_md, nd, src_dims, dnnl_f32, tag)) != dnnl_success)
        return st;
    if ((st = dnnl_memory_desc_init_by_tag(&dst_md, nd, dst_dims, dnnl_f32, tag)) != dnnl_success)
        return st;
    if ((st = weights_plain_md(g, &w_plain)) != dnnl_success)
        return st;
    int w_nd = w_plain.ndims;
    memcpy(w_dims, w_plain.dims, sizeof(dnnl_dim_t) * w_nd);
    if ((st = dnnl_memory_desc_init_by_tag(&w_md, w_nd, w_dims, dnnl_f32, dnnl_format_tag_any)) != dnnl_success)
        return st;
    dnnl_dims_t b_dims = {g->c_out};
    if ((st = dnnl_memory_desc_init_by_tag(&b_md, 1, b_dims, dnnl_f32, dnnl_a)) != dnnl_success)
        return st;

    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    if ((st = dnnl_primitive_attr_create(&attr)) != dnnl_success)
        return st;
    st = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    *act_fused = 0;
    if (st == dnnl_success && act->kind != OP_ACT_NONE) {
        st = dnnl_post_ops_create(&po);
        if (st == dnnl_success)
            st = append_act(po, act, act_fused);
        if (st == dnnl_success)
            st = dnnl_primitive_attr_set_post_ops(attr, po);
    }
    if (st == dnnl_success) {
        if (!g->transposed) {
            dnnl_convolution_desc_t desc;
            st = dnnl_dilated_convolution_forward_desc_init(&desc, dnnl_forward_inference, dnnl_convolution_direct,
                                                            &src_md, &w_md, has_bias ? &b_md : NULL, &dst_md, strides, dilates, pad_l,
                                                            pad_r);
            if (st == dnnl_success)
                st = dnnl_primitive_desc_create(pd, &desc, attr, engine, NULL);
        } else {
            dnnl_deconvolution_desc_t desc;
            st = dnnl_dilated_deconvolution_forward_desc_init(&desc, dnnl_forward_inference,
                                                              dnnl_deconvolution_direct, &src_md, &w_md, has_bias ? &b_md : NULL,
                                                              &dst_md, strides, dilates, pad_l, pad_r);
            if (st == dnnl_success)
                st = dnnl_primitive_desc_create(pd, &desc, attr, engine, NULL);
        }
    }
    if (po)
        dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    return st;
}

static int impl_is_slow(dnnl_primitive_desc_t pd)
{
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success || !impl)
        return 1;
    return strstr(impl, "ref") != NULL || strstr(impl, "gemm") != NULL;
}

/* Makes a reorder primitive between two descriptors. */
static dnnl_status_t make_reorder(dnnl_engine_t engine, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
                                  dnnl_primitive_t *prim)
{
    dnnl_primitive_desc_t rpd;
    dnnl_status_t st = dnnl_reorder_primitive_desc_create(&rpd, from, engine, to, engine, NULL);
    if (st != dnnl_success)
        return st;
    st = dnnl_primitive_create(prim, rpd);
    dnnl_primitive_desc_destroy(rpd);
    return st;
}

static void pack_weights(const conv_state *s, const float *w, const float *bias, float *packed_w, float *packed_b)
{
    if (s->gemm == 2)
        conv_direct_pack(&s->shape, w, bias, packed_w);
    else
        conv_gemm_pack(&s->shape, w, bias, packed_w, packed_b);
}

/* GEMM (direct == 0) or direct (direct == 1) path: weights packed once when
 * constant, else per run into scratch. */
static fg_status *gemm_prepare(op_call *call, const conv_geom *g, int direct)
{
    conv_state *s = fg_xcalloc(1, sizeof *s);
    if (!s)
        return op_error(call, FG_ERR_OUT_OF_MEMORY, "out of memory for convolution state");
    s->geom = *g;
    s->gemm = direct ? 2 : 1;
    s->has_bias = op_has_input(call, 2);
    to_shape2d(g, &s->shape);
    size_t w_bytes = (direct ? conv_direct_packed_floats(&s->shape) : conv_gemm_packed_weights_floats(&s->shape)) *
                     sizeof(float);
    size_t b_bytes = direct ? 64 : conv_gemm_packed_bias_floats(&s->shape) * sizeof(float);
    int bias_known = !s->has_bias || call->in[2].data;
    size_t offset = 0;
    if (call->in[1].data && bias_known) {
        s->packed_w = fg_aligned_alloc(w_bytes);
        s->packed_b = fg_aligned_alloc(b_bytes);
        if (!s->packed_w || !s->packed_b) {
            conv_release(s);
            return op_error(call, FG_ERR_OUT_OF_MEMORY, "out of memory for packed convolution weights (%zu bytes)",
                            w_bytes);
        }
        pack_weights(s, call->in[1].data, s->has_bias ? call->in[2].data : NULL, s->packed_w, s->packed_b);
    } else {
        s->off_packed_w = offset;
        offset += align64(w_bytes);
        s->off_packed_b = offset;
        offset += align64(b_bytes);
    }
    s->off_panels = offset;
    s->panel_threads = call->threads > 0 ? call->threads : 1;
    if (!direct)
        offset += align64(conv_gemm_scratch_bytes(&s->shape, call->threads));
    call->scratch_bytes = offset;
    call->state = s;
    return NULL;
}

static fg_status *conv_prepare_common(op_call *call, int transposed)
{
    conv_geom g;
    FG_TRY(conv_geometry(call, transposed, &g));
    if (is_depthwise(&g)) {
        /* run calls the depthwise kernel directly, padding planes in scratch */
        conv2d_shape shape;
        to_shape2d(&g, &shape);
        call->state = NULL;
        call->scratch_bytes = conv_depthwise_direct_ok(&shape) ? 0 : conv_depthwise_scratch_bytes(&shape, call->threads);
        return NULL;
    }
    if (!g.transposed && g.nsp <= 2 && !is_depthwise(&g)) {
        conv2d_shape shape;
        to_shape2d(&g, &shape);
        int pointwise = shape.kh == 1 && shape.kw == 1;
        if (!pointwise && conv_direct_ok(&shape))
            return gemm_prepare(call, &g, 1);
    }
    if (uses_gemm(&g))
        return gemm_prepare(call, &g, 0);
    dnnl_engine_t engine;
    FG_TRY(dnnl_util_engine(call, &engine));
    int has_bias = op_has_input(call, 2);
    int previous_threads = dnnl_util_set_threads(call->threads);

    /* plain NCHW first; blocked (with reorders) when plain gets a slow kernel */
    dnnl_primitive_desc_t pd = NULL;
    int act_fused = 0;
    int blocked = 0;
    dnnl_status_t st;
    {
        st = make_pd(&g, engine, 0, has_bias, &call->act, &act_fused, &pd);
        if (st != dnnl_success || impl_is_slow(pd)) {
            dnnl_primitive_desc_t blocked_pd = NULL;
            int blocked_fused = 0;
            if (make_pd(&g, engine, 1, has_bias, &call->act, &blocked_fused, &blocked_pd) == dnnl_success) {
                if (pd)
                    dnnl_primitive_desc_destroy(pd);
                pd = blocked_pd;
                act_fused = blocked_fused;
                blocked = 1;
                st = dnnl_success;
            }
        }
    }
    if (st != dnnl_success && call->act.kind != OP_ACT_NONE) {
        /* retry without the fused activation; apply it after */
        op_activation none = {OP_ACT_NONE, 0, 0};
        st = make_pd(&g, engine, blocked, has_bias, &none, &act_fused, &pd);
    }
    if (st != dnnl_success) {
        /* no oneDNN implementation: run uses the reference loops */
        dnnl_util_set_threads(previous_threads);
        call->state = NULL;
        call->scratch_bytes = 0;
        return NULL;
    }

    conv_state *s = fg_xcalloc(1, sizeof *s);
    if (!s) {
        dnnl_primitive_desc_destroy(pd);
        dnnl_util_set_threads(previous_threads);
        return op_error(call, FG_ERR_OUT_OF_MEMORY, "out of memory for convolution state");
    }
    s->geom = g;
    s->has_bias = op_has_input(call, 2);
    s->post_act = act_fused ? (op_activation){OP_ACT_NONE, 0, 0} : call->act;
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl)
        snprintf(s->impl, sizeof s->impl, "%s", impl);

    fg_status *err = NULL;
#define STEP(expr, what)                                       \
    do {                                                       \
        dnnl_status_t st_ = (expr);                            \
        if (st_ != dnnl_success) {                             \
            err = dnnl_util_error(call, st_, what);            \
            goto fail;                                         \
        }                                                      \
    } while (0)

    const dnnl_memory_desc_t *src_md = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *dst_md = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    const dnnl_memory_desc_t *w_md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *b_md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 1);
    const dnnl_memory_desc_t *sp_md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);

    int nd = 2 + g.nsp;
    dnnl_dims_t src_dims, dst_dims;
    src_dims[0] = dst_dims[0] = g.batch;
    src_dims[1] = g.c_in;
    dst_dims[1] = g.c_out;
    for (int i = 0; i < g.nsp; i++) {
        src_dims[2 + i] = g.in_sp[i];
        dst_dims[2 + i] = g.out_sp[i];
    }
    dnnl_memory_desc_t src_plain, dst_plain, w_plain;
    STEP(dnnl_memory_desc_init_by_tag(&src_plain, nd, src_dims, dnnl_f32, plain_tag(g.nsp)), "memory descriptor");
    STEP(dnnl_memory_desc_init_by_tag(&dst_plain, nd, dst_dims, dnnl_f32, plain_tag(g.nsp)), "memory descriptor");
    STEP(weights_plain_md(&g, &w_plain), "weights descriptor");

    size_t offset = 0;
    STEP(dnnl_primitive_create(&s->prim, pd), "primitive creation");
    STEP(dnnl_memory_create(&s->prim_src, src_md, engine, DNNL_MEMORY_NONE), "memory creation");
    STEP(dnnl_memory_create(&s->prim_dst, dst_md, engine, DNNL_MEMORY_NONE), "memory creation");
    STEP(dnnl_memory_create(&s->prim_weights, w_md, engine, DNNL_MEMORY_NONE), "memory creation");
    if (s->has_bias)
        STEP(dnnl_memory_create(&s->bias, b_md, engine, DNNL_MEMORY_NONE), "memory creation");
    if (!dnnl_memory_desc_equal(src_md, &src_plain)) {
        STEP(make_reorder(engine, &src_plain, src_md, &s->src_reorder), "source reorder");
        STEP(dnnl_memory_create(&s->user_src, &src_plain, engine, DNNL_MEMORY_NONE), "memory creation");
        s->off_src = offset;
        offset += align64(dnnl_memory_desc_get_size(src_md));
    }
    if (!dnnl_memory_desc_equal(dst_md, &dst_plain)) {
        STEP(make_reorder(engine, dst_md, &dst_plain, &s->dst_reorder), "destination reorder");
        STEP(dnnl_memory_create(&s->user_dst, &dst_plain, engine, DNNL_MEMORY_NONE), "memory creation");
        s->off_dst = offset;
        offset += align64(dnnl_memory_desc_get_size(dst_md));
    }
    int weights_differ = !dnnl_memory_desc_equal(w_md, &w_plain);
    if (weights_differ) {
        STEP(make_reorder(engine, &w_plain, w_md, &s->weights_reorder), "weights reorder");
        STEP(dnnl_memory_create(&s->user_weights, &w_plain, engine, DNNL_MEMORY_NONE), "memory creation");
    }
    if (call->in[1].data && weights_differ) {
        /* constant weights: reorder once into the state */
        s->weights = fg_aligned_alloc(dnnl_memory_desc_get_size(w_md));
        if (!s->weights) {
            err = op_error(call, FG_ERR_OUT_OF_MEMORY, "out of memory for reordered weights");
            goto fail;
        }
        dnnl_stream_t stream;
        err = dnnl_util_stream(call, &stream);
        if (err)
            goto fail;
        STEP(dnnl_memory_set_data_handle(s->user_weights, call->in[1].data), "memory handle");
        STEP(dnnl_memory_set_data_handle(s->prim_weights, s->weights), "memory handle");
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, s->user_weights}, {DNNL_ARG_TO, s->prim_weights}};
        STEP(dnnl_primitive_execute(s->weights_reorder, stream, 2, args), "weights reorder");
        STEP(dnnl_stream_wait(stream), "stream wait");
        dnnl_primitive_destroy(s->weights_reorder);
        s->weights_reorder = NULL;
    } else if (weights_differ) {
        s->off_weights = offset;
        offset += align64(dnnl_memory_desc_get_size(w_md));
    }
    s->off_scratchpad = offset;
    size_t sp_bytes = sp_md ? dnnl_memory_desc_get_size(sp_md) : 0;
    if (sp_bytes) {
        STEP(dnnl_memory_create(&s->scratchpad, sp_md, engine, DNNL_MEMORY_NONE), "memory creation");
        offset += align64(sp_bytes);
    }
    dnnl_primitive_desc_destroy(pd);
    pd = NULL;
    dnnl_util_set_threads(previous_threads);
    call->scratch_bytes = offset;
    call->state = s;
    return NULL;
#undef STEP
fail:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    conv_release(s);
    dnnl_util_set_threads(previous_threads);
    return err;
}

/* A residual the planner fused into the convolution (input 3): the
 * convolution runs without the activation, then y = act(y + residual). */
static int has_residual(const op_call *call)
{
    return call->n_in > 3 && op_has_input(call, 3);
}

/* With a residual the convolution itself runs without the activation. */
static fg_status *without_activation(op_call *call, fg_status *(*fn)(op_call *, int))
{
    op_activation act = call->act;
    call->act = (op_activation){OP_ACT_NONE, 0, 0};
    fg_status *st = fn(call, 0);
    call->act = act;
    return st;
}

static fg_status *conv_prepare(op_call *call)
{
    if (!has_residual(call))
        return conv_prepare_common(call, 0);
    return without_activation(call, conv_prepare_common);
}
static fg_status *conv_transpose_prepare(op_call *call) { return conv_prepare_common(call, 1); }

static fg_status *set_handle(const op_call *call, dnnl_memory_t mem, const void *data)
{
    DNNL_TRY(call, dnnl_memory_set_data_handle(mem, (void *)data), "memory handle");
    return NULL;
}

static fg_status *conv_run_dnnl(op_call *call, conv_state *s)
{
    dnnl_stream_t stream;
    FG_TRY(dnnl_util_stream(call, &stream));
    char *scratch = call->scratch;
    const fg_tensor *x = &call->in[0];
    fg_tensor *y = &call->out[0];

    if (s->src_reorder) {
        FG_TRY(set_handle(call, s->user_src, x->data));
        FG_TRY(set_handle(call, s->prim_src, scratch + s->off_src));
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, s->user_src}, {DNNL_ARG_TO, s->prim_src}};
        DNNL_TRY(call, dnnl_primitive_execute(s->src_reorder, stream, 2, args), "source reorder");
    } else {
        FG_TRY(set_handle(call, s->prim_src, x->data));
    }
    if (s->weights) {
        FG_TRY(set_handle(call, s->prim_weights, s->weights));
    } else if (s->weights_reorder) {
        FG_TRY(set_handle(call, s->user_weights, call->in[1].data));
        FG_TRY(set_handle(call, s->prim_weights, scratch + s->off_weights));
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, s->user_weights}, {DNNL_ARG_TO, s->prim_weights}};
        DNNL_TRY(call, dnnl_primitive_execute(s->weights_reorder, stream, 2, args), "weights reorder");
    } else {
        FG_TRY(set_handle(call, s->prim_weights, call->in[1].data));
    }
    FG_TRY(set_handle(call, s->prim_dst, s->dst_reorder ? scratch + s->off_dst : y->data));

    dnnl_exec_arg_t args[5];
    int n = 0;
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, s->prim_src};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, s->prim_weights};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DST, s->prim_dst};
    if (s->has_bias) {
        FG_TRY(set_handle(call, s->bias, call->in[2].data));
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, s->bias};
    }
    if (s->scratchpad) {
        FG_TRY(set_handle(call, s->scratchpad, scratch + s->off_scratchpad));
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, s->scratchpad};
    }
    DNNL_TRY(call, dnnl_primitive_execute(s->prim, stream, n, args), "convolution");
    if (s->dst_reorder) {
        FG_TRY(set_handle(call, s->user_dst, y->data));
        dnnl_exec_arg_t rargs[2] = {{DNNL_ARG_FROM, s->prim_dst}, {DNNL_ARG_TO, s->user_dst}};
        DNNL_TRY(call, dnnl_primitive_execute(s->dst_reorder, stream, 2, rargs), "destination reorder");
    }
    DNNL_TRY(call, dnnl_stream_wait(stream), "stream wait");
    if (s->post_act.kind != OP_ACT_NONE) {
        float *yd = y->data;
        int64_t total = fg_tensor_numel(y), chunk = 1 << 16;
        int64_t chunks = (total + chunk - 1) / chunk;
#pragma omp parallel for num_threads(call->threads) if (chunks > 1)
        for (int64_t c = 0; c < chunks; c++) {
            int64_t begin = c * chunk, len = total - begin < chunk ? total - begin : chunk;
            op_activation_apply(&s->post_act, yd + begin, len);
        }
    }
    return NULL;
}

static fg_status *conv_run_common(op_call *call, int transposed)
{
    conv_geom g;
    FG_TRY(conv_geometry(call, transposed, &g));
    conv_state *s = call->state;
    int threads = call->threads > 0 ? call->threads : 1;
    if (s && s->gemm && geom_equal(&s->geom, &g) && s->has_bias == op_has_input(call, 2)) {
        char *scratch = call->scratch;
        const float *packed_w = s->packed_w, *packed_b = s->packed_b;
        if (!packed_w) {
            float *pw = (float *)(scratch + s->off_packed_w), *pb = (float *)(scratch + s->off_packed_b);
            pack_weights(s, call->in[1].data, s->has_bias ? call->in[2].data : NULL, pw, pb);
            packed_w = pw;
            packed_b = pb;
        }
        if (threads > s->panel_threads)
            threads = s->panel_threads;
        if (s->gemm == 2)
            conv_direct_run(&s->shape, packed_w, call->in[0].data, call->out[0].data, &call->act, threads);
        else
            conv_gemm_run(&s->shape, packed_w, packed_b, call->in[0].data, call->out[0].data, &call->act, threads,
                          scratch + s->off_panels);
        return NULL;
    }
    if (s && !s->gemm && geom_equal(&s->geom, &g) && s->has_bias == op_has_input(call, 2)) {
        int previous_threads = dnnl_util_set_threads(call->threads);
        fg_status *err = conv_run_dnnl(call, s);
        dnnl_util_set_threads(previous_threads);
        return err;
    }
    if (is_depthwise(&g)) {
        conv2d_shape shape;
        to_shape2d(&g, &shape);
        if (conv_depthwise_direct_ok(&shape)) {
            conv_depthwise_direct_run(&shape, call->in[1].data, op_has_input(call, 2) ? call->in[2].data : NULL,
                                      call->in[0].data, call->out[0].data, &call->act, threads);
            return NULL;
        }
        if (call->scratch && call->scratch_bytes >= conv_depthwise_scratch_bytes(&shape, threads)) {
            conv_depthwise_padded_run(&shape, call->in[1].data, op_has_input(call, 2) ? call->in[2].data : NULL,
                                      call->in[0].data, call->out[0].data, &call->act, threads, call->scratch);
            return NULL;
        }
        conv_depthwise_run(&shape, call->in[1].data, op_has_input(call, 2) ? call->in[2].data : NULL,
                           call->in[0].data, call->out[0].data, &call->act, threads);
        return NULL;
    }
    conv_reference(&g, call->in[0].data, call->in[1].data, op_has_input(call, 2) ? call->in[2].data : NULL,
                   call->out[0].data, &call->act, call->threads > 0 ? call->threads : 1);
    return NULL;
}

static fg_status *conv_run(op_call *call)
{
    if (!has_residual(call))
        return conv_run_common(call, 0);
    FG_TRY(without_activation(call, conv_run_common));
    const op_activation act = call->act;
    float *y = call->out[0].data;
    const float *r = call->in[3].data;
    int64_t n = fg_tensor_numel(&call->out[0]), chunk = 16384, chunks = (n + chunk - 1) / chunk;
#pragma omp parallel for num_threads(call->threads > 0 ? call->threads : 1) if (chunks > 1)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t start = c * chunk, len = n - start < chunk ? n - start : chunk;
        for (int64_t i = start; i < start + len; i++)
            y[i] += r[i];
        op_activation_apply(&act, y + start, len);
    }
    return NULL;
}
static fg_status *conv_transpose_run(op_call *call) { return conv_run_common(call, 1); }

const op_def op_family_conv[] = {
    {"Conv", NULL, conv_infer, conv_prepare, conv_run, conv_release, OP_FUSES_ACTIVATION},
    {"ConvTranspose", NULL, conv_transpose_infer, conv_transpose_prepare, conv_transpose_run, conv_release,
     OP_FUSES_ACTIVATION},
    {0},
};
