/* Loading ONNX files (memory maps, external data, sha256), freeing the IR,
 * the value-name index, and attribute accessors. */
#include "onnx/decode.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------ name index */

struct ir_name_index {
    int capacity; /* power of two */
    int *slots;   /* value id or -1 */
};

static uint64_t hash_name(const char *name, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)name[i]) * 1099511628211ULL;
    return h;
}

static int index_lookup(const ir_graph *g, const char *name, size_t len, int *slot_out)
{
    const struct ir_name_index *index = g->name_index;
    int mask = index->capacity - 1;
    int slot = (int)(hash_name(name, len) & (uint64_t)mask);
    for (;;) {
        int id = index->slots[slot];
        if (id < 0) {
            if (slot_out)
                *slot_out = slot;
            return -1;
        }
        const char *candidate = g->values[id].name;
        if (strncmp(candidate, name, len) == 0 && candidate[len] == 0)
            return id;
        slot = (slot + 1) & mask;
    }
}

static int index_grow(ir_graph *g, int capacity)
{
    int *slots = malloc((size_t)capacity * sizeof *slots);
    if (!slots)
        return -1;
    for (int i = 0; i < capacity; i++)
        slots[i] = -1;
    struct ir_name_index *index = g->name_index;
    free(index->slots);
    index->slots = slots;
    index->capacity = capacity;
    for (int id = 0; id < g->n_values; id++) {
        int slot;
        const char *name = g->values[id].name;
        if (index_lookup(g, name, strlen(name), &slot) < 0)
            slots[slot] = id;
    }
    return 0;
}

int ir_graph_intern(ir_graph *g, const char *name, size_t name_len)
{
    name_len = strnlen(name, name_len);
    if (!g->name_index) {
        g->name_index = calloc(1, sizeof *g->name_index);
        if (!g->name_index || index_grow(g, 64) < 0)
            return -1;
    }
    int slot;
    int id = index_lookup(g, name, name_len, &slot);
    if (id >= 0)
        return id;
    if ((g->n_values + 1) * 2 > g->name_index->capacity) {
        if (g->name_index->capacity > INT32_MAX / 4 || index_grow(g, g->name_index->capacity * 2) < 0)
            return -1;
        index_lookup(g, name, name_len, &slot);
    }
    /* grow values by doubling; the capacity is implicit: 16, 32, 64, ... */
    int n = g->n_values;
    if (n == 0 || (n >= 16 && (n & (n - 1)) == 0)) {
        size_t capacity = n ? (size_t)n * 2 : 16;
        ir_value *values = realloc(g->values, capacity * sizeof *values);
        if (!values)
            return -1;
        g->values = values;
    }
    ir_value *v = &g->values[n];
    memset(v, 0, sizeof *v);
    v->name = fg_strndup(name, name_len);
    if (!v->name)
        return -1;
    v->rank = -1;
    v->producer = -1;
    g->n_values = n + 1;
    g->name_index->slots[slot] = n;
    return n;
}

int ir_graph_find_value(const ir_graph *graph, const char *name)
{
    if (!graph || !name)
        return -1;
    if (graph->name_index)
        return index_lookup(graph, name, strlen(name), NULL);
    for (int i = 0; i < graph->n_values; i++)
        if (strcmp(graph->values[i].name, name) == 0)
            return i;
    return -1;
}

/* ------------------------------------------------------------ freeing */

void ir_tensor_clear(ir_tensor *t)
{
    if (!t)
        return;
    free(t->name);
    fg_aligned_free(t->owned);
    memset(t, 0, sizeof *t);
}

void ir_tensor_free(ir_tensor *t)
{
    ir_tensor_clear(t);
    free(t);
}

static void attr_clear(ir_attr *a)
{
    free(a->name);
    free(a->s);
    free(a->floats);
    free(a->ints);
    if (a->strings)
        for (int i = 0; i < a->n; i++)
            free(a->strings[i]);
    free(a->strings);
    ir_tensor_free(a->t);
    ir_graph_free(a->g);
}

