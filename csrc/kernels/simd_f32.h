/* Float32 microkernels written once against a handful of vector primitives, and the rows
 * that offer them. AVX2, AVX-512 and NEON differ only in vector width, register count and
 * how a partial vector is loaded, so this one body serves all three; the drivers around it
 * are portable code (drivers/float.c). Included (deliberately without an include guard) by
 * avx2_f32.c, avx512_f32.c and neon_f32.c, each of which first defines:
 *
 *   SIMD_ATTR                the target attribute every function here carries (or nothing)
 *   VW                       floats per vector
 *   PW_MR                    pixel rows per GEMM tile (fills the register file)
 *   DW_G3, DW_G5             depthwise outputs computed together for 3x3 and 5x5 kernels
 *   vf, vmask                vector and lane-mask types
 *   v_zero v_set1 v_load v_loadm v_store v_storem v_fma v_add v_mul v_max v_min v_hsum
 *   v_mask(n)                mask selecting the first n lanes, 0 <= n <= VW
 *   SIMD_ISA, SIMD_NR, SIMD_VW  tokens for microkernel names (avx512, 32, 16)
 *   SIMD_SET, SIMD_ISAS, SIMD_NAME, SIMD_SUPPORTED  the kernel set this file defines (its
 *                            ids as a mask of 1u << mnv3_isa)
 *
 * and may define, to replace a part of the body with its own:
 *
 *   PW_ONLY_WIDE             1: output channels round up to whole panels (PW_NR), so no
 *                            narrow (VW-wide) GEMM microkernels exist
 *   PW_KLOOP2, PW_KLOOP1     the GEMM k loops (see below)
 *   PW_WIDEN, PW_TILES       the packed weights are narrower than the tiles read: the
 *                            driver widens them with PW_WIDEN and runs PW_TILES (another
 *                            set's mnv3_f32_gemm_impl) on them
 *   PW_BORROWED_TILES        the set has no GEMM tiles of its own (it runs PW_TILES; the
 *                            impl's wide and narrow tables are empty)
 *   PW_OWN_TILES             the wide GEMM tiles (PW_ONLY_WIDE) are the set's own, defined
 *                            after this file under their usual names
 *   CONV_GROUP               the stem's group of CONV_G interior pixels (conv_group)
 *   GEMV_MR, GEMV_UKERNEL, GEMV_NAME  the fully connected microkernel, its rows and name
 *                            (defined after this file)
 *   DW_OWN_SHAPES            the 3x3 and 5x5 depthwise microkernels are the set's own,
 *                            defined after this file
 *   CONV_OWN                 the stem's packing (conv_packed_bytes, conv_pack) and
 *                            microkernel (CONV_UKERNEL, named CONV_NAME) are the set's own,
 *                            defined after this file
 *   DW_OWN_ANY               so is the depthwise microkernel for other shapes
 *
 * v_loadm/v_storem never touch memory in masked-off lanes, which is what lets channel
 * counts that are not a multiple of VW be read and written without overrunning a buffer.
 *
 * Weights go through a hook, so that the same body serves other weight storage (float16
 * weights with float32 arithmetic: avx2_f16w.c, avx512_f16w.c, neon_f16w.c). A file
 * may define, before including this one:
 *
 *   W_CANON_T                element type of the model's (canonical) weights   [float]
 *   W_T                      element type of the packed weights                [W_CANON_T]
 *   W_FROM_CANON(x)          one canonical element as W_T, at packing          [x]
 *   W_LOAD(p)                VW packed weights as a vector                     [v_load]
 *   W_CANON_LOAD(p), W_CANON_LOADM(p, n)  VW, or the first n, canonical weights as a
 *                            vector: the GEMV reads the canonical layout in place
 *   SIMD_WTYPE, UK_PREC      the rows' weight type and the precision in the microkernels'
 *                            names                                     [MNV3_DTYPE_F32, f32]
 *
 * Relaxed-precision sets (neon_f16*.c, avx512_bf16.c) also override the GEMM k loop
 * and may give the pointwise weights their own packing:
 *
 *   SIMD_ATYPE, SIMD_ARITH   the rows' act_type (activations between layers) and the
 *                            arithmetic of their products (F16 or BF16)  [MNV3_DTYPE_F32]
 *   PW_PACKED_BYTES, PW_PACK, PW_ELEM_BYTES  the pointwise packing [pw_packed_bytes, pw_pack,
 *                            sizeof(W_T)]
 *
 * and, where the activations are not float32, either the element and its vector load and
 * store, with which the GEMM epilogue, the SE scaling and the depthwise code here read and
 * write them (bf16 for x86/avx512_bf16.c):
 *
 *   A_T, A_LOAD(p, full, m), A_STORE(p, v, full, m)  an activation element; VW of them (the
 *                            lanes of m unless full) as float32 lanes, and v rounded into
 *                            them                           [float, load_part, store_part]
 *
 * or their own versions of those parts (float16 for arm/neon_f16_body.h):
 *
 *   PW_DECL2, PW_FIN2        a GEMM tile's row pointers and its epilogue/residual/store
 *   PW_SCALE_ROWS            the pointwise row's SE scaling of input rows [pw_scale_rows]
 *   DW_ROW                   the depthwise row, defined by the including file; the generic
 *                            depthwise code is then left out
 *   CONV_OUT_T, CONV_STORE(p, v, full, m)  the stem's output element and its store
 *                            [A_T, A_STORE]
 */

#ifndef W_CANON_T
#define W_CANON_T float
#endif
#ifndef W_T
#define W_T W_CANON_T
#endif
#ifndef W_FROM_CANON
#define W_FROM_CANON(x) (x)
#endif
#ifndef W_LOAD
#define W_LOAD(p) v_load(p)
#endif
#ifndef W_CANON_LOAD
#define W_CANON_LOAD(p) v_load(p)
#define W_CANON_LOADM(p, n) v_loadm((p), v_mask(n))
#endif
#ifndef SIMD_WTYPE
#define SIMD_WTYPE MNV3_DTYPE_F32
#endif
#ifndef UK_PREC
#define UK_PREC f32
#endif
#ifndef SIMD_ATYPE
#define SIMD_ATYPE MNV3_DTYPE_F32
#endif
#ifndef SIMD_ARITH
#define SIMD_ARITH MNV3_DTYPE_F32
#endif
#ifndef PW_PACK
#define PW_DEFAULT_PACKING 1
#define PW_PACKED_BYTES pw_packed_bytes
#define PW_PACK pw_pack
#define PW_ELEM_BYTES sizeof(W_T)
#endif

#define SIMD_FN static SIMD_ATTR
#define SIMD_INLINE static inline __attribute__((always_inline)) SIMD_ATTR

