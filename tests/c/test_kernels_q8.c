/* int8 kernel tests:
 *   1. the requantization primitives against an independent 64-bit formulation;
 *   2. the reference rows against naive formulas written here (64-bit sums, the gate and
 *      the residual ADD spelled out);
 *   3. every int8 kernel set of the build the CPU runs against the reference, byte for
 *      byte (cases from the builder the float suite shares, support/case.h), on awkward
 *      shapes: every tail of every tile, odd channel counts, strides,
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
#include "support/case.h"
#include "support/random.h"

#define rnd tr_rnd
#define rnd_below tr_below
#define rnd_range tr_range

static int quick;

/* ------------------------------------------------------------------------------------ */
/* Requantization against an independent formulation                                     */
/* ------------------------------------------------------------------------------------ */

/* round(x * m * 2^shift) as TFLite defines it, with exact 64-bit/128-bit-free steps:
 * high = floor((x' * m + 2^30) / 2^31) (saturated), then a division by 2^right rounding
 * half away from zero. */
static int32_t naive_requantize(int32_t x, mnv3_q8_mul m) {
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

#define random_qmul tc_random_qmul
#define random_accumulator tc_random_accumulator

static void requantize_suite(void) {
    uint32_t i, bad = 0;
    const uint32_t n = quick ? 200000u : 2000000u;
    for (i = 0; i < n; ++i) {
        const mnv3_q8_mul m = random_qmul(1);
        const int32_t x = random_accumulator();
        const int32_t got = mnv3_q8_requantize(x, m), want = naive_requantize(x, m);
        if (got != want && bad++ < 5)
            fprintf(stderr, "  requantize(%d, %d * 2^%d) = %d, want %d\n", x, m.multiplier,
                    m.shift, got, want);
    }
    CHECK_MSG(bad == 0, "%u of %u requantizations differ", bad, n);
}

/* ------------------------------------------------------------------------------------ */
/* The reference against naive formulas (64-bit sums, the gate and the ADD spelled out)  */
/* ------------------------------------------------------------------------------------ */

static int8_t naive_out(const mnv3_q8_requant *r, uint32_t o, int64_t acc) {
    int64_t v = (int64_t)naive_requantize((int32_t)(uint32_t)(uint64_t)acc, r->qmul[o]) + r->out_zp;
    if (v > INT32_MAX) v -= (int64_t)1 << 32; /* the int32 sum wraps */
    v = v < r->act_lo ? r->act_lo : v > r->act_hi ? r->act_hi : v;
    if (r->lut) v = r->lut[v + 128];
    return (int8_t)v;
}

static int8_t naive_add(const mnv3_q8_add *p, int8_t a, int8_t b) {
    const int64_t sa = naive_requantize((int32_t)(((int64_t)a - p->a_zp) * ((int64_t)1 << p->left_shift)), p->a_mul);
    const int64_t sb = naive_requantize((int32_t)(((int64_t)b - p->b_zp) * ((int64_t)1 << p->left_shift)), p->b_mul);
    int64_t v = (int64_t)naive_requantize((int32_t)(sa + sb), p->out_mul) + p->out_zp;
    v = v < p->act_lo ? p->act_lo : v > p->act_hi ? p->act_hi : v;
    return (int8_t)v;
}

static const int8_t *in_b(const tc_case *c) { return (const int8_t *)c->input; }
static const int8_t *w_b(const tc_case *c) { return (const int8_t *)c->weight; }
static int64_t bias_at(const tc_case *c, uint32_t o) {
    return c->bias ? ((const int32_t *)c->bias)[o] : 0;
}

static void pw_naive(const tc_case *c, tc_result *r) {
    const mnv3_layer *l = &c->layer;
    const uint32_t K = l->in_channels, N = l->out_channels;
    size_t p;
    uint32_t o, k;
    for (p = 0; p < c->P; ++p)
        for (o = 0; o < N; ++o) {
            int64_t acc = bias_at(c, o);
            int8_t v;
            for (k = 0; k < K; ++k) {
                int64_t x = in_b(c)[p * c->in_stride + k];
                if (c->gate) {
                    const mnv3_q8_gate *g = &l->gate;
                    x = (int64_t)naive_requantize(
                            (int32_t)((x - g->x_zp) * (((const int8_t *)c->gate)[k] - g->gate_zp)),
                            g->qmul) + l->in_zp;
                    x = x < g->act_lo ? g->act_lo : x > g->act_hi ? g->act_hi : x;
                }
                acc += (x - l->in_zp) * ((int64_t)w_b(c)[(size_t)o * K + k] - l->weight_zp);
            }
            v = naive_out(&l->requant, o, acc);
            if (c->residual)
                v = naive_add(&l->add, v, ((const int8_t *)c->residual)[p * c->out_stride + o]);
            if (c->want_output) ((int8_t *)r->out)[p * c->out_stride + o] = v;
            if (r->sums) ((int32_t *)r->sums)[o] += v;
        }
}

static void dw_naive(const tc_case *c, tc_result *r) {
    const mnv3_layer *l = &c->layer;
    const uint32_t C = l->out_channels, K = l->kernel, S = l->stride;
    const uint32_t rows = c->ring ? c->ring : c->H;
    uint32_t oy, ox, ch, ky, kx;
    for (oy = 0; oy < c->OH; ++oy)
        for (ox = 0; ox < c->OW; ++ox)
            for (ch = 0; ch < C; ++ch) {
                int64_t acc = bias_at(c, ch);
                int8_t v;
                for (ky = 0; ky < K; ++ky)
                    for (kx = 0; kx < K; ++kx) {
                        const long iy = (long)(oy * S + ky) - (long)c->pad_top;
                        const long ix = (long)(ox * S + kx) - (long)c->pad_left;
                        if (iy < 0 || ix < 0 || iy >= (long)c->H || ix >= (long)c->W) continue;
                        acc += ((int64_t)in_b(c)[(((size_t)iy % rows) * c->W + (size_t)ix) * C + ch] -
                                l->in_zp) *
                               ((int64_t)w_b(c)[((size_t)ky * K + kx) * C + ch] - l->weight_zp);
                    }
                v = naive_out(&l->requant, ch, acc);
                ((int8_t *)r->out)[((size_t)oy * c->OW + ox) * C + ch] = v;
                if (r->sums) ((int32_t *)r->sums)[ch] += v;
            }
}

static void conv_naive(const tc_case *c, tc_result *r) {
    const mnv3_layer *l = &c->layer;
    const uint32_t Ci = l->in_channels, Co = l->out_channels, K = l->kernel, S = l->stride;
    uint32_t oy, ox, o, ky, kx, i;
    for (oy = 0; oy < c->OH; ++oy)
        for (ox = 0; ox < c->OW; ++ox)
            for (o = 0; o < Co; ++o) {
                int64_t acc = bias_at(c, o);
                for (ky = 0; ky < K; ++ky)
                    for (kx = 0; kx < K; ++kx)
                        for (i = 0; i < Ci; ++i) {
                            const long iy = (long)(oy * S + ky) - (long)c->pad_top;
                            const long ix = (long)(ox * S + kx) - (long)c->pad_left;
                            if (iy < 0 || ix < 0 || iy >= (long)c->H || ix >= (long)c->W) continue;
                            acc += ((int64_t)in_b(c)[(size_t)iy * c->in_row + (size_t)ix * c->in_col +
                                                     (size_t)i * c->in_chan] -
                                    l->in_zp) *
                                   ((int64_t)w_b(c)[(((size_t)o * K + ky) * K + kx) * Ci + i] -
                                    l->weight_zp);
                        }
                ((int8_t *)r->out)[((size_t)oy * c->OW + ox) * Co + o] = naive_out(&l->requant, o, acc);
            }
}

static void fc_naive(const tc_case *c, tc_result *r) {
    const mnv3_layer *l = &c->layer;
    const uint32_t I = l->in_channels, O = l->out_channels;
    uint32_t o, i;
    for (o = 0; o < O; ++o) {
        int64_t acc = bias_at(c, o);
        for (i = 0; i < I; ++i)
            acc += ((int64_t)in_b(c)[i] - l->in_zp) * ((int64_t)w_b(c)[(size_t)o * I + i] - l->weight_zp);
        ((int8_t *)r->out)[o] = naive_out(&l->requant, o, acc);
    }
}

/* The naive formula of the case's kind. */
static void naive(const tc_case *c, tc_result *r) {
    switch (c->layer.kind) {
    case MNV3_ROW_POINTWISE: pw_naive(c, r); break;
    case MNV3_ROW_DEPTHWISE: dw_naive(c, r); break;
    case MNV3_ROW_CONV: conv_naive(c, r); break;
    default: fc_naive(c, r); break;
    }
}

static int check_naive(const tc_case *c) { return tc_check_reference(c, naive, 0.0) == 0; }

/* A row against the reference: on the whole layer, or in the pieces threads get. */
static int check_row(const mnv3_row *row, const tc_case *c, int pieces) {
    const size_t bad = tc_check_row(row, c, pieces ? TC_TASKS : TC_WHOLE, 0.0);
    if (bad)
        fprintf(stderr, "  %s: K=%u N=%u kernel %u stride %u gate=%d res=%d lut=%d sums=%d "
                        "out=%d in_zp=%d wzp=%d ring=%u pieces=%d\n",
                row->name, c->layer.in_channels, c->layer.out_channels, c->layer.kernel,
                c->layer.stride, c->gate != NULL, c->residual != NULL, c->lut != NULL,
                c->sums0 != NULL, c->want_output, c->layer.in_zp, c->layer.weight_zp, c->ring,
                pieces);
    return bad == 0;
}

/* ------------------------------------------------------------------------------------ */
/* Suites                                                                                */
/* ------------------------------------------------------------------------------------ */

/* Depthwise with random padding below the kernel size. */
static int dw_random(tc_case *c, uint32_t H, uint32_t W, uint32_t C, uint32_t K, uint32_t S,
                     int extreme) {
    const uint32_t pt = rnd_below(K), pl = rnd_below(K);
    return tc_depthwise(c, TC_Q8, H, W, C, K, S, pt, pl, pt, pl, extreme);
}

static int conv_random(tc_case *c, uint32_t H, uint32_t W, uint32_t Ci, uint32_t Co, uint32_t K,
                       uint32_t S, int extreme) {
    const uint32_t pt = rnd_below(K), pl = rnd_below(K);
    return tc_conv(c, TC_Q8, H, W, Ci, Co, K, S, pt, pl, pt, pl, 1, extreme);
}

static void reference_suite(void) {
    static const uint32_t ks[] = {1, 3, 8, 17, 40};
    uint32_t i, j, n = 0, ok = 0;
    tc_case c;
    for (i = 0; i < sizeof ks / sizeof *ks; ++i)
        for (j = 0; j < 6; ++j) {
            tc_pointwise(&c, TC_Q8, 1 + rnd_below(20), ks[i], 1 + rnd_below(40), j == 5);
            ok += check_naive(&c);
            ++n;
            tc_free(&c);
        }
    CHECK_MSG(ok == n, "reference pointwise: %u of %u cases match the naive formula", ok, n);
    for (n = ok = 0, i = 0; i < 40; ++i) {
        const uint32_t K = i % 2 ? 3 : 5, S = 1 + i % 3 / 2;
        if (!dw_random(&c, 1 + rnd_below(12), 1 + rnd_below(12), 1 + rnd_below(40), K, S,
                       i % 7 == 0))
            continue;
        ok += check_naive(&c);
        ++n;
        tc_free(&c);
    }
    CHECK_MSG(ok == n, "reference depthwise: %u of %u cases match the naive formula", ok, n);
    for (n = ok = 0, i = 0; i < 20; ++i) {
        if (!conv_random(&c, 1 + rnd_below(12), 1 + rnd_below(12), 1 + rnd_below(4),
                         1 + rnd_below(20), 1 + 2 * rnd_below(2), 1 + rnd_below(2), i % 5 == 0))
            continue;
        ok += check_naive(&c);
        ++n;
        tc_free(&c);
    }
    CHECK_MSG(ok == n, "reference conv: %u of %u cases match the naive formula", ok, n);
    for (n = ok = 0, i = 0; i < 20; ++i) {
        tc_fc(&c, TC_Q8, 1 + rnd_below(300), 1 + rnd_below(40), i % 4 == 0);
        ok += check_naive(&c);
        ++n;
        tc_free(&c);
    }
    CHECK_MSG(ok == n, "reference fc: %u of %u cases match the naive formula", ok, n);
}

/* Channel counts around every SIMD width and tile of the sets (4, 8, 16, 32, 64). */
static const uint32_t awkward[] = {1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 20, 24, 31, 32, 33,
                                   40, 47, 48, 63, 64, 65, 67, 72, 96, 129};
#define N_AWKWARD (sizeof awkward / sizeof *awkward)

/* Rows of a pointwise row's tiles (1 for the reference, which has none). */
static uint32_t tile_rows(const mnv3_row *row) {
    const mnv3_q8_gemm_impl *im = (const mnv3_q8_gemm_impl *)row->impl;
    return im ? im->mr : 1;
}

/* Edges of the stem rows, which read the taps of most pixels in place and copy those of the
 * others into a window: every padding of a 3x3 kernel on each side (including bottom and
 * right paddings that differ from the top and left ones), at strides 1 and 2; input widths
 * from one pixel to several tiles, so that the pixels read in place start, end and vanish
 * anywhere (a kernel row is read in chunks past its taps); channel counts other than 3;
 * NCHW input, every pixel through the window; kernels of 1 and 5; output channels around
 * a panel; the extreme values and zero points. */
static void conv_edges(const mnv3_kernel_set *set, const mnv3_row *conv) {
    static const uint32_t in_channels[] = {3, 1, 2, 4, 5, 8};
    static const uint32_t out_channels[] = {16, 1, 8, 15, 17, 24, 32, 33};
    const uint32_t cases = 81u * 2u * 6u, step = quick ? 5u : 1u;
    uint32_t i, n = 0, ok = 0;
    tc_case c;
    for (i = 0; i < cases; i += step) {
        const uint32_t pads = i % 81u, S = 1 + i / 81u % 2u, Ci = in_channels[i / 162u % 6u];
        if (!tc_conv(&c, TC_Q8, 1 + rnd_below(6), 1 + rnd_below(40), Ci,
                     out_channels[rnd_below(8)], 3, S, pads % 3u, pads / 3u % 3u, pads / 9u % 3u,
                     pads / 27u, i % 7u != 3u, i % 5u == 0))
            continue;
        ok += check_row(conv, &c, i % 2);
        ++n;
        tc_free(&c);
    }
    for (i = 0; i < (quick ? 16u : 64u); ++i) {
        const uint32_t K = i % 2 ? 5 : 1, S = 1 + i / 2 % 2;
        const uint32_t pt = rnd_below(K), pl = rnd_below(K), pb = rnd_below(K), pr = rnd_below(K);
        if (!tc_conv(&c, TC_Q8, 1 + rnd_below(9), 1 + rnd_below(30), 1 + rnd_below(6),
                     out_channels[rnd_below(8)], K, S, pt, pl, pb, pr, i % 5 != 2, i % 3 == 0))
            continue;
        ok += check_row(conv, &c, i % 2);
        ++n;
        tc_free(&c);
    }
    CHECK_MSG(ok == n && n > 0, "%s %s: %u of %u edge cases match the reference", set->name,
              conv->name, ok, n);
}

/* A pointwise case with exactly the epilogue steps asked (bit 0 the LUT, 1 the residual
 * ADD, 2 the channel sums): every combination of the steps a set's tiles fuse, which the
 * random cases reach only now and then. `shifted`: the ADD's input multipliers above 1, so
 * that they shift left (not the usual case, where vector code may take a shorter form). */
static void pw_epilogue(tc_case *c, size_t P, uint32_t K, uint32_t N, unsigned steps,
                        int shifted) {
    tc_pointwise(c, TC_Q8, P, K, N, 0);
    free(c->lut);
    c->lut = steps & 1u ? tr_bytes(256, -128, 127) : NULL;
    c->layer.requant.lut = c->lut;
    if (steps & 2u) {
        tc_set_residual(c);
        if (shifted) {
            mnv3_q8_mul_from_real(1.0 + (double)rnd_below(1000) / 1000.0, &c->layer.add.a_mul);
            mnv3_q8_mul_from_real(1.0 + (double)rnd_below(1000) / 1000.0, &c->layer.add.b_mul);
        }
    } else {
        free(c->residual);
        c->residual = NULL;
    }
    if (steps & 4u) {
        tc_set_sums(c);
        c->want_output = (int)rnd_below(2);
    } else {
        free(c->sums0);
        c->sums0 = NULL;
        c->want_output = 1;
    }
}

/* FC weights packed narrow (mnv3_q8_fc_impl): with a weight zero point of 0 every
 * w - zero point fits in int8, with 100 most do not, so a set whose FC row has a narrow
 * impl runs both. */
static void fc_narrow_cases(const mnv3_kernel_set *set, const mnv3_row *fc) {
    const mnv3_q8_gemm_impl *im = (const mnv3_q8_gemm_impl *)fc->impl;
    uint32_t i, n = 0, ok = 0, narrow = 0;
    tc_case c;
    /* Per size: weight zero point 0 (narrow), 100 (wide: w - 100 leaves int8) and -20 with
     * weights up to 107 (narrow, with a zero point to account for). */
    for (i = 0; i < 9; ++i) {
        tc_fc(&c, TC_Q8, 181 + 67 * (i / 3), 182 + 33 * (i / 3), i == 8);
        c.layer.weight_zp = i % 3 == 0 ? 0 : i % 3 == 1 ? 100 : -20;
        if (i % 3 == 2) {
            int8_t *w = (int8_t *)c.weight;
            size_t j;
            for (j = 0; j < (size_t)c.layer.in_channels * c.layer.out_channels; ++j)
                if (w[j] > 107) w[j] = 107;
        }
        if (im && im->narrow) narrow += mnv3_q8_fc_impl(fc, &c.layer) != im;
        ok += check_row(fc, &c, i % 4 == 0);
        ++n;
        tc_free(&c);
    }
    CHECK_MSG(ok == n, "%s %s: %u of %u narrow-or-wide cases match the reference", set->name,
              fc->name, ok, n);
    CHECK_MSG(!(im && im->narrow) || narrow == 6, "%s %s: %u of 6 cases packed narrow",
              set->name, fc->name, narrow);
}

static void set_suite(const mnv3_kernel_set *set, const mnv3_kernels *k) {
    const mnv3_row *pw = k->row[MNV3_ROW_POINTWISE], *dw = k->row[MNV3_ROW_DEPTHWISE];
    const mnv3_row *conv = k->row[MNV3_ROW_CONV], *fc = k->row[MNV3_ROW_FC];
    const uint32_t mr = tile_rows(pw);
    uint32_t i, j, n, ok;
    tc_case c;
    /* Pointwise: every row count up to two tiles and a bit, every awkward K and N. */
    for (n = ok = 0, i = 0; i < N_AWKWARD; ++i)
        for (j = 0; j < N_AWKWARD; j += quick ? 3 : 1) {
            const size_t P = 1 + rnd_below(2 * (mr > 1 ? mr : 8) + 2);
            tc_pointwise(&c, TC_Q8, P, awkward[i], awkward[j], (i + j) % 9 == 0);
            ok += check_row(pw, &c, (i + j) % 3 == 0);
            ++n;
            tc_free(&c);
        }
    for (i = 0; i < (quick ? 6u : 30u); ++i) {
        tc_pointwise(&c, TC_Q8, 1 + rnd_below(150), 1 + rnd_below(300), 1 + rnd_below(200),
                     i % 5 == 0);
        ok += check_row(pw, &c, i % 2);
        ++n;
        tc_free(&c);
    }
    CHECK_MSG(ok == n, "%s %s: %u of %u cases match the reference", set->name, pw->name, ok, n);
    /* Every combination of LUT, ADD and sums on tiles narrower than a panel, a panel and a
     * bit, and row counts that leave a short last tile. */
    for (n = ok = 0, i = 0; i < 8; ++i)
        for (j = 0; j < 16; ++j) {
            /* every combination of the 8, 4, 2 and 1 byte moves of a short panel's rows */
            static const uint32_t widths[] = {1, 3, 7, 9, 15, 17, 23, 33,
                                              2, 4, 6, 8, 10, 13, 14, 24};
            const size_t P = 1 + 2 * rnd_below(mr + 2);
            pw_epilogue(&c, P, awkward[rnd_below(N_AWKWARD)], widths[j], i, j % 4 == 3);
            ok += check_row(pw, &c, j % 2);
            ++n;
            tc_free(&c);
        }
    CHECK_MSG(ok == n, "%s %s: %u of %u epilogue cases match the reference", set->name, pw->name,
              ok, n);

    for (n = ok = 0, i = 0; i < (quick ? 60u : 300u); ++i) {
        static const uint32_t kernels[] = {3, 5, 3, 5, 1, 7};
        const uint32_t K = kernels[i % 6], S = 1 + (i / 6) % 2;
        if (!dw_random(&c, 1 + rnd_below(14), 1 + rnd_below(20), awkward[rnd_below(N_AWKWARD)],
                       K, S, i % 11 == 0))
            continue;
        ok += check_row(dw, &c, i % 2);
        ++n;
        tc_free(&c);
    }
    CHECK_MSG(ok == n, "%s %s: %u of %u cases match the reference", set->name, dw->name, ok, n);
    /* Edges of the vector depthwise rows: outputs fewer than a pixel group, channels short
     * of a vector, odd sizes at stride 2, 5x5. */
    for (n = ok = 0, i = 0; i < 4 * 4 * 2 * 2; ++i) {
        static const uint32_t widths[] = {1, 2, 3, 5}, channels[] = {1, 8, 24, 72};
        const uint32_t W = widths[i % 4], C = channels[i / 4 % 4], K = i / 16 % 2 ? 5 : 3;
        const uint32_t S = 1 + i / 32;
        if (!dw_random(&c, W + 2, W, C, K, S, 0)) continue;
        ok += check_row(dw, &c, i % 2);
        ++n;
        tc_free(&c);
    }
    CHECK_MSG(ok == n && n > 0, "%s %s: %u of %u edge cases match the reference", set->name,
              dw->name, ok, n);
    /* Rows wide enough that a row's channel sums outgrow what a set may keep in 16 bits. */
    for (n = ok = 0, i = 0; i < 6; ++i) {
        static const uint32_t channels[] = {16, 24, 40, 16, 24, 64};
        if (!dw_random(&c, 3, 300 + 37 * i, channels[i], 3, 1 + i / 3, 1)) continue;
        if (!c.sums0) tc_set_sums(&c);
        ok += check_row(dw, &c, i % 2);
        ++n;
        tc_free(&c);
    }
    CHECK_MSG(ok == n && n > 0, "%s %s: %u of %u wide rows match the reference", set->name,
              dw->name, ok, n);

    for (n = ok = 0, i = 0; i < (quick ? 20u : 80u); ++i) {
        const uint32_t Ci = i % 3 ? 3 : 1 + rnd_below(8);
        if (!conv_random(&c, 1 + rnd_below(20), 1 + rnd_below(20), Ci,
                         awkward[rnd_below(N_AWKWARD)], i % 4 ? 3 : 1 + 2 * rnd_below(3),
                         1 + (i % 3 != 1), i % 7 == 0))
            continue;
        ok += check_row(conv, &c, i % 2);
        ++n;
        tc_free(&c);
    }
    CHECK_MSG(ok == n, "%s %s: %u of %u cases match the reference", set->name, conv->name, ok, n);
    conv_edges(set, conv);

    for (n = ok = 0, i = 0; i < N_AWKWARD; ++i)
        for (j = 0; j < N_AWKWARD; j += quick ? 4 : 2) {
            tc_fc(&c, TC_Q8, awkward[i] * (1 + rnd_below(3)), awkward[j], (i + j) % 7 == 0);
            ok += check_row(fc, &c, (i + j) % 2);
            ++n;
            tc_free(&c);
        }
    /* an input longer than the driver keeps on its stack: the reference on canonical weights */
    tc_fc(&c, TC_Q8, 9000, 3, 0);
    ok += check_row(fc, &c, 1);
    ++n;
    tc_free(&c);
    CHECK_MSG(ok == n, "%s %s: %u of %u cases match the reference", set->name, fc->name, ok, n);
    fc_narrow_cases(set, fc);
}

/* The set's vector requantization on its own, on many more values than layers reach,
 * including the saturating product and every shift. */
static void requantize_set(const mnv3_kernel_set *set, const mnv3_kernels *k) {
    const mnv3_q8_gemm_impl *im = (const mnv3_q8_gemm_impl *)k->row[MNV3_ROW_POINTWISE]->impl;
    enum { N = 4099 };
    static int32_t acc[N], got[N];
    static mnv3_q8_mul m[N];
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
            if (got[i] != mnv3_q8_requantize(acc[i], m[i]) && bad++ < 5)
                fprintf(stderr, "  %s: requantize(%d, %d * 2^%d) = %d, want %d\n", set->name, acc[i],
                        m[i].multiplier, m[i].shift, got[i], mnv3_q8_requantize(acc[i], m[i]));
    }
    CHECK_MSG(bad == 0, "%s: %u vector requantizations differ", set->name, bad);
}

