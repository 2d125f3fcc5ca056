/* The C API as a program uses it: engines, the session cache, runs, plans per
 * signature, reports and errors. Reference values are computed here from the
 * model's definition (a Relu and an Add of a constant), not by facegraph.
 *
 * usage: test_api SHARED_MODELS_DIR */
#include "facegraph/facegraph.h"
#include "runtime/runtime.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;

static void check(int ok, const char *what, const fg_status *st)
{
    if (ok) {
        passed++;
        printf("PASS %s\n", what);
    } else {
        failed++;
        printf("FAIL %s%s%s\n", what, st ? ": " : "", st ? fg_status_message(st) : "");
    }
}

int main(int argc, char **argv)
{
    const char *models = argc > 1 ? argv[1] : "../shared/models";
    char path[4096];
    snprintf(path, sizeof path, "%s/pfld_68_cunjian.onnx", models);

    /* engines: a bad provider names the available ones */
    const char *bad[] = {"tensorrt"};
    fg_engine_options bad_options = {0};
    bad_options.providers = bad;
    bad_options.n_providers = 1;
    fg_engine *engine = NULL;
    fg_status *st = fg_engine_create(&bad_options, &engine);
    check(st && fg_status_code(st) == FG_ERR_UNSUPPORTED && strstr(fg_status_message(st), "available"),
          "an unknown provider is an error listing the available ones", st);
    fg_status_free(st);

    fg_engine_options options = {0};
    options.thread_count = 2;
    st = fg_engine_create(&options, &engine);
    check(!st, "cpu engine", st);
    if (st)
        return 1;

    /* the session cache: the same model twice is the same session */
    fg_session *a = NULL, *b = NULL;
    st = fg_session_open(engine, path, &a);
    check(!st, "open pfld_68", st);
    if (st) { /* nothing below can run without it */
        fg_status_free(st);
        printf("api: %d passed, %d failed\n", passed, failed);
        return 1;
    }
    st = fg_session_open(engine, path, &b);
    check(!st && a == b, "opening the same model again returns the same session", st);
    fg_status_free(st);
    check(a && strlen(fg_session_sha256(a)) == 64, "the session knows the model's sha256", NULL);

    /* runs: same shapes reuse the plan; another batch size plans again */
    const fg_value_info *in = a ? fg_session_input(a, 0) : NULL;
    check(in && in->rank == 4 && in->dims[0] < 0 && in->dim_names[0], "pfld's batch dimension is dynamic and named",
          NULL);
    fg_tensor x = {FG_FLOAT32, 4, {1, 3, 112, 112}, NULL, FG_HOST};
    x.data = calloc(2 * 3 * 112 * 112, sizeof(float));
    for (int i = 0; i < 2 * 3 * 112 * 112; i++)
        ((float *)x.data)[i] = (float)(i % 97) / 97.0f;
    fg_tensor y[4];
    st = fg_session_run(a, &x, 1, y, 4);
    check(!st && y[0].rank == 2 && y[0].dims[0] == 1 && y[0].dims[1] == 136, "run: output 1x136", st);
    fg_status_free(st);
    float first[136];
    if (!st)
        memcpy(first, y[0].data, sizeof first);
    st = fg_session_run(a, &x, 1, y, 4);
    check(!st && a->n_plans == 1 && !memcmp(first, y[0].data, sizeof first),
          "a second run with the same shapes reuses the plan and gives the same result", st);
    fg_status_free(st);
    x.dims[0] = 2; /* two copies of the same image: both rows equal the first result */
    memcpy((float *)x.data + 3 * 112 * 112, x.data, 3 * 112 * 112 * sizeof(float));
    st = fg_session_run(a, &x, 1, y, 4);
    int rows_equal = !st && y[0].dims[0] == 2;
    for (int i = 0; rows_equal && i < 136; i++)
        rows_equal = fabsf(((float *)y[0].data)[i] - first[i]) < 1e-5f &&
                     fabsf(((float *)y[0].data)[136 + i] - first[i]) < 1e-5f;
    check(rows_equal && a->n_plans == 2, "batch 2 gets its own plan; each row equals the batch-1 result", st);
    fg_status_free(st);

    fg_execution_report report;
    st = fg_session_execution_report(a, &report);
    check(!st && !strcmp(report.provider, "cpu") && report.arena_bytes > 0 && report.plans == 2,
          "the execution report names the provider, arena and plans", st);
    fg_status_free(st);

    /* errors name the input and what to do */
    fg_tensor wrong = {FG_FLOAT32, 4, {1, 3, 100, 112}, x.data, FG_HOST};
    st = fg_session_run(a, &wrong, 1, y, 4);
    check(st && fg_status_code(st) == FG_ERR_SHAPE && strstr(fg_status_message(st), "input"),
          "a wrong input shape is a shape error naming the input", st);
    fg_status_free(st);
    fg_tensor on_gpu = x;
    on_gpu.location = FG_DEVICE;
    st = fg_session_run(a, &on_gpu, 1, y, 4);
    check(st && fg_status_code(st) == FG_ERR_INVALID_ARGUMENT, "device tensors on the cpu provider are refused", st);
    fg_status_free(st);

    fg_session_close(b);
    fg_session_close(a);
    st = fg_session_open(engine, "/nonexistent/model.onnx", &a);
    check(st && fg_status_code(st) == FG_ERR_NOT_FOUND && strstr(fg_status_message(st), "/nonexistent/model.onnx"),
          "a missing model is 'not found' naming the path", st);
    fg_status_free(st);
    free(x.data);
    fg_engine_destroy(engine);
    printf("api: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
