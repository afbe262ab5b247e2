/* AVX512-VNNI int8 GEMM: vpdpbusd on 512-bit vectors, 64 multiply-accumulates per
 * instruction. u8 activations (x ^ 0x80, prepared by the driver) are broadcast 4 bytes at
 * a time against s8 weights packed [k/4][32][4], 8 rows x 2 vectors of accumulators;
 * zero points are folded at pack time (q8_impl.h). The loop is pure loads and dot
 * products; requantization runs once per tile on 512-bit vectors (q8z_*, the sequence of
 * q8_common.h on 16 lanes), and the tile finishes its bytes in registers (LUT, residual
 * ADD, channel sums) as the 256-bit sets do, on its two halves of 16 columns.
 * The depthwise row is the AVX2 one (q8_dw_rows.h) at 32 channels per step, with vpdpwssd
 * in place of vpmaddwd and an add. */
#include "base/checked.h"
#include "kernels/kernels.h"

#if defined(MNV3_HAVE_X86_KERNELS)
/* avx512vbmi_q8.c builds this file again with the VBMI table lookup (Q8X_LUT_VBMI) under
 * its own names. */
#if !defined(Q8Z_ISA)
#define Q8X_ATTR MNV3_X86_TARGET("avx512f,avx512bw,avx512vl,avx512vnni,avx2")
#define Q8Z_ISA avx512vnni
#define Q8Z_SET mnv3_kernel_set_avx512vnni_q8
#define Q8Z_SET_NAME "avx512vnni"
#define Q8Z_SUPPORTED mnv3_cpu_has_avx512vnni
#endif
#include "q8_common.h"

#define Q8Z_PASTE_(a, b, c) a##b##c
#define Q8Z_PASTE(a, b, c) Q8Z_PASTE_(a, b, c)
#define Q8Z_STR_(x) #x
#define Q8Z_STR(x) Q8Z_STR_(x)
/* A microkernel's symbol and row name: mnv3_q8_<op>__<isa>, "q8_<op>__<isa>". */
#define Q8Z_UK(op) Q8Z_PASTE(mnv3_q8_##op, __, Q8Z_ISA)
#define Q8Z_ROW_NAME(op) "q8_" #op "__" Q8Z_STR(Q8Z_ISA)

#define MR 8
#define NR 32
#define KR 4

#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

/* The requantization of 16 lanes, parameters as vectors (q8x_rq on 512 bits). */
typedef struct q8z_rq {
    __m512i mult, mult_odd, left, right, mask, half;
    __m512i round; /* for the short form: q8z_rq_round */
} q8z_rq;

/* As q8x_rq_round: half + 1 + (zp << right). */
Q8X_INLINE void q8z_rq_round(q8z_rq *r, __m512i zp) {
    r->round = _mm512_add_epi32(_mm512_add_epi32(r->half, _mm512_set1_epi32(1)),
                                _mm512_sllv_epi32(zp, r->right));
}

Q8X_INLINE q8z_rq q8z_rq_load(const mnv3_q8_rq_table *t, uint32_t c) {
    q8z_rq r;
    r.mult = _mm512_loadu_si512((const void *)(t->mult + c));
    r.mult_odd = _mm512_srli_epi64(r.mult, 32);
    r.left = _mm512_loadu_si512((const void *)(t->left + c));
    r.right = _mm512_loadu_si512((const void *)(t->right + c));
    r.mask = _mm512_loadu_si512((const void *)(t->mask + c));
    r.half = _mm512_loadu_si512((const void *)(t->half + c));
    return r;
}

/* requantize + zero point, unclamped: q8x_requantize_zp_as's steps (q8_common.h), with
 * opmasks for the blend, the saturating product and the rounding; `form` Q8X_RQ_*. */
