/* FusedElementwise on the GPU: a chain of float32 element-wise ops (see
 * src/ops/elementwise_chain.h) in one kernel, one thread per element (four
 * consecutive elements per thread with float4 loads when the tensors of the
 * output's shape are 16-byte aligned).
 *
 * The program goes to the kernel BY VALUE (ewc_params, under a kilobyte):
 * prepare() decodes the node into it, run() adds the device pointers of the
 * step's inputs and launches; nothing touches device memory but the kernel.
 * Each instruction does the math of the stand-alone CUDA kernel it replaces
 * (unary_f32 / binary_f32 in elementwise.cu, then cu_act); additions and
 * products use the _rn intrinsics so that nothing contracts across two
 * instructions into an FMA the unfused kernels would not do. */
#include "cuda/cuda_ops.h"
#include "cuda/kernels/kernel_util.cuh"
#include "cuda/kernels/conv_dwpw.cuh"
#include "cuda/kernels/channels_last.cuh"

extern "C" {
#include "ops/elementwise_chain.h"
#include "ops/channels_last.h"
#include "ops/conv_dwpw.h"
}

/* How an input maps onto the output. */
enum { EWC_MAP_FULL, EWC_MAP_ONE, EWC_MAP_BLOCK4, EWC_MAP_BLOCK };

typedef struct ewc_dev_instruction {
    int op, operand, input, swapped, save;
    float scalar, alpha, beta;
    op_activation act;
} ewc_dev_instruction;

typedef struct ewc_dev_input {
    const float *data;
    uint32_t inner, dim; /* element i reads data[(i / inner) % dim] */
    int map;
} ewc_dev_input;

typedef struct ewc_params {
    int n_instructions;
    int n_inputs;
    uint32_t n;
    float *out;
    ewc_dev_instruction code[EWC_MAX_INSTRUCTIONS];
    ewc_dev_input in[EWC_MAX_INPUTS];
} ewc_params;

/* value op operand (or operand op value when swapped); unary ops ignore y. */
static __device__ __forceinline__ float ewc_apply(const ewc_dev_instruction &ins, float v, float y)
{
    const float alpha = ins.alpha, beta = ins.beta;
    const float x = ins.swapped ? y : v, z = ins.swapped ? v : y;
    float r;
    switch (ins.op) {
    case EW_RELU: r = v > 0 ? v : 0.0f; break;
    case EW_LEAKY_RELU: r = v >= 0 ? v : v * alpha; break;
    case EW_SIGMOID: r = 1.0f / (1.0f + expf(-v)); break;
    case EW_TANH: r = tanhf(v); break;
    case EW_HARD_SIGMOID: r = fminf(fmaxf(alpha * v + beta, 0.0f), 1.0f); break;
    case EW_HARD_SWISH: r = v * fminf(fmaxf(v * (1.0f / 6.0f) + 0.5f, 0.0f), 1.0f); break;
    case EW_CLIP: r = v < alpha ? alpha : (v > beta ? beta : v); break;
    case EW_ERF: r = erff(v); break;
    case EW_SQRT: r = sqrtf(v); break;
    case EW_EXP: r = expf(v); break;
    case EW_LOG: r = logf(v); break;
    case EW_ABS: r = fabsf(v); break;
    case EW_NEG: r = -v; break;
    case EW_RECIPROCAL: r = 1.0f / v; break;
    case EW_FLOOR: r = floorf(v); break;
    case EW_CEIL: r = ceilf(v); break;
    case EW_ADD: r = __fadd_rn(x, z); break;
    case EW_SUB: r = __fsub_rn(x, z); break;
    case EW_MUL: r = __fmul_rn(x, z); break;
    case EW_DIV: r = __fdiv_rn(x, z); break;
    case EW_MAX: r = (x != x || x > z) ? x : z; break;
    case EW_MIN: r = (x != x || x < z) ? x : z; break;
    case EW_POW: r = z == 2.0f ? __fmul_rn(x, x) : (z == 1.0f ? x : powf(x, z)); break;
    default: r = v; break;
    }
    return cu_act(ins.act, r);
}

/* The operand of instruction `ins` for output element i (EWC_SAVED: the
 * caller's saved value). */
static __device__ __forceinline__ float ewc_operand_at(const ewc_params &p, const ewc_dev_instruction &ins, uint32_t i,
                                                       float saved)
{
    if (ins.operand == EWC_SAVED)
        return saved;
    if (ins.operand != EWC_TENSOR)
        return ins.scalar;
    const ewc_dev_input t = p.in[ins.input];
    switch (t.map) {
    case EWC_MAP_FULL: return t.data[i];
    case EWC_MAP_ONE: return t.data[0];
    default: return t.data[(i / t.inner) % t.dim];
    }
}

/* The operand for output elements i0 .. i0 + 3 (i0 a multiple of 4). */
static __device__ __forceinline__ void ewc_operand4(const ewc_params &p, const ewc_dev_instruction &ins, uint32_t i0,
                                                    const float *saved, float *y)
{
    if (ins.operand == EWC_SAVED) {
        y[0] = saved[0];
        y[1] = saved[1];
        y[2] = saved[2];
        y[3] = saved[3];
        return;
    }
    if (ins.operand != EWC_TENSOR) {
        y[0] = y[1] = y[2] = y[3] = ins.scalar;
        return;
    }
    const ewc_dev_input t = p.in[ins.input];
    switch (t.map) {
    case EWC_MAP_FULL: {
        const float4 q = ((const float4 *)t.data)[i0 >> 2];
        y[0] = q.x;
        y[1] = q.y;
        y[2] = q.z;
        y[3] = q.w;
        break;
    }
    case EWC_MAP_ONE: y[0] = y[1] = y[2] = y[3] = t.data[0]; break;
    case EWC_MAP_BLOCK4: y[0] = y[1] = y[2] = y[3] = t.data[(i0 / t.inner) % t.dim]; break;
    default:
#pragma unroll
        for (int e = 0; e < 4; e++)
            y[e] = t.data[((i0 + e) / t.inner) % t.dim];
        break;
    }
}

