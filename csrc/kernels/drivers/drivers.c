/* The portable drivers: everything about a layer that is not one tile of arithmetic is
 * written here once, for every kernel set. A driver walks its sub-range of the layer,
 * prepares the row's parameters once per call, and hands tiles to the row's microkernels:
 *   pointwise  row chunks (SE gate applied to a chunk's input rows), panels, balanced
 *              row tiles, the prefetch cursor;
 *   depthwise  output rows, input rows resolved through the ring of a fused expansion,
 *              interior columns, the loop order chosen by the input size;
 *   conv       output rows, vertical clipping, input prefetch two rows ahead;
 *   fc         blocks of outputs, bias and epilogue.
 * Squeeze-excite and pooling are small enough to be plain code here as well. */
#include <string.h>

#include "base/checked.h"
#include "base/half.h"
#include "kernels/kernels.h"

#if defined(__GNUC__)
#define ALIGN64 __attribute__((aligned(64)))
#else
#define ALIGN64
#endif

static uint32_t round_up_u32(uint32_t x, uint32_t m) { return (x + m - 1) / m * m; }

/* ------------------------------------------------------------------------------------ */
/* Pointwise                                                                             */
/* ------------------------------------------------------------------------------------ */

/* Rows are processed in chunks of up to PW_CHUNK; within a chunk every weight panel is
 * applied to all the chunk's rows before the next panel is touched, so a panel read from
 * the last-level cache is reused from L1 by every row tile, and the chunk's input rows
 * stay in L2 across panels. The SE gate scales a chunk's input rows into the workspace once,
 * which costs K multiplies per pixel against K*N multiply-adds. */
#define PW_CHUNK 64u
/* Packed weights up to this many elements stay in L1 whatever the order: then one row tile
 * at a time across all panels keeps the output writes of each pixel together. */
#define PW_L1_WEIGHTS 8192u

size_t mnv3_pointwise_driver_workspace(const mnv3_pointwise_kernel *row, uint32_t in_channels) {
    return (size_t)PW_CHUNK * round_up_u32(in_channels, 16) * mnv3_act_elem_bytes(row->act_type);
}

/* Where the widened panels start in a widening row's workspace: after the scaled rows. */
static size_t widened_offset(const mnv3_pointwise_kernel *row, uint32_t in_channels) {
    return (mnv3_pointwise_driver_workspace(row, in_channels) + 63u) / 64u * 64u;
}

/* Weights that stay in L1 anyway (K x npad <= PW_L1_WEIGHTS) are widened whole, once per
 * call; larger ones a panel at a time, once per chunk of rows. */
size_t mnv3_pointwise_widened_workspace(const mnv3_pointwise_kernel *row, uint32_t in_channels) {
    const size_t panel = (size_t)in_channels * row->nr;
    return widened_offset(row, in_channels) +
           (panel > PW_L1_WEIGHTS ? panel : PW_L1_WEIGHTS) * sizeof(float);
}

/* The walk of both drivers. `widen` NULL: the tiles read the packed panels in place, each
 * elem_bytes a weight. Otherwise the packed weights are narrower than the tiles read
 * (float16 for float32 tiles): each panel is widened into the workspace before its tiles
 * run, so a weight is converted once per chunk of up to PW_CHUNK rows instead of once per
 * tile, and the tiles are float32 ones. The conversion is exact, so the results are those
 * of tiles that widen as they load. */
