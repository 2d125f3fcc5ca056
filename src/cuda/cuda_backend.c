/* The CUDA backend: device, weight upload, eager runs and validated CUDA
 * graphs over a plan's static memory layout. See cuda_backend.h. */
#include "cuda/cuda_backend.h"

#include "cuda/cuda_ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- registry */

static const cuda_op_def *const cuda_families[] = {
    cuda_family_elementwise, cuda_family_tensor, cuda_family_conv,
    cuda_family_matmul,      cuda_family_reduce, cuda_family_misc,
};

const cuda_op_def *cuda_op_find(const char *domain, const char *op_type)
{
    if (domain && strcmp(domain, "facegraph") == 0) { /* ops the planner makes */
        for (const cuda_op_def *op = cuda_family_facegraph; op->op_type; op++)
            if (strcmp(op->op_type, op_type) == 0)
                return op;
        return NULL;
    }
    if (domain && domain[0] && strcmp(domain, "ai.onnx") != 0)
        return NULL;
    for (size_t f = 0; f < sizeof cuda_families / sizeof cuda_families[0]; f++)
        for (const cuda_op_def *op = cuda_families[f]; op->op_type; op++)
            if (strcmp(op->op_type, op_type) == 0)
                return op;
    return NULL;
}

fg_status *cuda_error(const cuda_call *call, cudaError_t err, const char *what)
{
    fg_code code = err == cudaErrorMemoryAllocation ? FG_ERR_OUT_OF_MEMORY : FG_ERR_DEVICE;
    if (call)
        return op_error(&call->op, code, "%s failed on the GPU: %s", what, cudaGetErrorString(err));
    return fg_error(code, "%s failed on the GPU: %s%s", what, cudaGetErrorString(err),
                    code == FG_ERR_OUT_OF_MEMORY ? " (free GPU memory or use smaller inputs)" : "");
}

fg_status *cudnn_error(const cuda_call *call, cudnnStatus_t err, const char *what)
{
    if (call)
        return op_error(&call->op, FG_ERR_DEVICE, "cuDNN %s failed: %s", what, cudnnGetErrorString(err));
    return fg_error(FG_ERR_DEVICE, "cuDNN %s failed: %s", what, cudnnGetErrorString(err));
}

fg_status *cublas_error(const cuda_call *call, cublasStatus_t err, const char *what)
{
    if (call)
        return op_error(&call->op, FG_ERR_DEVICE, "cuBLAS %s failed: %s", what, cublasGetStatusString(err));
    return fg_error(FG_ERR_DEVICE, "cuBLAS %s failed: %s", what, cublasGetStatusString(err));
}

#define CUDA_TRY(expr, what)                       \
    do {                                           \
        cudaError_t e_ = (expr);                   \
        if (e_ != cudaSuccess)                     \
            return cuda_error(NULL, e_, what);     \
    } while (0)

/* ------------------------------------------------------------- device */

struct cuda_device {
    int id;
    char description[640];
};

int cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess)
        return 0;
    return n;
}

fg_status *cuda_device_open(int device_id, cuda_device **out)
{
    *out = NULL;
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess || n == 0)
        return fg_error(FG_ERR_NOT_FOUND,
                        "no CUDA GPU is usable here (%s); use --execution-providers cpu",
                        err != cudaSuccess ? cudaGetErrorString(err) : "no devices");
    if (device_id < 0 || device_id >= n) {
        char list[1024] = "";
        for (int i = 0; i < n && strlen(list) < 900; i++) {
            struct cudaDeviceProp prop;
            if (cudaGetDeviceProperties(&prop, i) == cudaSuccess)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%d: %s", i ? ", " : "", i, prop.name);
        }
        return fg_error(FG_ERR_NOT_FOUND, "--execution-device-id %d does not exist; devices found: %s", device_id,
                        list);
    }
    if ((err = cudaSetDevice(device_id)) != cudaSuccess)
        return cuda_error(NULL, err, "opening the GPU");
    cublasHandle_t blas_handle = NULL;
    cublasStatus_t bs = cublasCreate(&blas_handle);
    if (bs != CUBLAS_STATUS_SUCCESS)
        return cublas_error(NULL, bs, "initialisation");
    cuda_device *dev = calloc(1, sizeof *dev);
    if (!dev) {
        cublasDestroy(blas_handle);
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory opening the GPU");
    }
    dev->id = device_id;
    struct cudaDeviceProp prop;
    int driver = 0, runtime = 0, blas = 0;
    cudaGetDeviceProperties(&prop, device_id);
    cudaDriverGetVersion(&driver);
    cudaRuntimeGetVersion(&runtime);
    cublasGetVersion(blas_handle, &blas);
    cublasDestroy(blas_handle);
    size_t dnn = cudnnGetVersion();
    snprintf(dev->description, sizeof dev->description,
             "%s (sm_%d%d), driver %d.%d, CUDA runtime %d.%d, cuDNN %zu.%zu.%zu, cuBLAS %d.%d.%d", prop.name,
             prop.major, prop.minor, driver / 1000, driver % 1000 / 10, runtime / 1000, runtime % 1000 / 10,
             dnn / 10000, dnn % 10000 / 100, dnn % 100, blas / 10000, blas % 10000 / 100, blas % 100);
    *out = dev;
    return NULL;
}

void cuda_device_close(cuda_device *dev) { free(dev); }

const char *cuda_device_describe(const cuda_device *dev) { return dev->description; }

int cuda_device_id(const cuda_device *dev) { return dev->id; }

/* If and Loop run as graph segments around a host decision
 * (src/runtime/segments.c): what must have a kernel is in their subgraphs. */
