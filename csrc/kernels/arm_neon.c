/* NEON kernels for AArch64 (ASIMD) and 32-bit ARM with NEON-VFPv4.
 *
 * Pointwise convolutions are the bulk of MobileNetV3's work, so they get a register-blocked
 * GEMM: weights are packed once into panels of PW_NR output channels ([k][PW_NR], zero
 * padded) and a microkernel keeps a PW_MR x PW_NR tile of accumulators in registers. The
 * other kernels read canonical weights in place (depthwise, fc) or a small transposed copy
 * (stem), vectorising over channels, which is the contiguous NHWC direction.
 *
 * ARMv7 lacks by-element FMA, the across-vector add and vector divide, so the few places
 * that need them go through the helpers below. It also has half the vector registers,
 * hence the smaller row tile there. */
#include "kernels.h"

#if defined(MNV3_HAVE_NEON_KERNELS)

#include <arm_neon.h>
#include <string.h>

#if defined(__GNUC__)
#define NEON_INLINE static inline __attribute__((always_inline))
#else
#define NEON_INLINE static inline
#endif

#define PW_NR 8
#if defined(__aarch64__)
#define PW_MR 8
#else
#define PW_MR 4
#endif

/* A block of pixel rows re-used across all weight panels should stay in L2. */
#define PW_BLOCK_FLOATS 16384u
/* The stem gathers one receptive field on the stack; larger fields use the reference. */
#define CONV_MAX_PATCH 1024u

/* ------------------------------------------------------------------------------------ */
/* Portable helpers                                                                      */
/* ------------------------------------------------------------------------------------ */

#if defined(__aarch64__)
#define FMA_LANE(acc, b, a, lane) vfmaq_laneq_f32(acc, b, a, lane)
NEON_INLINE float hsum_f32(float32x4_t v) { return vaddvq_f32(v); }
#else
/* VMLA by scalar is the only by-element multiply-accumulate A32 has; `a` is a D register. */
#define FMA_LANE(acc, b, a, lane) vmlaq_lane_f32(acc, b, a, lane)
NEON_INLINE float hsum_f32(float32x4_t v) {
    float32x2_t s = vadd_f32(vget_low_f32(v), vget_high_f32(v));
    return vget_lane_f32(vpadd_f32(s, s), 0);
}
#endif

NEON_INLINE float32x4_t fma_f32(float32x4_t acc, float32x4_t a, float32x4_t b) {
    return vfmaq_f32(acc, a, b);
}

/* The epilogue with its constants broadcast once per call. Max/min against +-infinity is
 * exact, so unbounded clamps need no branch. */
typedef struct vepilogue {
    mnv3_activation act;
    float32x4_t pre_lo, pre_hi, post_lo, post_hi;
} vepilogue;

static void vepilogue_init(vepilogue *v, const mnv3_epilogue *e) {
    v->act = e->activation;
    v->pre_lo = vdupq_n_f32(e->pre.lo);
    v->pre_hi = vdupq_n_f32(e->pre.hi);
    v->post_lo = vdupq_n_f32(e->post.lo);
    v->post_hi = vdupq_n_f32(e->post.hi);
}

NEON_INLINE float32x4_t vclamp(float32x4_t x, float32x4_t lo, float32x4_t hi) {
    return vminq_f32(vmaxq_f32(x, lo), hi);
}

