/* facegraph models [--models DIR] [--graphs] [--json] [--refresh] [--runs N] [--size N]
 *
 * Lists the ONNX models in a directory and whether facegraph supports them;
 * with --graphs, the CUDA-graph compatibility matrix: for every model and
 * input-shape signature, whether it runs as a validated CUDA graph or
 * eagerly (and why), kernels per run, arena bytes, eager and graph latency.
 * Verdicts persist in a cache file keyed by model sha256, signature and the
 * GPU with its driver, CUDA, cuDNN and cuBLAS versions, so they are
 * re-validated whenever any of those changes. */
#include "cli/cli.h"

#include "runtime/runtime.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct matrix_row {
    char model[256];
    char sha256[65];
    char signature[128];
    char device[512];
    int captured;
    char reason[512];
    int kernels;
    size_t arena_bytes;
    double eager_ms, graph_ms;
    int cached;
    int error;
} matrix_row;

static void usage(FILE *to)
{
    fprintf(to, "usage: facegraph models [--models DIR] [--graphs] [--json] [--refresh] [--runs N] [--size N]\n"
                "                        [--execution-device-id N]\n"
                "Lists the .onnx models in DIR (default $FACEGRAPH_MODELS, then ./models) and whether every op is\n"
                "supported. --graphs adds the CUDA-graph compatibility matrix (needs the cuda provider): per\n"
                "model and signature, captured or eager with the reason, kernels per run, arena bytes, eager\n"
                "and graph latency (median of --runs runs, default 50). Dynamic dimensions are 1 for the\n"
                "first (batch) and --size (default 640) for the others. Verdicts are cached in\n"
                "$FACEGRAPH_CACHE_DIR (default ~/.cache/facegraph)/graph-verdicts.tsv, keyed by model sha256,\n"
                "signature, GPU, driver, CUDA, cuDNN and cuBLAS; --refresh validates again.\n");
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static const char *models_dir(const char *given)
{
    if (given)
        return given;
    const char *env = getenv("FACEGRAPH_MODELS");
    return env && env[0] ? env : "models";
}

static int list_models(const char *dir, char ***names)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0, cap = 0;
    *names = NULL;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".onnx") != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            char **grown = realloc(*names, sizeof **names * (size_t)cap);
            if (!grown)
                break;
            *names = grown;
        }
        (*names)[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(*names, (size_t)n, sizeof **names, cmp_names);
    return n;
}

static void cache_path(char *out, size_t size)
{
    const char *dir = getenv("FACEGRAPH_CACHE_DIR");
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    if (dir && dir[0])
        snprintf(out, size, "%s/graph-verdicts.tsv", dir);
    else if (xdg && xdg[0])
        snprintf(out, size, "%s/facegraph/graph-verdicts.tsv", xdg);
    else
        snprintf(out, size, "%s/.cache/facegraph/graph-verdicts.tsv", home ? home : ".");
}

static void make_parent_dirs(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(buf, 0777);
            *p = '/';
        }
}

/* Cache lines: sha256 \t signature \t device \t captured \t kernels \t arena \t eager \t graph \t reason */
static int cache_lookup(const char *path, matrix_row *row)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return 0;
    char line[2048];
    int found = 0;
    while (!found && fgets(line, sizeof line, fp)) {
        line[strcspn(line, "\n")] = 0;
        char *f[9];
        int n = 0;
        for (char *p = line; n < 9; n++) {
            f[n] = p;
            char *tab = strchr(p, '\t');
            if (!tab) {
                n++;
                break;
            }
            *tab = 0;
            p = tab + 1;
        }
        if (n != 9 || strcmp(f[0], row->sha256) || strcmp(f[1], row->signature) || strcmp(f[2], row->device))
            continue;
        row->captured = atoi(f[3]);
        row->kernels = atoi(f[4]);
        row->arena_bytes = (size_t)strtoull(f[5], NULL, 10);
        row->eager_ms = atof(f[6]);
        row->graph_ms = atof(f[7]);
        snprintf(row->reason, sizeof row->reason, "%s", f[8]);
        row->cached = 1;
        found = 1;
    }
    fclose(fp);
    return found;
}

