/* The AVX-VNNI GEMM body with vpdpbusd replaced by an exact AVX2 equivalent: even and odd
 * bytes widened to 16 bits (u8 zero-extended, s8 sign-extended) and multiplied pairwise by
 * vpmaddwd, which cannot overflow. Slower than the set it stands for and never chosen by
 * dispatch (it serves no set id); it exists so that every x86 machine runs the u8 x s8
 * layout, the zero-point folding and the microkernel body the VNNI sets share, against
 * the reference. */
#include "kernels/kernels.h"

#if defined(MNV3_HAVE_X86_KERNELS)
#define Q8X_ATTR MNV3_X86_TARGET("avx2")
#include "q8_common.h"

Q8X_INLINE __m256i dot_emulated(__m256i acc, __m256i a, __m256i b) {
    const __m256i a_even = _mm256_and_si256(a, _mm256_set1_epi16(0x00FF));
    const __m256i a_odd = _mm256_srli_epi16(a, 8);
    const __m256i b_even = _mm256_srai_epi16(_mm256_slli_epi16(b, 8), 8);
    const __m256i b_odd = _mm256_srai_epi16(b, 8);
    return _mm256_add_epi32(acc, _mm256_add_epi32(_mm256_madd_epi16(a_even, b_even),
                                                  _mm256_madd_epi16(a_odd, b_odd)));
}

#define Q8X_DOT_ACC(acc, a, b) ((acc) = dot_emulated((acc), (a), (b)))
#define DOT_SUFFIX avx2dotemu
#define DOT_TILE c4
#define DOT_KR 4
#define DOT_FORMAT MNV3_Q8_A_U8
#include "q8_gemm_ymm.h"

static const mnv3_row *const set_rows[] = {
    &dot_pointwise_row, &mnv3_q8_conv_avx2, &dot_fc_row, NULL,
};

const mnv3_kernel_set mnv3_kernel_set_avx2_dotemu_q8 = {
    "avx2-dotemu", 0u, mnv3_cpu_has_avx2, set_rows, &mnv3_q8_input_avx2,
};

#else
typedef int mnv3_x86_avx2_dotemu_q8_unused;
#endif