/* The set's gated row preparation against the portable one for every input byte and gate
 * byte, in every A format, by the gate's split and by its multiplier, on gate parameters
 * at the edges of what the split admits (mnv3_q8_gate_splits) and beyond them. */
static void gate_set(const mnv3_kernel_set *set, const mnv3_kernels *k) {
    static const struct {
        int32_t x_zp, gate_zp;
        double real;
        int32_t lo, hi;
    } cases[] = {
        {-128, -128, 0.99 / 256, -128, 127}, {127, 127, 0.99 / 256, -128, 127},
        {-128, 127, 0.4999, -128, 127},      {127, -128, 0.26, -100, 90},
        {3, -7, 0.75, -128, 127},            {-5, 9, 1.5, -128, 127},
        {-128, -128, 1.99 / 65536, -128, 127}, {0, 0, 1.99 / 65536, -20, 20},
        {-128, -128, 1.0 / 131072, -128, 127}, {0, 0, 1.0 / 131072, -128, 127},
        {17, -128, 0.9 / 1024, -128, 0},
        {-128, -128, 0.0, -128, 127},        {64, -64, 0.013, 5, 127},
    };
    enum { ROWS = 256, K = 263, STRIDE = 272 };
    const mnv3_q8_gemm_impl *im = (const mnv3_q8_gemm_impl *)k->row[MNV3_ROW_POINTWISE]->impl;
    static int8_t x[ROWS * K], gate[K];
    static unsigned char got[ROWS * STRIDE * 2], want[ROWS * STRIDE * 2];
    static int32_t split[4 * STRIDE], got_sums[ROWS], want_sums[ROWS];
    uint32_t i, r, c, f, by_split, bad = 0, split_cases = 0;
    if (!im || !im->ops->prepare_rows) return;
    for (r = 0; r < ROWS; ++r)
        for (c = 0; c < K; ++c) x[r * K + c] = (int8_t)((int)r - 128);
    for (c = 0; c < K; ++c) gate[c] = (int8_t)((int)(c % 256) - 128);
    for (i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
        mnv3_q8_gate g;
        mnv3_q8_params prm;
        memset(&g, 0, sizeof g);
        g.gate = gate;
        g.x_zp = cases[i].x_zp;
        g.gate_zp = cases[i].gate_zp;
        g.act_lo = cases[i].lo;
        g.act_hi = cases[i].hi;
        CHECK(mnv3_q8_mul_from_real(cases[i].real, &g.qmul) == 0);
        memset(&prm, 0, sizeof prm);
        prm.gate = g;
        mnv3_q8_vmul_of(g.qmul, &prm.gate_v);
        prm.gate_plain = mnv3_q8_plain_mul(g.qmul);
        prm.gate_splits = mnv3_q8_gate_splits(&g);
        split_cases += (uint32_t)prm.gate_splits;
        if (prm.gate_splits) mnv3_q8_gate_split(&g, gate, K, STRIDE, split);
        for (by_split = 0; by_split <= (uint32_t)prm.gate_splits; ++by_split)
            for (f = 0; f < 3; ++f) {
                mnv3_q8_prepare_args a;
                const mnv3_q8_format format = (mnv3_q8_format)f;
                const size_t row_bytes = STRIDE * (format == MNV3_Q8_A_S16 ? 2u : 1u);
                memset(&a, 0, sizeof a);
                a.x = x;
                a.x_stride = K;
                a.rows = ROWS;
                a.k = K;
                a.kpad = STRIDE;
                a.gate = &g;
                a.params = &prm;
                a.gate_split = by_split ? split : NULL;
                a.gate_split_stride = STRIDE;
                a.in_zp = (int32_t)i * 37 % 256 - 128;
                a.format = format;
                a.dst_stride = row_bytes;
                a.dst = want;
                a.row_sums = want_sums;
                mnv3_q8_prepare_rows_portable(&a);
                memset(got, 0x5A, sizeof got);
                a.dst = got;
                a.row_sums = got_sums;
                im->ops->prepare_rows(&a);
                for (r = 0; r < ROWS; ++r)
                    if ((memcmp(got + r * row_bytes, want + r * row_bytes, row_bytes) ||
                         (format != MNV3_Q8_A_S16 && got_sums[r] != want_sums[r])) &&
                        bad++ < 5)
                        fprintf(stderr, "  %s: gate case %u, format %u, split %u: x = %d differs\n",
                                set->name, i, f, by_split, (int)r - 128);
            }
    }
    CHECK_MSG(bad == 0, "%s: %u gated rows differ from the portable ones", set->name, bad);
    CHECK_MSG(!im->ops->reads_gate_split || split_cases >= 8,
              "%s: only %u gate cases take the split", set->name, split_cases);
}

