/* The executor of quantized (int8) models: the same steps, tensors and arena as the float
 * executor, one byte per activation, every layer through the int8 kernel rows
 * (kernels.h) and the network-level ops (pools, SE gate, residual add) in the integer
 * arithmetic of quant.h. Nothing here uses float or allocates; the fixed-point parameters
 * were derived when the model was loaded and the context was created. */
#include <string.h>

#include "base/checked.h"
#include "context.h"

typedef struct qjob {
    mnv3_context *ctx;
    const mnv3_step *s;
    const int8_t *in;
    int8_t *out;
    const int8_t *residual;
    const int8_t *gate;              /* SE gate bytes for a projection, or NULL */
    int32_t *sums;                   /* per-slice channel sums, or NULL */
    uint32_t slices;
    uint32_t m_tasks, n_tasks, tasks;
    const mnv3_conv *fc;
    const void *fc_packed;
    const mnv3_step *expand;         /* fused expansion run by a depthwise job */
} qjob;

typedef struct qrun_state {
    const int8_t *gate;
    const int8_t *head_in;
    int8_t *logits;
} qrun_state;

static int8_t *qtensor(mnv3_context *ctx, int32_t t) {
    return t >= 0 ? (int8_t *)(ctx->activations + ctx->tensors[t].offset) : NULL;
}

static void *qworkspace(const qjob *j, uint32_t task) {
    return j->ctx->workspace + (size_t)task * j->ctx->workspace_stride;
}

static int32_t *qslice(const qjob *j, uint32_t slice) {
    return j->sums + (size_t)slice * j->s->out_c;
}

static void requant_of(const mnv3_conv *c, mnv3_q8_requant *r) {
    r->qmul = c->q.qmul;
    r->out_zp = c->q.output.zero_point;
    r->act_lo = c->q.act_lo;
    r->act_hi = c->q.act_hi;
    r->lut = c->q.table;
}

static void start_qsums(mnv3_context *ctx, qjob *j) {
    j->sums = (int32_t *)(void *)ctx->sums;
    j->slices = mnv3_exec_pool_slices(j->s);
    memset(j->sums, 0, (size_t)j->slices * j->s->out_c * sizeof(int32_t));
}

/* The slices' partial sums, added in slice order, then pooled to bytes. */
static void finish_qsums(const qjob *j, int8_t *dst) {
    const uint32_t c = j->s->out_c;
    uint32_t sl, k;
    for (sl = 1; sl < j->slices; ++sl)
        for (k = 0; k < c; ++k)
            j->sums[k] = (int32_t)((uint32_t)j->sums[k] + (uint32_t)qslice(j, sl)[k]);
    mnv3_q_pool_sums(&j->ctx->q_pools[j->s - j->ctx->steps], j->sums, c, dst);
}

/* ---- Stem ---------------------------------------------------------------------------------- */

static void qstem_task(void *arg, uint32_t task) {
    const qjob *j = (const qjob *)arg;
    const mnv3_step *s = j->s;
    mnv3_q8_conv_args a;
    memset(&a, 0, sizeof a);
    a.input = j->in;
    a.in_height = s->in_h;
    a.in_width = s->in_w;
    a.in_channels = s->in_c;
    a.in_row_stride = (size_t)s->in_w * s->in_c;
    a.in_col_stride = s->in_c;
    a.in_chan_stride = 1;
    a.in_zp = s->conv->q8.input_zero_point;
    a.packed = s->packed;
    a.bias = s->conv->q8.bias;
    a.weight_zp = s->conv->q8.weight_zero_point;
    a.out_channels = s->out_c;
    a.kernel = s->conv->kernel;
    a.stride = s->conv->stride;
    a.pad_top = s->pad_top;
    a.pad_left = s->pad_left;
    a.out_height = s->out_h;
    a.out_width = s->out_w;
    mnv3_exec_split(s->out_h, j->tasks, task, 1, &a.row_begin, &a.row_end);
    requant_of(s->conv, &a.requant);
    a.output = j->out;
    a.workspace = qworkspace(j, task);
    if (a.row_begin < a.row_end) mnv3_call_q8_conv(&j->ctx->k, &a);
}

static void qrun_stem(mnv3_context *ctx, qrun_state *st, qjob *j) {
    (void)st;
    j->in = ctx->q_input;
    j->tasks = mnv3_exec_tasks_for(ctx, j->s->macs, j->s->out_h);
    mnv3_pool_run(ctx->pool, j->tasks, qstem_task, j);
}

/* ---- Pointwise ------------------------------------------------------------------------------ */

