/* Host-side logic of the matrix products shared by the CPU and CUDA kernels
 * (see matmul_layout.h). */
#include "ops/matmul_layout.h"

#include <string.h>

int64_t mm_outer_count(const mm_layout *l)
{
    int64_t n = 1;
    for (int d = 0; d < l->outer_rank; d++)
        n *= l->outer_dims[d];
    return n;
}

void mm_outer_offsets(const mm_layout *l, int64_t index, int64_t *oa, int64_t *ob, int64_t *oc)
{
    *oa = *ob = *oc = 0;
    for (int d = l->outer_rank - 1; d >= 0; d--) {
        int64_t i = index % l->outer_dims[d];
        index /= l->outer_dims[d];
        *oa += i * l->outer_a[d];
        *ob += i * l->outer_b[d];
        *oc += i * l->outer_c[d];
    }
}


int mm_dtype_supported(fg_dtype t)
{
    switch (t) {
    case FG_FLOAT32: case FG_FLOAT16: case FG_FLOAT64: case FG_INT32: case FG_INT64: case FG_UINT32:
    case FG_UINT64:
        return 1;
    default:
        return 0;
    }
}

fg_status *matmul_check_inputs(const op_call *call)
{
    if (call->n_in < 2)
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "expects 2 inputs, got %d", call->n_in);
    const fg_tensor *a = &call->in[0], *b = &call->in[1];
    if (a->dtype != b->dtype)
        return op_error(call, FG_ERR_DTYPE, "inputs have different element types (%s and %s)",
                        fg_dtype_name(a->dtype), fg_dtype_name(b->dtype));
    if (!mm_dtype_supported(a->dtype))
        return op_error(call, FG_ERR_UNSUPPORTED, "element type %s is not supported", fg_dtype_name(a->dtype));
    if (a->rank < 1 || b->rank < 1)
        return op_error(call, FG_ERR_SHAPE, "inputs must have rank >= 1 (got %d and %d)", a->rank, b->rank);
    return NULL;
}

fg_status *matmul_layout(const op_call *call, mm_layout *l, fg_tensor *out)
{
    const fg_tensor *a = &call->in[0], *b = &call->in[1];
    int64_t M = a->rank >= 2 ? a->dims[a->rank - 2] : 1;
    int64_t K = a->dims[a->rank - 1];
    int64_t Kb = b->rank >= 2 ? b->dims[b->rank - 2] : b->dims[0];
    int64_t N = b->rank >= 2 ? b->dims[b->rank - 1] : 1;
    if (K != Kb) {
        char sa[96], sb[96];
        fg_shape_format(a->rank, a->dims, sa, sizeof sa);
        fg_shape_format(b->rank, b->dims, sb, sizeof sb);
        return op_error(call, FG_ERR_SHAPE, "inner dimensions do not match: %s @ %s", sa, sb);
    }
    int ab = a->rank > 2 ? a->rank - 2 : 0, bb = b->rank > 2 ? b->rank - 2 : 0;
    int nb = ab > bb ? ab : bb;
    int64_t bdims[FG_MAX_RANK], adims_p[FG_MAX_RANK], bdims_p[FG_MAX_RANK];
    for (int d = 0; d < nb; d++) {
        int64_t x = d - (nb - ab) >= 0 ? a->dims[d - (nb - ab)] : 1;
        int64_t y = d - (nb - bb) >= 0 ? b->dims[d - (nb - bb)] : 1;
        adims_p[d] = x, bdims_p[d] = y;
        if (x != y && x != 1 && y != 1) {
            char sa[96], sb[96];
            fg_shape_format(a->rank, a->dims, sa, sizeof sa);
            fg_shape_format(b->rank, b->dims, sb, sizeof sb);
            return op_error(call, FG_ERR_SHAPE, "batch dimensions of %s and %s cannot be broadcast", sa, sb);
        }
        bdims[d] = x == 1 ? y : x;
    }
    if (out) {
        out->dtype = a->dtype;
        int r = 0;
        for (int d = 0; d < nb; d++)
            out->dims[r++] = bdims[d];
        if (a->rank >= 2)
            out->dims[r++] = M;
        if (b->rank >= 2)
            out->dims[r++] = N;
        out->rank = r;
    }
    memset(l, 0, sizeof *l);
    l->M = M, l->N = N, l->K = K, l->alpha = 1.0f, l->beta = 0.0f;
    l->a_rs = K, l->a_cs = 1;
    l->b_rs = b->rank >= 2 ? N : 1, l->b_cs = 1;
    l->c_rs = N;
    int64_t a_batch = 1, b_batch = 1, o_batch = 1;
    int same = 1;
    for (int d = 0; d < nb; d++) {
        a_batch *= adims_p[d], b_batch *= bdims_p[d], o_batch *= bdims[d];
        same &= adims_p[d] == bdims_p[d];
    }
    if (b_batch == 1) { /* weights: fold A's batch into M */
        l->M = M * a_batch;
        l->batch = 1;
    } else if (same || a_batch == 1) {
        l->batch = o_batch;
        l->a_bs = a_batch == 1 && !same ? 0 : M * K;
        l->b_bs = K * N;
        l->c_bs = M * N;
    } else { /* general broadcasting: outer loop over batch dims */
        l->batch = 1;
        l->outer_rank = nb;
        int64_t sa = M * K, sb = K * N, sc = M * N;
        for (int d = nb - 1; d >= 0; d--) {
            l->outer_dims[d] = bdims[d];
            l->outer_a[d] = adims_p[d] == 1 ? 0 : sa;
            l->outer_b[d] = bdims_p[d] == 1 ? 0 : sb;
            l->outer_c[d] = sc;
            sa *= adims_p[d], sb *= bdims_p[d], sc *= bdims[d];
        }
    }
    return NULL;
}