/* Rewrites the cache: old lines for other keys, then these rows. */
static void cache_store(const char *path, const matrix_row *rows, int n)
{
    make_parent_dirs(path);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *out = fopen(tmp, "w");
    if (!out)
        return;
    FILE *in = fopen(path, "r");
    char line[2048];
    while (in && fgets(line, sizeof line, in)) {
        int replaced = 0;
        for (int i = 0; i < n && !replaced; i++) {
            char key[1024];
            snprintf(key, sizeof key, "%s\t%s\t%s\t", rows[i].sha256, rows[i].signature, rows[i].device);
            replaced = !strncmp(line, key, strlen(key));
        }
        if (!replaced && strchr(line, '\t'))
            fputs(line, out);
    }
    if (in)
        fclose(in);
    for (int i = 0; i < n; i++) {
        const matrix_row *r = &rows[i];
        if (r->error)
            continue;
        char reason[512];
        snprintf(reason, sizeof reason, "%s", r->reason);
        for (char *p = reason; *p; p++)
            if (*p == '\t' || *p == '\n')
                *p = ' ';
        fprintf(out, "%s\t%s\t%s\t%d\t%d\t%zu\t%.4f\t%.4f\t%s\n", r->sha256, r->signature, r->device, r->captured,
                r->kernels, r->arena_bytes, r->eager_ms, r->graph_ms, reason);
    }
    if (fclose(out) == 0)
        rename(tmp, path);
    else
        remove(tmp);
}

/* Median latency of `runs` runs after warm-up; the report of the last run. */
static fg_status *time_session(fg_session *s, fg_tensor *inputs, int n_in, int runs, double *median,
                               fg_execution_report *report)
{
    fg_tensor outputs[64];
    int n_out = fg_session_output_count(s);
    if (n_out > 64)
        return fg_error(FG_ERR_UNSUPPORTED, "more than 64 outputs");
    for (int w = 0; w < 3; w++) /* eager warm-ups, then capture and validation */
        FG_TRY(fg_session_run(s, inputs, n_in, outputs, n_out));
    double *t = calloc((size_t)runs, sizeof *t);
    if (!t)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory");
    fg_status *st = NULL;
    for (int r = 0; r < runs && !st; r++) {
        double t0 = fg_now_seconds();
        st = fg_session_run(s, inputs, n_in, outputs, n_out);
        t[r] = (fg_now_seconds() - t0) * 1e3;
    }
    if (!st) {
        *median = cli_median(t, runs);
        st = fg_session_execution_report(s, report);
    }
    free(t);
    return st;
}

