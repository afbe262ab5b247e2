#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/half.h"
#include "case.h"
#include "random.h"

static const mnv3_clamp unbounded = {-INFINITY, INFINITY};

static size_t act_bytes(const tc_case *c) { return c->type == TC_Q8 ? 1u : sizeof(float); }

/* ------------------------------------------------------------------------------------ */
/* Random parameters                                                                     */
/* ------------------------------------------------------------------------------------ */

static void random_epilogue(mnv3_epilogue *e) {
    e->activation = (mnv3_activation)tr_below(5);
    e->pre = unbounded;
    e->post = unbounded;
    if (tr_below(4) == 0) {
        e->pre.lo = tr_float(-2.0f, -0.5f);
        e->pre.hi = tr_float(0.5f, 2.0f);
    }
    if (tr_below(4) == 0) {
        e->post.lo = tr_float(-1.0f, 0.0f);
        e->post.hi = tr_float(0.2f, 1.5f);
    }
}

mnv3_q8_mul tc_random_qmul(int extreme) {
    mnv3_q8_mul m;
    const uint32_t pick = tr_below(16);
    m.multiplier = (int32_t)(0x40000000u + (tr_rnd() & 0x3FFFFFFFu));
    if (pick == 0) m.multiplier = 0x40000000;
    if (pick == 1) m.multiplier = INT32_MAX;
    if (extreme && pick == 2) m.multiplier = INT32_MIN;
    if (extreme && pick == 3) m.multiplier = 0;
    switch (tr_below(4)) {
    case 0: m.shift = -tr_range(0, 31); break;
    case 1: m.shift = tr_range(0, 12); break;
    default: m.shift = -tr_range(4, 14); break; /* what convs have */
    }
    return m;
}

int32_t tc_random_accumulator(void) {
    static const int32_t edges[] = {0, 1, -1, 2, -2, INT32_MIN, INT32_MAX, INT32_MIN + 1,
                                    INT32_MAX - 1, 1 << 30, -(1 << 30), 0x40000001, -0x40000001};
    switch (tr_below(4)) {
    case 0: return edges[tr_below(sizeof edges / sizeof *edges)];
    case 1: return (int32_t)tr_rnd();
    case 2: return tr_range(-100000, 100000);
    default: return tr_range(-300, 300);
    }
}

/* int8 inputs and weights: uniform, or pinned at the ends (the largest products). */
static int8_t *values_random(size_t n, int extreme) {
    if (extreme && tr_below(2)) {
        int8_t *p = (int8_t *)tr_alloc(n);
        size_t i;
        for (i = 0; i < n; ++i) p[i] = tr_below(2) ? 127 : -128;
        return p;
    }
    return tr_bytes(n, -128, 127);
}

/* Per-channel requantization, output zero point, activation range and LUT. */
static void random_requant(tc_case *c, uint32_t channels, int extreme) {
    mnv3_q8_requant *r = &c->layer.requant;
    uint32_t i;
    c->qmul = (mnv3_q8_mul *)tr_alloc(channels * sizeof *c->qmul);
    for (i = 0; i < channels; ++i) c->qmul[i] = tc_random_qmul(extreme);
    if (!extreme && tr_below(2)) {
        /* Conv-like scales, so outputs land inside the range rather than at its ends. */
        const int32_t shift = -tr_range(6, 12);
        for (i = 0; i < channels; ++i) c->qmul[i].shift = shift + tr_range(-1, 1);
    }
    r->qmul = c->qmul;
    r->out_zp = tr_range(-128, 127);
    r->act_lo = -128;
    r->act_hi = 127;
    if (tr_below(3) == 0) {
        r->act_lo = tr_range(-128, 0);
        r->act_hi = tr_range(r->act_lo, 127);
    }
    c->lut = tr_below(3) == 0 ? tr_bytes(256, -128, 127) : NULL;
    r->lut = c->lut;
}

