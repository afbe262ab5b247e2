/* AVX2 int8 input conversions: an image to the stem's NHWC bytes (kernels.h,
 * mnv3_q8_input_ops), byte for byte what the portable loops give.
 *
 * QUANTIZE is mnv3_q8_quantize_one on 8 lanes: the same IEEE division (vdivps rounds as
 * divss does, under the same MXCSR), then round half away from zero as trunc(r) plus the
 * sign of a fraction of at least one half, which is exact below 2^23 and a no-op above it.
 * Saturation comes first: r is clamped to [-1000, 1000], NaN going to -1000 (vmaxps
 * returns its second operand when either is NaN). Since |zp| <= 128, any |r| >= 256
 * saturates either way, so the clamp changes no result and keeps the conversion to int32
 * in range; vpackssdw and vpacksswb then saturate to [-128, 127] exactly as the clamp.
 * The loops around these vectors are simd_q8_input.h's. */
#include "kernels/kernels.h"

#if defined(MNV3_HAVE_X86_KERNELS)
#include <immintrin.h>

#include "kernels/q8_impl.h"

#define AVX2_ATTR __attribute__((target("avx2")))

typedef struct q8in_quantizer {
    __m256 scale, lo, hi, half, minus_half;
    __m256i zp;
} q8in_quantizer;
typedef __m128i q8in_bytes;

static AVX2_ATTR q8in_quantizer q8in_quantizer_of(float scale, int32_t zp) {
    q8in_quantizer q;
    q.scale = _mm256_set1_ps(scale);
    q.lo = _mm256_set1_ps(-1000.0f);
    q.hi = _mm256_set1_ps(1000.0f);
    q.half = _mm256_set1_ps(0.5f);
    q.minus_half = _mm256_set1_ps(-0.5f);
    q.zp = _mm256_set1_epi32(zp);
    return q;
}

/* 8 floats from x to their quantized values as int32 (before the final clamp). */
static AVX2_ATTR __m256i quantize8(const q8in_quantizer *q, const float *x) {
    const __m256 quotient = _mm256_div_ps(_mm256_loadu_ps(x), q->scale);
    const __m256 r = _mm256_min_ps(_mm256_max_ps(quotient, q->lo), q->hi);
    const __m256i t = _mm256_cvttps_epi32(r);
    const __m256 frac = _mm256_sub_ps(r, _mm256_cvtepi32_ps(t));
    /* compare masks are -1: subtracting one adds 1 */
    const __m256i up = _mm256_castps_si256(_mm256_cmp_ps(frac, q->half, _CMP_GE_OQ));
    const __m256i down = _mm256_castps_si256(_mm256_cmp_ps(frac, q->minus_half, _CMP_LE_OQ));
    return _mm256_add_epi32(_mm256_add_epi32(_mm256_sub_epi32(t, up), down), q->zp);
}

static AVX2_ATTR __m128i q8in_quantize16(const q8in_quantizer *q, const float *x) {
    /* vpackssdw interleaves the 128-bit lanes, a0-3 b0-3 | a4-7 b4-7: put them back */
    const __m256i w =
        _mm256_permute4x64_epi64(_mm256_packs_epi32(quantize8(q, x), quantize8(q, x + 8)), 0xD8);
    return _mm_packs_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
}

static AVX2_ATTR __m128i q8in_load16(const uint8_t *x) {
    return _mm_loadu_si128((const __m128i *)(const void *)x);
}
static AVX2_ATTR void q8in_store16(int8_t *out, __m128i v) {
    _mm_storeu_si128((__m128i *)(void *)out, v);
}
static AVX2_ATTR __m128i q8in_splat(uint8_t byte) { return _mm_set1_epi8((char)byte); }
static AVX2_ATTR __m128i q8in_xor(__m128i a, __m128i b) { return _mm_xor_si128(a, b); }

static AVX2_ATTR __m128i gather(__m128i bytes, const int8_t *index) {
    return _mm_shuffle_epi8(bytes, _mm_loadu_si128((const __m128i *)(const void *)index));
}

/* Output byte k of store j is pixel (16j + k) / 3 of channel (16j + k) % 3: each store
 * gathers its bytes from the three vectors with one vpshufb each (index -128 writes 0). */
static AVX2_ATTR void q8in_store_interleaved(int8_t *out, __m128i c0, __m128i c1, __m128i c2) {
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
    for (j = 0; j < 3; ++j)
        q8in_store16(out + 16 * j, _mm_or_si128(_mm_or_si128(gather(c0, pick[j][0]),
                                                             gather(c1, pick[j][1])),
                                                gather(c2, pick[j][2])));
}

#define Q8IN_FN static AVX2_ATTR
#define Q8IN_OPS mnv3_q8_input_avx2
#include "kernels/simd_q8_input.h"

#else
typedef int mnv3_x86_avx2_q8_input_unused;
#endif
