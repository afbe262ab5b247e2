/* The executor: a table of what each step kind needs (scratch), how it is prepared at
 * context creation (its packed weights) and how it runs (splitting its layer into tasks
 * for the thread pool and calling the kernel rows). Everything a run touches lives in the
 * arena; nothing here allocates. */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/checked.h"
#include "context.h"

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

static uint64_t now_ns(void) {
#if defined(CLOCK_MONOTONIC)
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#else
    return 0;
#endif
}

/* Depthwise+SE sums per output row; the last conv's pooled sums per pixel slice. */
static uint32_t pool_slices(const mnv3_step *s) {
    uint32_t pixels = s->out_h * s->out_w, n;
    if (s->kind == MNV3_STEP_DEPTHWISE) return s->out_h;
    n = (pixels + POOL_SLICE_MIN_PIXELS - 1) / POOL_SLICE_MIN_PIXELS;
    return n < POOL_SLICES_MAX ? n : POOL_SLICES_MAX;
}

/* ------------------------------------------------------------------------------------ */
/* Jobs: one layer split into tasks                                                      */
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

/* What a run carries from one step to the next. */
typedef struct run_state {
    const float *input;              /* the image */
    const float *se_scale;           /* SE gate the next projection folds in, or NULL */
    const float *head_in;
    float *logits;
} run_state;

static void split(uint32_t total, uint32_t parts, uint32_t part, uint32_t align, uint32_t *b,
                  uint32_t *e) {
    const uint32_t units = (total + align - 1) / align;
    const uint32_t ub = (uint32_t)((uint64_t)units * part / parts);
    const uint32_t ue = (uint32_t)((uint64_t)units * (part + 1) / parts);
    MNV3_ASSERT(parts >= 1 && part < parts && align >= 1);
    *b = ub * align < total ? ub * align : total;
    *e = ue * align < total ? ue * align : total;
}

static float *slice_sums(const job *j, uint32_t slice) {
    return j->sums + (size_t)slice * j->s->out_c;
}

static uint32_t tasks_for(const mnv3_context *ctx, uint64_t macs, uint32_t units) {
    uint32_t t = ctx->threads;
    if (macs < MIN_PARALLEL_MACS) return 1;
    return t < units ? t : (units ? units : 1);
}

/* Bytes of one activation element: float16 for relaxed precision's FP16 rows. */
static size_t act_bytes(const mnv3_context *ctx) {
    return mnv3_act_elem_bytes(ctx->k.pointwise->act_type);
}

static float *tensor_ptr(mnv3_context *ctx, int32_t t) {
    return t >= 0 ? (float *)(ctx->activations + ctx->tensors[t].offset) : NULL;
}

/* The job accumulates channel sums per slice of step s (SE squeeze, global pool): zeroed
 * here, reduced in slice order after the tasks. */
static void start_sums(mnv3_context *ctx, job *j) {
    j->sums = ctx->sums;
    j->slices = pool_slices(j->s);
    memset(ctx->sums, 0, (size_t)j->slices * j->s->out_c * sizeof(float));
}

static void *task_workspace(const job *j, uint32_t task) {
    return j->ctx->workspace + (size_t)task * j->ctx->workspace_stride;
}

/* ------------------------------------------------------------------------------------ */
/* Stem                                                                                  */
/* ------------------------------------------------------------------------------------ */

static void stem_task(void *arg, uint32_t task) {
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
    if (a.row_begin < a.row_end) mnv3_call_conv(&j->ctx->k, &a);
}

static void run_stem(mnv3_context *ctx, run_state *st, job *j) {
    const mnv3_step *s = j->s;
    j->in = st->input;
    if (ctx->cfg.layout == MNV3_LAYOUT_NCHW) {
        j->in_row = s->in_w;
        j->in_col = 1;
        j->in_chan = (size_t)s->in_h * s->in_w;
    } else {
        j->in_row = (size_t)s->in_w * s->in_c;
        j->in_col = s->in_c;
        j->in_chan = 1;
    }
    j->tasks = tasks_for(ctx, s->macs, s->out_h);
    mnv3_pool_run(ctx->pool, j->tasks, stem_task, j);
}