static void random_add(mnv3_q8_add *a) {
    mnv3_q8_mul_from_real(0.25 + (double)tr_below(1000) / 4000.0, &a->a_mul);
    mnv3_q8_mul_from_real(0.25 + (double)tr_below(1000) / 4000.0, &a->b_mul);
    mnv3_q8_mul_from_real((double)(tr_below(1000) + 1) / 1000.0 / (1 << 18), &a->out_mul);
    a->a_zp = tr_range(-128, 127);
    a->b_zp = tr_range(-128, 127);
    a->left_shift = 20;
    a->out_zp = tr_range(-128, 127);
    a->act_lo = -128;
    a->act_hi = 127;
    switch (tr_below(4)) {
    case 0:
        /* an output multiplier above 1 (shifts left): the vector ADD's general path; with
         * no input shift, so that the sums do not all saturate */
        mnv3_q8_mul_from_real(1.0 + (double)tr_below(1000) / 300.0, &a->out_mul);
        a->left_shift = 0;
        break;
    case 1:
        a->act_lo = tr_range(-128, 0);
        a->act_hi = tr_range(a->act_lo, 127);
        break;
    default: break;
    }
}

/* Weights of n elements for the case's type: int8, float32, or float32 rounded to float16
 * and stored as float16. */
static void *weights_random(tc_case *c, size_t n, uint32_t fan_in, int extreme) {
    if (c->type == TC_Q8) return values_random(n, extreme);
    if (c->type == TC_F16W) {
        float *w = tr_weights(n, fan_in);
        uint16_t *h = (uint16_t *)tr_alloc(n * sizeof *h);
        size_t i;
        for (i = 0; i < n; ++i) h[i] = mnv3_f32_to_f16(w[i]);
        free(w);
        return h;
    }
    return tr_weights(n, fan_in);
}

static void *bias_random(tc_case *c, uint32_t n, int extreme) {
    if (c->type == TC_Q8) {
        int32_t *b;
        uint32_t i;
        if (tr_below(5) == 0) return NULL;
        b = (int32_t *)tr_alloc(n * sizeof *b);
        for (i = 0; i < n; ++i) b[i] = extreme ? tc_random_accumulator() : tr_range(-20000, 20000);
        return b;
    }
    return tr_below(4) ? tr_floats(n, -1.0f, 1.0f) : NULL;
}

static void *activations_random(tc_case *c, size_t n, float lo, float hi, int extreme) {
    return c->type == TC_Q8 ? (void *)values_random(n, extreme) : (void *)tr_floats(n, lo, hi);
}

/* What every case shares: the layer's kind and shape, weights, bias and the epilogue or
 * the quantization of its output. */
static void layer_common(tc_case *c, tc_type t, mnv3_row_kind kind, uint32_t in, uint32_t out,
                         uint32_t K, uint32_t S, size_t weights, uint32_t fan_in, int extreme) {
    mnv3_layer *l = &c->layer;
    c->type = t;
    l->kind = kind;
    l->in_channels = in;
    l->out_channels = out;
    l->kernel = K;
    l->stride = S;
    l->weight_type = t == TC_Q8 ? MNV3_DTYPE_I8 : t == TC_F16W ? MNV3_DTYPE_F16 : MNV3_DTYPE_F32;
    c->weight = weights_random(c, weights, fan_in, extreme);
    c->bias = bias_random(c, out, extreme);
    l->weight = c->weight;
    l->bias = c->bias;
    l->residual_clamp = unbounded;
    l->gate_clamp = unbounded;
    if (t == TC_Q8) {
        l->in_zp = tr_range(-128, 127);
        l->weight_zp = tr_below(2) ? 0 : tr_range(-128, 127);
        random_requant(c, out, extreme);
    } else {
        random_epilogue(&l->epilogue);
    }
}

/* ------------------------------------------------------------------------------------ */
/* Cases                                                                                 */
/* ------------------------------------------------------------------------------------ */

