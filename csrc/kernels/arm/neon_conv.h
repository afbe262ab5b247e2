/* NEON stem (the float32 set, and on the float32 set's tiles with their weights widened
 * the float16-weight and relaxed-precision sets; included by neon_f32.c after simd_f32.h,
 * which declares these under CONV_OWN): the dense convolution as GEMM tiles over patches.
 *
 * A stem has few taps per output (3x3 x 3 channels: 27) and few output channels (16), so
 * its own loop over taps broadcast one input per multiply-add: a load per FMLA, which an
 * in-order core does not issue beside it. Written as a GEMM, the rows are up to PW_MR
 * output pixels, k the K*K*Ci taps of each pixel's patch, the columns the output channels:
 * the tiles multiply by lane, 4 taps per input load (AArch64: the generated loops of
 * generated/neon_f32_gemm_loops.h; ARMv7: 4 rows, VMLA by lane). Building the patches is
 * a copy of K*K*Ci floats per pixel (the zeros of the padding included, so borders need no
 * code of their own), small beside the K*K*Ci*Co multiply-adds.
 *
 * The weights are packed as the pointwise rows pack theirs, with in_channels = K*K*Ci in
 * the order of the canonical [out][ky][kx][ci] layout. */

#if defined(CONV_WIDEN)
/* Float16 weights: the float32 set's tiles, on weights widened first (CONV_WIDE_FLOATS) by
 * CONV_WIDEN(src, n, dst). */
#define CONV_TILES mnv3_neon_f32_gemm.wide
#else
#define CONV_TILES PW_IMPL_NAME.wide
#endif

/* Taps of one pass over a patch (a stem's 27 are one): larger patches go in passes whose
 * raw sums add up in the output, the epilogue applied to them after the last. */
#define CONV_PATCH_TAPS 64
#define CONV_PIXELS PW_MR
#if defined(CONV_WIDEN)
/* Widened weights on the stack: all of them, converted once per output row, when they fit
 * (a stem's 27 taps x 16 channels: 432), else each pass's panel before its tile. */
#define CONV_WIDE_FLOATS 1024
#endif
#if defined(CONV_NARROW)
/* Outputs of another type (float16): the tiles' float32 results go to the stack, this many
 * columns at a time, and CONV_NARROW(dst, src, n) rounds n of them into the output. */
#define CONV_SINK_CHANNELS 64
#endif

static size_t conv_packed_bytes(uint32_t in_channels, uint32_t out_channels, uint32_t kernel) {
    return PW_PACKED_BYTES(kernel * kernel * in_channels, out_channels);
}

static void conv_pack(const void *weight_, uint32_t in_channels, uint32_t out_channels,
                      uint32_t kernel, void *packed_) {
    PW_PACK(weight_, kernel * kernel * in_channels, out_channels, packed_);
}

/* Taps [t0, t0 + n) of the patches of outputs [ox, ox + px) into patch rows n floats long;
 * taps outside the image are zeros. */
SIMD_INLINE void conv_patches(const mnv3_conv_row *r, uint32_t ox, uint32_t px, uint32_t t0,
                              uint32_t n, float *patch) {
    const mnv3_conv_args *a = r->a;
    const uint32_t K = a->kernel, Ci = a->in_channels;
    uint32_t j, i;
    for (j = 0; j < px; ++j) {
        const long ix0 = (long)(ox + j) * a->stride - (long)a->pad_left;
        float *dst = patch + (size_t)j * n;
        /* tap t is (ky, kx, ci) = (t / (K * Ci), t / Ci % K, t % Ci), walked incrementally */
        uint32_t ky = t0 / (K * Ci), kx = t0 / Ci % K, ci = t0 % Ci;
        for (i = 0; i < n; ++i) {
            const long iy = r->iy0 + (long)ky, ix = ix0 + (long)kx;
            dst[i] = ky >= r->ky_lo && ky < r->ky_hi && ix >= 0 && ix < (long)a->in_width
                         ? ((const float *)a->input)[(size_t)iy * a->in_row_stride + (size_t)ix * a->in_col_stride +
                                    (size_t)ci * a->in_chan_stride]
                         : 0.0f;
            if (++ci == Ci) {
                ci = 0;
                if (++kx == K) {
                    kx = 0;
                    ++ky;
                }
            }
        }
    }
}

