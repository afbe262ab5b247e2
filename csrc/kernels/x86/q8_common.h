/* Vector requantization and byte helpers shared by the x86 int8 files (AVX2 encoding, so
 * every x86 int8 set can use them). Included by avx2_q8.c and avx512vnni_q8.c after
 * they define Q8X_ATTR (the target attribute of their functions).
 *
 * Requantization equal to mnv3_q8_requantize bit for bit:
 *   - the doubling high multiply is floor((x*m + 2^30) / 2^31): gemmlowp's nudge and
 *     truncating division give exactly that for both signs (for x*m < 0, truncating
 *     (x*m + 1 - 2^30) / 2^31 equals flooring (x*m + 2^30) / 2^31). vpmuldq forms the
 *     64-bit products of even lanes; bits 31..62 of the nudged product are the result,
 *     which a logical 64-bit shift extracts for either sign. The one product that does not
 *     fit, INT32_MIN * INT32_MIN, wraps to INT32_MIN and is flipped to INT32_MAX, as the
 *     saturating scalar form gives.
 *   - the rounding right shift is mnv3_q8_rounding_shift's own expression, lane by lane. */
#ifndef MNV3_X86_Q8_COMMON_H
#define MNV3_X86_Q8_COMMON_H

#include "x86_intrin.h"
#include <string.h>

#include "kernels/q8_impl.h"
#include "kernels/q8_scalar.h"

#define Q8X_INLINE static inline __attribute__((always_inline)) Q8X_ATTR

/* m_odd: m's odd lanes moved to the even ones (m >> 32 per 64-bit lane), made once per
 * set of parameters. */
Q8X_INLINE __m256i q8x_high_mul(__m256i x, __m256i m, __m256i m_odd) {
    const __m256i nudge = _mm256_set1_epi64x((long long)1 << 30);
    const __m256i min = _mm256_set1_epi32(INT32_MIN);
    const __m256i even = _mm256_add_epi64(_mm256_mul_epi32(x, m), nudge);
    const __m256i odd =
        _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), m_odd), nudge);
    const __m256i h =
        _mm256_blend_epi32(_mm256_srli_epi64(even, 31), _mm256_slli_epi64(odd, 1), 0xAA);
    const __m256i sat = _mm256_and_si256(_mm256_cmpeq_epi32(x, min), _mm256_cmpeq_epi32(m, min));
    return _mm256_xor_si256(h, sat);
}

Q8X_INLINE __m256i q8x_rounding_shift(__m256i h, __m256i right, __m256i mask, __m256i half) {
    const __m256i rem = _mm256_and_si256(h, mask);
    const __m256i threshold = _mm256_sub_epi32(half, _mm256_srai_epi32(h, 31));
    return _mm256_sub_epi32(_mm256_srav_epi32(h, right), _mm256_cmpgt_epi32(rem, threshold));
}

/* The requantization of 8 lanes, parameters as vectors. */
typedef struct q8x_rq {
    __m256i mult, mult_odd, left, right, mask, half;
    __m256i round; /* for tables that round short: q8x_rq_round */
} q8x_rq;

Q8X_INLINE q8x_rq q8x_rq_load(const mnv3_q8_rq_table *t, uint32_t c) {
    q8x_rq r;
    r.mult = _mm256_loadu_si256((const __m256i *)(const void *)(t->mult + c));
    r.mult_odd = _mm256_srli_epi64(r.mult, 32);
    r.left = _mm256_loadu_si256((const __m256i *)(const void *)(t->left + c));
    r.right = _mm256_loadu_si256((const __m256i *)(const void *)(t->right + c));
    r.mask = _mm256_loadu_si256((const __m256i *)(const void *)(t->mask + c));
    r.half = _mm256_loadu_si256((const __m256i *)(const void *)(t->half + c));
    return r;
}

/* One multiplier on every lane, from its vector form made once (mnv3_q8_vmul). */
Q8X_INLINE q8x_rq q8x_rq_bcast(const mnv3_q8_vmul *v) {
    q8x_rq r;
    r.mult = _mm256_set1_epi32(v->mult);
    r.mult_odd = r.mult;
    r.left = _mm256_set1_epi32(v->left);
    r.right = _mm256_set1_epi32(v->right);
    r.mask = _mm256_set1_epi32(v->mask);
    r.half = _mm256_set1_epi32(v->half);
    return r;
}

Q8X_INLINE q8x_rq q8x_rq_set1(mnv3_q8_mul m) {
    mnv3_q8_vmul v;
    mnv3_q8_vmul_of(m, &v);
    return q8x_rq_bcast(&v);
}

Q8X_INLINE __m256i q8x_requantize(__m256i acc, const q8x_rq *r) {
    return q8x_rounding_shift(q8x_high_mul(_mm256_sllv_epi32(acc, r->left), r->mult, r->mult_odd),
                              r->right, r->mask, r->half);
}

/* The doubling high multiply for lanes with no left shift and no INT32_MIN multiplier
 * (mnv3_q8_rq_table's `plain`): the product then always fits, and the shift is 0. */
