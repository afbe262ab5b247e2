/* The kernel contract. One table per instruction set; every table computes exactly what
 * the scalar reference (kernels/reference.c) computes, up to float reassociation. The
 * network code only ever calls through a table, so a new ISA is one new file.
 *
 * Activations are NHWC: one pixel is `channels` contiguous floats. A kernel call computes
 * a sub-range (rows of pixels or of output channels) so the caller can split work across
 * threads; different ranges of one layer never write the same output element. */
#ifndef MNV3_KERNELS_H
#define MNV3_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include "mnv3.h"

/* Which SIMD tables this build contains follows from the target, not from build flags, so
 * the Makefile and the Swift package agree. MNV3_NO_SIMD builds the reference path only. */
#if !defined(MNV3_NO_SIMD)
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
#define MNV3_HAVE_X86_KERNELS 1
#endif
/* AArch64 always has ASIMD. 32-bit ARM needs NEON with VFPv4 fused multiply-add, which
 * -mfpu=neon-vfpv4 (the Makefile's default for arm targets) provides. */
#if defined(__aarch64__) || (defined(__ARM_NEON) && defined(__ARM_FEATURE_FMA))
#define MNV3_HAVE_NEON_KERNELS 1
#endif
#endif

typedef struct mnv3_clamp {
    float lo, hi;           /* -INFINITY / +INFINITY when unbounded */
} mnv3_clamp;

/* y = clamp(act(clamp(x, pre)), post): the per-element tail of every conv. The clamps carry
 * the quantized ranges of fake-quantised (TFLite) models; float models leave them infinite. */
typedef struct mnv3_epilogue {
    mnv3_activation activation;
    mnv3_clamp pre;
    mnv3_clamp post;
} mnv3_epilogue;

static inline float mnv3_clampf(float x, mnv3_clamp c) {
    x = x < c.lo ? c.lo : x;
    return x > c.hi ? c.hi : x;
}

static inline float mnv3_activate(mnv3_activation act, float x) {
    switch (act) {
    case MNV3_ACT_RELU: return x > 0.0f ? x : 0.0f;
    case MNV3_ACT_RELU6: return x < 0.0f ? 0.0f : (x > 6.0f ? 6.0f : x);
    case MNV3_ACT_HARD_SWISH: {
        float r = x + 3.0f;
        r = r < 0.0f ? 0.0f : (r > 6.0f ? 6.0f : r);
        return x * r * (1.0f / 6.0f);
    }
    case MNV3_ACT_HARD_SIGMOID: {
        float r = x + 3.0f;
        r = r < 0.0f ? 0.0f : (r > 6.0f ? 6.0f : r);
        return r * (1.0f / 6.0f);
    }
    case MNV3_ACT_NONE:
    default: return x;
    }
}

static inline float mnv3_epilogue_apply(const mnv3_epilogue *e, float x) {
    return mnv3_clampf(mnv3_activate(e->activation, mnv3_clampf(x, e->pre)), e->post);
}

static inline int mnv3_clamp_is_unbounded(mnv3_clamp c) {
    return isinf(c.lo) && c.lo < 0 && isinf(c.hi) && c.hi > 0;
}

/* 1x1 convolution over pixel rows [pixel_begin, pixel_end) and output channels
 * [oc_begin, oc_end):
 *   acc[p][o] = bias[o] + sum_i input[p*in_stride + i] * in_scale[i] * W[o][i]
 *   v = epilogue(acc);  if residual: v = clamp(v + residual[p*out_stride + o], residual_clamp)
 *   if output: output[p*out_stride + o] = v
 *   if channel_sums: channel_sums[o] += v   (sum over the rows of this call)
 * in_scale == NULL means all ones (the SE gate of the block, folded into the projection).
 * oc_begin is a multiple of the table's pointwise_nr.
 * prefetch[0..prefetch_count) is memory later layers will stream (their weights): the
 * kernel may touch part prefetch_part of prefetch_parts of each range, a cache line at a
 * time from its inner loop, so that the DRAM latency of the memory-bound layers overlaps
 * this layer's arithmetic. It is a hint only: the values are never read, and a kernel may
 * ignore it. */
typedef struct mnv3_prefetch_range {
    const char *begin;
    size_t bytes;
} mnv3_prefetch_range;


typedef struct mnv3_pointwise_args {
    const float *input;
    size_t in_stride;
    const float *in_scale;
    const void *packed;          /* weights as the table's pointwise_pack laid them out */
    const float *bias;           /* may be NULL */
    mnv3_epilogue epilogue;
    const float *residual;       /* may be NULL */
    mnv3_clamp residual_clamp;
    float *output;               /* may be NULL when only channel_sums are wanted */
    size_t out_stride;
    float *channel_sums;         /* may be NULL */
    uint32_t in_channels, out_channels;
    size_t pixel_begin, pixel_end;
    uint32_t oc_begin, oc_end;
    float *workspace;            /* pointwise_workspace_floats() floats, 64-byte aligned */
    const mnv3_prefetch_range *prefetch;
    uint32_t prefetch_count, prefetch_part, prefetch_parts;
} mnv3_pointwise_args;

