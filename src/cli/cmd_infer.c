/* facegraph infer MODEL --input NAME=FILE.npy ... --output-dir DIR [--repeat N] */
#include "cli/cli.h"
#include "cli/npy.h"

#include "base/base.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *to)
{
    fprintf(to, "usage: facegraph infer MODEL --input NAME=FILE.npy ... --output-dir DIR [--repeat N] [--report]\n"
                "       [--execution-providers cpu] [--execution-thread-count N]\n"
                "Runs MODEL on the given arrays (one --input per model input; NAME= may be left out for a\n"
                "single-input model), writes DIR/<output>.npy per output and DIR/outputs.json, and prints\n"
                "the median run time over --repeat runs (default 1). --report prints how it ran\n"
                "(provider, CUDA graph captured or why not, kernels per run, arena bytes) as JSON;\n"
                "--profile times every step of one run and prints the slowest op types and steps.\n");
}

/* Output names made safe for a file name: [A-Za-z0-9._-], others become '_'. */
static void sanitise(const char *name, char *out, size_t size)
{
    size_t n = 0;
    for (const char *p = name; *p && n + 1 < size; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                 c == '-' || c == '_';
        out[n++] = ok ? c : '_';
    }
    if (n == 0 || out[0] == '.')
        out[n ? 0 : n++] = '_';
    out[n] = 0;
}

typedef struct op_time {
    const char *op;
    double ms;
    int count;
} op_time;