void ir_graph_free(ir_graph *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n_values; i++) {
        ir_value *v = &g->values[i];
        free(v->name);
        for (int d = 0; d < FG_MAX_RANK; d++)
            free(v->dim_names[d]);
        ir_tensor_free(v->initializer);
    }
    free(g->values);
    if (g->nodes)
        for (int i = 0; i < g->n_nodes; i++) {
            ir_node *n = &g->nodes[i];
            free(n->name);
            free(n->op_type);
            free(n->domain);
            free(n->inputs);
            free(n->outputs);
            if (n->attrs)
                for (int a = 0; a < n->n_attrs; a++)
                    attr_clear(&n->attrs[a]);
            free(n->attrs);
        }
    free(g->nodes);
    free(g->inputs);
    free(g->outputs);
    free(g->name);
    if (g->name_index)
        free(g->name_index->slots);
    free(g->name_index);
    free(g);
}

void ir_model_free(ir_model *m)
{
    if (!m)
        return;
    ir_graph_free(m->graph);
    for (int i = 0; i < m->n_opsets; i++)
        free(m->opsets[i].domain);
    free(m->opsets);
    free(m->producer_name);
    free(m->producer_version);
    free(m->path);
    for (int i = 0; i < m->n_maps; i++)
        if (m->maps[i] && m->map_sizes[i])
            munmap(m->maps[i], m->map_sizes[i]);
    free(m->maps);
    free(m->map_sizes);
    free(m);
}

void onnx_decoder_release(onnx_decoder *d)
{
    for (int i = 0; i < d->n_external; i++)
        free(d->external_paths[i]);
    free(d->external_paths);
    free(d->external_map_index);
    free(d->model_dir);
    d->external_paths = NULL;
    d->external_map_index = NULL;
    d->model_dir = NULL;
    d->n_external = 0;
}

/* ------------------------------------------------------------ files and maps */

static int model_add_map(ir_model *m, void *map, size_t size)
{
    void **maps = realloc(m->maps, (size_t)(m->n_maps + 1) * sizeof *maps);
    if (!maps)
        return -1;
    m->maps = maps;
    size_t *sizes = realloc(m->map_sizes, (size_t)(m->n_maps + 1) * sizeof *sizes);
    if (!sizes)
        return -1;
    m->map_sizes = sizes;
    m->maps[m->n_maps] = map;
    m->map_sizes[m->n_maps] = size;
    return m->n_maps++;
}

/* Opens and maps a whole file read-only. *map is NULL for an empty file. */
static fg_status *map_file(const char *path, const char *what, void **map, size_t *size)
{
    *map = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        if (err == ENOENT || err == ENOTDIR)
            return fg_error(FG_ERR_NOT_FOUND, "%s: no such file; check the %s path", path, what);
        return fg_error(FG_ERR_IO, "%s: cannot open the %s: %s", path, what, strerror(err));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        return fg_error(FG_ERR_IO, "%s: cannot read the %s's size: %s", path, what, strerror(err));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return fg_error(FG_ERR_IO, "%s: is a directory, not an %s file; pass the file's path", path, what);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return fg_error(FG_ERR_IO, "%s: is not a regular file; the %s must be a file on disk", path, what);
    }
    if (st.st_size == 0) {
        close(fd);
        return NULL;
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return fg_error(FG_ERR_IO, "%s: the %s is too large to map", path, what);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    close(fd);
    if (p == MAP_FAILED)
        return fg_error(err == ENOMEM ? FG_ERR_OUT_OF_MEMORY : FG_ERR_IO, "%s: cannot map the %s: %s", path, what,
                        strerror(err));
    *map = p;
    *size = (size_t)st.st_size;
    return NULL;
}

static int location_is_safe(const char *location)
{
    if (!location[0] || location[0] == '/')
        return 0;
    const char *p = location;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.')
            return 0;
        if (!slash)
            break;
        p = slash + 1;
    }
    return 1;
}

