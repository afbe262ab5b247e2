/* Relaxed precision (float16 arithmetic, neon_f16_body.h) for models
 * with float16 weights: packing copies them. Its rows join the neon set id, for contexts
 * configured with MNV3_PRECISION_RELAXED on a CPU with asimdhp (dispatch.c). */
#include "kernels/float_impl.h"

#if defined(MNV3_HAVE_NEON_FP16)
#define SIMD_SET mnv3_kernel_set_neon_f16
#define SIMD_NAME "neon-f16"
#define SIMD_WTYPE MNV3_DTYPE_F16
#define UK_PREC f16
#define W_CANON_T uint16_t
#define W_CANON_LOAD(p) W_LOAD(p)
#define W_CANON_LOADM(p, n) f16a_loadm_f16((p), (n))
/* Eight canonical weights as two float32 vectors: one load, widened in two halves. */
#define F16A_CANON_LOAD8(p, lo, hi)                                                            \
    do {                                                                                     \
        const float16x8_t w8_ = vreinterpretq_f16_u16(vld1q_u16(p));                         \
        (lo) = vcvt_f32_f16(vget_low_f16(w8_));                                              \
        (hi) = vcvt_high_f32_f16(w8_);                                                       \
    } while (0)

#include <arm_neon.h>
#include <string.h>

/* The first n < 4 halves, the rest zero. */
static inline __attribute__((always_inline)) float32x4_t f16a_loadm_f16(const uint16_t *p,
                                                                      uint32_t n) {
    uint16_t part[4] = {0, 0, 0, 0};
    memcpy(part, p, n * sizeof *p);
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(part)));
}

#include "neon_f16_body.h"

#else
typedef int mnv3_arm_neon_f16_unused;
#endif