static fg_status *measure(const cli_exec_options *exec, const char *path, int size, int runs, const char *cache,
                          int refresh, matrix_row *row)
{
    cli_exec_options eager_opts = *exec, graph_opts = *exec;
    eager_opts.cuda_graph = FG_CUDA_GRAPH_OFF;
    graph_opts.cuda_graph = FG_CUDA_GRAPH_AUTO;
    fg_engine *eager_engine = NULL, *graph_engine = NULL;
    fg_session *eager = NULL, *graph = NULL;
    fg_tensor inputs[64];
    memset(inputs, 0, sizeof inputs);
    int n_in = 0;
    fg_status *st = cli_engine_create(&eager_opts, &eager_engine);
    if (!st)
        st = cli_engine_create(&graph_opts, &graph_engine);
    if (!st)
        st = fg_session_open(eager_engine, path, &eager);
    if (st)
        goto done;
    snprintf(row->sha256, sizeof row->sha256, "%s", fg_session_sha256(eager));
#ifdef FG_HAVE_CUDA
    snprintf(row->device, sizeof row->device, "%s", cuda_device_describe(eager_engine->cuda));
#endif
    n_in = fg_session_input_count(eager);
    if (n_in > 64) {
        st = fg_error(FG_ERR_UNSUPPORTED, "more than 64 inputs");
        goto done;
    }
    size_t used = 0;
    for (int i = 0; i < n_in; i++) {
        const fg_value_info *v = fg_session_input(eager, i);
        inputs[i].dtype = v->dtype;
        inputs[i].rank = v->rank;
        for (int d = 0; d < v->rank; d++)
            inputs[i].dims[d] = v->dims[d] >= 0 ? v->dims[d] : (d == 0 ? 1 : size);
        char shape[96];
        used += (size_t)snprintf(row->signature + used, sizeof row->signature - used, "%s%s", i ? "," : "",
                                 fg_shape_format(inputs[i].rank, inputs[i].dims, shape, sizeof shape));
        if (used >= sizeof row->signature)
            used = sizeof row->signature - 1;
        size_t bytes = fg_tensor_nbytes(&inputs[i]);
        inputs[i].data = malloc(bytes ? bytes : 1);
        if (!inputs[i].data) {
            st = fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory");
            goto done;
        }
        for (int64_t k = 0; k < fg_tensor_numel(&inputs[i]); k++) /* a fixed, non-trivial pattern */
            fg_store_f64(inputs[i].dtype, inputs[i].data, k, (double)(k % 251) / 251.0);
    }
    if (!refresh && cache_lookup(cache, row))
        goto done;
    fg_execution_report r_eager, r_graph;
    st = time_session(eager, inputs, n_in, runs, &row->eager_ms, &r_eager);
    if (!st)
        st = fg_session_open(graph_engine, path, &graph);
    if (!st)
        st = time_session(graph, inputs, n_in, runs, &row->graph_ms, &r_graph);
    if (st)
        goto done;
    row->captured = r_graph.graph_captured;
    if (strcmp(r_graph.provider, "cuda") != 0)
        snprintf(row->reason, sizeof row->reason, "runs on cpu: %.490s", r_graph.graph_reason);
    else
        snprintf(row->reason, sizeof row->reason, "%s", r_graph.graph_reason);
    row->kernels = r_graph.kernels_per_run ? r_graph.kernels_per_run : r_eager.kernels_per_run;
    row->arena_bytes = r_graph.arena_bytes;
done:
    for (int i = 0; i < n_in; i++)
        free(inputs[i].data);
    fg_session_close(graph);
    fg_session_close(eager);
    fg_engine_destroy(graph_engine);
    fg_engine_destroy(eager_engine);
    return st;
}

