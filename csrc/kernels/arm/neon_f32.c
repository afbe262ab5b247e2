/* NEON primitives for the float32 microkernels (simd_f32.h), for AArch64 (ASIMD) and
 * 32-bit ARM with NEON-VFPv4. NEON has no masked loads, so a partial vector (channel counts
 * that are not a multiple of 4) is read and written a lane at a time; MobileNetV3's channel
 * counts are multiples of 8, so only odd shapes take that path. ARMv7 has half the vector
 * registers, hence the smaller tiles there. */
#include "kernels/float_impl.h"

#if defined(MNV3_HAVE_NEON_KERNELS)

#include <arm_neon.h>
#include <string.h>

/* A variant (neon_f16w.c, neon_f16*.c: other weight types or arithmetic) defines
 * SIMD_VARIANT, its set, attribute and CPU check, and gets the generic float32 body with its
 * weight hooks: the float32-only parts below (the tuned k loops and the generated GEMM
 * tiles) are this file's own set's; the float16-weight variant (which sets
 * NEON_DW_VARIANT) shares the depthwise, stem and GEMV microkernels. */
#define SIMD_ISAS (1u << MNV3_ISA_NEON)
#if !defined(SIMD_VARIANT)
#define SIMD_ATTR
#define SIMD_SET mnv3_kernel_set_neon
#define SIMD_NAME "neon"
/* The GEMM tiles the float16-weight and relaxed rows borrow. */
#define PW_IMPL_NAME mnv3_neon_f32_gemm
/* Every AArch64 core has ASIMD; an ARMv7 build for NEON requires it. */
#define SIMD_SUPPORTED NULL
#endif
#define SIMD_ISA neon
#define SIMD_NR 8
#define SIMD_VW 4
#define VW 4
/* Depthwise: 8 outputs at once, 8 independent FMLA chains, enough for a 4-cycle FMLA on
 * two pipes. (With 5x5 weights, and on ARMv7 with any, the weights no longer all fit in
 * registers beside the accumulators and are reloaded from L1.) */
#define DW_G3 8
#define DW_G5 8
#if defined(__aarch64__)
/* 8 rows x 2 vectors = 16 accumulators of the 32 registers. */
#define PW_MR 8
#else
/* 4 rows x 2 vectors = 8 accumulators of the 16 Q registers. */
#define PW_MR 4
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

/* Every panel is whole (out_channels round up to 8): no narrow tiles, whose short loops
 * would have half the accumulators. */
#define PW_ONLY_WIDE 1

/* AArch64's own 3x3 and 5x5 depthwise loops (arm/neon_dw.h), for the float32 set and the
 * float16-weight variant (which sets NEON_DW_VARIANT). */
#if defined(__aarch64__) && (!defined(SIMD_VARIANT) || defined(NEON_DW_VARIANT))
#define DW_OWN_SHAPES 1
#define DW_OWN_ANY 1
#endif
/* ARMv7's own depthwise loops, every shape (arm/neon_dw_a32.h). */
#if !defined(__aarch64__) && (!defined(SIMD_VARIANT) || defined(NEON_DW_VARIANT))
#define DW_OWN_SHAPES 1
#define DW_OWN_ANY 1
#endif

#if !defined(SIMD_VARIANT) || defined(NEON_DW_VARIANT) || defined(CONV_WIDEN)
/* The stem as GEMM tiles over patches (arm/neon_conv.h): PW_MR pixels x 8 channels a tile. */
#define CONV_OWN 1
#define CONV_UKERNEL UK_NAME(conv_, UK_TILE(PW_MR, SIMD_NR), SIMD_ISA)
#define CONV_NAME UK_STR(UK_PREC) "_conv_" UK_STR(PW_MR) "x" UK_STR(SIMD_NR) "__" UK_STR(SIMD_ISA)
#endif

#if !defined(SIMD_VARIANT)
#if defined(__aarch64__)
/* The GEMM tiles are generated assembly for every AArch64 core (below, after the body). */
#define PW_OWN_TILES 1