#define PW_NR (2 * VW)
#ifndef PW_ONLY_WIDE
#define PW_ONLY_WIDE 0
#endif
/* Output channels of the packed weights round up to this. */
#define PW_NR_MIN (PW_ONLY_WIDE ? PW_NR : VW)
#ifndef PW_WIDEN
#define PW_WIDEN NULL
#define PW_TILES NULL
#endif

/* Microkernel names: mnv3_<precision>_<op><tile>__<isa>, e.g. mnv3_f32_gemm_8x32__avx512. */
#define UK_NAME__(prec, op, tile, isa) mnv3_##prec##_##op##tile##__##isa
#define UK_NAME_(prec, op, tile, isa) UK_NAME__(prec, op, tile, isa)
#define UK_NAME(op, tile, isa) UK_NAME_(UK_PREC, op, tile, isa)
#define UK_TILE_(a, b) a##x##b
#define UK_TILE(a, b) UK_TILE_(a, b)
#define UK_STR_(x) #x
#define UK_STR(x) UK_STR_(x)

static uint32_t round_up_u32(uint32_t x, uint32_t m) { return (x + m - 1) / m * m; }

/* ------------------------------------------------------------------------------------ */
/* Parameters: the epilogue as vectors                                                   */
/* ------------------------------------------------------------------------------------ */

/* Clamps that are unbounded are skipped rather than applied as max(-inf)/min(+inf): in
 * the early layers K is small enough that the epilogue is a visible share of the work. */
typedef struct simd_ep {
    vf pre_lo, pre_hi, post_lo, post_hi, res_lo, res_hi;
    int pre, post, res_clamp;
    mnv3_activation act;
} simd_ep;

typedef char simd_ep_fits[sizeof(simd_ep) <= MNV3_PARAMS_BYTES ? 1 : -1];
/* One simd_ep in the arena per layer: vectors need their alignment (64 at most). */
typedef char simd_ep_aligned[MNV3_F32_UKERNEL_PARAMS % sizeof(vf) == 0 ? 1 : -1];

SIMD_FN void prepare(const mnv3_epilogue *src, const mnv3_clamp *res, void *params) {
    simd_ep *e = (simd_ep *)params;
    e->pre = !mnv3_clamp_is_unbounded(src->pre);
    e->post = !mnv3_clamp_is_unbounded(src->post);
    e->res_clamp = res && !mnv3_clamp_is_unbounded(*res);
    e->pre_lo = v_set1(src->pre.lo);
    e->pre_hi = v_set1(src->pre.hi);
    e->post_lo = v_set1(src->post.lo);
    e->post_hi = v_set1(src->post.hi);
    e->res_lo = v_set1(res ? res->lo : 0.0f);
    e->res_hi = v_set1(res ? res->hi : 0.0f);
    e->act = src->activation;
}

/* Same operation order as mnv3_epilogue_apply, so results match the reference bit for bit
 * given the same accumulator. */
SIMD_INLINE vf ep_apply(const simd_ep *e, vf x) {
    const vf zero = v_zero(), six = v_set1(6.0f);
    vf r;
    if (e->pre) x = v_min(v_max(x, e->pre_lo), e->pre_hi);
    switch (e->act) {
    case MNV3_ACT_RELU: x = v_max(x, zero); break;
    case MNV3_ACT_RELU6: x = v_min(v_max(x, zero), six); break;
    case MNV3_ACT_HARD_SWISH:
        r = v_min(v_max(v_add(x, v_set1(3.0f)), zero), six);
        x = v_mul(v_mul(x, r), v_set1(1.0f / 6.0f));
        break;
    case MNV3_ACT_HARD_SIGMOID:
        r = v_min(v_max(v_add(x, v_set1(3.0f)), zero), six);
        x = v_mul(r, v_set1(1.0f / 6.0f));
        break;
    case MNV3_ACT_NONE:
    default: break;
    }
    if (e->post) x = v_min(v_max(x, e->post_lo), e->post_hi);
    return x;
}

SIMD_INLINE vf load_part(const float *p, int full, vmask m) { return full ? v_load(p) : v_loadm(p, m); }

SIMD_INLINE void store_part(float *p, vf v, int full, vmask m) {
    if (full)
        v_store(p, v);
    else
        v_storem(p, m, v);
}

#ifndef A_T
#define A_T float
#define A_LOAD(p, full, m) load_part((p), (full), (m))
#define A_STORE(p, v, full, m) store_part((p), (v), (full), (m))
#endif
/* An activation pointer of the tile and span structs (declared float) as A_T. */
#define A_PTR(p) ((const A_T *)(const void *)(p))
#define A_PTR_MUT(p) ((A_T *)(void *)(p))

/* channel_sums[0..n) += s for the lanes in m. */
SIMD_INLINE void add_sums(float *sums, vf s, vmask m) { v_storem(sums, m, v_add(v_loadm(sums, m), s)); }

/* ------------------------------------------------------------------------------------ */
/* GEMM (pointwise convolutions)                                                         */
/* ------------------------------------------------------------------------------------ */

/* Packed layout: output channels rounded up to PW_NR_MIN, cut into panels of PW_NR columns
 * (the last one VW wide when only that much is left); panel p starts at p * PW_NR * K and holds
 * K rows of its width, zero-padded. The microkernel keeps PW_MR x (2 vectors) accumulators
 * in registers; each k step loads two weight vectors and broadcasts one input per row. */
#ifdef PW_DEFAULT_PACKING
static size_t pw_packed_bytes(uint32_t in_channels, uint32_t out_channels) {
    return (size_t)in_channels * round_up_u32(out_channels, PW_NR_MIN) * sizeof(W_T);
}

static void pw_pack(const void *weight_, uint32_t in_channels, uint32_t out_channels,
                    void *packed_) {
    const W_CANON_T *weight = (const W_CANON_T *)weight_;
    W_T *packed = (W_T *)packed_;
    const uint32_t K = in_channels, npad = round_up_u32(out_channels, PW_NR_MIN);
    uint32_t col, k, j;
    for (col = 0; col < npad; col += PW_NR) {
        const uint32_t width = col + PW_NR <= npad ? PW_NR : VW;
        W_T *dst = packed + (size_t)col * K;
        for (k = 0; k < K; ++k)
            for (j = 0; j < width; ++j)
                dst[(size_t)k * width + j] =
                    col + j < out_channels ? W_FROM_CANON(weight[(size_t)(col + j) * K + k]) : 0;
    }
}
#endif

