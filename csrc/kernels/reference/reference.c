/* The scalar oracle every kernel set is tested against, and the rows used where no SIMD row
 * exists: one loop per layer kind for every precision, with the arithmetic (float32, or
 * TFLite's int8) in a handful of element functions. Canonical weights are read in place (no
 * packing), which is what lets firmware run straight from a flash image. Written for
 * clarity first.
 *
 * float32: every product rounded, then added in the order below (a pointwise layer adds its
 * bias last, the others start from it), the row's epilogue, residual add and clamps as the
 * model states them. int8: sums wrap modulo 2^32 as the SIMD adds do (the exact value
 * wherever TFLite's int32 accumulator is), requantization as base/q8.h. The int8
 * network's input conversions are here too, as the definition every SIMD set matches. */
#include "base/checked.h"
#include "base/half.h"
#include "kernels/float_impl.h"
#include "kernels/q8_impl.h"
#include "kernels/q8_scalar.h"

/* Every float product rounded before its addition, whatever the compiler's default (GCC
 * contracts nothing in ISO C mode; clang would fuse a multiply-add on targets with FMA). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* One operand or accumulator: the float or the integer half is used, by the row's
 * arithmetic. */
typedef struct value {
    float f;
    int32_t i;
} value;

typedef struct oracle {
    int q8;                      /* int8 arithmetic, else float32 */
    mnv3_dtype weight_type;
    const mnv3_f32_params *fp;
    const mnv3_q8_params *qp;
} oracle;

static oracle oracle_of(const mnv3_row *row, const void *params) {
    oracle o;
    o.q8 = row->arith == MNV3_DTYPE_I8;
    o.weight_type = row->weight_type;
    o.fp = o.q8 ? NULL : (const mnv3_f32_params *)params;
    o.qp = o.q8 ? (const mnv3_q8_params *)params : NULL;
    MNV3_ASSERT(o.q8 || row->act_type == MNV3_DTYPE_F32);
    return o;
}

static value zero(void) {
    value v = {0.0f, 0};
    return v;
}

static value bias_of(const oracle *o, uint32_t c) {
    value v = zero();
    if (o->q8 && o->qp->bias) v.i = o->qp->bias[c];
    if (!o->q8 && o->fp->bias) v.f = o->fp->bias[c];
    return v;
}

/* Input element i, gated by channel k's gate when there is one: the float product (clamped
 * when the model says so), or the TFLite MUL; for int8 minus the input zero point. */
static value input_at(const oracle *o, const void *x, size_t i, const void *gate, uint32_t k) {
    value v = zero();
    if (o->q8) {
        int8_t b = ((const int8_t *)x)[i];
        if (gate) {
            mnv3_q8_gate g = o->qp->gate;
            g.gate = (const int8_t *)gate;
            b = mnv3_q8_gated_byte(&g, o->qp->in_zp, b, k);
        }
        v.i = (int32_t)b - o->qp->in_zp;
    } else {
        v.f = ((const float *)x)[i];
        if (gate) {
            v.f *= ((const float *)gate)[k];
            if (o->fp->gate_clamped) v.f = mnv3_clampf(v.f, o->fp->gate_clamp);
        }
    }
    return v;
}

/* Canonical weight i: float32, float16 widened exactly, or int8 minus its zero point. */
static value weight_at(const oracle *o, const void *w, size_t i) {
    value v = zero();
    if (o->q8)
        v.i = (int32_t)((const int8_t *)w)[i] - o->qp->weight_zp;
    else if (o->weight_type == MNV3_DTYPE_F16)
        v.f = mnv3_f16_to_f32(((const uint16_t *)w)[i]);
    else
        v.f = ((const float *)w)[i];
    return v;
}

static void mac(const oracle *o, value *acc, value x, value w) {
    if (o->q8)
        acc->i = mnv3_q8_add_wrap(acc->i, x.i * w.i);
    else
        acc->f += x.f * w.f;
}

static void add_bias(const oracle *o, value *acc, uint32_t c) {
    const value b = bias_of(o, c);
    if (o->q8)
        acc->i = mnv3_q8_add_wrap(acc->i, b.i);
    else
        acc->f += b.f;
}

/* Output channel c of an accumulator: the epilogue (or requantization, clamp and LUT), the
 * residual add when there is one, then the store at out[at] and the channel sum. */
static void finish(const oracle *o, value acc, uint32_t c, const void *residual, void *out,
                   size_t at, void *sums) {
    if (o->q8) {
        int8_t v = mnv3_q8_out_byte(&o->qp->requant, c, acc.i);
        if (residual) v = mnv3_q8_add_bytes(&o->qp->add, v, ((const int8_t *)residual)[at]);
        if (out) ((int8_t *)out)[at] = v;
        if (sums) ((int32_t *)sums)[c] += v;
    } else {
        float v = mnv3_epilogue_apply(&o->fp->epilogue, acc.f);
        if (residual) v = mnv3_clampf(v + ((const float *)residual)[at], o->fp->residual_clamp);
        if (out) ((float *)out)[at] = v;
        if (sums) ((float *)sums)[c] += v;
    }
}

