/* Host-side pooling geometry shared by the CPU kernels (src/ops/pool.c) and
 * the CUDA kernels (src/cuda/kernels/misc.cu): input checks, the window /
 * stride / dilation / padding attributes (auto_pad and ceil_mode included)
 * and the output size per spatial axis. */
#ifndef FACEGRAPH_OPS_POOL_GEOMETRY_H
#define FACEGRAPH_OPS_POOL_GEOMETRY_H

#include "ops/op.h"

#define POOL_MAX_SP 3

typedef enum pool_kind { POOL_MAX, POOL_AVG, POOL_LP } pool_kind;

typedef struct pool_geom {
    int nsp;
    int64_t planes; /* batch * channels */
    int64_t in[POOL_MAX_SP], out[POOL_MAX_SP], k[POOL_MAX_SP], s[POOL_MAX_SP], d[POOL_MAX_SP];
    int64_t pad_l[POOL_MAX_SP], pad_r[POOL_MAX_SP];
    int count_include_pad, storage_order;
    int p; /* LpPool */
} pool_geom;

/* Checks the input (rank 3 to 5; float32, float16, float64, int8 or uint8)
 * and fills g from the attributes (global: the window is the whole plane). */
fg_status *pool_geometry(const op_call *call, pool_kind kind, int global, pool_geom *g);

/* Widened to 3 spatial axes with leading size-1 axes. */
typedef struct pool3 {
    int64_t in[3], out[3], k[3], s[3], d[3], p[3], pr[3];
} pool3;

/* g's spatial axes widened to 3 (leading axes of size 1). */
void pool_widen(const pool_geom *g, pool3 *w);

#endif
