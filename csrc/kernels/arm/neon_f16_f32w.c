/* Relaxed precision (float16 arithmetic, neon_f16_body.h) for models
 * with float32 weights: packing rounds them to float16 (to nearest even); the GEMV reads
 * the float32 weights in place. Its rows join the neon set id, for contexts configured
 * with MNV3_PRECISION_RELAXED on a CPU with asimdhp (dispatch.c). */
#include "kernels/float_impl.h"

#if defined(MNV3_HAVE_NEON_FP16)
#include "base/half.h"

#define SIMD_SET mnv3_kernel_set_neon_f16_f32w
#define SIMD_NAME "neon-f16-f32w"
#define SIMD_WTYPE MNV3_DTYPE_F32
#define UK_PREC f16
#define W_CANON_T float
#define W_FROM_CANON(x) mnv3_f32_to_f16(x)
#define F16A_CANON_LOAD8(p, lo, hi)                                                            \
    do {                                                                                     \
        (lo) = vld1q_f32(p);                                                                 \
        (hi) = vld1q_f32((p) + 4);                                                           \
    } while (0)

#include "neon_f16_body.h"

#else
typedef int mnv3_arm_neon_f16_f32w_unused;
#endif