/* ------------------------------------------------------------------------------------ */
/* Depthwise, with or without a fused expansion                                          */
/* ------------------------------------------------------------------------------------ */

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

/* Output rows [first, last): one call, or one per row (a slice each) for the SE squeeze. */
static void depthwise_span(const job *j, mnv3_depthwise_args *a, uint32_t first, uint32_t last) {
    uint32_t r;
    if (!j->sums) {
        a->row_begin = first;
        a->row_end = last;
        if (first < last) mnv3_call_depthwise(&j->ctx->k, a);
        return;
    }
    for (r = first; r < last; ++r) {
        a->row_begin = r;
        a->row_end = r + 1;
        a->channel_sums = slice_sums(j, r);
        mnv3_call_depthwise(&j->ctx->k, a);
    }
}

static void depthwise_task(void *arg, uint32_t task) {
    const job *j = (const job *)arg;
    mnv3_depthwise_args a;
    uint32_t first, last;
    depthwise_args(j, &a);
    split(j->s->out_h, j->tasks, task, 1, &first, &last);
    depthwise_span(j, &a, first, last);
}

/* Expanded rows [row, row + n) of a fused block into the task's ring (no wrap inside). */
static void fused_expand_rows(const job *j, uint32_t task, float *ring, uint32_t row, uint32_t n,
                              uint32_t part, uint32_t parts) {
    const mnv3_step *e = j->expand, *d = j->s;
    const size_t ab = act_bytes(j->ctx);
    mnv3_pointwise_args a;
    memset(&a, 0, sizeof a);
    a.input = mnv3_act_at(j->in, (size_t)row * e->in_w * e->in_c, ab);
    a.in_stride = e->in_c;
    a.packed = e->packed;
    a.bias = e->conv->bias;
    a.epilogue = e->conv->epilogue;
    a.output = mnv3_act_at_mut(ring, (size_t)(row % d->ring_rows) * e->out_w * e->out_c, ab);
    a.out_stride = e->out_c;
    a.in_channels = e->in_c;
    a.out_channels = e->out_c;
    a.oc_begin = 0;
    a.oc_end = e->out_c;
    a.pixel_begin = 0;
    a.pixel_end = (size_t)n * e->out_w;
    a.workspace = task_workspace(j, task);
    a.prefetch = e->prefetch;
    a.prefetch_count = e->prefetch_count;
    a.prefetch_part = part;
    a.prefetch_parts = parts;
    mnv3_call_pointwise(&j->ctx->k, &a);
}

void mnv3_exec_fused_bands(const mnv3_step *s, uint32_t first, uint32_t last,
                           const mnv3_band_walk *w) {
    const uint32_t K = s->conv->kernel, S = s->conv->stride, B = s->band_rows;
    uint32_t oy, done = 0;
    for (oy = first; oy < last; oy += B) {
        const uint32_t end = oy + B < last ? oy + B : last;
        const long lo = (long)oy * S - (long)s->pad_top;
        const long hi = (long)(end - 1) * S - (long)s->pad_top + (long)K;
        const uint32_t need_lo = lo < 0 ? 0 : (uint32_t)lo;
        const uint32_t need_hi = hi > (long)s->in_h ? s->in_h : (uint32_t)(hi < 0 ? 0 : hi);
        if (oy == first || done < need_lo) done = need_lo;
        w->band_start(w->arg);
        while (done < need_hi) { /* up to the ring's wrap point at a time */
            const uint32_t to_wrap = s->ring_rows - done % s->ring_rows;
            const uint32_t n = need_hi - done < to_wrap ? need_hi - done : to_wrap;
            w->expand(w->arg, done, n, oy / B);
            done += n;
        }
        w->depthwise(w->arg, oy, end);
    }
}

typedef struct fused_walk {
    const job *j;
    uint32_t task, bands;
    float *ring;
    mnv3_depthwise_args a;
    uint64_t t0;
} fused_walk;

static void fused_band_start(void *arg) {
    fused_walk *f = (fused_walk *)arg;
    if (f->j->ctx->cfg.profile) f->t0 = now_ns();
}

static void fused_expand(void *arg, uint32_t row, uint32_t n, uint32_t band) {
    fused_walk *f = (fused_walk *)arg;
    fused_expand_rows(f->j, f->task, f->ring, row, n, band, f->bands);
}

