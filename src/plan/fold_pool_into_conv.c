/* AveragePool -> 1x1 Conv as one convolution.
 *
 * A ResNet-D shortcut (SCRFD's backbone: AveragePool 2x2 stride 2, then a
 * 1x1 convolution) averages k x k windows that do not overlap and then
 * mixes channels. Both are linear, so the pair is one k x k convolution of
 * stride k whose weights are the 1x1 weights divided by k * k, repeated
 * over the window:
 *   sum_c w[o][c] * (sum_ij x[c][kh+i][kw+j]) / k^2 = sum_c sum_ij (w[o][c] / k^2) * x[c][kh+i][kw+j]
 * One step instead of two, and the pooled map never goes through memory.
 *
 * The pool: 2-D AveragePool on float32 with static shapes, window equal to
 * its strides, no padding, dilation 1, and each input axis an exact
 * multiple of the window (so ceil_mode and count_include_pad change
 * nothing); only the convolution reads its output. The convolution: 2-D,
 * 1x1, stride 1, no padding, group 1, constant weights, no fused residual.
 * The new convolution takes the convolution's place (with its bias,
 * activation and anything later passes fuse into it); the pool goes. The
 * environment variable FACEGRAPH_FOLD_POOLS=0 turns the pass off. */
#include "plan/plan_internal.h"

#include "ops/pool_geometry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 1 when step s is an AveragePool that the pass folds, with its window in k. */
static int exact_average_pool(const plan *p, const plan_step *s, int64_t k[2])
{
    if (s->dynamic || s->control || strcmp(s->node->op_type, "AveragePool") != 0 ||
        (s->node->domain && s->node->domain[0] && strcmp(s->node->domain, "ai.onnx") != 0) || s->n_in != 1 ||
        s->n_out != 1 || !plan_value_plain_f32(p, s->in[0]) || !plan_value_plain_f32(p, s->out[0]))
        return 0;
    pool_geom g;
    fg_status *st = pool_geometry(&s->call, POOL_AVG, 0, &g);
    if (st) {
        fg_status_free(st);
        return 0;
    }
    if (g.nsp != 2)
        return 0;
    for (int a = 0; a < 2; a++) {
        if (g.k[a] != g.s[a] || g.d[a] != 1 || g.pad_l[a] || g.pad_r[a] || g.in[a] != g.out[a] * g.k[a])
            return 0;
        k[a] = g.k[a];
    }
    return 1;
}

static int pointwise_conv(const plan *p, const plan_step *c, int x, conv_geom *g)
{
    if (!plan_conv2d_step(p, c, g) || c->in[0] != x || c->n_in > 3 || g->group != 1)
        return 0;
    for (int a = 0; a < 2; a++)
        if (g->kernel[a] != 1 || g->stride[a] != 1 || g->dilation[a] != 1 || g->pad_l[a] || g->pad_r[a])
            return 0;
    for (int i = 1; i < c->n_in; i++)
        if (c->in[i] == x)
            return 0;
    return 1;
}

/* Step ci (the convolution) becomes the k x k, stride-k convolution of step pi's input; step pi goes. */
static fg_status *fold(plan *p, char *removed, int pi, int ci, const int64_t k[2], const conv_geom *g)
{
    plan_step *pool = &p->steps[pi], *c = &p->steps[ci];
    const int64_t taps = k[0] * k[1];
    const int64_t dims[4] = {g->c_out, g->c_in, k[0], k[1]};
    float *w;
    FG_TRY(plan_own_alloc(p, sizeof(float) * (size_t)(g->c_out * g->c_in * taps), (void **)&w));
    const float *w1 = p->values[c->in[1]].t.data;
    for (int64_t oc = 0; oc < g->c_out * g->c_in; oc++)
        for (int64_t t = 0; t < taps; t++)
            w[oc * taps + t] = w1[oc] / (float)taps;
    const int w_id = plan_add_const_value(p, FG_FLOAT32, 4, dims, w);
    if (w_id < 0)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory while planning");
    conv_geom kg = *g;
    for (int a = 0; a < 2; a++) {
        kg.kernel[a] = k[a];
        kg.stride[a] = k[a];
    }
    char name[200];
    snprintf(name, sizeof name, "%s+%s (average pool folded in)", pool->node->name ? pool->node->name : "",
             c->node->name ? c->node->name : "");
    const ir_node *node;
    FG_TRY(plan_conv_node(p, name, &kg, 1, pool->in[0], w_id, c->n_in > 2 ? c->in[2] : -1, c->out[0], &node));
    p->values[pool->out[0]].kind = PLAN_UNUSED;
    removed[pi] = 1;
    fg_status *st = plan_replace_step(p, c, node, op_find("", "Conv"), c->call.act);
    return st ? fg_error_wrap(st, "folding an average pool into a convolution (a bug in facegraph)") : NULL;
}

fg_status *fold_average_pools(plan *p, char *removed)
{
    const char *env = getenv("FACEGRAPH_FOLD_POOLS");
    if (env && strcmp(env, "0") == 0)
        return NULL;
    plan_readers r;
    fg_status *st = plan_readers_count(p, removed, &r);
    for (int pi = 0; pi < p->n_steps && !st; pi++) {
        int64_t k[2];
        conv_geom g;
        if (removed[pi] || !exact_average_pool(p, &p->steps[pi], k))
            continue;
        const int y = p->steps[pi].out[0], ci = r.reader[y];
        if (r.consumers[y] != 1 || ci < 0 || removed[ci] || !pointwise_conv(p, &p->steps[ci], y, &g))
            continue;
        st = fold(p, removed, pi, ci, k, &g);
        if (!st)
            p->n_folded_pools++;
    }
    plan_readers_free(&r);
    return st;
}
