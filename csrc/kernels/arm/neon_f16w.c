/* NEON rows for float16 weights with float32 arithmetic: the float32 body (simd_f32.h) with
 * the weight loads widened by FCVTL (AArch64) or VCVT.F32.F16 (ARMv7 with the half-precision
 * extension, -mfp16-format=ieee), so packed weights stay float16 and stream at half the
 * bytes. An ARMv7 build without the extension converts them once, at packing, instead (the
 * model's own weights stay float16 either way). Its rows join the neon set id (dispatch.c). */
#include "kernels/float_impl.h"

#if defined(MNV3_HAVE_NEON_KERNELS)
#include <arm_neon.h>
#include <string.h>

#include "base/half.h"

#define SIMD_VARIANT 1
#define NEON_DW_VARIANT 1
#define SIMD_ATTR
#define SIMD_SET mnv3_kernel_set_neon_f16w
#define SIMD_NAME "neon-f16w"
#define SIMD_SUPPORTED NULL
#define SIMD_WTYPE MNV3_DTYPE_F16
#define UK_PREC f16w
#define W_CANON_T uint16_t
#if defined(__aarch64__) || (defined(__ARM_FP16_FORMAT_IEEE) && (__ARM_FP & 2))
#define W_LOAD(p) vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)))
#define W_CANON_LOAD(p) W_LOAD(p)
#else
#define W_T float
#define W_FROM_CANON(x) mnv3_f16_to_f32(x)
#define W_CANON_LOAD(p) f16_load_portable((p), 4)
#endif
#define W_CANON_LOADM(p, n) f16_load_portable((p), (n))

/* n <= 4 halves converted in portable code (tails; and every GEMV load without the
 * extension), the other lanes zero. */
static inline __attribute__((always_inline)) float32x4_t f16_load_portable(const uint16_t *p,
                                                                          uint32_t n) {
    float lanes[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    uint32_t i;
    for (i = 0; i < n; ++i) lanes[i] = mnv3_f16_to_f32(p[i]);
    return vld1q_f32(lanes);
}

#if defined(W_LOAD)
/* The GEMM and the stem run the float32 set's tiles on widened weights: the pointwise
 * driver widens each panel into the workspace (drivers/float.c), so a weight is converted once
 * per chunk of up to 64 rows rather than once per tile, and the stem its few weights once
 * per output row (neon_conv.h). The set has no GEMM tiles of its own. */
void mnv3_neon_widen_f16(const void *src, size_t n, float *dst) {
    const uint16_t *s = (const uint16_t *)src;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        vst1q_f32(dst + i, W_LOAD(s + i));
        vst1q_f32(dst + i + 4, W_LOAD(s + i + 4));
    }
    for (; i < n; ++i) dst[i] = mnv3_f16_to_f32(s[i]);
}

#define PW_WIDEN mnv3_neon_widen_f16
#define PW_TILES (&mnv3_neon_f32_gemm)
#define PW_BORROWED_TILES 1
#define CONV_WIDEN mnv3_neon_widen_f16
#endif

#include "neon_f32.c"

#else
typedef int mnv3_arm_neon_f16_unused;
#endif
