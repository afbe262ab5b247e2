/* The int8 drivers: everything about an int8 layer that is not one tile of
 * arithmetic, written once for every kernel set (q8_impl.h has the scheme):
 *   pointwise  row chunks prepared into the workspace (SE gate, A format, K padding,
 *              row sums for a weight zero point), panels, balanced row tiles, then LUT,
 *              residual ADD, store and channel sums on the bytes a tile produced;
 *   stem       tiles of output pixels x panels whose taps the microkernel reads from the
 *              input rows in place, or from a window of them where the image ends;
 *   fc         the pooled vector prepared once, then one-row tiles;
 *   depthwise  output rows, input rows through the ring, interior columns, LUT and sums.
 * Also the packers of the GEMM and depthwise layouts, which fold the zero points. */
#include <string.h>

#include "base/checked.h"
#include "kernels/q8_impl.h"
#include "kernels/q8_scalar.h"

#if defined(__GNUC__)
#define ALIGN64 __attribute__((aligned(64)))
#else
#define ALIGN64
#endif

#define round_up_u32 mnv3_round_up_u32
static size_t round_up_size(size_t x, size_t m) { return (x + m - 1) / m * m; }

/* ------------------------------------------------------------------------------------ */
/* Packing                                                                               */
/* ------------------------------------------------------------------------------------ */

/* A bound on |bias + sum over k of (x - in_zp) * (w_k - weight_zp)| for int8 x: the
 * accumulator the reference forms, whatever the packing folds. */
static int64_t acc_bound_of(int32_t bias, const int8_t *w, size_t n, int32_t weight_zp) {
    int64_t b = bias < 0 ? -(int64_t)bias : bias;
    size_t i;
    for (i = 0; i < n; ++i) {
        const int64_t d = (int64_t)w[i] - weight_zp;
        b += 255 * (d < 0 ? -d : d);
    }
    return b;
}

static uint32_t weight_bytes(const mnv3_q8_gemm_impl *im) {
    return im->weight_bytes ? im->weight_bytes : mnv3_q8_format_bytes(im->format);
}

/* Panel bytes: nr int32 biases, kpad x nr weights, the requantization arrays. Returns 0
 * when it does not fit in size_t. */
size_t mnv3_q8_gemm_panel_bytes(const mnv3_q8_gemm_impl *im, uint32_t k_total) {
    size_t w;
    if (!mnv3_size_mul4(round_up_u32(k_total, im->kr), im->nr, weight_bytes(im), 1, &w) ||
        !mnv3_size_add(w, (size_t)im->nr * 4u + mnv3_q8_rq_bytes(im->nr), &w))
        return 0;
    return w;
}

/* Where a panel's requantization arrays start. */
static size_t rq_offset(const mnv3_q8_gemm_impl *im, uint32_t k_total) {
    return (size_t)im->nr * 4u +
           (size_t)round_up_u32(k_total, im->kr) * im->nr * weight_bytes(im);
}

size_t mnv3_q8_gemm_packed_bytes(const mnv3_q8_gemm_impl *im, const mnv3_q8_weights *w,
                                 uint32_t k_total) {
    const size_t panel = mnv3_q8_gemm_panel_bytes(im, k_total);
    size_t total;
    if (!panel || !mnv3_size_mul((w->out_channels + im->nr - 1) / im->nr, panel, &total))
        return SIZE_MAX;
    return total;
}

void mnv3_q8_gemm_pack(const mnv3_q8_gemm_impl *im, const mnv3_q8_weights *w, uint32_t k_total,
                       void *packed) {
    const size_t panel = mnv3_q8_gemm_panel_bytes(im, k_total);
    const uint32_t nr = im->nr, interleave = im->interleave ? im->interleave : im->kr;
    const mnv3_q8_format format = im->format;
    const int w16 = format == MNV3_Q8_A_S16 && weight_bytes(im) == 2;
    const uint32_t N = w->out_channels;
    /* Prepared values are x + a_off; see q8_impl.h. */
    const int32_t zx = format == MNV3_Q8_A_U8 ? w->in_zp + 128 : w->in_zp;
    int64_t bound[MNV3_Q8_MAX_NR];
    uint32_t col, c, k;
    MNV3_ASSERT(nr <= MNV3_Q8_MAX_NR);
    for (col = 0; col < N; col += nr) {
        unsigned char *p = (unsigned char *)packed + (size_t)(col / nr) * panel;
        int32_t *bias = (int32_t *)(void *)p;
        int8_t *w8 = (int8_t *)(p + (size_t)nr * 4u);
        int16_t *wide = (int16_t *)(void *)w8;
        memset(p, 0, panel);
        for (c = 0; c < nr && col + c < N; ++c) {
            const int8_t *src = w->weight + (size_t)(col + c) * k_total;
            int32_t b = w->bias ? w->bias[col + c] : 0, wsum = 0;
            bound[c] = acc_bound_of(b, src, k_total, w->weight_zp);
            for (k = 0; k < k_total; ++k) {
                const size_t at = ((size_t)(k / interleave) * nr + c) * interleave + k % interleave;
                wsum += (int32_t)src[k] - w->weight_zp;
                if (w16)
                    wide[at] = (int16_t)(src[k] - w->weight_zp);
                else if (format == MNV3_Q8_A_S16)
                    w8[at] = (int8_t)(src[k] - w->weight_zp); /* mnv3_q8_fc_impl: it fits */
                else
                    w8[at] = src[k];
            }
            if (format != MNV3_Q8_A_S16)
                b = (int32_t)((uint32_t)b - (uint32_t)zx * (uint32_t)wsum);
            bias[c] = b;
        }
        mnv3_q8_rq_fill((int32_t *)(void *)(p + rq_offset(im, k_total)), w->qmul, col, nr, N,
                        bound);
    }
}

size_t mnv3_q8_dw_packed_bytes(const mnv3_q8_weights *w, uint32_t group, uint32_t wbytes) {
    const uint32_t taps = w->kernel * w->kernel;
    size_t per_group, total;
    if (!mnv3_size_mul4(taps, group, wbytes, 1, &per_group) ||
        !mnv3_size_add(per_group, (size_t)group * 4u, &per_group) ||
        !mnv3_size_mul((w->out_channels + group - 1) / group, per_group, &total))
        return SIZE_MAX;
    return total;
}

/* Per group of channels: int32 biases, then per tap the group's w - weight_zp, as int16
 * (wbytes 2) or as an int32 whose low half is that int16 and high half zero (wbytes 4,
 * for multiplies of 16-bit pairs that leave the high half out). */
