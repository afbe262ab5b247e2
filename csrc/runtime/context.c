/* Contexts: configuration checks, the arena's region list, creation and the run entry
 * point. The packed weights belong to the model (pack.c); the executor (executor.c) runs
 * the steps. mnv3_run() never allocates. */
#include <stdlib.h>
#include <string.h>

#include "plan/arena.h"
#include "base/checked.h"
#include "context.h"
#include "base/alloc.h"

static mnv3_status check_config(const mnv3_model *m, const mnv3_config *c, mnv3_error *e) {
    size_t image;
    if (!m || !c) return mnv3_set_error(e, MNV3_ERR_NULL_ARGUMENT, "model or config is NULL");
    if (c->batch < 1 || c->batch > MNV3_MAX_BATCH)
        return mnv3_set_error(e, MNV3_ERR_INVALID_ARGUMENT, "batch %u not in 1..%u", c->batch,
                              MNV3_MAX_BATCH);
    if (c->height < MNV3_MIN_INPUT_SIZE || c->height > MNV3_MAX_INPUT_SIZE ||
        c->width < MNV3_MIN_INPUT_SIZE || c->width > MNV3_MAX_INPUT_SIZE)
        return mnv3_set_error(e, MNV3_ERR_INVALID_ARGUMENT,
                              "input %ux%u: each side must be in %u..%u", c->height, c->width,
                              MNV3_MIN_INPUT_SIZE, MNV3_MAX_INPUT_SIZE);
    /* mnv3_run's buffer lengths are element counts in size_t: a batch whose input cannot
     * be counted (a 32-bit board) can never be given, so it is refused here. */
    if (!mnv3_size_mul4(c->batch, 3, c->height, c->width, &image) ||
        !mnv3_size_mul(image, sizeof(float), &image))
        return mnv3_set_error(e, MNV3_ERR_SIZE_OVERFLOW,
                              "a batch of %u images of 3x%ux%u floats does not fit in memory",
                              c->batch, c->height, c->width);
    if ((unsigned)c->layout > MNV3_LAYOUT_NHWC)
        return mnv3_set_error(e, MNV3_ERR_INVALID_ARGUMENT, "layout %u unknown",
                              (unsigned)c->layout);
    if (c->threads > MNV3_MAX_THREADS)
        return mnv3_set_error(e, MNV3_ERR_INVALID_ARGUMENT, "threads %u exceeds %u", c->threads,
                              MNV3_MAX_THREADS);
    if ((unsigned)c->isa >= mnv3_isa_count())
        return mnv3_set_error(e, MNV3_ERR_INVALID_ARGUMENT, "isa %u unknown", (unsigned)c->isa);
    if ((unsigned)c->precision > MNV3_PRECISION_RELAXED)
        return mnv3_set_error(e, MNV3_ERR_INVALID_ARGUMENT, "precision %u unknown",
                              (unsigned)c->precision);
    if (c->isa != MNV3_ISA_AUTO && !mnv3_isa_available(c->isa))
        return mnv3_set_error(e, MNV3_ERR_UNSUPPORTED,
                              "kernel set '%s' is not in this build or not supported by this CPU",
                              mnv3_isa_name(c->isa));
    return MNV3_OK;
}

static uint32_t effective_threads(const mnv3_config *c) {
    uint32_t t = c->threads ? c->threads : 1;
    uint32_t max = mnv3_pool_max_threads();
    return t > max ? max : t;
}

/* Everything a context is made from, before it has an arena. */
typedef struct blueprint {
    const mnv3_model *model;
    mnv3_config cfg;
    mnv3_kernels k;
    mnv3_arithmetic arithmetic;
    uint32_t threads;
    mnv3_step steps[MNV3_MAX_STEPS];
    mnv3_tensor tensors[MNV3_MAX_TENSORS];
    uint32_t ns, nt;
    mnv3_scratch_needs needs;
    size_t activations, activation_bound;
    size_t packed_bytes;
} blueprint;