#else
/* ARMv7: a post-indexed VLD1 (what the compiler picks for a walking pointer) costs a second
 * micro-op for the address write-back, and a load-and-broadcast of an input costs two. Here
 * the loads are written out: weights by VLD1 from an address register, two k steps of
 * each row's inputs by one VLDR with an immediate offset, both one micro-op. ARMv7 has no
 * fused multiply-add by scalar; VMLA by scalar multiplies by the input's lane without a
 * broadcast (and a register for it: broadcasts spilled the 16 Q registers), rounding the
 * product before the addition as the reference's float arithmetic does. */
V_INLINE vf pw_load_q(const float *p) {
    vf v;
    __asm__("vld1.32 {%e0-%f0}, [%1]" : "=w"(v) : "r"(p), "m"(*(const float(*)[4])p));
    return v;
}
V_INLINE float32x2_t pw_load_d(const float *p) {
    float32x2_t v;
    __asm__("vldr %P0, %1" : "=w"(v) : "Uv"(*(const float(*)[2])p));
    return v;
}
#define PW_LOADA(r) const float32x2_t va##r = pw_load_d(a##r + kp);
#define PW_MLA2_0(r) PW_MLA2(r, 0)
#define PW_MLA2_1(r) PW_MLA2(r, 1)
#define PW_MLA2(r, l)                                                                        \
    c##r##_0 = vmlaq_lane_f32(c##r##_0, w0, va##r, l);                                       \
    c##r##_1 = vmlaq_lane_f32(c##r##_1, w1, va##r, l);
#define PW_STEP2(ROWS, LANE)                                                                 \
    {                                                                                        \
        const vf w0 = pw_load_q(w), w1 = pw_load_q(w + VW);                                  \
        w += PW_NR;                                                                          \
        ROWS(LANE)                                                                           \
    }
#define PW_MLA1(r)                                                                           \
    c##r##_0 = vmlaq_n_f32(c##r##_0, w0, a##r[k]);                                           \
    c##r##_1 = vmlaq_n_f32(c##r##_1, w1, a##r[k]);
/* Steps kp and kp + 1 from one load of each row's inputs. */
#define PW_KPAIR(ROWS, K)                                                                    \
    {                                                                                        \
        const uint32_t kp = (K);                                                             \
        ROWS(PW_LOADA)                                                                       \
        PW_STEP2(ROWS, PW_MLA2_0)                                                            \
        PW_STEP2(ROWS, PW_MLA2_1)                                                            \
    }
#define PW_KTAIL2(ROWS)                                                                      \
    if (k < t->k) {                                                                          \
        const vf w0 = v_load(w), w1 = v_load(w + VW);                                        \
        w += PW_NR;                                                                          \
        ROWS(PW_MLA1)                                                                        \
        ++k;                                                                                 \
    }
#define PW_KLOOP2(ROWS)                                                                      \
    for (k = 0; k + 4 <= t->k; k += 4) {                                                     \
        MNV3_PREFETCH_STEP(pf, pf_end);                                                      \
        PW_KPAIR(ROWS, k)                                                                    \
        PW_KPAIR(ROWS, k + 2)                                                                \
    }                                                                                        \
    /* the last k % 4 steps: at most three, straight-line */                                 \
    PW_KTAIL2(ROWS)                                                                          \
    PW_KTAIL2(ROWS)                                                                          \
    PW_KTAIL2(ROWS)
#endif

#endif

#if !defined(SIMD_VARIANT) || defined(NEON_DW_VARIANT)
/* Eight rows share each input load, eight independent FMLA chains (the float32 set's and
 * the float16-weight variant's). */
#define NEON_GEMV 1
#define GEMV_MR 8
#define GEMV_UKERNEL UK_NAME(gemv_, 8x, SIMD_ISA)
#define GEMV_NAME UK_STR(UK_PREC) "_gemv_8x__" UK_STR(SIMD_ISA)
#endif

#include "kernels/simd_f32.h"

#if defined(DW_OWN_SHAPES) && defined(__aarch64__)
#include "neon_dw.h"
#elif defined(DW_OWN_SHAPES)
#include "neon_dw_a32.h"
#endif

#if defined(NEON_GEMV)
#if defined(__aarch64__)
/* The accumulators' (v0-v7) load and store around the loop, and its 16 FMLAs: rows' weights
 * of the step's first 4 inputs in v16-v23, of the next 4 in v24-v29, v14, v15; the inputs in
 * v30, v31. */
