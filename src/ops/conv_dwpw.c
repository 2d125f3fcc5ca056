/* FusedDepthwisePointwise on the CPU (see src/ops/conv_dwpw.h): the
 * depthwise 3x3 runs into scratch with the kernels the stand-alone Conv uses
 * (conv_depthwise_direct_run, else through zero-padded planes), then the 1x1
 * through the NCHW GEMM (conv_gemm_run, weights packed once in prepare),
 * then the residual and the activation as the stand-alone Conv with a fused
 * residual does them. The float math is the unfused steps' own, so fused and
 * unfused plans give the same outputs. */
#include "ops/conv_dwpw.h"

#include "ops/conv_kernels.h"

#include <stdlib.h>
#include <string.h>

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

static fg_status *read_activation(const op_call *call, op_activation *act)
{
    memset(act, 0, sizeof *act);
    int64_t kind = ir_attr_int(call->node, "dw_activation", OP_ACT_NONE);
    if (kind < OP_ACT_NONE || kind > OP_ACT_SILU)
        return op_error(call, FG_ERR_CORRUPT, "unknown depthwise activation %lld", (long long)kind);
    act->kind = (op_act_kind)kind;
    const float *params = NULL;
    int n = ir_attr_floats(call->node, "dw_activation_params", &params);
    if (n >= 1)
        act->alpha = params[0];
    if (n >= 2)
        act->beta = params[1];
    return NULL;
}

static fg_status *check_f32(const op_call *call, int i, const char *what)
{
    if (call->in[i].dtype != FG_FLOAT32)
        return op_error(call, FG_ERR_DTYPE, "%s has dtype %s; only float32 is supported", what,
                        fg_dtype_name(call->in[i].dtype));
    return NULL;
}

