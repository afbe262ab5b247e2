/* Float kernel tests in three layers:
 *   1. the scalar reference against naive formulas written here independently (planar
 *      loops, double accumulation) on awkward shapes and every epilogue option;
 *   2. every float row this CPU runs against the reference, on the same shapes, on the
 *      sub-ranges the executor hands to threads and at every tail of every tile;
 *   3. whole built-in networks on every kernel set and several thread counts.
 * The loops over sets cover whatever the build and CPU offer, so the same file runs on x86
 * and on ARM. Cases come from the builder the int8 suite shares (support/case.h). */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernels/float_impl.h"
#include "mnv3.h"
#include "support/case.h"
#include "support/net.h"
#include "support/random.h"

/* The reference accumulates in float, the naive formulas in double. */
#define TOL_NAIVE 1e-4
/* SIMD rows differ from the reference only by reassociation. */
#define TOL_ISA 1e-5

static int quick;

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

static const float *in_f(const tc_case *c) { return (const float *)c->input; }
static const float *w_f(const tc_case *c) { return (const float *)c->weight; }
static double bias_at(const tc_case *c, uint32_t o) {
    return c->bias ? ((const float *)c->bias)[o] : 0.0;
}

/* Planar input [K][P] (gated, and clamped when the model clamps x * gate), weights [N][K],
 * then NHWC out. */
static void pw_naive(const tc_case *c, tc_result *r) {
    const mnv3_layer *l = &c->layer;
    const uint32_t K = l->in_channels, N = l->out_channels;
    double *plane = (double *)malloc((size_t)K * c->P * sizeof(double) + 1);
    size_t p;
    uint32_t i, o;
    for (i = 0; i < K; ++i)
        for (p = 0; p < c->P; ++p) {
            double x = in_f(c)[p * c->in_stride + i];
            if (c->gate) {
                x *= ((const float *)c->gate)[i];
                if (!(isinf(l->gate_clamp.lo) && isinf(l->gate_clamp.hi)))
                    x = nv_clamp((float)x, l->gate_clamp);
            }
            plane[(size_t)i * c->P + p] = x;
        }
    for (o = 0; o < N; ++o)
        for (p = 0; p < c->P; ++p) {
            double acc = bias_at(c, o);
            for (i = 0; i < K; ++i) acc += plane[(size_t)i * c->P + p] * w_f(c)[(size_t)o * K + i];
            acc = nv_epilogue(&l->epilogue, acc);
            if (c->residual)
                acc = nv_clamp(acc + ((const float *)c->residual)[p * c->out_stride + o],
                               l->residual_clamp);
            if (c->want_output) ((float *)r->out)[p * c->out_stride + o] = (float)acc;
            if (r->sums) ((float *)r->sums)[o] += (float)acc;
        }
    free(plane);
}

static void dw_naive(const tc_case *c, tc_result *r) {
    const uint32_t C = c->layer.out_channels, K = c->layer.kernel, S = c->layer.stride;
    uint32_t ch, oy, ox, ky, kx;
    for (ch = 0; ch < C; ++ch)
        for (oy = 0; oy < c->OH; ++oy)
            for (ox = 0; ox < c->OW; ++ox) {
                double acc = bias_at(c, ch);
                for (ky = 0; ky < K; ++ky)
                    for (kx = 0; kx < K; ++kx) {
                        const long iy = (long)(oy * S + ky) - (long)c->pad_top;
                        const long ix = (long)(ox * S + kx) - (long)c->pad_left;
                        double x = 0.0;
                        if (iy >= 0 && iy < (long)c->H && ix >= 0 && ix < (long)c->W)
                            x = in_f(c)[((size_t)iy * c->W + (size_t)ix) * C + ch];
                        acc += x * w_f(c)[((size_t)ky * K + kx) * C + ch];
                    }
                acc = nv_epilogue(&c->layer.epilogue, acc);
                ((float *)r->out)[((size_t)oy * c->OW + ox) * C + ch] = (float)acc;
                if (r->sums) ((float *)r->sums)[ch] += (float)acc;
            }
}