static const ir_node *first_unsupported_in(const ir_graph *g)
{
    for (int k = 0; k < g->n_nodes; k++) {
        const ir_node *node = &g->nodes[k];
        int default_domain = !node->domain[0] || !strcmp(node->domain, "ai.onnx");
        int control = default_domain && (!strcmp(node->op_type, "If") || !strcmp(node->op_type, "Loop"));
        if (control) {
            for (int a = 0; a < node->n_attrs; a++) {
                const ir_node *missing =
                    node->attrs[a].type == IR_ATTR_GRAPH && node->attrs[a].g ? first_unsupported_in(node->attrs[a].g)
                                                                             : NULL;
                if (missing)
                    return missing;
            }
            continue;
        }
        if (strcmp(node->op_type, "Constant") != 0 && !cuda_op_find(node->domain, node->op_type))
            return node;
    }
    return NULL;
}

const ir_node *cuda_first_unsupported(const ir_model *model) { return first_unsupported_in(model->graph); }

/* ------------------------------------------------------------- weights */

struct cuda_weights {
    cuda_device *dev;
    const void **host;
    void **dev_ptr;
    size_t *bytes;
    int n, cap;
    size_t total;
};

fg_status *cuda_weights_create(cuda_device *dev, cuda_weights **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory");
    (*out)->dev = dev;
    return NULL;
}

void cuda_weights_free(cuda_weights *w)
{
    if (!w)
        return;
    for (int i = 0; i < w->n; i++)
        cudaFree(w->dev_ptr[i]);
    free(w->host);
    free(w->dev_ptr);
    free(w->bytes);
    free(w);
}

size_t cuda_weights_bytes(const cuda_weights *w) { return w ? w->total : 0; }

/* The device copy of a model weight, uploaded on first use. */
static fg_status *weights_get(cuda_weights *w, const void *host, size_t bytes, void **out)
{
    for (int i = 0; i < w->n; i++)
        if (w->host[i] == host && w->bytes[i] == bytes) {
            *out = w->dev_ptr[i];
            return NULL;
        }
    if (w->n == w->cap) {
        int cap = w->cap ? w->cap * 2 : 256;
        const void **h = realloc(w->host, sizeof *h * (size_t)cap);
        if (h)
            w->host = h;
        void **d = h ? realloc(w->dev_ptr, sizeof *d * (size_t)cap) : NULL;
        if (d)
            w->dev_ptr = d;
        size_t *b = d ? realloc(w->bytes, sizeof *b * (size_t)cap) : NULL;
        if (!b)
            return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory");
        w->bytes = b;
        w->cap = cap;
    }
    void *d = NULL;
    cudaError_t err = cudaMalloc(&d, bytes ? bytes : 256);
    if (err != cudaSuccess)
        return fg_error(FG_ERR_OUT_OF_MEMORY,
                        "GPU out of memory uploading %zu MiB of weights (%s); free GPU memory or use "
                        "--execution-providers cpu",
                        bytes >> 20, cudaGetErrorString(err));
    err = cudaMemcpy(d, host, bytes, cudaMemcpyHostToDevice);
    if (err != cudaSuccess) {
        cudaFree(d);
        return cuda_error(NULL, err, "uploading weights");
    }
    w->host[w->n] = host;
    w->dev_ptr[w->n] = d;
    w->bytes[w->n++] = bytes;
    w->total += bytes;
    *out = d;
    return NULL;
}

/* ------------------------------------------------------------- plans */

/* Streams a graph capture may spread independent steps over. */
#define GRAPH_BRANCHES 4

typedef struct device_buffer {
    const void *host; /* constants: host source */
    void *dev;
} device_buffer;

struct cuda_plan {
    cuda_device *dev;
    cuda_weights *weights;
    cudaStream_t stream;   /* each plan instance has its own stream and library handles, */
    cudnnHandle_t cudnn;   /* so instances of one model run concurrently */
    cublasHandle_t cublas;
    plan *p;
    cuda_plan_options options;
    void *d_arena;
    void *d_scratch;
    size_t scratch_bytes;
    void **d_value;        /* per value id: device pointer for CONST and INPUT roots */
    void **d_owned;        /* device allocations to free */
    int n_d_owned;
    void **h_output;       /* pinned staging per model output */
    int64_t *d_counts;     /* per step: device counts of data-dependent outputs */
    int64_t *h_counts;     /* pinned copies of d_counts */
    cuda_call *calls;
    fg_tensor *call_tensors;
    const cuda_op_def **ops;
    char *skip;            /* per step: aliasing view, nothing to run */
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    cudaStream_t branch[GRAPH_BRANCHES]; /* capture only: the graph's parallel branches (see capture_steps) */
    int graph_branches;    /* the adopted graph's widest point: 1 when it is a chain */
    int graph_state;       /* 0 untried, 1 adopted, -1 refused */
    char graph_reason[256];
    int kernels_per_run;
    int runs;
    cudaEvent_t start, stop; /* around the kernels of a run */
    float device_ms;         /* the latest run's kernels, by those events */
};

static void *device_ptr(const cuda_plan *cp, int id)
{
    int r = plan_value_root(cp->p, id);
    const plan_value *v = &cp->p->values[r];
    if (v->kind == PLAN_ARENA)
        return (char *)cp->d_arena + v->offset + plan_value_offset(cp->p, id);
    return cp->d_value[r];
}

static fg_status *device_alloc(cuda_plan *cp, size_t bytes, void **out)
{
    void *d = NULL;
    cudaError_t err = cudaMalloc(&d, bytes ? bytes : 256);
    if (err != cudaSuccess)
        return fg_error(FG_ERR_OUT_OF_MEMORY,
                        "GPU out of memory allocating %zu MiB (%s); free GPU memory, close other programs or use "
                        "--execution-providers cpu",
                        bytes >> 20, cudaGetErrorString(err));
    cp->d_owned[cp->n_d_owned++] = d;
    *out = d;
    return NULL;
}