void tc_set_gate(tc_case *c) {
    mnv3_layer *l = &c->layer;
    if (c->gate) return;
    if (c->type == TC_Q8) {
        c->gate = tr_bytes(l->in_channels, -128, 127);
        l->gate.x_zp = tr_range(-128, 127);
        l->gate.gate_zp = tr_range(-128, 127);
        mnv3_q8_mul_from_real((double)(tr_below(1000) + 1) / 40000.0, &l->gate.qmul);
        l->gate.act_lo = -128;
        l->gate.act_hi = 127;
    } else {
        c->gate = tr_floats(l->in_channels, 0.0f, 1.0f);
        if (tr_below(3) == 0) { /* a quantised-range model's clamp of x * gate */
            l->gate_clamp.lo = tr_float(-0.6f, -0.1f);
            l->gate_clamp.hi = tr_float(0.1f, 0.6f);
        }
    }
}

void tc_set_residual(tc_case *c) {
    mnv3_layer *l = &c->layer;
    if (c->residual) return;
    c->residual = activations_random(c, c->P * c->out_stride, -2.0f, 2.0f, 0);
    if (c->type == TC_Q8) {
        random_add(&l->add);
    } else if (tr_below(2)) {
        l->residual_clamp.lo = -1.5f;
        l->residual_clamp.hi = 1.75f;
    }
}

void tc_set_sums(tc_case *c) {
    size_t i;
    if (c->sums0) return;
    c->sums0 = tr_alloc(c->n_sums * 4u);
    for (i = 0; i < c->n_sums; ++i) {
        if (c->type == TC_Q8)
            ((int32_t *)c->sums0)[i] = 0x13572468 - (int32_t)i;
        else
            ((float *)c->sums0)[i] = tr_float(-1.0f, 1.0f);
    }
}

void tc_set_epilogue(tc_case *c, const mnv3_epilogue *e) { c->layer.epilogue = *e; }

void tc_pointwise(tc_case *c, tc_type t, size_t P, uint32_t K, uint32_t N, int extreme) {
    memset(c, 0, sizeof *c);
    c->P = P;
    c->in_stride = K + (tr_below(3) == 0 ? tr_below(5) : 0);
    c->out_stride = N + (tr_below(3) == 0 ? tr_below(5) : 0);
    c->in_elems = P * c->in_stride;
    c->out_elems = P * c->out_stride;
    c->n_sums = N;
    layer_common(c, t, MNV3_ROW_POINTWISE, K, N, 1, 1, (size_t)K * N, K, extreme);
    c->input = activations_random(c, c->in_elems, -1.0f, 1.0f, extreme);
    if (tr_below(3) == 0) tc_set_gate(c);
    if (tr_below(3) == 0) tc_set_residual(c);
    if (tr_below(3) == 0) tc_set_sums(c);
    c->want_output = c->sums0 ? (int)tr_below(2) : 1;
}

int tc_depthwise(tc_case *c, tc_type t, uint32_t H, uint32_t W, uint32_t C, uint32_t K,
                 uint32_t S, uint32_t pt, uint32_t pl, uint32_t pb, uint32_t pr, int extreme) {
    memset(c, 0, sizeof *c);
    if (H + pt + pb < K || W + pl + pr < K) return 0;
    c->H = H;
    c->W = W;
    c->pad_top = pt;
    c->pad_left = pl;
    c->OH = (H + pt + pb - K) / S + 1;
    c->OW = (W + pl + pr - K) / S + 1;
    c->in_elems = (size_t)H * W * C;
    c->out_elems = (size_t)c->OH * c->OW * C;
    c->n_sums = C;
    layer_common(c, t, MNV3_ROW_DEPTHWISE, C, C, K, S, (size_t)K * K * C, K * K, extreme);
    if (t != TC_Q8) { /* depthwise weights of unit spread: K*K taps, not a fan-in */
        free(c->weight);
        c->weight = NULL;
        if (t == TC_F16W) {
            float *w = tr_floats((size_t)K * K * C, -0.5f, 0.5f);
            uint16_t *h = (uint16_t *)tr_alloc((size_t)K * K * C * sizeof *h);
            size_t i;
            for (i = 0; i < (size_t)K * K * C; ++i) h[i] = mnv3_f32_to_f16(w[i]);
            free(w);
            c->weight = h;
        } else {
            c->weight = tr_floats((size_t)K * K * C, -0.5f, 0.5f);
        }
        c->layer.weight = c->weight;
    }
    /* int8 cases read half their input through a ring of rows at random (the input then
     * holds that many rows, row iy at iy % ring, which the reference reads alike) */
    if (t == TC_Q8 && tr_below(3) == 0 && H > K) {
        c->ring = K + tr_below(2);
        c->in_elems = (size_t)c->ring * W * C;
    }
    c->input = activations_random(c, c->in_elems, -1.0f, 1.0f, extreme);
    if (tr_below(t == TC_Q8 ? 3 : 2) == 0) tc_set_sums(c);
    return 1;
}

