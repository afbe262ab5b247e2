/* Step list, tensor lifetimes and the lifetime-based placement of activation buffers. */
#include <stdio.h>
#include <string.h>

#include "base/checked.h"
#include "plan.h"

uint32_t mnv3_plan_step_count(const mnv3_model *m) {
    uint32_t n = 1 + 2 + m->num_head, b;
    for (b = 0; b < m->num_blocks; ++b)
        n += 2 + m->blocks[b].has_expand + m->blocks[b].has_se;
    return n;
}

typedef struct walker {
    mnv3_step *steps;
    mnv3_tensor *tensors;
    uint32_t ns, nt;
    mnv3_dtype act_type;
    size_t all_bytes;            /* every tensor's bytes added up */
    int overflow;                /* a size did not fit in size_t */
} walker;

static int32_t new_tensor(walker *w, uint32_t h, uint32_t wd, uint32_t c) {
    size_t bytes = 0;
    if (!mnv3_size_mul4(h, wd, c, mnv3_dtype_size(w->act_type), &bytes) ||
        !mnv3_size_align(bytes, 64, &bytes) || !mnv3_size_add(w->all_bytes, bytes, &w->all_bytes))
        w->overflow = 1;
    if (w->tensors) {
        mnv3_tensor *t = &w->tensors[w->nt];
        t->dtype = w->act_type;
        t->height = h;
        t->width = wd;
        t->channels = c;
        t->bytes = bytes;
        t->first = w->ns;
        t->last = w->ns;
        t->offset = 0;
    }
    return (int32_t)w->nt++;
}

/* Extends tensor t's lifetime to `step`. */
static void use_tensor_at(walker *w, int32_t t, uint32_t step) {
    if (w->tensors && t >= 0 && w->tensors[t].last < step) w->tensors[t].last = step;
}

/* Tensor t is read by the step about to be pushed. */
static void use_tensor(walker *w, int32_t t) { use_tensor_at(w, t, w->ns); }

static void push(walker *w, const mnv3_step *s) {
    if (w->steps) w->steps[w->ns] = *s;
    w->ns++;
}

static mnv3_status conv_step(walker *w, const mnv3_model *m, mnv3_step_kind kind, int32_t block,
                             const mnv3_conv *c, const mnv3_block *blk, uint32_t *h, uint32_t *wd,
                             int32_t *cur, int make_output, mnv3_error *e) {
    mnv3_step s;
    uint32_t pt, pl, pb, pr;
    memset(&s, 0, sizeof s);
    mnv3_conv_padding(c, *h, *wd, &pt, &pl, &pb, &pr);
    s.kind = kind;
    s.block = block;
    s.conv = c;
    s.blk = blk;
    s.in_h = *h;
    s.in_w = *wd;
    s.in_c = c->in_channels;
    s.out_h = mnv3_conv_out_size(*h, c->kernel, c->stride, pt, pb);
    s.out_w = mnv3_conv_out_size(*wd, c->kernel, c->stride, pl, pr);
    s.out_c = c->out_channels;
    s.pad_top = pt;
    s.pad_left = pl;
    if (s.out_h == 0 || s.out_w == 0) {
        char name[40];
        mnv3_conv_name(m, c, name, sizeof name);
        return mnv3_set_error(e, MNV3_ERR_SHAPE,
                              "%s: input %ux%u is too small for kernel %u with this padding",
                              name, *h, *wd, c->kernel);
    }
    s.macs = (uint64_t)s.out_h * s.out_w * s.out_c * c->kernel * c->kernel *
             (c->depthwise ? 1u : c->in_channels);
    s.in_tensor = *cur;
    s.residual_tensor = -1;
    use_tensor(w, *cur);
    s.out_tensor = make_output ? new_tensor(w, s.out_h, s.out_w, s.out_c) : -1;
    if (w->overflow)
        return mnv3_set_error(e, MNV3_ERR_SIZE_OVERFLOW,
                              "activations of %ux%ux%u do not fit in memory at this input size",
                              s.out_h, s.out_w, s.out_c);
    push(w, &s);
    *h = s.out_h;
    *wd = s.out_w;
    *cur = s.out_tensor;
    return MNV3_OK;
}


