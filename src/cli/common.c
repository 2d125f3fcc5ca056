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
    fg_engine_options eo = {o->providers, o->n_providers, o->device_id, o->thread_count};
    return fg_engine_create(&eo, engine);
}

int cli_fail(const char *command, fg_status *status)
{
    fprintf(stderr, "facegraph %s: error: %s\n", command, fg_status_message(status));
    fg_status_free(status);
    return 1;
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
