/* FusedElementwise: a chain of float32 element-wise ops in one pass over the
 * data (see elementwise_chain.h). Each instruction uses the same float math
 * as the stand-alone CPU kernel it replaces (src/ops/elementwise.c), so a
 * fused chain gives the bits the unfused steps give.
 *
 * The output is computed in blocks of EWC_BLOCK elements: the chain input is
 * copied into the output block, then every instruction updates the block in
 * place with a tight loop (vectorisable), reading broadcast operands through
 * a small gather into a stack buffer. */
#include "ops/elementwise_chain.h"
#include "ops/channels_last.h"
#include "ops/conv_dwpw.h"
#include "ops/fast_math.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

#define EWC_BLOCK 1024
#define EWC_PARALLEL_MIN 32768 /* as the stand-alone element-wise kernels */

/* ---------------------------------------------------------------- program */
int ewc_op_is_unary(int op)
{
    switch (op) {
    case EW_NEG: case EW_ABS: case EW_EXP: case EW_LOG: case EW_SQRT: case EW_RECIPROCAL: case EW_ERF:
    case EW_TANH: case EW_SIGMOID: case EW_RELU: case EW_LEAKY_RELU: case EW_FLOOR: case EW_CEIL:
    case EW_HARD_SIGMOID: case EW_HARD_SWISH: case EW_CLIP:
        return 1;
    default: return 0;
    }
}

int ewc_op_is_binary(int op)
{
    switch (op) {
    case EW_ADD: case EW_SUB: case EW_MUL: case EW_DIV: case EW_POW: case EW_MAX: case EW_MIN:
        return 1;
    default: return 0;
    }
}

int ewc_broadcast_block(const fg_tensor *input, const fg_tensor *out, int64_t *inner, int64_t *dim)
{
    if (input->rank > out->rank)
        return -1;
    const int off = out->rank - input->rank;
    int first = -1, last = -1;
    for (int d = 0; d < out->rank; d++) {
        const int64_t od = out->dims[d], id = d < off ? 1 : input->dims[d - off];
        if (id == od) {
            if (od != 1) {
                if (first < 0)
                    first = d;
                last = d;
            }
        } else if (id != 1) {
            return -1;
        }
    }
    /* inside the block every axis must match: no broadcast axis between two kept ones */
    for (int d = first; d >= 0 && d <= last; d++) {
        const int64_t id = d < off ? 1 : input->dims[d - off];
        if (id != out->dims[d])
            return -1;
    }
    int64_t in_block = 1, below = 1;
    for (int d = first; d >= 0 && d <= last; d++)
        in_block *= out->dims[d];
    for (int d = last + 1; d < out->rank && last >= 0; d++)
        below *= out->dims[d];
    *inner = below > 0 ? below : 1;
    *dim = in_block > 0 ? in_block : 1;
    return 0;
}

