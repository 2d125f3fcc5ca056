/* A plan: the model made concrete for one input-shape signature.
 *
 * Every value gets a kind: a constant (initializer or folded), a caller
 * input, a slot in one arena (static shape, offset chosen by liveness), an
 * alias of another value's bytes (Reshape and friends), or dynamic (shape
 * known only at run time, downstream of data-dependent ops; its bytes live in
 * a grow-only buffer owned by the plan). Steps are the surviving nodes after
 * folding, dead-node removal and fusion, in execution order. A backend runs
 * the steps over the arena; the plan itself never runs anything but constant
 * folds. */
#ifndef FACEGRAPH_PLAN_H
#define FACEGRAPH_PLAN_H

#include "ops/op.h"

typedef enum plan_value_kind {
    PLAN_UNUSED = 0,
    PLAN_CONST,
    PLAN_INPUT,
    PLAN_ARENA,
    PLAN_ALIAS,
    PLAN_DYNAMIC
} plan_value_kind;

typedef struct plan_value {
    plan_value_kind kind;
    fg_tensor t;        /* dtype, rank, dims (for dynamic: latest run's); data for CONST */
    int64_t offset;     /* PLAN_ARENA: byte offset in the arena */
    size_t bytes;       /* bytes reserved (capacity for bounded outputs) */
    int alias_of;       /* PLAN_ALIAS: the value whose bytes it shares */
    int64_t alias_offset; /* PLAN_ALIAS: where in alias_of's bytes this value starts (a channel
                             slice of merged sibling convolutions; 0 for Reshape and friends) */
    int bounded;        /* the length of axis bound_axis depends on data: dims hold the
                           capacity, the data is laid out at capacity (zeros past the true
                           length), and count_of's producer reports the true length */
    int bound_axis;
    int count_of;       /* the data-dependent op's (NonZero, NMS, TopK with K from an input)
                           first output, whose run-time length applies */
    int64_t count;      /* run time, on count_of's value: its true length */
    int input_index;    /* PLAN_INPUT: index in the model's inputs */
    int first_step, last_step; /* liveness, in step indices */
    void *heap;         /* PLAN_DYNAMIC: grow-only buffer */
    size_t heap_bytes;
} plan_value;

struct plan;

/* A plan of an If branch or Loop body for one signature (cached per step). */
typedef struct plan_subplan {
    const ir_graph *graph;
    struct plan *plan;
    struct plan_subplan *next;
} plan_subplan;

typedef struct plan_step {
    const op_def *op;
    const ir_node *node;
    int n_in, n_out;
    int *in;            /* plan value ids, -1 for an omitted input */
    int *out;
    fg_tensor *in_t;    /* op_call views, refreshed per run */
    fg_tensor *out_t;
    op_call call;
    int dynamic;        /* shapes re-inferred at run time */
    int prepared;
    int control;        /* If / Loop: run by the backend through sub-plans; in[] holds the
                           node's inputs, then the enclosing values its subgraphs read */
    plan_subplan *subplans;
} plan_step;

typedef struct plan {
    const ir_model *model;
    const ir_graph *graph; /* the model's graph, or an If branch / Loop body */
    int n_values, cap_values;
    plan_value *values;
    int n_steps;
    plan_step *steps;
    int n_inputs;
    fg_tensor *signature; /* dtype/rank/dims of each model input */
    int n_outputs;
    int *outputs;         /* value ids of the model outputs */
    size_t arena_bytes;   /* values + shared scratch */
    size_t scratch_offset, scratch_bytes;
    void *arena;
    int has_dynamic;
    int threads;
    int branches;         /* a backend may run independent steps side by side: the arena never
                             shares bytes between them (layout_arena) */
    void *dynamic_scratch; /* scratch for dynamic steps (grow-only) */
    size_t dynamic_scratch_bytes;
    int n_owned, cap_owned;
    void **owned;         /* folded constants and rewritten weights */
    /* statistics for inspect / the graph matrix */
    int n_folded, n_fused_bn, n_fused_act, n_fused_residual, n_fused_norm, n_removed;
    int n_fused_scale;    /* Mul / Add / Sub by constants folded into a convolution (fold_into_conv) */
    int n_concats_in_place; /* Concat steps whose inputs are written in place (concat_in_place.c) */
    int n_merged_convs;   /* sibling convolutions merged into another (merge_sibling_convs) */
    int n_folded_pools;   /* AveragePools folded into the 1x1 convolution after them (fold_average_pools) */
    int n_merged_transposes; /* Transposes run as part of a ChannelsLastSlices step (merge_slice_transposes) */
    int float16_model;    /* the model had float16 weights (now float32 constants) */
} plan;

/* Makes the plan for one signature (inputs[i]: dtype, rank, dims; data is
 * not read). The arena is allocated here; running allocates nothing unless
 * the model has data-dependent shapes. branches: 1 when the backend may run
 * steps that do not depend on each other side by side (CUDA graphs with
 * parallel branches), so that the arena must not order them. */
fg_status *plan_for_signature(const ir_model *model, const fg_tensor *inputs, int n_inputs, int threads,
                              int branches, plan **out);
void plan_free(plan *p);

/* The same for a subgraph: inputs are the graph's inputs followed by the
 * values it reads from enclosing graphs, in plan_outer_values order. */
fg_status *plan_for_graph(const ir_model *model, const ir_graph *graph, const fg_tensor *inputs, int n_inputs,
                          int threads, int branches, plan **out);
/* Ids (in graph's value table) of the values a subgraph reads from enclosing
 * graphs, in id order; returns the count (at most max). */
int plan_outer_values(const ir_graph *graph, int *ids, int max);
/* An input against its declared dtype and shape (free dims match anything). */
fg_status *plan_check_input(const ir_value *v, const fg_tensor *t);
/* True when inputs have the dtypes and shapes this plan was made for. */
int plan_matches_signature(const plan *p, const fg_tensor *inputs, int n_inputs);
/* The cached sub-plan of step s for graph and these inputs' signature. */
fg_status *plan_subplan_for(plan *p, plan_step *s, const ir_graph *graph, const fg_tensor *inputs, int n_inputs,
                            plan **out);

/* The value whose bytes value id shares (itself unless a view). */
int plan_value_root(const plan *p, int id);
/* Byte offset of value id in its root's bytes (the alias offsets along the chain). */
int64_t plan_value_offset(const plan *p, int id);
/* Bytes to copy out for a model output: a bounded output's capacity, else its tensor's bytes. */
size_t plan_output_bytes(const plan *p, int id);
/* 1 when step s is a view (Reshape, a Pad of zeros, ...): its output shares
 * its input's bytes and no backend runs it. */
int plan_step_is_view(const plan *p, const plan_step *s);
/* Data pointer of a value in the current run (follows aliases; inputs
 * point at the caller's buffers bound by the backend). */
void *plan_value_data(const plan *p, int id);

/* In place: lays out a tensor stored at capacity `capacity` along `axis`
 * densely for its true dims (t->dims[axis] already holds the true length). */
void plan_compact_bounded(fg_tensor *t, int axis, int64_t capacity);

/* Multiply-accumulate-based FLOP estimate of a planned step. */
double plan_step_flops(const plan *p, const plan_step *s);

#endif
