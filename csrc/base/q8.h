/* Integer arithmetic of quantized networks, exactly as TensorFlow Lite's reference kernels
 * compute it: the fixed-point multiplier a real scale becomes, and the rounding
 * multiply-and-shift every requantization goes through. Kernels of every set use these
 * definitions (or SIMD code proven equal to them), so a quantized network gives the same
 * bytes on every CPU.
 *
 * Conventions: activations are int8 with a zero point; a uint8 tensor is the int8 tensor
 * whose bytes are x - 128 and whose zero point is zp - 128, which is exact. */
#ifndef MNV3_Q8_ARITH_H
#define MNV3_Q8_ARITH_H

#include <math.h>
#include <stdint.h>

/* A real multiplier m as q * 2^shift with q in [2^30, 2^31) (or 0): TFLite's
 * QuantizeMultiplier, computed in double precision from the same double it is given. */
typedef struct mnv3_q8_mul {
    int32_t multiplier;
    int32_t shift;           /* > 0 shifts left before the multiply, < 0 right after it */
} mnv3_q8_mul;

/* Returns 0 on success, -1 when m is not finite, negative, or needs a left shift beyond
 * 31 (the caller reports that as an out-of-range multiplier). Multipliers below 2^-31
 * become 0, as in TFLite. */
static inline int mnv3_q8_mul_from_real(double m, mnv3_q8_mul *out) {
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

/* a * b * 2 / 2^32 rounded to nearest, halves toward +infinity (-0.5 becomes 0),
 * saturating the single overflowing case: gemmlowp's SaturatingRoundingDoublingHighMul. */
static inline int32_t mnv3_q8_doubling_high_mul(int32_t a, int32_t b) {
    int64_t ab, nudge;
    if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
    ab = (int64_t)a * (int64_t)b;
    nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    /* C division truncates toward zero, as TFLite's does. */
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* x / 2^exponent rounded to nearest, ties away from zero (gemmlowp's RoundingDivideByPOT);
 * exponent in [0, 31]. */
static inline int32_t mnv3_q8_rounding_shift(int32_t x, int exponent) {
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    /* Arithmetic right shift of a negative value: implementation-defined in C99, and an
     * arithmetic shift on every compiler this library supports. */
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* TFLite's MultiplyByQuantizedMultiplier (the double-rounding form its reference kernels
 * use): the left shift wraps as TFLite's int32 multiply does. */
static inline int32_t mnv3_q8_requantize(int32_t x, mnv3_q8_mul m) {
    const int left = m.shift > 0 ? m.shift : 0;
    const int right = m.shift > 0 ? 0 : -m.shift;
    const int32_t shifted = (int32_t)((uint32_t)x << left);
    return mnv3_q8_rounding_shift(mnv3_q8_doubling_high_mul(shifted, m.multiplier), right);
}

static inline int32_t mnv3_q8_clamp(int32_t v, int32_t lo, int32_t hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

/* ------------------------------------------------------------------------------------ */
/* Network-level arithmetic (quant.c): how each op's Prepare derives its multipliers from */
/* the float32 scales, and the ops the network code runs on whole vectors.               */
/* ------------------------------------------------------------------------------------ */

#include <stddef.h>

/* How a conv's real multiplier in_scale * w_scale / out_scale is formed: TFLite's
 * per-channel path multiplies in double; its per-tensor (uint8) path multiplies the two
 * float32 scales in float32 first. The fixed-point results differ in their low bits. */
typedef enum mnv3_q8_mult_mode {
    MNV3_Q8_MULT_DOUBLE = 0,
    MNV3_Q8_MULT_FLOAT_PRODUCT = 1
} mnv3_q8_mult_mode;
#define MNV3_Q8_MULT_MODE_COUNT 2

/* How a channel sum of `count` int8 bytes becomes one byte (global pool, SE squeeze). */
typedef enum mnv3_q8_pool_mode {
    MNV3_Q8_POOL_AVG_HALF_UP = 0,    /* AVERAGE_POOL_2D of a uint8 graph: (sum_u8 + n/2) / n */
    MNV3_Q8_POOL_AVG_HALF_AWAY = 1,  /* AVERAGE_POOL_2D of an int8 graph */
    MNV3_Q8_POOL_MEAN = 2            /* MEAN over H, W: requantized with in/out scale */
} mnv3_q8_pool_mode;
#define MNV3_Q8_POOL_MODE_COUNT 3

double mnv3_q8_conv_real_multiplier(float in_scale, float w_scale, float out_scale,
                                   mnv3_q8_mult_mode mode);
/* TFLite's check that an int32 bias is on the accumulator's scale:
 * |in_scale * w_scale - bias_scale| / out_scale <= 0.02. */
int mnv3_q8_bias_scale_ok(float in_scale, float w_scale, float bias_scale, float out_scale);
/* Quantized range of a fused ReLU / ReLU6 on an int8 output (act as mnv3_activation; NONE
 * gives [-128, 127]). */
void mnv3_q8_activation_range(int act, float scale, int32_t zero_point, int32_t *lo,
                             int32_t *hi);

/* HARD_SWISH of every input byte (entry b + 128 for byte b) as TFLite's reference kernel
 * computes it. Returns -1 when TFLite would refuse the scales (output multiplier >= 1). */
int mnv3_q8_hard_swish_table(float in_scale, int32_t in_zp, float out_scale, int32_t out_zp,
                            int8_t table[256]);

/* Residual ADD (TFLite's 8-bit ADD, left shift 20). */
typedef struct mnv3_q8_addop {
    mnv3_q8_mul a, b, out;
    int32_t a_zp, b_zp, out_zp, lo, hi;
} mnv3_q8_addop;
int mnv3_q8_add_prepare(float a_scale, int32_t a_zp, float b_scale, int32_t b_zp,
                       float out_scale, int32_t out_zp, mnv3_q8_addop *p);
static inline int8_t mnv3_q8_addop_apply(const mnv3_q8_addop *p, int32_t a, int32_t b) {
    const int32_t a2 = mnv3_q8_requantize((int32_t)((uint32_t)(a - p->a_zp) << 20), p->a);
    const int32_t b2 = mnv3_q8_requantize((int32_t)((uint32_t)(b - p->b_zp) << 20), p->b);
    return (int8_t)mnv3_q8_clamp(mnv3_q8_requantize(a2 + b2, p->out) + p->out_zp, p->lo, p->hi);
}
void mnv3_q8_add_rows(const mnv3_q8_addop *p, const int8_t *a, const int8_t *b, int8_t *out,
                     size_t n);

/* MUL of two int8 tensors (the SE gate, or a constant). */
typedef struct mnv3_q8_mulop {
    mnv3_q8_mul m;
    int32_t a_zp, b_zp, out_zp, lo, hi;
} mnv3_q8_mulop;
int mnv3_q8_mul_prepare(float a_scale, int32_t a_zp, float b_scale, int32_t b_zp,
                       float out_scale, int32_t out_zp, mnv3_q8_mulop *p);
static inline int8_t mnv3_q8_mulop_apply(const mnv3_q8_mulop *p, int32_t a, int32_t b) {
    return (int8_t)mnv3_q8_clamp(mnv3_q8_requantize((a - p->a_zp) * (b - p->b_zp), p->m) +
                                p->out_zp, p->lo, p->hi);
}
/* out[p][k] = mul(x[p][k], gate[k]) for `pixels` rows of `channels`. */
void mnv3_q8_gate_rows(const mnv3_q8_mulop *p, const int8_t *x, size_t pixels,
                      uint32_t channels, const int8_t *gate, int8_t *out);

/* Global pool of channel sums: sums[c] is the exact sum of `count` int8 bytes. */
typedef struct mnv3_q8_pool {
    mnv3_q8_pool_mode mode;
    uint32_t count;
    mnv3_q8_mul m;                 /* MEAN: in/out scale with 1/count folded in */
    int32_t in_zp, out_zp;
} mnv3_q8_pool;
int mnv3_q8_pool_prepare(mnv3_q8_pool_mode mode, uint32_t count, float in_scale, int32_t in_zp,
                        float out_scale, int32_t out_zp, mnv3_q8_pool *p);
void mnv3_q8_pool_sums(const mnv3_q8_pool *p, const int32_t *sums, uint32_t channels,
                      int8_t *out);

/* TFLite QUANTIZE of one float: round half away from zero of x / scale, in float. The
 * rounding is roundf's, written out so that a loop over an image needs no library call:
 * below 2^23 the fraction r - trunc(r) is exact, and above it every float is an integer.
 * NaN and values beyond int32 saturate instead of reaching an undefined cast. */
static inline int8_t mnv3_q8_quantize_one(float x, float scale, int32_t zp) {
    const float r = x / scale;
    int32_t v;
    if (!(r > -1e9f)) return -128;
    if (r > 1e9f) return 127;
    v = (int32_t)r;
    {
        const float frac = r - (float)v;
        v += (frac >= 0.5f) - (frac <= -0.5f);
    }
    v += zp;
    return (int8_t)mnv3_q8_clamp(v, -128, 127);
}

/* A SIMD QUANTIZE may multiply by fl(1 / scale) instead of dividing when that reciprocal
 * is a normal float (the NEON one does: division is slow there). Each of the reciprocal, the product and the quotient is within one
 * ulp, in any rounding mode, so wherever |x / scale| < 1024 the product and the quotient
 * differ by less than 1024 * 3 * 2^-23 < MNV3_Q8IN_TIE_MARGIN: a product farther than the
 * margin from every tie (k + 0.5) rounds to the quotient's integer, and the vectors divide
 * only when some lane is that close. Beyond 1024 both saturate. */
#define MNV3_Q8IN_TIE_MARGIN (1.0f / 2048.0f)
static inline int mnv3_q8in_reciprocal_exact(float scale) {
    return scale >= 1e-30f && scale <= 1e30f; /* NaN fails both */
}

/* TFLite QUANTIZE of floats (mnv3_q8_quantize_one on each) and DEQUANTIZE. */
void mnv3_q8_quantize(const float *x, size_t n, float scale, int32_t zp, int8_t *out);
void mnv3_q8_dequantize(const int8_t *x, size_t n, float scale, int32_t zp, float *out);

#endif