Q8X_INLINE __m512i q8z_requantize_zp(__m512i acc, const q8z_rq *r, __m512i zp, const int form) {
    const __m512i nudge = _mm512_set1_epi64((long long)1 << 30);
    const __m512i one = _mm512_set1_epi32(1), zero = _mm512_setzero_si512();
    const int plain = form != Q8X_RQ_ANY;
    const __m512i x = plain ? acc : _mm512_sllv_epi32(acc, r->left);
    const __m512i even = _mm512_add_epi64(_mm512_mul_epi32(x, r->mult), nudge);
    const __m512i odd =
        _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), r->mult_odd), nudge);
    __m512i h = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 31),
                                        _mm512_slli_epi64(odd, 1));
    __m512i s, threshold;
    if (!plain) {
        const __m512i min = _mm512_set1_epi32(INT32_MIN);
        const __mmask16 sat =
            _mm512_cmpeq_epi32_mask(x, min) & _mm512_cmpeq_epi32_mask(r->mult, min);
        h = _mm512_mask_xor_epi32(h, sat, h, _mm512_set1_epi32(-1));
    }
    if (form == Q8X_RQ_SHORT) {
        /* h + round - (h < 0), shifted */
        s = _mm512_add_epi32(h, r->round);
        s = _mm512_mask_sub_epi32(s, _mm512_cmpgt_epi32_mask(zero, h), s, one);
        return _mm512_srav_epi32(s, r->right);
    }
    /* half - (h >> 31): one more for negative h */
    threshold = _mm512_mask_add_epi32(r->half, _mm512_cmpgt_epi32_mask(zero, h), r->half, one);
    s = _mm512_srav_epi32(h, r->right);
    s = _mm512_mask_add_epi32(s, _mm512_cmpgt_epi32_mask(_mm512_and_si512(h, r->mask), threshold),
                              s, one);
    return _mm512_add_epi32(s, zp);
}

/* 16 lanes as 16 bytes clamped to [lo, hi]: vpmovsdb saturates to int8 first, which gives
 * the clamp of the int32 values, since [lo, hi] lies within int8. */
Q8X_INLINE __m128i q8z_bytes16(__m512i acc, const q8z_rq *r, __m512i zp, __m128i lo, __m128i hi,
                               const int form) {
    const __m128i b = _mm512_cvtsepi32_epi8(q8z_requantize_zp(acc, r, zp, form));
    return _mm_min_epi8(_mm_max_epi8(b, lo), hi);
}

/* The zmm requantization on arrays, for the tests (mnv3_q8_ops.requantize). */
static Q8X_ATTR void q8z_requantize16(const int32_t *in, const mnv3_q8_rq_table *t, int32_t *res) {
    const q8z_rq rq = q8z_rq_load(t, 0);
    _mm512_storeu_si512((void *)res, q8z_requantize_zp(_mm512_loadu_si512((const void *)in), &rq,
                                                       _mm512_setzero_si512(), Q8X_RQ_ANY));
}

static Q8X_ATTR void q8z_requantize_array(const int32_t *acc, const mnv3_q8_mul *m, size_t n,
                                          int32_t *out) {
    q8x_requantize_array_by(acc, m, n, out, 16, q8z_requantize16);
}

/* The tile's epilogue (requantize, LUT, ADD, store, sums) out of line, reading the
 * accumulators from memory: inlined, its constants crowded the k loop's registers and GCC
 * copied every accumulator once per iteration to make room. acc: row r's two vectors at
 * 2r and 2r + 1. */
static __attribute__((noinline)) Q8X_ATTR void finish_tile(const mnv3_q8_gemm_tile *t,
                                                           const __m512i *acc, uint32_t M) {
    const mnv3_q8_rq_table *rq = t->rq;
    const __m512i zp = _mm512_set1_epi32(rq->out_zp);
    const __m128i lo = _mm_set1_epi8((char)rq->lo), hi = _mm_set1_epi8((char)rq->hi);
    const int wide = t->nc > 16, form = q8x_rq_form(rq);
    q8z_rq q0 = q8z_rq_load(rq, 0), q1 = q8z_rq_load(rq, 16);
    __m128i bytes0[MR], bytes1[MR];
    uint32_t r;
    q8z_rq_round(&q0, zp);
    q8z_rq_round(&q1, zp);
#define BYTES(v, q, f) q8z_bytes16(v, q, zp, lo, hi, f)
#define FORM_ROWS(f)                                                                         \
    for (r = 0; r < M; ++r) {                                                                \
        bytes0[r] = BYTES(acc[2 * r], &q0, f);                                               \
        bytes1[r] = wide ? BYTES(acc[2 * r + 1], &q1, f) : _mm_setzero_si128();              \
    }
    switch (form) {
    case Q8X_RQ_SHORT: FORM_ROWS(Q8X_RQ_SHORT) break;
    case Q8X_RQ_PLAIN: FORM_ROWS(Q8X_RQ_PLAIN) break;
    default: FORM_ROWS(Q8X_RQ_ANY) break;
    }
#undef FORM_ROWS
#undef BYTES
    /* The first half's finish stores and sums at most 16 columns of the tile's nc. */
    q8x_finish_rows16(t, bytes0, M);
    if (wide) {
        mnv3_q8_gemm_tile h = *t;
        h.nc -= 16;
        h.out += 16;
        if (h.residual) h.residual += 16;
        if (h.sums) h.sums += 16;
        q8x_finish_rows16(&h, bytes1, M);
    }
}

