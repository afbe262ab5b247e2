/* Relaxed precision on AArch64 cores with FP16 arithmetic (ARMv8.2 FEAT_FP16, HWCAP
 * asimdhp): activations are stored as float16 between layers, and the pointwise GEMM and
 * the depthwise convolution multiply and accumulate in float16, FMLA .8h, eight channels
 * per instruction where float32 has four. Packed weights are float16. Included by
 * arm_neon_hp_f16w.c (float16 models) and arm_neon_hp_f32w.c (float32 models, rounded to
 * float16 at packing), which set W_CANON_T and how to read it, then include arm_neon.c.
 *
 * What stays float32: the epilogue (accumulators are widened once per output, the
 * activation, residual add and clamps computed in float32, the result rounded once to
 * float16), the SE gate and the channel sums (SE squeeze, global pool), the stem's
 * arithmetic (it reads the caller's float32 image and rounds its outputs), and the SE and
 * classifier GEMVs, which read float32 vectors. A tile's accumulators start at its float32
 * bias rounded to float16. */
#if defined(__aarch64__)
#include <arm_neon.h>
#include <string.h>

#define SIMD_VARIANT 1
#define SIMD_ATTR __attribute__((target("arch=armv8.2-a+fp16")))
#define SIMD_SUPPORTED mnv3_cpu_has_asimdhp
#define SIMD_ATYPE MNV3_DTYPE_F16
#define W_T uint16_t
#define W_LOAD(p) vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)))

#define HP_INLINE static inline __attribute__((always_inline)) SIMD_ATTR

/* The first n <= 8 float16 elements (the rest zero), and their store: whole vectors
 * directly, a partial one (channel counts that are not a multiple of 8) through a copy. */
HP_INLINE float16x8_t hp_load8(const float16_t *p, uint32_t n) {
    uint16_t part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    if (n >= 8) return vld1q_f16(p);
    memcpy(part, p, n * sizeof *p);
    return vreinterpretq_f16_u16(vld1q_u16(part));
}
HP_INLINE void hp_store8(float16_t *p, float16x8_t v, uint32_t n) {
    uint16_t part[8];
    if (n >= 8) {
        vst1q_f16(p, v);
        return;
    }
    vst1q_u16(part, vreinterpretq_u16_f16(v));
    memcpy(p, part, n * sizeof *p);
}
HP_INLINE float16x8_t hp_narrow(float32x4_t lo, float32x4_t hi) {
    return vcombine_f16(vcvt_f16_f32(lo), vcvt_f16_f32(hi));
}

/* ---- pointwise GEMM: float16 rows in, float16 rows out -------------------------------- */

/* Rows of the tile as float16. */
#define PW_DECL2(r)                                                                          \
    const float16_t *a##r = (const float16_t *)(const void *)t->a + (size_t)(r) * t->a_stride; \
    vf c##r##_0 = b0, c##r##_1 = b1;

/* After the epilogue (float32): residual add and clamp, one rounding, the store; channel
 * sums of the float32 values. */
