/* Options and error reporting shared by the subcommands. */
#include "cli/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_exec_options_init(cli_exec_options *o)
{
    memset(o, 0, sizeof *o);
    o->device_id = 0;
    o->thread_count = 0;
}

static int parse_int(const char *text, int *out)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (!*text || *end)
        return 0;
    *out = (int)v;
    return 1;
}

int cli_parse_exec_option(int argc, char **argv, int *i, cli_exec_options *o)
{
    const char *arg = argv[*i];
    if (!strcmp(arg, "--execution-providers")) {
        o->n_providers = 0;
        while (*i + 1 < argc && argv[*i + 1][0] != '-') {
            if (o->n_providers == CLI_MAX_PROVIDERS) {
                fprintf(stderr, "facegraph: --execution-providers takes at most %d providers\n", CLI_MAX_PROVIDERS);
                return -1;
            }
            o->providers[o->n_providers++] = argv[++*i];
        }
        if (!o->n_providers) {
            fprintf(stderr, "facegraph: --execution-providers needs at least one provider (available: %s)\n",
                    fg_available_providers());
            return -1;
        }
        return 1;
    }
    if (!strcmp(arg, "--cuda-graph") || !strcmp(arg, "--cuda-tf32") || !strcmp(arg, "--cudnn-conv-algo-search") ||
        !strcmp(arg, "--execution-precision")) {
        const char *v = *i + 1 < argc ? argv[*i + 1] : "";
        if (!strcmp(arg, "--cuda-graph")) {
            if (!strcmp(v, "auto"))
                o->cuda_graph = FG_CUDA_GRAPH_AUTO;
            else if (!strcmp(v, "on"))
                o->cuda_graph = FG_CUDA_GRAPH_ON;
            else if (!strcmp(v, "off"))
                o->cuda_graph = FG_CUDA_GRAPH_OFF;
            else {
                fprintf(stderr, "facegraph: --cuda-graph takes auto, on or off\n");
                return -1;
            }
        } else if (!strcmp(arg, "--cuda-tf32")) {
            if (strcmp(v, "on") && strcmp(v, "off")) {
                fprintf(stderr, "facegraph: --cuda-tf32 takes on or off\n");
                return -1;
            }
            o->allow_tf32 = !strcmp(v, "on");
        } else if (!strcmp(arg, "--cudnn-conv-algo-search")) {
            if (strcmp(v, "exhaustive") && strcmp(v, "heuristic") && strcmp(v, "default")) {
                fprintf(stderr, "facegraph: --cudnn-conv-algo-search takes exhaustive, heuristic or default\n");
                return -1;
            }
            setenv("FACEGRAPH_CUDNN_CONV_ALGO_SEARCH", v, 1);
        } else {
            if (strcmp(v, "fp32") && strcmp(v, "fp16")) {
                fprintf(stderr, "facegraph: --execution-precision takes fp32 or fp16\n");
                return -1;
            }
            o->precision_fp16 = !strcmp(v, "fp16");
        }
        ++*i;
        return 1;
    }
    if (!strcmp(arg, "--cuda-graph-exclude")) {
        while (*i + 1 < argc && argv[*i + 1][0] != '-' &&
               o->n_graph_exclude < (int)(sizeof o->graph_exclude / sizeof o->graph_exclude[0]))
            o->graph_exclude[o->n_graph_exclude++] = argv[++*i];
        return 1;
    }
    if (!strcmp(arg, "--execution-device-id") || !strcmp(arg, "--execution-thread-count")) {
        int is_device = arg[12] == 'd';
        int v;
        if (*i + 1 >= argc || !parse_int(argv[*i + 1], &v) || v < (is_device ? 0 : 1)) {
            fprintf(stderr, "facegraph: %s needs %s\n", arg,
                    is_device ? "a device index (0, 1, ...)" : "a positive thread count");
            return -1;
        }
        ++*i;
        if (is_device)
            o->device_id = v;
        else
            o->thread_count = v;
        return 1;
    }
    return 0;
}

fg_status *cli_engine_create(const cli_exec_options *o, fg_engine **engine)
{
    fg_engine_options eo = {0};
    eo.providers = o->providers;
    eo.n_providers = o->n_providers;
    eo.device_id = o->device_id;
    eo.thread_count = o->thread_count;
    eo.cuda_graph = o->cuda_graph;
    eo.cuda_graph_exclude = o->graph_exclude;
    eo.n_cuda_graph_exclude = o->n_graph_exclude;
    eo.allow_tf32 = o->allow_tf32;
    eo.precision_fp16 = o->precision_fp16;
    return fg_engine_create(&eo, engine);
}

int cli_fail(const char *command, fg_status *status)
{
    int code = fg_status_code(status) == FG_ERR_UNSUPPORTED ? 3 : 1;
    fprintf(stderr, "facegraph %s: error: %s\n", command, fg_status_message(status));
    fg_status_free(status);
    return code;
}

int cli_usage_error(const char *command, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "facegraph %s: ", command);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see `facegraph %s --help`)\n", command);
    va_end(ap);
    return 2;
}

int cli_parse_shape(const char *text, int64_t *dims, int max_rank)
{
    int rank = 0;
    const char *p = text;
    if (!*p)
        return -1;
    while (*p) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 0 || rank == max_rank)
            return -1;
        dims[rank++] = v;
        if (*end == 'x' || *end == 'X' || *end == ',')
            end++;
        else if (*end)
            return -1;
        p = end;
    }
    return rank;
}

void cli_json_string(FILE *fp, const char *s)
{
    fputc('"', fp);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(fp, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(fp, "\\u%04x", *s);
        else
            fputc(*s, fp);
    }
    fputc('"', fp);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double cli_median(double *values, int n)
{
    if (n <= 0)
        return 0;
    qsort(values, (size_t)n, sizeof *values, cmp_double);
    return values[n / 2];
}