void mnv3_q8_dw_pack(const mnv3_q8_weights *w, uint32_t group, uint32_t wbytes, void *packed) {
    const uint32_t taps = w->kernel * w->kernel, C = w->out_channels;
    const size_t per_group = (size_t)taps * group * wbytes + (size_t)group * 4u;
    uint32_t g, c, t;
    for (g = 0; g < C; g += group) {
        unsigned char *p = (unsigned char *)packed + (size_t)(g / group) * per_group;
        int32_t *bias = (int32_t *)(void *)p;
        unsigned char *wp = p + (size_t)group * 4u;
        memset(p, 0, per_group);
        for (c = 0; c < group && g + c < C; ++c) {
            bias[c] = w->bias ? w->bias[g + c] : 0;
            for (t = 0; t < taps; ++t) {
                const int16_t v = (int16_t)(w->weight[(size_t)t * C + g + c] - w->weight_zp);
                if (wbytes == 2)
                    ((int16_t *)(void *)wp)[(size_t)t * group + c] = v;
                else
                    ((int32_t *)(void *)wp)[(size_t)t * group + c] = (int32_t)(uint16_t)v;
            }
        }
    }
}

/* The rows' packing, from their impl. */
static uint32_t gemm_k_total(const mnv3_layer *l) {
    return l->kernel * l->kernel * l->in_channels;
}

size_t mnv3_q8_gemm_row_packed_bytes(const mnv3_row *row, const mnv3_layer *l) {
    const mnv3_q8_gemm_impl *im = (const mnv3_q8_gemm_impl *)row->impl;
    const mnv3_q8_weights w = mnv3_q8_weights_of(l);
    return mnv3_q8_gemm_packed_bytes(im, &w, gemm_k_total(l));
}

void mnv3_q8_gemm_row_pack(const mnv3_row *row, const mnv3_layer *l, void *packed) {
    const mnv3_q8_gemm_impl *im = (const mnv3_q8_gemm_impl *)row->impl;
    const mnv3_q8_weights w = mnv3_q8_weights_of(l);
    mnv3_q8_gemm_pack(im, &w, gemm_k_total(l), packed);
}

size_t mnv3_q8_dw_row_packed_bytes(const mnv3_row *row, const mnv3_layer *l) {
    const mnv3_q8_dw_impl *im = (const mnv3_q8_dw_impl *)row->impl;
    const mnv3_q8_weights w = mnv3_q8_weights_of(l);
    return im->packed_bytes ? im->packed_bytes(&w)
                            : mnv3_q8_dw_packed_bytes(&w, im->group, im->wbytes);
}

void mnv3_q8_dw_row_pack(const mnv3_row *row, const mnv3_layer *l, void *packed) {
    const mnv3_q8_dw_impl *im = (const mnv3_q8_dw_impl *)row->impl;
    const mnv3_q8_weights w = mnv3_q8_weights_of(l);
    if (im->pack)
        im->pack(&w, packed);
    else
        mnv3_q8_dw_pack(&w, im->group, im->wbytes, packed);
}

/* ------------------------------------------------------------------------------------ */
/* Parameters                                                                            */
/* ------------------------------------------------------------------------------------ */

size_t mnv3_q8_params_bytes(const mnv3_row *row, const mnv3_layer *l) {
    (void)row;
    (void)l;
    return sizeof(mnv3_q8_params);
}

void mnv3_q8_prepare(const mnv3_row *row, const mnv3_layer *l, void *params) {
    mnv3_q8_params *p = (mnv3_q8_params *)params;
    (void)row;
    memset(p, 0, sizeof *p);
    p->bias = (const int32_t *)l->bias;
    p->in_zp = l->in_zp;
    p->weight_zp = l->weight_zp;
    p->requant = l->requant;
    p->gate = l->gate;
    p->gate.gate = NULL;
    p->add = l->add;
    mnv3_q8_vmul_of(l->add.a_mul, &p->add_v[0]);
    mnv3_q8_vmul_of(l->add.b_mul, &p->add_v[1]);
    mnv3_q8_vmul_of(l->add.out_mul, &p->add_v[2]);
    p->add_plain = mnv3_q8_add_plain(&l->add);
    mnv3_q8_vmul_of(l->gate.qmul, &p->gate_v);
    p->gate_plain = mnv3_q8_plain_mul(l->gate.qmul);
    p->gate_splits = mnv3_q8_gate_splits(&l->gate);
    p->add_splits = mnv3_q8_add_splits(&l->add, p->add_in);
}

static int add_input_splits(int32_t zp, mnv3_q8_mul m) {
    return m.multiplier >= 2048 && m.shift <= 0 && m.shift >= -31 && zp >= -128 && zp <= 127;
}

static void add_input_split(int32_t zp, mnv3_q8_mul m, mnv3_q8_add_split *out) {
    const int32_t s = -m.shift;
    out->zp = zp;
    out->hi = m.multiplier >> 11;
    out->lo = m.multiplier & 2047;
    out->hi_add = (s >= 1 ? (int32_t)1 << (s - 1) : 0) - zp * out->hi;
    out->lo_add = 1024 - zp * out->lo;
    out->neg = s >= 1 ? -1 : 0;
    out->shift = s;
}

int mnv3_q8_add_splits(const mnv3_q8_add *p, mnv3_q8_add_split out[2]) {
    if (p->left_shift != 20 || !add_input_splits(p->a_zp, p->a_mul) ||
        !add_input_splits(p->b_zp, p->b_mul) || !mnv3_q8_plain_mul(p->out_mul))
        return 0;
    add_input_split(p->a_zp, p->a_mul, &out[0]);
    add_input_split(p->b_zp, p->b_mul, &out[1]);
    return 1;
}

static int64_t abs64(int64_t v) { return v < 0 ? -v : v; }

int mnv3_q8_gate_splits(const mnv3_q8_gate *g) {
    const int32_t s = -g->qmul.shift;
    int64_t d_max, m_max, hi_max, a_max;
    if (g->qmul.multiplier == 0 || s < 1 || s > 16 || g->x_zp < -128 || g->x_zp > 127 ||
        g->gate_zp < -128 || g->gate_zp > 127)
        return 0;
    d_max = 128 + abs64(g->x_zp);
    m_max = 128 + abs64(g->gate_zp);
    hi_max = m_max * abs64(g->qmul.multiplier) / 65536 + 1;
    /* |A| <= d_max * |hi| + (2^30 + d_max * 2^16) / 2^16 */
    a_max = d_max * hi_max + ((int64_t)1 << 14) + d_max;
    return a_max + ((int64_t)1 << (s + 14)) + ((int64_t)1 << 15) <= INT32_MAX;
}

void mnv3_q8_gate_split(const mnv3_q8_gate *g, const int8_t *gate, uint32_t k, size_t stride,
                        int32_t *split) {
    const int64_t round = (int64_t)1 << (14 - g->qmul.shift);
    uint32_t c;
    for (c = 0; c < k; ++c) {
        const int64_t product = ((int64_t)gate[c] - g->gate_zp) * g->qmul.multiplier;
        const int64_t lo = product & 0xFFFF, hi = (product - lo) / 65536;
        split[c] = (int32_t)hi;
        split[stride + c] = (int32_t)lo;
        split[2 * stride + c] = (int32_t)(((int64_t)1 << 30) - g->x_zp * lo);
        split[3 * stride + c] = (int32_t)(uint32_t)(uint64_t)(round - g->x_zp * hi);
    }
}

