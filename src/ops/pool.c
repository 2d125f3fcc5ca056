/* Pooling: MaxPool (with optional Indices), AveragePool, LpPool,
 * GlobalAveragePool, GlobalMaxPool, GlobalLpPool. 1-D to 3-D, hand-written
 * loops parallel over (batch, channel) planes.
 *
 * Kernels compute in float32; other dtypes (float16, float64, int8, uint8)
 * are converted through scratch. */
#include "ops/op.h"
#include "ops/pool_geometry.h"

#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>

static fg_status *pool_infer_common(op_call *call, pool_kind kind, int global)
{
    pool_geom g;
    FG_TRY(pool_geometry(call, kind, global, &g));
    const fg_tensor *x = &call->in[0];
    if (kind != POOL_MAX && (x->dtype == FG_INT8 || x->dtype == FG_UINT8))
        return op_error(call, FG_ERR_DTYPE, "integer input is only supported by MaxPool");
    for (int o = 0; o < call->n_out && o < 2; o++) {
        fg_tensor *y = &call->out[o];
        y->dtype = o == 0 ? x->dtype : FG_INT64;
        y->rank = x->rank;
        y->dims[0] = x->dims[0];
        y->dims[1] = x->dims[1];
        for (int i = 0; i < g.nsp; i++)
            y->dims[2 + i] = g.out[i];
    }
    if (x->dtype != FG_FLOAT32)
        call->scratch_bytes = ((size_t)fg_tensor_numel(x) + (size_t)fg_shape_numel(call->out[0].rank, call->out[0].dims)) *
                                  sizeof(float) + 128;
    return NULL;
}

/* Window taps along one axis: first tap index kb and count of taps inside
 * [lo, hi). */
static inline void taps(int64_t start, int64_t k, int64_t d, int64_t lo, int64_t hi, int64_t *kb, int64_t *ke)
{
    int64_t b = 0, e = k;
    if (start < lo)
        b = (lo - start + d - 1) / d;
    if (start + (k - 1) * d >= hi)
        e = hi - start <= 0 ? 0 : (hi - start + d - 1) / d;
    if (e < b)
        e = b;
    *kb = b;
    *ke = e;
}