int cli_models(int argc, char **argv)
{
    const char *cmd = "models";
    const char *dir_arg = NULL;
    int graphs = 0, json = 0, refresh = 0, runs = 50, size = 640;
    cli_exec_options exec;
    cli_exec_options_init(&exec);
    for (int i = 1; i < argc; i++) {
        int r = cli_parse_exec_option(argc, argv, &i, &exec);
        if (r < 0)
            return 2;
        if (r)
            continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--models") && i + 1 < argc) {
            dir_arg = argv[++i];
        } else if (!strcmp(argv[i], "--graphs")) {
            graphs = 1;
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "--refresh")) {
            refresh = 1;
        } else if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
            runs = atoi(argv[++i]);
            if (runs < 1)
                return cli_usage_error(cmd, "--runs needs a positive count");
        } else if (!strcmp(argv[i], "--size") && i + 1 < argc) {
            size = atoi(argv[++i]);
            if (size < 1)
                return cli_usage_error(cmd, "--size needs a positive size");
        } else {
            return cli_usage_error(cmd, "unexpected argument '%s'", argv[i]);
        }
    }
    const char *dir = models_dir(dir_arg);
    char **names = NULL;
    int n = list_models(dir, &names);
    if (n < 0)
        return cli_fail(cmd, fg_error(FG_ERR_NOT_FOUND, "cannot read the models directory %s: %s; pass --models DIR",
                                      dir, strerror(errno)));
    if (graphs) {
        if (!exec.n_providers) {
            exec.providers[exec.n_providers++] = "cuda";
            exec.providers[exec.n_providers++] = "cpu";
        }
        fg_engine *probe = NULL;
        fg_status *st = cli_engine_create(&exec, &probe);
        fg_engine_destroy(probe);
        if (st) {
            for (int i = 0; i < n; i++)
                free(names[i]);
            free(names);
            return cli_fail(cmd, fg_error_wrap(st, "the graph matrix needs the cuda provider"));
        }
    }
    char cache[4096];
    cache_path(cache, sizeof cache);
    matrix_row *rows = calloc((size_t)(n ? n : 1), sizeof *rows);
    if (!rows)
        return cli_fail(cmd, fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory"));
    fg_engine *engine = NULL;
    cli_exec_options cpu_opts;
    cli_exec_options_init(&cpu_opts);
    cpu_opts.thread_count = 1;
    fg_status *st = graphs ? NULL : cli_engine_create(&cpu_opts, &engine);
    if (st)
        return cli_fail(cmd, st);
    if (json)
        printf("{\"models_dir\": \"%s\", \"models\": [", dir);
    else if (graphs)
        printf("%-36s %-22s %-7s %7s %9s %9s %9s  %s\n", "model", "signature", "graph", "kernels", "arena MB",
               "eager ms", "graph ms", "reason");
    else
        printf("%-36s %10s  %-16s %s\n", "model", "MB", "sha256", "status");
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        matrix_row *row = &rows[i];
        snprintf(row->model, sizeof row->model, "%s", names[i]);
        if (graphs) {
            st = measure(&exec, path, size, runs, cache, refresh, row);
            if (st) {
                row->error = 1;
                snprintf(row->reason, sizeof row->reason, "error: %s", fg_status_message(st));
                fg_status_free(st);
            }
            if (json) {
                printf("%s\n  {\"model\": ", i ? "," : "");
                cli_json_string(stdout, row->model);
                printf(", \"sha256\": \"%s\", \"signature\": ", row->sha256);
                cli_json_string(stdout, row->signature);
                printf(", \"graph\": %s, \"reason\": ", row->error ? "null" : (row->captured ? "true" : "false"));
                cli_json_string(stdout, row->reason);
                printf(", \"kernels_per_run\": %d, \"arena_bytes\": %zu, \"eager_ms\": %.4f, \"graph_ms\": %.4f, "
                       "\"cached\": %s, \"device\": ",
                       row->kernels, row->arena_bytes, row->eager_ms, row->graph_ms, row->cached ? "true" : "false");
                cli_json_string(stdout, row->device);
                printf("}");
            } else {
                printf("%-36s %-22s %-7s %7d %9.2f %9.3f %9.3f  %s%s\n", row->model, row->signature,
                       row->error ? "error" : (row->captured ? "yes" : "eager"), row->kernels,
                       row->arena_bytes / 1048576.0, row->eager_ms, row->graph_ms, row->reason,
                       row->cached ? " (cached)" : "");
            }
            fflush(stdout);
            continue;
        }
        fg_session *s = NULL;
        st = fg_session_open(engine, path, &s);
        struct stat sb;
        double mb = stat(path, &sb) == 0 ? sb.st_size / 1e6 : 0;
        const char *status = st ? fg_status_message(st) : "supported";
        if (json) {
            printf("%s\n  {\"model\": ", i ? "," : "");
            cli_json_string(stdout, names[i]);
            printf(", \"megabytes\": %.2f, \"sha256\": \"%s\", \"supported\": %s, \"status\": ", mb,
                   s ? fg_session_sha256(s) : "", st ? "false" : "true");
            cli_json_string(stdout, status);
            printf("}");
        } else {
            printf("%-36s %10.2f  %-16.16s %s\n", names[i], mb, s ? fg_session_sha256(s) : "-", status);
        }
        fg_status_free(st);
        fg_session_close(s);
    }
    if (json)
        printf("\n], \"cache\": \"%s\"}\n", graphs ? cache : "");
    if (graphs)
        cache_store(cache, rows, n);
    fg_engine_destroy(engine);
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(rows);
    return 0;
}
