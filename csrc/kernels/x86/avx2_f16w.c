/* AVX2 rows for float16 weights with float32 arithmetic (f16w.h): the float32 set's GEMM
 * tiles on widened weights, F16C's vcvtph2ps in the other rows' weight loads. Packing keeps
 * the weights float16, so the memory-bound layers stream half the bytes; the GEMV reads the
 * model's float16 weights in place. Its rows join the avx2 set id (dispatch.c). */
#include "kernels/float_impl.h"

#if defined(MNV3_HAVE_X86_KERNELS)
#include "x86_intrin.h"

#define SIMD_ATTR MNV3_X86_TARGET("avx2,fma,f16c")
#define SIMD_SET mnv3_kernel_set_avx2_f16w
#define SIMD_NAME "avx2-f16w"
#define SIMD_SUPPORTED mnv3_cpu_has_avx2_f16c
#define F16_VEC __m256
#define W_LOAD(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(p)))
#define F16_STORE _mm256_storeu_ps
#define F16W_TILES mnv3_avx2_f32_gemm
#include "f16w.h"
#include "avx2_f32.c"

#else
typedef int mnv3_x86_avx2_f16_unused;
#endif
