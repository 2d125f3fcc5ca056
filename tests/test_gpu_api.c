/* The GPU side of the C API: results equal the CPU's, device-resident
 * inputs and outputs, concurrent callers on one session, bad device ids.
 * Prints "skipped: no GPU" where there is none.
 *
 * usage: test_gpu_api SHARED_MODELS_DIR */
#include "facegraph/facegraph.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef FG_HAVE_CUDA
#include <cuda_runtime.h>
#endif

#define N_OUT 136
#define PIXELS (3 * 112 * 112)
#define THREADS 4
#define RUNS 20

static int passed, failed;

static void check(int ok, const char *what, fg_status *st)
{
    printf("%s %s%s%s\n", ok ? "PASS" : "FAIL", what, st ? ": " : "", st ? fg_status_message(st) : "");
    ok ? passed++ : failed++;
    fg_status_free(st);
}

static void fill(float *x, int seed)
{
    for (int i = 0; i < PIXELS; i++)
        x[i] = (float)((i * 7 + seed * 13) % 251) / 251.0f;
}

#ifdef FG_HAVE_CUDA
typedef struct worker {
    fg_session *session;
    int seed;
    float expected[N_OUT];
    int mismatches;
    fg_status *error;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    float *x = malloc(PIXELS * sizeof(float));
    fill(x, w->seed);
    fg_tensor in = {FG_FLOAT32, 4, {1, 3, 112, 112}, x, FG_HOST}, out[2];
    for (int r = 0; r < RUNS && !w->error; r++) {
        w->error = fg_session_run(w->session, &in, 1, out, 2);
        if (!w->error && memcmp(out[0].data, w->expected, sizeof w->expected) != 0)
            w->mismatches++;
    }
    free(x);
    return NULL;
}
#endif

int main(int argc, char **argv)
{
#ifndef FG_HAVE_CUDA
    (void)argc;
    (void)argv;
    printf("skipped: no GPU (this build has no CUDA provider)\n");
    return 0;
#else
    int n_devices = 0;
    if (cudaGetDeviceCount(&n_devices) != cudaSuccess || n_devices == 0) {
        printf("skipped: no GPU\n");
        return 0;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/pfld_68_cunjian.onnx", argc > 1 ? argv[1] : "../shared/models");
    const char *cuda[] = {"cuda"}, *cpu[] = {"cpu"};
    fg_engine_options go = {0}, co = {0};
    go.providers = cuda;
    go.n_providers = 1;
    go.thread_count = THREADS;
    co.providers = cpu;
    co.n_providers = 1;
    fg_engine *gpu = NULL, *host = NULL;
    fg_session *gs = NULL, *cs = NULL;
    fg_status *st = fg_engine_create(&go, &gpu);
    if (!st)
        st = fg_engine_create(&co, &host);
    if (!st)
        st = fg_session_open(gpu, path, &gs);
    if (!st)
        st = fg_session_open(host, path, &cs);
    if (st) {
        check(0, "open pfld_68 on cuda and cpu", st);
        return 1;
    }

    /* results: GPU (eager, then graph) against the CPU */
    float *x = malloc(PIXELS * sizeof(float)), cpu_out[N_OUT], gpu_out[N_OUT];
    fill(x, 1);
    fg_tensor in = {FG_FLOAT32, 4, {1, 3, 112, 112}, x, FG_HOST}, out[2];
    st = fg_session_run(cs, &in, 1, out, 2);
    if (!st)
        memcpy(cpu_out, out[0].data, sizeof cpu_out);
    for (int r = 0; !st && r < 4; r++) /* eager, eager, capture + validate, replay */
        st = fg_session_run(gs, &in, 1, out, 2);
    double worst = 0, scale = 0;
    for (int i = 0; !st && i < N_OUT; i++) {
        gpu_out[i] = ((float *)out[0].data)[i];
        worst = fmax(worst, fabs(gpu_out[i] - cpu_out[i]));
        scale = fmax(scale, fabs(cpu_out[i]));
    }
    check(!st && worst <= 1e-4 * scale + 1e-5, "graph replay on the GPU equals the CPU result (1e-4 relative)", st);
    fg_execution_report rep;
    st = fg_session_execution_report(gs, &rep);
    check(!st && rep.graph_captured && !strcmp(rep.provider, "cuda") && rep.device_ms > 0,
          "the report says cuda, graph captured, device time measured", st);

    /* device-resident inputs and outputs: same bytes as the host path */
    void *d_x = NULL;
    cudaMalloc(&d_x, PIXELS * sizeof(float));
    cudaMemcpy(d_x, x, PIXELS * sizeof(float), cudaMemcpyHostToDevice);
    fg_tensor din = {FG_FLOAT32, 4, {1, 3, 112, 112}, d_x, FG_DEVICE};
    st = fg_session_run(gs, &din, 1, out, 2);
    float back[N_OUT];
    int same = 0;
    if (!st && out[0].location == FG_DEVICE &&
        cudaMemcpy(back, out[0].data, sizeof back, cudaMemcpyDeviceToHost) == cudaSuccess)
        same = !memcmp(back, gpu_out, sizeof back);
    check(!st && same, "device tensors in, device tensors out, identical to the host path", st);
    cudaFree(d_x);

    /* concurrent callers: each thread's results equal its sequential result */
    worker w[THREADS];
    memset(w, 0, sizeof w);
    for (int t = 0; t < THREADS; t++) {
        w[t].session = gs;
        w[t].seed = 10 + t;
        fill(x, w[t].seed);
        st = fg_session_run(gs, &in, 1, out, 2);
        if (st)
            break;
        memcpy(w[t].expected, out[0].data, sizeof w[t].expected);
    }
    pthread_t tid[THREADS];
    for (int t = 0; !st && t < THREADS; t++)
        pthread_create(&tid[t], NULL, work, &w[t]);
    int mismatches = 0;
    for (int t = 0; !st && t < THREADS; t++) {
        pthread_join(tid[t], NULL);
        mismatches += w[t].mismatches;
        if (w[t].error && !st)
            st = w[t].error;
        else
            fg_status_free(w[t].error);
    }
    check(!st && !mismatches, "4 threads x 20 runs on one session: every result equals its sequential one", st);

    /* a bad device id lists the devices */
    fg_engine *bad = NULL;
    go.device_id = n_devices + 3;
    st = fg_engine_create(&go, &bad);
    check(st && strstr(fg_status_message(st), "devices found"), "a bad --execution-device-id lists the devices",
          NULL);
    fg_status_free(st);
    free(x);
    fg_session_close(gs);
    fg_session_close(cs);
    fg_engine_destroy(gpu);
    fg_engine_destroy(host);
    printf("gpu api: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
#endif
}