Q8X_INLINE __m256i q8x_high_mul_plain(__m256i x, const q8x_rq *r) {
    const __m256i nudge = _mm256_set1_epi64x((long long)1 << 30);
    const __m256i even = _mm256_add_epi64(_mm256_mul_epi32(x, r->mult), nudge);
    const __m256i odd =
        _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), r->mult_odd), nudge);
    return _mm256_blend_epi32(_mm256_srli_epi64(even, 31), _mm256_slli_epi64(odd, 1), 0xAA);
}

Q8X_INLINE __m256i q8x_requantize_plain(__m256i x, const q8x_rq *r) {
    return q8x_rounding_shift(q8x_high_mul_plain(x, r), r->right, r->mask, r->half);
}

/* requantize + zero point, clamped */
Q8X_INLINE __m256i q8x_output(__m256i acc, const q8x_rq *r, __m256i zp, __m256i lo, __m256i hi) {
    const __m256i v = _mm256_add_epi32(q8x_requantize(acc, r), zp);
    return _mm256_min_epi32(_mm256_max_epi32(v, lo), hi);
}

Q8X_INLINE __m256i q8x_output_plain(__m256i acc, const q8x_rq *r, __m256i zp, __m256i lo,
                                    __m256i hi) {
    const __m256i v = _mm256_add_epi32(q8x_requantize_plain(acc, r), zp);
    return _mm256_min_epi32(_mm256_max_epi32(v, lo), hi);
}

/* requantize + zero point, unclamped: q8x_pack16_clamp clamps the bytes */
Q8X_INLINE __m256i q8x_requantize_zp(__m256i acc, const q8x_rq *r, __m256i zp) {
    return _mm256_add_epi32(q8x_requantize(acc, r), zp);
}

Q8X_INLINE __m256i q8x_requantize_zp_plain(__m256i acc, const q8x_rq *r, __m256i zp) {
    return _mm256_add_epi32(q8x_requantize_plain(acc, r), zp);
}

/* requantize + zero point for a table that rounds short (mnv3_q8_rq_table.rounds_short):
 * with round = half + 1 + (zp << right), (h + round + (h >> 31)) >> right is the rounding
 * shift of h plus the zero point. */
Q8X_INLINE void q8x_rq_round(q8x_rq *r, __m256i zp) {
    r->round = _mm256_add_epi32(_mm256_add_epi32(r->half, _mm256_set1_epi32(1)),
                                _mm256_sllv_epi32(zp, r->right));
}

Q8X_INLINE __m256i q8x_requantize_zp_short(__m256i acc, const q8x_rq *r) {
    const __m256i h = q8x_high_mul_plain(acc, r);
    return _mm256_srav_epi32(
        _mm256_add_epi32(_mm256_add_epi32(h, r->round), _mm256_srai_epi32(h, 31)), r->right);
}

/* 8 int32 lanes in [-128, 127] as 8 bytes (the low half of the result). */
Q8X_INLINE __m128i q8x_pack8(__m256i v) {
    const __m256i p = _mm256_permute4x64_epi64(_mm256_packs_epi32(v, v), 0x08);
    const __m128i w = _mm256_castsi256_si128(p);
    return _mm_packs_epi16(w, w);
}

