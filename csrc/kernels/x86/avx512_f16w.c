/* AVX-512 rows for float16 weights with float32 arithmetic: the float32 body (simd_f32.h)
 * with vcvtph2ps (zmm) in its weight loads (f16w.h); packed weights stay float16. Its
 * rows join the avx512 set id (dispatch.c). */
#include "kernels/float_impl.h"

#if defined(MNV3_HAVE_X86_KERNELS)
#include "x86_intrin.h"

#define SIMD_ATTR MNV3_X86_TARGET("avx512f,avx2,fma,f16c")
#define SIMD_SET mnv3_kernel_set_avx512_f16w
#define SIMD_NAME "avx512-f16w"
#define SIMD_SUPPORTED mnv3_cpu_has_avx512f_f16c
#define F16_VEC __m512
#define W_LOAD(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(p)))
#define F16_STORE _mm512_storeu_ps
#define F16W_TILES mnv3_avx512_f32_gemm
#include "f16w.h"
#include "avx512_f32.c"

#else
typedef int mnv3_x86_avx512_f16_unused;
#endif