/* Where the regions land; copied into the context once placed. */
typedef struct placement {
    mnv3_context *ctx;
    mnv3_step *steps;
    mnv3_tensor *tensors;
    uint64_t *layer_ns;
    void *pool;
    float *sums, *vectors, *features, *head;
    unsigned char *workspace;
    float *rings;
    uint64_t *fused_ns;
    int8_t *q_input;
    mnv3_qpool *q_pools;
    unsigned char *activations;
} placement;

#define REGION_COUNT 15

/* The arena, as data: every region, its part and its size. */
static uint32_t arena_regions(const blueprint *bp, placement *pl, mnv3_region *r) {
    const uint32_t t = bp->threads;
    const mnv3_scratch_needs *n = &bp->needs;
    const size_t ws_stride = (n->workspace_bytes + 63u) & ~(size_t)63u;
    const size_t ring_stride = ((n->ring + 15u) & ~(size_t)15u) * sizeof(float);
    const int q = bp->model->quantized;
    /* check_config proved the input's element count fits */
    const size_t q_input = q ? (size_t)3 * bp->cfg.height * bp->cfg.width : 0;
    const mnv3_region list[REGION_COUNT] = {
        {"context", MNV3_PART_CONTEXT, 1, sizeof(mnv3_context), (void **)&pl->ctx},
        {"steps", MNV3_PART_CONTEXT, bp->ns, sizeof(mnv3_step), (void **)&pl->steps},
        {"tensors", MNV3_PART_CONTEXT, bp->nt, sizeof(mnv3_tensor), (void **)&pl->tensors},
        {"layer times", MNV3_PART_CONTEXT, bp->ns, sizeof(uint64_t), (void **)&pl->layer_ns},
        {"thread pool", MNV3_PART_CONTEXT, 1, mnv3_pool_bytes(t), &pl->pool},
        {"pool parameters", MNV3_PART_CONTEXT, q ? bp->ns : 0, sizeof(mnv3_qpool),
         (void **)&pl->q_pools},
        {"channel sums", MNV3_PART_SCRATCH, n->sums, sizeof(float), (void **)&pl->sums},
        {"squeeze-excite vectors", MNV3_PART_SCRATCH, 3 * n->vector, sizeof(float),
         (void **)&pl->vectors},
        {"features", MNV3_PART_SCRATCH, n->features, sizeof(float), (void **)&pl->features},
        {"classifier vectors", MNV3_PART_SCRATCH, 2 * n->head, sizeof(float), (void **)&pl->head},
        {"pointwise workspaces", MNV3_PART_SCRATCH, t, ws_stride, (void **)&pl->workspace},
        {"expansion rings", MNV3_PART_SCRATCH, t, ring_stride, (void **)&pl->rings},
        {"fused timings", MNV3_PART_SCRATCH, t, sizeof(uint64_t), (void **)&pl->fused_ns},
        {"quantized input", MNV3_PART_SCRATCH, q_input, 1, (void **)&pl->q_input},
        {"activations", MNV3_PART_ACTIVATIONS, 1, bp->activations, (void **)&pl->activations},
    };
    memcpy(r, list, sizeof list);
    return REGION_COUNT;
}

static mnv3_status measure(const blueprint *bp, mnv3_arena_plan *plan, mnv3_error *e) {
    mnv3_region r[REGION_COUNT];
    placement pl;
    size_t parts[MNV3_PART_COUNT];
    const uint32_t n = arena_regions(bp, &pl, r);
    memset(plan, 0, sizeof *plan);
    MNV3_TRY(mnv3_arena_layout(r, n, NULL, parts, &plan->total, e));
    plan->context = parts[MNV3_PART_CONTEXT];
    plan->scratch = parts[MNV3_PART_SCRATCH];
    plan->activations = parts[MNV3_PART_ACTIVATIONS];
    plan->activation_lower_bound = bp->activation_bound;
    plan->packed_weights = bp->packed_bytes;
    plan->model_weights = bp->model->owned_weight_bytes;
    plan->isa = bp->k.isa;
    return MNV3_OK;
}

