/* Shared body of the AVX2 and AVX-512 kernel tables. The two instruction sets differ only
 * in vector width, register count and how a partial vector is masked, so one body written
 * against a handful of vector primitives serves both. Included (deliberately without an
 * include guard) by x86_avx2.c and x86_avx512.c, each of which first defines:
 *
 *   X86_ATTR                 the target attribute every function here carries
 *   VW                       floats per vector
 *   PW_MR                    pixel rows per pointwise microkernel (fills the register file)
 *   DW_G3, DW_G5             depthwise outputs computed together for 3x3 and 5x5 kernels
 *   vf, vmask                vector and lane-mask types
 *   v_zero v_set1 v_load v_loadm v_store v_storem v_fma v_add v_mul v_max v_min v_hsum
 *   v_mask(n)                mask selecting the first n lanes, 0 <= n <= VW
 *   X86_TABLE, X86_ISA, X86_NAME
 *
 * v_loadm/v_storem never touch memory in masked-off lanes, which is what lets channel
 * counts that are not a multiple of VW be read and written without overrunning a buffer. */

#define X86_FN static X86_ATTR
#define X86_INLINE static inline __attribute__((always_inline)) X86_ATTR

#define PW_NR (2 * VW)

static uint32_t round_up_u32(uint32_t x, uint32_t m) { return (x + m - 1) / m * m; }

/* ------------------------------------------------------------------------------------ */
/* Epilogue                                                                              */
/* ------------------------------------------------------------------------------------ */

/* Clamps that are unbounded are skipped rather than applied as max(-inf)/min(+inf): in
 * the early layers K is small enough that the epilogue is a visible share of the work. */
typedef struct x86_ep {
    vf pre_lo, pre_hi, post_lo, post_hi, res_lo, res_hi;
    int pre, post, res_clamp;
    mnv3_activation act;
} x86_ep;

