/* AVX-512F primitives for the float32 microkernels (simd_f32.h). Every function carries its
 * own target attribute; the set is chosen at run time (dispatch.c), so the rest of the
 * library needs no -m flags. */
#include "kernels/float_impl.h"

#if defined(MNV3_HAVE_X86_KERNELS)
#include "x86_intrin.h"

/* A weight-storage variant (avx512_f16w.c) brings its own attribute, set and check. */
#ifndef SIMD_SET
#define SIMD_ATTR MNV3_X86_TARGET("avx512f,avx2,fma")
#define SIMD_SET mnv3_kernel_set_avx512
#define SIMD_NAME "avx512"
/* The GEMM tiles the float16-weight rows run on widened weights. */
#define PW_IMPL_NAME mnv3_avx512_f32_gemm
#define SIMD_SUPPORTED mnv3_cpu_has_avx512f
#endif
#define SIMD_ISAS (1u << MNV3_ISA_AVX512)
#define SIMD_ISA avx512
#define SIMD_NR 32
#define SIMD_VW 16
#define VW 16
/* 8 rows x 2 vectors = 16 accumulators: enough independent FMA chains to cover latency
 * on two FMA ports while leaving registers for the weights and broadcasts. */
#define PW_MR 8
/* Depthwise outputs per group: 3x3 keeps 9 weights + 8 accumulators in zmm registers,
 * 5x5 keeps 25 weights + 4. */
#define DW_G3 8
#define DW_G5 4

typedef __m512 vf;
typedef __mmask16 vmask;

#define V_INLINE static inline __attribute__((always_inline)) SIMD_ATTR
V_INLINE vf v_zero(void) { return _mm512_setzero_ps(); }
V_INLINE vf v_set1(float x) { return _mm512_set1_ps(x); }
V_INLINE vf v_load(const float *p) { return _mm512_loadu_ps(p); }
V_INLINE vf v_loadm(const float *p, vmask m) { return _mm512_maskz_loadu_ps(m, p); }
V_INLINE void v_store(float *p, vf v) { _mm512_storeu_ps(p, v); }
V_INLINE void v_storem(float *p, vmask m, vf v) { _mm512_mask_storeu_ps(p, m, v); }
V_INLINE vf v_fma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
V_INLINE vf v_add(vf a, vf b) { return _mm512_add_ps(a, b); }
V_INLINE vf v_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
V_INLINE vf v_max(vf a, vf b) { return _mm512_max_ps(a, b); }
V_INLINE vf v_min(vf a, vf b) { return _mm512_min_ps(a, b); }
V_INLINE float v_hsum(vf v) { return _mm512_reduce_add_ps(v); }
V_INLINE vmask v_mask(uint32_t n) { return (vmask)((1u << n) - 1u); }

#include "kernels/simd_f32.h"

#else
typedef int mnv3_x86_avx512_unused;
#endif
