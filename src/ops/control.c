/* Control flow: If and Loop. Their attributes are checked here; the planner
 * plans their subgraphs and the backend runs them (src/cpu/cpu_control.c). */
#include "ops/op.h"

static fg_status *need_graph(const ir_node *node, int64_t opset, const char *name)
{
    const ir_attr *a = ir_attr_find(node, name);
    if (!a || a->type != IR_ATTR_GRAPH || !a->g)
        return op_node_error(node, opset, FG_ERR_CORRUPT, "the '%s' subgraph attribute is missing", name);
    return NULL;
}

static fg_status *if_check(const ir_node *node, int64_t opset)
{
    FG_TRY(need_graph(node, opset, "then_branch"));
    return need_graph(node, opset, "else_branch");
}

static fg_status *loop_check(const ir_node *node, int64_t opset)
{
    FG_TRY(need_graph(node, opset, "body"));
    const ir_graph *body = ir_attr_find(node, "body")->g;
    int carried = node->n_inputs - 2;
    if (body->n_inputs != carried + 2 || body->n_outputs < carried + 1)
        return op_node_error(node, opset, FG_ERR_CORRUPT,
                             "the body takes %d inputs and gives %d outputs; a Loop with %d carried values needs "
                             "%d inputs and at least %d outputs",
                             body->n_inputs, body->n_outputs, carried, carried + 2, carried + 1);
    return NULL;
}

static fg_status *control_infer(op_call *call) { return op_need_value(); }

static fg_status *control_run(op_call *call)
{
    return op_error(call, FG_ERR_INTERNAL, "control flow must be run by the backend");
}

const op_def op_family_control[] = {
    {"If", if_check, control_infer, NULL, control_run, NULL, OP_CONTROL_FLOW},
    {"Loop", loop_check, control_infer, NULL, control_run, NULL, OP_CONTROL_FLOW},
    {0},
};
