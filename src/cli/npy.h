/* NumPy .npy files (format versions 1-3, C order) for `facegraph infer`. */
#ifndef FACEGRAPH_CLI_NPY_H
#define FACEGRAPH_CLI_NPY_H

#include "facegraph/facegraph.h"

/* Reads an .npy file into t (t->data malloc'd; free() it). */
fg_status *npy_read(const char *path, fg_tensor *t);
/* Writes t as .npy atomically (temp file + rename). */
fg_status *npy_write(const char *path, const fg_tensor *t);

#endif
