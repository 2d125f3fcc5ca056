/* Graph segments around If / Loop (src/plan/segments.c,
 * src/runtime/segments.c) against the whole-graph CPU run.
 *
 * usage: test_segments [--data DIR] MODEL.onnx ...
 *
 * Each MODEL (tests/segments_models.py writes them) runs CALLS times through
 * one segment runner on the CPU piece backend and through the whole-graph
 * plan (cpu_run_plan with If / Loop in src/cpu/cpu_control.c); every output
 * must be bit-identical. Float inputs get values whose sign alternates from
 * call to call (both branches, several trip counts). Then every ONNX backend
 * node test test_if* / test_loop* under DIR (default: Debian's
 * libonnx-testdata) runs the same way and must also match the expected
 * outputs; tests whose model facegraph cannot load (sequence / optional
 * values) are skipped. Prints "N passed, M failed, K skipped". */
#include "test_data.h"
#include "cpu/cpu.h"
#include "runtime/segments.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_DATA "/usr/include/onnx/backend/test/data/node"
#define CALLS 10
#define MAX_IO 16

static int passed, failed, skipped;

static void report(const char *name, const char *what, fg_status *st)
{
    if (st) {
        failed++;
        printf("FAIL %s: %s: %s\n", name, what, fg_status_message(st));
        fg_status_free(st);
    }
}

/* Every node of g and its subgraphs has an op. */
static int ops_known(const ir_graph *g, const char **missing)
{
    for (int k = 0; k < g->n_nodes; k++) {
        const ir_node *node = &g->nodes[k];
        if (!op_find(node->domain, node->op_type)) {
            *missing = node->op_type;
            return 0;
        }
        for (int a = 0; a < node->n_attrs; a++)
            if (node->attrs[a].type == IR_ATTR_GRAPH && node->attrs[a].g && !ops_known(node->attrs[a].g, missing))
                return 0;
    }
    return 1;
}

static int same_bits(const fg_tensor *a, const fg_tensor *b, char *why, size_t why_size)
{
    if (a->dtype != b->dtype || !fg_shape_equal(a->rank, a->dims, b->rank, b->dims)) {
        char sa[128], sb[128];
        snprintf(why, why_size, "%s %s vs %s %s", fg_dtype_name(a->dtype), fg_shape_format(a->rank, a->dims, sa, sizeof sa),
                 fg_dtype_name(b->dtype), fg_shape_format(b->rank, b->dims, sb, sizeof sb));
        return 0;
    }
    size_t bytes = fg_tensor_nbytes(a);
    if (bytes && memcmp(a->data, b->data, bytes) != 0) {
        snprintf(why, why_size, "data differs");
        return 0;
    }
    return 1;
}

typedef struct cached_plan {
    plan *p;
    struct cached_plan *next;
} cached_plan;

/* The whole-graph CPU run, plans cached per signature like a session. */
static fg_status *run_whole(const ir_model *model, cached_plan **cache, const fg_tensor *in, int n, fg_tensor *out)
{
    cached_plan *c = *cache;
    while (c && !plan_matches_signature(c->p, in, n))
        c = c->next;
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c)
            return fg_error(FG_ERR_OUT_OF_MEMORY, "out of memory");
        fg_status *st = plan_for_signature(model, in, n, 2, 0, &c->p);
        if (st) {
            free(c);
            return st;
        }
        c->next = *cache;
        *cache = c;
    }
    return cpu_run_plan(c->p, in, out);
}

static void free_cache(cached_plan *c)
{
    while (c) {
        cached_plan *next = c->next;
        plan_free(c->p);
        free(c);
        c = next;
    }
}

