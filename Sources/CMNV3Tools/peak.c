/* Single-core FMA peak measurement. The inner loops are inline assembly, so the result
 * does not depend on the optimisation level of the build (debug builds compile C at -O0);
 * each function carries its own target attribute, so no global -m flag is needed. */
#if !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include "mnv3_tools.h"

#include <stdint.h>
#include <time.h>

unsigned long long mnv3tools_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

/* Each function runs `iterations` rounds of CHAINS independent FMAs and returns the
 * FLOPs executed. */
#define CHAINS 10
/* x86 cores have two FMA ports of latency 4 or more: 12 chains keep both busy. */
#define X86_CHAINS 12

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_X86_PEAK 1

__attribute__((target("avx2,fma"), noinline)) static double peak_avx2(uint64_t iterations) {
    uint64_t n = iterations;
    __asm__ volatile(
        "vxorps %%ymm0, %%ymm0, %%ymm0\n\t"
        "vxorps %%ymm1, %%ymm1, %%ymm1\n\t"
        "vxorps %%ymm2, %%ymm2, %%ymm2\n\t"
        "vxorps %%ymm3, %%ymm3, %%ymm3\n\t"
        "vxorps %%ymm4, %%ymm4, %%ymm4\n\t"
        "vxorps %%ymm5, %%ymm5, %%ymm5\n\t"
        "vxorps %%ymm6, %%ymm6, %%ymm6\n\t"
        "vxorps %%ymm7, %%ymm7, %%ymm7\n\t"
        "vxorps %%ymm8, %%ymm8, %%ymm8\n\t"
        "vxorps %%ymm9, %%ymm9, %%ymm9\n\t"
        "vxorps %%ymm10, %%ymm10, %%ymm10\n\t"
        "vxorps %%ymm11, %%ymm11, %%ymm11\n\t"
        "vxorps %%ymm14, %%ymm14, %%ymm14\n\t"
        "vxorps %%ymm15, %%ymm15, %%ymm15\n\t"
        "1:\n\t"
        "vfmadd231ps %%ymm15, %%ymm14, %%ymm0\n\t"
        "vfmadd231ps %%ymm15, %%ymm14, %%ymm1\n\t"
        "vfmadd231ps %%ymm15, %%ymm14, %%ymm2\n\t"
        "vfmadd231ps %%ymm15, %%ymm14, %%ymm3\n\t"
        "vfmadd231ps %%ymm15, %%ymm14, %%ymm4\n\t"
        "vfmadd231ps %%ymm15, %%ymm14, %%ymm5\n\t"
        "vfmadd231ps %%ymm15, %%ymm14, %%ymm6\n\t"
        "vfmadd231ps %%ymm15, %%ymm14, %%ymm7\n\t"
        "vfmadd231ps %%ymm15, %%ymm14, %%ymm8\n\t"
        "vfmadd231ps %%ymm15, %%ymm14, %%ymm9\n\t"
        "vfmadd231ps %%ymm15, %%ymm14, %%ymm10\n\t"
        "vfmadd231ps %%ymm15, %%ymm14, %%ymm11\n\t"
        "dec %0\n\t"
        "jnz 1b\n\t"
        "vzeroupper\n\t"
        : "+r"(n)
        :
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
          "xmm10", "xmm11", "xmm14", "xmm15", "cc");
    return (double)iterations * X86_CHAINS * 8 * 2;
}

