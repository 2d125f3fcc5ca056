/* Stand-alone check of src/cuda/kernels/conv_winograd.cuh: F(2x2, 3x3) and
 * F(4x4, 3x3) (weight, input and output transforms around cuBLAS's batched
 * GEMM), F(2x2, 3x3) with the GEMM in float16, and every fused variant
 * (wf_kernel), on many shapes (batch 2, asymmetric and zero pads, sizes
 * that are not multiples of the tile or of a block, channels that are not
 * multiples of a chunk, bias, residual, activation) against the direct sum
 * in double precision on the CPU; then per-launch timings (graph of 20) of
 * each form on the face detectors' 3x3 shapes.
 * nvcc -O3 -arch=sm_90 -I src -I include tests/gpu/winograd_test.cu -lcublas -o build-gpu/winograd_test
 * (tests/gpu/run.sh builds and runs it; --check-only leaves the timings out). */
#include "cuda/cuda_ops.h"
#include "cuda/kernels/kernel_util.cuh"
#include "cuda/kernels/conv_winograd.cuh"
#include "kernel_test_util.cuh"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct shape {
    int n, ci, co, h, w, pt, pl, pb, pr, act, res, bias;
} shape;

/* of the largest |reference| value: float32 F(4x4) errs ~1e-5; float16 F(2x2) ~5e-4 */
#define TOLERANCE 1e-4
#define TOLERANCE_HALF 2e-3

/* The forms under test: the three-step path (F(2x2), F(4x4), F(2x2) float16), then each fused variant. */
#define FORM_FUSED 3
#define FORMS (FORM_FUSED + WF_COUNT)
static const char *form_name(int form)
{
    static const char *names[FORMS] = {"F(2x2)",           "F(4x4)",          "F(2x2) float16",
                                       "fused F(2x2) k16", "fused F(2x2) k8", "fused F(2x2) k8 c16",
                                       "fused F(2x2) k16 t16 c16",
                                       "fused F(2x2) k24 t16", "fused F(2x2) k48 t16",
                                       "fused F(2x2) k32 t16",
                                       "fused F(2x2) k24 t16 c12", "fused F(2x2) k12 c12"};
    return names[form];
}
static int form_tile(int form)
{
    return form >= FORM_FUSED ? wf_tile(form - FORM_FUSED) : form == 1 ? 4 : 2;
}

/* Device buffers of one convolution in one form. */
typedef struct conv_run {
    wino_params p;
    int form, half;
    float *x, *w, *b, *res, *y, *m;
    void *u, *v;
    op_activation act;
} conv_run;

static void conv_run_free(conv_run *r)
{
    cudaFree(r->x), cudaFree(r->w), cudaFree(r->b), cudaFree(r->res), cudaFree(r->y), cudaFree(r->m);
    cudaFree(r->u), cudaFree(r->v);
    memset(r, 0, sizeof *r);
    cudaGetLastError();
}

/* Allocates and uploads (x, w, b, res host arrays of the shape's sizes; b, res may be NULL) and transforms the weights; 0 or -1. */
static int conv_run_init(conv_run *r, const shape *t, int form, const float *x, const float *w, const float *b,
                         const float *res)
{
    memset(r, 0, sizeof *r);
    int oh = t->h + t->pt + t->pb - 2, ow = t->w + t->pl + t->pr - 2;
    size_t nx = (size_t)t->n * t->ci * t->h * t->w, nw = (size_t)t->co * t->ci * 9, ny = (size_t)t->n * t->co * oh * ow;
    r->form = form;
    r->half = form == 2;
    r->act.kind = (op_act_kind)t->act;
    r->act.alpha = 0.1f;
    if (wino_params_init(&r->p, form_tile(form), t->n, t->ci, t->co, t->h, t->w, oh, ow, t->pt, t->pl) != 0)
        return -1;
    size_t element = r->half ? 2 : 4;
    int fused = form >= FORM_FUSED;
    size_t nu = fused ? wf_weight_floats(&r->p, form - FORM_FUSED) : wino_weight_floats(&r->p);
    int ok = cudaMalloc(&r->x, nx * 4) == cudaSuccess && cudaMalloc(&r->w, nw * 4) == cudaSuccess &&
             cudaMalloc(&r->y, ny * 4) == cudaSuccess && cudaMalloc(&r->u, nu * element) == cudaSuccess &&
             (!b || cudaMalloc(&r->b, t->co * 4) == cudaSuccess) &&
             (!res || cudaMalloc(&r->res, ny * 4) == cudaSuccess) &&
             (fused || (cudaMalloc(&r->v, wino_input_floats(&r->p) * element) == cudaSuccess &&
                        cudaMalloc(&r->m, wino_product_floats(&r->p) * 4) == cudaSuccess));
    ok = ok && cudaMemcpy(r->x, x, nx * 4, cudaMemcpyHostToDevice) == cudaSuccess &&
         cudaMemcpy(r->w, w, nw * 4, cudaMemcpyHostToDevice) == cudaSuccess &&
         (!b || cudaMemcpy(r->b, b, t->co * 4, cudaMemcpyHostToDevice) == cudaSuccess) &&
         (!res || cudaMemcpy(r->res, res, ny * 4, cudaMemcpyHostToDevice) == cudaSuccess) &&
         cudaMemset(r->y, 0xff, ny * 4) == cudaSuccess; /* NaN where nothing is written */
    ok = ok && (fused ? wf_transform_weights(&r->p, form - FORM_FUSED, r->w, (float *)r->u, 0)
                      : wino_transform_weights(&r->p, r->half, r->w, r->u, 0)) == cudaSuccess &&
         cudaDeviceSynchronize() == cudaSuccess;
    if (!ok)
        conv_run_free(r);
    return ok ? 0 : -1;
}