/* ------------------------------------------------------------------------------------ */
/* Portable helpers                                                                      */
/* ------------------------------------------------------------------------------------ */

void mnv3_q8_vmul_of(mnv3_q8_mul m, mnv3_q8_vmul *v) {
    v->mult = m.multiplier;
    v->left = m.shift > 0 ? m.shift : 0;
    v->right = m.shift > 0 ? 0 : -m.shift;
    v->mask = (int32_t)(((uint32_t)1 << v->right) - 1u);
    v->half = v->mask >> 1;
}

void mnv3_q8_rq_fill(int32_t *dst, const mnv3_q8_mul *qmul, uint32_t col, uint32_t nr,
                     uint32_t n, const int64_t *acc_bound) {
    int32_t plain = 1, short_rounding = acc_bound != NULL;
    uint32_t c;
    for (c = 0; c < nr; ++c) {
        const mnv3_q8_mul m = col + c < n ? qmul[col + c] : (mnv3_q8_mul){0, 0};
        mnv3_q8_vmul v;
        mnv3_q8_vmul_of(m, &v);
        if (!mnv3_q8_plain_mul(m)) plain = 0;
        /* padding columns are never stored: any rounding serves them */
        if (acc_bound && col + c < n && !mnv3_q8_rounds_short(m, acc_bound[c]))
            short_rounding = 0;
        dst[c] = v.mult;
        dst[nr + c] = v.left;
        dst[2 * nr + c] = v.right;
        dst[3 * nr + c] = -v.right;
        dst[4 * nr + c] = v.mask;
        dst[5 * nr + c] = v.half;
    }
    dst[6 * nr] = plain;
    dst[6 * nr + 1] = plain && short_rounding;
}

void mnv3_q8_rq_view(mnv3_q8_rq_table *t, const void *src, uint32_t nr,
                     const mnv3_q8_requant *r) {
    const int32_t *a = (const int32_t *)src;
    t->mult = a;
    t->left = a + nr;
    t->right = a + 2 * nr;
    t->neg_right = a + 3 * nr;
    t->mask = a + 4 * nr;
    t->half = a + 5 * nr;
    t->plain = a[6 * nr];
    t->rounds_short = a[6 * nr + 1];
    t->out_zp = r->out_zp;
    t->lo = r->act_lo;
    t->hi = r->act_hi;
}

void mnv3_q8_prepare_row_portable(const int8_t *x, uint32_t k, uint32_t kpad,
                                  const mnv3_q8_gate *gate, int32_t in_zp,
                                  mnv3_q8_format format, void *dst, int32_t *row_sum) {
    int32_t sum = 0;
    uint32_t i;
    for (i = 0; i < k; ++i) {
        const int8_t v = gate ? mnv3_q8_gated_byte(gate, in_zp, x[i], i) : x[i];
        switch (format) {
        case MNV3_Q8_A_S16: ((int16_t *)dst)[i] = (int16_t)(v - in_zp); break;
        case MNV3_Q8_A_U8:
            ((uint8_t *)dst)[i] = (uint8_t)(v + 128);
            sum += v + 128;
            break;
        case MNV3_Q8_A_S8:
        default:
            ((int8_t *)dst)[i] = v;
            sum += v;
            break;
        }
    }
    memset((char *)dst + (size_t)k * mnv3_q8_format_bytes(format), 0,
           (size_t)(kpad - k) * mnv3_q8_format_bytes(format));
    if (row_sum) *row_sum = sum;
}

void mnv3_q8_prepare_rows_portable(const mnv3_q8_prepare_args *p) {
    uint32_t r;
    for (r = 0; r < p->rows; ++r)
        mnv3_q8_prepare_row_portable(p->x + (size_t)r * p->x_stride, p->k, p->kpad, p->gate,
                                     p->in_zp, p->format, p->dst + (size_t)r * p->dst_stride,
                                     p->row_sums ? &p->row_sums[r] : NULL);
}

typedef struct dw_cache {
    const int8_t *key[MNV3_DW_MAX_KERNEL]; /* the input row each slot holds (NULL: none) */
} dw_cache;
typedef char dw_cache_fits[sizeof(dw_cache) <= MNV3_Q8_DW_CACHE_HEADER ? 1 : -1];

void mnv3_q8_dw_cached_rows(const mnv3_q8_dw_out_row *r, size_t slot_bytes, size_t zero_bytes,
                            mnv3_q8_dw_convert convert, const void *ctx,
                            const int16_t **slot) {
    const uint32_t K = r->a->kernel;
    unsigned char *ws = (unsigned char *)r->a->workspace;
    dw_cache *cache = (dw_cache *)(void *)ws;
    uint32_t ky, s, used = 0;
    int16_t *slots[MNV3_DW_MAX_KERNEL + 1];
    for (s = 0; s <= K; ++s)
        slots[s] = (int16_t *)(void *)(ws + MNV3_Q8_DW_CACHE_HEADER + s * slot_bytes);
    if (r->first) {
        for (s = 0; s < K; ++s) cache->key[s] = NULL;
        memset(slots[K], 0, zero_bytes);
    }
    for (ky = 0; ky < K; ++ky) {
        slot[ky] = slots[K];
        for (s = 0; r->rows[ky] && s < K; ++s)
            if (cache->key[s] == r->rows[ky]) {
                slot[ky] = slots[s];
                used |= 1u << s;
            }
    }
    for (ky = 0; ky < K; ++ky) {
        if (!r->rows[ky] || slot[ky] != slots[K]) continue;
        s = 0;
        while (used >> s & 1u) ++s;
        convert(r->a, r->rows[ky], slots[s], ctx);
        cache->key[s] = r->rows[ky];
        used |= 1u << s;
        slot[ky] = slots[s];
        /* the same input row at another tap (never in a well-formed call) reuses it */
        for (s = ky + 1u; s < K; ++s)
            if (r->rows[s] == r->rows[ky]) slot[s] = slot[ky];
    }
}

void mnv3_q8_dw_channels_portable(const mnv3_q8_dw_out_row *r, uint32_t c_begin, uint32_t group,
                                  uint32_t wbytes) {
    const mnv3_q8_dw_call *a = r->a;
    const uint32_t C = a->channels, K = a->kernel, taps = K * K;
    const size_t group_bytes = (size_t)group * ((size_t)wbytes * taps + 4u);
    uint32_t ox, c, ky, kx;
    for (c = c_begin; c < C; ++c) {
        const unsigned char *wg = (const unsigned char *)r->w + (size_t)(c / group) * group_bytes;
        const int32_t bias = ((const int32_t *)(const void *)wg)[c % group];
        const unsigned char *wt = wg + (size_t)group * 4u;
        for (ox = 0; ox < a->out_width; ++ox) {
            const long ix0 = (long)ox * a->stride - (long)a->pad_left;
            int32_t acc = bias;
            for (ky = 0; ky < K; ++ky) {
                if (!r->rows[ky]) continue;
                for (kx = 0; kx < K; ++kx) {
                    const long ix = ix0 + (long)kx;
                    const size_t at = (size_t)(ky * K + kx) * group + c % group;
                    int16_t w;
                    if (ix < 0 || ix >= (long)a->in_width) continue;
                    if (wbytes == 2)
                        w = ((const int16_t *)(const void *)wt)[at];
                    else
                        w = (int16_t)(uint16_t)((const int32_t *)(const void *)wt)[at];
                    acc = mnv3_q8_add_wrap(
                        acc, ((int32_t)r->rows[ky][(size_t)ix * C + c] - a->in_zp) * w);
                }
            }
            r->out[(size_t)ox * C + c] = (int8_t)mnv3_q8_clamp(
                mnv3_q8_add_wrap(mnv3_q8_requantize(acc, a->requant.qmul[c]), a->requant.out_zp),
                a->requant.act_lo, a->requant.act_hi);
        }
    }
}

