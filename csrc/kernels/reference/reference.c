/* Portable scalar kernels: the numerical oracle every SIMD table is tested against, and the
 * kernels used where no SIMD path exists. They read canonical weights in place (no packing),
 * which is what lets firmware run straight from a flash image. Written for clarity first. */
#include "base/checked.h"
#include "base/half.h"
#include "kernels/kernels.h"

/* Weight i of canonical weights of element type t: float32, or float16 converted exactly. */
static float weight_at(const void *w, size_t i, mnv3_dtype t) {
    return t == MNV3_DTYPE_F16 ? mnv3_f16_to_f32(((const uint16_t *)w)[i]) : ((const float *)w)[i];
}

static void ref_pointwise(const mnv3_pointwise_args *a, mnv3_dtype wt) {
    size_t p;
    uint32_t o, i;
    for (p = a->pixel_begin; p < a->pixel_end; ++p) {
        const float *in = a->input + p * a->in_stride;
        for (o = a->oc_begin; o < a->oc_end; ++o) {
            const size_t wo = (size_t)o * a->in_channels;
            float acc = 0.0f, v;
            if (a->in_scale) {
                for (i = 0; i < a->in_channels; ++i)
                    acc += in[i] * a->in_scale[i] * weight_at(a->packed, wo + i, wt);
            } else {
                for (i = 0; i < a->in_channels; ++i) acc += in[i] * weight_at(a->packed, wo + i, wt);
            }
            if (a->bias) acc += a->bias[o];
            v = mnv3_epilogue_apply(&a->epilogue, acc);
            if (a->residual)
                v = mnv3_clampf(v + a->residual[p * a->out_stride + o], a->residual_clamp);
            if (a->output) a->output[p * a->out_stride + o] = v;
            if (a->channel_sums) a->channel_sums[o] += v;
        }
    }
}

static void ref_depthwise(const mnv3_depthwise_args *a, mnv3_dtype wt) {
    const uint32_t C = a->channels, K = a->kernel;
    const float *rows[MNV3_DW_MAX_KERNEL];
    mnv3_dw_cursor cursor;
    uint32_t oy, ox, c, ky, kx;
    MNV3_ASSERT(K >= 1 && K <= MNV3_DW_MAX_KERNEL);
    mnv3_dw_cursor_start(a, &cursor);
    for (oy = a->row_begin; oy < a->row_end; ++oy) {
        mnv3_dw_rows(a, &cursor, oy, rows);
        for (ox = 0; ox < a->out_width; ++ox) {
            float *out = a->output + ((size_t)oy * a->out_width + ox) * C;
            for (c = 0; c < C; ++c) {
                float acc = a->bias ? a->bias[c] : 0.0f, v;
                for (ky = 0; ky < K; ++ky) {
                    if (!rows[ky]) continue;
                    for (kx = 0; kx < K; ++kx) {
                        long ix = (long)ox * a->stride + kx - (long)a->pad_left;
                        if (ix < 0 || ix >= (long)a->in_width) continue;
                        acc += rows[ky][(size_t)ix * C + c] *
                               weight_at(a->packed, ((size_t)ky * K + kx) * C + c, wt);
                    }
                }
                v = mnv3_epilogue_apply(&a->epilogue, acc);
                out[c] = v;
                if (a->channel_sums) a->channel_sums[c] += v;
            }
        }
    }
}

static void ref_conv(const mnv3_conv_args *a, mnv3_dtype wt) {
    const uint32_t K = a->kernel, Ci = a->in_channels;
    uint32_t oy, ox, o, ky, kx, i;
    for (oy = a->row_begin; oy < a->row_end; ++oy) {
        for (ox = 0; ox < a->out_width; ++ox) {
            float *out = a->output + ((size_t)oy * a->out_width + ox) * a->out_channels;
            for (o = 0; o < a->out_channels; ++o) {
                float acc = a->bias ? a->bias[o] : 0.0f;
                for (ky = 0; ky < K; ++ky) {
                    long iy = (long)oy * a->stride + ky - (long)a->pad_top;
                    if (iy < 0 || iy >= (long)a->in_height) continue;
                    for (kx = 0; kx < K; ++kx) {
                        long ix = (long)ox * a->stride + kx - (long)a->pad_left;
                        size_t wk;
                        if (ix < 0 || ix >= (long)a->in_width) continue;
                        wk = (((size_t)o * K + ky) * K + kx) * Ci;
                        for (i = 0; i < Ci; ++i)
                            acc += a->input[(size_t)iy * a->in_row_stride +
                                            (size_t)ix * a->in_col_stride +
                                            (size_t)i * a->in_chan_stride] *
                                   weight_at(a->packed, wk + i, wt);
                    }
                }
                out[o] = mnv3_epilogue_apply(&a->epilogue, acc);
            }
        }
    }
}

