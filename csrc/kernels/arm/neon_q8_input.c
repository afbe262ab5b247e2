/* NEON int8 input conversions: an image to the stem's NHWC bytes (kernels.h,
 * mnv3_q8_input_ops), byte for byte what the portable loops give.
 *
 * QUANTIZE is mnv3_q8_quantize_one on 4 lanes. The quotient is the same IEEE division:
 * FDIV on AArch64; on ARMv7, whose NEON has no division and flushes denormals to zero,
 * the VFP divides each lane as the scalar code does (a quotient that NEON then flushes
 * quantizes to the zero point either way). Saturation comes first: the quotient is clamped
 * to [-1000, 1000], NaN going to -1000 (it fails the comparison that keeps it). Since
 * |zp| <= 128, any quotient beyond 256 saturates either way, so the clamp changes no result
 * and keeps the conversion to int32 in range. Rounding half away from zero is FCVTAS on
 * AArch64, and on ARMv7 trunc(r) plus the sign of a fraction of at least one half (exact
 * below 2^23, a no-op above). SQXTN narrows with the final clamp to [-128, 127]. The loops
 * around these vectors are simd_q8_input.h's.
 *
 * Division is slow on these cores (four VFP divisions a vector on ARMv7), so 16 floats
 * are first multiplied by the reciprocal (mnv3_q8in_reciprocal_exact) and the clamped
 * products rounded to nearest (FRINTN; on ARMv7, whose NEON always rounds to nearest, by
 * adding and subtracting 1.5 * 2^23), which is exact unless a lane lies within
 * MNV3_Q8IN_TIE_MARGIN of a tie; only then are they divided. */
#include "kernels/kernels.h"

#if defined(MNV3_HAVE_NEON_KERNELS)
#include <arm_neon.h>

#include "kernels/q8_impl.h"

#define N_INLINE static inline __attribute__((always_inline))

typedef struct q8in_quantizer {
    float scale;
    float32x4_t divisor, lo, hi, half, minus_half, reciprocal, near_tie;
    int use_reciprocal;
    int32x4_t zp;
} q8in_quantizer;
typedef int8x16_t q8in_bytes;

static q8in_quantizer q8in_quantizer_of(float scale, int32_t zp) {
    q8in_quantizer q;
    q.scale = scale;
    q.divisor = vdupq_n_f32(scale);
    q.lo = vdupq_n_f32(-1000.0f);
    q.hi = vdupq_n_f32(1000.0f);
    q.half = vdupq_n_f32(0.5f);
    q.minus_half = vdupq_n_f32(-0.5f);
    q.zp = vdupq_n_s32(zp);
    q.use_reciprocal = mnv3_q8in_reciprocal_exact(scale);
    q.reciprocal = vdupq_n_f32(q.use_reciprocal ? 1.0f / scale : 0.0f);
    q.near_tie = vdupq_n_f32(0.5f - MNV3_Q8IN_TIE_MARGIN);
    return q;
}

/* Whether any lane of a comparison mask is set. */
N_INLINE int any_lane(uint32x4_t m) {
#if defined(__aarch64__)
    return vmaxvq_u32(m) != 0;
#else
    const uint32x2_t h = vorr_u32(vget_low_u32(m), vget_high_u32(m));
    return (vget_lane_u32(h, 0) | vget_lane_u32(h, 1)) != 0;
#endif
}