static __global__ void ewc_kernel(ewc_params p, int vec)
{
    CU_KERNEL_PROLOGUE();
    uint32_t start = 0;
    if (vec) {
        const uint32_t n4 = p.n >> 2;
        CU_LOOP(q, n4) {
            const float4 x = ((const float4 *)p.in[0].data)[q];
            float v[4] = {x.x, x.y, x.z, x.w};
            float saved[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            for (int k = 0; k < p.n_instructions; k++) {
                const ewc_dev_instruction ins = p.code[k];
                float y[4];
                ewc_operand4(p, ins, q << 2, saved, y);
#pragma unroll
                for (int e = 0; e < 4; e++)
                    v[e] = ewc_apply(ins, v[e], y[e]);
                if (ins.save) {
#pragma unroll
                    for (int e = 0; e < 4; e++)
                        saved[e] = v[e];
                }
            }
            ((float4 *)p.out)[q] = make_float4(v[0], v[1], v[2], v[3]);
        }
        start = n4 << 2;
    }
    for (uint32_t i = start + blockIdx.x * blockDim.x + threadIdx.x; i < p.n; i += blockDim.x * gridDim.x) {
        float v = p.in[0].data[i], saved = 0.0f;
        for (int k = 0; k < p.n_instructions; k++) {
            const ewc_dev_instruction ins = p.code[k];
            v = ewc_apply(ins, v, ewc_operand_at(p, ins, i, saved));
            if (ins.save)
                saved = v;
        }
        p.out[i] = v;
    }
}

static fg_status *ewc_prepare(cuda_call *call)
{
    const op_call *oc = &call->op;
    if (fg_tensor_numel(&oc->out[0]) > CU_INDEX_LIMIT)
        return op_error(oc, FG_ERR_UNSUPPORTED, "tensors of 2^31 elements or more are not supported on the GPU");
    ewc_program pg;
    FG_TRY(ewc_decode(oc, &pg));
    ewc_params *st = (ewc_params *)cu_state_alloc(sizeof(ewc_params));
    if (!st)
        return op_error(oc, FG_ERR_OUT_OF_MEMORY, "out of host memory preparing the kernel");
    call->op.state = st;
    st->n = (uint32_t)pg.n;
    st->n_instructions = pg.n_instructions;
    st->n_inputs = pg.n_inputs;
    for (int i = 0; i < pg.n_instructions; i++) {
        const ewc_instruction *s = &pg.code[i];
        ewc_dev_instruction *d = &st->code[i];
        d->op = s->op;
        d->operand = s->operand;
        d->input = s->input;
        d->swapped = s->swapped;
        d->save = s->save;
        d->scalar = s->scalar;
        d->alpha = s->alpha;
        d->beta = s->beta;
        d->act = s->act;
    }
    for (int k = 0; k < pg.n_inputs; k++) {
        ewc_dev_input *d = &st->in[k];
        d->inner = (uint32_t)pg.inner[k];
        d->dim = (uint32_t)pg.dim[k];
        if (k == 0 || (pg.inner[k] == 1 && pg.dim[k] == pg.n))
            d->map = EWC_MAP_FULL;
        else if (pg.dim[k] == 1)
            d->map = EWC_MAP_ONE;
        else if (pg.inner[k] % 4 == 0)
            d->map = EWC_MAP_BLOCK4;
        else
            d->map = EWC_MAP_BLOCK;
    }
    return NULL;
}

static fg_status *ewc_run(cuda_call *call)
{
    const ewc_params *st = (const ewc_params *)call->op.state;
    if (st->n == 0)
        return NULL;
    ewc_params p = *st;
    p.out = (float *)call->op.out[0].data;
    int vec = (uintptr_t)p.out % 16 == 0;
    for (int k = 0; k < p.n_inputs; k++) {
        p.in[k].data = (const float *)call->op.in[k].data;
        if (p.in[k].map == EWC_MAP_FULL)
            vec &= (uintptr_t)p.in[k].data % 16 == 0;
    }
    cu_launch(ewc_kernel, cu_blocks(vec ? p.n / 4 + 1 : p.n), CU_THREADS, 0, call->stream, p, vec);
    CU_CHECK_LAUNCH(call, "fused element-wise kernel");
    return NULL;
}

static void ewc_release(void *state) { free(state); }

extern "C" const cuda_op_def cuda_family_facegraph[] = {
    {EWC_OP_TYPE, ewc_prepare, ewc_run, ewc_release},
    {DWPW_OP_TYPE, cuda_dwpw_prepare, cuda_dwpw_run, cuda_dwpw_release}, /* conv_dwpw.cu */
    {CLS_OP_TYPE, cuda_cls_prepare, cuda_cls_run, cuda_cls_release},     /* channels_last.cu */
    {NULL, NULL, NULL, NULL},
};