#define GEMV_ACC_LOAD                                                                        \
    "ldp q0, q1, [%[s]]\n\t"                                                                 \
    "ldp q2, q3, [%[s], #32]\n\t"                                                            \
    "ldp q4, q5, [%[s], #64]\n\t"                                                            \
    "ldp q6, q7, [%[s], #96]\n\t"
#define GEMV_ACC_STORE                                                                       \
    "stp q0, q1, [%[s]]\n\t"                                                                 \
    "stp q2, q3, [%[s], #32]\n\t"                                                            \
    "stp q4, q5, [%[s], #64]\n\t"                                                            \
    "stp q6, q7, [%[s], #96]\n\t"
#define GEMV_FMLAS                                                                           \
    "fmla v0.4s, v16.4s, v30.4s\n\t"                                                         \
    "fmla v1.4s, v17.4s, v30.4s\n\t"                                                         \
    "fmla v2.4s, v18.4s, v30.4s\n\t"                                                         \
    "fmla v3.4s, v19.4s, v30.4s\n\t"                                                         \
    "fmla v4.4s, v20.4s, v30.4s\n\t"                                                         \
    "fmla v5.4s, v21.4s, v30.4s\n\t"                                                         \
    "fmla v6.4s, v22.4s, v30.4s\n\t"                                                         \
    "fmla v7.4s, v23.4s, v30.4s\n\t"                                                         \
    "fmla v0.4s, v24.4s, v31.4s\n\t"                                                         \
    "fmla v1.4s, v25.4s, v31.4s\n\t"                                                         \
    "fmla v2.4s, v26.4s, v31.4s\n\t"                                                         \
    "fmla v3.4s, v27.4s, v31.4s\n\t"                                                         \
    "fmla v4.4s, v28.4s, v31.4s\n\t"                                                         \
    "fmla v5.4s, v29.4s, v31.4s\n\t"                                                         \
    "fmla v6.4s, v14.4s, v31.4s\n\t"                                                         \
    "fmla v7.4s, v15.4s, v31.4s\n\t"
#define GEMV_CLOBBERS                                                                        \
    "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v14", "v15", "v16", "v17", "v18", "v19", \
        "v20", "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31",  \
        "cc", "memory"

/* o[j]: row j's byte offset from row 0. */
#define GEMV_OFFSETS(o, w)                                                                   \
    do {                                                                                     \
        uint32_t j_;                                                                         \
        for (j_ = 0; j_ < 8; ++j_)                                                           \
            o[j_] = (uint64_t)((const char *)(w)[j_] - (const char *)(w)[0]);                \
    } while (0)

#endif
#if defined(__aarch64__) && !defined(SIMD_VARIANT)
/* n >= 1 steps of 8 inputs for the eight rows w[0..8): the 16 weight and 2 input loads of a
 * step as one group ahead of its 16 FMLAs (the schedule of generate/neon_f32_gemm.py: an in-order
 * core then waits for the previous FMLAs once per step, not once per load), addressed from
 * two bases and the rows' byte offsets, one micro-op each. s[0..8) are the rows' sums. A
 * GEMV reads each weight once: one 128-bit load per FMLA, which the in-order cores do not
 * issue beside it, holds those below half of the FMLA bound whatever the schedule. */