/* Runs one call both ways and compares; expected (optional) with a tolerance. */
static int check_call(const char *name, const ir_model *model, seg_runner *runner, cached_plan **cache,
                      const fg_tensor *in, int n_in, ir_tensor **expected, int n_expected, int call)
{
    const ir_graph *g = model->graph;
    fg_tensor whole[MAX_IO], seg[MAX_IO];
    char what[160], why[256];
    snprintf(what, sizeof what, "call %d: whole-graph run", call);
    fg_status *st = run_whole(model, cache, in, n_in, whole);
    if (st) {
        report(name, what, st);
        return 0;
    }
    snprintf(what, sizeof what, "call %d: segment run", call);
    st = seg_runner_run(runner, in, n_in, seg);
    if (st) {
        report(name, what, st);
        return 0;
    }
    for (int i = 0; i < g->n_outputs; i++) {
        if (!same_bits(&seg[i], &whole[i], why, sizeof why)) {
            printf("FAIL %s: call %d output '%s': segments vs whole graph: %s\n", name, call,
                   g->values[g->outputs[i]].name, why);
            failed++;
            return 0;
        }
        if (i >= n_expected)
            continue;
        const ir_tensor *want = expected[i];
        fg_tensor w = {want->dtype, want->rank, {0}, (void *)want->data, FG_HOST};
        memcpy(w.dims, want->dims, sizeof w.dims);
        int ok = w.dtype == seg[i].dtype && fg_shape_equal(w.rank, w.dims, seg[i].rank, seg[i].dims);
        for (int64_t e = 0; ok && e < fg_tensor_numel(&w); e++) {
            double a = fg_load_f64(seg[i].dtype, seg[i].data, e), b = fg_load_f64(w.dtype, w.data, e);
            ok = fabs(a - b) <= 1e-5 + 1e-3 * fabs(b);
        }
        if (!ok) {
            printf("FAIL %s: output '%s' differs from the expected output\n", name, g->values[g->outputs[i]].name);
            failed++;
            return 0;
        }
    }
    return 1;
}

static unsigned rng_state;
static float rng_uniform(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}

/* A runner over the CPU piece backend with 2 threads. */
static fg_status *new_runner(const ir_model *model, seg_runner **out)
{
    seg_runner_options o;
    memset(&o, 0, sizeof o);
    o.threads = 2;
    return seg_runner_create(model, &o, out);
}

static void test_model(const char *path)
{
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    ir_model *model = NULL;
    fg_status *st = ir_model_load(path, &model);
    if (st) {
        report(name, "load", st);
        return;
    }
    const ir_graph *g = model->graph;
    seg_runner *runner = NULL;
    st = new_runner(model, &runner);
    if (st) {
        report(name, "segment runner", st);
        ir_model_free(model);
        return;
    }
    cached_plan *cache = NULL;
    fg_tensor in[MAX_IO];
    float *buffers[MAX_IO] = {0};
    int ok = g->n_inputs <= MAX_IO && g->n_outputs <= MAX_IO, decisions = 0, pieces = 0;
    for (int call = 0; ok && call < CALLS; call++) {
        rng_state = 12345u + (unsigned)(call / 2) * 7919u; /* pairs of calls: same magnitudes, opposite signs */
        for (int i = 0; i < g->n_inputs && ok; i++) {
            const ir_value *v = &g->values[g->inputs[i]];
            memset(&in[i], 0, sizeof in[i]);
            in[i].dtype = FG_FLOAT32;
            in[i].rank = v->rank < 0 ? 1 : v->rank;
            for (int d = 0; d < in[i].rank; d++)
                in[i].dims[d] = v->rank < 0 || v->dims[d] < 0 ? 3 : v->dims[d];
            if (v->dtype != FG_FLOAT32) {
                printf("FAIL %s: input '%s' is not float32\n", name, v->name);
                failed++;
                ok = 0;
                break;
            }
            int64_t n = fg_tensor_numel(&in[i]);
            free(buffers[i]);
            buffers[i] = malloc(sizeof(float) * (size_t)(n + 1));
            for (int64_t e = 0; e < n; e++)
                buffers[i][e] = (call % 2 ? -1.0f : 1.0f) * (rng_uniform() + 0.25f);
            in[i].data = buffers[i];
        }
        if (ok)
            ok = check_call(name, model, runner, &cache, in, g->n_inputs, NULL, 0, call);
        seg_runner_stats stats;
        seg_runner_get_stats(runner, &stats);
        decisions += stats.host_decisions;
        pieces = stats.plans;
    }
    seg_runner_stats last;
    seg_runner_get_stats(runner, &last);
    if (ok && last.dynamic_plans) { /* the GPU needs every piece static */
        printf("FAIL %s: %d piece plans have run-time shapes\n", name, last.dynamic_plans);
        failed++;
        ok = 0;
    }
    if (ok && !decisions) {
        printf("FAIL %s: no host decision was taken\n", name);
        failed++;
        ok = 0;
    }
    if (ok) {
        seg_runner_stats stats;
        seg_runner_get_stats(runner, &stats);
        printf("PASS %s: %d calls bit-identical to the whole-graph run (%d piece plans, %d host decisions; %s)\n",
               name, CALLS, pieces, decisions, stats.reason);
        passed++;
    }
    for (int i = 0; i < MAX_IO; i++)
        free(buffers[i]);
    free_cache(cache);
    seg_runner_free(runner);
    ir_model_free(model);
}

