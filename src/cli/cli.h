/* The facegraph command: one function per subcommand, plus the parsing of
 * options every subcommand shares (FaceFusion's execution vocabulary). */
#ifndef FACEGRAPH_CLI_H
#define FACEGRAPH_CLI_H

#include "facegraph/facegraph.h"

#include <stdio.h>

#define CLI_MAX_PROVIDERS 8

typedef struct cli_exec_options {
    const char *providers[CLI_MAX_PROVIDERS]; /* --execution-providers cuda cpu */
    int n_providers;
    int device_id;    /* --execution-device-id N */
    int thread_count; /* --execution-thread-count N */
    fg_cuda_graph_mode cuda_graph;               /* --cuda-graph auto|on|off */
    const char *graph_exclude[CLI_MAX_PROVIDERS * 4]; /* --cuda-graph-exclude MODEL ... */
    int n_graph_exclude;
    int allow_tf32;                              /* --cuda-tf32 on|off */
    int precision_fp16;                          /* --execution-precision fp32|fp16 */
} cli_exec_options;

void cli_exec_options_init(cli_exec_options *options);
/* If argv[*i] is an execution option, consumes it (and its values, advancing
 * *i to the last one used) and returns 1; returns -1 after printing an error
 * for a malformed value; 0 if argv[*i] is not an execution option. */
int cli_parse_exec_option(int argc, char **argv, int *i, cli_exec_options *options);
fg_status *cli_engine_create(const cli_exec_options *options, fg_engine **engine);

/* Prints "facegraph COMMAND: error: MESSAGE" to stderr, frees the status and
 * returns the exit code to use: 3 when something is valid but not supported
 * (an op, a provider, a model the GPU cannot plan), else 1. */
int cli_fail(const char *command, fg_status *status);
/* Prints a usage error and returns 2. */
int cli_usage_error(const char *command, const char *fmt, ...);

/* Writes s as a JSON string literal. */
void cli_json_string(FILE *fp, const char *s);
/* Sorts values and returns the median (0 for none). */
double cli_median(double *values, int n);

/* Parses "1x3x640x640" into dims; returns rank or -1. */
int cli_parse_shape(const char *text, int64_t *dims, int max_rank);

int cli_inspect(int argc, char **argv);
int cli_infer(int argc, char **argv);
int cli_detect(int argc, char **argv);
int cli_models(int argc, char **argv);

#endif
