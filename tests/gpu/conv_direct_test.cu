/* Stand-alone check of src/cuda/kernels/conv_direct.cuh: every variant on
 * many shapes against a double-precision CPU reference, then per-variant
 * kernel timings (graph of 20 launches) on the face models' shapes.
 * nvcc -O3 -arch=sm_90 -I src -I include tests/gpu/conv_direct_test.cu -o build-gpu/conv_direct_test
 * (tests/gpu/run.sh builds and runs it). */
#include "cuda/cuda_ops.h"
#include "cuda/kernels/kernel_util.cuh"
#include "cuda/kernels/conv_direct.cuh"
#include "kernel_test_util.cuh"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct shape {
    int n, ci, co, h, w, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, act;
    int res, no_bias; /* a fused residual added before the activation; no bias */
} shape;

static int out_dim(int in, int k, int s, int d, int p0, int p1)
{
    return (in + p0 + p1 - ((k - 1) * d + 1)) / s + 1;
}

static int check(const shape *t)
{
    int oh = out_dim(t->h, t->kh, t->sh, t->dh, t->pt, t->pb), ow = out_dim(t->w, t->kw, t->sw, t->dw, t->pl, t->pr);
    size_t nx = (size_t)t->n * t->ci * t->h * t->w, nw = (size_t)t->co * t->ci * t->kh * t->kw,
           ny = (size_t)t->n * t->co * oh * ow;
    float *x = (float *)malloc(nx * 4), *w = (float *)malloc(nw * 4), *b = (float *)malloc(t->co * 4);
    double *ref = (double *)malloc(ny * 8);
    float *got = (float *)malloc(ny * 4);
    float *res = (float *)malloc(ny * 4);
    unsigned seed = 12345u + t->ci * 7 + t->co;
    for (size_t i = 0; i < nx; i++)
        x[i] = urand(&seed);
    for (size_t i = 0; i < nw; i++)
        w[i] = urand(&seed) * 0.3f;
    for (int i = 0; i < t->co; i++)
        b[i] = t->no_bias ? 0.0f : urand(&seed);
    for (size_t i = 0; i < ny; i++)
        res[i] = t->res ? urand(&seed) : 0.0f;
    double maxref = 0;
    for (int n = 0; n < t->n; n++)
        for (int m = 0; m < t->co; m++)
            for (int y = 0; y < oh; y++)
                for (int xx = 0; xx < ow; xx++) {
                    double acc = 0;
                    for (int c = 0; c < t->ci; c++)
                        for (int i = 0; i < t->kh; i++)
                            for (int j = 0; j < t->kw; j++) {
                                int ih = y * t->sh - t->pt + i * t->dh, iw = xx * t->sw - t->pl + j * t->dw;
                                if (ih < 0 || ih >= t->h || iw < 0 || iw >= t->w)
                                    continue;
                                acc += (double)x[(((size_t)n * t->ci + c) * t->h + ih) * t->w + iw] *
                                       w[(((size_t)m * t->ci + c) * t->kh + i) * t->kw + j];
                            }
                    size_t at = (((size_t)n * t->co + m) * oh + y) * ow + xx;
                    double v = act_ref(t->act, acc + b[m] + res[at]);
                    ref[at] = v;
                    if (fabs(v) > maxref)
                        maxref = fabs(v);
                }
    cd_params p;
    int64_t in[2] = {t->h, t->w}, out[2] = {oh, ow}, k[2] = {t->kh, t->kw}, st[2] = {t->sh, t->sw},
            dl[2] = {t->dh, t->dw}, pl[2] = {t->pt, t->pl};
    if (cd_params_init(&p, t->n, t->ci, t->co, in, out, k, st, dl, pl) != 0) {
        printf("params failed\n");
        return 1;
    }
    float *packed = (float *)malloc((size_t)p.total_floats * 4);
    cd_pack_weights(&p, w, t->no_bias ? NULL : b, packed);
    float *dx, *dw, *dy, *dres = NULL;
    cudaMalloc(&dx, nx * 4);
    cudaMalloc(&dw, (size_t)p.total_floats * 4);
    cudaMalloc(&dy, ny * 4);
    if (t->res) {
        cudaMalloc(&dres, ny * 4);
        cudaMemcpy(dres, res, ny * 4, cudaMemcpyHostToDevice);
        p.residual = dres;
    }
    cudaMemcpy(dx, x, nx * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(dw, packed, (size_t)p.total_floats * 4, cudaMemcpyHostToDevice);
    op_activation act = {(op_act_kind)t->act, 0.1f, 0.0f};
    int fails = 0;
    printf("n%d ci%d co%d %dx%d k%dx%d s%d,%d d%d,%d p%d,%d,%d,%d act%d%s%s -> %dx%d:", t->n, t->ci, t->co, t->h,
           t->w, t->kh, t->kw, t->sh, t->sw, t->dh, t->dw, t->pt, t->pl, t->pb, t->pr, t->act, t->res ? " res" : "",
           t->no_bias ? " nobias" : "", oh, ow);
    for (int kind = 1; kind < CD_COUNT; kind++) {
        int el = cd_eligible(&p, kind);
        /* force every runnable variant for correctness, not only the eligible ones */
        if (!cd_runnable(&p, kind))
            continue;
        cudaMemset(dy, 0xff, ny * 4);
        cudaError_t e = cd_launch(kind, dx, dw, dy, &p, act, 0);
        if (e == cudaSuccess)
            e = cudaDeviceSynchronize();
        if (e != cudaSuccess) {
            printf(" %s:CUDA-ERROR(%s)", cd_kind_name(kind), cudaGetErrorString(e));
            fails++;
            continue;
        }
        cudaMemcpy(got, dy, ny * 4, cudaMemcpyDeviceToHost);
        double maxerr = 0;
        for (size_t i = 0; i < ny; i++) {
            double d = fabs(got[i] - ref[i]);
            if (!(d <= maxerr))
                maxerr = isnan(d) ? INFINITY : d;
        }
        int ok = maxerr <= 1e-4 * maxref + 1e-5;
        printf(" %s%s:%s(%.1e)", cd_kind_name(kind), el ? "" : "*", ok ? "ok" : "FAIL", maxerr);
        fails += !ok;
    }
    printf("\n");
    cudaFree(dx);
    cudaFree(dw);
    cudaFree(dy);
    if (dres)
        cudaFree(dres);
    free(x), free(w), free(b), free(ref), free(got), free(packed), free(res);
    return fails;
}

static void bench(const shape *t)
{
    int oh = out_dim(t->h, t->kh, t->sh, t->dh, t->pt, t->pb), ow = out_dim(t->w, t->kw, t->sw, t->dw, t->pl, t->pr);
    cd_params p;
    int64_t in[2] = {t->h, t->w}, out[2] = {oh, ow}, k[2] = {t->kh, t->kw}, st[2] = {t->sh, t->sw},
            dl[2] = {t->dh, t->dw}, pl[2] = {t->pt, t->pl};
    if (cd_params_init(&p, t->n, t->ci, t->co, in, out, k, st, dl, pl) != 0)
        return;
    size_t nx = (size_t)t->n * t->ci * t->h * t->w, ny = (size_t)t->n * t->co * oh * ow;
    float *dx, *dw, *dy;
    cudaMalloc(&dx, nx * 4);
    cudaMalloc(&dw, (size_t)p.total_floats * 4);
    cudaMalloc(&dy, ny * 4);
    {
        /* random data: tensor-core and FMA timings on zeros can be optimistic */
        float *hx = (float *)malloc(nx * 4), *hw = (float *)malloc((size_t)p.total_floats * 4);
        unsigned seed = 777u;
        for (size_t i = 0; i < nx; i++)
            hx[i] = urand(&seed);
        for (size_t i = 0; i < (size_t)p.total_floats; i++)
            hw[i] = urand(&seed) * 0.1f;
        cudaMemcpy(dx, hx, nx * 4, cudaMemcpyHostToDevice);
        cudaMemcpy(dw, hw, (size_t)p.total_floats * 4, cudaMemcpyHostToDevice);
        free(hx), free(hw);
    }
    op_activation act = {OP_ACT_RELU, 0, 0};
    cudaStream_t s;
    cudaStreamCreate(&s);
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    printf("%-4d %-4d %-4d %4dx%-4d k%d s%d:", t->n, t->ci, t->co, t->h, t->w, t->kh, t->sh);
    for (int kind = 1; kind < CD_COUNT; kind++) {
        if (!cd_eligible(&p, kind))
            continue;
        cudaGraph_t g;
        cudaGraphExec_t ge;
        cd_launch(kind, dx, dw, dy, &p, act, s);
        cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal);
        for (int r = 0; r < 20; r++)
            cd_launch(kind, dx, dw, dy, &p, act, s);
        cudaStreamEndCapture(s, &g);
        cudaGraphInstantiate(&ge, g, 0);
        cudaGraphLaunch(ge, s);
        float best = 1e9f;
        for (int r = 0; r < 5; r++) {
            cudaEventRecord(e0, s);
            cudaGraphLaunch(ge, s);
            cudaEventRecord(e1, s);
            cudaEventSynchronize(e1);
            float ms;
            cudaEventElapsedTime(&ms, e0, e1);
            if (ms < best)
                best = ms;
        }
        printf(" %s=%.2f", cd_kind_name(kind), best * 1000.0f / 20);
        cudaGraphExecDestroy(ge);
        cudaGraphDestroy(g);
    }
    printf("\n");
    cudaStreamDestroy(s);
    cudaFree(dx);
    cudaFree(dw);
    cudaFree(dy);
}

