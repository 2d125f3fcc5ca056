/* NCHW convolution kernels (see conv_kernels.h): GEMM micro-kernels (8x32
 * AVX-512, 6x16 AVX2) over the input or per-thread im2col panels, a direct
 * kernel for first layers, and depthwise row loops. Bias and activation
 * are fused into the stores. Speeds quoted in comments were measured on the
 * development machine (AMD EPYC, Zen 5, 2 cores). */
#include "ops/conv_kernels.h"

#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <string.h>

/* AVX2 tile: 6 rows x 16 columns; AVX-512 tile: 8 rows x 32 columns (the
 * weights are packed for the tile this CPU runs). */
#define MR 6
#define NR 16
#define MR512 8
#define NR512 32
#define AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma")))

static int cpu_has_avx512(void)
{
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                 __builtin_cpu_supports("avx512vl");
    }
    return cached;
}

static int tile_rows(void) { return cpu_has_avx512() ? MR512 : MR; }
static int tile_cols(void) { return cpu_has_avx512() ? NR512 : NR; }

/* ------------------------------------------------ vector activations */

static inline __m256 exp8(__m256 x)
{
    /* exp(x) = 2^n * e^r, |r| <= ln2/2, polynomial for e^r (rel. error ~1e-7) */
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

static inline __m256 sigmoid8(__m256 x)
{
    __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

/* Activations that have a vector form here; the others (tanh) are applied
 * with op_activation_apply after the store. */
static inline int act_vectorised(const op_activation *act) { return act->kind != OP_ACT_TANH; }

static inline __m256 act8(const op_activation *act, __m256 v)
{
    switch (act->kind) {
    case OP_ACT_NONE: return v;
    case OP_ACT_RELU: return _mm256_max_ps(v, _mm256_setzero_ps());
    case OP_ACT_LEAKY_RELU: {
        __m256 neg = _mm256_mul_ps(v, _mm256_set1_ps(act->alpha));
        return _mm256_blendv_ps(v, neg, _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ));
    }
    case OP_ACT_CLIP:
        return _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(act->alpha)), _mm256_set1_ps(act->beta));
    case OP_ACT_SIGMOID: return sigmoid8(v);
    case OP_ACT_HARD_SIGMOID: {
        __m256 t = _mm256_fmadd_ps(v, _mm256_set1_ps(act->alpha), _mm256_set1_ps(act->beta));
        return _mm256_min_ps(_mm256_max_ps(t, _mm256_setzero_ps()), _mm256_set1_ps(1.0f));
    }
    case OP_ACT_HARD_SWISH: {
        __m256 t = _mm256_fmadd_ps(v, _mm256_set1_ps(1.0f / 6.0f), _mm256_set1_ps(0.5f));
        t = _mm256_min_ps(_mm256_max_ps(t, _mm256_setzero_ps()), _mm256_set1_ps(1.0f));
        return _mm256_mul_ps(v, t);
    }
    case OP_ACT_SILU: return _mm256_mul_ps(v, sigmoid8(v));
    case OP_ACT_TANH: return v;
    }
    return v;
}

/* Scalar form consistent with act8 for the few border elements. */
static inline float act1(const op_activation *act, float v)
{
    if (act->kind == OP_ACT_SIGMOID || act->kind == OP_ACT_SILU) {
        float r[8];
        _mm256_storeu_ps(r, act8(act, _mm256_set1_ps(v)));
        return r[0];
    }
    return op_activation_scalar(act, v);
}

AVX512 static inline __m512 exp16(__m512 x)
{
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.3f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

AVX512 static inline __m512 sigmoid16(__m512 x)
{
    __m512 one = _mm512_set1_ps(1.0f);
    return _mm512_div_ps(one, _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

AVX512 static inline __m512 act16(const op_activation *act, __m512 v)
{
    switch (act->kind) {
    case OP_ACT_NONE: return v;
    case OP_ACT_RELU: return _mm512_max_ps(v, _mm512_setzero_ps());
    case OP_ACT_LEAKY_RELU: {
        __mmask16 neg = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ);
        return _mm512_mask_mul_ps(v, neg, v, _mm512_set1_ps(act->alpha));
    }
    case OP_ACT_CLIP:
        return _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(act->alpha)), _mm512_set1_ps(act->beta));
    case OP_ACT_SIGMOID: return sigmoid16(v);
    case OP_ACT_HARD_SIGMOID: {
        __m512 t = _mm512_fmadd_ps(v, _mm512_set1_ps(act->alpha), _mm512_set1_ps(act->beta));
        return _mm512_min_ps(_mm512_max_ps(t, _mm512_setzero_ps()), _mm512_set1_ps(1.0f));
    }
    case OP_ACT_HARD_SWISH: {
        __m512 t = _mm512_fmadd_ps(v, _mm512_set1_ps(1.0f / 6.0f), _mm512_set1_ps(0.5f));
        t = _mm512_min_ps(_mm512_max_ps(t, _mm512_setzero_ps()), _mm512_set1_ps(1.0f));
        return _mm512_mul_ps(v, t);
    }
    case OP_ACT_SILU: return _mm512_mul_ps(v, sigmoid16(v));
    case OP_ACT_TANH: return v;
    }
    return v;
}

/* bits [lo, hi) of a 16-bit mask (empty when hi <= lo) */
static inline __mmask16 bit_range16(int64_t lo, int64_t hi)
{
    if (lo < 0)
        lo = 0;
    if (hi > 16)
        hi = 16;
    if (hi <= lo)
        return 0;
    return (__mmask16)((((uint32_t)1 << hi) - 1) & ~(((uint32_t)1 << lo) - 1));
}

/* ------------------------------------------------------- GEMM tiles */

/* C[0..mvalid)[0..nvalid) = act(bias + A . B), A packed [K][8], B rows of
 * 32 floats ldb apart, C rows ldc apart. */
AVX512 static inline void tile_8x32_body(int64_t K, const float *a, const float *b, int64_t ldb, const float *bias,
                                         float *c, int64_t ldc, int mvalid, int nvalid, const op_activation *act,
                                         int prefetch)
{
    __m512 c00 = _mm512_set1_ps(bias[0]), c01 = c00;
    __m512 c10 = _mm512_set1_ps(bias[1]), c11 = c10;
    __m512 c20 = _mm512_set1_ps(bias[2]), c21 = c20;
    __m512 c30 = _mm512_set1_ps(bias[3]), c31 = c30;
    __m512 c40 = _mm512_set1_ps(bias[4]), c41 = c40;
    __m512 c50 = _mm512_set1_ps(bias[5]), c51 = c50;
    __m512 c60 = _mm512_set1_ps(bias[6]), c61 = c60;
    __m512 c70 = _mm512_set1_ps(bias[7]), c71 = c70;
    for (int64_t k = 0; k < K; k++) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
        __m512 av;
        if (prefetch) {
            /* B rows are separate streams P floats apart: fetch the rows of
             * the block two tiles ahead */
            _mm_prefetch((const char *)(b + 2 * NR512), _MM_HINT_T0);
            _mm_prefetch((const char *)(b + 2 * NR512 + 16), _MM_HINT_T0);
        }
#define ROW(r)                                   \
    av = _mm512_set1_ps(a[r]);                   \
    c##r##0 = _mm512_fmadd_ps(av, b0, c##r##0);  \
    c##r##1 = _mm512_fmadd_ps(av, b1, c##r##1);
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5) ROW(6) ROW(7)
#undef ROW
        a += MR512;
        b += ldb;
    }
    __m512 acc[MR512][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31},
                            {c40, c41}, {c50, c51}, {c60, c61}, {c70, c71}};
    int vec_act = act_vectorised(act);
    __mmask16 m0 = nvalid >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nvalid) - 1);
    __mmask16 m1 = nvalid >= 32 ? (__mmask16)0xFFFF : nvalid > 16 ? (__mmask16)((1u << (nvalid - 16)) - 1) : 0;
    for (int r = 0; r < mvalid; r++) {
        float *cr = c + r * ldc;
        __m512 v0 = vec_act ? act16(act, acc[r][0]) : acc[r][0];
        __m512 v1 = vec_act ? act16(act, acc[r][1]) : acc[r][1];
        if (nvalid == NR512) {
            _mm512_storeu_ps(cr, v0);
            _mm512_storeu_ps(cr + 16, v1);
        } else {
            _mm512_mask_storeu_ps(cr, m0, v0);
            _mm512_mask_storeu_ps(cr + 16, m1, v1);
        }
        if (!vec_act)
            op_activation_apply(act, cr, nvalid);
    }
}

static const int32_t tail_mask_table[32] = {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                            0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0};

/* C[0..mvalid)[0..nvalid) = act(bias + A . B), A packed [K][MR], B rows of
 * NR floats ldb apart, C rows ldc apart. */