/* The set's residual ADD against TFLite's arithmetic for every pair of input bytes (and a
 * tail past a whole vector), on parameters inside and outside what the inputs' split
 * admits (mnv3_q8_add_splits): an input at the largest scale (its multiplier exactly 1/2,
 * no right shift), rescaled inputs exactly halfway, tiny and extreme scales, zero points
 * at both ends, a multiplier below 2^11, an output multiplier that shifts left, a narrow
 * activation range. */
static void add_set(const mnv3_kernel_set *set, const mnv3_kernels *k) {
    static const struct {
        double a, b, out;
        int32_t a_zp, b_zp, out_zp, lo, hi;
    } cases[] = {
        {0.5, 0.31, 1.0 / 1048576 * 2.7, -128, 127, 3, -128, 127},
        {0.5, 0.5, 1.0 / 1048576 * 0.9, 127, -128, -128, -128, 127},
        {0.013, 0.5, 1.0 / 1048576 * 40.0, 0, 0, 0, -128, 127},
        {0.25, 0.4999, 1.0 / 1048576 * 1.3, -5, 9, 17, -60, 90},
        {3e-9, 0.5, 1.0 / 1048576 * 1.1, -128, -128, 127, -128, 127},
        {0.5, 2e-10, 1.0 / 1048576 * 0.6, 77, -3, -20, -128, 127},
        /* multipliers 2^30 + 2^11, right shifts 1 and 3: rescaled inputs that fall exactly
         * halfway, where TFLite rounds away from zero; an output scale that lets a
         * difference of one show where the two nearly cancel (b = -4a) */
        {0.25 + 1.0 / 2097152, 0.0625 + 1.0 / 8388608, 0.7, 0, 0, 0, -128, 127},
        {0.5, 0.37, 3.0, -128, 127, 0, -128, 127},
        {0.5, 0.37, 0.0, 0, 0, 0, -128, 127},
    };
    enum { N = 65536 + 13 };
    const mnv3_q8_gemm_impl *im = (const mnv3_q8_gemm_impl *)k->row[MNV3_ROW_POINTWISE]->impl;
    static int8_t a[N], b[N], got[N];
    mnv3_q8_add_split splits[2];
    uint32_t i, j, bad = 0, split_cases = 0;
    if (!im || !im->ops->add) return;
    for (j = 0; j < N; ++j) {
        a[j] = (int8_t)(j % 256);
        b[j] = (int8_t)(j / 256 % 256);
    }
    for (i = 0; i < sizeof cases / sizeof cases[0] + 1u; ++i) {
        mnv3_q8_add p;
        memset(&p, 0, sizeof p);
        if (i < sizeof cases / sizeof cases[0]) {
            CHECK(mnv3_q8_mul_from_real(cases[i].a, &p.a_mul) == 0);
            CHECK(mnv3_q8_mul_from_real(cases[i].b, &p.b_mul) == 0);
            CHECK(mnv3_q8_mul_from_real(cases[i].out, &p.out_mul) == 0);
            p.a_zp = cases[i].a_zp;
            p.b_zp = cases[i].b_zp;
            p.out_zp = cases[i].out_zp;
            p.act_lo = cases[i].lo;
            p.act_hi = cases[i].hi;
        } else { /* a multiplier below 2^11: not split */
            p.a_mul.multiplier = 2047;
            p.b_mul.multiplier = 1 << 30;
            p.b_mul.shift = -2;
            CHECK(mnv3_q8_mul_from_real(1.0 / 1048576 * 3.0, &p.out_mul) == 0);
            p.act_lo = -128;
            p.act_hi = 127;
        }
        p.left_shift = 20;
        split_cases += (uint32_t)mnv3_q8_add_splits(&p, splits);
        memset(got, 0x5A, sizeof got);
        im->ops->add(a, b, N, &p, got);
        for (j = 0; j < N; ++j)
            if (got[j] != naive_add(&p, a[j], b[j]) && bad++ < 5)
                fprintf(stderr, "  %s: add case %u: (%d, %d) gives %d, want %d\n", set->name, i,
                        a[j], b[j], got[j], naive_add(&p, a[j], b[j]));
    }
    CHECK_MSG(bad == 0, "%s: %u residual ADD bytes differ from TFLite's arithmetic", set->name,
              bad);
    CHECK_MSG(split_cases >= 7, "%s: only %u ADD cases take the split", set->name, split_cases);
}

