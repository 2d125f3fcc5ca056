/* A graph cut at its If / Loop nodes into a chain of segments: static
 * pieces (sub-graphs of consecutive ordinary nodes, each planned per
 * signature with plan_for_graph like any graph) and the control nodes
 * between them, whose decision (branch, next iteration) is taken on the
 * host by a runner (src/runtime/segments.c). Backends that need every shape
 * known when planning (the CUDA provider, CUDA graphs) run each piece as a
 * static plan.
 *
 * A piece graph shares the source graph's value ids: its value table is a
 * copy of the source's (names, dims and initializers shared by pointer,
 * producers remapped to the piece's nodes, no value marked outer), so ids
 * read from one graph index the other. Its inputs are the values its nodes
 * read that come from outside it (graph inputs, enclosing-scope values,
 * outputs of earlier pieces or control nodes); initializers stay constants.
 * Nodes that only compute shapes or constants (Shape, Constant, and nodes
 * fed only by those and initializers) are repeated in every piece that
 * reads them, so a later piece still folds them as the whole-graph plan
 * does (a Reshape's target shape stays a constant). Its outputs are the
 * values later segments or the graph's outputs read. */
#ifndef FACEGRAPH_PLAN_SEGMENTS_H
#define FACEGRAPH_PLAN_SEGMENTS_H

#include "plan/plan.h"

struct segment_chain;

typedef struct segment {
    const ir_node *control;     /* If / Loop node; NULL for a static piece */
    /* static piece */
    ir_graph *graph;            /* the piece as a graph (parent = the source graph) */
    int n_inputs;
    int *inputs;                /* = graph->inputs: source value ids read from outside */
    int n_outputs;
    int *outputs;               /* = graph->outputs: source value ids handed on */
    /* control node: the chains of its subgraphs (If: then, else; Loop: body) */
    int n_sub;
    struct segment_chain *sub[2];
} segment;

typedef struct segment_chain {
    const ir_graph *source;     /* the graph that was cut */
    int n_segments;
    segment *segments;          /* in execution order */
    int n_pieces, n_control;    /* of this chain (not nested ones) */
} segment_chain;

/* True when the graph's own nodes include an If or a Loop. */
int segments_graph_has_control(const ir_graph *graph);

/* Cuts graph (and, recursively, the subgraphs of its control nodes). */
fg_status *segments_split(const ir_graph *graph, segment_chain **out);
void segments_free(segment_chain *chain);

#endif