/* Same operation order as mnv3_activate() so results match the reference bit for bit. */
NEON_INLINE float32x4_t vepilogue_apply(const vepilogue *v, float32x4_t x) {
    const float32x4_t zero = vdupq_n_f32(0.0f), six = vdupq_n_f32(6.0f);
    x = vclamp(x, v->pre_lo, v->pre_hi);
    switch (v->act) {
    case MNV3_ACT_RELU: x = vmaxq_f32(x, zero); break;
    case MNV3_ACT_RELU6: x = vclamp(x, zero, six); break;
    case MNV3_ACT_HARD_SWISH: {
        float32x4_t r = vclamp(vaddq_f32(x, vdupq_n_f32(3.0f)), zero, six);
        x = vmulq_f32(vmulq_f32(x, r), vdupq_n_f32(1.0f / 6.0f));
        break;
    }
    case MNV3_ACT_HARD_SIGMOID: {
        float32x4_t r = vclamp(vaddq_f32(x, vdupq_n_f32(3.0f)), zero, six);
        x = vmulq_f32(r, vdupq_n_f32(1.0f / 6.0f));
        break;
    }
    case MNV3_ACT_NONE:
    default: break;
    }
    return vclamp(x, v->post_lo, v->post_hi);
}

/* ------------------------------------------------------------------------------------ */
/* Pointwise: packed-panel GEMM                                                          */
/* ------------------------------------------------------------------------------------ */

static size_t pw_packed_floats(uint32_t in_channels, uint32_t out_channels) {
    return (size_t)((out_channels + PW_NR - 1) / PW_NR) * PW_NR * in_channels;
}

static void pw_pack(const float *weight, uint32_t in_channels, uint32_t out_channels,
                    float *packed) {
    uint32_t n0, k, j;
    for (n0 = 0; n0 < out_channels; n0 += PW_NR)
        for (k = 0; k < in_channels; ++k)
            for (j = 0; j < PW_NR; ++j)
                *packed++ = n0 + j < out_channels ? weight[(size_t)(n0 + j) * in_channels + k]
                                                  : 0.0f;
}

/* Room for one panel scaled by the SE gate. */
static size_t pw_workspace_floats(uint32_t in_channels, uint32_t out_channels) {
    (void)out_channels;
    return (size_t)in_channels * PW_NR;
}

typedef struct pw_ctx {
    const mnv3_pointwise_args *a;
    vepilogue e;
    float32x4_t bias0, bias1, res_lo, res_hi;
    uint32_t n0, ncols;
    const char **pf;        /* prefetch cursor (kernels.h), a line per k block up to pf_end */
    const char *pf_end;
} pw_ctx;

NEON_INLINE void pw_finish(const pw_ctx *c, size_t p, float32x4_t v0, float32x4_t v1) {
    const mnv3_pointwise_args *a = c->a;
    size_t at = p * a->out_stride + c->n0;
    v0 = vepilogue_apply(&c->e, vaddq_f32(v0, c->bias0));
    v1 = vepilogue_apply(&c->e, vaddq_f32(v1, c->bias1));
    if (c->ncols == PW_NR) {
        if (a->residual) {
            v0 = vclamp(vaddq_f32(v0, vld1q_f32(a->residual + at)), c->res_lo, c->res_hi);
            v1 = vclamp(vaddq_f32(v1, vld1q_f32(a->residual + at + 4)), c->res_lo, c->res_hi);
        }
        if (a->output) {
            vst1q_f32(a->output + at, v0);
            vst1q_f32(a->output + at + 4, v1);
        }
        if (a->channel_sums) {
            float *s = a->channel_sums + c->n0;
            vst1q_f32(s, vaddq_f32(vld1q_f32(s), v0));
            vst1q_f32(s + 4, vaddq_f32(vld1q_f32(s + 4), v1));
        }
    } else {
        float t[PW_NR];
        uint32_t j;
        vst1q_f32(t, v0);
        vst1q_f32(t + 4, v1);
        for (j = 0; j < c->ncols; ++j) {
            float v = t[j];
            if (a->residual) v = mnv3_clampf(v + a->residual[at + j], a->residual_clamp);
            if (a->output) a->output[at + j] = v;
            if (a->channel_sums) a->channel_sums[c->n0 + j] += v;
        }
    }
}

/* The microkernel, written once for every row count through these row lists. */
#define ROWS1(X) X(0)
#define ROWS4(X) X(0) X(1) X(2) X(3)
#define ROWS8(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

