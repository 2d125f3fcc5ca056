/* The op table: every family's ops, looked up by (domain, op_type). */
#include "ops/op.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const op_def *const families[] = {
    op_family_elementwise, op_family_tensor, op_family_conv,   op_family_pool,      op_family_norm,
    op_family_matmul,      op_family_resize, op_family_reduce, op_family_detection, op_family_control,
};

const op_def *op_find(const char *domain, const char *op_type)
{
    if (domain && strcmp(domain, "facegraph") == 0) {
        for (const op_def *op = op_family_facegraph; op->op_type; op++)
            if (strcmp(op->op_type, op_type) == 0)
                return op;
        return NULL;
    }
    if (domain && domain[0] && strcmp(domain, "ai.onnx") != 0)
        return NULL;
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
        for (const op_def *op = families[f]; op->op_type; op++)
            if (strcmp(op->op_type, op_type) == 0)
                return op;
    return NULL;
}

void op_for_each(void (*fn)(const op_def *op, void *ctx), void *ctx)
{
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
        for (const op_def *op = families[f]; op->op_type; op++)
            fn(op, ctx);
}

int op_is_elementwise(const op_def *op)
{
    for (const op_def *e = op_family_elementwise; e->op_type; e++)
        if (e == op)
            return 1;
    return 0;
}