int tc_conv(tc_case *c, tc_type t, uint32_t H, uint32_t W, uint32_t Ci, uint32_t Co, uint32_t K,
            uint32_t S, uint32_t pt, uint32_t pl, uint32_t pb, uint32_t pr, int nhwc,
            int extreme) {
    memset(c, 0, sizeof *c);
    if (H + pt + pb < K || W + pl + pr < K) return 0;
    c->H = H;
    c->W = W;
    c->pad_top = pt;
    c->pad_left = pl;
    c->OH = (H + pt + pb - K) / S + 1;
    c->OW = (W + pl + pr - K) / S + 1;
    if (nhwc) {
        c->in_row = (size_t)W * Ci;
        c->in_col = Ci;
        c->in_chan = 1;
    } else {
        c->in_row = W;
        c->in_col = 1;
        c->in_chan = (size_t)H * W;
    }
    c->in_elems = (size_t)H * W * Ci;
    c->out_elems = (size_t)c->OH * c->OW * Co;
    layer_common(c, t, MNV3_ROW_CONV, Ci, Co, K, S, (size_t)Co * K * K * Ci, K * K * Ci, extreme);
    if (t == TC_F32) { /* as the stem's: unit spread */
        free(c->weight);
        c->weight = tr_floats((size_t)Co * K * K * Ci, -0.5f, 0.5f);
        c->layer.weight = c->weight;
    }
    c->input = activations_random(c, c->in_elems, -1.0f, 1.0f, extreme);
    return 1;
}

void tc_fc(tc_case *c, tc_type t, uint32_t I, uint32_t O, int extreme) {
    memset(c, 0, sizeof *c);
    c->in_elems = I;
    c->out_elems = O + 2u; /* two guard elements after the outputs */
    layer_common(c, t, MNV3_ROW_FC, I, O, 1, 1, (size_t)I * O, I, extreme);
    c->input = activations_random(c, I, -1.0f, 1.0f, extreme);
}

void tc_free(tc_case *c) {
    free(c->input);
    free(c->weight);
    free(c->bias);
    free(c->gate);
    free(c->residual);
    free(c->sums0);
    free(c->qmul);
    free(c->lut);
    memset(c, 0, sizeof *c);
}

/* ------------------------------------------------------------------------------------ */
/* Rows on a case                                                                        */
/* ------------------------------------------------------------------------------------ */

void tc_bind(tc_bound *b, const mnv3_row *row, const tc_case *c) {
    const size_t packed = row->packed_bytes(row, &c->layer);
    const size_t params = row->params_bytes(row, &c->layer);
    const size_t ws = row->workspace_bytes(row, &c->layer, c->W, c->OW);
    memset(b, 0, sizeof *b);
    b->row = row;
    if (packed) {
        b->owned = tr_alloc(packed);
        row->pack(row, &c->layer, b->owned);
        b->packed = b->owned;
    } else {
        b->packed = c->weight;
    }
    b->params = tr_alloc(params);
    memset(b->params, 0, params ? params : 1);
    if (params) row->prepare(row, &c->layer, b->params);
    b->workspace = tr_alloc(ws + 64);
}