static void pointwise_args(const qjob *j, const mnv3_step *s, uint32_t task,
                           mnv3_q8_pointwise_args *a) {
    const mnv3_conv *c = s->conv;
    memset(a, 0, sizeof *a);
    a->input = j->in;
    a->in_stride = s->in_c;
    a->in_zp = c->q8.input_zero_point;
    a->packed = s->packed;
    a->bias = c->q8.bias;
    a->weight_zp = c->q8.weight_zero_point;
    requant_of(c, &a->requant);
    a->out_stride = s->out_c;
    a->in_channels = s->in_c;
    a->out_channels = s->out_c;
    a->workspace = qworkspace(j, task);
    a->prefetch = s->prefetch;
    a->prefetch_count = s->prefetch_count;
    a->prefetch_part = task;
    a->prefetch_parts = j->tasks ? j->tasks : 1;
}

static void qpointwise_task(void *arg, uint32_t task) {
    const qjob *j = (const qjob *)arg;
    const mnv3_step *s = j->s;
    const mnv3_kernels *k = &j->ctx->k;
    const uint32_t nt = task / j->m_tasks;
    mnv3_pixel_range p;
    int r;
    mnv3_q8_pointwise_args a;
    pointwise_args(j, s, task, &a);
    a.output = j->out;
    if (j->gate) {
        const mnv3_block *b = s->blk;
        const mnv3_conv *dw = &b->depthwise;
        a.gate.gate = j->gate;
        a.gate.x_zp = mnv3_conv_result_q(dw).zero_point;
        a.gate.gate_zp = mnv3_conv_result_q(&b->se.expand).zero_point;
        a.gate.qmul = b->se_mul.m;
        a.gate.act_lo = b->se_mul.lo;
        a.gate.act_hi = b->se_mul.hi;
    }
    if (j->residual) {
        const mnv3_qadd *add = &s->blk->residual_add;
        a.residual = j->residual;
        a.add.a_zp = add->a_zp;
        a.add.b_zp = add->b_zp;
        a.add.a_mul = add->a;
        a.add.b_mul = add->b;
        a.add.out_mul = add->out;
        a.add.left_shift = 20;
        a.add.out_zp = add->out_zp;
        a.add.act_lo = add->lo;
        a.add.act_hi = add->hi;
    }
    mnv3_exec_split(s->out_c, j->n_tasks, nt, k->q8_pointwise->nr, &a.oc_begin, &a.oc_end);
    if (a.oc_begin >= a.oc_end) return;
    for (r = mnv3_exec_pixel_ranges(s, task, j->tasks, j->m_tasks, j->n_tasks, j->slices, 0, &p);
         r; r = mnv3_exec_pixel_ranges(s, task, j->tasks, j->m_tasks, j->n_tasks, j->slices, 1, &p)) {
        a.pixel_begin = p.begin;
        a.pixel_end = p.end;
        a.prefetch_part = p.part;
        a.prefetch_parts = p.parts;
        a.channel_sums = j->sums ? qslice(j, p.slice) : NULL;
        mnv3_call_q8_pointwise(k, &a);
    }
}

static void qrun_pointwise(mnv3_context *ctx, qrun_state *st, qjob *j) {
    const mnv3_step *s = j->s;
    if (s->fused) return; /* the next (depthwise) step runs it */
    if (s->kind == MNV3_STEP_LAST_CONV) start_qsums(ctx, j);
    mnv3_exec_grid(ctx, s, ctx->k.q8_pointwise->nr, j->slices, &j->m_tasks, &j->n_tasks);
    j->tasks = j->m_tasks * j->n_tasks;
    if (s->kind == MNV3_STEP_PROJECT) {
        j->gate = st->gate;
        st->gate = NULL;
        j->residual = qtensor(ctx, s->residual_tensor);
    }
    mnv3_pool_run(ctx->pool, j->tasks, qpointwise_task, j);
    if (s->kind == MNV3_STEP_LAST_CONV) finish_qsums(j, (int8_t *)(void *)ctx->features);
}

/* ---- Depthwise, with or without a fused expansion ------------------------------------------ */

static void depthwise_args(const qjob *j, uint32_t task, mnv3_q8_depthwise_args *a) {
    const mnv3_step *s = j->s;
    memset(a, 0, sizeof *a);
    a->input = j->in;
    a->in_height = s->in_h;
    a->in_width = s->in_w;
    a->channels = s->in_c;
    a->in_zp = s->conv->q8.input_zero_point;
    a->packed = s->packed;
    a->bias = s->conv->q8.bias;
    a->weight_zp = s->conv->q8.weight_zero_point;
    a->kernel = s->conv->kernel;
    a->stride = s->conv->stride;
    a->pad_top = s->pad_top;
    a->pad_left = s->pad_left;
    a->out_height = s->out_h;
    a->out_width = s->out_w;
    requant_of(s->conv, &a->requant);
    a->output = j->out;
    a->workspace = qworkspace(j, task);
}

