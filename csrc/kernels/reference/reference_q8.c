/* The int8 oracle: TFLite's reference arithmetic written as plain loops over canonical
 * weights read in place (no packing, no microkernels). Every int8 kernel set is tested
 * byte for byte against these rows. */
#include "kernels/kernels.h"
#include "kernels/q8_impl.h"
#include "kernels/q8_scalar.h"

void mnv3_ref_q8_pointwise(const mnv3_q8_pointwise_args *a) {
    const int8_t *w = (const int8_t *)a->packed;
    size_t p;
    uint32_t o, k;
    for (p = a->pixel_begin; p < a->pixel_end; ++p) {
        const int8_t *in = a->input + p * a->in_stride;
        for (o = a->oc_begin; o < a->oc_end; ++o) {
            const int8_t *wo = w + (size_t)o * a->in_channels;
            int32_t acc = a->bias ? a->bias[o] : 0;
            int8_t v;
            for (k = 0; k < a->in_channels; ++k) {
                const int8_t x = a->gate.gate ? mnv3_q8_gated_byte(&a->gate, a->in_zp, in[k], k)
                                              : in[k];
                acc = mnv3_q8_add_wrap(acc, ((int32_t)x - a->in_zp) *
                                                ((int32_t)wo[k] - a->weight_zp));
            }
            v = mnv3_q8_out_byte(&a->requant, o, acc);
            if (a->residual) v = mnv3_q8_add_bytes(&a->add, v, a->residual[p * a->out_stride + o]);
            if (a->output) a->output[p * a->out_stride + o] = v;
            if (a->channel_sums) a->channel_sums[o] += v;
        }
    }
}

void mnv3_ref_q8_depthwise(const mnv3_q8_depthwise_args *a) {
    const int8_t *w = (const int8_t *)a->packed;
    const uint32_t C = a->channels, K = a->kernel;
    uint32_t oy, ox, c, ky, kx;
    for (oy = a->row_begin; oy < a->row_end; ++oy) {
        for (ox = 0; ox < a->out_width; ++ox) {
            int8_t *out = a->output + ((size_t)oy * a->out_width + ox) * C;
            for (c = 0; c < C; ++c) {
                int32_t acc = a->bias ? a->bias[c] : 0;
                for (ky = 0; ky < K; ++ky) {
                    const long iy = (long)oy * a->stride + ky - (long)a->pad_top;
                    if (iy < 0 || iy >= (long)a->in_height) continue;
                    for (kx = 0; kx < K; ++kx) {
                        const long ix = (long)ox * a->stride + kx - (long)a->pad_left;
                        if (ix < 0 || ix >= (long)a->in_width) continue;
                        acc = mnv3_q8_add_wrap(
                            acc, ((int32_t)mnv3_q8_dw_row(a, iy)[(size_t)ix * C + c] - a->in_zp) *
                                     ((int32_t)w[((size_t)ky * K + kx) * C + c] - a->weight_zp));
                    }
                }
                out[c] = mnv3_q8_out_byte(&a->requant, c, acc);
                if (a->channel_sums) a->channel_sums[c] += out[c];
            }
        }
    }
}

void mnv3_ref_q8_conv(const mnv3_q8_conv_args *a) {
    const int8_t *w = (const int8_t *)a->packed;
    const uint32_t K = a->kernel, Ci = a->in_channels;
    uint32_t oy, ox, o, ky, kx, i;
    for (oy = a->row_begin; oy < a->row_end; ++oy) {
        for (ox = 0; ox < a->out_width; ++ox) {
            int8_t *out = a->output + ((size_t)oy * a->out_width + ox) * a->out_channels;
            for (o = 0; o < a->out_channels; ++o) {
                int32_t acc = a->bias ? a->bias[o] : 0;
                for (ky = 0; ky < K; ++ky) {
                    const long iy = (long)oy * a->stride + ky - (long)a->pad_top;
                    if (iy < 0 || iy >= (long)a->in_height) continue;
                    for (kx = 0; kx < K; ++kx) {
                        const long ix = (long)ox * a->stride + kx - (long)a->pad_left;
                        const int8_t *wk;
                        if (ix < 0 || ix >= (long)a->in_width) continue;
                        wk = w + (((size_t)o * K + ky) * K + kx) * Ci;
                        for (i = 0; i < Ci; ++i) {
                            const int8_t x = a->input[(size_t)iy * a->in_row_stride +
                                                      (size_t)ix * a->in_col_stride +
                                                      (size_t)i * a->in_chan_stride];
                            acc = mnv3_q8_add_wrap(
                                acc, ((int32_t)x - a->in_zp) * ((int32_t)wk[i] - a->weight_zp));
                        }
                    }
                }
                out[o] = mnv3_q8_out_byte(&a->requant, o, acc);
            }
        }
    }
}