static inline void tile_6x16(int64_t K, const float *a, const float *b, int64_t ldb, const float *bias, float *c,
                             int64_t ldc, int mvalid, int nvalid, const op_activation *act)
{
    __m256 c00 = _mm256_broadcast_ss(bias + 0), c01 = c00;
    __m256 c10 = _mm256_broadcast_ss(bias + 1), c11 = c10;
    __m256 c20 = _mm256_broadcast_ss(bias + 2), c21 = c20;
    __m256 c30 = _mm256_broadcast_ss(bias + 3), c31 = c30;
    __m256 c40 = _mm256_broadcast_ss(bias + 4), c41 = c40;
    __m256 c50 = _mm256_broadcast_ss(bias + 5), c51 = c50;
    for (int64_t k = 0; k < K; k++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        __m256 av;
        av = _mm256_broadcast_ss(a + 0);
        c00 = _mm256_fmadd_ps(av, b0, c00);
        c01 = _mm256_fmadd_ps(av, b1, c01);
        av = _mm256_broadcast_ss(a + 1);
        c10 = _mm256_fmadd_ps(av, b0, c10);
        c11 = _mm256_fmadd_ps(av, b1, c11);
        av = _mm256_broadcast_ss(a + 2);
        c20 = _mm256_fmadd_ps(av, b0, c20);
        c21 = _mm256_fmadd_ps(av, b1, c21);
        av = _mm256_broadcast_ss(a + 3);
        c30 = _mm256_fmadd_ps(av, b0, c30);
        c31 = _mm256_fmadd_ps(av, b1, c31);
        av = _mm256_broadcast_ss(a + 4);
        c40 = _mm256_fmadd_ps(av, b0, c40);
        c41 = _mm256_fmadd_ps(av, b1, c41);
        av = _mm256_broadcast_ss(a + 5);
        c50 = _mm256_fmadd_ps(av, b0, c50);
        c51 = _mm256_fmadd_ps(av, b1, c51);
        a += MR;
        b += ldb;
    }
    __m256 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    int vec_act = act_vectorised(act);
    if (nvalid == NR) {
        for (int r = 0; r < mvalid; r++) {
            float *cr = c + r * ldc;
            _mm256_storeu_ps(cr, vec_act ? act8(act, acc[r][0]) : acc[r][0]);
            _mm256_storeu_ps(cr + 8, vec_act ? act8(act, acc[r][1]) : acc[r][1]);
            if (!vec_act)
                op_activation_apply(act, cr, NR);
        }
    } else {
        __m256i m0 = _mm256_loadu_si256((const __m256i *)(tail_mask_table + NR - nvalid));
        __m256i m1 = _mm256_loadu_si256((const __m256i *)(tail_mask_table + NR - nvalid + 8));
        for (int r = 0; r < mvalid; r++) {
            float *cr = c + r * ldc;
            _mm256_maskstore_ps(cr, m0, vec_act ? act8(act, acc[r][0]) : acc[r][0]);
            _mm256_maskstore_ps(cr + 8, m1, vec_act ? act8(act, acc[r][1]) : acc[r][1]);
            if (!vec_act)
                op_activation_apply(act, cr, nvalid);
        }
    }
}

/* The same for at most 16 columns (a block's tail): half the work. */
AVX512 static void tile_8x16(int64_t K, const float *a, const float *b, int64_t ldb, const float *bias, float *c,
                             int64_t ldc, int mvalid, int nvalid, const op_activation *act)
{
    __m512 c0 = _mm512_set1_ps(bias[0]), c1 = _mm512_set1_ps(bias[1]), c2 = _mm512_set1_ps(bias[2]);
    __m512 c3 = _mm512_set1_ps(bias[3]), c4 = _mm512_set1_ps(bias[4]), c5 = _mm512_set1_ps(bias[5]);
    __m512 c6 = _mm512_set1_ps(bias[6]), c7 = _mm512_set1_ps(bias[7]);
    for (int64_t k = 0; k < K; k++) {
        __m512 b0 = _mm512_loadu_ps(b);
        c0 = _mm512_fmadd_ps(_mm512_set1_ps(a[0]), b0, c0);
        c1 = _mm512_fmadd_ps(_mm512_set1_ps(a[1]), b0, c1);
        c2 = _mm512_fmadd_ps(_mm512_set1_ps(a[2]), b0, c2);
        c3 = _mm512_fmadd_ps(_mm512_set1_ps(a[3]), b0, c3);
        c4 = _mm512_fmadd_ps(_mm512_set1_ps(a[4]), b0, c4);
        c5 = _mm512_fmadd_ps(_mm512_set1_ps(a[5]), b0, c5);
        c6 = _mm512_fmadd_ps(_mm512_set1_ps(a[6]), b0, c6);
        c7 = _mm512_fmadd_ps(_mm512_set1_ps(a[7]), b0, c7);
        a += MR512;
        b += ldb;
    }
    __m512 acc[MR512] = {c0, c1, c2, c3, c4, c5, c6, c7};
    int vec_act = act_vectorised(act);
    __mmask16 m = bit_range16(0, nvalid);
    for (int r = 0; r < mvalid; r++) {
        float *cr = c + r * ldc;
        _mm512_mask_storeu_ps(cr, m, vec_act ? act16(act, acc[r]) : acc[r]);
        if (!vec_act)
            op_activation_apply(act, cr, nvalid);
    }
}

AVX512 static void tile_8x32(int64_t K, const float *a, const float *b, int64_t ldb, const float *bias, float *c,
                             int64_t ldc, int mvalid, int nvalid, const op_activation *act)
{
    if (nvalid <= 16) {
        tile_8x16(K, a, b, ldb, bias, c, ldc, mvalid, nvalid, act);
        return;
    }
    /* prefetching helps only short (memory-bound) K loops: measured 16 -> 16
     * channels at 320x320 0.34 vs 0.36 ms, but 64 -> 64 at 80x80 0.216 vs 0.197 */
    if (ldb == NR512 || K > 32)
        tile_8x32_body(K, a, b, ldb, bias, c, ldc, mvalid, nvalid, act, 0);
    else
        tile_8x32_body(K, a, b, ldb, bias, c, ldc, mvalid, nvalid, act, 1);
}

/* ------------------------------------------------------- packing */

static int64_t gemm_k(const conv2d_shape *s) { return s->icg * s->kh * s->kw; }
static int64_t m_blocks(const conv2d_shape *s) { return (s->ocg + tile_rows() - 1) / tile_rows(); }

size_t conv_gemm_packed_weights_floats(const conv2d_shape *s)
{
    return (size_t)(s->group * m_blocks(s) * gemm_k(s) * tile_rows());
}

size_t conv_gemm_packed_bias_floats(const conv2d_shape *s) { return (size_t)(s->group * m_blocks(s) * tile_rows()); }

void conv_gemm_pack(const conv2d_shape *s, const float *w, const float *bias, float *packed_w, float *packed_b)
{
    int64_t K = gemm_k(s), mb_count = m_blocks(s);
    const int mr = tile_rows();
    for (int64_t g = 0; g < s->group; g++)
        for (int64_t mb = 0; mb < mb_count; mb++) {
            float *dst = packed_w + (g * mb_count + mb) * K * mr;
            float *bdst = packed_b + (g * mb_count + mb) * mr;
            for (int r = 0; r < mr; r++) {
                int64_t m = mb * mr + r, oc = g * s->ocg + m;
                int valid = m < s->ocg;
                bdst[r] = valid && bias ? bias[oc] : 0.0f;
                for (int64_t k = 0; k < K; k++)
                    dst[k * mr + r] = valid ? w[oc * K + k] : 0.0f;
            }
        }
}

static int is_pointwise(const conv2d_shape *s)
{
    return s->kh == 1 && s->kw == 1 && s->sh == 1 && s->sw == 1 && s->ph == 0 && s->pw == 0 && s->oh == s->ih &&
           s->ow == s->iw;
}

size_t conv_gemm_scratch_bytes(const conv2d_shape *s, int threads)
{
    if (threads < 1)
        threads = 1;
    return (size_t)threads * (size_t)gemm_k(s) * NR512 * sizeof(float) + 64;
}

/* The im2col panel of output pixels [p0, p0 + nvalid) of one image and
 * group: panel[k][j], k = (ic, ky, kx), zero outside the input and for
 * j >= nvalid. The columns are split into runs within one output row, each
 * copied as a contiguous (stride 1) or strided range. */
/* dst[j] = xr[ix0 + j * sw] where 0 <= ix0 + j * sw < iw, else 0, for
 * j < len (sw 1 or 2): masked loads never touch memory outside the row. */
