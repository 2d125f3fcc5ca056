/* Loads an ONNX model with the facegraph reader and prints a JSON summary
 * (compared against the python onnx package by tests/onnx_reader_test.py).
 *
 *   test_onnx_reader MODEL.onnx          summary of the model
 *   test_onnx_reader --tensor FILE.pb    summary of one serialized TensorProto
 *   test_onnx_reader --buffer MODEL.onnx load through ir_model_load_buffer
 * Exits 1 with the error message on stderr when loading fails. */
#include "onnx/ir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_string(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

static void print_tensor(const ir_tensor *t)
{
    printf("{\"name\": ");
    print_string(t->name);
    printf(", \"dtype\": %d, \"dims\": [", (int)t->dtype);
    for (int i = 0; i < t->rank; i++)
        printf("%s%lld", i ? ", " : "", (long long)t->dims[i]);
    char digest[65];
    fg_sha256_hex(t->data, t->nbytes, digest);
    printf("], \"nbytes\": %zu, \"sha256\": \"%s\", \"owned\": %d}", t->nbytes, digest, t->owned != NULL);
}

static void print_value_ref(const ir_graph *g, int id)
{
    const ir_value *v = &g->values[id];
    printf("{\"name\": ");
    print_string(v->name);
    printf(", \"dtype\": %d, \"rank\": %d, \"dims\": [", (int)v->dtype, v->rank);
    for (int i = 0; i < v->rank; i++) {
        if (i)
            printf(", ");
        if (v->dims[i] >= 0)
            printf("%lld", (long long)v->dims[i]);
        else if (v->dim_names[i])
            print_string(v->dim_names[i]);
        else
            printf("null");
    }
    printf("]}");
}

static void print_graph(const ir_graph *g);

static void print_attr(const ir_attr *a)
{
    printf("{\"name\": ");
    print_string(a->name);
    printf(", \"type\": %d", (int)a->type);
    switch (a->type) {
    case IR_ATTR_FLOAT: printf(", \"f\": %.9g", a->f); break;
    case IR_ATTR_INT: printf(", \"i\": %lld", (long long)a->i); break;
    case IR_ATTR_STRING: printf(", \"s\": "); print_string(a->s); break;
    case IR_ATTR_TENSOR: printf(", \"t\": "); print_tensor(a->t); break;
    case IR_ATTR_GRAPH: printf(", \"g\": "); print_graph(a->g); break;
    case IR_ATTR_FLOATS:
        printf(", \"floats\": [");
        for (int i = 0; i < a->n; i++)
            printf("%s%.9g", i ? ", " : "", a->floats[i]);
        printf("]");
        break;
    case IR_ATTR_INTS:
        printf(", \"ints\": [");
        for (int i = 0; i < a->n; i++)
            printf("%s%lld", i ? ", " : "", (long long)a->ints[i]);
        printf("]");
        break;
    case IR_ATTR_STRINGS:
        printf(", \"strings\": [");
        for (int i = 0; i < a->n; i++) {
            printf("%s", i ? ", " : "");
            print_string(a->strings[i]);
        }
        printf("]");
        break;
    default: break;
    }
    printf("}");
}