/* One convolution on stream s: 0, or -1 when a launch failed. */
static int conv_run_launch(cublasHandle_t blas, const conv_run *r, cudaStream_t s)
{
    if (r->form >= FORM_FUSED)
        return wf_launch(&r->p, r->form - FORM_FUSED, r->x, (const float *)r->u, r->b, r->res, r->y, r->act, s) ==
                       cudaSuccess
                   ? 0
                   : -1;
    cublasSetStream(blas, s);
    return wino_transform_input(&r->p, r->half, r->x, r->v, s) == cudaSuccess &&
                   wino_products(blas, &r->p, r->half, r->u, r->v, r->m) == CUBLAS_STATUS_SUCCESS &&
                   wino_transform_output(&r->p, r->m, r->b, r->res, r->y, r->act, s) == cudaSuccess
               ? 0
               : -1;
}

static int check(cublasHandle_t blas, const shape *t, int form)
{
    int half = form == 2, m = form_tile(form);
    int oh = t->h + t->pt + t->pb - 2, ow = t->w + t->pl + t->pr - 2;
    size_t nx = (size_t)t->n * t->ci * t->h * t->w, nw = (size_t)t->co * t->ci * 9, ny = (size_t)t->n * t->co * oh * ow;
    float *x = (float *)malloc(nx * 4), *w = (float *)malloc(nw * 4), *b = (float *)malloc(t->co * 4);
    float *res = (float *)malloc(ny * 4), *got = (float *)malloc(ny * 4);
    double *ref = (double *)malloc(ny * 8);
    unsigned seed = 777u + t->ci * 13 + t->co + m;
    for (size_t i = 0; i < nx; i++)
        x[i] = urand(&seed);
    for (size_t i = 0; i < nw; i++)
        w[i] = urand(&seed) / sqrtf((float)t->ci * 9.0f);
    for (int i = 0; i < t->co; i++)
        b[i] = t->bias ? urand(&seed) : 0.0f;
    for (size_t i = 0; i < ny; i++)
        res[i] = t->res ? urand(&seed) : 0.0f;
    double maxref = 0;
    for (int n = 0; n < t->n; n++)
        for (int k = 0; k < t->co; k++)
            for (int y = 0; y < oh; y++)
                for (int xx = 0; xx < ow; xx++) {
                    double acc = 0;
                    for (int c = 0; c < t->ci; c++)
                        for (int i = 0; i < 3; i++)
                            for (int j = 0; j < 3; j++) {
                                int ih = y - t->pt + i, iw = xx - t->pl + j;
                                if (ih < 0 || ih >= t->h || iw < 0 || iw >= t->w)
                                    continue;
                                acc += (double)x[(((size_t)n * t->ci + c) * t->h + ih) * t->w + iw] *
                                       w[(((size_t)k * t->ci + c) * 3 + i) * 3 + j];
                            }
                    size_t at = (((size_t)n * t->co + k) * oh + y) * ow + xx;
                    ref[at] = act_ref(t->act, acc + b[k] + res[at]);
                    if (fabs(ref[at]) > maxref)
                        maxref = fabs(ref[at]);
                }

    conv_run r;
    double maxerr = 0;
    int ok = conv_run_init(&r, t, form, x, w, t->bias ? b : NULL, t->res ? res : NULL) == 0;
    ok = ok && conv_run_launch(blas, &r, 0) == 0 && cudaDeviceSynchronize() == cudaSuccess &&
         cudaMemcpy(got, r.y, ny * 4, cudaMemcpyDeviceToHost) == cudaSuccess;
    for (size_t i = 0; ok && i < ny; i++) {
        double e = fabs((double)got[i] - ref[i]);
        if (!(e <= maxerr))
            maxerr = e == e ? e : INFINITY;
    }
    conv_run_free(&r);
    int pass = ok && maxerr <= (half ? TOLERANCE_HALF : TOLERANCE) * maxref + 1e-6;
    printf("%s %s n%d c%d->%d %dx%d pads %d,%d,%d,%d act%d res%d bias%d: max err %.3g (max ref %.3g)%s\n",
           pass ? "ok  " : "FAIL", form_name(form), t->n, t->ci, t->co, t->h, t->w, t->pt, t->pl, t->pb, t->pr, t->act, t->res,
           t->bias, maxerr, maxref, ok ? "" : " (a CUDA or cuBLAS call failed)");
    free(x), free(w), free(b), free(res), free(got), free(ref);
    cudaGetLastError();
    return pass;
}

