/* ARMv7 depthwise microkernels, every shape (the float32 set and its float16-weight
 * variant; included by neon_f32.c after simd_f32.h, which declares them under
 * DW_OWN_SHAPES and DW_OWN_ANY).
 *
 * The multiply-adds all run in the generated assembly of generated/neon_f32_dw_a32_loops.h
 * (tools/generate/neon_f32_dw_a32.py): groups of DWA_G = 8 outputs of one channel vector, 8
 * accumulators, straight-line per group for the 3x3 and 5x5 shapes, a loop over taps for
 * any other. Outputs whose inputs are all inside the image run there straight from the
 * image; the others (borders, rows in the padding, a partial channel vector) run the same
 * loop on a zero-padded copy of their input window on the stack (a zero input adds an
 * exact zero product: the same sums as skipping the tap). The loops write the raw sums;
 * the epilogue and the channel sums run afterwards over the finished outputs of a range.
 * Every output's taps are added in the order ky, then kx, as by the generic body. */

#include "kernels/generated/neon_f32_dw_a32_loops.h"

#define DWA_G 8
#define DWA_MAX_T ((DWA_G - 1) * 2 + MNV3_DW_MAX_KERNEL)
#define DWA_MAX_TAPS (MNV3_DW_MAX_KERNEL * MNV3_DW_MAX_KERNEL)

/* The loops as functions of their own, named as microkernels so that `make mca` finds
 * them. blk: the bias twice, then the weights as float32 (dwa_weights). */
#define DWA_GROUPS(K, S)                                                                     \
    static __attribute__((noinline)) SIMD_ATTR void UK_NAME(dwconv_, K##x##K##s##S##_g8,      \
                                                           SIMD_ISA)(                       \
        const float *const *q, float *out, uint32_t c4, uint32_t groups, const float *blk) { \
        dwa_loop_##K##x##K##s##S(q, out, c4, groups, blk);                                   \
    }
DWA_GROUPS(3, 1)
DWA_GROUPS(3, 2)
DWA_GROUPS(5, 1)
DWA_GROUPS(5, 2)

static __attribute__((noinline)) SIMD_ATTR void UK_NAME(dwconv_, any_g8, SIMD_ISA)(
    const float *const *q, float *out, uint32_t c4, uint32_t kernel, uint32_t stride,
    const float *blk) {
    dwa_loop_any(q, out, c4, kernel, stride, blk);
}

/* `groups` groups of DWA_G outputs, one after the other, pixels c4 bytes apart. The
 * specialised shapes when `generic` is 0 (KS and S then constants), else one call of the
 * generic loop per group. */
SIMD_INLINE void dwa_run(const float *const *q, float *out, uint32_t c4, uint32_t groups,
                         const float *blk, const uint32_t KS, const uint32_t S,
                         const int generic) {
    if (!generic && KS == 3 && S == 1) {
        UK_NAME(dwconv_, 3x3s1_g8, SIMD_ISA)(q, out, c4, groups, blk);
    } else if (!generic && KS == 3) {
        UK_NAME(dwconv_, 3x3s2_g8, SIMD_ISA)(q, out, c4, groups, blk);
    } else if (!generic && S == 1) {
        UK_NAME(dwconv_, 5x5s1_g8, SIMD_ISA)(q, out, c4, groups, blk);
    } else if (!generic) {
        UK_NAME(dwconv_, 5x5s2_g8, SIMD_ISA)(q, out, c4, groups, blk);
    } else {
        const uint32_t step = DWA_G * S * (c4 / sizeof(float));
        const float *g[MNV3_DW_MAX_KERNEL];
        uint32_t ky, i;
        for (ky = 0; ky < KS; ++ky) g[ky] = q[ky];
        for (i = 0; i < groups; ++i) {
            UK_NAME(dwconv_, any_g8, SIMD_ISA)(g, out, c4, KS, S, blk);
            out += DWA_G * (c4 / sizeof(float));
            for (ky = 0; ky < KS; ++ky) g[ky] += step;
        }
    }
}

/* The block the loops read for channel vector c: the bias twice (the accumulators start
 * from it, two at a load), then the KS*KS weights as float32 vectors. */