__attribute__((target("avx512f"), noinline)) static double peak_avx512(uint64_t iterations) {
    uint64_t n = iterations;
    __asm__ volatile(
        "vpxord %%zmm0, %%zmm0, %%zmm0\n\t"
        "vpxord %%zmm1, %%zmm1, %%zmm1\n\t"
        "vpxord %%zmm2, %%zmm2, %%zmm2\n\t"
        "vpxord %%zmm3, %%zmm3, %%zmm3\n\t"
        "vpxord %%zmm4, %%zmm4, %%zmm4\n\t"
        "vpxord %%zmm5, %%zmm5, %%zmm5\n\t"
        "vpxord %%zmm6, %%zmm6, %%zmm6\n\t"
        "vpxord %%zmm7, %%zmm7, %%zmm7\n\t"
        "vpxord %%zmm8, %%zmm8, %%zmm8\n\t"
        "vpxord %%zmm9, %%zmm9, %%zmm9\n\t"
        "vpxord %%zmm10, %%zmm10, %%zmm10\n\t"
        "vpxord %%zmm11, %%zmm11, %%zmm11\n\t"
        "vpxord %%zmm14, %%zmm14, %%zmm14\n\t"
        "vpxord %%zmm15, %%zmm15, %%zmm15\n\t"
        "1:\n\t"
        "vfmadd231ps %%zmm15, %%zmm14, %%zmm0\n\t"
        "vfmadd231ps %%zmm15, %%zmm14, %%zmm1\n\t"
        "vfmadd231ps %%zmm15, %%zmm14, %%zmm2\n\t"
        "vfmadd231ps %%zmm15, %%zmm14, %%zmm3\n\t"
        "vfmadd231ps %%zmm15, %%zmm14, %%zmm4\n\t"
        "vfmadd231ps %%zmm15, %%zmm14, %%zmm5\n\t"
        "vfmadd231ps %%zmm15, %%zmm14, %%zmm6\n\t"
        "vfmadd231ps %%zmm15, %%zmm14, %%zmm7\n\t"
        "vfmadd231ps %%zmm15, %%zmm14, %%zmm8\n\t"
        "vfmadd231ps %%zmm15, %%zmm14, %%zmm9\n\t"
        "vfmadd231ps %%zmm15, %%zmm14, %%zmm10\n\t"
        "vfmadd231ps %%zmm15, %%zmm14, %%zmm11\n\t"
        "dec %0\n\t"
        "jnz 1b\n\t"
        "vzeroupper\n\t"
        : "+r"(n)
        :
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
          "xmm10", "xmm11", "xmm14", "xmm15", "cc");
    return (double)iterations * X86_CHAINS * 16 * 2;
}

/* int8 multiply-accumulate peaks, in GOP/s (one multiply-accumulate = 2 operations, as
 * one FMA lane is 2 FLOPs), each loop as the int8 kernels issue them:
 *   AVX2         vpmaddwd on 16-bit pairs + vpaddd: 16 per pair of instructions
 *   AVX-VNNI     {vex} vpdpbusd ymm: 32 per instruction
 *   AVX512-VNNI  vpdpbusd zmm: 64 per instruction */
#define X86_INT8_CHAINS 12

#define X86_REP12(op)                                                                        \
    op(0) op(1) op(2) op(3) op(4) op(5) op(6) op(7) op(8) op(9) op(10) op(11)

__attribute__((target("avx2"), noinline)) static double peak_int8_avx2(uint64_t iterations) {
    uint64_t n = iterations;
    __asm__ volatile(
#define ZERO(i) "vpxor %%ymm" #i ", %%ymm" #i ", %%ymm" #i "\n\t"
        X86_REP12(ZERO)
        "vpxor %%ymm14, %%ymm14, %%ymm14\n\t"
        "vpxor %%ymm15, %%ymm15, %%ymm15\n\t"
        "1:\n\t"
        /* 6 products into ymm12/13 alternately, each added into two accumulators' worth:
         * the kernels' pattern is one vpmaddwd and one vpaddd per 16 MACs. */
#define MADD(i) "vpmaddwd %%ymm15, %%ymm14, %%ymm12\n\t" "vpaddd %%ymm12, %%ymm" #i ", %%ymm" #i "\n\t"
        X86_REP12(MADD)
        "dec %0\n\t"
        "jnz 1b\n\t"
        "vzeroupper\n\t"
        : "+r"(n)
        :
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
          "xmm10", "xmm11", "xmm12", "xmm14", "xmm15", "cc");
    return (double)iterations * X86_INT8_CHAINS * 16 * 2;
}

__attribute__((target("avx2"), noinline)) static double peak_int8_avxvnni(uint64_t iterations) {
    uint64_t n = iterations;
    __asm__ volatile(
        X86_REP12(ZERO)
        "vpxor %%ymm14, %%ymm14, %%ymm14\n\t"
        "vpxor %%ymm15, %%ymm15, %%ymm15\n\t"
        "1:\n\t"
#define DPB_Y(i) "%{vex%} vpdpbusd %%ymm15, %%ymm14, %%ymm" #i "\n\t"
        X86_REP12(DPB_Y)
        "dec %0\n\t"
        "jnz 1b\n\t"
        "vzeroupper\n\t"
        : "+r"(n)
        :
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
          "xmm10", "xmm11", "xmm14", "xmm15", "cc");
    return (double)iterations * X86_INT8_CHAINS * 32 * 2;
}

