/* Kernel tests in three layers:
 *   1. the scalar reference against naive formulas written here independently (planar
 *      NCHW loops, double accumulation) on awkward shapes and every epilogue option;
 *   2. every kernel table this CPU can run against the reference, on the same shapes and
 *      on the sub-ranges the executor hands to threads;
 *   3. whole built-in networks on every table and several thread counts.
 * The loops over tables cover whatever the build and CPU offer, so the same file runs on
 * x86 and on ARM. */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernels/kernels.h"
#include "mnv3.h"

/* The reference accumulates in float, the naive formulas in double. */
#define TOL_NAIVE 1e-4
/* SIMD tables differ from the reference only by reassociation. */
#define TOL_ISA 1e-5
#define SENTINEL 12345.0f

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 32);
}

static uint32_t rnd_below(uint32_t n) { return n ? rnd() % n : 0; }

static float frand(float lo, float hi) { return lo + (hi - lo) * (float)(rnd() >> 8) / 16777216.0f; }

static float *falloc(size_t n) {
    void *p = NULL;
    if (n == 0) n = 1;
    if (posix_memalign(&p, 64, n * sizeof(float)) != 0) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return (float *)p;
}

static float *frandom(size_t n, float lo, float hi) {
    float *p = falloc(n);
    size_t i;
    for (i = 0; i < n; ++i) p[i] = frand(lo, hi);
    return p;
}

/* Weights scaled by fan-in as trained networks are, so sums stay O(1) and the reassociation
 * error stays proportional to the result rather than to the number of terms. */
static float *fweights(size_t n, uint32_t fan_in) {
    const float s = fan_in > 16 ? 2.0f / sqrtf((float)fan_in) : 0.5f;
    return frandom(n, -s, s);
}

static float *fcopy(const float *src, size_t n) {
    float *p = falloc(n);
    memcpy(p, src, n * sizeof(float));
    return p;
}

static void ffill(float *p, size_t n, float v) {
    size_t i;
    for (i = 0; i < n; ++i) p[i] = v;
}

static int close_to(double got, double want, double tol) {
    return fabs(got - want) <= tol * (fabs(want) > 1.0 ? fabs(want) : 1.0);
}

/* Number of mismatching elements; reports the first. Sentinels must match exactly. */
static size_t compare(const char *what, const float *got, const float *want, size_t n, double tol) {
    size_t i, bad = 0;
    for (i = 0; i < n; ++i) {
        int ok = want[i] == SENTINEL ? got[i] == SENTINEL : close_to(got[i], want[i], tol);
        if (!ok && bad++ == 0)
            fprintf(stderr, "  %s[%zu]: got %.9g want %.9g\n", what, i, (double)got[i],
                    (double)want[i]);
    }
    return bad;
}

/* ------------------------------------------------------------------------------------ */
/* Naive formulas                                                                        */
/* ------------------------------------------------------------------------------------ */

static double nv_clamp(double x, mnv3_clamp c) {
    if (x < c.lo) x = c.lo;
    if (x > c.hi) x = c.hi;
    return x;
}

static double nv_relu6(double x) { return x < 0 ? 0 : x > 6 ? 6 : x; }

static double nv_epilogue(const mnv3_epilogue *e, double x) {
    x = nv_clamp(x, e->pre);
    switch (e->activation) {
    case MNV3_ACT_RELU: x = x > 0 ? x : 0; break;
    case MNV3_ACT_RELU6: x = nv_relu6(x); break;
    case MNV3_ACT_HARD_SWISH: x = x * nv_relu6(x + 3) / 6; break;
    case MNV3_ACT_HARD_SIGMOID: x = nv_relu6(x + 3) / 6; break;
    default: break;
    }
    return nv_clamp(x, e->post);
}

static const mnv3_clamp unbounded = {-INFINITY, INFINITY};

static void random_epilogue(mnv3_epilogue *e) {
    e->activation = (mnv3_activation)rnd_below(5);
    e->pre = unbounded;
    e->post = unbounded;
    if (rnd_below(4) == 0) {
        e->pre.lo = frand(-2.0f, -0.5f);
        e->pre.hi = frand(0.5f, 2.0f);
    }
    if (rnd_below(4) == 0) {
        e->post.lo = frand(-1.0f, 0.0f);
        e->post.hi = frand(0.2f, 1.5f);
    }
}

/* Values at and next to the kinks of every activation and of the clamps used below. */
static const float edge_values[] = {-7.0f, -6.0f, -3.0001f, -3.0f, -2.9999f, -1.0f, -0.5f,
                                    -1e-30f, -0.0f, 0.0f, 1e-30f, 0.5f, 1.0f, 2.9999f, 3.0f,
                                    3.0001f, 5.9999f, 6.0f, 6.0001f, 9.0f};
#define N_EDGES (sizeof edge_values / sizeof edge_values[0])

/* ------------------------------------------------------------------------------------ */
/* Pointwise                                                                             */
/* ------------------------------------------------------------------------------------ */

typedef struct pw_case {
    size_t P;
    uint32_t K, N;
    size_t in_stride, out_stride;
    float *input, *weight, *bias, *scale, *residual, *sums0;
    mnv3_epilogue ep;
    mnv3_clamp res_clamp;
    int want_output;
} pw_case;

static void pw_make(pw_case *c, size_t P, uint32_t K, uint32_t N) {
    memset(c, 0, sizeof *c);
    c->P = P;
    c->K = K;
    c->N = N;
    c->in_stride = K + (rnd_below(3) == 0 ? rnd_below(5) : 0);
    c->out_stride = N + (rnd_below(3) == 0 ? rnd_below(5) : 0);
    c->input = frandom(P * c->in_stride, -1.0f, 1.0f);
    c->weight = fweights((size_t)K * N, K);
    c->bias = rnd_below(4) ? frandom(N, -1.0f, 1.0f) : NULL;
    c->scale = rnd_below(3) == 0 ? frandom(K, 0.0f, 1.0f) : NULL;
    c->residual = rnd_below(3) == 0 ? frandom(P * c->out_stride, -2.0f, 2.0f) : NULL;
    c->res_clamp = unbounded;
    if (c->residual && rnd_below(2)) {
        c->res_clamp.lo = -1.5f;
        c->res_clamp.hi = 1.75f;
    }
    c->sums0 = rnd_below(3) == 0 ? frandom(N, -1.0f, 1.0f) : NULL;
    c->want_output = c->sums0 ? (int)rnd_below(2) : 1;
    random_epilogue(&c->ep);
}

static void pw_free(pw_case *c) {
    free(c->input);
    free(c->weight);
    free(c->bias);
    free(c->scale);
    free(c->residual);
    free(c->sums0);
}