void cuda_plan_free(cuda_plan *cp)
{
    if (!cp)
        return;
    if (cp->stream)
        cudaStreamSynchronize(cp->stream);
    if (cp->exec)
        cudaGraphExecDestroy(cp->exec);
    if (cp->graph)
        cudaGraphDestroy(cp->graph);
    for (int k = 0; cp->calls && k < cp->p->n_steps; k++)
        if (cp->ops && cp->ops[k] && cp->ops[k]->release && cp->calls[k].op.state)
            cp->ops[k]->release(cp->calls[k].op.state);
    for (int i = 0; i < cp->n_d_owned; i++)
        cudaFree(cp->d_owned[i]);
    for (int i = 0; cp->h_output && i < cp->p->n_outputs; i++)
        cudaFreeHost(cp->h_output[i]);
    cudaFreeHost(cp->h_counts);
    if (cp->start)
        cudaEventDestroy(cp->start);
    if (cp->stop)
        cudaEventDestroy(cp->stop);
    if (cp->cublas)
        cublasDestroy(cp->cublas);
    if (cp->cudnn)
        cudnnDestroy(cp->cudnn);
    if (cp->stream)
        cudaStreamDestroy(cp->stream);
    for (int b = 0; b < GRAPH_BRANCHES; b++)
        if (cp->branch[b])
            cudaStreamDestroy(cp->branch[b]);
    free(cp->d_owned);
    free(cp->d_value);
    free(cp->h_output);
    free(cp->calls);
    free(cp->call_tensors);
    free(cp->ops);
    free(cp->skip);
    free(cp);
}

/* Model weights come from the shared per-session copy; constants the plan
 * made (folded, BatchNormalization-folded) are uploaded for this plan. */
static fg_status *upload_value(cuda_plan *cp, int r)
{
    plan *p = cp->p;
    if (cp->d_value[r])
        return NULL;
    size_t bytes = fg_tensor_nbytes(&p->values[r].t);
    const ir_value *iv = r < p->graph->n_values ? &p->graph->values[r] : NULL;
    if (iv && iv->initializer && iv->initializer->data == p->values[r].t.data)
        return weights_get(cp->weights, p->values[r].t.data, bytes, &cp->d_value[r]);
    FG_TRY(device_alloc(cp, bytes, &cp->d_value[r]));
    CUDA_TRY(cudaMemcpy(cp->d_value[r], p->values[r].t.data, bytes, cudaMemcpyHostToDevice), "uploading constants");
    return NULL;
}

static fg_status *upload_constants(cuda_plan *cp)
{
    plan *p = cp->p;
    for (int k = 0; k < p->n_steps; k++) {
        const plan_step *s = &p->steps[k];
        for (int i = 0; i < s->n_in; i++) {
            int r = s->in[i] >= 0 ? plan_value_root(p, s->in[i]) : -1;
            if (r >= 0 && p->values[r].kind == PLAN_CONST)
                FG_TRY(upload_value(cp, r));
        }
    }
    for (int i = 0; i < p->n_outputs; i++) {
        int r = plan_value_root(p, p->outputs[i]);
        if (p->values[r].kind == PLAN_CONST)
            FG_TRY(upload_value(cp, r));
    }
    return NULL;
}

static fg_status *bind_steps(cuda_plan *cp)
{
    plan *p = cp->p;
    int total = 0;
    for (int k = 0; k < p->n_steps; k++)
        total += p->steps[k].n_in * 2 + p->steps[k].n_out;
    cp->calls = calloc((size_t)p->n_steps + 1, sizeof *cp->calls);
    cp->call_tensors = calloc((size_t)total + 1, sizeof *cp->call_tensors);
    cp->ops = calloc((size_t)p->n_steps + 1, sizeof *cp->ops);
    cp->skip = calloc((size_t)p->n_steps + 1, 1);
    if (!cp->calls || !cp->call_tensors || !cp->ops || !cp->skip)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory binding the plan to the GPU");
    int n_bounded = 0;
    for (int k = 0; k < p->n_steps; k++)
        n_bounded += p->steps[k].call.out_bounded;
    if (n_bounded) {
        FG_TRY(device_alloc(cp, sizeof(int64_t) * (size_t)p->n_steps, (void **)&cp->d_counts));
        CUDA_TRY(cudaMallocHost((void **)&cp->h_counts, sizeof(int64_t) * (size_t)p->n_steps), "pinned memory");
    }
    fg_tensor *pool = cp->call_tensors;
    size_t scratch = 0;
    for (int k = 0; k < p->n_steps; k++) {
        plan_step *s = &p->steps[k];
        cuda_call *c = &cp->calls[k];
        if (plan_step_is_view(p, s)) {
            cp->skip[k] = 1;
            continue;
        }
        const cuda_op_def *op = cuda_op_find(s->node->domain, s->node->op_type);
        if (!op)
            return fg_error(FG_ERR_UNSUPPORTED, "node '%s': op %s has no CUDA kernel", s->node->name,
                            s->node->op_type);
        cp->ops[k] = op;
        c->op = s->call;
        c->op.state = NULL;
        c->op.scratch = NULL;
        c->op.scratch_bytes = 0;
        c->op.in = pool;
        pool += s->n_in;
        fg_tensor *host_in = pool;
        pool += s->n_in;
        c->host_in = host_in;
        c->op.out = pool;
        pool += s->n_out;
        for (int i = 0; i < s->n_in; i++) {
            int id = s->in[i];
            if (id < 0)
                continue;
            int r = plan_value_root(p, id);
            c->op.in[i] = p->values[id].t;
            c->op.in[i].data = device_ptr(cp, id);
            c->op.in[i].location = FG_DEVICE;
            host_in[i] = p->values[id].t;
            host_in[i].data = p->values[r].kind == PLAN_CONST ? p->values[r].t.data : NULL;
        }
        for (int j = 0; j < s->n_out; j++) {
            int id = s->out[j];
            if (id < 0) { /* an output the model leaves unnamed: planned shape, a buffer of its own */
                c->op.out[j] = s->out_t[j];
                c->op.out[j].location = FG_DEVICE;
                FG_TRY(device_alloc(cp, fg_tensor_nbytes(&s->out_t[j]), &c->op.out[j].data));
                continue;
            }
            c->op.out[j] = p->values[id].t;
            c->op.out[j].data = device_ptr(cp, id);
            c->op.out[j].location = FG_DEVICE;
        }
        c->stream = cp->stream;
        c->cudnn = cp->cudnn;
        c->cublas = cp->cublas;
        c->device = cp->dev->id;
        c->allow_tf32 = cp->options.allow_tf32;
        c->allow_fp16 = cp->options.precision_fp16 || p->float16_model;
        c->device_count = s->call.out_bounded ? cp->d_counts + k : NULL;
        if (op->prepare)
            FG_TRY(op->prepare(c));
        if (c->op.scratch_bytes > scratch)
            scratch = c->op.scratch_bytes;
    }
    if (scratch)
        FG_TRY(device_alloc(cp, scratch, &cp->d_scratch));
    for (int k = 0; k < p->n_steps; k++)
        cp->calls[k].scratch = cp->calls[k].op.scratch = cp->d_scratch;
    return NULL;
}