static void pointwise_walk(const mnv3_pointwise_kernel *row, mnv3_widen_fn widen,
                           size_t elem_bytes, const mnv3_pointwise_args *a) {
    const uint32_t K = a->in_channels, nr = row->nr, mr = row->mr;
    const uint32_t npad = round_up_u32(a->out_channels, row->nr_min);
    const size_t ws_stride = round_up_u32(K, 16);
    const uint32_t oc_end = a->oc_end, oc_first = a->oc_begin / nr * nr;
    const int small = (size_t)K * npad <= PW_L1_WEIGHTS;
    const size_t chunk = small ? mr : PW_CHUNK;
    const size_t ab = mnv3_act_elem_bytes(row->act_type);
    float *wide_w = NULL;
    unsigned char params[MNV3_PARAMS_BYTES] ALIGN64;
    const char *pf = NULL, *pf_end = NULL;
    uint32_t pf_next = 0;
    size_t p0 = a->pixel_begin;
    uint32_t col;
    mnv3_gemm_tile t;
    MNV3_ASSERT(a->oc_begin % nr == 0 && oc_end <= a->out_channels);
    MNV3_ASSERT(mr >= 1 && mr <= MNV3_MAX_MR);
    MNV3_ASSERT(!a->in_scale || a->workspace);
    if (widen) {
        MNV3_ASSERT(a->workspace);
        wide_w = (float *)(void *)((unsigned char *)a->workspace + widened_offset(row, K));
        if (small)
            for (col = oc_first; col < oc_end; col += nr)
                widen((const char *)a->packed + (size_t)col * K * elem_bytes, (size_t)K * nr,
                      wide_w + (size_t)(col - oc_first) * K);
    }
    row->prepare(&a->epilogue, &a->residual_clamp, params);
    t.params = params;
    t.pf = &pf;
    t.k = K;
    t.out_stride = a->out_stride;
    while (p0 < a->pixel_end) {
        const size_t left = a->pixel_end - p0;
        const size_t chunks = (left + chunk - 1) / chunk;
        const size_t rows = (left + chunks - 1) / chunks;
        const float *in;
        size_t in_stride;
        if (a->in_scale) {
            row->scale_rows(mnv3_act_at(a->input, p0 * a->in_stride, ab), a->in_stride,
                            a->in_scale, K, (uint32_t)rows, (float *)a->workspace, ws_stride);
            in = (const float *)a->workspace;
            in_stride = ws_stride;
        } else {
            in = mnv3_act_at(a->input, p0 * a->in_stride, ab);
            in_stride = a->in_stride;
        }
        for (col = oc_first; col < oc_end; col += nr) {
            const mnv3_gemm_ukernel *kernels = col + nr <= npad ? row->wide : row->narrow;
            size_t r = 0;
            t.w = (const char *)a->packed + (size_t)col * K * elem_bytes;
            if (widen && small) {
                t.w = (const char *)(wide_w + (size_t)(col - oc_first) * K);
            } else if (widen) {
                widen(t.w, (size_t)K * nr, wide_w);
                t.w = (const char *)wide_w;
            }
            t.nc = oc_end - col < nr ? oc_end - col : nr;
            t.bias = a->bias ? a->bias + col : NULL;
            t.sums = a->channel_sums ? a->channel_sums + col : NULL;
            while (r < rows) {
                /* Balanced tiles (49 rows: 7 x 7, not 6 x 8 + 1): a one-row tile costs
                 * nearly as much as a full one. */
                const size_t rest = rows - r, tiles = (rest + mr - 1) / mr;
                const uint32_t m = (uint32_t)((rest + tiles - 1) / tiles);
                const size_t p = p0 + r;
                t.a = mnv3_act_at(in, r * in_stride, ab);
                t.a_stride = in_stride;
                t.res = a->residual ? mnv3_act_at(a->residual, p * a->out_stride + col, ab) : NULL;
                t.out = a->output ? mnv3_act_at_mut(a->output, p * a->out_stride + col, ab) : NULL;
                mnv3_prefetch_next(a, &pf_next, &pf, &pf_end);
                t.pf_end = pf_end;
                kernels[m - 1](&t);
                r += m;
            }
        }
        p0 += rows;
    }
}

void mnv3_pointwise_driver(const mnv3_pointwise_kernel *row, const mnv3_pointwise_args *a) {
    pointwise_walk(row, NULL, row->packed_elem_bytes ? row->packed_elem_bytes : sizeof(float), a);
}

void mnv3_pointwise_driver_widened(const mnv3_pointwise_kernel *row,
                                   const mnv3_pointwise_kernel *tiles, mnv3_widen_fn widen,
                                   const mnv3_pointwise_args *a) {
    MNV3_ASSERT(tiles->nr == row->nr && tiles->nr_min == row->nr_min && tiles->mr == row->mr &&
                tiles->act_type == row->act_type);
    pointwise_walk(tiles, widen, row->packed_elem_bytes, a);
}

/* ------------------------------------------------------------------------------------ */
/* Depthwise                                                                             */
/* ------------------------------------------------------------------------------------ */

void mnv3_interior_columns(uint32_t in_width, uint32_t out_width, uint32_t kernel,
                           uint32_t stride, uint32_t pad_left, uint32_t *ox_lo,
                           uint32_t *ox_hi) {
    /* Interior outputs: ox*S >= pad_left and ox*S - pad_left + K <= in_width. */
    uint32_t lo = (pad_left + stride - 1) / stride;
    uint32_t hi = (uint64_t)in_width + pad_left >= kernel
                      ? (uint32_t)(((uint64_t)in_width + pad_left - kernel) / stride + 1)
                      : 0;
    if (hi > out_width) hi = out_width;
    if (hi <= lo) lo = hi = out_width;
    *ox_lo = lo;
    *ox_hi = hi;
}

