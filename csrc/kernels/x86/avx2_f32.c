/* AVX2 + FMA primitives for the float32 microkernels (simd_f32.h). Every function carries
 * its own target attribute; the set is chosen at run time (dispatch.c), so the rest of the
 * library needs no -m flags. */
#include "kernels/float_impl.h"

#if defined(MNV3_HAVE_X86_KERNELS)
#include "x86_intrin.h"

/* A weight-storage variant (avx2_f16w.c) brings its own attribute, set and check. */
#ifndef SIMD_SET
#define SIMD_ATTR MNV3_X86_TARGET("avx2,fma")
#define SIMD_SET mnv3_kernel_set_avx2
#define SIMD_NAME "avx2"
/* The GEMM tiles the float16-weight rows run on widened weights. */
#define PW_IMPL_NAME mnv3_avx2_f32_gemm
#define SIMD_SUPPORTED mnv3_cpu_has_avx2
#endif
#define SIMD_ISAS (1u << MNV3_ISA_AVX2)
#define SIMD_ISA avx2
#define SIMD_NR 16
#define SIMD_VW 8
#define VW 8
/* 6 rows x 2 vectors = 12 accumulators, 2 weight vectors and a broadcast: all 16 ymm. */
#define PW_MR 6
/* Depthwise outputs per group: 3x3 fits 9 weights + 4 accumulators in 16 ymm registers;
 * 5x5 weights spill to memory operands either way. */
#define DW_G3 4
#define DW_G5 4

typedef __m256 vf;
typedef __m256i vmask;

/* Sliding window over this table gives the mask of the first n lanes. */
static const int32_t x86_avx2_mask_table[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                                0,  0,  0,  0,  0,  0,  0,  0};

#define V_INLINE static inline __attribute__((always_inline)) SIMD_ATTR
V_INLINE vf v_zero(void) { return _mm256_setzero_ps(); }
V_INLINE vf v_set1(float x) { return _mm256_set1_ps(x); }
V_INLINE vf v_load(const float *p) { return _mm256_loadu_ps(p); }
V_INLINE vf v_loadm(const float *p, vmask m) { return _mm256_maskload_ps(p, m); }
V_INLINE void v_store(float *p, vf v) { _mm256_storeu_ps(p, v); }
V_INLINE void v_storem(float *p, vmask m, vf v) { _mm256_maskstore_ps(p, m, v); }
V_INLINE vf v_fma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
V_INLINE vf v_add(vf a, vf b) { return _mm256_add_ps(a, b); }
V_INLINE vf v_mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
V_INLINE vf v_max(vf a, vf b) { return _mm256_max_ps(a, b); }
V_INLINE vf v_min(vf a, vf b) { return _mm256_min_ps(a, b); }
V_INLINE float v_hsum(vf v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
V_INLINE vmask v_mask(uint32_t n) {
    return _mm256_loadu_si256((const __m256i *)(const void *)(x86_avx2_mask_table + 8 - n));
}

#include "kernels/simd_f32.h"

#else
typedef int mnv3_x86_avx2_unused;
#endif
