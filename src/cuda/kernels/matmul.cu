#include "cuda/cuda_ops.h"

extern "C" const cuda_op_def cuda_family_matmul[] = {
    {0},
};