/* Every int8 set of the build: the ones the CPU runs, each forced on its own. */
static void sets_suite(void) {
    uint32_t count, i;
    const mnv3_kernel_set *const *sets = mnv3_kernel_sets(&count);
    for (i = 0; i < count; ++i) {
        mnv3_kernels k;
        uint32_t r, has_q8 = 0;
        for (r = 0; sets[i]->rows[r]; ++r) has_q8 |= sets[i]->rows[r]->arith == MNV3_DTYPE_I8;
        if (!has_q8 || sets[i] == &mnv3_kernel_set_reference) continue;
        if (!mnv3_kernels_resolve_set(sets[i], MNV3_DTYPE_I8, MNV3_DTYPE_I8, &k)) {
            SKIP("int8 kernel set %s: this CPU does not run it", sets[i]->name);
            continue;
        }
        printf("int8 kernel set %s: %s, %s, %s, %s\n", sets[i]->name,
               k.row[MNV3_ROW_POINTWISE]->name, k.row[MNV3_ROW_DEPTHWISE]->name,
               k.row[MNV3_ROW_CONV]->name, k.row[MNV3_ROW_FC]->name);
        requantize_set(sets[i], &k);
        gate_set(sets[i], &k);
        add_set(sets[i], &k);
        set_suite(sets[i], &k);
    }
}

