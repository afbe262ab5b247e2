/* Contexts: the arena layout, weight packing, and the executor that walks the step list.
 * Everything a run touches lives in the arena; mnv3_run() never allocates. */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "plan.h"
#include "threads.h"
#include "weights.h"

/* How many bytes of a later layer's weights a pointwise layer may prefetch per
 * multiply-add: its microkernel touches at most one line per k step of a tile, which
 * covers 16 (AVX2) to 32 (AVX-512) outputs x 6 to 8 rows. */
#define PREFETCH_BYTES_PER_MAC 0.25

/* Small layers are not worth waking workers for. */
#define MIN_PARALLEL_MACS 65536u
/* Pointwise row tiles a thread should get at least. */
#define PW_MIN_ROWS 8u
/* Channel sums (SE squeeze, global pool) are accumulated per fixed slice of the image and
 * then added in slice order, so the result does not depend on how many threads ran. */
#define POOL_SLICES_MAX 64u
#define POOL_SLICE_MIN_PIXELS 8u

struct mnv3_context {
    const mnv3_model *model;
    const mnv3_kernels *k;
    mnv3_config cfg;
    uint32_t threads;
    mnv3_pool *pool;
    mnv3_step *steps;
    uint32_t num_steps;
    mnv3_tensor *tensors;
    uint32_t num_tensors;
    unsigned char *activations;
    uint64_t *layer_ns;
    float *sums;            /* slices x channels: partial channel sums per image slice */
    float *se_mean, *se_hidden, *se_gate;
    float *features;
    float *head_a, *head_b;
    float *workspace;       /* threads x ws_floats */
    size_t ws_floats;
    float *rings;           /* threads x ring_floats: fused expansions' rows */
    size_t ring_floats;
    uint64_t *fused_ns;     /* per thread: time in fused expansions (profiling) */
    void *owned_arena;
    mnv3_arena_plan plan;
};

/* ------------------------------------------------------------------------------------ */
/* Arena layout                                                                          */
/* ------------------------------------------------------------------------------------ */

typedef struct bump {
    unsigned char *base; /* NULL while only measuring */
    size_t used;
} bump;

static void *take(bump *b, size_t bytes) {
    size_t at = (b->used + 63u) & ~(size_t)63u;
    b->used = at + bytes;
    return b->base ? b->base + at : NULL;
}

static size_t packed_floats_for(const mnv3_kernels *k, const mnv3_step *s, int second) {
    const mnv3_conv *c = s->conv;
    switch (s->kind) {
    case MNV3_STEP_STEM: return k->conv_packed_floats(c->in_channels, c->out_channels, c->kernel);
    case MNV3_STEP_EXPAND:
    case MNV3_STEP_PROJECT:
    case MNV3_STEP_LAST_CONV: return k->pointwise_packed_floats(c->in_channels, c->out_channels);
    case MNV3_STEP_DEPTHWISE: return k->depthwise_packed_floats(c->out_channels, c->kernel);
    case MNV3_STEP_HEAD: return k->fc_packed_floats(c->in_channels, c->out_channels);
    case MNV3_STEP_SE:
        c = second ? &s->blk->se.expand : &s->blk->se.reduce;
        return k->fc_packed_floats(c->in_channels, c->out_channels);
    default: return 0;
    }
}

static void pack_step(const mnv3_kernels *k, mnv3_step *s, float *dst, int second) {
    const mnv3_conv *c = s->conv;
    const void **slot = second ? &s->packed2 : &s->packed;
    if (s->kind == MNV3_STEP_SE) c = second ? &s->blk->se.expand : &s->blk->se.reduce;
    if (!c) return;
    if (!dst) {
        *slot = c->weight; /* the kernel reads canonical weights in place */
        return;
    }
    switch (s->kind) {
    case MNV3_STEP_STEM: k->conv_pack(c->weight, c->in_channels, c->out_channels, c->kernel, dst); break;
    case MNV3_STEP_EXPAND:
    case MNV3_STEP_PROJECT:
    case MNV3_STEP_LAST_CONV: k->pointwise_pack(c->weight, c->in_channels, c->out_channels, dst); break;
    case MNV3_STEP_DEPTHWISE: k->depthwise_pack(c->weight, c->out_channels, c->kernel, dst); break;
    case MNV3_STEP_HEAD:
    case MNV3_STEP_SE: k->fc_pack(c->weight, c->in_channels, c->out_channels, dst); break;
    default: break;
    }
    *slot = dst;
}

/* Depthwise+SE sums per output row; the last conv's pooled sums per pixel slice. */
static uint32_t pool_slices(const mnv3_step *s) {
    uint32_t pixels = s->out_h * s->out_w, n;
    if (s->kind == MNV3_STEP_DEPTHWISE) return s->out_h;
    n = (pixels + POOL_SLICE_MIN_PIXELS - 1) / POOL_SLICE_MIN_PIXELS;
    return n < POOL_SLICES_MAX ? n : POOL_SLICES_MAX;
}

