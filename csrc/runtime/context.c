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
    const mnv3_network_ops *ops;
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
    mnv3_step_binding *bind;
    mnv3_tensor *tensors;
    uint64_t *layer_ns;
    unsigned char *params;
    void *pool;
    mnv3_q8_pool *pools;
    unsigned char *sums, *vectors, *features, *head;
    unsigned char *workspace, *rings;
    uint64_t *fused_ns;
    unsigned char *net_input;
    unsigned char *activations;
} placement;

#define REGION_COUNT 17

static size_t stride_of(size_t bytes) { return (bytes + 63u) & ~(size_t)63u; }

/* The arena, as data: every region, its part and its size. Scratch vectors and sums are
 * counted in 4-byte elements (mnv3_scratch_needs). */
static uint32_t arena_regions(const blueprint *bp, placement *pl, mnv3_region *r) {
    const uint32_t t = bp->threads;
    const mnv3_scratch_needs *n = &bp->needs;
    const mnv3_region list[REGION_COUNT] = {
        {"context", MNV3_PART_CONTEXT, 1, sizeof(mnv3_context), (void **)&pl->ctx},
        {"steps", MNV3_PART_CONTEXT, bp->ns, sizeof(mnv3_step), (void **)&pl->steps},
        {"step bindings", MNV3_PART_CONTEXT, bp->ns, sizeof(mnv3_step_binding),
         (void **)&pl->bind},
        {"tensors", MNV3_PART_CONTEXT, bp->nt, sizeof(mnv3_tensor), (void **)&pl->tensors},
        {"layer times", MNV3_PART_CONTEXT, bp->ns, sizeof(uint64_t), (void **)&pl->layer_ns},
        {"row parameters", MNV3_PART_CONTEXT, 1, n->params_bytes, (void **)&pl->params},
        {"thread pool", MNV3_PART_CONTEXT, 1, mnv3_pool_bytes(t), &pl->pool},
        {"pool parameters", MNV3_PART_CONTEXT, bp->model->quantized ? bp->ns : 0,
         sizeof(mnv3_q8_pool), (void **)&pl->pools},
        {"channel sums", MNV3_PART_SCRATCH, n->sums, 4, (void **)&pl->sums},
        {"squeeze-excite vectors", MNV3_PART_SCRATCH, 3 * n->vector, 4, (void **)&pl->vectors},
        {"features", MNV3_PART_SCRATCH, n->features, 4, (void **)&pl->features},
        {"classifier vectors", MNV3_PART_SCRATCH, 2 * n->head, 4, (void **)&pl->head},
        {"row workspaces", MNV3_PART_SCRATCH, t, stride_of(n->workspace_bytes),
         (void **)&pl->workspace},
        {"expansion rings", MNV3_PART_SCRATCH, t, stride_of(n->ring_bytes), (void **)&pl->rings},
        {"fused timings", MNV3_PART_SCRATCH, t, sizeof(uint64_t), (void **)&pl->fused_ns},
        {"network input", MNV3_PART_SCRATCH, n->input_bytes, 1, (void **)&pl->net_input},
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

/* The rows for the model's weights and the configured precision: an int8 model runs int8
 * rows; a float one float32 rows, or under relaxed precision the rows whose products are
 * float16 or bf16 where the set has them for this CPU. */
static mnv3_status resolve_rows(const mnv3_model *m, const mnv3_config *cfg, mnv3_isa isa,
                                blueprint *bp, mnv3_error *e) {
    const mnv3_dtype wt = m->stem.weight_type;
    bp->arithmetic = MNV3_ARITHMETIC_FP32;
    if (m->quantized) {
        if (mnv3_kernels_resolve(isa, MNV3_DTYPE_I8, MNV3_DTYPE_I8, &bp->k)) return MNV3_OK;
    } else {
        if (cfg->precision == MNV3_PRECISION_RELAXED) {
            bp->arithmetic = MNV3_ARITHMETIC_FP16;
            if (mnv3_kernels_resolve(isa, wt, MNV3_DTYPE_F16, &bp->k)) return MNV3_OK;
            bp->arithmetic = MNV3_ARITHMETIC_BF16;
            if (mnv3_kernels_resolve(isa, wt, MNV3_DTYPE_BF16, &bp->k)) return MNV3_OK;
            bp->arithmetic = MNV3_ARITHMETIC_FP32;
        }
        if (mnv3_kernels_resolve(isa, wt, MNV3_DTYPE_F32, &bp->k)) return MNV3_OK;
    }
    return mnv3_set_error(e, MNV3_ERR_UNSUPPORTED, "kernel set '%s' unavailable",
                          mnv3_isa_name(isa));
}

static mnv3_status make_blueprint(const mnv3_model *m, const mnv3_config *cfg, uint32_t flags,
                                  blueprint **out, mnv3_error *e) {
    blueprint *bp;
    mnv3_status st;
    *out = NULL;
    MNV3_TRY(check_config(m, cfg, e));
    bp = (blueprint *)calloc(1, sizeof *bp);
    if (!bp) return mnv3_set_error(e, MNV3_ERR_OUT_OF_MEMORY, "planning scratch");
    bp->model = m;
    bp->cfg = *cfg;
    bp->threads = effective_threads(cfg);
    bp->ops = m->quantized ? &mnv3_network_q8 : &mnv3_network_float;
    st = resolve_rows(m, cfg, cfg->isa == MNV3_ISA_AUTO ? mnv3_isa_best() : cfg->isa, bp, e);
    if (st == MNV3_OK)
        st = mnv3_plan_steps(m, cfg->height, cfg->width, mnv3_kernels_act_type(&bp->k), flags,
                             bp->steps, &bp->ns, bp->tensors, &bp->nt, e);
    if (st == MNV3_OK) st = mnv3_executor_needs(m, &bp->k, bp->steps, bp->ns, &bp->needs, e);
    if (st == MNV3_OK) st = mnv3_packed_bytes(m, &bp->k, &bp->packed_bytes, e);
    if (st != MNV3_OK) {
        free(bp);
        return st;
    }
    bp->ops->needs(m, cfg, &bp->needs);
    mnv3_plan_offsets(bp->tensors, bp->nt, &bp->activations, &bp->activation_bound);
    *out = bp;
    return MNV3_OK;
}

mnv3_status mnv3_arena_plan_for(const mnv3_model *m, const mnv3_config *cfg,
                                mnv3_arena_plan *plan, mnv3_error *e) {
    blueprint *bp;
    mnv3_status st;
    if (!plan) return mnv3_set_error(e, MNV3_ERR_NULL_ARGUMENT, "plan is NULL");
    MNV3_TRY(make_blueprint(m, cfg, 0, &bp, e));
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
    const size_t vector = bp->needs.vector * 4u, head = bp->needs.head * 4u;
    mnv3_context *ctx;
    memset(&pl, 0, sizeof pl);
    if (mnv3_arena_layout(r, n, base, parts, &total, NULL) != MNV3_OK) return NULL;
    MNV3_ASSERT(total == plan->total);
    ctx = pl.ctx;
    memset(ctx, 0, sizeof *ctx);
    ctx->model = bp->model;
    ctx->k = bp->k;
    ctx->ops = bp->ops;
    ctx->arithmetic = bp->arithmetic;
    ctx->act_bytes = mnv3_dtype_size(mnv3_kernels_act_type(&bp->k));
    ctx->vec_bytes = bp->model->quantized ? 1u : sizeof(float);
    ctx->packed = packed;
    ctx->cfg = bp->cfg;
    ctx->threads = bp->threads;
    ctx->plan = *plan;
    ctx->steps = pl.steps;
    memcpy(ctx->steps, bp->steps, bp->ns * sizeof(mnv3_step));
    ctx->bind = pl.bind;
    ctx->num_steps = bp->ns;
    ctx->tensors = pl.tensors;
    memcpy(ctx->tensors, bp->tensors, bp->nt * sizeof(mnv3_tensor));
    ctx->num_tensors = bp->nt;
    ctx->layer_ns = pl.layer_ns;
    memset(ctx->layer_ns, 0, bp->ns * sizeof(uint64_t));
    ctx->params = pl.params;
    ctx->pool = (mnv3_pool *)pl.pool;
    ctx->pools = pl.pools;
    ctx->sums = pl.sums;
    ctx->se_pooled = pl.vectors;
    ctx->se_hidden = pl.vectors + vector;
    ctx->se_gate = pl.vectors + 2 * vector;
    ctx->features = pl.features;
    ctx->head_a = pl.head;
    ctx->head_b = pl.head + head;
    ctx->workspace = pl.workspace;
    ctx->workspace_stride = stride_of(bp->needs.workspace_bytes);
    ctx->rings = pl.rings;
    ctx->ring_stride = stride_of(bp->needs.ring_bytes);
    ctx->fused_ns = pl.fused_ns;
    ctx->net_input = pl.net_input;
    ctx->activations = pl.activations;
    mnv3_executor_prepare(ctx);
    ctx->ops->prepare(ctx);
    return ctx;
}

static mnv3_status create(const mnv3_model *m, const mnv3_config *cfg, uint32_t flags,
                          void *arena, size_t arena_size, mnv3_context **out, mnv3_error *e) {
    const mnv3_packed_weights *packed;
    blueprint *bp;
    mnv3_arena_plan plan;
    mnv3_context *ctx;
    unsigned char *base;
    void *owned = NULL;
    mnv3_status st;
    if (!out) return mnv3_set_error(e, MNV3_ERR_NULL_ARGUMENT, "out_context is NULL");
    *out = NULL;
    MNV3_TRY(make_blueprint(m, cfg, flags, &bp, e));
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

mnv3_status mnv3_context_create(const mnv3_model *m, const mnv3_config *cfg, void *arena,
                                size_t arena_size, mnv3_context **out, mnv3_error *e) {
    return create(m, cfg, 0, arena, arena_size, out, e);
}

mnv3_status mnv3_context_create_observed(const mnv3_model *m, const mnv3_config *cfg,
                                         mnv3_observer_fn fn, void *user, mnv3_context **out,
                                         mnv3_error *e) {
    MNV3_TRY(create(m, cfg, MNV3_PLAN_OBSERVABLE, NULL, 0, out, e));
    (*out)->observer = fn;
    (*out)->observer_user = user;
    return MNV3_OK;
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
    return ctx && ctx->model->quantized ? ctx->k.set[MNV3_ROW_POINTWISE]->name : NULL;
}

mnv3_status mnv3_context_set_tap(mnv3_context *ctx, mnv3_tap_fn fn, void *user) {
    if (!ctx) return MNV3_ERR_NULL_ARGUMENT;
    ctx->tap = fn;
    ctx->tap_user = fn ? user : NULL;
    return MNV3_OK;
}
uint32_t mnv3_context_threads(const mnv3_context *ctx) { return ctx ? ctx->threads : 0; }

uint64_t mnv3_context_layer_ns(const mnv3_context *ctx, uint32_t index) {
    if (!ctx || index >= ctx->num_steps) return 0;
    return ctx->layer_ns[index];
}

/* A caller's buffer of `per_image` elements per image of the batch: absent (NULL with
 * length 0) or exactly the right length. */
static int buffer_ok(const mnv3_context *ctx, const void *p, size_t len, size_t per_image) {
    size_t want;
    if ((p == NULL) != (len == 0)) return 0;
    return !p || (mnv3_size_mul(ctx->cfg.batch, per_image, &want) && len == want);
}

mnv3_status mnv3_run(mnv3_context *ctx, const float *input, size_t input_len, float *logits,
                     size_t logits_len, float *features, size_t features_len) {
    size_t per_image, classes, fdim;
    uint32_t b;
    if (!ctx || !input) return MNV3_ERR_NULL_ARGUMENT;
    classes = mnv3_model_classes(ctx->model);
    fdim = mnv3_model_feature_dim(ctx->model);
    /* check_config made sure the input counts fit. */
    per_image = (size_t)3 * ctx->cfg.height * ctx->cfg.width;
    if (input_len != ctx->cfg.batch * per_image || !buffer_ok(ctx, logits, logits_len, classes) ||
        !buffer_ok(ctx, features, features_len, fdim))
        return MNV3_ERR_SHAPE;
    for (b = 0; b < ctx->cfg.batch; ++b) {
        mnv3_stem_input in;
        ctx->ops->input(ctx, input + b * per_image, &in);
        mnv3_executor_run(ctx, &in);
        if (logits) ctx->ops->logits(ctx, logits + b * classes);
        if (features) ctx->ops->features(ctx, features + b * fdim);
    }
    return MNV3_OK;
}

/* Quantized models: the logits back in the model's own type (uint8 held as x - 128). */
static uint8_t from_int8(mnv3_qtype t, int8_t v) {
    return t == MNV3_QTYPE_UINT8 ? (uint8_t)((int)v + 128) : (uint8_t)v;
}

mnv3_status mnv3_run_quantized(mnv3_context *ctx, const void *input, size_t input_len,
                               void *logits_q, size_t logits_q_len, float *logits,
                               size_t logits_len) {
    const mnv3_model *m;
    size_t per_image, classes, b, i;
    if (!ctx || !input) return MNV3_ERR_NULL_ARGUMENT;
    m = ctx->model;
    if (!m->quantized) return MNV3_ERR_UNSUPPORTED;
    per_image = (size_t)3 * ctx->cfg.height * ctx->cfg.width;
    classes = mnv3_model_classes(m);
    if (input_len != ctx->cfg.batch * per_image || !buffer_ok(ctx, logits_q, logits_q_len, classes) ||
        !buffer_ok(ctx, logits, logits_len, classes))
        return MNV3_ERR_SHAPE;
    for (b = 0; b < ctx->cfg.batch; ++b) {
        mnv3_stem_input in;
        mnv3_q8_bytes_input(ctx, (const uint8_t *)input + b * per_image, &in);
        mnv3_executor_run(ctx, &in);
        if (logits_q)
            for (i = 0; i < classes; ++i)
                ((uint8_t *)logits_q)[b * classes + i] =
                    from_int8(m->q8_io_type, ((const int8_t *)ctx->logits)[i]);
        if (logits) ctx->ops->logits(ctx, logits + b * classes);
    }
    return MNV3_OK;
}