/* A pointwise kernel's prefetch cursor walks [*pf, *pf_end), this call's part of each range
 * in turn. Once the cursor is spent, this moves it to the next non-empty part, if any
 * (*next counts the ranges taken so far). */
static inline void mnv3_prefetch_next(const mnv3_pointwise_args *a, uint32_t *next,
                                      const char **pf, const char **pf_end) {
    while (*pf == *pf_end && *next < a->prefetch_count) {
        const mnv3_prefetch_range *r = &a->prefetch[(*next)++];
        const size_t lines = r->bytes / 64u;
        *pf = r->begin + lines * a->prefetch_part / a->prefetch_parts * 64u;
        *pf_end = r->begin + lines * (a->prefetch_part + 1u) / a->prefetch_parts * 64u;
    }
}

/* Touches the cursor's next line, if any; a microkernel does this once per k step. A macro,
 * like MNV3_CONV_PREFETCH_AHEAD below, so that it compiles for the kernel set's ISA. */
#define MNV3_PREFETCH_STEP(pf, pf_end)                                                       \
    do {                                                                                     \
        if ((pf) != (pf_end)) {                                                              \
            __builtin_prefetch((pf), 0, 3);                                                  \
            (pf) += 64;                                                                      \
        }                                                                                    \
    } while (0)

/* Depthwise k x k convolution, NHWC, output rows [row_begin, row_end), all channels:
 *   acc = bias[c] + sum_{ky,kx} in[(oy*s + ky - pad_top), (ox*s + kx - pad_left), c] * W[ky][kx][c]
 * (taps outside the input contribute zero), v = epilogue(acc), output[oy][ox][c] = v,
 * and if channel_sums: channel_sums[c] += v (the SE squeeze, fused).
 * With in_ring_rows != 0 the input is a ring of that many rows (input row iy is stored at
 * row iy % in_ring_rows), which is how a fused expansion hands over a band of rows. */
typedef struct mnv3_depthwise_args {
    const float *input;
    uint32_t in_height, in_width, channels;
    const void *packed;
    const float *bias;
    uint32_t kernel, stride, pad_top, pad_left;
    uint32_t out_height, out_width;
    uint32_t row_begin, row_end;
    mnv3_epilogue epilogue;
    float *output;
    float *channel_sums;
    uint32_t in_ring_rows;
} mnv3_depthwise_args;

/* First element of input row iy (0 <= iy < in_height) of a depthwise call. */
static inline const float *mnv3_dw_row(const mnv3_depthwise_args *a, long iy) {
    const size_t r = a->in_ring_rows ? (size_t)iy % a->in_ring_rows : (size_t)iy;
    return a->input + r * a->in_width * a->channels;
}

/* Dense k x k convolution (the stem) writing NHWC output rows [row_begin, row_end). The
 * input is addressed through element strides so NCHW and NHWC inputs need no copy:
 *   in(y, x, c) = input[y*in_row_stride + x*in_col_stride + c*in_chan_stride] */
typedef struct mnv3_conv_args {
    const float *input;
    uint32_t in_height, in_width, in_channels;
    size_t in_row_stride, in_col_stride, in_chan_stride;
    const void *packed;
    const float *bias;
    uint32_t out_channels, kernel, stride, pad_top, pad_left;
    uint32_t out_height, out_width;
    uint32_t row_begin, row_end;
    mnv3_epilogue epilogue;
    float *output;
} mnv3_conv_args;

/* The stem reads the image straight from the caller's buffer, which is usually not cached
 * (it was just written by the caller or has been evicted since), and reading it at
 * stride 2 across a few channel planes does not keep the hardware prefetchers ahead. At
 * each output row oy a conv kernel prefetches the input rows [*first, *end) that output row
 * oy + MNV3_CONV_PREFETCH_ROWS will read and no earlier row of the call did: per row,
 * `spans` runs of `span_bytes` bytes, `span_step` floats apart (one per channel plane for
 * NCHW, one for NHWC). MNV3_CONV_PREFETCH_AHEAD issues the prefetches; it is a macro so
 * that it compiles inside each kernel set's function, for that instruction set (a generic
 * x86-64 function would compile __builtin_prefetch to nothing). */
#define MNV3_CONV_PREFETCH_ROWS 2

typedef struct mnv3_conv_prefetch {
    long first, end;
    uint32_t spans;
    size_t span_step, span_bytes;
} mnv3_conv_prefetch;