static void pw_args(const pw_case *c, mnv3_pointwise_args *a, const void *packed, float *out,
                    float *sums, float *ws) {
    memset(a, 0, sizeof *a);
    a->input = c->input;
    a->in_stride = c->in_stride;
    a->in_scale = c->scale;
    a->packed = packed;
    a->bias = c->bias;
    a->epilogue = c->ep;
    a->residual = c->residual;
    a->residual_clamp = c->res_clamp;
    a->output = c->want_output ? out : NULL;
    a->out_stride = c->out_stride;
    a->channel_sums = c->sums0 ? sums : NULL;
    a->in_channels = c->K;
    a->out_channels = c->N;
    a->pixel_begin = 0;
    a->pixel_end = c->P;
    a->oc_begin = 0;
    a->oc_end = c->N;
    a->workspace = ws;
}

/* Naive: planar input [K][P], weights [N][K], output planar [N][P], then NHWC. */
static void pw_naive(const pw_case *c, float *out, float *sums) {
    double *plane = (double *)malloc(c->K * c->P * sizeof(double) + 1);
    size_t p;
    uint32_t i, o;
    for (i = 0; i < c->K; ++i)
        for (p = 0; p < c->P; ++p)
            plane[(size_t)i * c->P + p] =
                (double)c->input[p * c->in_stride + i] * (c->scale ? c->scale[i] : 1.0);
    for (o = 0; o < c->N; ++o) {
        for (p = 0; p < c->P; ++p) {
            double acc = c->bias ? c->bias[o] : 0.0;
            for (i = 0; i < c->K; ++i) acc += plane[(size_t)i * c->P + p] * c->weight[(size_t)o * c->K + i];
            acc = nv_epilogue(&c->ep, acc);
            if (c->residual) acc = nv_clamp(acc + c->residual[p * c->out_stride + o], c->res_clamp);
            if (c->want_output) out[p * c->out_stride + o] = (float)acc;
            if (sums) sums[o] += (float)acc;
        }
    }
    free(plane);
}

static int pw_check_naive(pw_case *c) {
    const size_t on = c->P * c->out_stride;
    float *ref = falloc(on), *nv = falloc(on), *rs = c->sums0 ? fcopy(c->sums0, c->N) : NULL;
    float *ns = c->sums0 ? fcopy(c->sums0, c->N) : NULL;
    mnv3_pointwise_args a;
    size_t bad;
    ffill(ref, on, SENTINEL);
    ffill(nv, on, SENTINEL);
    pw_args(c, &a, c->weight, ref, rs, NULL);
    mnv3_ref_pointwise(&a);
    pw_naive(c, nv, ns);
    bad = compare("pointwise out", ref, nv, on, TOL_NAIVE);
    /* Sums of many values: compare with a tolerance scaled by the pixel count. */
    if (rs) bad += compare("pointwise sums", rs, ns, c->N, TOL_NAIVE * (double)c->P);
    free(ref);
    free(nv);
    free(rs);
    free(ns);
    return bad == 0;
}

static int pw_check_isa(const mnv3_kernels *k, pw_case *c, int subrange) {
    const size_t on = c->P * c->out_stride;
    const size_t pf = k->pointwise->packed_bytes(c->K, c->N) / sizeof(float);
    const size_t wf = k->pointwise->workspace_bytes(k->pointwise, c->K) / sizeof(float);
    float *packed = pf ? falloc(pf) : NULL, *ws = falloc(wf + 16);
    float *ref = falloc(on), *got = falloc(on);
    float *rs = c->sums0 ? fcopy(c->sums0, c->N) : NULL, *gs = c->sums0 ? fcopy(c->sums0, c->N) : NULL;
    mnv3_pointwise_args ar, ag;
    size_t bad;
    if (packed) k->pointwise->pack(c->weight, c->K, c->N, packed);
    ffill(ref, on, SENTINEL);
    ffill(got, on, SENTINEL);
    pw_args(c, &ar, c->weight, ref, rs, NULL);
    pw_args(c, &ag, packed ? (const void *)packed : (const void *)c->weight, got, gs, ws);
    if (subrange) {
        const uint32_t nr = k->pointwise->nr, units = (c->N + nr - 1) / nr;
        ar.pixel_begin = rnd_below((uint32_t)c->P);
        ar.pixel_end = ar.pixel_begin + 1 + rnd_below((uint32_t)(c->P - ar.pixel_begin));
        ar.oc_begin = rnd_below(units) * nr;
        ar.oc_end = ar.oc_begin + 1 + rnd_below(c->N - ar.oc_begin);
        ag.pixel_begin = ar.pixel_begin;
        ag.pixel_end = ar.pixel_end;
        ag.oc_begin = ar.oc_begin;
        ag.oc_end = ar.oc_end;
    }
    mnv3_prefetch_range hint[3];
    if (subrange) {
        /* Prefetch hints change no value: ranges of odd lengths (one shorter than a line),
         * and this call's part of them. */
        hint[0].begin = (const char *)c->weight;
        hint[0].bytes = (size_t)c->K * c->N * sizeof(float);
        hint[1].begin = (const char *)c->input + 4;
        hint[1].bytes = 1 + rnd_below((uint32_t)(c->P * c->in_stride * sizeof(float) - 4));
        hint[2].begin = (const char *)c->weight;
        hint[2].bytes = 63;
        ag.prefetch = hint;
        ag.prefetch_count = 3;
        ag.prefetch_parts = 1 + rnd_below(4);
        ag.prefetch_part = rnd_below(ag.prefetch_parts);
    }
    mnv3_ref_pointwise(&ar);
    mnv3_call_pointwise(k, &ag);
    bad = compare("pointwise out", got, ref, on, TOL_ISA);
    if (rs) bad += compare("pointwise sums", gs, rs, c->N, TOL_ISA * (double)c->P);
    free(packed);
    free(ws);
    free(ref);
    free(got);
    free(rs);
    free(gs);
    return bad == 0;
}

/* ------------------------------------------------------------------------------------ */
/* Depthwise                                                                             */
/* ------------------------------------------------------------------------------------ */

typedef struct dw_case {
    uint32_t H, W, C, K, S, pt, pl, pb, pr, OH, OW;
    float *input, *weight, *bias, *sums0;
    mnv3_epilogue ep;
} dw_case;

static int dw_make(dw_case *c, uint32_t H, uint32_t W, uint32_t C, uint32_t K, uint32_t S,
                   uint32_t pt, uint32_t pl, uint32_t pb, uint32_t pr) {
    memset(c, 0, sizeof *c);
    if (H + pt + pb < K || W + pl + pr < K) return 0;
    c->H = H;
    c->W = W;
    c->C = C;
    c->K = K;
    c->S = S;
    c->pt = pt;
    c->pl = pl;
    c->pb = pb;
    c->pr = pr;
    c->OH = (H + pt + pb - K) / S + 1;
    c->OW = (W + pl + pr - K) / S + 1;
    c->input = frandom((size_t)H * W * C, -1.0f, 1.0f);
    c->weight = frandom((size_t)K * K * C, -0.5f, 0.5f);
    c->bias = rnd_below(4) ? frandom(C, -1.0f, 1.0f) : NULL;
    c->sums0 = rnd_below(2) ? frandom(C, -1.0f, 1.0f) : NULL;
    random_epilogue(&c->ep);
    return 1;
}