/* ------------------------------------------------------------------------------------ */
/* The layers                                                                            */
/* ------------------------------------------------------------------------------------ */

void mnv3_reference_pointwise(const mnv3_row *row, const mnv3_pointwise_args *a) {
    const oracle o = oracle_of(row, a->params);
    size_t p;
    uint32_t c, k;
    for (p = a->pixel_begin; p < a->pixel_end; ++p)
        for (c = a->oc_begin; c < a->oc_end; ++c) {
            const size_t w0 = (size_t)c * a->in_channels;
            value acc = zero();
            for (k = 0; k < a->in_channels; ++k)
                mac(&o, &acc, input_at(&o, a->input, p * a->in_stride + k, a->gate, k),
                    weight_at(&o, a->packed, w0 + k));
            add_bias(&o, &acc, c);
            finish(&o, acc, c, a->residual, a->output, p * a->out_stride + c, a->channel_sums);
        }
}

void mnv3_reference_depthwise(const mnv3_row *row, const mnv3_depthwise_args *a) {
    const oracle o = oracle_of(row, a->params);
    const uint32_t C = a->channels, K = a->kernel;
    const size_t elem = mnv3_dtype_size(row->act_type);
    const void *rows[MNV3_DW_MAX_KERNEL];
    mnv3_dw_cursor cursor;
    uint32_t oy, ox, c, ky, kx;
    MNV3_ASSERT(K >= 1 && K <= MNV3_DW_MAX_KERNEL);
    mnv3_dw_cursor_start(a, elem, &cursor);
    for (oy = a->row_begin; oy < a->row_end; ++oy) {
        mnv3_dw_cursor_rows(&cursor, oy, rows);
        for (ox = 0; ox < a->out_width; ++ox)
            for (c = 0; c < C; ++c) {
                value acc = bias_of(&o, c);
                for (ky = 0; ky < K; ++ky) {
                    if (!rows[ky]) continue;
                    for (kx = 0; kx < K; ++kx) {
                        const long ix = (long)ox * a->stride + kx - (long)a->pad_left;
                        if (ix < 0 || ix >= (long)a->in_width) continue;
                        mac(&o, &acc, input_at(&o, rows[ky], (size_t)ix * C + c, NULL, c),
                            weight_at(&o, a->packed, ((size_t)ky * K + kx) * C + c));
                    }
                }
                finish(&o, acc, c, NULL, a->output, ((size_t)oy * a->out_width + ox) * C + c,
                       a->channel_sums);
            }
    }
}

void mnv3_reference_conv(const mnv3_row *row, const mnv3_conv_args *a) {
    const oracle o = oracle_of(row, a->params);
    const uint32_t K = a->kernel, Ci = a->in_channels, Co = a->out_channels;
    uint32_t oy, ox, c, ky, kx, i;
    for (oy = a->row_begin; oy < a->row_end; ++oy)
        for (ox = 0; ox < a->out_width; ++ox)
            for (c = 0; c < Co; ++c) {
                value acc = bias_of(&o, c);
                for (ky = 0; ky < K; ++ky) {
                    const long iy = (long)oy * a->stride + ky - (long)a->pad_top;
                    if (iy < 0 || iy >= (long)a->in_height) continue;
                    for (kx = 0; kx < K; ++kx) {
                        const long ix = (long)ox * a->stride + kx - (long)a->pad_left;
                        const size_t w0 = (((size_t)c * K + ky) * K + kx) * Ci;
                        if (ix < 0 || ix >= (long)a->in_width) continue;
                        for (i = 0; i < Ci; ++i)
                            mac(&o, &acc,
                                input_at(&o, a->input,
                                         (size_t)iy * a->in_row_stride +
                                             (size_t)ix * a->in_col_stride +
                                             (size_t)i * a->in_chan_stride,
                                         NULL, i),
                                weight_at(&o, a->packed, w0 + i));
                    }
                }
                finish(&o, acc, c, NULL, a->output, ((size_t)oy * a->out_width + ox) * Co + c,
                       NULL);
            }
}

void mnv3_reference_fc(const mnv3_row *row, const mnv3_fc_args *a) {
    const oracle o = oracle_of(row, a->params);
    uint32_t c, i;
    for (c = a->out_begin; c < a->out_end; ++c) {
        const size_t w0 = (size_t)c * a->in_features;
        value acc = bias_of(&o, c);
        for (i = 0; i < a->in_features; ++i)
            mac(&o, &acc, input_at(&o, a->input, i, NULL, i), weight_at(&o, a->packed, w0 + i));
        finish(&o, acc, c, NULL, a->output, c, NULL);
    }
}

