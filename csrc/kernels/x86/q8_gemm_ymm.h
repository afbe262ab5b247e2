/* The int8 GEMM on 256-bit vectors, 6 rows x 16 columns, and the rows that offer it.
 * Included (without an include guard) by one file per instantiation, after
 * q8_common.h, with:
 *   DOT_KR, DOT_FORMAT  k per 4-byte group of a prepared row, and the A format:
 *                       2 and MNV3_Q8_A_S16 (int16 pairs; AVX2),
 *                       4 and MNV3_Q8_A_U8 (u8 quadruples; AVX-VNNI and its stand-in)
 *   Q8X_DOT_ACC(acc, a, b)  adds to acc the dot products of each int32 lane's DOT_KR pairs
 *                       of a and b (a statement; native builds write it as inline assembly,
 *                       so that the compiler neither reassociates the unrolled sums nor
 *                       copies accumulators, and the 12 accumulators, 2 weight vectors, a
 *                       broadcast and a product fit the 16 registers)
 *   DOT_SUFFIX, DOT_TILE  the microkernels' name parts (avx2, c2)
 * Weights are packed in groups of DOT_KR k for 16 columns: [k/DOT_KR][16][DOT_KR]. Each
 * k step broadcasts 4 bytes of each row against 2 weight vectors. */

#define DOT_MR 6
#define DOT_NR 16

#define DOT_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)

/* half: the tile stores at most 8 columns (the last panel of 24, 40, 72, 120... output
 * channels), so the upper 8 are neither loaded nor multiplied. */
