/* Cutting a graph at its If / Loop nodes into static pieces and control
 * nodes. See segments.h. */
#include "plan/segments.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_control(const ir_node *node)
{
    const op_def *op = op_find(node->domain, node->op_type);
    return op && (op->flags & OP_CONTROL_FLOW);
}

int segments_graph_has_control(const ir_graph *graph)
{
    for (int k = 0; graph && k < graph->n_nodes; k++)
        if (is_control(&graph->nodes[k]))
            return 1;
    return 0;
}

static void free_piece_graph(ir_graph *g)
{
    if (!g)
        return;
    free(g->name);
    free(g->values);
    free(g->nodes);
    free(g->inputs);
    free(g->outputs);
    free(g);
}

void segments_free(segment_chain *chain)
{
    if (!chain)
        return;
    for (int i = 0; i < chain->n_segments; i++) {
        segment *s = &chain->segments[i];
        free_piece_graph(s->graph); /* s->inputs / s->outputs are the graph's arrays */
        for (int j = 0; j < s->n_sub; j++)
            segments_free(s->sub[j]);
    }
    free(chain->segments);
    free(chain);
}

/* Nodes whose outputs the planner always folds to constants once the input
 * shapes are known: shape-only ops, and nodes fed only by initializers and
 * such nodes (Constant has no inputs). */
static void mark_foldable(const ir_graph *g, char *foldable)
{
    for (int k = 0; k < g->n_nodes; k++) {
        const ir_node *node = &g->nodes[k];
        const op_def *op = op_find(node->domain, node->op_type);
        foldable[k] = 0;
        if (!op || (op->flags & (OP_CONTROL_FLOW | OP_DATA_DEPENDENT)))
            continue;
        if (op->flags & OP_SHAPE_ONLY) {
            foldable[k] = 1;
            continue;
        }
        int all_const = 1;
        for (int i = 0; i < node->n_inputs && all_const; i++) {
            int v = node->inputs[i];
            if (v < 0 || g->values[v].initializer)
                continue;
            int p = g->values[v].producer;
            all_const = p >= 0 && p < k && foldable[p];
        }
        foldable[k] = (char)all_const;
    }
}

/* Values of `g` that the subgraphs of `node` (at any depth) read from
 * enclosing scopes, marked in needed[] when g defines them. */
static void mark_outer_reads(const ir_graph *g, const ir_node *node, char *needed)
{
    for (int a = 0; a < node->n_attrs; a++) {
        const ir_graph *sub = node->attrs[a].type == IR_ATTR_GRAPH ? node->attrs[a].g : NULL;
        if (!sub)
            continue;
        for (int v = 0; v < sub->n_values; v++)
            if (sub->values[v].outer) {
                int id = ir_graph_find_value(g, sub->values[v].name);
                if (id >= 0)
                    needed[id] = 1;
            }
        for (int k = 0; k < sub->n_nodes; k++)
            mark_outer_reads(g, &sub->nodes[k], needed);
    }
}

typedef struct piece_builder {
    const ir_graph *g;
    const char *foldable;
    int first, end;     /* the piece's own nodes: [first, end) */
    char *pulled;       /* per source node: repeated in this piece */
    char *is_input;     /* per source value */
    int *inputs;
    int n_inputs;
    int *stack;
} piece_builder;

/* Value v is read inside the piece: produced by its own nodes, repeated
 * here (a foldable node of an earlier piece), or an input. */
static void piece_reads(piece_builder *b, int v)
{
    const ir_graph *g = b->g;
    int top = 0;
    b->stack[top++] = v;
    while (top) {
        int id = b->stack[--top];
        if (id < 0 || g->values[id].initializer)
            continue;
        int p = g->values[id].producer;
        if (p >= b->first && p < b->end)
            continue;
        if (p >= 0 && p < b->first && b->foldable[p]) {
            if (b->pulled[p])
                continue;
            b->pulled[p] = 1;
            for (int i = 0; i < g->nodes[p].n_inputs; i++)
                b->stack[top++] = g->nodes[p].inputs[i];
            continue;
        }
        if (!b->is_input[id]) {
            b->is_input[id] = 1;
            b->inputs[b->n_inputs++] = id;
        }
    }
}