fg_status *dwpw_geometry(const op_call *call, dwpw_geom *g)
{
    memset(g, 0, sizeof *g);
    if (call->n_in < 5 || call->n_in > 6 || !op_has_input(call, DWPW_IN_X) || !op_has_input(call, DWPW_IN_DW_W) ||
        !op_has_input(call, DWPW_IN_PW_W))
        return op_error(call, FG_ERR_CORRUPT, "expects inputs x, dw_w, [dw_b], pw_w, [pw_b], [residual]");
    const fg_tensor *x = &call->in[DWPW_IN_X], *dw = &call->in[DWPW_IN_DW_W], *pw = &call->in[DWPW_IN_PW_W];
    FG_TRY(check_f32(call, DWPW_IN_X, "x"));
    FG_TRY(check_f32(call, DWPW_IN_DW_W, "the depthwise weights"));
    FG_TRY(check_f32(call, DWPW_IN_PW_W, "the pointwise weights"));
    if (x->rank != 4)
        return op_error(call, FG_ERR_SHAPE, "x must be 4-D (NCHW), got rank %d", x->rank);
    g->batch = x->dims[0];
    g->c_in = x->dims[1];
    g->in_h = x->dims[2];
    g->in_w = x->dims[3];
    if (dw->rank != 4 || dw->dims[0] != g->c_in || dw->dims[1] != 1 || dw->dims[2] != 3 || dw->dims[3] != 3)
        return op_error(call, FG_ERR_SHAPE, "the depthwise weights must be [%lld, 1, 3, 3]", (long long)g->c_in);
    if (pw->rank != 4 || pw->dims[1] != g->c_in || pw->dims[2] != 1 || pw->dims[3] != 1)
        return op_error(call, FG_ERR_SHAPE, "the pointwise weights must be [Co, %lld, 1, 1]", (long long)g->c_in);
    g->c_out = pw->dims[0];
    g->has_dw_bias = op_has_input(call, DWPW_IN_DW_B);
    g->has_pw_bias = op_has_input(call, DWPW_IN_PW_B);
    g->has_residual = call->n_in > DWPW_IN_RESIDUAL && op_has_input(call, DWPW_IN_RESIDUAL);
    if (g->has_dw_bias) {
        FG_TRY(check_f32(call, DWPW_IN_DW_B, "the depthwise bias"));
        if (fg_tensor_numel(&call->in[DWPW_IN_DW_B]) != g->c_in)
            return op_error(call, FG_ERR_SHAPE, "the depthwise bias must have %lld elements", (long long)g->c_in);
    }
    if (g->has_pw_bias) {
        FG_TRY(check_f32(call, DWPW_IN_PW_B, "the pointwise bias"));
        if (fg_tensor_numel(&call->in[DWPW_IN_PW_B]) != g->c_out)
            return op_error(call, FG_ERR_SHAPE, "the pointwise bias must have %lld elements", (long long)g->c_out);
    }
    const int64_t *strides = NULL, *pads = NULL;
    if (ir_attr_ints(call->node, "strides", &strides) != 2 || ir_attr_ints(call->node, "pads", &pads) != 4)
        return op_error(call, FG_ERR_CORRUPT, "needs attributes strides (2 values) and pads (4 values)");
    g->stride_h = strides[0];
    g->stride_w = strides[1];
    g->pad_t = pads[0];
    g->pad_l = pads[1];
    g->pad_b = pads[2];
    g->pad_r = pads[3];
    for (int k = 0; k < 4; k++)
        if (pads[k] < 0 || pads[k] > 1)
            return op_error(call, FG_ERR_UNSUPPORTED, "pads must be 0 or 1");
    if (g->stride_h < 1 || g->stride_h > 2 || g->stride_w < 1 || g->stride_w > 2)
        return op_error(call, FG_ERR_UNSUPPORTED, "strides must be 1 or 2");
    FG_TRY(read_activation(call, &g->dw_act));
    int64_t span_h = g->in_h + g->pad_t + g->pad_b - 3, span_w = g->in_w + g->pad_l + g->pad_r - 3;
    if (span_h < 0 || span_w < 0)
        return op_error(call, FG_ERR_SHAPE, "input %lldx%lld is smaller than the 3x3 window", (long long)g->in_h,
                        (long long)g->in_w);
    g->out_h = span_h / g->stride_h + 1;
    g->out_w = span_w / g->stride_w + 1;
    if (g->has_residual) {
        const fg_tensor *r = &call->in[DWPW_IN_RESIDUAL];
        FG_TRY(check_f32(call, DWPW_IN_RESIDUAL, "the residual"));
        int64_t want[4] = {g->batch, g->c_out, g->out_h, g->out_w};
        if (!fg_shape_equal(r->rank, r->dims, 4, want))
            return op_error(call, FG_ERR_SHAPE, "the residual must be [%lld, %lld, %lld, %lld]", (long long)want[0],
                            (long long)want[1], (long long)want[2], (long long)want[3]);
    }
    return NULL;
}

fg_status *dwpw_infer(op_call *call)
{
    dwpw_geom g;
    FG_TRY(dwpw_geometry(call, &g));
    fg_tensor *y = &call->out[0];
    y->dtype = FG_FLOAT32;
    y->rank = 4;
    y->dims[0] = g.batch;
    y->dims[1] = g.c_out;
    y->dims[2] = g.out_h;
    y->dims[3] = g.out_w;
    return NULL;
}

typedef struct dwpw_state {
    dwpw_geom geom;
    conv2d_shape dw, pw;
    float *packed_w, *packed_b; /* the pointwise weights and bias, packed for conv_gemm_run */
    int dw_direct;              /* conv_depthwise_direct_run, else padded planes in scratch */
    int threads;                /* threads the scratch was sized for */
    size_t off_dw_pad, off_gemm; /* scratch: [mid][depthwise padded planes][gemm panels] */
} dwpw_state;

void dwpw_release(void *p)
{
    dwpw_state *s = p;
    if (!s)
        return;
    fg_aligned_free(s->packed_w);
    fg_aligned_free(s->packed_b);
    free(s);
}

