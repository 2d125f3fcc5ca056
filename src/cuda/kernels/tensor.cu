/* CUDA data movement and shape ops: Constant, Shape, Size, Reshape, Flatten,
 * Squeeze, Unsqueeze, Identity, Dropout, Transpose, Concat, Split, Slice,
 * Gather, GatherElements, GatherND, ScatterND, ScatterElements, Scatter,
 * Expand, Tile, Pad, ConstantOfShape, Range, DepthToSpace, SpaceToDepth,
 * Trilu. Semantics follow src/ops/tensor.c.
 *
 * Everything is dtype-agnostic: elements move as 1/2/4/8-byte units, and
 * contiguous runs are widened to 16-byte units where sizes and addresses
 * allow. Most ops are one strided-copy kernel (contiguous output, input read
 * through per-axis strides: 0 broadcasts, negative reverses); batched 2-D
 * transposes (NCHW <-> NHWC, [.., A, B] -> [.., B, A]) use a tiled
 * shared-memory kernel. Values known at plan time (Shape, Size, Range,
 * Constant) are computed on the host in prepare into a small device buffer
 * that run copies device-to-device.
 *
 * Indices read on the device (Gather*, Scatter*) cannot fail at run time:
 * out-of-range indices read zeros / are skipped. When the indices are
 * constant, prepare checks them and reports an error like the CPU does. */
#include "cuda/cuda_ops.h"
#include "cuda/kernels/kernel_util.cuh"

extern "C" {
#include "ops/tensor_params.h"
}

#define TC_MAX_RANK (2 * FG_MAX_RANK)
#define TC_BATCH 32 /* Concat inputs / Split outputs per launch */

/* ------------------------------------------------------------ strided copy descriptor */

typedef struct tc_strided {
    int rank;
    uint32_t dims[TC_MAX_RANK];
    int32_t strides[TC_MAX_RANK]; /* source strides in units; may be 0 or negative */
} tc_strided;

/* Drops unit axes and merges axes contiguous in the source. -1 when too big. */
static int tc_build(tc_strided *c, int rank, const int64_t *dims, const int64_t *strides)
{
    memset(c, 0, sizeof *c);
    int64_t total = 1, span = 0;
    for (int d = 0; d < rank; d++) {
        total *= dims[d];
        if (dims[d] > 0)
            span += (dims[d] - 1) * (strides[d] < 0 ? -strides[d] : strides[d]);
    }
    if (total > CU_INDEX_LIMIT || span > CU_INDEX_LIMIT)
        return -1;
    int64_t md[TC_MAX_RANK], ms[TC_MAX_RANK];
    int r = 0;
    for (int d = 0; d < rank; d++) {
        if (dims[d] == 1)
            continue;
        if (r > 0 && ms[r - 1] == strides[d] * dims[d]) {
            md[r - 1] *= dims[d];
            ms[r - 1] = strides[d];
            continue;
        }
        md[r] = dims[d];
        ms[r] = strides[d];
        r++;
    }
    c->rank = r;
    for (int d = 0; d < r; d++) {
        c->dims[d] = (uint32_t)md[d];
        c->strides[d] = (int32_t)ms[d];
    }
    return 0;
}

/* Largest power-of-two unit (<= 16 bytes) dividing mask. */
static size_t unit_for(uint64_t mask)
{
    for (size_t u = 16; u > 1; u /= 2)
        if ((mask & (u - 1)) == 0)
            return u;
    return 1;
}

/* Widens elements of esize bytes to bigger units along a contiguous innermost
 * axis when sizes and addresses allow. Returns the unit size in bytes. */
static size_t tc_widen(const tc_strided *c, size_t esize, const void *src, const void *dst, tc_strided *w)
{
    *w = *c;
    if (c->rank == 0 || c->strides[c->rank - 1] != 1)
        return esize;
    const int last = c->rank - 1;
    uint64_t mask = (uint64_t)(uintptr_t)src | (uint64_t)(uintptr_t)dst | ((uint64_t)c->dims[last] * esize);
    for (int d = 0; d < last; d++)
        mask |= (uint64_t)(c->strides[d] < 0 ? -(int64_t)c->strides[d] : c->strides[d]) * esize;
    size_t u = unit_for(mask);
    if (u <= esize)
        return esize;
    const uint32_t ratio = (uint32_t)(u / esize);
    w->dims[last] /= ratio;
    for (int d = 0; d < last; d++)
        w->strides[d] /= (int32_t)ratio;
    return u;
}

static uint32_t tc_numel(const tc_strided *c)
{
    uint32_t n = 1;
    for (int d = 0; d < c->rank; d++)
        n *= c->dims[d];
    return n;
}

/* ------------------------------------------------------------ kernels */

typedef unsigned long long u64_t;

#define TC_FOR_UNITS(M) M(1, uint8_t) M(2, uint16_t) M(4, uint32_t) M(8, u64_t) M(16, uint4)
#define TC_FOR_ELEMENTS(M) M(1, uint8_t) M(2, uint16_t) M(4, uint32_t) M(8, u64_t)

/* dst[i] = src[offset(i)] with a contiguous dst. */
#define TC_COPY_KERNEL(U, T)                                                                       \
    static __global__ void tc_copy_##U(tc_strided c, uint32_t n, void *dst_, const void *src_)    \
    { CU_KERNEL_PROLOGUE();                                                                        \
        T *dst = (T *)dst_;                                                                        \
        const T *src = (const T *)src_;                                                            \
        CU_LOOP(i, n) {                                                                            \
            int32_t off = 0;                                                                       \
            uint32_t r = i;                                                                        \
            for (int d = c.rank - 1; d >= 0; d--) {                                                \
                const uint32_t q = r / c.dims[d];                                                  \
                off += (int32_t)(r - q * c.dims[d]) * c.strides[d];                                \
                r = q;                                                                             \
            }                                                                                      \
            dst[i] = src[off];                                                                     \
        }                                                                                          \
    }
TC_FOR_UNITS(TC_COPY_KERNEL)

/* Batched 2-D transpose: src [batch, rows, cols] -> dst [batch, cols, rows]. */
#define TC_TILE 32
#define TC_TRANSPOSE_KERNEL(U, T)                                                                     \
    static __global__ void tc_transpose_##U(uint32_t batch, uint32_t rows, uint32_t cols, void *dst_, \
                                            const void *src_)                                         \
    { CU_KERNEL_PROLOGUE();                                                                           \
        __shared__ T tile[TC_TILE][TC_TILE + 1];                                                      \
        const uint32_t c0 = blockIdx.x * TC_TILE, r0 = blockIdx.y * TC_TILE;                          \
        for (uint32_t b = blockIdx.z; b < batch; b += gridDim.z) {                                    \
            const T *src = (const T *)src_ + (size_t)b * rows * cols;                                 \
            T *dst = (T *)dst_ + (size_t)b * rows * cols;                                             \
            for (uint32_t k = threadIdx.y; k < TC_TILE; k += blockDim.y) {                            \
                const uint32_t r = r0 + k, c = c0 + threadIdx.x;                                      \
                if (r < rows && c < cols)                                                             \
                    tile[k][threadIdx.x] = src[(size_t)r * cols + c];                                 \
            }                                                                                         \
            __syncthreads();                                                                          \
            for (uint32_t k = threadIdx.y; k < TC_TILE; k += blockDim.y) {                            \
                const uint32_t c = c0 + k, r = r0 + threadIdx.x;                                      \
                if (r < rows && c < cols)                                                             \
                    dst[(size_t)c * rows + r] = tile[threadIdx.x][k];                                 \
            }                                                                                         \
            __syncthreads();                                                                          \
        }                                                                                             \
    }
TC_FOR_ELEMENTS(TC_TRANSPOSE_KERNEL)

/* Concat (gather = 1: inputs -> out) and Split (gather = 0: in -> outputs) of
 * up to TC_BATCH parts along one axis; sizes in units. */
typedef struct tc_parts {
    int n;
    uint32_t outer, inner;  /* inner: units per axis step */
    uint32_t whole_axis;    /* axis size of the whole tensor */
    uint32_t batch_start;   /* axis offset of the first part */
    uint32_t batch_axis;    /* axis size of all parts of this batch */
    uint32_t begin[TC_BATCH + 1];
    void *part[TC_BATCH];
} tc_parts;