static void pool_kernel(const pool_geom *g, pool_kind kind, const float *x, float *y, int64_t *indices, int threads)
{
    pool3 G;
    pool_widen(g, &G);
    int64_t in_size = G.in[0] * G.in[1] * G.in[2], out_size = G.out[0] * G.out[1] * G.out[2];
    int64_t window = G.k[0] * G.k[1] * G.k[2];
    double p = g->p;
#pragma omp parallel for num_threads(threads) if (g->planes * out_size * window > 50000)
    for (int64_t plane = 0; plane < g->planes; plane++) {
        const float *xp = x + plane * in_size;
        float *yp = y + plane * out_size;
        for (int64_t od = 0; od < G.out[0]; od++) {
            int64_t sd = od * G.s[0] - G.p[0], db, de;
            taps(sd, G.k[0], G.d[0], 0, G.in[0], &db, &de);
            for (int64_t oh = 0; oh < G.out[1]; oh++) {
                int64_t sh = oh * G.s[1] - G.p[1], hb, he;
                taps(sh, G.k[1], G.d[1], 0, G.in[1], &hb, &he);
                for (int64_t ow = 0; ow < G.out[2]; ow++) {
                    int64_t sw = ow * G.s[2] - G.p[2], wb, we;
                    taps(sw, G.k[2], G.d[2], 0, G.in[2], &wb, &we);
                    int64_t o = (od * G.out[1] + oh) * G.out[2] + ow;
                    if (kind == POOL_MAX) {
                        float best = -INFINITY;
                        int64_t best_at = -1;
                        for (int64_t a = db; a < de; a++)
                            for (int64_t b = hb; b < he; b++) {
                                const float *row = xp + ((sd + a * G.d[0]) * G.in[1] + sh + b * G.d[1]) * G.in[2];
                                for (int64_t c = wb; c < we; c++) {
                                    float v = row[sw + c * G.d[2]];
                                    if (v > best || best_at < 0) {
                                        best = v;
                                        best_at = ((sd + a * G.d[0]) * G.in[1] + sh + b * G.d[1]) * G.in[2] + sw +
                                                  c * G.d[2];
                                    }
                                }
                            }
                        yp[o] = best;
                        if (indices) {
                            int64_t at = best_at < 0 ? 0 : best_at;
                            if (g->storage_order == 1) { /* column-major over the spatial axes */
                                int64_t iw = at % G.in[2], ih = at / G.in[2] % G.in[1], id = at / (G.in[2] * G.in[1]);
                                at = (iw * G.in[1] + ih) * G.in[0] + id;
                            }
                            indices[plane * out_size + o] = plane * in_size + at;
                        }
                    } else {
                        double sum = 0;
                        for (int64_t a = db; a < de; a++)
                            for (int64_t b = hb; b < he; b++) {
                                const float *row = xp + ((sd + a * G.d[0]) * G.in[1] + sh + b * G.d[1]) * G.in[2];
                                if (kind == POOL_AVG) {
                                    for (int64_t c = wb; c < we; c++)
                                        sum += row[sw + c * G.d[2]];
                                } else {
                                    for (int64_t c = wb; c < we; c++)
                                        sum += pow(fabs((double)row[sw + c * G.d[2]]), p);
                                }
                            }
                        if (kind == POOL_LP) {
                            yp[o] = (float)pow(sum, 1.0 / p);
                            continue;
                        }
                        int64_t count;
                        if (g->count_include_pad) {
                            /* taps inside the padded input */
                            int64_t c0b, c0e, c1b, c1e, c2b, c2e;
                            taps(sd, G.k[0], G.d[0], -G.p[0], G.in[0] + G.pr[0], &c0b, &c0e);
                            taps(sh, G.k[1], G.d[1], -G.p[1], G.in[1] + G.pr[1], &c1b, &c1e);
                            taps(sw, G.k[2], G.d[2], -G.p[2], G.in[2] + G.pr[2], &c2b, &c2e);
                            count = (c0e - c0b) * (c1e - c1b) * (c2e - c2b);
                        } else {
                            count = (de - db) * (he - hb) * (we - wb);
                        }
                        yp[o] = count > 0 ? (float)(sum / count) : 0.0f;
                    }
                }
            }
        }
    }
}

/* ---------------------------------------- 2-D max/average fast path */

/* Float32 2-D MaxPool (without indices) and AveragePool, no dilation: per
 * output row, the vertical max/sum of the window's input rows into a row
 * buffer, then the horizontal max/sum with vector loads (stride 1) or
 * even/odd splits (stride 2). Taps in the padding are skipped; averages
 * divide by the taps inside the input (or inside the padded input with
 * count_include_pad). */
#define POOL_FAST_MAX_W 4096

static int pool_fast_ok(const pool_geom *g, pool_kind kind)
{
    return (kind == POOL_MAX || kind == POOL_AVG) && g->nsp == 2 && g->d[0] == 1 && g->d[1] == 1 &&
           g->in[1] <= POOL_FAST_MAX_W;
}

static inline __m256 evens_of16(__m256 lo, __m256 hi)
{
    __m256 t = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0)));
}

static inline __m256 odds_of16(__m256 lo, __m256 hi)
{
    __m256 t = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0)));
}

/* Taps of a window starting at `start` (k wide) inside [lo, hi). */
static inline int64_t taps_inside(int64_t start, int64_t k, int64_t lo, int64_t hi)
{
    int64_t b = start > lo ? start : lo, e = start + k < hi ? start + k : hi;
    return e > b ? e - b : 0;
}

