/* Quantized models: every quantization field checked, each failure with its own status,
 * and the fixed-point parameters derived once at load time, in the network's data-flow
 * order so that each conv knows the quantization of the tensor it reads. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/checked.h"
#include "model.h"

static mnv3_status check_q(mnv3_q8_param q, const char *what, const char *slot, mnv3_error *e) {
    if (!isfinite(q.scale) || !(q.scale > 0.0f))
        return mnv3_set_error(e, MNV3_ERR_BAD_SCALE, "%s: %s scale %g is not finite and > 0",
                              what, slot, (double)q.scale);
    if (q.zero_point < -128 || q.zero_point > 127)
        return mnv3_set_error(e, MNV3_ERR_BAD_ZERO_POINT,
                              "%s: %s zero point %ld outside [-128, 127]", what, slot,
                              (long)q.zero_point);
    return MNV3_OK;
}

static int same_q(mnv3_q8_param a, mnv3_q8_param b) {
    return a.scale == b.scale && a.zero_point == b.zero_point;
}

mnv3_q8_param mnv3_conv_result_q(const mnv3_conv *c) {
    return c->q8.table ? c->q8.table_output : c->q8.output;
}

mnv3_q8_param mnv3_model_output_q(const mnv3_model *m) {
    return mnv3_conv_result_q(&m->head[m->num_head - 1]);
}

/* One conv reading a tensor quantized as `input`; fills its multipliers from `qmul`. */
static mnv3_status prepare_conv(const mnv3_model *m, mnv3_conv *c, mnv3_q8_param input,
                                int table_required, mnv3_q8_mul *qmul, mnv3_error *e) {
    char what[48];
    uint32_t o;
    const int needs_table = c->epilogue.activation == MNV3_ACT_HARD_SWISH ||
                            c->epilogue.activation == MNV3_ACT_HARD_SIGMOID || table_required;
    mnv3_conv_name(m, c, what, sizeof what);
    c->q8.input = input;
    c->q8.input_zero_point = input.zero_point;
    MNV3_TRY(check_q(c->q8.output, what, "output", e));
    if (c->q8.weight_zero_point < -128 || c->q8.weight_zero_point > 127)
        return mnv3_set_error(e, MNV3_ERR_BAD_ZERO_POINT,
                              "%s: weight zero point %ld outside [-128, 127]", what,
                              (long)c->q8.weight_zero_point);
    if (c->q8.act_lo < -128 || c->q8.act_hi > 127 || c->q8.act_lo > c->q8.act_hi)
        return mnv3_set_error(e, MNV3_ERR_BAD_QUANT_RANGE,
                              "%s: activation range [%ld, %ld] is not inside [-128, 127]", what,
                              (long)c->q8.act_lo, (long)c->q8.act_hi);
    if (needs_table != (c->q8.table != NULL))
        return mnv3_set_error(e, MNV3_ERR_BAD_QUANT_RANGE,
                              needs_table ? "%s: its activation needs a lookup table, none given"
                                          : "%s: a lookup table on a conv whose activation is a "
                                            "range",
                              what);
    if (c->q8.table) MNV3_TRY(check_q(c->q8.table_output, what, "table output", e));
    for (o = 0; o < c->out_channels; ++o) {
        const float ws = c->q8.weight_scale[o];
        if (!isfinite(ws) || !(ws > 0.0f))
            return mnv3_set_error(e, MNV3_ERR_BAD_SCALE,
                                  "%s: weight scale %u is %g, not finite and > 0", what, o,
                                  (double)ws);
        if (c->has_bias) {
            const float bs = c->q8.bias_scale[o];
            if (!isfinite(bs) || !(bs > 0.0f))
                return mnv3_set_error(e, MNV3_ERR_BAD_SCALE,
                                      "%s: bias scale %u is %g, not finite and > 0", what, o,
                                      (double)bs);
            if (!mnv3_q8_bias_scale_ok(input.scale, ws, bs, c->q8.output.scale))
                return mnv3_set_error(e, MNV3_ERR_BAD_BIAS_SCALE,
                                      "%s: bias scale %u is %g, input x weight scale is %g", what,
                                      o, (double)bs, (double)input.scale * (double)ws);
        }
        if (mnv3_q8_mul_from_real(mnv3_q8_conv_real_multiplier(input.scale, ws, c->q8.output.scale,
                                                             c->q8.mult_mode),
                                &qmul[o]) != 0)
            return mnv3_set_error(e, MNV3_ERR_BAD_MULTIPLIER,
                                  "%s: channel %u multiplier %g x %g / %g has no fixed-point form",
                                  what, o, (double)input.scale, (double)ws,
                                  (double)c->q8.output.scale);
    }
    c->q8.qmul = qmul;
    return MNV3_OK;
}

