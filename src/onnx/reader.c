/* A small protobuf wire-format reader and the ONNX messages built on it:
 * ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto,
 * ValueInfoProto, TypeProto.
 *
 * Every length, count and varint is checked against the end of its enclosing
 * message before use; errors say where in the message tree decoding failed.
 * Repeated fields are counted in a first scan and filled in a second, so no
 * allocation is larger than what the bytes in the file can back. */
#include "onnx/decode.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Drops the whole pages inside [p, p + n) of a read-only file mapping; they
 * are re-read from the file if touched again. */
static void release_mapped_range(const void *p, size_t n)
{
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t start = ((uintptr_t)p + (uintptr_t)page - 1) / (uintptr_t)page * (uintptr_t)page;
    uintptr_t end = ((uintptr_t)p + n) / (uintptr_t)page * (uintptr_t)page;
    if (page > 0 && end > start)
        madvise((void *)start, end - start, MADV_DONTNEED);
}

enum { WIRE_VARINT = 0, WIRE_FIXED64 = 1, WIRE_LEN = 2, WIRE_FIXED32 = 5 };

#define MAX_SUBGRAPH_DEPTH 32

typedef struct pb_field {
    uint32_t number;
    uint32_t wire;
    uint64_t value;      /* varint / fixed32 / fixed64 payload */
    const uint8_t *data; /* WIRE_LEN payload */
    size_t len;
    const uint8_t *at;   /* where the field's tag starts */
} pb_field;

typedef struct pb_cursor {
    const uint8_t *p;
    const uint8_t *end;
    const char *const *names; /* field names by number (for messages), or NULL */
} pb_cursor;

#define FIELD_NAME_SLOTS 26
static const char *const model_fields[FIELD_NAME_SLOTS] = {
    [1] = "ir_version", [2] = "producer_name", [3] = "producer_version", [4] = "domain", [5] = "model_version",
    [6] = "doc_string", [7] = "graph", [8] = "opset_import", [14] = "metadata_props", [20] = "training_info",
    [25] = "functions"};
static const char *const graph_fields[FIELD_NAME_SLOTS] = {
    [1] = "node", [2] = "name", [5] = "initializer", [10] = "doc_string", [11] = "input", [12] = "output",
    [13] = "value_info", [14] = "quantization_annotation", [15] = "sparse_initializer"};
static const char *const node_fields[FIELD_NAME_SLOTS] = {
    [1] = "input", [2] = "output", [3] = "name", [4] = "op_type", [5] = "attribute", [6] = "doc_string",
    [7] = "domain"};
static const char *const attribute_fields[FIELD_NAME_SLOTS] = {
    [1] = "name", [2] = "f", [3] = "i", [4] = "s", [5] = "t", [6] = "g", [7] = "floats", [8] = "ints",
    [9] = "strings", [10] = "tensors", [11] = "graphs", [13] = "doc_string", [14] = "tp", [15] = "type_protos",
    [20] = "type", [21] = "ref_attr_name", [22] = "sparse_tensor", [23] = "sparse_tensors"};
static const char *const tensor_fields[FIELD_NAME_SLOTS] = {
    [1] = "dims", [2] = "data_type", [3] = "segment", [4] = "float_data", [5] = "int32_data",
    [6] = "string_data", [7] = "int64_data", [8] = "name", [9] = "raw_data", [10] = "double_data",
    [11] = "uint64_data", [12] = "doc_string", [13] = "external_data", [14] = "data_location"};
static const char *const value_info_fields[FIELD_NAME_SLOTS] = {[1] = "name", [2] = "type", [3] = "doc_string"};
static const char *const type_fields[FIELD_NAME_SLOTS] = {
    [1] = "tensor_type", [4] = "sequence_type", [5] = "map_type", [6] = "denotation", [8] = "sparse_tensor_type",
    [9] = "optional_type"};
static const char *const tensor_type_fields[FIELD_NAME_SLOTS] = {[1] = "elem_type", [2] = "shape"};
static const char *const shape_fields[FIELD_NAME_SLOTS] = {[1] = "dim"};
static const char *const dimension_fields[FIELD_NAME_SLOTS] = {[1] = "dim_value", [2] = "dim_param",
                                                               [3] = "denotation"};
static const char *const entry_fields[FIELD_NAME_SLOTS] = {[1] = "key", [2] = "value"};
static const char *const opset_fields[FIELD_NAME_SLOTS] = {[1] = "domain", [2] = "version"};

/* "field 'graph' (7)" or "field 9" into buf */
static const char *field_label(const pb_cursor *c, uint32_t number, char *buf, size_t size)
{
    if (c->names && number < FIELD_NAME_SLOTS && c->names[number])
        snprintf(buf, size, "field '%s' (%u)", c->names[number], number);
    else
        snprintf(buf, size, "field %u", number);
    return buf;
}

/* ------------------------------------------------------------ errors / path */