/* The piece's graph: its nodes (repeated foldable ones first, in source
 * order), the source's value table with producers remapped, inputs. */
static fg_status *build_piece(piece_builder *b, int index, segment *s)
{
    const ir_graph *g = b->g;
    ir_graph *pg = calloc(1, sizeof *pg);
    if (!pg)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory cutting the graph at its control flow");
    s->graph = pg;
    int n_nodes = b->end - b->first;
    for (int k = 0; k < b->first; k++)
        n_nodes += b->pulled[k];
    char name[256];
    snprintf(name, sizeof name, "%s (piece %d)", g->name ? g->name : "graph", index);
    pg->name = fg_strdup(name);
    pg->values = malloc(sizeof *pg->values * (size_t)(g->n_values + 1));
    pg->nodes = malloc(sizeof *pg->nodes * (size_t)(n_nodes + 1));
    pg->inputs = malloc(sizeof(int) * (size_t)(b->n_inputs + 1));
    if (!pg->name || !pg->values || !pg->nodes || !pg->inputs)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory cutting the graph at its control flow");
    memcpy(pg->values, g->values, sizeof *pg->values * (size_t)g->n_values);
    pg->n_values = g->n_values;
    for (int v = 0; v < g->n_values; v++) {
        pg->values[v].outer = 0;
        pg->values[v].producer = -1;
    }
    for (int k = 0; k < b->end; k++) {
        if (k < b->first && !b->pulled[k])
            continue;
        int n = pg->n_nodes++;
        pg->nodes[n] = g->nodes[k];
        for (int j = 0; j < g->nodes[k].n_outputs; j++)
            if (g->nodes[k].outputs[j] >= 0)
                pg->values[g->nodes[k].outputs[j]].producer = n;
    }
    memcpy(pg->inputs, b->inputs, sizeof(int) * (size_t)b->n_inputs);
    pg->n_inputs = b->n_inputs;
    pg->parent = (ir_graph *)g; /* inputs are typed by the runner, like a subgraph's */
    s->inputs = pg->inputs;
    s->n_inputs = pg->n_inputs;
    return NULL;
}

