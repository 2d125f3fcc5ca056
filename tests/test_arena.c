/* The arena layout's sharing rule (src/plan/plan.c, layout_arena).
 *
 * usage: test_arena MODEL.onnx ...   (models with one [1, 3, H, W] float input, planned at 640x640)
 *
 * For each model, plans made with branches (as for the CUDA backend, which
 * may run independent steps side by side) must never give two arena values
 * overlapping bytes unless every step touching the one used first comes,
 * through the steps' data, before every step writing the other. The
 * reference: a breadth-first search over "step j writes a root value that
 * step i reads" edges, computed here from the plan's steps. Plans made
 * without branches (the CPU) share by step ranges alone, which is only
 * checked for overlapping lifetimes. Every model must plan the same step
 * count either way. Prints "N passed, M failed". */
#include "onnx/ir.h"
#include "plan/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;

/* reach[i * n + j]: step i depends, through the data, on step j (j before i). */
static char *dependencies(const plan *p)
{
    const int n = p->n_steps;
    char *reach = calloc((size_t)n * n + 1, 1);
    if (!reach)
        return NULL;
    for (int i = 0; i < n; i++) {
        const plan_step *s = &p->steps[i];
        for (int j = 0; j < i; j++) {
            const plan_step *w = &p->steps[j];
            int direct = 0;
            for (int a = 0; a < s->n_in && !direct; a++)
                for (int b = 0; b < w->n_out && !direct; b++)
                    direct = s->in[a] >= 0 && w->out[b] >= 0 &&
                             plan_value_root(p, s->in[a]) == plan_value_root(p, w->out[b]);
            if (direct) {
                reach[(size_t)i * n + j] = 1;
                for (int k = 0; k < j; k++)
                    reach[(size_t)i * n + k] |= reach[(size_t)j * n + k];
            }
        }
    }
    return reach;
}

static int touches(const plan *p, int step, int root, int write_only)
{
    const plan_step *s = &p->steps[step];
    for (int b = 0; b < s->n_out; b++)
        if (s->out[b] >= 0 && plan_value_root(p, s->out[b]) == root)
            return 1;
    for (int a = 0; a < s->n_in && !write_only; a++)
        if (s->in[a] >= 0 && plan_value_root(p, s->in[a]) == root)
            return 1;
    return 0;
}

/* 1 when every step touching value a comes (through the data) before every step writing b. */
static int ordered(const plan *p, const char *reach, int a, int b)
{
    const int n = p->n_steps;
    for (int w = 0; w < n; w++) {
        if (!touches(p, w, b, 1))
            continue;
        for (int t = 0; t < n; t++)
            if (touches(p, t, a, 0) && !reach[(size_t)w * n + t])
                return 0;
    }
    return 1;
}

/* The count of overlapping pairs that break the rule (lifetimes overlapping, or with branches unordered). */
static int violations(const plan *p, int branches, int *shared)
{
    char *reach = dependencies(p);
    int bad = 0;
    *shared = 0;
    for (int a = 0; a < p->n_values; a++) {
        const plan_value *va = &p->values[a];
        if (va->kind != PLAN_ARENA || va->first_step < 0)
            continue;
        for (int b = a + 1; b < p->n_values; b++) {
            const plan_value *vb = &p->values[b];
            if (vb->kind != PLAN_ARENA || vb->first_step < 0 || va->offset >= vb->offset + (int64_t)vb->bytes ||
                vb->offset >= va->offset + (int64_t)va->bytes)
                continue;
            (*shared)++;
            const int a_first = va->last_step < vb->first_step, b_first = vb->last_step < va->first_step;
            if (!a_first && !b_first)
                bad++;
            else if (branches && reach && !(a_first ? ordered(p, reach, a, b) : ordered(p, reach, b, a)))
                bad++;
        }
    }
    free(reach);
    return bad;
}

int main(int argc, char **argv)
{
    for (int m = 1; m < argc; m++) {
        ir_model *model;
        fg_status *st = ir_model_load(argv[m], &model);
        if (st) {
            printf("FAIL %s: %s\n", argv[m], fg_status_message(st));
            fg_status_free(st);
            failed++;
            continue;
        }
        fg_tensor in;
        memset(&in, 0, sizeof in);
        in.dtype = FG_FLOAT32;
        in.rank = 4;
        in.dims[0] = 1;
        in.dims[1] = 3;
        in.dims[2] = in.dims[3] = 640;
        int steps[2] = {0, 0};
        for (int branches = 0; branches < 2; branches++) {
            plan *p;
            st = plan_for_signature(model, &in, 1, 1, branches, &p);
            if (st) {
                printf("FAIL %s (branches %d): %s\n", argv[m], branches, fg_status_message(st));
                fg_status_free(st);
                failed++;
                continue;
            }
            int shared;
            const int bad = violations(p, branches, &shared);
            steps[branches] = p->n_steps;
            printf("%s %s (branches %d): %d steps, arena %.2f MB, %d overlapping pairs, %d against the rule\n",
                   bad ? "FAIL" : "ok  ", argv[m], branches, p->n_steps, p->arena_bytes / 1e6, shared, bad);
            bad ? failed++ : passed++;
            plan_free(p);
        }
        if (steps[0] != steps[1]) {
            printf("FAIL %s: %d steps without branches, %d with\n", argv[m], steps[0], steps[1]);
            failed++;
        }
        ir_model_free(model);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
