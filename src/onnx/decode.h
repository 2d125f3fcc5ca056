/* Internal to src/onnx: the protobuf decoder state shared by reader.c (wire
 * format, ONNX messages) and model.c (files, maps, public entry points). */
#ifndef FACEGRAPH_ONNX_DECODE_H
#define FACEGRAPH_ONNX_DECODE_H

#include "onnx/ir.h"

typedef struct onnx_decoder {
    const char *label;        /* file name used in messages */
    const char *kind;         /* "ONNX model" or "TensorProto" */
    const uint8_t *base;      /* start of the buffer being decoded */
    size_t size;
    char where[640];          /* path of the message being decoded, e.g. graph.node[3] */
    size_t where_len;
    ir_model *model;          /* receives external-data maps; NULL for ir_tensor_parse */
    char *model_dir;          /* directory for external data; NULL when unknown */
    int copy_raw;             /* 1: raw_data is copied (ir_tensor_parse) */
    int owns_mapping;         /* 1: base is facegraph's own read-only file map (pages may be dropped) */
    int graph_depth;
    /* external data files mapped so far (index into model->maps) */
    int n_external;
    char **external_paths;
    int *external_map_index;
} onnx_decoder;

/* Decodes a ModelProto spanning the whole decoder buffer into model. */
fg_status *onnx_decode_model(onnx_decoder *d, ir_model *model);
/* Decodes a TensorProto spanning the whole decoder buffer. */
fg_status *onnx_decode_tensor(onnx_decoder *d, const uint8_t *p, const uint8_t *end, ir_tensor *tensor);

/* Maps an external data file (relative to d->model_dir) and returns a pointer
 * to bytes [offset, offset + length); length < 0 means "to the end". */
fg_status *onnx_map_external(onnx_decoder *d, const char *tensor_name, const char *location, int64_t offset,
                             int64_t length, size_t expected_bytes, const void **data);

void onnx_decoder_release(onnx_decoder *d);

void ir_graph_free(ir_graph *graph);
void ir_tensor_clear(ir_tensor *tensor);
/* Interns name in graph's value table; returns the id or -1 on out of memory. */
int ir_graph_intern(ir_graph *graph, const char *name, size_t name_len);

#endif
