/* AVX2 int8 kernels for CPUs without VNNI. vpmaddubsw would saturate (255 * -128 * 2 does
 * not fit in 16 bits), so products are formed by vpmaddwd on 16-bit values, which is
 * exact: the driver prepares rows as int16 x - in_zp, weights are packed as int16
 * w - weight_zp in pairs of k, and each vpmaddwd adds two products into an int32 lane
 * (16 multiply-accumulates per instruction; no zero-point terms at all). */
#include "base/checked.h"
#include "kernels/kernels.h"

#if defined(MNV3_HAVE_X86_KERNELS)
#define Q8X_ATTR MNV3_X86_TARGET("avx2")
#include "q8_common.h"

/* 6 rows x 2 vectors of 8 outputs = 12 accumulators, 2 weight vectors, a broadcast. */
#if defined(MNV3_X86_EMULATED)
#define Q8X_DOT_ACC(acc, a, b) ((acc) = _mm256_add_epi32((acc), _mm256_madd_epi16((a), (b))))
#else
#define Q8X_DOT_ACC(acc, a, b)                                                               \
    do {                                                                                     \
        __m256i product_;                                                                    \
        __asm__("vpmaddwd %3, %2, %1\n\tvpaddd %1, %0, %0"                                    \
                : "+x"(acc), "=&x"(product_)                                                 \
                : "x"(a), "x"(b));                                                           \
    } while (0)
#endif
#define DOT_SUFFIX avx2
#define DOT_TILE c2
#define DOT_KR 2
#define DOT_FORMAT MNV3_Q8_A_S16
static const mnv3_q8_gemm_impl fc_narrow_impl;
#define DOT_FC_NARROW &fc_narrow_impl
#include "q8_gemm_ymm.h"

/* ------------------------------------------------------------------------------------ */
/* Matrix-vector products over int8 weights                                              */
/* ------------------------------------------------------------------------------------ */

/* The classifier and the squeeze-excite layers read each weight once, from memory, and do
 * two multiply-accumulates per weight loaded: their time is their weights' bytes. So their
 * panels hold w - weight_zp as int8 pairs (mnv3_q8_fc_impl checks that each fits), half the
 * bytes of the GEMM's int16 ones, widened by vpmovsxbw as they are loaded: [k/2][16][2]
 * bytes, columns 0-7 in the first 16 of each pair of k. Two pairs of k per iteration, each
 * into accumulators of its own. */
static Q8X_ATTR void mnv3_q8_gemv_1x16c2w8__avx2(const mnv3_q8_gemm_tile *t) {
    const unsigned char *w = (const unsigned char *)t->w;
    const unsigned char *a = (const unsigned char *)t->a;
    const char *pf = *t->pf, *pf_end = t->pf_end;
    __m256i c0 = _mm256_loadu_si256((const __m256i *)(const void *)w);
    __m256i c1 = _mm256_loadu_si256((const __m256i *)(const void *)(w + 32));
    __m256i d0 = _mm256_setzero_si256(), d1 = _mm256_setzero_si256();
    uint32_t k;
#define W8(at) _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(w + (at))))
#define A2(kk) q8x_bcast_pair(a + 2u * (kk))
    if (t->row_terms) {
        const __m256i tr = _mm256_set1_epi32(t->row_terms[0]);
        c0 = _mm256_add_epi32(c0, tr);
        c1 = _mm256_add_epi32(c1, tr);
    }
    w += DOT_NR * 4;
    for (k = 0; k + 4u <= t->k; k += 4u) {
        const __m256i x0 = A2(k), x1 = A2(k + 2u);
        MNV3_PREFETCH_STEP2(pf, pf_end);
        c0 = _mm256_add_epi32(c0, _mm256_madd_epi16(x0, W8(0)));
        c1 = _mm256_add_epi32(c1, _mm256_madd_epi16(x0, W8(16)));
        d0 = _mm256_add_epi32(d0, _mm256_madd_epi16(x1, W8(32)));
        d1 = _mm256_add_epi32(d1, _mm256_madd_epi16(x1, W8(48)));
        w += 64;
    }
    if (k < t->k) {
        const __m256i x0 = A2(k);
        MNV3_PREFETCH_STEP(pf, pf_end);
        c0 = _mm256_add_epi32(c0, _mm256_madd_epi16(x0, W8(0)));
        c1 = _mm256_add_epi32(c1, _mm256_madd_epi16(x0, W8(16)));
    }
#undef A2
#undef W8
    *t->pf = pf;
    c0 = _mm256_add_epi32(c0, d0);
    c1 = _mm256_add_epi32(c1, d1);
    {
        const q8x_out16 o = q8x_out16_load(t->rq);
        const int half = t->nc <= 8;
        __m128i bytes[1];
        switch (q8x_rq_form(t->rq)) {
        case Q8X_RQ_SHORT: bytes[0] = q8x_out16_bytes(&o, c0, c1, Q8X_RQ_SHORT, half); break;
        case Q8X_RQ_PLAIN: bytes[0] = q8x_out16_bytes(&o, c0, c1, Q8X_RQ_PLAIN, half); break;
        default: bytes[0] = q8x_out16_bytes(&o, c0, c1, Q8X_RQ_ANY, half); break;
        }
        q8x_finish_rows16(t, bytes, 1);
    }
}