AVX512 static void copy_run_avx512(float *dst, const float *xr, int64_t ix0, int64_t iw, int64_t sw, int64_t len)
{
    const __m512i even_idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    for (int64_t j = 0; j < len; j += 16) {
        int64_t n = len - j < 16 ? len - j : 16;
        __mmask16 store = bit_range16(0, n);
        int64_t start = ix0 + j * sw; /* input index of lane 0 */
        __m512 v;
        if (sw == 1) {
            __mmask16 m = bit_range16(-start, iw - start);
            v = m ? _mm512_maskz_loadu_ps(m, xr + (m ? start : 0)) : _mm512_setzero_ps();
        } else {
            __mmask16 m0 = bit_range16(-start, iw - start), m1 = bit_range16(-start - 16, iw - start - 16);
            __m512 a = m0 ? _mm512_maskz_loadu_ps(m0, xr + start) : _mm512_setzero_ps();
            __m512 b = m1 ? _mm512_maskz_loadu_ps(m1, xr + start + 16) : _mm512_setzero_ps();
            v = _mm512_permutex2var_ps(a, even_idx, b);
        }
        _mm512_mask_storeu_ps(dst + j, store, v);
    }
}

static void pack_panel(const conv2d_shape *s, const float *xg, int64_t p0, int nvalid, int nr, float *panel)
{
    int wide = cpu_has_avx512();
    int64_t ih = s->ih, iw = s->iw, plane = ih * iw, sw = s->sw;
    /* runs: [j0, j1) in output row oy starting at column ox */
    int n_runs = 0;
    int run_j0[NR512 + 1], run_j1[NR512 + 1];
    int64_t run_oy[NR512 + 1], run_ox[NR512 + 1];
    for (int j = 0; j < nvalid;) {
        int64_t p = p0 + j, oy = p / s->ow, ox = p % s->ow;
        int len = (int)(s->ow - ox < nvalid - j ? s->ow - ox : nvalid - j);
        run_j0[n_runs] = j;
        run_j1[n_runs] = j + len;
        run_oy[n_runs] = oy;
        run_ox[n_runs] = ox;
        n_runs++;
        j += len;
    }
    float *row = panel;
    for (int64_t ic = 0; ic < s->icg; ic++) {
        const float *xc = xg + ic * plane;
        for (int64_t ky = 0; ky < s->kh; ky++)
            for (int64_t kx = 0; kx < s->kw; kx++, row += nr) {
                for (int r = 0; r < n_runs; r++) {
                    int j0 = run_j0[r], j1 = run_j1[r];
                    int64_t iy = run_oy[r] * s->sh - s->ph + ky * s->dh;
                    if (iy < 0 || iy >= ih) {
                        memset(row + j0, 0, (size_t)(j1 - j0) * sizeof(float));
                        continue;
                    }
                    const float *xr = xc + iy * iw;
                    /* ix(j) = ix0 + (j - j0) * sw; valid where 0 <= ix < iw */
                    int64_t ix0 = run_ox[r] * sw - s->pw + kx * s->dw;
                    if (wide && sw <= 2) {
                        copy_run_avx512(row + j0, xr, ix0, iw, sw, j1 - j0);
                        continue;
                    }
                    int64_t lo = ix0 >= 0 ? 0 : (-ix0 + sw - 1) / sw;
                    int64_t hi = ix0 > iw - 1 ? 0 : (iw - 1 - ix0) / sw + 1;
                    int64_t len = j1 - j0;
                    if (lo > len)
                        lo = len;
                    if (hi > len)
                        hi = len;
                    if (hi < lo)
                        hi = lo;
                    float *dst = row + j0;
                    for (int64_t j = 0; j < lo; j++)
                        dst[j] = 0.0f;
                    if (sw == 1) {
                        memcpy(dst + lo, xr + ix0 + lo, (size_t)(hi - lo) * sizeof(float));
                    } else {
                        const float *src = xr + ix0;
                        for (int64_t j = lo; j < hi; j++)
                            dst[j] = src[j * sw];
                    }
                    for (int64_t j = hi; j < len; j++)
                        dst[j] = 0.0f;
                }
                for (int j = nvalid; j < nr; j++)
                    row[j] = 0.0f;
            }
    }
}

/* Pointwise convolution of at most 4 pixels (e.g. 1x1 feature maps): per
 * pixel and 8 output channels, a dot product along the packed weights. */
AVX512 static void gemv_small(const conv2d_shape *s, const float *packed_w, const float *packed_b, const float *x,
                              float *y, const op_activation *act, int threads)
{
    int64_t K = gemm_k(s), P = s->oh * s->ow, mb_count = m_blocks(s);
    int64_t tasks = s->batch * s->group * mb_count;
#pragma omp parallel for num_threads(threads) schedule(static) if (tasks > 1 && (double)tasks * K * MR512 * P > 200000)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t mb = t % mb_count, ng = t / mb_count, g = ng % s->group;
        const float *a = packed_w + (g * mb_count + mb) * K * MR512, *bias = packed_b + (g * mb_count + mb) * MR512;
        const float *xg = x + ng * K * P;
        float *yg = y + (ng * s->ocg + mb * MR512) * P;
        int64_t m0 = mb * MR512;
        int mvalid = s->ocg - m0 < MR512 ? (int)(s->ocg - m0) : MR512;
        for (int64_t p = 0; p < P; p++) {
            /* two rows of k per 16-lane vector: lanes 0-7 take k, 8-15 take k + 1 */
            __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
            int64_t k = 0;
            for (; k + 4 <= K; k += 4) {
                __m512 xa = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_set1_ps(xg[k * P + p])),
                                               _mm256_set1_ps(xg[(k + 1) * P + p]), 1);
                __m512 xb = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_set1_ps(xg[(k + 2) * P + p])),
                                               _mm256_set1_ps(xg[(k + 3) * P + p]), 1);
                acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + k * MR512), xa, acc0);
                acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + (k + 2) * MR512), xb, acc1);
            }
            acc0 = _mm512_add_ps(acc0, acc1);
            __m256 sum = _mm256_add_ps(_mm512_castps512_ps256(acc0), _mm512_extractf32x8_ps(acc0, 1));
            sum = _mm256_add_ps(sum, _mm256_loadu_ps(bias));
            for (; k < K; k++)
                sum = _mm256_fmadd_ps(_mm256_loadu_ps(a + k * MR512), _mm256_set1_ps(xg[k * P + p]), sum);
            float out[MR512];
            _mm256_storeu_ps(out, sum);
            for (int r = 0; r < mvalid; r++)
                yg[r * P + p] = act1(act, out[r]);
        }
    }
}