fg_status *onnx_map_external(onnx_decoder *d, const char *tensor_name, const char *location, int64_t offset,
                             int64_t length, size_t expected_bytes, const void **data)
{
    *data = NULL;
    if (!location_is_safe(location))
        return fg_error(FG_ERR_CORRUPT,
                        "%s: tensor '%s' keeps its data in '%s', which is outside the model's directory; "
                        "facegraph only reads external data next to the model",
                        d->label, tensor_name, location);
    int map_index = -1;
    for (int i = 0; i < d->n_external; i++)
        if (strcmp(d->external_paths[i], location) == 0)
            map_index = d->external_map_index[i];
    size_t dir_len = strlen(d->model_dir);
    char *path = malloc(dir_len + strlen(location) + 2);
    if (!path)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "%s: out of host memory", d->label);
    memcpy(path, d->model_dir, dir_len);
    path[dir_len] = '/';
    strcpy(path + dir_len + 1, location);
    if (map_index < 0) {
        void *map;
        size_t size;
        fg_status *status = map_file(path, "external data", &map, &size);
        if (status) {
            free(path);
            return fg_error_wrap(status, "%s: tensor '%s'", d->label, tensor_name);
        }
        char *saved = fg_strdup(location);
        char **paths = realloc(d->external_paths, (size_t)(d->n_external + 1) * sizeof *paths);
        if (paths)
            d->external_paths = paths;
        int *indices = realloc(d->external_map_index, (size_t)(d->n_external + 1) * sizeof *indices);
        if (indices)
            d->external_map_index = indices;
        map_index = saved && paths && indices ? model_add_map(d->model, map, size) : -1;
        if (map_index < 0) {
            free(saved);
            free(path);
            if (map)
                munmap(map, size);
            return fg_error(FG_ERR_OUT_OF_MEMORY, "%s: out of host memory", d->label);
        }
        d->external_paths[d->n_external] = saved;
        d->external_map_index[d->n_external] = map_index;
        d->n_external++;
    }
    size_t file_size = d->model->map_sizes[map_index];
    const uint8_t *base = d->model->maps[map_index];
    fg_status *status = NULL;
    if ((uint64_t)offset > file_size)
        status = fg_error(FG_ERR_CORRUPT,
                          "%s: tensor '%s' starts at byte %lld of '%s', which has only %zu bytes; the data file is "
                          "truncated — download it again",
                          d->label, tensor_name, (long long)offset, path, file_size);
    else {
        uint64_t available = file_size - (uint64_t)offset;
        uint64_t want = length < 0 ? available : (uint64_t)length;
        if (want > available)
            status = fg_error(FG_ERR_CORRUPT,
                              "%s: tensor '%s' needs bytes %lld..%llu of '%s', which has only %zu bytes; the data "
                              "file is truncated — download it again",
                              d->label, tensor_name, (long long)offset, (unsigned long long)(offset + want), path,
                              file_size);
        else if (want != expected_bytes)
            status = fg_error(FG_ERR_CORRUPT,
                              "%s: tensor '%s' needs %zu bytes by its shape but its external data in '%s' is %llu "
                              "bytes",
                              d->label, tensor_name, expected_bytes, path, (unsigned long long)want);
        else
            *data = base ? base + offset : NULL;
    }
    free(path);
    return status;
}

static char *directory_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return fg_strdup(".");
    if (slash == path)
        return fg_strdup("/");
    return fg_strndup(path, (size_t)(slash - path));
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash && slash[1] ? slash + 1 : path;
}

static fg_status *decode_into(ir_model *m, const void *data, size_t size, const char *name, int owns_mapping)
{
    onnx_decoder d;
    memset(&d, 0, sizeof d);
    d.label = name;
    d.kind = "ONNX model";
    d.base = data;
    d.size = size;
    d.model = m;
    d.owns_mapping = owns_mapping;
    d.model_dir = directory_of(m->path);
    if (!d.model_dir)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "%s: out of host memory", name);
    fg_status *status = onnx_decode_model(&d, m);
    onnx_decoder_release(&d);
    return status;
}

fg_status *ir_model_load(const char *path, ir_model **out)
{
    if (!out)
        return fg_error(FG_ERR_INVALID_ARGUMENT, "ir_model_load: model pointer is NULL");
    *out = NULL;
    if (!path || !path[0])
        return fg_error(FG_ERR_INVALID_ARGUMENT, "ir_model_load: no model path given");
    void *map;
    size_t size;
    FG_TRY(map_file(path, "ONNX model", &map, &size));
    if (!map)
        return fg_error(FG_ERR_CORRUPT, "%s: the file is empty (0 bytes), not an ONNX model — download it again",
                        path);
    ir_model *m = fg_xcalloc(1, sizeof *m);
    if (!m || !(m->path = fg_strdup(path)) || model_add_map(m, map, size) < 0) {
        if (m && m->n_maps == 0)
            munmap(map, size);
        ir_model_free(m);
        return fg_error(FG_ERR_OUT_OF_MEMORY, "%s: out of host memory", path);
    }
    madvise(map, size, MADV_SEQUENTIAL);
    fg_sha256_hex(map, size, m->sha256);
    madvise(map, size, MADV_NORMAL);
    m->file_size = size;
    fg_status *status = decode_into(m, map, size, base_name(path), 1);
    if (status) {
        ir_model_free(m);
        return status;
    }
    *out = m;
    return NULL;
}

