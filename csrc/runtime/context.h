/* A context: one configuration of a model, laid out in one arena. context.c creates it
 * (configuration checks, the arena's region list) and is the entry point of a run;
 * executor.c runs the steps; network.c holds what differs between float and int8 networks
 * around the kernels (the input the stem reads, pooling channel sums, the outputs). */
#ifndef MNV3_CONTEXT_H
#define MNV3_CONTEXT_H

#include "kernels/kernels.h"
#include "pack.h"
#include "plan/plan.h"
#include "threads.h"

/* Scratch the steps ask for; each step kind states its own needs (executor.c), the arena
 * holds the largest of each. Vectors and sums count 4-byte elements, enough for a float
 * or an int32 (an int8 network's vectors use a byte of each). */
typedef struct mnv3_scratch_needs {
    size_t sums;                 /* partial channel sums, slices x channels */
    size_t vector;               /* the longest squeeze-excite vector */
    size_t features;             /* the pooled feature vector */
    size_t head;                 /* the widest classifier output */
    size_t workspace_bytes;      /* per thread: the widest row workspace */
    size_t ring_bytes;           /* per thread: a fused expansion's ring of rows */
    size_t input_bytes;          /* the stem's input, when it is not the caller's image */
    size_t params_bytes;         /* every conv's row parameters, each on a cache line */
} mnv3_scratch_needs;

/* What a step's rows read besides the activations: each conv's packed weights (the
 * model's) and row parameters (the context's, prepared once when it is made); an SE step
 * has two convs, reduce and expand. And the later weights its pointwise rows pull into the
 * caches while they compute. */
#define MNV3_STEP_PREFETCH_RANGES 8
typedef struct mnv3_step_binding {
    const void *packed[2];
    const void *params[2];
    mnv3_prefetch_range prefetch[MNV3_STEP_PREFETCH_RANGES];
    uint32_t prefetch_count;
} mnv3_step_binding;

/* Where the stem reads one image: element (y, x, c) at
 * data[y*row_stride + x*col_stride + c*chan_stride], elements of the stem row's input type. */
typedef struct mnv3_stem_input {
    const void *data;
    size_t row_stride, col_stride, chan_stride;
} mnv3_stem_input;

/* Called after every step that produces data, with the data writable (calibration: the
 * network observed layer by layer). Not part of the public API. */
typedef void (*mnv3_observer_fn)(void *user, mnv3_context *ctx, uint32_t step, void *data,
                                 size_t elements);

typedef struct mnv3_network_ops mnv3_network_ops;

struct mnv3_context {
    const mnv3_model *model;
    mnv3_kernels k;
    const mnv3_network_ops *ops;
    mnv3_arithmetic arithmetic;
    size_t act_bytes;            /* one activation between layers */
    size_t vec_bytes;            /* one element of a pooled, SE or classifier vector */
    const mnv3_packed_weights *packed;
    mnv3_config cfg;
    uint32_t threads;
    mnv3_pool *pool;
    mnv3_step *steps;
    mnv3_step_binding *bind;
    uint32_t num_steps;
    mnv3_tensor *tensors;
    uint32_t num_tensors;
    unsigned char *activations;
    uint64_t *layer_ns;
    unsigned char *params;       /* the rows' parameters of every conv */
    void *sums;                  /* slices x channels: partial channel sums per image slice */
    void *se_pooled, *se_hidden, *se_gate;
    void *features;
    void *head_a, *head_b;
    const void *logits;          /* after a run: the head's output (num_classes elements) */
    unsigned char *workspace;    /* threads x workspace_stride bytes */
    size_t workspace_stride;
    unsigned char *rings;        /* threads x ring_stride bytes: fused expansions' rows */
    size_t ring_stride;
    uint64_t *fused_ns;          /* per thread: time in fused expansions (profiling) */
    unsigned char *net_input;    /* the stem's input, when it is not the caller's image */
    mnv3_q8_pool *pools;           /* int8 networks: each pooling step's parameters */
    mnv3_tap_fn tap;
    void *tap_user;
    mnv3_observer_fn observer;
    void *observer_user;
    void *owned_arena;
    mnv3_arena_plan plan;
};

/* What differs between float and int8 networks around the kernels, resolved once per
 * context (network.c). */
struct mnv3_network_ops {
    /* Integer channel sums: a task may put the sums of all its rows in one slice, which
     * any grouping of rows gives the same bytes from. Float sums are added per row, in
     * row order, so that the result does not depend on the thread count. */
    int exact_sums;
    /* Scratch beyond what the steps ask for. */
    void (*needs)(const mnv3_model *m, const mnv3_config *cfg, mnv3_scratch_needs *n);
    /* At context creation, after the steps are placed. */
    void (*prepare)(mnv3_context *ctx);
    /* The stem's input from one float image in the configured layout. */
    void (*input)(mnv3_context *ctx, const float *image, mnv3_stem_input *in);
    /* dst = the pooled vector of step s from its `slices` partial channel sums. */
    void (*pool)(mnv3_context *ctx, const mnv3_step *s, uint32_t slices, void *dst);
    /* The last run's logits and pooled features as floats. */
    void (*logits)(const mnv3_context *ctx, float *out);
    void (*features)(const mnv3_context *ctx, float *out);
};

/* A context (its arena allocated) whose plan keeps every conv's output in a tensor of its
 * own, reporting each step's result to fn(user, ...) during a run. */
mnv3_status mnv3_context_create_observed(const mnv3_model *m, const mnv3_config *cfg,
                                         mnv3_observer_fn fn, void *user, mnv3_context **out,
                                         mnv3_error *error);

extern const mnv3_network_ops mnv3_network_float;
extern const mnv3_network_ops mnv3_network_q8;

/* An int8 network's stem input from one image of the model's own input bytes (uint8 or
 * int8, as the model says) in the configured layout. */
void mnv3_q8_bytes_input(mnv3_context *ctx, const uint8_t *image, mnv3_stem_input *in);

/* Scratch every step of the plan needs, for kernel rows k. */
mnv3_status mnv3_executor_needs(const mnv3_model *m, const mnv3_kernels *k,
                                const mnv3_step *steps, uint32_t num_steps,
                                mnv3_scratch_needs *needs, mnv3_error *error);
/* Binds the steps to the model's packed weights, prepares the rows' parameters in
 * ctx->params and makes the prefetch schedule. */
void mnv3_executor_prepare(mnv3_context *ctx);
/* One image, read from `in`: the logits in ctx->logits, the pooled features in
 * ctx->features. */
void mnv3_executor_run(mnv3_context *ctx, const mnv3_stem_input *in);
/* Channel-sum slices of a pooling step: a depthwise step's per output row, the last
 * conv's per fixed slice of pixels. */
uint32_t mnv3_exec_pool_slices(const mnv3_step *s);

#endif