void tc_unbind(tc_bound *b) {
    free(b->owned);
    free(b->params);
    free(b->workspace);
    memset(b, 0, sizeof *b);
}

const mnv3_row *tc_reference(mnv3_row_kind kind, mnv3_dtype weight_type) {
    const mnv3_dtype arith = weight_type == MNV3_DTYPE_I8 ? MNV3_DTYPE_I8 : MNV3_DTYPE_F32;
    uint32_t i;
    for (i = 0; mnv3_kernel_set_reference.rows[i]; ++i) {
        const mnv3_row *r = mnv3_kernel_set_reference.rows[i];
        if (r->kind == kind && r->weight_type == weight_type && r->arith == arith) return r;
    }
    return NULL;
}

const mnv3_row *tc_reference_row(const tc_case *c) {
    return tc_reference(c->layer.kind, c->layer.weight_type);
}

void tc_float_layer(mnv3_layer *l, mnv3_row_kind kind, uint32_t in, uint32_t out, uint32_t kernel,
                    mnv3_dtype weight_type, const void *weight, const float *bias,
                    mnv3_activation act) {
    memset(l, 0, sizeof *l);
    l->kind = kind;
    l->in_channels = in;
    l->out_channels = out;
    l->kernel = kernel;
    l->stride = 1;
    l->weight_type = weight_type;
    l->weight = weight;
    l->bias = bias;
    l->epilogue.activation = act;
    l->epilogue.pre = l->epilogue.post = unbounded;
    l->residual_clamp = l->gate_clamp = unbounded;
}

/* What tc_run_* hold for one call. */
typedef struct bound_call {
    void *packed, *params, *workspace;
} bound_call;

static void bound_call_make(bound_call *b, const mnv3_row *row, const mnv3_layer *l,
                            uint32_t in_width, uint32_t out_width, const void **packed,
                            const void **params, void **workspace) {
    const size_t pb = row->packed_bytes(row, l), qb = row->params_bytes(row, l);
    b->packed = pb ? tr_alloc(pb) : NULL;
    if (pb) row->pack(row, l, b->packed);
    b->params = tr_alloc(qb);
    memset(b->params, 0, qb ? qb : 1);
    if (qb) row->prepare(row, l, b->params);
    b->workspace = tr_alloc(row->workspace_bytes(row, l, in_width, out_width) + 64);
    *packed = pb ? b->packed : l->weight;
    *params = b->params;
    if (workspace) *workspace = b->workspace;
}

static void bound_call_free(bound_call *b) {
    free(b->packed);
    free(b->params);
    free(b->workspace);
}

void tc_run_pointwise(const mnv3_row *row, const mnv3_layer *l, mnv3_pointwise_args *a) {
    bound_call b;
    bound_call_make(&b, row, l, 0, 0, &a->packed, &a->params, &a->workspace);
    row->run.pointwise(row, a);
    bound_call_free(&b);
}

void tc_run_depthwise(const mnv3_row *row, const mnv3_layer *l, mnv3_depthwise_args *a) {
    bound_call b;
    bound_call_make(&b, row, l, a->in_width, a->out_width, &a->packed, &a->params,
                    &a->workspace);
    row->run.depthwise(row, a);
    bound_call_free(&b);
}

void tc_run_conv(const mnv3_row *row, const mnv3_layer *l, mnv3_conv_args *a) {
    bound_call b;
    bound_call_make(&b, row, l, a->in_width, a->out_width, &a->packed, &a->params,
                    &a->workspace);
    row->run.conv(row, a);
    bound_call_free(&b);
}

void tc_run_fc(const mnv3_row *row, const mnv3_layer *l, mnv3_fc_args *a) {
    bound_call b;
    bound_call_make(&b, row, l, 0, 0, &a->packed, &a->params, NULL);
    row->run.fc(row, a);
    bound_call_free(&b);
}

