/* Stand-alone check of src/cuda/kernels/conv_depthwise.cuh (depthwise
 * convolution) and src/cuda/kernels/pool_window.cuh (2-D MaxPool and
 * AveragePool): every kernel variant on many shapes, with aligned and
 * misaligned buffers, against a double-precision CPU reference (the 3x3
 * depthwise kernels must also equal the generic kernel bit for bit), then
 * per-shape kernel times (a CUDA graph of 200 launches, timed with events)
 * on the face models' shapes.
 * nvcc -O3 -arch=sm_90 -I src -I include tests/gpu/dwpool_test.cu -o build-gpu/dwpool_test
 * (tests/gpu/run.sh builds and runs it). */
#include "cuda/cuda_ops.h"
#include "cuda/kernels/kernel_util.cuh"
#include "cuda/kernels/conv_depthwise.cuh"
#include "cuda/kernels/pool_window.cuh"
#include "kernel_test_util.cuh"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define TIMED_LAUNCHES 200

static int out_dim(int in, int k, int s, int d, int p0, int p1, int ceil_mode)
{
    int room = in + p0 + p1 - ((k - 1) * d + 1);
    int out = (ceil_mode ? (room + s - 1) / s : room / s) + 1;
    if (ceil_mode && (out - 1) * s >= in + p0)
        out--;
    return out;
}

/* Time of one launch (us): a graph of TIMED_LAUNCHES launches, best of 3. */
typedef cudaError_t (*launch_fn)(const void *ctx, cudaStream_t s);

static float time_launches(launch_fn fn, const void *ctx)
{
    cudaStream_t s;
    cudaStreamCreate(&s);
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    float best = -1.0f;
    cudaGraph_t g = NULL;
    cudaGraphExec_t ge = NULL;
    fn(ctx, s); /* warm-up, outside the capture */
    if (cudaStreamSynchronize(s) != cudaSuccess)
        goto done;
    cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal);
    for (int r = 0; r < TIMED_LAUNCHES; r++)
        fn(ctx, s);
    if (cudaStreamEndCapture(s, &g) != cudaSuccess || cudaGraphInstantiate(&ge, g, 0) != cudaSuccess)
        goto done;
    cudaGraphLaunch(ge, s);
    for (int r = 0; r < 3; r++) {
        cudaEventRecord(e0, s);
        cudaGraphLaunch(ge, s);
        cudaEventRecord(e1, s);
        cudaEventSynchronize(e1);
        float ms;
        cudaEventElapsedTime(&ms, e0, e1);
        if (best < 0 || ms < best)
            best = ms;
    }
    best = best * 1000.0f / TIMED_LAUNCHES;
done:
    if (ge)
        cudaGraphExecDestroy(ge);
    if (g)
        cudaGraphDestroy(g);
    cudaGetLastError();
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    cudaStreamDestroy(s);
    return best;
}

/* ================================================================ depthwise */

typedef struct dw_shape {
    int n, c, h, w, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, bias, act;
} dw_shape;

typedef struct dw_ctx {
    const dw_plan *plan;
    const float *x, *w, *b;
    float *y;
    op_activation act;
} dw_ctx;

static cudaError_t dw_launch_ctx(const void *ctx, cudaStream_t s)
{
    const dw_ctx *c = (const dw_ctx *)ctx;
    return dw_launch(c->plan, c->x, c->w, c->b, c->y, c->act, s);
}

static int dw_plan_for(const dw_shape *t, dw_plan *plan, int *oh, int *ow)
{
    *oh = out_dim(t->h, t->kh, t->sh, t->dh, t->pt, t->pb, 0);
    *ow = out_dim(t->w, t->kw, t->sw, t->dw, t->pl, t->pr, 0);
    int64_t in[2] = {t->h, t->w}, out[2] = {*oh, *ow}, k[2] = {t->kh, t->kw}, st[2] = {t->sh, t->sw},
            dl[2] = {t->dh, t->dw}, pl[2] = {t->pt, t->pl};
    return dw_plan_init(plan, t->n, t->c, in, out, k, st, dl, pl);
}

static void dw_print_shape(const dw_shape *t, int oh, int ow)
{
    printf("dw n%d c%d %dx%d k%dx%d s%d,%d d%d,%d p%d,%d,%d,%d %s act%d -> %dx%d:", t->n, t->c, t->h, t->w, t->kh,
           t->kw, t->sh, t->sw, t->dh, t->dw, t->pt, t->pl, t->pb, t->pr, t->bias ? "bias" : "nobias", t->act, oh, ow);
}