#ifndef PW_SCALE_ROWS
#define PW_SCALE_ROWS pw_scale_rows
SIMD_INLINE vf pw_gated(vf x, vf scale, int clamped, vf lo, vf hi) {
    x = v_mul(x, scale);
    return clamped ? v_min(v_max(x, lo), hi) : x;
}

SIMD_FN void pw_scale_rows(const float *in, size_t in_stride, const float *scale, uint32_t K,
                           uint32_t rows, float *dst, size_t dst_stride, int clamped,
                           mnv3_clamp clamp) {
    const uint32_t kv = K / VW * VW;
    const vmask m = v_mask(K - kv), all = v_mask(VW);
    const vf lo = v_set1(clamp.lo), hi = v_set1(clamp.hi);
    uint32_t r, k;
    for (r = 0; r < rows; ++r) {
        const A_T *src = A_PTR(in) + r * in_stride;
        A_T *d = A_PTR_MUT(dst) + r * dst_stride;
        for (k = 0; k < kv; k += VW)
            A_STORE(d + k, pw_gated(A_LOAD(src + k, 1, all), v_load(scale + k), clamped, lo, hi),
                    1, all);
        if (kv < K)
            A_STORE(d + kv,
                    pw_gated(A_LOAD(src + kv, 0, m), v_loadm(scale + kv, m), clamped, lo, hi), 0,
                    m);
    }
}
#endif

/* Which columns of the tile are real: two vectors (m0, m1) or one. */
typedef struct pw_cols {
    vmask m0, m1;
    int full0, full1;
} pw_cols;

SIMD_INLINE pw_cols pw_columns(uint32_t nc) {
    pw_cols c;
    const uint32_t v0 = nc < VW ? nc : VW, v1 = nc - v0 < VW ? nc - v0 : VW;
    c.full0 = v0 == VW;
    c.full1 = v1 == VW;
    c.m0 = v_mask(v0);
    c.m1 = v_mask(v1);
    return c;
}

SIMD_INLINE void pw_finish(const mnv3_gemm_tile *t, const simd_ep *ep, const pw_cols *cols,
                           vf v, size_t r, int j, vf *sum) {
    const int full = j ? cols->full1 : cols->full0;
    const vmask m = j ? cols->m1 : cols->m0;
    const size_t off = r * t->out_stride + (size_t)j * VW;
    v = ep_apply(ep, v);
    if (t->res) {
        v = v_add(v, A_LOAD(A_PTR(t->res) + off, full, m));
        if (ep->res_clamp) v = v_min(v_max(v, ep->res_lo), ep->res_hi);
    }
    if (t->out) A_STORE(A_PTR_MUT(t->out) + off, v, full, m);
    *sum = v_add(*sum, v);
}

#define PW_ROWS1(X) X(0)
#define PW_ROWS2(X) PW_ROWS1(X) X(1)
#define PW_ROWS3(X) PW_ROWS2(X) X(2)
#define PW_ROWS4(X) PW_ROWS3(X) X(3)
#define PW_ROWS5(X) PW_ROWS4(X) X(4)
#define PW_ROWS6(X) PW_ROWS5(X) X(5)
#define PW_ROWS7(X) PW_ROWS6(X) X(6)
#define PW_ROWS8(X) PW_ROWS7(X) X(7)

#ifndef PW_DECL2
#define PW_DECL2(r)                                                                          \
    const A_T *a##r = A_PTR(t->a) + (size_t)(r) * t->a_stride;                               \
    vf c##r##_0 = b0, c##r##_1 = b1;