void tc_result_init(tc_result *r, const tc_case *c) {
    size_t i;
    r->out = tr_alloc(c->out_elems * act_bytes(c));
    if (c->type == TC_Q8)
        memset(r->out, TC_SENTINEL_BYTE, c->out_elems);
    else
        for (i = 0; i < c->out_elems; ++i) ((float *)r->out)[i] = TC_SENTINEL;
    r->sums = c->sums0 ? tr_copy(c->sums0, c->n_sums * 4u) : NULL;
}

void tc_result_free(tc_result *r) {
    free(r->out);
    free(r->sums);
    r->out = r->sums = NULL;
}

tc_range tc_whole(const tc_case *c) {
    tc_range r;
    memset(&r, 0, sizeof r);
    r.p1 = c->P;
    r.c1 = c->layer.out_channels;
    r.r1 = c->OH;
    return r;
}

tc_range tc_subrange(const tc_case *c, const mnv3_row *row) {
    tc_range r = tc_whole(c);
    const uint32_t N = c->layer.out_channels, nr = row->nr ? row->nr : 1;
    switch (c->layer.kind) {
    case MNV3_ROW_POINTWISE:
        r.p0 = tr_below((uint32_t)c->P);
        r.p1 = r.p0 + 1 + tr_below((uint32_t)(c->P - r.p0));
        r.c0 = tr_below((N + nr - 1) / nr) * nr;
        r.c1 = r.c0 + 1 + tr_below(N - r.c0);
        break;
    case MNV3_ROW_FC:
        r.c0 = tr_below(N);
        r.c1 = r.c0 + 1 + tr_below(N - r.c0);
        break;
    default:
        r.r0 = tr_below(c->OH);
        r.r1 = r.r0 + 1 + tr_below(c->OH - r.r0);
        break;
    }
    return r;
}

void tc_call(const tc_bound *b, const tc_case *c, tc_range r, tc_result *res,
             const mnv3_prefetch_range *prefetch, uint32_t prefetch_count, uint32_t part,
             uint32_t parts) {
    const mnv3_layer *l = &c->layer;
    switch (l->kind) {
    case MNV3_ROW_POINTWISE: {
        mnv3_pointwise_args a;
        memset(&a, 0, sizeof a);
        a.input = c->input;
        a.in_stride = c->in_stride;
        a.gate = c->gate;
        a.packed = b->packed;
        a.params = b->params;
        a.residual = c->residual;
        a.output = c->want_output ? res->out : NULL;
        a.out_stride = c->out_stride;
        a.channel_sums = res->sums;
        a.in_channels = l->in_channels;
        a.out_channels = l->out_channels;
        a.pixel_begin = r.p0;
        a.pixel_end = r.p1;
        a.oc_begin = r.c0;
        a.oc_end = r.c1;
        a.workspace = b->workspace;
        a.prefetch = prefetch;
        a.prefetch_count = prefetch_count;
        a.prefetch_part = part;
        a.prefetch_parts = parts;
        b->row->run.pointwise(b->row, &a);
        break;
    }
/* What depthwise and conv arguments share: the window over the input, the rows of the
 * call, the row's data. */
#define WINDOW_ARGS(a)                                                                       \
    do {                                                                                     \
        memset(&(a), 0, sizeof(a));                                                          \
        (a).input = c->input, (a).in_height = c->H, (a).in_width = c->W;                     \
        (a).packed = b->packed, (a).params = b->params, (a).workspace = b->workspace;        \
        (a).kernel = l->kernel, (a).stride = l->stride;                                      \
        (a).pad_top = c->pad_top, (a).pad_left = c->pad_left;                                \
        (a).out_height = c->OH, (a).out_width = c->OW;                                       \
        (a).row_begin = r.r0, (a).row_end = r.r1, (a).output = res->out;                     \
    } while (0)
    case MNV3_ROW_DEPTHWISE: {
        mnv3_depthwise_args a;
        WINDOW_ARGS(a);
        a.channels = l->in_channels;
        a.channel_sums = res->sums;
        a.in_ring_rows = c->ring;
        b->row->run.depthwise(b->row, &a);
        break;
    }
    case MNV3_ROW_CONV: {
        mnv3_conv_args a;
        WINDOW_ARGS(a);
        a.in_channels = l->in_channels;
        a.out_channels = l->out_channels;
        a.in_row_stride = c->in_row;
        a.in_col_stride = c->in_col;
        a.in_chan_stride = c->in_chan;
        b->row->run.conv(b->row, &a);
        break;
    }
    case MNV3_ROW_FC:
    default: {
        mnv3_fc_args a;
        memset(&a, 0, sizeof a);
        a.input = c->input;
        a.in_features = l->in_channels;
        a.out_features = l->out_channels;
        a.packed = b->packed;
        a.params = b->params;
        a.output = res->out;
        a.out_begin = r.c0;
        a.out_end = r.c1;
        b->row->run.fc(b->row, &a);
        break;
    }
    }
}