static void pool_2d_fast(const pool_geom *g, pool_kind kind, const float *x, float *y, int threads)
{
    int64_t IH = g->in[0], IW = g->in[1], OH = g->out[0], OW = g->out[1];
    int64_t KH = g->k[0], KW = g->k[1], SH = g->s[0], SW = g->s[1], PH = g->pad_l[0], PW = g->pad_l[1];
    int is_max = kind == POOL_MAX, include_pad = g->count_include_pad;
    /* output columns whose window lies inside the row */
    int64_t lo = (PW + SW - 1) / SW, hi = IW - KW + PW;
    hi = hi < 0 ? 0 : hi / SW + 1;
    if (hi > OW)
        hi = OW;
    if (lo > hi)
        lo = hi;
#pragma omp parallel for num_threads(threads) schedule(static) if (g->planes * OH * OW * KH * KW > 50000)
    for (int64_t plane = 0; plane < g->planes; plane++) {
        float rowbuf[POOL_FAST_MAX_W + 32];
        const float *xp = x + plane * IH * IW;
        float *yp = y + plane * OH * OW;
        for (int64_t oy = 0; oy < OH; oy++) {
            int64_t iy0 = oy * SH - PH;
            int64_t ky0 = iy0 < 0 ? -iy0 : 0, ky1 = IH - iy0 < KH ? IH - iy0 : KH;
            float *yr = yp + oy * OW;
            if (ky1 <= ky0) {
                for (int64_t ox = 0; ox < OW; ox++)
                    yr[ox] = is_max ? -INFINITY : 0.0f;
                continue;
            }
            int64_t rows_counted = include_pad ? taps_inside(iy0, KH, -PH, IH + g->pad_r[0]) : ky1 - ky0;
            const float *first = xp + (iy0 + ky0) * IW;
            const float *src = first;
            int64_t ox = lo;
            if (KH == 2 && KW == 2 && SW == 2 && ky1 - ky0 == 2) {
                /* 2x2/2 with both rows inside: straight from the two rows */
                const float *r0 = first, *r1 = first + IW;
                __m256 quarter = _mm256_set1_ps(0.25f);
                for (; ox + 8 <= hi; ox += 8) {
                    const float *a = r0 + 2 * ox - PW, *b = r1 + 2 * ox - PW;
                    __m256 lo8, hi8;
                    if (is_max) {
                        lo8 = _mm256_max_ps(_mm256_loadu_ps(a), _mm256_loadu_ps(b));
                        hi8 = _mm256_max_ps(_mm256_loadu_ps(a + 8), _mm256_loadu_ps(b + 8));
                    } else {
                        lo8 = _mm256_add_ps(_mm256_loadu_ps(a), _mm256_loadu_ps(b));
                        hi8 = _mm256_add_ps(_mm256_loadu_ps(a + 8), _mm256_loadu_ps(b + 8));
                    }
                    __m256 e = evens_of16(lo8, hi8), o = odds_of16(lo8, hi8);
                    _mm256_storeu_ps(yr + ox, is_max ? _mm256_max_ps(e, o)
                                                     : _mm256_mul_ps(_mm256_add_ps(e, o), quarter));
                }
                /* borders and the tail, from both rows */
                for (int64_t o = 0; o < OW; o++) {
                    if (o == lo)
                        o = ox;
                    if (o >= OW)
                        break;
                    int64_t ix0 = o * 2 - PW;
                    float best = -INFINITY, sum = 0.0f;
                    for (int64_t ix = ix0; ix < ix0 + 2; ix++)
                        if (ix >= 0 && ix < IW) {
                            float m = r0[ix] > r1[ix] ? r0[ix] : r1[ix];
                            best = m > best ? m : best;
                            sum += r0[ix] + r1[ix];
                        }
                    if (is_max) {
                        yr[o] = best;
                    } else {
                        int64_t cols = include_pad ? taps_inside(ix0, 2, -PW, IW + g->pad_r[1]) : taps_inside(ix0, 2, 0, IW);
                        int64_t count = rows_counted * cols;
                        yr[o] = count > 0 ? sum / (float)count : 0.0f;
                    }
                }
                continue;
            }
            if (ky1 - ky0 > 1) {
                memcpy(rowbuf, first, (size_t)IW * sizeof(float));
                for (int64_t ky = ky0 + 1; ky < ky1; ky++) {
                    const float *xr = xp + (iy0 + ky) * IW;
                    int64_t i = 0;
                    if (is_max) {
                        for (; i + 8 <= IW; i += 8)
                            _mm256_storeu_ps(rowbuf + i, _mm256_max_ps(_mm256_loadu_ps(rowbuf + i), _mm256_loadu_ps(xr + i)));
                        for (; i < IW; i++)
                            rowbuf[i] = xr[i] > rowbuf[i] ? xr[i] : rowbuf[i];
                    } else {
                        for (; i + 8 <= IW; i += 8)
                            _mm256_storeu_ps(rowbuf + i, _mm256_add_ps(_mm256_loadu_ps(rowbuf + i), _mm256_loadu_ps(xr + i)));
                        for (; i < IW; i++)
                            rowbuf[i] += xr[i];
                    }
                }
                src = rowbuf;
            } else if (SW == 2) {
                /* the stride-2 vector path reads a little past the row end */
                memcpy(rowbuf, first, (size_t)IW * sizeof(float));
                src = rowbuf;
            }
            __m256 scale = _mm256_set1_ps(1.0f / (float)(rows_counted * KW));
            if (SW == 1) {
                for (; ox + 8 <= hi; ox += 8) {
                    const float *t = src + ox - PW;
                    __m256 m = _mm256_loadu_ps(t);
                    if (is_max) {
                        for (int64_t kx = 1; kx < KW; kx++)
                            m = _mm256_max_ps(m, _mm256_loadu_ps(t + kx));
                    } else {
                        for (int64_t kx = 1; kx < KW; kx++)
                            m = _mm256_add_ps(m, _mm256_loadu_ps(t + kx));
                        m = _mm256_mul_ps(m, scale);
                    }
                    _mm256_storeu_ps(yr + ox, m);
                }
            } else if (SW == 2) {
                for (; ox + 8 <= hi; ox += 8) {
                    const float *t = src + 2 * ox - PW;
                    __m256 m = evens_of16(_mm256_loadu_ps(t), _mm256_loadu_ps(t + 8));
                    if (is_max) {
                        for (int64_t kx = 1; kx < KW; kx++)
                            m = _mm256_max_ps(m, evens_of16(_mm256_loadu_ps(t + kx), _mm256_loadu_ps(t + kx + 8)));
                    } else {
                        for (int64_t kx = 1; kx < KW; kx++)
                            m = _mm256_add_ps(m, evens_of16(_mm256_loadu_ps(t + kx), _mm256_loadu_ps(t + kx + 8)));
                        m = _mm256_mul_ps(m, scale);
                    }
                    _mm256_storeu_ps(yr + ox, m);
                }
            }
            for (int64_t o = 0; o < OW; o++) {
                if (o == lo)
                    o = ox; /* interior columns the vector loop did not cover follow */
                if (o >= OW)
                    break;
                int64_t ix0 = o * SW - PW;
                float best = -INFINITY, sum = 0.0f;
                for (int64_t kx = 0; kx < KW; kx++) {
                    int64_t ix = ix0 + kx;
                    if (ix >= 0 && ix < IW) {
                        best = src[ix] > best ? src[ix] : best;
                        sum += src[ix];
                    }
                }
                if (is_max) {
                    yr[o] = best;
                } else {
                    int64_t cols = include_pad ? taps_inside(ix0, KW, -PW, IW + g->pad_r[1]) : taps_inside(ix0, KW, 0, IW);
                    int64_t count = rows_counted * cols;
                    yr[o] = count > 0 ? sum / (float)count : 0.0f;
                }
            }
        }
    }
}