#define TC_PARTS_KERNEL(U, T)                                                                         \
    static __global__ void tc_parts_##U(tc_parts p, uint32_t n, void *whole_, int to_whole)          \
    { CU_KERNEL_PROLOGUE();                                                                           \
        T *whole = (T *)whole_;                                                                       \
        const uint32_t row = p.batch_axis * p.inner;                                                  \
        CU_LOOP(j, n) {                                                                               \
            const uint32_t o = j / row, rem = j - o * row;                                            \
            const uint32_t a = rem / p.inner, x = rem - a * p.inner;                                  \
            int k = 0;                                                                                \
            while (k + 1 < p.n && p.begin[k + 1] <= a)                                                \
                k++;                                                                                  \
            const uint32_t size = p.begin[k + 1] - p.begin[k];                                        \
            const size_t part_at = ((size_t)o * size + (a - p.begin[k])) * p.inner + x;               \
            const size_t whole_at = ((size_t)o * p.whole_axis + p.batch_start + a) * p.inner + x;     \
            T *part = (T *)p.part[k];                                                                 \
            if (to_whole)                                                                             \
                whole[whole_at] = part[part_at];                                                      \
            else if (part)                                                                            \
                part[part_at] = whole[whole_at];                                                      \
        }                                                                                             \
    }
TC_FOR_UNITS(TC_PARTS_KERNEL)

/* Gather along an axis: out[(o * n_idx + j) * inner + x] = data[(o * dim + idx[j]) * inner + x]. */
#define TC_GATHER_KERNEL(U, T)                                                                          \
    static __global__ void tc_gather_##U(uint32_t n, uint32_t n_idx, uint32_t dim, uint32_t inner,     \
                                         fg_dtype idx_type, const void *idx, void *dst_, const void *src_) \
    { CU_KERNEL_PROLOGUE();                                                                             \
        T *dst = (T *)dst_;                                                                             \
        const T *src = (const T *)src_;                                                                 \
        CU_LOOP(i, n) {                                                                                 \
            const uint32_t u = i / inner, x = i - u * inner;                                            \
            const uint32_t o = u / n_idx, j = u - o * n_idx;                                            \
            int64_t v = cu_load_i64(idx_type, idx, j);                                                  \
            if (v < 0)                                                                                  \
                v += dim;                                                                               \
            if (v < 0 || v >= (int64_t)dim) {                                                           \
                T zero;                                                                                 \
                memset(&zero, 0, sizeof zero);                                                          \
                dst[i] = zero;                                                                          \
            } else {                                                                                    \
                dst[i] = src[((size_t)o * dim + (size_t)v) * inner + x];                                \
            }                                                                                           \
        }                                                                                               \
    }
TC_FOR_UNITS(TC_GATHER_KERNEL)

/* Index arithmetic over the indices tensor of GatherElements / ScatterElements. */
typedef struct tc_elements {
    int rank, axis;
    uint32_t dims[FG_MAX_RANK];    /* indices dims */
    uint32_t strides[FG_MAX_RANK]; /* data strides (elements) */
    uint32_t axis_dim;             /* data size along axis */
    uint32_t idx_axis_stride;      /* indices stride along axis */
} tc_elements;

static __device__ __forceinline__ int64_t elements_offset(const tc_elements &e, uint32_t i, fg_dtype idx_type,
                                                          const void *idx)
{
    int64_t v = cu_load_i64(idx_type, idx, i);
    if (v < 0)
        v += e.axis_dim;
    if (v < 0 || v >= (int64_t)e.axis_dim)
        return -1;
    uint32_t off = 0, r = i;
    for (int d = e.rank - 1; d >= 0; d--) {
        const uint32_t q = r / e.dims[d];
        const uint32_t c = d == e.axis ? (uint32_t)v : r - q * e.dims[d];
        off += c * e.strides[d];
        r = q;
    }
    return off;
}

#define TC_GATHER_ELEMENTS_KERNEL(U, T)                                                               \
    static __global__ void tc_gather_elements_##U(tc_elements e, uint32_t n, fg_dtype idx_type,      \
                                                  const void *idx, void *dst_, const void *src_)      \
    { CU_KERNEL_PROLOGUE();                                                                           \
        T *dst = (T *)dst_;                                                                           \
        const T *src = (const T *)src_;                                                               \
        CU_LOOP(i, n) {                                                                               \
            const int64_t off = elements_offset(e, i, idx_type, idx);                                 \
            dst[i] = off < 0 ? (T)0 : src[off];                                                       \
        }                                                                                             \
    }
TC_FOR_ELEMENTS(TC_GATHER_ELEMENTS_KERNEL)

/* Scatter reductions (float32): 1 add, 2 mul, 3 max, 4 min; 0 is a plain store. */
static __device__ __forceinline__ float scatter_reduce(int mode, float a, float b)
{
    switch (mode) {
    case 1: return a + b;
    case 2: return a * b;
    case 3: return a > b ? a : b;
    default: return a < b ? a : b;
    }
}

/* One thread per line of the indices along the axis: colliding writes only
 * happen within a line, so walking it in order gives the CPU's result
 * (last write wins, reductions in index order) deterministically. */
#define TC_SCATTER_ELEMENTS_KERNEL(U, T)                                                              \
    static __global__ void tc_scatter_elements_##U(tc_elements e, uint32_t n_lines, fg_dtype idx_type, \
                                                   const void *idx, void *dst_, const void *upd_, int mode) \
    { CU_KERNEL_PROLOGUE();                                                                           \
        T *dst = (T *)dst_;                                                                           \
        const T *upd = (const T *)upd_;                                                               \
        CU_LOOP(line, n_lines) {                                                                      \
            uint32_t r = line, data_off = 0, idx_off = 0, idx_stride = 1;                             \
            for (int d = e.rank - 1; d >= 0; d--) {                                                   \
                if (d == e.axis) {                                                                    \
                    idx_stride *= e.dims[d];                                                          \
                    continue;                                                                         \
                }                                                                                     \
                const uint32_t q = r / e.dims[d], c = r - q * e.dims[d];                              \
                data_off += c * e.strides[d];                                                         \
                idx_off += c * idx_stride;                                                            \
                idx_stride *= e.dims[d];                                                              \
                r = q;                                                                                \
            }                                                                                         \
            for (uint32_t a = 0; a < e.dims[e.axis]; a++) {                                           \
                const uint32_t i = idx_off + a * e.idx_axis_stride;                                   \
                int64_t v = cu_load_i64(idx_type, idx, i);                                            \
                if (v < 0)                                                                            \
                    v += e.axis_dim;                                                                  \
                if (v < 0 || v >= (int64_t)e.axis_dim)                                                \
                    continue;                                                                         \
                const uint32_t at = data_off + (uint32_t)v * e.strides[e.axis];                       \
                if (mode)                                                                             \
                    ((float *)dst)[at] = scatter_reduce(mode, ((float *)dst)[at], ((const float *)upd)[i]); \
                else                                                                                  \
                    dst[at] = upd[i];                                                                 \
            }                                                                                         \
        }                                                                                             \
    }
TC_FOR_ELEMENTS(TC_SCATTER_ELEMENTS_KERNEL)

/* GatherND / ScatterND: index tuples of k values select slices of `slice` units. */
typedef struct tc_nd {
    int k;
    uint32_t tuples;          /* tuples per batch */
    uint32_t slice;           /* units per slice */
    uint32_t batch_stride;    /* slices per batch in data */
    uint32_t dims[FG_MAX_RANK];    /* data dims indexed by a tuple */
    uint32_t strides[FG_MAX_RANK]; /* their strides in slices */
} tc_nd;

/* Offset (in slices) of tuple bt, or -1 when an index is out of range. */
static __device__ __forceinline__ int64_t nd_offset(const tc_nd &p, uint32_t bt, fg_dtype idx_type, const void *idx)
{
    const uint32_t bi = bt / p.tuples;
    int64_t off = (int64_t)bi * p.batch_stride;
    for (int j = 0; j < p.k; j++) {
        int64_t v = cu_load_i64(idx_type, idx, bt * (uint32_t)p.k + (uint32_t)j);
        if (v < 0)
            v += p.dims[j];
        if (v < 0 || v >= (int64_t)p.dims[j])
            return -1;
        off += v * p.strides[j];
    }
    return off;
}

