/* Run-time selection of kernel rows: what the build contains, what the CPU (and the OS,
 * for AVX-512 register state) supports, and the MNV3_ISA override. */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include <stdlib.h>
#include <string.h>

#include "kernels/float_impl.h"
#include "kernels/q8_impl.h"

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

static int cpu_has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
}

int mnv3_cpu_has_avx2_f16c(void) { return mnv3_cpu_has_avx2() && cpu_has_f16c(); }

#if defined(MNV3_X86_EMULATED)
/* A test build whose AVX-512 and AVX-VNNI instructions are portable code (x86_intrin.h):
 * those sets run wherever the build's native AVX2, FMA and F16C do. */
int mnv3_cpu_has_avx512f(void) { return mnv3_cpu_has_avx2_f16c(); }
int mnv3_cpu_has_avx512vnni(void) { return mnv3_cpu_has_avx2_f16c(); }
int mnv3_cpu_has_avx512vbmi(void) { return mnv3_cpu_has_avx2_f16c(); }
int mnv3_cpu_has_avxvnni(void) { return mnv3_cpu_has_avx2_f16c(); }
int mnv3_cpu_has_avx512f_f16c(void) { return mnv3_cpu_has_avx2_f16c(); }
int mnv3_cpu_has_avx512bf16(void) { return mnv3_cpu_has_avx2_f16c(); }
#else
int mnv3_cpu_has_avx512f(void) {
    unsigned b7;
    unsigned long long xcr0;
    return cpu_has_avx_fma(&b7, &xcr0) && (b7 & bit_AVX512F) != 0 &&
           (xcr0 & 0xE6) == 0xE6; /* opmask, ZMM state */
}

/* AVX512-VNNI: leaf 7 ECX bit 11, with AVX-512F and the OS saving ZMM state. The int8
 * set's depthwise and epilogue also use AVX512BW and VL (EBX bits 30, 31), which every
 * CPU with AVX512-VNNI has; they are checked all the same. */
int mnv3_cpu_has_avx512vnni(void) {
    unsigned a, b, c, d;
    if (!mnv3_cpu_has_avx512f() || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (c >> 11 & 1u) != 0 && (b >> 30 & 3u) == 3u;
}

/* AVX512-VBMI (leaf 7 ECX bit 1) on top of the AVX512-VNNI set's needs. */
int mnv3_cpu_has_avx512vbmi(void) {
    unsigned a, b, c, d;
    return mnv3_cpu_has_avx512vnni() && __get_cpuid_count(7, 0, &a, &b, &c, &d) &&
           (c >> 1 & 1u) != 0;
}

/* AVX-VNNI (VEX-encoded vpdpbusd): leaf 7 subleaf 1 EAX bit 4, with AVX2. */
int mnv3_cpu_has_avxvnni(void) {
    unsigned a, b, c, d;
    if (!mnv3_cpu_has_avx2() || !__get_cpuid_count(7, 0, &a, &b, &c, &d) || a < 1) return 0;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return 0;
    return (a >> 4 & 1u) != 0;
}

int mnv3_cpu_has_avx512f_f16c(void) { return mnv3_cpu_has_avx512f() && cpu_has_f16c(); }

/* AVX512-BF16: CPUID leaf 7 subleaf 1, EAX bit 5. Its rows store bf16 activations with
 * AVX512BW and VL masked moves (leaf 7 EBX bits 30, 31), which every CPU with AVX512-BF16
 * has; they are checked all the same. */
int mnv3_cpu_has_avx512bf16(void) {
    unsigned a, b, c, d;
    if (!mnv3_cpu_has_avx512f_f16c() || !__get_cpuid_count(7, 0, &a, &b, &c, &d) ||
        (b >> 30 & 3u) != 3u)
        return 0;
    return __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 5)) != 0;
}
#endif
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

size_t mnv3_no_workspace(const mnv3_row *row, const mnv3_layer *l, uint32_t in_width,
                         uint32_t out_width) {
    (void)row;
    (void)l;
    (void)in_width;
    (void)out_width;
    return 0;
}

size_t mnv3_no_packing(const mnv3_row *row, const mnv3_layer *l) {
    (void)row;
    (void)l;
    return 0;
}

/* Every kernel set in this build, fastest first. A context takes, per layer kind, the first
 * row of its set id's sets that the CPU runs and that handles the model's weights and the
 * arithmetic; adding a set is its file and a line here (and its name below, if it brings a
 * new id). */
static const mnv3_kernel_set *const kernel_sets[] = {
#if defined(MNV3_HAVE_X86_KERNELS)
    &mnv3_kernel_set_avx512,
    &mnv3_kernel_set_avx512_f16w,
    &mnv3_kernel_set_avx512_bf16,
    &mnv3_kernel_set_avx512vbmi_q8,
    &mnv3_kernel_set_avx512vnni_q8,
    &mnv3_kernel_set_avx2,
    &mnv3_kernel_set_avx2_f16w,
    &mnv3_kernel_set_avxvnni_q8,
    &mnv3_kernel_set_avx2_q8,
    &mnv3_kernel_set_avx2_dotemu_q8,
#endif
#if defined(MNV3_HAVE_NEON_KERNELS)
    &mnv3_kernel_set_neon,
    &mnv3_kernel_set_neon_f16w,
#if defined(MNV3_HAVE_NEON_FP16)
    &mnv3_kernel_set_neon_f16,
    &mnv3_kernel_set_neon_f16_f32w,
#endif
#if defined(MNV3_HAVE_NEON_I8MM)
    &mnv3_kernel_set_neoni8mm_q8,
#endif
#if defined(MNV3_HAVE_NEON_DOT)
    &mnv3_kernel_set_neondot_q8,
#endif
    &mnv3_kernel_set_neon_q8,
#endif
    &mnv3_kernel_set_reference,
};