#if defined(MNV3_X86_EMULATED)
#define Q8Z_DPBUSD(acc, x, w) ((acc) = _mm512_dpbusd_epi32((acc), (x), (w)))
#else
/* As DWZ_DPWSSD below: written out, the instruction accumulates in place and the compiler
 * can neither copy accumulators nor reassociate the unrolled k steps. */
#define Q8Z_DPBUSD(acc, x, w) __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(x), "v"(w))
#endif

/* Two k steps per iteration, each row's pointer in a register of its own (GCC otherwise
 * walks the rows with a chain of adds). Tiles of at most 4 rows give the odd steps
 * accumulators of their own (d), so that 4M chains instead of 2M cover vpdpbusd's latency. */
Q8X_INLINE void gemm_vnni512(const mnv3_q8_gemm_tile *t, const uint32_t M) {
    const unsigned char *w = (const unsigned char *)t->w;
    const __m512i b0 = _mm512_loadu_si512((const void *)w);
    const __m512i b1 = _mm512_loadu_si512((const void *)(w + 64));
    const char *pf = *t->pf, *pf_end = t->pf_end;
    uint32_t k;
#define DECL(r)                                                                              \
    const unsigned char *a##r = (const unsigned char *)t->a + (M > r ? r : 0) * t->a_stride;  \
    __m512i c##r##0 = b0, c##r##1 = b1;                                                      \
    __m512i d##r##0 = _mm512_setzero_si512(), d##r##1 = d##r##0;                             \
    __asm__("" : "+r"(a##r));
    ROWS(DECL)
#undef DECL
    if (t->row_terms) {
#define TERM(r)                                                                              \
    if (M > r) {                                                                             \
        const __m512i tr = _mm512_set1_epi32(t->row_terms[r]);                               \
        c##r##0 = _mm512_add_epi32(c##r##0, tr);                                             \
        c##r##1 = _mm512_add_epi32(c##r##1, tr);                                             \
    }
        ROWS(TERM)
#undef TERM
    }
    w += NR * 4;
#define STEP(r, kk, w0, w1, C)                                                               \
    if (M > r) {                                                                             \
        int32_t v##r;                                                                        \
        __m512i x##r;                                                                        \
        memcpy(&v##r, a##r + (kk), 4);                                                       \
        x##r = _mm512_set1_epi32(v##r);                                                      \
        Q8Z_DPBUSD(C##r##0, x##r, w0);                                                       \
        Q8Z_DPBUSD(C##r##1, x##r, w1);                                                       \
    }
#define K_STEP(kk, wp, C)                                                                    \
    do {                                                                                     \
        const __m512i w0 = _mm512_loadu_si512((const void *)(wp));                           \
        const __m512i w1 = _mm512_loadu_si512((const void *)((wp) + 64));                    \
        STEP(0, kk, w0, w1, C) STEP(1, kk, w0, w1, C) STEP(2, kk, w0, w1, C)                 \
        STEP(3, kk, w0, w1, C) STEP(4, kk, w0, w1, C) STEP(5, kk, w0, w1, C)                 \
        STEP(6, kk, w0, w1, C) STEP(7, kk, w0, w1, C)                                        \
    } while (0)
#define K_LOOP(C_ODD)                                                                        \
    for (k = 0; k + 2u * KR <= t->k; k += 2u * KR) {                                         \
        MNV3_PREFETCH_STEP2(pf, pf_end);                                                     \
        K_STEP(k, w, c);                                                                     \
        K_STEP(k + KR, w + 128, C_ODD);                                                      \
        w += 256;                                                                            \
    }
    if (M <= 4) {
        K_LOOP(d)
#define MERGE(r)                                                                             \
    if (M > r) {                                                                             \
        c##r##0 = _mm512_add_epi32(c##r##0, d##r##0);                                        \
        c##r##1 = _mm512_add_epi32(c##r##1, d##r##1);                                        \
    }
        ROWS(MERGE)
#undef MERGE
    } else {
        K_LOOP(c)
    }
    if (k < t->k) {
        MNV3_PREFETCH_STEP(pf, pf_end);
        K_STEP(k, w, c);
    }
#undef K_LOOP
#undef K_STEP
#undef STEP
    *t->pf = pf;
    {
        __m512i acc[2 * MR];
#define SAVE(r)                                                                              \
    if (M > r) {                                                                             \
        acc[2 * r] = c##r##0;                                                                \
        acc[2 * r + 1] = c##r##1;                                                            \
    }
        ROWS(SAVE)
#undef SAVE
        finish_tile(t, acc, M);
    }
}

#define GEMM(M)                                                                              \
    static Q8X_ATTR void Q8Z_UK(gemm_##M##x32c4)(const mnv3_q8_gemm_tile *t) { gemm_vnni512(t, M); }
GEMM(1)
GEMM(2)
GEMM(3)
GEMM(4)
GEMM(5)
GEMM(6)
GEMM(7)
GEMM(8)
#undef GEMM

static const mnv3_q8_ops ops = {q8x_prepare_rows, q8x_lut, q8x_add, q8z_requantize_array, 1};

static const mnv3_q8_gemm_impl gemm_impl = {
    MNV3_Q8_A_U8,
    MR,
    NR,
    KR,
    {Q8Z_UK(gemm_1x32c4), Q8Z_UK(gemm_2x32c4), Q8Z_UK(gemm_3x32c4), Q8Z_UK(gemm_4x32c4),
     Q8Z_UK(gemm_5x32c4), Q8Z_UK(gemm_6x32c4), Q8Z_UK(gemm_7x32c4), Q8Z_UK(gemm_8x32c4)},
    &ops,
    0,
    MNV3_Q8_FUSE_LUT | MNV3_Q8_FUSE_ADD | MNV3_Q8_FUSE_SUMS,
    0,
    NULL,
};

/* ------------------------------------------------------------------------------------ */
/* Depthwise                                                                             */
/* ------------------------------------------------------------------------------------ */

/* Thirty-two channels per step and two taps per vpdpwssd (q8_dw_rows.h): a pixel's 32
 * requantized bytes are one ymm, which the LUT takes whole. Four output pixels per step
 * share each weight load and keep eight independent accumulators. */
#define DW_GROUP 32u
#include "q8_dw_rows.h"

typedef struct dwz_group {
    q8z_rq low, high;
    __m512i zp;
    __m256i lo, hi;              /* the activation range as bytes */
    const int8_t *lut;           /* NULL: none */
    int32_t *sums;               /* the group's channel sums; NULL: none */
} dwz_group;

/* Requantized, clamped bytes of one pixel's 32 channels: vpackssdw puts each lane's low
 * and high channels back in order, vpmovswb saturates to int8 (the clamp's result, as in
 * q8z_bytes16). */
Q8X_INLINE __m256i dwz_bytes(const dwz_group *q, __m512i acc_low, __m512i acc_high,
                             const int form) {
    const __m512i w = _mm512_packs_epi32(q8z_requantize_zp(acc_low, &q->low, q->zp, form),
                                         q8z_requantize_zp(acc_high, &q->high, q->zp, form));
    return _mm256_min_epi8(_mm256_max_epi8(_mm512_cvtsepi16_epi8(w), q->lo), q->hi);
}

/* The end of one pixel: the LUT, the store of n channels, the channel sums kept as int16
 * in *s16 (the caller widens them in time). */
Q8X_INLINE void dwz_finish(const dwz_group *q, __m256i b, int8_t *out, uint32_t n, __m512i *s16) {
    if (q->lut) b = q8x_lut32(b, q->lut);
    if (n >= DW_GROUP)
        _mm256_storeu_si256((__m256i *)(void *)out, b);
    else
        _mm256_mask_storeu_epi8(out, (__mmask32)((1u << n) - 1u), b);
    if (q->sums) *s16 = _mm512_add_epi16(*s16, _mm512_cvtepi8_epi16(b));
}

/* sums[0, n) += the int16 sums in s16 (32 lanes), which then restart from zero. */
Q8X_INLINE void dwz_flush_sums(int32_t *sums, __m512i *s16, uint32_t n) {
    int16_t add[DW_GROUP];
    uint32_t c;
    _mm512_storeu_si512((void *)add, *s16);
    for (c = 0; c < n; ++c) sums[c] = (int32_t)((uint32_t)sums[c] + (uint32_t)add[c]);
    *s16 = _mm512_setzero_si512();
}

#define DWZ_LOAD(p) _mm512_loadu_si512((const void *)(p))
#if defined(MNV3_X86_EMULATED)
#define DWZ_DPWSSD(acc, x, w) ((acc) = _mm512_dpwssd_epi32((acc), (x), (w)))
#else
/* GCC (12) moves every accumulator of _mm512_dpwssd_epi32 through a scratch register and
 * back on each iteration of the tap loop (16 copies per 8 products); written out, the
 * instruction accumulates in place. */
#define DWZ_DPWSSD(acc, x, w) __asm__("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(x), "v"(w))
#endif
#define DWZ_MAC(acc_low, acc_high, x0, x1, wl, wh)                                           \
    do {                                                                                     \
        const __m512i x0_ = (x0), x1_ = (x1);                                                \
        DWZ_DPWSSD(acc_low, _mm512_unpacklo_epi16(x0_, x1_), wl);                            \
        DWZ_DPWSSD(acc_high, _mm512_unpackhi_epi16(x0_, x1_), wh);                           \
    } while (0)

/* The raw sums of P pixels starting at column offset o0 (P = 4 or 1): each weight pair is
 * loaded once for the P pixels, whose 2P accumulators are independent chains (enough to
 * cover vpdpwssd's latency at 4). */
Q8X_INLINE void dwz_pixels(const int16_t *const *tap, uint32_t pairs, size_t o0, size_t step,
                           const __m512i *w, const uint32_t P, __m512i *low, __m512i *high) {
    uint32_t t, j;
#pragma GCC unroll 4
    for (j = 0; j < P; ++j) {
        low[j] = DWZ_LOAD(w);
        high[j] = DWZ_LOAD(w + 1);
    }
    for (t = 0; t < pairs; ++t) {
        const __m512i wl = DWZ_LOAD(w + 2u + 2u * t), wh = DWZ_LOAD(w + 3u + 2u * t);
        const int16_t *t0 = tap[2u * t] + o0, *t1 = tap[2u * t + 1u] + o0;
#pragma GCC unroll 4
        for (j = 0; j < P; ++j)
            DWZ_MAC(low[j], high[j], DWZ_LOAD(t0 + j * step), DWZ_LOAD(t1 + j * step), wl, wh);
    }
}

/* Output pixels [0, width) of one channel group: tap[t] is tap t's converted column for
 * output 0, step the columns between outputs. Channel sums are kept as int16 over at most
 * 128 pixels (128 * 128 fits). */
Q8X_INLINE void dwz_group_row(const int16_t *const *tap, uint32_t pairs, size_t step,
                              uint32_t width, const __m512i *w, const dwz_group *q, int8_t *out,
                              uint32_t C, uint32_t n, const int form) {
    __m512i s16 = _mm512_setzero_si512(), low[4], high[4];
    uint32_t ox = 0, j;
    for (; ox + 4u <= width; ox += 4u) {
        dwz_pixels(tap, pairs, (size_t)ox * step, step, w, 4, low, high);
#pragma GCC unroll 4
        for (j = 0; j < 4; ++j)
            dwz_finish(q, dwz_bytes(q, low[j], high[j], form), out + (size_t)(ox + j) * C, n,
                       &s16);
        if (q->sums && (ox + 4u) % 128u == 0) dwz_flush_sums(q->sums, &s16, n);
    }
    for (; ox < width; ++ox) {
        dwz_pixels(tap, pairs, (size_t)ox * step, step, w, 1, low, high);
        dwz_finish(q, dwz_bytes(q, low[0], high[0], form), out + (size_t)ox * C, n, &s16);
    }
    if (q->sums) dwz_flush_sums(q->sums, &s16, n);
}

static Q8X_ATTR void Q8Z_UK(dwconv_32c2x2)(const mnv3_q8_dw_out_row *r) {
    const mnv3_q8_dw_call *a = r->a;
    const int16_t *tap[MNV3_DW_MAX_KERNEL * MNV3_DW_MAX_KERNEL + 1];
    dw_row_plan p;
    dw_group_plan gp;
    dwz_group q;
    uint32_t g;
    dw_row_begin(r, &p);
    q.zp = _mm512_set1_epi32(a->requant.out_zp);
    q.lo = _mm256_set1_epi8((char)a->requant.act_lo);
    q.hi = _mm256_set1_epi8((char)a->requant.act_hi);
    q.lut = r->lut;
    for (g = 0; g < a->channels; g += DW_GROUP) {
        dw_group_begin(r, &p, g, &gp, tap);
        q.low = q8z_rq_load(&gp.rq, 0);
        q.high = q8z_rq_load(&gp.rq, DW_LANES);
        q8z_rq_round(&q.low, q.zp);
        q8z_rq_round(&q.high, q.zp);
        q.sums = r->sums ? r->sums + g : NULL;
#define GROUP_ROW(form)                                                                      \
    dwz_group_row(tap, p.pairs, p.step, a->out_width, (const __m512i *)gp.w, &q, r->out + g,   \
                  a->channels, gp.n, form)
        switch (gp.form) {
        case Q8X_RQ_SHORT: GROUP_ROW(Q8X_RQ_SHORT); break;
        case Q8X_RQ_PLAIN: GROUP_ROW(Q8X_RQ_PLAIN); break;
        default: GROUP_ROW(Q8X_RQ_ANY); break;
        }
#undef GROUP_ROW
    }
}

static const mnv3_q8_dw_impl dw_impl = {
    DW_GROUP, 4, Q8Z_UK(dwconv_32c2x2), &ops, dw_packed_bytes, dw_pack, dw_workspace,
    MNV3_Q8_FUSE_LUT | MNV3_Q8_FUSE_SUMS,
};

static const mnv3_row depthwise_row = {
    Q8Z_ROW_NAME(dwconv_32c2x2), MNV3_ROW_DEPTHWISE, MNV3_DTYPE_I8, MNV3_DTYPE_I8,
    MNV3_DTYPE_I8, 1, mnv3_q8_dw_row_packed_bytes, mnv3_q8_dw_row_pack, mnv3_q8_params_bytes,
    mnv3_q8_prepare, mnv3_q8_depthwise_workspace, {.depthwise = mnv3_q8_depthwise_driver},
    &dw_impl,
};

static const mnv3_row pointwise_row = {
    Q8Z_ROW_NAME(gemm_8x32c4), MNV3_ROW_POINTWISE, MNV3_DTYPE_I8, MNV3_DTYPE_I8, MNV3_DTYPE_I8,
    NR, mnv3_q8_gemm_row_packed_bytes, mnv3_q8_gemm_row_pack, mnv3_q8_params_bytes,
    mnv3_q8_prepare, mnv3_q8_pointwise_workspace, {.pointwise = mnv3_q8_pointwise_driver},
    &gemm_impl,
};
static const mnv3_row fc_row = {
    Q8Z_ROW_NAME(gemv_1x32c4), MNV3_ROW_FC, MNV3_DTYPE_I8, MNV3_DTYPE_I8, MNV3_DTYPE_I8, NR,
    mnv3_q8_fc_row_packed_bytes, mnv3_q8_gemm_row_pack, mnv3_q8_params_bytes, mnv3_q8_prepare,
    mnv3_no_workspace, {.fc = mnv3_q8_fc_driver}, &gemm_impl,
};

static const mnv3_row *const set_rows[] = {
    &pointwise_row, &depthwise_row, &mnv3_q8_conv_avx2, &fc_row, NULL,
};

const mnv3_kernel_set Q8Z_SET = {
    Q8Z_SET_NAME, 1u << MNV3_ISA_AVX512, Q8Z_SUPPORTED, set_rows, &mnv3_q8_input_avx2,
};

#elif !defined(Q8Z_ISA)
typedef int mnv3_x86_avx512vnni_q8_unused;
#endif