static void conv_naive(const tc_case *c, tc_result *r) {
    const uint32_t Ci = c->layer.in_channels, Co = c->layer.out_channels;
    const uint32_t K = c->layer.kernel, S = c->layer.stride;
    uint32_t o, oy, ox, i, ky, kx;
    for (o = 0; o < Co; ++o)
        for (oy = 0; oy < c->OH; ++oy)
            for (ox = 0; ox < c->OW; ++ox) {
                double acc = bias_at(c, o);
                for (i = 0; i < Ci; ++i)
                    for (ky = 0; ky < K; ++ky)
                        for (kx = 0; kx < K; ++kx) {
                            const long y = (long)(oy * S + ky) - (long)c->pad_top;
                            const long x = (long)(ox * S + kx) - (long)c->pad_left;
                            if (y < 0 || y >= (long)c->H || x < 0 || x >= (long)c->W) continue;
                            acc += (double)in_f(c)[(size_t)y * c->in_row + (size_t)x * c->in_col +
                                                   (size_t)i * c->in_chan] *
                                   w_f(c)[(((size_t)o * K + ky) * K + kx) * Ci + i];
                        }
                ((float *)r->out)[((size_t)oy * c->OW + ox) * Co + o] =
                    (float)nv_epilogue(&c->layer.epilogue, acc);
            }
}

static void fc_naive(const tc_case *c, tc_result *r) {
    const uint32_t I = c->layer.in_channels, O = c->layer.out_channels;
    uint32_t o, i;
    for (o = 0; o < O; ++o) {
        double acc = bias_at(c, o);
        for (i = 0; i < I; ++i) acc += (double)in_f(c)[i] * w_f(c)[(size_t)o * I + i];
        ((float *)r->out)[o] = (float)nv_epilogue(&c->layer.epilogue, acc);
    }
}

/* The reference row against the naive formula of the case's kind. */
/* The naive formula of the case's kind. */
static void naive(const tc_case *c, tc_result *r) {
    switch (c->layer.kind) {
    case MNV3_ROW_POINTWISE: pw_naive(c, r); break;
    case MNV3_ROW_DEPTHWISE: dw_naive(c, r); break;
    case MNV3_ROW_CONV: conv_naive(c, r); break;
    default: fc_naive(c, r); break;
    }
}

static int check_naive(const tc_case *c) { return tc_check_reference(c, naive, TOL_NAIVE) == 0; }

/* The row of the case's kind in `k` against the reference (k NULL: the reference against
 * the naive formula). */
static int check(const mnv3_kernels *k, const tc_case *c, tc_split split) {
    return k ? tc_check_row(k->row[c->layer.kind], c, split, TOL_ISA) == 0 : check_naive(c);
}

/* ------------------------------------------------------------------------------------ */
/* Activation edges through every kernel: an identity convolution feeds exact values.   */
/* ------------------------------------------------------------------------------------ */

/* Values at and next to the kinks of every activation and of the clamps used below. */
static const float edge_values[] = {-7.0f, -6.0f, -3.0001f, -3.0f, -2.9999f, -1.0f, -0.5f,
                                    -1e-30f, -0.0f, 0.0f, 1e-30f, 0.5f, 1.0f, 2.9999f, 3.0f,
                                    3.0001f, 5.9999f, 6.0f, 6.0001f, 9.0f};
#define N_EDGES (sizeof edge_values / sizeof edge_values[0])

static void edge_epilogue(mnv3_epilogue *e, int act, int clamped) {
    e->activation = (mnv3_activation)act;
    e->pre.lo = e->post.lo = -INFINITY;
    e->pre.hi = e->post.hi = INFINITY;
    if (clamped) {
        e->pre.lo = -3.0f;
        e->pre.hi = 6.0f;
        e->post.lo = 0.0f;
        e->post.hi = 3.0f;
    }
}