static ir_tensor *read_tensor(const char *path)
{
    void *data = NULL;
    size_t size = 0;
    ir_tensor *t = NULL;
    if (!test_read_file(path, &data, &size))
        return NULL;
    fg_status *st = ir_tensor_parse(data, size, &t);
    free(data);
    if (st) {
        fg_status_free(st);
        return NULL;
    }
    return t;
}

static void test_node(const char *dir, const char *test)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/model.onnx", dir, test);
    ir_model *model = NULL;
    fg_status *st = ir_model_load(path, &model);
    const char *missing = NULL;
    if (st || !ops_known(model->graph, &missing)) {
        printf("SKIP %s: %s\n", test, st ? fg_status_message(st) : missing);
        skipped++;
        fg_status_free(st);
        ir_model_free(model);
        return;
    }
    const ir_graph *g = model->graph;
    seg_runner *runner = NULL;
    st = new_runner(model, &runner);
    cached_plan *cache = NULL;
    int ok = !st, sets = 0;
    report(test, "segment runner", st);
    for (int set = 0; ok && set < 16; set++) {
        ir_tensor *inputs[MAX_IO] = {0}, *expected[MAX_IO] = {0};
        fg_tensor in[MAX_IO];
        snprintf(path, sizeof path, "%s/%s/test_data_set_%d/input_0.pb", dir, test, set);
        FILE *probe = fopen(path, "rb");
        if (!probe && g->n_inputs > 0)
            break;
        if (probe)
            fclose(probe);
        for (int i = 0; i < g->n_inputs && i < MAX_IO && ok; i++) {
            snprintf(path, sizeof path, "%s/%s/test_data_set_%d/input_%d.pb", dir, test, set, i);
            inputs[i] = read_tensor(path);
            if (!inputs[i]) {
                printf("FAIL %s: cannot read %s\n", test, path);
                failed++;
                ok = 0;
                break;
            }
            in[i] = (fg_tensor){inputs[i]->dtype, inputs[i]->rank, {0}, (void *)inputs[i]->data, FG_HOST};
            memcpy(in[i].dims, inputs[i]->dims, sizeof in[i].dims);
        }
        int n_expected = 0;
        for (int i = 0; i < g->n_outputs && i < MAX_IO && ok; i++, n_expected++) {
            snprintf(path, sizeof path, "%s/%s/test_data_set_%d/output_%d.pb", dir, test, set, i);
            if (!(expected[i] = read_tensor(path)))
                break;
        }
        /* each data set twice: the second run replays cached piece plans */
        for (int rep = 0; ok && rep < 2; rep++)
            ok = check_call(test, model, runner, &cache, in, g->n_inputs, expected, n_expected, set * 2 + rep);
        for (int i = 0; i < MAX_IO; i++) {
            ir_tensor_free(inputs[i]);
            ir_tensor_free(expected[i]);
        }
        sets++;
        if (g->n_inputs == 0)
            break;
    }
    if (ok) {
        printf("PASS %s: %d data sets bit-identical to the whole-graph run and matching ONNX's outputs\n", test,
               sets);
        passed++;
    }
    free_cache(cache);
    seg_runner_free(runner);
    ir_model_free(model);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv)
{
    const char *data = DEFAULT_DATA;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--data") && i + 1 < argc)
            data = argv[++i];
        else
            test_model(argv[i]);
    }
    DIR *d = opendir(data);
    if (!d) {
        printf("SKIP ONNX node tests: %s not found\n", data);
        skipped++;
    } else {
        char *names[256];
        int n = 0;
        struct dirent *e;
        while ((e = readdir(d)) && n < 256)
            if (!strncmp(e->d_name, "test_if", 7) || !strncmp(e->d_name, "test_loop", 9))
                names[n++] = strdup(e->d_name);
        closedir(d);
        qsort(names, (size_t)n, sizeof *names, by_name);
        for (int i = 0; i < n; i++) {
            test_node(data, names[i]);
            free(names[i]);
        }
    }
    printf("segments: %d passed, %d failed, %d skipped\n", passed, failed, skipped);
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
