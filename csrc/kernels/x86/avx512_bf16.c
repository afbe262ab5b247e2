/* Relaxed precision on x86 cores with AVX512-BF16 (CPUID leaf 7 subleaf 1, EAX bit 5): the
 * pointwise GEMM takes bf16 products with float32 sums, vdpbf16ps, two k steps per
 * instruction where an FMA does one. Inputs are rounded to bf16 (to nearest even) as the
 * microkernel reads them, 32 at a time per row; weights once, at packing. The other layers
 * are the float32 rows. Its rows join the avx512 set id, for contexts configured with
 * MNV3_PRECISION_RELAXED on a CPU with the instruction (dispatch.c); float32 models only.
 *
 * Packed pointwise weights: output channels rounded up to 16, panels of 32 columns (the
 * last 16 wide when only that much is left), each starting where a float32 panel would
 * (column * K * 4 bytes), holding ceil(K/2) rows of (w[2p][c], w[2p+1][c]) bf16 pairs. */
#include "kernels/float_impl.h"

#if defined(MNV3_HAVE_X86_KERNELS)
#include "x86_intrin.h"
#include <string.h>

#define SIMD_ATTR MNV3_X86_TARGET("avx512f,avx512bf16,avx2,fma,f16c")
#define SIMD_SET mnv3_kernel_set_avx512_bf16
#define SIMD_NAME "avx512-bf16"
#define SIMD_SUPPORTED mnv3_cpu_has_avx512bf16
#define SIMD_ARITH MNV3_DTYPE_BF16
#define UK_PREC bf16
#define PW_PACKED_BYTES bf16_pw_packed_bytes
#define PW_PACK bf16_pw_pack
#define PW_ELEM_BYTES 4u

/* float -> bf16 bits, to nearest even; NaN stays a quiet NaN. */
static uint32_t bf16_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (u >> 16) | 0x40u;
    return (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
}

static uint32_t bf16_pair(float lo, float hi) { return bf16_bits(lo) | bf16_bits(hi) << 16; }

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

/* Each row's next 32 inputs as 16 bf16 pairs, then 16 pair steps multiply them by lane
 * (a broadcast from the stored pairs); the last odd k pairs its input with zero. */
#define BF_DECLA(r) uint32_t ap##r[16];
#define BF_CVT(r)                                                                            \
    _mm512_storeu_si512((void *)ap##r, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(a##r + k + 16), \
                                                                    _mm512_loadu_ps(a##r + k)));
#define BF_DOT2(r, pair)                                                                     \
    {                                                                                        \
        const __m512bh ab = (__m512bh)_mm512_set1_epi32((int)(pair));                        \
        c##r##_0 = _mm512_dpbf16_ps(c##r##_0, ab, (__m512bh)w0);                             \
        c##r##_1 = _mm512_dpbf16_ps(c##r##_1, ab, (__m512bh)w1);                             \
    }
#define BF_DOT1(r, pair)                                                                     \
    c##r##_0 = _mm512_dpbf16_ps(c##r##_0, (__m512bh)_mm512_set1_epi32((int)(pair)), (__m512bh)w0);
#define BF_BLOCK2(r) BF_DOT2(r, ap##r[j])
#define BF_TAIL2(r) BF_DOT2(r, bf16_pair(a##r[k], k + 1 < t->k ? a##r[k + 1] : 0.0f))
#define BF_BLOCK1(r) BF_DOT1(r, ap##r[j])
#define BF_TAIL1(r) BF_DOT1(r, bf16_pair(a##r[k], k + 1 < t->k ? a##r[k + 1] : 0.0f))
#define BF_LOAD2                                                                             \
    const __m512i w0 = _mm512_loadu_si512((const void *)wp);                                 \
    const __m512i w1 = _mm512_loadu_si512((const void *)(wp + 16));                          \
    wp += 32;
#define BF_LOAD1                                                                             \
    const __m512i w0 = _mm512_loadu_si512((const void *)wp);                                 \
    wp += 16;
#define BF_KLOOP(ROWS, LOADW, BLOCK, TAIL)                                                   \
    {                                                                                        \
        const uint32_t *wp = (const uint32_t *)(const void *)w;                              \
        uint32_t j;                                                                          \
        ROWS(BF_DECLA)                                                                       \
        for (k = 0; k + 32 <= t->k; k += 32) {                                               \
            ROWS(BF_CVT)                                                                     \
            for (j = 0; j < 16; ++j) {                                                       \
                LOADW                                                                        \
                MNV3_PREFETCH_STEP(pf, pf_end);                                              \
                ROWS(BLOCK)                                                                  \
            }                                                                                \
        }                                                                                    \
        for (; k < t->k; k += 2) {                                                           \
            LOADW                                                                            \
            ROWS(TAIL)                                                                       \
        }                                                                                    \
    }
#define PW_KLOOP2(ROWS) BF_KLOOP(ROWS, BF_LOAD2, BF_BLOCK2, BF_TAIL2)
#define PW_KLOOP1(ROWS) BF_KLOOP(ROWS, BF_LOAD1, BF_BLOCK1, BF_TAIL1)

#include "avx512_f32.c"

#else
typedef int mnv3_x86_avx512_bf16_unused;
#endif