X86_INLINE void ep_init(x86_ep *e, const mnv3_epilogue *src, const mnv3_clamp *res) {
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
X86_INLINE vf ep_apply(const x86_ep *e, vf x) {
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

X86_INLINE vf load_part(const float *p, int full, vmask m) { return full ? v_load(p) : v_loadm(p, m); }

X86_INLINE void store_part(float *p, vf v, int full, vmask m) {
    if (full)
        v_store(p, v);
    else
        v_storem(p, m, v);
}

/* channel_sums[0..n) += s for the lanes in m. */
X86_INLINE void add_sums(float *sums, vf s, vmask m) { v_storem(sums, m, v_add(v_loadm(sums, m), s)); }

/* ------------------------------------------------------------------------------------ */
/* Pointwise: register-blocked GEMM                                                      */
/* ------------------------------------------------------------------------------------ */

/* Packed layout: output channels rounded up to VW, cut into panels of PW_NR columns (the
 * last one VW wide when only that much is left); panel p starts at p * PW_NR * K and holds
 * K rows of its width, zero-padded. The microkernel keeps PW_MR x (2 vectors) accumulators
 * in registers; each k step loads two weight vectors and broadcasts one input per row. */
static size_t pw_packed_floats(uint32_t in_channels, uint32_t out_channels) {
    return (size_t)in_channels * round_up_u32(out_channels, VW);
}

static void pw_pack(const float *weight, uint32_t in_channels, uint32_t out_channels,
                    float *packed) {
    const uint32_t K = in_channels, npad = round_up_u32(out_channels, VW);
    uint32_t col, k, j;
    for (col = 0; col < npad; col += PW_NR) {
        const uint32_t width = col + PW_NR <= npad ? PW_NR : VW;
        float *dst = packed + (size_t)col * K;
        for (k = 0; k < K; ++k)
            for (j = 0; j < width; ++j)
                dst[(size_t)k * width + j] =
                    col + j < out_channels ? weight[(size_t)(col + j) * K + k] : 0.0f;
    }
}

/* Rows are processed in chunks of up to PW_CHUNK; within a chunk every weight panel is
 * applied to all the chunk's rows before the next panel is touched, so a panel read from
 * the last-level cache is reused from L1 by every row tile, and the chunk's input rows
 * stay in L2 across panels. The SE gate scales a chunk's input rows into the workspace once,
 * which costs K multiplies per pixel against K*N multiply-adds. */
#define PW_CHUNK 64

static size_t pw_workspace_floats(uint32_t in_channels, uint32_t out_channels) {
    (void)out_channels;
    return (size_t)PW_CHUNK * round_up_u32(in_channels, VW);
}

typedef struct pw_tile {
    const float *a;          /* row 0 of the input tile */
    size_t a_stride;
    const float *w;          /* the panel */
    uint32_t k;
    vf b0, b1;               /* bias for the two column vectors */
    const x86_ep *ep;
    const float *res;        /* residual at (row 0, panel column 0), or NULL */
    float *out;              /* output at (row 0, panel column 0), or NULL */
    size_t out_stride;
    float *sums;             /* channel_sums at the panel's first column, or NULL */
    vmask m0, m1;            /* valid columns of each vector */
    int full0, full1;
    const char **pf;         /* prefetch cursor, advanced a line per k step up to pf_end */
    const char *pf_end;
} pw_tile;

X86_INLINE vf pw_finish(const pw_tile *t, vf v, size_t r, int j, vf *sum) {
    const int full = j ? t->full1 : t->full0;
    const vmask m = j ? t->m1 : t->m0;
    const size_t off = r * t->out_stride + (size_t)j * VW;
    v = ep_apply(t->ep, v);
    if (t->res) {
        v = v_add(v, load_part(t->res + off, full, m));
        if (t->ep->res_clamp) v = v_min(v_max(v, t->ep->res_lo), t->ep->res_hi);
    }
    if (t->out) store_part(t->out + off, v, full, m);
    *sum = v_add(*sum, v);
    return v;
}

#define PW_ROWS1(X) X(0)
#define PW_ROWS2(X) PW_ROWS1(X) X(1)
#define PW_ROWS3(X) PW_ROWS2(X) X(2)
#define PW_ROWS4(X) PW_ROWS3(X) X(3)
#define PW_ROWS5(X) PW_ROWS4(X) X(4)
#define PW_ROWS6(X) PW_ROWS5(X) X(5)
#define PW_ROWS7(X) PW_ROWS6(X) X(6)
#define PW_ROWS8(X) PW_ROWS7(X) X(7)
#define PW_ROWS9(X) PW_ROWS8(X) X(8)
#define PW_ROWS10(X) PW_ROWS9(X) X(9)
#define PW_ROWS11(X) PW_ROWS10(X) X(10)
#define PW_ROWS12(X) PW_ROWS11(X) X(11)

#define PW_DECL2(r)                                                                          \
    const float *a##r = t->a + (size_t)(r) * t->a_stride;                                    \
    vf c##r##_0 = t->b0, c##r##_1 = t->b1;
#define PW_FMA2(r)                                                                           \
    {                                                                                        \
        const vf av = v_set1(a##r[k]);                                                       \
        c##r##_0 = v_fma(av, w0, c##r##_0);                                                  \
        c##r##_1 = v_fma(av, w1, c##r##_1);                                                  \
    }
#define PW_FIN2(r)                                                                           \
    pw_finish(t, c##r##_0, r, 0, &s0);                                                       \
    pw_finish(t, c##r##_1, r, 1, &s1);

#define PW_DECL1(r)                                                                          \
    const float *a##r = t->a + (size_t)(r) * t->a_stride;                                    \
    vf c##r##_0 = t->b0;
#define PW_FMA1(r) c##r##_0 = v_fma(v_set1(a##r[k]), w0, c##r##_0);
#define PW_FIN1(r) pw_finish(t, c##r##_0, r, 0, &s0);

#define PW_KERNEL2(NAME, ROWS)                                                               \
    X86_FN void NAME(const pw_tile *t) {                                                     \
        const float *w = t->w;                                                               \
        vf s0 = v_zero(), s1 = v_zero();                                                     \
        uint32_t k;                                                                          \
        const char *pf = *t->pf, *const pf_end = t->pf_end;                                  \
        ROWS(PW_DECL2)                                                                       \
        for (k = 0; k < t->k; ++k) {                                                         \
            const vf w0 = v_load(w), w1 = v_load(w + VW);                                    \
            w += PW_NR;                                                                      \
            MNV3_PREFETCH_STEP(pf, pf_end);                                                  \
            ROWS(PW_FMA2)                                                                    \
        }                                                                                    \
        *t->pf = pf;                                                                         \
        ROWS(PW_FIN2)                                                                        \
        if (t->sums) {                                                                       \
            add_sums(t->sums, s0, t->m0);                                                    \
            add_sums(t->sums + VW, s1, t->m1);                                               \
        }                                                                                    \
    }

#define PW_KERNEL1(NAME, ROWS)                                                               \
    X86_FN void NAME(const pw_tile *t) {                                                     \
        const float *w = t->w;                                                               \
        vf s0 = v_zero();                                                                    \
        uint32_t k;                                                                          \
        const char *pf = *t->pf, *const pf_end = t->pf_end;                                  \
        ROWS(PW_DECL1)                                                                       \
        for (k = 0; k < t->k; ++k) {                                                         \
            const vf w0 = v_load(w);                                                         \
            w += VW;                                                                         \
            MNV3_PREFETCH_STEP(pf, pf_end);                                                  \
            ROWS(PW_FMA1)                                                                    \
        }                                                                                    \
        *t->pf = pf;                                                                         \
        ROWS(PW_FIN1)                                                                        \
        if (t->sums) add_sums(t->sums, s0, t->m0);                                           \
    }

PW_KERNEL2(pw2_r1, PW_ROWS1)
PW_KERNEL2(pw2_r2, PW_ROWS2)
PW_KERNEL2(pw2_r3, PW_ROWS3)
PW_KERNEL2(pw2_r4, PW_ROWS4)
PW_KERNEL2(pw2_r5, PW_ROWS5)
PW_KERNEL2(pw2_r6, PW_ROWS6)
PW_KERNEL1(pw1_r1, PW_ROWS1)
PW_KERNEL1(pw1_r2, PW_ROWS2)
PW_KERNEL1(pw1_r3, PW_ROWS3)
PW_KERNEL1(pw1_r4, PW_ROWS4)
PW_KERNEL1(pw1_r5, PW_ROWS5)
PW_KERNEL1(pw1_r6, PW_ROWS6)
#if PW_MR > 6
PW_KERNEL2(pw2_r7, PW_ROWS7)
PW_KERNEL2(pw2_r8, PW_ROWS8)
PW_KERNEL1(pw1_r7, PW_ROWS7)
PW_KERNEL1(pw1_r8, PW_ROWS8)
#endif
#if PW_MR > 8
PW_KERNEL2(pw2_r9, PW_ROWS9)
PW_KERNEL2(pw2_r10, PW_ROWS10)
PW_KERNEL2(pw2_r11, PW_ROWS11)
PW_KERNEL2(pw2_r12, PW_ROWS12)
PW_KERNEL1(pw1_r9, PW_ROWS9)
PW_KERNEL1(pw1_r10, PW_ROWS10)
PW_KERNEL1(pw1_r11, PW_ROWS11)
PW_KERNEL1(pw1_r12, PW_ROWS12)
#endif

typedef void (*pw_kernel_fn)(const pw_tile *);

static const pw_kernel_fn pw_kernels[2][PW_MR] = {
    {pw1_r1, pw1_r2, pw1_r3, pw1_r4, pw1_r5, pw1_r6
#if PW_MR > 6
     , pw1_r7, pw1_r8
#endif
#if PW_MR > 8
     , pw1_r9, pw1_r10, pw1_r11, pw1_r12
#endif
    },
    {pw2_r1, pw2_r2, pw2_r3, pw2_r4, pw2_r5, pw2_r6
#if PW_MR > 6
     , pw2_r7, pw2_r8
#endif
#if PW_MR > 8
     , pw2_r9, pw2_r10, pw2_r11, pw2_r12
#endif
    },
};

X86_FN void pw_scale_rows(const float *in, size_t in_stride, const float *scale, uint32_t K,
                          uint32_t rows, float *dst, size_t dst_stride) {
    const uint32_t kv = K / VW * VW;
    const vmask m = v_mask(K - kv);
    uint32_t r, k;
    for (r = 0; r < rows; ++r) {
        const float *src = in + r * in_stride;
        float *d = dst + r * dst_stride;
        for (k = 0; k < kv; k += VW) v_store(d + k, v_mul(v_load(src + k), v_load(scale + k)));
        if (kv < K) v_storem(d + kv, m, v_mul(v_loadm(src + kv, m), v_loadm(scale + kv, m)));
    }
}

X86_FN void pointwise(const mnv3_pointwise_args *a) {
    const uint32_t K = a->in_channels, npad = round_up_u32(a->out_channels, VW);
    const size_t ws_stride = round_up_u32(K, VW);
    const uint32_t oc_end = a->oc_end, oc_first = a->oc_begin / PW_NR * PW_NR;
    x86_ep ep;
    pw_tile t;
    size_t p0 = a->pixel_begin;
    const char *pf = NULL, *pf_end = NULL;
    uint32_t pf_next = 0;
    ep_init(&ep, &a->epilogue, &a->residual_clamp);
    t.pf = &pf;
    t.k = K;
    t.ep = &ep;
    t.out_stride = a->out_stride;
    /* Weights that fit in L1 stay there whatever the order; then one row tile at a time
     * across all panels keeps the output writes of each pixel together. */
    const size_t chunk = (size_t)K * npad > 8192 ? PW_CHUNK : PW_MR;
    while (p0 < a->pixel_end) {
        const size_t left = a->pixel_end - p0;
        const size_t chunks = (left + chunk - 1) / chunk;
        const size_t rows = (left + chunks - 1) / chunks;
        const float *in;
        size_t in_stride;
        uint32_t col;
        if (a->in_scale) {
            pw_scale_rows(a->input + p0 * a->in_stride, a->in_stride, a->in_scale, K,
                          (uint32_t)rows, a->workspace, ws_stride);
            in = a->workspace;
            in_stride = ws_stride;
        } else {
            in = a->input + p0 * a->in_stride;
            in_stride = a->in_stride;
        }
        for (col = oc_first; col < oc_end; col += PW_NR) {
            const int two = col + PW_NR <= npad;
            const uint32_t valid = (oc_end - col < PW_NR ? oc_end - col : PW_NR);
            const uint32_t v0 = valid < VW ? valid : VW, v1 = valid - v0;
            size_t r = 0;
            t.w = (const float *)a->packed + (size_t)col * K;
            t.m0 = v_mask(v0);
            t.m1 = v_mask(v1);
            t.full0 = v0 == VW;
            t.full1 = v1 == VW;
            t.b0 = a->bias ? v_loadm(a->bias + col, t.m0) : v_zero();
            t.b1 = a->bias && v1 ? v_loadm(a->bias + col + VW, t.m1) : v_zero();
            while (r < rows) {
                /* Balanced tiles (49 rows: 7 x 7, not 6 x 8 + 1): a one-row tile costs
                 * nearly as much as a full one. */
                const size_t rest = rows - r, tiles = (rest + PW_MR - 1) / PW_MR;
                const uint32_t mr = (uint32_t)((rest + tiles - 1) / tiles);
                const size_t p = p0 + r;
                t.a = in + r * in_stride;
                t.a_stride = in_stride;
                t.res = a->residual ? a->residual + p * a->out_stride + col : NULL;
                t.out = a->output ? a->output + p * a->out_stride + col : NULL;
                t.sums = a->channel_sums ? a->channel_sums + col : NULL;
                mnv3_prefetch_next(a, &pf_next, &pf, &pf_end);
                t.pf_end = pf_end;
                pw_kernels[two][mr - 1](&t);
                r += mr;
            }
        }
        p0 += rows;
    }
}

/* ------------------------------------------------------------------------------------ */
/* Depthwise                                                                             */
/* ------------------------------------------------------------------------------------ */

/* Packed layout: [ky][kx][channels rounded up to VW], zero-padded, so weight loads are
 * always whole vectors; only activations need masks. */
static size_t dw_packed_floats(uint32_t channels, uint32_t kernel) {
    return (size_t)kernel * kernel * round_up_u32(channels, VW);
}

static void dw_pack(const float *weight, uint32_t channels, uint32_t kernel, float *packed) {
    const uint32_t cp = round_up_u32(channels, VW);
    uint32_t t, c;
    for (t = 0; t < kernel * kernel; ++t)
        for (c = 0; c < cp; ++c)
            packed[(size_t)t * cp + c] = c < channels ? weight[(size_t)t * channels + c] : 0.0f;
}

typedef struct dw_row {
    const float *rows[5];    /* input row per ky, NULL where it lies in the padding */
    float *out;
    long iy0;                /* input row of ky = 0 (may be negative) */
    uint32_t ox_lo, ox_hi;   /* outputs whose taps all lie inside the input horizontally */
} dw_row;

/* One output pixel with every horizontal tap bounds-checked (the left and right borders). */
X86_INLINE vf dw_edge(const mnv3_depthwise_args *a, const float *const *r, const vf *w,
                      uint32_t ox, const uint32_t KS, vf acc, const int full, vmask m) {
    const long ix0 = (long)ox * a->stride - (long)a->pad_left;
    uint32_t ky, kx;
#pragma GCC unroll 5
    for (ky = 0; ky < KS; ++ky) {
        if (!r[ky]) continue;
#pragma GCC unroll 5
        for (kx = 0; kx < KS; ++kx) {
            const long ix = ix0 + (long)kx;
            if (ix < 0 || ix >= (long)a->in_width) continue;
            acc = v_fma(load_part(r[ky] + (size_t)ix * a->channels, full, m), w[ky * KS + kx], acc);
        }
    }
    return acc;
}

/* DW_G interior outputs of one row at once: independent FMA chains instead of one chain
 * of KS*KS dependent multiply-adds, and each input vector is loaded once and used by every
 * output whose window covers it (with stride 1, G+KS-1 loads per row instead of G*KS). */
X86_INLINE void dw_group(const float *const *q, size_t C, const vf *w, vf *acc, const uint32_t KS,
                         const uint32_t S, const uint32_t G, const int full, vmask m) {
    uint32_t ky, t, j;
#pragma GCC unroll 5
    for (ky = 0; ky < KS; ++ky) {
        if (!q[ky]) continue;
#pragma GCC unroll 32
        for (t = 0; t < (G - 1) * S + KS; ++t) {
            const vf x = load_part(q[ky] + (size_t)t * C, full, m);
#pragma GCC unroll 16
            for (j = 0; j < G; ++j)
                if (t >= j * S && t - j * S < KS) acc[j] = v_fma(x, w[ky * KS + t - j * S], acc[j]);
        }
    }
}

X86_INLINE void dw_load_w(const mnv3_depthwise_args *a, uint32_t c, const uint32_t KS, vf *w) {
    const size_t cp = round_up_u32(a->channels, VW);
    const float *wp = (const float *)a->packed + c;
    uint32_t t;
#pragma GCC unroll 25
    for (t = 0; t < KS * KS; ++t) w[t] = v_load(wp + t * cp);
}

/* G consecutive outputs of one row for one channel vector. The loop order around this is
 * pixel-major, channel-minor: all channel vectors of a pixel group are finished while its
 * input rows are in L1, instead of sweeping whole rows once per channel vector (which for
 * wide layers re-reads the rows from L2 or L3 once per vector). */
X86_INLINE void dw_pixels(const mnv3_depthwise_args *a, const x86_ep *ep, const dw_row *row,
                          uint32_t ox, uint32_t c, const uint32_t KS, const uint32_t S,
                          const uint32_t G, const int interior, const int full, vmask m) {
    const size_t C = a->channels;
    float *out = row->out + (size_t)ox * C + c;
    vf w[25], acc[16], bias;
    uint32_t ky, j;
    dw_load_w(a, c, KS, w);
    bias = a->bias ? v_loadm(a->bias + c, m) : v_zero();
#pragma GCC unroll 16
    for (j = 0; j < G; ++j) acc[j] = bias;
    if (interior) {
        const size_t base = (size_t)((long)ox * S - (long)a->pad_left) * C + c;
        const float *q[5];
#pragma GCC unroll 5
        for (ky = 0; ky < KS; ++ky) q[ky] = row->rows[ky] ? row->rows[ky] + base : NULL;
        dw_group(q, C, w, acc, KS, S, G, full, m);
    } else {
        const float *r[5];
#pragma GCC unroll 5
        for (ky = 0; ky < KS; ++ky) r[ky] = row->rows[ky] ? row->rows[ky] + c : NULL;
#pragma GCC unroll 16
        for (j = 0; j < G; ++j) acc[j] = dw_edge(a, r, w, ox + j, KS, acc[j], full, m);
    }
#pragma GCC unroll 16
    for (j = 0; j < G; ++j) {
        acc[j] = ep_apply(ep, acc[j]);
        store_part(out + j * C, acc[j], full, m);
    }
    if (a->channel_sums) {
        /* pairwise, so the sum is not one long dependent chain */
#pragma GCC unroll 16
        for (j = 1; j < G; j *= 2) {
            uint32_t i2;
#pragma GCC unroll 16
            for (i2 = 0; i2 + j < G; i2 += 2 * j) acc[i2] = v_add(acc[i2], acc[i2 + j]);
        }
        add_sums(a->channel_sums + c, acc[0], m);
    }
}

/* One output row for one channel vector, weights held in registers across the row: the
 * better order while the layer's input is cache resident. */
X86_INLINE void dw_block(const mnv3_depthwise_args *a, const x86_ep *ep, const dw_row *row,
                         uint32_t c, const uint32_t KS, const uint32_t S, const uint32_t G,
                         const int full, vmask m) {
    const size_t C = a->channels;
    float *out = row->out + c;
    vf w[25], bias, sum = v_zero(), v;
    const float *r[5];
    uint32_t ox, ky, j;
    dw_load_w(a, c, KS, w);
    bias = a->bias ? v_loadm(a->bias + c, m) : v_zero();
#pragma GCC unroll 5
    for (ky = 0; ky < KS; ++ky) r[ky] = row->rows[ky] ? row->rows[ky] + c : NULL;
    for (ox = 0; ox < row->ox_lo; ++ox) {
        v = ep_apply(ep, dw_edge(a, r, w, ox, KS, bias, full, m));
        store_part(out + (size_t)ox * C, v, full, m);
        sum = v_add(sum, v);
    }
    if (ox < row->ox_hi) {
        const size_t base = (size_t)((long)ox * S - (long)a->pad_left) * C;
        const float *q[5];
#pragma GCC unroll 5
        for (ky = 0; ky < KS; ++ky) q[ky] = r[ky] ? r[ky] + base : NULL;
        for (; ox + G <= row->ox_hi; ox += G) {
            vf acc[16];
#pragma GCC unroll 16
            for (j = 0; j < G; ++j) acc[j] = bias;
            dw_group(q, C, w, acc, KS, S, G, full, m);
#pragma GCC unroll 16
            for (j = 0; j < G; ++j) {
                acc[j] = ep_apply(ep, acc[j]);
                store_part(out + (size_t)(ox + j) * C, acc[j], full, m);
            }
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
        if (ox < row->ox_hi && row->ox_hi - row->ox_lo >= G) {
            /* The remainder as one group overlapping the last: the overlapped outputs are
             * recomputed identically, and only the new ones enter the sum. */
            const uint32_t start = row->ox_hi - G, skip = ox - start;
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
                store_part(out + (size_t)(start + j) * C, acc[j], full, m);
                if (j >= skip) sum = v_add(sum, acc[j]);
            }
            ox = row->ox_hi;
        }
        for (; ox < row->ox_hi; ++ox) {
            vf acc = bias;
            dw_group(q, C, w, &acc, KS, S, 1, full, m);
            v = ep_apply(ep, acc);
            store_part(out + (size_t)ox * C, v, full, m);
            sum = v_add(sum, v);
#pragma GCC unroll 5
            for (ky = 0; ky < KS; ++ky)
                if (q[ky]) q[ky] += (size_t)S * C;
        }
    }
    for (; ox < a->out_width; ++ox) {
        v = ep_apply(ep, dw_edge(a, r, w, ox, KS, bias, full, m));
        store_part(out + (size_t)ox * C, v, full, m);
        sum = v_add(sum, v);
    }
    if (a->channel_sums) add_sums(a->channel_sums + c, sum, m);
}

/* All channel vectors of G outputs starting at ox. */
X86_INLINE void dw_span(const mnv3_depthwise_args *a, const x86_ep *ep, const dw_row *row,
                        uint32_t ox, const uint32_t KS, const uint32_t S, const uint32_t G,
                        const int interior, vmask tail_mask) {
    const uint32_t C = a->channels, cv = C / VW * VW;
    uint32_t c;
    for (c = 0; c < cv; c += VW) dw_pixels(a, ep, row, ox, c, KS, S, G, interior, 1, v_mask(VW));
    if (cv < C) dw_pixels(a, ep, row, ox, cv, KS, S, G, interior, 0, tail_mask);
}

/* Other kernel sizes: weights read from memory, every tap bounds-checked. */
X86_INLINE void dw_block_any(const mnv3_depthwise_args *a, const x86_ep *ep, const dw_row *row,
                             uint32_t c, const int full, vmask m) {
    const uint32_t C = a->channels, KS = a->kernel, cp = round_up_u32(C, VW);
    const float *wp = (const float *)a->packed + c;
    const vf bias = a->bias ? v_loadm(a->bias + c, m) : v_zero();
    vf sum = v_zero();
    uint32_t ox, ky, kx;
    for (ox = 0; ox < a->out_width; ++ox) {
        const long ix0 = (long)ox * a->stride - (long)a->pad_left;
        vf acc = bias, v;
        for (ky = 0; ky < KS; ++ky) {
            const long iy = row->iy0 + (long)ky;
            if (iy < 0 || iy >= (long)a->in_height) continue;
            for (kx = 0; kx < KS; ++kx) {
                const long ix = ix0 + (long)kx;
                if (ix < 0 || ix >= (long)a->in_width) continue;
                acc = v_fma(load_part(mnv3_dw_row(a, iy) + (size_t)ix * C + c, full, m),
                            v_load(wp + ((size_t)ky * KS + kx) * cp), acc);
            }
        }
        v = ep_apply(ep, acc);
        store_part(row->out + (size_t)ox * C + c, v, full, m);
        sum = v_add(sum, v);
    }
    if (a->channel_sums) add_sums(a->channel_sums + c, sum, m);
}

X86_INLINE void dw_rows(const mnv3_depthwise_args *a, const uint32_t KS, const uint32_t S,
                        const uint32_t G) {
    const uint32_t C = a->channels;
    const vmask tail_mask = v_mask(C % VW);
    /* An input larger than about half of L2 streams from the last-level cache: read it
     * pixel by pixel, sequentially. Smaller ones are swept row by row per channel vector,
     * which keeps the weights in registers. */
    const int pixel_major = (size_t)a->in_height * a->in_width * C * sizeof(float) > (1u << 20);
    x86_ep ep;
    dw_row row;
    uint32_t oy, ox, ky;
    ep_init(&ep, &a->epilogue, NULL);
    /* Interior outputs: ox*S >= pad_left and ox*S - pad_left + KS <= in_width. */
    row.ox_lo = (a->pad_left + S - 1) / S;
    row.ox_hi = a->in_width + a->pad_left >= KS ? (a->in_width + a->pad_left - KS) / S + 1 : 0;
    if (row.ox_hi > a->out_width) row.ox_hi = a->out_width;
    if (row.ox_hi <= row.ox_lo) row.ox_lo = row.ox_hi = a->out_width;
    for (oy = a->row_begin; oy < a->row_end; ++oy) {
        row.iy0 = (long)oy * S - (long)a->pad_top;
        for (ky = 0; ky < KS; ++ky) {
            const long iy = row.iy0 + (long)ky;
            row.rows[ky] = iy >= 0 && iy < (long)a->in_height ? mnv3_dw_row(a, iy) : NULL;
        }
        row.out = a->output + (size_t)oy * a->out_width * C;
        if (pixel_major) {
            for (ox = 0; ox < row.ox_lo; ++ox) dw_span(a, &ep, &row, ox, KS, S, 1, 0, tail_mask);
            for (; ox + G <= row.ox_hi; ox += G) dw_span(a, &ep, &row, ox, KS, S, G, 1, tail_mask);
            for (; ox < row.ox_hi; ++ox) dw_span(a, &ep, &row, ox, KS, S, 1, 1, tail_mask);
            for (; ox < a->out_width; ++ox) dw_span(a, &ep, &row, ox, KS, S, 1, 0, tail_mask);
        } else {
            uint32_t c;
            for (c = 0; c + VW <= C; c += VW) dw_block(a, &ep, &row, c, KS, S, G, 1, v_mask(VW));
            if (c < C) dw_block(a, &ep, &row, c, KS, S, G, 0, tail_mask);
        }
    }
}

X86_FN void dw_k3s1(const mnv3_depthwise_args *a) { dw_rows(a, 3, 1, DW_G3); }
X86_FN void dw_k3s2(const mnv3_depthwise_args *a) { dw_rows(a, 3, 2, DW_G3); }
X86_FN void dw_k5s1(const mnv3_depthwise_args *a) { dw_rows(a, 5, 1, DW_G5); }
X86_FN void dw_k5s2(const mnv3_depthwise_args *a) { dw_rows(a, 5, 2, DW_G5); }

X86_FN void dw_any(const mnv3_depthwise_args *a) {
    const uint32_t C = a->channels, cv = C / VW * VW;
    const vmask full_mask = v_mask(VW), tail_mask = v_mask(C - cv);
    x86_ep ep;
    dw_row row;
    uint32_t oy, c;
    ep_init(&ep, &a->epilogue, NULL);
    for (oy = a->row_begin; oy < a->row_end; ++oy) {
        row.iy0 = (long)oy * a->stride - (long)a->pad_top;
        row.out = a->output + (size_t)oy * a->out_width * C;
        for (c = 0; c < cv; c += VW) dw_block_any(a, &ep, &row, c, 1, full_mask);
        if (cv < C) dw_block_any(a, &ep, &row, cv, 0, tail_mask);
    }
}

static void depthwise(const mnv3_depthwise_args *a) {
    const int k3 = a->kernel == 3, k5 = a->kernel == 5;
    if (k3 && a->stride == 1)
        dw_k3s1(a);
    else if (k3 && a->stride == 2)
        dw_k3s2(a);
    else if (k5 && a->stride == 1)
        dw_k5s1(a);
    else if (k5 && a->stride == 2)
        dw_k5s2(a);
    else
        dw_any(a);
}

/* ------------------------------------------------------------------------------------ */
/* Dense convolution (the stem)                                                          */
/* ------------------------------------------------------------------------------------ */

/* Packed layout: output channels in blocks of VW; block b holds [ky][kx][ci][VW]. Each
 * input sample is broadcast and multiplied into a whole vector of output channels. */
static size_t conv_packed_floats(uint32_t in_channels, uint32_t out_channels, uint32_t kernel) {
    return (size_t)round_up_u32(out_channels, VW) * kernel * kernel * in_channels;
}

static void conv_pack(const float *weight, uint32_t in_channels, uint32_t out_channels,
                      uint32_t kernel, float *packed) {
    const uint32_t taps = kernel * kernel * in_channels, cp = round_up_u32(out_channels, VW);
    uint32_t b, t, j;
    for (b = 0; b < cp; b += VW)
        for (t = 0; t < taps; ++t)
            for (j = 0; j < VW; ++j)
                packed[(size_t)b * taps + (size_t)t * VW + j] =
                    b + j < out_channels ? weight[(size_t)(b + j) * taps + t] : 0.0f;
}

/* One output pixel, taps clipped to the input. */
X86_INLINE vf conv_pixel(const mnv3_conv_args *a, const float *wb, uint32_t ox, uint32_t ky_lo,
                         uint32_t ky_hi, long iy0, vf acc) {
    const uint32_t K = a->kernel, Ci = a->in_channels;
    const long ix0 = (long)ox * a->stride - (long)a->pad_left;
    const uint32_t kx_lo = ix0 < 0 ? (uint32_t)-ix0 : 0;
    const uint32_t kx_hi = ix0 + (long)K > (long)a->in_width ? (uint32_t)((long)a->in_width - ix0) : K;
    uint32_t ky, kx, ci;
    for (ky = ky_lo; ky < ky_hi; ++ky) {
        const float *irow = a->input + (size_t)(iy0 + (long)ky) * a->in_row_stride;
        for (kx = kx_lo; kx < kx_hi; ++kx) {
            const float *ip = irow + (size_t)(ix0 + (long)kx) * a->in_col_stride;
            const float *wp = wb + ((size_t)(ky * K + kx) * Ci) * VW;
            for (ci = 0; ci < Ci; ++ci)
                acc = v_fma(v_set1(ip[(size_t)ci * a->in_chan_stride]), v_load(wp + (size_t)ci * VW),
                            acc);
        }
    }
    return acc;
}

/* Interior pixels go CONV_G at a time: one FMA chain per pixel hides the FMA latency that
 * a single pixel's chain of K*K*Ci dependent multiply-adds would expose. */
#define CONV_G 8

X86_INLINE void conv_group(const mnv3_conv_args *a, const x86_ep *ep, const float *wb, float *out,
                           uint32_t ox, uint32_t ky_lo, uint32_t ky_hi, long iy0, vf bias,
                           int full, vmask m) {
    const uint32_t K = a->kernel, Ci = a->in_channels;
    const size_t px_step = (size_t)a->stride * a->in_col_stride, Co = a->out_channels;
    const long ix0 = (long)ox * a->stride - (long)a->pad_left;
    vf acc[CONV_G];
    uint32_t ky, kx, ci, j;
#pragma GCC unroll 8
    for (j = 0; j < CONV_G; ++j) acc[j] = bias;
    for (ky = ky_lo; ky < ky_hi; ++ky) {
        const float *irow = a->input + (size_t)(iy0 + (long)ky) * a->in_row_stride +
                            (size_t)ix0 * a->in_col_stride;
        const float *wp = wb + (size_t)ky * K * Ci * VW;
        for (kx = 0; kx < K; ++kx) {
            const float *ip = irow + (size_t)kx * a->in_col_stride;
            for (ci = 0; ci < Ci; ++ci, wp += VW) {
                const vf w = v_load(wp);
                const float *q = ip + (size_t)ci * a->in_chan_stride;
#pragma GCC unroll 8
                for (j = 0; j < CONV_G; ++j) acc[j] = v_fma(v_set1(q[j * px_step]), w, acc[j]);
            }
        }
    }
#pragma GCC unroll 8
    for (j = 0; j < CONV_G; ++j) store_part(out + (size_t)(ox + j) * Co, ep_apply(ep, acc[j]), full, m);
}

X86_FN void conv(const mnv3_conv_args *a) {
    const uint32_t K = a->kernel, Ci = a->in_channels, Co = a->out_channels, S = a->stride;
    const uint32_t taps = K * K * Ci;
    uint32_t ox_lo = (a->pad_left + S - 1) / S;
    uint32_t ox_hi = a->in_width + a->pad_left >= K ? (a->in_width + a->pad_left - K) / S + 1 : 0;
    x86_ep ep;
    uint32_t oy, ox, b;
    ep_init(&ep, &a->epilogue, NULL);
    if (ox_hi > a->out_width) ox_hi = a->out_width;
    if (ox_hi <= ox_lo) ox_lo = ox_hi = a->out_width;
    for (oy = a->row_begin; oy < a->row_end; ++oy) {
        float *out = a->output + (size_t)oy * a->out_width * Co;
        const long iy0 = (long)oy * S - (long)a->pad_top;
        const uint32_t ky_lo = iy0 < 0 ? (uint32_t)-iy0 : 0;
        const uint32_t ky_hi =
            iy0 + (long)K > (long)a->in_height ? (uint32_t)((long)a->in_height - iy0) : K;
        MNV3_CONV_PREFETCH_AHEAD(a, oy);
        for (b = 0; b < Co; b += VW) {
            const int full = Co - b >= VW;
            const vmask m = v_mask(full ? VW : Co - b);
            const float *wb = (const float *)a->packed + (size_t)b * taps;
            const vf bias = a->bias ? v_loadm(a->bias + b, m) : v_zero();
            for (ox = 0; ox < ox_lo; ++ox)
                store_part(out + (size_t)ox * Co + b,
                           ep_apply(&ep, conv_pixel(a, wb, ox, ky_lo, ky_hi, iy0, bias)), full, m);
            for (; ox + CONV_G <= ox_hi; ox += CONV_G)
                conv_group(a, &ep, wb, out + b, ox, ky_lo, ky_hi, iy0, bias, full, m);
            /* The interior remainder as one more group overlapping the previous one: the
             * overlapped pixels are recomputed identically, far cheaper than single pixels
             * whose K*K*Ci multiply-adds form one dependent chain. */
            if (ox < ox_hi && ox_hi - ox_lo >= CONV_G) {
                conv_group(a, &ep, wb, out + b, ox_hi - CONV_G, ky_lo, ky_hi, iy0, bias, full, m);
                ox = ox_hi;
            }
            for (; ox < a->out_width; ++ox)
                store_part(out + (size_t)ox * Co + b,
                           ep_apply(&ep, conv_pixel(a, wb, ox, ky_lo, ky_hi, iy0, bias)), full, m);
        }
    }
}

/* ------------------------------------------------------------------------------------ */
/* Fully connected                                                                       */
/* ------------------------------------------------------------------------------------ */

/* Reads the canonical [out][in] weights in place: a matrix-vector product is bound by
 * streaming the weights once, which the row-major layout already does contiguously. Four
 * rows share each input load. */
X86_FN void fc(const mnv3_fc_args *a) {
    const uint32_t I = a->in_features, iv = I / VW * VW;
    const vmask m = v_mask(I - iv);
    const float *W = (const float *)a->packed;
    uint32_t o = a->out_begin, i;
    for (; o + 4 <= a->out_end; o += 4) {
        const float *w0 = W + (size_t)o * I, *w1 = w0 + I, *w2 = w1 + I, *w3 = w2 + I;
        vf s0 = v_zero(), s1 = v_zero(), s2 = v_zero(), s3 = v_zero();
        float r[4];
        uint32_t j;
        for (i = 0; i < iv; i += VW) {
            const vf x = v_load(a->input + i);
            s0 = v_fma(v_load(w0 + i), x, s0);
            s1 = v_fma(v_load(w1 + i), x, s1);
            s2 = v_fma(v_load(w2 + i), x, s2);
            s3 = v_fma(v_load(w3 + i), x, s3);
        }
        if (iv < I) {
            const vf x = v_loadm(a->input + iv, m);
            s0 = v_fma(v_loadm(w0 + iv, m), x, s0);
            s1 = v_fma(v_loadm(w1 + iv, m), x, s1);
            s2 = v_fma(v_loadm(w2 + iv, m), x, s2);
            s3 = v_fma(v_loadm(w3 + iv, m), x, s3);
        }
        r[0] = v_hsum(s0);
        r[1] = v_hsum(s1);
        r[2] = v_hsum(s2);
        r[3] = v_hsum(s3);
        for (j = 0; j < 4; ++j)
            a->output[o + j] =
                mnv3_epilogue_apply(&a->epilogue, r[j] + (a->bias ? a->bias[o + j] : 0.0f));
    }
    for (; o < a->out_end; ++o) {
        const float *w0 = W + (size_t)o * I;
        vf s0 = v_zero();
        for (i = 0; i < iv; i += VW) s0 = v_fma(v_load(w0 + i), v_load(a->input + i), s0);
        if (iv < I) s0 = v_fma(v_loadm(w0 + iv, m), v_loadm(a->input + iv, m), s0);
        a->output[o] =
            mnv3_epilogue_apply(&a->epilogue, v_hsum(s0) + (a->bias ? a->bias[o] : 0.0f));
    }
}

const mnv3_kernels X86_TABLE = {
    X86_ISA,
    X86_NAME,
    PW_NR,
    pw_packed_floats,
    pw_pack,
    pw_workspace_floats,
    pointwise,
    dw_packed_floats,
    dw_pack,
    depthwise,
    conv_packed_floats,
    conv_pack,
    conv,
    mnv3_ref_no_packing2,
    NULL,
    fc,
};