#endif
#define PW_FMA2(r)                                                                           \
    {                                                                                        \
        const vf av = v_set1(a##r[k]);                                                       \
        c##r##_0 = v_fma(av, w0, c##r##_0);                                                  \
        c##r##_1 = v_fma(av, w1, c##r##_1);                                                  \
    }
#ifndef PW_FIN2
#define PW_FIN2(r)                                                                           \
    pw_finish(t, ep, &cols, c##r##_0, r, 0, &s0);                                            \
    pw_finish(t, ep, &cols, c##r##_1, r, 1, &s1);
#endif

#define PW_DECL1(r)                                                                          \
    const A_T *a##r = A_PTR(t->a) + (size_t)(r) * t->a_stride;                               \
    vf c##r##_0 = b0;
#define PW_FMA1(r) c##r##_0 = v_fma(v_set1(a##r[k]), w0, c##r##_0);
#define PW_FIN1(r) pw_finish(t, ep, &cols, c##r##_0, r, 0, &s0);

/* The k loops: one k step loads the panel's weight vectors and broadcasts one input per
 * row. A kernel set may bring its own (defined before including this file), with the same
 * names in scope: t, w, k = 0, pf and pf_end, rows a<r> and accumulators c<r>_<j>. */
#ifndef PW_KLOOP2
#define PW_KLOOP2(ROWS)                                                                      \
    for (k = 0; k < t->k; ++k) {                                                             \
        const vf w0 = W_LOAD(w), w1 = W_LOAD(w + VW);                                        \
        w += PW_NR;                                                                          \
        MNV3_PREFETCH_STEP(pf, pf_end);                                                      \
        ROWS(PW_FMA2)                                                                        \
    }
#endif
#ifndef PW_KLOOP1
#define PW_KLOOP1(ROWS)                                                                      \
    for (k = 0; k < t->k; ++k) {                                                             \
        const vf w0 = W_LOAD(w);                                                             \
        w += VW;                                                                             \
        MNV3_PREFETCH_STEP(pf, pf_end);                                                      \
        ROWS(PW_FMA1)                                                                        \
    }
#endif

/* A panel two vectors wide: all columns real is the common case, tested once. */
#define PW_KERNEL2(ROWS, MR)                                                                 \
    SIMD_FN void UK_NAME(gemm_, UK_TILE(MR, SIMD_NR), SIMD_ISA)(const mnv3_gemm_tile *t) {   \
        const simd_ep *ep = (const simd_ep *)t->params;                                      \
        const W_T *w = (const W_T *)t->w;                                                    \
        pw_cols cols;                                                                        \
        vf s0 = v_zero(), s1 = v_zero(), b0 = v_zero(), b1 = v_zero();                       \
        uint32_t k;                                                                          \
        const char *pf = *t->pf, *const pf_end = t->pf_end;                                  \
        if (t->nc >= PW_NR) {                                                                \
            cols.full0 = cols.full1 = 1;                                                     \
            cols.m0 = cols.m1 = v_mask(VW);                                                  \
        } else {                                                                             \
            cols = pw_columns(t->nc);                                                        \
        }                                                                                    \
        if (t->bias) {                                                                       \
            b0 = load_part(t->bias, cols.full0, cols.m0);                                    \
            b1 = load_part(t->bias + VW, cols.full1, cols.m1);                               \
        }                                                                                    \
        {                                                                                    \
            ROWS(PW_DECL2)                                                                   \
            PW_KLOOP2(ROWS)                                                                  \
            *t->pf = pf;                                                                     \
            ROWS(PW_FIN2)                                                                    \
        }                                                                                    \
        if (t->sums) {                                                                       \
            add_sums(t->sums, s0, cols.m0);                                                  \
            add_sums(t->sums + VW, s1, cols.m1);                                             \
        }                                                                                    \
    }

#define PW_KERNEL1(ROWS, MR)                                                                 \
    SIMD_FN void UK_NAME(gemm_, UK_TILE(MR, SIMD_VW), SIMD_ISA)(const mnv3_gemm_tile *t) {   \
        const simd_ep *ep = (const simd_ep *)t->params;                                      \
        const W_T *w = (const W_T *)t->w;                                                    \
        pw_cols cols;                                                                        \
        vf s0 = v_zero(), b0 = v_zero();                                                     \
        uint32_t k;                                                                          \
        const char *pf = *t->pf, *const pf_end = t->pf_end;                                  \
        cols.full0 = t->nc >= VW;                                                            \
        cols.m0 = v_mask(cols.full0 ? VW : t->nc);                                           \
        cols.full1 = 0;                                                                      \
        cols.m1 = cols.m0;                                                                   \
        if (t->bias) b0 = load_part(t->bias, cols.full0, cols.m0);                           \
        {                                                                                    \
            ROWS(PW_DECL1)                                                                   \
            PW_KLOOP1(ROWS)                                                                  \
            *t->pf = pf;                                                                     \
            ROWS(PW_FIN1)                                                                    \
        }                                                                                    \
        if (t->sums) add_sums(t->sums, s0, cols.m0);                                         \
    }

#if !defined(PW_BORROWED_TILES) && !defined(PW_OWN_TILES)
PW_KERNEL2(PW_ROWS1, 1)
PW_KERNEL2(PW_ROWS2, 2)
PW_KERNEL2(PW_ROWS3, 3)
PW_KERNEL2(PW_ROWS4, 4)
#if !PW_ONLY_WIDE
PW_KERNEL1(PW_ROWS1, 1)
PW_KERNEL1(PW_ROWS2, 2)
PW_KERNEL1(PW_ROWS3, 3)
PW_KERNEL1(PW_ROWS4, 4)
#endif
#if PW_MR > 4
PW_KERNEL2(PW_ROWS5, 5)
PW_KERNEL2(PW_ROWS6, 6)
#if !PW_ONLY_WIDE
PW_KERNEL1(PW_ROWS5, 5)
PW_KERNEL1(PW_ROWS6, 6)
#endif
#endif
#if PW_MR > 6
PW_KERNEL2(PW_ROWS7, 7)
PW_KERNEL2(PW_ROWS8, 8)
#if !PW_ONLY_WIDE
PW_KERNEL1(PW_ROWS7, 7)
PW_KERNEL1(PW_ROWS8, 8)
#endif
#endif
#endif /* !PW_BORROWED_TILES && !PW_OWN_TILES */

#define GEMM2(MR) UK_NAME(gemm_, UK_TILE(MR, SIMD_NR), SIMD_ISA)
#if PW_ONLY_WIDE
/* Never called (every panel is whole); the wide tiles would serve a narrow one too. */
#define GEMM1(MR) GEMM2(MR)
#else
#define GEMM1(MR) UK_NAME(gemm_, UK_TILE(MR, SIMD_VW), SIMD_ISA)
#endif

#if defined(PW_OWN_TILES)
SIMD_FN void GEMM2(1)(const mnv3_gemm_tile *t);
SIMD_FN void GEMM2(2)(const mnv3_gemm_tile *t);
SIMD_FN void GEMM2(3)(const mnv3_gemm_tile *t);
SIMD_FN void GEMM2(4)(const mnv3_gemm_tile *t);
#if PW_MR > 4
SIMD_FN void GEMM2(5)(const mnv3_gemm_tile *t);
SIMD_FN void GEMM2(6)(const mnv3_gemm_tile *t);
#endif
#if PW_MR > 6
SIMD_FN void GEMM2(7)(const mnv3_gemm_tile *t);
SIMD_FN void GEMM2(8)(const mnv3_gemm_tile *t);
#endif
#endif

static size_t pw_row_packed_bytes(const mnv3_row *row, const mnv3_layer *l) {
    (void)row;
    return PW_PACKED_BYTES(l->in_channels, l->out_channels);
}

static void pw_row_pack(const mnv3_row *row, const mnv3_layer *l, void *packed) {
    (void)row;
    PW_PACK(l->weight, l->in_channels, l->out_channels, packed);
}

/* A set whose tiles others borrow names its impl (PW_IMPL_NAME) to export it. */
#ifndef PW_IMPL_NAME
#define PW_IMPL_NAME gemm_impl
static
#endif
const mnv3_f32_gemm_impl PW_IMPL_NAME = {
    prepare,
    sizeof(simd_ep),
    PW_MR,
    PW_NR,
    PW_NR_MIN,
    PW_ELEM_BYTES,
    PW_SCALE_ROWS,
#if defined(PW_BORROWED_TILES)
    {NULL},
    {NULL},
#else
    {GEMM2(1), GEMM2(2), GEMM2(3), GEMM2(4)
#if PW_MR > 4
     , GEMM2(5), GEMM2(6)
#endif
#if PW_MR > 6
     , GEMM2(7), GEMM2(8)
#endif
    },
    {GEMM1(1), GEMM1(2), GEMM1(3), GEMM1(4)
#if PW_MR > 4
     , GEMM1(5), GEMM1(6)
#endif
#if PW_MR > 6
     , GEMM1(7), GEMM1(8)
#endif
    },
#endif
    PW_WIDEN,
    PW_TILES,
};

static const mnv3_row pointwise_row = {
    UK_STR(UK_PREC) "_gemm_" UK_STR(PW_MR) "x" UK_STR(SIMD_NR) "__" UK_STR(SIMD_ISA),
    MNV3_ROW_POINTWISE, SIMD_WTYPE, SIMD_ATYPE, SIMD_ARITH, PW_NR,
    pw_row_packed_bytes, pw_row_pack, mnv3_f32_params_bytes, mnv3_f32_prepare,
    mnv3_f32_pointwise_workspace, {mnv3_f32_pointwise_driver}, &PW_IMPL_NAME,
};

#if !defined(DW_ROW)
/* ------------------------------------------------------------------------------------ */
/* Depthwise                                                                             */
/* ------------------------------------------------------------------------------------ */

/* Packed layout: [ky][kx][channels rounded up to VW], zero-padded, so weight loads are
 * always whole vectors; only activations need masks. */
static size_t dw_packed_bytes(uint32_t channels, uint32_t kernel) {
    return (size_t)kernel * kernel * round_up_u32(channels, VW) * sizeof(W_T);
}

static void dw_pack(const void *weight_, uint32_t channels, uint32_t kernel, void *packed_) {
    const W_CANON_T *weight = (const W_CANON_T *)weight_;
    W_T *packed = (W_T *)packed_;
    const uint32_t cp = round_up_u32(channels, VW);
    uint32_t t, c;
    for (t = 0; t < kernel * kernel; ++t)
        for (c = 0; c < cp; ++c)
            packed[(size_t)t * cp + c] = c < channels ? W_FROM_CANON(weight[(size_t)t * channels + c]) : 0;
}

/* One output pixel with every horizontal tap bounds-checked (the left and right borders).
 * r[ky] points at channel c of input row ky, or is NULL. */
SIMD_INLINE vf dw_edge(const mnv3_dw_span *s, const A_T *const *r, const vf *w, uint32_t ox,
                       const uint32_t KS, vf acc, const int full, vmask m) {
    const long ix0 = (long)ox * s->stride - (long)s->pad_left;
    uint32_t ky, kx;
#pragma GCC unroll 5
    for (ky = 0; ky < KS; ++ky) {
        if (!r[ky]) continue;
#pragma GCC unroll 5
        for (kx = 0; kx < KS; ++kx) {
            const long ix = ix0 + (long)kx;
            if (ix < 0 || ix >= (long)s->in_width) continue;
            acc = v_fma(A_LOAD(r[ky] + (size_t)ix * s->channels, full, m), w[ky * KS + kx], acc);
        }
    }
    return acc;
}

/* G interior outputs of one row at once: independent FMA chains instead of one chain of
 * KS*KS dependent multiply-adds, and each input vector is loaded once and used by every
 * output whose window covers it (with stride 1, G+KS-1 loads per row instead of G*KS). */
SIMD_INLINE void dw_group(const A_T *const *q, size_t C, const vf *w, vf *acc, const uint32_t KS,
                          const uint32_t S, const uint32_t G, const int full, vmask m) {
    uint32_t ky, t, j;
#pragma GCC unroll 5
    for (ky = 0; ky < KS; ++ky) {
        if (!q[ky]) continue;
#pragma GCC unroll 32
        for (t = 0; t < (G - 1) * S + KS; ++t) {
            const vf x = A_LOAD(q[ky] + (size_t)t * C, full, m);
#pragma GCC unroll 16
            for (j = 0; j < G; ++j)
                if (t >= j * S && t - j * S < KS) acc[j] = v_fma(x, w[ky * KS + t - j * S], acc[j]);
        }
    }
}

/* Outputs [ox0, ox1) of one channel vector at c, weights held in registers across them:
 * the left border, groups of G interior outputs, the right border. */
SIMD_INLINE void dw_vector(const mnv3_dw_span *s, const simd_ep *ep, uint32_t c, uint32_t ox0,
                           uint32_t ox1, const uint32_t KS, const uint32_t S, const uint32_t G,
                           const int full, vmask m) {
    const size_t C = s->channels, cp = round_up_u32(s->channels, VW);
    const W_T *wp = (const W_T *)s->w + c;
    const uint32_t lo = s->ox_lo < ox0 ? ox0 : (s->ox_lo > ox1 ? ox1 : s->ox_lo);
    const uint32_t hi = s->ox_hi < lo ? lo : (s->ox_hi > ox1 ? ox1 : s->ox_hi);
    A_T *out = A_PTR_MUT(s->out) + c;
    vf w[25], bias, sum = v_zero(), v;
    const A_T *r[5];
    uint32_t ox = ox0, ky, j, t;
#pragma GCC unroll 25
    for (t = 0; t < KS * KS; ++t) w[t] = W_LOAD(wp + t * cp);
    bias = s->bias ? v_loadm(s->bias + c, m) : v_zero();
#pragma GCC unroll 5
    for (ky = 0; ky < KS; ++ky) r[ky] = s->rows[ky] ? A_PTR(s->rows[ky]) + c : NULL;
    for (; ox < lo; ++ox) {
        v = ep_apply(ep, dw_edge(s, r, w, ox, KS, bias, full, m));
        A_STORE(out + (size_t)ox * C, v, full, m);
        sum = v_add(sum, v);
    }
    if (ox < hi) {
        const size_t base = (size_t)((long)ox * S - (long)s->pad_left) * C;
        const A_T *q[5];
#pragma GCC unroll 5
        for (ky = 0; ky < KS; ++ky) q[ky] = r[ky] ? r[ky] + base : NULL;
        for (; ox + G <= hi; ox += G) {
            vf acc[16];
#pragma GCC unroll 16
            for (j = 0; j < G; ++j) acc[j] = bias;
            dw_group(q, C, w, acc, KS, S, G, full, m);
#pragma GCC unroll 16
            for (j = 0; j < G; ++j) {
                acc[j] = ep_apply(ep, acc[j]);
                A_STORE(out + (size_t)(ox + j) * C, acc[j], full, m);
            }
            /* pairwise, so the sum is not one long dependent chain */
#pragma GCC unroll 16
            for (j = 1; j < G; j *= 2) {
                uint32_t i2;
#pragma GCC unroll 16
                for (i2 = 0; i2 + j < G; i2 += 2 * j) acc[i2] = v_add(acc[i2], acc[i2 + j]);
            }
            sum = v_add(sum, acc[0]);
#pragma GCC unroll 5
            for (ky = 0; ky < KS; ++ky)
                if (q[ky]) q[ky] += (size_t)G * S * C;
        }
        if (ox < hi && hi - lo >= G) {
            /* The remainder as one group overlapping the last: the overlapped outputs are
             * recomputed identically, and only the new ones enter the sum. */
            const uint32_t start = hi - G, skip = ox - start;
            vf acc[16];
#pragma GCC unroll 5
            for (ky = 0; ky < KS; ++ky)
                if (q[ky]) q[ky] -= (size_t)skip * S * C;
#pragma GCC unroll 16
            for (j = 0; j < G; ++j) acc[j] = bias;
            dw_group(q, C, w, acc, KS, S, G, full, m);
#pragma GCC unroll 16
            for (j = 0; j < G; ++j) {
                acc[j] = ep_apply(ep, acc[j]);
                A_STORE(out + (size_t)(start + j) * C, acc[j], full, m);
                if (j >= skip) sum = v_add(sum, acc[j]);
            }
            ox = hi;
        }
        for (; ox < hi; ++ox) {
            vf acc = bias;
            dw_group(q, C, w, &acc, KS, S, 1, full, m);
            v = ep_apply(ep, acc);
            A_STORE(out + (size_t)ox * C, v, full, m);
            sum = v_add(sum, v);
#pragma GCC unroll 5
            for (ky = 0; ky < KS; ++ky)
                if (q[ky]) q[ky] += (size_t)S * C;
        }
    }
    for (; ox < ox1; ++ox) {
        v = ep_apply(ep, dw_edge(s, r, w, ox, KS, bias, full, m));
        A_STORE(out + (size_t)ox * C, v, full, m);
        sum = v_add(sum, v);
    }
    if (s->sums) add_sums(s->sums + c, sum, m);
}

/* Every channel vector of outputs [ox0, ox1). */
SIMD_INLINE void dw_vectors(const mnv3_dw_span *s, const simd_ep *ep, uint32_t ox0, uint32_t ox1,
                            const uint32_t KS, const uint32_t S, const uint32_t G) {
    const uint32_t C = s->channels;
    uint32_t c;
    for (c = 0; c + VW <= C; c += VW) dw_vector(s, ep, c, ox0, ox1, KS, S, G, 1, v_mask(VW));
    if (c < C) dw_vector(s, ep, c, ox0, ox1, KS, S, G, 0, v_mask(C - c));
}

/* Pixel-major order finishes all channel vectors of a group of outputs while its input
 * rows are in L1, instead of sweeping whole rows once per channel vector (which for wide
 * layers re-reads the rows from L2 or L3 once per vector). The interior goes in pieces of
 * about 16 outputs: with pieces of one group (4 outputs on AVX2) reloading each channel
 * vector's weights and borders cost a third of the layer (Zen 3, Large's block 1), while
 * 16 outputs at stride 2 over 64 channels still read under 32 KiB of input rows. */
#define DW_PIXEL_MAJOR_PIXELS 16u
SIMD_INLINE void dw_span(const mnv3_dw_span *s, const uint32_t KS, const uint32_t S,
                         const uint32_t G) {
    const simd_ep *ep = (const simd_ep *)s->params;
    uint32_t ox = s->ox_begin, n = s->ox_end - s->ox_begin;
    /* One call site of the (large, unrolled) body for both orders: the whole span at once,
     * or pixel-major pieces of G interior outputs or one border output. */
    while (ox < s->ox_end) {
        if (s->pixel_major) {
            const uint32_t end = s->ox_hi < s->ox_end ? s->ox_hi : s->ox_end;
            const uint32_t piece = DW_PIXEL_MAJOR_PIXELS > G ? DW_PIXEL_MAJOR_PIXELS / G * G : G;
            n = ox >= s->ox_lo && ox + G <= end ? (end - ox < piece ? end - ox : piece) : 1;
        }
        dw_vectors(s, ep, ox, ox + n, KS, S, G);
        ox += n;
    }
}

#define DW_KERNEL(K, S, G)                                                                   \
    SIMD_FN void UK_NAME(dwconv_, K##x##K##s##S, SIMD_ISA)(const mnv3_dw_span *s) {          \
        dw_span(s, K, S, G);                                                                 \
    }
#ifndef DW_OWN_SHAPES
DW_KERNEL(3, 1, DW_G3)
DW_KERNEL(3, 2, DW_G3)
DW_KERNEL(5, 1, DW_G5)
DW_KERNEL(5, 2, DW_G5)
#else
/* The set defines these four after including this file (arm/neon_dw.h). */
SIMD_FN void UK_NAME(dwconv_, 3x3s1, SIMD_ISA)(const mnv3_dw_span *s);
SIMD_FN void UK_NAME(dwconv_, 3x3s2, SIMD_ISA)(const mnv3_dw_span *s);
SIMD_FN void UK_NAME(dwconv_, 5x5s1, SIMD_ISA)(const mnv3_dw_span *s);
SIMD_FN void UK_NAME(dwconv_, 5x5s2, SIMD_ISA)(const mnv3_dw_span *s);
#endif

#ifndef DW_OWN_ANY
/* Other kernel sizes: weights read from memory, every tap bounds-checked. */
SIMD_INLINE void dw_vector_any(const mnv3_dw_span *s, const simd_ep *ep, uint32_t c,
                               const int full, vmask m) {
    const uint32_t C = s->channels, KS = s->kernel, cp = round_up_u32(C, VW);
    const W_T *wp = (const W_T *)s->w + c;
    const vf bias = s->bias ? v_loadm(s->bias + c, m) : v_zero();
    vf sum = v_zero();
    uint32_t ox, ky, kx;
    for (ox = s->ox_begin; ox < s->ox_end; ++ox) {
        const long ix0 = (long)ox * s->stride - (long)s->pad_left;
        vf acc = bias, v;
        for (ky = 0; ky < KS; ++ky) {
            if (!s->rows[ky]) continue;
            for (kx = 0; kx < KS; ++kx) {
                const long ix = ix0 + (long)kx;
                if (ix < 0 || ix >= (long)s->in_width) continue;
                acc = v_fma(A_LOAD(A_PTR(s->rows[ky]) + (size_t)ix * C + c, full, m),
                            W_LOAD(wp + ((size_t)ky * KS + kx) * cp), acc);
            }
        }
        v = ep_apply(ep, acc);
        A_STORE(A_PTR_MUT(s->out) + (size_t)ox * C + c, v, full, m);
        sum = v_add(sum, v);
    }
    if (s->sums) add_sums(s->sums + c, sum, m);
}

SIMD_FN void UK_NAME(dwconv_, any, SIMD_ISA)(const mnv3_dw_span *s) {
    const simd_ep *ep = (const simd_ep *)s->params;
    const uint32_t C = s->channels;
    uint32_t c;
    for (c = 0; c + VW <= C; c += VW) dw_vector_any(s, ep, c, 1, v_mask(VW));
    if (c < C) dw_vector_any(s, ep, c, 0, v_mask(C - c));
}
#else
SIMD_FN void UK_NAME(dwconv_, any, SIMD_ISA)(const mnv3_dw_span *s);
#endif

static const mnv3_f32_dw_impl dw_impl = {
    prepare,
    sizeof(simd_ep),
    {UK_NAME(dwconv_, 3x3s1, SIMD_ISA), UK_NAME(dwconv_, 3x3s2, SIMD_ISA),
     UK_NAME(dwconv_, 5x5s1, SIMD_ISA), UK_NAME(dwconv_, 5x5s2, SIMD_ISA),
     UK_NAME(dwconv_, any, SIMD_ISA)},
};

static size_t dw_row_packed_bytes(const mnv3_row *row, const mnv3_layer *l) {
    (void)row;
    return dw_packed_bytes(l->out_channels, l->kernel);
}

static void dw_row_pack(const mnv3_row *row, const mnv3_layer *l, void *packed) {
    (void)row;
    dw_pack(l->weight, l->out_channels, l->kernel, packed);
}

static const mnv3_row depthwise_row = {
    UK_STR(UK_PREC) "_dwconv__" UK_STR(SIMD_ISA),
    MNV3_ROW_DEPTHWISE, SIMD_WTYPE, SIMD_ATYPE, SIMD_ARITH, 1,
    dw_row_packed_bytes, dw_row_pack, mnv3_f32_params_bytes, mnv3_f32_prepare,
    mnv3_no_workspace, {.depthwise = mnv3_f32_depthwise_driver}, &dw_impl,
};
#define DW_ROW depthwise_row
#endif /* !DW_ROW */

/* ------------------------------------------------------------------------------------ */
/* Dense convolution (the stem)                                                          */
/* ------------------------------------------------------------------------------------ */

#ifndef CONV_OUT_T
#define CONV_OUT_T A_T
#define CONV_STORE(p, v, full, m) A_STORE((p), (v), (full), (m))
#endif

#ifndef CONV_OWN
/* Packed layout: output channels in blocks of VW; block b holds [ky][kx][ci][VW]. Each
 * input sample is broadcast and multiplied into a whole vector of output channels. */
static size_t conv_packed_bytes(uint32_t in_channels, uint32_t out_channels, uint32_t kernel) {
    return (size_t)round_up_u32(out_channels, VW) * kernel * kernel * in_channels * sizeof(W_T);
}

static void conv_pack(const void *weight_, uint32_t in_channels, uint32_t out_channels,
                      uint32_t kernel, void *packed_) {
    const W_CANON_T *weight = (const W_CANON_T *)weight_;
    W_T *packed = (W_T *)packed_;
    const uint32_t taps = kernel * kernel * in_channels, cp = round_up_u32(out_channels, VW);
    uint32_t b, t, j;
    for (b = 0; b < cp; b += VW)
        for (t = 0; t < taps; ++t)
            for (j = 0; j < VW; ++j)
                packed[(size_t)b * taps + (size_t)t * VW + j] =
                    b + j < out_channels ? W_FROM_CANON(weight[(size_t)(b + j) * taps + t]) : 0;
}

/* One output pixel, taps clipped to the input. */
SIMD_INLINE vf conv_pixel(const mnv3_conv_row *r, const W_T *wb, uint32_t ox, vf acc) {
    const mnv3_conv_args *a = r->a;
    const uint32_t K = a->kernel, Ci = a->in_channels;
    const long ix0 = (long)ox * a->stride - (long)a->pad_left;
    const uint32_t kx_lo = ix0 < 0 ? (uint32_t)-ix0 : 0;
    const uint32_t kx_hi = ix0 + (long)K > (long)a->in_width ? (uint32_t)((long)a->in_width - ix0) : K;
    uint32_t ky, kx, ci;
    for (ky = r->ky_lo; ky < r->ky_hi; ++ky) {
        const float *irow = (const float *)a->input + (size_t)(r->iy0 + (long)ky) * a->in_row_stride;
        for (kx = kx_lo; kx < kx_hi; ++kx) {
            const float *ip = irow + (size_t)(ix0 + (long)kx) * a->in_col_stride;
            const W_T *wp = wb + ((size_t)(ky * K + kx) * Ci) * VW;
            for (ci = 0; ci < Ci; ++ci)
                acc = v_fma(v_set1(ip[(size_t)ci * a->in_chan_stride]), W_LOAD(wp + (size_t)ci * VW),
                            acc);
        }
    }
    return acc;
}

/* Interior pixels go CONV_G at a time: one FMA chain per pixel hides the FMA latency that
 * a single pixel's chain of K*K*Ci dependent multiply-adds would expose. */
#define CONV_G 8

SIMD_INLINE void conv_group(const mnv3_conv_row *r, const simd_ep *ep, const W_T *wb, CONV_OUT_T *out,
                            uint32_t ox, vf bias, int full, vmask m) {
    const mnv3_conv_args *a = r->a;
    const uint32_t K = a->kernel, Ci = a->in_channels;
    const size_t px_step = (size_t)a->stride * a->in_col_stride, Co = a->out_channels;
    const long ix0 = (long)ox * a->stride - (long)a->pad_left;
    vf acc[CONV_G];
    uint32_t ky, kx, ci, j;
#pragma GCC unroll 8
    for (j = 0; j < CONV_G; ++j) acc[j] = bias;
    for (ky = r->ky_lo; ky < r->ky_hi; ++ky) {
        const float *irow = (const float *)a->input +
                            (size_t)(r->iy0 + (long)ky) * a->in_row_stride +
                            (size_t)ix0 * a->in_col_stride;
        const W_T *wp = wb + (size_t)ky * K * Ci * VW;
        for (kx = 0; kx < K; ++kx) {
            const float *ip = irow + (size_t)kx * a->in_col_stride;
            for (ci = 0; ci < Ci; ++ci, wp += VW) {
                const vf w = W_LOAD(wp);
                const float *q = ip + (size_t)ci * a->in_chan_stride;
#pragma GCC unroll 8
                for (j = 0; j < CONV_G; ++j) acc[j] = v_fma(v_set1(q[j * px_step]), w, acc[j]);
            }
        }
    }
#pragma GCC unroll 8
    for (j = 0; j < CONV_G; ++j) CONV_STORE(out + (size_t)(ox + j) * Co, ep_apply(ep, acc[j]), full, m);
}

SIMD_FN void UK_NAME(conv_, UK_TILE(CONV_G, SIMD_VW), SIMD_ISA)(const mnv3_conv_row *r) {
    const mnv3_conv_args *a = r->a;
    const simd_ep *ep = (const simd_ep *)r->params;
    const uint32_t K = a->kernel, Ci = a->in_channels, Co = a->out_channels;
    const uint32_t taps = K * K * Ci, ox_lo = r->ox_lo, ox_hi = r->ox_hi;
    CONV_OUT_T *out = (CONV_OUT_T *)(void *)r->out;
    uint32_t ox, b;
    for (b = 0; b < Co; b += VW) {
        const int full = Co - b >= VW;
        const vmask m = v_mask(full ? VW : Co - b);
        const W_T *wb = (const W_T *)a->packed + (size_t)b * taps;
        const vf bias = r->bias ? v_loadm(r->bias + b, m) : v_zero();
        for (ox = 0; ox < ox_lo; ++ox)
            CONV_STORE(out + (size_t)ox * Co + b, ep_apply(ep, conv_pixel(r, wb, ox, bias)), full, m);
        for (; ox + CONV_G <= ox_hi; ox += CONV_G) conv_group(r, ep, wb, out + b, ox, bias, full, m);
        /* The interior remainder as one more group overlapping the previous one: the
         * overlapped pixels are recomputed identically, far cheaper than single pixels
         * whose K*K*Ci multiply-adds form one dependent chain. */
        if (ox < ox_hi && ox_hi - ox_lo >= CONV_G) {
            conv_group(r, ep, wb, out + b, ox_hi - CONV_G, bias, full, m);
            ox = ox_hi;
        }
        for (; ox < a->out_width; ++ox)
            CONV_STORE(out + (size_t)ox * Co + b, ep_apply(ep, conv_pixel(r, wb, ox, bias)), full, m);
    }
}

#define CONV_UKERNEL UK_NAME(conv_, UK_TILE(CONV_G, SIMD_VW), SIMD_ISA)
#define CONV_NAME UK_STR(UK_PREC) "_conv_" UK_STR(CONV_G) "x" UK_STR(SIMD_VW) "__" UK_STR(SIMD_ISA)
#else
static size_t conv_packed_bytes(uint32_t in_channels, uint32_t out_channels, uint32_t kernel);
static void conv_pack(const void *weight_, uint32_t in_channels, uint32_t out_channels,
                      uint32_t kernel, void *packed_);
SIMD_FN void CONV_UKERNEL(const mnv3_conv_row *r);
#endif

static const mnv3_f32_conv_impl conv_impl = {prepare, sizeof(simd_ep), CONV_UKERNEL};

static size_t conv_row_packed_bytes(const mnv3_row *row, const mnv3_layer *l) {
    (void)row;
    return conv_packed_bytes(l->in_channels, l->out_channels, l->kernel);
}

static void conv_row_pack(const mnv3_row *row, const mnv3_layer *l, void *packed) {
    (void)row;
    conv_pack(l->weight, l->in_channels, l->out_channels, l->kernel, packed);
}

static const mnv3_row conv_row = {
    CONV_NAME,
    MNV3_ROW_CONV, SIMD_WTYPE, SIMD_ATYPE, SIMD_ARITH, 1,
    conv_row_packed_bytes, conv_row_pack, mnv3_f32_params_bytes, mnv3_f32_prepare,
    mnv3_no_workspace, {.conv = mnv3_f32_conv_driver}, &conv_impl,
};

/* ------------------------------------------------------------------------------------ */
/* GEMV (fully connected)                                                                */
/* ------------------------------------------------------------------------------------ */

/* Reads the canonical [out][in] weights in place: a matrix-vector product is bound by
 * streaming the weights once, which the row-major layout already does contiguously. Four
 * rows share each input load (a kernel set may bring its own microkernel: GEMV_UKERNEL). */
#ifndef GEMV_UKERNEL
#define GEMV_MR 4
#define GEMV_UKERNEL UK_NAME(gemv_, 4x, SIMD_ISA)
#define GEMV_NAME UK_STR(UK_PREC) "_gemv_4x__" UK_STR(SIMD_ISA)

SIMD_FN void UK_NAME(gemv_, 4x, SIMD_ISA)(const float *x, const void *w_, uint32_t I,
                                          uint32_t count, float *dots) {
    const W_CANON_T *W = (const W_CANON_T *)w_;
    const uint32_t iv = I / VW * VW;
    const vmask m = v_mask(I - iv);
    uint32_t o = 0, i;
    if (count == GEMV_MR) {
        const W_CANON_T *w0 = W, *w1 = w0 + I, *w2 = w1 + I, *w3 = w2 + I;
        vf s0 = v_zero(), s1 = v_zero(), s2 = v_zero(), s3 = v_zero();
        for (i = 0; i < iv; i += VW) {
            const vf xv = v_load(x + i);
            s0 = v_fma(W_CANON_LOAD(w0 + i), xv, s0);
            s1 = v_fma(W_CANON_LOAD(w1 + i), xv, s1);
            s2 = v_fma(W_CANON_LOAD(w2 + i), xv, s2);
            s3 = v_fma(W_CANON_LOAD(w3 + i), xv, s3);
        }
        if (iv < I) {
            const vf xv = v_loadm(x + iv, m);
            s0 = v_fma(W_CANON_LOADM(w0 + iv, I - iv), xv, s0);
            s1 = v_fma(W_CANON_LOADM(w1 + iv, I - iv), xv, s1);
            s2 = v_fma(W_CANON_LOADM(w2 + iv, I - iv), xv, s2);
            s3 = v_fma(W_CANON_LOADM(w3 + iv, I - iv), xv, s3);
        }
        dots[0] = v_hsum(s0);
        dots[1] = v_hsum(s1);
        dots[2] = v_hsum(s2);
        dots[3] = v_hsum(s3);
        return;
    }
    for (; o < count; ++o) {
        const W_CANON_T *w0 = W + (size_t)o * I;
        vf s0 = v_zero();
        for (i = 0; i < iv; i += VW) s0 = v_fma(W_CANON_LOAD(w0 + i), v_load(x + i), s0);
        if (iv < I) s0 = v_fma(W_CANON_LOADM(w0 + iv, I - iv), v_loadm(x + iv, m), s0);
        dots[o] = v_hsum(s0);
    }
}
#else
SIMD_FN void GEMV_UKERNEL(const float *x, const void *w_, uint32_t I, uint32_t count,
                          float *dots);
#endif

static const mnv3_f32_fc_impl fc_impl = {NULL, 0, GEMV_MR, sizeof(W_CANON_T), GEMV_UKERNEL};

static const mnv3_row fc_row = {
    GEMV_NAME,
    MNV3_ROW_FC, SIMD_WTYPE, SIMD_ATYPE, SIMD_ARITH, 1,
    mnv3_no_packing, NULL, mnv3_f32_params_bytes, mnv3_f32_prepare,
    mnv3_no_workspace, {.fc = mnv3_f32_fc_driver}, &fc_impl,
};

/* ------------------------------------------------------------------------------------ */
/* The set                                                                               */
/* ------------------------------------------------------------------------------------ */

static const mnv3_row *const set_rows[] = {&pointwise_row, &DW_ROW, &conv_row, &fc_row, NULL};

const mnv3_kernel_set SIMD_SET = {SIMD_NAME, SIMD_ISAS, SIMD_SUPPORTED, set_rows, NULL};