fg_status *ir_model_load_buffer(const void *data, size_t size, const char *name, ir_model **out)
{
    if (!out)
        return fg_error(FG_ERR_INVALID_ARGUMENT, "ir_model_load_buffer: model pointer is NULL");
    *out = NULL;
    if (!name)
        name = "model.onnx";
    if (!data || size == 0)
        return fg_error(FG_ERR_CORRUPT, "%s: the buffer is empty, not an ONNX model", name);
    ir_model *m = fg_xcalloc(1, sizeof *m);
    if (!m || !(m->path = fg_strdup(name))) {
        ir_model_free(m);
        return fg_error(FG_ERR_OUT_OF_MEMORY, "%s: out of host memory", name);
    }
    fg_sha256_hex(data, size, m->sha256);
    m->file_size = size;
    fg_status *status = decode_into(m, data, size, base_name(name), 0);
    if (status) {
        ir_model_free(m);
        return status;
    }
    *out = m;
    return NULL;
}

fg_status *ir_tensor_parse(const void *data, size_t size, ir_tensor **out)
{
    if (!out)
        return fg_error(FG_ERR_INVALID_ARGUMENT, "ir_tensor_parse: tensor pointer is NULL");
    *out = NULL;
    if (!data && size)
        return fg_error(FG_ERR_INVALID_ARGUMENT, "ir_tensor_parse: no data");
    static const uint8_t empty[1];
    onnx_decoder d;
    memset(&d, 0, sizeof d);
    d.label = "tensor";
    d.kind = "TensorProto";
    d.base = data ? data : empty;
    d.size = size;
    d.copy_raw = 1;
    ir_tensor *t = fg_xcalloc(1, sizeof *t);
    if (!t)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory while decoding a tensor");
    fg_status *status = onnx_decode_tensor(&d, d.base, d.base + size, t);
    onnx_decoder_release(&d);
    if (status) {
        ir_tensor_free(t);
        return status;
    }
    *out = t;
    return NULL;
}

/* ------------------------------------------------------------ attributes */

const ir_attr *ir_attr_find(const ir_node *node, const char *name)
{
    if (!node || !name)
        return NULL;
    for (int i = 0; i < node->n_attrs; i++)
        if (node->attrs[i].name && strcmp(node->attrs[i].name, name) == 0)
            return &node->attrs[i];
    return NULL;
}

int64_t ir_attr_int(const ir_node *node, const char *name, int64_t dflt)
{
    const ir_attr *a = ir_attr_find(node, name);
    if (!a)
        return dflt;
    if (a->type == IR_ATTR_INT)
        return a->i;
    if (a->type == IR_ATTR_FLOAT)
        return (int64_t)a->f;
    return dflt;
}

float ir_attr_float(const ir_node *node, const char *name, float dflt)
{
    const ir_attr *a = ir_attr_find(node, name);
    if (!a)
        return dflt;
    if (a->type == IR_ATTR_FLOAT)
        return a->f;
    if (a->type == IR_ATTR_INT)
        return (float)a->i;
    return dflt;
}

const char *ir_attr_string(const ir_node *node, const char *name, const char *dflt)
{
    const ir_attr *a = ir_attr_find(node, name);
    return a && a->type == IR_ATTR_STRING && a->s ? a->s : dflt;
}

int ir_attr_ints(const ir_node *node, const char *name, const int64_t **values)
{
    const ir_attr *a = ir_attr_find(node, name);
    if (a && a->type == IR_ATTR_INTS) {
        if (values)
            *values = a->ints;
        return a->n;
    }
    if (values)
        *values = NULL;
    return 0;
}

int ir_attr_floats(const ir_node *node, const char *name, const float **values)
{
    const ir_attr *a = ir_attr_find(node, name);
    if (a && a->type == IR_ATTR_FLOATS) {
        if (values)
            *values = a->floats;
        return a->n;
    }
    if (values)
        *values = NULL;
    return 0;
}