void mnv3_q8_lut_portable(int8_t *x, size_t n, const int8_t *lut) {
    size_t i;
    for (i = 0; i < n; ++i) x[i] = lut[(uint8_t)(x[i] + 128)];
}

void mnv3_q8_add_portable(const int8_t *a, const int8_t *b, size_t n, const mnv3_q8_add *p,
                          int8_t *out) {
    size_t i;
    for (i = 0; i < n; ++i) out[i] = mnv3_q8_add_bytes(p, a[i], b[i]);
}

/* sums[c] += x[p * n + c] over pixels p, for c in [0, n). Blocks of 8 channels with a
 * fixed trip count, so that compilers vectorize it at -O2 on every target. */
static void column_sums(const int8_t *x, uint32_t pixels, uint32_t n, int32_t *sums) {
    uint32_t c, p, i;
    for (c = 0; c + 8u <= n; c += 8u) {
        int32_t acc[8];
        for (i = 0; i < 8u; ++i) acc[i] = sums[c + i];
        for (p = 0; p < pixels; ++p)
            for (i = 0; i < 8u; ++i) acc[i] += x[(size_t)p * n + c + i];
        for (i = 0; i < 8u; ++i) sums[c + i] = acc[i];
    }
    for (; c < n; ++c)
        for (p = 0; p < pixels; ++p) sums[c] += x[(size_t)p * n + c];
}

/* ------------------------------------------------------------------------------------ */
/* Tiles over prepared rows                                                              */
/* ------------------------------------------------------------------------------------ */

/* What a layer's tiles do after requantization: LUT, residual ADD, store, channel sums. */
typedef struct q8_post {
    const int8_t *lut;
    const int8_t *residual;      /* at the first row and column of the call */
    const mnv3_q8_params *params; /* the ADD */
    int8_t *output;              /* at the first row and column of the call; may be NULL */
    size_t out_stride;           /* of output and residual */
    int32_t *sums;               /* at the first column of the call; may be NULL */
} q8_post;

typedef struct q8_rows {
    const unsigned char *a;      /* prepared rows */
    size_t a_stride;
    const int32_t *terms;        /* per-row terms or NULL */
    uint32_t rows;
} q8_rows;

/* The steps of post that the tiles do (the fused ones, in order, up to the first that the
 * set does not fuse), the others left in *rest for passes. */
static q8_post fused_part(const mnv3_q8_gemm_impl *im, const q8_post *post, q8_post *rest) {
    q8_post in_tile = *post;
    int fuse = 1;
    *rest = *post;
    fuse = fuse && (!post->lut || (im->fused & MNV3_Q8_FUSE_LUT));
    if (fuse) rest->lut = NULL; else in_tile.lut = NULL;
    fuse = fuse && (!post->residual || (im->fused & MNV3_Q8_FUSE_ADD));
    if (fuse) rest->residual = NULL; else in_tile.residual = NULL;
    fuse = fuse && (!post->sums || (im->fused & MNV3_Q8_FUSE_SUMS));
    if (fuse) rest->sums = NULL; else in_tile.sums = NULL;
    return in_tile;
}

/* LUT, residual ADD and channel sums on n bytes of one output row, in that order. */
static void post_row(const mnv3_q8_ops *ops, const q8_post *post, int8_t *v, size_t at,
                     uint32_t n) {
    if (post->lut) (ops->lut ? ops->lut : mnv3_q8_lut_portable)(v, n, post->lut);
    if (post->residual)
        (ops->add ? ops->add : mnv3_q8_add_portable)(v, post->residual + at, n,
                                                     &post->params->add, v);
    if (post->sums) column_sums(v, 1, n, post->sums);
}

/* post_row over `rows` output rows of n bytes. Rows that follow each other in memory (the
 * call covers every output channel) go to the helpers as one span: small layers have rows
 * of 16 to 72 bytes, too short for their vector loops and their per-call setup. */
static void post_rows(const mnv3_q8_ops *ops, const q8_post *post, uint32_t rows, uint32_t n) {
    uint32_t i;
    if (post->out_stride != n || (size_t)rows * n > UINT32_MAX) {
        for (i = 0; i < rows; ++i) {
            const size_t at = (size_t)i * post->out_stride;
            post_row(ops, post, post->output + at, at, n);
        }
        return;
    }
    if (post->lut)
        (ops->lut ? ops->lut : mnv3_q8_lut_portable)(post->output, (size_t)rows * n, post->lut);
    if (post->residual)
        (ops->add ? ops->add : mnv3_q8_add_portable)(post->output, post->residual,
                                                     (size_t)rows * n, &post->params->add,
                                                     post->output);
    if (post->sums) column_sums(post->output, rows, n, post->sums);
}

/* Columns [col_begin, col_end) of rows r: col_begin is a multiple of nr. With an output,
 * tiles store into it and what they do not fuse runs afterwards over each row's whole
 * span, where vector helpers have room; without one (channel sums only), each tile goes
 * through a buffer. */