fg_status *ewc_decode(const op_call *call, ewc_program *pg)
{
    memset(pg, 0, sizeof *pg);
    const int64_t *ints;
    const float *floats;
    const int n_ints = ir_attr_ints(call->node, "program", &ints);
    const int n_floats = ir_attr_floats(call->node, "params", &floats);
    const int n = n_ints / EWC_INTS_PER_INSTRUCTION;
    if (n < 1 || n > EWC_MAX_INSTRUCTIONS || n_ints != n * EWC_INTS_PER_INSTRUCTION ||
        n_floats != n * EWC_FLOATS_PER_INSTRUCTION)
        return op_error(call, FG_ERR_INVALID_ARGUMENT,
                        "needs 'program' (%d ints per instruction, 1 to %d instructions) and 'params' (%d floats "
                        "per instruction)",
                        EWC_INTS_PER_INSTRUCTION, EWC_MAX_INSTRUCTIONS, EWC_FLOATS_PER_INSTRUCTION);
    if (call->n_in < 1 || call->n_in > EWC_MAX_INPUTS)
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "takes 1 to %d inputs, got %d", EWC_MAX_INPUTS, call->n_in);
    const fg_tensor *out = &call->out[0];
    pg->n = fg_tensor_numel(out);
    pg->n_inputs = call->n_in;
    for (int k = 0; k < call->n_in; k++) {
        const fg_tensor *t = &call->in[k];
        if (t->dtype != FG_FLOAT32)
            return op_error(call, FG_ERR_DTYPE, "input %d has element type %s; the fused chain computes float32",
                            k, fg_dtype_name(t->dtype));
        if (ewc_broadcast_block(t, out, &pg->inner[k], &pg->dim[k]) != 0 ||
            (k == 0 && fg_tensor_numel(t) != pg->n)) {
            char si[96], so[96];
            return op_error(call, FG_ERR_SHAPE, "input %d of shape %s does not map onto the output shape %s", k,
                            fg_shape_format(t->rank, t->dims, si, sizeof si),
                            fg_shape_format(out->rank, out->dims, so, sizeof so));
        }
    }
    pg->n_instructions = n;
    int saved = 0; /* an earlier instruction saved its value */
    for (int i = 0; i < n; i++) {
        const int64_t *w = ints + i * EWC_INTS_PER_INSTRUCTION;
        const float *f = floats + i * EWC_FLOATS_PER_INSTRUCTION;
        ewc_instruction *ins = &pg->code[i];
        ins->op = (int)w[0];
        ins->operand = (int)w[1];
        ins->input = (int)w[2];
        ins->swapped = w[3] != 0;
        ins->act.kind = (op_act_kind)w[4];
        ins->save = w[5] != 0;
        ins->scalar = f[0];
        ins->alpha = f[1];
        ins->beta = f[2];
        ins->act.alpha = f[3];
        ins->act.beta = f[4];
        int ok;
        if (ewc_op_is_unary(ins->op))
            ok = ins->operand == EWC_UNARY && !ins->swapped;
        else if (ewc_op_is_binary(ins->op))
            ok = ins->operand == EWC_SCALAR || (ins->operand == EWC_SAVED && saved) ||
                 (ins->operand == EWC_TENSOR && ins->input >= 0 && ins->input < call->n_in);
        else
            ok = 0;
        if (ins->op == EW_POW)
            ok &= ins->operand == EWC_SCALAR && !ins->swapped; /* a constant exponent */
        ok &= w[4] >= OP_ACT_NONE && w[4] <= OP_ACT_SILU;
        if (!ok)
            return op_error(call, FG_ERR_INVALID_ARGUMENT, "instruction %d (op %lld, operand %lld) is not valid", i,
                            (long long)w[0], (long long)w[1]);
        saved |= ins->save;
    }
    return NULL;
}

fg_status *ewc_infer(op_call *call)
{
    if (call->n_in < 1 || call->in[0].dtype == FG_DTYPE_UNDEFINED)
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "the chain input is missing");
    fg_tensor *out = &call->out[0];
    out->dtype = FG_FLOAT32;
    out->rank = call->in[0].rank;
    memcpy(out->dims, call->in[0].dims, sizeof(int64_t) * (size_t)call->in[0].rank);
    ewc_program pg;
    return ewc_decode(call, &pg);
}

/* ---------------------------------------------------------------- CPU kernel */
static fg_status *chain_prepare(op_call *call)
{
    ewc_program *pg = malloc(sizeof *pg);
    if (!pg)
        return op_error(call, FG_ERR_OUT_OF_MEMORY, "out of host memory preparing the fused chain");
    fg_status *st = ewc_decode(call, pg);
    if (st) {
        free(pg);
        return st;
    }
    call->state = pg;
    return NULL;
}

static void chain_release(void *state) { free(state); }

/* Same float math as row_f32_unary / row_f32_binary in elementwise.c, which
 * are compiled with the same option. */
#pragma GCC push_options
#pragma GCC optimize("no-trapping-math")

static void unary_block(const ewc_instruction *ins, float *restrict v, int64_t n)
{
    const float alpha = ins->alpha, beta = ins->beta;
#define LOOP(EXPR)                          \
    _Pragma("omp simd")                     \
    for (int64_t e = 0; e < n; e++) {       \
        const float x = v[e];               \
        v[e] = (EXPR);                      \
    }                                       \
    break
    switch (ins->op) {
        EW_F32_UNARY_CASES(LOOP)
    default: break;
    }
#undef LOOP
}

/* v = op(v, y) (or op(y, v) when swapped); y is an array, or the scalar c
 * when y is NULL. x is the op's first operand, z its second. */
#define BINARY(EXPR)                                          \
    do {                                                      \
        if (y && !swapped) {                                  \
            for (int64_t e = 0; e < n; e++) {                 \
                const float x = v[e], z = y[e];               \
                (void)x, (void)z;                             \
                v[e] = (EXPR);                                \
            }                                                 \
        } else if (y) {                                       \
            for (int64_t e = 0; e < n; e++) {                 \
                const float x = y[e], z = v[e];               \
                (void)x, (void)z;                             \
                v[e] = (EXPR);                                \
            }                                                 \
        } else if (!swapped) {                                \
            const float z = c;                                \
            (void)z;                                          \
            for (int64_t e = 0; e < n; e++) {                 \
                const float x = v[e];                         \
                v[e] = (EXPR);                                \
            }                                                 \
        } else {                                              \
            const float x = c;                                \
            (void)x;                                          \
            for (int64_t e = 0; e < n; e++) {                 \
                const float z = v[e];                         \
                (void)z;                                      \
                v[e] = (EXPR);                                \
            }                                                 \
        }                                                     \
    } while (0)