#define TC_GATHER_ND_KERNEL(U, T)                                                                     \
    static __global__ void tc_gather_nd_##U(tc_nd p, uint32_t n, fg_dtype idx_type, const void *idx, \
                                            void *dst_, const void *src_)                             \
    { CU_KERNEL_PROLOGUE();                                                                           \
        T *dst = (T *)dst_;                                                                           \
        const T *src = (const T *)src_;                                                               \
        CU_LOOP(i, n) {                                                                               \
            const uint32_t bt = i / p.slice, e = i - bt * p.slice;                                    \
            const int64_t off = nd_offset(p, bt, idx_type, idx);                                      \
            if (off < 0) {                                                                            \
                T zero;                                                                               \
                memset(&zero, 0, sizeof zero);                                                        \
                dst[i] = zero;                                                                        \
            } else {                                                                                  \
                dst[i] = src[(size_t)off * p.slice + e];                                              \
            }                                                                                         \
        }                                                                                             \
    }
TC_FOR_UNITS(TC_GATHER_ND_KERNEL)

#define TC_SCATTER_ND_KERNEL(U, T)                                                                    \
    static __global__ void tc_scatter_nd_##U(tc_nd p, uint32_t n, fg_dtype idx_type, const void *idx,\
                                             void *dst_, const void *upd_)                            \
    { CU_KERNEL_PROLOGUE();                                                                           \
        T *dst = (T *)dst_;                                                                           \
        const T *upd = (const T *)upd_;                                                               \
        CU_LOOP(i, n) {                                                                               \
            const uint32_t t = i / p.slice, e = i - t * p.slice;                                      \
            const int64_t off = nd_offset(p, t, idx_type, idx);                                       \
            if (off >= 0)                                                                             \
                dst[(size_t)off * p.slice + e] = upd[i];                                              \
        }                                                                                             \
    }
TC_FOR_UNITS(TC_SCATTER_ND_KERNEL)

/* ScatterND with a reduction (float32): one thread per slice element walks the
 * tuples in order, so duplicates reduce deterministically like the CPU. */
static __global__ void tc_scatter_nd_reduce(tc_nd p, uint32_t n_tuples, fg_dtype idx_type, const void *idx,
                                            float *dst, const float *upd, int mode)
{
    CU_KERNEL_PROLOGUE();
    CU_LOOP(e, p.slice) {
        for (uint32_t t = 0; t < n_tuples; t++) {
            const int64_t off = nd_offset(p, t, idx_type, idx);
            if (off < 0)
                continue;
            float *d = dst + (size_t)off * p.slice + e;
            *d = scatter_reduce(mode, *d, upd[(size_t)t * p.slice + e]);
        }
    }
}

/* Pad. */
enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP };

typedef struct tc_pad {
    int rank, mode;
    uint32_t out_dims[FG_MAX_RANK];
    uint32_t in_dims[FG_MAX_RANK];
    int32_t begin[FG_MAX_RANK];
    uint32_t in_strides[FG_MAX_RANK];
    u64_t value;           /* constant value bits */
    const void *value_ptr; /* device value (non-constant input), or NULL */
} tc_pad;

static __device__ __forceinline__ int32_t pad_source_index(int32_t i, int32_t n, int mode)
{
    if (i >= 0 && i < n)
        return i;
    switch (mode) {
    case PAD_EDGE: return i < 0 ? 0 : n - 1;
    case PAD_WRAP: return ((i % n) + n) % n;
    case PAD_REFLECT: {
        if (n == 1)
            return 0;
        int32_t period = 2 * (n - 1);
        i = ((i % period) + period) % period;
        return i < n ? i : period - i;
    }
    default: return -1;
    }
}

#define TC_PAD_KERNEL(U, T)                                                                           \
    static __global__ void tc_pad_##U(tc_pad p, uint32_t n, void *dst_, const void *src_)            \
    { CU_KERNEL_PROLOGUE();                                                                           \
        T *dst = (T *)dst_;                                                                           \
        const T *src = (const T *)src_;                                                               \
        T value;                                                                                      \
        if (p.value_ptr)                                                                              \
            value = *(const T *)p.value_ptr;                                                          \
        else                                                                                          \
            memcpy(&value, &p.value, sizeof value);                                                   \
        CU_LOOP(i, n) {                                                                               \
            uint32_t r = i, off = 0;                                                                  \
            int outside = 0;                                                                          \
            for (int d = p.rank - 1; d >= 0; d--) {                                                   \
                const uint32_t q = r / p.out_dims[d];                                                 \
                const int32_t o = (int32_t)(r - q * p.out_dims[d]);                                   \
                r = q;                                                                                \
                const int32_t s = pad_source_index(o - p.begin[d], (int32_t)p.in_dims[d], p.mode);    \
                if (s < 0) {                                                                          \
                    outside = 1;                                                                      \
                    break;                                                                            \
                }                                                                                     \
                off += (uint32_t)s * p.in_strides[d];                                                 \
            }                                                                                         \
            dst[i] = outside ? value : src[off];                                                      \
        }                                                                                             \
    }
TC_FOR_ELEMENTS(TC_PAD_KERNEL)

#define TC_FILL_KERNEL(U, T)                                                                          \
    static __global__ void tc_fill_##U(uint32_t n, void *dst_, u64_t bits)                            \
    { CU_KERNEL_PROLOGUE();                                                                           \
        T value;                                                                                      \
        memcpy(&value, &bits, sizeof value);                                                          \
        T *dst = (T *)dst_;                                                                           \
        CU_LOOP(i, n)                                                                                 \
            dst[i] = value;                                                                           \
    }
TC_FOR_ELEMENTS(TC_FILL_KERNEL)

/* Trilu: keeps the upper (col >= row + k) or lower (col <= row + k) triangle. */
#define TC_TRILU_KERNEL(U, T)                                                                         \
    static __global__ void tc_trilu_##U(uint32_t n, uint32_t rows, uint32_t cols, int upper, int64_t k, \
                                        const void *k_ptr, fg_dtype k_type, void *dst_, const void *src_) \
    { CU_KERNEL_PROLOGUE();                                                                           \
        T *dst = (T *)dst_;                                                                           \
        const T *src = (const T *)src_;                                                               \
        if (k_ptr)                                                                                    \
            k = cu_load_i64(k_type, k_ptr, 0);                                                        \
        CU_LOOP(i, n) {                                                                               \
            const uint32_t rc = i / cols;                                                             \
            const int64_t col = i - rc * cols, row = rc % rows;                                       \
            const int keep = upper ? col >= row + k : col <= row + k;                                 \
            dst[i] = keep ? src[i] : (T)0;                                                            \
        }                                                                                             \
    }
TC_FOR_ELEMENTS(TC_TRILU_KERNEL)