static mnv3_status make_blueprint(const mnv3_model *m, const mnv3_config *cfg, blueprint **out,
                                  mnv3_error *e) {
    mnv3_isa isa;
    mnv3_dtype wt;
    blueprint *bp;
    mnv3_status st;
    mnv3_dtype elem;
    *out = NULL;
    MNV3_TRY(check_config(m, cfg, e));
    bp = (blueprint *)calloc(1, sizeof *bp);
    if (!bp) return mnv3_set_error(e, MNV3_ERR_OUT_OF_MEMORY, "planning scratch");
    bp->model = m;
    bp->cfg = *cfg;
    bp->threads = effective_threads(cfg);
    isa = cfg->isa == MNV3_ISA_AUTO ? mnv3_isa_best() : cfg->isa;
    /* A quantized model runs int8 rows on one-byte activations. A float one runs f32 rows;
     * float16 weights take the rows that widen them as they load (or pack) them; relaxed
     * precision the rows whose products are float16 or bf16, where the set has them for
     * this CPU (their act_type names the arithmetic). The float16 rows also store the
     * activations as float16, so the network is planned at two bytes per element; the
     * bf16 rows keep float32 activations. */
    elem = m->quantized ? MNV3_DTYPE_I8 : MNV3_DTYPE_F32;
    wt = m->quantized ? elem : m->stem.weight_type == MNV3_DTYPE_F16 ? MNV3_DTYPE_F16 : elem;
    bp->arithmetic = MNV3_ARITHMETIC_FP32;
    if (cfg->precision == MNV3_PRECISION_RELAXED && !m->quantized) {
        if (mnv3_kernels_resolve(isa, wt, MNV3_DTYPE_F16, &bp->k))
            bp->arithmetic = MNV3_ARITHMETIC_FP16;
        else if (mnv3_kernels_resolve(isa, wt, MNV3_DTYPE_BF16, &bp->k))
            bp->arithmetic = MNV3_ARITHMETIC_BF16;
    }
    if (bp->arithmetic == MNV3_ARITHMETIC_FP32 && !mnv3_kernels_resolve(isa, wt, elem, &bp->k)) {
        st = mnv3_set_error(e, MNV3_ERR_UNSUPPORTED, "kernel set '%s' unavailable",
                            mnv3_isa_name(isa));
        goto fail;
    }
    if (bp->arithmetic == MNV3_ARITHMETIC_FP16) elem = MNV3_DTYPE_F16;
    st = mnv3_plan_steps(m, cfg->height, cfg->width, elem, bp->steps, &bp->ns, bp->tensors,
                         &bp->nt, e);
    if (st == MNV3_OK)
        st = m->quantized ? mnv3_q8_executor_needs(m, &bp->k, bp->steps, bp->ns, &bp->needs, e)
                          : mnv3_executor_needs(m, &bp->k, bp->steps, bp->ns, &bp->needs, e);
    if (st == MNV3_OK) st = mnv3_packed_bytes(m, &bp->k, &bp->packed_bytes, e);
    if (st != MNV3_OK) goto fail;
    mnv3_plan_offsets(bp->tensors, bp->nt, &bp->activations, &bp->activation_bound);
    *out = bp;
    return MNV3_OK;
fail:
    free(bp);
    return st;
}

mnv3_status mnv3_arena_plan_for(const mnv3_model *m, const mnv3_config *cfg,
                                mnv3_arena_plan *plan, mnv3_error *e) {
    blueprint *bp;
    mnv3_status st;
    if (!plan) return mnv3_set_error(e, MNV3_ERR_NULL_ARGUMENT, "plan is NULL");
    MNV3_TRY(make_blueprint(m, cfg, &bp, e));
    st = measure(bp, plan, e);
    free(bp);
    return st;
}

mnv3_status mnv3_arena_size(const mnv3_model *m, const mnv3_config *cfg, size_t *bytes,
                            mnv3_error *e) {
    mnv3_arena_plan plan;
    mnv3_status st;
    if (!bytes) return mnv3_set_error(e, MNV3_ERR_NULL_ARGUMENT, "bytes is NULL");
    st = mnv3_arena_plan_for(m, cfg, &plan, e);
    *bytes = st == MNV3_OK ? plan.total : 0;
    return st;
}

