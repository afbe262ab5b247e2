/* NEON int8 kernels: the plain set for every NEON core (Cortex-A53/A72, ARMv7 NEON-VFPv4)
 * and, on AArch64, the dot-product set (ARMv8.2 SDOT, Cortex-A55/A76 and later), chosen at
 * run time from HWCAP_ASIMDDP.
 *
 * Plain NEON multiplies 16-bit values with SMLAL into int32 lanes, which is exact: rows are
 * prepared as int16 x - in_zp, weights packed as int16 w - weight_zp, [k][8 columns]. SDOT
 * multiplies int8 x by int8 w four at a time, with the zero points folded at pack time
 * (q8_impl.h): weights [k/4][16][4], rows as they are.
 *
 * Requantization is TFLite's NEON sequence, which equals mnv3_q8_requantize bit for bit:
 * SQRDMULH is exactly the saturating doubling high multiply (2*x*m + 2^31) >> 32 =
 * floor((x*m + 2^30) / 2^31), saturating INT32_MIN * INT32_MIN; SRSHL by -e rounds halves
 * up, so negative values first get -1 (saturating, which leaves INT32_MIN where the exact
 * result is the same) to round their halves away from zero as RoundingDivideByPOT does. */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1
#endif
#include "base/checked.h"
#include "kernels/kernels.h"

#if defined(MNV3_HAVE_NEON_KERNELS)
#include <arm_neon.h>
#include <string.h>

#include "kernels/q8_impl.h"
#include "kernels/q8_scalar.h"
#if defined(__aarch64__)
#include "kernels/generated/neon_q8_dw_loops.h"
#include "kernels/generated/neon_q8_gemm_loops.h"
#endif

#if defined(__aarch64__) && (defined(__linux__) || defined(__ANDROID__))
#include <sys/auxv.h>
#elif defined(__aarch64__) && defined(__APPLE__)
#include <sys/sysctl.h>
#endif

#define N_INLINE static inline __attribute__((always_inline))

/* ------------------------------------------------------------------------------------ */
/* Requantization and byte helpers                                                       */
/* ------------------------------------------------------------------------------------ */

typedef struct nq8_rq {
    int32x4_t mult, left, neg_right;
} nq8_rq;

N_INLINE nq8_rq nq8_rq_load(const mnv3_q8_rq_table *t, uint32_t c) {
    nq8_rq r;
    r.mult = vld1q_s32(t->mult + c);
    r.left = vld1q_s32(t->left + c);
    r.neg_right = vld1q_s32(t->neg_right + c);
    return r;
}

N_INLINE nq8_rq nq8_rq_set1(mnv3_q8_mul m) {
    nq8_rq r;
    r.mult = vdupq_n_s32(m.multiplier);
    r.left = vdupq_n_s32(m.shift > 0 ? m.shift : 0);
    r.neg_right = vdupq_n_s32(m.shift > 0 ? 0 : m.shift);
    return r;
}

/* Four channels' (multiplier, shift) pairs as vectors. */
N_INLINE nq8_rq nq8_rq_from_qmul(const mnv3_q8_mul *m) {
    const int32x4x2_t p = vld2q_s32((const int32_t *)(const void *)m);
    const int32x4_t zero = vdupq_n_s32(0);
    nq8_rq r;
    r.mult = p.val[0];
    r.left = vmaxq_s32(p.val[1], zero);
    r.neg_right = vminq_s32(p.val[1], zero);
    return r;
}

/* The requantization of acc already shifted left by r->left. */
N_INLINE int32x4_t nq8_requantize_shifted(int32x4_t shifted, const nq8_rq *r) {
    const int32x4_t v = vqrdmulhq_s32(shifted, r->mult);
    const int32x4_t fixup = vshrq_n_s32(vandq_s32(v, r->neg_right), 31);
    return vrshlq_s32(vqaddq_s32(v, fixup), r->neg_right);
}

N_INLINE int32x4_t nq8_requantize(int32x4_t acc, const nq8_rq *r) {
    return nq8_requantize_shifted(vshlq_s32(acc, r->left), r);
}

N_INLINE int32x4_t nq8_output(int32x4_t acc, const nq8_rq *r, int32x4_t zp, int32x4_t lo,
                              int32x4_t hi) {
    return vminq_s32(vmaxq_s32(vaddq_s32(nq8_requantize(acc, r), zp), lo), hi);
}

/* 8 lanes in [-128, 127] as bytes. */
N_INLINE int8x8_t nq8_narrow(int32x4_t v0, int32x4_t v1) {
    return vqmovn_s16(vcombine_s16(vqmovn_s32(v0), vqmovn_s32(v1)));
}

N_INLINE void nq8_store(int8_t *out, int8x8_t b, uint32_t n) {
    if (n >= 8) {
        vst1_s8(out, b);
    } else {
        int8_t buf[8];
        vst1_s8(buf, b);
        memcpy(out, buf, n);
    }
}

/* 16 bytes (two halves), or the first n of them (the AArch64 16-column tiles). */
N_INLINE void nq8_store16(int8_t *out, int8x8_t lo8, int8x8_t hi8, uint32_t n) {
    if (n >= 16) {
        vst1q_s8(out, vcombine_s8(lo8, hi8));
    } else {
        nq8_store(out, lo8, n);
        if (n > 8) nq8_store(out + 8, hi8, n - 8);
    }
}

N_INLINE int32_t nq8_hsum(int32x4_t v) {
    const int32x2_t s = vadd_s32(vget_low_s32(v), vget_high_s32(v));
    return vget_lane_s32(vpadd_s32(s, s), 0);
}

static void nq8_prepare_row(const int8_t *x, uint32_t k, uint32_t kpad, const mnv3_q8_gate *gate,
                            int32_t in_zp, mnv3_q8_format format, void *dst, int32_t *row_sum) {
    const int16x8_t zp16 = vdupq_n_s16((int16_t)in_zp);
    int32x4_t sum = vdupq_n_s32(0);
    uint32_t i = 0;
    int32_t tail_sum;
    for (; i + 8 <= k; i += 8) {
        int16x8_t v = vmovl_s8(vld1_s8(x + i));
        if (gate) {
            const nq8_rq rq = nq8_rq_set1(gate->qmul);
            const int32x4_t zp = vdupq_n_s32(in_zp), lo = vdupq_n_s32(gate->act_lo),
                            hi = vdupq_n_s32(gate->act_hi);
            const int16x8_t xd = vsubq_s16(v, vdupq_n_s16((int16_t)gate->x_zp));
            const int16x8_t gd = vsubq_s16(vmovl_s8(vld1_s8(gate->gate + i)),
                                           vdupq_n_s16((int16_t)gate->gate_zp));
            const int32x4_t p0 = vmull_s16(vget_low_s16(xd), vget_low_s16(gd));
            const int32x4_t p1 = vmull_s16(vget_high_s16(xd), vget_high_s16(gd));
            v = vcombine_s16(vqmovn_s32(nq8_output(p0, &rq, zp, lo, hi)),
                             vqmovn_s32(nq8_output(p1, &rq, zp, lo, hi)));
        }
        switch (format) {
        case MNV3_Q8_A_S16: vst1q_s16((int16_t *)dst + i, vsubq_s16(v, zp16)); break;
        case MNV3_Q8_A_U8: {
            const int16x8_t u = vaddq_s16(v, vdupq_n_s16(128));
            sum = vpadalq_s16(sum, u);
            vst1_u8((uint8_t *)dst + i, vqmovun_s16(u));
            break;
        }
        case MNV3_Q8_A_S8:
        default:
            sum = vpadalq_s16(sum, v);
            vst1_s8((int8_t *)dst + i, vqmovn_s16(v));
            break;
        }
    }
    tail_sum = mnv3_q8_prepare_row_rest(x, i, k, kpad, gate, in_zp, format, dst);
    if (row_sum) *row_sum = (int32_t)((uint32_t)nq8_hsum(sum) + (uint32_t)tail_sum);
}

static void nq8_prepare_rows(const mnv3_q8_prepare_args *p) {
    uint32_t r;
    for (r = 0; r < p->rows; ++r)
        nq8_prepare_row(p->x + (size_t)r * p->x_stride, p->k, p->kpad, p->gate, p->in_zp,
                        p->format, p->dst + (size_t)r * p->dst_stride,
                        p->row_sums ? &p->row_sums[r] : NULL);
}

/* TFLite's ADD as vectors. The inputs' left shift and their multipliers' own one are one
 * shift: both wrap modulo 2^32, as the reference's do. */
typedef struct nq8_addv {
    nq8_rq a, b, out;
    int16x8_t a_zp, b_zp;
    int32x4_t a_shift, b_shift, zp, lo, hi;
} nq8_addv;