SIMD_INLINE void dwa_weights(const mnv3_dw_span *s, uint32_t c, const uint32_t KS, vmask m,
                             vf *blk) {
    const uint32_t cp = round_up_u32(s->channels, VW), taps = KS * KS;
    const W_T *wm = (const W_T *)s->w + c;
    uint32_t t;
    blk[0] = blk[1] = s->bias ? v_loadm(s->bias + c, m) : v_zero();
    for (t = 0; t < taps; ++t) blk[2 + t] = W_LOAD(wm + (size_t)t * cp);
}

/* Outputs [ox, ox + n), n <= DWA_G, of channel vector c from a zero-padded copy of their
 * input window: any border, rows in the padding, a partial channel vector. */
SIMD_INLINE void dwa_window(const mnv3_dw_span *s, uint32_t c, uint32_t ox, uint32_t n,
                            const vf *blk, const uint32_t KS, const uint32_t S,
                            const int generic, const int full, vmask m) {
    const uint32_t T = (DWA_G - 1) * S + KS;
    const size_t C = s->channels;
    const long ix0 = (long)ox * S - (long)s->pad_left;
    vf win[MNV3_DW_MAX_KERNEL * DWA_MAX_T], res[DWA_G];
    const float *q[MNV3_DW_MAX_KERNEL];
    uint32_t ky, t, j;
    for (ky = 0; ky < KS; ++ky) {
        const float *row = s->rows[ky];
        vf *w = win + (size_t)ky * T;
        q[ky] = (const float *)w;
        for (t = 0; t < T; ++t) {
            const long ix = ix0 + (long)t;
            w[t] = row && ix >= 0 && ix < (long)s->in_width
                       ? load_part(row + (size_t)ix * C + c, full, m)
                       : v_zero();
        }
    }
    dwa_run(q, (float *)res, sizeof(vf), 1, (const float *)blk, KS, S, generic);
    for (j = 0; j < n; ++j) store_part(s->out + (size_t)(ox + j) * C + c, res[j], full, m);
}

/* The epilogue over finished outputs [ox0, ox1) of channel vector c, and their sum, for
 * one activation: a constant `act` lets the compiler drop ep_apply's switch from the loop. */
SIMD_INLINE void dwa_epilogue_as(const mnv3_dw_span *s, const simd_ep *ep,
                                 const mnv3_activation act, uint32_t c, uint32_t ox0,
                                 uint32_t ox1, const int full, vmask m) {
    const size_t C = s->channels;
    simd_ep e = *ep;
    vf sum = v_zero();
    uint32_t ox;
    e.act = act;
    for (ox = ox0; ox < ox1; ++ox) {
        float *o = s->out + (size_t)ox * C + c;
        const vf v = ep_apply(&e, load_part(o, full, m));
        store_part(o, v, full, m);
        sum = v_add(sum, v);
    }
    if (s->sums) add_sums(s->sums + c, sum, m);
}

SIMD_INLINE void dwa_epilogue(const mnv3_dw_span *s, const simd_ep *ep, uint32_t c,
                              uint32_t ox0, uint32_t ox1, const int full, vmask m) {
    switch (ep->act) {
    case MNV3_ACT_RELU: dwa_epilogue_as(s, ep, MNV3_ACT_RELU, c, ox0, ox1, full, m); break;
    case MNV3_ACT_RELU6: dwa_epilogue_as(s, ep, MNV3_ACT_RELU6, c, ox0, ox1, full, m); break;
    case MNV3_ACT_HARD_SWISH:
        dwa_epilogue_as(s, ep, MNV3_ACT_HARD_SWISH, c, ox0, ox1, full, m);
        break;
    case MNV3_ACT_HARD_SIGMOID:
        dwa_epilogue_as(s, ep, MNV3_ACT_HARD_SIGMOID, c, ox0, ox1, full, m);
        break;
    case MNV3_ACT_NONE:
    default: dwa_epilogue_as(s, ep, MNV3_ACT_NONE, c, ox0, ox1, full, m); break;
    }
}

/* Outputs [ox0, ox1) of channel vector c: window groups up to the interior, the loop over
 * interior groups straight from the image, a last interior group overlapping the one
 * before (recomputed identically: the epilogue runs once, after), window groups for the
 * rest. */