static void run_tiles(const mnv3_q8_gemm_impl *im, const q8_rows *r, const void *packed,
                      uint32_t k_total, uint32_t col_begin, uint32_t col_end,
                      const mnv3_q8_requant *rq, const q8_post *post, mnv3_prefetch_cursor *pf) {
    const mnv3_q8_ops *ops = im->ops;
    const uint32_t nr = im->nr, mr = im->mr;
    const size_t panel = mnv3_q8_gemm_panel_bytes(im, k_total);
    const size_t rq_at = rq_offset(im, k_total);
    const int direct = post->output != NULL;
    q8_post rest;
    const q8_post in_tile = fused_part(im, post, &rest);
    const int after = rest.lut || rest.residual || rest.sums;
    mnv3_q8_rq_table table ALIGN64;
    int8_t tmp[MNV3_Q8_MAX_MR * MNV3_Q8_MAX_NR] ALIGN64;
    mnv3_q8_gemm_tile t;
    const mnv3_tile_split split = mnv3_split_tiles(r->rows, mr);
    uint32_t col, i, tile;
    t.k = round_up_u32(k_total, im->kr);
    t.rq = &table;
    t.pf = &pf->pf;
    t.lut = in_tile.lut;
    t.residual_stride = post->out_stride;
    t.params = post->params;
    t.a_stride = r->a_stride;
    t.out_stride = direct ? post->out_stride : MNV3_Q8_MAX_NR;
    /* Each tile's pointers step on from the previous tile's: the loop runs once per 6 to
     * 8 rows of every panel, and its bookkeeping showed in profiles. */
    for (col = col_begin; col < col_end; col += nr) {
        const size_t at_col = col - col_begin;
        t.w = (const unsigned char *)packed + (size_t)(col / nr) * panel;
        mnv3_q8_rq_view(&table, (const unsigned char *)t.w + rq_at, nr, rq);
        t.nc = col_end - col < nr ? col_end - col : nr;
        t.sums = in_tile.sums ? in_tile.sums + at_col : NULL;
        t.a = r->a;
        t.row_terms = r->terms;
        t.residual = in_tile.residual ? in_tile.residual + at_col : NULL;
        t.out = direct ? post->output + at_col : tmp;
        for (tile = 0, i = 0; tile < split.count; ++tile) {
            const uint32_t m = mnv3_split_rows(&split, tile);
            uint32_t j;
            mnv3_prefetch_next(pf);
            t.pf_end = pf->pf_end;
            im->gemm[m - 1](&t);
            t.a = (const unsigned char *)t.a + (size_t)m * t.a_stride;
            if (t.row_terms) t.row_terms += m;
            if (t.residual) t.residual += (size_t)m * t.residual_stride;
            if (direct) {
                t.out += (size_t)m * t.out_stride;
            } else if (after) {
                for (j = 0; j < m; ++j) {
                    q8_post at = rest;
                    if (at.sums) at.sums += at_col;
                    post_row(ops, &at, tmp + (size_t)j * MNV3_Q8_MAX_NR,
                             (size_t)(i + j) * post->out_stride + at_col, t.nc);
                }
            }
            i += m;
        }
    }
    if (direct && after) post_rows(ops, &rest, r->rows, col_end - col_begin);
}

/* The gate's split (mnv3_q8_gate_split), made once per call when the set reads it: int32
 * arrays this many apart, four of them. */
static size_t gate_split_stride(uint32_t k) { return round_up_size(k, 16); }

/* Prepares rows[0, count) (each k_total bytes at src + r * src_stride) into the workspace
 * rows, with the per-row terms when the weights have a zero point. */
static void prepare_rows(const mnv3_q8_gemm_impl *im, const int8_t *src, size_t src_stride,
                         uint32_t count, uint32_t k_total, const mnv3_q8_gate *gate,
                         const int32_t *gate_split, const mnv3_q8_params *prm,
                         unsigned char *dst, size_t dst_stride, int32_t *terms) {
    mnv3_q8_prepare_args p;
    uint32_t r;
    p.x = src;
    p.x_stride = src_stride;
    p.rows = count;
    p.k = k_total;
    p.kpad = round_up_u32(k_total, im->kr);
    p.gate = gate;
    p.gate_split = gate_split;
    p.gate_split_stride = gate_split_stride(k_total);
    p.params = prm;
    p.in_zp = prm->in_zp;
    p.format = im->format;
    p.dst = dst;
    p.dst_stride = dst_stride;
    p.row_sums = terms;
    (im->ops->prepare_rows ? im->ops->prepare_rows : mnv3_q8_prepare_rows_portable)(&p);
    if (terms)
        for (r = 0; r < count; ++r)
            terms[r] = (int32_t)((uint32_t)-prm->weight_zp * (uint32_t)terms[r]);
}

static int needs_terms(const mnv3_q8_gemm_impl *im, int32_t weight_zp) {
    return im->format != MNV3_Q8_A_S16 && weight_zp != 0;
}

static size_t row_bytes(const mnv3_q8_gemm_impl *im, uint32_t k_total) {
    return round_up_size((size_t)round_up_u32(k_total, im->kr) * mnv3_q8_format_bytes(im->format), 64);
}

/* ------------------------------------------------------------------------------------ */
/* Pointwise                                                                             */
/* ------------------------------------------------------------------------------------ */

/* Rows prepared at once: every panel is applied to all of them before the next panel, so
 * a panel is reused from L1 by every row tile while the chunk's rows stay in L2. */
#define Q8_PW_CHUNK 64u

/* Whether a call makes the gate's split, given mnv3_q8_gate_splits of the layer's gate:
 * the workspace's size and the driver ask the same question. */
static int makes_gate_split(const mnv3_q8_gemm_impl *im, int gate_splits) {
    return im->ops->reads_gate_split && gate_splits;
}

size_t mnv3_q8_pointwise_workspace(const mnv3_row *row, const mnv3_layer *l, uint32_t in_width,
                                   uint32_t out_width) {
    const mnv3_q8_gemm_impl *im = (const mnv3_q8_gemm_impl *)row->impl;
    size_t rows, total, split = 0;
    (void)in_width;
    (void)out_width;
    if (makes_gate_split(im, mnv3_q8_gate_splits(&l->gate)) &&
        !mnv3_size_mul(gate_split_stride(l->in_channels), 16u, &split))
        return SIZE_MAX;
    if (!mnv3_size_mul(Q8_PW_CHUNK, row_bytes(im, l->in_channels), &rows) ||
        !mnv3_size_add(rows, Q8_PW_CHUNK * 4u, &total) || !mnv3_size_add(total, split, &total))
        return SIZE_MAX;
    return total;
}

void mnv3_q8_pointwise_driver(const mnv3_row *row, const mnv3_pointwise_args *a) {
    const mnv3_q8_gemm_impl *im = (const mnv3_q8_gemm_impl *)row->impl;
    const mnv3_q8_params *prm = (const mnv3_q8_params *)a->params;
    const uint32_t K = a->in_channels;
    const size_t stride = row_bytes(im, K);
    const int8_t *input = (const int8_t *)a->input, *residual = (const int8_t *)a->residual;
    int8_t *output = (int8_t *)a->output;
    unsigned char *ws = (unsigned char *)a->workspace;
    int32_t *terms = needs_terms(im, prm->weight_zp)
                         ? (int32_t *)(void *)(ws + Q8_PW_CHUNK * stride)
                         : NULL;
    mnv3_q8_gate gate = prm->gate;
    int32_t *split = NULL;
    mnv3_prefetch_cursor pf;
    q8_post post;
    q8_rows r;
    const mnv3_chunk_split chunks = mnv3_split_chunks(a->pixel_end - a->pixel_begin, Q8_PW_CHUNK);
    size_t p0 = a->pixel_begin, ci;
    MNV3_ASSERT(a->oc_begin % im->nr == 0 && a->oc_end <= a->out_channels);
    MNV3_ASSERT(ws != NULL);
    gate.gate = (const int8_t *)a->gate;
    if (gate.gate && makes_gate_split(im, prm->gate_splits)) {
        split = (int32_t *)(void *)(ws + Q8_PW_CHUNK * stride + Q8_PW_CHUNK * 4u);
        mnv3_q8_gate_split(&gate, gate.gate, K, gate_split_stride(K), split);
    }
    mnv3_prefetch_start(a, &pf);
    post.lut = prm->requant.lut;
    post.params = prm;
    post.out_stride = a->out_stride;
    post.sums = a->channel_sums ? (int32_t *)a->channel_sums + a->oc_begin : NULL;
    r.a = ws;
    r.a_stride = stride;
    r.terms = terms;
    for (ci = 0; ci < chunks.count; ++ci) {
        const uint32_t rows = (uint32_t)mnv3_chunk_split_rows(&chunks, ci);
        prepare_rows(im, input + p0 * a->in_stride, a->in_stride, rows, K,
                     gate.gate ? &gate : NULL, split, prm, ws, stride, terms);
        r.rows = rows;
        post.residual = residual ? residual + p0 * a->out_stride + a->oc_begin : NULL;
        post.output = output ? output + p0 * a->out_stride + a->oc_begin : NULL;
        run_tiles(im, &r, a->packed, K, a->oc_begin, a->oc_end, &prm->requant,
                  &post, &pf);
        p0 += rows;
    }
}

