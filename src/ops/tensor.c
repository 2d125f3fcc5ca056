/* Data movement and shape ops: Constant, Shape, Size, Reshape, Flatten,
 * Squeeze, Unsqueeze, Identity, Dropout, Transpose, Concat, Split, Slice,
 * Gather, GatherElements, ScatterND, Expand, Tile, Pad, ConstantOfShape,
 * Range, DepthToSpace, SpaceToDepth, Trilu.
 *
 * Everything here is dtype-agnostic: elements are moved as bytes of the
 * element size. Only index and shape inputs are read as values (any integer
 * dtype). Most ops reduce to one kernel, a strided copy: the output is
 * written contiguously while the input is read through per-axis strides
 * (0 for broadcast axes, negative for reversed slices); it merges axes,
 * copies contiguous runs with memcpy and tiles transpositions. */
#include "ops/op.h"
#include "ops/tensor_params.h"

#include <math.h>
#include <string.h>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

/* ------------------------------------------------------------ helpers */

#define COPY_MAX_RANK (2 * FG_MAX_RANK)
#define PARALLEL_BYTES ((int64_t)1 << 17)
#define TILE_ELEMENTS 1024
#define TILE_SHORT 8

static int thread_count(const op_call *call) { return call->threads > 0 ? call->threads : 1; }

static void contiguous_strides(int rank, const int64_t *dims, int64_t *strides)
{
    int64_t s = 1;
    for (int d = rank - 1; d >= 0; d--) {
        strides[d] = s;
        s *= dims[d];
    }
}

static void set_output(op_call *call, int index, fg_dtype dtype, int rank, const int64_t *dims)
{
    fg_tensor *o = &call->out[index];
    o->dtype = dtype;
    o->rank = rank;
    for (int d = 0; d < FG_MAX_RANK; d++)
        o->dims[d] = d < rank ? dims[d] : 0;
}

static size_t element_size(const op_call *call, int index, fg_status **error)
{
    size_t size = fg_dtype_size(call->in[index].dtype);
    *error = NULL;
    if (size == 0)
        *error = op_error(call, FG_ERR_UNSUPPORTED, "input %d has element type %s, which is not supported", index,
                          fg_dtype_name(call->in[index].dtype));
    return size;
}

static void fill_elements(char *dst, int64_t n, const void *value, size_t esize)
{
    switch (esize) {
    case 1: memset(dst, *(const uint8_t *)value, (size_t)n); break;
    case 2: {
        uint16_t v; memcpy(&v, value, 2);
        uint16_t *d = (uint16_t *)dst;
        for (int64_t i = 0; i < n; i++) d[i] = v;
        break;
    }
    case 4: {
        uint32_t v; memcpy(&v, value, 4);
        uint32_t *d = (uint32_t *)dst;
        for (int64_t i = 0; i < n; i++) d[i] = v;
        break;
    }
    case 8: {
        uint64_t v; memcpy(&v, value, 8);
        uint64_t *d = (uint64_t *)dst;
        for (int64_t i = 0; i < n; i++) d[i] = v;
        break;
    }
    default:
        for (int64_t i = 0; i < n; i++) memcpy(dst + i * esize, value, esize);
    }
}

/* dst[i] = src[i * stride] for n elements. */
static void copy_strided_run(char *dst, const char *src, int64_t n, int64_t stride, size_t esize)
{
    if (stride == 1) {
        memcpy(dst, src, (size_t)n * esize);
        return;
    }
    if (stride == 0) {
        fill_elements(dst, n, src, esize);
        return;
    }
    switch (esize) {
#define RUN_CASE(bytes, type)                                                                              \
    case bytes: {                                                                                          \
        type *d = (type *)dst;                                                                             \
        const type *s = (const type *)src;                                                                 \
        for (int64_t i = 0; i < n; i++) d[i] = s[i * stride];                                              \
        break;                                                                                             \
    }
        RUN_CASE(1, uint8_t)
        RUN_CASE(2, uint16_t)
        RUN_CASE(4, uint32_t)
        RUN_CASE(8, uint64_t)
#undef RUN_CASE
    default:
        for (int64_t i = 0; i < n; i++) memcpy(dst + i * esize, src + i * stride * (int64_t)esize, esize);
    }
}

static void parallel_memcpy(char *dst, const char *src, size_t bytes, int threads)
{
    if (threads <= 1 || bytes < (size_t)PARALLEL_BYTES * 4) {
        memcpy(dst, src, bytes);
        return;
    }
    int parts = threads;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int p = 0; p < parts; p++) {
        size_t begin = bytes * (size_t)p / (size_t)parts, end = bytes * (size_t)(p + 1) / (size_t)parts;
        memcpy(dst + begin, src + begin, end - begin);
    }
}

/* Transposition of one tile: dst[i * dst_stride_i + j] = src[i + j * src_stride_j].
 * The inner loop runs along whichever side has the smaller stride on the
 * other (large power-of-two strides thrash the cache's sets). */