SIMD_INLINE void dwa_range(const mnv3_dw_span *s, const simd_ep *ep, uint32_t c, uint32_t ox0,
                           uint32_t ox1, const uint32_t KS, const uint32_t S,
                           const int generic, const int full, vmask m) {
    const size_t C = s->channels;
    const uint32_t lo = s->ox_lo > ox0 ? s->ox_lo : ox0, hi = s->ox_hi < ox1 ? s->ox_hi : ox1;
    /* channels <= MNV3_MAX_CHANNELS: the pixel stride in bytes fits */
    const uint32_t c4 = (uint32_t)(C * sizeof(float));
    vf blk[2 + DWA_MAX_TAPS];
    int rows_all = 1;
    uint32_t ox = ox0, ky, n;
    dwa_weights(s, c, KS, m, blk);
    for (ky = 0; ky < KS; ++ky) rows_all &= s->rows[ky] != NULL;
    if (full && rows_all && lo + DWA_G <= hi) {
        const float *q[MNV3_DW_MAX_KERNEL];
        for (; ox < lo; ox += n) {
            n = lo - ox < DWA_G ? lo - ox : DWA_G;
            dwa_window(s, c, ox, n, blk, KS, S, generic, 1, m);
        }
        for (ky = 0; ky < KS; ++ky) q[ky] = s->rows[ky] + c + ((size_t)ox * S - s->pad_left) * C;
        n = (hi - ox) / DWA_G;
        dwa_run(q, s->out + (size_t)ox * C + c, c4, n, (const float *)blk, KS, S, generic);
        ox += n * DWA_G;
        if (ox < hi) {
            const size_t back = (size_t)(hi - DWA_G) * S - s->pad_left;
            for (ky = 0; ky < KS; ++ky) q[ky] = s->rows[ky] + c + back * C;
            dwa_run(q, s->out + (size_t)(hi - DWA_G) * C + c, c4, 1, (const float *)blk, KS, S,
                    generic);
            ox = hi;
        }
    }
    for (; ox < ox1; ox += n) {
        n = ox1 - ox < DWA_G ? ox1 - ox : DWA_G;
        dwa_window(s, c, ox, n, blk, KS, S, generic, full, m);
    }
    dwa_epilogue(s, ep, c, ox0, ox1, full, m);
}

/* Row by row, each channel vector across the span; or, pixel-major (inputs too large for
 * the cache), groups of DWA_G outputs through every channel vector in turn. */
SIMD_INLINE void dwa_span(const mnv3_dw_span *s, const uint32_t KS, const uint32_t S,
                          const int generic) {
    const simd_ep *ep = (const simd_ep *)s->params;
    const uint32_t C = s->channels;
    uint32_t ox = s->ox_begin, n, c;
    while (ox < s->ox_end) {
        n = s->ox_end - ox;
        if (s->pixel_major && n > DWA_G) n = DWA_G;
        for (c = 0; c + VW <= C; c += VW)
            dwa_range(s, ep, c, ox, ox + n, KS, S, generic, 1, v_mask(VW));
        if (c < C) dwa_range(s, ep, c, ox, ox + n, KS, S, generic, 0, v_mask(C - c));
        ox += n;
    }
}

SIMD_FN void UK_NAME(dwconv_, 3x3s1, SIMD_ISA)(const mnv3_dw_span *s) { dwa_span(s, 3, 1, 0); }
SIMD_FN void UK_NAME(dwconv_, 3x3s2, SIMD_ISA)(const mnv3_dw_span *s) { dwa_span(s, 3, 2, 0); }
SIMD_FN void UK_NAME(dwconv_, 5x5s1, SIMD_ISA)(const mnv3_dw_span *s) { dwa_span(s, 5, 1, 0); }
SIMD_FN void UK_NAME(dwconv_, 5x5s2, SIMD_ISA)(const mnv3_dw_span *s) { dwa_span(s, 5, 2, 0); }
SIMD_FN void UK_NAME(dwconv_, any, SIMD_ISA)(const mnv3_dw_span *s) {
    dwa_span(s, s->kernel, s->stride, 1);
}