fg_status *cuda_plan_create(cuda_device *dev, cuda_weights *weights, plan *p, const cuda_plan_options *options,
                            cuda_plan **out)
{
    *out = NULL;
    for (int k = 0; k < p->n_steps; k++)
        if (p->steps[k].dynamic)
            return fg_error(FG_ERR_UNSUPPORTED,
                            "node '%s' (%s): its output shape depends on data computed at run time; the CUDA "
                            "provider needs every shape known when planning",
                            p->steps[k].node->name, p->steps[k].node->op_type);
    cuda_plan *cp = calloc(1, sizeof *cp);
    if (!cp)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory binding the plan to the GPU");
    cp->dev = dev;
    cp->weights = weights;
    cp->p = p;
    cp->options = *options;
    int max_allocs = p->n_values + p->n_inputs + 8;
    for (int k = 0; k < p->n_steps; k++)
        max_allocs += p->steps[k].n_out;
    cp->d_value = calloc((size_t)p->n_values + 1, sizeof *cp->d_value);
    cp->d_owned = calloc((size_t)max_allocs, sizeof *cp->d_owned);
    cp->h_output = calloc((size_t)p->n_outputs + 1, sizeof *cp->h_output);
    fg_status *st = NULL;
    cudaError_t err;
    if (!cp->d_value || !cp->d_owned || !cp->h_output) {
        st = fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory binding the plan to the GPU");
        goto fail;
    }
    if ((err = cudaSetDevice(dev->id)) != cudaSuccess ||
        (err = cudaStreamCreateWithFlags(&cp->stream, cudaStreamNonBlocking)) != cudaSuccess) {
        st = cuda_error(NULL, err, "selecting the GPU");
        goto fail;
    }
    cudnnStatus_t ds = cudnnCreate(&cp->cudnn);
    if (ds != CUDNN_STATUS_SUCCESS) {
        cp->cudnn = NULL;
        st = cudnn_error(NULL, ds, "initialisation");
        goto fail;
    }
    cudnnSetStream(cp->cudnn, cp->stream);
    cublasStatus_t bs = cublasCreate(&cp->cublas);
    if (bs != CUBLAS_STATUS_SUCCESS) {
        cp->cublas = NULL;
        st = cublas_error(NULL, bs, "initialisation");
        goto fail;
    }
    cublasSetStream(cp->cublas, cp->stream);
    if ((err = cudaEventCreate(&cp->start)) != cudaSuccess || (err = cudaEventCreate(&cp->stop)) != cudaSuccess) {
        st = cuda_error(NULL, err, "creating timing events");
        goto fail;
    }
    st = device_alloc(cp, p->arena_bytes, &cp->d_arena);
    if (st)
        goto fail;
    for (int i = 0; i < p->n_values && !st; i++) {
        plan_value *v = &p->values[i];
        if (v->kind != PLAN_INPUT)
            continue;
        size_t bytes = fg_tensor_nbytes(&v->t);
        st = device_alloc(cp, bytes, &cp->d_value[i]);
    }
    for (int i = 0; i < p->n_outputs && !st; i++) {
        size_t bytes = plan_output_bytes(p, p->outputs[i]);
        size_t out_bytes = fg_tensor_nbytes(&p->values[p->outputs[i]].t);
        if (out_bytes > bytes)
            bytes = out_bytes;
        if ((err = cudaMallocHost(&cp->h_output[i], bytes ? bytes : 1)) != cudaSuccess)
            st = cuda_error(NULL, err, "allocating pinned output memory");
    }
    if (!st)
        st = upload_constants(cp);
    if (!st)
        st = bind_steps(cp);
    if (st)
        goto fail;
    cp->graph_state = options->graph_mode == CUDA_GRAPH_OFF ? -1 : 0;
    snprintf(cp->graph_reason, sizeof cp->graph_reason, "%s",
             options->graph_mode == CUDA_GRAPH_OFF ? "CUDA graphs switched off" : "not captured yet");
    *out = cp;
    return NULL;
fail:
    cuda_plan_free(cp);
    return st;
}

/* Inputs in, outside any graph, straight from the caller's tensors (host
 * or device memory) into the plan's input buffers. */
static fg_status *enqueue_inputs(cuda_plan *cp, const fg_tensor *inputs)
{
    plan *p = cp->p;
    for (int i = 0; i < p->n_values; i++) {
        plan_value *v = &p->values[i];
        if (v->kind != PLAN_INPUT)
            continue;
        const fg_tensor *in = &inputs[v->input_index];
        cudaError_t err = cudaMemcpyAsync(cp->d_value[i], in->data, fg_tensor_nbytes(&v->t),
                                          in->location == FG_DEVICE ? cudaMemcpyDeviceToDevice
                                                                    : cudaMemcpyHostToDevice,
                                          cp->stream);
        if (err != cudaSuccess)
            return cuda_error(NULL, err, "copying inputs to the GPU");
    }
    return NULL;
}

/* The model's kernels: what a CUDA graph captures. With step_events, an
 * event is recorded before each step and after the last (profiling). */
