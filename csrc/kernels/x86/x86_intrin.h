/* The intrinsics of the x86 kernel files, and the target attribute their functions carry
 * (each set is chosen at run time, so the library itself needs no -m flags).
 *
 * A test build with MNV3_X86_EMULATED (make test-x86-emulated) takes the AVX-512 (F, VNNI,
 * BF16) and AVX-VNNI intrinsics from SIMDe, portable code with the instructions'
 * semantics, so that those kernel sets run, and are held to the reference, on a CPU without
 * them; the attributes are then empty and the build's -m flags give AVX2, FMA and F16C
 * natively. Nothing else in the library changes for it. */
#ifndef MNV3_X86_INTRIN_H
#define MNV3_X86_INTRIN_H

#if defined(MNV3_X86_EMULATED)
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#include <string.h>
/* SIMDe brings <complex.h>, whose I would rename the kernels' I (input length) */
#undef I

#define MNV3_X86_TARGET(features)

/* The VEX form of vpdpbusd computes what the EVEX one does on 256 bits. */
#define _mm256_dpbusd_avx_epi32(acc, a, b) simde_mm256_dpbusd_epi32(acc, a, b)

/* vcvtne2ps2bf16, which SIMDe lacks: b's 16 floats to the low bf16 halves, a's to the
 * high ones, rounded to nearest even; zero and denormal inputs give a signed zero, NaN a
 * quiet NaN (the SDM's convert_fp32_to_bfloat16). */
static inline simde__m512bh mnv3_emulated_cvtne2ps_pbh(simde__m512 a, simde__m512 b) {
    float in[32];
    uint16_t out[32];
    simde__m512bh r;
    int i;
    simde_mm512_storeu_ps(in, b);
    simde_mm512_storeu_ps(in + 16, a);
    for (i = 0; i < 32; ++i) {
        uint32_t x;
        memcpy(&x, &in[i], sizeof x);
        if ((x & 0x7F800000u) == 0)
            out[i] = (uint16_t)(x >> 16 & 0x8000u);
        else if ((x & 0x7FFFFFFFu) > 0x7F800000u)
            out[i] = (uint16_t)(x >> 16 | 0x40u);
        else if ((x & 0x7FFFFFFFu) == 0x7F800000u)
            out[i] = (uint16_t)(x >> 16);
        else
            out[i] = (uint16_t)((x + 0x7FFFu + (x >> 16 & 1u)) >> 16);
    }
    memcpy(&r, out, sizeof r);
    return r;
}
#define _mm512_cvtne2ps_pbh(a, b) mnv3_emulated_cvtne2ps_pbh(a, b)

/* vcvtneps2bf16 on 512 bits: 16 floats to 16 bf16, as the low half of the two-source form. */
static inline simde__m256i mnv3_emulated_cvtneps_pbh(simde__m512 a) {
    return simde_mm512_castsi512_si256((simde__m512i)mnv3_emulated_cvtne2ps_pbh(a, a));
}
#define _mm512_cvtneps_pbh(a) mnv3_emulated_cvtneps_pbh(a)

/* vpsravd on 512 bits, which SIMDe lacks: each half by the native AVX2 instruction. */
static inline simde__m512i mnv3_emulated_srav_epi32(simde__m512i a, simde__m512i count) {
    const __m256i lo = _mm256_srav_epi32(simde_mm512_castsi512_si256(a),
                                         simde_mm512_castsi512_si256(count));
    const __m256i hi = _mm256_srav_epi32(simde_mm512_extracti64x4_epi64(a, 1),
                                         simde_mm512_extracti64x4_epi64(count, 1));
    return simde_mm512_inserti64x4(simde_mm512_castsi256_si512(lo), hi, 1);
}
#define _mm512_srav_epi32(a, count) mnv3_emulated_srav_epi32(a, count)