static void fused_depthwise(void *arg, uint32_t begin, uint32_t end) {
    fused_walk *f = (fused_walk *)arg;
    if (f->j->ctx->cfg.profile) f->j->ctx->fused_ns[f->task] += now_ns() - f->t0;
    depthwise_span(f->j, &f->a, begin, end);
}

/* A block whose expanded tensor would not fit in cache: each task walks its output rows
 * in bands; for every band it expands the input rows the band needs and that are not in its
 * ring yet, then runs the depthwise conv on them. The expanded tensor never leaves the
 * cache, and rows are expanded once per task (twice only at task boundaries). */
static void fused_task(void *arg, uint32_t task) {
    const job *j = (const job *)arg;
    const mnv3_step *s = j->s;
    fused_walk f;
    mnv3_band_walk w;
    uint32_t first, last;
    f.j = j;
    f.task = task;
    f.bands = (s->out_h + s->band_rows - 1) / s->band_rows;
    f.ring = j->ctx->rings + (size_t)task * j->ctx->ring_floats;
    f.t0 = 0;
    depthwise_args(j, &f.a);
    f.a.input = f.ring;
    f.a.in_ring_rows = s->ring_rows;
    split(s->out_h, j->tasks, task, 1, &first, &last);
    j->ctx->fused_ns[task] = 0;
    w.arg = &f;
    w.band_start = fused_band_start;
    w.expand = fused_expand;
    w.depthwise = fused_depthwise;
    mnv3_exec_fused_bands(s, first, last, &w);
}

static void run_depthwise(mnv3_context *ctx, run_state *st, job *j) {
    const mnv3_step *s = j->s;
    const uint32_t i = (uint32_t)(s - ctx->steps);
    (void)st;
    j->tasks = tasks_for(ctx, s->macs, s->out_h);
    if (s->blk->has_se) start_sums(ctx, j);
    if (s->band_rows) {
        j->expand = &ctx->steps[i - 1];
        j->tasks = tasks_for(ctx, s->macs + j->expand->macs, s->out_h);
        mnv3_pool_run(ctx->pool, j->tasks, fused_task, j);
        if (ctx->cfg.profile) { /* the expansion's share of the time, for the profile */
            uint64_t expand_ns = 0;
            uint32_t t;
            for (t = 0; t < j->tasks; ++t) expand_ns += ctx->fused_ns[t];
            ctx->layer_ns[i - 1] = expand_ns / j->tasks;
        }
    } else {
        mnv3_pool_run(ctx->pool, j->tasks, depthwise_task, j);
    }
    if (s->blk->has_se)
        mnv3_reduce_slices(ctx->sums, j->slices, s->out_c,
                           1.0f / ((float)s->out_h * (float)s->out_w), s->blk->se.squeeze_clamp,
                           ctx->se_mean);
}

/* ------------------------------------------------------------------------------------ */
/* Fully connected: squeeze-excite and the classifier                                    */
/* ------------------------------------------------------------------------------------ */

static void fc_task(void *arg, uint32_t task) {
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
    if (a.out_begin < a.out_end) mnv3_call_fc(&j->ctx->k, &a);
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
    mnv3_pool_run(ctx->pool, j.tasks, fc_task, &j);
}

static void run_se(mnv3_context *ctx, run_state *st, job *j) {
    const mnv3_step *s = j->s;
    const mnv3_squeeze_excite *se = &s->blk->se;
    fc_parallel(ctx, &se->reduce, s->packed, ctx->se_mean, ctx->se_hidden);
    fc_parallel(ctx, &se->expand, s->packed2, ctx->se_hidden, ctx->se_gate);
    if (mnv3_clamp_is_unbounded(se->scale_clamp)) {
        st->se_scale = ctx->se_gate; /* folded into the projection's input */
    } else {
        /* Clamped (quantised-range) models clamp x * gate itself: scale in place. */
        float *x = tensor_ptr(ctx, s->in_tensor);
        const size_t pixels = (size_t)s->in_h * s->in_w;
        if (act_bytes(ctx) == 2)
            mnv3_scale_channels_f16((uint16_t *)(void *)x, pixels, s->in_c, ctx->se_gate,
                                    se->scale_clamp);
        else
            mnv3_scale_channels(x, pixels, s->in_c, ctx->se_gate, se->scale_clamp);
    }
}