static fg_status *enqueue_steps(cuda_plan *cp, int *launches, cudaEvent_t *step_events)
{
    plan *p = cp->p;
    int n = 0;
    for (int k = 0; k < p->n_steps; k++) {
        if (step_events)
            cudaEventRecord(step_events[k], cp->stream);
        if (cp->skip[k])
            continue;
        FG_TRY(cp->ops[k]->run(&cp->calls[k]));
        n++;
    }
    if (step_events)
        cudaEventRecord(step_events[p->n_steps], cp->stream);
    if (launches)
        *launches = n;
    return NULL;
}

/* The device bytes one step touches, for ordering steps in a graph. */
typedef struct step_region {
    const char *begin, *end;
    int write;
} step_region;

/* Regions of step k: its inputs (read), its outputs and the shared scratch (written; library
 * workspaces live in the scratch too). Returns the count, at most max. */
static int step_regions(const cuda_plan *cp, int k, step_region *r, int max)
{
    const cuda_call *c = &cp->calls[k];
    int n = 0;
    for (int i = 0; i < c->op.n_in && n < max; i++)
        if (c->op.in[i].data)
            r[n++] = (step_region){(const char *)c->op.in[i].data,
                                   (const char *)c->op.in[i].data + fg_tensor_nbytes(&c->op.in[i]), 0};
    for (int j = 0; j < c->op.n_out && n < max; j++)
        if (c->op.out[j].data)
            r[n++] = (step_region){(const char *)c->op.out[j].data,
                                   (const char *)c->op.out[j].data + fg_tensor_nbytes(&c->op.out[j]), 1};
    if (c->op.scratch_bytes && n < max)
        r[n++] = (step_region){(const char *)cp->d_scratch, (const char *)cp->d_scratch + c->op.scratch_bytes, 1};
    return n;
}

#define STEP_MAX_REGIONS 64

/* 1 when step j (earlier) must finish before step k starts: one writes bytes the other reads
 * or writes. A step with more regions than STEP_MAX_REGIONS conflicts with everything. */
static int steps_conflict(const step_region *a, int na, const step_region *b, int nb)
{
    if (na >= STEP_MAX_REGIONS || nb >= STEP_MAX_REGIONS)
        return 1;
    for (int x = 0; x < na; x++)
        for (int y = 0; y < nb; y++)
            if ((a[x].write || b[y].write) && a[x].begin < b[y].end && b[y].begin < a[x].end)
                return 1;
    return 0;
}

/* The kernels of a run as a graph with parallel branches, enqueued while
 * cp->stream is being captured: each step waits only for the earlier steps
 * whose bytes it reads, or whose bytes it overwrites (the arena reuses
 * memory, and all steps share the scratch), so the heads of a detector
 * (independent per stride) run side by side instead of one kernel after
 * another. Steps go on up to GRAPH_BRANCHES streams; a step continues the
 * stream of its latest dependency when that stream ends there, and waits,
 * on each other stream, for the latest step it depends on there (one edge
 * per stream: the graph holds no redundant ones). Plans with
 * data-dependent outputs (device counts that later kernels read) stay one
 * chain. *width receives the number of streams used. try_graph keeps the
 * result only where it replays bit-exact and faster than the chain
 * (FACEGRAPH_CUDA_GRAPH_BRANCHES=0: never tried; =1: kept whenever it
 * replays bit-exact, for tests). */
static fg_status *capture_steps(cuda_plan *cp, int *width)
{
    plan *p = cp->p;
    int n = p->n_steps;
    *width = 1;
    if (cp->d_counts)
        return enqueue_steps(cp, NULL, NULL);
    for (int b = 0; b < GRAPH_BRANCHES; b++)
        if (!cp->branch[b] && cudaStreamCreateWithFlags(&cp->branch[b], cudaStreamNonBlocking) != cudaSuccess) {
            cudaGetLastError();
            return enqueue_steps(cp, NULL, NULL);
        }
    step_region *regions = malloc(sizeof(step_region) * STEP_MAX_REGIONS * (size_t)(n + 1));
    int *n_regions = calloc((size_t)n + 1, sizeof(int));
    int *stream_of = malloc(sizeof(int) * (size_t)(n + 1));
    cudaEvent_t *done = calloc((size_t)n + 1, sizeof(cudaEvent_t));
    fg_status *st = NULL;
    if (!regions || !n_regions || !stream_of || !done) {
        st = fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory capturing a CUDA graph");
        goto out;
    }
    /* stream 0 is the capturing stream; the others join it through an event it records first */
    cudaStream_t streams[GRAPH_BRANCHES + 1];
    int last_on[GRAPH_BRANCHES + 1], joined[GRAPH_BRANCHES + 1];
    streams[0] = cp->stream;
    for (int b = 0; b <= GRAPH_BRANCHES; b++) {
        if (b)
            streams[b] = cp->branch[b - 1];
        last_on[b] = -1;
        joined[b] = b == 0;
    }
    cudaEvent_t fork = NULL;
    if (cudaEventCreateWithFlags(&fork, cudaEventDisableTiming) != cudaSuccess ||
        cudaEventRecord(fork, cp->stream) != cudaSuccess) {
        st = cuda_error(NULL, cudaGetLastError(), "forking a CUDA graph capture");
        goto out;
    }
    int used = 1;
    for (int k = 0; k < n && !st; k++) {
        stream_of[k] = -1;
        if (cp->skip[k])
            continue;
        step_region *rk = regions + (size_t)k * STEP_MAX_REGIONS;
        n_regions[k] = step_regions(cp, k, rk, STEP_MAX_REGIONS);
        /* the stream: that of the latest dependency ending its stream, else the one idle longest */
        int chosen = -1;
        for (int j = k - 1; j >= 0 && chosen < 0; j--)
            if (stream_of[j] >= 0 && last_on[stream_of[j]] == j &&
                steps_conflict(regions + (size_t)j * STEP_MAX_REGIONS, n_regions[j], rk, n_regions[k]))
                chosen = stream_of[j];
        for (int b = 0; b <= GRAPH_BRANCHES && chosen < 0; b++)
            if (last_on[b] < 0)
                chosen = b;
        if (chosen < 0) {
            chosen = 0;
            for (int b = 1; b <= GRAPH_BRANCHES; b++)
                if (last_on[b] < last_on[chosen])
                    chosen = b;
        }
        cudaStream_t s = streams[chosen];
        if (!joined[chosen]) {
            cudaStreamWaitEvent(s, fork, 0);
            joined[chosen] = 1;
            used++;
        }
        /* per other stream, only its latest conflicting step: the stream's earlier steps finish before it */
        int waited[GRAPH_BRANCHES + 1] = {0};
        waited[chosen] = 1;
        for (int j = k - 1; j >= 0; j--)
            if (stream_of[j] >= 0 && !waited[stream_of[j]] &&
                steps_conflict(regions + (size_t)j * STEP_MAX_REGIONS, n_regions[j], rk, n_regions[k])) {
                cudaStreamWaitEvent(s, done[j], 0);
                waited[stream_of[j]] = 1;
            }
        cp->calls[k].stream = s;
        st = cp->ops[k]->run(&cp->calls[k]);
        cp->calls[k].stream = cp->stream;
        if (st)
            break;
        if (cudaEventCreateWithFlags(&done[k], cudaEventDisableTiming) != cudaSuccess ||
            cudaEventRecord(done[k], s) != cudaSuccess) {
            st = cuda_error(NULL, cudaGetLastError(), "ordering a CUDA graph's branches");
            break;
        }
        stream_of[k] = chosen;
        last_on[chosen] = k;
    }
    /* join: the capturing stream waits for every branch's last step */
    for (int b = 1; b <= GRAPH_BRANCHES; b++)
        if (last_on[b] >= 0)
            cudaStreamWaitEvent(cp->stream, done[last_on[b]], 0);
    *width = used;
    cudaEventDestroy(fork);
out:
    for (int k = 0; done && k < n; k++)
        if (done[k])
            cudaEventDestroy(done[k]);
    free(regions);
    free(n_regions);
    free(stream_of);
    free(done);
    return st;
}