static mnv3_status check_config(const mnv3_model *m, const mnv3_config *c, mnv3_error *e) {
    if (!m || !c) return mnv3_set_error(e, MNV3_ERR_NULL_ARGUMENT, "model or config is NULL");
    if (c->batch < 1 || c->batch > MNV3_MAX_BATCH)
        return mnv3_set_error(e, MNV3_ERR_INVALID_ARGUMENT, "batch %u not in 1..%u", c->batch,
                              MNV3_MAX_BATCH);
    if (c->height < MNV3_MIN_INPUT_SIZE || c->height > MNV3_MAX_INPUT_SIZE ||
        c->width < MNV3_MIN_INPUT_SIZE || c->width > MNV3_MAX_INPUT_SIZE)
        return mnv3_set_error(e, MNV3_ERR_INVALID_ARGUMENT,
                              "input %ux%u: each side must be in %u..%u", c->height, c->width,
                              MNV3_MIN_INPUT_SIZE, MNV3_MAX_INPUT_SIZE);
    if ((unsigned)c->layout > MNV3_LAYOUT_NHWC)
        return mnv3_set_error(e, MNV3_ERR_INVALID_ARGUMENT, "layout %u unknown",
                              (unsigned)c->layout);
    if (c->threads > MNV3_MAX_THREADS)
        return mnv3_set_error(e, MNV3_ERR_INVALID_ARGUMENT, "threads %u exceeds %u", c->threads,
                              MNV3_MAX_THREADS);
    if ((unsigned)c->isa > MNV3_ISA_NEON)
        return mnv3_set_error(e, MNV3_ERR_INVALID_ARGUMENT, "isa %u unknown", (unsigned)c->isa);
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

static void plan_prefetch(mnv3_context *ctx);

/* Lays the arena out. With base == NULL only measures; otherwise fills ctx (which the
 * caller has placed at the start of base) and packs weights. */
static mnv3_status layout_arena(const mnv3_model *m, const mnv3_config *cfg,
                                const mnv3_kernels *k, unsigned char *base, mnv3_step *steps,
                                uint32_t ns, mnv3_tensor *tensors, uint32_t nt,
                                mnv3_arena_plan *plan, mnv3_context **out) {
    bump b;
    uint32_t threads = effective_threads(cfg), i, max_vec = 1, max_head = 1;
    size_t max_sums = 1;
    size_t ws = 0, ring = 0, region, bound, mark;
    mnv3_context *ctx;
    b.base = base;
    b.used = 0;
    memset(plan, 0, sizeof *plan);
    plan->isa = k->isa;
    ctx = (mnv3_context *)take(&b, sizeof *ctx);
    take(&b, ns * sizeof(mnv3_step));
    take(&b, nt * sizeof(mnv3_tensor));
    take(&b, ns * sizeof(uint64_t));
    take(&b, mnv3_pool_bytes(threads));
    b.used = (b.used + 63u) & ~(size_t)63u; /* padding counts as context, not scratch */
    plan->context = b.used;

    for (i = 0; i < ns; ++i) {
        const mnv3_step *s = &steps[i];
        if ((s->kind == MNV3_STEP_DEPTHWISE && s->blk->has_se) || s->kind == MNV3_STEP_LAST_CONV) {
            size_t sums = (size_t)pool_slices(s) * s->out_c;
            if (sums > max_sums) max_sums = sums;
        }
        if (s->kind == MNV3_STEP_SE) {
            if (s->in_c > max_vec) max_vec = s->in_c;
            if (s->blk->se.reduce.out_channels > max_vec) max_vec = s->blk->se.reduce.out_channels;
        }
        if (s->kind == MNV3_STEP_HEAD && s->out_c > max_head) max_head = s->out_c;
        if (s->kind == MNV3_STEP_DEPTHWISE && s->ring_rows) {
            size_t r = (size_t)s->ring_rows * s->in_w * s->in_c;
            if (r > ring) ring = r;
        }
        if (s->kind == MNV3_STEP_EXPAND || s->kind == MNV3_STEP_PROJECT ||
            s->kind == MNV3_STEP_LAST_CONV) {
            size_t w = k->pointwise_workspace_floats(s->in_c, s->out_c);
            if (w > ws) ws = w;
        }
    }
    mark = b.used;
    take(&b, max_sums * sizeof(float));
    take(&b, 3 * (size_t)max_vec * sizeof(float));
    take(&b, (size_t)m->last_conv.out_channels * sizeof(float));
    take(&b, 2 * (size_t)max_head * sizeof(float));
    take(&b, (size_t)threads * ((ws + 15u) & ~(size_t)15u) * sizeof(float));
    take(&b, (size_t)threads * ((ring + 15u) & ~(size_t)15u) * sizeof(float));
    take(&b, (size_t)threads * sizeof(uint64_t));
    b.used = (b.used + 63u) & ~(size_t)63u;
    plan->scratch = b.used - mark;

    mark = b.used;
    for (i = 0; i < ns; ++i) {
        size_t f1 = packed_floats_for(k, &steps[i], 0), f2 = packed_floats_for(k, &steps[i], 1);
        if (f1) take(&b, f1 * sizeof(float));
        if (steps[i].kind == MNV3_STEP_SE && f2) take(&b, f2 * sizeof(float));
    }
    b.used = (b.used + 63u) & ~(size_t)63u;
    plan->packed_weights = b.used - mark;

    mnv3_plan_offsets(tensors, nt, &region, &bound);
    take(&b, region);
    plan->activations = region;
    plan->activation_lower_bound = bound;
    plan->total = b.used;

    if (!base) return MNV3_OK;

    /* Second pass with real addresses, in the same order as above. */
    b.used = 0;
    ctx = (mnv3_context *)take(&b, sizeof *ctx);
    memset(ctx, 0, sizeof *ctx);
    ctx->model = m;
    ctx->k = k;
    ctx->cfg = *cfg;
    ctx->threads = threads;
    ctx->plan = *plan;
    ctx->steps = (mnv3_step *)take(&b, ns * sizeof(mnv3_step));
    memcpy(ctx->steps, steps, ns * sizeof(mnv3_step));
    ctx->num_steps = ns;
    ctx->tensors = (mnv3_tensor *)take(&b, nt * sizeof(mnv3_tensor));
    memcpy(ctx->tensors, tensors, nt * sizeof(mnv3_tensor));
    ctx->num_tensors = nt;
    ctx->layer_ns = (uint64_t *)take(&b, ns * sizeof(uint64_t));
    memset(ctx->layer_ns, 0, ns * sizeof(uint64_t));
    ctx->pool = (mnv3_pool *)take(&b, mnv3_pool_bytes(threads));
    ctx->sums = (float *)take(&b, max_sums * sizeof(float));
    ctx->se_mean = (float *)take(&b, 3 * (size_t)max_vec * sizeof(float));
    ctx->se_hidden = ctx->se_mean + max_vec;
    ctx->se_gate = ctx->se_hidden + max_vec;
    ctx->features = (float *)take(&b, (size_t)m->last_conv.out_channels * sizeof(float));
    ctx->head_a = (float *)take(&b, 2 * (size_t)max_head * sizeof(float));
    ctx->head_b = ctx->head_a + max_head;
    ctx->ws_floats = (ws + 15u) & ~(size_t)15u;
    ctx->workspace = (float *)take(&b, (size_t)threads * ctx->ws_floats * sizeof(float));
    ctx->ring_floats = (ring + 15u) & ~(size_t)15u;
    ctx->rings = (float *)take(&b, (size_t)threads * ctx->ring_floats * sizeof(float));
    ctx->fused_ns = (uint64_t *)take(&b, (size_t)threads * sizeof(uint64_t));
    for (i = 0; i < ns; ++i) {
        mnv3_step *s = &ctx->steps[i];
        size_t f1 = packed_floats_for(k, s, 0), f2 = packed_floats_for(k, s, 1);
        pack_step(k, s, f1 ? (float *)take(&b, f1 * sizeof(float)) : NULL, 0);
        if (s->kind == MNV3_STEP_SE)
            pack_step(k, s, f2 ? (float *)take(&b, f2 * sizeof(float)) : NULL, 1);
    }
    ctx->activations = (unsigned char *)take(&b, region);
    plan_prefetch(ctx);
    *out = ctx;
    return MNV3_OK;
}

/* The weights step s streams (second: the SE's expand FC), or 0 bytes. */
static size_t step_weights(const mnv3_context *ctx, const mnv3_step *s, int second,
                           const char **begin) {
    const mnv3_conv *c = s->conv;
    const void *w = second ? s->packed2 : s->packed;
    size_t floats;
    if (s->kind == MNV3_STEP_SE)
        c = second ? &s->blk->se.expand : &s->blk->se.reduce;
    else if (second)
        return 0;
    if (!c || !w) return 0;
    floats = packed_floats_for(ctx->k, s, second);
    if (!floats) floats = mnv3_conv_weight_count(c);
    *begin = (const char *)w;
    return floats * sizeof(float);
}

/* What is left of step s's prefetch budget: a pointwise layer may fetch ahead
 * PREFETCH_BYTES_PER_MAC bytes per multiply-add; other layers nothing. */
static size_t prefetch_budget_left(const mnv3_step *s) {
    size_t total, used = 0;
    uint32_t r;
    if (s->kind != MNV3_STEP_EXPAND && s->kind != MNV3_STEP_PROJECT &&
        s->kind != MNV3_STEP_LAST_CONV)
        return 0;
    total = (size_t)((double)s->macs * PREFETCH_BYTES_PER_MAC);
    for (r = 0; r < s->prefetch_count; ++r) used += s->prefetch[r].bytes;
    return total > used ? total - used : 0;
}

/* Software prefetch schedule. The squeeze-excite and classifier layers are matrix-vector
 * products: they read every weight once and do almost no arithmetic, so when their weights
 * are not cached they run at DRAM speed while the core idles; the pointwise layers are the
 * opposite. Every step's weights (in execution order) are assigned to the closest pointwise
 * layers before it that still have prefetch budget, so that they arrive as late as possible
 * and do not push out what is needed sooner; the microkernels then touch those lines at a
 * low rate while they compute. */
static void plan_prefetch(mnv3_context *ctx) {
    const char *env = getenv("MNV3_PREFETCH");
    uint32_t i, j;
    int second;
    for (i = 0; i < ctx->num_steps; ++i) ctx->steps[i].prefetch_count = 0;
    if (env && strcmp(env, "0") == 0) return; /* for measuring what the schedule is worth */
    for (j = 0; j < ctx->num_steps; ++j) {
        for (second = 0; second < 2; ++second) {
            const char *begin = NULL;
            size_t left = step_weights(ctx, &ctx->steps[j], second, &begin);
            for (i = j; i-- > 0 && left >= 64u;) {
                mnv3_step *s = &ctx->steps[i];
                const size_t budget = prefetch_budget_left(s);
                const size_t take_bytes = left < budget ? left : budget;
                if (take_bytes < 64u || s->prefetch_count == MNV3_STEP_PREFETCH_RANGES) continue;
                left -= take_bytes;
                s->prefetch[s->prefetch_count].begin = begin + left;
                s->prefetch[s->prefetch_count].bytes = take_bytes;
                ++s->prefetch_count;
            }
        }
    }
}

static mnv3_status resolve_kernels(const mnv3_config *cfg, const mnv3_kernels **k,
                                   mnv3_error *e) {
    mnv3_isa isa = cfg->isa == MNV3_ISA_AUTO ? mnv3_isa_best() : cfg->isa;
    *k = mnv3_kernels_for(isa);
    if (!*k)
        return mnv3_set_error(e, MNV3_ERR_UNSUPPORTED, "kernel set '%s' unavailable",
                              mnv3_isa_name(isa));
    return MNV3_OK;
}

typedef struct plan_scratch {
    mnv3_step steps[MNV3_MAX_STEPS];
    mnv3_tensor tensors[MNV3_MAX_TENSORS];
    uint32_t ns, nt;
} plan_scratch;

static mnv3_status make_plan(const mnv3_model *m, const mnv3_config *cfg, const mnv3_kernels **k,
                             plan_scratch **ps, mnv3_error *e) {
    mnv3_status st = check_config(m, cfg, e);
    *ps = NULL;
    if (st != MNV3_OK) return st;
    st = resolve_kernels(cfg, k, e);
    if (st != MNV3_OK) return st;
    *ps = (plan_scratch *)malloc(sizeof **ps);
    if (!*ps) return mnv3_set_error(e, MNV3_ERR_OUT_OF_MEMORY, "planning scratch");
    st = mnv3_plan_steps(m, cfg->height, cfg->width, (*ps)->steps, &(*ps)->ns, (*ps)->tensors,
                         &(*ps)->nt, e);
    if (st != MNV3_OK) {
        free(*ps);
        *ps = NULL;
    }
    return st;
}

mnv3_status mnv3_arena_plan_for(const mnv3_model *m, const mnv3_config *cfg,
                                mnv3_arena_plan *plan, mnv3_error *e) {
    const mnv3_kernels *k;
    plan_scratch *ps;
    mnv3_status st;
    if (!plan) return mnv3_set_error(e, MNV3_ERR_NULL_ARGUMENT, "plan is NULL");
    st = make_plan(m, cfg, &k, &ps, e);
    if (st != MNV3_OK) return st;
    st = layout_arena(m, cfg, k, NULL, ps->steps, ps->ns, ps->tensors, ps->nt, plan, NULL);
    free(ps);
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
    if (m && m->preprocess.height >= MNV3_MIN_INPUT_SIZE && m->preprocess.width >= MNV3_MIN_INPUT_SIZE) {
        c->height = m->preprocess.height;
        c->width = m->preprocess.width;
    }
    c->layout = MNV3_LAYOUT_NCHW;
    c->threads = 1;
    c->isa = MNV3_ISA_AUTO;
}

mnv3_status mnv3_context_create(const mnv3_model *m, const mnv3_config *cfg, void *arena,
                                size_t arena_size, mnv3_context **out, mnv3_error *e) {
    const mnv3_kernels *k;
    plan_scratch *ps;
    mnv3_arena_plan plan;
    mnv3_context *ctx = NULL;
    unsigned char *base;
    void *owned = NULL;
    mnv3_status st;
    if (!out) return mnv3_set_error(e, MNV3_ERR_NULL_ARGUMENT, "out_context is NULL");
    *out = NULL;
    st = make_plan(m, cfg, &k, &ps, e);
    if (st != MNV3_OK) return st;
    layout_arena(m, cfg, k, NULL, ps->steps, ps->ns, ps->tensors, ps->nt, &plan, NULL);
    if (arena) {
        if (((uintptr_t)arena & (MNV3_ARENA_ALIGNMENT - 1)) != 0) {
            free(ps);
            return mnv3_set_error(e, MNV3_ERR_ARENA_MISALIGNED,
                                  "arena at %p is not %d-byte aligned", arena, MNV3_ARENA_ALIGNMENT);
        }
        if (arena_size < plan.total) {
            free(ps);
            return mnv3_set_error(e, MNV3_ERR_ARENA_TOO_SMALL,
                                  "arena has %zu bytes, this configuration needs %zu", arena_size,
                                  plan.total);
        }
        base = (unsigned char *)arena;
    } else {
        base = (unsigned char *)mnv3_alloc_aligned(plan.total, &owned);
        if (!base) {
            free(ps);
            return mnv3_set_error(e, MNV3_ERR_OUT_OF_MEMORY, "arena of %zu bytes", plan.total);
        }
    }
    layout_arena(m, cfg, k, base, ps->steps, ps->ns, ps->tensors, ps->nt, &plan, &ctx);
    free(ps);
    ctx->owned_arena = owned;
    st = mnv3_pool_init(ctx->pool, ctx->threads, &ctx->pool);
    if (st != MNV3_OK) {
        free(owned);
        return mnv3_set_error(e, st, "could not start %u worker threads", ctx->threads);
    }
    *out = ctx;
    return MNV3_OK;
}

void mnv3_context_free(mnv3_context *ctx) {
    if (!ctx) return;
    mnv3_pool_destroy(ctx->pool);
    free(ctx->owned_arena);
}

mnv3_isa mnv3_context_isa(const mnv3_context *ctx) { return ctx ? ctx->k->isa : MNV3_ISA_AUTO; }
uint32_t mnv3_context_threads(const mnv3_context *ctx) { return ctx ? ctx->threads : 0; }

uint64_t mnv3_context_layer_ns(const mnv3_context *ctx, uint32_t index) {
    if (!ctx || index >= ctx->num_steps) return 0;
    return ctx->layer_ns[index];
}

/* ------------------------------------------------------------------------------------ */
/* Execution                                                                             */
/* ------------------------------------------------------------------------------------ */

typedef struct job {
    mnv3_context *ctx;
    const mnv3_step *s;
    const float *in;
    float *out;
    const float *residual;
    const float *in_scale;
    size_t in_row, in_col, in_chan;  /* stem input strides */
    float *sums;                     /* per-slice partial sums, or NULL */
    uint32_t slices;                 /* number of sum slices */
    uint32_t m_tasks, n_tasks;       /* pointwise task grid */
    const mnv3_conv *fc;             /* fully connected layer (head or SE) */
    const void *fc_packed;
    uint32_t tasks;
    const mnv3_step *expand;         /* fused expansion run by a depthwise job */
} job;

static void split(uint32_t total, uint32_t parts, uint32_t part, uint32_t align, uint32_t *b,
                  uint32_t *e) {
    uint32_t units = (total + align - 1) / align;
    uint32_t ub = (uint32_t)((uint64_t)units * part / parts);
    uint32_t ue = (uint32_t)((uint64_t)units * (part + 1) / parts);
    *b = ub * align < total ? ub * align : total;
    *e = ue * align < total ? ue * align : total;
}

static float *slice_sums(const job *j, uint32_t slice) {
    return j->sums + (size_t)slice * j->s->out_c;
}

static void run_stem(void *arg, uint32_t task) {
    const job *j = (const job *)arg;
    const mnv3_step *s = j->s;
    mnv3_conv_args a;
    memset(&a, 0, sizeof a);
    a.input = j->in;
    a.in_height = s->in_h;
    a.in_width = s->in_w;
    a.in_channels = s->in_c;
    a.in_row_stride = j->in_row;
    a.in_col_stride = j->in_col;
    a.in_chan_stride = j->in_chan;
    a.packed = s->packed;
    a.bias = s->conv->bias;
    a.out_channels = s->out_c;
    a.kernel = s->conv->kernel;
    a.stride = s->conv->stride;
    a.pad_top = s->pad_top;
    a.pad_left = s->pad_left;
    a.out_height = s->out_h;
    a.out_width = s->out_w;
    split(s->out_h, j->tasks, task, 1, &a.row_begin, &a.row_end);
    a.epilogue = s->conv->epilogue;
    a.output = j->out;
    if (a.row_begin < a.row_end) j->ctx->k->conv(&a);
}

static void depthwise_args(const job *j, mnv3_depthwise_args *a) {
    const mnv3_step *s = j->s;
    memset(a, 0, sizeof *a);
    a->input = j->in;
    a->in_height = s->in_h;
    a->in_width = s->in_w;
    a->channels = s->in_c;
    a->packed = s->packed;
    a->bias = s->conv->bias;
    a->kernel = s->conv->kernel;
    a->stride = s->conv->stride;
    a->pad_top = s->pad_top;
    a->pad_left = s->pad_left;
    a->out_height = s->out_h;
    a->out_width = s->out_w;
    a->epilogue = s->conv->epilogue;
    a->output = j->out;
}

static void run_depthwise(void *arg, uint32_t task) {
    const job *j = (const job *)arg;
    const mnv3_step *s = j->s;
    mnv3_depthwise_args a;
    depthwise_args(j, &a);
    split(s->out_h, j->tasks, task, 1, &a.row_begin, &a.row_end);
    if (!j->sums) {
        if (a.row_begin < a.row_end) j->ctx->k->depthwise(&a);
        return;
    }
    {
        uint32_t first = a.row_begin, last = a.row_end, r;
        for (r = first; r < last; ++r) { /* one slice per output row */
            a.row_begin = r;
            a.row_end = r + 1;
            a.channel_sums = slice_sums(j, r);
            j->ctx->k->depthwise(&a);
        }
    }
}

static uint64_t now_ns(void);

/* Expanded rows [row, row + n) of a fused block into the task's ring (no wrap inside). */
static void fused_expand_rows(const job *j, uint32_t task, float *ring, uint32_t row, uint32_t n,
                              uint32_t part, uint32_t parts) {
    const mnv3_step *e = j->expand, *d = j->s;
    const mnv3_kernels *k = j->ctx->k;
    mnv3_pointwise_args a;
    memset(&a, 0, sizeof a);
    a.input = j->in + (size_t)row * e->in_w * e->in_c;
    a.in_stride = e->in_c;
    a.packed = e->packed;
    a.bias = e->conv->bias;
    a.epilogue = e->conv->epilogue;
    a.output = ring + (size_t)(row % d->ring_rows) * e->out_w * e->out_c;
    a.out_stride = e->out_c;
    a.in_channels = e->in_c;
    a.out_channels = e->out_c;
    a.oc_begin = 0;
    a.oc_end = e->out_c;
    a.pixel_begin = 0;
    a.pixel_end = (size_t)n * e->out_w;
    a.workspace = j->ctx->workspace + (size_t)task * j->ctx->ws_floats;
    a.prefetch = e->prefetch;
    a.prefetch_count = e->prefetch_count;
    a.prefetch_part = part;
    a.prefetch_parts = parts;
    k->pointwise(&a);
}

/* A block whose expanded tensor would not fit in cache: each task walks its output rows
 * in bands; for every band it expands the input rows the band needs and that are not in its
 * ring yet, then runs the depthwise conv on them. The expanded tensor never leaves the
 * cache, and rows are expanded once per task (twice only at task boundaries). */
static void run_fused(void *arg, uint32_t task) {
    const job *j = (const job *)arg;
    const mnv3_step *s = j->s;
    const uint32_t K = s->conv->kernel, S = s->conv->stride, B = s->band_rows;
    const uint32_t bands = (s->out_h + B - 1) / B;
    float *ring = j->ctx->rings + (size_t)task * j->ctx->ring_floats;
    const int profile = j->ctx->cfg.profile;
    uint32_t oy, first, last, done = 0;
    mnv3_depthwise_args a;
    depthwise_args(j, &a);
    a.input = ring;
    a.in_ring_rows = s->ring_rows;
    split(s->out_h, j->tasks, task, 1, &first, &last);
    j->ctx->fused_ns[task] = 0;
    for (oy = first; oy < last; oy += B) {
        const uint32_t end = oy + B < last ? oy + B : last;
        const long lo = (long)oy * S - (long)s->pad_top;
        const long hi = (long)(end - 1) * S - (long)s->pad_top + (long)K;
        const uint32_t need_lo = lo < 0 ? 0 : (uint32_t)lo;
        const uint32_t need_hi = hi > (long)s->in_h ? s->in_h : (uint32_t)(hi < 0 ? 0 : hi);
        const uint64_t t0 = profile ? now_ns() : 0;
        uint32_t r;
        if (oy == first || done < need_lo) done = need_lo;
        while (done < need_hi) { /* up to the ring's wrap point at a time */
            const uint32_t to_wrap = s->ring_rows - done % s->ring_rows;
            const uint32_t n = need_hi - done < to_wrap ? need_hi - done : to_wrap;
            fused_expand_rows(j, task, ring, done, n, oy / B, bands);
            done += n;
        }
        if (profile) j->ctx->fused_ns[task] += now_ns() - t0;
        for (r = oy; r < end; ++r) {
            a.row_begin = r;
            a.row_end = r + 1;
            a.channel_sums = j->sums ? slice_sums(j, r) : NULL;
            j->ctx->k->depthwise(&a);
        }
    }
}

static void run_pointwise(void *arg, uint32_t task) {
    const job *j = (const job *)arg;
    const mnv3_step *s = j->s;
    const mnv3_kernels *k = j->ctx->k;
    uint32_t mt = task % j->m_tasks, nt = task / j->m_tasks, pb, pe;
    mnv3_pointwise_args a;
    memset(&a, 0, sizeof a);
    a.input = j->in;
    a.in_stride = s->in_c;
    a.in_scale = j->in_scale;
    a.packed = s->packed;
    a.bias = s->conv->bias;
    a.epilogue = s->conv->epilogue;
    a.residual = j->residual;
    if (s->blk) a.residual_clamp = s->blk->residual_clamp;
    a.output = j->out;
    a.out_stride = s->out_c;
    a.in_channels = s->in_c;
    a.out_channels = s->out_c;
    split(s->out_c, j->n_tasks, nt, k->pointwise_nr, &a.oc_begin, &a.oc_end);
    a.workspace = j->ctx->workspace + (size_t)task * j->ctx->ws_floats;
    a.prefetch = s->prefetch;
    a.prefetch_count = s->prefetch_count;
    a.prefetch_part = task;
    a.prefetch_parts = j->tasks;
    if (a.oc_begin >= a.oc_end) return;
    if (!j->sums) {
        split(s->out_h * s->out_w, j->m_tasks, mt, 1, &pb, &pe);
        a.pixel_begin = pb;
        a.pixel_end = pe;
        if (pb < pe) k->pointwise(&a);
        return;
    }
    {
        uint32_t sb, se, sl;
        split(j->slices, j->m_tasks, mt, 1, &sb, &se);
        for (sl = sb; sl < se; ++sl) {
            /* every slice call takes its own share of the prefetch ranges */
            a.prefetch_part = sl * j->n_tasks + nt;
            a.prefetch_parts = j->slices * j->n_tasks;
            split(s->out_h * s->out_w, j->slices, sl, 1, &pb, &pe);
            a.pixel_begin = pb;
            a.pixel_end = pe;
            a.channel_sums = slice_sums(j, sl);
            if (pb < pe) k->pointwise(&a);
        }
    }
}

static void run_fc(void *arg, uint32_t task) {
    const job *j = (const job *)arg;
    const mnv3_conv *c = j->fc;
    mnv3_fc_args a;
    memset(&a, 0, sizeof a);
    a.input = j->in;
    a.in_features = c->in_channels;
    a.out_features = c->out_channels;
    a.packed = j->fc_packed;
    a.bias = c->bias;
    a.epilogue = c->epilogue;
    a.output = j->out;
    split(c->out_channels, j->tasks, task, 1, &a.out_begin, &a.out_end);
    if (a.out_begin < a.out_end) j->ctx->k->fc(&a);
}

static uint32_t tasks_for(const mnv3_context *ctx, uint64_t macs, uint32_t units) {
    uint32_t t = ctx->threads;
    if (macs < MIN_PARALLEL_MACS) return 1;
    return t < units ? t : (units ? units : 1);
}

static void zero_sums(mnv3_context *ctx, uint32_t slices, uint32_t channels) {
    memset(ctx->sums, 0, (size_t)slices * channels * sizeof(float));
}

/* Adds the slice partials in slice order into dst, then dst = clamp(dst * scale). */
static void reduce_sums(mnv3_context *ctx, uint32_t slices, uint32_t channels, float scale,
                        mnv3_clamp clamp, float *dst) {
    uint32_t t, c;
    for (c = 0; c < channels; ++c) dst[c] = 0.0f;
    for (t = 0; t < slices; ++t) {
        const float *p = ctx->sums + (size_t)t * channels;
        for (c = 0; c < channels; ++c) dst[c] += p[c];
    }
    for (c = 0; c < channels; ++c) dst[c] = mnv3_clampf(dst[c] * scale, clamp);
}

static float *tensor_ptr(mnv3_context *ctx, int32_t t) {
    return t >= 0 ? (float *)(ctx->activations + ctx->tensors[t].offset) : NULL;
}

/* SE and head layers are matrix-vector products bound by weight bandwidth: spread the
 * output rows over the threads once they are big enough to pay for the wake-up. */
static void fc_parallel(mnv3_context *ctx, const mnv3_conv *c, const void *packed,
                        const float *in, float *out) {
    job j;
    memset(&j, 0, sizeof j);
    j.ctx = ctx;
    j.fc = c;
    j.fc_packed = packed;
    j.in = in;
    j.out = out;
    j.tasks = tasks_for(ctx, (uint64_t)c->in_channels * c->out_channels, c->out_channels);
    mnv3_pool_run(ctx->pool, j.tasks, run_fc, &j);
}

static uint64_t now_ns(void) {
#if defined(CLOCK_MONOTONIC)
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#else
    return 0;
#endif
}

static void run_image(mnv3_context *ctx, const float *input, float *logits, float *features) {
    const mnv3_model *m = ctx->model;
    const float *se_scale = NULL;
    uint32_t i, classes = mnv3_model_classes(m);
    const float *head_in = ctx->features;
    for (i = 0; i < ctx->num_steps; ++i) {
        const mnv3_step *s = &ctx->steps[i];
        uint64_t t0 = ctx->cfg.profile ? now_ns() : 0;
        job j;
        memset(&j, 0, sizeof j);
        j.ctx = ctx;
        j.s = s;
        j.in = tensor_ptr(ctx, s->in_tensor);
        j.out = tensor_ptr(ctx, s->out_tensor);
        switch (s->kind) {
        case MNV3_STEP_STEM:
            j.in = input;
            if (ctx->cfg.layout == MNV3_LAYOUT_NCHW) {
                j.in_row = s->in_w;
                j.in_col = 1;
                j.in_chan = (size_t)s->in_h * s->in_w;
            } else {
                j.in_row = (size_t)s->in_w * s->in_c;
                j.in_col = s->in_c;
                j.in_chan = 1;
            }
            j.tasks = tasks_for(ctx, s->macs, s->out_h);
            mnv3_pool_run(ctx->pool, j.tasks, run_stem, &j);
            break;
        case MNV3_STEP_DEPTHWISE:
            j.tasks = tasks_for(ctx, s->macs, s->out_h);
            if (s->blk->has_se) {
                j.sums = ctx->sums;
                j.slices = pool_slices(s);
                zero_sums(ctx, j.slices, s->out_c);
            }
            if (s->band_rows) {
                uint32_t t;
                uint64_t expand_ns = 0;
                j.expand = &ctx->steps[i - 1];
                j.tasks = tasks_for(ctx, s->macs + j.expand->macs, s->out_h);
                mnv3_pool_run(ctx->pool, j.tasks, run_fused, &j);
                if (ctx->cfg.profile) { /* split the time between the two layers */
                    for (t = 0; t < j.tasks; ++t) expand_ns += ctx->fused_ns[t];
                    expand_ns /= j.tasks;
                    ctx->layer_ns[i - 1] = expand_ns;
                    t0 += expand_ns;
                }
            } else {
                mnv3_pool_run(ctx->pool, j.tasks, run_depthwise, &j);
            }
            if (s->blk->has_se)
                reduce_sums(ctx, j.slices, s->out_c, 1.0f / ((float)s->out_h * (float)s->out_w),
                            s->blk->se.squeeze_clamp, ctx->se_mean);
            break;
        case MNV3_STEP_SE: {
            const mnv3_squeeze_excite *se = &s->blk->se;
            fc_parallel(ctx, &se->reduce, s->packed, ctx->se_mean, ctx->se_hidden);
            fc_parallel(ctx, &se->expand, s->packed2, ctx->se_hidden, ctx->se_gate);
            if (mnv3_clamp_is_unbounded(se->scale_clamp)) {
                se_scale = ctx->se_gate; /* folded into the projection's input */
            } else {
                /* Clamped (quantised-range) models clamp x * gate itself: scale in place. */
                float *x = tensor_ptr(ctx, s->in_tensor);
                size_t p, n = (size_t)s->in_h * s->in_w;
                uint32_t c;
                for (p = 0; p < n; ++p, x += s->in_c)
                    for (c = 0; c < s->in_c; ++c)
                        x[c] = mnv3_clampf(x[c] * ctx->se_gate[c], se->scale_clamp);
            }
            break;
        }
        case MNV3_STEP_EXPAND:
            if (s->fused) continue; /* the next (depthwise) step runs it */
            /* fall through */
        case MNV3_STEP_PROJECT:
        case MNV3_STEP_LAST_CONV: {
            uint32_t pixels = s->out_h * s->out_w, nr = ctx->k->pointwise_nr;
            uint32_t tasks = tasks_for(ctx, s->macs, pixels * ((s->out_c + nr - 1) / nr));
            j.m_tasks = (pixels + PW_MIN_ROWS - 1) / PW_MIN_ROWS;
            if (s->kind == MNV3_STEP_LAST_CONV) {
                j.sums = ctx->sums;
                j.slices = pool_slices(s);
                if (j.m_tasks > j.slices) j.m_tasks = j.slices;
                zero_sums(ctx, j.slices, s->out_c);
            }
            if (j.m_tasks > tasks) j.m_tasks = tasks;
            if (j.m_tasks < 1) j.m_tasks = 1;
            j.n_tasks = tasks / j.m_tasks;
            if (j.n_tasks > (s->out_c + nr - 1) / nr) j.n_tasks = (s->out_c + nr - 1) / nr;
            if (j.n_tasks < 1) j.n_tasks = 1;
            j.tasks = j.m_tasks * j.n_tasks;
            if (s->kind == MNV3_STEP_PROJECT) {
                j.in_scale = se_scale;
                se_scale = NULL;
                j.residual = tensor_ptr(ctx, s->residual_tensor);
            }
            mnv3_pool_run(ctx->pool, j.tasks, run_pointwise, &j);
            if (s->kind == MNV3_STEP_LAST_CONV) {
                reduce_sums(ctx, j.slices, s->out_c, 1.0f / ((float)pixels), m->pool_clamp,
                            ctx->features);
            }
            break;
        }
        case MNV3_STEP_POOL:
            /* Pooling happened inside the last conv; the step exists for summaries/profiles. */
            head_in = ctx->features;
            break;
        case MNV3_STEP_HEAD: {
            int last = s->index + 1 == m->num_head;
            float *dst = last && logits ? logits : (head_in == ctx->head_a ? ctx->head_b : ctx->head_a);
            fc_parallel(ctx, s->conv, s->packed, head_in, dst);
            head_in = dst;
            break;
        }
        }
        if (ctx->cfg.profile) ctx->layer_ns[i] = now_ns() - t0;
    }
    if (features) memcpy(features, ctx->features, m->last_conv.out_channels * sizeof(float));
    (void)classes;
}

mnv3_status mnv3_run(mnv3_context *ctx, const float *input, size_t input_len, float *logits,
                     size_t logits_len, float *features, size_t features_len) {
    size_t per_image, n, classes, fdim;
    uint32_t b;
    if (!ctx || !input) return MNV3_ERR_NULL_ARGUMENT;
    n = ctx->cfg.batch;
    per_image = (size_t)3 * ctx->cfg.height * ctx->cfg.width;
    classes = mnv3_model_classes(ctx->model);
    fdim = mnv3_model_feature_dim(ctx->model);
    if (input_len != n * per_image) return MNV3_ERR_SHAPE;
    if ((logits == NULL) != (logits_len == 0) || (logits && logits_len != n * classes))
        return MNV3_ERR_SHAPE;
    if ((features == NULL) != (features_len == 0) || (features && features_len != n * fdim))
        return MNV3_ERR_SHAPE;
    for (b = 0; b < n; ++b)
        run_image(ctx, input + b * per_image, logits ? logits + b * classes : NULL,
                  features ? features + b * fdim : NULL);
    return MNV3_OK;
}
