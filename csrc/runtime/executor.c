/* The executor, one for every precision: a table of what each step kind needs (scratch) and
 * how it runs (splitting its layer into tasks for the thread pool and calling the kernel
 * rows). Element types are the rows' business: here activations are bytes of
 * ctx->act_bytes each and vectors of ctx->vec_bytes. Everything a run touches lives in
 * the arena; nothing here allocates. */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/checked.h"
#include "context.h"
#include "layer.h"

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

uint32_t mnv3_exec_pool_slices(const mnv3_step *s) {
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
    const mnv3_step_binding *b;
    const void *in;
    void *out;
    const void *residual;
    const void *gate;                /* SE gate a projection reads, or NULL */
    mnv3_stem_input stem;
    void *sums;                      /* per-slice partial sums, or NULL */
    uint32_t slices;                 /* number of sum slices */
    uint32_t m_tasks, n_tasks;       /* pointwise task grid */
    const mnv3_conv *fc;             /* fully connected layer (head or SE) */
    const void *fc_packed, *fc_params;
    uint32_t tasks;
    const mnv3_step *expand;         /* fused expansion run by a depthwise job */
    const mnv3_step_binding *expand_b;
} job;

/* What a run carries from one step to the next. */
typedef struct run_state {
    const mnv3_stem_input *input;    /* the image */
    const void *gate;                /* SE gate the next projection reads, or NULL */
    const void *head_in;
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

static void *slice_sums(const job *j, uint32_t slice) {
    return (char *)j->sums + (size_t)slice * j->s->out_c * 4u;
}

static uint32_t tasks_for(const mnv3_context *ctx, uint64_t macs, uint32_t units) {
    uint32_t t = ctx->threads;
    if (macs < MIN_PARALLEL_MACS) return 1;
    return t < units ? t : (units ? units : 1);
}

static void *tensor_ptr(mnv3_context *ctx, int32_t t) {
    return t >= 0 ? ctx->activations + ctx->tensors[t].offset : NULL;
}

/* The job accumulates channel sums per slice of step s (SE squeeze, global pool): zeroed
 * here, pooled in slice order after the tasks. */
static void start_sums(mnv3_context *ctx, job *j) {
    j->sums = ctx->sums;
    j->slices = mnv3_exec_pool_slices(j->s);
    memset(ctx->sums, 0, (size_t)j->slices * j->s->out_c * 4u);
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
    a.input = j->stem.data;
    a.in_height = s->in_h;
    a.in_width = s->in_w;
    a.in_channels = s->in_c;
    a.in_row_stride = j->stem.row_stride;
    a.in_col_stride = j->stem.col_stride;
    a.in_chan_stride = j->stem.chan_stride;
    a.packed = j->b->packed[0];
    a.params = j->b->params[0];
    a.out_channels = s->out_c;
    a.kernel = s->conv->kernel;
    a.stride = s->conv->stride;
    a.pad_top = s->pad_top;
    a.pad_left = s->pad_left;
    a.out_height = s->out_h;
    a.out_width = s->out_w;
    split(s->out_h, j->tasks, task, 1, &a.row_begin, &a.row_end);
    a.output = j->out;
    a.workspace = task_workspace(j, task);
    if (a.row_begin < a.row_end) mnv3_call_conv(&j->ctx->k, &a);
}

static void run_stem(mnv3_context *ctx, run_state *st, job *j) {
    j->stem = *st->input;
    j->tasks = tasks_for(ctx, j->s->macs, j->s->out_h);
    mnv3_pool_run(ctx->pool, j->tasks, stem_task, j);
}

/* ------------------------------------------------------------------------------------ */
/* Pointwise: expansions, projections, the last conv (pooled)                            */
/* ------------------------------------------------------------------------------------ */

static void pointwise_args(const job *j, const mnv3_step *s, const mnv3_step_binding *b,
                           uint32_t task, mnv3_pointwise_args *a) {
    memset(a, 0, sizeof *a);
    a->input = j->in;
    a->in_stride = s->in_c;
    a->packed = b->packed[0];
    a->params = b->params[0];
    a->out_stride = s->out_c;
    a->in_channels = s->in_c;
    a->out_channels = s->out_c;
    a->workspace = task_workspace(j, task);
    a->prefetch = b->prefetch;
    a->prefetch_count = b->prefetch_count;
}

/* The pixel ranges pointwise task `task` of an m_tasks x n_tasks grid computes: its share
 * of the rows, or with channel-sum slices one range per slice it owns, and its share of
 * the prefetch ranges. First call with next = 0, then next = 1 until it returns 0. */
typedef struct pixel_range {
    size_t begin, end;
    uint32_t slice, part, parts;
} pixel_range;

static int pixel_ranges(const job *j, uint32_t task, int next, pixel_range *p) {
    const mnv3_step *s = j->s;
    const uint32_t mt = task % j->m_tasks, nt = task / j->m_tasks, pixels = s->out_h * s->out_w;
    uint32_t pb, pe;
    if (!j->sums) { /* one range, the task's own */
        if (next) return 0;
        split(pixels, j->m_tasks, mt, 1, &pb, &pe);
        p->part = task;
        p->parts = j->tasks;
        p->slice = 0;
    } else {
        uint32_t sb, se;
        split(j->slices, j->m_tasks, mt, 1, &sb, &se);
        p->slice = next ? p->slice + 1 : sb;
        for (;; ++p->slice) {
            if (p->slice >= se) return 0;
            split(pixels, j->slices, p->slice, 1, &pb, &pe);
            if (pb < pe) break;
        }
        /* every slice call takes its own share of the prefetch ranges */
        p->part = p->slice * j->n_tasks + nt;
        p->parts = j->slices * j->n_tasks;
    }
    p->begin = pb;
    p->end = pe;
    return pb < pe;
}

static void pointwise_task(void *arg, uint32_t task) {
    const job *j = (const job *)arg;
    const mnv3_step *s = j->s;
    const mnv3_kernels *k = &j->ctx->k;
    const uint32_t nt = task / j->m_tasks;
    pixel_range p;
    int r;
    mnv3_pointwise_args a;
    pointwise_args(j, s, j->b, task, &a);
    a.gate = j->gate;
    a.residual = j->residual;
    a.output = j->out;
    split(s->out_c, j->n_tasks, nt, k->row[MNV3_ROW_POINTWISE]->nr, &a.oc_begin, &a.oc_end);
    if (a.oc_begin >= a.oc_end) return;
    for (r = pixel_ranges(j, task, 0, &p); r; r = pixel_ranges(j, task, 1, &p)) {
        a.pixel_begin = p.begin;
        a.pixel_end = p.end;
        a.prefetch_part = p.part;
        a.prefetch_parts = p.parts;
        a.channel_sums = j->sums ? slice_sums(j, p.slice) : NULL;
        mnv3_call_pointwise(k, &a);
    }
}

/* Pointwise task grid: row tasks x output-panel tasks (row tasks at most `slices` when
 * non-zero). */
static void task_grid(const mnv3_context *ctx, const mnv3_step *s, uint32_t nr, uint32_t slices,
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
    if (s->fused) return; /* the next (depthwise) step runs it */
    if (s->kind == MNV3_STEP_LAST_CONV) start_sums(ctx, j);
    task_grid(ctx, s, ctx->k.row[MNV3_ROW_POINTWISE]->nr, j->slices, &j->m_tasks, &j->n_tasks);
    j->tasks = j->m_tasks * j->n_tasks;
    if (s->kind == MNV3_STEP_PROJECT) {
        j->gate = st->gate;
        st->gate = NULL;
        j->residual = tensor_ptr(ctx, s->residual_tensor);
    }
    mnv3_pool_run(ctx->pool, j->tasks, pointwise_task, j);
    if (s->kind == MNV3_STEP_LAST_CONV) ctx->ops->pool(ctx, s, j->slices, ctx->features);
}

/* ------------------------------------------------------------------------------------ */
/* Depthwise, with or without a fused expansion                                          */
/* ------------------------------------------------------------------------------------ */

static void depthwise_args(const job *j, uint32_t task, mnv3_depthwise_args *a) {
    const mnv3_step *s = j->s;
    memset(a, 0, sizeof *a);
    a->input = j->in;
    a->in_height = s->in_h;
    a->in_width = s->in_w;
    a->channels = s->in_c;
    a->packed = j->b->packed[0];
    a->params = j->b->params[0];
    a->kernel = s->conv->kernel;
    a->stride = s->conv->stride;
    a->pad_top = s->pad_top;
    a->pad_left = s->pad_left;
    a->out_height = s->out_h;
    a->out_width = s->out_w;
    a->output = j->out;
    a->workspace = task_workspace(j, task);
}

/* Output rows [first, last). With the SE squeeze, float sums go to one slice per row (so
 * that their order does not depend on the tasks), integer sums of all the rows to the
 * slice of the first, which only this task writes. */
static void depthwise_rows(const job *j, mnv3_depthwise_args *a, uint32_t first, uint32_t last) {
    uint32_t r;
    if (first >= last) return;
    if (!j->sums || j->ctx->ops->exact_sums) {
        a->row_begin = first;
        a->row_end = last;
        a->channel_sums = j->sums ? slice_sums(j, first) : NULL;
        mnv3_call_depthwise(&j->ctx->k, a);
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
    depthwise_args(j, task, &a);
    split(j->s->out_h, j->tasks, task, 1, &first, &last);
    depthwise_rows(j, &a, first, last);
}

/* A block whose expanded tensor would not fit in cache: each task walks its output rows
 * in bands; for every band it expands the input rows the band needs and that are not in
 * its ring yet (never across the ring's wrap), then runs the depthwise conv on them. The
 * expanded tensor never leaves the cache, and rows are expanded once per task (twice only
 * at task boundaries). */
static void fused_task(void *arg, uint32_t task) {
    const job *j = (const job *)arg;
    mnv3_context *ctx = j->ctx;
    const mnv3_step *s = j->s, *e = j->expand;
    const uint32_t K = s->conv->kernel, S = s->conv->stride, B = s->band_rows;
    const uint32_t bands = (s->out_h + B - 1) / B;
    unsigned char *ring = ctx->rings + (size_t)task * ctx->ring_stride;
    const size_t row_bytes = (size_t)e->out_w * e->out_c * ctx->act_bytes;
    mnv3_depthwise_args dw;
    mnv3_pointwise_args pw;
    uint32_t first, last, oy, done = 0;
    depthwise_args(j, task, &dw);
    dw.input = ring;
    dw.in_ring_rows = s->ring_rows;
    pointwise_args(j, e, j->expand_b, task, &pw);
    pw.oc_end = e->out_c;
    split(s->out_h, j->tasks, task, 1, &first, &last);
    ctx->fused_ns[task] = 0;
    for (oy = first; oy < last; oy += B) {
        const uint32_t end = oy + B < last ? oy + B : last;
        const long lo = (long)oy * S - (long)s->pad_top;
        const long hi = (long)(end - 1) * S - (long)s->pad_top + (long)K;
        const uint32_t need_lo = lo < 0 ? 0 : (uint32_t)lo;
        const uint32_t need_hi = hi > (long)s->in_h ? s->in_h : (uint32_t)(hi < 0 ? 0 : hi);
        const uint64_t t0 = ctx->cfg.profile ? now_ns() : 0;
        if (oy == first || done < need_lo) done = need_lo;
        while (done < need_hi) { /* up to the ring's wrap point at a time */
            const uint32_t to_wrap = s->ring_rows - done % s->ring_rows;
            const uint32_t n = need_hi - done < to_wrap ? need_hi - done : to_wrap;
            pw.input = (const char *)j->in + (size_t)done * e->in_w * e->in_c * ctx->act_bytes;
            pw.output = ring + (size_t)(done % s->ring_rows) * row_bytes;
            pw.pixel_end = (size_t)n * e->out_w;
            pw.prefetch_part = oy / B;
            pw.prefetch_parts = bands;
            mnv3_call_pointwise(&ctx->k, &pw);
            done += n;
        }
        if (ctx->cfg.profile) ctx->fused_ns[task] += now_ns() - t0;
        depthwise_rows(j, &dw, oy, end);
    }
}

static void run_depthwise(mnv3_context *ctx, run_state *st, job *j) {
    const mnv3_step *s = j->s;
    const uint32_t i = (uint32_t)(s - ctx->steps);
    (void)st;
    j->tasks = tasks_for(ctx, s->macs, s->out_h);
    if (s->blk->has_se) start_sums(ctx, j);
    if (s->band_rows) {
        j->expand = &ctx->steps[i - 1];
        j->expand_b = &ctx->bind[i - 1];
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
    if (s->blk->has_se) ctx->ops->pool(ctx, s, j->slices, ctx->se_pooled);
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
    a.params = j->fc_params;
    a.output = j->out;
    split(c->out_channels, j->tasks, task, 1, &a.out_begin, &a.out_end);
    if (a.out_begin < a.out_end) mnv3_call_fc(&j->ctx->k, &a);
}

/* SE and head layers are matrix-vector products bound by weight bandwidth: spread the
 * output rows over the threads once they are big enough to pay for the wake-up. */
static void fc_parallel(mnv3_context *ctx, const mnv3_conv *c, const void *packed,
                        const void *params, const void *in, void *out) {
    job j;
    memset(&j, 0, sizeof j);
    j.ctx = ctx;
    j.fc = c;
    j.fc_packed = packed;
    j.fc_params = params;
    j.in = in;
    j.out = out;
    j.tasks = tasks_for(ctx, (uint64_t)c->in_channels * c->out_channels, c->out_channels);
    mnv3_pool_run(ctx->pool, j.tasks, fc_task, &j);
}

/* The gate goes to the projection, which reads its input through it. */
static void run_se(mnv3_context *ctx, run_state *st, job *j) {
    const mnv3_squeeze_excite *se = &j->s->blk->se;
    fc_parallel(ctx, &se->reduce, j->b->packed[0], j->b->params[0], ctx->se_pooled,
                ctx->se_hidden);
    fc_parallel(ctx, &se->expand, j->b->packed[1], j->b->params[1], ctx->se_hidden,
                ctx->se_gate);
    st->gate = ctx->se_gate;
}

static void run_head(mnv3_context *ctx, run_state *st, job *j) {
    void *dst = st->head_in == ctx->head_a ? ctx->head_b : ctx->head_a;
    fc_parallel(ctx, j->s->conv, j->b->packed[0], j->b->params[0], st->head_in, dst);
    st->head_in = dst;
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
    if (v == SIZE_MAX) return 0;
    if (v > *need) *need = v;
    return 1;
}

static int row_workspace(const mnv3_model *m, const mnv3_kernels *k, const mnv3_conv *c,
                         uint32_t in_w, uint32_t out_w, mnv3_scratch_needs *n) {
    mnv3_layer l;
    const mnv3_row *row;
    mnv3_layer_of(m, c, &l);
    row = k->row[l.kind];
    return raise_to(&n->workspace_bytes, row->workspace_bytes(row, &l, in_w, out_w));
}

static int need_stem(const mnv3_model *m, const mnv3_kernels *k, const mnv3_step *s,
                     mnv3_scratch_needs *n) {
    return row_workspace(m, k, s->conv, s->in_w, s->out_w, n);
}

static int pool_sums(const mnv3_step *s, mnv3_scratch_needs *n) {
    size_t sums;
    return mnv3_size_mul(mnv3_exec_pool_slices(s), s->out_c, &sums) && raise_to(&n->sums, sums);
}

static int need_pointwise(const mnv3_model *m, const mnv3_kernels *k, const mnv3_step *s,
                          mnv3_scratch_needs *n) {
    if (!row_workspace(m, k, s->conv, s->in_w, s->out_w, n)) return 0;
    return s->kind != MNV3_STEP_LAST_CONV || pool_sums(s, n);
}

static int need_depthwise(const mnv3_model *m, const mnv3_kernels *k, const mnv3_step *s,
                          mnv3_scratch_needs *n) {
    const size_t ab = mnv3_dtype_size(mnv3_kernels_act_type(k));
    size_t ring;
    if (!row_workspace(m, k, s->conv, s->in_w, s->out_w, n)) return 0;
    if (s->blk->has_se && !pool_sums(s, n)) return 0;
    return !s->ring_rows || (mnv3_size_mul4(s->ring_rows, s->in_w, s->in_c, ab, &ring) &&
                             raise_to(&n->ring_bytes, ring));
}

static int need_se(const mnv3_model *m, const mnv3_kernels *k, const mnv3_step *s,
                   mnv3_scratch_needs *n) {
    (void)m;
    (void)k;
    return raise_to(&n->vector, s->in_c) && raise_to(&n->vector, s->blk->se.reduce.out_channels);
}

static int need_head(const mnv3_model *m, const mnv3_kernels *k, const mnv3_step *s,
                     mnv3_scratch_needs *n) {
    (void)m;
    (void)k;
    return raise_to(&n->head, s->out_c);
}

static int need_none(const mnv3_model *m, const mnv3_kernels *k, const mnv3_step *s,
                     mnv3_scratch_needs *n) {
    (void)m;
    (void)k;
    (void)s;
    (void)n;
    return 1;
}

/* ------------------------------------------------------------------------------------ */
/* The table                                                                             */
/* ------------------------------------------------------------------------------------ */

typedef struct step_ops {
    int (*need)(const mnv3_model *m, const mnv3_kernels *k, const mnv3_step *s,
                mnv3_scratch_needs *n);
    void (*run)(mnv3_context *ctx, run_state *st, job *j);
} step_ops;

static const step_ops ops[] = {
    /* MNV3_STEP_STEM */ {need_stem, run_stem},
    /* MNV3_STEP_EXPAND */ {need_pointwise, run_pointwise},
    /* MNV3_STEP_DEPTHWISE */ {need_depthwise, run_depthwise},
    /* MNV3_STEP_SE */ {need_se, run_se},
    /* MNV3_STEP_PROJECT */ {need_pointwise, run_pointwise},
    /* MNV3_STEP_LAST_CONV */ {need_pointwise, run_pointwise},
    /* MNV3_STEP_POOL */ {need_none, run_pool},
    /* MNV3_STEP_HEAD */ {need_head, run_head},
};

typedef char step_ops_complete[sizeof ops / sizeof *ops == MNV3_STEP_HEAD + 1 ? 1 : -1];

/* The convs of step s (an SE step has two), NULL where there is none. */
static void step_convs(const mnv3_step *s, const mnv3_conv **c) {
    c[0] = s->kind == MNV3_STEP_SE ? &s->blk->se.reduce : s->conv;
    c[1] = s->kind == MNV3_STEP_SE ? &s->blk->se.expand : NULL;
}

static size_t params_bytes(const mnv3_model *m, const mnv3_kernels *k, const mnv3_conv *c) {
    mnv3_layer l;
    const mnv3_row *row;
    mnv3_layer_of(m, c, &l);
    row = k->row[l.kind];
    return row->params_bytes(row, &l);
}

static int add_params(const mnv3_model *m, const mnv3_kernels *k, const mnv3_step *s,
                      mnv3_scratch_needs *n) {
    const mnv3_conv *c[2];
    size_t bytes;
    int i;
    step_convs(s, c);
    for (i = 0; i < 2; ++i)
        if (c[i] && !(mnv3_size_align(params_bytes(m, k, c[i]), 64, &bytes) &&
                      mnv3_size_add(n->params_bytes, bytes, &n->params_bytes)))
            return 0;
    return 1;
}

mnv3_status mnv3_executor_needs(const mnv3_model *m, const mnv3_kernels *k,
                                const mnv3_step *steps, uint32_t num_steps,
                                mnv3_scratch_needs *n, mnv3_error *e) {
    uint32_t i;
    memset(n, 0, sizeof *n);
    /* Never zero-sized, so every scratch pointer is a real address. */
    n->sums = n->vector = n->head = 1;
    n->features = m->last_conv.out_channels;
    for (i = 0; i < num_steps; ++i)
        if (!ops[steps[i].kind].need(m, k, &steps[i], n) || !add_params(m, k, &steps[i], n))
            return mnv3_set_error(e, MNV3_ERR_SIZE_OVERFLOW,
                                  "scratch of step %u does not fit in memory", i);
    return MNV3_OK;
}

/* What step i produced, for the tap and the observer: a feature map, or for an SE step the
 * gate, for the pool the pooled vector, for a head step its output. A last conv whose
 * output is only pooled produces nothing. */
static void *step_result(mnv3_context *ctx, uint32_t i, void *out, const run_state *st,
                         size_t *bytes, size_t *elements) {
    const mnv3_step *s = &ctx->steps[i];
    switch (s->kind) {
    case MNV3_STEP_SE: *elements = s->in_c; out = ctx->se_gate; break;
    case MNV3_STEP_POOL: *elements = s->out_c; out = ctx->features; break;
    case MNV3_STEP_HEAD: *elements = s->out_c; out = (void *)(uintptr_t)st->head_in; break;
    default:
        *elements = (size_t)s->out_h * s->out_w * s->out_c;
        *bytes = *elements * ctx->act_bytes;
        return out;
    }
    *bytes = *elements * ctx->vec_bytes;
    return out;
}

static void report(mnv3_context *ctx, uint32_t i, void *out, const run_state *st) {
    size_t bytes, elements;
    void *data = step_result(ctx, i, out, st, &bytes, &elements);
    if (!data) return;
    if (ctx->observer) ctx->observer(ctx->observer_user, ctx, i, data, elements);
    if (ctx->tap) {
        mnv3_layer_info info;
        mnv3_step_describe(ctx->model, &ctx->steps[i], &info);
        ctx->tap(ctx->tap_user, i, info.name, data, bytes);
    }
}

void mnv3_executor_run(mnv3_context *ctx, const mnv3_stem_input *input) {
    run_state st;
    uint32_t i;
    memset(&st, 0, sizeof st);
    st.input = input;
    st.head_in = ctx->features;
    for (i = 0; i < ctx->num_steps; ++i) {
        const mnv3_step *s = &ctx->steps[i];
        const uint64_t t0 = ctx->cfg.profile ? now_ns() : 0;
        job j;
        if (s->fused) continue; /* run, and timed, by the depthwise step after it */
        memset(&j, 0, sizeof j);
        j.ctx = ctx;
        j.s = s;
        j.b = &ctx->bind[i];
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
        if (ctx->tap || ctx->observer) report(ctx, i, j.out, &st);
    }
    ctx->logits = st.head_in;
}

/* ------------------------------------------------------------------------------------ */
/* Preparation: bindings and the prefetch schedule                                       */
/* ------------------------------------------------------------------------------------ */

/* The weights conv `which` of step s streams, or 0 bytes. */
static size_t step_weights(const mnv3_context *ctx, const mnv3_step *s, int which,
                           const char **begin) {
    const mnv3_conv *c = s->conv;
    if (s->kind == MNV3_STEP_SE)
        c = which ? &s->blk->se.expand : &s->blk->se.reduce;
    else if (which)
        return 0;
    if (!c) return 0;
    *begin = (const char *)mnv3_packed_weight(ctx->packed, c);
    return mnv3_packed_weight_bytes(ctx->packed, c);
}

/* What is left of step i's prefetch budget: a pointwise layer may fetch ahead
 * PREFETCH_BYTES_PER_MAC bytes per multiply-add; other layers nothing. */
static size_t prefetch_budget_left(const mnv3_context *ctx, uint32_t i) {
    const mnv3_step *s = &ctx->steps[i];
    const mnv3_step_binding *b = &ctx->bind[i];
    size_t total, used = 0;
    uint32_t r;
    if (s->kind != MNV3_STEP_EXPAND && s->kind != MNV3_STEP_PROJECT &&
        s->kind != MNV3_STEP_LAST_CONV)
        return 0;
    total = (size_t)((double)s->macs * PREFETCH_BYTES_PER_MAC);
    for (r = 0; r < b->prefetch_count; ++r) used += b->prefetch[r].bytes;
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
    int which;
    if (env && strcmp(env, "0") == 0) return; /* for measuring what the schedule is worth */
    for (j = 0; j < ctx->num_steps; ++j) {
        for (which = 0; which < 2; ++which) {
            const char *begin = NULL;
            size_t left = step_weights(ctx, &ctx->steps[j], which, &begin);
            for (i = j; i-- > 0 && left >= 64u;) {
                mnv3_step_binding *b = &ctx->bind[i];
                const size_t budget = prefetch_budget_left(ctx, i);
                const size_t take_bytes = left < budget ? left : budget;
                if (take_bytes < 64u || b->prefetch_count == MNV3_STEP_PREFETCH_RANGES) continue;
                left -= take_bytes;
                b->prefetch[b->prefetch_count].begin = begin + left;
                b->prefetch[b->prefetch_count].bytes = take_bytes;
                ++b->prefetch_count;
            }
        }
    }
}

void mnv3_executor_prepare(mnv3_context *ctx) {
    unsigned char *at = ctx->params;
    uint32_t i;
    int j;
    memset(ctx->bind, 0, ctx->num_steps * sizeof *ctx->bind);
    for (i = 0; i < ctx->num_steps; ++i) {
        mnv3_step_binding *b = &ctx->bind[i];
        const mnv3_conv *c[2];
        step_convs(&ctx->steps[i], c);
        for (j = 0; j < 2; ++j) {
            mnv3_layer l;
            const mnv3_row *row;
            size_t bytes;
            if (!c[j]) continue;
            mnv3_layer_of(ctx->model, c[j], &l);
            row = ctx->k.row[l.kind];
            bytes = row->params_bytes(row, &l);
            b->packed[j] = mnv3_packed_weight(ctx->packed, c[j]);
            b->params[j] = at;
            memset(at, 0, bytes);
            if (bytes) row->prepare(row, &l, at);
            at += (bytes + 63u) & ~(size_t)63u;
        }
    }
    plan_prefetch(ctx);
}
