/* AVX512-VNNI int8 GEMM: vpdpbusd on 512-bit vectors, 64 multiply-accumulates per
 * instruction. u8 activations (x ^ 0x80, prepared by the driver) are broadcast 4 bytes at
 * a time against s8 weights packed [k/4][32][4], 8 rows x 2 vectors of accumulators;
 * zero points are folded at pack time (q8_impl.h). The loop is pure loads and dot
 * products; requantization runs once per tile on 512-bit vectors (q8z_*, the sequence of
 * q8_common.h on 16 lanes), and the tile finishes its bytes in registers (LUT, residual
 * ADD, channel sums) as the 256-bit sets do, on its two halves of 16 columns. */
#include "kernels/kernels.h"

#if defined(MNV3_HAVE_X86_KERNELS)
#define Q8X_ATTR MNV3_X86_TARGET("avx512f,avx512bw,avx512vl,avx512vnni,avx2")
#include "q8_common.h"

#define MR 8
#define NR 32
#define KR 4

#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

/* The requantization of 16 lanes, parameters as vectors (q8x_rq on 512 bits). */
typedef struct q8z_rq {
    __m512i mult, mult_odd, left, right, mask, half;
} q8z_rq;

Q8X_INLINE q8z_rq q8z_rq_load(const mnv3_q8_rq_table *t, uint32_t c) {
    q8z_rq r;
    r.mult = _mm512_loadu_si512((const void *)(t->mult + c));
    r.mult_odd = _mm512_srli_epi64(r.mult, 32);
    r.left = _mm512_loadu_si512((const void *)(t->left + c));
    r.right = _mm512_loadu_si512((const void *)(t->right + c));
    r.mask = _mm512_loadu_si512((const void *)(t->mask + c));
    r.half = _mm512_loadu_si512((const void *)(t->half + c));
    return r;
}

/* requantize + zero point, unclamped: q8x_requantize_zp's steps (q8_common.h), with
 * opmasks for the blend, the saturating product and the rounding; `plain` as
 * mnv3_q8_rq_table's: no left shift and no INT32_MIN multiplier. */
Q8X_INLINE __m512i q8z_requantize_zp(__m512i acc, const q8z_rq *r, __m512i zp, const int plain) {
    const __m512i nudge = _mm512_set1_epi64((long long)1 << 30);
    const __m512i one = _mm512_set1_epi32(1), zero = _mm512_setzero_si512();
    const __m512i x = plain ? acc : _mm512_sllv_epi32(acc, r->left);
    const __m512i even = _mm512_add_epi64(_mm512_mul_epi32(x, r->mult), nudge);
    const __m512i odd =
        _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), r->mult_odd), nudge);
    __m512i h = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 31),
                                        _mm512_slli_epi64(odd, 1));
    __m512i s, threshold;
    if (!plain) {
        const __m512i min = _mm512_set1_epi32(INT32_MIN);
        const __mmask16 sat =
            _mm512_cmpeq_epi32_mask(x, min) & _mm512_cmpeq_epi32_mask(r->mult, min);
        h = _mm512_mask_xor_epi32(h, sat, h, _mm512_set1_epi32(-1));
    }
    /* half - (h >> 31): one more for negative h */
    threshold = _mm512_mask_add_epi32(r->half, _mm512_cmpgt_epi32_mask(zero, h), r->half, one);
    s = _mm512_srav_epi32(h, r->right);
    s = _mm512_mask_add_epi32(s, _mm512_cmpgt_epi32_mask(_mm512_and_si512(h, r->mask), threshold),
                              s, one);
    return _mm512_add_epi32(s, zp);
}

/* 16 lanes as 16 bytes clamped to [lo, hi]: vpmovsdb saturates to int8 first, which gives
 * the clamp of the int32 values, since [lo, hi] lies within int8. */
Q8X_INLINE __m128i q8z_bytes16(__m512i acc, const q8z_rq *r, __m512i zp, __m128i lo, __m128i hi,
                               const int plain) {
    const __m128i b = _mm512_cvtsepi32_epi8(q8z_requantize_zp(acc, r, zp, plain));
    return _mm_min_epi8(_mm_max_epi8(b, lo), hi);
}

