/* Runs one model many times through ONE session on changing inputs, so that a
 * CUDA graph captured on one call is replayed on inputs that change
 * data-dependent sizes. Driven by tests/graph_regression_test.py:
 *
 *   test_gpu_graph_replay MODEL CALLS OUT_DIR [--providers cuda,cpu]
 *                         [--graph auto|on|off] [--device N]
 *
 * CALLS is a text file, one input per line:
 *   CALL NAME DTYPE RANK DIM... FILE      (DTYPE: ONNX code; FILE: raw bytes)
 * Lines of one call are consecutive and calls are numbered 0, 1, ...
 * Writes OUT_DIR/result.txt:
 *   output CALL INDEX DTYPE RANK DIM... FILE
 *   report CALL PROVIDER CAPTURED KERNELS PLANS REASON...
 * and the raw output bytes in OUT_DIR/c<CALL>_o<INDEX>.bin.
 *
 * Prints "skipped: no GPU" and exits 0 when the cuda provider is asked for
 * but absent (or with no arguments on a machine without it); prints
 * "unsupported: MESSAGE" and exits 3 when facegraph refuses the model (or
 * the graph under --graph on); exits 1 on any other error. */
#include <facegraph/facegraph.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_IO 64
#define MAX_LINE 8192

typedef struct call_input {
    int call;
    char name[256];
    fg_tensor tensor;
} call_input;

static int read_file(const char *path, void *data, size_t bytes)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return 0;
    size_t got = bytes ? fread(data, 1, bytes, fp) : 0;
    fclose(fp);
    return got == bytes;
}

static int write_file(const char *path, const void *data, size_t bytes)
{
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return 0;
    size_t put = bytes ? fwrite(data, 1, bytes, fp) : 0;
    return (fclose(fp) == 0) & (put == bytes);
}

/* Parses the CALLS file; returns the number of input lines or -1. */
static int load_calls(const char *path, call_input **out)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        fprintf(stderr, "error: cannot open %s\n", path);
        return -1;
    }
    int n = 0, cap = 0;
    call_input *list = NULL;
    char line[MAX_LINE];
    while (fgets(line, sizeof line, fp)) {
        if (line[0] == '\n' || line[0] == '#')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            call_input *grown = realloc(list, (size_t)cap * sizeof *list);
            if (!grown)
                goto bad;
            list = grown;
        }
        call_input *ci = &list[n];
        memset(ci, 0, sizeof *ci);
        char *save = NULL, *tok = strtok_r(line, " \t\n", &save);
        int dtype = 0;
        if (!tok || sscanf(tok, "%d", &ci->call) != 1)
            goto bad;
        tok = strtok_r(NULL, " \t\n", &save);
        if (!tok || strlen(tok) >= sizeof ci->name)
            goto bad;
        strcpy(ci->name, tok);
        tok = strtok_r(NULL, " \t\n", &save);
        if (!tok || sscanf(tok, "%d", &dtype) != 1)
            goto bad;
        ci->tensor.dtype = (fg_dtype)dtype;
        tok = strtok_r(NULL, " \t\n", &save);
        if (!tok || sscanf(tok, "%d", &ci->tensor.rank) != 1 || ci->tensor.rank < 0 || ci->tensor.rank > FG_MAX_RANK)
            goto bad;
        for (int d = 0; d < ci->tensor.rank; d++) {
            tok = strtok_r(NULL, " \t\n", &save);
            long long v;
            if (!tok || sscanf(tok, "%lld", &v) != 1 || v < 0)
                goto bad;
            ci->tensor.dims[d] = v;
        }
        tok = strtok_r(NULL, " \t\n", &save);
        if (!tok)
            goto bad;
        size_t bytes = fg_tensor_nbytes(&ci->tensor);
        ci->tensor.data = malloc(bytes ? bytes : 1);
        ci->tensor.location = FG_HOST;
        if (!ci->tensor.data || !read_file(tok, ci->tensor.data, bytes)) {
            fprintf(stderr, "error: cannot read %zu bytes from %s\n", bytes, tok);
            free(ci->tensor.data);
            fclose(fp);
            *out = list;
            return -(n + 2);
        }
        n++;
    }
    fclose(fp);
    *out = list;
    return n;