static int dw_check(const dw_shape *t)
{
    dw_plan plan;
    int oh, ow;
    if (dw_plan_for(t, &plan, &oh, &ow) != 0) {
        printf("dw plan failed\n");
        return 1;
    }
    size_t nx = (size_t)t->n * t->c * t->h * t->w, nw = (size_t)t->c * t->kh * t->kw,
           ny = (size_t)t->n * t->c * oh * ow;
    float *x = (float *)malloc(nx * 4), *w = (float *)malloc(nw * 4), *b = (float *)malloc(t->c * 4);
    double *ref = (double *)malloc(ny * 8);
    float *got = (float *)malloc(ny * 4), *generic = (float *)malloc(ny * 4);
    unsigned seed = 777u + t->c * 13 + t->h;
    for (size_t i = 0; i < nx; i++)
        x[i] = urand(&seed);
    for (size_t i = 0; i < nw; i++)
        w[i] = urand(&seed) * 0.5f;
    for (int i = 0; i < t->c; i++)
        b[i] = urand(&seed);
    double maxref = 0;
    for (int n = 0; n < t->n; n++)
        for (int c = 0; c < t->c; c++)
            for (int y = 0; y < oh; y++)
                for (int xx = 0; xx < ow; xx++) {
                    double acc = 0;
                    for (int i = 0; i < t->kh; i++)
                        for (int j = 0; j < t->kw; j++) {
                            int ih = y * t->sh - t->pt + i * t->dh, iw = xx * t->sw - t->pl + j * t->dw;
                            if (ih < 0 || ih >= t->h || iw < 0 || iw >= t->w)
                                continue;
                            acc += (double)x[(((size_t)n * t->c + c) * t->h + ih) * t->w + iw] *
                                   w[((size_t)c * t->kh + i) * t->kw + j];
                        }
                    if (t->bias)
                        acc += b[c];
                    double v = act_ref(t->act, acc);
                    ref[(((size_t)n * t->c + c) * oh + y) * ow + xx] = v;
                    if (fabs(v) > maxref)
                        maxref = fabs(v);
                }
    /* one extra float in front of x and y: offset 1 makes them misaligned */
    float *dx, *dw, *db, *dy;
    cudaMalloc(&dx, (nx + 4) * 4);
    cudaMalloc(&dw, nw * 4);
    cudaMalloc(&db, t->c * 4);
    cudaMalloc(&dy, (ny + 4) * 4);
    cudaMemcpy(dw, w, nw * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(db, b, t->c * 4, cudaMemcpyHostToDevice);
    op_activation act = {(op_act_kind)t->act, 0.1f, 0.0f};
    int fails = 0, fast_kind = plan.kind;
    dw_print_shape(t, oh, ow);
    static const int rows_list[] = {1, 2, 3, 4};
    for (int offset = 0; offset < 2; offset++) {
        cudaMemcpy(dx + offset, x, nx * 4, cudaMemcpyHostToDevice);
        /* generic first (its output is the bit-exact reference of the others) */
        for (int v = -1; v < (fast_kind == DW_GENERIC ? 0 : 4); v++) {
            dw_plan run = plan;
            int kind = v < 0 ? DW_GENERIC : fast_kind;
            dw_plan_force(&run, kind, v < 0 ? 0 : rows_list[v]);
            cudaMemset(dy, 0xff, (ny + 4) * 4);
            cudaError_t e = dw_launch(&run, dx + offset, dw, t->bias ? db : NULL, dy + offset, act, 0);
            if (e == cudaSuccess)
                e = cudaDeviceSynchronize();
            char name[32];
            snprintf(name, sizeof name, "%s%s%s", dw_kind_name(kind), offset ? "/misaligned" : "",
                     kind == DW_GENERIC ? "" : (v == 0 ? "/r1" : v == 1 ? "/r2" : v == 2 ? "/r3" : "/r4"));
            if (e != cudaSuccess) {
                printf(" %s:CUDA-ERROR(%s)", name, cudaGetErrorString(e));
                fails++;
                continue;
            }
            cudaMemcpy(got, dy + offset, ny * 4, cudaMemcpyDeviceToHost);
            double maxerr = 0;
            size_t differ = 0;
            for (size_t i = 0; i < ny; i++) {
                double d = fabs(got[i] - ref[i]);
                if (!(d <= maxerr))
                    maxerr = isnan(d) ? INFINITY : d;
                if (v >= 0 && !(got[i] == generic[i]))
                    differ++;
            }
            if (v < 0)
                memcpy(generic, got, ny * 4);
            int ok = maxerr <= 1e-5 * maxref + 1e-6 && differ == 0;
            printf(" %s:%s(%.1e", name, ok ? "ok" : "FAIL", maxerr);
            if (differ)
                printf(", %zu differ from generic", differ);
            printf(")");
            fails += !ok;
        }
    }
    printf("\n");
    cudaFree(dx);
    cudaFree(dw);
    cudaFree(db);
    cudaFree(dy);
    free(x), free(w), free(b), free(ref), free(got), free(generic);
    return fails;
}

static void dw_bench(const dw_shape *t)
{
    dw_plan plan;
    int oh, ow;
    if (dw_plan_for(t, &plan, &oh, &ow) != 0)
        return;
    size_t nx = (size_t)t->n * t->c * t->h * t->w, nw = (size_t)t->c * t->kh * t->kw,
           ny = (size_t)t->n * t->c * oh * ow;
    float *dx, *dw, *db, *dy;
    cudaMalloc(&dx, nx * 4);
    cudaMalloc(&dw, nw * 4);
    cudaMalloc(&db, t->c * 4);
    cudaMalloc(&dy, ny * 4);
    cudaMemset(dx, 0, nx * 4);
    cudaMemset(dw, 0, nw * 4);
    cudaMemset(db, 0, t->c * 4);
    dw_ctx ctx = {&plan, dx, dw, db, dy, {OP_ACT_RELU, 0, 0}};
    printf("dw %dx%dx%dx%d k%d s%d (%.1f MB):", t->n, t->c, t->h, t->w, t->kh, t->sh, (nx + ny) * 4 / 1e6);
    int fast_kind = plan.kind, default_rows = (int)plan.fast.rows;
    for (int v = -1; v < (fast_kind == DW_GENERIC ? 0 : 3); v++) {
        dw_plan run = plan;
        int rows = v == 0 ? 1 : v == 1 ? 2 : 4;
        dw_plan_force(&run, v < 0 ? DW_GENERIC : fast_kind, v < 0 ? 0 : (uint32_t)rows);
        ctx.plan = &run;
        float us = time_launches(dw_launch_ctx, &ctx);
        if (v < 0)
            printf(" generic=%.2f", us);
        else
            printf(" %s/r%d%s=%.2f", dw_kind_name(fast_kind), rows, rows == default_rows ? "*" : "", us);
    }
    printf("  us\n");
    cudaFree(dx);
    cudaFree(dw);
    cudaFree(db);
    cudaFree(dy);
}

/* ================================================================ pooling */

typedef struct pool_shape {
    int n, c, h, w, kh, kw, sh, sw, pt, pl, pb, pr, is_max, include_pad, ceil_mode;
} pool_shape;

typedef struct pool_ctx {
    const pw_plan *plan;
    const float *x;
    float *y;
} pool_ctx;

static cudaError_t pool_launch_ctx(const void *ctx, cudaStream_t s)
{
    const pool_ctx *c = (const pool_ctx *)ctx;
    return pw_launch(c->plan, c->x, c->y, s);
}

static int pool_plan_for(const pool_shape *t, pw_plan *plan, int *oh, int *ow)
{
    *oh = out_dim(t->h, t->kh, t->sh, 1, t->pt, t->pb, t->ceil_mode);
    *ow = out_dim(t->w, t->kw, t->sw, 1, t->pl, t->pr, t->ceil_mode);
    int64_t in[2] = {t->h, t->w}, out[2] = {*oh, *ow}, k[2] = {t->kh, t->kw}, s[2] = {t->sh, t->sw},
            pl[2] = {t->pt, t->pl}, pr[2] = {t->pb, t->pr};
    return pw_plan_init(plan, t->is_max, t->include_pad, (int64_t)t->n * t->c, in, out, k, s, pl, pr);
}

static int inside(int start, int k, int lo, int hi)
{
    int b = start > lo ? start : lo, e = start + k < hi ? start + k : hi;
    return e > b ? e - b : 0;
}

static int pool_check(const pool_shape *t)
{
    pw_plan plan;
    int oh, ow;
    int planned = pool_plan_for(t, &plan, &oh, &ow);
    printf("%s n%d c%d %dx%d k%dx%d s%d,%d p%d,%d,%d,%d%s%s -> %dx%d [%s]:", t->is_max ? "max" : "avg", t->n, t->c,
           t->h, t->w, t->kh, t->kw, t->sh, t->sw, t->pt, t->pl, t->pb, t->pr, t->include_pad ? " include_pad" : "",
           t->ceil_mode ? " ceil" : "", oh, ow, pw_kind_name(planned));
    if (planned == PW_NONE) {
        printf(" plan failed\n");
        return 1;
    }
    int planes = t->n * t->c;
    size_t nx = (size_t)planes * t->h * t->w, ny = (size_t)planes * oh * ow;
    float *x = (float *)malloc(nx * 4), *got = (float *)malloc(ny * 4);
    double *ref = (double *)malloc(ny * 8);
    unsigned seed = 4242u + t->h * 3 + t->kh;
    for (size_t i = 0; i < nx; i++)
        x[i] = urand(&seed);
    double maxref = 0;
    for (int p = 0; p < planes; p++)
        for (int y = 0; y < oh; y++)
            for (int xx = 0; xx < ow; xx++) {
                int ih0 = y * t->sh - t->pt, iw0 = xx * t->sw - t->pl;
                double best = -INFINITY, sum = 0;
                int taps = 0;
                for (int i = 0; i < t->kh; i++)
                    for (int j = 0; j < t->kw; j++) {
                        int ih = ih0 + i, iw = iw0 + j;
                        if (ih < 0 || ih >= t->h || iw < 0 || iw >= t->w)
                            continue;
                        double v = x[((size_t)p * t->h + ih) * t->w + iw];
                        best = v > best ? v : best;
                        sum += v;
                        taps++;
                    }
                double v;
                if (t->is_max) {
                    v = best;
                } else {
                    int count = t->include_pad ? inside(ih0, t->kh, -t->pt, t->h + t->pb) *
                                                     inside(iw0, t->kw, -t->pl, t->w + t->pr)
                                               : taps;
                    v = taps > 0 && count > 0 ? sum / count : 0.0;
                }
                ref[((size_t)p * oh + y) * ow + xx] = v;
                if (fabs(v) > maxref && !isinf(v))
                    maxref = fabs(v);
            }
    float *dx, *dy;
    cudaMalloc(&dx, (nx + 4) * 4);
    cudaMalloc(&dy, (ny + 4) * 4);
    int fails = 0;
    for (int offset = 0; offset < 2; offset++) {
        cudaMemcpy(dx + offset, x, nx * 4, cudaMemcpyHostToDevice);
        for (int kind = PW_PAIR; kind < PW_KIND_COUNT; kind++) {
            pw_plan run = plan;
            if (pw_plan_force(&run, kind) != 0)
                continue;
            cudaMemset(dy, 0xff, (ny + 4) * 4);
            cudaError_t e = pw_launch(&run, dx + offset, dy + offset, 0);
            if (e == cudaSuccess)
                e = cudaDeviceSynchronize();
            if (e != cudaSuccess) {
                printf(" %s%s:CUDA-ERROR(%s)", pw_kind_name(kind), offset ? "/misaligned" : "", cudaGetErrorString(e));
                fails++;
                continue;
            }
            cudaMemcpy(got, dy + offset, ny * 4, cudaMemcpyDeviceToHost);
            double maxerr = 0;
            for (size_t i = 0; i < ny; i++) {
                double d = got[i] == ref[i] ? 0.0 : fabs(got[i] - ref[i]); /* -inf == -inf */
                if (!(d <= maxerr))
                    maxerr = isnan(d) ? INFINITY : d;
            }
            /* max: exact; average: float32 sums (the CPU's fast path does the same) */
            int ok = t->is_max ? maxerr == 0 : maxerr <= 1e-6 * (maxref > 1 ? maxref : 1);
            printf(" %s%s%s:%s(%.1e)", pw_kind_name(kind), kind == planned ? "*" : "", offset ? "/misaligned" : "",
                   ok ? "ok" : "FAIL", maxerr);
            fails += !ok;
        }
    }
    printf("\n");
    cudaFree(dx);
    cudaFree(dy);
    free(x), free(got), free(ref);
    return fails;
}

static void pool_bench(const pool_shape *t)
{
    pw_plan plan;
    int oh, ow;
    int planned = pool_plan_for(t, &plan, &oh, &ow);
    if (planned == PW_NONE)
        return;
    int planes = t->n * t->c;
    size_t nx = (size_t)planes * t->h * t->w, ny = (size_t)planes * oh * ow;
    float *dx, *dy;
    cudaMalloc(&dx, nx * 4);
    cudaMalloc(&dy, ny * 4);
    cudaMemset(dx, 0, nx * 4);
    printf("%s %dx%dx%dx%d k%dx%d s%d -> %dx%d (%.1f MB):", t->is_max ? "max" : "avg", t->n, t->c, t->h, t->w, t->kh,
           t->kw, t->sh, oh, ow, (nx + ny) * 4 / 1e6);
    for (int kind = PW_PAIR; kind < PW_KIND_COUNT; kind++) {
        pw_plan run = plan;
        if (pw_plan_force(&run, kind) != 0)
            continue;
        pool_ctx ctx = {&run, dx, dy};
        printf(" %s%s=%.2f", pw_kind_name(kind), kind == planned ? "*" : "", time_launches(pool_launch_ctx, &ctx));
    }
    printf("  us\n");
    cudaFree(dx);
    cudaFree(dy);
}

int main(void)
{
    static const dw_shape dw_tests[] = {
        /* n c h w kh kw sh sw dh dw pt pl pb pr bias act */
        {1, 16, 320, 320, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, OP_ACT_RELU},
        {1, 16, 320, 320, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, OP_ACT_NONE},
        {1, 32, 160, 160, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, OP_ACT_RELU},
        {1, 32, 160, 160, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, OP_ACT_RELU},
        {1, 64, 56, 56, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, OP_ACT_LEAKY_RELU},
        {2, 8, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, OP_ACT_RELU},    /* 7x7 planes */
        {1, 5, 7, 7, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, OP_ACT_NONE},    /* stride 2, odd input */
        {1, 3, 9, 13, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0, 1, OP_ACT_RELU},   /* stride 2, pads 0 */
        {1, 4, 10, 10, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 0, OP_ACT_NONE},  /* pads 0 */
        {1, 6, 11, 13, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, OP_ACT_RELU},  /* width 13 */
        {1, 6, 15, 17, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, OP_ACT_NONE},  /* stride 2, 8x9 out */
        {1, 3, 12, 12, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, 1, OP_ACT_RELU},  /* SAME_UPPER-like */
        {1, 3, 12, 16, 3, 3, 2, 2, 1, 1, 1, 1, 0, 0, 1, OP_ACT_RELU},  /* SAME_LOWER-like */
        {1, 7, 8, 8, 3, 3, 1, 1, 1, 1, 2, 2, 2, 2, 1, OP_ACT_NONE},    /* pads 2 */
        {1, 4, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 0, 0, 1, OP_ACT_SIGMOID},
        {1, 4, 16, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, OP_ACT_LEAKY_RELU},
        {1, 4, 16, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, 2, 1, OP_ACT_RELU},  /* right pad 2: out_w > in_w */
        {2, 16, 33, 35, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, OP_ACT_RELU},
        {2, 16, 33, 35, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, OP_ACT_RELU},
        {1, 24, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, OP_ACT_NONE},   /* 1x1 plane */
        {1, 24, 2, 3, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, OP_ACT_NONE},
        {1, 8, 20, 20, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 1, OP_ACT_RELU},  /* generic: 5x5 */
        {1, 8, 20, 20, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1, OP_ACT_RELU},  /* generic: dilation */
        {1, 8, 20, 20, 3, 3, 1, 2, 1, 1, 1, 1, 1, 1, 1, OP_ACT_RELU},  /* generic: strides 1, 2 */
        {2, 8, 1, 50, 1, 3, 1, 1, 1, 1, 0, 1, 0, 1, 1, OP_ACT_NONE},   /* generic: 1-D */
        {1, 512, 7, 7, 7, 7, 1, 1, 1, 1, 0, 0, 0, 0, 1, OP_ACT_NONE},  /* generic: global depthwise */
    };
    static const pool_shape pool_tests[] = {
        /* n c h w kh kw sh sw pt pl pb pr max include_pad ceil */
        {1, 16, 320, 320, 2, 2, 2, 2, 0, 0, 0, 0, 1, 0, 0},
        {1, 16, 320, 320, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0},
        {1, 16, 28, 28, 28, 28, 1, 1, 0, 0, 0, 0, 0, 0, 0}, /* pfld */
        {1, 32, 14, 14, 14, 14, 1, 1, 0, 0, 0, 0, 0, 0, 0}, /* pfld */
        {1, 16, 28, 28, 28, 28, 1, 1, 0, 0, 0, 0, 1, 0, 0},
        {1, 8, 7, 7, 7, 7, 1, 1, 0, 0, 0, 0, 0, 0, 0},
        {1, 2, 40, 40, 20, 20, 20, 20, 0, 0, 0, 0, 0, 0, 0}, /* 2x2 outputs of 400-tap windows */
        {1, 2, 41, 39, 20, 20, 20, 20, 1, 1, 1, 1, 0, 1, 1},
        {1, 3, 7, 7, 2, 2, 2, 2, 0, 0, 0, 0, 1, 0, 1},      /* ceil_mode: 4x4 */
        {1, 3, 7, 7, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 1},
        {1, 3, 7, 7, 2, 2, 2, 2, 0, 0, 1, 1, 0, 1, 0},
        {1, 3, 8, 12, 2, 2, 2, 2, 1, 1, 1, 1, 1, 0, 0},     /* pair with leading pads */
        {1, 3, 8, 12, 2, 2, 2, 2, 1, 1, 1, 1, 0, 1, 0},
        {2, 5, 13, 11, 3, 3, 2, 2, 0, 0, 0, 0, 1, 0, 0},
        {1, 4, 9, 10, 3, 3, 2, 2, 1, 1, 1, 1, 1, 0, 0},
        {1, 4, 9, 10, 3, 3, 2, 2, 1, 1, 1, 1, 0, 1, 0},
        {1, 4, 9, 10, 3, 3, 1, 1, 1, 1, 1, 1, 0, 0, 0},
        {1, 4, 12, 12, 5, 5, 3, 3, 2, 2, 2, 2, 0, 1, 1},
        {1, 4, 12, 12, 5, 5, 3, 3, 2, 2, 2, 2, 1, 0, 1},
        {1, 64, 112, 112, 3, 3, 2, 2, 1, 1, 1, 1, 1, 0, 0}, /* ResNet stem */
        {1, 6, 1, 30, 1, 3, 1, 2, 0, 1, 0, 1, 0, 0, 0},     /* 1-D */
    };
    int fails = 0, failed_shapes = 0, shapes = 0;
    for (size_t i = 0; i < sizeof dw_tests / sizeof dw_tests[0]; i++, shapes++) {
        int f = dw_check(&dw_tests[i]);
        fails += f;
        failed_shapes += f != 0;
    }
    for (size_t i = 0; i < sizeof pool_tests / sizeof pool_tests[0]; i++, shapes++) {
        int f = pool_check(&pool_tests[i]);
        fails += f;
        failed_shapes += f != 0;
    }
    printf("correctness: %d failures\n", fails);
    printf("dwpool: %d passed, %d failed\n\n", shapes - failed_shapes, failed_shapes);

    static const dw_shape dw_perf[] = {
        {1, 16, 320, 320, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 16, 320, 320, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 16, 160, 160, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 32, 160, 160, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 32, 160, 160, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 64, 80, 80, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 64, 80, 80, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 64, 56, 56, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 64, 40, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 128, 28, 28, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 64, 20, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 256, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 512, 7, 7, 7, 7, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0},
    };
    static const pool_shape pool_perf[] = {
        {1, 16, 320, 320, 2, 2, 2, 2, 0, 0, 0, 0, 1, 0, 0},
        {1, 32, 160, 160, 2, 2, 2, 2, 0, 0, 0, 0, 1, 0, 0},
        {1, 64, 80, 80, 2, 2, 2, 2, 0, 0, 0, 0, 1, 0, 0},
        {1, 16, 28, 28, 28, 28, 1, 1, 0, 0, 0, 0, 0, 0, 0},
        {1, 32, 14, 14, 14, 14, 1, 1, 0, 0, 0, 0, 0, 0, 0},
        {1, 64, 112, 112, 3, 3, 2, 2, 1, 1, 1, 1, 1, 0, 0},
        {1, 128, 40, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 0},
    };
    printf("kernel time per launch (us; graph of %d launches, best of 3; * = the default choice):\n",
           TIMED_LAUNCHES);
    for (size_t i = 0; i < sizeof dw_perf / sizeof dw_perf[0]; i++)
        dw_bench(&dw_perf[i]);
    for (size_t i = 0; i < sizeof pool_perf / sizeof pool_perf[0]; i++)
        pool_bench(&pool_perf[i]);
    return fails ? 1 : 0;
}
