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
 * below 2^23, a no-op above). SQXTN narrows with the final clamp to [-128, 127]. */
#include "kernels/kernels.h"

#if defined(MNV3_HAVE_NEON_KERNELS)
#include <arm_neon.h>

#include "kernels/q8_impl.h"

#define N_INLINE static inline __attribute__((always_inline))

typedef struct quantizer {
    float scale;
    float32x4_t divisor, lo, hi, half, minus_half;
    int32x4_t zp;
} quantizer;

static quantizer quantizer_of(float scale, int32_t zp) {
    quantizer q;
    q.scale = scale;
    q.divisor = vdupq_n_f32(scale);
    q.lo = vdupq_n_f32(-1000.0f);
    q.hi = vdupq_n_f32(1000.0f);
    q.half = vdupq_n_f32(0.5f);
    q.minus_half = vdupq_n_f32(-0.5f);
    q.zp = vdupq_n_s32(zp);
    return q;
}

/* 4 floats from x to their quantized values as int32 (before the final clamp). */
N_INLINE int32x4_t quantize4(const quantizer *q, const float *x) {
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
    (void)q->half;
    (void)q->minus_half;
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

N_INLINE int8x16_t quantize16(const quantizer *q, const float *x) {
    const int16x8_t low =
        vcombine_s16(vqmovn_s32(quantize4(q, x)), vqmovn_s32(quantize4(q, x + 4)));
    const int16x8_t high =
        vcombine_s16(vqmovn_s32(quantize4(q, x + 8)), vqmovn_s32(quantize4(q, x + 12)));
    return vcombine_s8(vqmovn_s16(low), vqmovn_s16(high));
}

static void quantize__neon(const float *x, size_t n, float scale, int32_t zp, int8_t *out) {
    const quantizer q = quantizer_of(scale, zp);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) vst1q_s8(out + i, quantize16(&q, x + i));
    mnv3_q8_quantize(x + i, n - i, scale, zp, out + i);
}

static void quantize_planes__neon(const float *x, size_t plane, size_t pixels, float scale,
                                  int32_t zp, int8_t *out) {
    const quantizer q = quantizer_of(scale, zp);
    size_t p = 0;
    for (; p + 16 <= pixels; p += 16) {
        int8x16x3_t v;
        v.val[0] = quantize16(&q, x + p);
        v.val[1] = quantize16(&q, x + plane + p);
        v.val[2] = quantize16(&q, x + 2 * plane + p);
        vst3q_s8(out + 3 * p, v);
    }
    mnv3_q8_quantize_planes_portable(x + p, plane, pixels - p, scale, zp, out + 3 * p);
}

static void from_uint8__neon(const uint8_t *x, size_t n, int8_t *out) {
    const uint8x16_t flip = vdupq_n_u8(0x80);
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        vst1q_s8(out + i, vreinterpretq_s8_u8(veorq_u8(vld1q_u8(x + i), flip)));
    mnv3_q8_from_uint8_portable(x + i, n - i, out + i);
}

static void interleave_planes__neon(const uint8_t *x, size_t plane, size_t pixels, uint8_t flip,
                                    int8_t *out) {
    const uint8x16_t f = vdupq_n_u8(flip);
    size_t p = 0;
    for (; p + 16 <= pixels; p += 16) {
        int8x16x3_t v;
        v.val[0] = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(x + p), f));
        v.val[1] = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(x + plane + p), f));
        v.val[2] = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(x + 2 * plane + p), f));
        vst3q_s8(out + 3 * p, v);
    }
    mnv3_q8_interleave_planes_portable(x + p, plane, pixels - p, flip, out + 3 * p);
}

const mnv3_q8_input_ops mnv3_q8_input_neon = {
    quantize__neon, quantize_planes__neon, from_uint8__neon, interleave_planes__neon,
};

#else
typedef int mnv3_arm_neon_q8_input_unused;
#endif