/* Outputs (unless they stay on the device) and data-dependent lengths out
 * to pinned memory. */
static fg_status *enqueue_outputs(cuda_plan *cp, int host_outputs)
{
    plan *p = cp->p;
    cudaError_t err;
    for (int i = 0; i < p->n_outputs && host_outputs; i++) {
        int id = p->outputs[i];
        size_t bytes = plan_output_bytes(p, id);
        err = cudaMemcpyAsync(cp->h_output[i], device_ptr(cp, id), bytes, cudaMemcpyDeviceToHost, cp->stream);
        if (err != cudaSuccess)
            return cuda_error(NULL, err, "copying outputs from the GPU");
    }
    if (cp->d_counts) {
        err = cudaMemcpyAsync(cp->h_counts, cp->d_counts, sizeof(int64_t) * (size_t)p->n_steps,
                              cudaMemcpyDeviceToHost, cp->stream);
        if (err != cudaSuccess)
            return cuda_error(NULL, err, "copying output counts from the GPU");
    }
    return NULL;
}

/* Output views; data-dependent outputs get their true length (the count
 * their producer left on the device) and are made dense. */
static void collect_outputs(cuda_plan *cp, int host_outputs, fg_tensor *outputs)
{
    plan *p = cp->p;
    for (int i = 0; i < p->n_outputs; i++) {
        int id = p->outputs[i];
        const plan_value *v = &p->values[id];
        outputs[i] = v->t;
        outputs[i].data = host_outputs ? cp->h_output[i] : device_ptr(cp, id);
        outputs[i].location = host_outputs ? FG_HOST : FG_DEVICE;
        if (!v->bounded || !cp->d_counts)
            continue;
        for (int k = 0; k < p->n_steps; k++)
            for (int j = 0; j < p->steps[k].n_out && p->steps[k].call.out_bounded; j++)
                if (p->steps[k].out[j] == v->count_of) { /* every output of the step shares its count */
                    int64_t capacity = outputs[i].dims[v->bound_axis];
                    outputs[i].dims[v->bound_axis] = cp->h_counts[k];
                    if (host_outputs) /* device outputs keep the capacity layout (see cuda_plan_run) */
                        plan_compact_bounded(&outputs[i], v->bound_axis, capacity);
                    break;
                }
    }
}

static fg_status *sync(cuda_plan *cp)
{
    cudaError_t err = cudaStreamSynchronize(cp->stream);
    if (err != cudaSuccess)
        return cuda_error(NULL, err, "running the model");
    return NULL;
}

/* One run: inputs in, the kernels (eagerly, or the graph) between two
 * events that give the device time, outputs out, wait. */
static fg_status *run_once(cuda_plan *cp, int use_graph, const fg_tensor *inputs, int host_outputs,
                           fg_tensor *outputs)
{
    int launches = 0;
    FG_TRY(enqueue_inputs(cp, inputs));
    cudaEventRecord(cp->start, cp->stream);
    if (use_graph) {
        cudaError_t err = cudaGraphLaunch(cp->exec, cp->stream);
        if (err != cudaSuccess)
            return cuda_error(NULL, err, "launching the CUDA graph");
    } else {
        FG_TRY(enqueue_steps(cp, &launches, NULL));
    }
    cudaEventRecord(cp->stop, cp->stream);
    FG_TRY(enqueue_outputs(cp, host_outputs));
    FG_TRY(sync(cp));
    float ms = 0;
    cudaEventElapsedTime(&ms, cp->start, cp->stop);
    cp->device_ms = ms;
    if (!use_graph && cp->graph_state != 1)
        cp->kernels_per_run = launches;
    collect_outputs(cp, host_outputs, outputs);
    return NULL;
}

static void refuse_graph(cuda_plan *cp, const char *fmt, const char *detail)
{
    cp->graph_state = -1;
    snprintf(cp->graph_reason, sizeof cp->graph_reason, fmt, detail);
    if (cp->exec)
        cudaGraphExecDestroy(cp->exec);
    if (cp->graph)
        cudaGraphDestroy(cp->graph);
    cp->exec = NULL;
    cp->graph = NULL;
}

