/* Relaxed precision on AArch64 cores with FP16 arithmetic (ARMv8.2 FEAT_FP16, HWCAP
 * asimdhp): activations are stored as float16 between layers, and the pointwise GEMM and
 * the depthwise convolution multiply and accumulate in float16, FMLA .8h, eight channels
 * per instruction where float32 has four. Packed weights are float16. Included by
 * neon_f16.c (float16 models) and neon_f16_f32w.c (float32 models, rounded to float16 at
 * packing), which set W_CANON_T and how to read it; this file then includes neon_f32.c.
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
#if defined(MNV3_NEON_EXTENSIONS_BY_FILE)
#define SIMD_ATTR /* the file's -march has it */
#else
#define SIMD_ATTR __attribute__((target("arch=armv8.2-a+fp16")))
#endif
#define SIMD_SUPPORTED mnv3_cpu_has_asimdhp
#define SIMD_ATYPE MNV3_DTYPE_F16
#define SIMD_ARITH MNV3_DTYPE_F16
#define W_T uint16_t
#define W_LOAD(p) vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)))

#define F16A_INLINE static inline __attribute__((always_inline)) SIMD_ATTR

/* The first n <= 8 float16 elements (the rest zero), and their store: whole vectors
 * directly, a partial one (channel counts that are not a multiple of 8) through a copy. */
F16A_INLINE float16x8_t f16a_load8(const float16_t *p, uint32_t n) {
    uint16_t part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    if (n >= 8) return vld1q_f16(p);
    memcpy(part, p, n * sizeof *p);
    return vreinterpretq_f16_u16(vld1q_u16(part));
}
F16A_INLINE void f16a_store8(float16_t *p, float16x8_t v, uint32_t n) {
    uint16_t part[8];
    if (n >= 8) {
        vst1q_f16(p, v);
        return;
    }
    vst1q_u16(part, vreinterpretq_u16_f16(v));
    memcpy(p, part, n * sizeof *p);
}
F16A_INLINE float16x8_t f16a_narrow(float32x4_t lo, float32x4_t hi) {
    return vcombine_f16(vcvt_f16_f32(lo), vcvt_f16_f32(hi));
}

/* ---- pointwise GEMM: float16 rows in, float16 rows out -------------------------------- */

/* Rows of the tile as float16. */
#define PW_DECL2(r)                                                                          \
    const float16_t *a##r = (const float16_t *)(const void *)t->a + (size_t)(r) * t->a_stride; \
    vf c##r##_0 = b0, c##r##_1 = b1;

/* After the epilogue (float32): residual add and clamp, one rounding, the store; channel
 * sums of the float32 values. */