static void dw_free(dw_case *c) {
    free(c->input);
    free(c->weight);
    free(c->bias);
    free(c->sums0);
}

static void dw_args(const dw_case *c, mnv3_depthwise_args *a, const void *packed, float *out,
                    float *sums) {
    memset(a, 0, sizeof *a);
    a->input = c->input;
    a->in_height = c->H;
    a->in_width = c->W;
    a->channels = c->C;
    a->packed = packed;
    a->bias = c->bias;
    a->kernel = c->K;
    a->stride = c->S;
    a->pad_top = c->pt;
    a->pad_left = c->pl;
    a->out_height = c->OH;
    a->out_width = c->OW;
    a->row_begin = 0;
    a->row_end = c->OH;
    a->epilogue = c->ep;
    a->output = out;
    a->channel_sums = c->sums0 ? sums : NULL;
}

static void dw_naive(const dw_case *c, float *out, float *sums) {
    uint32_t ch, oy, ox, ky, kx;
    for (ch = 0; ch < c->C; ++ch) {
        for (oy = 0; oy < c->OH; ++oy) {
            for (ox = 0; ox < c->OW; ++ox) {
                double acc = c->bias ? c->bias[ch] : 0.0;
                for (ky = 0; ky < c->K; ++ky) {
                    for (kx = 0; kx < c->K; ++kx) {
                        long iy = (long)(oy * c->S + ky) - (long)c->pt;
                        long ix = (long)(ox * c->S + kx) - (long)c->pl;
                        double x = 0.0;
                        if (iy >= 0 && iy < (long)c->H && ix >= 0 && ix < (long)c->W)
                            x = c->input[((size_t)iy * c->W + (size_t)ix) * c->C + ch];
                        acc += x * c->weight[((size_t)ky * c->K + kx) * c->C + ch];
                    }
                }
                acc = nv_epilogue(&c->ep, acc);
                out[((size_t)oy * c->OW + ox) * c->C + ch] = (float)acc;
                if (sums) sums[ch] += (float)acc;
            }
        }
    }
}

static int dw_check_naive(dw_case *c) {
    const size_t on = (size_t)c->OH * c->OW * c->C;
    float *ref = falloc(on), *nv = falloc(on);
    float *rs = c->sums0 ? fcopy(c->sums0, c->C) : NULL, *ns = c->sums0 ? fcopy(c->sums0, c->C) : NULL;
    mnv3_depthwise_args a;
    size_t bad;
    ffill(ref, on, SENTINEL);
    ffill(nv, on, SENTINEL);
    dw_args(c, &a, c->weight, ref, rs);
    mnv3_ref_depthwise(&a);
    dw_naive(c, nv, ns);
    bad = compare("depthwise out", ref, nv, on, TOL_NAIVE);
    if (rs) bad += compare("depthwise sums", rs, ns, c->C, TOL_NAIVE * (double)c->OH * c->OW);
    free(ref);
    free(nv);
    free(rs);
    free(ns);
    return bad == 0;
}

static int dw_check_isa(const mnv3_kernels *k, dw_case *c, int subrange) {
    const size_t on = (size_t)c->OH * c->OW * c->C;
    const size_t pf = k->depthwise->packed_bytes(c->C, c->K) / sizeof(float);
    float *packed = pf ? falloc(pf) : NULL, *ref = falloc(on), *got = falloc(on);
    float *rs = c->sums0 ? fcopy(c->sums0, c->C) : NULL, *gs = c->sums0 ? fcopy(c->sums0, c->C) : NULL;
    mnv3_depthwise_args ar, ag;
    size_t bad;
    if (packed) k->depthwise->pack(c->weight, c->C, c->K, packed);
    ffill(ref, on, SENTINEL);
    ffill(got, on, SENTINEL);
    dw_args(c, &ar, c->weight, ref, rs);
    dw_args(c, &ag, packed ? (const void *)packed : (const void *)c->weight, got, gs);
    float *ring = NULL;
    if (subrange) {
        ar.row_begin = ag.row_begin = rnd_below(c->OH);
        ar.row_end = ag.row_end = ar.row_begin + 1 + rnd_below(c->OH - ar.row_begin);
    }
    if (subrange && rnd_below(2)) {
        /* Input handed over as a ring of rows (a fused expansion): only the rows this range
         * reads, stored at row % ring_rows, in a ring of just enough or a few more rows. */
        const long lo_l = (long)ag.row_begin * c->S - (long)c->pt;
        const long hi_l = (long)(ag.row_end - 1) * c->S - (long)c->pt + (long)c->K;
        const uint32_t lo = lo_l < 0 ? 0 : (uint32_t)lo_l;
        const uint32_t hi = hi_l > (long)c->H ? c->H : (uint32_t)(hi_l < 0 ? 0 : hi_l);
        const uint32_t rows = (hi > lo ? hi - lo : 0) + 1 + rnd_below(3);
        const size_t row_floats = (size_t)c->W * c->C;
        uint32_t iy;
        ring = falloc((size_t)rows * row_floats);
        ffill(ring, (size_t)rows * row_floats, SENTINEL);
        for (iy = lo; iy < hi; ++iy)
            memcpy(ring + (size_t)(iy % rows) * row_floats, c->input + (size_t)iy * row_floats,
                   row_floats * sizeof(float));
        ag.input = ring;
        ag.in_ring_rows = rows;
    }
    mnv3_ref_depthwise(&ar);
    mnv3_call_depthwise(k, &ag);
    free(ring);
    bad = compare("depthwise out", got, ref, on, TOL_ISA);
    if (rs) bad += compare("depthwise sums", gs, rs, c->C, TOL_ISA * (double)c->OH * c->OW);
    free(packed);
    free(ref);
    free(got);
    free(rs);
    free(gs);
    return bad == 0;
}

/* ------------------------------------------------------------------------------------ */
/* Dense convolution                                                                     */
/* ------------------------------------------------------------------------------------ */

typedef struct conv_case {
    uint32_t H, W, Ci, Co, K, S, pt, pl, OH, OW;
    int nhwc;
    float *input, *weight, *bias; /* input stored planar (NCHW) or interleaved (NHWC) */
    mnv3_epilogue ep;
} conv_case;

