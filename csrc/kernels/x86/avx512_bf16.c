/* Relaxed precision on x86 cores with AVX512-BF16 (CPUID leaf 7 subleaf 1, EAX bit 5):
 * activations are stored as bf16 between layers, and the pointwise GEMM takes bf16
 * products with float32 sums, vdpbf16ps, two k steps per instruction where an FMA does
 * one, its inputs read as stored: each pair of a row's bf16 inputs is one 32-bit
 * broadcast. Weights are rounded to bf16 (to nearest even) once, at packing. The stem and
 * the depthwise convolution compute in float32 on float32 weights and round their outputs
 * once; the GEMM epilogue (activation, residual add, clamps) is float32 too, as are the SE
 * gate, the channel sums and the GEMVs, which read float32 vectors. Its rows join the
 * avx512 set id, for contexts configured with MNV3_PRECISION_RELAXED on a CPU with the
 * instruction (dispatch.c); float32 models only.
 *
 * Packed pointwise weights: output channels rounded up to 16, panels of 32 columns (the
 * last 16 wide when only that much is left), each starting where a float32 panel would
 * (column * K * 4 bytes), holding ceil(K/2) rows of (w[2p][c], w[2p+1][c]) bf16 pairs. */
#include "kernels/float_impl.h"

#if defined(MNV3_HAVE_X86_KERNELS)
#include "x86_intrin.h"
#include <string.h>

#define SIMD_ATTR MNV3_X86_TARGET("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma,f16c")
#define SIMD_SET mnv3_kernel_set_avx512_bf16
#define SIMD_NAME "avx512-bf16"
#define SIMD_SUPPORTED mnv3_cpu_has_avx512bf16
#define SIMD_ATYPE MNV3_DTYPE_BF16
#define SIMD_ARITH MNV3_DTYPE_BF16
#define UK_PREC bf16
#define PW_PACKED_BYTES bf16_pw_packed_bytes
#define PW_PACK bf16_pw_pack
#define PW_ELEM_BYTES 4u

/* bf16 activations as float32 lanes (a bf16 is the top half of a float32), and float32
 * lanes rounded to bf16 (to nearest even); the lanes of m only, unless full. */
#define A_T uint16_t
#define A_LOAD(p, full, m) bf16_load((p), (full), (m))
#define A_STORE(p, v, full, m) bf16_store((p), (v), (full), (m))
#define BF16_INLINE static inline __attribute__((always_inline)) SIMD_ATTR
BF16_INLINE __m512 bf16_load(const uint16_t *p, int full, __mmask16 m) {
    const __m256i h = full ? _mm256_loadu_si256((const __m256i *)(const void *)p)
                           : _mm256_maskz_loadu_epi16(m, p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
BF16_INLINE void bf16_store(uint16_t *p, __m512 v, int full, __mmask16 m) {
    const __m256i h = (__m256i)_mm512_cvtneps_pbh(v);
    if (full)
        _mm256_storeu_si256((__m256i *)(void *)p, h);
    else
        _mm256_mask_storeu_epi16(p, m, h);
}

/* float -> bf16 bits, to nearest even; NaN stays a quiet NaN. */
static uint32_t bf16_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (u >> 16) | 0x40u;
    return (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
}

static uint32_t bf16_pair(float lo, float hi) { return bf16_bits(lo) | bf16_bits(hi) << 16; }

/* Inputs k and k + 1 of a row, one bf16 pair. */
BF16_INLINE uint32_t bf16_pair_at(const uint16_t *a) {
    uint32_t pair;
    memcpy(&pair, a, sizeof pair);
    return pair;
}

static size_t bf16_pw_packed_bytes(uint32_t in_channels, uint32_t out_channels) {
    return (size_t)in_channels * ((out_channels + 15u) / 16u * 16u) * 4u;
}

static void bf16_pw_pack(const void *weight_, uint32_t in_channels, uint32_t out_channels,
                         void *packed_) {
    const float *weight = (const float *)weight_;
    const uint32_t K = in_channels, npad = (out_channels + 15u) / 16u * 16u;
    uint32_t col, p, j;
    for (col = 0; col < npad; col += 32) {
        const uint32_t width = col + 32 <= npad ? 32 : 16;
        uint32_t *dst = (uint32_t *)packed_ + (size_t)col * K;
        for (p = 0; p < (K + 1) / 2; ++p)
            for (j = 0; j < width; ++j) {
                const float *wc = weight + (size_t)(col + j) * K;
                const int real = col + j < out_channels;
                dst[(size_t)p * width + j] =
                    bf16_pair(real ? wc[2 * p] : 0.0f, real && 2 * p + 1 < K ? wc[2 * p + 1] : 0.0f);
            }
    }
}

/* Each step multiplies one pair of every row's inputs by lane; an odd last k pairs its
 * input with zero (the row's next element is not its own). */
#define BF_DOT2(r, pair)                                                                     \
    {                                                                                        \
        const __m512bh ab = (__m512bh)_mm512_set1_epi32((int)(pair));                        \
        c##r##_0 = _mm512_dpbf16_ps(c##r##_0, ab, (__m512bh)w0);                             \
        c##r##_1 = _mm512_dpbf16_ps(c##r##_1, ab, (__m512bh)w1);                             \
    }
#define BF_DOT1(r, pair)                                                                     \
    c##r##_0 = _mm512_dpbf16_ps(c##r##_0, (__m512bh)_mm512_set1_epi32((int)(pair)), (__m512bh)w0);
#define BF_STEP2(r) BF_DOT2(r, bf16_pair_at(a##r + k))
#define BF_LAST2(r) BF_DOT2(r, (uint32_t)a##r[k])
#define BF_STEP1(r) BF_DOT1(r, bf16_pair_at(a##r + k))
#define BF_LAST1(r) BF_DOT1(r, (uint32_t)a##r[k])
#define BF_LOAD2                                                                             \
    const __m512i w0 = _mm512_loadu_si512((const void *)wp);                                 \
    const __m512i w1 = _mm512_loadu_si512((const void *)(wp + 16));                          \
    wp += 32;
#define BF_LOAD1                                                                             \
    const __m512i w0 = _mm512_loadu_si512((const void *)wp);                                 \
    wp += 16;
#define BF_KLOOP(ROWS, LOADW, STEP, LAST)                                                    \
    {                                                                                        \
        const uint32_t *wp = (const uint32_t *)(const void *)w;                              \
        const uint32_t k_even = t->k & ~1u;                                                  \
        for (k = 0; k < k_even; k += 2) {                                                    \
            LOADW                                                                            \
            MNV3_PREFETCH_STEP(pf, pf_end);                                                  \
            ROWS(STEP)                                                                       \
        }                                                                                    \
        if (k < t->k) {                                                                      \
            LOADW                                                                            \
            ROWS(LAST)                                                                       \
        }                                                                                    \
    }
#define PW_KLOOP2(ROWS) BF_KLOOP(ROWS, BF_LOAD2, BF_STEP2, BF_LAST2)
#define PW_KLOOP1(ROWS) BF_KLOOP(ROWS, BF_LOAD1, BF_STEP1, BF_LAST1)

#include "avx512_f32.c"

#else
typedef int mnv3_x86_avx512_bf16_unused;
#endif