fg_status *gemm_layout(const op_call *call, mm_layout *l, fg_tensor *out)
{
    if (call->n_in < 2)
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "expects at least 2 inputs, got %d", call->n_in);
    const fg_tensor *a = &call->in[0], *b = &call->in[1];
    if (a->dtype != b->dtype)
        return op_error(call, FG_ERR_DTYPE, "A and B have different element types (%s and %s)",
                        fg_dtype_name(a->dtype), fg_dtype_name(b->dtype));
    if (!mm_dtype_supported(a->dtype))
        return op_error(call, FG_ERR_UNSUPPORTED, "element type %s is not supported", fg_dtype_name(a->dtype));
    if (a->rank != 2 || b->rank != 2)
        return op_error(call, FG_ERR_SHAPE, "A and B must be 2-D (got rank %d and %d)", a->rank, b->rank);
    int trans_a = ir_attr_int(call->node, "transA", 0) != 0;
    int trans_b = ir_attr_int(call->node, "transB", 0) != 0;
    int64_t M = trans_a ? a->dims[1] : a->dims[0];
    int64_t K = trans_a ? a->dims[0] : a->dims[1];
    int64_t Kb = trans_b ? b->dims[1] : b->dims[0];
    int64_t N = trans_b ? b->dims[0] : b->dims[1];
    if (K != Kb)
        return op_error(call, FG_ERR_SHAPE,
                        "inner dimensions do not match: A is %lldx%lld (transA=%d), B is %lldx%lld (transB=%d)",
                        (long long)a->dims[0], (long long)a->dims[1], trans_a, (long long)b->dims[0],
                        (long long)b->dims[1], trans_b);
    if (op_has_input(call, 2)) {
        const fg_tensor *c = &call->in[2];
        if (c->dtype != a->dtype)
            return op_error(call, FG_ERR_DTYPE, "C has element type %s, A has %s", fg_dtype_name(c->dtype),
                            fg_dtype_name(a->dtype));
        int ok = c->rank <= 2;
        if (ok && c->rank >= 1 && c->dims[c->rank - 1] != 1 && c->dims[c->rank - 1] != N)
            ok = 0;
        if (ok && c->rank == 2 && c->dims[0] != 1 && c->dims[0] != M)
            ok = 0;
        if (!ok) {
            char sc[96];
            fg_shape_format(c->rank, c->dims, sc, sizeof sc);
            return op_error(call, FG_ERR_SHAPE, "C of shape %s cannot be broadcast to %lldx%lld", sc, (long long)M,
                            (long long)N);
        }
    }
    if (out) {
        out->dtype = a->dtype;
        out->rank = 2;
        out->dims[0] = M, out->dims[1] = N;
    }
    memset(l, 0, sizeof *l);
    l->M = M, l->N = N, l->K = K, l->batch = 1;
    l->a_rs = trans_a ? 1 : K, l->a_cs = trans_a ? M : 1;
    l->b_rs = trans_b ? 1 : N, l->b_cs = trans_b ? K : 1;
    l->c_rs = N;
    l->alpha = ir_attr_float(call->node, "alpha", 1.0f);
    l->beta = op_has_input(call, 2) ? ir_attr_float(call->node, "beta", 1.0f) : 0.0f;
    return NULL;
}