static int conv_make(conv_case *c, uint32_t H, uint32_t W, uint32_t Ci, uint32_t Co, uint32_t K,
                     uint32_t S, uint32_t pt, uint32_t pl, uint32_t pb, uint32_t pr, int nhwc) {
    memset(c, 0, sizeof *c);
    if (H + pt + pb < K || W + pl + pr < K) return 0;
    c->H = H;
    c->W = W;
    c->Ci = Ci;
    c->Co = Co;
    c->K = K;
    c->S = S;
    c->pt = pt;
    c->pl = pl;
    c->OH = (H + pt + pb - K) / S + 1;
    c->OW = (W + pl + pr - K) / S + 1;
    c->nhwc = nhwc;
    c->input = frandom((size_t)H * W * Ci, -1.0f, 1.0f);
    c->weight = frandom((size_t)Co * K * K * Ci, -0.5f, 0.5f);
    c->bias = rnd_below(4) ? frandom(Co, -1.0f, 1.0f) : NULL;
    random_epilogue(&c->ep);
    return 1;
}

static void conv_free(conv_case *c) {
    free(c->input);
    free(c->weight);
    free(c->bias);
}

static double conv_in(const conv_case *c, long y, long x, uint32_t ch) {
    if (y < 0 || y >= (long)c->H || x < 0 || x >= (long)c->W) return 0.0;
    return c->nhwc ? c->input[((size_t)y * c->W + (size_t)x) * c->Ci + ch]
                   : c->input[((size_t)ch * c->H + (size_t)y) * c->W + (size_t)x];
}

static void conv_args(const conv_case *c, mnv3_conv_args *a, const void *packed, float *out) {
    memset(a, 0, sizeof *a);
    a->input = c->input;
    a->in_height = c->H;
    a->in_width = c->W;
    a->in_channels = c->Ci;
    if (c->nhwc) {
        a->in_row_stride = (size_t)c->W * c->Ci;
        a->in_col_stride = c->Ci;
        a->in_chan_stride = 1;
    } else {
        a->in_row_stride = c->W;
        a->in_col_stride = 1;
        a->in_chan_stride = (size_t)c->H * c->W;
    }
    a->packed = packed;
    a->bias = c->bias;
    a->out_channels = c->Co;
    a->kernel = c->K;
    a->stride = c->S;
    a->pad_top = c->pt;
    a->pad_left = c->pl;
    a->out_height = c->OH;
    a->out_width = c->OW;
    a->row_begin = 0;
    a->row_end = c->OH;
    a->epilogue = c->ep;
    a->output = out;
}

static void conv_naive(const conv_case *c, float *out) {
    uint32_t o, oy, ox, i, ky, kx;
    for (o = 0; o < c->Co; ++o)
        for (oy = 0; oy < c->OH; ++oy)
            for (ox = 0; ox < c->OW; ++ox) {
                double acc = c->bias ? c->bias[o] : 0.0;
                for (i = 0; i < c->Ci; ++i)
                    for (ky = 0; ky < c->K; ++ky)
                        for (kx = 0; kx < c->K; ++kx)
                            acc += conv_in(c, (long)(oy * c->S + ky) - (long)c->pt,
                                           (long)(ox * c->S + kx) - (long)c->pl, i) *
                                   c->weight[(((size_t)o * c->K + ky) * c->K + kx) * c->Ci + i];
                out[((size_t)oy * c->OW + ox) * c->Co + o] = (float)nv_epilogue(&c->ep, acc);
            }
}

static int conv_check(const mnv3_kernels *k, conv_case *c, int subrange) {
    const size_t on = (size_t)c->OH * c->OW * c->Co;
    float *ref = falloc(on), *got = falloc(on);
    mnv3_conv_args ar, ag;
    size_t bad;
    ffill(ref, on, SENTINEL);
    ffill(got, on, SENTINEL);
    conv_args(c, &ar, c->weight, ref);
    if (!k) {
        mnv3_ref_conv(&ar);
        conv_naive(c, got);
        bad = compare("conv out", ref, got, on, TOL_NAIVE);
    } else {
        const size_t pf = k->conv->packed_bytes(c->Ci, c->Co, c->K) / sizeof(float);
        float *packed = pf ? falloc(pf) : NULL;
        if (packed) k->conv->pack(c->weight, c->Ci, c->Co, c->K, packed);
        conv_args(c, &ag, packed ? (const void *)packed : (const void *)c->weight, got);
        if (subrange) {
            ar.row_begin = ag.row_begin = rnd_below(c->OH);
            ar.row_end = ag.row_end = ar.row_begin + 1 + rnd_below(c->OH - ar.row_begin);
        }
        mnv3_ref_conv(&ar);
        mnv3_call_conv(k, &ag);
        bad = compare("conv out", got, ref, on, TOL_ISA);
        free(packed);
    }
    free(ref);
    free(got);
    return bad == 0;
}

/* ------------------------------------------------------------------------------------ */
/* Fully connected                                                                       */
/* ------------------------------------------------------------------------------------ */

static int fc_check(const mnv3_kernels *k, uint32_t I, uint32_t O, int subrange) {
    float *in = frandom(I, -1.0f, 1.0f), *w = fweights((size_t)I * O, I);
    float *bias = rnd_below(4) ? frandom(O, -1.0f, 1.0f) : NULL;
    float *ref = falloc(O), *got = falloc(O);
    mnv3_fc_args ar, ag;
    size_t bad;
    uint32_t o, i;
    memset(&ar, 0, sizeof ar);
    ar.input = in;
    ar.in_features = I;
    ar.out_features = O;
    ar.packed = w;
    ar.bias = bias;
    random_epilogue(&ar.epilogue);
    ar.output = ref;
    ar.out_begin = 0;
    ar.out_end = O;
    ffill(ref, O, SENTINEL);
    ffill(got, O, SENTINEL);
    ag = ar;
    ag.output = got;
    if (!k) {
        mnv3_ref_fc(&ar);
        for (o = 0; o < O; ++o) {
            double acc = bias ? bias[o] : 0.0;
            for (i = 0; i < I; ++i) acc += (double)in[i] * w[(size_t)o * I + i];
            got[o] = (float)nv_epilogue(&ar.epilogue, acc);
        }
        bad = compare("fc out", ref, got, O, TOL_NAIVE);
    } else {
        const size_t pf = k->fc->packed_bytes(I, O) / sizeof(float);
        float *packed = pf ? falloc(pf) : NULL;
        if (packed) {
            k->fc->pack(w, I, O, packed);
            ag.packed = packed;
        }
        if (subrange) {
            ar.out_begin = ag.out_begin = rnd_below(O);
            ar.out_end = ag.out_end = ar.out_begin + 1 + rnd_below(O - ar.out_begin);
        }
        mnv3_ref_fc(&ar);
        mnv3_call_fc(k, &ag);
        bad = compare("fc out", got, ref, O, TOL_ISA);
        free(packed);
    }
    free(in);
    free(w);
    free(bias);
    free(ref);
    free(got);
    return bad == 0;
}