static void run_head(mnv3_context *ctx, run_state *st, job *j) {
    const mnv3_step *s = j->s;
    const int last = s->index + 1 == ctx->model->num_head;
    float *dst = last && st->logits ? st->logits
                                    : (st->head_in == ctx->head_a ? ctx->head_b : ctx->head_a);
    fc_parallel(ctx, s->conv, s->packed, st->head_in, dst);
    st->head_in = dst;
}

/* ------------------------------------------------------------------------------------ */
/* Pointwise: expansions, projections, the last conv (pooled)                            */
/* ------------------------------------------------------------------------------------ */

static void pointwise_task(void *arg, uint32_t task) {
    const job *j = (const job *)arg;
    const mnv3_step *s = j->s;
    const mnv3_kernels *k = &j->ctx->k;
    const uint32_t nt = task / j->m_tasks;
    mnv3_pixel_range p;
    int r;
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
    split(s->out_c, j->n_tasks, nt, k->pointwise->nr, &a.oc_begin, &a.oc_end);
    a.workspace = task_workspace(j, task);
    a.prefetch = s->prefetch;
    a.prefetch_count = s->prefetch_count;
    if (a.oc_begin >= a.oc_end) return;
    for (r = mnv3_exec_pixel_ranges(s, task, j->tasks, j->m_tasks, j->n_tasks, j->slices, 0, &p);
         r; r = mnv3_exec_pixel_ranges(s, task, j->tasks, j->m_tasks, j->n_tasks, j->slices, 1, &p)) {
        a.pixel_begin = p.begin;
        a.pixel_end = p.end;
        a.prefetch_part = p.part;
        a.prefetch_parts = p.parts;
        a.channel_sums = j->sums ? slice_sums(j, p.slice) : NULL;
        mnv3_call_pointwise(k, &a);
    }
}

int mnv3_exec_pixel_ranges(const mnv3_step *s, uint32_t task, uint32_t tasks, uint32_t m_tasks,
                           uint32_t n_tasks, uint32_t slices, int next, mnv3_pixel_range *p) {
    const uint32_t mt = task % m_tasks, nt = task / m_tasks, pixels = s->out_h * s->out_w;
    uint32_t pb, pe;
    if (!slices) { /* one range, the task's own */
        if (next) return 0;
        split(pixels, m_tasks, mt, 1, &pb, &pe);
        p->part = task;
        p->parts = tasks;
        p->slice = 0;
    } else {
        uint32_t sb, se;
        split(slices, m_tasks, mt, 1, &sb, &se);
        p->slice = next ? p->slice + 1 : sb;
        for (;; ++p->slice) {
            if (p->slice >= se) return 0;
            split(pixels, slices, p->slice, 1, &pb, &pe);
            if (pb < pe) break;
        }
        /* every slice call takes its own share of the prefetch ranges */
        p->part = p->slice * n_tasks + nt;
        p->parts = slices * n_tasks;
    }
    p->begin = pb;
    p->end = pe;
    return pb < pe;
}

void mnv3_exec_grid(const mnv3_context *ctx, const mnv3_step *s, uint32_t nr, uint32_t slices,
                    uint32_t *m_tasks, uint32_t *n_tasks) {
    const uint32_t pixels = s->out_h * s->out_w;
    const uint32_t panels = (s->out_c + nr - 1) / nr;
    const uint32_t tasks = tasks_for(ctx, s->macs, pixels * panels);
    uint32_t m = (pixels + PW_MIN_ROWS - 1) / PW_MIN_ROWS, n;
    if (slices && m > slices) m = slices;
    if (m > tasks) m = tasks;
    if (m < 1) m = 1;
    n = tasks / m;
    if (n > panels) n = panels;
    if (n < 1) n = 1;
    *m_tasks = m;
    *n_tasks = n;
}