static size_t where_push(onnx_decoder *d, const char *fmt, ...) FG_PRINTF(2, 3);
static size_t where_push(onnx_decoder *d, const char *fmt, ...)
{
    size_t mark = d->where_len;
    if (d->where_len + 1 >= sizeof d->where)
        return mark;
    char part[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(part, sizeof part, fmt, ap);
    va_end(ap);
    int n = snprintf(d->where + d->where_len, sizeof d->where - d->where_len, "%s%s",
                     d->where_len && part[0] != '[' && part[0] != '(' ? "." : "", part);
    if (n > 0)
        d->where_len += (size_t)n < sizeof d->where - d->where_len ? (size_t)n : sizeof d->where - d->where_len - 1;
    return mark;
}

static void where_pop(onnx_decoder *d, size_t mark)
{
    d->where_len = mark;
    d->where[mark] = 0;
}

static const char *where_text(const onnx_decoder *d)
{
    if (d->where_len)
        return d->where;
    return strcmp(d->kind, "TensorProto") == 0 ? "TensorProto" : "ModelProto";
}

static size_t offset_of(const onnx_decoder *d, const uint8_t *at) { return (size_t)(at - d->base); }

static fg_status *corrupt(onnx_decoder *d, const uint8_t *at, const char *fmt, ...) FG_PRINTF(3, 4);
static fg_status *corrupt(onnx_decoder *d, const uint8_t *at, const char *fmt, ...)
{
    char detail[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return fg_error(FG_ERR_CORRUPT,
                    "%s: corrupt %s: %s (byte %zu): %s; the file is truncated or not %s — download it again",
                    d->label, d->kind, where_text(d), offset_of(d, at), detail,
                    strcmp(d->kind, "TensorProto") == 0 ? "a TensorProto" : "an ONNX model");
}

static fg_status *unsupported(onnx_decoder *d, const char *fmt, ...) FG_PRINTF(2, 3);
static fg_status *unsupported(onnx_decoder *d, const char *fmt, ...)
{
    char detail[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return fg_error(FG_ERR_UNSUPPORTED, "%s: %s: %s", d->label, where_text(d), detail);
}

static fg_status *out_of_memory(onnx_decoder *d)
{
    return fg_error(FG_ERR_OUT_OF_MEMORY, "%s: out of host memory while decoding %s; free memory and retry",
                    d->label, where_text(d));
}

static const char *end_description(const onnx_decoder *d, const uint8_t *end)
{
    return end == d->base + d->size ? "the end of the file" : "the end of its enclosing message";
}

/* ------------------------------------------------------------ wire format */

static fg_status *read_varint(onnx_decoder *d, pb_cursor *c, uint64_t *out)
{
    const uint8_t *start = c->p;
    uint64_t value = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (c->p >= c->end)
            return corrupt(d, start, "a varint runs past %s", end_description(d, c->end));
        uint8_t byte = *c->p++;
        if (shift < 64)
            value |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *out = value;
            return NULL;
        }
    }
    return corrupt(d, start, "a varint is longer than 10 bytes");
}

/* Reads the next field; *has = 0 at the end of the message. */
static fg_status *next_field(onnx_decoder *d, pb_cursor *c, pb_field *f, int *has)
{
    *has = 0;
    if (c->p >= c->end)
        return NULL;
    char label[80];
    memset(f, 0, sizeof *f);
    f->at = c->p;
    uint64_t tag = 0;
    FG_TRY(read_varint(d, c, &tag));
    f->number = (uint32_t)(tag >> 3);
    f->wire = (uint32_t)(tag & 7);
    if (f->number == 0 || (tag >> 3) > 0x1fffffff)
        return corrupt(d, f->at, "invalid field number %llu", (unsigned long long)(tag >> 3));
    switch (f->wire) {
    case WIRE_VARINT:
        FG_TRY(read_varint(d, c, &f->value));
        break;
    case WIRE_FIXED64:
        if ((size_t)(c->end - c->p) < 8)
            return corrupt(d, f->at, "8-byte %s runs past %s", field_label(c, f->number, label, sizeof label),
                           end_description(d, c->end));
        memcpy(&f->value, c->p, 8);
        c->p += 8;
        break;
    case WIRE_FIXED32: {
        if ((size_t)(c->end - c->p) < 4)
            return corrupt(d, f->at, "4-byte %s runs past %s", field_label(c, f->number, label, sizeof label),
                           end_description(d, c->end));
        uint32_t v;
        memcpy(&v, c->p, 4);
        f->value = v;
        c->p += 4;
        break;
    }
    case WIRE_LEN: {
        uint64_t len = 0;
        FG_TRY(read_varint(d, c, &len));
        if (len > (uint64_t)(c->end - c->p))
            return corrupt(d, f->at, "%s has length %llu, which runs past %s (it would end at byte %llu, %s ends at "
                           "byte %zu)",
                           field_label(c, f->number, label, sizeof label), (unsigned long long)len,
                           end_description(d, c->end), (unsigned long long)(offset_of(d, c->p) + len),
                           c->end == d->base + d->size ? "the file" : "the message", offset_of(d, c->end));
        f->data = c->p;
        f->len = (size_t)len;
        c->p += len;
        break;
    }
    default:
        return corrupt(d, f->at, "%s has wire type %u, which ONNX never uses",
                       field_label(c, f->number, label, sizeof label), f->wire);
    }
    *has = 1;
    return NULL;
}

static fg_status *expect_wire(onnx_decoder *d, const pb_field *f, uint32_t wire, const char *field_name)
{
    static const char *names[] = {"varint", "fixed64", "length-delimited", "group start", "group end", "fixed32"};
    if (f->wire == wire)
        return NULL;
    return corrupt(d, f->at, "field '%s' (%u) has wire type %s, expected %s", field_name, f->number,
                   f->wire < 6 ? names[f->wire] : "?", names[wire]);
}

/* Kinds of packed-repeatable scalars. */
typedef enum scalar_kind { SCALAR_VARINT, SCALAR_FIXED32, SCALAR_FIXED64 } scalar_kind;

static uint32_t scalar_wire(scalar_kind kind)
{
    return kind == SCALAR_VARINT ? WIRE_VARINT : kind == SCALAR_FIXED32 ? WIRE_FIXED32 : WIRE_FIXED64;
}

/* Counts elements of one occurrence of a repeated scalar field (packed or not). */
static fg_status *count_scalars(onnx_decoder *d, const pb_field *f, scalar_kind kind, const char *field_name,
                                size_t *count)
{
    if (f->wire == scalar_wire(kind)) {
        *count += 1;
        return NULL;
    }
    FG_TRY(expect_wire(d, f, WIRE_LEN, field_name));
    if (kind == SCALAR_VARINT) {
        size_t n = 0;
        for (size_t i = 0; i < f->len; i++)
            n += !(f->data[i] & 0x80);
        if (f->len && (f->data[f->len - 1] & 0x80))
            return corrupt(d, f->at, "packed field '%s' ends inside a varint", field_name);
        *count += n;
    } else {
        size_t width = kind == SCALAR_FIXED32 ? 4 : 8;
        if (f->len % width)
            return corrupt(d, f->at, "packed field '%s' is %zu bytes, not a multiple of %zu", field_name, f->len,
                           width);
        *count += f->len / width;
    }
    return NULL;
}

/* Stores the elements of one occurrence at out[*index...], each as a raw
 * 64-bit value passed to store(). */
typedef void (*scalar_store)(void *out, size_t index, uint64_t raw);

static fg_status *read_scalars(onnx_decoder *d, const pb_field *f, scalar_kind kind, const char *field_name,
                               scalar_store store, void *out, size_t *index, size_t capacity)
{
    if (f->wire == scalar_wire(kind)) {
        if (*index >= capacity)
            return corrupt(d, f->at, "field '%s' has more elements than counted", field_name);
        store(out, (*index)++, f->value);
        return NULL;
    }
    pb_cursor c = {f->data, f->data + f->len, NULL};
    while (c.p < c.end) {
        uint64_t raw = 0;
        if (kind == SCALAR_VARINT) {
            FG_TRY(read_varint(d, &c, &raw));
        } else if (kind == SCALAR_FIXED32) {
            uint32_t v;
            memcpy(&v, c.p, 4);
            raw = v;
            c.p += 4;
        } else {
            memcpy(&raw, c.p, 8);
            c.p += 8;
        }
        if (*index >= capacity)
            return corrupt(d, f->at, "field '%s' has more elements than counted", field_name);
        store(out, (*index)++, raw);
    }
    return NULL;
}

static void store_int64(void *out, size_t i, uint64_t raw) { ((int64_t *)out)[i] = (int64_t)raw; }
static void store_float_bits(void *out, size_t i, uint64_t raw)
{
    uint32_t bits = (uint32_t)raw;
    memcpy((float *)out + i, &bits, 4);
}

static char *dup_bytes(const pb_field *f) { return fg_strndup((const char *)f->data, f->len); }

/* Replaces *slot with a copy of the field's bytes. */
static fg_status *set_string(onnx_decoder *d, const pb_field *f, const char *field_name, char **slot)
{
    FG_TRY(expect_wire(d, f, WIRE_LEN, field_name));
    char *s = dup_bytes(f);
    if (!s)
        return out_of_memory(d);
    free(*slot);
    *slot = s;
    return NULL;
}

/* ------------------------------------------------------------ tensors */

static int dtype_supported(int64_t code)
{
    return code >= FG_FLOAT32 && code <= FG_UINT64 && code != FG_STRING;
}

static const char *onnx_dtype_label(int64_t code)
{
    switch (code) {
    case 8: return "string";
    case 14: return "complex64";
    case 15: return "complex128";
    case 16: return "bfloat16";
    case 17: case 18: case 19: case 20: return "float8";
    case 21: return "uint4";
    case 22: return "int4";
    default: return "unknown";
    }
}

/* TensorProto field numbers */
enum {
    TENSOR_DIMS = 1, TENSOR_DATA_TYPE = 2, TENSOR_SEGMENT = 3, TENSOR_FLOAT_DATA = 4, TENSOR_INT32_DATA = 5,
    TENSOR_STRING_DATA = 6, TENSOR_INT64_DATA = 7, TENSOR_NAME = 8, TENSOR_RAW_DATA = 9, TENSOR_DOUBLE_DATA = 10,
    TENSOR_UINT64_DATA = 11, TENSOR_EXTERNAL_DATA = 13, TENSOR_DATA_LOCATION = 14
};

typedef struct typed_store {
    uint8_t *out;
    size_t elem_size;
    int is_bool;
} typed_store;

/* Stores the low bytes of a raw value as one element (little-endian host). */
static void store_typed(void *out, size_t i, uint64_t raw)
{
    const typed_store *store = out;
    if (store->is_bool)
        raw = raw != 0;
    memcpy(store->out + i * store->elem_size, &raw, store->elem_size);
}

static fg_status *decode_external_entries(onnx_decoder *d, const uint8_t *p, const uint8_t *end, ir_tensor *t,
                                          size_t nbytes)
{
    char *location = NULL;
    int64_t offset = 0, length = -1;
    fg_status *status = NULL;
    pb_cursor c = {p, end, tensor_fields};
    pb_field f;
    int has;
    while (!status && !(status = next_field(d, &c, &f, &has)) && has) {
        if (f.number != TENSOR_EXTERNAL_DATA)
            continue;
        if ((status = expect_wire(d, &f, WIRE_LEN, "external_data")))
            break;
        char *key = NULL, *value = NULL;
        pb_cursor entry = {f.data, f.data + f.len, entry_fields};
        pb_field e;
        int has_entry;
        while (!status && !(status = next_field(d, &entry, &e, &has_entry)) && has_entry) {
            if (e.number == 1)
                status = set_string(d, &e, "key", &key);
            else if (e.number == 2)
                status = set_string(d, &e, "value", &value);
        }
        if (!status && key && value) {
            if (strcmp(key, "location") == 0) {
                free(location);
                location = value;
                value = NULL;
            } else if (strcmp(key, "offset") == 0 || strcmp(key, "length") == 0) {
                char *stop = NULL;
                long long parsed = strtoll(value, &stop, 10);
                if (!value[0] || *stop || parsed < 0)
                    status = corrupt(d, f.at, "external data %s '%s' is not a non-negative integer", key, value);
                else if (key[0] == 'o')
                    offset = parsed;
                else
                    length = parsed;
            }
        }
        free(key);
        free(value);
    }
    if (!status && !location)
        status = corrupt(d, p, "tensor '%s' says its data is external but gives no location", t->name);
    if (!status) {
        const void *data = NULL;
        status = onnx_map_external(d, t->name, location, offset, length, nbytes, &data);
        if (!status) {
            t->data = data;
            t->nbytes = nbytes;
        }
    }
    free(location);
    return status;
}

fg_status *onnx_decode_tensor(onnx_decoder *d, const uint8_t *p, const uint8_t *end, ir_tensor *t)
{
    int64_t dims[FG_MAX_RANK];
    size_t n_dims = 0;
    int64_t data_type = 0, data_location = 0;
    const uint8_t *raw = NULL;
    size_t raw_len = 0;
    int has_raw = 0;
    size_t typed_counts[12] = {0}; /* by field number */
    size_t string_count = 0;

    /* pass 1: scalars, dims, and element counts */
    pb_cursor c = {p, end, tensor_fields};
    pb_field f;
    int has;
    for (;;) {
        FG_TRY(next_field(d, &c, &f, &has));
        if (!has)
            break;
        switch (f.number) {
        case TENSOR_DIMS: {
            size_t before = 0, count = 0;
            FG_TRY(count_scalars(d, &f, SCALAR_VARINT, "dims", &count));
            before = n_dims;
            if (before + count > FG_MAX_RANK)
                return unsupported(d, "tensor has %zu dimensions; facegraph supports at most %d", before + count,
                                   FG_MAX_RANK);
            size_t index = 0;
            int64_t parsed[FG_MAX_RANK];
            FG_TRY(read_scalars(d, &f, SCALAR_VARINT, "dims", store_int64, parsed, &index, count));
            memcpy(dims + before, parsed, count * sizeof *dims);
            n_dims += count;
            break;
        }
        case TENSOR_DATA_TYPE:
            FG_TRY(expect_wire(d, &f, WIRE_VARINT, "data_type"));
            data_type = (int64_t)f.value;
            break;
        case TENSOR_SEGMENT:
            return unsupported(d, "segmented tensors (TensorProto.segment) are not supported");
        case TENSOR_FLOAT_DATA:
            FG_TRY(count_scalars(d, &f, SCALAR_FIXED32, "float_data", &typed_counts[f.number]));
            break;
        case TENSOR_INT32_DATA:
        case TENSOR_INT64_DATA:
        case TENSOR_UINT64_DATA:
            FG_TRY(count_scalars(d, &f, SCALAR_VARINT, "int_data", &typed_counts[f.number]));
            break;
        case TENSOR_DOUBLE_DATA:
            FG_TRY(count_scalars(d, &f, SCALAR_FIXED64, "double_data", &typed_counts[f.number]));
            break;
        case TENSOR_STRING_DATA:
            FG_TRY(expect_wire(d, &f, WIRE_LEN, "string_data"));
            string_count++;
            break;
        case TENSOR_NAME:
            FG_TRY(set_string(d, &f, "name", &t->name));
            break;
        case TENSOR_RAW_DATA:
            FG_TRY(expect_wire(d, &f, WIRE_LEN, "raw_data"));
            raw = f.data;
            raw_len = f.len;
            has_raw = 1;
            break;
        case TENSOR_EXTERNAL_DATA:
            FG_TRY(expect_wire(d, &f, WIRE_LEN, "external_data"));
            break;
        case TENSOR_DATA_LOCATION:
            FG_TRY(expect_wire(d, &f, WIRE_VARINT, "data_location"));
            data_location = (int64_t)f.value;
            break;
        default:
            break;
        }
    }
    if (!t->name) {
        t->name = fg_strdup("");
        if (!t->name)
            return out_of_memory(d);
    }
    (void)string_count;

    if (data_type == 0)
        return corrupt(d, p, "tensor '%s' has no data_type", t->name);
    if (!dtype_supported(data_type))
        return unsupported(d, "tensor '%s' has element type %s (%lld), which facegraph does not support", t->name,
                           onnx_dtype_label(data_type), (long long)data_type);
    t->dtype = (fg_dtype)data_type;
    t->rank = (int)n_dims;
    size_t elem_size = fg_dtype_size(t->dtype);
    uint64_t numel = 1;
    for (size_t i = 0; i < n_dims; i++) {
        if (dims[i] < 0)
            return corrupt(d, p, "tensor '%s' has a negative dimension %lld", t->name, (long long)dims[i]);
        t->dims[i] = dims[i];
        if (dims[i] && numel > (UINT64_MAX / 16) / (uint64_t)dims[i])
            return corrupt(d, p, "tensor '%s' has an absurd element count", t->name);
        numel *= (uint64_t)dims[i];
    }
    if (numel > SIZE_MAX / 16)
        return corrupt(d, p, "tensor '%s' has an absurd element count", t->name);
    size_t nbytes = (size_t)numel * elem_size;

    if (data_location == 1) {
        if (!d->model)
            return unsupported(d, "tensor '%s' refers to external data, which is not available here", t->name);
        return decode_external_entries(d, p, end, t, nbytes);
    }
    if (data_location != 0)
        return corrupt(d, p, "tensor '%s' has unknown data_location %lld", t->name, (long long)data_location);

    if (has_raw) {
        if (raw_len != nbytes)
            return corrupt(d, raw, "tensor '%s' (%s, %lld elements) needs %zu bytes but raw_data has %zu", t->name,
                           fg_dtype_name(t->dtype), (long long)numel, nbytes, raw_len);
        t->nbytes = nbytes;
        size_t elem = fg_dtype_size(t->dtype);
        int misaligned = elem > 1 && ((uintptr_t)raw % elem) != 0;
        if ((d->copy_raw || misaligned) && nbytes) {
            /* Kernels read weights as typed arrays, so raw_data that the
             * protobuf layout left misaligned is moved to an aligned buffer;
             * the mapped pages it came from are dropped, so the weights are
             * still held once. */
            t->owned = fg_aligned_alloc(nbytes);
            if (!t->owned)
                return out_of_memory(d);
            /* in slices, so the copy and the mapped pages never both hold
             * more than a slice of this tensor */
            const size_t slice = (size_t)8 << 20;
            for (size_t done = 0; done < nbytes; done += slice) {
                size_t n = nbytes - done < slice ? nbytes - done : slice;
                memcpy((char *)t->owned + done, raw + done, n);
                if (d->owns_mapping)
                    release_mapped_range(raw + done, n);
            }
            t->data = t->owned;
        } else {
            t->data = raw;
        }
        return NULL;
    }

    /* typed fields: which one carries this dtype */
    int field;
    scalar_kind kind;
    switch (t->dtype) {
    case FG_FLOAT32: field = TENSOR_FLOAT_DATA; kind = SCALAR_FIXED32; break;
    case FG_FLOAT64: field = TENSOR_DOUBLE_DATA; kind = SCALAR_FIXED64; break;
    case FG_INT64: field = TENSOR_INT64_DATA; kind = SCALAR_VARINT; break;
    case FG_UINT32: case FG_UINT64: field = TENSOR_UINT64_DATA; kind = SCALAR_VARINT; break;
    default: field = TENSOR_INT32_DATA; kind = SCALAR_VARINT; break;
    }
    size_t count = typed_counts[field];
    if (count != numel)
        return corrupt(d, p, "tensor '%s' (%s) has %lld elements by its dims but %zu values in its data", t->name,
                       fg_dtype_name(t->dtype), (long long)numel, count);
    t->nbytes = nbytes;
    if (!nbytes)
        return NULL;
    t->owned = fg_aligned_alloc(nbytes);
    if (!t->owned)
        return out_of_memory(d);
    t->data = t->owned;
    typed_store store = {t->owned, elem_size, t->dtype == FG_BOOL};
    size_t index = 0;
    c.p = p;
    c.end = end;
    for (;;) {
        FG_TRY(next_field(d, &c, &f, &has));
        if (!has)
            break;
        if ((int)f.number == field)
            FG_TRY(read_scalars(d, &f, kind, "data", store_typed, &store, &index, count));
    }
    return NULL;
}

/* ------------------------------------------------------------ value types */

typedef struct value_type {
    fg_dtype dtype;
    int rank; /* -1: no shape */
    int64_t dims[FG_MAX_RANK];
    char *dim_names[FG_MAX_RANK];
} value_type;

static void value_type_clear(value_type *vt)
{
    for (int i = 0; i < FG_MAX_RANK; i++) {
        free(vt->dim_names[i]);
        vt->dim_names[i] = NULL;
    }
    vt->dtype = FG_DTYPE_UNDEFINED;
    vt->rank = -1;
}

static fg_status *decode_dimension(onnx_decoder *d, const pb_field *outer, value_type *vt)
{
    pb_cursor c = {outer->data, outer->data + outer->len, dimension_fields};
    pb_field f;
    int has;
    int index = vt->rank;
    vt->dims[index] = -1;
    for (;;) {
        FG_TRY(next_field(d, &c, &f, &has));
        if (!has)
            break;
        if (f.number == 1) {
            FG_TRY(expect_wire(d, &f, WIRE_VARINT, "dim_value"));
            vt->dims[index] = (int64_t)f.value >= 0 ? (int64_t)f.value : -1;
        } else if (f.number == 2) {
            FG_TRY(set_string(d, &f, "dim_param", &vt->dim_names[index]));
        }
    }
    /* a known value wins over a symbolic name */
    if (vt->dims[index] >= 0 && vt->dim_names[index]) {
        free(vt->dim_names[index]);
        vt->dim_names[index] = NULL;
    }
    return NULL;
}

static fg_status *decode_shape(onnx_decoder *d, const pb_field *outer, value_type *vt)
{
    for (int i = 0; i < FG_MAX_RANK; i++) {
        free(vt->dim_names[i]);
        vt->dim_names[i] = NULL;
    }
    vt->rank = 0;
    pb_cursor c = {outer->data, outer->data + outer->len, shape_fields};
    pb_field f;
    int has;
    for (;;) {
        FG_TRY(next_field(d, &c, &f, &has));
        if (!has)
            break;
        if (f.number != 1)
            continue;
        FG_TRY(expect_wire(d, &f, WIRE_LEN, "dim"));
        if (vt->rank >= FG_MAX_RANK)
            return unsupported(d, "a tensor type has more than %d dimensions, which facegraph does not support",
                               FG_MAX_RANK);
        FG_TRY(decode_dimension(d, &f, vt));
        vt->rank++;
    }
    return NULL;
}

static fg_status *decode_type(onnx_decoder *d, const pb_field *outer, value_type *vt)
{
    pb_cursor c = {outer->data, outer->data + outer->len, type_fields};
    pb_field f;
    int has;
    for (;;) {
        FG_TRY(next_field(d, &c, &f, &has));
        if (!has)
            break;
        if (f.number != 1) /* sequence, map, optional, sparse: left undefined */
            continue;
        FG_TRY(expect_wire(d, &f, WIRE_LEN, "tensor_type"));
        pb_cursor tc = {f.data, f.data + f.len, tensor_type_fields};
        pb_field tf;
        int has_t;
        for (;;) {
            FG_TRY(next_field(d, &tc, &tf, &has_t));
            if (!has_t)
                break;
            if (tf.number == 1) {
                FG_TRY(expect_wire(d, &tf, WIRE_VARINT, "elem_type"));
                vt->dtype = tf.value <= FG_UINT64 ? (fg_dtype)tf.value : FG_DTYPE_UNDEFINED;
            } else if (tf.number == 2) {
                FG_TRY(expect_wire(d, &tf, WIRE_LEN, "shape"));
                FG_TRY(decode_shape(d, &tf, vt));
            }
        }
    }
    return NULL;
}

/* Applies a declared type to a value that has none yet. */
static void merge_value_type(ir_value *v, value_type *vt)
{
    if (v->dtype == FG_DTYPE_UNDEFINED)
        v->dtype = vt->dtype;
    if (v->rank < 0 && vt->rank >= 0) {
        v->rank = vt->rank;
        for (int i = 0; i < vt->rank; i++) {
            v->dims[i] = vt->dims[i];
            v->dim_names[i] = vt->dim_names[i];
            vt->dim_names[i] = NULL;
        }
    }
}

static fg_status *decode_value_info_inner(onnx_decoder *d, const pb_field *outer, ir_graph *g, int *id,
                                          char **name, value_type *vt)
{
    pb_cursor c = {outer->data, outer->data + outer->len, value_info_fields};
    pb_field f;
    int has;
    for (;;) {
        FG_TRY(next_field(d, &c, &f, &has));
        if (!has)
            break;
        if (f.number == 1) {
            FG_TRY(set_string(d, &f, "name", name));
        } else if (f.number == 2) {
            FG_TRY(expect_wire(d, &f, WIRE_LEN, "type"));
            value_type_clear(vt);
            FG_TRY(decode_type(d, &f, vt));
        }
    }
    if (!*name || !**name)
        return corrupt(d, outer->data, "a ValueInfoProto has no name");
    *id = ir_graph_intern(g, *name, strlen(*name));
    if (*id < 0)
        return out_of_memory(d);
    merge_value_type(&g->values[*id], vt);
    return NULL;
}

static fg_status *decode_value_info(onnx_decoder *d, const pb_field *outer, ir_graph *g, int *id)
{
    char *name = NULL;
    value_type vt;
    memset(&vt, 0, sizeof vt);
    vt.rank = -1;
    fg_status *status = decode_value_info_inner(d, outer, g, id, &name, &vt);
    free(name);
    value_type_clear(&vt);
    return status;
}

/* ------------------------------------------------------------ attributes, nodes, graphs */

static fg_status *decode_graph(onnx_decoder *d, const uint8_t *p, const uint8_t *end, ir_graph *parent,
                               ir_graph **out);

static int count_to_int(size_t count) { return count > (size_t)INT32_MAX ? -1 : (int)count; }

enum {
    ATTR_NAME = 1, ATTR_F = 2, ATTR_I = 3, ATTR_S = 4, ATTR_T = 5, ATTR_G = 6, ATTR_FLOATS = 7, ATTR_INTS = 8,
    ATTR_STRINGS = 9, ATTR_TENSORS = 10, ATTR_GRAPHS = 11, ATTR_TYPE = 20
};

static fg_status *decode_attribute(onnx_decoder *d, const uint8_t *p, const uint8_t *end, ir_graph *g,
                                   ir_attr *a)
{
    int64_t type = 0;
    int has_f = 0, has_i = 0, has_s = 0, has_t = 0, has_g = 0, has_tensors = 0, has_graphs = 0;
    pb_field s_field = {0}, t_field = {0}, g_field = {0};
    size_t n_floats = 0, n_ints = 0, n_strings = 0;
    pb_cursor c = {p, end, attribute_fields};
    pb_field f;
    int has;
    for (;;) {
        FG_TRY(next_field(d, &c, &f, &has));
        if (!has)
            break;
        switch (f.number) {
        case ATTR_NAME: FG_TRY(set_string(d, &f, "name", &a->name)); break;
        case ATTR_TYPE:
            FG_TRY(expect_wire(d, &f, WIRE_VARINT, "type"));
            type = (int64_t)f.value;
            break;
        case ATTR_F: {
            FG_TRY(expect_wire(d, &f, WIRE_FIXED32, "f"));
            uint32_t bits = (uint32_t)f.value;
            memcpy(&a->f, &bits, 4);
            has_f = 1;
            break;
        }
        case ATTR_I:
            FG_TRY(expect_wire(d, &f, WIRE_VARINT, "i"));
            a->i = (int64_t)f.value;
            has_i = 1;
            break;
        case ATTR_S: FG_TRY(expect_wire(d, &f, WIRE_LEN, "s")); s_field = f; has_s = 1; break;
        case ATTR_T: FG_TRY(expect_wire(d, &f, WIRE_LEN, "t")); t_field = f; has_t = 1; break;
        case ATTR_G: FG_TRY(expect_wire(d, &f, WIRE_LEN, "g")); g_field = f; has_g = 1; break;
        case ATTR_FLOATS: FG_TRY(count_scalars(d, &f, SCALAR_FIXED32, "floats", &n_floats)); break;
        case ATTR_INTS: FG_TRY(count_scalars(d, &f, SCALAR_VARINT, "ints", &n_ints)); break;
        case ATTR_STRINGS: FG_TRY(expect_wire(d, &f, WIRE_LEN, "strings")); n_strings++; break;
        case ATTR_TENSORS: has_tensors = 1; break;
        case ATTR_GRAPHS: has_graphs = 1; break;
        default: break;
        }
    }
    if (!a->name || !a->name[0])
        return corrupt(d, p, "an attribute has no name");
    where_push(d, "(%.60s)", a->name); /* popped by the caller */
    if (type == 0) { /* old files: the type follows from the field that is set */
        type = n_floats ? IR_ATTR_FLOATS : n_ints ? IR_ATTR_INTS : n_strings ? IR_ATTR_STRINGS
             : has_t ? IR_ATTR_TENSOR : has_g ? IR_ATTR_GRAPH : has_s ? IR_ATTR_STRING
             : has_i ? IR_ATTR_INT : has_f ? IR_ATTR_FLOAT : has_tensors ? 9 : has_graphs ? 10 : 0;
    }
    if (type < 0 || type > 14)
        return corrupt(d, p, "attribute '%s' has unknown type %lld", a->name, (long long)type);
    a->type = (ir_attr_type)type;

    size_t mark;
    switch (a->type) {
    case IR_ATTR_STRING:
        a->s = has_s ? dup_bytes(&s_field) : fg_strdup("");
        if (!a->s)
            return out_of_memory(d);
        break;
    case IR_ATTR_TENSOR:
        if (!has_t)
            return corrupt(d, p, "attribute '%s' has type TENSOR but no tensor", a->name);
        a->t = fg_xcalloc(1, sizeof *a->t);
        if (!a->t)
            return out_of_memory(d);
        mark = where_push(d, "%s", "t");
        FG_TRY(onnx_decode_tensor(d, t_field.data, t_field.data + t_field.len, a->t));
        where_pop(d, mark);
        break;
    case IR_ATTR_GRAPH:
        if (!has_g)
            return corrupt(d, p, "attribute '%s' has type GRAPH but no graph", a->name);
        mark = where_push(d, "%s", "g");
        FG_TRY(decode_graph(d, g_field.data, g_field.data + g_field.len, g, &a->g));
        where_pop(d, mark);
        break;
    case IR_ATTR_FLOATS:
    case IR_ATTR_INTS: {
        int is_floats = a->type == IR_ATTR_FLOATS;
        size_t n = is_floats ? n_floats : n_ints;
        if (count_to_int(n) < 0)
            return corrupt(d, p, "attribute '%s' has an absurd element count", a->name);
        void *values = fg_xcalloc(n ? n : 1, is_floats ? sizeof(float) : sizeof(int64_t));
        if (!values)
            return out_of_memory(d);
        if (is_floats)
            a->floats = values;
        else
            a->ints = values;
        size_t index = 0;
        c.p = p;
        c.end = end;
        for (;;) {
            FG_TRY(next_field(d, &c, &f, &has));
            if (!has)
                break;
            if (is_floats && f.number == ATTR_FLOATS)
                FG_TRY(read_scalars(d, &f, SCALAR_FIXED32, "floats", store_float_bits, values, &index, n));
            else if (!is_floats && f.number == ATTR_INTS)
                FG_TRY(read_scalars(d, &f, SCALAR_VARINT, "ints", store_int64, values, &index, n));
        }
        a->n = (int)n;
        break;
    }
    case IR_ATTR_STRINGS: {
        if (count_to_int(n_strings) < 0)
            return corrupt(d, p, "attribute '%s' has an absurd element count", a->name);
        a->strings = fg_xcalloc(n_strings ? n_strings : 1, sizeof *a->strings);
        if (!a->strings)
            return out_of_memory(d);
        c.p = p;
        c.end = end;
        for (;;) {
            FG_TRY(next_field(d, &c, &f, &has));
            if (!has)
                break;
            if (f.number == ATTR_STRINGS) {
                a->strings[a->n] = dup_bytes(&f);
                if (!a->strings[a->n])
                    return out_of_memory(d);
                a->n++;
            }
        }
        break;
    }
    default:
        break; /* FLOAT / INT already stored; other kinds are kept by type only */
    }
    return NULL;
}

enum { NODE_INPUT = 1, NODE_OUTPUT = 2, NODE_NAME = 3, NODE_OP_TYPE = 4, NODE_ATTRIBUTE = 5, NODE_DOMAIN = 7 };

static fg_status *decode_node(onnx_decoder *d, const uint8_t *p, const uint8_t *end, ir_graph *g, int index)
{
    ir_node *n = &g->nodes[index];
    size_t n_inputs = 0, n_outputs = 0, n_attrs = 0;
    pb_cursor c = {p, end, node_fields};
    pb_field f;
    int has;
    for (;;) {
        FG_TRY(next_field(d, &c, &f, &has));
        if (!has)
            break;
        switch (f.number) {
        case NODE_INPUT: FG_TRY(expect_wire(d, &f, WIRE_LEN, "input")); n_inputs++; break;
        case NODE_OUTPUT: FG_TRY(expect_wire(d, &f, WIRE_LEN, "output")); n_outputs++; break;
        case NODE_ATTRIBUTE: FG_TRY(expect_wire(d, &f, WIRE_LEN, "attribute")); n_attrs++; break;
        case NODE_NAME: FG_TRY(set_string(d, &f, "name", &n->name)); break;
        case NODE_OP_TYPE: FG_TRY(set_string(d, &f, "op_type", &n->op_type)); break;
        case NODE_DOMAIN: FG_TRY(set_string(d, &f, "domain", &n->domain)); break;
        default: break;
        }
    }
    if (!n->op_type || !n->op_type[0])
        return corrupt(d, p, "a node has no op_type");
    where_push(d, "(%.60s)", n->op_type); /* popped by the caller */
    if (!n->name && !(n->name = fg_strdup("")))
        return out_of_memory(d);
    if (!n->domain || strcmp(n->domain, "ai.onnx") == 0) {
        free(n->domain);
        if (!(n->domain = fg_strdup("")))
            return out_of_memory(d);
    }
    n->inputs = fg_xcalloc(n_inputs ? n_inputs : 1, sizeof *n->inputs);
    n->outputs = fg_xcalloc(n_outputs ? n_outputs : 1, sizeof *n->outputs);
    n->attrs = fg_xcalloc(n_attrs ? n_attrs : 1, sizeof *n->attrs);
    if (!n->inputs || !n->outputs || !n->attrs)
        return out_of_memory(d);
    n->n_attrs = (int)n_attrs; /* calloc'd, so ir_graph_free can release a partial list */
    int attrs_done = 0;

    c.p = p;
    c.end = end;
    for (;;) {
        FG_TRY(next_field(d, &c, &f, &has));
        if (!has)
            break;
        if (f.number == NODE_INPUT || f.number == NODE_OUTPUT) {
            int id = -1;
            if (f.len) {
                id = ir_graph_intern(g, (const char *)f.data, f.len);
                if (id < 0)
                    return out_of_memory(d);
            }
            if (f.number == NODE_INPUT) {
                n->inputs[n->n_inputs++] = id;
            } else {
                if (id >= 0) {
                    if (g->values[id].producer >= 0 && g->values[id].producer != index)
                        return corrupt(d, f.at, "value '%s' is produced by both node %d and node %d",
                                       g->values[id].name, g->values[id].producer, index);
                    g->values[id].producer = index;
                }
                n->outputs[n->n_outputs++] = id;
            }
        } else if (f.number == NODE_ATTRIBUTE) {
            int attr_index = attrs_done++;
            size_t mark = where_push(d, "attribute[%d]", attr_index);
            FG_TRY(decode_attribute(d, f.data, f.data + f.len, g, &n->attrs[attr_index]));
            where_pop(d, mark);
        }
    }
    return NULL;
}

enum {
    GRAPH_NODE = 1, GRAPH_NAME = 2, GRAPH_INITIALIZER = 5, GRAPH_INPUT = 11, GRAPH_OUTPUT = 12,
    GRAPH_VALUE_INFO = 13, GRAPH_SPARSE_INITIALIZER = 15
};

static fg_status *decode_graph_fields(onnx_decoder *d, const uint8_t *p, const uint8_t *end, ir_graph *g)
{
    size_t n_nodes = 0, n_inputs = 0, n_outputs = 0;
    pb_cursor c = {p, end, graph_fields};
    pb_field f;
    int has;
    for (;;) {
        FG_TRY(next_field(d, &c, &f, &has));
        if (!has)
            break;
        switch (f.number) {
        case GRAPH_NODE: FG_TRY(expect_wire(d, &f, WIRE_LEN, "node")); n_nodes++; break;
        case GRAPH_INPUT: FG_TRY(expect_wire(d, &f, WIRE_LEN, "input")); n_inputs++; break;
        case GRAPH_OUTPUT: FG_TRY(expect_wire(d, &f, WIRE_LEN, "output")); n_outputs++; break;
        case GRAPH_INITIALIZER: FG_TRY(expect_wire(d, &f, WIRE_LEN, "initializer")); break;
        case GRAPH_VALUE_INFO: FG_TRY(expect_wire(d, &f, WIRE_LEN, "value_info")); break;
        case GRAPH_NAME: FG_TRY(set_string(d, &f, "name", &g->name)); break;
        case GRAPH_SPARSE_INITIALIZER:
            return unsupported(d, "sparse initializers are not supported; convert them to dense tensors");
        default: break;
        }
    }
    if (!g->name && !(g->name = fg_strdup("")))
        return out_of_memory(d);
    if (count_to_int(n_nodes) < 0)
        return corrupt(d, p, "absurd node count");
    g->nodes = fg_xcalloc(n_nodes ? n_nodes : 1, sizeof *g->nodes);
    g->inputs = fg_xcalloc(n_inputs ? n_inputs : 1, sizeof *g->inputs);
    g->outputs = fg_xcalloc(n_outputs ? n_outputs : 1, sizeof *g->outputs);
    if (!g->nodes || !g->inputs || !g->outputs)
        return out_of_memory(d);
    g->n_nodes = (int)n_nodes; /* calloc'd entries free cleanly */

    /* inputs first (so their ids come first), then initializers, nodes,
     * outputs, value_info */
    static const uint32_t order[] = {GRAPH_INPUT, GRAPH_INITIALIZER, GRAPH_NODE, GRAPH_OUTPUT, GRAPH_VALUE_INFO};
    for (size_t pass = 0; pass < sizeof order / sizeof order[0]; pass++) {
        int index = 0;
        c.p = p;
        c.end = end;
        for (;;) {
            FG_TRY(next_field(d, &c, &f, &has));
            if (!has)
                break;
            if (f.number != order[pass])
                continue;
            size_t mark;
            int id;
            switch (f.number) {
            case GRAPH_INPUT:
                mark = where_push(d, "input[%d]", index);
                FG_TRY(decode_value_info(d, &f, g, &id));
                g->inputs[g->n_inputs++] = id;
                break;
            case GRAPH_OUTPUT:
                mark = where_push(d, "output[%d]", index);
                FG_TRY(decode_value_info(d, &f, g, &id));
                g->outputs[g->n_outputs++] = id;
                break;
            case GRAPH_VALUE_INFO:
                mark = where_push(d, "value_info[%d]", index);
                FG_TRY(decode_value_info(d, &f, g, &id));
                break;
            case GRAPH_NODE:
                mark = where_push(d, "node[%d]", index);
                FG_TRY(decode_node(d, f.data, f.data + f.len, g, index));
                break;
            default: { /* GRAPH_INITIALIZER */
                mark = where_push(d, "initializer[%d]", index);
                ir_tensor *t = fg_xcalloc(1, sizeof *t);
                if (!t)
                    return out_of_memory(d);
                fg_status *status = onnx_decode_tensor(d, f.data, f.data + f.len, t);
                if (!status && !t->name[0])
                    status = corrupt(d, f.data, "an initializer has no name");
                if (!status) {
                    id = ir_graph_intern(g, t->name, strlen(t->name));
                    if (id < 0)
                        status = out_of_memory(d);
                    else if (g->values[id].initializer)
                        status = corrupt(d, f.at, "two initializers are named '%s'", t->name);
                }
                if (status) {
                    ir_tensor_clear(t);
                    free(t);
                    return status;
                }
                ir_value *v = &g->values[id];
                v->initializer = t;
                if (v->dtype == FG_DTYPE_UNDEFINED)
                    v->dtype = t->dtype;
                if (v->rank < 0) {
                    v->rank = t->rank;
                    memcpy(v->dims, t->dims, sizeof v->dims);
                }
                break;
            }
            }
            where_pop(d, mark);
            index++;
        }
    }

    /* graph inputs are the inputs that are not initializers */
    int kept = 0;
    for (int i = 0; i < g->n_inputs; i++) {
        int id = g->inputs[i];
        if (g->values[id].initializer)
            continue;
        int duplicate = 0;
        for (int j = 0; j < kept; j++)
            duplicate |= g->inputs[j] == id;
        if (!duplicate)
            g->inputs[kept++] = id;
    }
    g->n_inputs = kept;
    return NULL;
}

static fg_status *decode_graph(onnx_decoder *d, const uint8_t *p, const uint8_t *end, ir_graph *parent,
                               ir_graph **out)
{
    *out = NULL;
    if (d->graph_depth >= MAX_SUBGRAPH_DEPTH)
        return unsupported(d, "subgraphs are nested more than %d deep", MAX_SUBGRAPH_DEPTH);
    ir_graph *g = fg_xcalloc(1, sizeof *g);
    if (!g)
        return out_of_memory(d);
    g->parent = parent;
    d->graph_depth++;
    fg_status *status = decode_graph_fields(d, p, end, g);
    d->graph_depth--;
    if (status) {
        ir_graph_free(g);
        return status;
    }
    *out = g;
    return NULL;
}

/* Marks values of subgraphs that come from an enclosing graph. */
static void resolve_outer_values(ir_graph *g)
{
    for (int n = 0; n < g->n_nodes; n++) {
        ir_node *node = &g->nodes[n];
        for (int a = 0; a < node->n_attrs; a++) {
            ir_graph *sub = node->attrs[a].type == IR_ATTR_GRAPH ? node->attrs[a].g : NULL;
            if (!sub)
                continue;
            for (int v = 0; v < sub->n_values; v++) {
                ir_value *value = &sub->values[v];
                if (value->producer >= 0 || value->initializer)
                    continue;
                int is_input = 0;
                for (int i = 0; i < sub->n_inputs; i++)
                    is_input |= sub->inputs[i] == v;
                if (is_input)
                    continue;
                for (ir_graph *up = g; up; up = up->parent)
                    if (ir_graph_find_value(up, value->name) >= 0) {
                        value->outer = 1;
                        break;
                    }
            }
            resolve_outer_values(sub);
        }
    }
}

static int graph_uses_default_domain(const ir_graph *g)
{
    for (int n = 0; n < g->n_nodes; n++) {
        if (!g->nodes[n].domain[0])
            return 1;
        for (int a = 0; a < g->nodes[n].n_attrs; a++)
            if (g->nodes[n].attrs[a].type == IR_ATTR_GRAPH && g->nodes[n].attrs[a].g &&
                graph_uses_default_domain(g->nodes[n].attrs[a].g))
                return 1;
    }
    return 0;
}

enum { MODEL_IR_VERSION = 1, MODEL_PRODUCER_NAME = 2, MODEL_PRODUCER_VERSION = 3, MODEL_GRAPH = 7, MODEL_OPSET = 8 };

fg_status *onnx_decode_model(onnx_decoder *d, ir_model *m)
{
    const uint8_t *p = d->base, *end = d->base + d->size;
    pb_field graph_field = {0};
    int has_graph = 0, has_ir_version = 0;
    size_t n_opsets = 0;
    pb_cursor c = {p, end, model_fields};
    pb_field f;
    int has;
    for (;;) {
        FG_TRY(next_field(d, &c, &f, &has));
        if (!has)
            break;
        switch (f.number) {
        case MODEL_IR_VERSION:
            FG_TRY(expect_wire(d, &f, WIRE_VARINT, "ir_version"));
            m->ir_version = (int64_t)f.value;
            has_ir_version = 1;
            break;
        case MODEL_PRODUCER_NAME: FG_TRY(set_string(d, &f, "producer_name", &m->producer_name)); break;
        case MODEL_PRODUCER_VERSION: FG_TRY(set_string(d, &f, "producer_version", &m->producer_version)); break;
        case MODEL_GRAPH:
            FG_TRY(expect_wire(d, &f, WIRE_LEN, "graph"));
            graph_field = f;
            has_graph = 1;
            break;
        case MODEL_OPSET: FG_TRY(expect_wire(d, &f, WIRE_LEN, "opset_import")); n_opsets++; break;
        default: break;
        }
    }
    if (!m->producer_name && !(m->producer_name = fg_strdup("")))
        return out_of_memory(d);
    if (!m->producer_version && !(m->producer_version = fg_strdup("")))
        return out_of_memory(d);
    if (!has_ir_version || m->ir_version <= 0)
        return corrupt(d, p, "the file has no ir_version, so it is not an ONNX model");
    if (!has_graph)
        return corrupt(d, p, "the model has no graph");
    if (m->ir_version < 3)
        return fg_error(FG_ERR_UNSUPPORTED,
                        "%s: ONNX IR version %lld is too old (facegraph reads IR 3 and newer); convert the model "
                        "with onnx.version_converter or re-export it",
                        d->label, (long long)m->ir_version);

    m->opsets = fg_xcalloc(n_opsets ? n_opsets : 1, sizeof *m->opsets);
    if (!m->opsets)
        return out_of_memory(d);
    c.p = p;
    c.end = end;
    for (;;) {
        FG_TRY(next_field(d, &c, &f, &has));
        if (!has)
            break;
        if (f.number != MODEL_OPSET)
            continue;
        size_t mark = where_push(d, "opset_import[%d]", m->n_opsets);
        ir_opset *op = &m->opsets[m->n_opsets++];
        pb_cursor oc = {f.data, f.data + f.len, opset_fields};
        pb_field of;
        int has_o;
        for (;;) {
            FG_TRY(next_field(d, &oc, &of, &has_o));
            if (!has_o)
                break;
            if (of.number == 1) {
                FG_TRY(set_string(d, &of, "domain", &op->domain));
            } else if (of.number == 2) {
                FG_TRY(expect_wire(d, &of, WIRE_VARINT, "version"));
                op->version = (int64_t)of.value;
            }
        }
        if (!op->domain && !(op->domain = fg_strdup("")))
            return out_of_memory(d);
        if (!op->domain[0] || strcmp(op->domain, "ai.onnx") == 0)
            m->opset = op->version;
        where_pop(d, mark);
    }

    size_t mark = where_push(d, "%s", "graph");
    FG_TRY(decode_graph(d, graph_field.data, graph_field.data + graph_field.len, NULL, &m->graph));
    where_pop(d, mark);
    resolve_outer_values(m->graph);
    if (m->opset <= 0 && graph_uses_default_domain(m->graph))
        return corrupt(d, p, "the model uses standard ONNX operators but declares no opset for them (opset_import)");
    return NULL;
}