/* 16 int32 lanes in [-128, 127] (v0 then v1) as 16 bytes. */
Q8X_INLINE __m128i q8x_pack16(__m256i v0, __m256i v1) {
    const __m256i p = _mm256_permute4x64_epi64(_mm256_packs_epi32(v0, v1), 0xD8);
    return _mm_packs_epi16(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
}

/* 16 int32 lanes (v0 then v1) as 16 bytes clamped to [lo, hi]. The saturating packs
 * first and the clamp on bytes give the clamp of the int32 values, since [lo, hi] lies
 * within int8; one byte clamp replaces four on int32 lanes. */
Q8X_INLINE __m128i q8x_pack16_clamp(__m256i v0, __m256i v1, __m128i lo, __m128i hi) {
    return _mm_min_epi8(_mm_max_epi8(q8x_pack16(v0, v1), lo), hi);
}

/* The epilogue of a tile of 16 columns: a row's two accumulator vectors as bytes. */
typedef struct q8x_out16 {
    q8x_rq q0, q1;
    __m256i zp;
    __m128i lo, hi;
} q8x_out16;

Q8X_INLINE q8x_out16 q8x_out16_load(const mnv3_q8_rq_table *rq) {
    q8x_out16 o;
    o.q0 = q8x_rq_load(rq, 0);
    o.q1 = q8x_rq_load(rq, 8);
    o.zp = _mm256_set1_epi32(rq->out_zp);
    q8x_rq_round(&o.q0, o.zp);
    q8x_rq_round(&o.q1, o.zp);
    o.lo = _mm_set1_epi8((char)rq->lo);
    o.hi = _mm_set1_epi8((char)rq->hi);
    return o;
}

/* How a table requantizes (callers branch once, outside their rows). */
enum { Q8X_RQ_ANY, Q8X_RQ_PLAIN, Q8X_RQ_SHORT };

Q8X_INLINE int q8x_rq_form(const mnv3_q8_rq_table *rq) {
    return rq->rounds_short ? Q8X_RQ_SHORT : rq->plain ? Q8X_RQ_PLAIN : Q8X_RQ_ANY;
}

/* requantize + zero point in the given form (q8x_rq_round done for Q8X_RQ_SHORT) */
Q8X_INLINE __m256i q8x_requantize_zp_as(__m256i acc, const q8x_rq *r, __m256i zp, const int form) {
    return form == Q8X_RQ_SHORT   ? q8x_requantize_zp_short(acc, r)
           : form == Q8X_RQ_PLAIN ? q8x_requantize_zp_plain(acc, r, zp)
                                  : q8x_requantize_zp(acc, r, zp);
}

/* half: only the first 8 columns are stored, so c1 is not requantized. */
Q8X_INLINE __m128i q8x_out16_bytes(const q8x_out16 *o, __m256i c0, __m256i c1, const int form,
                                   const int half) {
    const __m256i v0 = q8x_requantize_zp_as(c0, &o->q0, o->zp, form);
    const __m256i v1 =
        half ? _mm256_setzero_si256() : q8x_requantize_zp_as(c1, &o->q1, o->zp, form);
    return q8x_pack16_clamp(v0, v1, o->lo, o->hi);
}

/* The first min(n, 16) bytes of b. A tile's last panel is often 8 columns wide (24, 40,
 * 72, 120 channels): fixed-size moves, since a memcpy of n bytes is a library call per
 * row. */
Q8X_INLINE void q8x_store_bytes(int8_t *out, __m128i b, uint32_t n) {
    if (n >= 16) {
        _mm_storeu_si128((__m128i *)(void *)out, b);
        return;
    }
    if (n & 8) {
        _mm_storel_epi64((__m128i *)(void *)out, b);
        b = _mm_srli_si128(b, 8);
        out += 8;
    }
    if (n & 4) {
        const int32_t v = _mm_cvtsi128_si32(b);
        memcpy(out, &v, 4);
        b = _mm_srli_si128(b, 4);
        out += 4;
    }
    if (n & 2) {
        const int16_t v = (int16_t)_mm_cvtsi128_si32(b);
        memcpy(out, &v, 2);
        b = _mm_srli_si128(b, 2);
        out += 2;
    }
    if (n & 1) *out = (int8_t)_mm_cvtsi128_si32(b);
}

/* 4 bytes at p (a pair of int16, or 4 bytes) on every 32-bit lane. */
Q8X_INLINE __m256i q8x_bcast_pair(const unsigned char *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

Q8X_INLINE __m256i q8x_load8(const int8_t *p) {
    return _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)p));
}