/* Output rows [first, last) in one call. The SE squeeze's sums of all of them go to the
 * slice of the first row, which only this task writes: integer sums do not depend on how
 * the rows are grouped, so any thread count gives the same pooled bytes. */
static void depthwise_rows(const qjob *j, mnv3_q8_depthwise_args *a, uint32_t first,
                           uint32_t last) {
    if (first >= last) return;
    a->row_begin = first;
    a->row_end = last;
    a->channel_sums = j->sums ? qslice(j, first) : NULL;
    mnv3_call_q8_depthwise(&j->ctx->k, a);
}

static void qdepthwise_task(void *arg, uint32_t task) {
    const qjob *j = (const qjob *)arg;
    mnv3_q8_depthwise_args a;
    uint32_t first, last;
    depthwise_args(j, task, &a);
    mnv3_exec_split(j->s->out_h, j->tasks, task, 1, &first, &last);
    depthwise_rows(j, &a, first, last);
}

/* Expanded rows [row, row + n) of a fused block into the task's ring (no wrap inside). */
static void qexpand_rows(const qjob *j, uint32_t task, int8_t *ring, uint32_t row, uint32_t n) {
    const mnv3_step *e = j->expand, *d = j->s;
    mnv3_q8_pointwise_args a;
    qjob ej = *j;
    ej.in = j->in + (size_t)row * e->in_w * e->in_c;
    pointwise_args(&ej, e, task, &a);
    a.output = ring + (size_t)(row % d->ring_rows) * e->out_w * e->out_c;
    a.oc_begin = 0;
    a.oc_end = e->out_c;
    a.pixel_begin = 0;
    a.pixel_end = (size_t)n * e->out_w;
    mnv3_call_q8_pointwise(&j->ctx->k, &a);
}

typedef struct qfused_walk {
    const qjob *j;
    uint32_t task;
    int8_t *ring;
    mnv3_q8_depthwise_args a;
} qfused_walk;

static void qband_start(void *arg) { (void)arg; }

static void qband_expand(void *arg, uint32_t row, uint32_t n, uint32_t band) {
    qfused_walk *f = (qfused_walk *)arg;
    (void)band;
    qexpand_rows(f->j, f->task, f->ring, row, n);
}

static void qband_depthwise(void *arg, uint32_t begin, uint32_t end) {
    qfused_walk *f = (qfused_walk *)arg;
    depthwise_rows(f->j, &f->a, begin, end);
}

static void qfused_task(void *arg, uint32_t task) {
    const qjob *j = (const qjob *)arg;
    const mnv3_step *s = j->s;
    qfused_walk f;
    mnv3_band_walk w;
    uint32_t first, last;
    f.j = j;
    f.task = task;
    f.ring = (int8_t *)(void *)(j->ctx->rings + (size_t)task * j->ctx->ring_floats);
    depthwise_args(j, task, &f.a);
    f.a.input = f.ring;
    f.a.in_ring_rows = s->ring_rows;
    mnv3_exec_split(s->out_h, j->tasks, task, 1, &first, &last);
    w.arg = &f;
    w.band_start = qband_start;
    w.expand = qband_expand;
    w.depthwise = qband_depthwise;
    mnv3_exec_fused_bands(s, first, last, &w);
}

static void qrun_depthwise(mnv3_context *ctx, qrun_state *st, qjob *j) {
    const mnv3_step *s = j->s;
    const uint32_t i = (uint32_t)(s - ctx->steps);
    (void)st;
    j->tasks = mnv3_exec_tasks_for(ctx, s->macs, s->out_h);
    if (s->blk->has_se) start_qsums(ctx, j);
    if (s->band_rows) {
        j->expand = &ctx->steps[i - 1];
        j->tasks = mnv3_exec_tasks_for(ctx, s->macs + j->expand->macs, s->out_h);
        mnv3_pool_run(ctx->pool, j->tasks, qfused_task, j);
    } else {
        mnv3_pool_run(ctx->pool, j->tasks, qdepthwise_task, j);
    }
    if (s->blk->has_se) finish_qsums(j, (int8_t *)(void *)ctx->se_mean);
}

/* ---- Fully connected: squeeze-excite and the classifier ------------------------------------ */

