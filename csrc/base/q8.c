/* Network-level integer arithmetic of quantized models: multipliers derived from float32
 * scales exactly as each TFLite op's Prepare derives them, the HARD_SWISH table from its
 * reference algorithm, and the pool, ADD and MUL ops on whole vectors. The Python mirror
 * (tools/mnv3quant.py) computes the same bytes and is tested against TFLite itself. */
#include "q8.h"

#include "mnv3.h"

double mnv3_q8_conv_real_multiplier(float in_scale, float w_scale, float out_scale,
                                   mnv3_q8_mult_mode mode) {
    if (mode == MNV3_Q8_MULT_FLOAT_PRODUCT) {
        /* The product is rounded to float32 before the division, as in TFLite's
         * GetQuantizedConvolutionMultipler; volatile keeps x87 or FMA contraction from
         * skipping that rounding. */
        volatile float product = in_scale * w_scale;
        return (double)product / (double)out_scale;
    }
    return (double)in_scale * (double)w_scale / (double)out_scale;
}

int mnv3_q8_bias_scale_ok(float in_scale, float w_scale, float bias_scale, float out_scale) {
    const double diff = fabs((double)in_scale * (double)w_scale - (double)bias_scale);
    return diff / (double)out_scale <= 0.02;
}

static int32_t quantize_one(float v, float scale, int32_t zp) {
    volatile float ratio = v / scale;
    return zp + (int32_t)roundf(ratio);
}

void mnv3_q8_activation_range(int act, float scale, int32_t zp, int32_t *lo, int32_t *hi) {
    *lo = -128;
    *hi = 127;
    if (act == MNV3_ACT_RELU || act == MNV3_ACT_RELU6) {
        const int32_t zero = quantize_one(0.0f, scale, zp);
        if (zero > *lo) *lo = zero;
    }
    if (act == MNV3_ACT_RELU6) {
        const int32_t six = quantize_one(6.0f, scale, zp);
        if (six < *hi) *hi = six;
    }
}

/* ---- HARD_SWISH: TFLite's int16 fixed-point reference ---------------------------------- */

static int16_t sat16(int32_t v) {
    return (int16_t)(v < -32768 ? -32768 : (v > 32767 ? 32767 : v));
}

/* gemmlowp SaturatingRoundingDoublingHighMul on int16 */
static int16_t rdhm16(int16_t a, int16_t b) {
    const int32_t ab = (int32_t)a * (int32_t)b;
    const int32_t nudge = ab >= 0 ? (1 << 14) : (1 - (1 << 14));
    if (a == INT16_MIN && b == INT16_MIN) return INT16_MAX;
    return (int16_t)((ab + nudge) / (1 << 15));
}

/* The same, truncating toward zero instead of rounding (TFLite's SaturatingDoublingHighMul). */
static int16_t dhm16(int16_t a, int16_t b) {
    const int32_t ab = (int32_t)a * (int32_t)b;
    if (a == INT16_MIN && b == INT16_MIN) return INT16_MAX;
    return (int16_t)(ab / (1 << 15));
}

static int16_t rshift16(int16_t x, int exponent) {
    return (int16_t)mnv3_q8_rounding_shift(x, exponent);
}

static int16_t downscale16(int32_t m) {
    if (m >= INT32_MAX - (1 << 15)) return INT16_MAX;
    return (int16_t)((m + (1 << 15)) >> 16);
}

int mnv3_q8_hard_swish_table(float in_scale, int32_t in_zp, float out_scale, int32_t out_zp,
                            int8_t table[256]) {
    /* Prepare computes the two ratios in float32. */
    volatile float hires = (1.0f / 128.0f) * in_scale;
    volatile float out_ratio = hires / out_scale;
    volatile float relu_ratio = hires / (3.0f / 32768.0f);
    mnv3_q8_mul om, rm;
    int16_t om16, rm16;
    int b;
    if (mnv3_q8_mul_from_real(out_ratio, &om) != 0 || mnv3_q8_mul_from_real(relu_ratio, &rm) != 0)
        return -1;
    if (om.shift > 0) return -1;
    om16 = downscale16(om.multiplier);
    rm16 = downscale16(rm.multiplier);
    for (b = -128; b < 128; ++b) {
        const int16_t hires_v = (int16_t)((b - in_zp) * 128);
        const int16_t pre_out = rdhm16(hires_v, om16);
        int16_t relu = hires_v;
        int32_t out;
        if (rm.shift > 0) relu = sat16((int32_t)relu * (1 << (rm.shift - 1)));
        relu = rdhm16(relu, rm16);
        if (rm.shift > 0) relu = sat16((int32_t)relu * 2);
        if (rm.shift < 0) relu = rshift16(relu, -rm.shift);
        relu = (int16_t)(((int32_t)relu + (1 << 15)) >> 1);
        out = rshift16(dhm16(relu, pre_out), -om.shift) + out_zp;
        table[b + 128] = (int8_t)mnv3_q8_clamp(out, -128, 127);
    }
    return 0;
}