static inline __attribute__((always_inline)) void gemv_steps8(const float *x,
                                                                const float *const *w,
                                                                uint64_t n, vf *s) {
    const float *p = w[0], *p16 = w[0] + VW;
    uint64_t o[8];
    GEMV_OFFSETS(o, w);
    __asm__ volatile(
        GEMV_ACC_LOAD
        ".Lgemv_loop%=:\n\t"
        "ldr q30, [%[x]]\n\t"
        "ldr q16, [%[p]]\n\t"
        "ldr q31, [%[x], #16]\n\t"
        "ldr q24, [%[p16]]\n\t"
        "ldr q17, [%[p], %[o1]]\n\t"
        "ldr q25, [%[p16], %[o1]]\n\t"
        "ldr q18, [%[p], %[o2]]\n\t"
        "add %[x], %[x], #32\n\t"
        "ldr q26, [%[p16], %[o2]]\n\t"
        "ldr q19, [%[p], %[o3]]\n\t"
        "ldr q27, [%[p16], %[o3]]\n\t"
        "ldr q20, [%[p], %[o4]]\n\t"
        "ldr q28, [%[p16], %[o4]]\n\t"
        "ldr q21, [%[p], %[o5]]\n\t"
        "ldr q29, [%[p16], %[o5]]\n\t"
        "ldr q22, [%[p], %[o6]]\n\t"
        "ldr q14, [%[p16], %[o6]]\n\t"
        "subs %[n], %[n], #1\n\t"
        "ldr q23, [%[p], %[o7]]\n\t"
        "ldr q15, [%[p16], %[o7]]\n\t"
        "add %[p], %[p], #32\n\t"
        "add %[p16], %[p16], #32\n\t"
        GEMV_FMLAS
        "b.ne .Lgemv_loop%=\n\t"
        GEMV_ACC_STORE
        : [x] "+r"(x), [p] "+r"(p), [p16] "+r"(p16), [n] "+r"(n)
        : [s] "r"(s), [o1] "r"(o[1]), [o2] "r"(o[2]), [o3] "r"(o[3]), [o4] "r"(o[4]),
          [o5] "r"(o[5]), [o6] "r"(o[6]), [o7] "r"(o[7])
        : GEMV_CLOBBERS);
}
#define GEMV_STEPS8 gemv_steps8
#elif defined(__aarch64__)
/* As gemv_steps8, float16 weights: one 128-bit load per row and step, widened by FCVTL and
 * FCVTL2, all of a step's conversions between its loads and its FMLAs. */
static inline __attribute__((always_inline)) void gemv_f16_steps8(const float *x,
                                                                    const uint16_t *const *w,
                                                                    uint64_t n, vf *s) {
    const uint16_t *p = w[0];
    uint64_t o[8];
    GEMV_OFFSETS(o, w);
    __asm__ volatile(
        GEMV_ACC_LOAD
        ".Lgemv16_loop%=:\n\t"
        "ldr q30, [%[x]]\n\t"
        "ldr q16, [%[p]]\n\t"
        "ldr q31, [%[x], #16]\n\t"
        "ldr q17, [%[p], %[o1]]\n\t"
        "ldr q18, [%[p], %[o2]]\n\t"
        "add %[x], %[x], #32\n\t"
        "ldr q19, [%[p], %[o3]]\n\t"
        "ldr q20, [%[p], %[o4]]\n\t"
        "subs %[n], %[n], #1\n\t"
        "ldr q21, [%[p], %[o5]]\n\t"
        "ldr q22, [%[p], %[o6]]\n\t"
        "ldr q23, [%[p], %[o7]]\n\t"
        "add %[p], %[p], #16\n\t"
        "fcvtl2 v24.4s, v16.8h\n\t"
        "fcvtl v16.4s, v16.4h\n\t"
        "fcvtl2 v25.4s, v17.8h\n\t"
        "fcvtl v17.4s, v17.4h\n\t"
        "fcvtl2 v26.4s, v18.8h\n\t"
        "fcvtl v18.4s, v18.4h\n\t"
        "fcvtl2 v27.4s, v19.8h\n\t"
        "fcvtl v19.4s, v19.4h\n\t"
        "fcvtl2 v28.4s, v20.8h\n\t"
        "fcvtl v20.4s, v20.4h\n\t"
        "fcvtl2 v29.4s, v21.8h\n\t"
        "fcvtl v21.4s, v21.4h\n\t"
        "fcvtl2 v14.4s, v22.8h\n\t"
        "fcvtl v22.4s, v22.4h\n\t"
        "fcvtl2 v15.4s, v23.8h\n\t"
        "fcvtl v23.4s, v23.4h\n\t"
        GEMV_FMLAS
        "b.ne .Lgemv16_loop%=\n\t"
        GEMV_ACC_STORE
        : [x] "+r"(x), [p] "+r"(p), [n] "+r"(n)
        : [s] "r"(s), [o1] "r"(o[1]), [o2] "r"(o[2]), [o3] "r"(o[3]), [o4] "r"(o[4]),
          [o5] "r"(o[5]), [o6] "r"(o[6]), [o7] "r"(o[7])
        : GEMV_CLOBBERS);
}
#define GEMV_STEPS8 gemv_f16_steps8
#endif

/* A last block of fewer than eight outputs repeats its last row instead of running a loop
 * of its own with fewer chains. */