static int by_time(const void *a, const void *b)
{
    double x = ((const op_time *)a)->ms, y = ((const op_time *)b)->ms;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* --profile: one run timing every step; totals per op type, slowest steps. */
static fg_status *print_profile(fg_session *session, const fg_tensor *inputs, int n_in, fg_tensor *outputs)
{
    plan *p = NULL;
    double *ms = NULL;
    FG_TRY(session_profile(session, inputs, n_in, outputs, &p, &ms));
    op_time *ops = calloc((size_t)p->n_steps + 1, sizeof *ops);
    op_time *steps = calloc((size_t)p->n_steps + 1, sizeof *steps);
    if (!ops || !steps) {
        free(ops);
        free(steps);
        free(ms);
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    int n_ops = 0;
    double total = 0;
    for (int k = 0; k < p->n_steps; k++) {
        const char *t = p->steps[k].node->op_type;
        int i = 0;
        while (i < n_ops && strcmp(ops[i].op, t))
            i++;
        if (i == n_ops)
            ops[n_ops++].op = t;
        ops[i].ms += ms[k];
        ops[i].count++;
        steps[k].op = p->steps[k].node->name[0] ? p->steps[k].node->name : t;
        steps[k].ms = ms[k];
        steps[k].count = k;
        total += ms[k];
    }
    qsort(ops, (size_t)n_ops, sizeof *ops, by_time);
    printf("profile: %d steps, %.4f ms in total (one eager run)\n", p->n_steps, total);
    for (int i = 0; i < n_ops; i++)
        printf("  %-22s %4d steps %9.4f ms %5.1f%%\n", ops[i].op, ops[i].count, ops[i].ms,
               total > 0 ? 100 * ops[i].ms / total : 0);
    qsort(steps, (size_t)p->n_steps, sizeof *steps, by_time);
    printf("slowest steps:\n");
    for (int i = 0; i < p->n_steps && i < 30; i++) {
        const plan_step *s = &p->steps[steps[i].count];
        char shape[96] = "";
        if (s->out[0] >= 0)
            fg_shape_format(p->values[s->out[0]].t.rank, p->values[s->out[0]].t.dims, shape, sizeof shape);
        printf("  %9.4f ms  %-12s %-28s -> %s\n", steps[i].ms, s->node->op_type, steps[i].op, shape);
    }
    free(ops);
    free(steps);
    free(ms);
    return NULL;
}

int cli_infer(int argc, char **argv)
{
    const char *cmd = "infer";
    const char *model_path = NULL, *out_dir = NULL;
    const char *input_args[64];
    int n_input_args = 0, repeat = 1, report = 0, profile = 0;
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
        } else if (!strcmp(argv[i], "--input") && i + 1 < argc) {
            if (n_input_args == 64)
                return cli_usage_error(cmd, "too many --input");
            input_args[n_input_args++] = argv[++i];
        } else if (!strcmp(argv[i], "--report")) {
            report = 1;
        } else if (!strcmp(argv[i], "--profile")) {
            profile = 1;
        } else if (!strcmp(argv[i], "--output-dir") && i + 1 < argc) {
            out_dir = argv[++i];
        } else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) {
            repeat = atoi(argv[++i]);
            if (repeat < 1)
                return cli_usage_error(cmd, "--repeat needs a positive count");
        } else if (argv[i][0] != '-' && !model_path) {
            model_path = argv[i];
        } else {
            return cli_usage_error(cmd, "unexpected argument '%s'", argv[i]);
        }
    }
    if (!model_path || !out_dir)
        return cli_usage_error(cmd, "needs MODEL and --output-dir DIR");

    fg_engine *engine = NULL;
    fg_session *session = NULL;
    fg_tensor inputs[64], outputs[64];
    memset(inputs, 0, sizeof inputs);
    int rc = 1, n_in = 0;
    double *times = NULL;
    fg_status *st = cli_engine_create(&exec, &engine);
    if (!st)
        st = fg_session_open(engine, model_path, &session);
    if (st)
        goto fail;
    n_in = fg_session_input_count(session);
    int n_out = fg_session_output_count(session);
    if (n_in > 64 || n_out > 64) {
        st = fg_error(FG_ERR_UNSUPPORTED, "%s: models with more than 64 inputs or outputs are not supported",
                      model_path);
        goto fail;
    }
    for (int a = 0; a < n_input_args; a++) {
        const char *eq = strchr(input_args[a], '=');
        char name[512];
        const char *file = input_args[a];
        int index = 0;
        if (eq) {
            snprintf(name, sizeof name, "%.*s", (int)(eq - input_args[a]), input_args[a]);
            file = eq + 1;
            index = fg_session_input_index(session, name);
            if (index < 0) {
                char names[1024] = "";
                for (int k = 0; k < n_in; k++)
                    snprintf(names + strlen(names), sizeof names - strlen(names), "%s'%s'", k ? ", " : "",
                             fg_session_input(session, k)->name);
                st = fg_error(FG_ERR_NOT_FOUND, "the model has no input '%s'; its inputs are %s", name, names);
                goto fail;
            }
        } else if (n_in != 1) {
            st = fg_error(FG_ERR_INVALID_ARGUMENT, "the model has %d inputs: name each as --input NAME=FILE.npy", n_in);
            goto fail;
        }
        if (inputs[index].data) {
            st = fg_error(FG_ERR_INVALID_ARGUMENT, "input '%s' is given twice", fg_session_input(session, index)->name);
            goto fail;
        }
        st = npy_read(file, &inputs[index]);
        if (st)
            goto fail;
    }
    for (int k = 0; k < n_in; k++)
        if (!inputs[k].data) {
            st = fg_error(FG_ERR_INVALID_ARGUMENT, "missing input '%s': pass --input %s=FILE.npy",
                          fg_session_input(session, k)->name, fg_session_input(session, k)->name);
            goto fail;
        }
    times = calloc((size_t)repeat * 2, sizeof *times);
    if (!times) {
        st = fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory");
        goto fail;
    }
    /* the first run plans; time the runs after it */
    st = fg_session_run(session, inputs, n_in, outputs, n_out);
    double *device_times = times + repeat;
    for (int r = 0; !st && r < repeat; r++) {
        double t0 = fg_now_seconds();
        st = fg_session_run(session, inputs, n_in, outputs, n_out);
        times[r] = (fg_now_seconds() - t0) * 1e3;
        fg_execution_report er;
        fg_status *rs = st ? NULL : fg_session_execution_report(session, &er);
        device_times[r] = rs ? 0 : er.device_ms;
        fg_status_free(rs);
    }
    if (!st && profile)
        st = print_profile(session, inputs, n_in, outputs);
    if (st)
        goto fail;
    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST) {
        st = fg_error(FG_ERR_IO, "cannot create the output directory %s: %s", out_dir, strerror(errno));
        goto fail;
    }
    char json_path[4096], tmp_path[4200];
    snprintf(json_path, sizeof json_path, "%s/outputs.json", out_dir);
    snprintf(tmp_path, sizeof tmp_path, "%s.tmp", json_path);
    FILE *json = fopen(tmp_path, "w");
    if (!json) {
        st = fg_error(FG_ERR_IO, "cannot write %s: %s", tmp_path, strerror(errno));
        goto fail;
    }
    fprintf(json, "{");
    for (int k = 0; k < n_out && !st; k++) {
        const char *name = fg_session_output(session, k)->name;
        char file[512], path[4096 + 600];
        sanitise(name, file, sizeof file - 8);
        /* disambiguate names that sanitise to the same file */
        for (int j = 0; j < k; j++) {
            char other[512];
            sanitise(fg_session_output(session, j)->name, other, sizeof other - 8);
            if (!strcmp(other, file))
                snprintf(file + strlen(file), 8, "_%d", k);
        }
        strcat(file, ".npy");
        snprintf(path, sizeof path, "%s/%s", out_dir, file);
        st = npy_write(path, &outputs[k]);
        fprintf(json, "%s\n  ", k ? "," : "");
        cli_json_string(json, name);
        fprintf(json, ": ");
        cli_json_string(json, file);
    }
    fprintf(json, "\n}\n");
    if (fclose(json) != 0 && !st)
        st = fg_error(FG_ERR_IO, "writing %s failed", tmp_path);
    if (!st && rename(tmp_path, json_path) != 0)
        st = fg_error(FG_ERR_IO, "cannot rename %s: %s", tmp_path, strerror(errno));
    if (st) {
        remove(tmp_path);
        goto fail;
    }
    double median = cli_median(times, repeat), device_median = cli_median(device_times, repeat);
    printf("median run time: %.3f ms over %d run%s\n", median, repeat, repeat > 1 ? "s" : "");
    if (device_median > 0)
        printf("median device time: %.4f ms (GPU kernels, by CUDA events; copies excluded)\n", device_median);
    if (fg_session_warning(session)[0])
        fprintf(stderr, "facegraph infer: warning: %s\n", fg_session_warning(session));
    if (report) {
        fg_execution_report r;
        st = fg_session_execution_report(session, &r);
        if (st)
            goto fail;
        printf("execution: {\"provider\": \"%s\", \"device\": ", r.provider);
        cli_json_string(stdout, r.device);
        printf(", \"graph_captured\": %s, \"graph_reason\": ", r.graph_captured ? "true" : "false");
        cli_json_string(stdout, r.graph_reason);
        printf(", \"kernels_per_run\": %d, \"arena_bytes\": %zu, \"device_ms\": %.4f}\n", r.kernels_per_run,
               r.arena_bytes, r.device_ms);
    }
    rc = 0;
fail:
    if (st)
        rc = cli_fail(cmd, st);
    for (int k = 0; k < 64; k++)
        free(inputs[k].data);
    free(times);
    fg_session_close(session);
    fg_engine_destroy(engine);
    return rc;
}