int main(void)
{
    static const shape tests[] = {
        /* n ci co h w kh kw sh sw dh dw pt pl pb pr act */
        {1, 3, 16, 64, 64, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, OP_ACT_RELU},
        {1, 3, 12, 63, 61, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, OP_ACT_LEAKY_RELU},
        {2, 3, 64, 30, 30, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, OP_ACT_NONE},
        {1, 16, 16, 40, 40, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, OP_ACT_RELU},
        {1, 64, 1, 20, 20, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, OP_ACT_SIGMOID},
        {1, 64, 10, 20, 20, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, OP_ACT_NONE},
        {1, 1, 1, 20, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, OP_ACT_NONE},
        {1, 128, 256, 14, 14, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, OP_ACT_RELU},
        {1, 256, 130, 7, 9, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, OP_ACT_LEAKY_RELU},
        {1, 24, 24, 33, 35, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, OP_ACT_RELU},
        {1, 12, 24, 32, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, OP_ACT_RELU},
        {1, 48, 80, 20, 20, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, OP_ACT_RELU},
        {1, 16, 32, 14, 14, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, OP_ACT_NONE},
        {1, 32, 128, 7, 7, 7, 7, 1, 1, 1, 1, 0, 0, 0, 0, OP_ACT_NONE},
        {3, 32, 20, 7, 7, 7, 7, 1, 1, 1, 1, 0, 0, 0, 0, OP_ACT_RELU},
        {1, 10, 7, 21, 19, 5, 3, 1, 2, 2, 1, 2, 0, 3, 1, OP_ACT_LEAKY_RELU}, /* asymmetric pads, dilation */
        {1, 9, 33, 17, 16, 2, 2, 1, 1, 1, 1, 0, 0, 1, 1, OP_ACT_NONE},       /* SAME_UPPER-like */
        {2, 20, 40, 1, 50, 1, 5, 1, 1, 1, 3, 0, 4, 0, 4, OP_ACT_SIGMOID},    /* 1-D */
        {1, 3, 48, 64, 64, 16, 16, 16, 16, 1, 1, 0, 0, 0, 0, OP_ACT_NONE},   /* patch embedding */
        {2, 64, 64, 9, 11, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, OP_ACT_RELU},
        {1, 15, 15, 80, 80, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, OP_ACT_SIGMOID},
        /* pointwise (CD_PW_*) and first-layer (CD_FIRST_*) cases: odd planes, N = 1 and 2, C_out % 8 != 0 */
        {1, 32, 64, 40, 40, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, OP_ACT_RELU},
        {2, 32, 20, 13, 11, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, OP_ACT_LEAKY_RELU},
        {1, 24, 12, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, OP_ACT_NONE},
        {2, 8, 6, 1, 2, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, OP_ACT_SIGMOID},
        {1, 36, 36, 28, 28, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, OP_ACT_LEAKY_RELU},
        {1, 64, 64, 14, 14, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, OP_ACT_RELU},
        {3, 5, 3, 6, 10, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, OP_ACT_NONE},
        {1, 3, 16, 640, 640, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, OP_ACT_RELU},
        {2, 3, 64, 112, 112, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, OP_ACT_RELU},
        {1, 3, 16, 65, 67, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, OP_ACT_NONE},
        {1, 4, 10, 30, 31, 7, 7, 2, 2, 1, 1, 3, 3, 3, 3, OP_ACT_RELU},
        {2, 1, 3, 9, 10, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, OP_ACT_NONE},
        {1, 48, 48, 80, 80, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, OP_ACT_RELU},
        {1, 33, 40, 10, 10, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, OP_ACT_NONE},
        {2, 16, 24, 20, 21, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, OP_ACT_LEAKY_RELU},
        {1, 128, 24, 10, 12, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, OP_ACT_LEAKY_RELU}, /* CD_FIRST_MAX_K */
        /* 3x3 tiles (CD_T3_*): odd maps, N = 2, C not multiples of 8 / 16, stride 2 with odd inputs,
           'same upper' pads, residuals, no bias, many chunks */
        {2, 48, 48, 37, 45, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, OP_ACT_LEAKY_RELU, 1, 0},
        {1, 24, 48, 160, 160, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, OP_ACT_RELU, 0, 0},
        {1, 24, 48, 41, 39, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, OP_ACT_NONE, 1, 0},
        {2, 20, 36, 23, 17, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, OP_ACT_SIGMOID, 1, 1},
        {1, 16, 24, 20, 20, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, OP_ACT_RELU, 0, 0},
        {2, 40, 24, 11, 30, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0, OP_ACT_NONE, 0, 1},
        {1, 80, 80, 20, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, OP_ACT_SIGMOID, 1, 0},
        {1, 64, 64, 40, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, OP_ACT_RELU, 1, 0},
        {1, 13, 19, 9, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, OP_ACT_NONE, 0, 0},
        {1, 72, 40, 15, 15, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, OP_ACT_NONE, 0, 1},
        {1, 128, 64, 20, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, OP_ACT_LEAKY_RELU, 0, 0},
        {1, 300, 20, 6, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, OP_ACT_RELU, 1, 0},
        {3, 17, 130, 12, 9, 3, 3, 1, 1, 1, 1, 0, 1, 2, 1, OP_ACT_RELU, 0, 0},
        {1, 32, 32, 1, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, OP_ACT_NONE, 1, 0},
        {1, 48, 48, 80, 80, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, OP_ACT_NONE, 1, 1},
    };
    int fails = 0, failed_shapes = 0;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        int f = check(&tests[i]);
        fails += f;
        failed_shapes += f != 0;
    }
    printf("correctness: %d failures\n", fails);
    printf("conv direct: %d passed, %d failed\n\n", (int)(sizeof tests / sizeof tests[0]) - failed_shapes, failed_shapes);
    static const shape perf[] = {
        {1, 3, 16, 640, 640, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0},
        {1, 3, 12, 640, 640, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0},
        {1, 3, 64, 112, 112, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0},
        {1, 16, 16, 320, 320, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
        {1, 32, 64, 160, 160, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
        {1, 64, 64, 80, 80, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
        {1, 64, 64, 40, 40, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
        {1, 64, 64, 20, 20, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
        {1, 64, 1, 80, 80, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
        {1, 64, 10, 80, 80, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
        {1, 1, 1, 80, 80, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 64, 64, 28, 28, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
        {1, 128, 256, 14, 14, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
        {1, 256, 128, 14, 14, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
        {1, 16, 32, 14, 14, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0},
        {1, 32, 128, 7, 7, 7, 7, 1, 1, 1, 1, 0, 0, 0, 0, 0},
        {1, 12, 12, 320, 320, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 24, 24, 160, 160, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 48, 48, 80, 80, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 80, 80, 20, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 64, 64, 80, 80, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 64, 20, 40, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 16, 16, 80, 80, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 48, 48, 40, 40, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
        {1, 96, 96, 20, 20, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
        {1, 384, 192, 20, 20, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
        {1, 128, 128, 40, 40, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
        {1, 64, 2, 80, 80, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 64, 8, 40, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 24, 64, 20, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 48, 48, 20, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 64, 64, 14, 14, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
        {1, 128, 64, 28, 28, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
        {1, 256, 256, 14, 14, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
        {1, 24, 24, 40, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 32, 32, 80, 80, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 3, 64, 112, 112, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 3, 64, 256, 256, 7, 7, 2, 2, 1, 1, 3, 3, 3, 3, 0},
        /* 3x3 of scrfd / yolov8 / retinaface (CD_T3_*) */
        {1, 24, 48, 160, 160, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0},
        {1, 48, 48, 160, 160, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0},
        {1, 48, 80, 80, 80, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0},
        {1, 64, 64, 40, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 80, 80, 40, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 64, 64, 20, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 128, 128, 20, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 128, 128, 40, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 32, 32, 160, 160, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 16, 32, 160, 160, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0},
        /* the rest of scrfd_2.5g at 640x640 (CD_TC_*) */
        {1, 12, 24, 320, 320, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 24, 64, 80, 80, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 64, 30, 80, 80, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 48, 48, 40, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 24, 24, 80, 80, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 48, 80, 40, 40, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0},
    };
    printf("kernel time per launch (us), graph of 20:\n");
    for (size_t i = 0; i < sizeof perf / sizeof perf[0]; i++)
        bench(&perf[i]);
    return fails ? 1 : 0;
}