static int ein_letter(char ch)
{
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a';
    if (ch >= 'A' && ch <= 'Z')
        return 26 + (ch - 'A');
    return -1;
}

fg_status *einsum_parse(const op_call *call, einsum_spec *s)
{
    const char *eq_attr = ir_attr_string(call->node, "equation", NULL);
    if (!eq_attr)
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "the 'equation' attribute is missing");
    char eq[256];
    size_t n = 0;
    for (const char *p = eq_attr; *p && n + 1 < sizeof eq; p++)
        if (*p != ' ' && *p != '\t')
            eq[n++] = *p;
    eq[n] = 0;
    memset(s, 0, sizeof *s);
    for (int i = 0; i < EIN_LABELS; i++)
        s->size[i] = -1;
    char *arrow = strstr(eq, "->");
    char *rhs = NULL;
    if (arrow) {
        *arrow = 0;
        rhs = arrow + 2;
    }
    if (call->n_in > EIN_MAX_OPERANDS)
        return op_error(call, FG_ERR_UNSUPPORTED, "at most %d operands are supported", EIN_MAX_OPERANDS);
    /* operand terms */
    int ell_rank[EIN_MAX_OPERANDS] = {0};
    int ell_pos[EIN_MAX_OPERANDS];
    char *term = eq;
    int op = 0;
    int max_ell = 0;
    for (;;) {
        char *comma = strchr(term, ',');
        if (comma)
            *comma = 0;
        if (op >= call->n_in)
            return op_error(call, FG_ERR_INVALID_ARGUMENT, "equation '%s' names more operands than the %d inputs",
                            eq_attr, call->n_in);
        int letters = 0;
        ell_pos[op] = -1;
        for (const char *p = term; *p; p++) {
            if (p[0] == '.' && p[1] == '.' && p[2] == '.') {
                if (ell_pos[op] >= 0)
                    return op_error(call, FG_ERR_INVALID_ARGUMENT, "equation '%s' has two ellipses in a term",
                                    eq_attr);
                ell_pos[op] = letters;
                p += 2;
            } else if (ein_letter(*p) >= 0) {
                letters++;
            } else {
                return op_error(call, FG_ERR_INVALID_ARGUMENT, "equation '%s' has an unexpected character '%c'",
                                eq_attr, *p);
            }
        }
        int rank = call->in[op].rank;
        if (ell_pos[op] < 0 ? letters != rank : letters > rank)
            return op_error(call, FG_ERR_SHAPE, "term %d of equation '%s' has %d labels but input %d has rank %d",
                            op, eq_attr, letters, op, rank);
        ell_rank[op] = ell_pos[op] < 0 ? 0 : rank - letters;
        if (ell_rank[op] > max_ell)
            max_ell = ell_rank[op];
        s->rank[op] = rank;
        int axis = 0;
        for (const char *p = term; *p; p++) {
            if (*p == '.') {
                for (int e = 0; e < ell_rank[op]; e++)
                    s->labels[op][axis++] = EIN_ELLIPSIS_BASE + (max_ell - ell_rank[op]) + e;
                p += 2;
            } else {
                s->labels[op][axis++] = ein_letter(*p);
            }
        }
        op++;
        if (!comma)
            break;
        term = comma + 1;
    }
    if (op != call->n_in)
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "equation '%s' names %d operands but the node has %d inputs",
                        eq_attr, op, call->n_in);
    s->n_ops = op;
    /* ellipsis labels were numbered right-aligned against the running max;
     * renumber now that the final max is known */
    for (int t = 0; t < s->n_ops; t++)
        if (ell_pos[t] >= 0)
            for (int e = 0; e < ell_rank[t]; e++)
                s->labels[t][ell_pos[t] + e] = EIN_ELLIPSIS_BASE + (max_ell - ell_rank[t]) + e;
    /* sizes */
    int count[EIN_LABELS] = {0};
    for (int t = 0; t < s->n_ops; t++) {
        for (int d = 0; d < s->rank[t]; d++) {
            int lb = s->labels[t][d];
            int64_t sz = call->in[t].dims[d];
            count[lb]++;
            if (s->size[lb] < 0 || s->size[lb] == 1)
                s->size[lb] = sz;
            else if (sz != 1 && sz != s->size[lb])
                return op_error(call, FG_ERR_SHAPE, "equation '%s': a label has sizes %lld and %lld", eq_attr,
                                (long long)s->size[lb], (long long)sz);
        }
    }
    /* output */
    if (rhs) {
        int r = 0;
        for (const char *p = rhs; *p; p++) {
            if (p[0] == '.' && p[1] == '.' && p[2] == '.') {
                for (int e = 0; e < max_ell; e++) {
                    if (r >= FG_MAX_RANK)
                        return op_error(call, FG_ERR_UNSUPPORTED, "output rank exceeds %d", FG_MAX_RANK);
                    s->out_labels[r++] = EIN_ELLIPSIS_BASE + e;
                }
                p += 2;
                continue;
            }
            int lb = ein_letter(*p);
            if (lb < 0)
                return op_error(call, FG_ERR_INVALID_ARGUMENT, "equation '%s' has an unexpected character '%c'",
                                eq_attr, *p);
            if (!count[lb])
                return op_error(call, FG_ERR_INVALID_ARGUMENT,
                                "equation '%s': output label '%c' does not appear in any input", eq_attr, *p);
            for (int i = 0; i < r; i++)
                if (s->out_labels[i] == lb)
                    return op_error(call, FG_ERR_INVALID_ARGUMENT, "equation '%s': output label '%c' repeats",
                                    eq_attr, *p);
            if (r >= FG_MAX_RANK)
                return op_error(call, FG_ERR_UNSUPPORTED, "output rank exceeds %d", FG_MAX_RANK);
            s->out_labels[r++] = lb;
        }
        s->out_rank = r;
    } else {
        int r = 0;
        for (int e = 0; e < max_ell; e++)
            s->out_labels[r++] = EIN_ELLIPSIS_BASE + e;
        for (char ch = 'A'; ch <= 'z'; ch++) {
            int lb = ein_letter(ch);
            if (lb >= 0 && count[lb] == 1) {
                if (r >= FG_MAX_RANK)
                    return op_error(call, FG_ERR_UNSUPPORTED, "output rank exceeds %d", FG_MAX_RANK);
                s->out_labels[r++] = lb;
            }
        }
        s->out_rank = r;
    }
    int in_out[EIN_LABELS] = {0};
    for (int i = 0; i < s->out_rank; i++)
        in_out[s->out_labels[i]] = 1;
    for (int lb = 0; lb < EIN_LABELS; lb++)
        if (count[lb] && !in_out[lb])
            s->sum_labels[s->n_sum++] = lb;
    return NULL;
}