/* ------------------------------------------------------------------------------------ */
/* Dense convolution (the stem): taps read in place                                      */
/* ------------------------------------------------------------------------------------ */

/* Taps of one kernel row (kernel * in_channels), 0 when that does not fit in 32 bits. */
static uint32_t conv_row_taps(const mnv3_layer *l) {
    size_t taps;
    return mnv3_size_mul(l->kernel, l->in_channels, &taps) && taps <= UINT32_MAX ? (uint32_t)taps
                                                                                : 0;
}

static uint32_t conv_groups(const mnv3_q8_conv_impl *im, uint32_t row_taps) {
    return (row_taps + im->group - 1) / im->group;
}

/* Bytes of one packed panel (q8_impl.h), 0 when they do not fit in size_t. */
static size_t conv_panel_bytes(const mnv3_q8_conv_impl *im, uint32_t kernel, uint32_t row_taps) {
    size_t w;
    if (!mnv3_size_mul4(kernel, conv_groups(im, row_taps), (size_t)im->nr * im->group, 2u, &w) ||
        !mnv3_size_add(w, (size_t)im->nr * 4u + mnv3_q8_rq_bytes(im->nr), &w))
        return 0;
    return w;
}

size_t mnv3_q8_conv_row_packed_bytes(const mnv3_row *row, const mnv3_layer *l) {
    const mnv3_q8_conv_impl *im = (const mnv3_q8_conv_impl *)row->impl;
    const uint32_t taps = conv_row_taps(l);
    const size_t panel = taps ? conv_panel_bytes(im, l->kernel, taps) : 0;
    size_t total;
    if (!panel || !mnv3_size_mul((l->out_channels + im->nr - 1) / im->nr, panel, &total))
        return SIZE_MAX;
    return total;
}

void mnv3_q8_conv_row_pack(const mnv3_row *row, const mnv3_layer *l, void *packed) {
    const mnv3_q8_conv_impl *im = (const mnv3_q8_conv_impl *)row->impl;
    const mnv3_q8_weights w = mnv3_q8_weights_of(l);
    const uint32_t K = l->kernel, taps = conv_row_taps(l), N = l->out_channels;
    const uint32_t nr = im->nr, g = im->group, groups = conv_groups(im, taps);
    const size_t panel = conv_panel_bytes(im, K, taps), rq_at = panel - mnv3_q8_rq_bytes(nr);
    int64_t bound[MNV3_Q8_MAX_NR];
    uint32_t col, c, ky, t;
    MNV3_ASSERT(panel != 0 && rq_at % 4u == 0 && nr <= MNV3_Q8_MAX_NR);
    for (col = 0; col < N; col += nr) {
        unsigned char *p = (unsigned char *)packed + (size_t)(col / nr) * panel;
        int32_t *bias = (int32_t *)(void *)p;
        int16_t *wp = (int16_t *)(void *)(p + (size_t)nr * 4u);
        memset(p, 0, panel);
        for (c = 0; c < nr && col + c < N; ++c) {
            const int8_t *src = w.weight + (size_t)(col + c) * K * taps; /* [ky][kx][ci] */
            uint32_t wsum = 0;
            bound[c] = acc_bound_of(w.bias ? w.bias[col + c] : 0, src, (size_t)K * taps,
                                    w.weight_zp);
            for (ky = 0; ky < K; ++ky)
                for (t = 0; t < taps; ++t) {
                    const int16_t v = (int16_t)(src[(size_t)ky * taps + t] - w.weight_zp);
                    wp[(((size_t)ky * groups + t / g) * nr + c) * g + t % g] = v;
                    wsum += (uint32_t)(int32_t)v;
                }
            /* exact modulo 2^32, as the reference's int32 accumulator */
            bias[c] = (int32_t)((uint32_t)(w.bias ? w.bias[col + c] : 0) -
                                (uint32_t)w.in_zp * wsum);
        }
        mnv3_q8_rq_fill((int32_t *)(void *)(p + rq_at), w.qmul, col, nr, N, bound);
    }
}

/* Bytes a pixel's kernel row is read as. */
static size_t conv_reach(const mnv3_q8_conv_impl *im, uint32_t row_taps) {
    return round_up_size(row_taps, im->chunk);
}

/* The workspace: a row of in_zp bytes as long as an input row, read in place of the rows
 * in the vertical padding at the same offsets; then the window, the kernel rows of up to
 * window_pixels pixels' taps, conv_reach bytes each. */
size_t mnv3_q8_conv_workspace(const mnv3_row *row, const mnv3_layer *l, uint32_t in_width,
                              uint32_t out_width) {
    const mnv3_q8_conv_impl *im = (const mnv3_q8_conv_impl *)row->impl;
    const uint32_t taps = conv_row_taps(l);
    size_t zp_row, window, total;
    (void)out_width;
    if (!taps || !mnv3_size_mul(in_width, l->in_channels, &zp_row) ||
        !mnv3_size_align(zp_row, 64u, &zp_row) ||
        !mnv3_size_mul4(l->kernel, im->window_pixels, conv_reach(im, taps), 1u, &window) ||
        !mnv3_size_add(zp_row, window, &total))
        return SIZE_MAX;
    return total;
}

/* One call's walk: the kernel rows of the current output row and where the window is. */
typedef struct conv_walk {
    const mnv3_conv_args *a;
    const mnv3_q8_conv_impl *im;
    const mnv3_q8_params *prm;
    uint32_t taps;
    size_t reach, panel;
    const int8_t *kernel_rows[MNV3_CONV_MAX_KERNEL]; /* input row, or the in_zp row */
    long iy0;
    int8_t *window;
} conv_walk;

/* Output columns [*lo, *hi) whose taps the microkernel may read in place: an NHWC input,
 * every tap inside the row and the chunked reads too (both 0 when there are none). */