/* The division path, as described above. */
N_INLINE int32x4_t quantize4_divided(const q8in_quantizer *q, const float *x) {
    float32x4_t r;
#if defined(__aarch64__)
    r = vdivq_f32(vld1q_f32(x), q->divisor);
#else
    float quotient[4];
    quotient[0] = x[0] / q->scale;
    quotient[1] = x[1] / q->scale;
    quotient[2] = x[2] / q->scale;
    quotient[3] = x[3] / q->scale;
    r = vld1q_f32(quotient);
#endif
    r = vminq_f32(vbslq_f32(vcgtq_f32(r, q->lo), r, q->lo), q->hi);
#if defined(__aarch64__)
    return vaddq_s32(vcvtaq_s32_f32(r), q->zp);
#else
    {
        const int32x4_t t = vcvtq_s32_f32(r);
        const float32x4_t frac = vsubq_f32(r, vcvtq_f32_s32(t));
        /* comparison masks are -1: subtracting one adds 1 */
        const int32x4_t up = vreinterpretq_s32_u32(vcgeq_f32(frac, q->half));
        const int32x4_t down = vreinterpretq_s32_u32(vcleq_f32(frac, q->minus_half));
        return vaddq_s32(vaddq_s32(vsubq_s32(t, up), down), q->zp);
    }
#endif
}

/* Lane-wise x * reciprocal, clamped, rounded to nearest, plus the zero point; near gains
 * the lanes within the margin of a tie. */
N_INLINE int32x4_t quantize4_by_reciprocal(const q8in_quantizer *q, const float *x,
                                           uint32x4_t *near) {
    float32x4_t p = vmulq_f32(vld1q_f32(x), q->reciprocal), n;
    p = vminq_f32(vbslq_f32(vcgtq_f32(p, q->lo), p, q->lo), q->hi);
#if defined(__aarch64__)
    n = vrndnq_f32(p);
#else
    n = vsubq_f32(vaddq_f32(p, vdupq_n_f32(12582912.0f)), vdupq_n_f32(12582912.0f));
#endif
    *near = vorrq_u32(*near, vcgeq_f32(vabdq_f32(p, n), q->near_tie));
    return vaddq_s32(vcvtq_s32_f32(n), q->zp);
}

/* 16 floats from x to bytes: by the reciprocal, or by division when a lane is near a tie
 * (one test per 16: moving a mask to a core register stalls in-order cores). */
N_INLINE int8x16_t q8in_quantize16(const q8in_quantizer *q, const float *x) {
    int32x4_t v0, v1, v2, v3;
    int16x8_t low, high;
    uint32x4_t near = vdupq_n_u32(0);
    if (q->use_reciprocal) {
        v0 = quantize4_by_reciprocal(q, x, &near);
        v1 = quantize4_by_reciprocal(q, x + 4, &near);
        v2 = quantize4_by_reciprocal(q, x + 8, &near);
        v3 = quantize4_by_reciprocal(q, x + 12, &near);
    }
    if (!q->use_reciprocal || any_lane(near)) {
        v0 = quantize4_divided(q, x);
        v1 = quantize4_divided(q, x + 4);
        v2 = quantize4_divided(q, x + 8);
        v3 = quantize4_divided(q, x + 12);
    }
    low = vcombine_s16(vqmovn_s32(v0), vqmovn_s32(v1));
    high = vcombine_s16(vqmovn_s32(v2), vqmovn_s32(v3));
    return vcombine_s8(vqmovn_s16(low), vqmovn_s16(high));
}

N_INLINE int8x16_t q8in_load16(const uint8_t *x) { return vreinterpretq_s8_u8(vld1q_u8(x)); }
N_INLINE void q8in_store16(int8_t *out, int8x16_t v) { vst1q_s8(out, v); }
N_INLINE int8x16_t q8in_splat(uint8_t byte) { return vreinterpretq_s8_u8(vdupq_n_u8(byte)); }
N_INLINE int8x16_t q8in_xor(int8x16_t a, int8x16_t b) { return veorq_s8(a, b); }

N_INLINE void q8in_store_interleaved(int8_t *out, int8x16_t c0, int8x16_t c1, int8x16_t c2) {
    int8x16x3_t v;
    v.val[0] = c0;
    v.val[1] = c1;
    v.val[2] = c2;
    vst3q_s8(out, v);
}

#define Q8IN_FN static
#define Q8IN_OPS mnv3_q8_input_neon
#include "kernels/simd_q8_input.h"

#else
typedef int mnv3_arm_neon_q8_input_unused;
#endif