/* The epilogue over px pixels of n finished raw sums, rows `stride` floats apart. */
SIMD_INLINE void conv_epilogue(const simd_ep *ep, float *out, uint32_t px, uint32_t n,
                               size_t stride) {
    uint32_t j, c;
    for (j = 0; j < px; ++j)
        for (c = 0; c < n; c += VW) {
            const int full = n - c >= VW;
            const vmask m = v_mask(full ? VW : n - c);
            float *o = out + (size_t)j * stride + c;
            store_part(o, ep_apply(ep, load_part(o, full, m)), full, m);
        }
}

SIMD_FN void CONV_UKERNEL(const mnv3_conv_row *r) {
    const mnv3_conv_args *a = r->a;
    const uint32_t K = a->kernel, Ci = a->in_channels, Co = a->out_channels;
    const uint32_t taps = K * K * Ci;
    const mnv3_gemm_ukernel *const tiles = CONV_TILES;
    const int one_pass = taps <= CONV_PATCH_TAPS;
    simd_ep raw; /* no epilogue: the passes of a patch in several */
    float patch[CONV_PIXELS * CONV_PATCH_TAPS];
    uint32_t ox, px, t0, n, col, cg, cw;
#if defined(CONV_WIDEN)
    float wide[CONV_WIDE_FLOATS];
    const uint32_t panels = (Co + PW_NR - 1) / PW_NR;
    const int whole = taps <= CONV_WIDE_FLOATS / PW_NR / panels;
    if (whole) CONV_WIDEN(a->packed, (size_t)taps * PW_NR * panels, wide);
#else
    const size_t elem = PW_ELEM_BYTES;
#endif
#if defined(CONV_NARROW)
    float sink[CONV_PIXELS * CONV_SINK_CHANNELS];
#endif
    memset(&raw, 0, sizeof raw);
    raw.act = MNV3_ACT_NONE;
    for (ox = 0; ox < a->out_width; ox += px) {
        px = a->out_width - ox < CONV_PIXELS ? a->out_width - ox : CONV_PIXELS;
        for (cg = 0; cg < Co; cg += cw) {
#if defined(CONV_NARROW)
            /* float32 sums of a group of columns in `sink`, rounded into the output after */
            float *const out = sink;
            const size_t stride = cw = Co - cg < CONV_SINK_CHANNELS ? Co - cg : CONV_SINK_CHANNELS;
#else
            float *const out = r->out + (size_t)ox * Co;
            const size_t stride = Co;
            cw = Co;
#endif
            for (t0 = 0; t0 < taps; t0 += n) {
                const int first = t0 == 0;
                n = taps - t0 < CONV_PATCH_TAPS ? taps - t0 : CONV_PATCH_TAPS;
                conv_patches(r, ox, px, t0, n, patch);
                for (col = cg; col < cg + cw; col += PW_NR) {
                    mnv3_gemm_tile t;
                    const char *pf = (const char *)patch;
                    float *o = out + (col - cg);
                    /* panel col / PW_NR, its rows t0.. */
                    t.a = patch;
                    t.a_stride = n;
#if defined(CONV_WIDEN)
                    if (whole) {
                        t.w = (const char *)(wide + (size_t)col * taps + (size_t)t0 * PW_NR);
                    } else {
                        CONV_WIDEN((const uint16_t *)a->packed + (size_t)col * taps +
                                       (size_t)t0 * PW_NR,
                                   (size_t)n * PW_NR, wide);
                        t.w = (const char *)wide;
                    }
#else
                    t.w = (const char *)a->packed + ((size_t)col * taps + (size_t)t0 * PW_NR) * elem;
#endif
                    t.k = n;
                    t.nc = Co - col < PW_NR ? Co - col : PW_NR;
                    t.bias = first && r->bias ? r->bias + col : NULL;
                    t.params = one_pass ? r->params : (const void *)&raw;
                    t.res = first ? NULL : o;
                    t.out = o;
                    t.out_stride = stride;
                    t.sums = NULL;
                    t.pf = &pf;
                    t.pf_end = pf;
                    tiles[px - 1](&t);
                }
            }
            if (!one_pass) conv_epilogue((const simd_ep *)r->params, out, px, cw, stride);
#if defined(CONV_NARROW)
            {
                uint32_t j;
                for (j = 0; j < px; ++j)
                    CONV_NARROW((CONV_OUT_T *)(void *)r->out + (size_t)(ox + j) * Co + cg,
                                sink + (size_t)j * stride, cw);
            }
#endif
        }
    }
}
