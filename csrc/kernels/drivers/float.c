/* The float drivers: everything about a float layer that is not one tile of arithmetic is
 * written here once, for every kernel set. A driver walks its sub-range of the layer and
 * hands tiles to the row's microkernels, with the parameters the row prepared once:
 *   pointwise  row chunks (SE gate applied to a chunk's input rows), panels, balanced
 *              row tiles, the prefetch cursor;
 *   depthwise  output rows, input rows resolved through the ring of a fused expansion,
 *              interior columns, the loop order chosen by the input size;
 *   conv       output rows, vertical clipping, input prefetch two rows ahead;
 *   fc         blocks of outputs, bias and epilogue.
 * Squeeze-excite and pooling are small enough to be plain code here as well. */
#include <string.h>

#include "base/checked.h"
#include "kernels/float_impl.h"

#define round_up_u32 mnv3_round_up_u32

/* ------------------------------------------------------------------------------------ */
/* Row functions every float set shares                                                  */
/* ------------------------------------------------------------------------------------ */

size_t mnv3_f32_params_bytes(const mnv3_row *row, const mnv3_layer *l) {
    const mnv3_f32_impl_head *impl = (const mnv3_f32_impl_head *)row->impl;
    (void)l;
    return impl && impl->prepare ? MNV3_F32_UKERNEL_PARAMS + impl->params_bytes
                                 : sizeof(mnv3_f32_params);
}

void mnv3_f32_prepare(const mnv3_row *row, const mnv3_layer *l, void *params) {
    const mnv3_f32_impl_head *impl = (const mnv3_f32_impl_head *)row->impl;
    mnv3_f32_params *p = (mnv3_f32_params *)params;
    p->bias = (const float *)l->bias;
    p->epilogue = l->epilogue;
    p->residual_clamp = l->residual_clamp;
    p->gate_clamp = l->gate_clamp;
    p->gate_clamped = !mnv3_clamp_is_unbounded(l->gate_clamp);
    if (impl && impl->prepare)
        impl->prepare(&l->epilogue, l->kind == MNV3_ROW_POINTWISE ? &l->residual_clamp : NULL,
                      (char *)params + MNV3_F32_UKERNEL_PARAMS);
}


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

/* Rows of input the driver gates at once, act_type elements each. */
static size_t gated_rows_bytes(const mnv3_row *row, uint32_t in_channels) {
    return (size_t)PW_CHUNK * round_up_u32(in_channels, 16) * mnv3_act_elem_bytes(row->act_type);
}

/* Weights that stay in L1 anyway (K x npad <= PW_L1_WEIGHTS) are widened whole, once per
 * call; larger ones a panel at a time, once per chunk of rows. The widened panels follow
 * the gated rows. */
size_t mnv3_f32_pointwise_workspace(const mnv3_row *row, const mnv3_layer *l, uint32_t in_width,
                                    uint32_t out_width) {
    const mnv3_f32_gemm_impl *gm = (const mnv3_f32_gemm_impl *)row->impl;
    const size_t rows = (gated_rows_bytes(row, l->in_channels) + 63u) / 64u * 64u;
    size_t panel, total;
    (void)in_width;
    (void)out_width;
    if (!gm->widen) return rows;
    if (!mnv3_size_mul(l->in_channels, gm->nr, &panel)) return SIZE_MAX;
    if (panel < PW_L1_WEIGHTS) panel = PW_L1_WEIGHTS;
    return mnv3_size_mul(panel, sizeof(float), &panel) && mnv3_size_add(rows, panel, &total)
               ? total
               : SIZE_MAX;
}

/* The packed weights are read in place, each elem_bytes a weight, unless the row widens
 * them (float16 for float32 tiles): then each panel is widened into the workspace before
 * its tiles run, so a weight is converted once per chunk of up to PW_CHUNK rows instead of
 * once per tile, and the tiles are float32 ones. The conversion is exact, so the results
 * are those of tiles that widen as they load. */
