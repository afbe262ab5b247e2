/* AVX2 int8 kernels for CPUs without VNNI. vpmaddubsw would saturate (255 * -128 * 2 does
 * not fit in 16 bits), so products are formed by vpmaddwd on 16-bit values, which is
 * exact: the driver prepares rows as int16 x - in_zp, weights are packed as int16
 * w - weight_zp in pairs of k, and each vpmaddwd adds two products into an int32 lane
 * (16 multiply-accumulates per instruction; no zero-point terms at all). */
#include "kernels.h"

#if defined(MNV3_HAVE_X86_KERNELS)
#define Q8X_ATTR __attribute__((target("avx2")))
#include "x86_q8_common.h"

Q8X_INLINE __m256i madd_add(__m256i acc, __m256i a, __m256i b) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
}

/* 6 rows x 2 vectors of 8 outputs = 12 accumulators, 2 weight vectors, a broadcast. */
#define Q8X_DOT(acc, a, b) madd_add(acc, a, b)
#define DOT_SUFFIX avx2
#define DOT_TILE c2
#define DOT_KR 2
#define DOT_FORMAT MNV3_Q8_A_S16
#include "x86_q8_gemm_ymm.h"

/* ------------------------------------------------------------------------------------ */
/* Depthwise                                                                             */
/* ------------------------------------------------------------------------------------ */

/* Eight channels per vector: x - in_zp sign-extended to int32 lanes, times packed weights
 * whose lanes hold w - weight_zp in the low 16 bits and 0 in the high 16, so one vpmaddwd
 * is the exact product. Channel group outside, pixels inside: the group's requantization
 * vectors are made once per output row. */
#define DW_GROUP 8

Q8X_INLINE q8x_rq rq_from_qmul(const mnv3_qmul *m) {
    /* (multiplier, shift) pairs of 8 channels into a vector of each */
    const __m256i idx = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    const __m256i p0 = _mm256_permutevar8x32_epi32(
        _mm256_loadu_si256((const __m256i *)(const void *)m), idx);
    const __m256i p1 = _mm256_permutevar8x32_epi32(
        _mm256_loadu_si256((const __m256i *)(const void *)(m + 4)), idx);
    const __m256i shift = _mm256_permute2x128_si256(p0, p1, 0x31), zero = _mm256_setzero_si256();
    const __m256i one = _mm256_set1_epi32(1);
    q8x_rq r;
    r.mult = _mm256_permute2x128_si256(p0, p1, 0x20);
    r.left = _mm256_max_epi32(shift, zero);
    r.right = _mm256_max_epi32(_mm256_sub_epi32(zero, shift), zero);
    r.mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, r.right), one);
    r.half = _mm256_srli_epi32(r.mask, 1);
    return r;
}

static Q8X_ATTR void mnv3_q8_dwconv_8c__avx2(const mnv3_q8_dw_out_row *r) {
    const mnv3_q8_depthwise_args *a = r->a;
    const uint32_t C = a->channels, K = a->kernel, S = a->stride, taps = K * K;
    const size_t group_bytes = (size_t)DW_GROUP * 4u * (taps + 1u);
    const __m256i zx = _mm256_set1_epi32(a->in_zp), zp = _mm256_set1_epi32(a->requant.out_zp);
    const __m256i lo = _mm256_set1_epi32(a->requant.act_lo), hi = _mm256_set1_epi32(a->requant.act_hi);
    uint32_t g, ox, ky, kx;
    for (g = 0; g + DW_GROUP <= C; g += DW_GROUP) {
        const unsigned char *wg = (const unsigned char *)r->w + (size_t)(g / DW_GROUP) * group_bytes;
        const __m256i bias = _mm256_loadu_si256((const __m256i *)(const void *)wg);
        const __m256i *wt = (const __m256i *)(const void *)(wg + DW_GROUP * 4);
        const q8x_rq rq = rq_from_qmul(a->requant.qmul + g);
        for (ox = 0; ox < a->out_width; ++ox) {
            const long ix0 = (long)ox * S - (long)a->pad_left;
            const uint32_t kx_lo = ix0 < 0 ? (uint32_t)-ix0 : 0;
            const uint32_t kx_hi = ix0 + (long)K > (long)a->in_width ? (uint32_t)((long)a->in_width - ix0) : K;
            __m256i acc = bias;
            for (ky = 0; ky < K; ++ky) {
                const int8_t *row = r->rows[ky];
                if (!row) continue;
                row += (size_t)(ix0 + (long)kx_lo) * C + g;
                for (kx = kx_lo; kx < kx_hi; ++kx, row += C) {
                    const __m256i x = _mm256_sub_epi32(q8x_load8(row), zx);
                    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(x, _mm256_loadu_si256(wt + ky * K + kx)));
                }
            }
            _mm_storel_epi64((__m128i *)(void *)(r->out + (size_t)ox * C + g),
                             q8x_pack8(q8x_output(acc, &rq, zp, lo, hi)));
        }
    }
    if (g < C) mnv3_q8_dw_channels_portable(r, g, DW_GROUP, 4);
}

/* ------------------------------------------------------------------------------------ */
/* Rows and the set                                                                      */
/* ------------------------------------------------------------------------------------ */

static const mnv3_q8_dw_impl dw_impl = {DW_GROUP, 4, mnv3_q8_dwconv_8c__avx2, &dot_ops};

static size_t dw_packed_bytes(const mnv3_q8_weights *w) {
    return mnv3_q8_dw_packed_bytes(w, DW_GROUP, 4);
}
static void dw_pack(const mnv3_q8_weights *w, void *packed) {
    mnv3_q8_dw_pack(w, DW_GROUP, 4, packed);
}

const mnv3_q8_depthwise_kernel mnv3_q8_depthwise_avx2 = {
    "q8_dwconv_8c__avx2", MNV3_DTYPE_I8, MNV3_DTYPE_I8, dw_packed_bytes, dw_pack,
    mnv3_q8_depthwise_workspace, mnv3_q8_depthwise_driver, &dw_impl,
};

static const mnv3_q8_depthwise_kernel *const depthwise_rows[] = {&mnv3_q8_depthwise_avx2, NULL};

const mnv3_q8_kernel_set mnv3_q8_kernel_set_avx2 = {
    "avx2", (1u << MNV3_ISA_AVX2) | (1u << MNV3_ISA_AVX512), mnv3_cpu_has_avx2,
    dot_pointwise_rows, depthwise_rows, dot_conv_rows, dot_fc_rows,
};

#else
typedef int mnv3_x86_avx2_q8_unused;
#endif