void conv_gemm_run(const conv2d_shape *s, const float *packed_w, const float *packed_b, const float *x, float *y,
                   const op_activation *act, int threads, void *scratch)
{
    if (threads < 1)
        threads = 1;
    const int mr = tile_rows(), nr = tile_cols(), wide = cpu_has_avx512();
    int64_t K = gemm_k(s), P = s->oh * s->ow, n_blocks = (P + nr - 1) / nr, mb_count = m_blocks(s);
    int64_t in_group = s->icg * s->ih * s->iw, out_group = s->ocg * P;
    int direct = is_pointwise(s);
    int64_t images = s->batch * s->group;
    if (direct && wide && P <= 4) {
        gemv_small(s, packed_w, packed_b, x, y, act, threads);
        return;
    }
    /* pointwise: a task covers a chunk of pixel blocks whose B rows stay in
     * L1 (about 32 KiB) while every output-channel block passes over them,
     * so each output row is written in longer runs */
    int64_t chunk = 1;
    if (direct) {
        chunk = 8192 / (K * nr);
        if (chunk > 8)
            chunk = 8;
        while (chunk > 1 && images * ((n_blocks + chunk - 1) / chunk) < 4 * threads)
            chunk /= 2;
        if (chunk < 1)
            chunk = 1;
    }
    int64_t n_chunks = (n_blocks + chunk - 1) / chunk;
    int64_t outer = images * n_chunks;
    /* split the output channels too when there are few pixel chunks */
    int64_t m_chunks = 1;
    if (outer < 4 * threads) {
        m_chunks = (4 * threads + outer - 1) / outer;
        if (m_chunks > mb_count)
            m_chunks = mb_count;
    }
    int64_t m_per = (mb_count + m_chunks - 1) / m_chunks;
    m_chunks = (mb_count + m_per - 1) / m_per;
    int64_t tasks = outer * m_chunks;
    double work = (double)s->batch * s->group * P * K * s->ocg;
    float *panels = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
#pragma omp parallel num_threads(threads) if (work > 100000 && tasks > 1)
    {
        float *panel = panels + (size_t)omp_get_thread_num() * (size_t)K * nr;
        int64_t packed_for = -1;
#pragma omp for schedule(static)
        for (int64_t t = 0; t < tasks; t++) {
            int64_t o = t / m_chunks, mc = t % m_chunks;
            int64_t nc = o % n_chunks, ng = o / n_chunks;
            int64_t g = ng % s->group;
            int64_t nb0 = nc * chunk, nb1 = nb0 + chunk < n_blocks ? nb0 + chunk : n_blocks;
            const float *xg = x + ng * in_group;
            /* the panel: the packed block (not pointwise) or the partial last block */
            int64_t last_p0 = (nb1 - 1) * nr;
            int last_valid = P - last_p0 < nr ? (int)(P - last_p0) : nr;
            if ((!direct || last_valid < nr) && packed_for != o) {
                if (direct) {
                    for (int64_t k = 0; k < K; k++) {
                        float *row = panel + k * nr;
                        memcpy(row, xg + k * P + last_p0, (size_t)last_valid * sizeof(float));
                        for (int j = last_valid; j < nr; j++)
                            row[j] = 0.0f;
                    }
                } else {
                    pack_panel(s, xg, last_p0, last_valid, nr, panel);
                }
                packed_for = o;
            }
            float *yg = y + ng * out_group;
            int64_t mb_end = (mc + 1) * m_per < mb_count ? (mc + 1) * m_per : mb_count;
            for (int64_t mb = mc * m_per; mb < mb_end; mb++) {
                int64_t m0 = mb * mr;
                int mvalid = s->ocg - m0 < mr ? (int)(s->ocg - m0) : mr;
                const float *a = packed_w + (g * mb_count + mb) * K * mr, *bias = packed_b + (g * mb_count + mb) * mr;
                for (int64_t nb = nb0; nb < nb1; nb++) {
                    int64_t p0 = nb * nr;
                    int nvalid = P - p0 < nr ? (int)(P - p0) : nr;
                    const float *b = panel;
                    int64_t ldb = nr;
                    if (direct && nvalid == nr) {
                        b = xg + p0;
                        ldb = P;
                    }
                    if (wide)
                        tile_8x32(K, a, b, ldb, bias, yg + m0 * P + p0, P, mvalid, nvalid, act);
                    else
                        tile_6x16(K, a, b, ldb, bias, yg + m0 * P + p0, P, mvalid, nvalid, act);
                }
            }
        }
    }
}

/* ------------------------------------------- direct KxK (AVX-512) */

/* Convolutions with few output channels (first layers: 3 -> 16 at full
 * resolution): per 16 output pixels of one row, each tap's input vector is
 * read with masked loads (stride 1) or split from two loads (stride 2) and
 * multiplies 16 output channels at once; nothing is packed or reordered.
 * Weights are packed [group][m block][icg * kh * kw][16]. */
#define DIRECT_M 16

int conv_direct_ok(const conv2d_shape *s)
{
    /* measured against oneDNN (with its reorders): 3 -> 16 3x3/2 at 640x640
     * 0.56 vs 1.2 ms, 12 -> 24 3x3 at 320x320 3.7 vs 4.0 ms; even with more
     * taps (24 -> 24) or under-filled blocks (64 -> 8) oneDNN wins */
    int64_t blocks = (s->ocg + DIRECT_M - 1) / DIRECT_M;
    return cpu_has_avx512() && s->dh == 1 && s->dw == 1 && (s->sw == 1 || s->sw == 2) &&
           s->icg * s->kh * s->kw <= 128 && 4 * s->ocg >= 3 * DIRECT_M * blocks && blocks <= 2 &&
           s->oh * s->ow >= 256;
}

size_t conv_direct_packed_floats(const conv2d_shape *s)
{
    int64_t mb = (s->ocg + DIRECT_M - 1) / DIRECT_M;
    return (size_t)(s->group * mb * s->icg * s->kh * s->kw * DIRECT_M + s->group * mb * DIRECT_M);
}

void conv_direct_pack(const conv2d_shape *s, const float *w, const float *bias, float *packed)
{
    int64_t K = s->icg * s->kh * s->kw, mb_count = (s->ocg + DIRECT_M - 1) / DIRECT_M;
    float *pb = packed + s->group * mb_count * K * DIRECT_M;
    for (int64_t g = 0; g < s->group; g++)
        for (int64_t mb = 0; mb < mb_count; mb++) {
            float *dst = packed + (g * mb_count + mb) * K * DIRECT_M;
            for (int r = 0; r < DIRECT_M; r++) {
                int64_t m = mb * DIRECT_M + r, oc = g * s->ocg + m;
                int valid = m < s->ocg;
                pb[(g * mb_count + mb) * DIRECT_M + r] = valid && bias ? bias[oc] : 0.0f;
                for (int64_t k = 0; k < K; k++)
                    dst[k * DIRECT_M + r] = valid ? w[oc * K + k] : 0.0f;
            }
        }
}

/* Input vector of tap column kx for outputs [ow, ow + 16) of input row r. */
AVX512 static inline __m512 direct_tap(const float *r, int64_t start, int64_t iw, int64_t sw)
{
    if (sw == 1) {
        if (start >= 0 && start + 16 <= iw)
            return _mm512_loadu_ps(r + start);
        __mmask16 m = bit_range16(-start, iw - start);
        return m ? _mm512_maskz_loadu_ps(m, r + start) : _mm512_setzero_ps();
    }
    const __m512i even_idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    __m512 a, b;
    if (start >= 0 && start + 32 <= iw) {
        a = _mm512_loadu_ps(r + start);
        b = _mm512_loadu_ps(r + start + 16);
    } else {
        __mmask16 m0 = bit_range16(-start, iw - start), m1 = bit_range16(-start - 16, iw - start - 16);
        a = m0 ? _mm512_maskz_loadu_ps(m0, r + start) : _mm512_setzero_ps();
        b = m1 ? _mm512_maskz_loadu_ps(m1, r + start + 16) : _mm512_setzero_ps();
    }
    return _mm512_permutex2var_ps(a, even_idx, b);
}

AVX512 static void direct_block(const conv2d_shape *s, const float *xg, const float *wp, const float *bias, float *yg,
                                int64_t oh, int64_t ow, int mvalid, const op_activation *act)
{
    int64_t IH = s->ih, IW = s->iw, OW = s->ow, P = s->oh * s->ow;
    __m512 c0 = _mm512_set1_ps(bias[0]), c1 = _mm512_set1_ps(bias[1]), c2 = _mm512_set1_ps(bias[2]);
    __m512 c3 = _mm512_set1_ps(bias[3]), c4 = _mm512_set1_ps(bias[4]), c5 = _mm512_set1_ps(bias[5]);
    __m512 c6 = _mm512_set1_ps(bias[6]), c7 = _mm512_set1_ps(bias[7]), c8 = _mm512_set1_ps(bias[8]);
    __m512 c9 = _mm512_set1_ps(bias[9]), c10 = _mm512_set1_ps(bias[10]), c11 = _mm512_set1_ps(bias[11]);
    __m512 c12 = _mm512_set1_ps(bias[12]), c13 = _mm512_set1_ps(bias[13]), c14 = _mm512_set1_ps(bias[14]);
    __m512 c15 = _mm512_set1_ps(bias[15]);
    int64_t start0 = ow * s->sw - s->pw;
    for (int64_t ic = 0; ic < s->icg; ic++) {
        const float *xc = xg + ic * IH * IW;
        for (int64_t ky = 0; ky < s->kh; ky++) {
            int64_t iy = oh * s->sh - s->ph + ky;
            if (iy < 0 || iy >= IH) {
                wp += s->kw * DIRECT_M;
                continue;
            }
            const float *r = xc + iy * IW;
            for (int64_t kx = 0; kx < s->kw; kx++, wp += DIRECT_M) {
                __m512 v = direct_tap(r, start0 + kx, IW, s->sw);
#define FMA_ROW(i) c##i = _mm512_fmadd_ps(_mm512_set1_ps(wp[i]), v, c##i);
                FMA_ROW(0) FMA_ROW(1) FMA_ROW(2) FMA_ROW(3) FMA_ROW(4) FMA_ROW(5) FMA_ROW(6) FMA_ROW(7)
                FMA_ROW(8) FMA_ROW(9) FMA_ROW(10) FMA_ROW(11) FMA_ROW(12) FMA_ROW(13) FMA_ROW(14) FMA_ROW(15)
#undef FMA_ROW
            }
        }
    }
    __m512 acc[DIRECT_M] = {c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15};
    int vec_act = act_vectorised(act);
    int64_t n = OW - ow;
    __mmask16 m = bit_range16(0, n);
    float *yo = yg + oh * OW + ow;
    for (int i = 0; i < mvalid; i++) {
        __m512 v = vec_act ? act16(act, acc[i]) : acc[i];
        if (n >= 16)
            _mm512_storeu_ps(yo + i * P, v);
        else
            _mm512_mask_storeu_ps(yo + i * P, m, v);
        if (!vec_act)
            op_activation_apply(act, yo + i * P, n < 16 ? n : 16);
    }
}

