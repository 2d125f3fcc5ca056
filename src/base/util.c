#include "base/base.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *fg_dtype_name(fg_dtype dtype)
{
    switch (dtype) {
    case FG_FLOAT32: return "float32";
    case FG_UINT8: return "uint8";
    case FG_INT8: return "int8";
    case FG_UINT16: return "uint16";
    case FG_INT16: return "int16";
    case FG_INT32: return "int32";
    case FG_INT64: return "int64";
    case FG_STRING: return "string";
    case FG_BOOL: return "bool";
    case FG_FLOAT16: return "float16";
    case FG_FLOAT64: return "float64";
    case FG_UINT32: return "uint32";
    case FG_UINT64: return "uint64";
    default: return "undefined";
    }
}

size_t fg_dtype_size(fg_dtype dtype)
{
    switch (dtype) {
    case FG_FLOAT32: case FG_INT32: case FG_UINT32: return 4;
    case FG_UINT8: case FG_INT8: case FG_BOOL: return 1;
    case FG_UINT16: case FG_INT16: case FG_FLOAT16: return 2;
    case FG_INT64: case FG_FLOAT64: case FG_UINT64: return 8;
    default: return 0;
    }
}

int64_t fg_shape_numel(int rank, const int64_t *dims)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= dims[i];
    return n;
}

int64_t fg_tensor_numel(const fg_tensor *t) { return fg_shape_numel(t->rank, t->dims); }
size_t fg_tensor_nbytes(const fg_tensor *t) { return (size_t)fg_tensor_numel(t) * fg_dtype_size(t->dtype); }

char *fg_shape_format(int rank, const int64_t *dims, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = 0;
    if (rank == 0) {
        snprintf(buf, size, "scalar");
        return buf;
    }
    for (int i = 0; i < rank && used < size; i++) {
        int n = dims[i] < 0 ? snprintf(buf + used, size - used, "%s?", i ? "x" : "")
                            : snprintf(buf + used, size - used, "%s%lld", i ? "x" : "", (long long)dims[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    return buf;
}

bool fg_shape_equal(int rank_a, const int64_t *a, int rank_b, const int64_t *b)
{
    if (rank_a != rank_b)
        return false;
    for (int i = 0; i < rank_a; i++)
        if (a[i] != b[i])
            return false;
    return true;
}

float fg_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { /* subnormal */
            exp = 127 - 15 + 1;
            while (!(mant & 0x400)) {
                mant <<= 1;
                exp--;
            }
            mant &= 0x3ff;
            bits = sign | (exp << 23) | (mant << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t fg_float_to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 : 0));
    if (absx >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7c00);
    if (absx < 0x38800000u) { /* subnormal half or zero */
        if (absx < 0x33000000u)
            return (uint16_t)sign;
        uint32_t mant = (absx & 0x7fffff) | 0x800000;
        int shift = 126 - (int)(absx >> 23); /* 14..24 */
        uint32_t half_mant = mant >> (shift + 0);
        uint32_t rem = mant & ((1u << shift) - 1);
        uint32_t halfway = 1u << (shift - 1);
        half_mant >>= 0;
        /* mant has 24 bits; half subnormal has 10 bits at 2^-24 scale */
        half_mant = mant >> shift;
        if (rem > halfway || (rem == halfway && (half_mant & 1)))
            half_mant++;
        return (uint16_t)(sign | half_mant);
    }
    uint32_t exp = (absx >> 23) - 127 + 15;
    uint32_t mant = absx & 0x7fffff;
    uint32_t h = (exp << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
        h++;
    return (uint16_t)(sign | h);
}

void *fg_xcalloc(size_t n, size_t size) { return calloc(n ? n : 1, size ? size : 1); }

char *fg_strdup(const char *s) { return s ? fg_strndup(s, strlen(s)) : NULL; }

char *fg_strndup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

void *fg_aligned_alloc(size_t bytes)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64))
        return NULL;
    return p;
}

void fg_aligned_free(void *p) { free(p); }

double fg_load_f64(fg_dtype dtype, const void *data, int64_t i)
{
    switch (dtype) {
    case FG_FLOAT32: return ((const float *)data)[i];
    case FG_FLOAT64: return ((const double *)data)[i];
    case FG_FLOAT16: return fg_half_to_float(((const uint16_t *)data)[i]);
    case FG_INT64: return (double)((const int64_t *)data)[i];
    case FG_INT32: return ((const int32_t *)data)[i];
    case FG_INT16: return ((const int16_t *)data)[i];
    case FG_INT8: return ((const int8_t *)data)[i];
    case FG_UINT8: case FG_BOOL: return ((const uint8_t *)data)[i];
    case FG_UINT16: return ((const uint16_t *)data)[i];
    case FG_UINT32: return ((const uint32_t *)data)[i];
    case FG_UINT64: return (double)((const uint64_t *)data)[i];
    default: return 0;
    }
}

int64_t fg_load_i64(fg_dtype dtype, const void *data, int64_t i)
{
    switch (dtype) {
    case FG_INT64: return ((const int64_t *)data)[i];
    case FG_INT32: return ((const int32_t *)data)[i];
    case FG_INT16: return ((const int16_t *)data)[i];
    case FG_INT8: return ((const int8_t *)data)[i];
    case FG_UINT8: case FG_BOOL: return ((const uint8_t *)data)[i];
    case FG_UINT16: return ((const uint16_t *)data)[i];
    case FG_UINT32: return ((const uint32_t *)data)[i];
    case FG_UINT64: return (int64_t)((const uint64_t *)data)[i];
    default: return (int64_t)fg_load_f64(dtype, data, i);
    }
}

void fg_store_f64(fg_dtype dtype, void *data, int64_t i, double v)
{
    switch (dtype) {
    case FG_FLOAT32: ((float *)data)[i] = (float)v; break;
    case FG_FLOAT64: ((double *)data)[i] = v; break;
    case FG_FLOAT16: ((uint16_t *)data)[i] = fg_float_to_half((float)v); break;
    case FG_INT64: ((int64_t *)data)[i] = (int64_t)v; break;
    case FG_INT32: ((int32_t *)data)[i] = (int32_t)v; break;
    case FG_INT16: ((int16_t *)data)[i] = (int16_t)v; break;
    case FG_INT8: ((int8_t *)data)[i] = (int8_t)v; break;
    case FG_UINT8: ((uint8_t *)data)[i] = (uint8_t)v; break;
    case FG_BOOL: ((uint8_t *)data)[i] = v != 0; break;
    case FG_UINT16: ((uint16_t *)data)[i] = (uint16_t)v; break;
    case FG_UINT32: ((uint32_t *)data)[i] = (uint32_t)v; break;
    case FG_UINT64: ((uint64_t *)data)[i] = (uint64_t)v; break;
    default: break;
    }
}

double fg_now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}