N_INLINE nq8_addv nq8_addv_make(const mnv3_q8_add *p) {
    const int32x4_t shift = vdupq_n_s32(p->left_shift);
    nq8_addv v;
    v.a = nq8_rq_set1(p->a_mul);
    v.b = nq8_rq_set1(p->b_mul);
    v.out = nq8_rq_set1(p->out_mul);
    v.a_zp = vdupq_n_s16((int16_t)p->a_zp);
    v.b_zp = vdupq_n_s16((int16_t)p->b_zp);
    v.a_shift = vaddq_s32(shift, v.a.left);
    v.b_shift = vaddq_s32(shift, v.b.left);
    v.zp = vdupq_n_s32(p->out_zp);
    v.lo = vdupq_n_s32(p->act_lo);
    v.hi = vdupq_n_s32(p->act_hi);
    return v;
}

N_INLINE int32x4_t nq8_add4(int16x4_t da, int16x4_t db, const nq8_addv *v) {
    const int32x4_t sa = nq8_requantize_shifted(vshlq_s32(vmovl_s16(da), v->a_shift), &v->a);
    const int32x4_t sb = nq8_requantize_shifted(vshlq_s32(vmovl_s16(db), v->b_shift), &v->b);
    return nq8_output(vaddq_s32(sa, sb), &v->out, v->zp, v->lo, v->hi);
}

N_INLINE int8x8_t nq8_add8(int8x8_t a, int8x8_t b, const nq8_addv *v) {
    const int16x8_t da = vsubq_s16(vmovl_s8(a), v->a_zp);
    const int16x8_t db = vsubq_s16(vmovl_s8(b), v->b_zp);
    return nq8_narrow(nq8_add4(vget_low_s16(da), vget_low_s16(db), v),
                      nq8_add4(vget_high_s16(da), vget_high_s16(db), v));
}

static void nq8_add(const int8_t *a, const int8_t *b, size_t n, const mnv3_q8_add *p, int8_t *out) {
    const nq8_addv v = nq8_addv_make(p);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) vst1_s8(out + i, nq8_add8(vld1_s8(a + i), vld1_s8(b + i), &v));
    mnv3_q8_add_portable(a + i, b + i, n - i, p, out + i);
}

static void nq8_requantize_array(const int32_t *acc, const mnv3_q8_mul *m, size_t n, int32_t *out) {
    size_t i, j;
    for (i = 0; i < n; i += 4) {
        const uint32_t count = n - i < 4 ? (uint32_t)(n - i) : 4u;
        mnv3_q8_mul q[4];
        int32_t in[4] = {0}, res[4];
        nq8_rq rq;
        for (j = 0; j < 4; ++j) {
            q[j] = j < count ? m[i + j] : m[i];
            if (j < count) in[j] = acc[i + j];
        }
        rq = nq8_rq_from_qmul(q);
        vst1q_s32(res, nq8_requantize(vld1q_s32(in), &rq));
        for (j = 0; j < count; ++j) out[i + j] = res[j];
    }
}

#if defined(__aarch64__)
/* A 256-byte table as four 64-byte TBL/TBX lookups: TBX leaves a lane alone when its index,
 * taken modulo 256 after subtracting 64 per step, falls outside the 64 bytes. */
typedef struct nq8_lut_tab {
    uint8x16x4_t t[4];
} nq8_lut_tab;

N_INLINE void nq8_lut_load(nq8_lut_tab *tab, const int8_t *lut) {
    const uint8_t *t = (const uint8_t *)lut;
    tab->t[0] = vld1q_u8_x4(t);
    tab->t[1] = vld1q_u8_x4(t + 64);
    tab->t[2] = vld1q_u8_x4(t + 128);
    tab->t[3] = vld1q_u8_x4(t + 192);
}

N_INLINE int8x16_t nq8_lut16(int8x16_t x, const nq8_lut_tab *tab) {
    const uint8x16_t step = vdupq_n_u8(64);
    uint8x16_t idx = veorq_u8(vreinterpretq_u8_s8(x), vdupq_n_u8(0x80)), r;
    r = vqtbl4q_u8(tab->t[0], idx);
    idx = vsubq_u8(idx, step);
    r = vqtbx4q_u8(r, tab->t[1], idx);
    idx = vsubq_u8(idx, step);
    r = vqtbx4q_u8(r, tab->t[2], idx);
    idx = vsubq_u8(idx, step);
    return vreinterpretq_s8_u8(vqtbx4q_u8(r, tab->t[3], idx));
}

/* b[0, n) (n at most 8) through the table, two vectors to a lookup, one 64-byte table at
 * a time: the four of them would take half the registers, and GCC builds a struct of
 * them on the stack. */