#define SET_COUNT (sizeof kernel_sets / sizeof *kernel_sets)

/* The ids the library knows, in mnv3_isa order; an id's first listed set that the CPU runs
 * says whether the id is available. */
uint32_t mnv3_isa_count(void) { return (uint32_t)(sizeof isa_names / sizeof *isa_names); }

const mnv3_kernel_set *const *mnv3_kernel_sets(uint32_t *count) {
    *count = (uint32_t)SET_COUNT;
    return kernel_sets;
}

int mnv3_kernel_set_supported(const mnv3_kernel_set *set) {
    return !set->supported || set->supported();
}

static int serves(const mnv3_kernel_set *set, mnv3_isa isa) {
    return isa != MNV3_ISA_AUTO && (set->isas >> (unsigned)isa & 1u) != 0;
}

/* An id is the instruction set its float32 rows need; the sets of other element types that
 * serve it bring their own checks on top (an int8 set for AVX2 CPUs also serves the
 * avx512 id, on CPUs that have AVX-512 but not VNNI). */
static int id_available(mnv3_isa isa) {
    switch (isa) {
    case MNV3_ISA_SCALAR: return 1;
#if defined(MNV3_HAVE_X86_KERNELS)
    case MNV3_ISA_AVX2: return mnv3_cpu_has_avx2();
    case MNV3_ISA_AVX512: return mnv3_cpu_has_avx512f();
#endif
#if defined(MNV3_HAVE_NEON_KERNELS)
    case MNV3_ISA_NEON: return 1;
#endif
    default: return 0;
    }
}

/* The first row of `set` of this kind for the element types. */
static const mnv3_row *pick(const mnv3_kernel_set *set, mnv3_row_kind kind, mnv3_dtype wt,
                            mnv3_dtype arith) {
    unsigned r;
    for (r = 0; set->rows[r]; ++r) {
        const mnv3_row *row = set->rows[r];
        if (row->kind == kind && row->weight_type == wt && row->arith == arith) return row;
    }
    return NULL;
}

/* Every kind resolved, on activations of one type. */
static int complete(const mnv3_kernels *k) {
    unsigned kind;
    for (kind = 0; kind < MNV3_ROW_KINDS; ++kind)
        if (!k->row[kind] || k->row[kind]->act_type != k->row[0]->act_type) return 0;
    return 1;
}

static void take(mnv3_kernels *out, const mnv3_kernel_set *set, mnv3_dtype wt, mnv3_dtype arith) {
    unsigned kind;
    for (kind = 0; kind < MNV3_ROW_KINDS; ++kind)
        if (!out->row[kind]) {
            out->row[kind] = pick(set, (mnv3_row_kind)kind, wt, arith);
            if (out->row[kind]) out->set[kind] = set;
        }
    if (!out->q8_input) out->q8_input = set->q8_input;
}

int mnv3_kernels_resolve(mnv3_isa isa, mnv3_dtype weight_type, mnv3_dtype arith,
                         mnv3_kernels *out) {
    unsigned i;
    if (!out || !id_available(isa)) return 0;
    memset(out, 0, sizeof *out);
    out->isa = isa;
    for (i = 0; i < SET_COUNT; ++i)
        if (serves(kernel_sets[i], isa) && mnv3_kernel_set_supported(kernel_sets[i]))
            take(out, kernel_sets[i], weight_type, arith);
    take(out, &mnv3_kernel_set_reference, weight_type, arith);
    return complete(out);
}

int mnv3_kernels_resolve_set(const mnv3_kernel_set *set, mnv3_dtype weight_type,
                             mnv3_dtype arith, mnv3_kernels *out) {
    unsigned i;
    if (!set || !out || !mnv3_kernel_set_supported(set)) return 0;
    memset(out, 0, sizeof *out);
    out->isa = MNV3_ISA_SCALAR;
    for (i = 1; i < mnv3_isa_count(); ++i)
        if (serves(set, (mnv3_isa)i)) {
            out->isa = (mnv3_isa)i;
            break;
        }
    take(out, set, weight_type, arith);
    take(out, &mnv3_kernel_set_reference, weight_type, arith);
    return complete(out);
}

int mnv3_isa_available(mnv3_isa isa) {
    if (isa == MNV3_ISA_AUTO) return 1;
    return (unsigned)isa < mnv3_isa_count() && id_available(isa);
}

static mnv3_isa detect_best(void) {
    const char *env = getenv("MNV3_ISA");
    mnv3_isa forced;
    unsigned i;
    if (env && *env && mnv3_isa_from_name(env, &forced) == MNV3_OK && forced != MNV3_ISA_AUTO &&
        mnv3_isa_available(forced))
        return forced;
    /* the ids in the order of their fastest sets */
    for (i = 0; i < SET_COUNT; ++i) {
        unsigned id;
        for (id = 1; id < mnv3_isa_count(); ++id)
            if (serves(kernel_sets[i], (mnv3_isa)id) && mnv3_isa_available((mnv3_isa)id))
                return (mnv3_isa)id;
    }
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