/* The pooled tensor of a global pool or SE squeeze reading `input`. */
static mnv3_status check_pool(mnv3_q8_pool_mode mode, mnv3_q8_param input, mnv3_q8_param output,
                              const char *what, mnv3_error *e) {
    mnv3_q8_pool p;
    MNV3_TRY(check_q(output, what, "pool output", e));
    if (mode != MNV3_Q8_POOL_MEAN && !same_q(input, output))
        return mnv3_set_error(e, MNV3_ERR_BAD_QUANT_RANGE,
                              "%s: an average pool keeps its input's scale and zero point", what);
    if (mnv3_q8_pool_prepare(mode, 1, input.scale, input.zero_point, output.scale,
                            output.zero_point, &p) != 0)
        return mnv3_set_error(e, MNV3_ERR_BAD_MULTIPLIER,
                              "%s: pool multiplier %g / %g has no fixed-point form", what,
                              (double)input.scale, (double)output.scale);
    return MNV3_OK;
}

mnv3_status mnv3_model_q8_prepare(mnv3_model *m, mnv3_error *e) {
    mnv3_conv *list[MNV3_MAX_CONVS];
    const uint32_t n = mnv3_model_convs(m, list);
    uint64_t channels = 0;
    mnv3_q8_mul *qmul, *next;
    mnv3_q8_param x;
    uint32_t i, b;
    if (!m->quantized) return MNV3_OK;
    for (i = 0; i < n; ++i) channels += list[i]->out_channels;
    free(m->owned_quant);
    m->owned_quant = NULL;
    MNV3_TRY(check_q(m->q8_input, "network", "input", e));
    qmul = (mnv3_q8_mul *)calloc((size_t)channels, sizeof *qmul);
    if (!qmul) return mnv3_set_error(e, MNV3_ERR_OUT_OF_MEMORY, "quantized multipliers");
    m->owned_quant = qmul;
    next = qmul;
#define CONV(c, input, table)                                                                \
    do {                                                                                     \
        MNV3_TRY(prepare_conv(m, (c), (input), (table), next, e));                           \
        next += (c)->out_channels;                                                           \
    } while (0)
    x = m->q8_input;
    CONV(&m->stem, x, 0);
    x = mnv3_conv_result_q(&m->stem);
    for (b = 0; b < m->num_blocks; ++b) {
        mnv3_block *k = &m->blocks[b];
        const mnv3_q8_param block_in = x;
        char what[32];
        snprintf(what, sizeof what, "block %u", b);
        if (k->has_expand) {
            CONV(&k->expand, x, 0);
            x = mnv3_conv_result_q(&k->expand);
        }
        CONV(&k->depthwise, x, 0);
        x = mnv3_conv_result_q(&k->depthwise);
        if (k->has_se) {
            MNV3_TRY(check_pool(k->se_pool_mode, x, k->se_pool_output, what, e));
            CONV(&k->se.reduce, k->se_pool_output, 0);
            CONV(&k->se.expand, mnv3_conv_result_q(&k->se.reduce), 1);
            MNV3_TRY(check_q(k->se_mul_output, what, "se multiply output", e));
            {
                const mnv3_q8_param g = mnv3_conv_result_q(&k->se.expand);
                if (mnv3_q8_mul_prepare(x.scale, x.zero_point, g.scale, g.zero_point,
                                       k->se_mul_output.scale, k->se_mul_output.zero_point,
                                       &k->se_mul) != 0)
                    return mnv3_set_error(e, MNV3_ERR_BAD_MULTIPLIER,
                                          "%s: se multiply %g x %g / %g has no fixed-point form",
                                          what, (double)x.scale, (double)g.scale,
                                          (double)k->se_mul_output.scale);
            }
            x = k->se_mul_output;
        }
        CONV(&k->project, x, 0);
        x = mnv3_conv_result_q(&k->project);
        if (k->residual) {
            MNV3_TRY(check_q(k->residual_output, what, "residual output", e));
            if (mnv3_q8_add_prepare(x.scale, x.zero_point, block_in.scale, block_in.zero_point,
                                   k->residual_output.scale, k->residual_output.zero_point,
                                   &k->residual_add) != 0)
                return mnv3_set_error(e, MNV3_ERR_BAD_MULTIPLIER,
                                      "%s: residual add of scales %g and %g into %g has no "
                                      "fixed-point form",
                                      what, (double)x.scale, (double)block_in.scale,
                                      (double)k->residual_output.scale);
            x = k->residual_output;
        }
    }
    CONV(&m->last_conv, x, 0);
    MNV3_TRY(check_pool(m->pool_mode, mnv3_conv_result_q(&m->last_conv), m->pool_output,
                        "network", e));
    x = m->pool_output;
    for (i = 0; i < m->num_head; ++i) {
        CONV(&m->head[i], x, 0);
        x = mnv3_conv_result_q(&m->head[i]);
    }
#undef CONV
    return MNV3_OK;
}
