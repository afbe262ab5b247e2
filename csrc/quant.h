/* Integer arithmetic of quantized networks, exactly as TensorFlow Lite's reference kernels
 * compute it: the fixed-point multiplier a real scale becomes, and the rounding
 * multiply-and-shift every requantization goes through. Kernels of every set use these
 * definitions (or SIMD code proven equal to them), so a quantized network gives the same
 * bytes on every CPU.
 *
 * Conventions: activations are int8 with a zero point; a uint8 tensor is the int8 tensor
 * whose bytes are x - 128 and whose zero point is zp - 128, which is exact. */
#ifndef MNV3_QUANT_H
#define MNV3_QUANT_H

#include <math.h>
#include <stdint.h>

/* A real multiplier m as q * 2^shift with q in [2^30, 2^31) (or 0): TFLite's
 * QuantizeMultiplier, computed in double precision from the same double it is given. */
typedef struct mnv3_qmul {
    int32_t multiplier;
    int32_t shift;           /* > 0 shifts left before the multiply, < 0 right after it */
} mnv3_qmul;

/* Returns 0 on success, -1 when m is not finite, negative, or needs a left shift beyond
 * 31 (the caller reports that as an out-of-range multiplier). Multipliers below 2^-31
 * become 0, as in TFLite. */
static inline int mnv3_qmul_from_real(double m, mnv3_qmul *out) {
    int exponent = 0;
    double q;
    int64_t fixed;
    out->multiplier = 0;
    out->shift = 0;
    if (!(m >= 0.0) || !isfinite(m)) return -1;
    if (m == 0.0) return 0;
    q = frexp(m, &exponent);
    fixed = (int64_t)round(q * 2147483648.0);
    if (fixed == ((int64_t)1 << 31)) {
        fixed /= 2;
        ++exponent;
    }
    if (exponent < -31) return 0;
    if (exponent > 31) return -1;
    out->multiplier = (int32_t)fixed;
    out->shift = exponent;
    return 0;
}

/* (a * b * 2 + 2^31) >> 32 with round-half-away-from-zero, saturating the single
 * overflowing case: gemmlowp's SaturatingRoundingDoublingHighMul. */
static inline int32_t mnv3_q_doubling_high_mul(int32_t a, int32_t b) {
    int64_t ab, nudge;
    if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
    ab = (int64_t)a * (int64_t)b;
    nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    /* C division truncates toward zero, as TFLite's does. */
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* x / 2^exponent rounded to nearest, ties away from zero (gemmlowp's RoundingDivideByPOT);
 * exponent in [0, 31]. */
static inline int32_t mnv3_q_rounding_shift(int32_t x, int exponent) {
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    /* Arithmetic right shift of a negative value: implementation-defined in C99, and an
     * arithmetic shift on every compiler this library supports. */
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* TFLite's MultiplyByQuantizedMultiplier (the double-rounding form its reference kernels
 * use): the left shift wraps as TFLite's int32 multiply does. */
static inline int32_t mnv3_q_requantize(int32_t x, mnv3_qmul m) {
    const int left = m.shift > 0 ? m.shift : 0;
    const int right = m.shift > 0 ? 0 : -m.shift;
    const int32_t shifted = (int32_t)((uint32_t)x << left);
    return mnv3_q_rounding_shift(mnv3_q_doubling_high_mul(shifted, m.multiplier), right);
}

static inline int32_t mnv3_q_clamp(int32_t v, int32_t lo, int32_t hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

#endif