static void global_kernel(const pool_geom *g, pool_kind kind, const float *x, float *y, int threads)
{
    int64_t n = 1;
    for (int i = 0; i < g->nsp; i++)
        n *= g->in[i];
    double p = g->p;
#pragma omp parallel for num_threads(threads) if (g->planes * n > 100000)
    for (int64_t plane = 0; plane < g->planes; plane++) {
        const float *xp = x + plane * n;
        if (kind == POOL_MAX) {
            float best = -INFINITY;
            for (int64_t i = 0; i < n; i++)
                best = xp[i] > best ? xp[i] : best;
            y[plane] = best;
        } else if (kind == POOL_AVG) {
            float acc[8] = {0};
            int64_t i = 0;
            for (; i + 8 <= n; i += 8)
                for (int j = 0; j < 8; j++)
                    acc[j] += xp[i + j];
            double sum = 0;
            for (int j = 0; j < 8; j++)
                sum += acc[j];
            for (; i < n; i++)
                sum += xp[i];
            y[plane] = (float)(sum / n);
        } else {
            double sum = 0;
            for (int64_t i = 0; i < n; i++)
                sum += pow(fabs((double)xp[i]), p);
            y[plane] = (float)pow(sum, 1.0 / p);
        }
    }
}

static fg_status *pool_run_common(op_call *call, pool_kind kind, int global)
{
    pool_geom g;
    FG_TRY(pool_geometry(call, kind, global, &g));
    const fg_tensor *x = &call->in[0];
    fg_tensor *y = &call->out[0];
    int64_t *indices = call->n_out > 1 && call->out[1].data ? call->out[1].data : NULL;
    int threads = call->threads > 0 ? call->threads : 1;
    int64_t nx = fg_tensor_numel(x), ny = fg_tensor_numel(y);
    const float *xf = x->data;
    float *yf = y->data;
    if (x->dtype != FG_FLOAT32) {
        float *buf = (float *)(((uintptr_t)call->scratch + 63) & ~(uintptr_t)63);
        for (int64_t i = 0; i < nx; i++)
            buf[i] = (float)fg_load_f64(x->dtype, x->data, i);
        xf = buf;
        yf = buf + nx;
    }
    if (global && !indices)
        global_kernel(&g, kind, xf, yf, threads);
    else if (!global && !indices && pool_fast_ok(&g, kind))
        pool_2d_fast(&g, kind, xf, yf, threads);
    else
        pool_kernel(&g, kind, xf, yf, indices, threads);
    if (x->dtype != FG_FLOAT32)
        for (int64_t i = 0; i < ny; i++)
            fg_store_f64(y->dtype, y->data, i, yf[i]);
    return NULL;
}

