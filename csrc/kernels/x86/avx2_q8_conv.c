/* The int8 stem on AVX2, the row every x86 int8 set runs (the VNNI sets too: a stem has
 * too few taps per pixel for a 4-byte dot product to gain over 16-bit pairs, and one row
 * keeps one packing). A tile is up to 4 output pixels x 16 output channels, two vectors
 * of 8 int32 accumulators per pixel. Each kernel row's taps are read in place, 8 bytes at
 * a time, widened to int16 in both 128-bit halves (vpbroadcastq, vpmovsxbw); vpshufd then
 * broadcasts one pair of taps to every lane, and vpmaddwd multiplies it by the packed
 * (w - weight_zp) pairs of 8 channels, exactly (q8_impl.h has the packing and why the
 * input zero point is in the bias). The epilogue is the GEMM tiles': requantization, the
 * LUT two pixels at a time, one store per pixel. */
#include "kernels/kernels.h"

#if defined(MNV3_HAVE_X86_KERNELS)
#define Q8X_ATTR MNV3_X86_TARGET("avx2")
#include "q8_common.h"

#define CONV_MR 4
#define CONV_NR 16
#define CONV_PIXELS(X) X(0) X(1) X(2) X(3)

Q8X_INLINE __m256i conv_mac(__m256i acc, __m256i taps, const __m256i *w) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(taps, _mm256_loadu_si256(w)));
}

/* Tap pairs [0, pairs) of one kernel row of one pixel (x: its first tap) into the pixel's
 * accumulators (channels 0-7, 8-15); w: the row's packed pairs, two vectors each. A last
 * chunk of one pair is read as its 2 bytes, broadcast as they stand. */
Q8X_INLINE void conv_row(const int8_t *x, const __m256i *w, const uint32_t pairs, __m256i *c0,
                         __m256i *c1) {
    uint32_t q;
    for (q = 0; q + 1 < pairs; q += 4) {
        long long v;
        __m256i words;
        memcpy(&v, x + 2 * q, 8);
        words = _mm256_cvtepi8_epi16(_mm_set1_epi64x(v));
#define CONV_PAIR(i, imm)                                                                    \
    if (q + i < pairs) {                                                                     \
        const __m256i p = _mm256_shuffle_epi32(words, imm);                                  \
        *c0 = conv_mac(*c0, p, w + 2 * (q + i));                                             \
        *c1 = conv_mac(*c1, p, w + 2 * (q + i) + 1);                                         \
    }
        CONV_PAIR(0, 0x00)
        CONV_PAIR(1, 0x55)
        CONV_PAIR(2, 0xAA)
        CONV_PAIR(3, 0xFF)
#undef CONV_PAIR
    }
    if (q < pairs) {
        short v;
        __m256i p;
        memcpy(&v, x + 2 * q, 2);
        p = _mm256_cvtepi8_epi16(_mm_set1_epi16(v));
        *c0 = conv_mac(*c0, p, w + 2 * q);
        *c1 = conv_mac(*c1, p, w + 2 * q + 1);
    }
}

/* Pixels [j, j + M) of a span: every kernel row, then the GEMM tiles' epilogue with the
 * pixels as its rows (fin: the span's epilogue, out moved to pixel j). */
Q8X_INLINE void conv_block(const mnv3_q8_conv_span *s, mnv3_q8_gemm_tile *fin, uint32_t j,
                           const uint32_t M, const uint32_t pairs, const int form) {
    const int32_t *bias = (const int32_t *)s->w;
    const __m256i *w = (const __m256i *)(const void *)(bias + CONV_NR);
    const __m256i b0 = _mm256_loadu_si256((const __m256i *)(const void *)bias);
    const __m256i b1 = _mm256_loadu_si256((const __m256i *)(const void *)(bias + 8));
    const size_t at = (size_t)j * s->step;
    __m128i bytes[CONV_MR];
    uint32_t ky;
#define DECL(p) __m256i c##p##0 = b0, c##p##1 = b1;
    CONV_PIXELS(DECL)
#undef DECL
    for (ky = 0; ky < s->kernel; ++ky, w += 2 * pairs) {
        const int8_t *x = s->rows[ky] + at;
#define ROW(p)                                                                               \
    if (M > p) conv_row(x + p * s->step, w, pairs, &c##p##0, &c##p##1);
        CONV_PIXELS(ROW)
#undef ROW
    }
    {
        const q8x_out16 o = q8x_out16_load(s->rq);
#define OUT(p)                                                                               \
    if (M > p) bytes[p] = q8x_out16_bytes(&o, c##p##0, c##p##1, form, 0);
        CONV_PIXELS(OUT)
#undef OUT
    }
    fin->out = s->out + (size_t)j * s->out_stride;
    q8x_finish_rows16(fin, bytes, M);
}

Q8X_INLINE void conv_span(const mnv3_q8_conv_span *s, const uint32_t pairs, const int form) {
    const uint32_t n = s->pixels;
    mnv3_q8_gemm_tile fin;
    uint32_t j = 0;
    /* what the GEMM tiles' epilogue reads: the LUT and the store, nothing else */
    fin.lut = s->lut;
    fin.residual = NULL;
    fin.params = NULL;
    fin.sums = NULL;
    fin.out_stride = s->out_stride;
    fin.nc = s->nc;
    for (; j + CONV_MR <= n; j += CONV_MR) conv_block(s, &fin, j, CONV_MR, pairs, form);
    switch (n - j) {
    case 3: conv_block(s, &fin, j, 3, pairs, form); break;
    case 2: conv_block(s, &fin, j, 2, pairs, form); break;
    case 1: conv_block(s, &fin, j, 1, pairs, form); break;
    default: break;
    }
}

/* The stem's 3x3 kernel rows over 3 channels are 9 taps, 5 pairs: that count unrolled. */
static Q8X_ATTR void mnv3_q8_conv_4x16c2__avx2(const mnv3_q8_conv_span *s) {
    const int form = q8x_rq_form(s->rq);
    if (s->row_taps == 9 && form == Q8X_RQ_SHORT)
        conv_span(s, 5, Q8X_RQ_SHORT);
    else if (s->row_taps == 9 && form == Q8X_RQ_PLAIN)
        conv_span(s, 5, Q8X_RQ_PLAIN);
    else if (s->row_taps == 9)
        conv_span(s, 5, Q8X_RQ_ANY);
    else
        conv_span(s, (s->row_taps + 1) / 2, form);
}

/* The x86 byte helpers, as every x86 int8 set has them (the tiles fuse the LUT). */
static const mnv3_q8_ops conv_ops = {q8x_prepare_rows, q8x_lut, q8x_add, q8x_requantize_array, 1};

static const mnv3_q8_conv_impl conv_impl = {
    mnv3_q8_conv_4x16c2__avx2, CONV_MR, CONV_NR, 2, 8, &conv_ops, MNV3_Q8_FUSE_LUT,
};

const mnv3_row mnv3_q8_conv_avx2 = {
    "q8_conv_4x16c2__avx2", MNV3_ROW_CONV, MNV3_DTYPE_I8, MNV3_DTYPE_I8, MNV3_DTYPE_I8, 1,
    mnv3_q8_conv_row_packed_bytes, mnv3_q8_conv_row_pack, mnv3_q8_params_bytes,
    mnv3_q8_prepare, mnv3_q8_conv_workspace, {.conv = mnv3_q8_conv_driver}, &conv_impl,
};

#else
typedef int mnv3_x86_avx2_q8_conv_unused;
#endif
