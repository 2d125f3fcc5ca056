/* Stand-alone check of src/cuda/kernels/conv_winograd.cuh: F(2x2, 3x3) and
 * F(4x4, 3x3) (weight, input and output transforms around cuBLAS's batched
 * GEMM), and F(2x2, 3x3) with the GEMM in float16, on many shapes (batch 2, asymmetric and zero pads, sizes that are
 * not multiples of the tile, bias, residual, activation) against the
 * direct sum in double precision on the CPU.
 * nvcc -O3 -arch=sm_90 -I src -I include tests/gpu/winograd_test.cu -lcublas -o build-gpu/winograd_test
 * (tests/gpu/run.sh builds and runs it). */
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

static int check(cublasHandle_t blas, const shape *t, int m, int half)
{
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

    wino_params p;
    int ok = wino_params_init(&p, m, t->n, t->ci, t->co, t->h, t->w, oh, ow, t->pt, t->pl) == 0;
    float *dx = NULL, *dw = NULL, *db = NULL, *dres = NULL, *dy = NULL, *dm = NULL;
    void *du = NULL, *dv = NULL;
    size_t element = half ? 2 : 4;
    op_activation act;
    memset(&act, 0, sizeof act);
    act.kind = (op_act_kind)t->act;
    act.alpha = 0.1f;
    double maxerr = 0;
    if (ok) {
        ok = cudaMalloc(&dx, nx * 4) == cudaSuccess && cudaMalloc(&dw, nw * 4) == cudaSuccess &&
             cudaMalloc(&db, t->co * 4) == cudaSuccess && cudaMalloc(&dres, ny * 4) == cudaSuccess &&
             cudaMalloc(&dy, ny * 4) == cudaSuccess &&
             cudaMalloc(&du, wino_weight_floats(&p) * element) == cudaSuccess &&
             cudaMalloc(&dv, wino_input_floats(&p) * element) == cudaSuccess &&
             cudaMalloc(&dm, wino_product_floats(&p) * 4) == cudaSuccess;
        ok = ok && cudaMemcpy(dx, x, nx * 4, cudaMemcpyHostToDevice) == cudaSuccess &&
             cudaMemcpy(dw, w, nw * 4, cudaMemcpyHostToDevice) == cudaSuccess &&
             cudaMemcpy(db, b, t->co * 4, cudaMemcpyHostToDevice) == cudaSuccess &&
             cudaMemcpy(dres, res, ny * 4, cudaMemcpyHostToDevice) == cudaSuccess &&
             cudaMemset(dy, 0xff, ny * 4) == cudaSuccess; /* NaN where nothing is written */
        ok = ok && wino_transform_weights(&p, half, dw, du, 0) == cudaSuccess &&
             wino_transform_input(&p, half, dx, dv, 0) == cudaSuccess &&
             wino_products(blas, &p, half, du, dv, dm) == CUBLAS_STATUS_SUCCESS &&
             wino_transform_output(&p, dm, t->bias ? db : NULL, t->res ? dres : NULL, dy, act, 0) == cudaSuccess &&
             cudaDeviceSynchronize() == cudaSuccess && cudaMemcpy(got, dy, ny * 4, cudaMemcpyDeviceToHost) == cudaSuccess;
        for (size_t i = 0; ok && i < ny; i++) {
            double e = fabs((double)got[i] - ref[i]);
            if (!(e <= maxerr))
                maxerr = e == e ? e : INFINITY;
        }
    }
    int pass = ok && maxerr <= (half ? TOLERANCE_HALF : TOLERANCE) * maxref + 1e-6;
    printf("%s F(%dx%d,3x3)%s n%d c%d->%d %dx%d pads %d,%d,%d,%d act%d res%d bias%d: max err %.3g (max ref %.3g)%s\n",
           pass ? "ok  " : "FAIL", m, m, half ? " float16" : "", t->n, t->ci, t->co, t->h, t->w, t->pt, t->pl, t->pb, t->pr, t->act, t->res,
           t->bias, maxerr, maxref, ok ? "" : " (a CUDA or cuBLAS call failed)");
    cudaFree(dx), cudaFree(dw), cudaFree(db), cudaFree(dres), cudaFree(dy), cudaFree(du), cudaFree(dv), cudaFree(dm);
    free(x), free(w), free(b), free(res), free(got), free(ref);
    cudaGetLastError();
    return pass;
}

int main(void)
{
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
    };
    int passed = 0, failed = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int v = 0; v < 3; v++) /* F(2x2), F(4x4), F(2x2) in float16 */
            check(blas, &shapes[i], v == 1 ? 4 : 2, v == 2) ? passed++ : failed++;
    cublasDestroy(blas);
    printf("winograd: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