static fg_status *max_pool_infer(op_call *call) { return pool_infer_common(call, POOL_MAX, 0); }
static fg_status *max_pool_run(op_call *call) { return pool_run_common(call, POOL_MAX, 0); }
static fg_status *avg_pool_infer(op_call *call) { return pool_infer_common(call, POOL_AVG, 0); }
static fg_status *avg_pool_run(op_call *call) { return pool_run_common(call, POOL_AVG, 0); }
static fg_status *lp_pool_infer(op_call *call) { return pool_infer_common(call, POOL_LP, 0); }
static fg_status *lp_pool_run(op_call *call) { return pool_run_common(call, POOL_LP, 0); }
static fg_status *global_max_infer(op_call *call) { return pool_infer_common(call, POOL_MAX, 1); }
static fg_status *global_max_run(op_call *call) { return pool_run_common(call, POOL_MAX, 1); }
static fg_status *global_avg_infer(op_call *call) { return pool_infer_common(call, POOL_AVG, 1); }
static fg_status *global_avg_run(op_call *call) { return pool_run_common(call, POOL_AVG, 1); }
static fg_status *global_lp_infer(op_call *call) { return pool_infer_common(call, POOL_LP, 1); }
static fg_status *global_lp_run(op_call *call) { return pool_run_common(call, POOL_LP, 1); }

const op_def op_family_pool[] = {
    {"MaxPool", NULL, max_pool_infer, NULL, max_pool_run, NULL, 0},
    {"AveragePool", NULL, avg_pool_infer, NULL, avg_pool_run, NULL, 0},
    {"LpPool", NULL, lp_pool_infer, NULL, lp_pool_run, NULL, 0},
    {"GlobalMaxPool", NULL, global_max_infer, NULL, global_max_run, NULL, 0},
    {"GlobalAveragePool", NULL, global_avg_infer, NULL, global_avg_run, NULL, 0},
    {"GlobalLpPool", NULL, global_lp_infer, NULL, global_lp_run, NULL, 0},
    {0},
};