/* ---- ADD, MUL ---------------------------------------------------------------------------- */

int mnv3_q8_add_prepare(float a_scale, int32_t a_zp, float b_scale, int32_t b_zp,
                       float out_scale, int32_t out_zp, mnv3_q8_addop *p) {
    const double twice_max = 2.0 * (a_scale > b_scale ? (double)a_scale : (double)b_scale);
    p->a_zp = a_zp;
    p->b_zp = b_zp;
    p->out_zp = out_zp;
    p->lo = -128;
    p->hi = 127;
    if (mnv3_q8_mul_from_real((double)a_scale / twice_max, &p->a) != 0) return -1;
    if (mnv3_q8_mul_from_real((double)b_scale / twice_max, &p->b) != 0) return -1;
    return mnv3_q8_mul_from_real(twice_max / ((double)(1 << 20) * (double)out_scale), &p->out);
}

void mnv3_q8_add_rows(const mnv3_q8_addop *p, const int8_t *a, const int8_t *b, int8_t *out,
                     size_t n) {
    size_t i;
    for (i = 0; i < n; ++i) out[i] = mnv3_q8_addop_apply(p, a[i], b[i]);
}

int mnv3_q8_mul_prepare(float a_scale, int32_t a_zp, float b_scale, int32_t b_zp,
                       float out_scale, int32_t out_zp, mnv3_q8_mulop *p) {
    p->a_zp = a_zp;
    p->b_zp = b_zp;
    p->out_zp = out_zp;
    p->lo = -128;
    p->hi = 127;
    return mnv3_q8_mul_from_real((double)a_scale * (double)b_scale / (double)out_scale, &p->m);
}

void mnv3_q8_gate_rows(const mnv3_q8_mulop *p, const int8_t *x, size_t pixels,
                      uint32_t channels, const int8_t *gate, int8_t *out) {
    size_t i;
    uint32_t k;
    for (i = 0; i < pixels; ++i)
        for (k = 0; k < channels; ++k)
            out[i * channels + k] = mnv3_q8_mulop_apply(p, x[i * channels + k], gate[k]);
}

/* ---- Pools ------------------------------------------------------------------------------- */

int mnv3_q8_pool_prepare(mnv3_q8_pool_mode mode, uint32_t count, float in_scale, int32_t in_zp,
                        float out_scale, int32_t out_zp, mnv3_q8_pool *p) {
    p->mode = mode;
    p->count = count;
    p->in_zp = in_zp;
    p->out_zp = out_zp;
    p->m.multiplier = 0;
    p->m.shift = 0;
    if (count == 0) return -1;
    if (mode == MNV3_Q8_POOL_MEAN) {
        /* MEAN folds 1/count into its multiplier in integers: q * 2^k / count with
         * k = min(floor(log2 count), 32, 31 + shift), and lowers the shift by k. */
        int k = 0;
        mnv3_q8_mul m;
        if (mnv3_q8_mul_from_real((double)in_scale / (double)out_scale, &m) != 0) return -1;
        while (k < 31 && ((uint64_t)1 << (k + 1)) <= count) ++k;
        if (k > 31 + m.shift) k = 31 + m.shift;
        if (k < 0) k = 0;
        p->m.multiplier = (int32_t)(((int64_t)m.multiplier << k) / (int64_t)count);
        p->m.shift = m.shift - k;
    }
    return 0;
}

void mnv3_q8_pool_sums(const mnv3_q8_pool *p, const int32_t *sums, uint32_t channels,
                      int8_t *out) {
    const int32_t n = (int32_t)p->count, half = n / 2;
    uint32_t c;
    for (c = 0; c < channels; ++c) {
        const int32_t s = sums[c];
        int32_t v;
        switch (p->mode) {
        case MNV3_Q8_POOL_AVG_HALF_UP:
            /* floor((s + n/2) / n): the uint8 graph's rounding of the unshifted sum */
            v = s + half >= 0 ? (s + half) / n : -((-(s + half) + n - 1) / n);
            break;
        case MNV3_Q8_POOL_AVG_HALF_AWAY:
            v = s > 0 ? (s + half) / n : (s - half) / n;
            break;
        case MNV3_Q8_POOL_MEAN:
        default:
            v = mnv3_q8_requantize(s - n * p->in_zp, p->m) + p->out_zp;
            break;
        }
        out[c] = (int8_t)mnv3_q8_clamp(v, -128, 127);
    }
}

/* ---- QUANTIZE / DEQUANTIZE --------------------------------------------------------------- */

void mnv3_q8_quantize(const float *x, size_t n, float scale, int32_t zp, int8_t *out) {
    size_t i;
    for (i = 0; i < n; ++i) out[i] = mnv3_q8_quantize_one(x[i], scale, zp);
}

void mnv3_q8_dequantize(const int8_t *x, size_t n, float scale, int32_t zp, float *out) {
    size_t i;
    for (i = 0; i < n; ++i) out[i] = (float)((double)scale * (double)(x[i] - zp));
}
