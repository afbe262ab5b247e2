/* What the x86 float16-weight files (avx2_f16w.c, avx512_f16w.c) share: the weight
 * hooks of simd_f32.h for float16 canonical and packed weights, widened by F16C. Each file
 * first defines SIMD_ATTR, F16_VEC (its float vector type) and W_LOAD (vcvtph2ps of one
 * vector), then includes this and its ISA's file. */
#include <string.h>

#define SIMD_WTYPE MNV3_DTYPE_F16
#define UK_PREC f16w
#define W_CANON_T uint16_t
#define W_CANON_LOAD(p) W_LOAD(p)
#define W_CANON_LOADM(p, n) f16_loadm((p), (n))

/* The first n halves of a partial vector, the rest zero, without reading past them. */
static inline __attribute__((always_inline)) SIMD_ATTR F16_VEC f16_loadm(const uint16_t *p,
                                                                          uint32_t n) {
    uint16_t part[sizeof(F16_VEC) / sizeof(float)];
    memset(part, 0, sizeof part);
    memcpy(part, p, n * sizeof *p);
    return W_LOAD(part);
}