Q8X_INLINE int32_t q8x_hsum(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

/* The gate by its split (mnv3_q8_gate_split): 8 lanes of x times the gate of channels
 * [c, c + 8), requantized, before the zero point. b_neg = 2^(s+14), shift = s + 15. */
typedef struct q8x_gate_split {
    const int32_t *split;
    size_t stride;
    __m256i b_neg;
    __m128i shift;
} q8x_gate_split;

Q8X_INLINE __m256i q8x_gate_by_split(__m256i x, const q8x_gate_split *g, uint32_t c) {
#define Q8X_SPLIT(i) _mm256_loadu_si256((const __m256i *)(const void *)(g->split + (i) * g->stride + c))
    const __m256i low = _mm256_srai_epi32(
        _mm256_add_epi32(_mm256_mullo_epi32(x, Q8X_SPLIT(1)), Q8X_SPLIT(2)), 16);
    const __m256i b = _mm256_add_epi32(
        _mm256_add_epi32(_mm256_mullo_epi32(x, Q8X_SPLIT(0)), Q8X_SPLIT(3)), low);
#undef Q8X_SPLIT
    const __m256i neg = _mm256_cmpgt_epi32(g->b_neg, b);
    return _mm256_sra_epi32(_mm256_add_epi32(b, _mm256_slli_epi32(neg, 15)), g->shift);
}

/* How a row is gated (callers branch once, outside their rows). */
enum { Q8X_GATE_NONE, Q8X_GATE_ANY, Q8X_GATE_PLAIN, Q8X_GATE_SPLIT };

/* The gate's output for 8 input lanes x (int32), clamped to the activation range: by the
 * split, or by the multiplier in grq. xzp/gzp: the two inputs' zero points, zp the
 * output's; lo/hi the activation range. For the 16-bit format, which stores the output
 * minus its zero point, zp is 0 and lo/hi are the range minus the zero point: the same
 * values, two operations fewer. */
typedef struct q8x_gate_consts {
    __m256i xzp, gzp, zp, lo, hi;
} q8x_gate_consts;

Q8X_INLINE __m256i q8x_gate8(__m256i v, const int8_t *gate, uint32_t c, const q8x_rq *grq,
                             const q8x_gate_split *gs, const q8x_gate_consts *g,
                             const int gate_form) {
    if (gate_form == Q8X_GATE_SPLIT) {
        v = _mm256_add_epi32(q8x_gate_by_split(v, gs, c), g->zp);
        return _mm256_min_epi32(_mm256_max_epi32(v, g->lo), g->hi);
    } else {
        const __m256i prod = _mm256_mullo_epi32(_mm256_sub_epi32(v, g->xzp),
                                                _mm256_sub_epi32(q8x_load8(gate + c), g->gzp));
        return gate_form == Q8X_GATE_PLAIN ? q8x_output_plain(prod, grq, g->zp, g->lo, g->hi)
                                           : q8x_output(prod, grq, g->zp, g->lo, g->hi);
    }
}

/* One prepared row: the gated or 8-bit formats 8 input bytes at a time through int32
 * lanes (the gate needs them; gated 16-bit rows 16 at a time), the common ungated 16-bit
 * case 16 at a time, the tail by the portable code. grq: the gate's multiplier and gs its
 * split, as gate_form needs them. gate_form and format are constants at every call, so
 * that each pair is a loop of its own: the row's stores may alias the gate's fields,
 * which the constants hold instead. */
Q8X_INLINE int32_t q8x_prepare_row(const int8_t *x, uint32_t k, uint32_t kpad,
                                   const mnv3_q8_gate *gate, const q8x_rq *grq,
                                   const q8x_gate_split *gs, const q8x_gate_consts *gc,
                                   const int gate_form, int32_t in_zp,
                                   const mnv3_q8_format format, void *dst) {
    const __m256i zp = _mm256_set1_epi32(in_zp), off = _mm256_set1_epi32(128);
    const int8_t *g = gate ? gate->gate : NULL;
    __m256i sum = _mm256_setzero_si256();
    uint32_t i = 0;
    if (gate_form == Q8X_GATE_NONE && format == MNV3_Q8_A_S16) {
        const __m256i zp16 = _mm256_set1_epi16((short)in_zp);
        int16_t *d = (int16_t *)dst;
        for (; i + 16 <= k; i += 16)
            _mm256_storeu_si256(
                (__m256i *)(void *)(d + i),
                _mm256_sub_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128(
                                     (const __m128i *)(const void *)(x + i))),
                                 zp16));
        /* The tail here too: rows of 24 to 200 channels end in 8, and short rows are
         * prepared by the thousand. The 16-bit format has no row sum. */
        if (i + 8 <= k) {
            _mm_storeu_si128((__m128i *)(void *)(d + i),
                             _mm_sub_epi16(_mm_cvtepi8_epi16(_mm_loadl_epi64(
                                               (const __m128i *)(const void *)(x + i))),
                                           _mm256_castsi256_si128(zp16)));
            i += 8;
        }
        for (; i < k; ++i) d[i] = (int16_t)(x[i] - in_zp);
        for (; i < kpad; ++i) d[i] = 0;
        return 0;
    } else if (gate_form == Q8X_GATE_NONE && format == MNV3_Q8_A_U8) {
        /* x ^ 0x80, 32 at a time; the row sum of the u8 values by vpsadbw. */
        const __m256i flip = _mm256_set1_epi8((char)0x80), zero = _mm256_setzero_si256();
        __m256i sad = zero;
        for (; i + 32 <= k; i += 32) {
            const __m256i u = _mm256_xor_si256(
                _mm256_loadu_si256((const __m256i *)(const void *)(x + i)), flip);
            _mm256_storeu_si256((__m256i *)(void *)((uint8_t *)dst + i), u);
            sad = _mm256_add_epi64(sad, _mm256_sad_epu8(u, zero));
        }
        /* four 64-bit partial sums, each below 2^32 */
        sum = _mm256_shuffle_epi32(sad, 0x08);
        sum = _mm256_blend_epi32(sum, zero, 0xCC);
    } else if (gate_form != Q8X_GATE_NONE && format == MNV3_Q8_A_S16) {
        /* 16 at a time: both halves' int16 values in one store (gc: zp 0) */
        for (; i + 16 <= k; i += 16) {
            const __m256i lo = q8x_gate8(q8x_load8(x + i), g, i, grq, gs, gc, gate_form);
            const __m256i hi = q8x_gate8(q8x_load8(x + i + 8), g, i + 8, grq, gs, gc, gate_form);
            _mm256_storeu_si256((__m256i *)(void *)((int16_t *)dst + i),
                                _mm256_permute4x64_epi64(_mm256_packs_epi32(lo, hi), 0xD8));
        }
    }
    for (; i + 8 <= k; i += 8) {
        __m256i v = q8x_load8(x + i);
        if (gate_form != Q8X_GATE_NONE) v = q8x_gate8(v, g, i, grq, gs, gc, gate_form);
        switch (format) {
        case MNV3_Q8_A_S16: {
            const __m256i d = gate_form != Q8X_GATE_NONE ? v : _mm256_sub_epi32(v, zp);
            const __m256i p = _mm256_permute4x64_epi64(_mm256_packs_epi32(d, d), 0x08);
            _mm_storeu_si128((__m128i *)(void *)((int16_t *)dst + i), _mm256_castsi256_si128(p));
            break;
        }
        case MNV3_Q8_A_U8:
            sum = _mm256_add_epi32(sum, _mm256_add_epi32(v, off));
            _mm_storel_epi64((__m128i *)(void *)((uint8_t *)dst + i),
                             _mm_xor_si128(q8x_pack8(v), _mm_set1_epi8((char)0x80)));
            break;
        case MNV3_Q8_A_S8:
        default:
            sum = _mm256_add_epi32(sum, v);
            _mm_storel_epi64((__m128i *)(void *)((int8_t *)dst + i), q8x_pack8(v));
            break;
        }
    }
    return (int32_t)((uint32_t)q8x_hsum(sum) +
                     (uint32_t)mnv3_q8_prepare_row_rest(x, i, k, kpad, gate, in_zp, format, dst));
}