HP_INLINE void hp_pw_store(const mnv3_gemm_tile *t, size_t r, float32x4_t v0, float32x4_t v1,
                           int res_clamp, float32x4_t res_lo, float32x4_t res_hi,
                           float32x4_t *s0, float32x4_t *s1) {
    const uint32_t n = t->nc < 8 ? t->nc : 8;
    const size_t off = r * t->out_stride;
    if (t->res) {
        const float16x8_t res = hp_load8((const float16_t *)(const void *)t->res + off, n);
        v0 = vaddq_f32(v0, vcvt_f32_f16(vget_low_f16(res)));
        v1 = vaddq_f32(v1, vcvt_high_f32_f16(res));
        if (res_clamp) {
            v0 = vminq_f32(vmaxq_f32(v0, res_lo), res_hi);
            v1 = vminq_f32(vmaxq_f32(v1, res_lo), res_hi);
        }
    }
    if (t->out) hp_store8((float16_t *)(void *)t->out + off, hp_narrow(v0, v1), n);
    *s0 = vaddq_f32(*s0, v0);
    *s1 = vaddq_f32(*s1, v1);
}
#define PW_FIN2(r)                                                                           \
    hp_pw_store(t, r, ep_apply(ep, c##r##_0), ep_apply(ep, c##r##_1), ep->res_clamp,         \
                ep->res_lo, ep->res_hi, &s0, &s1);

/* Eight k steps share one load of each row's float16 inputs, multiplied by lane: the loop
 * is weight loads, input loads and FMLA .8h, nothing else. GCC (12) writes
 * vfmaq_laneq_f16 as a DUP and a vector FMLA, which doubles the vector instructions of the
 * loop; the by-element form is written out here, its indexed register in V0-V15 ("x") as
 * the half-precision encoding requires. */
#define HP_W8(w) vreinterpretq_f16_u16(vld1q_u16(w))
#define HP_LOADA(r) const float16x8_t ah##r = vld1q_f16(a##r + k);
#define HP_DECL2(r) float16x8_t h##r = hp_narrow(c##r##_0, c##r##_1);
#define HP_BACK2(r)                                                                          \
    c##r##_0 = vcvt_f32_f16(vget_low_f16(h##r));                                             \
    c##r##_1 = vcvt_high_f32_f16(h##r);
#define HP_LANE2(r, l) __asm__("fmla %0.8h, %1.8h, %2.h[" #l "]" : "+w"(h##r) : "w"(wh), "x"(ah##r));
#define HP_ONE2(r) h##r = vfmaq_n_f16(h##r, wh, a##r[k]);

#define HP_L2_0(r) HP_LANE2(r, 0)
#define HP_L2_1(r) HP_LANE2(r, 1)
#define HP_L2_2(r) HP_LANE2(r, 2)
#define HP_L2_3(r) HP_LANE2(r, 3)
#define HP_L2_4(r) HP_LANE2(r, 4)
#define HP_L2_5(r) HP_LANE2(r, 5)
#define HP_L2_6(r) HP_LANE2(r, 6)
#define HP_L2_7(r) HP_LANE2(r, 7)

#define HP_STEP(ROWS, l)                                                                     \
    {                                                                                        \
        const float16x8_t wh = HP_W8(w);                                                     \
        w += PW_NR;                                                                          \
        ROWS(l)                                                                              \
    }
#define PW_KLOOP2(ROWS)                                                                      \
    {                                                                                        \
        ROWS(HP_DECL2)                                                                       \
        for (k = 0; k + 8 <= t->k; k += 8) {                                                 \
            MNV3_PREFETCH_STEP(pf, pf_end);                                                  \
            {                                                                                \
                ROWS(HP_LOADA)                                                               \
                HP_STEP(ROWS, HP_L2_0)                                                       \
                HP_STEP(ROWS, HP_L2_1)                                                       \
                HP_STEP(ROWS, HP_L2_2)                                                       \
                HP_STEP(ROWS, HP_L2_3)                                                       \
                HP_STEP(ROWS, HP_L2_4)                                                       \
                HP_STEP(ROWS, HP_L2_5)                                                       \
                HP_STEP(ROWS, HP_L2_6)                                                       \
                HP_STEP(ROWS, HP_L2_7)                                                       \
            }                                                                                \
        }                                                                                    \
        for (; k < t->k; ++k) HP_STEP(ROWS, HP_ONE2)                                         \
        ROWS(HP_BACK2)                                                                       \
    }

/* The SE gate on float16 rows: multiplied in float32, rounded once. */
#define PW_SCALE_ROWS hp_scale_rows
static SIMD_ATTR void hp_scale_rows(const float *in_, size_t in_stride, const float *scale,
                                    uint32_t K, uint32_t rows, float *dst_, size_t dst_stride) {
    const float16_t *in = (const float16_t *)(const void *)in_;
    float16_t *dst = (float16_t *)(void *)dst_;
    uint32_t r, k;
    for (r = 0; r < rows; ++r) {
        const float16_t *src = in + r * in_stride;
        float16_t *d = dst + r * dst_stride;
        for (k = 0; k + 8 <= K; k += 8) {
            const float16x8_t x = vld1q_f16(src + k);
            const float32x4_t lo = vmulq_f32(vcvt_f32_f16(vget_low_f16(x)), vld1q_f32(scale + k));
            const float32x4_t hi = vmulq_f32(vcvt_high_f32_f16(x), vld1q_f32(scale + k + 4));
            vst1q_f16(d + k, hp_narrow(lo, hi));
        }
        for (; k < K; ++k) d[k] = (float16_t)((float)src[k] * scale[k]);
    }
}

/* ---- stem: float32 image in, float32 arithmetic, float16 out -------------------------- */

#define CONV_OUT_T float16_t
#define CONV_STORE(p, v, full, m) hp_store4((p), (v), (full) ? 4u : (m))
HP_INLINE void hp_store4(float16_t *p, float32x4_t v, uint32_t n) {
    const float16x4_t h = vcvt_f16_f32(v);
    uint16_t part[4];
    if (n >= 4) {
        vst1_f16(p, h);
        return;
    }
    vst1_u16(part, vreinterpret_u16_f16(h));
    memcpy(p, part, n * sizeof *p);
}

/* ---- depthwise: its own row, defined after the body ------------------------------------- */

#define DW_ROW hp_depthwise_row
static const mnv3_depthwise_kernel hp_depthwise_row;

#include "arm_neon.c"

/* Packed layout: [ky][kx][channels rounded up to 8] float16, zero-padded. */
static size_t hpdw_packed_bytes(uint32_t channels, uint32_t kernel) {
    return (size_t)kernel * kernel * round_up_u32(channels, 8) * sizeof(uint16_t);
}

static void hpdw_pack(const void *weight_, uint32_t channels, uint32_t kernel, void *packed_) {
    const W_CANON_T *weight = (const W_CANON_T *)weight_;
    uint16_t *packed = (uint16_t *)packed_;
    const uint32_t cp = round_up_u32(channels, 8);
    uint32_t t, c;
    for (t = 0; t < kernel * kernel; ++t)
        for (c = 0; c < cp; ++c)
            packed[(size_t)t * cp + c] =
                c < channels ? W_FROM_CANON(weight[(size_t)t * channels + c]) : 0;
}

/* Channels [c, c + n) of the float32 bias, rounded to float16. */
HP_INLINE float16x8_t hpdw_bias(const float *bias, uint32_t c, uint32_t n) {
    if (!bias) return vdupq_n_f16(0);
    return hp_narrow(v_loadm(bias + c, n < 4 ? n : 4),
                     n > 4 ? v_loadm(bias + c + 4, n - 4) : v_zero());
}

/* The epilogue in float32 and the store, rounded once; sums of the float32 values. */
HP_INLINE void hpdw_out(const simd_ep *ep, float16x8_t acc, float16_t *out, uint32_t n, vf *s0,
                        vf *s1) {
    const vf lo = ep_apply(ep, vcvt_f32_f16(vget_low_f16(acc)));
    const vf hi = ep_apply(ep, vcvt_high_f32_f16(acc));
    *s0 = v_add(*s0, lo);
    *s1 = v_add(*s1, hi);
    hp_store8(out, hp_narrow(lo, hi), n);
}

/* One output with every tap bounds-checked; weights w[ky * KS + kx], or read from wp
 * (stride cp) when w is NULL. */
HP_INLINE float16x8_t hpdw_edge(const mnv3_dw_span *s, const float16_t *const *r,
                                const float16x8_t *w, const float16_t *wp, size_t cp,
                                uint32_t ox, const uint32_t KS, float16x8_t acc, uint32_t n) {
    const long ix0 = (long)ox * s->stride - (long)s->pad_left;
    uint32_t ky, kx;
    for (ky = 0; ky < KS; ++ky) {
        if (!r[ky]) continue;
        for (kx = 0; kx < KS; ++kx) {
            const long ix = ix0 + (long)kx;
            const float16x8_t wv = w ? w[ky * KS + kx] : vld1q_f16(wp + (ky * KS + kx) * cp);
            if (ix < 0 || ix >= (long)s->in_width) continue;
            acc = vfmaq_f16(acc, hp_load8(r[ky] + (size_t)ix * s->channels, n), wv);
        }
    }
    return acc;
}

/* Channels [c, c + n) of outputs [ox_begin, ox_end), KS and S fixed (3 or 5, 1 or 2):
 * weights in registers, interior outputs four at a time (four FMLA chains). */
#define HPDW_G 4
HP_INLINE void hpdw_vector(const mnv3_dw_span *s, const simd_ep *ep, uint32_t c, uint32_t n,
                           const uint32_t KS, const uint32_t S) {
    const size_t C = s->channels, cp = round_up_u32(s->channels, 8);
    const float16_t *wp = (const float16_t *)s->w + c;
    const uint32_t ox0 = s->ox_begin, ox1 = s->ox_end;
    const uint32_t lo = s->ox_lo < ox0 ? ox0 : (s->ox_lo > ox1 ? ox1 : s->ox_lo);
    const uint32_t hi = s->ox_hi < lo ? lo : (s->ox_hi > ox1 ? ox1 : s->ox_hi);
    float16_t *out = (float16_t *)(void *)s->out + c;
    const float16_t *r[5];
    float16x8_t w[25];
    const float16x8_t bias = hpdw_bias(s->bias, c, n);
    vf s0 = v_zero(), s1 = v_zero();
    uint32_t ox = ox0, ky, kx, t;
#pragma GCC unroll 25
    for (t = 0; t < KS * KS; ++t) w[t] = vld1q_f16(wp + t * cp);
#pragma GCC unroll 5
    for (ky = 0; ky < KS; ++ky)
        r[ky] = s->rows[ky] ? (const float16_t *)(const void *)s->rows[ky] + c : NULL;
    for (; ox < lo; ++ox)
        hpdw_out(ep, hpdw_edge(s, r, w, NULL, 0, ox, KS, bias, n), out + (size_t)ox * C, n, &s0,
                 &s1);
    for (; ox + HPDW_G <= hi; ox += HPDW_G) {
        const size_t x0 = (size_t)((long)ox * S - (long)s->pad_left);
        float16x8_t a0 = bias, a1 = bias, a2 = bias, a3 = bias;
#pragma GCC unroll 5
        for (ky = 0; ky < KS; ++ky) {
            const float16_t *q = r[ky] ? r[ky] + x0 * C : NULL;
            if (!q) continue;
#pragma GCC unroll 5
            for (kx = 0; kx < KS; ++kx) {
                const float16x8_t wv = w[ky * KS + kx];
                a0 = vfmaq_f16(a0, hp_load8(q + (size_t)kx * C, n), wv);
                a1 = vfmaq_f16(a1, hp_load8(q + (size_t)(S + kx) * C, n), wv);
                a2 = vfmaq_f16(a2, hp_load8(q + (size_t)(2 * S + kx) * C, n), wv);
                a3 = vfmaq_f16(a3, hp_load8(q + (size_t)(3 * S + kx) * C, n), wv);
            }
        }
        hpdw_out(ep, a0, out + (size_t)ox * C, n, &s0, &s1);
        hpdw_out(ep, a1, out + (size_t)(ox + 1) * C, n, &s0, &s1);
        hpdw_out(ep, a2, out + (size_t)(ox + 2) * C, n, &s0, &s1);
        hpdw_out(ep, a3, out + (size_t)(ox + 3) * C, n, &s0, &s1);
    }
    for (; ox < ox1; ++ox)
        hpdw_out(ep, hpdw_edge(s, r, w, NULL, 0, ox, KS, bias, n), out + (size_t)ox * C, n, &s0,
                 &s1);
    if (s->sums) {
        add_sums(s->sums + c, s0, n < 4 ? n : 4);
        if (n > 4) add_sums(s->sums + c + 4, s1, n - 4);
    }
}

HP_INLINE void hpdw_span(const mnv3_dw_span *s, const uint32_t KS, const uint32_t S) {
    const simd_ep *ep = (const simd_ep *)s->params;
    uint32_t c;
    for (c = 0; c + 8 <= s->channels; c += 8) hpdw_vector(s, ep, c, 8, KS, S);
    if (c < s->channels) hpdw_vector(s, ep, c, s->channels - c, KS, S);
}

#define HPDW_KERNEL(K, S)                                                                    \
    SIMD_FN void UK_NAME(dwconv_, K##x##K##s##S, SIMD_ISA)(const mnv3_dw_span *s) {          \
        hpdw_span(s, K, S);                                                                  \
    }
HPDW_KERNEL(3, 1)
HPDW_KERNEL(3, 2)
HPDW_KERNEL(5, 1)
HPDW_KERNEL(5, 2)

/* Other kernel sizes and strides: weights read from memory, every tap bounds-checked. */
SIMD_FN void UK_NAME(dwconv_, any, SIMD_ISA)(const mnv3_dw_span *s) {
    const simd_ep *ep = (const simd_ep *)s->params;
    const size_t C = s->channels, cp = round_up_u32(s->channels, 8);
    const float16_t *r[MNV3_DW_MAX_KERNEL];
    uint32_t c, ox, ky;
    for (c = 0; c < C; c += 8) {
        const uint32_t n = C - c < 8 ? (uint32_t)(C - c) : 8;
        const float16x8_t bias = hpdw_bias(s->bias, c, n);
        float16_t *out = (float16_t *)(void *)s->out + c;
        vf s0 = v_zero(), s1 = v_zero();
        for (ky = 0; ky < s->kernel; ++ky)
            r[ky] = s->rows[ky] ? (const float16_t *)(const void *)s->rows[ky] + c : NULL;
        for (ox = s->ox_begin; ox < s->ox_end; ++ox)
            hpdw_out(ep,
                     hpdw_edge(s, r, NULL, (const float16_t *)s->w + c, cp, ox, s->kernel, bias, n),
                     out + (size_t)ox * C, n, &s0, &s1);
        if (s->sums) {
            add_sums(s->sums + c, s0, n < 4 ? n : 4);
            if (n > 4) add_sums(s->sums + c + 4, s1, n - 4);
        }
    }
}

static const mnv3_depthwise_kernel hp_depthwise_row = {
    UK_STR(UK_PREC) "_dwconv__" UK_STR(SIMD_ISA),
    SIMD_WTYPE,
    SIMD_ATYPE,
    hpdw_packed_bytes,
    hpdw_pack,
    prepare,
    {UK_NAME(dwconv_, 3x3s1, SIMD_ISA), UK_NAME(dwconv_, 3x3s2, SIMD_ISA),
     UK_NAME(dwconv_, 5x5s1, SIMD_ISA), UK_NAME(dwconv_, 5x5s2, SIMD_ISA),
     UK_NAME(dwconv_, any, SIMD_ISA)},
    mnv3_depthwise_driver,
};
#endif