__attribute__((target("avx512f"), noinline)) static double peak_int8_avx512vnni(uint64_t iterations) {
    uint64_t n = iterations;
    __asm__ volatile(
#define ZERO_Z(i) "vpxord %%zmm" #i ", %%zmm" #i ", %%zmm" #i "\n\t"
        X86_REP12(ZERO_Z)
        "vpxord %%zmm14, %%zmm14, %%zmm14\n\t"
        "vpxord %%zmm15, %%zmm15, %%zmm15\n\t"
        "1:\n\t"
#define DPB_Z(i) "vpdpbusd %%zmm15, %%zmm14, %%zmm" #i "\n\t"
        X86_REP12(DPB_Z)
        "dec %0\n\t"
        "jnz 1b\n\t"
        "vzeroupper\n\t"
        : "+r"(n)
        :
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
          "xmm10", "xmm11", "xmm14", "xmm15", "cc");
    return (double)iterations * X86_INT8_CHAINS * 64 * 2;
}
#undef ZERO
#undef MADD
#undef DPB_Y
#undef ZERO_Z
#undef DPB_Z
#endif

#if defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_NEON_PEAK 1
__attribute__((noinline)) static double peak_neon(uint64_t iterations) {
    uint64_t n = iterations;
    __asm__ volatile(
        "movi v0.4s, #0\n\t"
        "movi v1.4s, #0\n\t"
        "movi v2.4s, #0\n\t"
        "movi v3.4s, #0\n\t"
        "movi v4.4s, #0\n\t"
        "movi v5.4s, #0\n\t"
        "movi v6.4s, #0\n\t"
        "movi v7.4s, #0\n\t"
        "movi v16.4s, #0\n\t"
        "movi v17.4s, #0\n\t"
        "movi v30.4s, #0\n\t"
        "movi v31.4s, #0\n\t"
        "1:\n\t"
        "fmla v0.4s, v30.4s, v31.4s\n\t"
        "fmla v1.4s, v30.4s, v31.4s\n\t"
        "fmla v2.4s, v30.4s, v31.4s\n\t"
        "fmla v3.4s, v30.4s, v31.4s\n\t"
        "fmla v4.4s, v30.4s, v31.4s\n\t"
        "fmla v5.4s, v30.4s, v31.4s\n\t"
        "fmla v6.4s, v30.4s, v31.4s\n\t"
        "fmla v7.4s, v30.4s, v31.4s\n\t"
        "fmla v16.4s, v30.4s, v31.4s\n\t"
        "fmla v17.4s, v30.4s, v31.4s\n\t"
        "subs %0, %0, #1\n\t"
        "b.ne 1b\n\t"
        : "+r"(n)
        :
        : "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v16", "v17", "v30", "v31", "cc");
    return (double)iterations * CHAINS * 4 * 2;
}

/* int8 peaks on AArch64, in GOP/s (one multiply-accumulate = 2 operations):
 *   NEON   smlal + smlal2 on 16-bit lanes: 8 per pair of instructions (4 each)
 *   SDOT   sdot v.4s: 16 per instruction (ARMv8.2 dot product)
 *   I8MM   smmla: 32 per instruction (ARMv8.6 int8 matrix multiply) */
#define A64_REP10(op) op(0) op(1) op(2) op(3) op(4) op(5) op(6) op(7) op(16) op(17)
#define A64_ZERO(i) "movi v" #i ".4s, #0\n\t"

__attribute__((noinline)) static double peak_int8_neon(uint64_t iterations) {
    uint64_t n = iterations;
    __asm__ volatile(
        A64_REP10(A64_ZERO)
        "movi v30.4s, #1\n\t"
        "movi v31.4s, #1\n\t"
        "1:\n\t"
#define A64_SMLAL(i) "smlal v" #i ".4s, v30.4h, v31.4h\n\t"
        A64_REP10(A64_SMLAL)
        "subs %0, %0, #1\n\t"
        "b.ne 1b\n\t"
        : "+r"(n)
        :
        : "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v16", "v17", "v30", "v31", "cc");
    return (double)iterations * CHAINS * 4 * 2;
}

/* The extensions' instructions are written as their encodings (.inst), for every
 * assembler: clang before 16 takes no target attribute on AArch64 and its assembler no
 * .arch_extension for them. sdot v<i>.4s, v30.16b, v31.16b; smmla likewise. */
__attribute__((noinline)) static double peak_int8_sdot(uint64_t iterations) {
    uint64_t n = iterations;
    __asm__ volatile(
        A64_REP10(A64_ZERO)
        "movi v30.16b, #1\n\t"
        "movi v31.16b, #1\n\t"
        "1:\n\t"
#define A64_SDOT(i) ".inst 0x4e9f97c0 + " #i "\n\t"
        A64_REP10(A64_SDOT)
        "subs %0, %0, #1\n\t"
        "b.ne 1b\n\t"
        : "+r"(n)
        :
        : "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v16", "v17", "v30", "v31", "cc");
    return (double)iterations * CHAINS * 16 * 2;
}