static void qfc_task(void *arg, uint32_t task) {
    const qjob *j = (const qjob *)arg;
    const mnv3_conv *c = j->fc;
    mnv3_q8_fc_args a;
    memset(&a, 0, sizeof a);
    a.input = j->in;
    a.in_zp = c->q8.input_zero_point;
    a.in_features = c->in_channels;
    a.out_features = c->out_channels;
    a.packed = j->fc_packed;
    a.bias = c->q8.bias;
    a.weight_zp = c->q8.weight_zero_point;
    requant_of(c, &a.requant);
    a.output = j->out;
    mnv3_exec_split(c->out_channels, j->tasks, task, 1, &a.out_begin, &a.out_end);
    if (a.out_begin < a.out_end) mnv3_call_q8_fc(&j->ctx->k, &a);
}

static void qfc(mnv3_context *ctx, const mnv3_conv *c, const void *packed, const int8_t *in,
                int8_t *out) {
    qjob j;
    memset(&j, 0, sizeof j);
    j.ctx = ctx;
    j.fc = c;
    j.fc_packed = packed;
    j.in = in;
    j.out = out;
    j.tasks = mnv3_exec_tasks_for(ctx, (uint64_t)c->in_channels * c->out_channels,
                                  c->out_channels);
    mnv3_pool_run(ctx->pool, j.tasks, qfc_task, &j);
}

static void qrun_se(mnv3_context *ctx, qrun_state *st, qjob *j) {
    const mnv3_step *s = j->s;
    int8_t *pooled = (int8_t *)(void *)ctx->se_mean;
    int8_t *hidden = (int8_t *)(void *)ctx->se_hidden;
    int8_t *gate = (int8_t *)(void *)ctx->se_gate;
    qfc(ctx, &s->blk->se.reduce, s->packed, pooled, hidden);
    /* se.expand's table is the whole gate chain (relu6(x + 3) / 6 as the graph computes it) */
    qfc(ctx, &s->blk->se.expand, s->packed2, hidden, gate);
    st->gate = gate;
}

static void qrun_head(mnv3_context *ctx, qrun_state *st, qjob *j) {
    const mnv3_step *s = j->s;
    int8_t *a = (int8_t *)(void *)ctx->head_a, *b = (int8_t *)(void *)ctx->head_b;
    int8_t *dst = st->head_in == a ? b : a;
    qfc(ctx, s->conv, s->packed, st->head_in, dst);
    st->head_in = dst;
}

static void qrun_pool(mnv3_context *ctx, qrun_state *st, qjob *j) {
    (void)j;
    st->head_in = (const int8_t *)(const void *)ctx->features;
}

/* The debugging tap: what step i produced. */
static void report(mnv3_context *ctx, uint32_t i, const int8_t *out, const qrun_state *st) {
    const mnv3_step *s = &ctx->steps[i];
    const void *data = out;
    size_t bytes = (size_t)s->out_h * s->out_w * s->out_c;
    mnv3_layer_info info;
    switch (s->kind) {
    case MNV3_STEP_SE: data = ctx->se_gate; bytes = s->in_c; break;
    case MNV3_STEP_POOL: data = ctx->features; bytes = s->out_c; break;
    case MNV3_STEP_HEAD: data = st->head_in; bytes = s->out_c; break;
    default: break;
    }
    if (!data) return;
    mnv3_step_describe(ctx->model, s, &info);
    ctx->tap(ctx->tap_user, i, info.name, data, bytes);
}

typedef struct qstep_ops {
    void (*run)(mnv3_context *ctx, qrun_state *st, qjob *j);
} qstep_ops;

static const qstep_ops qops[] = {
    /* MNV3_STEP_STEM */ {qrun_stem},
    /* MNV3_STEP_EXPAND */ {qrun_pointwise},
    /* MNV3_STEP_DEPTHWISE */ {qrun_depthwise},
    /* MNV3_STEP_SE */ {qrun_se},
    /* MNV3_STEP_PROJECT */ {qrun_pointwise},
    /* MNV3_STEP_LAST_CONV */ {qrun_pointwise},
    /* MNV3_STEP_POOL */ {qrun_pool},
    /* MNV3_STEP_HEAD */ {qrun_head},
};

typedef char qstep_ops_complete[sizeof qops / sizeof *qops == MNV3_STEP_HEAD + 1 ? 1 : -1];

/* ---- Scratch, preparation, run ------------------------------------------------------------- */

static int raise_to(size_t *need, size_t v) {
    if (v == SIZE_MAX) return 0;
    if (v > *need) *need = v;
    return 1;
}