#if defined(__AVX2__)
/* 8x8 block of 4-byte elements: dst[i * dst_stride + j] = src[i + j * src_stride]. */
static inline void transpose_8x8_f32(float *dst, const float *src, int64_t dst_stride, int64_t src_stride)
{
    __m256 r0 = _mm256_loadu_ps(src + 0 * src_stride), r1 = _mm256_loadu_ps(src + 1 * src_stride);
    __m256 r2 = _mm256_loadu_ps(src + 2 * src_stride), r3 = _mm256_loadu_ps(src + 3 * src_stride);
    __m256 r4 = _mm256_loadu_ps(src + 4 * src_stride), r5 = _mm256_loadu_ps(src + 5 * src_stride);
    __m256 r6 = _mm256_loadu_ps(src + 6 * src_stride), r7 = _mm256_loadu_ps(src + 7 * src_stride);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst + 0 * dst_stride, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(dst + 1 * dst_stride, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(dst + 2 * dst_stride, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(dst + 3 * dst_stride, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(dst + 4 * dst_stride, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(dst + 5 * dst_stride, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(dst + 6 * dst_stride, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(dst + 7 * dst_stride, _mm256_permute2f128_ps(u3, u7, 0x31));
}
#endif

static void copy_tile(char *dst, const char *src, int64_t ni, int64_t nj, int64_t dst_stride_i, int64_t src_stride_j,
                      size_t esize)
{
#if defined(__AVX2__)
    if (esize == 4 && ni % 8 == 0 && nj % 8 == 0) {
        float *d = (float *)dst;
        const float *s = (const float *)src;
        for (int64_t i = 0; i < ni; i += 8)
            for (int64_t j = 0; j < nj; j += 8)
                transpose_8x8_f32(d + i * dst_stride_i + j, s + i + j * src_stride_j, dst_stride_i, src_stride_j);
        return;
    }
#endif
    int i_inner = dst_stride_i < src_stride_j;
    switch (esize) {
#define TILE_CASE(bytes, type)                                                                             \
    case bytes: {                                                                                          \
        type *d = (type *)dst;                                                                             \
        const type *s = (const type *)src;                                                                 \
        if (i_inner)                                                                                       \
            for (int64_t j = 0; j < nj; j++)                                                               \
                for (int64_t i = 0; i < ni; i++) d[i * dst_stride_i + j] = s[i + j * src_stride_j];        \
        else                                                                                               \
            for (int64_t i = 0; i < ni; i++)                                                               \
                for (int64_t j = 0; j < nj; j++) d[i * dst_stride_i + j] = s[i + j * src_stride_j];        \
        break;                                                                                             \
    }
        TILE_CASE(1, uint8_t)
        TILE_CASE(2, uint16_t)
        TILE_CASE(4, uint32_t)
        TILE_CASE(8, uint64_t)
#undef TILE_CASE
    default:
        for (int64_t i = 0; i < ni; i++)
            for (int64_t j = 0; j < nj; j++)
                memcpy(dst + (i * dst_stride_i + j) * (int64_t)esize, src + (i + j * src_stride_j) * (int64_t)esize,
                       esize);
    }
}

/* Writes a contiguous output of shape dims (rank <= COPY_MAX_RANK) where
 * output element [c0..cn] = src[sum c_d * src_strides[d]] (strides in
 * elements; 0 repeats, negative reverses). */
static void strided_copy(void *dst_bytes, const void *src_bytes, size_t esize, int rank, const int64_t *dims_in,
                         const int64_t *strides_in, int threads)
{
    char *dst = (char *)dst_bytes;
    const char *src = (const char *)src_bytes;
    int64_t dims[COPY_MAX_RANK], st[COPY_MAX_RANK];
    int64_t numel = 1;
    for (int d = 0; d < rank; d++)
        numel *= dims_in[d];
    if (numel == 0)
        return;
    /* Drop unit axes, then merge axes that are contiguous in the source. */
    int r = 0;
    for (int d = 0; d < rank; d++) {
        if (dims_in[d] == 1)
            continue;
        if (r > 0 && st[r - 1] == strides_in[d] * dims_in[d]) {
            dims[r - 1] *= dims_in[d];
            st[r - 1] = strides_in[d];
            continue;
        }
        dims[r] = dims_in[d];
        st[r] = strides_in[d];
        r++;
    }
    if (r == 0) {
        memcpy(dst, src, esize);
        return;
    }
    int parallel = threads > 1 && numel * (int64_t)esize >= PARALLEL_BYTES;
    int64_t inner = dims[r - 1], inner_stride = st[r - 1];

    /* A transposition: some other axis b is contiguous in the source. Copy
     * blocks so both sides stay in cache. */
    int b = -1;
    if (inner_stride != 1 && inner_stride != 0 && r >= 2 && inner >= 4)
        for (int d = 0; d < r - 1; d++)
            if (st[d] == 1 && dims[d] >= 4)
                b = d;
    if (b >= 0) {
        int64_t dst_st[COPY_MAX_RANK];
        contiguous_strides(r, dims, dst_st);
        int64_t nb = dims[b];
        int64_t outer = numel / (nb * inner);
        /* Tiles of about TILE_ELEMENTS elements, short (8) along the axis
         * whose stride on the other side is larger (stores or loads far
         * apart), long along the other; a short inner axis gets longer tiles. */
        int64_t tile_b, tile_a;
        if (dst_st[b] > inner_stride) {
            tile_b = TILE_SHORT;
            tile_a = TILE_ELEMENTS / TILE_SHORT;
        } else {
            tile_a = TILE_SHORT;
            tile_b = TILE_ELEMENTS / TILE_SHORT;
        }
        if (tile_a > inner) {
            tile_a = inner;
            tile_b = TILE_ELEMENTS / tile_a;
        }
        int64_t tiles_b = (nb + tile_b - 1) / tile_b, tiles_a = (inner + tile_a - 1) / tile_a;
        int64_t units = outer * tiles_b * tiles_a;
#pragma omp parallel for num_threads(threads) if (parallel) schedule(static)
        for (int64_t u = 0; u < units; u++) {
            int64_t o = u / (tiles_b * tiles_a), rem = u % (tiles_b * tiles_a);
            int64_t ib = rem / tiles_a, ia = rem % tiles_a;
            int64_t src_off = 0, dst_off = 0, t = o;
            for (int d = r - 2; d >= 0; d--) {
                if (d == b)
                    continue;
                int64_t c = t % dims[d];
                t /= dims[d];
                src_off += c * st[d];
                dst_off += c * dst_st[d];
            }
            int64_t i0 = ib * tile_b, j0 = ia * tile_a;
            int64_t ni = nb - i0 < tile_b ? nb - i0 : tile_b, nj = inner - j0 < tile_a ? inner - j0 : tile_a;
            copy_tile(dst + (dst_off + i0 * dst_st[b] + j0) * (int64_t)esize,
                      src + (src_off + i0 + j0 * inner_stride) * (int64_t)esize, ni, nj, dst_st[b], inner_stride,
                      esize);
        }
        return;
    }

    /* Rows of the innermost axis: memcpy when contiguous, strided otherwise. */
    int64_t rows = numel / inner;
    int64_t chunks = parallel ? (rows < (int64_t)threads * 4 ? rows : (int64_t)threads * 4) : 1;
    int outer_rank = r - 1;
    if (rows == 1 || chunks < 1)
        chunks = 1;
    if (rows == 1 && inner_stride == 1) {
        parallel_memcpy(dst, src, (size_t)inner * esize, parallel ? threads : 1);
        return;
    }
#pragma omp parallel for num_threads(threads) if (chunks > 1) schedule(static)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t row0 = rows * c / chunks, row1 = rows * (c + 1) / chunks;
        int64_t coord[COPY_MAX_RANK];
        int64_t off = 0, t = row0;
        for (int d = outer_rank - 1; d >= 0; d--) {
            coord[d] = t % dims[d];
            t /= dims[d];
            off += coord[d] * st[d];
        }
        for (int64_t row = row0; row < row1; row++) {
            copy_strided_run(dst + row * inner * (int64_t)esize, src + off * (int64_t)esize, inner, inner_stride,
                             esize);
            for (int d = outer_rank - 1; d >= 0; d--) {
                coord[d]++;
                off += st[d];
                if (coord[d] < dims[d])
                    break;
                off -= st[d] * dims[d];
                coord[d] = 0;
            }
        }
    }
}

/* Plain copy of input 0 into output 0 (view ops when the planner could not alias). */
static fg_status *run_copy_input(op_call *call)
{
    size_t bytes = fg_tensor_nbytes(&call->in[0]);
    if (call->out[0].data != call->in[0].data && bytes)
        parallel_memcpy((char *)call->out[0].data, (const char *)call->in[0].data, bytes, thread_count(call));
    return NULL;
}

/* ------------------------------------------------------------ Constant */

static fg_status *constant_check(const ir_node *node, int64_t opset)
{
    static const char *const supported[] = {"value", "value_float", "value_floats", "value_int", "value_ints"};
    int found = 0;
    for (size_t i = 0; i < sizeof supported / sizeof supported[0]; i++)
        found += ir_attr_find(node, supported[i]) != NULL;
    if (found == 1)
        return NULL;
    if (found > 1)
        return op_node_error(node, opset, FG_ERR_CORRUPT, "a Constant must have exactly one value attribute");
    if (ir_attr_find(node, "sparse_value") || ir_attr_find(node, "value_string") ||
        ir_attr_find(node, "value_strings"))
        return op_node_error(node, opset, FG_ERR_UNSUPPORTED,
                             "sparse and string constants are not supported (only numeric tensors)");
    return op_node_error(node, opset, FG_ERR_CORRUPT, "a Constant needs a value attribute");
}

static fg_status *constant_infer(op_call *call)
{
    const ir_node *node = call->node;
    const ir_attr *a;
    FG_TRY(constant_check(node, call->opset));
    if ((a = ir_attr_find(node, "value"))) {
        if (!a->t)
            return op_error(call, FG_ERR_CORRUPT, "attribute 'value' holds no tensor");
        if (fg_dtype_size(a->t->dtype) == 0)
            return op_error(call, FG_ERR_UNSUPPORTED, "constant of element type %s is not supported",
                            fg_dtype_name(a->t->dtype));
        set_output(call, 0, a->t->dtype, a->t->rank, a->t->dims);
    } else if ((a = ir_attr_find(node, "value_float"))) {
        set_output(call, 0, FG_FLOAT32, 0, NULL);
    } else if ((a = ir_attr_find(node, "value_floats"))) {
        int64_t n = a->n;
        set_output(call, 0, FG_FLOAT32, 1, &n);
    } else if ((a = ir_attr_find(node, "value_int"))) {
        set_output(call, 0, FG_INT64, 0, NULL);
    } else if ((a = ir_attr_find(node, "value_ints"))) {
        int64_t n = a->n;
        set_output(call, 0, FG_INT64, 1, &n);
    }
    return NULL;
}

static fg_status *constant_run(op_call *call)
{
    const ir_node *node = call->node;
    const ir_attr *a;
    void *out = call->out[0].data;
    if ((a = ir_attr_find(node, "value"))) {
        size_t bytes = fg_tensor_nbytes(&call->out[0]);
        if (a->t->nbytes < bytes)
            return op_error(call, FG_ERR_CORRUPT, "constant tensor holds %zu bytes, its shape needs %zu",
                            a->t->nbytes, bytes);
        if (bytes)
            memcpy(out, a->t->data, bytes);
    } else if ((a = ir_attr_find(node, "value_float"))) {
        memcpy(out, &a->f, sizeof(float));
    } else if ((a = ir_attr_find(node, "value_floats"))) {
        if (a->n)
            memcpy(out, a->floats, (size_t)a->n * sizeof(float));
    } else if ((a = ir_attr_find(node, "value_int"))) {
        memcpy(out, &a->i, sizeof(int64_t));
    } else if ((a = ir_attr_find(node, "value_ints"))) {
        if (a->n)
            memcpy(out, a->ints, (size_t)a->n * sizeof(int64_t));
    }
    return NULL;
}

/* ------------------------------------------------------------ Shape, Size */

static void shape_range(const op_call *call, int64_t *start, int64_t *end)
{
    int64_t rank = call->in[0].rank;
    int64_t s = ir_attr_int(call->node, "start", 0), e = ir_attr_int(call->node, "end", rank);
    if (s < 0) s += rank;
    if (e < 0) e += rank;
    s = s < 0 ? 0 : (s > rank ? rank : s);
    e = e < 0 ? 0 : (e > rank ? rank : e);
    *start = s;
    *end = e > s ? e : s;
}

static fg_status *shape_infer(op_call *call)
{
    int64_t s, e;
    shape_range(call, &s, &e);
    int64_t n = e - s;
    set_output(call, 0, FG_INT64, 1, &n);
    return NULL;
}

static fg_status *shape_run(op_call *call)
{
    int64_t s, e;
    shape_range(call, &s, &e);
    int64_t *out = (int64_t *)call->out[0].data;
    for (int64_t i = s; i < e; i++)
        out[i - s] = call->in[0].dims[i];
    return NULL;
}

static fg_status *size_infer(op_call *call)
{
    set_output(call, 0, FG_INT64, 0, NULL);
    return NULL;
}

static fg_status *size_run(op_call *call)
{
    *(int64_t *)call->out[0].data = fg_tensor_numel(&call->in[0]);
    return NULL;
}

/* ------------------------------------------------------------ view ops */

static fg_status *check_same_numel(op_call *call, int rank, const int64_t *dims)
{
    if (fg_shape_numel(rank, dims) == fg_tensor_numel(&call->in[0]))
        return NULL;
    char a[128], b[128];
    fg_shape_format(call->in[0].rank, call->in[0].dims, a, sizeof a);
    fg_shape_format(rank, dims, b, sizeof b);
    return op_error(call, FG_ERR_SHAPE, "cannot reshape %s (%lld elements) into %s", a,
                    (long long)fg_tensor_numel(&call->in[0]), b);
}

static fg_status *reshape_infer(op_call *call)
{
    if (call->n_in < 2)
        return op_error(call, FG_ERR_UNSUPPORTED, "Reshape needs its shape as input 1 (opset 5 and later)");
    OP_REQUIRE_VALUE(call, 1);
    int64_t shape[FG_MAX_RANK];
    int n = 0;
    FG_TRY(tensor_read_int_input(call, 1, shape, FG_MAX_RANK, &n));
    int allow_zero = (int)ir_attr_int(call->node, "allowzero", 0);
    const fg_tensor *in = &call->in[0];
    int infer_at = -1;
    int64_t known = 1;
    for (int i = 0; i < n; i++) {
        if (shape[i] == 0 && !allow_zero) {
            if (i >= in->rank)
                return op_error(call, FG_ERR_SHAPE, "shape entry %d is 0 (copy) but the input has rank %d", i,
                                in->rank);
            shape[i] = in->dims[i];
        }
        if (shape[i] == -1) {
            if (infer_at >= 0)
                return op_error(call, FG_ERR_SHAPE, "the shape has more than one -1 entry");
            infer_at = i;
            continue;
        }
        if (shape[i] < 0)
            return op_error(call, FG_ERR_SHAPE, "shape entry %d is %lld", i, (long long)shape[i]);
        known *= shape[i];
    }
    if (infer_at >= 0) {
        int64_t total = fg_tensor_numel(in);
        if (known == 0 || total % known != 0) {
            char a[128];
            fg_shape_format(in->rank, in->dims, a, sizeof a);
            return op_error(call, FG_ERR_SHAPE, "cannot infer the -1 entry: %s (%lld elements) is not a multiple of %lld",
                            a, (long long)total, (long long)known);
        }
        shape[infer_at] = total / known;
    }
    FG_TRY(check_same_numel(call, n, shape));
    set_output(call, 0, in->dtype, n, shape);
    return NULL;
}

static fg_status *flatten_infer(op_call *call)
{
    const fg_tensor *in = &call->in[0];
    int64_t axis = ir_attr_int(call->node, "axis", 1);
    if (axis < 0)
        axis += in->rank;
    if (axis < 0 || axis > in->rank)
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "axis %lld is out of range for rank %d",
                        (long long)ir_attr_int(call->node, "axis", 1), in->rank);
    int64_t dims[2] = {fg_shape_numel((int)axis, in->dims), fg_shape_numel(in->rank - (int)axis, in->dims + axis)};
    set_output(call, 0, in->dtype, 2, dims);
    return NULL;
}

/* Axes of Squeeze/Unsqueeze: attribute before opset 13, input 1 after. */
static fg_status *read_axes(op_call *call, int64_t *axes, int *n, int *present)
{
    *n = 0;
    *present = 0;
    if (call->opset < 13) {
        const int64_t *values;
        int count = ir_attr_ints(call->node, "axes", &values);
        if (count > COPY_MAX_RANK)
            return op_error(call, FG_ERR_SHAPE, "too many axes (%d)", count);
        if (ir_attr_find(call->node, "axes")) {
            *present = 1;
            memcpy(axes, values, (size_t)count * sizeof *axes);
            *n = count;
        }
        return NULL;
    }
    if (!op_has_input(call, 1))
        return NULL;
    OP_REQUIRE_VALUE(call, 1);
    *present = 1;
    return tensor_read_int_input(call, 1, axes, COPY_MAX_RANK, n);
}

static fg_status *squeeze_infer(op_call *call)
{
    const fg_tensor *in = &call->in[0];
    int64_t axes[COPY_MAX_RANK];
    int n = 0, present = 0;
    FG_TRY(read_axes(call, axes, &n, &present));
    int drop[FG_MAX_RANK] = {0};
    if (present) {
        FG_TRY(tensor_normalise_axes(call, axes, n, in->rank));
        for (int i = 0; i < n; i++) {
            if (in->dims[axes[i]] != 1)
                return op_error(call, FG_ERR_SHAPE, "cannot squeeze axis %lld: its size is %lld, not 1",
                                (long long)axes[i], (long long)in->dims[axes[i]]);
            drop[axes[i]] = 1;
        }
    } else {
        for (int d = 0; d < in->rank; d++)
            drop[d] = in->dims[d] == 1;
    }
    int64_t dims[FG_MAX_RANK];
    int r = 0;
    for (int d = 0; d < in->rank; d++)
        if (!drop[d])
            dims[r++] = in->dims[d];
    set_output(call, 0, in->dtype, r, dims);
    return NULL;
}

static fg_status *unsqueeze_infer(op_call *call)
{
    const fg_tensor *in = &call->in[0];
    int64_t axes[COPY_MAX_RANK];
    int n = 0, present = 0;
    FG_TRY(read_axes(call, axes, &n, &present));
    if (!present)
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "Unsqueeze needs axes");
    int rank = in->rank + n;
    if (rank > FG_MAX_RANK)
        return op_error(call, FG_ERR_UNSUPPORTED, "the output would have rank %d; at most %d is supported", rank,
                        FG_MAX_RANK);
    FG_TRY(tensor_normalise_axes(call, axes, n, rank));
    int inserted[FG_MAX_RANK] = {0};
    for (int i = 0; i < n; i++)
        inserted[axes[i]] = 1;
    int64_t dims[FG_MAX_RANK];
    int src = 0;
    for (int d = 0; d < rank; d++)
        dims[d] = inserted[d] ? 1 : in->dims[src++];
    set_output(call, 0, in->dtype, rank, dims);
    return NULL;
}

static fg_status *identity_infer(op_call *call)
{
    set_output(call, 0, call->in[0].dtype, call->in[0].rank, call->in[0].dims);
    return NULL;
}

static fg_status *dropout_infer(op_call *call)
{
    if (op_has_input(call, 2))
        OP_REQUIRE_VALUE(call, 2);
    /* Inference only: a constant training_mode=true with a non-zero ratio
     * would need random masks. */
    if (op_has_input(call, 2) && call->in[2].data && fg_tensor_numel(&call->in[2]) > 0 &&
        fg_load_i64(call->in[2].dtype, call->in[2].data, 0) != 0) {
        double ratio = 0.5;
        if (op_has_input(call, 1) && call->in[1].data && fg_tensor_numel(&call->in[1]) > 0)
            ratio = fg_load_f64(call->in[1].dtype, call->in[1].data, 0);
        if (ratio != 0)
            return op_error(call, FG_ERR_UNSUPPORTED,
                            "training_mode=true (random dropout) is not supported; export the model for inference");
    }
    set_output(call, 0, call->in[0].dtype, call->in[0].rank, call->in[0].dims);
    if (call->n_out > 1)
        set_output(call, 1, FG_BOOL, call->in[0].rank, call->in[0].dims);
    return NULL;
}

static fg_status *dropout_run(op_call *call)
{
    FG_TRY(run_copy_input(call));
    if (call->n_out > 1 && call->out[1].data)
        memset(call->out[1].data, 1, (size_t)fg_tensor_numel(&call->in[0]));
    return NULL;
}

/* ------------------------------------------------------------ Transpose */

static fg_status *transpose_perm(const op_call *call, int *perm)
{
    int rank = call->in[0].rank;
    const int64_t *values;
    int n = ir_attr_ints(call->node, "perm", &values);
    if (!ir_attr_find(call->node, "perm")) {
        for (int d = 0; d < rank; d++)
            perm[d] = rank - 1 - d;
        return NULL;
    }
    if (n != rank)
        return op_error(call, FG_ERR_SHAPE, "perm has %d entries but the input has rank %d", n, rank);
    int seen[FG_MAX_RANK] = {0};
    for (int d = 0; d < rank; d++) {
        int64_t p = values[d] < 0 ? values[d] + rank : values[d];
        if (p < 0 || p >= rank || seen[p])
            return op_error(call, FG_ERR_INVALID_ARGUMENT, "perm is not a permutation of 0..%d", rank - 1);
        seen[p] = 1;
        perm[d] = (int)p;
    }
    return NULL;
}

static fg_status *transpose_infer(op_call *call)
{
    int perm[FG_MAX_RANK];
    FG_TRY(transpose_perm(call, perm));
    int64_t dims[FG_MAX_RANK];
    for (int d = 0; d < call->in[0].rank; d++)
        dims[d] = call->in[0].dims[perm[d]];
    /* moving only axes of size 1 keeps the order of the elements ([1,1,H,W] -> [1,H,W,1]: a
       detection head's score map): the output is the input's bytes */
    int last = -1, same_order = 1;
    for (int d = 0; d < call->in[0].rank; d++) {
        if (dims[d] == 1)
            continue;
        same_order &= perm[d] > last;
        last = perm[d];
    }
    call->out_is_input = same_order;
    set_output(call, 0, call->in[0].dtype, call->in[0].rank, dims);
    return NULL;
}

static fg_status *transpose_run(op_call *call)
{
    fg_status *err;
    size_t esize = element_size(call, 0, &err);
    if (err)
        return err;
    int perm[FG_MAX_RANK];
    FG_TRY(transpose_perm(call, perm));
    const fg_tensor *in = &call->in[0];
    int64_t in_st[FG_MAX_RANK], dims[FG_MAX_RANK], st[FG_MAX_RANK];
    contiguous_strides(in->rank, in->dims, in_st);
    for (int d = 0; d < in->rank; d++) {
        dims[d] = in->dims[perm[d]];
        st[d] = in_st[perm[d]];
    }
    strided_copy(call->out[0].data, in->data, esize, in->rank, dims, st, thread_count(call));
    return NULL;
}

/* ------------------------------------------------------------ Concat, Split */

static fg_status *concat_infer(op_call *call)
{
    if (call->n_in < 1)
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "Concat needs at least one input");
    const fg_tensor *first = &call->in[0];
    int axis;
    FG_TRY(op_axis(call, ir_attr_int(call->node, "axis", 0), first->rank, &axis));
    if (first->rank == 0)
        return op_error(call, FG_ERR_SHAPE, "cannot concatenate scalars");
    int64_t dims[FG_MAX_RANK];
    memcpy(dims, first->dims, sizeof dims);
    dims[axis] = 0;
    for (int i = 0; i < call->n_in; i++) {
        const fg_tensor *t = &call->in[i];
        if (t->dtype != first->dtype)
            return op_error(call, FG_ERR_DTYPE, "input %d is %s but input 0 is %s", i, fg_dtype_name(t->dtype),
                            fg_dtype_name(first->dtype));
        int mismatch = t->rank != first->rank;
        for (int d = 0; d < first->rank && !mismatch; d++)
            mismatch = d != axis && t->dims[d] != first->dims[d];
        if (mismatch) {
            char a[128], b[128];
            fg_shape_format(first->rank, first->dims, a, sizeof a);
            fg_shape_format(t->rank, t->dims, b, sizeof b);
            return op_error(call, FG_ERR_SHAPE, "input %d has shape %s, which does not match input 0 (%s) off axis %d",
                            i, b, a, axis);
        }
        dims[axis] += t->dims[axis];
    }
    set_output(call, 0, first->dtype, first->rank, dims);
    return NULL;
}

static fg_status *concat_run(op_call *call)
{
    fg_status *err;
    size_t esize = element_size(call, 0, &err);
    if (err)
        return err;
    const fg_tensor *out = &call->out[0];
    int axis;
    FG_TRY(op_axis(call, ir_attr_int(call->node, "axis", 0), out->rank, &axis));
    int64_t outer = fg_shape_numel(axis, out->dims);
    int64_t inner = fg_shape_numel(out->rank - axis - 1, out->dims + axis + 1) * (int64_t)esize;
    int64_t out_row = out->dims[axis] * inner;
    int threads = thread_count(call);
    char *dst = (char *)out->data;
    int64_t total = outer * out_row;
    if (total == 0)
        return NULL;
    if (outer >= threads || total < PARALLEL_BYTES || threads == 1) {
#pragma omp parallel for num_threads(threads) if (threads > 1 && total >= PARALLEL_BYTES) schedule(static)
        for (int64_t o = 0; o < outer; o++) {
            int64_t offset = 0;
            for (int i = 0; i < call->n_in; i++) {
                int64_t chunk = call->in[i].dims[axis] * inner;
                if (chunk)
                    memcpy(dst + o * out_row + offset, (const char *)call->in[i].data + o * chunk, (size_t)chunk);
                offset += chunk;
            }
        }
        return NULL;
    }
    for (int64_t o = 0; o < outer; o++) {
        int64_t offset = 0;
        for (int i = 0; i < call->n_in; i++) {
            int64_t chunk = call->in[i].dims[axis] * inner;
            if (chunk)
                parallel_memcpy(dst + o * out_row + offset, (const char *)call->in[i].data + o * chunk,
                                (size_t)chunk, threads);
            offset += chunk;
        }
    }
    return NULL;
}

static fg_status *split_infer(op_call *call)
{
    const fg_tensor *in = &call->in[0];
    int axis;
    FG_TRY(op_axis(call, ir_attr_int(call->node, "axis", 0), in->rank, &axis));
    int n_out = call->n_out;
    int64_t sizes[256];
    if (n_out > 256)
        return op_error(call, FG_ERR_UNSUPPORTED, "Split into %d outputs; at most 256 are supported", n_out);
    int have_sizes = 0, count = 0;
    if (call->opset >= 13) {
        if (op_has_input(call, 1)) {
            OP_REQUIRE_VALUE(call, 1);
            FG_TRY(tensor_read_int_input(call, 1, sizes, 256, &count));
            have_sizes = 1;
        }
    } else if (ir_attr_find(call->node, "split")) {
        const int64_t *values;
        count = ir_attr_ints(call->node, "split", &values);
        if (count > 256)
            return op_error(call, FG_ERR_UNSUPPORTED, "split has %d entries; at most 256 are supported", count);
        memcpy(sizes, values, (size_t)count * sizeof *sizes);
        have_sizes = 1;
    }
    int64_t dim = in->dims[axis];
    if (have_sizes) {
        if (count != n_out)
            return op_error(call, FG_ERR_SHAPE, "split lists %d sizes for %d outputs", count, n_out);
        int64_t sum = 0;
        for (int i = 0; i < count; i++) {
            if (sizes[i] < 0)
                return op_error(call, FG_ERR_SHAPE, "split size %lld is negative", (long long)sizes[i]);
            sum += sizes[i];
        }
        if (sum != dim)
            return op_error(call, FG_ERR_SHAPE, "split sizes add up to %lld but axis %d has size %lld",
                            (long long)sum, axis, (long long)dim);
    } else {
        int64_t chunk = (dim + n_out - 1) / n_out;
        if (!ir_attr_find(call->node, "num_outputs") && dim % n_out != 0)
            return op_error(call, FG_ERR_SHAPE, "axis %d of size %lld cannot be split evenly into %d outputs", axis,
                            (long long)dim, n_out);
        int64_t left = dim;
        for (int i = 0; i < n_out; i++) {
            sizes[i] = left < chunk ? left : chunk;
            left -= sizes[i];
        }
    }
    for (int i = 0; i < n_out; i++) {
        int64_t dims[FG_MAX_RANK];
        memcpy(dims, in->dims, sizeof dims);
        dims[axis] = sizes[i];
        set_output(call, i, in->dtype, in->rank, dims);
    }
    return NULL;
}

static fg_status *split_run(op_call *call)
{
    fg_status *err;
    size_t esize = element_size(call, 0, &err);
    if (err)
        return err;
    const fg_tensor *in = &call->in[0];
    int axis;
    FG_TRY(op_axis(call, ir_attr_int(call->node, "axis", 0), in->rank, &axis));
    int64_t outer = fg_shape_numel(axis, in->dims);
    int64_t inner = fg_shape_numel(in->rank - axis - 1, in->dims + axis + 1) * (int64_t)esize;
    int64_t in_row = in->dims[axis] * inner;
    int threads = thread_count(call);
    int64_t total = outer * in_row;
    const char *src = (const char *)in->data;
    if (total == 0)
        return NULL;
    if (outer >= threads || total < PARALLEL_BYTES || threads == 1) {
#pragma omp parallel for num_threads(threads) if (threads > 1 && total >= PARALLEL_BYTES) schedule(static)
        for (int64_t o = 0; o < outer; o++) {
            int64_t offset = 0;
            for (int i = 0; i < call->n_out; i++) {
                int64_t chunk = call->out[i].dims[axis] * inner;
                if (chunk && call->out[i].data)
                    memcpy((char *)call->out[i].data + o * chunk, src + o * in_row + offset, (size_t)chunk);
                offset += chunk;
            }
        }
        return NULL;
    }
    for (int64_t o = 0; o < outer; o++) {
        int64_t offset = 0;
        for (int i = 0; i < call->n_out; i++) {
            int64_t chunk = call->out[i].dims[axis] * inner;
            if (chunk && call->out[i].data)
                parallel_memcpy((char *)call->out[i].data + o * chunk, src + o * in_row + offset, (size_t)chunk,
                                threads);
            offset += chunk;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------ Slice */

static fg_status *slice_infer(op_call *call)
{
    slice_params p;
    FG_TRY(slice_params_get(call, &p));
    set_output(call, 0, call->in[0].dtype, call->in[0].rank, p.count);
    return NULL;
}

static fg_status *slice_run(op_call *call)
{
    fg_status *err;
    size_t esize = element_size(call, 0, &err);
    if (err)
        return err;
    slice_params p;
    FG_TRY(slice_params_get(call, &p));
    const fg_tensor *in = &call->in[0];
    int64_t in_st[FG_MAX_RANK], st[FG_MAX_RANK], offset = 0;
    contiguous_strides(in->rank, in->dims, in_st);
    for (int d = 0; d < in->rank; d++) {
        st[d] = in_st[d] * p.step[d];
        offset += p.start[d] * in_st[d];
    }
    if (fg_shape_numel(in->rank, p.count) == 0)
        return NULL;
    strided_copy(call->out[0].data, (const char *)in->data + offset * (int64_t)esize, esize, in->rank, p.count, st,
                 thread_count(call));
    return NULL;
}

/* ------------------------------------------------------------ Gather, GatherElements, ScatterND */

static fg_status *gather_infer(op_call *call)
{
    const fg_tensor *data = &call->in[0], *idx = &call->in[1];
    int axis;
    FG_TRY(op_axis(call, ir_attr_int(call->node, "axis", 0), data->rank, &axis));
    if (!tensor_dtype_is_integer(idx->dtype))
        return op_error(call, FG_ERR_DTYPE, "indices must be integers, got %s", fg_dtype_name(idx->dtype));
    int rank = data->rank + idx->rank - 1;
    if (rank > FG_MAX_RANK)
        return op_error(call, FG_ERR_UNSUPPORTED, "the output would have rank %d; at most %d is supported", rank,
                        FG_MAX_RANK);
    int64_t dims[FG_MAX_RANK];
    int r = 0;
    for (int d = 0; d < axis; d++)
        dims[r++] = data->dims[d];
    for (int d = 0; d < idx->rank; d++)
        dims[r++] = idx->dims[d];
    for (int d = axis + 1; d < data->rank; d++)
        dims[r++] = data->dims[d];
    set_output(call, 0, data->dtype, rank, dims);
    return NULL;
}

static fg_status *check_indices(const op_call *call, const fg_tensor *idx, int64_t dim, int axis)
{
    int64_t n = fg_tensor_numel(idx);
    for (int64_t i = 0; i < n; i++) {
        int64_t v = fg_load_i64(idx->dtype, idx->data, i);
        if (v < -dim || v >= dim)
            return op_error(call, FG_ERR_INVALID_ARGUMENT, "index %lld is out of range for axis %d of size %lld",
                            (long long)v, axis, (long long)dim);
    }
    return NULL;
}

static fg_status *gather_run(op_call *call)
{
    fg_status *err;
    size_t esize = element_size(call, 0, &err);
    if (err)
        return err;
    const fg_tensor *data = &call->in[0], *idx = &call->in[1];
    int axis;
    FG_TRY(op_axis(call, ir_attr_int(call->node, "axis", 0), data->rank, &axis));
    int64_t dim = data->dims[axis];
    FG_TRY(check_indices(call, idx, dim, axis));
    int64_t outer = fg_shape_numel(axis, data->dims);
    int64_t inner = fg_shape_numel(data->rank - axis - 1, data->dims + axis + 1) * (int64_t)esize;
    int64_t n_idx = fg_tensor_numel(idx);
    int64_t units = outer * n_idx;
    const char *src = (const char *)data->data;
    char *dst = (char *)call->out[0].data;
    int threads = thread_count(call);
    fg_dtype idx_type = idx->dtype;
    const void *idx_data = idx->data;
#pragma omp parallel for num_threads(threads) if (threads > 1 && units * inner >= PARALLEL_BYTES) schedule(static)
    for (int64_t u = 0; u < units; u++) {
        int64_t o = u / n_idx, j = u % n_idx;
        int64_t v = fg_load_i64(idx_type, idx_data, j);
        if (v < 0)
            v += dim;
        const char *s = src + (o * dim + v) * inner;
        char *d = dst + u * inner;
        switch (inner) {
        case 4: memcpy(d, s, 4); break;
        case 8: memcpy(d, s, 8); break;
        default: memcpy(d, s, (size_t)inner);
        }
    }
    return NULL;
}

static fg_status *gather_elements_infer(op_call *call)
{
    const fg_tensor *data = &call->in[0], *idx = &call->in[1];
    int axis;
    FG_TRY(op_axis(call, ir_attr_int(call->node, "axis", 0), data->rank, &axis));
    if (idx->rank != data->rank)
        return op_error(call, FG_ERR_SHAPE, "indices have rank %d but data has rank %d", idx->rank, data->rank);
    if (!tensor_dtype_is_integer(idx->dtype))
        return op_error(call, FG_ERR_DTYPE, "indices must be integers, got %s", fg_dtype_name(idx->dtype));
    set_output(call, 0, data->dtype, idx->rank, idx->dims);
    return NULL;
}

static fg_status *gather_elements_run(op_call *call)
{
    fg_status *err;
    size_t esize = element_size(call, 0, &err);
    if (err)
        return err;
    const fg_tensor *data = &call->in[0], *idx = &call->in[1];
    int axis;
    FG_TRY(op_axis(call, ir_attr_int(call->node, "axis", 0), data->rank, &axis));
    int64_t dim = data->dims[axis];
    FG_TRY(check_indices(call, idx, dim, axis));
    int64_t st[FG_MAX_RANK];
    contiguous_strides(data->rank, data->dims, st);
    int rank = idx->rank;
    int64_t n = fg_tensor_numel(idx);
    int64_t coord[FG_MAX_RANK] = {0};
    const char *src = (const char *)data->data;
    char *dst = (char *)call->out[0].data;
    int64_t base = 0; /* offset of coord with the axis coordinate left out */
    for (int64_t i = 0; i < n; i++) {
        int64_t v = fg_load_i64(idx->dtype, idx->data, i);
        if (v < 0)
            v += dim;
        memcpy(dst + i * (int64_t)esize, src + (base + v * st[axis]) * (int64_t)esize, esize);
        for (int d = rank - 1; d >= 0; d--) {
            coord[d]++;
            if (d != axis)
                base += st[d];
            if (coord[d] < idx->dims[d])
                break;
            if (d != axis)
                base -= st[d] * idx->dims[d];
            coord[d] = 0;
        }
    }
    return NULL;
}

static fg_status *scatter_nd_infer(op_call *call)
{
    const fg_tensor *data = &call->in[0], *idx = &call->in[1], *upd = &call->in[2];
    if (!tensor_dtype_is_integer(idx->dtype))
        return op_error(call, FG_ERR_DTYPE, "indices must be integers, got %s", fg_dtype_name(idx->dtype));
    if (idx->rank < 1)
        return op_error(call, FG_ERR_SHAPE, "indices must have rank 1 or more");
    int64_t k = idx->dims[idx->rank - 1];
    if (k > data->rank)
        return op_error(call, FG_ERR_SHAPE, "index tuples of length %lld exceed the data rank %d", (long long)k,
                        data->rank);
    int want_rank = idx->rank - 1 + data->rank - (int)k;
    int ok = upd->rank == want_rank;
    for (int d = 0; ok && d < idx->rank - 1; d++)
        ok = upd->dims[d] == idx->dims[d];
    for (int d = 0; ok && d < data->rank - (int)k; d++)
        ok = upd->dims[idx->rank - 1 + d] == data->dims[k + d];
    if (!ok)
        return op_error(call, FG_ERR_SHAPE, "updates do not have the shape indices[:-1] + data[k:]");
    const char *reduction = ir_attr_string(call->node, "reduction", "none");
    if (strcmp(reduction, "none") && strcmp(reduction, "add") && strcmp(reduction, "mul") &&
        strcmp(reduction, "max") && strcmp(reduction, "min"))
        return op_error(call, FG_ERR_UNSUPPORTED, "reduction '%s' is not supported", reduction);
    set_output(call, 0, data->dtype, data->rank, data->dims);
    return NULL;
}

static fg_status *scatter_nd_run(op_call *call)
{
    fg_status *err;
    size_t esize = element_size(call, 0, &err);
    if (err)
        return err;
    const fg_tensor *data = &call->in[0], *idx = &call->in[1], *upd = &call->in[2];
    char *dst = (char *)call->out[0].data;
    if (dst != data->data)
        parallel_memcpy(dst, (const char *)data->data, fg_tensor_nbytes(data), thread_count(call));
    int k = (int)idx->dims[idx->rank - 1];
    int64_t st[FG_MAX_RANK];
    contiguous_strides(data->rank, data->dims, st);
    int64_t slice = fg_shape_numel(data->rank - k, data->dims + k);
    int64_t tuples = k ? fg_tensor_numel(idx) / k : fg_shape_numel(idx->rank - 1, idx->dims);
    const char *reduction = ir_attr_string(call->node, "reduction", "none");
    int mode = !strcmp(reduction, "add") ? 1 : !strcmp(reduction, "mul") ? 2 : !strcmp(reduction, "max") ? 3
             : !strcmp(reduction, "min") ? 4 : 0;
    for (int64_t t = 0; t < tuples; t++) {
        int64_t offset = 0;
        for (int j = 0; j < k; j++) {
            int64_t v = fg_load_i64(idx->dtype, idx->data, t * k + j);
            if (v < 0)
                v += data->dims[j];
            if (v < 0 || v >= data->dims[j])
                return op_error(call, FG_ERR_INVALID_ARGUMENT, "index %lld is out of range for axis %d of size %lld",
                                (long long)fg_load_i64(idx->dtype, idx->data, t * k + j), j,
                                (long long)data->dims[j]);
            offset += v * st[j];
        }
        if (mode == 0) {
            memcpy(dst + offset * (int64_t)esize, (const char *)upd->data + t * slice * (int64_t)esize,
                   (size_t)(slice * (int64_t)esize));
            continue;
        }
        for (int64_t e = 0; e < slice; e++) {
            double a = fg_load_f64(data->dtype, dst, offset + e), b = fg_load_f64(upd->dtype, upd->data, t * slice + e);
            double r = mode == 1 ? a + b : mode == 2 ? a * b : mode == 3 ? (a > b ? a : b) : (a < b ? a : b);
            fg_store_f64(data->dtype, dst, offset + e, r);
        }
    }
    return NULL;
}

static fg_status *gather_nd_infer(op_call *call)
{
    const fg_tensor *data = &call->in[0], *idx = &call->in[1];
    int64_t batch_dims = ir_attr_int(call->node, "batch_dims", 0);
    if (!tensor_dtype_is_integer(idx->dtype))
        return op_error(call, FG_ERR_DTYPE, "indices must be integers, got %s", fg_dtype_name(idx->dtype));
    if (idx->rank < 1 || batch_dims < 0 || batch_dims >= idx->rank || batch_dims >= data->rank)
        return op_error(call, FG_ERR_SHAPE, "batch_dims %lld does not fit indices of rank %d and data of rank %d",
                        (long long)batch_dims, idx->rank, data->rank);
    int64_t k = idx->dims[idx->rank - 1];
    if (k < 1 || batch_dims + k > data->rank)
        return op_error(call, FG_ERR_SHAPE, "index tuples of length %lld do not fit data of rank %d", (long long)k,
                        data->rank);
    for (int d = 0; d < batch_dims; d++)
        if (idx->dims[d] != data->dims[d])
            return op_error(call, FG_ERR_SHAPE, "batch axis %d differs between data and indices", d);
    int rank = idx->rank - 1 + data->rank - (int)(batch_dims + k);
    if (rank > FG_MAX_RANK)
        return op_error(call, FG_ERR_UNSUPPORTED, "the output would have rank %d", rank);
    int64_t dims[FG_MAX_RANK];
    int r = 0;
    for (int d = 0; d < idx->rank - 1; d++)
        dims[r++] = idx->dims[d];
    for (int d = (int)(batch_dims + k); d < data->rank; d++)
        dims[r++] = data->dims[d];
    set_output(call, 0, data->dtype, rank, dims);
    return NULL;
}

static fg_status *gather_nd_run(op_call *call)
{
    fg_status *err;
    size_t esize = element_size(call, 0, &err);
    if (err)
        return err;
    const fg_tensor *data = &call->in[0], *idx = &call->in[1];
    int b = (int)ir_attr_int(call->node, "batch_dims", 0);
    int k = (int)idx->dims[idx->rank - 1];
    int64_t st[FG_MAX_RANK];
    contiguous_strides(data->rank, data->dims, st);
    int64_t batches = fg_shape_numel(b, data->dims);
    int64_t batch_stride = fg_shape_numel(data->rank - b, data->dims + b);
    int64_t tuples = fg_shape_numel(idx->rank - 1 - b, idx->dims + b);
    int64_t slice = fg_shape_numel(data->rank - b - k, data->dims + b + k) * (int64_t)esize;
    const char *src = (const char *)data->data;
    char *dst = (char *)call->out[0].data;
    for (int64_t bi = 0; bi < batches; bi++)
        for (int64_t t = 0; t < tuples; t++) {
            int64_t offset = bi * batch_stride, at = (bi * tuples + t) * k;
            for (int j = 0; j < k; j++) {
                int64_t dim = data->dims[b + j], v = fg_load_i64(idx->dtype, idx->data, at + j);
                if (v < -dim || v >= dim)
                    return op_error(call, FG_ERR_INVALID_ARGUMENT,
                                    "index %lld is out of range for axis %d of size %lld", (long long)v, b + j,
                                    (long long)dim);
                offset += (v < 0 ? v + dim : v) * st[b + j];
            }
            memcpy(dst + (bi * tuples + t) * slice, src + offset * (int64_t)esize, (size_t)slice);
        }
    return NULL;
}

static int reduction_mode(const ir_node *node)
{
    const char *r = ir_attr_string(node, "reduction", "none");
    return !strcmp(r, "none") ? 0 : !strcmp(r, "add") ? 1 : !strcmp(r, "mul") ? 2 : !strcmp(r, "max") ? 3
         : !strcmp(r, "min") ? 4 : -1;
}

static void reduce_element(fg_dtype dtype, void *dst, int64_t at, fg_dtype src_type, const void *src, int64_t from,
                           int mode, size_t esize)
{
    if (mode == 0) {
        memcpy((char *)dst + at * (int64_t)esize, (const char *)src + from * (int64_t)esize, esize);
        return;
    }
    double a = fg_load_f64(dtype, dst, at), b = fg_load_f64(src_type, src, from);
    double r = mode == 1 ? a + b : mode == 2 ? a * b : mode == 3 ? (a > b ? a : b) : (a < b ? a : b);
    fg_store_f64(dtype, dst, at, r);
}

static fg_status *scatter_elements_infer(op_call *call)
{
    const fg_tensor *data = &call->in[0], *idx = &call->in[1], *upd = &call->in[2];
    int axis;
    FG_TRY(op_axis(call, ir_attr_int(call->node, "axis", 0), data->rank, &axis));
    if (!tensor_dtype_is_integer(idx->dtype))
        return op_error(call, FG_ERR_DTYPE, "indices must be integers, got %s", fg_dtype_name(idx->dtype));
    if (idx->rank != data->rank || !fg_shape_equal(idx->rank, idx->dims, upd->rank, upd->dims))
        return op_error(call, FG_ERR_SHAPE, "indices and updates must have the same shape and the data's rank");
    if (upd->dtype != data->dtype)
        return op_error(call, FG_ERR_DTYPE, "updates are %s but data is %s", fg_dtype_name(upd->dtype),
                        fg_dtype_name(data->dtype));
    if (reduction_mode(call->node) < 0)
        return op_error(call, FG_ERR_UNSUPPORTED, "reduction '%s' is not supported",
                        ir_attr_string(call->node, "reduction", ""));
    set_output(call, 0, data->dtype, data->rank, data->dims);
    return NULL;
}

static fg_status *scatter_elements_run(op_call *call)
{
    fg_status *err;
    size_t esize = element_size(call, 0, &err);
    if (err)
        return err;
    const fg_tensor *data = &call->in[0], *idx = &call->in[1], *upd = &call->in[2];
    int axis;
    FG_TRY(op_axis(call, ir_attr_int(call->node, "axis", 0), data->rank, &axis));
    int64_t dim = data->dims[axis];
    FG_TRY(check_indices(call, idx, dim, axis));
    char *dst = (char *)call->out[0].data;
    if (dst != data->data)
        parallel_memcpy(dst, (const char *)data->data, fg_tensor_nbytes(data), thread_count(call));
    int mode = reduction_mode(call->node);
    int64_t st[FG_MAX_RANK], coord[FG_MAX_RANK] = {0};
    contiguous_strides(data->rank, data->dims, st);
    int64_t n = fg_tensor_numel(idx), base = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t v = fg_load_i64(idx->dtype, idx->data, i);
        if (v < 0)
            v += dim;
        reduce_element(data->dtype, dst, base + v * st[axis], upd->dtype, upd->data, i, mode, esize);
        for (int d = idx->rank - 1; d >= 0; d--) {
            coord[d]++;
            if (d != axis)
                base += st[d];
            if (coord[d] < idx->dims[d])
                break;
            if (d != axis)
                base -= st[d] * idx->dims[d];
            coord[d] = 0;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------ Expand, Tile */

static fg_status *expand_shape(op_call *call, int *rank, int64_t *dims)
{
    OP_REQUIRE_VALUE(call, 1);
    fg_tensor shape = {0};
    int n = 0;
    FG_TRY(tensor_read_int_input(call, 1, shape.dims, FG_MAX_RANK, &n));
    shape.rank = n;
    shape.dtype = FG_INT64;
    const fg_tensor *inputs[2] = {&call->in[0], &shape};
    return op_broadcast_shape(call, 2, inputs, rank, dims);
}

static fg_status *expand_infer(op_call *call)
{
    int rank;
    int64_t dims[FG_MAX_RANK];
    FG_TRY(expand_shape(call, &rank, dims));
    set_output(call, 0, call->in[0].dtype, rank, dims);
    return NULL;
}

static fg_status *expand_run(op_call *call)
{
    fg_status *err;
    size_t esize = element_size(call, 0, &err);
    if (err)
        return err;
    const fg_tensor *out = &call->out[0];
    int64_t st[FG_MAX_RANK];
    op_broadcast_strides(&call->in[0], out->rank, out->dims, st);
    strided_copy(out->data, call->in[0].data, esize, out->rank, out->dims, st, thread_count(call));
    return NULL;
}

static fg_status *tile_infer(op_call *call)
{
    OP_REQUIRE_VALUE(call, 1);
    const fg_tensor *in = &call->in[0];
    int64_t repeats[FG_MAX_RANK];
    int n = 0;
    FG_TRY(tensor_read_int_input(call, 1, repeats, FG_MAX_RANK, &n));
    if (n != in->rank)
        return op_error(call, FG_ERR_SHAPE, "repeats has %d entries but the input has rank %d", n, in->rank);
    int64_t dims[FG_MAX_RANK];
    for (int d = 0; d < n; d++) {
        if (repeats[d] < 0)
            return op_error(call, FG_ERR_INVALID_ARGUMENT, "repeat %lld on axis %d is negative", (long long)repeats[d],
                            d);
        dims[d] = in->dims[d] * repeats[d];
    }
    set_output(call, 0, in->dtype, in->rank, dims);
    return NULL;
}

static fg_status *tile_run(op_call *call)
{
    fg_status *err;
    size_t esize = element_size(call, 0, &err);
    if (err)
        return err;
    const fg_tensor *in = &call->in[0], *out = &call->out[0];
    int64_t in_st[FG_MAX_RANK], dims[COPY_MAX_RANK], st[COPY_MAX_RANK];
    contiguous_strides(in->rank, in->dims, in_st);
    for (int d = 0; d < in->rank; d++) {
        dims[2 * d] = in->dims[d] ? out->dims[d] / in->dims[d] : 0;
        st[2 * d] = 0;
        dims[2 * d + 1] = in->dims[d];
        st[2 * d + 1] = in_st[d];
    }
    strided_copy(out->data, in->data, esize, 2 * in->rank, dims, st, thread_count(call));
    return NULL;
}

/* ------------------------------------------------------------ Pad */

enum pad_mode { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP };

static fg_status *pad_mode_of(const ir_node *node, int64_t opset, int *mode)
{
    const char *m = ir_attr_string(node, "mode", "constant");
    if (!strcmp(m, "constant")) *mode = PAD_CONSTANT;
    else if (!strcmp(m, "reflect")) *mode = PAD_REFLECT;
    else if (!strcmp(m, "edge")) *mode = PAD_EDGE;
    else if (!strcmp(m, "wrap")) *mode = PAD_WRAP;
    else
        return op_node_error(node, opset, FG_ERR_UNSUPPORTED,
                             "pad mode '%s' is not supported (use constant, reflect, edge or wrap)", m);
    return NULL;
}

static fg_status *pad_check(const ir_node *node, int64_t opset)
{
    int mode;
    return pad_mode_of(node, opset, &mode);
}

/* begin[d], end[d] pads per axis (negative crops). */
static fg_status *pad_amounts(op_call *call, int64_t *begin, int64_t *end)
{
    const fg_tensor *in = &call->in[0];
    int rank = in->rank;
    int64_t pads[2 * FG_MAX_RANK];
    int n = 0;
    if (call->opset < 11) {
        const int64_t *v;
        n = ir_attr_ints(call->node, "pads", &v);
        if (n > 2 * FG_MAX_RANK)
            n = 2 * FG_MAX_RANK + 1;
        else
            memcpy(pads, v, (size_t)n * sizeof *v);
    } else {
        OP_REQUIRE_VALUE(call, 1);
        FG_TRY(tensor_read_int_input(call, 1, pads, 2 * FG_MAX_RANK, &n));
    }
    int64_t axes[FG_MAX_RANK];
    int n_axes = rank;
    if (op_has_input(call, 3)) {
        OP_REQUIRE_VALUE(call, 3);
        FG_TRY(tensor_read_int_input(call, 3, axes, FG_MAX_RANK, &n_axes));
        FG_TRY(tensor_normalise_axes(call, axes, n_axes, rank));
    } else {
        for (int d = 0; d < rank; d++)
            axes[d] = d;
    }
    if (n != 2 * n_axes)
        return op_error(call, FG_ERR_SHAPE, "pads has %d entries; %d axes need %d", n, n_axes, 2 * n_axes);
    for (int d = 0; d < rank; d++)
        begin[d] = end[d] = 0;
    for (int i = 0; i < n_axes; i++) {
        begin[axes[i]] = pads[i];
        end[axes[i]] = pads[i + n_axes];
    }
    return NULL;
}

static fg_status *pad_infer(op_call *call)
{
    const fg_tensor *in = &call->in[0];
    int mode;
    FG_TRY(pad_mode_of(call->node, call->opset, &mode));
    int64_t begin[FG_MAX_RANK], end[FG_MAX_RANK], dims[FG_MAX_RANK];
    FG_TRY(pad_amounts(call, begin, end));
    for (int d = 0; d < in->rank; d++) {
        dims[d] = in->dims[d] + begin[d] + end[d];
        if (dims[d] < 0)
            return op_error(call, FG_ERR_SHAPE, "pads %lld and %lld crop axis %d of size %lld below zero",
                            (long long)begin[d], (long long)end[d], d, (long long)in->dims[d]);
        if (mode != PAD_CONSTANT && in->dims[d] == 0 && dims[d] > 0)
            return op_error(call, FG_ERR_SHAPE, "cannot pad empty axis %d in this mode", d);
    }
    int zero = 1;
    for (int d = 0; d < in->rank; d++)
        zero &= begin[d] == 0 && end[d] == 0;
    call->out_is_input = zero; /* pfld_68 pads by zeros before its pooling */
    set_output(call, 0, in->dtype, in->rank, dims);
    return NULL;
}

static inline int64_t pad_source_index(int64_t i, int64_t n, int mode)
{
    if (i >= 0 && i < n)
        return i;
    switch (mode) {
    case PAD_EDGE: return i < 0 ? 0 : n - 1;
    case PAD_WRAP: return ((i % n) + n) % n;
    case PAD_REFLECT: {
        if (n == 1)
            return 0;
        int64_t period = 2 * (n - 1);
        i = ((i % period) + period) % period;
        return i < n ? i : period - i;
    }
    default: return -1;
    }
}

static fg_status *pad_run(op_call *call)
{
    fg_status *err;
    size_t esize = element_size(call, 0, &err);
    if (err)
        return err;
    int mode;
    FG_TRY(pad_mode_of(call->node, call->opset, &mode));
    const fg_tensor *in = &call->in[0], *out = &call->out[0];
    int64_t begin[FG_MAX_RANK], end[FG_MAX_RANK];
    FG_TRY(pad_amounts(call, begin, end));
    unsigned char value[16] = {0};
    if (mode == PAD_CONSTANT) {
        if (call->opset < 11) {
            fg_store_f64(in->dtype, value, 0, ir_attr_float(call->node, "value", 0.0f));
        } else if (op_has_input(call, 2) && call->in[2].data && fg_tensor_numel(&call->in[2]) > 0) {
            if (call->in[2].dtype != in->dtype)
                fg_store_f64(in->dtype, value, 0, fg_load_f64(call->in[2].dtype, call->in[2].data, 0));
            else
                memcpy(value, call->in[2].data, esize);
        }
    }
    int rank = in->rank;
    int64_t numel = fg_tensor_numel(out);
    if (numel == 0)
        return NULL;
    if (rank == 0) {
        memcpy(out->data, in->data, esize);
        return NULL;
    }
    int64_t in_st[FG_MAX_RANK];
    contiguous_strides(rank, in->dims, in_st);
    int64_t width = out->dims[rank - 1], in_width = in->dims[rank - 1], left = begin[rank - 1];
    int64_t rows = numel / width;
    /* Output columns [mid0, mid1) come straight from the input row. */
    int64_t mid0 = left > 0 ? left : 0, mid1 = left + in_width < width ? left + in_width : width;
    if (mid1 < mid0)
        mid1 = mid0;
    const char *src = (const char *)in->data;
    char *dst = (char *)out->data;
    int threads = thread_count(call);
    int64_t es = (int64_t)esize;
#pragma omp parallel for num_threads(threads) if (threads > 1 && numel * es >= PARALLEL_BYTES) schedule(static)
    for (int64_t row = 0; row < rows; row++) {
        char *d = dst + row * width * es;
        int64_t t = row, off = 0;
        int outside = 0;
        for (int a = rank - 2; a >= 0; a--) {
            int64_t o = t % out->dims[a];
            t /= out->dims[a];
            int64_t i = pad_source_index(o - begin[a], in->dims[a], mode);
            if (i < 0) {
                outside = 1;
                break;
            }
            off += i * in_st[a];
        }
        if (outside || (in_width == 0 && mode == PAD_CONSTANT)) {
            fill_elements(d, width, value, esize);
            continue;
        }
        const char *s = src + off * es;
        if (mid1 > mid0)
            memcpy(d + mid0 * es, s + (mid0 - left) * es, (size_t)((mid1 - mid0) * es));
        if (mode == PAD_CONSTANT) {
            fill_elements(d, mid0, value, esize);
            fill_elements(d + mid1 * es, width - mid1, value, esize);
        } else {
            for (int64_t o = 0; o < mid0; o++)
                memcpy(d + o * es, s + pad_source_index(o - left, in_width, mode) * es, esize);
            for (int64_t o = mid1; o < width; o++)
                memcpy(d + o * es, s + pad_source_index(o - left, in_width, mode) * es, esize);
        }
    }
    return NULL;
}

/* ------------------------------------------------------------ ConstantOfShape, Range */

static fg_status *constant_of_shape_infer(op_call *call)
{
    OP_REQUIRE_VALUE(call, 0);
    int64_t dims[FG_MAX_RANK];
    int n = 0;
    FG_TRY(tensor_read_int_input(call, 0, dims, FG_MAX_RANK, &n));
    for (int d = 0; d < n; d++)
        if (dims[d] < 0)
            return op_error(call, FG_ERR_SHAPE, "shape entry %d is negative (%lld)", d, (long long)dims[d]);
    fg_dtype dtype = FG_FLOAT32;
    const ir_attr *a = ir_attr_find(call->node, "value");
    if (a && a->t) {
        dtype = a->t->dtype;
        if (fg_dtype_size(dtype) == 0 || a->t->nbytes < fg_dtype_size(dtype))
            return op_error(call, FG_ERR_UNSUPPORTED, "value must be a one-element numeric tensor");
    }
    set_output(call, 0, dtype, n, dims);
    return NULL;
}

static fg_status *constant_of_shape_run(op_call *call)
{
    const fg_tensor *out = &call->out[0];
    size_t esize = fg_dtype_size(out->dtype);
    unsigned char value[16] = {0};
    const ir_attr *a = ir_attr_find(call->node, "value");
    if (a && a->t)
        memcpy(value, a->t->data, esize);
    fill_elements((char *)out->data, fg_tensor_numel(out), value, esize);
    return NULL;
}

static int is_float_dtype(fg_dtype t) { return t == FG_FLOAT32 || t == FG_FLOAT64 || t == FG_FLOAT16; }

static fg_status *range_infer(op_call *call)
{
    for (int i = 0; i < 3; i++) {
        OP_REQUIRE_VALUE(call, i);
        if (fg_tensor_numel(&call->in[i]) != 1)
            return op_error(call, FG_ERR_SHAPE, "input %d must be a scalar", i);
        if (call->in[i].dtype != call->in[0].dtype)
            return op_error(call, FG_ERR_DTYPE, "start, limit and delta must have the same type");
    }
    fg_dtype t = call->in[0].dtype;
    int64_t n;
    if (is_float_dtype(t)) {
        double start = fg_load_f64(t, call->in[0].data, 0), limit = fg_load_f64(t, call->in[1].data, 0),
               delta = fg_load_f64(t, call->in[2].data, 0);
        if (delta == 0)
            return op_error(call, FG_ERR_INVALID_ARGUMENT, "delta is 0");
        double count = ceil((limit - start) / delta);
        n = count > 0 ? (int64_t)count : 0;
    } else if (tensor_dtype_is_integer(t)) {
        int64_t start = fg_load_i64(t, call->in[0].data, 0), limit = fg_load_i64(t, call->in[1].data, 0),
                delta = fg_load_i64(t, call->in[2].data, 0);
        if (delta == 0)
            return op_error(call, FG_ERR_INVALID_ARGUMENT, "delta is 0");
        int64_t span = limit - start;
        if (delta > 0)
            n = span > 0 ? (span + delta - 1) / delta : 0;
        else
            n = span < 0 ? (-span + (-delta) - 1) / (-delta) : 0;
    } else {
        return op_error(call, FG_ERR_DTYPE, "Range does not support %s", fg_dtype_name(t));
    }
    set_output(call, 0, t, 1, &n);
    return NULL;
}

static fg_status *range_run(op_call *call)
{
    fg_dtype t = call->in[0].dtype;
    const fg_tensor *out = &call->out[0];
    int64_t n = out->dims[0];
    if (tensor_dtype_is_integer(t)) {
        int64_t start = fg_load_i64(t, call->in[0].data, 0), delta = fg_load_i64(t, call->in[2].data, 0);
        for (int64_t i = 0; i < n; i++) {
            int64_t v = start + i * delta;
            switch (t) {
            case FG_INT64: ((int64_t *)out->data)[i] = v; break;
            case FG_INT32: ((int32_t *)out->data)[i] = (int32_t)v; break;
            default: fg_store_f64(t, out->data, i, (double)v);
            }
        }
    } else if (t == FG_FLOAT32) {
        float start = *(const float *)call->in[0].data, delta = *(const float *)call->in[2].data;
        for (int64_t i = 0; i < n; i++)
            ((float *)out->data)[i] = start + (float)i * delta;
    } else {
        double start = fg_load_f64(t, call->in[0].data, 0), delta = fg_load_f64(t, call->in[2].data, 0);
        for (int64_t i = 0; i < n; i++)
            fg_store_f64(t, out->data, i, start + (double)i * delta);
    }
    return NULL;
}

/* ------------------------------------------------------------ DepthToSpace, SpaceToDepth */

static fg_status *block_size_of(const op_call *call, int64_t *block)
{
    *block = ir_attr_int(call->node, "blocksize", 0);
    if (*block <= 0)
        return op_error(call, FG_ERR_INVALID_ARGUMENT, "blocksize must be positive (got %lld)", (long long)*block);
    if (call->in[0].rank != 4)
        return op_error(call, FG_ERR_SHAPE, "input must be 4-D NCHW, got rank %d", call->in[0].rank);
    return NULL;
}

static fg_status *depth_to_space_check(const ir_node *node, int64_t opset)
{
    const char *mode = ir_attr_string(node, "mode", "DCR");
    if (strcmp(mode, "DCR") && strcmp(mode, "CRD"))
        return op_node_error(node, opset, FG_ERR_UNSUPPORTED, "mode '%s' is not DCR or CRD", mode);
    return NULL;
}

static fg_status *depth_to_space_infer(op_call *call)
{
    int64_t b;
    FG_TRY(depth_to_space_check(call->node, call->opset));
    FG_TRY(block_size_of(call, &b));
    const int64_t *in = call->in[0].dims;
    if (in[1] % (b * b))
        return op_error(call, FG_ERR_SHAPE, "channels %lld are not a multiple of blocksize^2 = %lld",
                        (long long)in[1], (long long)(b * b));
    int64_t dims[4] = {in[0], in[1] / (b * b), in[2] * b, in[3] * b};
    set_output(call, 0, call->in[0].dtype, 4, dims);
    return NULL;
}

static fg_status *depth_to_space_run(op_call *call)
{
    fg_status *err;
    size_t esize = element_size(call, 0, &err);
    if (err)
        return err;
    int64_t b;
    FG_TRY(block_size_of(call, &b));
    const int64_t *in = call->in[0].dims;
    int64_t n = in[0], c = in[1] / (b * b), h = in[2], w = in[3], hw = h * w;
    int crd = !strcmp(ir_attr_string(call->node, "mode", "DCR"), "CRD");
    /* Output viewed as [n, c, h, b1, w, b2]. */
    int64_t dims[6] = {n, c, h, b, w, b};
    int64_t st[6];
    st[0] = in[1] * hw;
    st[2] = w;
    st[4] = 1;
    if (crd) { /* input [n, c, b1, b2, h, w] */
        st[1] = b * b * hw;
        st[3] = b * hw;
        st[5] = hw;
    } else { /* input [n, b1, b2, c, h, w] */
        st[1] = hw;
        st[3] = b * c * hw;
        st[5] = c * hw;
    }
    strided_copy(call->out[0].data, call->in[0].data, esize, 6, dims, st, thread_count(call));
    return NULL;
}

static fg_status *space_to_depth_infer(op_call *call)
{
    int64_t b;
    FG_TRY(block_size_of(call, &b));
    const int64_t *in = call->in[0].dims;
    if (in[2] % b || in[3] % b)
        return op_error(call, FG_ERR_SHAPE, "height %lld and width %lld must be multiples of blocksize %lld",
                        (long long)in[2], (long long)in[3], (long long)b);
    int64_t dims[4] = {in[0], in[1] * b * b, in[2] / b, in[3] / b};
    set_output(call, 0, call->in[0].dtype, 4, dims);
    return NULL;
}

static fg_status *space_to_depth_run(op_call *call)
{
    fg_status *err;
    size_t esize = element_size(call, 0, &err);
    if (err)
        return err;
    int64_t b;
    FG_TRY(block_size_of(call, &b));
    const int64_t *in = call->in[0].dims;
    int64_t c = in[1], h = in[2], w = in[3];
    /* Output viewed as [n, b1, b2, c, h/b, w/b]; input is [n, c, h/b, b1, w/b, b2]. */
    int64_t dims[6] = {in[0], b, b, c, h / b, w / b};
    int64_t st[6] = {c * h * w, w, 1, h * w, b * w, b};
    strided_copy(call->out[0].data, call->in[0].data, esize, 6, dims, st, thread_count(call));
    return NULL;
}

/* ------------------------------------------------------------ Trilu */

static fg_status *trilu_infer(op_call *call)
{
    if (call->in[0].rank < 2)
        return op_error(call, FG_ERR_SHAPE, "input must have rank 2 or more, got %d", call->in[0].rank);
    set_output(call, 0, call->in[0].dtype, call->in[0].rank, call->in[0].dims);
    return NULL;
}

static fg_status *trilu_run(op_call *call)
{
    fg_status *err;
    size_t esize = element_size(call, 0, &err);
    if (err)
        return err;
    int64_t k = 0;
    if (op_has_input(call, 1) && call->in[1].data && fg_tensor_numel(&call->in[1]) > 0)
        k = fg_load_i64(call->in[1].dtype, call->in[1].data, 0);
    int upper = (int)ir_attr_int(call->node, "upper", 1);
    const fg_tensor *in = &call->in[0];
    int64_t rows = in->dims[in->rank - 2], cols = in->dims[in->rank - 1];
    int64_t mats = fg_shape_numel(in->rank - 2, in->dims);
    int64_t es = (int64_t)esize;
    const char *src = (const char *)in->data;
    char *dst = (char *)call->out[0].data;
    for (int64_t m = 0; m < mats; m++)
        for (int64_t i = 0; i < rows; i++) {
            const char *s = src + (m * rows + i) * cols * es;
            char *d = dst + (m * rows + i) * cols * es;
            /* upper keeps columns j >= i + k; lower keeps j <= i + k. */
            int64_t edge = upper ? i + k : i + k + 1;
            edge = edge < 0 ? 0 : (edge > cols ? cols : edge);
            if (upper) {
                memset(d, 0, (size_t)(edge * es));
                memcpy(d + edge * es, s + edge * es, (size_t)((cols - edge) * es));
            } else {
                memcpy(d, s, (size_t)(edge * es));
                memset(d + edge * es, 0, (size_t)((cols - edge) * es));
            }
        }
    return NULL;
}

/* ------------------------------------------------------------ table */

const op_def op_family_tensor[] = {
    {"Constant", constant_check, constant_infer, NULL, constant_run, NULL, 0},
    {"Shape", NULL, shape_infer, NULL, shape_run, NULL, OP_SHAPE_ONLY},
    {"Size", NULL, size_infer, NULL, size_run, NULL, OP_SHAPE_ONLY},
    {"Reshape", NULL, reshape_infer, NULL, run_copy_input, NULL, OP_VIEW},
    {"Flatten", NULL, flatten_infer, NULL, run_copy_input, NULL, OP_VIEW},
    {"Squeeze", NULL, squeeze_infer, NULL, run_copy_input, NULL, OP_VIEW},
    {"Unsqueeze", NULL, unsqueeze_infer, NULL, run_copy_input, NULL, OP_VIEW},
    {"Identity", NULL, identity_infer, NULL, run_copy_input, NULL, OP_VIEW},
    {"Dropout", NULL, dropout_infer, NULL, dropout_run, NULL, OP_VIEW},
    {"Transpose", NULL, transpose_infer, NULL, transpose_run, NULL, 0},
    {"Concat", NULL, concat_infer, NULL, concat_run, NULL, 0},
    {"Split", NULL, split_infer, NULL, split_run, NULL, 0},
    {"Slice", NULL, slice_infer, NULL, slice_run, NULL, 0},
    {"Gather", NULL, gather_infer, NULL, gather_run, NULL, 0},
    {"GatherElements", NULL, gather_elements_infer, NULL, gather_elements_run, NULL, 0},
    {"ScatterND", NULL, scatter_nd_infer, NULL, scatter_nd_run, NULL, 0},
    {"GatherND", NULL, gather_nd_infer, NULL, gather_nd_run, NULL, 0},
    {"ScatterElements", NULL, scatter_elements_infer, NULL, scatter_elements_run, NULL, 0},
    {"Scatter", NULL, scatter_elements_infer, NULL, scatter_elements_run, NULL, 0},
    {"Expand", NULL, expand_infer, NULL, expand_run, NULL, 0},
    {"Tile", NULL, tile_infer, NULL, tile_run, NULL, 0},
    {"Pad", pad_check, pad_infer, NULL, pad_run, NULL, 0},
    {"ConstantOfShape", NULL, constant_of_shape_infer, NULL, constant_of_shape_run, NULL, 0},
    {"Range", NULL, range_infer, NULL, range_run, NULL, 0},
    {"DepthToSpace", depth_to_space_check, depth_to_space_infer, NULL, depth_to_space_run, NULL, 0},
    {"SpaceToDepth", NULL, space_to_depth_infer, NULL, space_to_depth_run, NULL, 0},
    {"Trilu", NULL, trilu_infer, NULL, trilu_run, NULL, 0},
    {0},
};
