/* Run-time selection of kernel rows: what the build contains, what the CPU (and the OS,
 * for AVX-512 register state) supports, and the MNV3_ISA override. */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "q8_impl.h"

#if defined(__x86_64__) || defined(_M_X64)
#define MNV3_X86_64 1
#include <cpuid.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
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

/* AVX and FMA with the OS saving YMM state; *leaf7_b and *xcr0 for the callers' own bits. */
static int cpu_has_avx_fma(unsigned *leaf7_b, unsigned long long *xcr0) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!(c & bit_OSXSAVE) || !(c & bit_AVX) || !(c & bit_FMA)) return 0;
    *xcr0 = read_xcr0();
    if ((*xcr0 & 0x6) != 0x6) return 0; /* OS saves XMM and YMM */
    if (!__get_cpuid_count(7, 0, &a, leaf7_b, &c, &d)) return 0;
    return 1;
}

int mnv3_cpu_has_avx2(void) {
    unsigned b7;
    unsigned long long xcr0;
    return cpu_has_avx_fma(&b7, &xcr0) && (b7 & bit_AVX2) != 0;
}

int mnv3_cpu_has_avx512f(void) {
    unsigned b7;
    unsigned long long xcr0;
    return cpu_has_avx_fma(&b7, &xcr0) && (b7 & bit_AVX512F) != 0 &&
           (xcr0 & 0xE6) == 0xE6; /* opmask, ZMM state */
}

/* AVX512-VNNI: leaf 7 ECX bit 11, with AVX-512F and the OS saving ZMM state. */
int mnv3_cpu_has_avx512vnni(void) {
    unsigned a, b, c, d;
    if (!mnv3_cpu_has_avx512f() || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (c >> 11 & 1u) != 0;
}

/* AVX-VNNI (VEX-encoded vpdpbusd): leaf 7 subleaf 1 EAX bit 4, with AVX2. */
int mnv3_cpu_has_avxvnni(void) {
    unsigned a, b, c, d;
    if (!mnv3_cpu_has_avx2() || !__get_cpuid_count(7, 0, &a, &b, &c, &d) || a < 1) return 0;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return 0;
    return (a >> 4 & 1u) != 0;
}

static int cpu_has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
}

int mnv3_cpu_has_avx2_f16c(void) { return mnv3_cpu_has_avx2() && cpu_has_f16c(); }
int mnv3_cpu_has_avx512f_f16c(void) { return mnv3_cpu_has_avx512f() && cpu_has_f16c(); }

/* AVX512-BF16: CPUID leaf 7 subleaf 1, EAX bit 5. */
int mnv3_cpu_has_avx512bf16(void) {
    unsigned a, b, c, d;
    return mnv3_cpu_has_avx512f_f16c() && __get_cpuid_count(7, 1, &a, &b, &c, &d) &&
           (a & (1u << 5)) != 0;
}
#endif

#if defined(MNV3_HAVE_NEON_KERNELS) && defined(__aarch64__)
/* FP16 arithmetic in Advanced SIMD (ARMv8.2 FEAT_FP16), as the kernel reports it. */
int mnv3_cpu_has_asimdhp(void) {
#if defined(__linux__) && defined(AT_HWCAP)
    return (getauxval(AT_HWCAP) & (1ul << 10)) != 0; /* HWCAP_ASIMDHP */
#else
    return 0;
#endif
}
#endif

/* Every kernel set in this build, fastest first: AUTO takes the first the CPU runs. Adding
 * a set is its file and a line here (and its name above, if it is a new id). A set of an
 * id already listed adds rows for other element types to that id (float16 weights). */
static const mnv3_kernel_set *const kernel_sets[] = {
#if defined(MNV3_HAVE_X86_KERNELS)
    &mnv3_kernel_set_avx512,
    &mnv3_kernel_set_avx512_f16,
    &mnv3_kernel_set_avx512_bf16,
    &mnv3_kernel_set_avx2,
    &mnv3_kernel_set_avx2_f16,
#endif
#if defined(MNV3_HAVE_NEON_KERNELS)
    &mnv3_kernel_set_neon,
    &mnv3_kernel_set_neon_f16,
#if defined(__aarch64__)
    &mnv3_kernel_set_neon_hp_f16w,
    &mnv3_kernel_set_neon_hp_f32w,
#endif
#endif
    &mnv3_kernel_set_reference,
};

#define SET_COUNT (sizeof kernel_sets / sizeof *kernel_sets)

uint32_t mnv3_isa_count(void) { return (uint32_t)(sizeof isa_names / sizeof *isa_names); }

static const mnv3_kernel_set *find_set(mnv3_isa isa) {
    unsigned i;
    for (i = 0; i < SET_COUNT; ++i)
        if (kernel_sets[i]->isa == isa)
            return !kernel_sets[i]->supported || kernel_sets[i]->supported() ? kernel_sets[i]
                                                                              : NULL;
    return NULL;
}

/* First row of a NULL-terminated list that handles the element types. */
#define PICK_ROW(list, wt, at, out)                                                              do {                                                                                             unsigned r_;                                                                                 (out) = NULL;                                                                                for (r_ = 0; (list) && (list)[r_]; ++r_)                                                         if ((list)[r_]->weight_type == (wt) && (list)[r_]->act_type == (at)) {                           (out) = (list)[r_];                                                                          break;                                                                                   }                                                                                    } while (0)

/* Every int8 set of this build, fastest first; the ones serving a set id are tried in
 * this order. */