void conv_direct_run(const conv2d_shape *s, const float *packed, const float *x, float *y, const op_activation *act,
                     int threads)
{
    int64_t K = s->icg * s->kh * s->kw, mb_count = (s->ocg + DIRECT_M - 1) / DIRECT_M;
    const float *pb = packed + s->group * mb_count * K * DIRECT_M;
    int64_t w_blocks = (s->ow + 15) / 16, P = s->oh * s->ow;
    int64_t images = s->batch * s->group;
    int64_t tasks = images * mb_count * s->oh;
    if (threads < 1)
        threads = 1;
#pragma omp parallel for num_threads(threads) schedule(static) if (tasks > 1 && (double)P * K * s->ocg > 100000)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t oh = t % s->oh, rest = t / s->oh, mb = rest % mb_count, ng = rest / mb_count, g = ng % s->group;
        int mvalid = s->ocg - mb * DIRECT_M < DIRECT_M ? (int)(s->ocg - mb * DIRECT_M) : DIRECT_M;
        const float *xg = x + ng * s->icg * s->ih * s->iw;
        float *yg = y + (ng * s->ocg + mb * DIRECT_M) * P;
        const float *wp = packed + (g * mb_count + mb) * K * DIRECT_M, *bias = pb + (g * mb_count + mb) * DIRECT_M;
        for (int64_t wb = 0; wb < w_blocks; wb++)
            direct_block(s, xg, wp, bias, yg, oh, wb * 16, mvalid, act);
    }
}

/* ------------------------------------------------------- depthwise */

#define DW_ZERO_ROW 4096
static const float dw_zero_row[DW_ZERO_ROW + 32];

/* Even and odd elements of v[0..16). */
static inline __m256 evens16(__m256 lo, __m256 hi)
{
    __m256 t = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0)));
}
static inline __m256 odds16(__m256 lo, __m256 hi)
{
    __m256 t = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0)));
}

/* One output row of a 3x3 depthwise convolution (dilation 1, stride 1 or
 * 2); rows r[0..2] are input rows (the zero row outside the image). */
static void dw3x3_row(const float *const r[3], const float *wc, float b, float *yr, int64_t ow_count, int64_t iw,
                      int64_t sw, int64_t pw, int64_t lo, int64_t hi, const op_activation *act)
{
    int vec_act = act_vectorised(act);
    int64_t ow = lo;
    __m256 wv[9];
    for (int i = 0; i < 9; i++)
        wv[i] = _mm256_set1_ps(wc[i]);
    __m256 bv = _mm256_set1_ps(b);
    if (sw == 1) {
        for (; ow + 8 <= hi; ow += 8) {
            __m256 acc = bv;
            for (int kh = 0; kh < 3; kh++) {
                const float *a = r[kh] + ow - pw;
                acc = _mm256_fmadd_ps(wv[kh * 3 + 0], _mm256_loadu_ps(a), acc);
                acc = _mm256_fmadd_ps(wv[kh * 3 + 1], _mm256_loadu_ps(a + 1), acc);
                acc = _mm256_fmadd_ps(wv[kh * 3 + 2], _mm256_loadu_ps(a + 2), acc);
            }
            _mm256_storeu_ps(yr + ow, vec_act ? act8(act, acc) : acc);
        }
    } else if (sw == 2) {
        const __m256i shift = _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 7);
        for (; ow + 8 <= hi; ow += 8) {
            __m256 acc = bv;
            for (int kh = 0; kh < 3; kh++) {
                const float *a = r[kh] + 2 * ow - pw;
                __m256 lo8 = _mm256_loadu_ps(a), hi8 = _mm256_loadu_ps(a + 8);
                __m256 e = evens16(lo8, hi8), o = odds16(lo8, hi8);
                __m256 e2 = _mm256_blend_ps(_mm256_permutevar8x32_ps(e, shift), _mm256_broadcast_ss(a + 16), 0x80);
                acc = _mm256_fmadd_ps(wv[kh * 3 + 0], e, acc);
                acc = _mm256_fmadd_ps(wv[kh * 3 + 1], o, acc);
                acc = _mm256_fmadd_ps(wv[kh * 3 + 2], e2, acc);
            }
            _mm256_storeu_ps(yr + ow, vec_act ? act8(act, acc) : acc);
        }
    }
    /* remaining interior columns */
    for (; ow < hi; ow++) {
        int64_t i = ow * sw - pw;
        float acc = b;
        for (int kh = 0; kh < 3; kh++)
            acc += wc[kh * 3] * r[kh][i] + wc[kh * 3 + 1] * r[kh][i + 1] + wc[kh * 3 + 2] * r[kh][i + 2];
        yr[ow] = vec_act ? act1(act, acc) : acc;
    }
    /* borders */
    for (int64_t o = 0; o < ow_count; o++) {
        if (o == lo)
            o = hi;
        if (o >= ow_count)
            break;
        float acc = b;
        for (int kh = 0; kh < 3; kh++)
            for (int kw = 0; kw < 3; kw++) {
                int64_t ix = o * sw - pw + kw;
                if (ix >= 0 && ix < iw)
                    acc += wc[kh * 3 + kw] * r[kh][ix];
            }
        yr[o] = vec_act ? act1(act, acc) : acc;
    }
    if (!vec_act)
        op_activation_apply(act, yr, ow_count);
}

/* Padded plane geometry: rows and row pitch of a plane copied with its
 * zero borders (and slack for vector over-reads). */
static void dw_padded_dims(const conv2d_shape *s, int64_t *rows, int64_t *pitch)
{
    *rows = (s->oh - 1) * s->sh + (s->kh - 1) * s->dh + 1;
    int64_t cols = (s->ow - 1) * s->sw + (s->kw - 1) * s->dw + 1;
    *pitch = (cols + 7) / 8 * 8 + 8 * s->sw + 8;
}

size_t conv_depthwise_scratch_bytes(const conv2d_shape *s, int threads)
{
    int64_t rows, pitch;
    dw_padded_dims(s, &rows, &pitch);
    if (threads < 1)
        threads = 1;
    return (size_t)threads * (size_t)((rows + 1) * pitch) * sizeof(float) + 64;
}

/* Copies plane xp into pad (rows x pitch) with zeros outside the input. */
static void dw_pad_plane(const conv2d_shape *s, const float *xp, float *pad, int64_t rows, int64_t pitch)
{
    int64_t copy_w = s->iw;
    if (s->pw + copy_w > pitch)
        copy_w = pitch - s->pw;
    for (int64_t r = 0; r < rows + 1; r++) {
        float *dst = pad + r * pitch;
        int64_t iy = r - s->ph;
        if (r >= rows || iy < 0 || iy >= s->ih || copy_w <= 0) {
            memset(dst, 0, (size_t)pitch * sizeof(float));
            continue;
        }
        memset(dst, 0, (size_t)s->pw * sizeof(float));
        memcpy(dst + s->pw, xp + iy * s->iw, (size_t)copy_w * sizeof(float));
        memset(dst + s->pw + copy_w, 0, (size_t)(pitch - s->pw - copy_w) * sizeof(float));
    }
}

/* Depthwise convolution of one padded plane: 8 outputs per step, every tap a
 * vector load (stride 1) or an even/odd split of two loads (stride 2). */
/* 8 outputs of a 3x3 tap row (stride 1 or 2) at r. */
static inline __m256 dw3_row(const float *r, int64_t sw, __m256 w0, __m256 w1, __m256 w2, __m256 acc)
{
    if (sw == 1) {
        acc = _mm256_fmadd_ps(w0, _mm256_loadu_ps(r), acc);
        acc = _mm256_fmadd_ps(w1, _mm256_loadu_ps(r + 1), acc);
        return _mm256_fmadd_ps(w2, _mm256_loadu_ps(r + 2), acc);
    }
    __m256 lo = _mm256_loadu_ps(r), hi = _mm256_loadu_ps(r + 8);
    __m256 e = evens16(lo, hi), o = odds16(lo, hi);
    __m256 e2 = evens16(_mm256_loadu_ps(r + 2), _mm256_loadu_ps(r + 10));
    acc = _mm256_fmadd_ps(w0, e, acc);
    acc = _mm256_fmadd_ps(w1, o, acc);
    return _mm256_fmadd_ps(w2, e2, acc);
}

