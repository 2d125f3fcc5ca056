/* The contract between an op family (src/ops/<family>.c) and the planner.
 *
 * An op is a shape rule plus a CPU kernel. The planner calls, per node:
 *   check   at load time, with only attributes (optional)
 *   infer   at plan time with input dtypes/shapes (and the data of inputs
 *           whose value is constant), again at run time for nodes whose
 *           shapes depend on data
 *   prepare once per plan, after shapes are final (optional)
 *   run     per inference (also at plan time to fold constants)
 *   release when the plan is dropped (optional)
 * Kernels never allocate during run: they use call->scratch (declared via
 * scratch_bytes in infer or prepare) and the output buffers they are given.
 */
#ifndef FACEGRAPH_OPS_OP_H
#define FACEGRAPH_OPS_OP_H

#include "onnx/ir.h"

/* Activation fused into a producer (Conv, ConvTranspose, Gemm, MatMul, ...)
 * by the planner; applied to each output element after the op's own math. */
typedef enum op_act_kind {
    OP_ACT_NONE = 0,
    OP_ACT_RELU,
    OP_ACT_LEAKY_RELU, /* alpha */
    OP_ACT_CLIP,       /* min = alpha, max = beta */
    OP_ACT_SIGMOID,
    OP_ACT_HARD_SIGMOID, /* alpha, beta */
    OP_ACT_HARD_SWISH,
    OP_ACT_TANH,
    OP_ACT_SILU        /* x * sigmoid(x) (Mul(x, Sigmoid(x))) */
} op_act_kind;

typedef struct op_activation {
    op_act_kind kind;
    float alpha, beta;
} op_activation;

/* Applies an activation in place to n floats. */
void op_activation_apply(const op_activation *act, float *data, int64_t n);
float op_activation_scalar(const op_activation *act, float x);

typedef struct op_call {
    const ir_node *node;
    int64_t opset;       /* default-domain opset of the model */
    int n_in, n_out;
    fg_tensor *in;       /* an omitted optional input has dtype UNDEFINED and data NULL */
    fg_tensor *out;      /* infer fills dtype/rank/dims; run gets data */
    int threads;         /* CPU threads the kernel may use */
    int out_bounded;     /* set by infer: 0, or 1 + the axis whose length depends on data, the
                            same axis and length for every output (TopK's values and indices);
                            dims are then a capacity, run lays data out at capacity (zeros past
                            the true length) and writes the true dims */
    int out_is_input;    /* set by infer: output 0 is input 0's bytes (a Pad of zeros, a Transpose
                            that moves only axes of size 1): the planner makes it a view of
                            input 0, as for OP_VIEW ops, and run is not called (a step with
                            run-time shapes still runs) */
    size_t scratch_bytes;/* set by infer or prepare: workspace needed by run */
    void *scratch;       /* run: scratch_bytes bytes, 64-byte aligned */
    void *state;         /* set by prepare, passed to run, freed by release */
    op_activation act;   /* fused activation (only for ops with OP_FUSES_ACTIVATION) */
} op_call;

enum op_flags {
    OP_FUSES_ACTIVATION = 1u << 0, /* run applies call->act to its output */
    OP_VIEW = 1u << 1,             /* output 0 is input 0's bytes with a new shape
                                      (Reshape, Flatten, Squeeze, Unsqueeze, Identity,
                                      Dropout): the planner aliases, run is not called */
    OP_DATA_DEPENDENT = 1u << 2,   /* output shape depends on input values (NonZero, NMS) */
    OP_SHAPE_ONLY = 1u << 3,       /* output depends only on input shapes (Shape, Size): run reads no
                                      input data, so the planner folds it to a constant */
    OP_CONTROL_FLOW = 1u << 4      /* If, Loop: subgraphs run by the backend, not by run() */
};

typedef struct op_def {
    const char *op_type;
    fg_status *(*check)(const ir_node *node, int64_t opset); /* optional */
    fg_status *(*infer)(op_call *call);
    fg_status *(*prepare)(op_call *call);                    /* optional */
    fg_status *(*run)(op_call *call);
    void (*release)(void *state);                            /* optional */
    unsigned flags;
} op_def;

/* True for ops of the element-wise family (unary, binary, compare, Where, Cast). */
int op_is_elementwise(const op_def *op);

/* Finds the op for (domain, op_type); domain "" and "ai.onnx" are the same. */
const op_def *op_find(const char *domain, const char *op_type);
/* Calls fn for every registered op (for listing). */
void op_for_each(void (*fn)(const op_def *op, void *ctx), void *ctx);

/* The status infer returns when it needs the data of input `index` and the
 * planner does not have it yet (a non-constant shape input). Not an error:
 * the planner defers the node's shape to run time. Never freed. */
fg_status *op_need_value(void);
#define OP_REQUIRE_VALUE(call, index)                                            \
    do {                                                                          \
        if ((index) >= (call)->n_in || (call)->in[(index)].data == NULL)        \
            return op_need_value();                                               \
    } while (0)

/* An error naming the node: "node 'conv_1' (Conv, opset 11): <message>". */
fg_status *op_error(const op_call *call, fg_code code, const char *fmt, ...) FG_PRINTF(3, 4);
fg_status *op_node_error(const ir_node *node, int64_t opset, fg_code code, const char *fmt, ...) FG_PRINTF(4, 5);

/* True when input i is present (not omitted). */
static inline int op_has_input(const op_call *call, int i)
{
    return i < call->n_in && call->in[i].dtype != FG_DTYPE_UNDEFINED;
}

/* Normalises a possibly negative axis into [0, rank); error if out of range. */
fg_status *op_axis(const op_call *call, int64_t axis, int rank, int *out);

/* Multidirectional (numpy) broadcasting of n input shapes into out (rank, dims). */
fg_status *op_broadcast_shape(const op_call *call, int n, const fg_tensor *const *inputs, int *rank,
                              int64_t *dims);
/* Strides (in elements) to read `t` broadcast to (rank, dims): 0 on broadcast axes. */
void op_broadcast_strides(const fg_tensor *t, int rank, const int64_t *dims, int64_t *strides);

/* Reads input i (any integer dtype) as int64 values into dst (n at most);
 * returns the element count. Requires the data to be present. */
int64_t op_read_ints(const fg_tensor *t, int64_t *dst, int64_t max);

/* Families register here (src/ops/registry.c). Each array ends with a
 * zeroed entry. */
extern const op_def op_family_elementwise[];
extern const op_def op_family_tensor[];
extern const op_def op_family_conv[];
extern const op_def op_family_pool[];
extern const op_def op_family_norm[];
extern const op_def op_family_matmul[];
extern const op_def op_family_resize[];
extern const op_def op_family_reduce[];
extern const op_def op_family_detection[];
extern const op_def op_family_control[];
/* Ops of domain "facegraph" that the planner makes (FusedElementwise, FusedDepthwisePointwise,
 * ChannelsLastSlices). */
extern const op_def op_family_facegraph[];

#endif