static Q8X_ATTR void q8x_prepare_rows(const mnv3_q8_prepare_args *p) {
    q8x_rq grq;
    q8x_gate_split gs;
    q8x_gate_consts gc, gc16;
    const int form = !p->gate        ? Q8X_GATE_NONE
                     : p->gate_split ? Q8X_GATE_SPLIT
                     : p->params->gate_plain ? Q8X_GATE_PLAIN
                                             : Q8X_GATE_ANY;
    /* Locals, not p's fields: the rows' stores may alias p, and rows are often a single
     * vector long, so reloading the fields per row showed in profiles. */
    const int8_t *x = p->x;
    unsigned char *dst = p->dst;
    int32_t *const row_sums = p->row_sums;
    const mnv3_q8_gate *const gate = p->gate;
    const size_t x_stride = p->x_stride, dst_stride = p->dst_stride;
    const uint32_t rows = p->rows, k = p->k, kpad = p->kpad;
    const int32_t in_zp = p->in_zp;
    uint32_t r;
    gc.xzp = gc.gzp = gc.lo = gc.hi = _mm256_setzero_si256();
    gc.zp = _mm256_set1_epi32(p->in_zp);
    gs.split = NULL;
    gs.stride = 0;
    gs.b_neg = _mm256_setzero_si256();
    gs.shift = _mm_setzero_si128();
    grq = q8x_rq_bcast(&p->params->gate_v);
    if (form != Q8X_GATE_NONE) {
        gc.xzp = _mm256_set1_epi32(p->gate->x_zp);
        gc.gzp = _mm256_set1_epi32(p->gate->gate_zp);
        gc.lo = _mm256_set1_epi32(p->gate->act_lo);
        gc.hi = _mm256_set1_epi32(p->gate->act_hi);
    }
    gc16 = gc;
    gc16.zp = _mm256_setzero_si256();
    gc16.lo = _mm256_sub_epi32(gc.lo, gc.zp);
    gc16.hi = _mm256_sub_epi32(gc.hi, gc.zp);
    if (form == Q8X_GATE_SPLIT) {
        gs.split = p->gate_split;
        gs.stride = p->gate_split_stride;
        gs.b_neg = _mm256_set1_epi32((int32_t)1 << (14 - p->gate->qmul.shift));
        gs.shift = _mm_cvtsi32_si128(15 - p->gate->qmul.shift);
    }
#define Q8X_PREPARE_ROWS(form, format)                                                       \
    for (r = 0; r < rows; ++r, x += x_stride, dst += dst_stride) {                           \
        const int32_t sum = q8x_prepare_row(x, k, kpad, gate, &grq, &gs,                     \
                                            format == MNV3_Q8_A_S16 ? &gc16 : &gc, form,     \
                                            in_zp, format, dst);                             \
        if (row_sums) row_sums[r] = sum;                                                     \
    }
#define Q8X_PREPARE_FORMATS(form)                                                            \
    switch (p->format) {                                                                     \
    case MNV3_Q8_A_S16: Q8X_PREPARE_ROWS(form, MNV3_Q8_A_S16) break;                         \
    case MNV3_Q8_A_U8: Q8X_PREPARE_ROWS(form, MNV3_Q8_A_U8) break;                           \
    default: Q8X_PREPARE_ROWS(form, MNV3_Q8_A_S8) break;                                     \
    }
    switch (form) {
    case Q8X_GATE_NONE: Q8X_PREPARE_FORMATS(Q8X_GATE_NONE) break;
    case Q8X_GATE_SPLIT: Q8X_PREPARE_FORMATS(Q8X_GATE_SPLIT) break;
    case Q8X_GATE_PLAIN: Q8X_PREPARE_FORMATS(Q8X_GATE_PLAIN) break;
    default: Q8X_PREPARE_FORMATS(Q8X_GATE_ANY) break;
    }
#undef Q8X_PREPARE_FORMATS
#undef Q8X_PREPARE_ROWS
}

#if defined(Q8X_LUT_VBMI)
/* 32 bytes through a 256-byte table (AVX512-VBMI): vpermi2b looks up the low 7 bits of
 * each byte in 128 table bytes held in two zmm, once in each half of the table, and the
 * byte's sign picks the half: a negative x is entry x + 128 < 128. */
Q8X_INLINE __m256i q8x_lut32(__m256i x, const int8_t *lut) {
    const __m512i idx = _mm512_castsi256_si512(x);
#define Q8X_LUT_QUARTER(q) _mm512_loadu_si512((const void *)(lut + 64 * (q)))
    const __m512i low = _mm512_permutex2var_epi8(Q8X_LUT_QUARTER(0), idx, Q8X_LUT_QUARTER(1));
    const __m512i high = _mm512_permutex2var_epi8(Q8X_LUT_QUARTER(2), idx, Q8X_LUT_QUARTER(3));
#undef Q8X_LUT_QUARTER
    return _mm512_castsi512_si256(_mm512_mask_blend_epi8(_mm512_movepi8_mask(idx), high, low));
}
#else
/* 32 bytes through a 256-byte table: vpshufb looks up the low 4 bits of the index in each
 * of the 16 rows of 16 bytes (read from memory as operands), and a tree of blends on bits
 * 4..7 keeps the right row (vpblendvb reads each byte's top bit, where a 16-bit shift left
 * by 3..0 puts bit 4..7). */