SIMD_FN void GEMV_UKERNEL(const float *x, const void *w_, uint32_t I, uint32_t count,
                          float *dots) {
    const W_CANON_T *W = (const W_CANON_T *)w_;
    const uint32_t iv = I / VW * VW;
    const vmask m = v_mask(I - iv);
    const W_CANON_T *w[GEMV_MR];
    vf s[GEMV_MR];
    uint32_t i = 0, j;
#pragma GCC unroll 8
    for (j = 0; j < GEMV_MR; ++j) {
        w[j] = W + (size_t)(j < count ? j : count - 1) * I;
        s[j] = v_zero();
    }
#if defined(__aarch64__)
    i = I / 8 * 8;
    if (i) GEMV_STEPS8(x, w, i / 8, s);
    /* at most one more whole vector: straight-line code, not a loop */
    if (i < iv) {
        const vf xv = v_load(x + i);
#pragma GCC unroll 8
        for (j = 0; j < GEMV_MR; ++j) s[j] = v_fma(W_CANON_LOAD(w[j] + i), xv, s[j]);
        i += VW;
    }
#else
    for (; i < iv; i += VW) {
        const vf xv = v_load(x + i);
#pragma GCC unroll 8
        for (j = 0; j < GEMV_MR; ++j) s[j] = v_fma(W_CANON_LOAD(w[j] + i), xv, s[j]);
    }
#endif
    if (iv < I) {
        const vf xv = v_loadm(x + iv, m);
#pragma GCC unroll 8
        for (j = 0; j < GEMV_MR; ++j) s[j] = v_fma(W_CANON_LOADM(w[j] + iv, I - iv), xv, s[j]);
    }
    {
        /* constant indices keep s[] in registers through the loop */
        float d[GEMV_MR];
#pragma GCC unroll 8
        for (j = 0; j < GEMV_MR; ++j) d[j] = v_hsum(s[j]);
        memcpy(dots, d, count * sizeof(float));
    }
}
#endif /* NEON_GEMV */

#if !defined(SIMD_VARIANT)

#if defined(__aarch64__)
/* ------------------------------------------------------------------------------------ */
/* GEMM tiles                                                                            */
/* ------------------------------------------------------------------------------------ */

/* The tiles (8 x 8 at most, the body's packing) of every AArch64 core: the k loop is the
 * generated assembly of generated/neon_f32_gemm_loops.h, scheduled for in-order cores (Cortex-A53, A55;
 * its generator explains how), where the order of the instructions is the order they run.
 * An out-of-order core reorders it anyway: on LLVM's Neoverse N1 and A57 models it
 * measures at least as high as the compiler's own lane loop at every tile height, so one
 * schedule serves every core and no core detection is needed. The rest is C: the bias,
 * the k % 8 steps after the loop, the epilogue. acc[r * 2 + col] is row r's output vector
 * col. Every tile height adds a pixel's products in k order, one accumulator per output
 * vector, so a pixel's result depends neither on its tile nor on the thread count. */
#include "kernels/generated/neon_f32_gemm_loops.h"

SIMD_INLINE void pwio_begin(const mnv3_gemm_tile *t, const uint32_t MR, const float **a,
                            pw_cols *cols, vf *b0, vf *b1) {
    uint32_t r;
    if (t->nc >= PW_NR) {
        cols->full0 = cols->full1 = 1;
        cols->m0 = cols->m1 = v_mask(VW);
    } else {
        *cols = pw_columns(t->nc);
    }
    *b0 = *b1 = v_zero();
    if (t->bias) {
        *b0 = load_part(t->bias, cols->full0, cols->m0);
        *b1 = load_part(t->bias + VW, cols->full1, cols->m1);
    }
#pragma GCC unroll 8
    for (r = 0; r < MR; ++r) a[r] = t->a + (size_t)r * t->a_stride;
}

/* The accumulators as the assembly starts them, for k < 8 where it does not run. */
SIMD_INLINE void pwio_init(const uint32_t MR, vf *acc, vf b0, vf b1) {
    uint32_t r;
#pragma GCC unroll 8
    for (r = 0; r < MR; ++r) {
        acc[2 * r] = b0;
        acc[2 * r + 1] = b1;
    }
}