void mnv3_ref_q8_fc(const mnv3_q8_fc_args *a) {
    const int8_t *w = (const int8_t *)a->packed;
    uint32_t o, i;
    for (o = a->out_begin; o < a->out_end; ++o) {
        const int8_t *wo = w + (size_t)o * a->in_features;
        int32_t acc = a->bias ? a->bias[o] : 0;
        for (i = 0; i < a->in_features; ++i)
            acc = mnv3_q8_add_wrap(acc, ((int32_t)a->input[i] - a->in_zp) *
                                            ((int32_t)wo[i] - a->weight_zp));
        a->output[o] = mnv3_q8_out_byte(&a->requant, o, acc);
    }
}

/* The rows: canonical weights read in place, no workspace, `run` is the oracle. */
static size_t in_place(const mnv3_q8_weights *w) {
    (void)w;
    return 0;
}

static size_t pointwise_workspace(const mnv3_q8_pointwise_kernel *row, uint32_t in_channels) {
    (void)row;
    (void)in_channels;
    return 0;
}

static size_t conv_workspace(const mnv3_q8_conv_kernel *row, uint32_t in_channels,
                             uint32_t kernel, uint32_t out_width) {
    (void)row;
    (void)in_channels;
    (void)kernel;
    (void)out_width;
    return 0;
}

static void run_pointwise(const mnv3_q8_pointwise_kernel *row, const mnv3_q8_pointwise_args *a) {
    (void)row;
    mnv3_ref_q8_pointwise(a);
}

static void run_depthwise(const mnv3_q8_depthwise_kernel *row, const mnv3_q8_depthwise_args *a) {
    (void)row;
    mnv3_ref_q8_depthwise(a);
}

static void run_conv(const mnv3_q8_conv_kernel *row, const mnv3_q8_conv_args *a) {
    (void)row;
    mnv3_ref_q8_conv(a);
}

static void run_fc(const mnv3_q8_fc_kernel *row, const mnv3_q8_fc_args *a) {
    (void)row;
    mnv3_ref_q8_fc(a);
}

static const mnv3_q8_pointwise_kernel pointwise_row = {
    "q8_pointwise__scalar", MNV3_DTYPE_I8, MNV3_DTYPE_I8, 1, 1, in_place, NULL,
    pointwise_workspace, run_pointwise, NULL,
};
static const mnv3_q8_depthwise_kernel depthwise_row = {
    "q8_dwconv__scalar", MNV3_DTYPE_I8, MNV3_DTYPE_I8, in_place, NULL, mnv3_q8_depthwise_workspace,
    run_depthwise, NULL,
};
static const mnv3_q8_conv_kernel conv_row = {
    "q8_conv__scalar", MNV3_DTYPE_I8, MNV3_DTYPE_I8, in_place, NULL, conv_workspace, run_conv,
    NULL,
};
static const mnv3_q8_fc_kernel fc_row = {
    "q8_gemv__scalar", MNV3_DTYPE_I8, MNV3_DTYPE_I8, in_place, NULL, run_fc, NULL,
};

static const mnv3_q8_pointwise_kernel *const pointwise_rows[] = {&pointwise_row, NULL};
static const mnv3_q8_depthwise_kernel *const depthwise_rows[] = {&depthwise_row, NULL};
static const mnv3_q8_conv_kernel *const conv_rows[] = {&conv_row, NULL};
static const mnv3_q8_fc_kernel *const fc_rows[] = {&fc_row, NULL};

/* The last resort of every set id. */
const mnv3_q8_kernel_set mnv3_q8_kernel_set_reference = {
    "scalar", ~0u, NULL, pointwise_rows, depthwise_rows, conv_rows, fc_rows,
};