mnv3_status mnv3_q8_executor_needs(const mnv3_model *m, const mnv3_kernels *k,
                                   const mnv3_step *steps, uint32_t num_steps,
                                   mnv3_scratch_needs *n, mnv3_error *e) {
    uint32_t i;
    memset(n, 0, sizeof *n);
    n->sums = n->vector = n->head = 1;
    n->features = m->last_conv.out_channels;
    for (i = 0; i < num_steps; ++i) {
        const mnv3_step *s = &steps[i];
        size_t v;
        int ok = 1;
        switch (s->kind) {
        case MNV3_STEP_STEM:
            ok = raise_to(&n->workspace_bytes,
                          k->q8_conv->workspace_bytes(k->q8_conv, s->in_c, s->conv->kernel,
                                                      s->out_w));
            break;
        case MNV3_STEP_EXPAND:
        case MNV3_STEP_PROJECT:
        case MNV3_STEP_LAST_CONV:
            ok = raise_to(&n->workspace_bytes,
                          k->q8_pointwise->workspace_bytes(k->q8_pointwise, s->in_c));
            if (ok && s->kind == MNV3_STEP_LAST_CONV)
                ok = mnv3_size_mul(mnv3_exec_pool_slices(s), s->out_c, &v) &&
                     raise_to(&n->sums, v);
            break;
        case MNV3_STEP_DEPTHWISE:
            ok = raise_to(&n->workspace_bytes,
                          k->q8_depthwise->workspace_bytes(k->q8_depthwise, s->in_c,
                                                           s->conv->kernel, s->in_w));
            if (ok && s->blk->has_se)
                ok = mnv3_size_mul(mnv3_exec_pool_slices(s), s->out_c, &v) &&
                     raise_to(&n->sums, v);
            /* the ring is counted in floats: a quarter of them hold its bytes */
            if (ok && s->ring_rows)
                ok = mnv3_size_mul4(s->ring_rows, s->in_w, s->in_c, 1, &v) &&
                     raise_to(&n->ring, (v + 3) / 4);
            break;
        case MNV3_STEP_SE:
            ok = raise_to(&n->vector, s->in_c) &&
                 raise_to(&n->vector, s->blk->se.reduce.out_channels);
            break;
        case MNV3_STEP_HEAD:
            ok = raise_to(&n->head, s->out_c);
            break;
        default:
            break;
        }
        if (!ok)
            return mnv3_set_error(e, MNV3_ERR_SIZE_OVERFLOW,
                                  "scratch of step %u does not fit in memory", i);
    }
    return MNV3_OK;
}

void mnv3_q8_executor_prepare(mnv3_context *ctx) {
    uint32_t i;
    mnv3_executor_prepare(ctx);
    /* Pools turn channel sums of a known pixel count into bytes: prepared once here. */
    for (i = 0; i < ctx->num_steps; ++i) {
        const mnv3_step *s = &ctx->steps[i];
        const mnv3_model *m = ctx->model;
        mnv3_qpool *p = &ctx->q_pools[i];
        memset(p, 0, sizeof *p);
        if (s->kind == MNV3_STEP_DEPTHWISE && s->blk->has_se) {
            const mnv3_qparam in = mnv3_conv_result_q(s->conv), out = s->blk->se_pool_output;
            (void)mnv3_q_pool_prepare(s->blk->se_pool_mode, s->out_h * s->out_w, in.scale,
                                      in.zero_point, out.scale, out.zero_point, p);
        } else if (s->kind == MNV3_STEP_LAST_CONV) {
            const mnv3_qparam in = mnv3_conv_result_q(s->conv), out = m->pool_output;
            (void)mnv3_q_pool_prepare(m->pool_mode, s->out_h * s->out_w, in.scale,
                                      in.zero_point, out.scale, out.zero_point, p);
        }
    }
}

const int8_t *mnv3_q8_executor_run(mnv3_context *ctx) {
    qrun_state st;
    uint32_t i;
    memset(&st, 0, sizeof st);
    st.head_in = (const int8_t *)(const void *)ctx->features;
    for (i = 0; i < ctx->num_steps; ++i) {
        const mnv3_step *s = &ctx->steps[i];
        const uint64_t t0 = ctx->cfg.profile ? mnv3_exec_now_ns() : 0;
        qjob j;
        if (s->fused) continue;
        memset(&j, 0, sizeof j);
        j.ctx = ctx;
        j.s = s;
        j.in = qtensor(ctx, s->in_tensor);
        j.out = qtensor(ctx, s->out_tensor);
        qops[s->kind].run(ctx, &st, &j);
        if (ctx->cfg.profile) ctx->layer_ns[i] = mnv3_exec_now_ns() - t0;
        if (ctx->tap) report(ctx, i, j.out, &st);
    }
    return st.head_in;
}