/* Captures the run into cp->graph / cp->exec, as one chain or (branched)
 * with parallel branches (capture_steps); *width: the branches used,
 * *kernels: kernel nodes. 0, or -1 after refuse_graph said why. */
static int capture_graph(cuda_plan *cp, int branched, int *width, int *kernels)
{
    cudaStream_t stream = cp->stream;
    *width = 1;
    *kernels = 0;
    cudaError_t err = cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal);
    if (err != cudaSuccess) {
        refuse_graph(cp, "capture could not start: %s", cudaGetErrorString(err));
        return -1;
    }
    fg_status *st = branched ? capture_steps(cp, width) : enqueue_steps(cp, NULL, NULL);
    err = cudaStreamEndCapture(stream, &cp->graph);
    if (st) { /* a kernel refused to be captured: the eager path still works */
        refuse_graph(cp, "capture failed: %s", fg_status_message(st));
        fg_status_free(st);
        cudaGetLastError();
        return -1;
    }
    if (err != cudaSuccess) {
        cudaGetLastError();
        refuse_graph(cp, "capture failed: %s", cudaGetErrorString(err));
        return -1;
    }
    err = cudaGraphInstantiate(&cp->exec, cp->graph, 0);
    if (err != cudaSuccess) {
        refuse_graph(cp, "instantiation failed: %s", cudaGetErrorString(err));
        return -1;
    }
    size_t n_nodes = 0;
    cudaGraphGetNodes(cp->graph, NULL, &n_nodes);
    cudaGraphNode_t *nodes = calloc(n_nodes + 1, sizeof *nodes);
    if (nodes && cudaGraphGetNodes(cp->graph, nodes, &n_nodes) == cudaSuccess)
        for (size_t i = 0; i < n_nodes; i++) {
            enum cudaGraphNodeType type;
            if (cudaGraphNodeGetType(nodes[i], &type) == cudaSuccess && type == cudaGraphNodeTypeKernel)
                (*kernels)++;
        }
    free(nodes);
    return 0;
}

/* Replays cp->exec on the inputs of the eager run whose outputs are in
 * `eager` (host, concatenated); 1 when every output matches bit for bit,
 * 0 after refuse_graph said where it differs (outputs get the eager values
 * back), -1 with *st on an error. */
static int replay_matches(cuda_plan *cp, const fg_tensor *inputs, fg_tensor *outputs, const char *eager,
                          fg_status **st)
{
    plan *p = cp->p;
    for (int i = 0; i < p->n_outputs; i++) /* poison, so a replay that writes nothing is caught */
        memset(cp->h_output[i], 0xA5, fg_tensor_nbytes(&outputs[i]));
    *st = run_once(cp, 1, inputs, 1, outputs);
    if (*st)
        return -1;
    size_t off = 0;
    int same = 1;
    for (int i = 0; i < p->n_outputs; i++) {
        size_t bytes = fg_tensor_nbytes(&outputs[i]);
        if (same && memcmp(eager + off, outputs[i].data, bytes) != 0) {
            char what[160];
            snprintf(what, sizeof what, "output %d", i);
            refuse_graph(cp, "graph replay differs from the eager run at %s", what);
            same = 0;
        }
        if (!same)
            memcpy(outputs[i].data, eager + off, bytes);
        off += bytes;
    }
    return same;
}

/* Best device milliseconds of a few replays of exec (inputs as they are). */
static float replay_ms(cuda_plan *cp, cudaGraphExec_t exec)
{
    float best = -1.0f;
    for (int r = 0; r < 7; r++) {
        float ms = 0.0f;
        if (cudaEventRecord(cp->start, cp->stream) != cudaSuccess || cudaGraphLaunch(exec, cp->stream) != cudaSuccess ||
            cudaEventRecord(cp->stop, cp->stream) != cudaSuccess || cudaEventSynchronize(cp->stop) != cudaSuccess ||
            cudaEventElapsedTime(&ms, cp->start, cp->stop) != cudaSuccess) {
            cudaGetLastError();
            return -1.0f;
        }
        if (r > 0 && (best < 0.0f || ms < best)) /* the first replay uploads the graph */
            best = ms;
    }
    return best;
}

/* Capture the run, replay it on the same inputs, adopt it if the outputs
 * match the eager run bit for bit. Where the plan allows it, a second
 * capture with parallel branches (capture_steps) is validated the same way,
 * and whichever of the two replays faster is kept: branches pay where
 * independent small kernels (a detector's heads) can overlap, and can lose
 * where concurrent kernels slow each other down. */