static void print_graph(const ir_graph *g)
{
    printf("{\"name\": ");
    print_string(g->name);
    printf(", \"node_count\": %d, \"value_count\": %d, \"ops\": {", g->n_nodes, g->n_values);
    /* op histogram (first-seen order) */
    int printed = 0;
    for (int n = 0; n < g->n_nodes; n++) {
        int seen = 0;
        for (int m = 0; m < n && !seen; m++)
            seen = strcmp(g->nodes[m].op_type, g->nodes[n].op_type) == 0;
        if (seen)
            continue;
        int count = 0;
        for (int m = n; m < g->n_nodes; m++)
            count += strcmp(g->nodes[m].op_type, g->nodes[n].op_type) == 0;
        printf("%s", printed++ ? ", " : "");
        print_string(g->nodes[n].op_type);
        printf(": %d", count);
    }
    printf("}, \"inputs\": [");
    for (int i = 0; i < g->n_inputs; i++) {
        printf("%s", i ? ", " : "");
        print_value_ref(g, g->inputs[i]);
    }
    printf("], \"outputs\": [");
    for (int i = 0; i < g->n_outputs; i++) {
        printf("%s", i ? ", " : "");
        print_value_ref(g, g->outputs[i]);
    }
    int n_init = 0;
    size_t init_bytes = 0;
    for (int v = 0; v < g->n_values; v++)
        if (g->values[v].initializer) {
            n_init++;
            init_bytes += g->values[v].initializer->nbytes;
        }
    printf("], \"initializer_count\": %d, \"initializer_bytes\": %zu, \"initializers\": [", n_init, init_bytes);
    printed = 0;
    for (int v = 0; v < g->n_values; v++)
        if (g->values[v].initializer) {
            printf("%s", printed++ ? ", " : "");
            print_tensor(g->values[v].initializer);
        }
    printf("], \"outer\": [");
    printed = 0;
    for (int v = 0; v < g->n_values; v++)
        if (g->values[v].outer) {
            printf("%s", printed++ ? ", " : "");
            print_string(g->values[v].name);
        }
    /* consistency checks on the graph structure */
    int problems = 0;
    for (int n = 0; n < g->n_nodes; n++) {
        const ir_node *node = &g->nodes[n];
        for (int o = 0; o < node->n_outputs; o++)
            if (node->outputs[o] >= 0 && g->values[node->outputs[o]].producer != n)
                problems++;
        for (int i = 0; i < node->n_inputs; i++)
            if (node->inputs[i] >= g->n_values)
                problems++;
    }
    for (int v = 0; v < g->n_values; v++)
        if (ir_graph_find_value(g, g->values[v].name) != v)
            problems++;
    printf("], \"structure_problems\": %d, \"nodes\": [", problems);
    for (int n = 0; n < g->n_nodes; n++) {
        const ir_node *node = &g->nodes[n];
        printf("%s{\"op\": ", n ? ", " : "");
        print_string(node->op_type);
        printf(", \"domain\": ");
        print_string(node->domain);
        printf(", \"inputs\": [");
        for (int i = 0; i < node->n_inputs; i++) {
            printf("%s", i ? ", " : "");
            if (node->inputs[i] < 0)
                printf("\"\"");
            else
                print_string(g->values[node->inputs[i]].name);
        }
        printf("], \"outputs\": [");
        for (int i = 0; i < node->n_outputs; i++) {
            printf("%s", i ? ", " : "");
            if (node->outputs[i] < 0)
                printf("\"\"");
            else
                print_string(g->values[node->outputs[i]].name);
        }
        printf("], \"attrs\": [");
        for (int a = 0; a < node->n_attrs; a++) {
            printf("%s", a ? ", " : "");
            print_attr(&node->attrs[a]);
        }
        printf("]}");
    }
    printf("]}");
}

static int read_whole_file(const char *path, unsigned char **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t capacity = 1 << 16, used = 0;
    unsigned char *buf = malloc(capacity);
    for (;;) {
        if (!buf)
            break;
        if (used == capacity) {
            unsigned char *bigger = realloc(buf, capacity * 2);
            if (!bigger) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            capacity *= 2;
        }
        size_t got = fread(buf + used, 1, capacity - used, f);
        used += got;
        if (got == 0)
            break;
    }
    fclose(f);
    if (!buf)
        return -1;
    *data = buf;
    *size = used;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--tensor") == 0) {
        unsigned char *data;
        size_t size;
        if (read_whole_file(argv[2], &data, &size) != 0) {
            fprintf(stderr, "%s: cannot read\n", argv[2]);
            return 1;
        }
        ir_tensor *t;
        fg_status *status = ir_tensor_parse(data, size, &t);
        free(data);
        if (status) {
            fprintf(stderr, "error (code %d): %s\n", (int)fg_status_code(status), fg_status_message(status));
            fg_status_free(status);
            return 1;
        }
        print_tensor(t);
        printf("\n");
        ir_tensor_free(t);
        return 0;
    }
    int use_buffer = argc == 3 && strcmp(argv[1], "--buffer") == 0;
    if (argc != 2 && !use_buffer) {
        fprintf(stderr, "usage: %s [--buffer] MODEL.onnx | --tensor FILE.pb\n", argv[0]);
        return 2;
    }
    const char *path = argv[argc - 1];
    ir_model *model = NULL;
    fg_status *status;
    unsigned char *buffer = NULL;
    if (use_buffer) {
        size_t size;
        if (read_whole_file(path, &buffer, &size) != 0) {
            fprintf(stderr, "%s: cannot read\n", path);
            return 1;
        }
        status = ir_model_load_buffer(buffer, size, path, &model);
    } else {
        status = ir_model_load(path, &model);
    }
    if (status) {
        fprintf(stderr, "error (code %d): %s\n", (int)fg_status_code(status), fg_status_message(status));
        fg_status_free(status);
        free(buffer);
        return 1;
    }
    printf("{\"ir_version\": %lld, \"opset\": %lld, \"producer_name\": ", (long long)model->ir_version,
           (long long)model->opset);
    print_string(model->producer_name);
    printf(", \"producer_version\": ");
    print_string(model->producer_version);
    printf(", \"opsets\": {");
    for (int i = 0; i < model->n_opsets; i++) {
        printf("%s", i ? ", " : "");
        print_string(model->opsets[i].domain);
        printf(": %lld", (long long)model->opsets[i].version);
    }
    printf("}, \"sha256\": \"%s\", \"file_size\": %zu, \"n_maps\": %d, \"graph\": ", model->sha256,
           model->file_size, model->n_maps);
    print_graph(model->graph);
    printf("}\n");
    ir_model_free(model);
    free(buffer);
    return 0;
}