static const mnv3_q8_gemm_impl fc_narrow_impl = {
    MNV3_Q8_A_S16,
    1,
    DOT_NR,
    2,
    {mnv3_q8_gemv_1x16c2w8__avx2},
    &dot_ops,
    0,
    MNV3_Q8_FUSE_LUT | MNV3_Q8_FUSE_ADD | MNV3_Q8_FUSE_SUMS,
    1,
    NULL,
};

/* ------------------------------------------------------------------------------------ */
/* Depthwise                                                                             */
/* ------------------------------------------------------------------------------------ */

/* Sixteen channels per step and two taps per vpmaddwd (q8_dw_rows.h). Two output pixels
 * per step share each weight load and keep four independent accumulators. */
#define DW_GROUP 16u
#include "q8_dw_rows.h"

typedef struct dw_group {
    q8x_rq low, high;
    __m256i zp;
    __m128i lo, hi;              /* the activation range as bytes */
    const int8_t *lut;           /* NULL: none */
    int32_t *sums;               /* the group's channel sums; NULL: none */
} dw_group;

/* Requantized, clamped bytes of one pixel's 16 channels. Saturating to int16 and int8
 * before the clamp gives the clamp's result, since [lo, hi] lies within int8. */
Q8X_INLINE __m128i dw_bytes(const dw_group *q, __m256i acc_low, __m256i acc_high, const int form) {
    const __m256i vl = q8x_requantize_zp_as(acc_low, &q->low, q->zp, form);
    const __m256i vh = q8x_requantize_zp_as(acc_high, &q->high, q->zp, form);
    const __m256i w = _mm256_packs_epi32(vl, vh);
    const __m128i b = _mm_packs_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
    return _mm_min_epi8(_mm_max_epi8(b, q->lo), q->hi);
}

/* The end of one or two pixels (b1 unused when `two` is 0): the LUT on both at once, the
 * stores, and the channel sums kept as int16 in *s16 (the caller widens them in time). */
Q8X_INLINE void dw_finish(const dw_group *q, __m128i b0, __m128i b1, const int two, int8_t *out0,
                          int8_t *out1, uint32_t n, __m256i *s16) {
    if (q->lut) {
        const __m256i y = q8x_lut32(_mm256_set_m128i(b1, b0), q->lut);
        b0 = _mm256_castsi256_si128(y);
        b1 = _mm256_extracti128_si256(y, 1);
    }
    q8x_store_bytes(out0, b0, n);
    if (two) q8x_store_bytes(out1, b1, n);
    if (q->sums) {
        *s16 = _mm256_add_epi16(*s16, _mm256_cvtepi8_epi16(b0));
        if (two) *s16 = _mm256_add_epi16(*s16, _mm256_cvtepi8_epi16(b1));
    }
}

/* sums[0, n) += the int16 sums in s16 (16 lanes), which then restart from zero. */
Q8X_INLINE void dw_flush_sums(int32_t *sums, __m256i *s16, uint32_t n) {
    int32_t add[16];
    uint32_t c;
    _mm256_storeu_si256((__m256i *)(void *)add, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(*s16)));
    _mm256_storeu_si256((__m256i *)(void *)(add + 8),
                        _mm256_cvtepi16_epi32(_mm256_extracti128_si256(*s16, 1)));
    for (c = 0; c < n; ++c) sums[c] = (int32_t)((uint32_t)sums[c] + (uint32_t)add[c]);
    *s16 = _mm256_setzero_si256();
}

#define DW_LOAD(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define DW_MAC(acc_low, acc_high, x0, x1, wl, wh)                                            \
    do {                                                                                     \
        acc_low = _mm256_add_epi32(acc_low, _mm256_madd_epi16(_mm256_unpacklo_epi16(x0, x1), wl)); \
        acc_high =                                                                           \
            _mm256_add_epi32(acc_high, _mm256_madd_epi16(_mm256_unpackhi_epi16(x0, x1), wh)); \
    } while (0)

/* Output pixels [0, width) of one channel group: tap[t] is tap t's converted column for
 * output 0 (tap[taps] repeats a valid one for an odd tap count), step the columns between
 * outputs. Channel sums are kept as int16 over at most 128 pixels (128 * 128 fits). */