static void run_pointwise(mnv3_context *ctx, run_state *st, job *j) {
    const mnv3_step *s = j->s;
    const uint32_t pixels = s->out_h * s->out_w;
    if (s->fused) return; /* the next (depthwise) step runs it */
    if (s->kind == MNV3_STEP_LAST_CONV) start_sums(ctx, j);
    mnv3_exec_grid(ctx, s, ctx->k.pointwise->nr, j->slices, &j->m_tasks, &j->n_tasks);
    j->tasks = j->m_tasks * j->n_tasks;
    if (s->kind == MNV3_STEP_PROJECT) {
        j->in_scale = st->se_scale;
        st->se_scale = NULL;
        j->residual = tensor_ptr(ctx, s->residual_tensor);
    }
    mnv3_pool_run(ctx->pool, j->tasks, pointwise_task, j);
    if (s->kind == MNV3_STEP_LAST_CONV)
        mnv3_reduce_slices(ctx->sums, j->slices, s->out_c, 1.0f / ((float)pixels),
                           ctx->model->pool_clamp, ctx->features);
}

static void run_pool(mnv3_context *ctx, run_state *st, job *j) {
    (void)j;
    /* Pooling happened inside the last conv; the step exists for summaries and profiles. */
    st->head_in = ctx->features;
}

/* ------------------------------------------------------------------------------------ */
/* Scratch each step kind asks for                                                       */
/* ------------------------------------------------------------------------------------ */

static int raise_to(size_t *need, size_t v) {
    if (v > *need) *need = v;
    return 1;
}

static int need_none(const mnv3_kernels *k, const mnv3_step *s, mnv3_scratch_needs *n) {
    (void)k;
    (void)s;
    (void)n;
    return 1;
}

static int need_pointwise(const mnv3_kernels *k, const mnv3_step *s, mnv3_scratch_needs *n) {
    size_t sums;
    if (!raise_to(&n->workspace_bytes, k->pointwise->workspace_bytes(k->pointwise, s->in_c)))
        return 0;
    if (s->kind != MNV3_STEP_LAST_CONV) return 1;
    return mnv3_size_mul(pool_slices(s), s->out_c, &sums) && raise_to(&n->sums, sums);
}

static int need_depthwise(const mnv3_kernels *k, const mnv3_step *s, mnv3_scratch_needs *n) {
    const size_t ab = mnv3_act_elem_bytes(k->pointwise->act_type);
    size_t sums, ring;
    if (s->blk->has_se && !(mnv3_size_mul(pool_slices(s), s->out_c, &sums) && raise_to(&n->sums, sums)))
        return 0;
    /* the ring is counted in floats; float16 rows need half as many */
    if (s->ring_rows &&
        !(mnv3_size_mul4(s->ring_rows, s->in_w, s->in_c, ab, &ring) &&
          raise_to(&n->ring, (ring + sizeof(float) - 1) / sizeof(float))))
        return 0;
    return 1;
}

static int need_se(const mnv3_kernels *k, const mnv3_step *s, mnv3_scratch_needs *n) {
    (void)k;
    return raise_to(&n->vector, s->in_c) && raise_to(&n->vector, s->blk->se.reduce.out_channels);
}

static int need_head(const mnv3_kernels *k, const mnv3_step *s, mnv3_scratch_needs *n) {
    (void)k;
    return raise_to(&n->head, s->out_c);
}

/* ------------------------------------------------------------------------------------ */
/* The table                                                                             */
/* ------------------------------------------------------------------------------------ */

typedef struct step_ops {
    int (*need)(const mnv3_kernels *k, const mnv3_step *s, mnv3_scratch_needs *n);
    void (*run)(mnv3_context *ctx, run_state *st, job *j);
} step_ops;

static const step_ops ops[] = {
    /* MNV3_STEP_STEM */ {need_none, run_stem},
    /* MNV3_STEP_EXPAND */ {need_pointwise, run_pointwise},
    /* MNV3_STEP_DEPTHWISE */ {need_depthwise, run_depthwise},
    /* MNV3_STEP_SE */ {need_se, run_se},
    /* MNV3_STEP_PROJECT */ {need_pointwise, run_pointwise},
    /* MNV3_STEP_LAST_CONV */ {need_pointwise, run_pointwise},
    /* MNV3_STEP_POOL */ {need_none, run_pool},
    /* MNV3_STEP_HEAD */ {need_head, run_head},
};

