#include "cli/npy.h"

#include "base/base.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const struct {
    const char *descr;
    fg_dtype dtype;
} npy_types[] = {
    {"<f4", FG_FLOAT32}, {"<f2", FG_FLOAT16}, {"<f8", FG_FLOAT64}, {"<i8", FG_INT64}, {"<i4", FG_INT32},
    {"<i2", FG_INT16},   {"|i1", FG_INT8},    {"|u1", FG_UINT8},   {"<u2", FG_UINT16}, {"<u4", FG_UINT32},
    {"<u8", FG_UINT64},  {"|b1", FG_BOOL},
};

static fg_status *parse_header(const char *path, const char *h, fg_tensor *t)
{
    const char *d = strstr(h, "'descr'");
    const char *f = strstr(h, "'fortran_order'");
    const char *s = strstr(h, "'shape'");
    if (!d || !f || !s)
        return fg_error(FG_ERR_CORRUPT, "%s: not a valid .npy header (descr, fortran_order, shape missing)", path);
    d = strchr(d + 7, '\'');
    if (!d)
        return fg_error(FG_ERR_CORRUPT, "%s: malformed descr in the .npy header", path);
    d++;
    t->dtype = FG_DTYPE_UNDEFINED;
    for (size_t i = 0; i < sizeof npy_types / sizeof npy_types[0]; i++)
        if (!strncmp(d, npy_types[i].descr, 3) && d[3] == '\'')
            t->dtype = npy_types[i].dtype;
    if (t->dtype == FG_DTYPE_UNDEFINED)
        return fg_error(FG_ERR_UNSUPPORTED,
                        "%s: element type '%.8s' is not supported; save float32, float16, float64, int64, int32, "
                        "uint8 or bool arrays (little-endian)",
                        path, d);
    if (strstr(f, "True") && strstr(f, "True") < s + 1000 && strstr(f, "True") < strchr(f, ','))
        return fg_error(FG_ERR_UNSUPPORTED, "%s: Fortran-order arrays are not supported; save with np.ascontiguousarray",
                        path);
    s = strchr(s, '(');
    if (!s)
        return fg_error(FG_ERR_CORRUPT, "%s: malformed shape in the .npy header", path);
    s++;
    t->rank = 0;
    while (*s && *s != ')') {
        while (*s == ' ' || *s == ',')
            s++;
        if (*s == ')')
            break;
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s || v < 0)
            return fg_error(FG_ERR_CORRUPT, "%s: malformed shape in the .npy header", path);
        if (t->rank == FG_MAX_RANK)
            return fg_error(FG_ERR_UNSUPPORTED, "%s: arrays of more than %d dimensions are not supported", path,
                            FG_MAX_RANK);
        t->dims[t->rank++] = v;
        s = end;
    }
    return NULL;
}

fg_status *npy_read(const char *path, fg_tensor *t)
{
    memset(t, 0, sizeof *t);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return fg_error(FG_ERR_NOT_FOUND, "%s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode))
        return fg_error(FG_ERR_IO, "%s is a directory, not an .npy file", path);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return fg_error(FG_ERR_IO, "%s: %s", path, strerror(errno));
    unsigned char pre[12];
    fg_status *st = NULL;
    char *header = NULL;
    if (fread(pre, 1, 10, fp) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        st = fg_error(FG_ERR_CORRUPT, "%s: not a NumPy .npy file (bad magic)", path);
        goto done;
    }
    size_t hlen = pre[8] | (size_t)pre[9] << 8;
    if (pre[6] >= 2) {
        if (fread(pre + 10, 1, 2, fp) != 2) {
            st = fg_error(FG_ERR_CORRUPT, "%s: truncated .npy header", path);
            goto done;
        }
        hlen |= (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    }
    if (hlen > 1 << 20) {
        st = fg_error(FG_ERR_CORRUPT, "%s: implausible .npy header length %zu", path, hlen);
        goto done;
    }
    header = calloc(hlen + 1, 1);
    if (!header || fread(header, 1, hlen, fp) != hlen) {
        st = fg_error(FG_ERR_CORRUPT, "%s: truncated .npy header", path);
        goto done;
    }
    st = parse_header(path, header, t);
    if (st)
        goto done;
    size_t bytes = fg_tensor_nbytes(t);
    t->data = malloc(bytes ? bytes : 1);
    if (!t->data) {
        st = fg_error(FG_ERR_OUT_OF_MEMORY, "%s: out of memory for %zu bytes", path, bytes);
        goto done;
    }
    if (fread(t->data, 1, bytes, fp) != bytes) {
        free(t->data);
        t->data = NULL;
        st = fg_error(FG_ERR_CORRUPT, "%s: the file holds fewer bytes than its shape needs (%zu)", path, bytes);
    }
done:
    free(header);
    fclose(fp);
    return st;
}

fg_status *npy_write(const char *path, const fg_tensor *t)
{
    const char *descr = NULL;
    for (size_t i = 0; i < sizeof npy_types / sizeof npy_types[0]; i++)
        if (npy_types[i].dtype == t->dtype)
            descr = npy_types[i].descr;
    if (!descr)
        return fg_error(FG_ERR_UNSUPPORTED, "%s: cannot write %s tensors as .npy", path, fg_dtype_name(t->dtype));
    char shape[256] = "";
    size_t used = 0;
    for (int d = 0; d < t->rank; d++)
        used += (size_t)snprintf(shape + used, sizeof shape - used, "%lld,%s", (long long)t->dims[d],
                                 d + 1 < t->rank ? " " : "");
    if (t->rank > 1)
        shape[used - 1] = 0; /* drop the trailing comma except for 1-d */
    char header[512];
    int n = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, shape);
    int total = 10 + n + 1;
    int pad = (64 - total % 64) % 64;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *fp = fopen(tmp, "wb");
    if (!fp)
        return fg_error(FG_ERR_IO, "%s: %s", tmp, strerror(errno));
    unsigned hl = (unsigned)(n + pad + 1);
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 0xff), (unsigned char)(hl >> 8)};
    fwrite(pre, 1, 10, fp);
    fwrite(header, 1, (size_t)n, fp);
    for (int i = 0; i < pad; i++)
        fputc(' ', fp);
    fputc('\n', fp);
    size_t bytes = fg_tensor_nbytes(t);
    int ok = fwrite(t->data, 1, bytes, fp) == bytes;
    ok &= fclose(fp) == 0;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return fg_error(FG_ERR_IO, "%s: writing failed (%s)", path, strerror(errno));
    }
    return NULL;
}
