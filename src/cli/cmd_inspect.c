/* facegraph inspect MODEL [--shape NAME=1x3x640x640 ...] [--json] */
#include "cli/cli.h"

#include "runtime/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct op_count {
    const char *op;
    int count;
} op_count;

static int by_count(const void *a, const void *b)
{
    const op_count *x = a, *y = b;
    return x->count != y->count ? y->count - x->count : strcmp(x->op, y->op);
}

static void print_dims(FILE *fp, const fg_value_info *v, int json)
{
    fputc('[', fp);
    for (int d = 0; d < v->rank; d++) {
        if (d)
            fputs(json ? ", " : "x", fp);
        if (v->dims[d] >= 0)
            fprintf(fp, "%lld", (long long)v->dims[d]);
        else if (v->dim_names[d])
            fprintf(fp, json ? "\"%s\"" : "%s", v->dim_names[d]);
        else
            fputs(json ? "null" : "?", fp);
    }
    fputc(']', fp);
}

int cli_inspect(int argc, char **argv)
{
    const char *cmd = "inspect";
    const char *model_path = NULL;
    const char *shape_args[32];
    int n_shapes = 0, json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: facegraph inspect MODEL [--shape NAME=1x3x640x640 ...] [--json]\n"
                   "Shows inputs and outputs (dynamic dims named), opset, IR version, producer, node count,\n"
                   "op histogram, parameter count and bytes, and FLOPs for the given or declared shapes.\n");
            return 0;
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "--shape") && i + 1 < argc && n_shapes < 32) {
            shape_args[n_shapes++] = argv[++i];
        } else if (argv[i][0] != '-' && !model_path) {
            model_path = argv[i];
        } else {
            return cli_usage_error(cmd, "unexpected argument '%s'", argv[i]);
        }
    }
    if (!model_path)
        return cli_usage_error(cmd, "needs a MODEL path");
    fg_engine *engine = NULL;
    fg_session *session = NULL;
    fg_engine_options eo = {0};
    eo.thread_count = 1;
    fg_status *st = fg_engine_create(&eo, &engine);
    if (!st)
        st = fg_session_open(engine, model_path, &session);
    if (st) {
        fg_engine_destroy(engine);
        return cli_fail(cmd, st);
    }
    const ir_model *m = session_model(session);
    const ir_graph *g = m->graph;
    int n_in = fg_session_input_count(session);

    /* shapes: declared, overridden by --shape */
    fg_tensor sig[64];
    memset(sig, 0, sizeof sig);
    int shapes_known = n_in <= 64;
    for (int k = 0; k < n_in && k < 64; k++) {
        const fg_value_info *v = fg_session_input(session, k);
        sig[k].dtype = v->dtype;
        sig[k].rank = v->rank;
        memcpy(sig[k].dims, v->dims, sizeof v->dims);
    }
    for (int a = 0; a < n_shapes; a++) {
        const char *eq = strchr(shape_args[a], '=');
        char name[256];
        if (!eq) {
            fg_session_close(session);
            fg_engine_destroy(engine);
            return cli_usage_error(cmd, "--shape wants NAME=DIMS, e.g. input=1x3x640x640");
        }
        snprintf(name, sizeof name, "%.*s", (int)(eq - shape_args[a]), shape_args[a]);
        int k = fg_session_input_index(session, name);
        int rank = k >= 0 ? cli_parse_shape(eq + 1, sig[k].dims, FG_MAX_RANK) : -1;
        if (k < 0 || rank < 0) {
            fg_session_close(session);
            fg_engine_destroy(engine);
            return cli_usage_error(cmd, k < 0 ? "the model has no input '%s'" : "bad dims in --shape %s",
                                   k < 0 ? name : shape_args[a]);
        }
        sig[k].rank = rank;
    }
    for (int k = 0; k < n_in && k < 64; k++)
        for (int d = 0; d < sig[k].rank; d++)
            shapes_known &= sig[k].dims[d] >= 0;

    /* op histogram */
    op_count *hist = calloc((size_t)g->n_nodes + 1, sizeof *hist);
    int n_hist = 0;
    for (int i = 0; hist && i < g->n_nodes; i++) {
        int k = 0;
        while (k < n_hist && strcmp(hist[k].op, g->nodes[i].op_type))
            k++;
        if (k == n_hist)
            hist[n_hist++].op = g->nodes[i].op_type;
        hist[k].count++;
    }
    if (hist)
        qsort(hist, (size_t)n_hist, sizeof *hist, by_count);
    int64_t params = 0;
    size_t param_bytes = 0;
    for (int i = 0; i < g->n_values; i++) {
        const ir_tensor *t = g->values[i].initializer;
        if (t) {
            params += fg_shape_numel(t->rank, t->dims);
            param_bytes += t->nbytes;
        }
    }
    double flops = -1;
    int dynamic_steps = 0, view_steps = 0;
    plan *p = NULL;
    fg_status *plan_st = NULL;
    if (shapes_known) {
        session_plan *sp = NULL;
        plan_st = session_plan_for(session, sig, n_in, &sp);
        if (!plan_st) {
            p = sp->plan;
            flops = 0;
            for (int i = 0; i < p->n_steps; i++) {
                flops += plan_step_flops(p, &p->steps[i]);
                dynamic_steps += p->steps[i].dynamic;
                view_steps += !p->steps[i].dynamic && plan_step_is_view(p, &p->steps[i]);
            }
        }
    }
    FILE *o = stdout;
    if (json) {
        fprintf(o, "{\n  \"model\": \"%s\",\n  \"sha256\": \"%s\",\n  \"ir_version\": %lld,\n  \"opset\": %lld,\n",
                model_path, fg_session_sha256(session), (long long)m->ir_version, (long long)m->opset);
        fprintf(o, "  \"producer\": \"%s %s\",\n  \"nodes\": %d,\n", m->producer_name ? m->producer_name : "",
                m->producer_version ? m->producer_version : "", g->n_nodes);
        for (int io = 0; io < 2; io++) {
            int n = io ? fg_session_output_count(session) : n_in;
            fprintf(o, "  \"%s\": [", io ? "outputs" : "inputs");
            for (int k = 0; k < n; k++) {
                const fg_value_info *v = io ? fg_session_output(session, k) : fg_session_input(session, k);
                fprintf(o, "%s\n    {\"name\": \"%s\", \"dtype\": \"%s\", \"shape\": ", k ? "," : "", v->name,
                        fg_dtype_name(v->dtype));
                print_dims(o, v, 1);
                fputc('}', o);
            }
            fprintf(o, "\n  ],\n");
        }
        fprintf(o, "  \"ops\": {");
        for (int k = 0; k < n_hist; k++)
            fprintf(o, "%s\"%s\": %d", k ? ", " : "", hist[k].op, hist[k].count);
        fprintf(o, "},\n  \"parameters\": %lld,\n  \"parameter_bytes\": %zu,\n", (long long)params, param_bytes);
        if (flops >= 0)
            fprintf(o, "  \"flops\": %.0f,\n  \"plan\": {\"steps\": %d, \"arena_bytes\": %zu, \"folded\": %d, "
                       "\"fused_batchnorm\": %d, \"fused_scale\": %d, \"fused_activation\": %d, \"fused_residual\": %d, "
                       "\"fused_instance_norm\": %d, \"merged_convs\": %d, \"merged_transposes\": %d, \"folded_pools\": %d, \"concats_in_place\": %d, \"views\": %d, \"run_time_shape_steps\": %d}\n}\n",
                    flops, p->n_steps, p->arena_bytes, p->n_folded, p->n_fused_bn, p->n_fused_scale, p->n_fused_act,
                    p->n_fused_residual, p->n_fused_norm, p->n_merged_convs, p->n_merged_transposes, p->n_folded_pools, p->n_concats_in_place,
                    view_steps, dynamic_steps);
        else
            fprintf(o, "  \"flops\": null\n}\n");
    } else {
        fprintf(o, "model      %s\nsha256     %s\nir         %lld, opset %lld, producer %s %s\nnodes      %d\n",
                model_path, fg_session_sha256(session), (long long)m->ir_version, (long long)m->opset,
                m->producer_name ? m->producer_name : "", m->producer_version ? m->producer_version : "",
                g->n_nodes);
        for (int io = 0; io < 2; io++) {
            int n = io ? fg_session_output_count(session) : n_in;
            for (int k = 0; k < n; k++) {
                const fg_value_info *v = io ? fg_session_output(session, k) : fg_session_input(session, k);
                fprintf(o, "%-10s %s %s ", k ? "" : (io ? "outputs" : "inputs"), v->name, fg_dtype_name(v->dtype));
                print_dims(o, v, 0);
                fputc('\n', o);
            }
        }
        fprintf(o, "parameters %lld (%.2f MB)\n", (long long)params, param_bytes / 1e6);
        if (flops >= 0)
            fprintf(o, "flops      %.3f G (plan: %d steps, %.2f MB arena, %d folded, %d BN and %d scales folded, %d activations, "
                       "%d residual adds and %d instance norms fused, %d sibling convolutions merged, %d transposes merged, %d pools folded, %d concatenations in place, %d views, %d with "
                       "run-time shapes)\n",
                    flops / 1e9, p->n_steps, p->arena_bytes / 1e6, p->n_folded, p->n_fused_bn, p->n_fused_scale, p->n_fused_act,
                    p->n_fused_residual, p->n_fused_norm, p->n_merged_convs, p->n_merged_transposes, p->n_folded_pools, p->n_concats_in_place,
                    view_steps, dynamic_steps);
        else if (plan_st)
            fprintf(o, "flops      unknown: %s\n", fg_status_message(plan_st));
        else
            fprintf(o, "flops      unknown: give dynamic dims with --shape NAME=DIMS\n");
        fprintf(o, "ops       ");
        for (int k = 0; k < n_hist; k++)
            fprintf(o, " %s:%d", hist[k].op, hist[k].count);
        fputc('\n', o);
    }
    int rc = 0;
    if (plan_st && json)
        fprintf(stderr, "facegraph inspect: note: could not plan: %s\n", fg_status_message(plan_st));
    fg_status_free(plan_st);
    free(hist);
    fg_session_close(session);
    fg_engine_destroy(engine);
    return rc;
}