/* Microseconds per launch of one form, in a graph of 20 launches (best of 3), or -1. */
static double time_form(cublasHandle_t blas, const shape *t, int form)
{
    size_t nx = (size_t)t->n * t->ci * t->h * t->w, nw = (size_t)t->co * t->ci * 9;
    float *x = (float *)malloc(nx * 4), *w = (float *)malloc(nw * 4), *b = (float *)malloc(t->co * 4);
    unsigned seed = 99u;
    for (size_t i = 0; i < nx; i++)
        x[i] = urand(&seed);
    for (size_t i = 0; i < nw; i++)
        w[i] = urand(&seed) * 0.05f;
    for (int i = 0; i < t->co; i++)
        b[i] = urand(&seed);
    conv_run r;
    double best = -1;
    cudaStream_t s;
    cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
    if (conv_run_init(&r, t, form, x, w, b, NULL) == 0) {
        cudaGraph_t g = NULL;
        cudaGraphExec_t ge = NULL;
        cudaEvent_t e0, e1;
        cudaEventCreate(&e0), cudaEventCreate(&e1);
        int ok = conv_run_launch(blas, &r, s) == 0 && cudaStreamSynchronize(s) == cudaSuccess &&
                 cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) == cudaSuccess;
        for (int i = 0; ok && i < 20; i++)
            ok = conv_run_launch(blas, &r, s) == 0;
        ok = cudaStreamEndCapture(s, &g) == cudaSuccess && ok && cudaGraphInstantiate(&ge, g, 0) == cudaSuccess &&
             cudaGraphLaunch(ge, s) == cudaSuccess;
        for (int rep = 0; ok && rep < 3; rep++) {
            float ms = 0;
            ok = cudaEventRecord(e0, s) == cudaSuccess && cudaGraphLaunch(ge, s) == cudaSuccess &&
                 cudaEventRecord(e1, s) == cudaSuccess && cudaEventSynchronize(e1) == cudaSuccess &&
                 cudaEventElapsedTime(&ms, e0, e1) == cudaSuccess;
            if (ok && (best < 0 || ms * 50.0 < best))
                best = ms * 50.0; /* ms per 20 launches -> us per launch */
        }
        if (ge)
            cudaGraphExecDestroy(ge);
        if (g)
            cudaGraphDestroy(g);
        cudaEventDestroy(e0), cudaEventDestroy(e1);
        conv_run_free(&r);
    }
    cudaStreamDestroy(s);
    free(x), free(w), free(b);
    cudaGetLastError();
    return best;
}

