/* What the C test programs share for ONNX test data: reading a whole file
 * and a serialized TensorProto (input_N.pb / output_N.pb). */
#ifndef FACEGRAPH_TESTS_TEST_DATA_H
#define FACEGRAPH_TESTS_TEST_DATA_H

#include "onnx/ir.h"

#include <stdio.h>
#include <stdlib.h>

/* The file's bytes in *data (malloc'd) and *size; 0 when it cannot be read. */
static inline int test_read_file(const char *path, void **data, size_t *size)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return 0;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    *data = malloc(n > 0 ? (size_t)n : 1);
    *size = (size_t)(n > 0 ? n : 0);
    int ok = *data && fread(*data, 1, *size, fp) == *size;
    fclose(fp);
    if (!ok) {
        free(*data);
        *data = NULL;
    }
    return ok;
}

#endif