F16A_INLINE void f16a_pw_store(const mnv3_gemm_tile *t, size_t r, float32x4_t v0, float32x4_t v1,
                           int res_clamp, float32x4_t res_lo, float32x4_t res_hi,
                           float32x4_t *s0, float32x4_t *s1) {
    const uint32_t n = t->nc < 8 ? t->nc : 8;
    const size_t off = r * t->out_stride;
    if (t->res) {
        const float16x8_t res = f16a_load8((const float16_t *)(const void *)t->res + off, n);
        v0 = vaddq_f32(v0, vcvt_f32_f16(vget_low_f16(res)));
        v1 = vaddq_f32(v1, vcvt_high_f32_f16(res));
        if (res_clamp) {
            v0 = vminq_f32(vmaxq_f32(v0, res_lo), res_hi);
            v1 = vminq_f32(vmaxq_f32(v1, res_lo), res_hi);
        }
    }
    if (t->out) f16a_store8((float16_t *)(void *)t->out + off, f16a_narrow(v0, v1), n);
    *s0 = vaddq_f32(*s0, v0);
    *s1 = vaddq_f32(*s1, v1);
}
#define PW_FIN2(r)                                                                           \
    f16a_pw_store(t, r, ep_apply(ep, c##r##_0), ep_apply(ep, c##r##_1), ep->res_clamp,         \
                ep->res_lo, ep->res_hi, &s0, &s1);

/* The k loop: generated assembly (generated/neon_f16_gemm_loops.h, tools/generate/neon_f16_gemm.py),
 * 8 k steps per iteration sharing one load of each row's float16 inputs, multiplied by
 * lane; every tile height splits k over the same two accumulators per row (one split for
 * all heights, so a pixel's result does not depend on its tile), summed in float32 after
 * the loop. The last k % 8 steps are straight-line C with the same by-element FMLA.
 * GCC (12) writes vfmaq_laneq_f16 as a DUP and a vector FMLA, so that FMLA is written out
 * here too, its indexed register in V0-V15 ("x") as the half-precision encoding requires. */
#include "kernels/generated/neon_f16_gemm_loops.h"

#define F16A_FMLA_LANE(acc, wh, ah, l)                                                         \
    __asm__("fmla %0.8h, %1.8h, %2.h[" #l "]" : "+w"(acc) : "w"(wh), "x"(ah))

#define F16A_TAIL_STEP(l)                                                                      \
    if ((l) < rem) {                                                                         \
        const float16x8_t wh = vreinterpretq_f16_u16(vld1q_u16(w + (l) * 8));            \
        _Pragma("GCC unroll 8") for (r = 0; r < rows; ++r)                                   \
            F16A_FMLA_LANE(acc[r * split], wh, ah[r], l);                                      \
    }

/* The last rem (< 8) k steps of `rows` rows into split 0 of each row: straight-line code
 * (no loop), a function of its own per row count so that the tile's code around its k
 * loop stays free of the partial loads' out-of-line paths. */
#define F16A_GEMM_TAIL(R)                                                                      \
    static __attribute__((noinline)) SIMD_ATTR void f16a_gemm_tail_##R(                        \
        const float16_t *const *a, const uint16_t *w, uint32_t rem, float16x8_t *acc) {     \
        const uint32_t rows = R, split = F16A_GEMM_SPLIT;                                      \
        float16x8_t ah[R];                                                                   \
        uint32_t r;                                                                          \
        _Pragma("GCC unroll 8") for (r = 0; r < rows; ++r) ah[r] = f16a_load8(a[r], rem);      \
        F16A_TAIL_STEP(0)                                                                      \
        F16A_TAIL_STEP(1)                                                                      \
        F16A_TAIL_STEP(2)                                                                      \
        F16A_TAIL_STEP(3)                                                                      \
        F16A_TAIL_STEP(4)                                                                      \
        F16A_TAIL_STEP(5)                                                                      \
        F16A_TAIL_STEP(6)                                                                      \
    }
F16A_GEMM_TAIL(1)
F16A_GEMM_TAIL(2)
F16A_GEMM_TAIL(3)
F16A_GEMM_TAIL(4)
F16A_GEMM_TAIL(5)
F16A_GEMM_TAIL(6)
F16A_GEMM_TAIL(7)
F16A_GEMM_TAIL(8)

#define F16A_GEMM_CASE(R)                                                                      \
    case R:                                                                                  \
        if (k8) f16_gemm_kloop_##R(a, w, k8, pf, pf_end, init, acc);                          \
        if (rem) f16a_gemm_tail_##R(a, *w, rem, acc);                                          \
        break;

/* Accumulators acc[r * split + i] of `rows` rows over k steps: k8 iterations of the loop,
 * then `rem` (< 8) more; split 0 starts at init, the others at zero. */
F16A_INLINE void f16a_gemm_k(const uint32_t rows, const float16_t **a, const uint16_t **w,
                         uint32_t k8, uint32_t rem, const char **pf, const char *pf_end,
                         float16x8_t init, float16x8_t *acc) {
    const uint32_t split = F16A_GEMM_SPLIT;
    uint32_t r;
    if (!k8) {
#pragma GCC unroll 16
        for (r = 0; r < rows * split; ++r) acc[r] = r % split ? vdupq_n_f16(0) : init;
    }
    switch (rows) {
        F16A_GEMM_CASE(1)
        F16A_GEMM_CASE(2)
        F16A_GEMM_CASE(3)
        F16A_GEMM_CASE(4)
        F16A_GEMM_CASE(5)
        F16A_GEMM_CASE(6)
        F16A_GEMM_CASE(7)
    default: F16A_GEMM_CASE(8)
    }
}

/* Row r's accumulators, widened and summed in float32. */
F16A_INLINE void f16a_gemm_join(const float16x8_t *acc, uint32_t split, float32x4_t *lo,
                             float32x4_t *hi) {
    float32x4_t l = vcvt_f32_f16(vget_low_f16(acc[0])), h = vcvt_high_f32_f16(acc[0]);
    uint32_t i;
#pragma GCC unroll 8
    for (i = 1; i < split; ++i) {
        l = vaddq_f32(l, vcvt_f32_f16(vget_low_f16(acc[i])));
        h = vaddq_f32(h, vcvt_high_f32_f16(acc[i]));
    }
    *lo = l;
    *hi = h;
}

#define F16A_ONE(r) +1
#define F16A_APTR(r) f16a_a[r] = a##r;
#define F16A_JOIN(r) f16a_gemm_join(f16a_acc + (r) * F16A_GEMM_SPLIT, F16A_GEMM_SPLIT, \
                                &c##r##_0, &c##r##_1);
#define PW_KLOOP2(ROWS)                                                                      \
    {                                                                                        \
        const uint32_t f16a_rows = 0 ROWS(F16A_ONE);                                             \
        const float16_t *f16a_a[8];                                                            \
        float16x8_t f16a_acc[16];                                                              \
        ROWS(F16A_APTR)                                                                        \
        k = t->k;                                                                            \
        f16a_gemm_k(f16a_rows, f16a_a, &w, k / 8, k % 8, &pf, pf_end, f16a_narrow(b0, b1), f16a_acc);  \
        ROWS(F16A_JOIN)                                                                        \
    }

/* The SE gate on float16 rows: multiplied (and clamped) in float32, rounded once. */
#define PW_SCALE_ROWS f16a_scale_rows
F16A_INLINE float32x4_t f16a_gated(float32x4_t x, float32x4_t scale, int clamped, float32x4_t lo,
                               float32x4_t hi) {
    x = vmulq_f32(x, scale);
    return clamped ? vminq_f32(vmaxq_f32(x, lo), hi) : x;
}
static SIMD_ATTR void f16a_scale_rows(const float *in_, size_t in_stride, const float *scale,
                                    uint32_t K, uint32_t rows, float *dst_, size_t dst_stride,
                                    int clamped, mnv3_clamp clamp) {
    const float16_t *in = (const float16_t *)(const void *)in_;
    float16_t *dst = (float16_t *)(void *)dst_;
    const float32x4_t lo = vdupq_n_f32(clamp.lo), hi = vdupq_n_f32(clamp.hi);
    uint32_t r, k;
    for (r = 0; r < rows; ++r) {
        const float16_t *src = in + r * in_stride;
        float16_t *d = dst + r * dst_stride;
        for (k = 0; k + 8 <= K; k += 8) {
            const float16x8_t x = vld1q_f16(src + k);
            const float32x4_t l =
                f16a_gated(vcvt_f32_f16(vget_low_f16(x)), vld1q_f32(scale + k), clamped, lo, hi);
            const float32x4_t h =
                f16a_gated(vcvt_high_f32_f16(x), vld1q_f32(scale + k + 4), clamped, lo, hi);
            vst1q_f16(d + k, f16a_narrow(l, h));
        }
        for (; k < K; ++k) {
            float v = (float)src[k] * scale[k];
            if (clamped) v = mnv3_clampf(v, clamp);
            d[k] = (float16_t)v;
        }
    }
}

/* ---- stem: float32 image in, float32 arithmetic, float16 out -------------------------- */

/* The float32 set's GEMM tiles over patches (arm/neon_conv.h) on the weights widened to
 * float32 once per output row, their results rounded once into the float16 output. */
#define CONV_OUT_T float16_t
#define CONV_WIDEN mnv3_neon_widen_f16
#define CONV_NARROW f16a_narrow_row
F16A_INLINE void f16a_store4(float16_t *p, float32x4_t v, uint32_t n) {
    const float16x4_t h = vcvt_f16_f32(v);
    uint16_t part[4];
    if (n >= 4) {
        vst1_f16(p, h);
        return;
    }
    vst1_u16(part, vreinterpret_u16_f16(h));
    memcpy(p, part, n * sizeof *p);
}
F16A_INLINE void f16a_narrow_row(float16_t *dst, const float *src, uint32_t n) {
    uint32_t i;
    for (i = 0; i + 4 <= n; i += 4) f16a_store4(dst + i, vld1q_f32(src + i), 4);
    if (i < n) {
        float part[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        memcpy(part, src + i, (n - i) * sizeof *part);
        f16a_store4(dst + i, vld1q_f32(part), n - i);
    }
}

/* ---- GEMV (SE and classifier, float32 arithmetic): its own, defined after the body ---- */

/* Eight rows share each input load, eight independent FMLA chains; eight inputs per
 * iteration, so that the loop's overhead is spread over 16 FMLAs. */
#define GEMV_MR 8
#define GEMV_UKERNEL mnv3_f16_gemv_8x__neon
#define GEMV_NAME "f16_gemv_8x__neon"
static SIMD_ATTR void GEMV_UKERNEL(const float *x, const void *w, uint32_t n, uint32_t count,
                                   float *dots);

/* ---- depthwise: its own row, defined after the body ------------------------------------- */

#define DW_ROW f16a_depthwise_row
static const mnv3_row f16a_depthwise_row;

#include "neon_f32.c"

/* A last block of fewer than eight outputs repeats its last row; the last n % 8 inputs
 * are straight-line code. */
SIMD_FN void GEMV_UKERNEL(const float *x, const void *w_, uint32_t I, uint32_t count,
                          float *dots) {
    const W_CANON_T *W = (const W_CANON_T *)w_;
    const uint32_t i8 = I / 8 * 8;
    const W_CANON_T *w[GEMV_MR];
    vf s[GEMV_MR];
    uint32_t i, j;
#pragma GCC unroll 8
    for (j = 0; j < GEMV_MR; ++j) {
        w[j] = W + (size_t)(j < count ? j : count - 1) * I;
        s[j] = v_zero();
    }
    for (i = 0; i < i8; i += 8) {
        const vf x0 = v_load(x + i), x1 = v_load(x + i + 4);
#pragma GCC unroll 8
        for (j = 0; j < GEMV_MR; ++j) {
            vf lo, hi;
            F16A_CANON_LOAD8(w[j] + i, lo, hi);
            s[j] = v_fma(lo, x0, s[j]);
            s[j] = v_fma(hi, x1, s[j]);
        }
    }
    if (i + 4 <= I) {
        const vf x0 = v_load(x + i);
#pragma GCC unroll 8
        for (j = 0; j < GEMV_MR; ++j) s[j] = v_fma(W_CANON_LOAD(w[j] + i), x0, s[j]);
        i += 4;
    }
    if (i < I) {
        const vf x1 = v_loadm(x + i, I - i);
#pragma GCC unroll 8
        for (j = 0; j < GEMV_MR; ++j) s[j] = v_fma(W_CANON_LOADM(w[j] + i, I - i), x1, s[j]);
    }
    {
        /* constant indices keep s[] in registers through the loop */
        float d[GEMV_MR];
#pragma GCC unroll 8
        for (j = 0; j < GEMV_MR; ++j) d[j] = v_hsum(s[j]);
        memcpy(dots, d, count * sizeof(float));
    }
}

/* Packed layout: [ky][kx][channels rounded up to 8] float16, zero-padded. */
static size_t f16a_dw_packed_bytes(uint32_t channels, uint32_t kernel) {
    return (size_t)kernel * kernel * round_up_u32(channels, 8) * sizeof(uint16_t);
}

static void f16a_dw_pack(const void *weight_, uint32_t channels, uint32_t kernel, void *packed_) {
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
F16A_INLINE float16x8_t f16a_dw_bias(const float *bias, uint32_t c, uint32_t n) {
    if (!bias) return vdupq_n_f16(0);
    return f16a_narrow(v_loadm(bias + c, n < 4 ? n : 4),
                     n > 4 ? v_loadm(bias + c + 4, n - 4) : v_zero());
}

/* The epilogue in float32 and the store, rounded once; sums of the float32 values. */
F16A_INLINE void f16a_dw_out(const simd_ep *ep, float16x8_t acc, float16_t *out, uint32_t n, vf *s0,
                        vf *s1) {
    const vf lo = ep_apply(ep, vcvt_f32_f16(vget_low_f16(acc)));
    const vf hi = ep_apply(ep, vcvt_high_f32_f16(acc));
    *s0 = v_add(*s0, lo);
    *s1 = v_add(*s1, hi);
    f16a_store8(out, f16a_narrow(lo, hi), n);
}

/* The depthwise convolution follows the float32 one (arm/neon_dw.h): a straight-line hot
 * loop over groups of F16A_DW_G outputs of one channel vector whose inputs are all inside the
 * image (generated assembly, generated/neon_f16_dw_loops.h, tools/generate/neon_f16_dw.py), borders,
 * rows in the padding and a partial channel vector through the same loop on a zero-padded
 * copy of the group's window (a zero input adds an exact zero product), and the epilogue
 * in its own pass over the raw sums. The raw sums are the float16 accumulators, so storing
 * and reloading them rounds nothing. */
#include "kernels/generated/neon_f16_dw_loops.h"

#define F16A_DW_G 8
#define F16A_DW_MAX_T ((F16A_DW_G - 1) * 2 + MNV3_DW_MAX_KERNEL)

/* `groups` groups of F16A_DW_G outputs: input row ky of the first one at q[ky], pixels and
 * outputs pixel_bytes apart; weights from the packed ones (taps cp apart). A function of
 * its own per shape, named as a microkernel so that `make mca` finds its loop. */
typedef void (*f16a_dw_groups_fn)(const float16_t *const *q, float16_t *out, size_t pixel_bytes,
                               uint32_t groups, const float16_t *wm, size_t cp,
                               float16x8_t bias);
#define F16A_DW_GROUPS(K, S)                                                                    \
    static __attribute__((noinline)) SIMD_ATTR void UK_NAME(dwconv_, K##x##K##s##S##_g8,      \
                                                           SIMD_ISA)(                       \
        const float16_t *const *q, float16_t *out, size_t pixel_bytes, uint32_t groups,     \
        const float16_t *wm, size_t cp, float16x8_t bias) {                                  \
        float16x8_t w[K * K], b[F16A_DW_G];                                                     \
        uint32_t t;                                                                          \
        _Pragma("GCC unroll 25") for (t = 0; t < K * K; ++t) w[t] = vld1q_f16(wm + t * cp);  \
        for (t = 0; t < F16A_DW_G; ++t) b[t] = bias;                                            \
        f16_dw_loop_##K##x##K##s##S(q, out, pixel_bytes, groups, w, b);                         \
    }
F16A_DW_GROUPS(3, 1)
F16A_DW_GROUPS(3, 2)
F16A_DW_GROUPS(5, 1)
F16A_DW_GROUPS(5, 2)

/* The same for any kernel size KS and stride S (groups == NULL in f16a_dw_range). */
F16A_INLINE void f16a_dw_any_groups(const float16_t *const *q, float16_t *out, size_t pixel_bytes,
                               uint32_t groups, const float16_t *wm, size_t cp,
                               float16x8_t bias, uint32_t KS, uint32_t S) {
    const float16_t *rows[MNV3_DW_MAX_KERNEL];
    const size_t group_step = (size_t)F16A_DW_G * S * pixel_bytes / sizeof(float16_t);
    float16x8_t b[F16A_DW_G];
    uint32_t g, ky, t;
    for (t = 0; t < F16A_DW_G; ++t) b[t] = bias;
    for (ky = 0; ky < KS; ++ky) rows[ky] = q[ky];
    for (g = 0; g < groups; ++g) {
        f16_dw_loop_any(rows, KS, (uint64_t)S * pixel_bytes, pixel_bytes, wm, cp * sizeof *wm, b,
                      out, pixel_bytes);
        for (ky = 0; ky < KS; ++ky) rows[ky] += group_step;
        out += (size_t)F16A_DW_G * pixel_bytes / sizeof(float16_t);
    }
}

F16A_INLINE void f16a_dw_run(f16a_dw_groups_fn groups, const float16_t *const *q, float16_t *out,
                        size_t pixel_bytes, uint32_t count, const float16_t *wm, size_t cp,
                        float16x8_t bias, uint32_t KS, uint32_t S) {
    if (groups)
        groups(q, out, pixel_bytes, count, wm, cp, bias);
    else
        f16a_dw_any_groups(q, out, pixel_bytes, count, wm, cp, bias, KS, S);
}

/* Columns [ix0, ix0 + T) of the input rows of channels [c, c + n), zeros outside the image,
 * row ky at q[ky]. */
F16A_INLINE void f16a_dw_fill(const mnv3_dw_span *s, uint32_t c, uint32_t n, long ix0, uint32_t T,
                         const uint32_t KS, float16x8_t *win, const float16_t **q) {
    const size_t C = s->channels;
    uint32_t ky, t;
    for (ky = 0; ky < KS; ++ky) {
        const float16_t *row = (const float16_t *)(const void *)s->rows[ky];
        float16x8_t *dst = win + (size_t)ky * T;
        q[ky] = (const float16_t *)dst;
        for (t = 0; t < T; ++t) {
            const long ix = ix0 + (long)t;
            dst[t] = row && ix >= 0 && ix < (long)s->in_width
                         ? f16a_load8(row + (size_t)ix * C + c, n)
                         : vdupq_n_f16(0);
        }
    }
}

/* Raw sums of outputs [ox, ox + m), m <= F16A_DW_G, of channels [c, c + n) from a zero-padded
 * copy of their input window; a window wider than F16A_DW_MAX_T (the generic kernel at a
 * stride above 2) one output at a time, its 8 accumulators all computing that output. */
F16A_INLINE void f16a_dw_window(const mnv3_dw_span *s, f16a_dw_groups_fn groups, uint32_t c, uint32_t n,
                           uint32_t ox, uint32_t m, const float16_t *wm, size_t cp,
                           float16x8_t bias, const uint32_t KS, const uint32_t S) {
    const uint32_t T = (F16A_DW_G - 1) * S + KS;
    const size_t C = s->channels;
    const long ix0 = (long)ox * S - (long)s->pad_left;
    float16x8_t win[MNV3_DW_MAX_KERNEL * F16A_DW_MAX_T], res[F16A_DW_G];
    const float16_t *q[MNV3_DW_MAX_KERNEL];
    float16_t *out = (float16_t *)(void *)s->out + c;
    uint32_t j;
    if (T <= F16A_DW_MAX_T) {
        f16a_dw_fill(s, c, n, ix0, T, KS, win, q);
        f16a_dw_run(groups, q, (float16_t *)res, sizeof *res, 1, wm, cp, bias, KS, S);
        for (j = 0; j < m; ++j) f16a_store8(out + (size_t)(ox + j) * C, res[j], n);
        return;
    }
    for (j = 0; j < m; ++j) {
        float16x8_t b[F16A_DW_G];
        uint32_t t;
        for (t = 0; t < F16A_DW_G; ++t) b[t] = bias;
        f16a_dw_fill(s, c, n, ix0 + (long)j * S, KS, KS, win, q);
        f16_dw_loop_any(q, KS, 0, sizeof *res, wm, cp * sizeof *wm, b, (float16_t *)res,
                      sizeof *res);
        f16a_store8(out + (size_t)(ox + j) * C, res[0], n);
    }
}

/* The epilogue over the raw sums of outputs [ox0, ox1) of channels [c, c + n). */
F16A_INLINE void f16a_dw_epilogue(const mnv3_dw_span *s, const simd_ep *ep, uint32_t c, uint32_t n,
                             uint32_t ox0, uint32_t ox1) {
    const size_t C = s->channels;
    float16_t *out = (float16_t *)(void *)s->out + c;
    vf s0 = v_zero(), s1 = v_zero();
    uint32_t ox;
    for (ox = ox0; ox < ox1; ++ox) {
        float16_t *o = out + (size_t)ox * C;
        f16a_dw_out(ep, f16a_load8(o, n), o, n, &s0, &s1);
    }
    if (s->sums) {
        add_sums(s->sums + c, s0, n < 4 ? n : 4);
        if (n > 4) add_sums(s->sums + c + 4, s1, n - 4);
    }
}

/* Outputs [ox0, ox1) of channels [c, c + n): window groups up to the interior, the hot
 * loop over interior groups, a last interior group overlapping the previous one
 * (recomputed identically: the epilogue runs once, after), window groups for the rest. */
F16A_INLINE void f16a_dw_range(const mnv3_dw_span *s, const simd_ep *ep, f16a_dw_groups_fn groups,
                          uint32_t c, uint32_t n, uint32_t ox0, uint32_t ox1, const uint32_t KS,
                          const uint32_t S) {
    const size_t C = s->channels, cp = round_up_u32(s->channels, 8);
    const size_t pixel_bytes = C * sizeof(float16_t);
    const float16_t *wm = (const float16_t *)s->w + c;
    const float16x8_t bias = f16a_dw_bias(s->bias, c, n);
    const uint32_t lo = s->ox_lo > ox0 ? s->ox_lo : ox0, hi = s->ox_hi < ox1 ? s->ox_hi : ox1;
    float16_t *out = (float16_t *)(void *)s->out + c;
    int rows_all = 1;
    uint32_t ox = ox0, ky, m;
    for (ky = 0; ky < KS; ++ky) rows_all &= s->rows[ky] != NULL;
    if (n == 8 && rows_all && lo + F16A_DW_G <= hi) {
        const float16_t *q[MNV3_DW_MAX_KERNEL];
        size_t x0;
        for (; ox < lo; ox += m) {
            m = lo - ox < F16A_DW_G ? lo - ox : F16A_DW_G;
            f16a_dw_window(s, groups, c, n, ox, m, wm, cp, bias, KS, S);
        }
        x0 = (size_t)ox * S - s->pad_left;
        for (ky = 0; ky < KS; ++ky)
            q[ky] = (const float16_t *)(const void *)s->rows[ky] + c + x0 * C;
        m = (hi - ox) / F16A_DW_G;
        f16a_dw_run(groups, q, out + (size_t)ox * C, pixel_bytes, m, wm, cp, bias, KS, S);
        ox += m * F16A_DW_G;
        if (ox < hi) {
            x0 = (size_t)(hi - F16A_DW_G) * S - s->pad_left;
            for (ky = 0; ky < KS; ++ky)
                q[ky] = (const float16_t *)(const void *)s->rows[ky] + c + x0 * C;
            f16a_dw_run(groups, q, out + (size_t)(hi - F16A_DW_G) * C, pixel_bytes, 1, wm, cp, bias,
                     KS, S);
            ox = hi;
        }
    }
    for (; ox < ox1; ox += m) {
        m = ox1 - ox < F16A_DW_G ? ox1 - ox : F16A_DW_G;
        f16a_dw_window(s, groups, c, n, ox, m, wm, cp, bias, KS, S);
    }
    f16a_dw_epilogue(s, ep, c, n, ox0, ox1);
}

/* Row by row, each channel vector across the span; or, pixel-major (inputs too large for
 * the cache), groups of F16A_DW_G outputs through every channel vector in turn. */
F16A_INLINE void f16a_dw_span(const mnv3_dw_span *s, f16a_dw_groups_fn groups, const uint32_t KS,
                         const uint32_t S) {
    const simd_ep *ep = (const simd_ep *)s->params;
    const uint32_t C = s->channels;
    uint32_t ox = s->ox_begin, n, c;
    while (ox < s->ox_end) {
        n = s->ox_end - ox;
        if (s->pixel_major && n > F16A_DW_G) n = F16A_DW_G;
        for (c = 0; c + 8 <= C; c += 8) f16a_dw_range(s, ep, groups, c, 8, ox, ox + n, KS, S);
        if (c < C) f16a_dw_range(s, ep, groups, c, C - c, ox, ox + n, KS, S);
        ox += n;
    }
}

#define F16A_DW_KERNEL(K, S)                                                                    \
    SIMD_FN void UK_NAME(dwconv_, K##x##K##s##S, SIMD_ISA)(const mnv3_dw_span *s) {          \
        f16a_dw_span(s, UK_NAME(dwconv_, K##x##K##s##S##_g8, SIMD_ISA), K, S);                  \
    }
F16A_DW_KERNEL(3, 1)
F16A_DW_KERNEL(3, 2)
F16A_DW_KERNEL(5, 1)
F16A_DW_KERNEL(5, 2)

/* Other kernel sizes and strides: the generic tap loop, weights read from memory. */
SIMD_FN void UK_NAME(dwconv_, any, SIMD_ISA)(const mnv3_dw_span *s) {
    f16a_dw_span(s, NULL, s->kernel, s->stride);
}

static const mnv3_f32_dw_impl f16a_dw_impl = {
    prepare,
    sizeof(simd_ep),
    {UK_NAME(dwconv_, 3x3s1, SIMD_ISA), UK_NAME(dwconv_, 3x3s2, SIMD_ISA),
     UK_NAME(dwconv_, 5x5s1, SIMD_ISA), UK_NAME(dwconv_, 5x5s2, SIMD_ISA),
     UK_NAME(dwconv_, any, SIMD_ISA)},
};

static size_t f16a_dw_row_packed_bytes(const mnv3_row *row, const mnv3_layer *l) {
    (void)row;
    return f16a_dw_packed_bytes(l->out_channels, l->kernel);
}

static void f16a_dw_row_pack(const mnv3_row *row, const mnv3_layer *l, void *packed) {
    (void)row;
    f16a_dw_pack(l->weight, l->out_channels, l->kernel, packed);
}

static const mnv3_row f16a_depthwise_row = {
    UK_STR(UK_PREC) "_dwconv__" UK_STR(SIMD_ISA),
    MNV3_ROW_DEPTHWISE, SIMD_WTYPE, SIMD_ATYPE, SIMD_ARITH, 1,
    f16a_dw_row_packed_bytes, f16a_dw_row_pack, mnv3_f32_params_bytes, mnv3_f32_prepare,
    mnv3_no_workspace, {.depthwise = mnv3_f32_depthwise_driver}, &f16a_dw_impl,
};
#endif