static inline mnv3_conv_prefetch mnv3_conv_prefetch_rows(const mnv3_conv_args *a, uint32_t oy) {
    mnv3_conv_prefetch p;
    const long S = (long)a->stride, K = (long)a->kernel;
    const long iy0 = (long)oy * S - (long)a->pad_top, ahead = iy0 + MNV3_CONV_PREFETCH_ROWS * S;
    const int nhwc = a->in_chan_stride == 1;
    p.first = oy == a->row_begin ? iy0 + K : ahead + K - S;
    p.end = ahead + K;
    if (p.first < 0) p.first = 0;
    if (p.end > (long)a->in_height) p.end = (long)a->in_height;
    p.spans = nhwc ? 1 : a->in_channels;
    p.span_step = a->in_chan_stride;
    p.span_bytes = (nhwc ? (size_t)a->in_width * a->in_col_stride
                         : ((size_t)a->in_width - 1) * a->in_col_stride + 1) *
                   sizeof(float);
    return p;
}

#define MNV3_CONV_PREFETCH_AHEAD(args, oy)                                                   \
    do {                                                                                     \
        const mnv3_conv_prefetch pr_ = mnv3_conv_prefetch_rows((args), (oy));                \
        long iy_;                                                                            \
        uint32_t c_;                                                                         \
        size_t off_;                                                                         \
        for (iy_ = pr_.first; iy_ < pr_.end; ++iy_)                                          \
            for (c_ = 0; c_ < pr_.spans; ++c_) {                                             \
                const char *p_ = (const char *)((args)->input +                              \
                                                (size_t)iy_ * (args)->in_row_stride +        \
                                                c_ * pr_.span_step);                         \
                for (off_ = 0; off_ < pr_.span_bytes; off_ += 64)                            \
                    __builtin_prefetch(p_ + off_, 0, 3);                                     \
            }                                                                                \
    } while (0)

/* Fully connected (matrix-vector) for outputs [out_begin, out_end):
 *   output[o] = epilogue(bias[o] + sum_i input[i] * W[o][i]) */
typedef struct mnv3_fc_args {
    const float *input;
    uint32_t in_features, out_features;
    const void *packed;
    const float *bias;
    mnv3_epilogue epilogue;
    float *output;
    uint32_t out_begin, out_end;
} mnv3_fc_args;

/* Packing: *_packed_floats() returns how many floats the packed form needs, or 0 when the
 * kernel reads the canonical layout in place (then pack is never called and `packed`
 * points at the canonical weights). Canonical layouts: pointwise/fc [out][in], depthwise
 * [kh][kw][channels], dense conv [out][kh][kw][in]. */
typedef struct mnv3_kernels {
    mnv3_isa isa;
    const char *name;
    uint32_t pointwise_nr;

    size_t (*pointwise_packed_floats)(uint32_t in_channels, uint32_t out_channels);
    void (*pointwise_pack)(const float *weight, uint32_t in_channels, uint32_t out_channels,
                           float *packed);
    size_t (*pointwise_workspace_floats)(uint32_t in_channels, uint32_t out_channels);
    void (*pointwise)(const mnv3_pointwise_args *args);

    size_t (*depthwise_packed_floats)(uint32_t channels, uint32_t kernel);
    void (*depthwise_pack)(const float *weight, uint32_t channels, uint32_t kernel,
                           float *packed);
    void (*depthwise)(const mnv3_depthwise_args *args);

    size_t (*conv_packed_floats)(uint32_t in_channels, uint32_t out_channels, uint32_t kernel);
    void (*conv_pack)(const float *weight, uint32_t in_channels, uint32_t out_channels,
                      uint32_t kernel, float *packed);
    void (*conv)(const mnv3_conv_args *args);

    size_t (*fc_packed_floats)(uint32_t in_features, uint32_t out_features);
    void (*fc_pack)(const float *weight, uint32_t in_features, uint32_t out_features,
                    float *packed);
    void (*fc)(const mnv3_fc_args *args);
} mnv3_kernels;

/* Tables. A table exists in every build; on a CPU or build without the ISA it is never
 * selected (mnv3_kernels_for() returns NULL for it). */
extern const mnv3_kernels mnv3_kernels_reference;
#if defined(MNV3_HAVE_X86_KERNELS)
extern const mnv3_kernels mnv3_kernels_avx2;
extern const mnv3_kernels mnv3_kernels_avx512;
#endif
#if defined(MNV3_HAVE_NEON_KERNELS)
extern const mnv3_kernels mnv3_kernels_neon;
#endif
const mnv3_kernels *mnv3_kernels_for(mnv3_isa isa);

/* The reference entry points, reusable by other tables for layers they do not specialise. */
size_t mnv3_ref_no_packing2(uint32_t a, uint32_t b);
size_t mnv3_ref_no_packing3(uint32_t a, uint32_t b, uint32_t c);
size_t mnv3_ref_no_workspace(uint32_t a, uint32_t b);
void mnv3_ref_pointwise(const mnv3_pointwise_args *args);
void mnv3_ref_depthwise(const mnv3_depthwise_args *args);
void mnv3_ref_conv(const mnv3_conv_args *args);
void mnv3_ref_fc(const mnv3_fc_args *args);

#endif