__attribute__((noinline)) static double peak_int8_i8mm(uint64_t iterations) {
    uint64_t n = iterations;
    __asm__ volatile(
        A64_REP10(A64_ZERO)
        "movi v30.16b, #1\n\t"
        "movi v31.16b, #1\n\t"
        "1:\n\t"
#define A64_SMMLA(i) ".inst 0x4e9fa7c0 + " #i "\n\t"
        A64_REP10(A64_SMMLA)
        "subs %0, %0, #1\n\t"
        "b.ne 1b\n\t"
        : "+r"(n)
        :
        : "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v16", "v17", "v30", "v31", "cc");
    return (double)iterations * CHAINS * 32 * 2;
}
#undef A64_ZERO
#undef A64_SMLAL
#undef A64_SDOT
#undef A64_SMMLA
#endif

__attribute__((noinline)) static double peak_scalar(uint64_t iterations) {
    volatile float seed = 0.5f;
    float m = seed, a = seed * 0.25f;
    float c0 = 0, c1 = 0, c2 = 0, c3 = 0, c4 = 0, c5 = 0, c6 = 0, c7 = 0, c8 = 0, c9 = 0;
    volatile float sink;
    uint64_t i;
    for (i = 0; i < iterations; ++i) {
        c0 = c0 * m + a; c1 = c1 * m + a; c2 = c2 * m + a; c3 = c3 * m + a; c4 = c4 * m + a;
        c5 = c5 * m + a; c6 = c6 * m + a; c7 = c7 * m + a; c8 = c8 * m + a; c9 = c9 * m + a;
    }
    sink = c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9;
    (void)sink;
    return (double)iterations * CHAINS * 2;
}

typedef double (*peak_fn)(uint64_t iterations);

static double measure(peak_fn fn, double seconds);

double mnv3tools_peak_gflops(mnv3tools_peak_kind kind, double seconds) {
    peak_fn fn = 0;
    switch (kind) {
    case MNV3TOOLS_PEAK_SCALAR: fn = peak_scalar; break;
#if defined(HAVE_X86_PEAK)
    case MNV3TOOLS_PEAK_AVX2: fn = peak_avx2; break;
    case MNV3TOOLS_PEAK_AVX512: fn = peak_avx512; break;
#endif
#if defined(HAVE_NEON_PEAK)
    case MNV3TOOLS_PEAK_NEON: fn = peak_neon; break;
#endif
    default: return -1.0;
    }
    return measure(fn, seconds);
}

double mnv3tools_int8_peak_gops(mnv3tools_int8_peak_kind kind, double seconds) {
    peak_fn fn = 0;
    switch (kind) {
#if defined(HAVE_X86_PEAK)
    case MNV3TOOLS_INT8_PEAK_AVX2: fn = peak_int8_avx2; break;
    case MNV3TOOLS_INT8_PEAK_AVXVNNI: fn = peak_int8_avxvnni; break;
    case MNV3TOOLS_INT8_PEAK_AVX512VNNI: fn = peak_int8_avx512vnni; break;
#endif
#if defined(HAVE_NEON_PEAK)
    case MNV3TOOLS_INT8_PEAK_NEON: fn = peak_int8_neon; break;
    case MNV3TOOLS_INT8_PEAK_SDOT: fn = peak_int8_sdot; break;
    case MNV3TOOLS_INT8_PEAK_I8MM: fn = peak_int8_i8mm; break;
#endif
    default: return -1.0;
    }
    return measure(fn, seconds);
}

static double measure(peak_fn fn, double seconds) {
    uint64_t iterations = 1u << 14;
    unsigned long long start, deadline, t0, t1;
    double best = 0.0;
    if (seconds <= 0.0) seconds = 0.05;
    /* Grow the slice until one takes about a millisecond, then keep the best slice. */
    for (;;) {
        t0 = mnv3tools_now_ns();
        fn(iterations);
        t1 = mnv3tools_now_ns();
        if (t1 - t0 >= 1000000ull || iterations >= (1ull << 40)) break;
        iterations *= 2;
    }
    start = mnv3tools_now_ns();
    deadline = start + (unsigned long long)(seconds * 1e9);
    do {
        double flops;
        t0 = mnv3tools_now_ns();
        flops = fn(iterations);
        t1 = mnv3tools_now_ns();
        if (t1 > t0) {
            double rate = flops / (double)(t1 - t0); /* FLOP per ns == GFLOP/s */
            if (rate > best) best = rate;
        }
    } while (t1 < deadline);
    return best;
}