/* Runs the case's row on inputs that the identity weights pass through unchanged, and
 * compares each output with the epilogue of its input. */
static size_t edges_case(const mnv3_kernels *k, tc_case *c, const float *in, size_t n,
                         const mnv3_epilogue *e) {
    tc_bound b;
    tc_result r;
    size_t i, bad = 0;
    memcpy(c->input, in, n * sizeof(float));
    tc_set_epilogue(c, e);
    tc_bind(&b, k->row[c->layer.kind], c);
    tc_result_init(&r, c);
    tc_call(&b, c, tc_whole(c), &r, NULL, 0, 0, 1);
    for (i = 0; i < n; ++i) {
        const double want = nv_epilogue(e, in[i]), got = ((const float *)r.out)[i];
        if (fabs(got - want) > 1e-6 * (fabs(want) > 1 ? fabs(want) : 1) && bad++ == 0)
            fprintf(stderr, "  edge %s: f(%g) = %g, want %g\n", b.row->name, (double)in[i], got,
                    want);
    }
    tc_result_free(&r);
    tc_unbind(&b);
    return bad;
}

static int edges_check(const mnv3_kernels *k, int act, int clamped) {
    const uint32_t C = 19; /* not a multiple of any vector width */
    const size_t n = N_EDGES * C;
    float *in = (float *)tr_alloc(n * sizeof(float));
    mnv3_epilogue e;
    tc_case c;
    size_t bad = 0, i;
    uint32_t ks, j;
    edge_epilogue(&e, act, clamped);
    for (i = 0; i < n; ++i) in[i] = edge_values[(i / C + i % C) % N_EDGES];
    /* pointwise with identity weights, no bias, gate or residual */
    tc_pointwise(&c, TC_F32, N_EDGES, C, C, 0);
    free(c.bias);
    free(c.gate);
    free(c.residual);
    free(c.sums0);
    c.bias = c.gate = c.residual = c.sums0 = NULL;
    c.layer.bias = NULL;
    c.in_stride = c.out_stride = C;
    c.want_output = 1;
    c.out_elems = n;
    for (i = 0; i < (size_t)C * C; ++i) ((float *)c.weight)[i] = i % (C + 1) == 0 ? 1.0f : 0.0f;
    bad += edges_case(k, &c, in, n, &e);
    tc_free(&c);
    /* depthwise 1x1 (the generic path) and 3x3 with only the centre tap set */
    for (ks = 1; ks <= 3; ks += 2) {
        tc_depthwise(&c, TC_F32, 1, N_EDGES, C, ks, 1, ks / 2, ks / 2, ks / 2, ks / 2, 0);
        free(c.bias);
        free(c.sums0);
        c.bias = c.sums0 = NULL;
        c.layer.bias = NULL;
        memset(c.weight, 0, (size_t)ks * ks * C * sizeof(float));
        for (j = 0; j < C; ++j) ((float *)c.weight)[(size_t)(ks * ks / 2) * C + j] = 1.0f;
        bad += edges_case(k, &c, in, n, &e);
        tc_free(&c);
    }
    /* fc, one input feature per output */
    for (j = 0; j < N_EDGES; ++j) {
        tc_fc(&c, TC_F32, 1, 1, 0);
        free(c.bias);
        c.bias = NULL;
        c.layer.bias = NULL;
        ((float *)c.weight)[0] = 1.0f;
        c.out_elems = 1;
        bad += edges_case(k, &c, &edge_values[j], 1, &e);
        tc_free(&c);
    }
    free(in);
    return bad == 0;
}

/* Threads split a layer's pixels at any row, and the row tiles follow the split: every
 * pixel's result must not depend on where its range starts (docs/c-api.md promises
 * bit-identical logits at any thread count). The whole range against two calls split at
 * every point; channel sums are left out (the executor adds them per fixed slice). */