/* vpmovzxwd to 512 bits, which SIMDe lacks: each half by the native AVX2 instruction. */
static inline simde__m512i mnv3_emulated_cvtepu16_epi32(simde__m256i a) {
    const __m256i lo = _mm256_cvtepu16_epi32(simde_mm256_castsi256_si128(a));
    const __m256i hi = _mm256_cvtepu16_epi32(simde_mm256_extracti128_si256(a, 1));
    return simde_mm512_inserti64x4(simde_mm512_castsi256_si512(lo), hi, 1);
}
#define _mm512_cvtepu16_epi32(a) mnv3_emulated_cvtepu16_epi32(a)

/* Masked loads and stores touch only their lanes' memory, as the instructions do. */
static inline simde__m512 mnv3_emulated_maskz_loadu_ps(simde__mmask16 m, const float *p) {
    float v[16] = {0};
    int i;
    for (i = 0; i < 16; ++i)
        if (m >> i & 1) v[i] = p[i];
    return simde_mm512_loadu_ps(v);
}
#define _mm512_maskz_loadu_ps(m, p) mnv3_emulated_maskz_loadu_ps(m, p)

static inline void mnv3_emulated_mask_storeu_ps(float *p, simde__mmask16 m, simde__m512 x) {
    float v[16];
    int i;
    simde_mm512_storeu_ps(v, x);
    for (i = 0; i < 16; ++i)
        if (m >> i & 1) p[i] = v[i];
}
#define _mm512_mask_storeu_ps(p, m, x) mnv3_emulated_mask_storeu_ps(p, m, x)

/* The same for 16-bit lanes on 256 bits (AVX512BW and VL). */
static inline simde__m256i mnv3_emulated_maskz_loadu_epi16(simde__mmask16 m, const void *p) {
    uint16_t v[16] = {0};
    int i;
    for (i = 0; i < 16; ++i)
        if (m >> i & 1) memcpy(&v[i], (const char *)p + 2 * i, 2);
    return simde_mm256_loadu_si256((const void *)v);
}
#define _mm256_maskz_loadu_epi16(m, p) mnv3_emulated_maskz_loadu_epi16(m, p)

static inline void mnv3_emulated_mask_storeu_epi16(void *p, simde__mmask16 m, simde__m256i x) {
    uint16_t v[16];
    int i;
    simde_mm256_storeu_si256((void *)v, x);
    for (i = 0; i < 16; ++i)
        if (m >> i & 1) memcpy((char *)p + 2 * i, &v[i], 2);
}
#define _mm256_mask_storeu_epi16(p, m, x) mnv3_emulated_mask_storeu_epi16(p, m, x)

static inline void mnv3_emulated_mask_storeu_epi8(void *p, simde__mmask32 m, simde__m256i x) {
    uint8_t v[32];
    int i;
    simde_mm256_storeu_si256((void *)v, x);
    for (i = 0; i < 32; ++i)
        if (m >> i & 1) ((uint8_t *)p)[i] = v[i];
}
#define _mm256_mask_storeu_epi8(p, m, x) mnv3_emulated_mask_storeu_epi8(p, m, x)

/* 16 float16 values to float32, by the native F16C instruction on each half. */
static inline simde__m512 mnv3_emulated_cvtph_ps(simde__m256i h) {
    float v[16];
    _mm256_storeu_ps(v, _mm256_cvtph_ps(simde_mm256_castsi256_si128(h)));
    _mm256_storeu_ps(v + 8, _mm256_cvtph_ps(simde_mm256_extracti128_si256(h, 1)));
    return simde_mm512_loadu_ps(v);
}
#define _mm512_cvtph_ps(h) mnv3_emulated_cvtph_ps(h)

/* The horizontal sum in the compilers' order: halves, quarters, pairs, then the last two. */
static inline float mnv3_emulated_reduce_add_ps(simde__m512 x) {
    float v[16], q[8], p[4];
    int i;
    simde_mm512_storeu_ps(v, x);
    for (i = 0; i < 8; ++i) q[i] = v[i + 8] + v[i];
    for (i = 0; i < 4; ++i) p[i] = q[i + 4] + q[i];
    return (p[0] + p[2]) + (p[1] + p[3]);
}
#define _mm512_reduce_add_ps(x) mnv3_emulated_reduce_add_ps(x)
#else
#include <immintrin.h>
#define MNV3_X86_TARGET(features) __attribute__((target(features)))
#endif

#endif
