/* Small measurements for the mnv3 command-line tool. */
#ifndef MNV3_TOOLS_H
#define MNV3_TOOLS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mnv3tools_peak_kind {
    MNV3TOOLS_PEAK_SCALAR = 0,  /* one-lane multiply-add chains in C */
    MNV3TOOLS_PEAK_AVX2 = 1,    /* 256-bit FMA (x86-64 with AVX2 + FMA) */
    MNV3TOOLS_PEAK_AVX512 = 2,  /* 512-bit FMA (x86-64 with AVX-512F) */
    MNV3TOOLS_PEAK_NEON = 3     /* 128-bit FMLA (AArch64) */
} mnv3tools_peak_kind;

/* Measures the single-core floating-point peak, in GFLOP/s (one FMA = 2 FLOPs), of the
 * calling thread, by running independent multiply-add chains for about `seconds` and
 * keeping the best of several slices. Returns a negative value when this build cannot
 * measure `kind` (wrong architecture). The caller must check that the CPU supports it. */
double mnv3tools_peak_gflops(mnv3tools_peak_kind kind, double seconds);

typedef enum mnv3tools_int8_peak_kind {
    MNV3TOOLS_INT8_PEAK_AVX2 = 0,        /* vpmaddwd + vpaddd on 16-bit pairs (AVX2) */
    MNV3TOOLS_INT8_PEAK_AVXVNNI = 1,     /* VEX vpdpbusd ymm (AVX-VNNI) */
    MNV3TOOLS_INT8_PEAK_AVX512VNNI = 2,  /* vpdpbusd zmm (AVX512-VNNI) */
    MNV3TOOLS_INT8_PEAK_NEON = 3,        /* smlal on 16-bit lanes (AArch64) */
    MNV3TOOLS_INT8_PEAK_SDOT = 4,        /* sdot (AArch64 dot product) */
    MNV3TOOLS_INT8_PEAK_I8MM = 5         /* smmla (AArch64 I8MM) */
} mnv3tools_int8_peak_kind;

/* Measures the single-core int8 multiply-accumulate peak of the instruction the int8
 * kernels use, in GOP/s (one multiply-accumulate = 2 operations, as for FLOPs), the same
 * way as the FMA peak. Returns a negative value when this build cannot measure `kind`;
 * the caller must check that the CPU supports it (mnv3_isa_available and the kernel set
 * the int8 rows resolve to). */
double mnv3tools_int8_peak_gops(mnv3tools_int8_peak_kind kind, double seconds);

/* Monotonic clock in nanoseconds. */
unsigned long long mnv3tools_now_ns(void);

#ifdef __cplusplus
}
#endif
#endif
