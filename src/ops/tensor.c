#include "ops/op.h"

const op_def op_family_tensor[] = {
    {0},
};