Q8X_INLINE __m256i q8x_lut32(__m256i x, const int8_t *lut) {
    const __m256i idx = _mm256_xor_si256(x, _mm256_set1_epi8((char)0x80));
    const __m256i lo = _mm256_and_si256(idx, _mm256_set1_epi8(0x0F));
    const __m256i b4 = _mm256_slli_epi16(idx, 3), b5 = _mm256_slli_epi16(idx, 2);
    const __m256i b6 = _mm256_slli_epi16(idx, 1);
    __m256i v[8], w[4], y[2];
    unsigned t;
#define Q8X_LUT_ROW(t)                                                                       \
    _mm256_shuffle_epi8(                                                                     \
        _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(lut + 16 * (t)))), \
        lo)
    for (t = 0; t < 8; ++t)
        v[t] = _mm256_blendv_epi8(Q8X_LUT_ROW(2 * t), Q8X_LUT_ROW(2 * t + 1), b4);
#undef Q8X_LUT_ROW
    for (t = 0; t < 4; ++t) w[t] = _mm256_blendv_epi8(v[2 * t], v[2 * t + 1], b5);
    for (t = 0; t < 2; ++t) y[t] = _mm256_blendv_epi8(w[2 * t], w[2 * t + 1], b6);
    return _mm256_blendv_epi8(y[0], y[1], idx);
}
#endif

static Q8X_ATTR void q8x_lut(int8_t *x, size_t n, const int8_t *lut) {
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
        _mm256_storeu_si256(
            (__m256i *)(void *)(x + i),
            q8x_lut32(_mm256_loadu_si256((const __m256i *)(const void *)(x + i)), lut));
    mnv3_q8_lut_portable(x + i, n - i, lut);
}

/* One input of the ADD rescaled by its split (mnv3_q8_add_split), as vectors. */
typedef struct q8x_add_in {
    __m256i zp, hi, lo, hi_add, lo_add, neg;
    __m128i shift;
} q8x_add_in;

Q8X_INLINE q8x_add_in q8x_add_in_make(const mnv3_q8_add_split *s) {
    q8x_add_in v;
    v.zp = _mm256_set1_epi32(s->zp);
    v.hi = _mm256_set1_epi32(s->hi);
    v.lo = _mm256_set1_epi32(s->lo);
    v.hi_add = _mm256_set1_epi32(s->hi_add);
    v.lo_add = _mm256_set1_epi32(s->lo_add);
    v.neg = _mm256_set1_epi32(s->neg);
    v.shift = _mm_cvtsi32_si128(s->shift);
    return v;
}

/* The low 8 bytes of x8, each v rescaled: (v*hi + hi_add + (v < zp ? neg : 0) +
 * ((v*lo + lo_add) >> 11)) >> shift. lo < 2^11 and v fit int16, so vpmaddwd forms v*lo
 * (each lane's upper half of lo is 0). */
Q8X_INLINE __m256i q8x_add_rescale(__m128i x8, const q8x_add_in *s) {
    const __m256i v = _mm256_cvtepi8_epi32(x8);
    const __m256i high = _mm256_add_epi32(_mm256_mullo_epi32(v, s->hi), s->hi_add);
    const __m256i low = _mm256_srai_epi32(_mm256_add_epi32(_mm256_madd_epi16(v, s->lo), s->lo_add), 11);
    const __m256i neg = _mm256_and_si256(_mm256_cmpgt_epi32(s->zp, v), s->neg);
    return _mm256_sra_epi32(_mm256_add_epi32(_mm256_add_epi32(high, low), neg), s->shift);
}

/* TFLite's ADD as vectors: the three multipliers, the zero points, the range, and the
 * inputs' splits when the form is Q8X_ADD_SPLIT. */
typedef struct q8x_addv {
    q8x_rq a, b, out;
    __m256i a_zp, b_zp, out_zp;
    __m128i lo, hi, shift;
    q8x_add_in split_a, split_b;
} q8x_addv;

/* How the inputs are rescaled: by their multipliers in any form; by plain ones
 * (mnv3_q8_add_plain); by their splits (mnv3_q8_add_splits, which implies a plain output
 * multiplier). */
enum { Q8X_ADD_ANY, Q8X_ADD_PLAIN, Q8X_ADD_SPLIT };

/* splits: the inputs' splits (a, b), or NULL. */
Q8X_INLINE q8x_addv q8x_addv_make(const mnv3_q8_add *p, q8x_rq a, q8x_rq b, q8x_rq out,
                                  const mnv3_q8_add_split *splits) {
    q8x_addv v;
    v.a = a;
    v.b = b;
    v.out = out;
    v.a_zp = _mm256_set1_epi32(p->a_zp);
    v.b_zp = _mm256_set1_epi32(p->b_zp);
    v.out_zp = _mm256_set1_epi32(p->out_zp);
    v.lo = _mm_set1_epi8((char)p->act_lo);
    v.hi = _mm_set1_epi8((char)p->act_hi);
    v.shift = _mm_cvtsi32_si128(p->left_shift);
    if (splits) {
        v.split_a = q8x_add_in_make(&splits[0]);
        v.split_b = q8x_add_in_make(&splits[1]);
    } else {
        memset(&v.split_a, 0, sizeof v.split_a);
        memset(&v.split_b, 0, sizeof v.split_b);
    }
    return v;
}