fg_status *einsum_check_dtypes(const op_call *call)
{
    if (call->n_in < 1)
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "expects at least one input");
    for (int i = 0; i < call->n_in; i++) {
        if (call->in[i].dtype != call->in[0].dtype)
            return op_error(call, FG_ERR_DTYPE, "inputs have different element types (%s and %s)",
                            fg_dtype_name(call->in[0].dtype), fg_dtype_name(call->in[i].dtype));
    }
    if (!mm_dtype_supported(call->in[0].dtype))
        return op_error(call, FG_ERR_UNSUPPORTED, "element type %s is not supported",
                        fg_dtype_name(call->in[0].dtype));
    return NULL;
}

void ein_label_strides(const einsum_spec *s, const fg_tensor *t, int op, int64_t *strides)
{
    for (int lb = 0; lb < EIN_LABELS; lb++)
        strides[lb] = 0;
    int64_t st = 1;
    for (int d = s->rank[op] - 1; d >= 0; d--) {
        if (t->dims[d] != 1)
            strides[s->labels[op][d]] += st;
        st *= t->dims[d];
    }
}

/* Label order of operand t equals `want` (n labels)? */
static int ein_order_is(const einsum_spec *s, int t, const int *want, int n)
{
    if (s->rank[t] != n)
        return 0;
    for (int i = 0; i < n; i++)
        if (s->labels[t][i] != want[i])
            return 0;
    return 1;
}

