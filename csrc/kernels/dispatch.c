/* Run-time selection of the kernel table: what the build contains, what the CPU (and the
 * OS, for AVX-512 register state) supports, and the MNV3_ISA override. */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#define MNV3_X86_64 1
#include <cpuid.h>
#endif

static const char *const isa_names[] = {"auto", "scalar", "avx2", "avx512", "neon"};

const char *mnv3_isa_name(mnv3_isa isa) {
    if ((unsigned)isa < sizeof isa_names / sizeof *isa_names) return isa_names[isa];
    return "unknown";
}

mnv3_status mnv3_isa_from_name(const char *name, mnv3_isa *out) {
    unsigned i;
    if (!name || !out) return MNV3_ERR_NULL_ARGUMENT;
    for (i = 0; i < sizeof isa_names / sizeof *isa_names; ++i)
        if (strcmp(name, isa_names[i]) == 0) {
            *out = (mnv3_isa)i;
            return MNV3_OK;
        }
    return MNV3_ERR_INVALID_ARGUMENT;
}

#if MNV3_X86_64 && defined(MNV3_HAVE_X86_KERNELS)
static unsigned long long read_xcr0(void) {
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

static int cpu_has(mnv3_isa isa) {
    unsigned a, b, c, d, leaf7_b;
    unsigned long long xcr0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!(c & bit_OSXSAVE) || !(c & bit_AVX) || !(c & bit_FMA)) return 0;
    xcr0 = read_xcr0();
    if ((xcr0 & 0x6) != 0x6) return 0; /* OS saves XMM and YMM */
    if (!__get_cpuid_count(7, 0, &a, &leaf7_b, &c, &d)) return 0;
    if (isa == MNV3_ISA_AVX2) return (leaf7_b & bit_AVX2) != 0;
    if (isa == MNV3_ISA_AVX512)
        return (leaf7_b & bit_AVX512F) != 0 && (xcr0 & 0xE6) == 0xE6; /* opmask, ZMM state */
    return 0;
}
#endif

const mnv3_kernels *mnv3_kernels_for(mnv3_isa isa) {
    switch (isa) {
    case MNV3_ISA_SCALAR: return &mnv3_kernels_reference;
#if MNV3_X86_64 && defined(MNV3_HAVE_X86_KERNELS)
    case MNV3_ISA_AVX2: return cpu_has(MNV3_ISA_AVX2) ? &mnv3_kernels_avx2 : NULL;
    case MNV3_ISA_AVX512: return cpu_has(MNV3_ISA_AVX512) ? &mnv3_kernels_avx512 : NULL;
#endif
#if defined(MNV3_HAVE_NEON_KERNELS)
    case MNV3_ISA_NEON: return &mnv3_kernels_neon;
#endif
    default: return NULL;
    }
}

int mnv3_isa_available(mnv3_isa isa) {
    if (isa == MNV3_ISA_AUTO) return 1;
    return mnv3_kernels_for(isa) != NULL;
}

static mnv3_isa detect_best(void) {
    static const mnv3_isa preference[] = {MNV3_ISA_AVX512, MNV3_ISA_AVX2, MNV3_ISA_NEON};
    const char *env = getenv("MNV3_ISA");
    mnv3_isa forced;
    unsigned i;
    if (env && *env && mnv3_isa_from_name(env, &forced) == MNV3_OK && forced != MNV3_ISA_AUTO &&
        mnv3_isa_available(forced))
        return forced;
    for (i = 0; i < sizeof preference / sizeof *preference; ++i)
        if (mnv3_isa_available(preference[i])) return preference[i];
    return MNV3_ISA_SCALAR;
}

mnv3_isa mnv3_isa_best(void) {
    /* Racing first calls compute the same value; the store is of one aligned int. */
    static volatile int cached = -1;
    if (cached < 0) cached = (int)detect_best();
    return (mnv3_isa)cached;
}