fg_status *segments_split(const ir_graph *g, segment_chain **out)
{
    *out = NULL;
    segment_chain *chain = calloc(1, sizeof *chain);
    if (!chain)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory cutting the graph at its control flow");
    chain->source = g;
    chain->segments = calloc((size_t)(2 * g->n_nodes + 1), sizeof *chain->segments);
    int *first = calloc((size_t)(2 * g->n_nodes + 1), sizeof *first); /* per segment: first node */
    char *foldable = calloc((size_t)g->n_nodes + 1, 1);
    char *needed = calloc((size_t)g->n_values + 1, 1);
    char *drop = calloc((size_t)(2 * g->n_nodes + 1), 1);
    piece_builder b = {g, foldable, 0, 0, NULL, NULL, NULL, 0, NULL};
    b.pulled = calloc((size_t)g->n_nodes + 1, 1);
    b.is_input = calloc((size_t)g->n_values + 1, 1);
    b.inputs = malloc(sizeof(int) * (size_t)(g->n_values + 1));
    int stack_cap = 1;
    for (int k = 0; k < g->n_nodes; k++)
        stack_cap += g->nodes[k].n_inputs;
    b.stack = malloc(sizeof(int) * (size_t)stack_cap);
    fg_status *st = NULL;
    if (!chain->segments || !first || !foldable || !needed || !drop || !b.pulled || !b.is_input || !b.inputs ||
        !b.stack) {
        st = fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory cutting the graph at its control flow");
        goto done;
    }
    mark_foldable(g, foldable);
    /* segments in node order: runs of ordinary nodes, and control nodes */
    for (int k = 0; k < g->n_nodes && !st;) {
        segment *s = &chain->segments[chain->n_segments];
        first[chain->n_segments] = k;
        if (is_control(&g->nodes[k])) {
            const ir_node *node = &g->nodes[k];
            s->control = node;
            for (int a = 0; a < node->n_attrs && !st; a++) {
                if (node->attrs[a].type != IR_ATTR_GRAPH || !node->attrs[a].g)
                    continue;
                if (s->n_sub == 2) {
                    st = fg_error(FG_ERR_UNSUPPORTED, "node '%s' (%s) has more than two subgraphs", node->name,
                                  node->op_type);
                    break;
                }
                st = segments_split(node->attrs[a].g, &s->sub[s->n_sub]);
                if (!st)
                    s->n_sub++;
            }
            /* the runner finds If's branches by name: keep then, else order */
            if (!st && !strcmp(node->op_type, "If") && s->n_sub == 2) {
                const ir_attr *then_attr = ir_attr_find(node, "then_branch");
                if (then_attr && s->sub[0]->source != then_attr->g) {
                    segment_chain *t = s->sub[0];
                    s->sub[0] = s->sub[1];
                    s->sub[1] = t;
                }
            }
            chain->n_segments++;
            k++;
            continue;
        }
        int end = k;
        while (end < g->n_nodes && !is_control(&g->nodes[end]))
            end++;
        memset(b.pulled, 0, (size_t)g->n_nodes);
        memset(b.is_input, 0, (size_t)g->n_values);
        b.n_inputs = 0;
        b.first = k;
        b.end = end;
        for (int n = k; n < end; n++)
            for (int i = 0; i < g->nodes[n].n_inputs; i++)
                piece_reads(&b, g->nodes[n].inputs[i]);
        st = build_piece(&b, chain->n_segments, s);
        chain->n_segments++;
        k = end;
    }
    if (st)
        goto done;
    /* outputs, last segment first: what later segments and the graph's outputs read */
    for (int i = 0; i < g->n_outputs; i++)
        needed[g->outputs[i]] = 1;
    for (int i = chain->n_segments - 1; i >= 0 && !st; i--) {
        segment *s = &chain->segments[i];
        if (s->control) {
            int used = 0;
            for (int j = 0; j < s->control->n_outputs; j++)
                used |= s->control->outputs[j] >= 0 && needed[s->control->outputs[j]];
            if (!used) { /* dead, as the whole-graph plan removes it */
                drop[i] = 1;
                continue;
            }
            for (int j = 0; j < s->control->n_inputs; j++)
                if (s->control->inputs[j] >= 0)
                    needed[s->control->inputs[j]] = 1;
            mark_outer_reads(g, s->control, needed);
            continue;
        }
        ir_graph *pg = s->graph;
        int end = i + 1 < chain->n_segments ? first[i + 1] : g->n_nodes;
        pg->outputs = malloc(sizeof(int) * (size_t)(g->n_values + 1));
        if (!pg->outputs) {
            st = fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory cutting the graph at its control flow");
            break;
        }
        for (int k = first[i]; k < end; k++)
            for (int j = 0; j < g->nodes[k].n_outputs; j++) {
                int v = g->nodes[k].outputs[j];
                if (v >= 0 && needed[v])
                    pg->outputs[pg->n_outputs++] = v;
            }
        s->outputs = pg->outputs;
        s->n_outputs = pg->n_outputs;
        if (!pg->n_outputs) {
            drop[i] = 1;
            continue;
        }
        /* a float16 value handed to a later piece stays float32 (as inside one plan) */
        for (int j = 0; j < pg->n_outputs; j++) {
            int v = pg->outputs[j], graph_output = 0;
            for (int o = 0; o < g->n_outputs; o++)
                graph_output |= g->outputs[o] == v;
            if (!graph_output && pg->values[v].dtype == FG_FLOAT16)
                pg->values[v].dtype = FG_DTYPE_UNDEFINED;
        }
        for (int j = 0; j < s->n_inputs; j++)
            needed[s->inputs[j]] = 1;
    }
    if (st)
        goto done;
    int n = 0;
    for (int i = 0; i < chain->n_segments; i++) {
        segment *s = &chain->segments[i];
        if (drop[i]) {
            free_piece_graph(s->graph);
            for (int j = 0; j < s->n_sub; j++)
                segments_free(s->sub[j]);
            continue;
        }
        chain->segments[n++] = *s;
        if (s->control)
            chain->n_control++;
        else
            chain->n_pieces++;
    }
    chain->n_segments = n;
done:
    free(first);
    free(foldable);
    free(needed);
    free(drop);
    free(b.pulled);
    free(b.is_input);
    free(b.inputs);
    free(b.stack);
    if (st) {
        segments_free(chain);
        return st;
    }
    *out = chain;
    return NULL;
}
