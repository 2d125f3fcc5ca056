/* The in-memory form of an ONNX model: graph, values, nodes, attributes.
 *
 * Weights are never copied: an initializer stored in raw_data points into the
 * model file's read-only memory map (or into a mapped external-data file).
 * Typed-field initializers (float_data, int64_data, ...) are decoded into
 * owned buffers. */
#ifndef FACEGRAPH_ONNX_IR_H
#define FACEGRAPH_ONNX_IR_H

#include "base/base.h"

/* ONNX AttributeProto.AttributeType codes. */
typedef enum ir_attr_type {
    IR_ATTR_UNDEFINED = 0,
    IR_ATTR_FLOAT = 1,
    IR_ATTR_INT = 2,
    IR_ATTR_STRING = 3,
    IR_ATTR_TENSOR = 4,
    IR_ATTR_GRAPH = 5,
    IR_ATTR_FLOATS = 6,
    IR_ATTR_INTS = 7,
    IR_ATTR_STRINGS = 8
} ir_attr_type;

typedef struct ir_tensor {
    char *name;
    fg_dtype dtype;
    int rank;
    int64_t dims[FG_MAX_RANK];
    const void *data; /* numel * dtype size bytes, read-only */
    size_t nbytes;
    void *owned;      /* non-NULL when data was decoded into a heap buffer */
} ir_tensor;

struct ir_graph;

typedef struct ir_attr {
    char *name;
    ir_attr_type type;
    float f;
    int64_t i;
    char *s;              /* NUL-terminated copy */
    int n;                /* element count of floats / ints / strings */
    float *floats;
    int64_t *ints;
    char **strings;
    ir_tensor *t;
    struct ir_graph *g;
} ir_attr;

typedef struct ir_node {
    char *name;       /* may be "" */
    char *op_type;
    char *domain;     /* "" for the default ONNX domain */
    int n_inputs;
    int *inputs;      /* value ids; -1 for an omitted optional input */
    int n_outputs;
    int *outputs;     /* value ids; -1 for an omitted optional output */
    int n_attrs;
    ir_attr *attrs;
} ir_node;

typedef struct ir_value {
    char *name;
    fg_dtype dtype;          /* FG_DTYPE_UNDEFINED when not declared */
    int rank;                /* -1 when unknown */
    int64_t dims[FG_MAX_RANK];   /* -1 for a dynamic dimension */
    char *dim_names[FG_MAX_RANK]; /* symbolic names of dynamic dims, or NULL */
    ir_tensor *initializer;  /* constant value, or NULL */
    int producer;            /* index of the node that outputs it, -1 if none */
    int outer;               /* 1: defined in an enclosing graph (subgraphs) */
} ir_value;

typedef struct ir_graph {
    char *name;
    int n_values;
    ir_value *values;
    int n_nodes;
    ir_node *nodes;     /* in topological order (as stored in the file) */
    int n_inputs;
    int *inputs;        /* value ids of real inputs (initializers excluded) */
    int n_outputs;
    int *outputs;
    struct ir_graph *parent; /* enclosing graph for If/Loop bodies */
    struct ir_name_index *name_index; /* private to src/onnx: name -> value id (may be NULL) */
} ir_graph;

typedef struct ir_opset {
    char *domain;
    int64_t version;
} ir_opset;

typedef struct ir_model {
    char *path;
    int64_t ir_version;
    char *producer_name;
    char *producer_version;
    int n_opsets;
    ir_opset *opsets;
    int64_t opset;          /* default-domain ("" or "ai.onnx") opset */
    ir_graph *graph;
    char sha256[65];
    size_t file_size;
    /* memory maps owned by the model (file + external data files) */
    int n_maps;
    void **maps;
    size_t *map_sizes;
} ir_model;

/* Loads an ONNX file. Errors name the file and where decoding failed.
 * External data is resolved relative to the model's directory. */
fg_status *ir_model_load(const char *path, ir_model **model);
/* Same from a buffer the caller keeps alive for the model's lifetime. */
fg_status *ir_model_load_buffer(const void *data, size_t size, const char *name, ir_model **model);
void ir_model_free(ir_model *model);

/* Decodes one serialized TensorProto (e.g. an ONNX test's input_0.pb) into
 * an owned tensor; free with ir_tensor_free. */
fg_status *ir_tensor_parse(const void *data, size_t size, ir_tensor **tensor);
void ir_tensor_free(ir_tensor *tensor);

/* Attribute access (NULL / default when absent). */
const ir_attr *ir_attr_find(const ir_node *node, const char *name);
int64_t ir_attr_int(const ir_node *node, const char *name, int64_t dflt);
float ir_attr_float(const ir_node *node, const char *name, float dflt);
const char *ir_attr_string(const ir_node *node, const char *name, const char *dflt);
/* Returns the element count (0 when absent) and points *values at them. */
int ir_attr_ints(const ir_node *node, const char *name, const int64_t **values);
int ir_attr_floats(const ir_node *node, const char *name, const float **values);

/* Value id for a name in this graph (not parents), or -1. */
int ir_graph_find_value(const ir_graph *graph, const char *name);

#endif