/* ------------------------------------------------------------------------------------ */
/* Comparison                                                                            */
/* ------------------------------------------------------------------------------------ */

static const char *kind_name(mnv3_row_kind k) {
    switch (k) {
    case MNV3_ROW_POINTWISE: return "pointwise";
    case MNV3_ROW_DEPTHWISE: return "depthwise";
    case MNV3_ROW_CONV: return "conv";
    default: return "fc";
    }
}

static int close_to(double got, double want, double tol) {
    return fabs(got - want) <= tol * (fabs(want) > 1.0 ? fabs(want) : 1.0);
}

/* Sums add many outputs: their tolerance grows with the pixels added. */
static double sums_tolerance(const tc_case *c, double tol) {
    const size_t pixels = c->layer.kind == MNV3_ROW_POINTWISE ? c->P : (size_t)c->OH * c->OW;
    return tol * (double)(pixels ? pixels : 1);
}

size_t tc_diff(const tc_case *c, const tc_result *got, const tc_result *want, double tol,
               const char *what) {
    size_t i, bad = 0;
    for (i = 0; i < c->out_elems; ++i) {
        int ok;
        if (c->type == TC_Q8) {
            ok = ((const int8_t *)got->out)[i] == ((const int8_t *)want->out)[i];
        } else {
            const float g = ((const float *)got->out)[i], w = ((const float *)want->out)[i];
            ok = w == TC_SENTINEL ? g == TC_SENTINEL : close_to(g, w, tol);
        }
        if (!ok && bad++ == 0) {
            if (c->type == TC_Q8)
                fprintf(stderr, "  %s %s out[%zu]: got %d want %d\n", what, kind_name(c->layer.kind),
                        i, ((const int8_t *)got->out)[i], ((const int8_t *)want->out)[i]);
            else
                fprintf(stderr, "  %s %s out[%zu]: got %.9g want %.9g\n", what,
                        kind_name(c->layer.kind), i, (double)((const float *)got->out)[i],
                        (double)((const float *)want->out)[i]);
        }
    }
    for (i = 0; got->sums && i < c->n_sums; ++i) {
        int ok;
        if (c->type == TC_Q8)
            ok = ((const int32_t *)got->sums)[i] == ((const int32_t *)want->sums)[i];
        else
            ok = close_to(((const float *)got->sums)[i], ((const float *)want->sums)[i],
                          sums_tolerance(c, tol));
        if (!ok && bad++ == 0) fprintf(stderr, "  %s %s sums[%zu] differ\n", what,
                                       kind_name(c->layer.kind), i);
    }
    return bad;
}

/* Pieces covering the layer as threads split it: pointwise 2 x 2 (pixels x panels),
 * depthwise and conv two row ranges, fc two output ranges. */
