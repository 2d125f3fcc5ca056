/* Concatenations and slices without copies.
 *
 * When every axis before the one concatenated or sliced has length 1 (batch
 * 1 in NCHW, concatenating or slicing channels), each input of a Concat is
 * one contiguous block of its output, and each output of a Slice (step 1)
 * or Split is one contiguous block of its input. So:
 *  - a Slice or Split whose outputs are such blocks makes each output a
 *    view of its input (PLAN_ALIAS at an alias_offset): a view step, which
 *    no backend runs;
 *  - a Concat whose inputs are each a value of the arena of its own, or a
 *    run of consecutive views that together cover one (as a Split leaves
 *    them, YOLO's C2f blocks), gets those values placed in its output:
 *    each producer writes its block in place, and the Concat step goes.
 * A block starts on a PLAN_ARENA_ALIGN-byte boundary, as any arena value
 * does (else the op is left as it is). Liveness is per root, so the whole
 * output is live from the first block's producer on. Values that are (or
 * are seen through views as) model outputs, inputs or constants are left
 * alone, as are bounded and run-time-shaped ones. The environment variable
 * FACEGRAPH_CONCAT_IN_PLACE=0 turns both off. */
#include "ops/tensor_params.h"
#include "plan/plan_internal.h"

#include <stdlib.h>
#include <string.h>

/* 1 when a model output is value `root` or a view of its bytes. */
static int seen_as_output(const plan *p, int root)
{
    for (int i = 0; i < p->n_outputs; i++)
        if (plan_value_root(p, p->outputs[i]) == root)
            return 1;
    return 0;
}

/* A static arena value (through any views) that may be viewed in place. */
static int plain_root(const plan *p, int id, const int *producer)
{
    if (id < 0)
        return 0;
    const int r = plan_value_root(p, id);
    const plan_value *v = &p->values[r];
    if (v->kind != PLAN_ARENA || v->bounded || seen_as_output(p, r))
        return 0;
    const int s = producer[r];
    return s < 0 || (!p->steps[s].dynamic && !p->steps[s].control);
}

/* Slice / Split: *offset (bytes into the input) of output k when it is one
 * contiguous block of its input; 0 otherwise. */
static int block_of_output(const plan *p, const plan_step *s, int k, int64_t *offset)
{
    const fg_tensor *in = &p->values[s->in[0]].t, *out = &p->values[s->out[k]].t;
    const size_t esize = fg_dtype_size(in->dtype);
    if (in->rank != out->rank || in->rank < 1 || esize == 0)
        return 0;
    int64_t start[FG_MAX_RANK] = {0};
    if (!strcmp(s->node->op_type, "Slice")) {
        slice_params sp;
        fg_status *st = slice_params_get(&s->call, &sp);
        if (st) {
            fg_status_free(st);
            return 0;
        }
        for (int d = 0; d < in->rank; d++) {
            if (sp.count[d] != out->dims[d] || (sp.count[d] > 1 && sp.step[d] != 1))
                return 0;
            start[d] = sp.start[d];
        }
    } else { /* Split: the outputs follow each other along the one axis where they differ from the input */
        int axis = -1;
        for (int d = 0; d < in->rank; d++)
            if (out->dims[d] != in->dims[d])
                axis = d;
        if (axis < 0)
            axis = 0;
        for (int q = 0; q < k; q++)
            start[axis] += p->values[s->out[q]].t.dims[axis];
    }
    /* contiguous: whole along every axis after the first partial one, one element along those before */
    int first = -1;
    for (int d = 0; d < in->rank && first < 0; d++)
        if (out->dims[d] != in->dims[d])
            first = d;
    if (first < 0)
        first = in->rank - 1;
    if (fg_shape_numel(first, out->dims) != 1)
        return 0;
    int64_t elements = 0, stride = 1;
    for (int d = in->rank - 1; d >= 0; d--) {
        elements += start[d] * stride;
        stride *= in->dims[d];
    }
    *offset = elements * (int64_t)esize;
    return 1;
}