/* k % 8 steps left after the loop (n < 8): a block of four by lane, then single steps. */
SIMD_INLINE void pwio_tail(const uint32_t MR, vf *acc, const float **a,
                           const float *w, uint32_t n) {
    uint32_t r, k;
    if (n >= 4) {
        const vf w0 = v_load(w), w1 = v_load(w + 4), w2 = v_load(w + 8), w3 = v_load(w + 12);
        const vf w4 = v_load(w + 16), w5 = v_load(w + 20), w6 = v_load(w + 24);
        const vf w7 = v_load(w + 28);
#pragma GCC unroll 8
        for (r = 0; r < MR; ++r) {
            vf *c = acc + 2 * r;
            const vf va = v_load(a[r]);
            c[0] = vfmaq_laneq_f32(c[0], w0, va, 0);
            c[1] = vfmaq_laneq_f32(c[1], w1, va, 0);
            c[0] = vfmaq_laneq_f32(c[0], w2, va, 1);
            c[1] = vfmaq_laneq_f32(c[1], w3, va, 1);
            c[0] = vfmaq_laneq_f32(c[0], w4, va, 2);
            c[1] = vfmaq_laneq_f32(c[1], w5, va, 2);
            c[0] = vfmaq_laneq_f32(c[0], w6, va, 3);
            c[1] = vfmaq_laneq_f32(c[1], w7, va, 3);
            a[r] += 4;
        }
        w += 32;
        n -= 4;
    }
    /* at most three: straight-line code, not a loop */
#pragma GCC unroll 3
    for (k = 0; k < 3; ++k) {
        if (k < n) {
            const vf w0 = v_load(w), w1 = v_load(w + VW);
#pragma GCC unroll 8
            for (r = 0; r < MR; ++r) {
                const vf av = v_set1(a[r][k]);
                acc[2 * r] = v_fma(av, w0, acc[2 * r]);
                acc[2 * r + 1] = v_fma(av, w1, acc[2 * r + 1]);
            }
            w += PW_NR;
        }
    }
}

SIMD_INLINE void pwio_end(const mnv3_gemm_tile *t, const uint32_t MR, const vf *acc,
                          const pw_cols *cols) {
    const simd_ep *ep = (const simd_ep *)t->params;
    vf s0 = v_zero(), s1 = v_zero();
    uint32_t r;
#pragma GCC unroll 8
    for (r = 0; r < MR; ++r) {
        pw_finish(t, ep, cols, acc[2 * r], r, 0, &s0);
        pw_finish(t, ep, cols, acc[2 * r + 1], r, 1, &s1);
    }
    if (t->sums) {
        add_sums(t->sums, s0, cols->m0);
        add_sums(t->sums + VW, s1, cols->m1);
    }
}

#define PW_GENERATED_KERNEL(MR)                                                                \
    SIMD_FN void UK_NAME(gemm_, UK_TILE(MR, SIMD_NR), SIMD_ISA)(const mnv3_gemm_tile *t) {   \
        const uint32_t k8 = t->k / 8;                                                        \
        const float *w = (const float *)t->w;                                                \
        const char *pf = *t->pf;                                                             \
        const float *a[MR];                                                                  \
        vf acc[16], bias[2];                                                                 \
        pw_cols cols;                                                                        \
        pwio_begin(t, MR, a, &cols, &bias[0], &bias[1]);                                     \
        if (k8)                                                                              \
            f32_gemm_kloop_##MR(a, &w, k8, &pf, t->pf_end, bias, acc);                     \
        else                                                                                 \
            pwio_init(MR, acc, bias[0], bias[1]);                                            \
        *t->pf = pf;                                                                         \
        pwio_tail(MR, acc, a, w, t->k - k8 * 8);                                             \
        pwio_end(t, MR, acc, &cols);                                                         \
    }
PW_GENERATED_KERNEL(1)
PW_GENERATED_KERNEL(2)
PW_GENERATED_KERNEL(3)
PW_GENERATED_KERNEL(4)
PW_GENERATED_KERNEL(5)
PW_GENERATED_KERNEL(6)
PW_GENERATED_KERNEL(7)
PW_GENERATED_KERNEL(8)

#endif

#endif /* !SIMD_VARIANT */

#if defined(CONV_OWN)
#include "neon_conv.h"
#endif

#else
/* ISO C wants at least one declaration in a translation unit. */
typedef int mnv3_arm_neon_unused;
#endif
