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

/* Monotonic clock in nanoseconds. */
unsigned long long mnv3tools_now_ns(void);

#ifdef __cplusplus
}
#endif
#endif