#define PW_DECL(r)                                                                           \
    float32x4_t c##r##0 = vdupq_n_f32(0.0f), c##r##1 = vdupq_n_f32(0.0f);                    \
    const float *a##r = in + (size_t)(r)*stride;
#if defined(__aarch64__)
#define PW_LOADA(r) const float32x4_t va##r = vld1q_f32(a##r + k);
#else
/* Two k at a time from a D register: with a whole Q per row GCC runs out of the sixteen
 * Q registers and spills accumulators inside the loop. */
#define PW_LOADA(r) const float32x2_t va##r = vld1_f32(a##r + k);
#endif
#define PW_FMA_LANE(r, l)                                                                    \
    c##r##0 = FMA_LANE(c##r##0, b0, va##r, l);                                               \
    c##r##1 = FMA_LANE(c##r##1, b1, va##r, l);
#define PW_FMA0(r) PW_FMA_LANE(r, 0)
#define PW_FMA1(r) PW_FMA_LANE(r, 1)
#define PW_FMA2(r) PW_FMA_LANE(r, 2)
#define PW_FMA3(r) PW_FMA_LANE(r, 3)
#define PW_STEP(ROWS, l)                                                                     \
    b0 = vld1q_f32(w);                                                                       \
    b1 = vld1q_f32(w + 4);                                                                   \
    w += PW_NR;                                                                              \
    ROWS(PW_FMA##l)
#if defined(__aarch64__)
#define PW_KLOOP(ROWS)                                                                       \
    for (; k + 4 <= K; k += 4) {                                                             \
        MNV3_PREFETCH_STEP(pf, pf_end);                                                      \
        ROWS(PW_LOADA)                                                                       \
        PW_STEP(ROWS, 0)                                                                     \
        PW_STEP(ROWS, 1)                                                                     \
        PW_STEP(ROWS, 2)                                                                     \
        PW_STEP(ROWS, 3)                                                                     \
    }
#else
#define PW_KLOOP(ROWS)                                                                       \
    for (; k + 2 <= K; k += 2) {                                                             \
        MNV3_PREFETCH_STEP(pf, pf_end);                                                      \
        ROWS(PW_LOADA)                                                                       \
        PW_STEP(ROWS, 0)                                                                     \
        PW_STEP(ROWS, 1)                                                                     \
    }
#endif
#define PW_TAIL(r)                                                                           \
    {                                                                                        \
        const float32x4_t s##r = vdupq_n_f32(a##r[k]);                                       \
        c##r##0 = fma_f32(c##r##0, b0, s##r);                                                \
        c##r##1 = fma_f32(c##r##1, b1, s##r);                                                \
    }
#define PW_FINISH(r) pw_finish(c, p + (r), c##r##0, c##r##1);

#define PW_TILE_FN(NAME, ROWS)                                                               \
    static void NAME(const pw_ctx *c, size_t p, const float *w) {                            \
        const size_t stride = c->a->in_stride;                                               \
        const float *in = c->a->input + p * stride;                                          \
        const uint32_t K = c->a->in_channels;                                                \
        const char *pf = *c->pf, *const pf_end = c->pf_end;                                  \
        uint32_t k = 0;                                                                      \
        float32x4_t b0, b1;                                                                  \
        ROWS(PW_DECL)                                                                        \
        PW_KLOOP(ROWS)                                                                       \
        *c->pf = pf;                                                                         \
        for (; k < K; ++k) {                                                                 \
            b0 = vld1q_f32(w);                                                               \
            b1 = vld1q_f32(w + 4);                                                           \
            w += PW_NR;                                                                      \
            ROWS(PW_TAIL)                                                                    \
        }                                                                                    \
        ROWS(PW_FINISH)                                                                      \
    }

PW_TILE_FN(pw_tile1, ROWS1)
PW_TILE_FN(pw_tile4, ROWS4)
#if PW_MR == 8
PW_TILE_FN(pw_tile8, ROWS8)
#endif

static void pw_neon(const mnv3_pointwise_args *a) {
    const uint32_t K = a->in_channels;
    const size_t panel = (size_t)K * PW_NR;
    const float *packed = (const float *)a->packed;
    size_t block, p0, p;
    uint32_t n0;
    pw_ctx c;
    const char *pf = NULL, *pf_end = NULL;
    uint32_t pf_next = 0;
    c.a = a;
    c.pf = &pf;
    vepilogue_init(&c.e, &a->epilogue);
    c.res_lo = vdupq_n_f32(a->residual_clamp.lo);
    c.res_hi = vdupq_n_f32(a->residual_clamp.hi);
    /* With an SE gate every panel is rescaled per row block, so keep one block: those
     * projections are late in the network where the pixel count is small. */
    block = a->pixel_end - a->pixel_begin;
    if (!a->in_scale && K > 0) {
        size_t rows = PW_BLOCK_FLOATS / K;
        rows = rows < PW_MR ? PW_MR : rows - rows % PW_MR;
        if (rows < block) block = rows;
    }
    for (p0 = a->pixel_begin; p0 < a->pixel_end; p0 += block) {
        size_t p1 = a->pixel_end - p0 < block ? a->pixel_end : p0 + block;
        for (n0 = a->oc_begin; n0 < a->oc_end; n0 += PW_NR) {
            const float *w = packed + (size_t)(n0 / PW_NR) * panel;
            float bias[PW_NR];
            uint32_t j;
            c.n0 = n0;
            c.ncols = a->oc_end - n0 < PW_NR ? a->oc_end - n0 : PW_NR;
            for (j = 0; j < PW_NR; ++j) bias[j] = a->bias && j < c.ncols ? a->bias[n0 + j] : 0.0f;
            c.bias0 = vld1q_f32(bias);
            c.bias1 = vld1q_f32(bias + 4);
            if (a->in_scale) {
                float *ws = a->workspace;
                uint32_t k;
                for (k = 0; k < K; ++k) {
                    float32x4_t s = vdupq_n_f32(a->in_scale[k]);
                    vst1q_f32(ws + (size_t)k * PW_NR, vmulq_f32(vld1q_f32(w + (size_t)k * PW_NR), s));
                    vst1q_f32(ws + (size_t)k * PW_NR + 4,
                              vmulq_f32(vld1q_f32(w + (size_t)k * PW_NR + 4), s));
                }
                w = ws;
            }
            mnv3_prefetch_next(a, &pf_next, &pf, &pf_end);
            c.pf_end = pf_end;
            p = p0;
#if PW_MR == 8
            for (; p + 8 <= p1; p += 8) pw_tile8(&c, p, w);
#endif
            for (; p + 4 <= p1; p += 4) pw_tile4(&c, p, w);
            for (; p < p1; ++p) pw_tile1(&c, p, w);
        }
    }
}

/* ------------------------------------------------------------------------------------ */
/* Depthwise                                                                             */
/* ------------------------------------------------------------------------------------ */

typedef struct dw_ctx {
    const mnv3_depthwise_args *a;
    vepilogue e;
    long iy0;             /* input row of tap ky = 0 for the current output row */
    uint32_t ky_lo, ky_hi; /* taps inside the input */
} dw_ctx;

NEON_INLINE void dw_store4(const dw_ctx *c, float *out, uint32_t ch, float32x4_t acc) {
    acc = vepilogue_apply(&c->e, acc);
    vst1q_f32(out + ch, acc);
    if (c->a->channel_sums) {
        float *s = c->a->channel_sums + ch;
        vst1q_f32(s, vaddq_f32(vld1q_f32(s), acc));
    }
}

/* Any pixel, any kernel, channels [c0, C): taps outside the input are skipped. */
static void dw_pixel(const dw_ctx *c, uint32_t oy, uint32_t ox, uint32_t c0) {
    const mnv3_depthwise_args *a = c->a;
    const float *w = (const float *)a->packed;
    const uint32_t C = a->channels, K = a->kernel;
    const long ix0 = (long)ox * a->stride - (long)a->pad_left;
    const long right = (long)a->in_width - ix0;
    const uint32_t kx_lo = ix0 < 0 ? (uint32_t)(-ix0) : 0;
    const uint32_t kx_hi = right < 0 ? 0 : (right < (long)K ? (uint32_t)right : K);
    float *out = a->output + ((size_t)oy * a->out_width + ox) * C;
    uint32_t ch = c0, ky, kx;
    for (; ch + 8 <= C; ch += 8) {
        float32x4_t acc0 = a->bias ? vld1q_f32(a->bias + ch) : vdupq_n_f32(0.0f);
        float32x4_t acc1 = a->bias ? vld1q_f32(a->bias + ch + 4) : vdupq_n_f32(0.0f);
        for (ky = c->ky_lo; ky < c->ky_hi; ++ky) {
            const float *row = mnv3_dw_row(a, c->iy0 + (long)ky) + ch;
            for (kx = kx_lo; kx < kx_hi; ++kx) {
                const float *ip = row + (size_t)(ix0 + kx) * C;
                const float *wp = w + ((size_t)ky * K + kx) * C + ch;
                acc0 = fma_f32(acc0, vld1q_f32(ip), vld1q_f32(wp));
                acc1 = fma_f32(acc1, vld1q_f32(ip + 4), vld1q_f32(wp + 4));
            }
        }
        dw_store4(c, out, ch, acc0);
        dw_store4(c, out, ch + 4, acc1);
    }
    for (; ch + 4 <= C; ch += 4) {
        float32x4_t acc = a->bias ? vld1q_f32(a->bias + ch) : vdupq_n_f32(0.0f);
        for (ky = c->ky_lo; ky < c->ky_hi; ++ky) {
            const float *row = mnv3_dw_row(a, c->iy0 + (long)ky) + ch;
            for (kx = kx_lo; kx < kx_hi; ++kx)
                acc = fma_f32(acc, vld1q_f32(row + (size_t)(ix0 + kx) * C),
                              vld1q_f32(w + ((size_t)ky * K + kx) * C + ch));
        }
        dw_store4(c, out, ch, acc);
    }
    for (; ch < C; ++ch) {
        float acc = a->bias ? a->bias[ch] : 0.0f, v;
        for (ky = c->ky_lo; ky < c->ky_hi; ++ky) {
            const float *row = mnv3_dw_row(a, c->iy0 + (long)ky) + ch;
            for (kx = kx_lo; kx < kx_hi; ++kx)
                acc += row[(size_t)(ix0 + kx) * C] * w[((size_t)ky * K + kx) * C + ch];
        }
        v = mnv3_epilogue_apply(&a->epilogue, acc);
        out[ch] = v;
        if (a->channel_sums) a->channel_sums[ch] += v;
    }
}

/* Interior pixels [ox_lo, ox_hi) (every column tap inside the input) with the kernel size
 * and stride known at compile time: two pixels at a time share each weight load, and
 * 8 channels at a time give four independent accumulator chains. Channels past the last
 * multiple of 8 go through dw_pixel. */
NEON_INLINE void dw_interior(const dw_ctx *c, uint32_t oy, uint32_t ox_lo, uint32_t ox_hi,
                             const uint32_t K, const uint32_t S) {
    const mnv3_depthwise_args *a = c->a;
    const float *w = (const float *)a->packed;
    const uint32_t C = a->channels, C8 = C & ~7u;
    const size_t in_px = (size_t)S * C; /* input step between neighbouring outputs */
    float *out_row = a->output + (size_t)oy * a->out_width * C;
    uint32_t ox = ox_lo, ch, ky, kx;
    for (; ox + 2 <= ox_hi; ox += 2) {
        const size_t ix0 = (size_t)ox * S - a->pad_left;
        float *out = out_row + (size_t)ox * C;
        for (ch = 0; ch < C8; ch += 8) {
            float32x4_t p00 = a->bias ? vld1q_f32(a->bias + ch) : vdupq_n_f32(0.0f);
            float32x4_t p01 = a->bias ? vld1q_f32(a->bias + ch + 4) : vdupq_n_f32(0.0f);
            float32x4_t p10 = p00, p11 = p01;
            for (ky = c->ky_lo; ky < c->ky_hi; ++ky) {
                const float *ip = mnv3_dw_row(a, c->iy0 + (long)ky) + ix0 * C + ch;
                const float *wp = w + (size_t)ky * K * C + ch;
                for (kx = 0; kx < K; ++kx) {
                    const float32x4_t w0 = vld1q_f32(wp + (size_t)kx * C);
                    const float32x4_t w1 = vld1q_f32(wp + (size_t)kx * C + 4);
                    const float *q = ip + (size_t)kx * C;
                    p00 = fma_f32(p00, vld1q_f32(q), w0);
                    p01 = fma_f32(p01, vld1q_f32(q + 4), w1);
                    p10 = fma_f32(p10, vld1q_f32(q + in_px), w0);
                    p11 = fma_f32(p11, vld1q_f32(q + in_px + 4), w1);
                }
            }
            dw_store4(c, out, ch, p00);
            dw_store4(c, out, ch + 4, p01);
            dw_store4(c, out + C, ch, p10);
            dw_store4(c, out + C, ch + 4, p11);
        }
        if (C8 < C) {
            dw_pixel(c, oy, ox, C8);
            dw_pixel(c, oy, ox + 1, C8);
        }
    }
    for (; ox < ox_hi; ++ox) dw_pixel(c, oy, ox, 0);
}

static void dw_interior_k3s1(const dw_ctx *c, uint32_t oy, uint32_t lo, uint32_t hi) {
    dw_interior(c, oy, lo, hi, 3, 1);
}
static void dw_interior_k3s2(const dw_ctx *c, uint32_t oy, uint32_t lo, uint32_t hi) {
    dw_interior(c, oy, lo, hi, 3, 2);
}
static void dw_interior_k5s1(const dw_ctx *c, uint32_t oy, uint32_t lo, uint32_t hi) {
    dw_interior(c, oy, lo, hi, 5, 1);
}
static void dw_interior_k5s2(const dw_ctx *c, uint32_t oy, uint32_t lo, uint32_t hi) {
    dw_interior(c, oy, lo, hi, 5, 2);
}

static void dw_neon(const mnv3_depthwise_args *a) {
    const uint32_t K = a->kernel, S = a->stride;
    void (*interior)(const dw_ctx *, uint32_t, uint32_t, uint32_t) = NULL;
    uint32_t ox_lo, ox_hi, oy, ox;
    long below;
    dw_ctx c;
    if (K == 0 || S == 0) return;
    c.a = a;
    vepilogue_init(&c.e, &a->epilogue);
    if (K == 3 && S == 1) interior = dw_interior_k3s1;
    if (K == 3 && S == 2) interior = dw_interior_k3s2;
    if (K == 5 && S == 1) interior = dw_interior_k5s1;
    if (K == 5 && S == 2) interior = dw_interior_k5s2;
    /* Columns whose taps all fall inside the input: ox*S >= pad_left and
     * ox*S - pad_left + K <= in_width. */
    ox_lo = (a->pad_left + S - 1) / S;
    if ((uint64_t)a->in_width + a->pad_left >= K)
        ox_hi = (uint32_t)(((uint64_t)a->in_width + a->pad_left - K) / S + 1);
    else
        ox_hi = 0;
    if (ox_hi > a->out_width) ox_hi = a->out_width;
    if (ox_lo > ox_hi) ox_lo = ox_hi;
    for (oy = a->row_begin; oy < a->row_end; ++oy) {
        c.iy0 = (long)oy * S - (long)a->pad_top;
        below = (long)a->in_height - c.iy0;
        c.ky_lo = c.iy0 < 0 ? (uint32_t)(-c.iy0) : 0;
        c.ky_hi = below < 0 ? 0 : (below < (long)K ? (uint32_t)below : K);
        if (c.ky_lo > c.ky_hi) c.ky_lo = c.ky_hi; /* an output row entirely in the padding */
        if (interior) {
            for (ox = 0; ox < ox_lo; ++ox) dw_pixel(&c, oy, ox, 0);
            interior(&c, oy, ox_lo, ox_hi);
            for (ox = ox_hi; ox < a->out_width; ++ox) dw_pixel(&c, oy, ox, 0);
        } else {
            for (ox = 0; ox < a->out_width; ++ox) dw_pixel(&c, oy, ox, 0);
        }
    }
}

/* ------------------------------------------------------------------------------------ */
/* Dense convolution (the stem)                                                          */
/* ------------------------------------------------------------------------------------ */

static size_t conv_packed_floats(uint32_t in_channels, uint32_t out_channels, uint32_t kernel) {
    size_t patch = (size_t)kernel * kernel * in_channels;
    if (patch > CONV_MAX_PATCH) return 0;
    return patch * ((out_channels + 3u) & ~3u);
}

/* [tap][out] with out padded to a multiple of 4: one output pixel is a GEMV that reads
 * each tap's weights as vectors over output channels. */
static void conv_pack(const float *weight, uint32_t in_channels, uint32_t out_channels,
                      uint32_t kernel, float *packed) {
    const size_t patch = (size_t)kernel * kernel * in_channels;
    const uint32_t cop = (out_channels + 3u) & ~3u;
    size_t t;
    uint32_t o;
    for (t = 0; t < patch; ++t)
        for (o = 0; o < cop; ++o)
            packed[t * cop + o] = o < out_channels ? weight[(size_t)o * patch + t] : 0.0f;
}

static void conv_neon(const mnv3_conv_args *a) {
    const uint32_t K = a->kernel, Ci = a->in_channels, Co = a->out_channels;
    const uint32_t cop = (Co + 3u) & ~3u;
    const size_t patch_len = (size_t)K * K * Ci;
    const float *w = (const float *)a->packed;
    float patch[CONV_MAX_PATCH];
    vepilogue e;
    uint32_t oy, ox, ky, kx, i, o;
    if (patch_len > CONV_MAX_PATCH || patch_len == 0) {
        mnv3_ref_conv(a);
        return;
    }
    vepilogue_init(&e, &a->epilogue);
    for (oy = a->row_begin; oy < a->row_end; ++oy) {
        MNV3_CONV_PREFETCH_AHEAD(a, oy);
        for (ox = 0; ox < a->out_width; ++ox) {
            float *out = a->output + ((size_t)oy * a->out_width + ox) * Co;
            float *pp = patch;
            size_t t;
            /* Out-of-input taps become zeros: they add exactly nothing. */
            for (ky = 0; ky < K; ++ky) {
                long iy = (long)oy * a->stride + ky - (long)a->pad_top;
                for (kx = 0; kx < K; ++kx) {
                    long ix = (long)ox * a->stride + kx - (long)a->pad_left;
                    if (iy < 0 || iy >= (long)a->in_height || ix < 0 || ix >= (long)a->in_width) {
                        for (i = 0; i < Ci; ++i) *pp++ = 0.0f;
                    } else {
                        const float *src = a->input + (size_t)iy * a->in_row_stride +
                                           (size_t)ix * a->in_col_stride;
                        for (i = 0; i < Ci; ++i) *pp++ = src[(size_t)i * a->in_chan_stride];
                    }
                }
            }
            for (o = 0; o < cop; o += 8) {
                const int two = o + 8 <= cop;
                float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
                float tmp[8];
                uint32_t n = Co - o < 8 ? Co - o : 8, j;
                const float *wp = w + o;
                for (t = 0; t < patch_len; ++t, wp += cop) {
                    const float32x4_t x = vdupq_n_f32(patch[t]);
                    acc0 = fma_f32(acc0, vld1q_f32(wp), x);
                    if (two) acc1 = fma_f32(acc1, vld1q_f32(wp + 4), x);
                }
                vst1q_f32(tmp, acc0);
                vst1q_f32(tmp + 4, acc1);
                for (j = 0; j < n; ++j) {
                    float v = tmp[j] + (a->bias ? a->bias[o + j] : 0.0f);
                    tmp[j] = v;
                }
                if (n == 8) {
                    vst1q_f32(out + o, vepilogue_apply(&e, vld1q_f32(tmp)));
                    vst1q_f32(out + o + 4, vepilogue_apply(&e, vld1q_f32(tmp + 4)));
                } else {
                    for (j = 0; j < n; ++j) out[o + j] = mnv3_epilogue_apply(&a->epilogue, tmp[j]);
                }
            }
        }
    }
}

/* ------------------------------------------------------------------------------------ */
/* Fully connected                                                                       */
/* ------------------------------------------------------------------------------------ */

NEON_INLINE float dot_tail(const float *x, const float *w, uint32_t from, uint32_t n, float s) {
    uint32_t i;
    for (i = from; i < n; ++i) s += x[i] * w[i];
    return s;
}

/* Four outputs at a time share every input load. */
static void fc_neon(const mnv3_fc_args *a) {
    const float *w = (const float *)a->packed;
    const float *x = a->input;
    const uint32_t N = a->in_features, N4 = N & ~3u;
    uint32_t o = a->out_begin, i, j;
    for (; o + 4 <= a->out_end; o += 4) {
        const float *w0 = w + (size_t)o * N, *w1 = w0 + N, *w2 = w1 + N, *w3 = w2 + N;
        float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;
        float r[4];
        for (i = 0; i < N4; i += 4) {
            const float32x4_t v = vld1q_f32(x + i);
            s0 = fma_f32(s0, v, vld1q_f32(w0 + i));
            s1 = fma_f32(s1, v, vld1q_f32(w1 + i));
            s2 = fma_f32(s2, v, vld1q_f32(w2 + i));
            s3 = fma_f32(s3, v, vld1q_f32(w3 + i));
        }
        r[0] = dot_tail(x, w0, N4, N, hsum_f32(s0));
        r[1] = dot_tail(x, w1, N4, N, hsum_f32(s1));
        r[2] = dot_tail(x, w2, N4, N, hsum_f32(s2));
        r[3] = dot_tail(x, w3, N4, N, hsum_f32(s3));
        for (j = 0; j < 4; ++j)
            a->output[o + j] =
                mnv3_epilogue_apply(&a->epilogue, r[j] + (a->bias ? a->bias[o + j] : 0.0f));
    }
    for (; o < a->out_end; ++o) {
        const float *wo = w + (size_t)o * N;
        float32x4_t s = vdupq_n_f32(0.0f);
        float r;
        for (i = 0; i < N4; i += 4) s = fma_f32(s, vld1q_f32(x + i), vld1q_f32(wo + i));
        r = dot_tail(x, wo, N4, N, hsum_f32(s));
        a->output[o] = mnv3_epilogue_apply(&a->epilogue, r + (a->bias ? a->bias[o] : 0.0f));
    }
}

const mnv3_kernels mnv3_kernels_neon = {
    MNV3_ISA_NEON,
    "neon",
    PW_NR,
    pw_packed_floats,
    pw_pack,
    pw_workspace_floats,
    pw_neon,
    mnv3_ref_no_packing2,
    NULL,
    dw_neon,
    conv_packed_floats,
    conv_pack,
    conv_neon,
    mnv3_ref_no_packing2,
    NULL,
    fc_neon,
};

#else
/* ISO C wants at least one declaration in a translation unit. */
typedef int mnv3_arm_neon_unused;
#endif