static inline void dw_store(float *dst, int64_t n_left, __m256 v)
{
    if (n_left >= 8) {
        _mm256_storeu_ps(dst, v);
    } else {
        __m256i m = _mm256_loadu_si256((const __m256i *)(tail_mask_table + NR - n_left));
        _mm256_maskstore_ps(dst, m, v);
    }
}

/* 3x3, dilation 1, stride 1 or 2: two output rows at a time, one partial
 * sum per tap row, so the FMA chains overlap. */
static void dw3x3_plane(const conv2d_shape *s, const float *pad, int64_t pitch, const float *wc, float b, float *yp,
                        const op_activation *act)
{
    int64_t OH = s->oh, OW = s->ow, sh = s->sh, sw = s->sw;
    int vec_act = act_vectorised(act);
    __m256 w0 = _mm256_set1_ps(wc[0]), w1 = _mm256_set1_ps(wc[1]), w2 = _mm256_set1_ps(wc[2]);
    __m256 w3 = _mm256_set1_ps(wc[3]), w4 = _mm256_set1_ps(wc[4]), w5 = _mm256_set1_ps(wc[5]);
    __m256 w6 = _mm256_set1_ps(wc[6]), w7 = _mm256_set1_ps(wc[7]), w8 = _mm256_set1_ps(wc[8]);
    __m256 bv = _mm256_set1_ps(b), zero = _mm256_setzero_ps();
    int64_t oh = 0;
    for (; oh + 2 <= OH; oh += 2) {
        const float *r0 = pad + oh * sh * pitch, *q0 = r0 + sh * pitch;
        float *y0 = yp + oh * OW, *y1 = y0 + OW;
        for (int64_t ow = 0; ow < OW; ow += 8) {
            int64_t off = ow * sw;
            __m256 a0 = dw3_row(r0 + off, sw, w0, w1, w2, bv);
            __m256 a1 = dw3_row(r0 + pitch + off, sw, w3, w4, w5, zero);
            __m256 a2 = dw3_row(r0 + 2 * pitch + off, sw, w6, w7, w8, zero);
            __m256 c0 = dw3_row(q0 + off, sw, w0, w1, w2, bv);
            __m256 c1 = dw3_row(q0 + pitch + off, sw, w3, w4, w5, zero);
            __m256 c2 = dw3_row(q0 + 2 * pitch + off, sw, w6, w7, w8, zero);
            __m256 v0 = _mm256_add_ps(_mm256_add_ps(a0, a1), a2), v1 = _mm256_add_ps(_mm256_add_ps(c0, c1), c2);
            if (vec_act) {
                v0 = act8(act, v0);
                v1 = act8(act, v1);
            }
            dw_store(y0 + ow, OW - ow, v0);
            dw_store(y1 + ow, OW - ow, v1);
        }
    }
    for (; oh < OH; oh++) {
        const float *r0 = pad + oh * sh * pitch;
        float *y0 = yp + oh * OW;
        for (int64_t ow = 0; ow < OW; ow += 8) {
            int64_t off = ow * sw;
            __m256 a0 = dw3_row(r0 + off, sw, w0, w1, w2, bv);
            __m256 a1 = dw3_row(r0 + pitch + off, sw, w3, w4, w5, zero);
            __m256 a2 = dw3_row(r0 + 2 * pitch + off, sw, w6, w7, w8, zero);
            __m256 v0 = _mm256_add_ps(_mm256_add_ps(a0, a1), a2);
            if (vec_act)
                v0 = act8(act, v0);
            dw_store(y0 + ow, OW - ow, v0);
        }
    }
    if (!vec_act)
        op_activation_apply(act, yp, OH * OW);
}

static void dw_plane(const conv2d_shape *s, const float *pad, int64_t pitch, const float *wc, float b, float *yp,
                     const op_activation *act)
{
    if (s->kh == 3 && s->kw == 3 && s->dh == 1 && s->dw == 1 && (s->sw == 1 || s->sw == 2)) {
        dw3x3_plane(s, pad, pitch, wc, b, yp, act);
        return;
    }
    if (s->ow < 4) {
        /* narrow output (e.g. a global 7x7 filter): scalar dot products */
        for (int64_t oh = 0; oh < s->oh; oh++)
            for (int64_t ow = 0; ow < s->ow; ow++) {
                const float *base = pad + oh * s->sh * pitch + ow * s->sw;
                float part[4] = {b, 0.0f, 0.0f, 0.0f};
                for (int64_t kh = 0; kh < s->kh; kh++) {
                    const float *r = base + kh * s->dh * pitch;
                    const float *wr = wc + kh * s->kw;
                    for (int64_t kw = 0; kw < s->kw; kw++)
                        part[kw & 3] += wr[kw] * r[kw * s->dw];
                }
                float v = (part[0] + part[1]) + (part[2] + part[3]);
                yp[oh * s->ow + ow] = act1(act, v);
            }
        return;
    }
    int64_t OH = s->oh, OW = s->ow, KH = s->kh, KW = s->kw, sw = s->sw, dh = s->dh, dw = s->dw;
    int vec_act = act_vectorised(act);
    __m256 bv = _mm256_set1_ps(b);
    for (int64_t oh = 0; oh < OH; oh++) {
        const float *base = pad + oh * s->sh * pitch;
        float *yr = yp + oh * OW;
        for (int64_t ow = 0; ow < OW; ow += 8) {
            __m256 acc = bv;
            if (sw == 1) {
                for (int64_t kh = 0; kh < KH; kh++) {
                    const float *r = base + kh * dh * pitch + ow;
                    for (int64_t kw = 0; kw < KW; kw++)
                        acc = _mm256_fmadd_ps(_mm256_set1_ps(wc[kh * KW + kw]), _mm256_loadu_ps(r + kw * dw), acc);
                }
            } else if (sw == 2) {
                for (int64_t kh = 0; kh < KH; kh++) {
                    const float *r = base + kh * dh * pitch + 2 * ow;
                    for (int64_t kw = 0; kw < KW; kw++) {
                        const float *t = r + kw * dw;
                        __m256 v = evens16(_mm256_loadu_ps(t), _mm256_loadu_ps(t + 8));
                        acc = _mm256_fmadd_ps(_mm256_set1_ps(wc[kh * KW + kw]), v, acc);
                    }
                }
            } else {
                float tmp[8];
                for (int j = 0; j < 8; j++) {
                    float a = 0.0f;
                    for (int64_t kh = 0; kh < KH; kh++)
                        for (int64_t kw = 0; kw < KW; kw++)
                            a += wc[kh * KW + kw] * base[kh * dh * pitch + (ow + j) * sw + kw * dw];
                    tmp[j] = a;
                }
                acc = _mm256_add_ps(acc, _mm256_loadu_ps(tmp));
            }
            if (vec_act)
                acc = act8(act, acc);
            if (ow + 8 <= OW) {
                _mm256_storeu_ps(yr + ow, acc);
            } else {
                int n = (int)(OW - ow);
                __m256i m = _mm256_loadu_si256((const __m256i *)(tail_mask_table + NR - n));
                _mm256_maskstore_ps(yr + ow, m, acc);
            }
        }
        if (!vec_act)
            op_activation_apply(act, yr, OW);
    }
}

/* AVX-512 3x3 depthwise (dilation 1, stride 1 or 2) straight from the
 * NCHW input: 16 outputs per step, taps read with masked loads, so the
 * padding costs neither a copy nor a branch. Rows outside the image read
 * the zero row. */
AVX512 static inline __m512 dw512_tap_row(const float *r, int64_t start, int64_t iw, int64_t sw, int full, __m512 w0,
                                          __m512 w1, __m512 w2, __m512 acc)
{
    if (sw == 1) {
        if (full) {
            acc = _mm512_fmadd_ps(w0, _mm512_loadu_ps(r + start), acc);
            acc = _mm512_fmadd_ps(w1, _mm512_loadu_ps(r + start + 1), acc);
            return _mm512_fmadd_ps(w2, _mm512_loadu_ps(r + start + 2), acc);
        }
        for (int kx = 0; kx < 3; kx++) {
            int64_t st = start + kx;
            __mmask16 m = bit_range16(-st, iw - st);
            __m512 v = _mm512_maskz_loadu_ps(m, r + st);
            acc = _mm512_fmadd_ps(kx == 0 ? w0 : kx == 1 ? w1 : w2, v, acc);
        }
        return acc;
    }
    const __m512i even_idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd_idx = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    __m512 a, b, a2, b2;
    if (full) {
        a = _mm512_loadu_ps(r + start);
        b = _mm512_loadu_ps(r + start + 16);
        a2 = _mm512_loadu_ps(r + start + 2);
        b2 = _mm512_loadu_ps(r + start + 18);
    } else {
        a = _mm512_maskz_loadu_ps(bit_range16(-start, iw - start), r + start);
        b = _mm512_maskz_loadu_ps(bit_range16(-start - 16, iw - start - 16), r + start + 16);
        a2 = _mm512_maskz_loadu_ps(bit_range16(-start - 2, iw - start - 2), r + start + 2);
        b2 = _mm512_maskz_loadu_ps(bit_range16(-start - 18, iw - start - 18), r + start + 18);
    }
    acc = _mm512_fmadd_ps(w0, _mm512_permutex2var_ps(a, even_idx, b), acc);
    acc = _mm512_fmadd_ps(w1, _mm512_permutex2var_ps(a, odd_idx, b), acc);
    return _mm512_fmadd_ps(w2, _mm512_permutex2var_ps(a2, even_idx, b2), acc);
}