/* The low 8 bytes of a8 and b8 added, as int32 lanes before the clamp. Q8X_ADD_PLAIN: no
 * multiplier shifts left or is INT32_MIN (the inputs' multipliers are at most 1/2, so
 * that is the case unless the output's scale is far below the inputs'). */
Q8X_INLINE __m256i q8x_add8(__m128i a8, __m128i b8, const q8x_addv *p, const int form) {
    __m256i va, vb;
    if (form == Q8X_ADD_SPLIT)
        return q8x_requantize_zp_plain(
            _mm256_add_epi32(q8x_add_rescale(a8, &p->split_a), q8x_add_rescale(b8, &p->split_b)),
            &p->out, p->out_zp);
    va = _mm256_sll_epi32(_mm256_sub_epi32(_mm256_cvtepi8_epi32(a8), p->a_zp), p->shift);
    vb = _mm256_sll_epi32(_mm256_sub_epi32(_mm256_cvtepi8_epi32(b8), p->b_zp), p->shift);
    if (form == Q8X_ADD_PLAIN)
        return q8x_requantize_zp_plain(
            _mm256_add_epi32(q8x_requantize_plain(va, &p->a), q8x_requantize_plain(vb, &p->b)),
            &p->out, p->out_zp);
    return q8x_requantize_zp(
        _mm256_add_epi32(q8x_requantize(va, &p->a), q8x_requantize(vb, &p->b)), &p->out,
        p->out_zp);
}

/* 16 bytes of a and b added; half: only the low 8 are wanted. */
Q8X_INLINE __m128i q8x_add16(__m128i a16, __m128i b16, const q8x_addv *p, const int form,
                             const int half) {
    const __m256i low = q8x_add8(a16, b16, p, form);
    const __m256i high = half ? _mm256_setzero_si256()
                              : q8x_add8(_mm_unpackhi_epi64(a16, a16),
                                         _mm_unpackhi_epi64(b16, b16), p, form);
    return q8x_pack16_clamp(low, high, p->lo, p->hi);
}

Q8X_INLINE size_t q8x_add_span(const int8_t *a, const int8_t *b, size_t n, const q8x_addv *p,
                               int8_t *out, const int form) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm_storeu_si128(
            (__m128i *)(void *)(out + i),
            q8x_add16(_mm_loadu_si128((const __m128i *)(const void *)(a + i)),
                      _mm_loadu_si128((const __m128i *)(const void *)(b + i)), p, form, 0));
    return i;
}

static Q8X_ATTR void q8x_add(const int8_t *a, const int8_t *b, size_t n, const mnv3_q8_add *p,
                             int8_t *out) {
    mnv3_q8_add_split splits[2];
    const int split = mnv3_q8_add_splits(p, splits), plain = mnv3_q8_add_plain(p);
    const q8x_addv v = q8x_addv_make(p, q8x_rq_set1(p->a_mul), q8x_rq_set1(p->b_mul),
                                     q8x_rq_set1(p->out_mul), split ? splits : NULL);
    size_t i;
    i = split   ? q8x_add_span(a, b, n, &v, out, Q8X_ADD_SPLIT)
        : plain ? q8x_add_span(a, b, n, &v, out, Q8X_ADD_PLAIN)
                : q8x_add_span(a, b, n, &v, out, Q8X_ADD_ANY);
    mnv3_q8_add_portable(a + i, b + i, n - i, p, out + i);
}

/* Up to 16 bytes (n of them) from p, without reading beyond them. */
/* The first min(n, 16) bytes at p, zeros after them; fixed-size moves as q8x_store_bytes. */
Q8X_INLINE __m128i q8x_load_bytes(const int8_t *p, uint32_t n) {
    uint64_t low = 0, high = 0, rest = 0;
    unsigned shift = 0;
    if (n >= 16) return _mm_loadu_si128((const __m128i *)(const void *)p);
    if (n & 8) {
        memcpy(&low, p, 8);
        p += 8;
    }
    if (n & 4) {
        uint32_t v;
        memcpy(&v, p, 4);
        rest = v;
        shift = 32;
        p += 4;
    }
    if (n & 2) {
        uint16_t v;
        memcpy(&v, p, 2);
        rest |= (uint64_t)v << shift;
        shift += 16;
        p += 2;
    }
    if (n & 1) rest |= (uint64_t)(uint8_t)*p << shift;
    if (n & 8)
        high = rest;
    else
        low = rest;
    return _mm_set_epi64x((long long)high, (long long)low);
}

/* The end of a tile of M rows of 16 columns (b[r]: row r's requantized, clamped bytes):
 * what mnv3_q8_gemm_tile asks after requantization, in registers. Rows go through the
 * LUT two at a time, 32 bytes being what one table lookup handles. */