void mnv3_f32_pointwise_driver(const mnv3_row *row, const mnv3_pointwise_args *a) {
    const mnv3_f32_gemm_impl *gm = (const mnv3_f32_gemm_impl *)row->impl;
    const mnv3_f32_gemm_impl *tiles = gm->tiles ? gm->tiles : gm;
    const mnv3_widen_fn widen = gm->widen;
    const size_t elem_bytes = gm->packed_elem_bytes;
    const mnv3_f32_params *prm = (const mnv3_f32_params *)a->params;
    const uint32_t K = a->in_channels, nr = tiles->nr, mr = tiles->mr;
    const uint32_t npad = round_up_u32(a->out_channels, tiles->nr_min);
    const size_t ws_stride = round_up_u32(K, 16);
    const uint32_t oc_end = a->oc_end, oc_first = a->oc_begin / nr * nr;
    const int small = (size_t)K * npad <= PW_L1_WEIGHTS;
    const size_t chunk = small ? mr : PW_CHUNK;
    const size_t ab = mnv3_act_elem_bytes(row->act_type);
    const float *gate = (const float *)a->gate;
    float *wide_w = NULL;
    mnv3_prefetch_cursor pf;
    const mnv3_chunk_split chunks = mnv3_split_chunks(a->pixel_end - a->pixel_begin, chunk);
    size_t p0 = a->pixel_begin, ci;
    uint32_t col;
    mnv3_gemm_tile t;
    MNV3_ASSERT(a->oc_begin % nr == 0 && oc_end <= a->out_channels);
    MNV3_ASSERT(mr >= 1 && mr <= MNV3_MAX_MR);
    MNV3_ASSERT(tiles->nr == gm->nr && tiles->nr_min == gm->nr_min && tiles->mr == gm->mr);
    MNV3_ASSERT(!gate || a->workspace);
    if (widen) {
        MNV3_ASSERT(a->workspace);
        wide_w = (float *)(void *)((unsigned char *)a->workspace +
                                   (gated_rows_bytes(row, K) + 63u) / 64u * 64u);
        if (small)
            for (col = oc_first; col < oc_end; col += nr)
                widen((const char *)a->packed + (size_t)col * K * elem_bytes,
                      (size_t)K * (col + nr <= npad ? nr : tiles->nr_min),
                      wide_w + (size_t)(col - oc_first) * K);
    }
    mnv3_prefetch_start(a, &pf);
    t.params = mnv3_f32_ukernel_params(a->params);
    t.pf = &pf.pf;
    t.k = K;
    t.out_stride = a->out_stride;
    for (ci = 0; ci < chunks.count; ++ci) {
        const size_t rows = mnv3_chunk_split_rows(&chunks, ci);
        const mnv3_tile_split split = mnv3_split_tiles((uint32_t)rows, mr);
        const void *in;
        size_t in_stride;
        if (gate) {
            gm->scale_rows((const float *)mnv3_elem_at(a->input, p0 * a->in_stride, ab),
                           a->in_stride, gate, K, (uint32_t)rows, (float *)a->workspace,
                           ws_stride, prm->gate_clamped, prm->gate_clamp);
            in = a->workspace;
            in_stride = ws_stride;
        } else {
            in = mnv3_elem_at(a->input, p0 * a->in_stride, ab);
            in_stride = a->in_stride;
        }
        for (col = oc_first; col < oc_end; col += nr) {
            const mnv3_gemm_ukernel *kernels = col + nr <= npad ? tiles->wide : tiles->narrow;
            size_t r = 0;
            uint32_t tile;
            t.w = (const char *)a->packed + (size_t)col * K * elem_bytes;
            if (widen && small) {
                t.w = (const char *)(wide_w + (size_t)(col - oc_first) * K);
            } else if (widen) {
                widen(t.w, (size_t)K * (col + nr <= npad ? nr : tiles->nr_min), wide_w);
                t.w = (const char *)wide_w;
            }
            t.nc = oc_end - col < nr ? oc_end - col : nr;
            t.bias = prm->bias ? prm->bias + col : NULL;
            t.sums = a->channel_sums ? (float *)a->channel_sums + col : NULL;
            for (tile = 0; tile < split.count; ++tile) {
                const uint32_t m = mnv3_split_rows(&split, tile);
                const size_t p = p0 + r;
                t.a = (const float *)mnv3_elem_at(in, r * in_stride, ab);
                t.a_stride = in_stride;
                t.res = a->residual ? (const float *)mnv3_elem_at(
                                          a->residual, p * a->out_stride + col, ab)
                                    : NULL;
                t.out = a->output ? (float *)mnv3_elem_at_mut(a->output,
                                                              p * a->out_stride + col, ab)
                                  : NULL;
                mnv3_prefetch_next(&pf);
                t.pf_end = pf.pf_end;
                kernels[m - 1](&t);
                r += m;
            }
        }
        p0 += rows;
    }
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

void mnv3_f32_depthwise_driver(const mnv3_row *row, const mnv3_depthwise_args *a) {
    const mnv3_f32_dw_impl *im = (const mnv3_f32_dw_impl *)row->impl;
    const uint32_t K = a->kernel, S = a->stride, C = a->channels;
    const mnv3_dw_ukernel span = im->span[dw_shape(K, S)];
    const size_t row_elems = (size_t)a->in_width * C, ab = mnv3_act_elem_bytes(row->act_type);
    const void *rows[MNV3_DW_MAX_KERNEL];
    mnv3_dw_span s;
    mnv3_dw_cursor cursor;
    uint32_t oy;
    MNV3_ASSERT(K >= 1 && K <= MNV3_DW_MAX_KERNEL && S >= 1);
    MNV3_ASSERT(a->row_end <= a->out_height);
    memset(&s, 0, sizeof s);
    s.rows = (const float *const *)(const void *)rows;
    s.sums = (float *)a->channel_sums;
    s.w = a->packed;
    s.bias = ((const mnv3_f32_params *)a->params)->bias;
    s.params = mnv3_f32_ukernel_params(a->params);
    s.channels = C;
    s.in_width = a->in_width;
    s.pad_left = a->pad_left;
    s.stride = S;
    s.kernel = K;
    s.ox_begin = 0;
    s.ox_end = a->out_width;
    s.pixel_major = (size_t)a->in_height * row_elems * ab > DW_PIXEL_MAJOR_BYTES;
    mnv3_interior_columns(a->in_width, a->out_width, K, S, a->pad_left, &s.ox_lo, &s.ox_hi);
    mnv3_dw_cursor_start(a, ab, &cursor);
    for (oy = a->row_begin; oy < a->row_end; ++oy) {
        mnv3_dw_cursor_rows(&cursor, oy, rows);
        s.out = (float *)mnv3_elem_at_mut(a->output, (size_t)oy * a->out_width * C, ab);
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
            const char *p = (const char *)((const float *)a->input +
                                           (size_t)iy * a->in_row_stride + c * a->in_chan_stride);
            for (off = 0; off < bytes; off += 64) __builtin_prefetch(p + off, 0, 3);
        }
#else
    (void)a;
    (void)oy;
#endif
}

void mnv3_f32_conv_driver(const mnv3_row *row, const mnv3_conv_args *a) {
    const mnv3_f32_conv_impl *im = (const mnv3_f32_conv_impl *)row->impl;
    const uint32_t K = a->kernel, S = a->stride;
    mnv3_conv_row r;
    uint32_t oy;
    MNV3_ASSERT(K >= 1 && S >= 1 && a->row_end <= a->out_height);
    r.a = a;
    r.bias = ((const mnv3_f32_params *)a->params)->bias;
    r.params = mnv3_f32_ukernel_params(a->params);
    mnv3_interior_columns(a->in_width, a->out_width, K, S, a->pad_left, &r.ox_lo, &r.ox_hi);
    for (oy = a->row_begin; oy < a->row_end; ++oy) {
        r.iy0 = (long)oy * S - (long)a->pad_top;
        r.ky_lo = r.iy0 < 0 ? (uint32_t)-r.iy0 : 0;
        r.ky_hi = r.iy0 + (long)K > (long)a->in_height ? (uint32_t)((long)a->in_height - r.iy0) : K;
        if (r.ky_lo > r.ky_hi) r.ky_lo = r.ky_hi;
        r.out = (float *)mnv3_elem_at_mut(a->output, (size_t)oy * a->out_width * a->out_channels,
                                          mnv3_act_elem_bytes(row->act_type));
        conv_prefetch(a, oy);
        im->row(&r);
    }
}

/* ------------------------------------------------------------------------------------ */
/* Fully connected, squeeze-excite, pooling                                              */
/* ------------------------------------------------------------------------------------ */

void mnv3_f32_fc_driver(const mnv3_row *row, const mnv3_fc_args *a) {
    const mnv3_f32_fc_impl *im = (const mnv3_f32_fc_impl *)row->impl;
    const mnv3_f32_params *prm = (const mnv3_f32_params *)a->params;
    const uint32_t I = a->in_features;
    const float *in = (const float *)a->input;
    float *out = (float *)a->output;
    float dots[MNV3_MAX_MR];
    uint32_t o, j;
    MNV3_ASSERT(im->mr >= 1 && im->mr <= MNV3_MAX_MR);
    MNV3_ASSERT(a->out_end <= a->out_features);
    for (o = a->out_begin; o < a->out_end; o += im->mr) {
        const uint32_t count = a->out_end - o < im->mr ? a->out_end - o : im->mr;
        im->gemv(in, (const char *)a->packed + (size_t)o * I * im->packed_elem_bytes, I, count,
                 dots);
        for (j = 0; j < count; ++j)
            out[o + j] = mnv3_epilogue_apply(&prm->epilogue,
                                             dots[j] + (prm->bias ? prm->bias[o + j] : 0.0f));
    }
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