/* ------------------------------------------------------------------------------------ */
/* Activation edges through every kernel: an identity convolution feeds exact values.   */
/* ------------------------------------------------------------------------------------ */

static void edge_epilogue(mnv3_epilogue *e, int act, int clamped) {
    e->activation = (mnv3_activation)act;
    e->pre = unbounded;
    e->post = unbounded;
    if (clamped) {
        e->pre.lo = -3.0f;
        e->pre.hi = 6.0f;
        e->post.lo = 0.0f;
        e->post.hi = 3.0f;
    }
}

static int edges_check(const mnv3_kernels *k, int act, int clamped) {
    const uint32_t C = 19; /* not a multiple of any vector width */
    const uint32_t n = (uint32_t)N_EDGES;
    float *in = falloc((size_t)n * C), *want = falloc((size_t)n * C), *got = falloc((size_t)n * C);
    float one[1] = {1.0f}, *ident = falloc((size_t)C * C), *packed;
    mnv3_epilogue e;
    size_t bad = 0, pf, i;
    uint32_t c;
    edge_epilogue(&e, act, clamped);
    for (i = 0; i < (size_t)n * C; ++i) {
        in[i] = edge_values[(i / C + i % C) % n];
        want[i] = (float)nv_epilogue(&e, in[i]);
    }
    for (i = 0; i < (size_t)C * C; ++i) ident[i] = i % (C + 1) == 0 ? 1.0f : 0.0f;

    { /* pointwise with identity weights */
        mnv3_pointwise_args a;
        float *ws = falloc(k->pointwise->workspace_bytes(k->pointwise, C) / sizeof(float) + 16);
        pf = k->pointwise->packed_bytes(C, C) / sizeof(float);
        packed = pf ? falloc(pf) : NULL;
        if (packed) k->pointwise->pack(ident, C, C, packed);
        memset(&a, 0, sizeof a);
        a.input = in;
        a.in_stride = C;
        a.packed = packed ? (const void *)packed : (const void *)ident;
        a.epilogue = e;
        a.output = got;
        a.out_stride = C;
        a.in_channels = a.out_channels = C;
        a.pixel_end = n;
        a.oc_end = C;
        a.workspace = ws;
        mnv3_call_pointwise(k, &a);
        bad += compare("edge pointwise", got, want, (size_t)n * C, 1e-6);
        free(packed);
        free(ws);
    }
    { /* depthwise 1x1 (the generic path) and 3x3 with only the centre tap set */
        uint32_t ks;
        for (ks = 1; ks <= 3; ks += 2) {
            mnv3_depthwise_args a;
            float *w = falloc((size_t)ks * ks * C);
            ffill(w, (size_t)ks * ks * C, 0.0f);
            for (c = 0; c < C; ++c) w[(size_t)(ks * ks / 2) * C + c] = 1.0f;
            pf = k->depthwise->packed_bytes(C, ks) / sizeof(float);
            packed = pf ? falloc(pf) : NULL;
            if (packed) k->depthwise->pack(w, C, ks, packed);
            memset(&a, 0, sizeof a);
            a.input = in;
            a.in_height = 1;
            a.in_width = n;
            a.channels = C;
            a.packed = packed ? (const void *)packed : (const void *)w;
            a.kernel = ks;
            a.stride = 1;
            a.pad_top = a.pad_left = ks / 2;
            a.out_height = 1;
            a.out_width = n;
            a.row_end = 1;
            a.epilogue = e;
            a.output = got;
            mnv3_call_depthwise(k, &a);
            bad += compare("edge depthwise", got, want, (size_t)n * C, 1e-6);
            free(packed);
            free(w);
        }
    }
    { /* fc, one input feature per output */
        mnv3_fc_args a;
        uint32_t j;
        pf = k->fc->packed_bytes(1, 1) / sizeof(float);
        packed = pf ? falloc(pf) : NULL;
        if (packed) k->fc->pack(one, 1, 1, packed);
        for (j = 0; j < n; ++j) {
            memset(&a, 0, sizeof a);
            a.input = &edge_values[j];
            a.in_features = a.out_features = 1;
            a.packed = packed ? (const void *)packed : (const void *)one;
            a.epilogue = e;
            a.output = got;
            a.out_end = 1;
            mnv3_call_fc(k, &a);
            bad += !close_to(got[0], nv_epilogue(&e, edge_values[j]), 1e-6);
        }
        free(packed);
    }
    free(in);
    free(want);
    free(got);
    free(ident);
    return bad == 0;
}

/* Threads split a layer's pixels at any row, and the row tiles follow the split: every
 * pixel's result must not depend on where its range starts (docs/c-api.md promises
 * bit-identical logits at any thread count). The whole range against two calls split at
 * every point; channel sums are left out (the executor adds them per fixed slice). */
static int pw_check_split_invariance(const mnv3_kernels *k, pw_case *c) {
    const size_t on = c->P * c->out_stride;
    const size_t pf = k->pointwise->packed_bytes(c->K, c->N) / sizeof(float);
    const size_t wf = k->pointwise->workspace_bytes(k->pointwise, c->K) / sizeof(float);
    float *packed = pf ? falloc(pf) : NULL, *ws = falloc(wf + 16);
    float *whole = falloc(on), *parts = falloc(on);
    mnv3_pointwise_args a;
    size_t at, differ = 0;
    if (packed) k->pointwise->pack(c->weight, c->K, c->N, packed);
    ffill(whole, on, SENTINEL);
    pw_args(c, &a, packed ? (const void *)packed : (const void *)c->weight, whole, NULL, ws);
    a.channel_sums = NULL;
    mnv3_call_pointwise(k, &a);
    for (at = 1; at < c->P && !differ; ++at) {
        ffill(parts, on, SENTINEL);
        a.output = parts;
        a.pixel_begin = 0;
        a.pixel_end = at;
        mnv3_call_pointwise(k, &a);
        a.pixel_begin = at;
        a.pixel_end = c->P;
        mnv3_call_pointwise(k, &a);
        if (memcmp(whole, parts, on * sizeof *whole) != 0) {
            differ = at;
            printf("    %s: P=%zu split at %zu differs from the whole range\n", k->pointwise->name,
                   c->P, at);
        }
    }
    free(packed);
    free(ws);
    free(whole);
    free(parts);
    return differ == 0;
}

/* ------------------------------------------------------------------------------------ */
/* Case lists                                                                            */
/* ------------------------------------------------------------------------------------ */

static const uint32_t odd_channels[] = {1, 3, 7, 16, 17, 33, 67};
#define N_ODD (sizeof odd_channels / sizeof odd_channels[0])

