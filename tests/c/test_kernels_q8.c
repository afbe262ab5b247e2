/* int8 kernel tests:
 *   1. the requantization primitives against an independent 64-bit formulation;
 *   2. the reference rows against naive formulas written here (64-bit sums, the gate and
 *      the residual ADD spelled out);
 *   3. every int8 kernel set of the build the CPU runs against the reference, byte for
 *      byte, on awkward shapes: every tail of every tile, odd channel counts, strides,
 *      kernel sizes, the gate, residual, LUT, channel sums, ring input, zero and non-zero
 *      weight zero points, multipliers with large and small shifts, extreme accumulators.
 *      A set the CPU lacks prints a SKIP line. */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernels/kernels.h"
#include "kernels/q8_impl.h"
#include "mnv3.h"

#define SENTINEL_BYTE ((int8_t)0x5A)
#define SENTINEL_SUM 0x13572468

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;

static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 32);
}

static uint32_t rnd_below(uint32_t n) { return n ? rnd() % n : 0; }
static int32_t rnd_range(int32_t lo, int32_t hi) { return lo + (int32_t)rnd_below((uint32_t)(hi - lo + 1)); }

static void *xalloc(size_t n) {
    void *p = NULL;
    if (n == 0) n = 1;
    if (posix_memalign(&p, 64, n) != 0) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static int8_t *bytes_random(size_t n, int32_t lo, int32_t hi) {
    int8_t *p = (int8_t *)xalloc(n);
    size_t i;
    for (i = 0; i < n; ++i) p[i] = (int8_t)rnd_range(lo, hi);
    return p;
}

static int quick;

/* ------------------------------------------------------------------------------------ */
/* Requantization against an independent formulation                                     */
/* ------------------------------------------------------------------------------------ */

/* round(x * m * 2^shift) as TFLite defines it, with exact 64-bit/128-bit-free steps:
 * high = floor((x' * m + 2^30) / 2^31) (saturated), then a division by 2^right rounding
 * half away from zero. */
static int32_t naive_requantize(int32_t x, mnv3_qmul m) {
    const int left = m.shift > 0 ? m.shift : 0, right = m.shift > 0 ? 0 : -m.shift;
    const int32_t xs = (int32_t)((uint32_t)x << left);
    int64_t prod = (int64_t)xs * m.multiplier, high, q, r;
    prod += (int64_t)1 << 30;
    high = prod >= 0 ? prod / ((int64_t)1 << 31) : -((-prod + ((int64_t)1 << 31) - 1) / ((int64_t)1 << 31));
    if (high > INT32_MAX) high = INT32_MAX; /* the one product that overflows */
    if (right == 0) return (int32_t)high;
    q = high >= 0 ? high : -high;
    r = q & (((int64_t)1 << right) - 1);
    q >>= right;
    if (2 * r >= ((int64_t)1 << right)) ++q;
    return (int32_t)(high >= 0 ? q : -q);
}

static mnv3_qmul random_qmul(int extreme) {
    mnv3_qmul m;
    const uint32_t pick = rnd_below(16);
    m.multiplier = (int32_t)(0x40000000u + (rnd() & 0x3FFFFFFFu));
    if (pick == 0) m.multiplier = 0x40000000;
    if (pick == 1) m.multiplier = INT32_MAX;
    if (extreme && pick == 2) m.multiplier = INT32_MIN;
    if (extreme && pick == 3) m.multiplier = 0;
    switch (rnd_below(4)) {
    case 0: m.shift = -rnd_range(0, 31); break;
    case 1: m.shift = rnd_range(0, 12); break;
    default: m.shift = -rnd_range(4, 14); break; /* what convs have */
    }
    return m;
}

static int32_t random_accumulator(void) {
    static const int32_t edges[] = {0, 1, -1, 2, -2, INT32_MIN, INT32_MAX, INT32_MIN + 1,
                                    INT32_MAX - 1, 1 << 30, -(1 << 30), 0x40000001, -0x40000001};
    switch (rnd_below(4)) {
    case 0: return edges[rnd_below(sizeof edges / sizeof *edges)];
    case 1: return (int32_t)rnd();
    case 2: return rnd_range(-100000, 100000);
    default: return rnd_range(-300, 300);
    }
}

static void requantize_suite(void) {
    uint32_t i, bad = 0;
    const uint32_t n = quick ? 200000u : 2000000u;
    for (i = 0; i < n; ++i) {
        const mnv3_qmul m = random_qmul(1);
        const int32_t x = random_accumulator();
        const int32_t got = mnv3_q_requantize(x, m), want = naive_requantize(x, m);
        if (got != want && bad++ < 5)
            fprintf(stderr, "  requantize(%d, %d * 2^%d) = %d, want %d\n", x, m.multiplier,
                    m.shift, got, want);
    }
    CHECK_MSG(bad == 0, "%u of %u requantizations differ", bad, n);
}

/* ------------------------------------------------------------------------------------ */
/* Layer parameters                                                                      */
/* ------------------------------------------------------------------------------------ */

typedef struct q8_out_params {
    mnv3_qmul *qmul;
    int8_t *lut;
    mnv3_q8_requant r;
} q8_out_params;

static void out_params_make(q8_out_params *o, uint32_t channels, int extreme) {
    uint32_t c;
    o->qmul = (mnv3_qmul *)xalloc(channels * sizeof *o->qmul);
    for (c = 0; c < channels; ++c) o->qmul[c] = random_qmul(extreme);
    if (!extreme && rnd_below(2)) {
        /* Conv-like scales, so outputs land inside the range rather than at its ends. */
        const int32_t shift = -rnd_range(6, 12);
        for (c = 0; c < channels; ++c) o->qmul[c].shift = shift + rnd_range(-1, 1);
    }
    o->r.qmul = o->qmul;
    o->r.out_zp = rnd_range(-128, 127);
    o->r.act_lo = -128;
    o->r.act_hi = 127;
    if (rnd_below(3) == 0) {
        o->r.act_lo = rnd_range(-128, 0);
        o->r.act_hi = rnd_range(o->r.act_lo, 127);
    }
    o->lut = NULL;
    if (rnd_below(3) == 0) {
        o->lut = bytes_random(256, -128, 127);
    }
    o->r.lut = o->lut;
}

static void out_params_free(q8_out_params *o) {
    free(o->qmul);
    free(o->lut);
}

static int8_t naive_out(const mnv3_q8_requant *r, uint32_t o, int64_t acc) {
    int64_t v = (int64_t)naive_requantize((int32_t)(uint32_t)(uint64_t)acc, r->qmul[o]) + r->out_zp;
    if (v > INT32_MAX) v -= (int64_t)1 << 32; /* the int32 sum wraps */
    v = v < r->act_lo ? r->act_lo : v > r->act_hi ? r->act_hi : v;
    if (r->lut) v = r->lut[v + 128];
    return (int8_t)v;
}

static int32_t weight_zp_random(void) { return rnd_below(2) ? 0 : rnd_range(-128, 127); }

static int32_t *bias_random(uint32_t n, int extreme) {
    int32_t *b;
    uint32_t i;
    if (rnd_below(5) == 0) return NULL;
    b = (int32_t *)xalloc(n * sizeof *b);
    for (i = 0; i < n; ++i) b[i] = extreme ? random_accumulator() : rnd_range(-20000, 20000);
    return b;
}

/* Weights and inputs: uniform, or pinned at the ends (the largest products). */
static int8_t *values_random(size_t n, int extreme) {
    if (extreme && rnd_below(2)) {
        int8_t *p = (int8_t *)xalloc(n);
        size_t i;
        for (i = 0; i < n; ++i) p[i] = rnd_below(2) ? 127 : -128;
        return p;
    }
    return bytes_random(n, -128, 127);
}

static size_t bytes_diff(const char *what, const int8_t *got, const int8_t *want, size_t n) {
    size_t i, bad = 0;
    for (i = 0; i < n; ++i)
        if (got[i] != want[i] && bad++ == 0)
            fprintf(stderr, "  %s[%zu]: got %d want %d\n", what, i, got[i], want[i]);
    return bad;
}

static size_t sums_diff(const int32_t *got, const int32_t *want, size_t n) {
    size_t i, bad = 0;
    for (i = 0; i < n; ++i)
        if (got[i] != want[i] && bad++ == 0)
            fprintf(stderr, "  sums[%zu]: got %d want %d\n", i, got[i], want[i]);
    return bad;
}

/* Packs for a row (NULL and the canonical weights when it reads them in place). */
static const void *pack_for(size_t bytes, void (*pack)(const mnv3_q8_weights *, void *),
                            const mnv3_q8_weights *w, void **owned) {
    *owned = NULL;
    if (bytes == 0) return w->weight;
    *owned = xalloc(bytes);
    pack(w, *owned);
    return *owned;
}

/* ------------------------------------------------------------------------------------ */
/* Pointwise                                                                             */
/* ------------------------------------------------------------------------------------ */

typedef struct pw_case {
    size_t P;
    uint32_t K, N;
    size_t in_stride, out_stride;
    int8_t *input, *weight, *residual, *gate;
    int32_t *bias, in_zp, weight_zp;
    q8_out_params out;
    mnv3_q8_gate gp;
    mnv3_q8_add add;
    int sums, want_output;
} pw_case;

static void add_random(mnv3_q8_add *a) {
    mnv3_qmul_from_real(0.25 + (double)rnd_below(1000) / 4000.0, &a->a_mul);
    mnv3_qmul_from_real(0.25 + (double)rnd_below(1000) / 4000.0, &a->b_mul);
    mnv3_qmul_from_real((double)(rnd_below(1000) + 1) / 1000.0 / (1 << 18), &a->out_mul);
    a->a_zp = rnd_range(-128, 127);
    a->b_zp = rnd_range(-128, 127);
    a->left_shift = 20;
    a->out_zp = rnd_range(-128, 127);
    a->act_lo = -128;
    a->act_hi = 127;
    switch (rnd_below(4)) {
    case 0:
        /* an output multiplier above 1 (shifts left): the vector ADD's general path; with
         * no input shift, so that the sums do not all saturate */
        mnv3_qmul_from_real(1.0 + (double)rnd_below(1000) / 300.0, &a->out_mul);
        a->left_shift = 0;
        break;
    case 1:
        /* a fused activation: the clamp on bytes */
        a->act_lo = rnd_range(-128, 0);
        a->act_hi = rnd_range(a->act_lo, 127);
        break;
    default: break;
    }
}

static void pw_make(pw_case *c, size_t P, uint32_t K, uint32_t N, int extreme) {
    memset(c, 0, sizeof *c);
    c->P = P;
    c->K = K;
    c->N = N;
    c->in_stride = K + (rnd_below(3) == 0 ? rnd_below(5) : 0);
    c->out_stride = N + (rnd_below(3) == 0 ? rnd_below(5) : 0);
    c->input = values_random(P * c->in_stride, extreme);
    c->weight = values_random((size_t)K * N, extreme);
    c->bias = bias_random(N, extreme);
    c->in_zp = rnd_range(-128, 127);
    c->weight_zp = weight_zp_random();
    out_params_make(&c->out, N, extreme);
    if (rnd_below(3) == 0) {
        c->gate = bytes_random(K, -128, 127);
        c->gp.gate = c->gate;
        c->gp.x_zp = rnd_range(-128, 127);
        c->gp.gate_zp = rnd_range(-128, 127);
        mnv3_qmul_from_real((double)(rnd_below(1000) + 1) / 40000.0, &c->gp.qmul);
        c->gp.act_lo = -128;
        c->gp.act_hi = 127;
    }
    if (rnd_below(3) == 0) {
        c->residual = bytes_random(P * c->out_stride, -128, 127);
        add_random(&c->add);
    }
    c->sums = rnd_below(3) == 0;
    c->want_output = c->sums ? (int)rnd_below(2) : 1;
}

static void pw_free(pw_case *c) {
    free(c->input);
    free(c->weight);
    free(c->residual);
    free(c->gate);
    free(c->bias);
    out_params_free(&c->out);
}

static mnv3_q8_weights pw_weights(const pw_case *c) {
    mnv3_q8_weights w;
    w.weight = c->weight;
    w.bias = c->bias;
    w.in_zp = c->in_zp;
    w.weight_zp = c->weight_zp;
    w.in_channels = c->K;
    w.out_channels = c->N;
    w.kernel = 1;
    return w;
}

static void pw_args(const pw_case *c, mnv3_q8_pointwise_args *a, const void *packed,
                    int8_t *out, int32_t *sums, void *ws) {
    memset(a, 0, sizeof *a);
    a->input = c->input;
    a->in_stride = c->in_stride;
    a->in_zp = c->in_zp;
    a->gate = c->gp;
    a->packed = packed;
    a->bias = c->bias;
    a->weight_zp = c->weight_zp;
    a->requant = c->out.r;
    a->residual = c->residual;
    a->add = c->add;
    a->output = c->want_output ? out : NULL;
    a->out_stride = c->out_stride;
    a->channel_sums = c->sums ? sums : NULL;
    a->in_channels = c->K;
    a->out_channels = c->N;
    a->pixel_begin = 0;
    a->pixel_end = c->P;
    a->oc_begin = 0;
    a->oc_end = c->N;
    a->workspace = ws;
}

static int8_t naive_add(const mnv3_q8_add *p, int8_t a, int8_t b) {
    const int64_t sa = naive_requantize((int32_t)(((int64_t)a - p->a_zp) * ((int64_t)1 << p->left_shift)), p->a_mul);
    const int64_t sb = naive_requantize((int32_t)(((int64_t)b - p->b_zp) * ((int64_t)1 << p->left_shift)), p->b_mul);
    int64_t v = (int64_t)naive_requantize((int32_t)(sa + sb), p->out_mul) + p->out_zp;
    v = v < p->act_lo ? p->act_lo : v > p->act_hi ? p->act_hi : v;
    return (int8_t)v;
}

static void pw_naive(const pw_case *c, int8_t *out, int32_t *sums) {
    size_t p;
    uint32_t o, k;
    for (p = 0; p < c->P; ++p)
        for (o = 0; o < c->N; ++o) {
            int64_t acc = c->bias ? c->bias[o] : 0;
            int8_t v;
            for (k = 0; k < c->K; ++k) {
                int64_t x = c->input[p * c->in_stride + k];
                if (c->gate) {
                    x = (int64_t)naive_requantize((int32_t)((x - c->gp.x_zp) * (c->gate[k] - c->gp.gate_zp)),
                                                  c->gp.qmul) + c->in_zp;
                    x = x < c->gp.act_lo ? c->gp.act_lo : x > c->gp.act_hi ? c->gp.act_hi : x;
                }
                acc += (x - c->in_zp) * ((int64_t)c->weight[(size_t)o * c->K + k] - c->weight_zp);
            }
            v = naive_out(&c->out.r, o, acc);
            if (c->residual) v = naive_add(&c->add, v, c->residual[p * c->out_stride + o]);
            if (c->want_output) out[p * c->out_stride + o] = v;
            if (c->sums) sums[o] += v;
        }
}

static int pw_check_naive(pw_case *c) {
    const size_t out_n = c->P * c->out_stride;
    int8_t *got = (int8_t *)xalloc(out_n), *want = (int8_t *)xalloc(out_n);
    int32_t *gs = (int32_t *)xalloc(c->N * 4), *ws = (int32_t *)xalloc(c->N * 4);
    mnv3_q8_pointwise_args a;
    size_t bad;
    uint32_t o;
    memset(got, SENTINEL_BYTE, out_n);
    memset(want, SENTINEL_BYTE, out_n);
    for (o = 0; o < c->N; ++o) gs[o] = ws[o] = SENTINEL_SUM + (int32_t)o;
    pw_args(c, &a, c->weight, got, gs, NULL);
    mnv3_ref_q8_pointwise(&a);
    pw_naive(c, want, ws);
    bad = bytes_diff("pointwise", got, want, out_n) + sums_diff(gs, ws, c->N);
    free(got);
    free(want);
    free(gs);
    free(ws);
    return bad == 0;
}

/* The row against the reference, on the whole layer or on sub-ranges of rows and panels
 * the way the executor splits a layer across threads. */
static int pw_check_row(const mnv3_q8_pointwise_kernel *row, pw_case *c, int subrange) {
    const mnv3_q8_weights w = pw_weights(c);
    const size_t out_n = c->P * c->out_stride;
    const size_t ws_bytes = row->workspace_bytes(row, c->K);
    int8_t *got = (int8_t *)xalloc(out_n), *want = (int8_t *)xalloc(out_n);
    int32_t *gs = (int32_t *)xalloc(c->N * 4), *ws = (int32_t *)xalloc(c->N * 4);
    void *owned, *work = xalloc(ws_bytes);
    const void *packed = pack_for(row->packed_bytes(&w), row->pack, &w, &owned);
    mnv3_q8_pointwise_args a;
    size_t bad;
    uint32_t o;
    memset(got, SENTINEL_BYTE, out_n);
    memset(want, SENTINEL_BYTE, out_n);
    for (o = 0; o < c->N; ++o) gs[o] = ws[o] = SENTINEL_SUM + (int32_t)o;
    pw_args(c, &a, c->weight, want, ws, NULL);
    mnv3_ref_q8_pointwise(&a);
    pw_args(c, &a, packed, got, gs, work);
    if (subrange && c->P > 2 && c->N > row->nr) {
        const size_t split = 1 + rnd_below((uint32_t)c->P - 1);
        const uint32_t panels = (c->N + row->nr - 1) / row->nr;
        const uint32_t oc_split = (1 + rnd_below(panels - 1)) * row->nr;
        size_t pr[3];
        uint32_t oc[3], i, j;
        pr[0] = 0, pr[1] = split, pr[2] = c->P;
        oc[0] = 0, oc[1] = oc_split, oc[2] = c->N;
        for (i = 0; i < 2; ++i)
            for (j = 0; j < 2; ++j) {
                a.pixel_begin = pr[i];
                a.pixel_end = pr[i + 1];
                a.oc_begin = oc[j];
                a.oc_end = oc[j + 1];
                row->run(row, &a);
            }
    } else {
        row->run(row, &a);
    }
    bad = bytes_diff(row->name, got, want, out_n) + sums_diff(gs, ws, c->N);
    if (bad)
        fprintf(stderr, "  %s: P=%zu K=%u N=%u strides %zu/%zu gate=%d res=%d lut=%d sums=%d out=%d"
                        " in_zp=%d wzp=%d sub=%d\n",
                row->name, c->P, c->K, c->N, c->in_stride, c->out_stride, c->gate != NULL,
                c->residual != NULL, c->out.lut != NULL, c->sums, c->want_output, c->in_zp,
                c->weight_zp, subrange);
    free(owned);
    free(work);
    free(got);
    free(want);
    free(gs);
    free(ws);
    return bad == 0;
}

/* ------------------------------------------------------------------------------------ */
/* Depthwise                                                                             */
/* ------------------------------------------------------------------------------------ */

typedef struct dw_case {
    uint32_t H, W, C, K, S, pt, pl, OH, OW, ring;
    int8_t *input, *weight;
    int32_t *bias, in_zp, weight_zp;
    q8_out_params out;
    int sums;
} dw_case;

static int dw_make(dw_case *c, uint32_t H, uint32_t W, uint32_t C, uint32_t K, uint32_t S,
                   int extreme) {
    uint32_t rows;
    memset(c, 0, sizeof *c);
    c->H = H, c->W = W, c->C = C, c->K = K, c->S = S;
    c->pt = rnd_below(K);
    c->pl = rnd_below(K);
    if (H + 2 * c->pt < K || W + 2 * c->pl < K) return 0;
    c->OH = (H + 2 * c->pt - K) / S + 1;
    c->OW = (W + 2 * c->pl - K) / S + 1;
    /* A ring holding every row a single output row needs, or none; input row iy is at
     * row iy % ring of the buffer, which the naive formula reads the same way. */
    c->ring = rnd_below(3) == 0 && H > K ? K + rnd_below(2) : 0;
    rows = c->ring ? c->ring : H;
    c->input = values_random((size_t)rows * W * C, extreme);
    c->weight = values_random((size_t)K * K * C, extreme);
    c->bias = bias_random(C, extreme);
    c->in_zp = rnd_range(-128, 127);
    c->weight_zp = weight_zp_random();
    out_params_make(&c->out, C, extreme);
    c->sums = rnd_below(3) == 0;
    return 1;
}

static void dw_free(dw_case *c) {
    free(c->input);
    free(c->weight);
    free(c->bias);
    out_params_free(&c->out);
}

static void dw_args(const dw_case *c, mnv3_q8_depthwise_args *a, const void *packed,
                    int8_t *out, int32_t *sums, void *ws) {
    memset(a, 0, sizeof *a);
    a->input = c->input;
    a->in_height = c->H;
    a->in_width = c->W;
    a->channels = c->C;
    a->in_zp = c->in_zp;
    a->packed = packed;
    a->bias = c->bias;
    a->weight_zp = c->weight_zp;
    a->kernel = c->K;
    a->stride = c->S;
    a->pad_top = c->pt;
    a->pad_left = c->pl;
    a->out_height = c->OH;
    a->out_width = c->OW;
    a->row_begin = 0;
    a->row_end = c->OH;
    a->requant = c->out.r;
    a->output = out;
    a->channel_sums = c->sums ? sums : NULL;
    a->in_ring_rows = c->ring;
    a->workspace = ws;
}

static void dw_naive(const dw_case *c, int8_t *out, int32_t *sums) {
    uint32_t oy, ox, ch, ky, kx;
    const uint32_t rows = c->ring ? c->ring : c->H;
    for (oy = 0; oy < c->OH; ++oy)
        for (ox = 0; ox < c->OW; ++ox)
            for (ch = 0; ch < c->C; ++ch) {
                int64_t acc = c->bias ? c->bias[ch] : 0;
                int8_t v;
                for (ky = 0; ky < c->K; ++ky)
                    for (kx = 0; kx < c->K; ++kx) {
                        const long iy = (long)(oy * c->S + ky) - (long)c->pt;
                        const long ix = (long)(ox * c->S + kx) - (long)c->pl;
                        if (iy < 0 || ix < 0 || iy >= (long)c->H || ix >= (long)c->W) continue;
                        acc += ((int64_t)c->input[(((size_t)iy % rows) * c->W + (size_t)ix) * c->C + ch] -
                                c->in_zp) *
                               ((int64_t)c->weight[((size_t)ky * c->K + kx) * c->C + ch] - c->weight_zp);
                    }
                v = naive_out(&c->out.r, ch, acc);
                out[((size_t)oy * c->OW + ox) * c->C + ch] = v;
                if (c->sums) sums[ch] += v;
            }
}


static int dw_check(const mnv3_q8_depthwise_kernel *row, dw_case *c, int against_naive,
                    int subrange) {
    mnv3_q8_weights w;
    const size_t out_n = (size_t)c->OH * c->OW * c->C;
    const size_t ws_bytes = row ? row->workspace_bytes(row, c->C, c->K, c->W) : 0;
    int8_t *got = (int8_t *)xalloc(out_n), *want = (int8_t *)xalloc(out_n);
    int32_t *gs = (int32_t *)xalloc(c->C * 4), *ws = (int32_t *)xalloc(c->C * 4);
    void *owned = NULL, *work = xalloc(ws_bytes);
    const void *packed;
    mnv3_q8_depthwise_args a;
    size_t bad;
    uint32_t ch;
    w.weight = c->weight;
    w.bias = c->bias;
    w.in_zp = c->in_zp;
    w.weight_zp = c->weight_zp;
    w.in_channels = w.out_channels = c->C;
    w.kernel = c->K;
    packed = row ? pack_for(row->packed_bytes(&w), row->pack, &w, &owned) : c->weight;
    memset(got, SENTINEL_BYTE, out_n);
    memset(want, SENTINEL_BYTE, out_n);
    for (ch = 0; ch < c->C; ++ch) gs[ch] = ws[ch] = SENTINEL_SUM - (int32_t)ch;
    if (against_naive) {
        dw_naive(c, want, ws);
    } else {
        dw_args(c, &a, c->weight, want, ws, NULL);
        mnv3_ref_q8_depthwise(&a);
    }
    dw_args(c, &a, packed, got, gs, work);
    if (!row) {
        mnv3_ref_q8_depthwise(&a);
    } else if (subrange && c->OH > 1) {
        const uint32_t split = 1 + rnd_below(c->OH - 1);
        a.row_end = split;
        row->run(row, &a);
        a.row_begin = split;
        a.row_end = c->OH;
        row->run(row, &a);
    } else {
        row->run(row, &a);
    }
    bad = bytes_diff(row ? row->name : "ref dw", got, want, out_n) + sums_diff(gs, ws, c->C);
    if (bad)
        fprintf(stderr, "  dw: H=%u W=%u C=%u K=%u S=%u pad=%u,%u ring=%u lut=%d sums=%d"
                        " in_zp=%d wzp=%d\n",
                c->H, c->W, c->C, c->K, c->S, c->pt, c->pl, c->ring, c->out.lut != NULL,
                c->sums, c->in_zp, c->weight_zp);
    free(owned);
    free(work);
    free(got);
    free(want);
    free(gs);
    free(ws);
    return bad == 0;
}

/* ------------------------------------------------------------------------------------ */
/* Dense conv (the stem) and FC                                                          */
/* ------------------------------------------------------------------------------------ */

typedef struct conv_case {
    uint32_t H, W, Ci, Co, K, S, pt, pl, OH, OW;
    size_t rs, cs, chs;
    int8_t *input, *weight;
    int32_t *bias, in_zp, weight_zp;
    q8_out_params out;
} conv_case;

static int conv_make(conv_case *c, uint32_t H, uint32_t W, uint32_t Ci, uint32_t Co,
                     uint32_t K, uint32_t S, int extreme) {
    memset(c, 0, sizeof *c);
    c->H = H, c->W = W, c->Ci = Ci, c->Co = Co, c->K = K, c->S = S;
    c->pt = rnd_below(K);
    c->pl = rnd_below(K);
    if (H + 2 * c->pt < K || W + 2 * c->pl < K) return 0;
    c->OH = (H + 2 * c->pt - K) / S + 1;
    c->OW = (W + 2 * c->pl - K) / S + 1;
    c->chs = 1;
    c->cs = Ci;
    c->rs = (size_t)W * Ci;
    c->input = values_random((size_t)H * W * Ci, extreme);
    c->weight = values_random((size_t)Co * K * K * Ci, extreme);
    c->bias = bias_random(Co, extreme);
    c->in_zp = rnd_range(-128, 127);
    c->weight_zp = weight_zp_random();
    out_params_make(&c->out, Co, extreme);
    return 1;
}

static void conv_free(conv_case *c) {
    free(c->input);
    free(c->weight);
    free(c->bias);
    out_params_free(&c->out);
}

static void conv_args(const conv_case *c, mnv3_q8_conv_args *a, const void *packed,
                      int8_t *out, void *ws) {
    memset(a, 0, sizeof *a);
    a->input = c->input;
    a->in_height = c->H;
    a->in_width = c->W;
    a->in_channels = c->Ci;
    a->in_row_stride = c->rs;
    a->in_col_stride = c->cs;
    a->in_chan_stride = c->chs;
    a->in_zp = c->in_zp;
    a->packed = packed;
    a->bias = c->bias;
    a->weight_zp = c->weight_zp;
    a->out_channels = c->Co;
    a->kernel = c->K;
    a->stride = c->S;
    a->pad_top = c->pt;
    a->pad_left = c->pl;
    a->out_height = c->OH;
    a->out_width = c->OW;
    a->row_begin = 0;
    a->row_end = c->OH;
    a->requant = c->out.r;
    a->output = out;
    a->workspace = ws;
}

static void conv_naive(const conv_case *c, int8_t *out) {
    uint32_t oy, ox, o, ky, kx, i;
    for (oy = 0; oy < c->OH; ++oy)
        for (ox = 0; ox < c->OW; ++ox)
            for (o = 0; o < c->Co; ++o) {
                int64_t acc = c->bias ? c->bias[o] : 0;
                for (ky = 0; ky < c->K; ++ky)
                    for (kx = 0; kx < c->K; ++kx)
                        for (i = 0; i < c->Ci; ++i) {
                            const long iy = (long)(oy * c->S + ky) - (long)c->pt;
                            const long ix = (long)(ox * c->S + kx) - (long)c->pl;
                            if (iy < 0 || ix < 0 || iy >= (long)c->H || ix >= (long)c->W) continue;
                            acc += ((int64_t)c->input[(size_t)iy * c->rs + (size_t)ix * c->cs + i] - c->in_zp) *
                                   ((int64_t)c->weight[(((size_t)o * c->K + ky) * c->K + kx) * c->Ci + i] -
                                    c->weight_zp);
                        }
                out[((size_t)oy * c->OW + ox) * c->Co + o] = naive_out(&c->out.r, o, acc);
            }
}

static int conv_check(const mnv3_q8_conv_kernel *row, conv_case *c, int subrange) {
    mnv3_q8_weights w;
    const size_t out_n = (size_t)c->OH * c->OW * c->Co;
    const size_t ws_bytes = row ? row->workspace_bytes(row, c->Ci, c->K, c->OW) : 0;
    int8_t *got = (int8_t *)xalloc(out_n), *want = (int8_t *)xalloc(out_n);
    void *owned = NULL, *work = xalloc(ws_bytes);
    const void *packed;
    mnv3_q8_conv_args a;
    size_t bad;
    w.weight = c->weight;
    w.bias = c->bias;
    w.in_zp = c->in_zp;
    w.weight_zp = c->weight_zp;
    w.in_channels = c->Ci;
    w.out_channels = c->Co;
    w.kernel = c->K;
    packed = row ? pack_for(row->packed_bytes(&w), row->pack, &w, &owned) : c->weight;
    memset(got, SENTINEL_BYTE, out_n);
    memset(want, SENTINEL_BYTE, out_n);
    if (!row) {
        conv_naive(c, want);
    } else {
        conv_args(c, &a, c->weight, want, NULL);
        mnv3_ref_q8_conv(&a);
    }
    conv_args(c, &a, packed, got, work);
    if (!row) {
        mnv3_ref_q8_conv(&a);
    } else if (subrange && c->OH > 1) {
        const uint32_t split = 1 + rnd_below(c->OH - 1);
        a.row_end = split;
        row->run(row, &a);
        a.row_begin = split;
        a.row_end = c->OH;
        row->run(row, &a);
    } else {
        row->run(row, &a);
    }
    bad = bytes_diff(row ? row->name : "ref conv", got, want, out_n);
    if (bad)
        fprintf(stderr, "  conv: H=%u W=%u Ci=%u Co=%u K=%u S=%u pad=%u,%u in_zp=%d wzp=%d\n",
                c->H, c->W, c->Ci, c->Co, c->K, c->S, c->pt, c->pl, c->in_zp, c->weight_zp);
    free(owned);
    free(work);
    free(got);
    free(want);
    return bad == 0;
}

/* row NULL: the reference against the naive formula. */
static int fc_check(const mnv3_q8_fc_kernel *row, uint32_t I, uint32_t O, int extreme,
                    int subrange) {
    int8_t *input = values_random(I, extreme), *weight = values_random((size_t)I * O, extreme);
    int32_t *bias = bias_random(O, extreme);
    int8_t *got = (int8_t *)xalloc(O + 2), *want = (int8_t *)xalloc(O + 2);
    q8_out_params out;
    mnv3_q8_weights w;
    mnv3_q8_fc_args a;
    void *owned = NULL;
    const void *packed;
    size_t bad;
    uint32_t o, i;
    out_params_make(&out, O, extreme);
    w.weight = weight;
    w.bias = bias;
    w.in_zp = rnd_range(-128, 127);
    w.weight_zp = weight_zp_random();
    w.in_channels = I;
    w.out_channels = O;
    w.kernel = 1;
    packed = row ? pack_for(row->packed_bytes(&w), row->pack, &w, &owned) : weight;
    memset(got, SENTINEL_BYTE, O + 2);
    memset(want, SENTINEL_BYTE, O + 2);
    memset(&a, 0, sizeof a);
    a.input = input;
    a.in_zp = w.in_zp;
    a.in_features = I;
    a.out_features = O;
    a.bias = bias;
    a.weight_zp = w.weight_zp;
    a.requant = out.r;
    a.out_begin = 0;
    a.out_end = O;
    if (!row) {
        for (o = 0; o < O; ++o) {
            int64_t acc = bias ? bias[o] : 0;
            for (i = 0; i < I; ++i)
                acc += ((int64_t)input[i] - w.in_zp) * ((int64_t)weight[(size_t)o * I + i] - w.weight_zp);
            want[o] = naive_out(&out.r, o, acc);
        }
    } else {
        a.packed = weight;
        a.output = want;
        mnv3_ref_q8_fc(&a);
    }
    a.packed = packed;
    a.output = got;
    if (!row) {
        mnv3_ref_q8_fc(&a);
    } else if (subrange && O > 1) {
        const uint32_t split = 1 + rnd_below(O - 1);
        a.out_end = split;
        row->run(row, &a);
        a.out_begin = split;
        a.out_end = O;
        row->run(row, &a);
    } else {
        row->run(row, &a);
    }
    bad = bytes_diff(row ? row->name : "ref fc", got, want, O + 2);
    if (bad) fprintf(stderr, "  fc: I=%u O=%u in_zp=%d wzp=%d\n", I, O, w.in_zp, w.weight_zp);
    out_params_free(&out);
    free(owned);
    free(input);
    free(weight);
    free(bias);
    free(got);
    free(want);
    return bad == 0;
}

/* ------------------------------------------------------------------------------------ */
/* Suites                                                                                */
/* ------------------------------------------------------------------------------------ */

static void reference_suite(void) {
    static const uint32_t ks[] = {1, 3, 8, 17, 40};
    uint32_t i, j, n = 0, ok = 0;
    for (i = 0; i < sizeof ks / sizeof *ks; ++i)
        for (j = 0; j < 6; ++j) {
            pw_case c;
            pw_make(&c, 1 + rnd_below(20), ks[i], 1 + rnd_below(40), j == 5);
            ok += pw_check_naive(&c);
            ++n;
            pw_free(&c);
        }
    CHECK_MSG(ok == n, "reference pointwise: %u of %u cases match the naive formula", ok, n);
    for (n = ok = 0, i = 0; i < 40; ++i) {
        dw_case c;
        const uint32_t K = i % 2 ? 3 : 5, S = 1 + i % 3 / 2;
        if (!dw_make(&c, 1 + rnd_below(12), 1 + rnd_below(12), 1 + rnd_below(40), K, S, i % 7 == 0))
            continue;
        ok += dw_check(NULL, &c, 1, 0);
        ++n;
        dw_free(&c);
    }
    CHECK_MSG(ok == n, "reference depthwise: %u of %u cases match the naive formula", ok, n);
    for (n = ok = 0, i = 0; i < 20; ++i) {
        conv_case c;
        if (!conv_make(&c, 1 + rnd_below(12), 1 + rnd_below(12), 1 + rnd_below(4), 1 + rnd_below(20),
                       1 + 2 * rnd_below(2), 1 + rnd_below(2), i % 5 == 0))
            continue;
        ok += conv_check(NULL, &c, 0);
        ++n;
        conv_free(&c);
    }
    CHECK_MSG(ok == n, "reference conv: %u of %u cases match the naive formula", ok, n);
    for (n = ok = 0, i = 0; i < 20; ++i) {
        ok += fc_check(NULL, 1 + rnd_below(300), 1 + rnd_below(40), i % 4 == 0, 0);
        ++n;
    }
    CHECK_MSG(ok == n, "reference fc: %u of %u cases match the naive formula", ok, n);
}

/* Channel counts around every SIMD width and tile of the sets (4, 8, 16, 32, 64). */
static const uint32_t awkward[] = {1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 20, 24, 31, 32, 33,
                                   40, 47, 48, 63, 64, 65, 67, 72, 96, 129};
#define N_AWKWARD (sizeof awkward / sizeof *awkward)

static void set_suite(const mnv3_q8_kernel_set *set, const mnv3_kernels *k) {
    uint32_t i, j, n, ok;
    const mnv3_q8_pointwise_kernel *pw = k->q8_pointwise;
    /* Pointwise: every row count up to two tiles and a bit, every awkward K and N. */
    for (n = ok = 0, i = 0; i < N_AWKWARD; ++i)
        for (j = 0; j < N_AWKWARD; j += quick ? 3 : 1) {
            pw_case c;
            const size_t P = 1 + rnd_below(2 * (pw->mr > 1 ? pw->mr : 8) + 2);
            pw_make(&c, P, awkward[i], awkward[j], (i + j) % 9 == 0);
            ok += pw_check_row(pw, &c, (i + j) % 3 == 0);
            ++n;
            pw_free(&c);
        }
    for (i = 0; i < (quick ? 6u : 30u); ++i) {
        pw_case c;
        pw_make(&c, 1 + rnd_below(150), 1 + rnd_below(300), 1 + rnd_below(200), i % 5 == 0);
        ok += pw_check_row(pw, &c, i % 2);
        ++n;
        pw_free(&c);
    }
    CHECK_MSG(ok == n, "%s %s: %u of %u cases match the reference", set->name, pw->name, ok, n);

    for (n = ok = 0, i = 0; i < (quick ? 60u : 300u); ++i) {
        dw_case c;
        static const uint32_t kernels[] = {3, 5, 3, 5, 1, 7};
        const uint32_t K = kernels[i % 6], S = 1 + (i / 6) % 2;
        if (!dw_make(&c, 1 + rnd_below(14), 1 + rnd_below(20), awkward[rnd_below(N_AWKWARD)], K, S,
                     i % 11 == 0))
            continue;
        ok += dw_check(k->q8_depthwise, &c, 0, i % 2);
        ++n;
        dw_free(&c);
    }
    CHECK_MSG(ok == n, "%s %s: %u of %u cases match the reference", set->name,
              k->q8_depthwise->name, ok, n);
    /* Edges of the vector depthwise rows: outputs fewer than a pixel group, channels short
     * of a vector, odd sizes at stride 2, 5x5. */
    for (n = ok = 0, i = 0; i < 4 * 4 * 2 * 2; ++i) {
        static const uint32_t widths[] = {1, 2, 3, 5}, channels[] = {1, 8, 24, 72};
        dw_case c;
        const uint32_t W = widths[i % 4], C = channels[i / 4 % 4], K = i / 16 % 2 ? 5 : 3;
        const uint32_t S = 1 + i / 32;
        if (!dw_make(&c, W + 2, W, C, K, S, 0)) continue;
        ok += dw_check(k->q8_depthwise, &c, 0, i % 2);
        ++n;
        dw_free(&c);
    }
    CHECK_MSG(ok == n && n > 0, "%s %s: %u of %u edge cases match the reference", set->name,
              k->q8_depthwise->name, ok, n);

    for (n = ok = 0, i = 0; i < (quick ? 20u : 80u); ++i) {
        conv_case c;
        const uint32_t Ci = i % 3 ? 3 : 1 + rnd_below(8);
        if (!conv_make(&c, 1 + rnd_below(20), 1 + rnd_below(20), Ci, awkward[rnd_below(N_AWKWARD)],
                       i % 4 ? 3 : 1 + 2 * rnd_below(3), 1 + (i % 3 != 1), i % 7 == 0))
            continue;
        ok += conv_check(k->q8_conv, &c, i % 2);
        ++n;
        conv_free(&c);
    }
    CHECK_MSG(ok == n, "%s %s: %u of %u cases match the reference", set->name, k->q8_conv->name,
              ok, n);

    for (n = ok = 0, i = 0; i < N_AWKWARD; ++i)
        for (j = 0; j < N_AWKWARD; j += quick ? 4 : 2) {
            ok += fc_check(k->q8_fc, awkward[i] * (1 + rnd_below(3)), awkward[j], (i + j) % 7 == 0,
                           (i + j) % 2);
            ++n;
        }
    CHECK_MSG(ok == n, "%s %s: %u of %u cases match the reference", set->name, k->q8_fc->name,
              ok, n);
}

/* The set's vector requantization on its own, on many more values than layers reach,
 * including the saturating product and every shift. */
static void requantize_set(const mnv3_q8_kernel_set *set, const mnv3_kernels *k) {
    const mnv3_q8_gemm_impl *im = (const mnv3_q8_gemm_impl *)k->q8_pointwise->impl;
    enum { N = 4099 };
    static int32_t acc[N], got[N];
    static mnv3_qmul m[N];
    uint32_t round, i, bad = 0;
    if (!im || !im->ops->requantize) return;
    for (round = 0; round < (quick ? 20u : 200u); ++round) {
        for (i = 0; i < N; ++i) {
            acc[i] = random_accumulator();
            m[i] = random_qmul(1);
        }
        acc[0] = INT32_MIN;
        m[0].multiplier = INT32_MIN;
        m[0].shift = -(int32_t)(round % 32);
        im->ops->requantize(acc, m, N, got);
        for (i = 0; i < N; ++i)
            if (got[i] != mnv3_q_requantize(acc[i], m[i]) && bad++ < 5)
                fprintf(stderr, "  %s: requantize(%d, %d * 2^%d) = %d, want %d\n", set->name, acc[i],
                        m[i].multiplier, m[i].shift, got[i], mnv3_q_requantize(acc[i], m[i]));
    }
    CHECK_MSG(bad == 0, "%s: %u vector requantizations differ", set->name, bad);
}

static void sets_suite(void) {
    uint32_t count, i;
    const mnv3_q8_kernel_set *const *sets = mnv3_q8_kernel_sets(&count);
    for (i = 0; i < count; ++i) {
        mnv3_kernels k;
        memset(&k, 0, sizeof k);
        if (!mnv3_kernels_resolve_q8_set(sets[i], MNV3_DTYPE_I8, MNV3_DTYPE_I8, &k)) {
            SKIP("int8 kernel set %s: this CPU does not run it", sets[i]->name);
            continue;
        }
        printf("int8 kernel set %s: %s, %s, %s, %s\n", sets[i]->name, k.q8_pointwise->name,
               k.q8_depthwise->name, k.q8_conv->name, k.q8_fc->name);
        requantize_set(sets[i], &k);
        set_suite(sets[i], &k);
    }
}

/* Every set id the CPU runs resolves int8 rows, and float types resolve no int8 rows. */
static void resolve_suite(void) {
    uint32_t isa;
    for (isa = 1; isa < mnv3_isa_count(); ++isa) {
        mnv3_kernels k;
        if (!mnv3_isa_available((mnv3_isa)isa)) continue;
        CHECK_MSG(mnv3_kernels_resolve((mnv3_isa)isa, MNV3_DTYPE_I8, MNV3_DTYPE_I8, &k) &&
                      k.q8_pointwise && k.q8_depthwise && k.q8_conv && k.q8_fc,
                  "set %s resolves no int8 rows", mnv3_isa_name((mnv3_isa)isa));
        CHECK(mnv3_kernels_resolve((mnv3_isa)isa, MNV3_DTYPE_F32, MNV3_DTYPE_F32, &k) &&
              !k.q8_set && !k.q8_pointwise);
    }
}

int main(void) {
    quick = getenv("MNV3_TEST_QUICK") != NULL;
    requantize_suite();
    reference_suite();
    resolve_suite();
    sets_suite();
    return check_summary("test_kernels_q8");
}