N_INLINE void nq8_lut_vectors(int8x8_t *b, uint32_t n, const int8_t *lut) {
    const uint8_t *t = (const uint8_t *)lut;
    const uint8x16_t flip = vdupq_n_u8(0x80), step = vdupq_n_u8(64);
    uint8x16x4_t tab = vld1q_u8_x4(t);
    uint8x16_t i0 = flip, i1 = flip, i2 = flip, i3 = flip, r0 = flip, r1 = flip, r2 = flip,
               r3 = flip;
    uint32_t p;
#define NQ8_LUT_PAIR(k)                                                                      \
    if (2 * k < n) {                                                                         \
        const int8x8_t hi = b[2 * k + 1 < n ? 2 * k + 1 : 2 * k];                            \
        i##k = veorq_u8(vreinterpretq_u8_s8(vcombine_s8(b[2 * k], hi)), flip);               \
        r##k = vqtbl4q_u8(tab, i##k);                                                        \
    }
    NQ8_LUT_PAIR(0)
    NQ8_LUT_PAIR(1)
    NQ8_LUT_PAIR(2)
    NQ8_LUT_PAIR(3)
#undef NQ8_LUT_PAIR
    for (p = 1; p < 4; ++p) {
        tab = vld1q_u8_x4(t + 64 * p);
#define NQ8_LUT_PAIR(k)                                                                      \
    if (2 * k < n) r##k = vqtbx4q_u8(r##k, tab, i##k = vsubq_u8(i##k, step));
        NQ8_LUT_PAIR(0)
        NQ8_LUT_PAIR(1)
        NQ8_LUT_PAIR(2)
        NQ8_LUT_PAIR(3)
#undef NQ8_LUT_PAIR
    }
#define NQ8_LUT_PAIR(k)                                                                      \
    if (2 * k < n) {                                                                         \
        b[2 * k] = vreinterpret_s8_u8(vget_low_u8(r##k));                                    \
        if (2 * k + 1 < n) b[2 * k + 1] = vreinterpret_s8_u8(vget_high_u8(r##k));            \
    }
    NQ8_LUT_PAIR(0)
    NQ8_LUT_PAIR(1)
    NQ8_LUT_PAIR(2)
    NQ8_LUT_PAIR(3)
#undef NQ8_LUT_PAIR
}

static void nq8_lut(int8_t *x, size_t n, const int8_t *lut) {
    nq8_lut_tab tab;
    size_t i = 0;
    nq8_lut_load(&tab, lut);
    for (; i + 16 <= n; i += 16) vst1q_s8(x + i, nq8_lut16(vld1q_s8(x + i), &tab));
    mnv3_q8_lut_portable(x + i, n - i, lut);
}
#else
/* ARMv7 looks up 8-byte indices in at most 32 bytes (VTBL/VTBX of four d registers), so the
 * table is eight pieces: VTBX leaves a lane alone when its index, taken modulo 256 after
 * subtracting 32 per piece, falls outside the piece. Each piece is loaded once for all of
 * b[0, n) (n at most 4): with the d registers the lookups keep, the table does not stay in
 * registers. The vectors are named, not indexed, so that they stay in registers. */
N_INLINE uint8x8x4_t nq8_lut_piece(const uint8_t *t) {
    uint8x8x4_t piece;
    piece.val[0] = vld1_u8(t);
    piece.val[1] = vld1_u8(t + 8);
    piece.val[2] = vld1_u8(t + 16);
    piece.val[3] = vld1_u8(t + 24);
    return piece;
}

N_INLINE void nq8_lut_vectors(int8x8_t *b, uint32_t n, const int8_t *lut) {
    const uint8_t *t = (const uint8_t *)lut;
    const uint8x8_t flip = vdup_n_u8(0x80), step = vdup_n_u8(32);
    uint8x8_t i0 = veor_u8(vreinterpret_u8_s8(b[0]), flip), i1 = i0, i2 = i0, i3 = i0;
    uint8x8x4_t piece = nq8_lut_piece(t);
    uint8x8_t r0 = vtbl4_u8(piece, i0), r1 = r0, r2 = r0, r3 = r0;
    uint32_t p;
    if (n > 1) r1 = vtbl4_u8(piece, i1 = veor_u8(vreinterpret_u8_s8(b[1]), flip));
    if (n > 2) r2 = vtbl4_u8(piece, i2 = veor_u8(vreinterpret_u8_s8(b[2]), flip));
    if (n > 3) r3 = vtbl4_u8(piece, i3 = veor_u8(vreinterpret_u8_s8(b[3]), flip));
    for (p = 1; p < 8; ++p) {
        piece = nq8_lut_piece(t + 32 * p);
        r0 = vtbx4_u8(r0, piece, i0 = vsub_u8(i0, step));
        if (n > 1) r1 = vtbx4_u8(r1, piece, i1 = vsub_u8(i1, step));
        if (n > 2) r2 = vtbx4_u8(r2, piece, i2 = vsub_u8(i2, step));
        if (n > 3) r3 = vtbx4_u8(r3, piece, i3 = vsub_u8(i3, step));
    }
    b[0] = vreinterpret_s8_u8(r0);
    if (n > 1) b[1] = vreinterpret_s8_u8(r1);
    if (n > 2) b[2] = vreinterpret_s8_u8(r2);
    if (n > 3) b[3] = vreinterpret_s8_u8(r3);
}

static void nq8_lut(int8_t *x, size_t n, const int8_t *lut) {
    size_t i = 0, j;
    for (; i + 32 <= n; i += 32) {
        int8x8_t b[4];
        for (j = 0; j < 4; ++j) b[j] = vld1_s8(x + i + 8 * j);
        nq8_lut_vectors(b, 4, lut);
        for (j = 0; j < 4; ++j) vst1_s8(x + i + 8 * j, b[j]);
    }
    mnv3_q8_lut_portable(x + i, n - i, lut);
}
#endif

/* Up to 8 bytes (n of them) from p, without reading beyond them. */
N_INLINE int8x8_t nq8_load(const int8_t *p, uint32_t n) {
    int8_t buf[8] = {0};
    if (n >= 8) return vld1_s8(p);
    memcpy(buf, p, n);
    return vld1_s8(buf);
}

/* Steps over the vectors of a tile, written out: a loop that indexes them would keep
 * them in memory. Conditions on constants (M, H, i) drop the steps past the tile. */
#define NQ8_VECTORS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

/* sums[0, n) += column h's bytes, b[i * H + h], of rows [0, M). At most 8 rows: 16-bit
 * column sums cannot overflow. */
N_INLINE void nq8_column_sums(int32_t *sums, const int8x8_t *b, const uint32_t M,
                              const uint32_t H, const uint32_t h, uint32_t n) {
    int16x8_t s16 = vmovl_s8(b[h]);
#define NQ8_SUM_ROW(i)                                                                       \
    if (i > 0 && i < M) s16 = vaddw_s8(s16, b[i * H + h]);
    NQ8_VECTORS(NQ8_SUM_ROW)
#undef NQ8_SUM_ROW
    if (n >= 8) {
        vst1q_s32(sums, vaddw_s16(vld1q_s32(sums), vget_low_s16(s16)));
        vst1q_s32(sums + 4, vaddw_s16(vld1q_s32(sums + 4), vget_high_s16(s16)));
    } else {
        int16_t add[8];
        uint32_t c;
        vst1q_s16(add, s16);
        for (c = 0; c < n; ++c) sums[c] = (int32_t)((uint32_t)sums[c] + (uint32_t)add[c]);
    }
}

/* The end of a tile of M rows (mnv3_q8_gemm_tile), on its requantized, clamped bytes:
 * b[r * H + h] holds columns [8h, 8h + 8) of row r, H = 1 or 2 vectors a row. */
N_INLINE void nq8_finish_rows(const mnv3_q8_gemm_tile *t, int8x8_t *b, const uint32_t M,
                              const uint32_t H) {
    const uint32_t nc = t->nc, n = M * H;
    if (t->lut) nq8_lut_vectors(b, n, t->lut);
    if (t->residual) {
        const nq8_addv v = nq8_addv_make(&t->params->add);
#define NQ8_ADD(i)                                                                           \
    if (i < n && 8 * (i % H) < nc)                                                           \
        b[i] = nq8_add8(                                                                     \
            b[i],                                                                            \
            nq8_load(t->residual + i / H * t->residual_stride + 8 * (i % H), nc - 8 * (i % H)), \
            &v);
        NQ8_VECTORS(NQ8_ADD)
#undef NQ8_ADD
    }
#define NQ8_STORE(i)                                                                         \
    if (i < n && i % H == 0) {                                                               \
        int8_t *o = t->out + i / H * t->out_stride;                                          \
        if (H == 2)                                                                          \
            nq8_store16(o, b[i], b[i | 1], nc);                                              \
        else                                                                                 \
            nq8_store(o, b[i], nc);                                                          \
    }
    NQ8_VECTORS(NQ8_STORE)
#undef NQ8_STORE
    if (t->sums) {
        nq8_column_sums(t->sums, b, M, H, 0, nc);
        if (H == 2 && nc > 8) nq8_column_sums(t->sums + 8, b, M, H, 1, nc - 8);
    }
}

/* NEON gates with vqrdmulh and does not read the gate's split. */
static const mnv3_q8_ops ops = {nq8_prepare_rows, nq8_lut, nq8_add, nq8_requantize_array, 0};

/* ------------------------------------------------------------------------------------ */
/* Plain NEON GEMM: SMLAL by lane on int16                                               */
/* ------------------------------------------------------------------------------------ */

#if defined(__aarch64__)
/* 8 rows x 2 vectors = 16 accumulators of the 32 registers. */
#define S16_MR 8
#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#else
/* 4 rows x 2 vectors = 8 accumulators of the 16 Q registers. */
#define S16_MR 4
#define ROWS(X) X(0) X(1) X(2) X(3)
#endif
#define S16_NR 8
/* k is padded with zero inputs and zero weights to the k steps of one loop iteration
 * (8 in the AArch64 loops of generated/neon_q8_gemm_loops.h, 4 in the ARMv7 one), so no step
 * is left over for a loop of its own. */
#if defined(__aarch64__)
#define S16_KR 8
#else
#define S16_KR 4
#endif

N_INLINE void nq8_store_rows_8(const mnv3_q8_gemm_tile *t, const uint32_t M, const int32x4_t *c) {
    const nq8_rq q0 = nq8_rq_load(t->rq, 0), q1 = nq8_rq_load(t->rq, 4);
    const int32x4_t zp = vdupq_n_s32(t->rq->out_zp), lo = vdupq_n_s32(t->rq->lo),
                    hi = vdupq_n_s32(t->rq->hi);
    int8x8_t b[S16_MR];
    uint32_t r;
    for (r = 0; r < M; ++r)
        b[r] = nq8_narrow(nq8_output(c[2 * r], &q0, zp, lo, hi),
                          nq8_output(c[2 * r + 1], &q1, zp, lo, hi));
    nq8_finish_rows(t, b, M, 1);
}

#if defined(__aarch64__)
N_INLINE void gemm_s16(const mnv3_q8_gemm_tile *t, const uint32_t M) {
    const int32_t *bias = (const int32_t *)t->w;
    const int16_t *w = (const int16_t *)(const void *)(bias + S16_NR);
    const int16_t *a[S16_MR];
    int32x4_t acc[16], out[2 * S16_MR];
    uint32_t r, col, i, split = 1;
    for (r = 0; r < M; ++r)
        a[r] = (const int16_t *)(const void *)((const char *)t->a + r * t->a_stride);
    switch (M) {
#define KLOOP(m)                                                                             \
    case m:                                                                                  \
        nq8_gemm_kloop_##m(a, &w, t->k / S16_KR, t->pf, bias, acc);                          \
        split = NQ8_GEMM_SPLIT_##m;                                                          \
        break;
        KLOOP(1)
        KLOOP(2)
        KLOOP(3)
        KLOOP(4)
        KLOOP(5)
        KLOOP(6)
        KLOOP(7)
        KLOOP(8)
#undef KLOOP
    default: break;
    }
    /* The loop's cursor ran on a line per iteration; past the range it only prefetched
     * lines nobody asked for. Both are lines of one range, or both NULL. */
    if ((uintptr_t)*t->pf > (uintptr_t)t->pf_end) *t->pf = t->pf_end;
    for (r = 0; r < M; ++r)
        for (col = 0; col < 2; ++col) {
            int32x4_t v = acc[(r * 2 + col) * split];
            for (i = 1; i < split; ++i) v = vaddq_s32(v, acc[(r * 2 + col) * split + i]);
            out[2 * r + col] = v;
        }
    nq8_store_rows_8(t, M, out);
}
#else
/* Tiles of 1 and 2 rows give the 4 k steps of an iteration 4 and 2 sets of accumulators
 * (c, d, e, f; added after the loop), so that 8 chains cover the multiply latency. */
N_INLINE void gemm_s16(const mnv3_q8_gemm_tile *t, const uint32_t M) {
    const int32_t *bias = (const int32_t *)t->w;
    const int16_t *w = (const int16_t *)(const void *)(bias + S16_NR);
    const int32x4_t b0 = vld1q_s32(bias), b1 = vld1q_s32(bias + 4), zero = vdupq_n_s32(0);
    const char *pf = *t->pf, *pf_end = t->pf_end;
    int32x4_t out[2 * S16_MR];
    uint32_t k;
#define DECL(r)                                                                              \
    const int16_t *a##r =                                                                    \
        (const int16_t *)(const void *)((const char *)t->a + (M > r ? r : 0) * t->a_stride);  \
    int32x4_t c##r##0 = b0, c##r##1 = b1, d##r##0 = zero, d##r##1 = zero, e##r##0 = zero,    \
              e##r##1 = zero, f##r##0 = zero, f##r##1 = zero;
    ROWS(DECL)
#undef DECL
    for (k = 0; k < t->k; k += 4) {
        int16x8_t wv;
#define LOADA(r) const int16x4_t x##r = vld1_s16(a##r + k);
        ROWS(LOADA)
#undef LOADA
        MNV3_PREFETCH_STEP(pf, pf_end);
#define MAC(r, lane, s)                                                                      \
    {                                                                                        \
        s##r##0 = vmlal_lane_s16(s##r##0, vget_low_s16(wv), x##r, lane);                     \
        s##r##1 = vmlal_lane_s16(s##r##1, vget_high_s16(wv), x##r, lane);                    \
    }
#define MAC0(r)                                                                              \
    if (M > r) MAC(r, 0, c)
#define MAC1(r)                                                                              \
    if (M > r) {                                                                             \
        if (M <= 2)                                                                          \
            MAC(r, 1, d)                                                                     \
        else                                                                                 \
            MAC(r, 1, c)                                                                     \
    }
#define MAC2(r)                                                                              \
    if (M > r) {                                                                             \
        if (M == 1)                                                                          \
            MAC(r, 2, e)                                                                     \
        else                                                                                 \
            MAC(r, 2, c)                                                                     \
    }
#define MAC3(r)                                                                              \
    if (M > r) {                                                                             \
        if (M == 1)                                                                          \
            MAC(r, 3, f)                                                                     \
        else if (M == 2)                                                                     \
            MAC(r, 3, d)                                                                     \
        else                                                                                 \
            MAC(r, 3, c)                                                                     \
    }
        wv = vld1q_s16(w);
        ROWS(MAC0)
        wv = vld1q_s16(w + 8);
        ROWS(MAC1)
        wv = vld1q_s16(w + 16);
        ROWS(MAC2)
        wv = vld1q_s16(w + 24);
        ROWS(MAC3)
        w += 32;
    }
#undef MAC0
#undef MAC1
#undef MAC2
#undef MAC3
#undef MAC
    *t->pf = pf;
#define SAVE(r)                                                                              \
    out[2 * r] = vaddq_s32(vaddq_s32(c##r##0, d##r##0), vaddq_s32(e##r##0, f##r##0));        \
    out[2 * r + 1] = vaddq_s32(vaddq_s32(c##r##1, d##r##1), vaddq_s32(e##r##1, f##r##1));
    ROWS(SAVE)
#undef SAVE
    nq8_store_rows_8(t, M, out);
}

#endif

#define GEMM(M)                                                                              \
    static void mnv3_q8_gemm_##M##x8__neon(const mnv3_q8_gemm_tile *t) { gemm_s16(t, M); }
GEMM(1)
GEMM(2)
GEMM(3)
GEMM(4)
#if defined(__aarch64__)
GEMM(5)
GEMM(6)
GEMM(7)
GEMM(8)
#endif
#undef GEMM

/* The classifier and the squeeze-excite layers read every weight once, from memory, so
 * their time is their weights' bytes, and the boards without a dot product are those
 * with the least bandwidth. Where every w - weight_zp of such a layer fits int8
 * (mnv3_q8_fc_impl), it runs on the raw bytes instead: the input as int8 (the 8-bit
 * format, its zero point folded into the biases), the weights as int8 panels of
 * [k / 8][8 columns][8 k], half the bytes of the int16 ones. SMULL makes a column's eight
 * int16 products (at most 128 x 128, which fits) and SADALP adds them in pairs to its
 * four int32 lanes: two instructions for eight multiply-accumulates, as SMLAL by lane on
 * int16 takes, and no widening of the weights. A weight zero point comes in as the row's
 * term. */
#define S16_FC_KR 8
static void mnv3_q8_gemv_1x8c8__neon(const mnv3_q8_gemm_tile *t) {
    const int32_t *bias = (const int32_t *)t->w;
    const int8_t *w = (const int8_t *)(const void *)(bias + S16_NR);
    const int8_t *a = (const int8_t *)t->a;
    const char *pf = *t->pf, *pf_end = t->pf_end;
    const int32x4_t zero = vdupq_n_s32(0);
    int32x4_t q0 = zero, q1 = zero, q2 = zero, q3 = zero, q4 = zero, q5 = zero, q6 = zero,
              q7 = zero, out[2];
    uint32_t k, half;
    for (k = 0; k < t->k; k += S16_FC_KR) {
        const int8x8_t x = vld1_s8(a + k);
        MNV3_PREFETCH_STEP(pf, pf_end);
#define MAC(c) q##c = vpadalq_s16(q##c, vmull_s8(x, vld1_s8(w + 8 * c)));
        MAC(0) MAC(1) MAC(2) MAC(3) MAC(4) MAC(5) MAC(6) MAC(7)
#undef MAC
        w += 8 * S16_NR;
    }
    *t->pf = pf;
#define SUM2(q) vpadd_s32(vget_low_s32(q), vget_high_s32(q))
    out[0] = vcombine_s32(vpadd_s32(SUM2(q0), SUM2(q1)), vpadd_s32(SUM2(q2), SUM2(q3)));
    out[1] = vcombine_s32(vpadd_s32(SUM2(q4), SUM2(q5)), vpadd_s32(SUM2(q6), SUM2(q7)));
#undef SUM2
    for (half = 0; half < 2; ++half) {
        out[half] = vaddq_s32(out[half], vld1q_s32(bias + 4 * half));
        if (t->row_terms) out[half] = vaddq_s32(out[half], vdupq_n_s32(t->row_terms[0]));
    }
    nq8_store_rows_8(t, 1, out);
}

static const mnv3_q8_gemm_impl s16_fc_narrow_impl = {
    MNV3_Q8_A_S8,
    1,
    S16_NR,
    S16_FC_KR,
    {mnv3_q8_gemv_1x8c8__neon},
    &ops,
    0, /* interleaved by kr: [k / 8][8 columns][8 k] */
    MNV3_Q8_FUSE_LUT | MNV3_Q8_FUSE_ADD | MNV3_Q8_FUSE_SUMS,
    0,
    NULL,
};

/* The GEMM's impl; the classifier's is the same with its narrow packing. */
#define S16_IMPL(narrow)                                                                     \
    {                                                                                        \
        MNV3_Q8_A_S16, S16_MR, S16_NR, S16_KR, {S16_GEMMS}, &ops,                            \
        1, /* panels of [k][8 columns], k padded to S16_KR */                                \
        MNV3_Q8_FUSE_LUT | MNV3_Q8_FUSE_ADD | MNV3_Q8_FUSE_SUMS, 0, narrow,                  \
    }
#if defined(__aarch64__)
#define S16_GEMMS                                                                            \
    mnv3_q8_gemm_1x8__neon, mnv3_q8_gemm_2x8__neon, mnv3_q8_gemm_3x8__neon,                  \
        mnv3_q8_gemm_4x8__neon, mnv3_q8_gemm_5x8__neon, mnv3_q8_gemm_6x8__neon,              \
        mnv3_q8_gemm_7x8__neon, mnv3_q8_gemm_8x8__neon
#else
#define S16_GEMMS                                                                            \
    mnv3_q8_gemm_1x8__neon, mnv3_q8_gemm_2x8__neon, mnv3_q8_gemm_3x8__neon,                  \
        mnv3_q8_gemm_4x8__neon
#endif
static const mnv3_q8_gemm_impl s16_impl = S16_IMPL(NULL);
static const mnv3_q8_gemm_impl s16_fc_impl = S16_IMPL(&s16_fc_narrow_impl);
#undef S16_GEMMS
#undef S16_IMPL

/* ------------------------------------------------------------------------------------ */
/* Depthwise: SMLAL of int16 x - in_zp by int16 w - weight_zp, 8 channels per group      */
/* ------------------------------------------------------------------------------------ */

/* Each input row that an output row reads is converted once per driver call into the
 * workspace as int16 x - in_zp, with zero columns for the horizontal padding, laid out
 * [channel group][column][8 channels] so that one group's columns are 16 bytes apart and
 * every tap is a fixed offset from its row; one zero row stands for the vertical padding.
 * The tap loop then has no border test and no zero point (a padding tap is an exact 0, as
 * TFLite's in_zp padding), and runs over blocks of DW_PIXELS outputs whose columns it
 * shares between the taps: 2 * DW_PIXELS accumulators. The accumulators of a whole row
 * go to the workspace and are requantized in a pass of their own, so the tap loop holds
 * nothing but loads and SMLALs. Channels after the last whole group take the portable
 * path on the same packed weights. */
#define DW_GROUP 8u
#define DW_PIXELS 4u
#define DW_HEADER MNV3_Q8_DW_CACHE_HEADER

/* Converted columns per row: the last block of outputs may reach DW_PIXELS - 1 outputs
 * past the row at stride 2, and the pads are below the kernel size. */
static size_t dw_cols(uint32_t kernel, uint32_t in_width) {
    return (size_t)in_width + 2u * (size_t)kernel + 2u * DW_PIXELS;
}

static int dw_layout(uint32_t channels, uint32_t kernel, uint32_t in_width, size_t *slot,
                     size_t *total) {
    const size_t cols = dw_cols(kernel, in_width), groups = channels / DW_GROUP;
    size_t bytes, scratch;
    return mnv3_size_mul4(groups ? groups : 1u, cols, DW_GROUP, sizeof(int16_t), &bytes) &&
           mnv3_size_align(bytes, 64u, slot) &&
           mnv3_size_mul4(cols, DW_GROUP, sizeof(int32_t), 1u, &scratch) &&
           mnv3_size_mul(*slot, (size_t)kernel + 1u, total) &&
           mnv3_size_add(*total, scratch, total) && mnv3_size_add(*total, DW_HEADER, total);
}

static size_t dw_workspace(uint32_t channels, uint32_t kernel, uint32_t in_width) {
    size_t slot, total;
    return dw_layout(channels, kernel, in_width, &slot, &total) ? total : SIZE_MAX;
}

/* Input row src as converted columns [0, cols) of each whole channel group: column j
 * holds input column j - pad_left. */
static void dw_convert_row(const mnv3_q8_dw_call *a, const int8_t *src, size_t cols,
                           int16_t *dst) {
    const uint32_t C = a->channels;
    const int8x8_t zx = vdup_n_s8((int8_t)a->in_zp);
    const int16x8_t zero = vdupq_n_s16(0);
    uint32_t g;
    size_t j;
    for (g = 0; g + DW_GROUP <= C; g += DW_GROUP, dst += cols * DW_GROUP)
        for (j = 0; j < cols; ++j) {
            const long ix = (long)j - (long)a->pad_left;
            vst1q_s16(dst + j * DW_GROUP,
                      ix < 0 || ix >= (long)a->in_width
                          ? zero
                          : vsubl_s8(vld1_s8(src + (size_t)ix * C + g), zx));
        }
}

static void dw_convert(const mnv3_q8_dw_call *a, const int8_t *src, int16_t *slot,
                       const void *ctx) {
    dw_convert_row(a, src, *(const size_t *)ctx, slot);
}

#if defined(__aarch64__)
#define NQ8_MLAL_HIGH(acc, x, w) vmlal_high_s16(acc, x, w)
#else
#define NQ8_MLAL_HIGH(acc, x, w) vmlal_s16(acc, vget_high_s16(x), vget_high_s16(w))
#endif

/* The accumulators of blocks [0, blocks) of DW_PIXELS outputs of one channel group into
 * acc ([output][8 channels]). xrow[ky]: the group's converted row of tap row ky, output 0
 * at column 0. Any kernel size, intrinsics: the ARMv7 depthwise; on AArch64 only for the
 * sizes that generated/neon_q8_dw_loops.h has no fixed-schedule loop for (no MobileNetV3
 * layer), which is why it is named as a microkernel only on ARMv7. */
#if defined(__aarch64__)
#define DW_BLOCKS_ANY nq8_dw_blocks_other_kernels
#else
#define DW_BLOCKS_ANY mnv3_q8_dwconv_8c4__neon
#endif
static __attribute__((noinline)) void DW_BLOCKS_ANY(const int16_t *const *xrow,
                                                    const int16_t *wt, int32x4_t b0,
                                                    int32x4_t b1, uint32_t blocks, uint32_t K,
                                                    uint32_t S, int32_t *acc) {
    uint32_t blk, ky, kx;
    for (blk = 0; blk < blocks; ++blk, acc += DW_PIXELS * DW_GROUP) {
        const size_t at = (size_t)blk * DW_PIXELS * S * DW_GROUP;
        int32x4_t l0 = b0, h0 = b1, l1 = b0, h1 = b1, l2 = b0, h2 = b1, l3 = b0, h3 = b1;
        for (ky = 0; ky < K; ++ky) {
            const int16_t *x = xrow[ky] + at, *w = wt + (size_t)ky * K * DW_GROUP;
            for (kx = 0; kx < K; ++kx) {
                const int16x8_t wv = vld1q_s16(w + kx * DW_GROUP);
                const int16x8_t x0 = vld1q_s16(x + kx * DW_GROUP);
                const int16x8_t x1 = vld1q_s16(x + (S + kx) * DW_GROUP);
                const int16x8_t x2 = vld1q_s16(x + (2u * S + kx) * DW_GROUP);
                const int16x8_t x3 = vld1q_s16(x + (3u * S + kx) * DW_GROUP);
                l0 = vmlal_s16(l0, vget_low_s16(x0), vget_low_s16(wv));
                h0 = NQ8_MLAL_HIGH(h0, x0, wv);
                l1 = vmlal_s16(l1, vget_low_s16(x1), vget_low_s16(wv));
                h1 = NQ8_MLAL_HIGH(h1, x1, wv);
                l2 = vmlal_s16(l2, vget_low_s16(x2), vget_low_s16(wv));
                h2 = NQ8_MLAL_HIGH(h2, x2, wv);
                l3 = vmlal_s16(l3, vget_low_s16(x3), vget_low_s16(wv));
                h3 = NQ8_MLAL_HIGH(h3, x3, wv);
            }
        }
        vst1q_s32(acc, l0);
        vst1q_s32(acc + 4, h0);
        vst1q_s32(acc + 8, l1);
        vst1q_s32(acc + 12, h1);
        vst1q_s32(acc + 16, l2);
        vst1q_s32(acc + 20, h2);
        vst1q_s32(acc + 24, l3);
        vst1q_s32(acc + 28, h3);
    }
}

#if defined(__aarch64__)
typedef void (*nq8_dw_rows_fn)(const int16_t *const *rows, size_t at, const int16_t *w,
                               int32x4_t *acc);

/* The fixed-schedule tap loop of this kernel size and stride, or NULL. */
static nq8_dw_rows_fn nq8_dw_rows_for(uint32_t K, uint32_t S) {
    static const nq8_dw_rows_fn table[3][2] = {
        {mnv3_q8_dwconv_k3s1_8c4__neon, mnv3_q8_dwconv_k3s2_8c4__neon},
        {mnv3_q8_dwconv_k5s1_8c4__neon, mnv3_q8_dwconv_k5s2_8c4__neon},
        {mnv3_q8_dwconv_k7s1_8c4__neon, mnv3_q8_dwconv_k7s2_8c4__neon}};
    return K % 2u == 1u && K >= 3u && K <= 7u && S >= 1u && S <= 2u ? table[K / 2u - 1u][S - 1u]
                                                                     : NULL;
}
#endif

static void dw_group_blocks(const int16_t *const *xrow, const int16_t *wt, int32x4_t b0,
                            int32x4_t b1, uint32_t blocks, uint32_t K, uint32_t S,
                            int32_t *acc) {
#if defined(__aarch64__)
    const nq8_dw_rows_fn rows = nq8_dw_rows_for(K, S);
    uint32_t blk, i;
    if (rows) {
        for (blk = 0; blk < blocks; ++blk, acc += DW_PIXELS * DW_GROUP) {
            int32x4_t c[2 * DW_PIXELS];
            for (i = 0; i < DW_PIXELS; ++i) {
                c[2 * i] = b0;
                c[2 * i + 1] = b1;
            }
            rows(xrow, (size_t)blk * DW_PIXELS * S * DW_GROUP * sizeof(int16_t), wt, c);
            for (i = 0; i < 2 * DW_PIXELS; ++i) vst1q_s32(acc + 4 * i, c[i]);
        }
        return;
    }
#endif
    DW_BLOCKS_ANY(xrow, wt, b0, b1, blocks, K, S, acc);
}

static void mnv3_q8_dwconv_8c__neon(const mnv3_q8_dw_out_row *r) {
    const mnv3_q8_dw_call *a = r->a;
    const uint32_t C = a->channels, K = a->kernel, S = a->stride, W = a->out_width;
    const uint32_t blocks = (W + DW_PIXELS - 1u) / DW_PIXELS;
    const size_t cols = dw_cols(K, a->in_width);
    const size_t group_bytes = (size_t)DW_GROUP * (2u * K * K + 4u);
    const int32x4_t zp = vdupq_n_s32(a->requant.out_zp), lo = vdupq_n_s32(a->requant.act_lo),
                    hi = vdupq_n_s32(a->requant.act_hi);
    const int16_t *crow[MNV3_DW_MAX_KERNEL], *xrow[MNV3_DW_MAX_KERNEL];
    size_t slot_bytes, total;
    int32_t *acc;
    uint32_t g, ky, ox;
    if (C < DW_GROUP || W == 0 || S > 2u || a->workspace == NULL ||
        (size_t)(blocks * DW_PIXELS - 1u) * S + K > cols ||
        !dw_layout(C, K, a->in_width, &slot_bytes, &total)) {
        mnv3_q8_dw_channels_portable(r, 0, DW_GROUP, 2);
        return;
    }
    mnv3_q8_dw_cached_rows(r, slot_bytes, slot_bytes, dw_convert, &cols, crow);
    acc = (int32_t *)(void *)((unsigned char *)a->workspace + DW_HEADER + (K + 1u) * slot_bytes);
    for (g = 0; g + DW_GROUP <= C; g += DW_GROUP) {
        const unsigned char *wg = (const unsigned char *)r->w + (size_t)(g / DW_GROUP) * group_bytes;
        const int32_t *bias = (const int32_t *)(const void *)wg;
        const int16_t *wt = (const int16_t *)(const void *)(bias + DW_GROUP);
        const int32x4_t b0 = vld1q_s32(bias), b1 = vld1q_s32(bias + 4);
        const nq8_rq q0 = nq8_rq_from_qmul(a->requant.qmul + g);
        const nq8_rq q1 = nq8_rq_from_qmul(a->requant.qmul + g + 4);
        for (ky = 0; ky < K; ++ky) xrow[ky] = crow[ky] + (size_t)(g / DW_GROUP) * cols * DW_GROUP;
        dw_group_blocks(xrow, wt, b0, b1, blocks, K, S, acc);
        for (ox = 0; ox < W; ++ox)
            vst1_s8(r->out + (size_t)ox * C + g,
                    nq8_narrow(nq8_output(vld1q_s32(acc + ox * DW_GROUP), &q0, zp, lo, hi),
                               nq8_output(vld1q_s32(acc + ox * DW_GROUP + 4), &q1, zp, lo, hi)));
    }
    if (g < C) mnv3_q8_dw_channels_portable(r, g, DW_GROUP, 2);
}

static const mnv3_q8_dw_impl dw_impl = {
    DW_GROUP, 2, mnv3_q8_dwconv_8c__neon, &ops, NULL, NULL, dw_workspace, 0,
};

/* ------------------------------------------------------------------------------------ */
/* Stem: SMLAL by lane of input bytes read in place, 16 channels                         */
/* ------------------------------------------------------------------------------------ */

/* The row every NEON int8 set runs (a stem has too few taps per pixel for SDOT or SMMLA to
 * gain, and one row keeps one packing, q8_impl.h). Each kernel row of a pixel is read in
 * place 8 bytes at a time and widened to int16; every tap then multiplies the packed
 * (w - weight_zp) of 16 channels by its lane into four int32 vectors. A block of pixels
 * shares each tap's weight loads: 4 pixels (16 accumulators) on AArch64, 2 on ARMv7's 16
 * Q registers. The LUT is the driver's pass over the bytes stored. */
#if defined(__aarch64__)
#define CONV_MR 4
#define CONV_NAME "q8_conv_4x16__neon"
#define CONV_UKERNEL mnv3_q8_conv_4x16__neon
/* acc[0..4) += channels 0-7 (wl) and 8-15 (wh) times lane `lane` of x */
#define CONV_MAC(acc, wl, wh, x, lane)                                                       \
    do {                                                                                     \
        (acc)[0] = vmlal_laneq_s16((acc)[0], vget_low_s16(wl), x, lane);                     \
        (acc)[1] = vmlal_high_laneq_s16((acc)[1], wl, x, lane);                              \
        (acc)[2] = vmlal_laneq_s16((acc)[2], vget_low_s16(wh), x, lane);                     \
        (acc)[3] = vmlal_high_laneq_s16((acc)[3], wh, x, lane);                              \
    } while (0)
#else
#define CONV_MR 2
#define CONV_NAME "q8_conv_2x16__neon"
#define CONV_UKERNEL mnv3_q8_conv_2x16__neon
#define CONV_MAC(acc, wl, wh, x, lane)                                                       \
    do {                                                                                     \
        const int16x4_t x4_ = (lane) < 4 ? vget_low_s16(x) : vget_high_s16(x);              \
        (acc)[0] = vmlal_lane_s16((acc)[0], vget_low_s16(wl), x4_, (lane) & 3);              \
        (acc)[1] = vmlal_lane_s16((acc)[1], vget_high_s16(wl), x4_, (lane) & 3);             \
        (acc)[2] = vmlal_lane_s16((acc)[2], vget_low_s16(wh), x4_, (lane) & 3);              \
        (acc)[3] = vmlal_lane_s16((acc)[3], vget_high_s16(wh), x4_, (lane) & 3);             \
    } while (0)
#endif
#define CONV_NR 16u

/* Pixels [j, j + M) of a span, taps per kernel row `taps`. */
N_INLINE void conv_block(const mnv3_q8_conv_span *s, uint32_t j, const uint32_t M,
                         const uint32_t taps) {
    const int32_t *bias = (const int32_t *)s->w;
    const int16_t *w = (const int16_t *)(const void *)(bias + CONV_NR);
    const mnv3_q8_rq_table *rq = s->rq;
    int32x4_t acc[CONV_MR][4];
    uint32_t p, q, ky, t0;
#pragma GCC unroll 4
    for (p = 0; p < M; ++p)
        for (q = 0; q < 4; ++q) acc[p][q] = vld1q_s32(bias + 4 * q);
    for (ky = 0; ky < s->kernel; ++ky) {
        const int8_t *x = s->rows[ky] + (size_t)j * s->step;
        for (t0 = 0; t0 < taps; t0 += 8) {
            const int16_t *wt = w + ((size_t)ky * taps + t0) * CONV_NR;
            const uint32_t n = taps - t0 < 8 ? taps - t0 : 8;
            int16x8_t xv[CONV_MR];
#pragma GCC unroll 4
            for (p = 0; p < M; ++p) xv[p] = vmovl_s8(vld1_s8(x + p * s->step + t0));
#define CONV_TAP(i)                                                                          \
    if (i < n) {                                                                             \
        const int16x8_t wl = vld1q_s16(wt + i * CONV_NR), wh = vld1q_s16(wt + i * CONV_NR + 8); \
        _Pragma("GCC unroll 4") for (p = 0; p < M; ++p) CONV_MAC(acc[p], wl, wh, xv[p], i);   \
    }
            CONV_TAP(0)
            CONV_TAP(1)
            CONV_TAP(2)
            CONV_TAP(3)
            CONV_TAP(4)
            CONV_TAP(5)
            CONV_TAP(6)
            CONV_TAP(7)
#undef CONV_TAP
        }
    }
    {
        const nq8_rq q0 = nq8_rq_load(rq, 0), q1 = nq8_rq_load(rq, 4);
        const nq8_rq q2 = nq8_rq_load(rq, 8), q3 = nq8_rq_load(rq, 12);
        const int32x4_t zp = vdupq_n_s32(rq->out_zp), lo = vdupq_n_s32(rq->lo),
                        hi = vdupq_n_s32(rq->hi);
        for (p = 0; p < M; ++p) {
            int8_t *out = s->out + (size_t)(j + p) * s->out_stride;
            const int8x8_t lo8 = nq8_narrow(nq8_output(acc[p][0], &q0, zp, lo, hi),
                                            nq8_output(acc[p][1], &q1, zp, lo, hi));
            const int8x8_t hi8 = nq8_narrow(nq8_output(acc[p][2], &q2, zp, lo, hi),
                                            nq8_output(acc[p][3], &q3, zp, lo, hi));
            nq8_store(out, lo8, s->nc);
            if (s->nc > 8) nq8_store(out + 8, hi8, s->nc - 8);
        }
    }
}

N_INLINE void conv_span(const mnv3_q8_conv_span *s, const uint32_t taps) {
    const uint32_t n = s->pixels;
    uint32_t j = 0;
    for (; j + CONV_MR <= n; j += CONV_MR) conv_block(s, j, CONV_MR, taps);
#if CONV_MR > 3
    if (n - j == 3) conv_block(s, j, 3, taps);
    if (n - j == 2) conv_block(s, j, 2, taps);
#endif
    if (n - j == 1) conv_block(s, j, 1, taps);
}

/* The stem's 3x3 kernel rows over 3 channels are 9 taps: that count unrolled. */
static void CONV_UKERNEL(const mnv3_q8_conv_span *s) {
    if (s->row_taps == 9)
        conv_span(s, 9);
    else
        conv_span(s, s->row_taps);
}

static const mnv3_q8_conv_impl conv_impl = {CONV_UKERNEL, CONV_MR, CONV_NR, 1, 8, &ops, 0};

static const mnv3_row conv_row = {
    CONV_NAME, MNV3_ROW_CONV, MNV3_DTYPE_I8, MNV3_DTYPE_I8, MNV3_DTYPE_I8, 1,
    mnv3_q8_conv_row_packed_bytes, mnv3_q8_conv_row_pack, mnv3_q8_params_bytes, mnv3_q8_prepare,
    mnv3_q8_conv_workspace, {.conv = mnv3_q8_conv_driver}, &conv_impl,
};

/* ------------------------------------------------------------------------------------ */
/* Rows and the plain set                                                                */
/* ------------------------------------------------------------------------------------ */

/* The rows of one int8 GEMM impl, as each NEON set offers them. */
#define Q8_GEMM_ROW(VAR, NAME, KIND, RUN, PACKED_BYTES, WORKSPACE, NR, IMPL)                \
    static const mnv3_row VAR = {NAME, KIND, MNV3_DTYPE_I8, MNV3_DTYPE_I8, MNV3_DTYPE_I8,   \
                                 NR, PACKED_BYTES, mnv3_q8_gemm_row_pack,                   \
                                 mnv3_q8_params_bytes, mnv3_q8_prepare, WORKSPACE, {RUN},   \
                                 IMPL}

#if defined(__aarch64__)
#define S16_GEMM_NAME "q8_gemm_8x8__neon"
#else
#define S16_GEMM_NAME "q8_gemm_4x8__neon"
#endif
Q8_GEMM_ROW(s16_pointwise_row, S16_GEMM_NAME, MNV3_ROW_POINTWISE,
            .pointwise = mnv3_q8_pointwise_driver, mnv3_q8_gemm_row_packed_bytes,
            mnv3_q8_pointwise_workspace, S16_NR, &s16_impl);
static const mnv3_row s16_fc_row = {
    "q8_gemv_1x8__neon", MNV3_ROW_FC, MNV3_DTYPE_I8, MNV3_DTYPE_I8, MNV3_DTYPE_I8, S16_NR,
    mnv3_q8_fc_row_packed_bytes, mnv3_q8_fc_row_pack, mnv3_q8_params_bytes, mnv3_q8_fc_prepare,
    mnv3_no_workspace, {.fc = mnv3_q8_fc_driver}, &s16_fc_impl,
};

static const mnv3_row depthwise_row = {
    "q8_dwconv_8c__neon", MNV3_ROW_DEPTHWISE, MNV3_DTYPE_I8, MNV3_DTYPE_I8, MNV3_DTYPE_I8, 1,
    mnv3_q8_dw_row_packed_bytes, mnv3_q8_dw_row_pack, mnv3_q8_params_bytes, mnv3_q8_prepare,
    mnv3_q8_depthwise_workspace, {.depthwise = mnv3_q8_depthwise_driver}, &dw_impl,
};

static const mnv3_row *const s16_rows[] = {
    &s16_pointwise_row, &depthwise_row, &conv_row, &s16_fc_row, NULL,
};

const mnv3_kernel_set mnv3_kernel_set_neon_q8 = {"neon", 1u << MNV3_ISA_NEON, NULL, s16_rows,
                                              &mnv3_q8_input_neon};

/* ------------------------------------------------------------------------------------ */
/* AArch64 dot product: SDOT by lane, 4 rows x 16 columns                                */
/* ------------------------------------------------------------------------------------ */

#if defined(__aarch64__)

int mnv3_cpu_has_neon_dot(void) {
#if defined(__linux__) || defined(__ANDROID__)
    return (getauxval(AT_HWCAP) & (1ul << 20)) != 0; /* HWCAP_ASIMDDP */
#elif defined(__APPLE__)
    int v = 0;
    size_t len = sizeof v;
    return sysctlbyname("hw.optional.arm.FEAT_DotProd", &v, &len, NULL, 0) == 0 && v;
#else
    return 0;
#endif
}

int mnv3_cpu_has_neon_i8mm(void) {
#if defined(__linux__) || defined(__ANDROID__)
    return (getauxval(AT_HWCAP2) & (1ul << 13)) != 0; /* HWCAP2_I8MM */
#elif defined(__APPLE__)
    int v = 0;
    size_t len = sizeof v;
    return sysctlbyname("hw.optional.arm.FEAT_I8MM", &v, &len, NULL, 0) == 0 && v;
#else
    return 0;
#endif
}

#if defined(MNV3_HAVE_NEON_DOT)
#if defined(MNV3_NEON_EXTENSIONS_BY_FILE)
#define DOT_ATTR /* the file's -march has it */
#else
#define DOT_ATTR __attribute__((target("arch=armv8.2-a+dotprod")))
#endif
#define DOT_MR 4
#define DOT_NR 16
#define DROWS(X) X(0) X(1) X(2) X(3)

/* gemm_sdot's accumulator array and k step assume these. */
typedef char nq8_dot_loops_fit[NQ8_DOT_SPLIT_1 * 4 <= 16 && NQ8_DOT_SPLIT_2 == 1 &&
                                       NQ8_DOT_SPLIT_3 == 1 && NQ8_DOT_SPLIT_4 == 1 &&
                                       NQ8_DOT_K_3 == NQ8_DOT_K_2 && NQ8_DOT_K_4 == NQ8_DOT_K_2
                                   ? 1
                                   : -1];

/* One group of 4 k of row r, after the loop. */
#define DOT_TAIL_ROW(r)                                                                      \
    if (M > r) {                                                                             \
        int32_t v;                                                                           \
        int8x16_t x;                                                                         \
        memcpy(&v, a[r], 4);                                                                 \
        a[r] += 4;                                                                           \
        x = vreinterpretq_s8_s32(vdupq_n_s32(v));                                            \
        c[r][0] = vdotq_laneq_s32(c[r][0], w0, x, 0);                                        \
        c[r][1] = vdotq_laneq_s32(c[r][1], w1, x, 0);                                        \
        c[r][2] = vdotq_laneq_s32(c[r][2], w2, x, 0);                                        \
        c[r][3] = vdotq_laneq_s32(c[r][3], w3, x, 0);                                        \
    }
#define DOT_TAIL_GROUP                                                                       \
    {                                                                                        \
        const int8x16_t w0 = vld1q_s8(w), w1 = vld1q_s8(w + 16), w2 = vld1q_s8(w + 32),      \
                        w3 = vld1q_s8(w + 48);                                               \
        w += 64;                                                                             \
        DROWS(DOT_TAIL_ROW)                                                                  \
    }

/* The fixed-schedule loop (generated/neon_q8_gemm_loops.h) runs NQ8_DOT_K_<M> k steps per
 * iteration; k is a multiple of 4, so the groups of 4 left over (at most 3) run once
 * each after it, not as a loop. */
N_INLINE DOT_ATTR void gemm_sdot(const mnv3_q8_gemm_tile *t, const uint32_t M) {
    const int32_t *bias = (const int32_t *)t->w;
    const int8_t *w = (const int8_t *)(const void *)(bias + DOT_NR);
    const uint32_t split = M == 1 ? NQ8_DOT_SPLIT_1 : 1;
    const uint32_t kstep = M == 1 ? NQ8_DOT_K_1 : NQ8_DOT_K_2;
    const uint32_t rest = t->k % kstep / 4u;
    const int8_t *a[DOT_MR];
    int32x4_t acc[16], c[DOT_MR][4];
    uint32_t r, col, i;
    for (r = 0; r < M; ++r) {
        const int32x4_t term = vdupq_n_s32(t->row_terms ? t->row_terms[r] : 0);
        a[r] = (const int8_t *)t->a + r * t->a_stride;
        for (col = 0; col < 4; ++col) {
            acc[(r * 4 + col) * split] = vaddq_s32(vld1q_s32(bias + 4 * col), term);
            for (i = 1; i < split; ++i) acc[(r * 4 + col) * split + i] = vdupq_n_s32(0);
        }
    }
    if (t->k >= kstep) {
        switch (M) {
        case 1: nq8_dot_kloop_1(a, &w, t->k / NQ8_DOT_K_1, t->pf, acc); break;
        case 2: nq8_dot_kloop_2(a, &w, t->k / NQ8_DOT_K_2, t->pf, acc); break;
        case 3: nq8_dot_kloop_3(a, &w, t->k / NQ8_DOT_K_3, t->pf, acc); break;
        default: nq8_dot_kloop_4(a, &w, t->k / NQ8_DOT_K_4, t->pf, acc); break;
        }
        /* as in gemm_s16: the cursor ran on a line per iteration */
        if ((uintptr_t)*t->pf > (uintptr_t)t->pf_end) *t->pf = t->pf_end;
    }
    for (r = 0; r < M; ++r)
        for (col = 0; col < 4; ++col) {
            int32x4_t v = acc[(r * 4 + col) * split];
            for (i = 1; i < split; ++i) v = vaddq_s32(v, acc[(r * 4 + col) * split + i]);
            c[r][col] = v;
        }
    if (rest > 0) DOT_TAIL_GROUP
    if (rest > 1) DOT_TAIL_GROUP
    if (rest > 2) DOT_TAIL_GROUP
    {
        const nq8_rq q0 = nq8_rq_load(t->rq, 0), q1 = nq8_rq_load(t->rq, 4);
        const nq8_rq q2 = nq8_rq_load(t->rq, 8), q3 = nq8_rq_load(t->rq, 12);
        const int32x4_t zp = vdupq_n_s32(t->rq->out_zp), lo = vdupq_n_s32(t->rq->lo),
                        hi = vdupq_n_s32(t->rq->hi);
        int8x8_t b[2 * DOT_MR];
        for (r = 0; r < M; ++r) {
            b[2 * r] = nq8_narrow(nq8_output(c[r][0], &q0, zp, lo, hi),
                                  nq8_output(c[r][1], &q1, zp, lo, hi));
            b[2 * r + 1] = nq8_narrow(nq8_output(c[r][2], &q2, zp, lo, hi),
                                      nq8_output(c[r][3], &q3, zp, lo, hi));
        }
        nq8_finish_rows(t, b, M, 2);
    }
}

#define GEMM(M)                                                                              \
    static DOT_ATTR void mnv3_q8_gemm_##M##x16c4__neondot(const mnv3_q8_gemm_tile *t) {      \
        gemm_sdot(t, M);                                                                     \
    }
GEMM(1)
GEMM(2)
GEMM(3)
GEMM(4)
#undef GEMM

static const mnv3_q8_gemm_impl dot_impl = {
    MNV3_Q8_A_S8,
    DOT_MR,
    DOT_NR,
    4,
    {mnv3_q8_gemm_1x16c4__neondot, mnv3_q8_gemm_2x16c4__neondot, mnv3_q8_gemm_3x16c4__neondot,
     mnv3_q8_gemm_4x16c4__neondot},
    &ops,
    0,
    MNV3_Q8_FUSE_LUT | MNV3_Q8_FUSE_ADD | MNV3_Q8_FUSE_SUMS,
    0,
    NULL,
};

Q8_GEMM_ROW(dot_pointwise_row, "q8_gemm_4x16c4__neondot", MNV3_ROW_POINTWISE,
            .pointwise = mnv3_q8_pointwise_driver, mnv3_q8_gemm_row_packed_bytes,
            mnv3_q8_pointwise_workspace, DOT_NR, &dot_impl);
Q8_GEMM_ROW(dot_fc_row, "q8_gemv_1x16c4__neondot", MNV3_ROW_FC, .fc = mnv3_q8_fc_driver,
            mnv3_q8_fc_row_packed_bytes, mnv3_no_workspace, DOT_NR, &dot_impl);

static const mnv3_row *const dot_rows[] = {
    &dot_pointwise_row, &depthwise_row, &conv_row, &dot_fc_row, NULL,
};

const mnv3_kernel_set mnv3_kernel_set_neondot_q8 = {
    "neon-dot", 1u << MNV3_ISA_NEON, mnv3_cpu_has_neon_dot, dot_rows, &mnv3_q8_input_neon,
};
#endif /* MNV3_HAVE_NEON_DOT */
/* ------------------------------------------------------------------------------------ */
/* AArch64 I8MM: SMMLA, 2 x 8 by 8 x 2 per instruction, 4 rows x 16 columns             */
/* ------------------------------------------------------------------------------------ */

/* SMMLA multiplies two rows of 8 k by two columns of 8 k into a 2 x 2 block: 32
 * multiply-accumulates per instruction, twice SDOT's. Weights are packed [k/8][16][8], so
 * one vector holds a pair of columns; each row pair's two 8-byte pieces are joined into
 * one vector per k step. Accumulator (pair p, columns 2q, 2q + 1) holds
 * [r0 c0, r0 c1, r1 c0, r1 c1]. */
#if defined(MNV3_HAVE_NEON_I8MM)
/* The I8MM set runs its FC on SDOT, so it needs both. */
static int mnv3_cpu_has_neon_i8mm_dot(void) {
    return mnv3_cpu_has_neon_i8mm() && mnv3_cpu_has_neon_dot();
}

#if defined(MNV3_NEON_EXTENSIONS_BY_FILE)
#define MM_ATTR /* the file's -march has it */
#else
#define MM_ATTR __attribute__((target("arch=armv8.6-a+i8mm")))
#endif
#define MM_MR 4
#define MM_NR 16
#define MM_KR 8
#define QCOLS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

N_INLINE MM_ATTR void gemm_smmla(const mnv3_q8_gemm_tile *t, const uint32_t M) {
    const int32_t *bias = (const int32_t *)t->w;
    const int8_t *w = (const int8_t *)(const void *)(bias + MM_NR);
    const char *pf = *t->pf, *pf_end = t->pf_end;
    const nq8_rq q0 = nq8_rq_load(t->rq, 0), q1 = nq8_rq_load(t->rq, 4);
    const nq8_rq q2 = nq8_rq_load(t->rq, 8), q3 = nq8_rq_load(t->rq, 12);
    /* Rows past M repeat the last one; their results are not stored. */
    const int8_t *a0 = (const int8_t *)t->a;
    const int8_t *a1 = (const int8_t *)t->a + (M > 1 ? 1 : 0) * t->a_stride;
    const int8_t *a2 = (const int8_t *)t->a + (M > 2 ? 2 : M - 1) * t->a_stride;
    const int8_t *a3 = (const int8_t *)t->a + (M > 3 ? 3 : M - 1) * t->a_stride;
    int32x4_t terms0 = vdupq_n_s32(0), terms1 = vdupq_n_s32(0);
    uint32_t k;
    if (t->row_terms) {
        const int32_t *r = t->row_terms;
        terms0 = vcombine_s32(vdup_n_s32(r[0]), vdup_n_s32(r[M > 1 ? 1 : 0]));
        if (M > 2) terms1 = vcombine_s32(vdup_n_s32(r[2]), vdup_n_s32(r[M > 3 ? 3 : 2]));
    }
#define DECL(q)                                                                              \
    const int32x2_t b##q = vld1_s32(bias + 2 * q);                                           \
    int32x4_t c0##q = vaddq_s32(vcombine_s32(b##q, b##q), terms0);                           \
    int32x4_t c1##q = vaddq_s32(vcombine_s32(b##q, b##q), terms1);
    QCOLS(DECL)
#undef DECL
    for (k = 0; k < t->k; k += MM_KR) {
        const int8x16_t x0 = vcombine_s8(vld1_s8(a0 + k), vld1_s8(a1 + k));
        const int8x16_t x1 = vcombine_s8(vld1_s8(a2 + k), vld1_s8(a3 + k));
        MNV3_PREFETCH_STEP(pf, pf_end);
#define MM(q)                                                                                \
    {                                                                                        \
        const int8x16_t wq = vld1q_s8(w + 16 * q);                                           \
        c0##q = vmmlaq_s32(c0##q, x0, wq);                                                   \
        if (M > 2) c1##q = vmmlaq_s32(c1##q, x1, wq);                                        \
    }
        QCOLS(MM)
#undef MM
        w += 128;
    }
    *t->pf = pf;
    {
        const int32x4_t zp = vdupq_n_s32(t->rq->out_zp), lo = vdupq_n_s32(t->rq->lo),
                        hi = vdupq_n_s32(t->rq->hi);
        int32x4_t rows[4][4];
        uint32_t r;
#define SPLIT(p, row, half)                                                                  \
    rows[row][0] = vcombine_s32(half(c##p##0), half(c##p##1));                               \
    rows[row][1] = vcombine_s32(half(c##p##2), half(c##p##3));                               \
    rows[row][2] = vcombine_s32(half(c##p##4), half(c##p##5));                               \
    rows[row][3] = vcombine_s32(half(c##p##6), half(c##p##7));
        SPLIT(0, 0, vget_low_s32)
        SPLIT(0, 1, vget_high_s32)
        SPLIT(1, 2, vget_low_s32)
        SPLIT(1, 3, vget_high_s32)
#undef SPLIT
        int8x8_t b[2 * MM_MR];
        for (r = 0; r < M; ++r) {
            b[2 * r] = nq8_narrow(nq8_output(rows[r][0], &q0, zp, lo, hi),
                                  nq8_output(rows[r][1], &q1, zp, lo, hi));
            b[2 * r + 1] = nq8_narrow(nq8_output(rows[r][2], &q2, zp, lo, hi),
                                      nq8_output(rows[r][3], &q3, zp, lo, hi));
        }
        nq8_finish_rows(t, b, M, 2);
    }
}

#define GEMM(M)                                                                              \
    static MM_ATTR void mnv3_q8_gemm_##M##x16c8__neoni8mm(const mnv3_q8_gemm_tile *t) {      \
        gemm_smmla(t, M);                                                                    \
    }
GEMM(1)
GEMM(2)
GEMM(3)
GEMM(4)
#undef GEMM

static const mnv3_q8_gemm_impl mm_impl = {
    MNV3_Q8_A_S8,
    MM_MR,
    MM_NR,
    MM_KR,
    {mnv3_q8_gemm_1x16c8__neoni8mm, mnv3_q8_gemm_2x16c8__neoni8mm,
     mnv3_q8_gemm_3x16c8__neoni8mm, mnv3_q8_gemm_4x16c8__neoni8mm},
    &ops,
    0,
    MNV3_Q8_FUSE_LUT | MNV3_Q8_FUSE_ADD | MNV3_Q8_FUSE_SUMS,
    0,
    NULL,
};

Q8_GEMM_ROW(mm_pointwise_row, "q8_gemm_4x16c8__neoni8mm", MNV3_ROW_POINTWISE,
            .pointwise = mnv3_q8_pointwise_driver, mnv3_q8_gemm_row_packed_bytes,
            mnv3_q8_pointwise_workspace, MM_NR, &mm_impl);

/* The FC stays on SDOT: one row would leave half of every SMMLA unused. */
static const mnv3_row *const mm_rows[] = {
    &mm_pointwise_row, &depthwise_row, &conv_row, &dot_fc_row, NULL,
};

const mnv3_kernel_set mnv3_kernel_set_neoni8mm_q8 = {
    "neon-i8mm", 1u << MNV3_ISA_NEON, mnv3_cpu_has_neon_i8mm_dot, mm_rows, &mnv3_q8_input_neon,
};
#endif /* MNV3_HAVE_NEON_I8MM */
#endif /* __aarch64__ */

#else
typedef int mnv3_arm_neon_q8_unused;
#endif