typedef char step_ops_complete[sizeof ops / sizeof *ops == MNV3_STEP_HEAD + 1 ? 1 : -1];

mnv3_status mnv3_executor_needs(const mnv3_model *m, const mnv3_kernels *k,
                                const mnv3_step *steps, uint32_t num_steps,
                                mnv3_scratch_needs *n, mnv3_error *e) {
    uint32_t i;
    memset(n, 0, sizeof *n);
    /* Never zero-sized, so every scratch pointer is a real address. */
    n->sums = n->vector = n->head = 1;
    n->features = m->last_conv.out_channels;
    for (i = 0; i < num_steps; ++i)
        if (!ops[steps[i].kind].need(k, &steps[i], n))
            return mnv3_set_error(e, MNV3_ERR_SIZE_OVERFLOW,
                                  "scratch of step %u does not fit in memory", i);
    return MNV3_OK;
}

void mnv3_executor_run(mnv3_context *ctx, const float *input, float *logits, float *features) {
    run_state st;
    uint32_t i;
    memset(&st, 0, sizeof st);
    st.input = input;
    st.logits = logits;
    st.head_in = ctx->features;
    for (i = 0; i < ctx->num_steps; ++i) {
        const mnv3_step *s = &ctx->steps[i];
        const uint64_t t0 = ctx->cfg.profile ? now_ns() : 0;
        job j;
        if (s->fused) continue; /* run, and timed, by the depthwise step after it */
        memset(&j, 0, sizeof j);
        j.ctx = ctx;
        j.s = s;
        j.in = tensor_ptr(ctx, s->in_tensor);
        j.out = tensor_ptr(ctx, s->out_tensor);
        ops[s->kind].run(ctx, &st, &j);
        if (ctx->cfg.profile) {
            ctx->layer_ns[i] = now_ns() - t0;
            if (s->band_rows) { /* the fused expansion's share is reported on its own step */
                const uint64_t e = ctx->layer_ns[i - 1];
                ctx->layer_ns[i] = ctx->layer_ns[i] > e ? ctx->layer_ns[i] - e : 0;
            }
        }
    }
    if (features)
        memcpy(features, ctx->features, ctx->model->last_conv.out_channels * sizeof(float));
}

/* ------------------------------------------------------------------------------------ */
/* Preparation: packed weights and the prefetch schedule                                 */
/* ------------------------------------------------------------------------------------ */

/* The weights step s streams (second: the SE's expand FC), or 0 bytes. */
static size_t step_weights(const mnv3_context *ctx, const mnv3_step *s, int second,
                           const char **begin) {
    const mnv3_conv *c = s->conv;
    const void *w = second ? s->packed2 : s->packed;
    if (s->kind == MNV3_STEP_SE)
        c = second ? &s->blk->se.expand : &s->blk->se.reduce;
    else if (second)
        return 0;
    if (!c || !w) return 0;
    *begin = (const char *)w;
    return mnv3_packed_weight_bytes(ctx->packed, c);
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

/* For the int8 executor (qexecutor.c), which splits its layers the same way. */
void mnv3_exec_split(uint32_t total, uint32_t parts, uint32_t part, uint32_t align, uint32_t *b,
                     uint32_t *e) {
    split(total, parts, part, align, b, e);
}
uint32_t mnv3_exec_tasks_for(const mnv3_context *ctx, uint64_t macs, uint32_t units) {
    return tasks_for(ctx, macs, units);
}
uint32_t mnv3_exec_pool_slices(const mnv3_step *s) { return pool_slices(s); }
uint64_t mnv3_exec_now_ns(void) { return now_ns(); }

void mnv3_executor_prepare(mnv3_context *ctx) {
    uint32_t i;
    for (i = 0; i < ctx->num_steps; ++i) {
        mnv3_step *s = &ctx->steps[i];
        s->packed = s->packed2 = NULL;
        if (s->kind == MNV3_STEP_SE) {
            s->packed = mnv3_packed_weight(ctx->packed, &s->blk->se.reduce);
            s->packed2 = mnv3_packed_weight(ctx->packed, &s->blk->se.expand);
        } else if (s->conv) {
            s->packed = mnv3_packed_weight(ctx->packed, s->conv);
        }
    }
    plan_prefetch(ctx);
}