/* k == NULL: reference against the naive formulas; otherwise table against reference. */
static void run_kernel_suite(const mnv3_kernels *k) {
    const char *name = k ? k->set->name : "reference";
    int failed_before = check_failed;
    unsigned i, j, n_pw = 0, n_dw = 0, n_conv = 0, n_fc = 0;
    uint64_t seed = 12345;

    /* Pointwise: odd K and N, few and many pixels, all options at random. */
    for (i = 0; i < N_ODD; ++i) {
        for (j = 0; j < N_ODD; ++j) {
            static const size_t pixels[] = {1, 5, 13, 50};
            unsigned p;
            for (p = 0; p < sizeof pixels / sizeof *pixels; ++p) {
                pw_case c;
                rng_state = seed++;
                pw_make(&c, pixels[p], odd_channels[i], odd_channels[j]);
                CHECK_MSG(k ? pw_check_isa(k, &c, 0) : pw_check_naive(&c),
                          "%s pointwise P=%zu K=%u N=%u", name, c.P, c.K, c.N);
                if (k) CHECK_MSG(pw_check_isa(k, &c, 1), "%s pointwise subrange P=%zu K=%u N=%u",
                                 name, c.P, c.K, c.N);
                pw_free(&c);
                ++n_pw;
            }
        }
    }
    if (k) { /* A pixel's result does not depend on where its range starts. */
        static const size_t pixels[] = {9, 13, 17, 49};
        unsigned p;
        for (p = 0; p < sizeof pixels / sizeof *pixels; ++p) {
            pw_case c;
            rng_state = seed++;
            pw_make(&c, pixels[p], 37, 24);
            c.want_output = 1;
            CHECK_MSG(pw_check_split_invariance(k, &c), "%s pointwise split invariance P=%zu",
                      name, c.P);
            pw_free(&c);
            ++n_pw;
        }
    }
    { /* Network-like shapes, including every option at once. */
        static const uint32_t shapes[][3] = {{49, 160, 960}, {196, 112, 672}, {37, 960, 160},
                                             {64, 72, 24},   {23, 40, 120},   {100, 96, 40}};
        for (i = 0; i < sizeof shapes / sizeof *shapes; ++i) {
            for (j = 0; j < 3; ++j) {
                pw_case c;
                rng_state = seed++;
                pw_make(&c, shapes[i][0], shapes[i][1], shapes[i][2]);
                if (j == 2 && !c.scale) c.scale = frandom(c.K, 0.0f, 1.0f);
                if (j == 2 && !c.residual) c.residual = frandom(c.P * c.out_stride, -1.0f, 1.0f);
                if (j == 2 && !c.sums0) c.sums0 = frandom(c.N, -1.0f, 1.0f);
                CHECK_MSG(k ? pw_check_isa(k, &c, j == 1) : pw_check_naive(&c),
                          "%s pointwise P=%zu K=%u N=%u", name, c.P, c.K, c.N);
                pw_free(&c);
                ++n_pw;
            }
        }
    }

    /* Depthwise: kernels 1/3/5/7, strides 1/2, symmetric and asymmetric padding, tiny and
     * non-square inputs, odd channel counts. */
    {
        static const uint32_t sizes[][2] = {{1, 1}, {2, 3}, {7, 5}, {5, 7}, {12, 9}, {16, 16}};
        static const uint32_t kernels[] = {1, 3, 5, 7};
        static const uint32_t chans[] = {1, 3, 8, 17, 33, 72};
        unsigned si, ki, ci, st, pv;
        for (si = 0; si < sizeof sizes / sizeof *sizes; ++si)
            for (ki = 0; ki < sizeof kernels / sizeof *kernels; ++ki)
                for (st = 1; st <= 2; ++st)
                    for (pv = 0; pv < 4; ++pv) {
                        const uint32_t K = kernels[ki], h = K / 2, hm = h ? h - 1 : 0;
                        /* symmetric, less before than after (TF SAME at stride 2), more before
                         * than after, and no padding */
                        const uint32_t pt = pv == 0 ? h : pv == 1 ? hm : pv == 2 ? h : 0;
                        const uint32_t pb = pv == 0 ? h : pv == 1 ? h : pv == 2 ? hm : 0;
                        for (ci = 0; ci < sizeof chans / sizeof *chans; ++ci) {
                            dw_case c;
                            rng_state = seed++;
                            if (!dw_make(&c, sizes[si][0], sizes[si][1], chans[ci], K, st, pt, pt,
                                         pb, pb))
                                continue;
                            CHECK_MSG(k ? dw_check_isa(k, &c, 0) : dw_check_naive(&c),
                                      "%s depthwise %ux%ux%u k%u s%u pad %u/%u", name, c.H, c.W,
                                      c.C, c.K, c.S, pt, pb);
                            if (k)
                                CHECK_MSG(dw_check_isa(k, &c, 1),
                                          "%s depthwise subrange %ux%ux%u k%u s%u", name, c.H, c.W,
                                          c.C, c.K, c.S);
                            dw_free(&c);
                            ++n_dw;
                        }
                    }
        /* Different vertical and horizontal padding, network-sized layers. */
        {
            static const uint32_t big[][9] = {{112, 112, 16, 3, 1, 1, 1, 1, 1},
                                              {56, 56, 72, 5, 2, 1, 2, 2, 1},
                                              {14, 14, 672, 5, 1, 2, 2, 2, 2},
                                              {7, 7, 960, 5, 1, 2, 2, 2, 2},
                                              {9, 11, 40, 3, 2, 0, 1, 1, 0},
                                              {28, 28, 240, 3, 2, 0, 0, 1, 1},
                                              /* over 1 MiB: the pixel-major order */
                                              {64, 70, 67, 3, 2, 1, 1, 1, 1},
                                              {61, 64, 72, 5, 1, 2, 1, 2, 2}};
            for (i = 0; i < sizeof big / sizeof *big; ++i) {
                dw_case c;
                rng_state = seed++;
                if (!dw_make(&c, big[i][0], big[i][1], big[i][2], big[i][3], big[i][4], big[i][5],
                             big[i][6], big[i][7], big[i][8]))
                    continue;
                CHECK_MSG(k ? dw_check_isa(k, &c, 0) : dw_check_naive(&c),
                          "%s depthwise %ux%ux%u k%u s%u", name, c.H, c.W, c.C, c.K, c.S);
                if (k) CHECK_MSG(dw_check_isa(k, &c, 1), "%s depthwise subrange", name);
                dw_free(&c);
                ++n_dw;
            }
        }
    }

    /* Dense conv: the stem shape plus odd output counts, both input layouts. */
    {
        static const uint32_t shapes[][10] = {
            {32, 32, 3, 16, 3, 2, 1, 1, 1, 1}, {33, 31, 3, 16, 3, 2, 0, 0, 1, 1},
            {7, 5, 3, 17, 3, 2, 1, 1, 1, 1},   {2, 3, 3, 7, 3, 1, 1, 1, 1, 1},
            {1, 1, 3, 1, 3, 1, 1, 1, 1, 1},    {9, 8, 2, 33, 5, 2, 2, 2, 2, 2},
            {6, 6, 4, 8, 1, 1, 0, 0, 0, 0},    {11, 13, 3, 24, 3, 2, 0, 1, 1, 0},
            /* more taps than one patch pass of the AArch64 stem (64): 72 and 125 */
            {8, 9, 8, 12, 3, 1, 1, 1, 1, 1},   {7, 10, 5, 9, 5, 2, 2, 2, 2, 2}};
        int layout;
        for (i = 0; i < sizeof shapes / sizeof *shapes; ++i)
            for (layout = 0; layout < 2; ++layout) {
                const uint32_t *s = shapes[i];
                conv_case c;
                rng_state = seed++;
                if (!conv_make(&c, s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9],
                               layout))
                    continue;
                CHECK_MSG(conv_check(k, &c, 0), "%s conv %ux%ux%u->%u k%u s%u %s", name, c.H, c.W,
                          c.Ci, c.Co, c.K, c.S, layout ? "nhwc" : "nchw");
                if (k) CHECK_MSG(conv_check(k, &c, 1), "%s conv subrange", name);
                conv_free(&c);
                ++n_conv;
            }
    }

    /* Fully connected: SE and head shapes plus odd ones. */
    {
        static const uint32_t shapes[][2] = {{1, 1},   {7, 3},     {17, 5},   {67, 33},
                                             {72, 24}, {960, 240}, {240, 960}, {1280, 1001}};
        for (i = 0; i < sizeof shapes / sizeof *shapes; ++i) {
            rng_state = seed++;
            CHECK_MSG(fc_check(k, shapes[i][0], shapes[i][1], 0), "%s fc %u->%u", name,
                      shapes[i][0], shapes[i][1]);
            if (k)
                CHECK_MSG(fc_check(k, shapes[i][0], shapes[i][1], 1), "%s fc subrange %u->%u",
                          name, shapes[i][0], shapes[i][1]);
            ++n_fc;
        }
    }

    {
        int act, clamped;
        mnv3_kernels ref;
        const mnv3_kernels *t = k;
        if (!t) {
            mnv3_kernels_resolve(MNV3_ISA_SCALAR, MNV3_DTYPE_F32, MNV3_DTYPE_F32, &ref);
            t = &ref;
        }
        for (act = 0; act <= MNV3_ACT_HARD_SIGMOID; ++act)
            for (clamped = 0; clamped < 2; ++clamped)
                CHECK_MSG(edges_check(t, act, clamped), "%s activation edges act=%d clamped=%d",
                          name, act, clamped);
    }
    printf("  %s: %u pointwise, %u depthwise, %u conv, %u fc cases%s\n", name, n_pw, n_dw, n_conv,
           n_fc, check_failed > failed_before ? " (FAILURES)" : "");
}

