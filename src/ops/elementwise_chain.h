/* FusedElementwise (domain "facegraph"): a chain of float32 element-wise ops
 * run as one step. The planner (src/plan/fuse_elementwise.c) builds it from
 * steps such as GELU's Div -> Erf -> Add -> Mul -> Mul; the CPU kernel
 * (src/ops/elementwise_chain.c) and the CUDA kernel
 * (src/cuda/kernels/elementwise_chain.cu) run it with the math of the ops it
 * replaces.
 *
 * The node: input 0 is the chain's input (it has the output's shape); inputs
 * 1.. are the other tensors the chain reads, each the output's shape or
 * broadcast to it along one contiguous block of axes. Attributes:
 *   "program" ints, EWC_INTS_PER_INSTRUCTION per instruction:
 *             op (an ew_op), operand (ewc_operand), input index, swapped,
 *             fused activation kind (op_act_kind), save (1: the value after
 *             this instruction is kept for later EWC_SAVED operands)
 *   "params"  floats, EWC_FLOATS_PER_INSTRUCTION per instruction:
 *             scalar operand, alpha, beta (LeakyRelu alpha, HardSigmoid
 *             alpha and beta, Clip min and max), activation alpha and beta
 * Each instruction computes value = op(value, operand), or op(operand,
 * value) when swapped, then applies its activation. One saved value lets a
 * chain start with the step that produces a tensor the chain reads twice
 * (a bias Add before GELU's Div and Mul(x, ...)). */
#ifndef FACEGRAPH_OPS_ELEMENTWISE_CHAIN_H
#define FACEGRAPH_OPS_ELEMENTWISE_CHAIN_H

#include "ops/elementwise_ops.h"

#define EWC_OP_TYPE "FusedElementwise"
#define EWC_DOMAIN "facegraph"
#define EWC_MAX_INSTRUCTIONS 16
#define EWC_MAX_INPUTS 9 /* the chain input and 8 other tensors */
#define EWC_INTS_PER_INSTRUCTION 6
#define EWC_FLOATS_PER_INSTRUCTION 5

typedef enum ewc_operand {
    EWC_UNARY = 0, /* no operand */
    EWC_SCALAR,    /* a constant held in the instruction */
    EWC_TENSOR,    /* a step input, read at (i / inner) % dim */
    EWC_SAVED      /* the value an earlier instruction saved */
} ewc_operand;

typedef struct ewc_instruction {
    int op;            /* ew_op */
    int operand;       /* ewc_operand */
    int input;         /* EWC_TENSOR: the step input it reads */
    int swapped;       /* 1: op(operand, value) */
    int save;          /* 1: keep the value after this instruction (EWC_SAVED) */
    float scalar;      /* EWC_SCALAR: the operand */
    float alpha, beta; /* op parameters */
    op_activation act; /* activation fused into the original step */
} ewc_instruction;

typedef struct ewc_program {
    int n_instructions;
    ewc_instruction code[EWC_MAX_INSTRUCTIONS];
    int n_inputs;
    /* element i of the output reads element (i / inner[k]) % dim[k] of input
     * k; input 0 (and any input of the output's shape) has inner 1 and dim n */
    int64_t inner[EWC_MAX_INPUTS], dim[EWC_MAX_INPUTS];
    int64_t n; /* output elements */
} ewc_program;

/* True for the ops an instruction may hold (unary ones with EWC_UNARY, binary
 * ones with a scalar or tensor operand). */
int ewc_op_is_unary(int op);
int ewc_op_is_binary(int op);

/* The element block of `input` that maps onto `out`: 0 and *inner, *dim when
 * input broadcasts to out along one contiguous block of axes (or is out's
 * shape: inner 1, dim numel), -1 otherwise. */
int ewc_broadcast_block(const fg_tensor *input, const fg_tensor *out, int64_t *inner, int64_t *dim);

/* Reads and checks a FusedElementwise node against its call's input and
 * output shapes (call->out[0] already inferred). */
fg_status *ewc_decode(const op_call *call, ewc_program *program);

/* The op's shape rule: output = input 0's shape, float32; checks the program. */
fg_status *ewc_infer(op_call *call);

#endif
