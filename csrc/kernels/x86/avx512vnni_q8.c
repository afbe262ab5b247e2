/* AVX512-VNNI int8 GEMM: vpdpbusd on 512-bit vectors, 64 multiply-accumulates per
 * instruction. u8 activations (x ^ 0x80, prepared by the driver) are broadcast 4 bytes at
 * a time against s8 weights packed [k/4][32][4], 8 rows x 2 vectors of accumulators;
 * zero points are folded at pack time (q8_impl.h). The loop is pure loads and dot
 * products; requantization runs once per tile on 256-bit halves with the AVX2 sequence
 * every x86 set shares (and the tests check on every machine). */
#include "kernels/kernels.h"

#if defined(MNV3_HAVE_X86_KERNELS)
#define Q8X_ATTR MNV3_X86_TARGET("avx512f,avx512vnni,avx2")
#include "q8_common.h"

#define MR 8
#define NR 32
#define KR 4

#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

Q8X_INLINE void store_row(int8_t *out, __m512i c0, __m512i c1, const q8x_rq *q, __m256i zp,
                          __m256i lo, __m256i hi, uint32_t nc, const int plain) {
#define Q8_OUT(v, i)                                                                         \
    (plain ? q8x_output_plain(v, &q[i], zp, lo, hi) : q8x_output(v, &q[i], zp, lo, hi))
    q8x_store_bytes(out,
                    q8x_pack16(Q8_OUT(_mm512_castsi512_si256(c0), 0),
                               Q8_OUT(_mm512_extracti64x4_epi64(c0, 1), 1)),
                    nc);
    if (nc > 16)
        q8x_store_bytes(out + 16,
                        q8x_pack16(Q8_OUT(_mm512_castsi512_si256(c1), 2),
                                   Q8_OUT(_mm512_extracti64x4_epi64(c1, 1), 3)),
                        nc - 16);
#undef Q8_OUT
}