int einsum_plan_matmul(const op_call *call, const einsum_spec *s, einsum_matmul_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    if (s->n_ops != 2 || call->in[0].dtype != FG_FLOAT32)
        return 0;
    int where[EIN_LABELS] = {0}; /* bit 0: operand 0, bit 1: operand 1, bit 2: output */
    for (int t = 0; t < 2; t++) {
        for (int d = 0; d < s->rank[t]; d++) {
            int lb = s->labels[t][d];
            if (where[lb] & (1 << t))
                return 0; /* repeated label: diagonal */
            if (call->in[t].dims[d] != s->size[lb])
                return 0; /* broadcast */
            where[lb] |= 1 << t;
        }
    }
    for (int i = 0; i < s->out_rank; i++)
        where[s->out_labels[i]] |= 4;
    int batch[FG_MAX_RANK], nbatch = 0, mk[2][FG_MAX_RANK], nmk[2] = {0, 0}, kc[FG_MAX_RANK], nkc = 0;
    int first_free = -1;
    for (int i = 0; i < s->out_rank; i++) {
        int lb = s->out_labels[i];
        if ((where[lb] & 3) == 3) {
            batch[nbatch++] = lb;
        } else {
            int t = (where[lb] & 1) ? 0 : 1;
            mk[t][nmk[t]++] = lb;
            if (first_free < 0)
                first_free = t;
        }
    }
    for (int lb = 0; lb < EIN_LABELS; lb++)
        if (where[lb] && where[lb] != 3 && !(where[lb] & 4))
            return 0; /* summed within one operand only */
    int ta = first_free == 1 ? 1 : 0, tb = 1 - ta;
    for (int d = 0; d < s->rank[ta]; d++)
        if (where[s->labels[ta][d]] == 3)
            kc[nkc++] = s->labels[ta][d];
    int64_t Bt = 1, M = 1, N = 1, K = 1;
    for (int i = 0; i < nbatch; i++)
        Bt *= s->size[batch[i]];
    for (int i = 0; i < nmk[ta]; i++)
        M *= s->size[mk[ta][i]];
    for (int i = 0; i < nmk[tb]; i++)
        N *= s->size[mk[tb][i]];
    for (int i = 0; i < nkc; i++)
        K *= s->size[kc[i]];
    if (Bt == 0 || M == 0 || N == 0 || K == 0)
        return 0; /* the generic loop handles empty tensors */

    mm_layout *l = &plan->layout;
    memset(l, 0, sizeof *l);
    l->M = M, l->N = N, l->K = K, l->batch = Bt, l->alpha = 1.0f;
    int order[FG_MAX_RANK], n;
    /* A: [batch, M, K] or [batch, K, M] as stored, else permuted */
    n = 0;
    memcpy(order + n, batch, sizeof(int) * nbatch), n += nbatch;
    memcpy(order + n, mk[ta], sizeof(int) * nmk[ta]), n += nmk[ta];
    memcpy(order + n, kc, sizeof(int) * nkc), n += nkc;
    int a_normal[FG_MAX_RANK];
    memcpy(a_normal, order, sizeof(int) * n);
    int na = n;
    n = nbatch;
    memcpy(order + n, kc, sizeof(int) * nkc), n += nkc;
    memcpy(order + n, mk[ta], sizeof(int) * nmk[ta]), n += nmk[ta];
    l->a_bs = M * K;
    if (ein_order_is(s, ta, a_normal, na)) {
        l->a_rs = K, l->a_cs = 1;
    } else if (ein_order_is(s, ta, order, n)) {
        l->a_rs = 1, l->a_cs = M;
    } else {
        l->a_rs = K, l->a_cs = 1;
        plan->perm_a.needed = 1;
        plan->perm_a.rank = na;
        int64_t str[EIN_LABELS];
        ein_label_strides(s, &call->in[ta], ta, str);
        for (int i = 0; i < na; i++) {
            plan->perm_a.dims[i] = s->size[a_normal[i]];
            plan->perm_a.src_strides[i] = str[a_normal[i]];
        }
    }
    /* B: [batch, K, N] or [batch, N, K] */
    int b_normal[FG_MAX_RANK];
    n = 0;
    memcpy(b_normal + n, batch, sizeof(int) * nbatch), n += nbatch;
    memcpy(b_normal + n, kc, sizeof(int) * nkc), n += nkc;
    memcpy(b_normal + n, mk[tb], sizeof(int) * nmk[tb]), n += nmk[tb];
    int nbn = n;
    n = nbatch;
    memcpy(order, batch, sizeof(int) * nbatch);
    memcpy(order + n, mk[tb], sizeof(int) * nmk[tb]), n += nmk[tb];
    memcpy(order + n, kc, sizeof(int) * nkc), n += nkc;
    l->b_bs = K * N;
    if (ein_order_is(s, tb, b_normal, nbn)) {
        l->b_rs = N, l->b_cs = 1;
    } else if (ein_order_is(s, tb, order, n)) {
        l->b_rs = 1, l->b_cs = K;
    } else {
        l->b_rs = N, l->b_cs = 1;
        plan->perm_b.needed = 1;
        plan->perm_b.rank = nbn;
        int64_t str[EIN_LABELS];
        ein_label_strides(s, &call->in[tb], tb, str);
        for (int i = 0; i < nbn; i++) {
            plan->perm_b.dims[i] = s->size[b_normal[i]];
            plan->perm_b.src_strides[i] = str[b_normal[i]];
        }
    }
    /* C: [batch, M, N]; permuted into the output order when that differs */
    l->c_bs = M * N, l->c_rs = N;
    int c_order[FG_MAX_RANK];
    n = 0;
    memcpy(c_order + n, batch, sizeof(int) * nbatch), n += nbatch;
    memcpy(c_order + n, mk[ta], sizeof(int) * nmk[ta]), n += nmk[ta];
    memcpy(c_order + n, mk[tb], sizeof(int) * nmk[tb]), n += nmk[tb];
    int same = n == s->out_rank;
    for (int i = 0; same && i < n; i++)
        same = c_order[i] == s->out_labels[i];
    if (!same) {
        int64_t cstr[EIN_LABELS] = {0};
        int64_t acc = 1;
        for (int i = n - 1; i >= 0; i--) {
            cstr[c_order[i]] = acc;
            acc *= s->size[c_order[i]];
        }
        plan->perm_c.needed = 1;
        plan->perm_c.rank = s->out_rank;
        for (int i = 0; i < s->out_rank; i++) {
            plan->perm_c.dims[i] = s->size[s->out_labels[i]];
            plan->perm_c.src_strides[i] = cstr[s->out_labels[i]];
        }
    }
    plan->swap = ta == 1;
    return 1;
}

