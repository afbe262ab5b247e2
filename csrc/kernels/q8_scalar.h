/* Scalar steps of the int8 layers, shared by the reference rows and the portable parts of
 * the drivers, so that both compute each byte with the same expression. Sums wrap modulo
 * 2^32 as the SIMD adds do: for every accumulator TFLite's int32 arithmetic can hold, that
 * is the exact value, and out-of-range test inputs stay defined behaviour. */
#ifndef MNV3_Q8_SCALAR_H
#define MNV3_Q8_SCALAR_H

#include "kernels.h"

static inline int32_t mnv3_q8_add_wrap(int32_t a, int32_t b) {
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

/* Requantized, clamped and (when a LUT is set) mapped output byte of channel o. */
static inline int8_t mnv3_q8_out_byte(const mnv3_q8_requant *r, uint32_t o, int32_t acc) {
    int32_t v = mnv3_q8_add_wrap(mnv3_q8_requantize(acc, r->qmul[o]), r->out_zp);
    v = mnv3_q8_clamp(v, r->act_lo, r->act_hi);
    if (r->lut) v = r->lut[(uint8_t)(v + 128)];
    return (int8_t)v;
}

/* The SE-gated input byte of channel k. */
static inline int8_t mnv3_q8_gated_byte(const mnv3_q8_gate *g, int32_t in_zp, int8_t x,
                                        uint32_t k) {
    const int32_t prod = ((int32_t)x - g->x_zp) * ((int32_t)g->gate[k] - g->gate_zp);
    const int32_t v = mnv3_q8_add_wrap(mnv3_q8_requantize(prod, g->qmul), in_zp);
    return (int8_t)mnv3_q8_clamp(v, g->act_lo, g->act_hi);
}

/* TFLite's quantized ADD of two bytes. */
static inline int8_t mnv3_q8_add_bytes(const mnv3_q8_add *p, int8_t a, int8_t b) {
    const int32_t sa = (int32_t)((uint32_t)((int32_t)a - p->a_zp) << p->left_shift);
    const int32_t sb = (int32_t)((uint32_t)((int32_t)b - p->b_zp) << p->left_shift);
    const int32_t sum =
        mnv3_q8_add_wrap(mnv3_q8_requantize(sa, p->a_mul), mnv3_q8_requantize(sb, p->b_mul));
    const int32_t v = mnv3_q8_add_wrap(mnv3_q8_requantize(sum, p->out_mul), p->out_zp);
    return (int8_t)mnv3_q8_clamp(v, p->act_lo, p->act_hi);
}

#endif