mnv3_status mnv3_plan_steps(const mnv3_model *m, uint32_t height, uint32_t width,
                            mnv3_dtype act_type, uint32_t flags, mnv3_step *steps, uint32_t *num_steps,
                            mnv3_tensor *tensors, uint32_t *num_tensors, mnv3_error *e) {
    walker w;
    uint32_t h = height, wd = width, b, i;
    int32_t cur = -1;
    mnv3_step s;
    memset(&w, 0, sizeof w);
    w.steps = steps;
    w.tensors = tensors;
    w.act_type = act_type;
    MNV3_TRY(conv_step(&w, m, MNV3_STEP_STEM, -1, &m->stem, NULL, &h, &wd, &cur, 1, e));
    for (b = 0; b < m->num_blocks; ++b) {
        const mnv3_block *k = &m->blocks[b];
        int32_t block_in = cur;
        const uint64_t expanded =
            (uint64_t)h * wd * k->expand.out_channels * mnv3_dtype_size(act_type);
        const int fuse = k->has_expand && expanded > MNV3_FUSE_MIN_BYTES &&
                         !(flags & MNV3_PLAN_OBSERVABLE);
        if (k->has_expand)
            MNV3_TRY(conv_step(&w, m, MNV3_STEP_EXPAND, (int32_t)b, &k->expand, k, &h, &wd, &cur,
                               !fuse, e));
        if (fuse) {
            if (w.steps) w.steps[w.ns - 1].fused = 1;
            cur = block_in; /* the depthwise step reads the expansion's input */
        }
        MNV3_TRY(conv_step(&w, m, MNV3_STEP_DEPTHWISE, (int32_t)b, &k->depthwise, k, &h, &wd, &cur, 1,
                      e));
        if (fuse && w.steps) {
            mnv3_step *d = &w.steps[w.ns - 1];
            const uint32_t K = k->depthwise.kernel, S = k->depthwise.stride;
            const uint64_t row_bytes = (uint64_t)d->in_w * d->in_c * mnv3_dtype_size(act_type);
            uint64_t ring = MNV3_FUSE_RING_BYTES / row_bytes;
            if (ring < K) ring = K;
            d->band_rows = (uint32_t)((ring - K) / S + 1);
            d->ring_rows = (d->band_rows - 1) * S + K;
        }
        if (k->has_se) {
            memset(&s, 0, sizeof s);
            s.kind = MNV3_STEP_SE;
            s.block = (int32_t)b;
            s.blk = k;
            s.in_h = s.out_h = h;
            s.in_w = s.out_w = wd;
            s.in_c = s.out_c = k->depthwise.out_channels;
            /* The gate goes to the projection, which reads the depthwise output through it. */
            s.in_tensor = s.out_tensor = cur;
            s.residual_tensor = -1;
            s.macs = 2ull * k->se.reduce.in_channels * k->se.reduce.out_channels;
            use_tensor(&w, cur);
            push(&w, &s);
        }
        MNV3_TRY(conv_step(&w, m, MNV3_STEP_PROJECT, (int32_t)b, &k->project, k, &h, &wd, &cur, 1, e));
        if (k->residual) {
            if (w.steps) w.steps[w.ns - 1].residual_tensor = block_in;
            use_tensor_at(&w, block_in, w.ns - 1); /* read by the projection just pushed */
        }
    }
    MNV3_TRY(conv_step(&w, m, MNV3_STEP_LAST_CONV, -1, &m->last_conv, NULL, &h, &wd, &cur,
                       (flags & MNV3_PLAN_OBSERVABLE) != 0, e));
    memset(&s, 0, sizeof s);
    s.kind = MNV3_STEP_POOL;
    s.block = -1;
    s.in_h = h;
    s.in_w = wd;
    s.out_h = s.out_w = 1;
    s.in_c = s.out_c = m->last_conv.out_channels;
    s.in_tensor = s.out_tensor = s.residual_tensor = -1;
    push(&w, &s);
    for (i = 0; i < m->num_head; ++i) {
        uint32_t one_h = 1, one_w = 1;
        int32_t none = -1;
        MNV3_TRY(conv_step(&w, m, MNV3_STEP_HEAD, -1, &m->head[i], NULL, &one_h, &one_w, &none, 0, e));
        if (w.steps) w.steps[w.ns - 1].index = i;
    }
    if (num_steps) *num_steps = w.ns;
    if (num_tensors) *num_tensors = w.nt;
    return MNV3_OK;
}

static int lifetimes_overlap(const mnv3_tensor *a, const mnv3_tensor *b) {
    return a->first <= b->last && b->first <= a->last;
}

/* Places tensors in the given order, each at the tightest gap among the tensors it is live
 * with (or above them all). Returns the region size. */
static size_t place_in_order(mnv3_tensor *t, const uint32_t *order, uint32_t n) {
    uint32_t placed[MNV3_MAX_TENSORS], conflicts[MNV3_MAX_TENSORS];
    uint32_t i, j, np = 0, nc, a, b;
    size_t top = 0;
    for (i = 0; i < n; ++i) {
        mnv3_tensor *x = &t[order[i]];
        size_t best = (size_t)-1, best_gap = (size_t)-1, cursor = 0;
        nc = 0;
        for (j = 0; j < np; ++j)
            if (lifetimes_overlap(x, &t[placed[j]])) conflicts[nc++] = placed[j];
        for (a = 1; a < nc; ++a) { /* by offset */
            uint32_t v = conflicts[a];
            for (b = a; b > 0 && t[conflicts[b - 1]].offset > t[v].offset; --b)
                conflicts[b] = conflicts[b - 1];
            conflicts[b] = v;
        }
        for (a = 0; a < nc; ++a) {
            const mnv3_tensor *c = &t[conflicts[a]];
            if (c->offset >= cursor + x->bytes && c->offset - cursor < best_gap) {
                best_gap = c->offset - cursor;
                best = cursor;
            }
            if (c->offset + c->bytes > cursor) cursor = c->offset + c->bytes;
        }
        x->offset = best != (size_t)-1 ? best : cursor;
        if (x->offset + x->bytes > top) top = x->offset + x->bytes;
        placed[np++] = order[i];
    }
    return top;
}

