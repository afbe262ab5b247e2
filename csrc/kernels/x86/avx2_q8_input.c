/* AVX2 int8 input conversions: an image to the stem's NHWC bytes (kernels.h,
 * mnv3_q8_input_ops), byte for byte what the portable loops give.
 *
 * QUANTIZE is mnv3_q8_quantize_one on 8 lanes: the same IEEE division (vdivps rounds as
 * divss does, under the same MXCSR), then round half away from zero as trunc(r) plus the
 * sign of a fraction of at least one half, which is exact below 2^23 and a no-op above it.
 * Saturation comes first: r is clamped to [-1000, 1000], NaN going to -1000 (vmaxps
 * returns its second operand when either is NaN). Since |zp| <= 128, any |r| >= 256
 * saturates either way, so the clamp changes no result and keeps the conversion to int32
 * in range; vpackssdw and vpacksswb then saturate to [-128, 127] exactly as the clamp. */
#include "kernels/kernels.h"

#if defined(MNV3_HAVE_X86_KERNELS)
#include <immintrin.h>

#include "kernels/q8_impl.h"

#define AVX2_ATTR __attribute__((target("avx2")))

typedef struct quantizer {
    __m256 scale, lo, hi, half, minus_half;
    __m256i zp;
} quantizer;

static AVX2_ATTR quantizer quantizer_of(float scale, int32_t zp) {
    quantizer q;
    q.scale = _mm256_set1_ps(scale);
    q.lo = _mm256_set1_ps(-1000.0f);
    q.hi = _mm256_set1_ps(1000.0f);
    q.half = _mm256_set1_ps(0.5f);
    q.minus_half = _mm256_set1_ps(-0.5f);
    q.zp = _mm256_set1_epi32(zp);
    return q;
}

/* 8 floats from x to their quantized values as int32 (before the final clamp). */
static AVX2_ATTR __m256i quantize8(const quantizer *q, const float *x) {
    const __m256 quotient = _mm256_div_ps(_mm256_loadu_ps(x), q->scale);
    const __m256 r = _mm256_min_ps(_mm256_max_ps(quotient, q->lo), q->hi);
    const __m256i t = _mm256_cvttps_epi32(r);
    const __m256 frac = _mm256_sub_ps(r, _mm256_cvtepi32_ps(t));
    /* compare masks are -1: subtracting one adds 1 */
    const __m256i up = _mm256_castps_si256(_mm256_cmp_ps(frac, q->half, _CMP_GE_OQ));
    const __m256i down = _mm256_castps_si256(_mm256_cmp_ps(frac, q->minus_half, _CMP_LE_OQ));
    return _mm256_add_epi32(_mm256_add_epi32(_mm256_sub_epi32(t, up), down), q->zp);
}

/* 16 quantized values to 16 bytes in order, saturating. */
static AVX2_ATTR __m128i narrow16(__m256i a, __m256i b) {
    /* vpackssdw interleaves the 128-bit lanes: a0-3 b0-3 | a4-7 b4-7; put them back */
    const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xD8);
    return _mm_packs_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
}

static AVX2_ATTR __m128i quantize16(const quantizer *q, const float *x) {
    return narrow16(quantize8(q, x), quantize8(q, x + 8));
}

static AVX2_ATTR void quantize__avx2(const float *x, size_t n, float scale, int32_t zp,
                                     int8_t *out) {
    const quantizer q = quantizer_of(scale, zp);
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        _mm_storeu_si128((__m128i *)(void *)(out + i), quantize16(&q, x + i));
        _mm_storeu_si128((__m128i *)(void *)(out + i + 16), quantize16(&q, x + i + 16));
    }
    for (; i + 16 <= n; i += 16)
        _mm_storeu_si128((__m128i *)(void *)(out + i), quantize16(&q, x + i));
    mnv3_q8_quantize(x + i, n - i, scale, zp, out + i);
}

static AVX2_ATTR __m128i gather(__m128i bytes, const int8_t *index) {
    return _mm_shuffle_epi8(bytes, _mm_loadu_si128((const __m128i *)(const void *)index));
}