static int dw_shape(uint32_t kernel, uint32_t stride) {
    if (kernel == 3 && stride == 1) return MNV3_DW_K3S1;
    if (kernel == 3 && stride == 2) return MNV3_DW_K3S2;
    if (kernel == 5 && stride == 1) return MNV3_DW_K5S1;
    if (kernel == 5 && stride == 2) return MNV3_DW_K5S2;
    return MNV3_DW_ANY;
}

/* An input larger than about half of L2 streams from the last-level cache: it is read
 * pixel by pixel, sequentially. Smaller ones are swept row by row per channel vector,
 * which keeps the weights in registers. */
#define DW_PIXEL_MAJOR_BYTES ((size_t)1 << 20)

void mnv3_depthwise_driver(const mnv3_depthwise_kernel *row, const mnv3_depthwise_args *a) {
    const uint32_t K = a->kernel, S = a->stride, C = a->channels;
    const mnv3_dw_ukernel span = row->span[dw_shape(K, S)];
    const size_t row_elems = (size_t)a->in_width * C, ab = mnv3_act_elem_bytes(row->act_type);
    unsigned char params[MNV3_PARAMS_BYTES] ALIGN64;
    const float *rows[MNV3_DW_MAX_KERNEL];
    long slots[MNV3_DW_MAX_KERNEL];
    mnv3_dw_span s;
    mnv3_dw_cursor cursor;
    uint32_t oy;
    MNV3_ASSERT(K >= 1 && K <= MNV3_DW_MAX_KERNEL && S >= 1);
    MNV3_ASSERT(a->row_end <= a->out_height);
    row->prepare(&a->epilogue, NULL, params);
    memset(&s, 0, sizeof s);
    s.rows = rows;
    s.sums = a->channel_sums;
    s.w = a->packed;
    s.bias = a->bias;
    s.params = params;
    s.channels = C;
    s.in_width = a->in_width;
    s.pad_left = a->pad_left;
    s.stride = S;
    s.kernel = K;
    s.ox_begin = 0;
    s.ox_end = a->out_width;
    s.pixel_major = (size_t)a->in_height * row_elems * ab > DW_PIXEL_MAJOR_BYTES;
    mnv3_interior_columns(a->in_width, a->out_width, K, S, a->pad_left, &s.ox_lo, &s.ox_hi);
    mnv3_dw_cursor_start(a, &cursor);
    for (oy = a->row_begin; oy < a->row_end; ++oy) {
        uint32_t ky;
        mnv3_dw_cursor_slots(&cursor, oy, slots);
        for (ky = 0; ky < K; ++ky)
            rows[ky] =
                slots[ky] < 0 ? NULL : mnv3_act_at(a->input, (size_t)slots[ky] * row_elems, ab);
        s.out = mnv3_act_at_mut(a->output, (size_t)oy * a->out_width * C, ab);
        span(&s);
    }
}

/* ------------------------------------------------------------------------------------ */
/* Dense convolution (the stem)                                                          */
/* ------------------------------------------------------------------------------------ */

/* The stem reads the image straight from the caller's buffer, which is usually not cached
 * (it was just written by the caller or has been evicted since), and reading it at
 * stride 2 across a few channel planes does not keep the hardware prefetchers ahead. At
 * output row oy the driver prefetches the input rows that output row oy + CONV_AHEAD will
 * read and no earlier row of the call did: per row, one run per channel plane for NCHW,
 * one for NHWC. */
#define CONV_AHEAD 2

static void conv_prefetch(const mnv3_conv_args *a, uint32_t oy) {
#if defined(__GNUC__)
    const long S = (long)a->stride, K = (long)a->kernel;
    const long iy0 = (long)oy * S - (long)a->pad_top, ahead = iy0 + CONV_AHEAD * S;
    const int nhwc = a->in_chan_stride == 1;
    const uint32_t spans = nhwc ? 1 : a->in_channels;
    const size_t bytes = (nhwc ? (size_t)a->in_width * a->in_col_stride
                               : ((size_t)a->in_width - 1) * a->in_col_stride + 1) *
                         sizeof(float);
    long first = oy == a->row_begin ? iy0 + K : ahead + K - S, end = ahead + K, iy;
    uint32_t c;
    size_t off;
    if (first < 0) first = 0;
    if (end > (long)a->in_height) end = (long)a->in_height;
    for (iy = first; iy < end; ++iy)
        for (c = 0; c < spans; ++c) {
            const char *p = (const char *)(a->input + (size_t)iy * a->in_row_stride +
                                           c * a->in_chan_stride);
            for (off = 0; off < bytes; off += 64) __builtin_prefetch(p + off, 0, 3);
        }
#else
    (void)a;
    (void)oy;
#endif
}

