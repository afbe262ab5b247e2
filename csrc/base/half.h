/* IEEE-754 binary16 ("half", fp16) in portable C: the scalar reference reads fp16 weights
 * through these, the loader checks them, the writer and the weight conversion produce
 * them. The SIMD sets convert with their own instructions (F16C, FCVTL, VCVT); the tests
 * hold those to these functions over all 65536 encodings. */
#ifndef MNV3_HALF_H
#define MNV3_HALF_H

#include <stdint.h>
#include <string.h>

/* Largest finite fp16, 0x7BFF. */
#define MNV3_F16_MAX 65504.0f

/* Every fp16 value is exactly a float, subnormals included. */
static inline float mnv3_f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (uint32_t)(h >> 10) & 0x1Fu, mant = h & 0x3FFu;
    uint32_t bits;
    float f;
    if (exp == 0) {
        /* zero or subnormal: mant x 2^-24, a product of small integers and a power of two
         * that float holds exactly */
        f = (float)mant * (1.0f / 16777216.0f);
        return sign ? -f : f;
    }
    if (exp == 0x1F)
        bits = sign | 0x7F800000u | mant << 13; /* infinity, NaN (payload kept) */
    else
        bits = sign | (exp + (127 - 15)) << 23 | mant << 13;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Rounds to nearest, ties to even, in integer arithmetic (independent of the FPU's rounding
 * mode). Magnitudes from 65520 up become infinity; NaN stays a quiet NaN. */
static inline uint16_t mnv3_f32_to_f16(float f) {
    uint32_t x, a;
    uint16_t sign;
    memcpy(&x, &f, sizeof x);
    sign = (uint16_t)((x >> 16) & 0x8000u);
    a = x & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return (uint16_t)(sign | 0x7E00u | ((a >> 13) & 0x3FFu));
    if (a >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u); /* >= 65520: rounds past max */
    if (a >= 0x38800000u) {                                   /* normal: >= 2^-14 */
        const uint32_t odd = (a >> 13) & 1u;
        a += ((uint32_t)(15 - 127) << 23) + 0xFFFu + odd;
        return (uint16_t)(sign | (a >> 13));
    }
    if (a < 0x33000000u) return sign; /* below 2^-25: rounds to zero */
    {
        /* subnormal: the significand in units of 2^-24, rounded; a carry into bit 10 gives
         * the smallest normal's encoding, as it should */
        const uint32_t e = a >> 23, m = (a & 0x7FFFFFu) | 0x800000u, shift = 126u - e;
        const uint32_t half = 1u << (shift - 1), rem = m & ((1u << shift) - 1u);
        uint32_t q = m >> shift;
        if (rem > half || (rem == half && (q & 1u))) ++q;
        return (uint16_t)(sign | q);
    }
}

/* Non-zero for an infinity or NaN. */
static inline int mnv3_f16_is_finite(uint16_t h) { return (h & 0x7C00u) != 0x7C00u; }

#endif