Q8X_INLINE void dw_group_row(const int16_t *const *tap, uint32_t pairs, size_t step,
                             uint32_t width, const __m256i *w, const dw_group *q, int8_t *out,
                             uint32_t C, uint32_t n, const int form) {
    const __m256i bias_low = DW_LOAD(w), bias_high = DW_LOAD(w + 1);
    __m256i s16 = _mm256_setzero_si256();
    uint32_t ox = 0, t;
    for (; ox + 2u <= width; ox += 2u) {
        const size_t o0 = (size_t)ox * step, o1 = o0 + step;
        __m256i l0 = bias_low, h0 = bias_high, l1 = bias_low, h1 = bias_high;
        for (t = 0; t < pairs; ++t) {
            const __m256i wl = DW_LOAD(w + 2u + 2u * t), wh = DW_LOAD(w + 3u + 2u * t);
            const int16_t *t0 = tap[2u * t], *t1 = tap[2u * t + 1u];
            const __m256i a0 = DW_LOAD(t0 + o0), a1 = DW_LOAD(t1 + o0);
            const __m256i b0 = DW_LOAD(t0 + o1), b1 = DW_LOAD(t1 + o1);
            DW_MAC(l0, h0, a0, a1, wl, wh);
            DW_MAC(l1, h1, b0, b1, wl, wh);
        }
        dw_finish(q, dw_bytes(q, l0, h0, form), dw_bytes(q, l1, h1, form), 1,
                  out + (size_t)ox * C, out + (size_t)(ox + 1u) * C, n, &s16);
        if (q->sums && (ox + 2u) % 128u == 0) dw_flush_sums(q->sums, &s16, n);
    }
    if (ox < width) {
        const size_t o0 = (size_t)ox * step;
        __m256i l0 = bias_low, h0 = bias_high;
        for (t = 0; t < pairs; ++t) {
            const __m256i a0 = DW_LOAD(tap[2u * t] + o0), a1 = DW_LOAD(tap[2u * t + 1u] + o0);
            DW_MAC(l0, h0, a0, a1, DW_LOAD(w + 2u + 2u * t), DW_LOAD(w + 3u + 2u * t));
        }
        dw_finish(q, dw_bytes(q, l0, h0, form), _mm_setzero_si128(), 0, out + (size_t)ox * C,
                  NULL, n, &s16);
    }
    if (q->sums) dw_flush_sums(q->sums, &s16, n);
}

static Q8X_ATTR void mnv3_q8_dwconv_16c2x2__avx2(const mnv3_q8_dw_out_row *r) {
    const mnv3_q8_dw_call *a = r->a;
    const int16_t *tap[MNV3_DW_MAX_KERNEL * MNV3_DW_MAX_KERNEL + 1];
    dw_row_plan p;
    dw_group_plan gp;
    dw_group q;
    uint32_t g;
    dw_row_begin(r, &p);
    q.zp = _mm256_set1_epi32(a->requant.out_zp);
    q.lo = _mm_set1_epi8((char)a->requant.act_lo);
    q.hi = _mm_set1_epi8((char)a->requant.act_hi);
    q.lut = r->lut;
    for (g = 0; g < a->channels; g += DW_GROUP) {
        const __m256i *w;
        dw_group_begin(r, &p, g, &gp, tap);
        w = (const __m256i *)gp.w;
        q.low = q8x_rq_load(&gp.rq, 0);
        q.high = q8x_rq_load(&gp.rq, DW_LANES);
        q8x_rq_round(&q.low, q.zp);
        q8x_rq_round(&q.high, q.zp);
        q.sums = r->sums ? r->sums + g : NULL;
#define GROUP_ROW(form)                                                                      \
    dw_group_row(tap, p.pairs, p.step, a->out_width, w, &q, r->out + g, a->channels, gp.n, form)
        switch (gp.form) {
        case Q8X_RQ_SHORT: GROUP_ROW(Q8X_RQ_SHORT); break;
        case Q8X_RQ_PLAIN: GROUP_ROW(Q8X_RQ_PLAIN); break;
        default: GROUP_ROW(Q8X_RQ_ANY); break;
        }
#undef GROUP_ROW
    }
}

/* ------------------------------------------------------------------------------------ */
/* Rows and the set                                                                      */
/* ------------------------------------------------------------------------------------ */

static const mnv3_q8_dw_impl dw_impl = {
    DW_GROUP, 4, mnv3_q8_dwconv_16c2x2__avx2, &dot_ops, dw_packed_bytes, dw_pack, dw_workspace,
    MNV3_Q8_FUSE_LUT | MNV3_Q8_FUSE_SUMS,
};

const mnv3_row mnv3_q8_depthwise_avx2 = {
    "q8_dwconv_16c2x2__avx2", MNV3_ROW_DEPTHWISE, MNV3_DTYPE_I8, MNV3_DTYPE_I8, MNV3_DTYPE_I8, 1,
    mnv3_q8_dw_row_packed_bytes, mnv3_q8_dw_row_pack, mnv3_q8_params_bytes, mnv3_q8_prepare,
    mnv3_q8_depthwise_workspace, {.depthwise = mnv3_q8_depthwise_driver}, &dw_impl,
};

static const mnv3_row *const set_rows[] = {
    &dot_pointwise_row, &mnv3_q8_depthwise_avx2, &mnv3_q8_conv_avx2, &dot_fc_row, NULL,
};

const mnv3_kernel_set mnv3_kernel_set_avx2_q8 = {
    "avx2", (1u << MNV3_ISA_AVX2) | (1u << MNV3_ISA_AVX512), mnv3_cpu_has_avx2, set_rows,
    &mnv3_q8_input_avx2,
};

#else
typedef int mnv3_x86_avx2_q8_unused;
#endif
