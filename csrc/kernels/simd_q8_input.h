/* The int8 input conversions (kernels.h, mnv3_q8_input_ops) written once over 16-byte
 * vectors, for a per-ISA file to include inside its guard; the elements after the last
 * whole vector go through the portable loops, which define the results. The file defines
 * before including this:
 *
 *   Q8IN_FN            storage and target attributes of a function ("static", or with the
 *                      target ISA)
 *   Q8IN_OPS           the name of the mnv3_q8_input_ops to define
 *   q8in_bytes         a vector of 16 bytes
 *   q8in_quantizer     what QUANTIZE needs of scale and zp in vectors, made by
 *                      q8in_quantizer_of(scale, zp)
 *   q8in_quantize16(q, x)          mnv3_q8_quantize_one of x[0, 16), in order
 *   q8in_load16(x), q8in_store16(out, v)
 *   q8in_splat(byte), q8in_xor(a, b)
 *   q8in_store_interleaved(out, c0, c1, c2)   out[3k + c] = byte k of channel c, k < 16 */
#ifndef MNV3_SIMD_Q8_INPUT_H
#define MNV3_SIMD_Q8_INPUT_H

#include "base/checked.h"

Q8IN_FN void q8in_quantize(const float *x, size_t n, float scale, int32_t zp, int8_t *out) {
    const q8in_quantizer q = q8in_quantizer_of(scale, zp);
    size_t i = 0;
    /* the vectors' early clamp of the quotient relies on it */
    MNV3_ASSERT(zp >= -128 && zp <= 127);
    for (; i + 16 <= n; i += 16) q8in_store16(out + i, q8in_quantize16(&q, x + i));
    mnv3_q8_quantize(x + i, n - i, scale, zp, out + i);
}

Q8IN_FN void q8in_quantize_planes(const float *x, size_t plane, size_t pixels, float scale,
                                  int32_t zp, int8_t *out) {
    const q8in_quantizer q = q8in_quantizer_of(scale, zp);
    size_t p = 0;
    MNV3_ASSERT(zp >= -128 && zp <= 127);
    for (; p + 16 <= pixels; p += 16)
        q8in_store_interleaved(out + 3 * p, q8in_quantize16(&q, x + p),
                               q8in_quantize16(&q, x + plane + p),
                               q8in_quantize16(&q, x + 2 * plane + p));
    mnv3_q8_quantize_planes_portable(x + p, plane, pixels - p, scale, zp, out + 3 * p);
}

Q8IN_FN void q8in_from_uint8(const uint8_t *x, size_t n, int8_t *out) {
    const q8in_bytes flip = q8in_splat(0x80u);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) q8in_store16(out + i, q8in_xor(q8in_load16(x + i), flip));
    mnv3_q8_from_uint8_portable(x + i, n - i, out + i);
}

Q8IN_FN void q8in_interleave_planes(const uint8_t *x, size_t plane, size_t pixels,
                                    uint8_t flip, int8_t *out) {
    const q8in_bytes f = q8in_splat(flip);
    size_t p = 0;
    for (; p + 16 <= pixels; p += 16)
        q8in_store_interleaved(out + 3 * p, q8in_xor(q8in_load16(x + p), f),
                               q8in_xor(q8in_load16(x + plane + p), f),
                               q8in_xor(q8in_load16(x + 2 * plane + p), f));
    mnv3_q8_interleave_planes_portable(x + p, plane, pixels - p, flip, out + 3 * p);
}

const mnv3_q8_input_ops Q8IN_OPS = {
    q8in_quantize, q8in_quantize_planes, q8in_from_uint8, q8in_interleave_planes,
};

#endif
