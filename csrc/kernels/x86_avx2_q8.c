/* AVX2 int8 kernels for CPUs without VNNI. vpmaddubsw would saturate (255 * -128 * 2 does
 * not fit in 16 bits), so products are formed by vpmaddwd on 16-bit values, which is
 * exact: the driver prepares rows as int16 x - in_zp, weights are packed as int16
 * w - weight_zp in pairs of k, and each vpmaddwd adds two products into an int32 lane
 * (16 multiply-accumulates per instruction; no zero-point terms at all). */
#include "kernels.h"

#if defined(MNV3_HAVE_X86_KERNELS)
#define Q8X_ATTR __attribute__((target("avx2")))
#include "x86_q8_common.h"

/* 6 rows x 2 vectors of 8 outputs = 12 accumulators, 2 weight vectors, a broadcast. */
#define MR 6
#define NR 16
#define KR 2

/* Rows are named r0..r5; unused ones (r >= M) vanish as M is a constant. */
#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)

Q8X_INLINE __m256i bcast32(const unsigned char *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

Q8X_INLINE void gemm_s16(const mnv3_q8_gemm_tile *t, const uint32_t M) {
    const unsigned char *w = (const unsigned char *)t->w;
    const __m256i b0 = _mm256_loadu_si256((const __m256i *)(const void *)w);
    const __m256i b1 = _mm256_loadu_si256((const __m256i *)(const void *)(w + 32));
    const char *pf = *t->pf, *pf_end = t->pf_end;
    const mnv3_q8_rq_table *rq = t->rq;
    uint32_t k;
#define DECL(r)                                                                              \
    const unsigned char *a##r = (const unsigned char *)t->a + (M > r ? r : 0) * t->a_stride;  \
    __m256i c##r##0 = b0, c##r##1 = b1;
    ROWS(DECL)
#undef DECL
    if (t->row_terms) {
#define TERM(r)                                                                              \
    if (M > r) {                                                                             \
        const __m256i tr = _mm256_set1_epi32(t->row_terms[r]);                               \
        c##r##0 = _mm256_add_epi32(c##r##0, tr);                                             \
        c##r##1 = _mm256_add_epi32(c##r##1, tr);                                             \
    }
        ROWS(TERM)
#undef TERM
    }
    w += NR * 4;
    for (k = 0; k < t->k; k += KR) {
        const __m256i w0 = _mm256_loadu_si256((const __m256i *)(const void *)w);
        const __m256i w1 = _mm256_loadu_si256((const __m256i *)(const void *)(w + 32));
        w += 64;
        MNV3_PREFETCH_STEP(pf, pf_end);
#define STEP(r)                                                                              \
    if (M > r) {                                                                             \
        const __m256i x = bcast32(a##r + (size_t)k * 2u);                                    \
        c##r##0 = _mm256_add_epi32(c##r##0, _mm256_madd_epi16(x, w0));                       \
        c##r##1 = _mm256_add_epi32(c##r##1, _mm256_madd_epi16(x, w1));                       \
    }
        ROWS(STEP)
#undef STEP
    }
    *t->pf = pf;
    {
        const q8x_rq q0 = q8x_rq_load(rq, 0), q1 = q8x_rq_load(rq, 8);
        const __m256i zp = _mm256_set1_epi32(rq->out_zp);
        const __m256i lo = _mm256_set1_epi32(rq->lo), hi = _mm256_set1_epi32(rq->hi);
#define OUT(r)                                                                               \
    if (M > r)                                                                               \
        q8x_store_bytes(t->out + r * t->out_stride,                                          \
                        q8x_pack16(q8x_output(c##r##0, &q0, zp, lo, hi),                     \
                                   q8x_output(c##r##1, &q1, zp, lo, hi)),                    \
                        t->nc);
        ROWS(OUT)
#undef OUT
    }
}

#define GEMM(M)                                                                              \
    static Q8X_ATTR void mnv3_q8_gemm_##M##x16c2__avx2(const mnv3_q8_gemm_tile *t) {        \
        gemm_s16(t, M);                                                                      \
    }
GEMM(1)
GEMM(2)
GEMM(3)
GEMM(4)
GEMM(5)
GEMM(6)
#undef GEMM

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
    if (g < C) {
        /* The last channels, fewer than a vector: scalar, from the same packed weights. */
        const unsigned char *wg = (const unsigned char *)r->w + (size_t)(g / DW_GROUP) * group_bytes;
        const int32_t *bias = (const int32_t *)(const void *)wg;
        const int32_t *wt = bias + DW_GROUP;
        uint32_t c;
        for (ox = 0; ox < a->out_width; ++ox) {
            const long ix0 = (long)ox * S - (long)a->pad_left;
            for (c = g; c < C; ++c) {
                int32_t acc = bias[c - g], v;
                for (ky = 0; ky < K; ++ky) {
                    if (!r->rows[ky]) continue;
                    for (kx = 0; kx < K; ++kx) {
                        const long ix = ix0 + (long)kx;
                        if (ix < 0 || ix >= (long)a->in_width) continue;
                        acc = mnv3_q8_add_wrap(
                            acc, ((int32_t)r->rows[ky][(size_t)ix * C + c] - a->in_zp) *
                                     (int32_t)(int16_t)(uint16_t)wt[(ky * K + kx) * DW_GROUP + c - g]);
                    }
                }
                v = mnv3_q8_add_wrap(mnv3_q_requantize(acc, a->requant.qmul[c]), a->requant.out_zp);
                r->out[(size_t)ox * C + c] = (int8_t)mnv3_q_clamp(v, a->requant.act_lo, a->requant.act_hi);
            }
        }
    }
}

/* ------------------------------------------------------------------------------------ */
/* Rows and the set                                                                      */
/* ------------------------------------------------------------------------------------ */

static const mnv3_q8_ops ops = {q8x_prepare_row, NULL, q8x_add, q8x_requantize_array};

static const mnv3_q8_gemm_impl gemm_impl = {
    MNV3_Q8_A_S16,
    MR,
    NR,
    KR,
    {mnv3_q8_gemm_1x16c2__avx2, mnv3_q8_gemm_2x16c2__avx2, mnv3_q8_gemm_3x16c2__avx2,
     mnv3_q8_gemm_4x16c2__avx2, mnv3_q8_gemm_5x16c2__avx2, mnv3_q8_gemm_6x16c2__avx2},
    &ops,
};

static const mnv3_q8_dw_impl dw_impl = {DW_GROUP, 4, mnv3_q8_dwconv_8c__avx2, &ops};

static size_t pw_packed_bytes(const mnv3_q8_weights *w) {
    return mnv3_q8_gemm_packed_bytes(w, w->in_channels, NR, KR, MNV3_Q8_A_S16);
}
static void pw_pack(const mnv3_q8_weights *w, void *packed) {
    mnv3_q8_gemm_pack(w, w->in_channels, NR, KR, MNV3_Q8_A_S16, packed);
}
static size_t conv_packed_bytes(const mnv3_q8_weights *w) {
    return mnv3_q8_gemm_packed_bytes(w, w->kernel * w->kernel * w->in_channels, NR, KR,
                                     MNV3_Q8_A_S16);
}
static void conv_pack(const mnv3_q8_weights *w, void *packed) {
    mnv3_q8_gemm_pack(w, w->kernel * w->kernel * w->in_channels, NR, KR, MNV3_Q8_A_S16, packed);
}
static size_t dw_packed_bytes(const mnv3_q8_weights *w) {
    return mnv3_q8_dw_packed_bytes(w, DW_GROUP, 4);
}
static void dw_pack(const mnv3_q8_weights *w, void *packed) {
    mnv3_q8_dw_pack(w, DW_GROUP, 4, packed);
}

static const mnv3_q8_pointwise_kernel pointwise_row = {
    "q8_gemm_6x16c2__avx2", MNV3_DTYPE_I8, MNV3_DTYPE_I8, MR, NR, pw_packed_bytes, pw_pack,
    mnv3_q8_pointwise_workspace, mnv3_q8_pointwise_driver, &gemm_impl,
};
static const mnv3_q8_depthwise_kernel depthwise_row = {
    "q8_dwconv_8c__avx2", MNV3_DTYPE_I8, MNV3_DTYPE_I8, dw_packed_bytes, dw_pack,
    mnv3_q8_depthwise_workspace, mnv3_q8_depthwise_driver, &dw_impl,
};
static const mnv3_q8_conv_kernel conv_row = {
    "q8_conv_im2col_6x16c2__avx2", MNV3_DTYPE_I8, MNV3_DTYPE_I8, conv_packed_bytes, conv_pack,
    mnv3_q8_conv_workspace, mnv3_q8_conv_driver, &gemm_impl,
};
static const mnv3_q8_fc_kernel fc_row = {
    "q8_gemv_1x16c2__avx2", MNV3_DTYPE_I8, MNV3_DTYPE_I8, pw_packed_bytes, pw_pack,
    mnv3_q8_fc_driver, &gemm_impl,
};

static const mnv3_q8_pointwise_kernel *const pointwise_rows[] = {&pointwise_row, NULL};
static const mnv3_q8_depthwise_kernel *const depthwise_rows[] = {&depthwise_row, NULL};
static const mnv3_q8_conv_kernel *const conv_rows[] = {&conv_row, NULL};
static const mnv3_q8_fc_kernel *const fc_rows[] = {&fc_row, NULL};

const mnv3_q8_kernel_set mnv3_q8_kernel_set_avx2 = {
    "avx2", (1u << MNV3_ISA_AVX2) | (1u << MNV3_ISA_AVX512), mnv3_cpu_has_avx2,
    pointwise_rows, depthwise_rows, conv_rows, fc_rows,
};

#else
typedef int mnv3_x86_avx2_q8_unused;
#endif
