/* Relaxed precision on AArch64 cores with FP16 arithmetic (ARMv8.2 FEAT_FP16, HWCAP
 * asimdhp): the pointwise GEMM multiplies and accumulates in float16, FMLA .8h, eight
 * output channels per instruction where float32 has four. Packed weights are float16; the
 * other layers widen them (FCVTL) and compute in float32, as the float16-weight rows do.
 * Included by arm_neon_hp_f16w.c (float16 models) and arm_neon_hp_f32w.c (float32 models,
 * rounded to float16 at packing), which set W_CANON_T and how to read it, then include
 * arm_neon.c.
 *
 * A tile's accumulators start at its float32 bias rounded to float16 and end widened back
 * to float32 for the epilogue, residual and channel sums, which stay float32; activations
 * between layers are float32. Eight k steps share one load and narrowing of each row's
 * inputs, multiplied by lane. */
#if defined(__aarch64__)
#include <arm_neon.h>

#define SIMD_VARIANT 1
#define SIMD_ATTR __attribute__((target("arch=armv8.2-a+fp16")))
#define SIMD_SUPPORTED mnv3_cpu_has_asimdhp
#define SIMD_ATYPE MNV3_DTYPE_F16
#define W_T uint16_t
#define W_LOAD(p) vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)))

#define HP_W8(w) vreinterpretq_f16_u16(vld1q_u16(w))
#define HP_W4(w) vreinterpret_f16_u16(vld1_u16(w))
#define HP_LOADA(r)                                                                          \
    const float16x8_t ah##r =                                                                \
        vcombine_f16(vcvt_f16_f32(vld1q_f32(a##r + k)), vcvt_f16_f32(vld1q_f32(a##r + k + 4)));

#define HP_DECL2(r) float16x8_t h##r = vcombine_f16(vcvt_f16_f32(c##r##_0), vcvt_f16_f32(c##r##_1));
#define HP_BACK2(r)                                                                          \
    c##r##_0 = vcvt_f32_f16(vget_low_f16(h##r));                                             \
    c##r##_1 = vcvt_high_f32_f16(h##r);
#define HP_LANE2(r, l) h##r = vfmaq_laneq_f16(h##r, wh, ah##r, l);
#define HP_ONE2(r) h##r = vfmaq_n_f16(h##r, wh, (float16_t)a##r[k]);
#define HP_DECL1(r) float16x4_t h##r = vcvt_f16_f32(c##r##_0);
#define HP_BACK1(r) c##r##_0 = vcvt_f32_f16(h##r);
#define HP_LANE1(r, l) h##r = vfma_laneq_f16(h##r, wh, ah##r, l);
#define HP_ONE1(r) h##r = vfma_n_f16(h##r, wh, (float16_t)a##r[k]);

#define HP_L2_0(r) HP_LANE2(r, 0)
#define HP_L2_1(r) HP_LANE2(r, 1)
#define HP_L2_2(r) HP_LANE2(r, 2)
#define HP_L2_3(r) HP_LANE2(r, 3)
#define HP_L2_4(r) HP_LANE2(r, 4)
#define HP_L2_5(r) HP_LANE2(r, 5)
#define HP_L2_6(r) HP_LANE2(r, 6)
#define HP_L2_7(r) HP_LANE2(r, 7)
#define HP_L1_0(r) HP_LANE1(r, 0)
#define HP_L1_1(r) HP_LANE1(r, 1)
#define HP_L1_2(r) HP_LANE1(r, 2)
#define HP_L1_3(r) HP_LANE1(r, 3)
#define HP_L1_4(r) HP_LANE1(r, 4)
#define HP_L1_5(r) HP_LANE1(r, 5)
#define HP_L1_6(r) HP_LANE1(r, 6)
#define HP_L1_7(r) HP_LANE1(r, 7)

#define HP_STEP(ROWS, LOADW, WIDTH, l)                                                       \
    {                                                                                        \
        const LOADW;                                                                         \
        w += WIDTH;                                                                          \
        ROWS(l)                                                                              \
    }
#define HP_KLOOP(ROWS, DECL, BACK, ONE, LOADW, WIDTH, L)                                     \
    {                                                                                        \
        ROWS(DECL)                                                                           \
        for (k = 0; k + 8 <= t->k; k += 8) {                                                 \
            MNV3_PREFETCH_STEP(pf, pf_end);                                                  \
            {                                                                                \
                ROWS(HP_LOADA)                                                               \
                HP_STEP(ROWS, LOADW, WIDTH, L##0)                                            \
                HP_STEP(ROWS, LOADW, WIDTH, L##1)                                            \
                HP_STEP(ROWS, LOADW, WIDTH, L##2)                                            \
                HP_STEP(ROWS, LOADW, WIDTH, L##3)                                            \
                HP_STEP(ROWS, LOADW, WIDTH, L##4)                                            \
                HP_STEP(ROWS, LOADW, WIDTH, L##5)                                            \
                HP_STEP(ROWS, LOADW, WIDTH, L##6)                                            \
                HP_STEP(ROWS, LOADW, WIDTH, L##7)                                            \
            }                                                                                \
        }                                                                                    \
        for (; k < t->k; ++k) HP_STEP(ROWS, LOADW, WIDTH, ONE)                               \
        ROWS(BACK)                                                                           \
    }
#define PW_KLOOP2(ROWS)                                                                      \
    HP_KLOOP(ROWS, HP_DECL2, HP_BACK2, HP_ONE2, float16x8_t wh = HP_W8(w), PW_NR, HP_L2_)
#define PW_KLOOP1(ROWS)                                                                      \
    HP_KLOOP(ROWS, HP_DECL1, HP_BACK1, HP_ONE1, float16x4_t wh = HP_W4(w), VW, HP_L1_)

#include "arm_neon.c"
#endif