Q8X_INLINE void gemm_ymm(const mnv3_q8_gemm_tile *t, const uint32_t M, const int half) {
    const unsigned char *w = (const unsigned char *)t->w;
    const __m256i b0 = _mm256_loadu_si256((const __m256i *)(const void *)w);
    const __m256i b1 = _mm256_loadu_si256((const __m256i *)(const void *)(w + 32));
    const char *pf = *t->pf, *pf_end = t->pf_end;
    const mnv3_q8_rq_table *rq = t->rq;
    uint32_t k;
#define DECL(r)                                                                              \
    const unsigned char *a##r = (const unsigned char *)t->a + (M > r ? r : 0) * t->a_stride;  \
    __m256i c##r##0 = b0, c##r##1 = b1;                                                      \
    __asm__("" : "+r"(a##r));
    DOT_ROWS(DECL)
#undef DECL
    if (t->row_terms) {
#define TERM(r)                                                                              \
    if (M > r) {                                                                             \
        const __m256i tr = _mm256_set1_epi32(t->row_terms[r]);                               \
        c##r##0 = _mm256_add_epi32(c##r##0, tr);                                             \
        c##r##1 = _mm256_add_epi32(c##r##1, tr);                                             \
    }
        DOT_ROWS(TERM)
#undef TERM
    }
    w += DOT_NR * 4;
    /* Two k steps per iteration, each row's pointer in a register of its own: the loop's
     * scalar work (pointer chains, counter, prefetch test) otherwise costs more front-end
     * slots than the multiply-accumulates leave free. */
#define STEP(r, kk, w0, w1)                                                                  \
    if (M > r) {                                                                             \
        int32_t v##r;                                                                        \
        __m256i x##r;                                                                        \
        memcpy(&v##r, a##r + (kk) * (4 / DOT_KR), 4);                                        \
        x##r = _mm256_set1_epi32(v##r);                                                      \
        Q8X_DOT_ACC(c##r##0, x##r, w0);                                                      \
        if (!half) Q8X_DOT_ACC(c##r##1, x##r, w1);                                           \
    }
#define K_STEP(kk, wp)                                                                       \
    do {                                                                                     \
        const __m256i w0 = _mm256_loadu_si256((const __m256i *)(const void *)(wp));          \
        const __m256i w1 =                                                                   \
            half ? w0 : _mm256_loadu_si256((const __m256i *)(const void *)((wp) + 32));      \
        STEP(0, kk, w0, w1) STEP(1, kk, w0, w1) STEP(2, kk, w0, w1)                          \
        STEP(3, kk, w0, w1) STEP(4, kk, w0, w1) STEP(5, kk, w0, w1)                          \
    } while (0)
    for (k = 0; k + 2u * DOT_KR <= t->k; k += 2u * DOT_KR) {
        MNV3_PREFETCH_STEP2(pf, pf_end);
        K_STEP(k, w);
        K_STEP(k + DOT_KR, w + 64);
        w += 128;
    }
    if (k < t->k) {
        MNV3_PREFETCH_STEP(pf, pf_end);
        K_STEP(k, w);
    }
#undef K_STEP
#undef STEP
    *t->pf = pf;
    {
        const q8x_out16 o = q8x_out16_load(rq);
        __m128i bytes[DOT_MR];
#define OUT(r, form)                                                                         \
    if (M > r) bytes[r] = q8x_out16_bytes(&o, c##r##0, c##r##1, form, half);
#define OUT_SHORT(r) OUT(r, Q8X_RQ_SHORT)
#define OUT_PLAIN(r) OUT(r, Q8X_RQ_PLAIN)
#define OUT_ANY(r) OUT(r, Q8X_RQ_ANY)
        switch (q8x_rq_form(rq)) {
        case Q8X_RQ_SHORT: DOT_ROWS(OUT_SHORT) break;
        case Q8X_RQ_PLAIN: DOT_ROWS(OUT_PLAIN) break;
        default: DOT_ROWS(OUT_ANY) break;
        }
#undef OUT_SHORT
#undef OUT_PLAIN
#undef OUT_ANY
#undef OUT
        q8x_finish_rows16(t, bytes, M);
    }
}

#define DOT_NAME_(m, tile, sfx) mnv3_q8_gemm_##m##x16##tile##__##sfx
#define DOT_NAME__(m, tile, sfx) DOT_NAME_(m, tile, sfx)
#define DOT_NAME(m, sfx) DOT_NAME__(m, DOT_TILE, sfx)
#define DOT_GEMM(m)                                                                          \
    static Q8X_ATTR void DOT_NAME(m, DOT_SUFFIX)(const mnv3_q8_gemm_tile *t) {                \
        if (t->nc <= 8)                                                                      \
            gemm_ymm(t, m, 1);                                                               \
        else                                                                                 \
            gemm_ymm(t, m, 0);                                                               \
    }
DOT_GEMM(1)
DOT_GEMM(2)
DOT_GEMM(3)
DOT_GEMM(4)
DOT_GEMM(5)
DOT_GEMM(6)
#undef DOT_GEMM

static const mnv3_q8_ops dot_ops = {q8x_prepare_rows, q8x_lut, q8x_add, q8x_requantize_array, 1};

/* The GEMM's impl; FC rows name the one for narrow weights (q8_impl.h). */
#define DOT_IMPL(narrow)                                                                     \
    {                                                                                        \
        DOT_FORMAT,                                                                          \
        DOT_MR,                                                                              \
        DOT_NR,                                                                              \
        DOT_KR,                                                                              \
        {DOT_NAME(1, DOT_SUFFIX), DOT_NAME(2, DOT_SUFFIX), DOT_NAME(3, DOT_SUFFIX),          \
         DOT_NAME(4, DOT_SUFFIX), DOT_NAME(5, DOT_SUFFIX), DOT_NAME(6, DOT_SUFFIX)},         \
        &dot_ops,                                                                            \
        0,                                                                                   \
        MNV3_Q8_FUSE_LUT | MNV3_Q8_FUSE_ADD | MNV3_Q8_FUSE_SUMS,                              \
        0,                                                                                   \
        narrow,                                                                              \
    }
static const mnv3_q8_gemm_impl dot_impl = DOT_IMPL(NULL);

#define DOT_STR_(x) #x
#define DOT_STR(x) DOT_STR_(x)

static const mnv3_row dot_pointwise_row = {
    "q8_gemm_6x16" DOT_STR(DOT_TILE) "__" DOT_STR(DOT_SUFFIX), MNV3_ROW_POINTWISE, MNV3_DTYPE_I8,
    MNV3_DTYPE_I8, MNV3_DTYPE_I8, DOT_NR, mnv3_q8_gemm_row_packed_bytes, mnv3_q8_gemm_row_pack,
    mnv3_q8_params_bytes, mnv3_q8_prepare, mnv3_q8_pointwise_workspace,
    {.pointwise = mnv3_q8_pointwise_driver}, &dot_impl,
};
/* The classifier's impl: the GEMM's, and DOT_FC_NARROW (an includer's impl over int8
 * weights, or none) for layers whose weights fit it. */
#if !defined(DOT_FC_NARROW)
#define DOT_FC_NARROW NULL
#endif
static const mnv3_q8_gemm_impl dot_fc_impl = DOT_IMPL(DOT_FC_NARROW);
#undef DOT_IMPL
static const mnv3_row dot_fc_row = {
    "q8_gemv_1x16" DOT_STR(DOT_TILE) "__" DOT_STR(DOT_SUFFIX), MNV3_ROW_FC, MNV3_DTYPE_I8,
    MNV3_DTYPE_I8, MNV3_DTYPE_I8, DOT_NR, mnv3_q8_fc_row_packed_bytes, mnv3_q8_fc_row_pack,
    mnv3_q8_params_bytes, mnv3_q8_fc_prepare, mnv3_no_workspace, {.fc = mnv3_q8_fc_driver},
    &dot_fc_impl,
};
