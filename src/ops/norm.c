#include "ops/op.h"

const op_def op_family_norm[] = {
    {0},
};