static void conv_in_place(const mnv3_conv_args *a, size_t reach, uint32_t *lo, uint32_t *hi) {
    const size_t Ci = a->in_channels, row = (size_t)a->in_width * Ci;
    *lo = *hi = 0;
    if (a->in_chan_stride == 1 && a->in_col_stride == Ci && row >= reach) {
        const size_t last_ix = (row - reach) / Ci; /* the last first column that fits */
        const uint32_t l = (a->pad_left + a->stride - 1) / a->stride;
        const size_t h = (last_ix + a->pad_left) / a->stride + 1;
        const uint32_t hh = h < a->out_width ? (uint32_t)h : a->out_width;
        if (hh > l) {
            *lo = l;
            *hi = hh;
        }
    }
}

/* The taps of pixels [ox, ox + m) into the window, in_zp outside the image, zeros after
 * each kernel row's taps (the reads past them meet zero weights). */
static void conv_fill_window(const conv_walk *c, uint32_t ox, uint32_t m) {
    const mnv3_conv_args *a = c->a;
    const uint32_t K = a->kernel, Ci = a->in_channels;
    const int8_t *in = (const int8_t *)a->input;
    const int8_t zp = (int8_t)c->prm->in_zp;
    uint32_t ky, j, kx, ci;
    for (ky = 0; ky < K; ++ky) {
        const long iy = c->iy0 + (long)ky;
        const int row_in = iy >= 0 && iy < (long)a->in_height;
        for (j = 0; j < m; ++j) {
            const long ix0 = (long)(ox + j) * a->stride - (long)a->pad_left;
            int8_t *d = c->window + ((size_t)ky * m + j) * c->reach;
            for (kx = 0; kx < K; ++kx) {
                const long ix = ix0 + (long)kx;
                const int8_t *tap = row_in && ix >= 0 && ix < (long)a->in_width
                                        ? in + (size_t)iy * a->in_row_stride +
                                              (size_t)ix * a->in_col_stride
                                        : NULL;
                for (ci = 0; ci < Ci; ++ci)
                    d[kx * Ci + ci] = tap ? tap[(size_t)ci * a->in_chan_stride] : zp;
            }
            memset(d + c->taps, 0, c->reach - c->taps);
        }
    }
}

/* Pixels [ox, ox + m) of output row oy, every panel, read in place or from the window. */
static void conv_pixels(const conv_walk *c, uint32_t oy, uint32_t ox, uint32_t m, int in_place) {
    const mnv3_conv_args *a = c->a;
    const mnv3_q8_conv_impl *im = c->im;
    const mnv3_q8_requant *rq = &c->prm->requant;
    const uint32_t K = a->kernel, Co = a->out_channels, nr = im->nr;
    int8_t *out = (int8_t *)a->output + ((size_t)oy * a->out_width + ox) * Co;
    const int8_t *rows[MNV3_CONV_MAX_KERNEL];
    mnv3_q8_rq_table table ALIGN64;
    mnv3_q8_conv_span s;
    uint32_t ky, col;
    if (in_place) {
        const size_t at = ((size_t)ox * a->stride - a->pad_left) * a->in_channels;
        for (ky = 0; ky < K; ++ky) rows[ky] = c->kernel_rows[ky] + at;
        s.step = (size_t)a->stride * a->in_channels;
    } else {
        conv_fill_window(c, ox, m);
        for (ky = 0; ky < K; ++ky) rows[ky] = c->window + (size_t)ky * m * c->reach;
        s.step = c->reach;
    }
    s.rows = rows;
    s.pixels = m;
    s.kernel = K;
    s.row_taps = c->taps;
    s.rq = &table;
    s.lut = im->fused & MNV3_Q8_FUSE_LUT ? rq->lut : NULL;
    s.out_stride = Co;
    for (col = 0; col < Co; col += nr) {
        s.w = (const unsigned char *)a->packed + (size_t)(col / nr) * c->panel;
        mnv3_q8_rq_view(&table,
                        (const unsigned char *)s.w + c->panel - mnv3_q8_rq_bytes(nr), nr, rq);
        s.out = out + col;
        s.nc = Co - col < nr ? Co - col : nr;
        im->span(&s);
    }
    if (rq->lut && !s.lut)
        (im->ops && im->ops->lut ? im->ops->lut : mnv3_q8_lut_portable)(out, (size_t)m * Co,
                                                                        rq->lut);
}

/* Output columns [lo, hi) through windows of at most window_pixels pixels. */
static void conv_windows(const conv_walk *c, uint32_t oy, uint32_t lo, uint32_t hi) {
    while (lo < hi) {
        const uint32_t m = hi - lo < c->im->window_pixels ? hi - lo : c->im->window_pixels;
        conv_pixels(c, oy, lo, m, 0);
        lo += m;
    }
}

void mnv3_q8_conv_driver(const mnv3_row *row, const mnv3_conv_args *a) {
    const mnv3_q8_conv_impl *im = (const mnv3_q8_conv_impl *)row->impl;
    const mnv3_q8_params *prm = (const mnv3_q8_params *)a->params;
    const uint32_t K = a->kernel, Ci = a->in_channels;
    unsigned char *ws = (unsigned char *)a->workspace;
    conv_walk c;
    uint32_t oy, ky, lo, hi;
    MNV3_ASSERT(ws != NULL && K >= 1 && K <= MNV3_CONV_MAX_KERNEL && a->stride >= 1);
    MNV3_ASSERT(a->row_end <= a->out_height);
    c.a = a;
    c.im = im;
    c.prm = prm;
    c.taps = K * Ci;
    c.reach = conv_reach(im, c.taps);
    c.panel = conv_panel_bytes(im, K, c.taps);
    c.window = (int8_t *)(void *)(ws + round_up_size((size_t)a->in_width * Ci, 64u));
    memset(ws, (int8_t)prm->in_zp, (size_t)a->in_width * Ci);
    conv_in_place(a, c.reach, &lo, &hi);
    for (oy = a->row_begin; oy < a->row_end; ++oy) {
        c.iy0 = (long)oy * a->stride - (long)a->pad_top;
        for (ky = 0; ky < K; ++ky) {
            const long iy = c.iy0 + (long)ky;
            c.kernel_rows[ky] = iy >= 0 && iy < (long)a->in_height
                                    ? (const int8_t *)a->input + (size_t)iy * a->in_row_stride
                                    : (const int8_t *)(void *)ws;
        }
        conv_windows(&c, oy, 0, lo);
        if (lo < hi) conv_pixels(&c, oy, lo, hi - lo, 1);
        conv_windows(&c, oy, hi, a->out_width);
    }
}

/* ------------------------------------------------------------------------------------ */
/* Fully connected                                                                       */
/* ------------------------------------------------------------------------------------ */

/* The prepared vector lives on the stack; a longer one (never in MobileNetV3, whose
 * longest is 1280) runs on the reference, on weights its row leaves unpacked. */
#define Q8_FC_STACK 8192u

/* Whether every w - weight_zp of l fits in int8 (a narrow impl's packing). With a zero
 * point of 0, TFLite's symmetric weights, every one does: no scan, which the packing and
 * each context's parameters would otherwise repeat. */