void mnv3_conv_driver(const mnv3_conv_kernel *row, const mnv3_conv_args *a) {
    const uint32_t K = a->kernel, S = a->stride;
    unsigned char params[MNV3_PARAMS_BYTES] ALIGN64;
    mnv3_conv_row r;
    uint32_t oy;
    MNV3_ASSERT(K >= 1 && S >= 1 && a->row_end <= a->out_height);
    row->prepare(&a->epilogue, NULL, params);
    r.a = a;
    r.params = params;
    mnv3_interior_columns(a->in_width, a->out_width, K, S, a->pad_left, &r.ox_lo, &r.ox_hi);
    for (oy = a->row_begin; oy < a->row_end; ++oy) {
        r.iy0 = (long)oy * S - (long)a->pad_top;
        r.ky_lo = r.iy0 < 0 ? (uint32_t)-r.iy0 : 0;
        r.ky_hi = r.iy0 + (long)K > (long)a->in_height ? (uint32_t)((long)a->in_height - r.iy0) : K;
        if (r.ky_lo > r.ky_hi) r.ky_lo = r.ky_hi;
        r.out = mnv3_act_at_mut(a->output, (size_t)oy * a->out_width * a->out_channels,
                                mnv3_act_elem_bytes(row->act_type));
        conv_prefetch(a, oy);
        row->row(&r);
    }
}

/* ------------------------------------------------------------------------------------ */
/* Fully connected, squeeze-excite, pooling                                              */
/* ------------------------------------------------------------------------------------ */

void mnv3_fc_driver(const mnv3_fc_kernel *row, const mnv3_fc_args *a) {
    const uint32_t I = a->in_features;
    const size_t elem_bytes = row->packed_elem_bytes ? row->packed_elem_bytes : sizeof(float);
    float dots[MNV3_MAX_MR];
    uint32_t o, j;
    MNV3_ASSERT(row->mr >= 1 && row->mr <= MNV3_MAX_MR);
    MNV3_ASSERT(a->out_end <= a->out_features);
    for (o = a->out_begin; o < a->out_end; o += row->mr) {
        const uint32_t count = a->out_end - o < row->mr ? a->out_end - o : row->mr;
        row->gemv(a->input, (const char *)a->packed + (size_t)o * I * elem_bytes, I, count, dots);
        for (j = 0; j < count; ++j)
            a->output[o + j] =
                mnv3_epilogue_apply(&a->epilogue, dots[j] + (a->bias ? a->bias[o + j] : 0.0f));
    }
}

void mnv3_scale_channels(float *x, size_t pixels, uint32_t channels, const float *gate,
                         mnv3_clamp clamp) {
    size_t p;
    uint32_t c;
    for (p = 0; p < pixels; ++p, x += channels)
        for (c = 0; c < channels; ++c) x[c] = mnv3_clampf(x[c] * gate[c], clamp);
}

void mnv3_scale_channels_f16(uint16_t *x, size_t pixels, uint32_t channels, const float *gate,
                             mnv3_clamp clamp) {
    size_t p;
    uint32_t c;
    for (p = 0; p < pixels; ++p, x += channels)
        for (c = 0; c < channels; ++c)
            x[c] = mnv3_f32_to_f16(mnv3_clampf(mnv3_f16_to_f32(x[c]) * gate[c], clamp));
}

void mnv3_reduce_slices(const float *partial, uint32_t slices, uint32_t channels, float scale,
                        mnv3_clamp clamp, float *dst) {
    uint32_t t, c;
    for (c = 0; c < channels; ++c) dst[c] = 0.0f;
    for (t = 0; t < slices; ++t) {
        const float *p = partial + (size_t)t * channels;
        for (c = 0; c < channels; ++c) dst[c] += p[c];
    }
    for (c = 0; c < channels; ++c) dst[c] = mnv3_clampf(dst[c] * scale, clamp);
}