static void ref_fc(const mnv3_fc_args *a, mnv3_dtype wt) {
    uint32_t o, i;
    for (o = a->out_begin; o < a->out_end; ++o) {
        const size_t wo = (size_t)o * a->in_features;
        float acc = a->bias ? a->bias[o] : 0.0f;
        for (i = 0; i < a->in_features; ++i) acc += a->input[i] * weight_at(a->packed, wo + i, wt);
        a->output[o] = mnv3_epilogue_apply(&a->epilogue, acc);
    }
}

void mnv3_ref_pointwise(const mnv3_pointwise_args *a) { ref_pointwise(a, MNV3_DTYPE_F32); }
void mnv3_ref_depthwise(const mnv3_depthwise_args *a) { ref_depthwise(a, MNV3_DTYPE_F32); }
void mnv3_ref_conv(const mnv3_conv_args *a) { ref_conv(a, MNV3_DTYPE_F32); }
void mnv3_ref_fc(const mnv3_fc_args *a) { ref_fc(a, MNV3_DTYPE_F32); }

/* The rows: canonical weights read in place, no microkernels, `run` is the oracle. */
static size_t no_packing2(uint32_t a, uint32_t b) {
    (void)a;
    (void)b;
    return 0;
}

static size_t no_packing3(uint32_t a, uint32_t b, uint32_t c) {
    (void)a;
    (void)b;
    (void)c;
    return 0;
}

static size_t no_workspace(const mnv3_pointwise_kernel *row, uint32_t in_channels) {
    (void)row;
    (void)in_channels;
    return 0;
}

/* The row's weight type says how the oracle reads the weights. */
static void run_pointwise(const mnv3_pointwise_kernel *row, const mnv3_pointwise_args *a) {
    ref_pointwise(a, row->weight_type);
}

static void run_depthwise(const mnv3_depthwise_kernel *row, const mnv3_depthwise_args *a) {
    ref_depthwise(a, row->weight_type);
}

static void run_conv(const mnv3_conv_kernel *row, const mnv3_conv_args *a) {
    ref_conv(a, row->weight_type);
}

static void run_fc(const mnv3_fc_kernel *row, const mnv3_fc_args *a) { ref_fc(a, row->weight_type); }

static const mnv3_pointwise_kernel pointwise_row = {
    "f32_pointwise__scalar", MNV3_DTYPE_F32, MNV3_DTYPE_F32, 1, 1, 1, no_packing2, NULL,
    no_workspace, NULL, NULL, {NULL}, {NULL}, run_pointwise, 0,
};
static const mnv3_depthwise_kernel depthwise_row = {
    "f32_dwconv__scalar", MNV3_DTYPE_F32, MNV3_DTYPE_F32, no_packing2, NULL, NULL, {NULL},
    run_depthwise,
};
static const mnv3_conv_kernel conv_row = {
    "f32_conv__scalar", MNV3_DTYPE_F32, MNV3_DTYPE_F32, no_packing3, NULL, NULL, NULL, run_conv,
};
static const mnv3_fc_kernel fc_row = {
    "f32_gemv__scalar", MNV3_DTYPE_F32, MNV3_DTYPE_F32, 1, no_packing2, NULL, NULL, run_fc, 0,
};

/* float16 weights: the same oracle reading each weight through the exact conversion. */
static const mnv3_pointwise_kernel pointwise_row_f16 = {
    "f16w_pointwise__scalar", MNV3_DTYPE_F16, MNV3_DTYPE_F32, 1, 1, 1, no_packing2, NULL,
    no_workspace, NULL, NULL, {NULL}, {NULL}, run_pointwise, 0,
};
static const mnv3_depthwise_kernel depthwise_row_f16 = {
    "f16w_dwconv__scalar", MNV3_DTYPE_F16, MNV3_DTYPE_F32, no_packing2, NULL, NULL, {NULL},
    run_depthwise,
};
static const mnv3_conv_kernel conv_row_f16 = {
    "f16w_conv__scalar", MNV3_DTYPE_F16, MNV3_DTYPE_F32, no_packing3, NULL, NULL, NULL, run_conv,
};
static const mnv3_fc_kernel fc_row_f16 = {
    "f16w_gemv__scalar", MNV3_DTYPE_F16, MNV3_DTYPE_F32, 1, no_packing2, NULL, NULL, run_fc, 0,
};

static const mnv3_pointwise_kernel *const pointwise_rows[] = {&pointwise_row, &pointwise_row_f16,
                                                              NULL};
static const mnv3_depthwise_kernel *const depthwise_rows[] = {&depthwise_row, &depthwise_row_f16,
                                                              NULL};
static const mnv3_conv_kernel *const conv_rows[] = {&conv_row, &conv_row_f16, NULL};
static const mnv3_fc_kernel *const fc_rows[] = {&fc_row, &fc_row_f16, NULL};

const mnv3_kernel_set mnv3_kernel_set_reference = {
    MNV3_ISA_SCALAR, "scalar", NULL, pointwise_rows, depthwise_rows, conv_rows, fc_rows,
};