int main(int argc, char **argv)
{
    int check_only = argc > 1 && strcmp(argv[1], "--check-only") == 0; /* no timings (for compute-sanitizer) */
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
        printf("winograd: skipped: no GPU\n");
        return 0;
    }
    cublasHandle_t blas;
    if (cublasCreate(&blas) != CUBLAS_STATUS_SUCCESS) {
        printf("winograd: FAILED: cublasCreate\n");
        return 1;
    }
    static const shape shapes[] = {
        {1, 32, 32, 16, 16, 1, 1, 1, 1, OP_ACT_NONE, 0, 1},      {1, 64, 48, 13, 11, 1, 1, 1, 1, OP_ACT_RELU, 0, 1},
        {2, 40, 36, 9, 10, 0, 0, 0, 0, OP_ACT_LEAKY_RELU, 1, 1}, {1, 3, 5, 7, 7, 2, 1, 0, 1, OP_ACT_NONE, 0, 0},
        {1, 128, 64, 32, 32, 1, 1, 1, 1, OP_ACT_NONE, 1, 1},     {1, 256, 256, 8, 8, 1, 1, 1, 1, OP_ACT_SIGMOID, 0, 1},
        {2, 16, 24, 6, 5, 1, 0, 2, 1, OP_ACT_RELU, 1, 0},        {1, 512, 512, 4, 4, 1, 1, 1, 1, OP_ACT_NONE, 1, 1},
        /* the fused blocks: partial blocks of tiles and channels, partial chunks (of 8, 12 or 16 channels) */
        {1, 48, 48, 80, 80, 1, 1, 1, 1, OP_ACT_RELU, 1, 1},      {1, 24, 24, 37, 45, 1, 1, 1, 1, OP_ACT_NONE, 0, 1},
        {2, 12, 20, 21, 19, 1, 1, 1, 1, OP_ACT_LEAKY_RELU, 1, 1}, {1, 9, 7, 33, 17, 0, 1, 2, 1, OP_ACT_SIGMOID, 0, 0},
    };
    int passed = 0, failed = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int form = 0; form < FORMS; form++)
            check(blas, &shapes[i], form) ? passed++ : failed++;
    printf("winograd: %d passed, %d failed\n", passed, failed);
    if (check_only) {
        cublasDestroy(blas);
        return failed ? 1 : 0;
    }
    /* the 3x3 stride-1 convolutions of SCRFD, YuNet and PFLD (with one pad) */
    static const shape timed[] = {
        {1, 48, 48, 80, 80, 1, 1, 1, 1, OP_ACT_RELU, 0, 1},   {1, 24, 24, 160, 160, 1, 1, 1, 1, OP_ACT_RELU, 0, 1},
        {1, 48, 48, 40, 40, 1, 1, 1, 1, OP_ACT_RELU, 0, 1},   {1, 12, 24, 320, 320, 1, 1, 1, 1, OP_ACT_RELU, 0, 1},
        {1, 12, 12, 320, 320, 1, 1, 1, 1, OP_ACT_RELU, 0, 1}, {1, 64, 64, 80, 80, 1, 1, 1, 1, OP_ACT_RELU, 0, 1},
        {1, 24, 64, 80, 80, 1, 1, 1, 1, OP_ACT_RELU, 0, 1},   {1, 64, 30, 80, 80, 1, 1, 1, 1, OP_ACT_NONE, 0, 1},
        {1, 80, 80, 20, 20, 1, 1, 1, 1, OP_ACT_RELU, 0, 1},   {1, 64, 64, 40, 40, 1, 1, 1, 1, OP_ACT_RELU, 0, 1},
        {1, 24, 24, 80, 80, 1, 1, 1, 1, OP_ACT_RELU, 0, 1},   {1, 64, 30, 40, 40, 1, 1, 1, 1, OP_ACT_NONE, 0, 1},
        {1, 24, 24, 40, 40, 1, 1, 1, 1, OP_ACT_RELU, 0, 1},   {1, 16, 16, 80, 80, 1, 1, 1, 1, OP_ACT_RELU, 0, 1},
        {1, 32, 32, 40, 40, 1, 1, 1, 1, OP_ACT_RELU, 0, 1},   {1, 64, 64, 20, 20, 1, 1, 1, 1, OP_ACT_RELU, 0, 1},
    };
    printf("\ntime per launch (us), graph of 20:\n");
    for (size_t i = 0; i < sizeof timed / sizeof timed[0]; i++) {
        const shape *t = &timed[i];
        printf("%4d %4d %4d %4dx%-4d", t->n, t->ci, t->co, t->h, t->w);
        for (int form = 0; form < FORMS; form++)
            if (form != 2)
                printf("  %s=%.2f", form_name(form), time_form(blas, t, form));
        printf("\n");
    }
    cublasDestroy(blas);
    return failed ? 1 : 0;
}