static int pw_check_split_invariance(const mnv3_kernels *k, tc_case *c) {
    tc_bound b;
    tc_result whole, parts;
    tc_range r = tc_whole(c);
    size_t at, differ = 0;
    free(c->sums0);
    c->sums0 = NULL;
    c->want_output = 1;
    tc_bind(&b, k->row[MNV3_ROW_POINTWISE], c);
    tc_result_init(&whole, c);
    tc_call(&b, c, r, &whole, NULL, 0, 0, 1);
    for (at = 1; at < c->P && !differ; ++at) {
        tc_result_init(&parts, c);
        r.p0 = 0;
        r.p1 = at;
        tc_call(&b, c, r, &parts, NULL, 0, 0, 1);
        r.p0 = at;
        r.p1 = c->P;
        tc_call(&b, c, r, &parts, NULL, 0, 0, 1);
        if (memcmp(whole.out, parts.out, c->out_elems * sizeof(float)) != 0) {
            differ = at;
            printf("    %s: P=%zu split at %zu differs from the whole range\n", b.row->name,
                   c->P, at);
        }
        tc_result_free(&parts);
    }
    tc_result_free(&whole);
    tc_unbind(&b);
    return differ == 0;
}

/* ------------------------------------------------------------------------------------ */
/* Case lists                                                                            */
/* ------------------------------------------------------------------------------------ */

static const uint32_t odd_channels[] = {1, 3, 7, 16, 17, 33, 67};
#define N_ODD (sizeof odd_channels / sizeof odd_channels[0])

static const char *set_name(const mnv3_kernels *k) {
    return k ? k->set[MNV3_ROW_POINTWISE]->name : "reference";
}

