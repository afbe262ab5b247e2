/* NEON primitives for the float32 microkernels (simd_f32.h), for AArch64 (ASIMD) and
 * 32-bit ARM with NEON-VFPv4. NEON has no masked loads, so a partial vector (channel counts
 * that are not a multiple of 4) goes through a small copy; MobileNetV3's channel counts
 * are multiples of 8, so only odd shapes take that path. ARMv7 has half the vector
 * registers, hence the smaller tiles there. */
#include "kernels.h"

#if defined(MNV3_HAVE_NEON_KERNELS)

#include <arm_neon.h>
#include <string.h>

#define SIMD_ATTR
#define SIMD_SET mnv3_kernel_set_neon
#define SIMD_ISA_ID MNV3_ISA_NEON
#define SIMD_NAME "neon"
#define SIMD_SUPPORTED NULL
#define SIMD_ISA neon
#define SIMD_NR 8
#define SIMD_VW 4
#define VW 4
#if defined(__aarch64__)
/* 8 rows x 2 vectors = 16 accumulators of the 32 registers. */
#define PW_MR 8
#define DW_G3 8
#define DW_G5 4
#else
/* 4 rows x 2 vectors = 8 accumulators of the 16 Q registers. */
#define PW_MR 4
#define DW_G3 4
#define DW_G5 2
#endif

typedef float32x4_t vf;
typedef uint32_t vmask; /* number of leading lanes */

#define V_INLINE static inline __attribute__((always_inline))
V_INLINE vf v_zero(void) { return vdupq_n_f32(0.0f); }
V_INLINE vf v_set1(float x) { return vdupq_n_f32(x); }
V_INLINE vf v_load(const float *p) { return vld1q_f32(p); }
V_INLINE vf v_loadm(const float *p, vmask m) {
    float t[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    if (m == 4) return vld1q_f32(p);
    memcpy(t, p, m * sizeof(float));
    return vld1q_f32(t);
}
V_INLINE void v_store(float *p, vf v) { vst1q_f32(p, v); }
V_INLINE void v_storem(float *p, vmask m, vf v) {
    float t[4];
    if (m == 4) {
        vst1q_f32(p, v);
        return;
    }
    vst1q_f32(t, v);
    memcpy(p, t, m * sizeof(float));
}
V_INLINE vf v_fma(vf a, vf b, vf c) { return vfmaq_f32(c, a, b); }
V_INLINE vf v_add(vf a, vf b) { return vaddq_f32(a, b); }
V_INLINE vf v_mul(vf a, vf b) { return vmulq_f32(a, b); }
V_INLINE vf v_max(vf a, vf b) { return vmaxq_f32(a, b); }
V_INLINE vf v_min(vf a, vf b) { return vminq_f32(a, b); }
#if defined(__aarch64__)
V_INLINE float v_hsum(vf v) { return vaddvq_f32(v); }
#else
V_INLINE float v_hsum(vf v) {
    float32x2_t s = vadd_f32(vget_low_f32(v), vget_high_f32(v));
    return vget_lane_f32(vpadd_f32(s, s), 0);
}
#endif
V_INLINE vmask v_mask(uint32_t n) { return n; }

#include "simd_f32.h"

#else
/* ISO C wants at least one declaration in a translation unit. */
typedef int mnv3_arm_neon_unused;
#endif