static const mnv3_q8_kernel_set *const q8_sets[] = {
#if defined(MNV3_HAVE_X86_KERNELS)
    &mnv3_q8_kernel_set_avx512vnni,
    &mnv3_q8_kernel_set_avxvnni,
    &mnv3_q8_kernel_set_avx2,
    &mnv3_q8_kernel_set_avx2_dotemu,
#endif
#if defined(MNV3_HAVE_NEON_KERNELS)
#if defined(__aarch64__)
    &mnv3_q8_kernel_set_neon_i8mm,
    &mnv3_q8_kernel_set_neon_dot,
#endif
    &mnv3_q8_kernel_set_neon,
#endif
    &mnv3_q8_kernel_set_reference,
};

#define Q8_SET_COUNT (sizeof q8_sets / sizeof *q8_sets)

const mnv3_q8_kernel_set *const *mnv3_q8_kernel_sets(uint32_t *count) {
    *count = (uint32_t)Q8_SET_COUNT;
    return q8_sets;
}

int mnv3_q8_set_supported(const mnv3_q8_kernel_set *set) {
    return !set->supported || set->supported();
}

int mnv3_kernels_resolve_q8_set(const mnv3_q8_kernel_set *set, mnv3_dtype weight_type,
                                mnv3_dtype act_type, mnv3_kernels *out) {
    const mnv3_q8_kernel_set *ref = &mnv3_q8_kernel_set_reference;
    if (!set || !out || !mnv3_q8_set_supported(set)) return 0;
    out->q8_set = set;
    PICK_ROW(set->pointwise, weight_type, act_type, out->q8_pointwise);
    PICK_ROW(set->depthwise, weight_type, act_type, out->q8_depthwise);
    PICK_ROW(set->conv, weight_type, act_type, out->q8_conv);
    PICK_ROW(set->fc, weight_type, act_type, out->q8_fc);
    if (!out->q8_pointwise) PICK_ROW(ref->pointwise, weight_type, act_type, out->q8_pointwise);
    if (!out->q8_depthwise) PICK_ROW(ref->depthwise, weight_type, act_type, out->q8_depthwise);
    if (!out->q8_conv) PICK_ROW(ref->conv, weight_type, act_type, out->q8_conv);
    if (!out->q8_fc) PICK_ROW(ref->fc, weight_type, act_type, out->q8_fc);
    return out->q8_pointwise && out->q8_depthwise && out->q8_conv && out->q8_fc;
}

int mnv3_kernels_resolve(mnv3_isa isa, mnv3_dtype weight_type, mnv3_dtype act_type,
                         mnv3_kernels *out) {
    const mnv3_kernel_set *set = find_set(isa), *ref = &mnv3_kernel_set_reference;
    if (!set || !out) return 0;
    memset(out, 0, sizeof *out);
    out->set = set;
    out->isa = isa;
    if (weight_type == MNV3_DTYPE_I8 && act_type == MNV3_DTYPE_I8) {
        unsigned i;
        for (i = 0; i < Q8_SET_COUNT; ++i)
            if ((q8_sets[i]->isas >> (unsigned)isa & 1u) && mnv3_q8_set_supported(q8_sets[i]))
                return mnv3_kernels_resolve_q8_set(q8_sets[i], weight_type, act_type, out);
        return 0;
    }
    {
        /* The id's first set, then the other sets of that id the CPU runs. */
        unsigned i;
        for (i = 0; i < SET_COUNT; ++i) {
            const mnv3_kernel_set *s = kernel_sets[i];
            if (s->isa != isa || (s != set && s->supported && !s->supported())) continue;
            if (!out->pointwise) PICK_ROW(s->pointwise, weight_type, act_type, out->pointwise);
            if (!out->depthwise) PICK_ROW(s->depthwise, weight_type, act_type, out->depthwise);
            if (!out->conv) PICK_ROW(s->conv, weight_type, act_type, out->conv);
            if (!out->fc) PICK_ROW(s->fc, weight_type, act_type, out->fc);
        }
    }
    /* A kind the set does not specialise runs on the reference. */
    if (!out->pointwise) PICK_ROW(ref->pointwise, weight_type, act_type, out->pointwise);
    if (!out->depthwise) PICK_ROW(ref->depthwise, weight_type, act_type, out->depthwise);
    if (!out->conv) PICK_ROW(ref->conv, weight_type, act_type, out->conv);
    if (!out->fc) PICK_ROW(ref->fc, weight_type, act_type, out->fc);
    return out->pointwise && out->depthwise && out->conv && out->fc;
}

int mnv3_isa_available(mnv3_isa isa) {
    if (isa == MNV3_ISA_AUTO) return 1;
    return find_set(isa) != NULL;
}

static mnv3_isa detect_best(void) {
    const char *env = getenv("MNV3_ISA");
    mnv3_isa forced;
    unsigned i;
    if (env && *env && mnv3_isa_from_name(env, &forced) == MNV3_OK && forced != MNV3_ISA_AUTO &&
        mnv3_isa_available(forced))
        return forced;
    for (i = 0; i < SET_COUNT; ++i)
        if (mnv3_isa_available(kernel_sets[i]->isa)) return kernel_sets[i]->isa;
    return MNV3_ISA_SCALAR;
}

/* The probe's result, -1 until the first call. Racing first calls compute the same value,
 * so relaxed atomic loads and stores are enough: nothing else is published through it.
 * (A compiler without GNU atomics gets a plain int, which only a race detector minds.) */
#if defined(__GNUC__) || defined(__clang__)
#define CACHE_LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define CACHE_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#else
#define CACHE_LOAD(p) (*(volatile int *)(p))
#define CACHE_STORE(p, v) (void)(*(volatile int *)(p) = (v))
#endif

mnv3_isa mnv3_isa_best(void) {
    static int cached = -1;
    int isa = CACHE_LOAD(&cached);
    if (isa < 0) {
        isa = (int)detect_best();
        CACHE_STORE(&cached, isa);
    }
    return (mnv3_isa)isa;
}