Q8X_INLINE void q8x_finish_rows16(const mnv3_q8_gemm_tile *t, __m128i *b, const uint32_t M) {
    const uint32_t nc = t->nc;
    uint32_t r;
    if (t->lut)
        for (r = 0; r < M; r += 2) {
            const __m256i y = q8x_lut32(r + 1 < M ? _mm256_set_m128i(b[r + 1], b[r])
                                                  : _mm256_castsi128_si256(b[r]),
                                        t->lut);
            b[r] = _mm256_castsi256_si128(y);
            if (r + 1 < M) b[r + 1] = _mm256_extracti128_si256(y, 1);
        }
    if (t->residual) {
        const mnv3_q8_params *p = t->params;
        const q8x_addv v =
            q8x_addv_make(&p->add, q8x_rq_bcast(&p->add_v[0]), q8x_rq_bcast(&p->add_v[1]),
                          q8x_rq_bcast(&p->add_v[2]), p->add_splits ? p->add_in : NULL);
#define Q8X_ADD_ROWS(form, half)                                                             \
    for (r = 0; r < M; ++r)                                                                  \
        b[r] = q8x_add16(b[r], q8x_load_bytes(t->residual + r * t->residual_stride, nc), &v, \
                         form, half);
        /* a short last panel (nc <= 8): half the lanes */
        if (p->add_splits) {
            if (nc <= 8)
                Q8X_ADD_ROWS(Q8X_ADD_SPLIT, 1)
            else
                Q8X_ADD_ROWS(Q8X_ADD_SPLIT, 0)
        } else if (!p->add_plain) {
            Q8X_ADD_ROWS(Q8X_ADD_ANY, 0)
        } else if (nc <= 8) {
            Q8X_ADD_ROWS(Q8X_ADD_PLAIN, 1)
        } else {
            Q8X_ADD_ROWS(Q8X_ADD_PLAIN, 0)
        }
#undef Q8X_ADD_ROWS
    }
    for (r = 0; r < M; ++r) q8x_store_bytes(t->out + r * t->out_stride, b[r], nc);
    if (t->sums) {
        __m256i s16 = _mm256_setzero_si256(), lo, hi;
        int32_t add[16];
        uint32_t c;
        for (r = 0; r < M; ++r) s16 = _mm256_add_epi16(s16, _mm256_cvtepi8_epi16(b[r]));
        lo = _mm256_cvtepi16_epi32(_mm256_castsi256_si128(s16));
        hi = _mm256_cvtepi16_epi32(_mm256_extracti128_si256(s16, 1));
        if (nc >= 16) {
            __m256i *s = (__m256i *)(void *)t->sums;
            _mm256_storeu_si256(s, _mm256_add_epi32(_mm256_loadu_si256(s), lo));
            _mm256_storeu_si256(s + 1, _mm256_add_epi32(_mm256_loadu_si256(s + 1), hi));
            return;
        }
        _mm256_storeu_si256((__m256i *)(void *)add, lo);
        _mm256_storeu_si256((__m256i *)(void *)(add + 8), hi);
        for (c = 0; c < nc; ++c) t->sums[c] = (int32_t)((uint32_t)t->sums[c] + (uint32_t)add[c]);
    }
}

/* A set's vector requantization on arrays, for the tests: `lanes` (8 or 16) at a time,
 * by requantize(in, table, res) with the table of mnv3_q8_rq_fill's arrays. */
typedef void (*q8x_requantize_lanes)(const int32_t *in, const mnv3_q8_rq_table *t, int32_t *res);
static inline Q8X_ATTR void q8x_requantize_array_by(const int32_t *acc, const mnv3_q8_mul *m,
                                                    size_t n, int32_t *out, const uint32_t lanes,
                                                    q8x_requantize_lanes requantize) {
    int32_t arrays[16 * 6 + 4];
    mnv3_q8_rq_table t;
    mnv3_q8_requant r;
    size_t i, j;
    r.qmul = m;
    r.out_zp = 0;
    r.act_lo = INT32_MIN;
    r.act_hi = INT32_MAX;
    r.lut = NULL;
    for (i = 0; i < n; i += lanes) {
        const uint32_t count = n - i < lanes ? (uint32_t)(n - i) : lanes;
        int32_t in[16] = {0}, res[16];
        mnv3_q8_rq_fill(arrays, m, (uint32_t)i, lanes, (uint32_t)n, NULL);
        mnv3_q8_rq_view(&t, arrays, lanes, &r);
        for (j = 0; j < count; ++j) in[j] = acc[i + j];
        requantize(in, &t, res);
        for (j = 0; j < count; ++j) out[i + j] = res[j];
    }
}

static inline Q8X_ATTR void q8x_requantize8(const int32_t *in, const mnv3_q8_rq_table *t,
                                            int32_t *res) {
    const q8x_rq rq = q8x_rq_load(t, 0);
    _mm256_storeu_si256((__m256i *)(void *)res,
                        q8x_requantize(_mm256_loadu_si256((const __m256i *)(const void *)in), &rq));
}

static inline Q8X_ATTR void q8x_requantize_array(const int32_t *acc, const mnv3_q8_mul *m,
                                                 size_t n, int32_t *out) {
    q8x_requantize_array_by(acc, m, n, out, 8, q8x_requantize8);
}

#endif