void mnv3_config_init(mnv3_config *c, const mnv3_model *m) {
    if (!c) return;
    memset(c, 0, sizeof *c);
    c->batch = 1;
    c->height = c->width = 224;
    if (m && m->preprocess.height >= MNV3_MIN_INPUT_SIZE && m->preprocess.width >= MNV3_MIN_INPUT_SIZE &&
        m->preprocess.height <= MNV3_MAX_INPUT_SIZE && m->preprocess.width <= MNV3_MAX_INPUT_SIZE) {
        c->height = m->preprocess.height;
        c->width = m->preprocess.width;
    }
    c->layout = MNV3_LAYOUT_NCHW;
    c->threads = 1;
    c->isa = MNV3_ISA_AUTO;
}

/* Places the regions in `base` and fills the context from the blueprint. */
static mnv3_context *place(const blueprint *bp, const mnv3_arena_plan *plan,
                           const mnv3_packed_weights *packed, unsigned char *base) {
    mnv3_region r[REGION_COUNT];
    placement pl;
    size_t parts[MNV3_PART_COUNT], total;
    const uint32_t n = arena_regions(bp, &pl, r);
    mnv3_context *ctx;
    memset(&pl, 0, sizeof pl);
    if (mnv3_arena_layout(r, n, base, parts, &total, NULL) != MNV3_OK) return NULL;
    MNV3_ASSERT(total == plan->total);
    ctx = pl.ctx;
    memset(ctx, 0, sizeof *ctx);
    ctx->model = bp->model;
    ctx->k = bp->k;
    ctx->arithmetic = bp->arithmetic;
    ctx->packed = packed;
    ctx->cfg = bp->cfg;
    ctx->threads = bp->threads;
    ctx->plan = *plan;
    ctx->steps = pl.steps;
    memcpy(ctx->steps, bp->steps, bp->ns * sizeof(mnv3_step));
    ctx->num_steps = bp->ns;
    ctx->tensors = pl.tensors;
    memcpy(ctx->tensors, bp->tensors, bp->nt * sizeof(mnv3_tensor));
    ctx->num_tensors = bp->nt;
    ctx->layer_ns = pl.layer_ns;
    memset(ctx->layer_ns, 0, bp->ns * sizeof(uint64_t));
    ctx->pool = (mnv3_pool *)pl.pool;
    ctx->sums = pl.sums;
    ctx->se_mean = pl.vectors;
    ctx->se_hidden = pl.vectors + bp->needs.vector;
    ctx->se_gate = pl.vectors + 2 * bp->needs.vector;
    ctx->features = pl.features;
    ctx->head_a = pl.head;
    ctx->head_b = pl.head + bp->needs.head;
    ctx->workspace = pl.workspace;
    ctx->workspace_stride = (bp->needs.workspace_bytes + 63u) & ~(size_t)63u;
    ctx->rings = pl.rings;
    ctx->ring_floats = (bp->needs.ring + 15u) & ~(size_t)15u;
    ctx->fused_ns = pl.fused_ns;
    ctx->activations = pl.activations;
    ctx->q_input = pl.q_input;
    ctx->q_pools = pl.q_pools;
    if (bp->model->quantized)
        mnv3_q8_executor_prepare(ctx);
    else
        mnv3_executor_prepare(ctx);
    return ctx;
}