/* The zmm requantization on arrays, for the tests (mnv3_q8_ops.requantize). */
static Q8X_ATTR void q8z_requantize16(const int32_t *in, const mnv3_q8_rq_table *t, int32_t *res) {
    const q8z_rq rq = q8z_rq_load(t, 0);
    _mm512_storeu_si512((void *)res, q8z_requantize_zp(_mm512_loadu_si512((const void *)in), &rq,
                                                       _mm512_setzero_si512(), 0));
}

static Q8X_ATTR void q8z_requantize_array(const int32_t *acc, const mnv3_q8_mul *m, size_t n,
                                          int32_t *out) {
    q8x_requantize_array_by(acc, m, n, out, 16, q8z_requantize16);
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
        const q8z_rq q0 = q8z_rq_load(rq, 0), q1 = q8z_rq_load(rq, 16);
        const __m512i zp = _mm512_set1_epi32(rq->out_zp);
        const __m128i lo = _mm_set1_epi8((char)rq->lo), hi = _mm_set1_epi8((char)rq->hi);
        const int wide = t->nc > 16;
        __m128i bytes0[MR], bytes1[MR];
#define OUT(r, plain)                                                                        \
    if (M > r) {                                                                             \
        bytes0[r] = q8z_bytes16(c##r##0, &q0, zp, lo, hi, plain);                            \
        bytes1[r] = wide ? q8z_bytes16(c##r##1, &q1, zp, lo, hi, plain) : _mm_setzero_si128(); \
    }
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
        /* The first half's finish stores and sums at most 16 columns of the tile's nc. */
        q8x_finish_rows16(t, bytes0, M);
        if (wide) {
            mnv3_q8_gemm_tile h = *t;
            h.nc -= 16;
            h.out += 16;
            if (h.residual) h.residual += 16;
            if (h.sums) h.sums += 16;
            q8x_finish_rows16(&h, bytes1, M);
        }
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

static const mnv3_q8_ops ops = {q8x_prepare_rows, q8x_lut, q8x_add, q8z_requantize_array};

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
    MNV3_Q8_FUSE_LUT | MNV3_Q8_FUSE_ADD | MNV3_Q8_FUSE_SUMS,
};

static const mnv3_row pointwise_row = {
    "q8_gemm_8x32c4__avx512vnni", MNV3_ROW_POINTWISE, MNV3_DTYPE_I8, MNV3_DTYPE_I8, MNV3_DTYPE_I8,
    NR, mnv3_q8_gemm_row_packed_bytes, mnv3_q8_gemm_row_pack, mnv3_q8_params_bytes,
    mnv3_q8_prepare, mnv3_q8_pointwise_workspace, {.pointwise = mnv3_q8_pointwise_driver},
    &gemm_impl,
};
static const mnv3_row conv_row = {
    "q8_conv_im2col_8x32c4__avx512vnni", MNV3_ROW_CONV, MNV3_DTYPE_I8, MNV3_DTYPE_I8,
    MNV3_DTYPE_I8, NR, mnv3_q8_gemm_row_packed_bytes, mnv3_q8_gemm_row_pack,
    mnv3_q8_params_bytes, mnv3_q8_prepare, mnv3_q8_conv_workspace, {.conv = mnv3_q8_conv_driver},
    &gemm_impl,
};
static const mnv3_row fc_row = {
    "q8_gemv_1x32c4__avx512vnni", MNV3_ROW_FC, MNV3_DTYPE_I8, MNV3_DTYPE_I8, MNV3_DTYPE_I8, NR,
    mnv3_q8_fc_row_packed_bytes, mnv3_q8_gemm_row_pack, mnv3_q8_params_bytes, mnv3_q8_prepare,
    mnv3_no_workspace, {.fc = mnv3_q8_fc_driver}, &gemm_impl,
};

static const mnv3_row *const set_rows[] = {
    &pointwise_row, &mnv3_q8_depthwise_avx2, &conv_row, &fc_row, NULL,
};

const mnv3_kernel_set mnv3_kernel_set_avx512vnni_q8 = {
    "avx512vnni", 1u << MNV3_ISA_AVX512, mnv3_cpu_has_avx512vnni, set_rows,
    &mnv3_q8_input_avx2,
};

#else
typedef int mnv3_x86_avx512vnni_q8_unused;
#endif
