/* What the x86 float16-weight files (avx2_f16w.c, avx512_f16w.c) share: the weight
 * hooks of simd_f32.h for float16 canonical and packed weights, widened by F16C. Each file
 * first defines SIMD_ATTR, F16_VEC (its float vector type), W_LOAD (vcvtph2ps of one
 * vector), F16_STORE (an unaligned store of one) and F16W_TILES (the float32 set's GEMM tiles), then includes this and its ISA's
 * file.
 *
 * The GEMM runs the float32 set's tiles on weights widened into the workspace, once per
 * chunk of rows rather than once per tile (drivers/float.c); packed weights stay float16.
 * The conversion is exact, so the results are the float32 set's on the same weights. The
 * stem, depthwise and GEMV widen as they load: their weights are few or read once. */
#include <string.h>

#include "base/half.h"

#define SIMD_WTYPE MNV3_DTYPE_F16
#define UK_PREC f16w
#define W_CANON_T uint16_t
#define W_CANON_LOAD(p) W_LOAD(p)
#define W_CANON_LOADM(p, n) f16_loadm((p), (n))

/* dst[i] = src[i] for n float16 weights. */
static SIMD_ATTR void f16w_widen(const void *src, size_t n, float *dst) {
    const uint16_t *s = (const uint16_t *)src;
    const size_t vw = sizeof(F16_VEC) / sizeof(float);
    size_t i = 0;
    for (; i + vw <= n; i += vw) F16_STORE(dst + i, W_LOAD(s + i));
    for (; i < n; ++i) dst[i] = mnv3_f16_to_f32(s[i]);
}
#define PW_WIDEN f16w_widen
#define PW_TILES (&F16W_TILES)
#define PW_BORROWED_TILES 1

/* The first n halves of a partial vector, the rest zero, without reading past them. */
static inline __attribute__((always_inline)) SIMD_ATTR F16_VEC f16_loadm(const uint16_t *p,
                                                                          uint32_t n) {
    uint16_t part[sizeof(F16_VEC) / sizeof(float)];
    memset(part, 0, sizeof part);
    memcpy(part, p, n * sizeof *p);
    return W_LOAD(part);
}