mnv3_status mnv3_context_create(const mnv3_model *m, const mnv3_config *cfg, void *arena,
                                size_t arena_size, mnv3_context **out, mnv3_error *e) {
    const mnv3_packed_weights *packed;
    blueprint *bp;
    mnv3_arena_plan plan;
    mnv3_context *ctx;
    unsigned char *base;
    void *owned = NULL;
    mnv3_status st;
    if (!out) return mnv3_set_error(e, MNV3_ERR_NULL_ARGUMENT, "out_context is NULL");
    *out = NULL;
    MNV3_TRY(make_blueprint(m, cfg, &bp, e));
    st = measure(bp, &plan, e);
    if (st != MNV3_OK) goto done;
    if (arena) {
        if (((uintptr_t)arena & (MNV3_ARENA_ALIGNMENT - 1)) != 0) {
            st = mnv3_set_error(e, MNV3_ERR_ARENA_MISALIGNED, "arena at %p is not %d-byte aligned",
                                arena, MNV3_ARENA_ALIGNMENT);
            goto done;
        }
        if (arena_size < plan.total) {
            st = mnv3_set_error(e, MNV3_ERR_ARENA_TOO_SMALL,
                                "arena has %zu bytes, this configuration needs %zu", arena_size,
                                plan.total);
            goto done;
        }
        base = (unsigned char *)arena;
    } else {
        base = (unsigned char *)mnv3_alloc_aligned(plan.total, &owned);
        if (!base) {
            st = mnv3_set_error(e, MNV3_ERR_OUT_OF_MEMORY, "arena of %zu bytes", plan.total);
            goto done;
        }
    }
    st = mnv3_packed_get(m, &bp->k, &packed, e);
    if (st != MNV3_OK) goto done;
    ctx = place(bp, &plan, packed, base);
    ctx->owned_arena = owned;
    st = mnv3_pool_init(ctx->pool, ctx->threads, &ctx->pool);
    if (st != MNV3_OK) {
        st = mnv3_set_error(e, st, "could not start %u worker threads", ctx->threads);
        goto done;
    }
    owned = NULL;
    *out = ctx;
done:
    free(owned);
    free(bp);
    return st;
}

void mnv3_context_free(mnv3_context *ctx) {
    if (!ctx) return;
    mnv3_pool_destroy(ctx->pool);
    free(ctx->owned_arena);
}

mnv3_isa mnv3_context_isa(const mnv3_context *ctx) { return ctx ? ctx->k.isa : MNV3_ISA_AUTO; }

mnv3_arithmetic mnv3_context_arithmetic(const mnv3_context *ctx) {
    return ctx ? ctx->arithmetic : MNV3_ARITHMETIC_FP32;
}

const char *mnv3_arithmetic_name(mnv3_arithmetic a) {
    switch (a) {
    case MNV3_ARITHMETIC_FP32: return "fp32";
    case MNV3_ARITHMETIC_FP16: return "fp16";
    case MNV3_ARITHMETIC_BF16: return "bf16";
    default: return "unknown";
    }
}

const char *mnv3_context_int8_kernels(const mnv3_context *ctx) {
    return ctx && ctx->model->quantized && ctx->k.q8_set ? ctx->k.q8_set->name : NULL;
}
uint32_t mnv3_context_threads(const mnv3_context *ctx) { return ctx ? ctx->threads : 0; }

uint64_t mnv3_context_layer_ns(const mnv3_context *ctx, uint32_t index) {
    if (!ctx || index >= ctx->num_steps) return 0;
    return ctx->layer_ns[index];
}

mnv3_status mnv3_run(mnv3_context *ctx, const float *input, size_t input_len, float *logits,
                     size_t logits_len, float *features, size_t features_len) {
    size_t per_image, n, classes, fdim, want;
    uint32_t b;
    if (!ctx || !input) return MNV3_ERR_NULL_ARGUMENT;
    n = ctx->cfg.batch;
    classes = mnv3_model_classes(ctx->model);
    fdim = mnv3_model_feature_dim(ctx->model);
    /* check_config made sure the input counts fit; the outputs are checked here. */
    per_image = (size_t)3 * ctx->cfg.height * ctx->cfg.width;
    if (input_len != n * per_image) return MNV3_ERR_SHAPE;
    if ((logits == NULL) != (logits_len == 0) ||
        (logits && (!mnv3_size_mul(n, classes, &want) || logits_len != want)))
        return MNV3_ERR_SHAPE;
    if ((features == NULL) != (features_len == 0) ||
        (features && (!mnv3_size_mul(n, fdim, &want) || features_len != want)))
        return MNV3_ERR_SHAPE;
    for (b = 0; b < n; ++b)
        if (ctx->model->quantized)
            mnv3_q8_run_float(ctx, input + b * per_image, logits ? logits + b * classes : NULL,
                              features ? features + b * fdim : NULL);
        else
            mnv3_executor_run(ctx, input + b * per_image, logits ? logits + b * classes : NULL,
                              features ? features + b * fdim : NULL);
    return MNV3_OK;
}