static int weights_fit_int8(const mnv3_layer *l) {
    const int8_t *w = (const int8_t *)l->weight;
    const size_t n = (size_t)gemm_k_total(l) * l->out_channels;
    size_t i;
    if (l->weight_zp == 0) return 1;
    for (i = 0; i < n; ++i) {
        const int32_t d = (int32_t)w[i] - l->weight_zp;
        if (d < -128 || d > 127) return 0;
    }
    return 1;
}

const mnv3_q8_gemm_impl *mnv3_q8_fc_impl(const mnv3_row *row, const mnv3_layer *l) {
    const mnv3_q8_gemm_impl *im = (const mnv3_q8_gemm_impl *)row->impl;
    return im->narrow && l->weight && weights_fit_int8(l) ? im->narrow : im;
}

size_t mnv3_q8_fc_row_packed_bytes(const mnv3_row *row, const mnv3_layer *l) {
    const mnv3_q8_gemm_impl *im = mnv3_q8_fc_impl(row, l);
    const mnv3_q8_weights w = mnv3_q8_weights_of(l);
    if (row_bytes(im, l->in_channels) > Q8_FC_STACK) return 0;
    return mnv3_q8_gemm_packed_bytes(im, &w, gemm_k_total(l));
}

void mnv3_q8_fc_row_pack(const mnv3_row *row, const mnv3_layer *l, void *packed) {
    const mnv3_q8_weights w = mnv3_q8_weights_of(l);
    mnv3_q8_gemm_pack(mnv3_q8_fc_impl(row, l), &w, gemm_k_total(l), packed);
}

void mnv3_q8_fc_prepare(const mnv3_row *row, const mnv3_layer *l, void *params) {
    mnv3_q8_prepare(row, l, params);
    ((mnv3_q8_params *)params)->narrow_weights = mnv3_q8_fc_impl(row, l) != row->impl;
}

void mnv3_q8_fc_driver(const mnv3_row *row, const mnv3_fc_args *a) {
    const mnv3_q8_params *prm = (const mnv3_q8_params *)a->params;
    const mnv3_q8_gemm_impl *row_im = (const mnv3_q8_gemm_impl *)row->impl;
    const mnv3_q8_gemm_impl *im = prm->narrow_weights ? row_im->narrow : row_im;
    const uint32_t I = a->in_features, nr = im->nr;
    unsigned char prepared[Q8_FC_STACK] ALIGN64;
    int8_t out[MNV3_Q8_MAX_NR];
    int32_t term = 0;
    mnv3_prefetch_cursor pf;
    q8_post post;
    q8_rows r;
    uint32_t col;
    MNV3_ASSERT(a->out_end <= a->out_features);
    if (row_bytes(im, I) > Q8_FC_STACK) {
        mnv3_reference_fc(row, a); /* packed_bytes left the weights canonical */
        return;
    }
    prepare_rows(im, (const int8_t *)a->input, 0, 1, I, NULL, NULL, prm, prepared, 0,
                 needs_terms(im, prm->weight_zp) ? &term : NULL);
    mnv3_prefetch_start(NULL, &pf);
    memset(&post, 0, sizeof post);
    post.params = prm;
    post.lut = prm->requant.lut;
    post.output = out;
    r.a = prepared;
    r.a_stride = 0;
    r.terms = needs_terms(im, prm->weight_zp) ? &term : NULL;
    r.rows = 1;
    /* out_begin need not be a multiple of nr: whole panels, the range copied out. */
    for (col = a->out_begin / nr * nr; col < a->out_end; col += nr) {
        const uint32_t end = col + nr < a->out_features ? col + nr : a->out_features;
        const uint32_t lo = col > a->out_begin ? col : a->out_begin;
        const uint32_t hi = end < a->out_end ? end : a->out_end;
        post.out_stride = 0;
        run_tiles(im, &r, a->packed, I, col, end, &prm->requant, &post, &pf);
        memcpy((int8_t *)a->output + lo, out + (lo - col), hi - lo);
    }
}

/* ------------------------------------------------------------------------------------ */
/* Depthwise                                                                             */
/* ------------------------------------------------------------------------------------ */

size_t mnv3_q8_depthwise_workspace(const mnv3_row *row, const mnv3_layer *l, uint32_t in_width,
                                   uint32_t out_width) {
    const mnv3_q8_dw_impl *im = (const mnv3_q8_dw_impl *)row->impl;
    (void)out_width;
    return im->workspace ? im->workspace(l->out_channels, l->kernel, in_width) : 0;
}

void mnv3_q8_depthwise_driver(const mnv3_row *row, const mnv3_depthwise_args *a) {
    const mnv3_q8_dw_impl *im = (const mnv3_q8_dw_impl *)row->impl;
    const mnv3_q8_params *prm = (const mnv3_q8_params *)a->params;
    void (*lut)(int8_t *, size_t, const int8_t *) =
        im->ops && im->ops->lut ? im->ops->lut : mnv3_q8_lut_portable;
    const uint32_t K = a->kernel, S = a->stride, C = a->channels;
    const size_t out_row = (size_t)a->out_width * C;
    const void *rows[MNV3_DW_MAX_KERNEL];
    mnv3_dw_cursor cursor;
    mnv3_q8_dw_call call;
    mnv3_q8_dw_out_row r;
    uint32_t oy;
    MNV3_ASSERT(K >= 1 && K <= MNV3_DW_MAX_KERNEL && S >= 1);
    MNV3_ASSERT(a->row_end <= a->out_height);
    call.input = (const int8_t *)a->input;
    call.in_height = a->in_height;
    call.in_width = a->in_width;
    call.channels = C;
    call.in_zp = prm->in_zp;
    call.packed = a->packed;
    call.kernel = K;
    call.stride = S;
    call.pad_top = a->pad_top;
    call.pad_left = a->pad_left;
    call.out_height = a->out_height;
    call.out_width = a->out_width;
    call.requant = prm->requant;
    call.workspace = a->workspace;
    const int fuse_lut = !prm->requant.lut || (im->fused & MNV3_Q8_FUSE_LUT);
    const int fuse_sums = fuse_lut && (im->fused & MNV3_Q8_FUSE_SUMS);
    r.rows = (const int8_t *const *)(const void *)rows;
    r.lut = fuse_lut ? prm->requant.lut : NULL;
    r.sums = fuse_sums ? (int32_t *)a->channel_sums : NULL;
    r.w = a->packed;
    r.a = &call;
    mnv3_interior_columns(a->in_width, a->out_width, K, S, a->pad_left, &r.ox_lo, &r.ox_hi);
    mnv3_dw_cursor_start(a, 1, &cursor);
    for (oy = a->row_begin; oy < a->row_end; ++oy) {
        int8_t *out = (int8_t *)a->output + (size_t)oy * out_row;
        mnv3_dw_cursor_rows(&cursor, oy, rows);
        r.out = out;
        r.first = oy == a->row_begin;
        im->row(&r);
        if (prm->requant.lut && !fuse_lut) lut(out, out_row, prm->requant.lut);
        if (a->channel_sums && !fuse_sums)
            column_sums(out, a->out_width, C, (int32_t *)a->channel_sums);
    }
}