/* 16 floats of row r from column pos, zero at and past column iw. */
AVX512 static inline __m512 dw512_load(const float *r, int64_t pos, int64_t iw)
{
    if (pos + 16 <= iw)
        return _mm512_loadu_ps(r + pos);
    if (pos >= iw)
        return _mm512_setzero_ps();
    return _mm512_maskz_loadu_ps(bit_range16(0, iw - pos), r + pos);
}

/* [lo[15], hi[0..14]]: the vector one column to the left of hi */
AVX512 static inline __m512 left1(__m512 hi, __m512 lo)
{
    return _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(hi), _mm512_castps_si512(lo), 15));
}

/* [cur[1..15], next[0]]: the vector one column to the right of cur */
AVX512 static inline __m512 right1(__m512 next, __m512 cur)
{
    return _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(next), _mm512_castps_si512(cur), 1));
}

/* Left padding 1 (the usual 3x3 "same" case): each input row is read once,
 * aligned to the outputs; the shifted taps come from lane rotations of the
 * neighbouring vectors, and zeros past the row edges are the padding. Rows
 * outside the image read the zero row. */
AVX512 static void dw3x3_rows512_pad1(const conv2d_shape *s, const float *xp, const float *wc, float b, float *yp,
                                      int64_t oh_begin, int64_t oh_end, const op_activation *act)
{
    int64_t IH = s->ih, IW = s->iw, OW = s->ow, sh = s->sh, sw = s->sw, ph = s->ph;
    int vec_act = act_vectorised(act);
    __m512 w0 = _mm512_set1_ps(wc[0]), w1 = _mm512_set1_ps(wc[1]), w2 = _mm512_set1_ps(wc[2]);
    __m512 w3 = _mm512_set1_ps(wc[3]), w4 = _mm512_set1_ps(wc[4]), w5 = _mm512_set1_ps(wc[5]);
    __m512 w6 = _mm512_set1_ps(wc[6]), w7 = _mm512_set1_ps(wc[7]), w8 = _mm512_set1_ps(wc[8]);
    __m512 bv = _mm512_set1_ps(b), zero = _mm512_setzero_ps();
    const __m512i even_idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd_idx = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    for (int64_t oh = oh_begin; oh < oh_end; oh++) {
        int64_t iy = oh * sh - ph;
        const float *r0 = iy >= 0 && iy < IH ? xp + iy * IW : dw_zero_row;
        const float *r1 = iy + 1 >= 0 && iy + 1 < IH ? xp + (iy + 1) * IW : dw_zero_row;
        const float *r2 = iy + 2 >= 0 && iy + 2 < IH ? xp + (iy + 2) * IW : dw_zero_row;
        float *yr = yp + oh * OW;
        if (sw == 1) {
            __m512 p0 = zero, p1 = zero, p2 = zero;
            __m512 c0 = dw512_load(r0, 0, IW), c1 = dw512_load(r1, 0, IW), c2 = dw512_load(r2, 0, IW);
            for (int64_t ow = 0; ow < OW; ow += 16) {
                __m512 n0 = dw512_load(r0, ow + 16, IW), n1 = dw512_load(r1, ow + 16, IW),
                       n2 = dw512_load(r2, ow + 16, IW);
                __m512 a0 = _mm512_fmadd_ps(w0, left1(c0, p0), bv);
                __m512 a1 = _mm512_mul_ps(w3, left1(c1, p1));
                __m512 a2 = _mm512_mul_ps(w6, left1(c2, p2));
                a0 = _mm512_fmadd_ps(w1, c0, a0);
                a1 = _mm512_fmadd_ps(w4, c1, a1);
                a2 = _mm512_fmadd_ps(w7, c2, a2);
                a0 = _mm512_fmadd_ps(w2, right1(n0, c0), a0);
                a1 = _mm512_fmadd_ps(w5, right1(n1, c1), a1);
                a2 = _mm512_fmadd_ps(w8, right1(n2, c2), a2);
                __m512 acc = _mm512_add_ps(_mm512_add_ps(a0, a1), a2);
                if (vec_act)
                    acc = act16(act, acc);
                int64_t n = OW - ow;
                if (n >= 16)
                    _mm512_storeu_ps(yr + ow, acc);
                else
                    _mm512_mask_storeu_ps(yr + ow, bit_range16(0, n), acc);
                p0 = c0, p1 = c1, p2 = c2;
                c0 = n0, c1 = n1, c2 = n2;
            }
        } else {
            __m512 p0 = zero, p1 = zero, p2 = zero;
            for (int64_t ow = 0; ow < OW; ow += 16) {
                int64_t pos = 2 * ow;
                __m512 l0 = dw512_load(r0, pos, IW), h0 = dw512_load(r0, pos + 16, IW);
                __m512 l1 = dw512_load(r1, pos, IW), h1 = dw512_load(r1, pos + 16, IW);
                __m512 l2 = dw512_load(r2, pos, IW), h2 = dw512_load(r2, pos + 16, IW);
                __m512 e0 = _mm512_permutex2var_ps(l0, even_idx, h0), o0 = _mm512_permutex2var_ps(l0, odd_idx, h0);
                __m512 e1 = _mm512_permutex2var_ps(l1, even_idx, h1), o1 = _mm512_permutex2var_ps(l1, odd_idx, h1);
                __m512 e2 = _mm512_permutex2var_ps(l2, even_idx, h2), o2 = _mm512_permutex2var_ps(l2, odd_idx, h2);
                /* taps: x[2 ow - 1 + 2 i] (the odds shifted by one), evens, odds */
                __m512 a0 = _mm512_fmadd_ps(w0, left1(o0, p0), bv);
                __m512 a1 = _mm512_mul_ps(w3, left1(o1, p1));
                __m512 a2 = _mm512_mul_ps(w6, left1(o2, p2));
                a0 = _mm512_fmadd_ps(w1, e0, a0);
                a1 = _mm512_fmadd_ps(w4, e1, a1);
                a2 = _mm512_fmadd_ps(w7, e2, a2);
                a0 = _mm512_fmadd_ps(w2, o0, a0);
                a1 = _mm512_fmadd_ps(w5, o1, a1);
                a2 = _mm512_fmadd_ps(w8, o2, a2);
                __m512 acc = _mm512_add_ps(_mm512_add_ps(a0, a1), a2);
                if (vec_act)
                    acc = act16(act, acc);
                int64_t n = OW - ow;
                if (n >= 16)
                    _mm512_storeu_ps(yr + ow, acc);
                else
                    _mm512_mask_storeu_ps(yr + ow, bit_range16(0, n), acc);
                p0 = o0, p1 = o1, p2 = o2;
            }
        }
        if (!vec_act)
            op_activation_apply(act, yr, OW);
    }
}

AVX512 static void dw3x3_rows512(const conv2d_shape *s, const float *xp, const float *wc, float b, float *yp,
                                 int64_t oh_begin, int64_t oh_end, const op_activation *act)
{
    int64_t IH = s->ih, IW = s->iw, OW = s->ow, sh = s->sh, sw = s->sw, ph = s->ph, pw = s->pw;
    if (pw == 1) {
        dw3x3_rows512_pad1(s, xp, wc, b, yp, oh_begin, oh_end, act);
        return;
    }
    int vec_act = act_vectorised(act);
    __m512 w[9];
    for (int i = 0; i < 9; i++)
        w[i] = _mm512_set1_ps(wc[i]);
    __m512 bv = _mm512_set1_ps(b);
    /* a step is "full" when every tap of its 16 outputs is inside the row */
    int64_t span = 15 * sw + 2; /* input columns a step reads past its start */
    if (sw == 2)
        span = 33; /* the even/odd loads read 32 + 2 columns */
    for (int64_t oh = oh_begin; oh < oh_end; oh++) {
        const float *r[3];
        for (int k = 0; k < 3; k++) {
            int64_t iy = oh * sh - ph + k;
            r[k] = iy >= 0 && iy < IH ? xp + iy * IW : dw_zero_row;
        }
        float *yr = yp + oh * OW;
        for (int64_t ow = 0; ow < OW; ow += 16) {
            int64_t start = ow * sw - pw;
            int full = start >= 0 && start + span < IW;
            /* one partial sum per tap row: three short FMA chains */
            __m512 acc0 = dw512_tap_row(r[0], start, IW, sw, full, w[0], w[1], w[2], bv);
            __m512 acc1 = dw512_tap_row(r[1], start, IW, sw, full, w[3], w[4], w[5], _mm512_setzero_ps());
            __m512 acc2 = dw512_tap_row(r[2], start, IW, sw, full, w[6], w[7], w[8], _mm512_setzero_ps());
            __m512 acc = _mm512_add_ps(_mm512_add_ps(acc0, acc1), acc2);
            if (vec_act)
                acc = act16(act, acc);
            int64_t n = OW - ow;
            if (n >= 16)
                _mm512_storeu_ps(yr + ow, acc);
            else
                _mm512_mask_storeu_ps(yr + ow, bit_range16(0, n), acc);
        }
        if (!vec_act)
            op_activation_apply(act, yr, OW);
    }
}