/* k == NULL: reference against the naive formulas; otherwise rows against the reference. */
static void run_kernel_suite(const mnv3_kernels *k) {
    const char *name = set_name(k);
    int failed_before = check_failed;
    unsigned i, j, n_pw = 0, n_dw = 0, n_conv = 0, n_fc = 0;
    uint64_t seed = 12345;
    tc_case c;

    /* Pointwise: odd K and N, few and many pixels, all options at random. */
    for (i = 0; i < N_ODD; ++i)
        for (j = 0; j < N_ODD; ++j) {
            static const size_t pixels[] = {1, 5, 13, 50};
            unsigned p;
            for (p = 0; p < sizeof pixels / sizeof *pixels; ++p) {
                tr_seed(seed++);
                tc_pointwise(&c, TC_F32, pixels[p], odd_channels[i], odd_channels[j], 0);
                CHECK_MSG(check(k, &c, TC_WHOLE), "%s pointwise P=%zu K=%u N=%u", name, c.P,
                          odd_channels[i], odd_channels[j]);
                if (k)
                    CHECK_MSG(check(k, &c, TC_SUBRANGE), "%s pointwise subrange P=%zu K=%u N=%u",
                              name, c.P, odd_channels[i], odd_channels[j]);
                tc_free(&c);
                ++n_pw;
            }
        }
    if (k) { /* A pixel's result does not depend on where its range starts. */
        static const size_t pixels[] = {9, 13, 17, 49};
        unsigned p;
        for (p = 0; p < sizeof pixels / sizeof *pixels; ++p) {
            tr_seed(seed++);
            tc_pointwise(&c, TC_F32, pixels[p], 37, 24, 0);
            CHECK_MSG(pw_check_split_invariance(k, &c), "%s pointwise split invariance P=%zu",
                      name, c.P);
            tc_free(&c);
            ++n_pw;
        }
    }
    { /* Network-like shapes, including every option at once. */
        static const uint32_t shapes[][3] = {{49, 160, 960}, {196, 112, 672}, {37, 960, 160},
                                             {64, 72, 24},   {23, 40, 120},   {100, 96, 40}};
        for (i = 0; i < sizeof shapes / sizeof *shapes; ++i)
            for (j = 0; j < 3; ++j) {
                tr_seed(seed++);
                tc_pointwise(&c, TC_F32, shapes[i][0], shapes[i][1], shapes[i][2], 0);
                if (j == 2) {
                    tc_set_gate(&c);
                    tc_set_residual(&c);
                    tc_set_sums(&c);
                }
                CHECK_MSG(check(k, &c, j == 1 ? TC_SUBRANGE : TC_WHOLE),
                          "%s pointwise P=%zu K=%u N=%u", name, c.P, shapes[i][1], shapes[i][2]);
                tc_free(&c);
                ++n_pw;
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
                            tr_seed(seed++);
                            if (!tc_depthwise(&c, TC_F32, sizes[si][0], sizes[si][1], chans[ci], K,
                                              st, pt, pt, pb, pb, 0))
                                continue;
                            CHECK_MSG(check(k, &c, TC_WHOLE),
                                      "%s depthwise %ux%ux%u k%u s%u pad %u/%u", name, c.H, c.W,
                                      chans[ci], K, st, pt, pb);
                            if (k)
                                CHECK_MSG(check(k, &c, TC_SUBRANGE),
                                          "%s depthwise subrange %ux%ux%u k%u s%u", name, c.H, c.W,
                                          chans[ci], K, st);
                            tc_free(&c);
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
                const uint32_t *s = big[i];
                tr_seed(seed++);
                if (!tc_depthwise(&c, TC_F32, s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8],
                                  0))
                    continue;
                CHECK_MSG(check(k, &c, TC_WHOLE), "%s depthwise %ux%ux%u k%u s%u", name, s[0],
                          s[1], s[2], s[3], s[4]);
                if (k) CHECK_MSG(check(k, &c, TC_TASKS), "%s depthwise in tasks", name);
                tc_free(&c);
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
                tr_seed(seed++);
                if (!tc_conv(&c, TC_F32, s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9],
                             layout, 0))
                    continue;
                CHECK_MSG(check(k, &c, TC_WHOLE), "%s conv %ux%ux%u->%u k%u s%u %s", name, s[0],
                          s[1], s[2], s[3], s[4], s[5], layout ? "nhwc" : "nchw");
                if (k) CHECK_MSG(check(k, &c, TC_SUBRANGE), "%s conv subrange", name);
                tc_free(&c);
                ++n_conv;
            }
    }

    /* Fully connected: SE and head shapes plus odd ones. */
    {
        static const uint32_t shapes[][2] = {{1, 1},   {7, 3},     {17, 5},   {67, 33},
                                             {72, 24}, {960, 240}, {240, 960}, {1280, 1001}};
        for (i = 0; i < sizeof shapes / sizeof *shapes; ++i) {
            tr_seed(seed++);
            tc_fc(&c, TC_F32, shapes[i][0], shapes[i][1], 0);
            CHECK_MSG(check(k, &c, TC_WHOLE), "%s fc %u->%u", name, shapes[i][0], shapes[i][1]);
            if (k)
                CHECK_MSG(check(k, &c, TC_SUBRANGE), "%s fc subrange %u->%u", name, shapes[i][0],
                          shapes[i][1]);
            tc_free(&c);
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
/* Every tail of every tile: each row against the reference at every remainder its tile */
/* sizes leave, with and without the SE gate, residual, clamps, sums and ring input.    */
/* ------------------------------------------------------------------------------------ */

/* Rows of a pointwise row's tiles (1 for the reference, which has none). */
static uint32_t tile_rows(const mnv3_row *row) {
    const mnv3_f32_gemm_impl *im = (const mnv3_f32_gemm_impl *)row->impl;
    return im ? im->mr : 1;
}

static void tile_tails_suite(const mnv3_kernels *k) {
    const char *name = set_name(k);
    const uint32_t mr = tile_rows(k->row[MNV3_ROW_POINTWISE]), nr = k->row[MNV3_ROW_POINTWISE]->nr;
    int failed_before = check_failed;
    unsigned n_pw = 0, n_dw = 0, n_conv = 0, n_fc = 0;
    uint32_t P, N, W, Co, I, O, opt;
    uint64_t seed = 777;
    tc_case c;
    /* Rows 1 .. 2*mr + 1 give every tile height the balanced split picks; columns
     * 1 .. 2*nr + 1 every partial width of a wide and of a narrow last panel. */
    for (P = 1; P <= 2 * mr + 1; ++P)
        for (N = 1; N <= 2 * nr + 1; ++N)
            for (opt = 0; opt < 2; ++opt) {
                if (quick && (P + N + opt) % 3) continue;
                tr_seed(seed++);
                tc_pointwise(&c, TC_F32, P, 1 + (P * 7 + N) % 19, N, 0);
                if (opt) { /* everything at once, clamps included */
                    tc_set_gate(&c);
                    tc_set_residual(&c);
                    tc_set_sums(&c);
                    c.layer.residual_clamp.lo = -0.75f;
                    c.layer.residual_clamp.hi = 1.25f;
                    c.layer.epilogue.pre.lo = -2.5f;
                    c.layer.epilogue.pre.hi = 5.0f;
                    c.layer.epilogue.post.lo = -0.5f;
                    c.layer.epilogue.post.hi = 2.0f;
                }
                CHECK_MSG(check(k, &c, opt ? TC_SUBRANGE : TC_WHOLE),
                          "%s pointwise tail P=%u N=%u opt=%u", name, P, N, opt);
                if (opt) CHECK_MSG(check(k, &c, TC_TASKS), "%s pointwise tail in tasks", name);
                tc_free(&c);
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
                    if (quick && (W + ci) % 4) continue;
                    tr_seed(seed++);
                    if (!tc_depthwise(&c, TC_F32, 1 + W % 5, W, chans[ci], K, S, h,
                                      h - (W & 1 ? 0 : 1 % (h + 1)), h, h, 0))
                        continue;
                    if (W & 1) tc_set_sums(&c);
                    CHECK_MSG(check(k, &c, TC_WHOLE), "%s depthwise tail %ux%ux%u k%u s%u", name,
                              c.H, c.W, chans[ci], K, S);
                    CHECK_MSG(check(k, &c, TC_SUBRANGE), "%s depthwise tail rows %ux%ux%u k%u s%u",
                              name, c.H, c.W, chans[ci], K, S);
                    /* the input through a ring of rows, as a fused expansion hands it over */
                    if (c.H > K) {
                        c.ring = K + (W & 1);
                        CHECK_MSG(check(k, &c, TC_TASKS), "%s depthwise tail ring %ux%ux%u k%u",
                                  name, c.H, c.W, chans[ci], K);
                    }
                    tc_free(&c);
                    ++n_dw;
                }
    }
    /* Output-channel remainders and widths around the stem's pixel group. */
    for (Co = 1; Co <= 2 * nr + 1; ++Co)
        for (W = 1; W <= 19; W += 2) {
            if (quick && (Co + W) % 3) continue;
            tr_seed(seed++);
            if (!tc_conv(&c, TC_F32, 3 + W % 4, W, 3, Co, 3, 1 + W % 2, 1, 1, 1, 1,
                         (int)(W % 3 == 0), 0))
                continue;
            CHECK_MSG(check(k, &c, TC_WHOLE), "%s conv tail %ux%u->%u", name, c.H, c.W, Co);
            tc_free(&c);
            ++n_conv;
        }
    /* Input remainders of every vector width, output counts around the GEMV block. */
    for (I = 1; I <= 33; ++I)
        for (O = 1; O <= 9; ++O) {
            if (quick && (I + O) % 3) continue;
            tr_seed(seed++);
            tc_fc(&c, TC_F32, I, O, 0);
            CHECK_MSG(check(k, &c, (I + O) & 1 ? TC_SUBRANGE : TC_WHOLE), "%s fc tail %u->%u",
                      name, I, O);
            tc_free(&c);
            ++n_fc;
        }
    printf("  %s tile tails: %u pointwise, %u depthwise, %u conv, %u fc cases%s\n", name, n_pw,
           n_dw, n_conv, n_fc, check_failed > failed_before ? " (FAILURES)" : "");
}

/* ------------------------------------------------------------------------------------ */
/* Whole networks                                                                        */
/* ------------------------------------------------------------------------------------ */

static double max_abs(const float *x, size_t n) {
    double m = 0.0;
    size_t i;
    for (i = 0; i < n; ++i)
        if (fabs(x[i]) > m) m = fabs(x[i]);
    return m;
}

static int close_to(double got, double want, double tol) {
    return fabs(got - want) <= tol * (fabs(want) > 1.0 ? fabs(want) : 1.0);
}

static void network_suite(mnv3_arch arch, mnv3_flavor flavor, uint32_t h, uint32_t w,
                          mnv3_layout layout) {
    static const uint32_t thread_counts[] = {1, 2, 3};
    mnv3_model *m = NULL;
    mnv3_error err;
    float *input, *ref, *first, *got;
    int isa;
    unsigned t;
    size_t classes;
    double scale;
    const char *an = arch == MNV3_ARCH_LARGE ? "large" : "small";
    const char *fn = flavor == MNV3_FLAVOR_TFLITE ? "tflite" : "torchvision";
    tn_run run;
    if (mnv3_model_create_builtin(arch, flavor, 1.0, flavor == MNV3_FLAVOR_TFLITE ? 1001 : 1000,
                                  7, &m, &err) != MNV3_OK) {
        CHECK_MSG(0, "create_builtin %s %s: %s", an, fn, err.message);
        return;
    }
    classes = tn_classes(m);
    tr_seed(99);
    input = tr_floats((size_t)3 * h * w, -2.0f, 2.0f);
    ref = (float *)tr_alloc(classes * sizeof(float));
    first = (float *)tr_alloc(classes * sizeof(float));
    got = (float *)tr_alloc(classes * sizeof(float));
    tn_run_init(&run, m, h, w);
    run.layout = layout;
    run.isa = MNV3_ISA_SCALAR;
    CHECK_MSG(tn_logits(&run, input, ref) == MNV3_OK, "%s %s scalar: %s", an, fn, run.err.message);
    scale = max_abs(ref, classes);
    for (isa = MNV3_ISA_SCALAR; isa < (int)mnv3_isa_count(); ++isa) {
        if (!mnv3_isa_available((mnv3_isa)isa)) continue;
        for (t = 0; t < sizeof thread_counts / sizeof *thread_counts; ++t) {
            float *dst = t == 0 ? first : got;
            size_t i, bad = 0;
            double worst = 0.0;
            run.isa = (mnv3_isa)isa;
            run.threads = thread_counts[t];
            if (tn_logits(&run, input, dst) != MNV3_OK) {
                CHECK_MSG(0, "%s %s isa=%s threads=%u: %s", an, fn, mnv3_isa_name((mnv3_isa)isa),
                          run.threads, run.err.message);
                continue;
            }
            for (i = 0; i < classes; ++i) {
                const double d = fabs((double)dst[i] - ref[i]);
                if (d > worst) worst = d;
                if (d > 1e-4 * (scale > 1.0 ? scale : 1.0)) ++bad;
                if (t > 0 && !close_to(dst[i], first[i], 1e-6)) ++bad;
            }
            CHECK_MSG(bad == 0, "%s %s %ux%u isa=%s threads=%u: %zu logits off (max diff %g)", an,
                      fn, h, w, mnv3_isa_name((mnv3_isa)isa), run.threads, bad, worst);
        }
    }
    printf("  network %s/%s %ux%u %s: checked every kernel set, threads 1/2/3\n", an, fn, h, w,
           layout == MNV3_LAYOUT_NCHW ? "nchw" : "nhwc");
    free(input);
    free(ref);
    free(first);
    free(got);
    mnv3_model_free(m);
}

int main(void) {
    int isa;
    quick = getenv("MNV3_TEST_QUICK") != NULL;
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
