/* A context: one configuration of a model, laid out in one arena. context.c creates it
 * (configuration checks, the arena's region list), executor.c runs it. */
#ifndef MNV3_CONTEXT_H
#define MNV3_CONTEXT_H

#include "kernels/kernels.h"
#include "pack.h"
#include "plan.h"
#include "threads.h"

/* Scratch the steps ask for; each step kind states its own needs (executor.c), the arena
 * holds the largest of each. Counts are elements unless named bytes. */
typedef struct mnv3_scratch_needs {
    size_t sums;                 /* floats: partial channel sums, slices x channels */
    size_t vector;               /* floats: the longest squeeze-excite vector */
    size_t features;             /* floats: the pooled feature vector */
    size_t head;                 /* floats: the widest classifier output */
    size_t workspace_bytes;      /* per thread: a pointwise driver's workspace */
    size_t ring;                 /* floats per thread: a fused expansion's ring */
} mnv3_scratch_needs;

struct mnv3_context {
    const mnv3_model *model;
    mnv3_kernels k;
    mnv3_arithmetic arithmetic;
    const mnv3_packed_weights *packed;
    mnv3_config cfg;
    uint32_t threads;
    mnv3_pool *pool;
    mnv3_step *steps;
    uint32_t num_steps;
    mnv3_tensor *tensors;
    uint32_t num_tensors;
    unsigned char *activations;
    uint64_t *layer_ns;
    float *sums;                 /* slices x channels: partial channel sums per image slice */
    float *se_mean, *se_hidden, *se_gate;
    float *features;
    float *head_a, *head_b;
    unsigned char *workspace;    /* threads x workspace_stride bytes */
    size_t workspace_stride;
    float *rings;                /* threads x ring_floats: fused expansions' rows */
    size_t ring_floats;
    uint64_t *fused_ns;          /* per thread: time in fused expansions (profiling) */
    void *owned_arena;
    mnv3_arena_plan plan;
};

/* Scratch every step of the plan needs, for kernel rows k. */
mnv3_status mnv3_executor_needs(const mnv3_model *m, const mnv3_kernels *k,
                                const mnv3_step *steps, uint32_t num_steps,
                                mnv3_scratch_needs *needs, mnv3_error *error);
/* Points the steps at the model's packed weights and makes the prefetch schedule. */
void mnv3_executor_prepare(mnv3_context *ctx);
/* One image. */
void mnv3_executor_run(mnv3_context *ctx, const float *input, float *logits, float *features);

#endif
