/* NEON primitives for the float32 microkernels (simd_f32.h), for AArch64 (ASIMD) and
 * 32-bit ARM with NEON-VFPv4. NEON has no masked loads, so a partial vector (channel counts
 * that are not a multiple of 4) is read and written a lane at a time; MobileNetV3's channel
 * counts are multiples of 8, so only odd shapes take that path. ARMv7 has half the vector
 * registers, hence the smaller tiles there. */
#include "kernels.h"

#if defined(MNV3_HAVE_NEON_KERNELS)

#include <arm_neon.h>

/* Variants (arm_neon_f16.c, arm_neon_hp_*.c) name their own set, and may bring a target
 * attribute, a CPU check and a GEMM k loop. */
#ifndef SIMD_SET
#define SIMD_ATTR
#define SIMD_SET mnv3_kernel_set_neon
#define SIMD_SUPPORTED NULL
#endif
#define SIMD_ISA_ID MNV3_ISA_NEON
#define SIMD_NAME "neon"
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
/* Partial vectors lane by lane: no call and no stack copy, so the compiler still unrolls
 * and keeps in registers the loops that use them. */
V_INLINE vf v_loadm(const float *p, vmask m) {
    vf v;
    if (m >= 4) return vld1q_f32(p);
    v = vdupq_n_f32(0.0f);
    if (m > 0) v = vld1q_lane_f32(p, v, 0);
    if (m > 1) v = vld1q_lane_f32(p + 1, v, 1);
    if (m > 2) v = vld1q_lane_f32(p + 2, v, 2);
    return v;
}
V_INLINE void v_store(float *p, vf v) { vst1q_f32(p, v); }
V_INLINE void v_storem(float *p, vmask m, vf v) {
    if (m >= 4) {
        vst1q_f32(p, v);
        return;
    }
    if (m > 0) vst1q_lane_f32(p, v, 0);
    if (m > 1) vst1q_lane_f32(p + 1, v, 1);
    if (m > 2) vst1q_lane_f32(p + 2, v, 2);
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

#if defined(__aarch64__) && !defined(PW_KLOOP2)
/* AArch64 multiplies by a lane: four k steps share one load of each row's inputs, which
 * halves the loads per multiply-add against broadcasting every input. Same products and
 * the same order of additions as the broadcast loop, so the same results. */
#define PW_LOADA(r) const vf va##r = v_load(a##r + k);
#define PW_LANE2(r, l)                                                                       \
    c##r##_0 = vfmaq_laneq_f32(c##r##_0, w0, va##r, l);                                      \
    c##r##_1 = vfmaq_laneq_f32(c##r##_1, w1, va##r, l);
#define PW_LANE2_0(r) PW_LANE2(r, 0)
#define PW_LANE2_1(r) PW_LANE2(r, 1)
#define PW_LANE2_2(r) PW_LANE2(r, 2)
#define PW_LANE2_3(r) PW_LANE2(r, 3)
#define PW_LANE1(r, l) c##r##_0 = vfmaq_laneq_f32(c##r##_0, w0, va##r, l);
#define PW_LANE1_0(r) PW_LANE1(r, 0)
#define PW_LANE1_1(r) PW_LANE1(r, 1)
#define PW_LANE1_2(r) PW_LANE1(r, 2)
#define PW_LANE1_3(r) PW_LANE1(r, 3)
#define PW_STEP2(ROWS, l)                                                                    \
    {                                                                                        \
        const vf w0 = W_LOAD(w), w1 = W_LOAD(w + VW);                                        \
        w += PW_NR;                                                                          \
        ROWS(PW_LANE2_##l)                                                                   \
    }
#define PW_STEP1(ROWS, l)                                                                    \
    {                                                                                        \
        const vf w0 = W_LOAD(w);                                                             \
        w += VW;                                                                             \
        ROWS(PW_LANE1_##l)                                                                   \
    }
#define PW_KLOOP2(ROWS)                                                                      \
    for (k = 0; k + 4 <= t->k; k += 4) {                                                     \
        MNV3_PREFETCH_STEP(pf, pf_end);                                                      \
        {                                                                                    \
            ROWS(PW_LOADA)                                                                   \
            PW_STEP2(ROWS, 0)                                                                \
            PW_STEP2(ROWS, 1)                                                                \
            PW_STEP2(ROWS, 2)                                                                \
            PW_STEP2(ROWS, 3)                                                                \
        }                                                                                    \
    }                                                                                        \
    for (; k < t->k; ++k) {                                                                  \
        const vf w0 = W_LOAD(w), w1 = W_LOAD(w + VW);                                        \
        w += PW_NR;                                                                          \
        ROWS(PW_FMA2)                                                                        \
    }
#define PW_KLOOP1(ROWS)                                                                      \
    for (k = 0; k + 4 <= t->k; k += 4) {                                                     \
        MNV3_PREFETCH_STEP(pf, pf_end);                                                      \
        {                                                                                    \
            ROWS(PW_LOADA)                                                                   \
            PW_STEP1(ROWS, 0)                                                                \
            PW_STEP1(ROWS, 1)                                                                \
            PW_STEP1(ROWS, 2)                                                                \
            PW_STEP1(ROWS, 3)                                                                \
        }                                                                                    \
    }                                                                                        \
    for (; k < t->k; ++k) {                                                                  \
        const vf w0 = W_LOAD(w);                                                             \
        w += VW;                                                                             \
        ROWS(PW_FMA1)                                                                        \
    }
#endif

#include "simd_f32.h"

#else
/* ISO C wants at least one declaration in a translation unit. */
typedef int mnv3_arm_neon_unused;
#endif