/* ------------------------------------------------------------------------------------ */
/* Every tail of every tile: each driver against the reference at every remainder its row's */
/* tile sizes leave, with and without the SE gate, residual, clamps, sums and ring input. */
/* ------------------------------------------------------------------------------------ */

static void tile_tails_suite(const mnv3_kernels *k) {
    const char *name = k->set->name;
    const uint32_t mr = k->pointwise->mr, nr = k->pointwise->nr;
    const int quick = getenv("MNV3_TEST_QUICK") != NULL;
    int failed_before = check_failed;
    unsigned n_pw = 0, n_dw = 0, n_conv = 0, n_fc = 0;
    uint32_t P, N, W, Co, I, O, opt;
    uint64_t seed = 777;
    /* Rows 1 .. 2*mr + 1 give every tile height the balanced split picks; columns
     * 1 .. 2*nr + 1 every partial width of a wide and of a narrow last panel. */
    for (P = 1; P <= 2 * mr + 1; ++P)
        for (N = 1; N <= 2 * nr + 1; ++N)
            for (opt = 0; opt < 2; ++opt) {
                pw_case c;
                if (quick && (P + N + opt) % 3) continue;
                rng_state = seed++;
                pw_make(&c, P, 1 + (P * 7 + N) % 19, N);
                if (opt) { /* everything at once, clamps included */
                    if (!c.scale) c.scale = frandom(c.K, 0.0f, 1.0f);
                    if (!c.residual) c.residual = frandom(c.P * c.out_stride, -1.0f, 1.0f);
                    c.res_clamp.lo = -0.75f;
                    c.res_clamp.hi = 1.25f;
                    c.ep.pre.lo = -2.5f;
                    c.ep.pre.hi = 5.0f;
                    c.ep.post.lo = -0.5f;
                    c.ep.post.hi = 2.0f;
                    if (!c.sums0) c.sums0 = frandom(c.N, -1.0f, 1.0f);
                }
                CHECK_MSG(pw_check_isa(k, &c, opt), "%s pointwise tail P=%u K=%u N=%u opt=%u",
                          name, P, c.K, N, opt);
                pw_free(&c);
                ++n_pw;
            }
    /* Channel remainders of every vector width, widths around every depthwise group size
     * and interior span, for each specialised shape and the generic one. */
    {
        static const uint32_t chans[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33};
        static const uint32_t shapes[][2] = {{3, 1}, {3, 2}, {5, 1}, {5, 2}, {7, 1}};
        unsigned ci, si;
        for (si = 0; si < sizeof shapes / sizeof *shapes; ++si)
            for (ci = 0; ci < sizeof chans / sizeof *chans; ++ci)
                for (W = 1; W <= 21; ++W) {
                    const uint32_t K = shapes[si][0], S = shapes[si][1], h = K / 2;
                    dw_case c;
                    if (quick && (W + ci) % 4) continue;
                    rng_state = seed++;
                    if (!dw_make(&c, 1 + W % 5, W, chans[ci], K, S, h, h - (W & 1 ? 0 : 1 % (h + 1)),
                                 h, h))
                        continue;
                    if (!c.sums0 && (W & 1)) {
                        c.sums0 = frandom(c.C, -1.0f, 1.0f);
                    }
                    CHECK_MSG(dw_check_isa(k, &c, 0), "%s depthwise tail %ux%ux%u k%u s%u", name,
                              c.H, c.W, c.C, K, S);
                    /* sub-ranges of rows, half of them from a ring */
                    CHECK_MSG(dw_check_isa(k, &c, 1), "%s depthwise tail rows %ux%ux%u k%u s%u",
                              name, c.H, c.W, c.C, K, S);
                    CHECK_MSG(dw_check_isa(k, &c, 1), "%s depthwise tail rows %ux%ux%u k%u s%u",
                              name, c.H, c.W, c.C, K, S);
                    dw_free(&c);
                    ++n_dw;
                }
    }
    /* Output-channel remainders and widths around the stem's pixel group. */
    for (Co = 1; Co <= 2 * nr + 1; ++Co)
        for (W = 1; W <= 19; W += 2) {
            conv_case c;
            if (quick && (Co + W) % 3) continue;
            rng_state = seed++;
            if (!conv_make(&c, 3 + W % 4, W, 3, Co, 3, 1 + W % 2, 1, 1, 1, 1, (int)(W % 3 == 0)))
                continue;
            CHECK_MSG(conv_check(k, &c, 0), "%s conv tail %ux%u->%u s%u", name, c.H, c.W, Co, c.S);
            conv_free(&c);
            ++n_conv;
        }
    /* Input remainders of every vector width, output counts around the GEMV block. */
    for (I = 1; I <= 33; ++I)
        for (O = 1; O <= 9; ++O) {
            if (quick && (I + O) % 3) continue;
            rng_state = seed++;
            CHECK_MSG(fc_check(k, I, O, (I + O) & 1), "%s fc tail %u->%u", name, I, O);
            ++n_fc;
        }
    printf("  %s tile tails: %u pointwise, %u depthwise, %u conv, %u fc cases%s\n", name, n_pw,
           n_dw, n_conv, n_fc, check_failed > failed_before ? " (FAILURES)" : "");
}