/* Every set id the CPU runs resolves int8 rows, and float types resolve no int8 rows. */
static void resolve_suite(void) {
    uint32_t isa, kind;
    for (isa = 1; isa < mnv3_isa_count(); ++isa) {
        mnv3_kernels k;
        int q8 = 1, f32 = 1;
        if (!mnv3_isa_available((mnv3_isa)isa)) continue;
        CHECK_MSG(mnv3_kernels_resolve((mnv3_isa)isa, MNV3_DTYPE_I8, MNV3_DTYPE_I8, &k),
                  "set %s resolves no int8 rows", mnv3_isa_name((mnv3_isa)isa));
        for (kind = 0; kind < MNV3_ROW_KINDS; ++kind) q8 &= k.row[kind]->arith == MNV3_DTYPE_I8;
        CHECK(q8);
        CHECK(mnv3_kernels_resolve((mnv3_isa)isa, MNV3_DTYPE_F32, MNV3_DTYPE_F32, &k));
        for (kind = 0; kind < MNV3_ROW_KINDS; ++kind) f32 &= k.row[kind]->arith == MNV3_DTYPE_F32;
        CHECK(f32);
    }
}

int main(void) {
    quick = getenv("MNV3_TEST_QUICK") != NULL;
    tr_seed(0x2545F4914F6CDD1Dull);
    requantize_suite();
    reference_suite();
    resolve_suite();
    sets_suite();
    return check_summary("test_kernels_q8");
}