static uint64_t next_random(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Greedy placement of the largest tensors first is what TFLite Micro's planner does; it can
 * fragment (MobileNetV3-Small lands ~7% above the bound). So try that order and a fixed
 * set of deterministic perturbations of it, and keep the tightest layout. */
#define PLAN_TRIES 256

void mnv3_plan_offsets(mnv3_tensor *t, uint32_t n, size_t *region, size_t *lower_bound) {
    uint32_t order[MNV3_MAX_TENSORS], trial[MNV3_MAX_TENSORS], i, j, last_step = 0, k;
    size_t best_offsets[MNV3_MAX_TENSORS], best = (size_t)-1, bound = 0;
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    for (i = 0; i < n; ++i) order[i] = i;
    for (i = 1; i < n; ++i) { /* size descending, earlier birth first on ties */
        uint32_t v = order[i];
        for (j = i; j > 0 && (t[order[j - 1]].bytes < t[v].bytes ||
                              (t[order[j - 1]].bytes == t[v].bytes && t[order[j - 1]].first > t[v].first));
             --j)
            order[j] = order[j - 1];
        order[j] = v;
    }
    for (i = 0; i < n; ++i)
        if (t[i].last > last_step) last_step = t[i].last;
    for (j = 0; j <= last_step; ++j) {
        size_t live = 0;
        for (i = 0; i < n; ++i)
            if (t[i].first <= j && j <= t[i].last) live += t[i].bytes;
        if (live > bound) bound = live;
    }
    for (k = 0; k < PLAN_TRIES && best > bound; ++k) {
        size_t top;
        memcpy(trial, order, n * sizeof *order);
        /* Perturb: a few swaps of neighbours in the size order. */
        for (i = 0; k > 0 && i < 1 + k % 8 && n > 1; ++i) {
            uint32_t p = (uint32_t)(next_random(&rng) % (n - 1)), q = p + 1 + (uint32_t)(next_random(&rng) % 3);
            uint32_t tmp;
            if (q >= n) q = n - 1;
            tmp = trial[p];
            trial[p] = trial[q];
            trial[q] = tmp;
        }
        top = place_in_order(t, trial, n);
        if (top < best) {
            best = top;
            for (i = 0; i < n; ++i) best_offsets[i] = t[i].offset;
        }
    }
    for (i = 0; i < n; ++i) t[i].offset = best_offsets[i];
    *region = n ? best : 0;
    *lower_bound = bound;
}

void mnv3_step_describe(const mnv3_model *m, const mnv3_step *s, mnv3_layer_info *info) {
    static const char *const part[] = {"stem", "expand", "depthwise", "se", "project",
                                       "last_conv", "pool", "fc"};
    memset(info, 0, sizeof *info);
    info->block = s->block;
    if (s->block >= 0)
        snprintf(info->name, sizeof info->name, "block%d.%s", (int)s->block, part[s->kind]);
    else if (s->kind == MNV3_STEP_HEAD)
        snprintf(info->name, sizeof info->name, "head.fc%u", s->index);
    else
        snprintf(info->name, sizeof info->name, "%s", part[s->kind]);
    switch (s->kind) {
    case MNV3_STEP_STEM: info->kind = MNV3_LAYER_CONV; break;
    case MNV3_STEP_DEPTHWISE: info->kind = MNV3_LAYER_DEPTHWISE; break;
    case MNV3_STEP_SE: info->kind = MNV3_LAYER_SQUEEZE_EXCITE; break;
    case MNV3_STEP_POOL: info->kind = MNV3_LAYER_GLOBAL_POOL; break;
    case MNV3_STEP_HEAD: info->kind = MNV3_LAYER_FULLY_CONNECTED; break;
    default: info->kind = MNV3_LAYER_POINTWISE; break;
    }
    info->in_channels = s->in_c;
    info->out_channels = s->out_c;
    info->kernel = s->conv ? s->conv->kernel : (s->kind == MNV3_STEP_POOL ? s->in_h : 1);
    info->stride = s->conv ? s->conv->stride : 1;
    info->in_height = s->in_h;
    info->in_width = s->in_w;
    info->out_height = s->out_h;
    info->out_width = s->out_w;
    info->activation = s->conv ? s->conv->epilogue.activation
                               : (s->kind == MNV3_STEP_SE ? MNV3_ACT_HARD_SIGMOID : MNV3_ACT_NONE);
    info->residual = s->residual_tensor >= 0;
    info->macs = s->macs;
    (void)m;
}
