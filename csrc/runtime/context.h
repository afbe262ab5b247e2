/* A context: one configuration of a model, laid out in one arena. context.c creates it
 * (configuration checks, the arena's region list), executor.c runs it. */
#ifndef MNV3_CONTEXT_H
#define MNV3_CONTEXT_H

#include "kernels/kernels.h"
#include "pack.h"
#include "plan/plan.h"
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
    /* Quantized models: the input as int8 NHWC bytes, and each step's pool parameters
     * (the SE squeeze of a depthwise step, the global pool of the last conv). */
    int8_t *q_input;
    mnv3_qpool *q_pools;
    mnv3_tap_fn tap;
    void *tap_user;
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

/* The same for quantized models: int8 rows, one byte per activation (qexecutor.c). The run
 * reads ctx->q_input and returns the int8 logits (in the context's scratch, valid until
 * the next run); the pooled features stay in ctx->features as bytes. mnv3_q8_run_float()
 * is mnv3_run() of a quantized model for one image (qapi.c). */
mnv3_status mnv3_q8_executor_needs(const mnv3_model *m, const mnv3_kernels *k,
                                   const mnv3_step *steps, uint32_t num_steps,
                                   mnv3_scratch_needs *needs, mnv3_error *error);
void mnv3_q8_executor_prepare(mnv3_context *ctx);
const int8_t *mnv3_q8_executor_run(mnv3_context *ctx);
void mnv3_q8_run_float(mnv3_context *ctx, const float *input, float *logits, float *features);

/* How the executor splits layers, shared with the int8 executor. */
void mnv3_exec_split(uint32_t total, uint32_t parts, uint32_t part, uint32_t align, uint32_t *b,
                     uint32_t *e);
uint32_t mnv3_exec_tasks_for(const mnv3_context *ctx, uint64_t macs, uint32_t units);
uint32_t mnv3_exec_pool_slices(const mnv3_step *s);
uint64_t mnv3_exec_now_ns(void);
/* The pixel ranges pointwise task `task` of an m_tasks x n_tasks grid computes: its share
 * of the rows, or with channel-sum slices one range per slice it owns (the slice's index
 * in p->slice), and its share of the prefetch ranges. First call with next = 0, then
 * next = 1 until it returns 0. */
typedef struct mnv3_pixel_range {
    size_t begin, end;
    uint32_t slice, part, parts;
} mnv3_pixel_range;
int mnv3_exec_pixel_ranges(const mnv3_step *s, uint32_t task, uint32_t tasks, uint32_t m_tasks,
                           uint32_t n_tasks, uint32_t slices, int next, mnv3_pixel_range *p);
/* A fused block's band walk over output rows [first, last): per band, band_start(), then
 * expand() of the input rows it needs that the ring lacks (never across the ring's wrap),
 * then depthwise() of the band's output rows. */
typedef struct mnv3_band_walk {
    void *arg;
    void (*band_start)(void *arg);
    void (*expand)(void *arg, uint32_t row, uint32_t n, uint32_t band);
    void (*depthwise)(void *arg, uint32_t begin, uint32_t end);
} mnv3_band_walk;
void mnv3_exec_fused_bands(const mnv3_step *s, uint32_t first, uint32_t last,
                           const mnv3_band_walk *w);
/* Pointwise task grid: row tasks x output-panel tasks (row tasks at most `slices` when
 * non-zero). */
void mnv3_exec_grid(const mnv3_context *ctx, const mnv3_step *s, uint32_t nr, uint32_t slices,
                    uint32_t *m_tasks, uint32_t *n_tasks);

#endif