static void binary_block(int op, int swapped, float *restrict v, const float *restrict y, float c, int64_t n)
{
    switch (op) {
    case EW_ADD: BINARY(x + z); break;
    case EW_SUB: BINARY(x - z); break;
    case EW_MUL: BINARY(x * z); break;
    case EW_DIV: BINARY(x / z); break;
    case EW_MAX: BINARY((x != x || x > z) ? x : z); break;
    case EW_MIN: BINARY((x != x || x < z) ? x : z); break;
    case EW_POW: /* a scalar exponent, as row_f32_binary with a broadcast exponent */
        if (c == 2.0f)
            BINARY(x * x);
        else if (c == 1.0f)
            BINARY(x);
        else
            BINARY(powf(x, z));
        break;
    default: break;
    }
}
#undef BINARY

#pragma GCC pop_options

/* Elements [start, start + n) of input k broadcast to the output: a pointer
 * into the input when it is the output's shape, else gathered into buf; a
 * single element goes to *c with NULL returned. */
static const float *operand_block(const ewc_program *pg, const float *data, int k, int64_t start, int64_t n,
                                  float *buf, float *c)
{
    const int64_t inner = pg->inner[k], dim = pg->dim[k];
    if (dim == 1) {
        *c = data[0];
        return NULL;
    }
    if (inner == 1 && dim == pg->n)
        return data + start;
    int64_t q = start / inner;
    int64_t r = start - q * inner;
    int64_t ch = q % dim;
    for (int64_t e = 0; e < n;) {
        const float value = data[ch];
        int64_t run = inner - r;
        if (run > n - e)
            run = n - e;
        for (int64_t j = 0; j < run; j++)
            buf[e + j] = value;
        e += run;
        r = 0;
        if (++ch == dim)
            ch = 0;
    }
    return buf;
}

static void run_block(const ewc_program *pg, const float *const *in, float *out, int64_t start, int64_t n)
{
    float buf[EWC_BLOCK], saved[EWC_BLOCK];
    float *v = out + start;
    memcpy(v, in[0] + start, sizeof(float) * (size_t)n);
    for (int i = 0; i < pg->n_instructions; i++) {
        const ewc_instruction *ins = &pg->code[i];
        if (ins->operand == EWC_UNARY) {
            unary_block(ins, v, n);
        } else {
            float c = ins->scalar;
            const float *y = NULL;
            if (ins->operand == EWC_TENSOR)
                y = operand_block(pg, in[ins->input], ins->input, start, n, buf, &c);
            else if (ins->operand == EWC_SAVED)
                y = saved;
            binary_block(ins->op, ins->swapped, v, y, c, n);
        }
        if (ins->act.kind != OP_ACT_NONE)
            op_activation_apply(&ins->act, v, n);
        if (ins->save)
            memcpy(saved, v, sizeof(float) * (size_t)n);
    }
}

static fg_status *chain_run(op_call *call)
{
    const ewc_program *pg = call->state;
    if (!pg)
        return op_error(call, FG_ERR_INTERNAL, "the fused chain ran without being prepared");
    const float *in[EWC_MAX_INPUTS];
    for (int k = 0; k < pg->n_inputs; k++)
        in[k] = call->in[k].data;
    float *out = call->out[0].data;
    const int64_t total = pg->n;
    const int64_t blocks = (total + EWC_BLOCK - 1) / EWC_BLOCK;
    const int threads = call->threads > 0 ? call->threads : 1;
#pragma omp parallel for num_threads(threads) if (total >= EWC_PARALLEL_MIN && threads > 1) schedule(static)
    for (int64_t b = 0; b < blocks; b++) {
        const int64_t start = b * EWC_BLOCK;
        const int64_t n = total - start < EWC_BLOCK ? total - start : EWC_BLOCK;
        run_block(pg, in, out, start, n);
    }
    return NULL;
}

const op_def op_family_facegraph[] = {
    {EWC_OP_TYPE, NULL, ewc_infer, chain_prepare, chain_run, chain_release, 0},
    {DWPW_OP_TYPE, NULL, dwpw_infer, dwpw_prepare, dwpw_run, dwpw_release, OP_FUSES_ACTIVATION}, /* conv_dwpw.c */
    {CLS_OP_TYPE, NULL, cls_infer, NULL, cls_run, NULL, 0},                                   /* channels_last.c */
    {0},
};