int conv_depthwise_direct_ok(const conv2d_shape *s)
{
    if (cpu_has_avx512() && s->oh == 1 && s->ow == 1 && s->ph == 0 && s->pw == 0 && s->kh == s->ih &&
        s->kw == s->iw)
        return 1;
    return cpu_has_avx512() && s->kh == 3 && s->kw == 3 && s->dh == 1 && s->dw == 1 && (s->sw == 1 || s->sw == 2) &&
           s->iw <= DW_ZERO_ROW;
}

AVX512 void conv_depthwise_direct_run(const conv2d_shape *s, const float *w, const float *bias, const float *x,
                                      float *y, const op_activation *act, int threads)
{
    int64_t planes = s->batch * s->group, in_plane = s->ih * s->iw, out_plane = s->oh * s->ow, OH = s->oh;
    if (threads < 1)
        threads = 1;
    int par = planes * out_plane * 9 > 30000;
    if (s->oh == 1 && s->ow == 1 && s->ph == 0 && s->pw == 0 && s->kh == s->ih && s->kw == s->iw) {
        /* a filter covering the whole plane (global depthwise): one dot
         * product per channel */
#pragma omp parallel for num_threads(threads) schedule(static) if (planes * in_plane > 30000)
        for (int64_t plane = 0; plane < planes; plane++) {
            int64_t c = plane % s->group;
            const float *xp = x + plane * in_plane, *wc = w + c * in_plane;
            __m512 acc = _mm512_setzero_ps();
            int64_t i = 0;
            for (; i + 16 <= in_plane; i += 16)
                acc = _mm512_fmadd_ps(_mm512_loadu_ps(wc + i), _mm512_loadu_ps(xp + i), acc);
            if (i < in_plane) {
                __mmask16 m = bit_range16(0, in_plane - i);
                acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, wc + i), _mm512_maskz_loadu_ps(m, xp + i), acc);
            }
            float v = _mm512_reduce_add_ps(acc) + (bias ? bias[c] : 0.0f);
            y[plane] = act1(act, v);
        }
        return;
    }
    if (planes >= 4 * threads) {
#pragma omp parallel for num_threads(threads) schedule(static) if (par)
        for (int64_t plane = 0; plane < planes; plane++) {
            int64_t c = plane % s->group;
            dw3x3_rows512(s, x + plane * in_plane, w + c * 9, bias ? bias[c] : 0.0f, y + plane * out_plane, 0, OH,
                          act);
        }
        return;
    }
    /* few planes: split each plane's rows into bands */
    int64_t bands = (4 * threads + planes - 1) / planes;
    if (bands > OH)
        bands = OH;
    int64_t band_rows = (OH + bands - 1) / bands;
#pragma omp parallel for num_threads(threads) schedule(static) if (par)
    for (int64_t t = 0; t < planes * bands; t++) {
        int64_t plane = t / bands, band = t % bands, c = plane % s->group;
        int64_t begin = band * band_rows, end = begin + band_rows < OH ? begin + band_rows : OH;
        dw3x3_rows512(s, x + plane * in_plane, w + c * 9, bias ? bias[c] : 0.0f, y + plane * out_plane, begin, end,
                      act);
    }
}

void conv_depthwise_padded_run(const conv2d_shape *s, const float *w, const float *bias, const float *x, float *y,
                               const op_activation *act, int threads, void *scratch)
{
    int64_t rows, pitch;
    dw_padded_dims(s, &rows, &pitch);
    int64_t planes = s->batch * s->group, in_plane = s->ih * s->iw, out_plane = s->oh * s->ow;
    int64_t k_size = s->kh * s->kw;
    float *pads = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    if (threads < 1)
        threads = 1;
#pragma omp parallel num_threads(threads) if (planes > 1 && planes * out_plane * k_size > 30000)
    {
        float *pad = pads + (size_t)omp_get_thread_num() * (size_t)((rows + 1) * pitch);
#pragma omp for schedule(static)
        for (int64_t plane = 0; plane < planes; plane++) {
            int64_t c = plane % s->group;
            dw_pad_plane(s, x + plane * in_plane, pad, rows, pitch);
            dw_plane(s, pad, pitch, w + c * k_size, bias ? bias[c] : 0.0f, y + plane * out_plane, act);
        }
    }
}

void conv_depthwise_run(const conv2d_shape *s, const float *w, const float *bias, const float *x, float *y,
                        const op_activation *act, int threads)
{
    int64_t C = s->group, H = s->ih, W = s->iw, OH = s->oh, OW = s->ow;
    int64_t KH = s->kh, KW = s->kw, sh = s->sh, sw = s->sw, dh = s->dh, dw = s->dw, ph = s->ph, pw = s->pw;
    /* output columns whose every tap is inside the row */
    int64_t lo = (pw + sw - 1) / sw, hi = W - 1 + pw - (KW - 1) * dw;
    hi = hi < 0 ? 0 : hi / sw + 1;
    if (hi > OW)
        hi = OW;
    if (lo > hi)
        lo = hi;
    int64_t rows = s->batch * C * OH;
    int fast3x3 = KH == 3 && KW == 3 && dh == 1 && dw == 1 && (sw == 1 || sw == 2) && W <= DW_ZERO_ROW;
    if (threads < 1)
        threads = 1;
#pragma omp parallel for num_threads(threads) schedule(static) if (rows * OW * KH * KW > 30000)
    for (int64_t row = 0; row < rows; row++) {
        int64_t plane = row / OH, oh = row % OH, c = plane % C;
        float *yr = y + row * OW;
        float b = bias ? bias[c] : 0.0f;
        if (fast3x3) {
            const float *r[3];
            for (int kh = 0; kh < 3; kh++) {
                int64_t ih = oh * sh - ph + kh;
                r[kh] = ih >= 0 && ih < H ? x + (plane * H + ih) * W : dw_zero_row;
            }
            dw3x3_row(r, w + c * 9, b, yr, OW, W, sw, pw, lo, hi, act);
            continue;
        }
        for (int64_t ow = 0; ow < OW; ow++)
            yr[ow] = b;
        for (int64_t kh = 0; kh < KH; kh++) {
            int64_t ih = oh * sh - ph + kh * dh;
            if (ih < 0 || ih >= H)
                continue;
            const float *xr = x + (plane * H + ih) * W;
            for (int64_t kw = 0; kw < KW; kw++) {
                float wv = w[(c * KH + kh) * KW + kw];
                int64_t off = kw * dw - pw;
                for (int64_t ow = 0; ow < lo; ow++) {
                    int64_t iw = ow * sw + off;
                    if (iw >= 0 && iw < W)
                        yr[ow] += wv * xr[iw];
                }
                if (sw == 1) {
                    const float *xs = xr + off;
                    for (int64_t ow = lo; ow < hi; ow++)
                        yr[ow] += wv * xs[ow];
                } else {
                    for (int64_t ow = lo; ow < hi; ow++)
                        yr[ow] += wv * xr[ow * sw + off];
                }
                for (int64_t ow = hi; ow < OW; ow++) {
                    int64_t iw = ow * sw + off;
                    if (iw >= 0 && iw < W)
                        yr[ow] += wv * xr[iw];
                }
            }
        }
        if (act_vectorised(act)) {
            int64_t ow = 0;
            for (; ow + 8 <= OW; ow += 8)
                _mm256_storeu_ps(yr + ow, act8(act, _mm256_loadu_ps(yr + ow)));
            for (; ow < OW; ow++)
                yr[ow] = act1(act, yr[ow]);
        } else {
            op_activation_apply(act, yr, OW);
        }
    }
}