/* Three vectors of 16 bytes, one per channel, stored as 16 interleaved pixels. Output byte
 * k of store j is pixel (16j + k) / 3 of channel (16j + k) % 3: each store gathers its
 * bytes from the three vectors with one vpshufb each (index -128 writes a zero). */
static AVX2_ATTR void store_interleaved(__m128i c0, __m128i c1, __m128i c2, int8_t *out) {
    static const int8_t pick[3][3][16] = {
        {{0, -128, -128, 1, -128, -128, 2, -128, -128, 3, -128, -128, 4, -128, -128, 5},
         {-128, 0, -128, -128, 1, -128, -128, 2, -128, -128, 3, -128, -128, 4, -128, -128},
         {-128, -128, 0, -128, -128, 1, -128, -128, 2, -128, -128, 3, -128, -128, 4, -128}},
        {{-128, -128, 6, -128, -128, 7, -128, -128, 8, -128, -128, 9, -128, -128, 10, -128},
         {5, -128, -128, 6, -128, -128, 7, -128, -128, 8, -128, -128, 9, -128, -128, 10},
         {-128, 5, -128, -128, 6, -128, -128, 7, -128, -128, 8, -128, -128, 9, -128, -128}},
        {{-128, 11, -128, -128, 12, -128, -128, 13, -128, -128, 14, -128, -128, 15, -128, -128},
         {-128, -128, 11, -128, -128, 12, -128, -128, 13, -128, -128, 14, -128, -128, 15, -128},
         {10, -128, -128, 11, -128, -128, 12, -128, -128, 13, -128, -128, 14, -128, -128, 15}},
    };
    int j;
    for (j = 0; j < 3; ++j) {
        const __m128i v = _mm_or_si128(_mm_or_si128(gather(c0, pick[j][0]), gather(c1, pick[j][1])),
                                       gather(c2, pick[j][2]));
        _mm_storeu_si128((__m128i *)(void *)(out + 16 * j), v);
    }
}

static AVX2_ATTR void quantize_planes__avx2(const float *x, size_t plane, size_t pixels,
                                            float scale, int32_t zp, int8_t *out) {
    const quantizer q = quantizer_of(scale, zp);
    size_t p = 0;
    for (; p + 16 <= pixels; p += 16)
        store_interleaved(quantize16(&q, x + p), quantize16(&q, x + plane + p),
                          quantize16(&q, x + 2 * plane + p), out + 3 * p);
    mnv3_q8_quantize_planes_portable(x + p, plane, pixels - p, scale, zp, out + 3 * p);
}

static AVX2_ATTR void from_uint8__avx2(const uint8_t *x, size_t n, int8_t *out) {
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(x + i));
        _mm256_storeu_si256((__m256i *)(void *)(out + i), _mm256_xor_si256(v, flip));
    }
    mnv3_q8_from_uint8_portable(x + i, n - i, out + i);
}

static AVX2_ATTR void interleave_planes__avx2(const uint8_t *x, size_t plane, size_t pixels,
                                              uint8_t flip, int8_t *out) {
    const __m128i f = _mm_set1_epi8((char)flip);
    size_t p = 0;
    for (; p + 16 <= pixels; p += 16) {
        const __m128i c0 = _mm_loadu_si128((const __m128i *)(const void *)(x + p));
        const __m128i c1 = _mm_loadu_si128((const __m128i *)(const void *)(x + plane + p));
        const __m128i c2 = _mm_loadu_si128((const __m128i *)(const void *)(x + 2 * plane + p));
        store_interleaved(_mm_xor_si128(c0, f), _mm_xor_si128(c1, f), _mm_xor_si128(c2, f),
                          out + 3 * p);
    }
    mnv3_q8_interleave_planes_portable(x + p, plane, pixels - p, flip, out + 3 * p);
}

const mnv3_q8_input_ops mnv3_q8_input_avx2 = {
    quantize__avx2, quantize_planes__avx2, from_uint8__avx2, interleave_planes__avx2,
};

#else
typedef int mnv3_x86_avx2_q8_input_unused;
#endif