/* ------------------------------------------------------------------------------------ */
/* Whole networks                                                                        */
/* ------------------------------------------------------------------------------------ */

static int run_net(const mnv3_model *m, mnv3_isa isa, uint32_t threads, uint32_t h, uint32_t w,
                   mnv3_layout layout, const float *input, float *logits, size_t classes) {
    mnv3_config cfg;
    mnv3_context *ctx = NULL;
    mnv3_error err;
    mnv3_status st;
    mnv3_config_init(&cfg, m);
    cfg.height = h;
    cfg.width = w;
    cfg.layout = layout;
    cfg.threads = threads;
    cfg.isa = isa;
    st = mnv3_context_create(m, &cfg, NULL, 0, &ctx, &err);
    CHECK_MSG(st == MNV3_OK, "context_create isa=%s threads=%u: %s", mnv3_isa_name(isa), threads,
              err.message);
    if (st != MNV3_OK) return 0;
    CHECK(mnv3_context_isa(ctx) == isa);
    st = mnv3_run(ctx, input, (size_t)3 * h * w, logits, classes, NULL, 0);
    CHECK_STATUS(st, MNV3_OK);
    mnv3_context_free(ctx);
    return st == MNV3_OK;
}

static double max_abs(const float *x, size_t n) {
    double m = 0.0;
    size_t i;
    for (i = 0; i < n; ++i)
        if (fabs(x[i]) > m) m = fabs(x[i]);
    return m;
}

static void network_suite(mnv3_arch arch, mnv3_flavor flavor, uint32_t h, uint32_t w,
                          mnv3_layout layout) {
    static const uint32_t thread_counts[] = {1, 2, 3};
    mnv3_model *m = NULL;
    mnv3_model_info info;
    mnv3_error err;
    float *input, *ref, *first, *got;
    int isa;
    unsigned t;
    size_t classes;
    double scale;
    const char *an = arch == MNV3_ARCH_LARGE ? "large" : "small";
    const char *fn = flavor == MNV3_FLAVOR_TFLITE ? "tflite" : "torchvision";
    if (mnv3_model_create_builtin(arch, flavor, 1.0, flavor == MNV3_FLAVOR_TFLITE ? 1001 : 1000,
                                  7, &m, &err) != MNV3_OK) {
        CHECK_MSG(0, "create_builtin %s %s: %s", an, fn, err.message);
        return;
    }
    mnv3_model_get_info(m, &info);
    classes = info.num_classes;
    rng_state = 99;
    input = frandom((size_t)3 * h * w, -2.0f, 2.0f);
    ref = falloc(classes);
    first = falloc(classes);
    got = falloc(classes);
    if (!run_net(m, MNV3_ISA_SCALAR, 1, h, w, layout, input, ref, classes)) goto done;
    scale = max_abs(ref, classes);
    for (isa = MNV3_ISA_SCALAR; isa < (int)mnv3_isa_count(); ++isa) {
        mnv3_kernels k;
        if (!mnv3_kernels_resolve((mnv3_isa)isa, MNV3_DTYPE_F32, MNV3_DTYPE_F32, &k)) continue;
        for (t = 0; t < sizeof thread_counts / sizeof *thread_counts; ++t) {
            float *dst = t == 0 ? first : got;
            size_t i, bad = 0;
            double worst = 0.0;
            if (!run_net(m, (mnv3_isa)isa, thread_counts[t], h, w, layout, input, dst, classes))
                continue;
            for (i = 0; i < classes; ++i) {
                double d = fabs((double)dst[i] - ref[i]);
                if (d > worst) worst = d;
                if (d > 1e-4 * (scale > 1.0 ? scale : 1.0)) ++bad;
                if (t > 0 && !close_to(dst[i], first[i], 1e-6)) ++bad;
            }
            CHECK_MSG(bad == 0, "%s %s %ux%u isa=%s threads=%u: %zu logits off (max diff %g)", an,
                      fn, h, w, mnv3_isa_name((mnv3_isa)isa), thread_counts[t], bad, worst);
        }
    }
    printf("  network %s/%s %ux%u %s: checked every table, threads 1/2/3\n", an, fn, h, w,
           layout == MNV3_LAYOUT_NCHW ? "nchw" : "nhwc");
done:
    free(input);
    free(ref);
    free(first);
    free(got);
    mnv3_model_free(m);
}

int main(void) {
    int isa;
    printf("test_kernels:\n");
    run_kernel_suite(NULL);
    for (isa = MNV3_ISA_SCALAR; isa < (int)mnv3_isa_count(); ++isa) {
        mnv3_kernels k;
        if (mnv3_kernels_resolve((mnv3_isa)isa, MNV3_DTYPE_F32, MNV3_DTYPE_F32, &k)) {
            run_kernel_suite(&k);
            tile_tails_suite(&k);
        }
    }
    network_suite(MNV3_ARCH_LARGE, MNV3_FLAVOR_TORCHVISION, 224, 224, MNV3_LAYOUT_NCHW);
    network_suite(MNV3_ARCH_SMALL, MNV3_FLAVOR_TORCHVISION, 97, 131, MNV3_LAYOUT_NHWC);
    network_suite(MNV3_ARCH_LARGE, MNV3_FLAVOR_TFLITE, 101, 67, MNV3_LAYOUT_NHWC);
    network_suite(MNV3_ARCH_SMALL, MNV3_FLAVOR_TFLITE, 224, 224, MNV3_LAYOUT_NCHW);
    return check_summary("test_kernels");
}
