/* Shared internals: status construction, dtype helpers, half floats,
 * small utilities. Every other stage may use this; it uses nothing else. */
#ifndef FACEGRAPH_BASE_H
#define FACEGRAPH_BASE_H

#include "facegraph/facegraph.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define FG_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define FG_PRINTF(a, b)
#endif

/* A new status with a formatted message. Never returns NULL (falls back to a
 * static out-of-memory status that fg_status_free ignores). */
fg_status *fg_error(fg_code code, const char *fmt, ...) FG_PRINTF(2, 3);
/* Prefixes context to an existing status's message and returns it. */
fg_status *fg_error_wrap(fg_status *status, const char *fmt, ...) FG_PRINTF(2, 3);

/* A static status the op layer uses to say "shape needs a value"; not an
 * error, never freed (fg_status_free ignores it). */
fg_status *fg_status_need_value_sentinel(void);

#define FG_TRY(expr)                        \
    do {                                    \
        fg_status *fg_try_status_ = (expr); \
        if (fg_try_status_)                 \
            return fg_try_status_;          \
    } while (0)

/* IEEE half <-> float. */
float fg_half_to_float(uint16_t h);
uint16_t fg_float_to_half(float f);

/* Product of dims[0..rank-1] (1 for rank 0). */
int64_t fg_shape_numel(int rank, const int64_t *dims);
/* "1x3x640x640" into buf (returns buf). */
char *fg_shape_format(int rank, const int64_t *dims, char *buf, size_t size);
bool fg_shape_equal(int rank_a, const int64_t *a, int rank_b, const int64_t *b);

/* Checked allocation helpers: return NULL on failure like malloc. */
void *fg_xcalloc(size_t n, size_t size);
char *fg_strdup(const char *s);
char *fg_strndup(const char *s, size_t n);

/* Aligned allocation (alignment 64), free with fg_aligned_free. */
void *fg_aligned_alloc(size_t bytes);
void fg_aligned_free(void *p);

/* Reads an element of any numeric dtype as double / int64. */
double fg_load_f64(fg_dtype dtype, const void *data, int64_t index);
int64_t fg_load_i64(fg_dtype dtype, const void *data, int64_t index);
/* Writes a double into an element of any numeric dtype (with C conversion
 * semantics; float16 rounds to nearest even). */
void fg_store_f64(fg_dtype dtype, void *data, int64_t index, double value);

/* sha256 of a buffer as 64 lowercase hex characters plus NUL. */
void fg_sha256_hex(const void *data, size_t size, char out[65]);

/* Monotonic time in seconds. */
double fg_now_seconds(void);

#endif
