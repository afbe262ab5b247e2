/* The AVX512-VNNI int8 set on CPUs that also have AVX512-VBMI (Ice Lake and later, Zen 4
 * and Zen 5): the same rows, with the activation table (hard-swish and the other
 * activations of a quantized layer, 256 bytes) looked up by two vpermi2b and a blend per
 * vector where AVX2 needs sixteen vpshufb and fifteen blends. Listed ahead of the plain
 * AVX512-VNNI set (Cascade Lake has VNNI without VBMI). */
#include "kernels/kernels.h"

#if defined(MNV3_HAVE_X86_KERNELS)
#define Q8X_ATTR MNV3_X86_TARGET("avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi,avx2")
#define Q8X_LUT_VBMI 1
#define Q8Z_ISA avx512vbmi
#define Q8Z_SET mnv3_kernel_set_avx512vbmi_q8
#define Q8Z_SET_NAME "avx512vnni-vbmi"
#define Q8Z_SUPPORTED mnv3_cpu_has_avx512vbmi
#include "avx512vnni_q8.c"
#else
typedef int mnv3_x86_avx512vbmi_q8_unused;
#endif