/* ------------------------------------------------------------------------------------ */
/* The rows                                                                              */
/* ------------------------------------------------------------------------------------ */

/* Canonical weights read in place, no workspace, `run` the oracle; float rows prepare only
 * the parameters' head (the oracle applies the epilogue itself). */
#define REF_ROW(NAME, KIND, RUN, WT, ACT, ARITH, PARAMS, PREPARE)                            \
    {NAME, KIND, WT, ACT, ARITH, 1, mnv3_no_packing, NULL, PARAMS, PREPARE,                  \
     mnv3_no_workspace, {RUN}, NULL}
#define REF_ROWS(PREFIX, WT, ACT, ARITH, PARAMS, PREPARE)                                    \
    static const mnv3_row PREFIX##_pointwise =                                               \
        REF_ROW(#PREFIX "_pointwise__scalar", MNV3_ROW_POINTWISE,                            \
                .pointwise = mnv3_reference_pointwise, WT, ACT, ARITH, PARAMS, PREPARE);     \
    static const mnv3_row PREFIX##_depthwise =                                               \
        REF_ROW(#PREFIX "_dwconv__scalar", MNV3_ROW_DEPTHWISE,                               \
                .depthwise = mnv3_reference_depthwise, WT, ACT, ARITH, PARAMS, PREPARE);     \
    static const mnv3_row PREFIX##_conv =                                                    \
        REF_ROW(#PREFIX "_conv__scalar", MNV3_ROW_CONV, .conv = mnv3_reference_conv, WT,     \
                ACT, ARITH, PARAMS, PREPARE);                                                \
    static const mnv3_row PREFIX##_fc =                                                      \
        REF_ROW(#PREFIX "_gemv__scalar", MNV3_ROW_FC, .fc = mnv3_reference_fc, WT, ACT,      \
                ARITH, PARAMS, PREPARE);

REF_ROWS(f32, MNV3_DTYPE_F32, MNV3_DTYPE_F32, MNV3_DTYPE_F32, mnv3_f32_params_bytes,
         mnv3_f32_prepare)
REF_ROWS(f16w, MNV3_DTYPE_F16, MNV3_DTYPE_F32, MNV3_DTYPE_F32, mnv3_f32_params_bytes,
         mnv3_f32_prepare)
REF_ROWS(q8, MNV3_DTYPE_I8, MNV3_DTYPE_I8, MNV3_DTYPE_I8, mnv3_q8_params_bytes, mnv3_q8_prepare)

static const mnv3_row *const rows[] = {
    &f32_pointwise,  &f32_depthwise,  &f32_conv,  &f32_fc,
    &f16w_pointwise, &f16w_depthwise, &f16w_conv, &f16w_fc,
    &q8_pointwise,   &q8_depthwise,   &q8_conv,   &q8_fc,
    NULL,
};

/* ------------------------------------------------------------------------------------ */
/* The int8 network's input                                                              */
/* ------------------------------------------------------------------------------------ */

void mnv3_q8_quantize_planes_portable(const float *x, size_t plane, size_t pixels, float scale,
                                      int32_t zp, int8_t *out) {
    size_t p;
    for (p = 0; p < pixels; ++p) {
        out[3 * p] = mnv3_q8_quantize_one(x[p], scale, zp);
        out[3 * p + 1] = mnv3_q8_quantize_one(x[plane + p], scale, zp);
        out[3 * p + 2] = mnv3_q8_quantize_one(x[2 * plane + p], scale, zp);
    }
}

void mnv3_q8_from_uint8_portable(const uint8_t *x, size_t n, int8_t *out) {
    size_t i;
    for (i = 0; i < n; ++i) out[i] = (int8_t)(x[i] ^ 0x80u);
}

void mnv3_q8_interleave_planes_portable(const uint8_t *x, size_t plane, size_t pixels,
                                        uint8_t flip, int8_t *out) {
    size_t p;
    for (p = 0; p < pixels; ++p) {
        out[3 * p] = (int8_t)(x[p] ^ flip);
        out[3 * p + 1] = (int8_t)(x[plane + p] ^ flip);
        out[3 * p + 2] = (int8_t)(x[2 * plane + p] ^ flip);
    }
}

const mnv3_q8_input_ops mnv3_q8_input_portable = {
    mnv3_q8_quantize, mnv3_q8_quantize_planes_portable, mnv3_q8_from_uint8_portable,
    mnv3_q8_interleave_planes_portable,
};

/* Every set id's last resort. */
const mnv3_kernel_set mnv3_kernel_set_reference = {"scalar", ~0u, NULL, rows,
                                                   &mnv3_q8_input_portable};
