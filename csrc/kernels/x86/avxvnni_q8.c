/* AVX-VNNI int8 GEMM (VEX-encoded vpdpbusd on 256-bit vectors, Alder Lake and later,
 * Zen 5): 32 multiply-accumulates per instruction, u8 activations (x ^ 0x80) times s8
 * weights, zero points folded at pack time (q8_impl.h). The body is shared with the AVX2
 * stand-in that tests it on CPUs without VNNI (q8_gemm_ymm.h). */
#include "kernels/kernels.h"

/* The _avx_ intrinsics need GCC 11 or clang 12. */
#if defined(MNV3_HAVE_X86_KERNELS) &&                                                        \
    ((defined(__clang__) && __clang_major__ >= 12) ||                                        \
     (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 11))
#define Q8X_ATTR MNV3_X86_TARGET("avx2,avxvnni")
#include "q8_common.h"

#if defined(MNV3_X86_EMULATED)
#define Q8X_DOT_ACC(acc, a, b) ((acc) = _mm256_dpbusd_avx_epi32((acc), (a), (b)))
#else
#define Q8X_DOT_ACC(acc, a, b) __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(a), "x"(b))
#endif
#define DOT_SUFFIX avxvnni
#define DOT_TILE c4
#define DOT_KR 4
#define DOT_FORMAT MNV3_Q8_A_U8
#include "q8_gemm_ymm.h"

static const mnv3_row *const set_rows[] = {
    &dot_pointwise_row, &mnv3_q8_depthwise_avx2, &mnv3_q8_conv_avx2, &dot_fc_row, NULL,
};

const mnv3_kernel_set mnv3_kernel_set_avxvnni_q8 = {
    "avxvnni", (1u << MNV3_ISA_AVX2) | (1u << MNV3_ISA_AVX512), mnv3_cpu_has_avxvnni, set_rows,
    &mnv3_q8_input_avx2,
};
#define MNV3_HAVE_AVXVNNI_SET 1
#endif

#if defined(MNV3_HAVE_X86_KERNELS) && !defined(MNV3_HAVE_AVXVNNI_SET)
#include "kernels/q8_impl.h"
/* A compiler without the AVX-VNNI intrinsics: the set exists and is never supported. */
static int never(void) { return 0; }
static const mnv3_row *const no_rows[] = {NULL};
const mnv3_kernel_set mnv3_kernel_set_avxvnni_q8 = {"avxvnni", 0u, never, no_rows, NULL};
#elif !defined(MNV3_HAVE_X86_KERNELS)
typedef int mnv3_x86_avxvnni_q8_unused;
#endif