bad:
    fprintf(stderr, "error: malformed line %d in %s\n", n + 1, path);
    fclose(fp);
    *out = list;
    return -(n + 2);
}

static int has_provider(const char *list, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += len)
        if ((p == list || p[-1] == ',' || p[-1] == ' ') && (p[len] == 0 || p[len] == ',' || p[len] == ' '))
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    const char *providers_arg = "cpu", *graph = "auto";
    int device = 0;
    const char *positional[3];
    int n_pos = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--providers") && i + 1 < argc)
            providers_arg = argv[++i];
        else if (!strcmp(argv[i], "--graph") && i + 1 < argc)
            graph = argv[++i];
        else if (!strcmp(argv[i], "--device") && i + 1 < argc)
            device = atoi(argv[++i]);
        else if (n_pos < 3 && argv[i][0] != '-')
            positional[n_pos++] = argv[i];
        else {
            fprintf(stderr, "error: unexpected argument '%s'\n", argv[i]);
            return 1;
        }
    }
    int wants_cuda = has_provider(providers_arg, "cuda");
    if (n_pos == 0) {
        /* run as a plain test program: nothing to do without a driver */
        int usable = 0;
        if (has_provider(fg_available_providers(), "cuda")) {
            const char *cuda_only[] = {"cuda"};
            fg_engine_options probe;
            memset(&probe, 0, sizeof probe);
            probe.providers = cuda_only;
            probe.n_providers = 1;
            fg_engine *engine = NULL;
            fg_status *st = fg_engine_create(&probe, &engine);
            usable = st == NULL;
            fg_status_free(st);
            fg_engine_destroy(engine);
        }
        if (!usable)
            printf("skipped: no GPU\n");
        else
            printf("usage: test_gpu_graph_replay MODEL CALLS OUT_DIR [--providers cuda,cpu] [--graph auto|on|off] "
                   "(driven by tests/graph_regression_test.py)\n");
        return 0;
    }
    if (n_pos != 3) {
        fprintf(stderr, "error: needs MODEL CALLS OUT_DIR\n");
        return 1;
    }
    if (wants_cuda && !has_provider(fg_available_providers(), "cuda")) {
        printf("skipped: no GPU (this build has providers %s)\n", fg_available_providers());
        return 0;
    }

    char providers_buf[256];
    snprintf(providers_buf, sizeof providers_buf, "%s", providers_arg);
    const char *providers[8];
    int n_providers = 0;
    for (char *save = NULL, *tok = strtok_r(providers_buf, ",", &save); tok && n_providers < 8;
         tok = strtok_r(NULL, ",", &save))
        providers[n_providers++] = tok;

    fg_engine_options options;
    memset(&options, 0, sizeof options);
    options.providers = providers;
    options.n_providers = n_providers;
    options.device_id = device;
    options.thread_count = 2;
    options.cuda_graph = !strcmp(graph, "on") ? FG_CUDA_GRAPH_ON : !strcmp(graph, "off") ? FG_CUDA_GRAPH_OFF
                                                                                           : FG_CUDA_GRAPH_AUTO;
    fg_engine *engine = NULL;
    fg_session *session = NULL;
    fg_status *st = fg_engine_create(&options, &engine);
    if (st) {
        fg_code code = fg_status_code(st);
        if (wants_cuda && (code == FG_ERR_DEVICE || code == FG_ERR_NOT_FOUND || code == FG_ERR_UNSUPPORTED)) {
            printf("skipped: no GPU (%s)\n", fg_status_message(st));
            fg_status_free(st);
            return 0;
        }
        fprintf(stderr, "error: creating the engine: %s\n", fg_status_message(st));
        fg_status_free(st);
        return 1;
    }
    int rc = 1;
    call_input *list = NULL;
    FILE *result = NULL;
    int n_lines = load_calls(positional[1], &list);
    if (n_lines < 0) {
        n_lines = -n_lines - 2;
        goto done;
    }
    st = fg_session_open(engine, positional[0], &session);
    if (st) {
        if (fg_status_code(st) == FG_ERR_UNSUPPORTED) {
            printf("unsupported: %s\n", fg_status_message(st));
            rc = 3;
        } else {
            fprintf(stderr, "error: opening the model: %s\n", fg_status_message(st));
        }
        goto done;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/result.txt", positional[2]);
    result = fopen(path, "w");
    if (!result) {
        fprintf(stderr, "error: cannot write %s (does the directory exist?)\n", path);
        goto done;
    }
    int n_in = fg_session_input_count(session), n_out = fg_session_output_count(session);
    if (n_in > MAX_IO || n_out > MAX_IO) {
        fprintf(stderr, "error: too many inputs or outputs\n");
        goto done;
    }
    for (int first = 0; first < n_lines;) {
        int call = list[first].call, end = first;
        fg_tensor inputs[MAX_IO], outputs[MAX_IO];
        memset(inputs, 0, sizeof inputs);
        memset(outputs, 0, sizeof outputs);
        for (; end < n_lines && list[end].call == call; end++) {
            int index = fg_session_input_index(session, list[end].name);
            if (index < 0) {
                fprintf(stderr, "error: call %d: the model has no input '%s'\n", call, list[end].name);
                goto done;
            }
            inputs[index] = list[end].tensor;
        }
        for (int k = 0; k < n_in; k++)
            if (!inputs[k].data) {
                fprintf(stderr, "error: call %d: input '%s' missing\n", call, fg_session_input(session, k)->name);
                goto done;
            }
        st = fg_session_run(session, inputs, n_in, outputs, n_out);
        if (st) {
            if (fg_status_code(st) == FG_ERR_UNSUPPORTED) {
                printf("unsupported: call %d: %s\n", call, fg_status_message(st));
                rc = 3;
            } else {
                fprintf(stderr, "error: call %d: %s\n", call, fg_status_message(st));
            }
            goto done;
        }
        for (int k = 0; k < n_out; k++) {
            char file[4200];
            snprintf(file, sizeof file, "%s/c%d_o%d.bin", positional[2], call, k);
            if (outputs[k].location != FG_HOST) {
                fprintf(stderr, "error: call %d: output %d is not in host memory\n", call, k);
                goto done;
            }
            if (!write_file(file, outputs[k].data, fg_tensor_nbytes(&outputs[k]))) {
                fprintf(stderr, "error: cannot write %s\n", file);
                goto done;
            }
            fprintf(result, "output %d %d %d %d", call, k, (int)outputs[k].dtype, outputs[k].rank);
            for (int d = 0; d < outputs[k].rank; d++)
                fprintf(result, " %lld", (long long)outputs[k].dims[d]);
            fprintf(result, " %s\n", file);
        }
        fg_execution_report report;
        st = fg_session_execution_report(session, &report);
        if (st) {
            fprintf(stderr, "error: call %d: execution report: %s\n", call, fg_status_message(st));
            goto done;
        }
        for (char *c = report.graph_reason; *c; c++)
            if (*c == '\n' || *c == '\r')
                *c = ' ';
        fprintf(result, "report %d %s %d %d %d %s\n", call, report.provider[0] ? report.provider : "?",
                report.graph_captured, report.kernels_per_run, report.plans, report.graph_reason);
        first = end;
    }
    if (fg_session_warning(session)[0])
        fprintf(result, "warning %s\n", fg_session_warning(session));
    rc = 0;
done:
    if (st)
        fg_status_free(st);
    if (result && fclose(result) != 0 && rc == 0) {
        fprintf(stderr, "error: writing result.txt failed\n");
        rc = 1;
    }
    for (int i = 0; i < n_lines; i++)
        free(list[i].tensor.data);
    free(list);
    fg_session_close(session);
    fg_engine_destroy(engine);
    return rc;
}