Q8X_INLINE void gemm_vnni512(const mnv3_q8_gemm_tile *t, const uint32_t M) {
    const unsigned char *w = (const unsigned char *)t->w;
    const __m512i b0 = _mm512_loadu_si512((const void *)w);
    const __m512i b1 = _mm512_loadu_si512((const void *)(w + 64));
    const char *pf = *t->pf, *pf_end = t->pf_end;
    const mnv3_q8_rq_table *rq = t->rq;
    uint32_t k;
#define DECL(r)                                                                              \
    const unsigned char *a##r = (const unsigned char *)t->a + (M > r ? r : 0) * t->a_stride;  \
    __m512i c##r##0 = b0, c##r##1 = b1;
    ROWS(DECL)
#undef DECL
    if (t->row_terms) {
#define TERM(r)                                                                              \
    if (M > r) {                                                                             \
        const __m512i tr = _mm512_set1_epi32(t->row_terms[r]);                               \
        c##r##0 = _mm512_add_epi32(c##r##0, tr);                                             \
        c##r##1 = _mm512_add_epi32(c##r##1, tr);                                             \
    }
        ROWS(TERM)
#undef TERM
    }
    w += NR * 4;
    for (k = 0; k < t->k; k += KR) {
        const __m512i w0 = _mm512_loadu_si512((const void *)w);
        const __m512i w1 = _mm512_loadu_si512((const void *)(w + 64));
        w += 128;
        MNV3_PREFETCH_STEP(pf, pf_end);
#define STEP(r)                                                                              \
    if (M > r) {                                                                             \
        int32_t v##r;                                                                        \
        __m512i x##r;                                                                        \
        memcpy(&v##r, a##r + k, 4);                                                          \
        x##r = _mm512_set1_epi32(v##r);                                                      \
        c##r##0 = _mm512_dpbusd_epi32(c##r##0, x##r, w0);                                    \
        c##r##1 = _mm512_dpbusd_epi32(c##r##1, x##r, w1);                                    \
    }
        ROWS(STEP)
#undef STEP
    }
    *t->pf = pf;
    {
        q8x_rq q[4];
        const __m256i zp = _mm256_set1_epi32(rq->out_zp);
        const __m256i lo = _mm256_set1_epi32(rq->lo), hi = _mm256_set1_epi32(rq->hi);
        q[0] = q8x_rq_load(rq, 0);
        q[1] = q8x_rq_load(rq, 8);
        q[2] = q8x_rq_load(rq, 16);
        q[3] = q8x_rq_load(rq, 24);
#define OUT(r, plain)                                                                        \
    if (M > r) store_row(t->out + r * t->out_stride, c##r##0, c##r##1, q, zp, lo, hi, t->nc, plain);
#define OUT_PLAIN(r) OUT(r, 1)
#define OUT_ANY(r) OUT(r, 0)
        if (rq->plain) {
            ROWS(OUT_PLAIN)
        } else {
            ROWS(OUT_ANY)
        }
#undef OUT_PLAIN
#undef OUT_ANY
#undef OUT
    }
}

#define GEMM(M)                                                                              \
    static Q8X_ATTR void mnv3_q8_gemm_##M##x32c4__avx512vnni(const mnv3_q8_gemm_tile *t) {   \
        gemm_vnni512(t, M);                                                                  \
    }
GEMM(1)
GEMM(2)
GEMM(3)
GEMM(4)
GEMM(5)
GEMM(6)
GEMM(7)
GEMM(8)
#undef GEMM

static const mnv3_q8_ops ops = {q8x_prepare_rows, q8x_lut, q8x_add, q8x_requantize_array};

static const mnv3_q8_gemm_impl gemm_impl = {
    MNV3_Q8_A_U8,
    MR,
    NR,
    KR,
    {mnv3_q8_gemm_1x32c4__avx512vnni, mnv3_q8_gemm_2x32c4__avx512vnni,
     mnv3_q8_gemm_3x32c4__avx512vnni, mnv3_q8_gemm_4x32c4__avx512vnni,
     mnv3_q8_gemm_5x32c4__avx512vnni, mnv3_q8_gemm_6x32c4__avx512vnni,
     mnv3_q8_gemm_7x32c4__avx512vnni, mnv3_q8_gemm_8x32c4__avx512vnni},
    &ops,
    0,
    0,
};

static const mnv3_row pointwise_row = {
    "q8_gemm_8x32c4__avx512vnni", MNV3_ROW_POINTWISE, MNV3_DTYPE_I8, MNV3_DTYPE_I8, MNV3_DTYPE_I8,
    NR, mnv3_q8_gemm_row_packed_bytes, mnv3_q8_gemm_row_pack, mnv3_q8_params_bytes,
    mnv3_q8_prepare, mnv3_q8_pointwise_workspace, {.pointwise = mnv3_q8_pointwise_driver},
    &gemm_impl,
};
static const mnv3_row fc_row = {
    "q8_gemv_1x32c4__avx512vnni", MNV3_ROW_FC, MNV3_DTYPE_I8, MNV3_DTYPE_I8, MNV3_DTYPE_I8, NR,
    mnv3_q8_fc_row_packed_bytes, mnv3_q8_gemm_row_pack, mnv3_q8_params_bytes, mnv3_q8_prepare,
    mnv3_no_workspace, {.fc = mnv3_q8_fc_driver}, &gemm_impl,
};

static const mnv3_row *const set_rows[] = {
    &pointwise_row, &mnv3_q8_depthwise_avx2, &mnv3_q8_conv_avx2, &fc_row, NULL,
};

const mnv3_kernel_set mnv3_kernel_set_avx512vnni_q8 = {
    "avx512vnni", 1u << MNV3_ISA_AVX512, mnv3_cpu_has_avx512vnni, set_rows,
    &mnv3_q8_input_avx2,
};

#else
typedef int mnv3_x86_avx512vnni_q8_unused;
#endif