fg_status *dwpw_prepare(op_call *call)
{
    dwpw_geom g;
    FG_TRY(dwpw_geometry(call, &g));
    if (!call->in[DWPW_IN_PW_W].data || (g.has_pw_bias && !call->in[DWPW_IN_PW_B].data))
        return op_error(call, FG_ERR_INTERNAL, "the pointwise weights must be constant");
    dwpw_state *s = fg_xcalloc(1, sizeof *s);
    if (!s)
        return op_error(call, FG_ERR_OUT_OF_MEMORY, "out of memory for the fused convolution's state");
    s->geom = g;
    s->threads = call->threads > 0 ? call->threads : 1;
    s->dw = (conv2d_shape){.batch = g.batch, .group = g.c_in, .icg = 1, .ocg = 1, .ih = g.in_h, .iw = g.in_w,
                           .oh = g.out_h, .ow = g.out_w, .kh = 3, .kw = 3, .sh = g.stride_h, .sw = g.stride_w,
                           .dh = 1, .dw = 1, .ph = g.pad_t, .pw = g.pad_l};
    s->pw = (conv2d_shape){.batch = g.batch, .group = 1, .icg = g.c_in, .ocg = g.c_out, .ih = g.out_h,
                           .iw = g.out_w, .oh = g.out_h, .ow = g.out_w, .kh = 1, .kw = 1, .sh = 1, .sw = 1,
                           .dh = 1, .dw = 1, .ph = 0, .pw = 0};
    size_t w_bytes = conv_gemm_packed_weights_floats(&s->pw) * sizeof(float);
    size_t b_bytes = conv_gemm_packed_bias_floats(&s->pw) * sizeof(float);
    s->packed_w = fg_aligned_alloc(w_bytes ? w_bytes : 64);
    s->packed_b = fg_aligned_alloc(b_bytes ? b_bytes : 64);
    if (!s->packed_w || !s->packed_b) {
        dwpw_release(s);
        return op_error(call, FG_ERR_OUT_OF_MEMORY, "out of memory for packed convolution weights (%zu bytes)",
                        w_bytes);
    }
    conv_gemm_pack(&s->pw, call->in[DWPW_IN_PW_W].data, g.has_pw_bias ? call->in[DWPW_IN_PW_B].data : NULL,
                   s->packed_w, s->packed_b);
    s->dw_direct = conv_depthwise_direct_ok(&s->dw);
    size_t mid_bytes = (size_t)(g.batch * g.c_in * g.out_h * g.out_w) * sizeof(float);
    size_t offset = align64(mid_bytes);
    s->off_dw_pad = offset;
    if (!s->dw_direct)
        offset += align64(conv_depthwise_scratch_bytes(&s->dw, s->threads));
    s->off_gemm = offset;
    offset += align64(conv_gemm_scratch_bytes(&s->pw, s->threads));
    call->scratch_bytes = offset;
    call->state = s;
    return NULL;
}

fg_status *dwpw_run(op_call *call)
{
    dwpw_state *s = call->state;
    if (!s)
        return op_error(call, FG_ERR_INTERNAL, "the fused convolution was not prepared");
    const dwpw_geom *g = &s->geom;
    int threads = call->threads > 0 ? call->threads : 1;
    if (threads > s->threads)
        threads = s->threads;
    char *scratch = call->scratch;
    float *mid = (float *)scratch;
    const float *x = call->in[DWPW_IN_X].data, *dw_w = call->in[DWPW_IN_DW_W].data;
    const float *dw_b = g->has_dw_bias ? call->in[DWPW_IN_DW_B].data : NULL;
    if (s->dw_direct)
        conv_depthwise_direct_run(&s->dw, dw_w, dw_b, x, mid, &g->dw_act, threads);
    else
        conv_depthwise_padded_run(&s->dw, dw_w, dw_b, x, mid, &g->dw_act, threads, scratch + s->off_dw_pad);
    float *y = call->out[0].data;
    if (!g->has_residual) {
        conv_gemm_run(&s->pw, s->packed_w, s->packed_b, mid, y, &call->act, threads, scratch + s->off_gemm);
        return NULL;
    }
    const op_activation none = {OP_ACT_NONE, 0, 0};
    conv_gemm_run(&s->pw, s->packed_w, s->packed_b, mid, y, &none, threads, scratch + s->off_gemm);
    const float *r = call->in[DWPW_IN_RESIDUAL].data;
    int64_t n = fg_tensor_numel(&call->out[0]), chunk = 16384, chunks = (n + chunk - 1) / chunk;
#pragma omp parallel for num_threads(threads) if (chunks > 1)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t start = c * chunk, len = n - start < chunk ? n - start : chunk;
        for (int64_t i = start; i < start + len; i++)
            y[i] += r[i];
        op_activation_apply(&call->act, y + start, len);
    }
    return NULL;
}