/* Launches NAME_<unit> for a unit of 1, 2, 4, 8 (or 16) bytes. */
#define TC_LAUNCH(UNIT, NAME, GRID, BLOCK, STREAM, ...)                                                 \
    do {                                                                                                \
        switch (UNIT) {                                                                                 \
        case 1: cu_launch(NAME##_1, GRID, BLOCK, 0, STREAM, __VA_ARGS__); break;                               \
        case 2: cu_launch(NAME##_2, GRID, BLOCK, 0, STREAM, __VA_ARGS__); break;                               \
        case 4: cu_launch(NAME##_4, GRID, BLOCK, 0, STREAM, __VA_ARGS__); break;                               \
        default: cu_launch(NAME##_8, GRID, BLOCK, 0, STREAM, __VA_ARGS__); break;                              \
        }                                                                                               \
    } while (0)
#define TC_LAUNCH16(UNIT, NAME, GRID, BLOCK, STREAM, ...)                                               \
    do {                                                                                                \
        if ((UNIT) == 16)                                                                               \
            cu_launch(NAME##_16, GRID, BLOCK, 0, STREAM, __VA_ARGS__);                                         \
        else                                                                                            \
            TC_LAUNCH(UNIT, NAME, GRID, BLOCK, STREAM, __VA_ARGS__);                                    \
    } while (0)

/* ------------------------------------------------------------ state */

enum {
    TC_COPY_INPUT,   /* device-to-device copy of input 0 (view ops, Dropout) */
    TC_BUFFER,       /* copy of a buffer computed in prepare (Shape, Size, Range, Constant) */
    TC_STRIDED,      /* strided copy (Slice, Expand, Tile, Transpose, DepthToSpace, SpaceToDepth) */
    TC_TRANSPOSE2D,  /* tiled batched 2-D transpose */
    TC_CONCAT,
    TC_SPLIT,
    TC_GATHER,
    TC_GATHER_ELEMENTS,
    TC_GATHER_ND,
    TC_SCATTER_ND,
    TC_SCATTER_ELEMENTS,
    TC_PAD,
    TC_FILL,
    TC_TRILU
};

typedef struct tc_state {
    int kind;
    size_t esize;
    uint32_t n;              /* output elements */
    /* TC_BUFFER */
    void *device_buffer;     /* cudaMalloc'd in prepare */
    size_t buffer_bytes;
    /* TC_STRIDED */
    tc_strided copy;
    int64_t src_offset;      /* elements */
    /* TC_TRANSPOSE2D */
    uint32_t batch, rows, cols;
    /* TC_CONCAT / TC_SPLIT */
    int axis;
    uint32_t outer, inner_elems;
    /* TC_GATHER */
    uint32_t n_idx, dim;
    /* GatherElements / ScatterElements */
    tc_elements elements;
    /* GatherND / ScatterND */
    tc_nd nd;
    uint32_t nd_slice_elems;
    int add;                 /* scatter reduction: 0 none, 1 add, 2 mul, 3 max, 4 min */
    /* Pad */
    tc_pad pad;
    /* Fill */
    u64_t fill_bits;
    /* Trilu */
    int upper;
    int64_t trilu_k;
} tc_state;

static fg_status *state_new(cuda_call *call, int kind, tc_state **out)
{
    tc_state *st = (tc_state *)cu_state_alloc(sizeof(tc_state));
    *out = st;
    if (!st)
        return op_error(&call->op, FG_ERR_OUT_OF_MEMORY, "out of host memory preparing the kernel");
    st->kind = kind;
    st->esize = fg_dtype_size(call->op.out[0].dtype);
    call->op.state = st;
    if (call->op.n_out > 0 && fg_tensor_numel(&call->op.out[0]) > CU_INDEX_LIMIT)
        return op_error(&call->op, FG_ERR_UNSUPPORTED, "tensors of 2^31 elements or more are not supported on the GPU");
    st->n = call->op.n_out > 0 ? (uint32_t)fg_tensor_numel(&call->op.out[0]) : 0;
    return NULL;
}

static void tc_release(void *state)
{
    tc_state *st = (tc_state *)state;
    if (!st)
        return;
    if (st->device_buffer)
        cudaFree(st->device_buffer);
    free(st);
}

static fg_status *too_big(const cuda_call *call)
{
    return op_error(&call->op, FG_ERR_UNSUPPORTED, "tensors of 2^31 elements or more are not supported on the GPU");
}

/* Reads an integer input that must be constant (known on the host). */
static fg_status *host_ints(const cuda_call *call, int index, int64_t *values, int max, int *count)
{
    if (!call->host_in[index].data)
        return op_error(&call->op, FG_ERR_UNSUPPORTED,
                        "input %d must be a constant on the GPU (it is computed at run time)", index);
    op_call host = call->op;
    host.in = (fg_tensor *)call->host_in;
    return tensor_read_int_input(&host, index, values, max, count);
}

/* Checks constant indices on the host like the CPU does. */
static fg_status *check_host_indices(const cuda_call *call, int index, int64_t dim, int axis)
{
    const fg_tensor *t = &call->host_in[index];
    if (!t->data)
        return NULL;
    int64_t n = fg_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        int64_t v = fg_load_i64(t->dtype, t->data, i);
        if (v < -dim || v >= dim)
            return op_error(&call->op, FG_ERR_INVALID_ARGUMENT, "index %lld is out of range for axis %d of size %lld",
                            (long long)v, axis, (long long)dim);
    }
    return NULL;
}

/* ------------------------------------------------------------ prepare: buffers */

/* Allocates the device buffer and uploads `bytes` of host data. */
static fg_status *upload_buffer(cuda_call *call, tc_state *st, const void *host, size_t bytes)
{
    st->kind = TC_BUFFER;
    st->buffer_bytes = bytes;
    if (!bytes)
        return NULL;
    cudaError_t e = cudaMalloc(&st->device_buffer, bytes);
    if (e != cudaSuccess) {
        st->device_buffer = NULL;
        return cuda_error(call, e, "allocating a constant buffer");
    }
    e = cudaMemcpy(st->device_buffer, host, bytes, cudaMemcpyHostToDevice);
    if (e != cudaSuccess)
        return cuda_error(call, e, "uploading a constant buffer");
    return NULL;
}

static fg_status *shape_prepare(cuda_call *call)
{
    tc_state *st;
    FG_TRY(state_new(call, TC_BUFFER, &st));
    int64_t rank = call->op.in[0].rank;
    int64_t s = ir_attr_int(call->op.node, "start", 0), e = ir_attr_int(call->op.node, "end", rank);
    if (s < 0) s += rank;
    if (e < 0) e += rank;
    s = s < 0 ? 0 : (s > rank ? rank : s);
    e = e < 0 ? 0 : (e > rank ? rank : e);
    if (e < s)
        e = s;
    int64_t values[FG_MAX_RANK];
    for (int64_t i = s; i < e; i++)
        values[i - s] = call->op.in[0].dims[i];
    return upload_buffer(call, st, values, (size_t)(e - s) * sizeof(int64_t));
}

static fg_status *size_prepare(cuda_call *call)
{
    tc_state *st;
    FG_TRY(state_new(call, TC_BUFFER, &st));
    int64_t n = fg_tensor_numel(&call->op.in[0]);
    return upload_buffer(call, st, &n, sizeof n);
}

static fg_status *constant_prepare(cuda_call *call)
{
    tc_state *st;
    FG_TRY(state_new(call, TC_BUFFER, &st));
    const ir_node *node = call->op.node;
    const ir_attr *a;
    size_t bytes = fg_tensor_nbytes(&call->op.out[0]);
    if ((a = ir_attr_find(node, "value")) && a->t) {
        if (a->t->nbytes < bytes)
            return op_error(&call->op, FG_ERR_CORRUPT, "constant tensor holds %zu bytes, its shape needs %zu",
                            a->t->nbytes, bytes);
        return upload_buffer(call, st, a->t->data, bytes);
    }
    if ((a = ir_attr_find(node, "value_float")))
        return upload_buffer(call, st, &a->f, sizeof(float));
    if ((a = ir_attr_find(node, "value_floats")))
        return upload_buffer(call, st, a->floats, (size_t)a->n * sizeof(float));
    if ((a = ir_attr_find(node, "value_int")))
        return upload_buffer(call, st, &a->i, sizeof(int64_t));
    if ((a = ir_attr_find(node, "value_ints")))
        return upload_buffer(call, st, a->ints, (size_t)a->n * sizeof(int64_t));
    return op_error(&call->op, FG_ERR_UNSUPPORTED, "this Constant has no numeric value attribute");
}

static fg_status *range_prepare(cuda_call *call)
{
    tc_state *st;
    FG_TRY(state_new(call, TC_BUFFER, &st));
    for (int i = 0; i < 3; i++)
        if (call->op.n_in <= i || !call->host_in[i].data)
            return op_error(&call->op, FG_ERR_UNSUPPORTED, "Range needs constant start, limit and delta on the GPU");
    const fg_dtype t = call->op.in[0].dtype;
    const fg_tensor *out = &call->op.out[0];
    const int64_t n = out->dims[0];
    size_t bytes = fg_tensor_nbytes(out);
    void *host = malloc(bytes ? bytes : 1);
    if (!host)
        return op_error(&call->op, FG_ERR_OUT_OF_MEMORY, "out of host memory preparing Range");
    const void *start_p = call->host_in[0].data, *delta_p = call->host_in[2].data;
    if (tensor_dtype_is_integer(t)) {
        int64_t start = fg_load_i64(t, start_p, 0), delta = fg_load_i64(t, delta_p, 0);
        for (int64_t i = 0; i < n; i++) {
            int64_t v = start + i * delta;
            switch (t) {
            case FG_INT64: ((int64_t *)host)[i] = v; break;
            case FG_INT32: ((int32_t *)host)[i] = (int32_t)v; break;
            default: fg_store_f64(t, host, i, (double)v);
            }
        }
    } else if (t == FG_FLOAT32) {
        float start = *(const float *)start_p, delta = *(const float *)delta_p;
        for (int64_t i = 0; i < n; i++)
            ((float *)host)[i] = start + (float)i * delta;
    } else {
        double start = fg_load_f64(t, start_p, 0), delta = fg_load_f64(t, delta_p, 0);
        for (int64_t i = 0; i < n; i++)
            fg_store_f64(t, host, i, start + (double)i * delta);
    }
    fg_status *status = upload_buffer(call, st, host, bytes);
    free(host);
    return status;
}

/* ------------------------------------------------------------ prepare: copies */

static fg_status *copy_input_prepare(cuda_call *call)
{
    tc_state *st;
    return state_new(call, TC_COPY_INPUT, &st);
}

/* A strided copy of input 0 into the contiguous output; picks the tiled
 * transpose when the copy is a batched 2-D transpose. */
static fg_status *strided_prepare(cuda_call *call, int rank, const int64_t *dims, const int64_t *strides,
                                  int64_t src_offset)
{
    tc_state *st;
    FG_TRY(state_new(call, TC_STRIDED, &st));
    if (st->esize != 1 && st->esize != 2 && st->esize != 4 && st->esize != 8)
        return op_error(&call->op, FG_ERR_UNSUPPORTED, "element type %s is not supported on the GPU",
                        fg_dtype_name(call->op.out[0].dtype));
    if (tc_build(&st->copy, rank, dims, strides) != 0)
        return too_big(call);
    st->src_offset = src_offset;
    const tc_strided *c = &st->copy;
    /* [.., P, Q] <- src [.., Q, P]: strides (P * Q, 1, P) */
    if (c->rank == 2 || c->rank == 3) {
        const int r = c->rank;
        const uint32_t p = c->dims[r - 2], q = c->dims[r - 1];
        const int is_2d = c->strides[r - 2] == 1 && (uint32_t)c->strides[r - 1] == p && p >= 8 && q >= 8;
        const int batch_ok = r == 2 || (uint32_t)c->strides[0] == p * q;
        if (is_2d && batch_ok && src_offset == 0 && (q + TC_TILE - 1) / TC_TILE <= 65535) {
            st->kind = TC_TRANSPOSE2D;
            st->batch = r == 3 ? c->dims[0] : 1;
            st->rows = q;
            st->cols = p;
        }
    }
    return NULL;
}

static fg_status *transpose_prepare(cuda_call *call)
{
    const fg_tensor *in = &call->op.in[0];
    int rank = in->rank, perm[FG_MAX_RANK];
    const int64_t *values;
    int n = ir_attr_ints(call->op.node, "perm", &values);
    if (!ir_attr_find(call->op.node, "perm")) {
        for (int d = 0; d < rank; d++)
            perm[d] = rank - 1 - d;
    } else {
        if (n != rank)
            return op_error(&call->op, FG_ERR_SHAPE, "perm has %d entries but the input has rank %d", n, rank);
        for (int d = 0; d < rank; d++) {
            int64_t p = values[d] < 0 ? values[d] + rank : values[d];
            if (p < 0 || p >= rank)
                return op_error(&call->op, FG_ERR_INVALID_ARGUMENT, "perm is not a permutation of 0..%d", rank - 1);
            perm[d] = (int)p;
        }
    }
    int64_t in_st[FG_MAX_RANK], dims[FG_MAX_RANK], st[FG_MAX_RANK];
    cu_contiguous_strides(rank, in->dims, in_st);
    for (int d = 0; d < rank; d++) {
        dims[d] = in->dims[perm[d]];
        st[d] = in_st[perm[d]];
    }
    return strided_prepare(call, rank, dims, st, 0);
}

static fg_status *slice_prepare(cuda_call *call)
{
    const op_call *oc = &call->op;
    const fg_tensor *in = &oc->in[0];
    const int rank = in->rank;
    if (oc->opset >= 10 && oc->n_in >= 3)
        for (int index = 1; index <= 4; index++)
            if (op_has_input(oc, index) && !call->host_in[index].data)
                return op_error(oc, FG_ERR_UNSUPPORTED,
                                "input %d must be a constant on the GPU (it is computed at run time)", index);
    op_call host = call->op;
    host.in = (fg_tensor *)call->host_in;
    slice_params sp;
    FG_TRY(slice_params_get(&host, &sp));
    const int64_t *start = sp.start, *step = sp.step, *count = sp.count;
    for (int d = 0; d < rank; d++)
        if (count[d] != oc->out[0].dims[d])
            return op_error(oc, FG_ERR_INTERNAL, "slice shape disagrees with the planned output shape");
    int64_t in_st[FG_MAX_RANK], st[FG_MAX_RANK], offset = 0;
    cu_contiguous_strides(rank, in->dims, in_st);
    for (int d = 0; d < rank; d++) {
        st[d] = in_st[d] * step[d];
        offset += start[d] * in_st[d];
    }
    return strided_prepare(call, rank, count, st, offset);
}

static fg_status *expand_prepare(cuda_call *call)
{
    const fg_tensor *out = &call->op.out[0];
    int64_t st[FG_MAX_RANK];
    op_broadcast_strides(&call->op.in[0], out->rank, out->dims, st);
    return strided_prepare(call, out->rank, out->dims, st, 0);
}

static fg_status *tile_prepare(cuda_call *call)
{
    const fg_tensor *in = &call->op.in[0], *out = &call->op.out[0];
    int64_t in_st[FG_MAX_RANK], dims[TC_MAX_RANK], st[TC_MAX_RANK];
    cu_contiguous_strides(in->rank, in->dims, in_st);
    for (int d = 0; d < in->rank; d++) {
        dims[2 * d] = in->dims[d] ? out->dims[d] / in->dims[d] : 0;
        st[2 * d] = 0;
        dims[2 * d + 1] = in->dims[d];
        st[2 * d + 1] = in_st[d];
    }
    return strided_prepare(call, 2 * in->rank, dims, st, 0);
}

static fg_status *block_size_of(const cuda_call *call, int64_t *block)
{
    *block = ir_attr_int(call->op.node, "blocksize", 0);
    if (*block <= 0)
        return op_error(&call->op, FG_ERR_INVALID_ARGUMENT, "blocksize must be positive (got %lld)", (long long)*block);
    if (call->op.in[0].rank != 4)
        return op_error(&call->op, FG_ERR_SHAPE, "input must be 4-D NCHW, got rank %d", call->op.in[0].rank);
    return NULL;
}

static fg_status *depth_to_space_prepare(cuda_call *call)
{
    int64_t b;
    FG_TRY(block_size_of(call, &b));
    const int64_t *in = call->op.in[0].dims;
    int64_t n = in[0], c = in[1] / (b * b), h = in[2], w = in[3], hw = h * w;
    int crd = !strcmp(ir_attr_string(call->op.node, "mode", "DCR"), "CRD");
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
    return strided_prepare(call, 6, dims, st, 0);
}

static fg_status *space_to_depth_prepare(cuda_call *call)
{
    int64_t b;
    FG_TRY(block_size_of(call, &b));
    const int64_t *in = call->op.in[0].dims;
    int64_t c = in[1], h = in[2], w = in[3];
    /* Output viewed as [n, b1, b2, c, h/b, w/b]; input is [n, c, h/b, b1, w/b, b2]. */
    int64_t dims[6] = {in[0], b, b, c, h / b, w / b};
    int64_t st[6] = {c * h * w, w, 1, h * w, b * w, b};
    return strided_prepare(call, 6, dims, st, 0);
}

/* ------------------------------------------------------------ prepare: Concat, Split */

static fg_status *parts_prepare(cuda_call *call, int kind)
{
    tc_state *st;
    FG_TRY(state_new(call, kind, &st));
    const fg_tensor *whole = kind == TC_CONCAT ? &call->op.out[0] : &call->op.in[0];
    st->esize = fg_dtype_size(whole->dtype);
    if (fg_tensor_numel(whole) > CU_INDEX_LIMIT)
        return too_big(call);
    int axis;
    FG_TRY(op_axis(&call->op, ir_attr_int(call->op.node, "axis", 0), whole->rank, &axis));
    st->axis = axis;
    st->outer = (uint32_t)fg_shape_numel(axis, whole->dims);
    st->inner_elems = (uint32_t)fg_shape_numel(whole->rank - axis - 1, whole->dims + axis + 1);
    st->n = (uint32_t)fg_tensor_numel(whole);
    return NULL;
}

static fg_status *concat_prepare(cuda_call *call) { return parts_prepare(call, TC_CONCAT); }
static fg_status *split_prepare(cuda_call *call) { return parts_prepare(call, TC_SPLIT); }

/* ------------------------------------------------------------ prepare: gathers and scatters */

static fg_status *gather_prepare(cuda_call *call)
{
    tc_state *st;
    FG_TRY(state_new(call, TC_GATHER, &st));
    const fg_tensor *data = &call->op.in[0], *idx = &call->op.in[1];
    if (!tensor_dtype_is_integer(idx->dtype))
        return op_error(&call->op, FG_ERR_DTYPE, "indices must be integers, got %s", fg_dtype_name(idx->dtype));
    int axis;
    FG_TRY(op_axis(&call->op, ir_attr_int(call->op.node, "axis", 0), data->rank, &axis));
    if (fg_tensor_numel(data) > CU_INDEX_LIMIT)
        return too_big(call);
    st->axis = axis;
    st->dim = (uint32_t)data->dims[axis];
    st->outer = (uint32_t)fg_shape_numel(axis, data->dims);
    st->inner_elems = (uint32_t)fg_shape_numel(data->rank - axis - 1, data->dims + axis + 1);
    st->n_idx = (uint32_t)fg_tensor_numel(idx);
    return check_host_indices(call, 1, data->dims[axis], axis);
}

/* The scatter reduction: 0 none, 1 add, 2 mul, 3 max, 4 min (float32 only). */
static fg_status *scatter_mode(const cuda_call *call, fg_dtype dtype, int *mode)
{
    const char *r = ir_attr_string(call->op.node, "reduction", "none");
    *mode = !strcmp(r, "none") ? 0 : !strcmp(r, "add") ? 1 : !strcmp(r, "mul") ? 2 : !strcmp(r, "max") ? 3
          : !strcmp(r, "min") ? 4 : -1;
    if (*mode < 0 || (*mode > 0 && dtype != FG_FLOAT32))
        return op_error(&call->op, FG_ERR_UNSUPPORTED,
                        "reduction '%s' on %s is not supported on the GPU (reductions need float32)", r,
                        fg_dtype_name(dtype));
    return NULL;
}

static fg_status *elements_prepare(cuda_call *call, int kind)
{
    tc_state *st;
    FG_TRY(state_new(call, kind, &st));
    const fg_tensor *data = &call->op.in[0], *idx = &call->op.in[1];
    if (!tensor_dtype_is_integer(idx->dtype))
        return op_error(&call->op, FG_ERR_DTYPE, "indices must be integers, got %s", fg_dtype_name(idx->dtype));
    if (idx->rank != data->rank)
        return op_error(&call->op, FG_ERR_SHAPE, "indices have rank %d but data has rank %d", idx->rank, data->rank);
    int axis;
    FG_TRY(op_axis(&call->op, ir_attr_int(call->op.node, "axis", 0), data->rank, &axis));
    if (fg_tensor_numel(data) > CU_INDEX_LIMIT || fg_tensor_numel(idx) > CU_INDEX_LIMIT)
        return too_big(call);
    int64_t dst[FG_MAX_RANK];
    cu_contiguous_strides(data->rank, data->dims, dst);
    tc_elements *e = &st->elements;
    e->rank = idx->rank;
    e->axis = axis;
    e->axis_dim = (uint32_t)data->dims[axis];
    for (int d = 0; d < idx->rank; d++) {
        e->dims[d] = (uint32_t)idx->dims[d];
        e->strides[d] = (uint32_t)dst[d];
    }
    e->idx_axis_stride = (uint32_t)fg_shape_numel(idx->rank - axis - 1, idx->dims + axis + 1);
    if (kind == TC_SCATTER_ELEMENTS)
        FG_TRY(scatter_mode(call, data->dtype, &st->add));
    return check_host_indices(call, 1, data->dims[axis], axis);
}

static fg_status *gather_elements_prepare(cuda_call *call) { return elements_prepare(call, TC_GATHER_ELEMENTS); }
static fg_status *scatter_elements_prepare(cuda_call *call) { return elements_prepare(call, TC_SCATTER_ELEMENTS); }

static fg_status *nd_prepare(cuda_call *call, int kind)
{
    tc_state *st;
    FG_TRY(state_new(call, kind, &st));
    const fg_tensor *data = &call->op.in[0], *idx = &call->op.in[1];
    if (!tensor_dtype_is_integer(idx->dtype) || idx->rank < 1)
        return op_error(&call->op, FG_ERR_DTYPE, "indices must be integers of rank 1 or more");
    if (fg_tensor_numel(data) > CU_INDEX_LIMIT || fg_tensor_numel(idx) > CU_INDEX_LIMIT)
        return too_big(call);
    int b = kind == TC_GATHER_ND ? (int)ir_attr_int(call->op.node, "batch_dims", 0) : 0;
    int k = (int)idx->dims[idx->rank - 1];
    if (b < 0 || k < 0 || b + k > data->rank || b >= idx->rank)
        return op_error(&call->op, FG_ERR_SHAPE, "index tuples do not fit the data");
    int64_t dst[FG_MAX_RANK];
    cu_contiguous_strides(data->rank, data->dims, dst);
    int64_t slice = fg_shape_numel(data->rank - b - k, data->dims + b + k);
    tc_nd *p = &st->nd;
    p->k = k;
    if (kind == TC_GATHER_ND)
        p->tuples = (uint32_t)fg_shape_numel(idx->rank - 1 - b, idx->dims + b);
    else
        p->tuples = (uint32_t)(k ? fg_tensor_numel(idx) / k : fg_shape_numel(idx->rank - 1, idx->dims));
    st->nd_slice_elems = (uint32_t)slice;
    p->slice = (uint32_t)slice;
    p->batch_stride = slice ? (uint32_t)(fg_shape_numel(data->rank - b, data->dims + b) / slice) : 0;
    for (int j = 0; j < k; j++) {
        p->dims[j] = (uint32_t)data->dims[b + j];
        p->strides[j] = slice ? (uint32_t)(dst[b + j] / slice) : 0;
    }
    if (kind == TC_SCATTER_ND)
        FG_TRY(scatter_mode(call, data->dtype, &st->add));
    /* constant indices: check them like the CPU */
    const fg_tensor *hi = &call->host_in[1];
    if (hi->data && k > 0) {
        int64_t total = fg_tensor_numel(hi);
        for (int64_t i = 0; i < total; i++) {
            int j = (int)(i % k);
            int64_t dim = data->dims[b + j], v = fg_load_i64(hi->dtype, hi->data, i);
            if (v < -dim || v >= dim)
                return op_error(&call->op, FG_ERR_INVALID_ARGUMENT,
                                "index %lld is out of range for axis %d of size %lld", (long long)v, b + j,
                                (long long)dim);
        }
    }
    return NULL;
}

static fg_status *gather_nd_prepare(cuda_call *call) { return nd_prepare(call, TC_GATHER_ND); }
static fg_status *scatter_nd_prepare(cuda_call *call) { return nd_prepare(call, TC_SCATTER_ND); }

/* ------------------------------------------------------------ prepare: Pad, ConstantOfShape, Trilu */

static fg_status *pad_prepare(cuda_call *call)
{
    const op_call *oc = &call->op;
    tc_state *st;
    FG_TRY(state_new(call, TC_PAD, &st));
    const fg_tensor *in = &oc->in[0];
    const int rank = in->rank;
    if (fg_tensor_numel(in) > CU_INDEX_LIMIT)
        return too_big(call);
    tc_pad *p = &st->pad;
    const char *m = ir_attr_string(oc->node, "mode", "constant");
    if (!strcmp(m, "constant")) p->mode = PAD_CONSTANT;
    else if (!strcmp(m, "reflect")) p->mode = PAD_REFLECT;
    else if (!strcmp(m, "edge")) p->mode = PAD_EDGE;
    else if (!strcmp(m, "wrap")) p->mode = PAD_WRAP;
    else
        return op_error(oc, FG_ERR_UNSUPPORTED, "pad mode '%s' is not supported", m);
    int64_t pads[2 * FG_MAX_RANK];
    int n = 0;
    if (oc->opset < 11) {
        const int64_t *v;
        n = ir_attr_ints(oc->node, "pads", &v);
        if (n > 2 * FG_MAX_RANK)
            return op_error(oc, FG_ERR_SHAPE, "pads has %d entries", n);
        memcpy(pads, v, (size_t)n * sizeof *v);
    } else {
        FG_TRY(host_ints(call, 1, pads, 2 * FG_MAX_RANK, &n));
    }
    int64_t axes[FG_MAX_RANK];
    int n_axes = rank;
    if (op_has_input(oc, 3)) {
        FG_TRY(host_ints(call, 3, axes, FG_MAX_RANK, &n_axes));
        FG_TRY(tensor_normalise_axes(&call->op, axes, n_axes, rank));
    } else {
        for (int d = 0; d < rank; d++)
            axes[d] = d;
    }
    if (n != 2 * n_axes)
        return op_error(oc, FG_ERR_SHAPE, "pads has %d entries; %d axes need %d", n, n_axes, 2 * n_axes);
    int64_t in_st[FG_MAX_RANK];
    cu_contiguous_strides(rank, in->dims, in_st);
    p->rank = rank;
    for (int d = 0; d < rank; d++) {
        p->begin[d] = 0;
        p->out_dims[d] = (uint32_t)oc->out[0].dims[d];
        p->in_dims[d] = (uint32_t)in->dims[d];
        p->in_strides[d] = (uint32_t)in_st[d];
    }
    for (int i = 0; i < n_axes; i++)
        p->begin[axes[i]] = (int32_t)pads[i];
    /* the constant value */
    unsigned char value[16] = {0};
    if (p->mode == PAD_CONSTANT) {
        if (oc->opset < 11) {
            fg_store_f64(in->dtype, value, 0, ir_attr_float(oc->node, "value", 0.0f));
        } else if (op_has_input(oc, 2) && fg_tensor_numel(&oc->in[2]) > 0) {
            const fg_tensor *hv = &call->host_in[2];
            if (hv->data) {
                if (hv->dtype != in->dtype)
                    fg_store_f64(in->dtype, value, 0, fg_load_f64(hv->dtype, hv->data, 0));
                else
                    memcpy(value, hv->data, st->esize);
            } else if (oc->in[2].dtype == in->dtype) {
                p->value_ptr = oc->in[2].data;
            } else {
                return op_error(oc, FG_ERR_UNSUPPORTED,
                                "a computed pad value of another element type is not supported on the GPU");
            }
        }
    }
    memcpy(&p->value, value, sizeof p->value);
    if (st->esize != 1 && st->esize != 2 && st->esize != 4 && st->esize != 8)
        return op_error(oc, FG_ERR_UNSUPPORTED, "element type %s is not supported on the GPU",
                        fg_dtype_name(in->dtype));
    return NULL;
}

static fg_status *constant_of_shape_prepare(cuda_call *call)
{
    tc_state *st;
    FG_TRY(state_new(call, TC_FILL, &st));
    unsigned char value[16] = {0};
    const ir_attr *a = ir_attr_find(call->op.node, "value");
    if (a && a->t && st->esize <= sizeof value)
        memcpy(value, a->t->data, st->esize);
    memcpy(&st->fill_bits, value, sizeof st->fill_bits);
    if (st->esize != 1 && st->esize != 2 && st->esize != 4 && st->esize != 8)
        return op_error(&call->op, FG_ERR_UNSUPPORTED, "element type %s is not supported on the GPU",
                        fg_dtype_name(call->op.out[0].dtype));
    return NULL;
}

static fg_status *trilu_prepare(cuda_call *call)
{
    tc_state *st;
    FG_TRY(state_new(call, TC_TRILU, &st));
    const fg_tensor *in = &call->op.in[0];
    if (in->rank < 2)
        return op_error(&call->op, FG_ERR_SHAPE, "input must have rank 2 or more, got %d", in->rank);
    st->rows = (uint32_t)in->dims[in->rank - 2];
    st->cols = (uint32_t)in->dims[in->rank - 1];
    st->upper = (int)ir_attr_int(call->op.node, "upper", 1);
    st->trilu_k = 0;
    if (op_has_input(&call->op, 1) && fg_tensor_numel(&call->op.in[1]) > 0) {
        if (call->host_in[1].data)
            st->trilu_k = fg_load_i64(call->host_in[1].dtype, call->host_in[1].data, 0);
        /* else read on the device in run */
    }
    return NULL;
}

/* ------------------------------------------------------------ run */

static fg_status *copy_bytes(cuda_call *call, void *dst, const void *src, size_t bytes)
{
    if (!bytes || dst == src)
        return NULL;
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, call->stream);
    if (e != cudaSuccess)
        return cuda_error(call, e, "device copy");
    return NULL;
}

static void run_parts(cuda_call *call, const tc_state *st)
{
    const op_call *oc = &call->op;
    const int concat = st->kind == TC_CONCAT;
    const fg_tensor *whole = concat ? &oc->out[0] : &oc->in[0];
    const int n_parts = concat ? oc->n_in : oc->n_out;
    const fg_tensor *parts = concat ? oc->in : oc->out;
    const size_t inner_bytes = (size_t)st->inner_elems * st->esize;
    /* one unit for all launches: divides the inner run and every address */
    uint64_t mask = (uint64_t)inner_bytes | (uint64_t)(uintptr_t)whole->data;
    for (int i = 0; i < n_parts; i++)
        if (parts[i].data)
            mask |= (uint64_t)(uintptr_t)parts[i].data;
    size_t unit = unit_for(mask);
    if (inner_bytes == 0)
        return;
    const uint32_t inner = (uint32_t)(inner_bytes / unit);
    const uint32_t whole_axis = (uint32_t)whole->dims[st->axis];
    uint32_t axis_done = 0;
    for (int first = 0; first < n_parts; first += TC_BATCH) {
        tc_parts p;
        memset(&p, 0, sizeof p);
        p.n = n_parts - first < TC_BATCH ? n_parts - first : TC_BATCH;
        p.outer = st->outer;
        p.inner = inner;
        p.whole_axis = whole_axis;
        p.batch_start = axis_done;
        uint32_t at = 0;
        for (int k = 0; k < p.n; k++) {
            const fg_tensor *t = &parts[first + k];
            p.begin[k] = at;
            p.part[k] = t->data;
            at += (uint32_t)t->dims[st->axis];
        }
        p.begin[p.n] = at;
        p.batch_axis = at;
        axis_done += at;
        const uint32_t n = st->outer * at * inner;
        if (n == 0)
            continue;
        TC_LAUNCH16(unit, tc_parts, cu_blocks(n), CU_THREADS, call->stream, p, n, whole->data, concat);
    }
}

static fg_status *tc_run(cuda_call *call)
{
    const tc_state *st = (const tc_state *)call->op.state;
    const op_call *oc = &call->op;
    cudaStream_t stream = call->stream;
    switch (st->kind) {
    case TC_COPY_INPUT:
        FG_TRY(copy_bytes(call, oc->out[0].data, oc->in[0].data, fg_tensor_nbytes(&oc->in[0])));
        if (oc->n_out > 1 && oc->out[1].data && fg_tensor_numel(&oc->out[1]) > 0) {
            /* Dropout's mask: all true */
            cudaError_t e = cudaMemsetAsync(oc->out[1].data, 1, (size_t)fg_tensor_numel(&oc->out[1]), stream);
            if (e != cudaSuccess)
                return cuda_error(call, e, "device memset");
        }
        return NULL;
    case TC_BUFFER:
        return copy_bytes(call, oc->out[0].data, st->device_buffer, st->buffer_bytes);
    case TC_STRIDED: {
        if (st->n == 0)
            return NULL;
        const char *src = (const char *)oc->in[0].data + st->src_offset * (int64_t)st->esize;
        tc_strided w;
        size_t unit = tc_widen(&st->copy, st->esize, src, oc->out[0].data, &w);
        const uint32_t n = tc_numel(&w);
        TC_LAUNCH16(unit, tc_copy, cu_blocks(n), CU_THREADS, stream, w, n, oc->out[0].data, src);
        break;
    }
    case TC_TRANSPOSE2D: {
        if (st->n == 0)
            return NULL;
        dim3 block(TC_TILE, 8);
        dim3 grid((st->cols + TC_TILE - 1) / TC_TILE, (st->rows + TC_TILE - 1) / TC_TILE,
                  st->batch < 65535 ? st->batch : 65535);
        TC_LAUNCH(st->esize, tc_transpose, grid, block, stream, st->batch, st->rows, st->cols, oc->out[0].data,
                  oc->in[0].data);
        break;
    }
    case TC_CONCAT:
    case TC_SPLIT:
        if (st->n == 0)
            return NULL;
        run_parts(call, st);
        break;
    case TC_GATHER: {
        if (st->n == 0)
            return NULL;
        const size_t inner_bytes = (size_t)st->inner_elems * st->esize;
        size_t unit = unit_for((uint64_t)inner_bytes | (uint64_t)(uintptr_t)oc->in[0].data |
                               (uint64_t)(uintptr_t)oc->out[0].data);
        const uint32_t inner = (uint32_t)(inner_bytes / unit);
        const uint32_t n = st->outer * st->n_idx * inner;
        if (n == 0)
            return NULL;
        TC_LAUNCH16(unit, tc_gather, cu_blocks(n), CU_THREADS, stream, n, st->n_idx, st->dim, inner,
                    oc->in[1].dtype, oc->in[1].data, oc->out[0].data, oc->in[0].data);
        break;
    }
    case TC_GATHER_ELEMENTS:
        if (st->n == 0)
            return NULL;
        TC_LAUNCH(st->esize, tc_gather_elements, cu_blocks(st->n), CU_THREADS, stream, st->elements, st->n,
                  oc->in[1].dtype, oc->in[1].data, oc->out[0].data, oc->in[0].data);
        break;
    case TC_SCATTER_ELEMENTS: {
        FG_TRY(copy_bytes(call, oc->out[0].data, oc->in[0].data, fg_tensor_nbytes(&oc->in[0])));
        const uint32_t along = st->elements.dims[st->elements.axis];
        const uint32_t n_lines = along ? (uint32_t)(fg_tensor_numel(&oc->in[1]) / along) : 0;
        if (n_lines == 0)
            return NULL;
        TC_LAUNCH(st->esize, tc_scatter_elements, cu_blocks(n_lines), CU_THREADS, stream, st->elements, n_lines,
                  oc->in[1].dtype, oc->in[1].data, oc->out[0].data, oc->in[2].data, st->add);
        break;
    }
    case TC_GATHER_ND:
    case TC_SCATTER_ND: {
        const int scatter = st->kind == TC_SCATTER_ND;
        if (scatter)
            FG_TRY(copy_bytes(call, oc->out[0].data, oc->in[0].data, fg_tensor_nbytes(&oc->in[0])));
        tc_nd p = st->nd;
        const uint32_t tuples_total = scatter ? p.tuples : (uint32_t)(st->n / (st->nd_slice_elems ? st->nd_slice_elems : 1));
        const void *other = scatter ? oc->in[2].data : oc->in[0].data;
        size_t unit = st->esize;
        if (!(scatter && st->add)) {
            const size_t slice_bytes = (size_t)st->nd_slice_elems * st->esize;
            unit = unit_for((uint64_t)slice_bytes | (uint64_t)(uintptr_t)other | (uint64_t)(uintptr_t)oc->out[0].data);
        }
        p.slice = (uint32_t)((size_t)st->nd_slice_elems * st->esize / unit);
        const uint32_t n = tuples_total * p.slice;
        if (n == 0)
            return NULL;
        if (scatter && st->add)
            cu_launch(tc_scatter_nd_reduce, cu_blocks(p.slice), CU_THREADS, 0, stream,
                p, tuples_total, oc->in[1].dtype, oc->in[1].data, (float *)oc->out[0].data, (const float *)other,
                st->add);
        else if (scatter)
            TC_LAUNCH16(unit, tc_scatter_nd, cu_blocks(n), CU_THREADS, stream, p, n, oc->in[1].dtype, oc->in[1].data,
                        oc->out[0].data, other);
        else
            TC_LAUNCH16(unit, tc_gather_nd, cu_blocks(n), CU_THREADS, stream, p, n, oc->in[1].dtype, oc->in[1].data,
                        oc->out[0].data, other);
        break;
    }
    case TC_PAD:
        if (st->n == 0)
            return NULL;
        TC_LAUNCH(st->esize, tc_pad, cu_blocks(st->n), CU_THREADS, stream, st->pad, st->n, oc->out[0].data,
                  oc->in[0].data);
        break;
    case TC_FILL:
        if (st->n == 0)
            return NULL;
        TC_LAUNCH(st->esize, tc_fill, cu_blocks(st->n), CU_THREADS, stream, st->n, oc->out[0].data, st->fill_bits);
        break;
    case TC_TRILU: {
        if (st->n == 0 || st->cols == 0 || st->rows == 0)
            return NULL;
        const void *k_ptr = NULL;
        fg_dtype k_type = FG_INT64;
        if (op_has_input(oc, 1) && fg_tensor_numel(&oc->in[1]) > 0 && !call->host_in[1].data) {
            k_ptr = oc->in[1].data;
            k_type = oc->in[1].dtype;
        }
        TC_LAUNCH(st->esize, tc_trilu, cu_blocks(st->n), CU_THREADS, stream, st->n, st->rows, st->cols, st->upper,
                  st->trilu_k, k_ptr, k_type, oc->out[0].data, oc->in[0].data);
        break;
    }
    default:
        return NULL;
    }
    CU_CHECK_LAUNCH(call, "data movement kernel");
    return NULL;
}

/* ------------------------------------------------------------ table */

extern "C" const cuda_op_def cuda_family_tensor[] = {
    {"Constant", constant_prepare, tc_run, tc_release},
    {"Shape", shape_prepare, tc_run, tc_release},
    {"Size", size_prepare, tc_run, tc_release},
    {"Reshape", copy_input_prepare, tc_run, tc_release},
    {"Flatten", copy_input_prepare, tc_run, tc_release},
    {"Squeeze", copy_input_prepare, tc_run, tc_release},
    {"Unsqueeze", copy_input_prepare, tc_run, tc_release},
    {"Identity", copy_input_prepare, tc_run, tc_release},
    {"Dropout", copy_input_prepare, tc_run, tc_release},
    {"Transpose", transpose_prepare, tc_run, tc_release},
    {"Concat", concat_prepare, tc_run, tc_release},
    {"Split", split_prepare, tc_run, tc_release},
    {"Slice", slice_prepare, tc_run, tc_release},
    {"Gather", gather_prepare, tc_run, tc_release},
    {"GatherElements", gather_elements_prepare, tc_run, tc_release},
    {"ScatterND", scatter_nd_prepare, tc_run, tc_release},
    {"GatherND", gather_nd_prepare, tc_run, tc_release},
    {"ScatterElements", scatter_elements_prepare, tc_run, tc_release},
    {"Scatter", scatter_elements_prepare, tc_run, tc_release},
    {"Expand", expand_prepare, tc_run, tc_release},
    {"Tile", tile_prepare, tc_run, tc_release},
    {"Pad", pad_prepare, tc_run, tc_release},
    {"ConstantOfShape", constant_of_shape_prepare, tc_run, tc_release},
    {"Range", range_prepare, tc_run, tc_release},
    {"DepthToSpace", depth_to_space_prepare, tc_run, tc_release},
    {"SpaceToDepth", space_to_depth_prepare, tc_run, tc_release},
    {"Trilu", trilu_prepare, tc_run, tc_release},
    {NULL, NULL, NULL, NULL},
};