static fg_status *try_graph(cuda_plan *cp, const fg_tensor *inputs, fg_tensor *outputs)
{
    plan *p = cp->p;
    FG_TRY(run_once(cp, 0, inputs, 1, outputs)); /* validation compares host copies */
    size_t total = 0;
    for (int i = 0; i < p->n_outputs; i++)
        total += fg_tensor_nbytes(&outputs[i]);
    char *eager = malloc(total ? total : 1);
    if (!eager)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory validating a CUDA graph");
    size_t off = 0;
    for (int i = 0; i < p->n_outputs; i++) {
        memcpy(eager + off, outputs[i].data, fg_tensor_nbytes(&outputs[i]));
        off += fg_tensor_nbytes(&outputs[i]);
    }
    fg_status *st = NULL;
    int width = 1, kernels = 0;
    if (capture_graph(cp, 0, &width, &kernels) != 0 || replay_matches(cp, inputs, outputs, eager, &st) != 1)
        goto done;
    cp->graph_state = 1;
    cp->kernels_per_run = kernels;
    cp->graph_branches = 1;
    snprintf(cp->graph_reason, sizeof cp->graph_reason, "captured; replay validated bit-exact against the eager run");
    const char *env = getenv("FACEGRAPH_CUDA_GRAPH_BRANCHES");
    if (cp->d_counts || (env && strcmp(env, "0") == 0))
        goto done;
    /* the branched capture: the chain stays adopted unless the branches replay right and faster */
    cudaGraph_t chain = cp->graph;
    cudaGraphExec_t chain_exec = cp->exec;
    float chain_ms = replay_ms(cp, chain_exec);
    cp->graph = NULL;
    cp->exec = NULL;
    int branched_kernels = 0, ok = capture_graph(cp, 1, &width, &branched_kernels) == 0 && width > 1;
    if (ok)
        ok = replay_matches(cp, inputs, outputs, eager, &st) == 1;
    float branched_ms = ok ? replay_ms(cp, cp->exec) : -1.0f;
    const int forced = env && strcmp(env, "1") == 0; /* tests: the branches whenever they replay right */
    if (ok && chain_ms >= 0.0f && branched_ms >= 0.0f && (branched_ms < chain_ms || forced)) {
        cudaGraphExecDestroy(chain_exec);
        cudaGraphDestroy(chain);
        cp->graph_branches = width;
        cp->kernels_per_run = branched_kernels;
        snprintf(cp->graph_reason, sizeof cp->graph_reason,
                 "captured with %d parallel branches (%.3f ms, one chain %.3f ms); replay validated bit-exact "
                 "against the eager run",
                 width, branched_ms, chain_ms);
    } else {
        if (cp->exec)
            cudaGraphExecDestroy(cp->exec);
        if (cp->graph)
            cudaGraphDestroy(cp->graph);
        cp->graph = chain;
        cp->exec = chain_exec;
        cp->graph_state = 1; /* a failed branched capture or replay leaves the validated chain */
        if (ok)
            snprintf(cp->graph_reason, sizeof cp->graph_reason,
                     "captured as one chain (%.3f ms, %d parallel branches %.3f ms); replay validated bit-exact "
                     "against the eager run",
                     chain_ms, width, branched_ms);
        else
            snprintf(cp->graph_reason, sizeof cp->graph_reason,
                     "captured as one chain (parallel branches: %s); replay validated bit-exact against the eager run",
                     width > 1 ? "replay differed or failed" : "nothing to overlap");
    }
done:
    free(eager);
    return st;
}

fg_status *cuda_plan_run(cuda_plan *cp, const fg_tensor *inputs, fg_tensor *outputs)
{
    plan *p = cp->p;
    if (!plan_matches_signature(p, inputs, p->n_inputs)) /* a replay must never see other shapes */
        return fg_error(FG_ERR_INTERNAL, "the inputs do not match the signature this GPU plan was made for");
    int on_device = p->n_inputs > 0 && inputs[0].location == FG_DEVICE;
    for (int i = 0; i < p->n_inputs; i++)
        if ((inputs[i].location == FG_DEVICE) != on_device)
            return fg_error(FG_ERR_INVALID_ARGUMENT, "inputs must all be in host memory or all on the GPU");
    if (on_device)
        for (int i = 0; i < p->n_outputs; i++) {
            const plan_value *v = &p->values[p->outputs[i]];
            if (v->bounded && v->bound_axis != 0)
                return fg_error(FG_ERR_UNSUPPORTED,
                                "output %d has a data-dependent length along axis %d, which GPU-resident outputs "
                                "cannot return densely; pass host tensors",
                                i, v->bound_axis);
        }
    cudaError_t err = cudaSetDevice(cp->dev->id);
    if (err != cudaSuccess)
        return cuda_error(NULL, err, "selecting the GPU");
    fg_status *st;
    if (cp->graph_state == 1) {
        st = run_once(cp, 1, inputs, !on_device, outputs);
    } else if (cp->graph_state == 0 && cp->runs >= 2) {
        st = try_graph(cp, inputs, outputs);
        if (!st && cp->graph_state == -1 && cp->options.graph_mode == CUDA_GRAPH_ON)
            st = fg_error(FG_ERR_UNSUPPORTED, "--cuda-graph on: this model cannot run as a CUDA graph: %s",
                          cp->graph_reason);
        if (!st && on_device)
            collect_outputs(cp, 0, outputs);
    } else {
        st = run_once(cp, 0, inputs, !on_device, outputs);
    }
    if (!st)
        cp->runs++;
    return st;
}

void cuda_plan_get_stats(const cuda_plan *cp, cuda_plan_stats *s)
{
    memset(s, 0, sizeof *s);
    s->graph_adopted = cp->graph_state == 1;
    s->graph_tried = cp->graph_state != 0;
    snprintf(s->graph_reason, sizeof s->graph_reason, "%s", cp->graph_reason);
    s->kernels_per_run = cp->kernels_per_run;
    s->arena_bytes = cp->p->arena_bytes;
    s->runs = cp->runs;
    s->device_ms = cp->device_ms;
}

fg_status *cuda_plan_profile(cuda_plan *cp, const fg_tensor *inputs, fg_tensor *outputs, double *step_ms)
{
    plan *p = cp->p;
    if (!plan_matches_signature(p, inputs, p->n_inputs))
        return fg_error(FG_ERR_INTERNAL, "the inputs do not match the signature this GPU plan was made for");
    cudaEvent_t *events = calloc((size_t)p->n_steps + 1, sizeof *events);
    if (!events)
        return fg_error(FG_ERR_OUT_OF_MEMORY, "out of host memory");
    fg_status *st = NULL;
    for (int k = 0; k <= p->n_steps && !st; k++)
        if (cudaEventCreate(&events[k]) != cudaSuccess)
            st = fg_error(FG_ERR_DEVICE, "cannot create CUDA events for profiling");
    if (!st)
        st = enqueue_inputs(cp, inputs);
    if (!st)
        st = enqueue_steps(cp, NULL, events);
    if (!st)
        st = enqueue_outputs(cp, 1);
    if (!st)
        st = sync(cp);
    for (int k = 0; !st && k < p->n_steps; k++) {
        float ms = 0;
        cudaEventElapsedTime(&ms, events[k], events[k + 1]);
        step_ms[k] = ms;
    }
    if (!st)
        collect_outputs(cp, 1, outputs);
    for (int k = 0; k <= p->n_steps; k++)
        if (events[k])
            cudaEventDestroy(events[k]);
    free(events);
    return st;
}