static void call_in_pieces(const tc_bound *b, const tc_case *c, tc_result *res) {
    tc_range r = tc_whole(c);
    const uint32_t nr = b->row->nr ? b->row->nr : 1;
    const uint32_t N = c->layer.out_channels;
    switch (c->layer.kind) {
    case MNV3_ROW_POINTWISE: {
        const size_t ps = c->P > 1 ? 1 + tr_below((uint32_t)c->P - 1) : c->P;
        const uint32_t panels = (N + nr - 1) / nr;
        const uint32_t cs = panels > 1 ? (1 + tr_below(panels - 1)) * nr : N;
        size_t pr[3];
        uint32_t oc[3], i, j;
        pr[0] = 0, pr[1] = ps, pr[2] = c->P;
        oc[0] = 0, oc[1] = cs, oc[2] = N;
        for (i = 0; i < 2; ++i)
            for (j = 0; j < 2; ++j) {
                r.p0 = pr[i];
                r.p1 = pr[i + 1];
                r.c0 = oc[j];
                r.c1 = oc[j + 1];
                if (r.p0 < r.p1 && r.c0 < r.c1) tc_call(b, c, r, res, NULL, 0, 0, 1);
            }
        break;
    }
    case MNV3_ROW_FC: {
        const uint32_t s = N > 1 ? 1 + tr_below(N - 1) : N;
        r.c1 = s;
        tc_call(b, c, r, res, NULL, 0, 0, 1);
        r.c0 = s;
        r.c1 = N;
        if (r.c0 < r.c1) tc_call(b, c, r, res, NULL, 0, 0, 1);
        break;
    }
    default: {
        const uint32_t s = c->OH > 1 ? 1 + tr_below(c->OH - 1) : c->OH;
        r.r1 = s;
        tc_call(b, c, r, res, NULL, 0, 0, 1);
        r.r0 = s;
        r.r1 = c->OH;
        if (r.r0 < r.r1) tc_call(b, c, r, res, NULL, 0, 0, 1);
        break;
    }
    }
}

size_t tc_check_reference(const tc_case *c, tc_naive_fn naive, double tol) {
    tc_bound ref;
    tc_result got, want;
    size_t bad;
    tc_bind(&ref, tc_reference_row(c), c);
    tc_result_init(&got, c);
    tc_result_init(&want, c);
    tc_call(&ref, c, tc_whole(c), &got, NULL, 0, 0, 1);
    naive(c, &want);
    bad = tc_diff(c, &got, &want, tol, "reference");
    tc_result_free(&got);
    tc_result_free(&want);
    tc_unbind(&ref);
    return bad;
}

size_t tc_check_row(const mnv3_row *row, const tc_case *c, tc_split split, double tol) {
    tc_bound ref, got;
    tc_result want, res;
    size_t bad;
    tc_range r = tc_whole(c);
    tc_bind(&ref, tc_reference_row(c), c);
    tc_bind(&got, row, c);
    tc_result_init(&want, c);
    tc_result_init(&res, c);
    if (split == TC_SUBRANGE) r = tc_subrange(c, row);
    tc_call(&ref, c, r, &want, NULL, 0, 0, 1);
    if (split == TC_TASKS) {
        call_in_pieces(&got, c, &res);
    } else if (split == TC_SUBRANGE && c->layer.kind == MNV3_ROW_POINTWISE) {
        /* Prefetch hints change no value: ranges of odd lengths (one shorter than a line),
         * and this call's part of them. */
        mnv3_prefetch_range hint[3];
        const size_t in_bytes = c->in_elems * act_bytes(c);
        const uint32_t parts = 1 + tr_below(4);
        hint[0].begin = (const char *)c->weight;
        hint[0].bytes = (size_t)c->layer.in_channels * c->layer.out_channels;
        hint[1].begin = (const char *)c->input + 1;
        hint[1].bytes = in_bytes > 1 ? 1 + tr_below((uint32_t)(in_bytes - 1)) : 0;
        hint[2].begin = (const char *)c->weight;
        hint[2].bytes = 63;
        tc_call(&got, c, r, &res, hint, 3, tr_below(parts), parts);
    } else {
        tc_call(&got, c, r, &res, NULL, 0, 0, 1);
    }
    bad = tc_diff(c, &res, &want, tol, row->name);
    tc_result_free(&want);
    tc_result_free(&res);
    tc_unbind(&ref);
    tc_unbind(&got);
    return bad;
}