/* Slice and Split steps whose outputs are contiguous blocks of their input become views. */
static void slices_as_views(plan *p, const char *removed, const int *producer)
{
    for (int i = 0; i < p->n_steps; i++) {
        const plan_step *s = &p->steps[i];
        const char *t = s->node->op_type;
        if (removed[i] || s->dynamic || s->control || (strcmp(t, "Slice") && strcmp(t, "Split")) ||
            (s->node->domain && s->node->domain[0]) || s->n_in < 1 || !plain_root(p, s->in[0], producer))
            continue;
        int64_t offsets[256];
        int ok = s->n_out <= 256;
        for (int k = 0; k < s->n_out && ok; k++) {
            const int o = s->out[k];
            ok = o >= 0 && p->values[o].kind == PLAN_ARENA && !p->values[o].bounded && !seen_as_output(p, o) &&
                 block_of_output(p, s, k, &offsets[k]) &&
                 (plan_value_offset(p, s->in[0]) + offsets[k]) % PLAN_ARENA_ALIGN == 0;
        }
        if (!ok)
            continue;
        for (int k = 0; k < s->n_out; k++) {
            plan_value *v = &p->values[s->out[k]];
            v->kind = PLAN_ALIAS;
            v->alias_of = s->in[0];
            v->alias_offset = offsets[k];
        }
    }
}

/* The arena value whose bytes inputs in[from..] start with, when input
 * `from` (and the next *used - 1 ones, consecutive blocks of the same value)
 * cover exactly that value; -1 otherwise. */
static int covered_root(const plan *p, const int *in, int from, int n_in, int *used)
{
    const int r = plan_value_root(p, in[from]);
    const size_t r_bytes = fg_tensor_nbytes(&p->values[r].t);
    int64_t next = 0;
    int k = from;
    for (; k < n_in && (size_t)next < r_bytes; k++) {
        if (in[k] < 0 || plan_value_root(p, in[k]) != r || plan_value_offset(p, in[k]) != next)
            break;
        next += (int64_t)fg_tensor_nbytes(&p->values[in[k]].t);
    }
    *used = k - from;
    return *used > 0 && (size_t)next == r_bytes ? r : -1;
}

/* Concat steps whose inputs can all be written in place in the output. */
static void concats_in_place(plan *p, char *removed, const int *producer)
{
    for (int i = 0; i < p->n_steps; i++) {
        const plan_step *s = &p->steps[i];
        if (removed[i] || s->dynamic || s->control || strcmp(s->node->op_type, "Concat") ||
            (s->node->domain && s->node->domain[0]) || s->n_out != 1 || s->out[0] < 0 || s->n_in < 1 ||
            s->n_in > 256)
            continue;
        const int o = s->out[0];
        const plan_value *ov = &p->values[o];
        if (ov->kind != PLAN_ARENA || ov->bounded || ov->t.rank < 1)
            continue;
        int axis = (int)ir_attr_int(s->node, "axis", 0);
        if (axis < 0)
            axis += ov->t.rank;
        if (axis < 0 || axis >= ov->t.rank || fg_shape_numel(axis, ov->t.dims) != 1)
            continue;
        int roots[256], n_roots = 0, ok = 1;
        int64_t at[256], offset = 0;
        for (int k = 0; k < s->n_in && ok;) {
            int used = 0;
            const int r = plain_root(p, s->in[k], producer) ? covered_root(p, s->in, k, s->n_in, &used) : -1;
            ok = r >= 0 && r != o && offset % PLAN_ARENA_ALIGN == 0 && fg_tensor_nbytes(&p->values[r].t) > 0;
            for (int q = 0; q < n_roots && ok; q++)
                ok = roots[q] != r;
            if (!ok)
                break;
            roots[n_roots] = r;
            at[n_roots++] = offset;
            offset += (int64_t)fg_tensor_nbytes(&p->values[r].t);
            k += used;
        }
        if (!ok || (size_t)offset != fg_tensor_nbytes(&ov->t))
            continue;
        for (int q = 0; q < n_roots; q++) {
            plan_value *v = &p->values[roots[q]];
            v->kind = PLAN_ALIAS;
            v->alias_of = o;
            v->alias_offset = at[q];
        }
        removed[i] = 1;
        p->n_concats_in_place++;
    }
}

fg_status *place_slices_and_concats(plan *p, char *removed)
{
    const char *env = getenv("FACEGRAPH_CONCAT_IN_PLACE");
    if (env && strcmp(env, "0") == 0)
        return NULL;
    plan_readers r;
    FG_TRY(plan_readers_count(p, removed, &r));
    slices_as_views(p, removed, r.producer);
    concats_in_place(p, removed, r.producer);
    plan_readers_free(&r);
    return NULL;
}
